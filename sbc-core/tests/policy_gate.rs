//! The admission gate (`policy::gate`) on a virtual clock: every check, the order in
//! which they meet a message, bans and their expiry, automatic bans after failed
//! authentications, and the bounds of every table.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sbc_core::net::Protocol;
use sbc_core::policy::{
    Acl, AclAction, AclRule, Admission, Cidr, Gate, GateConfig, GateEvent, ListenerRule, Rate,
    RateLimits, TrunkSources,
};

const LISTENER: &str = "203.0.113.1:5060";
const TRUNK_LISTENER: &str = "203.0.113.1:5070";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn net(text: &str) -> Cidr {
    text.parse().unwrap()
}

fn request(method: &str, user_agent: Option<&str>) -> Vec<u8> {
    let agent = user_agent.map_or_else(String::new, |ua| format!("User-Agent: {ua}\r\n"));
    format!(
        "{method} sip:100@203.0.113.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
         From: <sip:a@x>;tag=1\r\nTo: <sip:100@x>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n\
         {agent}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn invite() -> Vec<u8> {
    request("INVITE", None)
}

/// A gate with one open listener, one trunk-only listener whose ACL refuses
/// 198.51.100.0/24 except nothing, a trunk at 192.0.2.200, and generous rates.
fn config() -> GateConfig {
    GateConfig {
        listeners: vec![
            ListenerRule {
                local: addr(LISTENER),
                protocol: None,
                acls: vec![Acl::from_lists(&[], &[net("198.51.100.0/24")])],
                trunks_only: false,
            },
            ListenerRule {
                local: addr(TRUNK_LISTENER),
                protocol: None,
                acls: Vec::new(),
                trunks_only: true,
            },
        ],
        rates: Some(RateLimits {
            register: Rate {
                per_second: 1,
                burst: 2,
            },
            invite: Rate {
                per_second: 1,
                burst: 3,
            },
            other: Rate {
                per_second: 1,
                burst: 4,
            },
        }),
        max_sources: 100,
        ban_duration: Duration::from_secs(60),
        max_auth_failures: 3,
        failure_window: Duration::from_secs(30),
        max_bans: 100,
        ..GateConfig::default()
    }
}

fn gate(start: Instant) -> Gate {
    let mut gate = Gate::new(config(), start);
    gate.set_trunk_sources(vec![TrunkSources::new(
        vec![net("192.0.2.200")],
        Vec::new(),
    )]);
    gate
}

fn admit(gate: &mut Gate, now: Instant, bytes: &[u8], source: &str, local: &str) -> Admission {
    gate.admit(now, bytes, addr(source), addr(local), Protocol::Udp)
}

#[test]
fn a_clean_request_passes_and_is_counted() {
    let start = Instant::now();
    let mut gate = gate(start);
    assert_eq!(
        admit(&mut gate, start, &invite(), "192.0.2.1:5060", LISTENER),
        Admission::Pass
    );
    let stats = gate.stats();
    assert_eq!(stats.passed, 1);
    assert!(stats.dropped.is_empty());
    assert_eq!(stats.active_bans, 0);
}

#[test]
fn the_listener_acl_drops_denied_sources() {
    let start = Instant::now();
    let mut gate = gate(start);
    assert_eq!(
        admit(&mut gate, start, &invite(), "198.51.100.7:5060", LISTENER),
        Admission::Drop("acl_denied")
    );
    // The ACL belongs to its listener only.
    assert_eq!(
        admit(
            &mut gate,
            start,
            &invite(),
            "198.51.100.7:5060",
            "203.0.113.1:5090"
        ),
        Admission::Pass
    );
    assert_eq!(gate.stats().dropped.get("acl_denied"), Some(&1));
}

#[test]
fn a_wildcard_listener_rule_covers_every_local_address_on_its_port() {
    let start = Instant::now();
    let mut gate = Gate::new(
        GateConfig {
            listeners: vec![ListenerRule {
                local: addr("0.0.0.0:5060"),
                protocol: None,
                acls: vec![Acl::from_lists(&[net("10.0.0.0/8")], &[])],
                trunks_only: false,
            }],
            rates: None,
            ..GateConfig::default()
        },
        start,
    );
    assert_eq!(
        gate.admit(
            start,
            &invite(),
            addr("192.0.2.1:5060"),
            addr("203.0.113.9:5060"),
            Protocol::Udp,
        ),
        Admission::Drop("acl_denied")
    );
    assert_eq!(
        gate.admit(
            start,
            &invite(),
            addr("10.1.2.3:5060"),
            addr("203.0.113.9:5060"),
            Protocol::Udp,
        ),
        Admission::Pass
    );
    // Another port is another listener.
    assert_eq!(
        gate.admit(
            start,
            &invite(),
            addr("192.0.2.1:5060"),
            addr("203.0.113.9:5061"),
            Protocol::Udp,
        ),
        Admission::Pass
    );
}

#[test]
fn a_trunk_only_listener_drops_everyone_else_without_looking_further() {
    let start = Instant::now();
    let mut gate = gate(start);
    assert_eq!(
        admit(
            &mut gate,
            start,
            &invite(),
            "192.0.2.200:5060",
            TRUNK_LISTENER
        ),
        Admission::Pass
    );
    assert_eq!(
        admit(
            &mut gate,
            start,
            &invite(),
            "192.0.2.1:5060",
            TRUNK_LISTENER
        ),
        Admission::Drop("not_a_trunk")
    );
    // Even a scanner is only dropped there: its User-Agent is never read, so no ban.
    let scan = request("OPTIONS", Some("friendly-scanner"));
    assert_eq!(
        admit(&mut gate, start, &scan, "192.0.2.1:5060", TRUNK_LISTENER),
        Admission::Drop("not_a_trunk")
    );
    assert_eq!(gate.stats().active_bans, 0);
    // Garbage that is not even a request line is dropped the same way.
    assert_eq!(
        admit(
            &mut gate,
            start,
            b"\x00\x01garbage",
            "192.0.2.1:5060",
            TRUNK_LISTENER
        ),
        Admission::Drop("not_a_trunk")
    );
}

#[test]
fn a_scanner_user_agent_bans_its_source_at_once() {
    let start = Instant::now();
    let mut gate = gate(start);
    let agents = [
        "friendly-scanner",
        "SIPVicious 0.3.3",
        "sundayddr",
        "VaxSIPUserAgent/3.1",
    ];
    for (n, agent) in agents.into_iter().enumerate() {
        let source = format!("192.0.2.{}:5060", n + 1);
        assert_eq!(
            admit(
                &mut gate,
                start,
                &request("OPTIONS", Some(agent)),
                &source,
                LISTENER
            ),
            Admission::Drop("scanner"),
            "{agent}"
        );
        // From then on everything from it is dropped as banned, whatever it says.
        assert_eq!(
            admit(&mut gate, start, &invite(), &source, LISTENER),
            Admission::Drop("banned"),
            "{agent}"
        );
    }
    let stats = gate.stats();
    assert_eq!(stats.bans_added.get("scanner"), Some(&4));
    assert_eq!(stats.active_bans, 4);
    // Each automatic ban is reported for persistence.
    let mut events = 0;
    while let Some(GateEvent::Banned {
        reason,
        duration,
        automatic,
        ..
    }) = gate.poll_event()
    {
        assert_eq!(reason, "scanner");
        assert_eq!(duration, Some(Duration::from_secs(60)));
        assert!(automatic);
        events += 1;
    }
    assert_eq!(events, 4);
}

#[test]
fn user_agents_are_matched_only_where_they_belong() {
    let start = Instant::now();
    let mut gate = gate(start);
    // A response naming a scanner (in Server or User-Agent) bans nobody.
    let response = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bK1\r\n\
        User-Agent: friendly-scanner\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
    assert_eq!(
        admit(&mut gate, start, response, "192.0.2.1:5060", LISTENER),
        Admission::Pass
    );
    // The word in a body is not a header.
    let body = b"MESSAGE sip:a@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2\r\n\
        Call-ID: d\r\nCSeq: 1 MESSAGE\r\nContent-Length: 29\r\n\r\nUser-Agent: friendly-scanner\n";
    assert_eq!(
        admit(&mut gate, start, body, "192.0.2.1:5060", LISTENER),
        Admission::Pass
    );
    // An ordinary phone passes; the header name and value are case-insensitive.
    let lower_case = b"OPTIONS sip:a@x SIP/2.0\r\nuser-agent: Friendly-Scanner\r\n\r\n";
    assert_eq!(
        admit(
            &mut gate,
            start,
            &request("OPTIONS", Some("baresip v1.0")),
            "192.0.2.1:5060",
            LISTENER
        ),
        Admission::Pass
    );
    assert_eq!(
        admit(&mut gate, start, lower_case, "192.0.2.2:5060", LISTENER),
        Admission::Drop("scanner")
    );
    // A trunk is never taken for a scanner (it relays many user agents).
    assert_eq!(
        admit(
            &mut gate,
            start,
            &request("INVITE", Some("sipvicious")),
            "192.0.2.200:5060",
            LISTENER
        ),
        Admission::Pass
    );
    // Scanner detection can be switched off.
    let mut quiet = Gate::new(
        GateConfig {
            scanner_user_agents: Vec::new(),
            rates: None,
            ..GateConfig::default()
        },
        start,
    );
    assert_eq!(
        quiet.admit(
            start,
            &request("OPTIONS", Some("friendly-scanner")),
            addr("192.0.2.3:5060"),
            addr(LISTENER),
            Protocol::Udp
        ),
        Admission::Pass
    );
}

#[test]
fn rate_limits_have_separate_budgets_per_kind_and_source() {
    let start = Instant::now();
    let mut gate = gate(start);
    let source = "192.0.2.1:5060";
    let passes = |gate: &mut Gate, method: &str, now: Instant, n: usize| {
        (0..n)
            .filter(|_| {
                admit(gate, now, &request(method, None), source, LISTENER) == Admission::Pass
            })
            .count()
    };
    assert_eq!(passes(&mut gate, "REGISTER", start, 10), 2);
    assert_eq!(passes(&mut gate, "INVITE", start, 10), 3);
    assert_eq!(passes(&mut gate, "OPTIONS", start, 10), 4);
    assert_eq!(gate.stats().dropped.get("rate_limited"), Some(&21));
    // Another source has its own budgets.
    assert_eq!(
        admit(&mut gate, start, &invite(), "192.0.2.2:5060", LISTENER),
        Admission::Pass
    );
    // One second refills one token of each.
    let later = start + Duration::from_secs(1);
    assert_eq!(passes(&mut gate, "INVITE", later, 5), 1);
    // Responses spend the "other" budget, so a flood of them is limited too.
    let response = b"SIP/2.0 180 Ringing\r\nCall-ID: c\r\n\r\n";
    let passed = (0..10)
        .filter(|_| {
            admit(&mut gate, later, response, "192.0.2.9:5060", LISTENER) == Admission::Pass
        })
        .count();
    assert_eq!(passed, 4);
    // Trunks are exempt: they carry many callers.
    let trunk = (0..50)
        .filter(|_| {
            admit(&mut gate, start, &invite(), "192.0.2.200:5060", LISTENER) == Admission::Pass
        })
        .count();
    assert_eq!(trunk, 50);
}

#[test]
fn rate_limits_can_be_switched_off() {
    let start = Instant::now();
    let mut gate = Gate::new(
        GateConfig {
            rates: None,
            ..GateConfig::default()
        },
        start,
    );
    let passed = (0..1_000)
        .filter(|_| {
            gate.admit(
                start,
                &invite(),
                addr("192.0.2.1:5060"),
                addr(LISTENER),
                Protocol::Udp,
            ) == Admission::Pass
        })
        .count();
    assert_eq!(passed, 1_000);
}

/// The order of the checks: ban, ACL, trunk-only, scanner, rate. Each message below
/// fails several checks and must be dropped for the first one.
#[test]
fn the_checks_meet_a_message_cheapest_first() {
    let start = Instant::now();
    let mut gate = gate(start);
    // Banned and refused by the ACL: banned.
    assert!(gate.ban(start, net("198.51.100.7"), "operator", None));
    assert_eq!(
        admit(&mut gate, start, &invite(), "198.51.100.7:5060", LISTENER),
        Admission::Drop("banned")
    );
    // Refused by the ACL and a scanner: acl_denied, and no ban is added.
    assert_eq!(
        admit(
            &mut gate,
            start,
            &request("OPTIONS", Some("friendly-scanner")),
            "198.51.100.8:5060",
            LISTENER
        ),
        Admission::Drop("acl_denied")
    );
    assert!(gate.ban_of(net("198.51.100.8")).is_none());
    // A scanner out of budget: scanner (banned), not rate_limited.
    let source = "192.0.2.50:5060";
    for _ in 0..3 {
        let _ = admit(&mut gate, start, &invite(), source, LISTENER);
    }
    assert_eq!(
        admit(&mut gate, start, &invite(), source, LISTENER),
        Admission::Drop("rate_limited")
    );
    assert_eq!(
        admit(
            &mut gate,
            start,
            &request("INVITE", Some("sipcli/v1.8")),
            source,
            LISTENER
        ),
        Admission::Drop("scanner")
    );
    assert!(gate.ban_of(net("192.0.2.50")).is_some());
}

#[test]
fn bans_expire_on_the_clock_and_can_be_lifted() {
    let start = Instant::now();
    let mut gate = gate(start);
    let scan = request("OPTIONS", Some("friendly-scanner"));
    assert_eq!(
        admit(&mut gate, start, &scan, "192.0.2.1:5060", LISTENER),
        Admission::Drop("scanner")
    );
    let just_before = start + Duration::from_secs(59);
    assert_eq!(
        admit(
            &mut gate,
            just_before,
            &invite(),
            "192.0.2.1:5060",
            LISTENER
        ),
        Admission::Drop("banned")
    );
    assert_eq!(gate.ban_of(net("192.0.2.1")).map(|ban| ban.hits), Some(1));
    let after = start + Duration::from_secs(61);
    assert_eq!(
        admit(&mut gate, after, &invite(), "192.0.2.1:5060", LISTENER),
        Admission::Pass
    );
    assert_eq!(gate.stats().active_bans, 0);

    // An operator's network ban lasts until lifted, and covers the whole network.
    assert!(gate.ban(start, net("2001:db8::/32"), "abuse report", None));
    let far = start + Duration::from_secs(86_400 * 365);
    assert_eq!(
        admit(&mut gate, far, &invite(), "[2001:db8::5]:5060", LISTENER),
        Admission::Drop("banned")
    );
    assert_eq!(
        admit(&mut gate, far, &invite(), "[2001:db9::5]:5060", LISTENER),
        Admission::Pass
    );
    // Only the exact network lifts it.
    assert!(!gate.lift(net("2001:db8::5")));
    assert!(gate.lift(net("2001:db8::/32")));
    assert!(!gate.lift(net("2001:db8::/32")));
    assert_eq!(
        admit(&mut gate, far, &invite(), "[2001:db8::5]:5060", LISTENER),
        Admission::Pass
    );
    // Operator bans are counted, but not reported as events (the caller persists them).
    assert_eq!(gate.stats().bans_added.get("operator"), Some(&1));
    assert!(
        std::iter::from_fn(|| gate.poll_event())
            .all(|GateEvent::Banned { automatic, .. }| automatic)
    );
}

#[test]
fn failed_authentications_ban_a_source_within_the_window() {
    let start = Instant::now();
    let mut gate = gate(start);
    let attacker = ip("192.0.2.66");
    gate.handle_auth_failure(start, attacker);
    gate.handle_auth_failure(start + Duration::from_secs(1), attacker);
    assert_eq!(
        admit(&mut gate, start, &invite(), "192.0.2.66:5060", LISTENER),
        Admission::Pass
    );
    gate.handle_auth_failure(start + Duration::from_secs(2), attacker);
    let now = start + Duration::from_secs(2);
    assert_eq!(
        admit(&mut gate, now, &invite(), "192.0.2.66:5060", LISTENER),
        Admission::Drop("banned")
    );
    // The ban is of exactly that address.
    assert_eq!(
        admit(&mut gate, now, &invite(), "192.0.2.67:5060", LISTENER),
        Admission::Pass
    );
    let stats = gate.stats();
    assert_eq!(stats.auth_failures, 3);
    assert_eq!(stats.bans_added.get("auth_failures"), Some(&1));
    match gate.poll_event() {
        Some(GateEvent::Banned {
            network,
            reason,
            automatic,
            ..
        }) => {
            assert_eq!(network, net("192.0.2.66"));
            assert_eq!(reason, "auth_failures");
            assert!(automatic);
        }
        None => panic!("no ban event"),
    }
}

#[test]
fn failures_spread_beyond_the_window_or_interrupted_by_a_success_do_not_ban() {
    let start = Instant::now();
    let mut gate = gate(start);
    let slow = ip("192.0.2.70");
    // Two failures, then the window (30 s) passes: counting starts again.
    gate.handle_auth_failure(start, slow);
    gate.handle_auth_failure(start + Duration::from_secs(10), slow);
    gate.handle_auth_failure(start + Duration::from_secs(31), slow);
    gate.handle_auth_failure(start + Duration::from_secs(32), slow);
    assert!(gate.ban_of(net("192.0.2.70")).is_none());
    gate.handle_auth_failure(start + Duration::from_secs(33), slow);
    assert!(gate.ban_of(net("192.0.2.70")).is_some());

    // A user who mistypes twice then gets it right starts again from zero.
    let user = ip("192.0.2.71");
    gate.handle_auth_failure(start, user);
    gate.handle_auth_failure(start, user);
    gate.handle_auth_success(user);
    gate.handle_auth_failure(start, user);
    gate.handle_auth_failure(start, user);
    assert!(gate.ban_of(net("192.0.2.71")).is_none());

    // Trunks are never banned for failures.
    for _ in 0..10 {
        gate.handle_auth_failure(start, ip("192.0.2.200"));
    }
    assert!(gate.ban_of(net("192.0.2.200")).is_none());

    // Lifting a ban forgets the count too: one more failure does not ban again.
    gate.handle_auth_failure(start, ip("192.0.2.72"));
    gate.handle_auth_failure(start, ip("192.0.2.72"));
    assert!(!gate.lift(net("192.0.2.72")));
    gate.handle_auth_failure(start, ip("192.0.2.72"));
    assert!(gate.ban_of(net("192.0.2.72")).is_none());
}

#[test]
fn failure_bans_can_be_switched_off() {
    let start = Instant::now();
    let mut gate = Gate::new(
        GateConfig {
            max_auth_failures: 0,
            ..GateConfig::default()
        },
        start,
    );
    for _ in 0..100 {
        gate.handle_auth_failure(start, ip("192.0.2.1"));
    }
    assert_eq!(gate.stats().active_bans, 0);
    assert_eq!(gate.stats().auth_failures, 100);
}

#[test]
fn the_ban_table_is_bounded_and_makes_room_from_the_ban_that_lapses_first() {
    let start = Instant::now();
    let mut gate = Gate::new(
        GateConfig {
            max_bans: 10,
            rates: None,
            ban_duration: Duration::from_secs(60),
            ..GateConfig::default()
        },
        start,
    );
    let scan = request("OPTIONS", Some("friendly-scanner"));
    // 30 scanners, one a second: the table holds the 10 most recent.
    for n in 0..30u8 {
        let at = start + Duration::from_secs(u64::from(n));
        let _ = gate.admit(
            at,
            &scan,
            addr(&format!("192.0.2.{n}:5060")),
            addr(LISTENER),
            Protocol::Udp,
        );
        assert!(gate.stats().active_bans <= 10);
    }
    let now = start + Duration::from_secs(30);
    assert_eq!(gate.stats().active_bans, 10);
    assert!(gate.ban_of(net("192.0.2.29")).is_some());
    assert!(gate.ban_of(net("192.0.2.20")).is_some());
    assert!(gate.ban_of(net("192.0.2.19")).is_none());
    assert_eq!(
        gate.admit(
            now,
            &invite(),
            addr("192.0.2.29:5060"),
            addr(LISTENER),
            Protocol::Udp
        ),
        Admission::Drop("banned")
    );

    // Permanent bans are never evicted: once the table is full of them, no new ban fits.
    let mut full = Gate::new(
        GateConfig {
            max_bans: 10,
            rates: None,
            ..GateConfig::default()
        },
        start,
    );
    for n in 0..10u8 {
        assert!(full.ban(start, net(&format!("10.0.{n}.0/24")), "operator", None));
    }
    assert!(!full.ban(start, net("10.0.99.0/24"), "operator", None));
    assert_eq!(
        full.admit(
            start,
            &scan,
            addr("192.0.2.1:5060"),
            addr(LISTENER),
            Protocol::Udp
        ),
        Admission::Drop("scanner")
    );
    assert_eq!(full.stats().active_bans, 10);
    assert!(full.ban_of(net("10.0.0.0/24")).is_some());
}

#[test]
fn failure_counts_are_bounded_by_the_source_table() {
    let start = Instant::now();
    let mut gate = Gate::new(
        GateConfig {
            max_sources: 100,
            max_auth_failures: 2,
            failure_window: Duration::from_secs(10),
            rates: None,
            ..GateConfig::default()
        },
        start,
    );
    // 100 sources each fail once: the table is full of live counts.
    for n in 0..100u32 {
        gate.handle_auth_failure(start, IpAddr::from((0x0a00_0000 + n).to_be_bytes()));
    }
    // A newcomer is not tracked while the table is full (it still meets the rate
    // limits); a tracked source is still banned on its second failure.
    let newcomer = ip("192.0.2.1");
    for _ in 0..5 {
        gate.handle_auth_failure(start, newcomer);
    }
    assert!(gate.ban_of(net("192.0.2.1")).is_none());
    gate.handle_auth_failure(start, ip("10.0.0.5"));
    assert!(gate.ban_of(net("10.0.0.5")).is_some());
    // (The ban freed its slot; fill it again.)
    gate.handle_auth_failure(start, ip("10.0.1.0"));
    gate.handle_auth_failure(start, newcomer);
    assert!(gate.ban_of(net("192.0.2.1")).is_none());
    // Once the window has passed, stale counts are swept and the newcomer is counted.
    let later = start + Duration::from_secs(11);
    gate.handle_auth_failure(later, newcomer);
    gate.handle_auth_failure(later, newcomer);
    assert!(gate.ban_of(net("192.0.2.1")).is_some());
}

#[test]
fn a_spoofed_flood_from_many_sources_shares_one_overflow_budget() {
    let start = Instant::now();
    let mut gate = Gate::new(
        GateConfig {
            max_sources: 100,
            rates: Some(RateLimits {
                invite: Rate {
                    per_second: 1,
                    burst: 5,
                },
                ..RateLimits::default()
            }),
            ..GateConfig::default()
        },
        start,
    );
    // 10,000 INVITEs from 10,000 addresses in the same instant: the first 100 sources
    // get their own buckets, every later one shares the overflow bucket (5 tokens).
    let passed = (0..10_000u32)
        .filter(|n| {
            let source = SocketAddr::new(IpAddr::from((0x0a00_0000 + n).to_be_bytes()), 5060);
            gate.admit(start, &invite(), source, addr(LISTENER), Protocol::Udp) == Admission::Pass
        })
        .count();
    assert_eq!(passed, 105);
    assert_eq!(gate.stats().dropped.get("rate_limited"), Some(&9_895));
}

#[test]
fn a_nearly_full_shard_queue_sheds_new_calls_only() {
    let start = Instant::now();
    let mut gate = gate(start);
    let in_dialog = |method: &str, to: &str| {
        format!(
            "{method} sip:a@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             From: <sip:b@x>;tag=1\r\n{to}\r\nCall-ID: c\r\nCSeq: 2 {method}\r\n\r\n"
        )
        .into_bytes()
    };
    let new_call = invite();
    let reinvite = in_dialog("INVITE", "To: <sip:a@x>;tag=abc");
    let compact = in_dialog("INVITE", "t: sip:a@x;TAG=abc");
    let quoted = in_dialog("INVITE", "To: \"tag=not\" <sip:a@x>");
    let bye = in_dialog("BYE", "To: <sip:a@x>;tag=abc");
    let response = b"SIP/2.0 200 OK\r\nTo: <sip:a@x>\r\nCSeq: 1 INVITE\r\n\r\n".to_vec();
    // Room enough: everything goes on.
    for message in [&new_call, &reinvite, &bye, &response] {
        assert_eq!(gate.shed(message, 1_024, 4_096), Admission::Pass);
    }
    // Less than a quarter left: new calls are dropped, the rest goes on.
    assert_eq!(
        gate.shed(&new_call, 1_023, 4_096),
        Admission::Drop("overload")
    );
    assert_eq!(gate.shed(&quoted, 0, 4_096), Admission::Drop("overload"));
    for message in [&reinvite, &compact, &bye, &response] {
        assert_eq!(gate.shed(message, 0, 4_096), Admission::Pass);
    }
    assert_eq!(gate.stats().dropped.get("overload"), Some(&2));
}

#[test]
fn every_acl_of_a_listener_must_admit_and_rules_follow_its_transport() {
    let start = Instant::now();
    let mut gate = Gate::new(
        GateConfig {
            listeners: vec![
                ListenerRule {
                    local: addr(LISTENER),
                    protocol: Some(Protocol::Tcp),
                    acls: vec![Acl::open()],
                    trunks_only: false,
                },
                ListenerRule {
                    local: addr(LISTENER),
                    protocol: Some(Protocol::Udp),
                    acls: vec![
                        // The configuration file's: 10/8 only.
                        Acl::from_lists(&[net("10.0.0.0/8"), net("2001:db8::/32")], &[]),
                        // An ACL object: the first matching rule decides.
                        Acl {
                            rules: vec![
                                AclRule {
                                    action: AclAction::Allow,
                                    network: net("10.1.1.1"),
                                },
                                AclRule {
                                    action: AclAction::Deny,
                                    network: net("10.1.0.0/16"),
                                },
                                AclRule {
                                    action: AclAction::Deny,
                                    network: net("2001:db8:bad::/48"),
                                },
                            ],
                            default: AclAction::Allow,
                        },
                    ],
                    trunks_only: false,
                },
            ],
            rates: None,
            ..GateConfig::default()
        },
        start,
    );
    let udp = |gate: &mut Gate, source: &str| {
        gate.admit(
            start,
            &invite(),
            addr(source),
            addr(LISTENER),
            Protocol::Udp,
        )
    };
    assert_eq!(udp(&mut gate, "10.2.0.1:5060"), Admission::Pass);
    assert_eq!(udp(&mut gate, "10.1.1.1:5060"), Admission::Pass);
    assert_eq!(
        udp(&mut gate, "10.1.1.2:5060"),
        Admission::Drop("acl_denied")
    );
    assert_eq!(
        udp(&mut gate, "192.0.2.1:5060"),
        Admission::Drop("acl_denied")
    );
    assert_eq!(udp(&mut gate, "[2001:db8::1]:5060"), Admission::Pass);
    assert_eq!(
        udp(&mut gate, "[2001:db8:bad::1]:5060"),
        Admission::Drop("acl_denied")
    );
    // The TCP listener on the same address has its own (open) rule.
    assert_eq!(
        gate.admit(
            start,
            &invite(),
            addr("192.0.2.1:5060"),
            addr(LISTENER),
            Protocol::Tcp
        ),
        Admission::Pass
    );
    // Replaced at run time: the UDP listener's ACLs are gone.
    gate.set_listeners(Vec::new());
    assert_eq!(udp(&mut gate, "192.0.2.1:5060"), Admission::Pass);
    assert_eq!(gate.stats().dropped.get("acl_denied"), Some(&3));
}

#[test]
fn trunk_sources_follow_the_trunks_acls() {
    let start = Instant::now();
    let mut gate = gate(start);
    let trunk_only = |gate: &mut Gate, source: &str| {
        gate.admit(
            start,
            &invite(),
            addr(source),
            addr(TRUNK_LISTENER),
            Protocol::Udp,
        )
    };
    assert_eq!(trunk_only(&mut gate, "192.0.2.200:5060"), Admission::Pass);
    assert_eq!(
        trunk_only(&mut gate, "198.51.100.20:5060"),
        Admission::Drop("not_a_trunk")
    );
    // An ACL object adds a network to the trunk and takes its target away.
    gate.set_trunk_sources(vec![TrunkSources::new(
        vec![net("192.0.2.200")],
        vec![Acl {
            rules: vec![
                AclRule::deny(net("192.0.2.200")),
                AclRule::allow(net("198.51.100.0/24")),
            ],
            default: AclAction::Deny,
        }],
    )]);
    assert!(gate.is_trunk_source(ip("198.51.100.20")));
    assert!(!gate.is_trunk_source(ip("192.0.2.200")));
    assert_eq!(trunk_only(&mut gate, "198.51.100.20:5060"), Admission::Pass);
    assert_eq!(
        trunk_only(&mut gate, "192.0.2.200:5060"),
        Admission::Drop("not_a_trunk")
    );
}
