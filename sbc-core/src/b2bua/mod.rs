//! The back-to-back user agent: every call is terminated on an A-leg and re-originated on
//! a B-leg, with its media anchored on the relay, and nothing of one side's topology
//! reaching the other.
//!
//! [`B2bua`] is the transaction user of one shard's [`TransactionLayer`]: the endpoint
//! passes it the requests it takes ([`B2bua::takes`]) and every other transaction event,
//! and the B2BUA answers and sends through the same layer (every `handle_*` takes it). It
//! is sans-IO like the layer: `now` and randomness are injected, it keeps its own timers
//! ([`B2bua::poll_timeout`]), and it talks to routing and to the relay through two traits,
//! [`CallRouter`] and [`MediaAnchor`]. The binary drives it through the endpoint:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use std::time::Instant;
//!
//! use bytes::Bytes;
//! use sbc_core::b2bua::{B2bua, B2buaConfig, CallRouter, NoRoute, PassAll, RouteChoice, Target};
//! use sbc_core::endpoint::{Endpoint, EndpointConfig};
//! use sbc_core::media::*;
//! use sbc_core::net::{self, Destination, Protocol};
//! use sbc_core::sip::Request;
//! use sbc_core::transaction::Peer;
//!
//! /// Every call goes to one carrier.
//! struct Carrier;
//! impl CallRouter for Carrier {
//!     fn route(&mut self, _: SocketAddr, _: &Request, _: &mut dyn FnMut() -> u64)
//!         -> Result<RouteChoice, NoRoute> {
//!         Ok(RouteChoice {
//!             trunk: "carrier".into(),
//!             source_trunk: None,
//!             targets: vec![Target::new(Protocol::Udp, "198.51.100.20:5060".parse().unwrap())],
//!             toward_callee: Arc::new(PassAll),
//!             toward_caller: Arc::new(PassAll),
//!         })
//!     }
//! }
//!
//! /// A relay with one address and a port pair per leg and stream.
//! struct Relay(u16);
//! impl MediaAnchor for Relay {
//!     fn allocate(&mut self, streams: usize) -> Result<MediaAllocation, MediaError> {
//!         Ok(MediaAllocation { session: MediaSessionId(1), streams: self.add_streams(MediaSessionId(1), streams)? })
//!     }
//!     fn update(&mut self, _: MediaSessionId, _: usize, _: Leg, _: RemoteMedia) -> Result<(), MediaError> {
//!         Ok(())
//!     }
//!     fn add_streams(&mut self, _: MediaSessionId, count: usize) -> Result<Vec<StreamAddrs>, MediaError> {
//!         let mut pair = || {
//!             self.0 += 2;
//!             let rtp: SocketAddr = ([203, 0, 113, 1], self.0).into();
//!             LegAddr { rtp, rtcp: ([203, 0, 113, 1], self.0 + 1).into() }
//!         };
//!         Ok((0..count).map(|_| StreamAddrs { a: pair(), b: pair() }).collect())
//!     }
//!     fn release(&mut self, _: MediaSessionId) {}
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut counter = 0u64;
//! let mut random = move || { counter += 1; counter };
//! let config = B2buaConfig {
//!     local: vec![(Protocol::Udp, "203.0.113.1:5060".parse()?)],
//!     ..B2buaConfig::default()
//! };
//! let b2bua = B2bua::new(config, Box::new(Carrier), Box::new(Relay(20000)), random.clone());
//! let mut endpoint = Endpoint::new(EndpointConfig::default(), random).with_b2bua(b2bua);
//!
//! endpoint.handle_inbound(
//!     Instant::now(),
//!     Bytes::from_static(
//!         b"INVITE sip:bob@sbc.example.net SIP/2.0\r\n\
//!           Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9\r\n\
//!           Max-Forwards: 70\r\n\
//!           From: <sip:alice@example.com>;tag=9fxced76sl\r\n\
//!           To: <sip:bob@sbc.example.net>\r\n\
//!           Call-ID: 3848276298220188511@192.0.2.10\r\n\
//!           CSeq: 1 INVITE\r\n\
//!           Contact: <sip:alice@192.0.2.10>\r\n\
//!           Content-Length: 0\r\n\r\n",
//!     ),
//!     Peer::unreliable("192.0.2.10:5060".parse()?),
//! );
//! // The call is re-originated toward the carrier; the driver asks where it goes.
//! let invite = endpoint.poll_transmit().ok_or("no INVITE")?;
//! assert!(invite.payload.starts_with(b"INVITE sip:bob@198.51.100.20:5060 SIP/2.0\r\n"));
//! let carrier = Destination::new(Protocol::Udp, "198.51.100.20:5060".parse()?);
//! assert_eq!(endpoint.target_of(&invite), net::Target::Destination(carrier));
//! assert_eq!(endpoint.b2bua().map(B2bua::calls), Some(1));
//! # Ok(())
//! # }
//! ```
//!
//! # What happens to a call
//!
//! * A dialog-creating INVITE is routed ([`CallRouter::route`]; `404`/`403`/`503` when
//!   there is no route), checked for loops (`482`: one of its Vias carries our branch with
//!   the hash of this very Request-URI; with another Request-URI it is a spiral and goes
//!   on) and hops (`483` when Max-Forwards is 1 or less, since the INVITE we send would
//!   carry 0), and re-originated to the first target: new Call-ID, tags, CSeq space, our
//!   Via and Contact, Request-URI and To with the user part kept and the target as host,
//!   From with our domain; the SDP offer is anchored on the relay.
//! * Provisional responses with a tag create the B-leg's early dialog and are relayed to
//!   the caller with our tag (SDP anchored: early media); a `100` is not relayed (the
//!   transaction layer sends its own). Nothing is relayed to the caller after its final
//!   answer, so a 180 that arrives after the 200 is dropped, never forwarded late.
//! * The 2xx is relayed with our Contact; **the callee is ACKed at once** when our INVITE
//!   carried the offer (RFC 3261 lets a B2BUA do so), or when the caller's ACK brings the
//!   answer to an offer the callee made in its 2xx (an INVITE without SDP). The caller's
//!   2xx is retransmitted until its ACK (RFC 6026), and the call ends with BYE on both
//!   legs when no ACK comes in 64·T1. A 2xx from another fork is ACKed and BYEd.
//! * A 408, any 5xx, a timeout or a transport error from a target moves on to the next
//!   target; when none is left the caller gets `408` (the last attempt timed out) or
//!   `503`. Other failures are relayed with their status (3xx, which would name the
//!   callee's hosts, is relayed as `480`). Reason phrases are the canonical ones.
//! * A target that refuses our offer for its media (`488`, `606`, or `415` unless its
//!   `Accept` rules SDP out) gets the call again, on a fresh B-leg, with the offer one
//!   profile down as its trunk's policy allows (DTLS-SRTP, then SDES-SRTP, then plain
//!   RTP; `offer.rs`), the relay's leg B protected accordingly; the caller sees nothing
//!   of the refusal. The next target starts from the first profile again.
//! * CANCEL: `200` to the CANCEL, `487` to the INVITE, CANCEL to the callee once it has
//!   sent a provisional response; a 2xx that crosses the CANCEL is ACKed and BYEd. Timer C
//!   (no final answer in time) cancels the attempt and counts as a timeout.
//! * BYE from either side: `200`, BYE to the other side, relay session released.
//! * In-dialog requests are matched by Call-ID and tags only, and relayed to the other
//!   leg with that leg's identifiers, CSeq, remote target and route set; SDP in
//!   re-INVITE and UPDATE is anchored again (hold keeps its direction; the address is the
//!   relay's, never 0.0.0.0, and the relay stops sending to a peer that said 0.0.0.0).
//!   A re-INVITE (or UPDATE with an offer) arriving on a leg where we have an offer
//!   pending is answered `491`, one overlapping its own previous offer `500`; a rejected
//!   offer rolls the relay back. A 481 or a timeout of a relayed request ends the call.
//! * RFC 4028 session timers are relayed end to end (`Session-Expires`, `Min-SE` and the
//!   `timer` option tag pass whatever the header policy) and supervised: a session not
//!   refreshed within its interval is ended with BYE on both legs. So is an answered call
//!   whose media the relay reports inactive (a ringing call is left alone), and one older
//!   than [`B2buaConfig::max_call_duration`].
//! * `100rel` (RFC 3262) is terminated on the B-leg: our INVITE (when it carries an offer)
//!   says `Supported: 100rel`, we PRACK the callee's reliable provisional responses
//!   ourselves and relay them to the caller unreliably (an SDP answer in one is repeated
//!   in the 2xx when the callee's 2xx has none). Toward a caller that supports or
//!   requires it, early media (and, when required, every 18x) goes out reliably with our
//!   own RSeq space, and the 2xx waits for the PRACK of an 18x with SDP (see
//!   `reliable.rs`). The caller's `100rel` is never passed on.
//!
//! # Limits
//!
//! At most [`B2buaConfig::max_calls`] calls (`503` past it), [`B2buaConfig::max_targets`]
//! targets per call, [`B2buaConfig::max_streams`] media streams, and
//! [`B2buaConfig::max_exchanges`] in-dialog requests in flight per call. An ended call
//! stays (without media) only while one of its transactions lives, which the layer
//! bounds; a per-call watchdog notices transactions whose end was never reported (an
//! event lost to a full queue), so nothing leaks even then.

mod admission;
mod anchor;
mod attempts;
mod bundle;
mod call;
mod dialog;
mod headers;
mod identity;
mod in_dialog;
mod lifetime;
mod message;
mod negotiated;
mod offer;
mod outgoing;
mod protection;
mod record;
mod relay;
mod reliable;
mod router;
mod setup;
mod strays;
pub mod summary;
mod timers;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use admission::CallerIdentity;
pub use record::{CallRecord, CallState, CallView, LegView};
pub use router::{
    AllowList, CallRouter, DenyList, HeaderFilter, NoRoute, PassAll, RouteChoice, Target,
    TargetOutcome,
};

use self::call::{Call, CallRef, CallTimer, Role};
use self::timers::TimerQueue;
use crate::identity::service::{IdentityService, IdentityStats};
use crate::media::{MediaAnchor, MediaSessionId};
use crate::net::{Destination, Protocol};
use crate::sip::{HeaderName, Method, Request};
use crate::transaction::{Event, Peer, Reliability, TransactionId, TransactionLayer};

/// The option tags the B2BUA supports end to end.
const SUPPORTED: [&str; 1] = ["timer"];

/// The option tags the B2BUA supports: those it relays end to end, and `100rel`, which
/// it terminates on each leg.
const ADVERTISED: [&str; 2] = ["timer", "100rel"];

/// How the B2BUA presents itself and its limits.
#[derive(Clone, Debug)]
pub struct B2buaConfig {
    /// Calls in progress past which new INVITEs are answered `503`.
    pub max_calls: usize,
    /// The SBC's own address per transport, written in Via and Contact (and as the From
    /// host when no domain is set). A transport without an entry uses the first entry.
    pub local: Vec<(Protocol, SocketAddr)>,
    /// The host written in the From of B-leg INVITEs (else the local address).
    pub domain: Option<String>,
    /// The `o=` user name of the SDP we send.
    pub sdp_username: String,
    /// The User-Agent of our requests and Server of our responses (`None`: none).
    pub product: Option<String>,
    /// Targets tried per call at most.
    pub max_targets: usize,
    /// Media streams (`m=` lines) per call at most (`488` past it).
    pub max_streams: usize,
    /// In-dialog requests relayed at once per call at most (`503` past it).
    pub max_exchanges: usize,
    /// Answered calls are ended with BYE on both legs after this long (`None`: no limit;
    /// calls without media or session timers then last until a BYE).
    pub max_call_duration: Option<Duration>,
    /// The Call-IDs this B2BUA may give its B-legs: with signalling sharded by Call-ID
    /// ([`crate::shard`]), only those that hash back to this B2BUA's own shard. `None`:
    /// any.
    pub call_id_owner: Option<CallIdOwner>,
    /// Call admission control shared by every shard: calls in all, per user, per trunk
    /// (see [`crate::policy::call_limits`]). `None`: only [`B2buaConfig::max_calls`].
    pub call_limits: Option<std::sync::Arc<crate::policy::call_limits::CallLimits>>,
    /// Call records held for [`B2bua::poll_call_record`] at most (one per ended call
    /// attempt; past it new ones are dropped and counted); 0: no records are kept.
    pub call_records: usize,
}

/// A test of whether a Call-ID is owned.
pub type OwnsCallId = dyn Fn(&[u8]) -> bool + Send + Sync;

/// Says whether a Call-ID belongs to this B2BUA (see [`B2buaConfig::call_id_owner`]).
#[derive(Clone)]
pub struct CallIdOwner(pub std::sync::Arc<OwnsCallId>);

impl std::fmt::Debug for CallIdOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallIdOwner")
    }
}

impl Default for B2buaConfig {
    fn default() -> B2buaConfig {
        B2buaConfig {
            max_calls: 10_000,
            local: Vec::new(),
            domain: None,
            sdp_username: "-".into(),
            product: None,
            max_targets: 8,
            max_streams: 16,
            max_exchanges: 8,
            max_call_duration: None,
            call_id_owner: None,
            call_limits: None,
            call_records: 0,
        }
    }
}

impl B2buaConfig {
    /// Our address on `protocol`.
    pub fn local_addr(&self, protocol: Protocol) -> SocketAddr {
        self.local
            .iter()
            .find(|(p, _)| *p == protocol)
            .or(self.local.first())
            .map_or(SocketAddr::from(([127, 0, 0, 1], 5060)), |&(_, addr)| addr)
    }
}

/// What the B2BUA did, by stable reason name. The set of names is fixed by the code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct B2buaStats {
    /// Dialog-creating INVITEs accepted (routed and sent on).
    pub calls_started: u64,
    /// Calls that reached a 2xx.
    pub calls_answered: u64,
    /// MESSAGE requests outside a dialog routed and sent on.
    pub messages_relayed: u64,
    /// Attempts moved on to the next target.
    pub failovers: u64,
    /// Requests refused, by reason: new calls (`no_route`, `call_limit`,
    /// `loop_detected` …) and in-dialog requests (`unknown_dialog`, `glare` …).
    pub rejected: BTreeMap<&'static str, u64>,
    /// Calls ended, by how (`bye_from_a`, `cancelled`, `failed`, `media_timeout` …).
    pub ended: BTreeMap<&'static str, u64>,
    /// Messages dropped, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Relay errors, by [`crate::media::MediaError::name`].
    pub media_errors: BTreeMap<&'static str, u64>,
    /// Offers made again one media profile down after the callee refused the first (488,
    /// 606, 415), by step (`dtls_to_sdes`, `dtls_to_plain`, `sdes_to_plain` …).
    pub media_fallbacks: BTreeMap<&'static str, u64>,
    /// Caller identity: verification verdicts, rejections, signatures (see
    /// [`crate::identity::service`]).
    pub identity: IdentityStats,
}

fn count(map: &mut BTreeMap<&'static str, u64>, reason: &'static str) {
    *map.entry(reason).or_default() += 1;
}

/// Where a destination registered by calls is, and how many calls use it.
#[derive(Debug)]
struct Registered {
    destination: Destination,
    users: usize,
}

/// The B2BUA of one signalling shard; see the module docs.
pub struct B2bua {
    config: B2buaConfig,
    router: Box<dyn CallRouter>,
    media: Box<dyn MediaAnchor>,
    random: Box<dyn FnMut() -> u64 + Send>,
    /// Marks our Via branches, for loop detection.
    marker: u32,
    calls: HashMap<CallRef, Box<Call>>,
    next_call: u64,
    /// Calls not yet ended (what the call limit counts).
    active: usize,
    /// (Call-ID, our tag) of each leg's dialog → the call.
    dialogs: HashMap<(Bytes, Bytes), (CallRef, crate::media::Leg)>,
    transactions: HashMap<TransactionId, (CallRef, Role)>,
    sessions: HashMap<MediaSessionId, CallRef>,
    destinations: HashMap<(SocketAddr, Reliability), Registered>,
    /// MESSAGE requests outside a dialog being relayed, by our client transaction.
    messages: HashMap<TransactionId, Box<message::Relayed>>,
    timers: TimerQueue,
    stats: B2buaStats,
    /// Verification and signing (`None`: Identity headers pass like any other).
    identity: Option<IdentityService>,
    /// New calls waiting for a certificate, by their INVITE's server transaction.
    parked: HashMap<TransactionId, identity::Parked>,
    /// Records of ended calls, waiting for the driver.
    records: record::RecordQueue,
    /// New calls are refused (the appliance drains).
    draining: bool,
}

impl std::fmt::Debug for B2bua {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("B2bua")
            .field("config", &self.config)
            .field("calls", &self.calls.len())
            .field("active", &self.active)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl B2bua {
    /// A B2BUA routing with `router`, anchoring media with `media`, and drawing tags,
    /// Call-IDs and branches from `random` (in production a CSPRNG; in tests a counter).
    pub fn new(
        config: B2buaConfig,
        router: Box<dyn CallRouter>,
        media: Box<dyn MediaAnchor>,
        random: impl FnMut() -> u64 + Send + 'static,
    ) -> B2bua {
        let mut random: Box<dyn FnMut() -> u64 + Send> = Box::new(random);
        let marker = (random() >> 32) as u32;
        B2bua {
            config,
            router,
            media,
            random,
            marker,
            calls: HashMap::new(),
            next_call: 0,
            active: 0,
            dialogs: HashMap::new(),
            transactions: HashMap::new(),
            sessions: HashMap::new(),
            destinations: HashMap::new(),
            messages: HashMap::new(),
            timers: TimerQueue::default(),
            stats: B2buaStats::default(),
            identity: None,
            parked: HashMap::new(),
            records: record::RecordQueue::default(),
            draining: false,
        }
    }

    /// The B2BUA with `identity` verifying and signing calls per trunk policy.
    pub fn with_identity(mut self, identity: IdentityService) -> B2bua {
        self.identity = Some(identity);
        self
    }

    /// Replaces the per-trunk identity policies (new calls use them).
    pub fn handle_identity_policy(
        &mut self,
        trunks: HashMap<String, crate::identity::policy::TrunkIdentity>,
    ) {
        if let Some(identity) = self.identity.as_mut() {
            identity.set_trunks(trunks);
        }
    }

    /// New calls waiting for a certificate.
    pub fn calls_waiting_for_identity(&self) -> usize {
        self.parked.len()
    }

    pub fn config(&self) -> &B2buaConfig {
        &self.config
    }

    pub fn stats(&self) -> &B2buaStats {
        &self.stats
    }

    /// Calls in progress (not yet ended).
    pub fn calls(&self) -> usize {
        self.active
    }

    /// Call records held, including ended calls waiting for their last transaction.
    pub fn records(&self) -> usize {
        self.calls.len()
    }

    /// The option tags the B2BUA supports (for the endpoint's `Supported` and `Require`
    /// checks).
    pub fn supported(&self) -> &'static [&'static str] {
        &ADVERTISED
    }

    /// The methods the B2BUA relays (for `Allow`).
    pub fn allowed_methods(&self) -> &'static str {
        headers::ALLOWED_METHODS
    }

    /// Whether the B2BUA handles `request` (received in a new server transaction): every
    /// INVITE, every in-dialog request of a relayed method (it answers `481` when the
    /// dialog is unknown), and a CANCEL of one of its INVITEs.
    pub fn takes(&self, request: &Request, layer: &TransactionLayer) -> bool {
        match request.method {
            Method::Invite => true,
            Method::Cancel => layer.invite_cancelled_by(request).is_some_and(|invite| {
                self.is_parked(&invite)
                    || self
                        .transactions
                        .get(&invite)
                        .is_some_and(|&(_, role)| role == Role::CallerInvite)
            }),
            Method::Bye | Method::Info | Method::Update | Method::Options | Method::Prack => {
                request.headers.to().is_ok_and(|to| to.tag().is_some())
            }
            // In a call's dialog, or outside any (RFC 3428 pager mode).
            Method::Message => true,
            _ => false,
        }
    }

    /// Where to send a message whose [`Peer`] has no flow: the target a call registered
    /// for it (protocol and TLS server name), if any.
    pub fn destination(&self, peer: &Peer) -> Option<&Destination> {
        self.destinations
            .get(&(peer.remote, peer.reliability))
            .map(|registered| &registered.destination)
    }

    /// A request the B2BUA [`takes`](B2bua::takes), received in server transaction
    /// `transaction` from `source`, whose sender the trust boundary did not identify.
    pub fn handle_request(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        transaction: TransactionId,
        request: Request,
        source: Peer,
    ) {
        let anonymous = CallerIdentity::default();
        self.handle_request_from(now, layer, transaction, request, source, &anonymous);
    }

    /// [`B2bua::handle_request`] for a request from `caller` (a user or a trunk, as the
    /// trust boundary established), which new calls count against in the call limits.
    pub fn handle_request_from(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        transaction: TransactionId,
        request: Request,
        source: Peer,
        caller: &CallerIdentity,
    ) {
        match request.method {
            Method::Cancel => self.on_cancel(now, layer, transaction, request),
            Method::Invite if !has_to_tag(&request) => {
                self.on_new_invite(now, layer, transaction, request, source, caller);
            }
            Method::Message if !has_to_tag(&request) => {
                self.on_message(now, layer, request, source);
            }
            _ => self.on_in_dialog_request(now, layer, transaction, request, source),
        }
    }

    /// A transaction event other than a new request. Returns the event when it is not the
    /// B2BUA's (so the endpoint can count it).
    pub fn handle_event(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        event: Event,
    ) -> Option<Event> {
        match event {
            Event::Request {
                transaction,
                request,
                source,
            } => {
                self.handle_request(now, layer, transaction, request, source);
                None
            }
            Event::Ack {
                request, source, ..
            } => self.on_ack(layer, request, source),
            Event::Response {
                transaction,
                response,
            } if self.is_message(transaction) => {
                self.on_message_response(now, layer, transaction, response);
                None
            }
            Event::TimedOut { transaction, .. } if self.is_message(transaction) => {
                self.on_message_failure(now, layer, transaction, true);
                None
            }
            Event::TransportError { transaction } if self.is_message(transaction) => {
                self.on_message_failure(now, layer, transaction, false);
                None
            }
            Event::Terminated { transaction } if self.is_message(transaction) => {
                self.on_message_terminated(transaction);
                None
            }
            Event::Response {
                transaction,
                response,
            } => {
                let Some(&(call_ref, role)) = self.transactions.get(&transaction) else {
                    return Some(Event::Response {
                        transaction,
                        response,
                    });
                };
                self.on_response(now, layer, call_ref, role, transaction, response);
                None
            }
            Event::StrayResponse { response, source } => {
                self.on_stray_response(now, layer, response, source)
            }
            Event::TimedOut { transaction, timer } => {
                let Some(&(call_ref, role)) = self.transactions.get(&transaction) else {
                    return Some(Event::TimedOut { transaction, timer });
                };
                self.on_failure(now, layer, call_ref, role, transaction, Some(timer));
                None
            }
            Event::TransportError { transaction } => {
                let Some(&(call_ref, role)) = self.transactions.get(&transaction) else {
                    return Some(Event::TransportError { transaction });
                };
                self.on_failure(now, layer, call_ref, role, transaction, None);
                None
            }
            Event::Terminated { transaction } => {
                let Some((call_ref, _)) = self.transactions.remove(&transaction) else {
                    return Some(Event::Terminated { transaction });
                };
                self.with_call(call_ref, |_, call| {
                    call.transactions.retain(|&id| id != transaction);
                });
                None
            }
        }
    }

    /// Fires the call timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, layer: &mut TransactionLayer) {
        if self
            .parked_deadline()
            .is_some_and(|deadline| deadline <= now)
        {
            self.expire_parked(now, layer);
        }
        while let Some((call_ref, timer)) = self.timers.pop_due(now) {
            self.with_call(call_ref, |b2bua, call| {
                timers::fired(call, timer);
                b2bua.on_call_timer(now, layer, call_ref, call, timer);
            });
        }
    }

    /// The relay reports that the media of `session` stopped: an answered call ends with
    /// BYE on both legs (a call still ringing is left alone).
    pub fn handle_media_timeout(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        session: MediaSessionId,
    ) {
        let Some(&call_ref) = self.sessions.get(&session) else {
            count(&mut self.stats.dropped, "unknown_media_session");
            return;
        };
        self.with_call(call_ref, |b2bua, call| {
            if matches!(call.phase, call::Phase::Confirmed) {
                b2bua.hang_up(now, layer, call_ref, call, "media_timeout");
            } else {
                // Before the answer there may be no media at all (no early media): a
                // ringing call is not ended for silence.
                count(&mut b2bua.stats.dropped, "media_timeout_before_answer");
            }
        });
    }

    /// When [`B2bua::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timers.next_deadline(), self.parked_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- plumbing shared by the flows ----

    /// Runs `f` on a call taken out of the map (so that `f` may use all of `self`), then
    /// puts it back, or removes it for good when it has ended and no transaction refers
    /// to it any more.
    fn with_call(&mut self, call_ref: CallRef, f: impl FnOnce(&mut B2bua, &mut Call)) {
        let Some(mut call) = self.calls.remove(&call_ref) else {
            return;
        };
        f(self, &mut call);
        if call.is_ended() && call.transactions.is_empty() {
            self.forget(call_ref, &mut call);
        } else {
            self.calls.insert(call_ref, call);
        }
    }

    /// Drops every index entry of a call that goes away.
    fn forget(&mut self, call_ref: CallRef, call: &mut Call) {
        self.timers.disarm_all(call_ref, call);
        for dialog in [&call.a, &call.b] {
            let key = (dialog.call_id.clone(), dialog.local_tag.clone());
            if self.dialogs.get(&key).is_some_and(|(r, _)| *r == call_ref) {
                self.dialogs.remove(&key);
            }
        }
        self.unregister_destination(&call.b.peer);
        if let Some(media) = call.media.take() {
            self.sessions.remove(&media.session);
            self.media.release(media.session);
        }
    }

    /// Records that `transaction` belongs to `call`.
    fn track(
        &mut self,
        transaction: TransactionId,
        call_ref: CallRef,
        call: &mut Call,
        role: Role,
    ) {
        if self
            .transactions
            .insert(transaction, (call_ref, role))
            .is_none()
        {
            call.transactions.push(transaction);
        }
    }

    fn register_destination(&mut self, peer: &Peer, destination: Destination) {
        let entry = self
            .destinations
            .entry((peer.remote, peer.reliability))
            .or_insert(Registered {
                destination,
                users: 0,
            });
        entry.users += 1;
    }

    fn unregister_destination(&mut self, peer: &Peer) {
        let key = (peer.remote, peer.reliability);
        if let Some(registered) = self.destinations.get_mut(&key) {
            registered.users = registered.users.saturating_sub(1);
            if registered.users == 0 {
                self.destinations.remove(&key);
            }
        }
    }

    /// A fresh B-leg Call-ID this B2BUA owns. Each draw is owned with probability
    /// 1/shards, so this takes `shards` draws on average; after 4,096 (never, in practice)
    /// it takes the last one rather than loop on a broken owner.
    fn new_call_id(&mut self) -> String {
        let owner = self.config.call_id_owner.clone();
        let mut call_id = self.ids().call_id();
        if let Some(CallIdOwner(owns)) = owner {
            for _ in 0..4_096 {
                if owns(call_id.as_bytes()) {
                    break;
                }
                call_id = self.ids().call_id();
            }
        }
        call_id
    }

    fn ids(&mut self) -> headers::Ids<'_> {
        headers::Ids {
            random: &mut *self.random,
            marker: self.marker,
        }
    }

    fn arm(&mut self, call_ref: CallRef, call: &mut Call, timer: CallTimer, at: Instant) {
        self.timers.arm(call_ref, call, timer, at);
    }
}

fn has_to_tag(request: &Request) -> bool {
    request.headers.to().is_ok_and(|to| to.tag().is_some())
}

/// Adds the configured product name as `header` (User-Agent or Server).
fn add_product(config: &B2buaConfig, headers: &mut crate::sip::Headers, header: HeaderName) {
    if let Some(product) = &config.product {
        headers.push(header, product.clone());
    }
}
