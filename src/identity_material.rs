//! STIR/SHAKEN material set at run time: checking a signing credential or an STI-CA
//! root handed to the admin API, describing certificates without their keys, and the
//! material in effect (the file's `[identity]` with the store's on top).
//!
//! Precedence: a signing credential in the store replaces the file's (key, chain and
//! `x5u` together); the store's trust anchors are added to the file's.

use openssl::hash::MessageDigest;
use openssl::x509::X509;
use sbc_core::identity::certs::{CertChain, TrustAnchors};
use sbc_core::identity::es256::SigningKey;
use sbc_core::identity::sign::Signer;
use sbc_core::identity::tnauth::TnEntry;

use crate::store::stir::{StirCredential, StirTrustAnchor};

/// A field of a request that is not acceptable, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialProblem {
    pub field: &'static str,
    pub problem: String,
}

fn problem(field: &'static str, problem: impl Into<String>) -> MaterialProblem {
    MaterialProblem {
        field,
        problem: problem.into(),
    }
}

/// What may be shown of a certificate (never a key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub fingerprint_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tn_auth_list: Option<Vec<String>>,
}

fn name_text(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn unix_time(time: &openssl::asn1::Asn1TimeRef) -> i64 {
    openssl::asn1::Asn1Time::from_unix(0)
        .ok()
        .and_then(|epoch| epoch.diff(time).ok())
        .map_or(0, |diff| {
            i64::from(diff.days) * 86_400 + i64::from(diff.secs)
        })
}

/// Lower-case hex SHA-256 of the DER certificate.
pub fn fingerprint(certificate: &X509) -> String {
    certificate
        .digest(MessageDigest::sha256())
        .map(|digest| digest.iter().map(|byte| format!("{byte:02x}")).collect())
        .unwrap_or_default()
}

/// Subject, issuer, serial, dates, fingerprint and (for a STIR certificate) TNAuthList.
pub fn summary(certificate: &X509) -> CertificateSummary {
    let tn_auth_list = certificate
        .to_pem()
        .ok()
        .and_then(|pem| CertChain::parse(&pem).ok())
        .and_then(|chain| chain.tn_auth_list().cloned())
        .map(|list| {
            list.0
                .iter()
                .map(|entry| match entry {
                    TnEntry::Spc(code) => format!("spc:{code}"),
                    TnEntry::One(number) => format!("tn:{number}"),
                    TnEntry::Range { start, count } => format!("range:{start}+{count}"),
                })
                .collect()
        });
    CertificateSummary {
        subject: name_text(certificate.subject_name()),
        issuer: name_text(certificate.issuer_name()),
        serial: certificate
            .serial_number()
            .to_bn()
            .and_then(|serial| serial.to_hex_str().map(|hex| hex.to_string()))
            .unwrap_or_default(),
        not_before: unix_time(certificate.not_before()),
        not_after: unix_time(certificate.not_after()),
        fingerprint_sha256: fingerprint(certificate),
        tn_auth_list,
    }
}

/// A signing credential that passed every check.
pub struct CheckedCredential {
    pub signer: Signer,
    /// The chain's certificates, leaf first.
    pub chain: Vec<X509>,
    pub x5u: String,
}

impl std::fmt::Debug for CheckedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedCredential")
            .field("x5u", &self.x5u)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Checks a credential: the key parses and is P-256, the chain parses (a P-256 leaf),
/// the key is the leaf's, and `x5u` is an https URL without userinfo, query or
/// fragment.
pub fn check_credential(
    key_pem: &[u8],
    chain_pem: &[u8],
    x5u: &str,
) -> Result<CheckedCredential, MaterialProblem> {
    let any_key = openssl::pkey::PKey::private_key_from_pem(key_pem)
        .map_err(|_| problem("private_key", "not a PEM private key"))?;
    if any_key.ec_key().is_err() {
        return Err(problem(
            "private_key",
            "not an EC key: STIR/SHAKEN signs with ES256 (a P-256 key)",
        ));
    }
    let key = SigningKey::from_pem(key_pem).map_err(|_| {
        problem(
            "private_key",
            "not a P-256 (prime256v1) key, as ES256 requires",
        )
    })?;
    let parsed = CertChain::parse(chain_pem).map_err(|error| {
        problem(
            "certificate_chain",
            format!("not a usable STIR certificate chain: {error}"),
        )
    })?;
    let chain = X509::stack_from_pem(chain_pem)
        .map_err(|_| problem("certificate_chain", "not PEM certificates"))?;
    let public = key
        .verifying_key()
        .map_err(|_| problem("private_key", "its public key cannot be derived"))?;
    let mut context = openssl::bn::BigNumContext::new()
        .map_err(|_| problem("private_key", "cannot compare keys"))?;
    let matches = parsed
        .key()
        .public_key()
        .public_key()
        .eq(
            public.public_key().group(),
            public.public_key().public_key(),
            &mut context,
        )
        .unwrap_or(false);
    if !matches {
        return Err(problem(
            "private_key",
            "does not match the public key of the first certificate of certificate_chain",
        ));
    }
    let any_port: Vec<u16> = (1..=u16::MAX).collect();
    sbc_core::identity::url::check(x5u, &any_port)
        .map_err(|error| problem("x5u", error.to_string()))?;
    let signer =
        Signer::new(key, x5u.to_owned()).map_err(|error| problem("x5u", error.to_string()))?;
    Ok(CheckedCredential {
        signer,
        chain,
        x5u: x5u.to_owned(),
    })
}

/// Checks an STI-CA root: one PEM certificate, a CA.
pub fn check_root(pem: &[u8]) -> Result<X509, MaterialProblem> {
    let mut certificates =
        X509::stack_from_pem(pem).map_err(|_| problem("certificate", "not a PEM certificate"))?;
    if certificates.len() != 1 {
        return Err(problem(
            "certificate",
            format!("holds {} certificates; give one root", certificates.len()),
        ));
    }
    let root = certificates.remove(0);
    TrustAnchors::new(vec![root.clone()])
        .map_err(|error| problem("certificate", error.to_string()))?;
    Ok(root)
}

/// The store's STIR material, as read at start or after a change.
#[derive(Debug, Clone, Default)]
pub struct StoredMaterial {
    pub credential: Option<StirCredential>,
    pub anchors: Vec<StirTrustAnchor>,
}

impl StoredMaterial {
    pub fn load(store: &crate::store::Store) -> crate::store::StoreResult<StoredMaterial> {
        Ok(StoredMaterial {
            credential: store.stir_credential()?,
            anchors: store.stir_trust_anchors()?,
        })
    }

    /// The stored credential, checked again (it was checked before it was stored; a
    /// failure now means the database was changed behind our back).
    pub fn checked_credential(&self) -> Option<Result<CheckedCredential, MaterialProblem>> {
        self.credential.as_ref().map(|credential| {
            check_credential(
                credential.private_key_pem.as_bytes(),
                credential.chain_pem.as_bytes(),
                &credential.x5u,
            )
        })
    }

    /// The stored roots that parse (one that does not is logged and left out).
    pub fn roots(&self) -> Vec<X509> {
        self.anchors
            .iter()
            .filter_map(|anchor| match check_root(anchor.certificate_pem.as_bytes()) {
                Ok(root) => Some(root),
                Err(error) => {
                    tracing::error!(anchor = %anchor.fingerprint, problem = %error.problem, "stored STIR trust anchor does not parse; left out");
                    None
                }
            })
            .collect()
    }
}
