//! The SBC admin REST API and Prometheus exporter.
//!
//! The API knows the rest of the appliance only through the [`Appliance`] trait defined
//! here, so it can be tested alone and the binary decides what stands behind it. JSON in
//! and out; errors are an [`ErrorBody`] with a stable `error` name (422 names the field);
//! lists are paged with an opaque cursor; the OpenAPI 3.1 document generated from the
//! code is served at `/openapi.json`.
//!
//! Every endpoint but `/health`, `/ready`, `/metrics` and `/openapi.json` needs a bearer
//! token: any scope reads, `read_write` changes (`401` without a valid token, `403` for
//! a read-only one). [`serve`] runs on plain TCP, [`serve_tls`] on TLS with optional
//! client-certificate authentication.
//!
//! ```no_run
//! # async fn example(appliance: std::sync::Arc<dyn admin_api::Appliance>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let state = admin_api::AdminState::new(appliance);
//! admin_api::serve(listener, state, std::future::pending()).await
//! # }
//! ```

pub mod appliance;
mod error;
mod extract;
mod handlers;
pub mod model;
mod openapi;
pub mod stream;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::net::TcpListener;

pub use appliance::{
    Actor, ApiError, ApiResult, Appliance, BoxFuture, ErrorBody, ObjectSpec, PageRequest, Readiness,
};
pub use extract::{ClientInfo, MAX_BODY_BYTES};
pub use openapi::document as openapi_document;
pub use stream::{ByteSink, ByteStream, byte_channel};

use handlers::{objects, operations, status, stir, users};

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
        .route("/health", get(status::health))
        .route("/ready", get(status::ready))
        .route("/metrics", get(status::metrics))
        .route("/openapi.json", get(status::openapi))
        .route(
            "/trunks",
            get(objects::list_trunks).post(objects::create_trunk),
        )
        .route(
            "/trunks/{name}",
            get(objects::get_trunk)
                .put(objects::replace_trunk)
                .delete(objects::delete_trunk),
        )
        .route(
            "/routes",
            get(objects::list_routes).post(objects::create_route),
        )
        .route(
            "/routes/{name}",
            get(objects::get_route)
                .put(objects::replace_route)
                .delete(objects::delete_route),
        )
        .route("/acls", get(objects::list_acls).post(objects::create_acl))
        .route(
            "/acls/{name}",
            get(objects::get_acl)
                .put(objects::replace_acl)
                .delete(objects::delete_acl),
        )
        .route("/users", get(users::list_users).post(users::create_user))
        .route(
            "/users/{realm}/{username}",
            get(users::get_user)
                .put(users::update_user)
                .delete(users::delete_user),
        )
        .route("/tokens", get(users::list_tokens).post(users::create_token))
        .route("/tokens/{id}", axum::routing::delete(users::revoke_token))
        .route("/calls", get(operations::list_calls))
        .route(
            "/calls/{id}",
            get(operations::get_call).delete(operations::terminate_call),
        )
        .route("/registrations", get(operations::list_registrations))
        .route(
            "/bans",
            get(operations::list_bans).post(operations::add_ban),
        )
        .route("/bans/{id}", axum::routing::delete(operations::lift_ban))
        .route("/cdrs", get(operations::list_cdrs))
        .route("/cdrs/export", get(operations::export_cdrs))
        .route("/audit", get(operations::list_audit))
        .route("/audit/verify", get(operations::verify_audit))
        .route(
            "/identity/credential",
            get(stir::get_credential)
                .put(stir::set_credential)
                .delete(stir::delete_credential),
        )
        .route(
            "/identity/trust-anchors",
            get(stir::list_trust_anchors).post(stir::add_trust_anchor),
        )
        .route(
            "/identity/trust-anchors/{id}",
            axum::routing::delete(stir::remove_trust_anchor),
        )
        .route("/tls/reload", axum::routing::post(operations::reload_tls))
        .route(
            "/drain",
            get(operations::drain_state).put(operations::set_draining),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serve the admin API on `listener` until `shutdown` completes, then finish the requests
/// in flight and return.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<ClientInfo>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Like [`serve`], over TLS (see [`tls`]).
pub async fn serve_tls(
    listener: tls::TlsListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<ClientInfo>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
