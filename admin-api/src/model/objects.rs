//! Config objects: trunks, routes and ACLs. Each spec is the same document in a `POST`,
//! a `PUT` and under `spec` in a `GET`; [`TrunkSpec::check`] and its siblings check what
//! can be checked field by field (the appliance then checks references between objects).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Origin;
use crate::appliance::ApiError;

/// Names of trunks, routes and ACLs.
const NAME_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";
/// Targets per trunk at most.
pub const MAX_TARGETS: usize = 16;
/// Header names in a header policy at most.
const MAX_HEADER_NAMES: usize = 128;
/// Rules per ACL at most.
pub const MAX_ACL_RULES: usize = 1024;
/// Listeners or trunks an ACL applies to at most.
const MAX_ACL_TARGETS: usize = 64;

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// One target of a trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkTarget {
    /// `host`, `host:port`, `[v6]:port`: an IP address or a DNS name (a name without a
    /// port is looked up with RFC 3263 NAPTR/SRV).
    #[schema(min_length = 1, max_length = 261, example = "198.51.100.20:5060")]
    pub address: String,
    /// Lower priorities are tried first.
    #[serde(default)]
    #[schema(maximum = 65535)]
    pub priority: u16,
    /// Within a priority, targets are chosen in proportion to their weights.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 65535, default = 1)]
    pub weight: u16,
}

fn one() -> u16 {
    1
}

/// Which headers of a call pass to a trunk: exactly one of `allow` or `deny`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum HeaderPolicy {
    /// Only these headers pass.
    Allow(Vec<String>),
    /// Every header passes except these.
    Deny(Vec<String>),
}

/// A SIP trunk (a peer the SBC exchanges calls with); the same keys as `[[trunk]]` in
/// the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkSpec {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "carrier")]
    pub name: String,
    #[schema(min_items = 1, max_items = 16)]
    pub targets: Vec<TrunkTarget>,
    pub transport: Transport,
    /// Inside the trust boundary (its P-Asserted-Identity is believed).
    #[serde(default)]
    pub trusted: bool,
    /// Seconds between OPTIONS probes to each target: 0 (off) or 5 to 3600.
    #[serde(default = "default_keepalive")]
    #[schema(maximum = 3600, default = 30)]
    pub keepalive_secs: u64,
    /// The header policy toward this trunk (absent: the built-in one for its trust).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HeaderPolicy>,
    /// Caller identity (STIR/SHAKEN) policy of calls from and to this trunk (absent:
    /// neither verified nor signed). Keys, certificates and STI-CA roots are set under
    /// `/identity`, never here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<TrunkIdentitySpec>,
    /// Networks, besides its targets' addresses, the trunk's traffic comes from
    /// (`allow`), and networks never taken for it (`deny`); ACL objects naming the trunk
    /// apply too.
    #[serde(default, skip_serializing_if = "TrunkAclSpec::is_empty")]
    pub acl: TrunkAclSpec,
    /// Requests from this trunk must come over TLS (else `403`).
    #[serde(default)]
    pub require_tls: bool,
    /// ... with a client certificate that verified against the listener's `client_ca`.
    #[serde(default)]
    pub require_client_cert: bool,
    /// Calls in progress through this trunk at most, both directions together (0: no
    /// limit); past it, new calls get `503`.
    #[serde(default)]
    pub max_calls: u32,
    /// The trunk stores and forwards messages (an SMS or voicemail gateway): its MESSAGE
    /// requests are exempt from the Date freshness window.
    #[serde(default)]
    pub store_and_forward: bool,
    /// The trunk's media security policy (absent: the appliance's `[media.srtp]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srtp: Option<SrtpPolicySpec>,
}

/// Networks at most in a trunk's `acl.allow` or `acl.deny`.
pub const MAX_TRUNK_ACL_ENTRIES: usize = 256;
/// SRTP crypto suites at most in a policy.
const MAX_SRTP_SUITES: usize = 16;

/// A trunk's own ACL: IPv4 or IPv6 addresses or CIDR networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrunkAclSpec {
    #[schema(max_items = 256)]
    pub allow: Vec<String>,
    #[schema(max_items = 256)]
    pub deny: Vec<String>,
}

impl TrunkAclSpec {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// How much a side of a call wants a kind of media key exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyExchange {
    /// Calls that cannot use it are refused (`488`).
    Require,
    /// Offered first.
    Prefer,
    /// Used when the peer offers it.
    Allow,
    /// Never used.
    Forbid,
}

/// A trunk's media security policy: the keys of `srtp` in a `[[trunk]]`. Absent keys
/// take the defaults of `docs/configuration.md`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SrtpPolicySpec {
    /// SDES-SRTP (RFC 4568); absent: `allow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdes: Option<KeyExchange>,
    /// DTLS-SRTP (RFC 5763/5764); absent: `allow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtls: Option<KeyExchange>,
    /// SDES crypto suites, preferred first (`AES_CM_128_HMAC_SHA1_80`,
    /// `AEAD_AES_128_GCM` …); absent: the built-in list.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 16)]
    pub suites: Option<Vec<String>>,
    /// Write SDES keys into SDP over UDP or TCP signalling (not only TLS).
    pub sdes_over_insecure_signalling: bool,
}

/// What happens to calls from a trunk whose Identity does not verify.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// Not verified.
    #[default]
    Off,
    /// Verified; a call that fails goes on, marked `verstat=TN-Validation-Failed`.
    Mark,
    /// Verified; a call that fails is rejected with its RFC 8224 status.
    Enforce,
}

/// What happens to the Identity headers a call arrived with, toward a trunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncomingIdentity {
    /// Removed when the SBC signs the call, kept otherwise.
    #[default]
    Auto,
    Keep,
    Remove,
}

/// A trunk's caller identity policy: the same keys as `[trunk.identity]` in the
/// configuration file (`docs/identity.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrunkIdentitySpec {
    /// Verify the Identity of calls from this trunk.
    pub verify: VerifyMode,
    /// A call without Identity fails verification (428 when enforced).
    pub require: bool,
    /// Rejections carry RFC 9410 `Reason: STIR` (absent: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stir_reason: Option<bool>,
    /// Calls from this trunk come from a known customer (attestation B).
    pub customer: bool,
    /// Keep the verified attestation of this trunk's calls when re-signing them.
    pub trust_attestation: bool,
    /// The trust domain (absent: the trunk's own name).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64)]
    pub domain: Option<String>,
    /// Sign calls to this trunk.
    pub sign: bool,
    pub incoming_identity: IncomingIdentity,
    /// Send the verification status as `verstat` (absent: when the trunk is trusted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verstat: Option<bool>,
}

fn default_keepalive() -> u64 {
    30
}

/// A routing rule: criteria (absent ones match anything) and the trunk that gets the
/// call. Routes created here are tried before those of the configuration file, by
/// ascending `priority`, then by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "to-carrier")]
    pub name: String,
    /// Lower is tried first.
    #[serde(default = "default_priority")]
    #[schema(maximum = 65535, default = 100)]
    pub priority: u16,
    /// The call came from this trunk (by source address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub from_trunk: Option<String>,
    /// The Request-URI's user part (or `tel:` number) starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64)]
    pub user_prefix: Option<String>,
    /// The Request-URI's host is this domain (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 253)]
    pub domain: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "carrier")]
    pub to_trunk: String,
}

fn default_priority() -> u16 {
    100
}

/// What an ACL rule does with a matching source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    Allow,
    Deny,
}

/// One ACL rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AclRule {
    pub action: AclAction,
    /// An IPv4 or IPv6 address or network in CIDR notation.
    #[schema(min_length = 1, max_length = 64, example = "192.0.2.0/24")]
    pub source: String,
}

/// An access control list: rules tried in order (the first that matches the source
/// address decides), else `default_action`; applied to SIP listeners (`udp:IP:PORT`,
/// `tcp:…`, `tls:…`) and trunks by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AclSpec {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "carriers-only")]
    pub name: String,
    #[serde(default)]
    #[schema(max_items = 1024)]
    pub rules: Vec<AclRule>,
    pub default_action: AclAction,
    /// SIP listeners it applies to, as `transport:address` (`udp:192.0.2.1:5060`).
    #[serde(default)]
    #[schema(max_items = 64)]
    pub listeners: Vec<String>,
    /// Trunks it applies to (calls from their addresses).
    #[serde(default)]
    #[schema(max_items = 64)]
    pub trunks: Vec<String>,
}

/// A trunk as listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrunkObject {
    pub name: String,
    pub spec: TrunkSpec,
    pub version: i64,
    pub origin: Origin,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

/// A route as listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RouteObject {
    pub name: String,
    pub spec: RouteSpec,
    pub version: i64,
    pub origin: Origin,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

/// An ACL as listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AclObject {
    pub name: String,
    pub spec: AclSpec,
    pub version: i64,
    pub origin: Origin,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

/// 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn is_simple_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    if is_simple_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{name:?} must be 1 to 64 letters, digits, '-', '_' or '.' ({NAME_PATTERN})"),
        ))
    }
}

/// An RFC 3261 token, as header names are.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|byte| {
            byte.is_ascii_alphanumeric()
                || matches!(
                    byte,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        })
}

impl TrunkSpec {
    /// Checks every field on its own.
    pub fn check(&self) -> Result<(), ApiError> {
        check_name("name", &self.name)?;
        if self.targets.is_empty() {
            return Err(ApiError::invalid(
                "targets",
                "a trunk needs at least one target",
            ));
        }
        if self.targets.len() > MAX_TARGETS {
            return Err(ApiError::invalid(
                "targets",
                format!("at most {MAX_TARGETS} targets"),
            ));
        }
        for (index, target) in self.targets.iter().enumerate() {
            if target.address.is_empty() || target.address.len() > 261 {
                return Err(ApiError::invalid(
                    format!("targets[{index}].address"),
                    "must be 1 to 261 characters: host, host:port or [v6]:port",
                ));
            }
            if target.weight == 0 {
                return Err(ApiError::invalid(
                    format!("targets[{index}].weight"),
                    "must be at least 1",
                ));
            }
        }
        if self.keepalive_secs != 0 && !(5..=3_600).contains(&self.keepalive_secs) {
            return Err(ApiError::invalid(
                "keepalive_secs",
                "must be 0 (no probes) or 5 to 3600",
            ));
        }
        for (which, entries) in [("allow", &self.acl.allow), ("deny", &self.acl.deny)] {
            if entries.len() > MAX_TRUNK_ACL_ENTRIES {
                return Err(ApiError::invalid(
                    format!("acl.{which}"),
                    format!("at most {MAX_TRUNK_ACL_ENTRIES} networks"),
                ));
            }
            for (index, entry) in entries.iter().enumerate() {
                if parse_cidr(entry).is_none() {
                    return Err(ApiError::invalid(
                        format!("acl.{which}[{index}]"),
                        format!("{entry:?} is not an IPv4 or IPv6 address or CIDR network"),
                    ));
                }
            }
        }
        if let Some(srtp) = &self.srtp {
            let suites = srtp.suites.as_deref().unwrap_or_default();
            if suites.len() > MAX_SRTP_SUITES {
                return Err(ApiError::invalid(
                    "srtp.suites",
                    format!("at most {MAX_SRTP_SUITES} suites"),
                ));
            }
            for (index, suite) in suites.iter().enumerate() {
                let well_formed = (1..=64).contains(&suite.len())
                    && suite
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
                if !well_formed {
                    return Err(ApiError::invalid(
                        format!("srtp.suites[{index}]"),
                        format!("{suite:?} is not an SRTP crypto suite name"),
                    ));
                }
            }
        }
        if let Some(policy) = &self.headers {
            let (which, names) = match policy {
                HeaderPolicy::Allow(names) => ("allow", names),
                HeaderPolicy::Deny(names) => ("deny", names),
            };
            if names.len() > MAX_HEADER_NAMES {
                return Err(ApiError::invalid(
                    format!("headers.{which}"),
                    format!("at most {MAX_HEADER_NAMES} names"),
                ));
            }
            for (index, name) in names.iter().enumerate() {
                if !is_header_name(name) {
                    return Err(ApiError::invalid(
                        format!("headers.{which}[{index}]"),
                        format!("{name:?} is not a SIP header name"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl RouteSpec {
    /// Checks every field on its own.
    pub fn check(&self) -> Result<(), ApiError> {
        check_name("name", &self.name)?;
        check_name("to_trunk", &self.to_trunk)?;
        if let Some(from) = &self.from_trunk {
            check_name("from_trunk", from)?;
        }
        if let Some(prefix) = &self.user_prefix {
            let well_formed =
                (1..=64).contains(&prefix.chars().count()) && !prefix.chars().any(char::is_control);
            if !well_formed {
                return Err(ApiError::invalid(
                    "user_prefix",
                    "must be 1 to 64 characters without control characters",
                ));
            }
        }
        if let Some(domain) = &self.domain {
            let well_formed = (1..=253).contains(&domain.len())
                && domain
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.'));
            if !well_formed {
                return Err(ApiError::invalid(
                    "domain",
                    "must be a host name: 1 to 253 letters, digits, '-' or '.'",
                ));
            }
        }
        Ok(())
    }
}

/// A parsed ACL source: the network address and its prefix length.
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(prefix) if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) => {
            prefix.parse::<u8>().ok()?
        }
        Some(_) => return None,
        None => max,
    };
    (prefix <= max).then_some((address, prefix))
}

/// A listener reference: `udp:`, `tcp:` or `tls:` and a socket address.
pub fn parse_listener_ref(text: &str) -> Option<(Transport, std::net::SocketAddr)> {
    let (transport, address) = text.split_once(':')?;
    let transport = match transport {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        _ => return None,
    };
    Some((transport, address.parse().ok()?))
}

impl AclSpec {
    /// Checks every field on its own.
    pub fn check(&self) -> Result<(), ApiError> {
        check_name("name", &self.name)?;
        if self.rules.len() > MAX_ACL_RULES {
            return Err(ApiError::invalid(
                "rules",
                format!("at most {MAX_ACL_RULES} rules"),
            ));
        }
        for (index, rule) in self.rules.iter().enumerate() {
            if parse_cidr(&rule.source).is_none() {
                return Err(ApiError::invalid(
                    format!("rules[{index}].source"),
                    format!(
                        "{:?} is not an IPv4 or IPv6 address or CIDR network",
                        rule.source
                    ),
                ));
            }
        }
        if self.listeners.len() > MAX_ACL_TARGETS || self.trunks.len() > MAX_ACL_TARGETS {
            return Err(ApiError::invalid(
                if self.listeners.len() > MAX_ACL_TARGETS {
                    "listeners"
                } else {
                    "trunks"
                },
                format!("at most {MAX_ACL_TARGETS} entries"),
            ));
        }
        for (index, listener) in self.listeners.iter().enumerate() {
            if parse_listener_ref(listener).is_none() {
                return Err(ApiError::invalid(
                    format!("listeners[{index}]"),
                    format!("{listener:?} is not transport:address (e.g. udp:192.0.2.1:5060)"),
                ));
            }
        }
        for (index, trunk) in self.trunks.iter().enumerate() {
            check_name(&format!("trunks[{index}]"), trunk)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cidrs_of_both_families_parse_and_garbage_does_not() {
        assert!(parse_cidr("192.0.2.0/24").is_some());
        assert!(parse_cidr("2001:db8::/32").is_some());
        assert!(parse_cidr("::1").is_some());
        for bad in [
            "192.0.2.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "host/8",
            "",
        ] {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn listener_references_name_transport_and_address() {
        assert_eq!(
            parse_listener_ref("tls:[::1]:5061"),
            Some((Transport::Tls, "[::1]:5061".parse().unwrap()))
        );
        assert!(parse_listener_ref("sctp:127.0.0.1:5060").is_none());
        assert!(parse_listener_ref("udp:127.0.0.1").is_none());
    }
}
