//! The SBC's own certificate, served over HTTPS at the path of its `x5u` URL so that
//! the verifiers of the calls it signs can fetch it. One document, GET/HEAD only, with
//! `Cache-Control: max-age` so verifiers cache it; bounded connections and time. The
//! document and its path can be replaced while serving ([`Publisher::publish`]): the
//! next request gets the new one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVersion};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_openssl::SslStream;

/// What to serve and where.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    pub listen: SocketAddr,
    /// The HTTPS server's own certificate chain and key (PEM): what verifiers' TLS
    /// clients check, not the STIR certificate.
    pub tls_certificate: PathBuf,
    pub tls_private_key: PathBuf,
    /// The path part of the `x5u` URL (`/sp.pem`).
    pub path: String,
    /// The document: the STIR certificate chain (PEM, leaf first); empty: nothing is
    /// published yet (every path answers `404`).
    pub document: Bytes,
    /// `Cache-Control: max-age` of the answers.
    pub max_age: Duration,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("TLS setup: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
}

/// Connections served at once at most.
const MAX_CONNECTIONS: usize = 256;
/// A connection is closed after this long, whatever it is doing.
const CONNECTION_TIME: Duration = Duration::from_secs(10);

/// The running server.
#[derive(Debug)]
pub struct Publisher {
    local: SocketAddr,
    current: Arc<RwLock<Published>>,
    served: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(config: PublishConfig) -> Result<Publisher, PublishError> {
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        acceptor.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        acceptor.set_certificate_chain_file(&config.tls_certificate)?;
        acceptor.set_private_key_file(&config.tls_private_key, SslFiletype::PEM)?;
        acceptor.check_private_key()?;
        let acceptor = Arc::new(acceptor.build());
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|error| PublishError::Bind(config.listen, error))?;
        let local = listener
            .local_addr()
            .map_err(|error| PublishError::Bind(config.listen, error))?;
        let served = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&served);
        let current = Arc::new(RwLock::new(Published {
            path: config.path.clone(),
            document: config.document.clone(),
        }));
        let config = Arc::new(config);
        let published = Arc::clone(&current);
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    continue; // dropped: too many connections
                };
                let acceptor = Arc::clone(&acceptor);
                let config = Arc::clone(&config);
                let published = Arc::clone(&published);
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let _permit = permit;
                    let _ = tokio::time::timeout(CONNECTION_TIME, async move {
                        let ssl = openssl::ssl::Ssl::new(acceptor.context()).ok()?;
                        let mut tls = SslStream::new(ssl, tcp).ok()?;
                        Pin::new(&mut tls).accept().await.ok()?;
                        let service = service_fn(move |request: hyper::Request<Incoming>| {
                            let config = Arc::clone(&config);
                            let counter = Arc::clone(&counter);
                            let now = published
                                .read()
                                .unwrap_or_else(PoisonError::into_inner)
                                .clone();
                            async move {
                                Ok::<_, std::convert::Infallible>(answer(
                                    &request, &config, &now, &counter,
                                ))
                            }
                        });
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await
                            .ok()
                    })
                    .await;
                });
            }
        });
        Ok(Publisher {
            local,
            current,
            served,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves `document` at `path` from the next request on (the SBC's certificate
    /// changed); an empty document withdraws it.
    pub fn publish(&self, path: String, document: Bytes) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Published { path, document };
    }

    /// The path and document served now.
    pub fn published(&self) -> (String, Bytes) {
        let now = self.current.read().unwrap_or_else(PoisonError::into_inner);
        (now.path.clone(), now.document.clone())
    }

    /// Documents served so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Stops accepting (connections in progress end on their own, bounded).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What is served now.
#[derive(Clone, Debug)]
struct Published {
    path: String,
    document: Bytes,
}

fn answer(
    request: &hyper::Request<Incoming>,
    config: &PublishConfig,
    published: &Published,
    served: &AtomicU64,
) -> Response<Full<Bytes>> {
    let status = if request.uri().path() != published.path || published.document.is_empty() {
        StatusCode::NOT_FOUND
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        StatusCode::METHOD_NOT_ALLOWED
    } else {
        StatusCode::OK
    };
    let mut response = Response::builder().status(status);
    let body = if status == StatusCode::OK {
        served.fetch_add(1, Ordering::Relaxed);
        response = response
            .header(
                hyper::header::CONTENT_TYPE,
                "application/pem-certificate-chain",
            )
            .header(
                hyper::header::CACHE_CONTROL,
                format!("max-age={}", config.max_age.as_secs()),
            );
        if request.method() == Method::HEAD {
            Bytes::new()
        } else {
            published.document.clone()
        }
    } else {
        Bytes::new()
    };
    response
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
