//! What the STIR/SHAKEN black-box tests (`tests/identity.rs`, `tests/identity_api.rs`)
//! share: the numbers they call with, SIPp callees with a message trace, the INVITEs a
//! trace shows, and PyJWT through `tests/identity/passport.py`.

#![allow(dead_code)] // each test crate uses a subset

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use super::common::{repo_root, require_tool, run_bounded};

pub const CALLER_TN: &str = "12155551212";
pub const CALLED_TN: &str = "15551230000";
const PYTHON: &str = "/usr/bin/python3";

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

pub fn sipp(args: &[String]) -> Command {
    let mut command = Command::new(require_tool("sipp"));
    command.args(args);
    command
}

/// A SIPp UAS at `callee` answering up to `calls` INVITEs with 200, writing every
/// message it sees to `trace`; bounded by `timeout`.
pub fn start_uas(callee: SocketAddr, calls: usize, trace: &Path, timeout: Duration) -> Child {
    let child = sipp(&[
        "-sf".into(),
        repo_root()
            .join("tests/scenarios/uas_answer.xml")
            .display()
            .to_string(),
        "-i".into(),
        callee.ip().to_string(),
        "-p".into(),
        callee.port().to_string(),
        "-mi".into(),
        callee.ip().to_string(),
        "-m".into(),
        calls.to_string(),
        "-timeout".into(),
        format!("{}s", timeout.as_secs()),
        "-trace_msg".into(),
        "-message_file".into(),
        trace.display().to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("sipp uas starts");
    // Let it bind before calls come.
    thread::sleep(Duration::from_millis(300));
    child
}

/// The INVITEs received in a SIPp message trace, in order (retransmissions once).
pub fn invites(trace: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for block in text.split("-----------------------------------------------") {
        if !block.contains("message received")
            || !block.lines().any(|line| line.starts_with("INVITE sip:"))
        {
            continue;
        }
        let call_id = header(block, "Call-ID").join("");
        if !seen.contains(&call_id) {
            seen.push(call_id);
            out.push(block.to_owned());
        }
    }
    out
}

/// Every value of header `name` in `message`.
pub fn header<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    message
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
        .collect()
}

/// `tests/identity/passport.py` (PyJWT with `cryptography`, the independent
/// implementation) with `args`; its standard output.
pub fn passport_py(args: &[&str]) -> String {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run ./tests/run.sh, which installs python3-jwt and python3-cryptography"
    );
    let script = repo_root().join("tests/identity/passport.py");
    let finished = run_bounded(
        Command::new(PYTHON).arg(script).args(args),
        Duration::from_secs(20),
    );
    assert!(
        finished.succeeded(),
        "passport.py {args:?}: {}",
        finished.describe()
    );
    finished.stdout.trim().to_owned()
}
