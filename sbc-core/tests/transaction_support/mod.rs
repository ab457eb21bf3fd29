//! Shared helpers for the transaction tests: message builders, and a [`Harness`] that
//! drives one [`TransactionLayer`] on a virtual clock and records everything it sends and
//! tells its TU, stamped with the virtual time.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod network;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_core::sip::{HeaderName, Message, Request, Response, StatusCode, parse::parse_message};
use sbc_core::transaction::{
    Event, LayerConfig, Peer, Refused, SendError, TransactionId, TransactionLayer, TransactionState,
};

pub fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The UAC's address (192.0.2.1:5060) over UDP.
pub fn alice() -> Peer {
    Peer::unreliable(addr("192.0.2.1:5060"))
}

/// The UAS's address (192.0.2.2:5060) over UDP.
pub fn bob() -> Peer {
    Peer::unreliable(addr("192.0.2.2:5060"))
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Parses a message written with `\n` line ends.
pub fn parse(text: &str) -> Message {
    let wire = text.replace('\n', "\r\n");
    parse_message(Bytes::from(wire)).unwrap_or_else(|e| panic!("{e:?} in\n{text}"))
}

pub fn parse_request(text: &str) -> Request {
    match parse(text) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

/// What a test request looks like; [`RequestSpec::build`] prints and parses it.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    pub method: &'static str,
    pub uri: String,
    /// The top Via value (`SIP/2.0/UDP host;branch=…`).
    pub via: String,
    pub from_tag: String,
    pub to_tag: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Option<&'static str>,
}

impl RequestSpec {
    pub fn new(method: &'static str, branch: &str) -> RequestSpec {
        RequestSpec {
            method,
            uri: "sip:bob@biloxi.example.com".into(),
            via: format!("SIP/2.0/UDP pc33.atlanta.example.com;branch={branch}"),
            from_tag: "1928301774".into(),
            to_tag: None,
            call_id: "a84b4c76e66710@pc33.atlanta.example.com".into(),
            cseq: 314159,
            cseq_method: None,
        }
    }

    pub fn call_id(mut self, call_id: impl Into<String>) -> RequestSpec {
        self.call_id = call_id.into();
        self
    }

    pub fn cseq(mut self, cseq: u32) -> RequestSpec {
        self.cseq = cseq;
        self
    }

    pub fn with_to_tag(mut self, tag: &str) -> RequestSpec {
        self.to_tag = Some(tag.into());
        self
    }

    pub fn via(mut self, via: impl Into<String>) -> RequestSpec {
        self.via = via.into();
        self
    }

    pub fn uri(mut self, uri: impl Into<String>) -> RequestSpec {
        self.uri = uri.into();
        self
    }

    pub fn text(&self) -> String {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        format!(
            "{method} {uri} SIP/2.0\n\
             Via: {via}\n\
             Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKsecond\n\
             Max-Forwards: 70\n\
             Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n\
             From: Alice <sip:alice@atlanta.example.com>;tag={from_tag}\n\
             To: Bob <sip:bob@biloxi.example.com>{to_tag}\n\
             Call-ID: {call_id}\n\
             CSeq: {cseq} {cseq_method}\n\
             Contact: <sip:alice@pc33.atlanta.example.com>\n\
             Content-Length: 0\n\n",
            method = self.method,
            uri = self.uri,
            via = self.via,
            from_tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            cseq_method = self.cseq_method.unwrap_or(self.method),
        )
    }

    pub fn build(&self) -> Request {
        parse_request(&self.text())
    }
}

pub fn invite(branch: &str) -> Request {
    RequestSpec::new("INVITE", branch).build()
}

pub fn options(branch: &str) -> Request {
    RequestSpec::new("OPTIONS", branch).build()
}

/// A response to `request` with `status` and, if given, a To tag.
pub fn response(request: &Request, status: u16, to_tag: Option<&str>) -> Response {
    request.make_response(StatusCode::new(status).unwrap(), None, to_tag)
}

/// The CANCEL for `invite` (RFC 3261 §9.1): same Request-URI, Call-ID, To, From, top Via
/// and CSeq number.
pub fn cancel_for(invite: &Request) -> Request {
    let mut cancel = Request::new(sbc_core::sip::Method::Cancel, invite.uri.clone());
    let via = invite.headers.top_via().unwrap();
    cancel.headers.push(HeaderName::Via, via.to_string());
    cancel.headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        cancel
            .headers
            .push(name.clone(), invite.headers.get(&name).unwrap().clone());
    }
    let seq = invite.headers.cseq().unwrap().seq;
    cancel
        .headers
        .push(HeaderName::CSeq, format!("{seq} CANCEL"));
    cancel
}

/// A message the layer sent, as seen on the wire.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Duration,
    pub to: Peer,
    pub transaction: Option<TransactionId>,
    pub message: Message,
}

impl Sent {
    pub fn is_request(&self, method: &str) -> bool {
        matches!(&self.message, Message::Request(r) if r.method.as_str() == method)
    }

    pub fn status(&self) -> Option<u16> {
        match &self.message {
            Message::Response(r) => Some(r.status.as_u16()),
            Message::Request(_) => None,
        }
    }

    pub fn request(&self) -> &Request {
        match &self.message {
            Message::Request(r) => r,
            Message::Response(_) => panic!("sent a response, not a request"),
        }
    }
}

/// One layer on a virtual clock, with everything it sent and told its TU.
#[derive(Debug)]
pub struct Harness {
    pub layer: TransactionLayer,
    pub start: Instant,
    pub now: Instant,
    pub sent: Vec<Sent>,
    pub events: Vec<(Duration, Event)>,
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new(LayerConfig::default())
    }
}

impl Harness {
    pub fn new(config: LayerConfig) -> Harness {
        let start = Instant::now();
        Harness {
            layer: TransactionLayer::new(config),
            start,
            now: start,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn collect(&mut self) {
        let at = self.elapsed();
        while let Some(transmit) = self.layer.poll_transmit() {
            let message = parse_message(transmit.payload.clone())
                .unwrap_or_else(|e| panic!("layer sent an unparsable message: {e:?}"));
            self.sent.push(Sent {
                at,
                to: transmit.destination,
                transaction: transmit.transaction,
                message,
            });
        }
        while let Some(event) = self.layer.poll_event() {
            self.events.push((at, event));
        }
    }

    pub fn receive(&mut self, message: Message, from: Peer) -> Result<(), Refused> {
        let result = self.layer.handle_incoming(self.now, message, from);
        self.collect();
        result
    }

    pub fn receive_request(&mut self, request: Request, from: Peer) -> Result<(), Refused> {
        self.receive(Message::Request(request), from)
    }

    /// Receives a response (they are never refused).
    pub fn receive_response(&mut self, response: Response, from: Peer) {
        self.receive(Message::Response(response), from).unwrap();
    }

    pub fn send_request(&mut self, request: Request, to: Peer) -> TransactionId {
        let id = self
            .layer
            .handle_send_request(self.now, request, to)
            .unwrap();
        self.collect();
        id
    }

    pub fn respond(&mut self, response: Response) -> Result<TransactionId, SendError> {
        let result = self.layer.handle_send_response(self.now, response);
        self.collect();
        result
    }

    pub fn transport_error(&mut self, id: TransactionId) {
        self.layer.handle_transport_error(self.now, id);
        self.collect();
    }

    /// Moves the clock to `offset` after the start, firing every timer due on the way at
    /// its own deadline.
    pub fn advance_to(&mut self, offset: Duration) {
        let until = self.start + offset;
        while let Some(deadline) = self.layer.poll_timeout() {
            if deadline > until {
                break;
            }
            self.now = self.now.max(deadline);
            self.layer.handle_timeout(self.now);
            self.collect();
        }
        self.now = self.now.max(until);
    }

    pub fn advance(&mut self, by: Duration) {
        let offset = self.elapsed() + by;
        self.advance_to(offset);
    }

    /// Fires timers until none is left (at most `limit` virtual seconds ahead).
    pub fn run_to_idle(&mut self) {
        let limit = self.elapsed() + Duration::from_secs(600);
        self.advance_to(limit);
    }

    pub fn state(&self, id: TransactionId) -> Option<TransactionState> {
        self.layer.state(id)
    }

    /// Times (ms) at which a request of `method` was sent.
    pub fn request_times(&self, method: &str) -> Vec<u128> {
        self.sent
            .iter()
            .filter(|s| s.is_request(method))
            .map(|s| s.at.as_millis())
            .collect()
    }

    /// Times (ms) at which a response with `status` was sent.
    pub fn response_times(&self, status: u16) -> Vec<u128> {
        self.sent
            .iter()
            .filter(|s| s.status() == Some(status))
            .map(|s| s.at.as_millis())
            .collect()
    }

    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }

    pub fn take_events(&mut self) -> Vec<(Duration, Event)> {
        std::mem::take(&mut self.events)
    }

    /// The events, without their times.
    pub fn event_list(&self) -> Vec<Event> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// How many [`Event::Request`]s the TU got.
    pub fn requests_seen(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Request { .. }))
            .count()
    }

    /// The statuses of the [`Event::Response`]s the TU got.
    pub fn responses_seen(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Response { response, .. } => Some(response.status.as_u16()),
                _ => None,
            })
            .collect()
    }
}
