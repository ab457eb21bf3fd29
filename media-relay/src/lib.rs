//! The SBC media relay: anchors RTP and RTCP on per-core packet loops.
//!
//! It knows nothing of SIP; signalling drives it through a small control API — allocate,
//! update, add streams, release a session — whose requests and results are serde types
//! ([`ControlRequest`], [`ControlResponse`]) so that it can later be spoken over a network.
//!
//! * [`Relay::start`] binds nothing yet; it starts one worker thread per core. Each session
//!   belongs to one worker (chosen by session id), which owns its sockets: the packet path
//!   takes no lock and allocates nothing.
//! * [`Relay::allocate`] takes RTP/RTCP port pairs (even/odd) from the configured range,
//!   binds them and hands them to the worker; [`Relay::release`] has the worker close them and
//!   return the ports to the pool.
//! * Packets from leg A's peer are sent unchanged from leg B's sockets to B's peer and vice
//!   versa; RTCP follows on rtp+1 or multiplexed on the RTP port (RFC 5761), with its SDES
//!   items (which name hosts and people) replaced by an opaque CNAME ([`rtcp`]). Where a peer's
//!   media really comes from is learnt by symmetric latching with hijack protection (see
//!   [`latch`]).
//! * Each leg has its own media protection ([`Relay::protect`], [`LegSecurity`]): plain RTP,
//!   SDES-SRTP with the keys each side uses, or DTLS-SRTP with a handshake on the media port
//!   (the relay's certificate is made at start, [`Relay::dtls_fingerprint`]); the relay
//!   converts between them in place ([`srtp`]), and can answer ICE-lite connectivity checks
//!   ([`stun`]). Every datagram is demultiplexed by its first octet (RFC 7983). DTLS
//!   handshakes run on a thread of their own, never on a packet loop. Keys come from the
//!   system CSPRNG ([`Relay::new_sdes_key`]) and never appear in `Debug` output.
//!
//! ```no_run
//! use media_relay::{Leg, Relay, RelayConfig, RemoteMedia};
//! # fn main() -> Result<(), media_relay::RelayError> {
//! let relay = Relay::start(RelayConfig::default())?;
//! let allocation = relay.allocate(1)?;           // offer allocation.streams[0].a to the caller …
//! let caller = RemoteMedia { rtp: Some("192.0.2.10:4000".parse().unwrap()), ..Default::default() };
//! relay.update(allocation.session, 0, Leg::A, caller)?;   // … from the caller's SDP
//! while let Some(event) = relay.poll_event() { /* Inactive(session): end the call */ }
//! relay.release(allocation.session);
//! # Ok(()) }
//! ```

pub mod bundle;
mod config;
mod control;
pub mod dtls;
mod error;
mod io;
pub mod latch;
mod leg;
mod packet;
mod pool;
pub mod rtcp;
mod rtp_quality;
mod security;
mod session;
pub mod srtp;
mod stats;
pub mod stun;

pub use bundle::{Bundle, BundleMember};
pub use config::{DEFAULT_MAX_STREAMS_PER_SESSION, RelayConfig};
pub use control::{
    Allocation, ControlRequest, ControlResponse, DtlsSetup, IceCredentials, Leg, LegAddr,
    LegSecurity, Protection, RelayEvent, RemoteMedia, SdesKeys, SessionId, StreamAddrs,
};
pub use error::RelayError;
pub use io::Relay;
pub use packet::{Packet, Port, RtpHeader, classify, clock_rate};
pub use pool::PortPool;
pub use rtp_quality::RtpReceiver;
pub use session::{Arrival, MAX_GROWTH, RelaySession, Verdict};
pub use stats::{
    DropCounts, DropReason, LegSecurityReport, LegStats, ProtectionKind, RtpQuality, SessionStats,
    StreamStats, WorkerStats,
};
