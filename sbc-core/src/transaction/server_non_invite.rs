//! The non-INVITE server transaction (RFC 3261 §17.2.2).
//!
//! ```text
//!  start: request passed to the TU, arm Timer Unanswered
//!  Trying ──TU 1xx──▶ Proceeding ──TU 200-699──▶ Completed ──Timer J──▶ Terminated
//!    └──────────TU 200-699──────────────────────────▲
//!  Trying, Proceeding ──Timer Unanswered (64·T1, the TU never answered)──▶ Terminated
//! ```
//!
//! Request retransmissions are absorbed: ignored in `Trying`, answered with the last
//! provisional in `Proceeding` and with the final response in `Completed`.

use bytes::Bytes;

use super::TransactionState;
use super::error::SendError;
use super::outbox::{Notice, Outbox};
use super::timer::Timer;
use crate::sip::StatusCode;

#[derive(Debug)]
enum State {
    /// The TU has the request and has not answered.
    Trying,
    /// The TU sent a provisional response (the last one is kept for retransmissions).
    Proceeding {
        provisional: Bytes,
    },
    /// The TU sent the final response; it answers retransmissions until Timer J.
    Completed {
        response: Bytes,
    },
    Terminated,
}

/// A non-INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    state: State,
}

impl ServerNonInvite {
    pub(crate) fn start(out: &mut Outbox) -> ServerNonInvite {
        out.arm(Timer::Unanswered);
        ServerNonInvite {
            state: State::Trying,
        }
    }

    pub(crate) fn state(&self) -> TransactionState {
        match self.state {
            State::Trying => TransactionState::Trying,
            State::Proceeding { .. } => TransactionState::Proceeding,
            State::Completed { .. } => TransactionState::Completed,
            State::Terminated => TransactionState::Terminated,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        matches!(self.state, State::Terminated)
    }

    /// A retransmission of the request arrived.
    pub(crate) fn on_retransmission(&mut self, out: &mut Outbox) {
        match &self.state {
            State::Proceeding { provisional } => out.send(provisional.clone()),
            State::Completed { response } => out.send(response.clone()),
            State::Trying | State::Terminated => {}
        }
    }

    /// The TU sends a response, printed as `bytes`.
    pub(crate) fn on_tu_response(
        &mut self,
        status: StatusCode,
        bytes: Bytes,
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        match &self.state {
            State::Completed { .. } | State::Terminated => {
                return Err(SendError::FinalResponseAlreadySent);
            }
            State::Trying | State::Proceeding { .. } => {}
        }
        out.send(bytes.clone());
        if status.is_final() {
            out.disarm(Timer::Unanswered);
        }
        self.state = if status.is_provisional() {
            State::Proceeding { provisional: bytes }
        } else if out.arm_absorption(Timer::J) {
            State::Completed { response: bytes }
        } else {
            State::Terminated
        };
        Ok(())
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, out: &mut Outbox) {
        match (&self.state, timer) {
            (State::Completed { .. }, Timer::J) => self.state = State::Terminated,
            (State::Trying | State::Proceeding { .. }, Timer::Unanswered) => {
                out.notify(Notice::TimedOut(Timer::Unanswered));
                self.state = State::Terminated;
            }
            _ => {}
        }
    }

    /// The transport could not send a response (§17.2.4).
    pub(crate) fn on_transport_error(&mut self, out: &mut Outbox) {
        if !self.is_terminated() {
            out.notify(Notice::TransportError);
        }
        self.state = State::Terminated;
    }
}
