//! The keyed primitives: AES in counter and f8 mode, AES-GCM and HMAC-SHA1.
//!
//! Each is keyed once, when a session key is derived, and then used per packet without
//! allocating: counter mode runs the expanded AES key schedule over blocks of counters,
//! HMAC clones the state that has already absorbed the inner and outer padded keys, and
//! GCM uses ring's pre-keyed context.
//!
//! Why these implementations: measured on 160-byte payloads on the target machine, the
//! RustCrypto `aes`/`ctr` (AES-NI) and `hmac`/`sha1` (SHA-NI) crates run counter mode and
//! HMAC-SHA1 faster than OpenSSL's EVP interface, whose per-call provider dispatch dominates
//! at this size, and ring's stitched AES-GCM assembly is the fastest GCM available (see
//! `bench/srtp-backends/`).

use aes::cipher::{BlockEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use zeroize::Zeroize;

/// AES with a 128-, 192- or 256-bit key, key schedule expanded once.
#[derive(Clone)]
pub(crate) enum Aes {
    A128(aes::Aes128Enc),
    A192(aes::Aes192Enc),
    A256(aes::Aes256Enc),
}

impl Aes {
    /// `None` when the key is not 16, 24 or 32 bytes long.
    pub(crate) fn new(key: &[u8]) -> Option<Aes> {
        match key.len() {
            16 => aes::Aes128Enc::new_from_slice(key).ok().map(Aes::A128),
            24 => aes::Aes192Enc::new_from_slice(key).ok().map(Aes::A192),
            32 => aes::Aes256Enc::new_from_slice(key).ok().map(Aes::A256),
            _ => None,
        }
    }

    /// Encrypts one block in place.
    pub(crate) fn encrypt_block(&self, block: &mut [u8; 16]) {
        let block = aes::Block::from_mut_slice(block);
        match self {
            Aes::A128(c) => c.encrypt_block(block),
            Aes::A192(c) => c.encrypt_block(block),
            Aes::A256(c) => c.encrypt_block(block),
        }
    }

    /// XORs `data` with the counter-mode keystream that starts at block `iv` (RFC 3711
    /// §4.1.1: the IV's low 16 bits count blocks; a packet never holds 2^16 of them).
    pub(crate) fn apply_ctr(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            Aes::A128(c) => ctr_apply(c, iv, data),
            Aes::A192(c) => ctr_apply(c, iv, data),
            Aes::A256(c) => ctr_apply(c, iv, data),
        }
    }
}

/// Counter mode without copying the key schedule: eight counter blocks at a time go
/// through the cipher's parallel block encryption, then are XORed onto the data.
fn ctr_apply<C>(cipher: &C, iv: &[u8; 16], data: &mut [u8])
where
    C: BlockEncrypt + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
{
    const PARALLEL: usize = 8;
    let mut counter = u128::from_be_bytes(*iv);
    let mut blocks = [aes::Block::default(); PARALLEL];
    for chunk in data.chunks_mut(16 * PARALLEL) {
        let count = chunk.len().div_ceil(16);
        let blocks = &mut blocks[..count];
        for block in blocks.iter_mut() {
            *block = counter.to_be_bytes().into();
            counter = counter.wrapping_add(1);
        }
        cipher.encrypt_blocks(blocks);
        for (piece, keystream) in chunk.chunks_mut(16).zip(blocks.iter()) {
            for (byte, key) in piece.iter_mut().zip(keystream.iter()) {
                *byte ^= key;
            }
        }
    }
    for block in &mut blocks {
        block.as_mut_slice().zeroize();
    }
}

/// AES-128 in f8 mode (RFC 3711 §4.1.2): the key schedule of `k_e` and of
/// `k_e XOR (k_s || 0x5555…)`, which encrypts the IV.
#[derive(Clone)]
pub(crate) struct F8 {
    cipher: Aes,
    masked: Aes,
}

impl F8 {
    pub(crate) fn new(key: &[u8], salt: &[u8]) -> Option<F8> {
        let mut mask = [0x55u8; 32];
        let mask = mask.get_mut(..key.len())?;
        for (m, s) in mask.iter_mut().zip(salt) {
            *m = *s;
        }
        for (m, k) in mask.iter_mut().zip(key) {
            *m ^= k;
        }
        let masked = Aes::new(mask);
        mask.fill(0);
        Some(F8 {
            cipher: Aes::new(key)?,
            masked: masked?,
        })
    }

    /// XORs `data` with the f8 keystream for `iv`.
    pub(crate) fn apply(&self, iv: &[u8; 16], data: &mut [u8]) {
        let mut iv_prime = *iv;
        self.masked.encrypt_block(&mut iv_prime);
        let iv_prime = u128::from_be_bytes(iv_prime);
        let mut previous = 0u128;
        for (j, chunk) in data.chunks_mut(16).enumerate() {
            let mut block = (iv_prime ^ (j as u128) ^ previous).to_be_bytes();
            self.cipher.encrypt_block(&mut block);
            previous = u128::from_be_bytes(block);
            for (d, k) in chunk.iter_mut().zip(block) {
                *d ^= k;
            }
        }
    }
}

/// AES-GCM with a 128- or 256-bit key and a 16-byte tag.
pub(crate) struct Gcm {
    key: ring::aead::LessSafeKey,
}

/// The GCM tag did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unauthentic;

impl Gcm {
    pub(crate) fn new(key: &[u8]) -> Option<Gcm> {
        let algorithm = match key.len() {
            16 => &ring::aead::AES_128_GCM,
            32 => &ring::aead::AES_256_GCM,
            _ => return None,
        };
        let key = ring::aead::UnboundKey::new(algorithm, key).ok()?;
        Some(Gcm {
            key: ring::aead::LessSafeKey::new(key),
        })
    }

    /// Encrypts `data` in place and returns the tag.
    pub(crate) fn seal(&self, nonce: [u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        let mut tag = [0u8; 16];
        // Sealing fails only for inputs beyond GCM's 64 GiB limit, far beyond a datagram.
        if let Ok(sealed) =
            self.key
                .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), data)
        {
            tag.copy_from_slice(sealed.as_ref());
        }
        tag
    }

    /// Verifies and decrypts `data` (ciphertext followed by the 16-byte tag) in place;
    /// returns the plaintext length. On failure the contents of `data` are unspecified.
    pub(crate) fn open(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<usize, Unauthentic> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        self.key
            .open_in_place(nonce, ring::aead::Aad::from(aad), data)
            .map(|plain| plain.len())
            .map_err(|_| Unauthentic)
    }
}

/// HMAC-SHA1 keyed once; every message starts from a copy of the keyed state.
#[derive(Clone)]
pub(crate) struct HmacSha1 {
    keyed: Hmac<Sha1>,
}

impl HmacSha1 {
    pub(crate) fn new(key: &[u8]) -> Option<HmacSha1> {
        Some(HmacSha1 {
            keyed: <Hmac<Sha1> as Mac>::new_from_slice(key).ok()?,
        })
    }

    /// The full 20-byte HMAC of the concatenation of `parts`.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the leftmost bytes of the HMAC of `parts` (constant time).
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(part);
        }
        !tag.is_empty() && mac.verify_truncated_left(tag).is_ok()
    }
}

/// The raw ciphers, for known-answer tests against published vectors.
pub mod primitives {
    use super::super::SrtpError;
    use super::{Aes, F8, Gcm};

    /// XORs `data` with the AES counter-mode keystream starting at counter block `iv`.
    pub fn aes_cm(key: &[u8], iv: &[u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
        Aes::new(key).ok_or(SrtpError::BadKey)?.apply_ctr(iv, data);
        Ok(())
    }

    /// XORs `data` with the AES-f8 keystream (RFC 3711 §4.1.2) for `iv`; `salt` is the
    /// session salt that forms the key mask with 0x55 padding.
    pub fn aes_f8(
        key: &[u8],
        salt: &[u8],
        iv: &[u8; 16],
        data: &mut [u8],
    ) -> Result<(), SrtpError> {
        F8::new(key, salt).ok_or(SrtpError::BadKey)?.apply(iv, data);
        Ok(())
    }

    /// AES-GCM encryption in place; returns the 16-byte tag.
    pub fn aes_gcm_seal(
        key: &[u8],
        iv: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; 16], SrtpError> {
        Ok(Gcm::new(key).ok_or(SrtpError::BadKey)?.seal(iv, aad, data))
    }

    /// AES-GCM verification and decryption in place of `data` (ciphertext ‖ 16-byte tag);
    /// returns the plaintext length.
    pub fn aes_gcm_open(
        key: &[u8],
        iv: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<usize, SrtpError> {
        Gcm::new(key)
            .ok_or(SrtpError::BadKey)?
            .open(iv, aad, data)
            .map_err(|_| SrtpError::AuthFailed)
    }
}
