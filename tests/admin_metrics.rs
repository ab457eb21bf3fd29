//! `/metrics` of the real binary: checked by Prometheus's own parser (`promtool check
//! metrics`, Debian's `prometheus` package), counters that move when SIPp calls go
//! through, and the Grafana dashboard naming only metrics that exist.
//!
//! Loopback hosts of each test's own: the SBC on `.1`, the callee (SIPp UAS) on `.2`,
//! the caller (SIPp UAC) on `.3`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::Admin;
use common::sipp::{Uas, uac};
use common::{Sbc, SbcConfig, free_ports, require_tool};

fn scrape(admin: &Admin) -> String {
    let response = admin.with_token(None).get("/metrics");
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        response
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        response.headers
    );
    response.body
}

/// The value of one series (`name{labels}` exactly as exposed), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// `promtool check metrics` on `text`: the exposition parses and follows the naming
/// conventions (its linter); returns promtool's complaints.
fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new(require_tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

fn sbc_with_callee() -> (Sbc, Uas, SocketAddr) {
    let config = SbcConfig::new();
    let callee = config.net.host(2);
    let caller = config.net.host(3);
    let [callee_port] = free_ports(callee);
    let [caller_port] = free_ports(caller);
    let sbc = Sbc::start(config.with_peer(SocketAddr::new(callee, callee_port)));
    let uas = Uas::start(callee, callee_port, 50);
    (sbc, uas, SocketAddr::new(caller, caller_port))
}

/// Waits until `series` in a scrape reaches `at_least`.
fn wait_for(admin: &Admin, series: &str, at_least: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(admin);
        if value(&text, series) >= at_least || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_pass_promtool_and_counters_move_when_calls_go_through() {
    const CALLS: usize = 3;
    let (sbc, _uas, caller) = sbc_with_callee();
    let admin = sbc.admin();
    let before = scrape(&admin);
    let (ok, said) = promtool(&before);
    assert!(ok, "promtool check metrics refused the exposition:\n{said}");

    let calls = uac(
        sbc.config.sip_address(),
        caller.ip(),
        caller.port(),
        "100",
        CALLS,
        100,
        Duration::from_secs(30),
    );
    assert!(
        calls.succeeded(),
        "{}\n{}",
        calls.describe(),
        sbc.log_tail()
    );
    let answered = "sbc_trunk_calls_total{trunk=\"peer\",result=\"answered\"}";
    wait_for(&admin, answered, CALLS as f64);
    let after = wait_for(&admin, "sbc_cdr_written_total", CALLS as f64);
    let (ok, said) = promtool(&after);
    assert!(ok, "promtool check metrics refused the exposition:\n{said}");

    let moved = |series: &str| value(&after, series) - value(&before, series);
    let calls = CALLS as f64;
    for (series, expected) in [
        ("sbc_calls_started_total", calls),
        ("sbc_calls_answered_total", calls),
        (answered, calls),
        (
            "sbc_sip_requests_received_total{method=\"INVITE\",transport=\"udp\"}",
            calls,
        ),
        (
            "sbc_sip_requests_received_total{method=\"BYE\",transport=\"udp\"}",
            calls,
        ),
        ("sbc_sip_requests_sent_total{method=\"INVITE\"}", calls),
        ("sbc_calls_ended_total{reason=\"bye_from_a\"}", calls),
        ("sbc_call_setup_seconds_count", calls),
        ("sbc_cdr_written_total", calls),
    ] {
        assert_eq!(moved(series), expected, "{series}\n{after}");
    }
    assert!(moved("sbc_sip_responses_sent_total{status_class=\"2xx\"}") >= 2.0 * calls);
    assert!(
        moved("sbc_sip_responses_received_total{status_class=\"2xx\",transport=\"udp\"}") >= calls
    );
    assert_eq!(value(&after, "sbc_calls_active"), 0.0);
    assert!(value(&after, "process_resident_memory_bytes") > 0.0);
    assert!(value(&after, "sbc_relay_port_pairs{state=\"free\"}") > 0.0);
}

/// Series keyed by a reason or a status appear once something happened for them: with
/// authentication on, the test makes an answered call and a call without a route from the
/// trunk's own address, a call from elsewhere (challenged), a scanner's request (dropped
/// by the admission gate) and a malformed request first.
#[test]
fn the_grafana_dashboard_uses_only_metrics_the_appliance_exports() {
    let config = SbcConfig::new()
        .with_security("[auth]\nenabled = true\n\n[security.rate_limits]\nenabled = false\n")
        .with_routes(
            "[[route]]\nname = \"hundreds\"\nuser_prefix = \"100\"\nto_trunk = \"peer\"\n",
        );
    let callee = config.net.host(2);
    let stranger = config.net.host(3);
    let [callee_port, trunk_caller_port] = free_ports(callee);
    let sbc = Sbc::start(config.with_peer(SocketAddr::new(callee, callee_port)));
    let _uas = Uas::start(callee, callee_port, 5);
    let admin = sbc.admin();
    let sip = sbc.config.sip_address();
    // From the trunk's address: a trunk call, no challenge.
    let calls = uac(
        sip,
        callee,
        trunk_caller_port,
        "100",
        1,
        0,
        Duration::from_secs(20),
    );
    assert!(
        calls.succeeded(),
        "{}\n{}",
        calls.describe(),
        sbc.log_tail()
    );
    let refused = uac(
        sip,
        callee,
        trunk_caller_port,
        "999",
        1,
        0,
        Duration::from_secs(10),
    );
    assert!(!refused.succeeded());
    // From elsewhere: challenged.
    let socket = common::sip::udp_socket(stranger);
    let local = socket.local_addr().unwrap();
    let invite = common::sip::request("INVITE", sip, "UDP", local);
    let responses =
        common::sip::udp_transaction(&socket, sip, &invite, Duration::from_secs(5)).unwrap();
    let challenge = common::sip::final_response(&responses);
    assert_eq!(
        common::sip::status_code(challenge),
        Some(407),
        "{challenge}"
    );
    let ack = common::sip::ack_for_failure(&invite, challenge);
    socket.send_to(ack.as_bytes(), sip).unwrap();
    // A scanner: dropped without an answer.
    let scan = common::sip::request("OPTIONS", sip, "UDP", local)
        .text
        .replace(
            "User-Agent: sbc-blackbox-test",
            "User-Agent: friendly-scanner",
        );
    socket.send_to(scan.as_bytes(), sip).unwrap();
    let malformed = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKm\r\n\
                     CSeq: banana\r\nContent-Length: 0\r\n\r\n";
    let other = common::sip::udp_socket(sbc.config.net.host(4));
    other.send_to(malformed.as_bytes(), sip).unwrap();
    wait_for(
        &admin,
        "sbc_admission_dropped_total{reason=\"scanner\"}",
        1.0,
    );
    let text = wait_for(&admin, "sbc_cdr_written_total", 2.0);
    let exported: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .collect();

    let dashboard =
        std::fs::read_to_string(common::repo_root().join("deploy/grafana/sbc-dashboard.json"))
            .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("sbc_") || word.starts_with("process_") {
                    let family = word.strip_suffix("_bucket").unwrap_or(word);
                    used.insert(family.to_owned());
                }
            }
        }
    }
    assert!(used.len() > 20, "{used:?}");
    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !exported.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard uses metrics nobody exports: {missing:?}"
    );
}
