//! Admin API bearer tokens. A token is 256 random bits printed as `sbc_` followed by
//! 43 base64url characters; only its SHA-256 is stored, so a copy of the database does
//! not hand out admin access.
//!
//! [`Store::authenticate`] looks the presented token up by its SHA-256 through a unique
//! index rather than comparing secrets: the comparison that might leak timing happens on
//! the hash, and learning a prefix of SHA-256(token) does not help to find a token that
//! hashes to it, so no constant-time comparison is needed.
//!
//! Revoking deletes the token (its creation and revocation stay in the audit log). When
//! no token is left, the next start writes a new bootstrap token
//! ([`Store::bootstrap_token`]): whoever can read the data directory is an admin anyway.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::audit::{self, AuditEntry};
use super::error::{StoreError, StoreResult};
use super::page::{Page, PageRequest, decode_int_cursor};
use super::{Change, Store, check_text};

/// Printed before every token so that secret scanners and people recognise it.
pub const TOKEN_PREFIX: &str = "sbc_";
/// `last_used` is written at most this often per token, so reads stay cheap.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;
const MAX_LABEL_CHARS: usize = 128;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// GET only.
    ReadOnly,
    /// Everything.
    ReadWrite,
}

impl Scope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ReadOnly => "read_only",
            Scope::ReadWrite => "read_write",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = StoreError;
    fn from_str(text: &str) -> StoreResult<Self> {
        match text {
            "read_only" => Ok(Scope::ReadOnly),
            "read_write" => Ok(Scope::ReadWrite),
            other => Err(StoreError::invalid("scope", format!("unknown {other:?}"))),
        }
    }
}

/// A token as listed (never the secret nor its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Row id; used to revoke.
    pub id: i64,
    /// Free text naming who or what holds it.
    pub label: String,
    /// What it may do.
    pub scope: Scope,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, to the minute.
    pub last_used: Option<i64>,
}

impl TokenInfo {
    fn audit_state(&self) -> serde_json::Value {
        serde_json::json!({ "id": self.id, "label": self.label, "scope": self.scope })
    }
}

const COLUMNS: &str = "id, label, scope, created_at, last_used_at";

fn token_from_row(row: &Row<'_>) -> StoreResult<TokenInfo> {
    let scope: String = row.get(2)?;
    Ok(TokenInfo {
        id: row.get(0)?,
        label: row.get(1)?,
        scope: scope
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("token scope {scope:?}")))?,
        created_at: row.get(3)?,
        last_used: row.get(4)?,
    })
}

/// A fresh token: `sbc_` + base64url(32 random bytes), no padding.
fn generate_token() -> StoreResult<String> {
    let mut secret = [0u8; 32];
    openssl::rand::rand_bytes(&mut secret)?;
    let encoded: String = openssl::base64::encode_block(&secret)
        .chars()
        .filter(|c| *c != '=')
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    Ok(format!("{TOKEN_PREFIX}{encoded}"))
}

/// SHA-256 of the token as presented.
pub fn token_hash(token: &str) -> [u8; 32] {
    openssl::sha::sha256(token.as_bytes())
}

impl Store {
    /// Creates a token; returns its plaintext (show it once, it cannot be recovered)
    /// and what is stored about it.
    pub fn create_token(
        &mut self,
        label: &str,
        scope: Scope,
        change: &Change,
    ) -> StoreResult<(String, TokenInfo)> {
        check_text("label", label, MAX_LABEL_CHARS)?;
        let token = generate_token()?;
        let now = self.now_ms();
        let tx = self.write()?;
        tx.prepare_cached(
            "INSERT INTO admin_tokens (label, scope, token_sha256, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            label,
            scope.as_str(),
            token_hash(&token).as_slice(),
            now
        ])?;
        let info = TokenInfo {
            id: tx.last_insert_rowid(),
            label: label.to_owned(),
            scope,
            created_at: now,
            last_used: None,
        };
        let entry = AuditEntry::new(change, "create", "token", &info.id.to_string())
            .with_states(None, Some(info.audit_state()));
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok((token, info))
    }

    /// The token's holder, if `token` is a live token. Notes the use (to the minute).
    pub fn authenticate(&self, token: &str) -> StoreResult<Option<TokenInfo>> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let sql = format!("SELECT {COLUMNS} FROM admin_tokens WHERE token_sha256 = ?1");
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query([token_hash(token).as_slice()])?;
        let Some(mut info) = rows.next()?.map(token_from_row).transpose()? else {
            return Ok(None);
        };
        let now = self.now_ms();
        let stale = info
            .last_used
            .is_none_or(|last| now.saturating_sub(last) >= LAST_USED_GRANULARITY_MS);
        if stale {
            self.conn()
                .prepare_cached("UPDATE admin_tokens SET last_used_at = ?2 WHERE id = ?1")?
                .execute(params![info.id, now])?;
            info.last_used = Some(now);
        }
        Ok(Some(info))
    }

    /// Tokens by id.
    pub fn list_tokens(&self, page: &PageRequest) -> StoreResult<Page<TokenInfo>> {
        let limit = page.effective_limit();
        let after = match page.cursor() {
            Some(cursor) => decode_int_cursor(cursor)?,
            None => i64::MIN,
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM admin_tokens WHERE id > ?1 ORDER BY id LIMIT ?2 OFFSET ?3"
        );
        let mut statement = self.conn().prepare_cached(&sql)?;
        let mut rows = statement.query(params![after, i64::from(limit) + 1, page.sql_offset()])?;
        let mut tokens = Vec::new();
        while let Some(row) = rows.next()? {
            tokens.push(token_from_row(row)?);
        }
        Ok(Page::from_rows(tokens, limit, |token| token.id.to_string()))
    }

    /// Revokes (deletes) a token; returns what it was.
    pub fn revoke_token(&mut self, id: i64, change: &Change) -> StoreResult<TokenInfo> {
        let now = self.now_ms();
        let tx = self.write()?;
        let sql = format!("SELECT {COLUMNS} FROM admin_tokens WHERE id = ?1");
        let info = {
            let mut statement = tx.prepare_cached(&sql)?;
            let mut rows = statement.query([id])?;
            rows.next()?
                .map(token_from_row)
                .transpose()?
                .ok_or_else(|| StoreError::not_found("token", id.to_string()))?
        };
        tx.prepare_cached("DELETE FROM admin_tokens WHERE id = ?1")?
            .execute([id])?;
        let entry = AuditEntry::new(change, "revoke", "token", &id.to_string())
            .with_states(Some(info.audit_state()), None);
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(info)
    }

    /// How many tokens exist.
    pub fn count_tokens(&self) -> StoreResult<u64> {
        let count: i64 = self
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM admin_tokens")?
            .query_row([], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        Ok(count.unsigned_abs())
    }

    /// On a store without tokens: creates a read-write token labelled `bootstrap`, writes
    /// it (and a newline) to `path`, created with mode 0600 and never over an existing
    /// file, and returns `path` so the caller can log where it is. With tokens present it
    /// does nothing and returns `None`.
    ///
    /// The file is written before the token is committed: a crash in between leaves a
    /// file holding an unusable token (and the next start fails on the existing file,
    /// naming it), never a usable token nobody can read.
    pub fn bootstrap_token(&mut self, path: &Path) -> StoreResult<Option<PathBuf>> {
        use std::os::unix::fs::OpenOptionsExt;
        if self.count_tokens()? > 0 {
            return Ok(None);
        }
        let token = generate_token()?;
        let now = self.now_ms();
        let change = Change::system();
        let tx = self.write()?;
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::invalid(
                    "bootstrap_token_path",
                    format!(
                        "{} already exists but the store has no token; remove the file \
                         to have a new bootstrap token written",
                        path.display()
                    ),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        file.write_all(format!("{token}\n").as_bytes())?;
        file.sync_all()?;
        tx.prepare_cached(
            "INSERT INTO admin_tokens (label, scope, token_sha256, created_at) \
             VALUES ('bootstrap', ?1, ?2, ?3)",
        )?
        .execute(params![
            Scope::ReadWrite.as_str(),
            token_hash(&token).as_slice(),
            now
        ])?;
        let info = TokenInfo {
            id: tx.last_insert_rowid(),
            label: "bootstrap".to_owned(),
            scope: Scope::ReadWrite,
            created_at: now,
            last_used: None,
        };
        let entry = AuditEntry::new(&change, "create", "token", &info.id.to_string())
            .with_states(None, Some(info.audit_state()));
        audit::append(&tx, now, &entry)?;
        tx.commit()?;
        Ok(Some(path.to_path_buf()))
    }
}
