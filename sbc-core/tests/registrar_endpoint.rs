//! REGISTER and calls to registered users through the whole endpoint (parser,
//! transactions, boundary, registrar, B2BUA with the locating router), on a virtual
//! clock: the 401 → 200 exchange with Contact expiries, Path echoed, Service-Route and
//! `Require: outbound`; 423 with Min-Expires; a REGISTER that would move another user's
//! binding; and a call to a registered user going out on its registered flow, through
//! its Path, to its Contact URI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;
mod policy_support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use b2bua_support::{FakeRelay, FixedRouter, Harness, MediaLog, SBC};
use bytes::Bytes;
use policy_support::{Answer, addr};
use sbc_core::auth::{Algorithm, Authenticator, CredentialTable, DigestConfig};
use sbc_core::b2bua::{B2bua, B2buaConfig, PassAll, Target};
use sbc_core::endpoint::{Endpoint, EndpointConfig};
use sbc_core::net::{self, Protocol};
use sbc_core::policy::{
    Boundary, BoundaryConfig, CallLimits, CallLimitsConfig, TrunkDirectory, TrunkPolicy,
};
use sbc_core::registrar::{LocatingRouter, Registrar, RegistrarConfig, SharedRegistrar};
use sbc_core::sip::{HeaderName, Message, Response};
use sbc_core::transaction::Peer;

const REALM: &str = "sbc.test";
/// A trusted trunk, where calls to registered users come from.
const TRUNK: &str = "198.51.100.7:5060";
/// The carrier the fixed router sends every other call to.
const CARRIER: &str = "198.51.100.20:5060";
/// The phone, over TCP.
const PHONE: &str = "192.0.2.50:40123";
const PHONE_FLOW: u64 = 7;

struct OneTrunk;

impl TrunkDirectory for OneTrunk {
    fn trunk_of(&self, source: std::net::SocketAddr) -> Option<TrunkPolicy> {
        (source.ip() == addr(TRUNK).ip()).then(|| TrunkPolicy {
            name: "core".into(),
            trusted: true,
            require_tls: false,
            require_client_cert: false,
            store_and_forward: false,
        })
    }
}

fn harness() -> (Harness, SharedRegistrar) {
    harness_with(None)
}

fn harness_with(limits: Option<Arc<CallLimits>>) -> (Harness, SharedRegistrar) {
    let registrar = Registrar::shared(RegistrarConfig {
        min_expires: std::time::Duration::from_secs(60),
        ..RegistrarConfig::default()
    });
    let media = Arc::new(Mutex::new(MediaLog::default()));
    let reports = Arc::new(Mutex::new(Vec::new()));
    let fixed = FixedRouter {
        targets: vec![Target::new(Protocol::Udp, addr(CARRIER))],
        source_trunk: None,
        refuse: None,
        reports: Arc::clone(&reports),
        caller_media: Default::default(),
        callee_media: Default::default(),
    };
    let router = LocatingRouter::new(
        Arc::clone(&registrar),
        Box::new(fixed),
        REALM.into(),
        Vec::new(),
        Arc::new(PassAll),
        Instant::now,
    );
    let mut counter = 0x2000_u64;
    let b2bua = B2bua::new(
        B2buaConfig {
            local: vec![(Protocol::Udp, addr(SBC)), (Protocol::Tcp, addr(SBC))],
            call_limits: limits,
            ..B2buaConfig::default()
        },
        Box::new(router),
        Box::new(FakeRelay(Arc::clone(&media))),
        move || {
            counter += 1;
            counter.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        },
    );
    let start = Instant::now();
    let boundary = Boundary::new(
        BoundaryConfig {
            realm: REALM.into(),
            ..BoundaryConfig::default()
        },
        Authenticator::new(DigestConfig::default(), &[9; 32], start, 0),
        Arc::new(
            CredentialTable::new()
                .with_password(REALM, "alice", "alice-pw")
                .with_password(REALM, "bob", "bob-pw"),
        ),
        Arc::new(OneTrunk),
        Some(Arc::clone(&registrar)),
    );
    let mut tags = 0_u64;
    let endpoint = Endpoint::new(EndpointConfig::default(), move || {
        tags += 1;
        tags
    })
    .with_b2bua(b2bua)
    .with_boundary(boundary);
    let harness = Harness {
        endpoint,
        now: start,
        start,
        media,
        reports,
        outbox: VecDeque::new(),
        log: Vec::new(),
        unparsable: Vec::new(),
    };
    (harness, registrar)
}

fn phone() -> Peer {
    Peer::reliable(addr(PHONE), Some(PHONE_FLOW))
}

fn register_text(user: &str, cseq: u32, extra: &str, authorization: Option<&str>) -> String {
    let auth =
        authorization.map_or_else(String::new, |value| format!("Authorization: {value}\r\n"));
    format!(
        "REGISTER sip:{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bK-reg-{user}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{REALM}>;tag=r{cseq}\r\n\
         To: <sip:{user}@{REALM}>\r\n\
         Call-ID: reg-{user}@10.0.0.5\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {extra}{auth}Content-Length: 0\r\n\r\n"
    )
}

fn response(h: &mut Harness, status: u16) -> Response {
    h.response_to(PHONE, status)
}

fn header_values(response: &Response, name: &str) -> Vec<String> {
    response
        .headers
        .get_all(&HeaderName::from_bytes(name.as_bytes()))
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .collect()
}

/// REGISTER, 401, REGISTER with the answer: the final response.
fn register_with_digest(
    h: &mut Harness,
    user: &str,
    password: &str,
    extra: &str,
    cseq: u32,
) -> Response {
    h.receive(phone(), register_text(user, cseq, extra, None));
    let challenge = response(h, 401);
    let values: Vec<Bytes> = challenge
        .headers
        .get_all(&HeaderName::WwwAuthenticate)
        .cloned()
        .collect();
    let answer = Answer::new(user, password, "REGISTER", "sip:sbc.test")
        .to(&policy_support::challenge_for(&values, Algorithm::Sha256));
    h.receive(phone(), register_text(user, cseq + 1, extra, Some(&answer)));
    match h.next(PHONE) {
        Message::Response(response) => response,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_register_is_challenged_then_bound_with_path_service_route_and_outbound() {
    let (mut h, registrar) = harness();
    let extra = "Contact: <sip:alice@10.0.0.5:5060;transport=tcp>;+sip.instance=\"<urn:uuid:1>\";reg-id=1;expires=600\r\n\
                 Supported: path, outbound\r\n\
                 Path: <sip:edge.example;lr>\r\n";
    let ok = register_with_digest(&mut h, "alice", "alice-pw", extra, 1);
    assert_eq!(ok.status.as_u16(), 200, "{ok:?}");
    let contacts = header_values(&ok, "Contact");
    assert_eq!(contacts.len(), 1);
    assert!(contacts[0].ends_with(";expires=600"), "{contacts:?}");
    assert_eq!(header_values(&ok, "Path"), vec!["<sip:edge.example;lr>"]);
    assert_eq!(
        header_values(&ok, "Service-Route"),
        vec![format!("<sip:{SBC};transport=tcp;lr>")]
    );
    assert_eq!(header_values(&ok, "Require"), vec!["outbound"]);
    let bindings = registrar.lookup(h.now, "sip:alice@sbc.test");
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].flow, Some(PHONE_FLOW));
    assert_eq!(bindings[0].protocol, Protocol::Tcp);

    // A phone that supports neither gets neither echoed.
    let plain = register_with_digest(
        &mut h,
        "bob",
        "bob-pw",
        "Contact: <sip:bob@10.0.0.5:5060;transport=tcp>\r\nPath: <sip:edge.example;lr>\r\n",
        10,
    );
    assert_eq!(plain.status.as_u16(), 200);
    assert!(header_values(&plain, "Path").is_empty());
    assert!(header_values(&plain, "Require").is_empty());
    // The registrar's Allow and Supported say so.
    h.receive(
        phone(),
        "OPTIONS sip:sbc.test SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5;branch=z9hG4bK-o\r\n\
         From: <sip:x@y>;tag=1\r\nTo: <sip:sbc.test>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
    );
    let options = response(&mut h, 200);
    assert!(header_values(&options, "Allow")[0].contains("REGISTER"));
    let supported = header_values(&options, "Supported").join(",");
    assert!(
        supported.contains("path") && supported.contains("outbound"),
        "{supported}"
    );
}

#[test]
fn a_brief_expiry_gets_423_with_min_expires_after_authentication() {
    let (mut h, registrar) = harness();
    let brief = register_with_digest(
        &mut h,
        "alice",
        "alice-pw",
        "Contact: <sip:alice@10.0.0.5>\r\nExpires: 30\r\n",
        1,
    );
    assert_eq!(brief.status.as_u16(), 423);
    assert_eq!(header_values(&brief, "Min-Expires"), vec!["60"]);
    assert!(registrar.is_empty());
    let stats = h.endpoint.stats();
    assert_eq!(stats.rejected.get("interval_too_brief"), Some(&1));
}

#[test]
fn a_register_never_moves_a_binding_without_its_users_credentials() {
    let (mut h, registrar) = harness();
    let contact = "Contact: <sip:alice@10.0.0.5:5060;transport=tcp>\r\n";
    assert_eq!(
        register_with_digest(&mut h, "alice", "alice-pw", contact, 1)
            .status
            .as_u16(),
        200
    );

    // Without credentials: only a challenge, the binding stays.
    let intruder = Peer::reliable(addr("192.0.2.66:5060"), Some(99));
    let hijack = "Contact: <sip:evil@192.0.2.66;transport=tcp>\r\n";
    h.receive(intruder, register_text("alice", 50, hijack, None));
    assert_eq!(h.response_to("192.0.2.66:5060", 401).status.as_u16(), 401);
    // With bob's credentials for alice's address of record: 403.
    h.receive(intruder, register_text("alice", 51, hijack, None));
    let challenge = h.response_to("192.0.2.66:5060", 401);
    let values: Vec<Bytes> = challenge
        .headers
        .get_all(&HeaderName::WwwAuthenticate)
        .cloned()
        .collect();
    let md5 = policy_support::challenge_for(&values, Algorithm::Md5);
    let as_bob = Answer::new("bob", "bob-pw", "REGISTER", "sip:sbc.test").to(&md5);
    h.receive(intruder, register_text("alice", 52, hijack, Some(&as_bob)));
    assert_eq!(h.response_to("192.0.2.66:5060", 403).status.as_u16(), 403);
    // With `Contact: *` too.
    h.receive(
        intruder,
        register_text(
            "alice",
            53,
            "Contact: *\r\nExpires: 0\r\n",
            Some(
                &Answer::new("bob", "bob-pw", "REGISTER", "sip:sbc.test")
                    .nc(2)
                    .to(&md5),
            ),
        ),
    );
    assert_eq!(h.response_to("192.0.2.66:5060", 403).status.as_u16(), 403);

    let bindings = registrar.lookup(h.now, "sip:alice@sbc.test");
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].source, addr(PHONE));
    assert_eq!(
        bindings[0].contact_text,
        "sip:alice@10.0.0.5:5060;transport=tcp"
    );
}

#[test]
fn a_call_to_a_registered_user_goes_to_its_contact_on_its_flow_through_its_path() {
    let (mut h, _registrar) = harness();
    let extra =
        "Contact: <sip:alice@10.0.0.5:5060;transport=tcp>\r\nPath: <sip:edge.example;lr>\r\n";
    assert_eq!(
        register_with_digest(&mut h, "alice", "alice-pw", extra, 1)
            .status
            .as_u16(),
        200
    );

    let invite = format!(
        "INVITE sip:alice@{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {TRUNK};branch=z9hG4bK-call-1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551234@core.example>;tag=core-1\r\n\
         To: <sip:alice@{REALM}>\r\n\
         Call-ID: call-1@core.example\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:core@{TRUNK}>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    h.receive(Peer::unreliable(addr(TRUNK)), invite);
    let sent = h
        .outbox
        .iter()
        .find(|sent| matches!(&sent.message, Message::Request(r) if r.method.as_str() == "INVITE"))
        .cloned()
        .unwrap_or_else(|| panic!("no INVITE sent: {:#?}", h.outbox));
    // On the connection the registration came on, and nowhere else.
    match &sent.target {
        net::Target::Flow(flow) => {
            assert_eq!(flow.to_raw(), PHONE_FLOW);
        }
        other => panic!("not sent on the registered flow: {other:?}"),
    }
    assert_eq!(sent.to, addr(PHONE));
    let Message::Request(request) = &sent.message else {
        unreachable!()
    };
    assert_eq!(
        request.uri.to_string(),
        "sip:alice@10.0.0.5:5060;transport=tcp"
    );
    let routes: Vec<String> = request
        .headers
        .get_all(&HeaderName::Route)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(routes, vec!["<sip:edge.example;lr>"]);
    // A call to someone not registered goes the configured way.
    let other = format!(
        "INVITE sip:carol@{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {TRUNK};branch=z9hG4bK-call-2\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551234@core.example>;tag=core-2\r\n\
         To: <sip:carol@{REALM}>\r\n\
         Call-ID: call-2@core.example\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:core@{TRUNK}>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    h.receive(Peer::unreliable(addr(TRUNK)), other);
    let to_carrier = h.request_to(CARRIER, "INVITE");
    assert!(to_carrier.uri.to_string().starts_with("sip:carol@"));
}

fn call_from_trunk(n: u32, user: &str) -> String {
    format!(
        "INVITE sip:{user}@{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {TRUNK};branch=z9hG4bK-limit-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+1555000{n}@core.example>;tag=core-{n}\r\n\
         To: <sip:{user}@{REALM}>\r\n\
         Call-ID: limit-{n}@core.example\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:core@{TRUNK}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn a_registered_user_at_its_call_limit_is_busy_and_calls_count_per_trunk_and_user() {
    let limits = CallLimits::new(CallLimitsConfig {
        max_calls_per_user: Some(1),
        ..CallLimitsConfig::default()
    });
    let (mut h, _registrar) = harness_with(Some(Arc::clone(&limits)));
    let contact = "Contact: <sip:alice@10.0.0.5:5060;transport=tcp>\r\n";
    assert_eq!(
        register_with_digest(&mut h, "alice", "alice-pw", contact, 1)
            .status
            .as_u16(),
        200
    );
    h.receive(Peer::unreliable(addr(TRUNK)), call_from_trunk(1, "alice"));
    let _to_alice = h.request_to(PHONE, "INVITE");
    let counts = limits.counts();
    assert_eq!((counts.total, counts.users), (1, 1));
    // The call came from the trunk "core": it counts there too.
    assert_eq!(counts.trunks, vec![("core".to_owned(), 1)]);
    h.receive(Peer::unreliable(addr(TRUNK)), call_from_trunk(2, "alice"));
    let busy = h.response_to(TRUNK, 486);
    assert_eq!(busy.status.as_u16(), 486);
    // Someone else is reachable meanwhile (the carrier, no user limit involved).
    h.receive(Peer::unreliable(addr(TRUNK)), call_from_trunk(3, "carol"));
    let _to_carrier = h.request_to(CARRIER, "INVITE");
    assert_eq!(limits.counts().total, 2);
}

#[test]
fn under_overload_new_calls_are_refused_statelessly_and_calls_in_progress_go_on() {
    let (mut h, _registrar) = harness();
    let trunk = Peer::unreliable(addr(TRUNK));
    // A call admitted before the overload.
    h.receive(trunk, call_from_trunk(1, "carol"));
    let invite = h.request_to(CARRIER, "INVITE");
    let transactions = h.endpoint.transactions();

    h.endpoint.set_overloaded(true);
    h.receive(trunk, call_from_trunk(2, "carol"));
    let refused = h.response_to(TRUNK, 503);
    assert_eq!(header_values(&refused, "Retry-After"), vec!["5"]);
    // Nothing was kept for it: no transaction, no call.
    assert_eq!(h.endpoint.transactions(), transactions);
    h.nothing_to(CARRIER);
    // Its retransmission gets the same stateless answer.
    h.receive(trunk, call_from_trunk(2, "carol"));
    let _again = h.response_to(TRUNK, 503);
    // The retransmission of the call admitted before is absorbed by its transaction.
    h.receive(trunk, call_from_trunk(1, "carol"));
    h.nothing_to(CARRIER);
    assert!(
        h.take(TRUNK)
            .iter()
            .all(|message| !matches!(message, Message::Response(r) if r.status.as_u16() == 503))
    );
    // The callee answers the call in progress: it completes.
    let value =
        |name: HeaderName| String::from_utf8_lossy(invite.headers.get(&name).unwrap()).into_owned();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=carrier-1\r\nCall-ID: {}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:carol@{CARRIER}>\r\nContent-Length: 0\r\n\r\n",
        value(HeaderName::Via),
        value(HeaderName::From),
        value(HeaderName::To),
        value(HeaderName::CallId),
    );
    h.receive(Peer::unreliable(addr(CARRIER)), ok);
    let answered = h.response_to(TRUNK, 200);
    assert_eq!(answered.status.as_u16(), 200);
    let policy = h.endpoint.policy_stats().unwrap();
    assert_eq!(policy.rejected.get("overload"), Some(&2));
}
