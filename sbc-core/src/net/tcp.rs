//! TCP and TLS listeners and outbound connections: admission against the connection limits,
//! the TLS handshake, then a connection task ([`super::stream`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::flows::{ConnectionKey, ConnectionSlot};
use super::stream::{self, Connection};
use super::transport::{Shared, TlsListener};
use super::{Destination, DropReason, Protocol, SendError, ServerIdentity, tls};

const LISTEN_BACKLOG: i32 = 1024;
/// How long to pause accepting after `accept` fails (out of file descriptors, typically),
/// instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Binds a listening socket (address reuse on; IPv6 sockets IPv6-only).
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Accepts connections until shutdown. Over-limit connections are closed at once and
/// counted; each admitted one gets its own task, so nothing a client does reaches this loop.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    local: SocketAddr,
    tls: Option<Arc<TlsListener>>,
) {
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                shared.counters.count_drop(DropReason::AcceptError);
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let slot = match shared.flows.reserve_inbound(remote.ip(), &shared.limits) {
            Ok(slot) => slot,
            Err(reason) => {
                shared.counters.count_drop(reason);
                drop(tcp);
                continue;
            }
        };
        shared.counters.count_accepted();
        let _ = tcp.set_nodelay(true);
        // The connection's own address: the listener's may be a wildcard.
        let local = tcp.local_addr().unwrap_or(local);
        let task_shared = Arc::clone(&shared);
        let tls = tls.clone();
        shared.spawn(async move {
            serve_accepted(task_shared, tcp, remote, local, slot, tls).await;
        });
    }
}

async fn serve_accepted(
    shared: Arc<Shared>,
    tcp: TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    slot: ConnectionSlot,
    tls: Option<Arc<TlsListener>>,
) {
    let (writer, outgoing) = mpsc::channel(shared.limits.connection_write_queue_depth.max(1));
    match tls {
        None => {
            // A plain TCP connection may be reused to send to its remote address.
            let key = ConnectionKey {
                protocol: Protocol::Tcp,
                remote,
                server_name: None,
            };
            slot.register(writer, Some(key));
            if let Some(connection) =
                Connection::new(shared, slot, Protocol::Tcp, remote, local, None)
            {
                stream::run(connection, tcp, outgoing).await;
            }
        }
        Some(tls) => {
            let acceptor = tls.acceptor();
            let limit = shared.limits.tls_handshake_timeout;
            let (stream, peer) = match tls::accept(&acceptor, tcp, limit).await {
                Ok(accepted) => {
                    shared.counters.count_tls_accepted();
                    accepted
                }
                Err(reason) => {
                    shared.counters.count_drop(reason);
                    return;
                }
            };
            // Not reusable by destination: the client's identity was not verified against
            // any server name.
            slot.register(writer, None);
            let peer = peer.map(Arc::new);
            if let Some(connection) =
                Connection::new(shared, slot, Protocol::Tls, remote, local, peer)
            {
                stream::run(connection, stream, outgoing).await;
            }
        }
    }
}

/// Opens a connection to `destination` (TLS handshake and identity check included),
/// registers it under `key` and starts its task. Returns its id and write queue.
pub(crate) async fn connect(
    shared: &Arc<Shared>,
    destination: &Destination,
    key: ConnectionKey,
) -> Result<(u64, mpsc::Sender<Bytes>), SendError> {
    let addr = destination.addr;
    let connector = match destination.protocol {
        Protocol::Tls => Some(shared.tls_connector()?),
        _ => None,
    };
    let Some(slot) = shared.flows.reserve_outbound(&shared.limits) else {
        shared
            .counters
            .count_drop(DropReason::OutboundConnectionLimit);
        return Err(SendError::OutboundConnectionLimit);
    };
    let tcp =
        match tokio::time::timeout(shared.limits.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => {
                shared.counters.count_drop(DropReason::ConnectError);
                return Err(SendError::Io {
                    protocol: destination.protocol,
                    addr,
                    source,
                });
            }
            Err(_) => {
                shared.counters.count_drop(DropReason::ConnectTimeout);
                return Err(SendError::ConnectTimeout(addr));
            }
        };
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().map_err(|source| SendError::Io {
        protocol: destination.protocol,
        addr,
        source,
    })?;
    let (writer, outgoing) = mpsc::channel(shared.limits.connection_write_queue_depth.max(1));
    let id = slot.id();
    match connector {
        None => {
            slot.register(writer.clone(), Some(key));
            let connection =
                Connection::new(Arc::clone(shared), slot, Protocol::Tcp, addr, local, None)
                    .ok_or(SendError::ShutDown)?;
            shared.spawn(stream::run(connection, tcp, outgoing));
        }
        Some(connector) => {
            let identity =
                ServerIdentity::for_destination(addr, destination.server_name.as_deref());
            let limit = shared.limits.tls_handshake_timeout;
            let stream = match tls::connect(&connector, tcp, addr, &identity, limit).await {
                Ok(stream) => {
                    shared.counters.count_tls_connected();
                    stream
                }
                Err(error) => {
                    shared.counters.count_drop(match error {
                        SendError::PeerIdentityMismatch { .. } => {
                            DropReason::TlsPeerIdentityMismatch
                        }
                        SendError::TlsHandshakeTimeout(_) => DropReason::TlsHandshakeTimeout,
                        _ => DropReason::TlsHandshakeFailed,
                    });
                    return Err(error);
                }
            };
            slot.register(writer.clone(), Some(key));
            let connection =
                Connection::new(Arc::clone(shared), slot, Protocol::Tls, addr, local, None)
                    .ok_or(SendError::ShutDown)?;
            shared.spawn(stream::run(connection, stream, outgoing));
        }
    }
    shared.counters.count_opened();
    Ok((id, writer))
}
