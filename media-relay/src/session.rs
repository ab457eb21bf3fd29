//! One relay session (sans-IO): its streams, their two legs, latching, forwarding decisions
//! and statistics. The worker feeds it datagrams with `now` and sends what it says.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::control::{Leg, RemoteMedia};
use crate::latch::Latch;
use crate::packet::{Packet, Port, classify};
use crate::rtp_quality::RtpReceiver;
use crate::stats::{DropReason, LegStats, SessionStats, StreamStats};

/// What to do with a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it from `port` of `leg` (of the same stream) to `to`: unchanged, except that
    /// an RTCP packet (`rtcp`) has its SDES items hidden (see [`crate::rtcp`]).
    Forward {
        leg: Leg,
        port: Port,
        to: SocketAddr,
        rtcp: bool,
    },
    Drop(DropReason),
}

#[derive(Debug, Clone)]
struct LegState {
    remote: RemoteMedia,
    rtp_latch: Latch,
    rtcp_latch: Latch,
    counters: LegStats,
    rtp: RtpReceiver,
}

impl LegState {
    fn new(epoch: Instant) -> LegState {
        LegState {
            remote: RemoteMedia::default(),
            rtp_latch: Latch::Open,
            rtcp_latch: Latch::Open,
            counters: LegStats::default(),
            rtp: RtpReceiver::new(epoch),
        }
    }

    fn update(&mut self, remote: RemoteMedia) {
        let moved = remote.rtp != self.remote.rtp
            || remote.rtcp != self.remote.rtcp
            || remote.signalling_ip != self.remote.signalling_ip;
        if moved {
            self.rtp_latch = Latch::Open;
            self.rtcp_latch = Latch::Open;
        }
        self.remote = remote;
    }

    /// Where RTP for this leg's peer goes: the latched source, else the SDP address.
    fn rtp_destination(&self) -> Option<SocketAddr> {
        self.rtp_latch.address().or(usable(self.remote.rtp))
    }

    /// Where RTCP for this leg's peer goes, and from which of the leg's ports.
    fn rtcp_destination(&self) -> Option<(Port, SocketAddr)> {
        if self.remote.rtcp_mux {
            return self.rtp_destination().map(|to| (Port::Rtp, to));
        }
        let sdp_rtcp = usable(self.remote.rtcp).or_else(|| {
            usable(self.remote.rtp).and_then(|rtp| {
                rtp.port()
                    .checked_add(1)
                    .map(|port| SocketAddr::new(rtp.ip(), port))
            })
        });
        self.rtcp_latch
            .address()
            .or(sdp_rtcp)
            .map(|to| (Port::Rtcp, to))
    }

    fn snapshot(&self) -> LegStats {
        LegStats {
            rtp: self.rtp.quality(),
            latched_rtp: self.rtp_latch.address(),
            latched_rtcp: self.rtcp_latch.address(),
            ..self.counters
        }
    }
}

/// An SDP address the relay can send to (not port 0, not the `0.0.0.0` hold address).
fn usable(address: Option<SocketAddr>) -> Option<SocketAddr> {
    address.filter(|a| a.port() != 0 && !a.ip().is_unspecified())
}

#[derive(Debug, Clone)]
struct MediaStream {
    legs: [LegState; 2],
}

impl MediaStream {
    fn new(epoch: Instant) -> MediaStream {
        MediaStream {
            legs: [LegState::new(epoch), LegState::new(epoch)],
        }
    }

    fn legs_mut(&mut self, from: Leg) -> (&mut LegState, &mut LegState) {
        let [a, b] = &mut self.legs;
        match from {
            Leg::A => (a, b),
            Leg::B => (b, a),
        }
    }
}

/// The media of one call as the relay sees it.
#[derive(Debug, Clone)]
pub struct RelaySession {
    epoch: Instant,
    streams: Vec<MediaStream>,
    last_activity: Instant,
    inactivity_reported: bool,
}

impl RelaySession {
    pub fn new(now: Instant, streams: usize) -> RelaySession {
        RelaySession {
            epoch: now,
            streams: (0..streams).map(|_| MediaStream::new(now)).collect(),
            last_activity: now,
            inactivity_reported: false,
        }
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    pub fn add_streams(&mut self, count: usize) {
        let epoch = self.epoch;
        self.streams
            .extend((0..count).map(|_| MediaStream::new(epoch)));
    }

    /// Sets where `leg`'s peer receives `stream`; false if there is no such stream.
    pub fn update(&mut self, stream: usize, leg: Leg, remote: RemoteMedia) -> bool {
        match self.streams.get_mut(stream) {
            Some(s) => {
                s.legs_mut(leg).0.update(remote);
                true
            }
            None => false,
        }
    }

    /// Decides what to do with `datagram`, received at `now` from `source` on `port` of `leg`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        stream: usize,
        leg: Leg,
        port: Port,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Verdict {
        let Some(media) = self.streams.get_mut(stream) else {
            return Verdict::Drop(DropReason::NoDestination);
        };
        let (from, to) = media.legs_mut(leg);
        from.counters.packets_received += 1;
        from.counters.bytes_received += datagram.len() as u64;

        let packet = classify(port, datagram);
        let verdict = Self::decide(now, from, to, leg, port, source, packet);
        match verdict {
            // Accepted packets keep the session alive, even while the other leg has no address.
            Verdict::Forward { .. } => self.last_activity = now,
            Verdict::Drop(reason) => {
                from.counters.drops.add(reason, 1);
                if reason == DropReason::NoDestination {
                    self.last_activity = now;
                }
            }
        }
        verdict
    }

    fn decide(
        now: Instant,
        from: &mut LegState,
        to: &LegState,
        leg: Leg,
        port: Port,
        source: SocketAddr,
        packet: Packet,
    ) -> Verdict {
        if packet == Packet::Malformed {
            return Verdict::Drop(DropReason::Malformed);
        }
        let admitted = match port {
            Port::Rtp => from.rtp_latch.admit(source, &from.remote, None),
            Port::Rtcp => {
                let rtp_ip = from.rtp_latch.address().map(|a| a.ip());
                from.rtcp_latch.admit(source, &from.remote, rtp_ip)
            }
        };
        if !admitted {
            return Verdict::Drop(DropReason::UnexpectedSource);
        }
        let destination = match packet {
            Packet::Rtp(header) => {
                from.rtp.handle_packet(now, &header);
                to.rtp_destination().map(|to| (Port::Rtp, to))
            }
            Packet::Rtcp | Packet::Malformed => {
                from.counters.rtcp_received += 1;
                to.rtcp_destination()
            }
        };
        match destination {
            Some((port, to)) => Verdict::Forward {
                leg: leg.other(),
                port,
                to,
                rtcp: packet == Packet::Rtcp,
            },
            None => Verdict::Drop(DropReason::NoDestination),
        }
    }

    /// Records `packets` datagrams (`bytes` in all) sent to `leg`'s peer of `stream`.
    pub fn record_sent(&mut self, stream: usize, leg: Leg, packets: u64, bytes: u64) {
        if let Some(media) = self.streams.get_mut(stream) {
            let counters = &mut media.legs_mut(leg).0.counters;
            counters.packets_sent += packets;
            counters.bytes_sent += bytes;
        }
    }

    /// Records `packets` datagrams for `leg`'s peer that the system refused to send; they are
    /// counted as drops of the leg they came from.
    pub fn record_send_failed(&mut self, stream: usize, leg: Leg, packets: u64) {
        if let Some(media) = self.streams.get_mut(stream) {
            media
                .legs_mut(leg.other())
                .0
                .counters
                .drops
                .add(DropReason::SendFailed, packets);
        }
    }

    /// True once, when no packet has been forwarded for `timeout` (zero disables).
    pub fn poll_inactive(&mut self, now: Instant, timeout: Duration) -> bool {
        if timeout.is_zero() || self.inactivity_reported {
            return false;
        }
        if now.saturating_duration_since(self.last_activity) >= timeout {
            self.inactivity_reported = true;
            return true;
        }
        false
    }

    pub fn stats(&self) -> SessionStats {
        SessionStats {
            streams: self
                .streams
                .iter()
                .map(|s| StreamStats {
                    a: s.legs[0].snapshot(),
                    b: s.legs[1].snapshot(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    const RTP: [u8; 12] = [0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    const RTCP: [u8; 8] = [0x80, 201, 0, 1, 0, 0, 0, 1];

    fn session(a: RemoteMedia, b: RemoteMedia) -> (RelaySession, Instant) {
        let now = Instant::now();
        let mut session = RelaySession::new(now, 1);
        session.update(0, Leg::A, a);
        session.update(0, Leg::B, b);
        (session, now)
    }

    fn remote(rtp: &str, mux: bool) -> RemoteMedia {
        RemoteMedia {
            rtp: Some(addr(rtp)),
            rtcp_mux: mux,
            ..RemoteMedia::default()
        }
    }

    #[test]
    fn rtcp_goes_to_the_odd_port_or_the_rtp_port_of_a_muxed_leg() {
        let (mut s, now) = session(
            remote("10.0.0.1:4000", true),
            remote("10.0.0.2:5000", false),
        );
        let from_a = addr("10.0.0.1:4000");
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, from_a, &RTCP),
            Verdict::Forward {
                leg: Leg::B,
                port: Port::Rtcp,
                to: addr("10.0.0.2:5001"),
                rtcp: true,
            }
        );
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, from_a, &RTP),
            Verdict::Forward {
                leg: Leg::B,
                port: Port::Rtp,
                to: addr("10.0.0.2:5000"),
                rtcp: false,
            }
        );
        assert_eq!(
            s.handle_datagram(now, 0, Leg::B, Port::Rtcp, addr("10.0.0.2:5001"), &RTCP),
            Verdict::Forward {
                leg: Leg::A,
                port: Port::Rtp,
                to: from_a,
                rtcp: true,
            }
        );
    }

    #[test]
    fn port_zero_and_the_hold_address_are_no_destination() {
        let (mut s, now) = session(
            remote("10.0.0.1:4000", false),
            remote("0.0.0.0:5000", false),
        );
        let from_a = addr("10.0.0.1:4000");
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, from_a, &RTP),
            Verdict::Drop(DropReason::NoDestination)
        );
        s.update(0, Leg::B, remote("10.0.0.2:0", false));
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtcp, from_a, &RTCP),
            Verdict::Drop(DropReason::NoDestination)
        );
        assert_eq!(
            s.handle_datagram(now, 7, Leg::A, Port::Rtp, from_a, &RTP),
            Verdict::Drop(DropReason::NoDestination)
        );
        assert_eq!(s.stats().streams[0].a.drops.no_destination, 2);
    }

    #[test]
    fn inactivity_is_reported_once_and_only_for_silence() {
        let (mut s, now) = session(
            remote("10.0.0.1:4000", false),
            remote("10.0.0.2:5000", false),
        );
        let timeout = Duration::from_secs(30);
        assert!(!s.poll_inactive(now + Duration::from_secs(29), timeout));
        s.handle_datagram(
            now + Duration::from_secs(29),
            0,
            Leg::B,
            Port::Rtp,
            addr("10.0.0.2:5000"),
            &RTP,
        );
        assert!(!s.poll_inactive(now + Duration::from_secs(58), timeout));
        // Dropped packets (hijack attempts) do not keep a session alive.
        s.handle_datagram(
            now + Duration::from_secs(58),
            0,
            Leg::A,
            Port::Rtp,
            addr("10.9.9.9:1"),
            &RTP,
        );
        assert!(s.poll_inactive(now + Duration::from_secs(59), timeout));
        assert!(!s.poll_inactive(now + Duration::from_secs(600), timeout));
        assert!(!s.poll_inactive(now + Duration::from_secs(600), Duration::ZERO));
    }
}
