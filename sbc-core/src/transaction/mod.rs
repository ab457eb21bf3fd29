//! The SIP transaction layer: RFC 3261 §17 as amended by RFC 6026, sans-IO.
//!
//! A [`TransactionLayer`] owns every transaction of one signalling shard: one state machine
//! per transaction (INVITE / non-INVITE × client / server, one per file), matched by the
//! keys of §17.1.3 and §17.2.3 (with the RFC 2543 fallback), run on the timers of
//! [`TimerConfig`]. It never reads a clock, never touches a socket and draws no randomness:
//! `now` comes in with every call, messages go out as [`Transmit`]s, and the caller learns
//! when to wake it from [`TransactionLayer::poll_timeout`].
//!
//! # What reaches the TU
//!
//! * Each new request exactly once, as [`Event::Request`]; its retransmissions are absorbed
//!   (the server transaction resends its last response, and an INVITE server transaction
//!   sends `100 Trying` itself when the TU has not answered within 200 ms).
//! * Every ACK that is not absorbed as the ACK of a non-2xx: ACKs for 2xx, with the
//!   transaction when one still matches (RFC 6026 `Accepted`), as [`Event::Ack`].
//! * For its own requests: every provisional, the first final response, and in `Accepted`
//!   every further 2xx (retransmissions and forks, RFC 6026), as [`Event::Response`]. The
//!   ACK for a non-2xx final is built and sent by the transaction; the TU sends the ACK for
//!   a 2xx itself with [`TransactionLayer::handle_send_stateless`].
//! * Responses matching no client transaction, as [`Event::StrayResponse`] (a B2BUA needs a
//!   late 2xx to ACK and BYE it). Malformed responses are dropped and counted in
//!   [`LayerStats`].
//! * Failures: [`Event::TimedOut`] (Timer B or F: treat as 408; Timer H: the ACK never came;
//!   Timer C: send CANCEL; Unanswered / UnansweredInvite: the TU never sent a final
//!   response and the server transaction gave up) and [`Event::TransportError`]; and
//!   [`Event::Terminated`] when any transaction ends, whatever the reason.
//!
//! # Limits
//!
//! At most [`LayerConfig::max_transactions`] transactions: a request past it is handed back
//! in [`Refused`] (answer 503), a TU request fails with [`SendError::TransactionLimit`].
//! The output queues are bounded too. No input sequence panics.
//!
//! # The drain contract
//!
//! After every `handle_*` call, take every [`Transmit`] and every [`Event`], then sleep until
//! [`TransactionLayer::poll_timeout`] (re-reading it after each call) and call
//! [`TransactionLayer::handle_timeout`]. Here, on a virtual clock, one OPTIONS served over
//! UDP from arrival to the end of Timer J:
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use bytes::Bytes;
//! use sbc_core::sip::{Message, StatusCode, parse::parse_message};
//! use sbc_core::transaction::{Event, LayerConfig, Peer, TransactionLayer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut layer = TransactionLayer::new(LayerConfig::default());
//! let phone = Peer::unreliable("192.0.2.10:5060".parse()?);
//! let options = parse_message(Bytes::from_static(
//!     b"OPTIONS sip:sbc.example.net SIP/2.0\r\n\
//!       Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9\r\n\
//!       Max-Forwards: 70\r\n\
//!       From: <sip:alice@example.com>;tag=9fxced76sl\r\n\
//!       To: <sip:sbc.example.net>\r\n\
//!       Call-ID: 3848276298220188511@192.0.2.10\r\n\
//!       CSeq: 1 OPTIONS\r\n\
//!       Content-Length: 0\r\n\r\n",
//! ))?;
//!
//! let start = Instant::now();
//! let mut now = start;
//! let mut sent = Vec::new();
//! let mut input = Some(options);
//! loop {
//!     // 1. Feed what arrived (here: one datagram, once).
//!     if let Some(message) = input.take() {
//!         if let Err(refused) = layer.handle_incoming(now, message, phone) {
//!             // Answer `refused.request` statelessly with `refused.response_status()`.
//!             return Err(refused.into());
//!         }
//!     }
//!     // 2. Drain transmits and events; the TU's answers are handle_* calls too.
//!     while let Some(event) = layer.poll_event() {
//!         if let Event::Request { request, .. } = event {
//!             let ok = request.make_response(StatusCode::OK, None, Some("sbc1"));
//!             layer.handle_send_response(now, ok)?;
//!         }
//!     }
//!     while let Some(transmit) = layer.poll_transmit() {
//!         // socket.send_to(&transmit.payload, transmit.destination.remote)
//!         sent.push((now - start, transmit.destination.remote));
//!     }
//!     // 3. Sleep until the next timer (on a real clock: tokio::time::sleep_until).
//!     match layer.poll_timeout() {
//!         Some(deadline) => {
//!             now = deadline;
//!             layer.handle_timeout(now);
//!         }
//!         None => break,
//!     }
//! }
//! assert_eq!(sent, [(Duration::ZERO, phone.remote)]); // the 200 OK, once
//! assert_eq!(now - start, Duration::from_secs(32)); // Timer J = 64·T1 on UDP
//! assert!(layer.is_empty());
//! # Ok(())
//! # }
//! ```

mod client_invite;
mod client_non_invite;
mod entry;
mod error;
mod key;
mod layer;
mod outbox;
mod server_invite;
mod server_non_invite;
mod timer;

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::sip::{Request, Response};

pub use entry::LayerStats;
pub use error::{RefuseReason, Refused, SendError};
pub use key::{MAGIC_COOKIE, branch_from_random, is_rfc3261_branch};
pub use layer::{LayerConfig, TransactionLayer};
pub use timer::{Reliability, Timer, TimerConfig};

/// The other end of a hop: where a message came from, or where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub remote: SocketAddr,
    pub reliability: Reliability,
    /// The connection (TCP, TLS, WebSocket) the message came on or must go on, as the
    /// network driver numbers them; `None` for UDP, or to let the driver choose.
    pub flow: Option<u64>,
}

impl Peer {
    /// A UDP peer.
    pub fn unreliable(remote: SocketAddr) -> Peer {
        Peer {
            remote,
            reliability: Reliability::Unreliable,
            flow: None,
        }
    }

    /// A peer on a stream transport, optionally on a given connection.
    pub fn reliable(remote: SocketAddr, flow: Option<u64>) -> Peer {
        Peer {
            remote,
            reliability: Reliability::Reliable,
            flow,
        }
    }
}

/// Names one transaction for as long as it lives (ids are never reused by a layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "txn-{}", self.0)
    }
}

/// Which of the four machines a transaction runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(
    clippy::enum_variant_names,
    reason = "named after the RFC 3261 machines"
)]
pub enum TransactionKind {
    ClientInvite,
    ClientNonInvite,
    ServerInvite,
    ServerNonInvite,
}

/// The state of a transaction, for inspection and tests (RFC 3261 §17 and RFC 6026
/// names). A layer never holds a `Terminated` transaction; the variant exists for
/// completeness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionState {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The transaction that sends it (`None` for [`TransactionLayer::handle_send_stateless`]);
    /// report a failure to send it with [`TransactionLayer::handle_transport_error`].
    pub transaction: Option<TransactionId>,
    pub destination: Peer,
    /// The whole message as printed.
    pub payload: Bytes,
}

/// Something the transaction user (the B2BUA) must learn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new request (never a retransmission). Answer it with
    /// [`TransactionLayer::handle_send_response`].
    Request {
        transaction: TransactionId,
        request: Request,
        source: Peer,
    },
    /// An ACK the layer did not absorb: the ACK for a 2xx (`transaction` is the INVITE
    /// server transaction when it is still `Accepted` and matches), or one matching nothing.
    Ack {
        transaction: Option<TransactionId>,
        request: Request,
        source: Peer,
    },
    /// A response for one of the TU's client transactions.
    Response {
        transaction: TransactionId,
        response: Response,
    },
    /// A response matching no client transaction.
    StrayResponse { response: Response, source: Peer },
    /// A timer expired: B or F (client: no final response, act as on 408), H (INVITE
    /// server: no ACK for the non-2xx), or C (INVITE client: no final response for too
    /// long; the TU should send CANCEL, and the transaction ends 64·T1 later unless a final
    /// response comes), or Unanswered / UnansweredInvite (server: the TU sent no final
    /// response in time; the transaction has ended without one, so that no transaction
    /// outlives a TU that forgets it).
    TimedOut {
        transaction: TransactionId,
        timer: Timer,
    },
    /// The transport failed to send a message of the transaction; it has ended.
    TransportError { transaction: TransactionId },
    /// The transaction ended and its id is no longer known to the layer.
    Terminated { transaction: TransactionId },
}
