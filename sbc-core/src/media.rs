//! How the B2BUA anchors a call's media on the relay.
//!
//! sbc-core depends on no workspace crate, so the B2BUA drives the media relay through
//! [`MediaAnchor`], a trait it defines; the binary implements it on top of the
//! `media-relay` control API. Every call is synchronous and must not block: the relay
//! hands ports out of its pool at once and passes work to its packet loops through bounded
//! channels.
//!
//! A session has one stream per SDP `m=` line; each stream has a relay address pair per
//! leg ([`StreamAddrs`]): the B2BUA writes the `a` pair into the SDP it sends to the caller
//! (leg [`Leg::A`]) and the `b` pair into the SDP it sends to the callee (leg [`Leg::B`]),
//! and tells the relay with [`MediaAnchor::update`] where each leg's peer says it receives
//! media.
//!
//! The relay reports a session whose media stopped as an event that the binary feeds to
//! the B2BUA (`Endpoint::handle_media_timeout`), which ends the call with BYE on both
//! legs.

pub mod security;

use std::net::SocketAddr;

use thiserror::Error;

use security::{CertFingerprint, IceCredentials, LegSecurity, SdesKey, SrtpSuite};

/// Names one relay session (one call's media) for as long as it lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaSessionId(pub u64);

impl std::fmt::Display for MediaSessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "media-{}", self.0)
    }
}

/// A side of a call: `A` is the caller's side, `B` the callee's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    A,
    B,
}

impl Leg {
    /// The other side.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }

    /// A stable lower-case name for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Leg::A => "a",
            Leg::B => "b",
        }
    }
}

/// A relay address pair offered to one leg (RTCP is on the RTP port + 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LegAddr {
    pub rtp: SocketAddr,
    pub rtcp: SocketAddr,
}

/// The relay addresses of one stream: what is offered to each leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamAddrs {
    pub a: LegAddr,
    pub b: LegAddr,
}

impl StreamAddrs {
    /// The pair offered to `leg`.
    pub fn toward(&self, leg: Leg) -> LegAddr {
        match leg {
            Leg::A => self.a,
            Leg::B => self.b,
        }
    }
}

/// A new relay session and the addresses of its streams, in `m=` line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaAllocation {
    pub session: MediaSessionId,
    pub streams: Vec<StreamAddrs>,
}

/// Where a leg's peer says it receives media (from its SDP). `rtp: None` means unknown
/// yet, a disabled stream (port 0) or a hold without address (`c=` 0.0.0.0): the relay
/// then sends nothing to that leg until it learns more (or latches).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RemoteMedia {
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
    /// The peer multiplexes RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
}

/// A BUNDLE group (RFC 8843) on one leg: several streams share the transport (port, ICE,
/// DTLS, SRTP) of one of them, and the relay tells their packets apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaBundle {
    /// The stream whose transport the group uses (its relay port is the one written in
    /// every bundled `m=` line).
    pub transport: usize,
    /// Every stream of the group, the transport's own too.
    pub members: Vec<BundleMember>,
    /// The id of the MID RTP header extension in the peer's packets, when negotiated.
    pub mid_extension: Option<u8>,
}

/// One stream of a BUNDLE group and what tells its packets apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BundleMember {
    pub stream: usize,
    pub mid: String,
    /// The SSRCs the peer announced for it (`a=ssrc`).
    pub ssrcs: Vec<u32>,
    /// The payload types of its `m=` line.
    pub payload_types: Vec<u8>,
}

/// Why the relay refused a request, typed by fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum MediaError {
    /// Overload: the port pool has no room for the streams asked for.
    #[error("the relay has no free ports")]
    PortsExhausted,
    /// Overload: the relay's command queue is full.
    #[error("the relay is overloaded")]
    Overloaded,
    /// Misuse or race: the session is not (or no longer) known to the relay.
    #[error("unknown media session")]
    UnknownSession,
    /// Misuse: the stream index is beyond the session's streams.
    #[error("unknown media stream")]
    UnknownStream,
    /// The relay is not running.
    #[error("the relay is unavailable")]
    Unavailable,
    /// The relay cannot protect media (no SRTP, or refused key material).
    #[error("the relay cannot protect this media")]
    Unsupported,
}

impl MediaError {
    /// A stable name for metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            MediaError::PortsExhausted => "ports_exhausted",
            MediaError::Overloaded => "overloaded",
            MediaError::UnknownSession => "unknown_session",
            MediaError::UnknownStream => "unknown_stream",
            MediaError::Unavailable => "unavailable",
            MediaError::Unsupported => "unsupported",
        }
    }
}

/// The relay as the B2BUA sees it. Calls are synchronous and non-blocking.
pub trait MediaAnchor: Send {
    /// Reserve relay ports for one call with `streams` media streams (one per SDP `m=`
    /// line); each stream gets a port pair per leg.
    fn allocate(&mut self, streams: usize) -> Result<MediaAllocation, MediaError>;

    /// Tell the relay where a leg's peer says it receives media (from its SDP); `None` =
    /// unknown yet / port 0.
    fn update(
        &mut self,
        session: MediaSessionId,
        stream: usize,
        leg: Leg,
        remote: RemoteMedia,
    ) -> Result<(), MediaError>;

    /// Add streams on re-INVITE with more `m=` lines (returns the new streams' addresses).
    fn add_streams(
        &mut self,
        session: MediaSessionId,
        count: usize,
    ) -> Result<Vec<StreamAddrs>, MediaError>;

    /// Free the session's ports. Releasing an unknown session does nothing.
    fn release(&mut self, session: MediaSessionId);

    /// Set how `leg` of `stream` is protected (SDES-SRTP, DTLS-SRTP, ICE-lite). Call
    /// [`MediaAnchor::update`] first. The same keys again keep the SRTP state.
    fn protect(
        &mut self,
        _session: MediaSessionId,
        _stream: usize,
        _leg: Leg,
        _security: &LegSecurity,
    ) -> Result<(), MediaError> {
        Err(MediaError::Unsupported)
    }

    /// Bundle streams of `leg` onto one transport (`None`: each on its own again).
    fn bundle(
        &mut self,
        _session: MediaSessionId,
        _leg: Leg,
        _bundle: Option<&MediaBundle>,
    ) -> Result<(), MediaError> {
        Err(MediaError::Unsupported)
    }

    /// A fresh SDES master key and salt for `suite` from a CSPRNG.
    fn new_sdes_key(&mut self, _suite: SrtpSuite) -> Result<SdesKey, MediaError> {
        Err(MediaError::Unsupported)
    }

    /// Fresh ICE credentials for a leg whose peer uses `remote_ufrag`.
    fn new_ice_credentials(&mut self, _remote_ufrag: &str) -> Result<IceCredentials, MediaError> {
        Err(MediaError::Unsupported)
    }

    /// The fingerprint of the relay's DTLS certificate; `None`: no DTLS-SRTP.
    fn dtls_fingerprint(&self) -> Option<CertFingerprint> {
        None
    }
}

/// The CNAME the SBC presents for an RTP source in SDP (RFC 5576 `a=ssrc:<id> cname:`):
/// eight lowercase hex digits derived from the SSRC, free of anything the phone wrote. The
/// relay writes the same value into the SDES of the RTCP it forwards
/// (`media_relay::rtcp::opaque_cname`; the `sbc` crate tests that the two agree).
pub fn opaque_cname(ssrc: u32) -> String {
    format!("{:08x}", ssrc.rotate_left(13) ^ 0x5bc0_5bc0)
}
