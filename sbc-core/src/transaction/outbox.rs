//! What a state machine asks its layer to do in answer to one input.
//!
//! Every machine method takes an [`Outbox`] and records in it the messages to send (always
//! to the transaction's own peer), the notices for the TU, and the timers to arm or disarm.
//! The layer empties it after each call and turns its contents into [`super::Transmit`]s,
//! [`super::Event`]s and timer-queue entries. The outbox is owned by the layer and reused,
//! so a machine step allocates nothing of its own.

use std::time::Duration;

use bytes::Bytes;

use super::Peer;
use super::timer::{Reliability, Timer, TimerConfig};
use crate::sip::{Request, Response};

/// Something a machine tells its TU. The layer adds the transaction id and the peer.
#[derive(Debug)]
pub(crate) enum Notice {
    /// A response for a client transaction's TU.
    Response(Response),
    /// An ACK for a 2xx that reached an INVITE server transaction in `Accepted`, and
    /// where it came from.
    Ack(Request, Peer),
    /// A timer that ends the transaction in failure (B, F, H) or asks the TU to act (C).
    TimedOut(Timer),
    /// The transport reported that a message of this transaction could not be sent.
    TransportError,
}

/// The scratch record of one machine step.
#[derive(Debug)]
pub(crate) struct Outbox {
    config: TimerConfig,
    reliability: Reliability,
    pub(crate) sends: Vec<Bytes>,
    pub(crate) notices: Vec<Notice>,
    pub(crate) arms: Vec<(Timer, Duration)>,
    pub(crate) disarms: Vec<Timer>,
}

impl Outbox {
    pub(crate) fn new(config: TimerConfig) -> Outbox {
        Outbox {
            config,
            reliability: Reliability::Unreliable,
            sends: Vec::with_capacity(2),
            notices: Vec::with_capacity(2),
            arms: Vec::with_capacity(3),
            disarms: Vec::with_capacity(3),
        }
    }

    /// Empties the outbox for a step of a transaction on a hop of this reliability.
    pub(crate) fn begin(&mut self, reliability: Reliability) {
        self.reliability = reliability;
        self.sends.clear();
        self.notices.clear();
        self.arms.clear();
        self.disarms.clear();
    }

    pub(crate) fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// Sends `bytes` to the transaction's peer.
    pub(crate) fn send(&mut self, bytes: Bytes) {
        self.sends.push(bytes);
    }

    pub(crate) fn notify(&mut self, notice: Notice) {
        self.notices.push(notice);
    }

    /// Arms `timer` for its table duration and returns that duration, or returns `None`
    /// and arms nothing when the timer does not run on this hop (a retransmission timer on
    /// a reliable hop, a disabled Timer C).
    pub(crate) fn arm(&mut self, timer: Timer) -> Option<Duration> {
        let duration = self.config.duration(timer, self.reliability)?;
        self.arms.push((timer, duration));
        Some(duration)
    }

    /// Arms `timer` for `duration` (a retransmission timer's next interval).
    pub(crate) fn arm_for(&mut self, timer: Timer, duration: Duration) {
        self.arms.push((timer, duration));
    }

    /// Arms the retransmission timer `timer` after it has fired with interval `current`,
    /// returning the new interval.
    pub(crate) fn rearm_retransmission(&mut self, timer: Timer, current: Duration) -> Duration {
        let next = self.config.next_interval(timer, current);
        self.arms.push((timer, next));
        next
    }

    pub(crate) fn disarm(&mut self, timer: Timer) {
        self.disarms.push(timer);
    }

    /// Arms an absorption timer (D, I, J, K). Returns `false` when its duration is zero on
    /// this hop: the machine then goes straight to `Terminated`, as RFC 3261 asks for
    /// reliable transports.
    pub(crate) fn arm_absorption(&mut self, timer: Timer) -> bool {
        match self.config.duration(timer, self.reliability) {
            Some(duration) if !duration.is_zero() => {
                self.arms.push((timer, duration));
                true
            }
            _ => false,
        }
    }
}
