//! RFC 4475 and RFC 5118 torture messages against the parser.
//!
//! Reads `shared/testdata/torture/manifest.json` and `torture-ipv6/manifest.json` (the
//! folder is `$SBC_TESTDATA`, else `<workspace>/../shared/testdata`) and checks every
//! message against the verdict there, with concrete field values per message. The
//! RFC 5118 messages are read from `wire/` (CRLF, Content-Length fixed), never from
//! `archive/` (see that folder's README).
//!
//! # Where we chose strict or lenient
//!
//! | message | RFC says | we do |
//! |---|---|---|
//! | quotbal (4475 §3.1.2.6) | 400, may infer the quote | strict: `bad_to` |
//! | ltgtruri (§3.1.2.7) | 400, may strip `<>` | strict: `bad_request_uri` |
//! | lwsruri (§3.1.2.8) | 400, may drop LWS | strict: `bad_request_uri` |
//! | lwsstart (§3.1.2.9) | may reject or accept | strict: `bad_start_line` |
//! | trws (§3.1.2.10) | may reject or accept | strict: `bad_start_line` |
//! | escruri (§3.1.2.11) | 400, may ignore headers | strict: `bad_request_uri` |
//! | baddate (§3.1.2.12) | reject only if Date matters | lenient: parses, Date stays raw (nothing in the SBC reads Date) |
//! | regbadct (§3.1.2.13) | 400 | strict: `bad_contact` |
//! | badaspec (§3.1.2.14) | 400 | strict: `bad_to` (spaces inside `<…>`) |
//! | baddn (§3.1.2.15) | 400 | the file has no empty line: `unterminated_headers`; with one appended: `bad_from` |
//! | scalar02 (§3.1.2.4) | 400 for the CSeq | strict: `bad_cseq` (Max-Forwards 300 would also be `bad_max_forwards`) |
//! | mismatch02 (§3.1.2.18) | 501, 400 acceptable | `cseq_method_mismatch` (400) |
//! | insuf (§3.3.1) | 400 above the parser | refused by the parser: `missing_from` (same 400 on the wire) |
//! | multi01 (§3.3.8) | 400 above the parser | refused by the parser: `multiple_from` (same 400 on the wire) |
//! | lwsdisp (§3.1.1.6) | accept | lenient, as asked: display name `caller` |
//! | ipv6-bug-abnf-3-colons (5118 §4.10) | tolerate (RFC 5954 later made it invalid) | tolerate: `:::` read as `::`, the host is `2001:db8::c000:201` and prints canonically |
//! | test.dat (no verdict) | — | `bad_start_line` (no SIP-Version) |

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use bytes::Bytes;
use sbc_core::sip::{
    Contact, HeaderName, Host, Message, Method, NameAddr, Request, Response, SipUri, StatusCode,
    Transport, Uri, parse_message, salvage_for_response, unescape,
};
use serde_json::Value;

fn testdata() -> PathBuf {
    match std::env::var_os("SBC_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"),
    }
}

/// One message of a manifest: its name, verdict and bytes.
struct Entry {
    name: String,
    verdict: String,
    lenient: String,
    bytes: Bytes,
}

fn load(corpus: &str, file_key: &str) -> Vec<Entry> {
    let dir = testdata().join(corpus);
    let manifest = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set SBC_TESTDATA to the shared testdata folder",
            manifest.display()
        )
    });
    let json: Value = serde_json::from_str(&text).expect("manifest is JSON");
    let messages = json["messages"].as_array().expect("messages array");
    messages
        .iter()
        .map(|m| {
            let file = m[file_key].as_str().expect("file name");
            let bytes = std::fs::read(dir.join(file)).expect("message file");
            Entry {
                name: m["name"].as_str().expect("name").to_owned(),
                verdict: m["verdict"].as_str().expect("verdict").to_owned(),
                lenient: m["lenient_acceptance_allowed"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                bytes: Bytes::from(bytes),
            }
        })
        .collect()
}

fn all_entries() -> Vec<Entry> {
    let mut entries = load("torture", "file");
    entries.extend(load("torture-ipv6", "wire_file"));
    entries
}

/// What we expect of one message.
enum Expect {
    /// Parses, and these field checks hold.
    Parses(fn(&Message)),
    /// Refused with this error name.
    Refused(&'static str),
}

fn expectation(name: &str) -> Expect {
    use Expect::{Parses, Refused};
    match name {
        // RFC 4475 §3.1.1: valid messages.
        "wsinv" => Parses(wsinv),
        "intmeth" => Parses(intmeth),
        "esc01" => Parses(esc01),
        "escnull" => Parses(escnull),
        "esc02" => Parses(esc02),
        "lwsdisp" => Parses(lwsdisp),
        "longreq" => Parses(longreq),
        "dblreq" => Parses(dblreq),
        "semiuri" => Parses(semiuri),
        "transports" => Parses(transports),
        "mpart01" => Parses(mpart01),
        "unreason" => Parses(unreason),
        "noreason" => Parses(noreason),
        // RFC 4475 §3.1.2: invalid messages.
        "badinv01" => Refused("bad_via"),
        "clerr" => Refused("content_length_mismatch"),
        "ncl" => Refused("bad_content_length"),
        "scalar02" => Refused("bad_cseq"),
        "scalarlg" => Refused("bad_cseq"),
        "quotbal" => Refused("bad_to"),
        "ltgtruri" => Refused("bad_request_uri"),
        "lwsruri" => Refused("bad_request_uri"),
        "lwsstart" => Refused("bad_start_line"),
        "trws" => Refused("bad_start_line"),
        "escruri" => Refused("bad_request_uri"),
        "baddate" => Parses(baddate),
        "regbadct" => Refused("bad_contact"),
        "badaspec" => Refused("bad_to"),
        "baddn" => Refused("unterminated_headers"),
        "badvers" => Refused("bad_version"),
        "mismatch01" => Refused("cseq_method_mismatch"),
        "mismatch02" => Refused("cseq_method_mismatch"),
        "bigcode" => Refused("bad_status_code"),
        // RFC 4475 §3.2–3.4.
        "badbranch" => Parses(badbranch),
        "insuf" => Refused("missing_from"),
        "unkscm" => Parses(unkscm),
        "novelsc" => Parses(novelsc),
        "unksm2" => Parses(unksm2),
        "bext01" => Parses(bext01),
        "invut" => Parses(invut),
        "regaut01" => Parses(regaut01),
        "multi01" => Refused("multiple_from"),
        "mcl01" => Refused("multiple_content_length"),
        "bcast" => Parses(bcast),
        "zeromf" => Parses(zeromf),
        "cparam01" => Parses(cparam01),
        "cparam02" => Parses(cparam02),
        "regescrt" => Parses(regescrt),
        "sdp01" => Parses(sdp01),
        "inv2543" => Parses(inv2543),
        "test" => Refused("bad_start_line"),
        // RFC 5118.
        "ipv6-good" => Parses(ipv6_good),
        "ipv6-bad" => Refused("bad_request_uri"),
        "port-ambiguous" => Parses(port_ambiguous),
        "port-unambiguous" => Parses(port_unambiguous),
        "via-received-param-with-delim" => Parses(via_received_with_delim),
        "via-received-param-no-delim" => Parses(via_received_no_delim),
        "ipv6-in-sdp" => Parses(ipv6_in_sdp),
        "mult-ip-in-header" => Parses(mult_ip_in_header),
        "mult-ip-in-sdp" => Parses(mult_ip_in_sdp),
        "ipv4-mapped-ipv6" => Parses(ipv4_mapped_ipv6),
        "ipv6-bug-abnf-3-colons" => Parses(ipv6_three_colons),
        "ipv6-correct-abnf-2-colons" => Parses(ipv6_two_colons),
        other => panic!("no expectation written for torture message {other}"),
    }
}

/// Whether our expectation agrees with the manifest's verdict (or is a documented choice).
fn agrees_with_verdict(entry: &Entry, expect: &Expect) -> bool {
    match (entry.verdict.as_str(), expect) {
        ("valid-must-parse", Expect::Parses(_)) => true,
        ("invalid-must-reject", Expect::Refused(_)) => true,
        // Lenient acceptance where the RFC allows it (baddate; see the table above).
        ("invalid-must-reject", Expect::Parses(_)) => entry.lenient == "yes",
        ("valid-but-semantically-bad", Expect::Parses(_)) => true,
        // Refused at parse time with the same 400 the layer above would send.
        ("valid-but-semantically-bad", Expect::Refused(_)) => {
            matches!(entry.name.as_str(), "insuf" | "multi01")
        }
        ("unreferenced", _) => true,
        _ => false,
    }
}

#[test]
fn every_torture_message_meets_its_verdict() {
    let entries = all_entries();
    assert_eq!(entries.len(), 50 + 12, "both manifests are read in full");
    for entry in &entries {
        let expect = expectation(&entry.name);
        assert!(
            agrees_with_verdict(entry, &expect),
            "{}: our expectation contradicts verdict {}",
            entry.name,
            entry.verdict
        );
        let result = parse_message(entry.bytes.clone());
        match (expect, result) {
            (Expect::Parses(check), Ok(message)) => check(&message),
            (Expect::Refused(name), Err(error)) => {
                assert_eq!(error.name(), name, "{}: {error}", entry.name)
            }
            (Expect::Parses(_), Err(error)) => panic!("{} refused: {error}", entry.name),
            (Expect::Refused(name), Ok(_)) => panic!("{} parsed, expected {name}", entry.name),
        }
    }
}

#[test]
fn refused_requests_can_still_be_answered() {
    for entry in all_entries() {
        let Err(error) = parse_message(entry.bytes.clone()) else {
            continue;
        };
        let salvage = salvage_for_response(&entry.bytes);
        let is_response = entry.bytes.starts_with(b"SIP/");
        if is_response || entry.name == "test" {
            // A response is never answered; test.dat has no Via to answer along.
            assert!(salvage.is_none(), "{}: nothing to answer", entry.name);
            continue;
        }
        let salvage = salvage.unwrap_or_else(|| panic!("{}: nothing salvaged", entry.name));
        let response = salvage.make_response(error.status(), error.reason(), Some("sbc1"));
        let expected_status = if entry.name == "badvers" { 505 } else { 400 };
        assert_eq!(response.status.as_u16(), expected_status, "{}", entry.name);
        let answer = parse_message(response.to_bytes());
        // The answer is well-formed unless a copied line was the fault (or is missing).
        let copies_the_fault = matches!(
            entry.name.as_str(),
            "badinv01" | "scalar02" | "quotbal" | "badaspec" | "baddn" | "badvers" | "insuf"
        );
        match answer {
            Ok(answer) => {
                assert!(!copies_the_fault, "{}", entry.name);
                assert!(answer.headers().to().unwrap().tag().is_some());
            }
            Err(e) => assert!(copies_the_fault, "{}: answer unparsable: {e}", entry.name),
        }
    }
}

#[test]
fn baddn_with_its_empty_line_is_a_bad_from() {
    let mut bytes = std::fs::read(testdata().join("torture/messages/baddn.dat")).unwrap();
    bytes.extend_from_slice(b"\r\n");
    let error = parse_message(Bytes::from(bytes)).unwrap_err();
    assert_eq!(error.name(), "bad_from");
}

#[test]
fn no_prefix_or_corruption_of_a_torture_message_panics() {
    for entry in all_entries() {
        let bytes = &entry.bytes;
        for end in 0..bytes.len() {
            let _ = parse_message(bytes.slice(..end));
            let _ = salvage_for_response(&bytes.slice(..end));
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut corrupted = bytes.to_vec();
            for replacement in [b'\r', b'\n', b'"', b'<', b';', b',', b':', 0, 0xff] {
                corrupted[i] = replacement;
                let _ = parse_message(Bytes::from(corrupted.clone()));
            }
        }
    }
}

// ---- helpers -------------------------------------------------------------------------

fn request(m: &Message) -> &Request {
    match m {
        Message::Request(r) => r,
        Message::Response(_) => panic!("expected a request"),
    }
}

fn response(m: &Message) -> &Response {
    match m {
        Message::Response(r) => r,
        Message::Request(_) => panic!("expected a response"),
    }
}

fn sip(uri: &Uri) -> &SipUri {
    match uri {
        Uri::Sip(u) => u,
        other => panic!("expected a sip: URI, got {other:?}"),
    }
}

fn user(uri: &Uri) -> &[u8] {
    sip(uri).user.as_deref().expect("user part")
}

fn name(uri: &Uri) -> &str {
    match &sip(uri).host.host {
        Host::Name(n) => n,
        other => panic!("expected a host name, got {other:?}"),
    }
}

fn v6(text: &str) -> Host {
    Host::V6(text.parse().unwrap())
}

fn value<'a>(m: &'a Message, header: &str) -> &'a [u8] {
    m.headers()
        .get(&HeaderName::from_bytes(header.as_bytes()))
        .unwrap_or_else(|| panic!("no {header}"))
}

fn addresses(m: &Message) -> Vec<NameAddr> {
    match m.headers().contact().unwrap() {
        Some(Contact::Addresses(a)) => a,
        other => panic!("expected contact addresses, got {other:?}"),
    }
}

fn common(m: &Message, call_id: &str, seq: u32, method: Method) {
    assert_eq!(m.headers().call_id().unwrap().as_ref(), call_id.as_bytes());
    let cseq = m.headers().cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (seq, method));
}

fn top_via(m: &Message, host: Host, port: Option<u16>, branch: Option<&str>) {
    let via = m.headers().top_via().unwrap();
    assert_eq!(via.sent_by.host, host);
    assert_eq!(via.sent_by.port, port);
    assert_eq!(via.branch().map(|b| b.as_ref()), branch.map(str::as_bytes));
}

fn hostname(text: &str) -> Host {
    Host::Name(text.into())
}

fn ipv4(text: &str) -> Host {
    Host::V4(text.parse().unwrap())
}

// ---- RFC 4475 §3.1.1 ----------------------------------------------------------------

fn wsinv(m: &Message) {
    let r = request(m);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(user(&r.uri), b"vivekg");
    assert_eq!(name(&r.uri), "chair-dnrc.example.com");
    assert!(sip(&r.uri).params.contains("unknownparam"));
    common(m, "wsinv.ndaksdj@192.0.2.1", 9, Method::Invite);
    let h = m.headers();
    assert_eq!(h.to().unwrap().tag().unwrap().as_ref(), b"1918181833n");
    let from = h.from().unwrap();
    assert_eq!(
        from.display_name.as_deref().unwrap(),
        br#""J Rosenberg \\\"""#
    );
    assert_eq!(from.tag().unwrap().as_ref(), b"98asjd8");
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    let vias = h.vias().unwrap();
    let summary: Vec<_> = vias
        .iter()
        .map(|v| {
            (
                v.transport.clone(),
                v.sent_by.host.clone(),
                v.branch().cloned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Transport::Udp,
                ipv4("192.0.2.2"),
                Some(Bytes::from("390skdjuw"))
            ),
            (
                Transport::Tcp,
                hostname("spindle.example.com"),
                Some(Bytes::from("z9hG4bK9ikj8"))
            ),
            (
                Transport::Udp,
                ipv4("192.168.255.111"),
                Some(Bytes::from("z9hG4bK30239"))
            ),
        ]
    );
    assert_eq!(value(m, "Subject"), b"");
    assert_eq!(
        value(m, "NewFangledHeader"),
        b"newfangled value continued newfangled value"
    );
    assert_eq!(value(m, "UnknownHeaderWithUnusualValue"), b";;,,;;,;");
    let contact = &addresses(m)[0];
    assert_eq!(
        contact.display_name.as_deref(),
        Some(&br#""Quoted string \"\"""#[..])
    );
    assert_eq!(
        contact.params.get("newparam"),
        Some(Some(&Bytes::from("newvalue")))
    );
    assert_eq!(contact.params.get("secondparam"), Some(None));
    assert_eq!(contact.params.get("q"), Some(Some(&Bytes::from("0.33"))));
    let routes = h.routes().unwrap();
    assert_eq!(routes.len(), 1);
    assert!(sip(&routes[0].uri).params.contains("lr"));
    assert_eq!(
        h.content_type().unwrap().unwrap().to_string(),
        "application/sdp"
    );
    assert_eq!(r.body.len(), 150);
}

fn intmeth(m: &Message) {
    let r = request(m);
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(r.method, Method::Extension(method.into()));
    assert_eq!(
        user(&r.uri),
        b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    );
    assert_eq!(
        sip(&r.uri).password.as_deref(),
        Some(&b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"[..])
    );
    assert_eq!(name(&r.uri), "example.com");
    common(
        m,
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
        139122385,
        Method::Extension(method.into()),
    );
    top_via(
        m,
        hostname("host1.example.com"),
        None,
        Some("z9hG4bK-.!%66*_+`'~"),
    );
    let to = m.headers().to().unwrap();
    assert!(
        to.display_name.unwrap().contains(&0),
        "quoted-pair NUL kept"
    );
    let from = m.headers().from().unwrap();
    assert_eq!(
        from.display_name.as_deref().unwrap(),
        b"token1~` token2'+_ token3*%!.-"
    );
    assert_eq!(from.tag().unwrap().as_ref(), b"_token~1'+`*%!-.");
    assert!(from.params.contains("fromParam''~+*_!.-%"));
    let extension = value(m, "extensionHeader-!.%*+_`'~");
    assert!(std::str::from_utf8(extension).is_ok_and(|v| !v.is_ascii()));
    assert!(matches!(
        m.headers()
            .iter()
            .find(|h| h.value == extension)
            .map(|h| &h.name),
        Some(HeaderName::Other(_))
    ));
}

fn esc01(m: &Message) {
    let r = request(m);
    assert_eq!(user(&r.uri), b"sips%3Auser%40example.com");
    assert_eq!(unescape(user(&r.uri)).as_ref(), b"sips:user@example.com");
    assert_eq!(name(&r.uri), "example.net");
    let to = m.headers().to().unwrap();
    assert_eq!(unescape(user(&to.uri)).as_ref(), b"user");
    let from = m.headers().from().unwrap();
    assert_eq!(unescape(user(&from.uri)).as_ref(), b"I have spaces");
    common(
        m,
        "esc01.239409asdfakjkn23onasd0-3234",
        234234,
        Method::Invite,
    );
    let contact = &addresses(m)[0];
    assert_eq!(unescape(user(&contact.uri)).as_ref(), b"caller");
    let params = &sip(&contact.uri).params;
    let names: Vec<_> = params
        .iter()
        .map(|p| unescape(p.name.as_bytes()).into_owned())
        .collect();
    assert_eq!(names, vec![b"lr".to_vec(), b"name".to_vec()]);
    let escaped = params.iter().nth(1).unwrap().value.clone().unwrap();
    // One level of unescaping only: %25%34%31 -> %41, not A.
    assert_eq!(unescape(&escaped).as_ref(), b"value%41");
}

fn escnull(m: &Message) {
    let to = m.headers().to().unwrap();
    let unescaped = unescape(user(&to.uri)).into_owned();
    assert_eq!(unescaped, b"null-\0-null", "NUL does not truncate");
    let contacts = addresses(m);
    let users: Vec<_> = contacts
        .iter()
        .map(|c| unescape(user(&c.uri)).into_owned())
        .collect();
    assert_eq!(users, vec![vec![0u8], vec![0u8, 0u8]]);
    common(
        m,
        "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
        14398234,
        Method::Register,
    );
}

fn esc02(m: &Message) {
    let r = request(m);
    assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
    assert_ne!(r.method, Method::Register);
    assert_eq!(
        m.headers().to().unwrap().display_name.unwrap().as_ref(),
        br#""%Z%45""#
    );
    let hosts: Vec<_> = addresses(m)
        .iter()
        .map(|c| name(&c.uri).to_owned())
        .collect();
    assert_eq!(hosts, vec!["host1.example.com", "host3.example.com"]);
    assert_eq!(value(m, "C%6Fntact"), b"<sip:alias2@host2.example.com>");
    top_via(
        m,
        hostname("host.example.com"),
        None,
        Some("z9hG4bK209%fzsnel234"),
    );
}

fn lwsdisp(m: &Message) {
    let from = m.headers().from().unwrap();
    assert_eq!(from.display_name.as_deref().unwrap(), b"caller");
    assert_eq!(user(&from.uri), b"caller");
    common(m, "lwsdisp.1234abcd@funky.example.com", 60, Method::Options);
}

fn longreq(m: &Message) {
    let h = m.headers();
    let to = h.to().unwrap();
    assert!(to.display_name.unwrap().len() > 100);
    assert_eq!(sip(&to.uri).host.port, Some(6000));
    assert_eq!(sip(&to.uri).params.iter().count(), 3);
    let from = h.from().unwrap();
    assert_eq!(from.tag().unwrap().len(), 155);
    assert!(user(&from.uri).len() > 100);
    assert_eq!(h.vias().unwrap().len(), 34);
    assert_eq!(request(m).body.len(), 150);
    assert!(h.call_id().unwrap().len() > 100);
}

fn dblreq(m: &Message) {
    let r = request(m);
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty(), "trailing octets ignored");
    common(
        m,
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
        8,
        Method::Register,
    );
}

fn semiuri(m: &Message) {
    let r = request(m);
    assert_eq!(user(&r.uri), b"user;par=u%40example.net");
    assert_eq!(unescape(user(&r.uri)).as_ref(), b"user;par=u@example.net");
    assert_eq!(name(&r.uri), "example.com");
    assert!(sip(&r.uri).params.is_empty());
}

fn transports(m: &Message) {
    let transports: Vec<_> = m
        .headers()
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(
        transports,
        vec![
            Transport::Udp,
            Transport::Sctp,
            Transport::Tls,
            Transport::Other("UNKNOWN".into()),
            Transport::Tcp
        ]
    );
}

fn mpart01(m: &Message) {
    let r = request(m);
    assert_eq!(r.method, Method::Message);
    assert_eq!(r.body.len(), 553);
    assert!(r.body.contains(&0));
    let ct = m.headers().content_type().unwrap().unwrap();
    assert_eq!((&*ct.kind, &*ct.subtype), ("multipart", "mixed"));
    assert_eq!(
        ct.params.get("boundary"),
        Some(Some(&Bytes::from("7a9cbec02ceef655")))
    );
    let via = m.headers().top_via().unwrap();
    assert_eq!(via.rport(), Some(None));
    assert_eq!(via.sent_by.port, Some(5070));
}

fn unreason(m: &Message) {
    let r = response(m);
    assert_eq!(r.status, StatusCode::OK);
    let reason = std::str::from_utf8(&r.reason).unwrap();
    assert!(reason.starts_with("= 2**3 * 5**2 "));
    assert!(!reason.is_ascii());
    assert_eq!(r.body.len(), 154);
    common(m, "unreason.1234ksdfak3j2erwedfsASdf", 35, Method::Invite);
}

fn noreason(m: &Message) {
    let r = response(m);
    assert_eq!(r.status, StatusCode::TRYING);
    assert!(r.reason.is_empty());
}

fn baddate(m: &Message) {
    assert_eq!(value(m, "Date"), b"Fri, 01 Jan 2010 16:00:00 EST");
}

// ---- RFC 4475 §3.2–3.4 --------------------------------------------------------------

fn badbranch(m: &Message) {
    top_via(m, ipv4("192.0.2.1"), None, Some("z9hG4bK"));
}

fn unkscm(m: &Message) {
    assert_eq!(
        request(m).uri,
        Uri::Other {
            scheme: "nobodyKnowsThisScheme".into(),
            rest: Bytes::from("totallyopaquecontent")
        }
    );
}

fn novelsc(m: &Message) {
    assert_eq!(
        request(m).uri,
        Uri::Other {
            scheme: "soap.beep".into(),
            rest: Bytes::from("//192.0.2.103:3002")
        }
    );
}

fn unksm2(m: &Message) {
    let scheme = |uri: &Uri| match uri {
        Uri::Other { scheme, .. } => scheme.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(scheme(&m.headers().to().unwrap().uri), "isbn");
    assert_eq!(scheme(&m.headers().from().unwrap().uri), "http");
    assert_eq!(scheme(&addresses(m)[0].uri), "name");
}

fn bext01(m: &Message) {
    let h = m.headers();
    assert_eq!(
        h.require().unwrap(),
        vec![
            Bytes::from("nothingSupportsThis"),
            Bytes::from("nothingSupportsThisEither")
        ]
    );
    assert_eq!(
        h.proxy_require().unwrap(),
        vec![
            Bytes::from("noProxiesSupportThis"),
            Bytes::from("norDoAnyProxiesSupportThis")
        ]
    );
    top_via(
        m,
        hostname("fold-and-staple.example.com"),
        None,
        Some("z9hG4bKkdjuw"),
    );
}

fn invut(m: &Message) {
    let ct = m.headers().content_type().unwrap().unwrap();
    assert_eq!(ct.to_string(), "application/unknownformat");
    assert_eq!(request(m).body.len(), 40);
}

fn regaut01(m: &Message) {
    assert_eq!(
        value(m, "Authorization"),
        b"NoOneKnowsThisScheme opaque-data=here"
    );
    assert_eq!(m.headers().content_length().unwrap(), Some(0));
}

fn bcast(m: &Message) {
    let vias = m.headers().vias().unwrap();
    assert_eq!(vias[1].sent_by.host, ipv4("255.255.255.255"));
    assert_eq!(response(m).body.len(), 154);
}

fn zeromf(m: &Message) {
    assert_eq!(m.headers().max_forwards().unwrap(), Some(0));
}

fn cparam01(m: &Message) {
    let contact = &addresses(m)[0];
    assert!(!contact.angle_brackets);
    assert_eq!(user(&contact.uri), b"+19725552222");
    assert!(sip(&contact.uri).params.is_empty());
    assert!(contact.params.contains("unknownparam"));
}

fn cparam02(m: &Message) {
    let contact = &addresses(m)[0];
    assert!(sip(&contact.uri).params.contains("unknownparam"));
    assert!(contact.params.is_empty());
}

fn regescrt(m: &Message) {
    let contact = &addresses(m)[0];
    assert_eq!(
        sip(&contact.uri).headers.as_deref(),
        Some(&b"Route=%3Csip:sip.example.com%3E"[..])
    );
    assert_eq!(
        contact.to_string(),
        "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"
    );
}

fn sdp01(m: &Message) {
    assert_eq!(value(m, "Accept"), b"text/nobodyKnowsThis");
}

fn inv2543(m: &Message) {
    let r = request(m);
    assert_eq!(m.headers().content_length().unwrap(), None);
    assert_eq!(r.body.len(), 105, "body is the rest of the datagram");
    top_via(m, hostname("iftgw.example.com"), None, None);
    assert!(m.headers().from().unwrap().tag().is_none());
    assert_eq!(m.headers().max_forwards().unwrap(), None);
    let rr = m.headers().record_routes().unwrap();
    assert_eq!(
        sip(&rr[0].uri).params.get("maddr"),
        Some(Some(&Bytes::from("ss1.example.com")))
    );
}

// ---- RFC 5118 -------------------------------------------------------------------------

fn ipv6_good(m: &Message) {
    let uri = sip(&request(m).uri);
    assert_eq!(uri.host.host, v6("2001:db8::10"));
    assert_eq!(uri.host.port, None);
    top_via(m, v6("2001:db8::9:1"), None, Some("z9hG4bKas3-111"));
    assert_eq!(sip(&addresses(m)[0].uri).host.host, v6("2001:db8::1"));
}

fn port_ambiguous(m: &Message) {
    let uri = sip(&request(m).uri);
    assert_eq!(
        uri.host.host,
        v6("2001:db8::10:5070"),
        "5070 is part of the address"
    );
    assert_eq!(uri.host.port, None);
}

fn port_unambiguous(m: &Message) {
    let uri = sip(&request(m).uri);
    assert_eq!(uri.host.host, v6("2001:db8::10"));
    assert_eq!(uri.host.port, Some(5070));
}

fn via_received_with_delim(m: &Message) {
    let via = m.headers().top_via().unwrap();
    assert_eq!(via.received().unwrap().as_ref(), b"[2001:db8::9:255]");
    assert_eq!(via.branch().unwrap().as_ref(), b"z9hG4bKas3-111");
}

fn via_received_no_delim(m: &Message) {
    let via = m.headers().top_via().unwrap();
    assert_eq!(via.received().unwrap().as_ref(), b"2001:db8::9:255");
    assert_eq!(via.branch().unwrap().as_ref(), b"z9hG4bKas3");
}

fn ipv6_in_sdp(m: &Message) {
    let r = request(m);
    assert_eq!(r.body.len(), 251);
    assert!(r.body.windows(7).any(|w| w == b"IN IP6 "));
    top_via(m, v6("2001:db8::20"), None, Some("z9hG4bKas3-111"));
}

fn mult_ip_in_header(m: &Message) {
    let vias = m.headers().vias().unwrap();
    let sent_by: Vec<_> = vias
        .iter()
        .map(|v| (v.sent_by.host.clone(), v.sent_by.port))
        .collect();
    assert_eq!(
        sent_by,
        vec![
            (v6("2001:db8::9:1"), Some(6050)),
            (ipv4("192.0.2.1"), None),
            (v6("2001:db8::9:255"), None)
        ]
    );
    assert_eq!(vias[2].received().unwrap().as_ref(), b"192.0.2.200");
    assert_eq!(vias[2].transport, Transport::Tcp);
}

fn mult_ip_in_sdp(m: &Message) {
    assert_eq!(request(m).body.len(), 189);
    assert_eq!(m.headers().cseq().unwrap().seq, 8912);
}

fn ipv4_mapped_ipv6(m: &Message) {
    top_via(m, v6("::ffff:192.0.2.10"), Some(19823), Some("z9hG4bKbh19"));
    let contact = &addresses(m)[0];
    assert_eq!(sip(&contact.uri).host.host, v6("::ffff:192.0.2.2"));
    assert_eq!(
        contact.display_name.as_deref(),
        Some(&br#""T. desk phone""#[..])
    );
}

/// RFC 5118 §4.10 tolerance: the three-colon reference is read as the two-colon one.
fn ipv6_three_colons(m: &Message) {
    let uri = sip(&request(m).uri);
    assert_eq!(uri.host.host, v6("2001:db8::192.0.2.1"));
    assert_eq!(
        sip(&m.headers().to().unwrap().uri).host.host,
        v6("2001:db8::192.0.2.1")
    );
    // It prints in the canonical (RFC 5954-valid) form, never with three colons.
    assert_eq!(request(m).uri.to_string(), "sip:user@[2001:db8::c000:201]");
}

fn ipv6_two_colons(m: &Message) {
    assert_eq!(sip(&request(m).uri).host.host, v6("2001:db8::192.0.2.1"));
}
