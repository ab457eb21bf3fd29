//! The API's resources as they travel in JSON, with their OpenAPI schemas.
//!
//! Inputs refuse unknown fields (a typo is a 422, not a silently ignored setting); times
//! are unix milliseconds; lists come in pages ([`page_type!`]) with an opaque cursor.

mod calls;
mod objects;
mod people;
mod records;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

pub use calls::{
    CallInfo, CallLeg, LegMedia, LegSecurityInfo, MediaInfo, MediaProtectionInfo, MediaStats,
    SecurityInfo, SignallingInfo, StreamMedia,
};
pub use objects::{
    AclAction, AclObject, AclRule, AclSpec, HeaderPolicy, IncomingIdentity, KeyExchange,
    RouteObject, RouteSpec, SrtpPolicySpec, Transport, TrunkAclSpec, TrunkIdentitySpec,
    TrunkObject, TrunkSpec, TrunkTarget, VerifyMode, is_simple_name, parse_cidr,
    parse_listener_ref,
};
pub use people::{CreatedToken, NewToken, NewUser, TokenInfo, User, UserUpdate};
pub use records::{
    AuditRecord, AuditVerdict, Ban, Cdr, CdrFilter, CdrQuery, Disposition, ExportFormat,
    ExportQuery, NewBan, Registration,
};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every GET.
    ReadOnly,
    /// Everything.
    ReadWrite,
}

/// The holder of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: i64,
    pub label: String,
    pub scope: Scope,
}

/// A kind of config object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Trunk,
    Route,
    Acl,
}

impl ObjectKind {
    /// The stable name (also the audit log's object kind).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Trunk => "trunk",
            ObjectKind::Route => "route",
            ObjectKind::Acl => "acl",
        }
    }
}

/// Where an object is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Created through this API; lives in the store.
    Api,
    /// Defined in the configuration file; read-only here (change the file).
    ConfigFile,
}

/// A config object as stored. `spec` is the object's document (a [`TrunkSpec`],
/// [`RouteSpec`] or [`AclSpec`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredObject {
    #[serde(skip)]
    pub kind: ObjectKind,
    pub name: String,
    pub spec: Value,
    /// 1 on creation, +1 per change (0 for configuration-file objects). Send it back in
    /// `If-Match` to replace only what you read.
    pub version: i64,
    pub origin: Origin,
    /// Unix ms (absent for configuration-file objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// A page of a list type.
macro_rules! page_type {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` for the next page; absent on the last page.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub next_cursor: Option<String>,
        }
    };
}

/// A page of stored objects (any kind; documented per kind as [`TrunkPage`] …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredObjectPage {
    pub items: Vec<StoredObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
page_type!(
    /// A page of trunks.
    TrunkPage,
    TrunkObject
);
page_type!(
    /// A page of routes.
    RoutePage,
    RouteObject
);
page_type!(
    /// A page of ACLs.
    AclPage,
    AclObject
);
page_type!(
    /// A page of users.
    UserPage,
    User
);
page_type!(
    /// A page of tokens.
    TokenPage,
    TokenInfo
);
page_type!(
    /// A page of calls in progress.
    CallPage,
    CallInfo
);
page_type!(
    /// A page of registrations.
    RegistrationPage,
    Registration
);
page_type!(
    /// A page of bans.
    BanPage,
    Ban
);
page_type!(
    /// A page of CDRs, newest first.
    CdrPage,
    Cdr
);
page_type!(
    /// A page of audit records, newest first.
    AuditPage,
    AuditRecord
);

/// `limit` and `cursor` of every list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 4096)]
    pub cursor: Option<String>,
}

/// Whether the appliance drains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DrainState {
    /// New calls are refused with 503 while calls in progress go on.
    pub draining: bool,
    /// Calls in progress now.
    pub active_calls: u64,
}

/// The body of `PUT /drain`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    /// `true` starts a drain, `false` ends it.
    pub draining: bool,
}

/// The outcome of a TLS reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TlsReloaded {
    /// SIP TLS listeners whose certificate was reloaded.
    pub sip_listeners: u64,
    /// Whether the admin listener's certificate was reloaded too.
    pub admin_listener: bool,
}
