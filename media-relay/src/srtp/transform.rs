//! The SRTP and SRTCP packet transforms for a given packet index (RFC 3711 §3–4,
//! RFC 7714 §7–9), in place, without state: the rollover counter, the replay window and the
//! choice of master key are the [`context`](super::context)'s.
//!
//! Layouts (`[…]` optional):
//!
//! ```text
//! SRTP,  counter mode / f8 / NULL:  header | encrypted payload | [MKI] | tag
//! SRTP,  GCM:                       header | encrypted payload | tag | [MKI]
//! SRTCP, counter mode / f8 / NULL:  header(8) | encrypted rest | E+index | [MKI] | tag
//! SRTCP, GCM:                       header(8) | encrypted rest | tag | E+index | [MKI]
//! ```
//!
//! `buf` is the packet buffer: the packet is its first `len` bytes and protection writes
//! the trailer after them, so `buf` must have room for [`max_overhead`] more bytes.

use super::SrtpError;
use super::cipher::Gcm;
use super::header::{
    CRYPTEX_ENCRYPTED_START, RtpLayout, is_cryptex, mark_cryptex, swap_extension_header_back,
    swap_extension_header_to_front, unmark_cryptex,
};
use super::keys::{CipherState, KeySet, SessionKeys};
use super::suite::GCM_TAG_LEN;

/// The RTCP header left in clear: the first header and the sender's SSRC.
const RTCP_HEADER: usize = 8;
/// The E flag and 31-bit SRTCP index.
const SRTCP_INDEX_LEN: usize = 4;
const E_FLAG: u32 = 0x8000_0000;
/// The largest SRTCP index (31 bits).
pub const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// The most bytes protection adds to a packet with an MKI of `mki_len` bytes: the tag, the
/// MKI, the SRTCP index word, and for Cryptex an empty extension block.
pub fn max_overhead(mki_len: usize) -> usize {
    GCM_TAG_LEN + mki_len + SRTCP_INDEX_LEN + 4
}

/// The counter-mode IV (RFC 3711 §4.1.1): salt ⊕ SSRC·2^64 ⊕ index·2^16.
pub(crate) fn counter_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (i, b) in ssrc.to_be_bytes().into_iter().enumerate() {
        iv[4 + i] ^= b;
    }
    for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
        iv[8 + i] ^= b;
    }
    iv
}

/// The GCM IV for SRTP (RFC 7714 §8.1): salt ⊕ (0 ‖ SSRC ‖ ROC ‖ SEQ).
fn gcm_rtp_iv(salt: &[u8; 14], ssrc: u32, roc: u32, seq: u16) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..10].copy_from_slice(&roc.to_be_bytes());
    iv[10..12].copy_from_slice(&seq.to_be_bytes());
    for (i, s) in iv.iter_mut().zip(salt) {
        *i ^= s;
    }
    iv
}

/// The GCM IV for SRTCP (RFC 7714 §9.1): salt ⊕ (0 ‖ SSRC ‖ 0 ‖ index).
fn gcm_rtcp_iv(salt: &[u8; 14], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&(index & MAX_SRTCP_INDEX).to_be_bytes());
    for (i, s) in iv.iter_mut().zip(salt) {
        *i ^= s;
    }
    iv
}

/// The f8 IV for SRTP (RFC 3711 §4.1.2.2): 0 ‖ M ‖ PT ‖ SEQ ‖ TS ‖ SSRC ‖ ROC.
fn f8_rtp_iv(packet: &[u8], roc: u32) -> [u8; 16] {
    let mut iv = [0u8; 16];
    if let Some(header) = packet.get(1..12) {
        iv[1..12].copy_from_slice(header);
    }
    iv[12..].copy_from_slice(&roc.to_be_bytes());
    iv
}

/// The f8 IV for SRTCP (RFC 3711 §4.1.2.3): 0 ‖ E ‖ index ‖ V P RC PT length ‖ SSRC.
fn f8_rtcp_iv(packet: &[u8], e_index: u32) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[4..8].copy_from_slice(&e_index.to_be_bytes());
    if let Some(header) = packet.get(..8) {
        iv[8..].copy_from_slice(header);
    }
    iv
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// The SSRC and sequence number of an RTP packet (`None` when shorter than 12 bytes).
pub fn rtp_ssrc_seq(packet: &[u8]) -> Option<(u32, u16)> {
    let header = packet.get(..12)?;
    Some((
        read_u32(header, 8),
        u16::from_be_bytes([header[2], header[3]]),
    ))
}

/// The sender SSRC of an RTCP packet.
pub fn rtcp_ssrc(packet: &[u8]) -> Option<u32> {
    (packet.len() >= RTCP_HEADER).then(|| read_u32(packet, 4))
}

/// Encrypts `data` in place for a counter-mode, f8 or NULL key set; `iv_f8` is only
/// computed for f8.
fn apply_stream(keys: &KeySet, data: &mut [u8], iv_cm: impl FnOnce() -> [u8; 16], iv_f8: [u8; 16]) {
    match &keys.cipher {
        CipherState::Ctr(aes) => aes.apply_ctr(&iv_cm(), data),
        CipherState::F8(f8) => f8.apply(&iv_f8, data),
        CipherState::Null | CipherState::Gcm(_) => {}
    }
}

impl SessionKeys {
    /// The tag length of SRTP packets.
    pub fn rtp_tag_len(&self) -> usize {
        self.profile.rtp_tag_len()
    }

    /// Protects the RTP packet `buf[..len]` with rollover counter `roc`, appending `mki`
    /// (empty for none); returns the SRTP packet's length.
    pub fn protect_rtp(
        &self,
        buf: &mut [u8],
        len: usize,
        roc: u32,
        mki: &[u8],
    ) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::NoRoom)?;
        let mut layout = RtpLayout::parse(packet).ok_or(SrtpError::Malformed)?;
        let (ssrc, seq) = rtp_ssrc_seq(packet).ok_or(SrtpError::Malformed)?;
        let index = u64::from(roc) << 16 | u64::from(seq);
        let tag_len = self.profile.rtp_tag_len();
        let mut len = len;
        if len + max_overhead(mki.len()) > buf.len() {
            return Err(SrtpError::NoRoom);
        }
        let cryptex = self.header.cryptex
            && match mark_cryptex(buf, len, &layout) {
                Some((new_len, new_layout)) => {
                    len = new_len;
                    layout = new_layout;
                    true
                }
                None => false,
            };
        if !cryptex {
            self.header.apply_rfc6904(buf, &layout, ssrc, index);
        }
        if cryptex {
            swap_extension_header_to_front(buf, &layout);
        }
        let encrypted_start = if cryptex {
            CRYPTEX_ENCRYPTED_START
        } else {
            layout.header_len
        };
        let keys = &self.rtp;
        let end = match &keys.cipher {
            CipherState::Gcm(gcm) => {
                let iv = gcm_rtp_iv(&keys.salt, ssrc, roc, seq);
                let (aad, data) = buf.split_at_mut(encrypted_start);
                let data = data
                    .get_mut(..len - encrypted_start)
                    .ok_or(SrtpError::NoRoom)?;
                let tag = gcm.seal(iv, aad, data);
                if cryptex {
                    swap_extension_header_back(buf, &layout);
                }
                write(buf, len, &tag)?;
                write(buf, len + GCM_TAG_LEN, mki)?;
                len + GCM_TAG_LEN + mki.len()
            }
            _ => {
                let iv_f8 = f8_rtp_iv(buf, roc);
                let data = buf
                    .get_mut(encrypted_start..len)
                    .ok_or(SrtpError::Malformed)?;
                apply_stream(keys, data, || counter_iv(&keys.salt, ssrc, index), iv_f8);
                if cryptex {
                    swap_extension_header_back(buf, &layout);
                }
                write(buf, len, mki)?;
                if let Some(auth) = &keys.auth {
                    let tag = auth.tag(&[&buf[..len], &roc.to_be_bytes()]);
                    write(buf, len + mki.len(), tag.get(..tag_len).unwrap_or(&[]))?;
                }
                len + mki.len() + tag_len
            }
        };
        Ok(end)
    }

    /// Verifies and decrypts the SRTP packet `buf[..len]` (with an MKI of `mki_len`
    /// bytes) as rollover counter `roc`; returns the RTP packet's length. On failure the
    /// packet's contents are unspecified (GCM may have decrypted part of it).
    pub fn unprotect_rtp(
        &self,
        buf: &mut [u8],
        len: usize,
        roc: u32,
        mki_len: usize,
    ) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let trailer = tag_len + mki_len;
        let body_len = len
            .checked_sub(trailer)
            .filter(|l| *l >= 12)
            .ok_or(SrtpError::TooShort)?;
        let packet = buf.get(..body_len).ok_or(SrtpError::TooShort)?;
        let (ssrc, seq) = rtp_ssrc_seq(packet).ok_or(SrtpError::TooShort)?;
        let index = u64::from(roc) << 16 | u64::from(seq);
        let keys = &self.rtp;
        let (layout, plain_len) = match &keys.cipher {
            CipherState::Gcm(gcm) => {
                // header | ciphertext | tag | MKI
                let sealed_end = len - mki_len;
                let layout = RtpLayout::parse(packet).ok_or(SrtpError::Malformed)?;
                let cryptex = is_cryptex(&layout);
                if cryptex {
                    swap_extension_header_to_front(buf, &layout);
                }
                let start = if cryptex {
                    CRYPTEX_ENCRYPTED_START
                } else {
                    layout.header_len
                };
                let iv = gcm_rtp_iv(&keys.salt, ssrc, roc, seq);
                let (aad, data) = buf.split_at_mut(start);
                let data = data
                    .get_mut(..sealed_end - start)
                    .ok_or(SrtpError::TooShort)?;
                let plain = open(gcm, iv, aad, data)?;
                if cryptex {
                    swap_extension_header_back(buf, &layout);
                }
                (layout, start + plain)
            }
            _ => {
                // header | ciphertext | MKI | tag
                let (body, tail) = buf.split_at_mut(body_len);
                if let Some(auth) = &keys.auth {
                    let tag = tail.get(mki_len..mki_len + tag_len).unwrap_or(&[]);
                    if !auth.verify(&[body, &roc.to_be_bytes()], tag) {
                        return Err(SrtpError::AuthFailed);
                    }
                }
                let layout = RtpLayout::parse(body).ok_or(SrtpError::Malformed)?;
                let cryptex = is_cryptex(&layout);
                if cryptex {
                    swap_extension_header_to_front(body, &layout);
                }
                let start = if cryptex {
                    CRYPTEX_ENCRYPTED_START
                } else {
                    layout.header_len
                };
                let iv_f8 = f8_rtp_iv(body, roc);
                let data = body.get_mut(start..).unwrap_or_default();
                apply_stream(keys, data, || counter_iv(&keys.salt, ssrc, index), iv_f8);
                if cryptex {
                    swap_extension_header_back(body, &layout);
                }
                (layout, body_len)
            }
        };
        if is_cryptex(&layout) {
            unmark_cryptex(buf, &layout);
        } else {
            self.header.apply_rfc6904(buf, &layout, ssrc, index);
        }
        Ok(plain_len)
    }

    /// Protects the RTCP packet `buf[..len]` as SRTCP index `index` (31 bits), encrypted
    /// unless `encrypt` is false (or the cipher is NULL, which sends E = 0); returns the
    /// SRTCP packet's length.
    pub fn protect_rtcp(
        &self,
        buf: &mut [u8],
        len: usize,
        index: u32,
        encrypt: bool,
        mki: &[u8],
    ) -> Result<usize, SrtpError> {
        if len < RTCP_HEADER {
            return Err(SrtpError::Malformed);
        }
        if len + max_overhead(mki.len()) > buf.len() {
            return Err(SrtpError::NoRoom);
        }
        let keys = &self.rtcp;
        let encrypt = encrypt && !matches!(keys.cipher, CipherState::Null);
        let e_index = (index & MAX_SRTCP_INDEX) | if encrypt { E_FLAG } else { 0 };
        let e_index_bytes = e_index.to_be_bytes();
        let ssrc = read_u32(buf, 4);
        match &keys.cipher {
            CipherState::Gcm(gcm) => {
                let iv = gcm_rtcp_iv(&keys.salt, ssrc, index);
                let tag = if encrypt {
                    let mut aad = [0u8; RTCP_HEADER + SRTCP_INDEX_LEN];
                    aad[..RTCP_HEADER].copy_from_slice(&buf[..RTCP_HEADER]);
                    aad[RTCP_HEADER..].copy_from_slice(&e_index_bytes);
                    let data = buf.get_mut(RTCP_HEADER..len).ok_or(SrtpError::NoRoom)?;
                    gcm.seal(iv, &aad, data)
                } else {
                    // The whole packet and the index word are authenticated, nothing is
                    // encrypted: place the word behind the packet to make one AAD run.
                    write(buf, len, &e_index_bytes)?;
                    gcm.seal(iv, &buf[..len + SRTCP_INDEX_LEN], &mut [])
                };
                write(buf, len, &tag)?;
                write(buf, len + GCM_TAG_LEN, &e_index_bytes)?;
                write(buf, len + GCM_TAG_LEN + SRTCP_INDEX_LEN, mki)?;
                Ok(len + GCM_TAG_LEN + SRTCP_INDEX_LEN + mki.len())
            }
            _ => {
                if encrypt {
                    let iv_f8 = f8_rtcp_iv(buf, e_index);
                    let data = buf.get_mut(RTCP_HEADER..len).ok_or(SrtpError::NoRoom)?;
                    let iv_cm = || counter_iv(&keys.salt, ssrc, u64::from(index & MAX_SRTCP_INDEX));
                    apply_stream(keys, data, iv_cm, iv_f8);
                }
                write(buf, len, &e_index_bytes)?;
                let authenticated = len + SRTCP_INDEX_LEN;
                write(buf, authenticated, mki)?;
                let tag_len = self.profile.rtcp_tag_len();
                if let Some(auth) = &keys.auth {
                    let tag = auth.tag(&[&buf[..authenticated]]);
                    write(
                        buf,
                        authenticated + mki.len(),
                        tag.get(..tag_len).unwrap_or(&[]),
                    )?;
                }
                Ok(authenticated + mki.len() + tag_len)
            }
        }
    }

    /// Where the E flag and SRTCP index of an SRTCP packet lie, given its MKI length.
    fn srtcp_index_at(&self, len: usize, mki_len: usize) -> Option<usize> {
        let after = match self.rtcp.cipher {
            CipherState::Gcm(_) => mki_len,
            _ => mki_len + self.profile.rtcp_tag_len(),
        };
        let at = len.checked_sub(after + SRTCP_INDEX_LEN)?;
        let header = match self.rtcp.cipher {
            CipherState::Gcm(_) => RTCP_HEADER + GCM_TAG_LEN,
            _ => RTCP_HEADER,
        };
        (at >= header).then_some(at)
    }

    /// The (unauthenticated) E flag and SRTCP index of an SRTCP packet.
    pub fn srtcp_index(&self, packet: &[u8], mki_len: usize) -> Option<(bool, u32)> {
        let at = self.srtcp_index_at(packet.len(), mki_len)?;
        let word = read_u32(packet, at);
        Some((word & E_FLAG != 0, word & MAX_SRTCP_INDEX))
    }

    /// Verifies and decrypts the SRTCP packet `buf[..len]`; returns the RTCP packet's
    /// length and its SRTCP index.
    pub fn unprotect_rtcp(
        &self,
        buf: &mut [u8],
        len: usize,
        mki_len: usize,
    ) -> Result<(usize, u32), SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::TooShort)?;
        let at = self
            .srtcp_index_at(len, mki_len)
            .ok_or(SrtpError::TooShort)?;
        let e_index = read_u32(packet, at);
        let e_index_bytes = e_index.to_be_bytes();
        let encrypted = e_index & E_FLAG != 0;
        let index = e_index & MAX_SRTCP_INDEX;
        let ssrc = read_u32(packet, 4);
        let keys = &self.rtcp;
        match &keys.cipher {
            CipherState::Gcm(gcm) => {
                // header | ciphertext | tag | E+index | MKI
                let iv = gcm_rtcp_iv(&keys.salt, ssrc, index);
                if encrypted {
                    let mut aad = [0u8; RTCP_HEADER + SRTCP_INDEX_LEN];
                    aad[..RTCP_HEADER].copy_from_slice(&buf[..RTCP_HEADER]);
                    aad[RTCP_HEADER..].copy_from_slice(&e_index_bytes);
                    let data = buf.get_mut(RTCP_HEADER..at).ok_or(SrtpError::TooShort)?;
                    let plain = open(gcm, iv, &aad, data)?;
                    Ok((RTCP_HEADER + plain, index))
                } else {
                    let clear_end = at - GCM_TAG_LEN;
                    let mut tag = [0u8; GCM_TAG_LEN];
                    tag.copy_from_slice(buf.get(clear_end..at).ok_or(SrtpError::TooShort)?);
                    write(buf, clear_end, &e_index_bytes)?;
                    let aad = buf
                        .get(..clear_end + SRTCP_INDEX_LEN)
                        .ok_or(SrtpError::TooShort)?;
                    open(gcm, iv, aad, &mut tag)?;
                    Ok((clear_end, index))
                }
            }
            _ => {
                // header | ciphertext | E+index | MKI | tag
                let authenticated = at + SRTCP_INDEX_LEN;
                if let Some(auth) = &keys.auth {
                    let tag_len = self.profile.rtcp_tag_len();
                    let tag = packet
                        .get(authenticated + mki_len..authenticated + mki_len + tag_len)
                        .unwrap_or(&[]);
                    if !auth.verify(&[&packet[..authenticated]], tag) {
                        return Err(SrtpError::AuthFailed);
                    }
                }
                if encrypted {
                    let iv_f8 = f8_rtcp_iv(buf, e_index);
                    let data = buf.get_mut(RTCP_HEADER..at).ok_or(SrtpError::TooShort)?;
                    let iv_cm = || counter_iv(&keys.salt, ssrc, u64::from(index));
                    apply_stream(keys, data, iv_cm, iv_f8);
                }
                Ok((at, index))
            }
        }
    }
}

fn open(gcm: &Gcm, iv: [u8; 12], aad: &[u8], data: &mut [u8]) -> Result<usize, SrtpError> {
    if data.len() < GCM_TAG_LEN {
        return Err(SrtpError::TooShort);
    }
    gcm.open(iv, aad, data).map_err(|_| SrtpError::AuthFailed)
}

fn write(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), SrtpError> {
    buf.get_mut(at..at + bytes.len())
        .ok_or(SrtpError::NoRoom)?
        .copy_from_slice(bytes);
    Ok(())
}
