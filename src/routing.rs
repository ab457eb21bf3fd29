//! From the configuration's `[[trunk]]` and `[[route]]` tables to the signalling
//! [`RoutingTable`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sbc_core::b2bua::{CallRouter, HeaderFilter, NoRoute, RouteChoice, Target};
use sbc_core::media::security::MediaPolicy;
use sbc_core::net::Protocol;
use sbc_core::net::{
    RefreshSettings, ResolvedTrunk, ResolverSettings, TargetResolver, TrunkResolver,
};
use sbc_core::routing::{
    HeaderPolicy, KeepAlive, Route, RoutingTable, TargetHost, TargetSpec, Trunk, TrunkId,
};
use sbc_core::sip::{HeaderName, Request};
use tokio::sync::watch;

use crate::config::{self, Config, HeaderPolicyConfig, TransportKind};

/// Builds the routing table from the configuration file's trunks and routes. The
/// configuration was validated already, so an error here means the two validations
/// disagree; it is reported as a configuration error anyway.
pub fn routing_table(config: &Config) -> anyhow::Result<RoutingTable> {
    table_of(&config.trunks, &config.routes)
}

/// Builds a routing table from trunks and routes (routes in the order they are tried).
pub fn table_of(
    trunks: &[config::TrunkConfig],
    routes: &[config::RouteConfig],
) -> anyhow::Result<RoutingTable> {
    let table_trunks = trunks
        .iter()
        .enumerate()
        .map(|(index, trunk)| trunk_of(index, trunk))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let id_of = |name: &str| {
        trunks
            .iter()
            .position(|trunk| trunk.name == name)
            .map(trunk_id)
    };
    let mut table_routes = Vec::with_capacity(routes.len());
    for route in routes {
        let Some(to_trunk) = id_of(&route.to_trunk) else {
            // Validation refuses a route to an unknown trunk; skip rather than guess.
            continue;
        };
        table_routes.push(Route {
            name: route.name.clone(),
            match_source_trunk: route.from_trunk.as_deref().and_then(id_of),
            match_user_prefix: route.user_prefix.clone(),
            match_domain: route.domain.clone(),
            to_trunk,
        });
    }
    Ok(RoutingTable::new(table_trunks, table_routes)?)
}

/// Carries what the running table learnt into its replacement: the resolved targets of
/// trunks that kept their name and targets (so calls to a trunk named by DNS do not fail
/// while it is resolved again), and the down marks of addresses that are still targets.
fn carry_over(old: &RoutingTable, new: &mut RoutingTable) {
    let kept: Vec<(TrunkId, TrunkId)> = new
        .trunks()
        .filter_map(|trunk| {
            let old_id = old.trunk_by_name(&trunk.name)?;
            let same_targets = old.trunk(old_id)?.targets == trunk.targets;
            same_targets.then_some((trunk.id, old_id))
        })
        .collect();
    for (new_id, old_id) in kept {
        new.set_resolved(new_id, old.resolved(old_id).to_vec());
    }
    let down: Vec<SocketAddr> = old
        .trunks()
        .flat_map(|trunk| old.resolved(trunk.id))
        .map(|target| target.addr)
        .filter(|&addr| !old.is_target_up(addr))
        .collect();
    for addr in down {
        new.mark_target(addr, false);
    }
}

fn trunk_id(index: usize) -> TrunkId {
    TrunkId(u32::try_from(index).unwrap_or(u32::MAX))
}

fn trunk_of(index: usize, trunk: &config::TrunkConfig) -> anyhow::Result<Trunk> {
    let protocol = protocol_of(trunk.transport);
    let targets = trunk
        .targets
        .iter()
        .map(|target| TargetSpec {
            host: match &target.host {
                config::TargetHost::Ip(ip) => TargetHost::Ip(*ip),
                config::TargetHost::Domain(name) => TargetHost::Name(name.clone()),
            },
            port: target.port,
            transport: Some(protocol),
            priority: target.priority,
            weight: target.weight,
        })
        .collect();
    let headers = match &trunk.headers {
        None => HeaderPolicy::default_for(trunk.trusted),
        Some(HeaderPolicyConfig::Allow(names)) => HeaderPolicy::allow(names)
            .with_context(|| format!("trunk {:?}: headers.allow", trunk.name))?,
        Some(HeaderPolicyConfig::Deny(names)) => HeaderPolicy::deny(names)
            .with_context(|| format!("trunk {:?}: headers.deny", trunk.name))?,
    };
    let keep_alive = (trunk.keepalive_secs > 0).then(|| {
        let interval = Duration::from_secs(trunk.keepalive_secs);
        KeepAlive {
            interval,
            give_up_after: interval + Duration::from_secs(10),
            ..KeepAlive::default()
        }
    });
    Ok(Trunk {
        id: trunk_id(index),
        name: trunk.name.clone(),
        targets,
        trusted: trunk.trusted,
        headers,
        keep_alive,
    })
}

/// A trunk's header policy as the B2BUA's filter, whether the trunk is inside the trust
/// domain, and its media security policy.
#[derive(Debug)]
struct PolicyFilter(HeaderPolicy, bool, MediaPolicy);

impl HeaderFilter for PolicyFilter {
    fn passes(&self, name: &HeaderName) -> bool {
        self.0.passes(name)
    }

    fn trusted(&self) -> bool {
        self.1
    }

    fn media(&self) -> MediaPolicy {
        self.2.clone()
    }
}

/// The media security policies of the configuration: `[media.srtp]` and each trunk's
/// `srtp` (by trunk name; trunks without one use the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaPolicies {
    pub default: MediaPolicy,
    pub trunks: HashMap<String, MediaPolicy>,
}

impl MediaPolicies {
    pub fn from_config(config: &config::Config) -> MediaPolicies {
        MediaPolicies::of(config, &config.trunks)
    }

    /// `[media.srtp]` and the policies of `trunks` (the file's and the admin API's).
    pub fn of(config: &config::Config, trunks: &[config::TrunkConfig]) -> MediaPolicies {
        MediaPolicies {
            default: config.media.srtp.policy(),
            trunks: Self::trunk_policies(trunks),
        }
    }

    /// The policies of the trunks that have one, by name.
    pub fn trunk_policies(trunks: &[config::TrunkConfig]) -> HashMap<String, MediaPolicy> {
        trunks
            .iter()
            .filter_map(|t| t.srtp.as_ref().map(|srtp| (t.name.clone(), srtp.policy())))
            .collect()
    }

    fn policy_of(&self, trunk: &str) -> MediaPolicy {
        self.trunks.get(trunk).unwrap_or(&self.default).clone()
    }
}

/// The filter toward peers that are no trunk (access users): the untrusted defaults, and
/// the default media security policy.
pub fn untrusted_filter(media: MediaPolicy) -> Arc<dyn HeaderFilter> {
    Arc::new(PolicyFilter(
        HeaderPolicy::untrusted_default(),
        false,
        media,
    ))
}

/// One shard's view of the routing table and the trunks' media policies: snapshots,
/// refreshed when they change (DNS results, targets going down or up, trunks changed
/// through the admin API). Checking for a change is two atomic loads, so the call path
/// takes no lock.
#[derive(Debug)]
pub struct TableRouter {
    updates: watch::Receiver<Arc<RoutingTable>>,
    media_updates: watch::Receiver<Arc<MediaPolicies>>,
    table: Arc<RoutingTable>,
    filters: HashMap<TrunkId, Arc<dyn HeaderFilter>>,
    /// For callers that are no trunk of ours.
    untrusted: Arc<dyn HeaderFilter>,
    media: Arc<MediaPolicies>,
}

impl TableRouter {
    pub fn new(
        updates: watch::Receiver<Arc<RoutingTable>>,
        media_updates: watch::Receiver<Arc<MediaPolicies>>,
    ) -> TableRouter {
        let table = Arc::clone(&updates.borrow());
        let media = Arc::clone(&media_updates.borrow());
        let filters = filters_of(&table, &media);
        TableRouter {
            updates,
            media_updates,
            table,
            filters,
            untrusted: untrusted_filter(media.default.clone()),
            media,
        }
    }

    /// Takes the newest table and policies if they changed (two atomic loads when they
    /// did not).
    fn refresh(&mut self) {
        let media_changed = self.media_updates.has_changed().unwrap_or(false);
        let table_changed = self.updates.has_changed().unwrap_or(false);
        if !media_changed && !table_changed {
            return;
        }
        if media_changed {
            self.media = Arc::clone(&self.media_updates.borrow_and_update());
            self.untrusted = untrusted_filter(self.media.default.clone());
        }
        let mut same_trunks = true;
        if table_changed {
            let table = Arc::clone(&self.updates.borrow_and_update());
            // DNS and up/down updates keep the trunks; a replaced configuration may not.
            same_trunks = table.trunks().count() == self.table.trunks().count()
                && table.trunks().zip(self.table.trunks()).all(|(new, old)| {
                    new.id == old.id
                        && new.name == old.name
                        && new.headers == old.headers
                        && new.trusted == old.trusted
                });
            self.table = table;
        }
        if media_changed || !same_trunks {
            self.filters = filters_of(&self.table, &self.media);
        }
    }

    fn filter(&self, trunk: Option<TrunkId>) -> Arc<dyn HeaderFilter> {
        trunk
            .and_then(|id| self.filters.get(&id))
            .map_or_else(|| Arc::clone(&self.untrusted), Arc::clone)
    }
}

impl CallRouter for TableRouter {
    fn route(
        &mut self,
        source: SocketAddr,
        request: &Request,
        random: &mut dyn FnMut() -> u64,
    ) -> Result<RouteChoice, NoRoute> {
        self.refresh();
        let source_trunk = self.table.trunk_of_source(source);
        let trunk = self
            .table
            .route(source_trunk, &request.uri)
            .ok_or(NoRoute::NotFound)?;
        let name = self
            .table
            .trunk(trunk)
            .map_or_else(String::new, |trunk| trunk.name.clone());
        let targets: Vec<Target> = self
            .table
            .targets(trunk, random)
            .into_iter()
            .map(|target| Target {
                addr: target.addr,
                protocol: target.protocol,
                server_name: target.server_name,
                registered: None,
            })
            .collect();
        if targets.is_empty() {
            return Err(NoRoute::Unavailable);
        }
        Ok(RouteChoice {
            trunk: name,
            source_trunk: source_trunk
                .and_then(|id| self.table.trunk(id))
                .map(|trunk| trunk.name.clone()),
            targets,
            toward_callee: self.filter(Some(trunk)),
            toward_caller: self.filter(source_trunk),
        })
    }
}

fn filters_of(
    table: &RoutingTable,
    media: &MediaPolicies,
) -> HashMap<TrunkId, Arc<dyn HeaderFilter>> {
    table
        .trunks()
        .map(|trunk| {
            let filter: Arc<dyn HeaderFilter> = Arc::new(PolicyFilter(
                trunk.headers.clone(),
                trunk.trusted,
                media.policy_of(&trunk.name),
            ));
            (trunk.id, filter)
        })
        .collect()
}

/// A new routing table built from changed trunks or routes, and who waits for it to be
/// in effect.
#[derive(Debug)]
pub struct Replacement {
    pub table: RoutingTable,
    pub applied: tokio::sync::oneshot::Sender<()>,
}

/// A change to a target's reachability, from the trunk keep-alive.
pub type TargetChange = (SocketAddr, bool);

/// Owns the master routing table: applies DNS (RFC 3263) results, target up/down
/// changes and replacements (trunks or routes changed through the admin API) as they
/// come, and publishes a new snapshot for the shards after each. Runs until `shutdown`.
pub fn spawn_routing_state(
    mut table: RoutingTable,
    publish: watch::Sender<Arc<RoutingTable>>,
    mut changes: tokio::sync::mpsc::Receiver<TargetChange>,
    mut replacements: tokio::sync::mpsc::Receiver<Replacement>,
    shutdown: crate::shutdown::Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (resolved_tx, mut resolved) = tokio::sync::mpsc::channel(64);
        let mut resolver = start_resolver(&table, resolved_tx.clone());
        let stop = shutdown.requested();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                Some(update) = resolved.recv() => {
                    tracing::info!(
                        trunk = %update.trunk,
                        targets = update.targets.len(),
                        "trunk targets resolved"
                    );
                    table.set_resolved(update.trunk, update.targets);
                }
                Some((target, up)) = changes.recv() => {
                    if table.is_target_up(target) == up {
                        continue;
                    }
                    tracing::warn!(%target, up, "trunk target reachability changed");
                    table.mark_target(target, up);
                }
                Some(Replacement { table: mut replacement, applied }) = replacements.recv() => {
                    carry_over(&table, &mut replacement);
                    table = replacement;
                    // Resolution follows the new set of trunks (results for trunks
                    // that no longer exist are ignored by the table).
                    if let Some(old) = resolver.take() {
                        old.shutdown().await;
                    }
                    resolver = start_resolver(&table, resolved_tx.clone());
                    publish.send_replace(Arc::new(table.clone()));
                    tracing::info!(
                        trunks = table.trunks().count(),
                        routes = table.routes().count(),
                        "routing table replaced"
                    );
                    let _ = applied.send(());
                    continue;
                }
                else => break,
            }
            publish.send_replace(Arc::new(table.clone()));
        }
        if let Some(resolver) = resolver {
            resolver.shutdown().await;
        }
    })
}

/// Starts RFC 3263 resolution for the trunks that name their targets by host name; `None`
/// when none does, or when the system's DNS configuration cannot be read (those trunks
/// then have no target, and calls to them get 503).
fn start_resolver(
    table: &RoutingTable,
    updates: tokio::sync::mpsc::Sender<ResolvedTrunk>,
) -> Option<TrunkResolver> {
    let named = table.trunks().any(|trunk| {
        trunk
            .targets
            .iter()
            .any(|target| matches!(target.host, TargetHost::Name(_)))
    });
    if !named {
        return None;
    }
    match TargetResolver::new(&ResolverSettings::default()) {
        Ok(resolver) => Some(TrunkResolver::spawn(
            resolver,
            table.trunks(),
            RefreshSettings::default(),
            updates,
        )),
        Err(error) => {
            tracing::error!(%error, "DNS resolution unavailable: trunks named by host name get no targets");
            None
        }
    }
}

pub fn protocol_of(transport: TransportKind) -> Protocol {
    match transport {
        TransportKind::Udp => Protocol::Udp,
        TransportKind::Tcp => Protocol::Tcp,
        TransportKind::Tls => Protocol::Tls,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use sbc_core::sip::Uri;

    use super::*;

    #[test]
    fn the_loopback_example_routes_calls_to_its_peer() {
        let text = include_str!("../deploy/examples/loopback.toml");
        let config =
            config::from_toml(text, Path::new("loopback.toml"), Path::new("/base")).unwrap();
        let table = routing_table(&config).unwrap();
        let uri = Uri::parse(b"sip:bob@127.0.0.1:5060").unwrap();
        let phone = "127.0.0.1:40000".parse().unwrap();
        let trunk = table.route(table.trunk_of_source(phone), &uri).unwrap();
        let targets = table.targets(trunk, &mut || 7);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].addr, "127.0.0.1:5080".parse().unwrap());
        assert_eq!(targets[0].protocol, Protocol::Udp);
    }
}
