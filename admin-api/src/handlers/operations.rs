//! Calls in progress, registrations, bans, CDRs, the audit log, TLS reload and drain.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AdminState;
use crate::appliance::ErrorBody;
use crate::error::Rejection;
use crate::extract::{ApiPath, ApiQuery, JsonBody, Reader, Writer, page};
use crate::model::{
    AuditPage, AuditVerdict, Ban, BanPage, CallInfo, CallPage, CdrPage, CdrQuery, DrainRequest,
    DrainState, ExportFormat, ExportQuery, NewBan, PageQuery, RegistrationPage, TlsReloaded,
};

/// Lists calls in progress, with both legs, codecs, media statistics and the security
/// summary.
#[utoipa::path(
    get, path = "/calls", tag = "calls",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of calls", body = CallPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Signalling cannot answer now", body = ErrorBody),
    )
)]
pub async fn list_calls(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, Rejection> {
    let page = page(query.limit, query.cursor)?;
    Ok(Json(state.appliance.list_calls(page).await?).into_response())
}

/// One call in progress.
#[utoipa::path(
    get, path = "/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "The call's id (from the list)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The call", body = CallInfo),
        (status = 400, description = "Bad path parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such call in progress", body = ErrorBody),
        (status = 503, description = "Signalling cannot answer now", body = ErrorBody),
    )
)]
pub async fn get_call(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.get_call(&id).await?).into_response())
}

/// Ends a call: BYE on both legs when answered, `487` to the caller and CANCEL to the
/// callee while it is being set up. Returns the call as it was.
#[utoipa::path(
    delete, path = "/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "The call's id (from the list)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Terminated", body = CallInfo),
        (status = 400, description = "Bad path parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such call in progress", body = ErrorBody),
        (status = 503, description = "Signalling cannot answer now", body = ErrorBody),
    )
)]
pub async fn terminate_call(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.terminate_call(id, actor).await?).into_response())
}

/// Lists registrations.
#[utoipa::path(
    get, path = "/registrations", tag = "registrations",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of registrations", body = RegistrationPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn list_registrations(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, Rejection> {
    let page = page(query.limit, query.cursor)?;
    Ok(Json(state.appliance.list_registrations(page).await?).into_response())
}

/// Lists bans (automatic and operators').
#[utoipa::path(
    get, path = "/bans", tag = "bans",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of bans", body = BanPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn list_bans(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, Rejection> {
    let page = page(query.limit, query.cursor)?;
    Ok(Json(state.appliance.list_bans(page).await?).into_response())
}

/// Bans a source address or network (renews an existing ban of it).
#[utoipa::path(
    post, path = "/bans", tag = "bans",
    request_body = NewBan,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Banned", body = Ban),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field is not acceptable", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn add_ban(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    JsonBody(ban): JsonBody<NewBan>,
) -> Result<Response, Rejection> {
    ban.check()?;
    let ban = state.appliance.add_ban(ban, actor).await?;
    Ok((StatusCode::CREATED, Json(ban)).into_response())
}

/// Lifts a ban at once.
#[utoipa::path(
    delete, path = "/bans/{id}", tag = "bans",
    params(("id" = i64, Path, description = "The ban's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Lifted", body = Ban),
        (status = 400, description = "Bad path parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such ban", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn lift_ban(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.lift_ban(id, actor).await?).into_response())
}

/// Lists CDRs (one per call attempt), newest first, with filters.
#[utoipa::path(
    get, path = "/cdrs", tag = "cdrs",
    params(CdrQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of CDRs", body = CdrPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn list_cdrs(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<CdrQuery>,
) -> Result<Response, Rejection> {
    let filter = query.filter()?;
    let page = page(query.limit, query.cursor)?;
    Ok(Json(state.appliance.list_cdrs(filter, page).await?).into_response())
}

/// Exports every matching CDR, oldest first, as CSV (RFC 4180, with a header line) or
/// JSON lines, streamed.
#[utoipa::path(
    get, path = "/cdrs/export", tag = "cdrs",
    params(ExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The CDRs", content(
            (String = "text/csv"),
            (String = "application/jsonl"),
        )),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn export_cdrs(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, Rejection> {
    let filter = query.filter()?;
    let format = query.format.unwrap_or_default();
    let stream = state.appliance.export_cdrs(filter, format).await?;
    let (content_type, file) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "cdrs.csv"),
        ExportFormat::Jsonl => ("application/jsonl", "cdrs.jsonl"),
    };
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// Lists audit records, newest first.
#[utoipa::path(
    get, path = "/audit", tag = "audit",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of audit records", body = AuditPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn list_audit(
    _reader: Reader,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, Rejection> {
    let page = page(query.limit, query.cursor)?;
    Ok(Json(state.appliance.list_audit(page).await?).into_response())
}

/// Walks the whole audit chain and reports the first record that was tampered with.
#[utoipa::path(
    get, path = "/audit/verify", tag = "audit",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The verdict", body = AuditVerdict),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn verify_audit(
    _reader: Reader,
    State(state): State<AdminState>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.verify_audit().await?).into_response())
}

/// Reloads every TLS certificate and key from its files without dropping connections
/// (a bad file changes nothing and is named in a 422).
#[utoipa::path(
    post, path = "/tls/reload", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reloaded", body = TlsReloaded),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 422, description = "A file could not be loaded", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn reload_tls(
    Writer(actor): Writer,
    State(state): State<AdminState>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.reload_tls(actor).await?).into_response())
}

/// Whether the appliance drains, and how many calls are in progress.
#[utoipa::path(
    get, path = "/drain", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The drain state", body = DrainState),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn drain_state(
    _reader: Reader,
    State(state): State<AdminState>,
) -> Result<Response, Rejection> {
    Ok(Json(state.appliance.drain_state().await?).into_response())
}

/// Starts or ends a drain: while draining, new calls get 503 and `/ready` says
/// not ready; calls in progress go on.
#[utoipa::path(
    put, path = "/drain", tag = "operations",
    request_body = DrainRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new drain state", body = DrainState),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field is not acceptable", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub async fn set_draining(
    Writer(actor): Writer,
    State(state): State<AdminState>,
    JsonBody(request): JsonBody<DrainRequest>,
) -> Result<Response, Rejection> {
    let drain = state
        .appliance
        .set_draining(request.draining, actor)
        .await?;
    Ok(Json(drain).into_response())
}
