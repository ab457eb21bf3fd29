//! ACL objects of the admin API enforced by the real binary, at once and without a
//! restart: on a SIP listener (a denied source's requests are dropped by the admission
//! gate and counted in `/metrics`, an allowed one is served, together with the file's
//! own listener ACL), and on a trunk (a source its ACL denies is no longer taken for the
//! trunk, so it is challenged like any stranger).
//!
//! Loopback hosts of each test's own: the SBC on `.1`, the callee (SIPp UAS) on `.2`,
//! allowed callers on `.3`, denied ones on `.4` (and `.9`, refused by the file).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::http::Admin;
use common::sip::{request, status_code, udp_socket, udp_transaction};
use common::sipp::{Uas, uac};
use common::{Sbc, SbcConfig, free_ports};
use serde_json::json;

/// Sends an OPTIONS from `from` over UDP; the final status, or `None` when nothing came
/// back within `wait`.
fn options(sbc: SocketAddr, from: IpAddr, wait: Duration) -> Option<u16> {
    let socket = udp_socket(from);
    let local = socket.local_addr().unwrap();
    let ping = request("OPTIONS", sbc, "UDP", local);
    udp_transaction(&socket, sbc, &ping, wait)
        .ok()
        .and_then(|responses| responses.last().and_then(|last| status_code(last)))
}

fn acl_denied(admin: &Admin) -> f64 {
    admin.metric("sbc_admission_dropped_total{reason=\"acl_denied\"}")
}

#[test]
fn a_listener_acl_created_through_the_api_drops_denied_sources_at_once() {
    let config = SbcConfig::new();
    let callee = config.net.host(2);
    let allowed = config.net.host(3);
    let denied = config.net.host(4);
    let refused_by_file = config.net.host(9);
    let [callee_port] = free_ports(callee);
    let [caller_port] = free_ports(allowed);
    // A second UDP listener with an ACL of the file's (everything but `.9`), to show
    // that a source must pass the file's ACL and the API's.
    let [second_port] = free_ports(config.ip);
    let second = SocketAddr::new(config.ip, second_port);
    let config = config
        .with_peer(SocketAddr::new(callee, callee_port))
        .with_extra(&format!(
            "[[sip.listen]]\ntransport = \"udp\"\naddress = \"{second}\"\n\
             acl = {{ deny = [\"{refused_by_file}\"] }}\n"
        ));
    let sbc = Sbc::start(config);
    let _uas = Uas::start(callee, callee_port, 10);
    let admin = sbc.admin();
    let sip = sbc.config.sip_address();
    let wait = Duration::from_secs(2);

    assert_eq!(options(sip, denied, wait), Some(200), "{}", sbc.log_tail());
    assert_eq!(options(second, refused_by_file, wait), None);
    let before = acl_denied(&admin);

    let acl = json!({
        "name": "no-stranger",
        "rules": [
            {"action": "allow", "source": callee.to_string()},
            {"action": "allow", "source": allowed.to_string()},
            {"action": "deny", "source": format!("{}/29", net_base(denied))},
            {"action": "deny", "source": "2001:db8::/32"}
        ],
        "default_action": "allow",
        "listeners": [format!("udp:{sip}"), format!("udp:{second}")]
    });
    let created = admin.post("/acls", &acl);
    assert_eq!(created.status, 201, "{}", created.body);

    // In force for the next request: the denied source is dropped without an answer,
    // on both listeners; the allowed one is served, calls included.
    assert_eq!(options(sip, denied, wait), None, "{}", sbc.log_tail());
    assert_eq!(options(second, denied, wait), None);
    assert_eq!(options(sip, allowed, wait), Some(200));
    assert_eq!(options(second, allowed, wait), Some(200));
    let call = uac(
        sip,
        allowed,
        caller_port,
        "1000",
        1,
        0,
        Duration::from_secs(15),
    );
    assert!(call.succeeded(), "{}\n{}", call.describe(), sbc.log_tail());
    // The file's ACL still holds on its listener.
    assert_eq!(options(second, refused_by_file, wait), None);
    let dropped = acl_denied(&admin) - before;
    // Each unanswered OPTIONS is sent and retransmitted within `wait`.
    assert!(dropped >= 6.0, "acl_denied moved by {dropped}");

    // Replaced: the ACL no longer names the main listener.
    let mut narrowed = acl.clone();
    narrowed["listeners"] = json!([format!("udp:{second}")]);
    let replaced = admin.put("/acls/no-stranger", &narrowed);
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(options(sip, denied, wait), Some(200));
    assert_eq!(options(second, denied, wait), None);

    // Deleted: the denied source is served again (the file's ACL stays).
    assert_eq!(admin.delete("/acls/no-stranger").status, 200);
    assert_eq!(options(second, denied, wait), Some(200));
    assert_eq!(options(second, refused_by_file, wait), None);
}

/// The network address of a loopback host's `/24`.
fn net_base(host: IpAddr) -> IpAddr {
    match host {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        v6 => v6,
    }
}

#[test]
fn an_acl_on_a_trunk_decides_which_sources_are_the_trunk_at_once() {
    let config = SbcConfig::new()
        .with_security("[auth]\nenabled = true\n\n[security.rate_limits]\nenabled = false\n");
    let callee = config.net.host(2);
    let carrier = config.net.host(3);
    let other = config.net.host(4);
    let [callee_port] = free_ports(callee);
    let [carrier_port] = free_ports(carrier);
    let [other_port] = free_ports(other);
    let sbc = Sbc::start(config.with_peer(SocketAddr::new(callee, callee_port)));
    let _uas = Uas::start(callee, callee_port, 10);
    let admin = sbc.admin();
    let sip = sbc.config.sip_address();
    let call = |from: IpAddr, port: u16| {
        uac(sip, from, port, "8000", 1, 0, Duration::from_secs(10)).succeeded()
    };

    let trunk = json!({
        "name": "carrier",
        "targets": [{"address": SocketAddr::new(carrier, carrier_port).to_string()}],
        "transport": "udp",
        "keepalive_secs": 0
    });
    assert_eq!(admin.post("/trunks", &trunk).status, 201);
    assert!(call(carrier, carrier_port), "{}", sbc.log_tail());
    assert!(!call(other, other_port), "a stranger is challenged");

    // The ACL takes the target away from the trunk and gives it the other host.
    let acl = json!({
        "name": "carrier-sources",
        "rules": [
            {"action": "deny", "source": carrier.to_string()},
            {"action": "allow", "source": other.to_string()}
        ],
        "default_action": "deny",
        "trunks": ["carrier"]
    });
    let created = admin.post("/acls", &acl);
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(
        !call(carrier, carrier_port),
        "the denied target is challenged"
    );
    assert!(call(other, other_port), "{}", sbc.log_tail());

    // A trunk an ACL names cannot be deleted; once the ACL is gone, things are as before.
    assert_eq!(admin.delete("/trunks/carrier").status, 409);
    assert_eq!(admin.delete("/acls/carrier-sources").status, 200);
    assert!(call(carrier, carrier_port), "{}", sbc.log_tail());
    assert!(!call(other, other_port));
}

#[test]
fn an_acl_rule_signalling_cannot_enforce_is_refused_naming_it() {
    let sbc = Sbc::start(SbcConfig::new());
    let admin = sbc.admin();
    let acl = json!({
        "name": "odd",
        "rules": [{"action": "deny", "source": "::ffff:192.0.2.0/64"}],
        "default_action": "allow",
        "listeners": [format!("udp:{}", sbc.config.sip_address())]
    });
    let refused = admin.post("/acls", &acl);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.json()["field"],
        "rules[0].source",
        "{}",
        refused.body
    );
    assert_eq!(admin.get("/acls/odd").status, 404);
}
