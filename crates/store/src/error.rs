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
    /// The SQLite scan that reads the measure projection ([`crate::Store::patient_record_batches`]).
    #[error("database: {0}")]
    Scan(#[from] rusqlite::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored content is corrupt: {0}")]
    Corrupt(String),
}
