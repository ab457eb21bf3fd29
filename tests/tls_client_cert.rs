//! A call over TLS with and without a verified client certificate, through the real
//! binary: the listener asks for certificates chained to its `client_ca`
//! (`client_auth = "optional"`), and the admin API's view of each call in progress says
//! whether the caller's certificate was verified. The callee is a plain UDP socket of
//! the test that never answers, so the calls stay in progress while they are looked at.
//!
//! Loopback hosts of the test's own: the SBC on `.1`, the callee on `.2`, the callers on
//! `.3`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::pki::{Usage, certificate, key};
use common::sip::token;
use common::{Sbc, SbcConfig, free_ports};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode};
use openssl::x509::X509;
use serde_json::Value;

/// A TLS connection to the SBC (whose generated certificate is not checked here),
/// presenting `client` when given.
fn connect(target: SocketAddr, client: Option<(&X509, &PKey<Private>)>) -> SslStream<TcpStream> {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    if let Some((certificate, key)) = client {
        builder.set_certificate(certificate).unwrap();
        builder.set_private_key(key).unwrap();
    }
    let tcp = TcpStream::connect(target).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    builder
        .build()
        .configure()
        .unwrap()
        .verify_hostname(false)
        .connect("sbc.test", tcp)
        .unwrap()
}

/// Sends a new call over `stream`; returns its Call-ID.
fn invite(stream: &mut SslStream<TcpStream>, sbc: SocketAddr) -> String {
    let local = stream.get_ref().local_addr().unwrap();
    let call_id = format!("{}@{}", token(), local.ip());
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = local.ip()
    );
    let text = format!(
        "INVITE sip:1000@{sbc};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@{ip}>;tag={tag}\r\nTo: <sip:1000@{sbc}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local};transport=tls>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{sdp}",
        branch = token(),
        tag = token(),
        ip = local.ip(),
        length = sdp.len(),
    );
    stream.write_all(text.as_bytes()).unwrap();
    call_id
}

/// The admin API's view of the call whose A-leg has `call_id`, once it is listed.
fn call(sbc: &Sbc, call_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = sbc.admin().get("/calls");
        assert_eq!(page.status, 200, "{}", page.body);
        if let Some(found) = page.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|call| call["a"]["call_id"] == call_id)
        {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "call {call_id} not listed: {}\n{}",
            page.body,
            sbc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_call_view_says_whether_the_callers_tls_certificate_was_verified() {
    let config = SbcConfig::new();
    let callee = UdpSocket::bind((config.net.host(2), 0)).unwrap();
    let [mtls_port] = free_ports(config.ip);
    let mtls = SocketAddr::new(config.ip, mtls_port);

    let ca_key = key();
    let ca = certificate("test client CA", &ca_key, None, Usage::Ca);
    let client_key = key();
    let client = certificate(
        "caller.test",
        &client_key,
        Some((&ca, &ca_key)),
        Usage::Client,
    );
    let directory = tempfile::tempdir().unwrap();
    let ca_file = directory.path().join("client-ca.pem");
    std::fs::write(&ca_file, ca.to_pem().unwrap()).unwrap();

    let sbc = Sbc::start(
        config
            .with_peer(callee.local_addr().unwrap())
            .with_extra(&format!(
                "[[sip.listen]]\ntransport = \"tls\"\naddress = \"{mtls}\"\n\
                 client_ca = \"{}\"\nclient_auth = \"optional\"\n",
                ca_file.display()
            )),
    );

    let mut verified = connect(mtls, Some((&client, &client_key)));
    let with_certificate = invite(&mut verified, mtls);
    let mut anonymous = connect(mtls, None);
    let without_certificate = invite(&mut anonymous, mtls);

    for (call_id, expected) in [
        (&with_certificate, "verified"),
        (&without_certificate, "not_verified"),
    ] {
        let view = call(&sbc, call_id);
        let signalling = &view["security"]["a"]["signalling"];
        assert_eq!(signalling["transport"], "tls", "{view}");
        assert_eq!(signalling["encrypted"], true, "{view}");
        assert_eq!(signalling["peer_certificate"], expected, "{view}");
        // The callee's leg is plain UDP.
        assert_eq!(
            view["security"]["b"]["signalling"]["peer_certificate"], "not_applicable",
            "{view}"
        );
    }
}
