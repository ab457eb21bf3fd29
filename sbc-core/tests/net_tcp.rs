//! The TCP transport on loopback: framing, connection reuse, limits, abuse.

mod net_common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use net_common::*;
use sbc_core::net::{
    Destination, DropReason, Inbound, Limits, ListenerConfig, Protocol, SendError, Target,
    TlsClientConfig, TransportHandle,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

async fn tcp_transport(limits: Limits) -> (TransportHandle, mpsc::Receiver<Inbound>, SocketAddr) {
    let (transport, inbound) = bind_with(
        vec![ListenerConfig::plain(Protocol::Tcp, addr("127.0.0.1:0"))],
        limits,
        TlsClientConfig::default(),
    )
    .await;
    let local = local(&transport, Protocol::Tcp);
    (transport, inbound, local)
}

/// A client connection from a chosen loopback address.
async fn connect_from(source_ip: &str, to: SocketAddr) -> TcpStream {
    let socket = match TcpSocket::new_v4() {
        Ok(socket) => socket,
        Err(error) => panic!("socket: {error}"),
    };
    if let Err(error) = socket.bind(addr(&format!("{source_ip}:0"))) {
        panic!("bind {source_ip}: {error}");
    }
    match socket.connect(to).await {
        Ok(stream) => stream,
        Err(error) => panic!("connect {to}: {error}"),
    }
}

/// Reads exactly `len` bytes.
async fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buffer = vec![0u8; len];
    match tokio::time::timeout(PATIENCE, stream.read_exact(&mut buffer)).await {
        Ok(Ok(_)) => buffer,
        other => panic!("reading {len} bytes: {other:?}"),
    }
}

/// True when the server closed the connection (EOF or reset) within the patience.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) {
    if let Err(error) = stream.write_all(bytes).await {
        panic!("write: {error}");
    }
}

/// RFC 5626 §4.4.1: every double-CRLF ping gets its single-CRLF pong, however many come
/// in one read, and nothing else is sent back.
#[tokio::test]
async fn a_burst_of_pings_gets_one_pong_each() {
    let (transport, mut inbound, sbc) = tcp_transport(Limits::default()).await;
    let mut phone = connect_from("127.0.0.2", sbc).await;
    const PINGS: usize = 1_000;
    let burst = [b"\r\n\r\n".repeat(PINGS), request("after-pings").to_vec()].concat();
    write(&mut phone, &burst).await;
    assert_eq!(recv(&mut inbound).await.bytes, request("after-pings"));
    assert_eq!(
        read_exactly(&mut phone, 2 * PINGS).await,
        b"\r\n".repeat(PINGS)
    );
    assert_eq!(
        transport.counters().keepalive_pings_answered(),
        u64::try_from(PINGS).unwrap_or(u64::MAX)
    );
    // Nothing more than the pongs.
    let mut extra = [0u8; 1];
    let more = tokio::time::timeout(Duration::from_millis(100), phone.read(&mut extra)).await;
    assert!(more.is_err(), "unexpected bytes after the pongs: {more:?}");
}

#[tokio::test]
async fn response_goes_back_on_the_connection_the_request_came_in_on() {
    let (transport, mut inbound, sbc) = tcp_transport(Limits::default()).await;
    let mut phone = connect_from("127.0.0.2", sbc).await;
    let first = request("tcp1");
    let second = request("tcp2");
    // Two messages in one write, with a keep-alive between them, split oddly.
    let stream = [first.as_ref(), b"\r\n\r\n", second.as_ref()].concat();
    write(&mut phone, &stream[..7]).await;
    write(&mut phone, &stream[7..]).await;

    let received = recv(&mut inbound).await;
    assert_eq!(received.bytes, first);
    assert_eq!(received.protocol, Protocol::Tcp);
    assert_eq!(received.local, sbc);
    assert_eq!(Some(received.source), phone.local_addr().ok());
    assert!(!received.flow.is_datagram());
    let again = recv(&mut inbound).await;
    assert_eq!(again.bytes, second);
    assert_eq!(again.flow, received.flow);
    // The ping was answered.
    assert_eq!(read_exactly(&mut phone, 2).await, b"\r\n");

    let answer = response("tcp1");
    let sent = transport
        .send(Target::Flow(received.flow), answer.clone())
        .await;
    assert_eq!(sent.ok(), Some(received.flow));
    assert_eq!(read_exactly(&mut phone, answer.len()).await, answer);

    // Sending to the phone's address reuses the accepted connection too.
    let by_address = Destination::new(Protocol::Tcp, received.source);
    let sent = transport
        .send(Target::Destination(by_address), answer.clone())
        .await;
    assert_eq!(sent.ok(), Some(received.flow));
    assert_eq!(read_exactly(&mut phone, answer.len()).await, answer);
    assert_eq!(transport.counters().keepalive_pings_answered(), 1);

    // Once the phone hangs up, the flow is gone.
    drop(phone);
    let transport_ref = &transport;
    let flow = received.flow;
    eventually("the connection to close", || {
        transport_ref.open_connections() == 0
    })
    .await;
    let error = transport.send(Target::Flow(flow), answer).await;
    assert!(matches!(error, Err(SendError::FlowClosed)), "{error:?}");
    transport.shutdown().await;
}

#[tokio::test]
async fn outbound_connection_is_made_once_reused_and_carries_responses_upward() {
    let (server, mut server_inbound, server_addr) = tcp_transport(Limits::default()).await;
    let (client, mut client_inbound, _) = tcp_transport(Limits::default()).await;
    let destination = Target::Destination(Destination::new(Protocol::Tcp, server_addr));

    let flow = match client.send(destination.clone(), request("out1")).await {
        Ok(flow) => flow,
        Err(error) => panic!("send: {error}"),
    };
    let at_server = recv(&mut server_inbound).await;
    assert_eq!(at_server.bytes, request("out1"));
    let sent = server
        .send(Target::Flow(at_server.flow), response("out1"))
        .await;
    assert!(sent.is_ok());
    let at_client = recv(&mut client_inbound).await;
    assert_eq!(at_client.bytes, response("out1"));
    assert_eq!(at_client.flow, flow);
    assert_eq!(at_client.source, server_addr);

    // Same destination: same connection.
    let again = client.send(destination, request("out2")).await;
    assert_eq!(again.ok(), Some(flow));
    let at_server = recv(&mut server_inbound).await;
    assert_eq!(at_server.bytes, request("out2"));
    assert_eq!(client.counters().connections_opened(), 1);
    assert_eq!(client.open_connections(), 1);

    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_sends_to_a_new_destination_open_one_connection() {
    let (server, mut server_inbound, server_addr) = tcp_transport(Limits::default()).await;
    let (client, _client_inbound, _) = tcp_transport(Limits::default()).await;
    let destination = Target::Destination(Destination::new(Protocol::Tcp, server_addr));
    let sends = (0..8).map(|i| {
        let client = client.clone();
        let destination = destination.clone();
        tokio::spawn(async move { client.send(destination, request(&format!("c{i}"))).await })
    });
    let mut flows = Vec::new();
    for send in sends {
        match send.await {
            Ok(Ok(flow)) => flows.push(flow),
            other => panic!("send failed: {other:?}"),
        }
    }
    flows.dedup();
    assert_eq!(flows.len(), 1);
    for _ in 0..8 {
        recv(&mut server_inbound).await;
    }
    assert_eq!(client.counters().connections_opened(), 1);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_cleanly() {
    let (client, _inbound, _) = tcp_transport(Limits::default()).await;
    // Bind then drop a listener to get a port nobody listens on.
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(error) => panic!("{error}"),
    };
    let nowhere = Destination::new(Protocol::Tcp, SocketAddr::from(([127, 0, 0, 1], port)));
    let error = client
        .send(Target::Destination(nowhere), request("x"))
        .await;
    assert!(matches!(error, Err(SendError::Io { .. })), "{error:?}");
    assert_eq!(client.counters().drops(DropReason::ConnectError), 1);
    assert_eq!(client.open_connections(), 0);
    client.shutdown().await;
}

#[tokio::test]
async fn connections_per_source_ip_are_limited() {
    let limits = Limits {
        max_connections_per_ip: 2,
        ..Limits::default()
    };
    let (transport, mut inbound, sbc) = tcp_transport(limits).await;
    let mut first = connect_from("127.0.0.2", sbc).await;
    let mut second = connect_from("127.0.0.2", sbc).await;
    let transport_ref = &transport;
    eventually("two connections admitted", || {
        transport_ref.open_connections() == 2
    })
    .await;
    let mut third = connect_from("127.0.0.2", sbc).await;
    assert!(closed_by_server(&mut third).await);
    assert_eq!(
        transport.counters().drops(DropReason::ConnectionLimitPerIp),
        1
    );
    // Another source address is not affected, and the admitted ones still work.
    let mut other = connect_from("127.0.0.3", sbc).await;
    write(&mut other, &request("other")).await;
    assert_eq!(recv(&mut inbound).await.bytes, request("other"));
    write(&mut first, &request("first")).await;
    write(&mut second, &request("second")).await;
    let mut got = vec![
        recv(&mut inbound).await.bytes,
        recv(&mut inbound).await.bytes,
    ];
    got.sort();
    assert_eq!(got, vec![request("first"), request("second")]);
    // Closing one frees a place.
    drop(first);
    eventually("a place to free up", || {
        transport_ref.open_connections() == 2
    })
    .await;
    let mut fourth = connect_from("127.0.0.2", sbc).await;
    write(&mut fourth, &request("fourth")).await;
    assert_eq!(recv(&mut inbound).await.bytes, request("fourth"));
    transport.shutdown().await;
}

#[tokio::test]
async fn total_connections_are_limited() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let (transport, _inbound, sbc) = tcp_transport(limits).await;
    let _first = connect_from("127.0.0.2", sbc).await;
    let transport_ref = &transport;
    eventually("one connection admitted", || {
        transport_ref.open_connections() == 1
    })
    .await;
    let mut second = connect_from("127.0.0.3", sbc).await;
    assert!(closed_by_server(&mut second).await);
    assert_eq!(
        transport.counters().drops(DropReason::ConnectionLimitTotal),
        1
    );
    transport.shutdown().await;
}

#[tokio::test]
async fn garbage_closes_only_that_connection() {
    let (transport, mut inbound, sbc) = tcp_transport(Limits::default()).await;
    let mut good = connect_from("127.0.0.2", sbc).await;
    let mut bad = connect_from("127.0.0.3", sbc).await;
    write(&mut bad, b"\x16\x03\x01garbage without any framing\r\n\r\n").await;
    assert!(closed_by_server(&mut bad).await);
    assert_eq!(
        transport
            .counters()
            .drops(DropReason::FramingMissingContentLength),
        1
    );
    let mut negative = connect_from("127.0.0.3", sbc).await;
    write(
        &mut negative,
        b"INVITE sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n",
    )
    .await;
    assert!(closed_by_server(&mut negative).await);
    assert_eq!(
        transport
            .counters()
            .drops(DropReason::FramingNegativeContentLength),
        1
    );
    write(&mut good, &request("still-fine")).await;
    assert_eq!(recv(&mut inbound).await.bytes, request("still-fine"));
    // The listener still accepts.
    let mut later = connect_from("127.0.0.3", sbc).await;
    write(&mut later, &request("later")).await;
    assert_eq!(recv(&mut inbound).await.bytes, request("later"));
    transport.shutdown().await;
}

#[tokio::test]
async fn oversized_message_closes_the_connection_before_the_body_arrives() {
    let limits = Limits {
        max_stream_message_bytes: 2000,
        ..Limits::default()
    };
    let (transport, mut inbound, sbc) = tcp_transport(limits).await;
    let mut big = connect_from("127.0.0.2", sbc).await;
    write(
        &mut big,
        b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 1000000\r\n\r\n",
    )
    .await;
    assert!(closed_by_server(&mut big).await);
    assert_eq!(
        transport
            .counters()
            .drops(DropReason::FramingMessageTooLarge),
        1
    );
    let mut endless = connect_from("127.0.0.2", sbc).await;
    // Headers that never end: closed once over the header limit, whatever the pace.
    let line = Bytes::from(vec![b'a'; 1000]);
    let mut sent = 0;
    while sent < 40_000 && endless.write_all(&line).await.is_ok() {
        sent += line.len();
    }
    assert!(closed_by_server(&mut endless).await);
    assert_eq!(
        transport
            .counters()
            .drops(DropReason::FramingHeaderTooLarge),
        1
    );
    assert_nothing_received(&mut inbound).await;
    transport.shutdown().await;
}

#[tokio::test]
async fn slow_drip_is_cut_off_by_the_incomplete_message_timeout() {
    let limits = Limits {
        incomplete_message_timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let (transport, mut inbound, sbc) = tcp_transport(limits).await;
    let mut dripper = connect_from("127.0.0.2", sbc).await;
    let mut good = connect_from("127.0.0.3", sbc).await;
    let started = tokio::time::Instant::now();
    let message = request("drip");
    let mut closed = false;
    for byte in message.iter() {
        if dripper.write_all(std::slice::from_ref(byte)).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > PATIENCE {
            break;
        }
    }
    assert!(closed || closed_by_server(&mut dripper).await);
    assert!(started.elapsed() < PATIENCE);
    assert_eq!(
        transport
            .counters()
            .drops(DropReason::IncompleteMessageTimeout),
        1
    );
    // A normal client meanwhile is unaffected.
    write(&mut good, &request("good")).await;
    assert_eq!(recv(&mut inbound).await.bytes, request("good"));
    transport.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (transport, _inbound, sbc) = tcp_transport(limits).await;
    let mut idle = connect_from("127.0.0.2", sbc).await;
    assert!(closed_by_server(&mut idle).await);
    assert_eq!(transport.counters().drops(DropReason::IdleTimeout), 1);
    assert_eq!(transport.open_connections(), 0);
    transport.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_listeners() {
    let (transport, mut inbound, sbc) = tcp_transport(Limits::default()).await;
    let mut phone = connect_from("127.0.0.2", sbc).await;
    write(&mut phone, &request("before")).await;
    let received = recv(&mut inbound).await;
    transport.shutdown().await;
    assert!(closed_by_server(&mut phone).await);
    assert!(inbound.recv().await.is_none());
    assert!(TcpStream::connect(sbc).await.is_err());
    let error = transport
        .send(Target::Flow(received.flow), response("x"))
        .await;
    assert!(matches!(error, Err(SendError::ShutDown)));
}
