//! Media security as the B2BUA and the relay speak of it: SRTP crypto suites, SDES keys,
//! DTLS roles and certificate fingerprints, ICE credentials, what a leg's media is protected
//! with ([`LegSecurity`]), and the policy that decides it ([`MediaPolicy`]).
//!
//! Keys and passwords never appear in `Debug` output, and key bytes are wiped on drop.

use zeroize::Zeroize;

/// An SRTP crypto suite (the SDES names of RFC 4568, RFC 6188 and RFC 7714).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AesCm192HmacSha1_80,
    AesCm192HmacSha1_32,
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl SrtpSuite {
    pub const ALL: [SrtpSuite; 8] = [
        SrtpSuite::AeadAes256Gcm,
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::AesCm256HmacSha1_80,
        SrtpSuite::AesCm192HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm256HmacSha1_32,
        SrtpSuite::AesCm192HmacSha1_32,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    /// The suites the SBC offers unless configured otherwise, preferred first: the two
    /// RFC 7714 AEAD suites, then the RFC 4568 ones every SRTP phone has.
    pub const DEFAULT_OFFER: [SrtpSuite; 4] = [
        SrtpSuite::AeadAes256Gcm,
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    pub fn sdes_name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AesCm192HmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            SrtpSuite::AesCm192HmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            SrtpSuite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            SrtpSuite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpSuite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite an SDES name stands for (names are case-sensitive, RFC 4568 §9.2).
    pub fn from_sdes_name(name: &str) -> Option<SrtpSuite> {
        SrtpSuite::ALL.into_iter().find(|s| s.sdes_name() == name)
    }

    /// Master key plus salt length in bytes (the SDES inline key's length).
    pub fn key_salt_len(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 | SrtpSuite::AesCm128HmacSha1_32 => 16 + 14,
            SrtpSuite::AesCm192HmacSha1_80 | SrtpSuite::AesCm192HmacSha1_32 => 24 + 14,
            SrtpSuite::AesCm256HmacSha1_80 | SrtpSuite::AesCm256HmacSha1_32 => 32 + 14,
            SrtpSuite::AeadAes128Gcm => 16 + 12,
            SrtpSuite::AeadAes256Gcm => 32 + 12,
        }
    }
}

impl std::fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sdes_name())
    }
}

/// An SDES master key: key ‖ salt, with the optional MKI (as bytes) and lifetime in
/// packets. Wiped on drop; `Debug` shows neither key nor salt.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey {
    pub key_salt: Vec<u8>,
    pub mki: Option<Vec<u8>>,
    pub lifetime: Option<u64>,
}

impl SdesKey {
    pub fn new(key_salt: Vec<u8>) -> SdesKey {
        SdesKey {
            key_salt,
            mki: None,
            lifetime: None,
        }
    }
}

impl Drop for SdesKey {
    fn drop(&mut self) {
        self.key_salt.zeroize();
    }
}

impl std::fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdesKey")
            .field(
                "key_salt",
                &format_args!("<{} bytes redacted>", self.key_salt.len()),
            )
            .field("mki", &self.mki)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// The DTLS role of the relay on a leg: the client (`a=setup:active`) sends the
/// ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    Client,
    Server,
}

/// A certificate fingerprint (RFC 8122 `a=fingerprint`): hash function name in lower case
/// (`sha-256` …) and digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertFingerprint {
    pub hash: String,
    pub digest: Vec<u8>,
}

/// ICE credentials of a leg: ours, which the peer's checks must carry, and the peer's
/// user fragment. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct IceCredentials {
    pub local_ufrag: String,
    pub local_pwd: String,
    pub remote_ufrag: String,
}

impl std::fmt::Debug for IceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceCredentials")
            .field("local_ufrag", &self.local_ufrag)
            .field("local_pwd", &"<redacted>")
            .field("remote_ufrag", &self.remote_ufrag)
            .finish()
    }
}

/// How the relay protects one leg's media.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LegProtection {
    #[default]
    Plain,
    /// SDES-SRTP: the relay encrypts with `send` and decrypts with `receive` (empty until
    /// the peer's key is known).
    Sdes {
        suite: SrtpSuite,
        send: Vec<SdesKey>,
        receive: Vec<SdesKey>,
        unencrypted_srtcp: bool,
    },
    /// DTLS-SRTP: a handshake in `role` with a peer whose certificate has `fingerprint`
    /// (`None` until its SDP is known).
    Dtls {
        role: DtlsRole,
        fingerprint: Option<CertFingerprint>,
    },
}

/// A leg's media protection and ICE-lite credentials, as told to the relay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegSecurity {
    pub protection: LegProtection,
    pub ice: Option<IceCredentials>,
}

impl LegSecurity {
    /// Plain RTP without ICE: what a leg is when nothing was negotiated.
    pub fn is_default(&self) -> bool {
        self == &LegSecurity::default()
    }
}

/// How much a leg wants a key exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// Only calls using it are accepted; offers from the SBC use it.
    Require,
    /// Offers from the SBC use it; offers from the peer without it are accepted.
    Prefer,
    /// Accepted when the peer offers it; not offered by the SBC.
    Allow,
    /// Refused (answered 488 when offered).
    Forbid,
}

impl Requirement {
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Require => "require",
            Requirement::Prefer => "prefer",
            Requirement::Allow => "allow",
            Requirement::Forbid => "forbid",
        }
    }

    pub fn from_name(name: &str) -> Option<Requirement> {
        [
            Requirement::Require,
            Requirement::Prefer,
            Requirement::Allow,
            Requirement::Forbid,
        ]
        .into_iter()
        .find(|r| r.name() == name)
    }
}

/// The media security policy of one side (a trunk, or the default for peers that are no
/// trunk): whether SDES-SRTP and DTLS-SRTP are required, preferred, allowed or forbidden,
/// which suites SDES may use, and whether SDES keys may travel over signalling that is
/// not TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaPolicy {
    pub sdes: Requirement,
    pub dtls: Requirement,
    /// SDES suites in preference order (offered in this order, accepted only these).
    pub suites: Vec<SrtpSuite>,
    /// SDES keys are written into SDP only over TLS unless this is set: anyone on the path
    /// of plain signalling could otherwise read them.
    pub sdes_over_insecure_signalling: bool,
}

impl Default for MediaPolicy {
    fn default() -> MediaPolicy {
        MediaPolicy {
            sdes: Requirement::Allow,
            dtls: Requirement::Allow,
            suites: SrtpSuite::DEFAULT_OFFER.to_vec(),
            sdes_over_insecure_signalling: false,
        }
    }
}

impl MediaPolicy {
    /// Whether plain RTP is acceptable (neither key exchange is required).
    pub fn allows_plain(&self) -> bool {
        self.sdes != Requirement::Require && self.dtls != Requirement::Require
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_passwords_stay_out_of_debug_output() {
        let key = SdesKey::new(vec![0x5a; 30]);
        assert!(!format!("{key:?}").contains("90"));
        let ice = IceCredentials {
            local_ufrag: "u".into(),
            local_pwd: "secret-password".into(),
            remote_ufrag: "r".into(),
        };
        assert!(!format!("{ice:?}").contains("secret"));
        for suite in SrtpSuite::ALL {
            assert_eq!(SrtpSuite::from_sdes_name(suite.sdes_name()), Some(suite));
        }
        assert_eq!(Requirement::from_name("prefer"), Some(Requirement::Prefer));
    }
}
