//! Store values as the API shows them, and store errors as API errors.

use admin_api::ApiError;
use admin_api::model::{self, Origin, Scope};

use crate::store::{self, StoreError};

/// The API error for a store error: missing → 404, taken → 409, stale `If-Match` → 412,
/// a bad cursor → 400, another bad input → 422, anything else → 500.
pub fn api_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound { kind, name } => ApiError::not_found(format!("{kind} {name:?}")),
        StoreError::Conflict { kind, name } => {
            ApiError::conflict(format!("{kind} {name:?} already exists"))
        }
        StoreError::VersionMismatch { current } => ApiError::VersionMismatch { current },
        StoreError::Invalid {
            field: "cursor",
            reason,
        } => ApiError::bad_request(format!("cursor: {reason}")),
        StoreError::Invalid { field, reason } => ApiError::invalid(field, reason),
        other => ApiError::internal(other),
    }
}

pub fn kind(kind: model::ObjectKind) -> store::ObjectKind {
    match kind {
        model::ObjectKind::Trunk => store::ObjectKind::Trunk,
        model::ObjectKind::Route => store::ObjectKind::Route,
        model::ObjectKind::Acl => store::ObjectKind::Acl,
    }
}

/// A stored object.
pub fn object(kind: model::ObjectKind, object: store::StoredObject) -> model::StoredObject {
    model::StoredObject {
        kind,
        name: object.name,
        spec: object.spec,
        version: object.version,
        origin: Origin::Api,
        created_at: Some(object.created_at),
        updated_at: Some(object.updated_at),
    }
}

pub fn scope(scope: store::Scope) -> Scope {
    match scope {
        store::Scope::ReadOnly => Scope::ReadOnly,
        store::Scope::ReadWrite => Scope::ReadWrite,
    }
}

pub fn store_scope(scope: Scope) -> store::Scope {
    match scope {
        Scope::ReadOnly => store::Scope::ReadOnly,
        Scope::ReadWrite => store::Scope::ReadWrite,
    }
}

pub fn user(user: store::User) -> model::User {
    model::User {
        username: user.username,
        realm: user.realm,
        attributes: user.attributes,
        algorithms: user
            .algorithms
            .iter()
            .map(|algorithm| algorithm.as_str().to_owned())
            .collect(),
        version: user.version,
        created_at: user.created_at,
        updated_at: user.updated_at,
    }
}

pub fn token(token: store::TokenInfo) -> model::TokenInfo {
    model::TokenInfo {
        id: token.id,
        label: token.label,
        scope: scope(token.scope),
        created_at: token.created_at,
        last_used: token.last_used,
    }
}

pub fn registration(binding: store::Registration) -> model::Registration {
    model::Registration {
        aor: binding.aor,
        contact: binding.contact,
        source: binding.source,
        transport: binding.transport,
        user_agent: binding.user_agent,
        expires_at: binding.expires_at,
        updated_at: binding.updated_at,
    }
}

pub fn ban(ban: store::Ban) -> model::Ban {
    model::Ban {
        id: ban.id,
        source: ban.source,
        reason: ban.reason,
        created_at: ban.created_at,
        expires_at: ban.expires_at,
        hits: ban.hits,
    }
}

pub fn disposition(disposition: store::Disposition) -> model::Disposition {
    match disposition {
        store::Disposition::Answered => model::Disposition::Answered,
        store::Disposition::Busy => model::Disposition::Busy,
        store::Disposition::NoAnswer => model::Disposition::NoAnswer,
        store::Disposition::Cancelled => model::Disposition::Cancelled,
        store::Disposition::Rejected => model::Disposition::Rejected,
        store::Disposition::Failed => model::Disposition::Failed,
    }
}

pub fn store_disposition(disposition: model::Disposition) -> store::Disposition {
    match disposition {
        model::Disposition::Answered => store::Disposition::Answered,
        model::Disposition::Busy => store::Disposition::Busy,
        model::Disposition::NoAnswer => store::Disposition::NoAnswer,
        model::Disposition::Cancelled => store::Disposition::Cancelled,
        model::Disposition::Rejected => store::Disposition::Rejected,
        model::Disposition::Failed => store::Disposition::Failed,
    }
}

pub fn cdr_filter(filter: model::CdrFilter) -> store::CdrFilter {
    store::CdrFilter {
        since: filter.since,
        until: filter.until,
        caller: filter.caller,
        callee: filter.callee,
        trunk: filter.trunk,
        disposition: filter.disposition.map(store_disposition),
    }
}

/// A CDR. Its JSON columns were written from the API's own types; one that does not
/// read back (written by hand) shows as empty rather than failing the whole page.
pub fn cdr(cdr: store::CdrRecord) -> model::Cdr {
    let security = serde_json::from_value(cdr.security).unwrap_or_else(|_| {
        crate::views::security_info(&sbc_core::b2bua::summary::SecuritySummary::new(
            sbc_core::net::Protocol::Udp,
            None,
        ))
    });
    model::Cdr {
        id: cdr.id,
        a_call_id: cdr.a_call_id,
        b_call_id: cdr.b_call_id,
        start_ms: cdr.start_ms,
        answer_ms: cdr.answer_ms,
        end_ms: cdr.end_ms,
        caller: cdr.caller,
        callee: cdr.callee,
        source_addr: cdr.source_addr,
        source_transport: cdr.source_transport,
        dest_addr: cdr.dest_addr,
        dest_transport: cdr.dest_transport,
        trunk_in: cdr.trunk_in,
        trunk_out: cdr.trunk_out,
        disposition: disposition(cdr.disposition),
        sip_status: cdr.sip_status,
        end_reason: cdr.end_reason,
        duration_ms: cdr.duration_ms,
        media_stats: serde_json::from_value(cdr.media_stats).unwrap_or_default(),
        security,
    }
}

pub fn audit(record: store::AuditRecord) -> model::AuditRecord {
    model::AuditRecord {
        seq: record.seq,
        time_ms: record.time_ms,
        actor: record.actor,
        source: record.source,
        action: record.action,
        object_kind: record.object_kind,
        object_name: record.object_name,
        before: record.before,
        after: record.after,
        prev_hash: record.prev_hash,
        hash: record.hash,
    }
}

pub fn verdict(verdict: store::AuditVerdict) -> model::AuditVerdict {
    model::AuditVerdict {
        records: verdict.records,
        ok: verdict.ok,
        first_bad: verdict.first_bad,
        reason: verdict.reason,
        head_hash: verdict.head_hash,
    }
}
