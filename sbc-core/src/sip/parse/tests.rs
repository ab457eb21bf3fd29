//! Unit tests of the parser on hand-written messages.

use bytes::Bytes;

use super::*;
use crate::sip::{Contact, Host, Transport};

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/TCP [2001:db8::1];branch=z9hG4bKabc, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKdef\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: \"Alice A.\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com;transport=tcp>;expires=60\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 5\r\n\
\r\n\
v=0\r\n";

fn parse(text: &str) -> Result<Message, ParseError> {
    parse_message(Bytes::copy_from_slice(text.as_bytes()))
}

fn request(text: &str) -> Request {
    match parse(text) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn parses_a_typical_invite() {
    let r = request(INVITE);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.body.as_ref(), b"v=0\r\n");
    let vias = r.headers.vias().unwrap_or_default();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport, Transport::Udp);
    assert_eq!(vias[0].sent_by.port, Some(5060));
    assert_eq!(
        vias[0].branch().map(|b| b.as_ref()),
        Some(&b"z9hG4bK776asdhds"[..])
    );
    assert!(vias[0].params.contains("rport"));
    assert_eq!(
        vias[1].sent_by.host,
        Host::V6(
            "2001:db8::1"
                .parse()
                .unwrap_or(std::net::Ipv6Addr::UNSPECIFIED)
        )
    );
    assert_eq!(r.headers.top_via().ok(), vias.first().cloned());
    let from = r.headers.from().ok();
    assert_eq!(
        from.as_ref().and_then(|f| f.tag()).map(|t| t.as_ref()),
        Some(&b"1928301774"[..])
    );
    assert_eq!(
        from.and_then(|f| f.display_name),
        Some(Bytes::from_static(b"\"Alice A.\""))
    );
    assert_eq!(
        r.headers.to().ok().and_then(|t| t.display_name),
        Some(Bytes::from_static(b"Bob"))
    );
    assert_eq!(r.headers.cseq().ok().map(|c| c.seq), Some(314159));
    assert_eq!(r.headers.max_forwards(), Ok(Some(70)));
    assert_eq!(r.headers.content_length(), Ok(Some(5)));
    match r.headers.contact() {
        Ok(Some(Contact::Addresses(a))) => assert_eq!(a.len(), 1),
        other => panic!("{other:?}"),
    }
    let ct = r.headers.content_type().ok().flatten();
    assert_eq!(
        ct.map(|c| c.to_string()),
        Some("application/sdp".to_owned())
    );
}

#[test]
fn prints_back_identically() {
    let m = parse(INVITE).ok();
    let printed = m.as_ref().map(Message::to_bytes);
    assert_eq!(printed.as_deref(), Some(INVITE.as_bytes()));
}

#[test]
fn make_response_copies_the_dialog_headers() {
    let r = request(INVITE);
    let resp = r.make_response(StatusCode::OK, None, Some("xyz"));
    let text = String::from_utf8(resp.to_bytes().to_vec()).unwrap_or_default();
    assert_eq!(
        text,
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/TCP [2001:db8::1];branch=z9hG4bKabc, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKdef\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=xyz\r\n\
From: \"Alice A.\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n\r\n"
    );
}

#[test]
fn salvage_of_a_bad_request() {
    let bad = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 99999999999 INVITE");
    assert_eq!(parse(&bad), Err(ParseError::Malformed(Field::CSeq)));
    let salvage = salvage_for_response(&Bytes::from(bad));
    let salvage = salvage.unwrap_or_else(|| panic!("no salvage"));
    assert_eq!(salvage.vias.len(), 2);
    assert_eq!(salvage.method, Method::Invite);
    let resp = salvage.make_response(
        StatusCode::BAD_REQUEST,
        "Bad Request - Malformed CSeq",
        Some("t"),
    );
    assert_eq!(resp.headers.len(), 6);
    assert_eq!(
        salvage_for_response(&Bytes::from_static(b"SIP/2.0 200 OK\r\nVia: x\r\n")),
        None
    );
}

#[test]
fn folding_is_collapsed() {
    let folded = INVITE
        .replace("Max-Forwards: 70", "Max-Forwards:\r\n  70")
        .replace("CSeq: 314159 INVITE", "CSeq: 314159 \r\n\tINVITE");
    let r = request(&folded);
    assert_eq!(
        r.headers.get(&HeaderName::CSeq).map(|v| v.as_ref()),
        Some(&b"314159 INVITE"[..])
    );
    assert_eq!(r.headers.max_forwards(), Ok(Some(70)));
}

#[test]
fn errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "CSeq: 314159 INVITE",
            "CSeq: 314159 ACK",
            "cseq_method_mismatch",
        ),
        ("Max-Forwards: 70", "Max-Forwards: 256", "bad_max_forwards"),
        (
            "Content-Length: 5",
            "Content-Length: 6",
            "content_length_mismatch",
        ),
        (
            "Content-Length: 5",
            "Content-Length: 5\r\nl: 5",
            "multiple_content_length",
        ),
        (
            "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n",
            "",
            "missing_call_id",
        ),
        (
            "Call-ID: a84b4c76e66710@pc33",
            "Call-ID: a b",
            "bad_call_id",
        ),
        ("Max-Forwards: 70", "Max-Forwards 70", "bad_header_line"),
        ("\"Alice A.\"", "\"Alice\u{0}A.\"", "bad_from"),
        // RFC 3261 §20.10: a URI holding `?` must be in `<>`, whatever its scheme.
        (
            "To: Bob <sip:bob@biloxi.example.com>",
            "To: im:bob@x?y",
            "bad_to",
        ),
        (
            "To: Bob <sip:bob@biloxi.example.com>",
            "To: sip:b?ob@x",
            "bad_to",
        ),
        ("\"Alice A.\"", "\"Alice\\\u{e9}A.\"", "bad_from"),
        (
            "INVITE sip:bob@biloxi.example.com SIP/2.0",
            "INVITE sip:bob@biloxi.example.com SIP/3.0",
            "bad_version",
        ),
        (
            "Content-Type: application/sdp",
            "Content-Type: application",
            "bad_content_type",
        ),
        (
            "Content-Type: application/sdp",
            "Content-Type: application/sdp\r\nRequire: a,,b",
            "bad_require",
        ),
        (
            "Content-Type: application/sdp",
            "Content-Type: application/sdp\r\nRoute: sip:x",
            "bad_route",
        ),
        (
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\n",
            "bad_line_ending",
        ),
    ];
    for (from, to, name) in cases {
        let text = INVITE.replace(from, to);
        assert_ne!(text, INVITE, "{from}");
        assert_eq!(parse(&text).map_err(|e| e.name()), Err(*name), "{to}");
    }
    assert_eq!(
        parse(&INVITE[..100]).map_err(|e| e.name()),
        Err("unterminated_headers")
    );
    assert_eq!(parse("").map_err(|e| e.name()), Err("bad_start_line"));
}

/// RFC 3261 §25 grammar at its edges: each replacement in `INVITE` must be refused with
/// the given error name, or (with `None`) accepted.
#[test]
fn grammar_edges() {
    let cseq = "CSeq: 314159 INVITE";
    let via = "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport";
    let to = "To: Bob <sip:bob@biloxi.example.com>";
    let line = "INVITE sip:bob@biloxi.example.com SIP/2.0";
    let cases: &[(&str, &str, Option<&str>)] = &[
        (cseq, "CSeq: 4294967295 INVITE", None),
        (cseq, "CSeq: 4294967296 INVITE", Some("bad_cseq")),
        (cseq, "CSeq: -1 INVITE", Some("bad_cseq")),
        (cseq, "CSeq: 1INVITE", Some("bad_cseq")),
        (cseq, "CSeq: 1 INVITE x", Some("bad_cseq")),
        (cseq, "CSeq: 1 invite", Some("cseq_method_mismatch")),
        (cseq, "CSeq:\t 0000314159  \t INVITE ", None),
        (
            "Content-Length: 5",
            "Content-Length: -5",
            Some("bad_content_length"),
        ),
        (
            "Content-Length: 5",
            "Content-Length: 5 5",
            Some("bad_content_length"),
        ),
        (
            "Content-Length: 5",
            "Content-Length: 99999999999",
            Some("bad_content_length"),
        ),
        ("Content-Length: 5", "l: 0005", None),
        (
            "Max-Forwards: 70",
            "Max-Forwards: -1",
            Some("bad_max_forwards"),
        ),
        ("Max-Forwards: 70", "Max-Forwards: 0", None),
        (
            "Max-Forwards: 70",
            "Max-Forwards: 70\r\nMax-Forwards: 70",
            Some("multiple_max_forwards"),
        ),
        ("Max-Forwards: 70", "Max-Forwards : 70", None),
        ("Max-Forwards: 70", "Max-Forwards\t: 70", None),
        (
            "Max-Forwards: 70",
            "Max/Forwards: 70",
            Some("bad_header_line"),
        ),
        (
            "Max-Forwards: 70",
            "Max\"Forwards: 70",
            Some("bad_header_line"),
        ),
        ("Max-Forwards: 70", ": 70", Some("bad_header_line")),
        ("Max-Forwards: 70", "X-A\u{1}: 70", Some("bad_header_line")),
        (
            "Max-Forwards: 70",
            "Max-Forwards: 70\r",
            Some("bad_line_ending"),
        ),
        (
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\n\r\n",
            Some("missing_from"),
        ),
        (via, "Via: SIP/2.0/UDP", Some("bad_via")),
        (via, "Via: SIP/3.0/UDP h", Some("bad_via")),
        (via, "Via: SIP/2.0/UDP h;branch=", Some("bad_via")),
        (via, "Via: SIP/2.0/UDP h;;branch=z9hG4bK1", Some("bad_via")),
        (via, "Via: SIP/2.0/UDP h:65536", Some("bad_via")),
        (via, "Via: SIP/2.0/UDP 2001:db8::1", Some("bad_via")),
        (via, "Via: SIP/2.0/UDP h,", Some("bad_via")),
        (via, "Via: SIP/2.0/UDP h, , SIP/2.0/UDP i", Some("bad_via")),
        (
            via,
            "Via: sip / 2.0 / udp  h : 5060 ; rport ; received = 192.0.2.1",
            None,
        ),
        (
            via,
            "Via: SIP/2.0/UDP h;received=2001:db8::1;maddr=[2001:db8::2]",
            None,
        ),
        (via, "Via: SIP/2.0/UDP h;x=\"a, b\", SIP/2.0/TCP i", None),
        (to, "To: <sip:bob@[2001:db8::1]:5060>", None),
        (to, "To: <sip:bob@[2001:db8::1:5060>", Some("bad_to")),
        (to, "To: <sip:bob@[fe80::1%eth0]>", Some("bad_to")),
        (to, "To: <sip:b%2g@x>", Some("bad_to")),
        (to, "To: <sip:b%41@x>", None),
        (to, "To: \"Bob <sip:bob@x>", Some("bad_to")),
        (to, "To: \"Bob\\\" <sip:bob@x>", Some("bad_to")),
        (to, "To: \"B\\\"ob\" <sip:bob@x>", None),
        (to, "To: Bob <sip:bob@x", Some("bad_to")),
        (to, "To: <<sip:bob@x>>", Some("bad_to")),
        (to, "To: <sip:bob@x>;tag", None),
        (to, "To: <sip:bob@x>;tag=", Some("bad_to")),
        (to, "To: <sip:bob@x>, <sip:eve@x>", Some("bad_to")),
        (to, "To: <tel:+1-201-555-0123;phone-context=x>", None),
        (to, "To: tel:+1-201-555-0123;tag=1", None),
        (line, "INVITE sip:bob@[2001:db8::1] SIP/2.0", None),
        (
            line,
            "INVITE sip:bob@2001:db8::1 SIP/2.0",
            Some("bad_request_uri"),
        ),
        (
            line,
            "INVITE sip:bob@x?h=v SIP/2.0",
            Some("bad_request_uri"),
        ),
        (line, "INVITE tel:+12015550123 SIP/2.0", None),
        (line, "INVITE sip:bob@x SIP/2.0 ", Some("bad_start_line")),
        (line, "INVITE\tsip:bob@x SIP/2.0", Some("bad_start_line")),
        (line, "INV@TE sip:bob@x SIP/2.0", Some("bad_start_line")),
    ];
    for (from, to, expected) in cases {
        let text = INVITE.replace(from, to);
        assert_ne!(text, INVITE, "{from}");
        let got = parse(&text).map(drop).map_err(|e| e.name());
        match expected {
            Some(name) => assert_eq!(got, Err(*name), "{to}"),
            None => assert_eq!(got, Ok(()), "{to}"),
        }
    }
}

#[test]
fn status_line_edges() {
    let rest = "\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\n\
To: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
    let cases: &[(&str, Option<&str>)] = &[
        ("SIP/2.0 100 Trying", None),
        ("SIP/2.0 699 X", None),
        ("SIP/2.0 200", None),
        ("SIP/2.0 200 ", None),
        ("SIP/2.0 200 \u{e9}\t\u{2603}", None),
        ("SIP/2.0 099 X", Some("bad_status_code")),
        ("SIP/2.0 700 X", Some("bad_status_code")),
        ("SIP/2.0 20 X", Some("bad_status_code")),
        ("SIP/2.0 2000 X", Some("bad_status_code")),
        ("SIP/2.0 +20 X", Some("bad_status_code")),
        ("SIP/2.0 200 O\u{1}K", Some("bad_reason_phrase")),
        ("SIP/2.0 200 O\u{7f}K", Some("bad_reason_phrase")),
        ("SIP/2.1 200 OK", Some("bad_version")),
    ];
    for (line, expected) in cases {
        let got = parse(&format!("{line}{rest}"))
            .map(drop)
            .map_err(|e| e.name());
        match expected {
            Some(name) => assert_eq!(got, Err(*name), "{line}"),
            None => assert_eq!(got, Ok(()), "{line}"),
        }
    }
    let bad_utf8 = Bytes::from([&b"SIP/2.0 200 \xff"[..], rest.as_bytes()].concat());
    assert_eq!(
        parse_message(bad_utf8).map(drop).map_err(|e| e.name()),
        Err("bad_reason_phrase")
    );
}

#[test]
fn headers_that_are_not_lists_are_never_split() {
    let date = "Date: Sat, 13 Nov 2010 23:29:00 GMT";
    let auth = "WWW-Authenticate: Digest realm=\"a, b\", nonce=\"n\", algorithm=MD5";
    let text = INVITE.replace(
        "Max-Forwards: 70",
        &format!("{date}\r\n{auth}\r\nMax-Forwards: 70"),
    );
    let r = request(&text);
    let values: Vec<&[u8]> = r
        .headers
        .get_all(&HeaderName::Date)
        .map(|v| v.as_ref())
        .collect();
    assert_eq!(values, [&b"Sat, 13 Nov 2010 23:29:00 GMT"[..]]);
    let values: Vec<&[u8]> = r
        .headers
        .get_all(&HeaderName::WwwAuthenticate)
        .map(|v| v.as_ref())
        .collect();
    assert_eq!(
        values,
        [&b"Digest realm=\"a, b\", nonce=\"n\", algorithm=MD5"[..]]
    );
    assert_eq!(Message::Request(r).to_bytes(), Bytes::from(text));
}
