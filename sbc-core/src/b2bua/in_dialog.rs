//! In-dialog requests relayed between the legs, their answers, and ACKs.

use std::time::Instant;

use bytes::Bytes;

use super::call::{Call, CallRef, CallTimer, Exchange, Phase, Role};
use super::headers::{self, Body};
use super::outgoing::seq_of;
use super::reliable;
use super::setup::DEFAULT_MAX_FORWARDS;
use super::{B2bua, SUPPORTED, add_product, count};
use crate::media::Leg;
use crate::sip::{HeaderName, Method, Request, Response, StatusCode};
use crate::transaction::{Event, Peer, TransactionId, TransactionLayer};

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
            Role::CallerInvite
            | Role::CalleeCancel
            | Role::CalleePrack
            | Role::Bye
            | Role::ExchangeServer(_) => {}
        });
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
        let found = self
            .dialog_of(&request)
            .filter(|(call_ref, _)| self.calls.contains_key(call_ref));
        let Some((call_ref, leg)) = found else {
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
                // A PRACK of a response sent before a failure is still answered (RFC 3262).
                (Method::Prack, _) => {
                    b2bua.on_prack(now, layer, call_ref, call, leg, transaction, request);
                }
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
        request: Request,
    ) {
        if request.method == Method::Invite && reliable::requires_100rel(&request) {
            // Provisional responses to a re-INVITE are relayed unreliably (RFC 3261
            // §8.2.2.3: 420 with Unsupported).
            count(&mut self.stats.rejected, "reinvite_requires_100rel");
            let mut refusal = request.make_response(StatusCode::BAD_EXTENSION, None, None);
            refusal.headers.push(HeaderName::Unsupported, "100rel");
            add_product(&self.config, &mut refusal.headers, HeaderName::Server);
            return self.respond(now, layer, refusal);
        }
        let method = request.method.clone();
        self.relay_as(
            now,
            layer,
            call_ref,
            call,
            leg,
            transaction,
            request,
            method,
        );
    }

    /// Relays an in-dialog request from `leg` to the other leg as a `method` request (a
    /// PRACK with an offer goes on as UPDATE: the other leg's PRACKs are our own).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn relay_as(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        leg: Leg,
        transaction: TransactionId,
        mut request: Request,
        method: Method,
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
        let offers = method == Method::Invite || (method == Method::Update && has_sdp);
        if offers {
            if call.offer_pending_toward(leg)
                || call
                    .ack_wait
                    .as_ref()
                    .is_some_and(|wait| wait.ack_other.is_some())
                || (method == Method::Invite && matches!(call.phase, Phase::Setup { .. }))
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
        let mut out = call
            .leg(other)
            .request(method.clone(), seq, local, &branch, hops - 1);
        headers::copy_passing(
            &request.headers,
            &mut out.headers,
            &*call.filter_toward(other),
            &SUPPORTED,
        );
        if matches!(method, Method::Invite | Method::Update) {
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
            method,
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

    /// An ACK for a 2xx: ends the wait for it, and when the other leg's 2xx carried the
    /// offer, carries the answer into our ACK there.
    pub(super) fn on_ack(
        &mut self,
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
        });
        None
    }
}

fn is_invite_response(response: &Response) -> bool {
    response
        .headers
        .cseq()
        .is_ok_and(|cseq| cseq.method == Method::Invite)
}
