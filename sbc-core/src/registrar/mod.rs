//! The registrar of access users (RFC 3261 §10.3), sans-IO.
//!
//! * Bindings of an address of record (`sip:user@domain`) to contacts, each with its own
//!   expiry: `expires` per contact, else the `Expires` header, else
//!   [`RegistrarConfig::default_expires`]; below [`RegistrarConfig::min_expires`] the
//!   REGISTER is refused `423 Interval Too Brief` with `Min-Expires`, above
//!   [`RegistrarConfig::max_expires`] it is shortened. `Expires: 0` (or `expires=0`)
//!   removes a binding, `Contact: *` with `Expires: 0` all of them. A REGISTER without
//!   Contact lists the bindings.
//! * Per RFC 3261 §10.3 step 7, a binding refreshed with the same Call-ID needs a higher
//!   CSeq (else `500`).
//! * Each binding remembers the flow its REGISTER came on (source address, transport and
//!   connection, RFC 5626): calls to the user are sent on that flow only, which is what
//!   phones behind NAT need. With `+sip.instance` and `reg-id` (RFC 5626 outbound) a new
//!   registration of the same instance and reg-id replaces the old flow.
//! * `Path` (RFC 3327) is stored and used as the route set toward the contact;
//!   `Service-Route` (RFC 3608) in the 200 names the SBC, so the phone sends its requests
//!   through it.
//! * Bounded: [`RegistrarConfig::max_bindings_per_aor`] per user (`403` past it) and
//!   [`RegistrarConfig::max_bindings`] in all (`503` past it).
//!
//! One registrar is shared by every shard (a REGISTER and a call to the same user arrive
//! on different shards), behind a mutex held for microseconds ([`SharedRegistrar`]).
//! Changes are queued ([`Registrar::poll_change`]) for the binary to persist, and
//! [`Registrar::restore`] loads persisted bindings at start.

mod binding;
mod locate;

pub use binding::{Binding, BindingChange, RegisteredContact};
pub use locate::LocatingRouter;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::net::Protocol;
use crate::sip::{Contact, HeaderName, NameAddr, Request, StatusCode, Uri};
use crate::transaction::Peer;

/// Limits and defaults of the registrar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrarConfig {
    pub min_expires: Duration,
    pub max_expires: Duration,
    pub default_expires: Duration,
    pub max_bindings_per_aor: usize,
    pub max_bindings: usize,
}

impl Default for RegistrarConfig {
    fn default() -> RegistrarConfig {
        RegistrarConfig {
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
            default_expires: Duration::from_secs(3600),
            max_bindings_per_aor: 10,
            max_bindings: 100_000,
        }
    }
}

/// Why a REGISTER is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// An expiry below the minimum: `423` with `Min-Expires`.
    IntervalTooBrief { min: Duration },
    /// A Contact or Expires that does not parse: `400`.
    Malformed(&'static str),
    /// Same Call-ID, CSeq not higher: `500`.
    OutOfOrder,
    /// The user has too many bindings: `403`.
    TooManyForUser,
    /// The registrar is full: `503`.
    Full,
}

impl RegisterError {
    pub fn status(&self) -> StatusCode {
        let code = match self {
            RegisterError::IntervalTooBrief { .. } => 423,
            RegisterError::Malformed(_) => 400,
            RegisterError::OutOfOrder => 500,
            RegisterError::TooManyForUser => 403,
            RegisterError::Full => 503,
        };
        StatusCode::new(code).unwrap_or(StatusCode::SERVER_INTERNAL_ERROR)
    }

    /// A stable name for metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            RegisterError::IntervalTooBrief { .. } => "interval_too_brief",
            RegisterError::Malformed(_) => "malformed_register",
            RegisterError::OutOfOrder => "register_out_of_order",
            RegisterError::TooManyForUser => "too_many_bindings",
            RegisterError::Full => "registrar_full",
        }
    }

    /// Headers the refusal carries (`Min-Expires`).
    pub fn headers(&self) -> Vec<(HeaderName, Bytes)> {
        match self {
            RegisterError::IntervalTooBrief { min } => vec![(
                HeaderName::Other("Min-Expires".into()),
                Bytes::from(min.as_secs().to_string()),
            )],
            _ => Vec::new(),
        }
    }
}

/// Counters of the registrar.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistrarStats {
    pub registered: u64,
    pub refreshed: u64,
    pub unregistered: u64,
    pub expired: u64,
    pub refused: u64,
}

/// The bindings of every user. See the module docs.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    bindings: HashMap<String, Vec<Binding>>,
    total: usize,
    changes: VecDeque<BindingChange>,
    stats: RegistrarStats,
}

/// The registrar as the shards share it.
pub type SharedRegistrar = Arc<Mutex<Registrar>>;

/// Locks a shared registrar (a poisoned lock is still usable: the registrar never
/// panics half-way through a change).
pub fn lock(registrar: &SharedRegistrar) -> MutexGuard<'_, Registrar> {
    registrar.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The address of record for `user` in `domain`: `sip:user@domain`, domain lower-cased.
pub fn aor(user: &str, domain: &str) -> String {
    format!("sip:{user}@{}", domain.to_ascii_lowercase())
}

impl Registrar {
    pub fn new(config: RegistrarConfig) -> Registrar {
        Registrar {
            config,
            bindings: HashMap::new(),
            total: 0,
            changes: VecDeque::new(),
            stats: RegistrarStats::default(),
        }
    }

    pub fn shared(config: RegistrarConfig) -> SharedRegistrar {
        Arc::new(Mutex::new(Registrar::new(config)))
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    pub fn stats(&self) -> &RegistrarStats {
        &self.stats
    }

    /// Bindings held (some may have lapsed since the last [`Registrar::expire`]).
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// A REGISTER for `aor` (whose user has authenticated), received from `source` over
    /// `protocol`. Returns the bindings after the change (for the 200's Contact list).
    pub fn handle_register(
        &mut self,
        now: Instant,
        request: &Request,
        aor: &str,
        source: Peer,
        protocol: Protocol,
    ) -> Result<Vec<Binding>, RegisterError> {
        self.expire(now);
        let outcome = self.register(now, request, aor, source, protocol);
        if outcome.is_err() {
            self.stats.refused += 1;
        }
        outcome
    }

    fn register(
        &mut self,
        now: Instant,
        request: &Request,
        aor: &str,
        source: Peer,
        protocol: Protocol,
    ) -> Result<Vec<Binding>, RegisterError> {
        let header_expires = match request.headers.get(&HeaderName::Expires) {
            Some(value) => Some(parse_seconds(value).ok_or(RegisterError::Malformed("expires"))?),
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
            None => return Ok(self.current(aor)),
            Some(Contact::Star) => {
                if header_expires != Some(0) {
                    return Err(RegisterError::Malformed("star_contact_without_expires_0"));
                }
                self.remove_all(aor, &call_id, cseq)?;
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
                    parse_seconds(value).ok_or(RegisterError::Malformed("expires_param"))?
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
            wanted.push((contact, expires));
        }
        let path: Vec<Bytes> = request
            .headers
            .get_all(&HeaderName::Path)
            .cloned()
            .collect();
        let user_agent = request.headers.get(&HeaderName::UserAgent).cloned();
        for (contact, expires) in wanted {
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
                self.remove(aor, &binding, &call_id, cseq)?;
            } else {
                self.upsert(binding)?;
            }
        }
        Ok(self.current(aor))
    }

    fn upsert(&mut self, binding: Binding) -> Result<(), RegisterError> {
        let list = self.bindings.entry(binding.aor.clone()).or_default();
        if let Some(existing) = list.iter_mut().find(|b| b.same_as(&binding)) {
            if existing.call_id == binding.call_id && binding.cseq <= existing.cseq {
                return Err(RegisterError::OutOfOrder);
            }
            *existing = binding.clone();
            self.stats.refreshed += 1;
            self.changes
                .push_back(BindingChange::Bound(Box::new(binding)));
            return Ok(());
        }
        if list.len() >= self.config.max_bindings_per_aor {
            return Err(RegisterError::TooManyForUser);
        }
        if self.total >= self.config.max_bindings {
            return Err(RegisterError::Full);
        }
        list.push(binding.clone());
        self.total += 1;
        self.stats.registered += 1;
        self.changes
            .push_back(BindingChange::Bound(Box::new(binding)));
        Ok(())
    }

    fn remove(
        &mut self,
        aor: &str,
        binding: &Binding,
        call_id: &Bytes,
        cseq: u32,
    ) -> Result<(), RegisterError> {
        let Some(list) = self.bindings.get_mut(aor) else {
            return Ok(());
        };
        if let Some(index) = list.iter().position(|b| b.same_as(binding)) {
            let existing = list.get(index).ok_or(RegisterError::OutOfOrder)?;
            if existing.call_id == *call_id && cseq <= existing.cseq {
                return Err(RegisterError::OutOfOrder);
            }
            let removed = list.swap_remove(index);
            self.total -= 1;
            self.stats.unregistered += 1;
            self.changes.push_back(BindingChange::Removed {
                contact: removed.contact.to_string(),
                aor: removed.aor,
            });
        }
        if list.is_empty() {
            self.bindings.remove(aor);
        }
        Ok(())
    }

    fn remove_all(&mut self, aor: &str, call_id: &Bytes, cseq: u32) -> Result<(), RegisterError> {
        let Some(list) = self.bindings.get(aor) else {
            return Ok(());
        };
        if list.iter().any(|b| b.call_id == *call_id && cseq <= b.cseq) {
            return Err(RegisterError::OutOfOrder);
        }
        for removed in self.bindings.remove(aor).unwrap_or_default() {
            self.total -= 1;
            self.stats.unregistered += 1;
            self.changes.push_back(BindingChange::Removed {
                contact: removed.contact.to_string(),
                aor: removed.aor,
            });
        }
        Ok(())
    }

    fn current(&self, aor: &str) -> Vec<Binding> {
        self.bindings.get(aor).cloned().unwrap_or_default()
    }

    /// The live bindings of `aor`, most recently registered first.
    pub fn lookup(&mut self, now: Instant, aor: &str) -> Vec<Binding> {
        self.expire(now);
        let mut found = self.current(aor);
        found.sort_by_key(|binding| std::cmp::Reverse(binding.expires_at));
        found
    }

    /// Whether `aor` has a live binding on the flow `peer` (same source and connection).
    pub fn is_bound_flow(&mut self, now: Instant, aor: &str, peer: &Peer) -> bool {
        self.lookup(now, aor)
            .iter()
            .any(|binding| binding.source == peer.remote && binding.flow == peer.flow)
    }

    /// Whether `aor` has any live binding.
    pub fn is_registered(&mut self, now: Instant, aor: &str) -> bool {
        !self.lookup(now, aor).is_empty()
    }

    /// Drops lapsed bindings.
    pub fn expire(&mut self, now: Instant) {
        let mut lapsed = Vec::new();
        self.bindings.retain(|_, list| {
            list.retain(|binding| {
                let live = binding.expires_at > now;
                if !live {
                    lapsed.push(BindingChange::Removed {
                        aor: binding.aor.clone(),
                        contact: binding.contact.to_string(),
                    });
                }
                live
            });
            !list.is_empty()
        });
        self.total -= lapsed.len();
        self.stats.expired += lapsed.len() as u64;
        // Lapsed bindings are deleted from the store by its own expiry; no change queued.
    }

    /// Loads a persisted binding (at start). Ignored when lapsed or over a limit.
    pub fn restore(&mut self, now: Instant, binding: Binding) -> bool {
        if binding.expires_at <= now {
            return false;
        }
        let list = self.bindings.entry(binding.aor.clone()).or_default();
        if list.len() >= self.config.max_bindings_per_aor
            || self.total >= self.config.max_bindings
            || list.iter().any(|b| b.same_as(&binding))
        {
            return false;
        }
        list.push(binding);
        self.total += 1;
        true
    }

    /// The next change to persist.
    pub fn poll_change(&mut self) -> Option<BindingChange> {
        self.changes.pop_front()
    }
}

fn parse_seconds(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value.trim_ascii()).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // RFC 3261 §20.19: values above 2^32-1 are read as 2^32-1.
    Some(
        text.parse::<u64>()
            .unwrap_or(u64::from(u32::MAX))
            .min(u64::from(u32::MAX)),
    )
}

/// The contacts of a 200 to a REGISTER: each binding with its remaining seconds.
pub fn contact_values(bindings: &[Binding], now: Instant) -> Vec<Bytes> {
    bindings
        .iter()
        .map(|binding| {
            let mut contact: NameAddr = binding.contact.clone();
            let left = binding.expires_at.saturating_duration_since(now).as_secs();
            contact
                .params
                .set("expires", Some(Bytes::from(left.to_string())));
            contact.to_bytes()
        })
        .collect()
}
