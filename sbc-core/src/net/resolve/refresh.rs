//! [`TrunkResolver`]: one task per trunk re-resolving its targets as their records expire.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::TargetResolver;
use crate::routing::{ResolvedTarget, TargetHost, TargetSpec, Trunk, TrunkId};

/// How often [`TrunkResolver`] re-resolves a trunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshSettings {
    /// The soonest a trunk is re-resolved after a success, whatever the TTLs say.
    pub min_refresh: Duration,
    /// The latest a trunk is re-resolved after a success, whatever the TTLs say.
    pub max_refresh: Duration,
    /// When to try again after a failed resolution.
    pub retry_after_failure: Duration,
}

impl Default for RefreshSettings {
    /// 30 s to 1 h, retry after 30 s.
    fn default() -> RefreshSettings {
        RefreshSettings {
            min_refresh: Duration::from_secs(30),
            max_refresh: Duration::from_secs(3600),
            retry_after_failure: Duration::from_secs(30),
        }
    }
}

/// A trunk's resolved targets, for `RoutingTable::set_resolved`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedTrunk {
    pub trunk: TrunkId,
    pub targets: Vec<ResolvedTarget>,
}

/// Keeps the targets of every trunk with host-name targets resolved: one task per such
/// trunk resolves all its targets, sends the result on the channel when it differs from
/// the last one sent, and sleeps until the earliest record expires (bounded by
/// [`RefreshSettings`]). A target whose resolution fails keeps its last good addresses;
/// nothing is sent until a resolution changes something. Trunks with IP targets only get
/// no task (the routing table resolves those itself).
///
/// The tasks stop when the receiver is dropped or this value is dropped.
#[derive(Debug)]
pub struct TrunkResolver {
    tasks: JoinSet<()>,
}

impl TrunkResolver {
    /// Starts resolving. Must be called within a tokio runtime.
    pub fn spawn<'a>(
        resolver: TargetResolver,
        trunks: impl IntoIterator<Item = &'a Trunk>,
        refresh: RefreshSettings,
        updates: mpsc::Sender<ResolvedTrunk>,
    ) -> TrunkResolver {
        let mut tasks = JoinSet::new();
        for trunk in trunks {
            let has_names = trunk
                .targets
                .iter()
                .any(|t| matches!(t.host, TargetHost::Name(_)));
            if has_names {
                let watch = TrunkWatch {
                    resolver: resolver.clone(),
                    trunk: trunk.id,
                    name: trunk.name.clone(),
                    specs: trunk.targets.clone(),
                    refresh: refresh.clone(),
                    updates: updates.clone(),
                };
                tasks.spawn(watch.run());
            }
        }
        TrunkResolver { tasks }
    }

    /// How many trunks are being watched.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Stops every task and waits for them to end.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

/// The state of one trunk's resolution task.
struct TrunkWatch {
    resolver: TargetResolver,
    trunk: TrunkId,
    name: String,
    specs: Vec<TargetSpec>,
    refresh: RefreshSettings,
    updates: mpsc::Sender<ResolvedTrunk>,
}

impl TrunkWatch {
    async fn run(self) {
        // The last good addresses of each spec, in configuration order.
        let mut last_good: Vec<Option<Vec<ResolvedTarget>>> = vec![None; self.specs.len()];
        let mut last_sent: Option<Vec<ResolvedTarget>> = None;
        loop {
            let wait = self.resolve_all(&mut last_good).await;
            let targets: Vec<ResolvedTarget> =
                last_good.iter().flatten().flatten().cloned().collect();
            if last_sent.as_ref() != Some(&targets) && !targets.is_empty() {
                let update = ResolvedTrunk {
                    trunk: self.trunk,
                    targets: targets.clone(),
                };
                if self.updates.send(update).await.is_err() {
                    return;
                }
                last_sent = Some(targets);
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.updates.closed() => return,
            }
        }
    }

    /// Resolves every spec, keeping the last good result of those that fail; returns how
    /// long to wait before the next round.
    async fn resolve_all(&self, last_good: &mut [Option<Vec<ResolvedTarget>>]) -> Duration {
        let now = Instant::now();
        let mut wait = self.refresh.max_refresh;
        for (spec, last) in self.specs.iter().zip(last_good.iter_mut()) {
            match self.resolver.resolve(spec).await {
                Ok(resolution) => {
                    if let Some(expires) = resolution.expires {
                        let ttl = expires.saturating_duration_since(now);
                        wait = wait.min(ttl.max(self.refresh.min_refresh));
                    }
                    *last = Some(resolution.targets);
                }
                Err(error) => {
                    tracing::warn!(
                        trunk = %self.name,
                        target = %spec.host,
                        error = error.name(),
                        "resolving a trunk target failed: {error}; keeping its last addresses"
                    );
                    wait = wait.min(self.refresh.retry_after_failure);
                }
            }
        }
        wait
    }
}
