//! How our INVITE toward the callee fares: provisional responses, the answer, failures
//! and failover, timeouts, and the caller's CANCEL.

use std::sync::Arc;
use std::time::Instant;

use super::call::{Attempt, Call, CallRef, CallTimer, Phase, Role};
use super::dialog::{self, Dialog};
use super::headers::{self, Body};
use super::outgoing::{response_to_tag, route_set, seq_of, tag_str};
use super::router::TargetOutcome;
use super::setup::DEFAULT_MAX_FORWARDS;
use super::{B2bua, SUPPORTED, add_product, count};
use crate::media::Leg;
use crate::net::Protocol;
use crate::sip::{HeaderName, Method, Request, Response, StatusCode};
use crate::transaction::{Timer, TransactionId, TransactionLayer};

impl B2bua {
    /// A response to our INVITE toward the callee.
    pub(super) fn on_callee_response(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        transaction: TransactionId,
        response: Response,
    ) {
        let status = response.status;
        let current = match &call.phase {
            Phase::Setup { attempt, .. } | Phase::Cancelling { attempt, .. } => {
                attempt.transaction == transaction
            }
            Phase::Confirmed | Phase::Ended => false,
        };
        if !current {
            // The answered INVITE's 2xx again (our ACK was lost), or another fork's.
            if status.is_success() {
                let peer = call.b.peer;
                self.on_late_2xx(now, layer, call, Leg::B, &response, peer);
            }
            return;
        }
        match call.phase {
            Phase::Setup { .. } if status == StatusCode::TRYING => {}
            Phase::Setup { .. } if status.is_provisional() => {
                self.on_callee_provisional(now, layer, call_ref, call, &response);
            }
            Phase::Setup { .. } if status.is_success() => {
                self.on_callee_answer(now, layer, call_ref, call, &response);
            }
            Phase::Setup { .. } => {
                self.on_attempt_failed(now, layer, call_ref, call, status, Some(&response));
            }
            Phase::Cancelling { .. } => {
                self.on_response_while_cancelling(now, layer, call_ref, call, &response);
            }
            Phase::Confirmed | Phase::Ended => {}
        }
    }

    /// Learns the callee's early dialog from a provisional response and relays it.
    fn on_callee_provisional(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        response: &Response,
    ) {
        let Phase::Setup { attempt, .. } = &mut call.phase else {
            return;
        };
        attempt.provisional = true;
        call.log.note_progress(now);
        if let Some(rseq) = reliable_rseq(response) {
            if attempt.last_rseq.is_some_and(|last| rseq <= last) {
                // A retransmission: already PRACKed and relayed (RFC 3262 §4).
                count(&mut self.stats.dropped, "provisional_retransmission");
                return;
            }
            attempt.last_rseq = Some(rseq);
            let invite_seq = seq_of(&attempt.invite.headers);
            self.send_prack(now, layer, call_ref, call, response, rseq, invite_seq);
        }
        if call.b.remote_tag().is_none()
            && let Some(tag) = response_to_tag(response)
        {
            call.b.set_remote_tag(tag);
            call.b.refresh_target(&response.headers);
            call.b.route_set = route_set(&response.headers, true);
        }
        let body = match self.anchor_body(call_ref, call, Leg::B, &response.headers, &response.body)
        {
            Some(Ok(sdp)) => Body::Sdp(sdp),
            Some(Err(error)) => {
                count(&mut self.stats.dropped, error.name());
                Body::Empty
            }
            None => Body::Empty,
        };
        if let (Phase::Setup { attempt, .. }, Body::Sdp(sdp)) = (&mut call.phase, &body) {
            attempt.early_answer = Some(sdp.clone());
        }
        let Phase::Setup { invite, .. } = &call.phase else {
            return;
        };
        let mut relayed = self.response_for(call, invite, Leg::A, response, true);
        body.attach(&mut relayed.headers, &mut relayed.body);
        self.provisional_to_caller(now, layer, call_ref, call, relayed);
    }

    /// PRACKs a reliable provisional response (RFC 3262 §7.2) on the early dialog it
    /// creates (a fork's, possibly).
    #[allow(clippy::too_many_arguments)]
    fn send_prack(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        response: &Response,
        rseq: u32,
        invite_seq: u32,
    ) {
        let Some(tag) = response_to_tag(response) else {
            return;
        };
        let mut early = call.b.clone();
        early.set_remote_tag(tag);
        early.refresh_target(&response.headers);
        early.route_set = route_set(&response.headers, true);
        let seq = call.b.next_cseq();
        let local = self.config.local_addr(early.protocol);
        let branch = self.ids().branch(&early.remote_target);
        let mut prack = early.request(Method::Prack, seq, local, &branch, DEFAULT_MAX_FORWARDS);
        prack
            .headers
            .push(HeaderName::RAck, format!("{rseq} {invite_seq} INVITE"));
        if let Some(transaction) = self.send_request(now, layer, prack, early.peer) {
            self.track(transaction, call_ref, call, Role::CalleePrack);
        }
    }

    /// The callee answered: relay the 2xx, ACK the callee, wait for the caller's ACK.
    fn on_callee_answer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        response: &Response,
    ) {
        let Phase::Setup {
            invite,
            attempt,
            offer,
            ..
        } = std::mem::replace(&mut call.phase, Phase::Confirmed)
        else {
            return;
        };
        if let Some(tag) = response_to_tag(response) {
            call.b.set_remote_tag(tag);
        }
        call.b.refresh_target(&response.headers);
        call.b.route_set = route_set(&response.headers, true);
        self.router.report(&attempt.target, TargetOutcome::Answered);
        self.stats.calls_answered += 1;
        call.log.answered = Some(now);

        let body = match self.anchor_body(call_ref, call, Leg::B, &response.headers, &response.body)
        {
            Some(Ok(sdp)) => Body::Sdp(sdp),
            Some(Err(error)) => {
                count(&mut self.stats.dropped, error.name());
                Body::Empty
            }
            // The answer came in a provisional response: the caller, which got it in an
            // unreliable one, gets it again in the 2xx.
            None => attempt.early_answer.map_or(Body::Empty, Body::Sdp),
        };
        if let Some(media) = call.media.as_mut() {
            media.security.forget_setup_offer();
        }
        let mut ok = self.response_for(call, &invite, Leg::A, response, true);
        body.attach(&mut ok.headers, &mut ok.body);
        self.supervise_session(now, call_ref, call, &response.headers);
        if let Some(limit) = self.config.max_call_duration {
            self.arm(call_ref, call, CallTimer::MaxDuration, now + limit);
        }

        let callee_seq = seq_of(&attempt.invite.headers);
        let ack_other = if offer.is_some() {
            self.send_ack(layer, call, Leg::B, callee_seq, Body::Empty);
            None
        } else {
            Some(callee_seq)
        };
        // Sent now, or held until the PRACK of a reliable 18x with SDP (RFC 3262 §3).
        self.answer_caller(now, layer, call_ref, call, invite, ok, ack_other);
    }

    /// An attempt failed with `status` (a response, a timeout as 408, a transport error as
    /// 503): fail over on 408 and 5xx while targets remain, else answer the caller.
    pub(super) fn on_attempt_failed(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        status: StatusCode,
        response: Option<&Response>,
    ) {
        let Phase::Setup {
            invite,
            attempt,
            mut remaining,
            mut offer,
            max_forwards,
        } = std::mem::replace(&mut call.phase, Phase::Ended)
        else {
            return;
        };
        let status = if attempt.timed_out && status == StatusCode::REQUEST_TERMINATED {
            StatusCode::REQUEST_TIMEOUT
        } else {
            status
        };
        if offer.is_some() && refuses_media(status, response) {
            let secure = attempt.target.protocol == Protocol::Tls;
            if let Some((lower, step)) = self.step_down_callee_offer(call, secure) {
                // The target answered: it is up, and gets the same call in a profile it
                // may accept, the caller seeing nothing of the refusal.
                self.router.report(&attempt.target, TargetOutcome::Answered);
                let filter = Arc::clone(&call.toward_b);
                let identity = call.identity.take();
                let sent = self.send_attempt(
                    now,
                    layer,
                    &invite,
                    max_forwards,
                    Some(&lower),
                    &attempt.target,
                    &*filter,
                    identity.as_deref(),
                );
                call.identity = identity;
                match sent {
                    Ok((callee, next)) => {
                        count(&mut self.stats.media_fallbacks, step);
                        self.switch_callee(call_ref, call, callee, &next);
                        call.phase = Phase::Setup {
                            invite,
                            attempt: next,
                            remaining,
                            offer: Some(lower),
                            max_forwards,
                        };
                        return;
                    }
                    Err(error) => {
                        count(&mut self.stats.dropped, error.name());
                        return self
                            .fail_call(now, layer, call_ref, call, &invite, status, response);
                    }
                }
            }
        }
        let retryable = status == StatusCode::REQUEST_TIMEOUT || status.class() == 5;
        let outcome = if retryable {
            TargetOutcome::Failed
        } else {
            TargetOutcome::Answered
        };
        self.router.report(&attempt.target, outcome);
        if !retryable {
            // 3xx would name the callee's hosts in its Contact: relayed as 480.
            let status = if status.class() == 3 {
                StatusCode::TEMPORARILY_UNAVAILABLE
            } else {
                status
            };
            return self.fail_call(now, layer, call_ref, call, &invite, status, response);
        }
        while !remaining.is_empty() {
            let target = remaining.remove(0);
            // A new target starts from the first profiles again.
            let secure = target.protocol == Protocol::Tls;
            if let Some(first) = self.restart_callee_offer(call, secure) {
                offer = Some(first);
            }
            let filter = Arc::clone(&call.toward_b);
            let identity = call.identity.take();
            let sent = self.send_attempt(
                now,
                layer,
                &invite,
                max_forwards,
                offer.as_ref(),
                &target,
                &*filter,
                identity.as_deref(),
            );
            call.identity = identity;
            match sent {
                Ok((callee, next)) => {
                    self.stats.failovers += 1;
                    self.switch_callee(call_ref, call, callee, &next);
                    call.phase = Phase::Setup {
                        invite,
                        attempt: next,
                        remaining,
                        offer,
                        max_forwards,
                    };
                    return;
                }
                Err(error) => count(&mut self.stats.dropped, error.name()),
            }
        }
        let status = if status == StatusCode::REQUEST_TIMEOUT {
            StatusCode::REQUEST_TIMEOUT
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        self.fail_call(now, layer, call_ref, call, &invite, status, None);
    }

    /// Replaces the B-leg dialog by that of a new attempt.
    fn switch_callee(
        &mut self,
        call_ref: CallRef,
        call: &mut Call,
        callee: Dialog,
        attempt: &Attempt,
    ) {
        let old_key = (call.b.call_id.clone(), call.b.local_tag.clone());
        self.dialogs.remove(&old_key);
        self.unregister_destination(&call.b.peer);
        self.dialogs.insert(
            (callee.call_id.clone(), callee.local_tag.clone()),
            (call_ref, Leg::B),
        );
        self.register_destination(&callee.peer, attempt.target.destination());
        call.b = callee;
        self.track(attempt.transaction, call_ref, call, Role::CalleeInvite);
    }

    /// Answers the caller with a failure and ends the call.
    #[allow(clippy::too_many_arguments)]
    fn fail_call(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        invite: &Request,
        status: StatusCode,
        response: Option<&Response>,
    ) {
        let mut answer = invite.make_response(status, None, Some(&tag_str(&call.a.local_tag)));
        if let Some(response) = response {
            headers::copy_passing(
                &response.headers,
                &mut answer.headers,
                &*call.toward_a,
                &SUPPORTED,
            );
        }
        add_product(&self.config, &mut answer.headers, HeaderName::Server);
        self.respond(now, layer, answer);
        call.log.final_status = Some(status);
        self.finish(now, layer, call_ref, call, "failed");
    }

    /// A response to our INVITE after the caller cancelled: CANCEL once it is possible;
    /// a 2xx that crossed the CANCEL is ACKed and BYEd.
    fn on_response_while_cancelling(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        response: &Response,
    ) {
        let status = response.status;
        if status.is_provisional() {
            if let Phase::Cancelling {
                attempt,
                cancel_sent,
            } = &mut call.phase
            {
                attempt.provisional = true;
                if !*cancel_sent {
                    *cancel_sent = true;
                    let cancel = dialog::cancel_for(&attempt.invite);
                    let peer = call.b.peer;
                    if let Some(transaction) = self.send_request(now, layer, cancel, peer) {
                        self.track(transaction, call_ref, call, Role::CalleeCancel);
                    }
                }
            }
            return;
        }
        let Phase::Cancelling { attempt, .. } = std::mem::replace(&mut call.phase, Phase::Ended)
        else {
            return;
        };
        if status.is_success() {
            if let Some(tag) = response_to_tag(response) {
                call.b.set_remote_tag(tag);
            }
            call.b.refresh_target(&response.headers);
            call.b.route_set = route_set(&response.headers, true);
            self.send_ack(
                layer,
                call,
                Leg::B,
                seq_of(&attempt.invite.headers),
                Body::Empty,
            );
            self.send_bye(now, layer, call_ref, call, Leg::B);
            count(&mut self.stats.dropped, "answer_crossed_cancel");
        }
    }

    /// The caller's CANCEL: `200`, `487` to its INVITE, CANCEL toward the callee.
    pub(super) fn on_cancel(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        _transaction: TransactionId,
        cancel: Request,
    ) {
        if let Some(invite) = layer.invite_cancelled_by(&cancel)
            && self.cancel_parked(now, layer, invite, &cancel)
        {
            return;
        }
        let call_ref = layer
            .invite_cancelled_by(&cancel)
            .and_then(|invite| self.transactions.get(&invite))
            .map(|&(call_ref, _)| call_ref);
        let Some(call_ref) = call_ref.filter(|r| self.calls.contains_key(r)) else {
            let response = cancel.make_response(StatusCode::CALL_DOES_NOT_EXIST, None, None);
            return self.respond(now, layer, response);
        };
        self.with_call(call_ref, |b2bua, call| {
            let tag = tag_str(&call.a.local_tag);
            let ok = cancel.make_response(StatusCode::OK, None, Some(&tag));
            b2bua.respond(now, layer, ok);
            if matches!(call.phase, Phase::Setup { .. }) {
                b2bua.abandon_setup(
                    now,
                    layer,
                    call_ref,
                    call,
                    StatusCode::REQUEST_TERMINATED,
                    "cancelled",
                );
            }
        });
    }

    /// Gives the caller its final answer `status` during setup and cancels our INVITE
    /// (now, or once the callee has sent a provisional response).
    pub(super) fn abandon_setup(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        status: StatusCode,
        how: &'static str,
    ) {
        let Phase::Setup {
            invite, attempt, ..
        } = std::mem::replace(&mut call.phase, Phase::Ended)
        else {
            return;
        };
        let mut answer = invite.make_response(status, None, Some(&tag_str(&call.a.local_tag)));
        add_product(&self.config, &mut answer.headers, HeaderName::Server);
        self.respond(now, layer, answer);
        let cancel_sent = attempt.provisional;
        if cancel_sent {
            let cancel = dialog::cancel_for(&attempt.invite);
            let peer = call.b.peer;
            if let Some(transaction) = self.send_request(now, layer, cancel, peer) {
                self.track(transaction, call_ref, call, Role::CalleeCancel);
            }
        }
        call.phase = Phase::Cancelling {
            attempt,
            cancel_sent,
        };
        call.log.final_status = Some(status);
        self.release_slot(now, call, how);
        self.release_media(&mut call.media);
        self.timers.disarm_all(call_ref, call);
        self.arm_reap(now, layer, call_ref, call);
    }

    /// A transaction of the call timed out (`timer`) or failed to send (`None`).
    pub(super) fn on_failure(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        role: Role,
        transaction: TransactionId,
        timer: Option<Timer>,
    ) {
        self.with_call(call_ref, |b2bua, call| match role {
            Role::CalleeInvite => {
                b2bua.on_attempt_timeout(now, layer, call_ref, call, transaction, timer)
            }
            Role::CallerInvite => match (timer, &call.phase) {
                // The caller never ACKed our failure: nothing left to do.
                (Some(Timer::H), _) => {}
                (_, Phase::Setup { .. }) => {
                    b2bua.abandon_setup(
                        now,
                        layer,
                        call_ref,
                        call,
                        StatusCode::REQUEST_TIMEOUT,
                        "caller_unreachable",
                    );
                }
                (_, Phase::Confirmed) => {
                    b2bua.hang_up(now, layer, call_ref, call, "caller_unreachable")
                }
                _ => {}
            },
            Role::ExchangeClient(id) => {
                if let Some(exchange) = call.take_exchange(id) {
                    let response =
                        exchange
                            .request
                            .make_response(StatusCode::REQUEST_TIMEOUT, None, None);
                    b2bua.respond(now, layer, response);
                    b2bua.hang_up(now, layer, call_ref, call, "in_dialog_timeout");
                }
            }
            // The relayed request's own transaction gave up (the requester's timer has
            // fired too) or could not send: the exchange ends with our request.
            Role::ExchangeServer(_) | Role::CalleeCancel | Role::CalleePrack | Role::Bye => {}
        });
    }

    fn on_attempt_timeout(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        transaction: TransactionId,
        timer: Option<Timer>,
    ) {
        match &mut call.phase {
            Phase::Setup { attempt, .. } if attempt.transaction == transaction => {
                if timer == Some(Timer::C) {
                    // No final answer for too long: cancel; its 487 counts as a timeout.
                    attempt.timed_out = true;
                    let cancel = dialog::cancel_for(&attempt.invite);
                    let peer = call.b.peer;
                    if let Some(cancel) = self.send_request(now, layer, cancel, peer) {
                        self.track(cancel, call_ref, call, Role::CalleeCancel);
                    }
                    return;
                }
                let status = if timer.is_some() {
                    StatusCode::REQUEST_TIMEOUT
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                self.on_attempt_failed(now, layer, call_ref, call, status, None);
            }
            // Timer C while cancelling: the CANCEL is on its way already.
            Phase::Cancelling { attempt, .. }
                if attempt.transaction == transaction && timer != Some(Timer::C) =>
            {
                call.phase = Phase::Ended;
            }
            _ => {}
        }
    }
}

/// Whether a final response refuses our INVITE's offer for its media: `488 Not
/// Acceptable Here` and `606 Not Acceptable` (RFC 3261 §21.4.26, §21.6.4), and `415
/// Unsupported Media Type` unless its `Accept` shows that SDP itself is not understood.
fn refuses_media(status: StatusCode, response: Option<&Response>) -> bool {
    match status.as_u16() {
        488 | 606 => true,
        415 => response.is_none_or(|response| {
            let accepted: Vec<&bytes::Bytes> =
                response.headers.get_all(&HeaderName::Accept).collect();
            accepted.is_empty()
                || accepted.iter().any(|value| {
                    value
                        .split(|b| *b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"application/sdp"))
                })
        }),
        _ => false,
    }
}

/// The RSeq of a reliable provisional response (RFC 3262 §7.1: `Require: 100rel` and an
/// RSeq), or `None`.
fn reliable_rseq(response: &Response) -> Option<u32> {
    if !(response.status.as_u16() > 100 && response.status.is_provisional()) {
        return None;
    }
    let required = response.headers.require().ok()?;
    if !required
        .iter()
        .any(|tag| tag.eq_ignore_ascii_case(b"100rel"))
    {
        return None;
    }
    let rseq = response.headers.get(&HeaderName::RSeq)?;
    std::str::from_utf8(rseq.trim_ascii()).ok()?.parse().ok()
}
