//! Call admission control in the B2BUA, on a virtual clock: the shared limits refuse a
//! new call past the appliance's and a trunk's count (`503` with Retry-After), every way
//! a call ends gives its place back, and calls in progress are never touched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::collections::HashMap;
use std::sync::Arc;

use b2bua_support::*;
use sbc_core::b2bua::B2buaConfig;
use sbc_core::net::Protocol;
use sbc_core::policy::{CallLimits, CallLimitsConfig};

fn harness(limits: &Arc<CallLimits>) -> Harness {
    Harness::with(Options {
        config: B2buaConfig {
            local: vec![(Protocol::Udp, addr(SBC))],
            domain: Some("sbc.example.net".into()),
            call_limits: Some(Arc::clone(limits)),
            ..B2buaConfig::default()
        },
        ..Options::default()
    })
}

fn refused(h: &mut Harness, call_id: &str) -> sbc_core::sip::Response {
    let caller = Caller::invite(call_id, Some(&caller_sdp()));
    h.receive_message(b2bua_support::caller(), &caller.message());
    let response = h.response_to(CALLER, 503);
    h.nothing_to(CALLEE);
    response
}

#[test]
fn past_the_appliance_limit_new_calls_get_503_and_calls_in_progress_go_on() {
    let limits = CallLimits::new(CallLimitsConfig {
        max_calls: Some(2),
        ..CallLimitsConfig::default()
    });
    let mut h = harness(&limits);
    let (mut first, _first_callee) = establish(&mut h, "c1");
    let (_second, mut second_callee) = establish(&mut h, "c2");
    assert_eq!(limits.counts().total, 2);

    let response = refused(&mut h, "c3");
    assert_eq!(
        header(&sbc_core::sip::Message::Response(response), "Retry-After").as_deref(),
        Some("5")
    );
    let stats = h.endpoint.b2bua().unwrap().stats().clone();
    assert_eq!(stats.rejected.get("appliance_call_limit"), Some(&1));
    // No relay session was taken for the refused call.
    assert_eq!(h.media().live.len(), 2);

    // The calls in progress are untouched: a re-INVITE goes through.
    let reinvite = first.request("INVITE", Some(&caller_sdp()));
    h.receive_message(b2bua_support::caller(), &reinvite);
    let relayed = h.request_to(CALLEE, "INVITE");
    assert!(relayed.uri.to_string().contains("198.51.100.20"));

    // A BYE from the callee of the second call ends it: its place is free again.
    let bye = second_callee.request("BYE", None);
    h.receive_message(callee(), &bye);
    let _ok = h.response_to(CALLEE, 200);
    let _bye = h.request_to(CALLER, "BYE");
    assert_eq!(limits.counts().total, 1);
    let caller = Caller::invite("c4", Some(&caller_sdp()));
    h.receive_message(b2bua_support::caller(), &caller.message());
    let _invite = h.request_to(CALLEE, "INVITE");
    assert_eq!(limits.counts().total, 2);
}

#[test]
fn a_full_trunk_refuses_and_every_ending_gives_the_place_back() {
    let limits = CallLimits::new(CallLimitsConfig {
        trunks: HashMap::from([("carrier".to_owned(), 1)]),
        ..CallLimitsConfig::default()
    });
    let mut h = harness(&limits);

    // A call that is cancelled while ringing.
    let caller = Caller::invite("ring", Some(&caller_sdp()));
    h.receive_message(b2bua_support::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    assert_eq!(limits.counts().trunks, vec![("carrier".to_owned(), 1)]);
    refused(&mut h, "while-ringing");
    let ua = Ua::callee(&invite, callee(), "bob-ring");
    h.receive_message(callee(), &ua.respond(&invite, 180, None));
    let _ringing = h.response_to(CALLER, 180);
    h.receive_message(b2bua_support::caller(), &caller.cancel());
    let _ok = h.response_to(CALLER, 200);
    let _terminated = h.response_to(CALLER, 487);
    let _cancel = h.request_to(CALLEE, "CANCEL");
    assert_eq!(limits.counts().total, 0);

    // A call the callee refuses.
    let caller = Caller::invite("busy", Some(&caller_sdp()));
    h.receive_message(b2bua_support::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), "bob-busy");
    h.receive_message(callee(), &ua.respond(&invite, 486, None));
    let _busy = h.response_to(CALLER, 486);
    let _ack = h.request_to(CALLEE, "ACK");
    assert_eq!(limits.counts().total, 0);

    // A call that times out (the callee never answers).
    let caller = Caller::invite("silent", Some(&caller_sdp()));
    h.receive_message(b2bua_support::caller(), &caller.message());
    let _invite = h.request_to(CALLEE, "INVITE");
    h.advance(std::time::Duration::from_secs(40));
    let timed_out = h.take(CALLER).into_iter().any(|message| {
        matches!(message, sbc_core::sip::Message::Response(r)
            if r.status.as_u16() == 408 && r.headers.call_id().is_ok_and(|id| id.starts_with(b"silent")))
    });
    assert!(timed_out);
    assert_eq!(limits.counts().total, 0);
    h.outbox.clear();

    // An answered call hung up by the caller.
    let (mut answered, _ua) = establish(&mut h, "talk");
    refused(&mut h, "while-talking");
    let bye = answered.request("BYE", None);
    h.receive_message(b2bua_support::caller(), &bye);
    let _bye = h.request_to(CALLEE, "BYE");
    assert_eq!(limits.counts(), Default::default());
    let stats = h.endpoint.b2bua().unwrap().stats().clone();
    assert_eq!(stats.rejected.get("trunk_call_limit"), Some(&2));
}
