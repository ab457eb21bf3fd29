//! RFC 3263 resolution of trunk targets (NAPTR → SRV → A/AAAA), and the task that keeps
//! every trunk's targets fresh as their DNS records expire.
//!
//! [`TargetResolver::resolve`] turns one [`TargetSpec`] into addresses (RFC 3263 §4):
//!
//! * an IP address needs no DNS;
//! * a name with a port: A/AAAA only, the transport as given (UDP when not);
//! * a name with a transport and no port: SRV for that transport (`_sip._udp`, `_sip._tcp`,
//!   `_sips._tcp`); when the name has no SRV records, A/AAAA on the transport's default
//!   port;
//! * a name with neither: NAPTR, using the records whose flag is `s` and whose service is
//!   `SIP+D2U`, `SIP+D2T` or `SIPS+D2T` in (order, preference) order, each followed by its
//!   SRV replacement; without usable NAPTR records, SRV for `_sips._tcp`, `_sip._tcp`,
//!   `_sip._udp` (in that order of preference); without any, A/AAAA on UDP port 5060.
//!   SCTP (`D2S`) is not supported by the transport and is skipped.
//!
//! SRV priority and weight are carried into each [`ResolvedTarget`] so that the routing
//! table can order them (RFC 2782). When several SRV sets are used (several NAPTR records,
//! or several transports), the priorities of each later set are shifted past those of the
//! sets before it, so the NAPTR (or transport) preference comes first. Targets found
//! through A/AAAA alone take the spec's priority and weight.
//!
//! Only "no such records" answers (NXDOMAIN, NODATA) move resolution on to the next step;
//! a lookup that fails (timeout, SERVFAIL …) fails the whole resolution, so that a broken
//! DNS server never makes the SBC fall back to the wrong addresses. [`TrunkResolver`] then
//! keeps the last good result.

mod refresh;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use super::Protocol;
use crate::routing::{MAX_RESOLVED_TARGETS, ResolvedTarget, TargetHost, TargetSpec, default_port};

pub use refresh::{RefreshSettings, ResolvedTrunk, TrunkResolver};

/// The most NAPTR records, SRV records per name and addresses per name used.
const MAX_RECORDS: usize = 16;

/// Which address families A/AAAA lookups ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AddressFamilies {
    Ipv4,
    Ipv6,
    /// A and AAAA; IPv4 addresses first.
    #[default]
    Both,
}

/// How the resolver reaches DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverSettings {
    /// Name servers to ask (UDP, then TCP for truncated answers); empty means those of
    /// `/etc/resolv.conf`.
    pub name_servers: Vec<SocketAddr>,
    /// Per query attempt.
    pub timeout: Duration,
    pub attempts: usize,
    pub families: AddressFamilies,
    /// Whether `/etc/hosts` answers A/AAAA lookups before DNS.
    pub use_hosts_file: bool,
}

impl Default for ResolverSettings {
    /// `/etc/resolv.conf`, 2 s per attempt, 2 attempts, IPv4 and IPv6, `/etc/hosts` used.
    fn default() -> ResolverSettings {
        ResolverSettings {
            name_servers: Vec::new(),
            timeout: Duration::from_secs(2),
            attempts: 2,
            families: AddressFamilies::Both,
            use_hosts_file: true,
        }
    }
}

/// Why a target could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The system resolver configuration could not be read.
    #[error("cannot set up DNS resolution: {0}")]
    Setup(String),
    /// The name is not a valid DNS name.
    #[error("{0:?} is not a valid DNS name")]
    InvalidName(String),
    /// DNS answered, but with no usable address.
    #[error("{0} has no usable SIP address in DNS")]
    NotFound(String),
    /// A lookup failed (timeout, server failure, network error).
    #[error("looking up {name} failed: {reason}")]
    LookupFailed { name: String, reason: String },
}

impl ResolveError {
    /// A stable name for logs and metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            ResolveError::Setup(_) => "setup",
            ResolveError::InvalidName(_) => "invalid_name",
            ResolveError::NotFound(_) => "not_found",
            ResolveError::LookupFailed { .. } => "lookup_failed",
        }
    }
}

/// The addresses of one target spec, and until when its DNS records are valid (`None` for
/// an IP literal, which never expires).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub targets: Vec<ResolvedTarget>,
    pub expires: Option<Instant>,
}

/// An RFC 3263 resolver for trunk targets, on top of hickory-resolver (which caches
/// answers for their TTL). Cheap to clone.
#[derive(Clone, Debug)]
pub struct TargetResolver {
    dns: TokioResolver,
    families: AddressFamilies,
}

impl TargetResolver {
    /// A resolver configured from `/etc/resolv.conf` (fails when it cannot be read), or,
    /// when `settings.name_servers` are given, asking only those (no search domains).
    pub fn new(settings: &ResolverSettings) -> Result<TargetResolver, ResolveError> {
        let (config, mut options) = if settings.name_servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| ResolveError::Setup(e.to_string()))?
        } else {
            let servers = settings.name_servers.iter().map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp, tcp])
            });
            let config = ResolverConfig::from_name_servers(servers.collect());
            (config, ResolverOpts::default())
        };
        options.timeout = settings.timeout;
        options.attempts = settings.attempts.max(1);
        options.ip_strategy = match settings.families {
            AddressFamilies::Ipv4 => LookupIpStrategy::Ipv4Only,
            AddressFamilies::Ipv6 => LookupIpStrategy::Ipv6Only,
            AddressFamilies::Both => LookupIpStrategy::Ipv4AndIpv6,
        };
        options.use_hosts_file = if settings.use_hosts_file {
            ResolveHosts::Always
        } else {
            ResolveHosts::Never
        };
        let dns = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| ResolveError::Setup(e.to_string()))?;
        Ok(TargetResolver {
            dns,
            families: settings.families,
        })
    }

    /// Resolves one target per RFC 3263 (see the module documentation).
    pub async fn resolve(&self, spec: &TargetSpec) -> Result<Resolution, ResolveError> {
        let name = match &spec.host {
            TargetHost::Ip(_) => {
                return Ok(Resolution {
                    targets: spec.literal().into_iter().collect(),
                    expires: None,
                });
            }
            TargetHost::Name(name) => name,
        };
        let server_name = name.strip_suffix('.').unwrap_or(name);
        let mut lookup = Resolving {
            resolver: self,
            server_name,
            expires: None,
        };
        let targets = match (spec.port, spec.transport) {
            (Some(port), transport) => {
                let protocol = transport.unwrap_or(Protocol::Udp);
                let host = dns_name(name)?;
                lookup
                    .addresses(&host, port, protocol, spec.priority, spec.weight)
                    .await?
            }
            (None, Some(protocol)) => match lookup.srv(name, protocol).await? {
                Some(found) => found,
                None => {
                    let host = dns_name(name)?;
                    let port = default_port(protocol);
                    lookup
                        .addresses(&host, port, protocol, spec.priority, spec.weight)
                        .await?
                }
            },
            (None, None) => lookup.naptr_srv_a(name, spec).await?,
        };
        if targets.is_empty() {
            return Err(ResolveError::NotFound(server_name.to_owned()));
        }
        Ok(Resolution {
            targets,
            expires: lookup.expires,
        })
    }
}

/// One resolution in progress: the name it is for and the earliest record expiry seen.
struct Resolving<'a> {
    resolver: &'a TargetResolver,
    server_name: &'a str,
    expires: Option<Instant>,
}

impl Resolving<'_> {
    fn saw(&mut self, valid_until: Instant) {
        self.expires = Some(self.expires.map_or(valid_until, |e| e.min(valid_until)));
    }

    /// NAPTR, then SRV, then A/AAAA (RFC 3263 §4.1, §4.2).
    async fn naptr_srv_a(
        &mut self,
        name: &str,
        spec: &TargetSpec,
    ) -> Result<Vec<ResolvedTarget>, ResolveError> {
        let host = dns_name(name)?;
        let mut services = Vec::new();
        if let Some(lookup) = self.records(&host, RecordType::NAPTR).await? {
            self.saw(lookup.valid_until());
            for record in lookup.answers() {
                if let RData::NAPTR(naptr) = &record.data
                    && naptr.flags.eq_ignore_ascii_case(b"s")
                    && let Some(protocol) = naptr_protocol(&naptr.services)
                {
                    services.push((
                        naptr.order,
                        naptr.preference,
                        protocol,
                        naptr.replacement.clone(),
                    ));
                }
            }
        }
        services.sort_by_key(|&(order, preference, ..)| (order, preference));
        services.truncate(MAX_RECORDS);
        let mut sets = Vec::new();
        let mut found_count = 0;
        for (_, _, protocol, replacement) in services {
            if found_count >= MAX_RESOLVED_TARGETS {
                break;
            }
            if let Some(found) = self.srv_at(&replacement, protocol).await? {
                found_count += found.len();
                sets.push(found);
            }
        }
        if sets.is_empty() {
            for protocol in [Protocol::Tls, Protocol::Tcp, Protocol::Udp] {
                if let Some(found) = self.srv(name, protocol).await? {
                    sets.push(found);
                }
            }
        }
        if sets.is_empty() {
            let port = default_port(Protocol::Udp);
            return self
                .addresses(&host, port, Protocol::Udp, spec.priority, spec.weight)
                .await;
        }
        Ok(concatenate_priorities(sets))
    }

    /// SRV for `name` over `protocol`: `None` when there are no SRV records.
    async fn srv(
        &mut self,
        name: &str,
        protocol: Protocol,
    ) -> Result<Option<Vec<ResolvedTarget>>, ResolveError> {
        let service = match protocol {
            Protocol::Udp => "_sip._udp",
            Protocol::Tcp => "_sip._tcp",
            Protocol::Tls => "_sips._tcp",
        };
        let srv_name = dns_name(&format!("{service}.{name}"))?;
        self.srv_at(&srv_name, protocol).await
    }

    /// SRV records at `srv_name`, each target resolved to addresses.
    async fn srv_at(
        &mut self,
        srv_name: &Name,
        protocol: Protocol,
    ) -> Result<Option<Vec<ResolvedTarget>>, ResolveError> {
        let Some(lookup) = self.records(srv_name, RecordType::SRV).await? else {
            return Ok(None);
        };
        self.saw(lookup.valid_until());
        let mut targets = Vec::new();
        for record in lookup.answers().iter().take(MAX_RECORDS) {
            let RData::SRV(srv) = &record.data else {
                continue;
            };
            // A target of "." means the service is decidedly not available (RFC 2782).
            if srv.target.is_root() {
                continue;
            }
            if targets.len() >= MAX_RESOLVED_TARGETS {
                break;
            }
            let found = self
                .addresses(&srv.target, srv.port, protocol, srv.priority, srv.weight)
                .await?;
            targets.extend(found);
        }
        Ok(Some(targets))
    }

    /// A/AAAA for `host`: empty when there are no such records.
    async fn addresses(
        &mut self,
        host: &Name,
        port: u16,
        protocol: Protocol,
        priority: u16,
        weight: u16,
    ) -> Result<Vec<ResolvedTarget>, ResolveError> {
        let lookup = match self.resolver.dns.lookup_ip(host.clone()).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
            Err(e) => return Err(lookup_failed(host, &e)),
        };
        self.saw(lookup.valid_until());
        let families = self.resolver.families;
        Ok(lookup
            .iter()
            .filter(|ip| match families {
                AddressFamilies::Ipv4 => ip.is_ipv4(),
                AddressFamilies::Ipv6 => ip.is_ipv6(),
                AddressFamilies::Both => true,
            })
            .take(MAX_RECORDS)
            .map(|ip: IpAddr| ResolvedTarget {
                addr: SocketAddr::new(ip, port),
                protocol,
                server_name: Some(self.server_name.to_owned()),
                priority,
                weight,
            })
            .collect())
    }

    /// The records of one type: `None` when the name has none (NXDOMAIN or NODATA).
    async fn records(
        &self,
        name: &Name,
        kind: RecordType,
    ) -> Result<Option<hickory_resolver::lookup::Lookup>, ResolveError> {
        match self.resolver.dns.lookup(name.clone(), kind).await {
            Ok(lookup) => Ok(Some(lookup)),
            Err(e) if e.is_no_records_found() => Ok(None),
            Err(e) => Err(lookup_failed(name, &e)),
        }
    }
}

fn dns_name(name: &str) -> Result<Name, ResolveError> {
    Name::from_ascii(name).map_err(|_| ResolveError::InvalidName(name.to_owned()))
}

fn lookup_failed(name: &Name, error: &NetError) -> ResolveError {
    ResolveError::LookupFailed {
        name: name.to_ascii(),
        reason: error.to_string(),
    }
}

/// The transport of a NAPTR service field we can use (RFC 3263 §4.1).
fn naptr_protocol(services: &[u8]) -> Option<Protocol> {
    if services.eq_ignore_ascii_case(b"SIP+D2U") {
        Some(Protocol::Udp)
    } else if services.eq_ignore_ascii_case(b"SIP+D2T") {
        Some(Protocol::Tcp)
    } else if services.eq_ignore_ascii_case(b"SIPS+D2T") {
        Some(Protocol::Tls)
    } else {
        None
    }
}

/// Joins SRV sets in order of preference: each set's priorities are shifted past the
/// highest priority of the sets before it (the first set keeps its own).
fn concatenate_priorities(sets: Vec<Vec<ResolvedTarget>>) -> Vec<ResolvedTarget> {
    let mut out = Vec::new();
    let mut base: u16 = 0;
    for set in sets {
        let mut next_base = base;
        for mut target in set {
            target.priority = target.priority.saturating_add(base);
            next_base = next_base.max(target.priority.saturating_add(1));
            out.push(target);
        }
        base = next_base;
    }
    out.truncate(MAX_RESOLVED_TARGETS);
    out
}
