//! The store's error type. The HTTP layer maps it to status codes in one place.

use coproduce_fhir::OperationOutcome;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{resource_type}/{id} is not known")]
    NotFound { resource_type: String, id: String },
    #[error("{resource_type}/{id} was deleted (version {version})")]
    Gone {
        resource_type: String,
        id: String,
        version: i64,
    },
    #[error("version conflict: expected version {expected}, the current version is {actual}")]
    VersionConflict { expected: i64, actual: i64 },
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("invalid request: {0}")]
    Invalid(OperationOutcome),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An SQLite file's statements on rusqlite: the writer's group commits (`group.rs`), the
    /// hot reads (`lite.rs`) and the scan of the measure projection
    /// ([`crate::Store::patient_record_batches`]).
    #[error("database: {0}")]
    Scan(#[from] rusqlite::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored content is corrupt: {0}")]
    Corrupt(String),
    /// The commit this write shared with others (SQLite's group commit) failed: nothing of
    /// it was kept.
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// Whether the database cannot take the request now but may later: a full disk, a
    /// read-only database, a server shutting down or out of connections, no connection at
    /// all, a lock held by another writer past the wait. Such a failure is the site's,
    /// passing, and nothing was written (a 503); any other database failure is a fault (a
    /// 500).
    pub fn is_unavailable(&self) -> bool {
        if let StoreError::Shared(e) = self {
            return e.is_unavailable();
        }
        if let StoreError::Scan(rusqlite::Error::SqliteFailure(e, _)) = self {
            return sqlite_unavailable(i64::from(e.extended_code));
        }
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                let sqlite = code.parse::<i64>().ok().is_some_and(sqlite_unavailable);
                // PostgreSQL's SQLSTATE: class 53 insufficient resources (disk full, out of
                // memory or connections), 25006 a read-only transaction, 57P01-57P03 the
                // server shutting down or not taking connections, class 08 the connection,
                // 40001 and 40P01 a transaction that lost a race (serialization, deadlock),
                // 55P03 a lock not available.
                let postgres = code.starts_with("53")
                    || code == "25006"
                    || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
                    || code.starts_with("08")
                    || matches!(code.as_ref(), "40001" | "40P01" | "55P03");
                sqlite || postgres
            }
            _ => false,
        }
    }
}

/// SQLite's primary result codes (extended ones keep them in the low byte) for a database
/// that cannot serve now: 5 busy and 6 locked (another writer held on past the busy
/// time-out), 8 read-only, 13 full, 10 an I/O error (a full disk can show as one).
fn sqlite_unavailable(code: i64) -> bool {
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13)
}
