//! A deterministic lossy network between two endpoints: a seeded PRNG decides, for every
//! datagram, whether it is lost, duplicated, and how long each copy is delayed (which
//! reorders datagrams whose delays cross).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_core::transaction::Peer;

/// SplitMix64: small, fast, and good enough to drive a simulation.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    /// Uniform in `0..=max`.
    pub fn duration_up_to(&mut self, max: Duration) -> Duration {
        let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.below(max_us.saturating_add(1)))
    }

    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }
}

/// How badly the network behaves.
#[derive(Clone, Copy, Debug)]
pub struct Conditions {
    /// Probability (per mille) that a datagram is lost.
    pub loss: u32,
    /// Probability (per mille) that a delivered datagram arrives twice.
    pub duplicate: u32,
    /// Each copy is delayed uniformly in `0..=max_delay`.
    pub max_delay: Duration,
}

impl Conditions {
    pub const PERFECT: Conditions = Conditions {
        loss: 0,
        duplicate: 0,
        max_delay: Duration::ZERO,
    };
}

/// A datagram on its way.
#[derive(Clone, Debug)]
pub struct Datagram {
    pub from: Peer,
    pub to: Peer,
    pub payload: Bytes,
}

/// Counters of what the network did.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetworkStats {
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub delivered: u64,
}

/// The datagrams in flight, ordered by delivery time then by sending order.
#[derive(Debug)]
pub struct Network {
    rng: Rng,
    conditions: Conditions,
    in_flight: BTreeMap<(Instant, u64), Datagram>,
    sequence: u64,
    pub stats: NetworkStats,
}

impl Network {
    pub fn new(seed: u64, conditions: Conditions) -> Network {
        Network {
            rng: Rng::new(seed),
            conditions,
            in_flight: BTreeMap::new(),
            sequence: 0,
            stats: NetworkStats::default(),
        }
    }

    /// Sends a datagram at `now`: it may be lost, duplicated and delayed.
    pub fn send(&mut self, now: Instant, datagram: Datagram) {
        self.stats.sent += 1;
        if self.rng.chance(self.conditions.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.conditions.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.duration_up_to(self.conditions.max_delay);
            self.sequence += 1;
            self.in_flight
                .insert((now + delay, self.sequence), datagram.clone());
        }
    }

    /// When the next datagram arrives.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.keys().next().map(|&(at, _)| at)
    }

    /// The next datagram due by `now`.
    pub fn deliver(&mut self, now: Instant) -> Option<Datagram> {
        let (&(at, sequence), _) = self.in_flight.iter().next()?;
        if at > now {
            return None;
        }
        self.stats.delivered += 1;
        self.in_flight.remove(&(at, sequence))
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}
