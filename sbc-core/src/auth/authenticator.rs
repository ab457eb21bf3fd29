//! Challenges and the checking of answers.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::digest::DigestResponse;
use super::nonce::{NonceCheck, NonceMint, NonceUse, ReplayTable};
use super::{Algorithm, AuthIdentity, Credentials};
use crate::sip::{HeaderName, Method, Request};

/// How the SBC challenges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestConfig {
    /// The algorithms offered, one challenge each, most preferred first. Clients that
    /// read only the first challenge (many do) use the first algorithm.
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce may be used.
    pub nonce_lifetime: Duration,
    /// Nonces whose counts are tracked at most (per shard).
    pub max_tracked_nonces: usize,
}

impl Default for DigestConfig {
    fn default() -> DigestConfig {
        DigestConfig {
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            nonce_lifetime: Duration::from_secs(300),
            max_tracked_nonces: 65_536,
        }
    }
}

/// Why an answer failed. Every failure is answered like a missing answer (a fresh
/// challenge); the reason is only counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// The credentials value does not parse.
    Malformed,
    /// Another realm than the one challenged.
    WrongRealm,
    /// An algorithm not offered.
    UnsupportedAlgorithm,
    /// `qop=auth` missing (it is required: replay detection needs `nc`).
    QopRequired,
    /// The nonce is not ours or not for this client.
    BadNonce,
    /// The `uri` parameter is not the Request-URI.
    UriMismatch,
    /// The response digest is wrong, or the user unknown (deliberately one reason).
    BadCredentials,
    /// A nonce count used before.
    Replay,
}

impl AuthFailure {
    /// A stable name for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            AuthFailure::Malformed => "malformed_credentials",
            AuthFailure::WrongRealm => "wrong_realm",
            AuthFailure::UnsupportedAlgorithm => "unsupported_algorithm",
            AuthFailure::QopRequired => "qop_required",
            AuthFailure::BadNonce => "bad_nonce",
            AuthFailure::UriMismatch => "uri_mismatch",
            AuthFailure::BadCredentials => "bad_credentials",
            AuthFailure::Replay => "nonce_replay",
        }
    }

    /// Whether the failure counts toward a ban of the source (guessing passwords or
    /// replaying answers); protocol slips of honest clients do not.
    pub fn counts_as_attack(self) -> bool {
        matches!(self, AuthFailure::BadCredentials | AuthFailure::Replay)
    }
}

/// The outcome of checking a request's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Check {
    /// No credentials for our realm: challenge.
    Missing,
    /// The answer is right.
    Authenticated(AuthIdentity),
    /// The answer was right but its nonce is stale: challenge with `stale=true`.
    Stale,
    /// The answer is wrong: challenge again (and count).
    Failed(AuthFailure),
}

/// Challenges and checks answers for one shard. See the module docs.
#[derive(Debug)]
pub struct Authenticator {
    config: DigestConfig,
    mint: NonceMint,
    replays: ReplayTable,
    /// Keys the stand-in HA1 of unknown users.
    decoy_key: Vec<u8>,
}

impl Authenticator {
    /// An authenticator for shard `shard`; every shard gets the same `key` and `epoch`.
    pub fn new(config: DigestConfig, key: &[u8], epoch: Instant, shard: u16) -> Authenticator {
        Authenticator {
            replays: ReplayTable::new(config.max_tracked_nonces),
            config,
            mint: NonceMint::new(key, epoch, shard),
            decoy_key: key.iter().rev().copied().collect(),
        }
    }

    pub fn config(&self) -> &DigestConfig {
        &self.config
    }

    /// Nonces whose counts are being tracked.
    pub fn tracked_nonces(&self) -> usize {
        self.replays.len()
    }

    /// The `WWW-Authenticate` / `Proxy-Authenticate` values of a challenge for `client`
    /// in `realm`: one per configured algorithm, in order, sharing one nonce.
    pub fn challenge(
        &mut self,
        now: Instant,
        realm: &str,
        client: IpAddr,
        stale: bool,
    ) -> Vec<Bytes> {
        let nonce = self.mint.mint(now, client);
        let realm = quote(realm);
        self.config
            .algorithms
            .iter()
            .map(|algorithm| {
                let stale = if stale { ", stale=true" } else { "" };
                Bytes::from(format!(
                    "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={algorithm}, qop=\"auth\"{stale}"
                ))
            })
            .collect()
    }

    /// Checks the credentials of `request` (in `header`: Authorization or
    /// Proxy-Authorization) for `realm`, received from `client`.
    pub fn check(
        &mut self,
        now: Instant,
        request: &Request,
        header: &HeaderName,
        realm: &str,
        client: IpAddr,
        credentials: &dyn Credentials,
    ) -> Check {
        self.expire(now);
        // Several credentials may be present (one per realm, RFC 3261 §22.3): ours is the
        // one naming our realm.
        let mut malformed = false;
        let mut answer = None;
        for value in request.headers.get_all(header) {
            match DigestResponse::parse(value) {
                Ok(parsed) if parsed.realm.as_ref() == realm.as_bytes() => {
                    answer = Some(parsed);
                    break;
                }
                Ok(_) => {}
                Err(_) => malformed = true,
            }
        }
        let Some(answer) = answer else {
            return if malformed {
                Check::Failed(AuthFailure::Malformed)
            } else if request.headers.contains(header) {
                Check::Failed(AuthFailure::WrongRealm)
            } else {
                Check::Missing
            };
        };
        let algorithm = match &answer.algorithm {
            None => Algorithm::Md5,
            Some(name) => match Algorithm::from_name(name) {
                Some(algorithm) => algorithm,
                None => return Check::Failed(AuthFailure::UnsupportedAlgorithm),
            },
        };
        if !self.config.algorithms.contains(&algorithm) {
            return Check::Failed(AuthFailure::UnsupportedAlgorithm);
        }
        let (Some(qop), Some(nc_text), Some(cnonce)) = (&answer.qop, &answer.nc, &answer.cnonce)
        else {
            return Check::Failed(AuthFailure::QopRequired);
        };
        if !qop.eq_ignore_ascii_case(b"auth") {
            return Check::Failed(AuthFailure::QopRequired);
        }
        let Some(nc) = parse_nc(nc_text) else {
            return Check::Failed(AuthFailure::Malformed);
        };
        let nonce_state = self
            .mint
            .check(now, &answer.nonce, client, self.config.nonce_lifetime);
        if nonce_state == NonceCheck::Invalid {
            return Check::Failed(AuthFailure::BadNonce);
        }
        if request.method != Method::Ack
            && request.method != Method::Cancel
            && !uri_matches(&answer.uri, &request.uri.to_bytes())
        {
            return Check::Failed(AuthFailure::UriMismatch);
        }
        let username = String::from_utf8_lossy(&answer.username).into_owned();
        let known = credentials.ha1(realm, &username, algorithm);
        let ha1 = known
            .clone()
            .unwrap_or_else(|| self.decoy_ha1(algorithm, &username, realm));
        let method = request.method.to_string();
        let expected = algorithm
            .hash_hex(&[method.as_bytes(), &answer.uri])
            .and_then(|ha2| {
                algorithm.hash_hex(&[
                    ha1.as_bytes(),
                    &answer.nonce,
                    nc_text,
                    cnonce,
                    b"auth",
                    ha2.as_bytes(),
                ])
            })
            .unwrap_or_default();
        let given = answer.response.to_ascii_lowercase();
        let right = !expected.is_empty()
            && expected.len() == given.len()
            && openssl::memcmp::eq(expected.as_bytes(), &given)
            && known.is_some();
        if !right {
            return Check::Failed(AuthFailure::BadCredentials);
        }
        let NonceCheck::Fresh { stamp, .. } = nonce_state else {
            return Check::Stale;
        };
        match self.replays.record(stamp, &answer.nonce, nc) {
            NonceUse::New => Check::Authenticated(AuthIdentity {
                username,
                realm: realm.to_owned(),
                algorithm,
            }),
            NonceUse::Replayed => Check::Failed(AuthFailure::Replay),
            NonceUse::Forgotten => Check::Stale,
        }
    }

    fn expire(&mut self, now: Instant) {
        // Stamps are milliseconds since the shared epoch; anything older than the nonce
        // lifetime is stale already and need not be remembered.
        let stamp = self.mint.stamp(now);
        let lifetime = u64::try_from(self.config.nonce_lifetime.as_millis()).unwrap_or(u64::MAX);
        self.replays.expire(stamp.saturating_sub(lifetime));
    }

    /// A stand-in HA1 for a user that does not exist, so that checking its answer costs
    /// what checking a real one does.
    fn decoy_ha1(&self, algorithm: Algorithm, username: &str, realm: &str) -> String {
        algorithm
            .hash_hex(&[&self.decoy_key, username.as_bytes(), realm.as_bytes()])
            .unwrap_or_default()
    }
}

/// `nc`: exactly 8 hex digits (RFC 7616 §3.4).
fn parse_nc(text: &[u8]) -> Option<u32> {
    if text.len() != 8 {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(text).ok()?, 16).ok()
}

/// The `uri` parameter names the Request-URI (RFC 7616 §3.4.6); compared after trimming
/// and case-insensitively, since clients print the same URI in different cases, without
/// URI parameters (clients drop or reorder `;transport=…`), and also without the user
/// part, which some clients leave out (SIPp sends `sip:host:port`). The digest covers the
/// `uri` as sent, and every answer is usable once (`nc`), so this leniency lets no
/// answer be reused.
fn uri_matches(given: &[u8], request_uri: &[u8]) -> bool {
    let given = strip_scheme_params(given);
    let request_uri = strip_scheme_params(request_uri);
    given.eq_ignore_ascii_case(request_uri)
        || given.eq_ignore_ascii_case(&without_user(request_uri))
}

/// `sip:user@host` → `sip:host` (the URI unchanged when it has no user part).
fn without_user(uri: &[u8]) -> Vec<u8> {
    match (
        uri.iter().position(|&b| b == b':'),
        uri.iter().position(|&b| b == b'@'),
    ) {
        (Some(colon), Some(at)) if colon < at => {
            let mut out = uri.get(..=colon).unwrap_or_default().to_vec();
            out.extend_from_slice(uri.get(at + 1..).unwrap_or_default());
            out
        }
        _ => uri.to_vec(),
    }
}

/// The URI up to its parameters (clients drop or reorder `;transport=…`).
fn strip_scheme_params(uri: &[u8]) -> &[u8] {
    let end = uri
        .iter()
        .position(|&b| b == b';' || b == b'?')
        .unwrap_or(uri.len());
    uri.get(..end).unwrap_or(uri).trim_ascii()
}

/// A realm inside a quoted string: quotes and backslashes escaped, CR/LF dropped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            '\r' | '\n' => {}
            other => out.push(other),
        }
    }
    out
}
