//! How a call's life is bounded and ends: the wait for the ACK of a 2xx, RFC 4028 session
//! timers, BYE, hang-up, and the release of everything it held.

use std::time::{Duration, Instant};

use super::call::{AckWait, Call, CallRef, CallTimer, Phase, Role};
use super::headers::Body;
use super::{B2bua, add_product, count};
use crate::media::Leg;
use crate::sip::{HeaderName, Headers, Method, Request, Response, StatusCode};
use crate::transaction::{Reliability, TransactionId, TransactionLayer};

/// RFC 4028 intervals past this are treated as this (a day).
const LONGEST_SESSION_INTERVAL: u64 = 86_400;

impl B2bua {
    /// BYE from `leg`: `200`, BYE to the other leg, the call ends.
    pub(super) fn on_bye(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        leg: Leg,
        request: &Request,
    ) {
        let mut ok = request.make_response(StatusCode::OK, None, None);
        add_product(&self.config, &mut ok.headers, HeaderName::Server);
        self.respond(now, layer, ok);
        let how = match leg {
            Leg::A => "bye_from_a",
            Leg::B => "bye_from_b",
        };
        match call.phase {
            Phase::Confirmed => {
                self.ack_pending_other(layer, call);
                self.send_bye(now, layer, call_ref, call, leg.other());
                self.finish(now, layer, call_ref, call, how);
            }
            Phase::Setup { .. } => {
                // The caller gave up on its early dialog, or the callee hung up early.
                let status = match leg {
                    Leg::A => StatusCode::REQUEST_TERMINATED,
                    Leg::B => StatusCode::TEMPORARILY_UNAVAILABLE,
                };
                self.abandon_setup(now, layer, call_ref, call, status, how);
            }
            Phase::Cancelling { .. } | Phase::Ended => {}
        }
    }

    /// Ends a confirmed call with BYE on both legs (media timeout, session expiry, a leg
    /// that failed). A call still in setup is abandoned with `408`.
    pub(super) fn hang_up(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        how: &'static str,
    ) {
        match call.phase {
            Phase::Confirmed => {
                self.ack_pending_other(layer, call);
                self.send_bye(now, layer, call_ref, call, Leg::A);
                self.send_bye(now, layer, call_ref, call, Leg::B);
                self.finish(now, layer, call_ref, call, how);
            }
            Phase::Setup { .. } => {
                self.abandon_setup(now, layer, call_ref, call, StatusCode::REQUEST_TIMEOUT, how);
            }
            Phase::Cancelling { .. } | Phase::Ended => {}
        }
    }

    /// When the other leg's 2xx awaits an ACK that was to carry an answer, ACK it now
    /// without one: the call is ending.
    fn ack_pending_other(&mut self, layer: &mut TransactionLayer, call: &mut Call) {
        if let Some(wait) = call.ack_wait.take()
            && let Some(other_seq) = wait.ack_other
        {
            self.send_ack(layer, call, wait.leg.other(), other_seq, Body::Empty);
        }
    }

    /// The call is over: media released, pending relayed requests answered, timers off.
    pub(super) fn finish(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        how: &'static str,
    ) {
        call.phase = Phase::Ended;
        call.ack_wait = None;
        self.drop_held_answer(now, layer, call);
        self.release_slot(now, call, how);
        self.release_media(&mut call.media);
        self.timers.disarm_all(call_ref, call);
        self.arm_reap(now, layer, call_ref, call);
        for exchange in std::mem::take(&mut call.exchanges) {
            let status = if exchange.method == Method::Invite {
                StatusCode::REQUEST_TERMINATED
            } else {
                StatusCode::CALL_DOES_NOT_EXIST
            };
            let response = exchange.request.make_response(status, None, None);
            self.respond(now, layer, response);
        }
    }

    /// Arms the call's watchdog (see [`B2bua::reap`]).
    pub(super) fn arm_reap(
        &mut self,
        now: Instant,
        layer: &TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
    ) {
        let after = layer
            .config()
            .timers
            .transaction_timeout()
            .saturating_mul(2);
        self.arm(call_ref, call, CallTimer::Reap, now + after);
    }

    /// The watchdog: forgets the call's transactions that the layer no longer has, and
    /// treats an attempt, a caller's INVITE or a relayed request whose transaction is gone
    /// without a word (its report lost to a full event queue) as timed out. Looks again
    /// later while the call lives.
    fn reap(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
    ) {
        let transactions = &mut self.transactions;
        let mut live_roles = Vec::with_capacity(call.transactions.len());
        call.transactions.retain(|id| {
            let alive = layer.state(*id).is_some();
            match transactions.get(id) {
                Some(&(_, role)) if alive => live_roles.push((*id, role)),
                _ => {
                    transactions.remove(id);
                }
            }
            alive
        });
        let live = |wanted: &dyn Fn(TransactionId, Role) -> bool| {
            live_roles.iter().any(|&(id, role)| wanted(id, role))
        };
        match &call.phase {
            Phase::Setup { attempt, .. } => {
                let attempt_id = attempt.transaction;
                if !live(&|id, _| id == attempt_id) {
                    self.on_attempt_failed(
                        now,
                        layer,
                        call_ref,
                        call,
                        StatusCode::REQUEST_TIMEOUT,
                        None,
                    );
                } else if !live(&|_, role| role == Role::CallerInvite) {
                    self.abandon_setup(
                        now,
                        layer,
                        call_ref,
                        call,
                        StatusCode::REQUEST_TIMEOUT,
                        "caller_unreachable",
                    );
                }
            }
            Phase::Cancelling { attempt, .. } => {
                let attempt_id = attempt.transaction;
                if !live(&|id, _| id == attempt_id) {
                    call.phase = Phase::Ended;
                }
            }
            Phase::Confirmed => {
                let stale: Vec<u32> = call
                    .exchanges
                    .iter()
                    .map(|exchange| exchange.id)
                    .filter(|&exchange| !live(&|_, role| role == Role::ExchangeClient(exchange)))
                    .collect();
                for id in stale {
                    if let Some(exchange) = call.take_exchange(id) {
                        let response =
                            exchange
                                .request
                                .make_response(StatusCode::REQUEST_TIMEOUT, None, None);
                        self.respond(now, layer, response);
                    }
                }
            }
            Phase::Ended => {}
        }
        if !(call.is_ended() && call.transactions.is_empty()) {
            self.arm_reap(now, layer, call_ref, call);
        }
    }

    /// The call stops counting toward the call limit; its record is written.
    pub(super) fn release_slot(&mut self, now: Instant, call: &mut Call, how: &'static str) {
        if call.holds_slot {
            call.holds_slot = false;
            call.limit_slot = None;
            self.active = self.active.saturating_sub(1);
            count(&mut self.stats.ended, how);
            self.record_call(now, call, how);
        }
    }

    /// Retransmits the 2xx `response` sent on `leg` until its ACK comes (RFC 6026 §7.1),
    /// and gives up after 64·T1.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn wait_for_ack(
        &mut self,
        now: Instant,
        layer: &TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        leg: Leg,
        seq: u32,
        response: Response,
        ack_other: Option<u32>,
    ) {
        let timers = layer.config().timers;
        let give_up = now + timers.transaction_timeout();
        call.ack_wait = Some(AckWait {
            leg,
            seq,
            response,
            interval: timers.t1,
            give_up,
            ack_other,
        });
        if call.leg(leg).peer.reliability == Reliability::Unreliable {
            self.arm(call_ref, call, CallTimer::Retransmit2xx, now + timers.t1);
        }
        self.arm(call_ref, call, CallTimer::AckTimeout, give_up);
    }

    /// RFC 4028: a 2xx that sets `Session-Expires` (re)starts the call's session timer; a
    /// 2xx without one stops it.
    pub(super) fn supervise_session(
        &mut self,
        now: Instant,
        call_ref: CallRef,
        call: &mut Call,
        headers: &Headers,
    ) {
        match session_interval(headers) {
            Some(interval) => {
                call.session_interval = Some(interval);
                self.arm(call_ref, call, CallTimer::SessionExpires, now + interval);
            }
            None => {
                call.session_interval = None;
                self.timers
                    .disarm(call_ref, call, CallTimer::SessionExpires);
            }
        }
    }

    /// One of the call's timers fired.
    pub(super) fn on_call_timer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        timer: CallTimer,
    ) {
        match timer {
            CallTimer::Retransmit2xx => {
                let t2 = layer.config().timers.t2;
                let Some(wait) = call.ack_wait.as_mut() else {
                    return;
                };
                if layer
                    .handle_send_response(now, wait.response.clone())
                    .is_err()
                {
                    return;
                }
                wait.interval = wait.interval.saturating_mul(2).min(t2);
                let next = now + wait.interval;
                if next < wait.give_up {
                    self.arm(call_ref, call, CallTimer::Retransmit2xx, next);
                }
            }
            CallTimer::AckTimeout => {
                if call.ack_wait.is_some() {
                    self.hang_up(now, layer, call_ref, call, "ack_timeout");
                }
            }
            CallTimer::SessionExpires => {
                self.hang_up(now, layer, call_ref, call, "session_expired")
            }
            CallTimer::MaxDuration => self.hang_up(now, layer, call_ref, call, "max_duration"),
            CallTimer::Reap => self.reap(now, layer, call_ref, call),
            CallTimer::RetransmitProvisional | CallTimer::PrackTimeout => {
                self.on_reliable_timer(now, layer, call_ref, call, timer);
            }
        }
    }
}

/// The `Session-Expires` delta-seconds of a message (RFC 4028 §4), if any.
fn session_interval(headers: &Headers) -> Option<Duration> {
    let value = headers.get(&HeaderName::SessionExpires)?;
    let delta = value.split(|&b| b == b';').next()?.trim_ascii();
    let seconds: u64 = std::str::from_utf8(delta).ok()?.parse().ok()?;
    (seconds > 0).then(|| Duration::from_secs(seconds.min(LONGEST_SESSION_INTERVAL)))
}
