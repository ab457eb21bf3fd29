//! `/identity/credential` and `/identity/trust-anchors`: the STIR/SHAKEN signing
//! credential (its private key is write-only) and the STI-CA roots calls are verified
//! against. A change applies to the next call.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AdminState;
use crate::appliance::ErrorBody;
use crate::error::Rejection;
use crate::extract::{ApiPath, ApiQuery, JsonBody, Reader, Writer, page};
use crate::model::{
    CredentialInfo, NewCredential, NewTrustAnchor, PageQuery, TrustAnchorInfo, TrustAnchorPage,
};

/// The signing credential in effect: its certificate and `x5u`, never its key.
#[utoipa::path(
    get, path = "/identity/credential", tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The credential in effect", body = CredentialInfo),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No signing credential (neither the file nor the API set one)", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn get_credential(
    _reader: Reader,
    State(state): State<AdminState>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.credential().await?).into_response())
}

/// Sets the signing credential (it overrides the file's `[identity]` one). The key must
/// be P-256 and match the chain's first certificate; calls are signed with it from the
/// next one on, and `[identity.publish]` serves the new chain.
#[utoipa::path(
    put, path = "/identity/credential", tag = "identity",
    request_body = NewCredential,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "In effect", body = CredentialInfo),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field is not acceptable (private_key, certificate_chain, x5u)", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn set_credential(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    JsonBody(credential): JsonBody<NewCredential>,
) -> Result<Response, Rejection> {
    credential.check()?;
    Ok(Json(state.appliance.set_credential(credential, actor).await?).into_response())
}

/// Removes the credential set through the API; the file's applies again.
#[utoipa::path(
    delete, path = "/identity/credential", tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Removed; the credential that was set", body = CredentialInfo),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "None was set through the API", body = ErrorBody),
        (status = 409, description = "A trunk signs and the file has no credential", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn delete_credential(
    Writer(actor): Writer,
    State(state): State<AdminState>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.delete_credential(actor).await?).into_response())
}

/// The STI-CA roots in effect: the file's (`identity.trust_anchors`) and the API's.
#[utoipa::path(
    get, path = "/identity/trust-anchors", tag = "identity",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of trust anchors", body = TrustAnchorPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn list_trust_anchors(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, Rejection> {
    let page = page(query.limit, query.cursor)?;
    Ok(Json(state.appliance.list_trust_anchors(page).await?).into_response())
}

/// Trusts one more STI-CA root, from the next call on.
#[utoipa::path(
    post, path = "/identity/trust-anchors", tag = "identity",
    request_body = NewTrustAnchor,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Trusted", body = TrustAnchorInfo),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 409, description = "Already trusted", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Not one PEM CA certificate", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn add_trust_anchor(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    JsonBody(anchor): JsonBody<NewTrustAnchor>,
) -> Result<Response, Rejection> {
    anchor.check()?;
    let anchor = state.appliance.add_trust_anchor(anchor, actor).await?;
    Ok((StatusCode::CREATED, Json(anchor)).into_response())
}

/// Stops trusting a root added through the API, from the next call on.
#[utoipa::path(
    delete, path = "/identity/trust-anchors/{id}", tag = "identity",
    params(("id" = String, Path, description = "The root's SHA-256 fingerprint (hex)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Removed", body = TrustAnchorInfo),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such root", body = ErrorBody),
        (status = 409, description = "The root is the file's, or the last one while a trunk verifies", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn remove_trust_anchor(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.remove_trust_anchor(id, actor).await?).into_response())
}
