//! The relay against libsrtp, an SRTP implementation nobody here wrote (Debian
//! `libsrtp2-dev`): a small C peer built on it (`tests/libsrtp/peer.c`, compiled by this
//! test with `cc`) sends SRTP and SRTCP through the relay to a plain-RTP receiver, whose
//! packets must arrive as they were before libsrtp protected them; then plain RTP and RTCP
//! sent the other way must arrive at the peer and decrypt with libsrtp — for every suite
//! but AES-192: libsrtp before 2.8 derives AES-192 keys in AES-256 mode, against RFC 6188
//! (cisco/libsrtp#763, fixed by #765 in 2025); Debian's 2.5.0 still has the bug, so no
//! RFC-compliant implementation interoperates with it there. The RFC 6188 behaviour is
//! checked against libsrtp's own post-fix vector in `srtp_vectors.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use media_relay::srtp::Suite;
use media_relay::{Leg, LegSecurity, Protection, RemoteMedia, SdesKeys};

const PACKETS: u16 = 20;

/// Compiles the peer once per test run.
fn peer_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/libsrtp/peer.c");
        let binary = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libsrtp_peer");
        let output = Command::new("cc")
            .args(["-O1", "-Wall", "-o"])
            .arg(&binary)
            .arg(&source)
            .arg("-lsrtp2")
            .output()
            .expect("cc runs (tests/install-deps.sh installs gcc and libsrtp2-dev)");
        assert!(
            output.status.success(),
            "compiling the libsrtp peer failed (is libsrtp2-dev installed? run \
             tests/install-deps.sh):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        binary
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn libsrtp_and_the_relay_understand_each_other_in_every_suite() {
    let binary = peer_binary();
    let suites = Suite::ALL
        .into_iter()
        .filter(|s| !matches!(s, Suite::AesCm192HmacSha1_80 | Suite::AesCm192HmacSha1_32));
    for (n, suite) in suites.enumerate() {
        let relay = relay(23500 + 20 * n as u16, 4);
        let callee = peer(3);
        let allocation = relay.allocate(1).unwrap();
        let (session, stream) = (allocation.session, allocation.streams[0]);
        // The libsrtp peer on 127.0.0.4 (its port is its own business: the relay latches
        // on the first authenticated packet from that host).
        let peer_sdp = RemoteMedia {
            rtp: Some("127.0.0.4:9".parse().unwrap()),
            rtcp_mux: true,
            ..RemoteMedia::default()
        };
        relay.update(session, 0, Leg::A, peer_sdp).unwrap();
        let callee_sdp = RemoteMedia {
            rtcp_mux: true,
            ..sdp(&callee)
        };
        relay.update(session, 0, Leg::B, callee_sdp).unwrap();
        let peer_key = relay.new_sdes_key(suite).unwrap();
        let relay_key = relay.new_sdes_key(suite).unwrap();
        relay
            .protect(
                session,
                0,
                Leg::A,
                LegSecurity {
                    protection: Protection::Sdes(SdesKeys {
                        suite,
                        send: vec![relay_key.clone()],
                        receive: vec![peer_key.clone()],
                        unencrypted_srtcp: false,
                    }),
                    ice: None,
                },
            )
            .unwrap();

        let mut child = Command::new(binary)
            .arg(suite.sdes_name())
            .arg(hex(&peer_key.concatenated()))
            .arg(hex(&relay_key.concatenated()))
            .arg(stream.a.rtp.ip().to_string())
            .arg(stream.a.rtp.port().to_string())
            .arg(PACKETS.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the libsrtp peer starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let bound = lines.next().unwrap().unwrap();
        assert!(bound.starts_with("bound "), "{suite}: {bound}");

        // libsrtp → relay → plain: every packet as it was before protection.
        let mut rtp_seen = 0;
        let mut rtcp_seen = 0;
        while rtp_seen < PACKETS || rtcp_seen == 0 {
            let Some((packet, from)) = receive(&callee) else {
                let a = relay.session_stats(session).unwrap().streams[0].a;
                panic!(
                    "{suite}: {rtp_seen} RTP / {rtcp_seen} RTCP arrived from the libsrtp peer \
                     (drops {:?}, SRTP {:?})",
                    a.drops, a.srtp_drops
                );
            };
            assert_eq!(from, stream.b.rtp);
            if (192..=223).contains(&packet[1]) {
                assert_eq!(packet, [0x80, 201, 0, 1, 0x11, 0x22, 0x33, 0x44], "{suite}");
                rtcp_seen += 1;
                continue;
            }
            let seq = 1000 + rtp_seen;
            assert_eq!(packet.len(), 172, "{suite}");
            assert_eq!(u16::from_be_bytes([packet[2], packet[3]]), seq, "{suite}");
            assert_eq!(&packet[8..12], &[0x11, 0x22, 0x33, 0x44]);
            let expected: Vec<u8> = (0..160).map(|i| (seq as usize + i) as u8).collect();
            assert_eq!(&packet[12..], &expected[..], "{suite}: payload of {seq}");
            rtp_seen += 1;
        }

        // plain → relay → libsrtp: decrypts there.
        for n in 0..PACKETS {
            let packet = rtp(0, 5000 + n, 160 * u32::from(n), 0x5566_7788, 160);
            callee.send_to(&packet, stream.b.rtp).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        callee.send_to(&rtcp_rr(0x5566_7788), stream.b.rtp).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{suite}: the peer did not finish"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let output: Vec<String> = lines.map_while(Result::ok).collect();
        assert!(status.success(), "{suite}: {status}: {output:?}");
        assert!(
            !output.iter().any(|l| l.starts_with("fail")),
            "{suite}: libsrtp refused what the relay sent: {output:?}"
        );
        let decrypted: Vec<&String> = output.iter().filter(|l| l.starts_with("rtp ")).collect();
        assert_eq!(decrypted.len(), usize::from(PACKETS), "{suite}: {output:?}");
        for (n, line) in decrypted.iter().enumerate() {
            let seq = 5000 + n as u16;
            let payload = hex(&rtp(0, seq, 0, 0, 160)[12..]);
            assert_eq!(**line, format!("rtp {seq} {payload}"), "{suite}");
        }
        assert!(
            output.contains(&"rtcp 55667788".to_string()),
            "{suite}: {output:?}"
        );

        let a = relay.session_stats(session).unwrap().streams[0].a;
        assert_eq!(a.security.srtp_received, u64::from(PACKETS) + 1, "{suite}");
        assert_eq!(a.security.srtp_sent, u64::from(PACKETS) + 1, "{suite}");
        assert_eq!(a.drops.total(), 0, "{suite}: {:?}", a.drops);
    }
}
