//! [`TransactionLayer`]: owns every transaction, matches messages to them, runs their
//! timers, and queues what they send and tell the TU.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::entry::{Entry, IndexKey, LayerStats, Machine, Queues};
use super::error::{RefuseReason, Refused, SendError};
use super::key::{ClientKey, KeyField, LegacyCheck, ServerKey, is_rfc3261_branch};
use super::outbox::Outbox;
use super::server_invite::ServerInvite;
use super::server_non_invite::ServerNonInvite;
use super::timer::TimerConfig;
use super::{Event, Peer, TransactionId, TransactionKind, TransactionState, Transmit};
use crate::sip::{Message, Method, Request, Response, StatusCode};

/// Limits and timers of a [`TransactionLayer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerConfig {
    pub timers: TimerConfig,
    /// New transactions past this count are refused ([`RefuseReason::TransactionLimit`],
    /// answer 503; [`SendError::TransactionLimit`] for the TU's own requests).
    pub max_transactions: usize,
    /// Transmits queued and not yet taken by [`TransactionLayer::poll_transmit`] past which
    /// new ones are dropped (and counted): they behave as lost packets.
    pub max_queued_transmits: usize,
    /// Events queued and not yet taken by [`TransactionLayer::poll_event`] past which new
    /// requests are refused and new responses dropped (the peer retransmits).
    pub max_queued_events: usize,
}

impl Default for LayerConfig {
    fn default() -> LayerConfig {
        LayerConfig {
            timers: TimerConfig::default(),
            max_transactions: 65_536,
            max_queued_transmits: 4_096,
            max_queued_events: 4_096,
        }
    }
}

/// Owns every client and server transaction of one signalling shard. See the
/// [module documentation](super) for the drain contract.
#[derive(Debug)]
pub struct TransactionLayer {
    config: LayerConfig,
    transactions: HashMap<TransactionId, Entry>,
    client_index: HashMap<ClientKey, TransactionId>,
    server_index: HashMap<ServerKey, TransactionId>,
    queues: Queues,
    outbox: Outbox,
    next_id: u64,
}

/// Retransmission intervals below this are raised to it, so that a zero T1 cannot make
/// [`TransactionLayer::handle_timeout`] spin.
const MINIMUM_INTERVAL: Duration = Duration::from_millis(1);

impl TransactionLayer {
    pub fn new(mut config: LayerConfig) -> TransactionLayer {
        config.timers.t1 = config.timers.t1.max(MINIMUM_INTERVAL);
        config.timers.t2 = config.timers.t2.max(config.timers.t1);
        TransactionLayer {
            transactions: HashMap::new(),
            client_index: HashMap::new(),
            server_index: HashMap::new(),
            queues: Queues {
                timers: BTreeSet::new(),
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                max_transmits: config.max_queued_transmits,
                max_events: config.max_queued_events,
                stats: LayerStats::default(),
            },
            outbox: Outbox::new(config.timers),
            next_id: 0,
            config,
        }
    }

    pub fn config(&self) -> &LayerConfig {
        &self.config
    }

    pub fn stats(&self) -> &LayerStats {
        &self.queues.stats
    }

    /// The number of live transactions.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// The state of a live transaction.
    pub fn state(&self, transaction: TransactionId) -> Option<TransactionState> {
        self.transactions
            .get(&transaction)
            .map(|e| e.machine.state())
    }

    /// The kind of a live transaction.
    pub fn kind(&self, transaction: TransactionId) -> Option<TransactionKind> {
        self.transactions
            .get(&transaction)
            .map(|e| e.machine.kind())
    }

    /// The live INVITE server transaction that `cancel` cancels (RFC 3261 §9.2), so the
    /// TU can answer it `487` after answering the CANCEL `200`.
    pub fn invite_cancelled_by(&self, cancel: &Request) -> Option<TransactionId> {
        if cancel.method != Method::Cancel {
            return None;
        }
        let key = ServerKey::cancelled_invite(&cancel.headers).ok()?;
        let id = *self.server_index.get(&key)?;
        let entry = self.transactions.get(&id)?;
        match &entry.legacy {
            Some(check) if !check.matches_cancel(cancel) => None,
            _ => Some(id),
        }
    }

    /// Whether `request` matches a live server transaction (it is a retransmission the
    /// transaction will absorb).
    pub fn has_server_transaction(&self, request: &Request) -> bool {
        server_key_of_request(request)
            .ok()
            .is_some_and(|key| self.server_index.contains_key(&key))
    }

    /// A message arrived from `source`. Requests that match a server transaction are
    /// absorbed (the transaction answers retransmissions itself); new ones create a server
    /// transaction and reach the TU as [`Event::Request`]; ACKs for 2xx and ACKs matching
    /// nothing reach it as [`Event::Ack`]. Responses go to their client transaction, or to
    /// the TU as [`Event::StrayResponse`]; malformed ones are dropped and counted.
    ///
    /// A request that cannot be handled is handed back in [`Refused`] for the caller to
    /// answer statelessly (400, 482 or 503; never an ACK).
    pub fn handle_incoming(
        &mut self,
        now: Instant,
        message: Message,
        source: Peer,
    ) -> Result<(), Refused> {
        match message {
            Message::Request(request) => self.incoming_request(now, request, source),
            Message::Response(response) => {
                self.incoming_response(now, response, source);
                Ok(())
            }
        }
    }

    fn incoming_request(
        &mut self,
        now: Instant,
        request: Request,
        source: Peer,
    ) -> Result<(), Refused> {
        let refuse = |reason, request| Refused {
            reason,
            request: Box::new(request),
            from: source,
        };
        let key = match server_key_of_request(&request) {
            Ok(key) => key,
            Err(reason) => return Err(refuse(reason, request)),
        };
        let matched = self.server_index.get(&key).copied().filter(|id| {
            self.transactions
                .get(id)
                .and_then(|entry| entry.legacy.as_ref())
                .is_none_or(|check| check.matches(&request))
        });
        if request.method == Method::Ack {
            self.incoming_ack(now, request, source, matched);
            return Ok(());
        }
        if let Some(id) = matched {
            self.queues.stats.retransmissions_absorbed += 1;
            self.step(now, id, |machine, out| match machine {
                Machine::ServerInvite(m) => m.on_retransmission(out),
                Machine::ServerNonInvite(m) => m.on_retransmission(out),
                Machine::ClientInvite(_) | Machine::ClientNonInvite(_) => {}
            });
            return Ok(());
        }
        if self.server_index.contains_key(&key) {
            // Same RFC 2543 identifiers, different Request-URI or To tag.
            return Err(refuse(RefuseReason::MergedRequest, request));
        }
        if self.transactions.len() >= self.config.max_transactions {
            return Err(refuse(RefuseReason::TransactionLimit, request));
        }
        if self.queues.events_full() {
            return Err(refuse(RefuseReason::EventBacklog, request));
        }

        let id = self.allocate_id();
        self.outbox.begin(source.reliability);
        let machine = if request.method == Method::Invite {
            let trying = request
                .make_response(StatusCode::TRYING, None, None)
                .to_bytes();
            Machine::ServerInvite(ServerInvite::start(trying, &mut self.outbox))
        } else {
            Machine::ServerNonInvite(ServerNonInvite::start(&mut self.outbox))
        };
        let legacy = key.is_legacy().then(|| LegacyCheck::of(&request));
        self.server_index.insert(key.clone(), id);
        let mut entry = Entry {
            machine,
            peer: source,
            key: IndexKey::Server(key),
            legacy,
            armed: Vec::with_capacity(3),
        };
        self.queues.push_event(Event::Request {
            transaction: id,
            request,
            source,
        });
        self.queues.apply(now, id, &mut entry, &mut self.outbox);
        self.transactions.insert(id, entry);
        Ok(())
    }

    fn incoming_ack(
        &mut self,
        now: Instant,
        ack: Request,
        source: Peer,
        matched: Option<TransactionId>,
    ) {
        let invite = matched.filter(|id| {
            matches!(
                self.transactions.get(id).map(|e| &e.machine),
                Some(Machine::ServerInvite(_))
            )
        });
        let Some(id) = invite else {
            // The ACK for a 2xx (its own branch), or one for a transaction already gone.
            if self.queues.events_full() {
                self.queues.stats.acks_dropped_backlog += 1;
            } else {
                self.queues.push_event(Event::Ack {
                    transaction: None,
                    request: ack,
                    source,
                });
            }
            return;
        };
        // The first ACK of a non-2xx completes the handshake; later ones are absorbed.
        if matches!(
            self.state(id),
            Some(TransactionState::Confirmed | TransactionState::Proceeding)
        ) {
            self.queues.stats.retransmissions_absorbed += 1;
        }
        self.step(now, id, |machine, out| {
            if let Machine::ServerInvite(m) = machine {
                m.on_ack(ack, source, out);
            }
        });
    }

    fn incoming_response(&mut self, now: Instant, response: Response, source: Peer) {
        let Some(key) = ClientKey::of(&response.headers) else {
            self.queues.stats.responses_malformed += 1;
            return;
        };
        if self.queues.events_full() {
            self.queues.stats.responses_dropped_backlog += 1;
            return;
        }
        match self.client_index.get(&key).copied() {
            Some(id) => {
                self.step(now, id, |machine, out| match machine {
                    Machine::ClientInvite(m) => m.on_response(response, out),
                    Machine::ClientNonInvite(m) => m.on_response(response, out),
                    Machine::ServerInvite(_) | Machine::ServerNonInvite(_) => {}
                });
            }
            None => {
                self.queues.stats.stray_responses += 1;
                self.queues
                    .push_event(Event::StrayResponse { response, source });
            }
        }
    }

    /// The TU sends a request to `destination` in a new client transaction. The request's
    /// top Via must carry an RFC 3261 branch (see [`super::branch_from_random`]); a CANCEL
    /// carries the branch of the INVITE it cancels. ACKs are not transactions: send them
    /// with [`TransactionLayer::handle_send_stateless`].
    pub fn handle_send_request(
        &mut self,
        now: Instant,
        request: Request,
        destination: Peer,
    ) -> Result<TransactionId, SendError> {
        if request.method == Method::Ack {
            return Err(SendError::AckIsNotATransaction);
        }
        let via = request.headers.top_via().map_err(|_| SendError::BadVia)?;
        if !via.branch().is_some_and(|b| is_rfc3261_branch(b)) {
            return Err(SendError::MissingBranch);
        }
        let cseq = request.headers.cseq().map_err(|_| SendError::BadCSeq)?;
        if cseq.method != request.method {
            return Err(SendError::BadCSeq);
        }
        let key = ClientKey::of(&request.headers).ok_or(SendError::BadVia)?;
        if self.client_index.contains_key(&key) {
            return Err(SendError::DuplicateTransaction);
        }
        if self.transactions.len() >= self.config.max_transactions {
            return Err(SendError::TransactionLimit);
        }
        if self.queues.transmits_full() {
            return Err(SendError::TransmitBacklog);
        }

        let id = self.allocate_id();
        let bytes = request.to_bytes();
        self.outbox.begin(destination.reliability);
        let machine = if request.method == Method::Invite {
            Machine::ClientInvite(ClientInvite::start(request, bytes, &mut self.outbox))
        } else {
            Machine::ClientNonInvite(ClientNonInvite::start(bytes, &mut self.outbox))
        };
        self.client_index.insert(key.clone(), id);
        let mut entry = Entry {
            machine,
            peer: destination,
            key: IndexKey::Client(key),
            legacy: None,
            armed: Vec::with_capacity(3),
        };
        self.queues.apply(now, id, &mut entry, &mut self.outbox);
        self.transactions.insert(id, entry);
        Ok(id)
    }

    /// The TU answers a request it got as [`Event::Request`]. The response is matched to
    /// its server transaction by the Via, CSeq (and for RFC 2543 peers Call-ID and From)
    /// it copied from the request (RFC 3261 §8.2.6.2), and goes to where the request came
    /// from. For an INVITE answered 2xx, the TU retransmits the 2xx through this call
    /// until the ACK comes (RFC 6026 §7.1); returns the transaction it went to.
    pub fn handle_send_response(
        &mut self,
        now: Instant,
        response: Response,
    ) -> Result<TransactionId, SendError> {
        let key = ServerKey::of(&response.headers).map_err(|error| match error {
            KeyField::Via => SendError::BadVia,
            KeyField::CSeq => SendError::BadCSeq,
            KeyField::LegacyIdentifiers => SendError::NoSuchTransaction,
        })?;
        let id = *self
            .server_index
            .get(&key)
            .ok_or(SendError::NoSuchTransaction)?;
        if self.queues.transmits_full() {
            return Err(SendError::TransmitBacklog);
        }
        let status = response.status;
        let bytes = response.to_bytes();
        let sent = self
            .step(now, id, |machine, out| match machine {
                Machine::ServerInvite(m) => m.on_tu_response(status, bytes, out),
                Machine::ServerNonInvite(m) => m.on_tu_response(status, bytes, out),
                Machine::ClientInvite(_) | Machine::ClientNonInvite(_) => {
                    Err(SendError::NoSuchTransaction)
                }
            })
            .unwrap_or(Err(SendError::NoSuchTransaction));
        if sent.is_ok()
            && status.is_final()
            && let Some(check) = self
                .transactions
                .get_mut(&id)
                .and_then(|entry| entry.legacy.as_mut())
        {
            check.final_response_sent(&response.headers);
        }
        sent.map(|()| id)
    }

    /// Sends a message outside any transaction: an ACK for a 2xx, a stateless answer to a
    /// [`Refused`] request, a response for which no transaction exists any more.
    pub fn handle_send_stateless(
        &mut self,
        message: &Message,
        destination: Peer,
    ) -> Result<(), SendError> {
        if self.queues.transmits_full() {
            return Err(SendError::TransmitBacklog);
        }
        self.queues.push_transmit(Transmit {
            transaction: None,
            destination,
            payload: message.to_bytes(),
        });
        Ok(())
    }

    /// The transport could not send a [`Transmit`] of `transaction` (ICMP unreachable, a
    /// connection that failed): the transaction ends and the TU is told (RFC 3261 §17.1.4,
    /// §17.2.4).
    pub fn handle_transport_error(&mut self, now: Instant, transaction: TransactionId) {
        self.step(now, transaction, |machine, out| {
            machine.on_transport_error(out);
        });
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id, timer)) = self.queues.timers.first() {
            if at > now {
                break;
            }
            self.queues.timers.remove(&(at, id, timer));
            if let Some(entry) = self.transactions.get_mut(&id) {
                entry.armed.retain(|&(armed, _)| armed != timer);
            }
            self.step(now, id, |machine, out| machine.on_timer(timer, out));
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.queues.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.queues.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queues.timers.first().map(|&(at, _, _)| at)
    }

    fn allocate_id(&mut self) -> TransactionId {
        self.next_id = self.next_id.wrapping_add(1);
        TransactionId(self.next_id)
    }

    /// Runs one step of a transaction's machine, applies what it recorded, and removes the
    /// transaction if it reached `Terminated`. `None` when there is no such transaction.
    fn step<R>(
        &mut self,
        now: Instant,
        id: TransactionId,
        step: impl FnOnce(&mut Machine, &mut Outbox) -> R,
    ) -> Option<R> {
        let entry = self.transactions.get_mut(&id)?;
        self.outbox.begin(entry.peer.reliability);
        let result = step(&mut entry.machine, &mut self.outbox);
        self.queues.apply(now, id, entry, &mut self.outbox);
        if entry.machine.is_terminated() {
            self.remove(id);
        }
        Some(result)
    }

    fn remove(&mut self, id: TransactionId) {
        let Some(entry) = self.transactions.remove(&id) else {
            return;
        };
        for (timer, at) in entry.armed {
            self.queues.timers.remove(&(at, id, timer));
        }
        match entry.key {
            IndexKey::Client(key) => {
                if self.client_index.get(&key) == Some(&id) {
                    self.client_index.remove(&key);
                }
            }
            IndexKey::Server(key) => {
                if self.server_index.get(&key) == Some(&id) {
                    self.server_index.remove(&key);
                }
            }
        }
        self.queues
            .push_event(Event::Terminated { transaction: id });
    }
}

/// The server key of a received request, checking that its CSeq method is its own.
fn server_key_of_request(request: &Request) -> Result<ServerKey, RefuseReason> {
    let key = ServerKey::of(&request.headers).map_err(|error| match error {
        KeyField::Via => RefuseReason::BadVia,
        KeyField::CSeq => RefuseReason::BadCSeq,
        KeyField::LegacyIdentifiers => RefuseReason::BadLegacyIdentifiers,
    })?;
    match request.headers.cseq() {
        Ok(cseq) if cseq.method == request.method => Ok(key),
        Ok(_) => Err(RefuseReason::CSeqMethodMismatch),
        Err(_) => Err(RefuseReason::BadCSeq),
    }
}
