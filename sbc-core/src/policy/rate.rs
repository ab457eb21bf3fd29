//! Token buckets, per source and per kind of request, in bounded memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second, sustained (0: the bucket never refills, so `burst` is all a
    /// source ever gets; use a large value for "unlimited").
    pub per_second: u32,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

/// A token bucket counted in thousandths of a request.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    milli_tokens: u64,
    last: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            milli_tokens: u64::from(rate.burst) * 1000,
            last: now,
        }
    }

    fn take(&mut self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        let refill = elapsed.as_micros() * u128::from(rate.per_second) / 1000;
        let cap = u64::from(rate.burst) * 1000;
        self.milli_tokens = cap.min(
            self.milli_tokens
                .saturating_add(u64::try_from(refill).unwrap_or(u64::MAX)),
        );
        self.last = now;
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

/// The kinds of traffic with budgets of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    Register,
    Invite,
    /// Every other request, and responses.
    Other,
}

/// The budgets of one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub register: Rate,
    pub invite: Rate,
    pub other: Rate,
}

impl RateLimits {
    fn rate(&self, budget: Budget) -> Rate {
        match budget {
            Budget::Register => self.register,
            Budget::Invite => self.invite,
            Budget::Other => self.other,
        }
    }
}

impl Default for RateLimits {
    /// Generous for one phone or a small PBX, tight for a scanner.
    fn default() -> RateLimits {
        RateLimits {
            register: Rate {
                per_second: 10,
                burst: 40,
            },
            invite: Rate {
                per_second: 50,
                burst: 100,
            },
            other: Rate {
                per_second: 200,
                burst: 400,
            },
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct SourceBuckets {
    register: Bucket,
    invite: Bucket,
    other: Bucket,
    last_seen: Instant,
}

/// Per-source buckets for at most `capacity` sources. Sources idle for longer than it
/// takes a bucket to fill up again are forgotten (a full bucket is what a new source
/// gets anyway); when the table is full with busy sources, every further source shares
/// one overflow bucket set, so memory stays bounded and a spoofed flood cannot earn
/// fresh budgets by changing its address.
#[derive(Debug)]
pub struct SourceLimiter {
    limits: RateLimits,
    capacity: usize,
    sources: HashMap<IpAddr, SourceBuckets>,
    overflow: SourceBuckets,
    last_sweep: Instant,
}

impl SourceLimiter {
    pub fn new(limits: RateLimits, capacity: usize, now: Instant) -> SourceLimiter {
        SourceLimiter {
            overflow: fresh(limits, now),
            limits,
            capacity: capacity.max(1),
            sources: HashMap::new(),
            last_sweep: now,
        }
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Takes one token of `budget` for `source`; `false` when it has none left.
    pub fn take(&mut self, now: Instant, source: IpAddr, budget: Budget) -> bool {
        if !self.sources.contains_key(&source) && self.sources.len() >= self.capacity {
            self.sweep(now);
        }
        let limits = self.limits;
        let buckets = if self.sources.len() < self.capacity || self.sources.contains_key(&source) {
            self.sources
                .entry(source)
                .or_insert_with(|| fresh(limits, now))
        } else {
            &mut self.overflow
        };
        buckets.last_seen = now;
        let rate = limits.rate(budget);
        let bucket = match budget {
            Budget::Register => &mut buckets.register,
            Budget::Invite => &mut buckets.invite,
            Budget::Other => &mut buckets.other,
        };
        bucket.take(rate, now)
    }

    /// Forgets sources idle long enough for their buckets to be full again (at most once
    /// a second, so a full table under attack is not swept on every packet).
    fn sweep(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) < Duration::from_secs(1) {
            return;
        }
        self.last_sweep = now;
        let idle = self.refill_time();
        self.sources
            .retain(|_, buckets| now.saturating_duration_since(buckets.last_seen) < idle);
    }

    /// The longest time an empty bucket takes to fill.
    fn refill_time(&self) -> Duration {
        [self.limits.register, self.limits.invite, self.limits.other]
            .iter()
            .map(|rate| {
                if rate.per_second == 0 {
                    Duration::from_secs(3600)
                } else {
                    Duration::from_millis(u64::from(rate.burst) * 1000 / u64::from(rate.per_second))
                }
            })
            .max()
            .unwrap_or_default()
            .max(Duration::from_secs(1))
    }
}

fn fresh(limits: RateLimits, now: Instant) -> SourceBuckets {
    SourceBuckets {
        register: Bucket::full(limits.register, now),
        invite: Bucket::full(limits.invite, now),
        other: Bucket::full(limits.other, now),
        last_seen: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let start = Instant::now();
        let limits = RateLimits {
            register: Rate {
                per_second: 2,
                burst: 3,
            },
            ..RateLimits::default()
        };
        let mut limiter = SourceLimiter::new(limits, 10, start);
        let passed = (0..10)
            .filter(|_| limiter.take(start, ip(1), Budget::Register))
            .count();
        assert_eq!(passed, 3);
        // Budgets are separate.
        assert!(limiter.take(start, ip(1), Budget::Invite));
        // Half a second refills one.
        let later = start + Duration::from_millis(500);
        assert!(limiter.take(later, ip(1), Budget::Register));
        assert!(!limiter.take(later, ip(1), Budget::Register));
        // Other sources are not affected.
        assert!(limiter.take(later, ip(2), Budget::Register));
    }

    #[test]
    fn the_table_is_bounded_and_overflow_shares_one_budget() {
        let start = Instant::now();
        let limits = RateLimits {
            invite: Rate {
                per_second: 1,
                burst: 2,
            },
            ..RateLimits::default()
        };
        let mut limiter = SourceLimiter::new(limits, 4, start);
        for last in 0..4 {
            assert!(limiter.take(start, ip(last), Budget::Invite));
        }
        // New sources beyond the table share the overflow buckets.
        let shared = (10..20)
            .filter(|&last| limiter.take(start, ip(last), Budget::Invite))
            .count();
        assert_eq!(shared, 2);
        assert_eq!(limiter.len(), 4);
        // Once the tracked sources go idle they are swept and newcomers get their own.
        let later = start + Duration::from_secs(10);
        assert!(limiter.take(later, ip(30), Budget::Invite));
        assert!(limiter.len() <= 4);
    }
}
