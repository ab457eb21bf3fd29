//! The parser and its accessors on inputs crafted to be slow: 60 KiB messages of the
//! worst shapes an attacker can send in one datagram. Each must be handled in time linear
//! in its size; the bound is generous (a quadratic scan of 60 KiB takes seconds even in
//! release builds) so that a loaded machine does not make the test flaky.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;

const SIZE: usize = 60 * 1024;
const BOUND: Duration = Duration::from_millis(750);

const HEAD: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n\
Call-ID: c@x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n";

/// A message whose header section is `HEAD`, then `line` with `unit` repeated to fill
/// about 60 KiB, then the end of the headers.
fn message(prefix: &str, unit: &str, suffix: &str) -> Bytes {
    let mut text = String::with_capacity(SIZE + 256);
    text.push_str(HEAD);
    text.push_str(prefix);
    while text.len() + unit.len() + suffix.len() < SIZE {
        text.push_str(unit);
    }
    text.push_str(suffix);
    text.push_str("\r\n");
    Bytes::from(text)
}

/// Parses and, when that succeeds, runs every accessor and prints; returns how long it
/// took.
fn exercise(input: Bytes) -> Duration {
    let started = Instant::now();
    if let Ok(message) = parse_message(input.clone()) {
        let h = message.headers();
        let _ = (h.vias(), h.top_via(), h.from(), h.to(), h.contact());
        let _ = (h.routes(), h.record_routes(), h.content_type(), h.cseq());
        let _ = (h.require(), h.supported(), h.proxy_require(), h.call_id());
        let _ = message.to_bytes();
    }
    let _ = salvage_for_response(&input);
    started.elapsed()
}

#[test]
fn worst_case_shapes_take_linear_time() {
    let shapes: &[(&str, &str, &str, &str)] = &[
        ("unknown headers", "", "X-A: b\r\n", ""),
        ("one-letter headers", "", "a:\r\n", ""),
        (
            "Via lines",
            "",
            "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n",
            "",
        ),
        (
            "Via list",
            "Via: SIP/2.0/UDP h",
            ", SIP/2.0/UDP h;rport",
            "\r\n",
        ),
        ("Via flag params", "Via: SIP/2.0/UDP h", ";a", "\r\n"),
        ("Via valued params", "Via: SIP/2.0/UDP h", ";a=b", "\r\n"),
        ("Contact list", "Contact: <sip:a@b>", ",<sip:a@b>", "\r\n"),
        (
            "Contact addr-specs",
            "Contact: sip:a@b",
            ", sip:a@b;q=1",
            "\r\n",
        ),
        ("Route list", "Route: <sip:a;lr>", ",<sip:b;lr>", "\r\n"),
        ("commas", "Contact: <sip:a@b>", ",", "\r\n"),
        ("open brackets", "Contact: ", "<", "sip:a@b>\r\n"),
        ("open brackets, no close", "Contact: ", "<", "\r\n"),
        ("close brackets", "Contact: <sip:a@b", ">", "\r\n"),
        ("quotes", "Contact: ", "\"", "<sip:a@b>\r\n"),
        ("escaped quotes", "Contact: \"", "\\\"", "\" <sip:a@b>\r\n"),
        ("backslashes", "Contact: \"", "\\\\", "\" <sip:a@b>\r\n"),
        ("lone backslashes", "Contact: \"", "\\", "\r\n"),
        ("display tokens", "Contact: ", "a \t", "<sip:a@b>\r\n"),
        ("display tokens, no bracket", "Contact: ", "a ", "\r\n"),
        ("URI params", "Contact: <sip:a@b", ";x", ">\r\n"),
        ("URI escapes", "Contact: <sip:", "%41", "@b>\r\n"),
        ("at signs", "Contact: <sip:a", "@a", ">\r\n"),
        ("colons", "Contact: <sip:a", ":", "@b>\r\n"),
        ("IPv6 brackets", "Via: SIP/2.0/UDP ", "[", "\r\n"),
        ("IPv6 colons", "Via: SIP/2.0/UDP [", ":", "]\r\n"),
        ("IPv6 closes", "Contact: <sip:[::1]", "]", ">\r\n"),
        ("folds", "Subject: a", "\r\n b", "\r\n"),
        ("empty folds", "Subject: a", "\r\n ", "\r\n"),
        ("Require list", "Require: a", ",a", "\r\n"),
        ("long Call-ID", "X: ", "a", "\r\n"),
        ("long header name", "", "A", ": b\r\n"),
        ("dots in host", "Contact: <sip:a", ".", ">\r\n"),
        ("digits in host", "Contact: <sip:1", ".1", ">\r\n"),
        ("tel number", "Contact: <tel:", "1", ">\r\n"),
        ("semicolons in user", "Contact: <sip:", ";", "@b>\r\n"),
        (
            "quoted param values",
            "Via: SIP/2.0/UDP h",
            ";a=\"\\\"\"",
            "\r\n",
        ),
    ];
    for &(name, prefix, unit, suffix) in shapes {
        let input = message(prefix, unit, suffix);
        let took = exercise(input);
        assert!(took < BOUND, "{name}: {took:?}");
    }
}

#[test]
fn a_start_line_of_spaces_or_a_huge_uri_is_cheap() {
    let spaces = Bytes::from(format!("INVITE{}SIP/2.0\r\n\r\n", " ".repeat(SIZE)));
    assert!(exercise(spaces) < BOUND);
    let long_uri = Bytes::from(format!(
        "INVITE sip:{}@b SIP/2.0\r\n\r\n",
        "%41".repeat(SIZE / 3)
    ));
    assert!(exercise(long_uri) < BOUND);
    let crlfs = Bytes::from("\r\n".repeat(SIZE / 2));
    assert!(exercise(crlfs) < BOUND);
}
