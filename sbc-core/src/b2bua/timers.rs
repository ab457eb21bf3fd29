//! The B2BUA's timer queue: deadlines of every call's timers, soonest first.

use std::collections::BTreeSet;
use std::time::Instant;

use super::call::{Call, CallRef, CallTimer};

/// Every armed call timer, ordered by deadline. Each call also lists its own armed timers
/// (`Call::timers`) so that they can be disarmed without a search.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    queue: BTreeSet<(Instant, CallRef, CallTimer)>,
}

impl TimerQueue {
    /// Arms `timer` of `call` at `at`, replacing an armed one of the same kind.
    pub(crate) fn arm(
        &mut self,
        call_ref: CallRef,
        call: &mut Call,
        timer: CallTimer,
        at: Instant,
    ) {
        self.disarm(call_ref, call, timer);
        self.queue.insert((at, call_ref, timer));
        call.timers.push((timer, at));
    }

    pub(crate) fn disarm(&mut self, call_ref: CallRef, call: &mut Call, timer: CallTimer) {
        call.timers.retain(|&(armed, at)| {
            if armed == timer {
                self.queue.remove(&(at, call_ref, armed));
                false
            } else {
                true
            }
        });
    }

    /// Disarms every timer of a call that is going away.
    pub(crate) fn disarm_all(&mut self, call_ref: CallRef, call: &mut Call) {
        for (timer, at) in call.timers.drain(..) {
            self.queue.remove(&(at, call_ref, timer));
        }
    }

    /// Takes the next timer due at `now`, removing it from its call's list.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(CallRef, CallTimer)> {
        let &(at, call_ref, timer) = self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.remove(&(at, call_ref, timer));
        Some((call_ref, timer))
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|&(at, _, _)| at)
    }
}

/// Forgets a fired timer in the call's own list.
pub(crate) fn fired(call: &mut Call, timer: CallTimer) {
    call.timers.retain(|&(armed, _)| armed != timer);
}
