//! Caller identity at the trust boundary: STIR/SHAKEN (RFC 8224, 8225, 8226, 8588, 8946,
//! 9410), sans-IO.
//!
//! * [`passport`]: PASSporT tokens — JOSE header, claims (`orig`, `dest`, `iat`,
//!   `attest`, `origid`, `div`), canonical JSON, compact and full forms.
//! * [`header`]: the SIP `Identity` header and its `info`, `alg`, `ppt` parameters.
//! * [`es256`]: ECDSA P-256 signatures in JWS `r || s` form, with openssl.
//! * [`certs`] and [`tnauth`]: certificate chains, STI-CA trust anchors, the TNAuthList
//!   extension (RFC 8226).
//! * [`verify`]: the verification service, a state machine that asks for certificates
//!   rather than fetching them ([`verify::Step::Fetch`]); the driver's fetcher
//!   (`net::x5u`) answers.
//! * [`sign`]: the signing service and the attestation levels.
//! * [`verdict`]: the outcome, each failure with a stable name, its RFC 8224 status and
//!   its RFC 9410 `Reason: STIR`.
//! * [`policy`]: per-trunk identity policy and the B2BUA's identity configuration.
//! * [`service`]: what the B2BUA uses: the certificates at hand, the calls waiting for
//!   one, and what goes on the egress INVITE.
//!
//! A signed call verifies:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//!
//! use sbc_core::identity::certs::{CertChain, TrustAnchors};
//! use sbc_core::identity::es256::SigningKey;
//! use sbc_core::identity::passport::{Attestation, Party};
//! use sbc_core::identity::sign::Signer;
//! use sbc_core::identity::verdict::Verdict;
//! use sbc_core::identity::verify::{RequestIdentity, Step, Verifier, VerifyPolicy};
//! # use openssl::{asn1::Asn1Time, bn::BigNum, ec::{EcGroup, EcKey}, hash::MessageDigest,
//! #     nid::Nid, pkey::PKey, x509::{X509, X509NameBuilder}};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
//! # let key = EcKey::generate(&group)?;
//! # let pkey = PKey::from_ec_key(key.clone())?;
//! # let mut name = X509NameBuilder::new()?;
//! # name.append_entry_by_text("CN", "Example STI-SP")?;
//! # let name = name.build();
//! # let mut cert = X509::builder()?;
//! # cert.set_version(2)?;
//! # let serial = BigNum::from_u32(1)?.to_asn1_integer()?;
//! # cert.set_serial_number(&serial)?;
//! # cert.set_subject_name(&name)?;
//! # cert.set_issuer_name(&name)?;
//! # cert.set_pubkey(&pkey)?;
//! # let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(30)?);
//! # cert.set_not_before(&from)?;
//! # cert.set_not_after(&until)?;
//! # cert.sign(&pkey, MessageDigest::sha256())?;
//! # let certificate = cert.build();
//! // An SP key and a self-signed certificate (a real one is issued by an STI-CA).
//! let signer = Signer::new(SigningKey::from_ec_key(key)?, "https://cert.example.net/sp.pem")?;
//! let now = SystemTime::now();
//! let identity = signer.sign(
//!     Party::Tn("12155551212".into()),
//!     &Party::Tn("12155550000".into()),
//!     Attestation::A,
//!     "de305d54-75b4-431b-adb2-eb6b9e546014".into(),
//!     now,
//! )?;
//!
//! let invite = sbc_core::sip::parse_message(format!(
//!     "INVITE sip:+12155550000@sbc.example.net SIP/2.0\r\n\
//!      Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
//!      From: <sip:+12155551212@example.com>;tag=1\r\nTo: <sip:+12155550000@example.net>\r\n\
//!      Call-ID: 1@192.0.2.1\r\nCSeq: 1 INVITE\r\nIdentity: {identity}\r\n\
//!      Content-Length: 0\r\n\r\n").into())?;
//! let sbc_core::sip::Message::Request(invite) = invite else { unreachable!() };
//!
//! let mut policy = VerifyPolicy::default();
//! policy.require_tn_auth_list = false; // this test certificate has none
//! let anchors = TrustAnchors::new(vec![certificate.clone()])?;
//! let mut verifier = Verifier::new(policy, anchors);
//! let request = RequestIdentity::of(&invite);
//! // The certificate is not at hand: the verifier asks for it ...
//! let Step::Fetch(pending) = verifier.start(&request, now, &|_| None) else { panic!() };
//! assert_eq!(pending.url().url, "https://cert.example.net/sp.pem");
//! // ... and the driver fetches it and hands it back.
//! let chain = Arc::new(CertChain::parse(&certificate.to_pem()?)?);
//! let Step::Done(verdict) = verifier.resume(pending, Ok(chain), now, &|_| None) else { panic!() };
//! assert!(matches!(verdict, Verdict::Passed { attestation: Some(Attestation::A), .. }));
//! assert_eq!(verdict.verstat().as_str(), "TN-Validation-Passed");
//! # Ok(())
//! # }
//! ```

pub mod certs;
mod der;
pub mod egress;
pub mod es256;
pub mod header;
pub mod json;
pub mod numbers;
pub mod passport;
pub mod policy;
pub mod service;
pub mod sign;
pub mod tnauth;
pub mod url;
pub mod verdict;
pub mod verify;

pub use header::IdentityHeader;
pub use passport::{Attestation, Party};
pub use verdict::{Failure, Verdict, Verstat};
