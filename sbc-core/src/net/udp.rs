//! UDP listeners: one receive loop per socket, with a reused buffer; sends go out from the
//! listener socket so that peers see the address they sent to.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use socket2::{Domain, Socket, Type};
use tokio::net::UdpSocket;

use super::transport::Shared;
use super::{DropReason, FlowId, FlowKind, Inbound, Protocol};

const MAX_UDP_PAYLOAD: usize = 65_535;

/// The receive buffer a SIP UDP socket asks for. The kernel's default (~208 KiB, a few
/// hundred INVITEs) overflows within milliseconds under a flood, and every datagram it
/// drops may be a legitimate caller's; 4 MiB lets the admission gate, which drops a
/// flood's datagrams at a few hundred nanoseconds each, catch up. The kernel caps the
/// request at `net.core.rmem_max`.
const RECEIVE_BUFFER: usize = 4 << 20;

/// A bound UDP listener.
#[derive(Debug)]
pub(crate) struct UdpEndpoint {
    pub socket: Arc<UdpSocket>,
    pub local: SocketAddr,
}

/// Binds a UDP socket; an IPv6 one accepts IPv6 only, so that IPv4 and IPv6 listeners on
/// the same port can coexist.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    // Best effort: a smaller buffer than asked for is no reason not to listen.
    let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// The index of the first UDP socket of `remote`'s address family.
pub(crate) fn socket_for(sockets: &[UdpEndpoint], remote: SocketAddr) -> Option<usize> {
    sockets
        .iter()
        .position(|endpoint| endpoint.local.is_ipv4() == remote.is_ipv4())
}

/// True for datagrams that only carry a keep-alive: CR/LF (RFC 5626 §4.4.1 style) or
/// nothing at all.
fn is_keepalive(datagram: &[u8]) -> bool {
    datagram.iter().all(|b| matches!(b, b'\r' | b'\n'))
}

/// Receives datagrams until shutdown, handing each upward as one message.
pub(crate) async fn receive_loop(shared: Arc<Shared>, index: usize) {
    let (Some(endpoint), Some(upward)) = (shared.udp_sockets.get(index), shared.upward()) else {
        return;
    };
    let socket = Arc::clone(&endpoint.socket);
    let local = endpoint.local;
    // No UDP payload exceeds 65,535 bytes, whatever the configuration says.
    let max = shared.limits.max_datagram_bytes.min(MAX_UDP_PAYLOAD);
    // One byte more than allowed: a datagram that fills it is too large (the kernel
    // truncates silently).
    let mut buffer = vec![0u8; max + 1];
    loop {
        let (len, source) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(_) => {
                // ICMP errors reported on the socket and the like: nothing to do but go on.
                shared.counters.count_drop(DropReason::UdpReceiveError);
                tokio::task::yield_now().await;
                continue;
            }
        };
        if len > max {
            shared.counters.count_drop(DropReason::UdpDatagramTooLarge);
            continue;
        }
        let Some(datagram) = buffer.get(..len) else {
            continue;
        };
        if is_keepalive(datagram) {
            continue;
        }
        upward.deliver(Inbound {
            bytes: Bytes::copy_from_slice(datagram),
            source,
            local,
            protocol: Protocol::Udp,
            flow: FlowId(FlowKind::Datagram {
                socket: index,
                remote: source,
            }),
            tls_peer: None,
        });
    }
}
