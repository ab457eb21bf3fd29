//! Every failure becomes a JSON [`ErrorBody`] with the status its fault calls for.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::appliance::{ApiError, ErrorBody};

/// Why a request is answered with an error: the appliance's [`ApiError`], or a refusal of
/// the HTTP layer itself.
#[derive(Debug)]
pub enum Rejection {
    Api(ApiError),
    /// 401: no token, or not a live token.
    Unauthorized(&'static str),
    /// 403: the token's scope does not allow the request.
    Forbidden(&'static str),
    /// 415: a body that is not `application/json`.
    UnsupportedMediaType,
    /// 413: a body over the limit.
    PayloadTooLarge(usize),
}

impl From<ApiError> for Rejection {
    fn from(error: ApiError) -> Self {
        Rejection::Api(error)
    }
}

fn body(error: &str, message: String) -> ErrorBody {
    ErrorBody {
        error: error.to_owned(),
        message,
        field: None,
        current_version: None,
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Rejection::Api(error) => return api_response(error),
            Rejection::Unauthorized(message) => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(body("unauthorized", message.to_owned())),
                )
                    .into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sbc\""),
                );
                return response;
            }
            Rejection::Forbidden(message) => {
                (StatusCode::FORBIDDEN, body("forbidden", message.to_owned()))
            }
            Rejection::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                body(
                    "unsupported_media_type",
                    "the body must be JSON (Content-Type: application/json)".to_owned(),
                ),
            ),
            Rejection::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(
                    "payload_too_large",
                    format!("the body is larger than {limit} bytes"),
                ),
            ),
        };
        (status, Json(body)).into_response()
    }
}

fn api_response(error: ApiError) -> Response {
    let name = error.name();
    let (status, body) = match error {
        ApiError::BadRequest { message } => (StatusCode::BAD_REQUEST, body(name, message)),
        ApiError::Invalid { field, problem } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorBody {
                error: name.to_owned(),
                message: format!("{field}: {problem}"),
                field: Some(field),
                current_version: None,
            },
        ),
        ApiError::NotFound { what } => (
            StatusCode::NOT_FOUND,
            body(name, format!("{what} not found")),
        ),
        ApiError::Conflict { message } => (StatusCode::CONFLICT, body(name, message)),
        ApiError::VersionMismatch { current } => (
            StatusCode::PRECONDITION_FAILED,
            ErrorBody {
                error: name.to_owned(),
                message: format!("If-Match names an old version: the current version is {current}"),
                field: None,
                current_version: Some(current),
            },
        ),
        ApiError::Unavailable { message } => (StatusCode::SERVICE_UNAVAILABLE, body(name, message)),
        ApiError::Internal { message } => {
            tracing::error!(error = %message, "admin API request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                body(
                    name,
                    "the appliance failed to carry out the request; its log says why".to_owned(),
                ),
            )
        }
    };
    (status, Json(body)).into_response()
}
