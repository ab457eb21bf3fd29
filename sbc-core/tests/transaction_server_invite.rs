//! RFC 3261 §17.2.1 (INVITE server transaction) as amended by RFC 6026 §7.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transaction_support;

use sbc_core::sip::Method;
use sbc_core::transaction::{Event, Peer, SendError, Timer, TransactionId, TransactionState};
use transaction_support::*;

const BRANCH: &str = "z9hG4bK776asdhds";

/// Receives `request` from alice and returns the server transaction it created.
fn receive_new(uas: &mut Harness, request: &sbc_core::sip::Request) -> TransactionId {
    uas.receive_request(request.clone(), alice()).unwrap();
    match uas.events.last() {
        Some((_, Event::Request { transaction, .. })) => *transaction,
        other => panic!("expected a new request, got {other:?}"),
    }
}

/// §17.2.1: the INVITE reaches the TU once; when the TU stays silent for 200 ms the
/// transaction sends `100 Trying` itself.
#[test]
fn s17_2_1_sends_100_trying_after_200_ms() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    let id = receive_new(&mut uas, &request);
    assert_eq!(uas.state(id), Some(TransactionState::Proceeding));
    assert!(uas.sent.is_empty());
    uas.advance_to(ms(1_000));
    assert_eq!(uas.response_times(100), [200]);
    let trying = &uas.sent[0];
    assert_eq!(trying.to, alice());
    let sbc_core::sip::Message::Response(trying) = &trying.message else {
        panic!()
    };
    // A 100 copies Via, From, To (no tag), Call-ID and CSeq.
    assert_eq!(
        trying.headers.vias().unwrap(),
        request.headers.vias().unwrap()
    );
    assert_eq!(trying.headers.to().unwrap().tag(), None);
    assert_eq!(
        trying.headers.cseq().unwrap(),
        request.headers.cseq().unwrap()
    );
    assert_eq!(uas.requests_seen(), 1);
}

/// §17.2.1: no `100 Trying` when the TU answers within 200 ms.
#[test]
fn s17_2_1_no_trying_when_the_tu_answers_in_time() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    receive_new(&mut uas, &request);
    uas.advance_to(ms(150));
    uas.respond(response(&request, 180, Some("b"))).unwrap();
    uas.advance_to(ms(5_000));
    assert_eq!(uas.response_times(100), Vec::<u128>::new());
    assert_eq!(uas.response_times(180), [150]);
}

/// §17.2.1: retransmitted INVITEs are absorbed and answered with the last provisional
/// (the `100 Trying` at once when the TU has sent none yet).
#[test]
fn s17_2_1_retransmissions_are_answered_with_the_last_provisional() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    let id = receive_new(&mut uas, &request);
    uas.advance_to(ms(100));
    uas.receive_request(request.clone(), alice()).unwrap();
    assert_eq!(uas.response_times(100), [100]);
    uas.advance_to(ms(400));
    assert_eq!(
        uas.response_times(100),
        [100],
        "no second Trying from the timer"
    );
    uas.respond(response(&request, 180, Some("b"))).unwrap();
    uas.respond(response(&request, 183, Some("b"))).unwrap();
    uas.advance_to(ms(500));
    uas.receive_request(request.clone(), alice()).unwrap();
    assert_eq!(uas.response_times(183), [400, 500]);
    assert_eq!(uas.requests_seen(), 1);
    assert_eq!(uas.layer.stats().retransmissions_absorbed, 2);
    assert_eq!(uas.state(id), Some(TransactionState::Proceeding));
}

/// §17.2.1: a non-2xx final is retransmitted on Timer G (T1 doubling to T2) until the ACK;
/// Timer H (64·T1) ends the transaction with a timeout when no ACK comes.
#[test]
fn s17_2_1_timer_g_retransmits_non_2xx_until_timer_h() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    let id = receive_new(&mut uas, &request);
    uas.respond(response(&request, 486, Some("b"))).unwrap();
    assert_eq!(uas.state(id), Some(TransactionState::Completed));
    uas.run_to_idle();
    assert_eq!(
        uas.response_times(486),
        [
            0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(
        uas.events[1..],
        [
            (
                ms(32_000),
                Event::TimedOut {
                    transaction: id,
                    timer: Timer::H
                }
            ),
            (ms(32_000), Event::Terminated { transaction: id }),
        ]
    );
}

/// §17.2.1: in Completed an INVITE retransmission gets the final response again.
#[test]
fn s17_2_1_completed_answers_retransmissions_with_the_final() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    receive_new(&mut uas, &request);
    uas.respond(response(&request, 404, Some("b"))).unwrap();
    uas.advance_to(ms(200));
    uas.receive_request(request.clone(), alice()).unwrap();
    assert_eq!(uas.response_times(404), [0, 200]);
    assert_eq!(uas.requests_seen(), 1);
}

/// §17.2.1: the ACK moves Completed to Confirmed (no more G); Timer I (T4) absorbs ACK
/// retransmissions, which never reach the TU.
#[test]
fn s17_2_1_ack_confirms_and_timer_i_absorbs() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    let id = receive_new(&mut uas, &request);
    let busy = response(&request, 486, Some("b"));
    uas.respond(busy.clone()).unwrap();
    uas.advance_to(ms(1_000));
    let ack = ack_for(&request, "b");
    uas.receive_request(ack.clone(), alice()).unwrap();
    assert_eq!(uas.state(id), Some(TransactionState::Confirmed));
    uas.advance_to(ms(3_000));
    uas.receive_request(ack.clone(), alice()).unwrap();
    uas.receive_request(request.clone(), alice()).unwrap();
    assert_eq!(uas.response_times(486), [0, 500]);
    uas.advance_to(ms(5_999));
    assert_eq!(uas.state(id), Some(TransactionState::Confirmed));
    uas.advance_to(ms(6_000));
    assert_eq!(uas.state(id), None);
    assert_eq!(
        uas.event_list()[1..],
        [Event::Terminated { transaction: id }]
    );
}

/// §17.2.1: on a reliable transport there is no Timer G and Timer I is zero.
#[test]
fn s17_2_1_reliable_transport() {
    let mut uas = Harness::default();
    let tcp = Peer::reliable(alice().remote, Some(11));
    let request = invite(BRANCH);
    uas.receive_request(request.clone(), tcp).unwrap();
    uas.respond(response(&request, 486, Some("b"))).unwrap();
    uas.advance_to(ms(10_000));
    assert_eq!(uas.response_times(486), [0]);
    assert_eq!(uas.sent[0].to, tcp);
    uas.receive_request(ack_for(&request, "b"), tcp).unwrap();
    assert!(uas.layer.is_empty());
}

/// RFC 6026 §7.1: a 2xx moves to Accepted. INVITE retransmissions are absorbed without an
/// answer, the TU's own 2xx retransmissions are sent, an ACK that matches goes to the TU,
/// and Timer L (64·T1) ends the transaction.
#[test]
fn rfc6026_accepted_state() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    let id = receive_new(&mut uas, &request);
    let ok = response(&request, 200, Some("b"));
    uas.advance_to(ms(100));
    assert_eq!(uas.respond(ok.clone()), Ok(id));
    assert_eq!(uas.state(id), Some(TransactionState::Accepted));
    uas.advance_to(ms(300));
    uas.receive_request(request.clone(), alice()).unwrap();
    assert_eq!(uas.response_times(200), [100], "retransmission absorbed");
    uas.advance_to(ms(600));
    assert_eq!(uas.respond(ok.clone()), Ok(id));
    assert_eq!(uas.response_times(200), [100, 600]);
    assert_eq!(
        uas.respond(response(&request, 486, Some("b"))),
        Err(SendError::FinalResponseAlreadySent)
    );

    // The ACK for a 2xx has its own branch: it matches no transaction.
    let ack = RequestSpec::new("ACK", "z9hG4bKack2xx")
        .with_to_tag("b")
        .build();
    uas.receive_request(ack, alice()).unwrap();
    assert!(matches!(
        uas.events.last().unwrap().1,
        Event::Ack {
            transaction: None,
            ..
        }
    ));
    // An ACK reusing the INVITE's branch matches the Accepted transaction (RFC 6026 §8.7).
    uas.receive_request(ack_for(&request, "b"), alice())
        .unwrap();
    assert!(matches!(
        uas.events.last().unwrap().1,
        Event::Ack { transaction: Some(t), .. } if t == id
    ));
    assert_eq!(uas.requests_seen(), 1);

    uas.advance_to(ms(32_099));
    assert_eq!(uas.state(id), Some(TransactionState::Accepted));
    uas.advance_to(ms(32_100));
    assert_eq!(uas.state(id), None);
    assert_eq!(uas.respond(ok), Err(SendError::NoSuchTransaction));
}

/// §17.2.1 Timer L also runs on reliable transports (RFC 6026 §8.11: 64·T1).
#[test]
fn rfc6026_timer_l_on_reliable_transport() {
    let mut uas = Harness::default();
    let tcp = Peer::reliable(alice().remote, None);
    let request = invite(BRANCH);
    uas.receive_request(request.clone(), tcp).unwrap();
    uas.respond(response(&request, 200, Some("b"))).unwrap();
    uas.run_to_idle();
    assert_eq!(uas.events.last().unwrap().0, ms(32_000));
    assert!(uas.layer.is_empty());
}

/// §17.2.4: a transport error ends the transaction and tells the TU.
#[test]
fn s17_2_4_transport_error() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    let id = receive_new(&mut uas, &request);
    uas.respond(response(&request, 500, Some("b"))).unwrap();
    uas.transport_error(id);
    assert_eq!(
        uas.event_list()[1..],
        [
            Event::TransportError { transaction: id },
            Event::Terminated { transaction: id }
        ]
    );
    assert_eq!(uas.layer.poll_timeout(), None);
}

/// The ACK a client transaction would send for a non-2xx with To tag `tag`.
fn ack_for(request: &sbc_core::sip::Request, tag: &str) -> sbc_core::sip::Request {
    let mut spec = RequestSpec::new("ACK", "unused").with_to_tag(tag);
    spec.via = request.headers.top_via().unwrap().to_string();
    let ack = spec.build();
    assert_eq!(ack.method, Method::Ack);
    ack
}

/// Beyond RFC 3261: an INVITE its TU never answers finally ends after
/// `invite_answer_limit` (300 s by default) with `TimedOut { UnansweredInvite }`, even
/// when provisionals were sent, so it cannot hold a slot forever.
#[test]
fn unanswered_invite_ends_after_the_answer_limit() {
    let mut uas = Harness::default();
    let request = invite("z9hG4bKunanswered");
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
    uas.advance_to(ms(1_000));
    uas.respond(response(&request, 180, Some("r"))).unwrap();
    uas.advance_to(ms(299_999));
    assert_eq!(uas.state(id), Some(TransactionState::Proceeding));
    uas.advance_to(ms(300_000));
    assert_eq!(uas.state(id), None);
    assert!(uas.events.iter().any(|(_, event)| matches!(
        event,
        Event::TimedOut { transaction, timer: Timer::UnansweredInvite } if *transaction == id
    )));
}
