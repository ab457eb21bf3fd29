//! The SBC admin REST API and Prometheus exporter (skeleton).
//!
//! The API knows the rest of the appliance only through the [`Appliance`] trait defined
//! here, so it can be tested alone and the binary decides what stands behind it.
//!
//! Endpoints so far:
//! * `GET /health`: liveness. `200 {"status":"alive"}` whenever the process serves HTTP.
//! * `GET /ready`: readiness. `200 {"status":"ready"}` once the appliance takes traffic,
//!   `503 {"status":"not_ready","reason":"…"}` before that and while draining.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use admin_api::{AdminState, Appliance, Readiness};
//!
//! #[derive(Debug)]
//! struct AlwaysReady;
//! impl Appliance for AlwaysReady {
//!     fn readiness(&self) -> Readiness {
//!         Readiness::Ready
//!     }
//! }
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let state = AdminState::new(Arc::new(AlwaysReady));
//! admin_api::serve(listener, state, std::future::pending()).await
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::net::TcpListener;

/// What the admin API asks of the appliance. Grows with the API.
pub trait Appliance: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the appliance takes traffic now.
    fn readiness(&self) -> Readiness;
}

/// The answer to "should traffic be sent here?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not (or no longer) taking traffic: starting, draining …; the reason is shown.
    NotReady(String),
}

/// The state every handler gets.
#[derive(Debug, Clone)]
pub struct AdminState {
    appliance: Arc<dyn Appliance>,
}

impl AdminState {
    pub fn new(appliance: Arc<dyn Appliance>) -> Self {
        AdminState { appliance }
    }
}

/// The API's routes, ready to be served (or driven directly in tests).
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state)
}

/// Serve the admin API on `listener` until `shutdown` completes, then finish the requests
/// in flight and return.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[derive(Debug, Serialize)]
struct StatusBody<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

async fn health() -> Response {
    axum::Json(StatusBody {
        status: "alive",
        reason: None,
    })
    .into_response()
}

async fn ready(State(state): State<AdminState>) -> Response {
    match state.appliance.readiness() {
        Readiness::Ready => axum::Json(StatusBody {
            status: "ready",
            reason: None,
        })
        .into_response(),
        Readiness::NotReady(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(StatusBody {
                status: "not_ready",
                reason: Some(&reason),
            }),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests;
