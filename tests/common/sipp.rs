//! SIPp as a peer of the black-box tests: its built-in `uac` and `uas` scenarios as the
//! callers and callees of the admin tests, scenario files of `tests/scenarios` with
//! digest credentials and their call counts read back (bounded runs: `-m`, `-timeout`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Finished, free_ports, repo_root, require_tool, run_bounded};

/// A SIPp UAS (`-sn uas`) answering up to `calls` calls; killed when dropped.
#[derive(Debug)]
pub struct Uas {
    child: Child,
    pub address: SocketAddr,
}

impl Uas {
    pub fn start(ip: IpAddr, port: u16, calls: usize) -> Uas {
        let child = Command::new(require_tool("sipp"))
            .args(["-sn", "uas", "-i", &ip.to_string(), "-p", &port.to_string()])
            .args(["-mi", &ip.to_string(), "-m", &calls.to_string()])
            .args(["-timeout", "120s"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp uas starts");
        // Let it bind before calls come.
        std::thread::sleep(Duration::from_millis(300));
        Uas {
            child,
            address: SocketAddr::new(ip, port),
        }
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SIPp UAC running in the background; killed when dropped.
#[derive(Debug)]
pub struct Caller {
    child: Child,
}

impl Drop for Caller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a SIPp UAC like [`uac`] without waiting for it.
pub fn spawn_uac(
    sbc: SocketAddr,
    ip: IpAddr,
    port: u16,
    service: &str,
    calls: usize,
    rate: u32,
    hold_ms: u64,
) -> Caller {
    let child = Command::new(require_tool("sipp"))
        .args(["-sn", "uac", &sbc.to_string()])
        .args([
            "-s",
            service,
            "-i",
            &ip.to_string(),
            "-p",
            &port.to_string(),
        ])
        .args(["-mi", &ip.to_string(), "-m", &calls.to_string()])
        .args(["-r", &rate.to_string(), "-d", &hold_ms.to_string()])
        .args(["-timeout", "120s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp uac starts");
    Caller { child }
}

/// Runs a SIPp UAC (`-sn uac`) placing `calls` calls to `sbc` from `ip:port` (calling
/// user `service`), each held `hold_ms`; bounded by `timeout`.
pub fn uac(
    sbc: SocketAddr,
    ip: IpAddr,
    port: u16,
    service: &str,
    calls: usize,
    hold_ms: u64,
    timeout: Duration,
) -> Finished {
    let mut command = Command::new(require_tool("sipp"));
    command
        .args(["-sn", "uac", &sbc.to_string()])
        .args([
            "-s",
            service,
            "-i",
            &ip.to_string(),
            "-p",
            &port.to_string(),
        ])
        .args(["-mi", &ip.to_string(), "-m", &calls.to_string()])
        .args(["-r", "10", "-d", &hold_ms.to_string()])
        .args([
            "-timeout",
            &format!("{}s", timeout.as_secs()),
            "-timeout_error",
        ]);
    run_bounded(&mut command, timeout + Duration::from_secs(5))
}

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
    ClientRun {
        successful: run.sipp_count("Successful call"),
        failed: run.sipp_count("Failed call"),
        log: run.describe(),
    }
}
