//! 2xx responses nobody waits for: retransmissions of an answer we have ACKed (ACKed
//! again), and answers from other forks or after the call ended (ACKed and BYEd), when
//! they answer one of our own INVITEs.

use std::time::Instant;

use super::call::Call;
use super::dialog::Dialog;
use super::headers::Body;
use super::outgoing::{response_to_tag, route_set, seq_of};
use super::setup::DEFAULT_MAX_FORWARDS;
use super::{B2bua, count};
use crate::media::Leg;
use crate::net::Protocol;
use crate::sip::{Contact, Message, Method, Response, Transport};
use crate::transaction::{Event, Peer, TransactionLayer};

impl B2bua {
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

    /// A 2xx to an INVITE whose answer we already handled: ACK it again when it is the
    /// dialog's (our ACK was lost), ACK and BYE it when it is another fork's.
    pub(super) fn on_late_2xx(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        call: &mut Call,
        leg: Leg,
        response: &Response,
        peer: Peer,
    ) {
        let tag = response_to_tag(response);
        let dialog = call.leg(leg);
        if tag.is_some() && tag.as_ref() == dialog.remote_tag() {
            let seq = seq_of(&response.headers);
            let awaiting_answer = call
                .ack_wait
                .as_ref()
                .is_some_and(|wait| wait.leg == leg.other() && wait.ack_other == Some(seq));
            if awaiting_answer {
                // Our ACK carries the answer that the other leg's ACK brings: not yet.
                return;
            }
            match &call.last_ack {
                Some((acked, ack)) if *acked == leg && seq_of(&ack.headers) == seq => {
                    let ack = Message::Request(ack.clone());
                    if let Err(error) = layer.handle_send_stateless(&ack, dialog.peer) {
                        count(&mut self.stats.dropped, error.name());
                    }
                }
                _ => self.send_ack(layer, call, leg, seq, Body::Empty),
            }
            return;
        }
        self.ack_and_bye(now, layer, response, peer);
    }

    /// ACKs and BYEs a 2xx that no call wants (a fork, or an answer after the call
    /// ended), when it answers one of our INVITEs.
    pub(super) fn ack_and_bye(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        response: &Response,
        peer: Peer,
    ) {
        let Some(mut orphan) = orphan_dialog(response, peer) else {
            count(&mut self.stats.dropped, "unusable_orphan_2xx");
            return;
        };
        count(&mut self.stats.dropped, "orphan_2xx");
        let local = self.config.local_addr(orphan.protocol);
        let seq = seq_of(&response.headers);
        let branch = self.ids().branch(&orphan.remote_target);
        let ack = orphan.request(Method::Ack, seq, local, &branch, DEFAULT_MAX_FORWARDS);
        if let Err(error) = layer.handle_send_stateless(&Message::Request(ack), peer) {
            count(&mut self.stats.dropped, error.name());
        }
        orphan.local_cseq = seq;
        let seq = orphan.next_cseq();
        let branch = self.ids().branch(&orphan.remote_target);
        let bye = orphan.request(Method::Bye, seq, local, &branch, DEFAULT_MAX_FORWARDS);
        self.send_request(now, layer, bye, peer);
    }

    /// Whether a response answers one of our own requests (its top Via is ours).
    pub(super) fn is_ours(&self, response: &Response) -> bool {
        let prefix = format!("{}{:08x}", crate::transaction::MAGIC_COOKIE, self.marker);
        response
            .headers
            .top_via()
            .ok()
            .and_then(|via| via.branch().cloned())
            .is_some_and(|branch| branch.starts_with(prefix.as_bytes()))
    }
}

/// A throwaway dialog to ACK and BYE an unwanted 2xx of ours.
fn orphan_dialog(response: &Response, peer: Peer) -> Option<Dialog> {
    let via = response.headers.top_via().ok()?;
    let local = response.headers.from().ok()?;
    let local_tag = local.tag()?.clone();
    let remote = response.headers.to().ok()?;
    remote.tag()?;
    let remote_target = match response.headers.contact() {
        Ok(Some(Contact::Addresses(contacts))) => contacts.into_iter().next()?.uri,
        _ => return None,
    };
    let protocol = match via.transport {
        Transport::Tcp => Protocol::Tcp,
        Transport::Tls => Protocol::Tls,
        _ => Protocol::Udp,
    };
    Some(Dialog {
        call_id: response.headers.call_id().ok()?.clone(),
        local,
        remote,
        local_tag,
        local_cseq: 0,
        remote_cseq: None,
        remote_target,
        route_set: route_set(&response.headers, true),
        peer,
        protocol,
        secure: false,
    })
}
