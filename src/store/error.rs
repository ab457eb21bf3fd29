//! The store's error type: one variant per fault, each with a stable name for metric
//! labels and for the admin API's error bodies.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed record does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// What was looked for (`trunk`, `user`, `token`, …).
        kind: &'static str,
        /// Its name or id as given.
        name: String,
    },
    /// A record with this key already exists.
    #[error("{kind} {name:?} already exists")]
    Conflict {
        /// What was being created.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// An optimistic update named a version that is no longer the current one.
    #[error("version mismatch: the current version is {current}")]
    VersionMismatch {
        /// The record's version now.
        current: i64,
    },
    /// The caller's input is not acceptable; `field` names the offending input.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field (or argument) at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The database file was written by a newer version of this program.
    #[error(
        "the database schema is version {found}, newer than the {supported} this program supports"
    )]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest schema version this code knows.
        supported: i64,
    },
    /// A stored value could not be read back (edited by hand, or a bug).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation (creating the database or the bootstrap token file) failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// OpenSSL failed to hash or to produce random bytes.
    #[error("crypto: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

impl StoreError {
    /// A stable, lower-case name for metric labels and API error codes.
    pub fn name(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "not_found",
            StoreError::Conflict { .. } => "conflict",
            StoreError::VersionMismatch { .. } => "version_mismatch",
            StoreError::Invalid { .. } => "invalid",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Sqlite(_) => "sqlite",
            StoreError::Io(_) => "io",
            StoreError::Crypto(_) => "crypto",
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        StoreError::NotFound {
            kind,
            name: name.into(),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Corrupt(format!("stored JSON: {error}"))
    }
}

/// Shorthand for results of store operations.
pub type StoreResult<T> = Result<T, StoreError>;
