//! SIP Digest authentication (RFC 3261 §22, RFC 7616 semantics, RFC 8760 algorithms),
//! sans-IO.
//!
//! * [`Authenticator`] builds challenges and checks answers. It offers one challenge per
//!   configured algorithm (MD5 and SHA-256 by default, in the configured order of
//!   preference), always with `qop="auth"`.
//! * Nonces are self-validating ([`nonce`]): a timestamp, the minting shard and an HMAC
//!   over both and the client's IP address under a key held only in memory. Nothing is
//!   stored per challenge, so a flood of unanswered challenges costs no memory. A nonce
//!   older than its lifetime, or minted by another shard, is *stale*: when the answer
//!   was otherwise right the client gets a fresh challenge with `stale=true` (RFC 7616
//!   §3.3) and retries without asking its user.
//! * Each nonce's `nc` values are tracked in a 64-wide sliding window (like IPsec's
//!   anti-replay window) in a table of bounded size ([`nonce::ReplayTable`]): a value seen
//!   before is a replay. When the table is full the nonces first used longest ago are
//!   forgotten, and every nonce minted before them is then stale, so eviction never
//!   reopens a replay.
//! * Unknown user and wrong password get the same answer (a new challenge), and an
//!   unknown user's answer is checked against a stand-in HA1 so that both take the same
//!   work: users cannot be enumerated.
//! * Credentials come through [`Credentials`], a synchronous lookup of HA1 values
//!   (`H(username:realm:password)`), which the binary backs with an in-memory snapshot of
//!   its store: the signalling shards never wait for a database.
//!
//! Time (`now`) and the HMAC key are injected, so expiry and replay are testable on a
//! virtual clock.

mod authenticator;
mod digest;
pub mod nonce;

pub use authenticator::{AuthFailure, Authenticator, Check, DigestConfig};
pub use digest::{DigestResponse, ParseDigestError};

use std::fmt;

/// A digest algorithm (RFC 7616 §6.1, RFC 8760).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Md5,
    Sha256,
    /// SHA-512/256 (FIPS 180-4). Accepted when configured; few clients speak it.
    Sha512_256,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Algorithm; 3] = [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256];

    /// The name in `algorithm=` (and in the store).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }

    /// The algorithm named `name` (case-insensitive); `-sess` variants are not supported.
    pub fn from_name(name: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str().as_bytes().eq_ignore_ascii_case(name))
    }

    fn digest(self) -> Option<openssl::hash::MessageDigest> {
        match self {
            Algorithm::Md5 => Some(openssl::hash::MessageDigest::md5()),
            Algorithm::Sha256 => Some(openssl::hash::MessageDigest::sha256()),
            Algorithm::Sha512_256 => openssl::hash::MessageDigest::from_name("SHA512-256"),
        }
    }

    /// `H(parts joined by ':')` in lower-case hex; `None` only if OpenSSL lacks the
    /// algorithm.
    pub fn hash_hex(self, parts: &[&[u8]]) -> Option<String> {
        let mut hasher = openssl::hash::Hasher::new(self.digest()?).ok()?;
        for (index, part) in parts.iter().enumerate() {
            if index > 0 {
                hasher.update(b":").ok()?;
            }
            hasher.update(part).ok()?;
        }
        let digest = hasher.finish().ok()?;
        Some(hex(&digest))
    }

    /// `HA1 = H(username:realm:password)` (for tests and tools; the SBC never sees
    /// passwords).
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> Option<String> {
        self.hash_hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Where HA1 values come from. Called synchronously on the signalling path, so it must
/// answer from memory.
pub trait Credentials: Send + Sync {
    /// The HA1 (lower-case hex) of `username` in `realm` for `algorithm`, if the user
    /// exists and has one.
    fn ha1(&self, realm: &str, username: &str, algorithm: Algorithm) -> Option<String>;
}

/// No users at all (every answer fails).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCredentials;

impl Credentials for NoCredentials {
    fn ha1(&self, _: &str, _: &str, _: Algorithm) -> Option<String> {
        None
    }
}

/// A fixed in-memory table of `(realm, username, algorithm) → HA1` (tests, and the
/// snapshot the binary loads from its store).
#[derive(Clone, Debug, Default)]
pub struct CredentialTable {
    entries: std::collections::HashMap<(String, String, Algorithm), String>,
}

impl CredentialTable {
    pub fn new() -> CredentialTable {
        CredentialTable::default()
    }

    /// Adds the HA1 of `username`/`realm` for `algorithm`.
    pub fn insert(&mut self, realm: &str, username: &str, algorithm: Algorithm, ha1: String) {
        self.entries.insert(
            (realm.to_owned(), username.to_owned(), algorithm),
            ha1.to_ascii_lowercase(),
        );
    }

    /// Adds a user with a password (every algorithm's HA1); for tests.
    pub fn with_password(mut self, realm: &str, username: &str, password: &str) -> Self {
        for algorithm in Algorithm::ALL {
            if let Some(ha1) = algorithm.ha1(username, realm, password) {
                self.insert(realm, username, algorithm, ha1);
            }
        }
        self
    }

    /// Distinct users.
    pub fn users(&self) -> usize {
        let mut users: Vec<(&str, &str)> = self
            .entries
            .keys()
            .map(|(realm, user, _)| (realm.as_str(), user.as_str()))
            .collect();
        users.sort_unstable();
        users.dedup();
        users.len()
    }
}

impl Credentials for CredentialTable {
    fn ha1(&self, realm: &str, username: &str, algorithm: Algorithm) -> Option<String> {
        self.entries
            .get(&(realm.to_owned(), username.to_owned(), algorithm))
            .cloned()
    }
}

/// Who an answer proved to be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuthIdentity {
    pub username: String,
    pub realm: String,
    pub algorithm: Algorithm,
}
