//! Media fallback toward the callee on a virtual clock: a target that refuses our offer
//! for its media (488, 606, 415) gets the call again one profile down, as its trunk's
//! policy allows (DTLS-SRTP → SDES-SRTP → plain RTP), on a fresh B-leg, with the relay's
//! leg B protected accordingly; the caller sees none of it. Required mechanisms never step
//! down, the bottom of the ladder fails the call, and the next target starts from the top.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use b2bua_support::*;
use sbc_core::media::Leg;
use sbc_core::media::security::{LegProtection, MediaPolicy, Requirement};
use sbc_core::sip::{Message, Request};

fn policy(sdes: Requirement, dtls: Requirement) -> MediaPolicy {
    MediaPolicy {
        sdes,
        dtls,
        // The harness signals over UDP.
        sdes_over_insecure_signalling: true,
        ..MediaPolicy::default()
    }
}

fn harness(callee_policy: MediaPolicy, targets: &[&str]) -> Harness {
    Harness::with(Options {
        callee_media: callee_policy,
        targets: targets.iter().map(|t| addr(t)).collect(),
        ..Options::default()
    })
}

fn body(request: &Request) -> String {
    String::from_utf8(request.body.to_vec()).unwrap()
}

fn profile_line(sdp: &str) -> &str {
    sdp.lines().find(|l| l.starts_with("m=audio")).unwrap()
}

/// The last protection the relay was told for leg B of stream 0.
fn leg_b(h: &Harness) -> Option<LegProtection> {
    h.media()
        .protected
        .iter()
        .rev()
        .find(|(_, stream, leg, _)| *stream == 0 && *leg == Leg::B)
        .map(|(_, _, _, security)| security.protection.clone())
}

fn fallbacks(h: &Harness, step: &str) -> u64 {
    let stats = h.endpoint.b2bua().unwrap().stats();
    stats.media_fallbacks.get(step).copied().unwrap_or(0)
}

/// The callee refuses `invite` with `status`: the SBC ACKs it, and the next INVITE to
/// `to` is returned.
fn refuse(h: &mut Harness, to: &str, invite: &Request, status: u16, extra: &str) -> Request {
    let peer = sbc_core::transaction::Peer::unreliable(addr(to));
    let ua = Ua::callee(invite, peer, "refuser");
    let mut response = ua.respond(invite, status, None);
    if let (Message::Response(r), false) = (&mut response, extra.is_empty()) {
        r.headers
            .push(sbc_core::sip::HeaderName::Accept, extra.to_string());
    }
    h.receive_message(peer, &response);
    h.request_to(to, "ACK");
    h.request_to(to, "INVITE")
}

const SDES_ANSWER: &str = "v=0\r\no=bob 7 7 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\n\
t=0 0\r\nm=audio 39876 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

#[test]
fn a_callee_refusing_dtls_gets_sdes_on_a_fresh_leg_and_the_caller_sees_only_the_answer() {
    let mut h = harness(policy(Requirement::Allow, Requirement::Prefer), &[CALLEE]);
    let mut caller = Caller::invite("f1", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let first = h.request_to(CALLEE, "INVITE");
    let offer = body(&first);
    assert!(profile_line(&offer).contains("UDP/TLS/RTP/SAVP"), "{offer}");
    assert!(matches!(leg_b(&h), Some(LegProtection::Dtls { .. })));

    let second = refuse(&mut h, CALLEE, &first, 488, "");
    h.nothing_to(CALLER);
    assert_ne!(
        second.headers.call_id().unwrap(),
        first.headers.call_id().unwrap(),
        "a fresh B-leg"
    );
    let lower = body(&second);
    assert_eq!(
        profile_line(&lower),
        "m=audio 20000 RTP/SAVP 0 8 101",
        "{lower}"
    );
    assert_eq!(lower.matches("a=crypto:").count(), 4, "{lower}");
    for gone in ["fingerprint", "setup", "ice-", "candidate"] {
        assert!(!lower.contains(gone), "{gone}: {lower}");
    }
    assert!(
        lower.contains("o=- ") && lower.contains(" 2 IN IP4 203.0.113.200"),
        "a new version of our description: {lower}"
    );
    // The relay's leg B is SDES now, with our key of the offer's first line.
    let Some(LegProtection::Sdes { send, receive, .. }) = leg_b(&h) else {
        panic!("leg B is SDES: {:?}", leg_b(&h));
    };
    assert_eq!(send.len(), 1);
    assert!(receive.is_empty());
    assert_eq!(fallbacks(&h, "dtls_to_sdes"), 1);

    let ua = Ua::callee(&second, callee(), "bob-f1");
    h.receive_message(callee(), &ua.respond(&second, 200, Some(SDES_ANSWER)));
    h.request_to(CALLEE, "ACK");
    let ok = h.response_to(CALLER, 200);
    let answer = String::from_utf8(ok.body.to_vec()).unwrap();
    assert!(answer.contains("m=audio 20000 RTP/AVP 0"), "{answer}");
    assert!(!answer.contains("crypto"), "{answer}");
    let Some(LegProtection::Sdes { receive, .. }) = leg_b(&h) else {
        panic!("leg B is SDES");
    };
    assert_eq!(receive.len(), 1, "the callee's key is known");
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
    assert_eq!(h.calls(), 1);
    // The target answered each time: it is not reported failed.
    let reports = h.reports.lock().unwrap().clone();
    assert!(
        reports
            .iter()
            .all(|(_, outcome)| *outcome == sbc_core::b2bua::TargetOutcome::Answered),
        "{reports:?}"
    );
}

#[test]
fn the_ladder_goes_down_to_plain_and_then_the_refusal_reaches_the_caller() {
    let mut h = harness(policy(Requirement::Allow, Requirement::Prefer), &[CALLEE]);
    let caller = Caller::invite("f2", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let dtls = h.request_to(CALLEE, "INVITE");
    let sdes = refuse(&mut h, CALLEE, &dtls, 606, "");
    assert!(profile_line(&body(&sdes)).contains("RTP/SAVP"));
    let plain = refuse(&mut h, CALLEE, &sdes, 488, "");
    let offer = body(&plain);
    assert_eq!(profile_line(&offer), "m=audio 20000 RTP/AVP 0 8 101");
    assert!(!offer.contains("crypto"), "{offer}");
    assert_eq!(leg_b(&h), Some(LegProtection::Plain));
    assert_eq!(fallbacks(&h, "sdes_to_plain"), 1);
    h.nothing_to(CALLER);

    // Nothing is below plain: the third refusal is the caller's answer.
    let ua = Ua::callee(&plain, callee(), "bob-f2");
    h.receive_message(callee(), &ua.respond(&plain, 488, None));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 488);
    h.nothing_to(CALLEE);
    assert!(h.media().live.is_empty(), "the relay session is released");
}

#[test]
fn where_sdes_is_forbidden_dtls_steps_down_to_plain_and_a_415_counts_too() {
    let mut h = harness(policy(Requirement::Forbid, Requirement::Prefer), &[CALLEE]);
    let caller = Caller::invite("f3", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let dtls = h.request_to(CALLEE, "INVITE");
    let plain = refuse(&mut h, CALLEE, &dtls, 415, "application/sdp, text/plain");
    assert_eq!(profile_line(&body(&plain)), "m=audio 20000 RTP/AVP 0 8 101");
    assert_eq!(fallbacks(&h, "dtls_to_plain"), 1);

    // A 415 whose Accept rules SDP out is no media refusal: it goes to the caller.
    let mut h = harness(policy(Requirement::Forbid, Requirement::Prefer), &[CALLEE]);
    let caller = Caller::invite("f3b", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let dtls = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&dtls, callee(), "bob-f3b");
    let Message::Response(mut refusal) = ua.respond(&dtls, 415, None) else {
        unreachable!()
    };
    refusal
        .headers
        .push(sbc_core::sip::HeaderName::Accept, "application/json");
    h.receive_message(callee(), &Message::Response(refusal));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 415);
    h.nothing_to(CALLEE);
}

#[test]
fn what_the_policy_requires_never_steps_down() {
    // DTLS required: a refusal is final.
    let mut h = harness(policy(Requirement::Allow, Requirement::Require), &[CALLEE]);
    let caller = Caller::invite("f4", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let dtls = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&dtls, callee(), "bob-f4");
    h.receive_message(callee(), &ua.respond(&dtls, 488, None));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 488);
    h.nothing_to(CALLEE);

    // SDES required: no plain.
    let mut h = harness(policy(Requirement::Require, Requirement::Allow), &[CALLEE]);
    let caller = Caller::invite("f5", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let sdes = h.request_to(CALLEE, "INVITE");
    assert!(profile_line(&body(&sdes)).contains("RTP/SAVP"));
    let ua = Ua::callee(&sdes, callee(), "bob-f5");
    h.receive_message(callee(), &ua.respond(&sdes, 488, None));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 488);

    // Plain offered (the default policy): nothing lower; other failures never step down.
    for (n, status) in [(488, 488), (403, 403)] {
        let mut h = harness(MediaPolicy::default(), &[CALLEE]);
        let caller = Caller::invite(&format!("f6-{n}"), Some(&caller_sdp()));
        h.receive_message(self::caller(), &caller.message());
        let plain = h.request_to(CALLEE, "INVITE");
        let ua = Ua::callee(&plain, callee(), "bob-f6");
        h.receive_message(callee(), &ua.respond(&plain, status, None));
        h.request_to(CALLEE, "ACK");
        h.response_to(CALLER, status);
        h.nothing_to(CALLEE);
        assert!(
            h.endpoint
                .b2bua()
                .unwrap()
                .stats()
                .media_fallbacks
                .is_empty()
        );
    }
    // A caller without an offer: the callee offers, nothing to step down.
    let mut h = harness(policy(Requirement::Allow, Requirement::Prefer), &[CALLEE]);
    let caller = Caller::invite("f7", None);
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let ua = Ua::callee(&invite, callee(), "bob-f7");
    h.receive_message(callee(), &ua.respond(&invite, 488, None));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 488);
}

#[test]
fn the_next_target_gets_the_first_profile_again() {
    let mut h = harness(
        policy(Requirement::Allow, Requirement::Prefer),
        &[CALLEE, CALLEE_2],
    );
    let mut caller = Caller::invite("f8", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let dtls = h.request_to(CALLEE, "INVITE");
    let sdes = refuse(&mut h, CALLEE, &dtls, 488, "");
    assert!(profile_line(&body(&sdes)).contains("RTP/SAVP"));
    // The first target then fails outright: failover.
    let ua = Ua::callee(&sdes, callee(), "bob-f8");
    h.receive_message(callee(), &ua.respond(&sdes, 503, None));
    h.request_to(CALLEE, "ACK");
    let second = h.request_to(CALLEE_2, "INVITE");
    let offer = body(&second);
    assert!(profile_line(&offer).contains("UDP/TLS/RTP/SAVP"), "{offer}");
    assert!(offer.contains("a=setup:actpass"), "{offer}");
    assert!(!offer.contains("crypto"), "{offer}");
    assert!(matches!(leg_b(&h), Some(LegProtection::Dtls { .. })));
    assert_eq!(h.endpoint.b2bua().unwrap().stats().failovers, 1);

    let answer = "v=0\r\no=carol 7 7 IN IP4 198.51.100.21\r\ns=-\r\nc=IN IP4 198.51.100.21\r\n\
t=0 0\r\nm=audio 39876 UDP/TLS/RTP/SAVP 0\r\na=setup:active\r\n\
a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF\r\n";
    let carol = Ua::callee(&second, callee_2(), "carol-f8");
    h.receive_message(callee_2(), &carol.respond(&second, 200, Some(answer)));
    h.request_to(CALLEE_2, "ACK");
    let ok = h.response_to(CALLER, 200);
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
    let Some(LegProtection::Dtls { fingerprint, .. }) = leg_b(&h) else {
        panic!("leg B is DTLS");
    };
    assert!(fingerprint.is_some());
    // The relay was told where the callee is only from the answering target.
    let session = *h.media().live.iter().next().unwrap();
    let remote = h.media().remote(session, 0, Leg::B).unwrap();
    assert_eq!(remote.rtp, Some(addr("198.51.100.21:39876")));
}

#[test]
fn an_early_answer_from_a_refusing_target_is_forgotten() {
    let mut h = harness(policy(Requirement::Allow, Requirement::Prefer), &[CALLEE]);
    let caller = Caller::invite("f9", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let dtls = h.request_to(CALLEE, "INVITE");
    let early = "v=0\r\no=bob 7 7 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\n\
t=0 0\r\nm=audio 30000 UDP/TLS/RTP/SAVP 0\r\na=setup:active\r\n\
a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF\r\n";
    let ua = Ua::callee(&dtls, callee(), "bob-f9");
    h.receive_message(callee(), &ua.respond(&dtls, 183, Some(early)));
    h.response_to(CALLER, 183);
    let sdes = refuse(&mut h, CALLEE, &dtls, 488, "");
    let session = *h.media().live.iter().next().unwrap();
    assert_eq!(h.media().remote(session, 0, Leg::B).unwrap().rtp, None);
    let ua = Ua::callee(&sdes, callee(), "bob-f9b");
    h.receive_message(callee(), &ua.respond(&sdes, 200, Some(SDES_ANSWER)));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 200);
    assert_eq!(
        h.media().remote(session, 0, Leg::B).unwrap().rtp,
        Some(addr("198.51.100.20:39876"))
    );
    assert!(matches!(leg_b(&h), Some(LegProtection::Sdes { .. })));
}
