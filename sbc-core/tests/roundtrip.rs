//! Round trip of the parser and printer: `parse(print(m)) == m` and
//! `print(parse(print(m))) == print(m)` for random valid messages, and for every torture
//! message that parses. The generated typed values (Via, NameAddr, CSeq …) must also
//! decode back to themselves through the typed accessors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use bytes::Bytes;
use proptest::prelude::*;
use sbc_core::sip::{
    CSeq, Contact, HeaderName, Headers, Host, HostPort, MediaType, Message, Method, NameAddr,
    Param, Params, Request, Response, SipUri, StatusCode, TelUri, Transport, Uri, Version, Via,
    parse_message,
};

// ---- building blocks -------------------------------------------------------------------

const TOKEN_CHARS: &str = "[A-Za-z0-9.!%*_+`'~-]";

fn token() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{TOKEN_CHARS}{{1,12}}")).unwrap()
}

fn bytes_of(s: String) -> Bytes {
    Bytes::from(s)
}

/// A URI-escaped run: characters of `class` and `%HH` escapes, at least one.
fn escaped(class: &'static str) -> impl Strategy<Value = Bytes> {
    let piece = prop_oneof![
        4 => proptest::string::string_regex(&format!("{class}{{1,6}}")).unwrap(),
        1 => "%[0-9A-Fa-f]{2}",
    ];
    prop::collection::vec(piece, 1..4).prop_map(|parts| Bytes::from(parts.concat()))
}

const USER_CHARS: &str = "[A-Za-z0-9_.!~*'()&=+$,;?/-]";
const PASSWORD_CHARS: &str = "[A-Za-z0-9_.!~*'()&=+$,-]";
const PARAM_CHARS: &str = r"[A-Za-z0-9_.!~*'()\[\]/:&+$-]";

fn param_name() -> impl Strategy<Value = Box<str>> {
    escaped(PARAM_CHARS).prop_map(|b| String::from_utf8(b.to_vec()).unwrap().into())
}

fn uri_params() -> impl Strategy<Value = Params> {
    prop::collection::vec(
        (param_name(), prop::option::of(escaped(PARAM_CHARS)))
            .prop_map(|(name, value)| Param { name, value }),
        0..3,
    )
    .prop_map(Params)
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9_-]{0,8}){0,3}"
            .prop_map(|name| Host::Name(name.into())),
        any::<[u8; 4]>().prop_map(|o| Host::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| Host::V6(Ipv6Addr::from(s))),
        Just(Host::V6("::ffff:192.0.2.1".parse().unwrap())),
    ]
}

fn host_port() -> impl Strategy<Value = HostPort> {
    (host(), prop::option::of(any::<u16>())).prop_map(|(host, port)| HostPort { host, port })
}

/// A URI; `headers` says whether `?headers` may appear (only inside `<…>`).
fn uri(headers: bool) -> impl Strategy<Value = Uri> {
    let uri_headers = if headers {
        prop::option::of(escaped(r"[A-Za-z0-9_.!~*'()\[\]/?:+$=&-]")).boxed()
    } else {
        Just(None).boxed()
    };
    let sip = (
        any::<bool>(),
        prop::option::of((
            escaped(USER_CHARS),
            prop::option::of(escaped(PASSWORD_CHARS)),
        )),
        host_port(),
        uri_params(),
        uri_headers,
    )
        .prop_map(|(secure, userinfo, host, params, headers)| {
            let (user, password) = match userinfo {
                Some((user, password)) => (Some(user), password),
                None => (None, None),
            };
            Uri::Sip(SipUri {
                secure,
                user,
                password,
                host,
                params,
                headers,
            })
        });
    // RFC 3966: a global number, or a local one (hex digits, `*`, `#`).
    let number = prop_oneof![
        "\\+[0-9][0-9.()-]{0,12}",
        "[0-9A-Fa-f*#][0-9A-Fa-f*#.()-]{0,8}"
    ];
    let tel = (number, uri_params()).prop_map(|(number, params)| {
        Uri::Tel(TelUri {
            number: bytes_of(number),
            params,
        })
    });
    let other = (
        prop::sample::select(vec!["urn", "http", "im", "x-scheme"]),
        "[A-Za-z0-9_.!~*'()/?:@&=+$%#-]{1,20}",
    )
        .prop_map(|(scheme, rest)| Uri::Other {
            scheme: scheme.into(),
            rest: bytes_of(rest),
        });
    prop_oneof![6 => sip, 1 => tel, 1 => other]
}

/// A header parameter value: a token, a host (IPv6 with or without brackets) or a quoted
/// string.
fn gen_value() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => token().prop_map(bytes_of),
        1 => any::<[u16; 8]>().prop_map(|s| bytes_of(format!("[{}]", Ipv6Addr::from(s)))),
        1 => any::<[u16; 8]>().prop_map(|s| bytes_of(Ipv6Addr::from(s).to_string())),
        2 => quoted_string(),
    ]
}

fn quoted_string() -> impl Strategy<Value = Bytes> {
    let piece = prop_oneof![
        5 => "[ !#-\\[\\]-~]{1,8}",
        1 => Just("\\\"".to_owned()),
        1 => Just("\\\\".to_owned()),
        1 => Just("é€".to_owned()),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|parts| bytes_of(format!("\"{}\"", parts.concat())))
}

fn header_params() -> impl Strategy<Value = Params> {
    prop::collection::vec(
        (token(), prop::option::of(gen_value())).prop_map(|(name, value)| Param {
            name: name.into(),
            value,
        }),
        0..3,
    )
    .prop_map(Params)
}

fn transport() -> impl Strategy<Value = Transport> {
    prop::sample::select(vec![
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Sctp,
        Transport::Ws,
        Transport::Wss,
        Transport::Other("QUIC".into()),
    ])
}

fn via() -> impl Strategy<Value = Via> {
    (transport(), host_port(), header_params()).prop_map(|(transport, sent_by, params)| Via {
        transport,
        sent_by,
        params,
    })
}

fn display_name() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop_oneof![
        prop::collection::vec(token(), 1..3).prop_map(|words| bytes_of(words.join(" "))),
        quoted_string(),
    ])
}

/// A name-addr as the parser would produce it: brackets whenever they were needed.
fn name_addr(route: bool) -> impl Strategy<Value = NameAddr> {
    (display_name(), uri(true), header_params(), any::<bool>()).prop_map(
        move |(display_name, uri, params, angle)| {
            let angle_brackets =
                route || angle || display_name.is_some() || uri.needs_angle_brackets();
            NameAddr {
                display_name,
                uri,
                params,
                angle_brackets,
            }
        },
    )
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "REGISTER",
            "OPTIONS",
            "INFO",
            "PRACK",
            "UPDATE",
            "SUBSCRIBE",
            "NOTIFY",
            "REFER",
            "MESSAGE",
            "PUBLISH"
        ])
        .prop_map(str::to_owned),
        token(),
    ]
    .prop_map(|t| Method::from_token(t.as_bytes()).unwrap())
}

fn media_type() -> impl Strategy<Value = MediaType> {
    (
        token(),
        token(),
        prop::collection::vec(
            (
                token(),
                prop_oneof![token().prop_map(bytes_of), quoted_string()],
            ),
            0..2,
        ),
    )
        .prop_map(|(kind, subtype, params)| MediaType {
            kind: kind.into(),
            subtype: subtype.into(),
            params: Params(
                params
                    .into_iter()
                    .map(|(name, value)| Param {
                        name: name.into(),
                        value: Some(value),
                    })
                    .collect(),
            ),
        })
}

/// An unknown header: a name that is no known one, and any value bytes but CR and LF,
/// without surrounding whitespace.
fn unknown_header() -> impl Strategy<Value = (HeaderName, Bytes)> {
    let value = prop::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..40,
    )
    .prop_map(|mut v| {
        while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.remove(0);
        }
        while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.pop();
        }
        Bytes::from(v)
    });
    (token(), value).prop_map(|(name, value)| {
        (
            HeaderName::from_bytes(format!("X-{name}").as_bytes()),
            value,
        )
    })
}

/// Everything a generated message is made of, kept typed so the test can check the
/// accessors decode back to it.
#[derive(Clone, Debug)]
struct Parts {
    via_lines: Vec<Vec<Via>>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    seq: u32,
    max_forwards: Option<u8>,
    contact: Option<Contact>,
    routes: Vec<NameAddr>,
    content_type: Option<MediaType>,
    supported: Vec<String>,
    unknown: Vec<(HeaderName, Bytes)>,
    body: Bytes,
    content_length_position: usize,
}

fn parts() -> impl Strategy<Value = Parts> {
    let contact = prop::option::of(prop_oneof![
        1 => Just(Contact::Star),
        4 => prop::collection::vec(name_addr(false), 1..3).prop_map(Contact::Addresses),
    ]);
    (
        (
            prop::collection::vec(prop::collection::vec(via(), 1..3), 1..3),
            name_addr(false),
            name_addr(false),
            "[A-Za-z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,20}(@[A-Za-z0-9.-]{1,12})?",
            any::<u32>(),
            prop::option::of(any::<u8>()),
        ),
        (
            contact,
            prop::collection::vec(name_addr(true), 0..3),
            prop::option::of(media_type()),
            prop::collection::vec(token(), 0..3),
            prop::collection::vec(unknown_header(), 0..3),
            prop::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from),
            any::<usize>(),
        ),
    )
        .prop_map(
            |(
                (via_lines, from, to, call_id, seq, max_forwards),
                (contact, routes, content_type, supported, unknown, body, cl_position),
            )| Parts {
                via_lines,
                from,
                to,
                call_id,
                seq,
                max_forwards,
                contact,
                routes,
                content_type,
                supported,
                unknown,
                body,
                content_length_position: cl_position,
            },
        )
}

fn joined<T>(items: &[T], print: impl Fn(&T) -> Bytes) -> Bytes {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(&print(item));
    }
    Bytes::from(out)
}

fn headers(parts: &Parts, method: &Method) -> Headers {
    let mut h = Headers::new();
    for line in &parts.via_lines {
        h.push(HeaderName::Via, joined(line, Via::to_bytes));
    }
    h.push(HeaderName::From, parts.from.to_bytes());
    h.push(HeaderName::To, parts.to.to_bytes());
    h.push(HeaderName::CallId, bytes_of(parts.call_id.clone()));
    h.push(
        HeaderName::CSeq,
        CSeq {
            seq: parts.seq,
            method: method.clone(),
        }
        .to_bytes(),
    );
    if let Some(hops) = parts.max_forwards {
        h.push(HeaderName::MaxForwards, hops.to_string());
    }
    if let Some(contact) = &parts.contact {
        h.push(HeaderName::Contact, contact.to_bytes());
    }
    if !parts.routes.is_empty() {
        h.push(HeaderName::Route, joined(&parts.routes, NameAddr::to_bytes));
    }
    if let Some(content_type) = &parts.content_type {
        h.push(HeaderName::ContentType, content_type.to_bytes());
    }
    h.push(HeaderName::Supported, parts.supported.join(", "));
    for (name, value) in &parts.unknown {
        h.push(name.clone(), value.clone());
    }
    // Content-Length somewhere, with the right value (the printer keeps it in place).
    let lines: Vec<_> = h.iter().cloned().collect();
    let at = parts.content_length_position % (lines.len() + 1);
    let mut with_length = Headers::new();
    for (i, line) in lines.into_iter().enumerate() {
        if i == at {
            with_length.push(HeaderName::ContentLength, parts.body.len().to_string());
        }
        with_length.push(line.name, line.value);
    }
    if at == with_length.len() {
        with_length.push(HeaderName::ContentLength, parts.body.len().to_string());
    }
    with_length
}

fn request() -> impl Strategy<Value = (Message, Parts)> {
    (method(), uri(false), parts()).prop_map(|(method, uri, parts)| {
        let request = Request {
            headers: headers(&parts, &method),
            method,
            uri,
            version: Version::Sip2,
            body: parts.body.clone(),
        };
        (Message::Request(request), parts)
    })
}

fn response() -> impl Strategy<Value = (Message, Parts)> {
    (
        100u16..=699,
        "[ -~\t]{0,20}|[a-zé€ ]{0,10}",
        method(),
        parts(),
    )
        .prop_map(|(code, reason, method, parts)| {
            let response = Response {
                version: Version::Sip2,
                status: StatusCode::new(code).unwrap(),
                reason: bytes_of(reason),
                headers: headers(&parts, &method),
                body: parts.body.clone(),
            };
            (Message::Response(response), parts)
        })
}

fn check_accessors(message: &Message, parts: &Parts) {
    let h = message.headers();
    let vias: Vec<Via> = parts.via_lines.iter().flatten().cloned().collect();
    assert_eq!(h.vias().unwrap(), vias);
    assert_eq!(h.top_via().unwrap(), vias[0]);
    assert_eq!(h.from().unwrap(), parts.from);
    assert_eq!(h.to().unwrap(), parts.to);
    assert_eq!(h.call_id().unwrap().as_ref(), parts.call_id.as_bytes());
    assert_eq!(h.cseq().unwrap().seq, parts.seq);
    assert_eq!(h.max_forwards().unwrap(), parts.max_forwards);
    assert_eq!(h.contact().unwrap(), parts.contact);
    assert_eq!(h.routes().unwrap(), parts.routes);
    assert_eq!(h.content_type().unwrap(), parts.content_type);
    assert_eq!(h.content_length().unwrap(), Some(parts.body.len()));
    let supported: Vec<Bytes> = parts.supported.iter().cloned().map(bytes_of).collect();
    assert_eq!(h.supported().unwrap(), supported);
}

fn round_trip(message: &Message) {
    let printed = message.to_bytes();
    let parsed = parse_message(printed.clone()).unwrap_or_else(|e| {
        panic!(
            "printed message does not parse ({e}):\n{}",
            String::from_utf8_lossy(&printed)
        )
    });
    assert_eq!(&parsed, message);
    assert_eq!(parsed.to_bytes(), printed);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip((message, parts) in request()) {
        round_trip(&message);
        check_accessors(&message, &parts);
    }

    #[test]
    fn responses_round_trip((message, parts) in response()) {
        round_trip(&message);
        check_accessors(&message, &parts);
    }

    #[test]
    fn uris_round_trip(uri in uri(true)) {
        assert_eq!(Uri::decode(&uri.to_bytes()).unwrap(), uri);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let input = Bytes::from(bytes);
        if let Ok(message) = parse_message(input.clone()) {
            round_trip(&message);
        }
        let _ = sbc_core::sip::salvage_for_response(&input);
    }
}

// ---- the torture corpora --------------------------------------------------------------

fn testdata() -> PathBuf {
    match std::env::var_os("SBC_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"),
    }
}

fn corpus_files() -> Vec<(String, Bytes)> {
    let mut files = Vec::new();
    for dir in ["torture/messages", "torture-ipv6/wire"] {
        let path = testdata().join(dir);
        let entries = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("cannot read {} ({e}); set SBC_TESTDATA", path.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((name, Bytes::from(std::fs::read(&path).unwrap())));
        }
    }
    files.sort();
    files
}

#[test]
fn every_torture_message_that_parses_round_trips() {
    let mut parsed_count = 0;
    for (name, bytes) in corpus_files() {
        let Ok(message) = parse_message(bytes) else {
            continue;
        };
        parsed_count += 1;
        let printed = message.to_bytes();
        let again = parse_message(printed.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again.to_bytes(), printed, "{name}");
        if message.headers().contains(&HeaderName::ContentLength) {
            assert_eq!(again, message, "{name}");
        } else {
            // inv2543: the printer adds the Content-Length the message lacked.
            assert_eq!(again.body(), message.body(), "{name}");
            assert_eq!(
                again.headers().content_length().unwrap(),
                Some(message.body().len())
            );
        }
    }
    assert_eq!(parsed_count, 39, "62 messages, 23 refused (see torture.rs)");
}

#[test]
fn printer_fixes_content_length_and_strips_injected_line_breaks() {
    let mut request = Request::new(Method::Options, Uri::parse(b"sip:bob@example.com").unwrap());
    request
        .headers
        .push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1");
    request.headers.push(HeaderName::ContentLength, "999");
    request
        .headers
        .push(HeaderName::Subject, "hi\r\nX-Injected: yes");
    request.headers.push(HeaderName::ContentLength, "7");
    request.body = Bytes::from_static(b"abc");
    let printed = String::from_utf8(request.to_bytes().to_vec()).unwrap();
    assert_eq!(
        printed,
        "OPTIONS sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
Content-Length: 3\r\n\
Subject: hi  X-Injected: yes\r\n\
\r\n\
abc"
    );
}

/// Checks that `printed` has exactly `lines` header lines, no CR or LF other than the
/// CRLFs ending lines, and that it parses back.
fn assert_framed(printed: &Bytes, lines: usize) {
    let text = printed.as_ref();
    let head_end = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an end of headers");
    let head = &text[..head_end + 2];
    let crlfs = head.windows(2).filter(|w| w == b"\r\n").count();
    let crs = head.iter().filter(|&&b| b == b'\r').count();
    let lfs = head.iter().filter(|&&b| b == b'\n').count();
    let shown = String::from_utf8_lossy(printed);
    assert_eq!(
        (crlfs, crs, lfs),
        (lines + 1, lines + 1, lines + 1),
        "{shown}"
    );
    let message = parse_message(printed.clone()).unwrap_or_else(|e| panic!("{e}: {shown}"));
    assert!(
        !message
            .headers()
            .contains(&HeaderName::Other("X-Injected".into())),
        "{shown}"
    );
    let content_lengths = message
        .headers()
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
        .count();
    assert_eq!(content_lengths, 1, "{shown}");
}

fn minimal_request(method: Method, uri: Uri) -> Request {
    let mut request = Request::new(method, uri);
    for (name, value) in [
        (HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
        (HeaderName::From, "<sip:a@example.com>;tag=1"),
        (HeaderName::To, "<sip:b@example.com>"),
        (HeaderName::CallId, "c@x"),
    ] {
        request.headers.push(name, value);
    }
    let cseq = CSeq {
        seq: 1,
        method: request.method.clone(),
    };
    request.headers.push(HeaderName::CSeq, &cseq);
    request
}

const INJECTION: &str = "x\r\nX-Injected: yes\r\n\r\nbody";

#[test]
fn code_built_start_lines_cannot_inject_header_lines() {
    let evil = Bytes::from_static(INJECTION.as_bytes());
    let sip = |edit: &dyn Fn(&mut SipUri)| {
        let Ok(Uri::Sip(mut uri)) = Uri::parse(b"sip:bob@example.com;lr?h=v") else {
            panic!("not sip")
        };
        edit(&mut uri);
        Uri::Sip(uri)
    };
    let uris = [
        sip(&|u| u.user = Some(evil.clone())),
        sip(&|u| u.password = Some(evil.clone())),
        sip(&|u| u.host.host = Host::Name(INJECTION.into())),
        sip(&|u| u.headers = Some(evil.clone())),
        sip(&|u| {
            u.params.0.push(Param {
                name: INJECTION.into(),
                value: Some(evil.clone()),
            })
        }),
        Uri::Tel(TelUri {
            number: evil.clone(),
            params: Params::default(),
        }),
        Uri::Other {
            scheme: INJECTION.into(),
            rest: evil.clone(),
        },
    ];
    for uri in uris {
        let request = minimal_request(Method::Options, uri);
        // The URI is now malformed, so only the framing is checked, not that it parses.
        let printed = request.to_bytes();
        let head_end = printed.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let lines = printed[..head_end + 2]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        assert_eq!(lines, 7, "{}", String::from_utf8_lossy(&printed));
        assert!(!printed.windows(10).any(|w| w == b"\nX-Injecte"));
    }
    let request = minimal_request(
        Method::Extension(INJECTION.into()),
        Uri::parse(b"sip:bob@example.com").unwrap(),
    );
    let printed = request.to_bytes();
    assert!(!printed.windows(10).any(|w| w == b"\nX-Injecte"));
}

#[test]
fn code_built_header_names_and_reasons_cannot_break_framing() {
    let mut request = minimal_request(Method::Options, Uri::parse(b"sip:b@example.com").unwrap());
    request
        .headers
        .push(HeaderName::Other(INJECTION.into()), "v");
    request.headers.push(HeaderName::Other("".into()), "v");
    request
        .headers
        .push(HeaderName::Other("A: b\r\nX".into()), "v");
    // A Content-Length spelled as an unknown name must still be the one Content-Length.
    request
        .headers
        .push(HeaderName::Other("content-length".into()), "9");
    request.headers.push(HeaderName::Other("L".into()), "8");
    request.body = Bytes::from_static(b"abc");
    let printed = request.to_bytes();
    assert_framed(&printed, 9);
    assert!(printed.ends_with(b"Content-Length: 3\r\n\r\nabc"));

    let mut response = Response::new(StatusCode::OK);
    response.reason = Bytes::from_static(INJECTION.as_bytes());
    for header in minimal_request(Method::Options, Uri::parse(b"sip:b@x").unwrap())
        .headers
        .iter()
    {
        response
            .headers
            .push(header.name.clone(), header.value.clone());
    }
    assert_framed(&response.to_bytes(), 6);
}
