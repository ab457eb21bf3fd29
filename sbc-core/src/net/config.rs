//! What the driver listens on, how it talks TLS, and its limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Protocol;
use crate::sip::framing::FramingLimits;

/// Everything [`super::Transport::bind`] needs.
#[derive(Clone, Debug, Default)]
pub struct TransportConfig {
    pub listeners: Vec<ListenerConfig>,
    pub limits: Limits,
    /// How outbound TLS connections verify peers and authenticate themselves.
    pub tls_client: TlsClientConfig,
}

/// One listening socket.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    pub protocol: Protocol,
    /// Port 0 picks a free port; [`super::TransportHandle::local_addrs`] tells which.
    pub addr: SocketAddr,
    /// Required for [`Protocol::Tls`], ignored otherwise.
    pub tls: Option<TlsListenerConfig>,
}

impl ListenerConfig {
    /// A UDP or TCP listener.
    pub fn plain(protocol: Protocol, addr: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            protocol,
            addr,
            tls: None,
        }
    }

    /// A TLS listener.
    pub fn tls(addr: SocketAddr, tls: TlsListenerConfig) -> ListenerConfig {
        ListenerConfig {
            protocol: Protocol::Tls,
            addr,
            tls: Some(tls),
        }
    }
}

/// A certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The leaf certificate first, then any intermediates.
    pub chain_file: PathBuf,
    pub key_file: PathBuf,
}

/// Whether a TLS listener asks for client certificates (mutual TLS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is requested.
    #[default]
    None,
    /// Requested and verified when presented; a client without one is still accepted
    /// (its [`super::Inbound::tls_peer`] is `None`).
    Optional,
    /// A client without a certificate that verifies is refused during the handshake.
    Required,
}

/// The TLS side of a listener. TLS 1.2 is the minimum version.
#[derive(Clone, Debug)]
pub struct TlsListenerConfig {
    /// Served when the client sends no SNI or one that matches no entry of `sni`.
    pub default_certificate: CertificateFiles,
    /// Certificates chosen by the SNI host name the client asks for (compared
    /// case-insensitively).
    pub sni: Vec<(String, CertificateFiles)>,
    pub client_auth: ClientAuth,
    /// CA bundle (PEM) that client certificates must chain to; required unless
    /// `client_auth` is [`ClientAuth::None`].
    pub client_ca_file: Option<PathBuf>,
}

impl TlsListenerConfig {
    /// A listener with one certificate and no client authentication.
    pub fn new(default_certificate: CertificateFiles) -> TlsListenerConfig {
        TlsListenerConfig {
            default_certificate,
            sni: Vec::new(),
            client_auth: ClientAuth::None,
            client_ca_file: None,
        }
    }
}

/// How outbound TLS connections are made.
#[derive(Clone, Debug, Default)]
pub struct TlsClientConfig {
    /// CA bundle (PEM) that peers' certificates must chain to; `None` uses the system's
    /// trusted roots. When set, only these CAs are trusted.
    pub ca_file: Option<PathBuf>,
    /// A client certificate for peers that require mutual TLS.
    pub client_certificate: Option<CertificateFiles>,
}

/// Limits that keep the driver's memory and time bounded whatever the network sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Larger UDP datagrams are dropped and counted.
    pub max_datagram_bytes: usize,
    /// Largest stream message (header section plus body); larger closes the connection.
    pub max_stream_message_bytes: usize,
    /// Largest header section of a stream message.
    pub max_header_bytes: usize,
    /// Accepted TCP/TLS connections open at once (handshakes included); excess ones are
    /// closed as soon as they are accepted.
    pub max_connections: usize,
    /// Accepted connections open at once from one source IP address.
    pub max_connections_per_ip: usize,
    /// Connections we opened to peers, open at once.
    pub max_outbound_connections: usize,
    /// A connection on which nothing is read or written for this long is closed.
    pub idle_timeout: Duration,
    /// A message whose first byte arrived this long ago and is still incomplete closes the
    /// connection (slow-drip defence).
    pub incomplete_message_timeout: Duration,
    /// The TLS handshake, inbound or outbound, must finish within this.
    pub tls_handshake_timeout: Duration,
    /// Outbound TCP connection set-up must finish within this.
    pub connect_timeout: Duration,
    /// Writing one message to a connection must finish within this, else it is closed.
    pub write_timeout: Duration,
    /// Depth of the upward [`super::Inbound`] queue; when full, messages are dropped and
    /// counted.
    pub inbound_queue_depth: usize,
    /// Messages waiting to be written on one connection; when full, `send` fails.
    pub connection_write_queue_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_datagram_bytes: 64 * 1024,
            max_stream_message_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_outbound_connections: 1_000,
            idle_timeout: Duration::from_secs(300),
            incomplete_message_timeout: Duration::from_secs(32),
            tls_handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            inbound_queue_depth: 10_000,
            connection_write_queue_depth: 256,
        }
    }
}

impl Limits {
    /// The framer limits for stream connections.
    pub fn framing(&self) -> FramingLimits {
        FramingLimits {
            max_header_bytes: self.max_header_bytes,
            max_message_bytes: self.max_stream_message_bytes,
        }
    }
}
