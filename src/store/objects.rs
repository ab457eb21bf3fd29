//! Config objects created through the admin API: trunks, routes, ACLs and TLS material
//! references. The store keeps each as the JSON document the API accepted (validation is
//! the API's and the config layer's job), with a version for optimistic concurrency.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audit::{self, AuditEntry};
use super::error::{StoreError, StoreResult};
use super::page::{Page, PageRequest, decode_cursor, encode_cursor};
use super::{Change, Store, check_text, json_text};

/// The longest object name.
pub const MAX_NAME_CHARS: usize = 128;
/// The largest spec document.
pub const MAX_SPEC_BYTES: usize = 1024 * 1024;

/// What kind of config object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A SIP trunk (peer).
    Trunk,
    /// A routing rule.
    Route,
    /// An access control list.
    Acl,
    /// A reference to TLS certificate/key files.
    TlsMaterial,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 4] = [
        ObjectKind::Trunk,
        ObjectKind::Route,
        ObjectKind::Acl,
        ObjectKind::TlsMaterial,
    ];

    /// The stable name stored in the database and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Trunk => "trunk",
            ObjectKind::Route => "route",
            ObjectKind::Acl => "acl",
            ObjectKind::TlsMaterial => "tls_material",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObjectKind {
    type Err = StoreError;
    fn from_str(text: &str) -> StoreResult<Self> {
        ObjectKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| StoreError::invalid("kind", format!("unknown object kind {text:?}")))
    }
}

/// A stored config object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredObject {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its name, unique per kind.
    pub name: String,
    /// The JSON document as accepted by the API.
    pub spec: Value,
    /// 1 on creation, +1 per update.
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

impl StoredObject {
    fn audit_state(&self) -> Value {
        serde_json::json!({ "spec": self.spec, "version": self.version })
    }
}

const COLUMNS: &str = "kind, name, spec, version, created_at, updated_at";

fn object_from_row(row: &Row<'_>) -> StoreResult<StoredObject> {
    let kind: String = row.get(0)?;
    let spec: String = row.get(2)?;
    Ok(StoredObject {
        kind: kind
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("object kind {kind:?}")))?,
        name: row.get(1)?,
        spec: serde_json::from_str(&spec)?,
        version: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

fn fetch(conn: &Connection, kind: ObjectKind, name: &str) -> StoreResult<Option<StoredObject>> {
    let sql = format!("SELECT {COLUMNS} FROM config_objects WHERE kind = ?1 AND name = ?2");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params![kind.as_str(), name])?;
    rows.next()?.map(object_from_row).transpose()
}

fn check_spec(spec: &Value) -> StoreResult<String> {
    if !spec.is_object() {
        return Err(StoreError::invalid("spec", "must be a JSON object"));
    }
    json_text("spec", spec, MAX_SPEC_BYTES)
}

impl Store {
    /// Objects of `kind`, ordered by name; the cursor encodes the last name.
    pub fn list_objects(
        &self,
        kind: ObjectKind,
        page: &PageRequest,
    ) -> StoreResult<Page<StoredObject>> {
        let limit = page.effective_limit();
        let after = match page.cursor() {
            Some(cursor) => decode_cursor(cursor, 1)?.concat(),
            None => String::new(),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM config_objects WHERE kind = ?1 AND name > ?2 \
             ORDER BY name LIMIT ?3 OFFSET ?4"
        );
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query(params![
            kind.as_str(),
            after,
            i64::from(limit) + 1,
            page.sql_offset()
        ])?;
        let mut objects = Vec::new();
        while let Some(row) = rows.next()? {
            objects.push(object_from_row(row)?);
        }
        Ok(Page::from_rows(objects, limit, |object| {
            encode_cursor(&[&object.name])
        }))
    }

    /// One object, if it exists.
    pub fn get_object(&self, kind: ObjectKind, name: &str) -> StoreResult<Option<StoredObject>> {
        fetch(self.conn(), kind, name)
    }

    /// Creates an object at version 1; [`StoreError::Conflict`] if the name is taken.
    pub fn create_object(
        &mut self,
        kind: ObjectKind,
        name: &str,
        spec: Value,
        change: &Change,
    ) -> StoreResult<StoredObject> {
        check_text("name", name, MAX_NAME_CHARS)?;
        let spec_text = check_spec(&spec)?;
        let now = self.now_ms();
        let tx = self.write()?;
        if fetch(&tx, kind, name)?.is_some() {
            return Err(StoreError::Conflict {
                kind: kind.as_str(),
                name: name.to_owned(),
            });
        }
        tx.prepare_cached(
            "INSERT INTO config_objects (kind, name, spec, version, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 1, ?4, ?4)",
        )?
        .execute(params![kind.as_str(), name, spec_text, now])?;
        let object = StoredObject {
            kind,
            name: name.to_owned(),
            spec,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let entry = AuditEntry::new(change, "create", kind.as_str(), name)
            .with_states(None, Some(object.audit_state()));
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(object)
    }

    /// Replaces an object's spec and bumps its version. With `if_version`, fails with
    /// [`StoreError::VersionMismatch`] unless that is the current version.
    pub fn update_object(
        &mut self,
        kind: ObjectKind,
        name: &str,
        spec: Value,
        if_version: Option<i64>,
        change: &Change,
    ) -> StoreResult<StoredObject> {
        let spec_text = check_spec(&spec)?;
        let now = self.now_ms();
        let tx = self.write()?;
        let before =
            fetch(&tx, kind, name)?.ok_or_else(|| StoreError::not_found(kind.as_str(), name))?;
        if let Some(expected) = if_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                current: before.version,
            });
        }
        let version = before.version.saturating_add(1);
        tx.prepare_cached(
            "UPDATE config_objects SET spec = ?3, version = ?4, updated_at = ?5 \
             WHERE kind = ?1 AND name = ?2",
        )?
        .execute(params![kind.as_str(), name, spec_text, version, now])?;
        let after = StoredObject {
            spec,
            version,
            updated_at: now,
            ..before.clone()
        };
        let entry = AuditEntry::new(change, "update", kind.as_str(), name)
            .with_states(Some(before.audit_state()), Some(after.audit_state()));
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(after)
    }

    /// Deletes an object and returns what was deleted.
    pub fn delete_object(
        &mut self,
        kind: ObjectKind,
        name: &str,
        change: &Change,
    ) -> StoreResult<StoredObject> {
        let now = self.now_ms();
        let tx = self.write()?;
        let before =
            fetch(&tx, kind, name)?.ok_or_else(|| StoreError::not_found(kind.as_str(), name))?;
        tx.prepare_cached("DELETE FROM config_objects WHERE kind = ?1 AND name = ?2")?
            .execute(params![kind.as_str(), name])?;
        let entry = AuditEntry::new(change, "delete", kind.as_str(), name)
            .with_states(Some(before.audit_state()), None);
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(before)
    }

    /// How many objects of `kind` exist.
    pub fn count_objects(&self, kind: ObjectKind) -> StoreResult<u64> {
        let count: i64 = self
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM config_objects WHERE kind = ?1")?
            .query_row([kind.as_str()], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        Ok(count.unsigned_abs())
    }
}
