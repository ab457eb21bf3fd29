//! SRTP protection profiles: which cipher and which authentication, and their lengths.
//!
//! [`Suite`] names the profiles that signalling negotiates (SDES `a=crypto` names, RFC 4568,
//! RFC 6188, RFC 7714; DTLS-SRTP profile identifiers, RFC 5764 §4.1.2 and RFC 7714 §14.2).
//! [`Profile`] is the lower-level pair (cipher, authentication) that a [`Suite`] stands for;
//! it also admits the NULL cipher and NULL authentication, which no suite offered by the
//! relay uses, so that the published test vectors for them can be checked.

use serde::{Deserialize, Serialize};

/// An SRTP crypto suite the relay can negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 3711 default).
    AesCm128HmacSha1_80,
    /// As above with a 32-bit RTP tag (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
    /// AES-192 counter mode (RFC 6188).
    AesCm192HmacSha1_80,
    AesCm192HmacSha1_32,
    /// AES-256 counter mode (RFC 6188).
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
    /// AES-128 in Galois/counter mode with a 128-bit tag (RFC 7714).
    AeadAes128Gcm,
    /// AES-256 in Galois/counter mode with a 128-bit tag (RFC 7714).
    AeadAes256Gcm,
}

impl Suite {
    /// Every suite, strongest first (the order the relay offers them in).
    pub const ALL: [Suite; 8] = [
        Suite::AeadAes256Gcm,
        Suite::AeadAes128Gcm,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm192HmacSha1_80,
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
        Suite::AesCm192HmacSha1_32,
        Suite::AesCm128HmacSha1_32,
    ];

    /// The name in SDES `a=crypto` lines (RFC 4568 §6.2, RFC 6188 §3, RFC 7714 §14.1).
    pub fn sdes_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AesCm192HmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            Suite::AesCm192HmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            Suite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite an SDES name stands for (exact match, as RFC 4568 names are case-sensitive).
    pub fn from_sdes_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.sdes_name() == name)
    }

    /// The DTLS-SRTP protection profile identifier (RFC 5764 §4.1.2, RFC 7714 §14.2);
    /// `None` for the AES-192/256 counter-mode suites, which have none.
    pub fn dtls_profile_id(self) -> Option<u16> {
        match self {
            Suite::AesCm128HmacSha1_80 => Some(0x0001),
            Suite::AesCm128HmacSha1_32 => Some(0x0002),
            Suite::AeadAes128Gcm => Some(0x0007),
            Suite::AeadAes256Gcm => Some(0x0008),
            _ => None,
        }
    }

    /// The profile name OpenSSL uses for `use_srtp` (`SSL_CTX_set_tlsext_use_srtp`).
    pub fn openssl_profile_name(self) -> Option<&'static str> {
        match self {
            Suite::AesCm128HmacSha1_80 => Some("SRTP_AES128_CM_SHA1_80"),
            Suite::AesCm128HmacSha1_32 => Some("SRTP_AES128_CM_SHA1_32"),
            Suite::AeadAes128Gcm => Some("SRTP_AEAD_AES_128_GCM"),
            Suite::AeadAes256Gcm => Some("SRTP_AEAD_AES_256_GCM"),
            _ => None,
        }
    }

    /// The suite a DTLS-SRTP profile identifier stands for.
    pub fn from_dtls_profile_id(id: u16) -> Option<Suite> {
        Suite::ALL
            .into_iter()
            .find(|s| s.dtls_profile_id() == Some(id))
    }

    /// The cipher and authentication of the suite.
    pub fn profile(self) -> Profile {
        let (cipher, auth) = match self {
            Suite::AesCm128HmacSha1_80 => (CipherKind::AesCm128, AuthKind::HmacSha1_80),
            Suite::AesCm128HmacSha1_32 => (CipherKind::AesCm128, AuthKind::HmacSha1_32),
            Suite::AesCm192HmacSha1_80 => (CipherKind::AesCm192, AuthKind::HmacSha1_80),
            Suite::AesCm192HmacSha1_32 => (CipherKind::AesCm192, AuthKind::HmacSha1_32),
            Suite::AesCm256HmacSha1_80 => (CipherKind::AesCm256, AuthKind::HmacSha1_80),
            Suite::AesCm256HmacSha1_32 => (CipherKind::AesCm256, AuthKind::HmacSha1_32),
            Suite::AeadAes128Gcm => (CipherKind::AesGcm128, AuthKind::Aead),
            Suite::AeadAes256Gcm => (CipherKind::AesGcm256, AuthKind::Aead),
        };
        Profile { cipher, auth }
    }

    /// Master key length in bytes.
    pub fn master_key_len(self) -> usize {
        self.profile().master_key_len()
    }

    /// Master salt length in bytes (14 for counter mode, 12 for GCM).
    pub fn master_salt_len(self) -> usize {
        self.profile().master_salt_len()
    }

    /// Whether the suite is an AEAD (GCM) suite.
    pub fn is_aead(self) -> bool {
        self.profile().auth == AuthKind::Aead
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sdes_name())
    }
}

/// The encryption transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherKind {
    /// No encryption (RFC 3711 §4.1.3); only for checking published vectors.
    Null,
    AesCm128,
    AesCm192,
    AesCm256,
    /// AES-128 in f8 mode (RFC 3711 §4.1.2).
    AesF8_128,
    AesGcm128,
    AesGcm256,
}

/// The message authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthKind {
    /// No authentication; only for checking published vectors.
    Null,
    /// HMAC-SHA1, 80-bit tags on RTP and RTCP.
    HmacSha1_80,
    /// HMAC-SHA1, 32-bit tag on RTP, 80-bit on RTCP (RFC 4568 §6.2.2).
    HmacSha1_32,
    /// The cipher is an AEAD and authenticates (GCM, 128-bit tags).
    Aead,
}

/// A cipher and an authentication transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    pub cipher: CipherKind,
    pub auth: AuthKind,
}

/// The HMAC-SHA1 session authentication key length (n_a = 160 bits).
pub(crate) const HMAC_KEY_LEN: usize = 20;
/// The GCM authentication tag length used by the RFC 7714 suites.
pub(crate) const GCM_TAG_LEN: usize = 16;

impl Profile {
    /// Whether cipher and authentication fit together (an AEAD cipher authenticates
    /// itself; a non-AEAD cipher cannot use AEAD authentication).
    pub fn is_valid(self) -> bool {
        self.is_aead() == (self.auth == AuthKind::Aead)
    }

    pub(crate) fn is_aead(self) -> bool {
        matches!(self.cipher, CipherKind::AesGcm128 | CipherKind::AesGcm256)
    }

    /// The session encryption key length in bytes (0 for NULL).
    pub fn cipher_key_len(self) -> usize {
        match self.cipher {
            CipherKind::Null => 0,
            CipherKind::AesCm128 | CipherKind::AesF8_128 | CipherKind::AesGcm128 => 16,
            CipherKind::AesCm192 => 24,
            CipherKind::AesCm256 | CipherKind::AesGcm256 => 32,
        }
    }

    /// The master key length: the cipher's key length, 16 for the NULL cipher (whose
    /// authentication key still comes from an AES-128 key derivation).
    pub fn master_key_len(self) -> usize {
        match self.cipher {
            CipherKind::Null => 16,
            _ => self.cipher_key_len(),
        }
    }

    /// The master (and session) salt length: 12 for GCM (RFC 7714 §11), 14 otherwise.
    pub fn master_salt_len(self) -> usize {
        if self.is_aead() { 12 } else { 14 }
    }

    /// The tag length appended to SRTP packets.
    pub fn rtp_tag_len(self) -> usize {
        match self.auth {
            AuthKind::Null => 0,
            AuthKind::HmacSha1_80 => 10,
            AuthKind::HmacSha1_32 => 4,
            AuthKind::Aead => GCM_TAG_LEN,
        }
    }

    /// The tag length appended to SRTCP packets.
    pub fn rtcp_tag_len(self) -> usize {
        match self.auth {
            AuthKind::Null => 0,
            AuthKind::HmacSha1_80 | AuthKind::HmacSha1_32 => 10,
            AuthKind::Aead => GCM_TAG_LEN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_profiles_round_trip() {
        for suite in Suite::ALL {
            assert_eq!(Suite::from_sdes_name(suite.sdes_name()), Some(suite));
            if let Some(id) = suite.dtls_profile_id() {
                assert_eq!(Suite::from_dtls_profile_id(id), Some(suite));
                assert!(suite.openssl_profile_name().is_some());
            }
            assert!(suite.profile().is_valid());
        }
        assert_eq!(Suite::from_sdes_name("aes_cm_128_hmac_sha1_80"), None);
        assert_eq!(Suite::AeadAes128Gcm.master_salt_len(), 12);
        assert_eq!(Suite::AesCm128HmacSha1_32.profile().rtp_tag_len(), 4);
        assert_eq!(Suite::AesCm128HmacSha1_32.profile().rtcp_tag_len(), 10);
        assert!(
            !Profile {
                cipher: CipherKind::AesGcm128,
                auth: AuthKind::HmacSha1_80
            }
            .is_valid()
        );
    }
}
