//! Registrations (SIP REGISTER bindings) and bans (blocked source addresses or
//! networks). Both are written by the signalling side, expire on their own and are
//! listed through the admin API; an operator's lift of a ban is audited.

use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::audit::{self, AuditEntry};
use super::error::{StoreError, StoreResult};
use super::page::{MAX_PAGE_LIMIT, Page, PageRequest, decode_int_cursor};
use super::{Change, Store, check_text};

const MAX_URI_CHARS: usize = 1024;
const MAX_PATH_ENTRIES: usize = 16;

/// One binding of an address-of-record to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// The address of record (`sip:alice@example.com`).
    pub aor: String,
    /// The Contact URI.
    pub contact: String,
    /// Where the REGISTER came from (`ip:port`).
    pub source: String,
    /// `udp`, `tcp`, `tls`, `ws`, `wss`.
    pub transport: String,
    /// The connection / flow token it arrived on (RFC 5626), if any.
    pub flow: Option<String>,
    /// `Path` header values, in order (RFC 3327).
    pub path: Vec<String>,
    /// The `User-Agent`.
    pub user_agent: Option<String>,
    /// Call-ID of the REGISTER.
    pub call_id: String,
    /// CSeq number of the REGISTER.
    pub cseq: u32,
    /// `+sip.instance` (RFC 5626).
    pub instance_id: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
    /// Unix ms at which the binding lapses.
    pub expires_at: i64,
    /// Unix ms of the last refresh (set by the store).
    pub updated_at: i64,
}

const REGISTRATION_COLUMNS: &str = "aor, contact, source, transport, flow, path, user_agent, \
                                    call_id, cseq, instance_id, reg_id, expires_at, updated_at";

fn registration_from_row(row: &Row<'_>) -> StoreResult<Registration> {
    let path: String = row.get(5)?;
    Ok(Registration {
        aor: row.get(0)?,
        contact: row.get(1)?,
        source: row.get(2)?,
        transport: row.get(3)?,
        flow: row.get(4)?,
        path: serde_json::from_str(&path)?,
        user_agent: row.get(6)?,
        call_id: row.get(7)?,
        cseq: row.get(8)?,
        instance_id: row.get(9)?,
        reg_id: row.get(10)?,
        expires_at: row.get(11)?,
        updated_at: row.get(12)?,
    })
}

/// A ban to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBan {
    /// An IP address or a network in CIDR notation.
    pub source: String,
    /// Why (`scanner`, `auth_failures`, or an operator's note).
    pub reason: String,
    /// Unix ms at which it lapses; `None` is permanent.
    pub expires_at: Option<i64>,
}

/// A stored ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ban {
    /// Row id.
    pub id: i64,
    /// Normalised address or network (`192.0.2.0/24`, `2001:db8::1`).
    pub source: String,
    /// Why.
    pub reason: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, `None` for permanent.
    pub expires_at: Option<i64>,
    /// Packets or requests dropped because of it (as reported by the caller).
    pub hits: u64,
}

impl Ban {
    fn audit_state(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.source, "reason": self.reason, "expires_at": self.expires_at,
        })
    }
}

const BAN_COLUMNS: &str = "id, source, reason, created_at, expires_at, hits";

fn ban_from_row(row: &Row<'_>) -> StoreResult<Ban> {
    let hits: i64 = row.get(5)?;
    Ok(Ban {
        id: row.get(0)?,
        source: row.get(1)?,
        reason: row.get(2)?,
        created_at: row.get(3)?,
        expires_at: row.get(4)?,
        hits: hits.unsigned_abs(),
    })
}

fn fetch_ban(conn: &Connection, source: &str) -> StoreResult<Option<Ban>> {
    let sql = format!("SELECT {BAN_COLUMNS} FROM bans WHERE source = ?1");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query([source])?;
    rows.next()?.map(ban_from_row).transpose()
}

/// Normalises an address (`192.0.2.7`) or network (`192.0.2.7/24` → `192.0.2.0/24`);
/// a full-length prefix is written as the bare address.
pub fn normalise_ban_source(source: &str) -> StoreResult<String> {
    let bad = || StoreError::invalid("source", "must be an IP address or CIDR network");
    let (address, prefix) = match source.trim().split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (source.trim(), None),
    };
    let address: IpAddr = address.parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match prefix {
        Some(text) => text.parse().map_err(|_| bad())?,
        None => max,
    };
    if prefix > max {
        return Err(bad());
    }
    if prefix == max {
        return Ok(address.to_string());
    }
    let network = match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            IpAddr::from(std::net::Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    };
    Ok(format!("{network}/{prefix}"))
}

fn count(conn: &Connection, sql: &str) -> StoreResult<u64> {
    let count: i64 = conn
        .prepare_cached(sql)?
        .query_row([], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    Ok(count.unsigned_abs())
}

/// One change of the registrar, as [`Store::apply_registration_writes`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationWrite {
    Upsert(Registration),
    Remove { aor: String, contact: String },
}

fn upsert(conn: &Connection, registration: &Registration, now: i64) -> StoreResult<()> {
    check_text("aor", &registration.aor, MAX_URI_CHARS)?;
    check_text("contact", &registration.contact, MAX_URI_CHARS)?;
    if registration.path.len() > MAX_PATH_ENTRIES {
        return Err(StoreError::invalid("path", "too many entries"));
    }
    let path = serde_json::to_string(&registration.path)
        .map_err(|error| StoreError::invalid("path", error.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO registrations (aor, contact, source, transport, flow, path, \
         user_agent, call_id, cseq, instance_id, reg_id, expires_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
         ON CONFLICT (aor, contact) DO UPDATE SET source = excluded.source, \
         transport = excluded.transport, flow = excluded.flow, path = excluded.path, \
         user_agent = excluded.user_agent, call_id = excluded.call_id, \
         cseq = excluded.cseq, instance_id = excluded.instance_id, \
         reg_id = excluded.reg_id, expires_at = excluded.expires_at, \
         updated_at = excluded.updated_at",
    )?
    .execute(params![
        registration.aor,
        registration.contact,
        registration.source,
        registration.transport,
        registration.flow,
        path,
        registration.user_agent,
        registration.call_id,
        registration.cseq,
        registration.instance_id,
        registration.reg_id,
        registration.expires_at,
        now,
    ])?;
    Ok(())
}

fn remove(conn: &Connection, aor: &str, contact: &str) -> StoreResult<bool> {
    let removed = conn
        .prepare_cached("DELETE FROM registrations WHERE aor = ?1 AND contact = ?2")?
        .execute(params![aor, contact])?;
    Ok(removed > 0)
}

impl Store {
    /// Adds or refreshes the binding of `registration.aor` to `registration.contact`.
    pub fn upsert_registration(
        &mut self,
        registration: &Registration,
    ) -> StoreResult<Registration> {
        let now = self.now_ms();
        upsert(self.conn(), registration, now)?;
        Ok(Registration {
            updated_at: now,
            ..registration.clone()
        })
    }

    /// Removes one binding; `false` if there was none.
    pub fn remove_registration(&mut self, aor: &str, contact: &str) -> StoreResult<bool> {
        remove(self.conn(), aor, contact)
    }

    /// Applies the registrar's changes in order, in one transaction (one commit for a
    /// batch instead of one per change). A change that cannot be stored (a value over a
    /// limit) is skipped; the others are written. Returns the errors of skipped ones.
    pub fn apply_registration_writes(
        &mut self,
        writes: &[RegistrationWrite],
    ) -> StoreResult<Vec<StoreError>> {
        let now = self.now_ms();
        let tx = self.write()?;
        let mut skipped = Vec::new();
        for write in writes {
            let result = match write {
                RegistrationWrite::Upsert(registration) => upsert(&tx, registration, now),
                RegistrationWrite::Remove { aor, contact } => remove(&tx, aor, contact).map(drop),
            };
            if let Err(error) = result {
                skipped.push(error);
            }
        }
        tx.commit()?;
        Ok(skipped)
    }

    /// Replaces every stored binding with `all`, in one transaction (the registrar's
    /// resync after its change queue overflowed). Returns the errors of skipped ones.
    pub fn replace_registrations(&mut self, all: &[Registration]) -> StoreResult<Vec<StoreError>> {
        let now = self.now_ms();
        let tx = self.write()?;
        tx.execute("DELETE FROM registrations", [])?;
        let mut skipped = Vec::new();
        for registration in all {
            if let Err(error) = upsert(&tx, registration, now) {
                skipped.push(error);
            }
        }
        tx.commit()?;
        Ok(skipped)
    }

    /// The bindings of one AOR (at most [`MAX_PAGE_LIMIT`]), expired ones included
    /// until [`Store::expire_registrations`] runs.
    pub fn registrations_for(&self, aor: &str) -> StoreResult<Vec<Registration>> {
        let sql = format!(
            "SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE aor = ?1 \
             ORDER BY id LIMIT ?2"
        );
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query(params![aor, MAX_PAGE_LIMIT])?;
        let mut bindings = Vec::new();
        while let Some(row) = rows.next()? {
            bindings.push(registration_from_row(row)?);
        }
        Ok(bindings)
    }

    /// All bindings, oldest first; the cursor is a row id.
    pub fn list_registrations(&self, page: &PageRequest) -> StoreResult<Page<Registration>> {
        let limit = page.effective_limit();
        let after = match page.cursor() {
            Some(cursor) => decode_int_cursor(cursor)?,
            None => i64::MIN,
        };
        let sql = format!(
            "SELECT {REGISTRATION_COLUMNS}, id FROM registrations WHERE id > ?1 \
             ORDER BY id LIMIT ?2 OFFSET ?3"
        );
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query(params![after, i64::from(limit) + 1, page.sql_offset()])?;
        let mut bindings = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(13)?;
            bindings.push((id, registration_from_row(row)?));
        }
        let page = Page::from_rows(bindings, limit, |(id, _)| id.to_string());
        Ok(Page {
            items: page.items.into_iter().map(|(_, binding)| binding).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Deletes bindings that lapsed at or before `now`; returns how many.
    pub fn expire_registrations(&mut self, now: i64) -> StoreResult<u64> {
        let removed = self
            .conn()
            .prepare_cached("DELETE FROM registrations WHERE expires_at <= ?1")?
            .execute([now])?;
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }

    /// How many bindings are stored.
    pub fn count_registrations(&self) -> StoreResult<u64> {
        count(self.conn(), "SELECT COUNT(*) FROM registrations")
    }

    /// How many bans are stored (lapsed ones included until [`Store::expire_bans`] runs).
    pub fn count_bans(&self) -> StoreResult<u64> {
        count(self.conn(), "SELECT COUNT(*) FROM bans")
    }

    /// Bans a source, or renews an existing ban of it (new reason and expiry, hits kept).
    /// An operator's ban passes `Some(change)` and is audited; the automatic ones of the
    /// security layer pass `None`.
    pub fn add_ban(&mut self, ban: &NewBan, change: Option<&Change>) -> StoreResult<Ban> {
        let source = normalise_ban_source(&ban.source)?;
        check_text("reason", &ban.reason, 256)?;
        let now = self.now_ms();
        let tx = self.write()?;
        let before = fetch_ban(&tx, &source)?;
        tx.prepare_cached(
            "INSERT INTO bans (source, reason, created_at, expires_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (source) DO UPDATE SET reason = excluded.reason, \
             expires_at = excluded.expires_at",
        )?
        .execute(params![source, ban.reason, now, ban.expires_at])?;
        let after = fetch_ban(&tx, &source)?
            .ok_or_else(|| StoreError::Corrupt("ban vanished while being added".into()))?;
        if let Some(change) = change {
            let entry = AuditEntry::new(change, "ban", "ban", &source).with_states(
                before.as_ref().map(Ban::audit_state),
                Some(after.audit_state()),
            );
            audit::append(&tx, now, &entry)?;
        }
        tx.commit()?;
        Ok(after)
    }

    /// The ban of exactly this source (normalised), if any.
    pub fn get_ban(&self, source: &str) -> StoreResult<Option<Ban>> {
        fetch_ban(self.conn(), &normalise_ban_source(source)?)
    }

    /// Adds `hits` to a ban's counter (the caller batches them).
    pub fn record_ban_hits(&mut self, source: &str, hits: u64) -> StoreResult<()> {
        let hits = i64::try_from(hits).unwrap_or(i64::MAX);
        self.conn()
            .prepare_cached("UPDATE bans SET hits = hits + ?2 WHERE source = ?1")?
            .execute(params![source, hits])?;
        Ok(())
    }

    /// Bans by id; the cursor is a row id.
    pub fn list_bans(&self, page: &PageRequest) -> StoreResult<Page<Ban>> {
        let limit = page.effective_limit();
        let after = match page.cursor() {
            Some(cursor) => decode_int_cursor(cursor)?,
            None => i64::MIN,
        };
        let sql =
            format!("SELECT {BAN_COLUMNS} FROM bans WHERE id > ?1 ORDER BY id LIMIT ?2 OFFSET ?3");
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query(params![after, i64::from(limit) + 1, page.sql_offset()])?;
        let mut bans = Vec::new();
        while let Some(row) = rows.next()? {
            bans.push(ban_from_row(row)?);
        }
        Ok(Page::from_rows(bans, limit, |ban| ban.id.to_string()))
    }

    /// Lifts a ban; audited when an operator does it (`Some(change)`).
    pub fn lift_ban(&mut self, source: &str, change: Option<&Change>) -> StoreResult<Ban> {
        let source = normalise_ban_source(source)?;
        let now = self.now_ms();
        let tx = self.write()?;
        let before =
            fetch_ban(&tx, &source)?.ok_or_else(|| StoreError::not_found("ban", &source))?;
        tx.prepare_cached("DELETE FROM bans WHERE id = ?1")?
            .execute([before.id])?;
        if let Some(change) = change {
            let entry = AuditEntry::new(change, "lift_ban", "ban", &source)
                .with_states(Some(before.audit_state()), None);
            audit::append(&tx, now, &entry)?;
        }
        tx.commit()?;
        Ok(before)
    }

    /// The ban with row id `id`, if any.
    pub fn get_ban_by_id(&self, id: i64) -> StoreResult<Option<Ban>> {
        let sql = format!("SELECT {BAN_COLUMNS} FROM bans WHERE id = ?1");
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query([id])?;
        rows.next()?.map(ban_from_row).transpose()
    }

    /// Lifts the ban with row id `id` (see [`Store::lift_ban`]).
    pub fn lift_ban_by_id(&mut self, id: i64, change: Option<&Change>) -> StoreResult<Ban> {
        let ban = self
            .get_ban_by_id(id)?
            .ok_or_else(|| StoreError::not_found("ban", id.to_string()))?;
        self.lift_ban(&ban.source, change)
    }

    /// Deletes bans that lapsed at or before `now`; returns how many.
    pub fn expire_bans(&mut self, now: i64) -> StoreResult<u64> {
        let removed = self
            .conn()
            .prepare_cached("DELETE FROM bans WHERE expires_at IS NOT NULL AND expires_at <= ?1")?
            .execute([now])?;
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }
}
