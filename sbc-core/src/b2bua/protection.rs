//! Media security negotiation, per leg and media section (sans-IO): what a peer's SDP
//! offers or answers (plain RTP, SDES-SRTP with `a=crypto`, DTLS-SRTP with
//! `a=fingerprint`/`a=setup`, ICE credentials), what the SBC answers or offers in that
//! leg's own profile under the leg's [`MediaPolicy`], and how that is written into the SDP
//! sent to the leg. Each leg is negotiated on its own; the relay converts between them, so
//! no key ever crosses from one leg to the other.
//!
//! * Answering a peer's offer ([`answer_offer`]): its profile is kept (`RTP/AVPF` stays
//!   `RTP/AVPF`, `UDP/TLS/RTP/SAVPF` stays so); a mechanism the policy forbids, plain RTP
//!   when SRTP is required, or SDES over signalling that is not TLS (unless allowed) is
//!   refused (488). SDES: the first acceptable `a=crypto` in the offer's order, our own
//!   fresh key in the answer. DTLS: `a=setup:actpass` is answered `passive` toward ICE
//!   peers (the browser starts the handshake once its checks succeed) and `active`
//!   otherwise (RFC 5763 §5).
//! * Offering to a peer ([`make_offer`](super::offer::make_offer)): DTLS-SRTP (with ICE-lite) when the policy
//!   requires or prefers it, else SDES (one `a=crypto` per configured suite, each with its
//!   own key) when required or preferred and the signalling is TLS (or SDES is allowed
//!   without), else plain RTP; a re-offer keeps the established keys and roles.
//! * The peer's answer to our offer ([`accept_answer`]) must pick one of our crypto lines
//!   (or give its fingerprint and role); a plain answer is accepted when plain is allowed.

use super::bundle::{self, Sources};
use crate::media::security::{
    CertFingerprint, DtlsRole, IceCredentials, LegProtection, LegSecurity, MediaPolicy,
    Requirement, SdesKey, SrtpSuite,
};
use crate::media::{LegAddr, MediaAnchor, MediaError};
use crate::sdp::{
    Attribute, Candidate, CandidateType, Crypto, Fingerprint, InlineKey, KeyParam, Lifetime, Lines,
    MediaDescription, Mki, Setup,
};

/// Session parameters of `a=crypto` the relay honours (RFC 4568 §6.3); a crypto line with
/// any other is skipped.
const UNENCRYPTED_SRTCP: &str = "UNENCRYPTED_SRTCP";

/// Why an offer or answer cannot be accepted (answered 488 Not Acceptable Here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Plain RTP where the policy requires SRTP.
    PlainNotAllowed,
    /// SDES where the policy forbids it.
    SdesForbidden,
    /// SDES keys would travel over signalling that is not TLS.
    SdesNeedsTls,
    /// No `a=crypto` with a suite, key and parameters the policy accepts.
    NoAcceptableCrypto,
    /// DTLS-SRTP where the policy forbids it.
    DtlsForbidden,
    /// DTLS-SRTP without a usable `a=fingerprint` or `a=setup`.
    BadDtlsParameters,
    /// An answer that does not match what we offered.
    AnswerMismatch,
    /// The relay cannot provide keys or credentials.
    Relay(MediaError),
}

impl Refusal {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Refusal::PlainNotAllowed => "srtp_required",
            Refusal::SdesForbidden => "sdes_forbidden",
            Refusal::SdesNeedsTls => "sdes_needs_tls",
            Refusal::NoAcceptableCrypto => "no_acceptable_crypto",
            Refusal::DtlsForbidden => "dtls_forbidden",
            Refusal::BadDtlsParameters => "bad_dtls_parameters",
            Refusal::AnswerMismatch => "answer_mismatch",
            Refusal::Relay(_) => "media_security_unavailable",
        }
    }
}

/// Whether an `m=` protocol runs over a DTLS association of its own (a WebRTC data
/// channel, `UDP/DTLS/SCTP`, RFC 8841): the relay terminates DTLS for SRTP keys only and
/// cannot carry it to the other leg, so such a stream is refused (port 0) on both legs.
pub(super) fn needs_our_dtls(protocol: &str) -> bool {
    protocol.ends_with("/DTLS/SCTP")
}

/// The transport family of an `m=` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    /// `RTP/AVP`, `RTP/AVPF`.
    Plain,
    /// `RTP/SAVP`, `RTP/SAVPF`.
    Savp,
    /// `UDP/TLS/RTP/SAVP`, `UDP/TLS/RTP/SAVPF`.
    UdpTls,
    /// Anything else (`udptl`, `UDP/DTLS/SCTP` …): passed through untouched.
    Other,
}

pub(super) fn family(protocol: &str) -> (Family, bool) {
    let feedback = protocol.ends_with('F');
    let family = match protocol {
        "RTP/AVP" | "RTP/AVPF" => Family::Plain,
        "RTP/SAVP" | "RTP/SAVPF" => Family::Savp,
        "UDP/TLS/RTP/SAVP" | "UDP/TLS/RTP/SAVPF" => Family::UdpTls,
        _ => Family::Other,
    };
    (family, feedback)
}

pub(super) fn protocol_of(exchange: &KeyExchange, feedback: bool) -> &'static str {
    match (exchange, feedback) {
        (KeyExchange::Plain, false) => "RTP/AVP",
        (KeyExchange::Plain, true) => "RTP/AVPF",
        (KeyExchange::Sdes { .. } | KeyExchange::SdesOffered(_), false) => "RTP/SAVP",
        (KeyExchange::Sdes { .. } | KeyExchange::SdesOffered(_), true) => "RTP/SAVPF",
        (KeyExchange::Dtls { .. }, false) => "UDP/TLS/RTP/SAVP",
        (KeyExchange::Dtls { .. }, true) => "UDP/TLS/RTP/SAVPF",
    }
}

/// The key exchange of one media section on one leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyExchange {
    Plain,
    /// We offered these crypto lines (tag, suite, our key); the answer picks one.
    SdesOffered(Vec<(u32, SrtpSuite, SdesKey)>),
    /// Agreed (or, answering, chosen): our key and theirs under one tag.
    Sdes {
        suite: SrtpSuite,
        tag: u32,
        ours: SdesKey,
        theirs: Vec<SdesKey>,
        unencrypted_srtcp: bool,
    },
    /// DTLS-SRTP; `role` is ours (`None`: we offered actpass), `theirs` the peer's
    /// certificate fingerprint once known.
    Dtls {
        role: Option<DtlsRole>,
        theirs: Option<CertFingerprint>,
    },
}

/// What the SBC does with one media section of one leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StreamPlan {
    /// The `m=` protocol written toward the leg (`None`: left as received).
    pub protocol: Option<Box<str>>,
    pub exchange: KeyExchange,
    /// ICE-lite on the leg: our credentials (and the peer's user fragment once known).
    pub ice: Option<IceCredentials>,
    /// The port is 0 (rejected or disabled stream).
    pub disabled: bool,
    /// The peer offered `a=rtcp-mux`: our answer accepts it whatever the other leg does
    /// (the relay multiplexes per leg; WebRTC peers require it).
    pub rtcp_mux: bool,
    /// The peer's `a=mid` (RFC 5888) and whether it is in the leg's BUNDLE group (RFC
    /// 8843, see [`super::bundle`]): what we write to the leg repeats both.
    pub mid: Option<Box<str>>,
    pub bundled: bool,
    /// What the peer said of the RTP it sends on a bundled stream.
    pub sources: Sources,
}

impl StreamPlan {
    pub(super) fn plain(protocol: Option<Box<str>>, disabled: bool) -> StreamPlan {
        StreamPlan {
            protocol,
            exchange: KeyExchange::Plain,
            ice: None,
            disabled,
            rtcp_mux: false,
            mid: None,
            bundled: false,
            sources: Sources::default(),
        }
    }

    /// What the relay is told for this leg and stream.
    pub(crate) fn leg_security(&self) -> LegSecurity {
        let protection = match &self.exchange {
            KeyExchange::Plain => LegProtection::Plain,
            KeyExchange::SdesOffered(lines) => match lines.first() {
                // Until the answer says which line, the first key protects what is sent.
                Some((_, suite, key)) => LegProtection::Sdes {
                    suite: *suite,
                    send: vec![key.clone()],
                    receive: Vec::new(),
                    unencrypted_srtcp: false,
                },
                None => LegProtection::Plain,
            },
            KeyExchange::Sdes {
                suite,
                ours,
                theirs,
                unencrypted_srtcp,
                ..
            } => LegProtection::Sdes {
                suite: *suite,
                send: vec![ours.clone()],
                receive: theirs.clone(),
                unencrypted_srtcp: *unencrypted_srtcp,
            },
            KeyExchange::Dtls { role, theirs } => LegProtection::Dtls {
                role: role.unwrap_or(DtlsRole::Server),
                fingerprint: role.and(theirs.clone()),
            },
        };
        let ice = self.ice.clone().filter(|ice| !ice.remote_ufrag.is_empty());
        LegSecurity { protection, ice }
    }

    /// How the leg's media is protected, for the call's security summary.
    pub(crate) fn summary(&self) -> (&'static str, Option<SrtpSuite>) {
        match &self.exchange {
            KeyExchange::Plain => ("plain", None),
            KeyExchange::SdesOffered(_) => ("sdes", None),
            KeyExchange::Sdes { suite, .. } => ("sdes", Some(*suite)),
            KeyExchange::Dtls { .. } => ("dtls", None),
        }
    }
}

/// What one received media section carries, security-wise.
struct Received {
    family: Family,
    protocol: Box<str>,
    disabled: bool,
    cryptos: Vec<Crypto>,
    fingerprint: Option<CertFingerprint>,
    setup: Option<Setup>,
    ice: Option<(String, String)>,
}

/// Where a section's transport attributes may be besides the section itself: the
/// session level, and for a section bundled onto another, the tagged section of its
/// group (RFC 8843 §7: a peer writes them there only).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Around<'a> {
    pub session: &'a Lines,
    pub tagged: Option<&'a MediaDescription>,
}

impl<'a> Around<'a> {
    /// Each place a transport attribute of `section` may be, in order.
    fn places(self, section: &'a MediaDescription) -> impl Iterator<Item = &'a Lines> {
        std::iter::once(&section.lines)
            .chain(self.tagged.map(|t| &t.lines))
            .chain(std::iter::once(self.session))
    }
}

/// Whether a section is disabled (port 0), rather than bundle-only (port 0 with
/// `a=bundle-only`: on its group's transport, RFC 8843 §6).
pub(super) fn is_disabled(section: &MediaDescription) -> bool {
    section.media.port == 0 && !section.lines.has_attribute("bundle-only")
}

fn read(around: Around<'_>, section: &MediaDescription) -> Received {
    let (family, _) = family(&section.media.protocol);
    let fingerprint = around
        .places(section)
        .find(|lines| lines.fingerprints().next().is_some())
        .into_iter()
        .flat_map(Lines::fingerprints)
        .filter_map(Result::ok)
        .find_map(|f| {
            let hash = f.hash_function.to_ascii_lowercase();
            let supported = matches!(hash.as_str(), "sha-1" | "sha-256" | "sha-384" | "sha-512");
            Some(CertFingerprint {
                digest: f.digest()?,
                hash,
            })
            .filter(|_| supported)
        });
    let setup = around
        .places(section)
        .find_map(Lines::setup)
        .and_then(Result::ok);
    let text = |b: &bytes::Bytes| String::from_utf8(b.to_vec()).ok();
    let ufrag = around
        .places(section)
        .find_map(Lines::ice_ufrag)
        .and_then(text);
    let pwd = around
        .places(section)
        .find_map(Lines::ice_pwd)
        .and_then(text);
    Received {
        family,
        protocol: section.media.protocol.clone(),
        disabled: is_disabled(section),
        cryptos: section.lines.crypto().filter_map(Result::ok).collect(),
        fingerprint,
        setup,
        ice: ufrag
            .zip(pwd)
            .filter(|(u, p)| !u.is_empty() && !p.is_empty()),
    }
}

/// A leg's side of a negotiation: its policy, whether its signalling is TLS, the relay.
pub(crate) struct Negotiation<'a> {
    pub policy: &'a MediaPolicy,
    pub secure_signalling: bool,
    pub relay: &'a mut dyn MediaAnchor,
}

impl Negotiation<'_> {
    pub(super) fn sdes_usable(&self) -> Result<(), Refusal> {
        if self.policy.sdes == Requirement::Forbid {
            return Err(Refusal::SdesForbidden);
        }
        if !self.secure_signalling && !self.policy.sdes_over_insecure_signalling {
            return Err(Refusal::SdesNeedsTls);
        }
        Ok(())
    }

    pub(super) fn new_key(&mut self, suite: SrtpSuite) -> Result<SdesKey, Refusal> {
        self.relay.new_sdes_key(suite).map_err(Refusal::Relay)
    }

    /// ICE-lite credentials for a peer with `remote_ufrag`, kept across re-offers that do
    /// not restart ICE.
    pub(super) fn ice(
        &mut self,
        previous: Option<&StreamPlan>,
        remote_ufrag: &str,
    ) -> Result<IceCredentials, Refusal> {
        if let Some(ice) = previous.and_then(|p| p.ice.as_ref())
            && (ice.remote_ufrag == remote_ufrag || ice.remote_ufrag.is_empty())
        {
            return Ok(IceCredentials {
                remote_ufrag: remote_ufrag.to_string(),
                ..ice.clone()
            });
        }
        self.relay
            .new_ice_credentials(remote_ufrag)
            .map_err(Refusal::Relay)
    }
}

/// The peer's keys of a crypto line, or `None` when the line is not acceptable.
fn inline_keys(crypto: &Crypto, suite: SrtpSuite) -> Option<Vec<SdesKey>> {
    let mut keys = Vec::new();
    for key in &crypto.keys {
        let KeyParam::Inline(inline) = key else {
            return None;
        };
        let key_salt = inline.key_salt_bytes()?;
        if key_salt.len() != suite.key_salt_len() {
            return None;
        }
        let mki = match inline.mki {
            Some(Mki { value, length }) => {
                let length = usize::from(length);
                let mut bytes = vec![0u8; length];
                let be = value.to_be_bytes();
                let n = length.min(8);
                bytes[length - n..].copy_from_slice(&be[8 - n..]);
                Some(bytes)
            }
            None => None,
        };
        let lifetime = match inline.lifetime {
            Some(Lifetime::PowerOfTwo(e)) => Some(1u64 << e.min(63)),
            Some(Lifetime::Packets(n)) => Some(n),
            None => None,
        };
        keys.push(SdesKey {
            key_salt,
            mki,
            lifetime,
        });
    }
    let mki_len = keys.first().map(|k| k.mki.as_ref().map_or(0, Vec::len));
    let consistent = keys
        .iter()
        .all(|k| Some(k.mki.as_ref().map_or(0, Vec::len)) == mki_len);
    (consistent && !keys.is_empty() && (keys.len() == 1 || mki_len != Some(0))).then_some(keys)
}

/// Whether every session parameter of a crypto line is one the relay honours.
fn params_supported(crypto: &Crypto) -> bool {
    crypto
        .session_params
        .iter()
        .all(|p| &**p == UNENCRYPTED_SRTCP || &**p == "KDR=0" || p.starts_with("WSH="))
}

/// The plan for answering `section`, an offer from the leg of `ctx`.
pub(crate) fn answer_offer(
    ctx: &mut Negotiation<'_>,
    around: Around<'_>,
    section: &MediaDescription,
    previous: Option<&StreamPlan>,
) -> Result<StreamPlan, Refusal> {
    let session = around.session;
    let received = read(around, section);
    if received.disabled || received.family == Family::Other {
        let refused = received.disabled || needs_our_dtls(&received.protocol);
        return Ok(StreamPlan::plain(None, refused));
    }
    let exchange = match received.family {
        // Best-effort SRTP: `RTP/AVP` with `a=crypto` (as baresip's `mediaenc=srtp` and
        // the SBC's own `prefer` offers): SRTP when SDES is usable, else plain.
        Family::Plain if !received.cryptos.is_empty() && ctx.sdes_usable().is_ok() => {
            match answer_sdes(ctx, &received, previous) {
                Ok(exchange) => exchange,
                Err(_) if ctx.policy.allows_plain() => KeyExchange::Plain,
                Err(refusal) => return Err(refusal),
            }
        }
        Family::Plain => {
            if !ctx.policy.allows_plain() {
                return Err(Refusal::PlainNotAllowed);
            }
            KeyExchange::Plain
        }
        Family::Savp if !received.cryptos.is_empty() => answer_sdes(ctx, &received, previous)?,
        Family::Savp | Family::UdpTls => answer_dtls(ctx, &received, previous)?,
        Family::Other => KeyExchange::Plain,
    };
    let ice = match &received.ice {
        Some((ufrag, _)) => Some(ctx.ice(previous, ufrag)?),
        None => None,
    };
    let (mid, bundled) = bundle::membership(session, section);
    let mut plan = StreamPlan {
        protocol: Some(received.protocol.clone()),
        exchange,
        ice,
        disabled: false,
        rtcp_mux: section.lines.rtcp_mux(),
        mid,
        bundled,
        sources: if bundled {
            bundle::sources(section)
        } else {
            Sources::default()
        },
    };
    if let (KeyExchange::Dtls { role, .. }, Some(_)) = (&mut plan.exchange, &plan.ice)
        && matches!(received.setup, Some(Setup::ActPass))
        && previous.is_none_or(|p| !matches!(p.exchange, KeyExchange::Dtls { .. }))
    {
        // An ICE peer starts the handshake once its checks pass: let it be the client.
        *role = Some(DtlsRole::Server);
    }
    Ok(plan)
}

fn answer_sdes(
    ctx: &mut Negotiation<'_>,
    received: &Received,
    previous: Option<&StreamPlan>,
) -> Result<KeyExchange, Refusal> {
    ctx.sdes_usable()?;
    let chosen = received.cryptos.iter().find_map(|crypto| {
        let suite = SrtpSuite::from_sdes_name(&crypto.suite)?;
        if !ctx.policy.suites.contains(&suite) || !params_supported(crypto) {
            return None;
        }
        Some((crypto, suite, inline_keys(crypto, suite)?))
    });
    let Some((crypto, suite, theirs)) = chosen else {
        return Err(Refusal::NoAcceptableCrypto);
    };
    // Our key stays when the peer re-offers the same suite and key; a peer that re-keys
    // gets a new key from us too.
    let ours = match previous.map(|p| &p.exchange) {
        Some(KeyExchange::Sdes {
            suite: old_suite,
            ours,
            theirs: old_theirs,
            ..
        }) if *old_suite == suite && *old_theirs == theirs => ours.clone(),
        _ => ctx.new_key(suite)?,
    };
    Ok(KeyExchange::Sdes {
        suite,
        tag: crypto.tag,
        ours,
        theirs,
        unencrypted_srtcp: crypto
            .session_params
            .iter()
            .any(|p| &**p == UNENCRYPTED_SRTCP),
    })
}

fn answer_dtls(
    ctx: &mut Negotiation<'_>,
    received: &Received,
    previous: Option<&StreamPlan>,
) -> Result<KeyExchange, Refusal> {
    if ctx.policy.dtls == Requirement::Forbid {
        return Err(Refusal::DtlsForbidden);
    }
    if ctx.relay.dtls_fingerprint().is_none() {
        return Err(Refusal::Relay(MediaError::Unsupported));
    }
    let theirs = received
        .fingerprint
        .clone()
        .ok_or(Refusal::BadDtlsParameters)?;
    let kept = match previous.map(|p| &p.exchange) {
        Some(KeyExchange::Dtls {
            role: Some(role), ..
        }) => Some(*role),
        _ => None,
    };
    let role = match received.setup {
        // RFC 4145 §4: no a=setup means active.
        None | Some(Setup::Active) => DtlsRole::Server,
        Some(Setup::Passive) => DtlsRole::Client,
        Some(Setup::ActPass) => kept.unwrap_or(DtlsRole::Client),
        Some(Setup::HoldConn) => return Err(Refusal::BadDtlsParameters),
    };
    Ok(KeyExchange::Dtls {
        role: Some(role),
        theirs: Some(theirs),
    })
}

/// The plan once the leg of `ctx` answered our `offered` plan with `section`.
pub(crate) fn accept_answer(
    ctx: &mut Negotiation<'_>,
    around: Around<'_>,
    section: &MediaDescription,
    offered: &StreamPlan,
) -> Result<StreamPlan, Refusal> {
    let session = around.session;
    let received = read(around, section);
    if received.disabled {
        return Ok(StreamPlan {
            disabled: true,
            ..offered.clone()
        });
    }
    if received.family == Family::Other || offered.protocol.is_none() {
        return Ok(StreamPlan::plain(None, false));
    }
    // A plain answer declines SRTP — unless it answers a best-effort offer with a=crypto.
    let sdes_offered = matches!(
        offered.exchange,
        KeyExchange::SdesOffered(_) | KeyExchange::Sdes { .. }
    );
    let plain_answer =
        received.family == Family::Plain && (!sdes_offered || received.cryptos.is_empty());
    let exchange = match &offered.exchange {
        _ if plain_answer => {
            // The peer declined SRTP (or we offered none).
            if !ctx.policy.allows_plain() {
                return Err(Refusal::PlainNotAllowed);
            }
            KeyExchange::Plain
        }
        KeyExchange::Plain => return Err(Refusal::AnswerMismatch),
        KeyExchange::SdesOffered(lines) => {
            let answer = received.cryptos.first().ok_or(Refusal::AnswerMismatch)?;
            let (tag, suite, ours) = lines
                .iter()
                .find(|(tag, suite, _)| *tag == answer.tag && suite.sdes_name() == &*answer.suite)
                .ok_or(Refusal::AnswerMismatch)?;
            if !params_supported(answer) {
                return Err(Refusal::NoAcceptableCrypto);
            }
            let theirs = inline_keys(answer, *suite).ok_or(Refusal::NoAcceptableCrypto)?;
            KeyExchange::Sdes {
                suite: *suite,
                tag: *tag,
                ours: ours.clone(),
                theirs,
                unencrypted_srtcp: false,
            }
        }
        KeyExchange::Sdes {
            suite,
            tag,
            ours,
            unencrypted_srtcp,
            ..
        } => {
            let answer = received.cryptos.first().ok_or(Refusal::AnswerMismatch)?;
            let theirs = inline_keys(answer, *suite).ok_or(Refusal::NoAcceptableCrypto)?;
            KeyExchange::Sdes {
                suite: *suite,
                tag: *tag,
                ours: ours.clone(),
                theirs,
                unencrypted_srtcp: *unencrypted_srtcp,
            }
        }
        KeyExchange::Dtls { role, .. } => {
            let theirs = received
                .fingerprint
                .clone()
                .ok_or(Refusal::BadDtlsParameters)?;
            let role = match (received.setup, role) {
                (Some(Setup::Active) | None, _) => DtlsRole::Server,
                (Some(Setup::Passive), _) => DtlsRole::Client,
                // actpass is no answer; keep an established role, else take the server's.
                (Some(Setup::ActPass), Some(role)) => *role,
                (Some(Setup::ActPass), None) => DtlsRole::Server,
                (Some(Setup::HoldConn), _) => return Err(Refusal::BadDtlsParameters),
            };
            KeyExchange::Dtls {
                role: Some(role),
                theirs: Some(theirs),
            }
        }
    };
    let ice = match (&offered.ice, &received.ice, &exchange) {
        (Some(ours), Some((ufrag, _)), KeyExchange::Dtls { .. }) => Some(IceCredentials {
            remote_ufrag: ufrag.clone(),
            ..ours.clone()
        }),
        _ => None,
    };
    // The peer keeps the group we offered, or leaves it (RFC 8843 §7.3); it cannot bundle
    // what we did not.
    let (mid, bundled) = bundle::membership(session, section);
    let bundled = bundled && offered.bundled;
    Ok(StreamPlan {
        protocol: Some(received.protocol.clone()),
        exchange,
        ice,
        disabled: false,
        rtcp_mux: section.lines.rtcp_mux(),
        mid: mid.or_else(|| offered.mid.clone()),
        bundled,
        sources: if bundled {
            bundle::sources(section)
        } else {
            Sources::default()
        },
    })
}

/// The SDP attributes of the leg it came from that never cross to the other leg. Cryptex
/// (RFC 9335) is negotiated by neither leg: the relay protects without it (and still
/// understands Cryptex packets it receives).
const LEG_LOCAL: [&str; 4] = ["crypto", "fingerprint", "setup", "cryptex"];

/// RFC 6904 encrypted header extensions are keyed per leg, and not negotiated here: their
/// `a=extmap` lines do not cross either.
const ENCRYPTED_EXTMAP: &[u8] = b"urn:ietf:params:rtp-hdrext:encrypt";

fn remove_encrypted_extmaps(lines: &mut Lines) {
    let kept: Vec<Attribute> = lines
        .attributes_named("extmap")
        .filter(|a| {
            a.value.as_ref().is_none_or(|v| {
                !v.windows(ENCRYPTED_EXTMAP.len())
                    .any(|w| w == ENCRYPTED_EXTMAP)
            })
        })
        .cloned()
        .collect();
    lines.replace_attributes("extmap", kept);
}

/// Removes the sending leg's security attributes from the session level (the media
/// sections are handled by [`write_section`]); adds `a=ice-lite` when any stream toward
/// this leg answers ICE; writes the leg's BUNDLE group (RFC 8843) when it has one, and
/// removes any other: a leg that did not negotiate BUNDLE gets a port per stream.
pub(crate) fn write_session(session: &mut Lines, plans: &[StreamPlan]) {
    for name in LEG_LOCAL {
        session.remove_attributes(name);
    }
    remove_encrypted_extmaps(session);
    session.remove_ice();
    if plans.iter().any(|p| p.ice.is_some() && !p.disabled) {
        session.set_ice_lite(true);
    }
    let mut groups: Vec<Attribute> = session
        .attributes_named("group")
        .filter(|a| a.value.as_ref().is_none_or(|v| !v.starts_with(b"BUNDLE")))
        .cloned()
        .collect();
    if let Some(layout) = bundle::layout(plans) {
        groups.insert(0, Attribute::new("group", layout.group(plans)));
    }
    session.replace_attributes("group", groups);
}

/// Writes the plan's security into a media section sent to the leg: its protocol, our
/// `a=crypto`, or our `a=fingerprint` and `a=setup`, and ICE-lite credentials and host
/// candidates. `offer`: the section is part of an offer (else an answer). A section
/// bundled onto another's transport (`bundle_member`) carries none of that transport's
/// attributes (RFC 8843 §7: only the tagged `m=` line does), nor `a=rtcp`.
pub(crate) fn write_section(
    section: &mut MediaDescription,
    plan: &StreamPlan,
    offer: bool,
    bundle_member: bool,
    fingerprint: Option<&CertFingerprint>,
    relay: LegAddr,
) {
    for name in LEG_LOCAL {
        section.lines.remove_attributes(name);
    }
    remove_encrypted_extmaps(&mut section.lines);
    section.lines.remove_ice();
    if let Some(protocol) = &plan.protocol {
        section.media.protocol = protocol.clone();
    }
    if plan.disabled {
        // Refused or disabled on either leg: port 0 (RFC 3264 §6).
        section.media.port = 0;
        return;
    }
    section.lines.remove_attributes("bundle-only");
    if let Some(mid) = &plan.mid {
        section
            .lines
            .set_attribute(Attribute::new("mid", mid.to_string()));
    }
    if bundle_member {
        section.lines.remove_attributes("rtcp");
        section.lines.set_rtcp_mux(false);
        return;
    }
    if plan.rtcp_mux {
        section.lines.set_rtcp_mux(true);
    }
    match &plan.exchange {
        KeyExchange::Plain => {}
        KeyExchange::SdesOffered(lines) => {
            let cryptos: Vec<Crypto> = lines
                .iter()
                .map(|(tag, suite, key)| crypto_line(*tag, *suite, key, false))
                .collect();
            section.lines.set_crypto(&cryptos);
        }
        KeyExchange::Sdes {
            suite,
            tag,
            ours,
            unencrypted_srtcp,
            ..
        } => {
            let crypto = crypto_line(*tag, *suite, ours, *unencrypted_srtcp);
            section.lines.set_crypto(&[crypto]);
        }
        KeyExchange::Dtls { role, .. } => {
            if let Some(fingerprint) = fingerprint {
                let attribute = Fingerprint::from_digest(&fingerprint.hash, &fingerprint.digest);
                section.lines.set_fingerprints(&[attribute]);
            }
            let setup = match (offer, role) {
                (true, None) => Setup::ActPass,
                (_, Some(DtlsRole::Client)) => Setup::Active,
                (_, Some(DtlsRole::Server)) => Setup::Passive,
                (false, None) => Setup::Passive,
            };
            section.lines.set_setup(Some(setup));
        }
    }
    if let Some(ice) = &plan.ice {
        section
            .lines
            .set_ice_credentials(ice.local_ufrag.clone(), ice.local_pwd.clone());
        let mux = section.lines.rtcp_mux();
        let mut candidates = vec![host_candidate(1, relay.rtp)];
        if !mux {
            candidates.push(host_candidate(2, relay.rtcp));
        }
        section.lines.set_candidates(&candidates);
        section
            .lines
            .push_attribute(Attribute::flag("end-of-candidates"));
    }
}

fn crypto_line(tag: u32, suite: SrtpSuite, key: &SdesKey, unencrypted_srtcp: bool) -> Crypto {
    let mut inline = InlineKey::from_key_salt(&key.key_salt);
    inline.lifetime = None;
    inline.mki = None;
    Crypto {
        tag,
        suite: suite.sdes_name().into(),
        keys: vec![KeyParam::Inline(inline)],
        session_params: if unencrypted_srtcp {
            vec![UNENCRYPTED_SRTCP.into()]
        } else {
            Vec::new()
        },
    }
}

/// The relay's host candidate for `component` (1 RTP, 2 RTCP), RFC 8445 §5.1.2 priority
/// with type preference 126 and local preference 65535.
fn host_candidate(component: u16, address: std::net::SocketAddr) -> Candidate {
    let priority = (126u32 << 24) | (65_535 << 8) | (256 - u32::from(component));
    Candidate {
        foundation: "1".into(),
        component,
        transport: "UDP".into(),
        priority,
        address: bytes::Bytes::from(address.ip().to_string()),
        port: address.port(),
        kind: CandidateType::Host,
        related_address: None,
        related_port: None,
        extensions: Vec::new(),
    }
}
