//! Every run-time key of a `[[trunk]]` through the admin API, on the real binary, each
//! in force for the next call without a restart: `max_calls`, `headers`, `srtp`,
//! `keepalive_secs`, `acl`, `require_tls` and `store_and_forward`; and the problems of
//! each refused `422` naming the field.
//!
//! The peers are plain UDP sockets of the test (what the SBC sends them is read
//! directly): the SBC on `.1`, the trunk's target on `.2`, the caller on `.3`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use common::http::Admin;
use common::sip::{header, status_code, token, udp_socket};
use common::{Sbc, SbcConfig};
use serde_json::{Value, json};

/// A raw UDP endpoint of the test.
struct Peer {
    socket: UdpSocket,
}

impl Peer {
    fn bind(ip: IpAddr) -> Peer {
        let socket = udp_socket(ip);
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Peer { socket }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// The next message whose first line starts with `start`, within `wait`.
    fn next(&self, start: &str, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        let mut buffer = vec![0_u8; 65_536];
        while Instant::now() < deadline {
            if let Ok((length, _)) = self.socket.recv_from(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
                if text.starts_with(start) {
                    return Some(text);
                }
            }
        }
        None
    }

    /// The first final response (status ≥ 200) to the request with `call_id`.
    fn final_status(&self, call_id: &str, wait: Duration) -> Option<u16> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let response = self.next("SIP/2.0 ", left)?;
            let status = status_code(&response)?;
            if header(&response, "Call-ID") == Some(call_id) && status >= 200 {
                return Some(status);
            }
        }
        None
    }

    fn send(&self, text: &str, to: SocketAddr) {
        self.socket.send_to(text.as_bytes(), to).unwrap();
    }
}

/// A new call from `caller` to `user`, with `extra` header lines; returns its Call-ID.
fn invite(caller: &Peer, sbc: SocketAddr, user: &str, extra: &str) -> String {
    let local = caller.addr();
    let call_id = format!("{}@{}", token(), local.ip());
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = local.ip()
    );
    caller.send(
        &format!(
            "INVITE sip:{user}@{sbc} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@{ip}>;tag={tag}\r\nTo: <sip:{user}@{sbc}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\n\
             {extra}Content-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{sdp}",
            branch = token(),
            tag = token(),
            ip = local.ip(),
            length = sdp.len(),
        ),
        sbc,
    );
    call_id
}

/// A MESSAGE from `sender` to `user` dated an hour and a half ago; returns its Call-ID.
fn stale_message(sender: &Peer, sbc: SocketAddr, user: &str) -> String {
    let local = sender.addr();
    let call_id = format!("{}@{}", token(), local.ip());
    let date = httpdate(SystemTime::now() - Duration::from_secs(5_400));
    let body = "late news";
    sender.send(
        &format!(
            "MESSAGE sip:{user}@{sbc} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:gateway@{ip}>;tag={tag}\r\nTo: <sip:{user}@{sbc}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\nDate: {date}\r\n\
             Content-Type: text/plain\r\nContent-Length: {length}\r\n\r\n{body}",
            branch = token(),
            tag = token(),
            ip = local.ip(),
            length = body.len(),
        ),
        sbc,
    );
    call_id
}

/// An RFC 7231 IMF-fixdate.
fn httpdate(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = secs / 86_400;
    let (hour, minute, second) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month_name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {day:02} {month_name} {year} {hour:02}:{minute:02}:{second:02} GMT")
}

fn put(admin: &Admin, path: &str, body: &Value) {
    let response = admin.put(path, body);
    assert_eq!(response.status, 200, "{path}: {}", response.body);
}

#[test]
fn every_runtime_trunk_key_set_through_the_api_applies_to_the_next_call() {
    let config = SbcConfig::new();
    let target = Peer::bind(config.net.host(2));
    let caller = Peer::bind(config.net.host(3));
    let sbc = Sbc::start(config);
    let admin = sbc.admin();
    let sip = sbc.config.sip_address();
    let wait = Duration::from_secs(3);

    let mut api = json!({
        "name": "api",
        "targets": [{"address": target.addr().to_string()}],
        "transport": "udp",
        "keepalive_secs": 0,
        "max_calls": 1,
        "headers": {"deny": ["X-Secret"]},
        "srtp": {"sdes": "require", "dtls": "forbid", "sdes_over_insecure_signalling": true}
    });
    let created = admin.post("/trunks", &api);
    assert_eq!(created.status, 201, "{}", created.body);
    let stored = admin.get("/trunks/api").json();
    assert_eq!(stored["spec"]["max_calls"], 1, "{stored}");
    assert_eq!(stored["spec"]["srtp"]["sdes"], "require", "{stored}");
    let route = json!({"name": "to-api", "priority": 1, "user_prefix": "7", "to_trunk": "api"});
    assert_eq!(admin.post("/routes", &route).status, 201);

    // headers and srtp: what the trunk receives.
    invite(
        &caller,
        sip,
        "7001",
        "X-Secret: s3cr3t\r\nX-Other: kept\r\n",
    );
    let first = target
        .next("INVITE ", wait)
        .unwrap_or_else(|| panic!("no INVITE reached the trunk\n{}", sbc.log_tail()));
    assert!(header(&first, "X-Secret").is_none(), "{first}");
    assert_eq!(header(&first, "X-Other"), Some("kept"), "{first}");
    assert!(
        first.contains("RTP/SAVP") && first.contains("a=crypto:"),
        "{first}"
    );

    // max_calls: the first call (unanswered) holds the trunk's only place.
    let refused = invite(&caller, sip, "7002", "");
    assert_eq!(caller.final_status(&refused, wait), Some(503));
    assert!(target.next("INVITE ", Duration::from_millis(300)).is_none());

    // Replaced: two places, another header policy, no SRTP policy of its own.
    api["max_calls"] = json!(2);
    api["headers"] = json!({"deny": ["X-Other"]});
    api.as_object_mut().unwrap().remove("srtp");
    put(&admin, "/trunks/api", &api);
    invite(
        &caller,
        sip,
        "7003",
        "X-Secret: s3cr3t\r\nX-Other: kept\r\n",
    );
    let third = target
        .next("INVITE ", wait)
        .unwrap_or_else(|| panic!("the raised limit let nothing through\n{}", sbc.log_tail()));
    assert_eq!(header(&third, "X-Secret"), Some("s3cr3t"), "{third}");
    assert!(header(&third, "X-Other").is_none(), "{third}");
    assert!(
        third.contains("RTP/AVP") && !third.contains("a=crypto:"),
        "{third}"
    );

    // keepalive_secs: OPTIONS probes start.
    api["keepalive_secs"] = json!(5);
    put(&admin, "/trunks/api", &api);
    assert!(
        target.next("OPTIONS ", Duration::from_secs(8)).is_some(),
        "no keep-alive probe\n{}",
        sbc.log_tail()
    );

    // acl (the caller's address is the trunk's by its allow list) and require_tls.
    let mut gateway = json!({
        "name": "gateway",
        "targets": [{"address": "192.0.2.77:5060"}],
        "transport": "udp",
        "keepalive_secs": 0,
        "acl": {"allow": [format!("{}/32", caller.addr().ip())]},
        "require_tls": true
    });
    assert_eq!(admin.post("/trunks", &gateway).status, 201);
    let over_udp = stale_message(&caller, sip, "7004");
    assert_eq!(caller.final_status(&over_udp, wait), Some(403));

    // store_and_forward: its stale MESSAGE is refused until it is set.
    gateway["require_tls"] = json!(false);
    put(&admin, "/trunks/gateway", &gateway);
    let stale = stale_message(&caller, sip, "7005");
    assert_eq!(caller.final_status(&stale, wait), Some(403));
    assert!(
        target
            .next("MESSAGE ", Duration::from_millis(300))
            .is_none()
    );
    gateway["store_and_forward"] = json!(true);
    put(&admin, "/trunks/gateway", &gateway);
    stale_message(&caller, sip, "7006");
    let relayed = target
        .next("MESSAGE ", wait)
        .unwrap_or_else(|| panic!("the stale MESSAGE was not relayed\n{}", sbc.log_tail()));
    assert!(relayed.contains("late news"), "{relayed}");
    // Without the allow entry the caller is no trunk, and stale again.
    gateway.as_object_mut().unwrap().remove("acl");
    put(&admin, "/trunks/gateway", &gateway);
    let stranger = stale_message(&caller, sip, "7007");
    assert_eq!(caller.final_status(&stranger, wait), Some(403));
}

#[test]
fn bad_trunk_keys_are_refused_naming_the_field_and_change_nothing() {
    let sbc = Sbc::start(SbcConfig::new());
    let admin = sbc.admin();
    let base = json!({
        "name": "t",
        "targets": [{"address": "192.0.2.10:5060"}],
        "transport": "udp"
    });
    let with = |key: &str, value: Value| {
        let mut spec = base.clone();
        spec[key] = value;
        spec
    };
    for (spec, field) in [
        (
            with("acl", json!({"allow": ["10.0.0.0/33"]})),
            "acl.allow[0]",
        ),
        (
            with("acl", json!({"deny": ["10.0.0.1", "nope"]})),
            "acl.deny[1]",
        ),
        (
            with(
                "srtp",
                json!({"suites": ["AES_CM_128_HMAC_SHA1_80", "ROT13"]}),
            ),
            "srtp.suites[1]",
        ),
        (
            with("srtp", json!({"sdes": "require", "dtls": "require"})),
            "srtp.dtls",
        ),
        (with("srtp", json!({"sdes": "sometimes"})), "srtp.sdes"),
        (with("max_calls", json!(-1)), "max_calls"),
        (with("require_tls", json!("yes")), "require_tls"),
        (with("keepalive_secs", json!(2)), "keepalive_secs"),
        (
            with("headers", json!({"allow": ["Bad Name"]})),
            "headers.allow[0]",
        ),
    ] {
        let refused = admin.post("/trunks", &spec);
        assert_eq!(refused.status, 422, "{spec}: {}", refused.body);
        assert_eq!(refused.json()["field"], field, "{spec}: {}", refused.body);
    }
    assert_eq!(admin.get("/trunks/t").status, 404);
    // Every key at once is taken and read back as sent.
    let full = json!({
        "name": "t",
        "targets": [{"address": "192.0.2.10:5060", "priority": 0, "weight": 1}],
        "transport": "tls",
        "trusted": true,
        "keepalive_secs": 30,
        "headers": {"allow": ["X-Account"]},
        "acl": {"allow": ["2001:db8::/32"], "deny": ["2001:db8:bad::/48"]},
        "require_tls": true,
        "require_client_cert": true,
        "max_calls": 10,
        "store_and_forward": true,
        "srtp": {"sdes": "prefer", "dtls": "allow", "suites": ["AEAD_AES_256_GCM"],
                 "sdes_over_insecure_signalling": false}
    });
    let created = admin.post("/trunks", &full);
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(admin.get("/trunks/t").json()["spec"], full);
}
