//! Errors of the driver's API, typed by fault, each with a stable name.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::Protocol;

/// Why [`super::TransportHandle::send`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The connection of this flow has closed; the caller may send to a destination.
    #[error("the flow's connection is closed")]
    FlowClosed,
    /// No UDP listener is bound on the destination's address family.
    #[error("no UDP socket for the address family of {0}")]
    NoUdpSocket(SocketAddr),
    /// The transport was shut down.
    #[error("the transport is shut down")]
    ShutDown,
    /// The connection's write queue is full (the peer is not reading).
    #[error("the connection's write queue is full")]
    WriteQueueFull,
    /// `max_outbound_connections` reached.
    #[error("too many outbound connections")]
    OutboundConnectionLimit,
    /// Connecting or sending failed at the socket level.
    #[error("{protocol} to {addr}: {source}")]
    Io {
        protocol: Protocol,
        addr: SocketAddr,
        source: io::Error,
    },
    /// The TCP connection was not set up in time.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// The TLS handshake did not finish in time.
    #[error("TLS handshake with {0} timed out")]
    TlsHandshakeTimeout(SocketAddr),
    /// The TLS handshake failed (untrusted chain, protocol error …).
    #[error("TLS handshake with {addr} failed: {reason}")]
    TlsHandshakeFailed { addr: SocketAddr, reason: String },
    /// The peer's certificate chain is valid but names neither the server name nor the
    /// IP address we connected to (RFC 5922 §7).
    #[error("the certificate of {addr} does not match {expected}")]
    PeerIdentityMismatch { addr: SocketAddr, expected: String },
    /// The outbound TLS client could not be set up from its configuration.
    #[error("outbound TLS is not available: {0}")]
    TlsClientUnavailable(String),
}

impl SendError {
    /// A stable name for metric labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            SendError::FlowClosed => "flow_closed",
            SendError::NoUdpSocket(_) => "no_udp_socket",
            SendError::ShutDown => "shut_down",
            SendError::WriteQueueFull => "write_queue_full",
            SendError::OutboundConnectionLimit => "outbound_connection_limit",
            SendError::Io { .. } => "io",
            SendError::ConnectTimeout(_) => "connect_timeout",
            SendError::TlsHandshakeTimeout(_) => "tls_handshake_timeout",
            SendError::TlsHandshakeFailed { .. } => "tls_handshake_failed",
            SendError::PeerIdentityMismatch { .. } => "peer_identity_mismatch",
            SendError::TlsClientUnavailable(_) => "tls_client_unavailable",
        }
    }
}

/// A TLS configuration that cannot be used: a file missing or unreadable, a key that does
/// not match its certificate, mutual TLS without a CA bundle.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the private key in {0} does not match its certificate")]
    KeyMismatch(PathBuf),
    #[error("client certificates are requested but no client CA file is configured")]
    MissingClientCa,
    #[error("TLS listener on {0} has no TLS configuration")]
    MissingListenerTls(SocketAddr),
    #[error("OpenSSL: {0}")]
    OpenSsl(String),
}

impl TlsConfigError {
    /// A stable name for metric labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            TlsConfigError::File { .. } => "file",
            TlsConfigError::KeyMismatch(_) => "key_mismatch",
            TlsConfigError::MissingClientCa => "missing_client_ca",
            TlsConfigError::MissingListenerTls(_) => "missing_listener_tls",
            TlsConfigError::OpenSsl(_) => "openssl",
        }
    }
}

impl From<openssl::error::ErrorStack> for TlsConfigError {
    fn from(error: openssl::error::ErrorStack) -> Self {
        TlsConfigError::OpenSsl(error.to_string())
    }
}

/// Why [`super::Transport::bind`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("binding {protocol} {addr}: {source}")]
    Socket {
        protocol: Protocol,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

impl BindError {
    /// A stable name for metric labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            BindError::Socket { .. } => "socket",
            BindError::Tls(_) => "tls",
        }
    }
}
