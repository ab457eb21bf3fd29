//! Wiring of the edge security: the admission gate, each shard's boundary, the
//! credential snapshot, and persistence of registrations and bans.
//!
//! * Credentials: the shards never touch SQLite. [`CredentialSnapshot`] holds every HA1
//!   in memory; it is loaded from the store at start and [`CredentialSnapshot::reload`]
//!   replaces it (call it after users change, e.g. from the admin API; lookups in
//!   progress keep the old table, new ones see the new one).
//! * Bans: the live table is the gate's (in the dispatch task). Bans it adds are written
//!   to the store's `bans` table; bans found there at start are loaded; an operator lifts
//!   one at run time with [`SecurityHandle::lift_ban`] (and deletes it from the store).
//! * Registrations: the shared registrar's changes are written to the store's
//!   `registrations` table twice a second, in one transaction per batch (the whole table
//!   is rewritten from the registrar when its change queue overflowed); live ones are
//!   restored at start.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sbc_core::auth::{Algorithm, CredentialTable, Credentials, DigestConfig};
use sbc_core::net::Protocol;
use sbc_core::policy::{
    BoundaryConfig, Cidr, Gate, GateConfig, GateEvent, GateStats, ListenerRule, PolicyEvent,
    TrunkDirectory, TrunkPolicy, TrunkSources,
};
use sbc_core::registrar::{Binding, BindingChange, CHANGE_QUEUE, Registrar, SharedRegistrar};
use sbc_core::sip::NameAddr;
use sbc_core::transaction::Peer;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::access::AccessSnapshot;
use crate::appliance::SharedStore;
use crate::config::{Config, TargetHost, TransportKind};
use crate::store::{DigestAlgorithm, NewBan, Registration, RegistrationWrite, Store};

/// Every HA1 of the store, in memory, replaceable at run time.
#[derive(Debug, Default, Clone)]
pub struct CredentialSnapshot {
    table: Arc<RwLock<Arc<CredentialTable>>>,
}

impl CredentialSnapshot {
    /// Loads every credential from `store`.
    pub fn load(store: &Store) -> anyhow::Result<CredentialSnapshot> {
        let snapshot = CredentialSnapshot::default();
        snapshot.reload(store)?;
        Ok(snapshot)
    }

    /// Replaces the table with what `store` holds now; returns the number of users.
    pub fn reload(&self, store: &Store) -> anyhow::Result<usize> {
        let mut table = CredentialTable::new();
        for credential in store.all_credentials().context("reading credentials")? {
            let algorithm = match credential.algorithm {
                DigestAlgorithm::Md5 => Algorithm::Md5,
                DigestAlgorithm::Sha256 => Algorithm::Sha256,
                DigestAlgorithm::Sha512_256 => Algorithm::Sha512_256,
            };
            table.insert(
                &credential.realm,
                &credential.username,
                algorithm,
                credential.ha1,
            );
        }
        let users = table.users();
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
        Ok(users)
    }

    /// Users in the snapshot.
    pub fn users(&self) -> usize {
        self.current().users()
    }

    fn current(&self) -> Arc<CredentialTable> {
        Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Credentials for CredentialSnapshot {
    fn ha1(&self, realm: &str, username: &str, algorithm: Algorithm) -> Option<String> {
        self.current().ha1(realm, username, algorithm)
    }
}

/// The trunks in effect as the boundary sees them: by source network (see
/// [`TrunkSources`]: their targets, and what their ACLs, from the file and the store,
/// allow and deny).
#[derive(Debug, Clone, Default)]
pub struct ConfigTrunks {
    trunks: Vec<(TrunkSources, TrunkPolicy)>,
}

impl ConfigTrunks {
    pub fn new(config: &Config) -> ConfigTrunks {
        ConfigTrunks::of(&config.trunks, &AccessSnapshot::default())
    }

    /// The directory of `trunks` (the configuration file's and those created through the
    /// admin API) with the ACLs of `access` that apply to them.
    pub fn of(trunks: &[crate::config::TrunkConfig], access: &AccessSnapshot) -> ConfigTrunks {
        let trunks = trunks
            .iter()
            .map(|trunk| {
                let targets: Vec<Cidr> = trunk
                    .targets
                    .iter()
                    .filter_map(|target| match target.host {
                        TargetHost::Ip(ip) => Some(Cidr::host(ip)),
                        TargetHost::Domain(_) => None,
                    })
                    .collect();
                let mut acls = Vec::new();
                if !trunk.acl.is_empty() {
                    acls.push(trunk.acl.acl());
                }
                acls.extend(
                    access
                        .acls_for_trunk(&trunk.name)
                        .map(|stored| stored.acl.clone()),
                );
                let policy = TrunkPolicy {
                    name: trunk.name.clone(),
                    trusted: trunk.trusted,
                    require_tls: trunk.require_tls,
                    require_client_cert: trunk.require_client_cert,
                    store_and_forward: trunk.store_and_forward,
                };
                (TrunkSources::new(targets, acls), policy)
            })
            .collect();
        ConfigTrunks { trunks }
    }

    /// Where each trunk's traffic comes from (for the gate).
    pub fn sources(&self) -> Vec<TrunkSources> {
        self.trunks
            .iter()
            .map(|(sources, _)| sources.clone())
            .collect()
    }
}

impl TrunkDirectory for ConfigTrunks {
    fn trunk_of(&self, source: SocketAddr) -> Option<TrunkPolicy> {
        let ip = source.ip();
        self.trunks
            .iter()
            .find(|(sources, _)| sources.holds(ip))
            .map(|(_, policy)| policy.clone())
    }
}

/// The trunk directory in force, rebuilt when trunks or ACLs change through the admin
/// API (lookups in progress keep the directory they started with).
#[derive(Debug)]
pub struct LiveTrunks {
    current: RwLock<Arc<ConfigTrunks>>,
    /// What the directory is built from: the trunks in effect and the store's ACLs.
    inputs: Mutex<(Vec<crate::config::TrunkConfig>, Arc<AccessSnapshot>)>,
}

impl LiveTrunks {
    pub fn new(trunks: Vec<crate::config::TrunkConfig>, access: Arc<AccessSnapshot>) -> LiveTrunks {
        let directory = ConfigTrunks::of(&trunks, &access);
        LiveTrunks {
            current: RwLock::new(Arc::new(directory)),
            inputs: Mutex::new((trunks, access)),
        }
    }

    /// Puts `trunks` in force for new requests; returns the trunks' sources for the gate.
    pub fn replace_trunks(&self, trunks: &[crate::config::TrunkConfig]) -> Vec<TrunkSources> {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        inputs.0 = trunks.to_vec();
        self.rebuild(&inputs)
    }

    /// Puts the store's ACLs `access` in force for new requests; returns the trunks'
    /// sources for the gate.
    pub fn replace_access(&self, access: Arc<AccessSnapshot>) -> Vec<TrunkSources> {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        inputs.1 = access;
        self.rebuild(&inputs)
    }

    fn rebuild(
        &self,
        (trunks, access): &(Vec<crate::config::TrunkConfig>, Arc<AccessSnapshot>),
    ) -> Vec<TrunkSources> {
        let directory = ConfigTrunks::of(trunks, access);
        let sources = directory.sources();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(directory);
        sources
    }

    /// Where each trunk's traffic comes from (for the gate).
    pub fn sources(&self) -> Vec<TrunkSources> {
        self.current().sources()
    }

    fn current(&self) -> Arc<ConfigTrunks> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl TrunkDirectory for LiveTrunks {
    fn trunk_of(&self, source: SocketAddr) -> Option<TrunkPolicy> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .trunk_of(source)
    }
}

/// The gate's rule for each SIP listener: its `trunks_only` flag and its ACLs (the
/// file's `acl`, then every ACL object of the store that names it).
pub fn gate_listeners(config: &Config, access: &AccessSnapshot) -> Vec<ListenerRule> {
    config
        .sip
        .listen
        .iter()
        .map(|listener| {
            let transport = match listener.transport {
                TransportKind::Udp => admin_api::model::Transport::Udp,
                TransportKind::Tcp => admin_api::model::Transport::Tcp,
                TransportKind::Tls => admin_api::model::Transport::Tls,
            };
            let mut acls = Vec::new();
            if !listener.acl.is_empty() {
                acls.push(listener.acl.acl());
            }
            acls.extend(
                access
                    .acls_for_listener(transport, listener.address)
                    .map(|stored| stored.acl.clone()),
            );
            ListenerRule {
                local: listener.address,
                protocol: Some(crate::routing::protocol_of(listener.transport)),
                acls,
                trunks_only: listener.trunks_only,
            }
        })
        .collect()
}

/// The gate's configuration from `[security]` and the listeners' ACLs (the file's and
/// those of `access`).
pub fn gate_config(config: &Config, access: &AccessSnapshot) -> GateConfig {
    let security = &config.security;
    GateConfig {
        listeners: gate_listeners(config, access),
        rates: security
            .rate_limits
            .enabled
            .then(|| sbc_core::policy::RateLimits {
                register: security.rate_limits.register.into(),
                invite: security.rate_limits.invite.into(),
                other: security.rate_limits.other.into(),
            }),
        max_sources: security.max_tracked_sources,
        scanner_user_agents: security
            .scanner_user_agents
            .iter()
            .map(|agent| agent.to_ascii_lowercase())
            .collect(),
        ban_duration: Duration::from_secs(security.ban_secs),
        max_auth_failures: security.max_auth_failures,
        failure_window: Duration::from_secs(security.failure_window_secs),
        max_bans: security.max_bans,
    }
}

pub fn boundary_config(config: &Config) -> BoundaryConfig {
    BoundaryConfig {
        authenticate: config.auth.enabled,
        realm: config.auth.realm.clone(),
        domains: config.auth.domains.clone(),
        overload_retry_after: Duration::from_secs(config.security.overload_retry_after_secs),
        message_date_window: (config.security.message_date_window_secs > 0)
            .then(|| Duration::from_secs(config.security.message_date_window_secs)),
    }
}

pub fn digest_config(config: &Config) -> DigestConfig {
    DigestConfig {
        algorithms: config.auth.algorithms(),
        nonce_lifetime: Duration::from_secs(config.auth.nonce_lifetime_secs),
        ..DigestConfig::default()
    }
}

/// The call limits from `[sip.limits] max_calls`, `[security] max_calls_per_user` and
/// each trunk's `max_calls`.
pub fn call_limits_config(config: &Config) -> sbc_core::policy::CallLimitsConfig {
    sbc_core::policy::CallLimitsConfig {
        max_calls: u32::try_from(config.sip.limits.max_calls).ok(),
        max_calls_per_user: (config.security.max_calls_per_user > 0)
            .then_some(config.security.max_calls_per_user),
        trunks: trunk_call_limits(&config.trunks),
    }
}

/// Each trunk's `max_calls` (trunks without a limit are left out).
pub fn trunk_call_limits(
    trunks: &[crate::config::TrunkConfig],
) -> std::collections::HashMap<String, u32> {
    trunks
        .iter()
        .filter(|trunk| trunk.max_calls > 0)
        .map(|trunk| (trunk.name.clone(), trunk.max_calls))
        .collect()
}

/// Unix milliseconds now.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Loads the live registrations of the store into `registrar`.
pub fn restore_registrations(store: &Store, registrar: &SharedRegistrar) -> anyhow::Result<usize> {
    let now_ms = unix_ms();
    let now = Instant::now();
    let mut restored = 0;
    let limit = registrar.config().max_bindings;
    for registration in store
        .live_registrations(now_ms, limit)
        .context("reading registrations")?
    {
        if let Some(binding) = binding_of(&registration, now, now_ms)
            && registrar.restore(now, binding)
        {
            restored += 1;
        }
    }
    Ok(restored)
}

fn binding_of(registration: &Registration, now: Instant, now_ms: i64) -> Option<Binding> {
    let contact = NameAddr::parse(registration.contact.as_bytes()).ok()?;
    let source: SocketAddr = registration.source.parse().ok()?;
    let protocol = match registration.transport.as_str() {
        "udp" => Protocol::Udp,
        "tcp" => Protocol::Tcp,
        "tls" => Protocol::Tls,
        _ => return None,
    };
    // A UDP flow (the listener socket) survives a restart; a connection does not.
    let flow = match protocol {
        Protocol::Udp => registration
            .flow
            .as_deref()
            .and_then(|flow| flow.parse().ok()),
        _ => None,
    };
    let left = u64::try_from(registration.expires_at.saturating_sub(now_ms)).ok()?;
    let peer = Peer {
        remote: source,
        reliability: if protocol.is_stream() {
            sbc_core::transaction::Reliability::Reliable
        } else {
            sbc_core::transaction::Reliability::Unreliable
        },
        flow,
    };
    let mut binding = Binding::new(
        &registration.aor,
        &contact,
        peer,
        protocol,
        registration
            .path
            .iter()
            .map(|p| bytes::Bytes::from(p.clone()))
            .collect(),
        registration.user_agent.clone().map(bytes::Bytes::from),
        bytes::Bytes::from(registration.call_id.clone()),
        registration.cseq,
        now + Duration::from_millis(left),
    );
    binding.instance = registration.instance_id.clone();
    binding.reg_id = registration.reg_id;
    Some(binding)
}

fn registration_of(binding: &Binding, now: Instant, now_ms: i64) -> Registration {
    let left = binding.expires_at.saturating_duration_since(now);
    Registration {
        aor: binding.aor.clone(),
        contact: binding.contact.to_string(),
        source: binding.source.to_string(),
        transport: binding.protocol.name().to_owned(),
        flow: binding.flow.map(|flow| flow.to_string()),
        path: binding
            .path
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect(),
        user_agent: binding
            .user_agent
            .as_ref()
            .map(|agent| String::from_utf8_lossy(agent).into_owned()),
        call_id: String::from_utf8_lossy(&binding.call_id).into_owned(),
        cseq: binding.cseq,
        instance_id: binding.instance.clone(),
        reg_id: binding.reg_id,
        expires_at: now_ms.saturating_add(i64::try_from(left.as_millis()).unwrap_or(i64::MAX)),
        updated_at: now_ms,
    }
}

/// What the persister writes in one turn.
#[derive(Debug)]
enum RegistrarBatch {
    /// The changes queued since the last turn, in order.
    Changes(Vec<RegistrationWrite>),
    /// Every live binding: the queue overflowed and changes were lost.
    Everything(Vec<Registration>),
}

/// Sweeps `registrar` and takes what is to be written: its queued changes (at most a
/// queue's worth), or every live binding when changes were dropped.
fn registrar_batch(registrar: &Registrar, now: Instant, now_ms: i64) -> RegistrarBatch {
    registrar.expire(now);
    let changes: Vec<BindingChange> = std::iter::from_fn(|| registrar.poll_change())
        .take(CHANGE_QUEUE)
        .collect();
    if registrar.poll_resync() {
        // The snapshot is taken after the flag was read: it holds every change made
        // before, the dropped ones included; the ones drained above are older still.
        let all = registrar.snapshot(now);
        warn!(
            bindings = all.len(),
            "registration changes overflowed their queue: rewriting every registration"
        );
        return RegistrarBatch::Everything(
            all.iter()
                .map(|binding| registration_of(binding, now, now_ms))
                .collect(),
        );
    }
    RegistrarBatch::Changes(
        changes
            .into_iter()
            .map(|change| match change {
                BindingChange::Bound(binding) => {
                    RegistrationWrite::Upsert(registration_of(&binding, now, now_ms))
                }
                BindingChange::Removed { aor, contact } => {
                    RegistrationWrite::Remove { aor, contact }
                }
            })
            .collect(),
    )
}

/// Writes the registrar's changes to the store twice a second, deletes lapsed bindings
/// from both, and reloads `credentials` every 10 s (so users added with `sbc user add`
/// or through the store work without a restart). Ends at shutdown.
pub fn spawn_registrar_persistence(
    registrar: SharedRegistrar,
    store: SharedStore,
    credentials: CredentialSnapshot,
    shutdown: crate::shutdown::Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut ticks: u64 = 0;
        let stop = shutdown.requested();
        tokio::pin!(stop);
        loop {
            let stopping = tokio::select! {
                () = &mut stop => true,
                _ = tick.tick() => false,
            };
            let now = Instant::now();
            let now_ms = unix_ms();
            let batch = registrar_batch(&registrar, now, now_ms);
            ticks += 1;
            let reload = ticks.is_multiple_of(20).then(|| credentials.clone());
            let store = Arc::clone(&store);
            let written = tokio::task::spawn_blocking(move || {
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(credentials) = reload
                    && let Err(error) = credentials.reload(&store)
                {
                    warn!(%error, "cannot reload credentials");
                }
                let result = match &batch {
                    RegistrarBatch::Changes(writes) if writes.is_empty() => Ok(Vec::new()),
                    RegistrarBatch::Changes(writes) => store.apply_registration_writes(writes),
                    RegistrarBatch::Everything(all) => store.replace_registrations(all),
                };
                match result {
                    Ok(skipped) => {
                        for error in skipped {
                            warn!(%error, "cannot persist a registration change");
                        }
                    }
                    Err(error) => warn!(%error, "cannot persist registration changes"),
                }
                let _ = store.expire_registrations(now_ms);
            })
            .await;
            if written.is_err() || stopping {
                break;
            }
        }
    })
}

/// Orders for the gate, from the rest of the appliance.
#[derive(Debug)]
pub enum GateRequest {
    Stats(oneshot::Sender<GateStats>),
    Lift(Cidr, oneshot::Sender<bool>),
    Ban(Cidr, String, Option<Duration>, oneshot::Sender<bool>),
    /// Trunks or ACLs changed through the API: where trunk traffic comes from, and (when
    /// ACLs changed) the listeners' rules. Answered once in force.
    Access {
        trunks: Vec<TrunkSources>,
        listeners: Option<Vec<ListenerRule>>,
        applied: oneshot::Sender<()>,
    },
}

/// What the gate is told: shard reports and orders.
#[derive(Debug)]
pub enum GateInput {
    Policy(PolicyEvent),
    Request(GateRequest),
}

/// The handle through which the binary (and later the admin API) reaches the gate.
#[derive(Debug, Clone)]
pub struct SecurityHandle {
    pub gate: mpsc::Sender<GateInput>,
    pub credentials: CredentialSnapshot,
    pub registrar: SharedRegistrar,
    pub store: SharedStore,
    /// The call limits every shard shares (calls in progress per trunk and user).
    pub call_limits: std::sync::Arc<sbc_core::policy::CallLimits>,
    /// The trunk directory the shards' boundaries consult.
    pub trunks: Arc<LiveTrunks>,
    /// The configuration (its listeners, whose ACLs the store's add to).
    pub config: Arc<Config>,
    /// Serialises changes of trunks and ACLs, so that the gate gets them in order.
    pub changes: Arc<tokio::sync::Mutex<()>>,
}

impl SecurityHandle {
    /// Puts `trunks` (file and API trunks) in force for new requests: in the shards'
    /// boundaries, the call limits and the admission gate; returns once the gate has
    /// them.
    pub async fn replace_trunks(
        &self,
        trunks: &[crate::config::TrunkConfig],
    ) -> anyhow::Result<()> {
        let _changing = self.changes.lock().await;
        self.call_limits.set_trunk_limits(trunk_call_limits(trunks));
        let sources = self.trunks.replace_trunks(trunks);
        self.apply(sources, None).await
    }

    /// Puts the store's ACLs `access` in force for new traffic: the listeners' rules in
    /// the admission gate, and the trunks' sources in the gate and the shards'
    /// boundaries; returns once the gate has them.
    pub async fn replace_access(&self, access: Arc<AccessSnapshot>) -> anyhow::Result<()> {
        let _changing = self.changes.lock().await;
        let listeners = gate_listeners(&self.config, &access);
        let sources = self.trunks.replace_access(access);
        self.apply(sources, Some(listeners)).await
    }

    async fn apply(
        &self,
        trunks: Vec<TrunkSources>,
        listeners: Option<Vec<ListenerRule>>,
    ) -> anyhow::Result<()> {
        let (applied, done) = oneshot::channel();
        self.gate
            .send(GateInput::Request(GateRequest::Access {
                trunks,
                listeners,
                applied,
            }))
            .await
            .map_err(|_| anyhow::anyhow!("signalling is stopping"))?;
        done.await
            .map_err(|_| anyhow::anyhow!("signalling is stopping"))
    }

    /// Lifts the ban of `network` now (in the gate and in the store); `true` when the
    /// gate held one.
    pub async fn lift_ban(&self, network: Cidr) -> anyhow::Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.gate
            .send(GateInput::Request(GateRequest::Lift(network, reply)))
            .await
            .map_err(|_| anyhow::anyhow!("signalling is stopping"))?;
        let lifted = answer.await.unwrap_or(false);
        let store = Arc::clone(&self.store);
        let source = network.to_string();
        tokio::task::spawn_blocking(move || {
            let _ = store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .lift_ban(&source, None);
        })
        .await
        .ok();
        Ok(lifted)
    }

    /// The gate's counters.
    pub async fn gate_stats(&self) -> Option<GateStats> {
        let (reply, answer) = oneshot::channel();
        self.gate
            .send(GateInput::Request(GateRequest::Stats(reply)))
            .await
            .ok()?;
        answer.await.ok()
    }

    /// The edge security's own figures for a metrics scrape.
    pub fn figures(&self) -> crate::metrics_security::SecurityFigures {
        crate::metrics_security::SecurityFigures {
            registrar: self.registrar.stats(),
            users: self.credentials.users(),
            calls: self.call_limits.counts(),
        }
    }

    /// Reloads the credential snapshot from the store (after users changed).
    pub async fn reload_credentials(&self) -> anyhow::Result<usize> {
        let store = Arc::clone(&self.store);
        let credentials = self.credentials.clone();
        tokio::task::spawn_blocking(move || {
            credentials.reload(&store.lock().unwrap_or_else(PoisonError::into_inner))
        })
        .await
        .context("credential reload task")?
    }
}

/// Loads the store's bans into the gate (at start).
pub fn restore_bans(store: &Store, gate: &mut Gate, now: Instant) -> anyhow::Result<usize> {
    let now_ms = unix_ms();
    let mut loaded = 0;
    let mut page = crate::store::PageRequest::first(crate::store::MAX_PAGE_LIMIT);
    loop {
        let bans = store.list_bans(&page).context("reading bans")?;
        for ban in &bans.items {
            let Ok(network) = ban.source.parse::<Cidr>() else {
                continue;
            };
            let duration = match ban.expires_at {
                Some(at) if at <= now_ms => continue,
                Some(at) => Some(Duration::from_millis(
                    u64::try_from(at - now_ms).unwrap_or(0),
                )),
                None => None,
            };
            if gate.ban(now, network, &ban.reason, duration) {
                loaded += 1;
            }
        }
        match bans.next_cursor {
            Some(cursor) => {
                page = crate::store::PageRequest::after(cursor, crate::store::MAX_PAGE_LIMIT)
            }
            None => break,
        }
    }
    Ok(loaded)
}

/// Applies one input to the gate.
pub fn handle_gate_input(gate: &mut Gate, input: GateInput, now: Instant) {
    match input {
        GateInput::Policy(PolicyEvent::AuthFailed { source, reason }) => {
            tracing::debug!(%source, reason, "authentication failed");
            gate.handle_auth_failure(now, source);
        }
        GateInput::Policy(PolicyEvent::Authenticated { source }) => {
            gate.handle_auth_success(source)
        }
        GateInput::Request(GateRequest::Stats(reply)) => {
            let _ = reply.send(gate.stats());
        }
        GateInput::Request(GateRequest::Lift(network, reply)) => {
            let lifted = gate.lift(network);
            if lifted {
                info!(%network, "ban lifted");
            }
            let _ = reply.send(lifted);
        }
        GateInput::Request(GateRequest::Ban(network, reason, duration, reply)) => {
            let _ = reply.send(gate.ban(now, network, &reason, duration));
        }
        GateInput::Request(GateRequest::Access {
            trunks,
            listeners,
            applied,
        }) => {
            gate.set_trunk_sources(trunks);
            if let Some(listeners) = listeners {
                gate.set_listeners(listeners);
            }
            let _ = applied.send(());
        }
    }
}

/// Writes the gate's new bans to the store (off the dispatch task).
pub fn persist_gate_events(gate: &mut Gate, store: &SharedStore) {
    let events: Vec<GateEvent> = std::iter::from_fn(|| gate.poll_event()).collect();
    if events.is_empty() {
        return;
    }
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let now_ms = unix_ms();
        let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
        for GateEvent::Banned {
            network,
            reason,
            duration,
            ..
        } in events
        {
            let ban = NewBan {
                source: network.to_string(),
                reason,
                expires_at: duration.map(|d| {
                    now_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                }),
            };
            if let Err(error) = store.add_ban(&ban, None) {
                warn!(%error, "cannot persist a ban");
            }
        }
    });
}

/// A new shared registrar for the configuration.
pub fn new_registrar(config: &Config) -> SharedRegistrar {
    Registrar::shared(config.registrar.registrar_config())
}

/// A random 32-byte key for nonce HMACs (kept in memory only).
pub fn nonce_key() -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    openssl::rand::rand_bytes(&mut key).context("no randomness for the nonce key")?;
    Ok(key)
}

/// The IP part of a `Cidr` host, for logs.
pub fn host_of(network: Cidr) -> IpAddr {
    network.network()
}
