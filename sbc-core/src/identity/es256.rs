//! ES256 (RFC 7518 §3.4) with openssl: ECDSA on P-256 over SHA-256, the signature in the
//! JWS form `r || s` (two 32-byte big-endian integers), not the DER `ECDSA-Sig-Value`
//! openssl produces and takes.

use openssl::bn::BigNum;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};

/// Bytes of an ES256 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Why a key cannot be used for ES256.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM private or public key")]
    NotAKey,
    #[error("not an EC key on P-256 (prime256v1)")]
    NotP256,
    #[error("openssl failed: {0}")]
    Crypto(String),
}

fn check_p256<T: openssl::pkey::HasPublic>(key: &EcKey<T>) -> Result<(), KeyError> {
    match key.group().curve_name() {
        Some(Nid::X9_62_PRIME256V1) => Ok(()),
        _ => Err(KeyError::NotP256),
    }
}

/// A P-256 private key that signs PASSporTs.
#[derive(Clone)]
pub struct SigningKey(EcKey<Private>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(P-256, redacted)")
    }
}

impl SigningKey {
    /// From PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, KeyError> {
        let key = PKey::private_key_from_pem(pem)
            .map_err(|_| KeyError::NotAKey)?
            .ec_key()
            .map_err(|_| KeyError::NotP256)?;
        check_p256(&key)?;
        Ok(SigningKey(key))
    }

    pub fn from_ec_key(key: EcKey<Private>) -> Result<SigningKey, KeyError> {
        check_p256(&key)?;
        Ok(SigningKey(key))
    }

    /// Signs `input` (the JWS signing input).
    pub fn sign(&self, input: &[u8]) -> Result<[u8; SIGNATURE_LEN], KeyError> {
        let digest = openssl::sha::sha256(input);
        let signature =
            EcdsaSig::sign(&digest, &self.0).map_err(|e| KeyError::Crypto(e.to_string()))?;
        let mut out = [0u8; SIGNATURE_LEN];
        let r = signature
            .r()
            .to_vec_padded(32)
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let s = signature
            .s()
            .to_vec_padded(32)
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        out[..32].copy_from_slice(&r);
        out[32..].copy_from_slice(&s);
        Ok(out)
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let public = EcKey::from_public_key(self.0.group(), self.0.public_key())
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        Ok(VerifyingKey(public))
    }
}

/// A P-256 public key that checks PASSporT signatures.
#[derive(Clone)]
pub struct VerifyingKey(EcKey<Public>);

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyingKey(P-256)")
    }
}

impl VerifyingKey {
    /// From a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn from_pem(pem: &[u8]) -> Result<VerifyingKey, KeyError> {
        let key = PKey::public_key_from_pem(pem)
            .map_err(|_| KeyError::NotAKey)?
            .ec_key()
            .map_err(|_| KeyError::NotP256)?;
        check_p256(&key)?;
        Ok(VerifyingKey(key))
    }

    /// The public key of a certificate.
    pub fn from_certificate(
        certificate: &openssl::x509::X509Ref,
    ) -> Result<VerifyingKey, KeyError> {
        let key = certificate
            .public_key()
            .map_err(|_| KeyError::NotAKey)?
            .ec_key()
            .map_err(|_| KeyError::NotP256)?;
        check_p256(&key)?;
        Ok(VerifyingKey(key))
    }

    /// Whether `signature` (`r || s`) is a valid ES256 signature of `input`. Any other
    /// length, or r or s out of range, is simply invalid.
    pub fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        if signature.len() != SIGNATURE_LEN {
            return false;
        }
        let (r, s) = signature.split_at(32);
        let (Ok(r), Ok(s)) = (BigNum::from_slice(r), BigNum::from_slice(s)) else {
            return false;
        };
        let Ok(signature) = EcdsaSig::from_private_components(r, s) else {
            return false;
        };
        let digest = openssl::sha::sha256(input);
        signature.verify(&digest, &self.0).unwrap_or(false)
    }

    pub fn public_key(&self) -> &EcKey<Public> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use openssl::ec::EcGroup;

    use super::*;

    fn fresh() -> SigningKey {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        SigningKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    #[test]
    fn signatures_verify_and_tampering_is_caught() {
        let key = fresh();
        let public = key.verifying_key().unwrap();
        let signature = key.sign(b"header.claims").unwrap();
        assert!(public.verify(b"header.claims", &signature));
        assert!(!public.verify(b"header.claimz", &signature));
        let mut flipped = signature;
        flipped[10] ^= 1;
        assert!(!public.verify(b"header.claims", &flipped));
        assert!(!public.verify(b"header.claims", &signature[..63]));
        assert!(!public.verify(b"header.claims", &[0u8; 64]));
        assert!(
            !fresh()
                .verifying_key()
                .unwrap()
                .verify(b"header.claims", &signature)
        );
    }

    #[test]
    fn other_curves_are_refused() {
        let group = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
        let key = EcKey::generate(&group).unwrap();
        assert_eq!(SigningKey::from_ec_key(key).unwrap_err(), KeyError::NotP256);
    }
}
