//! One certificate fetch: resolve, check the addresses, connect, TLS (server name or IP
//! checked against the server's certificate), one HTTP/1.1 GET, a bounded body, and how
//! long the answer may be cached.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use openssl::ssl::SslConnector;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use super::addresses::{self, AddressRange};
use crate::identity::certs::CertChain;
use crate::identity::url::{self, UrlProblem, X5uUrl};
use crate::identity::verdict::Failure;

/// What one fetch needs from the fetcher's configuration.
#[derive(Clone)]
pub(super) struct FetchRules {
    pub ports: Vec<u16>,
    pub allowed: Vec<AddressRange>,
    pub max_bytes: usize,
    pub timeout: Duration,
    pub tls: SslConnector,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

/// A fetched and parsed chain and how long it may be reused (`None`: not at all).
pub(super) struct Fresh {
    pub chain: Arc<CertChain>,
    pub ttl: Option<Duration>,
}

/// Why a fetch failed, finer than the verdict (for counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FetchError {
    Url(UrlProblem),
    Resolve,
    ForbiddenAddress,
    Connect,
    Tls,
    Http,
    Status,
    TooLarge,
    Timeout,
    Certificate,
}

impl FetchError {
    pub(super) fn name(self) -> &'static str {
        match self {
            FetchError::Url(problem) => problem.name(),
            FetchError::Resolve => "resolve_failed",
            FetchError::ForbiddenAddress => "forbidden_address",
            FetchError::Connect => "connect_failed",
            FetchError::Tls => "tls_failed",
            FetchError::Http => "http_failed",
            FetchError::Status => "http_status",
            FetchError::TooLarge => "too_large",
            FetchError::Timeout => "timeout",
            FetchError::Certificate => "malformed_certificate",
        }
    }

    /// What the verifier makes of it.
    pub(super) fn failure(self) -> Failure {
        match self {
            FetchError::Url(UrlProblem::NotHttps) => Failure::X5uNotHttps,
            FetchError::Url(_) => Failure::X5uForbidden,
            FetchError::ForbiddenAddress => Failure::X5uForbiddenAddress,
            FetchError::TooLarge => Failure::X5uTooLarge,
            FetchError::Certificate => Failure::CertificateMalformed,
            FetchError::Resolve
            | FetchError::Connect
            | FetchError::Tls
            | FetchError::Http
            | FetchError::Status
            | FetchError::Timeout => Failure::X5uUnreachable,
        }
    }
}

/// Fetches and parses the chain at `url`, all within the rules' timeout.
pub(super) async fn fetch(url: &str, rules: &FetchRules) -> Result<Fresh, FetchError> {
    let url = url::check(url, &rules.ports).map_err(FetchError::Url)?;
    match tokio::time::timeout(rules.timeout, fetch_checked(&url, rules)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout),
    }
}

async fn fetch_checked(url: &X5uUrl, rules: &FetchRules) -> Result<Fresh, FetchError> {
    let candidates: Vec<SocketAddr> = match url.ip_literal() {
        Some(ip) => vec![SocketAddr::new(ip, url.port)],
        None => tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|_| FetchError::Resolve)?
            .take(8)
            .collect(),
    };
    if candidates.is_empty() {
        return Err(FetchError::Resolve);
    }
    let allowed: Vec<SocketAddr> = candidates
        .into_iter()
        .filter(|address| addresses::may_fetch_from(address.ip(), &rules.allowed))
        .collect();
    if allowed.is_empty() {
        return Err(FetchError::ForbiddenAddress);
    }
    let mut tcp = None;
    for address in allowed {
        if let Ok(stream) = TcpStream::connect(address).await {
            tcp = Some(stream);
            break;
        }
    }
    let tcp = tcp.ok_or(FetchError::Connect)?;
    let ssl = rules
        .tls
        .configure()
        .and_then(|config| config.into_ssl(&url.host))
        .map_err(|_| FetchError::Tls)?;
    let mut tls = SslStream::new(ssl, tcp).map_err(|_| FetchError::Tls)?;
    std::pin::Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|_| FetchError::Tls)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|_| FetchError::Http)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let host = match url.ip_literal() {
        Some(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => url.host.clone(),
    };
    let host = if url.port == 443 {
        host
    } else {
        format!("{host}:{}", url.port)
    };
    let request = hyper::Request::get(url.path.as_str())
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::ACCEPT,
            "application/pem-certificate-chain, application/x-pem-file, */*",
        )
        .header(hyper::header::USER_AGENT, "sbc-stir-verifier")
        .header(hyper::header::CONNECTION, "close")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|_| FetchError::Http)?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| FetchError::Http)?;
        // Redirects are not followed (ATIS-1000074): anything but 200 is a failure.
        if response.status() != hyper::StatusCode::OK {
            return Err(FetchError::Status);
        }
        let ttl = freshness(response.headers(), rules.default_ttl, rules.max_ttl);
        let body = read_bounded(response.into_body(), rules.max_bytes).await?;
        let chain = CertChain::parse(&body).map_err(|_| FetchError::Certificate)?;
        Ok(Fresh {
            chain: Arc::new(chain),
            ttl,
        })
    }
    .await;
    driver.abort();
    result
}

/// The body, refused as soon as it passes `max` bytes (announced or received).
async fn read_bounded(mut body: Incoming, max: usize) -> Result<BytesMut, FetchError> {
    let announced = hyper::body::Body::size_hint(&body);
    if announced.lower() > max as u64 || announced.upper().is_some_and(|upper| upper > max as u64) {
        return Err(FetchError::TooLarge);
    }
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| FetchError::Http)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(FetchError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// How long a response may be reused, from its cache headers (RFC 9111): `no-store` or
/// `no-cache` → not at all; `max-age` (or `s-maxage`); else `Expires` relative to
/// `Date` (or now); else the default. Never longer than the configured maximum.
pub(super) fn freshness(
    headers: &hyper::HeaderMap,
    default_ttl: Duration,
    max_ttl: Duration,
) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(hyper::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-store" || directive == "no-cache" || directive == "private" {
                return None;
            }
            let seconds = directive
                .strip_prefix("s-maxage=")
                .or_else(|| directive.strip_prefix("max-age="));
            if let Some(seconds) = seconds {
                max_age = Some(seconds.trim_matches('"').parse::<u64>().unwrap_or(0));
            }
        }
    }
    let ttl = match max_age {
        Some(seconds) => Duration::from_secs(seconds),
        None => match header_date(headers, hyper::header::EXPIRES) {
            Some(expires) => {
                let date =
                    header_date(headers, hyper::header::DATE).unwrap_or_else(SystemTime::now);
                expires.duration_since(date).unwrap_or(Duration::ZERO)
            }
            None if headers.contains_key(hyper::header::EXPIRES) => Duration::ZERO,
            None => default_ttl,
        },
    };
    (!ttl.is_zero()).then(|| ttl.min(max_ttl))
}

fn header_date(headers: &hyper::HeaderMap, name: hyper::header::HeaderName) -> Option<SystemTime> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| httpdate::parse_http_date(text).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> hyper::HeaderMap {
        let mut map = hyper::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn cache_headers_decide_how_long_a_chain_is_kept() {
        let ttl = |pairs: &[(&str, &str)]| {
            freshness(
                &headers(pairs),
                Duration::from_secs(600),
                Duration::from_secs(3_600),
            )
        };
        assert_eq!(ttl(&[]), Some(Duration::from_secs(600)));
        assert_eq!(
            ttl(&[("cache-control", "public, max-age=120")]),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            ttl(&[("cache-control", "max-age=99999")]),
            Some(Duration::from_secs(3_600))
        );
        assert_eq!(ttl(&[("cache-control", "no-store")]), None);
        assert_eq!(ttl(&[("cache-control", "max-age=0")]), None);
        assert_eq!(
            ttl(&[
                ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("expires", "Sun, 06 Nov 1994 08:59:37 GMT"),
            ]),
            Some(Duration::from_secs(600))
        );
        assert_eq!(ttl(&[("expires", "0")]), None);
        // max-age wins over Expires (RFC 9111 §5.3).
        assert_eq!(
            ttl(&[
                ("expires", "Sun, 06 Nov 1994 08:59:37 GMT"),
                ("cache-control", "max-age=60")
            ]),
            Some(Duration::from_secs(60))
        );
    }
}
