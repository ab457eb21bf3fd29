//! Trunk keep-alive: the SBC probes each target of a trunk with OPTIONS (RFC 3261 §11)
//! from its own address, at once on start and then every `keepalive_secs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{Sbc, SbcConfig};

/// Waits for the next OPTIONS on `peer`, answers it `200 OK`, and returns it.
fn answer_probe(peer: &UdpSocket, sbc: &Sbc, within: Duration) -> (String, SocketAddr) {
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no OPTIONS probe within {within:?}\n{}",
            sbc.log_tail()
        );
        peer.set_read_timeout(Some(left)).unwrap();
        let Ok((len, from)) = peer.recv_from(&mut buffer) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        if !text.starts_with("OPTIONS ") {
            continue;
        }
        let mut ok = String::from("SIP/2.0 200 OK\r\n");
        for line in text.lines() {
            let lower = line.to_ascii_lowercase();
            if ["via:", "from:", "to:", "call-id:", "cseq:"]
                .iter()
                .any(|h| lower.starts_with(h))
            {
                ok.push_str(line);
                if lower.starts_with("to:") {
                    ok.push_str(";tag=peer");
                }
                ok.push_str("\r\n");
            }
        }
        ok.push_str("Content-Length: 0\r\n\r\n");
        peer.send_to(ok.as_bytes(), from).unwrap();
        return (text, from);
    }
}

#[test]
fn trunk_targets_are_probed_with_options_from_the_sbc() {
    let config = SbcConfig::new();
    let peer = UdpSocket::bind((config.net.host(2), 0)).unwrap();
    let peer_address = peer.local_addr().unwrap();
    // Keep-alive every 5 s (the test config disables it by default).
    let mut config = config.with_peer(peer_address);
    config.keepalive_secs = 5;
    let mut sbc = Sbc::start(config);

    let (probe, from) = answer_probe(&peer, &sbc, Duration::from_secs(10));
    assert_eq!(
        from,
        sbc.config.sip_address(),
        "probes come from the SBC's listener"
    );
    assert!(
        probe.starts_with(&format!("OPTIONS sip:{peer_address} SIP/2.0\r\n")),
        "{probe}"
    );
    assert!(
        probe.contains(&format!("SIP/2.0/UDP {}", sbc.config.sip_address())),
        "{probe}"
    );
    assert!(probe.contains("CSeq: 1 OPTIONS"), "{probe}");

    // And again after the interval, as a new probe (not a retransmission of the first).
    let first = Instant::now();
    let (second, _) = answer_probe(&peer, &sbc, Duration::from_secs(15));
    assert!(
        first.elapsed() >= Duration::from_secs(3),
        "probed again too soon:\n{probe}\n{second}\n{}",
        sbc.log_tail()
    );
    sbc.assert_alive("keep-alive probes");
}
