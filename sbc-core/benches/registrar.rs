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
//! A drainer thread takes the queued persistence changes every 100 ms, as the binary's
//! persistence task does twice a second.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sbc_core::net::Protocol;
use sbc_core::registrar::{Registrar, RegistrarConfig, SharedRegistrar, lock};
use sbc_core::sip::{HeaderName, Message, Request, parse_message};
use sbc_core::transaction::Peer;

/// How the shards reach the registrar.
trait Arrangement: Sync {
    fn refresh(&self, now: Instant, request: &Request, aor: &str, source: Peer) -> bool;
    fn lookup(&self, now: Instant, aor: &str) -> usize;
    /// Takes the queued persistence changes; how many.
    fn drain(&self) -> usize;
}

/// One registrar behind one mutex.
struct GlobalMutex(SharedRegistrar);

impl Arrangement for GlobalMutex {
    fn refresh(&self, now: Instant, request: &Request, aor: &str, source: Peer) -> bool {
        lock(&self.0)
            .handle_register(now, request, aor, source, Protocol::Udp)
            .is_ok()
    }

    fn lookup(&self, now: Instant, aor: &str) -> usize {
        lock(&self.0).lookup(now, aor).len()
    }

    fn drain(&self) -> usize {
        let mut registrar = lock(&self.0);
        std::iter::from_fn(|| registrar.poll_change()).count()
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
        table.refresh(now, request, &self.aors[*user], source(*user))
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

/// Runs `workload` on `shards` threads for `seconds`; operations per second.
fn measure(
    table: &Arc<dyn Arrangement + Send>,
    loads: &mut [ShardLoad],
    workload: Workload,
    now: Instant,
    seconds: f64,
) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let start = Barrier::new(loads.len() + 1);
    let elapsed = std::thread::scope(|scope| {
        for load in loads.iter_mut() {
            let (stop, done, refused, start) = (&stop, &done, &refused, &start);
            let table = Arc::clone(table);
            scope.spawn(move || {
                start.wait();
                let mut ops: u64 = 0;
                let mut failed: u64 = 0;
                let mut turn = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        match workload {
                            Workload::Refresh => {
                                failed += u64::from(!load.refresh(&*table, now, turn));
                            }
                            Workload::Lookup => {
                                black_box(load.lookup(&*table, now));
                            }
                            Workload::Mixed => {
                                if turn % 5 == 0 {
                                    failed += u64::from(!load.refresh(&*table, now, turn / 5));
                                } else {
                                    black_box(load.lookup(&*table, now));
                                }
                            }
                        }
                        turn += 1;
                        ops += 1;
                    }
                }
                done.fetch_add(ops, Ordering::Relaxed);
                refused.fetch_add(failed, Ordering::Relaxed);
            });
        }
        let drainer_table = Arc::clone(table);
        let drainer_stop = &stop;
        scope.spawn(move || {
            while !drainer_stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                black_box(drainer_table.drain());
            }
        });
        start.wait();
        let began = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        began.elapsed()
    });
    table.drain();
    let refused = refused.load(Ordering::Relaxed);
    assert_eq!(refused, 0, "{refused} refreshes were refused");
    done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
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

/// The arrangements measured, each a fresh table holding `users` bindings.
fn arrangements(users: usize, now: Instant) -> Vec<(&'static str, Arc<dyn Arrangement + Send>)> {
    let global: Arc<dyn Arrangement + Send> =
        Arc::new(GlobalMutex(Registrar::shared(config(users))));
    let mut all = vec![("global mutex", global)];
    for (_, table) in &mut all {
        for user in 0..users {
            let ok = table.refresh(now, &register(user, 1, 0), &aor(user), source(user));
            assert!(ok, "user {user} registers");
        }
        table.drain();
    }
    all
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the arguments.
    let seconds: f64 = env("SBC_BENCH_SECONDS", 1.0);
    let users: usize = env("SBC_BENCH_USERS", 10_000);
    let repeats: usize = env("SBC_BENCH_REPEATS", 3).max(1);
    let shard_counts = [1usize, 2, 4];
    let now = Instant::now();
    let aors = Arc::new((0..users).map(aor).collect::<Vec<_>>());
    println!(
        "| arrangement | workload | {} |",
        shard_counts
            .iter()
            .map(|k| format!("{k} shard{} (ops/s)", if *k == 1 { "" } else { "s" }))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---|{}", "---:|".repeat(shard_counts.len()));
    let mut generation = 0;
    for (name, table) in arrangements(users, now) {
        for workload in [Workload::Refresh, Workload::Lookup, Workload::Mixed] {
            let mut cells = Vec::new();
            for &shards in &shard_counts {
                // A new Call-ID per row: the phone rebooted, its binding is replaced.
                generation += 1;
                let mut loads: Vec<ShardLoad> = (0..shards)
                    .map(|shard| ShardLoad {
                        mine: (shard..users)
                            .step_by(shards)
                            .map(|user| (user, register(user, 1, generation), 1u32))
                            .collect(),
                        aors: Arc::clone(&aors),
                        random: 0x9E37_79B9_7F4A_7C15 ^ (shard as u64 + 1),
                    })
                    .collect();
                // Each run continues the CSeq of the one before (same Call-ID).
                let rates: Vec<f64> = (0..repeats)
                    .map(|_| measure(&table, &mut loads, workload, now, seconds))
                    .collect();
                cells.push(format!("{:.0}", median(rates)));
            }
            println!("| {name} | {} | {} |", workload.name(), cells.join(" | "));
        }
    }
}
