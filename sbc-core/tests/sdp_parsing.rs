//! Parser behaviour: what is refused (and with which error name and line), what is kept
//! as received, line ends, limits, non-UTF-8 bytes.

// A failed expectation is a failed test: panicking with a message is what a test does.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv6Addr};

use bytes::Bytes;
use sbc_core::sdp::{AddrType, Host, Limits, Line, NetType, SdpError, SessionDescription};

const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\n";

fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    SessionDescription::parse(text.as_bytes())
}

fn error(text: &str) -> (&'static str, Option<usize>) {
    let e = parse(text).expect_err("must be refused");
    (e.name(), e.line())
}

fn round_trip(input: &[u8]) {
    let sdp = SessionDescription::parse(input).expect("parses");
    assert_eq!(
        String::from_utf8_lossy(&sdp.to_bytes()),
        String::from_utf8_lossy(input)
    );
}

#[test]
fn first_three_lines_are_strict() {
    assert_eq!(error(""), ("missing_version", Some(1)));
    assert_eq!(
        error("o=- 1 2 IN IP4 192.0.2.1\r\n"),
        ("missing_version", Some(1))
    );
    assert_eq!(error("v=1\r\n"), ("bad_version", Some(1)));
    assert_eq!(error("v=0 \r\n"), ("bad_version", Some(1)));
    assert_eq!(error("v=0\r\n"), ("missing_origin", Some(2)));
    assert_eq!(error("v=0\r\ns=-\r\n"), ("missing_origin", Some(2)));
    assert_eq!(
        error("v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\n"),
        ("missing_session_name", Some(3))
    );
    assert_eq!(
        error("v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\nt=0 0\r\ns=-\r\n"),
        ("missing_session_name", Some(3))
    );
    for repeated in ["v=0", "o=- 1 2 IN IP4 192.0.2.1", "s=again"] {
        let text = format!("{HEAD}t=0 0\r\n{repeated}\r\n");
        assert_eq!(error(&text), ("misplaced_line", Some(5)), "{repeated}");
    }
}

#[test]
fn origin_is_strict() {
    for (origin, why) in [
        ("o=- 1 2 IN IP4", "five fields"),
        ("o=- 1 2 IN IP4 192.0.2.1 extra", "seven fields"),
        ("o=- x 2 IN IP4 192.0.2.1", "session id not digits"),
        ("o=- 1 -2 IN IP4 192.0.2.1", "version not digits"),
        ("o=- 1 2 IN IP4 2001:db8::1", "IPv6 with IP4"),
        ("o=- 1 2 IN IP6 [2001:db8::1]", "brackets"),
        ("o=- 1 2 IN IP6 192.0.2.1", "IPv4 with IP6"),
        ("o=- 1 2 IN IP4 192.0.2.300", "bad IPv4"),
        ("o=- 1 2 IN IP6 2001:db8:::1:2:3:4:5:6", "bad IPv6"),
    ] {
        let text = format!("v=0\r\n{origin}\r\ns=-\r\n");
        assert_eq!(error(&text), ("bad_origin", Some(2)), "{why}");
    }
}

#[test]
fn connection_is_strict() {
    for c in [
        "c=IN IP4",
        "c=IN IP4 192.0.2.1 x",
        "c=IN IP4 2001:db8::1",
        "c=IN IP6 [2001:db8::1]",
        "c=IN IP4 224.2.1.1/ttl",
        "c=IN IP4 224.2.1.1/1/2/3",
        "c=IN IP4 /127",
    ] {
        let text = format!("{HEAD}{c}\r\n");
        assert_eq!(error(&text), ("bad_connection", Some(4)), "{c}");
    }
    let media_level = format!("{HEAD}m=audio 1 RTP/AVP 0\r\nc=IN IP6 192.0.2.1\r\n");
    assert_eq!(error(&media_level), ("bad_connection", Some(5)));
}

#[test]
fn media_line_is_strict() {
    for (m, name) in [
        ("m=audio", "bad_media_line"),
        ("m=audio 49170", "bad_media_line"),
        ("m=audio x RTP/AVP 0", "bad_media_line"),
        ("m=audio 49170/x RTP/AVP 0", "bad_media_line"),
        ("m=au(dio 49170 RTP/AVP 0", "bad_media_line"),
        ("m=audio 49170 RTP//AVP 0", "bad_media_line"),
        ("m=audio 49170 RTP/AVP 0 @", "bad_media_line"),
        ("m=audio 65536 RTP/AVP 0", "bad_port"),
        ("m=audio 99999999999999999999999 RTP/AVP 0", "bad_port"),
        ("m=audio 49170/0 RTP/AVP 0", "bad_port"),
        ("m=audio 49170/65536 RTP/AVP 0", "bad_port"),
    ] {
        let text = format!("{HEAD}t=0 0\r\n{m}\r\n");
        assert_eq!(error(&text), (name, Some(5)), "{m}");
    }
}

#[test]
fn multicast_port_count_and_no_formats_are_kept() {
    let text = format!(
        "{HEAD}c=IN IP4 224.2.1.1/127/3\r\nt=0 0\r\nm=video 49170/2 RTP/AVP 31\r\n\
         c=IN IP6 ff15::101/3\r\nm=audio 0 RTP/AVP\r\n"
    );
    round_trip(text.as_bytes());
    let sdp = parse(&text).expect("parses");
    let session = sdp.lines.connection().expect("c=");
    assert_eq!(session.multicast.as_deref(), Some(&b"127/3"[..]));
    assert_eq!(sdp.media[0].media.port_count, Some(2));
    let v6 = sdp.media[0].lines.connection().expect("c=");
    assert_eq!(v6.address.addr_type, AddrType::Ip6);
    assert_eq!(v6.multicast.as_deref(), Some(&b"3"[..]));
    assert!(sdp.media[1].media.formats.is_empty());
}

#[test]
fn unknown_things_are_kept_in_order() {
    let text = format!(
        "{HEAD}i=session info\r\nu=http://www.example.com/seminars/sdp.pdf\r\n\
         e=j.doe@example.com (Jane Doe)\r\np=+1 617 555-6011\r\nc=IN IP4 192.0.2.1\r\n\
         b=CT:128\r\nt=2873397496 2873404696\r\nt=0 0\r\nr=7d 1h 0 25h\r\n\
         z=2882844526 -1h 2898848070 0\r\nk=clear:secret\r\nx=unknown type\r\n\
         a=recvonly\r\na=\r\na=:value\r\na=na(me:value\r\nthis line has no type\r\n\r\n\
         m=audio 49170 RTP/AVP 0\r\ni=media info\r\nb=AS:64\r\nk=prompt\r\n\
         a=rtpmap:0 PCMU/8000\r\na=x-odd-attribute: leading space\r\na=empty-value:\r\n"
    );
    round_trip(text.as_bytes());
    let sdp = parse(&text).expect("parses");
    let others = sdp
        .lines
        .iter()
        .filter(|l| matches!(l, Line::Other(_)))
        .count();
    assert_eq!(others, 16);
    assert_eq!(sdp.lines.attributes().count(), 1);
    let media = &sdp.media[0].lines;
    assert_eq!(
        media.attribute_value("x-odd-attribute").map(|v| &v[..]),
        Some(&b" leading space"[..])
    );
    assert_eq!(
        media.attribute_value("empty-value").map(|v| &v[..]),
        Some(&b""[..])
    );
}

#[test]
fn bare_lf_is_accepted_and_printed_as_crlf() {
    let lf = "v=0\no=- 1 2 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\na=sendrecv\n";
    let sdp = parse(lf).expect("parses");
    assert_eq!(&sdp.to_bytes()[..], lf.replace('\n', "\r\n").as_bytes());
    let mixed = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\ns=-\r\nt=0 0";
    let sdp = parse(mixed).expect("parses without a final line end");
    assert_eq!(
        &sdp.to_bytes()[..],
        b"v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"
    );
}

#[test]
fn sloppy_spacing_in_typed_lines_is_accepted_and_normalised() {
    let text = "v=0\r\no=-  1 2 IN IP4 192.0.2.1 \r\ns=-\r\nc=IN  IP4 192.0.2.1\r\n\
                m=audio  49170 RTP/AVP 0  8 \r\n";
    let sdp = parse(text).expect("parses");
    assert_eq!(
        &sdp.to_bytes()[..],
        &b"v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
           m=audio 49170 RTP/AVP 0 8\r\n"[..]
    );
}

#[test]
fn non_utf8_bytes_are_kept() {
    let mut input =
        b"v=0\r\no=\xc3\xa9l\xe8ve 1 2 IN IP4 192.0.2.1\r\ns=caf\xe9 \xff\x00\r\n".to_vec();
    input.extend_from_slice(b"i=\x80\x81\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\na=label:\xfe\r\n");
    round_trip(&input);
    let sdp = SessionDescription::parse(&input).expect("parses");
    assert_eq!(&sdp.session_name[..], b"caf\xe9 \xff\x00");
    assert_eq!(&sdp.origin.username[..], b"\xc3\xa9l\xe8ve");
    assert_eq!(
        sdp.media[0].lines.attribute_value("label").map(|v| &v[..]),
        Some(&b"\xfe"[..])
    );
}

#[test]
fn addresses_ipv4_ipv6_and_names() {
    let text = "v=0\r\no=- 1 2 IN IP6 2001:DB8:0:0::1\r\ns=-\r\nc=IN IP4 host.example.com\r\n\
         m=audio 1 RTP/AVP 0\r\nc=IN IP6 ::ffff:192.0.2.1\r\nm=audio 2 RTP/AVP 0\r\n\
         c=TN RFC2543 +1-617-555-0100\r\n";
    round_trip(text.as_bytes());
    let sdp = parse(text).expect("parses");
    // The address keeps its non-canonical spelling and decodes on demand.
    assert_eq!(&sdp.origin.address.address[..], b"2001:DB8:0:0::1");
    assert_eq!(
        sdp.origin.address.ip(),
        Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)))
    );
    assert_eq!(
        sdp.lines.connection().map(|c| c.host()),
        Some(Host::Name(b"host.example.com"))
    );
    assert!(matches!(
        sdp.media_connection(0).map(|c| c.host()),
        Some(Host::V6(_))
    ));
    let other = sdp.media[1].lines.connection().expect("c=");
    assert_eq!(other.address.net_type, NetType::Other("TN".into()));
    assert_eq!(other.address.addr_type, AddrType::Other("RFC2543".into()));
}

#[test]
fn limits_are_enforced() {
    let small = Limits {
        max_size: 200,
        max_lines: 6,
        max_media: 1,
        max_line_length: 40,
    };
    let parse_with = |text: &str| {
        SessionDescription::parse_bytes(Bytes::copy_from_slice(text.as_bytes()), &small)
            .map_err(|e| (e.name(), e.line()))
    };
    assert!(parse_with(&format!("{HEAD}m=audio 1 RTP/AVP 0\r\n")).is_ok());
    assert_eq!(
        parse_with(&format!(
            "{HEAD}m=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 31\r\n"
        )),
        Err(("too_many_media", Some(5)))
    );
    assert_eq!(
        parse_with(&format!("{HEAD}a=1\r\na=2\r\na=3\r\na=4\r\n")),
        Err(("too_many_lines", None))
    );
    assert_eq!(
        parse_with(&format!("{HEAD}a={}\r\n", "x".repeat(39))),
        Err(("line_too_long", Some(4)))
    );
    assert_eq!(
        parse_with(&format!("{HEAD}{}", "a=x\r\n".repeat(40))),
        Err(("too_large", None))
    );
    let huge = vec![b'a'; Limits::DEFAULT.max_size + 1];
    assert_eq!(
        SessionDescription::parse(&huge).map_err(|e| e.name()),
        Err("too_large")
    );
}

#[test]
fn error_names_are_stable() {
    let e = SdpError::LineTooLong { line: 3, max: 10 };
    assert_eq!(e.name(), "line_too_long");
    assert_eq!(e.to_string(), "line 3: longer than 10 bytes");
    let e = SdpError::BadOrigin {
        line: 2,
        reason: "expected six fields",
    };
    assert_eq!((e.name(), e.line()), ("bad_origin", Some(2)));
}
