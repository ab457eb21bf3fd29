//! The HTTPS listener: client certificates required and named in the audit source, a
//! client without one refused, and a certificate reload that new handshakes see while a
//! connection already open keeps working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslStream, SslVerifyMode};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

use crate::tests::{FakeAppliance, READ_WRITE};
use crate::tls::{AdminTls, AdminTlsConfig, ClientAuth, TlsListener};
use crate::{AdminState, Readiness};

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A certificate for `common_name` signed by `issuer` (self-signed when `None`).
fn certificate(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    ca: bool,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    builder
        .set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder
        .set_issuer_name(issuer.map_or(&name, |(cert, _)| cert.subject_name()))
        .unwrap();
    builder.set_pubkey(key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    if ca {
        builder
            .append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    } else {
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .build(&builder.x509v3_context(issuer.map(|(cert, _)| cert.as_ref()), None))
            .unwrap();
        builder.append_extension(san).unwrap();
    }
    let signer = issuer.map_or(key, |(_, key)| key);
    builder.sign(signer, MessageDigest::sha256()).unwrap();
    builder.build()
}

fn write_pair(dir: &Path, stem: &str, cert: &X509, key: &PKey<Private>) {
    std::fs::write(dir.join(format!("{stem}.crt")), cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.join(format!("{stem}.key")),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
}

struct Pki {
    dir: tempfile::TempDir,
    ca: X509,
    ca_key: PKey<Private>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = key();
        let ca = certificate("test CA", &ca_key, None, true);
        std::fs::write(dir.path().join("ca.crt"), ca.to_pem().unwrap()).unwrap();
        Pki { dir, ca, ca_key }
    }

    /// Writes a leaf certificate `stem.crt`/`stem.key` and returns the certificate.
    fn leaf(&self, stem: &str, common_name: &str) -> X509 {
        let key = key();
        let cert = certificate(common_name, &key, Some((&self.ca, &self.ca_key)), false);
        write_pair(self.dir.path(), stem, &cert, &key);
        cert
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join(file)
    }
}

/// A TLS client connection (HTTP/1.1 keep-alive) presenting `client` (stem) if given.
fn connect(
    pki: &Pki,
    address: std::net::SocketAddr,
    client: Option<&str>,
) -> Result<SslStream<TcpStream>, String> {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
    builder.set_ca_file(pki.path("ca.crt")).unwrap();
    builder.set_verify(SslVerifyMode::PEER);
    if let Some(stem) = client {
        builder
            .set_certificate_file(pki.path(&format!("{stem}.crt")), SslFiletype::PEM)
            .unwrap();
        builder
            .set_private_key_file(pki.path(&format!("{stem}.key")), SslFiletype::PEM)
            .unwrap();
    }
    let connector = builder.build();
    let tcp = TcpStream::connect(address).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    connector
        .connect("127.0.0.1", tcp)
        .map_err(|error| error.to_string())
}

/// One request on an open connection; the response's status line and body.
fn exchange(stream: &mut SslStream<TcpStream>, request: &str) -> Result<String, String> {
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).map_err(|e| e.to_string())?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|value| value.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(text.into_owned());
            }
        }
    }
    Err(format!(
        "connection closed: {:?}",
        String::from_utf8_lossy(&response)
    ))
}

const HEALTH: &str = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_named_and_certificates_reload_without_drops() {
    let pki = Pki::new();
    let first = pki.leaf("server", "admin one");
    pki.leaf("ops", "ops");
    let tls = AdminTls::new(AdminTlsConfig {
        certificate: pki.path("server.crt"),
        private_key: pki.path("server.key"),
        client_ca: Some(pki.path("ca.crt")),
        client_auth: ClientAuth::Require,
    })
    .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = tcp.local_addr().unwrap();
    let listener = TlsListener::new(tcp, Arc::clone(&tls)).unwrap();
    let appliance = Arc::new(FakeAppliance::new(Readiness::Ready));
    let state = AdminState::new(appliance.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve_tls(listener, state, async {
        let _ = stopped.await;
    }));

    let pki = Arc::new(pki);
    let outcome = {
        let pki = Arc::clone(&pki);
        tokio::task::spawn_blocking(move || {
            // Without a client certificate: no HTTP at all.
            let refused =
                connect(&pki, address, None).and_then(|mut stream| exchange(&mut stream, HEALTH));
            assert!(
                refused.is_err(),
                "served without a client certificate: {refused:?}"
            );

            // With one: served, and the certificate names the change in the audit source.
            let mut kept = connect(&pki, address, Some("ops")).unwrap();
            let seen = kept.ssl().peer_certificate().unwrap();
            assert_eq!(seen.to_der().unwrap(), first.to_der().unwrap());
            assert!(
                exchange(&mut kept, HEALTH)
                    .unwrap()
                    .starts_with("HTTP/1.1 200")
            );
            let body = r#"{"name":"t","targets":[{"address":"192.0.2.1"}],"transport":"udp"}"#;
            let post = format!(
                "POST /trunks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {READ_WRITE}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            assert!(
                exchange(&mut kept, &post)
                    .unwrap()
                    .starts_with("HTTP/1.1 201")
            );

            // A new certificate on disk, reloaded: new handshakes get it, the open
            // connection goes on.
            let second = pki.leaf("server", "admin two");
            tls.reload().unwrap();
            let fresh = connect(&pki, address, Some("ops")).unwrap();
            let seen = fresh.ssl().peer_certificate().unwrap();
            assert_eq!(seen.to_der().unwrap(), second.to_der().unwrap());
            assert!(
                exchange(&mut kept, HEALTH)
                    .unwrap()
                    .starts_with("HTTP/1.1 200")
            );

            // A broken file changes nothing.
            std::fs::write(pki.path("server.crt"), b"not a certificate").unwrap();
            assert!(tls.reload().is_err());
            let still = connect(&pki, address, Some("ops")).unwrap();
            let seen = still.ssl().peer_certificate().unwrap();
            assert_eq!(seen.to_der().unwrap(), second.to_der().unwrap());
        })
        .await
    };
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
    let changes = appliance.changes.lock().unwrap().clone();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(changes[0].ends_with("cert=CN=ops"), "{changes:?}");
}
