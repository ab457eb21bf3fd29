//! The state of one call: its two dialogs, where its setup stands, its media session and
//! the in-dialog requests being relayed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::anchor::OriginState;
use super::dialog::Dialog;
use super::negotiated::{LegPolicies, Negotiated};
use super::record::CallLog;
use super::reliable::ReliableToCaller;
use super::router::{HeaderFilter, Target};
use crate::media::{Leg, MediaSessionId, RemoteMedia, StreamAddrs};
use crate::sip::{Method, Request, Response};
use crate::transaction::TransactionId;

/// Names a call inside one B2BUA (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CallRef(pub u64);

/// What a transaction is to the call it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The caller's dialog-creating INVITE.
    CallerInvite,
    /// Our INVITE to a target.
    CalleeInvite,
    /// Our CANCEL of it.
    CalleeCancel,
    /// A BYE we sent to end the call.
    Bye,
    /// The server transaction of an in-dialog request being relayed (exchange id).
    ExchangeServer(u32),
    /// Our request relaying it on the other leg (exchange id).
    ExchangeClient(u32),
    /// Our PRACK of a reliable provisional response of the callee.
    CalleePrack,
}

/// Our INVITE to one target.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub transaction: TransactionId,
    pub target: Target,
    /// The INVITE as sent (to build its CANCEL).
    pub invite: Request,
    /// A provisional response came (a CANCEL may be sent).
    pub provisional: bool,
    /// We cancelled it because Timer C fired: its 487 counts as a timeout.
    pub timed_out: bool,
    /// The RSeq of the last reliable provisional response we PRACKed (RFC 3262).
    pub last_rseq: Option<u32>,
    /// The last SDP relayed to the caller in a provisional response: the answer when the
    /// 2xx carries none (the callee answered in a reliable provisional response).
    pub early_answer: Option<Bytes>,
}

/// Where the call's setup stands.
#[derive(Debug)]
pub(crate) enum Phase {
    /// The caller waits for a final answer; `attempt` is under way.
    Setup {
        /// The caller's INVITE as received (body dropped), to answer it.
        invite: Box<Request>,
        attempt: Attempt,
        /// Targets not tried yet, in order.
        remaining: Vec<Target>,
        /// The anchored offer sent to every target (none: the caller sent no offer).
        offer: Option<Bytes>,
        /// Max-Forwards of the INVITEs we send.
        max_forwards: u8,
    },
    /// The caller has its final answer (487 after CANCEL, or a failure) but the callee's
    /// INVITE is still pending: it is cancelled, and a 2xx that crosses is ACKed and BYEd.
    Cancelling { attempt: Attempt, cancel_sent: bool },
    /// Both dialogs are established.
    Confirmed,
    /// The call is over; it stays until its last transaction ends, to absorb stragglers.
    Ended,
}

/// The relay session of a call.
#[derive(Debug)]
pub(crate) struct MediaState {
    pub session: MediaSessionId,
    pub streams: Vec<StreamAddrs>,
    /// Our `o=` line toward leg A and toward leg B.
    pub origin_a: OriginState,
    pub origin_b: OriginState,
    /// What each leg's peer last said about where it receives media (to roll back an
    /// offer that is rejected).
    pub remote_a: Vec<RemoteMedia>,
    pub remote_b: Vec<RemoteMedia>,
    /// What each leg's media security is, and the offers and answers under way.
    pub security: Negotiated,
}

impl MediaState {
    pub(crate) fn remote(&mut self, of: Leg) -> &mut Vec<RemoteMedia> {
        match of {
            Leg::A => &mut self.remote_a,
            Leg::B => &mut self.remote_b,
        }
    }
}

/// An in-dialog request from one leg relayed to the other.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub id: u32,
    /// The leg the request came from.
    pub from: Leg,
    pub method: Method,
    /// The request as received (body dropped), to answer it.
    pub request: Request,
    /// The CSeq number of our request on the other leg.
    pub sent_seq: u32,
    /// The request carried an SDP offer (so a 2xx carries the answer).
    pub offer_in_request: bool,
    /// The offering leg's media before its offer, restored when the offer is rejected.
    pub previous: Option<Vec<RemoteMedia>>,
}

/// A 2xx to an INVITE we sent to a leg and retransmit until its ACK comes (RFC 3261
/// §13.3.1.4, RFC 6026 §7.1).
#[derive(Debug)]
pub(crate) struct AckWait {
    pub leg: Leg,
    pub seq: u32,
    pub response: Response,
    pub interval: Duration,
    pub give_up: Instant,
    /// The 2xx came from the other leg carrying an offer (the INVITE had none): the ACK
    /// we await carries the answer, which goes into our ACK on the other leg (CSeq
    /// `other_seq`). `None`: the other leg has been ACKed already.
    pub ack_other: Option<u32>,
}

/// The timers of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum CallTimer {
    /// Retransmit the 2xx of [`AckWait`] (unreliable transports).
    Retransmit2xx,
    /// No ACK came for the 2xx: end the call.
    AckTimeout,
    /// RFC 4028: the session was not refreshed in time.
    SessionExpires,
    /// The call has lasted [`super::B2buaConfig::max_call_duration`].
    MaxDuration,
    /// A call being torn down checks that its transactions still live (their end is
    /// normally reported, but a report lost to a full event queue must not leak the call).
    Reap,
    /// Retransmit our unacknowledged reliable provisional response to the caller.
    RetransmitProvisional,
    /// No PRACK came for it (RFC 3262 §3).
    PrackTimeout,
}

/// One call.
#[derive(Debug)]
pub(crate) struct Call {
    pub phase: Phase,
    pub a: Dialog,
    pub b: Dialog,
    pub toward_b: Arc<dyn HeaderFilter>,
    pub toward_a: Arc<dyn HeaderFilter>,
    pub media: Option<MediaState>,
    /// Each leg's media security policy (from its trunk) and signalling protection.
    pub media_policies: LegPolicies,
    pub exchanges: Vec<Exchange>,
    pub next_exchange: u32,
    pub ack_wait: Option<AckWait>,
    /// Live transactions that refer to this call.
    pub transactions: Vec<TransactionId>,
    /// Armed timers and their deadlines.
    pub timers: Vec<(CallTimer, Instant)>,
    /// The refresh interval of RFC 4028 session timers, when negotiated.
    pub session_interval: Option<Duration>,
    /// The last ACK we sent for a 2xx, and on which leg (sent again when the 2xx is).
    pub last_ack: Option<(Leg, Request)>,
    /// The call counts toward the call limit (until the caller has its final answer and
    /// the call is being torn down).
    pub holds_slot: bool,
    /// Its places in the shared call limits, given back with the slot.
    pub limit_slot: Option<crate::policy::call_limits::CallSlot>,
    /// RFC 3262 toward the caller, when its INVITE supports or requires 100rel.
    pub reliable: Option<ReliableToCaller>,
    /// The caller's identity: the verification verdict and what the egress INVITE
    /// carries (`None` without an identity service).
    pub identity: Option<Box<crate::identity::service::CallIdentity>>,
    /// What the call's record and views report.
    pub log: CallLog,
}

impl Call {
    pub(crate) fn leg(&self, leg: Leg) -> &Dialog {
        match leg {
            Leg::A => &self.a,
            Leg::B => &self.b,
        }
    }

    pub(crate) fn leg_mut(&mut self, leg: Leg) -> &mut Dialog {
        match leg {
            Leg::A => &mut self.a,
            Leg::B => &mut self.b,
        }
    }

    /// The policy for headers sent to `leg`.
    pub(crate) fn filter_toward(&self, leg: Leg) -> Arc<dyn HeaderFilter> {
        match leg {
            Leg::A => Arc::clone(&self.toward_a),
            Leg::B => Arc::clone(&self.toward_b),
        }
    }

    pub(crate) fn exchange(&self, id: u32) -> Option<&Exchange> {
        self.exchanges.iter().find(|e| e.id == id)
    }

    pub(crate) fn take_exchange(&mut self, id: u32) -> Option<Exchange> {
        let index = self.exchanges.iter().position(|e| e.id == id)?;
        Some(self.exchanges.swap_remove(index))
    }

    /// An offer (re-INVITE, or UPDATE with SDP) we sent to `leg` is unanswered.
    pub(crate) fn offer_pending_toward(&self, leg: Leg) -> bool {
        self.exchanges
            .iter()
            .any(|e| e.from == leg.other() && e.is_offer_exchange())
    }

    /// An offer from `leg` is being relayed.
    pub(crate) fn offer_pending_from(&self, leg: Leg) -> bool {
        self.exchanges
            .iter()
            .any(|e| e.from == leg && e.is_offer_exchange())
    }

    pub(crate) fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended)
    }
}

impl Exchange {
    fn is_offer_exchange(&self) -> bool {
        self.method == Method::Invite || (self.method == Method::Update && self.offer_in_request)
    }
}
