//! OPTIONS pings from real SIP tools (sipsak, SIPp, openssl s_client) and from the
//! hand-written client, over UDP, TCP and TLS: every one must get `200 OK`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::sip::{self, SipStream};
use common::{Sbc, SbcConfig, require_tool, run_bounded};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

fn sipsak_options(sbc: &Sbc, transport: &str) {
    let sipsak = require_tool("sipsak");
    let address = sbc.config.sip_address();
    let peer_ip = sbc.config.net.host(2);
    let mut command = Command::new(sipsak);
    command
        .arg("-vv")
        .args(["-s", &format!("sip:ping@{address}")])
        .args(["-H", &peer_ip.to_string()])
        .args(["--local-ip", &peer_ip.to_string()])
        // T1 = 100 ms: a silent SBC makes sipsak give up after 64·T1 = 6.4 s.
        .args(["--timer-t1", "100"]);
    if transport != "udp" {
        command.args(["-E", transport]);
    }
    let finished = run_bounded(&mut command, Duration::from_secs(20));
    let output = format!("{}{}", finished.stdout, finished.stderr);
    assert!(
        finished.succeeded() && output.contains("SIP/2.0 200"),
        "sipsak OPTIONS over {transport} to {address} did not get 200 OK: {}\n{}",
        finished.describe(),
        sbc.log_tail()
    );
}

#[test]
fn options_over_udp_with_sipsak_gets_200() {
    let mut sbc = Sbc::start(SbcConfig::new());
    sipsak_options(&sbc, "udp");
    sbc.assert_alive("an OPTIONS over UDP");
}

#[test]
fn options_over_tcp_with_sipsak_gets_200() {
    let mut sbc = Sbc::start(SbcConfig::new());
    sipsak_options(&sbc, "tcp");
    sbc.assert_alive("an OPTIONS over TCP");
}

/// The generated certificate (there is exactly one TLS listener).
fn generated_certificate(sbc: &Sbc) -> std::path::PathBuf {
    let directory = sbc.data_dir().join("tls");
    let certificates: Vec<_> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("read {}: {error}", directory.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "crt"))
        .collect();
    assert_eq!(
        certificates.len(),
        1,
        "expected one generated certificate in {}",
        directory.display()
    );
    certificates.into_iter().next().unwrap()
}

#[test]
fn options_over_tls_with_openssl_s_client_gets_200() {
    let openssl = require_tool("openssl");
    let sbc = Sbc::start(SbcConfig::new());
    let address = sbc.config.tls_address();
    let certificate = generated_certificate(&sbc);
    // The generated certificate must verify for the listener's IP.
    let mut child = Command::new(openssl)
        .args(["s_client", "-quiet", "-verify_return_error"])
        .args(["-connect", &address.to_string()])
        .args(["-verify_ip", &address.ip().to_string()])
        .arg("-CAfile")
        .arg(&certificate)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl s_client");
    let local = std::net::SocketAddr::new(sbc.config.net.host(2), 5061);
    let request = sip::request("OPTIONS", address, "TLS", local);
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");

    let (lines_sender, lines) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_sender.send(line).is_err() {
                break;
            }
        }
    });
    let errors = thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    // Written before the handshake completes is fine: s_client sends it once connected.
    let written = stdin
        .write_all(request.text.as_bytes())
        .and_then(|()| stdin.flush());

    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut received = Vec::new();
    let mut status = None;
    while status.is_none() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(remaining) {
            Ok(line) => {
                if let Some(code) = sip::status_code(&line) {
                    status = Some(code);
                }
                received.push(line);
            }
            Err(_) => break,
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let errors = errors.join().unwrap_or_default();
    assert_eq!(
        status,
        Some(200),
        "OPTIONS over TLS to {address} did not get 200 OK (write: {written:?})\n\
         ── received ──\n{}\n── s_client stderr ──\n{errors}\n{}",
        received.join("\n"),
        sbc.log_tail()
    );
}

#[test]
fn options_answer_carries_capabilities_and_echoes_the_transaction() {
    let sbc = Sbc::start(SbcConfig::new());
    let peer_ip = sbc.config.net.host(2);
    let target = sbc.config.sip_address();

    let socket = sip::udp_socket(peer_ip);
    let request = sip::request("OPTIONS", target, "UDP", socket.local_addr().unwrap());
    let responses = sip::udp_transaction(&socket, target, &request, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}\n{}", sbc.log_tail()));
    check_options_answer(
        sip::final_response(&responses),
        &request,
        socket.local_addr().unwrap(),
    );

    let mut stream = SipStream::connect(peer_ip, target, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}\n{}", sbc.log_tail()));
    let request = sip::request("OPTIONS", target, "TCP", stream.local_addr());
    let responses = stream
        .transaction(&request, ANSWER_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}\n{}", sbc.log_tail()));
    check_options_answer(
        sip::final_response(&responses),
        &request,
        stream.local_addr(),
    );
}

/// `source` is where the request came from: the request asked for `rport`, so the
/// answer's Via must say that address (RFC 3581 §4: `received` even when it equals the
/// sent-by, `rport` filled with the source port).
fn check_options_answer(response: &str, request: &sip::Request, source: std::net::SocketAddr) {
    assert_eq!(sip::status_code(response), Some(200), "{response}");
    let via = sip::header(response, "Via").unwrap_or_default();
    let branch = request
        .via
        .split(";branch=")
        .nth(1)
        .and_then(|rest| rest.split(';').next());
    assert!(
        branch.is_some_and(|branch| via.contains(branch)),
        "Via branch not echoed: {response}"
    );
    let via_params: Vec<&str> = via.split(';').map(str::trim).collect();
    let received = format!("received={}", source.ip());
    let rport = format!("rport={}", source.port());
    assert!(
        via_params.contains(&received.as_str()) && via_params.contains(&rport.as_str()),
        "Via must carry {received} and {rport}: {response}"
    );
    assert_eq!(
        sip::header(response, "CSeq"),
        Some("1 OPTIONS"),
        "{response}"
    );
    let to = sip::header(response, "To").unwrap_or_default();
    assert!(
        to.contains("tag="),
        "a final response needs a To tag: {response}"
    );
    let allow = sip::header(response, "Allow").unwrap_or_default();
    assert!(
        allow.contains("OPTIONS"),
        "Allow must list OPTIONS: {response}"
    );
    assert!(
        sip::header(response, "Accept").is_some(),
        "Accept missing: {response}"
    );
    assert!(
        sip::header(response, "Supported").is_some(),
        "Supported missing: {response}"
    );
}

fn sipp_options(transport_mode: &str) {
    let sipp = require_tool("sipp");
    let sbc = Sbc::start(SbcConfig::new());
    let scenario = common::repo_root().join("tests/scenarios/options.xml");
    let directory = tempfile::tempdir().unwrap();
    let finished = run_bounded(
        Command::new(sipp)
            .current_dir(directory.path())
            .arg(sbc.config.sip_address().to_string())
            .arg("-sf")
            .arg(&scenario)
            .args(["-t", transport_mode])
            .args(["-i", &sbc.config.net.host(3).to_string()])
            .args(["-m", "50", "-r", "50", "-l", "10"])
            .args(["-timeout", "30s", "-timeout_error"])
            .args(["-trace_err"]),
        Duration::from_secs(45),
    );
    let errors = std::fs::read_dir(directory.path())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with("_errors.log"))
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .collect::<String>();
    assert!(
        finished.succeeded(),
        "SIPp: not every OPTIONS over {transport_mode} got 200 OK: {}\n── SIPp errors ──\n{errors}\n{}",
        finished.describe(),
        sbc.log_tail()
    );
}

#[test]
fn sipp_options_over_udp_all_answered_200() {
    sipp_options("u1");
}

#[test]
fn sipp_options_over_tcp_all_answered_200() {
    sipp_options("t1");
}
