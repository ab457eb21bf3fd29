//! The rewrites a B2BUA does when it anchors media: each setter changes only what it
//! names, in place, and the result prints and re-parses to the same model.

// A failed expectation is a failed test: panicking with a message is what a test does.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sbc_core::sdp::{
    Attribute, Candidate, CandidateType, Connection, Crypto, Direction, Fingerprint, Fmtp,
    InlineKey, KeyParam, Lifetime, Line, NetAddress, Rtcp, Rtpmap, SessionDescription, Setup,
};

const OFFER: &str = "v=0\r\n\
o=- 4962303333179871722 1 IN IP4 0.0.0.0\r\n\
s=-\r\n\
t=0 0\r\n\
a=ice-lite\r\n\
a=group:BUNDLE a1\r\n\
m=audio 10100 UDP/TLS/RTP/SAVPF 96 0 8 97\r\n\
c=IN IP4 203.0.113.100\r\n\
a=mid:a1\r\n\
a=sendrecv\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:97 telephone-event/8000\r\n\
a=fmtp:96 minptime=10;useinbandfec=1\r\n\
a=fmtp:97 0-15\r\n\
a=rtcp-fb:96 transport-cc\r\n\
a=rtcp-fb:* nack\r\n\
a=ice-ufrag:ETEn\r\n\
a=ice-pwd:OtSK0WpNtpUjkY4+86js7ZQl\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 19:E2:1C:3B:4B:9F:81:E6:B8:5C:F4:A5:A8:D8:73:04:BB:05:2F:70:9F:04:A9:0E:05:E9:26:33:E8:70:88:A2\r\n\
a=setup:actpass\r\n\
a=rtcp:10101 IN IP4 203.0.113.100\r\n\
a=rtcp-mux\r\n\
a=candidate:1 1 udp 2113929471 203.0.113.100 10100 typ host generation 0\r\n\
a=candidate:2 1 udp 1845494015 198.51.100.200 11200 typ srflx raddr 203.0.113.100 rport 10100\r\n\
a=end-of-candidates\r\n";

fn offer() -> SessionDescription {
    SessionDescription::parse(OFFER.as_bytes()).expect("parses")
}

/// Prints, re-parses and checks the model survived; returns the printed text.
fn reprint(sdp: &SessionDescription) -> String {
    let printed = sdp.to_bytes();
    let again = SessionDescription::parse(&printed).expect("printed SDP parses");
    assert_eq!(&again, sdp);
    String::from_utf8(printed.to_vec()).expect("ASCII")
}

#[test]
fn untouched_offer_prints_back_identically() {
    assert_eq!(reprint(&offer()), OFFER);
}

#[test]
fn anchor_media_on_the_relay() {
    let mut sdp = offer();
    let relay = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    sdp.origin.username = "sbc".into();
    sdp.origin.set_session_id(42);
    sdp.origin.bump_version();
    sdp.origin.address.set_ip(relay);
    sdp.lines.set_connection(Some(Connection::from_ip(relay)));
    let media = &mut sdp.media[0];
    media.media.port = 20000;
    media.lines.set_connection(None);
    media.lines.set_rtcp(Some(&Rtcp {
        port: 20001,
        address: Some(NetAddress::from_ip(relay)),
    }));
    let text = reprint(&sdp);
    assert!(text.starts_with(
        "v=0\r\no=sbc 42 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    ));
    assert!(text.contains("m=audio 20000 UDP/TLS/RTP/SAVPF 96 0 8 97\r\na=mid:a1\r\n"));
    assert!(text.contains("a=setup:actpass\r\na=rtcp:20001 IN IP4 198.51.100.7\r\na=rtcp-mux\r\n"));
    assert_eq!(sdp.media_connection(0).and_then(|c| c.ip()), Some(relay));
}

#[test]
fn connection_is_inserted_where_rfc_8866_orders_it() {
    let mut sdp = offer();
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5));
    sdp.media[0].lines.set_connection(None);
    sdp.media[0].lines.push(Line::Other("i=first".into()));
    sdp.media[0]
        .lines
        .set_connection(Some(Connection::from_ip(v6)));
    let text = reprint(&sdp);
    // No c= left: the new one goes before the first a= (RFC 8866 order), not at the end.
    assert!(text.contains(
        "m=audio 10100 UDP/TLS/RTP/SAVPF 96 0 8 97\r\nc=IN IP6 2001:db8::5\r\na=mid:a1\r\n"
    ));
    // An existing c= is replaced in place.
    sdp.media[0]
        .lines
        .set_connection(Some(Connection::from_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))));
    assert!(reprint(&sdp).contains("\r\nc=IN IP4 127.0.0.1\r\na=mid:a1\r\n"));
    assert_eq!(sdp.media[0].lines.connections().count(), 1);
}

#[test]
fn direction_is_replaced_in_place() {
    let mut sdp = offer();
    let lines = &mut sdp.media[0].lines;
    lines.set_direction(Some(Direction::SendOnly));
    assert_eq!(lines.direction(), Some(Direction::SendOnly));
    assert!(reprint(&sdp).contains("a=mid:a1\r\na=sendonly\r\na=rtpmap:96"));
    assert_eq!(
        sdp.media_direction(0).map(Direction::reversed),
        Some(Direction::RecvOnly)
    );

    let lines = &mut sdp.media[0].lines;
    lines.push_attribute(Attribute::flag("inactive"));
    lines.set_direction(Some(Direction::RecvOnly));
    assert_eq!(
        lines
            .attributes()
            .filter(|a| Direction::from_name(&a.name).is_some())
            .count(),
        1
    );
    lines.set_direction(None);
    assert_eq!(lines.direction(), None);
    assert_eq!(sdp.media_direction(0), Some(Direction::SendRecv));
    sdp.lines.set_direction(Some(Direction::Inactive));
    assert_eq!(sdp.media_direction(0), Some(Direction::Inactive));
    reprint(&sdp);
}

#[test]
fn rtcp_mux_toggles() {
    let mut sdp = offer();
    let lines = &mut sdp.media[0].lines;
    assert!(lines.rtcp_mux());
    lines.set_rtcp_mux(true);
    assert_eq!(lines.attributes_named("rtcp-mux").count(), 1);
    lines.set_rtcp_mux(false);
    assert!(!lines.rtcp_mux());
    lines.set_rtcp(None);
    assert_eq!(lines.rtcp(), None);
    reprint(&sdp);
}

#[test]
fn dtls_to_sdes() {
    let mut sdp = offer();
    let media = &mut sdp.media[0];
    media.media.protocol = "RTP/SAVP".into();
    media.lines.set_fingerprints(&[]);
    media.lines.set_setup(None);
    let key: Vec<u8> = (0u8..30).collect();
    let mut inline = InlineKey::from_key_salt(&key);
    inline.lifetime = Some(Lifetime::PowerOfTwo(31));
    let crypto = Crypto {
        tag: 1,
        suite: "AES_CM_128_HMAC_SHA1_80".into(),
        keys: vec![KeyParam::Inline(inline)],
        session_params: Vec::new(),
    };
    media.lines.set_crypto(std::slice::from_ref(&crypto));
    let text = reprint(&sdp);
    assert!(text.contains(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31\r\n"
    ));
    assert!(!text.contains("a=fingerprint") && !text.contains("a=setup"));
    let decoded = sdp.media[0]
        .lines
        .crypto()
        .next()
        .expect("crypto")
        .expect("valid");
    assert_eq!(decoded, crypto);
    let (master_key, salt) = decoded.master_key_and_salt().expect("known suite");
    assert_eq!((master_key, salt), (key[..16].to_vec(), key[16..].to_vec()));
}

#[test]
fn sdes_to_dtls() {
    let mut sdp = offer();
    let lines = &mut sdp.media[0].lines;
    let fingerprint = Fingerprint::from_digest("sha-256", &[0xab; 32]);
    lines.set_fingerprints(std::slice::from_ref(&fingerprint));
    lines.set_setup(Some(Setup::Passive));
    assert_eq!(lines.setup(), Some(Ok(Setup::Passive)));
    let text = reprint(&sdp);
    assert!(text.contains(&format!(
        "a=fingerprint:sha-256 {}\r\na=setup:passive\r\n",
        ["AB"; 32].join(":")
    )));
    let decoded = sdp.media[0]
        .lines
        .fingerprints()
        .next()
        .expect("one")
        .expect("valid");
    assert_eq!(decoded.digest(), Some(vec![0xab; 32]));
}

#[test]
fn ice_is_replaced_or_removed() {
    let mut sdp = offer();
    let lines = &mut sdp.media[0].lines;
    let mut ours: Candidate = lines.candidates().next().expect("one").expect("valid");
    ours.address = "198.51.100.7".into();
    ours.port = 20000;
    ours.extensions.clear();
    lines.set_candidates(std::slice::from_ref(&ours));
    lines.set_ice_credentials("SbcU", "SbcPasswordSbcPassword12");
    assert_eq!(lines.ice_ufrag().map(|u| &u[..]), Some(&b"SbcU"[..]));
    let text = reprint(&sdp);
    assert!(text.contains("a=ice-ufrag:SbcU\r\na=ice-pwd:SbcPasswordSbcPassword12\r\n"));
    assert!(text.contains(
        "a=candidate:1 1 udp 2113929471 198.51.100.7 20000 typ host\r\na=end-of-candidates\r\n"
    ));
    assert_eq!(ours.kind, CandidateType::Host);

    assert!(sdp.lines.ice_lite());
    sdp.lines.set_ice_lite(false);
    let removed = sdp.media[0].lines.remove_ice();
    assert_eq!(removed, 5);
    let text = reprint(&sdp);
    assert!(!text.contains("ice-") && !text.contains("candidate"));
}

#[test]
fn codecs_are_filtered_with_their_attributes() {
    let mut sdp = offer();
    let media = &mut sdp.media[0];
    media.retain_formats(|f| f == "0" || f == "97");
    assert_eq!(media.media.formats, ["0", "97"].map(Box::<str>::from));
    let text = reprint(&sdp);
    assert!(!text.contains("opus") && !text.contains("PCMA") && !text.contains("transport-cc"));
    assert!(text.contains("a=rtpmap:0 PCMU/8000\r\na=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-15\r\na=rtcp-fb:* nack\r\n"));

    let media = &mut sdp.media[0];
    let g722 = Rtpmap {
        payload_type: 9,
        encoding: "G722".into(),
        clock_rate: 8000,
        encoding_params: None,
    };
    let fmtp = Fmtp {
        format: "9".into(),
        params: "x=1".into(),
    };
    media.push_format("9", Some(&g722), Some(&fmtp));
    assert_eq!(media.rtpmap(9), Some(Ok(g722)));
    assert_eq!(media.fmtp("9"), Some(Ok(fmtp)));
    let codecs: Vec<(&str, Option<String>)> = media
        .codecs()
        .map(|(f, r)| (f, r.and_then(Result::ok).map(|r| r.encoding.to_string())))
        .collect();
    assert_eq!(codecs[0], ("0", Some("PCMU".to_string())));
    assert_eq!(codecs[2], ("9", Some("G722".to_string())));
    reprint(&sdp);
}

#[test]
fn build_a_description_from_scratch() {
    let relay = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let origin = sbc_core::sdp::Origin::new("-", 1, 1, NetAddress::from_ip(relay));
    let mut sdp = SessionDescription::new(origin, "-");
    sdp.lines.set_connection(Some(Connection::from_ip(relay)));
    sdp.lines.push(Line::Other("t=0 0".into()));
    let mut audio = sbc_core::sdp::MediaDescription::new(sbc_core::sdp::Media::new(
        "audio",
        30000,
        "RTP/AVP",
        &[],
    ));
    audio.push_format(
        "0",
        Some(&Rtpmap {
            payload_type: 0,
            encoding: "PCMU".into(),
            clock_rate: 8000,
            encoding_params: None,
        }),
        None,
    );
    audio.lines.set_direction(Some(Direction::SendRecv));
    sdp.media.push(audio);
    assert_eq!(
        reprint(&sdp),
        "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
}
