//! One relay session (sans-IO): its streams, their two legs, latching, media protection,
//! BUNDLE groups, forwarding decisions and statistics. The worker feeds it datagrams with
//! `now` and sends what it says.
//!
//! Every datagram is told apart by its first octet (RFC 7983): STUN (0–3) is an ICE check
//! the leg answers, DTLS (20–63) belongs to the leg's DTLS-SRTP handshake, RTP and RTCP
//! (128–191) are media. Media from an SRTP leg is verified and decrypted, RTCP has its SDES
//! hidden, and what goes to an SRTP leg is encrypted with that leg's keys: each leg in its
//! own protection, converted in place in the buffer the packet is sent from.
//!
//! A leg may bundle several streams onto the transport of one of them (RFC 8843, see
//! [`crate::bundle`]): what arrives there is verified with the transport's keys, then
//! given to the stream it belongs to, and goes on to that stream's other leg; what goes
//! to a bundled stream leaves from the transport, with its keys, to its peer. The other
//! leg may be bundled or not.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::bundle::{Bundle, BundleState};
use crate::control::{Leg, LegSecurity, RemoteMedia};
use crate::dtls::{DtlsDrop, DtlsError, DtlsSrtpKeys};
use crate::error::RelayError;
use crate::latch::Admission;
use crate::leg::LegState;
use crate::packet::{Packet, Port, classify};
use crate::rtcp;
use crate::security::{CryptoDrop, DtlsChanges};
use crate::srtp::SrtpError;
use crate::stats::{DropReason, SessionStats, StreamStats};

/// Bytes a packet may grow by on its way through: the SRTP trailer (tag, MKI, SRTCP index).
pub const MAX_GROWTH: usize = 16 + crate::srtp::MAX_MKI_LEN + 4 + 4;

/// What to do with a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the first `len` bytes of the buffer from `port` of `leg` of `stream` to `to`:
    /// the packet as received, converted to that leg's protection, RTCP with its SDES
    /// items hidden (see [`crate::rtcp`]). `stream` is the one received on, or, with
    /// BUNDLE, the stream it belongs to or the transport it leaves by.
    Forward {
        stream: usize,
        leg: Leg,
        port: Port,
        to: SocketAddr,
        len: usize,
    },
    /// Send the first `len` bytes of the buffer (a STUN answer) back to the source, from
    /// the socket it arrived on.
    Reply {
        len: usize,
    },
    /// A DTLS record for the handshake of this leg and port: hand the datagram to DTLS.
    Dtls,
    Drop(DropReason),
    /// Dropped by SRTP (counted as [`DropReason::Srtp`], and by this reason).
    DropSrtp(SrtpError),
    /// A DTLS record kept from the handshake thread (counted as [`DropReason::Dtls`], and
    /// by this reason).
    DropDtls(DtlsDrop),
}

/// Where and when a datagram arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub now: Instant,
    pub stream: usize,
    pub leg: Leg,
    pub port: Port,
    pub source: SocketAddr,
}

#[derive(Debug)]
struct MediaStream {
    legs: [LegState; 2],
}

impl MediaStream {
    fn new(epoch: Instant) -> MediaStream {
        MediaStream {
            legs: [LegState::new(epoch), LegState::new(epoch)],
        }
    }

    fn leg_mut(&mut self, leg: Leg) -> &mut LegState {
        let [a, b] = &mut self.legs;
        match leg {
            Leg::A => a,
            Leg::B => b,
        }
    }
}

/// The leg state of `leg` of `stream`.
fn leg_of(streams: &mut [MediaStream], stream: usize, leg: Leg) -> Option<&mut LegState> {
    Some(streams.get_mut(stream)?.leg_mut(leg))
}

/// A media packet past its receiving leg: decrypted, in `buf[..len]`.
struct Received {
    len: usize,
    is_rtcp: bool,
}

/// The media of one call as the relay sees it.
#[derive(Debug)]
pub struct RelaySession {
    epoch: Instant,
    streams: Vec<MediaStream>,
    /// Per leg (A, B): its BUNDLE group, if it has one. Boxed: the state (two tables of
    /// learnt SSRCs) is about a kilobyte, and most calls have no bundled leg.
    bundles: [Option<Box<BundleState>>; 2],
    last_activity: Instant,
    inactivity_reported: bool,
}

impl RelaySession {
    pub fn new(now: Instant, streams: usize) -> RelaySession {
        RelaySession {
            epoch: now,
            streams: (0..streams).map(|_| MediaStream::new(now)).collect(),
            bundles: [None, None],
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
        match leg_of(&mut self.streams, stream, leg) {
            Some(state) => {
                state.update(remote);
                true
            }
            None => false,
        }
    }

    /// Bundles streams of `leg` onto the transport of one of them (`None`: every stream on
    /// its own transport again). The transport's stream keeps its address, latches and
    /// protection; the others' are not used while bundled.
    pub fn bundle(&mut self, leg: Leg, bundle: Option<&Bundle>) -> Result<(), RelayError> {
        if let Some(bundle) = bundle {
            let streams = self.streams.len();
            let outside = std::iter::once(bundle.transport)
                .chain(bundle.members.iter().map(|m| m.stream))
                .find(|stream| *stream >= streams);
            if let Some(stream) = outside {
                return Err(RelayError::UnknownStream { session: 0, stream });
            }
        }
        let slot = &mut self.bundles[leg.index()];
        *slot = bundle.map(|bundle| Box::new(BundleState::new(bundle)));
        Ok(())
    }

    /// The stream whose transport `stream` of `leg` uses (itself unless bundled).
    fn transport_of(&self, stream: usize, leg: Leg) -> usize {
        match &self.bundles[leg.index()] {
            Some(bundle) if bundle.contains(stream) => bundle.transport(),
            _ => stream,
        }
    }

    /// Sets how `leg` of `stream` is protected (sans-IO users: tests, tools, fuzzing). DTLS
    /// handshakes are the driver's: their keys come in with [`RelaySession`]'s driver.
    pub fn protect(
        &mut self,
        stream: usize,
        leg: Leg,
        security: &LegSecurity,
    ) -> Result<(), RelayError> {
        self.protect_leg(stream, leg, security).map(|_| ())
    }

    /// Sets how `leg` of `stream` is protected; returns the DTLS endpoints the driver must
    /// stop and start.
    pub(crate) fn protect_leg(
        &mut self,
        stream: usize,
        leg: Leg,
        security: &LegSecurity,
    ) -> Result<DtlsChanges, RelayError> {
        let Some(state) = leg_of(&mut self.streams, stream, leg) else {
            return Err(RelayError::UnknownStream { session: 0, stream });
        };
        let mux = state.remote.rtcp_mux;
        state.crypto.configure(security, mux)
    }

    /// A DTLS handshake on `port` of `leg` completed: its keys protect the leg from now on.
    pub(crate) fn dtls_connected(
        &mut self,
        stream: usize,
        leg: Leg,
        port: Port,
        keys: &DtlsSrtpKeys,
    ) {
        if let Some(state) = leg_of(&mut self.streams, stream, leg) {
            state.crypto.dtls_connected(port, keys);
        }
    }

    pub(crate) fn dtls_failed(&mut self, stream: usize, leg: Leg, port: Port, error: DtlsError) {
        if let Some(state) = leg_of(&mut self.streams, stream, leg) {
            state.crypto.dtls_failed(port, error);
        }
    }

    /// Whether any leg of any stream uses DTLS-SRTP.
    pub(crate) fn uses_dtls(&self) -> bool {
        self.streams
            .iter()
            .any(|s| s.legs.iter().any(|l| l.crypto.is_dtls()))
    }

    /// Where DTLS records for the handshake on `port` of `leg` go: where the peer's last
    /// record came from, else the latched address, else the SDP address.
    pub(crate) fn dtls_destination(
        &self,
        stream: usize,
        leg: Leg,
        port: Port,
    ) -> Option<SocketAddr> {
        let state = self.streams.get(stream)?.legs.get(leg.index())?;
        state.crypto.dtls_peer(port).or(match port {
            Port::Rtp => state.rtp_destination(),
            Port::Rtcp => state.rtcp_destination().map(|(_, to)| to),
        })
    }

    /// Decides what to do with `datagram` (convenience for tests and tools: it copies the
    /// datagram into a buffer of its own; the worker uses [`RelaySession::handle_packet`]).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        stream: usize,
        leg: Leg,
        port: Port,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Verdict {
        let mut buf = datagram.to_vec();
        buf.resize(2 * datagram.len() + MAX_GROWTH, 0);
        let mut scratch = vec![0u8; 2 * datagram.len() + MAX_GROWTH];
        let arrival = Arrival {
            now,
            stream,
            leg,
            port,
            source,
        };
        self.handle_packet(arrival, &mut buf, datagram.len(), &mut scratch)
    }

    /// Decides what to do with the datagram in `buf[..len]` and converts it in place. `buf`
    /// must have room for twice the datagram plus [`MAX_GROWTH`] (RTCP with SDES can grow
    /// when its items are rewritten), and `scratch` as much.
    pub fn handle_packet(
        &mut self,
        arrival: Arrival,
        buf: &mut [u8],
        len: usize,
        scratch: &mut [u8],
    ) -> Verdict {
        let Some(from) = leg_of(&mut self.streams, arrival.stream, arrival.leg) else {
            return Verdict::Drop(DropReason::NoDestination);
        };
        from.counters.packets_received += 1;
        from.counters.bytes_received += len as u64;
        // A stream bundled onto another's transport receives nothing on its own port.
        let verdict = if self.transport_of(arrival.stream, arrival.leg) != arrival.stream {
            Verdict::Drop(DropReason::Bundle)
        } else {
            self.decide(arrival, buf, len, scratch)
        };
        let Some(from) = leg_of(&mut self.streams, arrival.stream, arrival.leg) else {
            return verdict;
        };
        match verdict {
            // Accepted packets keep the session alive, even while the other leg has no address.
            Verdict::Forward { .. } | Verdict::Reply { .. } | Verdict::Dtls => {
                self.last_activity = arrival.now
            }
            Verdict::Drop(reason) => {
                from.counters.drops.add(reason, 1);
                if reason == DropReason::NoDestination {
                    self.last_activity = arrival.now;
                }
            }
            Verdict::DropSrtp(_) => from.counters.drops.add(DropReason::Srtp, 1),
            Verdict::DropDtls(_) => from.counters.drops.add(DropReason::Dtls, 1),
        }
        verdict
    }

    fn decide(
        &mut self,
        arrival: Arrival,
        buf: &mut [u8],
        len: usize,
        scratch: &mut [u8],
    ) -> Verdict {
        let Some(from) = leg_of(&mut self.streams, arrival.stream, arrival.leg) else {
            return Verdict::Drop(DropReason::NoDestination);
        };
        let received = match Self::receive(arrival, from, buf, len, scratch) {
            Ok(received) => received,
            Err(verdict) => return verdict,
        };
        let Some(plain) = buf.get(..received.len) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        // The stream the packet belongs to: the one it arrived on, unless bundled.
        let packet = classify(arrival.port, plain);
        let stream = match (&mut self.bundles[arrival.leg.index()], packet) {
            (Some(bundle), Packet::Rtp(header)) if bundle.transport() == arrival.stream => {
                match bundle.route_rtp(plain, &header) {
                    Some(stream) => stream,
                    None => return Verdict::Drop(DropReason::Bundle),
                }
            }
            (Some(bundle), Packet::Rtcp) if bundle.transport() == arrival.stream => {
                bundle.route_rtcp(plain)
            }
            _ => arrival.stream,
        };
        let Some(member) = leg_of(&mut self.streams, stream, arrival.leg) else {
            return Verdict::Drop(DropReason::Bundle);
        };
        let mut len = received.len;
        let ssrc = match packet {
            Packet::Rtp(header) => {
                member.rtp.handle_packet(arrival.now, &header);
                Some(header.ssrc)
            }
            Packet::Rtcp => {
                member.counters.rtcp_received += 1;
                if rtcp::has_sdes(plain)
                    && let Some(hidden) = rtcp::hide_sdes(plain, scratch)
                    && let (Some(out), Some(src)) = (buf.get_mut(..hidden), scratch.get(..hidden))
                {
                    out.copy_from_slice(src);
                    len = hidden;
                }
                None
            }
            Packet::Malformed => return Verdict::Drop(DropReason::Malformed),
        };
        self.send(arrival, stream, received.is_rtcp, ssrc, buf, len)
    }

    /// The receiving half: STUN and DTLS are handled on the leg; media is checked against
    /// the latch, verified and decrypted in place.
    fn receive(
        arrival: Arrival,
        from: &mut LegState,
        buf: &mut [u8],
        len: usize,
        scratch: &mut [u8],
    ) -> Result<Received, Verdict> {
        let Arrival {
            now, port, source, ..
        } = arrival;
        let Some(datagram) = buf.get(..len) else {
            return Err(Verdict::Drop(DropReason::Malformed));
        };
        match datagram.first() {
            Some(0..=3) if crate::stun::is_stun(datagram) => {
                return Err(Self::stun(from, port, source, buf, len, scratch));
            }
            // A DTLS record header is 13 bytes.
            Some(20..=63) if datagram.len() >= 13 => {
                return Err(Self::dtls(from, now, port, source, datagram));
            }
            _ => {}
        }
        let packet = classify(port, datagram);
        if packet == Packet::Malformed {
            return Err(Verdict::Drop(DropReason::Malformed));
        }
        let is_rtcp = packet == Packet::Rtcp;
        let admission = from.admission(port, source);
        let admitted = match admission {
            Admission::Latched | Admission::Plausible => true,
            // An authenticated packet may latch an open SRTP leg from anywhere.
            Admission::Implausible => from.crypto.is_protected(),
            Admission::Elsewhere => false,
        };
        if !admitted {
            return Err(Verdict::Drop(DropReason::UnexpectedSource));
        }
        let len = match from.crypto.unprotect(is_rtcp, buf, len) {
            Ok(len) => len,
            Err(CryptoDrop::KeysPending) => return Err(Verdict::Drop(DropReason::KeysPending)),
            Err(CryptoDrop::Srtp(error)) => return Err(Verdict::DropSrtp(error)),
        };
        if matches!(admission, Admission::Plausible | Admission::Implausible) {
            from.latch_mut(port).latch_to(source);
        }
        Ok(Received { len, is_rtcp })
    }

    /// The sending half: a packet of `stream` received on `arrival.leg` goes to the same
    /// stream's other leg, by that leg's transport (its own, or its bundle's), protected
    /// with the transport's keys.
    fn send(
        &mut self,
        arrival: Arrival,
        stream: usize,
        is_rtcp: bool,
        ssrc: Option<u32>,
        buf: &mut [u8],
        len: usize,
    ) -> Verdict {
        let out_leg = arrival.leg.other();
        let transport = self.transport_of(stream, out_leg);
        if let (Some(bundle), Some(ssrc)) = (self.bundles[out_leg.index()].as_mut(), ssrc)
            && bundle.contains(stream)
        {
            bundle.note_outbound(stream, ssrc);
        }
        let Some(to) = leg_of(&mut self.streams, transport, out_leg) else {
            return Verdict::Drop(DropReason::NoDestination);
        };
        let destination = if is_rtcp {
            to.rtcp_destination()
        } else {
            to.rtp_destination().map(|to| (Port::Rtp, to))
        };
        let Some((out_port, out_to)) = destination else {
            return Verdict::Drop(DropReason::NoDestination);
        };
        let len = match to.crypto.protect(is_rtcp, buf, len) {
            Ok(len) => len,
            Err(CryptoDrop::KeysPending) => return Verdict::Drop(DropReason::KeysPending),
            Err(CryptoDrop::Srtp(error)) => {
                if let Some(from) = leg_of(&mut self.streams, arrival.stream, arrival.leg) {
                    from.crypto.drops.add(error, 1);
                }
                return Verdict::DropSrtp(error);
            }
        };
        Verdict::Forward {
            stream: transport,
            leg: out_leg,
            port: out_port,
            to: out_to,
            len,
        }
    }

    /// An ICE connectivity check: answered when it carries the leg's credentials, and its
    /// source becomes the leg's latched address on that port.
    fn stun(
        from: &mut LegState,
        port: Port,
        source: SocketAddr,
        buf: &mut [u8],
        len: usize,
        scratch: &mut [u8],
    ) -> Verdict {
        let (Some(agent), Some(request)) = (from.crypto.ice(), buf.get(..len)) else {
            return Verdict::Drop(DropReason::Stun);
        };
        match agent.handle_request(request, source, scratch) {
            Ok(answered) => {
                let (Some(out), Some(response)) =
                    (buf.get_mut(..answered.len), scratch.get(..answered.len))
                else {
                    return Verdict::Drop(DropReason::Stun);
                };
                out.copy_from_slice(response);
                let latch = from.latch_mut(port);
                if latch.address() != Some(source) {
                    latch.latch_to(source);
                    if from.remote.rtcp_mux && port == Port::Rtp {
                        from.rtcp_latch.latch_to(source);
                    }
                }
                Verdict::Reply { len: answered.len }
            }
            Err(_) => Verdict::Drop(DropReason::Stun),
        }
    }

    /// A DTLS record: for the leg's handshake when the leg uses DTLS-SRTP, the source is
    /// the latched one (or, before latching, a plausible one), a handshake runs, and the
    /// leg has not used up its share of the handshake thread (see [`crate::dtls::DtlsBudget`]).
    fn dtls(
        from: &mut LegState,
        now: Instant,
        port: Port,
        source: SocketAddr,
        record: &[u8],
    ) -> Verdict {
        if !from.crypto.is_dtls() {
            from.crypto.count_dtls_drop(DtlsDrop::NotDtls);
            return Verdict::DropDtls(DtlsDrop::NotDtls);
        }
        match from.admission(port, source) {
            Admission::Latched | Admission::Plausible => {}
            Admission::Implausible | Admission::Elsewhere => {
                from.crypto.count_dtls_drop(DtlsDrop::UnexpectedSource);
                return Verdict::DropDtls(DtlsDrop::UnexpectedSource);
            }
        }
        if let Err(reason) = from.crypto.admit_dtls(now, port, record) {
            return Verdict::DropDtls(reason);
        }
        from.crypto.set_dtls_peer(port, source);
        Verdict::Dtls
    }

    /// Counts a DTLS record of `leg`'s peer on `stream` that could not be queued for the
    /// handshake thread.
    pub(crate) fn record_dtls_queue_full(&mut self, stream: usize, leg: Leg) {
        if let Some(state) = leg_of(&mut self.streams, stream, leg) {
            state.crypto.count_dtls_drop(DtlsDrop::QueueFull);
            state.counters.drops.add(DropReason::Dtls, 1);
        }
    }

    /// Records `packets` datagrams (`bytes` in all) sent to `leg`'s peer of `stream`.
    pub fn record_sent(&mut self, stream: usize, leg: Leg, packets: u64, bytes: u64) {
        if let Some(state) = leg_of(&mut self.streams, stream, leg) {
            let counters = &mut state.counters;
            counters.packets_sent += packets;
            counters.bytes_sent += bytes;
        }
    }

    /// Records `packets` datagrams for `leg`'s peer that the system refused to send; they are
    /// counted as drops of the leg they came from.
    pub fn record_send_failed(&mut self, stream: usize, leg: Leg, packets: u64) {
        if let Some(state) = leg_of(&mut self.streams, stream, leg.other()) {
            state.counters.drops.add(DropReason::SendFailed, packets);
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

    /// Every call holds one session in its worker's table and one stream per m= line:
    /// what a call without BUNDLE does not use stays out of them (memory per concurrent
    /// call, `bench/calls.sh`; the BUNDLE state inline once added 2.2 kB to every call).
    #[test]
    fn sessions_and_streams_stay_small() {
        let session = std::mem::size_of::<RelaySession>();
        let stream = std::mem::size_of::<MediaStream>();
        assert!(session <= 128, "RelaySession is {session} bytes");
        assert!(stream <= 3 * 1024, "MediaStream is {stream} bytes");
    }

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
                stream: 0,
                leg: Leg::B,
                port: Port::Rtcp,
                to: addr("10.0.0.2:5001"),
                len: RTCP.len(),
            }
        );
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, from_a, &RTP),
            Verdict::Forward {
                stream: 0,
                leg: Leg::B,
                port: Port::Rtp,
                to: addr("10.0.0.2:5000"),
                len: RTP.len(),
            }
        );
        assert_eq!(
            s.handle_datagram(now, 0, Leg::B, Port::Rtcp, addr("10.0.0.2:5001"), &RTCP),
            Verdict::Forward {
                stream: 0,
                leg: Leg::A,
                port: Port::Rtp,
                to: from_a,
                len: RTCP.len(),
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

    fn dtls_leg(session: &mut RelaySession, fingerprint: bool) {
        use crate::control::{DtlsSetup, Protection};
        use crate::dtls::{DtlsRole, Fingerprint, HashFunction};
        let security = LegSecurity {
            protection: Protection::Dtls(DtlsSetup {
                role: DtlsRole::Server,
                fingerprint: fingerprint.then(|| Fingerprint {
                    hash: HashFunction::Sha256,
                    digest: vec![7; 32],
                }),
            }),
            ice: None,
        };
        assert!(session.protect(0, Leg::A, &security).is_ok());
    }

    fn client_hello() -> [u8; 40] {
        let mut record = [0u8; 40];
        record[0] = 22;
        record[1] = 0xfe;
        record[2] = 0xfd;
        record[13] = 1;
        record
    }

    #[test]
    fn dtls_records_reach_the_handshake_only_within_the_legs_share() {
        let (mut s, now) = session(
            remote("10.0.0.1:4000", true),
            remote("10.0.0.2:5000", false),
        );
        let from_a = addr("10.0.0.1:4000");
        let hello = client_hello();
        // A plain leg takes no DTLS.
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, from_a, &hello),
            Verdict::DropDtls(DtlsDrop::NotDtls)
        );
        // Before the peer's fingerprint is known, no handshake runs.
        dtls_leg(&mut s, false);
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, from_a, &hello),
            Verdict::DropDtls(DtlsDrop::NoHandshake)
        );
        dtls_leg(&mut s, true);
        // From elsewhere: refused whatever the budget.
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, addr("10.9.9.9:4000"), &hello),
            Verdict::DropDtls(DtlsDrop::UnexpectedSource)
        );
        // A flood of ClientHellos: BURST / CLIENT_HELLO_COST pass, the rest is dropped.
        let passed = (0..1000)
            .filter(|_| {
                s.handle_datagram(now, 0, Leg::A, Port::Rtp, from_a, &hello) == Verdict::Dtls
            })
            .count();
        assert_eq!(
            passed,
            (crate::dtls::BURST / crate::dtls::CLIENT_HELLO_COST) as usize
        );
        // A second later the leg has PER_SECOND more (ordinary records cost one).
        let mut other = hello;
        other[13] = 11;
        let later = now + Duration::from_secs(1);
        let passed = (0..1000)
            .filter(|_| {
                s.handle_datagram(later, 0, Leg::A, Port::Rtp, from_a, &other) == Verdict::Dtls
            })
            .count();
        assert_eq!(passed, crate::dtls::PER_SECOND as usize);
        // After the handshake failed, nothing more goes.
        s.dtls_failed(0, Leg::A, Port::Rtp, DtlsError::Handshake);
        assert_eq!(
            s.handle_datagram(
                later + Duration::from_secs(60),
                0,
                Leg::A,
                Port::Rtp,
                from_a,
                &hello
            ),
            Verdict::DropDtls(DtlsDrop::HandshakeFailed)
        );
        let a = s.stats().streams[0].a;
        assert_eq!(a.dtls_drops.not_dtls, 1);
        assert_eq!(a.dtls_drops.no_handshake, 1);
        assert_eq!(a.dtls_drops.unexpected_source, 1);
        assert_eq!(a.dtls_drops.handshake_failed, 1);
        assert_eq!(a.dtls_drops.rate_limited, 2000 - 10 - 10);
        assert_eq!(a.drops.dtls, a.dtls_drops.total());
        // Another leg keeps its own share.
        let mut t = RelaySession::new(now, 1);
        t.update(0, Leg::A, remote("10.0.0.1:4000", true));
        dtls_leg(&mut t, true);
        assert_eq!(
            t.handle_datagram(now, 0, Leg::A, Port::Rtp, from_a, &hello),
            Verdict::Dtls
        );
    }

    fn rtp_from(pt: u8, ssrc: u32) -> Vec<u8> {
        let mut packet = vec![0x80, pt, 0, 1, 0, 0, 0, 160];
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.extend_from_slice(&[0x55; 40]);
        packet
    }

    #[test]
    fn a_bundled_leg_shares_one_transport_and_each_stream_keeps_its_other_leg() {
        use crate::bundle::{Bundle, BundleMember};
        let now = Instant::now();
        let mut s = RelaySession::new(now, 2);
        // The browser's leg A: both m= lines on one port (the SDP of stream 1 says the same).
        s.update(0, Leg::A, remote("10.0.0.1:4000", true));
        s.update(1, Leg::A, remote("10.0.0.1:4000", true));
        // Leg B: a port per stream.
        s.update(0, Leg::B, remote("10.0.0.2:5000", false));
        s.update(1, Leg::B, remote("10.0.0.2:5002", false));
        let bundle = Bundle {
            transport: 0,
            members: vec![
                BundleMember {
                    stream: 0,
                    mid: "a1".into(),
                    ssrcs: vec![1111],
                    payload_types: vec![111, 0],
                },
                BundleMember {
                    stream: 1,
                    mid: "v1".into(),
                    ssrcs: vec![],
                    payload_types: vec![96, 97],
                },
            ],
            mid_extension: None,
        };
        assert!(s.bundle(Leg::A, Some(&bundle)).is_ok());
        let browser = addr("10.0.0.1:4000");
        // Audio and video arrive on the transport; each goes to its stream's leg B.
        let audio = rtp_from(111, 1111);
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, browser, &audio),
            Verdict::Forward {
                stream: 0,
                leg: Leg::B,
                port: Port::Rtp,
                to: addr("10.0.0.2:5000"),
                len: audio.len(),
            }
        );
        let video = rtp_from(96, 2222);
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, browser, &video),
            Verdict::Forward {
                stream: 1,
                leg: Leg::B,
                port: Port::Rtp,
                to: addr("10.0.0.2:5002"),
                len: video.len(),
            }
        );
        // The way back: from leg B's video port, out of the transport to the browser.
        let back = rtp_from(96, 3333);
        assert_eq!(
            s.handle_datagram(now, 1, Leg::B, Port::Rtp, addr("10.0.0.2:5002"), &back),
            Verdict::Forward {
                stream: 0,
                leg: Leg::A,
                port: Port::Rtp,
                to: browser,
                len: back.len(),
            }
        );
        // RTCP feedback from the browser about that source (a PLI) goes to the video's leg B.
        let mut pli = vec![0x81, 206, 0, 2];
        pli.extend_from_slice(&9u32.to_be_bytes());
        pli.extend_from_slice(&3333u32.to_be_bytes());
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, browser, &pli),
            Verdict::Forward {
                stream: 1,
                leg: Leg::B,
                port: Port::Rtcp,
                to: addr("10.0.0.2:5003"),
                len: pli.len(),
            }
        );
        // Nothing is taken on the video's own leg A port, nor of an unknown source.
        assert_eq!(
            s.handle_datagram(now, 1, Leg::A, Port::Rtp, browser, &video),
            Verdict::Drop(DropReason::Bundle)
        );
        assert_eq!(
            s.handle_datagram(now, 0, Leg::A, Port::Rtp, browser, &rtp_from(8, 4444)),
            Verdict::Drop(DropReason::Bundle)
        );
        let stats = s.stats();
        assert_eq!(
            stats.streams[1].a.rtp.received, 1,
            "video quality on its stream"
        );
        assert_eq!(stats.streams[0].a.rtp.received, 1);
        assert_eq!(stats.streams[0].a.drops.bundle, 1);
        assert_eq!(stats.streams[1].a.drops.bundle, 1);
        // Unbundled again: each stream on its own port.
        assert!(s.bundle(Leg::A, None).is_ok());
        assert!(matches!(
            s.handle_datagram(now, 1, Leg::A, Port::Rtp, browser, &video),
            Verdict::Forward { stream: 1, .. }
        ));
        let outside = Bundle {
            transport: 5,
            ..bundle
        };
        assert!(s.bundle(Leg::A, Some(&outside)).is_err());
    }
}
