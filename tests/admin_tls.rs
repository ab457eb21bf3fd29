//! `POST /tls/reload` on the real binary: a new certificate and key written over the TLS
//! listener's files take effect for new handshakes at once, while a TLS connection
//! opened before the reload keeps working; a broken file is refused with a 422 and
//! changes nothing; each reload is audited.
//!
//! The SBC on `.1` of a loopback /24 of the test's own; the client on `.2`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use common::{Sbc, SbcConfig, pki, sip};
use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode};
use openssl::x509::X509;
use serde_json::Value;

/// The generated certificate and key of the one TLS listener.
fn listener_files(sbc: &Sbc) -> (PathBuf, PathBuf) {
    let directory = sbc.data_dir().join("tls");
    let certificate = std::fs::read_dir(&directory)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|extension| extension == "crt"))
        .expect("a generated certificate");
    let key = certificate.with_extension("key");
    (certificate, key)
}

/// A fresh self-signed certificate and its key, as PEM.
fn new_certificate(common_name: &str) -> (X509, Vec<u8>) {
    let key = pki::key();
    let certificate = pki::certificate(common_name, &key, None, pki::Usage::Plain);
    (certificate, key.private_key_to_pem_pkcs8().unwrap())
}

/// A TLS connection to the listener (the test checks which certificate it got, so it
/// does not verify it).
fn connect(target: SocketAddr) -> SslStream<TcpStream> {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    let tcp = TcpStream::connect_timeout(&target, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    builder.build().connect("sbc", tcp).unwrap()
}

fn certificate_of(stream: &SslStream<TcpStream>) -> Vec<u8> {
    stream.ssl().peer_certificate().unwrap().to_der().unwrap()
}

/// An OPTIONS over the connection; the status code of the answer.
fn options(stream: &mut SslStream<TcpStream>, target: SocketAddr, local: SocketAddr) -> u16 {
    let request = sip::request("OPTIONS", target, "TLS", local);
    stream.write_all(request.text.as_bytes()).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !received.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "the connection was closed");
        received.extend_from_slice(&buffer[..read]);
    }
    sip::status_code(&String::from_utf8_lossy(&received)).unwrap()
}

#[test]
fn certificates_reload_for_new_handshakes_without_dropping_open_connections() {
    let sbc = Sbc::start(SbcConfig::new());
    let admin = sbc.admin();
    let target = sbc.config.tls_address();
    let local = SocketAddr::new(sbc.config.net.host(2), 5061);
    let (certificate, key) = listener_files(&sbc);

    let mut before = connect(target);
    let original = certificate_of(&before);
    assert_eq!(options(&mut before, target, local), 200);

    let (replacement, replacement_key) = new_certificate("reloaded");
    std::fs::write(&certificate, replacement.to_pem().unwrap()).unwrap();
    std::fs::write(&key, &replacement_key).unwrap();
    let reloaded = admin.request("POST", "/tls/reload", None, &[]);
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    assert_eq!(reloaded.json()["sip_listeners"], 1);
    assert_eq!(reloaded.json()["admin_listener"], false);

    let after = connect(target);
    assert_eq!(certificate_of(&after), replacement.to_der().unwrap());
    assert_ne!(certificate_of(&after), original);
    // The connection opened before the reload goes on.
    assert_eq!(options(&mut before, target, local), 200);

    // A broken certificate is refused and changes nothing.
    std::fs::write(&certificate, b"-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    let refused = admin.request("POST", "/tls/reload", None, &[]);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "sip.listen.certificate");
    let still = connect(target);
    assert_eq!(certificate_of(&still), replacement.to_der().unwrap());

    let audit: Value = admin.get("/audit?limit=10").json();
    let reloads = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["action"] == "tls_reload")
        .count();
    assert_eq!(reloads, 1, "{audit}");
}
