//! Statistics snapshots: per leg, per session and per worker.
//!
//! Workers count in plain integers they own (no shared atomics on the packet path) and copy
//! them into these snapshots when asked; [`Relay::worker_stats`](crate::Relay::worker_stats)
//! returns one per worker and [`WorkerStats::sum`] adds them up at read time.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::dtls::{DtlsDrops, DtlsError};
use crate::srtp::{SrtpDrops, Suite};

/// Why the relay dropped a packet. The names are stable (metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DropReason {
    /// From an address that is not (or no longer) plausible for the leg: hijack protection.
    UnexpectedSource,
    /// Not RTP/RTCP version 2, or shorter than the fixed header.
    Malformed,
    /// The other leg has no address to send to yet (no SDP, or port 0).
    NoDestination,
    /// The operating system refused to send it.
    SendFailed,
    /// SRTP or SRTCP refused it (forged, replayed, truncated …): see the leg's `srtp_drops`.
    Srtp,
    /// An SRTP leg whose keys are not known yet (SDES answer outstanding, DTLS handshake
    /// not done).
    KeysPending,
    /// A STUN message that was not an ICE check for the leg (no ICE, wrong credentials).
    Stun,
    /// BUNDLE: on the port of a stream bundled onto another's transport, or on a bundle's
    /// transport belonging to none of its streams (unknown SSRC, MID and payload type).
    Bundle,
    /// A DTLS record kept from the handshake thread: on a leg without DTLS-SRTP, from an
    /// unexpected source, with no handshake to take it, or beyond the leg's share (see the
    /// leg's `dtls_drops`).
    Dtls,
}

impl DropReason {
    pub const ALL: [DropReason; 9] = [
        DropReason::UnexpectedSource,
        DropReason::Malformed,
        DropReason::NoDestination,
        DropReason::SendFailed,
        DropReason::Srtp,
        DropReason::KeysPending,
        DropReason::Stun,
        DropReason::Dtls,
        DropReason::Bundle,
    ];

    /// A stable name for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::UnexpectedSource => "unexpected_source",
            Self::Malformed => "malformed",
            Self::NoDestination => "no_destination",
            Self::SendFailed => "send_failed",
            Self::Srtp => "srtp",
            Self::KeysPending => "keys_pending",
            Self::Stun => "stun",
            Self::Dtls => "dtls",
            Self::Bundle => "bundle",
        }
    }
}

/// Dropped packets by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DropCounts {
    pub unexpected_source: u64,
    pub malformed: u64,
    pub no_destination: u64,
    pub send_failed: u64,
    #[serde(default)]
    pub srtp: u64,
    #[serde(default)]
    pub keys_pending: u64,
    #[serde(default)]
    pub stun: u64,
    #[serde(default)]
    pub dtls: u64,
    #[serde(default)]
    pub bundle: u64,
}

impl DropCounts {
    pub fn add(&mut self, reason: DropReason, packets: u64) {
        let slot = match reason {
            DropReason::UnexpectedSource => &mut self.unexpected_source,
            DropReason::Malformed => &mut self.malformed,
            DropReason::NoDestination => &mut self.no_destination,
            DropReason::SendFailed => &mut self.send_failed,
            DropReason::Srtp => &mut self.srtp,
            DropReason::KeysPending => &mut self.keys_pending,
            DropReason::Stun => &mut self.stun,
            DropReason::Dtls => &mut self.dtls,
            DropReason::Bundle => &mut self.bundle,
        };
        *slot = slot.wrapping_add(packets);
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::UnexpectedSource => self.unexpected_source,
            DropReason::Malformed => self.malformed,
            DropReason::NoDestination => self.no_destination,
            DropReason::SendFailed => self.send_failed,
            DropReason::Srtp => self.srtp,
            DropReason::KeysPending => self.keys_pending,
            DropReason::Stun => self.stun,
            DropReason::Dtls => self.dtls,
            DropReason::Bundle => self.bundle,
        }
    }

    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.get(*r)).sum()
    }

    pub fn merge(&mut self, other: &DropCounts) {
        for reason in DropReason::ALL {
            self.add(reason, other.get(reason));
        }
    }
}

/// RTP reception quality of the stream a leg's peer sends (RFC 3550 A.3 and A.8).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RtpQuality {
    /// The SSRC currently tracked (the statistics restart when it changes).
    pub ssrc: Option<u32>,
    /// Packets expected from the sequence numbers seen (extended highest − base + 1).
    pub expected: u64,
    /// RTP packets received and counted (duplicates included, as in RFC 3550).
    pub received: u64,
    /// `expected − received`; negative when duplicates outnumber losses.
    pub lost: i64,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Interarrival jitter in milliseconds (using the payload type's clock rate).
    pub jitter_ms: f64,
}

/// Counters of one leg: what its peer sent to the relay, and what the relay sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LegStats {
    /// Datagrams received from this leg's side (on its RTP and RTCP ports), dropped or not.
    pub packets_received: u64,
    pub bytes_received: u64,
    /// Of those, RTCP packets (on the RTCP port, or multiplexed on the RTP port).
    pub rtcp_received: u64,
    /// Datagrams sent to this leg's peer (forwarded from the other leg).
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Packets dropped, counted on the leg they were received from (`send_failed` and
    /// `no_destination` too: they count what this leg's peer sent that was lost).
    pub drops: DropCounts,
    pub rtp: RtpQuality,
    /// Where the relay latched this leg's RTP and RTCP (the actual source of its packets).
    pub latched_rtp: Option<SocketAddr>,
    pub latched_rtcp: Option<SocketAddr>,
    /// SRTP failures of packets this leg's peer sent (the `srtp` drops, by reason): refused
    /// when unprotected, or not protectable toward the other leg.
    #[serde(default)]
    pub srtp_drops: SrtpDrops,
    /// DTLS records of this leg's peer kept from the handshake thread (the `dtls` drops
    /// that reached a DTLS leg), by reason.
    #[serde(default)]
    pub dtls_drops: DtlsDrops,
    /// How the leg's media is protected, for the call's security summary.
    #[serde(default)]
    pub security: LegSecurityReport,
}

/// How a leg's media was protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ProtectionKind {
    #[default]
    Plain,
    Sdes,
    Dtls,
}

impl ProtectionKind {
    pub fn name(self) -> &'static str {
        match self {
            ProtectionKind::Plain => "plain",
            ProtectionKind::Sdes => "sdes",
            ProtectionKind::Dtls => "dtls",
        }
    }
}

/// What the relay knows of a leg's media protection: whether media was encrypted, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LegSecurityReport {
    pub protection: ProtectionKind,
    /// The SRTP suite in use (SDES: negotiated; DTLS: chosen in the handshake).
    pub suite: Option<Suite>,
    /// Keys are in place both ways (SDES: both keys known; DTLS: handshake completed with
    /// the announced fingerprint).
    pub established: bool,
    /// Why the DTLS handshake failed, if it did.
    pub dtls_failure: Option<DtlsError>,
    /// The leg answers ICE checks (ICE-lite).
    pub ice: bool,
    /// SRTP/SRTCP packets from the peer that authenticated, and packets protected toward it.
    pub srtp_received: u64,
    pub srtp_sent: u64,
}

/// Both legs of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamStats {
    pub a: LegStats,
    pub b: LegStats,
}

/// All streams of one session.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionStats {
    pub streams: Vec<StreamStats>,
}

/// Counters of one worker (one core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Sessions and sockets the worker holds now.
    pub sessions: u64,
    pub sockets: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub packets_forwarded: u64,
    pub bytes_forwarded: u64,
    pub drops: DropCounts,
    /// SRTP/SRTCP failures by reason, over all legs.
    #[serde(default)]
    pub srtp_drops: SrtpDrops,
    /// DTLS records kept from the handshake thread, by reason, over all legs.
    #[serde(default)]
    pub dtls_drops: DtlsDrops,
    /// STUN binding requests answered and DTLS handshakes completed / failed.
    #[serde(default)]
    pub stun_answered: u64,
    #[serde(default)]
    pub dtls_handshakes: u64,
    #[serde(default)]
    pub dtls_failures: u64,
    /// System calls made to receive and to send (packets per call shows the batching).
    pub receive_calls: u64,
    pub send_calls: u64,
    /// Inactivity events that could not be queued because nobody read the event channel.
    pub events_lost: u64,
    /// CPU time the worker thread has used, in nanoseconds.
    pub cpu_time_ns: u64,
}

impl WorkerStats {
    /// Adds up the counters of several workers.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a WorkerStats>) -> WorkerStats {
        let mut total = WorkerStats::default();
        for w in all {
            total.sessions += w.sessions;
            total.sockets += w.sockets;
            total.packets_received += w.packets_received;
            total.bytes_received += w.bytes_received;
            total.packets_forwarded += w.packets_forwarded;
            total.bytes_forwarded += w.bytes_forwarded;
            total.drops.merge(&w.drops);
            total.srtp_drops.merge(&w.srtp_drops);
            total.dtls_drops.merge(&w.dtls_drops);
            total.stun_answered += w.stun_answered;
            total.dtls_handshakes += w.dtls_handshakes;
            total.dtls_failures += w.dtls_failures;
            total.receive_calls += w.receive_calls;
            total.send_calls += w.send_calls;
            total.events_lost += w.events_lost;
            total.cpu_time_ns += w.cpu_time_ns;
        }
        total
    }
}
