//! In-dialog requests through the B2BUA on a virtual clock: re-INVITE hold and resume with
//! SDP anchored again, glare, INFO, UPDATE, unknown dialogs, media inactivity and session
//! timers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::time::Duration;

use b2bua_support::*;
use sbc_core::media::Leg;
use sbc_core::sip::{HeaderName, Message, Method};

fn hold_sdp(direction: &str, address: &str) -> String {
    format!(
        "v=0\r\no=alice 2890844526 2890844527 IN IP4 192.0.2.10\r\ns=call\r\nc=IN IP4 {address}\r\n\
t=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a={direction}\r\n"
    )
}

fn session(h: &Harness) -> sbc_core::media::MediaSessionId {
    h.media().allocated[0].0
}

/// What the relay was last told about `leg` of the first stream of the first session.
fn remote_of(h: &Harness, leg: Leg) -> sbc_core::media::RemoteMedia {
    let media = h.media();
    let session = media.allocated[0].0;
    media.remote(session, 0, leg).unwrap()
}

#[test]
fn re_invite_hold_and_resume_are_anchored_again() {
    let mut h = Harness::new();
    let (mut caller, bob) = establish(&mut h, "d1");

    // Hold: sendonly, with the caller's own address.
    let hold = caller.request("INVITE", Some(&hold_sdp("sendonly", "192.0.2.10")));
    h.receive_message(self::caller(), &hold);
    let reinvite = h.request_to(CALLEE, "INVITE");
    assert_eq!(reinvite.uri.to_string(), format!("sip:callee-ua@{CALLEE}"));
    assert_eq!(reinvite.headers.to().unwrap().tag().unwrap(), "bob-d1");
    assert_eq!(reinvite.headers.cseq().unwrap().seq, 2);
    let body = String::from_utf8(reinvite.body.to_vec()).unwrap();
    assert!(body.contains("a=sendonly\r\n"), "{body}");
    assert_eq!(sdp_media(&reinvite.body), (RELAY_B.to_string(), 20000));
    assert!(
        body.contains(" 2 IN IP4 203.0.113.200"),
        "version bumped: {body}"
    );

    let answer = callee_sdp().replace("a=sendrecv", "a=recvonly");
    h.receive_message(callee(), &bob.respond(&reinvite, 200, Some(&answer)));
    let ack = h.request_to(CALLEE, "ACK");
    assert_eq!(ack.headers.cseq().unwrap().seq, 2);
    let ok = h.response_to(CALLER, 200);
    assert!(
        String::from_utf8(ok.body.to_vec())
            .unwrap()
            .contains("a=recvonly")
    );
    assert_eq!(sdp_media(&ok.body), (RELAY_A.to_string(), 20000));
    h.receive_message(
        self::caller(),
        &caller
            .ua
            .as_mut()
            .unwrap()
            .request_with_cseq("ACK", 2, None),
    );
    h.nothing_to(CALLEE);

    // Hold the old way (c=0.0.0.0): the callee still sees the relay's address; the relay
    // stops sending to the caller.
    let hold = caller.request("INVITE", Some(&hold_sdp("sendonly", "0.0.0.0")));
    h.receive_message(self::caller(), &hold);
    let reinvite = h.request_to(CALLEE, "INVITE");
    assert_eq!(sdp_media(&reinvite.body).0, RELAY_B.to_string());
    assert_eq!(remote_of(&h, Leg::A).rtp, None);
    h.receive_message(callee(), &bob.respond(&reinvite, 200, Some(&answer)));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 200);
    h.receive_message(
        self::caller(),
        &caller
            .ua
            .as_mut()
            .unwrap()
            .request_with_cseq("ACK", 3, None),
    );

    // Resume.
    let resume = caller.request("INVITE", Some(&caller_sdp()));
    h.receive_message(self::caller(), &resume);
    let reinvite = h.request_to(CALLEE, "INVITE");
    assert!(
        String::from_utf8(reinvite.body.to_vec())
            .unwrap()
            .contains("a=sendrecv")
    );
    assert_eq!(remote_of(&h, Leg::A).rtp, Some(addr("192.0.2.10:49170")));
    h.receive_message(callee(), &bob.respond(&reinvite, 200, Some(&callee_sdp())));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 200);
}

#[test]
fn a_re_invite_from_the_callee_reaches_the_caller() {
    let mut h = Harness::new();
    let (caller, mut bob) = establish(&mut h, "d2");
    let reinvite = bob.request("INVITE", Some(&callee_sdp().replace("39876", "4000")));
    h.receive_message(callee(), &reinvite);
    let to_caller = h.request_to(CALLER, "INVITE");
    assert_eq!(to_caller.uri.to_string(), format!("sip:alice@{CALLER}"));
    assert_eq!(sdp_media(&to_caller.body), (RELAY_A.to_string(), 20000));
    assert_eq!(remote_of(&h, Leg::B).rtp, Some(addr("198.51.100.20:4000")));
    let ua = caller.ua.as_ref().unwrap();
    h.receive_message(
        self::caller(),
        &ua.respond(&to_caller, 200, Some(&caller_sdp())),
    );
    h.request_to(CALLER, "ACK");
    let ok = h.response_to(CALLEE, 200);
    assert_eq!(sdp_media(&ok.body).0, RELAY_B.to_string());
    assert_eq!(contact_uri(&ok.headers), format!("sip:{SBC}"));
}

#[test]
fn glare_gets_491_and_overlapping_offers_500() {
    let mut h = Harness::new();
    let (mut caller, mut bob) = establish(&mut h, "d3");
    let from_caller = caller.request("INVITE", Some(&hold_sdp("sendonly", "192.0.2.10")));
    h.receive_message(self::caller(), &from_caller);
    let relayed = h.request_to(CALLEE, "INVITE");

    // The callee's own re-INVITE crosses ours: 491 (RFC 3261 §14.2).
    let from_callee = bob.request("INVITE", Some(&callee_sdp()));
    h.receive_message(callee(), &from_callee);
    let refused = h.response_to(CALLEE, 491);
    assert_eq!(refused.headers.cseq().unwrap().method, Method::Invite);
    // An UPDATE with an offer too.
    let update = bob.request("UPDATE", Some(&callee_sdp()));
    h.receive_message(callee(), &update);
    h.response_to(CALLEE, 491);
    // The caller's second offer before its first is answered: 500 with Retry-After.
    let again = caller.request("INVITE", Some(&caller_sdp()));
    h.receive_message(self::caller(), &again);
    let overlapping = h.response_to(CALLER, 500);
    assert!(overlapping.headers.contains(&HeaderName::RetryAfter));

    // The callee rejects ours with 491 as well: relayed, and the relay rolls back.
    h.receive_message(callee(), &bob.respond(&relayed, 491, None));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 491);
    assert_eq!(remote_of(&h, Leg::A).rtp, Some(addr("192.0.2.10:49170")));
    // The call goes on.
    assert_eq!(h.calls(), 1);
    let info = caller.request("INFO", None);
    h.receive_message(self::caller(), &info);
    h.request_to(CALLEE, "INFO");
}

#[test]
fn info_passes_with_its_body() {
    let mut h = Harness::new();
    let (mut caller, bob) = establish(&mut h, "d4");
    let mut info = caller.request("INFO", None);
    info.headers_mut()
        .push(HeaderName::ContentType, "application/dtmf-relay");
    if let Message::Request(request) = &mut info {
        request.body = bytes::Bytes::from_static(b"Signal=5\r\nDuration=160\r\n");
    }
    h.receive_message(self::caller(), &info);
    let relayed = h.request_to(CALLEE, "INFO");
    assert_eq!(
        header(&Message::Request(relayed.clone()), "Content-Type").as_deref(),
        Some("application/dtmf-relay")
    );
    assert_eq!(&relayed.body[..], b"Signal=5\r\nDuration=160\r\n");
    assert_eq!(
        relayed.headers.call_id().unwrap(),
        &bytes::Bytes::from(bob.call_id.clone())
    );
    h.receive_message(callee(), &bob.respond(&relayed, 200, None));
    let ok = h.response_to(CALLER, 200);
    assert_eq!(ok.headers.cseq().unwrap().method, Method::Info);
}

#[test]
fn update_with_sdp_is_anchored() {
    let mut h = Harness::new();
    let (mut caller, bob) = establish(&mut h, "d5");
    let update = caller.request("UPDATE", Some(&hold_sdp("inactive", "192.0.2.10")));
    h.receive_message(self::caller(), &update);
    let relayed = h.request_to(CALLEE, "UPDATE");
    assert!(
        String::from_utf8(relayed.body.to_vec())
            .unwrap()
            .contains("a=inactive")
    );
    assert_eq!(sdp_media(&relayed.body).0, RELAY_B.to_string());
    h.receive_message(callee(), &bob.respond(&relayed, 200, Some(&callee_sdp())));
    let ok = h.response_to(CALLER, 200);
    assert_eq!(sdp_media(&ok.body).0, RELAY_A.to_string());
    h.nothing_to(CALLEE);
}

#[test]
fn requests_of_unknown_dialogs_get_481() {
    let mut h = Harness::new();
    let (mut caller, _bob) = establish(&mut h, "d6");
    let mut stranger = caller.ua.clone().unwrap();
    stranger.branches = 1000;
    stranger.call_id = "nobody@example.com".into();
    let bye = stranger.request("BYE", None);
    h.receive_message(self::caller(), &bye);
    h.response_to(CALLER, 481);
    // Right Call-ID and To tag, wrong From tag.
    let mut impostor = caller.ua.clone().unwrap();
    impostor.branches = 2000;
    impostor.local = "<sip:mallory@example.com>;tag=mallory".into();
    let bye = impostor.request("BYE", None);
    h.receive_message(self::caller(), &bye);
    h.response_to(CALLER, 481);
    assert_eq!(h.calls(), 1);
    // The real one works.
    let bye = caller.request("BYE", None);
    h.receive_message(self::caller(), &bye);
    h.response_to(CALLER, 200);
    h.request_to(CALLEE, "BYE");
}

#[test]
fn an_out_of_order_cseq_gets_500() {
    let mut h = Harness::new();
    let (mut caller, _bob) = establish(&mut h, "d7");
    let info = caller
        .ua
        .as_mut()
        .unwrap()
        .request_with_cseq("INFO", 1, None);
    h.receive_message(self::caller(), &info);
    h.response_to(CALLER, 500);
}

#[test]
fn media_inactivity_ends_the_call_with_bye_on_both_legs() {
    let mut h = Harness::new();
    let (_caller, _bob) = establish(&mut h, "d8");
    let session = session(&h);
    h.media_timeout(session);
    h.request_to(CALLER, "BYE");
    h.request_to(CALLEE, "BYE");
    assert_eq!(h.calls(), 0);
    assert!(h.media().released.contains(&session));
    assert_eq!(
        h.endpoint
            .b2bua()
            .unwrap()
            .stats()
            .ended
            .get("media_timeout"),
        Some(&1)
    );
    // Unanswered BYEs end by Timer F; then nothing is left.
    h.advance(Duration::from_secs(40));
    assert_eq!(h.records(), 0);
    assert_eq!(h.endpoint.transactions(), 0);
}

#[test]
fn a_session_not_refreshed_in_time_is_ended() {
    let mut h = Harness::new();
    let mut caller = Caller::invite_with(
        "d9",
        Some(&caller_sdp()),
        "Session-Expires: 120\r\nSupported: timer\r\n",
    );
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    assert_eq!(
        header(&Message::Request(invite.clone()), "Session-Expires").as_deref(),
        Some("120")
    );
    let bob = Ua::callee(&invite, callee(), "bob");
    let mut ok = bob.respond(&invite, 200, Some(&callee_sdp()));
    ok.headers_mut()
        .push(HeaderName::SessionExpires, "120;refresher=uac");
    ok.headers_mut().push(HeaderName::Require, "timer");
    h.receive_message(callee(), &ok);
    h.request_to(CALLEE, "ACK");
    let ok = h.response_to(CALLER, 200);
    let message = Message::Response(ok.clone());
    assert_eq!(
        header(&message, "Session-Expires").as_deref(),
        Some("120;refresher=uac")
    );
    assert_eq!(header(&message, "Require").as_deref(), Some("timer"));
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));

    // A refresh at 60 s restarts the interval.
    h.advance(Duration::from_secs(60));
    let refresh = caller.request("UPDATE", None);
    h.receive_message(self::caller(), &refresh);
    let relayed = h.request_to(CALLEE, "UPDATE");
    let mut refreshed = bob.respond(&relayed, 200, None);
    refreshed
        .headers_mut()
        .push(HeaderName::SessionExpires, "120;refresher=uac");
    h.receive_message(callee(), &refreshed);
    h.response_to(CALLER, 200);
    h.advance(Duration::from_secs(100));
    h.nothing_to(CALLER);
    assert_eq!(h.calls(), 1);
    // No refresh after that: ended 120 s after the last one.
    h.advance(Duration::from_secs(21));
    h.request_to(CALLER, "BYE");
    h.request_to(CALLEE, "BYE");
    assert_eq!(h.calls(), 0);
}

#[test]
fn a_relayed_request_that_times_out_ends_the_call() {
    let mut h = Harness::new();
    let (mut caller, _bob) = establish(&mut h, "d10");
    let info = caller.request("INFO", None);
    h.receive_message(self::caller(), &info);
    h.request_to(CALLEE, "INFO");
    h.advance(Duration::from_secs(33));
    h.take(CALLEE);
    // The caller's INFO transaction has given up at the same time (Timer F on both
    // sides), so no 408 can reach it; the dialog is gone on the callee's side (RFC 5057),
    // so the call ends.
    let sent = h.take(CALLER);
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::Request(r) if r.method == Method::Bye))
    );
    assert_eq!(h.calls(), 0);
}

#[test]
fn a_second_2xx_from_another_fork_is_acked_and_byed() {
    let mut h = Harness::new();
    let (_caller, _bob) = establish(&mut h, "d11");
    let invite = h
        .log
        .iter()
        .find_map(|sent| match &sent.message {
            Message::Request(r) if r.method == Method::Invite && sent.to == addr(CALLEE) => {
                Some(r.clone())
            }
            _ => None,
        })
        .unwrap();
    let fork = Ua::callee(&invite, callee(), "fork-2");
    h.receive_message(callee(), &fork.respond(&invite, 200, Some(&callee_sdp())));
    let ack = h.request_to(CALLEE, "ACK");
    assert_eq!(ack.headers.to().unwrap().tag().unwrap(), "fork-2");
    let bye = h.request_to(CALLEE, "BYE");
    assert_eq!(bye.headers.to().unwrap().tag().unwrap(), "fork-2");
    h.nothing_to(CALLER);
    assert_eq!(h.calls(), 1);
}

#[test]
fn media_inactivity_while_ringing_is_ignored() {
    let mut h = Harness::new();
    let caller = Caller::invite("d12", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    h.response_to(CALLER, 180);
    let session = session(&h);
    h.media_timeout(session);
    h.nothing_to(CALLER);
    h.nothing_to(CALLEE);
    assert_eq!(h.calls(), 1);
}

#[test]
fn a_re_invite_adding_a_stream_gets_more_relay_ports() {
    let mut h = Harness::new();
    let (mut caller, bob) = establish(&mut h, "d13");
    let with_video = format!(
        "{}m=video 51372 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
        caller_sdp()
    );
    let reinvite = caller.request("INVITE", Some(&with_video));
    h.receive_message(self::caller(), &reinvite);
    let relayed = h.request_to(CALLEE, "INVITE");
    let body = String::from_utf8(relayed.body.to_vec()).unwrap();
    assert!(body.contains("m=audio 20000 "), "{body}");
    assert!(body.contains("m=video 20002 RTP/AVP 96\r\n"), "{body}");
    assert!(!body.contains("51372"));
    let session = session(&h);
    assert_eq!(h.media().added, [(session, 1)]);
    assert_eq!(
        h.media().remote(session, 1, Leg::A).unwrap().rtp,
        Some(addr("192.0.2.10:51372"))
    );
    h.receive_message(callee(), &bob.respond(&relayed, 200, Some(&callee_sdp())));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 200);
}

#[test]
fn a_caller_on_a_connection_is_reached_on_it() {
    let mut h = Harness::new();
    let tcp_caller = sbc_core::transaction::Peer::reliable(addr(CALLER), Some(7));
    let mut caller = Caller::invite("d14", Some(&caller_sdp()));
    caller.invite.headers.set(
        HeaderName::Via,
        format!("SIP/2.0/TCP {CALLER};branch=z9hG4bK-caller-d14"),
    );
    h.receive_message(tcp_caller, &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let mut bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    h.request_to(CALLEE, "ACK");
    let ok = h.response_to(CALLER, 200);
    assert_eq!(contact_uri(&ok.headers), format!("sip:{SBC};transport=tcp"));
    h.receive_message(callee(), &bob.request("BYE", None));
    h.response_to(CALLEE, 200);
    let sent = h
        .log
        .iter()
        .rev()
        .find(|sent| matches!(&sent.message, Message::Request(r) if r.method == Method::Bye))
        .unwrap()
        .clone();
    assert_eq!(sent.to, addr(CALLER));
    assert!(
        matches!(sent.target, sbc_core::net::Target::Flow(_)),
        "on the caller's connection"
    );
    let Message::Request(bye) = sent.message else {
        unreachable!()
    };
    assert_eq!(bye.headers.top_via().unwrap().transport.as_str(), "TCP");
}
