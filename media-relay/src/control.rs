//! The control vocabulary: what signalling asks of the relay and what it gets back.
//!
//! Every type here is serde-serialisable so that the same requests can later be spoken over a
//! network ([`ControlRequest`] / [`ControlResponse`]).

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::error::RelayError;
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
    Released,
    SessionStats(SessionStats),
    WorkerStats(Vec<WorkerStats>),
    Error(RelayError),
}
