//! The audit log: one record per administrative change, chained by SHA-256 so that
//! editing, inserting or deleting a past record is detectable.
//!
//! # Hash layout (version 1)
//!
//! Records are numbered `seq` = 1, 2, 3, … without gaps. For each record,
//!
//! ```text
//! hash = SHA-256( prev_hash            32 bytes: the previous record's hash;
//!                                      32 zero bytes for seq 1 (genesis)
//!               || seq                 8 bytes, big-endian two's complement
//!               || time_ms             8 bytes, big-endian two's complement (unix ms)
//!               || field(actor)
//!               || field(source)
//!               || field(action)
//!               || field(object_kind)
//!               || field(object_name)
//!               || field(before)       the JSON text exactly as stored in the column
//!               || field(after)        likewise )
//!
//! field(NULL) = 0x00
//! field(text) = 0x01 || length of the UTF-8 bytes, 4 bytes big-endian || the UTF-8 bytes
//! ```
//!
//! `prev_hash` and `hash` are stored as 32-byte blobs in table `audit_log`. To verify
//! offline, read the rows in `seq` order (`sqlite3 sbc.db "SELECT ... ORDER BY seq"`) and
//! recompute; `docs/store.md` has a short Python script. A chain can still be cut at
//! its end (deleting the newest records leaves a valid shorter chain): record the head
//! hash that [`Store::verify_audit`] reports somewhere else to detect that.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::Value;

use super::error::{StoreError, StoreResult};
use super::page::{Page, PageRequest, decode_int_cursor, hex};
use super::{Change, Store, check_text, json_text};

/// The largest before/after document kept in one record.
const MAX_DOCUMENT_BYTES: usize = 2 * 1024 * 1024;
const GENESIS: [u8; 32] = [0; 32];

/// What to record for an action that is not a config-object change (terminate a call,
/// drain, TLS reload, lift a ban …).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditEntry {
    /// Who did it (token label or id, `system`).
    pub actor: String,
    /// The remote address of the request, if any.
    pub source: Option<String>,
    /// A stable lower-case action name: `create`, `update`, `delete`, `terminate_call`,
    /// `drain`, `tls_reload`, `lift_ban`, `set_password`, `revoke` …
    pub action: String,
    /// What kind of thing it acted on (`trunk`, `user`, `call`, `ban` …).
    pub object_kind: Option<String>,
    /// Which one.
    pub object_name: Option<String>,
    /// The state before (never a secret).
    pub before: Option<Value>,
    /// The state after (never a secret).
    pub after: Option<Value>,
}

impl AuditEntry {
    /// An entry for `action` on `kind`/`name` by `change`'s actor.
    pub fn new(change: &Change, action: &str, kind: &str, name: &str) -> Self {
        AuditEntry {
            actor: change.actor.clone(),
            source: change.source.clone(),
            action: action.to_owned(),
            object_kind: Some(kind.to_owned()),
            object_name: Some(name.to_owned()),
            before: None,
            after: None,
        }
    }

    /// With the before/after documents.
    pub fn with_states(mut self, before: Option<Value>, after: Option<Value>) -> Self {
        self.before = before;
        self.after = after;
        self
    }
}

/// One stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When (unix ms).
    pub time_ms: i64,
    /// Who.
    pub actor: String,
    /// From where.
    pub source: Option<String>,
    /// What.
    pub action: String,
    /// On what kind of thing.
    pub object_kind: Option<String>,
    /// On which one.
    pub object_name: Option<String>,
    /// State before.
    pub before: Option<Value>,
    /// State after.
    pub after: Option<Value>,
    /// The previous record's hash (hex).
    pub prev_hash: String,
    /// This record's hash (hex).
    pub hash: String,
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerdict {
    /// Records read.
    pub records: u64,
    /// Every record chains to the one before and hashes to its stored hash.
    pub ok: bool,
    /// The first record that does not (its seq), if any.
    pub first_bad: Option<u64>,
    /// Why it is bad.
    pub reason: Option<String>,
    /// The newest record's hash (hex) when the chain is intact: keep it elsewhere to
    /// detect later truncation.
    pub head_hash: Option<String>,
}

/// The stored columns that the hash covers.
struct HashedFields<'a> {
    seq: i64,
    time_ms: i64,
    texts: [Option<&'a str>; 7],
}

fn chain_hash(prev_hash: &[u8], fields: &HashedFields<'_>) -> StoreResult<[u8; 32]> {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(prev_hash);
    hasher.update(&fields.seq.to_be_bytes());
    hasher.update(&fields.time_ms.to_be_bytes());
    for text in fields.texts {
        match text {
            None => hasher.update(&[0]),
            Some(text) => {
                let len = u32::try_from(text.len())
                    .map_err(|_| StoreError::invalid("audit", "field longer than 4 GiB"))?;
                hasher.update(&[1]);
                hasher.update(&len.to_be_bytes());
                hasher.update(text.as_bytes());
            }
        }
    }
    Ok(hasher.finish())
}

/// Appends `entry` at `time_ms` inside the caller's transaction.
pub(crate) fn append(
    conn: &Connection,
    time_ms: i64,
    entry: &AuditEntry,
) -> StoreResult<AuditRecord> {
    check_text("actor", &entry.actor, 256)?;
    check_action(&entry.action)?;
    let before = entry
        .before
        .as_ref()
        .map(|value| json_text("before", value, MAX_DOCUMENT_BYTES))
        .transpose()?;
    let after = entry
        .after
        .as_ref()
        .map(|value| json_text("after", value, MAX_DOCUMENT_BYTES))
        .transpose()?;
    let head: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS.to_vec()));
    let seq = prev_seq
        .checked_add(1)
        .ok_or_else(|| StoreError::Corrupt("audit sequence exhausted".into()))?;
    let fields = HashedFields {
        seq,
        time_ms,
        texts: [
            Some(entry.actor.as_str()),
            entry.source.as_deref(),
            Some(entry.action.as_str()),
            entry.object_kind.as_deref(),
            entry.object_name.as_deref(),
            before.as_deref(),
            after.as_deref(),
        ],
    };
    let hash = chain_hash(&prev_hash, &fields)?;
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, time_ms, actor, source, action, object_kind, \
         object_name, before, after, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        seq,
        time_ms,
        entry.actor,
        entry.source,
        entry.action,
        entry.object_kind,
        entry.object_name,
        before,
        after,
        prev_hash,
        hash.as_slice(),
    ])?;
    Ok(AuditRecord {
        seq: seq.unsigned_abs(),
        time_ms,
        actor: entry.actor.clone(),
        source: entry.source.clone(),
        action: entry.action.clone(),
        object_kind: entry.object_kind.clone(),
        object_name: entry.object_name.clone(),
        before: entry.before.clone(),
        after: entry.after.clone(),
        prev_hash: hex(&prev_hash),
        hash: hex(&hash),
    })
}

fn check_action(action: &str) -> StoreResult<()> {
    let well_formed = !action.is_empty()
        && action.len() <= 64
        && action
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if well_formed {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "action",
            "must be 1..=64 characters of a-z, 0-9, '_' or '.'",
        ))
    }
}

fn parse_json(text: Option<String>) -> StoreResult<Option<Value>> {
    text.map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(StoreError::from)
}

fn record_from_row(row: &Row<'_>) -> StoreResult<AuditRecord> {
    let seq: i64 = row.get(0)?;
    let prev_hash: Vec<u8> = row.get(9)?;
    let hash: Vec<u8> = row.get(10)?;
    Ok(AuditRecord {
        seq: seq.unsigned_abs(),
        time_ms: row.get(1)?,
        actor: row.get(2)?,
        source: row.get(3)?,
        action: row.get(4)?,
        object_kind: row.get(5)?,
        object_name: row.get(6)?,
        before: parse_json(row.get(7)?)?,
        after: parse_json(row.get(8)?)?,
        prev_hash: hex(&prev_hash),
        hash: hex(&hash),
    })
}

const COLUMNS: &str = "seq, time_ms, actor, source, action, object_kind, object_name, \
                       before, after, prev_hash, hash";

impl Store {
    /// Records an action that is not a config-object change (terminate call, drain,
    /// TLS reload …), in its own transaction.
    pub fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<AuditRecord> {
        let now = self.now_ms();
        let tx = self.write()?;
        let record = append(&tx, now, entry)?;
        tx.commit()?;
        Ok(record)
    }

    /// Audit records, newest first; the cursor is a `seq`.
    pub fn list_audit(&self, page: &PageRequest) -> StoreResult<Page<AuditRecord>> {
        let limit = page.effective_limit();
        let before_seq = match page.cursor() {
            Some(cursor) => decode_int_cursor(cursor)?,
            None => i64::MAX,
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3"
        );
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows =
            statement.query(params![before_seq, i64::from(limit) + 1, page.sql_offset()])?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            records.push(record_from_row(row)?);
        }
        Ok(Page::from_rows(records, limit, |record| {
            record.seq.to_string()
        }))
    }

    /// Walks the whole chain, oldest first, and reports the first record that is out of
    /// sequence, does not chain to its predecessor, or does not hash to its stored hash.
    pub fn verify_audit(&self) -> StoreResult<AuditVerdict> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq");
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query([])?;
        let mut records = 0u64;
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS.to_vec();
        let bad = |records, seq: i64, reason: &str| AuditVerdict {
            records,
            ok: false,
            first_bad: Some(seq.unsigned_abs()),
            reason: Some(reason.to_owned()),
            head_hash: None,
        };
        while let Some(row) = rows.next()? {
            records += 1;
            let seq: i64 = row.get(0)?;
            if seq != expected_seq {
                let reason = format!("expected seq {expected_seq}, found {seq}");
                return Ok(bad(records, seq, &reason));
            }
            let Ok(stored) = read_hashed_row(row) else {
                return Ok(bad(records, seq, "a column has the wrong type"));
            };
            if stored.prev_hash != prev_hash {
                return Ok(bad(
                    records,
                    seq,
                    "prev_hash is not the previous record's hash",
                ));
            }
            let fields = HashedFields {
                seq,
                time_ms: stored.time_ms,
                texts: [
                    Some(stored.actor.as_str()),
                    stored.source.as_deref(),
                    Some(stored.action.as_str()),
                    stored.object_kind.as_deref(),
                    stored.object_name.as_deref(),
                    stored.before.as_deref(),
                    stored.after.as_deref(),
                ],
            };
            if chain_hash(&prev_hash, &fields)?.as_slice() != stored.hash.as_slice() {
                return Ok(bad(records, seq, "the record does not match its hash"));
            }
            prev_hash = stored.hash;
            expected_seq = seq.saturating_add(1);
        }
        Ok(AuditVerdict {
            records,
            ok: true,
            first_bad: None,
            reason: None,
            head_hash: (records > 0).then(|| hex(&prev_hash)),
        })
    }
}

struct StoredRow {
    time_ms: i64,
    actor: String,
    source: Option<String>,
    action: String,
    object_kind: Option<String>,
    object_name: Option<String>,
    before: Option<String>,
    after: Option<String>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn read_hashed_row(row: &Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
        time_ms: row.get(1)?,
        actor: row.get(2)?,
        source: row.get(3)?,
        action: row.get(4)?,
        object_kind: row.get(5)?,
        object_name: row.get(6)?,
        before: row.get(7)?,
        after: row.get(8)?,
        prev_hash: row.get(9)?,
        hash: row.get(10)?,
    })
}
