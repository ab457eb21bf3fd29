//! A call's security summary: per leg, how its signalling and its media were protected,
//! and what became of the caller's identity. It answers "is this call secure?" one
//! property at a time, in active-call views and in call records.
//!
//! Every value has a stable lower-case [`name`](MediaProtection::name) for CDR columns,
//! API bodies and metric labels.

use crate::net::Protocol;

/// Whether a TLS peer's certificate was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCertificate {
    /// The leg does not run over TLS.
    NotApplicable,
    /// The peer presented a certificate that chains to a trusted CA and names the peer
    /// (the server certificate of every TLS target we connect to is checked this way).
    Verified,
    /// The leg runs over TLS but its peer's certificate was not verified: a client that
    /// presented none (or one the listener does not ask for), or a registered user's own
    /// connection reused to reach it.
    NotVerified,
}

impl PeerCertificate {
    /// A stable name.
    pub fn name(&self) -> &'static str {
        match self {
            PeerCertificate::NotApplicable => "not_applicable",
            PeerCertificate::Verified => "verified",
            PeerCertificate::NotVerified => "not_verified",
        }
    }
}

/// How a leg's signalling travelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignallingProtection {
    /// The leg's transport.
    pub protocol: Protocol,
    /// For TLS, whether the peer's certificate was verified.
    pub peer_certificate: PeerCertificate,
}

impl SignallingProtection {
    /// The protection of a leg over `protocol`, whose peer's certificate was verified
    /// (`certificate_verified`: the server certificate of a connection we opened, which
    /// the transport always verifies, or a client certificate the listener verified) or
    /// not.
    pub fn over(protocol: Protocol, certificate_verified: bool) -> SignallingProtection {
        let peer_certificate = match (protocol, certificate_verified) {
            (Protocol::Tls, true) => PeerCertificate::Verified,
            (Protocol::Tls, false) => PeerCertificate::NotVerified,
            _ => PeerCertificate::NotApplicable,
        };
        SignallingProtection {
            protocol,
            peer_certificate,
        }
    }

    /// Whether the signalling was encrypted (TLS).
    pub fn encrypted(&self) -> bool {
        self.protocol == Protocol::Tls
    }
}

/// How a leg's media was protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaProtection {
    /// No media was anchored for the call (no SDP, or the call never got that far).
    NoMedia,
    /// Plain RTP.
    Plain,
    /// SRTP keyed by SDES (RFC 4568) with this crypto suite (`AES_CM_128_HMAC_SHA1_80` …).
    SdesSrtp { suite: String },
    /// SRTP keyed by DTLS (RFC 5763/5764) with this SRTP protection profile.
    DtlsSrtp { profile: String },
}

impl MediaProtection {
    /// A stable name (the suite or profile is separate: [`MediaProtection::detail`]).
    pub fn name(&self) -> &'static str {
        match self {
            MediaProtection::NoMedia => "no_media",
            MediaProtection::Plain => "plain",
            MediaProtection::SdesSrtp { .. } => "sdes_srtp",
            MediaProtection::DtlsSrtp { .. } => "dtls_srtp",
        }
    }

    /// The crypto suite or protection profile, for SRTP.
    pub fn detail(&self) -> Option<&str> {
        match self {
            MediaProtection::SdesSrtp { suite } => Some(suite),
            MediaProtection::DtlsSrtp { profile } => Some(profile),
            MediaProtection::NoMedia | MediaProtection::Plain => None,
        }
    }

    /// Whether the media was encrypted.
    pub fn encrypted(&self) -> bool {
        matches!(
            self,
            MediaProtection::SdesSrtp { .. } | MediaProtection::DtlsSrtp { .. }
        )
    }
}

/// What the SBC concluded about the caller's identity (STIR/SHAKEN, RFC 8224 §6.2.2
/// `verstat` values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityVerdict {
    /// No verification was done.
    NotChecked,
    /// `TN-Validation-Passed`.
    TnValidationPassed,
    /// `TN-Validation-Failed`.
    TnValidationFailed,
    /// `No-TN-Validation`.
    NoTnValidation,
}

impl IdentityVerdict {
    /// A stable name.
    pub fn name(&self) -> &'static str {
        match self {
            IdentityVerdict::NotChecked => "not_checked",
            IdentityVerdict::TnValidationPassed => "tn_validation_passed",
            IdentityVerdict::TnValidationFailed => "tn_validation_failed",
            IdentityVerdict::NoTnValidation => "no_tn_validation",
        }
    }
}

/// One leg's protection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegSecurity {
    pub signalling: SignallingProtection,
    pub media: MediaProtection,
}

/// The security summary of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecuritySummary {
    /// The caller's leg.
    pub a: LegSecurity,
    /// The callee's leg.
    pub b: LegSecurity,
    pub identity: IdentityVerdict,
}

impl SecuritySummary {
    /// A call that came in over `caller` and goes out over `callee` (`None`: not sent
    /// anywhere), no media yet, identity not checked.
    pub fn new(caller: Protocol, callee: Option<Protocol>) -> SecuritySummary {
        SecuritySummary {
            a: LegSecurity {
                signalling: SignallingProtection::over(caller, false),
                media: MediaProtection::NoMedia,
            },
            b: LegSecurity {
                signalling: SignallingProtection::over(callee.unwrap_or(caller), true),
                media: MediaProtection::NoMedia,
            },
            identity: IdentityVerdict::NotChecked,
        }
    }

    /// Whether every property is protected: both legs' signalling and media encrypted
    /// (or no media at all) and the identity verified.
    pub fn fully_protected(&self) -> bool {
        let leg_ok = |leg: &LegSecurity| {
            leg.signalling.encrypted()
                && (leg.media.encrypted() || leg.media == MediaProtection::NoMedia)
        };
        leg_ok(&self.a) && leg_ok(&self.b) && self.identity == IdentityVerdict::TnValidationPassed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_udp_call_is_not_protected_and_says_why() {
        let mut summary = SecuritySummary::new(Protocol::Udp, Some(Protocol::Tls));
        summary.a.media = MediaProtection::Plain;
        assert_eq!(
            summary.a.signalling.peer_certificate.name(),
            "not_applicable"
        );
        assert_eq!(
            summary.b.signalling.peer_certificate,
            PeerCertificate::Verified
        );
        assert!(!summary.a.signalling.encrypted());
        assert!(summary.b.signalling.encrypted());
        assert_eq!(summary.a.media.name(), "plain");
        assert_eq!(summary.identity.name(), "not_checked");
        assert!(!summary.fully_protected());
    }

    #[test]
    fn everything_encrypted_and_verified_is_fully_protected() {
        let srtp = MediaProtection::SdesSrtp {
            suite: "AES_CM_128_HMAC_SHA1_80".into(),
        };
        let mut summary = SecuritySummary::new(Protocol::Tls, Some(Protocol::Tls));
        summary.a.media = srtp.clone();
        summary.b.media = srtp;
        summary.identity = IdentityVerdict::TnValidationPassed;
        assert!(summary.fully_protected());
        assert_eq!(summary.a.media.detail(), Some("AES_CM_128_HMAC_SHA1_80"));
    }
}
