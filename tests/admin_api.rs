//! The admin API of the real binary over HTTP: trunks and routes created through it
//! carry SIPp calls at once and survive a restart; CDRs and per-trunk metrics follow;
//! calls in progress are listed and ended; drain refuses new calls; bad bodies change
//! nothing; and every mutating route refuses requests without a token (401) or with a
//! read-only one (403).
//!
//! Loopback hosts of each test's own: the SBC on `.1`, the callee (SIPp UAS) on `.2`,
//! the caller (SIPp UAC) on `.3`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::http::Admin;
use common::sipp::{Uas, uac};
use common::{Sbc, SbcConfig, free_ports};
use serde_json::{Value, json};

/// An SBC whose only route (from the file) sends nothing anywhere: calls get 404 until
/// the API adds a route.
fn sbc_without_routes() -> Sbc {
    Sbc::start(SbcConfig::new().with_routes(""))
}

fn trunk(name: &str, target: std::net::SocketAddr) -> Value {
    json!({
        "name": name,
        "targets": [{"address": target.to_string()}],
        "transport": "udp",
        "keepalive_secs": 0
    })
}

fn audit_count(admin: &Admin) -> u64 {
    let verdict = admin.get("/audit/verify");
    assert_eq!(verdict.status, 200, "{}", verdict.body);
    assert_eq!(verdict.json()["ok"], true, "{}", verdict.body);
    verdict.json()["records"].as_u64().unwrap()
}

/// Waits until the CDRs of `count` calls are readable (the writer batches them).
fn wait_for_cdrs(admin: &Admin, query: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = admin.get(&format!("/cdrs?limit=1000&{query}"));
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.json()["items"].as_array().unwrap().clone();
        if items.len() >= count || Instant::now() > deadline {
            return items;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_trunk_and_route_created_through_the_api_carry_calls_at_once_and_survive_a_restart() {
    let mut sbc = sbc_without_routes();
    let net = sbc.config.net;
    let (callee, caller) = (net.host(2), net.host(3));
    let [callee_port] = free_ports(callee);
    let [caller_port] = free_ports(caller);
    let admin = sbc.admin();
    let sip = sbc.config.sip_address();

    // No route yet: the call is refused.
    let refused = uac(
        sip,
        caller,
        caller_port,
        "5551000",
        1,
        0,
        Duration::from_secs(10),
    );
    assert!(!refused.succeeded(), "a call without a route must fail");

    let uas = Uas::start(callee, callee_port, 100);
    let created = admin.post("/trunks", &trunk("api-callee", uas.address));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["origin"], "api");
    let route = json!({"name": "api-route", "priority": 10, "user_prefix": "555", "to_trunk": "api-callee"});
    let created = admin.post("/routes", &route);
    assert_eq!(created.status, 201, "{}", created.body);

    let calls = uac(
        sip,
        caller,
        caller_port,
        "5551000",
        5,
        200,
        Duration::from_secs(30),
    );
    assert!(
        calls.succeeded(),
        "calls over the API's trunk and route failed:\n{}\n{}",
        calls.describe(),
        sbc.log_tail()
    );

    let cdrs = wait_for_cdrs(&admin, "trunk=api-callee&disposition=answered", 5);
    assert_eq!(cdrs.len(), 5, "{cdrs:#?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr["trunk_out"], "api-callee");
    assert_eq!(cdr["sip_status"], 200);
    assert_eq!(cdr["end_reason"], "bye_from_a");
    assert_eq!(cdr["dest_addr"], uas.address.to_string());
    assert_eq!(cdr["security"]["a"]["signalling"]["transport"], "udp");
    assert_eq!(cdr["security"]["a"]["media"]["protection"], "plain");
    assert_eq!(cdr["security"]["identity"], "not_checked");
    // The relay session's final statistics joined the record (SIPp's built-in
    // scenarios send no RTP, so the counts are 0; the stream is there).
    assert_eq!(
        cdr["media_stats"]["streams"].as_array().unwrap().len(),
        1,
        "{cdr}"
    );
    assert!(cdr["answer_ms"].as_i64().unwrap() >= cdr["start_ms"].as_i64().unwrap());
    assert!(cdr["duration_ms"].as_i64().unwrap() >= 150, "{cdr}");
    let refused = wait_for_cdrs(&admin, "disposition=rejected", 1);
    assert_eq!(refused[0]["sip_status"], 404);
    assert_eq!(refused[0]["end_reason"], "no_route");

    let csv = admin.get("/cdrs/export?format=csv&trunk=api-callee");
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(csv.body.lines().count(), 6, "{}", csv.body);
    assert!(csv.body.starts_with("id,a_call_id,"));
    let jsonl = admin.get("/cdrs/export?format=jsonl&disposition=answered");
    let lines: Vec<Value> = jsonl
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);

    let metrics = admin.get("/metrics").body;
    assert!(
        metrics.contains("sbc_trunk_calls_total{trunk=\"api-callee\",result=\"answered\"} 5"),
        "{metrics}"
    );

    // A restart keeps the objects, their routing and the CDRs.
    let records = audit_count(&admin);
    sbc = sbc.restart();
    let admin = sbc.admin();
    let trunk = admin.get("/trunks/api-callee");
    assert_eq!(trunk.status, 200, "{}", trunk.body);
    assert_eq!(trunk.json()["version"], 1);
    assert_eq!(admin.get("/routes/api-route").status, 200);
    assert_eq!(audit_count(&admin), records);
    let again = uac(
        sip,
        caller,
        caller_port,
        "5552000",
        2,
        0,
        Duration::from_secs(30),
    );
    assert!(
        again.succeeded(),
        "{}\n{}",
        again.describe(),
        sbc.log_tail()
    );
    assert_eq!(wait_for_cdrs(&admin, "trunk=api-callee", 7).len(), 7);

    // Deleting the route stops the calls at once (the trunk, still used by it, first
    // cannot be deleted).
    let busy = admin.delete("/trunks/api-callee");
    assert_eq!(busy.status, 409, "{}", busy.body);
    assert!(
        busy.json()["message"]
            .as_str()
            .unwrap()
            .contains("api-route")
    );
    assert_eq!(admin.delete("/routes/api-route").status, 200);
    assert_eq!(admin.delete("/trunks/api-callee").status, 200);
    let refused = uac(
        sip,
        caller,
        caller_port,
        "5553000",
        1,
        0,
        Duration::from_secs(10),
    );
    assert!(!refused.succeeded());
    drop(uas);
}

#[test]
fn malformed_or_invalid_bodies_get_400_or_422_naming_the_problem_and_change_nothing() {
    let sbc = sbc_without_routes();
    let admin = sbc.admin();
    let before = audit_count(&admin);
    let trunks_before = admin.get("/trunks").body;

    let post = |path: &str, content_type: &str, body: &str| {
        admin.request("POST", path, Some((content_type, body)), &[])
    };
    let answer = post("/trunks", "application/json", "{\"name\": \"x\", ");
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let answer = post("/trunks", "text/plain", "name=x");
    assert_eq!(answer.status, 415);

    let cases = [
        (
            "/trunks",
            json!({"name": "t", "targets": [{"address": "not a host!"}], "transport": "udp"}),
            "targets[0]",
        ),
        (
            "/trunks",
            json!({"name": "t", "targets": [{"address": "192.0.2.1:5060"}], "transport": "udp", "keepalive_secs": 2}),
            "keepalive_secs",
        ),
        (
            "/trunks",
            json!({"name": "t", "targets": "192.0.2.1", "transport": "udp"}),
            "targets",
        ),
        (
            "/routes",
            json!({"name": "r", "to_trunk": "no-such-trunk"}),
            "to_trunk",
        ),
        (
            "/acls",
            json!({"name": "a", "rules": [{"action": "allow", "source": "10.0.0.0/33"}], "default_action": "deny"}),
            "rules[0].source",
        ),
        (
            "/acls",
            json!({"name": "a", "default_action": "deny", "listeners": ["udp:192.0.2.99:5060"]}),
            "listeners[0]",
        ),
        (
            "/users",
            json!({"username": "a:b", "realm": "r", "password": "p"}),
            "username",
        ),
        (
            "/bans",
            json!({"source": "example.com", "reason": "x"}),
            "source",
        ),
        ("/tokens", json!({"label": "x", "scope": "root"}), "scope"),
    ];
    for (path, body, field) in cases {
        let answer = admin.post(path, &body);
        assert_eq!(answer.status, 422, "{path} {body}: {}", answer.body);
        assert_eq!(answer.json()["error"], "invalid");
        assert_eq!(
            answer.json()["field"],
            field,
            "{path} {body}: {}",
            answer.body
        );
    }
    // The configuration file's trunk is read-only.
    let answer = admin.put(
        "/trunks/peer",
        &json!({"name": "peer", "targets": [{"address": "192.0.2.1:5060"}], "transport": "udp"}),
    );
    assert_eq!(answer.status, 409, "{}", answer.body);

    assert_eq!(audit_count(&admin), before, "nothing was changed");
    assert_eq!(admin.get("/trunks").body, trunks_before);
    assert_eq!(admin.get("/users").json()["items"], json!([]));
    assert_eq!(admin.get("/bans").json()["items"], json!([]));
}

/// Every route that changes something, with a body it would accept.
fn mutating_routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    let trunk =
        json!({"name": "t1", "targets": [{"address": "192.0.2.1:5060"}], "transport": "udp"});
    let route = json!({"name": "r1", "to_trunk": "peer"});
    let acl = json!({"name": "a1", "default_action": "allow"});
    vec![
        ("POST", "/trunks", Some(trunk.clone())),
        ("PUT", "/trunks/t1", Some(trunk)),
        ("DELETE", "/trunks/t1", None),
        ("POST", "/routes", Some(route.clone())),
        ("PUT", "/routes/r1", Some(route)),
        ("DELETE", "/routes/r1", None),
        ("POST", "/acls", Some(acl.clone())),
        ("PUT", "/acls/a1", Some(acl)),
        ("DELETE", "/acls/a1", None),
        (
            "POST",
            "/users",
            Some(json!({"username": "u", "realm": "r", "password": "p"})),
        ),
        ("PUT", "/users/r/u", Some(json!({"password": "q"}))),
        ("DELETE", "/users/r/u", None),
        (
            "POST",
            "/tokens",
            Some(json!({"label": "l", "scope": "read_write"})),
        ),
        ("DELETE", "/tokens/1", None),
        ("DELETE", "/calls/0-0", None),
        (
            "POST",
            "/bans",
            Some(json!({"source": "192.0.2.66", "reason": "r"})),
        ),
        ("DELETE", "/bans/1", None),
        ("POST", "/tls/reload", None),
        ("PUT", "/drain", Some(json!({"draining": true}))),
    ]
}

#[test]
fn no_token_gets_401_and_a_read_only_token_403_on_every_mutating_route() {
    let sbc = sbc_without_routes();
    let admin = sbc.admin();
    let created = admin.post("/tokens", &json!({"label": "viewer", "scope": "read_only"}));
    assert_eq!(created.status, 201, "{}", created.body);
    let viewer = admin.with_token(created.json()["token"].as_str());
    let anonymous = admin.with_token(None);
    let forged = admin.with_token(Some("sbc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    let before = audit_count(&admin);
    // Everything a change could touch (tokens without their last use, which reading
    // updates).
    let snapshot = |admin: &Admin| {
        let mut state = ["/trunks", "/routes", "/acls", "/users", "/bans", "/drain"]
            .map(|path| admin.get(path).body)
            .to_vec();
        let tokens = admin.get("/tokens").json();
        for token in tokens["items"].as_array().unwrap() {
            state.push(format!(
                "{} {} {}",
                token["id"], token["label"], token["scope"]
            ));
        }
        state
    };
    let state = snapshot(&admin);

    for (method, path, body) in mutating_routes() {
        let text = body.map(|body| body.to_string());
        let body = text.as_deref().map(|text| ("application/json", text));
        for (who, client, expected) in [
            ("no token", &anonymous, 401),
            ("a forged token", &forged, 401),
            ("a read-only token", &viewer, 403),
        ] {
            let answer = client.request(method, path, body, &[]);
            assert_eq!(
                answer.status, expected,
                "{method} {path} with {who}: {}",
                answer.body
            );
            if expected == 401 {
                assert_eq!(
                    answer.header("www-authenticate"),
                    Some("Bearer realm=\"sbc\"")
                );
            }
        }
    }
    // Reading works with the read-only token, not without one.
    assert_eq!(viewer.get("/trunks").status, 200);
    assert_eq!(anonymous.get("/trunks").status, 401);
    assert_eq!(anonymous.get("/cdrs/export").status, 401);
    assert_eq!(anonymous.get("/health").status, 200);

    assert_eq!(audit_count(&admin), before, "nothing was changed");
    assert_eq!(snapshot(&admin), state);
}

#[test]
fn calls_in_progress_are_listed_and_ended_and_drain_refuses_new_ones() {
    let sbc = Sbc::start(SbcConfig::new().with_routes(""));
    let net = sbc.config.net;
    let (callee, caller) = (net.host(2), net.host(3));
    let [callee_port] = free_ports(callee);
    let [caller_port] = free_ports(caller);
    let admin = sbc.admin();
    let sip = sbc.config.sip_address();
    let uas = Uas::start(callee, callee_port, 10);
    assert_eq!(
        admin.post("/trunks", &trunk("callee", uas.address)).status,
        201
    );
    assert_eq!(
        admin
            .post("/routes", &json!({"name": "all", "to_trunk": "callee"}))
            .status,
        201
    );

    // One long call, in the background.
    let caller_thread = std::thread::spawn(move || {
        uac(
            sip,
            caller,
            caller_port,
            "7000",
            1,
            30_000,
            Duration::from_secs(40),
        )
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let call = loop {
        let page = admin.get("/calls");
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.json()["items"].as_array().unwrap().clone();
        if let Some(call) = items.into_iter().find(|call| call["state"] == "answered") {
            break call;
        }
        assert!(
            Instant::now() < deadline,
            "no answered call listed\n{}",
            sbc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(call["trunk"], "callee");
    assert_eq!(call["b"]["peer"], uas.address.to_string());
    assert_eq!(call["a"]["transport"], "udp");
    assert!(
        call["a"]["codecs"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{call}"
    );
    assert_eq!(call["security"]["b"]["signalling"]["encrypted"], false);
    assert!(call["media"]["stats"]["streams"].is_array(), "{call}");
    let id = call["id"].as_str().unwrap();
    let one = admin.get(&format!("/calls/{id}"));
    assert_eq!(one.status, 200, "{}", one.body);

    // Drain: not ready, new calls refused, the call in progress goes on.
    let drain = admin.put("/drain", &json!({"draining": true}));
    assert_eq!(drain.status, 200, "{}", drain.body);
    assert_eq!(drain.json(), json!({"draining": true, "active_calls": 1}));
    assert_eq!(admin.get("/ready").status, 503);
    let refused = uac(
        sip,
        caller,
        caller_port + 1,
        "7001",
        1,
        0,
        Duration::from_secs(10),
    );
    assert!(!refused.succeeded());
    assert_eq!(admin.get(&format!("/calls/{id}")).status, 200);
    assert_eq!(admin.put("/drain", &json!({"draining": false})).status, 200);
    assert_eq!(admin.get("/ready").status, 200);

    // The operator ends the call: BYE on both legs, a CDR that says so, an audit record.
    let ended = admin.delete(&format!("/calls/{id}"));
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(admin.get(&format!("/calls/{id}")).status, 404);
    assert_eq!(admin.delete(&format!("/calls/{id}")).status, 404);
    let cdrs = wait_for_cdrs(&admin, "trunk=callee&disposition=answered", 1);
    assert_eq!(cdrs[0]["end_reason"], "admin_terminated");
    let audit = admin.get("/audit?limit=5").json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..3],
        ["terminate_call", "drain", "drain"],
        "{audit}"
    );
    assert!(
        audit["items"][0]["actor"]
            .as_str()
            .unwrap()
            .ends_with(":bootstrap"),
        "{audit}"
    );
    let _ = caller_thread.join();
}

/// The CDR of a call with media carries what the relay counted: SIPp `uac_pcap` plays
/// 236 G.711 packets (and an RFC 2833 event) to a SIPp UAS that echoes them back.
#[test]
fn the_cdr_of_a_call_with_media_has_the_relay_statistics() {
    let config = SbcConfig::new();
    let callee = config.net.host(2);
    let caller = config.net.host(3);
    let [callee_port, media_port] = free_ports(callee);
    let [caller_port] = free_ports(caller);
    let sbc = Sbc::start(config.with_peer(std::net::SocketAddr::new(callee, callee_port)));
    let mut uas = std::process::Command::new(common::require_tool("sipp"))
        .args(["-sn", "uas", "-rtp_echo", "-i", &callee.to_string()])
        .args(["-p", &callee_port.to_string(), "-mi", &callee.to_string()])
        .args(["-mp", &media_port.to_string(), "-m", "2", "-timeout", "60s"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp uas starts");
    std::thread::sleep(Duration::from_millis(300));
    let testdata = std::env::var("SBC_TESTDATA").map_or_else(
        |_| common::repo_root().join("../shared/testdata"),
        std::path::PathBuf::from,
    );
    let mut command = std::process::Command::new(common::require_tool("sipp"));
    command
        .current_dir(testdata.join("sipp"))
        .args([
            "-sf",
            "scenarios/uac_pcap.xml",
            &sbc.config.sip_address().to_string(),
        ])
        .args([
            "-s",
            "media",
            "-i",
            &caller.to_string(),
            "-p",
            &caller_port.to_string(),
        ])
        .args(["-mi", &caller.to_string(), "-m", "2", "-r", "10"])
        .args(["-timeout", "40s", "-timeout_error"]);
    let calls = common::run_bounded(&mut command, Duration::from_secs(45));
    let _ = uas.kill();
    let _ = uas.wait();
    assert!(
        calls.succeeded(),
        "{}\n{}",
        calls.describe(),
        sbc.log_tail()
    );

    let admin = sbc.admin();
    let cdrs = wait_for_cdrs(&admin, "disposition=answered", 2);
    assert_eq!(cdrs.len(), 2);
    for cdr in &cdrs {
        let stream = &cdr["media_stats"]["streams"][0];
        let count = |leg: &str, field: &str| stream[leg][field].as_u64().unwrap();
        assert!(count("a", "packets_received") >= 236, "{cdr}");
        assert!(count("b", "packets_sent") >= 236, "{cdr}");
        assert!(count("b", "packets_received") > 0, "the echo: {cdr}");
        assert!(count("a", "packets_sent") > 0, "the echo: {cdr}");
        // Nothing lost on loopback (RFC 3550 counts duplicates against losses, so the
        // DTMF packets sent three times make it negative).
        assert!(stream["a"]["rtp_lost"].as_i64().unwrap() <= 0, "{cdr}");
        assert!(
            stream["a"]["latched"]
                .as_str()
                .unwrap()
                .starts_with(&caller.to_string())
        );
        assert_eq!(cdr["security"]["a"]["media"]["protection"], "plain");
    }
}

/// With authentication on (the default), a call from an unknown source is challenged; a
/// trunk created through the API makes calls from its address trunk calls at once.
#[test]
fn a_trunk_created_through_the_api_is_trusted_as_a_source_at_once() {
    let config = SbcConfig::new()
        .with_security("[auth]\nenabled = true\n\n[security.rate_limits]\nenabled = false\n");
    let callee = config.net.host(2);
    let carrier = config.net.host(3);
    let [callee_port] = free_ports(callee);
    let [carrier_port] = free_ports(carrier);
    let sbc = Sbc::start(config.with_peer(std::net::SocketAddr::new(callee, callee_port)));
    let _uas = Uas::start(callee, callee_port, 10);
    let admin = sbc.admin();
    let sip = sbc.config.sip_address();

    let challenged = uac(
        sip,
        carrier,
        carrier_port,
        "8000",
        1,
        0,
        Duration::from_secs(10),
    );
    assert!(
        !challenged.succeeded(),
        "an unknown source must be challenged"
    );

    let target = std::net::SocketAddr::new(carrier, carrier_port);
    assert_eq!(admin.post("/trunks", &trunk("carrier", target)).status, 201);
    let calls = uac(
        sip,
        carrier,
        carrier_port,
        "8000",
        3,
        0,
        Duration::from_secs(20),
    );
    assert!(
        calls.succeeded(),
        "{}\n{}",
        calls.describe(),
        sbc.log_tail()
    );
    let cdrs = wait_for_cdrs(&admin, "trunk=carrier&disposition=answered", 3);
    assert_eq!(cdrs.len(), 3);
    assert_eq!(cdrs[0]["trunk_in"], "carrier");
    assert_eq!(cdrs[0]["trunk_out"], "peer");

    // Deleted, it is a stranger again.
    assert_eq!(admin.delete("/trunks/carrier").status, 200);
    let challenged = uac(
        sip,
        carrier,
        carrier_port,
        "8000",
        1,
        0,
        Duration::from_secs(10),
    );
    assert!(!challenged.succeeded());
}

/// A trunk's identity (STIR/SHAKEN) policy travels through the API like the rest of the
/// trunk; one that needs settings the file lacks (STI-CA roots to verify) is refused
/// naming the field.
#[test]
fn a_trunk_identity_policy_is_taken_and_checked_through_the_api() {
    let sbc = sbc_without_routes();
    let admin = sbc.admin();
    let mut spec = trunk("customer", "192.0.2.50:5060".parse().unwrap());
    spec["identity"] = json!({"customer": true, "domain": "retail", "incoming_identity": "remove"});
    let created = admin.post("/trunks", &spec);
    assert_eq!(created.status, 201, "{}", created.body);
    let stored = admin.get("/trunks/customer");
    assert_eq!(stored.status, 200, "{}", stored.body);
    let identity = &stored.json()["spec"]["identity"];
    assert_eq!(identity["customer"], true, "{}", stored.body);
    assert_eq!(identity["domain"], "retail");
    assert_eq!(identity["incoming_identity"], "remove");

    let mut verifying = trunk("partner", "192.0.2.51:5060".parse().unwrap());
    verifying["identity"] = json!({"verify": "enforce"});
    let refused = admin.post("/trunks", &verifying);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.json()["field"],
        "identity.verify",
        "{}",
        refused.body
    );
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("identity.trust_anchors"),
        "{}",
        refused.body
    );
    let mut unknown = trunk("partner", "192.0.2.51:5060".parse().unwrap());
    unknown["identity"] = json!({"verify": "always"});
    assert_eq!(admin.post("/trunks", &unknown).status, 422);
}
