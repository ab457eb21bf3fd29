//! The pool of RTP/RTCP port pairs (sans-IO: it hands out numbers, binding is the caller's).
//!
//! Pairs are handed out first-in first-out, so a released pair rests as long as possible
//! before it is reused (late packets of an ended call then rarely reach a new one).

use std::collections::VecDeque;

/// Free even RTP ports of `[first, first + 2 * count)`; each pair is (rtp, rtp + 1).
#[derive(Debug)]
pub struct PortPool {
    first: u32,
    free: VecDeque<u16>,
    in_use: Vec<bool>,
}

impl PortPool {
    /// A pool of `count` pairs starting at the even port `first`.
    pub fn new(first: u32, count: usize) -> PortPool {
        let free: VecDeque<u16> = (0..count)
            .filter_map(|i| u16::try_from(first + 2 * i as u32).ok())
            .filter(|rtp| *rtp < u16::MAX)
            .collect();
        let in_use = vec![false; free.len()];
        PortPool {
            first,
            free,
            in_use,
        }
    }

    /// Total number of pairs.
    pub fn capacity(&self) -> usize {
        self.in_use.len()
    }

    /// Number of free pairs.
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// Takes the pair that has been free the longest; returns its RTP (even) port.
    pub fn take(&mut self) -> Option<u16> {
        let port = self.free.pop_front()?;
        if let Some(slot) = self.slot(port).and_then(|i| self.in_use.get_mut(i)) {
            *slot = true;
        }
        Some(port)
    }

    /// Puts a pair back (at the end of the queue). Ports not taken from this pool, or already
    /// free, are ignored, so a double release cannot corrupt the pool.
    pub fn put(&mut self, rtp_port: u16) {
        let Some(slot) = self.slot(rtp_port).and_then(|i| self.in_use.get_mut(i)) else {
            return;
        };
        if *slot {
            *slot = false;
            self.free.push_back(rtp_port);
        }
    }

    /// Returns a pair that could not be bound (someone else holds a port of it) to the end of
    /// the queue, still free: it is retried after every other pair.
    pub fn skip(&mut self, rtp_port: u16) {
        self.put(rtp_port);
    }

    fn slot(&self, port: u16) -> Option<usize> {
        let port = u32::from(port);
        if port < self.first || !(port - self.first).is_multiple_of(2) {
            return None;
        }
        Some(((port - self.first) / 2) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_even_ports_fifo_and_ignores_double_release() {
        let mut pool = PortPool::new(30000, 3);
        assert_eq!(pool.capacity(), 3);
        let a = pool.take();
        let b = pool.take();
        assert_eq!((a, b), (Some(30000), Some(30002)));
        pool.put(30000);
        pool.put(30000);
        pool.put(30001);
        pool.put(12);
        assert_eq!(pool.free(), 2);
        assert_eq!(pool.take(), Some(30004));
        assert_eq!(pool.take(), Some(30000));
        assert_eq!(pool.take(), None);
    }

    #[test]
    fn never_hands_out_a_pair_past_the_last_port() {
        let pool = PortPool::new(65532, 5);
        assert_eq!(pool.capacity(), 2);
    }
}
