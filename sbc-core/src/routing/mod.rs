//! Routing from configuration: trunks, their targets, routes, and failover order, sans-IO.
//!
//! * A [`Trunk`] is a named peer (carrier, PBX, proxy) reached through one or more
//!   [`TargetSpec`]s, each an IP address or a host name with optional port and transport and
//!   an RFC 2782 priority and weight. Host names are resolved per RFC 3263 by the driver
//!   (`net::TrunkResolver`), which feeds [`RoutingTable::set_resolved`]; IP-literal targets
//!   are resolved when the table is built.
//! * A [`Route`] sends a request to a trunk when all of its criteria match: the trunk the
//!   request came from, a prefix of the request-URI's user part (the number of a `tel:`
//!   URI), the request-URI's domain. Routes are tried in order; the first match wins.
//! * [`RoutingTable::targets`] gives a trunk's targets in failover order: ascending
//!   priority, weighted random order within one priority (RFC 2782), targets marked down
//!   after every target that is up. The B2BUA tries them in that order, moving on after a
//!   `408`, any `5xx` or a transaction timeout.
//! * [`TrunkMonitor`] sends OPTIONS keep-alives to the targets of trunks configured with
//!   [`KeepAlive`] and says when a target goes down or comes back
//!   ([`RoutingTable::mark_target`]).
//! * [`HeaderPolicy`] says which headers, beyond those the B2BUA builds itself, may cross the
//!   SBC to or from a trunk.
//!
//! Nothing here reads a clock, touches a socket or draws randomness of its own: `now` and a
//! random source are passed in.
//!
//! ```
//! use sbc_core::net::Protocol;
//! use sbc_core::routing::{HeaderPolicy, Route, RoutingTable, TargetHost, TargetSpec, Trunk, TrunkId};
//! use sbc_core::sip::Uri;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let carrier = Trunk {
//!     id: TrunkId(1),
//!     name: "carrier".into(),
//!     targets: vec![
//!         TargetSpec::new(TargetHost::parse("192.0.2.10"), Some(5060), Some(Protocol::Udp)),
//!         TargetSpec { priority: 20, ..TargetSpec::new(TargetHost::parse("192.0.2.11"), None, None) },
//!     ],
//!     trusted: true,
//!     headers: HeaderPolicy::pass_all(),
//!     keep_alive: None,
//! };
//! let to_carrier = Route {
//!     name: "national".into(),
//!     match_source_trunk: None,
//!     match_user_prefix: Some("+33".into()),
//!     match_domain: None,
//!     to_trunk: TrunkId(1),
//! };
//! let table = RoutingTable::new(vec![carrier], vec![to_carrier])?;
//!
//! let uri = Uri::parse(b"sip:+33123456789@sbc.example.net")?;
//! assert_eq!(table.route(None, &uri), Some(TrunkId(1)));
//! let mut random = || 4; // a real caller passes a random source
//! let order = table.targets(TrunkId(1), &mut random);
//! assert_eq!(order[0].addr, "192.0.2.10:5060".parse()?);
//! assert_eq!(order[1].addr, "192.0.2.11:5060".parse()?);
//! # Ok(())
//! # }
//! ```

mod error;
mod failover;
mod headers;
mod keepalive;
mod matching;
mod table;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::net::Protocol;

pub use error::RoutingConfigError;
pub use failover::failover_order;
pub use headers::{HeaderPolicy, HeaderPolicyError, HeaderPolicyMode};
pub use keepalive::{
    Probe, ProbeResult, TargetChange, TrunkMonitor, build_options, is_alive_answer,
};
pub use table::RoutingTable;

/// The most targets a trunk may list in its configuration.
pub const MAX_CONFIGURED_TARGETS: usize = 32;
/// The most resolved targets kept for one trunk (a host name may resolve to many
/// addresses); further ones are dropped, lowest priority first.
pub const MAX_RESOLVED_TARGETS: usize = 64;

/// Identifies a trunk; assigned by the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrunkId(pub u32);

impl fmt::Display for TrunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trunk#{}", self.0)
    }
}

/// A peer of the SBC reached through one or more targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trunk {
    pub id: TrunkId,
    /// Unique, for logs, metrics and the admin API.
    pub name: String,
    /// At least one, at most [`MAX_CONFIGURED_TARGETS`].
    pub targets: Vec<TargetSpec>,
    /// Whether the peer is inside the trust boundary (its P-Asserted-Identity is believed).
    pub trusted: bool,
    /// Which headers may pass to and from this trunk.
    pub headers: HeaderPolicy,
    /// OPTIONS keep-alive; `None` sends none (targets are then only marked down by the
    /// B2BUA's own failures, if it does so).
    pub keep_alive: Option<KeepAlive>,
}

/// Where a configured target lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetHost {
    Ip(IpAddr),
    /// A host name, resolved per RFC 3263. Kept as configured (compare case-insensitively).
    Name(String),
}

impl TargetHost {
    /// An IP address (IPv6 with or without brackets) or else a host name. The name is not
    /// checked here; [`RoutingTable::new`] refuses an invalid one.
    pub fn parse(host: &str) -> TargetHost {
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match unbracketed.parse::<IpAddr>() {
            Ok(ip) => TargetHost::Ip(ip),
            Err(_) => TargetHost::Name(host.to_owned()),
        }
    }
}

impl fmt::Display for TargetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            TargetHost::Ip(ip) => write!(f, "{ip}"),
            TargetHost::Name(name) => f.write_str(name),
        }
    }
}

/// One configured target of a trunk.
///
/// Resolution follows RFC 3263 §4: an IP address or a name with a port needs no SRV; a name
/// with a transport and no port is looked up with SRV for that transport; a name with
/// neither goes through NAPTR, then SRV, then A/AAAA. A missing transport is UDP (TLS when
/// NAPTR/SRV says so), a missing port 5060 (5061 for TLS).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetSpec {
    pub host: TargetHost,
    pub port: Option<u16>,
    pub transport: Option<Protocol>,
    /// Lower is tried first (RFC 2782). Applies to every address the target resolves to;
    /// SRV records bring their own priority and weight instead.
    pub priority: u16,
    /// Relative share of first attempts among targets of the same priority (RFC 2782).
    pub weight: u16,
}

impl TargetSpec {
    /// A target with priority 10 and weight 0 (same-priority targets of weight 0 are
    /// tried in configuration order).
    pub fn new(host: TargetHost, port: Option<u16>, transport: Option<Protocol>) -> TargetSpec {
        TargetSpec {
            host,
            port,
            transport,
            priority: 10,
            weight: 0,
        }
    }

    /// The resolved target of an IP-literal target (`None` for a host name, which needs
    /// DNS): the transport defaults to UDP and the port to the transport's default.
    pub fn literal(&self) -> Option<ResolvedTarget> {
        let TargetHost::Ip(ip) = self.host else {
            return None;
        };
        let protocol = self.transport.unwrap_or(Protocol::Udp);
        Some(ResolvedTarget {
            addr: SocketAddr::new(ip, self.port.unwrap_or(default_port(protocol))),
            protocol,
            server_name: None,
            priority: self.priority,
            weight: self.weight,
        })
    }
}

/// The default SIP port of a transport: 5061 for TLS, else 5060 (RFC 3261 §19.1.2).
pub fn default_port(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Tls => 5061,
        Protocol::Udp | Protocol::Tcp => 5060,
    }
}

/// A target resolved to an address, ready for `net::Destination`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResolvedTarget {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    /// The configured host name this address was resolved from (not an SRV target's name):
    /// for TLS the name the peer's certificate must match (RFC 5922 §4); `None` for an
    /// IP-literal target.
    pub server_name: Option<String>,
    pub priority: u16,
    pub weight: u16,
}

/// Sends requests to `to_trunk` when every criterion that is set matches; a route with no
/// criteria matches everything (a default route, put it last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Unique, for logs and the admin API.
    pub name: String,
    /// The trunk the request came from ([`RoutingTable::trunk_of_source`]).
    pub match_source_trunk: Option<TrunkId>,
    /// A prefix of the request-URI's user part (`sip:`/`sips:`, `%`-unescaped) or number
    /// (`tel:`). Visual separators (`-`, `.`, `(`, `)`) are ignored in `tel:` numbers and
    /// in `user=phone` SIP URIs, and must not appear in the prefix.
    pub match_user_prefix: Option<String>,
    /// The request-URI's host, compared case-insensitively (a trailing dot is ignored);
    /// `*.example.com` matches every subdomain of `example.com` but not `example.com`
    /// itself; an IP address matches that address. Never matches a `tel:` URI.
    pub match_domain: Option<String>,
    pub to_trunk: TrunkId,
}

/// OPTIONS keep-alive settings of a trunk.
///
/// Every resolved target of the trunk gets one OPTIONS at a time: the next one is sent
/// `interval` after the previous one was answered or given up on. A target is marked down
/// after `down_after` failed probes in a row and up again after `up_after` answered ones in
/// a row. A probe fails when it times out (the transaction layer's Timer F, or
/// `give_up_after` when no result is reported at all) or is answered `503`; any other
/// final response, `4xx`/`5xx`/`6xx` included, shows the peer is alive and answering
/// ([`is_alive_answer`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeepAlive {
    pub interval: Duration,
    /// A probe with no result reported after this long counts as timed out. Longer than
    /// the transaction layer's Timer F (32 s with the default T1), which reports first.
    pub give_up_after: Duration,
    pub down_after: u32,
    pub up_after: u32,
}

impl Default for KeepAlive {
    /// Every 30 s; down after 3 failures, up after 2 answers; give up after 40 s.
    fn default() -> KeepAlive {
        KeepAlive {
            interval: Duration::from_secs(30),
            give_up_after: Duration::from_secs(40),
            down_after: 3,
            up_after: 2,
        }
    }
}
