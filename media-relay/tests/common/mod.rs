//! Helpers shared by the loopback tests: a relay on a small port range of its own, peers on
//! distinct 127.0.0.x "hosts", and RTP/RTCP packet builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use media_relay::{Relay, RelayConfig, RemoteMedia};

/// A relay with one worker on 127.0.0.1, ports `[port_min, port_min + 2 * pairs)`. Each test
/// uses its own range (below the ephemeral range) so tests can run in parallel.
pub fn relay(port_min: u16, pairs: u16) -> Relay {
    relay_with(RelayConfig {
        port_min,
        port_max: port_min + 2 * pairs - 1,
        workers: 1,
        ..RelayConfig::default()
    })
}

pub fn relay_with(config: RelayConfig) -> Relay {
    Relay::start(config).expect("relay starts")
}

pub fn host(last_octet: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet))
}

/// A peer socket on 127.0.0.`last_octet`, any port, with a short read timeout.
pub fn peer(last_octet: u8) -> UdpSocket {
    let socket = UdpSocket::bind(SocketAddr::new(host(last_octet), 0)).expect("bind peer");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    socket
}

/// Two peer sockets on consecutive ports (RTP even, RTCP odd) on 127.0.0.`last_octet`.
pub fn peer_pair(last_octet: u8, search_from: u16) -> (UdpSocket, UdpSocket) {
    let mut port = search_from;
    loop {
        if let (Ok(rtp), Ok(rtcp)) = (
            UdpSocket::bind(SocketAddr::new(host(last_octet), port)),
            UdpSocket::bind(SocketAddr::new(host(last_octet), port + 1)),
        ) {
            for s in [&rtp, &rtcp] {
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
            }
            return (rtp, rtcp);
        }
        port += 2;
    }
}

pub fn sdp(socket: &UdpSocket) -> RemoteMedia {
    RemoteMedia {
        rtp: Some(socket.local_addr().unwrap()),
        ..RemoteMedia::default()
    }
}

/// An RTP packet: PT, sequence, timestamp, SSRC, then `payload_len` bytes of a pattern.
pub fn rtp(
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload_len: usize,
) -> Vec<u8> {
    let mut packet = vec![0x80, payload_type];
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend((0..payload_len).map(|i| (i as u8) ^ (sequence as u8)));
    packet
}

/// A minimal RTCP receiver report from `ssrc`.
pub fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet
}

/// Receives one datagram (or None after the read timeout).
pub fn receive(socket: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 2048];
    let (len, from) = socket.recv_from(&mut buf).ok()?;
    Some((buf[..len].to_vec(), from))
}

/// Asserts that nothing arrives within `wait`.
pub fn assert_silent(socket: &UdpSocket, wait: Duration) {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 2048];
    let got = socket.recv_from(&mut buf);
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(
        got.is_err(),
        "unexpected datagram from {:?}",
        got.map(|(_, from)| from)
    );
}

/// Polls `check` until it is true or `limit` passes.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    check()
}
