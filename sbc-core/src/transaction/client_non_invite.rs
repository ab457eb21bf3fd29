//! The non-INVITE client transaction (RFC 3261 §17.1.2).
//!
//! ```text
//!  start: send request, arm E (unreliable) and F
//!  Trying ──1xx──▶ Proceeding ──200-699──▶ Completed ──Timer K──▶ Terminated
//!    │                  │                      ▲
//!    └──────200-699─────┼──────────────────────┘
//!    └──Timer F or transport error──▶ Terminated (TU told)
//! ```
//!
//! Timer E fires every T1, 2·T1 … up to T2 in `Trying`, and every T2 in `Proceeding`.

use std::time::Duration;

use bytes::Bytes;

use super::TransactionState;
use super::outbox::{Notice, Outbox};
use super::timer::Timer;
use crate::sip::Response;

#[derive(Debug)]
enum State {
    /// No response yet. `retransmit` is the current Timer E interval (none on a reliable
    /// hop).
    Trying {
        retransmit: Option<Duration>,
    },
    /// A provisional response came; retransmissions continue every T2.
    Proceeding {
        retransmit: Option<Duration>,
    },
    /// A final response came; response retransmissions are absorbed until Timer K.
    Completed,
    Terminated,
}

/// A non-INVITE client transaction: the request as sent, and where it stands.
#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    request: Bytes,
    state: State,
}

impl ClientNonInvite {
    /// Sends the request and arms Timers E and F.
    pub(crate) fn start(request: Bytes, out: &mut Outbox) -> ClientNonInvite {
        out.send(request.clone());
        let retransmit = out.arm(Timer::E);
        out.arm(Timer::F);
        ClientNonInvite {
            request,
            state: State::Trying { retransmit },
        }
    }

    pub(crate) fn state(&self) -> TransactionState {
        match self.state {
            State::Trying { .. } => TransactionState::Trying,
            State::Proceeding { .. } => TransactionState::Proceeding,
            State::Completed => TransactionState::Completed,
            State::Terminated => TransactionState::Terminated,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        matches!(self.state, State::Terminated)
    }

    /// A response matched this transaction.
    pub(crate) fn on_response(&mut self, response: Response, out: &mut Outbox) {
        let provisional = response.status.is_provisional();
        self.state = match std::mem::replace(&mut self.state, State::Terminated) {
            State::Trying { retransmit } | State::Proceeding { retransmit } if provisional => {
                out.notify(Notice::Response(response));
                State::Proceeding { retransmit }
            }
            State::Trying { .. } | State::Proceeding { .. } => {
                out.disarm(Timer::E);
                out.disarm(Timer::F);
                out.notify(Notice::Response(response));
                if out.arm_absorption(Timer::K) {
                    State::Completed
                } else {
                    State::Terminated
                }
            }
            // Retransmitted or late responses are absorbed.
            state @ (State::Completed | State::Terminated) => state,
        };
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, out: &mut Outbox) {
        self.state = match (std::mem::replace(&mut self.state, State::Terminated), timer) {
            (
                State::Trying {
                    retransmit: Some(interval),
                },
                Timer::E,
            ) => {
                out.send(self.request.clone());
                let next = out.rearm_retransmission(Timer::E, interval);
                State::Trying {
                    retransmit: Some(next),
                }
            }
            (
                State::Proceeding {
                    retransmit: Some(_),
                },
                Timer::E,
            ) => {
                // RFC 3261 §17.1.2.2: in Proceeding, retransmit every T2.
                out.send(self.request.clone());
                let t2 = out.config().t2;
                out.arm_for(Timer::E, t2);
                State::Proceeding {
                    retransmit: Some(t2),
                }
            }
            (State::Trying { .. } | State::Proceeding { .. }, Timer::F) => {
                out.notify(Notice::TimedOut(Timer::F));
                State::Terminated
            }
            (State::Completed, Timer::K) => State::Terminated,
            (state, _) => state,
        };
    }

    /// The transport could not send the request: the transaction fails (§17.1.4).
    pub(crate) fn on_transport_error(&mut self, out: &mut Outbox) {
        if !self.is_terminated() {
            out.notify(Notice::TransportError);
        }
        self.state = State::Terminated;
    }
}
