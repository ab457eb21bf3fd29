//! RTP reception statistics of one incoming stream: sequence tracking and loss (RFC 3550
//! A.1/A.3) and interarrival jitter (A.8). Sans-IO: arrival times are passed in.

use std::time::Instant;

use crate::packet::{RtpHeader, clock_rate};
use crate::stats::RtpQuality;

const SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u32 = 100;

/// Sequence and jitter state for the SSRC a leg's peer currently sends.
#[derive(Debug, Clone)]
pub struct RtpReceiver {
    epoch: Instant,
    source: Option<SourceState>,
}

#[derive(Debug, Clone)]
struct SourceState {
    ssrc: u32,
    payload_type: u8,
    clock_rate: u32,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    bad_seq: u32,
    received: u64,
    /// Relative transit time of the previous packet, `None` right after a (re)start.
    transit: Option<i32>,
    /// Jitter estimate scaled by 16 (A.8).
    jitter_q4: u32,
}

impl SourceState {
    fn new(header: &RtpHeader) -> SourceState {
        let mut state = SourceState {
            ssrc: header.ssrc,
            payload_type: header.payload_type,
            clock_rate: clock_rate(header.payload_type),
            base_seq: 0,
            max_seq: 0,
            cycles: 0,
            bad_seq: SEQ_MOD + 1,
            received: 0,
            transit: None,
            jitter_q4: 0,
        };
        state.restart_sequence(header.sequence);
        state
    }

    fn restart_sequence(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
    }

    /// A.1 `update_seq` without probation: false when the packet is not counted (the first
    /// packet after a large jump, until the jump is confirmed by its successor).
    fn update_sequence(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= SEQ_MOD - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the source restarted.
                self.restart_sequence(seq);
                self.transit = None;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return false;
            }
        }
        // else: duplicate or reordered packet, counted but max_seq unchanged.
        self.received += 1;
        true
    }

    fn expected(&self) -> u64 {
        let extended_max = u64::from(self.cycles) + u64::from(self.max_seq);
        (extended_max + 1).saturating_sub(u64::from(self.base_seq))
    }
}

impl RtpReceiver {
    /// `epoch` is any fixed instant before the first packet (arrival times are relative to it).
    pub fn new(epoch: Instant) -> RtpReceiver {
        RtpReceiver {
            epoch,
            source: None,
        }
    }

    /// Accounts one RTP packet that arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, header: &RtpHeader) {
        let epoch = self.epoch;
        let source = match &mut self.source {
            Some(source) if source.ssrc == header.ssrc => source,
            slot => slot.insert(SourceState::new(header)),
        };
        if !source.update_sequence(header.sequence) {
            return;
        }
        if header.payload_type != source.payload_type {
            source.payload_type = header.payload_type;
            source.clock_rate = clock_rate(header.payload_type);
            source.transit = None;
        }
        let micros =
            u64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX);
        let arrival = (micros.wrapping_mul(u64::from(source.clock_rate)) / 1_000_000) as u32;
        let transit = arrival.wrapping_sub(header.timestamp) as i32;
        if let Some(previous) = source.transit {
            let d = transit.wrapping_sub(previous).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            source.jitter_q4 = source
                .jitter_q4
                .wrapping_add(d)
                .wrapping_sub((source.jitter_q4 + 8) >> 4);
        }
        source.transit = Some(transit);
    }

    /// The statistics so far.
    pub fn quality(&self) -> RtpQuality {
        let Some(source) = &self.source else {
            return RtpQuality::default();
        };
        let expected = source.expected();
        let jitter = source.jitter_q4 >> 4;
        RtpQuality {
            ssrc: Some(source.ssrc),
            expected,
            received: source.received,
            lost: expected as i64 - source.received as i64,
            jitter,
            jitter_ms: f64::from(jitter) * 1000.0 / f64::from(source.clock_rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn header(sequence: u16, timestamp: u32) -> RtpHeader {
        RtpHeader {
            payload_type: 0,
            sequence,
            timestamp,
            ssrc: 7,
        }
    }

    #[test]
    fn perfect_stream_has_no_loss_and_no_jitter() {
        let epoch = Instant::now();
        let mut rx = RtpReceiver::new(epoch);
        for i in 0..100u16 {
            let now = epoch + Duration::from_millis(20 * u64::from(i));
            rx.handle_packet(now, &header(65500u16.wrapping_add(i), 160 * u32::from(i)));
        }
        let q = rx.quality();
        assert_eq!((q.expected, q.received, q.lost, q.jitter), (100, 100, 0, 0));
    }

    #[test]
    fn gaps_count_as_loss_and_late_packets_as_jitter() {
        let epoch = Instant::now();
        let mut rx = RtpReceiver::new(epoch);
        // 50 packets sent every 20 ms; 5 are lost; every 10th arrives 10 ms late.
        for i in 0..50u32 {
            if i % 10 == 3 {
                continue;
            }
            let delay = if i % 10 == 7 { 10 } else { 0 };
            let now = epoch + Duration::from_millis(u64::from(20 * i + delay));
            rx.handle_packet(now, &header(i as u16, 160 * i));
        }
        let q = rx.quality();
        assert_eq!((q.expected, q.received, q.lost), (50, 45, 5));
        // Each late packet adds |D| = 80 units twice (late, then back on time).
        assert!(q.jitter > 0 && q.jitter < 80, "jitter {}", q.jitter);
        assert!((q.jitter_ms - f64::from(q.jitter) / 8.0).abs() < 1e-9);
    }

    #[test]
    fn a_new_ssrc_or_a_confirmed_jump_restarts_the_count() {
        let epoch = Instant::now();
        let mut rx = RtpReceiver::new(epoch);
        for i in 0..10u16 {
            rx.handle_packet(epoch, &header(i, 0));
        }
        rx.handle_packet(epoch, &header(40000, 0));
        assert_eq!(rx.quality().received, 10, "a lone jump is not counted");
        rx.handle_packet(epoch, &header(40001, 0));
        assert_eq!((rx.quality().expected, rx.quality().received), (1, 1));
        rx.handle_packet(
            epoch,
            &RtpHeader {
                ssrc: 9,
                ..header(5, 0)
            },
        );
        assert_eq!(rx.quality().ssrc, Some(9));
        assert_eq!(rx.quality().received, 1);
    }
}
