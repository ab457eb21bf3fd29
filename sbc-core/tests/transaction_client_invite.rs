//! RFC 3261 §17.1.1 (INVITE client transaction) as amended by RFC 6026 §7.2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transaction_support;

use std::time::Duration;

use sbc_core::sip::{HeaderName, Method};
use sbc_core::transaction::{Event, LayerConfig, Peer, Timer, TimerConfig, TransactionState};
use transaction_support::*;

const BRANCH: &str = "z9hG4bK776asdhds";

/// §17.1.1.2: Timer A starts at T1 and doubles; Timer B (64·T1) ends the transaction.
#[test]
fn s17_1_1_2_timer_a_doubles_until_timer_b() {
    let mut uac = Harness::default();
    let id = uac.send_request(invite(BRANCH), bob());
    assert_eq!(uac.state(id), Some(TransactionState::Calling));
    uac.run_to_idle();
    assert_eq!(
        uac.request_times("INVITE"),
        [0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]
    );
    assert!(uac.sent.iter().all(|s| s.to == bob()));
    assert_eq!(
        uac.events,
        [
            (
                ms(32_000),
                Event::TimedOut {
                    transaction: id,
                    timer: Timer::B
                }
            ),
            (ms(32_000), Event::Terminated { transaction: id }),
        ]
    );
    assert!(uac.layer.is_empty());
    assert_eq!(uac.layer.poll_timeout(), None);
}

/// §17.1.1.2: Timer A and B follow a configured T1.
#[test]
fn s17_1_1_2_timers_follow_configured_t1() {
    let mut uac = Harness::new(LayerConfig {
        timers: TimerConfig {
            t1: ms(100),
            ..TimerConfig::default()
        },
        ..LayerConfig::default()
    });
    uac.send_request(invite(BRANCH), bob());
    uac.run_to_idle();
    assert_eq!(
        uac.request_times("INVITE"),
        [0, 100, 300, 700, 1_500, 3_100, 6_300]
    );
    assert_eq!(uac.events[0].0, ms(6_400));
}

/// §17.1.1.2: "Timer A ... for unreliable transports only". Timer B still runs.
#[test]
fn s17_1_1_2_reliable_transport_does_not_retransmit() {
    let mut uac = Harness::default();
    let tcp = Peer::reliable(bob().remote, Some(7));
    let id = uac.send_request(invite(BRANCH), tcp);
    uac.run_to_idle();
    assert_eq!(uac.request_times("INVITE"), [0]);
    assert_eq!(uac.sent[0].to.flow, Some(7));
    assert!(matches!(
        uac.events[0],
        (at, Event::TimedOut { transaction, timer: Timer::B }) if at == ms(32_000) && transaction == id
    ));
}

/// §17.1.1.2: a provisional response moves to Proceeding, stops retransmissions, and
/// reaches the TU; every further provisional does too.
#[test]
fn s17_1_1_2_provisional_stops_retransmissions() {
    let mut uac = Harness::default();
    let request = invite(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    uac.advance_to(ms(700));
    uac.receive_response(response(&request, 100, None), bob());
    uac.advance_to(ms(900));
    uac.receive_response(response(&request, 180, Some("bob1")), bob());
    assert_eq!(uac.state(id), Some(TransactionState::Proceeding));
    uac.advance_to(ms(120_000));
    assert_eq!(uac.request_times("INVITE"), [0, 500]);
    assert_eq!(uac.responses_seen(), [100, 180]);
    assert_eq!(uac.state(id), Some(TransactionState::Proceeding));
}

/// Timer C (RFC 3261 §16.6 item 11, restarted by each provisional): the TU is told to
/// cancel, then the transaction ends 64·T1 later unless a final response arrives.
#[test]
fn timer_c_tells_the_tu_then_ends_the_transaction() {
    let mut uac = Harness::default();
    let request = invite(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    uac.receive_response(response(&request, 180, Some("bob1")), bob());
    uac.advance_to(ms(60_000));
    uac.receive_response(response(&request, 183, Some("bob1")), bob());
    uac.run_to_idle();
    let timed_out: Vec<_> = uac
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::TimedOut { timer, .. } => Some((at.as_millis(), *timer)),
            _ => None,
        })
        .collect();
    assert_eq!(timed_out, [(241_000, Timer::C), (273_000, Timer::B)]);
    assert_eq!(
        uac.events.last().unwrap().1,
        Event::Terminated { transaction: id }
    );
}

/// §17.1.1.2 / §17.1.1.3: a 300-699 response is acknowledged by the transaction with an
/// ACK built from the INVITE and the response's To.
#[test]
fn s17_1_1_3_ack_for_non_2xx_is_built_from_the_invite() {
    let mut uac = Harness::default();
    let request = invite(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    uac.advance_to(ms(600));
    let busy = response(&request, 486, Some("bob-tag"));
    uac.receive_response(busy.clone(), bob());

    assert_eq!(uac.state(id), Some(TransactionState::Completed));
    assert_eq!(uac.responses_seen(), [486]);
    let ack = uac.sent.last().unwrap();
    assert_eq!(ack.to, bob());
    assert_eq!(ack.transaction, Some(id));
    let ack = ack.request();
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, request.uri);
    let h = &ack.headers;
    // Only the top Via, unchanged (so the ACK matches the server transaction).
    assert_eq!(h.vias().unwrap(), [request.headers.top_via().unwrap()]);
    assert_eq!(h.call_id().unwrap(), request.headers.call_id().unwrap());
    assert_eq!(h.from().unwrap(), request.headers.from().unwrap());
    assert_eq!(h.to().unwrap(), busy.headers.to().unwrap());
    assert_eq!(h.to().unwrap().tag().unwrap().as_ref(), b"bob-tag");
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (314159, Method::Ack));
    assert_eq!(h.routes().unwrap(), request.headers.routes().unwrap());
    assert_eq!(h.max_forwards().unwrap(), Some(70));
    assert!(ack.body.is_empty());
    assert!(!h.contains(&HeaderName::Contact));
}

/// §17.1.1.2: in Completed, retransmitted finals are acknowledged again and absorbed;
/// Timer D (32 s on UDP) ends the transaction.
#[test]
fn s17_1_1_2_timer_d_absorbs_final_retransmissions() {
    let mut uac = Harness::default();
    let request = invite(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    let busy = response(&request, 486, Some("bob-tag"));
    uac.advance_to(ms(100));
    uac.receive_response(busy.clone(), bob());
    uac.advance_to(ms(600));
    uac.receive_response(busy.clone(), bob());
    uac.advance_to(ms(1_600));
    uac.receive_response(busy.clone(), bob());
    // A provisional or 2xx now is dropped.
    uac.receive_response(response(&request, 180, Some("x")), bob());
    assert_eq!(uac.request_times("ACK"), [100, 600, 1_600]);
    assert_eq!(uac.responses_seen(), [486]);
    uac.run_to_idle();
    assert_eq!(
        uac.events.last().unwrap(),
        &(ms(32_100), Event::Terminated { transaction: id })
    );
    // After Timer D, the same response is a stray.
    uac.receive_response(busy, bob());
    assert!(matches!(
        uac.events.last().unwrap().1,
        Event::StrayResponse { .. }
    ));
    assert_eq!(uac.layer.stats().stray_responses, 1);
}

/// §17.1.1.2: Timer D is zero on reliable transports: the ACK is sent and the transaction
/// ends at once.
#[test]
fn s17_1_1_2_reliable_transport_terminates_after_ack() {
    let mut uac = Harness::default();
    let tcp = Peer::reliable(bob().remote, None);
    let request = invite(BRANCH);
    let id = uac.send_request(request.clone(), tcp);
    uac.receive_response(response(&request, 603, Some("t")), tcp);
    assert_eq!(uac.request_times("ACK"), [0]);
    assert_eq!(uac.state(id), None);
    assert_eq!(
        uac.event_list().last(),
        Some(&Event::Terminated { transaction: id })
    );
}

/// RFC 6026 §7.2: a 2xx moves to Accepted; every 2xx (retransmissions, other forks) goes
/// to the TU, which acknowledges them itself; the transaction sends no ACK.
#[test]
fn rfc6026_2xx_retransmissions_reach_the_tu_in_accepted() {
    let mut uac = Harness::default();
    let request = invite(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    uac.advance_to(ms(200));
    let ok = response(&request, 200, Some("fork-1"));
    uac.receive_response(ok.clone(), bob());
    assert_eq!(uac.state(id), Some(TransactionState::Accepted));
    uac.advance_to(ms(700));
    uac.receive_response(ok.clone(), bob());
    uac.receive_response(response(&request, 200, Some("fork-2")), bob());
    // Non-2xx in Accepted are dropped.
    uac.receive_response(response(&request, 486, Some("fork-3")), bob());
    uac.receive_response(response(&request, 180, Some("fork-3")), bob());
    assert_eq!(uac.responses_seen(), [200, 200, 200]);
    assert_eq!(uac.request_times("INVITE"), [0]);
    assert!(uac.request_times("ACK").is_empty());

    // Timer M = 64·T1 after the first 2xx.
    uac.advance_to(ms(32_199));
    assert_eq!(uac.state(id), Some(TransactionState::Accepted));
    uac.advance_to(ms(32_200));
    assert_eq!(uac.state(id), None);
    uac.receive_response(ok, bob());
    assert!(matches!(
        uac.events.last().unwrap().1,
        Event::StrayResponse { .. }
    ));
}

/// §17.1.1.2: a transport error in Calling ends the transaction and tells the TU.
#[test]
fn s17_1_1_2_transport_error_ends_the_transaction() {
    let mut uac = Harness::default();
    let id = uac.send_request(invite(BRANCH), bob());
    uac.advance_to(ms(10));
    uac.transport_error(id);
    assert_eq!(
        uac.event_list(),
        [
            Event::TransportError { transaction: id },
            Event::Terminated { transaction: id }
        ]
    );
    assert_eq!(uac.layer.poll_timeout(), None);
    // A second report for the same (gone) transaction is ignored.
    uac.transport_error(id);
    assert_eq!(uac.events.len(), 2);
}

/// A late final response after Timer B is a stray response for the TU.
#[test]
fn s17_1_1_2_final_after_timer_b_is_stray() {
    let mut uac = Harness::default();
    let request = invite(BRANCH);
    uac.send_request(request.clone(), bob());
    uac.advance_to(Duration::from_secs(40));
    uac.receive_response(response(&request, 200, Some("late")), bob());
    assert!(matches!(
        uac.events.last().unwrap().1,
        Event::StrayResponse { ref response, source } if response.status.as_u16() == 200 && source == bob()
    ));
}

/// Once Timer C has fired, provisional responses no longer extend the transaction: a peer
/// cannot hold it open with a stream of 183s.
#[test]
fn timer_c_grace_is_not_extended_by_provisionals() {
    let mut uac = Harness::default();
    let request = invite(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    uac.receive_response(response(&request, 180, Some("bob1")), bob());
    uac.advance_to(ms(190_000));
    uac.receive_response(response(&request, 183, Some("bob1")), bob());
    uac.advance_to(ms(212_999));
    assert_eq!(uac.state(id), Some(TransactionState::Proceeding));
    uac.advance_to(ms(213_000));
    assert_eq!(uac.state(id), None);
    assert_eq!(uac.responses_seen(), [180, 183]);
}

/// Timer C configured off: Proceeding waits for the final response, however long.
#[test]
fn timer_c_can_be_disabled() {
    let mut uac = Harness::new(LayerConfig {
        timers: TimerConfig {
            timer_c: None,
            ..TimerConfig::default()
        },
        ..LayerConfig::default()
    });
    let request = invite(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    uac.receive_response(response(&request, 180, Some("bob1")), bob());
    assert_eq!(uac.layer.poll_timeout(), None);
    uac.advance_to(ms(3_600_000));
    uac.receive_response(response(&request, 487, Some("bob1")), bob());
    assert_eq!(uac.responses_seen(), [180, 487]);
    assert_eq!(uac.state(id), Some(TransactionState::Completed));
}
