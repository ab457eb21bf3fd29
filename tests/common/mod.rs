//! Shared helpers of the black-box tests: start the `sbc` binary on its own loopback
//! address with free ports, wait until it is ready, talk to it, and stop it.
//!
//! Every wait is bounded; a test that gets no answer fails with the SBC's log attached.

#![allow(dead_code, unreachable_pub)] // each test crate uses a subset

pub mod baresip;
pub mod http;
pub mod linphone;
pub mod netns;
pub mod pki;
pub mod sip;
pub mod sipp;

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long the SBC may take to report ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the SBC may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The path of the binary under test.
pub fn sbc_binary() -> &'static str {
    env!("CARGO_BIN_EXE_sbc")
}

/// The repository root (for `deploy/examples`, scenario files …).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ── addresses ──────────────────────────────────────────────────────────────────────────

/// A /24 of loopback addresses of its own for one test: `host(1)` is the SBC, other hosts
/// are peers (legitimate or attacking). Distinct per test within a run (a counter) and,
/// very likely, across concurrent runs (the process id picks the second octet).
#[derive(Debug, Clone, Copy)]
pub struct LoopbackNet {
    octets: [u8; 3],
}

impl LoopbackNet {
    pub fn allocate() -> Self {
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let third = NEXT.fetch_add(1, Ordering::Relaxed);
        let second = 100 + u8::try_from(std::process::id() % 100).unwrap_or(0);
        LoopbackNet {
            octets: [127, second, third],
        }
    }

    pub fn host(&self, last: u8) -> IpAddr {
        let [a, b, c] = self.octets;
        IpAddr::V4(Ipv4Addr::new(a, b, c, last))
    }
}

/// `count` distinct ports, each free for both UDP and TCP on `ip` right now (the OS picks
/// them; the probe sockets are held until all are chosen, so no port is picked twice).
pub fn free_ports<const N: usize>(ip: IpAddr) -> [u16; N] {
    let mut held = Vec::new();
    let mut ports = [0; N];
    for port in &mut ports {
        let mut attempts = 0;
        *port = loop {
            attempts += 1;
            assert!(attempts <= 50, "no free port on {ip} after 50 attempts");
            let Ok(tcp) = TcpListener::bind((ip, 0)) else {
                continue;
            };
            let Ok(address) = tcp.local_addr() else {
                continue;
            };
            if let Ok(udp) = UdpSocket::bind(address) {
                held.push((tcp, udp));
                break address.port();
            }
        };
    }
    ports
}

// ── the SBC under test ─────────────────────────────────────────────────────────────────

/// What to put in the test's configuration file.
#[derive(Debug, Clone)]
pub struct SbcConfig {
    pub net: LoopbackNet,
    pub ip: IpAddr,
    /// UDP and TCP listener port.
    pub sip_port: u16,
    pub tls_port: u16,
    pub admin_port: u16,
    /// Extra TOML lines appended under `[sip.limits]`.
    pub limits: String,
    /// Extra command-line arguments for `sbc`.
    pub args: Vec<String>,
    /// The target of the trunk every call is routed to.
    pub peer: SocketAddr,
    /// Extra TOML appended at the end of the file.
    pub extra: String,
    /// The `[[route]]` tables (by default one sending every call to the `peer` trunk).
    pub routes: String,
    /// The `peer` trunk's `keepalive_secs` (0, off, by default).
    pub keepalive_secs: u64,
    /// Extra TOML lines of the `peer` trunk's table (e.g. its `srtp` policy).
    pub trunk_extra: String,
    /// `advertise` of the UDP and TCP listeners (none by default).
    pub sip_advertise: Option<String>,
    /// `media.advertise` (none by default).
    pub media_advertise: Option<String>,
    /// The `[auth]` and `[security]` tables. By default authentication and rate limits are
    /// off, so that tests of call handling need no credentials; the security tests set
    /// their own.
    pub security: String,
}

impl SbcConfig {
    /// UDP + TCP on one port, TLS (generated certificate) on another, admin API: all on
    /// a loopback address of the test's own.
    pub fn new() -> Self {
        let net = LoopbackNet::allocate();
        let ip = net.host(1);
        let [sip_port, tls_port, admin_port] = free_ports(ip);
        SbcConfig {
            net,
            ip,
            sip_port,
            tls_port,
            admin_port,
            limits: String::new(),
            args: Vec::new(),
            peer: SocketAddr::new(ip, 5080),
            extra: String::new(),
            routes: "[[route]]\nname = \"to-peer\"\nto_trunk = \"peer\"\n".to_owned(),
            keepalive_secs: 0,
            trunk_extra: String::new(),
            sip_advertise: None,
            media_advertise: None,
            security: "[auth]\nenabled = false\n\n[security.rate_limits]\nenabled = false\n"
                .to_owned(),
        }
    }

    /// Replaces the default `[auth]`/`[security]` tables (authentication off).
    pub fn with_security(mut self, toml: &str) -> Self {
        self.security = toml.to_owned();
        self
    }

    /// Replaces the default route with these `[[route]]` tables.
    pub fn with_routes(mut self, routes: &str) -> Self {
        self.routes = routes.to_owned();
        self
    }

    /// Routes every call to a trunk at `peer`.
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = peer;
        self
    }

    /// Adds lines to the `peer` trunk's table.
    pub fn with_trunk(mut self, toml: &str) -> Self {
        self.trunk_extra = toml.to_owned();
        self
    }

    pub fn with_extra(mut self, toml: &str) -> Self {
        self.extra = toml.to_owned();
        self
    }

    pub fn with_limits(mut self, limits: &str) -> Self {
        self.limits = limits.to_owned();
        self
    }

    pub fn with_args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|arg| (*arg).to_owned()).collect();
        self
    }

    pub fn sip_address(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.sip_port)
    }

    pub fn tls_address(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.tls_port)
    }

    pub fn admin_address(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.admin_port)
    }

    /// The configuration text, with `data_dir` relative to the config file.
    pub fn toml(&self) -> String {
        let ip = self.ip;
        format!(
            r#"data_dir = "data"

[sip]
[[sip.listen]]
transport = "udp"
address = "{sip}"
{sip_advertise}

[[sip.listen]]
transport = "tcp"
address = "{sip}"
{sip_advertise}

[[sip.listen]]
transport = "tls"
address = "{tls}"

[sip.limits]
{limits}

[admin]
listen = "{admin}"

# Below the OS ephemeral range, so it never covers the OS-chosen SIP ports.
[media]
address = "{ip}"
{media_advertise}
port_min = 20000
port_max = 21999

[[trunk]]
name = "peer"
targets = ["{peer}"]
transport = "udp"
keepalive_secs = {keepalive}
{trunk_extra}

{routes}
{security}
{extra}
"#,
            sip = self.sip_address(),
            tls = self.tls_address(),
            admin = self.admin_address(),
            limits = self.limits,
            peer = self.peer,
            extra = self.extra,
            routes = self.routes,
            keepalive = self.keepalive_secs,
            trunk_extra = self.trunk_extra,
            security = self.security,
            sip_advertise = advertise_line(self.sip_advertise.as_deref()),
            media_advertise = advertise_line(self.media_advertise.as_deref()),
        )
    }
}

fn advertise_line(value: Option<&str>) -> String {
    value.map_or_else(String::new, |value| format!("advertise = \"{value}\""))
}

/// A running `sbc` process; killed when dropped.
#[derive(Debug)]
pub struct Sbc {
    pub config: SbcConfig,
    child: Option<Child>,
    directory: tempfile::TempDir,
    log_path: PathBuf,
}

impl Sbc {
    /// Write the configuration, start the binary and wait until `GET /ready` answers 200.
    pub fn start(config: SbcConfig) -> Sbc {
        Sbc::start_with_users(config, &[])
    }

    /// [`Sbc::start`] after creating digest users `(username, password)` in the realm of
    /// the configuration, with `sbc user add` (as an operator would).
    pub fn start_with_users(config: SbcConfig, users: &[(&str, &str)]) -> Sbc {
        let directory = tempfile::tempdir().expect("temporary directory");
        fs::write(directory.path().join("sbc.toml"), config.toml()).expect("write config");
        for (user, password) in users {
            let added = run_bounded(
                Command::new(sbc_binary())
                    .arg("--config")
                    .arg(directory.path().join("sbc.toml"))
                    .args(["user", "add", user])
                    .env("SBC_PASSWORD", password),
                Duration::from_secs(20),
            );
            assert!(
                added.succeeded(),
                "sbc user add {user}: {}",
                added.describe()
            );
        }
        Sbc::launch(config, directory)
    }

    /// [`Sbc::start`] after `provision` filled its store (as the admin API or `sbc user
    /// add` would, but in one process: thousands of users in seconds).
    pub fn start_with_store(
        config: SbcConfig,
        provision: impl FnOnce(&mut sbc::store::Store),
    ) -> Sbc {
        let directory = tempfile::tempdir().expect("temporary directory");
        fs::write(directory.path().join("sbc.toml"), config.toml()).expect("write config");
        let data = directory.path().join("data");
        fs::create_dir_all(&data).expect("create the data directory");
        let mut store = sbc::store::Store::open(&data.join("sbc.db")).expect("open the store");
        provision(&mut store);
        drop(store);
        Sbc::launch(config, directory)
    }

    /// Starts the binary on the configuration written in `directory` and waits until it
    /// is ready.
    fn launch(config: SbcConfig, directory: tempfile::TempDir) -> Sbc {
        let log_path = directory.path().join("sbc.log");
        let mut sbc = Sbc {
            config,
            child: None,
            directory,
            log_path,
        };
        sbc.spawn();
        sbc.wait_ready();
        sbc
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open log file");
        let child = Command::new(sbc_binary())
            .arg("--config")
            .arg(self.config_path())
            .args(&self.config.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .expect("spawn the sbc binary");
        self.child = Some(child);
    }

    /// Stop with SIGTERM (which must exit 0) and start again with the same configuration
    /// and data directory.
    pub fn restart(mut self) -> Sbc {
        let status = self.terminate();
        assert!(
            status.success(),
            "sbc exited with {status} on SIGTERM\n{}",
            self.log_tail()
        );
        self.spawn();
        self.wait_ready();
        self
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let admin = self.config.admin_address();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!(
                    "sbc exited during start-up with {status}\n{}",
                    self.log_tail()
                );
            }
            if let Ok((200, _)) = http_get(admin, "/ready", Duration::from_millis(500)) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "sbc not ready on http://{admin}/ready within {START_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.directory.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.directory.path().join("sbc.toml")
    }

    /// The last lines of the SBC's log (stdout and stderr), for failure messages.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("── sbc log ({}) ──\n{tail}", self.log_path.display())
    }

    /// Panic (with the log) unless the process is still running.
    pub fn assert_alive(&mut self, after: &str) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
        {
            panic!("sbc died ({status}) after {after}\n{}", self.log_tail());
        }
    }

    /// Resident memory of the process in KiB (VmRSS in /proc/PID/status).
    pub fn vm_rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|error| panic!("read /proc/{}/status: {error}", self.pid()));
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{}/status", self.pid()))
    }

    /// The first start's read-write admin token (data_dir/admin-token).
    pub fn admin_token(&self) -> String {
        let path = self.data_dir().join("admin-token");
        fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .trim()
            .to_owned()
    }

    /// The admin API with the bootstrap token.
    pub fn admin(&self) -> http::Admin {
        http::Admin::new(self.config.admin_address(), Some(&self.admin_token()))
    }

    /// SIGKILL, at once: no drain, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again (after [`Sbc::kill`] or [`Sbc::stop`]-like ends) with the same
    /// configuration and data directory, and wait until ready.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the SBC is still running");
        self.spawn();
        self.wait_ready();
    }

    /// Send SIGTERM and wait (bounded) for the exit status; SIGKILL after [`STOP_TIMEOUT`].
    pub fn stop(mut self) -> ExitStatus {
        self.terminate()
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running child");
        if let Some(pid) = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "sbc did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                        self.log_tail()
                    );
                }
            }
        }
    }
}

impl Drop for Sbc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ── external tools ─────────────────────────────────────────────────────────────────────

/// The path of a test tool, or a failure saying how to install it. Nothing is skipped.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed. Run the README's test command (./tests/run.sh), \
                 which installs the Debian packages the tests need."
            )
        })
}

/// What a bounded external command did.
#[derive(Debug)]
pub struct Finished {
    /// `None` when it was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// A cumulative counter of SIPp's final statistics screen (`Successful call`,
    /// `Failed call` …), 0 when it did not print one.
    pub fn sipp_count(&self, label: &str) -> u64 {
        self.stdout
            .lines()
            .rev()
            .find(|line| line.trim_start().starts_with(label))
            .and_then(|line| line.rsplit('|').next())
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn describe(&self) -> String {
        let status = match self.status {
            Some(status) => status.to_string(),
            None => "killed at the timeout".to_owned(),
        };
        format!(
            "{status}\n── stdout ──\n{}\n── stderr ──\n{}",
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// Run `command` with stdin closed, killing it after `timeout`.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Finished {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {command:?}: {error}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// The end of a long output (the part that explains a failure).
fn tail(text: &str) -> &str {
    const KEEP: usize = 4_000;
    let mut start = text.len().saturating_sub(KEEP);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

// ── HTTP (admin API) ───────────────────────────────────────────────────────────────────

/// `GET path` over HTTP/1.1; returns the status code and the body.
pub fn http_get(
    address: SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let status = response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Write `contents` to `path` (creating parent directories).
pub fn write_file(path: &Path, contents: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create directory");
    }
    fs::write(path, contents).expect("write file");
}
