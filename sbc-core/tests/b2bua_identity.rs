//! Caller identity in the B2BUA on a virtual clock: a verified trunk's INVITE waits for
//! its certificate (bounded), the verdict reaches the callee as verstat, an enforcing
//! trunk's bad calls get the RFC 8224 status with `Reason: STIR`, a CANCEL ends a
//! waiting call, and calls to signing trunks carry a PASSporT this SBC signed, with the
//! attestation their origin earns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod b2bua_support;
#[path = "identity_support/pki.rs"]
mod pki;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use b2bua_support::*;
use pki::{Issued, Pki, Shaken, SpSpec, now_unix};
use sbc_core::identity::IdentityHeader;
use sbc_core::identity::certs::{CertChain, TrustAnchors};
use sbc_core::identity::es256::SigningKey;
use sbc_core::identity::passport::{Attestation, SignedPassport};
use sbc_core::identity::service::{
    IdentityConfig, IdentityService, IncomingIdentity, TrunkIdentity, VerifyMode,
};
use sbc_core::identity::sign::Signer;
use sbc_core::identity::verdict::Failure;
use sbc_core::identity::verify::{RequestIdentity, Step, Verifier, VerifyPolicy};
use sbc_core::sip::{HeaderName, Message, Request};

const X5U: &str = "https://certs.example.net/sp.pem";
const OUR_X5U: &str = "https://sbc.example.net/sbc.pem";
const NUMBER: &str = "12155551212";
const CALLED: &str = "15551234567";

struct Pkis {
    pki: Pki,
    sp: Issued,
    chain: Arc<CertChain>,
    ours: Issued,
}

fn pkis() -> Pkis {
    let pki = Pki::new("B2BUA");
    let sp = pki.sp(&SpSpec::numbers("12155551200", 100));
    let chain = Arc::new(CertChain::parse(&pki.chain_pem(&sp)).unwrap());
    let ours = pki.sp(&SpSpec {
        spc: Some("SBC1".into()),
        numbers: Vec::new(),
        ..SpSpec::numbers("", 0)
    });
    Pkis {
        pki,
        sp,
        chain,
        ours,
    }
}

fn service(pkis: &Pkis, source: TrunkIdentity, carrier: TrunkIdentity) -> IdentityService {
    let anchors = TrustAnchors::from_pem(&pkis.pki.root.pem()).unwrap();
    let signer = Signer::new(SigningKey::from_pem(&pkis.ours.key_pem()).unwrap(), OUR_X5U).unwrap();
    let mut trunks = HashMap::new();
    trunks.insert("peer".to_owned(), source);
    trunks.insert("carrier".to_owned(), carrier);
    IdentityService::new(
        IdentityConfig {
            verification: Some((VerifyPolicy::default(), anchors)),
            signer: Some(signer),
            trunks,
            max_wait: Duration::from_secs(2),
            max_waiting: 16,
        },
        SystemTime::now,
    )
}

fn harness(service: IdentityService) -> Harness {
    let defaults = Options::default();
    Harness::with(Options {
        source_trunk: Some("peer".into()),
        identity: Some(service),
        config: sbc_core::b2bua::B2buaConfig {
            call_records: 16,
            ..defaults.config.clone()
        },
        ..defaults
    })
}

fn verifying(mode: VerifyMode) -> TrunkIdentity {
    TrunkIdentity {
        verify: mode,
        ..TrunkIdentity::default()
    }
}

fn trusted_carrier() -> TrunkIdentity {
    TrunkIdentity {
        verstat: true,
        trusted: true,
        ..TrunkIdentity::default()
    }
}

/// An INVITE from `+NUMBER` carrying `identity` lines.
fn invite(call_id: &str, identity: &[String], extra: &str) -> Message {
    let mut caller = Caller::invite_with(call_id, Some(&caller_sdp()), extra);
    caller.invite.headers.set(
        HeaderName::From,
        format!("<sip:+{NUMBER}@caller.example.com;verstat=TN-Validation-Passed>;tag=a-{call_id}"),
    );
    for line in identity {
        caller
            .invite
            .headers
            .push(HeaderName::Identity, line.clone());
    }
    caller.message()
}

fn good_identity(pkis: &Pkis) -> String {
    Shaken {
        x5u: X5U,
        orig: NUMBER,
        dest: CALLED,
        iat: now_unix(),
        attest: "A",
    }
    .identity(&pkis.sp.key)
}

fn from_of(request: &Request) -> String {
    String::from_utf8_lossy(request.headers.get(&HeaderName::From).unwrap()).into_owned()
}

#[test]
fn a_verified_call_waits_for_its_certificate_then_carries_verstat() {
    let pkis = pkis();
    let mut h = harness(service(
        &pkis,
        verifying(VerifyMode::Mark),
        trusted_carrier(),
    ));
    h.receive_message(caller(), &invite("v1", &[good_identity(&pkis)], ""));
    h.nothing_to(CALLEE);
    assert_eq!(h.endpoint.poll_certificate_fetch().as_deref(), Some(X5U));
    assert_eq!(h.endpoint.poll_certificate_fetch(), None, "asked once");
    // A second call for the same certificate waits without a second fetch.
    h.receive_message(caller(), &invite("v2", &[good_identity(&pkis)], ""));
    assert_eq!(h.endpoint.poll_certificate_fetch(), None);

    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    let first = h.request_to(CALLEE, "INVITE");
    let second = h.request_to(CALLEE, "INVITE");
    for request in [&first, &second] {
        assert!(
            from_of(request).contains(";verstat=TN-Validation-Passed"),
            "{}",
            from_of(request)
        );
        // The carrier is not signed for: the caller's PASSporT is passed on as it came.
        assert_eq!(request.headers.get_all(&HeaderName::Identity).count(), 1);
    }
    // The next call finds the certificate at hand and goes on at once.
    h.receive_message(caller(), &invite("v3", &[good_identity(&pkis)], ""));
    h.request_to(CALLEE, "INVITE");
    let stats = h.endpoint.b2bua().unwrap().stats().identity.clone();
    assert_eq!(stats.verdicts.get("passed"), Some(&3));
    assert_eq!(stats.fetches, 1);
}

#[test]
fn a_failed_call_goes_on_marked_or_is_rejected_with_reason_stir() {
    let pkis = pkis();
    let forged = Shaken {
        x5u: X5U,
        orig: NUMBER,
        dest: CALLED,
        iat: now_unix(),
        attest: "A",
    }
    .identity(&pki::p256());

    let mut h = harness(service(
        &pkis,
        verifying(VerifyMode::Mark),
        trusted_carrier(),
    ));
    h.receive_message(caller(), &invite("m1", std::slice::from_ref(&forged), ""));
    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    let request = h.request_to(CALLEE, "INVITE");
    assert!(from_of(&request).contains(";verstat=TN-Validation-Failed"));
    // RFC 9410: the caller's answer says why, though the call goes on.
    let bob = Ua::callee(&request, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&request, 180, None));
    let ringing = h.response_to(CALLER, 180);
    assert_eq!(
        ringing.headers.get(&HeaderName::Reason).unwrap().as_ref(),
        b"STIR;cause=438;text=\"bad_signature\""
    );

    let mut h = harness(service(
        &pkis,
        verifying(VerifyMode::Enforce),
        trusted_carrier(),
    ));
    h.receive_message(caller(), &invite("e1", &[forged], ""));
    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    let response = h.response_to(CALLER, 438);
    assert_eq!(response.reason.as_ref(), b"Invalid Identity Header");
    assert_eq!(
        response.headers.get(&HeaderName::Reason).unwrap().as_ref(),
        b"STIR;cause=438;text=\"bad_signature\""
    );
    h.nothing_to(CALLEE);
    // Without any Identity, an enforcing trunk that requires one answers 428 at once.
    let mut h = harness(service(
        &pkis,
        TrunkIdentity {
            require: true,
            ..verifying(VerifyMode::Enforce)
        },
        trusted_carrier(),
    ));
    h.receive_message(caller(), &invite("e2", &[], ""));
    h.response_to(CALLER, 428);
}

#[test]
fn the_wait_for_a_certificate_is_bounded() {
    let pkis = pkis();
    let mut h = harness(service(
        &pkis,
        verifying(VerifyMode::Enforce),
        trusted_carrier(),
    ));
    h.receive_message(caller(), &invite("t1", &[good_identity(&pkis)], ""));
    h.advance(Duration::from_millis(1_900));
    h.nothing_to(CALLEE);
    h.advance(Duration::from_millis(200));
    let response = h.response_to(CALLER, 436);
    assert!(
        String::from_utf8_lossy(response.headers.get(&HeaderName::Reason).unwrap())
            .contains("x5u_unreachable")
    );
    // A late answer finds nobody waiting; the next call asks again.
    h.certificate(X5U, Err(Failure::X5uUnreachable));
    h.receive_message(caller(), &invite("t2", &[good_identity(&pkis)], ""));
    assert_eq!(h.endpoint.poll_certificate_fetch().as_deref(), Some(X5U));
}

#[test]
fn a_cancel_ends_a_waiting_call() {
    let pkis = pkis();
    let mut h = harness(service(
        &pkis,
        verifying(VerifyMode::Mark),
        trusted_carrier(),
    ));
    let message = invite("c1", &[good_identity(&pkis)], "");
    h.receive_message(caller(), &message);
    let Message::Request(invite) = message else {
        unreachable!()
    };
    let caller_ua = Caller { invite, ua: None };
    h.receive_message(caller(), &caller_ua.cancel());
    h.response_to(CALLER, 200);
    h.response_to(CALLER, 487);
    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    h.nothing_to(CALLEE);
    assert_eq!(h.endpoint.b2bua().unwrap().calls_waiting_for_identity(), 0);
}

/// Verifies the PASSporT this SBC put on `request` and returns its attestation.
fn our_attestation(pkis: &Pkis, request: &Request) -> Attestation {
    let ours = request
        .headers
        .get_all(&HeaderName::Identity)
        .map(|value| IdentityHeader::parse(std::str::from_utf8(value).unwrap()).unwrap())
        .find(|header| header.info.as_deref() == Some(OUR_X5U))
        .expect("a PASSporT of ours");
    let passport = SignedPassport::parse(&ours.token).unwrap();
    let key = pkis.ours.cert.public_key().unwrap().ec_key().unwrap();
    let sig = &passport.signature;
    let signature = openssl::ecdsa::EcdsaSig::from_private_components(
        openssl::bn::BigNum::from_slice(&sig[..32]).unwrap(),
        openssl::bn::BigNum::from_slice(&sig[32..]).unwrap(),
    )
    .unwrap();
    let digest = openssl::sha::sha256(passport.signing_input.as_bytes());
    assert!(
        signature.verify(&digest, &key).unwrap(),
        "our signature verifies"
    );
    // And our own verifier accepts it, against our certificate.
    let anchors = TrustAnchors::from_pem(&pkis.pki.root.pem()).unwrap();
    let mut verifier = Verifier::new(VerifyPolicy::default(), anchors);
    let chain = Arc::new(CertChain::parse(&pkis.pki.chain_pem(&pkis.ours)).unwrap());
    let mut incoming = RequestIdentity::of(request);
    incoming
        .identities
        .retain(|h| h.as_ref().is_ok_and(|h| h.info.as_deref() == Some(OUR_X5U)));
    let held = move |_: &str| Some(Arc::clone(&chain));
    match verifier.start(&incoming, SystemTime::now(), &held) {
        Step::Done(verdict) => assert_eq!(verdict.name(), "passed", "{verdict:?}"),
        Step::Fetch(_) => panic!("held"),
    }
    passport.passport.claims.attest.unwrap()
}

#[test]
fn calls_to_signing_trunks_are_signed_with_the_attestation_they_earn() {
    let pkis = pkis();
    let signing = TrunkIdentity {
        sign: true,
        ..trusted_carrier()
    };
    // An unknown origin: gateway attestation.
    let mut h = harness(service(&pkis, TrunkIdentity::default(), signing.clone()));
    h.receive_message(caller(), &invite("s1", &[], ""));
    let request = h.request_to(CALLEE, "INVITE");
    assert_eq!(our_attestation(&pkis, &request), Attestation::C);
    // The forged verstat of an untrusted caller does not pass.
    assert!(
        !from_of(&request).contains("verstat"),
        "{}",
        from_of(&request)
    );

    // A customer trunk: B.
    let customer = TrunkIdentity {
        customer: true,
        ..TrunkIdentity::default()
    };
    let mut h = harness(service(&pkis, customer, signing.clone()));
    h.receive_message(caller(), &invite("s2", &[], ""));
    assert_eq!(
        our_attestation(&pkis, &h.request_to(CALLEE, "INVITE")),
        Attestation::B
    );
}

#[test]
fn a_verified_call_crossing_trust_domains_is_re_signed() {
    let pkis = pkis();
    let signing = TrunkIdentity {
        sign: true,
        domain: Some("core".into()),
        ..trusted_carrier()
    };
    let peer = |trust_attestation| TrunkIdentity {
        trust_attestation,
        domain: Some("partner".into()),
        ..verifying(VerifyMode::Mark)
    };
    // The partner's attestation is trusted: kept; its PASSporT is replaced.
    let mut h = harness(service(&pkis, peer(true), signing.clone()));
    h.receive_message(caller(), &invite("r1", &[good_identity(&pkis)], ""));
    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    let request = h.request_to(CALLEE, "INVITE");
    assert_eq!(our_attestation(&pkis, &request), Attestation::A);
    assert_eq!(
        request.headers.get_all(&HeaderName::Identity).count(),
        1,
        "theirs removed"
    );
    assert!(from_of(&request).contains("verstat=TN-Validation-Passed"));

    // Not trusted: downgraded to gateway; theirs kept on request.
    let keep = TrunkIdentity {
        incoming_identity: IncomingIdentity::Keep,
        ..signing.clone()
    };
    let mut h = harness(service(&pkis, peer(false), keep));
    h.receive_message(caller(), &invite("r2", &[good_identity(&pkis)], ""));
    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    let request = h.request_to(CALLEE, "INVITE");
    assert_eq!(our_attestation(&pkis, &request), Attestation::C);
    assert_eq!(
        request.headers.get_all(&HeaderName::Identity).count(),
        2,
        "theirs kept"
    );

    // Within one trust domain a verified call keeps its PASSporT and is not re-signed.
    let same = TrunkIdentity {
        domain: Some("partner".into()),
        ..signing
    };
    let mut h = harness(service(&pkis, peer(true), same));
    h.receive_message(caller(), &invite("r3", &[good_identity(&pkis)], ""));
    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    let request = h.request_to(CALLEE, "INVITE");
    let identities: Vec<_> = request.headers.get_all(&HeaderName::Identity).collect();
    assert_eq!(identities.len(), 1);
    assert!(!String::from_utf8_lossy(identities[0]).contains(OUR_X5U));
}

#[test]
fn trunk_policies_can_be_replaced_at_run_time() {
    let pkis = pkis();
    let mut h = harness(service(&pkis, TrunkIdentity::default(), trusted_carrier()));
    h.receive_message(caller(), &invite("p1", &[good_identity(&pkis)], ""));
    let request = h.request_to(CALLEE, "INVITE");
    assert!(!from_of(&request).contains("verstat"), "not verified yet");

    let mut trunks = HashMap::new();
    trunks.insert("peer".to_owned(), verifying(VerifyMode::Enforce));
    trunks.insert("carrier".to_owned(), trusted_carrier());
    h.endpoint.handle_identity_policy(trunks);
    h.receive_message(caller(), &invite("p2", &[good_identity(&pkis)], ""));
    assert_eq!(h.endpoint.poll_certificate_fetch().as_deref(), Some(X5U));
    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    let request = h.request_to(CALLEE, "INVITE");
    assert!(from_of(&request).contains("verstat=TN-Validation-Passed"));
}

#[test]
fn the_verdict_is_in_the_call_record() {
    use sbc_core::b2bua::summary::IdentityVerdict;
    let pkis = pkis();
    let forged = Shaken {
        x5u: X5U,
        orig: NUMBER,
        dest: CALLED,
        iat: now_unix(),
        attest: "A",
    }
    .identity(&pki::p256());
    // Rejected under enforce: a refusal record marked failed.
    let mut h = harness(service(
        &pkis,
        verifying(VerifyMode::Enforce),
        trusted_carrier(),
    ));
    h.receive_message(caller(), &invite("rec1", std::slice::from_ref(&forged), ""));
    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    h.response_to(CALLER, 438);
    let record = h
        .endpoint
        .poll_call_record()
        .expect("a record of the refusal");
    assert_eq!(record.status, 438);
    assert_eq!(record.end_reason, "identity");
    assert_eq!(
        record.security.identity,
        IdentityVerdict::TnValidationFailed
    );

    // A verified call that is cancelled: its record says passed.
    let mut h = harness(service(
        &pkis,
        verifying(VerifyMode::Mark),
        trusted_carrier(),
    ));
    let message = invite("rec2", &[good_identity(&pkis)], "");
    h.receive_message(caller(), &message);
    h.certificate(X5U, Ok(Arc::clone(&pkis.chain)));
    let request = h.request_to(CALLEE, "INVITE");
    let bob = Ua::callee(&request, callee(), "bob");
    h.receive_message(callee(), &bob.respond(&request, 486, None));
    h.response_to(CALLER, 486);
    let record = h.endpoint.poll_call_record().expect("a record of the call");
    assert_eq!(
        record.security.identity,
        IdentityVerdict::TnValidationPassed
    );
}
