//! The SBC's own media offers to a leg (sans-IO): what it offers under the leg's
//! [`MediaPolicy`](crate::media::security::MediaPolicy) ([`make_offer`]), and what it
//! offers instead when the peer refuses that ([`next_profile`]): DTLS-SRTP, then SDES-SRTP,
//! then plain RTP, each only as far as the policy allows.

use super::bundle::Sources;
use super::protection::{
    Family, KeyExchange, Negotiation, Refusal, StreamPlan, family, is_disabled, needs_our_dtls,
    protocol_of,
};
use crate::media::MediaError;
use crate::media::security::Requirement;
use crate::sdp::MediaDescription;

/// The plan for the offer the SBC sends to the leg of `ctx`, for a media section received
/// from the other leg as `source`; `previous` is what the leg has agreed so far.
pub(crate) fn make_offer(
    ctx: &mut Negotiation<'_>,
    source: &MediaDescription,
    previous: Option<&StreamPlan>,
) -> Result<StreamPlan, Refusal> {
    let (source_family, feedback) = family(&source.media.protocol);
    if source_family == Family::Other {
        let refused = is_disabled(source) || needs_our_dtls(&source.media.protocol);
        return Ok(StreamPlan::plain(None, refused));
    }
    let disabled = is_disabled(source);
    // A re-offer keeps what is established, as long as the policy still allows it.
    if let Some(previous) = previous {
        let keep = match &previous.exchange {
            KeyExchange::Sdes {
                suite, tag, ours, ..
            } if ctx.sdes_usable().is_ok() => {
                Some(KeyExchange::SdesOffered(vec![(*tag, *suite, ours.clone())]))
            }
            KeyExchange::Dtls { role: Some(_), .. } if ctx.policy.dtls != Requirement::Forbid => {
                Some(previous.exchange.clone())
            }
            KeyExchange::Plain if ctx.policy.allows_plain() && !previous.disabled => {
                Some(KeyExchange::Plain)
            }
            _ => None,
        };
        if let Some(exchange) = keep {
            let protocol = match &previous.protocol {
                // The profile agreed (best-effort SDES stays RTP/AVP).
                Some(protocol) if !matches!(exchange, KeyExchange::Plain) => protocol.clone(),
                _ => protocol_of(&exchange, feedback).into(),
            };
            // A leg that bundled keeps its group, mids and rtcp-mux (a WebRTC peer would
            // refuse an offer without them).
            return Ok(StreamPlan {
                protocol: Some(protocol),
                exchange,
                ice: previous.ice.clone(),
                disabled,
                rtcp_mux: previous.rtcp_mux,
                mid: previous.mid.clone(),
                bundled: previous.bundled,
                sources: previous.sources.clone(),
            });
        }
    }
    let profile = first_profile(ctx)?;
    offer_plan(ctx, profile, feedback, disabled)
}

/// The media protection the SBC offers a leg on its own initiative, best first (see
/// [`first_profile`]); a peer that refuses one gets the next ([`next_profile`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OfferProfile {
    /// DTLS-SRTP with ICE-lite (`UDP/TLS/RTP/SAVP(F)`).
    Dtls,
    /// SDES-SRTP: `RTP/SAVP(F)` with `a=crypto`, or best-effort (`RTP/AVP(F)` with
    /// `a=crypto`, which a peer without SRTP answers plain).
    Sdes { best_effort: bool },
    /// Plain RTP.
    Plain,
}

impl OfferProfile {
    /// What an offer plan of ours offers (`None`: a section passed through untouched,
    /// or one that is no offer of ours).
    pub(crate) fn of(plan: &StreamPlan) -> Option<OfferProfile> {
        let protocol = plan.protocol.as_deref()?;
        match &plan.exchange {
            KeyExchange::Plain => Some(OfferProfile::Plain),
            KeyExchange::Dtls { .. } => Some(OfferProfile::Dtls),
            KeyExchange::SdesOffered(_) | KeyExchange::Sdes { .. } => Some(OfferProfile::Sdes {
                best_effort: family(protocol).0 == Family::Plain,
            }),
        }
    }
}

/// What the SBC offers first under the leg's policy: DTLS-SRTP when required (or
/// preferred, unless SDES is required), else SDES when required or preferred and usable
/// (best-effort when only preferred), else plain RTP when allowed.
fn first_profile(ctx: &Negotiation<'_>) -> Result<OfferProfile, Refusal> {
    let policy = ctx.policy;
    let wants = |r: Requirement| matches!(r, Requirement::Require | Requirement::Prefer);
    let dtls_first = policy.dtls == Requirement::Require
        || (policy.dtls == Requirement::Prefer && policy.sdes != Requirement::Require);
    let dtls_possible = ctx.relay.dtls_fingerprint().is_some();
    if dtls_first && dtls_possible {
        Ok(OfferProfile::Dtls)
    } else if wants(policy.sdes) && ctx.sdes_usable().is_ok() {
        // `prefer` offers SDES best-effort (`RTP/AVP` with `a=crypto`): a peer without
        // SRTP answers plain instead of refusing the call.
        Ok(OfferProfile::Sdes {
            best_effort: policy.sdes == Requirement::Prefer,
        })
    } else if policy.dtls == Requirement::Require {
        Err(Refusal::Relay(MediaError::Unsupported))
    } else if policy.sdes == Requirement::Require {
        Err(ctx
            .sdes_usable()
            .err()
            .unwrap_or(Refusal::NoAcceptableCrypto))
    } else {
        Ok(OfferProfile::Plain)
    }
}

/// What the SBC offers a leg whose peer refused `refused` (answered 488, 606 or 415):
/// DTLS-SRTP steps down to SDES-SRTP when the policy allows SDES on this leg (not
/// forbidden, and the signalling may carry keys), else to plain RTP when plain is
/// allowed; SDES steps down to plain when allowed; plain is the bottom. A required
/// mechanism never steps down.
pub(crate) fn next_profile(ctx: &Negotiation<'_>, refused: OfferProfile) -> Option<OfferProfile> {
    let policy = ctx.policy;
    let plain = policy.allows_plain().then_some(OfferProfile::Plain);
    match refused {
        OfferProfile::Dtls if policy.dtls == Requirement::Require => None,
        OfferProfile::Dtls if ctx.sdes_usable().is_ok() && !policy.suites.is_empty() => {
            Some(OfferProfile::Sdes {
                best_effort: policy.sdes == Requirement::Prefer,
            })
        }
        OfferProfile::Dtls | OfferProfile::Sdes { .. } => plain,
        OfferProfile::Plain => None,
    }
}

/// The plan of an offer in `profile` (fresh keys and ICE credentials), for a section
/// whose source profile uses feedback (`AVPF`) or not.
pub(crate) fn offer_plan(
    ctx: &mut Negotiation<'_>,
    profile: OfferProfile,
    feedback: bool,
    disabled: bool,
) -> Result<StreamPlan, Refusal> {
    let exchange = match profile {
        OfferProfile::Dtls => KeyExchange::Dtls {
            role: None,
            theirs: None,
        },
        OfferProfile::Sdes { .. } => {
            let mut lines = Vec::new();
            for (index, suite) in ctx.policy.suites.iter().enumerate() {
                lines.push((index as u32 + 1, *suite, ctx.new_key(*suite)?));
            }
            if lines.is_empty() {
                return Err(Refusal::NoAcceptableCrypto);
            }
            KeyExchange::SdesOffered(lines)
        }
        OfferProfile::Plain => KeyExchange::Plain,
    };
    // WebRTC-style peers get ICE-lite with DTLS-SRTP; the peer's ufrag comes with its answer.
    let ice = match exchange {
        KeyExchange::Dtls { .. } => Some(ctx.ice(None, "")?),
        _ => None,
    };
    let protocol = match profile {
        OfferProfile::Sdes { best_effort: true } => protocol_of(&KeyExchange::Plain, feedback),
        _ => protocol_of(&exchange, feedback),
    };
    Ok(StreamPlan {
        protocol: Some(protocol.into()),
        exchange,
        ice,
        disabled,
        rtcp_mux: false,
        mid: None,
        bundled: false,
        sources: Sources::default(),
    })
}

/// Whether an `m=` protocol is one the SBC negotiates (RTP in any of its profiles), and
/// whether it uses feedback (`AVPF`).
pub(crate) fn rtp_profile(protocol: &str) -> Option<bool> {
    let (family, feedback) = family(protocol);
    (family != Family::Other).then_some(feedback)
}
