//! SIPp's built-in `uac` and `uas` scenarios as the callers and callees of the admin
//! tests (bounded runs: `-m`, `-timeout`).

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Finished, require_tool, run_bounded};

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
