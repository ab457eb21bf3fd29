//! Two real softphones (baresip) call each other through the `sbc` binary, and each hears
//! the tone the other plays.
//!
//! Three loopback hosts of the test's own: the SBC on `.1`, the callee (the trunk every
//! call is routed to) on `.2`, the caller on `.3`. The caller dials `callee@<SBC>`; the
//! SBC's B2BUA re-originates the call to the callee, and its relay anchors the media. Both
//! phones speak G.711 only. The caller's microphone is a 1 kHz tone, the callee's a 600 Hz
//! tone (WAV files written by sox); each phone records what it decodes from the network.
//! After a few seconds of talk the caller hangs up (BYE). Then each recording must carry
//! the other side's tone, cleanly (a Goertzel detector, frame by frame), for most of the
//! talk, and never the phone's own tone: silence, noise, or audio looped back fail.
//! How baresip is set up: `tests/common/baresip.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::baresip::{self, Role, Softphone, ToneReport};
use common::{Sbc, SbcConfig, free_ports};

const CALLER_TONE_HZ: u32 = 1_000;
const CALLEE_TONE_HZ: u32 = 600;
/// Longer than any call here: the tones never run out.
const TONE_SECONDS: u32 = 20;

/// Start-up of a phone, until `baresip is ready.`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// From dialling until both phones report the call established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(15);
/// From SIGTERM (BYE sent) until the phone exits, and until the other one sees the BYE.
const HANG_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// Talk time once both phones report the call established.
const TALK: Duration = Duration::from_secs(4);
/// How much of the talk each recording must carry the tone for: the rest is margin for a
/// loaded machine (jitter buffer filling, media starting after the 200's ACK).
const MIN_TONE_SECONDS: f64 = 2.5;
/// The share of the non-silent audio that must be the clean tone.
const MIN_TONE_SHARE: f64 = 0.95;

/// One call between the phones, over: both have exited, their logs and recordings remain.
struct Call {
    sbc: Sbc,
    caller: Softphone,
    callee: Softphone,
    /// When the caller hung up, counted from both phones reporting the call established.
    talked: Duration,
    _tones: tempfile::TempDir,
}

impl Call {
    fn logs(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.caller.log_tail(),
            self.callee.log_tail(),
            self.sbc.log_tail()
        )
    }
}

/// Starts the SBC and both phones, lets them talk for `talk`, and hangs up from the caller.
fn place_call(talk: Duration) -> Call {
    let tones = tempfile::tempdir().unwrap();
    let caller_tone = tones.path().join("caller-1000hz.wav");
    let callee_tone = tones.path().join("callee-600hz.wav");
    baresip::write_tone(&caller_tone, CALLER_TONE_HZ, TONE_SECONDS);
    baresip::write_tone(&callee_tone, CALLEE_TONE_HZ, TONE_SECONDS);

    let config = SbcConfig::new();
    let callee_ip = config.net.host(2);
    let caller_ip = config.net.host(3);
    let [callee_port] = free_ports(callee_ip);
    let [caller_port] = free_ports(caller_ip);
    let callee_sip = SocketAddr::new(callee_ip, callee_port);
    let sbc = Sbc::start(config.with_peer(callee_sip));
    let sbc_sip = sbc.config.sip_address();

    let mut callee = Softphone::start("callee", callee_sip, &callee_tone, &Role::Callee);
    if let Err(error) = callee.wait_for("baresip is ready.", READY_TIMEOUT) {
        panic!("{error}\n{}", sbc.log_tail());
    }
    let mut caller = Softphone::start(
        "caller",
        SocketAddr::new(caller_ip, caller_port),
        &caller_tone,
        &Role::Caller {
            dial: format!("sip:callee@{sbc_sip}"),
        },
    );
    for phone in [&mut caller, &mut callee] {
        if let Err(error) = phone.wait_for("Call established", ESTABLISH_TIMEOUT) {
            panic!("the call was not established: {error}\n{}", sbc.log_tail());
        }
    }
    let established = Instant::now();
    thread::sleep(talk);

    let talked = established.elapsed();
    let hung_up = caller.terminate(HANG_UP_TIMEOUT);
    let bye_seen = callee.wait_for("terminated", HANG_UP_TIMEOUT);
    let callee_stopped = callee.terminate(HANG_UP_TIMEOUT);
    let mut call = Call {
        sbc,
        caller,
        callee,
        talked,
        _tones: tones,
    };
    call.sbc.assert_alive("a call between two softphones");
    if let Err(error) = hung_up.and(bye_seen).and(callee_stopped) {
        panic!(
            "hanging up through the SBC failed: {error}\n{}",
            call.sbc.log_tail()
        );
    }
    call
}

/// Analyses what `phone` received, expecting `hz` and never `own_hz`.
fn received_tone(call: &Call, phone: &Softphone, hz: u32, own_hz: u32) -> ToneReport {
    let recording = phone
        .received_audio()
        .unwrap_or_else(|error| panic!("{error}\n{}", call.logs()));
    let report = ToneReport::analyse(&baresip::read_samples(&recording), hz, own_hz);
    eprintln!(
        "{} received {:.2} s of audio: RMS {:.3} of full scale, {:.2} s non-silent, \
         {:.2} s of the {hz} Hz tone (mean purity {:.3}), {:.2} s of its own {own_hz} Hz tone \
         (talk {:.2} s)",
        phone.name,
        report.seconds,
        report.rms,
        report.loud_seconds,
        report.tone_seconds,
        report.mean_purity,
        report.other_tone_seconds,
        call.talked.as_secs_f64()
    );
    report
}

/// Whether a recording carries the `hz` tone cleanly, for long enough, and never the
/// phone's own tone; the error says what is wrong.
fn hears(report: &ToneReport, hz: u32) -> Result<(), String> {
    if report.tone_seconds < MIN_TONE_SECONDS {
        return Err(format!(
            "heard the {hz} Hz tone for {:.2} s only, at least {MIN_TONE_SECONDS} s expected",
            report.tone_seconds
        ));
    }
    if report.tone_seconds < MIN_TONE_SHARE * report.loud_seconds {
        return Err(format!(
            "heard something else than the {hz} Hz tone (noise or distortion) for {:.2} s \
             of {:.2} s of sound",
            report.loud_seconds - report.tone_seconds,
            report.loud_seconds
        ));
    }
    if report.other_tone_seconds >= 0.01 {
        return Err(format!(
            "heard its own tone for {:.2} s",
            report.other_tone_seconds
        ));
    }
    Ok(())
}

fn assert_hears(call: &Call, phone: &Softphone, report: &ToneReport, hz: u32) {
    if let Err(error) = hears(report, hz) {
        panic!(
            "{} {error} (talk {:.2} s): {report:?}\n{}",
            phone.name,
            call.talked.as_secs_f64(),
            call.logs()
        );
    }
}

/// The caller's 1 kHz reaches the callee and the callee's 600 Hz reaches the caller,
/// G.711 end to end, every RTP stream coming from the SBC's relay.
#[test]
fn softphones_hear_each_other_through_the_sbc() {
    let call = place_call(TALK);
    let sbc_ip = call.sbc.config.ip;
    for phone in [&call.caller, &call.callee] {
        let log = phone.log();
        assert!(
            log.contains("audio: Set audio encoder: PCMU")
                || log.contains("Set audio encoder: PCMA"),
            "{} did not settle on G.711\n{}",
            phone.name,
            call.logs()
        );
        assert!(
            log.contains(&format!("receiving from {sbc_ip}:")),
            "{}'s RTP did not come from the SBC's relay ({sbc_ip})\n{}",
            phone.name,
            call.logs()
        );
    }

    let callee_heard = received_tone(&call, &call.callee, CALLER_TONE_HZ, CALLEE_TONE_HZ);
    let caller_heard = received_tone(&call, &call.caller, CALLEE_TONE_HZ, CALLER_TONE_HZ);
    assert_hears(&call, &call.callee, &callee_heard, CALLER_TONE_HZ);
    assert_hears(&call, &call.caller, &caller_heard, CALLEE_TONE_HZ);
}

/// Nothing a phone receives names the other phone: every message comes from the SBC, and
/// no header or SDP line carries the other side's loopback host or media address
/// (127.0.0.1, which both phones advertise).
#[test]
fn softphones_see_only_the_sbc() {
    let call = place_call(Duration::from_secs(1));
    let sbc_sip = call.sbc.config.sip_address();
    for (phone, other) in [(&call.caller, &call.callee), (&call.callee, &call.caller)] {
        let received = phone.received_sip();
        assert!(
            received.len() >= 3,
            "{} received {} SIP messages, at least 3 expected\n{}",
            phone.name,
            received.len(),
            call.logs()
        );
        let from_sbc = format!("UDP {sbc_sip} -> {}", phone.sip);
        assert!(
            phone
                .log()
                .lines()
                .filter(|line| line.starts_with("UDP ")
                    && line.ends_with(&format!(" -> {}", phone.sip)))
                .all(|line| line == from_sbc),
            "{} received SIP from somewhere else than the SBC\n{}",
            phone.name,
            call.logs()
        );
        let other_ip = other.sip.ip().to_string();
        for message in &received {
            for needle in [other_ip.as_str(), "127.0.0.1"] {
                assert!(
                    !message.contains(needle),
                    "{} received {needle:?} (the {}'s address) from the SBC:\n{message}",
                    phone.name,
                    other.name
                );
            }
        }
    }
}

/// The check itself: a clean tone passes; silence, noise, the wrong tone, or the right
/// tone with the phone's own mixed in do not.
#[test]
fn the_tone_check_rejects_silence_noise_and_the_wrong_tone() {
    let rate = f64::from(baresip::SAMPLE_RATE);
    let seconds = 4;
    let length = baresip::SAMPLE_RATE as usize * seconds;
    let tone = |hz: u32| -> Vec<f64> {
        (0..length)
            .map(|n| 0.5 * (2.0 * std::f64::consts::PI * f64::from(hz) * n as f64 / rate).sin())
            .collect()
    };
    let mut state = 0x2545_f491_u32;
    let noise: Vec<f64> = (0..length)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            f64::from(state >> 16) / 65_536.0 - 0.5
        })
        .collect();
    let mixed: Vec<f64> = tone(CALLER_TONE_HZ)
        .iter()
        .zip(tone(CALLEE_TONE_HZ))
        .map(|(a, b)| (a + b) / 2.0)
        .collect();
    let passes = |samples: &[f64]| {
        hears(
            &ToneReport::analyse(samples, CALLER_TONE_HZ, CALLEE_TONE_HZ),
            CALLER_TONE_HZ,
        )
        .is_ok()
    };
    assert!(passes(&tone(CALLER_TONE_HZ)), "a clean tone");
    assert!(!passes(&vec![0.0; length]), "silence");
    assert!(!passes(&noise), "noise");
    assert!(!passes(&tone(CALLEE_TONE_HZ)), "the phone's own tone");
    assert!(!passes(&tone(1_100)), "a tone 100 Hz off");
    assert!(
        !passes(&mixed),
        "the right tone with the phone's own mixed in"
    );
}
