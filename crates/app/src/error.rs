//! The application's error type: what went wrong, in terms a caller can act on.

use coproduce_fhir::OperationOutcome;
use coproduce_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input could not be read as FHIR, or broke a rule: nothing was written.
    #[error("{0}")]
    Invalid(OperationOutcome),
    #[error("{0} is not known")]
    NotFound(String),
    #[error("{0} was deleted")]
    Gone(String),
    /// A precondition (`If-Match`, `If-None-Exist`) did not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    Conflict(String),
    /// Not signed in, or the credentials do not count (expired, revoked).
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but the policy does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Something else on the server failed.
    #[error("{0}")]
    Internal(String),
    /// The database failed: a server error, never the caller's fault.
    #[error("storage failed: {0}")]
    Storage(StoreError),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { resource_type, id } => {
                AppError::NotFound(format!("{resource_type}/{id}"))
            }
            StoreError::Gone {
                resource_type, id, ..
            } => AppError::Gone(format!("{resource_type}/{id}")),
            StoreError::VersionConflict { expected, actual } => {
                AppError::PreconditionFailed(format!(
                    "version conflict: If-Match named version {expected}, the current version is {actual}"
                ))
            }
            StoreError::PreconditionFailed(m) => AppError::Conflict(m),
            StoreError::Invalid(o) => AppError::Invalid(o),
            other => AppError::Storage(other),
        }
    }
}

impl From<OperationOutcome> for AppError {
    fn from(o: OperationOutcome) -> Self {
        AppError::Invalid(o)
    }
}
