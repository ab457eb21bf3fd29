//! The appliance configuration: TOML file → typed, validated [`Config`].
//!
//! Loading happens in three steps, each with its own error class (see [`ConfigError`]):
//! 1. read the file and parse TOML syntax (errors carry line and column);
//! 2. deserialize into the types below, every table with `deny_unknown_fields` (errors
//!    carry the key path, e.g. `sip.listen[1].address`, and line and column);
//! 3. semantic validation across keys ([`validate`]), which reports every problem found.
//!
//! Relative paths in the file (`data_dir`, TLS files) are resolved against the directory of
//! the configuration file, so a config means the same thing whatever the working directory.
//!
//! Every key is documented in `docs/configuration.md`; keep the two in step.

mod error;
mod identity;
mod parse;
pub mod security;
mod srtp;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use error::{ConfigError, Location, Problem, ProblemKind};
pub use identity::{
    FetchSettings, IdentityConfig, IncomingIdentity, PublishSettings, TrunkIdentityConfig,
    VerifyMode,
};
pub use security::{AclConfig, AuthConfig, RegistrarSettings, SecurityConfig};
pub use srtp::{RequirementConfig, SrtpPolicyConfig};
pub use validate::validate;

/// The whole appliance configuration, after loading and validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the appliance keeps what it generates and stores (TLS material, later the
    /// database). Absolute after [`load`].
    pub data_dir: PathBuf,
    pub sip: SipConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    /// The admin API listener; `None` when the `[admin]` table is absent (API disabled).
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    #[serde(default)]
    pub media: MediaConfig,
    /// STIR/SHAKEN: verification, signing, certificate fetching and publishing.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// `[cdr]`: call detail records.
    #[serde(default)]
    pub cdr: CdrConfig,
    #[serde(default, rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
    /// Where calls go, tried in order; the first route whose criteria all match wins.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// SIP Digest on the access side.
    #[serde(default)]
    pub auth: AuthConfig,
    /// The registrar of access users.
    #[serde(default)]
    pub registrar: RegistrarSettings,
    /// Bans, scanners, rate limits, overload.
    #[serde(default)]
    pub security: SecurityConfig,
}

/// `[sip]`: signalling listeners, limits and transaction timers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub listen: Vec<ListenerConfig>,
    #[serde(default)]
    pub limits: SipLimits,
    #[serde(default)]
    pub timers: TransactionTimers,
    /// Signalling shards (calls are spread over them by Call-ID, each owned by one task);
    /// 0 means one per CPU core.
    #[serde(default)]
    pub shards: usize,
}

impl SipConfig {
    /// The number of shards to run: `shards`, or one per CPU core.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// The transport protocol of a listener or a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
}

impl TransportKind {
    /// Whether the transport runs over a TCP socket (TCP and TLS share the port space).
    pub fn is_stream(self) -> bool {
        matches!(self, TransportKind::Tcp | TransportKind::Tls)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a TLS listener asks for, or insists on, a client certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    None,
    Optional,
    Require,
}

/// One `[[sip.listen]]` entry.
///
/// After [`crate::tls_material::prepare`] has run, every TLS listener has both
/// `certificate` and `private_key` set (generated ones when none were configured).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub transport: TransportKind,
    #[serde(deserialize_with = "parse::socket_addr")]
    pub address: SocketAddr,
    /// The address peers reach this listener on, written in Via, Contact and Record-Route
    /// of the requests the SBC sends: `"IP"` (the listener's port) or `"IP:PORT"` (e.g.
    /// behind a port-mapping NAT). Required when `address` is a wildcard; defaults to
    /// `address` otherwise.
    #[serde(default, deserialize_with = "parse::advertised_addr")]
    pub advertise: Option<Advertised>,
    /// PEM certificate chain (leaf first). TLS only.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// PEM private key matching `certificate`. TLS only.
    #[serde(default)]
    pub private_key: Option<PathBuf>,
    /// PEM bundle of CAs that client certificates must chain to. TLS only.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Which sources may use this listener.
    #[serde(default)]
    pub acl: AclConfig,
    /// Only trunk sources may use this listener (others are dropped unparsed).
    #[serde(default)]
    pub trunks_only: bool,
}

/// A listener's `advertise` value: an IP address, with or without a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertised {
    pub ip: IpAddr,
    /// `None`: the listener's own port.
    pub port: Option<u16>,
}

impl ListenerConfig {
    /// The address the SBC writes in its messages for this listener.
    pub fn advertised(&self) -> SocketAddr {
        match self.advertise {
            Some(Advertised { ip, port }) => {
                SocketAddr::new(ip, port.unwrap_or(self.address.port()))
            }
            None => self.address,
        }
    }
}

/// `[sip.limits]`: the resource bounds of the signalling transports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipLimits {
    /// Largest SIP message accepted, headers and body, in bytes.
    pub max_message_size: usize,
    /// Most simultaneous TCP/TLS connections in total.
    pub max_connections: usize,
    /// Most simultaneous TCP/TLS connections from one source IP address.
    pub max_connections_per_ip: usize,
    /// SIP transactions in progress or lingering (RFC 3261/6026 keep a finished one for
    /// 32 s to absorb retransmissions), over all shards; past it, new requests get 503. A
    /// relayed call holds about three for 32 s after it ends, so 2,000 calls/s need about
    /// 200,000. Each costs about 1 kB.
    pub max_transactions: usize,
    /// Calls in progress on the whole appliance (dialogs); past it, new calls get `503`
    /// with Retry-After.
    pub max_calls: usize,
    /// A TCP/TLS connection that carries no complete message for this long is closed.
    pub idle_timeout_secs: u64,
    /// A TLS handshake that has not completed after this long is abandoned.
    pub tls_handshake_timeout_ms: u64,
}

impl Default for SipLimits {
    fn default() -> Self {
        SipLimits {
            max_message_size: 65_535,
            max_connections: 4_096,
            max_connections_per_ip: 64,
            max_transactions: 400_000,
            max_calls: 10_000,
            idle_timeout_secs: 120,
            tls_handshake_timeout_ms: 5_000,
        }
    }
}

impl SipLimits {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.tls_handshake_timeout_ms)
    }
}

/// `[sip.timers]`: RFC 3261 §17 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransactionTimers {
    /// RTT estimate (RFC 3261 T1).
    pub t1_ms: u64,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (T2).
    pub t2_ms: u64,
    /// Maximum duration a message remains in the network (T4).
    pub t4_ms: u64,
}

impl Default for TransactionTimers {
    fn default() -> Self {
        TransactionTimers {
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
        }
    }
}

impl TransactionTimers {
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }

    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }

    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }
}

/// `[tls]`: appliance-wide TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Generate (on first start, then reuse) a self-signed certificate for each TLS
    /// listener that has none configured. When false, such a listener is a config error.
    pub generate_self_signed: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            generate_self_signed: true,
        }
    }
}

/// `[admin]`: the REST admin API listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(deserialize_with = "parse::socket_addr")]
    pub listen: SocketAddr,
    /// HTTPS instead of HTTP, optionally with client certificates.
    #[serde(default)]
    pub tls: Option<AdminTlsConfig>,
}

/// `[admin.tls]`: the admin listener's certificate and client-certificate policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTlsConfig {
    /// PEM certificate chain (leaf first).
    pub certificate: PathBuf,
    /// PEM private key matching `certificate`.
    pub private_key: PathBuf,
    /// PEM bundle of CAs that client certificates must chain to.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub client_auth: ClientAuth,
}

/// `[cdr]`: what becomes of call detail records.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdrConfig {
    /// CDRs older than this many days are deleted (once an hour); 0 keeps them forever.
    pub retention_days: u64,
    /// Call records waiting to be written at most; past it (the disk cannot keep up) new
    /// ones are dropped and counted (`sbc_cdr_dropped_total`).
    pub queue: usize,
}

impl Default for CdrConfig {
    fn default() -> Self {
        CdrConfig {
            retention_days: 90,
            queue: 16_384,
        }
    }
}

/// `[media]`: where the media relay allocates RTP/RTCP port pairs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// The address the relay binds its ports on (and advertises in SDP unless `advertise`
    /// is set).
    #[serde(deserialize_with = "parse::ip_addr")]
    pub address: IpAddr,
    /// The address written in SDP `c=` lines: where peers send media (e.g. the public
    /// address of a host behind a 1:1 NAT). Required when `address` is a wildcard.
    #[serde(default, deserialize_with = "parse::optional_ip_addr")]
    pub advertise: Option<IpAddr>,
    /// First port of the range (even: an RTP port).
    pub port_min: u16,
    /// Last port of the range (odd: an RTCP port).
    pub port_max: u16,
    /// A call whose media has carried no packet for this long is ended with BYE on both
    /// legs (0 disables the check).
    pub inactivity_timeout_secs: u64,
    /// Relay worker threads (packet loops); 0 means one per CPU core.
    pub workers: usize,
    /// `[media.srtp]`: the media security policy toward peers that are no trunk, and of
    /// trunks without their own `srtp` table.
    pub srtp: SrtpPolicyConfig,
}

impl MediaConfig {
    /// The address the SDP we send names.
    pub fn advertised(&self) -> IpAddr {
        self.advertise.unwrap_or(self.address)
    }

    /// `None` when the inactivity check is disabled.
    pub fn inactivity_timeout(&self) -> Option<Duration> {
        (self.inactivity_timeout_secs > 0)
            .then(|| Duration::from_secs(self.inactivity_timeout_secs))
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            advertise: None,
            port_min: 20_000,
            port_max: 29_999,
            inactivity_timeout_secs: 60,
            workers: 0,
            srtp: SrtpPolicyConfig::default(),
        }
    }
}

/// One `[[trunk]]`: a peer the SBC exchanges calls with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    pub targets: Vec<TrunkTarget>,
    pub transport: TransportKind,
    /// Whether the peer is inside the trust boundary (e.g. its P-Asserted-Identity is
    /// believed). Untrusted unless said otherwise.
    #[serde(default)]
    pub trusted: bool,
    /// Seconds between OPTIONS probes to each target (a target that stops answering is
    /// marked down and tried last); 0 disables the probes.
    #[serde(default = "default_keepalive_secs")]
    pub keepalive_secs: u64,
    /// Which headers of a call pass through the B2BUA to this trunk (beyond those the SBC
    /// builds itself). Absent: the built-in policy for the trunk's trust.
    #[serde(default)]
    pub headers: Option<HeaderPolicyConfig>,
    /// Caller identity policy (STIR/SHAKEN) of calls from and to the trunk.
    #[serde(default)]
    pub identity: TrunkIdentityConfig,
    /// Networks, besides its targets' addresses, the trunk's traffic comes from
    /// (`allow`), and networks never taken for it (`deny`).
    #[serde(default)]
    pub acl: AclConfig,
    /// Requests from this trunk must come over TLS.
    #[serde(default)]
    pub require_tls: bool,
    /// ... with a client certificate that verified against the listener's `client_ca`.
    #[serde(default)]
    pub require_client_cert: bool,
    /// Calls in progress through this trunk at most, both directions together (0: no
    /// limit); past it, new calls get `503` with Retry-After.
    #[serde(default)]
    pub max_calls: u32,
    /// The trunk stores and forwards messages (an SMS or voicemail gateway): its MESSAGE
    /// requests are exempt from `security.message_date_window_secs`.
    #[serde(default)]
    pub store_and_forward: bool,
    /// The trunk's media security policy; absent: `[media.srtp]`.
    #[serde(default)]
    pub srtp: Option<SrtpPolicyConfig>,
}

fn default_keepalive_secs() -> u64 {
    30
}

/// `trunk.headers`: exactly one of an allow-list or a deny-list of header names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum HeaderPolicyConfig {
    /// Only these headers pass.
    Allow(Vec<String>),
    /// Every header passes except these.
    Deny(Vec<String>),
}

/// One `[[route]]`: criteria (all optional; absent ones match anything) and the trunk that
/// gets the call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// The call came from this trunk (by source address).
    #[serde(default)]
    pub from_trunk: Option<String>,
    /// The Request-URI's user part (or `tel:` number) starts with this.
    #[serde(default)]
    pub user_prefix: Option<String>,
    /// The Request-URI's host is this domain (case-insensitive).
    #[serde(default)]
    pub domain: Option<String>,
    pub to_trunk: String,
}

/// Where a trunk sends requests: `"host[:port]"`, or a table
/// `{ address = "host[:port]", priority = 0, weight = 1 }`; host is an IP address or a DNS
/// name. Lower priorities are tried first; within one priority, targets are chosen at
/// random in proportion to their weights (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "parse::TargetRepr")]
pub struct TrunkTarget {
    pub host: TargetHost,
    /// `None`: found through DNS (RFC 3263 SRV) for a name, the transport's default port
    /// for an IP address.
    pub port: Option<u16>,
    pub priority: u16,
    pub weight: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    Ip(IpAddr),
    Domain(String),
}

impl fmt::Display for TrunkTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.port) {
            (TargetHost::Ip(IpAddr::V6(ip)), Some(port)) => write!(f, "[{ip}]:{port}"),
            (TargetHost::Ip(ip), Some(port)) => write!(f, "{ip}:{port}"),
            (TargetHost::Domain(name), Some(port)) => write!(f, "{name}:{port}"),
            (TargetHost::Ip(ip), None) => write!(f, "{ip}"),
            (TargetHost::Domain(name), None) => f.write_str(name),
        }
    }
}

/// Read, parse and validate the configuration file at `path`.
///
/// Relative paths inside it are resolved against the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let base = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let base = std::path::absolute(&base).unwrap_or(base);
    from_toml(&text, path, &base)
}

/// Parse and validate configuration text; `file` names it in errors, `base` is the
/// directory relative paths are resolved against.
pub fn from_toml(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
    let mut config = parse::deserialize(text, file)?;
    config.resolve_paths(base);
    let problems = validate(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid {
            file: file.to_path_buf(),
            problems,
        })
    }
}

impl Config {
    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.data_dir);
        if let Some(tls) = self.admin.as_mut().and_then(|admin| admin.tls.as_mut()) {
            resolve(&mut tls.certificate);
            resolve(&mut tls.private_key);
            if let Some(ca) = tls.client_ca.as_mut() {
                resolve(ca);
            }
        }
        for listener in &mut self.sip.listen {
            for file in [
                &mut listener.certificate,
                &mut listener.private_key,
                &mut listener.client_ca,
            ]
            .into_iter()
            .flatten()
            {
                resolve(file);
            }
        }
        let identity = &mut self.identity;
        for file in [
            &mut identity.trust_anchors,
            &mut identity.certificate,
            &mut identity.private_key,
            &mut identity.fetch.https_ca,
        ]
        .into_iter()
        .flatten()
        {
            resolve(file);
        }
        if let Some(publish) = &mut identity.publish {
            resolve(&mut publish.tls_certificate);
            resolve(&mut publish.tls_private_key);
        }
    }
}
