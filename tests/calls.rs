//! Calls end to end through the real `sbc` binary, with SIPp on both sides and the media
//! checked packet by packet.
//!
//! Three loopback hosts of the test's own: the SBC on `.1`, the callee (SIPp UAS, the
//! trunk the route sends calls to) on `.2`, the caller (SIPp UAC) on `.3`. The side that
//! receives media advertises the test's own RTP sink in its SDP, so the test sees exactly
//! what the relay sent: every packet must come from the SBC's media address, and every
//! packet of the pcap SIPp played must arrive once per call, unchanged (SSRC, sequence
//! number, timestamp and payload pass through the relay untouched). SIPp's message traces
//! show that neither side saw the other's address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Sbc, SbcConfig, free_ports, require_tool};

/// One RTP packet as the tests compare them: who sent it and what it carried.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Rtp {
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    payload: Vec<u8>,
}

impl Rtp {
    fn parse(packet: &[u8]) -> Option<Rtp> {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return None;
        }
        let csrc = usize::from(packet[0] & 0x0f) * 4;
        let start = 12 + csrc;
        Some(Rtp {
            payload_type: packet[1] & 0x7f,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            payload: packet.get(start..)?.to_vec(),
        })
    }
}

/// The RTP packets of a SIPp pcap (Ethernet, IPv4, UDP), in file order.
fn pcap_rtp(path: &Path) -> Vec<Rtp> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian pcap expected"
    );
    let mut packets = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let captured = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..at + 16 + captured];
        at += 16 + captured;
        // Ethernet (14) + IPv4 (IHL) + UDP (8).
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        if let Some(rtp) = Rtp::parse(&frame[14 + ihl + 8..]) {
            packets.push(rtp);
        }
    }
    packets
}

fn sipp_dir() -> PathBuf {
    let root = std::env::var("SBC_TESTDATA").map_or_else(
        |_| common::repo_root().join("../shared/testdata"),
        PathBuf::from,
    );
    root.join("sipp")
}

/// A UDP socket that records every packet it receives until stopped.
struct RtpSink {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Vec<(SocketAddr, Rtp)>>,
}

impl RtpSink {
    fn start(ip: IpAddr) -> RtpSink {
        let socket = UdpSocket::bind((ip, 0)).unwrap();
        let raw = socket2::SockRef::from(&socket);
        raw.set_recv_buffer_size(8 << 20).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let address = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut received = Vec::new();
            let mut buffer = [0u8; 2048];
            while !stopping.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buffer)
                    && let Some(rtp) = Rtp::parse(&buffer[..len])
                {
                    received.push((from, rtp));
                }
            }
            received
        });
        RtpSink {
            address,
            stop,
            thread,
        }
    }

    fn finish(self) -> Vec<(SocketAddr, Rtp)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Checks that `received` is `calls` copies of `sent`, all from the SBC's media address.
fn assert_relayed(received: &[(SocketAddr, Rtp)], sent: &[Rtp], calls: usize, sbc: IpAddr) {
    let strangers: Vec<_> = received
        .iter()
        .filter(|(from, _)| from.ip() != sbc)
        .collect();
    assert!(
        strangers.is_empty(),
        "media from addresses other than the SBC's {sbc}: {:?}",
        &strangers[..strangers.len().min(3)]
    );
    let mut expected: HashMap<&Rtp, usize> = HashMap::new();
    for packet in sent {
        *expected.entry(packet).or_default() += calls;
    }
    let mut got: HashMap<&Rtp, usize> = HashMap::new();
    for (_, packet) in received {
        *got.entry(packet).or_default() += 1;
    }
    let unexpected = got.keys().filter(|p| !expected.contains_key(*p)).count();
    assert_eq!(
        unexpected, 0,
        "packets that SIPp never sent arrived (altered by the relay?)"
    );
    let missing: usize = expected
        .iter()
        .map(|(packet, want)| want.saturating_sub(got.get(packet).copied().unwrap_or(0)))
        .sum();
    assert_eq!(
        (received.len(), missing),
        (sent.len() * calls, 0),
        "every packet of every call arrives once"
    );
}

fn sipp(dir: &Path, args: &[String]) -> Command {
    let mut command = Command::new(require_tool("sipp"));
    command
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Runs a SIPp UAC to completion (bounded by `-timeout`) and returns whether every call
/// succeeded, with its stderr for the failure message.
fn run_uac(mut command: Command) -> (bool, String) {
    let output = command.output().expect("sipp runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn contains(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle))
}

struct CallSetup {
    sbc: Sbc,
    callee: IpAddr,
    caller: IpAddr,
    callee_port: u16,
    caller_port: u16,
    traces: tempfile::TempDir,
}

fn setup() -> CallSetup {
    let config = SbcConfig::new();
    let callee = config.net.host(2);
    let caller = config.net.host(3);
    let [callee_port] = free_ports(callee);
    let [caller_port] = free_ports(caller);
    let sbc = Sbc::start(config.with_peer(SocketAddr::new(callee, callee_port)));
    CallSetup {
        sbc,
        callee,
        caller,
        callee_port,
        caller_port,
        traces: tempfile::tempdir().unwrap(),
    }
}

/// SIPp `uac_pcap` (G.711 A-law then an RFC 2833 event) → SBC → SIPp UAS whose SDP names
/// the test's sink: 200 calls, none failed, every packet relayed unchanged from the SBC's
/// address, and no caller address in anything the callee received (nor the reverse).
#[test]
fn caller_media_crosses_the_sbc_in_200_calls() {
    const CALLS: usize = 200;
    let mut setup = setup();
    let sink = RtpSink::start(setup.callee);
    let uas_trace = setup.traces.path().join("uas.log");
    let mut uas = sipp(
        &sipp_dir(),
        &[
            "-sf".into(),
            common::repo_root()
                .join("tests/scenarios/uas_sink.xml")
                .display()
                .to_string(),
            "-i".into(),
            setup.callee.to_string(),
            "-p".into(),
            setup.callee_port.to_string(),
            "-mi".into(),
            setup.callee.to_string(),
            "-key".into(),
            "sink_port".into(),
            sink.address.port().to_string(),
            "-m".into(),
            CALLS.to_string(),
            "-timeout".into(),
            "90s".into(),
            "-trace_msg".into(),
            "-message_file".into(),
            uas_trace.display().to_string(),
        ],
    )
    .spawn()
    .expect("sipp uas starts");
    thread::sleep(Duration::from_millis(300));

    let uac_trace = setup.traces.path().join("uac.log");
    let (ok, stderr) = run_uac(sipp(
        &sipp_dir(),
        &[
            "-sf".into(),
            "scenarios/uac_pcap.xml".into(),
            setup.sbc.config.sip_address().to_string(),
            "-s".into(),
            "echo".into(),
            "-i".into(),
            setup.caller.to_string(),
            "-p".into(),
            setup.caller_port.to_string(),
            "-mi".into(),
            setup.caller.to_string(),
            "-m".into(),
            CALLS.to_string(),
            "-r".into(),
            "50".into(),
            "-l".into(),
            CALLS.to_string(),
            "-timeout".into(),
            "90s".into(),
            "-timeout_error".into(),
            "-trace_msg".into(),
            "-message_file".into(),
            uac_trace.display().to_string(),
        ],
    ));
    thread::sleep(Duration::from_millis(500));
    let received = sink.finish();
    let _ = uas.kill();
    let _ = uas.wait();
    setup.sbc.assert_alive("200 calls with media");
    assert!(
        ok,
        "SIPp UAC reports failed calls:\n{stderr}\n{}",
        setup.sbc.log_tail()
    );

    let mut sent = pcap_rtp(&sipp_dir().join("pcap/g711a.pcap"));
    sent.extend(pcap_rtp(&sipp_dir().join("pcap/dtmf_2833_1.pcap")));
    assert_eq!(sent.len(), 246);
    assert_relayed(&received, &sent, CALLS, setup.sbc.config.ip);

    assert!(
        contains(&uas_trace, "INVITE sip:"),
        "the UAS trace holds the calls"
    );
    assert!(
        !contains(&uas_trace, &setup.caller.to_string()),
        "the callee saw the caller's address"
    );
    assert!(
        !contains(&uac_trace, &setup.callee.to_string()),
        "the caller saw the callee's address"
    );
}

/// The callee plays media back (SIPp UAS with `play_pcap_audio`) to a caller whose SDP
/// names the test's sink: 50 calls, every packet relayed unchanged from the SBC's address.
#[test]
fn callee_media_crosses_the_sbc_back_to_the_caller() {
    const CALLS: usize = 50;
    let mut setup = setup();
    let sink = RtpSink::start(setup.caller);
    let mut uas = sipp(
        &sipp_dir(),
        &[
            "-sf".into(),
            common::repo_root()
                .join("tests/scenarios/uas_play.xml")
                .display()
                .to_string(),
            "-i".into(),
            setup.callee.to_string(),
            "-p".into(),
            setup.callee_port.to_string(),
            "-mi".into(),
            setup.callee.to_string(),
            "-m".into(),
            CALLS.to_string(),
            "-timeout".into(),
            "90s".into(),
        ],
    )
    .spawn()
    .expect("sipp uas starts");
    thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let (ok, stderr) = run_uac(sipp(
        &common::repo_root().join("tests/scenarios"),
        &[
            "-sf".into(),
            "uac_sink.xml".into(),
            setup.sbc.config.sip_address().to_string(),
            "-s".into(),
            "echo".into(),
            "-i".into(),
            setup.caller.to_string(),
            "-p".into(),
            setup.caller_port.to_string(),
            "-mi".into(),
            setup.caller.to_string(),
            "-key".into(),
            "sink_port".into(),
            sink.address.port().to_string(),
            "-m".into(),
            CALLS.to_string(),
            "-r".into(),
            "25".into(),
            "-l".into(),
            CALLS.to_string(),
            "-timeout".into(),
            "90s".into(),
            "-timeout_error".into(),
        ],
    ));
    thread::sleep(Duration::from_millis(500));
    let received = sink.finish();
    let _ = uas.kill();
    let _ = uas.wait();
    setup.sbc.assert_alive("calls with media back");
    assert!(
        ok,
        "SIPp UAC reports failed calls after {:?}:\n{stderr}\n{}",
        started.elapsed(),
        setup.sbc.log_tail()
    );
    let sent = pcap_rtp(&sipp_dir().join("pcap/g711a.pcap"));
    assert_eq!(sent.len(), 236);
    assert_relayed(&received, &sent, CALLS, setup.sbc.config.ip);
}
