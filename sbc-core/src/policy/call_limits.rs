//! Call admission control: how many calls may be in progress at once, in all, per user
//! and per trunk.
//!
//! Calls are sharded by Call-ID, so one user's or one trunk's calls are spread over every
//! shard: the counts live in one [`CallLimits`] the shards share, behind a mutex held for
//! a few map operations when a call starts or ends (never per message). A call that is
//! admitted holds a [`CallSlot`]; dropping the slot (when the call ends, or when it fails
//! before it starts) gives its places back, so no path can leak a count.
//!
//! What a call counts against:
//! * the appliance ([`CallLimitsConfig::max_calls`]);
//! * each user it involves: the caller who authenticated (or called on its registered
//!   flow), and the registered user it is routed to
//!   ([`CallLimitsConfig::max_calls_per_user`]);
//! * each trunk it uses: the trunk it came from and the trunk it goes to (a call from a
//!   trunk back to the same trunk uses two of its channels) ([`CallLimitsConfig::trunks`]).
//!
//! Memory is bounded by the calls in progress: a user or trunk with no call has no entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The limits; `None` (or no entry) is no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallLimitsConfig {
    /// Calls in progress on the whole appliance.
    pub max_calls: Option<u32>,
    /// Calls in progress per user (address of record), as caller or callee.
    pub max_calls_per_user: Option<u32>,
    /// Calls in progress per trunk (by name), in both directions.
    pub trunks: HashMap<String, u32>,
}

/// Which limit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitReached {
    /// The appliance has [`CallLimitsConfig::max_calls`] calls in progress.
    Appliance,
    /// The calling user has as many calls as it may.
    Caller,
    /// The called (registered) user has as many calls as it may.
    Callee,
    /// A trunk the call would use is full.
    Trunk,
}

impl LimitReached {
    /// A stable name for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            LimitReached::Appliance => "appliance_call_limit",
            LimitReached::Caller => "caller_call_limit",
            LimitReached::Callee => "callee_call_limit",
            LimitReached::Trunk => "trunk_call_limit",
        }
    }

    /// The status the call is refused with: `403` for a caller over its own limit (it
    /// will not go away by retrying elsewhere), `486 Busy Here` for a callee at its
    /// limit, `503` (with Retry-After) when the appliance or a trunk is full.
    pub fn status(self) -> u16 {
        match self {
            LimitReached::Caller => 403,
            LimitReached::Callee => 486,
            LimitReached::Appliance | LimitReached::Trunk => 503,
        }
    }
}

/// Who and what a new call involves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallParties {
    /// The calling user (address of record), when one authenticated.
    pub caller: Option<String>,
    /// The called user, when the call goes to a registered user.
    pub callee: Option<String>,
    /// The trunks the call uses (the one it came from, the one it goes to).
    pub trunks: Vec<String>,
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    users: HashMap<String, u32>,
    trunks: HashMap<String, u32>,
    /// The per-trunk limits in force (replaced when trunks change at run time).
    trunk_limits: HashMap<String, u32>,
}

/// The counts every shard shares. See the module docs.
#[derive(Debug, Default)]
pub struct CallLimits {
    max_calls: Option<u32>,
    max_calls_per_user: Option<u32>,
    counts: Mutex<Counts>,
}

/// The places one admitted call holds; given back on drop.
#[derive(Debug)]
pub struct CallSlot {
    limits: Arc<CallLimits>,
    users: Vec<String>,
    trunks: Vec<String>,
}

/// A snapshot of the counts (for metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub total: u32,
    /// Users with at least one call.
    pub users: usize,
    /// Calls per trunk with at least one call, by name.
    pub trunks: Vec<(String, u32)>,
}

impl CallLimits {
    pub fn new(config: CallLimitsConfig) -> Arc<CallLimits> {
        Arc::new(CallLimits {
            max_calls: config.max_calls,
            max_calls_per_user: config.max_calls_per_user,
            counts: Mutex::new(Counts {
                trunk_limits: config.trunks,
                ..Counts::default()
            }),
        })
    }

    /// Replaces the per-trunk limits (trunks changed at run time). New calls meet the new
    /// limits; calls in progress keep their places (a trunk over its new limit takes no
    /// new call until enough of them end).
    pub fn set_trunk_limits(&self, trunks: HashMap<String, u32>) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .trunk_limits = trunks;
    }

    /// The limit of `trunk` in force, if it has one.
    pub fn trunk_limit(&self, trunk: &str) -> Option<u32> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .trunk_limits
            .get(trunk)
            .copied()
    }

    /// Takes a place for a new call involving `parties`, or says which limit is reached
    /// (nothing is taken then).
    pub fn admit(self: &Arc<Self>, parties: &CallParties) -> Result<CallSlot, LimitReached> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if self.max_calls.is_some_and(|max| counts.total >= max) {
            return Err(LimitReached::Appliance);
        }
        let users: Vec<(&String, LimitReached)> = [
            (parties.caller.as_ref(), LimitReached::Caller),
            (parties.callee.as_ref(), LimitReached::Callee),
        ]
        .into_iter()
        .filter_map(|(user, limit)| user.map(|user| (user, limit)))
        .collect();
        if let Some(max) = self.max_calls_per_user {
            for (user, limit) in &users {
                // A user calling itself holds two places.
                let wanted = users.iter().filter(|(other, _)| other == user).count() as u32;
                let held = counts.users.get(*user).copied().unwrap_or(0);
                if held + wanted > max {
                    return Err(*limit);
                }
            }
        }
        for trunk in &parties.trunks {
            if let Some(&max) = counts.trunk_limits.get(trunk) {
                let wanted = parties.trunks.iter().filter(|t| *t == trunk).count() as u32;
                let held = counts.trunks.get(trunk).copied().unwrap_or(0);
                if held + wanted > max {
                    return Err(LimitReached::Trunk);
                }
            }
        }
        counts.total += 1;
        for (user, _) in &users {
            *counts.users.entry((*user).clone()).or_default() += 1;
        }
        for trunk in &parties.trunks {
            *counts.trunks.entry(trunk.clone()).or_default() += 1;
        }
        Ok(CallSlot {
            limits: Arc::clone(self),
            users: users.into_iter().map(|(user, _)| user.clone()).collect(),
            trunks: parties.trunks.clone(),
        })
    }

    /// Calls in progress now, per trunk and in all.
    pub fn counts(&self) -> CallCounts {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut trunks: Vec<(String, u32)> = counts
            .trunks
            .iter()
            .map(|(name, calls)| (name.clone(), *calls))
            .collect();
        trunks.sort();
        CallCounts {
            total: counts.total,
            users: counts.users.len(),
            trunks,
        }
    }

    fn release(&self, users: &[String], trunks: &[String]) {
        let mut guard = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = &mut *guard;
        counts.total = counts.total.saturating_sub(1);
        for (map, keys) in [(&mut counts.users, users), (&mut counts.trunks, trunks)] {
            for key in keys {
                if let Some(held) = map.get_mut(key) {
                    *held = held.saturating_sub(1);
                    if *held == 0 {
                        map.remove(key);
                    }
                }
            }
        }
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.limits.release(&self.users, &self.trunks);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parties(caller: Option<&str>, callee: Option<&str>, trunks: &[&str]) -> CallParties {
        CallParties {
            caller: caller.map(str::to_owned),
            callee: callee.map(str::to_owned),
            trunks: trunks.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn each_limit_refuses_past_its_count_and_slots_give_places_back() {
        let limits = CallLimits::new(CallLimitsConfig {
            max_calls: Some(4),
            max_calls_per_user: Some(2),
            trunks: HashMap::from([("carrier".to_owned(), 2)]),
        });
        let alice = parties(Some("sip:alice@x"), None, &["carrier"]);
        let first = limits.admit(&alice).unwrap();
        let second = limits.admit(&alice).unwrap();
        // Alice is at her limit (checked before the trunk, which is full too).
        assert_eq!(limits.admit(&alice).unwrap_err(), LimitReached::Caller);
        // Bob may call, but not over the full trunk.
        let bob = parties(Some("sip:bob@x"), None, &["carrier"]);
        assert_eq!(limits.admit(&bob).unwrap_err(), LimitReached::Trunk);
        let bob_elsewhere = parties(Some("sip:bob@x"), None, &["other"]);
        let third = limits.admit(&bob_elsewhere).unwrap();
        // Calls to a registered user count against it as callee.
        let to_bob = parties(None, Some("sip:bob@x"), &["other"]);
        let fourth = limits.admit(&to_bob).unwrap();
        assert_eq!(limits.admit(&to_bob).unwrap_err(), LimitReached::Appliance);
        let counts = limits.counts();
        assert_eq!(counts.total, 4);
        assert_eq!(counts.users, 2);
        assert_eq!(
            counts.trunks,
            vec![("carrier".to_owned(), 2), ("other".to_owned(), 2)]
        );
        // Bob (one call as caller, one as callee) is at his limit once there is room.
        drop(first);
        assert_eq!(limits.admit(&to_bob).unwrap_err(), LimitReached::Callee);
        let again = limits.admit(&alice).unwrap();
        drop((second, third, fourth, again));
        assert_eq!(limits.counts(), CallCounts::default());
    }

    #[test]
    fn a_hairpin_uses_two_places_of_its_trunk_and_a_self_call_two_of_its_user() {
        let limits = CallLimits::new(CallLimitsConfig {
            max_calls: None,
            max_calls_per_user: Some(1),
            trunks: HashMap::from([("pbx".to_owned(), 3)]),
        });
        let hairpin = parties(None, None, &["pbx", "pbx"]);
        let held = limits.admit(&hairpin).unwrap();
        assert_eq!(limits.admit(&hairpin).unwrap_err(), LimitReached::Trunk);
        assert_eq!(limits.counts().trunks, vec![("pbx".to_owned(), 2)]);
        drop(held);
        let to_self = parties(Some("sip:a@x"), Some("sip:a@x"), &[]);
        assert_eq!(limits.admit(&to_self).unwrap_err(), LimitReached::Caller);
        // Without limits, anything goes, and is still counted.
        let open = CallLimits::new(CallLimitsConfig::default());
        let slots: Vec<CallSlot> = (0..100).map(|_| open.admit(&hairpin).unwrap()).collect();
        assert_eq!(open.counts().total, 100);
        drop(slots);
        assert_eq!(open.counts().total, 0);
    }

    #[test]
    fn trunk_limits_replaced_at_run_time_apply_to_new_calls_only() {
        let limits = CallLimits::new(CallLimitsConfig::default());
        let call = parties(None, None, &["carrier"]);
        let held: Vec<CallSlot> = (0..3).map(|_| limits.admit(&call).unwrap()).collect();
        limits.set_trunk_limits(HashMap::from([("carrier".to_owned(), 2)]));
        assert_eq!(limits.trunk_limit("carrier"), Some(2));
        // Three calls in progress go on; a fourth is refused until two have ended.
        assert_eq!(limits.admit(&call).unwrap_err(), LimitReached::Trunk);
        let mut held = held;
        held.truncate(1);
        let second = limits.admit(&call).unwrap();
        assert_eq!(limits.admit(&call).unwrap_err(), LimitReached::Trunk);
        // Lifted again.
        limits.set_trunk_limits(HashMap::new());
        assert_eq!(limits.trunk_limit("carrier"), None);
        let third = limits.admit(&call).unwrap();
        drop((held, second, third));
        assert_eq!(limits.counts(), CallCounts::default());
    }
}
