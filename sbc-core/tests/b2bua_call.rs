//! The B2BUA's basic call on a virtual clock: INVITE re-originated on the B-leg, SDP
//! anchored on the relay, answer relayed, ACKs, and BYE from either side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::sync::Arc;
use std::time::Duration;

use b2bua_support::*;
use sbc_core::b2bua::{B2buaConfig, CallIdOwner};
use sbc_core::media::Leg;
use sbc_core::sip::{HeaderName, Message, Method, Uri};

#[test]
fn the_invite_is_re_originated_with_new_identifiers() {
    let mut h = Harness::new();
    let caller_invite = Caller::invite("c1", Some(&caller_sdp()));
    h.receive_message(caller(), &caller_invite.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let message = Message::Request(invite.clone());

    // Request-URI: user kept, host the target.
    assert_eq!(
        invite.uri.to_string(),
        "sip:+15551234567@198.51.100.20:5060"
    );
    // New Call-ID, From tag, CSeq space; display name and user kept.
    let call_id = header(&message, "Call-ID").unwrap();
    assert!(
        !call_id.contains("c1") && !call_id.contains('@'),
        "{call_id}"
    );
    let from = invite.headers.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some(&b"\"Alice\""[..]));
    assert_eq!(from.uri.to_string(), "sip:alice@sbc.example.net");
    assert!(from.tag().is_some_and(|tag| !tag.starts_with(b"alice")));
    let to = invite.headers.to().unwrap();
    assert_eq!(to.uri.to_string(), "sip:+15551234567@198.51.100.20:5060");
    assert!(to.tag().is_none());
    assert_eq!(header(&message, "CSeq").unwrap(), "1 INVITE");
    // Our Via only, our Contact, Max-Forwards decremented, no Record-Route.
    let vias = invite.headers.vias().unwrap();
    assert_eq!(vias.len(), 1);
    assert_eq!(vias[0].sent_by.to_string(), SBC);
    assert!(vias[0].branch().unwrap().starts_with(b"z9hG4bK"));
    assert_eq!(contact_uri(&invite.headers), format!("sip:{SBC}"));
    assert_eq!(header(&message, "Max-Forwards").unwrap(), "69");
    assert!(!invite.headers.contains(&HeaderName::RecordRoute));
    assert!(!invite.headers.contains(&HeaderName::Route));
    // The caller's software is not named; other headers pass the (pass-all) policy.
    assert!(!invite.headers.contains(&HeaderName::UserAgent));
    assert_eq!(header(&message, "X-Custom").as_deref(), Some("kept"));

    // The offer points at the relay's B side, with our origin.
    let (ip, port) = sdp_media(&invite.body);
    assert_eq!(ip, RELAY_B.to_string());
    assert_eq!(port, 20000);
    let body = String::from_utf8(invite.body.to_vec()).unwrap();
    assert!(body.contains("o=- "), "{body}");
    assert!(
        body.contains(&format!("IN IP4 {RELAY_B}\r\ns=call")),
        "{body}"
    );
    assert!(body.contains("a=rtpmap:101 telephone-event/8000"));
    // The relay learned where the caller receives.
    let media = h.media();
    assert_eq!(media.allocated.len(), 1);
    let (session, streams) = media.allocated[0];
    assert_eq!(streams, 1);
    let remote = media.remote(session, 0, Leg::A).unwrap();
    assert_eq!(remote.rtp, Some(addr("192.0.2.10:49170")));
    assert_eq!(remote.rtcp, Some(addr("192.0.2.10:49171")));
}

#[test]
fn a_call_is_answered_and_hung_up_by_the_caller() {
    let mut h = Harness::new();
    let mut caller = Caller::invite("c2", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob-tag");

    // 100 Trying from the transaction layer, after 200 ms without an answer.
    h.advance(Duration::from_millis(200));
    let trying = h.take(CALLER);
    assert_eq!(trying.len(), 1);

    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    let ringing = h.response_to(CALLER, 180);
    let sbc_tag = to_tag(&ringing);
    assert_eq!(contact_uri(&ringing.headers), format!("sip:{SBC}"));
    assert!(!sbc_tag.contains("bob"));

    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    // The callee is ACKed at once (the offer was in the INVITE).
    let ack = h.request_to(CALLEE, "ACK");
    assert_eq!(ack.uri.to_string(), format!("sip:callee-ua@{CALLEE}"));
    assert_eq!(ack.headers.to().unwrap().tag().unwrap(), "bob-tag");
    let ok = h.response_to(CALLER, 200);
    assert_eq!(to_tag(&ok), sbc_tag, "one tag toward the caller");
    assert_eq!(contact_uri(&ok.headers), format!("sip:{SBC}"));
    let (ip, port) = sdp_media(&ok.body);
    assert_eq!((ip, port), (RELAY_A.to_string(), 20000));
    {
        let media = h.media();
        let session = media.allocated[0].0;
        let remote = media.remote(session, 0, Leg::B).unwrap();
        assert_eq!(remote.rtp, Some(addr("198.51.100.20:39876")));
    }

    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));
    h.nothing_to(CALLEE);
    // The 2xx is not retransmitted once ACKed.
    h.advance(Duration::from_secs(5));
    h.nothing_to(CALLER);
    assert_eq!(h.calls(), 1);

    let bye = caller.request("BYE", None);
    h.receive_message(self::caller(), &bye);
    h.response_to(CALLER, 200);
    let bye_b = h.request_to(CALLEE, "BYE");
    assert_eq!(bye_b.uri.to_string(), format!("sip:callee-ua@{CALLEE}"));
    assert_eq!(bye_b.headers.to().unwrap().tag().unwrap(), "bob-tag");
    assert_eq!(bye_b.headers.cseq().unwrap().seq, 2);
    assert_eq!(h.calls(), 0);
    assert_eq!(h.media().live.len(), 0, "media released");

    h.receive_message(callee(), &bob.respond(&bye_b, 200, None));
    h.advance(Duration::from_secs(64));
    assert_eq!(h.records(), 0, "the call record is gone");
    assert!(h.endpoint.transactions() == 0);
}

#[test]
fn the_callee_hangs_up() {
    let mut h = Harness::new();
    let (caller, mut bob) = establish(&mut h, "c3");
    let bye = bob.request("BYE", None);
    h.receive_message(callee(), &bye);
    h.response_to(CALLEE, 200);
    let bye_a = h.request_to(CALLER, "BYE");
    // Toward the caller: its Contact, its dialog's tags and Call-ID, its route set.
    assert_eq!(bye_a.uri.to_string(), format!("sip:alice@{CALLER}"));
    let invite = &caller.invite;
    assert_eq!(
        bye_a.headers.call_id().unwrap(),
        invite.headers.call_id().unwrap()
    );
    assert_eq!(
        bye_a.headers.to().unwrap().tag(),
        invite.headers.from().unwrap().tag()
    );
    assert_eq!(
        bye_a.headers.get(&HeaderName::Route).map(text),
        Some("<sip:proxy.caller.example.com;lr>".into())
    );
    assert_eq!(h.media().live.len(), 0);
    let ua = caller.ua.as_ref().unwrap();
    h.receive_message(self::caller(), &ua.respond(&bye_a, 200, None));
    h.advance(Duration::from_secs(64));
    assert_eq!(h.records(), 0);
    let stats = h.endpoint.b2bua().unwrap().stats();
    assert_eq!(stats.ended.get("bye_from_b"), Some(&1));
}

#[test]
fn the_2xx_is_retransmitted_until_the_ack_and_the_call_ends_without_one() {
    let mut h = Harness::new();
    let caller = Caller::invite("c4", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 200);
    h.advance(Duration::from_millis(500));
    h.response_to(CALLER, 200);
    h.advance(Duration::from_secs(1));
    h.response_to(CALLER, 200);
    h.advance(Duration::from_secs(31));
    // No ACK in 64·T1: BYE on both legs.
    let sent = h.take(CALLER);
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::Request(r) if r.method == Method::Bye))
    );
    h.request_to(CALLEE, "BYE");
    assert_eq!(h.calls(), 0);
    assert_eq!(h.media().live.len(), 0);
}

#[test]
fn an_invite_without_sdp_gets_the_callees_offer_and_the_callers_answer_in_the_ack() {
    let mut h = Harness::new();
    let mut caller = Caller::invite("c5", None);
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    assert!(invite.body.is_empty());
    assert!(h.media().allocated.is_empty());
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    // The callee's ACK waits for the caller's answer, even when the 200 comes again.
    h.nothing_to(CALLEE);
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    h.nothing_to(CALLEE);
    let ok = h.response_to(CALLER, 200);
    assert_eq!(sdp_media(&ok.body).0, RELAY_A.to_string());
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(Some(&caller_sdp())));
    let ack = h.request_to(CALLEE, "ACK");
    assert_eq!(sdp_media(&ack.body).0, RELAY_B.to_string());
    let media = h.media();
    let session = media.allocated[0].0;
    assert_eq!(
        media.remote(session, 0, Leg::A).unwrap().rtp,
        Some(addr("192.0.2.10:49170"))
    );
}

#[test]
fn failures_are_relayed_with_their_status_and_no_topology() {
    let mut h = Harness::new();
    let caller = Caller::invite("c6", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    let mut busy = bob.respond(&invite, 486, None);
    busy.headers_mut()
        .push(HeaderName::Warning, "399 bob.internal \"busy\"");
    busy.headers_mut()
        .push(HeaderName::Server, "Carrier-Switch 9.1");
    busy.headers_mut().push(HeaderName::RetryAfter, "60");
    h.receive_message(callee(), &busy);
    // The transaction layer ACKs the 486 itself.
    h.request_to(CALLEE, "ACK");
    let answer = h.response_to(CALLER, 486);
    let message = Message::Response(answer.clone());
    assert!(header(&message, "Warning").is_none());
    assert!(header(&message, "Server").is_none());
    assert_eq!(header(&message, "Retry-After").as_deref(), Some("60"));
    assert_eq!(h.calls(), 0);
    assert_eq!(h.media().live.len(), 0);
    assert_eq!(h.media().released.len(), 1);
}

#[test]
fn a_redirect_is_not_followed_nor_relayed() {
    let mut h = Harness::new();
    let caller = Caller::invite("c7", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    let mut moved = bob.respond(&invite, 302, None);
    moved
        .headers_mut()
        .push(HeaderName::Contact, "<sip:bob@10.1.1.1>");
    h.receive_message(callee(), &moved);
    let answer = h.response_to(CALLER, 480);
    assert!(!answer.headers.contains(&HeaderName::Contact));
}

#[test]
fn a_late_provisional_is_never_relayed_after_the_answer() {
    let mut h = Harness::new();
    let caller = Caller::invite("c8", Some(&caller_sdp()));
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&invite, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&invite, 200, Some(&callee_sdp())));
    h.receive_message(callee(), &bob.respond(&invite, 180, None));
    let to_caller: Vec<u16> = h
        .take(CALLER)
        .into_iter()
        .map(|m| match m {
            Message::Response(r) => r.status.as_u16(),
            Message::Request(r) => panic!("unexpected {}", r.method.as_str()),
        })
        .collect();
    assert_eq!(to_caller, [200]);
}

#[test]
fn a_tel_uri_becomes_a_sip_uri_at_the_target() {
    let mut h = Harness::new();
    let mut caller = Caller::invite("c9", Some(&caller_sdp()));
    caller.invite.uri = Uri::parse(b"tel:+15551234567").unwrap();
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    assert_eq!(
        invite.uri.to_string(),
        "sip:+15551234567@198.51.100.20:5060;user=phone"
    );
}

/// With signalling sharded by Call-ID, the B-leg's Call-ID must belong to the shard that
/// owns the call: the B2BUA draws until its owner test accepts one.
#[test]
fn the_b_leg_call_id_is_one_the_owner_accepts() {
    let owner = CallIdOwner(Arc::new(|call_id: &[u8]| call_id.first() == Some(&b'7')));
    let mut h = Harness::with(Options {
        config: B2buaConfig {
            call_id_owner: Some(owner),
            ..Options::default().config
        },
        ..Options::default()
    });
    for n in 0..20 {
        let caller_invite = Caller::invite(&format!("own{n}"), Some(&caller_sdp()));
        h.receive_message(caller(), &caller_invite.message());
        let invite = h.request_to(CALLEE, "INVITE");
        let call_id = invite.headers.call_id().unwrap();
        assert_eq!(call_id.first(), Some(&b'7'), "{call_id:?}");
    }
}
