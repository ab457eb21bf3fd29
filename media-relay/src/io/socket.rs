//! Binding the relay's port pairs.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::RelayError;
use crate::pool::PortPool;

/// One leg's two sockets: RTP on an even port, RTCP on the next one.
#[derive(Debug)]
pub(crate) struct BoundPair {
    pub rtp_port: u16,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

/// Why a pair could not be bound.
enum PairError {
    /// Someone else holds one of the two ports: try another pair.
    InUse,
    Other(io::Error, u16),
}

/// Binds one UDP socket, non-blocking.
///
/// The socket gets no batched-I/O state of its own: quinn-udp's `UdpSocketState::new`
/// probes the kernel's offload support by binding two throw-away sockets and toggling
/// UDP_GRO each time, which measured ~110 µs per socket here against ~5 µs for a plain
/// bind (four sockets per call). The probe's answer is the same for every socket, so each
/// worker makes one state ([`offload_state`]) and uses it with all of its sockets.
/// UDP_GRO is not enabled on call sockets: an RTP flow at 50 packets/s leaves nothing to
/// coalesce, and receive handles GRO trains anyway (the stride is honoured). Sending
/// with GSO (UDP_SEGMENT per message) needs no socket option.
fn bind_socket(address: SocketAddr, receive_buffer: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_nonblocking(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if receive_buffer > 0 {
        socket.set_recv_buffer_size(receive_buffer)?;
    }
    // Deliberately no SO_REUSEPORT/SO_REUSEADDR: each port is owned by exactly one socket of
    // one worker, and a bind that fails because another process holds the port must fail
    // (the pair is skipped) rather than silently share that process's media.
    socket.bind(&address.into())?;
    Ok(socket.into())
}

/// The batched-I/O state a worker uses with all of its sockets: what the kernel supports
/// (GSO segments per send) is probed once, on a throw-away socket bound to `ip`.
pub(crate) fn offload_state(ip: IpAddr) -> io::Result<quinn_udp::UdpSocketState> {
    let probe = UdpSocket::bind(SocketAddr::new(ip, 0))?;
    quinn_udp::UdpSocketState::new((&probe).into())
}

fn bind_pair(ip: IpAddr, rtp_port: u16, receive_buffer: usize) -> Result<BoundPair, PairError> {
    let classify = |e: io::Error, port: u16| {
        if e.kind() == io::ErrorKind::AddrInUse {
            PairError::InUse
        } else {
            PairError::Other(e, port)
        }
    };
    let rtcp_port = rtp_port.checked_add(1).ok_or(PairError::Other(
        io::ErrorKind::InvalidInput.into(),
        rtp_port,
    ))?;
    let rtp = bind_socket(SocketAddr::new(ip, rtp_port), receive_buffer)
        .map_err(|e| classify(e, rtp_port))?;
    let rtcp = bind_socket(SocketAddr::new(ip, rtcp_port), receive_buffer)
        .map_err(|e| classify(e, rtcp_port))?;
    Ok(BoundPair {
        rtp_port,
        rtp,
        rtcp,
    })
}

/// Takes `count` pairs from the pool and binds them; all or nothing. Pairs held by another
/// process are skipped (left free in the pool, retried after every other pair).
pub(crate) fn bind_pairs(
    pool: &std::sync::Mutex<PortPool>,
    ip: IpAddr,
    count: usize,
    receive_buffer: usize,
) -> Result<Vec<BoundPair>, RelayError> {
    let mut bound: Vec<BoundPair> = Vec::with_capacity(count);
    let give_back = |bound: Vec<BoundPair>| {
        let mut pool = lock(pool);
        for pair in bound {
            let port = pair.rtp_port;
            drop(pair);
            pool.put(port);
        }
    };
    let (ports, mut attempts_left) = {
        let mut pool = lock(pool);
        if pool.free() < count {
            return Err(RelayError::PoolExhausted {
                needed: count,
                free: pool.free(),
            });
        }
        let ports: Vec<u16> = (0..count).filter_map(|_| pool.take()).collect();
        (ports, pool.free())
    };
    let mut pending = ports
        .into_iter()
        .collect::<std::collections::VecDeque<u16>>();
    while let Some(port) = pending.pop_front() {
        match bind_pair(ip, port, receive_buffer) {
            Ok(pair) => bound.push(pair),
            Err(error) => {
                let mut guard = lock(pool);
                guard.skip(port);
                let retry = match error {
                    PairError::InUse if attempts_left > 0 => guard.take(),
                    _ => None,
                };
                drop(guard);
                match (retry, error) {
                    (Some(next), _) => {
                        attempts_left -= 1;
                        pending.push_back(next);
                    }
                    (None, error) => {
                        let mut guard = lock(pool);
                        for port in pending {
                            guard.put(port);
                        }
                        let free = guard.free();
                        drop(guard);
                        give_back(bound);
                        return Err(match error {
                            PairError::InUse => RelayError::PoolExhausted {
                                needed: count,
                                free,
                            },
                            PairError::Other(e, port) => RelayError::Bind {
                                port,
                                reason: e.to_string(),
                            },
                        });
                    }
                }
            }
        }
    }
    Ok(bound)
}

/// Locks the pool; a panic elsewhere cannot leave it inconsistent (every operation on it is
/// a single push or pop), so a poisoned lock is still used.
pub(crate) fn lock(pool: &std::sync::Mutex<PortPool>) -> std::sync::MutexGuard<'_, PortPool> {
    pool.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
