//! Flood test: garbage, truncated and oversized input over UDP and TCP, a connection flood,
//! slow-drip clients and an endless header, all from "attacker" loopback addresses and all
//! bounded in count and time. Afterwards the SBC must still answer a valid OPTIONS from a
//! legitimate address with 200, and its resident memory must not have grown by more than
//! [`MAX_RSS_GROWTH_KIB`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::sip::{self, SipStream};
use common::{Sbc, SbcConfig};

const MAX_RSS_GROWTH_KIB: u64 = 100 * 1024;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
const LIMITS: &str = "max_message_size = 65535\n\
                      max_connections = 256\n\
                      max_connections_per_ip = 32\n\
                      idle_timeout_secs = 5\n\
                      tls_handshake_timeout_ms = 2000\n";

/// A small deterministic PRNG (xorshift64*): no dependency, reproducible floods.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap()).unwrap()
    }

    fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

/// Valid-looking requests broken in the ways parsers get wrong.
fn malformed_requests(target: SocketAddr, local: SocketAddr) -> Vec<String> {
    let valid = sip::request("OPTIONS", target, "UDP", local).text;
    let head = valid.trim_end_matches("\r\n");
    let many_headers: String = (0..2_000)
        .map(|index| format!("X-Filler-{index}: y\r\n"))
        .collect();
    vec![
        valid.replace("Content-Length: 0", "Content-Length: 99999999"),
        valid.replace("Content-Length: 0", "Content-Length: -1"),
        valid.replace("Content-Length: 0", "Content-Length: 18446744073709551616"),
        valid.replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS"),
        valid.replace("CSeq: 1 OPTIONS", "CSeq: 4294967296 OPTIONS"),
        valid.replace("SIP/2.0\r\n", "SIP/9.9\r\n"),
        valid.replace("Via: ", "Via:"),
        valid
            .lines()
            .filter(|line| !line.starts_with("Via"))
            .collect::<Vec<_>>()
            .join("\r\n"),
        valid
            .lines()
            .filter(|line| !line.starts_with("Call-ID"))
            .collect::<Vec<_>>()
            .join("\r\n"),
        valid.replace("sip:ping@", "sip:%%%%@"),
        valid.replace("sip:ping@", "sip:[::1@"),
        valid.replace(";branch=", &format!(";branch={}", "z".repeat(10_000))),
        valid.replace("\r\n", "\n"),
        valid.replace("\r\n", "\r"),
        valid.replace(": ", ":\r\n "),
        format!("{head}\r\n{many_headers}\r\n"),
        format!("{head}\r\nContent-Type: multipart/mixed;boundary=\"\r\n\r\n"),
        "SIP/2.0 200 OK\r\n\r\n".to_owned(),
        "SIP/2.0 999999 Huge\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n".to_owned(),
        "\r\n\r\n\r\n\r\n".to_owned(),
        "INVITE\r\n\r\n".to_owned(),
        " \t \r\n".to_owned(),
        format!("{} sip:a@b SIP/2.0\r\n\r\n", "A".repeat(5_000)),
    ]
}

fn flood_udp(attacker: IpAddr, target: SocketAddr, noise: &mut Noise) -> u64 {
    let socket = sip::udp_socket(attacker);
    let local = socket.local_addr().unwrap();
    let mut sent = 0_u64;
    let mut send = |bytes: &[u8]| {
        // Loopback may refuse (ICMP from an earlier datagram) or drop: both are fine.
        if socket.send_to(bytes, target).is_ok() {
            sent += 1;
        }
    };
    for _ in 0..3_000 {
        let length = 1 + noise.below(1_500);
        send(&noise.bytes(length));
    }
    let valid = sip::request("OPTIONS", target, "UDP", local).text;
    for _ in 0..1_000 {
        let cut = noise.below(valid.len());
        send(&valid.as_bytes()[..cut]);
    }
    for message in malformed_requests(target, local).iter().cycle().take(1_000) {
        send(message.as_bytes());
    }
    for index in 0..100 {
        let oversized = if index % 2 == 0 {
            vec![b'A'; 65_000]
        } else {
            let mut message = valid.replace("\r\n\r\n", "\r\nX-Pad: ").into_bytes();
            message.resize(65_000, b'p');
            message
        };
        send(&oversized);
    }
    sent
}

fn connect_from(local_ip: IpAddr, target: SocketAddr, timeout: Duration) -> Option<TcpStream> {
    SipStream::connect(local_ip, target, timeout)
        .ok()
        .map(|stream| stream.stream)
}

fn flood_tcp_garbage(attacker: IpAddr, target: SocketAddr, noise: &mut Noise) {
    let local = SocketAddr::new(attacker, 5060);
    let malformed = malformed_requests(target, local);
    for index in 0..70 {
        let Some(mut stream) = connect_from(attacker, target, Duration::from_secs(2)) else {
            continue;
        };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let payload = match index % 3 {
            0 => noise.bytes(64 * 1024),
            1 => {
                let valid = sip::request("OPTIONS", target, "TCP", local).text;
                valid.as_bytes()[..noise.below(valid.len())].to_vec()
            }
            _ => malformed[index % malformed.len()].clone().into_bytes(),
        };
        let _ = stream.write_all(&payload);
        // Closed by us, half of them abruptly (RST via linger 0 is not needed: drop closes).
    }
}

/// Open up to `count` connections within `budget`; returns those still held.
fn connection_flood(
    attacker: IpAddr,
    target: SocketAddr,
    count: usize,
    budget: Duration,
) -> Vec<TcpStream> {
    let deadline = Instant::now() + budget;
    let mut held = Vec::new();
    for _ in 0..count {
        if Instant::now() > deadline {
            break;
        }
        if let Some(stream) = connect_from(attacker, target, Duration::from_millis(200)) {
            held.push(stream);
        }
    }
    held
}

/// Clients that send a valid OPTIONS one byte every 100 ms for `duration`.
fn slow_drip(
    attacker: IpAddr,
    target: SocketAddr,
    clients: usize,
    duration: Duration,
) -> Vec<thread::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            thread::spawn(move || {
                let Some(mut stream) = connect_from(attacker, target, Duration::from_secs(2))
                else {
                    return;
                };
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let request =
                    sip::request("OPTIONS", target, "TCP", SocketAddr::new(attacker, 5060)).text;
                let deadline = Instant::now() + duration;
                for byte in request.as_bytes() {
                    if Instant::now() > deadline || stream.write_all(&[*byte]).is_err() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect()
}

/// Whether an I/O error means the peer closed or reset the connection (as opposed to a
/// timeout, which only means it is not reading).
fn closed_by_peer(error: &std::io::Error) -> bool {
    !matches!(
        error.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Send an endless header (no blank line) up to 1 MiB; true when the SBC closes the
/// connection (EOF or reset) within the idle timeout plus a margin. An SBC that merely
/// stops reading does not count as having cut it off.
fn endless_header_is_cut_off(attacker: IpAddr, target: SocketAddr) -> bool {
    let Some(mut stream) = connect_from(attacker, target, Duration::from_secs(2)) else {
        return true;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let chunk = format!(
        "OPTIONS sip:a@b SIP/2.0\r\nX-Endless: {}",
        "e".repeat(16 * 1024)
    );
    let mut written = 0;
    while written < 1024 * 1024 {
        match stream.write(chunk.as_bytes()) {
            Ok(0) => return true,
            Ok(length) => written += length,
            Err(error) if closed_by_peer(&error) => return true,
            Err(_) => break, // not reading: wait for the close below
        }
    }
    // idle_timeout_secs = 5 in this test's config, plus a margin.
    let deadline = Instant::now() + Duration::from_secs(8);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(250)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(250)));
    let mut buffer = [0_u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {} // e.g. a 513 before the close
            Err(error) if closed_by_peer(&error) => return true,
            Err(_) => {
                // Nothing to read; a write fails once the peer has reset the connection.
                if stream
                    .write(b"more")
                    .is_err_and(|error| closed_by_peer(&error))
                {
                    return true;
                }
            }
        }
    }
    false
}

fn assert_options_answered(sbc: &mut Sbc, legit: IpAddr, phase: &str) {
    sbc.assert_alive(phase);
    let target = sbc.config.sip_address();
    let socket = sip::udp_socket(legit);
    let request = sip::request("OPTIONS", target, "UDP", socket.local_addr().unwrap());
    let responses = sip::udp_transaction(&socket, target, &request, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("UDP OPTIONS after {phase}: {error}\n{}", sbc.log_tail()));
    assert_eq!(
        sip::status_code(sip::final_response(&responses)),
        Some(200),
        "after {phase}"
    );

    let mut stream = SipStream::connect(legit, target, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("TCP connect after {phase}: {error}\n{}", sbc.log_tail()));
    let request = sip::request("OPTIONS", target, "TCP", stream.local_addr());
    let responses = stream
        .transaction(&request, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("TCP OPTIONS after {phase}: {error}\n{}", sbc.log_tail()));
    assert_eq!(
        sip::status_code(sip::final_response(&responses)),
        Some(200),
        "after {phase}"
    );
}

/// Samples VmRSS every 50 ms until stopped; returns the peak in KiB.
fn sample_peak_rss(
    pid: u32,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let rss = status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmRSS:"))
                    .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0);
                peak.fetch_max(rss, Ordering::Relaxed);
            }
            thread::sleep(Duration::from_millis(50));
        }
    })
}

#[test]
fn flood_leaves_the_sbc_answering_with_bounded_memory() {
    let mut sbc = Sbc::start(SbcConfig::new().with_limits(LIMITS));
    let net = sbc.config.net;
    let (legit, attacker, dripper, endless) =
        (net.host(2), net.host(66), net.host(67), net.host(68));
    let target = sbc.config.sip_address();
    let started = Instant::now();

    // The SBC must work before the flood, or the rest means nothing.
    assert_options_answered(&mut sbc, legit, "start-up (before any flood)");
    let baseline = sbc.vm_rss_kib();
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = sample_peak_rss(sbc.pid(), stop_sampling.clone(), peak.clone());
    let mut noise = Noise(0x5BC0_F100_D5EE_D001);

    let sent = flood_udp(attacker, target, &mut noise);
    assert!(sent > 0, "could not send a single UDP datagram");
    assert_options_answered(&mut sbc, legit, "the UDP flood");

    flood_tcp_garbage(attacker, target, &mut noise);
    assert_options_answered(&mut sbc, legit, "TCP garbage");

    let held = connection_flood(attacker, target, 300, Duration::from_secs(8));
    let drips = slow_drip(dripper, target, 8, Duration::from_secs(3));
    assert_options_answered(
        &mut sbc,
        legit,
        "a connection flood and during slow-drip clients",
    );
    for drip in drips {
        let _ = drip.join();
    }
    drop(held);

    let cut_off = endless_header_is_cut_off(endless, target);
    assert!(
        cut_off,
        "the SBC kept a TCP connection open for 8 s after it sent 1 MiB without a complete \
         message (max_message_size = 65535, idle_timeout_secs = 5)\n{}",
        sbc.log_tail()
    );
    assert_options_answered(&mut sbc, legit, "the whole flood");

    stop_sampling.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak = peak.load(Ordering::Relaxed).max(sbc.vm_rss_kib());
    assert!(
        peak.saturating_sub(baseline) < MAX_RSS_GROWTH_KIB,
        "VmRSS grew from {baseline} KiB to {peak} KiB during the flood (bound: +{MAX_RSS_GROWTH_KIB} KiB)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the flood test took {:?}",
        started.elapsed()
    );
    eprintln!(
        "flood: {sent} datagrams; VmRSS {baseline} KiB → peak {peak} KiB; {:?}",
        started.elapsed()
    );
}
