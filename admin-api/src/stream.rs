//! A streamed response body (CDR exports): a bounded channel of chunks, written from a
//! blocking thread through [`ByteSink`] (a `std::io::Write`) and read by the HTTP
//! connection as [`ByteStream`]. A client that goes away makes the next write fail, so
//! the producer stops.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Chunks in flight between the producer and the connection.
const CHANNEL_CHUNKS: usize = 8;
/// Bytes gathered before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;

/// The reading side: a response body.
#[derive(Debug)]
pub struct ByteStream {
    receiver: mpsc::Receiver<io::Result<Bytes>>,
}

/// The writing side, for a blocking thread (it blocks while the client is slow).
#[derive(Debug)]
pub struct ByteSink {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

/// A connected sink and stream.
pub fn byte_channel() -> (ByteSink, ByteStream) {
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    (
        ByteSink {
            sender,
            buffer: Vec::with_capacity(CHUNK_BYTES),
        },
        ByteStream { receiver },
    )
}

impl ByteSink {
    fn send(&mut self, chunk: io::Result<Bytes>) -> io::Result<()> {
        self.sender
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Ends the body with an error (the client sees the connection cut short).
    pub fn fail(mut self, error: io::Error) {
        let _ = self.send(Err(error));
    }
}

impl Write for ByteSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.send(Ok(chunk))
    }
}

impl futures_core::Stream for ByteStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}
