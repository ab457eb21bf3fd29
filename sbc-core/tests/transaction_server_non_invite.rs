//! RFC 3261 §17.2.2 (non-INVITE server transaction).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transaction_support;

use sbc_core::transaction::{Event, Peer, SendError, Timer, TransactionState};
use transaction_support::*;

const BRANCH: &str = "z9hG4bKnashds8";

/// §17.2.2: the request reaches the TU once; in Trying, retransmissions are absorbed
/// without an answer (no 100 for non-INVITE).
#[test]
fn s17_2_2_trying_absorbs_retransmissions_silently() {
    let mut uas = Harness::default();
    let request = options(BRANCH);
    uas.receive_request(request.clone(), alice()).unwrap();
    let Some((
        _,
        Event::Request {
            transaction: id,
            source,
            ..
        },
    )) = uas.events.first().cloned()
    else {
        panic!("no request event");
    };
    assert_eq!(source, alice());
    assert_eq!(uas.state(id), Some(TransactionState::Trying));
    uas.advance_to(ms(500));
    uas.receive_request(request.clone(), alice()).unwrap();
    uas.advance_to(ms(10_000));
    assert!(uas.sent.is_empty());
    assert_eq!(uas.requests_seen(), 1);
}

/// §17.2.2: in Proceeding, retransmissions get the last provisional response.
#[test]
fn s17_2_2_proceeding_resends_the_last_provisional() {
    let mut uas = Harness::default();
    let request = options(BRANCH);
    uas.receive_request(request.clone(), alice()).unwrap();
    uas.advance_to(ms(100));
    let id = uas.respond(response(&request, 100, None)).unwrap();
    assert_eq!(uas.state(id), Some(TransactionState::Proceeding));
    uas.advance_to(ms(500));
    uas.receive_request(request.clone(), alice()).unwrap();
    assert_eq!(uas.response_times(100), [100, 500]);
    assert!(uas.sent.iter().all(|s| s.to == alice()));
}

/// §17.2.2: in Completed, retransmissions get the final response until Timer J (64·T1);
/// afterwards the same request is new again.
#[test]
fn s17_2_2_completed_resends_the_final_until_timer_j() {
    let mut uas = Harness::default();
    let request = options(BRANCH);
    uas.receive_request(request.clone(), alice()).unwrap();
    uas.advance_to(ms(50));
    let id = uas.respond(response(&request, 200, Some("b"))).unwrap();
    assert_eq!(uas.state(id), Some(TransactionState::Completed));
    for at in [500, 1_500, 3_500, 31_500] {
        uas.advance_to(ms(at));
        uas.receive_request(request.clone(), alice()).unwrap();
    }
    assert_eq!(uas.response_times(200), [50, 500, 1_500, 3_500, 31_500]);
    assert_eq!(uas.requests_seen(), 1);
    uas.advance_to(ms(32_049));
    assert_eq!(uas.state(id), Some(TransactionState::Completed));
    uas.advance_to(ms(32_050));
    assert_eq!(uas.state(id), None);
    uas.receive_request(request, alice()).unwrap();
    assert_eq!(uas.requests_seen(), 2);
}

/// §17.2.2: once the final response is sent, the TU cannot send another.
#[test]
fn s17_2_2_only_one_final_response() {
    let mut uas = Harness::default();
    let request = options(BRANCH);
    uas.receive_request(request.clone(), alice()).unwrap();
    uas.respond(response(&request, 200, Some("b"))).unwrap();
    assert_eq!(
        uas.respond(response(&request, 200, Some("b"))),
        Err(SendError::FinalResponseAlreadySent)
    );
    assert_eq!(
        uas.respond(response(&request, 180, Some("b"))),
        Err(SendError::FinalResponseAlreadySent)
    );
    assert_eq!(uas.response_times(200), [0]);
}

/// §17.2.2: Timer J is zero on reliable transports.
#[test]
fn s17_2_2_reliable_transport_terminates_on_final() {
    let mut uas = Harness::default();
    let tls = Peer::reliable(alice().remote, Some(42));
    let request = options(BRANCH);
    uas.receive_request(request.clone(), tls).unwrap();
    let id = uas.respond(response(&request, 200, Some("b"))).unwrap();
    assert_eq!(uas.sent[0].to, tls);
    assert_eq!(uas.state(id), None);
    assert_eq!(
        uas.event_list().last(),
        Some(&Event::Terminated { transaction: id })
    );
}

/// §17.2.4: transport error while sending the final response.
#[test]
fn s17_2_4_transport_error() {
    let mut uas = Harness::default();
    let request = options(BRANCH);
    uas.receive_request(request.clone(), alice()).unwrap();
    let id = uas.respond(response(&request, 200, Some("b"))).unwrap();
    uas.transport_error(id);
    assert_eq!(
        uas.event_list()[1..],
        [
            Event::TransportError { transaction: id },
            Event::Terminated { transaction: id }
        ]
    );
}

/// Beyond RFC 3261: a request the TU never answers ends at 64·T1 (when the client's
/// Timer F has given up) with `TimedOut { Unanswered }`, so it cannot hold a slot forever.
#[test]
fn unanswered_request_ends_at_64_t1() {
    let mut uas = Harness::default();
    let request = options(BRANCH);
    uas.receive_request(request.clone(), alice()).unwrap();
    let Some((
        _,
        Event::Request {
            transaction: id, ..
        },
    )) = uas.events.first().cloned()
    else {
        panic!("no request event");
    };
    uas.advance_to(ms(31_999));
    assert_eq!(uas.state(id), Some(TransactionState::Trying));
    uas.advance_to(ms(32_000));
    assert_eq!(uas.state(id), None);
    assert!(uas.events.iter().any(|(at, event)| *at == ms(32_000)
        && matches!(event, Event::TimedOut { transaction, timer: Timer::Unanswered } if *transaction == id)));
    assert!(
        uas.sent.is_empty(),
        "nothing is sent for an unanswered request"
    );
    assert!(uas.respond(response(&request, 200, Some("late"))).is_err());
}

/// A provisional answer does not stop the guard; a final one does.
#[test]
fn the_guard_stops_at_the_final_response_only() {
    let mut uas = Harness::default();
    let provisional_only = options("z9hG4bKguard1");
    uas.receive_request(provisional_only.clone(), alice())
        .unwrap();
    let answered = options("z9hG4bKguard2");
    uas.receive_request(answered.clone(), alice()).unwrap();
    uas.advance_to(ms(10));
    uas.respond(response(&provisional_only, 100, None)).unwrap();
    let id = uas.respond(response(&answered, 200, Some("t"))).unwrap();
    uas.advance_to(ms(32_000));
    let timed_out: Vec<_> = uas
        .events
        .iter()
        .filter(|(_, event)| {
            matches!(
                event,
                Event::TimedOut {
                    timer: Timer::Unanswered,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(timed_out.len(), 1);
    // The answered one ends by Timer J, 64·T1 after its response, not by the guard.
    assert_eq!(uas.state(id), Some(TransactionState::Completed));
}
