//! Runs the appliance: TLS material, the async runtime, the admin API, signalling, and a
//! graceful stop on SIGINT/SIGTERM (a second signal stops at once).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::admin::{AdminService, AdminSetup};
use crate::cdr::CdrStats;
use crate::config::{AdminConfig, Config};
use crate::server::{self, ServerContext};
use crate::shutdown;
use crate::status::ApplianceStatus;
use crate::store::Store;
use crate::tls_material;
use crate::views::WallClock;

/// The store, shared by the admin API and the CDR writer; used from blocking threads.
pub type SharedStore = Arc<std::sync::Mutex<Store>>;

/// How long signalling may drain after a stop request before the process exits anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the admin API may finish its requests in flight at stop.
const ADMIN_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Run the appliance with a validated configuration until a stop signal (`Ok`) or a
/// failure (`Err`). Blocks the calling thread; starts its own tokio runtime.
pub fn run(mut config: Config) -> anyhow::Result<()> {
    raise_open_file_limit();
    tls_material::prepare(&mut config).context("preparing TLS material")?;
    let store = open_store(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sbc")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_appliance(config, store))
}

/// Raises the soft limit on open files to the hard limit: every call with media holds
/// four UDP sockets on the relay (RTP and RTCP per leg), so the usual soft limit of 1,024
/// would cap the appliance at about 250 calls. Says what the limit allows.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let raised = match (current, maximum) {
        (Some(current), Some(maximum)) if current < maximum => setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            },
        )
        .map(|()| maximum)
        .unwrap_or(current),
        (Some(current), _) => current,
        (None, _) => {
            info!("open files: no limit");
            return;
        }
    };
    let calls_with_media = raised.saturating_sub(256) / 4;
    info!(
        limit = raised,
        calls_with_media, "open files limit (4 relay sockets per call with media)"
    );
}

/// The database file under the data directory.
pub fn store_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("sbc.db")
}

/// Where the first start writes the admin API's bootstrap token.
pub fn bootstrap_token_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("admin-token")
}

/// Opens (creating and migrating) the store, and on the first start writes the bootstrap
/// admin token to a 0600 file and says where.
fn open_store(config: &Config) -> anyhow::Result<SharedStore> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let path = store_path(config);
    let mut store =
        Store::open(&path).with_context(|| format!("cannot open the store {}", path.display()))?;
    let token_path = bootstrap_token_path(config);
    match store
        .bootstrap_token(&token_path)
        .context("cannot create the bootstrap admin token")?
    {
        Some(written) => info!(
            file = %written.display(),
            "first start: a read-write admin API token was written to this file (mode 0600); \
             use it as 'Authorization: Bearer <token>' and create narrower tokens with it"
        ),
        None => info!(store = %path.display(), "store opened"),
    }
    Ok(Arc::new(std::sync::Mutex::new(store)))
}

async fn run_appliance(config: Config, store: SharedStore) -> anyhow::Result<()> {
    let mut signals = shutdown::StopSignals::install().context("cannot install signal handlers")?;
    let status = Arc::new(ApplianceStatus::starting());
    let (trigger, stop) = shutdown::channel();
    let clock = WallClock::now();
    let cdr_stats = Arc::new(CdrStats::default());
    let access = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || {
            let store = store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            crate::access::load(&store)
        })
        .await
        .context("reading the ACLs")?
        .context("reading the ACLs")?
    };
    let (access_publisher, access_updates) = tokio::sync::watch::channel(Arc::new(access));
    spawn_expiry(Arc::clone(&store), stop.clone());

    let admin = match &config.admin {
        Some(admin) => {
            let service = AdminService::new(AdminSetup {
                config: Arc::new(config.clone()),
                status: Arc::clone(&status),
                store: Arc::clone(&store),
                store_path: store_path(&config),
                access: access_publisher,
                admin_tls: None,
                clock,
                cdr: Arc::clone(&cdr_stats),
            });
            Some(start_admin(admin, service, stop.clone()).await?)
        }
        None => {
            info!("admin API disabled (no [admin] table)");
            None
        }
    };

    let context = ServerContext {
        status: status.clone(),
        shutdown: stop,
        store: store.clone(),
        clock,
        cdr_stats,
        access: access_updates,
    };
    let mut signalling = tokio::spawn(server::run(config, context));

    let outcome = tokio::select! {
        finished = &mut signalling => {
            trigger.request();
            match finished {
                Ok(Ok(())) => Err(anyhow::anyhow!("signalling stopped without a stop request")),
                Ok(Err(error)) => Err(error.context("signalling failed")),
                Err(join) => Err(anyhow::anyhow!("signalling task failed: {join}")),
            }
        }
        name = signals.next() => {
            info!(signal = name, timeout_secs = DRAIN_TIMEOUT.as_secs(), "stop requested; draining");
            status.mark_not_ready("draining");
            trigger.request();
            tokio::select! {
                drained = tokio::time::timeout(DRAIN_TIMEOUT, &mut signalling) => match drained {
                    Ok(Ok(result)) => result.context("signalling failed while draining"),
                    Ok(Err(join)) => Err(anyhow::anyhow!("signalling task failed: {join}")),
                    Err(_) => {
                        warn!("drain timeout reached; stopping anyway");
                        signalling.abort();
                        Ok(())
                    }
                },
                name = signals.next() => {
                    warn!(signal = name, "second stop signal; stopping at once");
                    signalling.abort();
                    Ok(())
                }
            }
        }
    };

    if let Some(admin) = admin {
        match tokio::time::timeout(ADMIN_STOP_TIMEOUT, admin).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => warn!("admin API stopped with an error: {error}"),
            Ok(Err(join)) => warn!("admin API task failed: {join}"),
            Err(_) => warn!("admin API did not stop in time"),
        }
    }
    outcome
}

/// How often lapsed bans and registrations are deleted.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(30);

/// Binds the admin listener (HTTPS when `[admin.tls]` is set) and serves `service` on it
/// until the stop request.
async fn start_admin(
    admin: &AdminConfig,
    mut service: AdminService,
    stop: shutdown::Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = TcpListener::bind(admin.listen)
        .await
        .with_context(|| format!("admin.listen: cannot bind {}", admin.listen))?;
    let Some(tls) = &admin.tls else {
        info!(address = %admin.listen, "admin API listening (HTTP)");
        let state = admin_api::AdminState::new(Arc::new(service));
        return Ok(tokio::spawn(admin_api::serve(
            listener,
            state,
            stop.requested(),
        )));
    };
    let client_auth = match tls.client_auth {
        crate::config::ClientAuth::None => admin_api::tls::ClientAuth::None,
        crate::config::ClientAuth::Optional => admin_api::tls::ClientAuth::Optional,
        crate::config::ClientAuth::Require => admin_api::tls::ClientAuth::Require,
    };
    let context = admin_api::tls::AdminTls::new(admin_api::tls::AdminTlsConfig {
        certificate: tls.certificate.clone(),
        private_key: tls.private_key.clone(),
        client_ca: tls.client_ca.clone(),
        client_auth,
    })
    .context("admin.tls")?;
    service.set_admin_tls(Arc::clone(&context));
    let listener = admin_api::tls::TlsListener::new(listener, context)
        .context("admin.listen: cannot start the TLS listener")?;
    info!(address = %admin.listen, client_auth = ?tls.client_auth, "admin API listening (HTTPS)");
    let state = admin_api::AdminState::new(Arc::new(service));
    Ok(tokio::spawn(admin_api::serve_tls(
        listener,
        state,
        stop.requested(),
    )))
}

/// Deletes lapsed bans and registrations from the store now and then (the gate forgets
/// its lapsed bans on its own).
fn spawn_expiry(store: SharedStore, stop: shutdown::Shutdown) {
    tokio::spawn(async move {
        let stopped = stop.requested();
        tokio::pin!(stopped);
        let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                _ = tick.tick() => {}
            }
            let store = Arc::clone(&store);
            let expired = tokio::task::spawn_blocking(move || {
                let mut store = store
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = WallClock::now().unix_ms(std::time::Instant::now());
                store.expire_bans(now)?;
                store.expire_registrations(now)
            })
            .await;
            match expired {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => warn!(%error, "cannot expire bans and registrations"),
                Err(error) => warn!(%error, "the expiry task failed"),
            }
        }
    });
}
