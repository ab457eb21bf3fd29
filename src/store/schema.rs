//! The schema, as an ordered list of migrations. Migration `i` (0-based) brings the
//! database from `PRAGMA user_version = i` to `i + 1`; each runs in its own transaction
//! together with the `user_version` bump, so a crash leaves the file at a whole version.
//!
//! Never edit a migration that has shipped: append a new one.

use rusqlite::{Connection, TransactionBehavior};

use super::error::{StoreError, StoreResult};

/// The migrations this program knows, oldest first.
pub const MIGRATIONS: &[&str] = &[V1_INITIAL, V2_STIR_MATERIAL];

/// The schema version this program writes.
pub fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings `conn` up to `migrations.len()`; returns the version found before.
///
/// A database newer than `migrations` is refused ([`StoreError::SchemaTooNew`]): old code
/// must not write into a schema it does not understand.
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> StoreResult<i64> {
    let supported = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    let start = usize::try_from(found)
        .map_err(|_| StoreError::Corrupt(format!("negative schema version {found}")))?;
    for (index, sql) in migrations.iter().enumerate().skip(start) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(found)
}

/// Version 1: every table of the operations issue.
const V1_INITIAL: &str = r#"
CREATE TABLE config_objects (
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

CREATE TABLE users (
    username    TEXT    NOT NULL,
    realm       TEXT    NOT NULL,
    attributes  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (username, realm)
) WITHOUT ROWID;

CREATE TABLE user_credentials (
    username    TEXT    NOT NULL,
    realm       TEXT    NOT NULL,
    algorithm   TEXT    NOT NULL,
    ha1         TEXT    NOT NULL,
    PRIMARY KEY (username, realm, algorithm),
    FOREIGN KEY (username, realm) REFERENCES users (username, realm) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE admin_tokens (
    id           INTEGER PRIMARY KEY,
    label        TEXT    NOT NULL,
    scope        TEXT    NOT NULL,
    token_sha256 BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE registrations (
    id          INTEGER PRIMARY KEY,
    aor         TEXT    NOT NULL,
    contact     TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    transport   TEXT    NOT NULL,
    flow        TEXT,
    path        TEXT    NOT NULL,
    user_agent  TEXT,
    call_id     TEXT    NOT NULL,
    cseq        INTEGER NOT NULL,
    instance_id TEXT,
    reg_id      INTEGER,
    expires_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (aor, contact)
);
CREATE INDEX registrations_expires_at ON registrations (expires_at);

CREATE TABLE bans (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL UNIQUE,
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    hits        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bans_expires_at ON bans (expires_at);

CREATE TABLE cdrs (
    id               TEXT    NOT NULL PRIMARY KEY,
    a_call_id        TEXT    NOT NULL,
    b_call_id        TEXT,
    start_ms         INTEGER NOT NULL,
    answer_ms        INTEGER,
    end_ms           INTEGER NOT NULL,
    caller           TEXT    NOT NULL,
    callee           TEXT    NOT NULL,
    source_addr      TEXT    NOT NULL,
    source_transport TEXT    NOT NULL,
    dest_addr        TEXT,
    dest_transport   TEXT,
    trunk_in         TEXT,
    trunk_out        TEXT,
    disposition      TEXT    NOT NULL,
    sip_status       INTEGER NOT NULL,
    end_reason       TEXT    NOT NULL,
    duration_ms      INTEGER NOT NULL,
    media_stats      TEXT    NOT NULL,
    security         TEXT    NOT NULL
);
CREATE INDEX cdrs_start ON cdrs (start_ms, id);
CREATE INDEX cdrs_trunk_in ON cdrs (trunk_in, start_ms);
CREATE INDEX cdrs_trunk_out ON cdrs (trunk_out, start_ms);

CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    time_ms      INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    source       TEXT,
    action       TEXT    NOT NULL,
    object_kind  TEXT,
    object_name  TEXT,
    before       TEXT,
    after        TEXT,
    prev_hash    BLOB    NOT NULL,
    hash         BLOB    NOT NULL
);
"#;

/// Version 2: STIR/SHAKEN material set through the admin API (`store::stir`): the
/// signing credential (one row) and extra STI-CA trust anchors.
const V2_STIR_MATERIAL: &str = r#"
CREATE TABLE stir_credential (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    private_key TEXT    NOT NULL,
    chain       TEXT    NOT NULL,
    x5u         TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE stir_trust_anchors (
    fingerprint TEXT    NOT NULL PRIMARY KEY,
    certificate TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
"#;
