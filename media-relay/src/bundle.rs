//! BUNDLE (RFC 8843) on one leg (sans-IO): several streams (`m=` lines) share the
//! transport of one of them — its port, ICE, DTLS and SRTP — and the relay tells their
//! packets apart.
//!
//! What arrives on the transport belongs to the stream that:
//! 1. the packet's SSRC was bound to before;
//! 2. announced that SSRC in its SDP (`a=ssrc`);
//! 3. has the MID the packet carries in its RTP header extension (RFC 8843 §15, when the
//!    extension was negotiated);
//! 4. alone uses the packet's payload type.
//!
//! A binding learnt by 2–4 is kept (a table of [`SSRC_TABLE`] entries, the oldest
//! replaced), so that only the first packets of a source cost more than a look-up. RTCP
//! goes to the stream of its sender's SSRC, else to that of the first SSRC it reports on
//! (a receiver report block, or the media source of a feedback message: one of the SSRCs
//! the relay sent toward the peer on that stream), else to the transport's own stream.
//! Nothing here allocates once the group is configured.

use serde::{Deserialize, Serialize};

use crate::packet::RtpHeader;

/// SSRC bindings a group keeps per direction.
pub const SSRC_TABLE: usize = 32;

/// A BUNDLE group on one leg, as signalling describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The stream whose port, ICE, DTLS and SRTP the group uses.
    pub transport: usize,
    /// Every stream of the group (the transport's own too), with what tells its packets
    /// apart.
    pub members: Vec<BundleMember>,
    /// The id the peer uses for the MID header extension
    /// (`urn:ietf:params:rtp-hdrext:sdes:mid`), when negotiated.
    #[serde(default)]
    pub mid_extension: Option<u8>,
}

/// One stream of a BUNDLE group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleMember {
    pub stream: usize,
    /// Its `a=mid`.
    pub mid: String,
    /// The SSRCs the peer announced for it (`a=ssrc`).
    #[serde(default)]
    pub ssrcs: Vec<u32>,
    /// The payload types of its `m=` line.
    #[serde(default)]
    pub payload_types: Vec<u8>,
}

/// SSRC → stream bindings in a fixed table: no allocation, the oldest replaced.
#[derive(Debug, Clone)]
struct SsrcTable {
    entries: [(u32, usize); SSRC_TABLE],
    len: usize,
    next: usize,
}

impl SsrcTable {
    fn new() -> SsrcTable {
        SsrcTable {
            entries: [(0, 0); SSRC_TABLE],
            len: 0,
            next: 0,
        }
    }

    fn get(&self, ssrc: u32) -> Option<usize> {
        self.entries
            .get(..self.len)?
            .iter()
            .find(|(s, _)| *s == ssrc)
            .map(|(_, stream)| *stream)
    }

    fn bind(&mut self, ssrc: u32, stream: usize) {
        if let Some(entry) = self
            .entries
            .get_mut(..self.len)
            .and_then(|entries| entries.iter_mut().find(|(s, _)| *s == ssrc))
        {
            entry.1 = stream;
            return;
        }
        let slot = if self.len < SSRC_TABLE {
            self.len += 1;
            self.len - 1
        } else {
            let slot = self.next;
            self.next = (self.next + 1) % SSRC_TABLE;
            slot
        };
        if let Some(entry) = self.entries.get_mut(slot) {
            *entry = (ssrc, stream);
        }
    }
}

#[derive(Debug, Clone)]
struct Member {
    stream: usize,
    mid: Box<[u8]>,
    ssrcs: Box<[u32]>,
    /// Payload types 0–127 as a bit set.
    payload_types: [u64; 2],
}

impl Member {
    fn uses(&self, payload_type: u8) -> bool {
        let pt = usize::from(payload_type & 0x7f);
        self.payload_types
            .get(pt / 64)
            .is_some_and(|bits| bits & (1 << (pt % 64)) != 0)
    }
}

/// A leg's BUNDLE group as the relay runs it.
#[derive(Debug, Clone)]
pub(crate) struct BundleState {
    transport: usize,
    members: Box<[Member]>,
    mid_extension: Option<u8>,
    /// Sources of the peer, bound to streams.
    inbound: SsrcTable,
    /// Sources the relay sent toward the peer, by stream (what its RTCP reports on).
    outbound: SsrcTable,
}

impl BundleState {
    pub(crate) fn new(bundle: &Bundle) -> BundleState {
        let members = bundle
            .members
            .iter()
            .map(|m| {
                let mut payload_types = [0u64; 2];
                for pt in &m.payload_types {
                    let pt = usize::from(pt & 0x7f);
                    if let Some(bits) = payload_types.get_mut(pt / 64) {
                        *bits |= 1 << (pt % 64);
                    }
                }
                Member {
                    stream: m.stream,
                    mid: m.mid.as_bytes().into(),
                    ssrcs: m.ssrcs.as_slice().into(),
                    payload_types,
                }
            })
            .collect();
        BundleState {
            transport: bundle.transport,
            members,
            mid_extension: bundle.mid_extension,
            inbound: SsrcTable::new(),
            outbound: SsrcTable::new(),
        }
    }

    /// The stream whose transport the group uses.
    pub(crate) fn transport(&self) -> usize {
        self.transport
    }

    /// Whether `stream` is in the group.
    pub(crate) fn contains(&self, stream: usize) -> bool {
        stream == self.transport || self.members.iter().any(|m| m.stream == stream)
    }

    /// The stream an RTP packet of the peer (decrypted, `header` parsed) belongs to.
    pub(crate) fn route_rtp(&mut self, packet: &[u8], header: &RtpHeader) -> Option<usize> {
        if let Some(stream) = self.inbound.get(header.ssrc) {
            return Some(stream);
        }
        let announced = self
            .members
            .iter()
            .find(|m| m.ssrcs.contains(&header.ssrc))
            .map(|m| m.stream);
        let by_mid = || {
            let id = self.mid_extension?;
            let mid = header_extension(packet, id)?;
            self.members
                .iter()
                .find(|m| &*m.mid == mid)
                .map(|m| m.stream)
        };
        let by_payload_type = || {
            let mut users = self.members.iter().filter(|m| m.uses(header.payload_type));
            match (users.next(), users.next()) {
                (Some(only), None) => Some(only.stream),
                _ => None,
            }
        };
        let stream = announced.or_else(by_mid).or_else(by_payload_type)?;
        self.inbound.bind(header.ssrc, stream);
        Some(stream)
    }

    /// The stream a (decrypted) RTCP compound packet of the peer belongs to.
    pub(crate) fn route_rtcp(&self, packet: &[u8]) -> usize {
        let sender = ssrc_at(packet, 4).and_then(|ssrc| self.inbound.get(ssrc));
        sender
            .or_else(|| reported_ssrcs(packet).find_map(|ssrc| self.outbound.get(ssrc)))
            .unwrap_or(self.transport)
    }

    /// The relay sends RTP of `ssrc` toward the peer on `stream`.
    pub(crate) fn note_outbound(&mut self, stream: usize, ssrc: u32) {
        if self.outbound.get(ssrc) != Some(stream) {
            self.outbound.bind(ssrc, stream);
        }
    }
}

fn ssrc_at(packet: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = packet.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// The SSRCs an RTCP compound packet reports on, in order: the source of each report
/// block of SR/RR, the media source of RTPFB/PSFB feedback (RFC 3550 §6.4, RFC 4585 §6.1).
/// At most the first eight packets of the compound are looked at.
fn reported_ssrcs(packet: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut offset = 0usize;
    let mut found: [Option<u32>; 8] = [None; 8];
    let mut count = 0;
    for _ in 0..8 {
        let (Some(&first), Some(&kind), Some(words)) = (
            packet.get(offset),
            packet.get(offset + 1),
            packet.get(offset + 2..offset + 4),
        ) else {
            break;
        };
        let length = (usize::from(u16::from_be_bytes([words[0], words[1]])) + 1) * 4;
        let report_count = usize::from(first & 0x1f);
        let reported = match kind {
            // SR: 28 bytes of header and sender info, then report blocks.
            200 if report_count > 0 => ssrc_at(packet, offset + 28),
            // RR: 8 bytes, then report blocks.
            201 if report_count > 0 => ssrc_at(packet, offset + 8),
            // RTPFB, PSFB: sender SSRC, then the media source's.
            205 | 206 => ssrc_at(packet, offset + 8),
            _ => None,
        };
        if let (Some(ssrc), Some(slot)) = (reported, found.get_mut(count)) {
            *slot = Some(ssrc);
            count += 1;
        }
        offset += length;
    }
    found.into_iter().flatten()
}

/// The value of the RTP header extension element `id` (RFC 8285: one-byte or two-byte
/// headers) of an RTP packet.
pub fn header_extension(packet: &[u8], id: u8) -> Option<&[u8]> {
    let first = *packet.first()?;
    if first & 0x10 == 0 {
        return None;
    }
    let csrcs = usize::from(first & 0x0f);
    let start = 12 + 4 * csrcs;
    let profile = u16::from_be_bytes(packet.get(start..start + 2)?.try_into().ok()?);
    let words = u16::from_be_bytes(packet.get(start + 2..start + 4)?.try_into().ok()?);
    let body = packet.get(start + 4..start + 4 + 4 * usize::from(words))?;
    let mut at = 0usize;
    if profile == 0xBEDE {
        while let Some(&byte) = body.get(at) {
            let (element, length) = (byte >> 4, usize::from(byte & 0x0f) + 1);
            if element == 0 {
                at += 1;
                continue;
            }
            if element == 15 {
                return None;
            }
            let value = body.get(at + 1..at + 1 + length)?;
            if element == id {
                return Some(value);
            }
            at += 1 + length;
        }
    } else if profile & 0xfff0 == 0x1000 {
        while let Some(&element) = body.get(at) {
            if element == 0 {
                at += 1;
                continue;
            }
            let length = usize::from(*body.get(at + 1)?);
            let value = body.get(at + 2..at + 2 + length)?;
            if element == id {
                return Some(value);
            }
            at += 2 + length;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Port, classify};

    fn member(stream: usize, mid: &str, ssrcs: &[u32], pts: &[u8]) -> BundleMember {
        BundleMember {
            stream,
            mid: mid.into(),
            ssrcs: ssrcs.to_vec(),
            payload_types: pts.to_vec(),
        }
    }

    fn rtp(pt: u8, ssrc: u32, extension: Option<(u8, &[u8])>) -> Vec<u8> {
        let mut packet = vec![0x80, pt, 0, 1, 0, 0, 0, 0];
        packet.extend_from_slice(&ssrc.to_be_bytes());
        if let Some((id, value)) = extension {
            packet[0] |= 0x10;
            let mut body = vec![(id << 4) | (value.len() as u8 - 1)];
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
            packet.extend_from_slice(&[0xBE, 0xDE]);
            packet.extend_from_slice(&((body.len() / 4) as u16).to_be_bytes());
            packet.extend_from_slice(&body);
        }
        packet.extend_from_slice(&[0xAA; 20]);
        packet
    }

    fn route(state: &mut BundleState, packet: &[u8]) -> Option<usize> {
        let crate::packet::Packet::Rtp(header) = classify(Port::Rtp, packet) else {
            panic!("RTP");
        };
        state.route_rtp(packet, &header)
    }

    fn group() -> BundleState {
        BundleState::new(&Bundle {
            transport: 0,
            members: vec![
                member(0, "a1", &[1111], &[96, 0, 8]),
                member(1, "v1", &[], &[100, 101, 0]),
            ],
            mid_extension: Some(1),
        })
    }

    #[test]
    fn packets_are_routed_by_ssrc_then_mid_then_a_payload_type_of_one_stream() {
        let mut state = group();
        assert_eq!(route(&mut state, &rtp(96, 1111, None)), Some(0));
        // The video's SSRC is unknown: its MID tells, and the SSRC is learnt.
        assert_eq!(
            route(&mut state, &rtp(100, 2222, Some((1, b"v1")))),
            Some(1)
        );
        assert_eq!(route(&mut state, &rtp(100, 2222, None)), Some(1));
        // By payload type when it is one stream's only.
        assert_eq!(route(&mut state, &rtp(101, 3333, None)), Some(1));
        assert_eq!(route(&mut state, &rtp(8, 4444, None)), Some(0));
        // PCMU is in both: no way to tell.
        assert_eq!(route(&mut state, &rtp(0, 5555, None)), None);
        assert!(state.contains(1) && !state.contains(2));
    }

    #[test]
    fn rtcp_goes_to_the_stream_of_its_sender_or_of_what_it_reports_on() {
        let mut state = group();
        assert_eq!(
            route(&mut state, &rtp(100, 2222, Some((1, b"v1")))),
            Some(1)
        );
        state.note_outbound(1, 7777);
        // An SR from the video sender.
        let mut sr = vec![0x80, 200, 0, 6];
        sr.extend_from_slice(&2222u32.to_be_bytes());
        sr.extend_from_slice(&[0; 20]);
        assert_eq!(state.route_rtcp(&sr), 1);
        // An RR from an unknown SSRC about what the relay sent on the video stream.
        let mut rr = vec![0x81, 201, 0, 7];
        rr.extend_from_slice(&9999u32.to_be_bytes());
        rr.extend_from_slice(&7777u32.to_be_bytes());
        rr.extend_from_slice(&[0; 20]);
        assert_eq!(state.route_rtcp(&rr), 1);
        // A PLI about it, after an empty RR.
        let mut compound = vec![0x80, 201, 0, 1];
        compound.extend_from_slice(&9999u32.to_be_bytes());
        compound.extend_from_slice(&[0x81, 206, 0, 2]);
        compound.extend_from_slice(&9999u32.to_be_bytes());
        compound.extend_from_slice(&7777u32.to_be_bytes());
        assert_eq!(state.route_rtcp(&compound), 1);
        // Nothing known: the transport's stream.
        assert_eq!(state.route_rtcp(&[0x80, 201, 0, 1, 0, 0, 0, 9]), 0);
        assert_eq!(state.route_rtcp(&[0x80]), 0);
    }

    #[test]
    fn the_ssrc_table_is_bounded() {
        let mut state = group();
        for ssrc in 10_000..10_000 + 4 * SSRC_TABLE as u32 {
            assert_eq!(route(&mut state, &rtp(101, ssrc, None)), Some(1));
        }
        assert_eq!(state.inbound.len, SSRC_TABLE);
    }

    #[test]
    fn header_extensions_in_both_forms() {
        let packet = rtp(96, 1, Some((3, b"mid-x")));
        assert_eq!(header_extension(&packet, 3), Some(&b"mid-x"[..]));
        assert_eq!(header_extension(&packet, 4), None);
        // Two-byte form, with padding before the element.
        let mut two = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0x00, 0, 2];
        two.extend_from_slice(&[0, 7, 3, b'a', b'b', b'c', 0, 0]);
        assert_eq!(header_extension(&two, 7), Some(&b"abc"[..]));
        // Truncated or without an extension: nothing, no panic.
        for len in 0..two.len() {
            let _ = header_extension(&two[..len], 7);
        }
        assert_eq!(header_extension(&rtp(96, 1, None), 1), None);
    }
}
