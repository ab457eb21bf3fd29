//! The control vocabulary: what signalling asks of the relay and what it gets back.
//!
//! Every type here is serde-serialisable so that the same requests can later be spoken over a
//! network ([`ControlRequest`] / [`ControlResponse`]).

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::dtls::{DtlsRole, Fingerprint};
use crate::error::RelayError;
use crate::srtp::{MasterKey, Suite};
use crate::stats::{SessionStats, WorkerStats};

/// Identifies one relay session (one call's media). Assigned by the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One side of a call: A = the caller's side, B = the callee's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Leg {
    A,
    B,
}

impl Leg {
    /// The leg packets received on this one are forwarded to.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }

    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B => 1,
        }
    }
}

/// The relay's own addresses for one leg of one stream (offered to that leg's peer in SDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegAddr {
    /// Even port.
    pub rtp: SocketAddr,
    /// `rtp` port + 1.
    pub rtcp: SocketAddr,
}

/// The relay addresses of one stream: one pair per leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAddrs {
    pub a: LegAddr,
    pub b: LegAddr,
}

impl StreamAddrs {
    /// The relay addresses offered to `leg`'s peer.
    pub fn leg(&self, leg: Leg) -> LegAddr {
        match leg {
            Leg::A => self.a,
            Leg::B => self.b,
        }
    }
}

/// The result of [`Relay::allocate`](crate::Relay::allocate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub session: SessionId,
    pub streams: Vec<StreamAddrs>,
}

/// Where a leg's peer says it receives media (its SDP), plus what signalling knows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RemoteMedia {
    /// The SDP connection address and `m=` port; `None` = unknown yet, or port 0.
    pub rtp: Option<SocketAddr>,
    /// The SDP `a=rtcp` address; `None` = rtp port + 1 (RFC 3605 default).
    pub rtcp: Option<SocketAddr>,
    /// The peer multiplexes RTCP on its RTP port (RFC 5761 `a=rtcp-mux` agreed).
    pub rtcp_mux: bool,
    /// The source IP of the peer's signalling, when known: a NATed peer's SDP carries its
    /// private address, and its media then comes from the same public IP as its signalling.
    #[serde(default)]
    pub signalling_ip: Option<IpAddr>,
}

/// How the relay protects the media of one leg of one stream, and whether it answers the
/// peer's ICE connectivity checks. Each leg is set on its own: the relay converts between
/// them (plain RTP on one leg and SRTP on the other, or SRTP with different keys).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LegSecurity {
    pub protection: Protection,
    /// ICE-lite (RFC 8445 §2.5): answer STUN binding requests that carry these credentials,
    /// and move the leg's latch to the address an authenticated check came from.
    #[serde(default)]
    pub ice: Option<IceCredentials>,
}

/// The media protection of a leg.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Protection {
    /// Plain RTP and RTCP.
    #[default]
    Plain,
    /// SRTP with keys exchanged in SDP (RFC 4568 `a=crypto`).
    Sdes(SdesKeys),
    /// SRTP with keys from a DTLS handshake with the peer on the media port(s) (RFC 5764).
    Dtls(DtlsSetup),
}

/// The SDES keys of a leg. Setting the same keys again keeps the SRTP state (rollover
/// counters, replay windows); different keys start afresh (re-keying).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdesKeys {
    pub suite: Suite,
    /// What the relay encrypts with (the key of its `a=crypto` line toward the peer). More
    /// than one only with MKIs; the next is used when one's lifetime is over.
    pub send: Vec<MasterKey>,
    /// What the peer encrypts with (its `a=crypto`); empty until its SDP is known, during
    /// which the peer's packets are dropped as `keys_pending`.
    pub receive: Vec<MasterKey>,
    /// Send SRTCP unencrypted (the `UNENCRYPTED_SRTCP` session parameter was agreed).
    #[serde(default)]
    pub unencrypted_srtcp: bool,
}

/// DTLS-SRTP on a leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtlsSetup {
    /// The relay's role (from the `a=setup` exchange).
    pub role: DtlsRole,
    /// The peer's certificate fingerprint from its SDP; `None` until known (no handshake is
    /// attempted before).
    pub fingerprint: Option<Fingerprint>,
}

/// ICE credentials of a leg: ours (which the peer's checks must use) and the peer's user
/// fragment. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Something the relay tells signalling without being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayEvent {
    /// No accepted packet on any leg of any stream of the session for the configured
    /// inactivity timeout. Raised once per session.
    Inactive(SessionId),
}

/// A control request, as it would travel over a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlRequest {
    Allocate {
        streams: usize,
    },
    Update {
        session: SessionId,
        stream: usize,
        leg: Leg,
        remote: RemoteMedia,
    },
    AddStreams {
        session: SessionId,
        count: usize,
    },
    Protect {
        session: SessionId,
        stream: usize,
        leg: Leg,
        security: Box<LegSecurity>,
    },
    Bundle {
        session: SessionId,
        leg: Leg,
        bundle: Option<Bundle>,
    },
    Release {
        session: SessionId,
    },
    SessionStats {
        session: SessionId,
    },
    WorkerStats,
}

/// The answer to a [`ControlRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControlResponse {
    Allocated(Allocation),
    Updated,
    StreamsAdded(Vec<StreamAddrs>),
    Protected,
    Bundled,
    Released,
    SessionStats(SessionStats),
    WorkerStats(Vec<WorkerStats>),
    Error(RelayError),
}
