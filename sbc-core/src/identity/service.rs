//! What the B2BUA uses: per-trunk identity policy, the verifier and the signer, the
//! certificates this shard holds, and what a call's INVITE carries on the egress side.
//!
//! The B2BUA asks [`IdentityService::admit`] about each new call. The answer is to go on
//! (with the call's [`CallIdentity`]), to reject it (the trunk's policy says so for this
//! verdict), or to wait for a certificate: the service then queues a fetch
//! ([`IdentityService::poll_fetch`]), the driver fetches it and hands it back
//! ([`IdentityService::handle_fetched`]), and the B2BUA resumes the calls waiting for it
//! ([`IdentityService::resume`]). Time comes from an injected wall clock.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

pub use super::policy::{
    IdentityConfig, IdentityStats, IncomingIdentity, TrunkIdentity, VerifyMode,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::sip::{HeaderName, Headers, Request};

use super::certs::CertChain;
use super::numbers;
use super::passport::{Attestation, Party};
use super::sign::{CallerEstablishment, origid_from};
use super::verdict::{Failure, Verdict, Verstat};
use super::verify::{Pending, RequestIdentity, Step, Verifier};

fn count(map: &mut BTreeMap<&'static str, u64>, key: &'static str) {
    *map.entry(key).or_default() += 1;
}

/// How the verstat URI parameter is treated on the egress INVITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerstatEdit {
    /// Left as the caller sent it (a trusted source toward a trusted trunk).
    Keep,
    /// Removed: an untrusted peer could have written it.
    Strip,
    /// Set to our verdict.
    Set(Verstat),
}

/// The identity of one call: what verification concluded and what its egress INVITE
/// carries. Kept on the call for its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallIdentity {
    /// `None` when the source trunk is not verified.
    pub verdict: Option<Verdict>,
    /// The attestation this SBC signed with, if it signed.
    pub signed: Option<Attestation>,
    /// Identity header values the egress INVITE carries (replacing the caller's).
    pub identity_headers: Vec<Bytes>,
    pub verstat: VerstatEdit,
    /// RFC 9410 `Reason: STIR` for the caller's provisional and final responses: a
    /// failed verification that the trunk's policy let go on (`mark`), for a trunk with
    /// `stir_reason`.
    pub caller_reason: Option<String>,
}

/// What to do with a new call.
#[derive(Debug)]
pub enum Admission {
    Proceed(Box<CallIdentity>),
    /// Reject with the failure's status (and `Reason: STIR` when `reason`).
    Reject {
        failure: Failure,
        reason: bool,
    },
    /// Wait for the certificate at the URL of [`Waiting::url`].
    Wait(Box<Waiting>),
}

/// A call waiting for a certificate.
#[derive(Debug)]
pub struct Waiting {
    pending: Pending,
    source: Option<String>,
    destination: String,
    /// When the wait began (wall clock), for its bound.
    pub since: SystemTime,
}

impl Waiting {
    pub fn url(&self) -> &str {
        &self.pending.url().url
    }
}

/// The call a decision is about.
#[derive(Clone, Copy)]
struct CallContext<'a> {
    request: &'a Request,
    source: Option<&'a str>,
    destination: &'a str,
    caller: &'a CallerEstablishment,
}

/// Chains this shard holds at most.
const MAX_HELD: usize = 1_024;

/// The identity service of one B2BUA.
pub struct IdentityService {
    config: IdentityConfig,
    verifier: Option<Verifier>,
    clock: Box<dyn Fn() -> SystemTime + Send>,
    /// Chains at hand, until they must be asked for again.
    held: HashMap<String, (Arc<CertChain>, SystemTime)>,
    /// URLs asked of the driver and not answered yet.
    asked: HashSet<String>,
    outbox: VecDeque<String>,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("verifying", &self.verifier.is_some())
            .field("signing", &self.config.signer.is_some())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl IdentityService {
    /// A service reading the time from `clock` (the system's wall clock in production,
    /// a fixed time in tests).
    pub fn new(
        mut config: IdentityConfig,
        clock: impl Fn() -> SystemTime + Send + 'static,
    ) -> IdentityService {
        let verifier = config
            .verification
            .take()
            .map(|(policy, anchors)| Verifier::new(policy, anchors));
        IdentityService {
            config,
            verifier,
            clock: Box::new(clock),
            held: HashMap::new(),
            asked: HashSet::new(),
            outbox: VecDeque::new(),
        }
    }

    /// Replaces the per-trunk policies (trunks added, changed or removed at run time).
    /// Calls in progress keep what they were given.
    pub fn set_trunks(&mut self, trunks: HashMap<String, TrunkIdentity>) {
        self.config.trunks = trunks;
    }

    /// Replaces the signing service and the verification roots (keys, certificates or
    /// STI-CA roots changed at run time). New calls use them; calls in progress keep
    /// what they were given, and a call waiting for a certificate is checked against
    /// the new roots. The new verifier starts with no remembered chain validations,
    /// so a chain refused under the old roots is checked again.
    pub fn set_material(
        &mut self,
        signer: Option<super::sign::Signer>,
        verification: Option<(super::verify::VerifyPolicy, super::certs::TrustAnchors)>,
    ) {
        self.config.signer = signer;
        self.verifier = verification.map(|(policy, anchors)| Verifier::new(policy, anchors));
    }

    pub fn max_wait(&self) -> Duration {
        self.config.max_wait
    }

    pub fn max_waiting(&self) -> usize {
        self.config.max_waiting
    }

    fn policy(&self, trunk: Option<&str>) -> TrunkIdentity {
        trunk
            .and_then(|name| self.config.trunks.get(name))
            .cloned()
            .unwrap_or_default()
    }

    /// A new call from `source` (a trunk name, `None` for an unknown peer) to
    /// `destination`. `random` draws the `origid` of a PASSporT we sign.
    pub fn admit(
        &mut self,
        request: &Request,
        source: Option<&str>,
        destination: &str,
        caller: &CallerEstablishment,
        random: &mut dyn FnMut() -> u64,
        stats: &mut IdentityStats,
    ) -> Admission {
        let from = self.policy(source);
        let Some(verifier) = self
            .verifier
            .as_mut()
            .filter(|_| from.verify != VerifyMode::Off)
        else {
            let call = CallContext {
                request,
                source,
                destination,
                caller,
            };
            return Admission::Proceed(Box::new(self.egress(&call, None, random, stats)));
        };
        let now = (self.clock)();
        let held = &self.held;
        let lookup = |url: &str| {
            held.get(url)
                .filter(|(_, until)| *until > now)
                .map(|(chain, _)| Arc::clone(chain))
        };
        match verifier.start(&RequestIdentity::of(request), now, &lookup) {
            Step::Done(verdict) => {
                let call = CallContext {
                    request,
                    source,
                    destination,
                    caller,
                };
                self.conclude(&call, verdict, random, stats)
            }
            Step::Fetch(pending) => {
                self.ask(pending.url().url.clone(), stats);
                stats.waited += 1;
                Admission::Wait(Box::new(Waiting {
                    pending,
                    source: source.map(str::to_owned),
                    destination: destination.to_owned(),
                    since: now,
                }))
            }
        }
    }

    /// Continues a waiting call once its certificate came (or the wait ended:
    /// `fetched` is then the failure).
    pub fn resume(
        &mut self,
        request: &Request,
        waiting: Waiting,
        caller: &CallerEstablishment,
        fetched: Result<Arc<CertChain>, Failure>,
        random: &mut dyn FnMut() -> u64,
        stats: &mut IdentityStats,
    ) -> Admission {
        let Waiting {
            pending,
            source,
            destination,
            since,
        } = waiting;
        let now = (self.clock)();
        let Some(verifier) = self.verifier.as_mut() else {
            let call = CallContext {
                request,
                source: source.as_deref(),
                destination: &destination,
                caller,
            };
            return Admission::Proceed(Box::new(self.egress(&call, None, random, stats)));
        };
        let held = &self.held;
        let lookup = |url: &str| {
            held.get(url)
                .filter(|(_, until)| *until > now)
                .map(|(chain, _)| Arc::clone(chain))
        };
        match verifier.resume(pending, fetched, now, &lookup) {
            Step::Done(verdict) => {
                let call = CallContext {
                    request,
                    source: source.as_deref(),
                    destination: &destination,
                    caller,
                };
                self.conclude(&call, verdict, random, stats)
            }
            Step::Fetch(pending) => {
                self.ask(pending.url().url.clone(), stats);
                Admission::Wait(Box::new(Waiting {
                    pending,
                    source,
                    destination,
                    since,
                }))
            }
        }
    }

    fn ask(&mut self, url: String, stats: &mut IdentityStats) {
        if self.asked.insert(url.clone()) {
            stats.fetches += 1;
            self.outbox.push_back(url);
        }
    }

    /// The next certificate URL the driver should fetch.
    pub fn poll_fetch(&mut self) -> Option<String> {
        self.outbox.pop_front()
    }

    /// A fetch's result: the chain is held until `fresh_until` when it succeeded. The
    /// B2BUA then resumes the calls waiting for `url` with `outcome`.
    pub fn handle_fetched(
        &mut self,
        url: &str,
        outcome: &Result<Arc<CertChain>, Failure>,
        fresh_until: SystemTime,
    ) {
        self.asked.remove(url);
        if let Ok(chain) = outcome
            && fresh_until > (self.clock)()
        {
            if self.held.len() >= MAX_HELD {
                let now = (self.clock)();
                self.held.retain(|_, (_, until)| *until > now);
                if self.held.len() >= MAX_HELD {
                    self.held.clear();
                }
            }
            self.held
                .insert(url.to_owned(), (Arc::clone(chain), fresh_until));
        }
    }

    /// Forgets that `url` was asked for (its waiters gave up), so a later call asks again.
    pub fn forget_asked(&mut self, url: &str) {
        self.asked.remove(url);
    }

    /// The verdict is in: the trunk's policy decides.
    fn conclude(
        &mut self,
        call: &CallContext<'_>,
        verdict: Verdict,
        random: &mut dyn FnMut() -> u64,
        stats: &mut IdentityStats,
    ) -> Admission {
        let from = self.policy(call.source);
        let verdict = match verdict {
            Verdict::Absent if from.require => Verdict::Failed(Failure::Missing),
            other => other,
        };
        count(&mut stats.verdicts, verdict.name());
        if let (Some(failure), VerifyMode::Enforce) = (verdict.failure(), from.verify) {
            count(&mut stats.rejected, failure.name());
            return Admission::Reject {
                failure,
                reason: from.stir_reason,
            };
        }
        Admission::Proceed(Box::new(self.egress(call, Some(verdict), random, stats)))
    }

    /// What the egress INVITE carries: our PASSporT (signing or re-signing), the
    /// caller's Identity kept or not, and verstat.
    fn egress(
        &mut self,
        call: &CallContext<'_>,
        verdict: Option<Verdict>,
        random: &mut dyn FnMut() -> u64,
        stats: &mut IdentityStats,
    ) -> CallIdentity {
        let CallContext {
            request,
            source,
            destination,
            caller,
        } = *call;
        let from = self.policy(source);
        let to = self.policy(Some(destination));
        let domain_of = |policy: &TrunkIdentity, name: Option<&str>| {
            policy.domain.clone().or_else(|| name.map(str::to_owned))
        };
        let same_domain = domain_of(&from, source).is_some()
            && domain_of(&from, source) == domain_of(&to, Some(destination));
        let passed = matches!(verdict, Some(Verdict::Passed { .. }));
        // A verified call staying in its trust domain keeps its PASSporT as it is.
        let resign = to.sign && !(passed && same_domain);
        let mut signed = None;
        let mut identity_headers = Vec::new();
        let keep_incoming = match to.incoming_identity {
            IncomingIdentity::Keep => true,
            IncomingIdentity::Remove => false,
            IncomingIdentity::Auto => !resign,
        };
        if keep_incoming {
            identity_headers.extend(request.headers.get_all(&HeaderName::Identity).cloned());
        }
        if resign && let Some(signer) = &self.config.signer {
            let establishment = match &verdict {
                // What the trust boundary established (an authenticated user) comes first.
                _ if matches!(caller, CallerEstablishment::AuthenticatedUser { .. }) => {
                    caller.clone()
                }
                Some(Verdict::Passed { attestation, .. }) => CallerEstablishment::Verified {
                    attestation: *attestation,
                },
                _ if from.customer => CallerEstablishment::CustomerTrunk,
                _ => CallerEstablishment::Unknown,
            };
            let attestation = establishment.attestation(from.trust_attestation);
            let orig = caller_to_sign(&request.headers, from.trusted);
            let dest = numbers::callees(request).into_iter().next();
            let origid = origid_from(random(), random());
            let outcome = match (orig, dest) {
                (None, _) => Err(super::sign::SignFailure::NoCaller),
                (_, None) => Err(super::sign::SignFailure::NoCallee),
                (Some(orig), Some(dest)) => {
                    signer.sign(orig, &dest, attestation, origid, (self.clock)())
                }
            };
            match outcome {
                Ok(header) => {
                    count(&mut stats.signed, attestation.as_str());
                    signed = Some(attestation);
                    identity_headers.push(header.to_bytes());
                }
                Err(failure) => count(&mut stats.sign_failures, failure.name()),
            }
        }
        let verstat = match &verdict {
            Some(verdict) if to.verstat => VerstatEdit::Set(verdict.verstat()),
            _ if from.trusted && to.trusted => VerstatEdit::Keep,
            _ => VerstatEdit::Strip,
        };
        let caller_reason = verdict
            .as_ref()
            .and_then(Verdict::failure)
            .filter(|_| from.stir_reason)
            .map(Failure::reason_header);
        CallIdentity {
            verdict,
            signed,
            identity_headers,
            verstat,
            caller_reason,
        }
    }
}

/// The caller a PASSporT we sign names: P-Asserted-Identity only from a trusted source,
/// else From.
fn caller_to_sign(headers: &Headers, trusted: bool) -> Option<Party> {
    if trusted {
        return numbers::caller(headers);
    }
    headers
        .from()
        .ok()
        .and_then(|from| numbers::party_of_uri(&from.uri))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;

    use super::*;
    use crate::identity::es256::SigningKey;
    use crate::identity::passport::SignedPassport;
    use crate::identity::sign::Signer;
    use crate::sip::{Message, parse_message};

    fn service(trunks: &[(&str, TrunkIdentity)]) -> IdentityService {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = SigningKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        IdentityService::new(
            IdentityConfig {
                signer: Some(Signer::new(key, "https://sbc.example.net/sp.pem").unwrap()),
                trunks: trunks
                    .iter()
                    .map(|(name, policy)| ((*name).to_owned(), policy.clone()))
                    .collect(),
                ..IdentityConfig::default()
            },
            SystemTime::now,
        )
    }

    fn invite() -> Request {
        let text = "INVITE sip:+15551230000@sbc SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             From: <sip:+12155551212@example.net;verstat=TN-Validation-Passed>;tag=1\r\n\
             To: <sip:+15551230000@sbc>\r\nCall-ID: 1\r\nCSeq: 1 INVITE\r\n\
             Identity: theirs;info=<https://x.example/c.pem>\r\nContent-Length: 0\r\n\r\n";
        match parse_message(Bytes::from(text)).unwrap() {
            Message::Request(request) => request,
            Message::Response(_) => unreachable!(),
        }
    }

    fn admit(service: &mut IdentityService, caller: CallerEstablishment) -> CallIdentity {
        let mut counter = 0;
        let mut random = move || {
            counter += 1;
            counter
        };
        let mut stats = IdentityStats::default();
        match service.admit(
            &invite(),
            Some("in"),
            "out",
            &caller,
            &mut random,
            &mut stats,
        ) {
            Admission::Proceed(identity) => *identity,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_attestation_follows_the_caller_and_the_trunk() {
        let signing = TrunkIdentity {
            sign: true,
            ..TrunkIdentity::default()
        };
        let mut plain = service(&[("out", signing.clone())]);
        let user = CallerEstablishment::AuthenticatedUser { owns_number: true };
        assert_eq!(admit(&mut plain, user).signed, Some(Attestation::A));
        let other_number = CallerEstablishment::AuthenticatedUser { owns_number: false };
        assert_eq!(admit(&mut plain, other_number).signed, Some(Attestation::B));
        let unknown = admit(&mut plain, CallerEstablishment::Unknown);
        assert_eq!(unknown.signed, Some(Attestation::C));
        // Ours replaces theirs (auto), and the forged verstat goes.
        assert_eq!(unknown.identity_headers.len(), 1);
        let ours = std::str::from_utf8(&unknown.identity_headers[0]).unwrap();
        let token = ours.split(';').next().unwrap();
        let passport = SignedPassport::parse(token).unwrap().passport;
        assert_eq!(passport.claims.orig, Party::Tn("12155551212".into()));
        assert_eq!(passport.claims.dest.tn, vec!["15551230000".to_owned()]);
        assert_eq!(unknown.verstat, VerstatEdit::Strip);
        assert_eq!(unknown.verdict, None);

        let customer = TrunkIdentity {
            customer: true,
            ..TrunkIdentity::default()
        };
        let mut from_customer = service(&[("in", customer), ("out", signing)]);
        assert_eq!(
            admit(&mut from_customer, CallerEstablishment::Unknown).signed,
            Some(Attestation::B)
        );
    }

    #[test]
    fn new_material_signs_the_next_call_and_old_calls_keep_theirs() {
        let signing = TrunkIdentity {
            sign: true,
            ..TrunkIdentity::default()
        };
        let mut service = service(&[("out", signing)]);
        let before = admit(&mut service, CallerEstablishment::Unknown);
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = SigningKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let verifying = key.verifying_key().unwrap();
        let signer = Signer::new(key, "https://new.example.net/sp.pem").unwrap();
        service.set_material(Some(signer), None);
        let after = admit(&mut service, CallerEstablishment::Unknown);
        let token = |identity: &CallIdentity| {
            let header = std::str::from_utf8(&identity.identity_headers[0]).unwrap();
            SignedPassport::parse(header.split(';').next().unwrap()).unwrap()
        };
        let (old, new) = (token(&before), token(&after));
        assert_eq!(old.passport.header.x5u, "https://sbc.example.net/sp.pem");
        assert_eq!(new.passport.header.x5u, "https://new.example.net/sp.pem");
        assert!(verifying.verify(new.signing_input.as_bytes(), &new.signature));
        assert!(!verifying.verify(old.signing_input.as_bytes(), &old.signature));
        // Without a signer, calls to a signing trunk leave unsigned.
        service.set_material(None, None);
        assert_eq!(
            admit(&mut service, CallerEstablishment::Unknown).signed,
            None
        );
    }

    #[test]
    fn without_signing_the_callers_identity_passes_and_trusted_verstat_is_kept() {
        let trusted = TrunkIdentity {
            trusted: true,
            ..TrunkIdentity::default()
        };
        let mut service = service(&[("in", trusted.clone()), ("out", trusted)]);
        let identity = admit(&mut service, CallerEstablishment::Unknown);
        assert_eq!(identity.signed, None);
        assert_eq!(
            identity.identity_headers,
            vec![Bytes::from_static(b"theirs;info=<https://x.example/c.pem>")]
        );
        assert_eq!(identity.verstat, VerstatEdit::Keep);
    }
}
