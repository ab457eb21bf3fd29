//! SIP digest users. Credentials are kept only as HA1 values, one per algorithm
//! (RFC 7616 §3.4.2, RFC 8760): `HA1 = H(username ":" realm ":" password)` in lower-case
//! hex. The password itself is never stored, logged or put in the audit log, and neither
//! are HA1 values (which are password equivalents for their realm).
//!
//! SHA-512-256 is SHA-512/256 (FIPS 180-4, its own initial values, not a truncated
//! SHA-512), taken from OpenSSL by name (`SHA512-256`, OpenSSL ≥ 1.1.1).

use std::fmt;
use std::str::FromStr;

use openssl::hash::{Hasher, MessageDigest};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audit::{self, AuditEntry};
use super::error::{StoreError, StoreResult};
use super::page::{Page, PageRequest, decode_cursor, encode_cursor, hex};
use super::{Change, Store, check_text, json_text};

const MAX_USERNAME_CHARS: usize = 128;
const MAX_REALM_CHARS: usize = 256;
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;

/// A digest algorithm with its RFC 7616 name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DigestAlgorithm {
    /// `MD5` (RFC 2617 / 7616; still what most phones speak).
    #[serde(rename = "MD5")]
    Md5,
    /// `SHA-256`.
    #[serde(rename = "SHA-256")]
    Sha256,
    /// `SHA-512-256`.
    #[serde(rename = "SHA-512-256")]
    Sha512_256,
}

impl DigestAlgorithm {
    /// Every algorithm, in the order HA1 values are computed and listed.
    pub const ALL: [DigestAlgorithm; 3] = [
        DigestAlgorithm::Md5,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha512_256,
    ];

    /// The name used in `WWW-Authenticate` and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha512_256 => "SHA-512-256",
        }
    }

    /// Length of an HA1 value in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Md5 => 32,
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha512_256 => 64,
        }
    }

    fn message_digest(self) -> StoreResult<MessageDigest> {
        match self {
            DigestAlgorithm::Md5 => Ok(MessageDigest::md5()),
            DigestAlgorithm::Sha256 => Ok(MessageDigest::sha256()),
            DigestAlgorithm::Sha512_256 => MessageDigest::from_name("SHA512-256")
                .ok_or_else(|| StoreError::Corrupt("OpenSSL lacks SHA512-256".into())),
        }
    }

    /// `H(parts joined by ':')` in lower-case hex.
    pub fn hash_hex(self, parts: &[&str]) -> StoreResult<String> {
        let mut hasher = Hasher::new(self.message_digest()?)?;
        for (index, part) in parts.iter().enumerate() {
            if index > 0 {
                hasher.update(b":")?;
            }
            hasher.update(part.as_bytes())?;
        }
        Ok(hex(&hasher.finish()?))
    }

    /// `HA1 = H(username:realm:password)`.
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> StoreResult<String> {
        self.hash_hex(&[username, realm, password])
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DigestAlgorithm {
    type Err = StoreError;
    fn from_str(text: &str) -> StoreResult<Self> {
        DigestAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| StoreError::invalid("algorithm", format!("unknown {text:?}")))
    }
}

/// A user as listed: no credentials, only which algorithms have one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Digest username.
    pub username: String,
    /// Digest realm.
    pub realm: String,
    /// Opaque to the store (display name, allowed numbers, call limit …).
    pub attributes: Value,
    /// Algorithms an HA1 is stored for.
    pub algorithms: Vec<DigestAlgorithm>,
    /// 1 on creation, +1 per change.
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

impl User {
    /// What the audit log keeps: everything listed, which holds no secret.
    fn audit_state(&self) -> Value {
        serde_json::json!({
            "username": self.username,
            "realm": self.realm,
            "attributes": self.attributes,
            "algorithms": self.algorithms,
            "version": self.version,
        })
    }
}

fn audit_name(username: &str, realm: &str) -> String {
    format!("{username}@{realm}")
}

fn check_identity(username: &str, realm: &str) -> StoreResult<()> {
    check_text("username", username, MAX_USERNAME_CHARS)?;
    if username.contains(':') {
        return Err(StoreError::invalid(
            "username",
            "must not contain ':' (it would make H(username:realm:password) ambiguous)",
        ));
    }
    check_text("realm", realm, MAX_REALM_CHARS)
}

fn check_password(password: &str) -> StoreResult<()> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(StoreError::invalid(
            "password",
            format!("must be 1..={MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_attributes(attributes: &Value) -> StoreResult<String> {
    if !attributes.is_object() {
        return Err(StoreError::invalid("attributes", "must be a JSON object"));
    }
    json_text("attributes", attributes, MAX_ATTRIBUTES_BYTES)
}

fn ha1s_of_password(
    username: &str,
    realm: &str,
    password: &str,
) -> StoreResult<Vec<(DigestAlgorithm, String)>> {
    check_password(password)?;
    DigestAlgorithm::ALL
        .into_iter()
        .map(|algorithm| Ok((algorithm, algorithm.ha1(username, realm, password)?)))
        .collect()
}

fn check_ha1s(ha1s: &[(DigestAlgorithm, String)]) -> StoreResult<Vec<(DigestAlgorithm, String)>> {
    if ha1s.is_empty() {
        return Err(StoreError::invalid(
            "ha1",
            "at least one HA1 value is needed",
        ));
    }
    let mut checked: Vec<(DigestAlgorithm, String)> = Vec::with_capacity(ha1s.len());
    for (algorithm, value) in ha1s {
        let well_formed = value.len() == algorithm.hex_len()
            && value.bytes().all(|byte| byte.is_ascii_hexdigit());
        if !well_formed {
            return Err(StoreError::invalid(
                "ha1",
                format!("{algorithm} needs {} hex digits", algorithm.hex_len()),
            ));
        }
        if checked.iter().any(|(seen, _)| seen == algorithm) {
            return Err(StoreError::invalid(
                "ha1",
                format!("{algorithm} given twice"),
            ));
        }
        checked.push((*algorithm, value.to_ascii_lowercase()));
    }
    Ok(checked)
}

const COLUMNS: &str = "username, realm, attributes, version, created_at, updated_at";

fn algorithms_of(
    conn: &Connection,
    username: &str,
    realm: &str,
) -> StoreResult<Vec<DigestAlgorithm>> {
    let mut statement = conn.prepare_cached(
        "SELECT algorithm FROM user_credentials WHERE username = ?1 AND realm = ?2",
    )?;
    let mut rows = statement.query(params![username, realm])?;
    let mut algorithms = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        algorithms.push(
            name.parse()
                .map_err(|_| StoreError::Corrupt(format!("digest algorithm {name:?}")))?,
        );
    }
    algorithms.sort_by_key(|algorithm| {
        DigestAlgorithm::ALL
            .iter()
            .position(|known| known == algorithm)
    });
    Ok(algorithms)
}

fn user_from_row(conn: &Connection, row: &Row<'_>) -> StoreResult<User> {
    let username: String = row.get(0)?;
    let realm: String = row.get(1)?;
    let attributes: String = row.get(2)?;
    Ok(User {
        algorithms: algorithms_of(conn, &username, &realm)?,
        attributes: serde_json::from_str(&attributes)?,
        version: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        username,
        realm,
    })
}

fn fetch(conn: &Connection, username: &str, realm: &str) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username = ?1 AND realm = ?2");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params![username, realm])?;
    rows.next()?.map(|row| user_from_row(conn, row)).transpose()
}

fn replace_credentials(
    conn: &Connection,
    username: &str,
    realm: &str,
    ha1s: &[(DigestAlgorithm, String)],
) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM user_credentials WHERE username = ?1 AND realm = ?2")?
        .execute(params![username, realm])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO user_credentials (username, realm, algorithm, ha1) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (algorithm, ha1) in ha1s {
        insert.execute(params![username, realm, algorithm.as_str(), ha1])?;
    }
    Ok(())
}

impl Store {
    /// Creates a user from a password: stores its MD5, SHA-256 and SHA-512-256 HA1
    /// values, never the password.
    pub fn create_user(
        &mut self,
        username: &str,
        realm: &str,
        password: &str,
        attributes: Value,
        change: &Change,
    ) -> StoreResult<User> {
        check_identity(username, realm)?;
        let ha1s = ha1s_of_password(username, realm, password)?;
        self.insert_user(username, realm, &ha1s, attributes, change)
    }

    /// Creates a user from precomputed HA1 values (imports from another system).
    pub fn create_user_with_ha1(
        &mut self,
        username: &str,
        realm: &str,
        ha1s: &[(DigestAlgorithm, String)],
        attributes: Value,
        change: &Change,
    ) -> StoreResult<User> {
        check_identity(username, realm)?;
        let ha1s = check_ha1s(ha1s)?;
        self.insert_user(username, realm, &ha1s, attributes, change)
    }

    fn insert_user(
        &mut self,
        username: &str,
        realm: &str,
        ha1s: &[(DigestAlgorithm, String)],
        attributes: Value,
        change: &Change,
    ) -> StoreResult<User> {
        let attributes_text = check_attributes(&attributes)?;
        let now = self.now_ms();
        let tx = self.write()?;
        if fetch(&tx, username, realm)?.is_some() {
            return Err(StoreError::Conflict {
                kind: "user",
                name: audit_name(username, realm),
            });
        }
        tx.prepare_cached(
            "INSERT INTO users (username, realm, attributes, version, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 1, ?4, ?4)",
        )?
        .execute(params![username, realm, attributes_text, now])?;
        replace_credentials(&tx, username, realm, ha1s)?;
        let user = fetch(&tx, username, realm)?
            .ok_or_else(|| StoreError::Corrupt("user vanished while being created".into()))?;
        let entry = AuditEntry::new(change, "create", "user", &audit_name(username, realm))
            .with_states(None, Some(user.audit_state()));
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(user)
    }

    /// Replaces a user's credentials with the HA1 values of a new password.
    pub fn set_password(
        &mut self,
        username: &str,
        realm: &str,
        password: &str,
        change: &Change,
    ) -> StoreResult<User> {
        let ha1s = ha1s_of_password(username, realm, password)?;
        self.modify_user(
            username,
            realm,
            None,
            None,
            Some(&ha1s),
            "set_password",
            change,
        )
    }

    /// Replaces a user's attributes; with `if_version`, only if that is current.
    pub fn update_user(
        &mut self,
        username: &str,
        realm: &str,
        attributes: Value,
        if_version: Option<i64>,
        change: &Change,
    ) -> StoreResult<User> {
        let text = check_attributes(&attributes)?;
        self.modify_user(
            username,
            realm,
            Some(&text),
            if_version,
            None,
            "update",
            change,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn modify_user(
        &mut self,
        username: &str,
        realm: &str,
        attributes: Option<&str>,
        if_version: Option<i64>,
        ha1s: Option<&[(DigestAlgorithm, String)]>,
        action: &str,
        change: &Change,
    ) -> StoreResult<User> {
        let now = self.now_ms();
        let tx = self.write()?;
        let before = fetch(&tx, username, realm)?
            .ok_or_else(|| StoreError::not_found("user", audit_name(username, realm)))?;
        if let Some(expected) = if_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                current: before.version,
            });
        }
        tx.prepare_cached(
            "UPDATE users SET attributes = COALESCE(?3, attributes), version = version + 1, \
             updated_at = ?4 WHERE username = ?1 AND realm = ?2",
        )?
        .execute(params![username, realm, attributes, now])?;
        if let Some(ha1s) = ha1s {
            replace_credentials(&tx, username, realm, ha1s)?;
        }
        let after = fetch(&tx, username, realm)?
            .ok_or_else(|| StoreError::Corrupt("user vanished while being updated".into()))?;
        let entry = AuditEntry::new(change, action, "user", &audit_name(username, realm))
            .with_states(Some(before.audit_state()), Some(after.audit_state()));
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(after)
    }

    /// A user without credentials.
    pub fn get_user(&self, username: &str, realm: &str) -> StoreResult<Option<User>> {
        fetch(self.conn(), username, realm)
    }

    /// The stored HA1 (lower-case hex) for digest authentication.
    pub fn ha1(
        &self,
        username: &str,
        realm: &str,
        algorithm: DigestAlgorithm,
    ) -> StoreResult<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT ha1 FROM user_credentials \
                 WHERE username = ?1 AND realm = ?2 AND algorithm = ?3",
            )?
            .query_row(params![username, realm, algorithm.as_str()], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// Users ordered by (username, realm).
    pub fn list_users(&self, page: &PageRequest) -> StoreResult<Page<User>> {
        let limit = page.effective_limit();
        let (after_user, after_realm) = match page.cursor() {
            Some(cursor) => {
                let mut parts = decode_cursor(cursor, 2)?.into_iter();
                (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                )
            }
            None => (String::new(), String::new()),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE (username, realm) > (?1, ?2) \
             ORDER BY username, realm LIMIT ?3 OFFSET ?4"
        );
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&sql)?;
        let mut rows = statement.query(params![
            after_user,
            after_realm,
            i64::from(limit) + 1,
            page.sql_offset()
        ])?;
        let mut users = Vec::new();
        while let Some(row) = rows.next()? {
            users.push(user_from_row(conn, row)?);
        }
        Ok(Page::from_rows(users, limit, |user| {
            encode_cursor(&[&user.username, &user.realm])
        }))
    }

    /// Deletes a user and its credentials; returns the deleted user.
    pub fn delete_user(
        &mut self,
        username: &str,
        realm: &str,
        change: &Change,
    ) -> StoreResult<User> {
        let now = self.now_ms();
        let tx = self.write()?;
        let before = fetch(&tx, username, realm)?
            .ok_or_else(|| StoreError::not_found("user", audit_name(username, realm)))?;
        tx.prepare_cached("DELETE FROM users WHERE username = ?1 AND realm = ?2")?
            .execute(params![username, realm])?;
        let entry = AuditEntry::new(change, "delete", "user", &audit_name(username, realm))
            .with_states(Some(before.audit_state()), None);
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(before)
    }
}
