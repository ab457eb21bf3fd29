//! OPTIONS keep-alives to trunk targets, on a virtual clock: when probes go, when targets
//! go down and come back, and the OPTIONS request itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_core::net::Protocol;
use sbc_core::routing::{
    HeaderPolicy, KeepAlive, Probe, ProbeResult, RoutingTable, TargetChange, TargetHost,
    TargetSpec, Trunk, TrunkId, TrunkMonitor, build_options, is_alive_answer,
};
use sbc_core::sip::{HeaderName, Message, Method, SipUri, StatusCode, Uri, parse_message};
use sbc_core::transaction::{Event, LayerConfig, Peer, TransactionLayer, branch_from_random};

const CARRIER: TrunkId = TrunkId(1);
const PBX: TrunkId = TrunkId(2);

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn status(code: u16) -> StatusCode {
    StatusCode::new(code).unwrap()
}

fn keep_alive() -> KeepAlive {
    KeepAlive {
        interval: secs(30),
        give_up_after: secs(40),
        down_after: 3,
        up_after: 2,
    }
}

fn trunk(id: TrunkId, name: &str, hosts: &[&str], keep_alive: Option<KeepAlive>) -> Trunk {
    Trunk {
        id,
        name: name.into(),
        targets: hosts
            .iter()
            .map(|h| TargetSpec::new(TargetHost::parse(h), None, None))
            .collect(),
        trusted: true,
        headers: HeaderPolicy::pass_all(),
        keep_alive,
    }
}

/// A monitor watching one target, with a virtual clock.
struct Clock {
    start: Instant,
    monitor: TrunkMonitor,
    table: RoutingTable,
}

impl Clock {
    fn new(trunks: Vec<Trunk>) -> Clock {
        let start = Instant::now();
        let table = RoutingTable::new(trunks, vec![]).unwrap();
        let mut monitor = TrunkMonitor::new();
        monitor.sync(start, &table);
        Clock {
            start,
            monitor,
            table,
        }
    }

    fn at(&self, seconds: u64) -> Instant {
        self.start + secs(seconds)
    }

    /// Runs the timers up to `seconds` and returns the probes sent, with their times.
    fn probes_until(&mut self, seconds: u64) -> Vec<(u64, SocketAddr)> {
        let mut sent = Vec::new();
        while let Some(wake) = self.monitor.poll_timeout() {
            if wake > self.at(seconds) {
                break;
            }
            self.monitor.handle_timeout(wake);
            while let Some(Probe { target }) = self.monitor.poll_probe() {
                sent.push(((wake - self.start).as_secs(), target.addr));
            }
            self.apply_changes();
        }
        sent
    }

    fn result(&mut self, seconds: u64, target: &str, result: ProbeResult) -> Vec<TargetChange> {
        self.monitor
            .handle_probe_result(self.at(seconds), addr(target), result);
        self.apply_changes()
    }

    fn apply_changes(&mut self) -> Vec<TargetChange> {
        let mut changes = Vec::new();
        while let Some(change) = self.monitor.poll_change() {
            self.table.mark_target(change.target.addr, change.up);
            changes.push(change);
        }
        changes
    }
}

const PEER: &str = "192.0.2.10:5060";

#[test]
fn down_after_n_timeouts_and_up_again_after_m_answers() {
    let mut clock = Clock::new(vec![trunk(
        CARRIER,
        "carrier",
        &["192.0.2.10"],
        Some(keep_alive()),
    )]);
    // The first probe goes at once.
    assert_eq!(clock.probes_until(0), [(0, addr(PEER))]);
    // Nothing more while it is in flight.
    assert_eq!(clock.probes_until(31), []);
    assert!(clock.result(32, PEER, ProbeResult::TimedOut).is_empty());
    // Next one an interval after the outcome.
    assert_eq!(clock.probes_until(62), [(62, addr(PEER))]);
    assert!(clock.result(94, PEER, ProbeResult::TimedOut).is_empty());
    assert_eq!(clock.probes_until(124), [(124, addr(PEER))]);
    assert!(clock.table.is_target_up(addr(PEER)));
    let changes = clock.result(156, PEER, ProbeResult::TimedOut);
    assert_eq!(changes.len(), 1);
    assert!(!changes[0].up);
    assert_eq!(changes[0].target.addr, addr(PEER));
    assert!(!clock.table.is_target_up(addr(PEER)));
    assert_eq!(clock.monitor.is_up(addr(PEER)), Some(false));

    // Down targets keep being probed; one answer is not enough.
    assert_eq!(clock.probes_until(186), [(186, addr(PEER))]);
    assert!(
        clock
            .result(186, PEER, ProbeResult::Answered(StatusCode::OK))
            .is_empty()
    );
    assert_eq!(clock.probes_until(216), [(216, addr(PEER))]);
    let changes = clock.result(216, PEER, ProbeResult::Answered(StatusCode::OK));
    assert_eq!(changes.len(), 1);
    assert!(changes[0].up);
    assert!(clock.table.is_target_up(addr(PEER)));
}

#[test]
fn a_streak_is_broken_by_the_other_outcome() {
    let mut clock = Clock::new(vec![trunk(
        CARRIER,
        "carrier",
        &["192.0.2.10"],
        Some(keep_alive()),
    )]);
    let mut t = 0;
    for result in [
        ProbeResult::TimedOut,
        ProbeResult::TimedOut,
        ProbeResult::Answered(StatusCode::OK),
        ProbeResult::TimedOut,
        ProbeResult::TimedOut,
    ] {
        assert_eq!(clock.probes_until(t).len(), 1);
        assert!(clock.result(t + 1, PEER, result).is_empty());
        t += 31;
    }
    assert!(clock.table.is_target_up(addr(PEER)));
    assert_eq!(clock.probes_until(t).len(), 1);
    assert_eq!(clock.result(t + 1, PEER, ProbeResult::TimedOut).len(), 1);
}

#[test]
fn any_final_answer_but_503_means_alive() {
    assert!(is_alive_answer(status(200)));
    assert!(is_alive_answer(status(404)));
    assert!(is_alive_answer(status(405)));
    assert!(is_alive_answer(status(408)));
    assert!(is_alive_answer(status(500)));
    assert!(is_alive_answer(status(603)));
    assert!(!is_alive_answer(status(503)));
    assert!(!is_alive_answer(status(180)));

    let settings = KeepAlive {
        down_after: 1,
        ..keep_alive()
    };
    let mut clock = Clock::new(vec![trunk(
        CARRIER,
        "carrier",
        &["192.0.2.10"],
        Some(settings),
    )]);
    clock.probes_until(0);
    assert!(
        clock
            .result(1, PEER, ProbeResult::Answered(status(404)))
            .is_empty()
    );
    clock.probes_until(31);
    // A provisional response leaves the probe in flight.
    assert!(
        clock
            .result(32, PEER, ProbeResult::Answered(status(100)))
            .is_empty()
    );
    let changes = clock.result(33, PEER, ProbeResult::Answered(status(503)));
    assert_eq!(changes.len(), 1);
    assert!(!changes[0].up);
}

#[test]
fn a_probe_whose_result_never_comes_is_given_up_on() {
    let settings = KeepAlive {
        down_after: 2,
        ..keep_alive()
    };
    let mut clock = Clock::new(vec![trunk(
        CARRIER,
        "carrier",
        &["192.0.2.10"],
        Some(settings),
    )]);
    // No results reported at all: failures at 40 s, then 40 + 30 + 40 = 110 s.
    assert_eq!(
        clock.probes_until(200),
        [(0, addr(PEER)), (70, addr(PEER)), (140, addr(PEER))]
    );
    assert!(!clock.table.is_target_up(addr(PEER)));
    // A result after the give-up is ignored (no probe in flight at 41 s... until the next).
    let mut clock = Clock::new(vec![trunk(
        CARRIER,
        "carrier",
        &["192.0.2.10"],
        Some(keep_alive()),
    )]);
    clock.probes_until(40);
    assert!(
        clock
            .result(41, PEER, ProbeResult::Answered(StatusCode::OK))
            .is_empty()
    );
    assert_eq!(clock.monitor.poll_timeout(), Some(clock.at(70)));
}

#[test]
fn sync_watches_resolved_targets_of_trunks_with_keep_alive_only() {
    let trunks = vec![
        trunk(
            CARRIER,
            "carrier",
            &["192.0.2.10", "carrier.example"],
            Some(keep_alive()),
        ),
        // Shares 192.0.2.10 with the carrier; probed once.
        trunk(
            PBX,
            "pbx",
            &["192.0.2.10", "192.0.2.20"],
            Some(keep_alive()),
        ),
        trunk(TrunkId(3), "quiet", &["192.0.2.30"], None),
    ];
    let mut clock = Clock::new(trunks);
    assert_eq!(clock.monitor.len(), 2);
    let mut first: Vec<_> = clock.probes_until(0).into_iter().map(|(_, a)| a).collect();
    first.sort();
    assert_eq!(first, [addr("192.0.2.10:5060"), addr("192.0.2.20:5060")]);

    // The resolver brings an address for the host name: probed at once, the others keep
    // their schedule.
    clock.table.set_resolved(
        CARRIER,
        vec![sbc_core::routing::ResolvedTarget {
            addr: addr("192.0.2.11:5070"),
            protocol: Protocol::Tcp,
            server_name: Some("carrier.example".into()),
            priority: 10,
            weight: 0,
        }],
    );
    clock.monitor.sync(clock.at(5), &clock.table);
    assert_eq!(clock.monitor.len(), 3);
    assert_eq!(clock.probes_until(5), [(5, addr("192.0.2.11:5070"))]);

    // Someone else marks a target down: after a sync, it needs `up_after` answers.
    clock.table.mark_target(addr("192.0.2.20:5060"), false);
    clock.monitor.sync(clock.at(6), &clock.table);
    assert_eq!(clock.monitor.is_up(addr("192.0.2.20:5060")), Some(false));
    assert!(
        clock
            .result(7, "192.0.2.20:5060", ProbeResult::Answered(StatusCode::OK))
            .is_empty()
    );
    clock.probes_until(37);
    let changes = clock.result(38, "192.0.2.20:5060", ProbeResult::Answered(StatusCode::OK));
    assert_eq!(changes.len(), 1);
    assert!(clock.table.is_target_up(addr("192.0.2.20:5060")));

    // Resolution drops the address: no longer watched.
    clock.table.set_resolved(CARRIER, vec![]);
    clock.monitor.sync(clock.at(40), &clock.table);
    assert_eq!(clock.monitor.len(), 2);
    assert_eq!(clock.monitor.is_up(addr("192.0.2.11:5070")), None);
}

fn local_contact() -> SipUri {
    match Uri::parse(b"sip:sbc@192.0.2.1:5060").unwrap() {
        Uri::Sip(sip) => sip,
        other => panic!("not a SIP URI: {other:?}"),
    }
}

#[test]
fn the_options_request_parses_and_carries_what_the_peer_needs() {
    let table = RoutingTable::new(
        vec![trunk(
            CARRIER,
            "carrier",
            &["192.0.2.10"],
            Some(keep_alive()),
        )],
        vec![],
    )
    .unwrap();
    let target = table.resolved(CARRIER)[0].clone();
    let branch = branch_from_random([7; 16]);
    let request = build_options(&target, &local_contact(), &branch, "ka-1@sbc", "t1");
    let printed = request.to_bytes();
    let Message::Request(parsed) = parse_message(printed.clone()).unwrap() else {
        panic!("not a request");
    };
    assert_eq!(parsed.method, Method::Options);
    assert!(printed.starts_with(b"OPTIONS sip:192.0.2.10:5060 SIP/2.0\r\n"));
    let via = parsed.headers.top_via().unwrap();
    assert_eq!(via.branch().map(|b| b.as_ref()), Some(branch.as_bytes()));
    assert!(via.rport().is_some());
    assert_eq!(via.sent_by.to_string(), "192.0.2.1:5060");
    assert_eq!(
        parsed.headers.from().unwrap().tag().map(|t| t.as_ref()),
        Some(&b"t1"[..])
    );
    assert_eq!(parsed.headers.to().unwrap().tag(), None);
    assert_eq!(parsed.headers.call_id().unwrap().as_ref(), b"ka-1@sbc");
    assert_eq!(parsed.headers.cseq().unwrap().method, Method::Options);
    assert_eq!(parsed.headers.max_forwards().unwrap(), Some(70));
    assert!(parsed.headers.contact().unwrap().is_some());
    assert_eq!(
        parsed.headers.get(&HeaderName::Accept),
        Some(&Bytes::from_static(b"application/sdp"))
    );

    // Over TCP and TLS the Request-URI and Via say so.
    let tcp = sbc_core::routing::ResolvedTarget {
        protocol: Protocol::Tcp,
        ..target.clone()
    };
    let printed = build_options(&tcp, &local_contact(), &branch, "ka-2@sbc", "t2").to_bytes();
    assert!(printed.starts_with(b"OPTIONS sip:192.0.2.10:5060;transport=tcp SIP/2.0\r\n"));
    assert!(printed.windows(15).any(|w| w == b"SIP/2.0/TCP 192"));
    let tls = sbc_core::routing::ResolvedTarget {
        protocol: Protocol::Tls,
        addr: addr("[2001:db8::1]:5061"),
        ..target
    };
    let printed = build_options(&tls, &local_contact(), &branch, "ka-3@sbc", "t3").to_bytes();
    assert!(printed.starts_with(b"OPTIONS sips:[2001:db8::1]:5061 SIP/2.0\r\n"));
}

/// The whole loop with the real transaction layer: a peer that never answers is marked
/// down after three Timer F expiries, and up again once it answers twice.
#[test]
fn with_the_transaction_layer_timer_f_marks_a_silent_peer_down() {
    let mut clock = Clock::new(vec![trunk(
        CARRIER,
        "carrier",
        &["192.0.2.10"],
        Some(keep_alive()),
    )]);
    let mut layer = TransactionLayer::new(LayerConfig::default());
    let mut now = clock.start;
    let mut answering = false;
    let mut sent = 0u8;
    let mut transactions = std::collections::HashMap::new();
    let end = clock.at(400);
    while now < end {
        clock.monitor.handle_timeout(now);
        while let Some(probe) = clock.monitor.poll_probe() {
            sent += 1;
            let branch = branch_from_random([sent; 16]);
            let request = build_options(
                &probe.target,
                &local_contact(),
                &branch,
                &format!("ka-{sent}@sbc"),
                "tag",
            );
            let id = layer
                .handle_send_request(now, request.clone(), Peer::unreliable(probe.target.addr))
                .unwrap();
            transactions.insert(id, probe.target.addr);
            if answering {
                let ok = request.make_response(StatusCode::OK, None, Some("peer"));
                layer
                    .handle_incoming(
                        now,
                        Message::Response(ok),
                        Peer::unreliable(probe.target.addr),
                    )
                    .unwrap();
            }
        }
        while layer.poll_transmit().is_some() {}
        while let Some(event) = layer.poll_event() {
            match event {
                Event::Response {
                    transaction,
                    response,
                } => {
                    clock.monitor.handle_probe_result(
                        now,
                        transactions[&transaction],
                        ProbeResult::Answered(response.status),
                    );
                }
                Event::TimedOut { transaction, .. } | Event::TransportError { transaction } => {
                    clock.monitor.handle_probe_result(
                        now,
                        transactions[&transaction],
                        ProbeResult::TimedOut,
                    );
                }
                _ => {}
            }
        }
        for change in clock.apply_changes() {
            let at = (now - clock.start).as_secs();
            if change.up {
                assert!(answering);
                assert_eq!(at, 216);
                return;
            }
            // Probes at 0, 62, 124; each times out 32 s later.
            assert_eq!(at, 156);
            assert!(!clock.table.is_target_up(addr(PEER)));
            answering = true;
        }
        let next = [layer.poll_timeout(), clock.monitor.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(end);
        now = next.max(now);
        layer.handle_timeout(now);
    }
    panic!("the peer never came back up");
}
