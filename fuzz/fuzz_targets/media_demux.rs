//! The relay's packet path on arbitrary datagrams: demultiplexing by first octet (RFC 7983:
//! STUN, DTLS, RTP/RTCP), ICE-lite STUN checks, SRTP unprotect on an SDES leg, SDES hiding
//! in RTCP, and protection toward the other leg. Each chunk of the input is one datagram,
//! from either leg, the first byte choosing leg, port and source. Never a panic; nothing
//! forged passes from the SRTP leg.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media_relay::srtp::{MasterKey, Suite};
use media_relay::{
    IceCredentials, Leg, LegSecurity, Port, Protection, RelaySession, RemoteMedia, SdesKeys,
    Verdict,
};

fn key(byte: u8) -> MasterKey {
    MasterKey::new(&[byte; 16], &[byte; 14]).expect("valid key")
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut session = RelaySession::new(now, 1);
    let a: SocketAddr = "192.0.2.10:4000".parse().expect("address");
    let b: SocketAddr = "198.51.100.20:5000".parse().expect("address");
    let stranger: SocketAddr = "203.0.113.9:6000".parse().expect("address");
    for (leg, address) in [(Leg::A, a), (Leg::B, b)] {
        let remote = RemoteMedia {
            rtp: Some(address),
            rtcp_mux: true,
            ..RemoteMedia::default()
        };
        session.update(0, leg, remote);
    }
    let sdes = LegSecurity {
        protection: Protection::Sdes(SdesKeys {
            suite: Suite::AesCm128HmacSha1_80,
            send: vec![key(1)],
            receive: vec![key(2)],
            unencrypted_srtcp: false,
        }),
        ice: Some(IceCredentials {
            local_ufrag: "ours".into(),
            local_pwd: "relay-password-24-chars!".into(),
            remote_ufrag: "theirs".into(),
        }),
    };
    session.protect(0, Leg::A, &sdes).expect("valid keys");

    let mut rest = data;
    let mut elapsed = 0;
    while let Some((&header, tail)) = rest.split_first() {
        let len = usize::from(header & 0x3f).min(tail.len());
        let (datagram, after) = tail.split_at(len.max(tail.len().min(64 * usize::from(header >> 7))));
        rest = after;
        let (leg, source) = match header & 0xc0 {
            0x00 => (Leg::A, a),
            0x40 => (Leg::B, b),
            _ => (Leg::A, stranger),
        };
        let port = if header & 0x20 != 0 { Port::Rtcp } else { Port::Rtp };
        elapsed += 20;
        let verdict = session.handle_datagram(
            now + Duration::from_millis(elapsed),
            0,
            leg,
            port,
            source,
            datagram,
        );
        if leg == Leg::A && matches!(verdict, Verdict::Forward { .. }) {
            // Only genuine SRTP (keyed with key 2) passes from leg A: random bytes never do.
            panic!("a datagram from the SRTP leg passed without authenticating");
        }
    }
    let stats = session.stats();
    assert_eq!(stats.streams[0].a.security.srtp_received, 0);
});
