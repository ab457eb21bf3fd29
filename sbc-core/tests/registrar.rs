//! The registrar (RFC 3261 §10.3, RFC 3327 Path, RFC 3608 Service-Route, RFC 5626
//! outbound) on a virtual clock: expiry and `423`, de-registration (one contact, all with
//! `*`), Call-ID/CSeq ordering, several contacts, limits, flows, persistence changes, and
//! that one user's REGISTER never touches another user's bindings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_support;

use std::time::{Duration, Instant};

use policy_support::{addr, register};
use sbc_core::net::Protocol;
use sbc_core::registrar::{
    BindingChange, RegisterError, Registrar, RegistrarConfig, contact_values,
};
use sbc_core::sip::{Request, Uri};
use sbc_core::transaction::Peer;

const ALICE: &str = "sip:alice@sbc.test";
const BOB: &str = "sip:bob@sbc.test";
const PHONE: &str = "192.0.2.10:5060";

fn registrar() -> Registrar {
    Registrar::new(RegistrarConfig {
        min_expires: Duration::from_secs(60),
        max_expires: Duration::from_secs(3600),
        default_expires: Duration::from_secs(1800),
        max_bindings_per_aor: 3,
        max_bindings: 5,
    })
}

fn udp() -> Peer {
    Peer::unreliable(addr(PHONE))
}

fn alice(call_id: &str, cseq: u32, extra: &[&str]) -> Request {
    register("alice", "sbc.test", call_id, cseq, extra)
}

fn bob(call_id: &str, cseq: u32, extra: &[&str]) -> Request {
    register("bob", "sbc.test", call_id, cseq, extra)
}

fn contacts(registrar: &Registrar, now: Instant, aor: &str) -> Vec<String> {
    let mut list: Vec<String> = registrar
        .lookup(now, aor)
        .iter()
        .map(|binding| binding.contact_text.clone())
        .collect();
    list.sort();
    list
}

fn changes(registrar: &Registrar) -> Vec<BindingChange> {
    std::iter::from_fn(|| registrar.poll_change()).collect()
}

#[test]
fn a_binding_lives_for_the_expiry_asked_within_the_limits() {
    let start = Instant::now();
    let registrar = registrar();
    // The Expires header, a contact's own parameter, the default, the maximum.
    let request = alice(
        "c1",
        1,
        &[
            "Contact: <sip:a1@192.0.2.10>, <sip:a2@192.0.2.10>;expires=300",
            "Contact: <sip:a3@192.0.2.10>;expires=86400",
            "Expires: 120",
        ],
    );
    let bindings = registrar
        .handle_register(start, &request, ALICE, udp(), Protocol::Udp)
        .unwrap();
    assert_eq!(bindings.len(), 3);
    let left = |text: &str| {
        bindings
            .iter()
            .find(|b| b.contact_text == text)
            .map(|b| b.expires_at.duration_since(start).as_secs())
    };
    assert_eq!(left("sip:a1@192.0.2.10"), Some(120));
    assert_eq!(left("sip:a2@192.0.2.10"), Some(300));
    assert_eq!(left("sip:a3@192.0.2.10"), Some(3600));
    // The 200 lists every binding with the seconds it has left; `expires` is not stored
    // as part of the contact.
    let values = contact_values(&bindings, start + Duration::from_secs(20));
    let values: Vec<String> = values
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        values.contains(&"<sip:a1@192.0.2.10>;expires=100".to_owned()),
        "{values:?}"
    );
    assert!(
        values.contains(&"<sip:a2@192.0.2.10>;expires=280".to_owned()),
        "{values:?}"
    );

    // Without any expiry: the default.
    let request = bob("c2", 1, &["Contact: <sip:b@192.0.2.11>"]);
    let bindings = registrar
        .handle_register(start, &request, BOB, udp(), Protocol::Udp)
        .unwrap();
    assert_eq!(
        bindings[0].expires_at.duration_since(start),
        Duration::from_secs(1800)
    );

    // On the clock, each lapses on its own.
    assert_eq!(
        contacts(&registrar, start + Duration::from_secs(121), ALICE).len(),
        2
    );
    assert_eq!(
        contacts(&registrar, start + Duration::from_secs(301), ALICE),
        vec!["sip:a3@192.0.2.10"]
    );
    assert!(registrar.is_registered(start + Duration::from_secs(3599), ALICE));
    assert!(!registrar.is_registered(start + Duration::from_secs(3600), ALICE));
    // (Bob's lapsed at 1800 s.)
    assert_eq!(registrar.stats().expired, 4);
    assert!(registrar.is_empty());
}

#[test]
fn an_expiry_below_the_minimum_gets_423_with_min_expires() {
    let start = Instant::now();
    let registrar = registrar();
    for extra in [
        vec!["Contact: <sip:a@192.0.2.10>", "Expires: 59"],
        vec!["Contact: <sip:a@192.0.2.10>;expires=1", "Expires: 3600"],
        // One brief contact refuses the whole request: nothing is half-applied.
        vec!["Contact: <sip:b@192.0.2.10>, <sip:a@192.0.2.10>;expires=30"],
    ] {
        let error = registrar
            .handle_register(start, &alice("c1", 1, &extra), ALICE, udp(), Protocol::Udp)
            .unwrap_err();
        assert_eq!(
            error,
            RegisterError::IntervalTooBrief {
                min: Duration::from_secs(60)
            }
        );
        assert_eq!(error.status().as_u16(), 423);
        assert_eq!(error.name(), "interval_too_brief");
        let headers = error.headers();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].0.as_str(), "Min-Expires");
        assert_eq!(headers[0].1, "60");
    }
    assert!(registrar.is_empty());
    assert_eq!(registrar.stats().refused, 3);
    assert!(changes(&registrar).is_empty());
}

#[test]
fn malformed_registrations_are_refused_400() {
    let start = Instant::now();
    let registrar = registrar();
    for (extra, name) in [
        (
            vec!["Contact: <sip:a@192.0.2.10>", "Expires: soon"],
            "expires",
        ),
        (
            vec!["Contact: <sip:a@192.0.2.10>;expires=-1"],
            "expires_param",
        ),
        (vec!["Contact: <sip:a@192.0.2.10>;expires"], "expires_param"),
        (vec!["Contact: <mailto:a@example.com>"], "contact_scheme"),
        (vec!["Contact: *"], "star_contact_without_expires_0"),
        (
            vec!["Contact: *", "Expires: 60"],
            "star_contact_without_expires_0",
        ),
    ] {
        let error = registrar
            .handle_register(start, &alice("c1", 1, &extra), ALICE, udp(), Protocol::Udp)
            .unwrap_err();
        assert_eq!(error, RegisterError::Malformed(name), "{extra:?}");
        assert_eq!(error.status().as_u16(), 400);
    }
    // An absurd expiry is read as the largest (RFC 3261 §20.19) and then capped.
    let bindings = registrar
        .handle_register(
            start,
            &alice(
                "c1",
                1,
                &[
                    "Contact: <sip:a@192.0.2.10>",
                    "Expires: 99999999999999999999",
                ],
            ),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    assert_eq!(
        bindings[0].expires_at.duration_since(start),
        Duration::from_secs(3600)
    );
}

#[test]
fn a_register_without_contact_lists_the_bindings_and_changes_nothing() {
    let start = Instant::now();
    let registrar = registrar();
    registrar
        .handle_register(
            start,
            &alice("c1", 1, &["Contact: <sip:a@192.0.2.10>"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    let _ = changes(&registrar);
    let listed = registrar
        .handle_register(start, &alice("c9", 1, &[]), ALICE, udp(), Protocol::Udp)
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(changes(&registrar).is_empty());
}

#[test]
fn expires_zero_removes_one_contact_and_star_removes_them_all() {
    let start = Instant::now();
    let registrar = registrar();
    let add = alice(
        "c1",
        1,
        &["Contact: <sip:a1@192.0.2.10>, <sip:a2@192.0.2.10>, <sip:a3@192.0.2.10>"],
    );
    registrar
        .handle_register(start, &add, ALICE, udp(), Protocol::Udp)
        .unwrap();
    registrar
        .handle_register(
            start,
            &bob("c2", 1, &["Contact: <sip:b@192.0.2.11>"]),
            BOB,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    assert_eq!(changes(&registrar).len(), 4);

    // `expires=0` on one contact.
    let left = registrar
        .handle_register(
            start,
            &alice("c1", 2, &["Contact: <sip:a1@192.0.2.10>;expires=0"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    assert_eq!(left.len(), 2);
    // `Expires: 0` for another; the URI is compared as registered.
    registrar
        .handle_register(
            start,
            &alice("c1", 3, &["Contact: <sip:a2@192.0.2.10>", "Expires: 0"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    assert_eq!(
        contacts(&registrar, start, ALICE),
        vec!["sip:a3@192.0.2.10"]
    );
    // Removing what is not bound is fine (and changes nothing).
    registrar
        .handle_register(
            start,
            &alice("c1", 4, &["Contact: <sip:nothing@192.0.2.10>;expires=0"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    assert_eq!(
        changes(&registrar),
        vec![
            BindingChange::Removed {
                aor: ALICE.into(),
                contact: "<sip:a1@192.0.2.10>".into()
            },
            BindingChange::Removed {
                aor: ALICE.into(),
                contact: "<sip:a2@192.0.2.10>".into()
            },
        ]
    );

    // `Contact: *` with `Expires: 0`, from another Call-ID (a phone that rebooted).
    let all = registrar
        .handle_register(
            start,
            &alice("other-call-id", 1, &["Contact: *", "Expires: 0"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    assert!(all.is_empty());
    assert!(!registrar.is_registered(start, ALICE));
    // Bob's binding is untouched.
    assert_eq!(contacts(&registrar, start, BOB), vec!["sip:b@192.0.2.11"]);
    assert_eq!(registrar.len(), 1);
    assert_eq!(registrar.stats().unregistered, 3);
}

#[test]
fn within_one_call_id_the_cseq_must_grow() {
    let start = Instant::now();
    let registrar = registrar();
    let contact = "Contact: <sip:a@192.0.2.10>";
    registrar
        .handle_register(
            start,
            &alice("c1", 5, &[contact]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    // A refresh with the same or a lower CSeq is out of order (a delayed retransmission
    // or a replayed request): 500, and the binding stays as it was.
    for cseq in [5, 4] {
        let error = registrar
            .handle_register(
                start + Duration::from_secs(10),
                &alice("c1", cseq, &[contact, "Expires: 600"]),
                ALICE,
                udp(),
                Protocol::Udp,
            )
            .unwrap_err();
        assert_eq!(error, RegisterError::OutOfOrder);
        assert_eq!(error.status().as_u16(), 500);
    }
    assert_eq!(
        registrar.lookup(start, ALICE)[0].expires_at,
        start + Duration::from_secs(1800)
    );
    // Nor can an old request remove it (one contact, or all).
    for extra in [
        vec!["Contact: <sip:a@192.0.2.10>;expires=0"],
        vec!["Contact: *", "Expires: 0"],
    ] {
        assert_eq!(
            registrar.handle_register(start, &alice("c1", 3, &extra), ALICE, udp(), Protocol::Udp),
            Err(RegisterError::OutOfOrder)
        );
    }
    assert!(registrar.is_registered(start, ALICE));
    // A higher CSeq refreshes it.
    let later = start + Duration::from_secs(100);
    registrar
        .handle_register(
            later,
            &alice("c1", 6, &[contact, "Expires: 600"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    assert_eq!(
        registrar.lookup(later, ALICE)[0].expires_at,
        later + Duration::from_secs(600)
    );
    // Another Call-ID may use any CSeq (RFC 3261 §10.3 step 7 compares within one).
    registrar
        .handle_register(
            later,
            &alice("c2", 1, &[contact, "Expires: 900"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    let bindings = registrar.lookup(later, ALICE);
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].expires_at, later + Duration::from_secs(900));
    assert_eq!(bindings[0].call_id, "c2");
    assert_eq!(registrar.stats().refreshed, 2);
}

#[test]
fn bindings_are_bounded_per_user_and_in_all() {
    let start = Instant::now();
    let registrar = registrar();
    let three = "Contact: <sip:a1@192.0.2.10>, <sip:a2@192.0.2.10>, <sip:a3@192.0.2.10>";
    registrar
        .handle_register(
            start,
            &alice("c1", 1, &[three]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    let error = registrar
        .handle_register(
            start,
            &alice("c1", 2, &["Contact: <sip:a4@192.0.2.10>"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap_err();
    assert_eq!(error, RegisterError::TooManyForUser);
    assert_eq!(error.status().as_u16(), 403);
    // Refreshing one of the three is still fine.
    registrar
        .handle_register(
            start,
            &alice("c1", 3, &["Contact: <sip:a1@192.0.2.10>"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    // The registrar holds 5 bindings at most.
    registrar
        .handle_register(
            start,
            &bob(
                "c2",
                1,
                &["Contact: <sip:b1@192.0.2.11>, <sip:b2@192.0.2.11>"],
            ),
            BOB,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    let error = registrar
        .handle_register(
            start,
            &register(
                "carol",
                "sbc.test",
                "c3",
                1,
                &["Contact: <sip:c@192.0.2.12>"],
            ),
            "sip:carol@sbc.test",
            udp(),
            Protocol::Udp,
        )
        .unwrap_err();
    assert_eq!(error, RegisterError::Full);
    assert_eq!(error.status().as_u16(), 503);
    assert_eq!(registrar.len(), 5);
    // Room comes back as bindings lapse.
    let later = start + Duration::from_secs(1801);
    registrar
        .handle_register(
            later,
            &register(
                "carol",
                "sbc.test",
                "c3",
                2,
                &["Contact: <sip:c@192.0.2.12>"],
            ),
            "sip:carol@sbc.test",
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    assert_eq!(registrar.len(), 1);
}

#[test]
fn a_user_cannot_touch_another_users_bindings() {
    let start = Instant::now();
    let registrar = registrar();
    let phone = Peer::reliable(addr(PHONE), Some(11));
    registrar
        .handle_register(
            start,
            &alice("c1", 1, &["Contact: <sip:shared@192.0.2.10>"]),
            ALICE,
            phone,
            Protocol::Tcp,
        )
        .unwrap();
    // Bob (authenticated as bob, so his REGISTER is for his own address of record)
    // registers the very same contact URI from elsewhere and then removes "it", even
    // with `*`: alice's binding, its flow and its expiry are untouched.
    let elsewhere = Peer::reliable(addr("192.0.2.66:40000"), Some(12));
    registrar
        .handle_register(
            start,
            &bob("c1", 2, &["Contact: <sip:shared@192.0.2.10>"]),
            BOB,
            elsewhere,
            Protocol::Tcp,
        )
        .unwrap();
    registrar
        .handle_register(
            start,
            &bob("c1", 3, &["Contact: <sip:shared@192.0.2.10>;expires=0"]),
            BOB,
            elsewhere,
            Protocol::Tcp,
        )
        .unwrap();
    registrar
        .handle_register(
            start,
            &bob("c1", 4, &["Contact: *", "Expires: 0"]),
            BOB,
            elsewhere,
            Protocol::Tcp,
        )
        .unwrap();
    let bindings = registrar.lookup(start, ALICE);
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].source, addr(PHONE));
    assert_eq!(bindings[0].flow, Some(11));
    assert!(registrar.is_bound_flow(start, ALICE, &phone));
    assert!(!registrar.is_bound_flow(start, ALICE, &elsewhere));
    assert!(!registrar.is_registered(start, BOB));
}

#[test]
fn each_binding_keeps_its_flow_path_and_user_agent() {
    let start = Instant::now();
    let registrar = registrar();
    let tls = Peer::reliable(addr("192.0.2.10:40123"), Some(42));
    let request = alice(
        "c1",
        1,
        &[
            "Contact: \"Alice\" <sip:alice@10.0.0.5:5061;transport=tls>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";q=0.7",
            "Path: <sip:edge1.example;lr>",
            "Path: <sip:edge2.example;lr>",
            "User-Agent: Phone/1.0",
        ],
    );
    let bindings = registrar
        .handle_register(start, &request, ALICE, tls, Protocol::Tls)
        .unwrap();
    let binding = &bindings[0];
    assert_eq!(binding.source, addr("192.0.2.10:40123"));
    assert_eq!(binding.protocol, Protocol::Tls);
    assert_eq!(binding.flow, Some(42));
    assert_eq!(binding.peer(), tls);
    assert_eq!(
        binding.path,
        vec!["<sip:edge1.example;lr>", "<sip:edge2.example;lr>"]
    );
    assert_eq!(binding.user_agent.as_deref(), Some(&b"Phone/1.0"[..]));
    assert_eq!(
        binding.instance.as_deref(),
        Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>")
    );
    assert_eq!(binding.reg_id, None);
    // What a call to alice needs: the Contact URI as Request-URI, the Path as route set,
    // the flow.
    let contact = binding.registered_contact();
    assert!(matches!(&contact.uri, Uri::Sip(sip) if sip.host.to_string() == "10.0.0.5:5061"));
    assert_eq!(contact.path.len(), 2);
    assert_eq!(contact.flow, Some(42));
    // The contact's other parameters are kept (q, +sip.instance), `expires` is not.
    let value = String::from_utf8_lossy(&contact_values(&bindings, start)[0]).into_owned();
    assert!(
        value.contains("q=0.7") && value.contains("+sip.instance"),
        "{value}"
    );
    assert!(value.ends_with(";expires=1800"), "{value}");
}

#[test]
fn an_outbound_instance_and_reg_id_replace_the_flow_they_registered_before() {
    let start = Instant::now();
    let registrar = registrar();
    let instance = "+sip.instance=\"<urn:uuid:11111111-2222-3333-4444-555555555555>\"";
    let first_flow = Peer::reliable(addr("192.0.2.10:40001"), Some(1));
    registrar
        .handle_register(
            start,
            &alice(
                "c1",
                1,
                &[&format!(
                    "Contact: <sip:alice@10.0.0.5:40001;transport=tcp>;{instance};reg-id=1"
                )],
            ),
            ALICE,
            first_flow,
            Protocol::Tcp,
        )
        .unwrap();
    // The phone's connection broke; it reconnects (new port, new connection) and
    // registers the same instance and reg-id with a new contact: the old flow is
    // replaced, not added to.
    let second_flow = Peer::reliable(addr("192.0.2.10:40002"), Some(2));
    let bindings = registrar
        .handle_register(
            start + Duration::from_secs(5),
            &alice(
                "c1",
                2,
                &[&format!(
                    "Contact: <sip:alice@10.0.0.5:40002;transport=tcp>;{instance};reg-id=1"
                )],
            ),
            ALICE,
            second_flow,
            Protocol::Tcp,
        )
        .unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].flow, Some(2));
    assert_eq!(bindings[0].reg_id, Some(1));
    assert!(!registrar.is_bound_flow(start, ALICE, &first_flow));
    assert!(registrar.is_bound_flow(start, ALICE, &second_flow));
    // A second reg-id of the same instance is a second flow (RFC 5626 redundancy).
    let backup = Peer::reliable(addr("192.0.2.10:40003"), Some(3));
    let bindings = registrar
        .handle_register(
            start + Duration::from_secs(6),
            &alice(
                "c1",
                3,
                &[&format!(
                    "Contact: <sip:alice@10.0.0.5:40003;transport=tcp>;{instance};reg-id=2"
                )],
            ),
            ALICE,
            backup,
            Protocol::Tcp,
        )
        .unwrap();
    assert_eq!(bindings.len(), 2);
    // The most recent registration comes first in a lookup.
    let found = registrar.lookup(start + Duration::from_secs(7), ALICE);
    assert_eq!(found[0].flow, Some(3));
    assert_eq!(found[1].flow, Some(2));
    // Without an instance, a new contact URI is simply another binding.
    registrar
        .handle_register(
            start,
            &alice(
                "c1",
                4,
                &["Contact: <sip:alice@10.0.0.5:40004;transport=tcp>;reg-id=1"],
            ),
            ALICE,
            backup,
            Protocol::Tcp,
        )
        .unwrap();
    assert_eq!(registrar.lookup(start, ALICE).len(), 3);
}

#[test]
fn every_change_is_queued_for_persistence_and_restored_bindings_come_back() {
    let start = Instant::now();
    let registrar = registrar();
    registrar
        .handle_register(
            start,
            &alice("c1", 1, &["Contact: <sip:a@192.0.2.10>"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    registrar
        .handle_register(
            start,
            &alice("c1", 2, &["Contact: <sip:a@192.0.2.10>", "Expires: 300"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    registrar
        .handle_register(
            start,
            &alice("c1", 3, &["Contact: <sip:a@192.0.2.10>", "Expires: 0"]),
            ALICE,
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    let changes = changes(&registrar);
    assert_eq!(changes.len(), 3);
    let BindingChange::Bound(first) = &changes[0] else {
        panic!("{changes:?}")
    };
    let BindingChange::Bound(refreshed) = &changes[1] else {
        panic!("{changes:?}")
    };
    assert_eq!(refreshed.cseq, 2);
    assert!(matches!(&changes[2], BindingChange::Removed { aor, .. } if aor == ALICE));

    // A new registrar (a restart) takes the persisted binding back once, if it is live.
    let restarted = Registrar::new(RegistrarConfig::default());
    assert!(restarted.restore(start, (**first).clone()));
    assert!(!restarted.restore(start, (**first).clone()));
    let mut lapsed = (**first).clone();
    lapsed.contact_text = "sip:old@192.0.2.10".into();
    lapsed.expires_at = start;
    assert!(!restarted.restore(start, lapsed));
    assert_eq!(restarted.len(), 1);
    // Restoring is not a change to persist again.
    assert!(restarted.poll_change().is_none());
}
