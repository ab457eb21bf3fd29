//! Call detail records: one per call attempt, written in batches, queried with filters
//! (newest first), exported oldest first as RFC 4180 CSV or JSON lines, and pruned by
//! age.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Row, params, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{StoreError, StoreResult};
use super::page::{Page, PageRequest, decode_cursor, encode_cursor};
use super::{Store, check_text, json_text};

const MAX_FIELD_CHARS: usize = 1024;
const MAX_JSON_BYTES: usize = 64 * 1024;
/// Rows deleted per statement when pruning, so one prune never holds the write lock long.
const PRUNE_BATCH: i64 = 10_000;

/// How a call attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Answered (2xx), then ended.
    Answered,
    /// 486/600 from the callee.
    Busy,
    /// Not answered in time (408/480 or our timer).
    NoAnswer,
    /// CANCELled by the caller before an answer.
    Cancelled,
    /// Refused by policy or the callee (other 4xx/5xx/6xx, our own 403/404 …).
    Rejected,
    /// Could not be placed (no route, transport error, timeout toward the peer).
    Failed,
}

impl Disposition {
    /// Every disposition.
    pub const ALL: [Disposition; 6] = [
        Disposition::Answered,
        Disposition::Busy,
        Disposition::NoAnswer,
        Disposition::Cancelled,
        Disposition::Rejected,
        Disposition::Failed,
    ];

    /// The stable name stored and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Busy => "busy",
            Disposition::NoAnswer => "no_answer",
            Disposition::Cancelled => "cancelled",
            Disposition::Rejected => "rejected",
            Disposition::Failed => "failed",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Disposition {
    type Err = StoreError;
    fn from_str(text: &str) -> StoreResult<Self> {
        Disposition::ALL
            .into_iter()
            .find(|disposition| disposition.as_str() == text)
            .ok_or_else(|| StoreError::invalid("disposition", format!("unknown {text:?}")))
    }
}

/// One call attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdrRecord {
    /// Unique id chosen by the caller (a UUID or the like); inserting it again is a no-op.
    pub id: String,
    /// Call-ID of the inbound leg.
    pub a_call_id: String,
    /// Call-ID of the outbound leg, if one was created.
    pub b_call_id: Option<String>,
    /// INVITE received (unix ms).
    pub start_ms: i64,
    /// 2xx sent to the caller (unix ms).
    pub answer_ms: Option<i64>,
    /// Call ended (unix ms).
    pub end_ms: i64,
    /// Caller (From URI or number).
    pub caller: String,
    /// Callee (Request-URI / To, or number).
    pub callee: String,
    /// Where the call came from (`ip:port`).
    pub source_addr: String,
    /// Its transport (`udp`, `tcp`, `tls` …).
    pub source_transport: String,
    /// Where the outbound leg went.
    pub dest_addr: Option<String>,
    /// Its transport.
    pub dest_transport: Option<String>,
    /// Trunk the call came in on.
    pub trunk_in: Option<String>,
    /// Trunk the call went out on.
    pub trunk_out: Option<String>,
    /// How it ended.
    pub disposition: Disposition,
    /// The final SIP status sent to the caller (200 for answered calls).
    pub sip_status: u16,
    /// A stable name: `bye_from_a`, `bye_from_b`, `media_timeout`, `cancel`, …
    pub end_reason: String,
    /// Talk time (answer to end) in ms; 0 if unanswered.
    pub duration_ms: i64,
    /// Per leg packets/bytes/lost/jitter.
    pub media_stats: Value,
    /// Signalling TLS and media SRTP per leg, identity verdict.
    pub security: Value,
}

/// Which CDRs to return; every present field must match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdrFilter {
    /// Started at or after (unix ms).
    pub since: Option<i64>,
    /// Started before (unix ms).
    pub until: Option<i64>,
    /// Caller contains this text.
    pub caller: Option<String>,
    /// Callee contains this text.
    pub callee: Option<String>,
    /// Came in or went out on this trunk.
    pub trunk: Option<String>,
    /// Ended like this.
    pub disposition: Option<Disposition>,
}

impl CdrFilter {
    /// `WHERE …` conditions (joined by AND, possibly none) and their parameters.
    fn conditions(&self) -> (Vec<&'static str>, Vec<SqlValue>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        if let Some(since) = self.since {
            conditions.push("start_ms >= ?");
            values.push(SqlValue::Integer(since));
        }
        if let Some(until) = self.until {
            conditions.push("start_ms < ?");
            values.push(SqlValue::Integer(until));
        }
        if let Some(caller) = &self.caller {
            conditions.push("instr(caller, ?) > 0");
            values.push(SqlValue::Text(caller.clone()));
        }
        if let Some(callee) = &self.callee {
            conditions.push("instr(callee, ?) > 0");
            values.push(SqlValue::Text(callee.clone()));
        }
        if let Some(trunk) = &self.trunk {
            conditions.push("(trunk_in = ? OR trunk_out = ?)");
            values.push(SqlValue::Text(trunk.clone()));
            values.push(SqlValue::Text(trunk.clone()));
        }
        if let Some(disposition) = self.disposition {
            conditions.push("disposition = ?");
            values.push(SqlValue::Text(disposition.as_str().to_owned()));
        }
        (conditions, values)
    }
}

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// RFC 4180: header line, CRLF line ends, fields quoted when needed.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

const COLUMNS: &str = "id, a_call_id, b_call_id, start_ms, answer_ms, end_ms, caller, callee, \
                       source_addr, source_transport, dest_addr, dest_transport, trunk_in, \
                       trunk_out, disposition, sip_status, end_reason, duration_ms, \
                       media_stats, security";

fn cdr_from_row(row: &Row<'_>) -> StoreResult<CdrRecord> {
    let disposition: String = row.get(14)?;
    let media_stats: String = row.get(18)?;
    let security: String = row.get(19)?;
    Ok(CdrRecord {
        id: row.get(0)?,
        a_call_id: row.get(1)?,
        b_call_id: row.get(2)?,
        start_ms: row.get(3)?,
        answer_ms: row.get(4)?,
        end_ms: row.get(5)?,
        caller: row.get(6)?,
        callee: row.get(7)?,
        source_addr: row.get(8)?,
        source_transport: row.get(9)?,
        dest_addr: row.get(10)?,
        dest_transport: row.get(11)?,
        trunk_in: row.get(12)?,
        trunk_out: row.get(13)?,
        disposition: disposition
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("disposition {disposition:?}")))?,
        sip_status: row.get(15)?,
        end_reason: row.get(16)?,
        duration_ms: row.get(17)?,
        media_stats: serde_json::from_str(&media_stats)?,
        security: serde_json::from_str(&security)?,
    })
}

fn check_cdr(cdr: &CdrRecord) -> StoreResult<(String, String)> {
    check_text("id", &cdr.id, 128)?;
    for (field, value) in [
        ("a_call_id", &cdr.a_call_id),
        ("caller", &cdr.caller),
        ("callee", &cdr.callee),
        ("source_addr", &cdr.source_addr),
        ("source_transport", &cdr.source_transport),
        ("end_reason", &cdr.end_reason),
    ] {
        if value.chars().count() > MAX_FIELD_CHARS {
            return Err(StoreError::invalid(field, "too long"));
        }
    }
    Ok((
        json_text("media_stats", &cdr.media_stats, MAX_JSON_BYTES)?,
        json_text("security", &cdr.security, MAX_JSON_BYTES)?,
    ))
}

/// The CSV header, in column order.
pub const CSV_HEADER: [&str; 20] = [
    "id",
    "a_call_id",
    "b_call_id",
    "start_ms",
    "answer_ms",
    "end_ms",
    "caller",
    "callee",
    "source_addr",
    "source_transport",
    "dest_addr",
    "dest_transport",
    "trunk_in",
    "trunk_out",
    "disposition",
    "sip_status",
    "end_reason",
    "duration_ms",
    "media_stats",
    "security",
];

/// Writes one RFC 4180 field: quoted (with `"` doubled) when it holds a comma, quote,
/// CR or LF, or starts or ends with a space.
pub fn write_csv_field(out: &mut impl Write, field: &str) -> std::io::Result<()> {
    let needs_quotes =
        field.contains([',', '"', '\r', '\n']) || field.starts_with(' ') || field.ends_with(' ');
    if needs_quotes {
        out.write_all(b"\"")?;
        out.write_all(field.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(field.as_bytes())
    }
}

fn write_csv_line(out: &mut impl Write, fields: &[String]) -> std::io::Result<()> {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.write_all(b",")?;
        }
        write_csv_field(out, field)?;
    }
    out.write_all(b"\r\n")
}

fn csv_fields(cdr: &CdrRecord) -> Vec<String> {
    let optional = |value: &Option<String>| value.clone().unwrap_or_default();
    vec![
        cdr.id.clone(),
        cdr.a_call_id.clone(),
        optional(&cdr.b_call_id),
        cdr.start_ms.to_string(),
        cdr.answer_ms.map(|ms| ms.to_string()).unwrap_or_default(),
        cdr.end_ms.to_string(),
        cdr.caller.clone(),
        cdr.callee.clone(),
        cdr.source_addr.clone(),
        cdr.source_transport.clone(),
        optional(&cdr.dest_addr),
        optional(&cdr.dest_transport),
        optional(&cdr.trunk_in),
        optional(&cdr.trunk_out),
        cdr.disposition.as_str().to_owned(),
        cdr.sip_status.to_string(),
        cdr.end_reason.clone(),
        cdr.duration_ms.to_string(),
        cdr.media_stats.to_string(),
        cdr.security.to_string(),
    ]
}

fn where_clause(conditions: &[&str]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}

impl Store {
    /// Inserts a batch in one transaction; ids already present are skipped (so a batch
    /// can be retried after a crash). Returns how many were new.
    pub fn insert_cdrs(&mut self, cdrs: &[CdrRecord]) -> StoreResult<u64> {
        let checked = cdrs
            .iter()
            .map(check_cdr)
            .collect::<StoreResult<Vec<_>>>()?;
        let tx = self.write()?;
        let mut inserted = 0u64;
        {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT OR IGNORE INTO cdrs ({COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
                 ?18, ?19, ?20)"
            ))?;
            for (cdr, (media_stats, security)) in cdrs.iter().zip(checked) {
                let changed = insert.execute(params![
                    cdr.id,
                    cdr.a_call_id,
                    cdr.b_call_id,
                    cdr.start_ms,
                    cdr.answer_ms,
                    cdr.end_ms,
                    cdr.caller,
                    cdr.callee,
                    cdr.source_addr,
                    cdr.source_transport,
                    cdr.dest_addr,
                    cdr.dest_transport,
                    cdr.trunk_in,
                    cdr.trunk_out,
                    cdr.disposition.as_str(),
                    cdr.sip_status,
                    cdr.end_reason,
                    cdr.duration_ms,
                    media_stats,
                    security,
                ])?;
                inserted += u64::try_from(changed).unwrap_or(0);
            }
        }
        tx.commit()?;
        Ok(inserted)
    }

    /// CDRs matching `filter`, newest first; the cursor encodes (start, id).
    pub fn query_cdrs(
        &self,
        filter: &CdrFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<CdrRecord>> {
        let limit = page.effective_limit();
        let (mut conditions, mut values) = filter.conditions();
        if let Some(cursor) = page.cursor() {
            let parts = decode_cursor(cursor, 2)?;
            let start: i64 = parts
                .first()
                .and_then(|start| start.parse().ok())
                .ok_or_else(|| StoreError::invalid("cursor", "not a CDR cursor"))?;
            conditions.push("(start_ms, id) < (?, ?)");
            values.push(SqlValue::Integer(start));
            values.push(SqlValue::Text(parts.get(1).cloned().unwrap_or_default()));
        }
        values.push(SqlValue::Integer(i64::from(limit) + 1));
        values.push(SqlValue::Integer(page.sql_offset()));
        let sql = format!(
            "SELECT {COLUMNS} FROM cdrs {} ORDER BY start_ms DESC, id DESC LIMIT ? OFFSET ?",
            where_clause(&conditions)
        );
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query(params_from_iter(values))?;
        let mut cdrs = Vec::new();
        while let Some(row) = rows.next()? {
            cdrs.push(cdr_from_row(row)?);
        }
        Ok(Page::from_rows(cdrs, limit, |cdr| {
            encode_cursor(&[&cdr.start_ms.to_string(), &cdr.id])
        }))
    }

    /// Streams every CDR matching `filter`, oldest first, to `out`, one row at a time.
    /// Returns how many were written.
    pub fn export_cdrs(
        &self,
        filter: &CdrFilter,
        format: ExportFormat,
        mut out: impl Write,
    ) -> StoreResult<u64> {
        let (conditions, values) = filter.conditions();
        let sql = format!(
            "SELECT {COLUMNS} FROM cdrs {} ORDER BY start_ms, id",
            where_clause(&conditions)
        );
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query(params_from_iter(values))?;
        if format == ExportFormat::Csv {
            let header: Vec<String> = CSV_HEADER.iter().map(|name| (*name).to_owned()).collect();
            write_csv_line(&mut out, &header)?;
        }
        let mut written = 0u64;
        while let Some(row) = rows.next()? {
            let cdr = cdr_from_row(row)?;
            match format {
                ExportFormat::Csv => write_csv_line(&mut out, &csv_fields(&cdr))?,
                ExportFormat::JsonLines => {
                    serde_json::to_writer(&mut out, &cdr)
                        .map_err(|error| StoreError::Io(error.into()))?;
                    out.write_all(b"\n")?;
                }
            }
            written += 1;
        }
        out.flush()?;
        Ok(written)
    }

    /// Deletes CDRs that started before `older_than` (unix ms), in batches; returns how
    /// many.
    pub fn prune_cdrs(&mut self, older_than: i64) -> StoreResult<u64> {
        let mut removed = 0u64;
        loop {
            let batch = self
                .conn()
                .prepare_cached(
                    "DELETE FROM cdrs WHERE rowid IN \
                     (SELECT rowid FROM cdrs WHERE start_ms < ?1 LIMIT ?2)",
                )?
                .execute(params![older_than, PRUNE_BATCH])?;
            removed += u64::try_from(batch).unwrap_or(0);
            if i64::try_from(batch).unwrap_or(i64::MAX) < PRUNE_BATCH {
                return Ok(removed);
            }
        }
    }

    /// How many CDRs are stored.
    pub fn count_cdrs(&self) -> StoreResult<u64> {
        let count: i64 = self
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM cdrs")?
            .query_row([], |row| row.get(0))?;
        Ok(count.unsigned_abs())
    }
}
