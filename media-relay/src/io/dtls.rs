//! The DTLS thread: it runs every DTLS-SRTP handshake of the relay, so that certificate
//! signatures and key agreements never stall a packet loop. Workers hand it the DTLS
//! records their legs receive; it answers with records to send (the worker sends them from
//! the leg's socket), and with the exported keys or the failure when a handshake ends.
//!
//! Everything crossing is bounded: the job queue (a worker drops records when it is full),
//! each worker's outcome queue, the number of endpoints, and how long a handshake may take.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::control::{Leg, SessionId};
use crate::dtls::{
    DtlsContext, DtlsEndpoint, DtlsError, DtlsEvent, DtlsRole, DtlsSrtpKeys, Fingerprint,
};
use crate::packet::Port;

/// How often handshakes in progress get a chance to retransmit (a client's first flight
/// goes again on the first ticks, see `DtlsEndpoint::handle_timeout`).
const TICK: Duration = Duration::from_millis(200);
/// A handshake that has not completed after this long fails.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Jobs queued for the thread before workers drop DTLS records.
pub(crate) const JOB_QUEUE: usize = 4096;
/// Outcomes queued for one worker.
pub(crate) const OUTCOME_QUEUE: usize = 4096;

/// One DTLS association: a port of a leg of a stream of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DtlsKey {
    pub session: SessionId,
    pub stream: usize,
    pub leg: Leg,
    pub port: Port,
}

/// What workers ask of the thread.
#[derive(Debug)]
pub(crate) enum DtlsJob {
    Start {
        worker: usize,
        key: DtlsKey,
        role: DtlsRole,
        fingerprint: Fingerprint,
    },
    Datagram {
        key: DtlsKey,
        bytes: Vec<u8>,
    },
    Stop(DtlsKey),
    StopSession(SessionId),
    Shutdown,
}

/// What the thread tells a worker.
#[derive(Debug)]
pub(crate) enum DtlsOutcome {
    Transmit {
        key: DtlsKey,
        bytes: Vec<u8>,
    },
    Connected {
        key: DtlsKey,
        keys: Box<DtlsSrtpKeys>,
    },
    Failed {
        key: DtlsKey,
        error: DtlsError,
    },
}

/// A worker's outcome queue and the eventfd that wakes it.
#[derive(Debug, Clone)]
pub(crate) struct WorkerLink {
    pub outcomes: Sender<DtlsOutcome>,
    pub wake: Arc<OwnedFd>,
}

struct Association {
    worker: usize,
    endpoint: DtlsEndpoint,
    started: Instant,
}

/// Starts the thread; it stops on [`DtlsJob::Shutdown`] or when every sender is gone.
pub(crate) fn spawn(
    context: DtlsContext,
    jobs: Receiver<DtlsJob>,
    workers: Vec<WorkerLink>,
    max_associations: usize,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("relay-dtls".into())
        .spawn(move || run(&context, &jobs, &workers, max_associations))
}

fn run(context: &DtlsContext, jobs: &Receiver<DtlsJob>, workers: &[WorkerLink], max: usize) {
    let mut associations: HashMap<DtlsKey, Association> = HashMap::new();
    let mut next_tick = Instant::now() + TICK;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match jobs.recv_timeout(wait) {
            Ok(DtlsJob::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(DtlsJob::Start {
                worker,
                key,
                role,
                fingerprint,
            }) => {
                associations.remove(&key);
                if associations.len() >= max {
                    send(
                        workers,
                        worker,
                        DtlsOutcome::Failed {
                            key,
                            error: DtlsError::Handshake,
                        },
                    );
                    continue;
                }
                match DtlsEndpoint::new(context, role, fingerprint) {
                    Ok(endpoint) => {
                        let association = Association {
                            worker,
                            endpoint,
                            started: Instant::now(),
                        };
                        associations.insert(key, association);
                        flush(workers, key, &mut associations);
                    }
                    Err(error) => send(workers, worker, DtlsOutcome::Failed { key, error }),
                }
            }
            Ok(DtlsJob::Datagram { key, bytes }) => {
                if let Some(association) = associations.get_mut(&key) {
                    association.endpoint.handle_datagram(&bytes);
                    flush(workers, key, &mut associations);
                }
            }
            Ok(DtlsJob::Stop(key)) => {
                associations.remove(&key);
            }
            Ok(DtlsJob::StopSession(session)) => {
                associations.retain(|key, _| key.session != session);
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + TICK;
            let handshaking: Vec<DtlsKey> = associations
                .iter()
                .filter(|(_, a)| a.endpoint.is_handshaking())
                .map(|(key, _)| *key)
                .collect();
            for key in handshaking {
                let Some(association) = associations.get_mut(&key) else {
                    continue;
                };
                if now.duration_since(association.started) > HANDSHAKE_TIMEOUT {
                    let worker = association.worker;
                    associations.remove(&key);
                    send(
                        workers,
                        worker,
                        DtlsOutcome::Failed {
                            key,
                            error: DtlsError::Handshake,
                        },
                    );
                    continue;
                }
                association.endpoint.handle_timeout();
                flush(workers, key, &mut associations);
            }
        }
    }
}

/// Passes what an endpoint produced to its worker; failed endpoints are forgotten.
fn flush(workers: &[WorkerLink], key: DtlsKey, associations: &mut HashMap<DtlsKey, Association>) {
    let Some(association) = associations.get_mut(&key) else {
        return;
    };
    let worker = association.worker;
    while let Some(bytes) = association.endpoint.poll_transmit() {
        send(workers, worker, DtlsOutcome::Transmit { key, bytes });
    }
    let mut failed = false;
    while let Some(event) = association.endpoint.poll_event() {
        let outcome = match event {
            DtlsEvent::Connected(keys) => DtlsOutcome::Connected {
                key,
                keys: Box::new(keys),
            },
            DtlsEvent::Failed(error) => {
                failed = true;
                DtlsOutcome::Failed { key, error }
            }
        };
        send(workers, worker, outcome);
    }
    if failed {
        associations.remove(&key);
    }
}

fn send(workers: &[WorkerLink], worker: usize, outcome: DtlsOutcome) {
    if let Some(link) = workers.get(worker) {
        // A full queue loses the record; the handshake retransmits.
        if link.outcomes.try_send(outcome).is_ok() {
            let _ = rustix::io::write(&*link.wake, &1u64.to_ne_bytes());
        }
    }
}
