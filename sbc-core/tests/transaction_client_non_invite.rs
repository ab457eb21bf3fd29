//! RFC 3261 §17.1.2 (non-INVITE client transaction).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transaction_support;

use sbc_core::transaction::{Event, LayerConfig, Peer, Timer, TimerConfig, TransactionState};
use transaction_support::*;

const BRANCH: &str = "z9hG4bKnashds7";

/// §17.1.2.2: Timer E starts at T1 and doubles up to T2 (500 ms, 1 s, 2 s, 4 s, 4 s …);
/// Timer F (64·T1) ends the transaction with a timeout for the TU.
#[test]
fn s17_1_2_2_timer_e_doubles_up_to_t2_until_timer_f() {
    let mut uac = Harness::default();
    let id = uac.send_request(options(BRANCH), bob());
    assert_eq!(uac.state(id), Some(TransactionState::Trying));
    uac.run_to_idle();
    assert_eq!(
        uac.request_times("OPTIONS"),
        [
            0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(
        uac.events,
        [
            (
                ms(32_000),
                Event::TimedOut {
                    transaction: id,
                    timer: Timer::F
                }
            ),
            (ms(32_000), Event::Terminated { transaction: id }),
        ]
    );
}

/// §17.1.2.2 with non-default T1/T2.
#[test]
fn s17_1_2_2_timer_e_follows_configured_t1_and_t2() {
    let mut uac = Harness::new(LayerConfig {
        timers: TimerConfig {
            t1: ms(100),
            t2: ms(400),
            ..TimerConfig::default()
        },
        ..LayerConfig::default()
    });
    uac.send_request(options(BRANCH), bob());
    uac.run_to_idle();
    let times = uac.request_times("OPTIONS");
    assert_eq!(times[..6], [0, 100, 300, 700, 1_100, 1_500]);
    assert!(times.windows(2).skip(3).all(|w| w[1] - w[0] == 400));
    assert_eq!(*times.last().unwrap(), 6_300);
    assert_eq!(uac.events[0].0, ms(6_400));
}

/// §17.1.2.2: in Proceeding, Timer E fires every T2; provisionals reach the TU.
#[test]
fn s17_1_2_2_proceeding_retransmits_every_t2() {
    let mut uac = Harness::default();
    let request = options(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    uac.advance_to(ms(600));
    uac.receive_response(response(&request, 100, None), bob());
    assert_eq!(uac.state(id), Some(TransactionState::Proceeding));
    uac.advance_to(ms(14_000));
    // 0 and 500 in Trying; the E armed at 500 (1 s) fires at 1 500, then every T2.
    assert_eq!(
        uac.request_times("OPTIONS"),
        [0, 500, 1_500, 5_500, 9_500, 13_500]
    );
    uac.receive_response(response(&request, 200, Some("t")), bob());
    assert_eq!(uac.responses_seen(), [100, 200]);
    assert_eq!(uac.state(id), Some(TransactionState::Completed));
    uac.advance_to(ms(60_000));
    assert_eq!(uac.request_times("OPTIONS").len(), 6);
}

/// §17.1.2.2: a final response goes to the TU once; Timer K (T4 on UDP) absorbs its
/// retransmissions.
#[test]
fn s17_1_2_2_timer_k_absorbs_response_retransmissions() {
    let mut uac = Harness::default();
    let request = options(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    uac.advance_to(ms(700));
    let ok = response(&request, 200, Some("t"));
    uac.receive_response(ok.clone(), bob());
    uac.advance_to(ms(2_000));
    uac.receive_response(ok.clone(), bob());
    uac.receive_response(response(&request, 404, Some("t")), bob());
    assert_eq!(uac.responses_seen(), [200]);
    assert_eq!(uac.layer.stats().stray_responses, 0);
    uac.advance_to(ms(5_699));
    assert_eq!(uac.state(id), Some(TransactionState::Completed));
    uac.advance_to(ms(5_700));
    assert_eq!(uac.state(id), None);
    assert_eq!(uac.request_times("OPTIONS"), [0, 500]);
    // Later, the same response is a stray.
    uac.receive_response(ok, bob());
    assert_eq!(uac.layer.stats().stray_responses, 1);
}

/// §17.1.2.2: on a reliable transport nothing is retransmitted and Timer K is zero.
#[test]
fn s17_1_2_2_reliable_transport() {
    let mut uac = Harness::default();
    let tcp = Peer::reliable(bob().remote, Some(3));
    let request = options(BRANCH);
    let id = uac.send_request(request.clone(), tcp);
    uac.advance_to(ms(10_000));
    assert_eq!(uac.request_times("OPTIONS"), [0]);
    uac.receive_response(response(&request, 200, Some("t")), tcp);
    assert_eq!(uac.state(id), None);
    assert_eq!(
        uac.event_list()[1..],
        [Event::Terminated { transaction: id }]
    );
}

/// §17.1.2.2: a final response straight from Trying; Timer F no longer fires.
#[test]
fn s17_1_2_2_final_in_trying_cancels_timer_f() {
    let mut uac = Harness::default();
    let request = options(BRANCH);
    let id = uac.send_request(request.clone(), bob());
    uac.receive_response(response(&request, 503, Some("t")), bob());
    uac.run_to_idle();
    assert_eq!(uac.responses_seen(), [503]);
    assert!(
        !uac.event_list()
            .iter()
            .any(|e| matches!(e, Event::TimedOut { .. }))
    );
    assert_eq!(
        uac.events.last().unwrap(),
        &(ms(5_000), Event::Terminated { transaction: id })
    );
}

/// §17.1.4: a transport error in Trying ends the transaction.
#[test]
fn s17_1_4_transport_error() {
    let mut uac = Harness::default();
    let id = uac.send_request(options(BRANCH), bob());
    uac.transport_error(id);
    assert_eq!(
        uac.event_list(),
        [
            Event::TransportError { transaction: id },
            Event::Terminated { transaction: id }
        ]
    );
    assert!(uac.layer.is_empty());
}
