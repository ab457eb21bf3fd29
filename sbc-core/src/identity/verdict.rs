//! What verification concludes: a [`Verdict`] whose failures each have a stable name (for
//! logs and metric labels), the RFC 8224 status a rejecting SBC answers with, and the
//! RFC 9410 `Reason: STIR` that explains it.

use crate::sip::StatusCode;

use super::passport::{Attestation, Party};

/// Why an Identity did not verify. Each has a stable [`Failure::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// No Identity header (when the trunk requires one).
    Missing,
    /// The Identity header value does not parse.
    MalformedHeader,
    /// The token is not a JWS of JSON objects, or its JOSE header lacks a member.
    MalformedToken,
    /// The claims are not a valid (SHAKEN) PASSporT: string `iat`, `orig` that is not a
    /// number, attestation other than A/B/C …
    InvalidClaims,
    /// `alg` (header parameter or JOSE) is not ES256.
    UnsupportedAlgorithm,
    /// `typ` is not `passport`.
    UnsupportedType,
    /// `ppt` is not one this SBC verifies, or the header parameter and the token disagree.
    UnsupportedPpt,
    /// No `info` parameter.
    MissingInfo,
    /// `info` and the token's `x5u` differ.
    InfoMismatch,
    /// `x5u` uses plain `http`.
    X5uNotHttps,
    /// `x5u` is malformed, carries userinfo/query/fragment, or names a port not allowed.
    X5uForbidden,
    /// `x5u` resolves only to addresses this SBC may not fetch from (RFC 6890).
    X5uForbiddenAddress,
    /// Nothing answered in time, the connection failed, or the server answered an error.
    X5uUnreachable,
    /// The document is larger than the limit.
    X5uTooLarge,
    /// The document is not a certificate chain with a P-256 key.
    CertificateMalformed,
    /// The chain does not lead to a configured STI-CA root.
    UnknownRoot,
    /// A certificate of the path is expired.
    CertificateExpired,
    /// A certificate of the path is not valid yet.
    CertificateNotYetValid,
    /// The certificate has no TNAuthList, or a malformed one.
    MissingTnAuthList,
    /// The certificate's TNAuthList names numbers and not the caller's.
    TnNotCovered,
    /// `iat` is too old (or too far in the future).
    StaleIat,
    /// The request's Date is too old or too far off `iat`.
    StaleDate,
    /// `orig` is not the caller (P-Asserted-Identity, else From).
    OrigMismatch,
    /// `dest` names neither To nor the Request-URI.
    DestMismatch,
    /// The signature does not verify with the certificate's key.
    BadSignature,
}

impl Failure {
    /// Every failure, for documentation and exhaustive tests.
    pub const ALL: [Failure; 25] = [
        Failure::Missing,
        Failure::MalformedHeader,
        Failure::MalformedToken,
        Failure::InvalidClaims,
        Failure::UnsupportedAlgorithm,
        Failure::UnsupportedType,
        Failure::UnsupportedPpt,
        Failure::MissingInfo,
        Failure::InfoMismatch,
        Failure::X5uNotHttps,
        Failure::X5uForbidden,
        Failure::X5uForbiddenAddress,
        Failure::X5uUnreachable,
        Failure::X5uTooLarge,
        Failure::CertificateMalformed,
        Failure::UnknownRoot,
        Failure::CertificateExpired,
        Failure::CertificateNotYetValid,
        Failure::MissingTnAuthList,
        Failure::TnNotCovered,
        Failure::StaleIat,
        Failure::StaleDate,
        Failure::OrigMismatch,
        Failure::DestMismatch,
        Failure::BadSignature,
    ];

    /// A stable name for logs, metric labels and the `text` of `Reason: STIR`.
    pub fn name(self) -> &'static str {
        match self {
            Failure::Missing => "missing_identity",
            Failure::MalformedHeader => "malformed_identity_header",
            Failure::MalformedToken => "malformed_token",
            Failure::InvalidClaims => "invalid_claims",
            Failure::UnsupportedAlgorithm => "unsupported_alg",
            Failure::UnsupportedType => "unsupported_typ",
            Failure::UnsupportedPpt => "unsupported_ppt",
            Failure::MissingInfo => "missing_info",
            Failure::InfoMismatch => "info_x5u_mismatch",
            Failure::X5uNotHttps => "x5u_not_https",
            Failure::X5uForbidden => "x5u_forbidden_url",
            Failure::X5uForbiddenAddress => "x5u_forbidden_address",
            Failure::X5uUnreachable => "x5u_unreachable",
            Failure::X5uTooLarge => "x5u_too_large",
            Failure::CertificateMalformed => "certificate_malformed",
            Failure::UnknownRoot => "unknown_root",
            Failure::CertificateExpired => "certificate_expired",
            Failure::CertificateNotYetValid => "certificate_not_yet_valid",
            Failure::MissingTnAuthList => "missing_tn_auth_list",
            Failure::TnNotCovered => "tn_not_covered",
            Failure::StaleIat => "stale_iat",
            Failure::StaleDate => "stale_date",
            Failure::OrigMismatch => "orig_mismatch",
            Failure::DestMismatch => "dest_mismatch",
            Failure::BadSignature => "bad_signature",
        }
    }

    /// The status a verifier that rejects answers with (RFC 8224 §6.2.2, ATIS-1000074
    /// §5.3.1): 428 no Identity, 436 the certificate cannot be had, 437 the certificate
    /// cannot be trusted for this call, 438 the Identity itself is invalid, 403 stale.
    pub fn status(self) -> u16 {
        match self {
            Failure::Missing => 428,
            Failure::MissingInfo
            | Failure::InfoMismatch
            | Failure::X5uNotHttps
            | Failure::X5uForbidden
            | Failure::X5uForbiddenAddress
            | Failure::X5uUnreachable
            | Failure::X5uTooLarge
            | Failure::CertificateMalformed => 436,
            Failure::UnsupportedAlgorithm
            | Failure::UnsupportedType
            | Failure::UnknownRoot
            | Failure::CertificateExpired
            | Failure::CertificateNotYetValid
            | Failure::MissingTnAuthList
            | Failure::TnNotCovered => 437,
            Failure::MalformedHeader
            | Failure::MalformedToken
            | Failure::InvalidClaims
            | Failure::UnsupportedPpt
            | Failure::OrigMismatch
            | Failure::DestMismatch
            | Failure::BadSignature => 438,
            Failure::StaleIat | Failure::StaleDate => 403,
        }
    }

    /// The RFC 8224 reason phrase of [`Failure::status`].
    pub fn reason_phrase(self) -> &'static str {
        match self.status() {
            428 => "Use Identity Header",
            436 => "Bad Identity Info",
            437 => "Unsupported Credential",
            438 => "Invalid Identity Header",
            _ => "Stale Date",
        }
    }

    /// The status as a [`StatusCode`].
    pub fn status_code(self) -> StatusCode {
        StatusCode::new(self.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// An RFC 9410 `Reason` header value: `STIR;cause=438;text="bad_signature"`.
    pub fn reason_header(self) -> String {
        format!("STIR;cause={};text=\"{}\"", self.status(), self.name())
    }
}

/// The verification status carried as `verstat` (3GPP TS 24.229 §7.2A.20).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verstat {
    Passed,
    Failed,
    NoValidation,
}

impl Verstat {
    pub fn as_str(self) -> &'static str {
        match self {
            Verstat::Passed => "TN-Validation-Passed",
            Verstat::Failed => "TN-Validation-Failed",
            Verstat::NoValidation => "No-TN-Validation",
        }
    }
}

/// What verification concluded about one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The PASSporT verified: the caller is who it says, with this attestation.
    Passed {
        /// `None` for a base PASSporT (no SHAKEN attestation).
        attestation: Option<Attestation>,
        orig: Party,
        origid: Option<String>,
    },
    /// There was an Identity and it did not verify.
    Failed(Failure),
    /// There was no Identity to verify.
    Absent,
}

impl Verdict {
    pub fn verstat(&self) -> Verstat {
        match self {
            Verdict::Passed { .. } => Verstat::Passed,
            Verdict::Failed(_) => Verstat::Failed,
            Verdict::Absent => Verstat::NoValidation,
        }
    }

    /// A stable name: `passed`, `absent`, or the failure's name.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Passed { .. } => "passed",
            Verdict::Failed(failure) => failure.name(),
            Verdict::Absent => "absent",
        }
    }

    pub fn failure(&self) -> Option<Failure> {
        match self {
            Verdict::Failed(failure) => Some(*failure),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_statuses_are_rfc8224s() {
        let names: HashSet<_> = Failure::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), Failure::ALL.len());
        for failure in Failure::ALL {
            assert!(matches!(failure.status(), 403 | 428 | 436 | 437 | 438));
            assert!(failure.status_code().as_u16() == failure.status());
        }
        assert_eq!(
            Failure::BadSignature.reason_header(),
            "STIR;cause=438;text=\"bad_signature\""
        );
    }
}
