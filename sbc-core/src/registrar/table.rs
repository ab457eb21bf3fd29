//! The table of bindings every shard shares: a concurrent map by address of record, atomic
//! counts and a bounded queue of changes (see the module docs of [`crate::registrar`]).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use dashmap::DashMap;

use super::{Binding, BindingChange, RegisterError, RegistrarConfig, RegistrarStats};
use crate::net::Protocol;
use crate::sip::{Contact, HeaderName, NameAddr, Request, Uri};
use crate::transaction::Peer;

/// Changes held for the persister at most; past that they are dropped and a resync is
/// asked for ([`Registrar::poll_resync`]). The binary drains twice a second, so this is
/// more than 30,000 REGISTERs a second before anything is dropped.
pub const CHANGE_QUEUE: usize = 16_384;

/// The longest the table goes without a sweep of lapsed bindings when operations keep
/// coming: past it, the next operation sweeps (the binary's persistence task sweeps more
/// often, so calls never do).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The bindings of every user. See the module docs.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    bindings: DashMap<String, Vec<Binding>>,
    total: AtomicUsize,
    changes: ChangeQueue,
    stats: Counters,
    /// The clock reading the offsets below count from.
    epoch: Instant,
    /// When the next sweep is due (nanoseconds after `epoch`).
    next_sweep: AtomicU64,
}

#[derive(Debug)]
struct ChangeQueue {
    sender: Sender<BindingChange>,
    receiver: Receiver<BindingChange>,
    /// Changes were dropped since the last [`Registrar::poll_resync`].
    overflowed: AtomicBool,
}

impl ChangeQueue {
    fn push(&self, change: BindingChange) {
        match self.sender.try_send(change) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.overflowed.store(true, Ordering::Release);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    registered: AtomicU64,
    refreshed: AtomicU64,
    unregistered: AtomicU64,
    expired: AtomicU64,
    refused: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// A contact of a REGISTER, checked, with the expiry it gets.
struct Wanted {
    contact: NameAddr,
    expires: Duration,
}

impl Registrar {
    pub fn new(config: RegistrarConfig) -> Registrar {
        Registrar::with_change_queue(config, CHANGE_QUEUE)
    }

    /// A registrar whose change queue holds `capacity` changes.
    pub fn with_change_queue(config: RegistrarConfig, capacity: usize) -> Registrar {
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        Registrar {
            config,
            bindings: DashMap::new(),
            total: AtomicUsize::new(0),
            changes: ChangeQueue {
                sender,
                receiver,
                overflowed: AtomicBool::new(false),
            },
            stats: Counters::default(),
            epoch: Instant::now(),
            next_sweep: AtomicU64::new(0),
        }
    }

    pub fn shared(config: RegistrarConfig) -> super::SharedRegistrar {
        std::sync::Arc::new(Registrar::new(config))
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> RegistrarStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RegistrarStats {
            registered: read(&self.stats.registered),
            refreshed: read(&self.stats.refreshed),
            unregistered: read(&self.stats.unregistered),
            expired: read(&self.stats.expired),
            refused: read(&self.stats.refused),
        }
    }

    /// Bindings held (some may have lapsed since the last sweep).
    pub fn len(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A REGISTER for `aor` (whose user has authenticated), received from `source` over
    /// `protocol`. Returns the bindings after the change (for the 200's Contact list).
    pub fn handle_register(
        &self,
        now: Instant,
        request: &Request,
        aor: &str,
        source: Peer,
        protocol: Protocol,
    ) -> Result<Vec<Binding>, RegisterError> {
        self.sweep_if_due(now);
        let outcome = self.register(now, request, aor, source, protocol);
        if outcome.is_err() {
            add(&self.stats.refused, 1);
        }
        outcome
    }

    fn register(
        &self,
        now: Instant,
        request: &Request,
        aor: &str,
        source: Peer,
        protocol: Protocol,
    ) -> Result<Vec<Binding>, RegisterError> {
        let header_expires = match request.headers.get(&HeaderName::Expires) {
            Some(value) => {
                Some(super::parse_seconds(value).ok_or(RegisterError::Malformed("expires"))?)
            }
            None => None,
        };
        let call_id = request
            .headers
            .call_id()
            .map_err(|_| RegisterError::Malformed("call_id"))?
            .clone();
        let cseq = request
            .headers
            .cseq()
            .map_err(|_| RegisterError::Malformed("cseq"))?
            .seq;
        let contacts = match request
            .headers
            .contact()
            .map_err(|_| RegisterError::Malformed("contact"))?
        {
            None => return Ok(self.live(now, aor)),
            Some(Contact::Star) => {
                if header_expires != Some(0) {
                    return Err(RegisterError::Malformed("star_contact_without_expires_0"));
                }
                self.remove_all(now, aor, &call_id, cseq)?;
                return Ok(Vec::new());
            }
            Some(Contact::Addresses(contacts)) => contacts,
        };
        // Check everything before changing anything.
        let mut wanted = Vec::with_capacity(contacts.len());
        for contact in contacts {
            if matches!(contact.uri, Uri::Other { .. }) {
                return Err(RegisterError::Malformed("contact_scheme"));
            }
            let expires = match contact.params.get("expires") {
                Some(Some(value)) => {
                    super::parse_seconds(value).ok_or(RegisterError::Malformed("expires_param"))?
                }
                Some(None) => return Err(RegisterError::Malformed("expires_param")),
                None => header_expires.unwrap_or(self.config.default_expires.as_secs()),
            };
            if expires != 0 && Duration::from_secs(expires) < self.config.min_expires {
                return Err(RegisterError::IntervalTooBrief {
                    min: self.config.min_expires,
                });
            }
            let expires = Duration::from_secs(expires).min(self.config.max_expires);
            wanted.push(Wanted { contact, expires });
        }
        // A full table may hold lapsed bindings: sweep them before refusing anyone.
        if self.len().saturating_add(wanted.len()) > self.config.max_bindings {
            self.expire(now);
        }
        let path: Vec<Bytes> = request
            .headers
            .get_all(&HeaderName::Path)
            .cloned()
            .collect();
        let user_agent = request.headers.get(&HeaderName::UserAgent).cloned();
        // Only this user's map shard is locked, for the time of the change; the changes
        // are queued under that lock, so they reach the persister in order.
        self.with_bindings(now, aor, |list| {
            for Wanted { contact, expires } in wanted {
                let binding = Binding::new(
                    aor,
                    &contact,
                    source,
                    protocol,
                    path.clone(),
                    user_agent.clone(),
                    call_id.clone(),
                    cseq,
                    now + expires,
                );
                if expires.is_zero() {
                    self.remove(list, &binding, &call_id, cseq)?;
                } else {
                    self.upsert(list, binding)?;
                }
            }
            Ok(list.clone())
        })
    }

    /// Runs `change` on the live bindings of `aor` (created empty when there are none)
    /// under the write lock of its map shard, and forgets the user when none is left.
    fn with_bindings<T>(
        &self,
        now: Instant,
        aor: &str,
        change: impl FnOnce(&mut Vec<Binding>) -> T,
    ) -> T {
        let outcome = {
            let mut list = match self.bindings.get_mut(aor) {
                Some(list) => list,
                None => self.bindings.entry(aor.to_owned()).or_default(),
            };
            self.drop_lapsed(now, &mut list);
            change(&mut list)
        };
        self.bindings.remove_if(aor, |_, list| list.is_empty());
        outcome
    }

    /// Drops the lapsed bindings of one user (the store deletes its own lapsed rows, so
    /// no change is queued).
    fn drop_lapsed(&self, now: Instant, list: &mut Vec<Binding>) {
        let before = list.len();
        list.retain(|binding| binding.expires_at > now);
        let lapsed = before - list.len();
        if lapsed > 0 {
            self.total.fetch_sub(lapsed, Ordering::AcqRel);
            add(&self.stats.expired, lapsed as u64);
        }
    }

    fn upsert(&self, list: &mut Vec<Binding>, binding: Binding) -> Result<(), RegisterError> {
        if let Some(existing) = list.iter_mut().find(|b| b.same_as(&binding)) {
            if existing.call_id == binding.call_id && binding.cseq <= existing.cseq {
                return Err(RegisterError::OutOfOrder);
            }
            *existing = binding.clone();
            add(&self.stats.refreshed, 1);
            self.changes.push(BindingChange::Bound(Box::new(binding)));
            return Ok(());
        }
        if list.len() >= self.config.max_bindings_per_aor {
            return Err(RegisterError::TooManyForUser);
        }
        self.reserve_one()?;
        list.push(binding.clone());
        add(&self.stats.registered, 1);
        self.changes.push(BindingChange::Bound(Box::new(binding)));
        Ok(())
    }

    /// Counts one more binding, unless the table is full.
    fn reserve_one(&self) -> Result<(), RegisterError> {
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |total| {
                (total < self.config.max_bindings).then_some(total + 1)
            })
            .map(drop)
            .map_err(|_| RegisterError::Full)
    }

    fn remove(
        &self,
        list: &mut Vec<Binding>,
        binding: &Binding,
        call_id: &Bytes,
        cseq: u32,
    ) -> Result<(), RegisterError> {
        if let Some(index) = list.iter().position(|b| b.same_as(binding)) {
            let existing = list.get(index).ok_or(RegisterError::OutOfOrder)?;
            if existing.call_id == *call_id && cseq <= existing.cseq {
                return Err(RegisterError::OutOfOrder);
            }
            let removed = list.swap_remove(index);
            self.total.fetch_sub(1, Ordering::AcqRel);
            add(&self.stats.unregistered, 1);
            self.changes.push(BindingChange::Removed {
                contact: removed.contact.to_string(),
                aor: removed.aor,
            });
        }
        Ok(())
    }

    fn remove_all(
        &self,
        now: Instant,
        aor: &str,
        call_id: &Bytes,
        cseq: u32,
    ) -> Result<(), RegisterError> {
        if !self.bindings.contains_key(aor) {
            return Ok(());
        }
        self.with_bindings(now, aor, |list| {
            if list.iter().any(|b| b.call_id == *call_id && cseq <= b.cseq) {
                return Err(RegisterError::OutOfOrder);
            }
            self.total.fetch_sub(list.len(), Ordering::AcqRel);
            for removed in list.drain(..) {
                add(&self.stats.unregistered, 1);
                self.changes.push(BindingChange::Removed {
                    contact: removed.contact.to_string(),
                    aor: removed.aor,
                });
            }
            Ok(())
        })
    }

    /// The live bindings of `aor`, under a read lock.
    fn live(&self, now: Instant, aor: &str) -> Vec<Binding> {
        self.bindings.get(aor).map_or_else(Vec::new, |list| {
            list.iter()
                .filter(|binding| binding.expires_at > now)
                .cloned()
                .collect()
        })
    }

    /// The live bindings of `aor`, most recently registered first.
    pub fn lookup(&self, now: Instant, aor: &str) -> Vec<Binding> {
        self.sweep_if_due(now);
        let mut found = self.live(now, aor);
        found.sort_by_key(|binding| std::cmp::Reverse(binding.expires_at));
        found
    }

    /// Whether `aor` has a live binding on the flow `peer` (same source and connection).
    pub fn is_bound_flow(&self, now: Instant, aor: &str, peer: &Peer) -> bool {
        self.sweep_if_due(now);
        self.bindings.get(aor).is_some_and(|list| {
            list.iter().any(|binding| {
                binding.expires_at > now
                    && binding.source == peer.remote
                    && binding.flow == peer.flow
            })
        })
    }

    /// Whether `aor` has any live binding.
    pub fn is_registered(&self, now: Instant, aor: &str) -> bool {
        self.sweep_if_due(now);
        self.bindings
            .get(aor)
            .is_some_and(|list| list.iter().any(|binding| binding.expires_at > now))
    }

    /// Every live binding (for a full rewrite of the store, see
    /// [`Registrar::poll_resync`]).
    pub fn snapshot(&self, now: Instant) -> Vec<Binding> {
        let mut all = Vec::with_capacity(self.len());
        for entry in self.bindings.iter() {
            all.extend(
                entry
                    .value()
                    .iter()
                    .filter(|binding| binding.expires_at > now)
                    .cloned(),
            );
        }
        all
    }

    /// Drops every lapsed binding. Users with none are found under read locks first, so
    /// lookups go on meanwhile; each write lock is then held for one user.
    pub fn expire(&self, now: Instant) {
        let due = self.offset(now).saturating_add(nanos(SWEEP_INTERVAL));
        self.next_sweep.fetch_max(due, Ordering::AcqRel);
        let lapsed: Vec<String> = self
            .bindings
            .iter()
            .filter(|entry| entry.value().iter().any(|b| b.expires_at <= now))
            .map(|entry| entry.key().clone())
            .collect();
        for aor in lapsed {
            if let Some(mut list) = self.bindings.get_mut(&aor) {
                self.drop_lapsed(now, &mut list);
            }
            self.bindings.remove_if(&aor, |_, list| list.is_empty());
        }
    }

    /// Sweeps when nobody has for [`SWEEP_INTERVAL`] (one caller wins the turn).
    fn sweep_if_due(&self, now: Instant) {
        let at = self.offset(now);
        let due = self.next_sweep.load(Ordering::Acquire);
        if at >= due
            && self
                .next_sweep
                .compare_exchange(
                    due,
                    at.saturating_add(nanos(SWEEP_INTERVAL)),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            self.expire(now);
        }
    }

    fn offset(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.epoch))
    }

    /// Loads a persisted binding (at start). Ignored when lapsed or over a limit.
    pub fn restore(&self, now: Instant, binding: Binding) -> bool {
        if binding.expires_at <= now {
            return false;
        }
        let aor = binding.aor.clone();
        self.with_bindings(now, &aor, |list| {
            if list.len() >= self.config.max_bindings_per_aor
                || list.iter().any(|b| b.same_as(&binding))
                || self.reserve_one().is_err()
            {
                return false;
            }
            list.push(binding);
            true
        })
    }

    /// The next change to persist.
    pub fn poll_change(&self) -> Option<BindingChange> {
        self.changes.receiver.try_recv().ok()
    }

    /// Whether changes were dropped (the queue was full) since the last call: the store
    /// must then be rewritten from [`Registrar::snapshot`], taken after this call.
    pub fn poll_resync(&self) -> bool {
        self.changes.overflowed.swap(false, Ordering::AcqRel)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
