//! The relay's DTLS identity: one self-signed ECDSA P-256 certificate per relay, made at
//! start, and the certificate fingerprints SDP carries (`a=fingerprint`, RFC 8122).

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509NameBuilder};
use serde::{Deserialize, Serialize};

use super::DtlsError;

/// A hash function of `a=fingerprint` (RFC 8122 §5; the relay offers SHA-256 and accepts
/// the SHA-2 family and, for old peers, SHA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HashFunction {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashFunction {
    /// The SDP name (`sha-256` …).
    pub fn name(self) -> &'static str {
        match self {
            HashFunction::Sha1 => "sha-1",
            HashFunction::Sha256 => "sha-256",
            HashFunction::Sha384 => "sha-384",
            HashFunction::Sha512 => "sha-512",
        }
    }

    /// The function an SDP name stands for (case-insensitive, RFC 8122 §5).
    pub fn from_name(name: &str) -> Option<HashFunction> {
        [
            HashFunction::Sha1,
            HashFunction::Sha256,
            HashFunction::Sha384,
            HashFunction::Sha512,
        ]
        .into_iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
    }

    fn digest(self) -> MessageDigest {
        match self {
            HashFunction::Sha1 => MessageDigest::sha1(),
            HashFunction::Sha256 => MessageDigest::sha256(),
            HashFunction::Sha384 => MessageDigest::sha384(),
            HashFunction::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// A certificate fingerprint: hash function and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    pub hash: HashFunction,
    pub digest: Vec<u8>,
}

impl Fingerprint {
    /// The fingerprint of a certificate with `hash`.
    pub fn of(certificate: &X509, hash: HashFunction) -> Result<Fingerprint, DtlsError> {
        let digest = certificate
            .digest(hash.digest())
            .map_err(|_| DtlsError::Identity)?;
        Ok(Fingerprint {
            hash,
            digest: digest.to_vec(),
        })
    }

    /// Whether `certificate` has this fingerprint.
    pub fn matches(&self, certificate: &X509) -> bool {
        Fingerprint::of(certificate, self.hash).is_ok_and(|f| f.digest == self.digest)
    }

    /// The SDP form of the digest: upper-case hex pairs separated by colons.
    pub fn hex(&self) -> String {
        let pairs: Vec<String> = self.digest.iter().map(|b| format!("{b:02X}")).collect();
        pairs.join(":")
    }
}

/// The relay's certificate and private key.
#[derive(Clone)]
pub struct DtlsIdentity {
    pub(crate) certificate: X509,
    pub(crate) key: PKey<Private>,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsIdentity")
            .field("fingerprint", &self.fingerprint.hex())
            .finish_non_exhaustive()
    }
}

impl DtlsIdentity {
    /// A fresh ECDSA P-256 key and a self-signed certificate for it, valid from a day ago
    /// for a year (peers check the fingerprint, not the validity; the relay makes a new one
    /// at every start).
    pub fn generate() -> Result<DtlsIdentity, DtlsError> {
        let fail = |_| DtlsError::Identity;
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(fail)?;
        let key = PKey::from_ec_key(EcKey::generate(&group).map_err(fail)?).map_err(fail)?;
        let mut name = X509NameBuilder::new().map_err(fail)?;
        name.append_entry_by_nid(Nid::COMMONNAME, "sbc-media-relay")
            .map_err(fail)?;
        let name = name.build();
        let mut serial = BigNum::new().map_err(fail)?;
        serial
            .rand(63, MsbOption::MAYBE_ZERO, false)
            .map_err(fail)?;
        let mut builder = X509::builder().map_err(fail)?;
        builder.set_version(2).map_err(fail)?;
        let serial = serial.to_asn1_integer().map_err(fail)?;
        builder.set_serial_number(&serial).map_err(fail)?;
        builder.set_subject_name(&name).map_err(fail)?;
        builder.set_issuer_name(&name).map_err(fail)?;
        builder.set_pubkey(&key).map_err(fail)?;
        let not_before = Asn1Time::from_unix(unix_now() - 86_400).map_err(fail)?;
        let not_after = Asn1Time::days_from_now(365).map_err(fail)?;
        builder.set_not_before(&not_before).map_err(fail)?;
        builder.set_not_after(&not_after).map_err(fail)?;
        builder.sign(&key, MessageDigest::sha256()).map_err(fail)?;
        let certificate = builder.build();
        let fingerprint = Fingerprint::of(&certificate, HashFunction::Sha256)?;
        Ok(DtlsIdentity {
            certificate,
            key,
            fingerprint,
        })
    }

    /// The SHA-256 fingerprint the relay's SDP carries.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
