//! Matching: RFC 3261 §17.1.3 (responses to client transactions), §17.2.3 (requests to
//! server transactions, with the RFC 2543 fallback) and §9.2 (CANCEL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transaction_support;

use sbc_core::sip::Request;
use sbc_core::transaction::{
    Event, RefuseReason, SendError, TransactionId, TransactionState, branch_from_random,
};
use transaction_support::*;

const BRANCH: &str = "z9hG4bK74bf9";

fn request_ids(uas: &Harness) -> Vec<TransactionId> {
    uas.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Request { transaction, .. } => Some(*transaction),
            _ => None,
        })
        .collect()
}

fn response_owners(uac: &Harness) -> Vec<(TransactionId, u16)> {
    uac.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Response {
                transaction,
                response,
            } => Some((*transaction, response.status.as_u16())),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- §17.1.3 client side

/// §17.1.3: a response matches by top-Via branch *and* CSeq method, so the CANCEL and
/// the INVITE it cancels, which share a branch, get their own responses.
#[test]
fn s17_1_3_branch_and_cseq_method_select_the_transaction() {
    let mut uac = Harness::default();
    let request = invite(BRANCH);
    let invite_id = uac.send_request(request.clone(), bob());
    let cancel = cancel_for(&request);
    let cancel_id = uac.send_request(cancel.clone(), bob());
    assert_ne!(invite_id, cancel_id);
    uac.receive_response(response(&cancel, 200, Some("b")), bob());
    uac.receive_response(response(&request, 487, Some("b")), bob());
    assert_eq!(response_owners(&uac), [(cancel_id, 200), (invite_id, 487)]);
}

/// §17.1.3: a response whose branch matches no client transaction goes to the TU as a
/// stray response and is counted.
#[test]
fn s17_1_3_unknown_branch_is_a_stray_response() {
    let mut uac = Harness::default();
    let request = options(BRANCH);
    uac.send_request(request, bob());
    let other = options("z9hG4bKother");
    uac.receive_response(response(&other, 200, Some("b")), bob());
    assert!(matches!(
        uac.events.last().unwrap().1,
        Event::StrayResponse { source, .. } if source == bob()
    ));
    assert_eq!(uac.layer.stats().stray_responses, 1);
}

/// The TU's requests must carry an RFC 3261 branch; ACK is not a transaction; branches are
/// unique per method.
#[test]
fn client_transactions_need_a_fresh_rfc3261_branch() {
    let mut uac = Harness::default();
    let legacy = RequestSpec::new("OPTIONS", "1234").build();
    assert_eq!(
        uac.layer.handle_send_request(uac.now, legacy, bob()),
        Err(SendError::MissingBranch)
    );
    let ack = RequestSpec::new("ACK", BRANCH).build();
    assert_eq!(
        uac.layer.handle_send_request(uac.now, ack, bob()),
        Err(SendError::AckIsNotATransaction)
    );
    let branch = branch_from_random([7; 16]);
    uac.send_request(options(&branch), bob());
    assert_eq!(
        uac.layer
            .handle_send_request(uac.now, options(&branch), bob()),
        Err(SendError::DuplicateTransaction)
    );
}

// ---------------------------------------------------------------- §17.2.3 server side

/// §17.2.3: the same branch from another sent-by is another transaction.
#[test]
fn s17_2_3_sent_by_is_part_of_the_key() {
    let mut uas = Harness::default();
    let first = options(BRANCH);
    let second = RequestSpec::new("OPTIONS", BRANCH)
        .via(format!("SIP/2.0/UDP 192.0.2.77:5060;branch={BRANCH}"))
        .build();
    uas.receive_request(first, alice()).unwrap();
    uas.receive_request(second, alice()).unwrap();
    assert_eq!(uas.requests_seen(), 2);
}

/// §17.2.3: sent-by host names compare case-insensitively; the port is part of it.
#[test]
fn s17_2_3_sent_by_host_is_case_insensitive() {
    let mut uas = Harness::default();
    uas.receive_request(options(BRANCH), alice()).unwrap();
    let shouting = RequestSpec::new("OPTIONS", BRANCH)
        .via(format!(
            "SIP/2.0/UDP PC33.Atlanta.Example.COM;branch={BRANCH}"
        ))
        .build();
    uas.receive_request(shouting, alice()).unwrap();
    assert_eq!(uas.requests_seen(), 1);
    let with_port = RequestSpec::new("OPTIONS", BRANCH)
        .via(format!(
            "SIP/2.0/UDP pc33.atlanta.example.com:5062;branch={BRANCH}"
        ))
        .build();
    uas.receive_request(with_port, alice()).unwrap();
    assert_eq!(uas.requests_seen(), 2);
}

/// §17.2.3: the method is part of the key, ACK counting as INVITE: a non-2xx ACK is
/// absorbed by the INVITE transaction; an OPTIONS with the same branch is new.
#[test]
fn s17_2_3_method_is_part_of_the_key_and_ack_matches_invite() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    uas.receive_request(request.clone(), alice()).unwrap();
    let id = request_ids(&uas)[0];
    uas.respond(response(&request, 486, Some("b"))).unwrap();
    let mut ack = RequestSpec::new("ACK", BRANCH).with_to_tag("b");
    ack.via = request.headers.top_via().unwrap().to_string();
    uas.receive_request(ack.build(), alice()).unwrap();
    assert_eq!(uas.state(id), Some(TransactionState::Confirmed));
    assert!(
        !uas.event_list()
            .iter()
            .any(|e| matches!(e, Event::Ack { .. }))
    );
    uas.receive_request(options(BRANCH), alice()).unwrap();
    assert_eq!(uas.requests_seen(), 2);
}

// ---------------------------------------------------------------- §9.2 CANCEL

/// §9.2: a CANCEL is its own non-INVITE transaction; the TU finds the INVITE it cancels,
/// answers the CANCEL 200 and the INVITE 487.
#[test]
fn s9_2_cancel_finds_the_invite_it_cancels() {
    let mut uas = Harness::default();
    let request = invite(BRANCH);
    uas.receive_request(request.clone(), alice()).unwrap();
    uas.respond(response(&request, 180, Some("b"))).unwrap();
    let cancel = cancel_for(&request);
    uas.advance_to(ms(2_000));
    uas.receive_request(cancel.clone(), alice()).unwrap();
    let ids = request_ids(&uas);
    assert_eq!(ids.len(), 2);
    let (invite_id, cancel_id) = (ids[0], ids[1]);
    assert_ne!(invite_id, cancel_id);
    assert_eq!(uas.layer.invite_cancelled_by(&cancel), Some(invite_id));
    // A CANCEL for another branch, or a non-CANCEL, finds nothing.
    assert_eq!(
        uas.layer
            .invite_cancelled_by(&cancel_for(&invite("z9hG4bKelse"))),
        None
    );
    assert_eq!(uas.layer.invite_cancelled_by(&request), None);

    assert_eq!(
        uas.respond(response(&cancel, 200, Some("b"))),
        Ok(cancel_id)
    );
    assert_eq!(
        uas.respond(response(&request, 487, Some("b"))),
        Ok(invite_id)
    );
    assert_eq!(uas.response_times(487), [2_000]);
    // Once the INVITE transaction is gone, the CANCEL finds nothing.
    uas.run_to_idle();
    assert_eq!(uas.layer.invite_cancelled_by(&cancel), None);
}

// ---------------------------------------------------------------- RFC 2543 fallback

fn legacy(method: &'static str) -> RequestSpec {
    RequestSpec::new(method, "unused").via("SIP/2.0/UDP pc33.atlanta.example.com:5060")
}

/// §17.2.3 (RFC 2543 peers): without the magic cookie, a request matches by Request-URI,
/// To tag, From tag, Call-ID, CSeq and top Via; a retransmission is absorbed.
#[test]
fn s17_2_3_rfc2543_retransmission_is_absorbed() {
    let mut uas = Harness::default();
    let request = legacy("INVITE").build();
    uas.receive_request(request.clone(), alice()).unwrap();
    uas.advance_to(ms(500));
    uas.receive_request(request.clone(), alice()).unwrap();
    assert_eq!(uas.requests_seen(), 1);
    assert_eq!(uas.response_times(100), [200, 500]);
    // A branch without the cookie is RFC 2543 too.
    let old_branch = RequestSpec::new("OPTIONS", "1234abcd").build();
    uas.receive_request(old_branch.clone(), alice()).unwrap();
    uas.receive_request(old_branch, alice()).unwrap();
    assert_eq!(uas.requests_seen(), 2);
}

/// §17.2.3 (RFC 2543): a different CSeq, Call-ID or top Via is a new transaction; the same
/// identifiers with another Request-URI are a merged request (§8.2.2.2: 482).
#[test]
fn s17_2_3_rfc2543_key_fields() {
    let mut uas = Harness::default();
    uas.receive_request(legacy("INVITE").build(), alice())
        .unwrap();
    uas.receive_request(legacy("INVITE").cseq(2).build(), alice())
        .unwrap();
    uas.receive_request(legacy("INVITE").call_id("other@x").build(), alice())
        .unwrap();
    uas.receive_request(
        legacy("INVITE")
            .via("SIP/2.0/UDP pc33.atlanta.example.com:5070")
            .build(),
        alice(),
    )
    .unwrap();
    assert_eq!(uas.requests_seen(), 4);
    let merged = uas
        .receive_request(
            legacy("INVITE").uri("sip:carol@biloxi.example.com").build(),
            alice(),
        )
        .unwrap_err();
    assert_eq!(merged.reason, RefuseReason::MergedRequest);
    assert_eq!(merged.response_status().unwrap().as_u16(), 482);
    assert_eq!(uas.requests_seen(), 4);
}

/// §17.2.3 (RFC 2543): the ACK matches when its To tag is the tag of the final response
/// the transaction sent; another tag makes it an ACK for the TU.
#[test]
fn s17_2_3_rfc2543_ack_matches_by_the_response_to_tag() {
    let mut uas = Harness::default();
    let request = legacy("INVITE").build();
    uas.receive_request(request.clone(), alice()).unwrap();
    let id = request_ids(&uas)[0];
    // The TU's response is matched by the same RFC 2543 identifiers.
    assert_eq!(uas.respond(response(&request, 486, Some("x1"))), Ok(id));
    uas.receive_request(legacy("ACK").with_to_tag("other").build(), alice())
        .unwrap();
    assert!(matches!(
        uas.events.last().unwrap().1,
        Event::Ack {
            transaction: None,
            ..
        }
    ));
    assert_eq!(uas.state(id), Some(TransactionState::Completed));
    uas.receive_request(legacy("ACK").with_to_tag("x1").build(), alice())
        .unwrap();
    assert_eq!(uas.state(id), Some(TransactionState::Confirmed));
}

/// §9.2 with an RFC 2543 peer: the CANCEL finds the INVITE by the same identifiers.
#[test]
fn s9_2_rfc2543_cancel_finds_the_invite() {
    let mut uas = Harness::default();
    let request = legacy("INVITE").build();
    uas.receive_request(request.clone(), alice()).unwrap();
    let cancel: Request = cancel_for(&request);
    uas.receive_request(cancel.clone(), alice()).unwrap();
    let ids = request_ids(&uas);
    assert_eq!(ids.len(), 2);
    assert_eq!(uas.layer.invite_cancelled_by(&cancel), Some(ids[0]));
    assert_eq!(uas.respond(response(&cancel, 200, None)), Ok(ids[1]));
}
