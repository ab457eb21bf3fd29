//! The call's relay session: allocated with the first SDP, told where each leg receives,
//! and the SDP anchored on it.

use bytes::Bytes;

use super::anchor::{self, OriginState};
use super::bundle;
use super::call::{Call, CallRef, MediaState, Phase};
use super::headers::Body;
use super::negotiated::{LegPolicies, Negotiated, Outcome};
use super::protection::{self, Refusal};
use super::{B2bua, count};
use crate::media::{Leg, MediaError, RemoteMedia};
use crate::sdp::SessionDescription;
use crate::sip::{Headers, StatusCode};

/// Why an SDP could not be anchored.
#[derive(Clone, Copy, Debug)]
pub(super) enum AnchorError {
    Malformed,
    TooManyStreams,
    Relay,
    /// The media security offered (or answered) is not acceptable under the leg's policy.
    NotAcceptable(Refusal),
}

impl AnchorError {
    pub(super) fn status(self) -> StatusCode {
        match self {
            AnchorError::Malformed => StatusCode::BAD_REQUEST,
            AnchorError::TooManyStreams => StatusCode::new(488).unwrap_or(StatusCode::BAD_REQUEST),
            AnchorError::Relay => StatusCode::SERVICE_UNAVAILABLE,
            AnchorError::NotAcceptable(_) => {
                StatusCode::new(488).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            AnchorError::Malformed => "malformed_sdp",
            AnchorError::TooManyStreams => "too_many_streams",
            AnchorError::Relay => "media_unavailable",
            AnchorError::NotAcceptable(refusal) => refusal.name(),
        }
    }
}

impl B2bua {
    /// Anchors an SDP that came from `from` for the other leg: allocates the relay session
    /// (or more streams) as needed, tells the relay where `from` receives, negotiates each
    /// leg's media security (see [`super::protection`]) and returns the rewritten
    /// description. `during_setup`: the call is not established yet.
    pub(super) fn anchor_sdp(
        &mut self,
        call_ref: CallRef,
        media: &mut Option<MediaState>,
        policies: &LegPolicies,
        from: Leg,
        sdp: SessionDescription,
        during_setup: bool,
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
                security: Negotiated::default(),
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
        let kind = state.security.classify(from, &sdp, during_setup);
        let outcome = state
            .security
            .negotiate(&mut *self.media, policies, from, kind, &sdp, during_setup)
            .map_err(|refusal| {
                count(&mut self.stats.media_errors, refusal.name());
                AnchorError::NotAcceptable(refusal)
            })?;
        let remotes = anchor::remote_media(&sdp);
        for (stream, remote) in remotes.iter().enumerate() {
            if let Err(error) = self.media.update(state.session, stream, from, *remote) {
                count(&mut self.stats.media_errors, error.name());
            }
        }
        *state.remote(from) = remotes;
        for error in state.security.apply(&mut *self.media, state.session) {
            count(&mut self.stats.media_errors, error);
        }
        Ok(self.print_anchored(state, from.other(), sdp, &outcome))
    }

    /// Rewrites `sdp` for `toward` on the relay with the security of `outcome`, and prints
    /// it with our `o=` line for that leg.
    fn print_anchored(
        &self,
        state: &mut MediaState,
        toward: Leg,
        sdp: SessionDescription,
        outcome: &Outcome,
    ) -> Bytes {
        let origin = match toward {
            Leg::A => &mut state.origin_a,
            Leg::B => &mut state.origin_b,
        };
        let fingerprint = self.media.dtls_fingerprint();
        let streams = &state.streams;
        let layout = bundle::layout(&outcome.plans);
        let secure = |sdp: &mut SessionDescription| {
            protection::write_session(&mut sdp.lines, &outcome.plans);
            let transport = layout
                .as_ref()
                .and_then(|l| streams.get(l.transport()))
                .map(|addrs| addrs.toward(toward));
            for (index, section) in sdp.media.iter_mut().enumerate() {
                let (Some(plan), Some(addrs)) = (outcome.plans.get(index), streams.get(index))
                else {
                    continue;
                };
                let member = layout.as_ref().is_some_and(|l| l.is_member(index));
                // A bundle-only section (port 0) is live: it gets a port like the others.
                let live = !plan.disabled
                    && (section.media.port != 0 || section.lines.has_attribute("bundle-only"));
                if live {
                    // Every bundled m= line shows the transport's port (RFC 8843 §7.3).
                    let port = match (member, transport) {
                        (true, Some(transport)) => transport.rtp.port(),
                        _ => addrs.toward(toward).rtp.port(),
                    };
                    section.media.port = port;
                }
                protection::write_section(
                    section,
                    plan,
                    outcome.offer,
                    member,
                    fingerprint.as_ref(),
                    addrs.toward(toward),
                );
            }
        };
        anchor::anchor(
            sdp,
            streams,
            toward,
            &self.config.sdp_username,
            origin,
            secure,
        )
    }

    /// The callee refused our INVITE's offer for its media: the offer made again one
    /// profile down (see [`Negotiated::step_down_setup_offer`]), with the relay's leg B
    /// protected accordingly and forgetting what the callee said so far; `None` when the
    /// callee's policy leaves nothing lower. `secure`: the target is reached over TLS.
    pub(super) fn step_down_callee_offer(
        &mut self,
        call: &mut Call,
        secure: bool,
    ) -> Option<(Bytes, &'static str)> {
        call.media_policies.b_secure = secure;
        let state = call.media.as_mut()?;
        let (reoffer, step) = state
            .security
            .step_down_setup_offer(&mut *self.media, &call.media_policies)?;
        self.forget_callee_media(state);
        Some((
            self.print_anchored(state, Leg::B, reoffer.source, &reoffer.outcome),
            step,
        ))
    }

    /// Our INVITE goes to another target (reached over TLS: `secure`): the relay forgets
    /// what the previous one said, and an offer that had stepped down is made again in its
    /// first profiles (returned; `None`: the offer already sent is still valid).
    pub(super) fn restart_callee_offer(&mut self, call: &mut Call, secure: bool) -> Option<Bytes> {
        call.media_policies.b_secure = secure;
        let state = call.media.as_mut()?;
        let reoffer = state.security.restart_setup_offer();
        self.forget_callee_media(state);
        let reoffer = reoffer?;
        Some(self.print_anchored(state, Leg::B, reoffer.source, &reoffer.outcome))
    }

    /// Leg B's peer is unknown again (a new target): the relay sends it nothing until its
    /// SDP comes, and protects the leg as our offer says.
    fn forget_callee_media(&mut self, state: &mut MediaState) {
        for stream in 0..state.streams.len() {
            let unknown = RemoteMedia::default();
            if let Err(error) = self.media.update(state.session, stream, Leg::B, unknown) {
                count(&mut self.stats.media_errors, error.name());
            }
        }
        state.remote_b.clear();
        for error in state.security.apply(&mut *self.media, state.session) {
            count(&mut self.stats.media_errors, error);
        }
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
        let during_setup = matches!(call.phase, Phase::Setup { .. });
        let policies = call.media_policies.clone();
        Some(match anchor::parse(body) {
            Ok(sdp) => self.anchor_sdp(
                call_ref,
                &mut call.media,
                &policies,
                from,
                sdp,
                during_setup,
            ),
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
        state.security.roll_back(leg);
        for error in state.security.apply(&mut *self.media, state.session) {
            count(&mut self.stats.media_errors, error);
        }
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
}
