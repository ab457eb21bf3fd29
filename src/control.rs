//! The running signalling runtime as the admin side sees it: questions and orders to the
//! shards (each answered by the shard that owns the calls, so no lock is shared with the
//! call path), the relay, the transports, and routing-table replacement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use media_relay::Relay;
use sbc_core::b2bua::{B2buaStats, CallView};
use sbc_core::endpoint::{Endpoint, EndpointStats};
use sbc_core::net::TransportHandle;
use sbc_core::routing::RoutingTable;
use sbc_core::shard::Sharding;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::counting::{CallOutcomes, SipTraffic};
use crate::routing::Replacement;

/// How long a question to a shard may take before the asker gives up (a shard stuck
/// behind a full queue must not hang an HTTP request).
const SHARD_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Requests queued per shard at most; past it the asker gets `Busy`.
pub const CONTROL_QUEUE: usize = 64;

/// A question or order for one shard.
#[derive(Debug)]
pub enum ShardRequest {
    /// Its counters and sizes, for metrics.
    Snapshot(oneshot::Sender<ShardSnapshot>),
    /// Its calls in progress.
    Calls(oneshot::Sender<Vec<CallView>>),
    /// One of its calls, by id.
    Call(u64, oneshot::Sender<Option<CallView>>),
    /// End one of its calls; answers with the call as it was (`None`: no such call).
    Terminate(u64, oneshot::Sender<Option<CallView>>),
    /// Refuse new calls (or take them again); answers with its calls in progress.
    SetDraining(bool, oneshot::Sender<usize>),
    /// Use these per-trunk identity (STIR/SHAKEN) policies for new calls.
    IdentityPolicy(
        std::collections::HashMap<String, sbc_core::identity::policy::TrunkIdentity>,
        oneshot::Sender<()>,
    ),
}

/// What a shard's run loop counts besides its endpoint.
#[derive(Debug, Clone, Default)]
pub struct ShardCounters {
    pub traffic: SipTraffic,
    pub calls: CallOutcomes,
}

impl ShardRequest {
    /// Answers the request from the shard's endpoint (called by the shard's run loop).
    pub fn answer(self, endpoint: &mut Endpoint, counters: &ShardCounters, now: Instant) {
        match self {
            ShardRequest::Snapshot(reply) => {
                let _ = reply.send(ShardSnapshot::of(endpoint, counters));
            }
            ShardRequest::Calls(reply) => {
                let views = endpoint.b2bua().map(|b2bua| b2bua.call_views());
                let _ = reply.send(views.unwrap_or_default());
            }
            ShardRequest::Call(id, reply) => {
                let _ = reply.send(endpoint.b2bua().and_then(|b2bua| b2bua.call_view(id)));
            }
            ShardRequest::Terminate(id, reply) => {
                let view = endpoint.b2bua().and_then(|b2bua| b2bua.call_view(id));
                let ended = view.filter(|_| endpoint.handle_terminate(now, id));
                let _ = reply.send(ended);
            }
            ShardRequest::SetDraining(draining, reply) => {
                endpoint.set_draining(draining);
                let _ = reply.send(endpoint.b2bua().map_or(0, |b2bua| b2bua.calls()));
            }
            ShardRequest::IdentityPolicy(policies, reply) => {
                endpoint.handle_identity_policy(policies);
                let _ = reply.send(());
            }
        }
    }
}

/// One shard's counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct ShardSnapshot {
    pub endpoint: EndpointStats,
    pub b2bua: B2buaStats,
    pub transactions: usize,
    pub calls: usize,
    pub counters: ShardCounters,
    /// The ingress policy's counters (authentication, identity, overload).
    pub policy: sbc_core::policy::PolicyStats,
}

impl ShardSnapshot {
    fn of(endpoint: &Endpoint, counters: &ShardCounters) -> ShardSnapshot {
        ShardSnapshot {
            endpoint: endpoint.stats().clone(),
            b2bua: endpoint
                .b2bua()
                .map(|b2bua| b2bua.stats().clone())
                .unwrap_or_default(),
            transactions: endpoint.transactions(),
            calls: endpoint.b2bua().map_or(0, |b2bua| b2bua.calls()),
            counters: counters.clone(),
            policy: endpoint.policy_stats().cloned().unwrap_or_default(),
        }
    }
}

/// Why the signalling runtime could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("signalling is stopping")]
    Stopping,
    #[error("signalling shard {0} is too busy to answer")]
    Busy(usize),
}

/// Handles on the running signalling runtime.
#[derive(Debug)]
pub struct Signalling {
    pub sharding: Sharding,
    pub shards: Vec<mpsc::Sender<ShardRequest>>,
    pub relay: Relay,
    pub transport: TransportHandle,
    pub replacements: mpsc::Sender<Replacement>,
    /// The trunks' media security policies every shard's router follows.
    pub media_policies: tokio::sync::watch::Sender<Arc<crate::routing::MediaPolicies>>,
    pub started: Instant,
}

impl Signalling {
    /// Asks shard `shard` a question built by `ask` around the reply channel.
    pub async fn ask<T>(
        &self,
        shard: usize,
        ask: impl FnOnce(oneshot::Sender<T>) -> ShardRequest,
    ) -> Result<T, ControlError> {
        let queue = self.shards.get(shard).ok_or(ControlError::Stopping)?;
        let (reply, answer) = oneshot::channel();
        queue.try_send(ask(reply)).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => ControlError::Busy(shard),
            mpsc::error::TrySendError::Closed(_) => ControlError::Stopping,
        })?;
        match tokio::time::timeout(SHARD_ANSWER_TIMEOUT, answer).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(ControlError::Stopping),
            Err(_) => Err(ControlError::Busy(shard)),
        }
    }

    /// Every shard's counters.
    pub async fn snapshots(&self) -> Result<Vec<ShardSnapshot>, ControlError> {
        let mut all = Vec::with_capacity(self.shards.len());
        for shard in 0..self.shards.len() {
            all.push(self.ask(shard, ShardRequest::Snapshot).await?);
        }
        Ok(all)
    }

    /// Every shard's calls in progress, with the shard that owns each.
    pub async fn calls(&self) -> Result<Vec<(usize, CallView)>, ControlError> {
        let mut all = Vec::new();
        for shard in 0..self.shards.len() {
            let views = self.ask(shard, ShardRequest::Calls).await?;
            all.extend(views.into_iter().map(|view| (shard, view)));
        }
        Ok(all)
    }

    /// Tells every shard to refuse new calls (or take them again); returns the calls
    /// in progress.
    pub async fn set_draining(&self, draining: bool) -> Result<usize, ControlError> {
        let mut calls = 0;
        for shard in 0..self.shards.len() {
            calls += self
                .ask(shard, |reply| ShardRequest::SetDraining(draining, reply))
                .await?;
        }
        Ok(calls)
    }

    /// Gives every shard the identity policies of `trunks` (after trunks changed).
    pub async fn replace_identity_policies(
        &self,
        trunks: &[crate::config::TrunkConfig],
    ) -> Result<(), ControlError> {
        let policies = crate::identity::trunk_policies(trunks);
        for shard in 0..self.shards.len() {
            let policies = policies.clone();
            self.ask(shard, |reply| ShardRequest::IdentityPolicy(policies, reply))
                .await?;
        }
        Ok(())
    }

    /// Gives every shard's router the media security policies of `trunks` (after trunks
    /// changed; done before the routing table is replaced, so that a new trunk never
    /// goes without its policy).
    pub fn replace_media_policies(&self, trunks: &[crate::config::TrunkConfig]) {
        let policies = crate::routing::MediaPolicies::trunk_policies(trunks);
        self.media_policies.send_modify(|current| {
            *current = Arc::new(crate::routing::MediaPolicies {
                default: current.default.clone(),
                trunks: policies,
            });
        });
    }

    /// Puts `table` in effect for new calls (calls in progress keep their route) and
    /// returns once the shards can see it.
    pub async fn replace_routing(&self, table: RoutingTable) -> Result<(), ControlError> {
        let (applied, done) = oneshot::channel();
        self.replacements
            .send(Replacement { table, applied })
            .await
            .map_err(|_| ControlError::Stopping)?;
        done.await.map_err(|_| ControlError::Stopping)
    }
}

/// Shared ownership, as the admin API holds it.
pub type SignallingHandle = Arc<Signalling>;
