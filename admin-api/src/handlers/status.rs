//! Unauthenticated endpoints: liveness, readiness, metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AdminState;
use crate::appliance::{ErrorBody, Readiness};
use crate::error::Rejection;

/// `/health` and `/ready` bodies.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusBody {
    /// `alive`, `ready` or `not_ready`.
    pub status: String,
    /// Why not ready (`starting`, `draining` …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Liveness: 200 whenever the process serves HTTP.
#[utoipa::path(
    get, path = "/health", tag = "status",
    responses((status = 200, description = "Alive", body = StatusBody))
)]
pub async fn health() -> Response {
    Json(StatusBody {
        status: "alive".to_owned(),
        reason: None,
    })
    .into_response()
}

/// Readiness: 200 once the appliance takes traffic; 503 while starting or draining.
#[utoipa::path(
    get, path = "/ready", tag = "status",
    responses(
        (status = 200, description = "Ready", body = StatusBody),
        (status = 503, description = "Not ready", body = StatusBody),
    )
)]
pub async fn ready(State(state): State<AdminState>) -> Response {
    match state.appliance.readiness() {
        Readiness::Ready => Json(StatusBody {
            status: "ready".to_owned(),
            reason: None,
        })
        .into_response(),
        Readiness::NotReady(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(StatusBody {
                status: "not_ready".to_owned(),
                reason: Some(reason),
            }),
        )
            .into_response(),
    }
}

/// Prometheus metrics, text exposition format 0.0.4 (docs/metrics.md lists them).
#[utoipa::path(
    get, path = "/metrics", tag = "status",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 503, description = "Signalling cannot answer now", body = ErrorBody),
    )
)]
pub async fn metrics(State(state): State<AdminState>) -> Result<Response, Rejection> {
    let text = state.appliance.metrics().await?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "status",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}
