//! Errors of the control API, typed by fault, each with a stable name for metric labels.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a control request failed.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum RelayError {
    /// The port pool has too few free port pairs for the request (capacity, not a bug).
    #[error("port pool exhausted: {needed} port pairs needed, {free} free")]
    PoolExhausted { needed: usize, free: usize },
    /// Binding a socket failed for a reason other than the port being taken by someone else.
    #[error("cannot bind relay socket on port {port}: {reason}")]
    Bind { port: u16, reason: String },
    /// The session is unknown (never allocated, or already released).
    #[error("unknown media session {0}")]
    UnknownSession(u64),
    /// The stream index is not one of the session's streams.
    #[error("session {session} has no stream {stream}")]
    UnknownStream { session: u64, stream: usize },
    /// A request for zero streams, or more than the configured maximum per session.
    #[error("invalid stream count {requested} (1..={max} allowed per session)")]
    InvalidStreamCount { requested: usize, max: usize },
    /// The worker's command queue is full (overload); the request had no effect.
    #[error("relay worker {0} is busy")]
    WorkerBusy(usize),
    /// The worker did not answer in time, or has stopped.
    #[error("relay worker {0} did not answer")]
    WorkerUnavailable(usize),
    /// Key material that does not fit its suite (lengths, MKIs), or a suite without a use.
    #[error("invalid media keys: {0}")]
    InvalidKeys(String),
    /// The configuration is unusable.
    #[error("invalid relay configuration: {0}")]
    InvalidConfig(String),
    /// Starting a worker failed (epoll, eventfd or thread creation).
    #[error("cannot start relay worker: {0}")]
    Start(String),
}

impl RelayError {
    /// A stable name for metric labels and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::PoolExhausted { .. } => "pool_exhausted",
            Self::Bind { .. } => "bind_failed",
            Self::UnknownSession(_) => "unknown_session",
            Self::UnknownStream { .. } => "unknown_stream",
            Self::InvalidStreamCount { .. } => "invalid_stream_count",
            Self::WorkerBusy(_) => "worker_busy",
            Self::WorkerUnavailable(_) => "worker_unavailable",
            Self::InvalidKeys(_) => "invalid_keys",
            Self::InvalidConfig(_) => "invalid_config",
            Self::Start(_) => "start_failed",
        }
    }
}
