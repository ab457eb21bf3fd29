//! The SBC's own endpoint (RFC 3261 §8.2 UAS behaviour), driven on a virtual clock.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_core::endpoint::{Endpoint, EndpointConfig};
use sbc_core::sip::parse::parse_message;
use sbc_core::sip::{HeaderName, Message, Response};
use sbc_core::transaction::Peer;

fn endpoint() -> Endpoint {
    let mut counter = 0u64;
    Endpoint::new(
        EndpointConfig {
            server: Some("sbc-test".into()),
            ..EndpointConfig::default()
        },
        move || {
            counter += 1;
            counter
        },
    )
}

fn phone() -> Peer {
    Peer::unreliable("192.0.2.10:5062".parse().expect("address"))
}

/// Feeds one message and returns every response sent at once, parsed.
fn exchange(endpoint: &mut Endpoint, now: Instant, message: &[u8]) -> Vec<Response> {
    raw_exchange(endpoint, now, message)
        .into_iter()
        .map(|payload| match parse_message(payload) {
            Ok(Message::Response(response)) => response,
            other => panic!("endpoint sent something other than a response: {other:?}"),
        })
        .collect()
}

/// Feeds one message and returns the status code of every response sent at once. An
/// error response copies the request's malformed headers as they were (RFC 3261
/// §8.2.6.2), so it is read by its status line only.
fn statuses(endpoint: &mut Endpoint, now: Instant, message: &[u8]) -> Vec<u16> {
    raw_exchange(endpoint, now, message)
        .into_iter()
        .map(|payload| {
            let code = payload.get(8..11).expect("status line");
            std::str::from_utf8(code)
                .expect("digits")
                .parse()
                .expect("status code")
        })
        .collect()
}

fn raw_exchange(endpoint: &mut Endpoint, now: Instant, message: &[u8]) -> Vec<Bytes> {
    endpoint.handle_inbound(now, Bytes::copy_from_slice(message), phone());
    let mut sent = Vec::new();
    while let Some(transmit) = endpoint.poll_transmit() {
        assert_eq!(
            transmit.destination,
            phone(),
            "answers go back to the source"
        );
        assert!(
            transmit.payload.starts_with(b"SIP/2.0 "),
            "{:?}",
            transmit.payload
        );
        sent.push(transmit.payload);
    }
    sent
}

fn only(mut responses: Vec<Response>) -> Response {
    assert_eq!(
        responses.len(),
        1,
        "expected exactly one response: {responses:?}"
    );
    responses.remove(0)
}

fn header<'a>(response: &'a Response, name: &HeaderName) -> &'a str {
    response
        .headers
        .get(name)
        .map(|value| std::str::from_utf8(value).expect("utf-8"))
        .unwrap_or_else(|| panic!("no {name} in {response:?}"))
}

fn request(method: &str, uri: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-{method}-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:sbc.example.net>\r\n\
         Call-ID: call-{method}@192.0.2.10\r\n\
         CSeq: 1 {method}\r\n\
         {extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn options_gets_200_with_capabilities() {
    let mut sbc = endpoint();
    let ok = only(exchange(
        &mut sbc,
        Instant::now(),
        &request("OPTIONS", "sip:sbc.example.net", "", ""),
    ));
    assert_eq!(ok.status.as_u16(), 200);
    assert_eq!(header(&ok, &HeaderName::Allow), "OPTIONS");
    assert_eq!(header(&ok, &HeaderName::Accept), "application/sdp");
    assert!(ok.headers.contains(&HeaderName::Supported));
    assert_eq!(header(&ok, &HeaderName::Server), "sbc-test");
    let to = ok.headers.to().expect("To");
    assert_eq!(to.tag().map(|t| t.as_ref()), Some(&b"0000000000000001"[..]));
    assert_eq!(
        ok.headers.call_id().expect("Call-ID").as_ref(),
        b"call-OPTIONS@192.0.2.10"
    );
}

#[test]
fn rport_and_received_are_stamped_on_the_top_via() {
    let mut sbc = endpoint();
    let message = request("OPTIONS", "sip:sbc.example.net", "", "");
    // The client claims 192.0.2.10:5062 and really is 192.0.2.10:5062: rport still gets
    // filled in (RFC 3581 §4), and received too.
    let ok = only(exchange(&mut sbc, Instant::now(), &message));
    let via = ok.headers.top_via().expect("Via");
    assert_eq!(
        via.params.get("rport").flatten().map(|v| v.as_ref()),
        Some(&b"5062"[..])
    );
    assert_eq!(
        via.params.get("received").flatten().map(|v| v.as_ref()),
        Some(&b"192.0.2.10"[..])
    );
}

#[test]
fn received_is_added_when_the_sent_by_host_is_not_the_source() {
    let mut sbc = endpoint();
    let message = String::from_utf8(request("OPTIONS", "sip:sbc.example.net", "", ""))
        .expect("utf-8")
        .replace(
            "192.0.2.10:5062;branch=z9hG4bK-OPTIONS-1;rport",
            "phone.example.com;branch=z9hG4bK-x",
        );
    let ok = only(exchange(&mut sbc, Instant::now(), message.as_bytes()));
    let via = ok.headers.top_via().expect("Via");
    assert_eq!(
        via.params.get("received").flatten().map(|v| v.as_ref()),
        Some(&b"192.0.2.10"[..])
    );
    assert!(!via.params.contains("rport"));
}

#[test]
fn invite_is_refused_with_405_and_the_ack_is_absorbed() {
    let mut sbc = endpoint();
    let start = Instant::now();
    let invite = request(
        "INVITE",
        "sip:bob@example.net",
        "Contact: <sip:alice@192.0.2.10:5062>\r\n",
        "",
    );
    let refused = only(exchange(&mut sbc, start, &invite));
    assert_eq!(refused.status.as_u16(), 405);
    assert_eq!(header(&refused, &HeaderName::Allow), "OPTIONS");

    // The retransmitted INVITE gets the same 405 again from the transaction.
    let again = only(exchange(
        &mut sbc,
        start + Duration::from_millis(500),
        &invite,
    ));
    assert_eq!(again.status, refused.status);
    assert_eq!(
        again.headers.to().expect("To").tag(),
        refused.headers.to().expect("To").tag()
    );

    // The ACK (same branch, To tag from the response) ends the retransmissions.
    let to_tag = String::from_utf8(
        refused
            .headers
            .to()
            .expect("To")
            .tag()
            .expect("tag")
            .to_vec(),
    )
    .expect("utf-8");
    let ack = String::from_utf8(invite.clone())
        .expect("utf-8")
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace(
            "To: <sip:sbc.example.net>",
            &format!("To: <sip:sbc.example.net>;tag={to_tag}"),
        );
    assert!(exchange(&mut sbc, start + Duration::from_millis(600), ack.as_bytes()).is_empty());
    // No more 405s: run every timer to the end.
    let mut now = start;
    while let Some(deadline) = sbc.poll_timeout() {
        now = deadline;
        sbc.handle_timeout(now);
        assert!(sbc.poll_transmit().is_none(), "retransmitted after the ACK");
    }
    assert_eq!(sbc.transactions(), 0);
    assert!(now - start <= Duration::from_secs(40));
}

#[test]
fn unknown_method_gets_501_with_allow() {
    let mut sbc = endpoint();
    let response = only(exchange(
        &mut sbc,
        Instant::now(),
        &request("FROBNICATE", "sip:sbc.example.net", "", ""),
    ));
    assert_eq!(response.status.as_u16(), 501);
    assert_eq!(header(&response, &HeaderName::Allow), "OPTIONS");
}

#[test]
fn in_dialog_methods_without_a_dialog_get_481() {
    for method in ["BYE", "UPDATE", "INFO", "PRACK", "CANCEL"] {
        let mut sbc = endpoint();
        let response = only(exchange(
            &mut sbc,
            Instant::now(),
            &request(method, "sip:sbc.example.net", "", ""),
        ));
        assert_eq!(response.status.as_u16(), 481, "{method}");
    }
}

#[test]
fn require_of_an_unknown_extension_gets_420_listing_it() {
    let mut sbc = endpoint();
    let response = only(exchange(
        &mut sbc,
        Instant::now(),
        &request(
            "OPTIONS",
            "sip:sbc.example.net",
            "Require: foo, 100rel\r\n",
            "",
        ),
    ));
    assert_eq!(response.status.as_u16(), 420);
    assert_eq!(header(&response, &HeaderName::Unsupported), "foo, 100rel");
}

#[test]
fn a_body_of_an_unknown_type_gets_415_with_accept() {
    let mut sbc = endpoint();
    let response = only(exchange(
        &mut sbc,
        Instant::now(),
        &request(
            "OPTIONS",
            "sip:sbc.example.net",
            "Content-Type: text/plain\r\n",
            "hello",
        ),
    ));
    assert_eq!(response.status.as_u16(), 415);
    assert_eq!(header(&response, &HeaderName::Accept), "application/sdp");
}

#[test]
fn a_malformed_request_gets_400_naming_the_problem() {
    let mut sbc = endpoint();
    let broken = String::from_utf8(request("OPTIONS", "sip:sbc.example.net", "", ""))
        .expect("utf-8")
        .replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS");
    let sent = raw_exchange(&mut sbc, Instant::now(), broken.as_bytes());
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].starts_with(b"SIP/2.0 400 Bad Request - Malformed CSeq\r\n"),
        "{:?}",
        sent[0]
    );
    assert_eq!(sbc.stats().rejected.get("bad_cseq"), Some(&1));
}

#[test]
fn garbage_and_malformed_responses_are_dropped_and_counted() {
    let mut sbc = endpoint();
    let now = Instant::now();
    assert!(exchange(&mut sbc, now, b"\x16\x03\x01\x02\x00garbage").is_empty());
    assert!(
        exchange(
            &mut sbc,
            now,
            b"SIP/2.0 999 Nope\r\nVia: SIP/2.0/UDP x\r\n\r\n"
        )
        .is_empty()
    );
    assert!(exchange(&mut sbc, now, b"").is_empty());
    let dropped: u64 = sbc.stats().dropped.values().sum();
    assert_eq!(dropped, 3, "{:?}", sbc.stats());
}

/// Every RFC 4475 and RFC 5118 message, fed to the endpoint as a UDP datagram: the answer
/// a UAS must give (RFC 4475 §3 prose), or none for responses and hopeless input.
#[test]
fn torture_corpora_get_the_answer_a_uas_must_give() {
    let root = std::env::var("SBC_TESTDATA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata").into());
    // (file, status or None for no answer, why)
    let expected: &[(&str, Option<u16>, &str)] = &[
        (
            "torture/messages/wsinv.dat",
            Some(405),
            "valid INVITE; this version serves only OPTIONS",
        ),
        (
            "torture/messages/intmeth.dat",
            Some(501),
            "unknown method (§3.1.1.2)",
        ),
        ("torture/messages/esc01.dat", Some(405), "valid INVITE"),
        ("torture/messages/escnull.dat", Some(405), "valid REGISTER"),
        (
            "torture/messages/esc02.dat",
            Some(501),
            "RE%47IST%45R is not REGISTER (§3.1.1.5)",
        ),
        ("torture/messages/lwsdisp.dat", Some(200), "valid OPTIONS"),
        ("torture/messages/longreq.dat", Some(405), "valid INVITE"),
        (
            "torture/messages/dblreq.dat",
            Some(405),
            "the REGISTER, trailing octets ignored",
        ),
        ("torture/messages/semiuri.dat", Some(200), "valid OPTIONS"),
        (
            "torture/messages/transports.dat",
            Some(200),
            "valid OPTIONS",
        ),
        (
            "torture/messages/mpart01.dat",
            Some(405),
            "a MESSAGE with a multipart body",
        ),
        (
            "torture/messages/unreason.dat",
            None,
            "a response: no transaction, dropped",
        ),
        ("torture/messages/noreason.dat", None, "a response: dropped"),
        ("torture/messages/badinv01.dat", Some(400), "§3.1.2.1"),
        ("torture/messages/clerr.dat", Some(400), "§3.1.2.2 over UDP"),
        ("torture/messages/ncl.dat", Some(400), "§3.1.2.3"),
        ("torture/messages/scalar02.dat", Some(400), "§3.1.2.4"),
        (
            "torture/messages/scalarlg.dat",
            None,
            "§3.1.2.5: a response, discarded",
        ),
        ("torture/messages/quotbal.dat", Some(400), "§3.1.2.6"),
        ("torture/messages/ltgtruri.dat", Some(400), "§3.1.2.7"),
        ("torture/messages/lwsruri.dat", Some(400), "§3.1.2.8"),
        (
            "torture/messages/lwsstart.dat",
            Some(400),
            "§3.1.2.9 (strict)",
        ),
        ("torture/messages/trws.dat", Some(400), "§3.1.2.10 (strict)"),
        ("torture/messages/escruri.dat", Some(400), "§3.1.2.11"),
        (
            "torture/messages/baddate.dat",
            Some(405),
            "§3.1.2.12: an INVITE; Date does not matter to this UAS, so it is accepted",
        ),
        ("torture/messages/regbadct.dat", Some(400), "§3.1.2.13"),
        ("torture/messages/badaspec.dat", Some(400), "§3.1.2.14"),
        ("torture/messages/baddn.dat", Some(400), "§3.1.2.15"),
        ("torture/messages/badvers.dat", Some(505), "§3.1.2.16"),
        ("torture/messages/mismatch01.dat", Some(400), "§3.1.2.17"),
        (
            "torture/messages/mismatch02.dat",
            Some(400),
            "§3.1.2.18 (400 acceptable)",
        ),
        (
            "torture/messages/bigcode.dat",
            None,
            "§3.1.2.19: a response, dropped",
        ),
        (
            "torture/messages/badbranch.dat",
            Some(200),
            "§3.2.1: matched as RFC 2543",
        ),
        ("torture/messages/insuf.dat", Some(400), "§3.3.1"),
        ("torture/messages/unkscm.dat", Some(416), "§3.3.2"),
        ("torture/messages/novelsc.dat", Some(416), "§3.3.3"),
        (
            "torture/messages/unksm2.dat",
            Some(405),
            "§3.3.4: a REGISTER",
        ),
        ("torture/messages/bext01.dat", Some(420), "§3.3.5"),
        (
            "torture/messages/invut.dat",
            Some(405),
            "§3.3.6: method inspection comes first (§8.2.1)",
        ),
        (
            "torture/messages/regaut01.dat",
            Some(405),
            "§3.3.7: a REGISTER",
        ),
        ("torture/messages/multi01.dat", Some(400), "§3.3.8"),
        ("torture/messages/mcl01.dat", Some(400), "§3.3.9"),
        (
            "torture/messages/bcast.dat",
            None,
            "§3.3.10: a response, dropped",
        ),
        (
            "torture/messages/zeromf.dat",
            Some(200),
            "§3.3.11: an endpoint processes it",
        ),
        (
            "torture/messages/cparam01.dat",
            Some(405),
            "§3.3.12: a REGISTER",
        ),
        (
            "torture/messages/cparam02.dat",
            Some(405),
            "§3.3.13: a REGISTER",
        ),
        (
            "torture/messages/regescrt.dat",
            Some(405),
            "§3.3.14: a REGISTER",
        ),
        (
            "torture/messages/sdp01.dat",
            Some(405),
            "§3.3.15: method inspection first",
        ),
        (
            "torture/messages/inv2543.dat",
            Some(405),
            "§3.4.1: an RFC 2543 INVITE",
        ),
        (
            "torture-ipv6/wire/ipv6-good.dat",
            Some(405),
            "RFC 5118 §4.1",
        ),
        ("torture-ipv6/wire/ipv6-bad.dat", Some(400), "RFC 5118 §4.2"),
        (
            "torture-ipv6/wire/port-ambiguous.dat",
            Some(405),
            "RFC 5118 §4.3",
        ),
        (
            "torture-ipv6/wire/port-unambiguous.dat",
            Some(405),
            "RFC 5118 §4.4",
        ),
        (
            "torture-ipv6/wire/via-received-param-with-delim.dat",
            Some(481),
            "RFC 5118 §4.5: a BYE outside any dialog",
        ),
        (
            "torture-ipv6/wire/via-received-param-no-delim.dat",
            Some(200),
            "RFC 5118 §4.5",
        ),
        (
            "torture-ipv6/wire/ipv6-in-sdp.dat",
            Some(405),
            "RFC 5118 §4.6",
        ),
        (
            "torture-ipv6/wire/mult-ip-in-header.dat",
            Some(481),
            "RFC 5118 §4.7: a BYE outside any dialog",
        ),
        (
            "torture-ipv6/wire/mult-ip-in-sdp.dat",
            Some(405),
            "RFC 5118 §4.8",
        ),
        (
            "torture-ipv6/wire/ipv4-mapped-ipv6.dat",
            Some(405),
            "RFC 5118 §4.9",
        ),
        (
            "torture-ipv6/wire/ipv6-bug-abnf-3-colons.dat",
            Some(200),
            "RFC 5118 §4.10",
        ),
        (
            "torture-ipv6/wire/ipv6-correct-abnf-2-colons.dat",
            Some(200),
            "RFC 5118 §4.10",
        ),
    ];
    let mut failures = Vec::new();
    for (file, want, why) in expected {
        let bytes =
            std::fs::read(format!("{root}/{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut sbc = endpoint();
        let answers = statuses(&mut sbc, Instant::now(), &bytes);
        let got = match answers[..] {
            [] => None,
            [status] => Some(status),
            _ => panic!("{file}: {} responses", answers.len()),
        };
        if got != *want {
            failures.push(format!("{file}: got {got:?}, want {want:?} ({why})"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---- with a B2BUA ----

mod b2bua_support;

use sbc_core::b2bua::{B2bua, B2buaConfig, PassAll, RouteChoice, Target};
use sbc_core::net::{self, Protocol};

/// Routes every call to one TLS target with a server name.
#[derive(Debug)]
struct ToTlsTrunk;

impl sbc_core::b2bua::CallRouter for ToTlsTrunk {
    fn route(
        &mut self,
        _: std::net::SocketAddr,
        _: &sbc_core::sip::Request,
        _: &mut dyn FnMut() -> u64,
    ) -> Result<RouteChoice, sbc_core::b2bua::NoRoute> {
        Ok(RouteChoice {
            trunk: "tls-trunk".into(),
            source_trunk: None,
            targets: vec![Target {
                addr: "198.51.100.30:5061".parse().expect("address"),
                protocol: Protocol::Tls,
                server_name: Some("trunk.example.org".into()),
                registered: None,
            }],
            toward_callee: std::sync::Arc::new(PassAll),
            toward_caller: std::sync::Arc::new(PassAll),
        })
    }
}

fn relaying_endpoint() -> Endpoint {
    let media = b2bua_support::FakeRelay(std::sync::Arc::default());
    let mut counter = 0u64;
    let b2bua = B2bua::new(
        B2buaConfig {
            local: vec![
                (Protocol::Udp, "203.0.113.1:5060".parse().expect("address")),
                (Protocol::Tls, "203.0.113.1:5061".parse().expect("address")),
            ],
            ..B2buaConfig::default()
        },
        Box::new(ToTlsTrunk),
        Box::new(media),
        move || {
            counter += 1;
            counter << 20
        },
    );
    endpoint().with_b2bua(b2bua)
}

#[test]
fn with_a_b2bua_options_lists_the_relayed_methods() {
    let mut sbc = relaying_endpoint();
    let ok = only(exchange(
        &mut sbc,
        Instant::now(),
        &request("OPTIONS", "sip:sbc.example.net", "", ""),
    ));
    assert_eq!(
        header(&ok, &HeaderName::Allow),
        "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK, MESSAGE"
    );
    assert_eq!(header(&ok, &HeaderName::Supported), "timer, 100rel");
}

#[test]
fn with_a_b2bua_an_invite_goes_to_the_target_over_tls() {
    let mut sbc = relaying_endpoint();
    let invite = request(
        "INVITE",
        "sips:bob@sbc.example.net",
        "Contact: <sips:alice@192.0.2.10:5062>\r\n",
        "",
    );
    sbc.handle_inbound(Instant::now(), Bytes::from(invite), phone());
    let transmit = sbc.poll_transmit().expect("the B-leg INVITE");
    assert!(transmit.destination.flow.is_none());
    // The driver learns the protocol and the name to check the certificate against.
    assert_eq!(
        sbc.target_of(&transmit),
        net::Target::Destination(net::Destination::tls(
            "198.51.100.30:5061".parse().expect("address"),
            "trunk.example.org"
        ))
    );
    let sent = match parse_message(transmit.payload).expect("parses") {
        Message::Request(request) => request,
        Message::Response(_) => panic!("expected the INVITE"),
    };
    assert_eq!(sent.uri.to_string(), "sips:bob@trunk.example.org");
    let via = sent.headers.top_via().expect("Via");
    assert_eq!(via.sent_by.to_string(), "203.0.113.1:5061");
    assert_eq!(via.transport.as_str(), "TLS");
    let contact = sent.headers.get(&HeaderName::Contact).expect("Contact");
    assert_eq!(&contact[..], b"<sips:203.0.113.1:5061>");
    // Answers to the caller still go back on its flow.
    assert!(sbc.poll_transmit().is_none());
    assert_eq!(sbc.b2bua().expect("b2bua").calls(), 1);
}

#[test]
fn with_a_b2bua_in_dialog_bodies_are_not_inspected_but_offers_are() {
    let mut sbc = relaying_endpoint();
    let info = String::from_utf8(request(
        "INFO",
        "sip:sbc.example.net",
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=1\r\n",
    ))
    .expect("utf-8")
    .replace(
        "To: <sip:sbc.example.net>",
        "To: <sip:sbc.example.net>;tag=t1",
    );
    // No such dialog (not 415: the body would have been relayed).
    assert_eq!(statuses(&mut sbc, Instant::now(), info.as_bytes()), [481]);
    let invite = request(
        "INVITE",
        "sip:bob@sbc.example.net",
        "Contact: <sip:alice@192.0.2.10:5062>\r\nContent-Type: text/plain\r\n",
        "hello",
    );
    assert_eq!(statuses(&mut sbc, Instant::now(), &invite), [415]);
    // Out of a dialog, BYE still has nothing to act on.
    let bye = request("BYE", "sip:sbc.example.net", "", "");
    assert_eq!(statuses(&mut sbc, Instant::now(), &bye), [481]);
}
