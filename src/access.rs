//! The ACLs created through the admin API, as one immutable snapshot the signalling side
//! can read without touching SQLite. The admin side builds a new snapshot after every
//! ACL change and publishes it on a `watch` channel; a reader checks for a new one with
//! one atomic load. (Users and bans reach signalling through
//! [`crate::security::SecurityHandle`]: credential reloads and the gate's ban table.)
//!
//! Enforcement (which listener or trunk consults which ACL) belongs to the signalling
//! side; this module gives it the data and the CIDR matching.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use admin_api::model::{AclAction, AclSpec, Transport};
use tokio::sync::watch;

use crate::store::{ObjectKind, PageRequest, Store, StoreResult};

/// A network: an address with a prefix length (a host is /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Network {
    /// Parses `192.0.2.0/24`, `2001:db8::/32`, or a bare address.
    pub fn parse(text: &str) -> Option<Network> {
        admin_api::model::parse_cidr(text).map(|(address, prefix)| Network { address, prefix })
    }

    /// Whether `ip` is inside (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// One ACL, ready to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub name: String,
    /// In order: the first rule whose network holds the source decides.
    pub rules: Vec<(AclAction, Network)>,
    pub default_action: AclAction,
    /// The SIP listeners it applies to.
    pub listeners: Vec<(Transport, SocketAddr)>,
    /// The trunks it applies to.
    pub trunks: Vec<String>,
}

impl Acl {
    /// Builds the ACL of a stored spec; `None` if the spec does not parse (which the API
    /// never lets in).
    pub fn from_spec(spec: &AclSpec) -> Option<Acl> {
        let rules = spec
            .rules
            .iter()
            .map(|rule| Some((rule.action, Network::parse(&rule.source)?)))
            .collect::<Option<Vec<_>>>()?;
        let listeners = spec
            .listeners
            .iter()
            .map(|listener| admin_api::model::parse_listener_ref(listener))
            .collect::<Option<Vec<_>>>()?;
        Some(Acl {
            name: spec.name.clone(),
            rules,
            default_action: spec.default_action,
            listeners,
            trunks: spec.trunks.clone(),
        })
    }

    /// What the ACL says about a packet from `source`.
    pub fn verdict(&self, source: IpAddr) -> AclAction {
        self.rules
            .iter()
            .find(|(_, network)| network.contains(source))
            .map_or(self.default_action, |(action, _)| *action)
    }
}

/// The ACLs of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessSnapshot {
    pub acls: Vec<Acl>,
}

impl AccessSnapshot {
    /// The ACLs that apply to a listener.
    pub fn acls_for_listener(
        &self,
        transport: Transport,
        address: SocketAddr,
    ) -> impl Iterator<Item = &Acl> {
        self.acls
            .iter()
            .filter(move |acl| acl.listeners.contains(&(transport, address)))
    }

    /// The ACLs that apply to a trunk.
    pub fn acls_for_trunk<'a>(&'a self, trunk: &'a str) -> impl Iterator<Item = &'a Acl> {
        self.acls
            .iter()
            .filter(move |acl| acl.trunks.iter().any(|name| name == trunk))
    }
}

/// Reads the whole snapshot from the store.
pub fn load(store: &Store) -> StoreResult<AccessSnapshot> {
    let mut snapshot = AccessSnapshot::default();
    let mut page = PageRequest::first(1_000);
    loop {
        let objects = store.list_objects(ObjectKind::Acl, &page)?;
        for object in &objects.items {
            match serde_json::from_value::<AclSpec>(object.spec.clone())
                .ok()
                .as_ref()
                .and_then(Acl::from_spec)
            {
                Some(acl) => snapshot.acls.push(acl),
                None => tracing::error!(acl = %object.name, "stored ACL does not parse; ignored"),
            }
        }
        match objects.next_cursor {
            Some(cursor) => page = PageRequest::after(cursor, 1_000),
            None => break,
        }
    }
    Ok(snapshot)
}

/// Publishes snapshots; the signalling side subscribes.
pub type AccessPublisher = watch::Sender<Arc<AccessSnapshot>>;
/// A subscription to snapshots.
pub type AccessUpdates = watch::Receiver<Arc<AccessSnapshot>>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::store::Change;

    #[test]
    fn networks_of_both_families_match_what_they_hold() {
        let v4 = Network::parse("192.0.2.0/24").unwrap();
        assert!(v4.contains("192.0.2.77".parse().unwrap()));
        assert!(v4.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!v4.contains("192.0.3.1".parse().unwrap()));
        assert!(!v4.contains("2001:db8::1".parse().unwrap()));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let everything = Network::parse("0.0.0.0/0").unwrap();
        assert!(everything.contains("203.0.113.9".parse().unwrap()));
        let host = Network::parse("::1").unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("::2".parse().unwrap()));
    }

    #[test]
    fn the_snapshot_holds_the_acls_of_the_store() {
        let mut store = Store::open_in_memory().unwrap();
        let change = Change::new("test", None);
        let spec = json!({
            "name": "carriers",
            "rules": [
                {"action": "deny", "source": "198.51.100.66"},
                {"action": "allow", "source": "198.51.100.0/24"},
                {"action": "allow", "source": "2001:db8::/32"}
            ],
            "default_action": "deny",
            "listeners": ["udp:127.0.0.1:5060"],
            "trunks": ["carrier"]
        });
        store
            .create_object(ObjectKind::Acl, "carriers", spec, &change)
            .unwrap();

        let snapshot = load(&store).unwrap();
        let acl = &snapshot.acls[0];
        assert_eq!(
            acl.verdict("198.51.100.66".parse().unwrap()),
            AclAction::Deny
        );
        assert_eq!(
            acl.verdict("198.51.100.7".parse().unwrap()),
            AclAction::Allow
        );
        assert_eq!(
            acl.verdict("2001:db8::5".parse().unwrap()),
            AclAction::Allow
        );
        assert_eq!(acl.verdict("192.0.2.1".parse().unwrap()), AclAction::Deny);
        let listener = "127.0.0.1:5060".parse().unwrap();
        assert_eq!(
            snapshot.acls_for_listener(Transport::Udp, listener).count(),
            1
        );
        assert_eq!(
            snapshot.acls_for_listener(Transport::Tcp, listener).count(),
            0
        );
        assert_eq!(snapshot.acls_for_trunk("carrier").count(), 1);
    }
}
