//! Errors of the transaction layer, typed by fault. Every variant has a stable `name()`
//! for metric labels.

use thiserror::Error;

use super::Peer;
use crate::sip::{Method, Request, StatusCode};

/// Why a received request was not given to a transaction. The request is handed back so
/// the caller can answer it statelessly (see [`Refused::response_status`]).
#[derive(Debug, Error)]
#[error("request refused by the transaction layer: {reason}")]
pub struct Refused {
    pub reason: RefuseReason,
    pub request: Box<Request>,
    /// Where the request came from (where a stateless answer goes).
    pub from: Peer,
}

impl Refused {
    /// The status to answer with, or `None` for an ACK (which is never answered).
    pub fn response_status(&self) -> Option<StatusCode> {
        if self.request.method == Method::Ack {
            None
        } else {
            Some(self.reason.status())
        }
    }
}

/// The fault behind a [`Refused`] request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RefuseReason {
    /// Malformed: no Via, or a top Via that does not decode.
    #[error("missing or malformed top Via")]
    BadVia,
    /// Malformed: no CSeq, or one that does not decode.
    #[error("missing or malformed CSeq")]
    BadCSeq,
    /// Malformed: the CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    #[error("CSeq method differs from the request method")]
    CSeqMethodMismatch,
    /// Malformed: a request without an RFC 3261 branch lacks the Call-ID or From needed for
    /// RFC 2543 matching.
    #[error("missing Call-ID or From needed to match an RFC 2543 request")]
    BadLegacyIdentifiers,
    /// Peer protocol violation: the request shares Call-ID, From tag and CSeq with a
    /// transaction in progress but is not part of it (RFC 3261 §8.2.2.2, answer 482).
    #[error("merged request")]
    MergedRequest,
    /// Overload: the maximum number of transactions is reached (answer 503).
    #[error("too many transactions")]
    TransactionLimit,
    /// Overload: the caller has not drained the event queue (answer 503).
    #[error("event queue full")]
    EventBacklog,
}

impl RefuseReason {
    /// A stable name for metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            RefuseReason::BadVia => "bad_via",
            RefuseReason::BadCSeq => "bad_cseq",
            RefuseReason::CSeqMethodMismatch => "cseq_method_mismatch",
            RefuseReason::BadLegacyIdentifiers => "bad_legacy_identifiers",
            RefuseReason::MergedRequest => "merged_request",
            RefuseReason::TransactionLimit => "transaction_limit",
            RefuseReason::EventBacklog => "event_backlog",
        }
    }

    /// The status the refused request should be answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            RefuseReason::BadVia
            | RefuseReason::BadCSeq
            | RefuseReason::CSeqMethodMismatch
            | RefuseReason::BadLegacyIdentifiers => StatusCode::BAD_REQUEST,
            RefuseReason::MergedRequest => StatusCode::LOOP_DETECTED,
            RefuseReason::TransactionLimit | RefuseReason::EventBacklog => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

/// Why the TU's request or response was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SendError {
    /// Misuse: the message has no decodable top Via.
    #[error("message has no decodable top Via")]
    BadVia,
    /// Misuse: the request's top Via has no branch starting with `z9hG4bK`.
    #[error("request's top Via has no RFC 3261 branch")]
    MissingBranch,
    /// Misuse: no decodable CSeq, or its method differs from the request's.
    #[error("missing, malformed or mismatched CSeq")]
    BadCSeq,
    /// Misuse: ACK is not a transaction; send it with `handle_send_stateless`.
    #[error("ACK is sent without a transaction")]
    AckIsNotATransaction,
    /// Misuse: a client transaction with this branch and method already exists.
    #[error("a transaction with this branch and method already exists")]
    DuplicateTransaction,
    /// Overload: the maximum number of transactions is reached.
    #[error("too many transactions")]
    TransactionLimit,
    /// Misuse or race: no server transaction matches the response (it may have ended).
    #[error("no server transaction matches the response")]
    NoSuchTransaction,
    /// Misuse: the transaction has already sent its final response.
    #[error("final response already sent")]
    FinalResponseAlreadySent,
    /// Overload: the caller has not drained the transmit queue.
    #[error("transmit queue full")]
    TransmitBacklog,
}

impl SendError {
    /// A stable name for metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            SendError::BadVia => "bad_via",
            SendError::MissingBranch => "missing_branch",
            SendError::BadCSeq => "bad_cseq",
            SendError::AckIsNotATransaction => "ack_is_not_a_transaction",
            SendError::DuplicateTransaction => "duplicate_transaction",
            SendError::TransactionLimit => "transaction_limit",
            SendError::NoSuchTransaction => "no_such_transaction",
            SendError::FinalResponseAlreadySent => "final_response_already_sent",
            SendError::TransmitBacklog => "transmit_backlog",
        }
    }
}
