//! The routing table: configuration checks, route matching, source trunks, failover order
//! (RFC 2782) and target state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;

use sbc_core::net::Protocol;
use sbc_core::routing::{
    HeaderPolicy, KeepAlive, ResolvedTarget, Route, RoutingConfigError, RoutingTable, TargetHost,
    TargetSpec, Trunk, TrunkId,
};
use sbc_core::sip::Uri;

const CARRIER: TrunkId = TrunkId(1);
const PBX: TrunkId = TrunkId(2);
const BACKUP: TrunkId = TrunkId(3);

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn uri(text: &str) -> Uri {
    Uri::parse(text.as_bytes()).unwrap()
}

fn target(host: &str, port: Option<u16>, priority: u16, weight: u16) -> TargetSpec {
    TargetSpec {
        priority,
        weight,
        ..TargetSpec::new(TargetHost::parse(host), port, None)
    }
}

fn trunk(id: TrunkId, name: &str, targets: Vec<TargetSpec>) -> Trunk {
    Trunk {
        id,
        name: name.into(),
        targets,
        trusted: true,
        headers: HeaderPolicy::pass_all(),
        keep_alive: None,
    }
}

fn route(name: &str, to: TrunkId) -> Route {
    Route {
        name: name.into(),
        match_source_trunk: None,
        match_user_prefix: None,
        match_domain: None,
        to_trunk: to,
    }
}

fn resolved(addr_text: &str, priority: u16, weight: u16) -> ResolvedTarget {
    ResolvedTarget {
        addr: addr(addr_text),
        protocol: Protocol::Udp,
        server_name: Some("carrier.example".into()),
        priority,
        weight,
    }
}

/// A seeded splitmix64: deterministic, well spread.
fn seeded(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn standard_table() -> RoutingTable {
    let trunks = vec![
        trunk(CARRIER, "carrier", vec![target("192.0.2.10", None, 10, 0)]),
        trunk(PBX, "pbx", vec![target("198.51.100.7", Some(5080), 10, 0)]),
        trunk(BACKUP, "backup", vec![target("203.0.113.1", None, 10, 0)]),
    ];
    let routes = vec![
        Route {
            match_source_trunk: Some(CARRIER),
            ..route("from-carrier", PBX)
        },
        Route {
            match_user_prefix: Some("+4420".into()),
            match_domain: Some("sbc.example.net".into()),
            ..route("london", BACKUP)
        },
        Route {
            match_user_prefix: Some("+44".into()),
            ..route("uk", CARRIER)
        },
        Route {
            match_domain: Some("*.pbx.example".into()),
            ..route("pbx-domains", PBX)
        },
    ];
    RoutingTable::new(trunks, routes).unwrap()
}

#[test]
fn the_first_route_whose_criteria_all_match_wins() {
    let table = standard_table();
    // Source trunk alone decides the first route.
    assert_eq!(
        table.route(Some(CARRIER), &uri("sip:+4420@sbc.example.net")),
        Some(PBX)
    );
    // Prefix and domain both needed for "london".
    assert_eq!(
        table.route(None, &uri("sip:+44207@sbc.example.net")),
        Some(BACKUP)
    );
    assert_eq!(
        table.route(None, &uri("sip:+44207@other.example")),
        Some(CARRIER)
    );
    assert_eq!(
        table.route(Some(PBX), &uri("sip:+4412@sbc.example.net")),
        Some(CARRIER)
    );
    // Nothing matches.
    assert_eq!(table.route(None, &uri("sip:+33123@sbc.example.net")), None);
    assert_eq!(table.route(None, &uri("sip:sbc.example.net")), None);
}

#[test]
fn user_prefix_matches_unescaped_users_and_tel_numbers() {
    let table = standard_table();
    assert_eq!(
        table.route(None, &uri("sip:%2B44123@x.example")),
        Some(CARRIER)
    );
    assert_eq!(
        table.route(None, &uri("sips:+44123@x.example")),
        Some(CARRIER)
    );
    assert_eq!(table.route(None, &uri("tel:+44-1234-5678")), Some(CARRIER));
    assert_eq!(table.route(None, &uri("tel:+4(4)1234")), Some(CARRIER));
    assert_eq!(
        table.route(None, &uri("sip:+44.1234@x.example;user=phone")),
        Some(CARRIER)
    );
    // Visual separators count in a plain SIP user part.
    assert_eq!(table.route(None, &uri("sip:+4-4123@x.example")), None);
    // Other schemes have no user part.
    assert_eq!(table.route(None, &uri("im:+44123@x.example")), None);
}

#[test]
fn domain_matches_case_insensitively_with_wildcards_and_ip_addresses() {
    let table = standard_table();
    assert_eq!(
        table.route(None, &uri("sip:+4420@SBC.Example.NET")),
        Some(BACKUP)
    );
    assert_eq!(
        table.route(None, &uri("sip:+4420@sbc.example.net.")),
        Some(BACKUP)
    );
    assert_eq!(
        table.route(None, &uri("sip:alice@east.pbx.example")),
        Some(PBX)
    );
    assert_eq!(
        table.route(None, &uri("sip:alice@A.B.PBX.example")),
        Some(PBX)
    );
    assert_eq!(table.route(None, &uri("sip:alice@pbx.example")), None);
    assert_eq!(table.route(None, &uri("sip:alice@notpbx.example")), None);
    // A tel: URI has no domain: "london" does not match, "uk" does.
    assert_eq!(table.route(None, &uri("tel:+4420")), Some(CARRIER));

    let by_ip = RoutingTable::new(
        vec![trunk(
            CARRIER,
            "carrier",
            vec![target("192.0.2.10", None, 10, 0)],
        )],
        vec![
            Route {
                match_domain: Some("[2001:db8::1]".into()),
                ..route("v6", CARRIER)
            },
            Route {
                match_domain: Some("192.0.2.99".into()),
                ..route("v4", CARRIER)
            },
        ],
    )
    .unwrap();
    assert_eq!(
        by_ip.route(None, &uri("sip:bob@[2001:DB8::1]:5060")),
        Some(CARRIER)
    );
    assert_eq!(by_ip.route(None, &uri("sip:bob@192.0.2.99")), Some(CARRIER));
    assert_eq!(by_ip.route(None, &uri("sip:bob@192.0.2.98")), None);
}

#[test]
fn a_route_without_criteria_matches_everything() {
    let table = RoutingTable::new(
        vec![trunk(
            CARRIER,
            "carrier",
            vec![target("192.0.2.10", None, 10, 0)],
        )],
        vec![route("default", CARRIER)],
    )
    .unwrap();
    assert_eq!(
        table.route(None, &uri("sip:anything@anywhere.example")),
        Some(CARRIER)
    );
    assert_eq!(table.route(Some(CARRIER), &uri("tel:911")), Some(CARRIER));
    assert_eq!(table.route(None, &uri("urn:service:sos")), Some(CARRIER));
}

#[test]
fn trunk_of_source_prefers_the_exact_address_then_the_ip() {
    let trunks = vec![
        trunk(CARRIER, "carrier", vec![target("192.0.2.10", None, 10, 0)]),
        trunk(PBX, "pbx", vec![target("192.0.2.10", Some(5080), 10, 0)]),
        trunk(BACKUP, "backup", vec![target("2001:db8::5", None, 10, 0)]),
    ];
    let table = RoutingTable::new(trunks, vec![]).unwrap();
    assert_eq!(
        table.trunk_of_source(addr("192.0.2.10:5060")),
        Some(CARRIER)
    );
    assert_eq!(table.trunk_of_source(addr("192.0.2.10:5080")), Some(PBX));
    // Another port: the first trunk with that IP.
    assert_eq!(
        table.trunk_of_source(addr("192.0.2.10:40000")),
        Some(CARRIER)
    );
    // IPv4-mapped IPv6 counts as IPv4.
    assert_eq!(
        table.trunk_of_source(addr("[::ffff:192.0.2.10]:5080")),
        Some(PBX)
    );
    assert_eq!(
        table.trunk_of_source(addr("[2001:db8::5]:5060")),
        Some(BACKUP)
    );
    assert_eq!(table.trunk_of_source(addr("192.0.2.11:5060")), None);
}

#[test]
fn literal_targets_default_their_port_and_transport() {
    let trunks = vec![trunk(
        CARRIER,
        "carrier",
        vec![
            target("192.0.2.10", None, 10, 0),
            TargetSpec::new(
                TargetHost::parse("[2001:db8::1]"),
                None,
                Some(Protocol::Tls),
            ),
            TargetSpec::new(
                TargetHost::parse("192.0.2.12"),
                Some(5070),
                Some(Protocol::Tcp),
            ),
        ],
    )];
    let table = RoutingTable::new(trunks, vec![]).unwrap();
    let mut got: Vec<_> = table
        .resolved(CARRIER)
        .iter()
        .map(|t| (t.addr, t.protocol))
        .collect();
    got.sort_by_key(|(addr, _)| *addr);
    assert_eq!(
        got,
        [
            (addr("192.0.2.10:5060"), Protocol::Udp),
            (addr("192.0.2.12:5070"), Protocol::Tcp),
            (addr("[2001:db8::1]:5061"), Protocol::Tls),
        ]
    );
}

#[test]
fn host_name_targets_have_no_address_until_resolved() {
    let trunks = vec![trunk(
        CARRIER,
        "carrier",
        vec![
            target("carrier.example", None, 10, 0),
            target("192.0.2.10", None, 20, 0),
        ],
    )];
    let mut table = RoutingTable::new(trunks, vec![]).unwrap();
    let mut random = seeded(1);
    assert_eq!(table.targets(CARRIER, &mut random).len(), 1);
    assert_eq!(table.trunk_of_source(addr("192.0.2.20:5060")), None);

    table.set_resolved(
        CARRIER,
        vec![
            resolved("192.0.2.20:5060", 5, 0),
            resolved("192.0.2.10:5060", 20, 0),
        ],
    );
    let order: Vec<_> = table
        .targets(CARRIER, &mut random)
        .iter()
        .map(|t| t.addr)
        .collect();
    // The literal given again by the resolver is not doubled.
    assert_eq!(order, [addr("192.0.2.20:5060"), addr("192.0.2.10:5060")]);
    assert_eq!(
        table.trunk_of_source(addr("192.0.2.20:5060")),
        Some(CARRIER)
    );

    // A new resolution replaces the old one; the literal stays.
    table.set_resolved(CARRIER, vec![resolved("192.0.2.21:5060", 5, 0)]);
    assert_eq!(table.trunk_of_source(addr("192.0.2.20:5060")), None);
    assert_eq!(table.resolved(CARRIER).len(), 2);
    // Unknown trunks are ignored.
    table.set_resolved(TrunkId(99), vec![resolved("192.0.2.30:5060", 5, 0)]);
    assert_eq!(table.trunk_of_source(addr("192.0.2.30:5060")), None);
}

#[test]
fn resolved_targets_are_bounded() {
    let mut table = RoutingTable::new(
        vec![trunk(CARRIER, "c", vec![target("c.example", None, 1, 0)])],
        vec![],
    )
    .unwrap();
    let many = (0..500u16)
        .map(|i| resolved(&format!("10.0.{}.{}:5060", i / 200, i % 200), i, 1))
        .collect();
    table.set_resolved(CARRIER, many);
    let kept = table.resolved(CARRIER);
    assert_eq!(kept.len(), sbc_core::routing::MAX_RESOLVED_TARGETS);
    assert!(kept.iter().all(|t| usize::from(t.priority) < kept.len()));
}

#[test]
fn failover_order_is_by_priority_then_weighted_random() {
    let mut table = RoutingTable::new(
        vec![trunk(
            CARRIER,
            "carrier",
            vec![target("carrier.example", None, 10, 0)],
        )],
        vec![],
    )
    .unwrap();
    table.set_resolved(
        CARRIER,
        vec![
            resolved("192.0.2.4:5060", 20, 0),
            resolved("192.0.2.1:5060", 10, 60),
            resolved("192.0.2.2:5060", 10, 30),
            resolved("192.0.2.3:5060", 10, 10),
        ],
    );
    let mut random = seeded(42);
    let draws = 20_000;
    let mut first: HashMap<SocketAddr, u32> = HashMap::new();
    for _ in 0..draws {
        let order = table.targets(CARRIER, &mut random);
        assert_eq!(order.len(), 4);
        // Priority 20 always last.
        assert_eq!(order[3].addr, addr("192.0.2.4:5060"));
        *first.entry(order[0].addr).or_default() += 1;
    }
    // Weights 60/30/10: expected shares of first place (± 2 points at 20,000 draws).
    for (target, share) in [
        ("192.0.2.1:5060", 0.6),
        ("192.0.2.2:5060", 0.3),
        ("192.0.2.3:5060", 0.1),
    ] {
        let got = f64::from(first[&addr(target)]) / f64::from(draws);
        assert!((got - share).abs() < 0.02, "{target}: {got} vs {share}");
    }
}

#[test]
fn second_place_follows_the_remaining_weights() {
    // RFC 2782: after the first pick, selection repeats over what is left. With weights
    // 60/30/10, given 192.0.2.1 first, .2 comes second with probability 30/40.
    let mut table = RoutingTable::new(
        vec![trunk(
            CARRIER,
            "carrier",
            vec![target("carrier.example", None, 10, 0)],
        )],
        vec![],
    )
    .unwrap();
    table.set_resolved(
        CARRIER,
        vec![
            resolved("192.0.2.1:5060", 10, 60),
            resolved("192.0.2.2:5060", 10, 30),
            resolved("192.0.2.3:5060", 10, 10),
        ],
    );
    let mut random = seeded(7);
    let (mut given_first, mut then_second) = (0u32, 0u32);
    for _ in 0..20_000 {
        let order = table.targets(CARRIER, &mut random);
        if order[0].addr == addr("192.0.2.1:5060") {
            given_first += 1;
            if order[1].addr == addr("192.0.2.2:5060") {
                then_second += 1;
            }
        }
    }
    let share = f64::from(then_second) / f64::from(given_first);
    assert!((share - 0.75).abs() < 0.03, "{share}");
}

#[test]
fn zero_weight_targets_of_a_priority_keep_configuration_order() {
    let table = RoutingTable::new(
        vec![trunk(
            CARRIER,
            "carrier",
            vec![
                target("192.0.2.3", None, 10, 0),
                target("192.0.2.1", None, 10, 0),
                target("192.0.2.2", None, 5, 0),
            ],
        )],
        vec![],
    )
    .unwrap();
    let mut random = seeded(3);
    for _ in 0..100 {
        let order: Vec<_> = table
            .targets(CARRIER, &mut random)
            .iter()
            .map(|t| t.addr)
            .collect();
        assert_eq!(
            order,
            [
                addr("192.0.2.2:5060"),
                addr("192.0.2.3:5060"),
                addr("192.0.2.1:5060")
            ]
        );
    }
}

#[test]
fn targets_marked_down_come_after_every_target_up() {
    let mut table = RoutingTable::new(
        vec![
            trunk(
                CARRIER,
                "carrier",
                vec![
                    target("192.0.2.1", None, 10, 0),
                    target("192.0.2.2", None, 20, 0),
                    target("192.0.2.3", None, 30, 0),
                ],
            ),
            trunk(PBX, "pbx", vec![target("192.0.2.1", None, 10, 0)]),
        ],
        vec![],
    )
    .unwrap();
    let mut random = seeded(5);
    let order = |table: &RoutingTable, random: &mut dyn FnMut() -> u64| -> Vec<SocketAddr> {
        table
            .targets(CARRIER, random)
            .iter()
            .map(|t| t.addr)
            .collect()
    };
    table.mark_target(addr("192.0.2.1:5060"), false);
    assert_eq!(
        order(&table, &mut random),
        [
            addr("192.0.2.2:5060"),
            addr("192.0.2.3:5060"),
            addr("192.0.2.1:5060")
        ]
    );
    // A shared address is down for every trunk that has it.
    assert!(!table.is_trunk_up(PBX));
    assert!(table.is_trunk_up(CARRIER));
    table.mark_target(addr("192.0.2.2:5060"), false);
    table.mark_target(addr("192.0.2.3:5060"), false);
    assert!(!table.is_trunk_up(CARRIER));
    // All down: still every target, by priority, as a last resort.
    assert_eq!(
        order(&table, &mut random),
        [
            addr("192.0.2.1:5060"),
            addr("192.0.2.2:5060"),
            addr("192.0.2.3:5060")
        ]
    );
    table.mark_target(addr("192.0.2.1:5060"), true);
    assert_eq!(order(&table, &mut random)[0], addr("192.0.2.1:5060"));
    assert!(table.is_target_up(addr("192.0.2.1:5060")));
    // Unknown addresses are not remembered.
    table.mark_target(addr("192.0.2.99:5060"), false);
    assert!(table.is_target_up(addr("192.0.2.99:5060")));
}

#[test]
fn down_state_survives_re_resolution_of_the_same_address() {
    let mut table = RoutingTable::new(
        vec![trunk(
            CARRIER,
            "carrier",
            vec![target("carrier.example", None, 10, 0)],
        )],
        vec![],
    )
    .unwrap();
    table.set_resolved(CARRIER, vec![resolved("192.0.2.1:5060", 10, 0)]);
    table.mark_target(addr("192.0.2.1:5060"), false);
    table.set_resolved(
        CARRIER,
        vec![
            resolved("192.0.2.1:5060", 10, 0),
            resolved("192.0.2.2:5060", 10, 0),
        ],
    );
    assert!(!table.is_target_up(addr("192.0.2.1:5060")));
    // Gone and back: starts up again.
    table.set_resolved(CARRIER, vec![resolved("192.0.2.2:5060", 10, 0)]);
    table.set_resolved(CARRIER, vec![resolved("192.0.2.1:5060", 10, 0)]);
    assert!(table.is_target_up(addr("192.0.2.1:5060")));
}

#[test]
fn lookups_by_id_and_name() {
    let table = standard_table();
    assert_eq!(table.trunk_by_name("pbx"), Some(PBX));
    assert_eq!(table.trunk_by_name("nope"), None);
    assert_eq!(table.trunk(BACKUP).map(|t| t.name.as_str()), Some("backup"));
    assert!(table.trunk(TrunkId(42)).is_none());
    assert!(table.targets(TrunkId(42), &mut seeded(1)).is_empty());
    assert_eq!(table.trunks().count(), 3);
    assert_eq!(table.routes().count(), 4);
}

fn refused(trunks: Vec<Trunk>, routes: Vec<Route>) -> RoutingConfigError {
    match RoutingTable::new(trunks, routes) {
        Ok(_) => panic!("configuration accepted"),
        Err(error) => error,
    }
}

#[test]
fn invalid_configurations_are_refused_with_a_typed_error() {
    let good = || trunk(CARRIER, "carrier", vec![target("192.0.2.1", None, 10, 0)]);
    let cases: Vec<(Vec<Trunk>, Vec<Route>, &str)> = vec![
        (
            vec![trunk(CARRIER, "", vec![target("192.0.2.1", None, 1, 0)])],
            vec![],
            "empty_trunk_name",
        ),
        (
            vec![
                good(),
                trunk(CARRIER, "other", vec![target("192.0.2.2", None, 1, 0)]),
            ],
            vec![],
            "duplicate_trunk_id",
        ),
        (
            vec![
                good(),
                trunk(PBX, "carrier", vec![target("192.0.2.2", None, 1, 0)]),
            ],
            vec![],
            "duplicate_trunk_name",
        ),
        (
            vec![trunk(CARRIER, "carrier", vec![])],
            vec![],
            "no_targets",
        ),
        (
            vec![trunk(
                CARRIER,
                "carrier",
                vec![target("192.0.2.1", None, 1, 0); 33],
            )],
            vec![],
            "too_many_targets",
        ),
        (
            vec![trunk(
                CARRIER,
                "carrier",
                vec![target("bad_host!", None, 1, 0)],
            )],
            vec![],
            "invalid_target_host",
        ),
        (
            vec![trunk(
                CARRIER,
                "carrier",
                vec![target("192.0.2.1", Some(0), 1, 0)],
            )],
            vec![],
            "invalid_target_port",
        ),
        (
            vec![Trunk {
                keep_alive: Some(KeepAlive {
                    down_after: 0,
                    ..KeepAlive::default()
                }),
                ..good()
            }],
            vec![],
            "invalid_keep_alive",
        ),
        (vec![good()], vec![route("", CARRIER)], "empty_route_name"),
        (
            vec![good()],
            vec![route("r", CARRIER), route("r", CARRIER)],
            "duplicate_route_name",
        ),
        (vec![good()], vec![route("r", PBX)], "unknown_trunk"),
        (
            vec![good()],
            vec![Route {
                match_source_trunk: Some(PBX),
                ..route("r", CARRIER)
            }],
            "unknown_trunk",
        ),
        (
            vec![good()],
            vec![Route {
                match_user_prefix: Some(String::new()),
                ..route("r", CARRIER)
            }],
            "empty_user_prefix",
        ),
        (
            vec![good()],
            vec![Route {
                match_domain: Some("*.".into()),
                ..route("r", CARRIER)
            }],
            "invalid_domain",
        ),
    ];
    for (trunks, routes, expected) in cases {
        let error = refused(trunks, routes);
        assert_eq!(error.name(), expected, "{error}");
        assert!(!error.to_string().is_empty());
    }
}
