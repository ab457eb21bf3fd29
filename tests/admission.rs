//! Call admission control and overload with real peers: SIPp callers authenticated as
//! users, a SIPp UAS behind a trunk with a call limit, and an INVITE flood far beyond
//! what the SBC serves, while calls in progress must go on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::sipp::{self, scenario};
use common::{Sbc, SbcConfig, free_ports};

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
        (
            alice.successful + bob.successful,
            alice.failed + bob.failed
        ),
        (3, 1),
        "the per-trunk limit\n{}\n{}\n{}",
        alice.log,
        bob.log,
        sbc.log_tail()
    );
    let _ = uas.kill();
    let _ = uas.wait();
}
