//! What the admin API asks of the appliance: the [`Appliance`] trait, which the binary
//! implements on top of its store and its running signalling, and the errors it answers
//! with.
//!
//! Methods that change state take the [`Actor`] who asked, for the audit log; the
//! appliance persists a change (with its audit record) before it answers, and applies it
//! to new calls at once.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use serde::Serialize;
use utoipa::ToSchema;

use crate::model::{
    AclSpec, AuditPage, AuditVerdict, Ban, BanPage, CallInfo, CallPage, CdrFilter, CdrPage,
    CreatedToken, CredentialInfo, DrainState, ExportFormat, NewBan, NewCredential, NewToken,
    NewTrustAnchor, NewUser, ObjectKind, Principal, RegistrationPage, RouteSpec, StoredObject,
    StoredObjectPage, TlsReloaded, TokenInfo, TokenPage, TrunkSpec, TrustAnchorInfo,
    TrustAnchorPage, User, UserPage, UserUpdate,
};
use crate::stream::ByteStream;

/// A boxed future, so that [`Appliance`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Shorthand for what every appliance method returns.
pub type ApiResult<T> = Result<T, ApiError>;

/// Which page of a list: at most `limit` items after the item `cursor` names (a cursor a
/// previous page handed out), or from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1..=1000.
    pub limit: u32,
    pub cursor: Option<String>,
}

/// A config object to create or replace, already checked field by field.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectSpec {
    Trunk(TrunkSpec),
    Route(RouteSpec),
    Acl(AclSpec),
}

impl ObjectSpec {
    /// Its kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            ObjectSpec::Trunk(_) => ObjectKind::Trunk,
            ObjectSpec::Route(_) => ObjectKind::Route,
            ObjectSpec::Acl(_) => ObjectKind::Acl,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            ObjectSpec::Trunk(spec) => &spec.name,
            ObjectSpec::Route(spec) => &spec.name,
            ObjectSpec::Acl(spec) => &spec.name,
        }
    }
}

/// Who asked for a change: the token's holder, from where, with which client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub principal: Principal,
    /// The peer address of the HTTP connection (absent when the router is driven directly).
    pub source: Option<SocketAddr>,
    /// The subject of the verified client certificate, on a TLS listener that asked for one.
    pub client_certificate: Option<String>,
}

impl Actor {
    /// The name the audit log shows: `token:<id>:<label>`.
    pub fn audit_name(&self) -> String {
        format!("token:{}:{}", self.principal.token_id, self.principal.label)
    }

    /// Where the change came from, for the audit log: the address, and the certificate
    /// subject when there is one.
    pub fn audit_source(&self) -> Option<String> {
        match (&self.source, &self.client_certificate) {
            (Some(source), Some(subject)) => Some(format!("{source} cert={subject}")),
            (Some(source), None) => Some(source.to_string()),
            (None, Some(subject)) => Some(format!("cert={subject}")),
            (None, None) => None,
        }
    }
}

/// The answer to "should traffic be sent here?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not (or no longer) taking traffic: starting, draining …; the reason is shown.
    NotReady(String),
}

/// Why a request failed, typed by fault; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read (malformed JSON, a bad query parameter …).
    #[error("{message}")]
    BadRequest { message: String },
    /// 422: the request was read but a field is not acceptable.
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
    /// 404.
    #[error("{what} not found")]
    NotFound { what: String },
    /// 409: the change conflicts with what exists (name taken, still referenced …).
    #[error("{message}")]
    Conflict { message: String },
    /// 412: `If-Match` named a version that is no longer current.
    #[error("version mismatch: the current version is {current}")]
    VersionMismatch { current: i64 },
    /// 503: the appliance cannot answer now (starting, stopping, a busy shard).
    #[error("{message}")]
    Unavailable { message: String },
    /// 500: a fault of ours (the store failed …). The message is logged, not shown.
    #[error("{message}")]
    Internal { message: String },
}

impl ApiError {
    /// A stable name, the `error` field of every error body.
    pub fn name(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Invalid { .. } => "invalid",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::VersionMismatch { .. } => "version_mismatch",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal { .. } => "internal",
        }
    }

    /// A 422 naming `field` and what is wrong with it.
    pub fn invalid(field: impl Into<String>, problem: impl fmt::Display) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            problem: problem.to_string(),
        }
    }

    /// A 404 for `what`.
    pub fn not_found(what: impl fmt::Display) -> ApiError {
        ApiError::NotFound {
            what: what.to_string(),
        }
    }

    /// A 409.
    pub fn conflict(message: impl fmt::Display) -> ApiError {
        ApiError::Conflict {
            message: message.to_string(),
        }
    }

    /// A 400.
    pub fn bad_request(message: impl fmt::Display) -> ApiError {
        ApiError::BadRequest {
            message: message.to_string(),
        }
    }

    /// A 503.
    pub fn unavailable(message: impl fmt::Display) -> ApiError {
        ApiError::Unavailable {
            message: message.to_string(),
        }
    }

    /// A 500.
    pub fn internal(message: impl fmt::Display) -> ApiError {
        ApiError::Internal {
            message: message.to_string(),
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable name: `bad_request`, `invalid`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `version_mismatch`, `unsupported_media_type`, `payload_too_large`,
    /// `unavailable`, `internal`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// For `invalid`: the offending field, as a path into the body (`targets[0].address`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `version_mismatch`: the current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

/// Everything the admin API asks of the appliance. The binary implements it; tests
/// implement it with fakes.
pub trait Appliance: Send + Sync + fmt::Debug + 'static {
    /// Whether the appliance takes traffic now.
    fn readiness(&self) -> Readiness;

    /// The holder of a bearer token, if it is a live token.
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, ApiResult<Option<Principal>>>;

    /// The Prometheus text exposition of the appliance's metrics.
    fn metrics(&self) -> BoxFuture<'_, ApiResult<String>>;

    // ---- config objects: trunks, routes, ACLs ----

    fn list_objects(
        &self,
        kind: ObjectKind,
        page: PageRequest,
    ) -> BoxFuture<'_, ApiResult<StoredObjectPage>>;
    fn get_object<'a>(
        &'a self,
        kind: ObjectKind,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<StoredObject>>;
    /// Creates an object; [`ApiError::Conflict`] if the name is taken.
    fn create_object(
        &self,
        spec: ObjectSpec,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<StoredObject>>;
    /// Replaces an object (with `if_version`, only if that is its current version).
    fn replace_object(
        &self,
        spec: ObjectSpec,
        if_version: Option<i64>,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<StoredObject>>;
    fn delete_object(
        &self,
        kind: ObjectKind,
        name: String,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<StoredObject>>;

    // ---- SIP digest users ----

    fn list_users(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<UserPage>>;
    fn get_user<'a>(&'a self, realm: &'a str, username: &'a str) -> BoxFuture<'a, ApiResult<User>>;
    /// Stores the user's HA1 values (never the password).
    fn create_user(&self, user: NewUser, actor: Actor) -> BoxFuture<'_, ApiResult<User>>;
    fn update_user(
        &self,
        realm: String,
        username: String,
        update: UserUpdate,
        if_version: Option<i64>,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<User>>;
    fn delete_user(
        &self,
        realm: String,
        username: String,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<User>>;

    // ---- admin tokens ----

    fn list_tokens(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<TokenPage>>;
    fn create_token(&self, token: NewToken, actor: Actor)
    -> BoxFuture<'_, ApiResult<CreatedToken>>;
    fn revoke_token(&self, id: i64, actor: Actor) -> BoxFuture<'_, ApiResult<TokenInfo>>;

    // ---- calls in progress ----

    fn list_calls(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<CallPage>>;
    fn get_call<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ApiResult<CallInfo>>;
    /// Ends a call (BYE on both legs, or 487 and CANCEL while it is set up).
    fn terminate_call(&self, id: String, actor: Actor) -> BoxFuture<'_, ApiResult<CallInfo>>;

    // ---- registrations and bans ----

    fn list_registrations(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<RegistrationPage>>;
    fn list_bans(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<BanPage>>;
    fn add_ban(&self, ban: NewBan, actor: Actor) -> BoxFuture<'_, ApiResult<Ban>>;
    fn lift_ban(&self, id: i64, actor: Actor) -> BoxFuture<'_, ApiResult<Ban>>;

    // ---- call detail records ----

    fn list_cdrs(&self, filter: CdrFilter, page: PageRequest) -> BoxFuture<'_, ApiResult<CdrPage>>;
    /// Every matching CDR, oldest first, streamed.
    fn export_cdrs(
        &self,
        filter: CdrFilter,
        format: ExportFormat,
    ) -> BoxFuture<'_, ApiResult<ByteStream>>;

    // ---- audit log ----

    fn list_audit(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<AuditPage>>;
    fn verify_audit(&self) -> BoxFuture<'_, ApiResult<AuditVerdict>>;

    // ---- STIR/SHAKEN material ----

    /// The signing credential in effect (never its key); 404 when there is none.
    fn credential(&self) -> BoxFuture<'_, ApiResult<CredentialInfo>>;
    /// Checks (the key is P-256 and matches the chain's leaf, `x5u` is https), stores
    /// and puts in effect for the next call a signing credential.
    fn set_credential(
        &self,
        credential: NewCredential,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<CredentialInfo>>;
    /// Removes the credential set through the API (the file's applies again).
    fn delete_credential(&self, actor: Actor) -> BoxFuture<'_, ApiResult<CredentialInfo>>;
    fn list_trust_anchors(&self, page: PageRequest) -> BoxFuture<'_, ApiResult<TrustAnchorPage>>;
    fn add_trust_anchor(
        &self,
        anchor: NewTrustAnchor,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<TrustAnchorInfo>>;
    /// Removes a root added through the API (`id`: its fingerprint).
    fn remove_trust_anchor(
        &self,
        id: String,
        actor: Actor,
    ) -> BoxFuture<'_, ApiResult<TrustAnchorInfo>>;

    // ---- operations ----

    /// Reloads every TLS certificate and key from its files; connections in progress keep
    /// theirs, new handshakes use the new ones. A bad file changes nothing.
    fn reload_tls(&self, actor: Actor) -> BoxFuture<'_, ApiResult<TlsReloaded>>;
    fn drain_state(&self) -> BoxFuture<'_, ApiResult<DrainState>>;
    /// Starts (`true`) or ends (`false`) a drain: new calls are refused with 503 while
    /// calls in progress go on.
    fn set_draining(&self, draining: bool, actor: Actor) -> BoxFuture<'_, ApiResult<DrainState>>;
}
