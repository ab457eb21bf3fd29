//! Edge security with real peers: SIPp registering and calling with SIP Digest, a wrong
//! password and a replayed answer refused, and sipvicious (svmap, svwar, svcrack)
//! scanning and guessing passwords while legitimate calls go on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::sip::{first_line, header, status_code, udp_socket};
use common::{Sbc, SbcConfig, free_ports, repo_root, require_tool, run_bounded};
use sbc_core::auth::Algorithm;

/// Authentication on, scanners not banned at once (so that svcrack meets the failure
/// count), five failures ban for a minute.
const GUARDED: &str = r#"
[auth]
realm = "sbc.test"

[security]
ban_secs = 60
max_auth_failures = 5
scanner_user_agents = []
"#;

fn scenario(name: &str) -> String {
    repo_root()
        .join("tests/scenarios")
        .join(name)
        .display()
        .to_string()
}

fn sipp_uas(ip: IpAddr, port: u16, dir: &Path) -> std::process::Child {
    Command::new(require_tool("sipp"))
        .current_dir(dir)
        .args(["-sn", "uas", "-i", &ip.to_string(), "-p", &port.to_string()])
        .args(["-nostdin", "-timeout", "60s", "-bg"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp uas starts")
}

/// Runs a SIPp scenario with credentials; returns (successful, failed) calls.
#[allow(clippy::too_many_arguments)]
fn sipp_client(
    sbc: SocketAddr,
    ip: IpAddr,
    scenario_file: &str,
    user: &str,
    password: &str,
    calls: u32,
    rate: u32,
    dir: &Path,
) -> (u64, u64, String) {
    let [port] = free_ports(ip);
    let run = run_bounded(
        Command::new(require_tool("sipp"))
            .current_dir(dir)
            .arg(sbc.to_string())
            .args([
                "-sf",
                scenario_file,
                "-i",
                &ip.to_string(),
                "-p",
                &port.to_string(),
            ])
            .args([
                "-m",
                &calls.to_string(),
                "-r",
                &rate.to_string(),
                "-l",
                "50",
            ])
            .args(["-au", user, "-ap", password, "-key", "user", user])
            .args([
                "-nostdin",
                "-timeout",
                "40s",
                "-timeout_error",
                "-recv_timeout",
                "5000",
            ]),
        Duration::from_secs(60),
    );
    let count = |label: &str| {
        run.stdout
            .lines()
            .rev()
            .find(|line| line.trim_start().starts_with(label))
            .and_then(|line| line.rsplit('|').next())
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        count("Successful call"),
        count("Failed call"),
        run.describe(),
    )
}

#[test]
fn sipp_registers_and_calls_with_md5_digest_and_a_wrong_password_fails() {
    let config = SbcConfig::new().with_security(GUARDED);
    let callee = config.net.host(2);
    let caller = config.net.host(3);
    let [callee_port] = free_ports(callee);
    let sbc = Sbc::start_with_users(
        config.with_peer(SocketAddr::new(callee, callee_port)),
        &[("alice", "s3cret-pass")],
    );
    let traces = tempfile::tempdir().unwrap();
    let mut uas = sipp_uas(callee, callee_port, traces.path());
    let target = sbc.config.sip_address();

    let (ok, failed, log) = sipp_client(
        target,
        caller,
        &scenario("register_auth.xml"),
        "alice",
        "s3cret-pass",
        1,
        1,
        traces.path(),
    );
    assert_eq!(
        (ok, failed),
        (1, 0),
        "REGISTER with digest\n{log}\n{}",
        sbc.log_tail()
    );

    let (ok, failed, log) = sipp_client(
        target,
        caller,
        &scenario("uac_auth.xml"),
        "alice",
        "s3cret-pass",
        10,
        10,
        traces.path(),
    );
    assert_eq!(
        (ok, failed),
        (10, 0),
        "calls with digest\n{log}\n{}",
        sbc.log_tail()
    );

    // The wrong password never gets a call through: every answer is challenged again.
    let (ok, _, log) = sipp_client(
        target,
        config_host(&sbc, 4),
        &scenario("uac_auth.xml"),
        "alice",
        "wrong-pass",
        1,
        1,
        traces.path(),
    );
    assert_eq!(ok, 0, "a wrong password must not authenticate\n{log}");
    let _ = uas.kill();
    let _ = uas.wait();
}

fn config_host(sbc: &Sbc, last: u8) -> IpAddr {
    sbc.config.net.host(last)
}

/// One REGISTER transaction over UDP from `socket`; returns the response text.
fn register(
    socket: &std::net::UdpSocket,
    sbc: SocketAddr,
    cseq: u32,
    authorization: Option<&str>,
) -> String {
    let local = socket.local_addr().unwrap();
    let branch = format!("z9hG4bK{}{cseq}", common::sip::token());
    let auth =
        authorization.map_or_else(String::new, |value| format!("Authorization: {value}\r\n"));
    let message = format!(
        "REGISTER sip:{sbc} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@{ip}>;tag=replay1\r\nTo: <sip:bob@{ip}>\r\n\
         Call-ID: replay-test@{local}\r\nCSeq: {cseq} REGISTER\r\n\
         Contact: <sip:bob@{local}>\r\nExpires: 120\r\n{auth}Content-Length: 0\r\n\r\n",
        ip = sbc.ip()
    );
    socket.send_to(message.as_bytes(), sbc).unwrap();
    let mut buffer = vec![0u8; 65_535];
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    loop {
        let (len, _) = socket
            .recv_from(&mut buffer)
            .expect("an answer to REGISTER");
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        if status_code(&text).is_some_and(|code| code >= 200) {
            return text;
        }
    }
}

/// The Authorization answering the challenge of `algorithm` in `challenge_response`.
fn answer(
    challenge_response: &str,
    algorithm: Algorithm,
    sbc: SocketAddr,
    password: &str,
    nc: u32,
) -> String {
    let challenge = challenge_response
        .lines()
        .filter(|line| line.starts_with("WWW-Authenticate:"))
        .find(|line| line.contains(&format!("algorithm={algorithm},")))
        .unwrap_or_else(|| panic!("no {algorithm} challenge in\n{challenge_response}"));
    let param = |name: &str| {
        let start = challenge.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let rest = &challenge[start..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let uri = format!("sip:{sbc}");
    let ha1 = algorithm.ha1("bob", &realm, password).unwrap();
    let ha2 = algorithm.hash_hex(&[b"REGISTER", uri.as_bytes()]).unwrap();
    let nc = format!("{nc:08x}");
    let response = algorithm
        .hash_hex(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            nc.as_bytes(),
            b"0a4f113b",
            b"auth",
            ha2.as_bytes(),
        ])
        .unwrap();
    format!(
        "Digest username=\"bob\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={algorithm}, qop=auth, nc={nc}, cnonce=\"0a4f113b\""
    )
}

#[test]
fn sha256_answers_register_and_a_replayed_answer_is_refused() {
    let config = SbcConfig::new().with_security(GUARDED);
    let client = config.net.host(5);
    let sbc = Sbc::start_with_users(config, &[("bob", "bobs-password")]);
    let target = sbc.config.sip_address();
    let socket = udp_socket(client);

    let challenge = register(&socket, target, 1, None);
    assert_eq!(status_code(&challenge), Some(401), "{challenge}");
    // MD5 and SHA-256 are offered together, one challenge each.
    assert!(challenge.contains("algorithm=MD5,") && challenge.contains("algorithm=SHA-256,"));

    let sha256 = answer(&challenge, Algorithm::Sha256, target, "bobs-password", 1);
    let accepted = register(&socket, target, 2, Some(&sha256));
    assert_eq!(
        status_code(&accepted),
        Some(200),
        "{accepted}\n{}",
        sbc.log_tail()
    );
    assert!(header(&accepted, "Contact").is_some_and(|c| c.contains("expires=")));

    // The same answer again (a replay, in a new transaction): challenged, not accepted.
    let replayed = register(&socket, target, 3, Some(&sha256));
    assert_eq!(
        status_code(&replayed),
        Some(401),
        "{}",
        first_line(&replayed)
    );

    // The next count of the same nonce is fine; a wrong password is not.
    let next = answer(&challenge, Algorithm::Md5, target, "bobs-password", 2);
    assert_eq!(
        status_code(&register(&socket, target, 4, Some(&next))),
        Some(200)
    );
    let wrong = answer(&challenge, Algorithm::Md5, target, "guess", 3);
    let refused = register(&socket, target, 5, Some(&wrong));
    assert_eq!(status_code(&refused), Some(401));
    // An unknown user gets exactly the same kind of answer as a wrong password.
    let unknown =
        answer(&challenge, Algorithm::Md5, target, "guess", 4).replace("\"bob\"", "\"nobody\"");
    let unknown = register(&socket, target, 6, Some(&unknown));
    assert_eq!(first_line(&unknown), first_line(&refused));
}

/// Lines of `svwar`/`svcrack` output that report a finding (a row of their result
/// table).
fn findings(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|line| {
            line.starts_with('|') && !line.contains("Extension") && !line.contains("Password")
        })
        .collect()
}

#[test]
fn sipvicious_finds_nothing_and_is_banned_while_legitimate_calls_go_on() {
    let config = SbcConfig::new().with_security(GUARDED);
    let attacker = config.net.host(2);
    let caller = config.net.host(3);
    let callee = config.net.host(4);
    let [callee_port] = free_ports(callee);
    let sbc = Sbc::start_with_users(
        config.with_peer(SocketAddr::new(callee, callee_port)),
        &[("alice", "legit-pass"), ("1042", "correct-horse")],
    );
    let traces = tempfile::tempdir().unwrap();
    let mut uas = sipp_uas(callee, callee_port, traces.path());
    let target = sbc.config.sip_address();

    // Legitimate calls from another host, at the same time as the attack.
    let dir = traces.path().to_path_buf();
    let legit = std::thread::spawn(move || {
        sipp_client(
            target,
            caller,
            &scenario("uac_auth.xml"),
            "alice",
            "legit-pass",
            100,
            10,
            &dir,
        )
    });

    // svwar: extensions 1000-1100 (1042 exists) answer exactly like missing ones.
    let svwar = run_bounded(
        Command::new(require_tool("svwar"))
            .args([
                "-e",
                "1000-1100",
                "-m",
                "REGISTER",
                "-b",
                &attacker.to_string(),
            ])
            .args(["-p", &target.port().to_string(), &target.ip().to_string()]),
        Duration::from_secs(60),
    );
    let found = findings(&svwar.stdout);
    assert!(
        found.is_empty(),
        "svwar found extensions: {found:?}\n{}",
        svwar.describe()
    );

    // svcrack: the right password is 40th in the list; five failures ban the source.
    let wordlist = traces.path().join("words.txt");
    let mut words: Vec<String> = (0..39).map(|n| format!("guess{n}")).collect();
    words.push("correct-horse".into());
    words.extend((40..60).map(|n| format!("guess{n}")));
    std::fs::write(&wordlist, words.join("\n") + "\n").unwrap();
    let svcrack = run_bounded(
        Command::new(require_tool("svcrack"))
            .args(["-u", "1042", "-d", &wordlist.display().to_string()])
            .args([
                "-b",
                &attacker.to_string(),
                "-p",
                &target.port().to_string(),
            ])
            .arg(target.ip().to_string()),
        Duration::from_secs(60),
    );
    assert!(
        !svcrack.stdout.contains("correct-horse") && !svcrack.stderr.contains("correct-horse"),
        "svcrack found the password\n{}",
        svcrack.describe()
    );
    // sipvicious 0.3.3 sends from the address its -b names for svwar, but svcrack's
    // socket may leave from 127.0.0.1: whichever it used is the one banned, never the
    // legitimate caller.
    let log = sbc.log();
    let bans: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("source banned") && line.contains("auth_failures"))
        .collect();
    assert!(
        !bans.is_empty(),
        "svcrack was not banned\n{}",
        sbc.log_tail()
    );
    assert!(
        bans.iter()
            .all(|line| !line.contains(&format!("source={caller} "))),
        "the legitimate caller was banned: {bans:?}"
    );
    let _ = attacker;

    let (ok, failed, legit_log) = legit.join().unwrap();
    assert!(
        ok * 100 >= (ok + failed).max(100) * 99,
        "legitimate calls: {ok} ok, {failed} failed\n{legit_log}"
    );
    let _ = uas.kill();
    let _ = uas.wait();
}

#[test]
fn svmap_is_banned_as_a_scanner() {
    // Default security: scanner User-Agents ban at once.
    let config = SbcConfig::new().with_security("[auth]\nrealm = \"sbc.test\"\n");
    let attacker = config.net.host(2);
    let sbc = Sbc::start(config);
    let target = sbc.config.sip_address();
    let svmap = run_bounded(
        Command::new(require_tool("svmap"))
            .args([
                "-b",
                &attacker.to_string(),
                "-p",
                &target.port().to_string(),
            ])
            .arg(target.ip().to_string()),
        Duration::from_secs(60),
    );
    assert!(
        findings(&svmap.stdout).is_empty(),
        "svmap found the SBC\n{}",
        svmap.describe()
    );
    let log = sbc.log();
    assert!(
        log.contains("source banned") && log.contains("scanner"),
        "{}",
        sbc.log_tail()
    );
}
