//! Registrar contention: REGISTER refreshes and lookups per second of wall time with 1, 2
//! and 4 threads ("shards") sharing one registrar, as the signalling shards do (a REGISTER
//! and a call to the same user arrive on different shards, chosen by Call-ID).
//!
//! Run with `bench/registrar.sh` (or `cargo bench -p sbc-core --bench registrar`).
//! `SBC_BENCH_SECONDS` (per measurement, default 1), `SBC_BENCH_USERS` (default 10,000)
//! and `SBC_BENCH_REPEATS` (median of, default 3) tune it.
//!
//! Workloads, each on `users` registered users with one binding each:
//! * `refresh`: every shard refreshes its own users (Call-ID kept, CSeq + 1), as phones do;
//! * `lookup`: every shard looks up random users, as a call to a registered user does;
//! * `mixed`: one refresh for four lookups.
//!
//! Arrangements, each holding the same bindings:
//! * `map in one mutex`: this registrar behind one mutex (how it was shared before, but
//!   with the table of today; bench/registrar.sh also runs the old table, "before");
//! * `concurrent map`: the registrar as it is, shared as it is (a lock per map shard);
//! * `owner threads`: the users split by AOR between as many owner threads as there are
//!   shards, each owning a registrar alone; shards send each operation as a message and
//!   wait for the answer (the shape of shard ownership by AOR with message passing).
//!
//! A drainer thread takes the queued persistence changes every 100 ms, as the binary's
//! persistence task does twice a second.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Sender;
use sbc_core::net::Protocol;
use sbc_core::registrar::{Registrar, RegistrarConfig};
use sbc_core::sip::{HeaderName, Message, Request, parse_message};
use sbc_core::transaction::Peer;

/// How the shards reach the registrar.
trait Arrangement: Sync + Send {
    fn refresh(&self, now: Instant, request: Request, aor: &str, source: Peer) -> bool;
    fn lookup(&self, now: Instant, aor: &str) -> usize;
    /// The persister's turn: sweeps lapsed bindings and takes the queued changes; how
    /// many changes.
    fn persist(&self, now: Instant) -> usize;
}

/// One registrar behind one mutex.
struct GlobalMutex(Mutex<Registrar>);

impl GlobalMutex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registrar> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Arrangement for GlobalMutex {
    fn refresh(&self, now: Instant, request: Request, aor: &str, source: Peer) -> bool {
        self.lock()
            .handle_register(now, &request, aor, source, Protocol::Udp)
            .is_ok()
    }

    fn lookup(&self, now: Instant, aor: &str) -> usize {
        self.lock().lookup(now, aor).len()
    }

    fn persist(&self, now: Instant) -> usize {
        let registrar = self.lock();
        registrar.expire(now);
        std::iter::from_fn(|| registrar.poll_change()).count()
    }
}

/// The registrar shared as it is.
struct ConcurrentMap(Registrar);

impl Arrangement for ConcurrentMap {
    fn refresh(&self, now: Instant, request: Request, aor: &str, source: Peer) -> bool {
        self.0
            .handle_register(now, &request, aor, source, Protocol::Udp)
            .is_ok()
    }

    fn lookup(&self, now: Instant, aor: &str) -> usize {
        self.0.lookup(now, aor).len()
    }

    fn persist(&self, now: Instant) -> usize {
        self.0.expire(now);
        std::iter::from_fn(|| self.0.poll_change()).count()
    }
}

/// An operation sent to the owner of a user.
enum Order {
    Refresh {
        now: Instant,
        request: Box<Request>,
        aor: String,
        source: Peer,
        reply: Sender<bool>,
    },
    Lookup {
        now: Instant,
        aor: String,
        reply: Sender<usize>,
    },
    Persist {
        now: Instant,
        reply: Sender<usize>,
    },
}

/// Owner threads, each with the registrar of its share of the users.
struct OwnerThreads {
    inboxes: Vec<Sender<Order>>,
}

impl OwnerThreads {
    fn start(owners: usize, config: &RegistrarConfig) -> OwnerThreads {
        let inboxes = (0..owners)
            .map(|_| {
                let (inbox, orders) = crossbeam_channel::unbounded::<Order>();
                let registrar = Registrar::new(config.clone());
                // Ends when the inbox's senders are dropped.
                std::thread::spawn(move || {
                    for order in orders {
                        match order {
                            Order::Refresh {
                                now,
                                request,
                                aor,
                                source,
                                reply,
                            } => {
                                let ok = registrar
                                    .handle_register(now, &request, &aor, source, Protocol::Udp)
                                    .is_ok();
                                let _ = reply.send(ok);
                            }
                            Order::Lookup { now, aor, reply } => {
                                let _ = reply.send(registrar.lookup(now, &aor).len());
                            }
                            Order::Persist { now, reply } => {
                                registrar.expire(now);
                                let _ = reply
                                    .send(std::iter::from_fn(|| registrar.poll_change()).count());
                            }
                        }
                    }
                });
                inbox
            })
            .collect();
        OwnerThreads { inboxes }
    }

    fn owner(&self, aor: &str) -> &Sender<Order> {
        // FNV-1a
        let hash = aor.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        &self.inboxes[(hash % self.inboxes.len() as u64) as usize]
    }

    fn ask<T: Default>(inbox: &Sender<Order>, order: impl FnOnce(Sender<T>) -> Order) -> T {
        let (reply, answer) = crossbeam_channel::bounded(1);
        if inbox.send(order(reply)).is_err() {
            return T::default();
        }
        answer.recv().unwrap_or_default()
    }
}

impl Arrangement for OwnerThreads {
    fn refresh(&self, now: Instant, request: Request, aor: &str, source: Peer) -> bool {
        OwnerThreads::ask(self.owner(aor), |reply| Order::Refresh {
            now,
            request: Box::new(request),
            aor: aor.to_owned(),
            source,
            reply,
        })
    }

    fn lookup(&self, now: Instant, aor: &str) -> usize {
        OwnerThreads::ask(self.owner(aor), |reply| Order::Lookup {
            now,
            aor: aor.to_owned(),
            reply,
        })
    }

    fn persist(&self, now: Instant) -> usize {
        self.inboxes
            .iter()
            .map(|inbox| OwnerThreads::ask(inbox, |reply| Order::Persist { now, reply }))
            .sum()
    }
}

fn config(users: usize) -> RegistrarConfig {
    RegistrarConfig {
        max_bindings: users * 2,
        ..RegistrarConfig::default()
    }
}

fn aor(user: usize) -> String {
    format!("sip:u{user}@sbc.test")
}

fn source(user: usize) -> Peer {
    let octets = u32::try_from(user).unwrap_or(0).to_be_bytes();
    let ip = std::net::Ipv4Addr::new(10, octets[1], octets[2], octets[3]);
    Peer::unreliable(std::net::SocketAddr::from((ip, 5060)))
}

/// A REGISTER of user `user` with Call-ID generation `generation`.
fn register(user: usize, cseq: u32, generation: usize) -> Request {
    let text = format!(
        "REGISTER sip:sbc.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{user}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:u{user}@sbc.test>;tag=t{user}\r\n\
         To: <sip:u{user}@sbc.test>\r\n\
         Call-ID: reg-{user}-{generation}@10.0.0.1\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:u{user}@10.0.0.1:5060>;expires=3600\r\n\
         User-Agent: bench\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match parse_message(Bytes::from(text)) {
        Ok(Message::Request(request)) => request,
        other => panic!("benchmark REGISTER does not parse: {other:?}"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Workload {
    Refresh,
    Lookup,
    Mixed,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Refresh => "refresh",
            Workload::Lookup => "lookup",
            Workload::Mixed => "mixed 1:4",
        }
    }
}

/// One shard's view of the users: the REGISTERs of those it refreshes.
struct ShardLoad {
    mine: Vec<(usize, Request, u32)>,
    aors: Arc<Vec<String>>,
    random: u64,
}

impl ShardLoad {
    fn refresh(&mut self, table: &dyn Arrangement, now: Instant, turn: usize) -> bool {
        let index = turn % self.mine.len().max(1);
        let Some((user, request, cseq)) = self.mine.get_mut(index) else {
            return false;
        };
        *cseq += 1;
        request
            .headers
            .replace_first(&HeaderName::CSeq, format!("{cseq} REGISTER"));
        // Every arrangement gets the request by value, as a shard would hand it over.
        table.refresh(now, request.clone(), &self.aors[*user], source(*user))
    }

    fn lookup(&mut self, table: &dyn Arrangement, now: Instant) -> usize {
        // xorshift64
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let user = (self.random % self.aors.len() as u64) as usize;
        table.lookup(now, &self.aors[user])
    }
}

/// What one run measured.
struct Run {
    ops_per_second: f64,
    /// Operations per second of CPU time of the shard threads (what contention costs
    /// in work, less moved by other load on the machine than wall time).
    ops_per_cpu_second: f64,
    /// Lookup latency percentiles (one lookup in 8 is timed), in microseconds.
    lookup_p99: f64,
    lookup_max: f64,
}

/// Runs `workload` on one thread per load for `seconds`, with the persister's turn every
/// 100 ms.
fn measure(
    table: &Arc<dyn Arrangement>,
    loads: &mut [ShardLoad],
    workload: Workload,
    now: Instant,
    seconds: f64,
) -> Run {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let cpu_ns = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let latencies = Mutex::new(Vec::<u64>::new());
    let start = Barrier::new(loads.len() + 1);
    let elapsed = std::thread::scope(|scope| {
        for load in loads.iter_mut() {
            let (stop, done, refused, start) = (&stop, &done, &refused, &start);
            let cpu_ns = &cpu_ns;
            let latencies = &latencies;
            let table = Arc::clone(table);
            scope.spawn(move || {
                start.wait();
                let cpu_start = thread_cpu_ns();
                let mut ops: u64 = 0;
                let mut failed: u64 = 0;
                let mut timed = Vec::with_capacity(1 << 16);
                let mut turn = 0usize;
                let mut lookup = |load: &mut ShardLoad, turn: usize| {
                    if turn.is_multiple_of(8) {
                        let began = Instant::now();
                        black_box(load.lookup(&*table, now));
                        timed.push(u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    } else {
                        black_box(load.lookup(&*table, now));
                    }
                };
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        match workload {
                            Workload::Refresh => {
                                failed += u64::from(!load.refresh(&*table, now, turn));
                            }
                            Workload::Lookup => lookup(load, turn),
                            Workload::Mixed => {
                                if turn.is_multiple_of(5) {
                                    failed += u64::from(!load.refresh(&*table, now, turn / 5));
                                } else {
                                    lookup(load, turn);
                                }
                            }
                        }
                        turn += 1;
                        ops += 1;
                    }
                }
                let cpu = thread_cpu_ns().saturating_sub(cpu_start);
                cpu_ns.fetch_add(cpu, Ordering::Relaxed);
                done.fetch_add(ops, Ordering::Relaxed);
                refused.fetch_add(failed, Ordering::Relaxed);
                latencies
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(timed);
            });
        }
        let persister = Arc::clone(table);
        let persister_stop = &stop;
        scope.spawn(move || {
            while !persister_stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                black_box(persister.persist(now));
            }
        });
        start.wait();
        let began = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        began.elapsed()
    });
    table.persist(now);
    let refused = refused.load(Ordering::Relaxed);
    assert_eq!(refused, 0, "{refused} refreshes were refused");
    let mut latencies = latencies
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies
            .get(index)
            .map_or(f64::NAN, |ns| *ns as f64 / 1000.0)
    };
    let ops = done.load(Ordering::Relaxed) as f64;
    Run {
        ops_per_second: ops / elapsed.as_secs_f64(),
        ops_per_cpu_second: ops / (cpu_ns.load(Ordering::Relaxed).max(1) as f64 / 1e9),
        lookup_p99: percentile(0.99),
        lookup_max: latencies.last().map_or(f64::NAN, |ns| *ns as f64 / 1000.0),
    }
}

/// CPU time of this thread so far, in nanoseconds (Linux; 0 elsewhere).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

const ARRANGEMENTS: [&str; 3] = ["map in one mutex", "concurrent map", "owner threads"];

/// A fresh table of arrangement `name` for `shards` shards, holding `users` bindings.
fn arrangement(name: &str, users: usize, shards: usize, now: Instant) -> Arc<dyn Arrangement> {
    let table: Arc<dyn Arrangement> = match name {
        "map in one mutex" => Arc::new(GlobalMutex(Mutex::new(Registrar::new(config(users))))),
        "concurrent map" => Arc::new(ConcurrentMap(Registrar::new(config(users)))),
        _ => Arc::new(OwnerThreads::start(shards, &config(users))),
    };
    for user in 0..users {
        let ok = table.refresh(now, register(user, 1, 0), &aor(user), source(user));
        assert!(ok, "user {user} registers");
    }
    table.persist(now);
    table
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the arguments.
    let seconds: f64 = env("SBC_BENCH_SECONDS", 1.0);
    let users: usize = env("SBC_BENCH_USERS", 10_000);
    let repeats: usize = env("SBC_BENCH_REPEATS", 3).max(1);
    let now = Instant::now();
    let aors = Arc::new((0..users).map(aor).collect::<Vec<_>>());
    println!(
        "| workload | shards | arrangement | ops/s (median of {repeats}) | ops per CPU-s | lookup p99 (µs) | lookup max (µs) |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|");
    for workload in [Workload::Refresh, Workload::Lookup, Workload::Mixed] {
        for shards in [1usize, 2, 4] {
            let tables: Vec<_> = ARRANGEMENTS
                .iter()
                .map(|name| (*name, arrangement(name, users, shards, now)))
                .collect();
            let mut loads: Vec<Vec<ShardLoad>> = tables
                .iter()
                .map(|_| {
                    (0..shards)
                        .map(|shard| ShardLoad {
                            mine: (shard..users)
                                .step_by(shards)
                                .map(|user| (user, register(user, 1, 1), 1u32))
                                .collect(),
                            aors: Arc::clone(&aors),
                            random: 0x9E37_79B9_7F4A_7C15 ^ (shard as u64 + 1),
                        })
                        .collect()
                })
                .collect();
            // The arrangements take turns, so that other load on the machine falls on
            // each alike; each run continues the CSeq of the one before.
            let mut runs: Vec<Vec<Run>> = tables.iter().map(|_| Vec::new()).collect();
            for _ in 0..repeats {
                for (index, (_, table)) in tables.iter().enumerate() {
                    runs[index].push(measure(table, &mut loads[index], workload, now, seconds));
                }
            }
            for ((name, _), runs) in tables.iter().zip(runs) {
                let rate = median(runs.iter().map(|run| run.ops_per_second).collect());
                let cpu = median(runs.iter().map(|run| run.ops_per_cpu_second).collect());
                let (p99, max) = match workload {
                    Workload::Refresh => ("".to_owned(), "".to_owned()),
                    _ => (
                        format!(
                            "{:.1}",
                            median(runs.iter().map(|run| run.lookup_p99).collect())
                        ),
                        format!(
                            "{:.0}",
                            median(runs.iter().map(|run| run.lookup_max).collect())
                        ),
                    ),
                };
                println!(
                    "| {} | {shards} | {name} | {rate:.0} | {cpu:.0} | {p99} | {max} |",
                    workload.name()
                );
            }
        }
    }
}
