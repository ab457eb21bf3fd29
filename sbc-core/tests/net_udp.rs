//! The UDP transport on loopback.

mod net_common;

use bytes::Bytes;
use net_common::*;
use sbc_core::net::{
    Destination, DropReason, Limits, ListenerConfig, Protocol, SendError, Target, TlsClientConfig,
};
use tokio::net::UdpSocket;

async fn peer(at: &str) -> UdpSocket {
    match UdpSocket::bind(at).await {
        Ok(socket) => socket,
        Err(error) => panic!("binding peer {at}: {error}"),
    }
}

async fn peer_recv(socket: &UdpSocket) -> (Vec<u8>, std::net::SocketAddr) {
    let mut buffer = vec![0u8; 70_000];
    match tokio::time::timeout(PATIENCE, socket.recv_from(&mut buffer)).await {
        Ok(Ok((len, from))) => (buffer[..len].to_vec(), from),
        other => panic!("peer received nothing: {other:?}"),
    }
}

#[tokio::test]
async fn request_in_response_back_on_the_flow() {
    let (transport, mut inbound) = bind(vec![ListenerConfig::plain(
        Protocol::Udp,
        addr("127.0.0.1:0"),
    )])
    .await;
    let sbc = local(&transport, Protocol::Udp);
    let phone = peer("127.0.0.2:0").await;
    let sent = request("udp1");
    phone.send_to(&sent, sbc).await.ok();

    let received = recv(&mut inbound).await;
    assert_eq!(received.bytes, sent);
    assert_eq!(received.source, phone.local_addr().ok().unwrap_or(sbc));
    assert_eq!(received.local, sbc);
    assert_eq!(received.protocol, Protocol::Udp);
    assert!(received.flow.is_datagram());
    assert!(received.tls_peer.is_none());

    let answer = response("udp1");
    let flow = transport
        .send(Target::Flow(received.flow), answer.clone())
        .await;
    assert_eq!(flow.ok(), Some(received.flow));
    assert_eq!(peer_recv(&phone).await, (answer.to_vec(), sbc));
    assert_eq!(transport.counters().messages_received(), 1);
    assert_eq!(transport.counters().messages_sent(), 1);
    transport.shutdown().await;
}

#[tokio::test]
async fn send_to_a_destination_goes_out_from_the_listener() {
    let (transport, _inbound) = bind(vec![ListenerConfig::plain(
        Protocol::Udp,
        addr("127.0.0.1:0"),
    )])
    .await;
    let sbc = local(&transport, Protocol::Udp);
    let trunk = peer("127.0.0.3:0").await;
    let Ok(trunk_addr) = trunk.local_addr() else {
        panic!("no trunk address");
    };
    let message = request("out");
    let sent = transport
        .send(
            Target::Destination(Destination::new(Protocol::Udp, trunk_addr)),
            message.clone(),
        )
        .await;
    assert!(sent.is_ok(), "{sent:?}");
    assert_eq!(peer_recv(&trunk).await, (message.to_vec(), sbc));

    // No IPv6 listener: sending to an IPv6 address has no socket to go from.
    let v6 = Destination::new(Protocol::Udp, addr("[::1]:5060"));
    let error = transport.send(Target::Destination(v6), message).await;
    assert!(matches!(error, Err(SendError::NoUdpSocket(_))), "{error:?}");
    transport.shutdown().await;
}

#[tokio::test]
async fn oversized_datagram_is_dropped_and_counted_and_the_next_one_delivered() {
    let limits = Limits {
        max_datagram_bytes: 1000,
        ..Limits::default()
    };
    let (transport, mut inbound) = bind_with(
        vec![ListenerConfig::plain(Protocol::Udp, addr("127.0.0.1:0"))],
        limits,
        TlsClientConfig::default(),
    )
    .await;
    let sbc = local(&transport, Protocol::Udp);
    let attacker = peer("127.0.0.2:0").await;
    attacker.send_to(&vec![b'A'; 1001], sbc).await.ok();
    attacker.send_to(&vec![b'B'; 60_000], sbc).await.ok();
    let exactly_max = vec![b'C'; 1000];
    attacker.send_to(&exactly_max, sbc).await.ok();
    let valid = request("after-oversize");
    attacker.send_to(&valid, sbc).await.ok();

    assert_eq!(recv(&mut inbound).await.bytes, Bytes::from(exactly_max));
    assert_eq!(recv(&mut inbound).await.bytes, valid);
    let counters = transport.counters();
    assert_eq!(counters.drops(DropReason::UdpDatagramTooLarge), 2);
    transport.shutdown().await;
}

#[tokio::test]
async fn crlf_keepalive_datagrams_are_not_delivered() {
    let (transport, mut inbound) = bind(vec![ListenerConfig::plain(
        Protocol::Udp,
        addr("127.0.0.1:0"),
    )])
    .await;
    let sbc = local(&transport, Protocol::Udp);
    let phone = peer("127.0.0.1:0").await;
    phone.send_to(b"\r\n\r\n", sbc).await.ok();
    phone.send_to(b"", sbc).await.ok();
    let valid = request("after-keepalive");
    phone.send_to(&valid, sbc).await.ok();
    assert_eq!(recv(&mut inbound).await.bytes, valid);
    assert_nothing_received(&mut inbound).await;
    transport.shutdown().await;
}

#[tokio::test]
async fn a_full_inbound_queue_drops_and_counts_without_blocking_the_socket() {
    let limits = Limits {
        inbound_queue_depth: 2,
        ..Limits::default()
    };
    let (transport, mut inbound) = bind_with(
        vec![ListenerConfig::plain(Protocol::Udp, addr("127.0.0.1:0"))],
        limits,
        TlsClientConfig::default(),
    )
    .await;
    let sbc = local(&transport, Protocol::Udp);
    let phone = peer("127.0.0.1:0").await;
    for i in 0..5 {
        phone.send_to(&request(&format!("q{i}")), sbc).await.ok();
    }
    let counters = transport.counters();
    eventually("all five datagrams handled", || {
        counters.messages_received() + counters.drops(DropReason::InboundQueueFull) == 5
    })
    .await;
    assert_eq!(counters.messages_received(), 2);
    assert_eq!(recv(&mut inbound).await.bytes, request("q0"));
    assert_eq!(recv(&mut inbound).await.bytes, request("q1"));
    // The loop is still alive.
    phone.send_to(&request("later"), sbc).await.ok();
    assert_eq!(recv(&mut inbound).await.bytes, request("later"));
    transport.shutdown().await;
}

#[tokio::test]
async fn ipv6_loopback_when_available() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback");
        return;
    }
    let (transport, mut inbound) = bind(vec![
        ListenerConfig::plain(Protocol::Udp, addr("127.0.0.1:0")),
        ListenerConfig::plain(Protocol::Udp, addr("[::1]:0")),
    ])
    .await;
    let sbc6 = transport.local_addrs()[1].1;
    let phone = peer("[::1]:0").await;
    phone.send_to(&request("v6"), sbc6).await.ok();
    let received = recv(&mut inbound).await;
    assert!(received.source.is_ipv6());
    let Ok(phone_addr) = phone.local_addr() else {
        panic!("no phone address");
    };
    let answer = response("v6");
    let sent = transport
        .send(
            Target::Destination(Destination::new(Protocol::Udp, phone_addr)),
            answer.clone(),
        )
        .await;
    assert!(sent.is_ok());
    assert_eq!(peer_recv(&phone).await, (answer.to_vec(), sbc6));
    transport.shutdown().await;
}

#[tokio::test]
async fn after_shutdown_sends_fail_and_nothing_is_received() {
    let (transport, mut inbound) = bind(vec![ListenerConfig::plain(
        Protocol::Udp,
        addr("127.0.0.1:0"),
    )])
    .await;
    let sbc = local(&transport, Protocol::Udp);
    transport.shutdown().await;
    let error = transport
        .send(
            Target::Destination(Destination::new(Protocol::Udp, sbc)),
            request("late"),
        )
        .await;
    assert!(matches!(error, Err(SendError::ShutDown)));
    // Every task has ended, so the inbound sender is gone.
    assert!(inbound.recv().await.is_none());
}
