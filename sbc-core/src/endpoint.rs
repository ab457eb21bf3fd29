//! The SBC's own SIP endpoint: received bytes in, messages out.
//!
//! [`Endpoint`] parses what the transport received, runs it through the
//! [`TransactionLayer`], and inspects every request as a UAS does (RFC 3261 §8.2): method
//! inspection (`405`/`501`), header inspection (`416`, `420`), content processing
//! (`415`). Then, with a [`B2bua`] ([`Endpoint::with_b2bua`]), INVITEs, in-dialog
//! requests and the CANCELs of calls go to it, as do the responses and timeouts of its
//! transactions; the endpoint itself serves `OPTIONS` (`200 OK` with Allow, Supported and
//! Accept, RFC 3261 §11.2) and gives every other request a final response that says why
//! it is not served. Without a B2BUA it refuses INVITE with `405`.
//!
//! Messages for a new destination (a B-leg INVITE to a target) have no flow: the driver
//! asks [`Endpoint::target_of`] where they go, which knows the protocol and TLS server
//! name the B2BUA registered for the target.
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

use crate::b2bua::{B2bua, CallerIdentity};
use crate::media::MediaSessionId;
use crate::net::{Destination, FlowId, Protocol, Target};
use crate::policy::{Arrival, Boundary, Origin, PolicyEvent, PolicyStats, Verdict};
use crate::probes::Prober;
use crate::registrar;
use crate::routing::{RoutingTable, TargetChange};
use crate::sip::parse::{ParseError, parse_message, salvage_for_response};
use crate::sip::{HeaderName, Headers, Host, Message, Method, Request, Response, StatusCode, Uri};
use crate::transaction::{
    Event, LayerConfig, Peer, Reliability, TransactionId, TransactionLayer, Transmit,
};

/// The methods served without a B2BUA; what `Allow` lists then.
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
    /// The transaction user of calls, when the endpoint relays them.
    b2bua: Option<B2bua>,
    /// Trunk keep-alive probes, in the one shard that sends them.
    prober: Option<Prober>,
    /// The ingress policy (authentication, identity, registrar), when the SBC enforces
    /// one.
    boundary: Option<Boundary>,
    /// How the message being handled arrived.
    arrival: Option<Arrival>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &self.config)
            .field("transactions", &self.layer.len())
            .field("stats", &self.stats)
            .field("b2bua", &self.b2bua)
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
            b2bua: None,
            prober: None,
            boundary: None,
            arrival: None,
        }
    }

    /// The endpoint with `boundary` deciding on every request before it is served or
    /// relayed (see [`crate::policy`]); with a registrar in it, REGISTER is served.
    pub fn with_boundary(mut self, boundary: Boundary) -> Endpoint {
        self.boundary = Some(boundary);
        self
    }

    /// The ingress policy's counters, when there is one.
    pub fn policy_stats(&self) -> Option<&PolicyStats> {
        self.boundary.as_ref().map(Boundary::stats)
    }

    /// The next authentication outcome for the admission gate.
    pub fn poll_policy_event(&mut self) -> Option<PolicyEvent> {
        self.boundary.as_mut().and_then(Boundary::poll_event)
    }

    /// Whether new calls are refused with `503` and `Retry-After` (the driver says so
    /// when this shard's input backs up); in-dialog requests are served as ever.
    pub fn set_overloaded(&mut self, overloaded: bool) {
        if let Some(boundary) = self.boundary.as_mut() {
            boundary.set_overloaded(overloaded);
        }
    }

    /// The endpoint with `b2bua` as the transaction user of calls.
    pub fn with_b2bua(mut self, b2bua: B2bua) -> Endpoint {
        self.b2bua = Some(b2bua);
        self
    }

    /// The endpoint sending trunk keep-alive probes with `prober`.
    pub fn with_prober(mut self, prober: Prober) -> Endpoint {
        self.prober = Some(prober);
        self
    }

    /// The routing table changed: the prober takes the targets to watch from it.
    pub fn handle_routing(&mut self, now: Instant, table: &RoutingTable) {
        if let Some(prober) = self.prober.as_mut() {
            prober.sync(now, table);
            prober.handle_timeout(now, &mut self.layer, &mut *self.random);
        }
    }

    /// A trunk target whose reachability the keep-alive probes changed.
    pub fn poll_target_change(&mut self) -> Option<TargetChange> {
        self.prober.as_mut().and_then(Prober::poll_change)
    }

    pub fn b2bua(&self) -> Option<&B2bua> {
        self.b2bua.as_ref()
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
        self.handle_inbound_from(now, bytes, source, Arrival::of(&source));
    }

    /// [`Endpoint::handle_inbound`] with what the transport knows of how it arrived (TLS,
    /// client certificate), which the policy needs for trunks that require TLS.
    pub fn handle_inbound_from(
        &mut self,
        now: Instant,
        bytes: Bytes,
        source: Peer,
        arrival: Arrival,
    ) {
        self.arrival = Some(arrival);
        self.receive(now, bytes, source);
        self.arrival = None;
    }

    fn receive(&mut self, now: Instant, bytes: Bytes, source: Peer) {
        match parse_message(bytes.clone()) {
            Ok(Message::Request(mut request)) => {
                stamp_received(&mut request, source.remote);
                if self.shed(&request, source) {
                    return;
                }
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

    /// Under overload, answers a new call `503` with Retry-After statelessly (see
    /// [`Boundary::shed`]); `true` when it did. A retransmission of an INVITE accepted
    /// before the overload began still reaches its transaction.
    fn shed(&mut self, request: &Request, source: Peer) -> bool {
        let Some(boundary) = self.boundary.as_mut() else {
            return false;
        };
        if !boundary.is_overloaded() || self.layer.has_server_transaction(request) {
            return false;
        }
        let Some(Verdict::Reject {
            status, headers, ..
        }) = boundary.shed(request)
        else {
            return false;
        };
        let tag = self.new_tag();
        let mut response = request.make_response(status, None, Some(&tag));
        for (name, value) in headers {
            response.headers.push(name, value);
        }
        EndpointStats::count(&mut self.stats.rejected, "overload");
        self.send_stateless(response, source);
        true
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.drain_events(now);
        if let Some(prober) = self.prober.as_mut() {
            prober.handle_timeout(now, &mut self.layer, &mut *self.random);
        }
        if let Some(b2bua) = self.b2bua.as_mut() {
            b2bua.handle_timeout(now, &mut self.layer);
            self.drain_events(now);
        }
    }

    /// The relay reports that the media of `session` stopped (no packets for its
    /// inactivity timeout): the B2BUA ends the call with BYE on both legs.
    pub fn handle_media_timeout(&mut self, now: Instant, session: MediaSessionId) {
        if let Some(b2bua) = self.b2bua.as_mut() {
            b2bua.handle_media_timeout(now, &mut self.layer, session);
            self.drain_events(now);
        }
    }

    /// A STIR certificate the driver fetched for `url` (after
    /// [`Endpoint::poll_certificate_fetch`] asked for it), or why there is none: the calls
    /// waiting for it resume.
    pub fn handle_certificate(
        &mut self,
        now: Instant,
        url: &str,
        outcome: Result<
            std::sync::Arc<crate::identity::certs::CertChain>,
            crate::identity::Failure,
        >,
        fresh_until: std::time::SystemTime,
    ) {
        if let Some(b2bua) = self.b2bua.as_mut() {
            b2bua.handle_certificate(now, &mut self.layer, url, outcome, fresh_until);
            self.drain_events(now);
        }
    }

    /// Replaces the per-trunk identity (STIR/SHAKEN) policies, e.g. after trunks changed.
    pub fn handle_identity_policy(
        &mut self,
        trunks: std::collections::HashMap<String, crate::identity::policy::TrunkIdentity>,
    ) {
        if let Some(b2bua) = self.b2bua.as_mut() {
            b2bua.handle_identity_policy(trunks);
        }
    }

    /// Replaces the STIR/SHAKEN signing credential and verification roots (keys,
    /// certificates or roots changed at run time); new calls use them.
    pub fn handle_identity_material(
        &mut self,
        signer: Option<crate::identity::sign::Signer>,
        verification: Option<(
            crate::identity::verify::VerifyPolicy,
            crate::identity::certs::TrustAnchors,
        )>,
    ) {
        if let Some(b2bua) = self.b2bua.as_mut() {
            b2bua.handle_identity_material(signer, verification);
        }
    }

    /// The next STIR certificate URL to fetch (for calls waiting for their verification).
    pub fn poll_certificate_fetch(&mut self) -> Option<String> {
        self.b2bua.as_mut()?.poll_certificate_fetch()
    }

    /// An operator ends call `id` of the B2BUA (see [`B2bua::terminate`]); false when it
    /// has no such call in progress.
    pub fn handle_terminate(&mut self, now: Instant, id: u64) -> bool {
        let Some(b2bua) = self.b2bua.as_mut() else {
            return false;
        };
        let found = b2bua.terminate(now, &mut self.layer, id);
        self.drain_events(now);
        found
    }

    /// Refuse new calls (`503`) while `draining`; calls in progress go on.
    pub fn set_draining(&mut self, draining: bool) {
        if let Some(b2bua) = self.b2bua.as_mut() {
            b2bua.set_draining(draining);
        }
    }

    /// The next record of an ended call attempt (see [`B2bua::poll_call_record`]).
    pub fn poll_call_record(&mut self) -> Option<crate::b2bua::CallRecord> {
        self.b2bua.as_mut().and_then(B2bua::poll_call_record)
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
        let calls = self.b2bua.as_ref().and_then(B2bua::poll_timeout);
        let probes = self.prober.as_ref().and_then(Prober::poll_timeout);
        [self.layer.poll_timeout(), calls, probes]
            .into_iter()
            .flatten()
            .min()
    }

    /// Where the driver sends `transmit`: back on its flow when it has one (every answer
    /// does, and in-dialog requests to a caller), else to the destination a call
    /// registered for its address (protocol and TLS server name of the target), else to
    /// the address over UDP or TCP by the peer's reliability.
    pub fn target_of(&self, transmit: &Transmit) -> Target {
        let peer = transmit.destination;
        if let Some(raw) = peer.flow {
            return Target::Flow(FlowId::from_raw(raw, peer.remote));
        }
        if let Some(destination) = self
            .b2bua
            .as_ref()
            .and_then(|b2bua| b2bua.destination(&peer))
            .or_else(|| self.prober.as_ref().and_then(|p| p.destination(&peer)))
        {
            return Target::Destination(destination.clone());
        }
        let protocol = match peer.reliability {
            Reliability::Reliable => Protocol::Tcp,
            Reliability::Unreliable => Protocol::Udp,
        };
        Target::Destination(Destination::new(protocol, peer.remote))
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
            let leftover = match event {
                Event::Request {
                    transaction,
                    request,
                    source,
                } => {
                    self.on_request(now, transaction, request, source);
                    None
                }
                other => {
                    let other = match self.prober.as_mut() {
                        Some(prober) => prober.handle_event(now, other),
                        None => Some(other),
                    };
                    match (other, self.b2bua.as_mut()) {
                        (Some(other), Some(b2bua)) => {
                            b2bua.handle_event(now, &mut self.layer, other)
                        }
                        (other, _) => other,
                    }
                }
            };
            match leftover {
                // ACKs for our non-2xx are absorbed by the transactions; an ACK that no
                // call awaits has nothing to confirm.
                Some(Event::Ack { .. }) => {
                    EndpointStats::count(&mut self.stats.dropped, "stray_ack");
                }
                Some(Event::StrayResponse { response, source }) => {
                    tracing::debug!(
                        status = response.status.as_u16(),
                        source = %source.remote,
                        "response matching no transaction dropped"
                    );
                    EndpointStats::count(&mut self.stats.dropped, "stray_response");
                }
                _ => {}
            }
        }
    }

    /// A new request: refused when inspection fails, else given to the B2BUA when it
    /// takes it, else answered here.
    fn on_request(
        &mut self,
        now: Instant,
        transaction: TransactionId,
        mut request: Request,
        source: Peer,
    ) {
        let mut response = match self.inspect(&request) {
            Some((status, header)) => {
                let tag = self.new_tag();
                let mut response = request.make_response(status, None, Some(&tag));
                if let Some((name, value)) = header {
                    response.headers.push(name, value);
                }
                response
            }
            None => {
                let arrival = self.arrival.unwrap_or_else(|| Arrival::of(&source));
                let verdict = self
                    .boundary
                    .as_mut()
                    .map(|boundary| boundary.inspect(now, &mut request, source, arrival));
                match verdict {
                    Some(Verdict::Challenge {
                        status,
                        header,
                        values,
                    }) => {
                        let tag = self.new_tag();
                        let mut response = request.make_response(status, None, Some(&tag));
                        for value in values {
                            response.headers.push(header.clone(), value);
                        }
                        response
                    }
                    Some(Verdict::Reject {
                        status,
                        phrase,
                        headers,
                        ..
                    }) => {
                        let tag = self.new_tag();
                        let mut response = request.make_response(status, phrase, Some(&tag));
                        for (name, value) in headers {
                            response.headers.push(name, value);
                        }
                        response
                    }
                    Some(Verdict::Admit(admitted)) if request.method == Method::Register => {
                        self.register(now, &request, source, arrival, &admitted.origin)
                    }
                    verdict @ (Some(Verdict::Admit(_)) | None) => {
                        let identity = CallerIdentity {
                            client_certificate: arrival.client_certificate,
                            ..match &verdict {
                                Some(Verdict::Admit(admitted)) => identity_of(&admitted.origin),
                                _ => CallerIdentity::default(),
                            }
                        };
                        if let Some(b2bua) = self.b2bua.as_mut()
                            && b2bua.takes(&request, &self.layer)
                        {
                            b2bua.handle_request_from(
                                now,
                                &mut self.layer,
                                transaction,
                                request,
                                source,
                                &identity,
                            );
                            return;
                        }
                        self.serve(&request)
                    }
                }
            }
        };
        self.decorate(&mut response);
        let class = status_class_name(response.status);
        match self.layer.handle_send_response(now, response) {
            Ok(_) => EndpointStats::count(&mut self.stats.answered, class),
            Err(error) => EndpointStats::count(&mut self.stats.dropped, error.name()),
        }
    }

    /// RFC 3261 §8.2.1–§8.2.3: why a request fails method, header or content inspection
    /// (the status and a header to add), or `None` when it passes.
    fn inspect(&self, request: &Request) -> Option<(StatusCode, Option<(HeaderName, Bytes)>)> {
        let relayed = self.b2bua.is_some();
        let allow = || Some((HeaderName::Allow, Bytes::from(self.allowed())));

        // §8.2.1 Method inspection.
        match request.method {
            Method::Options | Method::Cancel => {}
            Method::Register if self.serves_register() => {}
            Method::Invite
            | Method::Bye
            | Method::Info
            | Method::Update
            | Method::Prack
            | Method::Message
                if relayed => {}
            // Outside a dialog, these have nothing to act on (RFC 3261 §12.2.2, §15.1.2;
            // RFC 3262; RFC 3311; RFC 6086); `serve` answers 481.
            Method::Bye | Method::Prack | Method::Update | Method::Info => {}
            Method::Extension(_) => return Some((StatusCode::NOT_IMPLEMENTED, allow())),
            _ => return Some((StatusCode::METHOD_NOT_ALLOWED, allow())),
        }

        // §8.2.2.1 To and Request-URI.
        if let Uri::Other { .. } = request.uri {
            return Some((StatusCode::UNSUPPORTED_URI_SCHEME, None));
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
                        let list = Bytes::from(unsupported.join(&b", "[..]));
                        return Some((
                            StatusCode::BAD_EXTENSION,
                            Some((HeaderName::Unsupported, list)),
                        ));
                    }
                }
                Err(_) => return Some((StatusCode::BAD_REQUEST, None)),
            }
        }

        // §8.2.3 Content processing: offer/answer methods carry SDP; the bodies of other
        // in-dialog requests (INFO …) and of MESSAGE (RFC 3428: any type) are relayed as
        // they are.
        let offer_answer = matches!(request.method, Method::Invite | Method::Update);
        let in_dialog = request.headers.to().is_ok_and(|to| to.tag().is_some());
        let message = request.method == Method::Message;
        if !request.body.is_empty()
            && (offer_answer || (!in_dialog && !message) || !relayed)
            && !self.accepts_body(request)
        {
            let accept = Bytes::from_static(ACCEPTED.as_bytes());
            return Some((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some((HeaderName::Accept, accept)),
            ));
        }
        None
    }

    /// The final response to a request the endpoint serves itself.
    fn serve(&mut self, request: &Request) -> Response {
        let tag = self.new_tag();
        let reply = |status: StatusCode| request.make_response(status, None, Some(&tag));
        match request.method {
            // §11.2: OPTIONS is answered as an INVITE would be, with capabilities.
            Method::Options => {
                let mut response = reply(StatusCode::OK);
                response.headers.push(HeaderName::Allow, self.allowed());
                response.headers.push(HeaderName::Accept, ACCEPTED);
                response
                    .headers
                    .push(HeaderName::Supported, self.supported_tags().join(", "));
                response
            }
            // A CANCEL matches an INVITE in progress or nothing (§9.2); a request of a
            // dialog nobody knows gets 481 (§12.2.2).
            _ => reply(StatusCode::CALL_DOES_NOT_EXIST),
        }
    }

    /// What `Allow` lists.
    fn allowed(&self) -> String {
        let base = self
            .b2bua
            .as_ref()
            .map_or(ALLOWED, |b2bua| b2bua.allowed_methods());
        if self.serves_register() {
            format!("{base}, REGISTER")
        } else {
            base.to_owned()
        }
    }

    /// Whether REGISTER is served (a registrar is configured).
    fn serves_register(&self) -> bool {
        self.boundary
            .as_ref()
            .is_some_and(|boundary| boundary.registrar().is_some())
    }

    /// A REGISTER the boundary admitted: the registrar's answer (RFC 3261 §10.3).
    fn register(
        &mut self,
        now: Instant,
        request: &Request,
        source: Peer,
        arrival: Arrival,
        origin: &Origin,
    ) -> Response {
        let tag = self.new_tag();
        let (Some(boundary), true) = (
            self.boundary.as_ref(),
            matches!(origin, Origin::User(_) | Origin::Unauthenticated),
        ) else {
            return request.make_response(StatusCode::METHOD_NOT_ALLOWED, None, Some(&tag));
        };
        let (Some(registrar), Some(aor)) = (boundary.registrar(), boundary.claimed_aor(request))
        else {
            return request.make_response(StatusCode::BAD_REQUEST, None, Some(&tag));
        };
        let outcome = registrar.handle_register(now, request, &aor, source, arrival.protocol);
        match outcome {
            Ok(bindings) => {
                let mut response = request.make_response(StatusCode::OK, None, Some(&tag));
                for contact in registrar::contact_values(&bindings, now) {
                    response.headers.push(HeaderName::Contact, contact);
                }
                // RFC 3327 §5.3: the Path is echoed to a UA that supports it.
                let supports = |tag: &str| {
                    request
                        .headers
                        .supported()
                        .unwrap_or_default()
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(tag.as_bytes()))
                };
                if supports("path") {
                    for path in request.headers.get_all(&HeaderName::Path) {
                        response.headers.push(HeaderName::Path, path.clone());
                    }
                }
                // RFC 3608: requests of this user come through us.
                if let Some(b2bua) = &self.b2bua {
                    let local = b2bua.config().local_addr(arrival.protocol);
                    let transport = match arrival.protocol {
                        Protocol::Udp => "",
                        Protocol::Tcp => ";transport=tcp",
                        Protocol::Tls => ";transport=tls",
                    };
                    response.headers.push(
                        HeaderName::ServiceRoute,
                        format!("<sip:{local}{transport};lr>"),
                    );
                }
                // RFC 5626 §6: an outbound registration is confirmed with Require.
                let outbound = bindings
                    .iter()
                    .any(|b| b.reg_id.is_some() && b.source == source.remote);
                if outbound && supports("outbound") {
                    response.headers.push(HeaderName::Require, "outbound");
                }
                response
            }
            Err(error) => {
                let mut response = request.make_response(error.status(), None, Some(&tag));
                for (name, value) in error.headers() {
                    response.headers.push(name, value);
                }
                EndpointStats::count(&mut self.stats.rejected, error.name());
                response
            }
        }
    }

    /// The option tags supported: configured, and the B2BUA's.
    fn supported_tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self.config.supported.iter().map(String::as_str).collect();
        if self.serves_register() {
            // The registrar stores Path (RFC 3327) and honours outbound (RFC 5626).
            tags.extend(["path", "outbound"]);
        }
        if let Some(b2bua) = &self.b2bua {
            for tag in b2bua.supported() {
                if !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
                    tags.push(tag);
                }
            }
        }
        tags
    }

    fn supports(&self, tag: &[u8]) -> bool {
        self.supported_tags()
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

/// Who a request admitted as `origin` comes from, for the call limits.
fn identity_of(origin: &Origin) -> CallerIdentity {
    match origin {
        Origin::Trunk(trunk) => CallerIdentity {
            user: None,
            trunk: Some(trunk.name.clone()),
            client_certificate: false,
        },
        Origin::User(identity) => CallerIdentity {
            user: Some(registrar::aor(&identity.username, &identity.realm)),
            trunk: None,
            client_certificate: false,
        },
        Origin::RegisteredFlow { aor } => CallerIdentity {
            user: Some(aor.clone()),
            trunk: None,
            client_certificate: false,
        },
        Origin::Unauthenticated => CallerIdentity::default(),
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
