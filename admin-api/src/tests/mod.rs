#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::*;

mod fake;

use fake::READ_ONLY;
pub(crate) use fake::{FakeAppliance, READ_WRITE};

/// A parsed HTTP response.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

async fn request(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Answer {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let mut text = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        if let Some(token) = token {
            text.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        match body {
            Some((content_type, body)) => text.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )),
            None => text.push_str("Content-Length: 0\r\n\r\n"),
        }
        stream.write_all(text.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        std::io::Result::Ok(response)
    };
    let response = match tokio::time::timeout(Duration::from_secs(5), exchange).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => panic!("{method} {path}: {error}"),
        Err(_) => panic!("{method} {path}: no answer within 5 s"),
    };
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    // Chunked bodies (streams) are left as they came; JSON bodies have a length.
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

struct Running {
    address: std::net::SocketAddr,
    appliance: Arc<FakeAppliance>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(readiness: Readiness) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let appliance = Arc::new(FakeAppliance::new(readiness));
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

fn trunk_json(name: &str) -> String {
    json!({
        "name": name,
        "targets": [{"address": "127.0.0.1:5080"}],
        "transport": "udp"
    })
    .to_string()
}

const JSON: &str = "application/json";

#[tokio::test]
async fn health_answers_200_alive() {
    let running = start(Readiness::NotReady("starting".into())).await;
    let answer = request(running.address, "GET", "/health", None, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({"status": "alive"}));
    let _ = running.stop.send(());
}

#[tokio::test]
async fn ready_follows_the_appliance() {
    let running = start(Readiness::NotReady("starting".into())).await;
    let answer = request(running.address, "GET", "/ready", None, None).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["reason"], "starting");
    *running.appliance.readiness.lock().unwrap() = Readiness::Ready;
    let answer = request(running.address, "GET", "/ready", None, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({"status": "ready"}));
    let _ = running.stop.send(());
}

#[tokio::test]
async fn unknown_path_is_404() {
    let running = start(Readiness::Ready).await;
    let answer = request(running.address, "GET", "/nope", None, None).await;
    assert_eq!(answer.status, 404);
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

#[tokio::test]
async fn reads_need_a_token_and_changes_a_read_write_one() {
    let running = start(Readiness::Ready).await;
    let body = trunk_json("carrier");
    let answer = request(running.address, "GET", "/trunks", None, None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"sbc\"")
    );
    assert_eq!(answer.json()["error"], "unauthorized");
    let answer = request(running.address, "GET", "/trunks", Some("sbc_wrong"), None).await;
    assert_eq!(answer.status, 401);
    let answer = request(running.address, "GET", "/trunks", Some(READ_ONLY), None).await;
    assert_eq!(answer.status, 200);

    let create = |token| {
        request(
            running.address,
            "POST",
            "/trunks",
            token,
            Some((JSON, &body)),
        )
    };
    assert_eq!(create(None).await.status, 401);
    let forbidden = create(Some(READ_ONLY)).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.json()["error"], "forbidden");
    assert!(running.appliance.objects.lock().unwrap().is_empty());

    let created = create(Some(READ_WRITE)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.header("location").as_deref(),
        Some("/trunks/carrier")
    );
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(created.json()["spec"]["targets"][0]["weight"], 1);
    assert_eq!(created.json()["spec"]["keepalive_secs"], 30);
    assert_eq!(create(Some(READ_WRITE)).await.status, 409);
    let changes = running.appliance.changes.lock().unwrap().clone();
    assert_eq!(changes.len(), 1);
    assert!(
        changes[0].starts_with("create by token:1:sbc_rw from 127.0.0.1:"),
        "{changes:?}"
    );
    let _ = running.stop.send(());
}

#[tokio::test]
async fn malformed_and_invalid_bodies_say_what_is_wrong() {
    let running = start(Readiness::Ready).await;
    let post = |content_type: &'static str, body: String| {
        let address = running.address;
        async move {
            request(
                address,
                "POST",
                "/trunks",
                Some(READ_WRITE),
                Some((content_type, &body)),
            )
            .await
        }
    };
    let answer = post(JSON, "{\"name\": ".into()).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "bad_request");
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let answer = post("text/plain", trunk_json("x")).await;
    assert_eq!(answer.status, 415);

    let answer = post(
        JSON,
        json!({"name": "t", "targets": [], "transport": "udp"}).to_string(),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json()["field"], "targets");

    let answer = post(
        JSON,
        json!({"name": "t", "targets": [{"address": "a", "weight": "heavy"}], "transport": "udp"})
            .to_string(),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json()["field"], "targets[0].weight");

    let answer = post(
        JSON,
        json!({"name": "t", "targets": [{"address": "a"}], "transport": "sctp"}).to_string(),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json()["field"], "transport");

    let answer = post(
        JSON,
        json!({"name": "bad name!", "targets": [{"address": "a"}], "transport": "udp"}).to_string(),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json()["field"], "name");

    let answer = post(
        JSON,
        json!({"name": "t", "targets": [{"address": "a"}], "transport": "udp", "colour": 1})
            .to_string(),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    assert!(
        running.appliance.objects.lock().unwrap().is_empty(),
        "nothing changed"
    );
    let _ = running.stop.send(());
}

#[tokio::test]
async fn replace_checks_the_name_and_if_match() {
    let running = start(Readiness::Ready).await;
    let body = trunk_json("carrier");
    let put = |path: &'static str, body: String| {
        let address = running.address;
        async move { request(address, "PUT", path, Some(READ_WRITE), Some((JSON, &body))).await }
    };
    assert_eq!(put("/trunks/carrier", body.clone()).await.status, 404);
    request(
        running.address,
        "POST",
        "/trunks",
        Some(READ_WRITE),
        Some((JSON, &body)),
    )
    .await;
    let renamed = put("/trunks/other", body.clone()).await;
    assert_eq!(renamed.status, 422);
    assert_eq!(renamed.json()["field"], "name");
    let replaced = put("/trunks/carrier", body.clone()).await;
    assert_eq!(replaced.status, 200);
    assert_eq!(replaced.json()["version"], 2);

    let stale = {
        let mut stream = tokio::net::TcpStream::connect(running.address)
            .await
            .unwrap();
        let text = format!(
            "PUT /trunks/carrier HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {READ_WRITE}\r\nIf-Match: \"1\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(text.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    };
    assert!(stale.starts_with("HTTP/1.1 412"), "{stale}");
    assert!(stale.contains("\"current_version\":2"), "{stale}");
    let _ = running.stop.send(());
}

#[tokio::test]
async fn bad_query_and_path_parameters_are_400_in_json() {
    let running = start(Readiness::Ready).await;
    for path in [
        "/trunks?limit=0",
        "/trunks?limit=abc",
        "/cdrs?since=-5",
        "/tokens/abc",
    ] {
        let method = if path.starts_with("/tokens") {
            "DELETE"
        } else {
            "GET"
        };
        let answer = request(running.address, method, path, Some(READ_WRITE), None).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(answer.json()["error"], "bad_request", "{path}");
    }
    let _ = running.stop.send(());
}

#[tokio::test]
async fn users_never_echo_credentials() {
    let running = start(Readiness::Ready).await;
    let body =
        json!({"username": "alice", "realm": "example.net", "password": "s3cret"}).to_string();
    let answer = request(
        running.address,
        "POST",
        "/users",
        Some(READ_WRITE),
        Some((JSON, &body)),
    )
    .await;
    assert_eq!(answer.status, 201);
    assert!(!answer.body.contains("s3cret"), "{}", answer.body);
    let both =
        json!({"username": "a", "realm": "r", "password": "p", "ha1": {"MD5": "00"}}).to_string();
    let answer = request(
        running.address,
        "POST",
        "/users",
        Some(READ_WRITE),
        Some((JSON, &both)),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json()["field"], "ha1");
    let _ = running.stop.send(());
}

#[tokio::test]
async fn metrics_and_exports_have_their_content_types() {
    let running = start(Readiness::Ready).await;
    let metrics = request(running.address, "GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let export = request(
        running.address,
        "GET",
        "/cdrs/export?format=csv",
        Some(READ_ONLY),
        None,
    )
    .await;
    assert_eq!(export.status, 200);
    assert!(
        export
            .header("content-type")
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(export.body.contains("1,alice"), "{}", export.body);
    let _ = running.stop.send(());
}

#[test]
fn the_openapi_document_describes_every_route_and_the_bearer_scheme() {
    let document = serde_json::to_value(openapi_document()).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/trunks",
        "/trunks/{name}",
        "/routes",
        "/routes/{name}",
        "/acls",
        "/acls/{name}",
        "/users",
        "/users/{realm}/{username}",
        "/tokens",
        "/tokens/{id}",
        "/calls",
        "/calls/{id}",
        "/registrations",
        "/bans",
        "/bans/{id}",
        "/cdrs",
        "/cdrs/export",
        "/audit",
        "/audit/verify",
        "/tls/reload",
        "/drain",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let create = &document["paths"]["/trunks"]["post"];
    for status in ["201", "401", "403", "409", "422"] {
        assert!(
            create["responses"].get(status).is_some(),
            "POST /trunks {status}"
        );
    }
}
