//! The ingress boundary (`policy::boundary`) and the digest authenticator behind it, on a
//! virtual clock: each verdict (admit by origin, challenge by cause, reject by reason),
//! identity binding, RFC 3325 identity headers, `sips:` and TLS requirements, overload,
//! and requests on a registered flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use policy_support::{Answer, addr, challenge_for, invite, param, register, request};
use sbc_core::auth::{Algorithm, Authenticator, CredentialTable, DigestConfig};
use sbc_core::net::Protocol;
use sbc_core::policy::{
    Arrival, Boundary, BoundaryConfig, Origin, PolicyEvent, TrunkDirectory, TrunkPolicy, Verdict,
};
use sbc_core::registrar::{Registrar, RegistrarConfig, SharedRegistrar};
use sbc_core::sip::{HeaderName, Request};
use sbc_core::transaction::Peer;

const REALM: &str = "sbc.test";
const KEY: [u8; 32] = [42; 32];
const PHONE: &str = "192.0.2.10:5060";
const TRUSTED_TRUNK: &str = "198.51.100.1:5060";
const UNTRUSTED_TRUNK: &str = "198.51.100.2:5060";
const TLS_TRUNK: &str = "198.51.100.3:5061";
const MTLS_TRUNK: &str = "198.51.100.4:5061";
/// An SMS gateway: stores and forwards messages.
const GATEWAY: &str = "198.51.100.5:5060";

/// Trunks by source IP.
struct Trunks(Vec<(SocketAddr, TrunkPolicy)>);

impl TrunkDirectory for Trunks {
    fn trunk_of(&self, source: SocketAddr) -> Option<TrunkPolicy> {
        self.0
            .iter()
            .find(|(address, _)| address.ip() == source.ip())
            .map(|(_, policy)| policy.clone())
    }
}

fn trunk(name: &str, trusted: bool, require_tls: bool, require_client_cert: bool) -> TrunkPolicy {
    TrunkPolicy {
        name: name.into(),
        trusted,
        require_tls,
        require_client_cert,
        store_and_forward: name == "gateway",
    }
}

struct Fixture {
    boundary: Boundary,
    registrar: SharedRegistrar,
    epoch: Instant,
}

fn fixture_with(config: BoundaryConfig, digest: DigestConfig, shard: u16) -> Fixture {
    let epoch = Instant::now();
    let credentials = CredentialTable::new()
        .with_password(REALM, "alice", "alice-pw")
        .with_password(REALM, "bob", "bob-pw")
        .with_password("example.com", "carol", "carol-pw");
    let trunks = Trunks(vec![
        (addr(TRUSTED_TRUNK), trunk("core", true, false, false)),
        (addr(UNTRUSTED_TRUNK), trunk("peer", false, false, false)),
        (addr(TLS_TRUNK), trunk("secure", true, true, false)),
        (addr(MTLS_TRUNK), trunk("mutual", true, true, true)),
        (addr(GATEWAY), trunk("gateway", false, false, false)),
    ]);
    let registrar = Registrar::shared(RegistrarConfig::default());
    let boundary = Boundary::new(
        config,
        Authenticator::new(digest, &KEY, epoch, shard),
        Arc::new(credentials),
        Arc::new(trunks),
        Some(Arc::clone(&registrar)),
    );
    Fixture {
        boundary,
        registrar,
        epoch,
    }
}

fn fixture() -> Fixture {
    fixture_with(
        BoundaryConfig {
            realm: REALM.into(),
            domains: vec!["example.com".into()],
            ..BoundaryConfig::default()
        },
        DigestConfig::default(),
        0,
    )
}

fn udp(text: &str) -> Peer {
    Peer::unreliable(addr(text))
}

fn over(protocol: Protocol) -> Arrival {
    Arrival {
        protocol,
        client_certificate: false,
    }
}

impl Fixture {
    fn at(&self, seconds: u64) -> Instant {
        self.epoch + Duration::from_secs(seconds)
    }

    fn inspect(&mut self, seconds: u64, request: &mut Request, source: Peer) -> Verdict {
        let arrival = Arrival::of(&source);
        let now = self.at(seconds);
        self.boundary.inspect(now, request, source, arrival)
    }

    fn events(&mut self) -> Vec<PolicyEvent> {
        std::iter::from_fn(|| self.boundary.poll_event()).collect()
    }
}

/// The challenge values of a verdict, which must be a challenge with `status`.
fn challenged(verdict: &Verdict, status: u16) -> Vec<Bytes> {
    match verdict {
        Verdict::Challenge {
            status: got,
            header,
            values,
        } => {
            assert_eq!(got.as_u16(), status, "{verdict:?}");
            let expected = if status == 401 {
                HeaderName::WwwAuthenticate
            } else {
                HeaderName::ProxyAuthenticate
            };
            assert_eq!(*header, expected);
            values.clone()
        }
        other => panic!("expected a {status} challenge, got {other:?}"),
    }
}

fn rejected(verdict: &Verdict) -> (u16, &'static str) {
    match verdict {
        Verdict::Reject { status, reason, .. } => (status.as_u16(), *reason),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn origin(verdict: Verdict) -> Origin {
    match verdict {
        Verdict::Admit(admitted) => admitted.origin,
        other => panic!("expected admission, got {other:?}"),
    }
}

fn with_authorization(mut request: Request, header: HeaderName, value: &str) -> Request {
    request.headers.push(header, value.to_owned());
    request
}

fn pai(request: &Request) -> Vec<String> {
    request
        .headers
        .get_all(&HeaderName::PAssertedIdentity)
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .collect()
}

#[test]
fn register_is_challenged_401_with_one_challenge_per_algorithm() {
    let mut fixture = fixture();
    let mut request = register(
        "alice",
        REALM,
        "r1",
        1,
        &["Contact: <sip:alice@192.0.2.10>"],
    );
    let values = challenged(&fixture.inspect(0, &mut request, udp(PHONE)), 401);
    assert_eq!(values.len(), 2);
    let md5 = String::from_utf8_lossy(&values[0]).into_owned();
    let sha = String::from_utf8_lossy(&values[1]).into_owned();
    assert!(md5.starts_with("Digest "), "{md5}");
    assert_eq!(param(&md5, "algorithm").as_deref(), Some("MD5"));
    assert_eq!(param(&sha, "algorithm").as_deref(), Some("SHA-256"));
    for value in [&md5, &sha] {
        assert_eq!(param(value, "realm").as_deref(), Some(REALM));
        assert_eq!(param(value, "qop").as_deref(), Some("auth"));
        assert!(!value.contains("stale"));
    }
    // Both share one nonce.
    assert_eq!(param(&md5, "nonce"), param(&sha, "nonce"));
    assert_eq!(fixture.boundary.stats().challenged.get("missing"), Some(&1));
    assert!(fixture.events().is_empty());
}

#[test]
fn the_algorithm_order_follows_the_configuration() {
    let mut fixture = fixture_with(
        BoundaryConfig {
            realm: REALM.into(),
            ..BoundaryConfig::default()
        },
        DigestConfig {
            algorithms: vec![Algorithm::Sha256],
            ..DigestConfig::default()
        },
        0,
    );
    let mut request = register("alice", REALM, "r1", 1, &[]);
    let values = challenged(&fixture.inspect(0, &mut request, udp(PHONE)), 401);
    assert_eq!(values.len(), 1);
    let challenge = String::from_utf8_lossy(&values[0]).into_owned();
    assert_eq!(param(&challenge, "algorithm").as_deref(), Some("SHA-256"));
    // An MD5 answer (to an algorithm not offered) is refused with a new challenge.
    let md5 = challenge.replace("algorithm=SHA-256", "algorithm=MD5");
    let answer = Answer::new("alice", "alice-pw", "REGISTER", "sip:sbc.test").to(&md5);
    let mut request = with_authorization(
        register("alice", REALM, "r1", 2, &[]),
        HeaderName::Authorization,
        &answer,
    );
    challenged(&fixture.inspect(1, &mut request, udp(PHONE)), 401);
    assert_eq!(
        fixture
            .boundary
            .stats()
            .challenged
            .get("unsupported_algorithm"),
        Some(&1)
    );
}

#[test]
fn a_right_answer_in_either_algorithm_admits_the_user_and_asserts_its_identity() {
    for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
        let mut fixture = fixture();
        let uri = "sip:bob@sbc.test";
        let mut first = invite("alice", REALM, uri, &[]);
        let values = challenged(&fixture.inspect(0, &mut first, udp(PHONE)), 407);
        let answer =
            Answer::new("alice", "alice-pw", "INVITE", uri).to(&challenge_for(&values, algorithm));
        // The phone tried to assert an identity itself: not believed.
        let mut second = with_authorization(
            invite(
                "alice",
                REALM,
                uri,
                &[
                    "P-Asserted-Identity: <sip:ceo@sbc.test>",
                    "P-Preferred-Identity: <sip:ceo@sbc.test>",
                    "Remote-Party-ID: <sip:ceo@sbc.test>",
                ],
            ),
            HeaderName::ProxyAuthorization,
            &answer,
        );
        match origin(fixture.inspect(1, &mut second, udp(PHONE))) {
            Origin::User(identity) => {
                assert_eq!(identity.username, "alice");
                assert_eq!(identity.realm, REALM);
                assert_eq!(identity.algorithm, algorithm);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(pai(&second), vec!["\"Alice A\" <sip:alice@sbc.test>"]);
        assert!(!second.headers.contains(&HeaderName::PPreferredIdentity));
        assert!(
            !second
                .headers
                .contains(&HeaderName::from_bytes(b"Remote-Party-ID"))
        );
        assert_eq!(
            fixture.events(),
            vec![PolicyEvent::Authenticated {
                source: addr(PHONE).ip()
            }]
        );
        assert_eq!(fixture.boundary.stats().admitted.get("user"), Some(&1));
    }
}

#[test]
fn a_wrong_password_and_an_unknown_user_get_the_same_new_challenge_and_count_as_attacks() {
    let mut fixture = fixture();
    let uri = "sip:sbc.test";
    let mut first = register("alice", REALM, "r1", 1, &[]);
    let values = challenged(&fixture.inspect(0, &mut first, udp(PHONE)), 401);
    let challenge = challenge_for(&values, Algorithm::Md5);

    let wrong = Answer::new("alice", "guess", "REGISTER", uri).to(&challenge);
    let mut request = with_authorization(
        register("alice", REALM, "r1", 2, &[]),
        HeaderName::Authorization,
        &wrong,
    );
    let after_wrong = challenged(&fixture.inspect(1, &mut request, udp(PHONE)), 401);

    let unknown = Answer::new("mallory", "guess", "REGISTER", uri)
        .nc(2)
        .to(&challenge);
    let mut request = with_authorization(
        register("mallory", REALM, "r1", 3, &[]),
        HeaderName::Authorization,
        &unknown,
    );
    let after_unknown = challenged(&fixture.inspect(1, &mut request, udp(PHONE)), 401);
    // The same number of challenges, the same parameters but the nonce (which is bound
    // to the time and the client, never to the user).
    let shape = |values: &[Bytes]| -> Vec<String> {
        values
            .iter()
            .map(|value| {
                let text = String::from_utf8_lossy(value).into_owned();
                text.replace(&param(&text, "nonce").unwrap(), "N")
            })
            .collect()
    };
    assert_eq!(shape(&after_wrong), shape(&after_unknown));
    let source = addr(PHONE).ip();
    assert_eq!(
        fixture.events(),
        vec![
            PolicyEvent::AuthFailed {
                source,
                reason: "bad_credentials"
            },
            PolicyEvent::AuthFailed {
                source,
                reason: "bad_credentials"
            },
        ]
    );
    assert_eq!(
        fixture.boundary.stats().challenged.get("bad_credentials"),
        Some(&2)
    );
}

#[test]
fn each_nonce_count_is_accepted_once() {
    let mut fixture = fixture();
    let uri = "sip:sbc.test";
    let contact = "Contact: <sip:alice@192.0.2.10>";
    let mut first = register("alice", REALM, "r1", 1, &[contact]);
    let values = challenged(&fixture.inspect(0, &mut first, udp(PHONE)), 401);
    let challenge = challenge_for(&values, Algorithm::Sha256);
    let answer = |nc: u32| {
        Answer::new("alice", "alice-pw", "REGISTER", uri)
            .nc(nc)
            .to(&challenge)
    };
    let inspect = |fixture: &mut Fixture, cseq: u32, value: &str| {
        let mut request = with_authorization(
            register("alice", REALM, "r1", cseq, &[contact]),
            HeaderName::Authorization,
            value,
        );
        fixture.inspect(2, &mut request, udp(PHONE))
    };
    assert!(matches!(
        inspect(&mut fixture, 2, &answer(1)),
        Verdict::Admit(_)
    ));
    // The very same answer again: a replay.
    challenged(&inspect(&mut fixture, 3, &answer(1)), 401);
    // Later counts, even out of order, once each.
    assert!(matches!(
        inspect(&mut fixture, 4, &answer(3)),
        Verdict::Admit(_)
    ));
    assert!(matches!(
        inspect(&mut fixture, 5, &answer(2)),
        Verdict::Admit(_)
    ));
    challenged(&inspect(&mut fixture, 6, &answer(2)), 401);
    let failures: Vec<_> = fixture
        .events()
        .into_iter()
        .filter(|event| matches!(event, PolicyEvent::AuthFailed { .. }))
        .collect();
    assert_eq!(
        failures,
        vec![
            PolicyEvent::AuthFailed {
                source: addr(PHONE).ip(),
                reason: "nonce_replay"
            };
            2
        ]
    );
}

#[test]
fn two_phones_behind_one_address_challenged_at_once_each_get_their_own_nonce() {
    let mut fixture = fixture();
    let uri = "sip:sbc.test";
    let nat = "192.0.2.10:5060";
    let mut first = register("alice", REALM, "ra", 1, &[]);
    let mut second = register("bob", REALM, "rb", 1, &[]);
    let for_alice = challenged(&fixture.inspect(0, &mut first, udp(nat)), 401);
    let for_bob = challenged(&fixture.inspect(0, &mut second, udp(nat)), 401);
    assert_ne!(for_alice, for_bob);
    // Both answer with nc=1 on their nonce: neither is a replay of the other.
    for (user, password, values) in [
        ("alice", "alice-pw", &for_alice),
        ("bob", "bob-pw", &for_bob),
    ] {
        let answer =
            Answer::new(user, password, "REGISTER", uri).to(&challenge_for(values, Algorithm::Md5));
        let mut request = with_authorization(
            register(user, REALM, "r", 2, &[]),
            HeaderName::Authorization,
            &answer,
        );
        assert!(
            matches!(
                fixture.inspect(0, &mut request, udp(nat)),
                Verdict::Admit(_)
            ),
            "{user}"
        );
    }
    assert!(
        fixture
            .events()
            .iter()
            .all(|event| matches!(event, PolicyEvent::Authenticated { .. }))
    );
}

#[test]
fn an_expired_nonce_is_stale_and_the_client_retries_without_counting_a_failure() {
    let mut fixture = fixture();
    let uri = "sip:sbc.test";
    let mut first = register("alice", REALM, "r1", 1, &[]);
    let values = challenged(&fixture.inspect(0, &mut first, udp(PHONE)), 401);
    let answer = Answer::new("alice", "alice-pw", "REGISTER", uri)
        .to(&challenge_for(&values, Algorithm::Md5));
    // Five minutes is the default lifetime.
    let mut late = with_authorization(
        register("alice", REALM, "r1", 2, &[]),
        HeaderName::Authorization,
        &answer,
    );
    let renewed = challenged(&fixture.inspect(301, &mut late, udp(PHONE)), 401);
    let renewed: Vec<String> = renewed
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        renewed.iter().all(|value| value.ends_with("stale=true")),
        "{renewed:?}"
    );
    assert_eq!(fixture.boundary.stats().challenged.get("stale"), Some(&1));
    assert!(fixture.events().is_empty());
    // A stale nonce with a wrong password is a plain failure (no stale=true to help a
    // guesser).
    let wrong =
        Answer::new("alice", "guess", "REGISTER", uri).to(&challenge_for(&values, Algorithm::Md5));
    let mut guess = with_authorization(
        register("alice", REALM, "r1", 3, &[]),
        HeaderName::Authorization,
        &wrong,
    );
    let again = challenged(&fixture.inspect(302, &mut guess, udp(PHONE)), 401);
    assert!(again.iter().all(|value| !value.ends_with(b"stale=true")));
    // The fresh nonce works.
    let fresh = Answer::new("alice", "alice-pw", "REGISTER", uri).to(&renewed[0]);
    let mut retry = with_authorization(
        register("alice", REALM, "r1", 4, &[]),
        HeaderName::Authorization,
        &fresh,
    );
    assert!(matches!(
        fixture.inspect(302, &mut retry, udp(PHONE)),
        Verdict::Admit(_)
    ));
}

#[test]
fn a_nonce_is_bound_to_its_client_and_its_shard() {
    let mut fixture = fixture();
    let uri = "sip:sbc.test";
    let mut first = register("alice", REALM, "r1", 1, &[]);
    let values = challenged(&fixture.inspect(0, &mut first, udp(PHONE)), 401);
    let answer = Answer::new("alice", "alice-pw", "REGISTER", uri)
        .to(&challenge_for(&values, Algorithm::Md5));
    // The right answer from another address: the nonce is not its own.
    let mut elsewhere = with_authorization(
        register("alice", REALM, "r1", 2, &[]),
        HeaderName::Authorization,
        &answer,
    );
    challenged(
        &fixture.inspect(1, &mut elsewhere, udp("192.0.2.99:5060")),
        401,
    );
    assert_eq!(
        fixture.boundary.stats().challenged.get("bad_nonce"),
        Some(&1)
    );
    // Not counted toward a ban: the legitimate phone is not punished for it.
    assert!(fixture.events().is_empty());

    // Another shard (same key) takes it for stale: the client just retries.
    let mut other = fixture_with(
        BoundaryConfig {
            realm: REALM.into(),
            ..BoundaryConfig::default()
        },
        DigestConfig::default(),
        1,
    );
    other.epoch = fixture.epoch;
    let mut moved = with_authorization(
        register("alice", REALM, "r1", 3, &[]),
        HeaderName::Authorization,
        &answer,
    );
    let values = challenged(&other.inspect(1, &mut moved, udp(PHONE)), 401);
    assert!(values.iter().all(|value| value.ends_with(b"stale=true")));
}

#[test]
fn malformed_or_mismatched_answers_are_challenged_again() {
    let mut fixture = fixture();
    let uri = "sip:sbc.test";
    let mut first = register("alice", REALM, "r1", 1, &[]);
    let values = challenged(&fixture.inspect(0, &mut first, udp(PHONE)), 401);
    let challenge = challenge_for(&values, Algorithm::Md5);
    let base = Answer::new("alice", "alice-pw", "REGISTER", uri);
    let cases: Vec<(String, &str)> = vec![
        ("Digest username=\"alice\"".into(), "malformed_credentials"),
        ("Basic YWxpY2U6YWxpY2UtcHc=".into(), "malformed_credentials"),
        (
            Answer {
                realm: Some("elsewhere"),
                ..base.clone()
            }
            .to(&challenge),
            "wrong_realm",
        ),
        (
            Answer {
                qop: false,
                ..base.clone()
            }
            .to(&challenge),
            "qop_required",
        ),
        (
            Answer {
                uri: "sip:other.example",
                ..base.clone()
            }
            .to(&challenge),
            "uri_mismatch",
        ),
        (
            base.to(&challenge.replace(&param(&challenge, "nonce").unwrap(), "0123abcd")),
            "bad_nonce",
        ),
        (
            base.to(&challenge).replace("nc=00000001", "nc=1"),
            "malformed_credentials",
        ),
    ];
    for (cseq, (value, cause)) in (2..).zip(&cases) {
        let mut request = with_authorization(
            register("alice", REALM, "r1", cseq, &[]),
            HeaderName::Authorization,
            value,
        );
        challenged(&fixture.inspect(1, &mut request, udp(PHONE)), 401);
        assert!(
            fixture.boundary.stats().challenged.contains_key(cause),
            "{cause}: {:?}",
            fixture.boundary.stats()
        );
    }
    // None of these is a guessed password: nothing toward a ban.
    assert!(fixture.events().is_empty());
    // An answer in Authorization does not count for an INVITE (which needs
    // Proxy-Authorization): it is simply challenged 407 again.
    let target = "sip:bob@sbc.test";
    let mut call = invite("alice", REALM, target, &[]);
    let values = challenged(&fixture.inspect(1, &mut call, udp(PHONE)), 407);
    let answer = Answer::new("alice", "alice-pw", "INVITE", target)
        .to(&challenge_for(&values, Algorithm::Md5));
    let mut call = with_authorization(
        invite("alice", REALM, target, &[]),
        HeaderName::Authorization,
        &answer,
    );
    challenged(&fixture.inspect(1, &mut call, udp(PHONE)), 407);
}

#[test]
fn the_realm_follows_the_claimed_domain() {
    let mut fixture = fixture();
    let mut request = register("carol", "EXAMPLE.com", "r1", 1, &[]);
    let values = challenged(&fixture.inspect(0, &mut request, udp(PHONE)), 401);
    let challenge = challenge_for(&values, Algorithm::Md5);
    assert_eq!(param(&challenge, "realm").as_deref(), Some("example.com"));
    let answer = Answer::new("carol", "carol-pw", "REGISTER", "sip:EXAMPLE.com").to(&challenge);
    let mut request = with_authorization(
        register("carol", "EXAMPLE.com", "r1", 2, &[]),
        HeaderName::Authorization,
        &answer,
    );
    match origin(fixture.inspect(1, &mut request, udp(PHONE))) {
        Origin::User(identity) => assert_eq!(identity.realm, "example.com"),
        other => panic!("{other:?}"),
    }
    // A domain that is not configured falls back to the default realm.
    let mut request = register("alice", "unknown.example", "r2", 1, &[]);
    let values = challenged(&fixture.inspect(0, &mut request, udp(PHONE)), 401);
    assert_eq!(
        param(&challenge_for(&values, Algorithm::Md5), "realm").as_deref(),
        Some(REALM)
    );
}

#[test]
fn a_user_cannot_act_as_another_user() {
    let mut fixture = fixture();
    let uri = "sip:sbc.test";
    // Bob proves he is bob, but the REGISTER is for alice's address of record.
    let mut first = register("alice", REALM, "r1", 1, &[]);
    let values = challenged(&fixture.inspect(0, &mut first, udp(PHONE)), 401);
    let answer =
        Answer::new("bob", "bob-pw", "REGISTER", uri).to(&challenge_for(&values, Algorithm::Md5));
    let mut hijack = with_authorization(
        register("alice", REALM, "r1", 2, &["Contact: <sip:evil@192.0.2.66>"]),
        HeaderName::Authorization,
        &answer,
    );
    assert_eq!(
        rejected(&fixture.inspect(1, &mut hijack, udp(PHONE))),
        (403, "identity_mismatch")
    );
    // The same for a call whose From claims alice.
    let target = "sip:carol@sbc.test";
    let mut call = invite("alice", REALM, target, &[]);
    let values = challenged(&fixture.inspect(1, &mut call, udp(PHONE)), 407);
    let answer =
        Answer::new("bob", "bob-pw", "INVITE", target).to(&challenge_for(&values, Algorithm::Md5));
    let mut call = with_authorization(
        invite("alice", REALM, target, &[]),
        HeaderName::ProxyAuthorization,
        &answer,
    );
    assert_eq!(
        rejected(&fixture.inspect(1, &mut call, udp(PHONE))),
        (403, "identity_mismatch")
    );
    assert_eq!(
        fixture.boundary.stats().rejected.get("identity_mismatch"),
        Some(&2)
    );
}

#[test]
fn trunks_are_admitted_by_source_and_their_identity_believed_only_when_trusted() {
    let mut fixture = fixture();
    let pai_line = "P-Asserted-Identity: <sip:+15551234@core.example>";
    let mut from_core = invite("x", "core.example", "sip:alice@sbc.test", &[pai_line]);
    match origin(fixture.inspect(0, &mut from_core, udp(TRUSTED_TRUNK))) {
        Origin::Trunk(policy) => assert_eq!(policy.name, "core"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pai(&from_core), vec!["<sip:+15551234@core.example>"]);

    let mut from_peer = invite(
        "x",
        "peer.example",
        "sip:alice@sbc.test",
        &[pai_line, "P-Preferred-Identity: <sip:x@peer.example>"],
    );
    match origin(fixture.inspect(0, &mut from_peer, udp(UNTRUSTED_TRUNK))) {
        Origin::Trunk(policy) => assert!(!policy.trusted),
        other => panic!("{other:?}"),
    }
    assert!(pai(&from_peer).is_empty());
    assert!(!from_peer.headers.contains(&HeaderName::PPreferredIdentity));
    assert_eq!(fixture.boundary.stats().admitted.get("trunk"), Some(&2));
}

#[test]
fn a_trunk_that_requires_tls_or_a_client_certificate_gets_nothing_else_through() {
    let mut fixture = fixture();
    let target = "sip:alice@sbc.test";
    let now = fixture.at(0);
    let mut call = invite("x", "core.example", target, &[]);
    let verdict = fixture
        .boundary
        .inspect(now, &mut call, udp(TLS_TRUNK), over(Protocol::Udp));
    assert_eq!(rejected(&verdict), (403, "tls_required"));
    let tcp = Peer::reliable(addr(TLS_TRUNK), Some(3));
    let verdict = fixture
        .boundary
        .inspect(now, &mut call, tcp, over(Protocol::Tcp));
    assert_eq!(rejected(&verdict), (403, "tls_required"));
    let tls = Peer::reliable(addr(TLS_TRUNK), Some(4));
    let verdict = fixture
        .boundary
        .inspect(now, &mut call, tls, over(Protocol::Tls));
    assert!(matches!(origin(verdict), Origin::Trunk(_)));

    // Mutual TLS: TLS alone is not enough.
    let mtls = Peer::reliable(addr(MTLS_TRUNK), Some(5));
    let verdict = fixture
        .boundary
        .inspect(now, &mut call, mtls, over(Protocol::Tls));
    assert_eq!(rejected(&verdict), (403, "client_certificate_required"));
    let verified = Arrival {
        protocol: Protocol::Tls,
        client_certificate: true,
    };
    let verdict = fixture.boundary.inspect(now, &mut call, mtls, verified);
    assert!(matches!(origin(verdict), Origin::Trunk(_)));
    // Even a CANCEL from such a trunk needs TLS.
    let mut cancel = request(
        &[
            "CANCEL sip:alice@sbc.test SIP/2.0",
            "Via: SIP/2.0/UDP 198.51.100.3;branch=z9hG4bK-c",
            "From: <sip:x@core.example>;tag=1",
            "To: <sip:alice@sbc.test>",
            "Call-ID: c1",
            "CSeq: 1 CANCEL",
        ],
        "",
    );
    let verdict = fixture
        .boundary
        .inspect(now, &mut cancel, udp(TLS_TRUNK), over(Protocol::Udp));
    assert_eq!(rejected(&verdict), (403, "tls_required"));
}

#[test]
fn a_sips_request_uri_is_refused_unless_it_came_over_tls() {
    let mut fixture = fixture();
    let now = fixture.at(0);
    let mut call = invite("x", "core.example", "sips:alice@sbc.test", &[]);
    let verdict = fixture
        .boundary
        .inspect(now, &mut call, udp(TRUSTED_TRUNK), over(Protocol::Udp));
    assert_eq!(rejected(&verdict), (416, "sips_without_tls"));
    let tcp = Peer::reliable(addr(TRUSTED_TRUNK), Some(1));
    let verdict = fixture
        .boundary
        .inspect(now, &mut call, tcp, over(Protocol::Tcp));
    assert_eq!(rejected(&verdict), (416, "sips_without_tls"));
    let tls = Peer::reliable(addr(TRUSTED_TRUNK), Some(2));
    let verdict = fixture
        .boundary
        .inspect(now, &mut call, tls, over(Protocol::Tls));
    assert!(matches!(origin(verdict), Origin::Trunk(_)));
    // The access side too (before any challenge).
    let mut call = invite("alice", REALM, "sips:bob@sbc.test", &[]);
    let verdict = fixture
        .boundary
        .inspect(now, &mut call, udp(PHONE), over(Protocol::Udp));
    assert_eq!(rejected(&verdict), (416, "sips_without_tls"));
}

#[test]
fn requests_that_need_no_proof_are_admitted_and_still_lose_foreign_identity() {
    let mut fixture = fixture();
    let pai_line = "P-Asserted-Identity: <sip:ceo@sbc.test>";
    let in_dialog = |method: &str| {
        request(
            &[
                &format!("{method} sip:alice@192.0.2.10 SIP/2.0"),
                "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-d",
                "From: <sip:alice@sbc.test>;tag=a",
                "To: <sip:bob@sbc.test>;tag=b",
                "Call-ID: dialog-1",
                &format!("CSeq: 2 {method}"),
                "Contact: <sip:alice@192.0.2.10>",
                pai_line,
            ],
            "",
        )
    };
    for method in ["BYE", "INVITE", "INFO", "UPDATE"] {
        let mut request = in_dialog(method);
        assert_eq!(
            origin(fixture.inspect(0, &mut request, udp(PHONE))),
            Origin::Unauthenticated,
            "{method}"
        );
        assert!(pai(&request).is_empty(), "{method}");
    }
    for method in ["CANCEL", "ACK", "OPTIONS"] {
        let mut request = request(
            &[
                &format!("{method} sip:bob@sbc.test SIP/2.0"),
                "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-e",
                "From: <sip:alice@sbc.test>;tag=a",
                "To: <sip:bob@sbc.test>",
                "Call-ID: dialog-2",
                &format!("CSeq: 1 {method}"),
            ],
            "",
        );
        assert_eq!(
            origin(fixture.inspect(0, &mut request, udp(PHONE))),
            Origin::Unauthenticated,
            "{method}"
        );
    }
    assert_eq!(
        fixture.boundary.stats().admitted.get("unauthenticated"),
        Some(&7)
    );
}

#[test]
fn with_authentication_off_the_access_side_is_admitted_but_never_believed() {
    let mut fixture = fixture_with(
        BoundaryConfig {
            authenticate: false,
            ..BoundaryConfig::default()
        },
        DigestConfig::default(),
        0,
    );
    let mut call = invite(
        "alice",
        REALM,
        "sip:bob@sbc.test",
        &["P-Asserted-Identity: <sip:ceo@x>"],
    );
    assert_eq!(
        origin(fixture.inspect(0, &mut call, udp(PHONE))),
        Origin::Unauthenticated
    );
    assert!(pai(&call).is_empty());
}

#[test]
fn under_overload_new_calls_get_503_with_retry_after_and_the_rest_goes_on() {
    let mut fixture = fixture_with(
        BoundaryConfig {
            realm: REALM.into(),
            overload_retry_after: Duration::from_secs(7),
            ..BoundaryConfig::default()
        },
        DigestConfig::default(),
        0,
    );
    fixture.boundary.set_overloaded(true);
    assert!(fixture.boundary.is_overloaded());
    let overload = |verdict: &Verdict| match verdict {
        Verdict::Reject {
            status,
            reason,
            headers,
            ..
        } => {
            assert_eq!(status.as_u16(), 503);
            assert_eq!(*reason, "overload");
            assert_eq!(
                headers.as_slice(),
                &[(
                    HeaderName::from_bytes(b"Retry-After"),
                    Bytes::from_static(b"7")
                )]
            );
        }
        other => panic!("expected 503, got {other:?}"),
    };
    // A trunk's new call.
    let mut call = invite("x", "core.example", "sip:alice@sbc.test", &[]);
    overload(&fixture.inspect(0, &mut call, udp(TRUSTED_TRUNK)));
    // An access user's new call: refused only once it has proved who it is (an
    // unauthenticated flood costs no more than a challenge).
    let target = "sip:bob@sbc.test";
    let mut call = invite("alice", REALM, target, &[]);
    let values = challenged(&fixture.inspect(0, &mut call, udp(PHONE)), 407);
    let answer = Answer::new("alice", "alice-pw", "INVITE", target)
        .to(&challenge_for(&values, Algorithm::Md5));
    let mut call = with_authorization(
        invite("alice", REALM, target, &[]),
        HeaderName::ProxyAuthorization,
        &answer,
    );
    overload(&fixture.inspect(0, &mut call, udp(PHONE)));
    // In-dialog requests (re-INVITE, BYE) and registrations go on.
    let mut reinvite = request(
        &[
            "INVITE sip:alice@192.0.2.10 SIP/2.0",
            "Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK-re",
            "From: <sip:x@core.example>;tag=a",
            "To: <sip:alice@sbc.test>;tag=b",
            "Call-ID: dialog-3",
            "CSeq: 2 INVITE",
            "Contact: <sip:x@198.51.100.1>",
        ],
        "",
    );
    assert!(matches!(
        origin(fixture.inspect(0, &mut reinvite, udp(TRUSTED_TRUNK))),
        Origin::Trunk(_)
    ));
    let mut bye = reinvite.clone();
    bye.method = sbc_core::sip::Method::Bye;
    assert!(matches!(
        fixture.inspect(0, &mut bye, udp(PHONE)),
        Verdict::Admit(_)
    ));
    let mut registration = register("alice", REALM, "r1", 1, &[]);
    challenged(&fixture.inspect(0, &mut registration, udp(PHONE)), 401);
    assert_eq!(fixture.boundary.stats().rejected.get("overload"), Some(&2));
    // When the load passes, new calls are admitted again.
    fixture.boundary.set_overloaded(false);
    let mut call = invite("x", "core.example", "sip:alice@sbc.test", &[]);
    assert!(matches!(
        origin(fixture.inspect(0, &mut call, udp(TRUSTED_TRUNK))),
        Origin::Trunk(_)
    ));
}

/// Registers alice (authenticated) on `flow` of a TCP connection from PHONE.
fn register_on_flow(fixture: &mut Fixture, flow: u64) -> Peer {
    let source = Peer::reliable(addr(PHONE), Some(flow));
    let request = register(
        "alice",
        REALM,
        "r-flow",
        u32::try_from(flow).unwrap(),
        &["Contact: <sip:alice@192.0.2.10:5060;transport=tcp>"],
    );
    let now = fixture.at(0);
    fixture
        .registrar
        .handle_register(now, &request, "sip:alice@sbc.test", source, Protocol::Tcp)
        .unwrap();
    source
}

#[test]
fn requests_on_the_registered_flow_are_admitted_and_any_other_flow_is_challenged() {
    let mut fixture = fixture();
    let flow = register_on_flow(&mut fixture, 7);
    let target = "sip:bob@sbc.test";
    let now = fixture.at(1);
    let mut call = invite(
        "alice",
        REALM,
        target,
        &["P-Asserted-Identity: <sip:ceo@x>"],
    );
    let verdict = fixture
        .boundary
        .inspect(now, &mut call, flow, over(Protocol::Tcp));
    assert_eq!(
        origin(verdict),
        Origin::RegisteredFlow {
            aor: "sip:alice@sbc.test".into()
        }
    );
    assert_eq!(pai(&call), vec!["\"Alice A\" <sip:alice@sbc.test>"]);

    // The same address on another connection: it must prove it is alice.
    let other_connection = Peer::reliable(addr(PHONE), Some(8));
    let mut call = invite("alice", REALM, target, &[]);
    challenged(
        &fixture
            .boundary
            .inspect(now, &mut call, other_connection, over(Protocol::Tcp)),
        407,
    );
    // Another host claiming alice: challenged.
    let intruder = Peer::reliable(addr("192.0.2.66:40000"), Some(7));
    let mut call = invite("alice", REALM, target, &[]);
    challenged(
        &fixture
            .boundary
            .inspect(now, &mut call, intruder, over(Protocol::Tcp)),
        407,
    );
    // UDP carries no proof of origin: even the registered address is challenged.
    let mut call = invite("alice", REALM, target, &[]);
    challenged(&fixture.inspect(1, &mut call, udp(PHONE)), 407);
    // The registered flow claiming someone else is not admitted as that someone.
    let mut call = invite("bob", REALM, target, &[]);
    challenged(
        &fixture
            .boundary
            .inspect(now, &mut call, flow, over(Protocol::Tcp)),
        407,
    );
    // A REGISTER is always challenged, even on the flow (it changes bindings).
    let mut refresh = register("alice", REALM, "r-flow", 100, &[]);
    challenged(
        &fixture
            .boundary
            .inspect(now, &mut refresh, flow, over(Protocol::Tcp)),
        401,
    );
    // Once the binding lapses, the flow proves nothing any more.
    let later = fixture.at(3_601);
    let mut call = invite("alice", REALM, target, &[]);
    challenged(
        &fixture
            .boundary
            .inspect(later, &mut call, flow, over(Protocol::Tcp)),
        407,
    );
    assert_eq!(
        fixture.boundary.stats().admitted.get("registered_flow"),
        Some(&1)
    );
}

fn message_dated(date: Option<&str>) -> Request {
    let mut lines = vec![
        "MESSAGE sip:bob@sbc.test SIP/2.0".to_owned(),
        "Via: SIP/2.0/UDP 198.51.100.5;branch=z9hG4bK-m".to_owned(),
        "Max-Forwards: 70".to_owned(),
        "From: <sip:+15550001@sms.example>;tag=m1".to_owned(),
        "To: <sip:bob@sbc.test>".to_owned(),
        "Call-ID: msg-1".to_owned(),
        "CSeq: 1 MESSAGE".to_owned(),
        "Content-Type: text/plain".to_owned(),
    ];
    if let Some(date) = date {
        lines.push(format!("Date: {date}"));
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    request(&lines, "hi")
}

#[test]
fn a_message_dated_outside_the_window_is_refused_unless_stored_and_forwarded() {
    let mut fixture = fixture_with(
        BoundaryConfig {
            realm: REALM.into(),
            message_date_window: Some(Duration::from_secs(600)),
            ..BoundaryConfig::default()
        },
        DigestConfig::default(),
        0,
    );
    // "Now" is Tue, 15 Nov 1994 08:12:31 GMT (RFC 3261's example date).
    let now = std::time::UNIX_EPOCH + Duration::from_secs(784_887_151);
    fixture.boundary.set_wall_clock(move || now);
    let refusal = |verdict: Verdict| match verdict {
        Verdict::Reject {
            status,
            reason,
            phrase,
            ..
        } => (status.as_u16(), reason, phrase),
        other => panic!("expected a refusal, got {other:?}"),
    };
    // Ten minutes and a second old, or that far ahead: refused, and said why.
    let old = "Tue, 15 Nov 1994 08:02:30 GMT";
    let ahead = "Tue, 15 Nov 1994 08:22:32 GMT";
    let mut stale = message_dated(Some(old));
    assert_eq!(
        refusal(fixture.inspect(0, &mut stale, udp(TRUSTED_TRUNK))),
        (403, "stale_message", Some("Stale Date"))
    );
    let mut future = message_dated(Some(ahead));
    assert_eq!(
        refusal(fixture.inspect(0, &mut future, udp(TRUSTED_TRUNK))),
        (403, "future_message", Some("Date In Future"))
    );
    let mut garbled = message_dated(Some("yesterday, around noon"));
    assert_eq!(
        refusal(fixture.inspect(0, &mut garbled, udp(TRUSTED_TRUNK))),
        (400, "malformed_date", Some("Malformed Date"))
    );
    // From the access side it is refused before any challenge.
    let mut stale = message_dated(Some(old));
    assert_eq!(refusal(fixture.inspect(0, &mut stale, udp(PHONE))).0, 403);
    // Within the window, or without a Date: on to the usual checks.
    let mut fresh = message_dated(Some("Tue, 15 Nov 1994 08:05:00 GMT"));
    assert!(matches!(
        origin(fixture.inspect(0, &mut fresh, udp(TRUSTED_TRUNK))),
        Origin::Trunk(_)
    ));
    let mut undated = message_dated(None);
    assert!(matches!(
        origin(fixture.inspect(0, &mut undated, udp(TRUSTED_TRUNK))),
        Origin::Trunk(_)
    ));
    // A store-and-forward trunk delivers old messages.
    let mut stored = message_dated(Some("Mon, 14 Nov 1994 08:12:31 GMT"));
    assert!(matches!(
        origin(fixture.inspect(0, &mut stored, udp(GATEWAY))),
        Origin::Trunk(policy) if policy.store_and_forward
    ));
    assert_eq!(
        fixture.boundary.stats().rejected.get("stale_message"),
        Some(&2)
    );
    // Other methods are not concerned.
    let mut call = invite(
        "x",
        "core.example",
        "sip:alice@sbc.test",
        &[&format!("Date: {old}")],
    );
    assert!(matches!(
        origin(fixture.inspect(0, &mut call, udp(TRUSTED_TRUNK))),
        Origin::Trunk(_)
    ));
}
