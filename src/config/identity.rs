//! `[identity]` and `[trunk.identity]`: STIR/SHAKEN verification, signing, the
//! certificate fetcher and the publisher of the SBC's own certificate. Documented in
//! `docs/configuration.md` and `docs/identity.md`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::parse;

/// `[identity]`: appliance-wide STIR/SHAKEN settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// PEM file of the STI-CA root certificates PASSporT certificates must chain to.
    /// Required when a trunk verifies.
    pub trust_anchors: Option<PathBuf>,
    /// How far `iat` and the Date header may be from now, either way (seconds).
    pub max_iat_age_secs: u64,
    /// Refuse certificates without a TNAuthList extension (ATIS-1000080 requires one).
    pub require_tn_auth_list: bool,
    /// How long a call may wait for the certificate its verification needs (ms).
    pub max_wait_ms: u64,
    /// Calls waiting for a certificate at most, per signalling shard.
    pub max_waiting_calls: usize,
    /// The SBC's STIR certificate chain (PEM, leaf first). Required when a trunk signs.
    pub certificate: Option<PathBuf>,
    /// The private key (PEM, P-256) of `certificate`.
    pub private_key: Option<PathBuf>,
    /// Where verifiers fetch `certificate`: written as `x5u` and `info`. `https` only.
    pub x5u: Option<String>,
    pub fetch: FetchSettings,
    /// Serve `certificate` at the path of `x5u` (absent: it is served elsewhere).
    pub publish: Option<PublishSettings>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            trust_anchors: None,
            max_iat_age_secs: 60,
            require_tn_auth_list: true,
            max_wait_ms: 3_000,
            max_waiting_calls: 1_024,
            certificate: None,
            private_key: None,
            x5u: None,
            fetch: FetchSettings::default(),
            publish: None,
        }
    }
}

/// `[identity.fetch]`: how certificates are fetched from `x5u` URLs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchSettings {
    /// Ports an `x5u` URL may name.
    pub ports: Vec<u16>,
    /// RFC 6890 special-purpose ranges (loopback, private …) fetching is allowed from
    /// anyway, as `address/prefix`. Empty by default: such addresses are refused.
    pub allow_ranges: Vec<String>,
    pub timeout_ms: u64,
    pub max_bytes: usize,
    /// PEM file of the CAs HTTPS certificate servers must chain to (default: the
    /// system's trust store).
    pub https_ca: Option<PathBuf>,
    pub cache_entries: usize,
    /// How long a certificate is kept when its response has no cache headers.
    pub default_ttl_secs: u64,
    /// The longest a certificate is kept whatever its headers say.
    pub max_ttl_secs: u64,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            ports: vec![443, 8443],
            allow_ranges: Vec::new(),
            timeout_ms: 2_000,
            max_bytes: 16 * 1024,
            https_ca: None,
            cache_entries: 4_096,
            default_ttl_secs: 3_600,
            max_ttl_secs: 86_400,
        }
    }
}

/// `[identity.publish]`: the HTTPS listener serving the SBC's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishSettings {
    #[serde(deserialize_with = "parse::socket_addr")]
    pub listen: SocketAddr,
    /// The HTTPS server's own TLS certificate chain and key (PEM).
    pub tls_certificate: PathBuf,
    pub tls_private_key: PathBuf,
    /// `Cache-Control: max-age` of the answers.
    #[serde(default = "default_publish_max_age")]
    pub max_age_secs: u64,
}

fn default_publish_max_age() -> u64 {
    3_600
}

/// What happens to calls from a trunk whose Identity does not verify.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    #[default]
    Off,
    Mark,
    Enforce,
}

/// What to do with the Identity headers a call arrived with, toward this trunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncomingIdentity {
    #[default]
    Auto,
    Keep,
    Remove,
}

/// `[trunk.identity]`: one trunk's identity policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrunkIdentityConfig {
    /// Calls from the trunk: `off`, `mark` (failures go on as TN-Validation-Failed) or
    /// `enforce` (failures are rejected with the RFC 8224 status).
    pub verify: VerifyMode,
    /// A call without Identity fails verification (428 when enforced).
    pub require: bool,
    /// Rejections carry RFC 9410 `Reason: STIR` (default true).
    pub stir_reason: Option<bool>,
    /// Calls from the trunk come from a known customer (attestation B).
    pub customer: bool,
    /// Keep the verified attestation of this trunk's calls when re-signing them.
    pub trust_attestation: bool,
    /// The trust domain; calls crossing between domains are re-signed. Default: the
    /// trunk's own name.
    pub domain: Option<String>,
    /// Sign calls to this trunk.
    pub sign: bool,
    pub incoming_identity: IncomingIdentity,
    /// Send the verification status as `verstat` to this trunk (default: when the
    /// trunk is trusted).
    pub verstat: Option<bool>,
}
