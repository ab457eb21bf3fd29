//! The signalling runtime: binds the SIP transports and drives the sans-IO [`Endpoint`]
//! with what they receive, the clock, and randomness.
//!
//! One task owns the endpoint (and so its transaction layer): it takes each received
//! message, fires timers when [`Endpoint::poll_timeout`] says, and sends every
//! [`Transmit`] the endpoint produces on the flow it names. It decides nothing itself.

use std::time::Instant;

use anyhow::Context;
use media_relay::{Relay, RelayConfig, RelayEvent};
use sbc_core::b2bua::{B2bua, B2buaConfig, CallIdOwner, OwnsCallId};
use sbc_core::endpoint::{Endpoint, EndpointConfig};
use sbc_core::media::MediaSessionId;
use sbc_core::net::x5u::{CertFetcher, Fetched};
use sbc_core::net::{
    self, CertificateFiles, Inbound, Protocol, TlsListenerConfig, Transport, TransportConfig,
    TransportHandle,
};
use sbc_core::probes::Prober;
use sbc_core::routing::RoutingTable;
use sbc_core::shard::Sharding;
use sbc_core::transaction::{LayerConfig, Peer, Reliability, TimerConfig};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{ClientAuth, Config, TransportKind};
use crate::control::{CONTROL_QUEUE, ShardCounters, ShardRequest, Signalling};
use crate::media::{Delivery, RelayAnchor, deliver_inactive};
use crate::outbound::Outbound;
use crate::routing::{self, TableRouter};
use crate::security;
use crate::shutdown::Shutdown;
use crate::status::ApplianceStatus;
use sbc_core::auth::Authenticator;
use sbc_core::policy::{Admission as GateAdmission, Arrival, Boundary, Gate};
use sbc_core::registrar::LocatingRouter;

use std::sync::Arc;

/// What `main` hands the signalling runtime besides the configuration.
#[derive(Debug)]
pub struct ServerContext {
    /// Readiness reported on the admin API's `GET /ready`.
    pub status: Arc<ApplianceStatus>,
    /// Resolves when SIGINT/SIGTERM asks the appliance to stop.
    pub shutdown: Shutdown,
    /// Where call detail records go.
    pub store: crate::appliance::SharedStore,
    /// Signalling instants to wall-clock time.
    pub clock: crate::views::WallClock,
    /// The CDR writer's counters.
    pub cdr_stats: Arc<crate::cdr::CdrStats>,
    /// The ACLs of the store, republished on every change (the admission gate and the
    /// trunk directory start with the current snapshot).
    pub access: crate::access::AccessUpdates,
}

/// Binds every SIP listener, reports ready, and serves until a stop is requested.
pub async fn run(config: Config, context: ServerContext) -> anyhow::Result<()> {
    let (transport, inbound) = Transport::bind(transport_config(&config))
        .await
        .context("cannot start the SIP transports")?;
    for (protocol, address) in transport.local_addrs() {
        info!(%protocol, %address, "SIP listener bound");
    }
    let relay = Relay::start(relay_config(&config)).context("cannot start the media relay")?;
    let (pairs, _) = relay.port_pairs();
    info!(address = %config.media.address, port_pairs = pairs, "media relay started");
    let routing = {
        let store = context
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crate::objects::initial_table(&config, &store).context("cannot build the routing table")?
    };
    let (routing_updates, routing_snapshots) = watch::channel(Arc::new(routing.clone()));
    let (target_changes_tx, target_changes) = mpsc::channel(256);
    let (replacements_tx, replacements) = mpsc::channel(16);
    let routing_state = routing::spawn_routing_state(
        routing,
        routing_updates,
        target_changes,
        replacements,
        context.shutdown.clone(),
    );

    // The trunks in effect: the file's and the store's.
    let trunks_in_effect = {
        let store = context
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crate::objects::initial_objects(&config, &store)?.trunks
    };
    let identity = crate::identity::IdentityRuntime::start(&config, &trunks_in_effect)
        .await
        .context("cannot start STIR/SHAKEN")?;

    // The trunks' media security policies, replaced when trunks change through the API.
    let (media_policies, media_snapshots) = watch::channel(Arc::new(routing::MediaPolicies::of(
        &config,
        &trunks_in_effect,
    )));
    let (cdr, cdr_writer) = crate::cdr::spawn(crate::cdr::WriterSetup {
        store: Arc::clone(&context.store),
        routing: routing_snapshots.clone(),
        clock: context.clock,
        config: config.cdr.clone(),
        stats: Arc::clone(&context.cdr_stats),
    });
    let finaliser_sink = cdr.clone();
    let (finaliser, finaliser_thread) =
        crate::media::spawn_finaliser(relay.clone(), move |session, stats| {
            finaliser_sink.media(session.0, stats);
        })
        .context("cannot start the media finaliser thread")?;

    // Edge security: credentials in memory, the shared registrar, the admission gate
    // (with the listener ACLs of the file and of the store).
    let access = Arc::clone(&context.access.borrow());
    let (credentials, registrar, mut gate) = {
        let store = context
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let credentials = security::CredentialSnapshot::load(&store)?;
        let registrar = security::new_registrar(&config);
        let restored = security::restore_registrations(&store, &registrar)?;
        let mut gate = Gate::new(security::gate_config(&config, &access), Instant::now());
        let bans = security::restore_bans(&store, &mut gate, Instant::now())?;
        info!(
            users = credentials_count(&credentials),
            registrations = restored,
            bans,
            auth = config.auth.enabled,
            "edge security loaded"
        );
        (credentials, registrar, gate)
    };
    // The boundary and the gate know the file's trunks and those of the store, with
    // the ACLs of both.
    let trunks = Arc::new(security::LiveTrunks::new(
        trunks_in_effect.clone(),
        Arc::clone(&access),
    ));
    gate.set_trunk_sources(trunks.sources());
    let (gate_inputs, gate_work) = mpsc::channel(GATE_QUEUE);
    let nonce_key = security::nonce_key()?;
    let nonce_epoch = Instant::now();
    let persistence = security::spawn_registrar_persistence(
        Arc::clone(&registrar),
        context.store.clone(),
        credentials.clone(),
        context.shutdown.clone(),
    );
    let call_limits = sbc_core::policy::CallLimits::new(sbc_core::policy::CallLimitsConfig {
        trunks: security::trunk_call_limits(&trunks_in_effect),
        ..security::call_limits_config(&config)
    });
    let security_handle = security::SecurityHandle {
        gate: gate_inputs.clone(),
        credentials: credentials.clone(),
        registrar: Arc::clone(&registrar),
        store: context.store.clone(),
        call_limits: Arc::clone(&call_limits),
        trunks: Arc::clone(&trunks),
        config: Arc::new(config.clone()),
        changes: Arc::default(),
    };
    context.status.set_security(security_handle.clone());
    // ACLs changed through the API between the read above and now (the admin side
    // publishes before it looks for the handle) are put in force once the gate runs.
    let latest = Arc::clone(&context.access.borrow());
    if !Arc::ptr_eq(&latest, &access) {
        tokio::spawn(async move {
            if let Err(error) = security_handle.replace_access(latest).await {
                warn!(%error, "cannot apply the ACLs changed during start");
            }
        });
    }

    let sharding = Sharding::new(config.sip.shard_count());
    let mut shards = Vec::with_capacity(sharding.shards());
    let mut controls = Vec::with_capacity(sharding.shards());
    let mut media_events = Vec::with_capacity(sharding.shards());
    let mut tasks = JoinSet::new();
    let local = advertised_addrs(&config, &transport.local_addrs());
    for shard in 0..sharding.shards() {
        let (queue, work) = mpsc::channel(SHARD_QUEUE);
        let (media_queue, media_work) = mpsc::channel(SHARD_QUEUE);
        let (control_queue, control) = mpsc::channel(CONTROL_QUEUE);
        let (certificates_tx, certificates) = mpsc::channel(CERTIFICATE_QUEUE);
        let router = LocatingRouter::new(
            Arc::clone(&registrar),
            Box::new(TableRouter::new(
                routing_snapshots.clone(),
                media_snapshots.clone(),
            )),
            config.auth.realm.clone(),
            config.auth.domains.clone(),
            routing::untrusted_filter(config.media.srtp.policy()),
            Instant::now,
        );
        let b2bua = B2bua::new(
            B2buaConfig {
                // The appliance-wide limit is exact in `call_limits`; each shard's own
                // count only backs it up.
                max_calls: config.sip.limits.max_calls,
                call_limits: Some(Arc::clone(&call_limits)),
                ..b2bua_config(&local, &sharding, shard)
            },
            Box::new(router),
            Box::new(
                RelayAnchor::new(relay.clone(), config.media.advertised())
                    .for_shard(shard)
                    .with_finaliser(finaliser.clone()),
            ),
            random_u64,
        )
        .with_identity(identity.service());
        let boundary = Boundary::new(
            security::boundary_config(&config),
            Authenticator::new(
                security::digest_config(&config),
                &nonce_key,
                nonce_epoch,
                u16::try_from(shard).unwrap_or(u16::MAX),
            ),
            Arc::new(credentials.clone()),
            trunks.clone(),
            Some(Arc::clone(&registrar)),
        );
        let mut endpoint = Endpoint::new(endpoint_config(&config), random_u64)
            .with_b2bua(b2bua)
            .with_boundary(boundary);
        // Shard 0 sends the trunk keep-alive probes and follows the routing table for it.
        let keepalive = if shard == 0 {
            let owner = sharding.clone();
            let owns: Arc<OwnsCallId> = Arc::new(move |call_id| owner.owns(0, call_id));
            endpoint = endpoint.with_prober(Prober::new(local.clone(), Some(owns)));
            Some(Keepalive {
                routing: routing_snapshots.clone(),
                changes: target_changes_tx.clone(),
            })
        } else {
            None
        };
        tasks.spawn(serve(
            endpoint,
            transport.clone(),
            Inputs {
                messages: work,
                media: media_work,
                control,
                keepalive,
                certificates: Certificates {
                    fetcher: identity.fetcher.clone(),
                    replies: certificates_tx,
                    answers: certificates,
                },
                reports: gate_inputs.clone(),
            },
            cdr.clone(),
            context.shutdown.clone(),
        ));
        shards.push(queue);
        controls.push(control_queue);
        media_events.push(media_queue);
    }
    drop(finaliser);
    drop(cdr);
    info!(shards = sharding.shards(), "signalling shards started");
    let media_thread = spawn_media_events(relay.clone(), media_events, context.shutdown.clone());
    context.status.set_signalling(Arc::new(Signalling {
        sharding: sharding.clone(),
        shards: controls,
        relay: relay.clone(),
        transport: transport.clone(),
        replacements: replacements_tx,
        media_policies,
        started: Instant::now(),
    }));
    context.status.mark_ready();

    drop(gate_inputs);
    dispatch(
        &sharding,
        &shards,
        inbound,
        Admission {
            gate,
            inputs: gate_work,
            store: context.store.clone(),
        },
        context.shutdown,
    )
    .await;

    // Closing the queues ends the shards once they have taken what is queued.
    drop(shards);
    while tasks.join_next().await.is_some() {}
    info!("stopping the SIP transports");
    transport.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || media_thread.join()).await;
    // The shards are gone: the finaliser ends, then the writer writes what is left.
    let _ = tokio::task::spawn_blocking(move || finaliser_thread.join()).await;
    if tokio::time::timeout(CDR_FLUSH_TIMEOUT, cdr_writer)
        .await
        .is_err()
    {
        warn!("the CDR writer did not finish in time; the last records may be lost");
    }
    let _ = routing_state.await;
    let _ = persistence.await;
    drop(identity);
    Ok(())
}

/// What a shard is fed: received messages, and media sessions the relay found silent;
/// for the keep-alive shard, routing table changes too.
struct Inputs {
    messages: mpsc::Receiver<Inbound>,
    media: mpsc::Receiver<MediaSessionId>,
    control: mpsc::Receiver<ShardRequest>,
    keepalive: Option<Keepalive>,
    certificates: Certificates,
    /// Where authentication outcomes go (the admission gate, for bans).
    reports: mpsc::Sender<security::GateInput>,
}

/// A shard's link to the STIR certificate fetcher: it asks with a non-blocking send and
/// the answers come back on its own queue.
struct Certificates {
    fetcher: Option<CertFetcher>,
    replies: mpsc::Sender<Fetched>,
    answers: mpsc::Receiver<Fetched>,
}

/// Certificate answers waiting for one shard at most (each stands for calls waiting).
const CERTIFICATE_QUEUE: usize = 256;

/// The keep-alive shard's link to the routing state: it follows the table (to know what
/// to probe) and reports targets going down or up.
struct Keepalive {
    routing: watch::Receiver<Arc<RoutingTable>>,
    changes: mpsc::Sender<routing::TargetChange>,
}

impl Keepalive {
    /// Completes when the table changed (never, for the other shards).
    async fn changed(keepalive: &mut Option<Keepalive>) -> Option<Arc<RoutingTable>> {
        match keepalive {
            Some(link) => match link.routing.changed().await {
                Ok(()) => Some(Arc::clone(&link.routing.borrow_and_update())),
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

/// Forwards each of the relay's inactivity events to the shard that allocated its session
/// (see [`crate::media::deliver_inactive`]). Ends at shutdown.
fn spawn_media_events(
    relay: Relay,
    shards: Vec<mpsc::Sender<MediaSessionId>>,
    shutdown: Shutdown,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !shutdown.is_requested() {
            let Some(RelayEvent::Inactive(session)) =
                relay.wait_event(std::time::Duration::from_millis(200))
            else {
                continue;
            };
            // The relay reports a session once: a full queue loses the event (see
            // `Delivery::Lost`), the loop itself never blocks.
            if deliver_inactive(&relay, &shards, session) == Delivery::Lost {
                debug!(
                    session = session.0,
                    "inactivity event lost: shard queue full"
                );
            }
        }
    })
}

fn relay_config(config: &Config) -> RelayConfig {
    RelayConfig {
        address: config.media.address,
        port_min: config.media.port_min,
        port_max: config.media.port_max,
        workers: config.media.workers,
        inactivity_timeout: config.media.inactivity_timeout().unwrap_or_default(),
        ..RelayConfig::default()
    }
}

/// What the SBC writes in Via and Contact for each bound listener: its `advertise`
/// setting, else the address it is bound on (validation refuses a wildcard without one).
fn advertised_addrs(
    config: &Config,
    bound: &[(Protocol, std::net::SocketAddr)],
) -> Vec<(Protocol, std::net::SocketAddr)> {
    bound
        .iter()
        .map(|&(protocol, address)| {
            let configured = config.sip.listen.iter().find(|listener| {
                routing::protocol_of(listener.transport) == protocol
                    && listener.address.ip() == address.ip()
                    && (listener.address.port() == address.port() || listener.address.port() == 0)
            });
            let advertised = match configured.and_then(|listener| listener.advertise) {
                Some(advertised) => std::net::SocketAddr::new(
                    advertised.ip,
                    advertised.port.unwrap_or(address.port()),
                ),
                None => address,
            };
            (protocol, advertised)
        })
        .collect()
}

/// How long the CDR writer may take to write what is queued at stop.
const CDR_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Call records a shard's B2BUA holds between two turns of its loop at most.
const CALL_RECORDS_PER_SHARD: usize = 1_024;

/// The B2BUA writes our own address per transport in Via and Contact.
/// B-leg Call-IDs are drawn so that they hash back to the shard that owns the call.
fn b2bua_config(
    local: &[(Protocol, std::net::SocketAddr)],
    sharding: &Sharding,
    shard: usize,
) -> B2buaConfig {
    let sharding = sharding.clone();
    B2buaConfig {
        local: local.to_vec(),
        call_id_owner: Some(CallIdOwner(Arc::new(move |call_id| {
            sharding.owns(shard, call_id)
        }))),
        call_records: CALL_RECORDS_PER_SHARD,
        ..B2buaConfig::default()
    }
}

/// Messages waiting for one shard; past it, new ones are dropped (the peer retransmits
/// over UDP; a stream peer sees no answer and times out).
const SHARD_QUEUE: usize = 4_096;

/// Gate inputs queued at most (shard reports and orders); past it reports are lost (a
/// ban then comes a few failures later).
const GATE_QUEUE: usize = 4_096;

/// The admission gate as the dispatch task owns it.
struct Admission {
    gate: Gate,
    inputs: mpsc::Receiver<security::GateInput>,
    store: crate::appliance::SharedStore,
}

/// Admits each received message through the gate (bans, ACLs, scanners, rate limits:
/// before any parsing) and hands it to the shard that owns its Call-ID.
async fn dispatch(
    sharding: &Sharding,
    shards: &[mpsc::Sender<Inbound>],
    mut inbound: mpsc::Receiver<Inbound>,
    mut admission: Admission,
    shutdown: Shutdown,
) {
    let stop = shutdown.requested();
    tokio::pin!(stop);
    let mut dropped: u64 = 0;
    loop {
        let message = tokio::select! {
            biased;
            () = &mut stop => return,
            Some(input) = admission.inputs.recv() => {
                security::handle_gate_input(&mut admission.gate, input, Instant::now());
                security::persist_gate_events(&mut admission.gate, &admission.store);
                continue;
            }
            received = inbound.recv() => match received {
                Some(message) => message,
                None => {
                    warn!("the SIP transports stopped");
                    return;
                }
            },
        };
        match admission.gate.admit(
            Instant::now(),
            &message.bytes,
            message.source,
            message.local,
            message.protocol,
        ) {
            GateAdmission::Pass => {}
            GateAdmission::Drop(_) => {
                security::persist_gate_events(&mut admission.gate, &admission.store);
                continue;
            }
        }
        let shard = sharding.shard_of_message(&message.bytes);
        let Some(queue) = shards.get(shard) else {
            continue;
        };
        if let GateAdmission::Drop(_) =
            admission
                .gate
                .shed(&message.bytes, queue.capacity(), queue.max_capacity())
        {
            continue;
        }
        if queue.try_send(message).is_err() {
            dropped += 1;
            if dropped.is_power_of_two() {
                warn!(
                    shard,
                    dropped, "signalling shard overloaded: message dropped"
                );
            }
        }
    }
}

/// One shard's run loop (the drain contract): feed, drain transmits, sleep until the next
/// timer. Ends when a stop is requested or its queue closes.
async fn serve(
    mut endpoint: Endpoint,
    transport: TransportHandle,
    mut inputs: Inputs,
    cdr: crate::cdr::CdrSink,
    shutdown: Shutdown,
) {
    let mut counters = ShardCounters::default();
    let (mut outbound, mut failed) = Outbound::new(transport);
    let stop = shutdown.requested();
    tokio::pin!(stop);
    if let Some(link) = inputs.keepalive.as_mut() {
        let table = Arc::clone(&link.routing.borrow_and_update());
        endpoint.handle_routing(Instant::now(), &table);
    }
    loop {
        // Output first: what the last input (or the start) produced goes out before the
        // loop waits again.
        if let Some(link) = inputs.keepalive.as_ref() {
            while let Some(change) = endpoint.poll_target_change() {
                let _ = link.changes.try_send((change.target.addr, change.up));
            }
        }
        while let Some(url) = endpoint.poll_certificate_fetch() {
            match &inputs.certificates.fetcher {
                Some(fetcher) => fetcher.request(url, &inputs.certificates.replies),
                None => endpoint.handle_certificate(
                    Instant::now(),
                    &url,
                    Err(sbc_core::identity::Failure::X5uUnreachable),
                    std::time::SystemTime::now(),
                ),
            }
        }
        while let Some(record) = endpoint.poll_call_record() {
            counters.calls.observe(&record);
            if !cdr.submit(record) {
                counters.calls.records_dropped += 1;
            }
        }
        while let Some(transmit) = endpoint.poll_transmit() {
            counters.traffic.sent(&transmit.payload);
            let target = endpoint.target_of(&transmit);
            let payload = transmit.payload.clone();
            if let Err(failure) = outbound.send(target, payload, transmit).await {
                debug!(error = %failure.error, "send failed");
                endpoint.handle_transport_error(Instant::now(), &failure.token);
            }
        }
        let wake = endpoint.poll_timeout().map(tokio::time::Instant::from_std);
        // Timers before input: under a sustained flood the inbound queue is always ready,
        // and a biased select that looked at it first would never fire a retransmission
        // or end a transaction. A due timer costs one `handle_timeout`, which fires every
        // due timer at once, so input is never starved in return.
        tokio::select! {
            biased;
            () = &mut stop => break,
            () = sleep_until(wake), if wake.is_some() => endpoint.handle_timeout(Instant::now()),
            Some(failure) = failed.recv() => {
                debug!(error = %failure.error, "send failed");
                endpoint.handle_transport_error(Instant::now(), &failure.token);
            }
            Some(request) = inputs.control.recv() => {
                request.answer(&mut endpoint, &counters, Instant::now());
            }
            Some(fetched) = inputs.certificates.answers.recv() => {
                endpoint.handle_certificate(
                    Instant::now(),
                    &fetched.url,
                    fetched.outcome,
                    fetched.fresh_until,
                );
            }
            Some(session) = inputs.media.recv() => {
                endpoint.handle_media_timeout(Instant::now(), session);
            }
            Some(table) = Keepalive::changed(&mut inputs.keepalive) => {
                endpoint.handle_routing(Instant::now(), &table);
            }
            received = inputs.messages.recv() => match received {
                Some(message) => {
                    counters.traffic.received(&message.bytes, message.protocol);
                    let source = peer_of(&message);
                    let arrival = Arrival {
                        protocol: message.protocol,
                        client_certificate: message.tls_peer.is_some(),
                    };
                    // Overload control: while this shard's input backs up, new calls
                    // get 503 with Retry-After; calls in progress go on.
                    endpoint.set_overloaded(inputs.messages.len() > SHARD_QUEUE / 2);
                    endpoint.handle_inbound_from(Instant::now(), message.bytes, source, arrival);
                    while let Some(event) = endpoint.poll_policy_event() {
                        let _ = inputs.reports.try_send(security::GateInput::Policy(event));
                    }
                }
                None => break,
            },
        }
    }
}

fn credentials_count(credentials: &security::CredentialSnapshot) -> usize {
    credentials.users()
}

async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The transaction layer's view of where a message came from.
fn peer_of(message: &Inbound) -> Peer {
    let reliability = if message.protocol.is_stream() {
        Reliability::Reliable
    } else {
        Reliability::Unreliable
    };
    Peer {
        remote: message.source,
        reliability,
        flow: Some(message.flow.to_raw()),
    }
}

fn transport_config(config: &Config) -> TransportConfig {
    let limits = &config.sip.limits;
    let defaults = net::Limits::default();
    let net_limits = net::Limits {
        max_datagram_bytes: limits.max_message_size,
        max_stream_message_bytes: limits.max_message_size,
        max_header_bytes: defaults.max_header_bytes.min(limits.max_message_size),
        max_connections: limits.max_connections,
        max_connections_per_ip: limits.max_connections_per_ip,
        idle_timeout: limits.idle_timeout(),
        // A message that is still incomplete after this long holds memory for nothing
        // (slow-drip clients): never longer than the idle timeout.
        incomplete_message_timeout: defaults
            .incomplete_message_timeout
            .min(limits.idle_timeout()),
        tls_handshake_timeout: limits.tls_handshake_timeout(),
        ..defaults
    };
    let listeners = config
        .sip
        .listen
        .iter()
        .map(|listener| match listener.transport {
            TransportKind::Udp => net::ListenerConfig::plain(Protocol::Udp, listener.address),
            TransportKind::Tcp => net::ListenerConfig::plain(Protocol::Tcp, listener.address),
            TransportKind::Tls => {
                let mut tls = TlsListenerConfig::new(CertificateFiles {
                    // `tls_material::prepare` has set both for every TLS listener.
                    chain_file: listener.certificate.clone().unwrap_or_default(),
                    key_file: listener.private_key.clone().unwrap_or_default(),
                });
                tls.client_ca_file = listener.client_ca.clone();
                tls.client_auth = match listener.client_auth {
                    ClientAuth::None => net::ClientAuth::None,
                    ClientAuth::Optional => net::ClientAuth::Optional,
                    ClientAuth::Require => net::ClientAuth::Required,
                };
                net::ListenerConfig::tls(listener.address, tls)
            }
        })
        .collect();
    TransportConfig {
        listeners,
        limits: net_limits,
        ..TransportConfig::default()
    }
}

fn endpoint_config(config: &Config) -> EndpointConfig {
    let timers = &config.sip.timers;
    EndpointConfig {
        layer: LayerConfig {
            timers: TimerConfig {
                t1: timers.t1(),
                t2: timers.t2(),
                t4: timers.t4(),
                ..TimerConfig::default()
            },
            // The budget is for the whole appliance; each shard has its share.
            max_transactions: (config.sip.limits.max_transactions / config.sip.shard_count())
                .max(1),
            ..LayerConfig::default()
        },
        ..EndpointConfig::default()
    }
}

/// Tags come from the OS CSPRNG: they are unguessable, as RFC 3261 §19.3 wants.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        // The CSPRNG cannot fail once seeded; fall back to something unique anyway.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return now.as_nanos() as u64;
    }
    u64::from_le_bytes(bytes)
}
