//! Configuration errors, typed by class. Every message names the file and, where there is
//! one, the key (`sip.listen[1].address`) and the line and column.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::TransportKind;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read configuration: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{}{}: TOML syntax error: {message}", file.display(), LocationSuffix(location))]
    Syntax {
        file: PathBuf,
        location: Option<Location>,
        message: String,
    },
    /// Valid TOML, but a key is unknown, missing, or has a value of the wrong type or form.
    #[error("{}{}: {}{message}", file.display(), LocationSuffix(location), KeyPrefix(key))]
    Value {
        file: PathBuf,
        key: Option<String>,
        location: Option<Location>,
        message: String,
    },
    /// Every value is well-formed, but together they do not make a working appliance.
    #[error("{}", InvalidList { file, problems })]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// A stable name for the error class (logs, metrics, tests).
    pub fn name(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "read",
            ConfigError::Syntax { .. } => "syntax",
            ConfigError::Value { .. } => "value",
            ConfigError::Invalid { .. } => "invalid",
        }
    }
}

/// A 1-based line and column in the configuration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The line and column of byte `offset` in `text` (columns count characters).
    pub fn of_offset(text: &str, offset: usize) -> Location {
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before
            .get(line_start..)
            .map_or(0, |part| part.chars().count())
            + 1;
        Location { line, column }
    }
}

struct LocationSuffix<'a>(&'a Option<Location>);

impl fmt::Display for LocationSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(location) => write!(f, ":{}:{}", location.line, location.column),
            None => Ok(()),
        }
    }
}

struct KeyPrefix<'a>(&'a Option<String>);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, "{key}: "),
            None => Ok(()),
        }
    }
}

struct InvalidList<'a> {
    file: &'a PathBuf,
    problems: &'a [Problem],
}

impl fmt::Display for InvalidList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {problem}", self.file.display())?;
        }
        Ok(())
    }
}

/// One semantic problem, at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key the problem is reported at, e.g. `sip.listen[1].address`.
    pub key: String,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.kind)
    }
}

/// What is wrong, semantically. Each variant has a stable [`name`](ProblemKind::name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    #[error("at least one listener is required")]
    NoListeners,
    #[error("port 0 is not allowed: peers need a fixed port")]
    ZeroPort,
    #[error("{transport} listener {address} is configured twice (also {other})")]
    DuplicateListener {
        transport: TransportKind,
        address: SocketAddr,
        other: String,
    },
    #[error("{what} {address} collides with {other}")]
    AddressConflict {
        what: &'static str,
        address: SocketAddr,
        other: String,
    },
    #[error("`{option}` applies to TLS listeners only (transport is {transport})")]
    TlsOptionOnPlainListener {
        option: &'static str,
        transport: TransportKind,
    },
    #[error("`{present}` is set but `{missing}` is not: set both or neither")]
    IncompleteKeyPair {
        present: &'static str,
        missing: &'static str,
    },
    #[error("TLS listener has no `certificate`/`private_key` and tls.generate_self_signed = false")]
    MissingCertificate,
    #[error("client_auth = \"{0}\" needs `client_ca` (the CAs client certificates chain to)")]
    ClientCaMissing(&'static str),
    #[error("`client_ca` is set but client_auth = \"none\": set client_auth or remove client_ca")]
    ClientCaUnused,
    #[error("{value} is out of range: expected {min} to {max}")]
    OutOfRange { value: u64, min: u64, max: u64 },
    #[error("t1_ms ({t1_ms}) must not exceed t2_ms ({t2_ms})")]
    TimerOrder { t1_ms: u64, t2_ms: u64 },
    #[error("port_min ({0}) must be even: RTP uses the even port of each pair")]
    OddPortMin(u16),
    #[error("port_max ({0}) must be odd: the range must end with a whole RTP/RTCP pair")]
    EvenPortMax(u16),
    #[error("port_min ({min}) must be below port_max ({max})")]
    EmptyPortRange { min: u16, max: u16 },
    #[error("port {0} is privileged: media ports must be 1024 or above")]
    PrivilegedPort(u16),
    #[error("{0} is a wildcard: set `advertise` to the address peers reach")]
    AdvertiseRequired(std::net::IpAddr),
    #[error("{0} cannot be advertised: peers need a concrete unicast address")]
    NotAdvertisable(std::net::IpAddr),
    #[error("invalid trunk name \"{0}\": use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidTrunkName(String),
    #[error("trunk name \"{name}\" is used twice (also {other})")]
    DuplicateTrunkName { name: String, other: String },
    #[error("a trunk needs at least one target")]
    NoTargets,
    #[error("too many targets ({count}); at most {max}")]
    TooManyTargets { count: usize, max: usize },
    #[error("invalid header name \"{0}\": expected a SIP token")]
    InvalidHeaderName(String),
    #[error("invalid route name \"{0}\": use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidRouteName(String),
    #[error("route name \"{name}\" is used twice (also {other})")]
    DuplicateRouteName { name: String, other: String },
    #[error("no trunk is named \"{0}\"")]
    UnknownTrunk(String),
    #[error(
        "unknown SRTP crypto suite {0:?}: expected an SDES name such as \"AES_CM_128_HMAC_SHA1_80\" or \"AEAD_AES_256_GCM\""
    )]
    UnknownSrtpSuite(String),
    #[error("at least one SRTP crypto suite is required unless sdes = \"forbid\"")]
    NoSrtpSuites,
    #[error("sdes and dtls cannot both be \"require\": no peer can meet both")]
    ConflictingSrtpRequirements,
    #[error("an empty criterion matches everything: remove it instead")]
    EmptyCriterion,
    #[error("`{key}` is required: {needed_by}")]
    IdentitySettingMissing {
        key: &'static str,
        needed_by: String,
    },
    #[error("{0}")]
    InvalidIdentitySetting(String),
    #[error(
        "{0:?} is not an IP address or CIDR network (e.g. \"192.0.2.0/24\", \"2001:db8::/32\")"
    )]
    InvalidNetwork(String),
    #[error("unknown digest algorithm {0:?}: expected \"MD5\", \"SHA-256\" or \"SHA-512-256\"")]
    UnknownAlgorithm(String),
    #[error("at least one algorithm is required")]
    NoAlgorithms,
    #[error("invalid realm or domain {0:?}: 1 to 253 printable characters without quotes")]
    InvalidRealm(String),
    #[error("min_expires_secs ({min}) must not exceed max_expires_secs ({max})")]
    ExpiresOrder { min: u64, max: u64 },
}

impl ProblemKind {
    /// A stable name for the problem class (logs, metrics, tests).
    pub fn name(&self) -> &'static str {
        match self {
            ProblemKind::NoListeners => "no_listeners",
            ProblemKind::ZeroPort => "zero_port",
            ProblemKind::DuplicateListener { .. } => "duplicate_listener",
            ProblemKind::AddressConflict { .. } => "address_conflict",
            ProblemKind::TlsOptionOnPlainListener { .. } => "tls_option_on_plain_listener",
            ProblemKind::IncompleteKeyPair { .. } => "incomplete_key_pair",
            ProblemKind::MissingCertificate => "missing_certificate",
            ProblemKind::ClientCaMissing(_) => "client_ca_missing",
            ProblemKind::ClientCaUnused => "client_ca_unused",
            ProblemKind::OutOfRange { .. } => "out_of_range",
            ProblemKind::TimerOrder { .. } => "timer_order",
            ProblemKind::OddPortMin(_) => "odd_port_min",
            ProblemKind::EvenPortMax(_) => "even_port_max",
            ProblemKind::EmptyPortRange { .. } => "empty_port_range",
            ProblemKind::PrivilegedPort(_) => "privileged_port",
            ProblemKind::AdvertiseRequired(_) => "advertise_required",
            ProblemKind::NotAdvertisable(_) => "not_advertisable",
            ProblemKind::InvalidTrunkName(_) => "invalid_trunk_name",
            ProblemKind::DuplicateTrunkName { .. } => "duplicate_trunk_name",
            ProblemKind::NoTargets => "no_targets",
            ProblemKind::TooManyTargets { .. } => "too_many_targets",
            ProblemKind::InvalidHeaderName(_) => "invalid_header_name",
            ProblemKind::InvalidRouteName(_) => "invalid_route_name",
            ProblemKind::DuplicateRouteName { .. } => "duplicate_route_name",
            ProblemKind::UnknownTrunk(_) => "unknown_trunk",
            ProblemKind::UnknownSrtpSuite(_) => "unknown_srtp_suite",
            ProblemKind::NoSrtpSuites => "no_srtp_suites",
            ProblemKind::ConflictingSrtpRequirements => "conflicting_srtp_requirements",
            ProblemKind::EmptyCriterion => "empty_criterion",
            ProblemKind::IdentitySettingMissing { .. } => "identity_setting_missing",
            ProblemKind::InvalidIdentitySetting(_) => "invalid_identity_setting",
            ProblemKind::InvalidNetwork(_) => "invalid_network",
            ProblemKind::UnknownAlgorithm(_) => "unknown_algorithm",
            ProblemKind::NoAlgorithms => "no_algorithms",
            ProblemKind::InvalidRealm(_) => "invalid_realm",
            ProblemKind::ExpiresOrder { .. } => "expires_order",
        }
    }
}
