use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::*;

#[derive(Debug)]
struct FakeAppliance(Mutex<Readiness>);

impl Appliance for FakeAppliance {
    fn readiness(&self) -> Readiness {
        self.0
            .lock()
            .map(|readiness| readiness.clone())
            .unwrap_or(Readiness::Ready)
    }
}

async fn get(address: std::net::SocketAddr, path: &str) -> String {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        std::io::Result::Ok(response)
    };
    match tokio::time::timeout(Duration::from_secs(5), exchange).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => panic!("GET {path}: {error}"),
        Err(_) => panic!("GET {path}: no answer within 5 s"),
    }
}

struct Running {
    address: std::net::SocketAddr,
    appliance: Arc<FakeAppliance>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(readiness: Readiness) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"));
    let appliance = Arc::new(FakeAppliance(Mutex::new(readiness)));
    let (stop, stopped) = oneshot::channel::<()>();
    let state = AdminState::new(appliance.clone());
    let task = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    Running {
        address,
        appliance,
        stop,
        task,
    }
}

#[tokio::test]
async fn health_answers_200_alive() {
    let running = start(Readiness::NotReady("starting".into())).await;
    let response = get(running.address, "/health").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"{"status":"alive"}"#), "{response}");
    let _ = running.stop.send(());
}

#[tokio::test]
async fn ready_follows_the_appliance() {
    let running = start(Readiness::NotReady("starting".into())).await;
    let response = get(running.address, "/ready").await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains(r#""reason":"starting""#), "{response}");

    if let Ok(mut readiness) = running.appliance.0.lock() {
        *readiness = Readiness::Ready;
    }
    let response = get(running.address, "/ready").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"{"status":"ready"}"#), "{response}");
    let _ = running.stop.send(());
}

#[tokio::test]
async fn unknown_path_is_404() {
    let running = start(Readiness::Ready).await;
    let response = get(running.address, "/nope").await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    let _ = running.stop.send(());
}

#[tokio::test]
async fn serve_returns_after_shutdown() {
    let running = start(Readiness::Ready).await;
    let _ = running.stop.send(());
    let finished = tokio::time::timeout(Duration::from_secs(5), running.task).await;
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "serve did not stop cleanly: {finished:?}"
    );
}
