//! Messages of one call leave the SBC in the order they arrived. The callee (SIPp's
//! built-in UAS) sends its 180 and its 200 back to back; the caller (a SIPp UAC that
//! fails a call whose 200 overtakes its 180) places 1,000 calls at 100 calls/s, the rate
//! at which Kamailio with topology stripping delivers the 180 after the 200 in about 5%
//! of calls on this kind of machine. Every call must see 180 then 200, over UDP and TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::sipp::{Uas, scenario};
use common::{Sbc, SbcConfig, free_ports, require_tool, run_bounded};

const CALLS: u32 = 1_000;

fn ordered_calls(transport: &str, protocol: &str) {
    let config = SbcConfig::new();
    let caller = config.net.host(3);
    let callee = config.net.host(4);
    let [uas_port] = free_ports(callee);
    let config = config
        .with_peer(SocketAddr::new(callee, uas_port))
        .with_routes("[[route]]\nname = \"all\"\nto_trunk = \"peer\"\n")
        // The calls come from a carrier trunk: a single access source is held to 50 new
        // calls a second by its rate limit.
        .with_extra(&format!(
            "[[trunk]]\nname = \"carrier\"\ntargets = [\"{caller}:5060\"]\n\
             transport = \"{protocol}\"\nkeepalive_secs = 0\n"
        ));
    let sbc = Sbc::start(config);
    let _uas = Uas::start(callee, uas_port, CALLS as usize);
    let traces = tempfile::tempdir().unwrap();
    let [port] = free_ports(caller);
    let run = run_bounded(
        std::process::Command::new(require_tool("sipp"))
            .current_dir(traces.path())
            .arg(sbc.config.sip_address().to_string())
            .args(["-sf", &scenario("uac_ordered.xml"), "-s", "1000"])
            .args(["-t", transport])
            .args(["-i", &caller.to_string(), "-p", &port.to_string()])
            .args(["-m", &CALLS.to_string(), "-r", "100", "-l", "200"])
            .args(["-nostdin", "-timeout", "40s", "-timeout_error"]),
        Duration::from_secs(50),
    );
    assert_eq!(
        (
            run.sipp_count("Successful call"),
            run.sipp_count("Failed call")
        ),
        (u64::from(CALLS), 0),
        "calls whose 200 overtook the 180 (or failed otherwise)\n{}\n{}",
        run.describe(),
        sbc.log_tail()
    );
}

#[test]
fn a_180_never_follows_its_200_over_udp() {
    ordered_calls("u1", "udp");
}

#[test]
fn a_180_never_follows_its_200_over_tcp() {
    ordered_calls("t1", "tcp");
}
