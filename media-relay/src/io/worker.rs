//! One relay worker: a thread that owns its sessions and their sockets, waits on epoll
//! (level-triggered), receives in batches, asks each session what to do with each datagram,
//! and sends in batches. Control commands arrive on a bounded channel that the worker
//! drains between batches; an eventfd wakes it when one is queued.

use std::collections::HashMap;
use std::io;
use std::net::UdpSocket;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use quinn_udp::{Transmit, UdpSocketState};
use rustix::event::epoll;

use crate::bundle::Bundle;
use crate::control::{Leg, LegSecurity, RelayEvent, RemoteMedia, SessionId};
use crate::dtls::{DtlsDrop, DtlsError};
use crate::io::batch::{Queued, RECV_BATCH, RecvBatch, SEND_QUEUE, SendQueue, send_many};
use crate::io::dtls::{DtlsJob, DtlsKey, DtlsOutcome};
use crate::io::slab::Slab;
use crate::io::socket::{BoundPair, lock};
use crate::packet::Port;
use crate::pool::PortPool;
use crate::session::{Arrival, MAX_GROWTH, RelaySession, Verdict};
use crate::stats::{DropReason, SessionStats, WorkerStats};

/// The epoll token of the wake-up eventfd (socket tokens are slot indexes).
const WAKE_TOKEN: u64 = u64::MAX;
/// Longest sleep: the inactivity check runs at least this often.
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// Commands handled per loop iteration, so that a burst of them cannot starve the packets.
const COMMANDS_PER_ROUND: usize = 256;
/// Ready sockets served between two looks at the command queue.
const SOCKETS_BETWEEN_COMMANDS: usize = 64;
/// Batches read from one socket per readiness report before moving to the next socket.
const BATCHES_PER_SOCKET: usize = 4;
/// How long a worker thread may take to answer a statistics request.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A stream's four sockets as handed to the worker: index 0 = leg A, 1 = leg B.
#[derive(Debug)]
pub(crate) struct BoundStream {
    pub legs: [BoundPair; 2],
}

/// What the control side asks of a worker.
#[derive(Debug)]
pub(crate) enum Command {
    AddSession(SessionId, Vec<BoundStream>),
    AddStreams(SessionId, Vec<BoundStream>),
    Update(Box<(SessionId, usize, Leg, RemoteMedia)>),
    Protect(Box<(SessionId, usize, Leg, LegSecurity)>),
    Bundle(Box<(SessionId, Leg, Option<Bundle>)>),
    /// Not counted against the command budget: it must never be refused.
    Release(SessionId),
    SessionStats(SessionId, Sender<Option<SessionStats>>),
    WorkerStats(Sender<WorkerStats>),
    Shutdown,
}

impl Command {
    /// Whether the command counts against the worker's command budget.
    pub fn is_budgeted(&self) -> bool {
        !matches!(self, Command::Release(_) | Command::Shutdown)
    }
}

#[derive(Debug)]
struct SocketEntry {
    socket: UdpSocket,
    session: usize,
    stream: usize,
    leg: Leg,
    port: Port,
}

#[derive(Debug)]
struct SessionEntry {
    id: SessionId,
    session: RelaySession,
    /// Per stream: socket tokens indexed by [leg][port].
    tokens: Vec<[[usize; 2]; 2]>,
    rtp_ports: Vec<u16>,
}

fn port_index(port: Port) -> usize {
    match port {
        Port::Rtp => 0,
        Port::Rtcp => 1,
    }
}

/// Everything a worker thread is started with.
#[derive(Debug)]
pub(crate) struct WorkerSetup {
    pub epoll: OwnedFd,
    pub wake: Arc<OwnedFd>,
    pub commands: Receiver<Command>,
    pub budget_used: Arc<AtomicUsize>,
    pub pool: Arc<Mutex<PortPool>>,
    pub events: Sender<RelayEvent>,
    pub inactivity_timeout: Duration,
    pub gso: bool,
    /// The batched-I/O state used with every socket of the worker.
    pub offload: UdpSocketState,
    /// The worker's number (DTLS outcomes come back to it by this number).
    pub index: usize,
    pub dtls_jobs: Sender<DtlsJob>,
    pub dtls_outcomes: Receiver<DtlsOutcome>,
}

#[derive(Debug)]
pub(crate) struct Worker {
    setup: WorkerSetup,
    sockets: Slab<SocketEntry>,
    sessions: Slab<SessionEntry>,
    by_id: HashMap<SessionId, usize>,
    recv: RecvBatch,
    /// Scratch space for the sessions' packet handling: RTCP packets with SDES are rewritten
    /// there (a rewritten packet can be up to twice as long as the 64 KiB a datagram can
    /// be), STUN answers written.
    scratch: Box<[u8]>,
    send: SendQueue,
    counters: WorkerStats,
}

impl Worker {
    pub fn new(setup: WorkerSetup) -> io::Result<Worker> {
        epoll::add(
            &setup.epoll,
            &*setup.wake,
            epoll::EventData::new_u64(WAKE_TOKEN),
            epoll::EventFlags::IN,
        )?;
        Ok(Worker {
            setup,
            sockets: Slab::new(),
            sessions: Slab::new(),
            by_id: HashMap::new(),
            recv: RecvBatch::new(),
            scratch: vec![0u8; 2 * 65_536 + MAX_GROWTH].into_boxed_slice(),
            send: SendQueue::new(),
            counters: WorkerStats::default(),
        })
    }

    /// The worker's loop; returns on `Shutdown` or when every control handle is gone.
    pub fn run(mut self) {
        let mut ready: Vec<epoll::Event> = Vec::with_capacity(1024);
        let mut next_housekeeping = Instant::now() + HOUSEKEEPING;
        loop {
            let now = Instant::now();
            let sleep = next_housekeeping.saturating_duration_since(now);
            let timeout = rustix::time::Timespec {
                tv_sec: sleep.as_secs() as _,
                tv_nsec: sleep.subsec_nanos() as _,
            };
            ready.clear();
            match epoll::wait(
                &self.setup.epoll,
                rustix::buffer::spare_capacity(&mut ready),
                Some(&timeout),
            ) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
            // Commands first: an update queued before a packet was sent must apply to it.
            if !self.handle_commands() {
                return;
            }
            for (index, event) in ready.iter().enumerate() {
                let token = event.data.u64();
                if token == WAKE_TOKEN {
                    let mut value = [0u8; 8];
                    let _ = rustix::io::read(&*self.setup.wake, &mut value);
                } else if let Ok(token) = usize::try_from(token) {
                    self.handle_readable(token);
                }
                // Under overload a round over many busy sockets takes long: keep answering
                // control requests meanwhile.
                if index % SOCKETS_BETWEEN_COMMANDS == SOCKETS_BETWEEN_COMMANDS - 1
                    && !self.handle_commands()
                {
                    return;
                }
            }
            let now = Instant::now();
            if now >= next_housekeeping {
                self.check_inactivity(now);
                next_housekeeping = now + HOUSEKEEPING;
            }
        }
    }

    /// Receives from one ready socket and forwards what its session says to.
    fn handle_readable(&mut self, token: usize) {
        for _ in 0..BATCHES_PER_SOCKET {
            let Some(entry) = self.sockets.get(token) else {
                return;
            };
            let (session_slot, stream, leg, port) =
                (entry.session, entry.stream, entry.leg, entry.port);
            let io = &self.setup.offload;
            let received = self
                .recv
                .receive(|bufs, meta| io.recv((&entry.socket).into(), bufs, meta));
            let count = match received {
                Ok(count) => count,
                Err(_) => return, // WouldBlock (spurious readiness) or a transient error.
            };
            self.counters.receive_calls += 1;
            let now = Instant::now();
            for index in 0..count {
                for (source, datagram) in self.recv.datagrams(index) {
                    self.counters.packets_received += 1;
                    self.counters.bytes_received += datagram.len() as u64;
                    if self.sessions.get(session_slot).is_none() {
                        continue;
                    }
                    // The packet is converted where it is sent from: in the send queue.
                    let room = 2 * datagram.len() + MAX_GROWTH;
                    if self.send.reserve(room).is_none() {
                        Self::flush(
                            &self.setup,
                            &mut self.send,
                            &self.sockets,
                            &mut self.sessions,
                            &mut self.counters,
                        );
                    }
                    let (Some(buf), Some(entry)) =
                        (self.send.reserve(room), self.sessions.get_mut(session_slot))
                    else {
                        self.counters.drops.add(DropReason::Malformed, 1);
                        continue;
                    };
                    let Some(copy) = buf.get_mut(..datagram.len()) else {
                        continue;
                    };
                    copy.copy_from_slice(datagram);
                    let arrival = Arrival {
                        now,
                        stream,
                        leg,
                        port,
                        source,
                    };
                    let verdict = entry.session.handle_packet(
                        arrival,
                        buf,
                        datagram.len(),
                        &mut self.scratch,
                    );
                    let (send_token, to, len, send_stream, to_leg) = match verdict {
                        Verdict::Forward {
                            stream: send_stream,
                            leg: to_leg,
                            port: to_port,
                            to,
                            len,
                        } => {
                            let Some(from_token) = entry
                                .tokens
                                .get(send_stream)
                                .map(|t| t[to_leg.index()][port_index(to_port)])
                            else {
                                continue;
                            };
                            (from_token, to, len, send_stream, to_leg)
                        }
                        Verdict::Reply { len } => {
                            self.counters.stun_answered += 1;
                            (token, source, len, stream, leg)
                        }
                        Verdict::Dtls => {
                            let key = DtlsKey {
                                session: entry.id,
                                stream,
                                leg,
                                port,
                            };
                            let job = DtlsJob::Datagram {
                                key,
                                bytes: datagram.to_vec(),
                            };
                            if self.setup.dtls_jobs.try_send(job).is_err() {
                                entry.session.record_dtls_queue_full(stream, leg);
                                self.counters.drops.add(DropReason::Dtls, 1);
                                self.counters.dtls_drops.add(DtlsDrop::QueueFull, 1);
                            }
                            continue;
                        }
                        Verdict::Drop(reason) => {
                            self.counters.drops.add(reason, 1);
                            continue;
                        }
                        Verdict::DropSrtp(error) => {
                            self.counters.drops.add(DropReason::Srtp, 1);
                            self.counters.srtp_drops.add(error, 1);
                            continue;
                        }
                        Verdict::DropDtls(reason) => {
                            self.counters.drops.add(DropReason::Dtls, 1);
                            self.counters.dtls_drops.add(reason, 1);
                            continue;
                        }
                    };
                    if !self
                        .send
                        .commit(send_token, to, len, session_slot, send_stream, to_leg)
                    {
                        entry.session.record_send_failed(send_stream, to_leg, 1);
                        self.counters.drops.add(DropReason::SendFailed, 1);
                    }
                }
            }
            Self::flush(
                &self.setup,
                &mut self.send,
                &self.sockets,
                &mut self.sessions,
                &mut self.counters,
            );
            if count < RECV_BATCH {
                return;
            }
        }
    }

    fn flush(
        setup: &WorkerSetup,
        send: &mut SendQueue,
        sockets: &Slab<SocketEntry>,
        sessions: &mut Slab<SessionEntry>,
        counters: &mut WorkerStats,
    ) {
        if send.is_empty() {
            return;
        }
        let io = &setup.offload;
        let max_segments = io.max_gso_segments();
        if !setup.gso {
            send.drain_by_socket(SEND_QUEUE, |run, addresses| {
                let Some(first) = run.queued.first().copied() else {
                    return;
                };
                let sent = match sockets.get(run.token) {
                    Some(socket) if run.queued.len() == 1 => {
                        let transmit = Transmit {
                            destination: first.to,
                            ecn: None,
                            contents: run.datagram(&first),
                            segment_size: None,
                            src_ip: None,
                        };
                        counters.send_calls += 1;
                        usize::from(io.try_send((&socket.socket).into(), &transmit).is_ok())
                    }
                    Some(socket) => {
                        counters.send_calls += 1;
                        send_many(&socket.socket, &run, addresses).unwrap_or(0)
                    }
                    None => 0,
                };
                let bytes: usize = run.queued.iter().take(sent).map(|q| q.len).sum();
                let failed = run.queued.len().saturating_sub(sent);
                Self::record(
                    sessions,
                    counters,
                    &first,
                    sent as u64,
                    bytes as u64,
                    failed as u64,
                );
            });
            return;
        }
        send.drain(max_segments, |run| {
            let q = run.first;
            let sent = match sockets.get(q.token) {
                Some(socket) => {
                    let transmit = Transmit {
                        destination: q.to,
                        ecn: None,
                        contents: run.contents,
                        segment_size: (run.datagrams > 1).then_some(run.segment_size),
                        src_ip: None,
                    };
                    counters.send_calls += 1;
                    io.try_send((&socket.socket).into(), &transmit).is_ok()
                }
                None => false,
            };
            let (packets, bytes) = (run.datagrams as u64, run.contents.len() as u64);
            if sent {
                Self::record(sessions, counters, &q, packets, bytes, 0);
            } else {
                Self::record(sessions, counters, &q, 0, 0, packets);
            }
        });
    }

    /// Accounts the outcome of sending datagrams queued from one socket.
    fn record(
        sessions: &mut Slab<SessionEntry>,
        counters: &mut WorkerStats,
        queued: &Queued,
        sent: u64,
        bytes: u64,
        failed: u64,
    ) {
        if let Some(entry) = sessions.get_mut(queued.session) {
            if sent > 0 {
                entry
                    .session
                    .record_sent(queued.stream, queued.leg, sent, bytes);
            }
            if failed > 0 {
                entry
                    .session
                    .record_send_failed(queued.stream, queued.leg, failed);
            }
        }
        counters.packets_forwarded += sent;
        counters.bytes_forwarded += bytes;
        counters.drops.add(DropReason::SendFailed, failed);
    }

    /// Handles queued commands and DTLS outcomes; false when the worker must stop.
    fn handle_commands(&mut self) -> bool {
        self.handle_dtls_outcomes();
        for _ in 0..COMMANDS_PER_ROUND {
            let command = match self.setup.commands.try_recv() {
                Ok(command) => command,
                Err(crossbeam_channel::TryRecvError::Empty) => return true,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return false,
            };
            if command.is_budgeted() {
                self.setup.budget_used.fetch_sub(1, Ordering::AcqRel);
            }
            match command {
                Command::AddSession(id, streams) => self.add_session(id, streams),
                Command::AddStreams(id, streams) => self.add_streams(id, streams),
                Command::Update(update) => {
                    let (id, stream, leg, remote) = *update;
                    if let Some(entry) = self
                        .by_id
                        .get(&id)
                        .and_then(|slot| self.sessions.get_mut(*slot))
                    {
                        entry.session.update(stream, leg, remote);
                    }
                }
                Command::Protect(protect) => {
                    let (id, stream, leg, security) = *protect;
                    self.protect(id, stream, leg, &security);
                }
                Command::Bundle(bundle) => {
                    let (id, leg, bundle) = *bundle;
                    if let Some(entry) = self
                        .by_id
                        .get(&id)
                        .and_then(|slot| self.sessions.get_mut(*slot))
                    {
                        // Checked by the handle against the session's streams.
                        let _ = entry.session.bundle(leg, bundle.as_ref());
                    }
                }
                Command::Release(id) => self.release(id),
                Command::SessionStats(id, reply) => {
                    let stats = self
                        .by_id
                        .get(&id)
                        .and_then(|slot| self.sessions.get(*slot))
                        .map(|e| e.session.stats());
                    let _ = reply.try_send(stats);
                }
                Command::WorkerStats(reply) => {
                    let _ = reply.try_send(self.stats());
                }
                Command::Shutdown => return false,
            }
        }
        true
    }

    /// Applies a leg's protection and starts or stops its DTLS endpoints.
    fn protect(&mut self, id: SessionId, stream: usize, leg: Leg, security: &LegSecurity) {
        let Some(entry) = self
            .by_id
            .get(&id)
            .and_then(|slot| self.sessions.get_mut(*slot))
        else {
            return;
        };
        // Refused settings were checked by the handle; nothing else can fail here.
        let Ok(changes) = entry.session.protect_leg(stream, leg, security) else {
            return;
        };
        let key = |port| DtlsKey {
            session: id,
            stream,
            leg,
            port,
        };
        for port in changes.stop {
            let _ = self.setup.dtls_jobs.try_send(DtlsJob::Stop(key(port)));
        }
        for start in changes.start {
            let job = DtlsJob::Start {
                worker: self.setup.index,
                key: key(start.port),
                role: start.role,
                fingerprint: start.fingerprint,
            };
            if self.setup.dtls_jobs.try_send(job).is_err() {
                entry
                    .session
                    .dtls_failed(stream, leg, start.port, DtlsError::Handshake);
            }
        }
    }

    /// Handles what the DTLS thread reported: records to send, keys, failures.
    fn handle_dtls_outcomes(&mut self) {
        for _ in 0..COMMANDS_PER_ROUND {
            let Ok(outcome) = self.setup.dtls_outcomes.try_recv() else {
                return;
            };
            let key = match &outcome {
                DtlsOutcome::Transmit { key, .. }
                | DtlsOutcome::Connected { key, .. }
                | DtlsOutcome::Failed { key, .. } => *key,
            };
            let Some(entry) = self
                .by_id
                .get(&key.session)
                .and_then(|slot| self.sessions.get_mut(*slot))
            else {
                continue;
            };
            match outcome {
                DtlsOutcome::Transmit { bytes, .. } => {
                    let to = entry
                        .session
                        .dtls_destination(key.stream, key.leg, key.port);
                    let socket = entry
                        .tokens
                        .get(key.stream)
                        .map(|t| t[key.leg.index()][port_index(key.port)])
                        .and_then(|token| self.sockets.get(token));
                    if let (Some(to), Some(socket)) = (to, socket) {
                        let _ = socket.socket.send_to(&bytes, to);
                    }
                }
                DtlsOutcome::Connected { keys, .. } => {
                    self.counters.dtls_handshakes += 1;
                    entry
                        .session
                        .dtls_connected(key.stream, key.leg, key.port, &keys);
                }
                DtlsOutcome::Failed { error, .. } => {
                    self.counters.dtls_failures += 1;
                    entry
                        .session
                        .dtls_failed(key.stream, key.leg, key.port, error);
                }
            }
        }
    }

    fn stats(&self) -> WorkerStats {
        let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        WorkerStats {
            sessions: self.sessions.len() as u64,
            sockets: self.sockets.len() as u64,
            cpu_time_ns: u64::try_from(cpu.tv_sec).unwrap_or(0) * 1_000_000_000
                + u64::try_from(cpu.tv_nsec).unwrap_or(0),
            ..self.counters
        }
    }

    fn add_session(&mut self, id: SessionId, streams: Vec<BoundStream>) {
        let session = RelaySession::new(Instant::now(), 0);
        let slot = self.sessions.insert(SessionEntry {
            id,
            session,
            tokens: Vec::new(),
            rtp_ports: Vec::new(),
        });
        self.by_id.insert(id, slot);
        self.attach_streams(slot, streams);
    }

    fn add_streams(&mut self, id: SessionId, streams: Vec<BoundStream>) {
        match self.by_id.get(&id) {
            Some(slot) => self.attach_streams(*slot, streams),
            None => self.close_unattached(streams),
        }
    }

    /// Registers the sockets of new streams of the session in slot `slot`. A socket that
    /// cannot be registered stays silent (its packets are never read) but is still released
    /// with its session.
    fn attach_streams(&mut self, slot: usize, streams: Vec<BoundStream>) {
        let Some(entry) = self.sessions.get_mut(slot) else {
            return self.close_unattached(streams);
        };
        let first_stream = entry.session.stream_count();
        entry.session.add_streams(streams.len());
        for (offset, stream) in streams.into_iter().enumerate() {
            let stream_index = first_stream + offset;
            let mut tokens = [[usize::MAX; 2]; 2];
            for (leg, pair) in [Leg::A, Leg::B].into_iter().zip(stream.legs) {
                entry.rtp_ports.push(pair.rtp_port);
                for (port, bound) in [(Port::Rtp, pair.rtp), (Port::Rtcp, pair.rtcp)] {
                    let socket_entry = SocketEntry {
                        socket: bound,
                        session: slot,
                        stream: stream_index,
                        leg,
                        port,
                    };
                    let token = self.sockets.insert(socket_entry);
                    if let Some(registered) = self.sockets.get(token) {
                        let _ = epoll::add(
                            &self.setup.epoll,
                            &registered.socket,
                            epoll::EventData::new_u64(token as u64),
                            epoll::EventFlags::IN,
                        );
                    }
                    tokens[leg.index()][port_index(port)] = token;
                }
            }
            entry.tokens.push(tokens);
        }
    }

    fn release(&mut self, id: SessionId) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        let Some(entry) = self.sessions.remove(slot) else {
            return;
        };
        if entry.session.uses_dtls() {
            let _ = self.setup.dtls_jobs.try_send(DtlsJob::StopSession(id));
        }
        for token in entry.tokens.iter().flatten().flatten() {
            if let Some(socket) = self.sockets.remove(*token) {
                let _ = epoll::delete(&self.setup.epoll, &socket.socket);
                drop(socket);
            }
        }
        // Only now that the sockets are closed may the ports be handed out again.
        self.return_ports(entry.rtp_ports.iter().copied());
    }

    /// Closes the sockets of streams whose session is gone, then returns their ports.
    fn close_unattached(&self, streams: Vec<BoundStream>) {
        let ports: Vec<u16> = streams
            .iter()
            .flat_map(|s| s.legs.iter().map(|l| l.rtp_port))
            .collect();
        drop(streams);
        self.return_ports(ports.into_iter());
    }

    fn return_ports(&self, ports: impl Iterator<Item = u16>) {
        let mut pool = lock(&self.setup.pool);
        for port in ports {
            pool.put(port);
        }
    }

    fn check_inactivity(&mut self, now: Instant) {
        let timeout = self.setup.inactivity_timeout;
        for entry in self.sessions.iter_mut() {
            if entry.session.poll_inactive(now, timeout) {
                match self.setup.events.try_send(RelayEvent::Inactive(entry.id)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        self.counters.events_lost += 1
                    }
                }
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let ids: Vec<SessionId> = self.by_id.keys().copied().collect();
        for id in ids {
            self.release(id);
        }
    }
}
