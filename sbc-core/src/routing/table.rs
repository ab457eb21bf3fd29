//! The routing table: trunks with their current targets and state, and routes.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use super::failover::failover_order;
use super::matching::{CompiledRoute, is_host_name};
use super::{
    MAX_CONFIGURED_TARGETS, MAX_RESOLVED_TARGETS, ResolvedTarget, Route, RoutingConfigError,
    TargetHost, Trunk, TrunkId,
};
use crate::sip::Uri;

/// Trunks, routes, and each trunk's resolved targets with their up/down state.
///
/// Built once from configuration ([`RoutingTable::new`] checks it); then fed by the
/// resolver ([`RoutingTable::set_resolved`]) and by keep-alives and failures
/// ([`RoutingTable::mark_target`]). Its size is bounded by the configuration: at most
/// [`MAX_RESOLVED_TARGETS`] targets per trunk.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    /// In configuration order.
    trunks: Vec<TrunkEntry>,
    index: HashMap<TrunkId, usize>,
    routes: Vec<CompiledRoute>,
    /// Resolved target address → the first trunk (in configuration order) that has it.
    sources: HashMap<SocketAddr, TrunkId>,
    /// The same by IP address alone, for peers that send from another port.
    source_ips: HashMap<IpAddr, TrunkId>,
    /// Target addresses marked down; only ever addresses of current targets.
    down: HashSet<SocketAddr>,
}

#[derive(Clone, Debug)]
struct TrunkEntry {
    trunk: Trunk,
    resolved: Vec<ResolvedTarget>,
}

impl RoutingTable {
    /// Checks the configuration and builds the table. IP-literal targets are resolved
    /// at once; host-name targets have no address until [`RoutingTable::set_resolved`].
    /// Every target starts up.
    pub fn new(trunks: Vec<Trunk>, routes: Vec<Route>) -> Result<RoutingTable, RoutingConfigError> {
        let mut index = HashMap::with_capacity(trunks.len());
        let mut names = HashSet::with_capacity(trunks.len());
        let mut entries = Vec::with_capacity(trunks.len());
        for trunk in trunks {
            check_trunk(&trunk)?;
            if index.insert(trunk.id, entries.len()).is_some() {
                return Err(RoutingConfigError::DuplicateTrunkId(trunk.id));
            }
            if !names.insert(trunk.name.clone()) {
                return Err(RoutingConfigError::DuplicateTrunkName(trunk.name));
            }
            let resolved = literal_targets(&trunk);
            entries.push(TrunkEntry { trunk, resolved });
        }
        let mut route_names = HashSet::with_capacity(routes.len());
        let mut compiled = Vec::with_capacity(routes.len());
        for route in routes {
            if route.name.is_empty() {
                return Err(RoutingConfigError::EmptyRouteName);
            }
            if !route_names.insert(route.name.clone()) {
                return Err(RoutingConfigError::DuplicateRouteName(route.name));
            }
            for trunk in std::iter::once(route.to_trunk).chain(route.match_source_trunk) {
                if !index.contains_key(&trunk) {
                    return Err(RoutingConfigError::UnknownTrunk {
                        route: route.name,
                        trunk,
                    });
                }
            }
            compiled.push(CompiledRoute::new(route)?);
        }
        let mut table = RoutingTable {
            trunks: entries,
            index,
            routes: compiled,
            sources: HashMap::new(),
            source_ips: HashMap::new(),
            down: HashSet::new(),
        };
        table.reindex();
        Ok(table)
    }

    /// The trunk a request came from, by the address it came from: the trunk with a target
    /// at exactly that address, else the trunk with a target at that IP address (peers
    /// often send from a port other than the one they listen on). When several trunks
    /// share an address, the first in configuration order. IPv4-mapped IPv6 addresses
    /// count as IPv4.
    pub fn trunk_of_source(&self, source: SocketAddr) -> Option<TrunkId> {
        let source = canonical(source);
        self.sources
            .get(&source)
            .or_else(|| self.source_ips.get(&source.ip()))
            .copied()
    }

    /// The trunk of the first route whose criteria all match.
    pub fn route(&self, source_trunk: Option<TrunkId>, request_uri: &Uri) -> Option<TrunkId> {
        self.routes
            .iter()
            .find(|r| r.matches(source_trunk, request_uri))
            .map(|r| r.route.to_trunk)
    }

    /// The trunk's targets in failover order (see [`failover_order`]): every target that is
    /// up, then every target marked down (a last resort when all are down), each part by
    /// ascending priority and weighted random order within a priority. Empty for an
    /// unknown trunk or one whose names have not resolved yet.
    pub fn targets(&self, trunk: TrunkId, random: &mut dyn FnMut() -> u64) -> Vec<ResolvedTarget> {
        let Some(entry) = self.entry(trunk) else {
            return Vec::new();
        };
        let (up, down): (Vec<_>, Vec<_>) = entry
            .resolved
            .iter()
            .cloned()
            .partition(|t| self.is_target_up(t.addr));
        let mut ordered = failover_order(up, random);
        ordered.extend(failover_order(down, random));
        ordered
    }

    pub fn trunk(&self, id: TrunkId) -> Option<&Trunk> {
        self.entry(id).map(|e| &e.trunk)
    }

    /// The trunk of this name.
    pub fn trunk_by_name(&self, name: &str) -> Option<TrunkId> {
        self.trunks
            .iter()
            .find(|e| e.trunk.name == name)
            .map(|e| e.trunk.id)
    }

    /// Every trunk, in configuration order.
    pub fn trunks(&self) -> impl Iterator<Item = &Trunk> {
        self.trunks.iter().map(|e| &e.trunk)
    }

    /// Every route, in order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|r| &r.route)
    }

    /// The trunk's current resolved targets, in no particular order.
    pub fn resolved(&self, trunk: TrunkId) -> &[ResolvedTarget] {
        self.entry(trunk).map_or(&[], |e| &e.resolved)
    }

    /// Whether the target at this address is up (unknown addresses are not marked down).
    pub fn is_target_up(&self, target: SocketAddr) -> bool {
        !self.down.contains(&canonical(target))
    }

    /// Whether the trunk has at least one resolved target that is up.
    pub fn is_trunk_up(&self, trunk: TrunkId) -> bool {
        self.resolved(trunk)
            .iter()
            .any(|t| self.is_target_up(t.addr))
    }

    /// Replaces the trunk's resolved targets by its IP-literal targets plus `targets` (the
    /// resolver's result for its host names; IP literals given again are not doubled).
    /// Duplicates (same address and transport) are dropped; past
    /// [`MAX_RESOLVED_TARGETS`], those of the highest priority numbers are. Up/down state
    /// is kept for addresses still present. Unknown trunks are ignored.
    pub fn set_resolved(&mut self, trunk: TrunkId, targets: Vec<ResolvedTarget>) {
        let Some(&position) = self.index.get(&trunk) else {
            return;
        };
        let Some(entry) = self.trunks.get_mut(position) else {
            return;
        };
        let mut resolved = literal_targets(&entry.trunk);
        for target in targets {
            let duplicate = resolved
                .iter()
                .any(|t| t.addr == target.addr && t.protocol == target.protocol);
            if !duplicate {
                resolved.push(target);
            }
        }
        resolved.sort_by_key(|t| t.priority);
        resolved.truncate(MAX_RESOLVED_TARGETS);
        entry.resolved = resolved;
        self.reindex();
    }

    /// Marks every target at this address (in any trunk) up or down. Addresses that are
    /// not current targets are ignored.
    pub fn mark_target(&mut self, target: SocketAddr, up: bool) {
        let target = canonical(target);
        if up {
            self.down.remove(&target);
        } else if self.sources.contains_key(&target) {
            self.down.insert(target);
        }
    }

    fn entry(&self, id: TrunkId) -> Option<&TrunkEntry> {
        self.index.get(&id).and_then(|&i| self.trunks.get(i))
    }

    /// Rebuilds the source indexes from the resolved targets and forgets down marks of
    /// addresses that are no longer targets.
    fn reindex(&mut self) {
        self.sources.clear();
        self.source_ips.clear();
        for entry in &self.trunks {
            for target in &entry.resolved {
                let addr = canonical(target.addr);
                self.sources.entry(addr).or_insert(entry.trunk.id);
                self.source_ips.entry(addr.ip()).or_insert(entry.trunk.id);
            }
        }
        let sources = &self.sources;
        self.down.retain(|addr| sources.contains_key(addr));
    }
}

/// The address with an IPv4-mapped IPv6 address turned into IPv4, as the indexes hold it.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

fn literal_targets(trunk: &Trunk) -> Vec<ResolvedTarget> {
    trunk.targets.iter().filter_map(|t| t.literal()).collect()
}

fn check_trunk(trunk: &Trunk) -> Result<(), RoutingConfigError> {
    let name = || trunk.name.clone();
    if trunk.name.is_empty() {
        return Err(RoutingConfigError::EmptyTrunkName(trunk.id));
    }
    if trunk.targets.is_empty() {
        return Err(RoutingConfigError::NoTargets(name()));
    }
    if trunk.targets.len() > MAX_CONFIGURED_TARGETS {
        return Err(RoutingConfigError::TooManyTargets {
            trunk: name(),
            count: trunk.targets.len(),
            max: MAX_CONFIGURED_TARGETS,
        });
    }
    for target in &trunk.targets {
        if let TargetHost::Name(host) = &target.host
            && !is_host_name(host)
        {
            return Err(RoutingConfigError::InvalidTargetHost {
                trunk: name(),
                host: host.clone(),
            });
        }
        if target.port == Some(0) {
            return Err(RoutingConfigError::InvalidTargetPort(name()));
        }
    }
    if let Some(keep_alive) = &trunk.keep_alive {
        let reason = if keep_alive.interval.is_zero() {
            Some("interval must not be zero")
        } else if keep_alive.give_up_after.is_zero() {
            Some("give_up_after must not be zero")
        } else if keep_alive.down_after == 0 {
            Some("down_after must be at least 1")
        } else if keep_alive.up_after == 0 {
            Some("up_after must be at least 1")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(RoutingConfigError::InvalidKeepAlive {
                trunk: name(),
                reason,
            });
        }
    }
    Ok(())
}
