//! The media security of one call: what each leg agreed ([`Negotiated::current`]), the
//! offers and answers under way, and telling SDP offers from answers.
//!
//! An SDP from a leg is its answer when we have an offer outstanding toward it (a peer
//! cannot offer while ours is pending: glare is refused with 491); while the call is being
//! set up, every SDP from the callee answers our INVITE's offer (provisional and final
//! responses, forks). Otherwise it is the leg's offer — unless it repeats the leg's last
//! answer unchanged (same `o=` session and version), as a 2xx repeats a 18x's answer.

use super::bundle;
use super::offer::{OfferProfile, make_offer, next_profile, offer_plan, rtp_profile};
use super::protection::{Around, Negotiation, Refusal, StreamPlan, accept_answer, answer_offer};
use super::summary::MediaProtection;
use crate::media::security::{LegSecurity, MediaPolicy};
use crate::media::{Leg, MediaAnchor, MediaBundle, MediaSessionId};
use crate::sdp::{MediaDescription, SessionDescription};

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
    /// For our INVITE's offer: what it was made from, so that it can be made again in
    /// another profile for a callee that refuses it, or for the next target.
    setup: Option<Box<SetupOffer>>,
}

/// The caller's offer our INVITE's offer was made from, and the plans first offered.
#[derive(Clone, Debug)]
struct SetupOffer {
    source: SessionDescription,
    first: Vec<StreamPlan>,
}

/// Our INVITE's offer made again (see [`Negotiated::step_down_setup_offer`]): the caller's
/// SDP to anchor again, with these plans toward the callee.
pub(crate) struct Reoffer {
    pub source: SessionDescription,
    pub outcome: Outcome,
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
    /// The BUNDLE group the relay was last told, per leg.
    told_bundle: [Option<MediaBundle>; 2],
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
                        Some(ours) => accept_answer(&mut ctx, around(sdp, section), section, ours)?,
                        None => answer_offer(&mut ctx, around(sdp, section), section, None)?,
                    };
                    plans.push(plan);
                }
                // During setup more answers may come (18x, forks, the 2xx).
                if !(offered.during_setup && during_setup) {
                    self.offered[f] = None;
                }
                let mut answer = self.answering[t]
                    .take()
                    .unwrap_or_else(|| self.current[t].clone());
                // A stream the answerer rejected is rejected in our answer too (its port
                // is 0 there): it leaves the offerer's BUNDLE group.
                for (ours, theirs) in answer.iter_mut().zip(&plans) {
                    if theirs.disabled {
                        ours.disabled = true;
                    }
                }
                self.current[f] = plans;
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
                    let around = around(sdp, section);
                    answers.push(answer_offer(&mut ctx, around, section, previous)?);
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
                let setup_offer = during_setup && toward == Leg::B;
                self.offered[t] = Some(Outstanding {
                    plans: offers.clone(),
                    during_setup: setup_offer,
                    setup: setup_offer.then(|| {
                        Box::new(SetupOffer {
                            source: sdp.clone(),
                            first: offers.clone(),
                        })
                    }),
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

    /// Tells the relay what changed for either leg: its BUNDLE group, and each stream's
    /// protection (a stream bundled onto another's transport has none of its own).
    pub(crate) fn apply(
        &mut self,
        relay: &mut dyn MediaAnchor,
        session: MediaSessionId,
    ) -> Vec<&'static str> {
        let mut errors = Vec::new();
        for leg in [Leg::A, Leg::B] {
            let plans = self.effective(leg);
            let layout = bundle::layout(plans);
            let group = bundle::media_bundle(plans);
            let wanted: Vec<LegSecurity> = plans
                .iter()
                .enumerate()
                .map(|(stream, plan)| match &layout {
                    Some(layout) if layout.is_member(stream) => LegSecurity::default(),
                    _ => plan.leg_security(),
                })
                .collect();
            if self.told_bundle[index(leg)] != group {
                match relay.bundle(session, leg, group.as_ref()) {
                    Ok(()) => self.told_bundle[index(leg)] = group,
                    Err(error) => errors.push(error.name()),
                }
            }
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

    /// The callee refused our INVITE's offer for its media (488, 606, 415): the offer
    /// made again with each stream one profile down ([`next_profile`]), when the callee's
    /// policy allows one for any stream; it takes effect at once. Returns it with the name
    /// of the step (`dtls_to_sdes` …) of its first changed stream.
    pub(crate) fn step_down_setup_offer(
        &mut self,
        relay: &mut dyn MediaAnchor,
        policies: &LegPolicies,
    ) -> Option<(Reoffer, &'static str)> {
        let b = index(Leg::B);
        let outstanding = self.offered[b].as_ref()?;
        let setup = outstanding.setup.as_ref()?;
        let (policy, secure) = policies.of(Leg::B);
        let mut ctx = Negotiation {
            policy,
            secure_signalling: secure,
            relay,
        };
        let mut plans = Vec::with_capacity(outstanding.plans.len());
        let mut step = None;
        for (stream, refused) in outstanding.plans.iter().enumerate() {
            let source = setup.source.media.get(stream);
            let lower = match (OfferProfile::of(refused), source) {
                (Some(profile), Some(source)) if !refused.disabled => {
                    next_profile(&ctx, profile).zip(rtp_profile(&source.media.protocol))
                }
                _ => None,
            };
            let Some((next, feedback)) = lower else {
                plans.push(refused.clone());
                continue;
            };
            // A relay that cannot make keys now leaves the call as it is.
            let plan = offer_plan(&mut ctx, next, feedback, false).ok()?;
            if let Some(from) = OfferProfile::of(refused) {
                step.get_or_insert(fallback_name(from, next));
            }
            plans.push(plan);
        }
        let step = step?;
        let source = setup.source.clone();
        if let Some(outstanding) = self.offered[b].as_mut() {
            outstanding.plans = plans.clone();
        }
        self.current[b].clear();
        self.last[b] = None;
        let outcome = Outcome { plans, offer: true };
        Some((Reoffer { source, outcome }, step))
    }

    /// The call is established: our INVITE's offer will not be made again, so the caller's
    /// SDP kept to remake it is dropped (it would otherwise stay for the call's life).
    pub(crate) fn forget_setup_offer(&mut self) {
        for outstanding in self.offered.iter_mut().flatten() {
            outstanding.setup = None;
        }
    }

    /// Our INVITE goes to another target: what the previous one answered no longer holds,
    /// and a stepped-down offer goes back to the profiles first offered. Returns the
    /// offer to make again when it had stepped down (else the first one is still valid).
    pub(crate) fn restart_setup_offer(&mut self) -> Option<Reoffer> {
        let b = index(Leg::B);
        self.current[b].clear();
        self.last[b] = None;
        let outstanding = self.offered[b].as_mut()?;
        let setup = outstanding.setup.as_ref()?;
        if outstanding.plans == setup.first {
            return None;
        }
        outstanding.plans = setup.first.clone();
        Some(Reoffer {
            source: setup.source.clone(),
            outcome: Outcome {
                plans: setup.first.clone(),
                offer: true,
            },
        })
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

/// Where the transport attributes of `section` of `sdp` may also be.
fn around<'a>(sdp: &'a SessionDescription, section: &'a MediaDescription) -> Around<'a> {
    Around {
        session: &sdp.lines,
        tagged: bundle::tagged(sdp, section),
    }
}

/// The stable name of a step down from `from` to `to` (a metric label).
fn fallback_name(from: OfferProfile, to: OfferProfile) -> &'static str {
    match (from, to) {
        (OfferProfile::Dtls, OfferProfile::Sdes { best_effort: false }) => "dtls_to_sdes",
        (OfferProfile::Dtls, OfferProfile::Sdes { best_effort: true }) => {
            "dtls_to_sdes_best_effort"
        }
        (OfferProfile::Dtls, OfferProfile::Plain) => "dtls_to_plain",
        (OfferProfile::Sdes { best_effort: false }, OfferProfile::Plain) => "sdes_to_plain",
        (OfferProfile::Sdes { best_effort: true }, OfferProfile::Plain) => {
            "sdes_best_effort_to_plain"
        }
        _ => "other",
    }
}
