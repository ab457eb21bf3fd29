//! Media fallback through the `sbc` binary against a real peer: the trunk's policy prefers
//! DTLS-SRTP and allows SDES, and its carrier (a SIPp UAS, `uas_refuse_srtp.xml`) answers
//! `488 Not Acceptable Here` to any SRTP offer and `200` to a plain one. The SBC must
//! offer DTLS-SRTP, then SDES-SRTP, then plain RTP, each on a fresh dialog, and the caller
//! (a SIPp UAC) must get its `200` without ever seeing a `488`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sbc, SbcConfig, free_ports, require_tool, sipp};

#[test]
fn a_carrier_refusing_srtp_gets_the_call_in_plain_rtp_and_the_caller_never_sees_the_488() {
    let config = SbcConfig::new();
    let carrier_ip = config.net.host(2);
    let caller_ip = config.net.host(3);
    let [carrier_port, carrier_media, caller_port] = free_ports(carrier_ip);
    let sbc = Sbc::start(
        config
            .with_peer(SocketAddr::new(carrier_ip, carrier_port))
            .with_trunk(
                "srtp = { dtls = \"prefer\", sdes = \"allow\", \
                 sdes_over_insecure_signalling = true }",
            ),
    );
    let traces = tempfile::tempdir().unwrap();
    // Three INVITEs (DTLS, SDES, plain), each a call of its own for SIPp.
    let mut carrier = Command::new(require_tool("sipp"))
        .current_dir(traces.path())
        .args(["-sf", &sipp::scenario("uas_refuse_srtp.xml")])
        .args([
            "-i",
            &carrier_ip.to_string(),
            "-p",
            &carrier_port.to_string(),
        ])
        .args([
            "-mi",
            &carrier_ip.to_string(),
            "-mp",
            &carrier_media.to_string(),
        ])
        .args(["-m", "3", "-timeout", "30s", "-timeout_error", "-trace_msg"])
        .args(["-nostdin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp uas starts");
    std::thread::sleep(Duration::from_millis(300));

    let caller = sipp::uac(
        sbc.config.sip_address(),
        caller_ip,
        caller_port,
        "carrier",
        1,
        500,
        Duration::from_secs(20),
    );
    assert!(
        caller.succeeded(),
        "the caller's call failed: {}\n{}",
        caller.describe(),
        sbc.log_tail()
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = carrier.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = carrier.kill();
            panic!("the carrier did not get three calls\n{}", sbc.log_tail());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the carrier's scenario failed: {status}");

    // What the carrier received, in order: the three offers' profiles.
    let trace = std::fs::read_dir(traces.path())
        .unwrap()
        .filter_map(Result::ok)
        .find(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .ends_with("_messages.log")
        })
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap())
        .expect("SIPp's message trace");
    let offers: Vec<&str> = trace
        .lines()
        .filter_map(|line| line.trim().strip_prefix("m=audio "))
        .filter_map(|rest| rest.split(' ').nth(1))
        .collect();
    assert_eq!(
        offers,
        ["UDP/TLS/RTP/SAVP", "RTP/SAVP", "RTP/AVP", "RTP/AVP"],
        "the SBC's three offers, then the carrier's own answer:\n{trace}"
    );
    let call_ids: std::collections::BTreeSet<&str> = trace
        .lines()
        .filter_map(|line| line.strip_prefix("Call-ID: "))
        .collect();
    assert_eq!(call_ids.len(), 3, "each offer on a fresh dialog");

    let response = sbc.admin().with_token(None).get("/metrics");
    assert_eq!(response.status, 200, "{}", response.body);
    let metrics = response.body;
    for step in ["dtls_to_sdes", "sdes_to_plain"] {
        let line = format!("sbc_media_fallbacks_total{{step=\"{step}\"}} 1");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
}
