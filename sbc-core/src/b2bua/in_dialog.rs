//! The established call: in-dialog requests relayed between the legs, ACKs, BYE, the
//! call's timers, and how a call ends.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::call::{AckWait, Call, CallRef, CallTimer, Exchange, Phase, Role};
use super::headers::{self, Body};
use super::setup::{DEFAULT_MAX_FORWARDS, seq_of, tag_str};
use super::{B2bua, SUPPORTED, add_product, count};
use crate::media::Leg;
use crate::sip::{HeaderName, Headers, Message, Method, Request, Response, StatusCode};
use crate::transaction::{Event, Peer, Reliability, TransactionId, TransactionLayer};

/// RFC 4028 intervals past this are treated as this (a day).
const LONGEST_SESSION_INTERVAL: u64 = 86_400;

impl B2bua {
    /// A response to one of the call's client transactions.
    pub(super) fn on_response(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        role: Role,
        transaction: TransactionId,
        response: Response,
    ) {
        self.with_call(call_ref, |b2bua, call| match role {
            Role::CalleeInvite => {
                b2bua.on_callee_response(now, layer, call_ref, call, transaction, response);
            }
            Role::ExchangeClient(id) => {
                b2bua.on_exchange_response(now, layer, call_ref, call, id, response);
            }
            Role::CallerInvite | Role::CalleeCancel | Role::Bye | Role::ExchangeServer(_) => {}
        });
    }

    /// A response matching no transaction: a 2xx of ours whose transaction has ended is
    /// ACKed (and BYEd, unless it is the call's own); anything else goes back.
    pub(super) fn on_stray_response(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        response: Response,
        source: Peer,
    ) -> Option<Event> {
        let invite = response
            .headers
            .cseq()
            .is_ok_and(|cseq| cseq.method == Method::Invite);
        if !(response.status.is_success() && invite && self.is_ours(&response)) {
            return Some(Event::StrayResponse { response, source });
        }
        let key = response.headers.call_id().ok().cloned().zip(
            response
                .headers
                .from()
                .ok()
                .and_then(|from| from.tag().cloned()),
        );
        match key.and_then(|key| self.dialogs.get(&key).copied()) {
            Some((call_ref, leg)) => self.with_call(call_ref, |b2bua, call| {
                b2bua.on_late_2xx(now, layer, call, leg, &response, source);
            }),
            None => self.ack_and_bye(now, layer, &response, source),
        }
        None
    }

    /// A request with a To tag: relayed when it matches a dialog, `481` when not.
    pub(super) fn on_in_dialog_request(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        transaction: TransactionId,
        request: Request,
        _source: Peer,
    ) {
        let Some((call_ref, leg)) = self.dialog_of(&request) else {
            return self.answer(
                now,
                layer,
                &request,
                StatusCode::CALL_DOES_NOT_EXIST,
                "unknown_dialog",
            );
        };
        self.with_call(call_ref, |b2bua, call| {
            let from_tag = request
                .headers
                .from()
                .ok()
                .and_then(|from| from.tag().cloned());
            if from_tag.is_none() || from_tag.as_ref() != call.leg(leg).remote_tag() {
                return b2bua.answer(
                    now,
                    layer,
                    &request,
                    StatusCode::CALL_DOES_NOT_EXIST,
                    "unknown_dialog",
                );
            }
            let seq = seq_of(&request.headers);
            if !call.leg_mut(leg).accept_remote_cseq(seq) {
                return b2bua.answer(
                    now,
                    layer,
                    &request,
                    StatusCode::SERVER_INTERNAL_ERROR,
                    "cseq_out_of_order",
                );
            }
            match (&request.method, &call.phase) {
                (Method::Bye, _) => b2bua.on_bye(now, layer, call_ref, call, leg, &request),
                (_, Phase::Cancelling { .. } | Phase::Ended) => {
                    b2bua.answer(
                        now,
                        layer,
                        &request,
                        StatusCode::CALL_DOES_NOT_EXIST,
                        "call_ending",
                    );
                }
                _ => b2bua.relay(now, layer, call_ref, call, leg, transaction, request),
            }
        });
    }

    /// The call and leg whose dialog a request is on: its Call-ID and To tag (our tag).
    fn dialog_of(&self, request: &Request) -> Option<(CallRef, Leg)> {
        let call_id = request.headers.call_id().ok()?.clone();
        let tag = request.headers.to().ok()?.tag()?.clone();
        self.dialogs.get(&(call_id, tag)).copied()
    }

    /// Answers an in-dialog request ourselves.
    pub(super) fn answer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        request: &Request,
        status: StatusCode,
        reason: &'static str,
    ) {
        count(&mut self.stats.dropped, reason);
        let mut response = request.make_response(status, None, None);
        if status == StatusCode::SERVER_INTERNAL_ERROR {
            // RFC 3261 §14.2: a random retry time below 10 s.
            let after = (self.random)() % 10;
            response
                .headers
                .push(HeaderName::RetryAfter, after.to_string());
        }
        add_product(&self.config, &mut response.headers, HeaderName::Server);
        self.respond(now, layer, response);
    }

    /// Relays an in-dialog request from `leg` to the other leg.
    #[allow(clippy::too_many_arguments)]
    fn relay(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        leg: Leg,
        transaction: TransactionId,
        mut request: Request,
    ) {
        let other = leg.other();
        let hops = match request.headers.max_forwards() {
            Ok(hops) => hops.unwrap_or(DEFAULT_MAX_FORWARDS),
            Err(_) => {
                return self.answer(
                    now,
                    layer,
                    &request,
                    StatusCode::BAD_REQUEST,
                    "bad_max_forwards",
                );
            }
        };
        if hops == 0 {
            return self.answer(
                now,
                layer,
                &request,
                StatusCode::TOO_MANY_HOPS,
                "too_many_hops",
            );
        }
        if call.exchanges.len() >= self.config.max_exchanges {
            return self.answer(
                now,
                layer,
                &request,
                StatusCode::SERVICE_UNAVAILABLE,
                "exchange_limit",
            );
        }
        let request_pending = StatusCode::new(491).unwrap_or(StatusCode::SERVER_INTERNAL_ERROR);
        if call.leg(other).remote_tag().is_none() {
            return self.answer(now, layer, &request, request_pending, "other_leg_not_ready");
        }
        let has_sdp = Body::is_sdp(&request.headers, &request.body);
        let offers =
            request.method == Method::Invite || (request.method == Method::Update && has_sdp);
        if offers {
            if call.offer_pending_toward(leg)
                || call
                    .ack_wait
                    .as_ref()
                    .is_some_and(|wait| wait.ack_other.is_some())
                || (request.method == Method::Invite && matches!(call.phase, Phase::Setup { .. }))
            {
                return self.answer(now, layer, &request, request_pending, "glare");
            }
            if call.offer_pending_from(leg) {
                return self.answer(
                    now,
                    layer,
                    &request,
                    StatusCode::SERVER_INTERNAL_ERROR,
                    "overlapping_offer",
                );
            }
        }

        let previous = if has_sdp {
            call.media.as_mut().map(|media| media.remote(leg).clone())
        } else {
            None
        };
        let body = match self.anchor_body(call_ref, call, leg, &request.headers, &request.body) {
            Some(Ok(sdp)) => Body::Sdp(sdp),
            Some(Err(error)) => {
                if let Some(previous) = previous {
                    self.roll_back_media(call, leg, previous);
                }
                return self.answer(now, layer, &request, error.status(), error.name());
            }
            None => Body::relayed(&request.headers, &request.body),
        };

        let dialog = call.leg_mut(other);
        let seq = dialog.next_cseq();
        let local = self.config.local_addr(dialog.protocol);
        let peer = dialog.peer;
        let branch = self.ids().branch(&call.leg(other).remote_target);
        let mut out =
            call.leg(other)
                .request(request.method.clone(), seq, local, &branch, hops - 1);
        headers::copy_passing(
            &request.headers,
            &mut out.headers,
            &*call.filter_toward(other),
            &SUPPORTED,
        );
        if matches!(request.method, Method::Invite | Method::Update) {
            out.headers
                .push(HeaderName::Allow, headers::ALLOWED_METHODS);
            if let Some(supported) = headers::supported_for(&request.headers, &SUPPORTED) {
                out.headers.push(HeaderName::Supported, supported);
            }
        }
        add_product(&self.config, &mut out.headers, HeaderName::UserAgent);
        body.attach(&mut out.headers, &mut out.body);
        let Some(client) = self.send_request(now, layer, out, peer) else {
            if let Some(previous) = previous {
                self.roll_back_media(call, leg, previous);
            }
            return self.answer(
                now,
                layer,
                &request,
                StatusCode::SERVICE_UNAVAILABLE,
                "send_failed",
            );
        };
        let id = call.next_exchange;
        call.next_exchange = call.next_exchange.wrapping_add(1);
        self.track(transaction, call_ref, call, Role::ExchangeServer(id));
        self.track(client, call_ref, call, Role::ExchangeClient(id));
        request.body = Bytes::new();
        call.exchanges.push(Exchange {
            id,
            from: leg,
            method: request.method.clone(),
            request,
            sent_seq: seq,
            offer_in_request: has_sdp,
            previous,
        });
    }

    /// The answer to a relayed request: relayed back to the leg it came from.
    fn on_exchange_response(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        id: u32,
        response: Response,
    ) {
        let status = response.status;
        let Some(exchange) = call.exchange(id) else {
            // A 2xx to a re-INVITE we have relayed already: our ACK was lost.
            if status.is_success() && is_invite_response(&response) {
                let leg = if response.headers.call_id().ok() == Some(&call.b.call_id) {
                    Leg::B
                } else {
                    Leg::A
                };
                let peer = call.leg(leg).peer;
                self.on_late_2xx(now, layer, call, leg, &response, peer);
            }
            return;
        };
        if status == StatusCode::TRYING {
            return;
        }
        let (to, from) = (exchange.from, exchange.from.other());
        let method = exchange.method.clone();
        let offer_answer = matches!(method, Method::Invite | Method::Update);
        if status.is_provisional() {
            if method == Method::Invite {
                let mut relayed = self.response_for(call, &exchange.request, to, &response, true);
                let body = self.body_for(call_ref, call, from, &response, offer_answer);
                body.attach(&mut relayed.headers, &mut relayed.body);
                self.respond(now, layer, relayed);
            }
            return;
        }
        let Some(mut exchange) = call.take_exchange(id) else {
            return;
        };
        let body = self.body_for(call_ref, call, from, &response, offer_answer);
        if status.is_success() && offer_answer {
            call.leg_mut(from).refresh_target(&response.headers);
            call.leg_mut(to).refresh_target(&exchange.request.headers);
            self.supervise_session(now, call_ref, call, &response.headers);
        } else if !status.is_success()
            && let Some(previous) = exchange.previous.take()
        {
            self.roll_back_media(call, to, previous);
        }
        let mut relayed = self.response_for(call, &exchange.request, to, &response, offer_answer);
        body.attach(&mut relayed.headers, &mut relayed.body);
        self.respond(now, layer, relayed.clone());
        if status.is_success() && method == Method::Invite {
            let ack_other = if exchange.offer_in_request {
                self.send_ack(layer, call, from, exchange.sent_seq, Body::Empty);
                None
            } else {
                Some(exchange.sent_seq)
            };
            let seq = seq_of(&exchange.request.headers);
            self.wait_for_ack(now, layer, call_ref, call, to, seq, relayed, ack_other);
        }
        if status == StatusCode::CALL_DOES_NOT_EXIST || status == StatusCode::REQUEST_TIMEOUT {
            // RFC 5057 §5.1: the dialog is gone on that leg.
            self.hang_up(now, layer, call_ref, call, "in_dialog_failure");
        }
    }

    /// The body to relay with a response that came from `from`: its SDP anchored, any
    /// other body as it is — except on offer/answer methods, where only SDP passes.
    fn body_for(
        &mut self,
        call_ref: CallRef,
        call: &mut Call,
        from: Leg,
        response: &Response,
        offer_answer: bool,
    ) -> Body {
        match self.anchor_body(call_ref, call, from, &response.headers, &response.body) {
            Some(Ok(sdp)) => Body::Sdp(sdp),
            Some(Err(error)) => {
                count(&mut self.stats.dropped, error.name());
                Body::Empty
            }
            None if offer_answer => Body::Empty,
            None => Body::relayed(&response.headers, &response.body),
        }
    }

    /// Our response on leg `to` to `request` (received on it), relaying `response` from the
    /// other leg: same status, canonical reason, our tag (for the caller's INVITE), our
    /// Contact and capabilities when `dialog_forming`, the headers the policy lets pass.
    /// The caller attaches the body.
    pub(super) fn response_for(
        &self,
        call: &Call,
        request: &Request,
        to: Leg,
        response: &Response,
        dialog_forming: bool,
    ) -> Response {
        let dialog = call.leg(to);
        let tag = tag_str(&dialog.local_tag);
        let mut out = request.make_response(response.status, None, Some(&tag));
        if dialog_forming && response.status.as_u16() > 100 && response.status.as_u16() < 300 {
            let local = self.config.local_addr(dialog.protocol);
            out.headers.push(
                HeaderName::Contact,
                headers::contact(dialog.protocol, local, dialog.secure),
            );
            if response.status.is_success() {
                out.headers
                    .push(HeaderName::Allow, headers::ALLOWED_METHODS);
                if let Some(supported) = headers::supported_for(&response.headers, &SUPPORTED) {
                    out.headers.push(HeaderName::Supported, supported);
                }
            }
        }
        headers::copy_passing(
            &response.headers,
            &mut out.headers,
            &*call.filter_toward(to),
            &SUPPORTED,
        );
        add_product(&self.config, &mut out.headers, HeaderName::Server);
        out
    }

    /// An ACK for a 2xx: ends the wait for it, and when the other leg's 2xx carried the
    /// offer, carries the answer into our ACK there.
    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        request: Request,
        source: Peer,
    ) -> Option<Event> {
        let Some((call_ref, leg)) = self.dialog_of(&request) else {
            return Some(Event::Ack {
                transaction: None,
                request,
                source,
            });
        };
        let seq = seq_of(&request.headers);
        let awaited = self
            .calls
            .get(&call_ref)
            .and_then(|call| call.ack_wait.as_ref())
            .is_some_and(|wait| wait.leg == leg && wait.seq == seq);
        if !awaited {
            count(&mut self.stats.dropped, "unexpected_ack");
            return None;
        }
        self.with_call(call_ref, |b2bua, call| {
            b2bua
                .timers
                .disarm(call_ref, call, CallTimer::Retransmit2xx);
            b2bua.timers.disarm(call_ref, call, CallTimer::AckTimeout);
            let Some(wait) = call.ack_wait.take() else {
                return;
            };
            if let Some(other_seq) = wait.ack_other {
                let body =
                    match b2bua.anchor_body(call_ref, call, leg, &request.headers, &request.body) {
                        Some(Ok(sdp)) => Body::Sdp(sdp),
                        _ => Body::Empty,
                    };
                b2bua.send_ack(layer, call, leg.other(), other_seq, body);
            }
            let _ = now;
        });
        None
    }

    /// BYE from `leg`: `200`, BYE to the other leg, the call ends.
    fn on_bye(
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
        self.release_slot(call, how);
        self.release_media(&mut call.media);
        self.timers.disarm_all(call_ref, call);
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

    /// The call stops counting toward the call limit.
    pub(super) fn release_slot(&mut self, call: &mut Call, how: &'static str) {
        if call.holds_slot {
            call.holds_slot = false;
            self.active = self.active.saturating_sub(1);
            count(&mut self.stats.ended, how);
        }
    }

    /// Sends a BYE on `leg` in a transaction of the call.
    pub(super) fn send_bye(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        leg: Leg,
    ) {
        let dialog = call.leg_mut(leg);
        let seq = dialog.next_cseq();
        let local = self.config.local_addr(dialog.protocol);
        let peer = dialog.peer;
        let branch = self.ids().branch(&call.leg(leg).remote_target);
        let mut bye = call
            .leg(leg)
            .request(Method::Bye, seq, local, &branch, DEFAULT_MAX_FORWARDS);
        add_product(&self.config, &mut bye.headers, HeaderName::UserAgent);
        if let Some(transaction) = self.send_request(now, layer, bye, peer) {
            self.track(transaction, call_ref, call, Role::Bye);
        }
    }

    /// Sends the ACK for the 2xx to our INVITE with CSeq `seq` on `leg`.
    pub(super) fn send_ack(
        &mut self,
        layer: &mut TransactionLayer,
        call: &mut Call,
        leg: Leg,
        seq: u32,
        body: Body,
    ) {
        let dialog = call.leg(leg);
        let local = self.config.local_addr(dialog.protocol);
        let peer = dialog.peer;
        let remote_target = dialog.remote_target.clone();
        let branch = self.ids().branch(&remote_target);
        let mut ack = call
            .leg(leg)
            .request(Method::Ack, seq, local, &branch, DEFAULT_MAX_FORWARDS);
        body.attach(&mut ack.headers, &mut ack.body);
        let message = Message::Request(ack);
        if let Err(error) = layer.handle_send_stateless(&message, peer) {
            count(&mut self.stats.dropped, error.name());
        }
        if let Message::Request(ack) = message {
            call.last_ack = Some((leg, ack));
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
        }
    }
}

fn is_invite_response(response: &Response) -> bool {
    response
        .headers
        .cseq()
        .is_ok_and(|cseq| cseq.method == Method::Invite)
}

/// The `Session-Expires` delta-seconds of a message (RFC 4028 §4), if any.
fn session_interval(headers: &Headers) -> Option<Duration> {
    let value = headers.get(&HeaderName::SessionExpires)?;
    let delta = value.split(|&b| b == b';').next()?.trim_ascii();
    let seconds: u64 = std::str::from_utf8(delta).ok()?.parse().ok()?;
    (seconds > 0).then(|| Duration::from_secs(seconds.min(LONGEST_SESSION_INTERVAL)))
}
