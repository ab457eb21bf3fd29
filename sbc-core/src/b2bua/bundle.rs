//! BUNDLE (RFC 8843) toward one leg (sans-IO): which of a leg's streams share one
//! transport, what tells their packets apart, and how that is written in the SDP sent to
//! the leg.
//!
//! A leg bundles when its peer offered `a=group:BUNDLE` (a WebRTC peer with max-bundle
//! does): the SBC answers the group with the streams it accepts, all on the relay port of
//! the first of them (the answerer-tagged `m=` line, which alone carries the transport's
//! ICE candidates and credentials, fingerprint, `a=setup` and `a=rtcp-mux`, as JSEP
//! writes them), and keeps the group in its own later offers to that leg. The relay then
//! runs one transport for the group ([`MediaBundle`]). The other leg is negotiated on its
//! own: a SIP trunk gets a port per stream and no group.

use super::protection::StreamPlan;
use crate::media::{BundleMember, MediaBundle};
use crate::sdp::{Lines, MediaDescription, SessionDescription};

/// The RTP header extension carrying the MID (RFC 8843 §15).
const MID_EXTENSION: &[u8] = b"urn:ietf:params:rtp-hdrext:sdes:mid";

/// What a peer said of the RTP it sends on a bundled stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sources {
    /// `a=ssrc` of the section.
    pub ssrcs: Vec<u32>,
    /// The `m=` line's payload types.
    pub payload_types: Vec<u8>,
    /// The id of the MID header extension (`a=extmap`), when the peer offered it.
    pub mid_extension: Option<u8>,
}

/// A section's `a=mid`, and whether a `a=group:BUNDLE` of the description holds it.
pub(super) fn membership(session: &Lines, section: &MediaDescription) -> (Option<Box<str>>, bool) {
    let Some(mid) = section
        .lines
        .attribute_value("mid")
        .and_then(|m| std::str::from_utf8(m).ok())
        .filter(|m| !m.is_empty())
    else {
        return (None, false);
    };
    let bundled = session.attributes_named("group").any(|group| {
        group.value.as_ref().is_some_and(|v| {
            let mut tokens = v.split(|b| *b == b' ');
            tokens.next() == Some(b"BUNDLE") && tokens.any(|t| t == mid.as_bytes())
        })
    });
    (Some(mid.into()), bundled)
}

/// The tagged section of the BUNDLE group `section` is in (the one of the group's first
/// mid, RFC 8843 §7.2.1), when that is another section.
pub(super) fn tagged<'a>(
    sdp: &'a SessionDescription,
    section: &MediaDescription,
) -> Option<&'a MediaDescription> {
    let (Some(mid), true) = membership(&sdp.lines, section) else {
        return None;
    };
    let group = sdp
        .lines
        .attributes_named("group")
        .filter_map(|g| g.value.as_ref())
        .find(|v| {
            let mut tokens = v.split(|b| *b == b' ');
            tokens.next() == Some(b"BUNDLE") && tokens.any(|t| t == mid.as_bytes())
        })?;
    let first = group.split(|b| *b == b' ').nth(1)?;
    if first == mid.as_bytes() {
        return None;
    }
    sdp.media.iter().find(|s| {
        s.lines
            .attribute_value("mid")
            .is_some_and(|m| m.as_ref() == first)
    })
}

/// What a bundled section says of the RTP its peer sends.
pub(super) fn sources(section: &MediaDescription) -> Sources {
    let mut ssrcs: Vec<u32> = Vec::new();
    for attribute in section.lines.attributes_named("ssrc") {
        let id = attribute
            .value
            .as_ref()
            .and_then(|v| v.split(|b| *b == b' ').next())
            .and_then(|id| std::str::from_utf8(id).ok())
            .and_then(|id| id.parse().ok());
        if let Some(id) = id
            && !ssrcs.contains(&id)
            && ssrcs.len() < 32
        {
            ssrcs.push(id);
        }
    }
    let payload_types = section
        .media
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter(|pt| *pt < 128)
        .collect();
    let mid_extension = section
        .lines
        .attributes_named("extmap")
        .filter_map(|a| a.value.as_ref())
        .find(|v| {
            v.split(|b| *b == b' ')
                .nth(1)
                .is_some_and(|uri| uri == MID_EXTENSION)
        })
        .and_then(|v| {
            let id = v.split(|b| *b == b' ' || *b == b'/').next()?;
            std::str::from_utf8(id).ok()?.parse::<u8>().ok()
        })
        // One-byte headers carry ids 1–14, two-byte headers 1–255.
        .filter(|id| *id != 0);
    Sources {
        ssrcs,
        payload_types,
        mid_extension,
    }
}

/// The streams of a leg that share one transport, in `m=` line order; the first is the
/// transport (the tagged `m=` line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub streams: Vec<usize>,
}

impl Layout {
    pub(crate) fn transport(&self) -> usize {
        self.streams.first().copied().unwrap_or(0)
    }

    /// A bundled stream other than the transport's: it uses the transport's port and
    /// carries none of the transport's attributes.
    pub(crate) fn is_member(&self, stream: usize) -> bool {
        stream != self.transport() && self.streams.contains(&stream)
    }

    /// The value of the `a=group` line.
    pub(crate) fn group(&self, plans: &[StreamPlan]) -> String {
        let mut group = String::from("BUNDLE");
        for mid in self
            .streams
            .iter()
            .filter_map(|i| plans.get(*i)?.mid.as_deref())
        {
            group.push(' ');
            group.push_str(mid);
        }
        group
    }
}

/// The BUNDLE group of a leg's plans: the active, RTP streams its peer bundled.
pub(crate) fn layout(plans: &[StreamPlan]) -> Option<Layout> {
    let streams: Vec<usize> = plans
        .iter()
        .enumerate()
        .filter(|(_, p)| p.bundled && !p.disabled && p.mid.is_some() && p.protocol.is_some())
        .map(|(i, _)| i)
        .collect();
    (!streams.is_empty()).then_some(Layout { streams })
}

/// What the relay is told of a leg's group: one of several streams (a single bundled
/// stream is simply on its own transport).
pub(crate) fn media_bundle(plans: &[StreamPlan]) -> Option<MediaBundle> {
    let layout = layout(plans).filter(|l| l.streams.len() > 1)?;
    let members = layout
        .streams
        .iter()
        .filter_map(|i| {
            let plan = plans.get(*i)?;
            Some(BundleMember {
                stream: *i,
                mid: plan.mid.as_deref()?.to_string(),
                ssrcs: plan.sources.ssrcs.clone(),
                payload_types: plan.sources.payload_types.clone(),
            })
        })
        .collect();
    let mid_extension = layout
        .streams
        .iter()
        .find_map(|i| plans.get(*i)?.sources.mid_extension);
    Some(MediaBundle {
        transport: layout.transport(),
        members,
        mid_extension,
    })
}
