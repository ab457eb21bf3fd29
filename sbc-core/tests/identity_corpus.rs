//! The STIR/SHAKEN examples of the RFCs and of libstirshaken
//! (`shared/testdata/stir/`, see its README): each token parses as the README says, the
//! ones with published keys verify, and the certificates chain as stated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sbc_core::identity::certs::{CertChain, CertError, TrustAnchors};
use sbc_core::identity::es256::VerifyingKey;
use sbc_core::identity::header::IdentityHeader;
use sbc_core::identity::json;
use sbc_core::identity::passport::{
    Attestation, Claims, Destinations, Party, Passport, PassportHeader, SignedPassport, TokenError,
};
use serde_json::Value;

fn stir_dir() -> PathBuf {
    let root = std::env::var("SBC_TESTDATA").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"),
        PathBuf::from,
    );
    root.join("stir")
}

fn read(path: &str) -> Vec<u8> {
    let path = stir_dir().join(path);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (set SBC_TESTDATA)", path.display()))
}

/// The key a case verifies with: a PEM public key or a certificate's.
fn key(path: &str) -> VerifyingKey {
    let pem = read(path);
    match VerifyingKey::from_pem(&pem) {
        Ok(key) => key,
        Err(_) => {
            VerifyingKey::from_certificate(&openssl::x509::X509::from_pem(&pem).unwrap()).unwrap()
        }
    }
}

/// Checks the signature over the first two parts exactly as received.
fn signature_valid(token: &str, key: &VerifyingKey) -> bool {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    key.verify(input.as_bytes(), &signature)
}

fn cases() -> Vec<Value> {
    let manifest: Value = serde_json::from_slice(&read("verification_cases.json")).unwrap();
    manifest["cases"].as_array().unwrap().clone()
}

#[test]
fn every_case_parses_and_verifies_as_the_readme_says() {
    let cases = cases();
    assert_eq!(cases.len(), 11);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let token = case["token"].as_str().unwrap();
        let key = key(case["verify_with"].as_str().unwrap());
        let expected_valid = case["expected_signature_valid"].as_bool().unwrap();
        assert_eq!(
            signature_valid(token, &key),
            expected_valid,
            "{id}: signature"
        );

        // The decoded parts are the JSON the manifest prints.
        let mut parts = token.split('.');
        for expected in [&case["header_json"], &case["payload_json"]] {
            let decoded = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
            assert_eq!(
                std::str::from_utf8(&decoded).unwrap(),
                expected.as_str().unwrap(),
                "{id}"
            );
            // Every example is already in canonical form (RFC 8225 §9).
            let value: Value = serde_json::from_slice(&decoded).unwrap();
            assert_eq!(
                json::canonical(&value).as_bytes(),
                &decoded[..],
                "{id}: canonical"
            );
        }

        let parsed = SignedPassport::parse(token);
        match case["expected_verdict"].as_str().unwrap() {
            "valid" => {
                let passport = parsed.unwrap_or_else(|e| panic!("{id}: {e}"));
                assert!(key.verify(passport.signing_input.as_bytes(), &passport.signature));
                passport.passport.check_shaken().unwrap();
                assert_eq!(passport.token(), token, "{id}: prints back unchanged");
            }
            "signature-invalid" => {
                // Parses or not, it must not verify.
                if let Ok(passport) = parsed {
                    assert!(!key.verify(passport.signing_input.as_bytes(), &passport.signature));
                }
            }
            "signature-valid-but-claims-invalid" => match parsed {
                Err(error) => assert_eq!(error.name(), "invalid_claims", "{id}: {error}"),
                // "Alice"/"Bob" are strings where numbers belong: the verifier's number
                // checks refuse them (identity_verify.rs), the token itself parses.
                Ok(passport) => assert_eq!(
                    passport.passport.claims.orig,
                    Party::Tn("Bob".into()),
                    "{id}"
                ),
            },
            verdict if verdict.starts_with("valid-jwt") => {
                assert!(
                    matches!(parsed, Err(TokenError::InvalidClaims(_))),
                    "{id}: not a PASSporT"
                );
            }
            other => panic!("{id}: unknown verdict {other}"),
        }

        if let Some(header) = case["identity_header"].as_str() {
            let parsed = IdentityHeader::parse(header).unwrap();
            assert_eq!(parsed.token, token, "{id}");
            assert!(parsed.info.is_some(), "{id}: info");
        }
        if let Some(compact) = case["compact_form"].as_str() {
            let full = SignedPassport::parse(token);
            // §7.1's iat is a string, so the claims cannot be rebuilt; the compact form
            // still carries the same signature.
            assert!(full.is_err());
            assert!(
                token.ends_with(compact.trim_start_matches('.')),
                "{id}: compact form"
            );
        }
    }
}

#[test]
fn the_shaken_example_claims() {
    let case = cases()
        .into_iter()
        .find(|case| case["id"] == "libstirshaken-readme-identity-header")
        .unwrap();
    let header = IdentityHeader::parse(case["identity_header"].as_str().unwrap()).unwrap();
    assert_eq!(
        header.info.as_deref(),
        Some("https://shaken.signalwire.cloud/sp.pem")
    );
    assert_eq!(header.alg.as_deref(), Some("ES256"));
    assert_eq!(header.ppt.as_deref(), Some("shaken"));
    let passport = SignedPassport::parse(&header.token).unwrap().passport;
    assert_eq!(passport.claims.attest, Some(Attestation::B));
    assert_eq!(passport.claims.orig, Party::Tn("01256500600".into()));
    assert_eq!(passport.claims.dest.tn, vec!["01256700800".to_owned()]);
    assert_eq!(passport.claims.iat, 1_616_442_523);
    assert_eq!(
        passport.header.x5u,
        "https://shaken.signalwire.cloud/sp.pem"
    );
}

#[test]
fn rfc8224_identity_header_example_has_only_info() {
    let text = String::from_utf8(read("rfc8224/identity-header-example.txt")).unwrap();
    let header = IdentityHeader::parse(text.trim().trim_start_matches("Identity:").trim()).unwrap();
    assert_eq!(
        header.info.as_deref(),
        Some("https://biloxi.example.org/biloxi.cert")
    );
    assert_eq!((header.alg, header.ppt), (None, None));
    let key = key("rfc8225/appendix-a2-public-key.pem");
    assert!(signature_valid(&header.token, &key));
}

#[test]
fn rfc8588_example_claims_print_canonically() {
    let example: Value = serde_json::from_slice(&read("rfc8588/section6_example.json")).unwrap();
    let corrected = &example["erratum_6656_corrected"];
    let passport = Passport {
        header: PassportHeader::shaken("https://cert.example.org/passport.cer"),
        claims: Claims {
            orig: Party::Tn("12155550121".into()),
            dest: Destinations::tn("12155550131"),
            iat: 1_443_208_345,
            attest: Some(Attestation::A),
            origid: Some("123e4567-e89b-12d3-a456-426655440000".into()),
            div: None,
        },
    };
    let input = passport.signing_input();
    let (header, claims) = input.split_once('.').unwrap();
    let decode = |part: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    assert_eq!(
        decode(header),
        corrected["canonical_header_json"].as_str().unwrap()
    );
    assert_eq!(
        decode(claims),
        corrected["canonical_payload_json"].as_str().unwrap()
    );
    // As printed in the RFC the payload is not JSON (missing commas): refused.
    let published = example["section_6_as_published"]["payload_text"]
        .as_str()
        .unwrap();
    let token = format!("{header}.{}.AA", URL_SAFE_NO_PAD.encode(published));
    assert_eq!(
        SignedPassport::parse(&token).unwrap_err().name(),
        "malformed_token"
    );
}

#[test]
fn libstirshaken_certificates_chain_as_stated() {
    let anchors = TrustAnchors::from_pem(&read("libstirshaken/ca/ca.pem")).unwrap();
    // sp.pem chains to the CA, but its TNAuthList holds an IA5String URL instead of a
    // TNAuthorizationList (not ATIS-1000080 compliant): the chain is refused for that.
    let sp = CertChain::parse(&read("libstirshaken/sp/sp.pem"));
    assert!(matches!(sp, Err(CertError::TnAuthList(_))), "{sp:?}");
    // The same signatures, checked with openssl directly, do chain.
    let sp_cert = openssl::x509::X509::from_pem(&read("libstirshaken/sp/sp.pem")).unwrap();
    let ca_cert = openssl::x509::X509::from_pem(&read("libstirshaken/ca/ca.pem")).unwrap();
    assert!(sp_cert.verify(&ca_cert.public_key().unwrap()).unwrap());
    // wrongsp.pem is issued by an absent "Wrong CA".
    let wrong = openssl::x509::X509::from_pem(&read("libstirshaken/sp/wrongsp.pem")).unwrap();
    assert!(
        !wrong
            .verify(&ca_cert.public_key().unwrap())
            .unwrap_or(false)
    );
    // pa.pem is self-signed: trusted directly, it validates.
    let pa_pem = read("libstirshaken/pa/pa.pem");
    let pa = TrustAnchors::from_pem(&pa_pem).unwrap();
    if let Ok(chain) = CertChain::parse(&pa_pem) {
        assert!(pa.validate(&chain).is_ok());
        assert!(
            anchors.validate(&chain).is_err(),
            "pa.pem is not issued by the CA"
        );
    }
}
