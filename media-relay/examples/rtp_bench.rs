//! Relayed packets per second per relay core, beside a bare recvmmsg/sendmmsg reflector.
//!
//! One process, loopback only, bounded in time. For each session count N and each forwarder
//! (the relay with one worker, then the reflector), a batched load generator (sendmmsg)
//! sends 172-byte RTP packets round-robin to N ports of the forwarder, which sends them on to
//! one sink (recvmmsg). With two or more cores the forwarder runs on core 1 and the
//! generator and sink on core 0. Both forwarders use the same socket options (quinn-udp's)
//! and receive the same way (quinn-udp recvmmsg on level-triggered epoll); the reflector
//! has no session logic and sends each batch back out with one sendmmsg.
//!
//! Packets per second per core = forwarded packets / forwarder thread CPU seconds, so the
//! figure holds even when the forwarder's core is shared with other work.
//!
//! The sink's socket has no GRO, so GSO trains the relay sends are split into datagrams on
//! delivery, as a receiving host would see them. Each run is `sessions:rate`, with `rate`
//! the packets per second per session (0 = as fast as the generator can send: saturation;
//! 50 = G.711 with 20 ms packets).
//!
//! The `srtp→rtp` and `rtp→srtp` rows convert media protection on the way: the generator's
//! leg is SDES-SRTP (AES_CM_128_HMAC_SHA1_80; the generator protects every packet) and the
//! sink's plain, or the other way round (the relay protects toward the sink). Their ratio
//! is to the plain relay row.
//!
//! Usage: `rtp_bench [--runs 1:0,100:0,1000:0,2000:50] [--seconds 3]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use media_relay::srtp::{MasterKey, SrtpPolicy, SrtpSender, Suite};
use media_relay::{
    Leg, LegSecurity, Protection, Relay, RelayConfig, RemoteMedia, SdesKeys, WorkerStats,
};
use quinn_udp::{RecvMeta, UdpSocketState};
use rustix::event::epoll;
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, sendmmsg};

const PACKET_LEN: usize = 172;
const BATCH: usize = 32;
const RELAY_PORT_MIN: u16 = 22000;
const WARM_UP: Duration = Duration::from_millis(700);

fn main() {
    let mut runs = "1:0,100:0,1000:0,2000:50".to_string();
    let mut seconds = 3u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--runs", Some(list)) => runs = list,
            ("--seconds", Some(n)) => seconds = n.parse().expect("seconds"),
            _ => {
                eprintln!("usage: rtp_bench [--runs 1:0,100:0,1000:0,2000:50] [--seconds 3]");
                std::process::exit(2);
            }
        }
    }
    let runs: Vec<(usize, u64)> = runs
        .split(',')
        .map(|run| {
            let (sessions, rate) = run.split_once(':').unwrap_or((run, "0"));
            (
                sessions.parse::<usize>().expect("sessions").clamp(1, 2000),
                rate.parse().expect("rate"),
            )
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let measure = Duration::from_secs(seconds.clamp(1, 30));
    println!(
        "# {PACKET_LEN}-byte RTP over loopback, {cores} cores, {}s per run, forwarder on core {}",
        measure.as_secs(),
        cores.min(2) - 1
    );
    println!(
        "{:>8} {:>9} {:>11} {:>12} {:>12} {:>7} {:>10} {:>10} {:>7} {:>6}",
        "sessions",
        "pps/sess",
        "forwarder",
        "pps/core",
        "pps (wall)",
        "core %",
        "µs/packet",
        "pkts/recv",
        "loss %",
        "ratio"
    );
    for &(n, rate) in &runs {
        let reflector = run(Forwarder::Reflector, n, rate, measure, cores);
        let plain = |gso| Forwarder::Relay {
            gso,
            srtp: Conversion::None,
        };
        let relay = run(plain(true), n, rate, measure, cores);
        let relay_mmsg = run(plain(false), n, rate, measure, cores);
        let srtp = |srtp| Forwarder::Relay { gso: true, srtp };
        let from_srtp = run(srtp(Conversion::FromSrtp), n, rate, measure, cores);
        let to_srtp = run(srtp(Conversion::ToSrtp), n, rate, measure, cores);
        for (name, r, ratio) in [
            ("reflector", &reflector, None),
            ("relay", &relay, Some(relay.per_core / reflector.per_core)),
            (
                "relay-mmsg",
                &relay_mmsg,
                Some(relay_mmsg.per_core / reflector.per_core),
            ),
            (
                "srtp→rtp",
                &from_srtp,
                Some(from_srtp.per_core / relay.per_core),
            ),
            (
                "rtp→srtp",
                &to_srtp,
                Some(to_srtp.per_core / relay.per_core),
            ),
        ] {
            println!(
                "{:>8} {:>9} {:>11} {:>12.0} {:>12.0} {:>7.1} {:>10.3} {:>10.1} {:>7.2} {:>6}",
                n,
                if rate == 0 {
                    "max".to_string()
                } else {
                    rate.to_string()
                },
                name,
                r.per_core,
                r.wall_pps,
                r.core_share * 100.0,
                1e6 / r.per_core,
                r.per_recv,
                r.loss * 100.0,
                ratio.map_or("-".to_string(), |x| format!("{:.0}%", x * 100.0)),
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Forwarder {
    Relay { gso: bool, srtp: Conversion },
    Reflector,
}

/// Which leg of the relay is SDES-SRTP.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Conversion {
    None,
    /// The generator's leg: the relay unprotects.
    FromSrtp,
    /// The sink's leg: the relay protects.
    ToSrtp,
}

const SUITE: Suite = Suite::AesCm128HmacSha1_80;

fn sdes(relay: &Relay, peer: Option<MasterKey>) -> LegSecurity {
    LegSecurity {
        protection: Protection::Sdes(SdesKeys {
            suite: SUITE,
            send: vec![relay.new_sdes_key(SUITE).unwrap()],
            receive: peer.into_iter().collect(),
            unencrypted_srtcp: false,
        }),
        ice: None,
    }
}

#[derive(Debug)]
struct Outcome {
    per_core: f64,
    wall_pps: f64,
    core_share: f64,
    per_recv: f64,
    loss: f64,
}

/// Counters a forwarder exposes: packets forwarded, receive calls, CPU nanoseconds.
trait Meter {
    fn read(&self) -> (u64, u64, u64);
}

struct RelayMeter(Relay);
impl Meter for RelayMeter {
    fn read(&self) -> (u64, u64, u64) {
        let w = WorkerStats::sum(&self.0.worker_stats().expect("worker stats"));
        (w.packets_forwarded, w.receive_calls, w.cpu_time_ns)
    }
}

#[derive(Default)]
struct ReflectorCounters {
    forwarded: AtomicU64,
    receive_calls: AtomicU64,
    cpu_ns: AtomicU64,
}
struct ReflectorMeter(Arc<ReflectorCounters>);
impl Meter for ReflectorMeter {
    fn read(&self) -> (u64, u64, u64) {
        let c = &self.0;
        (
            c.forwarded.load(Ordering::Relaxed),
            c.receive_calls.load(Ordering::Relaxed),
            c.cpu_ns.load(Ordering::Relaxed),
        )
    }
}

fn run(
    forwarder: Forwarder,
    sessions: usize,
    rate: u64,
    measure: Duration,
    cores: usize,
) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let generator_socket = bound_socket("127.0.0.2:0");
    let sink_socket = bound_socket("127.0.0.3:0");
    let generator_addr = generator_socket.local_addr().unwrap();
    let sink_addr = sink_socket.local_addr().unwrap();
    let (sink_count, sink) = spawn_sink(sink_socket, stop.clone(), 0);

    let forwarder_core = cores.min(2) - 1;
    let mut threads: Vec<JoinHandle<()>> = vec![sink];
    // The generator's SRTP contexts, one per session, when its leg is SRTP.
    let mut senders: Vec<SrtpSender> = Vec::new();
    let (targets, meter, _relay_guard): (Vec<SocketAddr>, Box<dyn Meter>, Option<Relay>) =
        match forwarder {
            Forwarder::Relay { gso, srtp } => {
                // The worker thread inherits the affinity of the thread that starts it.
                pin(forwarder_core);
                let relay = Relay::start(RelayConfig {
                    port_min: RELAY_PORT_MIN,
                    port_max: RELAY_PORT_MIN + (4 * sessions) as u16 + 3,
                    workers: 1,
                    inactivity_timeout: Duration::ZERO,
                    socket_receive_buffer: 1 << 20,
                    gso,
                    ..RelayConfig::default()
                })
                .expect("relay");
                pin(0);
                let mut targets = Vec::new();
                for _ in 0..sessions {
                    let allocation = busy_retry(|| relay.allocate(1));
                    let a = RemoteMedia {
                        rtp: Some(generator_addr),
                        ..RemoteMedia::default()
                    };
                    let b = RemoteMedia {
                        rtp: Some(sink_addr),
                        ..RemoteMedia::default()
                    };
                    busy_retry(|| relay.update(allocation.session, 0, Leg::A, a));
                    busy_retry(|| relay.update(allocation.session, 0, Leg::B, b));
                    match srtp {
                        Conversion::None => {}
                        Conversion::FromSrtp => {
                            let key = relay.new_sdes_key(SUITE).unwrap();
                            senders.push(
                                SrtpSender::new(&SrtpPolicy::new(SUITE, key.clone())).unwrap(),
                            );
                            let security = sdes(&relay, Some(key));
                            relay
                                .protect(allocation.session, 0, Leg::A, security)
                                .unwrap();
                        }
                        Conversion::ToSrtp => {
                            let security = sdes(&relay, None);
                            relay
                                .protect(allocation.session, 0, Leg::B, security)
                                .unwrap();
                        }
                    }
                    targets.push(allocation.streams[0].a.rtp);
                }
                (targets, Box::new(RelayMeter(relay.clone())), Some(relay))
            }
            Forwarder::Reflector => {
                let counters = Arc::new(ReflectorCounters::default());
                let sockets: Vec<UdpSocket> =
                    (0..sessions).map(|_| bound_socket("127.0.0.1:0")).collect();
                let targets = sockets.iter().map(|s| s.local_addr().unwrap()).collect();
                let (c, s) = (counters.clone(), stop.clone());
                threads.push(std::thread::spawn(move || {
                    pin(forwarder_core);
                    reflect(sockets, sink_addr, &c, &s);
                }));
                (targets, Box::new(ReflectorMeter(counters)), None)
            }
        };
    let sent = Arc::new(AtomicU64::new(0));
    {
        let (sent, stop) = (sent.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            pin(0);
            generate(
                generator_socket,
                &targets,
                &mut senders,
                rate * targets.len() as u64,
                &sent,
                &stop,
            );
        }));
    }

    std::thread::sleep(WARM_UP);
    let start = (
        Instant::now(),
        meter.read(),
        sink_count.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed),
    );
    std::thread::sleep(measure);
    let end = (
        Instant::now(),
        meter.read(),
        sink_count.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed),
    );
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    let wall = end.0.duration_since(start.0).as_secs_f64();
    let forwarded = end.1.0.saturating_sub(start.1.0) as f64;
    let receive_calls = end.1.1.saturating_sub(start.1.1).max(1) as f64;
    let cpu = end.1.2.saturating_sub(start.1.2).max(1) as f64 / 1e9;
    let received = end.2.saturating_sub(start.2) as f64;
    let generated = end.3.saturating_sub(start.3).max(1) as f64;
    Outcome {
        per_core: forwarded / cpu,
        wall_pps: received / wall,
        core_share: cpu / wall,
        per_recv: forwarded / receive_calls,
        loss: (1.0 - received / generated).max(0.0),
    }
}

/// Retries a control call while the worker's command queue is full (setting up thousands of
/// sessions outpaces the worker).
fn busy_retry<T>(mut call: impl FnMut() -> Result<T, media_relay::RelayError>) -> T {
    loop {
        match call() {
            Ok(value) => return value,
            Err(media_relay::RelayError::WorkerBusy(_)) => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(error) => panic!("relay control: {error}"),
        }
    }
}

fn bound_socket(address: &str) -> UdpSocket {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket.set_recv_buffer_size(1 << 20).unwrap();
    socket
        .bind(&address.parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.into()
}

fn pin(core: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Sends RTP round-robin to `targets` in sendmmsg batches until `stop`, at `rate` packets
/// per second in all (0 = as fast as possible).
fn generate(
    socket: UdpSocket,
    targets: &[SocketAddr],
    senders: &mut [SrtpSender],
    rate: u64,
    sent: &AtomicU64,
    stop: &AtomicBool,
) {
    let targets: Vec<SocketAddrAny> = targets.iter().map(|t| SocketAddrAny::from(*t)).collect();
    let mut sequence = vec![0u16; targets.len()];
    let mut packets = [[0u8; PACKET_LEN + 64]; BATCH];
    let mut lengths = [PACKET_LEN; BATCH];
    let mut next = 0usize;
    let start = Instant::now();
    let mut batches = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if rate > 0 {
            let due =
                start + Duration::from_secs_f64((batches * BATCH as u64) as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            batches += 1;
        }
        let mut destinations = [0usize; BATCH];
        for ((packet, destination), length) in packets
            .iter_mut()
            .zip(destinations.iter_mut())
            .zip(lengths.iter_mut())
        {
            *destination = next;
            let seq = sequence[next];
            sequence[next] = seq.wrapping_add(1);
            packet[0] = 0x80;
            packet[1] = 0;
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            packet[8..12].copy_from_slice(&(next as u32).to_be_bytes());
            packet[12..PACKET_LEN].fill(0xd5);
            *length = match senders.get_mut(next) {
                Some(sender) => sender.protect_rtp(packet, PACKET_LEN).unwrap(),
                None => PACKET_LEN,
            };
            next = (next + 1) % targets.len();
        }
        let iovs: [[IoSlice<'_>; 1]; BATCH] =
            std::array::from_fn(|i| [IoSlice::new(&packets[i][..lengths[i]])]);
        let mut controls: [SendAncillaryBuffer<'_, '_, '_>; BATCH] =
            std::array::from_fn(|_| SendAncillaryBuffer::default());
        let mut index = 0;
        let mut messages = controls.each_mut().map(|control| {
            let message =
                MMsgHdr::new_with_addr(&targets[destinations[index]], &iovs[index], control);
            index += 1;
            message
        });
        if let Ok(n) = sendmmsg(&socket, &mut messages, SendFlags::empty()) {
            sent.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// Counts what arrives until `stop`.
fn spawn_sink(
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
    core: usize,
) -> (Arc<AtomicU64>, JoinHandle<()>) {
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let thread = std::thread::spawn(move || {
        pin(core);
        // The state is made on another socket, so that the sink's own socket gets no GRO.
        let state = UdpSocketState::new((&bound_socket("127.0.0.3:0")).into()).unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut buffers = vec![[0u8; 2048]; BATCH];
        let mut meta = [RecvMeta::default(); BATCH];
        while !stop.load(Ordering::Relaxed) {
            let mut slices: Vec<IoSliceMut<'_>> =
                buffers.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            match state.recv((&socket).into(), &mut slices, &mut meta) {
                Ok(n) => {
                    let datagrams: usize = meta[..n]
                        .iter()
                        .map(|m| m.len.div_ceil(m.stride.max(1)))
                        .sum();
                    counter.fetch_add(datagrams as u64, Ordering::Relaxed);
                }
                Err(_) => {
                    let mut fds = [rustix::event::PollFd::new(
                        &socket,
                        rustix::event::PollFlags::IN,
                    )];
                    let timeout = rustix::time::Timespec {
                        tv_sec: 0,
                        tv_nsec: 10_000_000,
                    };
                    let _ = rustix::event::poll(&mut fds, Some(&timeout));
                }
            }
        }
    });
    (count, thread)
}

/// The bare reflector: level-triggered epoll over `sockets`, one recvmmsg per ready socket,
/// and the batch sent on to `sink` with one sendmmsg from the same socket. No session logic.
fn reflect(
    sockets: Vec<UdpSocket>,
    sink: SocketAddr,
    counters: &ReflectorCounters,
    stop: &AtomicBool,
) {
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let states: Vec<UdpSocketState> = sockets
        .iter()
        .map(|s| UdpSocketState::new(s.into()).unwrap())
        .collect();
    for (token, socket) in sockets.iter().enumerate() {
        epoll::add(
            &epoll,
            socket,
            epoll::EventData::new_u64(token as u64),
            epoll::EventFlags::IN,
        )
        .unwrap();
    }
    let sink = SocketAddrAny::from(sink);
    let mut buffers = vec![[0u8; 2048]; BATCH];
    let mut meta = [RecvMeta::default(); BATCH];
    let mut ready: Vec<epoll::Event> = Vec::with_capacity(1024);
    let timeout = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 10_000_000,
    };
    let cpu_start = thread_cpu_ns();
    let mut cpu_read = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        ready.clear();
        let _ = epoll::wait(
            &epoll,
            rustix::buffer::spare_capacity(&mut ready),
            Some(&timeout),
        );
        for event in &ready {
            let token = event.data.u64() as usize;
            let (Some(socket), Some(state)) = (sockets.get(token), states.get(token)) else {
                continue;
            };
            let n = {
                let mut slices: [IoSliceMut<'_>; BATCH] = {
                    let mut iter = buffers.iter_mut();
                    std::array::from_fn(|_| IoSliceMut::new(iter.next().unwrap()))
                };
                match state.recv(socket.into(), &mut slices, &mut meta) {
                    Ok(n) => n,
                    Err(_) => continue,
                }
            };
            counters.receive_calls.fetch_add(1, Ordering::Relaxed);
            let iovs: [[IoSlice<'_>; 1]; BATCH] =
                std::array::from_fn(|i| [IoSlice::new(&buffers[i][..meta[i].len])]);
            let mut controls: [SendAncillaryBuffer<'_, '_, '_>; BATCH] =
                std::array::from_fn(|_| SendAncillaryBuffer::default());
            let mut index = 0;
            let mut messages = controls.each_mut().map(|control| {
                let message = MMsgHdr::new_with_addr(&sink, &iovs[index], control);
                index += 1;
                message
            });
            if let Ok(sent) = sendmmsg(socket, &mut messages[..n], SendFlags::empty()) {
                counters.forwarded.fetch_add(sent as u64, Ordering::Relaxed);
            }
        }
        if cpu_read.elapsed() >= Duration::from_millis(2) {
            counters
                .cpu_ns
                .store(thread_cpu_ns() - cpu_start, Ordering::Relaxed);
            cpu_read = Instant::now();
        }
    }
}
