//! Property tests: generated descriptions survive print → parse unchanged, so do typed
//! attribute values, and so does a B2BUA-style rewrite of ports and addresses.

// A failed expectation is a failed test: panicking with a message is what a test does.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use proptest::prelude::*;
use sbc_core::sdp::{
    AddrType, Attribute, Candidate, CandidateType, Connection, Crypto, Fingerprint, Fmtp,
    InlineKey, KeyParam, Lifetime, Line, Lines, Media, MediaDescription, Mki, NetAddress, NetType,
    Origin, Rtcp, Rtpmap, SessionDescription, Setup, TypedAttribute,
};

const TOKEN: &str = "[a-zA-Z0-9!#$%&'*+.^_`{|}~-]{1,8}";

fn bytes_without_lf(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..max)
        .prop_map(Bytes::from)
}

fn non_ws_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no SP or LF", |b| *b != b'\n' && *b != b' '),
        1..max,
    )
    .prop_map(Bytes::from)
}

fn digits() -> impl Strategy<Value = Bytes> {
    "[0-9]{1,20}".prop_map(Bytes::from)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ]
}

fn net_address() -> impl Strategy<Value = NetAddress> {
    prop_oneof![
        4 => ip().prop_map(NetAddress::from_ip),
        1 => ("[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,4}){0,2}", any::<bool>()).prop_map(|(name, v6)| {
            NetAddress::from_name(if v6 { AddrType::Ip6 } else { AddrType::Ip4 }, &name)
        }),
        1 => ("[+0-9a-z-]{1,10}").prop_map(|address| NetAddress {
            net_type: NetType::Other("TN".into()),
            addr_type: AddrType::Other("RFC2543".into()),
            address: address.into(),
        }),
    ]
}

fn connection() -> impl Strategy<Value = Connection> {
    (
        net_address(),
        proptest::option::of("[0-9]{1,3}(/[0-9]{1,2})?"),
    )
        .prop_map(|(address, multicast)| Connection {
            address,
            multicast: multicast.map(Bytes::from),
        })
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (TOKEN, proptest::option::of(bytes_without_lf(24))).prop_map(|(name, value)| Attribute {
        name: name.into(),
        value,
    })
}

fn other_line() -> impl Strategy<Value = Bytes> {
    (
        proptest::sample::select(b"biueptrzkxyZ".to_vec()),
        bytes_without_lf(24),
    )
        .prop_map(|(kind, rest)| {
            let mut line = vec![kind, b'='];
            line.extend_from_slice(&rest);
            Bytes::from(line)
        })
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        1 => connection().prop_map(Line::Connection),
        4 => attribute().prop_map(Line::Attribute),
        2 => other_line().prop_map(Line::Other),
    ]
}

fn lines() -> impl Strategy<Value = Lines> {
    proptest::collection::vec(line(), 0..8).prop_map(Lines::from)
}

fn media() -> impl Strategy<Value = Media> {
    (
        TOKEN,
        any::<u16>(),
        proptest::option::of(1..=u16::MAX),
        "[A-Za-z0-9]{1,6}(/[A-Za-z0-9]{1,6}){0,3}",
        proptest::collection::vec(TOKEN, 0..6),
    )
        .prop_map(|(kind, port, port_count, protocol, formats)| Media {
            kind: kind.into(),
            port,
            port_count,
            protocol: protocol.into(),
            formats: formats.into_iter().map(Into::into).collect(),
        })
}

fn description() -> impl Strategy<Value = SessionDescription> {
    let origin = (non_ws_bytes(12), digits(), digits(), net_address()).prop_map(
        |(username, session_id, session_version, address)| Origin {
            username,
            session_id,
            session_version,
            address,
        },
    );
    let media_sections = proptest::collection::vec(
        (media(), lines()).prop_map(|(media, lines)| MediaDescription { media, lines }),
        0..5,
    );
    (origin, bytes_without_lf(20), lines(), media_sections).prop_map(
        |(origin, session_name, lines, media)| SessionDescription {
            origin,
            session_name,
            lines,
            media,
        },
    )
}

fn crypto() -> impl Strategy<Value = Crypto> {
    let lifetime = prop_oneof![
        (0u8..64).prop_map(Lifetime::PowerOfTwo),
        any::<u64>().prop_map(Lifetime::Packets),
    ];
    let mki = (any::<u64>(), 1u8..=128).prop_map(|(value, length)| Mki { value, length });
    let inline = (
        proptest::collection::vec(any::<u8>(), 1..48),
        proptest::option::of(lifetime),
        proptest::option::of(mki),
    )
        .prop_map(|(key, lifetime, mki)| {
            let mut inline = InlineKey::from_key_salt(&key);
            inline.lifetime = lifetime;
            inline.mki = mki;
            KeyParam::Inline(inline)
        });
    let other = ("[a-z_-]{1,8}", "[A-Za-z0-9+/=|:]{1,12}")
        .prop_filter("not inline", |(method, _)| method != "inline")
        .prop_map(|(method, info)| KeyParam::Other {
            method: method.into(),
            info: info.into(),
        });
    let key = prop_oneof![4 => inline, 1 => other];
    (
        0u32..1_000_000_000,
        "[A-Z0-9_]{1,24}",
        proptest::collection::vec(key, 1..4),
        proptest::collection::vec("[!-~]{1,12}", 0..3),
    )
        .prop_map(|(tag, suite, keys, params)| Crypto {
            tag,
            suite: suite.into(),
            keys,
            session_params: params.into_iter().map(Into::into).collect(),
        })
}

fn candidate() -> impl Strategy<Value = Candidate> {
    let kind = prop_oneof![
        Just(CandidateType::Host),
        Just(CandidateType::ServerReflexive),
        Just(CandidateType::PeerReflexive),
        Just(CandidateType::Relayed),
        "x[a-z]{0,5}".prop_map(|t| CandidateType::Other(t.into())),
    ];
    let address = prop_oneof![
        ip().prop_map(|ip| Bytes::from(ip.to_string())),
        "[a-f0-9-]{1,12}\\.local".prop_map(Bytes::from),
    ];
    let extension = (TOKEN, "[!-~]{1,8}")
        .prop_filter("not raddr/rport", |(n, _)| n != "raddr" && n != "rport")
        .prop_map(|(n, v)| (n.into(), Bytes::from(v)));
    (
        (
            "[a-zA-Z0-9+/]{1,32}",
            any::<u16>(),
            "(udp|UDP|tcp)",
            any::<u32>(),
            address.clone(),
            any::<u16>(),
        ),
        (
            kind,
            proptest::option::of(address),
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(extension, 0..3),
        ),
    )
        .prop_map(
            |((foundation, component, transport, priority, address, port), rest)| Candidate {
                foundation: foundation.into(),
                component,
                transport: transport.into(),
                priority,
                address,
                port,
                kind: rest.0,
                related_address: rest.1,
                related_port: rest.2,
                extensions: rest.3,
            },
        )
}

fn typed_round_trip<T: TypedAttribute + PartialEq + std::fmt::Debug>(value: &T) {
    let attribute = value.to_attribute();
    assert_eq!(&*attribute.name, T::NAME);
    assert_eq!(T::from_attribute(&attribute).as_ref(), Ok(value));
}

proptest! {
    #[test]
    fn printed_descriptions_parse_back_unchanged(sdp in description()) {
        let printed = sdp.to_bytes();
        let parsed = SessionDescription::parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&sdp));
        prop_assert_eq!(parsed.map(|p| p.to_bytes()), Ok(printed));
    }

    #[test]
    fn rewritten_ports_and_addresses_round_trip(
        sdp in description(),
        relay in ip(),
        ports in proptest::collection::vec(any::<u16>(), 5),
    ) {
        let mut sdp = sdp;
        sdp.origin.address.set_ip(relay);
        sdp.origin.bump_version();
        if sdp.lines.connection().is_some() {
            sdp.lines.set_connection(Some(Connection::from_ip(relay)));
        }
        for (media, port) in sdp.media.iter_mut().zip(&ports) {
            media.media.port = *port;
            media.media.port_count = None;
            media.lines.set_connection(Some(Connection::from_ip(relay)));
            media.lines.set_rtcp(Some(&Rtcp {
                port: port.wrapping_add(1),
                address: Some(NetAddress::from_ip(relay)),
            }));
        }
        let parsed = SessionDescription::parse(&sdp.to_bytes()).expect("rewritten SDP parses");
        prop_assert_eq!(&parsed, &sdp);
        prop_assert_eq!(parsed.origin.address.ip(), Some(relay));
        for (index, (media, port)) in parsed.media.iter().zip(&ports).enumerate() {
            prop_assert_eq!(media.media.port, *port);
            prop_assert_eq!(parsed.media_connection(index).and_then(|c| c.ip()), Some(relay));
            let rtcp = media.lines.rtcp().expect("a=rtcp").expect("valid");
            prop_assert_eq!(rtcp.port, port.wrapping_add(1));
        }
    }

    #[test]
    fn typed_attributes_round_trip(
        crypto in crypto(),
        candidate in candidate(),
        rtcp in (any::<u16>(), proptest::option::of(net_address()))
            .prop_map(|(port, address)| Rtcp { port, address }),
        rtpmap in (0u8..=127, "[A-Za-z0-9.-]{1,10}", any::<u32>(), proptest::option::of("[0-9]{1,2}"))
            .prop_map(|(payload_type, encoding, clock_rate, params)| Rtpmap {
                payload_type,
                encoding: encoding.into(),
                clock_rate,
                encoding_params: params.map(Into::into),
            }),
        fmtp in (TOKEN, bytes_without_lf(30))
            .prop_map(|(format, params)| Fmtp { format: format.into(), params }),
        fingerprint in ("sha-(1|256|512)", proptest::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(hash, digest)| Fingerprint::from_digest(&hash, &digest)),
        setup in proptest::sample::select(vec![Setup::Active, Setup::Passive, Setup::ActPass, Setup::HoldConn]),
    ) {
        typed_round_trip(&crypto);
        typed_round_trip(&candidate);
        typed_round_trip(&rtcp);
        typed_round_trip(&rtpmap);
        typed_round_trip(&fmtp);
        typed_round_trip(&fingerprint);
        typed_round_trip(&setup);
    }

    /// Line soup made of pieces of real descriptions, some broken: whatever parses
    /// prints to something that parses to the same model.
    #[test]
    fn whatever_parses_round_trips(
        pieces in proptest::collection::vec(proptest::sample::select(vec![
            "v=0", "o=- 1 2 IN IP4 192.0.2.1", "o=- 1 2 IN IP6 ::1", "s=-", "s= ", "t=0 0",
            "c=IN IP4 192.0.2.1", "c=IN IP6 2001:db8::1", "c=IN IP4 224.2.1.1/127/3",
            "c=IN IP4", "m=audio 49170 RTP/AVP 0 8", "m=video 0 RTP/AVP", "m=audio 70000 x",
            "a=rtpmap:0 PCMU/8000", "a=sendrecv", "a=rtcp:9 IN IP4 0.0.0.0", "a=", "a=:",
            "b=AS:64", "", " ", "\r", "garbage", "m=  audio  1  RTP/AVP  0 ", "a=x:\r",
        ]), 0..14),
        line_end in proptest::sample::select(vec!["\r\n", "\n"]),
        mut prefix in Just(vec![b"v=0".to_vec(), b"o=- 1 1 IN IP4 192.0.2.9".to_vec(), b"s=x".to_vec()]),
        with_prefix in any::<bool>(),
    ) {
        if !with_prefix {
            prefix.clear();
        }
        let mut input = Vec::new();
        for piece in prefix.iter().map(|p| &p[..]).chain(pieces.iter().map(|p| p.as_bytes())) {
            input.extend_from_slice(piece);
            input.extend_from_slice(line_end.as_bytes());
        }
        if let Ok(sdp) = SessionDescription::parse(&input) {
            let printed = sdp.to_bytes();
            let again = SessionDescription::parse(&printed);
            prop_assert_eq!(again.as_ref(), Ok(&sdp));
            if line_end == "\r\n" && !pieces.iter().any(|p| p.contains("  ") || p.ends_with(' ')) {
                prop_assert_eq!(&printed[..], &input[..]);
            }
        }
    }
}
