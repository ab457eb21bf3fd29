//! Helpers shared by the driver tests: transports on loopback, test messages, a test PKI.
#![allow(dead_code)]

pub mod pki;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sbc_core::net::{
    Inbound, Limits, ListenerConfig, Protocol, TlsClientConfig, Transport, TransportConfig,
    TransportHandle,
};
use tokio::sync::mpsc;

/// Long enough for a loaded 2-core machine, short enough to fail fast.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn addr(text: &str) -> SocketAddr {
    match text.parse() {
        Ok(addr) => addr,
        Err(error) => panic!("bad test address {text}: {error}"),
    }
}

pub async fn bind_with(
    listeners: Vec<ListenerConfig>,
    limits: Limits,
    tls_client: TlsClientConfig,
) -> (TransportHandle, mpsc::Receiver<Inbound>) {
    let config = TransportConfig {
        listeners,
        limits,
        tls_client,
    };
    match Transport::bind(config).await {
        Ok(bound) => bound,
        Err(error) => panic!("bind failed: {error}"),
    }
}

pub async fn bind(listeners: Vec<ListenerConfig>) -> (TransportHandle, mpsc::Receiver<Inbound>) {
    bind_with(listeners, Limits::default(), TlsClientConfig::default()).await
}

/// The bound address of the first listener of `protocol`.
pub fn local(transport: &TransportHandle, protocol: Protocol) -> SocketAddr {
    match transport
        .local_addrs()
        .into_iter()
        .find(|(p, _)| *p == protocol)
    {
        Some((_, addr)) => addr,
        None => panic!("no {protocol} listener"),
    }
}

/// A small well-framed SIP request.
pub fn request(tag: &str) -> Bytes {
    let body = format!("hello {tag}");
    Bytes::from(format!(
        "MESSAGE sip:{tag}@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK{tag}\r\n\
         Call-ID: {tag}\r\nCSeq: 1 MESSAGE\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// A small well-framed SIP response.
pub fn response(tag: &str) -> Bytes {
    Bytes::from(format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK{tag}\r\nCall-ID: {tag}\r\n\
         CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    ))
}

pub async fn recv(inbound: &mut mpsc::Receiver<Inbound>) -> Inbound {
    match tokio::time::timeout(PATIENCE, inbound.recv()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("inbound queue closed"),
        Err(_) => panic!("nothing received within {PATIENCE:?}"),
    }
}

/// Asserts that nothing arrives for a short while.
pub async fn assert_nothing_received(inbound: &mut mpsc::Receiver<Inbound>) {
    if let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(200), inbound.recv()).await
    {
        panic!(
            "unexpected message from {}: {:?}",
            message.source, message.bytes
        );
    }
}

/// Waits until `condition` holds, failing after [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
