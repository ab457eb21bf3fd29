//! Call admission control and overload with real peers: SIPp callers authenticated as
//! users, a SIPp UAS behind a trunk with a call limit, and an INVITE flood far beyond
//! what the SBC serves, while calls in progress must go on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::sipp::{self, scenario};
use common::{Sbc, SbcConfig, free_ports};

/// The two floods each take what the machine has (SIPp sends 30,000 INVITEs a second):
/// they run one after the other, so neither measures the other's load.
static FLOODS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_flood_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    FLOODS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Users limited to 2 calls each; the trunk every call goes to, to 3.
fn limited(config: SbcConfig, uas: SocketAddr) -> SbcConfig {
    config
        .with_security(
            "[auth]\nrealm = \"sbc.test\"\n\n[security]\nmax_calls_per_user = 2\n\
             scanner_user_agents = []\n",
        )
        .with_routes("[[route]]\nname = \"out\"\nto_trunk = \"limited\"\n")
        .with_extra(&format!(
            "[[trunk]]\nname = \"limited\"\ntargets = [\"{uas}\"]\ntransport = \"udp\"\n\
             keepalive_secs = 0\nmax_calls = 3\n"
        ))
}

#[test]
fn calls_past_a_users_or_a_trunks_limit_are_refused_and_the_others_go_through() {
    let config = SbcConfig::new();
    let callee = config.net.host(2);
    let [uas_port] = free_ports(callee);
    let config = limited(config, SocketAddr::new(callee, uas_port));
    let alice_ip = config.net.host(3);
    let bob_ip = config.net.host(4);
    let sbc = Sbc::start_with_users(config, &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let target = sbc.config.sip_address();
    let traces = tempfile::tempdir().unwrap();
    let mut uas = sipp::uas(callee, uas_port, traces.path());
    // Each call lasts 2 s; six at once from alice: two go through, four get 403.
    let run = sipp::client(
        target,
        alice_ip,
        &scenario("uac_auth.xml"),
        ("alice", "alice-pw"),
        6,
        100,
        6,
        traces.path(),
    );
    assert_eq!(
        (run.successful, run.failed),
        (2, 4),
        "the per-user limit\n{}\n{}",
        run.log,
        sbc.log_tail()
    );
    // Alice and Bob at once, two calls each: the trunk takes three.
    let dir = traces.path().to_path_buf();
    let alice = std::thread::spawn(move || {
        sipp::client(
            target,
            alice_ip,
            &scenario("uac_auth.xml"),
            ("alice", "alice-pw"),
            2,
            100,
            2,
            &dir,
        )
    });
    let bob = sipp::client(
        target,
        bob_ip,
        &scenario("uac_auth.xml"),
        ("bob", "bob-pw"),
        2,
        100,
        2,
        traces.path(),
    );
    let alice = alice.join().unwrap();
    assert_eq!(
        (alice.successful + bob.successful, alice.failed + bob.failed),
        (3, 1),
        "the per-trunk limit\n{}\n{}\n{}",
        alice.log,
        bob.log,
        sbc.log_tail()
    );
    let _ = uas.kill();
    let _ = uas.wait();
}

/// What the flooder sent and got back.
#[derive(Debug, Default)]
struct FloodReport {
    sent: u64,
    /// Calls answered, by status code (retransmitted answers counted once).
    responses: std::collections::BTreeMap<u16, u64>,
    /// 503s without a Retry-After.
    bare_503: u64,
}

/// Sends new calls (INVITEs to `9<n>`, no SDP, never ACKed, like a call storm) from
/// `from` to `sbc` at `rate` per second for `duration`, and counts the answers until a
/// second after the last one was sent (the SBC goes on retransmitting its final answers
/// to INVITEs that are never ACKed, for 32 s: those later ones are not counted).
fn flood(from: std::net::IpAddr, sbc: SocketAddr, rate: u64, duration: Duration) -> FloodReport {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    let socket = std::net::UdpSocket::bind((from, 0)).unwrap();
    let local = socket.local_addr().unwrap();
    let receiver = socket.try_clone().unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let counting = std::thread::spawn(move || {
        let mut report = FloodReport::default();
        let mut seen = std::collections::HashSet::new();
        let mut buffer = vec![0u8; 65_535];
        let mut stopped_at = None;
        loop {
            if stop.load(Ordering::Relaxed)
                && stopped_at.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(1)
            {
                return report;
            }
            if let Ok(len) = receiver.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..len]);
                let call = common::sip::header(&text, "Call-ID").unwrap_or_default();
                if let Some(code) = common::sip::status_code(&text)
                    && seen.insert((call.to_owned(), code))
                {
                    *report.responses.entry(code).or_default() += 1;
                    if code == 503 && common::sip::header(&text, "Retry-After").is_none() {
                        report.bare_503 += 1;
                    }
                }
            }
        }
    });
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        // Paced in 1 ms steps.
        let due = (start.elapsed().as_micros() as u64 * rate) / 1_000_000;
        while sent < due {
            let message = format!(
                "INVITE sip:9{sent}@{sbc} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKstorm{sent}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:storm@{ip}>;tag=s{sent}\r\nTo: <sip:9{sent}@{sbc}>\r\n\
                 Call-ID: storm-{sent}@{ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:storm@{local}>\r\n\
                 Content-Length: 0\r\n\r\n",
                ip = local.ip()
            );
            let _ = socket.send_to(message.as_bytes(), sbc);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut report = counting.join().unwrap();
    report.sent = sent;
    report
}

/// A call storm from a trunk (so the per-source rate limits, which trunks are exempt
/// from, do not stop it) at many times what the SBC can serve, while calls are in
/// progress: new calls get 503 with Retry-After (or are dropped when a shard's queue is
/// nearly full), the calls in progress complete their re-INVITE and BYE, memory stays
/// bounded, and once the storm stops new calls go through again.
#[test]
fn under_a_call_storm_new_calls_get_503_and_calls_in_progress_go_on() {
    let _flood = one_flood_at_a_time();
    let config = SbcConfig::new();
    let storm = config.net.host(2);
    let caller = config.net.host(3);
    let callee = config.net.host(4);
    let [uas_port] = free_ports(callee);
    let config = config
        .with_peer(SocketAddr::new(callee, uas_port))
        .with_routes("[[route]]\nname = \"legit\"\nuser_prefix = \"1\"\nto_trunk = \"peer\"\n")
        .with_limits("max_transactions = 20000\n")
        .with_extra(&format!(
            "[[trunk]]\nname = \"storm\"\ntargets = [\"{storm}:5060\"]\ntransport = \"udp\"\n\
             keepalive_secs = 0\n"
        ));
    let sbc = Sbc::start(config);
    let target = sbc.config.sip_address();
    let traces = tempfile::tempdir().unwrap();
    let mut uas = std::process::Command::new(common::require_tool("sipp"))
        .current_dir(traces.path())
        .args(["-sf", &scenario("uas_reinvite.xml")])
        .args(["-i", &callee.to_string(), "-p", &uas_port.to_string()])
        .args(["-nostdin", "-timeout", "60s", "-bg"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // 20 calls set up in the first second; each re-INVITEs after 3 s and hangs up 3 s
    // later, in the middle of the storm.
    let run_calls = move |calls: u32, pause_ms: u32, dir: std::path::PathBuf| {
        let [port] = free_ports(caller);
        common::run_bounded(
            std::process::Command::new(common::require_tool("sipp"))
                .current_dir(dir)
                .arg(target.to_string())
                .args(["-sf", &scenario("uac_reinvite.xml"), "-s", "1000"])
                .args(["-i", &caller.to_string(), "-p", &port.to_string()])
                .args(["-m", &calls.to_string(), "-r", "20", "-l", "100"])
                .args(["-d", &pause_ms.to_string()])
                .args(["-nostdin", "-timeout", "50s", "-timeout_error"]),
            Duration::from_secs(60),
        )
    };
    let dir = traces.path().to_path_buf();
    let legit = std::thread::spawn(move || run_calls(20, 3_000, dir));
    std::thread::sleep(Duration::from_millis(1_500));
    let rss_before = sbc.vm_rss_kib();
    let report = flood(storm, target, 30_000, Duration::from_secs(5));
    let rss_after = sbc.vm_rss_kib();
    let calls = legit.join().unwrap();
    eprintln!("storm: {report:?}; SBC resident memory {rss_before} -> {rss_after} KiB");
    // Every call in progress completed its re-INVITE and BYE during the storm.
    assert_eq!(
        (
            calls.sipp_count("Successful call"),
            calls.sipp_count("Failed call")
        ),
        (20, 0),
        "calls in progress\n{}\n{}",
        calls.describe(),
        sbc.log_tail()
    );
    // The storm's new calls were refused 503 with Retry-After (the rest dropped or
    // answered 404 while there was room).
    let refused = report.responses.get(&503).copied().unwrap_or(0);
    assert!(refused > 0, "no 503 under the storm: {report:?}");
    assert_eq!(report.bare_503, 0, "a 503 without Retry-After: {report:?}");
    assert!(
        rss_after.saturating_sub(rss_before) < 100 * 1024,
        "resident memory grew from {rss_before} to {rss_after} KiB"
    );
    // The storm is over: new calls go through again.
    let recovered = run_calls(10, 200, traces.path().to_path_buf());
    assert_eq!(
        (
            recovered.sipp_count("Successful call"),
            recovered.sipp_count("Failed call")
        ),
        (10, 0),
        "new calls after the storm\n{}\n{}",
        recovered.describe(),
        sbc.log_tail()
    );
    let _ = uas.kill();
    let _ = uas.wait();
}

/// The issue's flood: a SIPp INVITE flood from one access source at 30,000 INVITEs a
/// second (ten times the calls per second the SBC serves, `bench/calls.sh`), while a
/// legitimate SIPp load runs from another source. The per-source INVITE budget (50/s,
/// bursts of 100 by default) stops the flood at the admission gate, before parsing: at
/// most that budget reaches signalling, the legitimate calls go through, memory stays
/// bounded, and once the flood stops the SBC serves everyone again, the flooder
/// included (rate limits punish a flood only while it lasts; bans are for scanners and
/// password guessing).
#[test]
fn a_sipp_invite_flood_from_one_source_is_cut_at_the_gate_while_legitimate_calls_go_on() {
    let _flood = one_flood_at_a_time();
    const FLOOD_RATE: u32 = 30_000;
    const FLOOD_INVITES: u32 = 4 * FLOOD_RATE;
    let config = SbcConfig::new();
    let attacker = config.net.host(2);
    let caller = config.net.host(3);
    let callee = config.net.host(4);
    let [uas_port] = free_ports(callee);
    let config = config
        .with_peer(SocketAddr::new(callee, uas_port))
        .with_routes("[[route]]\nname = \"legit\"\nuser_prefix = \"1\"\nto_trunk = \"peer\"\n")
        // Default rate limits and scanner bans; no authentication, so that the flood
        // costs the SBC all it can once past the gate.
        .with_security("[auth]\nenabled = false\n");
    let sbc = Sbc::start(config);
    let admin = sbc.admin();
    let target = sbc.config.sip_address();
    let traces = tempfile::tempdir().unwrap();
    let mut uas = sipp::uas(callee, uas_port, traces.path());
    let legit_calls = move |calls: u32, dir: std::path::PathBuf| {
        let [port] = free_ports(caller);
        common::run_bounded(
            std::process::Command::new(common::require_tool("sipp"))
                .current_dir(dir)
                .arg(target.to_string())
                .args(["-sn", "uac", "-s", "1000"])
                .args(["-i", &caller.to_string(), "-p", &port.to_string()])
                .args([
                    "-m",
                    &calls.to_string(),
                    "-r",
                    "20",
                    "-l",
                    "100",
                    "-d",
                    "500",
                ])
                .args(["-nostdin", "-timeout", "50s", "-timeout_error"]),
            Duration::from_secs(60),
        )
    };
    let dir = traces.path().to_path_buf();
    let legit = std::thread::spawn(move || legit_calls(100, dir));
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = sbc.vm_rss_kib();
    let [flood_port] = free_ports(attacker);
    let flood = common::run_bounded(
        std::process::Command::new(common::require_tool("sipp"))
            .current_dir(traces.path())
            .arg(target.to_string())
            .args(["-sf", &scenario("invite_flood.xml"), "-s", "9000"])
            .args(["-i", &attacker.to_string(), "-p", &flood_port.to_string()])
            .args([
                "-r",
                &FLOOD_RATE.to_string(),
                "-m",
                &FLOOD_INVITES.to_string(),
            ])
            .args(["-nostdin", "-timeout", "20s"]),
        Duration::from_secs(30),
    );
    let rss_after = sbc.vm_rss_kib();
    let calls = legit.join().unwrap();
    let sent = flood.sipp_count("Successful call");
    let invites =
        admin.metric("sbc_sip_requests_received_total{method=\"INVITE\",transport=\"udp\"}");
    let rate_limited = admin.metric("sbc_admission_dropped_total{reason=\"rate_limited\"}");
    eprintln!(
        "flood: {sent} INVITEs sent ({}); {rate_limited} dropped as rate_limited, \
         {invites} INVITEs reached signalling; SBC resident memory {rss_before} -> \
         {rss_after} KiB",
        flood
            .stdout
            .lines()
            .rev()
            .find(|line| line.trim_start().starts_with("Call Rate"))
            .unwrap_or("no rate")
            .trim()
    );
    assert_eq!(sent, u64::from(FLOOD_INVITES), "{}", flood.describe());
    assert!(rate_limited > 0.0, "nothing rate limited");
    // The legitimate 100 (with their retransmissions) and the flood's budget: a burst of
    // 100 and 50 a second over the flood's few seconds.
    assert!(
        invites <= 2.0 * 100.0 + 100.0 + 50.0 * 8.0,
        "{invites} INVITEs reached signalling: the flood was not cut at the gate"
    );
    let (ok, failed) = (
        calls.sipp_count("Successful call"),
        calls.sipp_count("Failed call"),
    );
    assert!(
        ok * 100 >= (ok + failed).max(100) * 95,
        "legitimate calls: {ok} ok, {failed} failed\n{}",
        calls.describe()
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 100 * 1024,
        "resident memory grew from {rss_before} to {rss_after} KiB"
    );

    // The flood is over: new calls go through, and the flooder's own requests are
    // served again once its bucket has refilled.
    let recovered = legit_calls(20, traces.path().to_path_buf());
    assert_eq!(
        (
            recovered.sipp_count("Successful call"),
            recovered.sipp_count("Failed call")
        ),
        (20, 0),
        "new calls after the flood\n{}\n{}",
        recovered.describe(),
        sbc.log_tail()
    );
    let socket = common::sip::udp_socket(attacker);
    let options = common::sip::request("OPTIONS", target, "UDP", socket.local_addr().unwrap());
    let answers =
        common::sip::udp_transaction(&socket, target, &options, Duration::from_secs(5)).unwrap();
    assert_eq!(
        common::sip::status_code(common::sip::final_response(&answers)),
        Some(200)
    );
    let _ = uas.kill();
    let _ = uas.wait();
}
