//! The ACLs created through the admin API, as one immutable snapshot the signalling side
//! can read without touching SQLite. The admin side builds a new snapshot after every
//! ACL change, publishes it on a `watch` channel and hands it to
//! [`crate::security::SecurityHandle::replace_access`], which puts it in force in the
//! admission gate (listener ACLs, trunk sources) and the boundary's trunk directory.
//! (Users and bans reach signalling through [`crate::security::SecurityHandle`] too:
//! credential reloads and the gate's ban table.)
//!
//! Each ACL compiles to the same ordered-rule [`Acl`] as the configuration file's
//! `acl = { allow, deny }` tables, so the two kinds are enforced alike: a listener or
//! trunk must pass every ACL it has.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use admin_api::model::{AclSpec, Transport};
use sbc_core::policy::{Acl, AclAction, AclRule, Cidr};
use tokio::sync::watch;

use crate::store::{ObjectKind, PageRequest, Store, StoreResult};

/// One ACL of the store, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAcl {
    pub name: String,
    pub acl: Acl,
    /// The SIP listeners it applies to.
    pub listeners: Vec<(Transport, SocketAddr)>,
    /// The trunks it applies to.
    pub trunks: Vec<String>,
}

impl StoredAcl {
    /// Compiles a stored spec; `None` if the spec does not parse (which the API never
    /// lets in).
    pub fn from_spec(spec: &AclSpec) -> Option<StoredAcl> {
        let rules = spec
            .rules
            .iter()
            .map(|rule| {
                let network: Cidr = rule.source.parse().ok()?;
                Some(AclRule {
                    action: action(rule.action),
                    network,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let listeners = spec
            .listeners
            .iter()
            .map(|listener| admin_api::model::parse_listener_ref(listener))
            .collect::<Option<Vec<_>>>()?;
        Some(StoredAcl {
            name: spec.name.clone(),
            acl: Acl {
                rules,
                default: action(spec.default_action),
            },
            listeners,
            trunks: spec.trunks.clone(),
        })
    }

    /// What the ACL says about a packet from `source`.
    pub fn verdict(&self, source: IpAddr) -> AclAction {
        self.acl.verdict(source)
    }
}

fn action(action: admin_api::model::AclAction) -> AclAction {
    match action {
        admin_api::model::AclAction::Allow => AclAction::Allow,
        admin_api::model::AclAction::Deny => AclAction::Deny,
    }
}

/// The ACLs of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessSnapshot {
    pub acls: Vec<StoredAcl>,
}

impl AccessSnapshot {
    /// The ACLs that apply to a listener.
    pub fn acls_for_listener(
        &self,
        transport: Transport,
        address: SocketAddr,
    ) -> impl Iterator<Item = &StoredAcl> {
        self.acls
            .iter()
            .filter(move |acl| acl.listeners.contains(&(transport, address)))
    }

    /// The ACLs that apply to a trunk.
    pub fn acls_for_trunk<'a>(&'a self, trunk: &'a str) -> impl Iterator<Item = &'a StoredAcl> {
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
                .and_then(StoredAcl::from_spec)
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
            acl.verdict("::ffff:198.51.100.7".parse().unwrap()),
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
