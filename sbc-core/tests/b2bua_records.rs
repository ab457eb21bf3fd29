//! What the B2BUA reports about calls, on a virtual clock: one record per call attempt
//! (answered, failed, cancelled, refused), views of calls in progress, an operator's
//! termination of a call, and drain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::time::Duration;

use b2bua_support::*;
use sbc_core::b2bua::NoRoute;
use sbc_core::b2bua::summary::{IdentityVerdict, MediaProtection, PeerCertificate};
use sbc_core::b2bua::{B2buaConfig, CallRecord, CallState};
use sbc_core::net::Protocol;

fn recording(capacity: usize) -> Options {
    let defaults = Options::default();
    Options {
        config: B2buaConfig {
            call_records: capacity,
            ..defaults.config.clone()
        },
        ..defaults
    }
}

fn records(h: &mut Harness) -> Vec<CallRecord> {
    std::iter::from_fn(|| h.endpoint.poll_call_record()).collect()
}

#[test]
fn an_answered_call_leaves_one_record_with_times_parties_and_security() {
    let mut h = Harness::with(recording(16));
    let mut caller = Caller::invite("rec-1", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob-rec-1");
    h.advance(Duration::from_millis(300));
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    h.response_to(CALLER, 180);
    h.advance(Duration::from_millis(700));
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
    assert!(records(&mut h).is_empty(), "no record while the call lasts");

    h.advance(Duration::from_secs(10));
    h.receive_message(self::caller(), &caller.request("BYE", None));
    h.response_to(CALLER, 200);

    let all = records(&mut h);
    assert_eq!(all.len(), 1, "{all:#?}");
    let record = &all[0];
    assert_eq!(record.started, h.start);
    assert_eq!(
        record.progress.map(|at| at - h.start),
        Some(Duration::from_millis(300))
    );
    assert_eq!(
        record.answered.map(|at| at - h.start),
        Some(Duration::from_millis(1000))
    );
    assert_eq!(record.ended - h.start, Duration::from_millis(11_000));
    assert_eq!(record.status, 200);
    assert_eq!(record.end_reason, "bye_from_a");
    assert_eq!(record.trunk.as_deref(), Some("carrier"));
    assert_eq!(record.a_call_id, "rec-1@caller.example.com");
    let b_call_id = record.b_call_id.clone().unwrap();
    assert!(!b_call_id.contains("rec-1"), "{b_call_id}");
    assert_eq!(record.caller, "sip:alice@caller.example.com");
    assert!(
        record.callee.starts_with("sip:+15551234567@"),
        "{}",
        record.callee
    );
    assert_eq!(record.source, addr(CALLER));
    assert_eq!(record.source_protocol, Protocol::Udp);
    assert_eq!(record.destination, Some((addr(CALLEE), Protocol::Udp)));
    assert!(record.media_session.is_some());
    // Toward the caller went the callee's answer; toward the callee the caller's offer.
    assert_eq!(record.codecs_a, vec!["PCMU/8000".to_owned()]);
    assert_eq!(
        record.codecs_b,
        vec![
            "PCMU/8000".to_owned(),
            "PCMA/8000".to_owned(),
            "telephone-event/8000".to_owned()
        ]
    );
    let security = &record.security;
    assert_eq!(security.a.signalling.protocol, Protocol::Udp);
    assert_eq!(
        security.a.signalling.peer_certificate,
        PeerCertificate::NotApplicable
    );
    assert_eq!(security.a.media, MediaProtection::Plain);
    assert_eq!(security.b.media, MediaProtection::Plain);
    assert_eq!(security.identity, IdentityVerdict::NotChecked);
    assert!(records(&mut h).is_empty(), "exactly one record per call");
}

#[test]
fn a_busy_callee_a_cancel_and_a_refusal_each_leave_their_record() {
    let mut h = Harness::with(recording(16));
    // Busy.
    let caller = Caller::invite("rec-busy", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob-busy");
    h.receive_message(callee(), &bob.respond(&invite, 486, None));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 486);
    // Cancelled while ringing.
    let caller = Caller::invite("rec-cancel", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob-cancel");
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    h.response_to(CALLER, 180);
    h.receive_message(self::caller(), &caller.cancel());

    let all = records(&mut h);
    let summary: Vec<(&str, u16, &str, bool)> = all
        .iter()
        .map(|r| {
            (
                r.a_call_id.split('@').next().unwrap_or_default(),
                r.status,
                r.end_reason,
                r.answered.is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("rec-busy", 486, "failed", false),
            ("rec-cancel", 487, "cancelled", false)
        ]
    );
    assert!(all[1].progress.is_some());
}

#[test]
fn a_call_refused_before_routing_is_recorded_with_its_reason() {
    let mut h = Harness::with(Options {
        refuse: Some(NoRoute::NotFound),
        ..recording(16)
    });
    let caller = Caller::invite("rec-none", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    h.response_to(CALLER, 404);
    let all = records(&mut h);
    assert_eq!(all.len(), 1);
    let record = &all[0];
    assert_eq!((record.status, record.end_reason), (404, "no_route"));
    assert_eq!(record.trunk, None);
    assert_eq!(record.b_call_id, None);
    assert_eq!(record.destination, None);
    assert_eq!(record.started, record.ended);
    assert_eq!(record.security.a.media, MediaProtection::NoMedia);
}

#[test]
fn records_are_off_by_default_and_bounded_when_on() {
    let mut h = Harness::with(Options {
        refuse: Some(NoRoute::NotFound),
        ..Options::default()
    });
    h.receive_message(caller(), &Caller::invite("off", None).message());
    assert!(records(&mut h).is_empty());

    let mut h = Harness::with(Options {
        refuse: Some(NoRoute::NotFound),
        ..recording(2)
    });
    for index in 0..5 {
        let invite = Caller::invite(&format!("many-{index}"), None);
        h.receive_message(caller(), &invite.message());
    }
    let kept: Vec<String> = records(&mut h).into_iter().map(|r| r.a_call_id).collect();
    assert_eq!(
        kept,
        vec![
            "many-0@caller.example.com".to_owned(),
            "many-1@caller.example.com".to_owned()
        ]
    );
    let b2bua = h.endpoint.b2bua().unwrap();
    assert_eq!(b2bua.stats().dropped.get("call_record_overflow"), Some(&3));
}

#[test]
fn calls_in_progress_are_listed_with_both_legs() {
    let mut h = Harness::with(recording(16));
    let caller = Caller::invite("view-1", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let b2bua = h.endpoint.b2bua().unwrap();
    let views = b2bua.call_views();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].state, CallState::Trying);

    let bob = Ua::callee(&invite, callee(), "bob-view");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    h.response_to(CALLER, 183);
    let b2bua = h.endpoint.b2bua().unwrap();
    let view = b2bua.call_view(views[0].id).unwrap();
    assert_eq!(view.state, CallState::Early);
    assert_eq!(view.trunk, "carrier");
    assert_eq!(view.a.call_id, "view-1@caller.example.com");
    assert_eq!(view.a.peer, addr(CALLER));
    assert_eq!(view.b.peer, addr(CALLEE));
    assert_eq!(view.b.remote_tag.as_deref(), Some("bob-view"));
    assert_eq!(view.a.relay.map(|a| a.ip()), Some(RELAY_A));
    assert_eq!(view.b.relay.map(|b| b.ip()), Some(RELAY_B));
    assert_eq!(view.a.codecs, vec!["PCMU/8000".to_owned()]);
    assert_eq!(view.security.b.signalling.protocol, Protocol::Udp);
    assert!(b2bua.call_view(view.id + 1).is_none());
}

#[test]
fn an_operator_ends_a_ringing_call_with_487_and_cancel() {
    let mut h = Harness::with(recording(16));
    let caller = Caller::invite("kill-early", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob-kill");
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    h.response_to(CALLER, 180);
    let id = h.endpoint.b2bua().unwrap().call_views()[0].id;

    assert!(h.terminate(id));
    h.response_to(CALLER, 487);
    h.request_to(CALLEE, "CANCEL");
    assert_eq!(h.calls(), 0);
    assert!(!h.terminate(id), "already ended");
    let all = records(&mut h);
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].status, all[0].end_reason),
        (487, "admin_terminated")
    );
}

#[test]
fn an_operator_ends_an_answered_call_with_bye_on_both_legs() {
    let mut h = Harness::with(recording(16));
    let (_caller, _bob) = establish(&mut h, "kill-answered");
    let views = h.endpoint.b2bua().unwrap().call_views();
    assert_eq!(views[0].state, CallState::Answered);
    assert!(h.terminate(views[0].id));
    h.request_to(CALLER, "BYE");
    h.request_to(CALLEE, "BYE");
    assert_eq!(h.calls(), 0);
    assert_eq!(h.media().live.len(), 0, "media released");
    let all = records(&mut h);
    assert_eq!(
        (all[0].status, all[0].end_reason),
        (200, "admin_terminated")
    );
    assert!(!h.terminate(999));
}

#[test]
fn draining_refuses_new_calls_and_keeps_those_in_progress() {
    let mut h = Harness::with(recording(16));
    let (mut caller, bob) = establish(&mut h, "before-drain");
    h.endpoint.set_draining(true);
    let late = Caller::invite("during-drain", Some(&caller_sdp()));
    h.receive_message(self::caller(), &late.message());
    h.response_to(CALLER, 503);
    h.nothing_to(CALLEE);
    assert_eq!(h.calls(), 1, "the call in progress goes on");
    h.receive_message(self::caller(), &caller.request("BYE", None));
    h.response_to(CALLER, 200);
    let bye = h.request_to(CALLEE, "BYE");
    h.receive_message(callee(), &bob.respond(&bye, 200, None));
    let reasons: Vec<&str> = records(&mut h).iter().map(|r| r.end_reason).collect();
    assert_eq!(reasons, vec!["draining", "bye_from_a"]);

    h.endpoint.set_draining(false);
    let after = Caller::invite("after-drain", Some(&caller_sdp()));
    h.receive_message(self::caller(), &after.message());
    h.request_to(CALLEE, "INVITE");
}

/// A call over TLS: the summary's A-leg says whether the caller's client certificate was
/// verified (as the transport reports it with the message), not merely that TLS was
/// used.
#[test]
fn the_summary_says_whether_the_callers_tls_certificate_was_verified() {
    use sbc_core::policy::Arrival;
    use sbc_core::transaction::{Peer, Reliability};
    for (verified, expected) in [
        (true, PeerCertificate::Verified),
        (false, PeerCertificate::NotVerified),
    ] {
        let mut h = Harness::with(recording(16));
        let call_id = format!("tls-{verified}");
        let caller = Caller::invite(&call_id, Some(&caller_sdp()));
        let text = String::from_utf8(caller.message().to_bytes().to_vec())
            .unwrap()
            .replacen("SIP/2.0/UDP", "SIP/2.0/TLS", 1);
        let over_tls = Peer {
            remote: addr(CALLER),
            reliability: Reliability::Reliable,
            flow: Some(7),
        };
        let arrival = Arrival {
            protocol: Protocol::Tls,
            client_certificate: verified,
        };
        h.receive_as(over_tls, text, arrival);
        h.request_to(CALLEE, "INVITE");
        let b2bua = h.endpoint.b2bua().unwrap();
        let views = b2bua.call_views();
        assert_eq!(views.len(), 1);
        let signalling = &views[0].security.a.signalling;
        assert_eq!(signalling.protocol, Protocol::Tls);
        assert_eq!(
            signalling.peer_certificate, expected,
            "verified: {verified}"
        );
        // The B-leg is plain UDP to the callee.
        assert_eq!(
            views[0].security.b.signalling.peer_certificate,
            PeerCertificate::NotApplicable
        );
    }
}
