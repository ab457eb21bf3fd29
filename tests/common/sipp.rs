//! SIPp as a peer of the black-box tests: a UAS that answers every call, and clients
//! running a scenario file with digest credentials, with their call counts read back.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_ports, repo_root, require_tool, run_bounded};

/// The path of `tests/scenarios/<name>`.
pub fn scenario(name: &str) -> String {
    repo_root()
        .join("tests/scenarios")
        .join(name)
        .display()
        .to_string()
}

/// SIPp's built-in UAS on `ip:port` (answers every INVITE, then waits for the BYE), in
/// the background for at most a minute; kill it when done.
pub fn uas(ip: IpAddr, port: u16, dir: &Path) -> Child {
    Command::new(require_tool("sipp"))
        .current_dir(dir)
        .args(["-sn", "uas", "-i", &ip.to_string(), "-p", &port.to_string()])
        .args(["-nostdin", "-timeout", "60s", "-bg"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp uas starts")
}

/// What a SIPp client run did.
#[derive(Debug)]
pub struct ClientRun {
    pub successful: u64,
    pub failed: u64,
    /// SIPp's output, for failure messages.
    pub log: String,
}

/// A SIPp client on `ip` running `scenario_file` against `sbc`: `calls` calls at `rate`
/// per second, at most `limit` at once, with digest credentials `user`/`password` (also
/// the From user, `-key user`). Bounded to a minute.
#[allow(clippy::too_many_arguments)]
pub fn client(
    sbc: SocketAddr,
    ip: IpAddr,
    scenario_file: &str,
    (user, password): (&str, &str),
    calls: u32,
    rate: u32,
    limit: u32,
    dir: &Path,
) -> ClientRun {
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
                &limit.to_string(),
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
    ClientRun {
        successful: count("Successful call"),
        failed: count("Failed call"),
        log: run.describe(),
    }
}
