//! The embedded store: one SQLite file (through `rusqlite` with the bundled library)
//! holding what must survive a restart: config objects created through the admin API,
//! SIP digest users (HA1 values only), admin tokens (SHA-256 only), registrations, bans,
//! CDRs and the hash-chained audit log.
//!
//! The API is synchronous and takes `&mut self` for writes; the appliance owns one
//! [`Store`] behind a mutex (or a writer thread) and calls it from `spawn_blocking`.
//! Every write is one SQLite transaction, committed with `synchronous=FULL` in WAL mode
//! before the call returns: a change the caller acknowledges is on disk, and a change to
//! a config object, user or token is never persisted without its audit record (same
//! transaction) nor the other way round.
//!
//! * [`objects`]: trunks, routes, ACLs, TLS material references (generic JSON specs).
//! * [`users`]: digest users and their HA1 values per algorithm.
//! * [`tokens`]: admin API bearer tokens and the first-start bootstrap token.
//! * [`registrations`]: registrations and bans.
//! * [`stir`]: STIR/SHAKEN signing credential and trust anchors set through the API.
//! * [`cdr`]: call detail records, queries, CSV / JSON-lines export, retention.
//! * [`audit`]: the audit log, its hash chain (byte layout documented there) and its
//!   verification.
//! * [`schema`]: the migrations.

pub mod audit;
pub mod cdr;
pub mod credentials;
mod error;
pub mod objects;
mod page;
pub mod registrations;
pub mod schema;
pub mod stir;
pub mod tokens;
pub mod users;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use audit::{AuditEntry, AuditRecord, AuditVerdict};
pub use cdr::{CdrFilter, CdrRecord, Disposition, ExportFormat};
pub use error::{StoreError, StoreResult};
pub use objects::{ObjectKind, StoredObject};
pub use page::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Page, PageRequest, PageStart};
pub use registrations::{Ban, NewBan, Registration, RegistrationWrite};
pub use tokens::{Scope, TokenInfo};
pub use users::{DigestAlgorithm, User};

/// How long a writer waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection (the CDR filters alone make up to 64 shapes).
const STATEMENT_CACHE: usize = 128;

/// Who made a change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The token's label or id, or `system` for the appliance itself.
    pub actor: String,
    /// The remote address of the request, when there is one.
    pub source: Option<String>,
}

impl Change {
    /// A change by `actor` from `source`.
    pub fn new(actor: impl Into<String>, source: Option<String>) -> Self {
        Change {
            actor: actor.into(),
            source,
        }
    }

    /// A change the appliance makes on its own (bootstrap, automatic expiry).
    pub fn system() -> Self {
        Change::new("system", None)
    }
}

/// The wall clock in unix milliseconds; replaceable so tests are deterministic.
pub type Clock = Box<dyn Fn() -> i64 + Send>;

fn system_clock() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The embedded store: one SQLite connection.
pub struct Store {
    conn: Connection,
    clock: Clock,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.conn.path())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating it with mode 0600 if absent) the database at `path`, sets WAL
    /// journaling, `synchronous=FULL`, foreign keys and a busy timeout, and applies any
    /// pending migrations. A file with a newer schema is refused.
    pub fn open(path: &Path) -> StoreResult<Store> {
        create_private_file(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        let journal: String =
            conn.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "could not switch the journal to WAL (got {journal})"
            )));
        }
        Store::configure(conn, schema::MIGRATIONS)
    }

    /// A second, read-only connection to the database at `path` (which a [`Store::open`]
    /// has created and migrated), for long reads such as CDR exports: with WAL it reads a
    /// consistent snapshot without blocking the writer. Write methods on it fail with
    /// [`StoreError::Sqlite`].
    pub fn open_reader(path: &Path) -> StoreResult<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let supported = schema::latest_version();
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        if found < supported {
            return Err(StoreError::Corrupt(format!(
                "schema version {found} is not migrated yet (open it for writing first)"
            )));
        }
        Ok(Store {
            conn,
            clock: Box::new(system_clock),
        })
    }

    /// A store in memory, for tests and for running without a data directory.
    pub fn open_in_memory() -> StoreResult<Store> {
        Store::configure(Connection::open_in_memory()?, schema::MIGRATIONS)
    }

    fn configure(mut conn: Connection, migrations: &[&str]) -> StoreResult<Store> {
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn, migrations)?;
        Ok(Store {
            conn,
            clock: Box::new(system_clock),
        })
    }

    /// Replaces the wall clock (tests).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> StoreResult<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    /// The journal mode in force (`wal` for a file, `memory` in memory).
    pub fn journal_mode(&self) -> StoreResult<String> {
        Ok(self
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))?)
    }

    /// Writes a consistent copy of the whole database to `target` (which must not exist)
    /// while the store stays usable: `VACUUM INTO`, the online backup for WAL databases.
    pub fn backup_to(&self, target: &Path) -> StoreResult<()> {
        let target = target
            .to_str()
            .ok_or_else(|| StoreError::invalid("path", "not valid UTF-8"))?;
        self.conn.execute("VACUUM INTO ?1", [target])?;
        Ok(())
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// Starts a write transaction that takes the write lock at once, so it never fails
    /// half-way on a lock upgrade.
    pub(crate) fn write(&mut self) -> StoreResult<Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    #[cfg(test)]
    pub(crate) fn open_with_migrations(path: &Path, migrations: &[&str]) -> StoreResult<Store> {
        create_private_file(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "wal")?;
        Store::configure(conn, migrations)
    }
}

/// Creates `path` with mode 0600 if it does not exist yet, so that SQLite (which gives
/// its `-wal` and `-shm` files the database file's mode) never creates a world-readable
/// database.
fn create_private_file(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Checks a free-text key (object name, username, label): 1..=`max` characters, no
/// control characters.
pub(crate) fn check_text(field: &'static str, value: &str, max: usize) -> StoreResult<()> {
    if value.is_empty() {
        return Err(StoreError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(StoreError::invalid(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(StoreError::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Serialises a JSON document for storage, bounded in size.
pub(crate) fn json_text(
    field: &'static str,
    value: &serde_json::Value,
    max_bytes: usize,
) -> StoreResult<String> {
    let text = serde_json::to_string(value)
        .map_err(|error| StoreError::invalid(field, error.to_string()))?;
    if text.len() > max_bytes {
        return Err(StoreError::invalid(
            field,
            format!("larger than {max_bytes} bytes"),
        ));
    }
    Ok(text)
}
