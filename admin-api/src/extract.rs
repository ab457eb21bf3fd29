//! Request extractors that answer in the API's own error format: bearer-token
//! authentication with scopes, JSON bodies (400 for what does not parse, 422 naming the
//! field for what does not fit), query strings, path parameters and `If-Match`.

use std::net::SocketAddr;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::serve::IncomingStream;
use serde::de::DeserializeOwned;

use crate::AdminState;
use crate::appliance::{Actor, ApiError};
use crate::error::Rejection;
use crate::model::Scope;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Who is on the other end of an HTTP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub remote: SocketAddr,
    /// The subject of the client's verified certificate (TLS listeners asking for one).
    pub certificate_subject: Option<String>,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for ClientInfo {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientInfo {
            remote: *stream.remote_addr(),
            certificate_subject: None,
        }
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for ClientInfo {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Authenticates the request's bearer token; `write` asks for the read-write scope.
async fn authenticate(parts: &Parts, state: &AdminState, write: bool) -> Result<Actor, Rejection> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(Rejection::Unauthorized(
            "an admin token is required: Authorization: Bearer <token>",
        ))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty())
        .ok_or(Rejection::Unauthorized(
            "the Authorization header must be 'Bearer <token>'",
        ))?;
    let principal = state
        .appliance
        .authenticate(token)
        .await?
        .ok_or(Rejection::Unauthorized("the token is not valid"))?;
    if write && principal.scope != Scope::ReadWrite {
        return Err(Rejection::Forbidden(
            "this token is read-only; changes need a read_write token",
        ));
    }
    let client = parts
        .extensions
        .get::<ConnectInfo<ClientInfo>>()
        .map(|info| info.0.clone());
    Ok(Actor {
        principal,
        source: client.as_ref().map(|client| client.remote),
        client_certificate: client.and_then(|client| client.certificate_subject),
    })
}

/// A request with a valid token of any scope.
#[derive(Debug)]
pub struct Reader(#[allow(dead_code)] pub Actor);

impl FromRequestParts<AdminState> for Reader {
    type Rejection = Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, false).await.map(Reader)
    }
}

/// A request with a valid read-write token.
#[derive(Debug)]
pub struct Writer(pub Actor);

impl FromRequestParts<AdminState> for Writer {
    type Rejection = Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, true).await.map(Writer)
    }
}

/// A JSON body: 415 unless `application/json`, 413 past [`MAX_BODY_BYTES`], 400 when it
/// is not JSON, 422 naming the field when it does not fit `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Rejection;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|media| media.trim().to_ascii_lowercase())
            .is_some_and(|media| {
                media == "application/json"
                    || (media.starts_with("application/") && media.ends_with("+json"))
            });
        if !json {
            return Err(Rejection::UnsupportedMediaType);
        }
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| Rejection::PayloadTooLarge(MAX_BODY_BYTES))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body: syntax errors are 400, type errors 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejection> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                Rejection::Api(ApiError::invalid(field, strip_position(&inner)))
            }
            _ => not_json(&inner),
        }
    })?;
    deserializer.end().map_err(|error| not_json(&error))?;
    Ok(value)
}

fn not_json(error: &serde_json::Error) -> Rejection {
    Rejection::Api(ApiError::bad_request(format!(
        "the body is not valid JSON: {error}"
    )))
}

/// serde_json's message without " at line 1 column 42" (the field path says where).
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// A query string parsed into `T`; 400 with the reason when it does not fit.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|query| ApiQuery(query.0))
            .map_err(|rejection| {
                Rejection::Api(ApiError::bad_request(format!(
                    "query string: {}",
                    rejection.body_text()
                )))
            })
    }
}

/// Path parameters parsed into `T`; 400 with the reason when they do not fit.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| ApiPath(path.0))
            .map_err(|rejection| {
                Rejection::Api(ApiError::bad_request(format!(
                    "path: {}",
                    rejection.body_text()
                )))
            })
    }
}

/// `If-Match: "<version>"` (or a bare number): replace only that version.
#[derive(Debug)]
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        value
            .to_str()
            .ok()
            .map(|text| text.trim().trim_matches('"'))
            .and_then(|text| text.parse::<i64>().ok())
            .filter(|version| *version >= 1)
            .map(|version| IfMatch(Some(version)))
            .ok_or_else(|| {
                Rejection::Api(ApiError::bad_request(
                    "If-Match must be an object version (a positive number, e.g. \"3\")",
                ))
            })
    }
}

/// The page request of a list, checked.
pub fn page(
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<crate::appliance::PageRequest, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be 1 to 1000"));
    }
    if cursor.as_ref().is_some_and(|cursor| cursor.len() > 4096) {
        return Err(ApiError::bad_request("cursor: longer than 4096 characters"));
    }
    // An empty cursor is the first page.
    let cursor = cursor.filter(|cursor| !cursor.is_empty());
    Ok(crate::appliance::PageRequest { limit, cursor })
}
