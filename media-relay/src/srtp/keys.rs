//! Master keys and the session keys derived from them (RFC 3711 §4.3).
//!
//! A [`MasterKey`] is what SDES (`a=crypto … inline:`) or the DTLS-SRTP exporter hands
//! over: key, salt, and optionally an MKI and a lifetime. Its `Debug` output never shows the
//! key or the salt, and the bytes are wiped when it is dropped. [`SessionKeys`] holds the
//! keyed primitives derived from one master key with the AES-CM pseudo-random function
//! (key derivation rate 0, the only rate SDES and DTLS-SRTP use in practice).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

use super::SrtpError;
use super::cipher::{Aes, F8, Gcm, HmacSha1};
use super::header::HeaderProtection;
use super::suite::{AuthKind, CipherKind, HMAC_KEY_LEN, Profile};

/// Longest MKI accepted (RFC 4568 allows up to 128 bytes; libsrtp the same).
pub const MAX_MKI_LEN: usize = 128;

/// The KDF labels of RFC 3711 §4.3.1 (and RFC 6904 §4.3 for header encryption).
pub(crate) mod label {
    pub const RTP_CIPHER: u8 = 0x00;
    pub const RTP_AUTH: u8 = 0x01;
    pub const RTP_SALT: u8 = 0x02;
    pub const RTCP_CIPHER: u8 = 0x03;
    pub const RTCP_AUTH: u8 = 0x04;
    pub const RTCP_SALT: u8 = 0x05;
    pub const HEADER_CIPHER: u8 = 0x06;
    pub const HEADER_SALT: u8 = 0x07;
}

/// A master key and salt (16, 24 or 32 and 12 or 14 bytes), with an optional MKI and
/// lifetime. Wiped on drop; `Debug` shows only the lengths, the MKI and the lifetime.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; 32],
    key_len: u8,
    salt: [u8; 14],
    salt_len: u8,
    mki: Option<Box<[u8]>>,
    lifetime: Option<u64>,
}

impl MasterKey {
    /// A master key of 16, 24 or 32 bytes and a salt of 12 or 14 bytes.
    pub fn new(key: &[u8], salt: &[u8]) -> Result<MasterKey, SrtpError> {
        if !matches!(key.len(), 16 | 24 | 32) || !matches!(salt.len(), 12 | 14) {
            return Err(SrtpError::BadKey);
        }
        let mut master = MasterKey {
            key: [0; 32],
            key_len: key.len() as u8,
            salt: [0; 14],
            salt_len: salt.len() as u8,
            mki: None,
            lifetime: None,
        };
        master.key[..key.len()].copy_from_slice(key);
        master.salt[..salt.len()].copy_from_slice(salt);
        Ok(master)
    }

    /// Splits `key || salt` (the SDES inline form) for `profile`.
    pub fn from_concatenated(profile: Profile, key_salt: &[u8]) -> Result<MasterKey, SrtpError> {
        let key_len = profile.master_key_len();
        if key_salt.len() != key_len + profile.master_salt_len() {
            return Err(SrtpError::BadKey);
        }
        let (key, salt) = key_salt.split_at(key_len);
        MasterKey::new(key, salt)
    }

    /// Tags the key with an MKI (1 to 128 bytes) carried in every packet it protects.
    pub fn with_mki(mut self, mki: &[u8]) -> Result<MasterKey, SrtpError> {
        if mki.is_empty() || mki.len() > MAX_MKI_LEN {
            return Err(SrtpError::BadKey);
        }
        self.mki = Some(mki.into());
        Ok(self)
    }

    /// Limits the key to `packets` SRTP and SRTCP packets in all (RFC 4568 §6.1 lifetime).
    pub fn with_lifetime(mut self, packets: u64) -> MasterKey {
        self.lifetime = Some(packets);
        self
    }

    pub fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len)]
    }

    pub fn salt(&self) -> &[u8] {
        &self.salt[..usize::from(self.salt_len)]
    }

    /// `key || salt`, the SDES inline form.
    pub fn concatenated(&self) -> Vec<u8> {
        [self.key(), self.salt()].concat()
    }

    pub fn mki(&self) -> Option<&[u8]> {
        self.mki.as_deref()
    }

    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }

    /// Whether the key and salt lengths fit `profile`.
    pub fn fits(&self, profile: Profile) -> bool {
        self.key().len() == profile.master_key_len()
            && self.salt().len() == profile.master_salt_len()
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.key.zeroize();
        self.salt.zeroize();
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("key", &format_args!("<{} bytes redacted>", self.key_len))
            .field("salt", &format_args!("<{} bytes redacted>", self.salt_len))
            .field("mki", &self.mki)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// The serialised form, for the control API spoken over a network.
#[derive(Serialize, Deserialize)]
struct MasterKeyWire {
    key: Vec<u8>,
    salt: Vec<u8>,
    #[serde(default)]
    mki: Option<Vec<u8>>,
    #[serde(default)]
    lifetime: Option<u64>,
}

impl Drop for MasterKeyWire {
    fn drop(&mut self) {
        self.key.zeroize();
        self.salt.zeroize();
    }
}

impl Serialize for MasterKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MasterKeyWire {
            key: self.key().to_vec(),
            salt: self.salt().to_vec(),
            mki: self.mki.as_ref().map(|m| m.to_vec()),
            lifetime: self.lifetime,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MasterKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = MasterKeyWire::deserialize(deserializer)?;
        let mut key = MasterKey::new(&wire.key, &wire.salt).map_err(serde::de::Error::custom)?;
        if let Some(mki) = &wire.mki {
            key = key.with_mki(mki).map_err(serde::de::Error::custom)?;
        }
        key.lifetime = wire.lifetime;
        Ok(key)
    }
}

/// The encryption transform of one direction's session keys. Held once per context and
/// used for every packet: the key schedules stay inline rather than behind a pointer.
#[allow(clippy::large_enum_variant)]
pub(crate) enum CipherState {
    Null,
    Ctr(Aes),
    F8(Box<F8>),
    Gcm(Gcm),
}

/// The session keys of SRTP or of SRTCP: cipher, salt and authentication.
pub(crate) struct KeySet {
    pub cipher: CipherState,
    /// 14 bytes (counter mode, f8) or 12 (GCM, the last two left zero).
    pub salt: [u8; 14],
    pub auth: Option<HmacSha1>,
}

impl Drop for KeySet {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

/// Session keys given directly (RFC 7714 §16–17 publish vectors this way).
#[derive(Clone, Copy)]
pub struct RawKeys<'a> {
    pub cipher_key: &'a [u8],
    pub salt: &'a [u8],
    /// The HMAC-SHA1 key (20 bytes); empty for AEAD or NULL authentication.
    pub auth_key: &'a [u8],
}

impl std::fmt::Debug for RawKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawKeys(<redacted>)")
    }
}

/// Everything derived from one master key: the keyed transforms for SRTP and SRTCP.
pub struct SessionKeys {
    pub(crate) profile: Profile,
    pub(crate) rtp: KeySet,
    pub(crate) rtcp: KeySet,
    pub(crate) header: HeaderProtection,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derives the session keys of `profile` from a master key (RFC 3711 §4.3.1,
    /// key derivation rate 0).
    pub fn derive(profile: Profile, master: &MasterKey) -> Result<SessionKeys, SrtpError> {
        SessionKeys::derive_with(profile, master, &HeaderOptions::default())
    }

    /// As [`SessionKeys::derive`], with RTP header protection (RFC 6904 or RFC 9335).
    pub fn derive_with(
        profile: Profile,
        master: &MasterKey,
        options: &HeaderOptions,
    ) -> Result<SessionKeys, SrtpError> {
        if !profile.is_valid() || !master.fits(profile) {
            return Err(SrtpError::BadKey);
        }
        let prf = Aes::new(master.key()).ok_or(SrtpError::BadKey)?;
        let salt = master.salt();
        let rtp = derive_set(
            profile,
            &prf,
            salt,
            [label::RTP_CIPHER, label::RTP_AUTH, label::RTP_SALT],
        )?;
        let rtcp = derive_set(
            profile,
            &prf,
            salt,
            [label::RTCP_CIPHER, label::RTCP_AUTH, label::RTCP_SALT],
        )?;
        let header = HeaderProtection::new(options, || {
            let mut key = [0u8; 32];
            let key_len = master.key().len();
            let key = key.get_mut(..key_len).ok_or(SrtpError::BadKey)?;
            derive_bytes(&prf, salt, label::HEADER_CIPHER, key);
            let cipher = Aes::new(key).ok_or(SrtpError::BadKey);
            key.zeroize();
            let mut header_salt = [0u8; 14];
            derive_bytes(
                &prf,
                salt,
                label::HEADER_SALT,
                &mut header_salt[..salt.len()],
            );
            Ok((cipher?, header_salt))
        })?;
        Ok(SessionKeys {
            profile,
            rtp,
            rtcp,
            header,
        })
    }

    /// Session keys given directly, the same for SRTP and SRTCP (no key derivation).
    pub fn from_raw(profile: Profile, keys: RawKeys<'_>) -> Result<SessionKeys, SrtpError> {
        if !profile.is_valid() {
            return Err(SrtpError::BadKey);
        }
        let set = || keyset(profile, keys.cipher_key, keys.salt, keys.auth_key);
        Ok(SessionKeys {
            profile,
            rtp: set()?,
            rtcp: set()?,
            header: HeaderProtection::default(),
        })
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }
}

/// Which RTP header fields are protected besides the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderOptions {
    /// RFC 6904: the ids of header extension elements whose data is encrypted.
    pub encrypted_extension_ids: Vec<u8>,
    /// RFC 9335 Cryptex: encrypt the CSRCs and all header extensions of sent packets.
    pub cryptex: bool,
}

/// The RFC 3711 §4.3.3 key derivation (AES-CM PRF, key derivation rate 0): fills `out`
/// with the session key material for `label` (0–2 SRTP, 3–5 SRTCP, 6–7 RFC 6904 header
/// encryption) derived from `master`.
pub fn derive_session_key(master: &MasterKey, label: u8, out: &mut [u8]) -> Result<(), SrtpError> {
    let prf = Aes::new(master.key()).ok_or(SrtpError::BadKey)?;
    derive_bytes(&prf, master.salt(), label, out);
    Ok(())
}

/// Fills `out` with the AES-CM PRF output for `label` (RFC 3711 §4.3.3, r = 0). A 12-byte
/// (GCM) salt is used as the first 12 of the 14 bytes, the rest zero (RFC 7714 §11).
pub(crate) fn derive_bytes(prf: &Aes, master_salt: &[u8], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    for (i, s) in iv.iter_mut().zip(master_salt.iter().take(14)) {
        *i = *s;
    }
    iv[7] ^= label;
    out.fill(0);
    prf.apply_ctr(&iv, out);
}

fn derive_set(
    profile: Profile,
    prf: &Aes,
    master_salt: &[u8],
    [cipher_label, auth_label, salt_label]: [u8; 3],
) -> Result<KeySet, SrtpError> {
    let mut cipher_key = [0u8; 32];
    let cipher_key = cipher_key
        .get_mut(..profile.cipher_key_len())
        .ok_or(SrtpError::BadKey)?;
    let mut auth_key = [0u8; HMAC_KEY_LEN];
    let mut salt = [0u8; 14];
    let salt_len = profile.master_salt_len();
    derive_bytes(prf, master_salt, cipher_label, cipher_key);
    derive_bytes(prf, master_salt, auth_label, &mut auth_key);
    derive_bytes(prf, master_salt, salt_label, &mut salt[..salt_len]);
    let uses_hmac = matches!(profile.auth, AuthKind::HmacSha1_80 | AuthKind::HmacSha1_32);
    let auth: &[u8] = if uses_hmac { &auth_key } else { &[] };
    let set = keyset(profile, cipher_key, &salt[..salt_len], auth);
    cipher_key.zeroize();
    salt.zeroize();
    auth_key.zeroize();
    set
}

fn keyset(
    profile: Profile,
    cipher_key: &[u8],
    salt: &[u8],
    auth_key: &[u8],
) -> Result<KeySet, SrtpError> {
    let bad = SrtpError::BadKey;
    if cipher_key.len() != profile.cipher_key_len() || salt.len() != profile.master_salt_len() {
        return Err(bad);
    }
    let cipher = match profile.cipher {
        CipherKind::Null => CipherState::Null,
        CipherKind::AesCm128 | CipherKind::AesCm192 | CipherKind::AesCm256 => {
            CipherState::Ctr(Aes::new(cipher_key).ok_or(bad)?)
        }
        CipherKind::AesF8_128 => CipherState::F8(Box::new(F8::new(cipher_key, salt).ok_or(bad)?)),
        CipherKind::AesGcm128 | CipherKind::AesGcm256 => {
            CipherState::Gcm(Gcm::new(cipher_key).ok_or(bad)?)
        }
    };
    let auth = match profile.auth {
        AuthKind::HmacSha1_80 | AuthKind::HmacSha1_32 => {
            if auth_key.len() != HMAC_KEY_LEN {
                return Err(bad);
            }
            Some(HmacSha1::new(auth_key).ok_or(bad)?)
        }
        AuthKind::Null | AuthKind::Aead => None,
    };
    let mut padded = [0u8; 14];
    padded[..salt.len()].copy_from_slice(salt);
    Ok(KeySet {
        cipher,
        salt: padded,
        auth,
    })
}
