//! Admission before parsing: the cheap checks every received message meets first.
//!
//! [`Gate::admit`] looks at the source address, the listener, the first line and (only
//! when scanner detection is on) the `User-Agent` line of a message, in this order:
//!
//! 1. **Bans**: a banned source is dropped silently (`banned`).
//! 2. **Listener ACLs**: a source that one of the listener's ACLs refuses is dropped
//!    (`acl_denied`); a listener may have several (the configuration file's and those
//!    of the admin API), and a source must pass all of them.
//! 3. **Trunk-only listeners**: a source that is not one of the trunks' is dropped
//!    (`not_a_trunk`) without reading past the first line.
//! 4. **Scanners**: a request whose User-Agent names a known scanner bans its source for
//!    [`GateConfig::ban_duration`] and is dropped (`scanner`).
//! 5. **Rate limits**: per source, REGISTER, INVITE and everything else each have a
//!    token bucket; a message over budget is dropped (`rate_limited`). Trunk sources are
//!    exempt (they carry many callers).
//!
//! 6. **Overload** ([`Gate::shed`], once the shard a message goes to is known): when that
//!    shard's queue is more than three quarters full, new calls (INVITEs outside a
//!    dialog) are dropped (`overload`), so that the room left goes to what keeps calls in
//!    progress alive (in-dialog requests, ACKs, responses). Below that the shard itself
//!    answers new calls `503` with Retry-After while its queue is over half full.
//!
//! Failed authentications are reported back by the shards
//! ([`Gate::handle_auth_failure`]); after [`GateConfig::max_auth_failures`] of them within
//! [`GateConfig::failure_window`] the source is banned (`auth_failures`).
//!
//! One gate sees every message (the binary runs it in the task that hands messages to
//! the shards), so its tables need no lock. Everything in it is bounded. Bans it adds or
//! lifts are reported as [`GateEvent`]s so that the binary can persist them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::acl::{Acl, Cidr, TrunkSources, all_admit};
use super::bans::{BanEntry, BanTable};
use super::rate::{Budget, RateLimits, SourceLimiter};
use crate::net::Protocol;

/// User agents of SIP scanners (matched case-insensitively as substrings).
pub const SCANNER_USER_AGENTS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sundayddr",
    "vaxsipuseragent",
    "sip-scan",
    "iwar",
    "sivus",
    "pplsip",
    "smap",
];

/// The admission rules of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerRule {
    /// The listener's bound address (a wildcard address matches any local address with
    /// this port).
    pub local: SocketAddr,
    /// The listener's transport (`None`: the rule covers every transport on `local`).
    pub protocol: Option<Protocol>,
    /// Every ACL of the listener; a source must pass all of them.
    pub acls: Vec<Acl>,
    /// Only trunk sources may use this listener.
    pub trunks_only: bool,
}

/// How the gate admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateConfig {
    pub listeners: Vec<ListenerRule>,
    /// Per-source budgets; `None` disables rate limiting.
    pub rates: Option<RateLimits>,
    /// Sources tracked for rate limits and failure counts at most.
    pub max_sources: usize,
    /// Lower-case substrings of scanner User-Agents; empty disables scanner bans.
    pub scanner_user_agents: Vec<String>,
    /// How long an automatic ban lasts.
    pub ban_duration: Duration,
    /// Failed authentications after which a source is banned; 0 disables.
    pub max_auth_failures: u32,
    /// The window failures are counted in.
    pub failure_window: Duration,
    /// Bans held at most.
    pub max_bans: usize,
}

impl Default for GateConfig {
    fn default() -> GateConfig {
        GateConfig {
            listeners: Vec::new(),
            rates: Some(RateLimits::default()),
            max_sources: 100_000,
            scanner_user_agents: SCANNER_USER_AGENTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            ban_duration: Duration::from_secs(3600),
            max_auth_failures: 5,
            failure_window: Duration::from_secs(300),
            max_bans: 100_000,
        }
    }
}

/// The gate's answer for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a message the gate drops must not be processed"]
pub enum Admission {
    /// Go on: parse and process it.
    Pass,
    /// Drop it without an answer, for this stable reason.
    Drop(&'static str),
}

/// A change to the ban table, for persistence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateEvent {
    /// `network` is banned for `reason`, for `duration` (`None`: until lifted).
    Banned {
        network: Cidr,
        reason: String,
        duration: Option<Duration>,
        /// Added by the gate itself (not an operator's ban being loaded or set).
        automatic: bool,
    },
}

/// What the gate did, by stable reason name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Messages passed on.
    pub passed: u64,
    /// Messages dropped, by reason (`banned`, `acl_denied`, `not_a_trunk`, `scanner`,
    /// `rate_limited`).
    pub dropped: BTreeMap<&'static str, u64>,
    /// Bans added, by reason (`scanner`, `auth_failures`, `operator`).
    pub bans_added: BTreeMap<&'static str, u64>,
    /// Authentication failures reported by the shards.
    pub auth_failures: u64,
    /// Bans in force now.
    pub active_bans: usize,
}

/// See the module docs.
#[derive(Debug)]
pub struct Gate {
    config: GateConfig,
    bans: BanTable,
    limiter: Option<SourceLimiter>,
    /// Source → (failures, start of the window).
    failures: HashMap<IpAddr, (u32, Instant)>,
    trunk_sources: Vec<TrunkSources>,
    events: VecDeque<GateEvent>,
    stats: GateStats,
}

impl Gate {
    pub fn new(config: GateConfig, now: Instant) -> Gate {
        Gate {
            limiter: config
                .rates
                .map(|rates| SourceLimiter::new(rates, config.max_sources, now)),
            bans: BanTable::new(config.max_bans),
            failures: HashMap::new(),
            trunk_sources: Vec::new(),
            events: VecDeque::new(),
            stats: GateStats::default(),
            config,
        }
    }

    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// Where trunk traffic comes from (each trunk's target addresses and ACLs).
    pub fn set_trunk_sources(&mut self, sources: Vec<TrunkSources>) {
        self.trunk_sources = sources;
    }

    /// Replaces the listeners' rules (their ACLs changed).
    pub fn set_listeners(&mut self, listeners: Vec<ListenerRule>) {
        self.config.listeners = listeners;
    }

    pub fn is_trunk_source(&self, address: IpAddr) -> bool {
        self.trunk_sources.iter().any(|trunk| trunk.holds(address))
    }

    pub fn stats(&self) -> GateStats {
        GateStats {
            active_bans: self.bans.len(),
            ..self.stats.clone()
        }
    }

    /// Decides on one received message (see the module docs).
    pub fn admit(
        &mut self,
        now: Instant,
        bytes: &[u8],
        source: SocketAddr,
        local: SocketAddr,
        protocol: Protocol,
    ) -> Admission {
        let verdict = self.decide(now, bytes, source.ip(), local, protocol);
        match verdict {
            Admission::Pass => self.stats.passed += 1,
            Admission::Drop(reason) => *self.stats.dropped.entry(reason).or_default() += 1,
        }
        verdict
    }

    fn decide(
        &mut self,
        now: Instant,
        bytes: &[u8],
        ip: IpAddr,
        local: SocketAddr,
        protocol: Protocol,
    ) -> Admission {
        if self.bans.hit(now, ip) {
            return Admission::Drop("banned");
        }
        let rule = self.config.listeners.iter().find(|rule| {
            rule.protocol.is_none_or(|p| p == protocol)
                && (rule.local == local
                    || (rule.local.ip().is_unspecified() && rule.local.port() == local.port()))
        });
        if let Some(rule) = rule
            && !all_admit(&rule.acls, ip)
        {
            return Admission::Drop("acl_denied");
        }
        let trunk = self.is_trunk_source(ip);
        if rule.is_some_and(|rule| rule.trunks_only) && !trunk {
            return Admission::Drop("not_a_trunk");
        }
        let first_line = first_line(bytes);
        let budget = match method_of(first_line) {
            Some(b"REGISTER") => Budget::Register,
            Some(b"INVITE") => Budget::Invite,
            _ => Budget::Other,
        };
        let is_request = method_of(first_line).is_some();
        if is_request
            && !trunk
            && !self.config.scanner_user_agents.is_empty()
            && let Some(agent) = user_agent(bytes)
        {
            let agent = agent.to_ascii_lowercase();
            let scanner = self
                .config
                .scanner_user_agents
                .iter()
                .any(|known| !known.is_empty() && contains(&agent, known.as_bytes()));
            if scanner {
                self.ban_source(now, ip, "scanner");
                return Admission::Drop("scanner");
            }
        }
        if !trunk
            && let Some(limiter) = self.limiter.as_mut()
            && !limiter.take(now, ip, budget)
        {
            return Admission::Drop("rate_limited");
        }
        Admission::Pass
    }

    /// The last check, once the message's shard is known: a new call is dropped when the
    /// shard's queue has less than a quarter of `capacity` left as `room`.
    pub fn shed(&mut self, bytes: &[u8], room: usize, capacity: usize) -> Admission {
        if room.saturating_mul(4) >= capacity || !is_new_invite(bytes) {
            return Admission::Pass;
        }
        // It passed `admit`; it is a drop after all.
        self.stats.passed = self.stats.passed.saturating_sub(1);
        *self.stats.dropped.entry("overload").or_default() += 1;
        Admission::Drop("overload")
    }

    /// A shard reports that `source` failed to authenticate.
    pub fn handle_auth_failure(&mut self, now: Instant, source: IpAddr) {
        self.stats.auth_failures += 1;
        if self.config.max_auth_failures == 0 || self.is_trunk_source(source) {
            return;
        }
        let window = self.config.failure_window;
        if !self.failures.contains_key(&source) && self.failures.len() >= self.config.max_sources {
            self.failures
                .retain(|_, (_, start)| now.saturating_duration_since(*start) < window);
            if self.failures.len() >= self.config.max_sources {
                // Still full of live counts: the newcomer is counted when room frees up;
                // its requests still meet the rate limits.
                return;
            }
        }
        let entry = self.failures.entry(source).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= window {
            *entry = (0, now);
        }
        entry.0 += 1;
        if entry.0 >= self.config.max_auth_failures {
            self.failures.remove(&source);
            self.ban_source(now, source, "auth_failures");
        }
    }

    /// A shard reports that `source` authenticated: its failure count starts again.
    pub fn handle_auth_success(&mut self, source: IpAddr) {
        self.failures.remove(&source);
    }

    fn ban_source(&mut self, now: Instant, source: IpAddr, reason: &'static str) {
        let duration = self.config.ban_duration;
        if self
            .bans
            .insert(now, Cidr::host(source), reason, Some(now + duration))
        {
            *self.stats.bans_added.entry(reason).or_default() += 1;
            tracing::warn!(%source, reason, secs = duration.as_secs(), "source banned");
            self.events.push_back(GateEvent::Banned {
                network: Cidr::host(source),
                reason: reason.to_owned(),
                duration: Some(duration),
                automatic: true,
            });
        }
    }

    /// Bans `network` (an operator's ban, or one loaded from the store): `duration`
    /// from now, or until lifted.
    pub fn ban(
        &mut self,
        now: Instant,
        network: Cidr,
        reason: &str,
        duration: Option<Duration>,
    ) -> bool {
        let added = self
            .bans
            .insert(now, network, reason, duration.map(|d| now + d));
        if added {
            *self.stats.bans_added.entry("operator").or_default() += 1;
        }
        added
    }

    /// Lifts the ban of exactly `network`; `true` when there was one.
    pub fn lift(&mut self, network: Cidr) -> bool {
        if let Some(host) = match network.network() {
            ip if network.prefix() == if ip.is_ipv4() { 32 } else { 128 } => Some(ip),
            _ => None,
        } {
            self.failures.remove(&host);
        }
        self.bans.remove(network)
    }

    /// The ban of exactly `network`, if any.
    pub fn ban_of(&self, network: Cidr) -> Option<&BanEntry> {
        self.bans.get(network)
    }

    /// The next change to persist.
    pub fn poll_event(&mut self) -> Option<GateEvent> {
        self.events.pop_front()
    }
}

fn first_line(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let rest = bytes.get(start..).unwrap_or_default();
    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    rest.get(..end).unwrap_or_default()
}

/// The method of a request line (`None` for a status line or garbage).
fn method_of(line: &[u8]) -> Option<&[u8]> {
    if line.starts_with(b"SIP/") {
        return None;
    }
    let end = memchr::memchr(b' ', line)?;
    let method = line.get(..end)?;
    (!method.is_empty() && method.iter().all(u8::is_ascii_uppercase)).then_some(method)
}

/// The value of the first `User-Agent` header line, looked up in the header section only.
fn user_agent(bytes: &[u8]) -> Option<&[u8]> {
    let end = memchr::memmem::find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let headers = bytes.get(..end)?;
    headers.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = memchr::memchr(b':', line)?;
        let name = line.get(..colon)?.trim_ascii();
        name.eq_ignore_ascii_case(b"User-Agent")
            .then(|| line.get(colon + 1..).unwrap_or_default().trim_ascii())
    })
}

/// Whether a message is an INVITE whose To header has no tag (a new call), read from the
/// header section without parsing it.
fn is_new_invite(bytes: &[u8]) -> bool {
    if method_of(first_line(bytes)) != Some(b"INVITE") {
        return false;
    }
    let end = memchr::memmem::find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let headers = bytes.get(..end).unwrap_or_default();
    let to = headers.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = memchr::memchr(b':', line)?;
        let name = line.get(..colon)?.trim_ascii();
        (name.eq_ignore_ascii_case(b"To") || name.eq_ignore_ascii_case(b"t"))
            .then(|| line.get(colon + 1..).unwrap_or_default())
    });
    // Without a To it is malformed; the parser answers it. The tag parameter follows the
    // closing `>` of a name-addr (or the URI itself in the addr-spec form).
    to.is_some_and(|value| {
        let params = match memchr::memrchr(b'>', value) {
            Some(close) => value.get(close..).unwrap_or_default(),
            None => value,
        };
        !params
            .to_ascii_lowercase()
            .split(|&b| b == b';')
            .skip(1)
            .any(|param| param.trim_ascii().starts_with(b"tag"))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}
