//! The INVITE client transaction (RFC 3261 §17.1.1 as amended by RFC 6026 §7.2), and the
//! ACK it builds for a non-2xx final response (§17.1.1.3).
//!
//! ```text
//!  start: send INVITE, arm A (unreliable) and B
//!  Calling ──1xx──▶ Proceeding ──300-699: send ACK──▶ Completed ──Timer D──▶ Terminated
//!    │                  │  └──────2xx──▶ Accepted ──Timer M──▶ Terminated
//!    │                  └──Timer C──▶ ProceedingPastTimerC ──Timer B──▶ Terminated
//!    ├──2xx / 300-699 as from Proceeding         (finals as from Proceeding)
//!    └──Timer B or transport error──▶ Terminated (TU told)
//! ```
//!
//! In `Accepted` every 2xx (retransmissions and other forks) goes to the TU, which sends
//! the ACK for 2xx itself. Timer C bounds `Proceeding` (each provisional restarts it):
//! when it fires the TU is told (it should send CANCEL) and Timer B is armed once more as
//! a grace period for the final response, which further provisionals do not extend; when
//! it fires, the transaction ends. With Timer C configured off, `Proceeding` lasts until a
//! final response (which the TU's CANCEL brings).

use std::time::Duration;

use bytes::Bytes;

use super::TransactionState;
use super::outbox::{Notice, Outbox};
use super::timer::Timer;
use crate::sip::{HeaderName, Headers, Method, Request, Response, Version};

#[derive(Debug)]
enum State {
    /// Waiting for any response. `retransmit` is the current Timer A interval (none on a
    /// reliable hop). The INVITE is kept to build the ACK for a non-2xx final response.
    Calling {
        invite: Box<Request>,
        retransmit: Option<Duration>,
    },
    /// A provisional response came; no more retransmissions. Timer C runs.
    Proceeding {
        invite: Box<Request>,
    },
    /// Timer C fired and the TU was told to cancel: Timer B gives the final response
    /// 64·T1 more, and provisional responses no longer extend the wait.
    ProceedingPastTimerC {
        invite: Box<Request>,
    },
    /// A non-2xx final response came and was acknowledged with `ack`; retransmissions of
    /// it are acknowledged again until Timer D.
    Completed {
        ack: Bytes,
    },
    /// A 2xx came (RFC 6026): further 2xx go to the TU until Timer M.
    Accepted,
    Terminated,
}

/// An INVITE client transaction: the INVITE as sent, and where it stands.
#[derive(Debug)]
pub(crate) struct ClientInvite {
    request: Bytes,
    state: State,
}

impl ClientInvite {
    /// Sends the INVITE (already printed as `request`) and arms Timers A and B.
    pub(crate) fn start(invite: Request, request: Bytes, out: &mut Outbox) -> ClientInvite {
        out.send(request.clone());
        let retransmit = out.arm(Timer::A);
        out.arm(Timer::B);
        ClientInvite {
            request,
            state: State::Calling {
                invite: Box::new(invite),
                retransmit,
            },
        }
    }

    pub(crate) fn state(&self) -> TransactionState {
        match self.state {
            State::Calling { .. } => TransactionState::Calling,
            State::Proceeding { .. } | State::ProceedingPastTimerC { .. } => {
                TransactionState::Proceeding
            }
            State::Completed { .. } => TransactionState::Completed,
            State::Accepted => TransactionState::Accepted,
            State::Terminated => TransactionState::Terminated,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        matches!(self.state, State::Terminated)
    }

    /// A response matched this transaction.
    pub(crate) fn on_response(&mut self, response: Response, out: &mut Outbox) {
        let status = response.status;
        self.state = match std::mem::replace(&mut self.state, State::Terminated) {
            State::ProceedingPastTimerC { invite } if status.is_provisional() => {
                out.notify(Notice::Response(response));
                State::ProceedingPastTimerC { invite }
            }
            State::Calling { invite, .. } | State::Proceeding { invite }
                if status.is_provisional() =>
            {
                out.disarm(Timer::A);
                out.disarm(Timer::B);
                // Timer C restarts with every provisional response (§16.7 item 2).
                out.disarm(Timer::C);
                out.arm(Timer::C);
                out.notify(Notice::Response(response));
                State::Proceeding { invite }
            }
            State::Calling { .. }
            | State::Proceeding { .. }
            | State::ProceedingPastTimerC { .. }
                if status.is_success() =>
            {
                disarm_waiting_timers(out);
                out.notify(Notice::Response(response));
                out.arm(Timer::M);
                State::Accepted
            }
            State::Calling { invite, .. }
            | State::Proceeding { invite }
            | State::ProceedingPastTimerC { invite } => {
                disarm_waiting_timers(out);
                let ack = build_ack(&invite, &response).to_bytes();
                out.send(ack.clone());
                out.notify(Notice::Response(response));
                if out.arm_absorption(Timer::D) {
                    State::Completed { ack }
                } else {
                    State::Terminated
                }
            }
            State::Completed { ack } => {
                // A retransmitted non-2xx final response is acknowledged again and
                // absorbed; anything else is dropped.
                if status.is_final() && !status.is_success() {
                    out.send(ack.clone());
                }
                State::Completed { ack }
            }
            State::Accepted => {
                if status.is_success() {
                    out.notify(Notice::Response(response));
                }
                State::Accepted
            }
            State::Terminated => State::Terminated,
        };
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, out: &mut Outbox) {
        self.state = match (std::mem::replace(&mut self.state, State::Terminated), timer) {
            (
                State::Calling {
                    invite,
                    retransmit: Some(interval),
                },
                Timer::A,
            ) => {
                out.send(self.request.clone());
                let next = out.rearm_retransmission(Timer::A, interval);
                State::Calling {
                    invite,
                    retransmit: Some(next),
                }
            }
            (State::Calling { .. } | State::ProceedingPastTimerC { .. }, Timer::B) => {
                out.notify(Notice::TimedOut(Timer::B));
                State::Terminated
            }
            (State::Proceeding { invite }, Timer::C) => {
                out.notify(Notice::TimedOut(Timer::C));
                out.arm(Timer::B);
                State::ProceedingPastTimerC { invite }
            }
            (State::Completed { .. }, Timer::D) | (State::Accepted, Timer::M) => State::Terminated,
            (state, _) => state,
        };
    }

    /// The transport could not send a message of this transaction (§17.1.4).
    pub(crate) fn on_transport_error(&mut self, out: &mut Outbox) {
        if !self.is_terminated() {
            out.notify(Notice::TransportError);
        }
        self.state = State::Terminated;
    }
}

fn disarm_waiting_timers(out: &mut Outbox) {
    out.disarm(Timer::A);
    out.disarm(Timer::B);
    out.disarm(Timer::C);
}

/// Builds the ACK for a non-2xx final `response` to `invite` (RFC 3261 §17.1.1.3): the
/// INVITE's Request-URI, Call-ID, From, top Via, Route set and CSeq number with method
/// ACK; the To of the response; Max-Forwards 70 and no body (the printer adds
/// `Content-Length: 0`).
pub(crate) fn build_ack(invite: &Request, response: &Response) -> Request {
    let copy = |headers: &mut Headers, name: HeaderName, from: &Headers| {
        if let Some(value) = from.get(&name) {
            headers.push(name, value.clone());
        }
    };
    let mut headers = Headers::with_capacity(8);
    if let Ok(via) = invite.headers.top_via() {
        headers.push(HeaderName::Via, via.to_string());
    }
    headers.push(HeaderName::MaxForwards, "70");
    for route in invite.headers.get_all(&HeaderName::Route) {
        headers.push(HeaderName::Route, route.clone());
    }
    copy(&mut headers, HeaderName::From, &invite.headers);
    copy(&mut headers, HeaderName::To, &response.headers);
    copy(&mut headers, HeaderName::CallId, &invite.headers);
    let seq = invite.headers.cseq().map_or(0, |cseq| cseq.seq);
    headers.push(HeaderName::CSeq, format!("{seq} ACK"));
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: Version::Sip2,
        headers,
        body: Bytes::new(),
    }
}
