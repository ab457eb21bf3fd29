//! The certificate fetcher against real HTTPS servers on loopback: the SBC's own
//! publisher, a server that never answers, and nothing at all. Loopback is a
//! special-purpose range, so each test allows it explicitly (and one shows it is refused
//! otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "identity_support/pki.rs"]
mod pki;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use pki::{Pki, SpSpec};
use sbc_core::identity::verdict::Failure;
use sbc_core::net::x5u::{CertFetcher, FetchConfig, Fetched, PublishConfig, Publisher};
use tokio::sync::mpsc;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Setup {
    _dir: tempfile::TempDir,
    pki: Pki,
    chain: Vec<u8>,
    ca_file: std::path::PathBuf,
    tls_cert: std::path::PathBuf,
    tls_key: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("Fetch");
    let sp = pki.sp(&SpSpec::numbers("12155551200", 100));
    let chain = pki.chain_pem(&sp);
    let web = pki.tls_server(LOOPBACK);
    let mut web_chain = web.pem();
    web_chain.extend(pki.intermediate.pem());
    let ca_file = dir.path().join("web-ca.pem");
    let tls_cert = dir.path().join("web.pem");
    let tls_key = dir.path().join("web.key");
    std::fs::write(&ca_file, pki.root.pem()).unwrap();
    std::fs::write(&tls_cert, web_chain).unwrap();
    std::fs::write(&tls_key, web.key_pem()).unwrap();
    Setup {
        _dir: dir,
        pki,
        chain,
        ca_file,
        tls_cert,
        tls_key,
    }
}

impl Setup {
    async fn publisher(&self, document: Vec<u8>, max_age: u64) -> Publisher {
        Publisher::start(PublishConfig {
            listen: SocketAddr::new(LOOPBACK, 0),
            tls_certificate: self.tls_cert.clone(),
            tls_private_key: self.tls_key.clone(),
            path: "/sp.pem".into(),
            document: Bytes::from(document),
            max_age: Duration::from_secs(max_age),
        })
        .await
        .unwrap()
    }

    fn fetcher(&self, ports: Vec<u16>, allow_loopback: bool) -> CertFetcher {
        CertFetcher::spawn(FetchConfig {
            ports,
            allowed_ranges: if allow_loopback {
                vec!["127.0.0.0/8".parse().unwrap()]
            } else {
                Vec::new()
            },
            https_ca_file: Some(self.ca_file.clone()),
            timeout: Duration::from_millis(800),
            ..FetchConfig::default()
        })
        .unwrap()
    }
}

async fn ask(fetcher: &CertFetcher, url: &str) -> Fetched {
    let (reply, mut answers) = mpsc::channel(4);
    fetcher.request(url.to_owned(), &reply);
    tokio::time::timeout(Duration::from_secs(5), answers.recv())
        .await
        .expect("the fetcher answers in time")
        .expect("an answer")
}

#[tokio::test]
async fn the_chain_is_fetched_once_and_cached() {
    let setup = setup();
    let publisher = setup.publisher(setup.chain.clone(), 300).await;
    let port = publisher.local_addr().port();
    let fetcher = setup.fetcher(vec![port], true);
    let url = format!("https://127.0.0.1:{port}/sp.pem");
    let first = ask(&fetcher, &url).await;
    let chain = first.outcome.expect("fetched");
    assert!(chain.tn_auth_list().is_some());
    // The intermediate came along: the chain validates to the root.
    let anchors = sbc_core::identity::certs::TrustAnchors::from_pem(&setup.pki.root.pem()).unwrap();
    assert!(anchors.validate(&chain).is_ok());
    let fresh_for = first
        .fresh_until
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(fresh_for > Duration::from_secs(290) && fresh_for <= Duration::from_secs(300));
    for _ in 0..3 {
        let again = ask(&fetcher, &url).await;
        assert_eq!(
            again.outcome.unwrap().id(),
            chain.id(),
            "the same parsed chain"
        );
    }
    assert_eq!(publisher.served(), 1, "one fetch, then the cache");
    let stats = fetcher.stats();
    assert_eq!(
        (stats.fetched, stats.cache_hits, stats.cache_misses),
        (1, 3, 1)
    );

    // A URL with a fragment is refused to each of several requests at once.
    let url = format!("https://127.0.0.1:{port}/sp.pem#nothing");
    let (reply, mut answers) = mpsc::channel(8);
    for _ in 0..4 {
        fetcher.request(url.clone(), &reply);
    }
    for _ in 0..4 {
        let answer = answers.recv().await.unwrap();
        assert_eq!(answer.outcome.unwrap_err(), Failure::X5uForbidden);
    }
}

#[tokio::test]
async fn no_store_is_not_cached() {
    let setup = setup();
    let publisher = setup.publisher(setup.chain.clone(), 0).await;
    let port = publisher.local_addr().port();
    let fetcher = setup.fetcher(vec![port], true);
    let url = format!("https://127.0.0.1:{port}/sp.pem");
    for _ in 0..2 {
        assert!(ask(&fetcher, &url).await.outcome.is_ok());
    }
    assert_eq!(publisher.served(), 2);
    // Requests that arrive while a fetch is under way join it.
    let (reply, mut answers) = mpsc::channel(8);
    for _ in 0..4 {
        fetcher.request(url.clone(), &reply);
    }
    for _ in 0..4 {
        assert!(answers.recv().await.unwrap().outcome.is_ok());
    }
    assert_eq!(publisher.served(), 3, "four requests, one fetch");
}

#[tokio::test]
async fn a_new_document_is_served_from_the_next_request_on() {
    let setup = setup();
    let publisher = setup.publisher(setup.chain.clone(), 0).await;
    let port = publisher.local_addr().port();
    let fetcher = setup.fetcher(vec![port], true);
    let old = format!("https://127.0.0.1:{port}/sp.pem");
    let first = ask(&fetcher, &old)
        .await
        .outcome
        .expect("the first document");
    // Another SP certificate of the same PKI, at another path.
    let other = setup.pki.sp(&SpSpec::numbers("13125550000", 10));
    publisher.publish("/new.pem".into(), Bytes::from(setup.pki.chain_pem(&other)));
    let new = format!("https://127.0.0.1:{port}/new.pem");
    let second = ask(&fetcher, &new).await.outcome.expect("the new document");
    assert_ne!(
        first.leaf().to_der().unwrap(),
        second.leaf().to_der().unwrap()
    );
    assert_eq!(
        second.leaf().to_der().unwrap(),
        other.cert.to_der().unwrap()
    );
    assert_eq!(
        ask(&fetcher, &old).await.outcome.unwrap_err(),
        Failure::X5uUnreachable,
        "the old path is gone"
    );
    // An empty document withdraws it.
    publisher.publish("/new.pem".into(), Bytes::new());
    let fetcher = setup.fetcher(vec![port], true);
    assert!(ask(&fetcher, &new).await.outcome.is_err());
}

#[tokio::test]
async fn each_refusal_has_its_reason() {
    let setup = setup();
    let publisher = setup.publisher(setup.chain.clone(), 300).await;
    let port = publisher.local_addr().port();

    // Loopback is special-purpose: refused unless allowed.
    let strict = setup.fetcher(vec![port], false);
    let url = format!("https://127.0.0.1:{port}/sp.pem");
    assert_eq!(
        ask(&strict, &url).await.outcome.unwrap_err(),
        Failure::X5uForbiddenAddress
    );
    // Also when a name resolves to it.
    let url = format!("https://localhost:{port}/sp.pem");
    assert_eq!(
        ask(&strict, &url).await.outcome.unwrap_err(),
        Failure::X5uForbiddenAddress
    );
    assert_eq!(publisher.served(), 0);

    let fetcher = setup.fetcher(vec![port], true);
    let refused = |url: String| {
        let fetcher = fetcher.clone();
        async move { ask(&fetcher, &url).await.outcome.unwrap_err() }
    };
    assert_eq!(
        refused(format!("http://127.0.0.1:{port}/sp.pem")).await,
        Failure::X5uNotHttps
    );
    assert_eq!(
        refused(format!("https://u:p@127.0.0.1:{port}/sp.pem")).await,
        Failure::X5uForbidden
    );
    assert_eq!(
        refused(format!("https://127.0.0.1:{port}/sp.pem?x=1")).await,
        Failure::X5uForbidden
    );
    assert_eq!(
        refused("https://127.0.0.1:22/sp.pem".into()).await,
        Failure::X5uForbidden
    );
    // A 404 (no redirect, no other path) is unreachable.
    assert_eq!(
        refused(format!("https://127.0.0.1:{port}/other.pem")).await,
        Failure::X5uUnreachable
    );

    // Nothing listening.
    let closed = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let fetcher = setup.fetcher(vec![closed_port], true);
    let url = format!("https://127.0.0.1:{closed_port}/sp.pem");
    assert_eq!(
        ask(&fetcher, &url).await.outcome.unwrap_err(),
        Failure::X5uUnreachable
    );

    // A server that accepts and never answers: the timeout.
    let silent = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let fetcher = setup.fetcher(vec![silent_port], true);
    let started = std::time::Instant::now();
    let url = format!("https://127.0.0.1:{silent_port}/sp.pem");
    assert_eq!(
        ask(&fetcher, &url).await.outcome.unwrap_err(),
        Failure::X5uUnreachable
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();
}

#[tokio::test]
async fn too_large_and_not_a_certificate() {
    let setup = setup();
    let mut big = setup.chain.clone();
    big.extend(std::iter::repeat_n(b'#', 20_000));
    let publisher = setup.publisher(big, 300).await;
    let port = publisher.local_addr().port();
    let fetcher = setup.fetcher(vec![port], true);
    let url = format!("https://127.0.0.1:{port}/sp.pem");
    assert_eq!(
        ask(&fetcher, &url).await.outcome.unwrap_err(),
        Failure::X5uTooLarge
    );

    let junk = setup.publisher(b"<html>hello</html>".to_vec(), 300).await;
    let port = junk.local_addr().port();
    let fetcher = setup.fetcher(vec![port], true);
    let url = format!("https://127.0.0.1:{port}/sp.pem");
    assert_eq!(
        ask(&fetcher, &url).await.outcome.unwrap_err(),
        Failure::CertificateMalformed
    );
}
