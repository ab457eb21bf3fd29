//! Sending without stalling the signalling loop.
//!
//! Answers go back on a known flow and are queued at once, so the loop sends them itself.
//! A request to a new TCP or TLS destination may have to connect and handshake first,
//! which can take seconds; the loop must not wait for that. Such sends go to one small
//! task per destination, which sends in the order it was given (so a call's messages are
//! never reordered) and reports failures back to the loop. Tasks end after a minute
//! without work, and their number is bounded.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use sbc_core::net::{Destination, SendError, Target, TransportHandle};
use tokio::sync::mpsc;
use tracing::debug;

/// Destinations with a sending task at once; past it, sends to a new destination fail
/// (and are reported like any other failed send).
const MAX_DESTINATION_TASKS: usize = 4_096;
/// Messages waiting for one destination; past it, sends fail at once.
const QUEUE_PER_DESTINATION: usize = 256;
/// A destination task with nothing to send for this long ends.
const IDLE: Duration = Duration::from_secs(60);

/// A send that failed, with the token the caller gave it.
#[derive(Debug)]
pub struct Failed<T> {
    pub token: T,
    pub error: String,
}

/// Sends to destinations through per-destination tasks; see the module docs.
#[derive(Debug)]
pub struct Outbound<T> {
    transport: TransportHandle,
    queues: HashMap<Destination, mpsc::Sender<(T, Bytes)>>,
    failures: mpsc::Sender<Failed<T>>,
}

impl<T: Send + 'static> Outbound<T> {
    /// Failures come out of the returned receiver.
    pub fn new(transport: TransportHandle) -> (Outbound<T>, mpsc::Receiver<Failed<T>>) {
        let (failures, failed) = mpsc::channel(1_024);
        let outbound = Outbound {
            transport,
            queues: HashMap::new(),
            failures,
        };
        (outbound, failed)
    }

    /// Sends `bytes` to `target`: on a flow, now; to a destination, through its task.
    /// Returns the error at once when it is known at once.
    pub async fn send(&mut self, target: Target, bytes: Bytes, token: T) -> Result<(), Failed<T>> {
        match target {
            Target::Flow(_) => self.send_now(target, bytes, token).await,
            Target::Destination(destination) if !destination.protocol.is_stream() => {
                self.send_now(Target::Destination(destination), bytes, token)
                    .await
            }
            Target::Destination(destination) => self.enqueue(destination, bytes, token),
        }
    }

    async fn send_now(&self, target: Target, bytes: Bytes, token: T) -> Result<(), Failed<T>> {
        self.transport
            .send(target, bytes)
            .await
            .map(drop)
            .map_err(|error| failed(token, &error))
    }

    fn enqueue(
        &mut self,
        destination: Destination,
        bytes: Bytes,
        token: T,
    ) -> Result<(), Failed<T>> {
        let mut item = (token, bytes);
        // At most two rounds: a closed queue (its task ended idle) is replaced once.
        for _ in 0..2 {
            if let Some(queue) = self.queues.get(&destination) {
                match queue.try_send(item) {
                    Ok(()) => return Ok(()),
                    Err(mpsc::error::TrySendError::Full((token, _))) => {
                        return Err(Failed {
                            token,
                            error: format!("send queue to {} is full", destination.addr),
                        });
                    }
                    Err(mpsc::error::TrySendError::Closed(returned)) => {
                        self.queues.remove(&destination);
                        item = returned;
                    }
                }
            }
            if self.queues.len() >= MAX_DESTINATION_TASKS {
                self.queues.retain(|_, queue| !queue.is_closed());
                if self.queues.len() >= MAX_DESTINATION_TASKS {
                    return Err(Failed {
                        token: item.0,
                        error: "too many destinations with sends in progress".into(),
                    });
                }
            }
            let (queue, work) = mpsc::channel(QUEUE_PER_DESTINATION);
            tokio::spawn(destination_task(
                self.transport.clone(),
                destination.clone(),
                work,
                self.failures.clone(),
            ));
            self.queues.insert(destination.clone(), queue);
        }
        Err(Failed {
            token: item.0,
            error: "destination task unavailable".into(),
        })
    }
}

fn failed<T>(token: T, error: &SendError) -> Failed<T> {
    Failed {
        token,
        error: format!("{error} ({})", error.name()),
    }
}

/// Sends one destination's messages in order until idle.
async fn destination_task<T>(
    transport: TransportHandle,
    destination: Destination,
    mut work: mpsc::Receiver<(T, Bytes)>,
    failures: mpsc::Sender<Failed<T>>,
) {
    loop {
        let next = tokio::time::timeout(IDLE, work.recv()).await;
        let Ok(Some((token, bytes))) = next else {
            debug!(destination = %destination.addr, "destination sender idle, ending");
            return;
        };
        if let Err(error) = transport
            .send(Target::Destination(destination.clone()), bytes)
            .await
        {
            // The loop may be gone (shutting down); nothing else to do then.
            let _ = failures.try_send(failed(token, &error));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use sbc_core::net::{ListenerConfig, Protocol, Transport, TransportConfig};
    use tokio::io::AsyncReadExt;

    async fn transport() -> TransportHandle {
        let config = TransportConfig {
            listeners: vec![ListenerConfig::plain(
                Protocol::Tcp,
                "127.0.0.1:0".parse().unwrap(),
            )],
            ..TransportConfig::default()
        };
        Transport::bind(config).await.unwrap().0
    }

    fn message(n: usize) -> Bytes {
        Bytes::from(format!(
            "OPTIONS sip:x SIP/2.0\r\nCall-ID: {n:04}\r\nContent-Length: 0\r\n\r\n"
        ))
    }

    #[tokio::test]
    async fn sends_to_a_new_destination_arrive_in_order_without_blocking() {
        let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let destination = Destination::new(Protocol::Tcp, peer.local_addr().unwrap());
        let (mut outbound, _failed) = Outbound::new(transport().await);
        for n in 0..100 {
            // Returns at once: the connection is set up by the destination's task.
            outbound
                .send(Target::Destination(destination.clone()), message(n), n)
                .await
                .unwrap();
        }
        let (mut stream, _) = peer.accept().await.unwrap();
        let expected: Vec<u8> = (0..100).flat_map(|n| message(n).to_vec()).collect();
        let mut received = vec![0u8; expected.len()];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut received))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(received, expected);
    }

    #[tokio::test]
    async fn a_failed_connection_is_reported_with_its_token() {
        // Bind then drop: nothing listens on this port any more.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let destination = Destination::new(Protocol::Tcp, closed.local_addr().unwrap());
        drop(closed);
        let (mut outbound, mut failed) = Outbound::new(transport().await);
        outbound
            .send(Target::Destination(destination), message(7), 7usize)
            .await
            .unwrap();
        let failure = tokio::time::timeout(Duration::from_secs(10), failed.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failure.token, 7);
    }
}
