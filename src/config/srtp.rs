//! `[media.srtp]` and `trunk.srtp`: the media security policy of a side of a call.

use sbc_core::media::security::{MediaPolicy, Requirement, SrtpSuite};
use serde::Deserialize;

use super::error::ProblemKind;

/// How much a side wants a key exchange (see [`Requirement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequirementConfig {
    Require,
    Prefer,
    Allow,
    Forbid,
}

impl From<RequirementConfig> for Requirement {
    fn from(value: RequirementConfig) -> Requirement {
        match value {
            RequirementConfig::Require => Requirement::Require,
            RequirementConfig::Prefer => Requirement::Prefer,
            RequirementConfig::Allow => Requirement::Allow,
            RequirementConfig::Forbid => Requirement::Forbid,
        }
    }
}

/// A media security policy: `[media.srtp]` for peers that are no trunk (phones, WebRTC
/// gateways), `srtp` in a `[[trunk]]` for that trunk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrtpPolicyConfig {
    /// SDES-SRTP (`RTP/SAVP` with `a=crypto`, RFC 4568).
    pub sdes: RequirementConfig,
    /// DTLS-SRTP (`UDP/TLS/RTP/SAVP(F)` with `a=fingerprint`, RFC 5763/5764).
    pub dtls: RequirementConfig,
    /// SDES crypto suites, preferred first.
    pub suites: Vec<String>,
    /// Write SDES keys into SDP over UDP or TCP signalling (not only TLS).
    pub sdes_over_insecure_signalling: bool,
}

impl Default for SrtpPolicyConfig {
    fn default() -> Self {
        SrtpPolicyConfig {
            sdes: RequirementConfig::Allow,
            dtls: RequirementConfig::Allow,
            suites: SrtpSuite::DEFAULT_OFFER
                .iter()
                .map(|s| s.sdes_name().to_string())
                .collect(),
            sdes_over_insecure_signalling: false,
        }
    }
}

impl SrtpPolicyConfig {
    /// The policy the B2BUA applies (suite names validated).
    pub fn policy(&self) -> MediaPolicy {
        MediaPolicy {
            sdes: self.sdes.into(),
            dtls: self.dtls.into(),
            suites: self
                .suites
                .iter()
                .filter_map(|name| SrtpSuite::from_sdes_name(name))
                .collect(),
            sdes_over_insecure_signalling: self.sdes_over_insecure_signalling,
        }
    }

    /// What is wrong with it, keyed under `key`.
    pub fn problems(&self, key: &str) -> Vec<(String, ProblemKind)> {
        let mut problems = Vec::new();
        for (index, name) in self.suites.iter().enumerate() {
            if SrtpSuite::from_sdes_name(name).is_none() {
                problems.push((
                    format!("{key}.suites[{index}]"),
                    ProblemKind::UnknownSrtpSuite(name.clone()),
                ));
            }
        }
        let sdes_wanted = self.sdes != RequirementConfig::Forbid;
        if sdes_wanted && self.suites.is_empty() {
            problems.push((format!("{key}.suites"), ProblemKind::NoSrtpSuites));
        }
        if self.sdes == RequirementConfig::Require && self.dtls == RequirementConfig::Require {
            problems.push((
                format!("{key}.dtls"),
                ProblemKind::ConflictingSrtpRequirements,
            ));
        }
        problems
    }
}
