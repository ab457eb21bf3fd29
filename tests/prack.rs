//! Reliable provisional responses toward a real caller (RFC 3262) through the `sbc`
//! binary: a SIPp UAC that requires 100rel gets the callee's early media in a reliable
//! 183 (`Require: 100rel`, `RSeq`, SDP), PRACKs it, then gets 200 to the PRACK and 200 to
//! the INVITE (held by the SBC until the PRACK), ACKs and hangs up; the callee is a SIPp
//! UAS answering 183 with SDP and at once 200.
//!
//! Three loopback hosts of the test's own: the SBC on `.1`, the callee on `.2`, the
//! caller on `.3`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Sbc, SbcConfig, free_ports, require_tool};

const CALLS: usize = 30;

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

#[test]
fn a_caller_requiring_100rel_gets_a_reliable_183_and_30_calls_complete() {
    let config = SbcConfig::new();
    let callee = config.net.host(2);
    let caller = config.net.host(3);
    let [callee_port] = free_ports(callee);
    let [caller_port] = free_ports(caller);
    let mut sbc = Sbc::start(config.with_peer(SocketAddr::new(callee, callee_port)));
    let scenarios = common::repo_root().join("tests/scenarios");
    let traces = tempfile::tempdir().unwrap();

    let mut uas = sipp(
        &scenarios,
        &[
            "-sf".into(),
            "uas_183_sdp.xml".into(),
            "-i".into(),
            callee.to_string(),
            "-p".into(),
            callee_port.to_string(),
            "-mi".into(),
            callee.to_string(),
            "-m".into(),
            CALLS.to_string(),
            "-timeout".into(),
            "60s".into(),
        ],
    )
    .spawn()
    .expect("sipp uas starts");
    thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let uac_log = traces.path().join("uac_errors.log");
    let output = sipp(
        &scenarios,
        &[
            "-sf".into(),
            "uac_100rel.xml".into(),
            sbc.config.sip_address().to_string(),
            "-s".into(),
            "echo".into(),
            "-i".into(),
            caller.to_string(),
            "-p".into(),
            caller_port.to_string(),
            "-mi".into(),
            caller.to_string(),
            "-m".into(),
            CALLS.to_string(),
            "-r".into(),
            "10".into(),
            "-l".into(),
            CALLS.to_string(),
            "-timeout".into(),
            "60s".into(),
            "-timeout_error".into(),
            "-trace_err".into(),
            "-error_file".into(),
            uac_log.display().to_string(),
        ],
    )
    .output()
    .expect("sipp uac runs");
    let _ = uas.kill();
    let _ = uas.wait();
    sbc.assert_alive("calls with reliable provisional responses");
    let errors = std::fs::read_to_string(&uac_log).unwrap_or_default();
    assert!(
        output.status.success(),
        "SIPp UAC reports failed calls after {:?}:\n{}\n{errors}\n{}",
        started.elapsed(),
        String::from_utf8_lossy(&output.stderr),
        sbc.log_tail()
    );
}
