//! The B2BUA's side of caller identity (see `crate::identity::service`): new calls are
//! admitted, rejected, or parked while the certificate their verification needs is
//! fetched; parked calls resume when it comes, or fail when the wait is over; a CANCEL
//! ends a parked call. The INVITE's server transaction stays open all along (its `100
//! Trying` is already out), so the caller retransmits nothing.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::setup::NewCall;
use super::summary::IdentityVerdict;
use super::{B2bua, add_product, count};
use crate::identity::certs::CertChain;
use crate::identity::service::{Admission, CallIdentity, Waiting};
use crate::identity::sign::CallerEstablishment;
use crate::identity::verdict::Failure;
use crate::identity::verdict::Verstat;
use crate::sip::{HeaderName, Request, StatusCode};
use crate::transaction::{TransactionId, TransactionLayer};

/// A new call waiting for a certificate.
#[derive(Debug)]
pub(super) struct Parked {
    setup: NewCall,
    waiting: Box<Waiting>,
    deadline: Instant,
}

impl B2bua {
    /// Runs the identity service on a new call. Returns the call to start and its
    /// identity, or `None` when the call was rejected or parked.
    pub(super) fn admit_identity(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        setup: NewCall,
    ) -> Option<(NewCall, Option<Box<CallIdentity>>)> {
        let Some(service) = self.identity.as_mut() else {
            return Some((setup, None));
        };
        let admission = service.admit(
            &setup.request,
            setup.route.source_trunk.as_deref(),
            &setup.route.trunk,
            &setup.caller,
            &mut *self.random,
            &mut self.stats.identity,
        );
        self.on_admission(now, layer, setup, admission)
    }

    fn on_admission(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        setup: NewCall,
        admission: Admission,
    ) -> Option<(NewCall, Option<Box<CallIdentity>>)> {
        match admission {
            Admission::Proceed(identity) => Some((setup, Some(identity))),
            Admission::Reject { failure, reason } => {
                self.reject_identity(now, layer, &setup, failure, reason);
                None
            }
            Admission::Wait(waiting) => {
                let max_waiting = self.identity.as_ref().map_or(0, |s| s.max_waiting());
                if self.parked.len() >= max_waiting {
                    // Too many calls wait already: this one fails as if unreachable.
                    let service = self.identity.as_mut()?;
                    let admission = service.resume(
                        &setup.request,
                        *waiting,
                        &setup.caller,
                        Err(Failure::X5uUnreachable),
                        &mut *self.random,
                        &mut self.stats.identity,
                    );
                    count(&mut self.stats.dropped, "identity_wait_full");
                    return match admission {
                        Admission::Wait(_) => {
                            self.reject(
                                now,
                                layer,
                                &setup.request,
                                StatusCode::SERVICE_UNAVAILABLE,
                                "identity_wait_full",
                            );
                            None
                        }
                        other => self.on_admission(now, layer, setup, other),
                    };
                }
                let wait = self
                    .identity
                    .as_ref()
                    .map(|s| s.max_wait())
                    .unwrap_or_default();
                self.parked.insert(
                    setup.transaction,
                    Parked {
                        setup,
                        waiting,
                        deadline: now + wait,
                    },
                );
                None
            }
        }
    }

    /// Answers a call whose verification failed under an enforcing policy: the RFC 8224
    /// status and, when the trunk wants it, RFC 9410 `Reason: STIR`. The attempt is
    /// recorded with its verdict.
    fn reject_identity(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        setup: &NewCall,
        failure: Failure,
        reason: bool,
    ) {
        let request = &setup.request;
        self.record_refusal_with(
            now,
            request,
            &setup.source,
            failure.status_code(),
            "identity",
            IdentityVerdict::TnValidationFailed,
        );
        count(&mut self.stats.rejected, "identity");
        let tag = self.ids().tag();
        let mut response = request.make_response(
            failure.status_code(),
            Some(failure.reason_phrase()),
            Some(&tag),
        );
        if reason {
            response
                .headers
                .push(HeaderName::Reason, failure.reason_header());
        }
        add_product(&self.config, &mut response.headers, HeaderName::Server);
        self.respond(now, layer, response);
    }

    /// A certificate the driver fetched for `url` (or why it could not). Every call
    /// waiting for it resumes.
    pub fn handle_certificate(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        url: &str,
        outcome: Result<Arc<CertChain>, Failure>,
        fresh_until: SystemTime,
    ) {
        let Some(service) = self.identity.as_mut() else {
            return;
        };
        service.handle_fetched(url, &outcome, fresh_until);
        let ready: Vec<TransactionId> = self
            .parked
            .iter()
            .filter(|(_, parked)| parked.waiting.url() == url)
            .map(|(&transaction, _)| transaction)
            .collect();
        for transaction in ready {
            self.resume_parked(now, layer, transaction, outcome.clone());
        }
    }

    fn resume_parked(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        transaction: TransactionId,
        outcome: Result<Arc<CertChain>, Failure>,
    ) {
        let Some(parked) = self.parked.remove(&transaction) else {
            return;
        };
        let Some(service) = self.identity.as_mut() else {
            return;
        };
        let admission = service.resume(
            &parked.setup.request,
            *parked.waiting,
            &parked.setup.caller,
            outcome,
            &mut *self.random,
            &mut self.stats.identity,
        );
        if let Some((setup, identity)) = self.on_admission(now, layer, parked.setup, admission) {
            if self.active >= self.config.max_calls {
                return self.reject(
                    now,
                    layer,
                    &setup.request,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "call_limit",
                );
            }
            self.start_call(now, layer, setup, identity);
        }
    }

    /// Parked calls whose wait is over fail as `x5u_unreachable` (and go on or are
    /// rejected per their trunk's policy).
    pub(super) fn expire_parked(&mut self, now: Instant, layer: &mut TransactionLayer) {
        let expired: Vec<(TransactionId, String)> = self
            .parked
            .iter()
            .filter(|(_, parked)| parked.deadline <= now)
            .map(|(&transaction, parked)| (transaction, parked.waiting.url().to_owned()))
            .collect();
        for (transaction, url) in expired {
            count(&mut self.stats.dropped, "identity_wait_expired");
            if let Some(service) = self.identity.as_mut() {
                service.forget_asked(&url);
            }
            self.resume_parked(now, layer, transaction, Err(Failure::X5uUnreachable));
        }
    }

    /// The earliest end of a parked call's wait.
    pub(super) fn parked_deadline(&self) -> Option<Instant> {
        self.parked.values().map(|parked| parked.deadline).min()
    }

    /// A CANCEL of a parked INVITE: `200` to it, `487` to the INVITE.
    pub(super) fn cancel_parked(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        invite: TransactionId,
        cancel: &Request,
    ) -> bool {
        let Some(parked) = self.parked.remove(&invite) else {
            return false;
        };
        let tag = parked.setup.tag.clone();
        let ok = cancel.make_response(StatusCode::OK, None, Some(&tag));
        self.respond(now, layer, ok);
        let mut terminated =
            parked
                .setup
                .request
                .make_response(StatusCode::REQUEST_TERMINATED, None, Some(&tag));
        add_product(&self.config, &mut terminated.headers, HeaderName::Server);
        self.respond(now, layer, terminated);
        count(&mut self.stats.ended, "cancelled_before_identity");
        true
    }

    /// Whether `invite` is a parked INVITE.
    pub(super) fn is_parked(&self, invite: &TransactionId) -> bool {
        self.parked.contains_key(invite)
    }

    /// The next certificate URL to fetch for a parked call.
    pub fn poll_certificate_fetch(&mut self) -> Option<String> {
        self.identity.as_mut()?.poll_fetch()
    }
}

/// What the call's security summary says of its identity.
pub(super) fn summary_verdict(identity: Option<&CallIdentity>) -> IdentityVerdict {
    match identity.and_then(|identity| identity.verdict.as_ref()) {
        None => IdentityVerdict::NotChecked,
        Some(verdict) => match verdict.verstat() {
            Verstat::Passed => IdentityVerdict::TnValidationPassed,
            Verstat::Failed => IdentityVerdict::TnValidationFailed,
            Verstat::NoValidation => IdentityVerdict::NoTnValidation,
        },
    }
}

/// How the trust boundary established the caller, for the attestation of a PASSporT the
/// SBC signs: an authenticated user (or one calling on its registration's flow) calling
/// with its own number earns A, with another number B; anything else is left to the
/// identity policy of the trunk it came from.
pub(super) fn establishment(who: &super::CallerIdentity, request: &Request) -> CallerEstablishment {
    let Some(aor) = who.user.as_deref() else {
        return CallerEstablishment::Unknown;
    };
    let user = aor
        .strip_prefix("sip:")
        .or_else(|| aor.strip_prefix("sips:"))
        .unwrap_or(aor)
        .split('@')
        .next()
        .unwrap_or_default();
    let calling = request
        .headers
        .from()
        .ok()
        .and_then(|from| crate::identity::numbers::party_of_uri(&from.uri));
    let owns_number = match (
        calling,
        crate::identity::numbers::canonical_tn(user.as_bytes()),
    ) {
        (Some(crate::identity::Party::Tn(calling)), Some(own)) => calling == own,
        _ => false,
    };
    CallerEstablishment::AuthenticatedUser { owns_number }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;

    use super::*;

    fn invite_from(from: &str) -> Request {
        let text = format!(
            "INVITE sip:bob@sbc SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             From: <{from}>;tag=1\r\nTo: <sip:bob@sbc>\r\nCall-ID: 1\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        );
        match crate::sip::parse_message(Bytes::from(text)).unwrap() {
            crate::sip::Message::Request(request) => request,
            crate::sip::Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn an_authenticated_user_calling_with_its_own_number_earns_full_attestation() {
        let user = |aor: &str| super::super::CallerIdentity {
            user: Some(aor.into()),
            trunk: None,
            client_certificate: false,
        };
        let own = invite_from("sip:+12155551212@example.net");
        assert_eq!(
            establishment(&user("sip:+1-215-555-1212@example.net"), &own),
            CallerEstablishment::AuthenticatedUser { owns_number: true }
        );
        assert_eq!(
            establishment(&user("sip:alice@example.net"), &own),
            CallerEstablishment::AuthenticatedUser { owns_number: false }
        );
        let trunk = super::super::CallerIdentity {
            user: None,
            trunk: Some("carrier".into()),
            client_certificate: false,
        };
        assert_eq!(establishment(&trunk, &own), CallerEstablishment::Unknown);
    }
}
