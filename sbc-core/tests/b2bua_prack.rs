//! RFC 3262 toward the caller on a virtual clock: reliable 18x with `Require: 100rel` and
//! `RSeq`, retransmission until the PRACK, the 2xx held until the PRACK of an 18x with
//! SDP, unmatched PRACKs, a PRACK that never comes, CANCEL meanwhile, and 100rel on both
//! legs at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::time::Duration;

use b2bua_support::*;
use sbc_core::sip::{HeaderName, Message, Request, Response};

const T1: Duration = Duration::from_millis(500);

/// A call from a caller whose INVITE carries `extra` (its 100rel header): returns the
/// caller, the B-leg INVITE and the callee's UA.
fn start(h: &mut Harness, call_id: &str, extra: &str) -> (Caller, Request, Ua) {
    let caller = Caller::invite_with(call_id, Some(&caller_sdp()), extra);
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), &format!("bob-{call_id}"));
    (caller, invite, bob)
}

fn rseq(response: &Response) -> Option<u32> {
    header(&Message::Response(response.clone()), "RSeq").map(|v| v.trim().parse().unwrap())
}

fn require(response: &Response) -> Option<String> {
    header(&Message::Response(response.clone()), "Require")
}

/// The caller's PRACK of a reliable response with RSeq `rseq`.
fn prack(caller: &mut Caller, rseq: u32) -> Message {
    prack_with(caller, &format!("{rseq} 1 INVITE"), None)
}

fn prack_with(caller: &mut Caller, rack: &str, body: Option<&str>) -> Message {
    let mut prack = caller.request("PRACK", body);
    prack.headers_mut().push(HeaderName::RAck, rack.to_string());
    prack
}

fn reliable_from_callee(bob: &Ua, invite: &Request, status: u16, rseq: u32) -> Message {
    let mut response = bob.respond(invite, status, Some(&callee_sdp()));
    let headers = response.headers_mut();
    headers.push(HeaderName::Require, "100rel");
    headers.push(HeaderName::RSeq, rseq.to_string());
    response
}

fn rejected(h: &Harness, reason: &str) -> u64 {
    let b2bua = h.endpoint.b2bua().unwrap();
    b2bua.stats().rejected.get(reason).copied().unwrap_or(0)
}

fn ended(h: &Harness, how: &str) -> u64 {
    let b2bua = h.endpoint.b2bua().unwrap();
    b2bua.stats().ended.get(how).copied().unwrap_or(0)
}

#[test]
fn options_advertise_100rel_and_prack() {
    let mut h = Harness::new();
    let options = "OPTIONS sip:sbc.example.net SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-opt\r\nMax-Forwards: 70\r\n\
        From: <sip:alice@caller.example.com>;tag=o1\r\nTo: <sip:sbc.example.net>\r\n\
        Call-ID: opt@caller.example.com\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    h.receive(caller(), options);
    let ok = Message::Response(h.response_to(CALLER, 200));
    let supported = header(&ok, "Supported").unwrap();
    assert!(
        supported.contains("100rel") && supported.contains("timer"),
        "{supported}"
    );
    assert!(header(&ok, "Allow").unwrap().contains("PRACK"));
}

#[test]
fn early_media_is_sent_reliably_to_a_caller_that_supports_100rel() {
    let mut h = Harness::new();
    let (mut caller, invite, bob) = start(&mut h, "p1", "Supported: 100rel\r\n");
    // A 180 without SDP need not be reliable.
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    let ringing = h.response_to(CALLER, 180);
    assert!(require(&ringing).is_none() && rseq(&ringing).is_none());
    // A 183 with SDP is: Require: 100rel, an RSeq in 1..2^31-1, the relay's address.
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    let progress = h.response_to(CALLER, 183);
    assert_eq!(require(&progress).as_deref(), Some("100rel"));
    let first = rseq(&progress).unwrap();
    assert!((1..0x7fff_ffff).contains(&first));
    assert_eq!(sdp_media(&progress.body).0, RELAY_A.to_string());
    // The caller's 100rel is ours to terminate: the callee never sees a PRACK of it.
    caller.answered(&progress);
    h.receive_message(self::caller(), &prack(&mut caller, first));
    let ok = h.response_to(CALLER, 200);
    assert_eq!(ok.headers.cseq().unwrap().method.as_str(), "PRACK");
    h.nothing_to(CALLEE);

    // The answer was in the PRACKed 183: the 2xx repeats no SDP.
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    h.request_to(CALLEE, "ACK");
    let answer = h.response_to(CALLER, 200);
    assert!(answer.body.is_empty());
    assert!(require(&answer).is_none() && rseq(&answer).is_none());
    h.receive_message(self::caller(), &caller.ack(None));
    let bye = caller.request("BYE", None);
    h.receive_message(self::caller(), &bye);
    h.response_to(CALLER, 200);
    h.request_to(CALLEE, "BYE");
    assert_eq!(h.calls(), 0);
}

#[test]
fn early_media_stays_unreliable_for_a_caller_without_100rel() {
    let mut h = Harness::new();
    let (_caller, invite, bob) = start(&mut h, "p2", "");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    let progress = h.response_to(CALLER, 183);
    assert!(require(&progress).is_none() && rseq(&progress).is_none());
    assert!(!progress.body.is_empty());
    h.advance(T1 * 4);
    h.nothing_to(CALLER);
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    let answer = h.response_to(CALLER, 200);
    assert!(!answer.body.is_empty());
}

#[test]
fn rseq_increments_and_one_reliable_response_is_unacknowledged_at_a_time() {
    let mut h = Harness::new();
    let (mut caller, invite, bob) = start(&mut h, "p3", "Require: 100rel\r\n");
    // Required: even a 180 without SDP is reliable.
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    let ringing = h.response_to(CALLER, 180);
    assert_eq!(require(&ringing).as_deref(), Some("100rel"));
    let first = rseq(&ringing).unwrap();
    // The 183 waits for the 180's PRACK.
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    h.nothing_to(CALLER);
    caller.answered(&ringing);
    h.receive_message(self::caller(), &prack(&mut caller, first));
    h.response_to(CALLER, 200);
    let progress = h.response_to(CALLER, 183);
    assert_eq!(rseq(&progress), Some(first + 1));
    assert!(!progress.body.is_empty());
    // A PRACK of the 180 again no longer matches; the 183's does.
    h.receive_message(self::caller(), &prack(&mut caller, first));
    h.response_to(CALLER, 481);
    h.receive_message(self::caller(), &prack(&mut caller, first + 1));
    h.response_to(CALLER, 200);
    assert_eq!(rejected(&h, "prack_unmatched"), 1);
}

#[test]
fn a_reliable_response_is_retransmitted_with_t1_doubling_until_its_prack() {
    let mut h = Harness::new();
    let (mut caller, invite, bob) = start(&mut h, "p4", "Supported: 100rel\r\n");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    let progress = h.response_to(CALLER, 183);
    let sent_at = h.now;
    // Retransmissions at T1, 3·T1, 7·T1 (intervals T1, 2·T1, 4·T1).
    let mut seen = Vec::new();
    for _ in 0..80 {
        h.advance(T1 / 10);
        for message in h.take(CALLER) {
            if let Message::Response(r) = &message
                && r.status.as_u16() == 183
            {
                assert_eq!(rseq(r), rseq(&progress));
                seen.push((h.now - sent_at).as_millis());
            }
        }
    }
    assert_eq!(seen, vec![500, 1500, 3500]);
    caller.answered(&progress);
    h.receive_message(
        self::caller(),
        &prack(&mut caller, rseq(&progress).unwrap()),
    );
    h.response_to(CALLER, 200);
    h.advance(T1 * 40);
    h.nothing_to(CALLER);
    assert_eq!(h.calls(), 1);
}

#[test]
fn the_2xx_is_held_until_the_prack_of_the_18x_with_sdp() {
    let mut h = Harness::new();
    let (mut caller, invite, bob) = start(&mut h, "p5", "Supported: 100rel\r\n");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    let progress = h.response_to(CALLER, 183);
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    // The callee is ACKed; the caller waits for nothing but our 183's retransmission.
    h.request_to(CALLEE, "ACK");
    h.nothing_to(CALLER);
    h.advance(T1);
    h.response_to(CALLER, 183);
    h.nothing_to(CALLER);
    caller.answered(&progress);
    h.receive_message(
        self::caller(),
        &prack(&mut caller, rseq(&progress).unwrap()),
    );
    h.response_to(CALLER, 200);
    let answer = h.response_to(CALLER, 200);
    assert_eq!(answer.headers.cseq().unwrap().method.as_str(), "INVITE");
    assert!(answer.body.is_empty(), "the answer was in the PRACKed 183");
    // Retransmitted like any 2xx until the ACK, and no more 183s.
    h.advance(T1);
    h.response_to(CALLER, 200);
    h.receive_message(self::caller(), &caller.ack(None));
    h.advance(T1 * 10);
    h.nothing_to(CALLER);
    assert_eq!(h.calls(), 1);
}

#[test]
fn an_unmatched_prack_gets_481() {
    let mut h = Harness::new();
    let (mut caller, invite, bob) = start(&mut h, "p6", "Supported: 100rel\r\n");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    let progress = h.response_to(CALLER, 183);
    let rseq = rseq(&progress).unwrap();
    caller.answered(&progress);
    // Wrong RSeq, wrong CSeq number, wrong method, garbage, none.
    for rack in [
        format!("{} 1 INVITE", rseq + 1),
        format!("{rseq} 2 INVITE"),
        format!("{rseq} 1 UPDATE"),
        "x y z".to_string(),
    ] {
        h.receive_message(self::caller(), &prack_with(&mut caller, &rack, None));
        h.response_to(CALLER, 481);
    }
    let mut bare = caller.request("PRACK", None);
    bare.headers_mut().remove_all(&HeaderName::RAck);
    h.receive_message(self::caller(), &bare);
    h.response_to(CALLER, 481);
    assert_eq!(rejected(&h, "prack_unmatched"), 5);
    // A PRACK in a dialog nobody knows.
    let mut stranger = Caller::invite("p6-unknown", None);
    stranger.answered(&progress);
    if let Some(ua) = stranger.ua.as_mut() {
        ua.call_id = "nobody@caller.example.com".into();
    }
    h.receive_message(self::caller(), &prack(&mut stranger, rseq));
    h.response_to(CALLER, 481);
    // The right one still works.
    h.receive_message(self::caller(), &prack(&mut caller, rseq));
    h.response_to(CALLER, 200);
}

#[test]
fn no_prack_ends_the_call_with_504_and_cancels_the_callee() {
    let mut h = Harness::new();
    let (_caller, invite, bob) = start(&mut h, "p7", "Supported: 100rel\r\n");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    h.response_to(CALLER, 183);
    h.advance(T1 * 62);
    let retransmissions = h.take(CALLER).len();
    assert_eq!(retransmissions, 5, "at 1, 3, 7, 15, 31 T1");
    h.advance(T1 * 2);
    h.response_to(CALLER, 183);
    h.response_to(CALLER, 504);
    let cancel = h.request_to(CALLEE, "CANCEL");
    assert_eq!(h.calls(), 0);
    assert_eq!(ended(&h, "prack_timeout"), 1);
    assert_eq!(h.media().released.len(), 1);
    assert!(h.media().live.is_empty());
    h.receive_message(callee(), &bob.respond(&cancel, 200, None));
    h.receive_message(callee(), &bob.respond(&invite, 487, None));
    h.request_to(CALLEE, "ACK");
    // Nothing is left once the transactions have ended.
    h.advance(Duration::from_secs(300));
    // The silent caller never ACKs: the 504 is retransmitted (Timer G), nothing else.
    for message in h.take(CALLER) {
        assert!(matches!(&message, Message::Response(r) if r.status.as_u16() == 504));
    }
    assert_eq!(h.records(), 0);
    assert_eq!(h.endpoint.transactions(), 0);
}

#[test]
fn no_prack_while_the_2xx_is_held_ends_the_call_with_504_and_bye() {
    let mut h = Harness::new();
    let (_caller, invite, bob) = start(&mut h, "p8", "Supported: 100rel\r\n");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    h.response_to(CALLER, 183);
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    h.request_to(CALLEE, "ACK");
    h.advance(T1 * 64);
    let to_caller = h.take(CALLER);
    let last = to_caller.last().unwrap();
    assert!(
        matches!(last, Message::Response(r) if r.status.as_u16() == 504),
        "{}",
        show(last)
    );
    assert!(
        !to_caller
            .iter()
            .any(|m| matches!(m, Message::Response(r) if r.status.as_u16() == 200))
    );
    let bye = h.request_to(CALLEE, "BYE");
    h.receive_message(callee(), &bob.respond(&bye, 200, None));
    assert_eq!(h.calls(), 0);
    assert_eq!(ended(&h, "prack_timeout"), 1);
    assert!(h.media().live.is_empty());
    h.advance(Duration::from_secs(300));
    // The silent caller never ACKs: the 504 is retransmitted (Timer G), nothing else.
    for message in h.take(CALLER) {
        assert!(matches!(&message, Message::Response(r) if r.status.as_u16() == 504));
    }
    assert_eq!(h.records(), 0);
    assert_eq!(h.endpoint.transactions(), 0);
}

#[test]
fn a_cancel_while_a_reliable_response_is_pending_stops_it() {
    let mut h = Harness::new();
    let (mut caller, invite, bob) = start(&mut h, "p9", "Require: 100rel\r\n");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    let progress = h.response_to(CALLER, 183);
    h.receive_message(self::caller(), &caller.cancel());
    h.response_to(CALLER, 200);
    h.response_to(CALLER, 487);
    let cancel = h.request_to(CALLEE, "CANCEL");
    assert_eq!(h.calls(), 0);
    // No retransmission of the 183 and no PRACK timeout after the final answer.
    h.advance(T1 * 70);
    for message in h.take(CALLER) {
        assert!(
            !matches!(&message, Message::Response(r) if r.status.as_u16() == 183 || r.status.as_u16() == 504),
            "{}",
            show(&message)
        );
    }
    h.receive_message(callee(), &bob.respond(&cancel, 200, None));
    h.receive_message(callee(), &bob.respond(&invite, 487, None));
    // A late PRACK of the 183 is still answered (RFC 3262 §3), while the call lingers.
    caller.answered(&progress);
    h.receive_message(
        self::caller(),
        &prack(&mut caller, rseq(&progress).unwrap()),
    );
    h.response_to(CALLER, 200);
    assert!(h.media().live.is_empty());
    h.advance(Duration::from_secs(300));
    assert_eq!(h.records(), 0);
}

#[test]
fn a_late_prack_after_a_failure_is_answered_200() {
    let mut h = Harness::new();
    let (mut caller, invite, bob) = start(&mut h, "p10", "Supported: 100rel\r\n");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    let progress = h.response_to(CALLER, 183);
    // A failure is not held.
    h.receive_message(callee(), &bob.respond(&invite, 486, None));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 486);
    caller.answered(&progress);
    h.receive_message(
        self::caller(),
        &prack(&mut caller, rseq(&progress).unwrap()),
    );
    h.response_to(CALLER, 200);
    h.advance(T1 * 70);
    assert!(
        !h.take(CALLER)
            .iter()
            .any(|m| matches!(m, Message::Response(r) if r.status.as_u16() == 183)),
    );
}

#[test]
fn callee_and_caller_100rel_keep_separate_rseq_spaces() {
    let mut h = Harness::new();
    let (mut caller, invite, bob) = start(&mut h, "p11", "Supported: 100rel\r\n");
    h.receive_message(callee(), &reliable_from_callee(&bob, &invite, 183, 7));
    // We PRACK the callee with its RSeq…
    let our_prack = h.request_to(CALLEE, "PRACK");
    assert_eq!(
        header(&Message::Request(our_prack.clone()), "RAck").as_deref(),
        Some("7 1 INVITE")
    );
    // …and the caller gets our own reliable 183, with our RSeq.
    let progress = h.response_to(CALLER, 183);
    assert_eq!(require(&progress).as_deref(), Some("100rel"));
    let ours = rseq(&progress).unwrap();
    assert_ne!(ours, 7);
    // The callee's next reliable response, before the caller's PRACK, waits.
    h.receive_message(callee(), &bob.respond(&our_prack, 200, None));
    h.receive_message(callee(), &reliable_from_callee(&bob, &invite, 180, 8));
    assert_eq!(
        header(&Message::Request(h.request_to(CALLEE, "PRACK")), "RAck").as_deref(),
        Some("8 1 INVITE")
    );
    h.nothing_to(CALLER);
    caller.answered(&progress);
    // The callee's RSeq means nothing to us.
    h.receive_message(self::caller(), &prack(&mut caller, 7));
    h.response_to(CALLER, 481);
    h.receive_message(self::caller(), &prack(&mut caller, ours));
    h.response_to(CALLER, 200);
    let ringing = h.response_to(CALLER, 180);
    assert_eq!(rseq(&ringing), Some(ours + 1));
    h.receive_message(self::caller(), &prack(&mut caller, ours + 1));
    h.response_to(CALLER, 200);
    h.nothing_to(CALLEE);
    // The 2xx without SDP (answered in the reliable 183) goes out at once, without SDP.
    h.receive_message(callee(), &bob.respond(&invite, 200, None));
    h.request_to(CALLEE, "ACK");
    let answer = h.response_to(CALLER, 200);
    assert!(answer.body.is_empty());
    h.receive_message(self::caller(), &caller.ack(None));
    assert_eq!(h.calls(), 1);
}

#[test]
fn a_prack_with_a_new_offer_goes_to_the_callee_as_update() {
    let mut h = Harness::new();
    let (mut caller, invite, mut bob) = start(&mut h, "p12", "Supported: 100rel\r\n");
    h.receive_message(callee(), &bob.respond(&invite, 183, Some(&callee_sdp())));
    let progress = h.response_to(CALLER, 183);
    caller.answered(&progress);
    let rack = format!("{} 1 INVITE", rseq(&progress).unwrap());
    h.receive_message(
        self::caller(),
        &prack_with(&mut caller, &rack, Some(&caller_sdp())),
    );
    let update = h.request_to(CALLEE, "UPDATE");
    assert_eq!(sdp_media(&update.body).0, RELAY_B.to_string());
    assert_eq!(update.headers.to().unwrap().tag().unwrap(), "bob-p12");
    bob.remote_target = contact_uri(&update.headers);
    h.receive_message(callee(), &bob.respond(&update, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    assert_eq!(ok.headers.cseq().unwrap().method.as_str(), "PRACK");
    assert_eq!(sdp_media(&ok.body).0, RELAY_A.to_string());
    // The 183 is acknowledged: no retransmission.
    h.advance(T1 * 4);
    h.nothing_to(CALLER);
}

#[test]
fn a_re_invite_that_requires_100rel_is_refused() {
    let mut h = Harness::new();
    let (mut caller, _bob) = establish(&mut h, "p13");
    let mut reinvite = caller.request("INVITE", Some(&caller_sdp()));
    reinvite.headers_mut().push(HeaderName::Require, "100rel");
    h.receive_message(self::caller(), &reinvite);
    let refusal = h.response_to(CALLER, 420);
    assert_eq!(
        header(&Message::Response(refusal), "Unsupported").as_deref(),
        Some("100rel")
    );
    h.nothing_to(CALLEE);
}
