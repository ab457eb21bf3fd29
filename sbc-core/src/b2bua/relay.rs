//! The call's relay session: allocated with the first SDP, told where each leg receives,
//! and the SDP anchored on it.

use bytes::Bytes;

use super::anchor::{self, OriginState};
use super::call::{Call, CallRef, MediaState};
use super::headers::Body;
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
}
