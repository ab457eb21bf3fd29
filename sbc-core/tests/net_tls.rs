//! The TLS transport on loopback, with certificates made by the test: server
//! authentication with RFC 5922 identity checks, mutual TLS, SNI, handshake timeout,
//! certificate reload.

mod net_common;

use std::net::SocketAddr;
use std::time::Duration;

use net_common::pki::{Names, TestPki};
use net_common::*;
use sbc_core::net::{
    CertificateFiles, ClientAuth, Destination, DropReason, Inbound, Limits, ListenerConfig,
    Protocol, SendError, Target, TlsClientConfig, TlsListenerConfig, TransportHandle,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

fn server_names() -> Names<'static> {
    Names {
        common_name: "sbc.test",
        dns: &["sbc.test"],
        ips: &["127.0.0.1"],
        uris: &[],
    }
}

struct Server {
    transport: TransportHandle,
    inbound: mpsc::Receiver<Inbound>,
    addr: SocketAddr,
}

async fn tls_server(tls: TlsListenerConfig, limits: Limits) -> Server {
    let (transport, inbound) = bind_with(
        vec![ListenerConfig::tls(addr("127.0.0.1:0"), tls)],
        limits,
        TlsClientConfig::default(),
    )
    .await;
    let addr = local(&transport, Protocol::Tls);
    Server {
        transport,
        inbound,
        addr,
    }
}

/// A transport with no listener, that trusts `ca` and maybe presents a certificate.
async fn tls_client(
    pki: &TestPki,
    client_certificate: Option<CertificateFiles>,
) -> (TransportHandle, mpsc::Receiver<Inbound>) {
    let tls_client = TlsClientConfig {
        ca_file: Some(pki.ca_file()),
        client_certificate,
    };
    bind_with(Vec::new(), Limits::default(), tls_client).await
}

#[tokio::test]
async fn request_and_response_over_tls_with_host_name_verification() {
    let pki = TestPki::new("round-trip");
    let mut server = tls_server(
        TlsListenerConfig::new(pki.issue("server", server_names())),
        Limits::default(),
    )
    .await;
    let (client, mut client_inbound) = tls_client(&pki, None).await;

    let destination = Target::Destination(Destination::tls(server.addr, "SBC.test"));
    let flow = match client.send(destination.clone(), request("tls1")).await {
        Ok(flow) => flow,
        Err(error) => panic!("send: {error}"),
    };
    let at_server = recv(&mut server.inbound).await;
    assert_eq!(at_server.bytes, request("tls1"));
    assert_eq!(at_server.protocol, Protocol::Tls);
    assert!(at_server.tls_peer.is_none());
    let sent = server
        .transport
        .send(Target::Flow(at_server.flow), response("tls1"))
        .await;
    assert!(sent.is_ok());
    let at_client = recv(&mut client_inbound).await;
    assert_eq!(at_client.bytes, response("tls1"));
    assert_eq!(at_client.flow, flow);
    assert_eq!(at_client.protocol, Protocol::Tls);

    // Reused for the same server name.
    assert_eq!(
        client.send(destination, request("tls2")).await.ok(),
        Some(flow)
    );
    assert_eq!(recv(&mut server.inbound).await.bytes, request("tls2"));
    assert_eq!(client.counters().connections_opened(), 1);

    // By IP address: the certificate has an IP SAN for 127.0.0.1.
    let by_ip = Target::Destination(Destination::new(Protocol::Tls, server.addr));
    let sent = client.send(by_ip, request("tls3")).await;
    assert!(sent.is_ok(), "{sent:?}");
    assert_ne!(sent.ok(), Some(flow));
    assert_eq!(recv(&mut server.inbound).await.bytes, request("tls3"));

    client.shutdown().await;
    server.transport.shutdown().await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = TestPki::new("wrong-san");
    let mut server = tls_server(
        TlsListenerConfig::new(pki.issue("server", server_names())),
        Limits::default(),
    )
    .await;
    let (client, _client_inbound) = tls_client(&pki, None).await;

    for wrong in ["other.test", "test", "www.sbc.test"] {
        let destination = Target::Destination(Destination::tls(server.addr, wrong));
        let error = client.send(destination, request("wrong")).await;
        assert!(
            matches!(error, Err(SendError::PeerIdentityMismatch { .. })),
            "{wrong}: {error:?}"
        );
    }
    // An IP target that the certificate does not list.
    let pki_no_ip = TestPki::new("no-ip");
    let mut no_ip_server = tls_server(
        TlsListenerConfig::new(pki_no_ip.issue(
            "server",
            Names {
                common_name: "127.0.0.1",
                dns: &["sbc.test"],
                ..Names::default()
            },
        )),
        Limits::default(),
    )
    .await;
    let (client_no_ip, _inbound) = tls_client(&pki_no_ip, None).await;
    let by_ip = Target::Destination(Destination::new(Protocol::Tls, no_ip_server.addr));
    let error = client_no_ip.send(by_ip, request("ip")).await;
    assert!(
        matches!(error, Err(SendError::PeerIdentityMismatch { .. })),
        "{error:?}"
    );

    assert_eq!(
        client.counters().drops(DropReason::TlsPeerIdentityMismatch),
        3
    );
    assert_eq!(client.open_connections(), 0);
    assert_nothing_received(&mut server.inbound).await;
    assert_nothing_received(&mut no_ip_server.inbound).await;
    client.shutdown().await;
    client_no_ip.shutdown().await;
    server.transport.shutdown().await;
    no_ip_server.transport.shutdown().await;
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let server_pki = TestPki::new("server-ca");
    let other_pki = TestPki::new("other-ca");
    let server = tls_server(
        TlsListenerConfig::new(server_pki.issue("server", server_names())),
        Limits::default(),
    )
    .await;
    let (client, _inbound) = tls_client(&other_pki, None).await;
    let destination = Target::Destination(Destination::tls(server.addr, "sbc.test"));
    let error = client.send(destination, request("untrusted")).await;
    assert!(
        matches!(error, Err(SendError::TlsHandshakeFailed { .. })),
        "{error:?}"
    );
    assert_eq!(client.counters().drops(DropReason::TlsHandshakeFailed), 1);
    client.shutdown().await;
    server.transport.shutdown().await;
}

fn mutual(pki: &TestPki, client_auth: ClientAuth) -> TlsListenerConfig {
    TlsListenerConfig {
        client_auth,
        client_ca_file: Some(pki.ca_file()),
        ..TlsListenerConfig::new(pki.issue("server", server_names()))
    }
}

#[tokio::test]
async fn mutual_tls_required_refuses_a_client_without_certificate() {
    let pki = TestPki::new("mtls-required");
    let mut server = tls_server(mutual(&pki, ClientAuth::Required), Limits::default()).await;

    // Without a certificate: the server aborts the handshake. (With TLS 1.3 the client may
    // only learn it when the connection closes, so look at the server.)
    let (anonymous, _inbound) = tls_client(&pki, None).await;
    let destination = Target::Destination(Destination::tls(server.addr, "sbc.test"));
    let _ = anonymous.send(destination.clone(), request("anon")).await;
    let server_counters = server.transport.counters();
    eventually("the server to refuse the handshake", || {
        server_counters.drops(DropReason::TlsHandshakeFailed) == 1
    })
    .await;
    assert_nothing_received(&mut server.inbound).await;

    // With a certificate from the trusted CA: admitted, identity handed upward.
    let client_files = pki.issue(
        "client",
        Names {
            common_name: "pbx.example.net",
            dns: &["pbx.example.net"],
            uris: &["sip:example.net"],
            ..Names::default()
        },
    );
    let (authenticated, _inbound) = tls_client(&pki, Some(client_files)).await;
    let sent = authenticated.send(destination, request("mtls")).await;
    assert!(sent.is_ok(), "{sent:?}");
    let received = recv(&mut server.inbound).await;
    assert_eq!(received.bytes, request("mtls"));
    let Some(peer) = received.tls_peer else {
        panic!("no peer identity");
    };
    assert_eq!(peer.common_names, vec!["pbx.example.net".to_owned()]);
    assert_eq!(peer.dns_names, vec!["pbx.example.net".to_owned()]);
    assert_eq!(peer.uris, vec!["sip:example.net".to_owned()]);
    assert!(
        peer.subject.contains("CN=pbx.example.net"),
        "{}",
        peer.subject
    );

    anonymous.shutdown().await;
    authenticated.shutdown().await;
    server.transport.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_optional_admits_a_client_without_certificate() {
    let pki = TestPki::new("mtls-optional");
    let mut server = tls_server(mutual(&pki, ClientAuth::Optional), Limits::default()).await;
    let (anonymous, _inbound) = tls_client(&pki, None).await;
    let destination = Target::Destination(Destination::tls(server.addr, "sbc.test"));
    assert!(anonymous.send(destination, request("opt")).await.is_ok());
    let received = recv(&mut server.inbound).await;
    assert_eq!(received.bytes, request("opt"));
    assert!(received.tls_peer.is_none());
    anonymous.shutdown().await;
    server.transport.shutdown().await;
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let pki = TestPki::new("mtls-ca");
    let rogue = TestPki::new("rogue");
    let mut server = tls_server(mutual(&pki, ClientAuth::Optional), Limits::default()).await;
    let rogue_files = rogue.issue(
        "client",
        Names {
            common_name: "rogue",
            dns: &["rogue.test"],
            ..Names::default()
        },
    );
    // Trusts the server's CA, presents a certificate the server does not trust.
    let (client, _inbound) = tls_client(&pki, Some(rogue_files)).await;
    let destination = Target::Destination(Destination::tls(server.addr, "sbc.test"));
    let _ = client.send(destination, request("rogue")).await;
    let server_counters = server.transport.counters();
    eventually("the server to refuse the handshake", || {
        server_counters.drops(DropReason::TlsHandshakeFailed) == 1
    })
    .await;
    assert_nothing_received(&mut server.inbound).await;
    client.shutdown().await;
    server.transport.shutdown().await;
}

#[tokio::test]
async fn handshake_timeout_closes_a_silent_client() {
    let pki = TestPki::new("timeout");
    let limits = Limits {
        tls_handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = tls_server(
        TlsListenerConfig::new(pki.issue("server", server_names())),
        limits,
    )
    .await;
    let mut silent = match TcpStream::connect(server.addr).await {
        Ok(stream) => stream,
        Err(error) => panic!("connect: {error}"),
    };
    let started = tokio::time::Instant::now();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(PATIENCE, silent.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(
        server
            .transport
            .counters()
            .drops(DropReason::TlsHandshakeTimeout),
        1
    );
    let transport = &server.transport;
    eventually("the slot to be released", || {
        transport.open_connections() == 0
    })
    .await;
    server.transport.shutdown().await;
}

#[tokio::test]
async fn sni_picks_the_certificate_for_the_requested_name() {
    let pki = TestPki::new("sni");
    let default = pki.issue(
        "default",
        Names {
            common_name: "default.test",
            dns: &["default.test"],
            ..Names::default()
        },
    );
    let alternative = pki.issue(
        "alt",
        Names {
            common_name: "alt.test",
            dns: &["alt.test"],
            ..Names::default()
        },
    );
    let config = TlsListenerConfig {
        sni: vec![("ALT.test".to_owned(), alternative)],
        ..TlsListenerConfig::new(default)
    };
    let mut server = tls_server(config, Limits::default()).await;
    let (client, _inbound) = tls_client(&pki, None).await;
    for name in ["alt.test", "default.test"] {
        let destination = Target::Destination(Destination::tls(server.addr, name));
        let sent = client.send(destination, request(name)).await;
        assert!(sent.is_ok(), "{name}: {sent:?}");
        assert_eq!(recv(&mut server.inbound).await.bytes, request(name));
    }
    // No SNI (an IP target): the default certificate, which has no IP SAN.
    let by_ip = Target::Destination(Destination::new(Protocol::Tls, server.addr));
    let error = client.send(by_ip, request("ip")).await;
    assert!(matches!(error, Err(SendError::PeerIdentityMismatch { .. })));
    client.shutdown().await;
    server.transport.shutdown().await;
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_connections_only() {
    let pki = TestPki::new("reload");
    let files = pki.issue("server", server_names());
    let mut server = tls_server(TlsListenerConfig::new(files), Limits::default()).await;
    let (client, _inbound) = tls_client(&pki, None).await;
    let old_name = Target::Destination(Destination::tls(server.addr, "sbc.test"));
    let old_flow = client.send(old_name.clone(), request("before")).await.ok();
    assert!(old_flow.is_some());
    assert_eq!(recv(&mut server.inbound).await.bytes, request("before"));

    // Same files, new content: a certificate for another name.
    pki.issue(
        "server",
        Names {
            common_name: "renamed.test",
            dns: &["renamed.test"],
            ..Names::default()
        },
    );
    let reloaded = server.transport.reload_tls();
    assert!(reloaded.is_ok(), "{reloaded:?}");

    // The open connection is untouched.
    assert_eq!(
        client.send(old_name, request("during")).await.ok(),
        old_flow
    );
    assert_eq!(recv(&mut server.inbound).await.bytes, request("during"));
    // New connections get the new certificate.
    let new_name = Target::Destination(Destination::tls(server.addr, "renamed.test"));
    let sent = client.send(new_name, request("after")).await;
    assert!(sent.is_ok(), "{sent:?}");
    assert_ne!(sent.ok(), old_flow);
    assert_eq!(recv(&mut server.inbound).await.bytes, request("after"));

    // A broken file leaves the working configuration in place.
    let broken = pki.issue("broken", server_names());
    if let Err(error) = std::fs::write(&broken.key_file, b"not a key") {
        panic!("{error}");
    }
    let bad_config = TlsListenerConfig::new(broken);
    let bad = sbc_core::net::Transport::bind(sbc_core::net::TransportConfig {
        listeners: vec![ListenerConfig::tls(addr("127.0.0.1:0"), bad_config)],
        ..Default::default()
    })
    .await;
    assert!(bad.is_err());
    client.shutdown().await;
    server.transport.shutdown().await;
}

#[tokio::test]
async fn tls_below_1_2_is_refused() {
    let pki = TestPki::new("old-tls");
    let server = tls_server(
        TlsListenerConfig::new(pki.issue("server", server_names())),
        Limits::default(),
    )
    .await;
    let addr = server.addr;
    let ca_file = pki.ca_file();
    let handshake = tokio::task::spawn_blocking(move || {
        use openssl::ssl::{SslConnector, SslMethod, SslVersion};
        let mut builder = SslConnector::builder(SslMethod::tls_client())?;
        builder.set_ca_file(&ca_file)?;
        builder.set_min_proto_version(Some(SslVersion::TLS1))?;
        builder.set_max_proto_version(Some(SslVersion::TLS1_1))?;
        // Allow the old versions on our side, so only the server can refuse.
        builder.set_cipher_list("DEFAULT:@SECLEVEL=0")?;
        let tcp =
            std::net::TcpStream::connect(addr).map_err(|_| openssl::error::ErrorStack::get())?;
        Ok::<bool, openssl::error::ErrorStack>(builder.build().connect("sbc.test", tcp).is_ok())
    })
    .await;
    assert!(matches!(handshake, Ok(Ok(false))), "{handshake:?}");
    let counters = server.transport.counters();
    eventually("the server to refuse the handshake", || {
        counters.drops(DropReason::TlsHandshakeFailed) == 1
    })
    .await;
    server.transport.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_without_a_client_ca_is_a_configuration_error() {
    let pki = TestPki::new("no-client-ca");
    let config = TlsListenerConfig {
        client_auth: ClientAuth::Required,
        ..TlsListenerConfig::new(pki.issue("server", server_names()))
    };
    let bound = sbc_core::net::Transport::bind(sbc_core::net::TransportConfig {
        listeners: vec![ListenerConfig::tls(addr("127.0.0.1:0"), config)],
        ..Default::default()
    })
    .await;
    match bound {
        Err(error) => assert_eq!(error.name(), "tls"),
        Ok(_) => panic!("bound without a client CA"),
    }
}
