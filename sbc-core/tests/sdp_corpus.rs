//! Every SDP of the shared corpus parses and prints back byte for byte, with typed values
//! checked for several of them: RFC 4317 offer/answer examples, JSEP (RFC 9429) WebRTC
//! examples, RFC 4568 `a=crypto` lines, and the SDP bodies of RFC 5118 §4.6 and §4.8.

// A failed expectation is a failed test: panicking with a message is what a test does.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use sbc_core::sdp::{
    AddrType, CandidateType, Crypto, Direction, Host, KeyParam, Lifetime, Line, Mki, NetType, Rtcp,
    SessionDescription, Setup, TypedAttribute,
};

fn testdata() -> PathBuf {
    match std::env::var_os("SBC_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/testdata"
        )),
    }
}

fn read(relative: &str) -> Vec<u8> {
    let path = testdata().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(relative: &str) -> SessionDescription {
    let bytes = read(relative);
    let sdp = SessionDescription::parse(&bytes).unwrap_or_else(|e| panic!("{relative}: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&sdp.to_bytes()),
        String::from_utf8_lossy(&bytes),
        "{relative} does not print back byte for byte"
    );
    sdp
}

fn sdp_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(testdata().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sdp"))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    files.sort();
    files
}

/// Round-trips a description through its typed views: every rtpmap, fmtp, rtcp,
/// candidate, crypto, fingerprint and setup that decodes also encodes to the same bytes.
fn typed_views_round_trip(sdp: &SessionDescription) {
    let levels = std::iter::once(&sdp.lines).chain(sdp.media.iter().map(|m| &m.lines));
    for lines in levels {
        for attribute in lines.attributes() {
            let value = attribute.value.as_deref().unwrap_or_default();
            let reencoded = match &*attribute.name {
                "rtpmap" => sbc_core::sdp::Rtpmap::parse_value(value).map(|v| v.to_value()),
                "fmtp" => sbc_core::sdp::Fmtp::parse_value(value).map(|v| v.to_value()),
                "rtcp" => Rtcp::parse_value(value).map(|v| v.to_value()),
                "candidate" => sbc_core::sdp::Candidate::parse_value(value).map(|v| v.to_value()),
                "crypto" => Crypto::parse_value(value).map(|v| v.to_value()),
                "fingerprint" => {
                    sbc_core::sdp::Fingerprint::parse_value(value).map(|v| v.to_value())
                }
                "setup" => Setup::parse_value(value).map(|v| v.to_value()),
                _ => continue,
            };
            let reencoded = reencoded.unwrap_or_else(|e| panic!("a={}: {e}", attribute.name));
            assert_eq!(
                &reencoded[..],
                value,
                "a={} re-encodes differently",
                attribute.name
            );
        }
    }
}

#[test]
fn every_rfc4317_description_round_trips() {
    let files = sdp_files("sdp/rfc4317");
    assert_eq!(files.len(), 54);
    for file in files {
        let sdp = parse(&file);
        typed_views_round_trip(&sdp);
        assert_eq!(sdp.origin.address.net_type, NetType::In, "{file}");
        assert_eq!(&sdp.session_name[..], b" ", "{file}: s= is one space");
    }
}

#[test]
fn every_jsep_description_round_trips() {
    let files = sdp_files("sdp/jsep");
    assert_eq!(files.len(), 10);
    for file in files {
        let sdp = parse(&file);
        typed_views_round_trip(&sdp);
        for media in &sdp.media {
            assert!(
                media.lines.has_attribute("mid"),
                "{file}: every section has a mid"
            );
        }
    }
}

#[test]
fn rfc4317_2_1_offer() {
    let sdp = parse("sdp/rfc4317/2.1-offer.sdp");
    assert_eq!(&sdp.origin.username[..], b"alice");
    assert_eq!(sdp.origin.session_id_u64(), Some(2890844526));
    assert_eq!(sdp.origin.session_version_u64(), Some(2890844526));
    assert_eq!(sdp.origin.address.addr_type, AddrType::Ip4);
    assert_eq!(
        sdp.origin.address.host(),
        Host::Name(b"host.atlanta.example.com")
    );
    let connection = sdp.lines.connection().expect("session c=");
    assert_eq!(connection.host(), Host::Name(b"host.atlanta.example.com"));
    assert_eq!(connection.multicast, None);

    assert_eq!(sdp.media.len(), 2);
    let audio = &sdp.media[0];
    assert_eq!(&*audio.media.kind, "audio");
    assert_eq!(audio.media.port, 49170);
    assert_eq!(audio.media.port_count, None);
    assert_eq!(&*audio.media.protocol, "RTP/AVP");
    assert_eq!(audio.media.formats, ["0", "8", "97"].map(Box::<str>::from));
    let ilbc = audio.rtpmap(97).expect("rtpmap 97").expect("valid");
    assert_eq!((&*ilbc.encoding, ilbc.clock_rate), ("iLBC", 8000));
    assert_eq!(sdp.media_direction(0), Some(Direction::SendRecv));
    assert!(
        sdp.media_connection(1)
            .is_some_and(|c| std::ptr::eq(c, connection))
    );
    assert_eq!(sdp.media[1].media.port, 51372);
}

#[test]
fn rfc4317_rejected_stream_keeps_port_zero() {
    for file in ["2.2-answer", "2.6-answer", "4.3-second-offer"] {
        let sdp = parse(&format!("sdp/rfc4317/{file}.sdp"));
        assert!(sdp.media.iter().any(|m| m.media.port == 0), "{file}");
    }
}

#[test]
fn rfc4317_2_3_payload_type_renumbered() {
    let offer = parse("sdp/rfc4317/2.3-offer.sdp");
    let answer = parse("sdp/rfc4317/2.3-answer.sdp");
    let offered = offer.media[0].rtpmap(97).expect("97").expect("valid");
    let answered = answer.media[0].rtpmap(99).expect("99").expect("valid");
    assert_eq!(offered.encoding, answered.encoding);
    assert_eq!(answer.media[0].media.formats, [Box::<str>::from("99")]);
}

#[test]
fn rfc4317_hold_and_black_hole() {
    let hold = parse("sdp/rfc4317/3.1-answer.sdp");
    assert_eq!(
        hold.media_connection(0).map(|c| c.host()),
        Some(Host::Name(b"placeholder.biloxi.example.com"))
    );
    assert_eq!(hold.media_direction(0), Some(Direction::SendOnly));
    let resumed = parse("sdp/rfc4317/3.1-second-offer.sdp");
    assert_eq!(resumed.media_direction(0), Some(Direction::SendRecv));
    assert_eq!(resumed.origin.session_version_u64(), Some(2808844565));

    let black_hole = parse("sdp/rfc4317/5.2-offer.sdp");
    let has_zero = std::iter::once(&black_hole.lines)
        .chain(black_hole.media.iter().map(|m| &m.lines))
        .flat_map(|lines| lines.connections())
        .any(|c| c.ip() == Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    assert!(has_zero, "5.2 offer uses c=IN IP4 0.0.0.0");

    let no_media = parse("sdp/rfc4317/5.1-offer.sdp");
    assert!(no_media.media.is_empty());
}

#[test]
fn jsep_offer_a1() {
    let sdp = parse("sdp/jsep/offer-A1.sdp");
    assert_eq!(&sdp.origin.username[..], b"-");
    assert_eq!(sdp.origin.session_id_u64(), Some(4962303333179871722));
    assert_eq!(
        sdp.origin.address.ip(),
        Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    );
    assert_eq!(
        sdp.lines.attribute_value("group").map(|v| &v[..]),
        Some(&b"BUNDLE a1 v1"[..])
    );

    let audio = &sdp.media[0];
    assert_eq!(&*audio.media.protocol, "UDP/TLS/RTP/SAVPF");
    assert_eq!(
        audio.lines.connection().and_then(|c| c.ip()),
        Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 100)))
    );
    assert_eq!(audio.lines.direction(), Some(Direction::SendRecv));
    assert!(audio.lines.rtcp_mux());
    let rtcp = audio.lines.rtcp().expect("a=rtcp").expect("valid");
    assert_eq!(rtcp.port, 10101);
    assert_eq!(
        rtcp.address.and_then(|a| a.ip()),
        Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 100)))
    );
    assert_eq!(audio.lines.ice_ufrag().map(|v| &v[..]), Some(&b"ETEn"[..]));
    assert_eq!(
        audio.lines.ice_pwd().map(|v| &v[..]),
        Some(&b"OtSK0WpNtpUjkY4+86js7ZQl"[..])
    );
    assert!(!sdp.lines.ice_lite());
    assert_eq!(audio.lines.setup(), Some(Ok(Setup::ActPass)));
    let fingerprint = audio
        .lines
        .fingerprints()
        .next()
        .expect("fingerprint")
        .expect("valid");
    assert_eq!(&*fingerprint.hash_function, "sha-256");
    let digest = fingerprint.digest().expect("hex");
    assert_eq!(digest.len(), 32);
    assert_eq!((digest[0], digest[31]), (0x19, 0xA2));

    let candidates: Vec<_> = audio
        .lines
        .candidates()
        .collect::<Result<_, _>>()
        .expect("valid");
    assert_eq!(candidates.len(), 2);
    assert_eq!(&*candidates[1].foundation, "1");
    assert_eq!(candidates[1].component, 2);
    assert_eq!(&*candidates[1].transport, "udp");
    assert_eq!(candidates[1].priority, 2113929470);
    assert_eq!(
        candidates[1].ip(),
        Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 100)))
    );
    assert_eq!(candidates[1].port, 10101);
    assert_eq!(candidates[1].kind, CandidateType::Host);
    assert!(audio.lines.has_attribute("end-of-candidates"));

    let opus = audio.rtpmap(96).expect("96").expect("valid");
    assert_eq!((&*opus.encoding, opus.clock_rate), ("opus", 48000));
    assert_eq!(opus.encoding_params.as_deref(), Some("2"));
    let dtmf = audio.fmtp("97").expect("97").expect("valid");
    assert_eq!(&dtmf.params[..], b"0-15");
    let h264 = sdp.media[1].fmtp("101").expect("101").expect("valid");
    assert_eq!(
        &h264.params[..],
        b"packetization-mode=1;profile-level-id=42e01f"
    );
}

#[test]
fn jsep_offer_b1_relay_candidates_and_data_channel() {
    let sdp = parse("sdp/jsep/offer-B2.sdp");
    let audio = &sdp.media[0];
    let relay = audio
        .lines
        .candidates()
        .filter_map(Result::ok)
        .find(|c| c.kind == CandidateType::Relayed)
        .expect("relay candidate");
    assert_eq!(relay.priority, 255);
    assert_eq!(
        relay.related_address.as_deref(),
        Some(&b"198.51.100.200"[..])
    );
    assert_eq!(relay.related_port, Some(11200));
    assert!(audio.lines.has_attribute("rtcp-mux-only"));

    let data = &sdp.media[1];
    assert_eq!(&*data.media.kind, "application");
    assert_eq!(&*data.media.protocol, "UDP/DTLS/SCTP");
    assert_eq!(data.media.formats, [Box::<str>::from("webrtc-datachannel")]);
    assert!(!data.media.is_rtp());
    assert_eq!(
        data.lines.attribute_value("sctp-port").map(|v| &v[..]),
        Some(&b"5000"[..])
    );
}

#[test]
fn jsep_answer_c1_sendonly_active() {
    let sdp = parse("sdp/jsep/answer-C1.sdp");
    assert_eq!(sdp.media[0].media.port, 9);
    assert_eq!(sdp.media_direction(0), Some(Direction::SendOnly));
    assert_eq!(sdp.media[0].lines.setup(), Some(Ok(Setup::Active)));
}

fn crypto_cases() -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_slice(&read("sdp/sdes_crypto_attributes.json")).expect("valid JSON");
    json["lines"].as_array().expect("lines").clone()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sdes_crypto_lines_decode_as_the_manifest_says() {
    let cases = crypto_cases();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let line = case["line"].as_str().expect("line");
        let expected = &case["expected"];
        let value = line.strip_prefix("a=crypto:").expect("a=crypto line");
        let crypto =
            Crypto::parse_value(value.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(&crypto.to_value()[..], value.as_bytes(), "{line}");
        assert_eq!(
            u64::from(crypto.tag),
            expected["tag"].as_u64().expect("tag")
        );
        assert_eq!(&*crypto.suite, expected["suite"].as_str().expect("suite"));
        let params: Vec<&str> = expected["session_params"]
            .as_array()
            .expect("session_params")
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        let got: Vec<&str> = crypto.session_params.iter().map(|p| &**p).collect();
        assert_eq!(got, params, "{line}");

        let keys = expected["key_params"].as_array().expect("key_params");
        assert_eq!(crypto.keys.len(), keys.len(), "{line}");
        for (key, want) in crypto.keys.iter().zip(keys) {
            let KeyParam::Inline(inline) = key else {
                panic!("{line}: not inline");
            };
            assert_eq!(
                &*inline.key_salt,
                want["key_salt_b64"].as_str().expect("b64")
            );
            let key_salt = inline.key_salt_bytes().expect("base64");
            assert_eq!(
                key_salt.len() as u64,
                want["key_salt_len"].as_u64().expect("len")
            );
            assert_eq!(
                hex(&key_salt[..16]),
                want["master_key_hex"].as_str().expect("key")
            );
            assert_eq!(
                hex(&key_salt[16..]),
                want["master_salt_hex"].as_str().expect("salt")
            );
            let lifetime = inline.lifetime.map(|l| l.to_string());
            assert_eq!(lifetime.as_deref(), want["lifetime"].as_str(), "{line}");
            let mki = &want["mki"];
            assert_eq!(
                inline.mki,
                Some(Mki {
                    value: mki["value"].as_u64().expect("mki value"),
                    length: mki["length"]
                        .as_u64()
                        .and_then(|l| u8::try_from(l).ok())
                        .expect("len"),
                })
            );
        }
        let (key, salt) = crypto.master_key_and_salt().expect("known suite");
        assert_eq!((key.len(), salt.len()), (16, 14));
    }
}

#[test]
fn sdes_crypto_first_line_typed() {
    let crypto = Crypto::parse_value(
        b"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
    )
    .expect("valid");
    assert_eq!(crypto.tag, 1);
    let KeyParam::Inline(inline) = &crypto.keys[0] else {
        panic!("inline key expected");
    };
    assert_eq!(inline.lifetime, Some(Lifetime::PowerOfTwo(20)));
    assert_eq!(
        inline.mki,
        Some(Mki {
            value: 1,
            length: 32
        })
    );
}

/// The body after the empty line of a SIP message.
fn sip_body(relative: &str) -> Vec<u8> {
    let message = read(relative);
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header section ends");
    message[end + 4..].to_vec()
}

#[test]
fn rfc5118_ipv6_in_sdp() {
    let body = sip_body("torture-ipv6/wire/ipv6-in-sdp.dat");
    let sdp = SessionDescription::parse(&body).expect("parses");
    assert_eq!(&sdp.to_bytes()[..], &body[..]);
    let v6: Ipv6Addr = "2001:db8::20".parse().expect("ip");
    assert_eq!(sdp.origin.address.addr_type, AddrType::Ip6);
    assert_eq!(sdp.origin.address.host(), Host::V6(v6));
    assert_eq!(sdp.origin.session_id_u64(), Some(971731711378798081));
    assert_eq!(
        sdp.lines.connection().and_then(|c| c.ip()),
        Some(IpAddr::V6(v6))
    );
    assert_eq!(sdp.media.len(), 2);
    assert_eq!(sdp.media[1].media.port, 6024);
    assert_eq!(
        sdp.media_connection(1).and_then(|c| c.ip()),
        Some(IpAddr::V6(v6))
    );
    assert!(
        sdp.lines
            .iter()
            .any(|l| matches!(l, Line::Other(t) if t.starts_with(b"t=")))
    );
}

#[test]
fn rfc5118_per_media_ipv4_and_ipv6() {
    let body = sip_body("torture-ipv6/wire/mult-ip-in-sdp.dat");
    let sdp = SessionDescription::parse(&body).expect("parses");
    assert_eq!(&sdp.to_bytes()[..], &body[..]);
    assert!(sdp.session_name.is_empty());
    assert_eq!(sdp.lines.connection(), None);
    let audio = sdp.media_connection(0).expect("audio c=");
    assert_eq!(audio.address.addr_type, AddrType::Ip4);
    assert_eq!(audio.ip(), Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
    let video = sdp.media_connection(1).expect("video c=");
    assert_eq!(video.address.addr_type, AddrType::Ip6);
    assert_eq!(
        video.ip(),
        Some(IpAddr::V6("2001:db8::1".parse().expect("ip")))
    );
}

/// The fuzz seeds (and any regression input added there) hold the fuzz target's
/// invariant: whatever parses prints to bytes that parse to the same model.
#[test]
fn fuzz_seeds_round_trip() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/sdp"));
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/seeds/sdp") {
        let path = entry.expect("entry").path();
        let input = std::fs::read(&path).expect("readable");
        let Ok(sdp) = SessionDescription::parse(&input) else {
            continue;
        };
        let printed = sdp.to_bytes();
        let again = SessionDescription::parse(&printed).expect("printed SDP parses");
        assert_eq!(again, sdp, "{}", path.display());
        if !input.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r') {
            assert_eq!(&printed[..], &input[..], "{}", path.display());
        }
        count += 1;
    }
    assert!(count >= 50, "only {count} seeds parse");
}
