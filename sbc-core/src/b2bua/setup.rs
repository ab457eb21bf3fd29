//! A new call: the caller's INVITE checked, routed and re-originated toward the first
//! target on a fresh B-leg dialog.

use std::time::Instant;

use bytes::Bytes;

use super::anchor::{self};
use super::call::{Attempt, Call, CallRef, Phase, Role};
use super::dialog::Dialog;
use super::headers::{self, Body};
use super::negotiated::LegPolicies;
use super::outgoing::route_set;
use super::record::CallLog;
use super::reliable::ReliableToCaller;
use super::router::{HeaderFilter, NoRoute, RouteChoice, Target};
use super::{B2bua, SUPPORTED, add_product, count};
use crate::identity::egress;
use crate::identity::service::CallIdentity;
use crate::identity::sign::CallerEstablishment;
use crate::media::Leg;
use crate::net::Protocol;
use crate::sdp::SessionDescription;
use crate::sip::{
    Contact, HeaderName, Host, HostPort, Method, NameAddr, Params, Request, SipUri, StatusCode,
    Transport, Uri,
};
use crate::transaction::{Peer, Reliability, SendError, TransactionId, TransactionLayer};

/// A new call that passed the checks before its identity: what starting it needs.
#[derive(Debug)]
pub(super) struct NewCall {
    pub transaction: TransactionId,
    pub request: Request,
    pub source: Peer,
    /// Our tag toward the caller.
    pub tag: String,
    pub route: RouteChoice,
    pub hops: u8,
    pub offer: Option<SessionDescription>,
    /// Who is calling, as the trust boundary established it (for the call limits).
    pub who: super::CallerIdentity,
    /// How the caller was established (what our signature attests).
    pub caller: CallerEstablishment,
}

/// Max-Forwards when a request carries none (RFC 3261 §8.1.1.6).
pub(super) const DEFAULT_MAX_FORWARDS: u8 = 70;

impl B2bua {
    /// A dialog-creating INVITE.
    pub(super) fn on_new_invite(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        transaction: TransactionId,
        request: Request,
        source: Peer,
        identity: &super::CallerIdentity,
    ) {
        if self.draining {
            return self.refuse(
                now,
                layer,
                &request,
                &source,
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
            );
        }
        if self.active >= self.config.max_calls {
            return self.refuse(
                now,
                layer,
                &request,
                &source,
                StatusCode::SERVICE_UNAVAILABLE,
                "call_limit",
            );
        }
        let hops = match request.headers.max_forwards() {
            Ok(hops) => hops.unwrap_or(DEFAULT_MAX_FORWARDS),
            Err(_) => {
                return self.refuse(
                    now,
                    layer,
                    &request,
                    &source,
                    StatusCode::BAD_REQUEST,
                    "bad_max_forwards",
                );
            }
        };
        if hops <= 1 {
            return self.refuse(
                now,
                layer,
                &request,
                &source,
                StatusCode::TOO_MANY_HOPS,
                "too_many_hops",
            );
        }
        let vias = request.headers.vias().unwrap_or_default();
        let branches = vias
            .iter()
            .filter_map(|via| via.branch())
            .map(|b| b.as_ref());
        if headers::is_loop(branches, self.marker, &request.uri) {
            return self.refuse(
                now,
                layer,
                &request,
                &source,
                StatusCode::LOOP_DETECTED,
                "loop_detected",
            );
        }
        let tag = self.ids().tag();
        if caller_dialog(&request, source, &tag).is_none() {
            return self.refuse(
                now,
                layer,
                &request,
                &source,
                StatusCode::BAD_REQUEST,
                "bad_dialog_headers",
            );
        }
        let offer = if Body::is_sdp(&request.headers, &request.body) {
            match anchor::parse(&request.body) {
                Ok(sdp) => Some(sdp),
                Err(_) => {
                    return self.refuse(
                        now,
                        layer,
                        &request,
                        &source,
                        StatusCode::BAD_REQUEST,
                        "malformed_sdp",
                    );
                }
            }
        } else {
            None
        };
        let route = match self
            .router
            .route(source.remote, &request, &mut *self.random)
        {
            Ok(route) => route,
            Err(NoRoute::NotFound) => {
                return self.refuse(
                    now,
                    layer,
                    &request,
                    &source,
                    StatusCode::NOT_FOUND,
                    "no_route",
                );
            }
            Err(NoRoute::Forbidden) => {
                let forbidden = StatusCode::new(403).unwrap_or(StatusCode::NOT_FOUND);
                return self.refuse(now, layer, &request, &source, forbidden, "forbidden");
            }
            Err(NoRoute::Unavailable) => {
                return self.refuse(
                    now,
                    layer,
                    &request,
                    &source,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_target",
                );
            }
        };
        let caller = super::identity::establishment(identity, &request);
        let setup = NewCall {
            transaction,
            request,
            source,
            tag,
            caller,
            who: identity.clone(),
            route,
            hops,
            offer,
        };
        if let Some((setup, identity)) = self.admit_identity(now, layer, setup) {
            self.start_call(now, layer, setup, identity);
        }
    }

    /// Re-originates a call that passed every check (identity included).
    pub(super) fn start_call(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        setup: NewCall,
        identity: Option<Box<CallIdentity>>,
    ) {
        let NewCall {
            transaction,
            request,
            source,
            tag,
            mut route,
            hops,
            offer,
            who,
            caller: _,
        } = setup;
        let Some(caller) = caller_dialog(&request, source, &tag) else {
            return self.refuse(
                now,
                layer,
                &request,
                &source,
                StatusCode::BAD_REQUEST,
                "bad_dialog_headers",
            );
        };
        if !super::admission::keep_secure_targets(&request, &mut route) {
            let unavailable = StatusCode::new(480).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let reason = super::admission::NO_SECURE_TARGET;
            return self.reject(now, layer, &request, unavailable, reason);
        }
        let limit_slot = match self.admit_call(&who, &route) {
            Ok(slot) => slot,
            Err(limit) => return self.refuse_over_limit(now, layer, &request, limit),
        };
        let mut targets = route.targets;
        targets.truncate(self.config.max_targets);

        let call_ref = CallRef(self.next_call);
        self.next_call += 1;
        let mut media = None;
        let media_policies = LegPolicies {
            a: route.toward_caller.media(),
            b: route.toward_callee.media(),
            a_secure: caller.protocol == Protocol::Tls,
            b_secure: targets.first().is_some_and(|t| t.protocol == Protocol::Tls),
        };
        let offer = match offer {
            Some(sdp) => {
                match self.anchor_sdp(call_ref, &mut media, &media_policies, Leg::A, sdp, true) {
                    Ok(anchored) => Some(anchored),
                    Err(error) => {
                        self.release_media(&mut media);
                        return self.refuse(
                            now,
                            layer,
                            &request,
                            &source,
                            error.status(),
                            error.name(),
                        );
                    }
                }
            }
            None => None,
        };

        let reliable = ReliableToCaller::for_invite(&request, offer.is_some(), (self.random)());
        let mut log = CallLog::new(now, &request, &source, route.trunk.clone());
        log.security.identity = super::identity::summary_verdict(identity.as_deref());
        log.caller_certificate_verified = who.client_certificate;
        let mut stored = request;
        stored.body = Bytes::new();
        let mut remaining = targets.into_iter();
        let mut last_failure = StatusCode::SERVICE_UNAVAILABLE;
        let started = loop {
            let Some(target) = remaining.next() else {
                break None;
            };
            match self.send_attempt(
                now,
                layer,
                &stored,
                hops,
                offer.as_ref(),
                &target,
                &*route.toward_callee,
                identity.as_deref(),
            ) {
                Ok(started) => break Some(started),
                Err(error) => {
                    count(&mut self.stats.dropped, error.name());
                    last_failure = StatusCode::SERVICE_UNAVAILABLE;
                }
            }
        };
        let Some((callee, attempt)) = started else {
            self.release_media(&mut media);
            return self.refuse(now, layer, &stored, &source, last_failure, "no_target");
        };

        let destination = attempt.target.destination();
        let attempt_transaction = attempt.transaction;
        let mut call = Box::new(Call {
            phase: Phase::Setup {
                invite: Box::new(stored),
                attempt,
                remaining: remaining.collect(),
                offer,
                max_forwards: hops,
            },
            a: caller,
            b: callee,
            toward_b: route.toward_callee,
            toward_a: route.toward_caller,
            media,
            media_policies,
            exchanges: Vec::new(),
            next_exchange: 0,
            ack_wait: None,
            transactions: Vec::new(),
            timers: Vec::new(),
            session_interval: None,
            last_ack: None,
            holds_slot: true,
            limit_slot,
            reliable,
            identity,
            log,
        });
        self.track(transaction, call_ref, &mut call, Role::CallerInvite);
        self.track(attempt_transaction, call_ref, &mut call, Role::CalleeInvite);
        for (leg, dialog) in [(Leg::A, &call.a), (Leg::B, &call.b)] {
            self.dialogs.insert(
                (dialog.call_id.clone(), dialog.local_tag.clone()),
                (call_ref, leg),
            );
        }
        self.register_destination(&call.b.peer, destination);
        self.arm_reap(now, layer, call_ref, &mut call);
        self.active += 1;
        self.stats.calls_started += 1;
        self.calls.insert(call_ref, call);
    }

    /// Refuses a new call with `status` (counted under `reason`) and records the attempt.
    pub(super) fn refuse(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        request: &Request,
        source: &Peer,
        status: StatusCode,
        reason: &'static str,
    ) {
        self.record_refusal(now, request, source, status, reason);
        self.reject(now, layer, request, status, reason);
    }

    /// Builds and sends our INVITE to `target`, on a fresh B-leg dialog.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_attempt(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        invite: &Request,
        hops: u8,
        offer: Option<&Bytes>,
        target: &Target,
        filter: &dyn HeaderFilter,
        identity: Option<&CallIdentity>,
    ) -> Result<(Dialog, Attempt), SendError> {
        let privacy = crate::policy::egress::Privacy::of(&invite.headers);
        let anonymous = !filter.trusted() && privacy.anonymous_from();
        let mut callee = self.callee_dialog(invite, target, anonymous);
        let seq = callee.next_cseq();
        let local = self.config.local_addr(target.protocol);
        let branch = self.ids().branch(&callee.remote_target);
        let mut request =
            callee.request(Method::Invite, seq, local, &branch, hops.saturating_sub(1));
        headers::copy_passing(&invite.headers, &mut request.headers, filter, &SUPPORTED);
        crate::policy::egress::apply(&mut request.headers, privacy, filter.trusted());
        if let Some(identity) = identity {
            // Identity and verstat are set on purpose, whatever the header policy (after
            // privacy, so verstat goes on From when P-Asserted-Identity was withheld).
            egress::apply(identity, &mut request.headers, &mut callee.local);
            request
                .headers
                .set(HeaderName::From, callee.local.to_bytes());
        }
        request
            .headers
            .push(HeaderName::Allow, headers::ALLOWED_METHODS);
        // RFC 3262 is terminated on the B-leg: we PRACK the callee's reliable provisional
        // responses ourselves (and relay them unreliably). Not with an INVITE without an
        // offer, where a reliable provisional response would carry an offer whose answer
        // the PRACK would have to bring.
        let mut supported = headers::supported_for(&invite.headers, &SUPPORTED)
            .map(|tags| tags.to_vec())
            .unwrap_or_default();
        if offer.is_some() {
            if !supported.is_empty() {
                supported.extend_from_slice(b", ");
            }
            supported.extend_from_slice(b"100rel");
        }
        if !supported.is_empty() {
            request.headers.push(HeaderName::Supported, supported);
        }
        add_product(&self.config, &mut request.headers, HeaderName::UserAgent);
        let body = offer.map_or(Body::Empty, |offer| Body::Sdp(offer.clone()));
        body.attach(&mut request.headers, &mut request.body);
        let transaction = layer.handle_send_request(now, request.clone(), callee.peer)?;
        request.body = Bytes::new();
        Ok((
            callee,
            Attempt {
                transaction,
                target: target.clone(),
                invite: request,
                provisional: false,
                timed_out: false,
                last_rseq: None,
                early_answer: None,
            },
        ))
    }

    /// A fresh B-leg dialog toward `target` for the caller's `invite`: the Request-URI and
    /// To keep their user part with the target as host, From keeps its user part with our
    /// domain as host; new Call-ID and tag.
    pub(super) fn callee_dialog(
        &mut self,
        invite: &Request,
        target: &Target,
        anonymous: bool,
    ) -> Dialog {
        let host = headers::target_host(target.addr, target.server_name.as_deref());
        let tls = target.protocol == Protocol::Tls;
        let bare = || SipUri {
            secure: false,
            user: None,
            password: None,
            host: host.clone(),
            params: Params::default(),
            headers: None,
        };
        let mut request_uri = headers::rehost(&invite.uri, &host, tls).unwrap_or_else(bare);
        // A registered contact is called at its Contact URI (RFC 3261 §10), the To
        // keeping the address of record.
        if let Some(registered) = &target.registered
            && let Uri::Sip(contact) = &registered.uri
        {
            request_uri = contact.clone();
            request_uri.secure = contact.secure && tls;
        }
        let secure = request_uri.secure;
        let to = invite.headers.to().ok();
        let to = NameAddr {
            display_name: to.as_ref().and_then(|to| to.display_name.clone()),
            uri: Uri::Sip(
                to.as_ref()
                    .and_then(|to| headers::rehost(&to.uri, &host, secure))
                    .unwrap_or_else(|| request_uri.clone()),
            ),
            params: Params::default(),
            angle_brackets: true,
        };
        let our_host = match &self.config.domain {
            Some(domain) => HostPort {
                host: Host::Name(domain.as_str().into()),
                port: None,
            },
            None => {
                let mut host = headers::target_host(self.config.local_addr(target.protocol), None);
                host.port = None;
                host
            }
        };
        let from = invite.headers.from().ok();
        let from_uri = from
            .as_ref()
            .and_then(|from| match &from.uri {
                // RFC 3323 §4.1.1: an anonymous From stays anonymous.
                Uri::Sip(sip) if is_anonymous(&sip.host) => Some(SipUri {
                    params: Params::default(),
                    headers: None,
                    password: None,
                    secure,
                    ..sip.clone()
                }),
                other => headers::rehost(other, &our_host, secure),
            })
            .unwrap_or_else(|| SipUri {
                host: our_host.clone(),
                ..bare()
            });
        let tag = self.ids().tag();
        let mut params = Params::default();
        params.set("tag", Some(Bytes::from(tag.clone())));
        let local = if anonymous {
            // RFC 3323: the caller asked for privacy and the peer is outside the trust
            // domain.
            let mut anonymous = crate::policy::egress::anonymous_from(secure);
            anonymous.params = params;
            anonymous
        } else {
            NameAddr {
                display_name: from.and_then(|from| from.display_name),
                uri: Uri::Sip(from_uri),
                params,
                angle_brackets: true,
            }
        };
        Dialog {
            call_id: Bytes::from(self.new_call_id()),
            local,
            remote: to,
            local_tag: Bytes::from(tag),
            local_cseq: 0,
            remote_cseq: None,
            remote_target: Uri::Sip(request_uri),
            route_set: target
                .registered
                .as_ref()
                .map(|registered| registered.path.clone())
                .unwrap_or_default(),
            peer: Peer {
                remote: target.addr,
                reliability: if target.protocol.is_stream() {
                    Reliability::Reliable
                } else {
                    Reliability::Unreliable
                },
                // A registered user is reached on its registered flow only.
                flow: target
                    .registered
                    .as_ref()
                    .and_then(|registered| registered.flow),
            },
            protocol: target.protocol,
            secure,
        }
    }
}

/// The caller's dialog from its INVITE, with `tag` as our tag.
fn caller_dialog(request: &Request, source: Peer, tag: &str) -> Option<Dialog> {
    let call_id = request.headers.call_id().ok()?.clone();
    let remote = request.headers.from().ok()?;
    let mut local = request.headers.to().ok()?;
    local
        .params
        .set("tag", Some(Bytes::copy_from_slice(tag.as_bytes())));
    let remote_target = match request.headers.contact() {
        Ok(Some(Contact::Addresses(contacts))) => contacts.into_iter().next()?.uri,
        _ => return None,
    };
    if matches!(remote_target, Uri::Other { .. }) {
        return None;
    }
    let seq = request.headers.cseq().ok()?.seq;
    let protocol = match request.headers.top_via().ok()?.transport {
        Transport::Udp => Protocol::Udp,
        Transport::Tls | Transport::Wss => Protocol::Tls,
        _ if source.reliability == Reliability::Reliable => Protocol::Tcp,
        _ => Protocol::Udp,
    };
    Some(Dialog {
        call_id,
        local,
        remote,
        local_tag: Bytes::copy_from_slice(tag.as_bytes()),
        local_cseq: 0,
        remote_cseq: Some(seq),
        remote_target,
        route_set: route_set(&request.headers, false),
        peer: source,
        protocol,
        secure: matches!(&request.uri, Uri::Sip(sip) if sip.secure),
    })
}

fn is_anonymous(host: &HostPort) -> bool {
    matches!(&host.host, Host::Name(name) if name.eq_ignore_ascii_case("anonymous.invalid"))
}
