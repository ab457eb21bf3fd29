//! The signing service (RFC 8224 §5, RFC 8588, ATIS-1000074 §5.2): a SHAKEN PASSporT for
//! a call leaving the SBC, with the attestation level earned by how the caller was
//! established.

use std::time::SystemTime;

use super::certs::unix_seconds;
use super::es256::{KeyError, SigningKey};
use super::header::IdentityHeader;
use super::passport::{
    Attestation, Claims, Destinations, PPT_SHAKEN, Party, Passport, PassportHeader, SignedPassport,
};
use super::url::{self, UrlProblem};

/// How the SBC knows who the caller is: what the attestation level rests on.
///
/// The B2BUA fills it from where the call came from; digest authentication fills
/// [`CallerEstablishment::AuthenticatedUser`] once it has checked the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CallerEstablishment {
    /// Nothing is known: the call came from a peer that is not a customer.
    #[default]
    Unknown,
    /// The call came from a customer trunk the SBC authenticated (by source address or
    /// TLS certificate): the SBC knows the customer, not that the number is theirs.
    CustomerTrunk,
    /// A user the SBC authenticated (SIP Digest). `owns_number`: the calling number is
    /// one assigned to that user.
    AuthenticatedUser { owns_number: bool },
    /// The call arrived with a PASSporT that verified, from another trust domain.
    Verified { attestation: Option<Attestation> },
}

impl CallerEstablishment {
    /// The attestation level this earns (ATIS-1000074 §5.2.3): A for an authenticated
    /// user calling with a number of theirs, B for a known customer, C otherwise. A
    /// verified call keeps its attestation when `keep_verified` (the peer's attestation
    /// is trusted), else is signed as a gateway (C).
    pub fn attestation(&self, keep_verified: bool) -> Attestation {
        match self {
            CallerEstablishment::AuthenticatedUser { owns_number: true } => Attestation::A,
            CallerEstablishment::AuthenticatedUser { owns_number: false }
            | CallerEstablishment::CustomerTrunk => Attestation::B,
            CallerEstablishment::Verified {
                attestation: Some(attestation),
            } if keep_verified => *attestation,
            CallerEstablishment::Verified { .. } | CallerEstablishment::Unknown => Attestation::C,
        }
    }
}

/// Why the signing service cannot be set up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("x5u URL: {0}")]
    Url(UrlProblem),
}

/// Why one call cannot be signed (it then leaves unsigned, and is counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignFailure {
    #[error("the caller is not a telephone number or URI")]
    NoCaller,
    #[error("the called party is not a telephone number or URI")]
    NoCallee,
    #[error("the clock is before 1970")]
    Clock,
    #[error("openssl failed to sign")]
    Crypto,
}

impl SignFailure {
    pub fn name(self) -> &'static str {
        match self {
            SignFailure::NoCaller => "no_caller",
            SignFailure::NoCallee => "no_callee",
            SignFailure::Clock => "clock",
            SignFailure::Crypto => "crypto",
        }
    }
}

/// Signs SHAKEN PASSporTs with the SBC's key, pointing verifiers at its `x5u`.
#[derive(Clone, Debug)]
pub struct Signer {
    key: SigningKey,
    x5u: String,
}

impl Signer {
    /// `x5u` must be an `https` URL (any port: it is where *others* fetch from).
    pub fn new(key: SigningKey, x5u: impl Into<String>) -> Result<Signer, SignerError> {
        let x5u = x5u.into();
        let any_port: Vec<u16> = (1..=u16::MAX).collect();
        url::check(&x5u, &any_port).map_err(SignerError::Url)?;
        Ok(Signer { key, x5u })
    }

    pub fn x5u(&self) -> &str {
        &self.x5u
    }

    /// A SHAKEN Identity header for a call from `orig` to `dest` at `now`. `origid` is
    /// the opaque origination identifier (a UUID; see [`origid_from`]).
    pub fn sign(
        &self,
        orig: Party,
        dest: &Party,
        attestation: Attestation,
        origid: String,
        now: SystemTime,
    ) -> Result<IdentityHeader, SignFailure> {
        let iat = u64::try_from(unix_seconds(now)).map_err(|_| SignFailure::Clock)?;
        let dest = match dest {
            Party::Tn(tn) => Destinations::tn(tn.clone()),
            Party::Uri(uri) => Destinations {
                tn: Vec::new(),
                uri: vec![uri.clone()],
            },
        };
        let passport = Passport {
            header: PassportHeader::shaken(self.x5u.clone()),
            claims: Claims {
                orig,
                dest,
                iat,
                attest: Some(attestation),
                origid: Some(origid),
                div: None,
            },
        };
        let signed = self.sign_passport(passport)?;
        Ok(IdentityHeader::new(
            signed.token(),
            &self.x5u,
            Some(PPT_SHAKEN),
        ))
    }

    /// Signs any PASSporT (its header's `x5u` should be ours).
    pub fn sign_passport(&self, passport: Passport) -> Result<SignedPassport, SignFailure> {
        let signing_input = passport.signing_input();
        let signature = self
            .key
            .sign(signing_input.as_bytes())
            .map_err(|_| SignFailure::Crypto)?;
        Ok(SignedPassport {
            passport,
            signing_input,
            signature: signature.to_vec(),
        })
    }
}

/// A version-4 UUID (RFC 9562 §5.4) from 128 random bits, for `origid`.
pub fn origid_from(high: u64, low: u64) -> String {
    let high = (high & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let low = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestation_follows_how_the_caller_was_established() {
        let user = |owns_number| CallerEstablishment::AuthenticatedUser { owns_number };
        assert_eq!(user(true).attestation(false), Attestation::A);
        assert_eq!(user(false).attestation(false), Attestation::B);
        assert_eq!(
            CallerEstablishment::CustomerTrunk.attestation(false),
            Attestation::B
        );
        assert_eq!(
            CallerEstablishment::Unknown.attestation(true),
            Attestation::C
        );
        let verified = CallerEstablishment::Verified {
            attestation: Some(Attestation::A),
        };
        assert_eq!(verified.attestation(true), Attestation::A);
        assert_eq!(verified.attestation(false), Attestation::C);
    }

    #[test]
    fn origids_are_version_4_uuids() {
        let id = origid_from(u64::MAX, u64::MAX);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(origid_from(0, 0), "00000000-0000-4000-8000-000000000000");
    }
}
