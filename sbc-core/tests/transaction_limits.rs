//! Limits and robustness: bounded transactions and queues, refusals typed by fault, and no
//! panic on any sequence of inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transaction_support;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use sbc_core::sip::{HeaderName, Message, Method, Request, Response, Uri};
use sbc_core::transaction::{
    Event, LayerConfig, Peer, RefuseReason, SendError, TimerConfig, TransactionId, TransactionLayer,
};
use transaction_support::*;

fn small(max_transactions: usize, max_transmits: usize, max_events: usize) -> LayerConfig {
    LayerConfig {
        max_transactions,
        max_queued_transmits: max_transmits,
        max_queued_events: max_events,
        ..LayerConfig::default()
    }
}

#[test]
fn transaction_limit_refuses_new_requests_with_503() {
    let mut uas = Harness::new(small(2, 100, 100));
    uas.receive_request(options("z9hG4bK1"), alice()).unwrap();
    uas.receive_request(invite("z9hG4bK2"), alice()).unwrap();
    let refused = uas
        .receive_request(options("z9hG4bK3"), alice())
        .unwrap_err();
    assert_eq!(refused.reason, RefuseReason::TransactionLimit);
    assert_eq!(refused.reason.name(), "transaction_limit");
    assert_eq!(refused.response_status().unwrap().as_u16(), 503);
    assert_eq!(*refused.request, options("z9hG4bK3"));
    assert_eq!(refused.from, alice());
    // Retransmissions of existing transactions are still absorbed.
    uas.receive_request(options("z9hG4bK1"), alice()).unwrap();
    assert_eq!(uas.requests_seen(), 2);
    // The TU's own requests are refused too.
    assert_eq!(
        uas.layer
            .handle_send_request(uas.now, options("z9hG4bK4"), bob()),
        Err(SendError::TransactionLimit)
    );
    // The stateless 503 can still be sent.
    let busy = response(&refused.request, 503, None);
    uas.layer
        .handle_send_stateless(&Message::Response(busy), refused.from)
        .unwrap();
    assert_eq!(uas.layer.poll_transmit().unwrap().transaction, None);
    // Once a transaction ends, there is room again.
    uas.respond(response(&options("z9hG4bK1"), 200, Some("t")))
        .unwrap();
    uas.advance(Duration::from_secs(40));
    uas.receive_request(options("z9hG4bK3"), alice()).unwrap();
    assert_eq!(uas.requests_seen(), 3);
}

#[test]
fn malformed_requests_are_refused_with_400_but_acks_are_never_answered() {
    let mut layer = TransactionLayer::new(LayerConfig::default());
    let now = Instant::now();
    let uri = Uri::parse(b"sip:bob@example.com").unwrap();
    let bare = Request::new(Method::Options, uri.clone());
    let refused = layer
        .handle_incoming(now, Message::Request(bare), alice())
        .unwrap_err();
    assert_eq!(refused.reason, RefuseReason::BadVia);
    assert_eq!(refused.response_status().unwrap().as_u16(), 400);

    let mut no_cseq = Request::new(Method::Options, uri.clone());
    no_cseq
        .headers
        .push(HeaderName::Via, "SIP/2.0/UDP h;branch=z9hG4bKx");
    let refused = layer
        .handle_incoming(now, Message::Request(no_cseq), alice())
        .unwrap_err();
    assert_eq!(refused.reason, RefuseReason::BadCSeq);

    let mut mismatch = Request::new(Method::Options, uri.clone());
    mismatch
        .headers
        .push(HeaderName::Via, "SIP/2.0/UDP h;branch=z9hG4bKx");
    mismatch.headers.push(HeaderName::CSeq, "1 INVITE");
    let refused = layer
        .handle_incoming(now, Message::Request(mismatch), alice())
        .unwrap_err();
    assert_eq!(refused.reason, RefuseReason::CSeqMethodMismatch);

    let mut legacy = Request::new(Method::Options, uri.clone());
    legacy.headers.push(HeaderName::Via, "SIP/2.0/UDP h");
    legacy.headers.push(HeaderName::CSeq, "1 OPTIONS");
    let refused = layer
        .handle_incoming(now, Message::Request(legacy), alice())
        .unwrap_err();
    assert_eq!(refused.reason, RefuseReason::BadLegacyIdentifiers);

    let ack = Request::new(Method::Ack, uri);
    let refused = layer
        .handle_incoming(now, Message::Request(ack), alice())
        .unwrap_err();
    assert_eq!(refused.response_status(), None);
    assert!(layer.is_empty());
    assert_eq!(layer.poll_event(), None);
}

#[test]
fn malformed_responses_are_dropped_and_counted() {
    let mut layer = TransactionLayer::new(LayerConfig::default());
    let ok = Response::new(sbc_core::sip::StatusCode::OK);
    layer
        .handle_incoming(Instant::now(), Message::Response(ok), bob())
        .unwrap();
    assert_eq!(layer.stats().responses_malformed, 1);
    assert_eq!(layer.poll_event(), None);
}

#[test]
fn event_backlog_refuses_new_requests_and_drops_responses() {
    let mut layer = TransactionLayer::new(small(100, 100, 2));
    let now = Instant::now();
    let client = layer
        .handle_send_request(now, options("z9hG4bKmine"), bob())
        .unwrap();
    for branch in ["z9hG4bK1", "z9hG4bK2"] {
        layer
            .handle_incoming(now, Message::Request(options(branch)), alice())
            .unwrap();
    }
    let refused = layer
        .handle_incoming(now, Message::Request(options("z9hG4bK3")), alice())
        .unwrap_err();
    assert_eq!(refused.reason, RefuseReason::EventBacklog);
    assert_eq!(refused.response_status().unwrap().as_u16(), 503);
    let ok = response(&options("z9hG4bKmine"), 200, Some("t"));
    layer
        .handle_incoming(now, Message::Response(ok.clone()), bob())
        .unwrap();
    assert_eq!(layer.stats().responses_dropped_backlog, 1);
    // Draining makes room; the retransmitted response then gets through.
    while layer.poll_event().is_some() {}
    layer
        .handle_incoming(now, Message::Response(ok), bob())
        .unwrap();
    assert!(matches!(
        layer.poll_event(),
        Some(Event::Response { transaction, .. }) if transaction == client
    ));
}

#[test]
fn transmit_queue_is_bounded() {
    let mut layer = TransactionLayer::new(small(100, 3, 100));
    let now = Instant::now();
    for i in 0..3 {
        layer
            .handle_send_request(now, options(&format!("z9hG4bK{i}")), bob())
            .unwrap();
    }
    assert_eq!(
        layer.handle_send_request(now, options("z9hG4bK9"), bob()),
        Err(SendError::TransmitBacklog)
    );
    // Retransmissions that find the queue full are dropped and counted, like lost packets.
    layer.handle_timeout(now + Duration::from_millis(500));
    assert_eq!(layer.stats().transmits_dropped, 3);
    let mut count = 0;
    while layer.poll_transmit().is_some() {
        count += 1;
    }
    assert_eq!(count, 3);
}

#[test]
fn zero_timers_do_not_spin() {
    let config = LayerConfig {
        timers: TimerConfig {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            t4: Duration::ZERO,
            timer_c: Some(Duration::ZERO),
            trying_delay: Duration::ZERO,
            invite_answer_limit: Duration::ZERO,
        },
        ..LayerConfig::default()
    };
    let mut uac = Harness::new(config);
    uac.send_request(invite("z9hG4bKzero"), bob());
    uac.send_request(options("z9hG4bKzero"), bob());
    uac.run_to_idle();
    assert!(uac.layer.is_empty());
}

#[test]
fn huge_timers_do_not_overflow() {
    let config = LayerConfig {
        timers: TimerConfig {
            t1: Duration::MAX,
            t2: Duration::MAX,
            t4: Duration::MAX,
            timer_c: Some(Duration::MAX),
            trying_delay: Duration::MAX,
            invite_answer_limit: Duration::MAX,
        },
        ..LayerConfig::default()
    };
    let mut uac = Harness::new(config);
    uac.send_request(invite("z9hG4bKhuge"), bob());
    uac.receive_request(invite("z9hG4bKother"), alice())
        .unwrap();
    uac.advance(Duration::from_secs(3_600));
    assert_eq!(uac.layer.len(), 2);
}

// ------------------------------------------------------------------ random sequences

/// A small pool of messages, so that random picks collide on branches and keys.
fn pool() -> Vec<Request> {
    let mut requests = Vec::new();
    for branch in ["z9hG4bKa", "z9hG4bKb", "legacy"] {
        for method in ["INVITE", "OPTIONS", "ACK", "CANCEL", "BYE"] {
            requests.push(RequestSpec::new(method, branch).build());
            requests.push(RequestSpec::new(method, branch).with_to_tag("x").build());
        }
    }
    requests.push(
        RequestSpec::new("INVITE", "z9hG4bKa")
            .via("SIP/2.0/TCP other.example.com;branch=z9hG4bKa")
            .build(),
    );
    requests.push(Request::new(
        Method::Invite,
        Uri::parse(b"sip:x@y").unwrap(),
    ));
    requests
}

#[derive(Clone, Debug)]
enum Op {
    Incoming {
        index: usize,
        reliable: bool,
    },
    IncomingResponse {
        index: usize,
        status: u16,
        tag: bool,
    },
    SendRequest {
        index: usize,
        reliable: bool,
    },
    SendResponse {
        index: usize,
        status: u16,
    },
    SendStateless {
        index: usize,
    },
    TransportError {
        id: u64,
    },
    Advance {
        ms: u64,
    },
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    let status = prop_oneof![Just(100u16), Just(180), Just(200), Just(486), 100u16..700];
    prop_oneof![
        (0usize..64, any::<bool>()).prop_map(|(index, reliable)| Op::Incoming { index, reliable }),
        (0usize..64, status.clone(), any::<bool>())
            .prop_map(|(index, status, tag)| Op::IncomingResponse { index, status, tag }),
        (0usize..64, any::<bool>())
            .prop_map(|(index, reliable)| Op::SendRequest { index, reliable }),
        (0usize..64, status).prop_map(|(index, status)| Op::SendResponse { index, status }),
        (0usize..64).prop_map(|index| Op::SendStateless { index }),
        (0u64..40).prop_map(|id| Op::TransportError { id }),
        prop_oneof![0u64..600, 0u64..40_000].prop_map(|ms| Op::Advance { ms }),
        Just(Op::Drain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No sequence of inputs panics; the limits hold throughout.
    #[test]
    fn random_sequences_never_panic(ops in proptest::collection::vec(op(), 1..120)) {
        let pool = pool();
        let config = small(8, 16, 16);
        let mut layer = TransactionLayer::new(config);
        let start = Instant::now();
        let mut now = start;
        let mut ids: Vec<TransactionId> = Vec::new();
        for op in ops {
            let pick = |i: usize| pool[i % pool.len()].clone();
            let peer = |reliable: bool| if reliable {
                Peer::reliable(alice().remote, Some(1))
            } else {
                alice()
            };
            match op {
                Op::Incoming { index, reliable } => {
                    let _ = layer.handle_incoming(now, Message::Request(pick(index)), peer(reliable));
                }
                Op::IncomingResponse { index, status, tag } => {
                    let request = pick(index);
                    let status = sbc_core::sip::StatusCode::new(status).unwrap();
                    let response = request.make_response(status, None, tag.then_some("t"));
                    let _ = layer.handle_incoming(now, Message::Response(response), bob());
                }
                Op::SendRequest { index, reliable } => {
                    if let Ok(id) = layer.handle_send_request(now, pick(index), peer(reliable)) {
                        ids.push(id);
                    }
                }
                Op::SendResponse { index, status } => {
                    let status = sbc_core::sip::StatusCode::new(status).unwrap();
                    let _ = layer.handle_send_response(now, pick(index).make_response(status, None, Some("t")));
                }
                Op::SendStateless { index } => {
                    let _ = layer.handle_send_stateless(&Message::Request(pick(index)), bob());
                }
                Op::TransportError { id } => {
                    if let Some(&id) = ids.get(usize::try_from(id).unwrap()) {
                        layer.handle_transport_error(now, id);
                    }
                }
                Op::Advance { ms } => {
                    now += Duration::from_millis(ms);
                    layer.handle_timeout(now);
                }
                Op::Drain => {
                    let mut transmits = 0;
                    while layer.poll_transmit().is_some() {
                        transmits += 1;
                    }
                    let mut events = 0;
                    while let Some(event) = layer.poll_event() {
                        if let Event::Request { transaction, .. } = event {
                            ids.push(transaction);
                        }
                        events += 1;
                    }
                    prop_assert!(transmits <= config.max_queued_transmits);
                    prop_assert!(events <= config.max_queued_events);
                }
            }
            prop_assert!(layer.len() <= config.max_transactions);
            if let Some(deadline) = layer.poll_timeout() {
                prop_assert!(deadline > now);
            }
        }
        // Every due timer fires: nothing is left overdue.
        now += Duration::from_secs(1_000);
        layer.handle_timeout(now);
        prop_assert!(layer.poll_timeout().is_none_or(|t| t > now));
    }
}
