//! The verification service against a test STIR PKI (an STI-CA root, an intermediate,
//! SP certificates with TNAuthList), with tokens minted by the test's own code: a
//! correctly signed call passes, and each fault fails with its own reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "identity_support/pki.rs"]
mod pki;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pki::{Issued, Pki, Shaken, SpSpec, mint, now_unix};
use sbc_core::identity::certs::{CertChain, TrustAnchors};
use sbc_core::identity::es256::SigningKey;
use sbc_core::identity::passport::{Attestation, Party};
use sbc_core::identity::sign::Signer;
use sbc_core::identity::verdict::{Failure, Verdict};
use sbc_core::identity::verify::{RequestIdentity, Step, Verifier, VerifyPolicy};
use sbc_core::sip::{Message, Request, parse_message};

const X5U: &str = "https://certs.example.net/sp.pem";
const CALLER: &str = "12155551212";
const CALLEE: &str = "12155550100";

struct World {
    pki: Pki,
    sp: Issued,
    chain: Arc<CertChain>,
    verifier: Verifier,
}

fn world() -> World {
    let pki = Pki::new("Test");
    let sp = pki.sp(&SpSpec::numbers("12155551200", 100));
    let chain = Arc::new(CertChain::parse(&pki.chain_pem(&sp)).unwrap());
    let anchors = TrustAnchors::from_pem(&pki.root.pem()).unwrap();
    let verifier = Verifier::new(VerifyPolicy::default(), anchors);
    World {
        pki,
        sp,
        chain,
        verifier,
    }
}

fn invite(identities: &[String], from: &str, extra: &str) -> Request {
    let mut text = format!(
        "INVITE sip:+{CALLEE}@sbc.example.net SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
         From: <sip:{from}@example.com>;tag=1\r\n\
         To: <sip:+{CALLEE}@example.net>\r\n\
         Call-ID: 1@192.0.2.1\r\nCSeq: 1 INVITE\r\n{extra}"
    );
    for identity in identities {
        text.push_str(&format!("Identity: {identity}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match parse_message(Bytes::from(text)).unwrap() {
        Message::Request(request) => request,
        Message::Response(_) => unreachable!(),
    }
}

fn shaken(iat: i64) -> Shaken<'static> {
    Shaken {
        x5u: X5U,
        orig: CALLER,
        dest: CALLEE,
        iat,
        attest: "A",
    }
}

impl World {
    /// Verifies `request`, answering a fetch of `X5U` with `fetched`.
    fn verify_with(
        &mut self,
        request: &Request,
        fetched: Result<Arc<CertChain>, Failure>,
    ) -> Verdict {
        let now = SystemTime::now();
        let identity = RequestIdentity::of(request);
        match self.verifier.start(&identity, now, &|_| None) {
            Step::Done(verdict) => verdict,
            Step::Fetch(pending) => {
                assert_eq!(pending.url().url, X5U);
                match self.verifier.resume(pending, fetched, now, &|_| None) {
                    Step::Done(verdict) => verdict,
                    Step::Fetch(_) => panic!("a second fetch for one PASSporT"),
                }
            }
        }
    }

    fn verify(&mut self, request: &Request) -> Verdict {
        let chain = Arc::clone(&self.chain);
        self.verify_with(request, Ok(chain))
    }

    fn identity(&self, passport: &Shaken<'_>) -> String {
        passport.identity(&self.sp.key)
    }
}

fn failed(verdict: Verdict) -> &'static str {
    verdict.failure().map_or("not failed", Failure::name)
}

#[test]
fn a_correctly_signed_call_passes() {
    let mut world = world();
    let identity = world.identity(&shaken(now_unix()));
    let verdict = world.verify(&invite(&[identity], &format!("+{CALLER}"), ""));
    assert_eq!(
        verdict,
        Verdict::Passed {
            attestation: Some(Attestation::A),
            orig: Party::Tn(CALLER.into()),
            origid: Some("123e4567-e89b-42d3-a456-426614174000".into()),
        }
    );
    // P-Asserted-Identity is the caller when present (From may be anonymous).
    let identity = world.identity(&shaken(now_unix()));
    let pai = "P-Asserted-Identity: <tel:+1-215-555-1212>\r\n";
    let verdict = world.verify(&invite(&[identity], "anonymous", pai));
    assert_eq!(verdict.name(), "passed");
}

#[test]
fn the_chain_is_remembered_and_a_held_certificate_needs_no_fetch() {
    let mut world = world();
    let identity = world.identity(&shaken(now_unix()));
    let request = RequestIdentity::of(&invite(&[identity], CALLER, ""));
    let chain = Arc::clone(&world.chain);
    let held = move |url: &str| (url == X5U).then(|| Arc::clone(&chain));
    for _ in 0..3 {
        match world.verifier.start(&request, SystemTime::now(), &held) {
            Step::Done(verdict) => assert_eq!(verdict.name(), "passed"),
            Step::Fetch(_) => panic!("the certificate was at hand"),
        }
    }
}

#[test]
fn each_fault_fails_with_its_reason() {
    let mut world = world();
    let now = now_unix();
    let from = format!("+{CALLER}");

    // Signed by a key that is not the certificate's.
    let other = pki::p256();
    let bad = shaken(now).identity(&other);
    assert_eq!(
        failed(world.verify(&invite(&[bad], &from, ""))),
        "bad_signature"
    );

    // Expired, and not yet valid, SP certificates.
    for (spec, reason) in [
        (
            SpSpec {
                not_before: -10 * 86_400,
                not_after: -86_400,
                ..SpSpec::numbers("12155551200", 100)
            },
            "certificate_expired",
        ),
        (
            SpSpec {
                not_before: 86_400,
                not_after: 10 * 86_400,
                ..SpSpec::numbers("12155551200", 100)
            },
            "certificate_not_yet_valid",
        ),
    ] {
        let sp = world.pki.sp(&spec);
        let chain = Arc::new(CertChain::parse(&world.pki.chain_pem(&sp)).unwrap());
        let identity = shaken(now).identity(&sp.key);
        assert_eq!(
            failed(world.verify_with(&invite(&[identity], &from, ""), Ok(chain))),
            reason
        );
    }

    // A chain to another root.
    let stranger = Pki::new("Stranger");
    let sp = stranger.sp(&SpSpec::numbers("12155551200", 100));
    let chain = Arc::new(CertChain::parse(&stranger.chain_pem(&sp)).unwrap());
    let identity = shaken(now).identity(&sp.key);
    assert_eq!(
        failed(world.verify_with(&invite(&[identity], &from, ""), Ok(chain))),
        "unknown_root"
    );

    // A certificate for other numbers; one with only an SPC covers any.
    let sp = world.pki.sp(&SpSpec::numbers("13125550000", 10));
    let chain = Arc::new(CertChain::parse(&world.pki.chain_pem(&sp)).unwrap());
    let identity = shaken(now).identity(&sp.key);
    assert_eq!(
        failed(world.verify_with(&invite(&[identity], &from, ""), Ok(chain))),
        "tn_not_covered"
    );
    let spc = SpSpec {
        numbers: Vec::new(),
        spc: Some("1234".into()),
        ..SpSpec::numbers("", 0)
    };
    let sp = world.pki.sp(&spc);
    let chain = Arc::new(CertChain::parse(&world.pki.chain_pem(&sp)).unwrap());
    let identity = shaken(now).identity(&sp.key);
    assert_eq!(
        world
            .verify_with(&invite(&[identity], &from, ""), Ok(chain))
            .name(),
        "passed"
    );

    // Stale iat, either way, and a stale Date header.
    for iat in [now - 120, now + 120] {
        let identity = world.identity(&shaken(iat));
        assert_eq!(
            failed(world.verify(&invite(&[identity], &from, ""))),
            "stale_iat"
        );
    }
    let identity = world.identity(&shaken(now));
    let date = "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n";
    assert_eq!(
        failed(world.verify(&invite(&[identity], &from, date))),
        "stale_date"
    );

    // orig is not the caller; dest is not the callee.
    let identity = world.identity(&shaken(now));
    assert_eq!(
        failed(world.verify(&invite(&[identity], "+12155559999", ""))),
        "orig_mismatch"
    );
    let identity = world.identity(&Shaken {
        dest: "12155559999",
        ..shaken(now)
    });
    assert_eq!(
        failed(world.verify(&invite(&[identity], &from, ""))),
        "dest_mismatch"
    );

    // x5u over plain http; with userinfo; on a port not allowed. Nothing is fetched.
    for (x5u, reason) in [
        ("http://certs.example.net/sp.pem", "x5u_not_https"),
        ("https://u@certs.example.net/sp.pem", "x5u_forbidden_url"),
        ("https://certs.example.net:22/sp.pem", "x5u_forbidden_url"),
    ] {
        let identity = world.identity(&Shaken { x5u, ..shaken(now) });
        assert_eq!(
            failed(world.verify(&invite(&[identity], &from, ""))),
            reason
        );
    }

    // The fetch failed.
    for failure in [Failure::X5uUnreachable, Failure::X5uTooLarge] {
        let identity = world.identity(&shaken(now));
        let verdict = world.verify_with(&invite(&[identity], &from, ""), Err(failure));
        assert_eq!(verdict, Verdict::Failed(failure));
    }

    // Malformed tokens and headers.
    let header = shaken(now).header_json();
    let garbage = [
        format!("not-a-token;info=<{X5U}>"),
        format!(
            "{}.{}.AA;info=<{X5U}>",
            pki::b64url(header.as_bytes()),
            pki::b64url(b"not json")
        ),
        format!("a.b.c.d;info=<{X5U}>"),
    ];
    for identity in garbage {
        assert_eq!(
            failed(world.verify(&invite(&[identity], &from, ""))),
            "malformed_token"
        );
    }
    let good = world.identity(&shaken(now));
    let (token, _) = good.split_once(';').unwrap();
    assert_eq!(
        failed(world.verify(&invite(&[token.to_owned()], &from, ""))),
        "missing_info"
    );
    let other_info = format!("{token};info=<https://elsewhere.example.net/sp.pem>");
    assert_eq!(
        failed(world.verify(&invite(&[other_info], &from, ""))),
        "info_x5u_mismatch"
    );
    let wrong_alg = format!("{token};info=<{X5U}>;alg=RS256");
    assert_eq!(
        failed(world.verify(&invite(&[wrong_alg], &from, ""))),
        "unsupported_alg"
    );
    let wrong_ppt = format!("{token};info=<{X5U}>;ppt=div");
    assert_eq!(
        failed(world.verify(&invite(&[wrong_ppt], &from, ""))),
        "unsupported_ppt"
    );
    let attest_w = Shaken {
        attest: "W",
        ..shaken(now)
    };
    assert_eq!(
        failed(world.verify(&invite(&[world.identity(&attest_w)], &from, ""))),
        "invalid_claims"
    );
    let typ = mint(
        &format!(r#"{{"alg":"ES256","ppt":"shaken","typ":"poussport","x5u":"{X5U}"}}"#),
        &shaken(now).claims_json(),
        &world.sp.key,
    );
    let typ = format!("{typ};info=<{X5U}>");
    assert_eq!(
        failed(world.verify(&invite(&[typ], &from, ""))),
        "unsupported_typ"
    );
    assert_eq!(
        failed(world.verify(&invite(&["a b".into()], &from, ""))),
        "malformed_identity_header"
    );

    // No Identity at all.
    assert_eq!(world.verify(&invite(&[], &from, "")), Verdict::Absent);
}

#[test]
fn tokens_the_sbc_signs_verify_and_compact_and_div_forms_too() {
    let mut world = world();
    let signer = Signer::new(SigningKey::from_pem(&world.sp.key_pem()).unwrap(), X5U).unwrap();
    let now = SystemTime::now();
    let identity = signer
        .sign(
            Party::Tn(CALLER.into()),
            &Party::Tn(CALLEE.into()),
            Attestation::B,
            "00000000-0000-4000-8000-000000000000".into(),
            now,
        )
        .unwrap();
    let verdict = world.verify(&invite(&[identity.to_string()], CALLER, ""));
    assert!(matches!(
        verdict,
        Verdict::Passed {
            attestation: Some(Attestation::B),
            ..
        }
    ));

    // The compact form of a base PASSporT, rebuilt from Date, From, To and info.
    let date = httpdate::fmt_http_date(now);
    let iat = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims =
        format!(r#"{{"dest":{{"tn":["{CALLEE}"]}},"iat":{iat},"orig":{{"tn":"{CALLER}"}}}}"#);
    let header = format!(r#"{{"alg":"ES256","typ":"passport","x5u":"{X5U}"}}"#);
    let full = mint(&header, &claims, &world.sp.key);
    let signature = full.rsplit_once('.').unwrap().1;
    let compact = format!("..{signature};info=<{X5U}>;alg=ES256");
    let verdict = world.verify(&invite(&[compact], CALLER, &format!("Date: {date}\r\n")));
    assert_eq!(verdict.name(), "passed");

    // A diverted call: the SHAKEN PASSporT to the first destination, and a div one from
    // the diverting provider to where the call goes now.
    let first_dest = "12155550999";
    let shaken_identity = world.identity(&Shaken {
        dest: first_dest,
        ..shaken(iat as i64)
    });
    let div_claims = format!(
        r#"{{"dest":{{"tn":["{CALLEE}"]}},"div":{{"tn":"{first_dest}"}},"iat":{iat},"orig":{{"tn":"{CALLER}"}}}}"#
    );
    let div_header = format!(r#"{{"alg":"ES256","ppt":"div","typ":"passport","x5u":"{X5U}"}}"#);
    let div_identity = format!(
        "{};info=<{X5U}>;ppt=div",
        mint(&div_header, &div_claims, &world.sp.key)
    );
    let request = RequestIdentity::of(&invite(&[shaken_identity, div_identity], CALLER, ""));
    let chain = Arc::clone(&world.chain);
    let held = move |_: &str| Some(Arc::clone(&chain));
    match world.verifier.start(&request, now, &held) {
        Step::Done(verdict) => {
            assert!(
                matches!(
                    verdict,
                    Verdict::Passed {
                        attestation: Some(Attestation::A),
                        ..
                    }
                ),
                "{verdict:?}"
            );
        }
        Step::Fetch(_) => panic!("held"),
    }
}
