//! Packet index estimation and the replay window (RFC 3711 §3.3.1, §3.3.2, Appendix A).

use super::SrtpError;

/// Packets tracked behind the highest index (RFC 3711 asks for at least 64).
pub const REPLAY_WINDOW: u64 = 128;

/// The highest index seen (authenticated) and which of the `REPLAY_WINDOW` indices up to
/// it were seen. Bit `n` of `seen` stands for `highest - n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    highest: u64,
    seen: u128,
}

impl ReplayWindow {
    /// A window whose first index is `index`.
    pub(crate) fn starting_at(index: u64) -> ReplayWindow {
        ReplayWindow {
            highest: index,
            seen: 1,
        }
    }

    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `index` may be accepted (not seen, not too old).
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= REPLAY_WINDOW {
            return Err(SrtpError::ReplayOld);
        }
        if self.seen & (1u128 << behind) != 0 {
            return Err(SrtpError::Replayed);
        }
        Ok(())
    }

    /// Records `index` as seen (after it authenticated).
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            self.seen = if ahead >= REPLAY_WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.highest = index;
        } else {
            let behind = self.highest - index;
            if behind < REPLAY_WINDOW {
                self.seen |= 1u128 << behind;
            }
        }
    }
}

/// The 48-bit SRTP index of a packet with sequence number `seq`, estimated from the highest
/// index seen (RFC 3711 §3.3.1 and Appendix A): the rollover counter is guessed as
/// ROC − 1, ROC or ROC + 1, whichever puts the packet closest to the highest index. `None`
/// for a packet from before index 0 (ROC would be −1), or beyond ROC 2^32 − 1.
pub(crate) fn estimate_index(highest: u64, seq: u16) -> Option<u64> {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let guess = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    (guess <= u64::from(u32::MAX)).then_some(guess << 16 | u64::from(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accepts_each_index_once_and_forgets_old_ones() {
        let mut w = ReplayWindow::starting_at(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(999), Ok(()));
        w.accept(999);
        assert_eq!(w.check(999), Err(SrtpError::Replayed));
        w.accept(1005);
        assert_eq!(w.highest(), 1005);
        for seen in [999, 1000, 1005] {
            assert_eq!(w.check(seen), Err(SrtpError::Replayed), "{seen}");
        }
        for fresh in [1001, 1002, 1003, 1004, 1006, 1005 - 127] {
            assert_eq!(w.check(fresh), Ok(()), "{fresh}");
        }
        assert_eq!(w.check(1005 - 128), Err(SrtpError::ReplayOld));
        w.accept(1005 + 500);
        assert_eq!(w.check(1005), Err(SrtpError::ReplayOld));
        assert_eq!(w.check(1504), Ok(()));
    }

    #[test]
    fn index_estimate_follows_wraps_both_ways() {
        // Around a wrap: 0xfff0 then 0x0005 is the next cycle; and back again.
        assert_eq!(estimate_index(0xfff0, 0x0005), Some(0x1_0005));
        assert_eq!(estimate_index(0x1_0005, 0xfff0), Some(0xfff0));
        assert_eq!(estimate_index(0x5_1000, 0x1010), Some(0x5_1010));
        assert_eq!(estimate_index(0x5_9000, 0x0100), Some(0x6_0100));
        // ROC 0: a packet "before" index 0 cannot exist.
        assert_eq!(estimate_index(0x0005, 0xfff0), None);
        assert_eq!(estimate_index(0xffff_ffff_9000, 0x0001), None);
    }
}
