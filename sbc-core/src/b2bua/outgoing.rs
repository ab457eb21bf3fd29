//! What the B2BUA sends on a leg: answers of its own, relayed responses, BYE and ACK.

use std::time::Instant;

use bytes::Bytes;

use super::call::{Call, CallRef, Role};
use super::headers::{self, Body};
use super::setup::DEFAULT_MAX_FORWARDS;
use super::{B2bua, SUPPORTED, add_product, count};
use crate::media::Leg;
use crate::sip::{HeaderName, Headers, Message, Method, NameAddr, Request, Response, StatusCode};
use crate::transaction::{Peer, TransactionId, TransactionLayer};

impl B2bua {
    /// Answers a request that does not become a call (a fresh tag for the To).
    pub(super) fn reject(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        request: &Request,
        status: StatusCode,
        reason: &'static str,
    ) {
        count(&mut self.stats.rejected, reason);
        let tag = self.ids().tag();
        let mut response = request.make_response(status, None, Some(&tag));
        add_product(&self.config, &mut response.headers, HeaderName::Server);
        self.respond(now, layer, response);
    }

    /// Sends a response through its server transaction, counting a failure.
    pub(super) fn respond(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        response: Response,
    ) {
        if let Err(error) = layer.handle_send_response(now, response) {
            count(&mut self.stats.dropped, error.name());
        }
    }

    /// Sends a request in a new client transaction, counting a failure.
    pub(super) fn send_request(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        request: Request,
        peer: Peer,
    ) -> Option<TransactionId> {
        match layer.handle_send_request(now, request, peer) {
            Ok(transaction) => Some(transaction),
            Err(error) => {
                count(&mut self.stats.dropped, error.name());
                None
            }
        }
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
        count(&mut self.stats.rejected, reason);
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
        if to == Leg::A
            && dialog_forming
            && response.status.as_u16() > 100
            && let Some(reason) = call
                .identity
                .as_ref()
                .and_then(|i| i.caller_reason.as_ref())
        {
            // RFC 9410: the caller learns its Identity failed though the call goes on.
            out.headers.push(HeaderName::Reason, reason.clone());
        }
        add_product(&self.config, &mut out.headers, HeaderName::Server);
        out
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
        if leg == Leg::A && call.reliable.as_ref().is_some_and(|r| r.holds_answer()) {
            // The caller has no 2xx yet (held for a PRACK): it gets a failure instead.
            return;
        }
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
}

/// The route set from a message's Record-Route: in order for a UAS, reversed for a UAC
/// (RFC 3261 §12.1.1, §12.1.2).
pub(super) fn route_set(headers: &Headers, reverse: bool) -> Vec<Bytes> {
    let mut routes: Vec<Bytes> = headers
        .record_routes()
        .unwrap_or_default()
        .iter()
        .map(NameAddr::to_bytes)
        .collect();
    if reverse {
        routes.reverse();
    }
    routes
}

pub(super) fn response_to_tag(response: &Response) -> Option<Bytes> {
    response.headers.to().ok().and_then(|to| to.tag().cloned())
}

pub(super) fn seq_of(headers: &Headers) -> u32 {
    headers.cseq().map_or(0, |cseq| cseq.seq)
}

pub(super) fn tag_str(tag: &Bytes) -> String {
    String::from_utf8_lossy(tag).into_owned()
}
