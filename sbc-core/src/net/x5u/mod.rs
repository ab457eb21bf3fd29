//! STIR certificates over HTTPS: the shared fetcher the verifiers ask (never blocking a
//! signalling shard), and the small server that publishes the SBC's own certificate.
//!
//! A shard that needs the certificate at a URL calls [`CertFetcher::request`] (a
//! non-blocking send) and goes on with other work; the fetcher answers on the shard's
//! queue with a [`Fetched`], which the shard hands to its B2BUA. The fetcher keeps one
//! cache for all shards, honouring the HTTP cache headers (the whole chain is kept), joins
//! concurrent requests for one URL into one fetch, caches failures briefly, and bounds
//! everything: fetches in flight, cache entries, body size, time.
//!
//! Fetch rules (ATIS-1000074 §5.3.1, RFC 8224 §7.4): `https` only, no redirects, no
//! userinfo, query or fragment, ports 443 and 8443 unless configured otherwise, and
//! never an RFC 6890 special-purpose address (checked on what the name resolves to)
//! unless its range is allowed in the configuration.

mod addresses;
mod fetch;
mod publish;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use addresses::{AddressRange, BadRange, SPECIAL_PURPOSE, may_fetch_from};
pub use publish::{PublishConfig, PublishError, Publisher};

use self::fetch::{FetchError, FetchRules};
use crate::identity::certs::CertChain;
use crate::identity::url::DEFAULT_PORTS;
use crate::identity::verdict::Failure;

/// How the fetcher behaves.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Ports a certificate URL may name.
    pub ports: Vec<u16>,
    /// Special-purpose ranges fetching is allowed from anyway (e.g. loopback in tests).
    pub allowed_ranges: Vec<AddressRange>,
    /// Largest document accepted.
    pub max_bytes: usize,
    /// The whole fetch (resolution, connection, TLS, response) must finish in this.
    pub timeout: Duration,
    /// PEM file of the CAs that HTTPS servers' certificates must chain to; `None`: the
    /// system's default trust store.
    pub https_ca_file: Option<PathBuf>,
    /// URLs cached at most (least recently fetched go first).
    pub max_entries: usize,
    /// How long a response without cache headers is kept.
    pub default_ttl: Duration,
    /// Longest a response is kept whatever its headers say.
    pub max_ttl: Duration,
    /// How long a failure is remembered (so a dead URL is not hammered).
    pub failure_ttl: Duration,
    /// Fetches in flight at most; past it, requests fail at once as unreachable.
    pub max_in_flight: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            ports: DEFAULT_PORTS.to_vec(),
            allowed_ranges: Vec::new(),
            max_bytes: 16 * 1024,
            timeout: Duration::from_secs(2),
            https_ca_file: None,
            max_entries: 4_096,
            default_ttl: Duration::from_secs(3_600),
            max_ttl: Duration::from_secs(86_400),
            failure_ttl: Duration::from_secs(30),
            max_in_flight: 64,
        }
    }
}

/// A fetch's result, as handed back to the shard that asked.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub url: String,
    pub outcome: Result<Arc<CertChain>, Failure>,
    /// Until when the shard may reuse the chain without asking again.
    pub fresh_until: SystemTime,
}

/// What the fetcher did, by stable name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetcherStats {
    /// Requests answered from the cache.
    pub cache_hits: u64,
    /// Requests the cache could not answer (joined to a fetch in flight, or a new one).
    pub cache_misses: u64,
    /// Fetches that succeeded.
    pub fetched: u64,
    /// Fetches that failed, by reason.
    pub failed: BTreeMap<&'static str, u64>,
    /// Entries in the cache.
    pub cached: usize,
}

/// Why the fetcher cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    #[error("TLS client setup failed: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
}

struct Request {
    url: String,
    reply: mpsc::Sender<Fetched>,
}

/// The handle shards ask through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CertFetcher {
    requests: mpsc::Sender<Request>,
    stats: Arc<Mutex<FetcherStats>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("url", &self.url).finish()
    }
}

/// Requests queued to the fetcher at most.
const REQUEST_QUEUE: usize = 1_024;

impl CertFetcher {
    /// Starts the fetcher task on the current tokio runtime. It ends when every handle
    /// is dropped.
    pub fn spawn(config: FetchConfig) -> Result<CertFetcher, FetcherError> {
        let mut tls = SslConnector::builder(SslMethod::tls_client())?;
        tls.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        match &config.https_ca_file {
            Some(file) => tls.set_ca_file(file)?,
            None => tls.set_default_verify_paths()?,
        }
        let rules = FetchRules {
            ports: config.ports.clone(),
            allowed: config.allowed_ranges.clone(),
            max_bytes: config.max_bytes,
            timeout: config.timeout,
            tls: tls.build(),
            default_ttl: config.default_ttl,
            max_ttl: config.max_ttl,
        };
        let (requests, queue) = mpsc::channel(REQUEST_QUEUE);
        let stats = Arc::new(Mutex::new(FetcherStats::default()));
        tokio::spawn(run(config, rules, queue, Arc::clone(&stats)));
        Ok(CertFetcher { requests, stats })
    }

    /// Asks for the chain at `url`; the answer comes on `reply`. Never blocks: when the
    /// fetcher's queue is full, the answer is an immediate failure.
    pub fn request(&self, url: String, reply: &mpsc::Sender<Fetched>) {
        let request = Request {
            url,
            reply: reply.clone(),
        };
        if let Err(error) = self.requests.try_send(request) {
            let request = match error {
                mpsc::error::TrySendError::Full(request)
                | mpsc::error::TrySendError::Closed(request) => request,
            };
            let _ = request.reply.try_send(Fetched {
                url: request.url,
                outcome: Err(Failure::X5uUnreachable),
                fresh_until: SystemTime::now(),
            });
        }
    }

    pub fn stats(&self) -> FetcherStats {
        self.stats
            .lock()
            .map(|stats| stats.clone())
            .unwrap_or_default()
    }
}

struct Entry {
    outcome: Result<Arc<CertChain>, Failure>,
    until: Instant,
    fresh_until: SystemTime,
}

async fn run(
    config: FetchConfig,
    rules: FetchRules,
    mut queue: mpsc::Receiver<Request>,
    stats: Arc<Mutex<FetcherStats>>,
) {
    let mut cache: HashMap<String, Entry> = HashMap::new();
    let mut waiting: HashMap<String, Vec<mpsc::Sender<Fetched>>> = HashMap::new();
    let mut fetches: JoinSet<(String, Result<fetch::Fresh, FetchError>)> = JoinSet::new();
    let count = |update: &dyn Fn(&mut FetcherStats)| {
        if let Ok(mut stats) = stats.lock() {
            update(&mut stats);
        }
    };
    loop {
        tokio::select! {
            request = queue.recv() => {
                let Some(Request { url, reply }) = request else { break };
                let now = Instant::now();
                if let Some(entry) = cache.get(&url).filter(|entry| entry.until > now) {
                    count(&|stats| stats.cache_hits += 1);
                    let _ = reply.try_send(Fetched {
                        url,
                        outcome: entry.outcome.clone(),
                        fresh_until: entry.fresh_until,
                    });
                    continue;
                }
                count(&|stats| stats.cache_misses += 1);
                if let Some(waiters) = waiting.get_mut(&url) {
                    waiters.push(reply);
                    continue;
                }
                if fetches.len() >= config.max_in_flight {
                    count(&|stats| *stats.failed.entry("too_many_fetches").or_default() += 1);
                    let _ = reply.try_send(Fetched {
                        url,
                        outcome: Err(Failure::X5uUnreachable),
                        fresh_until: SystemTime::now(),
                    });
                    continue;
                }
                waiting.insert(url.clone(), vec![reply]);
                let rules = rules.clone();
                fetches.spawn(async move {
                    let result = fetch::fetch(&url, &rules).await;
                    (url, result)
                });
            }
            Some(done) = fetches.join_next(), if !fetches.is_empty() => {
                let Ok((url, result)) = done else { continue };
                let now = Instant::now();
                let (outcome, ttl) = match result {
                    Ok(fresh) => {
                        count(&|stats| stats.fetched += 1);
                        (Ok(fresh.chain), fresh.ttl.unwrap_or_default())
                    }
                    Err(error) => {
                        tracing::info!(%url, reason = error.name(), "STIR certificate fetch failed");
                        count(&|stats| *stats.failed.entry(error.name()).or_default() += 1);
                        (Err(error.failure()), config.failure_ttl)
                    }
                };
                let fresh_until = SystemTime::now() + ttl;
                for reply in waiting.remove(&url).unwrap_or_default() {
                    let _ = reply.try_send(Fetched {
                        url: url.clone(),
                        outcome: outcome.clone(),
                        fresh_until,
                    });
                }
                if !ttl.is_zero() {
                    if cache.len() >= config.max_entries {
                        evict(&mut cache, now, config.max_entries);
                    }
                    cache.insert(url, Entry { outcome, until: now + ttl, fresh_until });
                }
                let cached = cache.len();
                count(&|stats| stats.cached = cached);
            }
        }
    }
}

/// Makes room: drops expired entries, else the one that expires first.
fn evict(cache: &mut HashMap<String, Entry>, now: Instant, max: usize) {
    cache.retain(|_, entry| entry.until > now);
    while cache.len() >= max.max(1) {
        let soonest = cache
            .iter()
            .min_by_key(|(_, entry)| entry.until)
            .map(|(url, _)| url.clone());
        match soonest {
            Some(url) => cache.remove(&url),
            None => break,
        };
    }
}
