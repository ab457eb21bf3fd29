//! The verification service (RFC 8224 §6.2, RFC 8588, ATIS-1000074 §5.3), sans-IO.
//!
//! [`Verifier::start`] looks at what a request carries ([`RequestIdentity`]) at `now` and
//! either concludes at once or asks for a certificate ([`Step::Fetch`]); the driver
//! fetches it and hands it back with [`Verifier::resume`]. Everything that can be checked
//! without the certificate is checked first, so a call whose claims are wrong never
//! causes a fetch. A `div` PASSporT (RFC 8946) that diverted the call is verified too,
//! before the SHAKEN one it refers to, so one call may need two certificates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::sip::{HeaderName, Request};

use super::certs::{CertChain, DateProblem, TrustAnchors, Validated, from_unix, unix_seconds};
use super::header::{HeaderError, IdentityHeader};
use super::numbers::{self, canonical_tn, normalise_claimed_uri};
use super::passport::{
    Claims, Destinations, ES256, PASSPORT_TYP, PPT_DIV, PPT_SHAKEN, Party, Passport,
    PassportHeader, SignedPassport, TokenError,
};
use super::tnauth::Coverage;
use super::url::{self, UrlProblem, X5uUrl};
use super::verdict::{Failure, Verdict};

/// How strict verification is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// How far `iat` (and the Date header) may be from `now`, either way (RFC 8224 §6.2.1
    /// recommends 60 s).
    pub max_age: Duration,
    /// Refuse certificates without a TNAuthList (ATIS-1000080 requires one).
    pub require_tn_auth_list: bool,
    /// Check that `dest` names the called party (To or Request-URI).
    pub check_dest: bool,
    /// Ports a certificate URL may name.
    pub ports: Vec<u16>,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        VerifyPolicy {
            max_age: Duration::from_secs(60),
            require_tn_auth_list: true,
            check_dest: true,
            ports: url::DEFAULT_PORTS.to_vec(),
        }
    }
}

/// What verification needs from a request, extracted once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestIdentity {
    pub identities: Vec<Result<IdentityHeader, HeaderError>>,
    /// The caller: P-Asserted-Identity, else From.
    pub caller: Option<Party>,
    /// The called party: To, then the Request-URI.
    pub callees: Vec<Party>,
    /// `None`: no Date header; `Some(None)`: one that does not parse.
    pub date: Option<Option<SystemTime>>,
}

impl RequestIdentity {
    pub fn of(request: &Request) -> RequestIdentity {
        let date = request.headers.get(&HeaderName::Date).map(|value| {
            std::str::from_utf8(value)
                .ok()
                .and_then(|text| httpdate::parse_http_date(text.trim()).ok())
        });
        RequestIdentity {
            identities: IdentityHeader::all_of(&request.headers),
            caller: numbers::caller(&request.headers),
            callees: numbers::callees(request),
            date,
        }
    }
}

/// Where verification stands.
#[derive(Debug)]
pub enum Step {
    Done(Verdict),
    /// The certificate at `pending.url()` is needed; pass it to [`Verifier::resume`].
    Fetch(Pending),
}

/// A verification waiting for a certificate.
#[derive(Debug)]
pub struct Pending {
    /// The PASSporTs still to check; the first waits for its certificate.
    checks: Vec<Check>,
    passed: Verdict,
}

impl Pending {
    /// The certificate URL waited for.
    pub fn url(&self) -> &X5uUrl {
        // `checks` is never empty in a `Pending` (see `Verifier::run`).
        &self.checks[0].url
    }
}

/// One PASSporT whose claims are fine, waiting for its certificate checks.
#[derive(Debug)]
struct Check {
    passport: SignedPassport,
    url: X5uUrl,
}

/// Verifies calls; one per signalling shard. Remembers what it concluded about each
/// certificate chain it has seen (bounded), so the chain's signatures are checked once.
#[derive(Debug)]
pub struct Verifier {
    policy: VerifyPolicy,
    anchors: TrustAnchors,
    chains: HashMap<u64, Result<Validated, Failure>>,
}

/// Chains whose validation is remembered at most.
const MAX_REMEMBERED_CHAINS: usize = 512;

impl Verifier {
    pub fn new(policy: VerifyPolicy, anchors: TrustAnchors) -> Verifier {
        Verifier {
            policy,
            anchors,
            chains: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &VerifyPolicy {
        &self.policy
    }

    /// Starts verifying a request at `now`. `cached` returns a certificate chain the
    /// caller already holds for a URL (no fetch needed then).
    pub fn start(
        &mut self,
        request: &RequestIdentity,
        now: SystemTime,
        cached: &dyn Fn(&str) -> Option<Arc<CertChain>>,
    ) -> Step {
        match self.claims(request, now) {
            Ok((checks, passed)) => self.run(Pending { checks, passed }, now, cached),
            Err(verdict) => Step::Done(verdict),
        }
    }

    /// Continues with the certificate fetched for [`Pending::url`] (or why there is none).
    pub fn resume(
        &mut self,
        mut pending: Pending,
        fetched: Result<Arc<CertChain>, Failure>,
        now: SystemTime,
        cached: &dyn Fn(&str) -> Option<Arc<CertChain>>,
    ) -> Step {
        if pending.checks.is_empty() {
            return Step::Done(pending.passed);
        }
        let check = pending.checks.remove(0);
        if let Err(failure) = fetched.and_then(|chain| self.certificate(&check, &chain, now)) {
            return Step::Done(Verdict::Failed(failure));
        }
        self.run(pending, now, cached)
    }

    /// Runs the certificate checks of `pending` whose certificates are at hand.
    fn run(
        &mut self,
        mut pending: Pending,
        now: SystemTime,
        cached: &dyn Fn(&str) -> Option<Arc<CertChain>>,
    ) -> Step {
        while let Some(check) = pending.checks.first() {
            let Some(chain) = cached(&check.url.url) else {
                return Step::Fetch(pending);
            };
            if let Err(failure) = self.certificate(check, &chain, now) {
                return Step::Done(Verdict::Failed(failure));
            }
            pending.checks.remove(0);
        }
        Step::Done(pending.passed)
    }

    /// The checks that need the certificate: chain, dates, signature, TNAuthList.
    fn certificate(
        &mut self,
        check: &Check,
        chain: &CertChain,
        now: SystemTime,
    ) -> Result<(), Failure> {
        if self.chains.len() >= MAX_REMEMBERED_CHAINS && !self.chains.contains_key(&chain.id()) {
            self.chains.clear();
        }
        let anchors = &self.anchors;
        let window = *self
            .chains
            .entry(chain.id())
            .or_insert_with(|| anchors.validate(chain).map_err(|_| Failure::UnknownRoot));
        match window?.check(now) {
            Ok(()) => {}
            Err(DateProblem::Expired) => return Err(Failure::CertificateExpired),
            Err(DateProblem::NotYetValid) => return Err(Failure::CertificateNotYetValid),
        }
        if !chain.key().verify(
            check.passport.signing_input.as_bytes(),
            &check.passport.signature,
        ) {
            return Err(Failure::BadSignature);
        }
        let Some(list) = chain.tn_auth_list() else {
            return if self.policy.require_tn_auth_list {
                Err(Failure::MissingTnAuthList)
            } else {
                Ok(())
            };
        };
        let coverage = match &check.passport.passport.claims.orig {
            Party::Tn(tn) => list.covers(tn),
            // A URI caller is covered only by a provider-wide (SPC) certificate.
            Party::Uri(_) => match list.covers("") {
                Coverage::ServiceProvider => Coverage::ServiceProvider,
                _ => Coverage::NotCovered,
            },
        };
        match coverage {
            Coverage::Number | Coverage::ServiceProvider => Ok(()),
            Coverage::NotCovered => Err(Failure::TnNotCovered),
        }
    }

    /// Everything that can be checked before a certificate is fetched: which PASSporTs,
    /// their syntax, parameters, URL, freshness, and whether they name this call's
    /// parties. Returns the PASSporTs to check against their certificates (the `div` one
    /// first), and the verdict if they all pass.
    fn claims(
        &self,
        request: &RequestIdentity,
        now: SystemTime,
    ) -> Result<(Vec<Check>, Verdict), Verdict> {
        if request.identities.is_empty() {
            return Err(Verdict::Absent);
        }
        let mut parsed = Vec::new();
        for header in &request.identities {
            let header = header
                .as_ref()
                .map_err(|_| Verdict::Failed(Failure::MalformedHeader))?;
            parsed.push(self.token(header, request, now).map_err(Verdict::Failed)?);
        }
        let caller = request
            .caller
            .as_ref()
            .ok_or(Verdict::Failed(Failure::OrigMismatch))?;
        // The PASSporT that names this call's destination: the SHAKEN (or base) one, or
        // a `div` one when the call was diverted on its way here.
        let names_callee = |dest: &Destinations| {
            !self.policy.check_dest || destination_matches(dest, &request.callees)
        };
        let primary = parsed
            .iter()
            .position(|(_, passport)| names_callee(&passport.passport.claims.dest))
            .ok_or(Verdict::Failed(Failure::DestMismatch))?;
        let (url, passport) = parsed.swap_remove(primary);
        check_orig(&passport.passport.claims.orig, caller).map_err(Verdict::Failed)?;
        let mut checks = vec![Check { passport, url }];
        if checks[0].passport.passport.header.ppt.as_deref() == Some(PPT_DIV) {
            // RFC 8946 §6: the original PASSporT is the one whose dest is our `div`.
            let Some(div) = checks[0].passport.passport.claims.div.clone() else {
                return Err(Verdict::Failed(Failure::InvalidClaims));
            };
            let original = parsed
                .into_iter()
                .find(|(_, passport)| {
                    passport.passport.header.ppt.as_deref() != Some(PPT_DIV)
                        && destination_matches(
                            &passport.passport.claims.dest,
                            std::slice::from_ref(&div),
                        )
                })
                .ok_or(Verdict::Failed(Failure::DestMismatch))?;
            check_orig(&original.1.passport.claims.orig, caller).map_err(Verdict::Failed)?;
            checks.push(Check {
                url: original.0,
                passport: original.1,
            });
        }
        let attested = checks
            .iter()
            .map(|check| &check.passport.passport.claims)
            .find(|claims| claims.div.is_none())
            .unwrap_or(&checks[0].passport.passport.claims);
        let passed = Verdict::Passed {
            attestation: attested.attest,
            orig: attested.orig.clone(),
            origid: attested.origid.clone(),
        };
        Ok((checks, passed))
    }

    /// One Identity header's token, parsed and checked up to the certificate.
    fn token(
        &self,
        header: &IdentityHeader,
        request: &RequestIdentity,
        now: SystemTime,
    ) -> Result<(X5uUrl, SignedPassport), Failure> {
        if header.alg.as_deref().is_some_and(|alg| alg != ES256) {
            return Err(Failure::UnsupportedAlgorithm);
        }
        let info = header.info.as_deref().ok_or(Failure::MissingInfo)?;
        let passport = if header.is_compact() {
            compact(header, info, request)?
        } else {
            SignedPassport::parse(&header.token).map_err(token_failure)?
        };
        let jose = &passport.passport.header;
        if jose.alg != ES256 {
            return Err(Failure::UnsupportedAlgorithm);
        }
        if jose.typ.as_deref() != Some(PASSPORT_TYP) {
            return Err(Failure::UnsupportedType);
        }
        if header.ppt.is_some() && header.ppt != jose.ppt {
            return Err(Failure::UnsupportedPpt);
        }
        match jose.ppt.as_deref() {
            None => {}
            Some(PPT_SHAKEN) => passport.passport.check_shaken().map_err(token_failure)?,
            Some(PPT_DIV) if passport.passport.claims.div.is_some() => {}
            Some(PPT_DIV) => return Err(Failure::InvalidClaims),
            Some(_) => return Err(Failure::UnsupportedPpt),
        }
        if jose.x5u != info {
            return Err(Failure::InfoMismatch);
        }
        let url = url::check(&jose.x5u, &self.policy.ports).map_err(|problem| match problem {
            UrlProblem::NotHttps => Failure::X5uNotHttps,
            _ => Failure::X5uForbidden,
        })?;
        let claims = &passport.passport.claims;
        if let Party::Tn(tn) = &claims.orig
            && canonical_tn(tn.as_bytes()).as_deref() != Some(tn.as_str())
        {
            return Err(Failure::InvalidClaims);
        }
        if claims
            .dest
            .tn
            .iter()
            .any(|tn| canonical_tn(tn.as_bytes()).as_deref() != Some(tn.as_str()))
        {
            return Err(Failure::InvalidClaims);
        }
        let max_age = i64::try_from(self.policy.max_age.as_secs()).unwrap_or(i64::MAX);
        let now_s = unix_seconds(now);
        let iat = i64::try_from(claims.iat).unwrap_or(i64::MAX);
        if now_s.abs_diff(iat) > max_age.unsigned_abs() {
            return Err(Failure::StaleIat);
        }
        match request.date {
            None => {}
            Some(None) => return Err(Failure::StaleDate),
            Some(Some(date)) => {
                let date = unix_seconds(date);
                if now_s.abs_diff(date) > max_age.unsigned_abs()
                    || date.abs_diff(iat) > max_age.unsigned_abs()
                {
                    return Err(Failure::StaleDate);
                }
            }
        }
        Ok((url, passport))
    }
}

/// Rebuilds a compact-form base PASSporT from the request (RFC 8224 §5.3): `x5u` from
/// `info`, `iat` from Date, `orig` from the caller, `dest` from To.
fn compact(
    header: &IdentityHeader,
    info: &str,
    request: &RequestIdentity,
) -> Result<SignedPassport, Failure> {
    if header.ppt.is_some() {
        // SHAKEN and div PASSporTs carry claims that cannot be rebuilt (RFC 8588 §6).
        return Err(Failure::MalformedToken);
    }
    let iat = match request.date {
        Some(Some(date)) => unix_seconds(date),
        _ => return Err(Failure::StaleDate),
    };
    let orig = request.caller.clone().ok_or(Failure::OrigMismatch)?;
    let dest = match request.callees.first() {
        Some(Party::Tn(tn)) => Destinations::tn(tn.clone()),
        Some(Party::Uri(uri)) => Destinations {
            tn: Vec::new(),
            uri: vec![uri.clone()],
        },
        None => return Err(Failure::DestMismatch),
    };
    let rebuilt = Passport {
        header: PassportHeader::with_ppt(info, None),
        claims: Claims {
            orig,
            dest,
            iat: u64::try_from(iat).map_err(|_| Failure::StaleDate)?,
            attest: None,
            origid: None,
            div: None,
        },
    };
    SignedPassport::from_compact(&header.token, rebuilt).map_err(token_failure)
}

fn token_failure(error: TokenError) -> Failure {
    match error {
        TokenError::Malformed(_) | TokenError::MalformedHeader(_) => Failure::MalformedToken,
        TokenError::InvalidClaims(_) => Failure::InvalidClaims,
    }
}

/// Whether `orig` is the caller.
fn check_orig(orig: &Party, caller: &Party) -> Result<(), Failure> {
    let matches = match orig {
        Party::Tn(tn) => matches!(caller, Party::Tn(number) if number == tn),
        Party::Uri(uri) => normalise_claimed_uri(uri).as_ref() == Some(caller),
    };
    if matches {
        Ok(())
    } else {
        Err(Failure::OrigMismatch)
    }
}

/// Whether `dest` names one of `callees`.
fn destination_matches(dest: &Destinations, callees: &[Party]) -> bool {
    callees.iter().any(|callee| match callee {
        Party::Tn(number) => dest.tn.iter().any(|tn| tn == number),
        Party::Uri(_) => dest
            .uri
            .iter()
            .any(|uri| normalise_claimed_uri(uri).as_ref() == Some(callee)),
    })
}

/// `iat` as a time (for logs).
pub fn issued_at(passport: &SignedPassport) -> SystemTime {
    from_unix(passport.passport.claims.iat)
}
