//! The INVITE server transaction (RFC 3261 §17.2.1 as amended by RFC 6026 §7.1).
//!
//! ```text
//!  start: INVITE passed to the TU, arm the 200 ms Trying timer
//!  Proceeding ──TU 300-699──▶ Completed ──ACK──▶ Confirmed ──Timer I──▶ Terminated
//!      │                         └──Timer H (no ACK)──▶ Terminated (TU told)
//!      └──TU 2xx──▶ Accepted ──Timer L──▶ Terminated
//! ```
//!
//! INVITE retransmissions are absorbed in every state: answered with the last provisional
//! response in `Proceeding` (or `100 Trying` when the TU has sent none yet), with the final
//! response in `Completed`, and ignored afterwards. In `Accepted` the TU retransmits its
//! 2xx itself (the transaction sends each one) and ACKs reaching the transaction go to the
//! TU.

use std::time::Duration;

use bytes::Bytes;

use super::error::SendError;
use super::outbox::{Notice, Outbox};
use super::timer::Timer;
use super::{Peer, TransactionState};
use crate::sip::{Request, StatusCode};

/// The provisional response an INVITE retransmission is answered with.
#[derive(Debug)]
enum Provisional {
    /// The TU has sent none; `trying` is the `100 Trying` the transaction will send when
    /// the Trying timer fires or a retransmission arrives, whichever comes first.
    NotYetSent { trying: Bytes },
    /// The last provisional response sent.
    Sent { last: Bytes },
}

#[derive(Debug)]
enum State {
    Proceeding {
        provisional: Provisional,
    },
    /// A non-2xx final response was sent; it is retransmitted (Timer G, unreliable hops)
    /// until an ACK arrives or Timer H fires.
    Completed {
        response: Bytes,
        retransmit: Option<Duration>,
    },
    /// The ACK came; further ACKs are absorbed until Timer I.
    Confirmed,
    /// A 2xx was sent (RFC 6026); the TU retransmits it until Timer L.
    Accepted,
    Terminated,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerInvite {
    state: State,
}

impl ServerInvite {
    /// Starts in `Proceeding` with the `100 Trying` to send if the TU stays silent.
    pub(crate) fn start(trying: Bytes, out: &mut Outbox) -> ServerInvite {
        out.arm(Timer::Trying);
        out.arm(Timer::UnansweredInvite);
        ServerInvite {
            state: State::Proceeding {
                provisional: Provisional::NotYetSent { trying },
            },
        }
    }

    pub(crate) fn state(&self) -> TransactionState {
        match self.state {
            State::Proceeding { .. } => TransactionState::Proceeding,
            State::Completed { .. } => TransactionState::Completed,
            State::Confirmed => TransactionState::Confirmed,
            State::Accepted => TransactionState::Accepted,
            State::Terminated => TransactionState::Terminated,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        matches!(self.state, State::Terminated)
    }

    /// A retransmission of the INVITE arrived.
    pub(crate) fn on_retransmission(&mut self, out: &mut Outbox) {
        match &mut self.state {
            State::Proceeding { provisional } => {
                let last = match provisional {
                    Provisional::NotYetSent { trying } => {
                        out.disarm(Timer::Trying);
                        trying.clone()
                    }
                    Provisional::Sent { last } => last.clone(),
                };
                out.send(last.clone());
                *provisional = Provisional::Sent { last };
            }
            State::Completed { response, .. } => out.send(response.clone()),
            State::Confirmed | State::Accepted | State::Terminated => {}
        }
    }

    /// An ACK matched this transaction.
    pub(crate) fn on_ack(&mut self, ack: Request, source: Peer, out: &mut Outbox) {
        self.state = match std::mem::replace(&mut self.state, State::Terminated) {
            State::Completed { .. } => {
                out.disarm(Timer::G);
                out.disarm(Timer::H);
                if out.arm_absorption(Timer::I) {
                    State::Confirmed
                } else {
                    State::Terminated
                }
            }
            State::Accepted => {
                out.notify(Notice::Ack(ack, source));
                State::Accepted
            }
            // An ACK before any final response, or a retransmitted one, is absorbed.
            state => state,
        };
    }

    /// The TU sends a response, printed as `bytes`.
    pub(crate) fn on_tu_response(
        &mut self,
        status: StatusCode,
        bytes: Bytes,
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        match (&self.state, status.is_success()) {
            (State::Proceeding { .. }, _) => {}
            (State::Accepted, true) => {
                // RFC 6026 §7.1: the TU's 2xx retransmissions pass straight through.
                out.send(bytes);
                return Ok(());
            }
            _ => return Err(SendError::FinalResponseAlreadySent),
        }
        out.send(bytes.clone());
        if status.is_provisional() {
            out.disarm(Timer::Trying);
            self.state = State::Proceeding {
                provisional: Provisional::Sent { last: bytes },
            };
            return Ok(());
        }
        out.disarm(Timer::Trying);
        out.disarm(Timer::UnansweredInvite);
        self.state = if status.is_success() {
            out.arm(Timer::L);
            State::Accepted
        } else {
            let retransmit = out.arm(Timer::G);
            out.arm(Timer::H);
            State::Completed {
                response: bytes,
                retransmit,
            }
        };
        Ok(())
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, out: &mut Outbox) {
        self.state = match (std::mem::replace(&mut self.state, State::Terminated), timer) {
            (
                State::Proceeding {
                    provisional: Provisional::NotYetSent { trying },
                },
                Timer::Trying,
            ) => {
                out.send(trying.clone());
                State::Proceeding {
                    provisional: Provisional::Sent { last: trying },
                }
            }
            (
                State::Completed {
                    response,
                    retransmit: Some(interval),
                },
                Timer::G,
            ) => {
                out.send(response.clone());
                let next = out.rearm_retransmission(Timer::G, interval);
                State::Completed {
                    response,
                    retransmit: Some(next),
                }
            }
            (State::Completed { .. }, Timer::H) => {
                out.notify(Notice::TimedOut(Timer::H));
                State::Terminated
            }
            (State::Proceeding { .. }, Timer::UnansweredInvite) => {
                out.notify(Notice::TimedOut(Timer::UnansweredInvite));
                State::Terminated
            }
            (State::Confirmed, Timer::I) | (State::Accepted, Timer::L) => State::Terminated,
            (state, _) => state,
        };
    }

    /// The transport could not send a response (§17.2.4).
    pub(crate) fn on_transport_error(&mut self, out: &mut Outbox) {
        if !self.is_terminated() {
            out.notify(Notice::TransportError);
        }
        self.state = State::Terminated;
    }
}
