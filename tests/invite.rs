//! An INVITE the SBC cannot route gets `404 Not Found`, over UDP and TCP; the UAC ACKs it
//! like a real one would, and the SBC keeps answering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::sip::{self, SipStream};
use common::{Sbc, SbcConfig};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The only route matches another domain, so no INVITE to the SBC's address has a route.
fn unroutable() -> SbcConfig {
    SbcConfig::new().with_routes(
        "[[route]]\nname = \"elsewhere\"\ndomain = \"elsewhere.example\"\nto_trunk = \"peer\"\n",
    )
}

/// `404 Not Found` with the transaction's Call-ID and CSeq and a To tag, after nothing but
/// provisional responses.
fn assert_rejected(responses: &[String], invite: &sip::Request, sbc: &Sbc) {
    let response = sip::final_response(responses);
    assert_eq!(
        sip::status_code(response),
        Some(404),
        "an INVITE with no route needs 404, got {:?}\n{}",
        sip::first_line(response),
        sbc.log_tail()
    );
    assert_eq!(
        sip::header(response, "Call-ID"),
        Some(invite.call_id.as_str()),
        "{response}"
    );
    assert_eq!(
        sip::header(response, "CSeq"),
        Some("1 INVITE"),
        "{response}"
    );
    assert!(
        sip::header(response, "To")
            .unwrap_or_default()
            .contains("tag="),
        "{response}"
    );
    for provisional in &responses[..responses.len() - 1] {
        let code = sip::status_code(provisional).unwrap_or(0);
        assert!(
            (100..200).contains(&code),
            "unexpected response before the final: {provisional}"
        );
    }
}

#[test]
fn unroutable_invite_over_udp_gets_404_and_the_sbc_keeps_running() {
    let mut sbc = Sbc::start(unroutable());
    let target = sbc.config.sip_address();
    let socket = sip::udp_socket(sbc.config.net.host(2));
    let invite = sip::request("INVITE", target, "UDP", socket.local_addr().unwrap());
    let responses = sip::udp_transaction(&socket, target, &invite, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}\n{}", sbc.log_tail()));
    assert_rejected(&responses, &invite, &sbc);
    let ack = sip::ack_for_failure(&invite, sip::final_response(&responses));
    socket.send_to(ack.as_bytes(), target).unwrap();

    // Still alive and answering.
    let options = sip::request("OPTIONS", target, "UDP", socket.local_addr().unwrap());
    let responses = sip::udp_transaction(&socket, target, &options, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("after the INVITE: {error}\n{}", sbc.log_tail()));
    assert_eq!(sip::status_code(sip::final_response(&responses)), Some(200));
    sbc.assert_alive("an INVITE over UDP");
}

#[test]
fn unroutable_invite_over_tcp_gets_404_and_the_connection_stays_usable() {
    let mut sbc = Sbc::start(unroutable());
    let target = sbc.config.sip_address();
    let mut stream = SipStream::connect(sbc.config.net.host(2), target, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}\n{}", sbc.log_tail()));
    let invite = sip::request("INVITE", target, "TCP", stream.local_addr());
    let responses = stream
        .transaction(&invite, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}\n{}", sbc.log_tail()));
    assert_rejected(&responses, &invite, &sbc);
    stream
        .send(&sip::ack_for_failure(
            &invite,
            sip::final_response(&responses),
        ))
        .unwrap();

    let options = sip::request("OPTIONS", target, "TCP", stream.local_addr());
    let responses = stream
        .transaction(&options, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("after the INVITE: {error}\n{}", sbc.log_tail()));
    assert_eq!(sip::status_code(sip::final_response(&responses)), Some(200));
    sbc.assert_alive("an INVITE over TCP");
}

#[test]
fn unknown_method_gets_a_final_response() {
    let sbc = Sbc::start(SbcConfig::new());
    let target = sbc.config.sip_address();
    let socket = sip::udp_socket(sbc.config.net.host(2));
    let request = sip::request("FROBNICATE", target, "UDP", socket.local_addr().unwrap());
    let responses = sip::udp_transaction(&socket, target, &request, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}\n{}", sbc.log_tail()));
    let response = sip::final_response(&responses);
    // RFC 3261 §8.2.1: a method the UAS does not know gets 501, with Allow listing those
    // it does.
    assert_eq!(
        sip::status_code(response),
        Some(501),
        "an unknown method needs 501 Not Implemented: {response}\n{}",
        sbc.log_tail()
    );
    assert!(
        sip::header(response, "Allow").is_some_and(|allow| allow.contains("OPTIONS")),
        "501 must list the methods served in Allow: {response}"
    );
}
