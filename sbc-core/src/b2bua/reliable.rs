//! Reliable provisional responses toward the caller (RFC 3262, leg A).
//!
//! When the caller's INVITE says `Supported: 100rel` or `Require: 100rel`, the
//! provisional responses we relay to it become reliable when they carry SDP (early media;
//! always the answer to the caller's offer) and, when the caller required it, all of them
//! (but `100`). A reliable one carries `Require: 100rel` and an `RSeq` (random first
//! value, one more per response, a space of its own: the callee's RSeq is PRACKed on the
//! B-leg and never reaches the caller), and is retransmitted on unreliable transports at
//! T1, 2·T1, 4·T1 … until the caller's PRACK (matched by its `RAck`). After 64·T1 without
//! one the caller gets `504` and the call ends (CANCEL or BYE toward the callee, relay
//! released).
//!
//! Only one reliable response is unacknowledged at a time (§3): later ones wait in a
//! short queue ([`MAX_QUEUED`]; past it an extra one that need not be reliable is dropped,
//! and one that must be reliable replaces the newest waiting one). A 2xx from the callee
//! is held while a reliable response with SDP is unacknowledged, and sent with the PRACK;
//! once the caller has the answer in a reliable response, the 2xx repeats no SDP. A
//! failure goes out at once; a PRACK for a response sent before it still gets `200`.
//!
//! A PRACK with SDP is a new offer (our reliable responses carry answers only: when the
//! caller made no offer, a reliable response carries no SDP and the offer comes in the
//! 2xx, as without 100rel). It is relayed to the callee as an UPDATE on its early dialog
//! (RFC 3311), and the answer comes back in the 200 to the PRACK.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::call::{Call, CallRef, CallTimer, Phase};
use super::headers::Body;
use super::outgoing::tag_str;
use super::{B2bua, add_product, count};
use crate::media::Leg;
use crate::sip::{HeaderName, Method, Request, Response, StatusCode};
use crate::transaction::{Reliability, TransactionId, TransactionLayer};

/// Provisional responses waiting for the PRACK of the one before them, at most.
pub(crate) const MAX_QUEUED: usize = 4;

/// The final answer to the caller when a reliable provisional response is never
/// PRACKed (RFC 3262 §3 asks for a 5xx).
const PRACK_TIMEOUT_STATUS: u16 = 504;

/// RFC 3262 on leg A: what the caller accepts and where our reliable responses stand.
#[derive(Debug)]
pub(crate) struct ReliableToCaller {
    /// The caller sent `Require: 100rel`: every provisional response but `100` is reliable.
    required: bool,
    /// The caller's INVITE carried an offer, so SDP in our provisional responses is the
    /// answer (without one, reliable responses carry no SDP).
    caller_offered: bool,
    /// The CSeq number of the caller's INVITE (what a PRACK's RAck names).
    invite_seq: u32,
    /// The RSeq of our next reliable provisional response.
    next_rseq: u32,
    /// The reliable response sent and not yet PRACKed.
    unacknowledged: Option<Unacknowledged>,
    /// Provisional responses waiting for that PRACK, in order.
    queue: VecDeque<Response>,
    /// The callee's 2xx relayed to the caller, held until the PRACK.
    held: Option<HeldAnswer>,
    /// The caller got the answer in a PRACKed reliable response.
    answer_delivered: bool,
}

/// A reliable provisional response sent and not yet PRACKed.
#[derive(Debug)]
struct Unacknowledged {
    rseq: u32,
    response: Response,
    carries_sdp: bool,
    /// The next retransmission interval.
    interval: Duration,
}

/// The caller's 2xx, held while a reliable response with SDP is unacknowledged.
#[derive(Debug)]
pub(crate) struct HeldAnswer {
    /// The caller's INVITE (body dropped): to answer it otherwise if the call ends first.
    pub invite: Box<crate::sip::Request>,
    pub ok: Response,
    /// The CSeq of the caller's INVITE (the ACK awaited).
    pub seq: u32,
    /// As [`super::call::AckWait::ack_other`].
    pub ack_other: Option<u32>,
}

impl ReliableToCaller {
    /// The 100rel state for the caller's `invite`, or `None` when it neither supports nor
    /// requires 100rel. `random` draws the first RSeq.
    pub(crate) fn for_invite(
        invite: &Request,
        caller_offered: bool,
        random: u64,
    ) -> Option<ReliableToCaller> {
        let has_100rel =
            |tags: Vec<bytes::Bytes>| tags.iter().any(|tag| tag.eq_ignore_ascii_case(b"100rel"));
        let required = invite.headers.require().is_ok_and(has_100rel);
        let supported = invite.headers.supported().is_ok_and(has_100rel);
        if !(required || supported) {
            return None;
        }
        Some(ReliableToCaller {
            required,
            caller_offered,
            invite_seq: invite.headers.cseq().map_or(0, |cseq| cseq.seq),
            // RFC 3262 §3: between 1 and 2^31 - 1.
            next_rseq: 1 + (random % 0x7fff_fffe) as u32,
            unacknowledged: None,
            queue: VecDeque::new(),
            held: None,
            answer_delivered: false,
        })
    }

    /// Whether `response` goes out reliably: all but `100` when the caller required
    /// 100rel, else those with SDP answering the caller's offer (early media).
    fn must_be_reliable(&self, response: &Response) -> bool {
        response.status != StatusCode::TRYING
            && (self.required || (self.caller_offered && carries_sdp(response)))
    }

    /// A 2xx waits for the PRACK of a reliable response with SDP.
    pub(crate) fn holds_answer(&self) -> bool {
        self.held.is_some()
    }

    /// Takes the unacknowledged response a PRACK's `RAck` names, if any.
    fn acknowledge(&mut self, rack: &[u8]) -> Option<Unacknowledged> {
        let mut fields = std::str::from_utf8(rack).ok()?.split_ascii_whitespace();
        let rseq: u32 = fields.next()?.parse().ok()?;
        let seq: u32 = fields.next()?.parse().ok()?;
        let method = fields.next()?;
        if fields.next().is_some() || method != "INVITE" || seq != self.invite_seq {
            return None;
        }
        if self.unacknowledged.as_ref()?.rseq != rseq {
            return None;
        }
        self.unacknowledged.take()
    }
}

fn carries_sdp(response: &Response) -> bool {
    Body::is_sdp(&response.headers, &response.body)
}

fn remove_body(response: &mut Response) {
    response.headers.remove_all(&HeaderName::ContentType);
    response.body = bytes::Bytes::new();
}

impl B2bua {
    /// Relays a provisional response (body attached) to the caller: reliably when the
    /// caller takes 100rel and it must be, after the PRACK of the one before it.
    pub(super) fn provisional_to_caller(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        response: Response,
    ) {
        let Some(reliable) = call.reliable.as_mut() else {
            return self.respond(now, layer, response);
        };
        let must_be_reliable = reliable.must_be_reliable(&response);
        if reliable.unacknowledged.is_none() && reliable.queue.is_empty() {
            if must_be_reliable {
                self.send_reliably(now, layer, call_ref, call, response);
            } else {
                self.respond(now, layer, response);
            }
            return;
        }
        // Wait in line behind the unacknowledged one (order is kept).
        if reliable.queue.len() < MAX_QUEUED {
            reliable.queue.push_back(response);
            return;
        }
        count(&mut self.stats.dropped, "provisional_queue_full");
        if must_be_reliable && let Some(newest) = reliable.queue.back_mut() {
            *newest = response;
        }
    }

    /// Sends `response` as a reliable provisional response and starts waiting for its
    /// PRACK.
    fn send_reliably(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        mut response: Response,
    ) {
        let Some(reliable) = call.reliable.as_mut() else {
            return;
        };
        if !reliable.caller_offered {
            // SDP here would be an offer, whose answer the PRACK would have to bring to a
            // callee that made none: the offer comes in the 2xx instead.
            remove_body(&mut response);
        }
        let rseq = reliable.next_rseq;
        reliable.next_rseq = reliable.next_rseq.wrapping_add(1).max(1);
        response.headers.push(HeaderName::Require, "100rel");
        response.headers.push(HeaderName::RSeq, rseq.to_string());
        let timers = layer.config().timers;
        reliable.unacknowledged = Some(Unacknowledged {
            rseq,
            carries_sdp: carries_sdp(&response),
            response: response.clone(),
            interval: timers.t1,
        });
        self.respond(now, layer, response);
        if call.a.peer.reliability == Reliability::Unreliable {
            self.arm(
                call_ref,
                call,
                CallTimer::RetransmitProvisional,
                now + timers.t1,
            );
        }
        self.arm(
            call_ref,
            call,
            CallTimer::PrackTimeout,
            now + timers.transaction_timeout(),
        );
    }

    /// Sends the 2xx `ok` to the caller and waits for its ACK, or holds it until the
    /// PRACK of an unacknowledged reliable response with SDP (RFC 3262 §3).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn answer_caller(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        invite: Box<Request>,
        mut ok: Response,
        ack_other: Option<u32>,
    ) {
        let seq = invite.headers.cseq().map_or(0, |cseq| cseq.seq);
        if let Some(reliable) = call.reliable.as_mut() {
            reliable.queue.clear();
            if reliable.answer_delivered {
                // The caller has the answer already (RFC 6337 §3.1): no SDP again.
                remove_body(&mut ok);
            }
            if reliable
                .unacknowledged
                .as_ref()
                .is_some_and(|pending| pending.carries_sdp)
            {
                reliable.held = Some(HeldAnswer {
                    invite,
                    ok,
                    seq,
                    ack_other,
                });
                return;
            }
            // An unacknowledged one without SDP is not retransmitted past the 2xx (§3),
            // but its PRACK is still answered.
            self.stop_retransmitting(call_ref, call);
        }
        self.respond(now, layer, ok.clone());
        self.wait_for_ack(now, layer, call_ref, call, Leg::A, seq, ok, ack_other);
    }

    fn stop_retransmitting(&mut self, call_ref: CallRef, call: &mut Call) {
        self.timers
            .disarm(call_ref, call, CallTimer::RetransmitProvisional);
        self.timers.disarm(call_ref, call, CallTimer::PrackTimeout);
    }

    /// The caller's PRACK (on its early or confirmed dialog): `200` when it names our
    /// unacknowledged reliable response, `481` when not. A new offer in it goes to the
    /// callee as an UPDATE. Then the held 2xx or the next waiting response goes out.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_prack(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        leg: Leg,
        transaction: TransactionId,
        request: Request,
    ) {
        let rack = request.headers.get(&HeaderName::RAck).cloned();
        let acknowledged = match (leg, call.reliable.as_mut(), rack) {
            (Leg::A, Some(reliable), Some(rack)) => reliable.acknowledge(&rack),
            _ => None,
        };
        let Some(acknowledged) = acknowledged else {
            return self.answer(
                now,
                layer,
                &request,
                StatusCode::CALL_DOES_NOT_EXIST,
                "prack_unmatched",
            );
        };
        self.stop_retransmitting(call_ref, call);
        if let Some(reliable) = call.reliable.as_mut() {
            reliable.answer_delivered |= acknowledged.carries_sdp;
        }
        let offer = Body::is_sdp(&request.headers, &request.body);
        let live = matches!(call.phase, Phase::Setup { .. } | Phase::Confirmed);
        if offer && live {
            self.relay_as(
                now,
                layer,
                call_ref,
                call,
                Leg::A,
                transaction,
                request,
                Method::Update,
            );
        } else {
            let mut ok = request.make_response(StatusCode::OK, None, None);
            add_product(&self.config, &mut ok.headers, HeaderName::Server);
            self.respond(now, layer, ok);
        }
        if let Some(mut held) = call.reliable.as_mut().and_then(|r| r.held.take()) {
            if acknowledged.carries_sdp {
                // The caller has the answer now (RFC 6337 §3.1): no SDP again.
                remove_body(&mut held.ok);
            }
            self.respond(now, layer, held.ok.clone());
            self.wait_for_ack(
                now,
                layer,
                call_ref,
                call,
                Leg::A,
                held.seq,
                held.ok,
                held.ack_other,
            );
            return;
        }
        self.send_queued(now, layer, call_ref, call);
    }

    /// Sends the waiting provisional responses up to the next reliable one.
    fn send_queued(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
    ) {
        while matches!(call.phase, Phase::Setup { .. }) {
            let Some(reliable) = call.reliable.as_mut() else {
                return;
            };
            if reliable.unacknowledged.is_some() {
                return;
            }
            let Some(next) = reliable.queue.pop_front() else {
                return;
            };
            if reliable.must_be_reliable(&next) {
                self.send_reliably(now, layer, call_ref, call, next);
            } else {
                self.respond(now, layer, next);
            }
        }
    }

    /// The retransmission or the PRACK timeout of our reliable response fired.
    pub(super) fn on_reliable_timer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call_ref: CallRef,
        call: &mut Call,
        timer: CallTimer,
    ) {
        let Some(pending) = call
            .reliable
            .as_mut()
            .and_then(|r| r.unacknowledged.as_mut())
        else {
            return;
        };
        if timer == CallTimer::RetransmitProvisional {
            if layer
                .handle_send_response(now, pending.response.clone())
                .is_err()
            {
                return;
            }
            // RFC 3262 §3: the interval doubles, with no T2 cap.
            pending.interval = pending.interval.saturating_mul(2);
            let next = now + pending.interval;
            self.arm(call_ref, call, CallTimer::RetransmitProvisional, next);
            return;
        }
        self.timers
            .disarm(call_ref, call, CallTimer::RetransmitProvisional);
        let status =
            StatusCode::new(PRACK_TIMEOUT_STATUS).unwrap_or(StatusCode::SERVER_INTERNAL_ERROR);
        match call.phase {
            Phase::Setup { .. } => {
                self.abandon_setup(now, layer, call_ref, call, status, "prack_timeout");
            }
            Phase::Confirmed => {
                // The callee answered; the caller never had the 2xx.
                if let Some(held) = call.reliable.as_mut().and_then(|r| r.held.take()) {
                    self.answer_invite(now, layer, call, &held.invite, status);
                }
                self.send_bye(now, layer, call_ref, call, Leg::B);
                self.finish(now, layer, call_ref, call, "prack_timeout");
            }
            Phase::Cancelling { .. } | Phase::Ended => {}
        }
    }

    /// The call ends with a 2xx held for the caller: it gets `487` instead.
    pub(super) fn drop_held_answer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call: &mut Call,
    ) {
        if let Some(held) = call.reliable.as_mut().and_then(|r| r.held.take()) {
            self.answer_invite(
                now,
                layer,
                call,
                &held.invite,
                StatusCode::REQUEST_TERMINATED,
            );
        }
    }

    fn answer_invite(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call: &Call,
        invite: &Request,
        status: StatusCode,
    ) {
        let mut answer = invite.make_response(status, None, Some(&tag_str(&call.a.local_tag)));
        add_product(&self.config, &mut answer.headers, HeaderName::Server);
        self.respond(now, layer, answer);
    }
}

/// Whether a request that is not dialog-creating requires 100rel (a re-INVITE: its
/// provisional responses are relayed unreliably, so it is refused `420`).
pub(crate) fn requires_100rel(request: &Request) -> bool {
    request
        .headers
        .require()
        .is_ok_and(|tags| tags.iter().any(|tag| tag.eq_ignore_ascii_case(b"100rel")))
}
