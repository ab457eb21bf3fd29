//! The RTP header as SRTP sees it: where the payload starts, and the optional protection of
//! header extensions — RFC 6904 (selected extension elements encrypted with their own key)
//! and RFC 9335 Cryptex (CSRCs and every extension encrypted with the payload).

use zeroize::Zeroize;

use super::SrtpError;
use super::cipher::Aes;
use super::keys::HeaderOptions;

const FIXED: usize = 12;
/// RFC 8285 one-byte header extensions.
const ONE_BYTE: u16 = 0xBEDE;
/// RFC 8285 two-byte header extensions: `0x100` and four "appbits".
const TWO_BYTE: u16 = 0x1000;
const TWO_BYTE_MASK: u16 = 0xFFF0;
/// RFC 9335 §5: the profiles that mark Cryptex-protected extensions.
const CRYPTEX_ONE_BYTE: u16 = 0xC0DE;
const CRYPTEX_TWO_BYTE: u16 = 0xC2DE;

/// Where the parts of an RTP header lie in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpLayout {
    /// The end of the CSRC list (12 + 4 × CC).
    pub csrc_end: usize,
    /// The extension header's "defined by profile" field, when X is set.
    pub ext_profile: Option<u16>,
    /// The whole header: where the payload starts.
    pub header_len: usize,
}

impl RtpLayout {
    /// `None` when `packet` is shorter than the header it announces.
    pub(crate) fn parse(packet: &[u8]) -> Option<RtpLayout> {
        let first = *packet.first()?;
        if packet.len() < FIXED {
            return None;
        }
        let csrc_end = FIXED + 4 * usize::from(first & 0x0f);
        let (ext_profile, header_len) = if first & 0x10 != 0 {
            let ext = packet.get(csrc_end..csrc_end + 4)?;
            let profile = u16::from_be_bytes([ext[0], ext[1]]);
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            (Some(profile), csrc_end + 4 + 4 * words)
        } else {
            (None, csrc_end)
        };
        (header_len <= packet.len()).then_some(RtpLayout {
            csrc_end,
            ext_profile,
            header_len,
        })
    }

    /// The extension data (after the 4-byte extension header).
    fn ext_data(&self) -> std::ops::Range<usize> {
        (self.csrc_end + 4)..self.header_len
    }
}

/// The header protection a session uses, keyed.
#[derive(Default)]
pub(crate) struct HeaderProtection {
    /// RFC 6904: ids to encrypt, and the header key and salt.
    encrypted: Option<Box<EncryptedExtensions>>,
    /// RFC 9335: protect sent packets with Cryptex (received ones are always understood).
    pub cryptex: bool,
}

struct EncryptedExtensions {
    ids: [u64; 4],
    cipher: Aes,
    salt: [u8; 14],
}

impl Drop for EncryptedExtensions {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl HeaderProtection {
    pub(crate) fn new(
        options: &HeaderOptions,
        derive: impl FnOnce() -> Result<(Aes, [u8; 14]), SrtpError>,
    ) -> Result<HeaderProtection, SrtpError> {
        let encrypted = if options.encrypted_extension_ids.is_empty() {
            None
        } else {
            let mut ids = [0u64; 4];
            for &id in &options.encrypted_extension_ids {
                if id == 0 {
                    return Err(SrtpError::BadKey);
                }
                ids[usize::from(id / 64)] |= 1 << (id % 64);
            }
            let (cipher, salt) = derive()?;
            Some(Box::new(EncryptedExtensions { ids, cipher, salt }))
        };
        Ok(HeaderProtection {
            encrypted,
            cryptex: options.cryptex,
        })
    }

    /// RFC 6904: XORs the data of the selected extension elements with the header
    /// keystream for (`ssrc`, `index`). The same call encrypts and decrypts. Does nothing
    /// for packets protected with Cryptex, or when no element is selected.
    pub(crate) fn apply_rfc6904(
        &self,
        packet: &mut [u8],
        layout: &RtpLayout,
        ssrc: u32,
        index: u64,
    ) {
        let Some(encrypted) = &self.encrypted else {
            return;
        };
        let two_byte = match layout.ext_profile {
            Some(ONE_BYTE) => false,
            Some(p) if p & TWO_BYTE_MASK == TWO_BYTE => true,
            _ => return,
        };
        let Some(data) = packet.get_mut(layout.ext_data()) else {
            return;
        };
        let mut keystream = [0u8; 1024];
        let iv = super::transform::counter_iv(&encrypted.salt, ssrc, index);
        // At most 255 elements of at most 256 bytes; a longer extension block than the
        // scratch buffer is processed in windows of the keystream.
        let mut window_start = usize::MAX;
        let mut offset = 0;
        while let Some(&first) = data.get(offset) {
            let (id, start, len) = if two_byte {
                if first == 0 {
                    offset += 1;
                    continue;
                }
                let Some(&len) = data.get(offset + 1) else {
                    break;
                };
                (first, offset + 2, usize::from(len))
            } else {
                if first == 0 {
                    offset += 1;
                    continue;
                }
                let id = first >> 4;
                if id == 15 {
                    break;
                }
                (id, offset + 1, usize::from(first & 0x0f) + 1)
            };
            let end = (start + len).min(data.len());
            if encrypted.ids[usize::from(id / 64)] & (1 << (id % 64)) != 0 {
                for position in start..end {
                    let window = position / keystream.len() * keystream.len();
                    if window != window_start {
                        window_start = window;
                        keystream.fill(0);
                        let block = (window / 16) as u128;
                        let iv = (u128::from_be_bytes(iv).wrapping_add(block)).to_be_bytes();
                        encrypted.cipher.apply_ctr(&iv, &mut keystream);
                    }
                    if let (Some(d), Some(k)) =
                        (data.get_mut(position), keystream.get(position - window))
                    {
                        *d ^= k;
                    }
                }
            }
            offset = start + len;
        }
        keystream.zeroize();
    }
}

/// RFC 9335: whether a received packet's extension profile marks Cryptex protection.
pub(crate) fn is_cryptex(layout: &RtpLayout) -> bool {
    matches!(
        layout.ext_profile,
        Some(CRYPTEX_ONE_BYTE | CRYPTEX_TWO_BYTE)
    )
}

/// RFC 9335 §5.1, before encryption: marks the extension profile as Cryptex; a packet with
/// CSRCs and no extension gets an empty one-byte extension block (4 bytes, moving the
/// payload; the caller has made sure `buf` has room). Returns the new packet length and
/// layout, or `None` when the packet has neither CSRCs nor a known extension profile (it is
/// then protected without Cryptex).
pub(crate) fn mark_cryptex(
    buf: &mut [u8],
    len: usize,
    layout: &RtpLayout,
) -> Option<(usize, RtpLayout)> {
    match layout.ext_profile {
        Some(profile) => {
            let marker = if profile == ONE_BYTE {
                CRYPTEX_ONE_BYTE
            } else if profile & TWO_BYTE_MASK == TWO_BYTE {
                CRYPTEX_TWO_BYTE
            } else {
                return None;
            };
            buf.get_mut(layout.csrc_end..layout.csrc_end + 2)?
                .copy_from_slice(&marker.to_be_bytes());
            let layout = RtpLayout {
                ext_profile: Some(marker),
                ..*layout
            };
            Some((len, layout))
        }
        None if layout.csrc_end > FIXED => {
            let end = len.checked_add(4)?;
            buf.get_mut(layout.csrc_end..end)?
                .copy_within(0..len - layout.csrc_end, 4);
            let block = [0xC0, 0xDE, 0, 0];
            buf.get_mut(layout.csrc_end..layout.csrc_end + 4)?
                .copy_from_slice(&block);
            *buf.first_mut()? |= 0x10;
            let layout = RtpLayout {
                ext_profile: Some(CRYPTEX_ONE_BYTE),
                header_len: layout.csrc_end + 4,
                ..*layout
            };
            Some((end, layout))
        }
        None => None,
    }
}

/// After decryption: puts back the RFC 8285 profile of a Cryptex packet.
pub(crate) fn unmark_cryptex(packet: &mut [u8], layout: &RtpLayout) {
    let original = match layout.ext_profile {
        Some(CRYPTEX_ONE_BYTE) => ONE_BYTE,
        Some(CRYPTEX_TWO_BYTE) => TWO_BYTE,
        _ => return,
    };
    if let Some(field) = packet.get_mut(layout.csrc_end..layout.csrc_end + 2) {
        field.copy_from_slice(&original.to_be_bytes());
    }
}

/// Cryptex encrypts the CSRCs and the extension data as one run with the payload, skipping
/// the 4-byte extension header. Moving that header in front of the CSRCs (and back
/// afterwards) makes the encrypted part contiguous, and the authenticated-only part
/// (fixed header and extension header) too, as GCM needs.
pub(crate) fn swap_extension_header_to_front(packet: &mut [u8], layout: &RtpLayout) {
    if let Some(run) = packet.get_mut(FIXED..layout.csrc_end + 4) {
        run.rotate_right(4);
    }
}

/// Undoes [`swap_extension_header_to_front`].
pub(crate) fn swap_extension_header_back(packet: &mut [u8], layout: &RtpLayout) {
    if let Some(run) = packet.get_mut(FIXED..layout.csrc_end + 4) {
        run.rotate_left(4);
    }
}

/// With the extension header moved to the front: where the encrypted run starts.
pub(crate) const CRYPTEX_ENCRYPTED_START: usize = FIXED + 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_csrcs_and_extensions() {
        let plain = [0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        assert_eq!(
            RtpLayout::parse(&plain),
            Some(RtpLayout {
                csrc_end: 12,
                ext_profile: None,
                header_len: 12
            })
        );
        let mut ext = vec![0x91, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        ext.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
        assert_eq!(
            RtpLayout::parse(&ext),
            Some(RtpLayout {
                csrc_end: 16,
                ext_profile: Some(0xBEDE),
                header_len: 24
            })
        );
        assert_eq!(RtpLayout::parse(&ext[..23]), None);
        assert_eq!(RtpLayout::parse(&[0x8f; 20]), None);
        assert_eq!(RtpLayout::parse(&[]), None);
    }
}
