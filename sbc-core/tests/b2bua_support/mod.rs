//! Shared helpers for the B2BUA tests: an endpoint with a B2BUA on a virtual clock, a fake
//! relay and a fixed router, and two fake user agents (the caller and the callees) that
//! exchange parsed messages with it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_core::b2bua::{
    B2bua, B2buaConfig, CallRouter, NoRoute, RouteChoice, Target, TargetOutcome,
};
use sbc_core::endpoint::{Endpoint, EndpointConfig};
use sbc_core::media::security::{
    CertFingerprint, IceCredentials, LegSecurity, MediaPolicy, SdesKey, SrtpSuite,
};
use sbc_core::media::{
    Leg, LegAddr, MediaAllocation, MediaAnchor, MediaBundle, MediaError, MediaSessionId,
    RemoteMedia, StreamAddrs,
};
use sbc_core::net::{self, Protocol};
use sbc_core::policy::Arrival;
use sbc_core::sip::{
    Contact, HeaderName, Message, NameAddr, Request, Response, StatusCode, parse::parse_message,
};
use sbc_core::transaction::Peer;

pub fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The SBC's own SIP address.
pub const SBC: &str = "203.0.113.1:5060";
/// The caller's address (UDP).
pub const CALLER: &str = "192.0.2.10:5060";
/// The callees (trunk targets), UDP.
pub const CALLEE: &str = "198.51.100.20:5060";
pub const CALLEE_2: &str = "198.51.100.21:5060";
/// The relay's addresses offered to each leg.
pub const RELAY_A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 100));
pub const RELAY_B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 200));

pub fn caller() -> Peer {
    Peer::unreliable(addr(CALLER))
}

pub fn callee() -> Peer {
    Peer::unreliable(addr(CALLEE))
}

pub fn callee_2() -> Peer {
    Peer::unreliable(addr(CALLEE_2))
}

// ---- the fake relay ----

/// Everything the B2BUA asked the relay.
#[derive(Debug, Default)]
pub struct MediaLog {
    pub allocated: Vec<(MediaSessionId, usize)>,
    pub updates: Vec<(MediaSessionId, usize, Leg, RemoteMedia)>,
    pub added: Vec<(MediaSessionId, usize)>,
    pub released: Vec<MediaSessionId>,
    pub live: BTreeSet<MediaSessionId>,
    /// Streams per live session.
    pub streams: std::collections::BTreeMap<MediaSessionId, usize>,
    pub refuse_allocation: bool,
    /// Every `protect` call, in order.
    pub protected: Vec<(MediaSessionId, usize, Leg, LegSecurity)>,
    /// Every `bundle` call, in order.
    pub bundles: Vec<(MediaSessionId, Leg, Option<MediaBundle>)>,
    /// Keys handed out so far (each key's bytes are its number, repeated).
    pub keys_made: u8,
    next_session: u64,
    next_port: u16,
}

impl MediaLog {
    /// The last address the relay was told for `leg` of stream `stream` of `session`.
    pub fn remote(&self, session: MediaSessionId, stream: usize, leg: Leg) -> Option<RemoteMedia> {
        self.updates
            .iter()
            .rev()
            .find(|(s, i, l, _)| *s == session && *i == stream && *l == leg)
            .map(|(_, _, _, remote)| *remote)
    }
}

#[derive(Debug, Clone)]
pub struct FakeRelay(pub Arc<Mutex<MediaLog>>);

impl FakeRelay {
    fn streams(log: &mut MediaLog, count: usize) -> Vec<StreamAddrs> {
        (0..count)
            .map(|_| {
                let port = 20000 + log.next_port;
                log.next_port += 2;
                let leg = |ip| LegAddr {
                    rtp: SocketAddr::new(ip, port),
                    rtcp: SocketAddr::new(ip, port + 1),
                };
                StreamAddrs {
                    a: leg(RELAY_A),
                    b: leg(RELAY_B),
                }
            })
            .collect()
    }
}

impl MediaAnchor for FakeRelay {
    fn allocate(&mut self, streams: usize) -> Result<MediaAllocation, MediaError> {
        let mut log = self.0.lock().unwrap();
        if log.refuse_allocation {
            return Err(MediaError::PortsExhausted);
        }
        log.next_session += 1;
        let session = MediaSessionId(log.next_session);
        log.allocated.push((session, streams));
        log.live.insert(session);
        log.streams.insert(session, streams);
        let streams = FakeRelay::streams(&mut log, streams);
        Ok(MediaAllocation { session, streams })
    }

    fn update(
        &mut self,
        session: MediaSessionId,
        stream: usize,
        leg: Leg,
        remote: RemoteMedia,
    ) -> Result<(), MediaError> {
        let mut log = self.0.lock().unwrap();
        if !log.live.contains(&session) {
            return Err(MediaError::UnknownSession);
        }
        if stream >= log.streams.get(&session).copied().unwrap_or(0) {
            return Err(MediaError::UnknownStream);
        }
        log.updates.push((session, stream, leg, remote));
        Ok(())
    }

    fn add_streams(
        &mut self,
        session: MediaSessionId,
        count: usize,
    ) -> Result<Vec<StreamAddrs>, MediaError> {
        let mut log = self.0.lock().unwrap();
        if !log.live.contains(&session) {
            return Err(MediaError::UnknownSession);
        }
        log.added.push((session, count));
        *log.streams.entry(session).or_default() += count;
        Ok(FakeRelay::streams(&mut log, count))
    }

    fn release(&mut self, session: MediaSessionId) {
        let mut log = self.0.lock().unwrap();
        log.live.remove(&session);
        log.released.push(session);
    }

    fn protect(
        &mut self,
        session: MediaSessionId,
        stream: usize,
        leg: Leg,
        security: &LegSecurity,
    ) -> Result<(), MediaError> {
        let mut log = self.0.lock().unwrap();
        log.protected.push((session, stream, leg, security.clone()));
        Ok(())
    }

    fn bundle(
        &mut self,
        session: MediaSessionId,
        leg: Leg,
        bundle: Option<&MediaBundle>,
    ) -> Result<(), MediaError> {
        let mut log = self.0.lock().unwrap();
        log.bundles.push((session, leg, bundle.cloned()));
        Ok(())
    }

    fn new_sdes_key(&mut self, suite: SrtpSuite) -> Result<SdesKey, MediaError> {
        let mut log = self.0.lock().unwrap();
        log.keys_made += 1;
        Ok(SdesKey::new(vec![log.keys_made; suite.key_salt_len()]))
    }

    fn new_ice_credentials(&mut self, remote_ufrag: &str) -> Result<IceCredentials, MediaError> {
        Ok(IceCredentials {
            local_ufrag: "sbcufrag".into(),
            local_pwd: "sbc-ice-password-24chars".into(),
            remote_ufrag: remote_ufrag.into(),
        })
    }

    fn dtls_fingerprint(&self) -> Option<CertFingerprint> {
        Some(CertFingerprint {
            hash: "sha-256".into(),
            digest: vec![0xAB; 32],
        })
    }
}

/// A trunk policy object with a media security policy (headers all pass).
#[derive(Debug, Clone, Default)]
pub struct MediaPolicyFilter(pub MediaPolicy);

impl sbc_core::b2bua::HeaderFilter for MediaPolicyFilter {
    fn passes(&self, _: &sbc_core::sip::HeaderName) -> bool {
        true
    }

    fn media(&self) -> MediaPolicy {
        self.0.clone()
    }
}

// ---- the fixed router ----

#[derive(Debug, Clone)]
pub struct FixedRouter {
    pub targets: Vec<Target>,
    pub source_trunk: Option<String>,
    pub refuse: Option<NoRoute>,
    pub reports: Arc<Mutex<Vec<(SocketAddr, TargetOutcome)>>>,
    /// The media security policies of the caller's and the callee's side.
    pub caller_media: MediaPolicy,
    pub callee_media: MediaPolicy,
}

impl CallRouter for FixedRouter {
    fn route(
        &mut self,
        _source: SocketAddr,
        _request: &Request,
        _random: &mut dyn FnMut() -> u64,
    ) -> Result<RouteChoice, NoRoute> {
        if let Some(refusal) = self.refuse {
            return Err(refusal);
        }
        Ok(RouteChoice {
            trunk: "carrier".into(),
            source_trunk: self.source_trunk.clone(),
            targets: self.targets.clone(),
            toward_callee: Arc::new(MediaPolicyFilter(self.callee_media.clone())),
            toward_caller: Arc::new(MediaPolicyFilter(self.caller_media.clone())),
        })
    }

    fn report(&mut self, target: &Target, outcome: TargetOutcome) {
        self.reports.lock().unwrap().push((target.addr, outcome));
    }
}

// ---- the harness ----

/// One message the endpoint sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub to: SocketAddr,
    pub target: net::Target,
    pub message: Message,
    pub bytes: Bytes,
}

pub struct Harness {
    pub endpoint: Endpoint,
    pub now: Instant,
    pub start: Instant,
    pub media: Arc<Mutex<MediaLog>>,
    pub reports: Arc<Mutex<Vec<(SocketAddr, TargetOutcome)>>>,
    /// Sent and not yet taken by the test.
    pub outbox: VecDeque<Sent>,
    /// Everything ever sent.
    pub log: Vec<Sent>,
    /// What was sent and does not parse.
    pub unparsable: Vec<Bytes>,
}

pub struct Options {
    pub targets: Vec<SocketAddr>,
    /// The trunk calls come from (for identity policy).
    pub source_trunk: Option<String>,
    pub identity: Option<sbc_core::identity::service::IdentityService>,
    pub refuse: Option<NoRoute>,
    pub caller_media: MediaPolicy,
    pub callee_media: MediaPolicy,
    pub config: B2buaConfig,
    pub endpoint: EndpointConfig,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            targets: vec![addr(CALLEE)],
            source_trunk: None,
            identity: None,
            refuse: None,
            caller_media: MediaPolicy::default(),
            callee_media: MediaPolicy::default(),
            config: B2buaConfig {
                local: vec![(Protocol::Udp, addr(SBC))],
                domain: Some("sbc.example.net".into()),
                ..B2buaConfig::default()
            },
            endpoint: EndpointConfig::default(),
        }
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(Options::default())
    }

    pub fn with_targets(targets: &[&str]) -> Harness {
        Harness::with(Options {
            targets: targets.iter().map(|t| addr(t)).collect(),
            ..Options::default()
        })
    }

    pub fn with(options: Options) -> Harness {
        let media = Arc::new(Mutex::new(MediaLog::default()));
        let reports = Arc::new(Mutex::new(Vec::new()));
        let router = FixedRouter {
            targets: options
                .targets
                .iter()
                .map(|&addr| Target::new(Protocol::Udp, addr))
                .collect(),
            source_trunk: options.source_trunk,
            refuse: options.refuse,
            reports: Arc::clone(&reports),
            caller_media: options.caller_media,
            callee_media: options.callee_media,
        };
        let mut counter = 0x1000_u64;
        let b2bua = B2bua::new(
            options.config,
            Box::new(router),
            Box::new(FakeRelay(Arc::clone(&media))),
            move || {
                counter += 1;
                counter.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            },
        );
        let b2bua = match options.identity {
            Some(identity) => b2bua.with_identity(identity),
            None => b2bua,
        };
        let mut tags = 0_u64;
        let endpoint = Endpoint::new(options.endpoint, move || {
            tags += 1;
            tags
        })
        .with_b2bua(b2bua);
        let start = Instant::now();
        Harness {
            endpoint,
            now: start,
            start,
            media,
            reports,
            outbox: VecDeque::new(),
            log: Vec::new(),
            unparsable: Vec::new(),
        }
    }

    /// Feeds a message from `from` and collects what is sent.
    pub fn receive(&mut self, from: Peer, message: impl Into<Bytes>) {
        self.endpoint.handle_inbound(self.now, message.into(), from);
        self.collect();
    }

    /// Feeds a message that arrived as `arrival` says (transport, client certificate).
    pub fn receive_as(&mut self, from: Peer, message: impl Into<Bytes>, arrival: Arrival) {
        self.endpoint
            .handle_inbound_from(self.now, message.into(), from, arrival);
        self.collect();
    }

    pub fn receive_message(&mut self, from: Peer, message: &Message) {
        self.receive(from, message.to_bytes());
    }

    fn collect(&mut self) {
        while let Some(transmit) = self.endpoint.poll_transmit() {
            let target = self.endpoint.target_of(&transmit);
            let to = match &target {
                net::Target::Flow(_) => transmit.destination.remote,
                net::Target::Destination(destination) => destination.addr,
            };
            // The endpoint's stateless answer to a malformed request copies its damaged
            // Via as it was (RFC 3261 §8.2.6.2); such answers are kept aside.
            let Ok(message) = parse_message(transmit.payload.clone()) else {
                self.unparsable.push(transmit.payload);
                continue;
            };
            let sent = Sent {
                to,
                target,
                message,
                bytes: transmit.payload,
            };
            self.log.push(sent.clone());
            self.outbox.push_back(sent);
        }
    }

    /// Moves the clock to `now + by`, firing every timer due on the way.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.endpoint.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.endpoint.handle_timeout(self.now);
            self.collect();
        }
        self.now = until;
    }

    /// The driver hands back a certificate fetch.
    pub fn certificate(
        &mut self,
        url: &str,
        outcome: Result<Arc<sbc_core::identity::certs::CertChain>, sbc_core::identity::Failure>,
    ) {
        let fresh_until = std::time::SystemTime::now() + Duration::from_secs(600);
        self.endpoint
            .handle_certificate(self.now, url, outcome, fresh_until);
        self.collect();
    }

    /// An operator ends call `id`; collects what that sends.
    pub fn terminate(&mut self, id: u64) -> bool {
        let found = self.endpoint.handle_terminate(self.now, id);
        self.collect();
        found
    }

    /// The relay's media timeout for `session`.
    pub fn media_timeout(&mut self, session: MediaSessionId) {
        self.endpoint.handle_media_timeout(self.now, session);
        self.collect();
    }

    /// Takes every message sent to `to` so far.
    pub fn take(&mut self, to: &str) -> Vec<Message> {
        let to = addr(to);
        let mut taken = Vec::new();
        self.outbox.retain(|sent| {
            if sent.to == to {
                taken.push(sent.message.clone());
                false
            } else {
                true
            }
        });
        taken
    }

    /// The next message sent to `to`, skipping `100 Trying`.
    pub fn next(&mut self, to: &str) -> Message {
        let to_addr = addr(to);
        loop {
            let index = self
                .outbox
                .iter()
                .position(|sent| sent.to == to_addr)
                .unwrap_or_else(|| panic!("nothing sent to {to}; outbox: {:#?}", self.outbox));
            let sent = self.outbox.remove(index).unwrap();
            if let Message::Response(response) = &sent.message
                && response.status == StatusCode::TRYING
            {
                continue;
            }
            return sent.message;
        }
    }

    pub fn request_to(&mut self, to: &str, method: &str) -> Request {
        match self.next(to) {
            Message::Request(request) if request.method.as_str() == method => request,
            other => panic!("expected a {method} to {to}, got {}", show(&other)),
        }
    }

    pub fn response_to(&mut self, to: &str, status: u16) -> Response {
        match self.next(to) {
            Message::Response(response) if response.status.as_u16() == status => response,
            other => panic!("expected a {status} to {to}, got {}", show(&other)),
        }
    }

    /// Asserts nothing (but 100 Trying) waits for `to`.
    pub fn nothing_to(&mut self, to: &str) {
        let to_addr = addr(to);
        let pending: Vec<String> = self
            .outbox
            .iter()
            .filter(|sent| sent.to == to_addr)
            .filter(|sent| !matches!(&sent.message, Message::Response(r) if r.status == StatusCode::TRYING))
            .map(|sent| show(&sent.message))
            .collect();
        assert!(
            pending.is_empty(),
            "unexpected messages to {to}: {pending:#?}"
        );
    }

    pub fn calls(&self) -> usize {
        self.endpoint.b2bua().unwrap().calls()
    }

    pub fn records(&self) -> usize {
        self.endpoint.b2bua().unwrap().records()
    }

    pub fn media(&self) -> std::sync::MutexGuard<'_, MediaLog> {
        self.media.lock().unwrap()
    }
}

pub fn show(message: &Message) -> String {
    String::from_utf8_lossy(&message.to_bytes()).into_owned()
}

// ---- SDP ----

pub fn caller_sdp() -> String {
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=call\r\nc=IN IP4 192.0.2.10\r\n\
t=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n"
        .into()
}

pub fn callee_sdp() -> String {
    "v=0\r\no=bob 2808844564 2808844564 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\n\
t=0 0\r\nm=audio 39876 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        .into()
}

/// The `c=` address and `m=` port of the first stream of an SDP body.
pub fn sdp_media(body: &[u8]) -> (String, u16) {
    let text = std::str::from_utf8(body).unwrap();
    let ip = text
        .lines()
        .filter_map(|l| l.strip_prefix("c=IN IP4 "))
        .next_back()
        .unwrap()
        .trim()
        .to_string();
    let port = text
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    (ip, port)
}

// ---- fake user agents ----

/// One side of a dialog as a fake UA keeps it.
#[derive(Clone, Debug)]
pub struct Ua {
    pub peer: Peer,
    /// The user part of our Contact.
    pub user: String,
    pub call_id: String,
    /// Our From/To value with our tag.
    pub local: String,
    /// The other side's with its tag.
    pub remote: String,
    pub remote_target: String,
    pub cseq: u32,
    pub branches: u32,
}

impl Ua {
    /// The callee's side, from the INVITE it received and the tag it answers with.
    pub fn callee(invite: &Request, peer: Peer, tag: &str) -> Ua {
        let to = invite.headers.get(&HeaderName::To).unwrap();
        let from = invite.headers.get(&HeaderName::From).unwrap();
        Ua {
            peer,
            user: "callee-ua".into(),
            call_id: text(invite.headers.get(&HeaderName::CallId).unwrap()),
            local: format!("{};tag={tag}", text(to)),
            remote: text(from),
            remote_target: contact_uri(&invite.headers),
            cseq: 1000,
            branches: 0,
        }
    }

    /// A response to `request` from this UA.
    pub fn respond(&self, request: &Request, status: u16, body: Option<&str>) -> Message {
        let tag = self.local.rsplit(";tag=").next().unwrap().to_string();
        let mut response =
            request.make_response(StatusCode::new(status).unwrap(), None, Some(&tag));
        if (101..300).contains(&status) {
            response.headers.push(
                HeaderName::Contact,
                format!("<sip:{}@{}>", self.user, self.peer.remote),
            );
        }
        if let Some(body) = body {
            response
                .headers
                .push(HeaderName::ContentType, "application/sdp");
            response.body = Bytes::from(body.to_string());
        }
        Message::Response(response)
    }

    /// An in-dialog request from this UA.
    pub fn request(&mut self, method: &str, body: Option<&str>) -> Message {
        self.cseq += 1;
        self.request_with_cseq(method, self.cseq, body)
    }

    pub fn request_with_cseq(&mut self, method: &str, cseq: u32, body: Option<&str>) -> Message {
        self.branches += 1;
        let tag = self
            .local
            .rsplit(";tag=")
            .next()
            .unwrap_or("ua")
            .to_string();
        let mut text = format!(
            "{method} {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-{tag}-{}\r\n\
             Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:{}@{}>\r\n",
            self.remote_target,
            self.peer.remote,
            self.branches,
            self.local,
            self.remote,
            self.call_id,
            self.user,
            self.peer.remote,
        );
        match body {
            Some(body) => {
                text.push_str(&format!(
                    "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ));
            }
            None => text.push_str("Content-Length: 0\r\n\r\n"),
        }
        parse_message(Bytes::from(text)).unwrap()
    }
}

/// The caller: sends the INVITE, then keeps the dialog the SBC's answer forms.
pub struct Caller {
    pub invite: Request,
    pub ua: Option<Ua>,
}

impl Caller {
    pub fn invite(call_id: &str, body: Option<&str>) -> Caller {
        Caller::invite_with(call_id, body, "")
    }

    /// An INVITE with `extra` header lines (each ending in CRLF).
    pub fn invite_with(call_id: &str, body: Option<&str>, extra: &str) -> Caller {
        let mut text = format!(
            "INVITE sip:+15551234567@sbc.example.net SIP/2.0\r\n\
             Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-caller-{call_id};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@caller.example.com>;tag=alice-{call_id}\r\n\
             To: <sip:+15551234567@sbc.example.net>\r\n\
             Call-ID: {call_id}@caller.example.com\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:alice@{CALLER}>\r\n\
             Record-Route: <sip:proxy.caller.example.com;lr>\r\n\
             User-Agent: CallerPhone/1.0\r\n\
             X-Custom: kept\r\n{extra}"
        );
        match body {
            Some(body) => text.push_str(&format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )),
            None => text.push_str("Content-Length: 0\r\n\r\n"),
        }
        let invite = match parse_message(Bytes::from(text)).unwrap() {
            Message::Request(request) => request,
            Message::Response(_) => unreachable!(),
        };
        Caller { invite, ua: None }
    }

    pub fn message(&self) -> Message {
        Message::Request(self.invite.clone())
    }

    /// Learns the dialog from the SBC's 2xx (or tagged 18x).
    pub fn answered(&mut self, response: &Response) {
        self.ua = Some(Ua {
            peer: caller(),
            user: "alice".into(),
            call_id: text(self.invite.headers.get(&HeaderName::CallId).unwrap()),
            local: text(self.invite.headers.get(&HeaderName::From).unwrap()),
            remote: text(response.headers.get(&HeaderName::To).unwrap()),
            remote_target: contact_uri(&response.headers),
            cseq: 1,
            branches: 100,
        });
    }

    /// The ACK for the SBC's 2xx.
    pub fn ack(&mut self, body: Option<&str>) -> Message {
        let ua = self.ua.as_mut().expect("answered");
        ua.request_with_cseq("ACK", 1, body)
    }

    pub fn request(&mut self, method: &str, body: Option<&str>) -> Message {
        self.ua.as_mut().expect("answered").request(method, body)
    }

    /// The CANCEL of the INVITE.
    pub fn cancel(&self) -> Message {
        let mut cancel = Request::new(sbc_core::sip::Method::Cancel, self.invite.uri.clone());
        for header in &self.invite.headers {
            if matches!(
                header.name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::MaxForwards
            ) {
                cancel
                    .headers
                    .push(header.name.clone(), header.value.clone());
            }
        }
        cancel.headers.push(HeaderName::CSeq, "1 CANCEL");
        Message::Request(cancel)
    }
}

pub fn text(value: &Bytes) -> String {
    String::from_utf8_lossy(value).into_owned()
}

pub fn contact_uri(headers: &sbc_core::sip::Headers) -> String {
    match headers.contact() {
        Ok(Some(Contact::Addresses(list))) if !list.is_empty() => list[0].uri.to_string(),
        _ => "sip:no-contact.invalid".into(),
    }
}

pub fn to_tag(response: &Response) -> String {
    text(response.headers.to().unwrap().tag().unwrap())
}

pub fn header(message: &Message, name: &str) -> Option<String> {
    message
        .headers()
        .get(&HeaderName::from_bytes(name.as_bytes()))
        .map(text)
}

pub fn name_addr(value: &str) -> NameAddr {
    NameAddr::parse(value.as_bytes()).unwrap()
}

/// Sets up a call to the 200 OK and both ACKs: returns the caller and the callee's UA.
pub fn establish(h: &mut Harness, call_id: &str) -> (Caller, Ua) {
    let mut caller = Caller::invite(call_id, Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), &format!("bob-{call_id}"));
    h.receive_message(callee(), &ua.respond(&invite, 180, None));
    let _ringing = h.response_to(CALLER, 180);
    h.receive_message(callee(), &ua.respond(&invite, 200, Some(&callee_sdp())));
    let ack = h.request_to(CALLEE, "ACK");
    assert_eq!(header(&Message::Request(ack), "CSeq").unwrap(), "1 ACK");
    let ok = h.response_to(CALLER, 200);
    caller.answered(&ok);
    let ack = caller.ack(None);
    h.receive_message(self::caller(), &ack);
    h.nothing_to(CALLEE);
    (caller, ua)
}
