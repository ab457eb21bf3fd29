//! A real softphone with SHA-256 digest: linphone (Debian `linphone-cli`, liblinphone
//! 5.1 on belle-sip), run as `linphone-daemon` and driven through its command socket.
//!
//! - Account: the configuration file names one proxy (the SBC) with `reg_sendregister`
//!   and the user's credentials for SHA-256 (`algorithm=SHA-256` in its auth info), so
//!   belle-sip answers the SHA-256 challenge of the two the SBC offers.
//! - Transport: liblinphone 5.1 opens no SIP socket from the configuration file at start
//!   on a host without a sound card, so the test sets the UDP port with the daemon's
//!   `port sip N udp` command, which opens it and sends the REGISTER. The socket is bound
//!   to the wildcard address (liblinphone has no bind-address setting).
//! - Trace: `--log` writes every SIP message sent and received, which the test reads.
//! - Bounded: every command waits a bounded time for its answer; the daemon is killed on
//!   drop.

use std::fs;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::require_tool;

/// A running `linphone-daemon`; killed when dropped.
#[derive(Debug)]
pub struct Linphone {
    child: Option<Child>,
    socket: PathBuf,
    /// One connection for every command (the daemon serves one client at a time).
    stream: Option<UnixStream>,
    log_path: PathBuf,
    _directory: tempfile::TempDir,
}

impl Linphone {
    /// Starts the daemon with an account `user@registrar` (password `password`) that
    /// registers at `registrar`, and opens its SIP socket on UDP port `sip_port` (any
    /// address).
    pub fn start(registrar: SocketAddr, user: &str, password: &str, sip_port: u16) -> Linphone {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let binary = require_tool("linphone-daemon");
        let directory = tempfile::tempdir().expect("temporary directory");
        let config = directory.path().join("linphonerc");
        fs::write(
            &config,
            format!(
                "[sip]\nsip_port=-1\nsip_tcp_port=0\nsip_tls_port=0\ndefault_proxy=0\n\
                 register_only_when_network_is_up=0\n\
                 [rtp]\naudio_rtp_port=24000-25999\n\
                 [proxy_0]\nreg_proxy=<sip:{registrar}>\nreg_identity=<sip:{user}@{registrar}>\n\
                 reg_expires=300\nreg_sendregister=1\npublish=0\n\
                 [auth_info_0]\nusername={user}\npasswd={password}\nalgorithm=SHA-256\n"
            ),
        )
        .expect("write linphonerc");
        // The daemon puts its command socket in /tmp under this name.
        let name = format!(
            "sbc-linphone-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let socket = PathBuf::from("/tmp").join(&name);
        let _ = fs::remove_file(&socket);
        let log_path = directory.path().join("linphone.log");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .args(["--pipe", &name, "--log"])
            .arg(&log_path)
            .env("HOME", directory.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn linphone-daemon");
        let mut phone = Linphone {
            child: Some(child),
            socket,
            stream: None,
            log_path,
            _directory: directory,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !phone.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "linphone-daemon did not open {}\n{}",
                phone.socket.display(),
                phone.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
        let answer = phone.command(&format!("port sip {sip_port} udp"));
        assert!(answer.contains("Status: Ok"), "port: {answer}");
        phone
    }

    /// Sends one command and returns the daemon's answer: the `Status:` block, up to its
    /// blank line (events the daemon pushes in between are skipped). Bounded wait.
    pub fn command(&mut self, command: &str) -> String {
        if self.stream.is_none() {
            let stream = UnixStream::connect(&self.socket)
                .unwrap_or_else(|error| panic!("connect to {}: {error}", self.socket.display()));
            stream
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("read timeout");
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            unreachable!()
        };
        stream
            .write_all(format!("{command}\n").as_bytes())
            .expect("send a command to linphone-daemon");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some(start) = text.find("Status:")
                && let Some(end) = text[start..].find("\n\n")
            {
                return text[start..start + end].to_owned();
            }
            if Instant::now() > deadline {
                return text;
            }
            match stream.read(&mut buffer) {
                Ok(0) => return text,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(_) => {}
            }
        }
    }

    /// The daemon's log (liblinphone's messages and every SIP message).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(80)..].join("\n");
        format!("── linphone log ──\n{tail}")
    }

    /// Waits (bounded) until the log contains `needle`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "linphone did not log {needle:?} within {timeout:?}\n{}",
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The SIP messages in the log whose first line starts with `start`, each as its
    /// text up to the next log line.
    pub fn messages(&self, start: &str) -> Vec<String> {
        let log = self.log();
        let mut found = Vec::new();
        let mut current: Option<String> = None;
        for line in log.lines() {
            let is_log_line = line.len() > 24 && line.as_bytes().get(4) == Some(&b'-');
            if is_log_line {
                if let Some(message) = current.take() {
                    found.push(message);
                }
                continue;
            }
            match current.as_mut() {
                Some(message) => {
                    message.push_str(line);
                    message.push('\n');
                }
                None if line.starts_with(start) => current = Some(format!("{line}\n")),
                None => {}
            }
        }
        found.extend(current);
        found
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(&self.socket);
    }
}
