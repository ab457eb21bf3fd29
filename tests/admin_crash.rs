//! SIGKILL in the middle of API writes and CDR writes loses nothing that was
//! acknowledged: a thread creates trunks through the API (each 201 is an acknowledged
//! change) while SIPp calls go through (their CDRs are written in batches); the test
//! notes what was acknowledged and which CDRs could be read, kills the process with
//! SIGKILL while both are still writing, starts it again on the same data directory, and
//! finds every acknowledged trunk, every CDR it had read, an intact audit chain and a
//! store that serves requests.
//!
//! Loopback hosts of the test's own: the SBC on `.1`, the callee (SIPp UAS) on `.2`,
//! the caller (SIPp UAC) on `.3`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::sipp::{Uas, spawn_uac};
use common::{Sbc, SbcConfig, free_ports};
use serde_json::json;

const TRUNKS_BEFORE_KILL: usize = 40;
const CDRS_BEFORE_KILL: usize = 20;

#[test]
fn sigkill_during_api_and_cdr_writes_loses_no_acknowledged_change() {
    let config = SbcConfig::new();
    let callee = config.net.host(2);
    let caller = config.net.host(3);
    let [callee_port] = free_ports(callee);
    let [caller_port] = free_ports(caller);
    let mut sbc = Sbc::start(config.with_peer(SocketAddr::new(callee, callee_port)));
    let _uas = Uas::start(callee, callee_port, 1_000);
    let admin = sbc.admin();
    let sip = sbc.config.sip_address();

    // Calls keep coming (short ones, 20 a second) until the kill.
    let calls = spawn_uac(sip, caller, caller_port, "42", 600, 20, 50);

    // Trunks are created one after the other; each 201 is noted.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let admin = admin.clone();
        let acknowledged = Arc::clone(&acknowledged);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            for index in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let name = format!("crash-{index}");
                let body = json!({
                    "name": name,
                    "targets": [{"address": format!("192.0.2.{}:5060", index % 250 + 1)}],
                    "transport": "udp",
                    "keepalive_secs": 0
                });
                let text = body.to_string();
                match admin.try_request("POST", "/trunks", Some(("application/json", &text)), &[]) {
                    Ok(response) if response.status == 201 => {
                        acknowledged.lock().unwrap().push(name);
                    }
                    Ok(response) => panic!("POST /trunks: {} {}", response.status, response.body),
                    // The process was killed under the request.
                    Err(_) => return,
                }
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    let read_cdrs = loop {
        let cdrs = admin.get("/cdrs?limit=1000");
        assert_eq!(cdrs.status, 200, "{}", cdrs.body);
        let ids: BTreeSet<String> = cdrs.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|cdr| cdr["id"].as_str().unwrap().to_owned())
            .collect();
        let trunks = acknowledged.lock().unwrap().len();
        if ids.len() >= CDRS_BEFORE_KILL && trunks >= TRUNKS_BEFORE_KILL {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "too few writes before the kill: {} CDRs, {trunks} trunks\n{}",
            ids.len(),
            sbc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Both writers are still going.
    sbc.kill();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    drop(calls);
    let acknowledged = acknowledged.lock().unwrap().clone();

    sbc.start_again();
    let admin = sbc.admin();
    for name in &acknowledged {
        let trunk = admin.get(&format!("/trunks/{name}"));
        assert_eq!(
            trunk.status, 200,
            "lost acknowledged trunk {name}: {}",
            trunk.body
        );
    }
    let cdrs = admin.get("/cdrs?limit=1000");
    let after: BTreeSet<String> = cdrs.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cdr| cdr["id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<&String> = read_cdrs.difference(&after).collect();
    assert!(
        lost.is_empty(),
        "CDRs read before the kill are gone: {lost:?}"
    );
    let verdict = admin.get("/audit/verify").json();
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert!(verdict["records"].as_u64().unwrap() > acknowledged.len() as u64);
    // The store takes writes again.
    let created = admin.post(
        "/trunks",
        &json!({"name": "after-crash", "targets": [{"address": "192.0.2.1"}], "transport": "udp"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
}
