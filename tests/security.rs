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
use common::{Sbc, SbcConfig, free_ports, require_tool, run_bounded};
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

use common::sipp::scenario;

fn sipp_uas(ip: IpAddr, port: u16, dir: &Path) -> std::process::Child {
    common::sipp::uas(ip, port, dir)
}

/// Runs a SIPp scenario with credentials (at most 50 calls at once); returns (successful,
/// failed) calls and SIPp's output.
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
    let run = common::sipp::client(
        sbc,
        ip,
        scenario_file,
        (user, password),
        calls,
        rate,
        50,
        dir,
    );
    (run.successful, run.failed, run.log)
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

/// The sources the SBC logged bans of, with their reasons.
fn bans_in(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter(|line| line.contains("source banned"))
        .map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix(&format!("{name}=")))
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_owned()
            };
            (field("source"), field("reason"))
        })
        .collect()
}

/// The attacker (sipvicious) and a legitimate caller (SIPp) on two addresses of their
/// own, at the same time. The whole test runs in a network namespace of its own: svcrack
/// 0.3.3 ignores its `-b` option (it never hands it to its socket), so it sends from an
/// unbound socket and the kernel picks the source address; in the namespace, the route to
/// the SBC's address names the attacker's address as the source, so every attack packet
/// comes from the attacker's own address, as it would from a real attacker's host.
#[test]
fn sipvicious_finds_nothing_and_is_banned_while_legitimate_calls_go_on() {
    let netns = common::netns::NetNs::enter("sipvicious");
    let config = SbcConfig::new().with_security(GUARDED);
    let attacker = config.net.host(2);
    let caller = config.net.host(3);
    let callee = config.net.host(4);
    netns.ip(&[
        "route",
        "add",
        "local",
        &format!("{}/32", config.ip),
        "dev",
        "lo",
        "src",
        &attacker.to_string(),
        "table",
        "local",
    ]);
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
    // Exactly the attacker's address is banned, for failed authentications; never the
    // legitimate caller, never 127.0.0.1.
    let bans = bans_in(&sbc.log());
    assert_eq!(
        bans,
        vec![(attacker.to_string(), "auth_failures".to_owned())],
        "{}",
        sbc.log_tail()
    );

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

/// A real client accepts the SBC's challenges: baresip (libre's digest, MD5) registers
/// with the 401 challenge and dials with the 407 one; the call reaches a SIPp UAS on the
/// trunk and is answered. Then a call from the trunk to the registered user reaches the
/// phone on the flow it registered on.
///
/// Debian's baresip 1.0 (libre 1.1.0) gives up on a 401/407 that carries any challenge
/// whose algorithm it does not know ("Function not implemented"), even next to an MD5 one
/// it could answer, as RFC 8760 §2.4 expects of it. So the SBC is configured as an
/// operator with such phones must (docs/security.md): `auth.algorithms = ["MD5"]`.
#[test]
fn baresip_registers_and_calls_with_digest_and_is_reached_where_it_registered() {
    use common::baresip::{self, Role, Softphone};

    let config = SbcConfig::new().with_security(&GUARDED.replace(
        "realm = \"sbc.test\"",
        "realm = \"sbc.test\"\nalgorithms = [\"MD5\"]",
    ));
    let trunk = config.net.host(2);
    let phone_ip = config.net.host(3);
    let [uas_port, uac_port] = free_ports(trunk);
    let [phone_port] = free_ports(phone_ip);
    let sbc = Sbc::start_with_users(
        config.with_peer(SocketAddr::new(trunk, uas_port)),
        &[("alice", "alice-secret")],
    );
    let target = sbc.config.sip_address();
    let traces = tempfile::tempdir().unwrap();
    let mut uas = sipp_uas(trunk, uas_port, traces.path());
    let tone = traces.path().join("tone.wav");
    baresip::write_tone(&tone, 800, 20);

    let mut phone = Softphone::start_registered(
        "alice",
        SocketAddr::new(phone_ip, phone_port),
        &tone,
        &Role::Caller {
            dial: format!("sip:callee@{target}"),
        },
        target,
        ("alice", "alice-secret"),
    );
    let wait = |phone: &mut Softphone, needle: &str| {
        if let Err(error) = phone.wait_for(needle, Duration::from_secs(15)) {
            panic!("{error}\n{}", sbc.log_tail());
        }
    };
    wait(&mut phone, "Call established");
    wait(&mut phone, "200 OK");
    let received = phone.received_sip();
    let challenges = |status: &str, header: &str| {
        received
            .iter()
            .filter(|message| message.starts_with(status) && message.contains(header))
            .count()
    };
    assert!(
        challenges("SIP/2.0 401", "WWW-Authenticate: Digest") >= 1,
        "no 401 challenge reached baresip\n{}",
        phone.log_tail()
    );
    assert!(
        challenges("SIP/2.0 407", "Proxy-Authenticate: Digest") >= 1,
        "no 407 challenge reached baresip\n{}",
        phone.log_tail()
    );
    let registered = received.iter().any(|message| {
        message.starts_with("SIP/2.0 200")
            && message.contains("REGISTER")
            && message.contains(";expires=")
    });
    assert!(
        registered,
        "baresip was not registered\n{}",
        phone.log_tail()
    );
    let answered = received
        .iter()
        .any(|message| message.starts_with("SIP/2.0 200") && message.contains(" INVITE"));
    assert!(answered, "the call was not answered\n{}", phone.log_tail());
    // baresip hangs up (BYE) and exits.
    phone
        .terminate(Duration::from_secs(10))
        .unwrap_or_else(|error| panic!("{error}"));
    let _ = uas.kill();
    let _ = uas.wait();

    // Registered, and reachable: the same account as a callee, and SIPp on the trunk
    // calling sip:alice@<SBC>.
    let [phone_port] = free_ports(phone_ip);
    let mut callee = Softphone::start_registered(
        "alice",
        SocketAddr::new(phone_ip, phone_port),
        &tone,
        &Role::Callee,
        target,
        ("alice", "alice-secret"),
    );
    wait(&mut callee, "200 OK");
    let run = run_bounded(
        Command::new(require_tool("sipp"))
            .current_dir(traces.path())
            .arg(target.to_string())
            .args(["-sn", "uac", "-s", "alice", "-i", &trunk.to_string()])
            .args(["-p", &uac_port.to_string(), "-m", "1", "-d", "1000"])
            .args(["-nostdin", "-timeout", "30s", "-timeout_error"]),
        Duration::from_secs(40),
    );
    assert!(
        run.succeeded(),
        "a call to the registered user failed\n{}\n{}\n{}",
        run.describe(),
        callee.log_tail(),
        sbc.log_tail()
    );
    let to_phone = callee
        .received_sip()
        .into_iter()
        .find(|message| message.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("no INVITE reached the phone\n{}", callee.log_tail()));
    // baresip registers `sip:alice-<id>@<its address>`: the call comes to that contact.
    let request_line = to_phone.lines().next().unwrap_or_default();
    assert!(
        request_line.starts_with("INVITE sip:alice-")
            && request_line.contains(&format!("@{phone_ip}:{phone_port}")),
        "the call did not go to the registered contact:\n{to_phone}"
    );
    wait(&mut callee, "Call established");
}

/// SHA-256 digest with a real client: linphone (belle-sip) is offered MD5 and SHA-256
/// together (the default), answers SHA-256 for its REGISTER (401) and its INVITE (407),
/// and the call reaches a SIPp UAS on the trunk, is answered and hung up.
#[test]
fn linphone_registers_and_calls_with_sha256_digest() {
    use common::linphone::Linphone;

    let config = SbcConfig::new().with_security(GUARDED);
    let trunk = config.net.host(2);
    let [uas_port] = free_ports(trunk);
    let sbc = Sbc::start_with_users(
        config.with_peer(SocketAddr::new(trunk, uas_port)),
        &[("alice", "alice-secret")],
    );
    let target = sbc.config.sip_address();
    let traces = tempfile::tempdir().unwrap();
    let mut uas = sipp_uas(trunk, uas_port, traces.path());

    // linphone binds its SIP socket to the wildcard address: a port free there.
    let sip_port = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .unwrap();
    let mut phone = Linphone::start(target, "alice", "alice-secret", sip_port);
    let wait = |phone: &Linphone, needle: &str| {
        if let Err(error) = phone.wait_for(needle, Duration::from_secs(15)) {
            panic!("{error}\n{}", sbc.log_tail());
        }
    };
    wait(&phone, "to [LinphoneRegistrationOk]");
    let registers = phone.messages("REGISTER ");
    let answered = registers
        .iter()
        .find(|message| message.contains("Authorization:"))
        .unwrap_or_else(|| panic!("no REGISTER with credentials\n{}", phone.log_tail()));
    assert!(
        answered.contains("algorithm=SHA-256") && answered.contains("qop=auth"),
        "linphone did not answer with SHA-256:\n{answered}"
    );

    let dialled = phone.command(&format!("call sip:callee@{target}"));
    assert!(dialled.contains("Status: Ok"), "call: {dialled}");
    wait(&phone, "to LinphoneCallStreamsRunning");
    let invite = phone
        .messages("INVITE ")
        .into_iter()
        .find(|message| message.contains("Proxy-Authorization:"))
        .unwrap_or_else(|| panic!("no INVITE with credentials\n{}", phone.log_tail()));
    assert!(
        invite.contains("algorithm=SHA-256"),
        "linphone did not answer the 407 with SHA-256:\n{invite}"
    );
    let hung_up = phone.command("terminate");
    assert!(hung_up.contains("Status: Ok"), "terminate: {hung_up}");
    wait(&phone, "to LinphoneCallEnd");
    let _ = uas.kill();
    let _ = uas.wait();
}
