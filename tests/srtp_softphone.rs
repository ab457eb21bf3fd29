//! A real softphone with encrypted media calls a plain-RTP peer through the `sbc` binary:
//! baresip with `mediaenc=srtp-mand` (SDES, `RTP/SAVP` with `a=crypto`), `mediaenc=srtp`
//! (best-effort SDES, `RTP/AVP` with `a=crypto`) and `mediaenc=dtls_srtp` (DTLS-SRTP,
//! `UDP/TLS/RTP/SAVP`) dials a SIPp UAS that speaks plain
//! `RTP/AVP` and echoes every RTP packet back (`-rtp_echo`). The relay decrypts the phone's
//! SRTP toward SIPp and encrypts the echo toward the phone, so the phone hears its own
//! 1 kHz tone only if its audio went through the relay to SIPp and back, converted both
//! ways. SIPp's SDP must carry no key and no fingerprint (nothing crosses the SBC).
//!
//! SDES keys travel in SDP, so the SBC writes them only over TLS unless the policy allows
//! otherwise; baresip signals over UDP here, so the test's `[media.srtp]` allows it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::baresip::{self, Role, Softphone, ToneReport};
use common::{Sbc, SbcConfig, free_ports, require_tool};

const TONE_HZ: u32 = 1_000;
const TALK: Duration = Duration::from_secs(4);
const MIN_TONE_SECONDS: f64 = 2.0;

fn echo_call(mediaenc: &str) {
    let tones = tempfile::tempdir().unwrap();
    let tone = tones.path().join("caller-1000hz.wav");
    baresip::write_tone(&tone, TONE_HZ, 20);

    let config = SbcConfig::new();
    let callee_ip = config.net.host(2);
    let caller_ip = config.net.host(3);
    let [callee_port, media_port] = free_ports(callee_ip);
    let [caller_port] = free_ports(caller_ip);
    let callee_sip = SocketAddr::new(callee_ip, callee_port);
    let mut sbc = Sbc::start(
        config
            .with_peer(callee_sip)
            .with_extra("[media.srtp]\nsdes_over_insecure_signalling = true\n"),
    );

    let traces = tempfile::tempdir().unwrap();
    let uas_trace = traces.path().join("uas.log");
    let mut uas = Command::new(require_tool("sipp"))
        .arg("-sf")
        .arg(common::repo_root().join("tests/scenarios/uas_echo.xml"))
        .args(["-i", &callee_ip.to_string(), "-p", &callee_port.to_string()])
        .args([
            "-mi",
            &callee_ip.to_string(),
            "-mp",
            &media_port.to_string(),
        ])
        .args(["-rtp_echo", "-m", "1", "-timeout", "40s", "-trace_msg"])
        .arg("-message_file")
        .arg(&uas_trace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp uas starts");
    thread::sleep(Duration::from_millis(300));

    let mut caller = Softphone::start_with(
        "caller",
        SocketAddr::new(caller_ip, caller_port),
        &tone,
        &Role::Caller {
            dial: format!("sip:callee@{}", sbc.config.sip_address()),
        },
        Some(mediaenc),
    );
    if let Err(error) = caller.wait_for("Call established", Duration::from_secs(15)) {
        let _ = uas.kill();
        panic!(
            "{mediaenc}: the call was not established: {error}\n{}",
            sbc.log_tail()
        );
    }
    let established = Instant::now();
    thread::sleep(TALK);
    let talked = established.elapsed();
    let hung_up = caller.terminate(Duration::from_secs(10));
    let uas_done = wait_exit(&mut uas, Duration::from_secs(10));
    sbc.assert_alive("an encrypted call");
    let log = caller.log();
    assert!(
        hung_up.is_ok(),
        "{mediaenc}: {hung_up:?}\n{}",
        caller.log_tail()
    );
    assert!(
        uas_done,
        "{mediaenc}: SIPp did not see the BYE\n{}",
        sbc.log_tail()
    );

    // SIPp got plain RTP/AVP, with nothing of the phone's keys or certificate.
    let trace = std::fs::read_to_string(&uas_trace).unwrap_or_default();
    let invite = trace
        .split("INVITE sip:")
        .nth(1)
        .unwrap_or_else(|| panic!("no INVITE in the SIPp trace:\n{trace}"));
    let invite = invite.split("-----").next().unwrap_or_default();
    assert!(invite.contains("RTP/AVP"), "{mediaenc}: {invite}");
    for leaked in ["crypto", "fingerprint", "SAVP", "setup:"] {
        assert!(
            !invite.contains(leaked),
            "{mediaenc}: {leaked} crossed: {invite}"
        );
    }
    // The phone negotiated encryption with the SBC.
    let sbc_answer = caller
        .received_sip()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200") && m.contains("m=audio"))
        .unwrap_or_else(|| panic!("{mediaenc}: no 200 with SDP\n{}", caller.log_tail()));
    let expected = if mediaenc == "dtls_srtp" {
        "a=fingerprint:sha-256"
    } else {
        "a=crypto:"
    };
    assert!(sbc_answer.contains(expected), "{mediaenc}: {sbc_answer}");
    // Best-effort SRTP (`mediaenc=srtp`) keeps RTP/AVP; the others are SAVP profiles.
    let profile = if mediaenc == "srtp" {
        "RTP/AVP"
    } else {
        "SAVP"
    };
    assert!(sbc_answer.contains(profile), "{mediaenc}: {sbc_answer}");

    let recording = caller
        .received_audio()
        .unwrap_or_else(|error| panic!("{mediaenc}: {error}"));
    let report = ToneReport::analyse(&baresip::read_samples(&recording), TONE_HZ, 600);
    eprintln!(
        "{mediaenc}: the caller heard {:.2} s of its {TONE_HZ} Hz tone back (talk {:.2} s, \
         {:.2} s non-silent, purity {:.3})",
        report.tone_seconds,
        talked.as_secs_f64(),
        report.loud_seconds,
        report.mean_purity
    );
    assert!(
        report.tone_seconds >= MIN_TONE_SECONDS,
        "{mediaenc}: the echo through the relay carried {:.2} s of the tone only: {report:?}\n\
         {}\n{}",
        report.tone_seconds,
        caller.log_tail(),
        sbc.log_tail()
    );
    assert!(!log.is_empty());
}

fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// baresip `mediaenc=srtp-mand`: SDES-SRTP on the phone's leg, plain RTP to SIPp.
#[test]
fn an_sdes_softphone_talks_to_a_plain_rtp_peer_through_the_sbc() {
    echo_call("srtp-mand");
}

/// baresip `mediaenc=srtp`: best-effort SDES (`RTP/AVP` with `a=crypto`), answered with
/// SRTP since the policy allows SDES here.
#[test]
fn a_best_effort_srtp_softphone_gets_srtp_and_talks_to_a_plain_rtp_peer() {
    echo_call("srtp");
}

/// baresip `mediaenc=dtls_srtp`: DTLS-SRTP handshake with the relay, plain RTP to SIPp.
#[test]
fn a_dtls_srtp_softphone_talks_to_a_plain_rtp_peer_through_the_sbc() {
    echo_call("dtls_srtp");
}
