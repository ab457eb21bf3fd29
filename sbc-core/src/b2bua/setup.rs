//! Call setup: a new INVITE, our attempts toward the targets, their responses, failover
//! and CANCEL.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::anchor::{self, OriginState};
use super::call::{Attempt, Call, CallRef, MediaState, Phase, Role};
use super::dialog::{self, Dialog};
use super::headers::{self, Body};
use super::router::{HeaderFilter, NoRoute, Target, TargetOutcome};
use super::{B2bua, SUPPORTED, add_product, count};
use crate::media::{Leg, MediaError, RemoteMedia};
use crate::net::Protocol;
use crate::sdp::SessionDescription;
use crate::sip::{
    Contact, HeaderName, Headers, Host, HostPort, Message, Method, NameAddr, Params, Request,
    Response, SipUri, StatusCode, Transport, Uri,
};
use crate::transaction::{Peer, Reliability, SendError, Timer, TransactionId, TransactionLayer};

/// Max-Forwards when a request carries none (RFC 3261 §8.1.1.6).
pub(super) const DEFAULT_MAX_FORWARDS: u8 = 70;

/// Why an SDP could not be anchored.
#[derive(Clone, Copy, Debug)]
pub(super) enum AnchorError {
    Malformed,
    TooManyStreams,
    Relay,
}

impl AnchorError {
    pub(super) fn status(self) -> StatusCode {
        match self {
            AnchorError::Malformed => StatusCode::BAD_REQUEST,
            AnchorError::TooManyStreams => StatusCode::new(488).unwrap_or(StatusCode::BAD_REQUEST),
            AnchorError::Relay => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            AnchorError::Malformed => "malformed_sdp",
            AnchorError::TooManyStreams => "too_many_streams",
            AnchorError::Relay => "media_unavailable",
        }
    }
}

impl B2bua {
    /// A dialog-creating INVITE.
    pub(super) fn on_new_invite(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        transaction: TransactionId,
        request: Request,
        source: Peer,
    ) {
        if self.active >= self.config.max_calls {
            return self.reject(
                now,
                layer,
                &request,
                StatusCode::SERVICE_UNAVAILABLE,
                "call_limit",
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
        let vias = request.headers.vias().unwrap_or_default();
        let branches = vias
            .iter()
            .filter_map(|via| via.branch())
            .map(|b| b.as_ref());
        if headers::is_loop(branches, self.marker, &request.uri) {
            return self.reject(
                now,
                layer,
                &request,
                StatusCode::LOOP_DETECTED,
                "loop_detected",
            );
        }
        let tag = self.ids().tag();
        let Some(caller) = caller_dialog(&request, source, &tag) else {
            return self.reject(
                now,
                layer,
                &request,
                StatusCode::BAD_REQUEST,
                "bad_dialog_headers",
            );
        };
        let offer = if Body::is_sdp(&request.headers, &request.body) {
            match anchor::parse(&request.body) {
                Ok(sdp) => Some(sdp),
                Err(_) => {
                    return self.reject(
                        now,
                        layer,
                        &request,
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
        let mut targets = route.targets;
        targets.truncate(self.config.max_targets);

        let call_ref = CallRef(self.next_call);
        self.next_call += 1;
        let mut media = None;
        let offer = match offer {
            Some(sdp) => match self.anchor_sdp(call_ref, &mut media, Leg::A, sdp) {
                Ok(anchored) => Some(anchored),
                Err(error) => {
                    self.release_media(&mut media);
                    return self.reject(now, layer, &request, error.status(), error.name());
                }
            },
            None => None,
        };

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
            return self.reject(now, layer, &stored, last_failure, "no_target");
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
            exchanges: Vec::new(),
            next_exchange: 0,
            ack_wait: None,
            transactions: 0,
            timers: Vec::new(),
            session_interval: None,
            last_ack: None,
            holds_slot: true,
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
        self.active += 1;
        self.stats.calls_started += 1;
        self.calls.insert(call_ref, call);
    }

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

    /// Builds and sends our INVITE to `target`, on a fresh B-leg dialog.
    fn send_attempt(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        invite: &Request,
        hops: u8,
        offer: Option<&Bytes>,
        target: &Target,
        filter: &dyn HeaderFilter,
    ) -> Result<(Dialog, Attempt), SendError> {
        let mut callee = self.callee_dialog(invite, target);
        let seq = callee.next_cseq();
        let local = self.config.local_addr(target.protocol);
        let branch = self.ids().branch(&callee.remote_target);
        let mut request =
            callee.request(Method::Invite, seq, local, &branch, hops.saturating_sub(1));
        headers::copy_passing(&invite.headers, &mut request.headers, filter, &SUPPORTED);
        request
            .headers
            .push(HeaderName::Allow, headers::ALLOWED_METHODS);
        if let Some(supported) = headers::supported_for(&invite.headers, &SUPPORTED) {
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
            },
        ))
    }

    /// A fresh B-leg dialog toward `target` for the caller's `invite`: the Request-URI and
    /// To keep their user part with the target as host, From keeps its user part with our
    /// domain as host; new Call-ID and tag.
    fn callee_dialog(&mut self, invite: &Request, target: &Target) -> Dialog {
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
        let request_uri = headers::rehost(&invite.uri, &host, tls).unwrap_or_else(bare);
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
        let local = NameAddr {
            display_name: from.and_then(|from| from.display_name),
            uri: Uri::Sip(from_uri),
            params,
            angle_brackets: true,
        };
        Dialog {
            call_id: Bytes::from(self.ids().call_id()),
            local,
            remote: to,
            local_tag: Bytes::from(tag),
            local_cseq: 0,
            remote_cseq: None,
            remote_target: Uri::Sip(request_uri),
            route_set: Vec::new(),
            peer: Peer {
                remote: target.addr,
                reliability: if target.protocol.is_stream() {
                    Reliability::Reliable
                } else {
                    Reliability::Unreliable
                },
                flow: None,
            },
            protocol: target.protocol,
            secure,
        }
    }

    /// Anchors an SDP that came from `from` for the other leg: allocates the relay session
    /// (or more streams) as needed, tells the relay where `from` receives, and returns the
    /// rewritten description.
    pub(super) fn anchor_sdp(
        &mut self,
        call_ref: CallRef,
        media: &mut Option<MediaState>,
        from: Leg,
        sdp: SessionDescription,
    ) -> Result<Bytes, AnchorError> {
        let streams = sdp.media.len();
        if streams > self.config.max_streams {
            return Err(AnchorError::TooManyStreams);
        }
        if media.is_none() {
            let allocation = self.media.allocate(streams.max(1)).map_err(|error| {
                self.media_error(error);
                AnchorError::Relay
            })?;
            self.sessions.insert(allocation.session, call_ref);
            let (origin_a, origin_b) = (
                OriginState::new((self.random)()),
                OriginState::new((self.random)()),
            );
            *media = Some(MediaState {
                session: allocation.session,
                streams: allocation.streams,
                origin_a,
                origin_b,
                remote_a: Vec::new(),
                remote_b: Vec::new(),
            });
        }
        let Some(state) = media.as_mut() else {
            return Err(AnchorError::Relay);
        };
        if streams > state.streams.len() {
            let more = streams - state.streams.len();
            match self.media.add_streams(state.session, more) {
                Ok(added) => state.streams.extend(added),
                Err(error) => {
                    self.media_error(error);
                    return Err(AnchorError::Relay);
                }
            }
        }
        if state.streams.len() < streams.max(1) {
            return Err(AnchorError::Relay);
        }
        let remotes = anchor::remote_media(&sdp);
        for (stream, remote) in remotes.iter().enumerate() {
            if let Err(error) = self.media.update(state.session, stream, from, *remote) {
                count(&mut self.stats.media_errors, error.name());
            }
        }
        *state.remote(from) = remotes;
        let toward = from.other();
        let origin = match toward {
            Leg::A => &mut state.origin_a,
            Leg::B => &mut state.origin_b,
        };
        Ok(anchor::anchor(
            sdp,
            &state.streams,
            toward,
            &self.config.sdp_username,
            origin,
        ))
    }

    /// Anchors a received body when it is SDP; `None` when it is not, or is unusable.
    pub(super) fn anchor_body(
        &mut self,
        call_ref: CallRef,
        call: &mut Call,
        from: Leg,
        headers: &Headers,
        body: &Bytes,
    ) -> Option<Result<Bytes, AnchorError>> {
        if !Body::is_sdp(headers, body) {
            return None;
        }
        Some(match anchor::parse(body) {
            Ok(sdp) => self.anchor_sdp(call_ref, &mut call.media, from, sdp),
            Err(_) => Err(AnchorError::Malformed),
        })
    }

    /// Restores what the relay knows of `leg` (an offer of it was rejected).
    pub(super) fn roll_back_media(
        &mut self,
        call: &mut Call,
        leg: Leg,
        previous: Vec<RemoteMedia>,
    ) {
        let Some(state) = call.media.as_mut() else {
            return;
        };
        for stream in 0..state.streams.len() {
            let remote = previous.get(stream).copied().unwrap_or_default();
            if let Err(error) = self.media.update(state.session, stream, leg, remote) {
                count(&mut self.stats.media_errors, error.name());
            }
        }
        *state.remote(leg) = previous;
    }

    fn media_error(&mut self, error: MediaError) {
        count(&mut self.stats.media_errors, error.name());
    }

    pub(super) fn release_media(&mut self, media: &mut Option<MediaState>) {
        if let Some(state) = media.take() {
            self.sessions.remove(&state.session);
            self.media.release(state.session);
        }
    }

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
        if let Phase::Setup { attempt, .. } = &mut call.phase {
            attempt.provisional = true;
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
        let Phase::Setup { invite, .. } = &call.phase else {
            return;
        };
        let mut relayed = self.response_for(call, invite, Leg::A, response, true);
        body.attach(&mut relayed.headers, &mut relayed.body);
        self.respond(now, layer, relayed);
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

        let body = match self.anchor_body(call_ref, call, Leg::B, &response.headers, &response.body)
        {
            Some(Ok(sdp)) => Body::Sdp(sdp),
            Some(Err(error)) => {
                count(&mut self.stats.dropped, error.name());
                Body::Empty
            }
            None => Body::Empty,
        };
        let mut ok = self.response_for(call, &invite, Leg::A, response, true);
        body.attach(&mut ok.headers, &mut ok.body);
        self.respond(now, layer, ok.clone());
        self.supervise_session(now, call_ref, call, &response.headers);

        let callee_seq = seq_of(&attempt.invite.headers);
        let ack_other = if offer.is_some() {
            self.send_ack(layer, call, Leg::B, callee_seq, Body::Empty);
            None
        } else {
            Some(callee_seq)
        };
        let caller_seq = seq_of(&invite.headers);
        self.wait_for_ack(
            now,
            layer,
            call_ref,
            call,
            Leg::A,
            caller_seq,
            ok,
            ack_other,
        );
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
            offer,
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
            let filter = Arc::clone(&call.toward_b);
            match self.send_attempt(
                now,
                layer,
                &invite,
                max_forwards,
                offer.as_ref(),
                &target,
                &*filter,
            ) {
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
        // What the previous target said about its media no longer holds.
        let previous = Vec::new();
        self.roll_back_media(call, Leg::B, previous);
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
        self.release_slot(call, how);
        self.release_media(&mut call.media);
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
            Role::ExchangeServer(_) | Role::CalleeCancel | Role::Bye => {}
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
            Phase::Cancelling { attempt, .. } if attempt.transaction == transaction => {
                if timer != Some(Timer::C) {
                    call.phase = Phase::Ended;
                }
            }
            _ => {}
        }
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

fn is_anonymous(host: &HostPort) -> bool {
    matches!(&host.host, Host::Name(name) if name.eq_ignore_ascii_case("anonymous.invalid"))
}
