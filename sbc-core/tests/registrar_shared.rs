//! The registrar shared by several shards at once (threads on one `Registrar`, no lock
//! around it): counts stay exact, the limit on bindings holds under racing REGISTERs,
//! every change reaches the persistence queue in order per user, a full queue asks for a
//! resync from a snapshot, and lapsed bindings of idle users are swept by whoever comes
//! next.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_support;

use std::collections::HashMap;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use policy_support::{addr, register};
use sbc_core::net::Protocol;
use sbc_core::registrar::{
    BindingChange, RegisterError, Registrar, RegistrarConfig, SWEEP_INTERVAL,
};
use sbc_core::sip::Request;
use sbc_core::transaction::Peer;

const SHARDS: usize = 4;

fn config(max_bindings: usize) -> RegistrarConfig {
    RegistrarConfig {
        min_expires: Duration::from_secs(60),
        max_expires: Duration::from_secs(3600),
        default_expires: Duration::from_secs(1800),
        max_bindings_per_aor: 3,
        max_bindings,
    }
}

fn udp() -> Peer {
    Peer::unreliable(addr("192.0.2.10:5060"))
}

fn aor(user: usize) -> String {
    format!("sip:u{user}@sbc.test")
}

fn register_user(user: usize, cseq: u32, extra: &[&str]) -> Request {
    let contact = format!("Contact: <sip:u{user}@192.0.2.10>");
    let mut lines = vec![contact.as_str()];
    lines.extend_from_slice(extra);
    register(
        &format!("u{user}"),
        "sbc.test",
        &format!("reg-{user}"),
        cseq,
        &lines,
    )
}

fn drain(registrar: &Registrar) -> Vec<BindingChange> {
    std::iter::from_fn(|| registrar.poll_change()).collect()
}

#[test]
fn shards_registering_refreshing_and_looking_up_at_once_keep_exact_counts() {
    let now = Instant::now();
    let registrar = Registrar::new(config(10_000));
    let users_per_shard = 250;
    let start = Barrier::new(SHARDS);
    std::thread::scope(|scope| {
        for shard in 0..SHARDS {
            let (registrar, start) = (&registrar, &start);
            scope.spawn(move || {
                start.wait();
                let mine = (shard * users_per_shard)..((shard + 1) * users_per_shard);
                for cseq in 1..=3 {
                    for user in mine.clone() {
                        registrar
                            .handle_register(
                                now,
                                &register_user(user, cseq, &[]),
                                &aor(user),
                                udp(),
                                Protocol::Udp,
                            )
                            .unwrap();
                        // A call to somebody else's user, registered or not yet.
                        let other = (user * 7 + shard) % (SHARDS * users_per_shard);
                        let _ = registrar.lookup(now, &aor(other));
                    }
                }
            });
        }
    });
    let users = SHARDS * users_per_shard;
    assert_eq!(registrar.len(), users);
    let stats = registrar.stats();
    assert_eq!(
        (stats.registered, stats.refreshed),
        (users as u64, 2 * users as u64)
    );
    assert_eq!(stats.refused, 0);
    for user in 0..users {
        assert_eq!(registrar.lookup(now, &aor(user)).len(), 1, "user {user}");
    }
    // Every change was queued, and each user's in the order they were made.
    let mut last_cseq: HashMap<String, u32> = HashMap::new();
    let changes = drain(&registrar);
    assert_eq!(changes.len(), 3 * users);
    for change in changes {
        let BindingChange::Bound(binding) = change else {
            panic!("only bindings were made: {change:?}")
        };
        let previous = last_cseq
            .insert(binding.aor.clone(), binding.cseq)
            .unwrap_or(0);
        assert_eq!(binding.cseq, previous + 1, "{}", binding.aor);
    }
    assert_eq!(registrar.snapshot(now).len(), users);
    assert!(!registrar.poll_resync());
}

#[test]
fn racing_registers_never_exceed_the_limit_on_bindings() {
    let now = Instant::now();
    let limit = 150;
    let registrar = Registrar::new(config(limit));
    let start = Barrier::new(SHARDS);
    let outcomes: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..SHARDS)
            .map(|shard| {
                let (registrar, start) = (&registrar, &start);
                scope.spawn(move || {
                    start.wait();
                    let (mut bound, mut full) = (0, 0);
                    for user in (shard * 100)..((shard + 1) * 100) {
                        match registrar.handle_register(
                            now,
                            &register_user(user, 1, &[]),
                            &aor(user),
                            udp(),
                            Protocol::Udp,
                        ) {
                            Ok(_) => bound += 1,
                            Err(RegisterError::Full) => full += 1,
                            Err(error) => panic!("user {user}: {error:?}"),
                        }
                    }
                    (bound, full)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let bound: usize = outcomes.iter().map(|(bound, _)| bound).sum();
    let full: usize = outcomes.iter().map(|(_, full)| full).sum();
    assert_eq!((bound, full), (limit, SHARDS * 100 - limit));
    assert_eq!(registrar.len(), limit);
    assert_eq!(registrar.snapshot(now).len(), limit);
    assert_eq!(registrar.stats().refused, full as u64);
}

#[test]
fn a_full_change_queue_asks_for_a_resync_from_a_snapshot() {
    let now = Instant::now();
    let registrar = Registrar::with_change_queue(config(100), 4);
    for user in 0..10 {
        registrar
            .handle_register(
                now,
                &register_user(user, 1, &[]),
                &aor(user),
                udp(),
                Protocol::Udp,
            )
            .unwrap();
    }
    // The REGISTERs were all answered; four changes were kept, the others dropped.
    assert_eq!(registrar.len(), 10);
    assert_eq!(drain(&registrar).len(), 4);
    assert!(registrar.poll_resync());
    let mut snapshot: Vec<String> = registrar
        .snapshot(now)
        .into_iter()
        .map(|binding| binding.aor)
        .collect();
    snapshot.sort();
    let mut expected: Vec<String> = (0..10).map(aor).collect();
    expected.sort();
    assert_eq!(snapshot, expected);
    // Asked once; the next change is queued again.
    assert!(!registrar.poll_resync());
    registrar
        .handle_register(
            now,
            &register_user(0, 2, &["Expires: 0"]),
            &aor(0),
            udp(),
            Protocol::Udp,
        )
        .unwrap();
    assert!(matches!(
        drain(&registrar).as_slice(),
        [BindingChange::Removed { aor: removed, .. }] if *removed == aor(0)
    ));
    assert_eq!(registrar.len(), 9);
}

#[test]
fn lapsed_bindings_of_idle_users_are_swept_by_the_next_operation() {
    let start = Instant::now();
    let registrar = Registrar::new(config(100));
    for user in 0..5 {
        registrar
            .handle_register(
                start,
                &register_user(user, 1, &["Expires: 60"]),
                &aor(user),
                udp(),
                Protocol::Udp,
            )
            .unwrap();
    }
    assert_eq!(registrar.len(), 5);
    assert_eq!(drain(&registrar).len(), 5);
    // Nobody asks for these users again: a lookup of somebody else, once a sweep is
    // due, drops them all.
    let lapsed = start + Duration::from_secs(61) + SWEEP_INTERVAL;
    assert!(registrar.lookup(lapsed, "sip:nobody@sbc.test").is_empty());
    assert!(registrar.is_empty());
    assert_eq!(registrar.stats().expired, 5);
    assert!(registrar.snapshot(lapsed).is_empty());
    // Expiry is not a change to persist (the store drops its own lapsed rows).
    assert!(registrar.poll_change().is_none());
}
