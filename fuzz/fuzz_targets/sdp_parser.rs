//! Parses arbitrary bytes as SDP. Whatever parses must print to bytes that parse to the
//! same model and print identically again; every typed attribute view that decodes must
//! encode to a value that decodes to the same thing; a relay rewrite must round-trip too.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use sbc_core::sdp::{
    Candidate, Connection, Crypto, Fingerprint, Fmtp, Limits, Lines, NetAddress, Rtcp, Rtpmap,
    SessionDescription, Setup, TypedAttribute,
};

/// The printer writes CRLF where the input may have had a bare LF, and the rewrite may add
/// a line per media section, so the printed form may exceed the input's limits.
const REPARSE: Limits = Limits {
    max_size: 4 * Limits::DEFAULT.max_size,
    max_lines: 2 * Limits::DEFAULT.max_lines,
    max_media: Limits::DEFAULT.max_media,
    max_line_length: Limits::DEFAULT.max_line_length,
};

fn reparse(sdp: &SessionDescription) {
    let printed = sdp.to_bytes();
    let again = match SessionDescription::parse_bytes(printed.clone(), &REPARSE) {
        Ok(again) => again,
        Err(e) => panic!("printed SDP does not parse: {e}\n{printed:?}"),
    };
    assert_eq!(&again, sdp);
    assert_eq!(again.to_bytes(), printed);
}

fn typed<T: TypedAttribute + PartialEq + std::fmt::Debug>(value: &[u8]) {
    if let Ok(decoded) = T::parse_value(value) {
        let encoded = decoded.to_value();
        match T::parse_value(&encoded) {
            Ok(again) => assert_eq!(again, decoded),
            Err(e) => panic!("a={} re-encoded does not decode: {e}: {encoded:?}", T::NAME),
        }
    }
}

fn typed_views(lines: &Lines) {
    for attribute in lines.attributes() {
        let value = attribute.value.as_deref().unwrap_or_default();
        match &*attribute.name {
            "rtcp" => typed::<Rtcp>(value),
            "crypto" => typed::<Crypto>(value),
            "fingerprint" => typed::<Fingerprint>(value),
            "setup" => typed::<Setup>(value),
            "candidate" => typed::<Candidate>(value),
            "rtpmap" => typed::<Rtpmap>(value),
            "fmtp" => typed::<Fmtp>(value),
            _ => {}
        }
    }
    let _ = lines.direction();
    let _ = lines.rtcp_mux();
    let _ = lines.ice_ufrag();
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut sdp) = SessionDescription::parse(data) else {
        return;
    };
    reparse(&sdp);
    typed_views(&sdp.lines);
    for media in &sdp.media {
        typed_views(&media.lines);
        for _ in media.codecs() {}
    }

    let relay = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    sdp.origin.address.set_ip(relay);
    sdp.origin.bump_version();
    sdp.lines.set_connection(Some(Connection::from_ip(relay)));
    for (index, media) in sdp.media.iter_mut().enumerate() {
        media.media.port = 20000u16.wrapping_add(index as u16 * 2);
        media.lines.set_rtcp(Some(&Rtcp {
            port: media.media.port.wrapping_add(1),
            address: Some(NetAddress::from_ip(relay)),
        }));
        media.lines.remove_ice();
        media.retain_formats(|f| f != "8");
    }
    reparse(&sdp);
});
