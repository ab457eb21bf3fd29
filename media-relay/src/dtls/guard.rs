//! What of a leg's DTLS traffic may reach the handshake thread (sans-IO).
//!
//! Every DTLS handshake of the relay runs on one thread, fed from every worker through one
//! bounded queue. A peer that floods its media port with DTLS records (or starts handshake
//! after handshake with ClientHellos, each of which costs the thread a key agreement and a
//! signature) must not fill that queue, or keep that thread busy, at the expense of other
//! calls' handshakes. So each leg has a token bucket: a record costs one token, a
//! ClientHello [`CLIENT_HELLO_COST`]; the bucket holds [`BURST`] tokens and refills at
//! [`PER_SECOND`] a second. That leaves a legitimate handshake (a few flights, with
//! retransmissions) room to spare, and bounds what any one leg can make the thread do.
//! Records are also dropped before they cost anything when no handshake can use them: on a
//! leg without DTLS-SRTP, from a source that is not the leg's, before the peer's
//! fingerprint is known, and after the handshake failed. Every drop is counted by reason.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Tokens a leg's bucket holds at most (and starts with).
pub const BURST: u32 = 40;
/// Tokens added per second.
pub const PER_SECOND: u32 = 10;
/// What a ClientHello costs: it starts a handshake (a key agreement and a signature for
/// the server).
pub const CLIENT_HELLO_COST: u32 = 4;

/// Why a DTLS record was dropped before reaching the handshake thread. Stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DtlsDrop {
    /// The leg does not use DTLS-SRTP.
    NotDtls,
    /// From an address that is not the leg's (latched, or plausible before latching).
    UnexpectedSource,
    /// No handshake runs on the leg yet (the peer's fingerprint is not known).
    NoHandshake,
    /// The leg's handshake failed; nothing more is accepted until signalling restarts it.
    HandshakeFailed,
    /// Beyond the leg's share (its token bucket is empty).
    RateLimited,
    /// The queue to the handshake thread was full.
    QueueFull,
}

impl DtlsDrop {
    pub const ALL: [DtlsDrop; 6] = [
        DtlsDrop::NotDtls,
        DtlsDrop::UnexpectedSource,
        DtlsDrop::NoHandshake,
        DtlsDrop::HandshakeFailed,
        DtlsDrop::RateLimited,
        DtlsDrop::QueueFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DtlsDrop::NotDtls => "not_dtls",
            DtlsDrop::UnexpectedSource => "unexpected_source",
            DtlsDrop::NoHandshake => "no_handshake",
            DtlsDrop::HandshakeFailed => "handshake_failed",
            DtlsDrop::RateLimited => "rate_limited",
            DtlsDrop::QueueFull => "queue_full",
        }
    }
}

/// DTLS records dropped, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DtlsDrops {
    pub not_dtls: u64,
    pub unexpected_source: u64,
    pub no_handshake: u64,
    pub handshake_failed: u64,
    pub rate_limited: u64,
    pub queue_full: u64,
}

impl DtlsDrops {
    fn slot(&mut self, reason: DtlsDrop) -> &mut u64 {
        match reason {
            DtlsDrop::NotDtls => &mut self.not_dtls,
            DtlsDrop::UnexpectedSource => &mut self.unexpected_source,
            DtlsDrop::NoHandshake => &mut self.no_handshake,
            DtlsDrop::HandshakeFailed => &mut self.handshake_failed,
            DtlsDrop::RateLimited => &mut self.rate_limited,
            DtlsDrop::QueueFull => &mut self.queue_full,
        }
    }

    pub fn add(&mut self, reason: DtlsDrop, records: u64) {
        let slot = self.slot(reason);
        *slot = slot.wrapping_add(records);
    }

    pub fn get(&self, reason: DtlsDrop) -> u64 {
        let mut copy = *self;
        *copy.slot(reason)
    }

    pub fn total(&self) -> u64 {
        DtlsDrop::ALL.iter().map(|r| self.get(*r)).sum()
    }

    pub fn merge(&mut self, other: &DtlsDrops) {
        for reason in DtlsDrop::ALL {
            self.add(reason, other.get(reason));
        }
    }
}

/// A token bucket: `BURST` tokens, `PER_SECOND` more each second, in thousandths so that
/// refilling needs no floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtlsBudget {
    /// Tokens × 1000.
    level: u64,
    last: Option<Instant>,
}

impl Default for DtlsBudget {
    fn default() -> DtlsBudget {
        DtlsBudget {
            level: u64::from(BURST) * 1000,
            last: None,
        }
    }
}

impl DtlsBudget {
    /// Takes what `record` costs at `now`; false when the leg has used up its share.
    pub fn admit(&mut self, now: Instant, record: &[u8]) -> bool {
        let capacity = u64::from(BURST) * 1000;
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last);
            // Per millisecond: PER_SECOND thousandths × 1000 / 1000.
            let added = elapsed.as_millis().saturating_mul(u128::from(PER_SECOND));
            self.level = capacity.min(
                self.level
                    .saturating_add(u64::try_from(added).unwrap_or(u64::MAX)),
            );
        }
        self.last = Some(now.max(self.last.unwrap_or(now)));
        let cost = if is_client_hello(record) {
            CLIENT_HELLO_COST
        } else {
            1
        };
        let cost = u64::from(cost) * 1000;
        if self.level < cost {
            return false;
        }
        self.level -= cost;
        true
    }
}

/// Whether a datagram starts with a DTLS handshake record of epoch 0 carrying a
/// ClientHello (RFC 6347 §4.1 and §4.2.2: content type 22, epoch at octets 3–4, the
/// handshake type after the 13-octet record header).
pub fn is_client_hello(record: &[u8]) -> bool {
    matches!(
        (record.first(), record.get(3..5), record.get(13)),
        (Some(22), Some([0, 0]), Some(1))
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(handshake_type: u8) -> [u8; 14] {
        let mut r = [0u8; 14];
        r[0] = 22;
        r[1] = 0xfe;
        r[2] = 0xfd;
        r[13] = handshake_type;
        r
    }

    #[test]
    fn a_burst_then_the_refill_rate_and_client_hellos_cost_more() {
        let start = Instant::now();
        let mut budget = DtlsBudget::default();
        let other = record(11);
        let admitted = (0..100).filter(|_| budget.admit(start, &other)).count();
        assert_eq!(admitted, BURST as usize);
        // A second later: PER_SECOND more.
        let later = start + Duration::from_secs(1);
        let admitted = (0..100).filter(|_| budget.admit(later, &other)).count();
        assert_eq!(admitted, PER_SECOND as usize);
        // ClientHellos: BURST / CLIENT_HELLO_COST from a full bucket.
        let mut budget = DtlsBudget::default();
        let hello = record(1);
        assert!(is_client_hello(&hello) && !is_client_hello(&other));
        let admitted = (0..100).filter(|_| budget.admit(start, &hello)).count();
        assert_eq!(admitted, (BURST / CLIENT_HELLO_COST) as usize);
        // A long pause refills only up to the burst.
        let much_later = start + Duration::from_secs(3600);
        let admitted = (0..100)
            .filter(|_| budget.admit(much_later, &other))
            .count();
        assert_eq!(admitted, BURST as usize);
        // Time going backwards takes nothing away and gives nothing.
        assert!(!budget.admit(start, &other));
    }

    #[test]
    fn client_hellos_are_told_apart_from_other_records() {
        let mut encrypted = record(1);
        encrypted[4] = 1; // epoch 1: encrypted, not a ClientHello
        assert!(!is_client_hello(&encrypted));
        assert!(!is_client_hello(&[22, 0xfe, 0xfd]));
        let mut alert = record(1);
        alert[0] = 21;
        assert!(!is_client_hello(&alert));
    }
}
