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
//! # Sharing
//!
//! One registrar is shared by every signalling shard (a REGISTER and a call to the same
//! user arrive on different shards, chosen by Call-ID), with no lock over the whole
//! table: bindings are kept per address of record in a concurrent map whose own shards
//! each have a read-write lock, so a REGISTER locks only its user's map shard for the
//! time of the change, and lookups (every call to a registered user, every request on a
//! registered flow) take a read lock that other lookups share. The count of bindings,
//! the counters and the queue of changes are atomic. `benches/registrar.rs` measures
//! this against one mutex and against owner threads reached by messages.
//!
//! # Expiry
//!
//! Time is given by the caller (`now`), so expiry runs on a virtual clock in tests. A
//! lookup never returns a lapsed binding; a REGISTER drops its own user's lapsed
//! bindings; [`Registrar::expire`] sweeps the whole table (the binary calls it twice a
//! second), and when nobody has swept for [`SWEEP_INTERVAL`] the next operation does.
//!
//! # Persistence
//!
//! Changes are queued ([`Registrar::poll_change`]) for the binary to persist, in order
//! for each user, in a queue of [`CHANGE_QUEUE`] entries: when it fills, changes are
//! dropped and [`Registrar::poll_resync`] says so, and the persister rewrites the store
//! from [`Registrar::snapshot`]. [`Registrar::restore`] loads persisted bindings at
//! start.

mod binding;
mod locate;
mod table;

pub use binding::{Binding, BindingChange, RegisteredContact};
pub use locate::LocatingRouter;
pub use table::{CHANGE_QUEUE, Registrar, SWEEP_INTERVAL};

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sip::{HeaderName, NameAddr, StatusCode};

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

/// The registrar as the shards share it.
pub type SharedRegistrar = Arc<Registrar>;

/// The address of record for `user` in `domain`: `sip:user@domain`, domain lower-cased.
pub fn aor(user: &str, domain: &str) -> String {
    format!("sip:{user}@{}", domain.to_ascii_lowercase())
}

pub(crate) fn parse_seconds(value: &[u8]) -> Option<u64> {
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
