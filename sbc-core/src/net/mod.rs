//! The tokio driver: SIP over UDP, TCP and TLS (RFC 3261 §18).
//!
//! The driver moves bytes and decides nothing. Received messages go upward, whole, on a
//! bounded queue of [`Inbound`] values; the layers above send bytes with
//! [`TransportHandle::send`], either back on the flow a message came in on (responses and
//! in-dialog requests, RFC 3261 §18.2.2) or to a [`Destination`] (connecting when needed).
//! Streams are cut into messages by the sans-IO [`crate::sip::framing::StreamFramer`].
//!
//! Every limit is in [`Limits`]; every drop and error is counted by reason in
//! [`TransportCounters`]. Nothing the network sends can block a socket loop, grow a queue or
//! a map without bound, or take a listener down.
//!
//! ```
//! use bytes::Bytes;
//! use sbc_core::net::{ListenerConfig, Protocol, Target, Transport, TransportConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = TransportConfig {
//!     listeners: vec![ListenerConfig::plain(Protocol::Udp, "127.0.0.1:0".parse()?)],
//!     ..TransportConfig::default()
//! };
//! let (transport, mut inbound) = Transport::bind(config).await?;
//! let (_, local) = transport.local_addrs()[0];
//!
//! // A peer sends us a request ...
//! let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
//! peer.send_to(b"OPTIONS sip:sbc SIP/2.0\r\n\r\n", local).await?;
//! let request = inbound.recv().await.ok_or("transport closed")?;
//! assert_eq!(request.source, peer.local_addr()?);
//!
//! // ... and the response goes back on the flow the request came in on.
//! transport
//!     .send(Target::Flow(request.flow), Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"))
//!     .await?;
//! let mut buffer = [0u8; 100];
//! let (len, from) = peer.recv_from(&mut buffer).await?;
//! assert_eq!((&buffer[..len], from), (&b"SIP/2.0 200 OK\r\n\r\n"[..], local));
//!
//! transport.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod config;
mod counters;
mod error;
mod flows;
mod resolve;
mod stream;
mod tcp;
mod tls;
mod transport;
mod udp;
pub mod x5u;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

pub use config::{
    CertificateFiles, ClientAuth, Limits, ListenerConfig, TlsClientConfig, TlsListenerConfig,
    TransportConfig,
};
pub use counters::{DropReason, TransportCounters};
pub use error::{BindError, SendError, TlsConfigError};
pub use resolve::{
    AddressFamilies, RefreshSettings, Resolution, ResolveError, ResolvedTrunk, ResolverSettings,
    TargetResolver, TrunkResolver,
};
pub use tls::{PeerIdentity, ServerIdentity};
pub use transport::{Transport, TransportHandle};

/// The transport protocol of a listener, a flow or a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
    Tls,
}

impl Protocol {
    /// A stable lower-case name (`udp`, `tcp`, `tls`) for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        }
    }

    /// True for the connection-oriented protocols, which are framed by Content-Length.
    pub fn is_stream(self) -> bool {
        !matches!(self, Protocol::Udp)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Identifies the path a message came in on, so that an answer can take the same path
/// back: a connection for TCP/TLS, or the pair (listening socket, remote address) for UDP.
///
/// Opaque and cheap to copy. A stream flow stops being usable when its connection closes
/// ([`SendError::FlowClosed`]); a UDP flow stays usable as long as the transport runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowId(FlowKind);

/// Marks a raw flow number as a UDP socket index (stream ids count up from 1 and never
/// reach it).
const DATAGRAM_FLOW: u64 = 1 << 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum FlowKind {
    /// The UDP socket with this index in the transport, and the remote address.
    Datagram { socket: usize, remote: SocketAddr },
    /// A TCP or TLS connection, numbered from 1 in the order they were set up.
    Stream(u64),
}

impl FlowId {
    /// True for a UDP flow, false for a TCP or TLS connection.
    pub fn is_datagram(&self) -> bool {
        matches!(self.0, FlowKind::Datagram { .. })
    }

    /// The flow as a number, for sans-IO layers that keep an opaque flow beside the remote
    /// address (`transaction::Peer`); [`FlowId::from_raw`] with that address gives it back.
    pub fn to_raw(self) -> u64 {
        match self.0 {
            FlowKind::Datagram { socket, .. } => DATAGRAM_FLOW | socket as u64,
            FlowKind::Stream(id) => id & !DATAGRAM_FLOW,
        }
    }

    /// The flow [`FlowId::to_raw`] numbered; `remote` is the peer's address, which a UDP
    /// flow includes.
    pub fn from_raw(raw: u64, remote: SocketAddr) -> FlowId {
        if raw & DATAGRAM_FLOW != 0 {
            // Socket indexes are small (one per UDP listener), so this cannot truncate.
            let socket = usize::try_from(raw & !DATAGRAM_FLOW).unwrap_or(usize::MAX);
            FlowId(FlowKind::Datagram { socket, remote })
        } else {
            FlowId(FlowKind::Stream(raw))
        }
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            FlowKind::Datagram { socket, remote } => write!(f, "udp{socket}/{remote}"),
            FlowKind::Stream(id) => write!(f, "conn{id}"),
        }
    }
}

/// One complete message received, with where it came from. `bytes` is a whole datagram or
/// one framed stream message; it has not been parsed.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub bytes: Bytes,
    /// The peer's address (for a stream, the remote end of the connection).
    pub source: SocketAddr,
    /// Our address it arrived on: the local end of the connection, or for UDP the
    /// listener's bound address (the wildcard, for a listener bound to one).
    pub local: SocketAddr,
    pub protocol: Protocol,
    /// The flow to answer on.
    pub flow: FlowId,
    /// For TLS, the peer's verified client certificate, when it presented one.
    pub tls_peer: Option<Arc<PeerIdentity>>,
}

/// Where [`TransportHandle::send`] sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Back on an existing flow (RFC 3261 §18.2.2: responses go on the connection the
    /// request came in on).
    Flow(FlowId),
    /// To an address: over UDP from the listener of the matching address family; over
    /// TCP/TLS on an existing connection to it when there is one, else a new one.
    Destination(Destination),
}

/// A next hop, already resolved to an address (DNS is not the driver's job).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Destination {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    /// For TLS: the host name the peer's certificate must match (RFC 5922 §7), also sent
    /// as SNI. `None` means the certificate must match `addr`'s IP address.
    pub server_name: Option<String>,
}

impl Destination {
    /// A destination without a server name.
    pub fn new(protocol: Protocol, addr: SocketAddr) -> Destination {
        Destination {
            protocol,
            addr,
            server_name: None,
        }
    }

    /// A TLS destination whose certificate must match `server_name`.
    pub fn tls(addr: SocketAddr, server_name: impl Into<String>) -> Destination {
        Destination {
            protocol: Protocol::Tls,
            addr,
            server_name: Some(server_name.into()),
        }
    }
}
