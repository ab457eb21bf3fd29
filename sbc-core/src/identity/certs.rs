//! STIR certificates: the chain an `x5u` URL serves (leaf first, then intermediates),
//! the STI-CA roots it must chain to, and the validity window of a verified path.
//!
//! Chain validation is split in two so that its cost is paid once per certificate, not
//! once per call: [`TrustAnchors::validate`] checks the signatures along the path (with
//! openssl, ignoring dates) and returns the [`Validated`] window in which every
//! certificate of the path is valid; the verifier compares each call's `now` with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509StoreContext};

use super::der;
use super::es256::VerifyingKey;
use super::tnauth::{MalformedTnAuthList, TN_AUTH_LIST_OID, TnAuthList};

/// Most certificates read from one `x5u` document.
pub const MAX_CHAIN_CERTIFICATES: usize = 8;

/// Why a fetched document is not a usable certificate chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("no PEM or DER certificate in the document")]
    NoCertificate,
    #[error("more than {MAX_CHAIN_CERTIFICATES} certificates in the document")]
    TooManyCertificates,
    #[error("the certificate's key is not a P-256 EC key")]
    NotP256,
    #[error(transparent)]
    TnAuthList(#[from] MalformedTnAuthList),
}

impl CertError {
    pub fn name(&self) -> &'static str {
        match self {
            CertError::NoCertificate | CertError::TooManyCertificates => "malformed_certificate",
            CertError::NotP256 => "unsupported_key",
            CertError::TnAuthList(_) => "malformed_tn_auth_list",
        }
    }
}

/// A signer's certificate and the intermediates served with it, parsed once.
pub struct CertChain {
    /// Unique per parsed document, so verifiers can remember what they concluded.
    id: u64,
    leaf: X509,
    intermediates: Stack<X509>,
    key: VerifyingKey,
    tn_auth: Option<TnAuthList>,
}

impl std::fmt::Debug for CertChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertChain")
            .field("id", &self.id)
            .field("subject", &self.leaf.subject_name())
            .field("intermediates", &self.intermediates.len())
            .field("tn_auth", &self.tn_auth)
            .finish()
    }
}

static NEXT_CHAIN: AtomicU64 = AtomicU64::new(1);

impl CertChain {
    /// Parses a document: PEM certificates (leaf first), or one DER certificate.
    pub fn parse(document: &[u8]) -> Result<CertChain, CertError> {
        let mut certificates = if document.starts_with(b"-----") || has_pem(document) {
            X509::stack_from_pem(document).map_err(|_| CertError::NoCertificate)?
        } else {
            vec![X509::from_der(document).map_err(|_| CertError::NoCertificate)?]
        };
        if certificates.len() > MAX_CHAIN_CERTIFICATES {
            return Err(CertError::TooManyCertificates);
        }
        if certificates.is_empty() {
            return Err(CertError::NoCertificate);
        }
        let leaf = certificates.remove(0);
        let mut intermediates = Stack::new().map_err(|_| CertError::NoCertificate)?;
        for certificate in certificates {
            intermediates
                .push(certificate)
                .map_err(|_| CertError::NoCertificate)?;
        }
        let key = VerifyingKey::from_certificate(&leaf).map_err(|_| CertError::NotP256)?;
        let der = leaf.to_der().map_err(|_| CertError::NoCertificate)?;
        let tn_auth = match der::extension(&der, &TN_AUTH_LIST_OID) {
            Ok(Some(value)) => Some(TnAuthList::from_der(value)?),
            Ok(None) => None,
            Err(_) => return Err(CertError::NoCertificate),
        };
        Ok(CertChain {
            id: NEXT_CHAIN.fetch_add(1, Ordering::Relaxed),
            leaf,
            intermediates,
            key,
            tn_auth,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    pub fn tn_auth_list(&self) -> Option<&TnAuthList> {
        self.tn_auth.as_ref()
    }

    pub fn leaf(&self) -> &X509 {
        &self.leaf
    }
}

fn has_pem(document: &[u8]) -> bool {
    document
        .windows(27)
        .any(|window| window == b"-----BEGIN CERTIFICATE-----")
}

/// The STI-CA root certificates chains must lead to.
#[derive(Clone)]
pub struct TrustAnchors {
    store: Arc<X509Store>,
    count: usize,
}

impl std::fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustAnchors({} roots)", self.count)
    }
}

/// Why a chain does not lead to a trust anchor.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("certificate chain does not validate: {0}")]
pub struct UntrustedChain(pub String);

/// Where a validated path is valid: the latest `notBefore` and the earliest `notAfter`
/// of its certificates, root included, in seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validated {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validated {
    /// Where `now` stands relative to the window.
    pub fn check(&self, now: SystemTime) -> Result<(), DateProblem> {
        let now = unix_seconds(now);
        if now < self.not_before {
            Err(DateProblem::NotYetValid)
        } else if now > self.not_after {
            Err(DateProblem::Expired)
        } else {
            Ok(())
        }
    }
}

/// A certificate of the path outside its validity period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateProblem {
    Expired,
    NotYetValid,
}

impl TrustAnchors {
    /// Roots from PEM (one or more certificates).
    pub fn from_pem(pem: &[u8]) -> Result<TrustAnchors, CertError> {
        let roots = X509::stack_from_pem(pem).map_err(|_| CertError::NoCertificate)?;
        TrustAnchors::new(roots)
    }

    pub fn new(roots: Vec<X509>) -> Result<TrustAnchors, CertError> {
        if roots.is_empty() {
            return Err(CertError::NoCertificate);
        }
        let mut builder = X509StoreBuilder::new().map_err(|_| CertError::NoCertificate)?;
        let count = roots.len();
        for root in roots {
            builder
                .add_cert(root)
                .map_err(|_| CertError::NoCertificate)?;
        }
        // Dates are checked per call against the window `validate` returns.
        builder
            .set_flags(X509VerifyFlags::NO_CHECK_TIME)
            .map_err(|_| CertError::NoCertificate)?;
        Ok(TrustAnchors {
            store: Arc::new(builder.build()),
            count,
        })
    }

    /// Checks the signatures of the path from `chain`'s leaf to one of the roots.
    pub fn validate(&self, chain: &CertChain) -> Result<Validated, UntrustedChain> {
        let mut context =
            X509StoreContext::new().map_err(|error| UntrustedChain(error.to_string()))?;
        context
            .init(&self.store, &chain.leaf, &chain.intermediates, |context| {
                if !context.verify_cert()? {
                    return Ok(Err(UntrustedChain(
                        context.error().error_string().to_owned(),
                    )));
                }
                let mut window = Validated {
                    not_before: i64::MIN,
                    not_after: i64::MAX,
                };
                if let Some(path) = context.chain() {
                    for certificate in path {
                        window.not_before = window
                            .not_before
                            .max(asn1_seconds(certificate.not_before()));
                        window.not_after =
                            window.not_after.min(asn1_seconds(certificate.not_after()));
                    }
                }
                Ok(Ok(window))
            })
            .map_err(|error| UntrustedChain(error.to_string()))?
    }
}

/// Seconds since the Unix epoch of an ASN.1 time (saturating far outside the range).
fn asn1_seconds(time: &Asn1TimeRef) -> i64 {
    let Ok(epoch) = Asn1Time::from_unix(0) else {
        return 0;
    };
    match epoch.diff(time) {
        Ok(diff) => i64::from(diff.days) * 86_400 + i64::from(diff.secs),
        Err(_) => 0,
    }
}

pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `seconds` after the epoch as a time.
pub(crate) fn from_unix(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}
