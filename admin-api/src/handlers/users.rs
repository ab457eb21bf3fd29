//! `/users`: SIP digest users (credentials stored as HA1 values only) and `/tokens`:
//! admin API tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AdminState;
use crate::appliance::ErrorBody;
use crate::error::Rejection;
use crate::extract::{ApiPath, ApiQuery, IfMatch, JsonBody, Reader, Writer, page};
use crate::model::{
    CreatedToken, NewToken, NewUser, PageQuery, TokenInfo, TokenPage, User, UserPage, UserUpdate,
};

/// Lists users (never their credentials), by username then realm.
#[utoipa::path(
    get, path = "/users", tag = "users",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn list_users(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, Rejection> {
    let page = page(query.limit, query.cursor)?;
    Ok(Json(state.appliance.list_users(page).await?).into_response())
}

/// Creates a user from a password (stored as HA1 values for MD5, SHA-256 and
/// SHA-512-256, never as the password) or from precomputed HA1 values.
#[utoipa::path(
    post, path = "/users", tag = "users",
    request_body = NewUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = User),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 409, description = "The user exists in this realm", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field is not acceptable", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn create_user(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    JsonBody(user): JsonBody<NewUser>,
) -> Result<Response, Rejection> {
    user.check()?;
    let user = state.appliance.create_user(user, actor).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// One user.
#[utoipa::path(
    get, path = "/users/{realm}/{username}", tag = "users",
    params(
        ("realm" = String, Path, description = "The digest realm"),
        ("username" = String, Path, description = "The digest username"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "Bad path parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn get_user(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiPath((realm, username)): ApiPath<(String, String)>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.get_user(&realm, &username).await?).into_response())
}

/// Changes a user's attributes, password, or both (with `If-Match`, only the version
/// read).
#[utoipa::path(
    put, path = "/users/{realm}/{username}", tag = "users",
    params(
        ("realm" = String, Path, description = "The digest realm"),
        ("username" = String, Path, description = "The digest username"),
        ("If-Match" = Option<String>, Header, description = "Change only this version (e.g. \"3\")"),
    ),
    request_body = UserUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = User),
        (status = 400, description = "Not JSON, or a bad If-Match", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 412, description = "If-Match names an old version", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field is not acceptable", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn update_user(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    ApiPath((realm, username)): ApiPath<(String, String)>,
    IfMatch(if_version): IfMatch,
    JsonBody(update): JsonBody<UserUpdate>,
) -> Result<Response, Rejection> {
    update.check()?;
    let user = state
        .appliance
        .update_user(realm, username, update, if_version, actor)
        .await?;
    Ok(Json(user).into_response())
}

/// Deletes a user and its credentials.
#[utoipa::path(
    delete, path = "/users/{realm}/{username}", tag = "users",
    params(
        ("realm" = String, Path, description = "The digest realm"),
        ("username" = String, Path, description = "The digest username"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = User),
        (status = 400, description = "Bad path parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn delete_user(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    ApiPath((realm, username)): ApiPath<(String, String)>,
) -> Result<Response, Rejection> {
    let user = state.appliance.delete_user(realm, username, actor).await?;
    Ok(Json(user).into_response())
}

/// Lists admin tokens (never their secrets).
#[utoipa::path(
    get, path = "/tokens", tag = "tokens",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tokens", body = TokenPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn list_tokens(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, Rejection> {
    let page = page(query.limit, query.cursor)?;
    Ok(Json(state.appliance.list_tokens(page).await?).into_response())
}

/// Creates a token. Its secret is in this answer only; the appliance keeps its SHA-256.
#[utoipa::path(
    post, path = "/tokens", tag = "tokens",
    request_body = NewToken,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field is not acceptable", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn create_token(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    JsonBody(token): JsonBody<NewToken>,
) -> Result<Response, Rejection> {
    token.check()?;
    let created = state.appliance.create_token(token, actor).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revokes a token at once.
#[utoipa::path(
    delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "The token's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked", body = TokenInfo),
        (status = 400, description = "Bad path parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn revoke_token(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.revoke_token(id, actor).await?).into_response())
}
