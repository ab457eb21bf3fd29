//! The driver: the [`Relay`] handle, its worker threads and their sockets. The only module of
//! the crate that touches sockets, threads and clocks.

mod batch;
mod dtls;
mod slab;
mod socket;
mod worker;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rustix::event::{EventfdFlags, epoll, eventfd};

use crate::bundle::Bundle;
use crate::config::RelayConfig;
use crate::control::{
    Allocation, ControlRequest, ControlResponse, IceCredentials, Leg, LegAddr, LegSecurity,
    Protection, RelayEvent, RemoteMedia, SessionId, StreamAddrs,
};
use crate::dtls::{DtlsContext, DtlsIdentity, Fingerprint};
use crate::error::RelayError;
use crate::pool::PortPool;
use crate::srtp::{MasterKey, Suite};
use crate::stats::{SessionStats, WorkerStats};
use socket::{BoundPair, bind_pairs, lock};
use worker::{BoundStream, Command, REPLY_TIMEOUT, Worker, WorkerSetup};

/// A handle on a running relay; cheap to clone, usable from any thread. All calls are
/// synchronous and never wait on packet processing, except the statistics requests, which
/// wait (at most two seconds) for the workers to answer. Dropping the last handle stops the
/// workers and closes every socket.
#[derive(Debug, Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: RelayConfig,
    pool: Arc<Mutex<PortPool>>,
    workers: Vec<WorkerHandle>,
    sessions: Mutex<HashMap<SessionId, SessionRecord>>,
    next_session: AtomicU64,
    events: Receiver<RelayEvent>,
    fingerprint: Fingerprint,
    dtls_jobs: Sender<dtls::DtlsJob>,
    dtls_thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct SessionRecord {
    streams: usize,
    /// Who allocated the session (see [`Relay::allocate_for`]).
    owner: u32,
}

#[derive(Debug)]
struct WorkerHandle {
    commands: Sender<Command>,
    /// Budgeted commands queued and not yet taken by the worker.
    budget_used: Arc<AtomicUsize>,
    wake: Arc<OwnedFd>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WorkerHandle {
    fn wake(&self) {
        let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
    }
}

impl Relay {
    /// Validates the configuration and starts the workers.
    pub fn start(config: RelayConfig) -> Result<Relay, RelayError> {
        config.validate()?;
        let pool = PortPool::new(config.first_rtp_port(), config.pair_count());
        // A session holds at least two pairs, and raises at most one event.
        let max_sessions = pool.capacity() / 2;
        let pool = Arc::new(Mutex::new(pool));
        let (event_sender, events) = crossbeam_channel::bounded(max_sessions.max(1));
        let start_error = |e: std::io::Error| RelayError::Start(e.to_string());
        let identity = DtlsIdentity::generate()
            .map_err(|e| RelayError::Start(format!("DTLS certificate: {e}")))?;
        let fingerprint = identity.fingerprint().clone();
        let dtls_context = DtlsContext::new(identity)
            .map_err(|e| RelayError::Start(format!("DTLS context: {e}")))?;
        let (dtls_jobs, dtls_job_queue) = crossbeam_channel::bounded(dtls::JOB_QUEUE);
        let mut links = Vec::new();
        let mut workers = Vec::new();
        for index in 0..config.worker_count() {
            // Releases bypass the budget, and there are at most `max_sessions` of them queued.
            let (commands, receiver) =
                crossbeam_channel::bounded(config.command_queue + max_sessions + 1);
            let wake = Arc::new(
                eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                    .map_err(|e| start_error(e.into()))?,
            );
            let epoll =
                epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| start_error(e.into()))?;
            let budget_used = Arc::new(AtomicUsize::new(0));
            let (outcomes, dtls_outcomes) = crossbeam_channel::bounded(dtls::OUTCOME_QUEUE);
            links.push(dtls::WorkerLink {
                outcomes,
                wake: wake.clone(),
            });
            let setup = WorkerSetup {
                epoll,
                wake: wake.clone(),
                commands: receiver,
                budget_used: budget_used.clone(),
                pool: pool.clone(),
                events: event_sender.clone(),
                inactivity_timeout: config.inactivity_timeout,
                gso: config.gso,
                offload: socket::offload_state(config.address).map_err(start_error)?,
                index,
                dtls_jobs: dtls_jobs.clone(),
                dtls_outcomes,
            };
            let worker = Worker::new(setup).map_err(start_error)?;
            let thread = std::thread::Builder::new()
                .name(format!("relay-worker-{index}"))
                .spawn(move || worker.run())
                .map_err(start_error)?;
            workers.push(WorkerHandle {
                commands,
                budget_used,
                wake,
                thread: Mutex::new(Some(thread)),
            });
        }
        // Every leg of every session may run one handshake per port.
        let dtls_thread = dtls::spawn(dtls_context, dtls_job_queue, links, max_sessions * 8)
            .map_err(start_error)?;
        Ok(Relay {
            shared: Arc::new(Shared {
                config,
                pool,
                workers,
                sessions: Mutex::new(HashMap::new()),
                next_session: AtomicU64::new(1),
                events,
                fingerprint,
                dtls_jobs,
                dtls_thread: Mutex::new(Some(dtls_thread)),
            }),
        })
    }

    /// The configuration the relay runs with.
    pub fn config(&self) -> &RelayConfig {
        &self.shared.config
    }

    /// Reserves relay ports for a session of `streams` streams (one per SDP `m=` line): each
    /// stream gets an RTP/RTCP port pair per leg.
    pub fn allocate(&self, streams: usize) -> Result<Allocation, RelayError> {
        self.allocate_for(0, streams)
    }

    /// As [`Relay::allocate`], for `owner`: a number of the caller's choosing (a signalling
    /// shard), which [`Relay::owner_of`] gives back while the session lives, so that an
    /// event about the session reaches only its owner.
    pub fn allocate_for(&self, owner: u32, streams: usize) -> Result<Allocation, RelayError> {
        self.check_stream_count(streams, 0)?;
        let session = SessionId(self.shared.next_session.fetch_add(1, Ordering::Relaxed));
        let (bound, addrs) = self.bind_streams(streams)?;
        self.sessions()
            .insert(session, SessionRecord { streams, owner });
        if let Err(error) =
            self.send_budgeted(self.worker_of(session), Command::AddSession(session, bound))
        {
            self.sessions().remove(&session);
            return Err(error);
        }
        Ok(Allocation {
            session,
            streams: addrs,
        })
    }

    /// Tells the relay where `leg`'s peer receives `stream` (from its SDP).
    pub fn update(
        &self,
        session: SessionId,
        stream: usize,
        leg: Leg,
        remote: RemoteMedia,
    ) -> Result<(), RelayError> {
        self.check_stream(session, stream)?;
        self.send_budgeted(
            self.worker_of(session),
            Command::Update(Box::new((session, stream, leg, remote))),
        )
    }

    /// Sets how `leg` of `stream` is protected (plain, SDES-SRTP or DTLS-SRTP, and ICE-lite).
    /// Call [`Relay::update`] with the leg's address (and `rtcp_mux`) first: a DTLS leg
    /// without rtcp-mux runs a second handshake on its RTCP port. Setting the same SDES keys
    /// again keeps the SRTP state; new keys start afresh.
    pub fn protect(
        &self,
        session: SessionId,
        stream: usize,
        leg: Leg,
        security: LegSecurity,
    ) -> Result<(), RelayError> {
        validate(&security)?;
        self.check_stream(session, stream)?;
        self.send_budgeted(
            self.worker_of(session),
            Command::Protect(Box::new((session, stream, leg, security))),
        )
    }

    /// Bundles streams of `leg` onto the transport of one of them (RFC 8843): the
    /// transport stream's port, ICE, DTLS and SRTP carry them all, and what arrives there is
    /// given to the stream it belongs to (see [`crate::bundle`]). `None` unbundles. Protect
    /// the transport's stream as the leg's; the other members' own ports stay unused.
    pub fn bundle(
        &self,
        session: SessionId,
        leg: Leg,
        bundle: Option<Bundle>,
    ) -> Result<(), RelayError> {
        let streams = self.stream_count(session)?;
        if let Some(bundle) = &bundle {
            let outside = std::iter::once(bundle.transport)
                .chain(bundle.members.iter().map(|m| m.stream))
                .find(|stream| *stream >= streams);
            if let Some(stream) = outside {
                return Err(RelayError::UnknownStream {
                    session: session.0,
                    stream,
                });
            }
            if bundle.members.len() > self.shared.config.max_streams_per_session {
                return Err(RelayError::InvalidStreamCount {
                    requested: bundle.members.len(),
                    max: self.shared.config.max_streams_per_session,
                });
            }
        }
        self.send_budgeted(
            self.worker_of(session),
            Command::Bundle(Box::new((session, leg, bundle))),
        )
    }

    /// A fresh master key and salt for `suite` from the system's CSPRNG, for the relay's own
    /// SDES `a=crypto` line.
    pub fn new_sdes_key(&self, suite: Suite) -> Result<MasterKey, RelayError> {
        let mut bytes = [0u8; 32 + 14];
        let (key_len, salt_len) = (suite.master_key_len(), suite.master_salt_len());
        let material = bytes
            .get_mut(..key_len + salt_len)
            .ok_or_else(|| RelayError::InvalidKeys(suite.to_string()))?;
        openssl::rand::rand_bytes(material)
            .map_err(|e| RelayError::Start(format!("CSPRNG: {e}")))?;
        let (key, salt) = material.split_at(key_len);
        let master =
            MasterKey::new(key, salt).map_err(|e| RelayError::InvalidKeys(e.name().into()));
        zeroize::Zeroize::zeroize(&mut bytes);
        master
    }

    /// Fresh ICE credentials for a leg (RFC 8839: a 8-character user fragment and a
    /// 24-character password from the CSPRNG); `remote_ufrag` is the peer's.
    pub fn new_ice_credentials(&self, remote_ufrag: &str) -> Result<IceCredentials, RelayError> {
        const ICE_CHARS: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut random = [0u8; 32];
        openssl::rand::rand_bytes(&mut random)
            .map_err(|e| RelayError::Start(format!("CSPRNG: {e}")))?;
        let text: String = random
            .iter()
            .map(|b| char::from(ICE_CHARS[usize::from(b & 63)]))
            .collect();
        Ok(IceCredentials {
            local_ufrag: text[..8].to_string(),
            local_pwd: text[8..].to_string(),
            remote_ufrag: remote_ufrag.to_string(),
        })
    }

    /// The SHA-256 fingerprint of the relay's DTLS certificate (made at start), for
    /// `a=fingerprint`.
    pub fn dtls_fingerprint(&self) -> &Fingerprint {
        &self.shared.fingerprint
    }

    /// Adds `count` streams to a session (re-INVITE with more `m=` lines); returns their
    /// addresses, numbered after the existing streams.
    pub fn add_streams(
        &self,
        session: SessionId,
        count: usize,
    ) -> Result<Vec<StreamAddrs>, RelayError> {
        let existing = self.stream_count(session)?;
        self.check_stream_count(count, existing)?;
        let (bound, addrs) = self.bind_streams(count)?;
        {
            let mut records = self.sessions();
            let Some(record) = records.get_mut(&session) else {
                drop(records);
                self.give_back(bound);
                return Err(RelayError::UnknownSession(session.0));
            };
            record.streams += count;
        }
        if let Err(error) =
            self.send_budgeted(self.worker_of(session), Command::AddStreams(session, bound))
        {
            if let Some(record) = self.sessions().get_mut(&session) {
                record.streams -= count;
            }
            return Err(error);
        }
        Ok(addrs)
    }

    /// The owner `session` was allocated for; `None` once it is released.
    pub fn owner_of(&self, session: SessionId) -> Option<u32> {
        self.sessions().get(&session).map(|record| record.owner)
    }

    /// Ends a session: its worker closes the sockets and returns the ports to the pool.
    /// Unknown (or already released) sessions are ignored. Never refused.
    pub fn release(&self, session: SessionId) {
        if self.sessions().remove(&session).is_none() {
            return;
        }
        let worker = self.worker_of(session);
        if let Some(handle) = self.shared.workers.get(worker) {
            // Cannot be full: the channel has room for one release per possible session.
            let _ = handle.commands.try_send(Command::Release(session));
            handle.wake();
        }
    }

    /// The statistics of every stream and leg of a session.
    pub fn session_stats(&self, session: SessionId) -> Result<SessionStats, RelayError> {
        let worker = self.worker_of(session);
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send_budgeted(worker, Command::SessionStats(session, reply))?;
        match answer.recv_timeout(REPLY_TIMEOUT) {
            Ok(Some(stats)) => Ok(stats),
            Ok(None) => Err(RelayError::UnknownSession(session.0)),
            Err(_) => Err(RelayError::WorkerUnavailable(worker)),
        }
    }

    /// One snapshot per worker; [`WorkerStats::sum`] adds them up.
    pub fn worker_stats(&self) -> Result<Vec<WorkerStats>, RelayError> {
        let mut answers = Vec::with_capacity(self.shared.workers.len());
        for index in 0..self.shared.workers.len() {
            let (reply, answer) = crossbeam_channel::bounded(1);
            self.send_budgeted(index, Command::WorkerStats(reply))?;
            answers.push(answer);
        }
        answers
            .into_iter()
            .enumerate()
            .map(|(index, answer)| {
                answer
                    .recv_timeout(REPLY_TIMEOUT)
                    .map_err(|_| RelayError::WorkerUnavailable(index))
            })
            .collect()
    }

    /// The next event, if one is waiting.
    pub fn poll_event(&self) -> Option<RelayEvent> {
        self.shared.events.try_recv().ok()
    }

    /// The next event, waiting up to `timeout` for one.
    pub fn wait_event(&self, timeout: Duration) -> Option<RelayEvent> {
        self.shared.events.recv_timeout(timeout).ok()
    }

    /// Port pairs in the pool, and how many are free now.
    pub fn port_pairs(&self) -> (usize, usize) {
        let pool = lock(&self.shared.pool);
        (pool.capacity(), pool.free())
    }

    /// Sessions allocated and not released.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Executes a request as it would arrive over a network.
    pub fn execute(&self, request: ControlRequest) -> ControlResponse {
        let result = match request {
            ControlRequest::Allocate { streams } => {
                self.allocate(streams).map(ControlResponse::Allocated)
            }
            ControlRequest::Update {
                session,
                stream,
                leg,
                remote,
            } => self
                .update(session, stream, leg, remote)
                .map(|()| ControlResponse::Updated),
            ControlRequest::AddStreams { session, count } => self
                .add_streams(session, count)
                .map(ControlResponse::StreamsAdded),
            ControlRequest::Protect {
                session,
                stream,
                leg,
                security,
            } => self
                .protect(session, stream, leg, *security)
                .map(|()| ControlResponse::Protected),
            ControlRequest::Bundle {
                session,
                leg,
                bundle,
            } => self
                .bundle(session, leg, bundle)
                .map(|()| ControlResponse::Bundled),
            ControlRequest::Release { session } => {
                self.release(session);
                Ok(ControlResponse::Released)
            }
            ControlRequest::SessionStats { session } => self
                .session_stats(session)
                .map(ControlResponse::SessionStats),
            ControlRequest::WorkerStats => self.worker_stats().map(ControlResponse::WorkerStats),
        };
        result.unwrap_or_else(ControlResponse::Error)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionRecord>> {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn worker_of(&self, session: SessionId) -> usize {
        let workers = self.shared.workers.len().max(1) as u64;
        (session.0 % workers) as usize
    }

    /// How many streams `session` has.
    fn stream_count(&self, session: SessionId) -> Result<usize, RelayError> {
        self.sessions()
            .get(&session)
            .map(|r| r.streams)
            .ok_or(RelayError::UnknownSession(session.0))
    }

    /// `stream` is one of `session`'s.
    fn check_stream(&self, session: SessionId, stream: usize) -> Result<(), RelayError> {
        if stream >= self.stream_count(session)? {
            return Err(RelayError::UnknownStream {
                session: session.0,
                stream,
            });
        }
        Ok(())
    }

    fn check_stream_count(&self, requested: usize, existing: usize) -> Result<(), RelayError> {
        let max = self.shared.config.max_streams_per_session;
        if requested == 0 || existing.saturating_add(requested) > max {
            return Err(RelayError::InvalidStreamCount {
                requested,
                max: max.saturating_sub(existing),
            });
        }
        Ok(())
    }

    /// Binds two pairs per stream (leg A, leg B) and returns them with their addresses.
    fn bind_streams(
        &self,
        streams: usize,
    ) -> Result<(Vec<BoundStream>, Vec<StreamAddrs>), RelayError> {
        let config = &self.shared.config;
        let pairs = bind_pairs(
            &self.shared.pool,
            config.address,
            streams * 2,
            config.socket_receive_buffer,
        )?;
        let ip = config.address;
        let leg_addr = |pair: &BoundPair| LegAddr {
            rtp: std::net::SocketAddr::new(ip, pair.rtp_port),
            rtcp: std::net::SocketAddr::new(ip, pair.rtp_port.wrapping_add(1)),
        };
        let mut bound = Vec::with_capacity(streams);
        let mut addrs = Vec::with_capacity(streams);
        let mut pairs = pairs.into_iter();
        while let (Some(a), Some(b)) = (pairs.next(), pairs.next()) {
            addrs.push(StreamAddrs {
                a: leg_addr(&a),
                b: leg_addr(&b),
            });
            bound.push(BoundStream { legs: [a, b] });
        }
        Ok((bound, addrs))
    }

    fn give_back(&self, bound: Vec<BoundStream>) {
        let ports: Vec<u16> = bound
            .iter()
            .flat_map(|s| s.legs.iter().map(|l| l.rtp_port))
            .collect();
        drop(bound);
        let mut pool = lock(&self.shared.pool);
        for port in ports {
            pool.put(port);
        }
    }

    /// Sends a budgeted command; refused with `WorkerBusy` when the worker's budget is used
    /// up. Sockets carried by a refused command are closed and their ports returned.
    fn send_budgeted(&self, worker: usize, command: Command) -> Result<(), RelayError> {
        let Some(handle) = self.shared.workers.get(worker) else {
            return Err(RelayError::WorkerUnavailable(worker));
        };
        let budget = self.shared.config.command_queue;
        let reserved = handle
            .budget_used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < budget).then_some(used + 1)
            })
            .is_ok();
        let refused = if reserved {
            match handle.commands.try_send(command) {
                Ok(()) => {
                    handle.wake();
                    return Ok(());
                }
                Err(error) => {
                    handle.budget_used.fetch_sub(1, Ordering::AcqRel);
                    let gone = matches!(error, crossbeam_channel::TrySendError::Disconnected(_));
                    (
                        error.into_inner(),
                        if gone {
                            RelayError::WorkerUnavailable(worker)
                        } else {
                            RelayError::WorkerBusy(worker)
                        },
                    )
                }
            }
        } else {
            (command, RelayError::WorkerBusy(worker))
        };
        let (command, error) = refused;
        match command {
            Command::AddSession(_, bound) | Command::AddStreams(_, bound) => self.give_back(bound),
            _ => {}
        }
        Err(error)
    }
}

/// Refuses key material that cannot work, before it reaches a worker.
fn validate(security: &LegSecurity) -> Result<(), RelayError> {
    let Protection::Sdes(keys) = &security.protection else {
        return Ok(());
    };
    let profile = keys.suite.profile();
    if keys.send.is_empty() {
        return Err(RelayError::InvalidKeys("no key to send with".into()));
    }
    for set in [&keys.send, &keys.receive] {
        if set.iter().any(|k| !k.fits(profile)) {
            return Err(RelayError::InvalidKeys(format!(
                "key or salt length does not fit {}",
                keys.suite
            )));
        }
        let mki_lengths: Vec<usize> = set.iter().map(|k| k.mki().map_or(0, <[u8]>::len)).collect();
        let first = mki_lengths.first().copied().unwrap_or(0);
        if mki_lengths.iter().any(|l| *l != first) || (set.len() > 1 && first == 0) {
            return Err(RelayError::InvalidKeys(
                "several keys need MKIs of one length".into(),
            ));
        }
    }
    Ok(())
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.dtls_jobs.try_send(dtls::DtlsJob::Shutdown);
        let dtls_thread = self
            .dtls_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = dtls_thread {
            let _ = thread.join();
        }
        for handle in &self.workers {
            let _ = handle.commands.try_send(Command::Shutdown);
            handle.wake();
        }
        for handle in &self.workers {
            let thread = handle
                .thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
    }
}
