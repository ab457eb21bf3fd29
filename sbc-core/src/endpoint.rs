//! The SBC's own SIP endpoint: received bytes in, responses out.
//!
//! [`Endpoint`] parses what the transport received, runs it through the
//! [`TransactionLayer`], and answers the requests addressed to the SBC itself as a UAS
//! does (RFC 3261 §8.2): method inspection (`405`/`501`), header inspection (`416`,
//! `420`), content processing (`415`), then the method. In this version it serves
//! `OPTIONS` (`200 OK` with Allow, Supported and Accept, RFC 3261 §11.2) and gives every
//! other request a final response that says why it is not served; the B2BUA will take
//! over the dialog-creating methods.
//!
//! Malformed requests get the parser's status with its reason phrase
//! (`400 Bad Request - Malformed Via`, `505`); malformed responses are dropped. Every drop
//! and refusal is counted by a stable reason name in [`EndpointStats`].
//!
//! Like the transaction layer it is sans-IO: `now` and randomness come in, [`Transmit`]s go
//! out, and [`Endpoint::poll_timeout`] says when to call [`Endpoint::handle_timeout`].
//!
//! ```
//! use std::time::Instant;
//!
//! use bytes::Bytes;
//! use sbc_core::endpoint::{Endpoint, EndpointConfig};
//! use sbc_core::transaction::Peer;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut counter = 0u64;
//! let mut endpoint = Endpoint::new(EndpointConfig::default(), move || {
//!     counter += 1;
//!     counter
//! });
//! let phone = Peer::unreliable("192.0.2.10:5060".parse()?);
//! endpoint.handle_inbound(
//!     Instant::now(),
//!     Bytes::from_static(
//!         b"OPTIONS sip:sbc.example.net SIP/2.0\r\n\
//!           Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9\r\n\
//!           Max-Forwards: 70\r\n\
//!           From: <sip:alice@example.com>;tag=9fxced76sl\r\n\
//!           To: <sip:sbc.example.net>\r\n\
//!           Call-ID: 3848276298220188511@192.0.2.10\r\n\
//!           CSeq: 1 OPTIONS\r\n\
//!           Content-Length: 0\r\n\r\n",
//!     ),
//!     phone,
//! );
//! let transmit = endpoint.poll_transmit().ok_or("no answer")?;
//! assert!(transmit.payload.starts_with(b"SIP/2.0 200 OK\r\n"));
//! assert_eq!(transmit.destination, phone);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::sip::parse::{ParseError, parse_message, salvage_for_response};
use crate::sip::{HeaderName, Headers, Host, Message, Method, Request, Response, StatusCode, Uri};
use crate::transaction::{Event, LayerConfig, Peer, TransactionLayer, Transmit};

/// The methods this version serves; what `Allow` lists.
const ALLOWED: &str = "OPTIONS";
/// The body types this version understands; what `Accept` lists.
const ACCEPTED: &str = "application/sdp";

/// How the endpoint presents itself and the limits of its transaction layer.
#[derive(Clone, Debug, Default)]
pub struct EndpointConfig {
    pub layer: LayerConfig,
    /// The `Server` header of every response (`None`: no Server header, which hides the
    /// product from scanners).
    pub server: Option<String>,
    /// Option tags listed in `Supported`; a request that `Require`s any other is refused
    /// with `420 Bad Extension`.
    pub supported: Vec<String>,
}

/// What the endpoint refused or dropped, by stable reason name (parser error names,
/// transaction-layer refusal names, and a few of its own). The set of names is fixed by
/// the code, so the map stays small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Requests answered with an error status before reaching a transaction, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Messages dropped without an answer, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Requests answered by a transaction, by the class of the final status (`2xx` …).
    pub answered: BTreeMap<&'static str, u64>,
}

impl EndpointStats {
    fn count(map: &mut BTreeMap<&'static str, u64>, reason: &'static str) {
        *map.entry(reason).or_default() += 1;
    }
}

/// The SBC's own SIP endpoint; see the module docs.
pub struct Endpoint {
    config: EndpointConfig,
    layer: TransactionLayer,
    /// Injected randomness for To tags.
    random: Box<dyn FnMut() -> u64 + Send>,
    stats: EndpointStats,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &self.config)
            .field("transactions", &self.layer.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint drawing its tags from `random` (in production a CSPRNG; in tests a
    /// counter).
    pub fn new(config: EndpointConfig, random: impl FnMut() -> u64 + Send + 'static) -> Endpoint {
        Endpoint {
            layer: TransactionLayer::new(config.layer),
            config,
            random: Box::new(random),
            stats: EndpointStats::default(),
        }
    }

    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// The transactions in progress.
    pub fn transactions(&self) -> usize {
        self.layer.len()
    }

    /// One whole message (a datagram, or a message the stream framer cut out) arrived from
    /// `source`.
    pub fn handle_inbound(&mut self, now: Instant, bytes: Bytes, source: Peer) {
        match parse_message(bytes.clone()) {
            Ok(Message::Request(mut request)) => {
                stamp_received(&mut request, source.remote);
                if let Err(refused) =
                    self.layer
                        .handle_incoming(now, Message::Request(request), source)
                {
                    let reason = refused.reason.name();
                    match refused.response_status() {
                        Some(status) => {
                            EndpointStats::count(&mut self.stats.rejected, reason);
                            let tag = self.new_tag();
                            let response = refused.request.make_response(status, None, Some(&tag));
                            self.send_stateless(response, refused.from);
                        }
                        None => EndpointStats::count(&mut self.stats.dropped, reason),
                    }
                }
            }
            Ok(response @ Message::Response(_)) => {
                // Ours go to their client transaction; this version sends no requests, so
                // the layer reports them as stray and they are dropped below.
                let _ = self.layer.handle_incoming(now, response, source);
            }
            Err(error) => self.malformed(&bytes, error, source),
        }
        self.drain_events(now);
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.drain_events(now);
    }

    /// The transport failed to send a transmit of `transaction`.
    pub fn handle_transport_error(&mut self, now: Instant, transmit: &Transmit) {
        if let Some(transaction) = transmit.transaction {
            self.layer.handle_transport_error(now, transaction);
            self.drain_events(now);
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer.poll_transmit()
    }

    /// When to call [`Endpoint::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.layer.poll_timeout()
    }

    /// A message the parser refused: answer a request when enough of it can be read
    /// (never an ACK), drop anything else. Both are counted under the parser's reason.
    fn malformed(&mut self, bytes: &Bytes, error: ParseError, source: Peer) {
        // RFC 4475 §3.3.1: answer even when Call-ID or CSeq is what is missing; without a
        // Via there is nowhere to send the answer.
        let salvage = salvage_for_response(bytes)
            .filter(|salvage| salvage.method != Method::Ack && !salvage.vias.is_empty());
        match salvage {
            Some(salvage) => {
                EndpointStats::count(&mut self.stats.rejected, error.name());
                let tag = self.new_tag();
                let response = salvage.make_response(error.status(), error.reason(), Some(&tag));
                self.send_stateless(response, source);
            }
            None => EndpointStats::count(&mut self.stats.dropped, error.name()),
        }
    }

    fn send_stateless(&mut self, mut response: Response, destination: Peer) {
        self.decorate(&mut response);
        if self
            .layer
            .handle_send_stateless(&Message::Response(response), destination)
            .is_err()
        {
            EndpointStats::count(&mut self.stats.dropped, "transmit_backlog");
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            match event {
                Event::Request { request, .. } => {
                    let mut response = self.answer(&request);
                    self.decorate(&mut response);
                    let class = status_class_name(response.status);
                    match self.layer.handle_send_response(now, response) {
                        Ok(_) => EndpointStats::count(&mut self.stats.answered, class),
                        Err(error) => EndpointStats::count(&mut self.stats.dropped, error.name()),
                    }
                }
                // No dialog exists in this version, so an ACK for a 2xx has nothing to
                // confirm; ACKs for our non-2xx are absorbed by the transactions.
                Event::Ack { .. } => EndpointStats::count(&mut self.stats.dropped, "stray_ack"),
                Event::StrayResponse { .. } => {
                    EndpointStats::count(&mut self.stats.dropped, "stray_response");
                }
                Event::Response { .. }
                | Event::TimedOut { .. }
                | Event::TransportError { .. }
                | Event::Terminated { .. } => {}
            }
        }
    }

    /// The final response to a request addressed to the SBC, in the order of RFC 3261 §8.2.
    fn answer(&mut self, request: &Request) -> Response {
        let tag = self.new_tag();
        let reply = |status: StatusCode| request.make_response(status, None, Some(&tag));

        // §8.2.1 Method inspection.
        match request.method {
            Method::Options | Method::Cancel => {}
            // Outside a dialog (this version keeps none), these have nothing to act on
            // (RFC 3261 §12.2.2, §15.1.2; RFC 3262; RFC 3311; RFC 6086).
            Method::Bye | Method::Prack | Method::Update | Method::Info => {
                return reply(StatusCode::CALL_DOES_NOT_EXIST);
            }
            Method::Extension(_) => {
                let mut response = reply(StatusCode::NOT_IMPLEMENTED);
                response.headers.push(HeaderName::Allow, ALLOWED);
                return response;
            }
            _ => {
                let mut response = reply(StatusCode::METHOD_NOT_ALLOWED);
                response.headers.push(HeaderName::Allow, ALLOWED);
                return response;
            }
        }

        // §8.2.2.1 To and Request-URI.
        if let Uri::Other { .. } = request.uri {
            return reply(StatusCode::UNSUPPORTED_URI_SCHEME);
        }

        // §8.2.2.3 Require (never applied to CANCEL, §9.2).
        if request.method != Method::Cancel {
            match request.headers.require() {
                Ok(tags) => {
                    let unsupported: Vec<&[u8]> = tags
                        .iter()
                        .map(|tag| tag.as_ref())
                        .filter(|tag| !self.supports(tag))
                        .collect();
                    if !unsupported.is_empty() {
                        let mut response = reply(StatusCode::BAD_EXTENSION);
                        response
                            .headers
                            .push(HeaderName::Unsupported, unsupported.join(&b", "[..]));
                        return response;
                    }
                }
                Err(_) => return reply(StatusCode::BAD_REQUEST),
            }
        }

        // §8.2.3 Content processing.
        if !request.body.is_empty() && !self.accepts_body(request) {
            let mut response = reply(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            response.headers.push(HeaderName::Accept, ACCEPTED);
            return response;
        }

        match request.method {
            // A CANCEL matches an INVITE in progress or nothing (§9.2); this version
            // answers every INVITE at once, so by now there is nothing to cancel.
            Method::Cancel => reply(StatusCode::CALL_DOES_NOT_EXIST),
            _ => {
                // §11.2: OPTIONS is answered as an INVITE would be, with capabilities.
                let mut response = reply(StatusCode::OK);
                response.headers.push(HeaderName::Allow, ALLOWED);
                response.headers.push(HeaderName::Accept, ACCEPTED);
                response
                    .headers
                    .push(HeaderName::Supported, self.config.supported.join(", "));
                response
            }
        }
    }

    fn supports(&self, tag: &[u8]) -> bool {
        self.config
            .supported
            .iter()
            .any(|supported| supported.as_bytes().eq_ignore_ascii_case(tag))
    }

    fn accepts_body(&self, request: &Request) -> bool {
        match request.headers.content_type() {
            Ok(Some(media)) => {
                media.kind.eq_ignore_ascii_case("application")
                    && media.subtype.eq_ignore_ascii_case("sdp")
            }
            _ => false,
        }
    }

    fn decorate(&self, response: &mut Response) {
        if let Some(server) = &self.config.server {
            response.headers.push(HeaderName::Server, server.clone());
        }
    }

    fn new_tag(&mut self) -> String {
        format!("{:016x}", (self.random)())
    }
}

/// RFC 3261 §18.2.1 and RFC 3581 §4: record where a request really came from in its top
/// Via — `received` when the address differs from the sent-by host, and the source port in
/// an `rport` the client asked for — so that responses, which always go back to the
/// source, carry the truth. A top Via that does not decode is left alone (the
/// transaction layer refuses the request).
fn stamp_received(request: &mut Request, source: SocketAddr) {
    let Some(first) = request.headers.get(&HeaderName::Via).cloned() else {
        return;
    };
    let mut line = Headers::new();
    line.push(HeaderName::Via, first);
    let Ok(vias) = line.vias() else {
        return;
    };
    let Some(mut top) = vias.first().cloned() else {
        return;
    };
    let ip = source.ip();
    let sent_by_is_source = match &top.sent_by.host {
        Host::V4(v4) => std::net::IpAddr::V4(*v4) == ip,
        Host::V6(v6) => std::net::IpAddr::V6(*v6) == ip,
        Host::Name(_) => false,
    };
    let wants_rport = top.params.contains("rport");
    if sent_by_is_source && !wants_rport {
        return;
    }
    top.params
        .set("received", Some(Bytes::from(ip.to_string().into_bytes())));
    if wants_rport {
        top.params.set(
            "rport",
            Some(Bytes::from(source.port().to_string().into_bytes())),
        );
    }
    let mut value = top.to_string();
    for via in vias.iter().skip(1) {
        value.push_str(", ");
        value.push_str(&via.to_string());
    }
    request
        .headers
        .replace_first(&HeaderName::Via, Bytes::from(value.into_bytes()));
}

fn status_class_name(status: StatusCode) -> &'static str {
    match status.class() {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "6xx",
    }
}
