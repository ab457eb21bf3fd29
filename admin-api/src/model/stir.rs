//! STIR/SHAKEN material: the signing credential (write-only private key) and the
//! STI-CA trust anchors.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Origin;
use crate::appliance::ApiError;

/// Largest PEM document accepted in one field.
pub const MAX_PEM_BYTES: usize = 64 * 1024;
/// Longest `x5u` URL accepted.
const MAX_URL_BYTES: usize = 2048;

/// The signing credential to use: the SBC's P-256 private key, its certificate chain,
/// and the URL verifiers fetch the chain from.
#[derive(Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// PEM (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`), a P-256 key that matches
    /// the leaf certificate. Write-only: never returned, logged or audited.
    #[schema(min_length = 1, max_length = 65536, write_only)]
    pub private_key: String,
    /// PEM, the STIR certificate first, then its intermediates.
    #[schema(min_length = 1, max_length = 65536)]
    pub certificate_chain: String,
    /// The https URL put in the PASSporTs' `x5u` (and served by `[identity.publish]`).
    #[schema(
        min_length = 1,
        max_length = 2048,
        example = "https://certs.example.net/sbc.pem"
    )]
    pub x5u: String,
}

/// `Debug` that keeps the key out of logs.
impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredential")
            .field("private_key", &"<redacted>")
            .field("x5u", &self.x5u)
            .finish_non_exhaustive()
    }
}

fn check_pem(field: &str, pem: &str) -> Result<(), ApiError> {
    if pem.trim().is_empty() || pem.len() > MAX_PEM_BYTES {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {MAX_PEM_BYTES} bytes of PEM"),
        ));
    }
    if !pem.contains("-----BEGIN ") {
        return Err(ApiError::invalid(field, "is not PEM (no -----BEGIN line)"));
    }
    Ok(())
}

impl NewCredential {
    /// Checks each field on its own (the appliance checks the key against the chain).
    pub fn check(&self) -> Result<(), ApiError> {
        check_pem("private_key", &self.private_key)?;
        check_pem("certificate_chain", &self.certificate_chain)?;
        if self.x5u.is_empty() || self.x5u.len() > MAX_URL_BYTES {
            return Err(ApiError::invalid(
                "x5u",
                format!("must be 1 to {MAX_URL_BYTES} bytes"),
            ));
        }
        Ok(())
    }
}

/// What can be shown of a certificate.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CertificateInfo {
    /// The subject's distinguished name, `CN=…, O=…`.
    pub subject: String,
    pub issuer: String,
    /// Hex.
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// Lower-case hex SHA-256 of the DER certificate.
    pub fingerprint_sha256: String,
    /// The TNAuthList entries (RFC 8226), `spc:…`, `tn:…` or `range:<start>+<count>`;
    /// absent without the extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tn_auth_list: Option<Vec<String>>,
}

/// The signing credential in effect (never its key).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CredentialInfo {
    /// `api` when set here (it overrides the file's `[identity]` credential),
    /// `config_file` when the file's is in effect.
    pub origin: Origin,
    pub x5u: String,
    /// The leaf (STIR) certificate.
    pub certificate: CertificateInfo,
    /// Certificates in the chain, leaf included.
    pub chain_length: usize,
    /// Unix ms; absent for the file's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// An STI-CA root to trust.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrustAnchor {
    /// PEM, one certificate.
    #[schema(min_length = 1, max_length = 65536)]
    pub certificate: String,
}

impl NewTrustAnchor {
    pub fn check(&self) -> Result<(), ApiError> {
        check_pem("certificate", &self.certificate)
    }
}

/// A trust anchor in effect, named by its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrustAnchorInfo {
    /// The certificate's SHA-256 fingerprint (lower-case hex): the id in paths.
    pub id: String,
    /// `api` (removable here) or `config_file` (`identity.trust_anchors`).
    pub origin: Origin,
    pub certificate: CertificateInfo,
    /// Unix ms; absent for the file's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
}
