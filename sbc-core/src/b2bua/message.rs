//! MESSAGE outside a dialog (RFC 3428 pager mode), relayed like a call's INVITE but
//! without a dialog: routed by the same router, re-originated toward the target with a
//! new Call-ID, tags, CSeq and Via (the caller's topology never passes), and its final
//! response mapped back to the sender's transaction. A 408, a 5xx or a transport error
//! moves on to the next target; when none is left the sender gets `503`. A target that
//! does not answer at all is not followed by another: by the time our request times out
//! (Timer F, 64·T1) the sender's has too, and no 408 is sent for it (RFC 4320 §4.2: a
//! late 408 to a non-INVITE only adds load); its server transaction ends on its own.
//!
//! Nothing outlives the two transactions: the relay is keyed by our client transaction,
//! and at most [`MAX_MESSAGES`] are in flight per shard (`503` past it).

use std::sync::Arc;
use std::time::Instant;

use super::headers::{self, Body};
use super::router::{HeaderFilter, NoRoute, Target, TargetOutcome};
use super::setup::DEFAULT_MAX_FORWARDS;
use super::{B2bua, SUPPORTED, add_product, count};
use crate::sip::{HeaderName, Method, Request, Response, StatusCode};
use crate::transaction::{Peer, TransactionId, TransactionLayer};

/// Messages relayed at once per shard at most.
pub(super) const MAX_MESSAGES: usize = 4_096;

/// One MESSAGE on its way: what is needed to answer the sender and to try the next
/// target.
#[derive(Debug)]
pub(super) struct Relayed {
    /// The sender's request (body kept: it is sent again to the next target).
    request: Request,
    target: Target,
    remaining: Vec<Target>,
    hops: u8,
    toward_callee: Arc<dyn HeaderFilter>,
    toward_caller: Arc<dyn HeaderFilter>,
    /// Where our request went (for the destination registry).
    peer: Peer,
    /// Our tag for the sender's To.
    tag: String,
}

impl B2bua {
    /// A MESSAGE outside any dialog.
    pub(super) fn on_message(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        request: Request,
        source: Peer,
    ) {
        if self.messages.len() >= MAX_MESSAGES {
            return self.reject(
                now,
                layer,
                &request,
                StatusCode::SERVICE_UNAVAILABLE,
                "message_limit",
            );
        }
        let hops = match request.headers.max_forwards() {
            Ok(hops) => hops.unwrap_or(DEFAULT_MAX_FORWARDS),
            Err(_) => {
                return self.reject(
                    now,
                    layer,
                    &request,
                    StatusCode::BAD_REQUEST,
                    "bad_max_forwards",
                );
            }
        };
        if hops <= 1 {
            return self.reject(
                now,
                layer,
                &request,
                StatusCode::TOO_MANY_HOPS,
                "too_many_hops",
            );
        }
        let mut route = match self
            .router
            .route(source.remote, &request, &mut *self.random)
        {
            Ok(route) => route,
            Err(NoRoute::NotFound) => {
                return self.reject(now, layer, &request, StatusCode::NOT_FOUND, "no_route");
            }
            Err(NoRoute::Forbidden) => {
                let forbidden = StatusCode::new(403).unwrap_or(StatusCode::NOT_FOUND);
                return self.reject(now, layer, &request, forbidden, "forbidden");
            }
            Err(NoRoute::Unavailable) => {
                return self.reject(
                    now,
                    layer,
                    &request,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_target",
                );
            }
        };
        if !super::admission::keep_secure_targets(&request, &mut route) {
            let unavailable = StatusCode::new(480).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let reason = super::admission::NO_SECURE_TARGET;
            return self.reject(now, layer, &request, unavailable, reason);
        }
        let mut targets = route.targets.into_iter().take(self.config.max_targets);
        let Some(first) = targets.next() else {
            return self.reject(
                now,
                layer,
                &request,
                StatusCode::SERVICE_UNAVAILABLE,
                "no_target",
            );
        };
        let tag = self.ids().tag();
        let relayed = Relayed {
            request,
            target: first,
            remaining: targets.collect(),
            hops,
            toward_callee: route.toward_callee,
            toward_caller: route.toward_caller,
            peer: source,
            tag,
        };
        self.stats.messages_relayed += 1;
        self.send_message(now, layer, relayed);
    }

    /// Sends the MESSAGE of `relayed` to its target, moving on to the next ones while
    /// sending fails; answers the sender when none is left.
    fn send_message(&mut self, now: Instant, layer: &mut TransactionLayer, mut relayed: Relayed) {
        loop {
            let privacy = crate::policy::egress::Privacy::of(&relayed.request.headers);
            let trusted = relayed.toward_callee.trusted();
            let anonymous = !trusted && privacy.anonymous_from();
            let mut dialog = self.callee_dialog(&relayed.request, &relayed.target, anonymous);
            let seq = dialog.next_cseq();
            let local = self.config.local_addr(relayed.target.protocol);
            let branch = self.ids().branch(&dialog.remote_target);
            let mut out = dialog.request(
                Method::Message,
                seq,
                local,
                &branch,
                relayed.hops.saturating_sub(1),
            );
            headers::copy_passing(
                &relayed.request.headers,
                &mut out.headers,
                &*relayed.toward_callee,
                &SUPPORTED,
            );
            crate::policy::egress::apply(&mut out.headers, privacy, trusted);
            add_product(&self.config, &mut out.headers, HeaderName::UserAgent);
            Body::relayed(&relayed.request.headers, &relayed.request.body)
                .attach(&mut out.headers, &mut out.body);
            match layer.handle_send_request(now, out, dialog.peer) {
                Ok(transaction) => {
                    relayed.peer = dialog.peer;
                    self.register_destination(&dialog.peer, relayed.target.destination());
                    self.messages.insert(transaction, Box::new(relayed));
                    return;
                }
                Err(error) => {
                    count(&mut self.stats.dropped, error.name());
                    let Some(next) = next_target(&mut relayed) else {
                        return self.answer_message(
                            now,
                            layer,
                            &relayed,
                            StatusCode::SERVICE_UNAVAILABLE,
                            None,
                        );
                    };
                    relayed.target = next;
                }
            }
        }
    }

    /// Whether `transaction` is one of our MESSAGE client transactions.
    pub(super) fn is_message(&self, transaction: TransactionId) -> bool {
        self.messages.contains_key(&transaction)
    }

    /// A response to our MESSAGE: a final one is relayed to the sender (or, for a 408 or
    /// a 5xx, the next target is tried).
    pub(super) fn on_message_response(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        transaction: TransactionId,
        response: Response,
    ) {
        if !response.status.is_final() {
            return;
        }
        let Some(relayed) = self.take_message(transaction) else {
            return;
        };
        let code = response.status.as_u16();
        let failed = code == 408 || (500..600).contains(&code);
        self.router.report(
            &relayed.target,
            if failed {
                TargetOutcome::Failed
            } else {
                TargetOutcome::Answered
            },
        );
        if failed {
            return self.next_message_target(now, layer, relayed);
        }
        self.answer_message(now, layer, &relayed, response.status, Some(&response));
    }

    /// Our MESSAGE timed out (the sender has given up too: nothing is sent, see the
    /// module docs) or could not be sent (the next target, or `503`).
    pub(super) fn on_message_failure(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        transaction: TransactionId,
        timed_out: bool,
    ) {
        let Some(relayed) = self.take_message(transaction) else {
            return;
        };
        self.router.report(&relayed.target, TargetOutcome::Failed);
        if timed_out {
            count(&mut self.stats.rejected, "message_timeout");
            return;
        }
        self.next_message_target(now, layer, relayed);
    }

    /// Our MESSAGE's transaction is over (its answer was handled already).
    pub(super) fn on_message_terminated(&mut self, transaction: TransactionId) {
        let _ = self.take_message(transaction);
    }

    fn take_message(&mut self, transaction: TransactionId) -> Option<Box<Relayed>> {
        let relayed = self.messages.remove(&transaction)?;
        self.unregister_destination(&relayed.peer);
        Some(relayed)
    }

    fn next_message_target(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        mut relayed: Box<Relayed>,
    ) {
        match next_target(&mut relayed) {
            Some(next) => {
                self.stats.failovers += 1;
                relayed.target = next;
                self.send_message(now, layer, *relayed);
            }
            // The targets' own failures are theirs to hide: 503.
            None => {
                self.answer_message(now, layer, &relayed, StatusCode::SERVICE_UNAVAILABLE, None)
            }
        }
    }

    /// Answers the sender with `status`, relaying what `response` carries toward it.
    fn answer_message(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        relayed: &Relayed,
        status: StatusCode,
        response: Option<&Response>,
    ) {
        if !status.is_success() {
            count(&mut self.stats.rejected, "message_failed");
        }
        // 3xx would name the callee's hosts: the sender gets 480, as for calls.
        let status = if status.class() == 3 {
            StatusCode::new(480).unwrap_or(StatusCode::NOT_FOUND)
        } else {
            status
        };
        let mut out = relayed
            .request
            .make_response(status, None, Some(&relayed.tag));
        if let Some(response) = response {
            headers::copy_passing(
                &response.headers,
                &mut out.headers,
                &*relayed.toward_caller,
                &SUPPORTED,
            );
            Body::relayed(&response.headers, &response.body)
                .attach(&mut out.headers, &mut out.body);
        }
        add_product(&self.config, &mut out.headers, HeaderName::Server);
        self.respond(now, layer, out);
    }
}

fn next_target(relayed: &mut Relayed) -> Option<Target> {
    if relayed.remaining.is_empty() {
        None
    } else {
        Some(relayed.remaining.remove(0))
    }
}
