//! Topology hiding inside RTCP: the SDES items of a compound packet (RFC 3550 §6.5) name
//! the sender — a CNAME is usually `user@host` with the phone's address, and NAME, EMAIL,
//! PHONE, LOC, TOOL and NOTE describe the person and the device. The relay forwards every
//! RTCP packet unchanged except SDES: each chunk keeps its SSRC and gets one CNAME, an
//! opaque value derived from the SSRC ([`opaque_cname`], the same one the signalling side
//! writes in RFC 5576 `a=ssrc:<id> cname:` attributes), and every other item is removed.
//!
//! The rewrite writes into a caller-provided buffer (no allocation). A compound packet that
//! does not walk cleanly — encrypted SRTCP passing through, or garbage — is left alone:
//! its SDES, if any, cannot be read by the other side either.

/// RTCP packet type of a source description (RFC 3550 §12.1).
const SDES: u8 = 202;
/// SDES item types (RFC 3550 §12.2).
const END: u8 = 0;
const CNAME: u8 = 1;

/// Length of the opaque CNAME.
pub const OPAQUE_CNAME_LEN: usize = 8;

/// The CNAME the SBC presents for a source, as eight lowercase hex digits derived from its
/// SSRC: stable for the SSRC (so SDP and RTCP agree across re-offers) and free of anything
/// the phone wrote. sbc-core's SDP rewriting uses the same derivation (a test in the `sbc`
/// crate checks that the two agree).
pub fn opaque_cname(ssrc: u32) -> [u8; OPAQUE_CNAME_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let value = ssrc.rotate_left(13) ^ 0x5bc0_5bc0;
    let mut out = [0u8; OPAQUE_CNAME_LEN];
    for (index, digit) in out.iter_mut().enumerate() {
        let shift = 28 - 4 * index as u32;
        *digit = HEX[((value >> shift) & 0xf) as usize];
    }
    out
}

/// Whether the compound packet `rtcp` carries an SDES packet (walking stops at the first
/// inconsistency, which counts as "no").
pub fn has_sdes(rtcp: &[u8]) -> bool {
    let mut rest = rtcp;
    while let Some((packet_type, packet, after)) = next_packet(rest) {
        if packet_type == SDES && packet.len() >= 4 {
            return true;
        }
        rest = after;
    }
    false
}

/// Writes `rtcp` into `out` with every SDES chunk reduced to its SSRC and an opaque CNAME.
/// Returns the length written, or `None` when the compound packet does not walk cleanly
/// (lengths inconsistent, not version 2, a malformed chunk) or `out` is too small; the
/// caller then forwards the packet unchanged.
pub fn hide_sdes(rtcp: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut written = 0;
    let mut rest = rtcp;
    while !rest.is_empty() {
        let (packet_type, packet, after) = next_packet(rest)?;
        if packet_type == SDES {
            written += rewrite_sdes(packet, out.get_mut(written..)?)?;
        } else {
            out.get_mut(written..written + packet.len())?
                .copy_from_slice(packet);
            written += packet.len();
        }
        rest = after;
    }
    Some(written)
}

/// The next packet of a compound: (type, the whole packet, what follows). `None` at the end
/// or when the header is not RTCP version 2 or its length overruns the datagram.
fn next_packet(rest: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let header = rest.get(..4)?;
    if header[0] >> 6 != 2 {
        return None;
    }
    let words = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let len = (words + 1) * 4;
    let packet = rest.get(..len)?;
    Some((header[1], packet, rest.get(len..)?))
}

/// One SDES packet, rewritten into `out`; returns its new length.
fn rewrite_sdes(packet: &[u8], out: &mut [u8]) -> Option<usize> {
    let first = *packet.first()?;
    let count = usize::from(first & 0x1f);
    // Each rewritten chunk: SSRC, CNAME item (2 + 8 octets), a null and padding: 16 octets.
    const CHUNK: usize = 4 + 2 + OPAQUE_CNAME_LEN + 2;
    let len = 4 + count * CHUNK;
    let out = out.get_mut(..len)?;
    let mut chunks = packet.get(4..)?;
    let mut offset = 4;
    for _ in 0..count {
        let (ssrc, after) = skip_chunk(chunks)?;
        let chunk = out.get_mut(offset..offset + CHUNK)?;
        chunk[..4].copy_from_slice(&ssrc.to_be_bytes());
        chunk[4] = CNAME;
        chunk[5] = OPAQUE_CNAME_LEN as u8;
        chunk[6..6 + OPAQUE_CNAME_LEN].copy_from_slice(&opaque_cname(ssrc));
        chunk[6 + OPAQUE_CNAME_LEN..].fill(END);
        offset += CHUNK;
        chunks = after;
    }
    // Padding octets (P bit) and anything after the chunks are not carried over: the new
    // packet is a whole number of words without padding.
    out[0] = 0x80 | first & 0x1f;
    out[1] = SDES;
    let words = u16::try_from(len / 4 - 1).ok()?;
    out[2..4].copy_from_slice(&words.to_be_bytes());
    Some(len)
}

/// Reads one chunk: its SSRC and the rest after its terminating null and padding.
fn skip_chunk(chunk: &[u8]) -> Option<(u32, &[u8])> {
    let ssrc = u32::from_be_bytes(chunk.get(..4)?.try_into().ok()?);
    let mut at = 4;
    loop {
        match *chunk.get(at)? {
            END => break,
            _ => {
                let len = usize::from(*chunk.get(at + 1)?);
                at += 2 + len;
            }
        }
    }
    // The null item plus padding up to the next 32-bit boundary.
    let end = (at + 1).div_ceil(4) * 4;
    Some((ssrc, chunk.get(end..)?))
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    /// An SDES chunk as the tests write it: SSRC and (type, value) items.
    type Chunk<'a> = (u32, &'a [(u8, &'a [u8])]);

    /// A receiver report with no blocks followed by an SDES with the chunks given as
    /// (ssrc, [(type, value)]).
    fn compound(chunks: &[Chunk<'_>]) -> Vec<u8> {
        let mut packet = vec![0x80, 201, 0, 1, 0, 0, 0, 7];
        let mut sdes = vec![0x80 | chunks.len() as u8, SDES, 0, 0];
        for (ssrc, items) in chunks {
            sdes.extend_from_slice(&ssrc.to_be_bytes());
            for (kind, value) in *items {
                sdes.push(*kind);
                sdes.push(value.len() as u8);
                sdes.extend_from_slice(value);
            }
            sdes.push(END);
            while sdes.len() % 4 != 0 {
                sdes.push(END);
            }
        }
        let words = (sdes.len() / 4 - 1) as u16;
        sdes[2..4].copy_from_slice(&words.to_be_bytes());
        packet.extend_from_slice(&sdes);
        packet
    }

    fn rewrite(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = [0u8; 2048];
        hide_sdes(input, &mut out).map(|len| out[..len].to_vec())
    }

    #[test]
    fn opaque_cnames_are_hex_and_stable() {
        assert_eq!(&opaque_cname(0), b"5bc05bc0");
        assert_eq!(opaque_cname(1337), opaque_cname(1337));
        assert_ne!(opaque_cname(1337), opaque_cname(1338));
        assert!(opaque_cname(u32::MAX).iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn every_chunk_keeps_its_ssrc_and_gets_only_an_opaque_cname() {
        let input = compound(&[
            (
                0x1122_3344,
                &[
                    (CNAME, b"alice@192.0.2.10"),
                    (2, b"Alice Smith"),
                    (6, b"baresip v3.1"),
                ],
            ),
            (0x5566_7788, &[(CNAME, b"x")]),
        ]);
        let output = rewrite(&input).expect("walks");
        let expected = compound(&[
            (0x1122_3344, &[(CNAME, &opaque_cname(0x1122_3344))]),
            (0x5566_7788, &[(CNAME, &opaque_cname(0x5566_7788))]),
        ]);
        assert_eq!(output, expected);
        let text = String::from_utf8_lossy(&output);
        assert!(!text.contains("192.0.2.10") && !text.contains("Alice"));
        assert!(has_sdes(&input) && has_sdes(&output));
    }

    #[test]
    fn packets_without_sdes_are_copied_unchanged() {
        let report = [
            0x81, 200, 0, 6, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0, 0, 0,
            0, 0,
        ];
        assert!(!has_sdes(&report));
        assert_eq!(rewrite(&report).as_deref(), Some(&report[..]));
    }

    #[test]
    fn inconsistent_compounds_are_left_alone() {
        let mut input = compound(&[(9, &[(CNAME, b"bob@host")])]);
        // Length of the SDES packet overruns the datagram.
        let sdes_at = 8;
        input[sdes_at + 3] += 1;
        assert_eq!(rewrite(&input), None);
        // An item whose length runs past the packet.
        let mut input = compound(&[(9, &[(CNAME, b"bob@host")])]);
        input[sdes_at + 9] = 200;
        assert_eq!(rewrite(&input), None);
        // Not version 2 (e.g. the encrypted tail of SRTCP).
        assert_eq!(rewrite(&[0x00, 202, 0, 0]), None);
        assert_eq!(rewrite(&[]), Some(Vec::new()));
        // A truncated header.
        assert_eq!(rewrite(&[0x80, 202]), None);
    }

    #[test]
    fn output_that_would_not_fit_is_refused() {
        let input = compound(&[(9, &[(CNAME, b"a")])]);
        let mut small = [0u8; 12];
        assert_eq!(hide_sdes(&input, &mut small), None);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x1234_5678u32;
        let mut out = [0u8; 256];
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    (state as u8 & 0x3f) | 0x80
                })
                .collect();
            let _ = hide_sdes(&bytes, &mut out);
            let _ = has_sdes(&bytes);
        }
    }
}
