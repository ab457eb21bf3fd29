//! `[auth]`, `[registrar]`, `[security]` and the ACL tables of listeners and trunks.

use std::time::Duration;

use sbc_core::auth::Algorithm;
use sbc_core::policy::{Acl, Cidr, Rate, RateLimits};
use serde::Deserialize;

use super::error::ProblemKind;

/// `[auth]`: SIP Digest on the access side.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Requests from sources that are no trunk must authenticate (REGISTER 401, INVITE
    /// 407). Turn off only on a closed network.
    pub enabled: bool,
    /// The realm of users whose domain is not listed in `domains`.
    pub realm: String,
    /// Domains that are realms of their own.
    pub domains: Vec<String>,
    /// Algorithms offered, most preferred first (one challenge each).
    pub algorithms: Vec<String>,
    /// How long a nonce may be used (then `stale=true`).
    pub nonce_lifetime_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: true,
            realm: "sbc".into(),
            domains: Vec::new(),
            algorithms: vec!["MD5".into(), "SHA-256".into()],
            nonce_lifetime_secs: 300,
        }
    }
}

impl AuthConfig {
    /// The configured algorithms (validated).
    pub fn algorithms(&self) -> Vec<Algorithm> {
        self.algorithms
            .iter()
            .filter_map(|name| Algorithm::from_name(name.as_bytes()))
            .collect()
    }
}

/// `[registrar]`: bindings of access users.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarSettings {
    pub min_expires_secs: u64,
    pub max_expires_secs: u64,
    pub default_expires_secs: u64,
    pub max_bindings_per_user: usize,
    pub max_bindings: usize,
}

impl Default for RegistrarSettings {
    fn default() -> Self {
        RegistrarSettings {
            min_expires_secs: 60,
            max_expires_secs: 3600,
            default_expires_secs: 3600,
            max_bindings_per_user: 10,
            max_bindings: 100_000,
        }
    }
}

impl RegistrarSettings {
    pub fn registrar_config(&self) -> sbc_core::registrar::RegistrarConfig {
        sbc_core::registrar::RegistrarConfig {
            min_expires: Duration::from_secs(self.min_expires_secs),
            max_expires: Duration::from_secs(self.max_expires_secs),
            default_expires: Duration::from_secs(self.default_expires_secs),
            max_bindings_per_aor: self.max_bindings_per_user,
            max_bindings: self.max_bindings,
        }
    }
}

/// A rate: `{ per_second = N, burst = M }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub per_second: u32,
    pub burst: u32,
}

impl From<RateConfig> for Rate {
    fn from(rate: RateConfig) -> Rate {
        Rate {
            per_second: rate.per_second,
            burst: rate.burst,
        }
    }
}

/// `[security.rate_limits]`: per-source budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    pub enabled: bool,
    pub register: RateConfig,
    pub invite: RateConfig,
    pub other: RateConfig,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        let limits = RateLimits::default();
        let rate = |rate: Rate| RateConfig {
            per_second: rate.per_second,
            burst: rate.burst,
        };
        RateLimitsConfig {
            enabled: true,
            register: rate(limits.register),
            invite: rate(limits.invite),
            other: rate(limits.other),
        }
    }
}

/// `[security]`: bans, scanners, rate limits, overload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// How long an automatic ban lasts.
    pub ban_secs: u64,
    /// Failed authentications (wrong password, replayed nonce) after which a source is
    /// banned; 0 disables.
    pub max_auth_failures: u32,
    /// The window those failures are counted in.
    pub failure_window_secs: u64,
    /// User-Agent substrings (case-insensitive) whose requests ban their source at once.
    pub scanner_user_agents: Vec<String>,
    /// Sources tracked for rate limits and failure counts at most.
    pub max_tracked_sources: usize,
    /// Bans held at most.
    pub max_bans: usize,
    /// Seconds in the `Retry-After` of the 503 new calls get under overload.
    pub overload_retry_after_secs: u64,
    /// Calls in progress per user (as caller or as registered callee) at most; 0: no
    /// limit.
    pub max_calls_per_user: u32,
    /// A MESSAGE whose Date is further than this from now is refused `403 Stale Date`
    /// (except from store-and-forward trunks); 0 disables the check.
    pub message_date_window_secs: u64,
    pub rate_limits: RateLimitsConfig,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            ban_secs: 3600,
            max_auth_failures: 5,
            failure_window_secs: 300,
            scanner_user_agents: sbc_core::policy::gate::SCANNER_USER_AGENTS
                .iter()
                .map(|agent| (*agent).to_owned())
                .collect(),
            max_tracked_sources: 100_000,
            max_bans: 100_000,
            overload_retry_after_secs: 5,
            max_calls_per_user: 0,
            message_date_window_secs: 3600,
            rate_limits: RateLimitsConfig::default(),
        }
    }
}

/// `acl = { allow = [...], deny = [...] }` of a listener or a trunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AclConfig {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl AclConfig {
    /// The ACL: deny rules first, then allow rules, default deny when there is an
    /// allow list (entries that do not parse are skipped; validation reports them).
    pub fn acl(&self) -> Acl {
        let parse = |list: &[String]| -> Vec<Cidr> {
            list.iter()
                .filter_map(|text| text.parse::<Cidr>().ok())
                .collect()
        };
        Acl::from_lists(&parse(&self.allow), &parse(&self.deny))
    }

    /// Whether the table is empty (admits everything, adds nothing to a trunk).
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Problems of this ACL, keyed under `key`.
    pub fn problems(&self, key: &str) -> Vec<(String, ProblemKind)> {
        let mut problems = Vec::new();
        for (list, entries) in [("allow", &self.allow), ("deny", &self.deny)] {
            for (index, entry) in entries.iter().enumerate() {
                if entry.parse::<Cidr>().is_err() {
                    problems.push((
                        format!("{key}.{list}[{index}]"),
                        ProblemKind::InvalidNetwork(entry.clone()),
                    ));
                }
            }
        }
        problems
    }
}

/// Problems of `[auth]`, `[registrar]` and `[security]`.
pub fn problems(
    auth: &AuthConfig,
    registrar: &RegistrarSettings,
    security: &SecurityConfig,
) -> Vec<(String, ProblemKind)> {
    let mut problems = Vec::new();
    let realm_ok = |realm: &str| {
        !realm.is_empty()
            && realm.len() <= 253
            && realm
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    };
    if !realm_ok(&auth.realm) {
        problems.push((
            "auth.realm".into(),
            ProblemKind::InvalidRealm(auth.realm.clone()),
        ));
    }
    for (index, domain) in auth.domains.iter().enumerate() {
        if !realm_ok(domain) {
            problems.push((
                format!("auth.domains[{index}]"),
                ProblemKind::InvalidRealm(domain.clone()),
            ));
        }
    }
    if auth.algorithms.is_empty() {
        problems.push(("auth.algorithms".into(), ProblemKind::NoAlgorithms));
    }
    for (index, name) in auth.algorithms.iter().enumerate() {
        if Algorithm::from_name(name.as_bytes()).is_none() {
            problems.push((
                format!("auth.algorithms[{index}]"),
                ProblemKind::UnknownAlgorithm(name.clone()),
            ));
        }
    }
    let mut range = |key: &str, value: u64, min: u64, max: u64| {
        if !(min..=max).contains(&value) {
            problems.push((key.to_owned(), ProblemKind::OutOfRange { value, min, max }));
        }
    };
    range(
        "auth.nonce_lifetime_secs",
        auth.nonce_lifetime_secs,
        10,
        86_400,
    );
    range(
        "registrar.min_expires_secs",
        registrar.min_expires_secs,
        1,
        86_400,
    );
    range(
        "registrar.max_expires_secs",
        registrar.max_expires_secs,
        1,
        604_800,
    );
    range(
        "registrar.default_expires_secs",
        registrar.default_expires_secs,
        1,
        604_800,
    );
    range(
        "registrar.max_bindings_per_user",
        registrar.max_bindings_per_user as u64,
        1,
        100,
    );
    range(
        "registrar.max_bindings",
        registrar.max_bindings as u64,
        1,
        10_000_000,
    );
    range("security.ban_secs", security.ban_secs, 1, 31_536_000);
    range(
        "security.failure_window_secs",
        security.failure_window_secs,
        1,
        86_400,
    );
    range(
        "security.max_tracked_sources",
        security.max_tracked_sources as u64,
        100,
        10_000_000,
    );
    range(
        "security.max_bans",
        security.max_bans as u64,
        10,
        10_000_000,
    );
    range(
        "security.overload_retry_after_secs",
        security.overload_retry_after_secs,
        1,
        3600,
    );
    range(
        "security.message_date_window_secs",
        security.message_date_window_secs,
        0,
        31_536_000,
    );
    range(
        "security.max_calls_per_user",
        u64::from(security.max_calls_per_user),
        0,
        1_000_000,
    );
    for (name, rate) in [
        ("register", security.rate_limits.register),
        ("invite", security.rate_limits.invite),
        ("other", security.rate_limits.other),
    ] {
        range(
            &format!("security.rate_limits.{name}.burst"),
            u64::from(rate.burst),
            1,
            1_000_000,
        );
        range(
            &format!("security.rate_limits.{name}.per_second"),
            u64::from(rate.per_second),
            1,
            1_000_000,
        );
    }
    if registrar.min_expires_secs > registrar.max_expires_secs {
        problems.push((
            "registrar.min_expires_secs".into(),
            ProblemKind::ExpiresOrder {
                min: registrar.min_expires_secs,
                max: registrar.max_expires_secs,
            },
        ));
    }
    problems
}
