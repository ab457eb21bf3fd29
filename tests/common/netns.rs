//! A network namespace of the test's own (`ip netns`), entered by the calling thread.
//!
//! Every socket the thread opens afterwards, every thread it spawns and every process it
//! starts (the SBC, SIPp, sipvicious …) live in the namespace: a loopback interface of
//! their own, and a routing table the test may change without touching the host's. The
//! thread returns to its original namespace and the namespace is deleted on drop.
//!
//! Needs root (CI runs as root) and `ip` (Debian `iproute2`, installed by
//! `tests/install-deps.sh`).

use std::fs::File;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{require_tool, run_bounded};

/// A namespace the calling thread is in until drop.
#[derive(Debug)]
pub struct NetNs {
    pub name: String,
    /// The thread's namespace before, to go back to.
    original: File,
}

impl NetNs {
    /// Creates a fresh namespace, moves the calling thread into it and brings its
    /// loopback interface up.
    pub fn enter(tag: &str) -> NetNs {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        assert!(
            rustix::process::geteuid().is_root(),
            "this test creates a network namespace (`ip netns add`) and must run as root, \
             as CI does"
        );
        let name = format!(
            "sbc-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let original = File::open("/proc/thread-self/ns/net").expect("open the thread's netns");
        let target = File::open(format!("/var/run/netns/{name}"))
            .unwrap_or_else(|error| panic!("open /var/run/netns/{name}: {error}"));
        let namespace = NetNs { name, original };
        rustix::thread::move_into_link_name_space(
            target.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap_or_else(|error| panic!("setns into {}: {error}", namespace.name));
        ip(&["link", "set", "lo", "up"]);
        namespace
    }

    /// Runs `ip ARGS` inside the namespace (the calling thread must be in it).
    pub fn ip(&self, args: &[&str]) {
        ip(args);
    }
}

fn ip(args: &[&str]) {
    let finished = run_bounded(
        Command::new(require_tool("ip")).args(args),
        Duration::from_secs(10),
    );
    assert!(
        finished.succeeded(),
        "ip {}: {}",
        args.join(" "),
        finished.describe()
    );
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = rustix::thread::move_into_link_name_space(
            self.original.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        );
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
