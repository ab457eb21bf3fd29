//! One TCP or TLS connection: read and frame, hand messages upward, answer keep-alives,
//! write what is queued, and close on idleness, slow drip, framing errors or write stalls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::flows::ConnectionSlot;
use super::transport::{Shared, Upward};
use super::{DropReason, FlowId, FlowKind, Inbound, PeerIdentity, Protocol};
use crate::sip::framing::{Frame, StreamFramer};

/// Bytes read per call; the framer holds at most one message beyond that.
const READ_CHUNK: usize = 16 * 1024;
/// How long a closing connection may take to say goodbye (TLS close_notify).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
const PONG: &[u8] = b"\r\n";

/// Everything a connection task needs besides its byte stream.
#[derive(Debug)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
    upward: Upward,
    /// Releases the connection's place in the flow table when the task ends.
    slot: ConnectionSlot,
    protocol: Protocol,
    remote: SocketAddr,
    local: SocketAddr,
    tls_peer: Option<Arc<PeerIdentity>>,
}

impl Connection {
    /// `None` once the transport is shut down.
    pub fn new(
        shared: Arc<Shared>,
        slot: ConnectionSlot,
        protocol: Protocol,
        remote: SocketAddr,
        local: SocketAddr,
        tls_peer: Option<Arc<PeerIdentity>>,
    ) -> Option<Connection> {
        Some(Connection {
            upward: shared.upward()?,
            shared,
            slot,
            protocol,
            remote,
            local,
            tls_peer,
        })
    }

    fn deliver(&self, bytes: Bytes) {
        self.upward.deliver(Inbound {
            bytes,
            source: self.remote,
            local: self.local,
            protocol: self.protocol,
            flow: FlowId(FlowKind::Stream(self.slot.id())),
            tls_peer: self.tls_peer.clone(),
        });
    }

    fn count(&self, reason: DropReason) {
        self.shared.counters.count_drop(reason);
    }
}

/// Runs a connection until the peer closes it, a limit closes it, or shutdown.
pub(crate) async fn run<S>(
    connection: Connection,
    mut stream: S,
    mut outgoing: mpsc::Receiver<Bytes>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = serve(&connection, &mut stream, &mut outgoing).await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
}

/// Why `serve` stopped (already counted); `Ok` for an orderly close by the peer.
type Closed = Result<(), DropReason>;

async fn serve<S>(
    connection: &Connection,
    stream: &mut S,
    outgoing: &mut mpsc::Receiver<Bytes>,
) -> Closed
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = connection.shared.limits;
    let mut framer = StreamFramer::new(limits.framing());
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut last_activity = Instant::now();
    // When the first byte of the message still incomplete arrived.
    let mut partial_since: Option<Instant> = None;
    loop {
        let idle_deadline = after(last_activity, limits.idle_timeout);
        let (deadline, timeout_reason) = match partial_since {
            Some(since) if after(since, limits.incomplete_message_timeout) < idle_deadline => (
                after(since, limits.incomplete_message_timeout),
                DropReason::IncompleteMessageTimeout,
            ),
            _ => (idle_deadline, DropReason::IdleTimeout),
        };
        tokio::select! {
            read = stream.read(&mut buffer) => {
                let len = match read {
                    Ok(0) => return Ok(()),
                    Ok(len) => len,
                    Err(_) => return closed(connection, DropReason::ReadError),
                };
                last_activity = Instant::now();
                framer.handle_data(buffer.get(..len).unwrap_or_default());
                let mut completed_message = false;
                let mut pings = 0;
                while let Some(frame) = framer.poll_frame() {
                    match frame {
                        Ok(Frame::Message(bytes)) => {
                            completed_message = true;
                            connection.deliver(bytes);
                        }
                        Ok(Frame::KeepAlivePing) => pings += 1,
                        Ok(Frame::KeepAlivePong) => {}
                        Err(error) => {
                            return closed(connection, DropReason::from_framing(&error));
                        }
                    }
                }
                if pings > 0 {
                    // One write for all the pings of this read: a read full of CRLFs would
                    // otherwise cost thousands of writes and flushes (and, over TLS, as
                    // many records), which is the peer's to ask for but not ours to pay.
                    write(connection, stream, &PONG.repeat(pings)).await?;
                    connection.shared.counters.count_pings_answered(pings);
                }
                partial_since = match (framer.is_mid_message(), partial_since) {
                    (false, _) => None,
                    (true, Some(since)) if !completed_message => Some(since),
                    (true, _) => Some(last_activity),
                };
            }
            Some(bytes) = outgoing.recv() => {
                write(connection, stream, &bytes).await?;
                last_activity = Instant::now();
            }
            () = tokio::time::sleep_until(deadline) => return closed(connection, timeout_reason),
        }
    }
}

/// `start + duration`, saturating at about a year for absurdly large configured limits
/// instead of overflowing.
fn after(start: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    start.checked_add(duration.min(FAR)).unwrap_or(start)
}

fn closed(connection: &Connection, reason: DropReason) -> Closed {
    connection.count(reason);
    Err(reason)
}

async fn write<S>(connection: &Connection, stream: &mut S, bytes: &[u8]) -> Closed
where
    S: AsyncWrite + Unpin,
{
    let limit = connection.shared.limits.write_timeout;
    let written = tokio::time::timeout(limit, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => closed(connection, DropReason::WriteError),
        Err(_) => closed(connection, DropReason::WriteTimeout),
    }
}
