//! MESSAGE through the B2BUA (RFC 3428), on a virtual clock: outside a dialog it is
//! re-originated toward the route's target with identifiers of our own and its answer
//! mapped back; failover, timeout and no route; inside a call it follows the dialog.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use std::time::Duration;

use b2bua_support::*;
use sbc_core::b2bua::NoRoute;
use sbc_core::sip::{HeaderName, Message, Request};

const TEXT: &str = "Hello, it is me.";

fn message(call_id: &str) -> String {
    format!(
        "MESSAGE sip:+15551234567@sbc.example.net SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-msg-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@caller.example.com>;tag=alice-{call_id}\r\n\
         To: <sip:+15551234567@sbc.example.net>\r\n\
         Call-ID: {call_id}@caller.example.com\r\n\
         CSeq: 7 MESSAGE\r\n\
         Contact: <sip:alice@{CALLER}>\r\n\
         Record-Route: <sip:proxy.caller.example.com;lr>\r\n\
         User-Agent: CallerPhone/1.0\r\n\
         Content-Type: text/plain;charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n{TEXT}",
        TEXT.len()
    )
}

/// The callee's answer to a request it received.
fn answer(request: &Request, status: u16, tag: &str) -> String {
    let value = |name: HeaderName| text(request.headers.get(&name).unwrap());
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Whatever",
    };
    format!(
        "SIP/2.0 {status} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag={tag}\r\nCall-ID: {}\r\n\
         CSeq: {}\r\nServer: CalleeBox/2.0\r\nContact: <sip:bob@{CALLEE}>\r\nContent-Length: 0\r\n\r\n",
        value(HeaderName::Via),
        value(HeaderName::From),
        value(HeaderName::To),
        value(HeaderName::CallId),
        value(HeaderName::CSeq),
    )
}

#[test]
fn a_message_is_re_originated_and_its_answer_mapped_back() {
    let mut h = Harness::new();
    h.receive(caller(), message("m1"));
    let relayed = h.request_to(CALLEE, "MESSAGE");
    // Our identifiers, not the sender's.
    let call_id = text(relayed.headers.get(&HeaderName::CallId).unwrap());
    assert!(!call_id.contains("m1"), "{call_id}");
    assert_eq!(relayed.headers.get_all(&HeaderName::Via).count(), 1);
    let via = text(relayed.headers.get(&HeaderName::Via).unwrap());
    assert!(via.contains(SBC), "{via}");
    let from = relayed.headers.from().unwrap();
    assert_ne!(text(from.tag().unwrap()), "alice-m1");
    assert!(
        relayed
            .uri
            .to_string()
            .starts_with("sip:+15551234567@198.51.100.20")
    );
    // The text arrives as it was sent.
    assert_eq!(relayed.body, TEXT.as_bytes());
    assert_eq!(
        text(relayed.headers.get(&HeaderName::ContentType).unwrap()),
        "text/plain;charset=utf-8"
    );
    // Nothing of the sender's topology: no address, no Record-Route, no Contact.
    let wire = Message::Request(relayed.clone()).to_bytes();
    let wire = String::from_utf8_lossy(&wire);
    for leak in [
        "192.0.2.10",
        "caller.example.com",
        "proxy.caller",
        "Record-Route",
        "Contact",
    ] {
        assert!(!wire.contains(leak), "{leak} leaked:\n{wire}");
    }
    h.receive(callee(), answer(&relayed, 202, "bob-m1"));
    let accepted = h.response_to(CALLER, 202);
    assert_eq!(
        text(accepted.headers.get(&HeaderName::CallId).unwrap()),
        "m1@caller.example.com"
    );
    let our_tag = to_tag(&accepted);
    assert_ne!(our_tag, "bob-m1");
    let wire = String::from_utf8_lossy(&Message::Response(accepted).to_bytes()).into_owned();
    for leak in ["198.51.100.20", "CalleeBox", "Contact"] {
        assert!(!wire.contains(leak), "{leak} leaked:\n{wire}");
    }
    assert_eq!(h.endpoint.b2bua().unwrap().stats().messages_relayed, 1);
    // A retransmission of the MESSAGE gets the same answer from the transaction.
    h.receive(caller(), message("m1"));
    let again = h.response_to(CALLER, 202);
    assert_eq!(to_tag(&again), our_tag);
    h.nothing_to(CALLEE);
}

#[test]
fn a_failing_target_is_skipped_and_a_silent_one_times_out() {
    let mut h = Harness::with_targets(&[CALLEE, CALLEE_2]);
    h.receive(caller(), message("m2"));
    let first = h.request_to(CALLEE, "MESSAGE");
    h.receive(callee(), answer(&first, 503, "down"));
    let second = h.request_to(CALLEE_2, "MESSAGE");
    assert_ne!(
        second.headers.get(&HeaderName::CallId),
        first.headers.get(&HeaderName::CallId)
    );
    h.receive(callee_2(), answer(&second, 200, "up"));
    let _ok = h.response_to(CALLER, 200);

    // A target that never answers: when our MESSAGE times out, so has the sender's;
    // no other target is tried and no 408 is sent (RFC 4320).
    h.receive(caller(), message("m3"));
    let _first = h.request_to(CALLEE, "MESSAGE");
    h.advance(Duration::from_secs(33));
    h.nothing_to(CALLEE_2);
    assert!(
        h.take(CALLER)
            .iter()
            .all(|m| !matches!(m, Message::Response(r) if r.status.as_u16() == 408))
    );
    assert_eq!(
        h.endpoint
            .b2bua()
            .unwrap()
            .stats()
            .rejected
            .get("message_timeout"),
        Some(&1)
    );
    // Both failing with 5xx: the sender gets 503.
    h.outbox.clear();
    h.receive(caller(), message("m6"));
    let first = h.request_to(CALLEE, "MESSAGE");
    h.receive(callee(), answer(&first, 503, "down"));
    let second = h.request_to(CALLEE_2, "MESSAGE");
    h.receive(callee_2(), answer(&second, 503, "down-too"));
    let _unavailable = h.response_to(CALLER, 503);
    // Every relay is gone once its transactions are.
    h.advance(Duration::from_secs(60));
    h.outbox.clear();
    h.receive(caller(), message("m4"));
    let _relayed = h.request_to(CALLEE, "MESSAGE");
}

#[test]
fn a_message_with_no_route_is_refused_404() {
    let mut h = Harness::with(Options {
        refuse: Some(NoRoute::NotFound),
        ..Options::default()
    });
    h.receive(caller(), message("m5"));
    let _not_found = h.response_to(CALLER, 404);
    h.nothing_to(CALLEE);
}

#[test]
fn a_message_in_a_call_follows_the_dialog() {
    let mut h = Harness::new();
    let (mut alice, callee_ua) = establish(&mut h, "c1");
    let mut inside = alice.request("MESSAGE", None);
    if let Message::Request(request) = &mut inside {
        request.headers.push(HeaderName::ContentType, "text/plain");
        request.body = bytes::Bytes::from_static(TEXT.as_bytes());
        request
            .headers
            .set(HeaderName::ContentLength, TEXT.len().to_string());
    }
    h.receive_message(caller(), &inside);
    let relayed = h.request_to(CALLEE, "MESSAGE");
    // On the call's B-leg dialog: its Call-ID and the callee's tag.
    assert_eq!(
        relayed.headers.get(&HeaderName::CallId),
        Some(&bytes::Bytes::from(callee_ua.call_id.clone()))
    );
    assert_eq!(relayed.body, TEXT.as_bytes());
    h.receive(callee(), answer(&relayed, 200, "ignored"));
    let _ok = h.response_to(CALLER, 200);
}
