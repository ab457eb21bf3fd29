//! MESSAGE (RFC 3428) through the SBC with real peers: sipsak sends, authenticating
//! with digest; the SBC relays it to a SIPp UAS behind the trunk, which answers 200. A
//! MESSAGE whose Date is older than the window is refused `403 Stale Date`, except from
//! a trunk marked store-and-forward.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::sipp::scenario;
use common::{Sbc, SbcConfig, free_ports, require_tool, run_bounded};

#[test]
fn sipsak_messages_are_relayed_and_stale_ones_refused() {
    let config = SbcConfig::new();
    let callee = config.net.host(2);
    let phone = config.net.host(3);
    let gateway = config.net.host(5);
    let [uas_port] = free_ports(callee);
    let config = config
        .with_peer(SocketAddr::new(callee, uas_port))
        .with_security(
            "[auth]\nrealm = \"sbc.test\"\n\n[security]\nmessage_date_window_secs = 600\n\
             scanner_user_agents = []\n",
        )
        .with_extra(&format!(
            "[[trunk]]\nname = \"sms\"\ntargets = [\"{gateway}:5060\"]\ntransport = \"udp\"\n\
             keepalive_secs = 0\nstore_and_forward = true\n"
        ));
    let sbc = Sbc::start_with_users(config, &[("alice", "alice-pw")]);
    let target = sbc.config.sip_address();
    let traces = tempfile::tempdir().unwrap();
    let dir = traces.path().to_path_buf();
    // The recipient: exactly two messages reach it.
    let uas = std::thread::spawn(move || {
        run_bounded(
            Command::new(require_tool("sipp"))
                .current_dir(dir)
                .args(["-sf", &scenario("uas_message.xml")])
                .args(["-i", &callee.to_string(), "-p", &uas_port.to_string()])
                .args(["-m", "2", "-trace_msg", "-nostdin", "-timeout", "30s"]),
            Duration::from_secs(40),
        )
    });
    std::thread::sleep(Duration::from_millis(300));

    // sipsak's message mode loops a MESSAGE back to itself (and crashes when it is
    // answered by someone else): its shoot mode sends the request from a file instead.
    let sipsak = |from: std::net::IpAddr, body: &str, date: Option<&str>, credentials: bool| {
        let [port] = free_ports(from);
        let date = date.map_or_else(String::new, |date| format!("Date: {date}\r\n"));
        let request = format!(
            "MESSAGE sip:1000@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {from}:{port};branch=z9hG4bK-{port}-{len};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@{ip}>;tag=sipsak{port}\r\n\
             To: <sip:1000@{ip}>\r\nCall-ID: sipsak-{port}-{len}@{from}\r\nCSeq: 1 MESSAGE\r\n\
             {date}Content-Type: text/plain\r\nContent-Length: {len}\r\n\r\n{body}",
            ip = target.ip(),
            len = body.len(),
        );
        let file = traces.path().join(format!("message-{port}.txt"));
        std::fs::write(&file, request).unwrap();
        let mut command = Command::new(require_tool("sipsak"));
        command
            .arg("-f")
            .arg(&file)
            .args(["-s", &format!("sip:1000@{target}"), "-vv"])
            .args(["--local-ip", &from.to_string(), "-l", &port.to_string()]);
        if credentials {
            command.args(["-u", "alice", "-a", "alice-pw"]);
        }
        run_bounded(&mut command, Duration::from_secs(20))
    };
    let old = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(7_200));

    // A user's message: 407, answered, relayed, 200.
    let sent = sipsak(phone, "hello from sipsak", None, true);
    assert!(
        sent.succeeded() && sent.stdout.contains("SIP/2.0 200 OK"),
        "{}\n{}",
        sent.describe(),
        sbc.log_tail()
    );
    // Two hours old: refused, and said why (before any challenge).
    let stale = sipsak(phone, "an old one", Some(&old), true);
    assert!(
        stale.stdout.contains("403 Stale Date"),
        "{}\n{}",
        stale.describe(),
        sbc.log_tail()
    );
    // The SMS gateway stores and forwards: its old message is delivered.
    let stored = sipsak(gateway, "stored for two hours", Some(&old), false);
    assert!(
        stored.succeeded() && stored.stdout.contains("SIP/2.0 200 OK"),
        "{}\n{}",
        stored.describe(),
        sbc.log_tail()
    );

    let uas = uas.join().unwrap();
    assert!(uas.succeeded(), "the UAS\n{}", uas.describe());
    let received: String = std::fs::read_dir(traces.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .ends_with("_messages.log")
        })
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .collect();
    assert!(received.contains("hello from sipsak"), "{received}");
    assert!(received.contains("stored for two hours"), "{received}");
    assert!(!received.contains("an old one"), "{received}");
    // The sender's address never reaches the recipient.
    assert!(!received.contains(&phone.to_string()), "{received}");
}
