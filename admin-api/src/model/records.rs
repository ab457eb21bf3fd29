//! Registrations, bans, CDRs and the audit log.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::calls::{MediaStats, SecurityInfo};
use crate::appliance::ApiError;

/// One binding of an address-of-record to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Registration {
    pub aor: String,
    pub contact: String,
    /// Where the REGISTER came from (`ip:port`).
    pub source: String,
    pub transport: String,
    pub user_agent: Option<String>,
    /// Unix ms at which the binding lapses.
    pub expires_at: i64,
    pub updated_at: i64,
}

/// A blocked source address or network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Ban {
    pub id: i64,
    /// Normalised address or CIDR network.
    pub source: String,
    /// Why (`scanner`, `auth_failures`, or an operator's note).
    pub reason: String,
    pub created_at: i64,
    /// Unix ms; absent for a permanent ban.
    pub expires_at: Option<i64>,
    /// Requests dropped because of it.
    pub hits: u64,
}

/// An operator's ban.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBan {
    /// An IPv4 or IPv6 address or CIDR network.
    #[schema(min_length = 1, max_length = 64, example = "198.51.100.66")]
    pub source: String,
    #[schema(min_length = 1, max_length = 256, example = "scanner seen in the logs")]
    pub reason: String,
    /// Lifts itself after this many seconds (absent: until lifted).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub expires_in_secs: Option<u64>,
}

impl NewBan {
    /// Checks every field on its own.
    pub fn check(&self) -> Result<(), ApiError> {
        if super::objects::parse_cidr(&self.source).is_none() {
            return Err(ApiError::invalid(
                "source",
                format!(
                    "{:?} is not an IPv4 or IPv6 address or CIDR network",
                    self.source
                ),
            ));
        }
        let reason_ok = (1..=256).contains(&self.reason.chars().count())
            && !self.reason.chars().any(char::is_control);
        if !reason_ok {
            return Err(ApiError::invalid(
                "reason",
                "must be 1 to 256 characters without control characters",
            ));
        }
        if let Some(seconds) = self.expires_in_secs
            && !(1..=31_536_000).contains(&seconds)
        {
            return Err(ApiError::invalid(
                "expires_in_secs",
                "must be 1 to 31536000 (a year)",
            ));
        }
        Ok(())
    }
}

/// How a call attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Answered,
    Busy,
    NoAnswer,
    Cancelled,
    Rejected,
    Failed,
}

/// One call attempt.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Cdr {
    pub id: String,
    pub a_call_id: String,
    pub b_call_id: Option<String>,
    /// INVITE received (unix ms).
    pub start_ms: i64,
    /// Answered (unix ms).
    pub answer_ms: Option<i64>,
    /// Ended (unix ms).
    pub end_ms: i64,
    pub caller: String,
    pub callee: String,
    pub source_addr: String,
    pub source_transport: String,
    pub dest_addr: Option<String>,
    pub dest_transport: Option<String>,
    pub trunk_in: Option<String>,
    pub trunk_out: Option<String>,
    pub disposition: Disposition,
    /// The final SIP status the caller got.
    pub sip_status: u16,
    /// `bye_from_a`, `bye_from_b`, `cancelled`, `failed`, `no_route` …
    pub end_reason: String,
    /// Answer to end, in ms.
    pub duration_ms: i64,
    pub media_stats: MediaStats,
    pub security: SecurityInfo,
}

/// Which CDRs: every given criterion must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrFilter {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub trunk: Option<String>,
    pub disposition: Option<Disposition>,
}

/// The filters of `GET /cdrs` and `GET /cdrs/export`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CdrQuery {
    /// Started at or after (unix ms).
    #[param(minimum = 0)]
    pub since: Option<i64>,
    /// Started before (unix ms).
    #[param(minimum = 0)]
    pub until: Option<i64>,
    /// The caller contains this text.
    #[param(min_length = 1, max_length = 256)]
    pub caller: Option<String>,
    /// The callee contains this text.
    #[param(min_length = 1, max_length = 256)]
    pub callee: Option<String>,
    /// Came in or went out on this trunk.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub trunk: Option<String>,
    #[param(inline)]
    pub disposition: Option<Disposition>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 4096)]
    pub cursor: Option<String>,
}

impl CdrQuery {
    /// The filter, checked.
    pub fn filter(&self) -> Result<CdrFilter, ApiError> {
        for (field, value) in [("since", self.since), ("until", self.until)] {
            if value.is_some_and(|ms| ms < 0) {
                return Err(ApiError::bad_request(format!(
                    "{field}: must be a time in unix milliseconds (0 or more)"
                )));
            }
        }
        for (field, value) in [("caller", &self.caller), ("callee", &self.callee)] {
            if let Some(text) = value
                && !(1..=256).contains(&text.chars().count())
            {
                return Err(ApiError::bad_request(format!(
                    "{field}: must be 1 to 256 characters"
                )));
            }
        }
        if let Some(trunk) = &self.trunk
            && !super::objects::is_simple_name(trunk)
        {
            return Err(ApiError::bad_request("trunk: not a trunk name"));
        }
        Ok(CdrFilter {
            since: self.since,
            until: self.until,
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            trunk: self.trunk.clone(),
            disposition: self.disposition,
        })
    }
}

/// An export's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header line.
    #[default]
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// The format and filters of `GET /cdrs/export`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `jsonl`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    /// Started at or after (unix ms).
    #[param(minimum = 0)]
    pub since: Option<i64>,
    /// Started before (unix ms).
    #[param(minimum = 0)]
    pub until: Option<i64>,
    /// The caller contains this text.
    #[param(min_length = 1, max_length = 256)]
    pub caller: Option<String>,
    /// The callee contains this text.
    #[param(min_length = 1, max_length = 256)]
    pub callee: Option<String>,
    /// Came in or went out on this trunk.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub trunk: Option<String>,
    #[param(inline)]
    pub disposition: Option<Disposition>,
}

impl ExportQuery {
    /// The filter, checked.
    pub fn filter(&self) -> Result<CdrFilter, ApiError> {
        CdrQuery {
            since: self.since,
            until: self.until,
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            trunk: self.trunk.clone(),
            disposition: self.disposition,
            limit: None,
            cursor: None,
        }
        .filter()
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    pub time_ms: i64,
    /// `token:<id>:<label>`, or `system`.
    pub actor: String,
    /// The request's peer address (and client certificate subject).
    pub source: Option<String>,
    /// `create`, `update`, `delete`, `terminate_call`, `drain`, `tls_reload` …
    pub action: String,
    pub object_kind: Option<String>,
    pub object_name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    /// SHA-256 of the previous record (hex).
    pub prev_hash: String,
    /// SHA-256 over this record and `prev_hash` (hex; layout in docs/store.md).
    pub hash: String,
}

/// The result of walking the whole audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditVerdict {
    pub records: u64,
    /// Every record chains to its predecessor and matches its hash.
    pub ok: bool,
    /// The first record that does not.
    pub first_bad: Option<u64>,
    pub reason: Option<String>,
    /// The newest record's hash when intact: keep it elsewhere to detect truncation.
    pub head_hash: Option<String>,
}
