//! RFC 5630 on the way out: a `sips:` Request-URI leaves only over TLS. Targets of
//! another transport are skipped; with none left the request is refused `480`, never
//! downgraded to `sip:`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use b2bua_support::*;
use sbc_core::b2bua::{B2bua, B2buaConfig, Target};
use sbc_core::endpoint::{Endpoint, EndpointConfig};
use sbc_core::net::{self, Protocol};

fn harness(targets: Vec<Target>) -> Harness {
    let media = Arc::new(Mutex::new(MediaLog::default()));
    let reports = Arc::new(Mutex::new(Vec::new()));
    let router = FixedRouter {
        targets,
        source_trunk: None,
        refuse: None,
        reports: Arc::clone(&reports),
        caller_media: Default::default(),
        callee_media: Default::default(),
    };
    let mut counter = 0x3000_u64;
    let b2bua = B2bua::new(
        B2buaConfig {
            local: vec![(Protocol::Udp, addr(SBC)), (Protocol::Tls, addr(SBC))],
            ..B2buaConfig::default()
        },
        Box::new(router),
        Box::new(FakeRelay(Arc::clone(&media))),
        move || {
            counter += 1;
            counter.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        },
    );
    let mut tags = 0_u64;
    let endpoint = Endpoint::new(EndpointConfig::default(), move || {
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

fn sips_invite(call_id: &str) -> String {
    let bytes = Caller::invite(call_id, Some(&caller_sdp()))
        .message()
        .to_bytes();
    String::from_utf8_lossy(&bytes).replacen("INVITE sip:", "INVITE sips:", 1)
}

#[test]
fn a_sips_call_skips_the_targets_it_cannot_reach_over_tls() {
    let mut h = harness(vec![
        Target::new(Protocol::Udp, addr(CALLEE)),
        Target::new(Protocol::Tls, addr(CALLEE_2)),
    ]);
    h.receive(caller(), sips_invite("s1"));
    h.nothing_to(CALLEE);
    let sent = h
        .outbox
        .iter()
        .find(|sent| sent.to == addr(CALLEE_2))
        .cloned()
        .expect("the INVITE goes to the TLS target");
    assert!(matches!(
        &sent.target,
        net::Target::Destination(destination) if destination.protocol == Protocol::Tls
    ));
    let invite = h.request_to(CALLEE_2, "INVITE");
    assert!(
        invite.uri.to_string().starts_with("sips:"),
        "{}",
        invite.uri
    );
}

#[test]
fn a_sips_request_without_a_tls_target_is_refused_not_downgraded() {
    let mut h = harness(vec![Target::new(Protocol::Udp, addr(CALLEE))]);
    h.receive(caller(), sips_invite("s2"));
    let _refused = h.response_to(CALLER, 480);
    h.nothing_to(CALLEE);
    let message = format!(
        "MESSAGE sips:bob@sbc.example.net SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-sm\r\n\
         Max-Forwards: 70\r\nFrom: <sips:alice@caller.example.com>;tag=a\r\n\
         To: <sips:bob@sbc.example.net>\r\nCall-ID: sm@caller\r\nCSeq: 1 MESSAGE\r\n\
         Content-Length: 0\r\n\r\n"
    );
    h.receive(caller(), message);
    let _refused = h.response_to(CALLER, 480);
    h.nothing_to(CALLEE);
    let stats = h.endpoint.b2bua().unwrap().stats().clone();
    assert_eq!(stats.rejected.get("sips_without_tls_target"), Some(&2));
    // A plain sip: call still goes over UDP.
    let caller_ua = Caller::invite("s3", Some(&caller_sdp()));
    h.receive_message(caller(), &caller_ua.message());
    let invite = h.request_to(CALLEE, "INVITE");
    assert!(invite.uri.to_string().starts_with("sip:"));
}
