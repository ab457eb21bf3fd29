//! The media security of one call: what each leg agreed ([`Negotiated::current`]), the
//! offers and answers under way, and telling SDP offers from answers.
//!
//! An SDP from a leg is its answer when we have an offer outstanding toward it (a peer
//! cannot offer while ours is pending: glare is refused with 491); while the call is being
//! set up, every SDP from the callee answers our INVITE's offer (provisional and final
//! responses, forks). Otherwise it is the leg's offer — unless it repeats the leg's last
//! answer unchanged (same `o=` session and version), as a 2xx repeats a 18x's answer.

use super::protection::{
    Negotiation, Refusal, StreamPlan, accept_answer, answer_offer, make_offer,
};
use super::summary::MediaProtection;
use crate::media::security::{LegSecurity, MediaPolicy};
use crate::media::{Leg, MediaAnchor, MediaSessionId};
use crate::sdp::SessionDescription;

/// Each leg's media policy and whether its signalling is TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LegPolicies {
    pub a: MediaPolicy,
    pub b: MediaPolicy,
    pub a_secure: bool,
    pub b_secure: bool,
}

impl LegPolicies {
    fn of(&self, leg: Leg) -> (&MediaPolicy, bool) {
        match leg {
            Leg::A => (&self.a, self.a_secure),
            Leg::B => (&self.b, self.b_secure),
        }
    }
}

/// What an SDP from a leg is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SdpKind {
    Offer,
    Answer,
    /// The leg's last answer again, unchanged.
    RepeatedAnswer,
}

/// An offer we sent to a leg and its plans.
#[derive(Clone, Debug)]
struct Outstanding {
    plans: Vec<StreamPlan>,
    /// Our INVITE's offer: every SDP from the callee answers it until the call is set up.
    during_setup: bool,
}

/// What a leg sent last, to recognise a repeat.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OriginSeen {
    username: bytes::Bytes,
    session_id: bytes::Bytes,
    version: bytes::Bytes,
    answer: bool,
}

/// The media security state of a call.
#[derive(Debug, Default)]
pub(crate) struct Negotiated {
    /// Per leg (A, B), per stream: what is agreed.
    current: [Vec<StreamPlan>; 2],
    /// Our answer to a leg's offer, written when the other leg answers.
    answering: [Option<Vec<StreamPlan>>; 2],
    /// Our offer to a leg, until it answers.
    offered: [Option<Outstanding>; 2],
    /// What each leg's last SDP was.
    last: [Option<OriginSeen>; 2],
    /// What the relay was last told, per leg and stream.
    told: [Vec<LegSecurity>; 2],
}

fn index(leg: Leg) -> usize {
    match leg {
        Leg::A => 0,
        Leg::B => 1,
    }
}

fn origin_of(sdp: &SessionDescription, answer: bool) -> OriginSeen {
    OriginSeen {
        username: sdp.origin.username.clone(),
        session_id: sdp.origin.session_id.clone(),
        version: sdp.origin.session_version.clone(),
        answer,
    }
}

/// The plans toward `toward`, and whether the SDP written to it is an offer.
pub(crate) struct Outcome {
    pub plans: Vec<StreamPlan>,
    pub offer: bool,
}

impl Negotiated {
    /// What an SDP from `from` is; `during_setup`: the call is not yet established.
    pub(crate) fn classify(
        &mut self,
        from: Leg,
        sdp: &SessionDescription,
        during_setup: bool,
    ) -> SdpKind {
        let i = index(from);
        if let Some(offered) = &self.offered[i] {
            let answered_in_setup = offered.during_setup && !during_setup && self.last[i].is_some();
            if !answered_in_setup {
                return SdpKind::Answer;
            }
            // The callee answered our INVITE's offer in a provisional response and the
            // call is up: what it sends now repeats that answer or is a new offer.
            self.offered[i] = None;
        }
        let seen = origin_of(sdp, true);
        if self.last[i].as_ref() == Some(&seen) {
            return SdpKind::RepeatedAnswer;
        }
        SdpKind::Offer
    }

    /// Negotiates an SDP from `from` of `kind`; returns the plans for the SDP sent to the
    /// other leg. Nothing changes when it is refused.
    pub(crate) fn negotiate(
        &mut self,
        relay: &mut dyn MediaAnchor,
        policies: &LegPolicies,
        from: Leg,
        kind: SdpKind,
        sdp: &SessionDescription,
        during_setup: bool,
    ) -> Result<Outcome, Refusal> {
        let (f, t) = (index(from), index(from.other()));
        let toward = from.other();
        match kind {
            SdpKind::Answer => {
                let Some(offered) = self.offered[f].clone() else {
                    return Err(Refusal::AnswerMismatch);
                };
                let (policy, secure) = policies.of(from);
                let mut ctx = Negotiation {
                    policy,
                    secure_signalling: secure,
                    relay,
                };
                let mut plans = Vec::with_capacity(sdp.media.len());
                for (stream, section) in sdp.media.iter().enumerate() {
                    let plan = match offered.plans.get(stream) {
                        Some(ours) => accept_answer(&mut ctx, &sdp.lines, section, ours)?,
                        None => answer_offer(&mut ctx, &sdp.lines, section, None)?,
                    };
                    plans.push(plan);
                }
                // During setup more answers may come (18x, forks, the 2xx).
                if !(offered.during_setup && during_setup) {
                    self.offered[f] = None;
                }
                self.current[f] = plans;
                let answer = self.answering[t]
                    .take()
                    .unwrap_or_else(|| self.current[t].clone());
                self.current[t] = answer.clone();
                self.last[f] = Some(origin_of(sdp, true));
                Ok(Outcome {
                    plans: answer,
                    offer: false,
                })
            }
            SdpKind::RepeatedAnswer => Ok(Outcome {
                plans: self.current[t].clone(),
                offer: false,
            }),
            SdpKind::Offer => {
                let (policy, secure) = policies.of(from);
                let mut ctx = Negotiation {
                    policy,
                    secure_signalling: secure,
                    relay: &mut *relay,
                };
                let mut answers = Vec::with_capacity(sdp.media.len());
                for (stream, section) in sdp.media.iter().enumerate() {
                    let previous = self.current[f].get(stream);
                    answers.push(answer_offer(&mut ctx, &sdp.lines, section, previous)?);
                }
                let (policy, secure) = policies.of(toward);
                let mut ctx = Negotiation {
                    policy,
                    secure_signalling: secure,
                    relay,
                };
                let mut offers = Vec::with_capacity(sdp.media.len());
                for (stream, section) in sdp.media.iter().enumerate() {
                    let previous = self.current[t].get(stream);
                    offers.push(make_offer(&mut ctx, section, previous)?);
                }
                self.answering[f] = Some(answers);
                self.offered[t] = Some(Outstanding {
                    plans: offers.clone(),
                    during_setup: during_setup && toward == Leg::B,
                });
                self.last[f] = Some(origin_of(sdp, false));
                Ok(Outcome {
                    plans: offers,
                    offer: true,
                })
            }
        }
    }

    /// The plans the relay should protect `leg` with now: an answer we are about to give
    /// or an offer we made take effect at once (media may flow before the exchange ends).
    fn effective(&self, leg: Leg) -> &[StreamPlan] {
        let i = index(leg);
        if let Some(answering) = &self.answering[i] {
            return answering;
        }
        if let Some(offered) = &self.offered[i] {
            // Once the callee answered during setup, what it agreed is in `current`.
            if !offered.during_setup || self.current[i].is_empty() {
                return &offered.plans;
            }
        }
        &self.current[i]
    }

    /// Tells the relay what changed for either leg.
    pub(crate) fn apply(
        &mut self,
        relay: &mut dyn MediaAnchor,
        session: MediaSessionId,
    ) -> Vec<&'static str> {
        let mut errors = Vec::new();
        for leg in [Leg::A, Leg::B] {
            let wanted: Vec<LegSecurity> = self
                .effective(leg)
                .iter()
                .map(StreamPlan::leg_security)
                .collect();
            let told = &mut self.told[index(leg)];
            for (stream, security) in wanted.iter().enumerate() {
                let before = told.get(stream);
                let unchanged = match before {
                    Some(before) => before == security,
                    None => security.is_default(),
                };
                if unchanged {
                    continue;
                }
                match relay.protect(session, stream, leg, security) {
                    Ok(()) => {}
                    Err(error) => errors.push(error.name()),
                }
            }
            *told = wanted;
        }
        errors
    }

    /// An offer from `leg` was rejected by the other leg: forget the exchange.
    pub(crate) fn roll_back(&mut self, leg: Leg) {
        self.answering[index(leg)] = None;
        self.offered[index(leg.other())] = None;
        self.last[index(leg)] = None;
    }

    /// How `leg`'s media is protected, for the call's security summary: what its first
    /// RTP stream agreed (`None` before anything was agreed). A DTLS-SRTP profile is chosen
    /// in the handshake, on the relay: signalling reports it as `unknown`, and the relay's
    /// statistics name it (see the CDR writer).
    pub(crate) fn protection(&self, leg: Leg) -> Option<MediaProtection> {
        let plan = self.current[index(leg)]
            .iter()
            .find(|p| !p.disabled && p.protocol.is_some())?;
        match plan.summary() {
            ("sdes", Some(suite)) => Some(MediaProtection::SdesSrtp {
                suite: suite.sdes_name().to_owned(),
            }),
            ("dtls", _) => Some(MediaProtection::DtlsSrtp {
                profile: "unknown".to_owned(),
            }),
            ("plain", _) => Some(MediaProtection::Plain),
            _ => None,
        }
    }
}
