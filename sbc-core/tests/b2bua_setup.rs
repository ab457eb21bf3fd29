//! Call setup races and failures on a virtual clock: CANCEL before the answer and crossing
//! it, failover on 503 and on timeout, every target failing, and refused INVITEs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::time::Duration;

use b2bua_support::*;
use sbc_core::b2bua::{B2buaConfig, NoRoute, TargetOutcome};
use sbc_core::media::Leg;
use sbc_core::net::Protocol;
use sbc_core::sip::{Message, Method};

#[test]
fn cancel_before_the_answer() {
    let mut h = Harness::new();
    let caller = Caller::invite("s1", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    h.response_to(CALLER, 180);

    h.receive_message(self::caller(), &caller.cancel());
    h.response_to(CALLER, 200);
    h.response_to(CALLER, 487);
    let cancel = h.request_to(CALLEE, "CANCEL");
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(
        cancel.headers.top_via().unwrap(),
        invite.headers.top_via().unwrap()
    );
    assert_eq!(cancel.headers.cseq().unwrap().seq, 1);
    assert_eq!(h.calls(), 0);
    assert_eq!(h.media().live.len(), 0, "media released at once");

    h.receive_message(callee(), &bob.respond(&cancel, 200, None));
    h.receive_message(callee(), &bob.respond(&invite, 487, None));
    h.request_to(CALLEE, "ACK");
    h.advance(Duration::from_secs(64));
    h.nothing_to(CALLEE);
    assert_eq!(h.records(), 0);
    let stats = h.endpoint.b2bua().unwrap().stats();
    assert_eq!(stats.ended.get("cancelled"), Some(&1));
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    let mut h = Harness::new();
    let caller = Caller::invite("s2", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    h.receive_message(self::caller(), &caller.cancel());
    h.response_to(CALLER, 200);
    h.response_to(CALLER, 487);
    // RFC 3261 §9.1: no CANCEL before a provisional response.
    h.nothing_to(CALLEE);
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 100, None));
    let cancel = h.request_to(CALLEE, "CANCEL");
    h.receive_message(callee(), &bob.respond(&cancel, 200, None));
    h.receive_message(callee(), &bob.respond(&invite, 487, None));
    h.request_to(CALLEE, "ACK");
    // Nothing more reaches the caller.
    h.nothing_to(CALLER);
}

#[test]
fn a_200_crossing_the_cancel_is_acked_and_byed() {
    let mut h = Harness::new();
    let caller = Caller::invite("s3", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    h.response_to(CALLER, 180);
    h.receive_message(self::caller(), &caller.cancel());
    h.response_to(CALLER, 200);
    h.response_to(CALLER, 487);
    let cancel = h.request_to(CALLEE, "CANCEL");

    // The callee answered before it saw the CANCEL.
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    h.receive_message(callee(), &bob.respond(&cancel, 481, None));
    let ack = h.request_to(CALLEE, "ACK");
    assert_eq!(ack.headers.to().unwrap().tag().unwrap(), "bob");
    let bye = h.request_to(CALLEE, "BYE");
    assert_eq!(bye.uri.to_string(), format!("sip:callee-ua@{CALLEE}"));
    h.nothing_to(CALLER);
    // A retransmission of the 200 is ACKed again, with no second BYE.
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    h.request_to(CALLEE, "ACK");
    h.nothing_to(CALLEE);
    h.receive_message(callee(), &bob.respond(&bye, 200, None));
    h.advance(Duration::from_secs(64));
    assert_eq!(h.records(), 0);
    assert_eq!(h.media().live.len(), 0);
}

#[test]
fn failover_on_503_to_the_second_target() {
    let mut h = Harness::with_targets(&[CALLEE, CALLEE_2]);
    let caller = Caller::invite("s4", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let first = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&first, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&first, 180, Some(&callee_sdp())));
    h.response_to(CALLER, 180);
    h.receive_message(callee(), &bob.respond(&first, 503, None));
    h.request_to(CALLEE, "ACK");

    let second = h.request_to(CALLEE_2, "INVITE");
    assert_ne!(
        second.headers.call_id().unwrap(),
        first.headers.call_id().unwrap()
    );
    assert_eq!(
        second.uri.to_string(),
        "sip:+15551234567@198.51.100.21:5060"
    );
    // The same relay addresses are offered.
    assert_eq!(sdp_media(&second.body), sdp_media(&first.body));
    let carol = Ua::callee(&second, callee_2(), "carol");
    h.receive_message(
        callee_2(),
        &carol.respond(&second, 200, Some(&callee_sdp())),
    );
    h.request_to(CALLEE_2, "ACK");
    let ok = h.response_to(CALLER, 200);
    assert_eq!(sdp_media(&ok.body).0, RELAY_A.to_string());
    h.nothing_to(CALLER);
    let reports = h.reports.lock().unwrap().clone();
    assert_eq!(
        reports,
        [
            (addr(CALLEE), TargetOutcome::Failed),
            (addr(CALLEE_2), TargetOutcome::Answered)
        ]
    );
    // The relay forgot what the first target said.
    let media = h.media();
    let session = media.allocated[0].0;
    let b_updates: Vec<_> = media
        .updates
        .iter()
        .filter(|(s, _, leg, _)| *s == session && *leg == Leg::B)
        .map(|(_, _, _, remote)| remote.rtp)
        .collect();
    assert_eq!(
        b_updates,
        [
            Some(addr("198.51.100.20:39876")),
            None,
            Some(addr("198.51.100.20:39876"))
        ]
    );
    assert_eq!(h.endpoint.b2bua().unwrap().stats().failovers, 1);
}

#[test]
fn failover_on_timeout_then_success() {
    let mut h = Harness::with_targets(&[CALLEE, CALLEE_2]);
    let caller = Caller::invite("s5", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    h.request_to(CALLEE, "INVITE");
    // Timer B: 64·T1 of retransmissions unanswered.
    h.advance(Duration::from_secs(32));
    let retransmissions = h.take(CALLEE);
    assert!(retransmissions.len() >= 5);
    let second = h.request_to(CALLEE_2, "INVITE");
    let carol = Ua::callee(&second, callee_2(), "carol");
    h.receive_message(
        callee_2(),
        &carol.respond(&second, 200, Some(&callee_sdp())),
    );
    h.request_to(CALLEE_2, "ACK");
    h.response_to(CALLER, 200);
}

#[test]
fn every_target_failing_ends_with_503() {
    let mut h = Harness::with_targets(&[CALLEE, CALLEE_2]);
    let caller = Caller::invite("s6", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let first = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&first, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&first, 500, None));
    let second = h.request_to(CALLEE_2, "INVITE");
    let carol = Ua::callee(&second, callee_2(), "carol");
    h.receive_message(callee_2(), &carol.respond(&second, 503, None));
    h.response_to(CALLER, 503);
    assert_eq!(h.calls(), 0);
    assert_eq!(h.media().live.len(), 0);
}

#[test]
fn every_target_timing_out_ends_with_408() {
    let mut h = Harness::with_targets(&[CALLEE, CALLEE_2]);
    let caller = Caller::invite("s7", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    h.advance(Duration::from_secs(65));
    h.take(CALLEE);
    h.take(CALLEE_2);
    h.response_to(CALLER, 408);
    assert_eq!(h.calls(), 0);
    assert_eq!(h.media().live.len(), 0);
}

#[test]
fn a_4xx_ends_the_attempts() {
    let mut h = Harness::with_targets(&[CALLEE, CALLEE_2]);
    let caller = Caller::invite("s8", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let first = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&first, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&first, 404, None));
    h.response_to(CALLER, 404);
    h.nothing_to(CALLEE_2);
}

#[test]
fn no_route_gets_404_and_a_forbidden_source_403() {
    for (refusal, status) in [
        (NoRoute::NotFound, 404),
        (NoRoute::Forbidden, 403),
        (NoRoute::Unavailable, 503),
    ] {
        let mut h = Harness::with(Options {
            refuse: Some(refusal),
            ..Options::default()
        });
        let caller = Caller::invite("s9", Some(&caller_sdp()));
        h.receive_message(self::caller(), &caller.message());
        h.response_to(CALLER, status);
        assert!(h.media().allocated.is_empty());
        assert_eq!(h.records(), 0);
    }
}

#[test]
fn max_forwards_of_one_gets_483() {
    let mut h = Harness::new();
    let mut caller = Caller::invite("s10", Some(&caller_sdp()));
    caller
        .invite
        .headers
        .set(sbc_core::sip::HeaderName::MaxForwards, "1");
    h.receive_message(self::caller(), &caller.message());
    h.response_to(CALLER, 483);
    h.nothing_to(CALLEE);
}

#[test]
fn an_invite_coming_back_to_us_is_a_loop() {
    let mut h = Harness::new();
    let caller = Caller::invite("s11", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let sent = h.request_to(CALLEE, "INVITE");
    // The trunk sends our INVITE back to us, unchanged but for its own Via.
    let mut looped = sent.clone();
    looped.headers.push_front(
        sbc_core::sip::HeaderName::Via,
        "SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-trunk-1",
    );
    h.receive_message(callee(), &Message::Request(looped));
    h.response_to(CALLEE, 482);
    // With another Request-URI it is a spiral, and goes on.
    let mut spiral = sent;
    spiral.uri = sbc_core::sip::Uri::parse(b"sip:+15550000000@sbc.example.net").unwrap();
    spiral.headers.push_front(
        sbc_core::sip::HeaderName::Via,
        "SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-trunk-2",
    );
    h.receive_message(callee(), &Message::Request(spiral));
    h.request_to(CALLEE, "INVITE");
}

#[test]
fn past_the_call_limit_new_calls_get_503() {
    let mut h = Harness::with(Options {
        config: B2buaConfig {
            max_calls: 2,
            local: vec![(Protocol::Udp, addr(SBC))],
            ..B2buaConfig::default()
        },
        ..Options::default()
    });
    for call in ["l1", "l2", "l3"] {
        let caller = Caller::invite(call, Some(&caller_sdp()));
        h.receive_message(self::caller(), &caller.message());
    }
    let to_callee = h.take(CALLEE);
    assert_eq!(to_callee.len(), 2);
    h.response_to(CALLER, 503);
    assert_eq!(h.calls(), 2);
    assert_eq!(
        h.endpoint
            .b2bua()
            .unwrap()
            .stats()
            .rejected
            .get("call_limit"),
        Some(&1)
    );
    // A call that ends frees its slot.
    let first = match &to_callee[0] {
        Message::Request(request) => request.clone(),
        Message::Response(_) => unreachable!(),
    };
    let bob = Ua::callee(&first, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&first, 486, None));
    h.response_to(CALLER, 486);
    let caller = Caller::invite("l4", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    h.request_to(CALLEE, "ACK");
    h.request_to(CALLEE, "INVITE");
}

#[test]
fn relay_exhaustion_gets_503() {
    let mut h = Harness::new();
    h.media().refuse_allocation = true;
    let caller = Caller::invite("s12", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    h.response_to(CALLER, 503);
    h.nothing_to(CALLEE);
}

#[test]
fn require_100rel_is_accepted_and_the_callers_100rel_is_not_passed() {
    let mut h = Harness::new();
    let caller = Caller::invite_with("s13", Some(&caller_sdp()), "Require: 100rel\r\n");
    h.receive_message(self::caller(), &caller.message());
    // 100rel is terminated on each leg (RFC 3262 toward the caller: b2bua_prack.rs).
    let invite = Message::Request(h.request_to(CALLEE, "INVITE"));
    assert!(header(&invite, "Require").is_none());
    assert_eq!(header(&invite, "Supported").as_deref(), Some("100rel"));

    let caller = Caller::invite_with("s14", Some(&caller_sdp()), "Supported: 100rel, timer\r\n");
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    // The caller's 100rel is not passed on; our own (we PRACK the callee) is added.
    assert_eq!(
        header(&Message::Request(invite), "Supported").as_deref(),
        Some("timer, 100rel")
    );
}

#[test]
fn reliable_provisionals_are_pracked_on_the_callee_leg_and_relayed_unreliably() {
    let mut h = Harness::new();
    let mut caller = Caller::invite("s16", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    let mut progress = bob.respond(&invite, 183, Some(&callee_sdp()));
    progress
        .headers_mut()
        .push(sbc_core::sip::HeaderName::Require, "100rel");
    progress
        .headers_mut()
        .push(sbc_core::sip::HeaderName::RSeq, "7");
    h.receive_message(callee(), &progress);
    let prack = h.request_to(CALLEE, "PRACK");
    let prack_message = Message::Request(prack.clone());
    assert_eq!(
        header(&prack_message, "RAck").as_deref(),
        Some("7 1 INVITE")
    );
    assert_eq!(prack.uri.to_string(), format!("sip:callee-ua@{CALLEE}"));
    assert_eq!(prack.headers.to().unwrap().tag().unwrap(), "bob");
    assert_eq!(prack.headers.cseq().unwrap().seq, 2);
    let early = h.response_to(CALLER, 183);
    let early_message = Message::Response(early.clone());
    assert!(header(&early_message, "Require").is_none());
    assert!(header(&early_message, "RSeq").is_none());
    assert_eq!(sdp_media(&early.body).0, RELAY_A.to_string());

    // The callee retransmits it before our PRACK arrives: neither PRACKed nor relayed again.
    h.receive_message(callee(), &progress);
    h.nothing_to(CALLEE);
    h.nothing_to(CALLER);
    h.receive_message(callee(), &bob.respond(&prack, 200, None));

    // The 200 carries no SDP (the answer was in the reliable 183): the caller gets it again.
    h.receive_message(callee(), &bob.respond(&invite, 200, None));
    h.request_to(CALLEE, "ACK");
    let ok = h.response_to(CALLER, 200);
    assert_eq!(ok.body, early.body);
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
    // Our next request on the B-leg continues the CSeq space after the PRACK.
    let bye = caller.request("BYE", None);
    h.receive_message(self::caller(), &bye);
    h.response_to(CALLER, 200);
    assert_eq!(h.request_to(CALLEE, "BYE").headers.cseq().unwrap().seq, 3);
}

#[test]
fn a_caller_that_goes_away_during_setup_cancels_the_callee() {
    let mut h = Harness::new();
    let caller = Caller::invite("s15", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    h.response_to(CALLER, 180);
    // The caller's BYE on its early dialog (RFC 3261 §15).
    let mut early = Caller::invite("s15", None);
    let ringing_to = h
        .log
        .iter()
        .rev()
        .find_map(|sent| match &sent.message {
            Message::Response(r) if r.status.as_u16() == 180 => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    early.answered(&ringing_to);
    let bye = early.request("BYE", None);
    h.receive_message(self::caller(), &bye);
    h.response_to(CALLER, 200);
    h.response_to(CALLER, 487);
    let cancel = h.request_to(CALLEE, "CANCEL");
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(h.calls(), 0);
}
