//! HTTPS for the admin listener: TLS 1.2+ with the operator's certificate, optionally
//! asking for (or requiring) a client certificate that chains to a configured CA.
//!
//! Handshakes run in their own tasks (at most [`MAX_HANDSHAKES`] at once, each bounded
//! by [`HANDSHAKE_TIMEOUT`]), so a client that stalls its handshake delays nobody.
//! [`AdminTls::reload`] re-reads the files: new handshakes use the new certificate,
//! connections already open keep theirs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::{X509, X509NameRef, X509VerifyResult};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_openssl::SslStream;

use crate::extract::ClientInfo;

/// Handshakes in progress at most; further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 64;
/// A handshake that has not completed after this long is abandoned.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// Asked for; a client without one is served (and named by its token only).
    Optional,
    /// Required: the handshake fails without a certificate that chains to `client_ca`.
    Require,
}

/// The admin listener's TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTlsConfig {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key.
    pub private_key: PathBuf,
    /// PEM bundle of the CAs client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// Why the TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the private key {} does not match the certificate", .0.display())]
    KeyMismatch(PathBuf),
    #[error("client certificates are asked for but no client_ca is configured")]
    MissingClientCa,
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

fn file_error(path: &Path, error: impl std::error::Error + Send + Sync + 'static) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        source: Box::new(error),
    }
}

fn build(config: &AdminTlsConfig) -> Result<SslAcceptor, TlsError> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    builder
        .set_certificate_chain_file(&config.certificate)
        .map_err(|e| file_error(&config.certificate, e))?;
    builder
        .set_private_key_file(&config.private_key, SslFiletype::PEM)
        .map_err(|e| file_error(&config.private_key, e))?;
    builder
        .check_private_key()
        .map_err(|_| TlsError::KeyMismatch(config.private_key.clone()))?;
    builder.set_session_id_context(b"sbc-admin")?;
    let mode = match config.client_auth {
        ClientAuth::None => return Ok(builder.build()),
        ClientAuth::Optional => SslVerifyMode::PEER,
        ClientAuth::Require => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
    };
    let ca_file = config.client_ca.as_ref().ok_or(TlsError::MissingClientCa)?;
    builder
        .set_ca_file(ca_file)
        .map_err(|e| file_error(ca_file, e))?;
    let pem = std::fs::read(ca_file).map_err(|e| file_error(ca_file, e))?;
    let mut names = openssl::stack::Stack::new()?;
    for ca in X509::stack_from_pem(&pem).map_err(|e| file_error(ca_file, e))? {
        names.push(ca.subject_name().to_owned()?)?;
    }
    builder.set_client_ca_list(names);
    builder.set_verify(mode);
    Ok(builder.build())
}

/// The admin listener's TLS context, swapped on reload.
pub struct AdminTls {
    config: AdminTlsConfig,
    acceptor: RwLock<Arc<SslAcceptor>>,
}

impl std::fmt::Debug for AdminTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTls")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AdminTls {
    /// Loads the files (a bad file is an error now, not at the first handshake).
    pub fn new(config: AdminTlsConfig) -> Result<Arc<AdminTls>, TlsError> {
        let acceptor = build(&config)?;
        Ok(Arc::new(AdminTls {
            config,
            acceptor: RwLock::new(Arc::new(acceptor)),
        }))
    }

    /// Reads the files again; on error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let acceptor = build(&self.config)?;
        *self
            .acceptor
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(acceptor);
        Ok(())
    }

    fn acceptor(&self) -> Arc<SslAcceptor> {
        Arc::clone(&self.acceptor.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// "CN=ops,O=Example" from a certificate's subject.
fn subject_text(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().ok().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn handshake(
    acceptor: Arc<SslAcceptor>,
    tcp: TcpStream,
    remote: SocketAddr,
) -> Option<(SslStream<TcpStream>, ClientInfo)> {
    let ssl = Ssl::new(acceptor.context()).ok()?;
    let mut stream = SslStream::new(ssl, tcp).ok()?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut stream).accept()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::debug!(%remote, %error, "admin TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(%remote, "admin TLS handshake timed out");
            return None;
        }
    }
    let ssl = stream.ssl();
    let certificate_subject = ssl
        .peer_certificate()
        .filter(|_| ssl.verify_result() == X509VerifyResult::OK)
        .map(|certificate| subject_text(certificate.subject_name()));
    Some((
        stream,
        ClientInfo {
            remote,
            certificate_subject,
        },
    ))
}

/// A listener that hands out connections whose TLS handshake has completed.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(SslStream<TcpStream>, ClientInfo)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp` with the context of `tls`.
    pub fn new(tcp: TcpListener, tls: Arc<AdminTls>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (done, ready) = mpsc::channel(MAX_HANDSHAKES);
        let accepting = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
            loop {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let (tcp, remote) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "admin listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = tls.acceptor();
                let done = done.clone();
                tokio::spawn(async move {
                    if let Some(connection) = handshake(acceptor, tcp, remote).await {
                        let _ = done.send(connection).await;
                    }
                    drop(slot);
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = SslStream<TcpStream>;
    type Addr = ClientInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task ended (runtime shutting down): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(ClientInfo {
            remote: self.local,
            certificate_subject: None,
        })
    }
}
