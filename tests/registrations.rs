//! Registrations hold under load, through the real binary: SIPp registers 2,000 distinct
//! users with digest from one address (each registers, waits a second and refreshes,
//! answering a fresh challenge each time) while SIPp on the trunk calls users registered
//! from a SIPp UAS. Every registration, refresh and call succeeds, the registrar counted
//! each binding once, and the store holds every binding afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::sipp::{Uas, scenario};
use common::{Finished, Sbc, SbcConfig, free_ports, http_get, require_tool, run_bounded};

/// Users that register and refresh under load.
const USERS: usize = 2_000;
/// Users registered from the callee's SIPp UAS, to which calls are placed.
const CALLEES: usize = 10;
const CALLS: usize = 100;
const REALM: &str = "sbc.test";

/// Authentication on (MD5 first), no rate limits: every phone is behind the one address
/// SIPp sends from, as behind a NAT, and the per-source budget would otherwise cut them.
const SECURITY: &str = r#"
[auth]
realm = "sbc.test"

[security]
scanner_user_agents = []

[security.rate_limits]
enabled = false
"#;

/// Writes a SIPp injection file: the user and its credentials (SIPp's
/// `[authentication]` keyword) per line.
fn injection(dir: &Path, file: &str, users: &[(String, String)]) -> String {
    let mut text = String::from("SEQUENTIAL\n");
    for (user, password) in users {
        text.push_str(&format!(
            "{user};[authentication username={user} password={password}]\n"
        ));
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs SIPp scenario `file` against `sbc` from `ip:port`, one call per injected line
/// (`calls` of them) at `rate`/s, `pause_ms` for each `<pause/>`; bounded.
#[allow(clippy::too_many_arguments)]
fn sipp(
    sbc: SocketAddr,
    (ip, port): (IpAddr, u16),
    file: &str,
    inf: &str,
    calls: usize,
    rate: u32,
    pause_ms: u64,
    dir: &Path,
) -> Finished {
    run_bounded(
        Command::new(require_tool("sipp"))
            .current_dir(dir)
            .arg(sbc.to_string())
            .args(["-sf", file, "-inf", inf])
            .args(["-i", &ip.to_string(), "-p", &port.to_string()])
            .args(["-m", &calls.to_string(), "-r", &rate.to_string()])
            .args(["-l", "1000", "-d", &pause_ms.to_string()])
            .args(["-nostdin", "-timeout", "60s", "-timeout_error"])
            .args(["-recv_timeout", "10000"]),
        Duration::from_secs(70),
    )
}

/// SIPp's final count of `label` ("Successful call", "Failed call").
fn count(run: &Finished, label: &str) -> u64 {
    run.stdout
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with(label))
        .and_then(|line| line.rsplit('|').next())
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The value of the metric sample `name` (with its labels, as printed) on /metrics.
fn metric(sbc: &Sbc, sample: &str) -> Option<f64> {
    let (_, body) = http_get(
        sbc.config.admin_address(),
        "/metrics",
        Duration::from_secs(5),
    )
    .ok()?;
    body.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[test]
fn two_thousand_users_register_and_refresh_with_digest_while_registered_users_are_called() {
    let config = SbcConfig::new().with_security(SECURITY);
    let trunk = config.net.host(2);
    let phones = config.net.host(3);
    let callee_host = config.net.host(4);
    let [trunk_port] = free_ports(trunk);
    let [phones_port] = free_ports(phones);
    let [callee_port] = free_ports(callee_host);
    let users: Vec<(String, String)> = (0..USERS)
        .map(|n| (format!("user{n:04}"), format!("pw-{n}-secret")))
        .collect();
    let callees: Vec<(String, String)> = (0..CALLEES)
        .map(|n| (format!("callee{n}"), format!("callee-{n}-secret")))
        .collect();
    let provisioning = Instant::now();
    let sbc = Sbc::start_with_store(
        config.with_peer(SocketAddr::new(trunk, trunk_port)),
        |store| {
            let change = sbc::store::Change::new("test", None);
            for (user, password) in users.iter().chain(&callees) {
                store
                    .create_user(user, REALM, password, serde_json::json!({}), &change)
                    .unwrap();
            }
        },
    );
    eprintln!(
        "{} users provisioned and the SBC started in {:?}",
        USERS + CALLEES,
        provisioning.elapsed()
    );
    let target = sbc.config.sip_address();
    let dir = tempfile::tempdir().unwrap();
    let register = scenario("register_refresh.xml");

    // The callees register from the address their UAS then answers on (a call to a
    // registered user goes to the flow its REGISTER came on).
    let callee_file = injection(dir.path(), "callees.csv", &callees);
    let run = sipp(
        target,
        (callee_host, callee_port),
        &register,
        &callee_file,
        CALLEES,
        50,
        0,
        dir.path(),
    );
    assert_eq!(
        count(&run, "Successful call"),
        CALLEES as u64,
        "callees did not register\n{}\n{}",
        run.describe(),
        sbc.log_tail()
    );
    let _uas = Uas::start(callee_host, callee_port, CALLS);

    // The load: 2,000 phones registering and refreshing, while calls to the callees go
    // on from the trunk.
    let user_file = injection(dir.path(), "users.csv", &users);
    let caller_file = injection(dir.path(), "to-callees.csv", &callees);
    let began = Instant::now();
    let (registrations, calls) = std::thread::scope(|scope| {
        let registrations = scope.spawn(|| {
            sipp(
                target,
                (phones, phones_port),
                &register,
                &user_file,
                USERS,
                400,
                1_000,
                dir.path(),
            )
        });
        let calls = scope.spawn(|| {
            sipp(
                target,
                (trunk, trunk_port),
                &scenario("uac_to_user.xml"),
                &caller_file,
                CALLS,
                25,
                300,
                dir.path(),
            )
        });
        (registrations.join().unwrap(), calls.join().unwrap())
    });
    let elapsed = began.elapsed();
    eprintln!("{USERS} registrations with refresh and {CALLS} calls in {elapsed:?}");
    assert_eq!(
        (
            count(&registrations, "Successful call"),
            count(&registrations, "Failed call")
        ),
        (USERS as u64, 0),
        "registrations under load\n{}\n{}",
        registrations.describe(),
        sbc.log_tail()
    );
    assert_eq!(
        (
            count(&calls, "Successful call"),
            count(&calls, "Failed call")
        ),
        (CALLS as u64, 0),
        "calls to registered users under load\n{}\n{}",
        calls.describe(),
        sbc.log_tail()
    );

    // Each binding was added once and refreshed once; none refused.
    let bindings = (USERS + CALLEES) as f64;
    let event = |name: &str| {
        metric(
            &sbc,
            &format!("sbc_registrar_events_total{{event=\"{name}\"}}"),
        )
    };
    assert_eq!(event("registered"), Some(bindings), "{}", sbc.log_tail());
    assert_eq!(event("refreshed"), Some(bindings));
    assert_eq!(event("refused").unwrap_or(0.0), 0.0);
    // The persister writes twice a second: every binding reaches the store.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stored = metric(&sbc, "sbc_registrations");
        if stored == Some(bindings) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store holds {stored:?} registrations, not {bindings}\n{}",
            sbc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
