//! RFC 3263 §4 target resolution against an in-process DNS server on loopback: NAPTR →
//! SRV → A/AAAA, SRV priorities and weights, port or transport given, failures, and the
//! trunk resolver task that follows TTLs and keeps the last good result.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod resolve_support;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use resolve_support::{DnsServer, Mode, Zone};
use sbc_core::net::{Protocol, RefreshSettings, ResolvedTrunk, TrunkResolver};
use sbc_core::routing::{
    HeaderPolicy, ResolvedTarget, RoutingTable, TargetHost, TargetSpec, Trunk, TrunkId,
};
use tokio::sync::mpsc;

/// Long enough for a loaded 2-core machine, short enough to fail fast.
const PATIENCE: Duration = Duration::from_secs(10);

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn spec(host: &str, port: Option<u16>, transport: Option<Protocol>) -> TargetSpec {
    TargetSpec::new(TargetHost::parse(host), port, transport)
}

/// (address, protocol, priority, weight) of each target, in the order given.
fn summary(targets: &[ResolvedTarget]) -> Vec<(SocketAddr, Protocol, u16, u16)> {
    targets
        .iter()
        .map(|t| (t.addr, t.protocol, t.priority, t.weight))
        .collect()
}

fn asked(server: &DnsServer, kind: RecordType) -> Vec<String> {
    server
        .queries()
        .into_iter()
        .filter(|(_, k)| *k == kind)
        .map(|(name, _)| name)
        .collect()
}

#[tokio::test]
async fn an_ip_literal_needs_no_dns() {
    let server = DnsServer::start(Zone::new(60)).await;
    let resolution = server
        .resolver()
        .resolve(&spec("192.0.2.7", None, Some(Protocol::Tls)))
        .await
        .unwrap();
    assert_eq!(
        summary(&resolution.targets),
        [(addr("192.0.2.7:5061"), Protocol::Tls, 10, 0)]
    );
    assert_eq!(resolution.targets[0].server_name, None);
    assert_eq!(resolution.expires, None);
    assert!(server.queries().is_empty());
}

/// §4.2: with a port, A/AAAA only, whatever SRV records exist.
#[tokio::test]
async fn a_port_given_means_address_records_only() {
    let zone = Zone::new(60)
        .a("pbx.test.", [127, 0, 0, 5])
        .aaaa("pbx.test.", "::1")
        .srv("_sip._tcp.pbx.test.", 1, 1, 9999, "other.test.")
        .a("other.test.", [127, 0, 0, 99]);
    let server = DnsServer::start(zone).await;
    let target = TargetSpec {
        priority: 7,
        weight: 3,
        ..spec("pbx.test", Some(5080), Some(Protocol::Tcp))
    };
    let resolution = server.resolver().resolve(&target).await.unwrap();
    assert_eq!(
        summary(&resolution.targets),
        [
            (addr("127.0.0.5:5080"), Protocol::Tcp, 7, 3),
            (addr("[::1]:5080"), Protocol::Tcp, 7, 3),
        ]
    );
    assert_eq!(
        resolution.targets[0].server_name.as_deref(),
        Some("pbx.test")
    );
    assert!(resolution.expires.is_some());
    assert!(asked(&server, RecordType::SRV).is_empty());
    assert!(asked(&server, RecordType::NAPTR).is_empty());

    // Without a transport: UDP.
    let resolution = server
        .resolver()
        .resolve(&spec("pbx.test", Some(5080), None))
        .await
        .unwrap();
    assert!(
        resolution
            .targets
            .iter()
            .all(|t| t.protocol == Protocol::Udp)
    );
}

/// §4.2: with a transport and no port, SRV for that transport, priorities and weights
/// carried.
#[tokio::test]
async fn a_transport_given_means_srv_for_it() {
    let zone = Zone::new(60)
        .srv("_sip._tcp.carrier.test.", 10, 60, 5070, "a.carrier.test.")
        .srv("_sip._tcp.carrier.test.", 10, 40, 5071, "b.carrier.test.")
        .srv("_sip._tcp.carrier.test.", 20, 0, 5072, "c.carrier.test.")
        .srv("_sip._udp.carrier.test.", 1, 0, 5999, "a.carrier.test.")
        .a("a.carrier.test.", [127, 0, 0, 11])
        .a("b.carrier.test.", [127, 0, 0, 12])
        .aaaa("c.carrier.test.", "::1");
    let server = DnsServer::start(zone).await;
    let resolution = server
        .resolver()
        .resolve(&spec("carrier.test", None, Some(Protocol::Tcp)))
        .await
        .unwrap();
    let mut got = summary(&resolution.targets);
    got.sort_by_key(|(a, ..)| *a);
    assert_eq!(
        got,
        [
            (addr("127.0.0.11:5070"), Protocol::Tcp, 10, 60),
            (addr("127.0.0.12:5071"), Protocol::Tcp, 10, 40),
            (addr("[::1]:5072"), Protocol::Tcp, 20, 0),
        ]
    );
    // The certificate name is the configured domain, not the SRV target (RFC 5922 §4).
    assert!(
        resolution
            .targets
            .iter()
            .all(|t| t.server_name.as_deref() == Some("carrier.test"))
    );
    assert_eq!(asked(&server, RecordType::SRV), ["_sip._tcp.carrier.test"]);
    assert!(asked(&server, RecordType::NAPTR).is_empty());

    // TLS asks _sips._tcp.
    server.clear_queries();
    let error = server
        .resolver()
        .resolve(&spec("nothing.test", None, Some(Protocol::Tls)))
        .await
        .unwrap_err();
    assert_eq!(error.name(), "not_found");
    assert_eq!(asked(&server, RecordType::SRV), ["_sips._tcp.nothing.test"]);
}

/// §4.2: no SRV records: A/AAAA on the transport's default port.
#[tokio::test]
async fn without_srv_records_a_transport_falls_back_to_addresses() {
    let zone = Zone::new(60).a("plain.test.", [127, 0, 0, 21]);
    let server = DnsServer::start(zone).await;
    let resolution = server
        .resolver()
        .resolve(&spec("plain.test", None, Some(Protocol::Tls)))
        .await
        .unwrap();
    assert_eq!(
        summary(&resolution.targets),
        [(addr("127.0.0.21:5061"), Protocol::Tls, 10, 0)]
    );
}

/// §4.1: NAPTR in (order, preference) order, usable services only, each followed by its
/// SRV set; later sets' priorities shifted past earlier ones.
#[tokio::test]
async fn naptr_then_srv_then_addresses() {
    let zone = Zone::new(60)
        .naptr("ims.test.", 20, 10, "s", "SIP+D2U", "_sip._udp.ims.test.")
        .naptr("ims.test.", 10, 20, "S", "SIP+D2T", "_sip._tcp.ims.test.")
        .naptr("ims.test.", 10, 10, "s", "SIPS+D2T", "_sips._tcp.ims.test.")
        .naptr("ims.test.", 5, 10, "s", "SIP+D2S", "_sip._sctp.ims.test.")
        .naptr("ims.test.", 5, 5, "u", "E2U+sip", "_sip._udp.ims.test.")
        .srv("_sips._tcp.ims.test.", 0, 0, 5061, "tls.ims.test.")
        .srv("_sips._tcp.ims.test.", 1, 0, 5061, "tls2.ims.test.")
        .srv("_sip._tcp.ims.test.", 0, 5, 5060, "tcp.ims.test.")
        .srv("_sip._udp.ims.test.", 3, 7, 5060, "udp.ims.test.")
        .a("tls.ims.test.", [127, 0, 0, 31])
        .a("tls2.ims.test.", [127, 0, 0, 32])
        .a("tcp.ims.test.", [127, 0, 0, 33])
        .a("udp.ims.test.", [127, 0, 0, 34]);
    let server = DnsServer::start(zone).await;
    let resolution = server
        .resolver()
        .resolve(&spec("ims.test", None, None))
        .await
        .unwrap();
    assert_eq!(
        summary(&resolution.targets),
        [
            (addr("127.0.0.31:5061"), Protocol::Tls, 0, 0),
            (addr("127.0.0.32:5061"), Protocol::Tls, 1, 0),
            (addr("127.0.0.33:5060"), Protocol::Tcp, 2, 5),
            (addr("127.0.0.34:5060"), Protocol::Udp, 6, 7),
        ]
    );
    assert_eq!(asked(&server, RecordType::NAPTR), ["ims.test"]);
    assert!(!asked(&server, RecordType::SRV).contains(&"_sip._sctp.ims.test".to_owned()));

    // The routing table orders them by those priorities.
    let mut table = RoutingTable::new(
        vec![Trunk {
            id: TrunkId(1),
            name: "ims".into(),
            targets: vec![spec("ims.test", None, None)],
            trusted: true,
            headers: HeaderPolicy::pass_all(),
            keep_alive: None,
        }],
        vec![],
    )
    .unwrap();
    table.set_resolved(TrunkId(1), resolution.targets);
    let order: Vec<_> = table
        .targets(TrunkId(1), &mut || 0)
        .iter()
        .map(|t| t.protocol)
        .collect();
    assert_eq!(
        order,
        [Protocol::Tls, Protocol::Tls, Protocol::Tcp, Protocol::Udp]
    );
}

/// §4.1: no NAPTR: SRV for each transport (TLS, TCP, UDP preferred in that order); none:
/// A/AAAA over UDP on 5060.
#[tokio::test]
async fn without_naptr_srv_per_transport_then_addresses() {
    let zone = Zone::new(60)
        .srv("_sip._udp.two.test.", 5, 0, 5062, "host.two.test.")
        .srv("_sip._tcp.two.test.", 5, 0, 5063, "host.two.test.")
        .a("host.two.test.", [127, 0, 0, 41])
        .aaaa("v6only.test.", "::1");
    let server = DnsServer::start(zone).await;
    let resolver = server.resolver();
    let resolution = resolver
        .resolve(&spec("two.test", None, None))
        .await
        .unwrap();
    assert_eq!(
        summary(&resolution.targets),
        [
            (addr("127.0.0.41:5063"), Protocol::Tcp, 5, 0),
            (addr("127.0.0.41:5062"), Protocol::Udp, 11, 0),
        ]
    );
    let mut srv = asked(&server, RecordType::SRV);
    srv.sort();
    assert_eq!(
        srv,
        [
            "_sip._tcp.two.test",
            "_sip._udp.two.test",
            "_sips._tcp.two.test"
        ]
    );

    let resolution = resolver
        .resolve(&spec("v6only.test", None, None))
        .await
        .unwrap();
    assert_eq!(
        summary(&resolution.targets),
        [(addr("[::1]:5060"), Protocol::Udp, 10, 0)]
    );
}

#[tokio::test]
async fn dead_ends_and_failures_are_errors() {
    let zone = Zone::new(60)
        .srv("_sip._udp.closed.test.", 0, 0, 0, ".")
        .srv("_sip._udp.dangling.test.", 0, 0, 5060, "missing.test.");
    let server = DnsServer::start(zone).await;
    let resolver = server.resolver();
    for host in ["closed.test", "dangling.test", "nxdomain.test"] {
        let error = resolver
            .resolve(&spec(host, None, Some(Protocol::Udp)))
            .await
            .unwrap_err();
        assert_eq!(error.name(), "not_found", "{host}: {error}");
    }
    server.set_mode(Mode::ServFail);
    let error = resolver
        .resolve(&spec("other.test", None, None))
        .await
        .unwrap_err();
    assert_eq!(error.name(), "lookup_failed", "{error}");
    let error = resolver
        .resolve(&spec("bad_name!.test", Some(5060), None))
        .await
        .unwrap_err();
    assert_eq!(error.name(), "invalid_name", "{error}");
}

async fn next_update(updates: &mut mpsc::Receiver<ResolvedTrunk>) -> ResolvedTrunk {
    tokio::time::timeout(PATIENCE, updates.recv())
        .await
        .expect("no update in time")
        .expect("resolver stopped")
}

fn addrs(update: &ResolvedTrunk) -> Vec<SocketAddr> {
    let mut addrs: Vec<_> = update.targets.iter().map(|t| t.addr).collect();
    addrs.sort();
    addrs
}

/// The task follows TTLs (bounded below by `min_refresh`), sends only changes, and keeps
/// the last good addresses while DNS fails.
#[tokio::test]
async fn the_trunk_resolver_follows_changes_and_keeps_the_last_good_result() {
    let server = DnsServer::start(Zone::new(0).a("trunk.test.", [127, 0, 0, 51])).await;
    let trunks = vec![
        Trunk {
            id: TrunkId(1),
            name: "named".into(),
            targets: vec![
                spec("trunk.test", Some(5060), None),
                spec("192.0.2.1", None, None),
            ],
            trusted: true,
            headers: HeaderPolicy::pass_all(),
            keep_alive: None,
        },
        Trunk {
            id: TrunkId(2),
            name: "literal".into(),
            targets: vec![spec("192.0.2.2", None, None)],
            trusted: true,
            headers: HeaderPolicy::pass_all(),
            keep_alive: None,
        },
    ];
    let refresh = RefreshSettings {
        min_refresh: Duration::from_millis(100),
        max_refresh: Duration::from_secs(60),
        retry_after_failure: Duration::from_millis(100),
    };
    let (sender, mut updates) = mpsc::channel(4);
    let resolver = TrunkResolver::spawn(server.resolver(), &trunks, refresh, sender);
    // Only the trunk with a host name gets a task.
    assert_eq!(resolver.len(), 1);

    let first = next_update(&mut updates).await;
    assert_eq!(first.trunk, TrunkId(1));
    assert_eq!(
        addrs(&first),
        [addr("127.0.0.51:5060"), addr("192.0.2.1:5060")]
    );

    // Unchanged records: re-resolved (TTL 0) but nothing sent.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let queries_before = asked(&server, RecordType::A).len();
    assert!(queries_before >= 2, "{queries_before} A queries");
    assert!(updates.try_recv().is_err());

    // DNS fails: nothing sent, the last good result stands.
    server.set_mode(Mode::ServFail);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(updates.try_recv().is_err());
    assert!(asked(&server, RecordType::A).len() > queries_before);

    // DNS is back with a new address: sent.
    server.set_zone(Zone::new(0).a("trunk.test.", [127, 0, 0, 52]));
    server.set_mode(Mode::Answer);
    let second = next_update(&mut updates).await;
    assert_eq!(
        addrs(&second),
        [addr("127.0.0.52:5060"), addr("192.0.2.1:5060")]
    );

    // The task stops with its receiver.
    drop(updates);
    tokio::time::timeout(PATIENCE, resolver.shutdown())
        .await
        .unwrap();
}

fn one_trunk(host: &str) -> Vec<Trunk> {
    vec![Trunk {
        id: TrunkId(1),
        name: "trunk".into(),
        targets: vec![spec(host, Some(5060), None)],
        trusted: true,
        headers: HeaderPolicy::pass_all(),
        keep_alive: None,
    }]
}

/// A change in DNS is picked up when the records' TTL runs out, not before.
#[tokio::test]
async fn changes_are_picked_up_when_the_ttl_runs_out() {
    let server = DnsServer::start(Zone::new(2).a("ttl.test.", [127, 0, 0, 61])).await;
    let refresh = RefreshSettings {
        min_refresh: Duration::from_millis(50),
        max_refresh: Duration::from_secs(60),
        retry_after_failure: Duration::from_millis(50),
    };
    let (sender, mut updates) = mpsc::channel(4);
    let resolver = TrunkResolver::spawn(server.resolver(), &one_trunk("ttl.test"), refresh, sender);
    let first = next_update(&mut updates).await;
    let resolved_at = tokio::time::Instant::now();
    assert_eq!(addrs(&first), [addr("127.0.0.61:5060")]);
    server.set_zone(Zone::new(2).a("ttl.test.", [127, 0, 0, 62]));
    let second = next_update(&mut updates).await;
    assert_eq!(addrs(&second), [addr("127.0.0.62:5060")]);
    let waited = resolved_at.elapsed();
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    assert_eq!(asked(&server, RecordType::A).len(), 2);
    resolver.shutdown().await;
}

/// A TTL of 0 does not make the task spin: it waits `min_refresh` between rounds.
#[tokio::test]
async fn refresh_is_bounded_by_min_refresh() {
    let server = DnsServer::start(Zone::new(0).a("zero.test.", [127, 0, 0, 71])).await;
    let refresh = RefreshSettings {
        min_refresh: Duration::from_millis(300),
        max_refresh: Duration::from_secs(60),
        retry_after_failure: Duration::from_millis(300),
    };
    let (sender, mut updates) = mpsc::channel(4);
    let resolver =
        TrunkResolver::spawn(server.resolver(), &one_trunk("zero.test"), refresh, sender);
    next_update(&mut updates).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let queries = asked(&server, RecordType::A).len();
    assert!(
        (3..=5).contains(&queries),
        "{queries} A queries in about 1 s"
    );
    resolver.shutdown().await;
}
