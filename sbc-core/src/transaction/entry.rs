//! What the layer keeps per transaction ([`Entry`]: its [`Machine`] and index key), and
//! the queues every machine step feeds: timers, transmits and events ([`Queues`]).

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::key::{ClientKey, LegacyCheck, ServerKey};
use super::outbox::{Notice, Outbox};
use super::server_invite::ServerInvite;
use super::server_non_invite::ServerNonInvite;
use super::timer::Timer;
use super::{Event, Peer, TransactionId, TransactionKind, TransactionState, Transmit};

/// Counters of what the layer absorbed or dropped, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Requests (and ACKs for non-2xx) absorbed by an existing server transaction.
    pub retransmissions_absorbed: u64,
    /// Responses matching no client transaction, passed to the TU as
    /// [`Event::StrayResponse`].
    pub stray_responses: u64,
    /// Responses without a decodable top-Via branch or CSeq: dropped.
    pub responses_malformed: u64,
    /// Responses dropped because the event queue was full.
    pub responses_dropped_backlog: u64,
    /// ACKs matching no transaction dropped because the event queue was full.
    pub acks_dropped_backlog: u64,
    /// Transmits dropped because the transmit queue was full.
    pub transmits_dropped: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
}

/// The state machine of one transaction.
#[derive(Debug)]
#[allow(
    clippy::enum_variant_names,
    reason = "named after the RFC 3261 machines"
)]
pub(crate) enum Machine {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

impl Machine {
    pub(crate) fn kind(&self) -> TransactionKind {
        match self {
            Machine::ClientInvite(_) => TransactionKind::ClientInvite,
            Machine::ClientNonInvite(_) => TransactionKind::ClientNonInvite,
            Machine::ServerInvite(_) => TransactionKind::ServerInvite,
            Machine::ServerNonInvite(_) => TransactionKind::ServerNonInvite,
        }
    }

    pub(crate) fn state(&self) -> TransactionState {
        match self {
            Machine::ClientInvite(m) => m.state(),
            Machine::ClientNonInvite(m) => m.state(),
            Machine::ServerInvite(m) => m.state(),
            Machine::ServerNonInvite(m) => m.state(),
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        match self {
            Machine::ClientInvite(m) => m.is_terminated(),
            Machine::ClientNonInvite(m) => m.is_terminated(),
            Machine::ServerInvite(m) => m.is_terminated(),
            Machine::ServerNonInvite(m) => m.is_terminated(),
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, out: &mut Outbox) {
        match self {
            Machine::ClientInvite(m) => m.on_timer(timer, out),
            Machine::ClientNonInvite(m) => m.on_timer(timer, out),
            Machine::ServerInvite(m) => m.on_timer(timer, out),
            Machine::ServerNonInvite(m) => m.on_timer(timer, out),
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Outbox) {
        match self {
            Machine::ClientInvite(m) => m.on_transport_error(out),
            Machine::ClientNonInvite(m) => m.on_transport_error(out),
            Machine::ServerInvite(m) => m.on_transport_error(out),
            Machine::ServerNonInvite(m) => m.on_transport_error(out),
        }
    }
}

/// Where a transaction is indexed, so that it can be unindexed when it ends.
#[derive(Debug)]
pub(crate) enum IndexKey {
    Client(ClientKey),
    Server(ServerKey),
}

/// One transaction with what the layer keeps beside its machine.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) machine: Machine,
    /// Where everything the transaction sends goes: the destination of a client
    /// transaction, the source of a server transaction's request.
    pub(crate) peer: Peer,
    pub(crate) key: IndexKey,
    /// For an RFC 2543 server transaction, the rest of what requests must match.
    pub(crate) legacy: Option<LegacyCheck>,
    /// Armed timers and their deadlines (at most three at a time).
    pub(crate) armed: Vec<(Timer, Instant)>,
}

/// The output queues and the timer queue, kept apart from the transaction map so a
/// machine step can borrow both.
#[derive(Debug)]
pub(crate) struct Queues {
    pub(crate) timers: BTreeSet<(Instant, TransactionId, Timer)>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) max_transmits: usize,
    pub(crate) max_events: usize,
    pub(crate) stats: LayerStats,
}

impl Queues {
    pub(crate) fn push_transmit(&mut self, transmit: Transmit) {
        if self.transmits.len() >= self.max_transmits {
            self.stats.transmits_dropped += 1;
        } else {
            self.transmits.push_back(transmit);
        }
    }

    pub(crate) fn push_event(&mut self, event: Event) {
        if self.events.len() >= self.max_events {
            self.stats.events_dropped += 1;
        } else {
            self.events.push_back(event);
        }
    }

    pub(crate) fn events_full(&self) -> bool {
        self.events.len() >= self.max_events
    }

    pub(crate) fn transmits_full(&self) -> bool {
        self.transmits.len() >= self.max_transmits
    }

    pub(crate) fn disarm(&mut self, id: TransactionId, entry: &mut Entry, timer: Timer) {
        entry.armed.retain(|&(armed, at)| {
            let keep = armed != timer;
            if !keep {
                self.timers.remove(&(at, id, armed));
            }
            keep
        });
    }

    /// Turns what a machine step recorded in `outbox` into queued outputs and timers.
    pub(crate) fn apply(
        &mut self,
        now: Instant,
        id: TransactionId,
        entry: &mut Entry,
        outbox: &mut Outbox,
    ) {
        for timer in outbox.disarms.drain(..) {
            self.disarm(id, entry, timer);
        }
        for (timer, duration) in outbox.arms.drain(..) {
            self.disarm(id, entry, timer);
            // A deadline beyond what `Instant` can represent is never reached.
            if let Some(at) = now.checked_add(duration) {
                self.timers.insert((at, id, timer));
                entry.armed.push((timer, at));
            }
        }
        for payload in outbox.sends.drain(..) {
            self.push_transmit(Transmit {
                transaction: Some(id),
                destination: entry.peer,
                payload,
            });
        }
        for notice in outbox.notices.drain(..) {
            let event = match notice {
                Notice::Response(response) => Event::Response {
                    transaction: id,
                    response,
                },
                Notice::Ack(request, source) => Event::Ack {
                    transaction: Some(id),
                    request,
                    source,
                },
                Notice::TimedOut(timer) => Event::TimedOut {
                    transaction: id,
                    timer,
                },
                Notice::TransportError => Event::TransportError { transaction: id },
            };
            self.push_event(event);
        }
    }
}
