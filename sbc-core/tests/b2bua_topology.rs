//! Topology hiding: over a whole call with SDP (setup, early media, answer, re-INVITE,
//! INFO, BYE), no address, port, Call-ID, tag, branch or host name of one side appears
//! anywhere in the bytes sent to the other side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;

use b2bua_support::*;
use sbc_core::sip::HeaderName;

/// What the caller's side reveals about itself.
const CALLER_SECRETS: [&str; 10] = [
    "192.0.2.10",               // its address (Via, Contact, SDP c= and o=)
    "49170",                    // its RTP port
    "49171",                    // its RTCP port
    "topo@caller.example.com",  // its Call-ID
    "alice-topo",               // its tag (and its in-dialog branches)
    "z9hG4bK-caller",           // its INVITE's branch
    "caller.example.com",       // its host names (From host, Call-ID host)
    "proxy.caller.example.com", // its proxy (Record-Route)
    "CallerPhone",              // its software
    "2890844526",               // its SDP session id
];

/// What the callee's side reveals about itself.
const CALLEE_SECRETS: [&str; 8] = [
    "198.51.100.20",   // its address
    "39876",           // its RTP port
    "bob-topo",        // its tag (and its branches)
    "callee-ua",       // its Contact user
    "2808844564",      // its SDP session id
    "callee.internal", // the host in its Warning and Record-Route
    "Carrier-Switch",  // its software
    "o=bob",           // its SDP origin user
];

fn bytes_sent_to(h: &Harness, to: &str) -> String {
    let to = addr(to);
    h.log
        .iter()
        .filter(|sent| sent.to == to)
        .map(|sent| String::from_utf8_lossy(&sent.bytes).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn nothing_of_one_side_reaches_the_other() {
    let mut h = Harness::new();
    let mut caller = Caller::invite_with(
        "topo",
        Some(&caller_sdp()),
        "Supported: timer\r\nP-Charging-Vector: icid-value=1;icid-generated-at=192.0.2.10\r\n",
    );
    h.receive_message(self::caller(), &caller.message());
    let invite = h.request_to(CALLEE, "INVITE");
    let mut bob = Ua::callee(&invite, callee(), "bob-topo");

    // Early media, then the answer, with the callee's topology in its headers.
    let mut progress = bob.respond(&invite, 183, Some(&callee_sdp()));
    progress
        .headers_mut()
        .push(HeaderName::RecordRoute, "<sip:edge.callee.internal;lr>");
    progress
        .headers_mut()
        .push(HeaderName::Server, "Carrier-Switch 9.1");
    h.receive_message(callee(), &progress);
    let early = h.response_to(CALLER, 183);
    assert_eq!(sdp_media(&early.body).0, RELAY_A.to_string());
    let mut ok = bob.respond(&invite, 200, Some(&callee_sdp()));
    ok.headers_mut()
        .push(HeaderName::RecordRoute, "<sip:edge.callee.internal;lr>");
    ok.headers_mut()
        .push(HeaderName::Warning, "399 callee.internal \"noted\"");
    h.receive_message(callee(), &ok);
    let ack = h.request_to(CALLEE, "ACK");
    assert_eq!(
        ack.headers.get(&HeaderName::Route).map(text).as_deref(),
        Some("<sip:edge.callee.internal;lr>"),
        "the callee's own route set is used on its leg"
    );
    let ok = h.response_to(CALLER, 200);
    caller.answered(&ok);
    h.receive_message(self::caller(), &caller.ack(None));

    // A re-INVITE each way, INFO each way.
    let reinvite = caller.request("INVITE", Some(&caller_sdp()));
    h.receive_message(self::caller(), &reinvite);
    let relayed = h.request_to(CALLEE, "INVITE");
    h.receive_message(callee(), &bob.respond(&relayed, 200, Some(&callee_sdp())));
    h.request_to(CALLEE, "ACK");
    h.response_to(CALLER, 200);
    h.receive_message(
        self::caller(),
        &caller
            .ua
            .as_mut()
            .unwrap()
            .request_with_cseq("ACK", 2, None),
    );

    let reinvite = bob.request("INVITE", Some(&callee_sdp()));
    h.receive_message(callee(), &reinvite);
    let relayed = h.request_to(CALLER, "INVITE");
    let ua = caller.ua.clone().unwrap();
    h.receive_message(
        self::caller(),
        &ua.respond(&relayed, 200, Some(&caller_sdp())),
    );
    h.request_to(CALLER, "ACK");
    h.response_to(CALLEE, 200);

    let info = caller.request("INFO", None);
    h.receive_message(self::caller(), &info);
    let relayed = h.request_to(CALLEE, "INFO");
    h.receive_message(callee(), &bob.respond(&relayed, 200, None));
    h.response_to(CALLER, 200);
    let info = bob.request("INFO", None);
    h.receive_message(callee(), &info);
    let relayed = h.request_to(CALLER, "INFO");
    h.receive_message(self::caller(), &ua.respond(&relayed, 200, None));
    h.response_to(CALLEE, 200);

    let bye = bob.request("BYE", None);
    h.receive_message(callee(), &bye);
    h.response_to(CALLEE, 200);
    let bye = h.request_to(CALLER, "BYE");
    h.receive_message(self::caller(), &ua.respond(&bye, 200, None));

    let to_callee = bytes_sent_to(&h, CALLEE);
    let to_caller = bytes_sent_to(&h, CALLER);
    assert!(to_callee.matches("INVITE sip:").count() >= 2);
    assert!(to_caller.contains("SIP/2.0 183"));
    for secret in CALLER_SECRETS {
        assert!(
            !to_callee.contains(secret),
            "the caller's {secret:?} reached the callee:\n{to_callee}"
        );
    }
    for secret in CALLEE_SECRETS {
        assert!(
            !to_caller.contains(secret),
            "the callee's {secret:?} reached the caller:\n{to_caller}"
        );
    }
}
