//! The application's error type: what went wrong, in terms a caller can act on.

use coproduce_core::care::plan::GoalRefused;
use coproduce_core::care::readings::ReadingRefused;
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

/// What a read found, or nothing when the policy does not let the caller see that part of
/// the record (a family member without the grant's part); any other failure stays an error.
pub fn unless_forbidden<T: Default>(found: Result<T, AppError>) -> Result<T, AppError> {
    match found {
        Err(AppError::Forbidden(_)) => Ok(T::default()),
        other => other,
    }
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

/// Why an action a person asked for was refused (in any workflow): each refusal has a message key the person's language fills in.
#[derive(Debug, thiserror::Error)]
pub enum CareError {
    #[error("{0}")]
    Reading(ReadingRefused),
    #[error("{0}")]
    Goal(GoalRefused),
    /// Something the person entered or asked for that cannot be done, with its message key.
    #[error("{english}")]
    Input {
        key: &'static str,
        english: String,
        args: Vec<(&'static str, String)>,
    },
    #[error(transparent)]
    App(#[from] AppError),
}

impl CareError {
    pub fn input(key: &'static str, english: impl Into<String>) -> Self {
        CareError::Input {
            key,
            english: english.into(),
            args: Vec::new(),
        }
    }

    /// The message key and its arguments, for a refusal the person can act on; None for a
    /// failure that is not theirs (the web layer maps those to a status).
    pub fn message(&self) -> Option<(&'static str, Vec<(&'static str, String)>)> {
        match self {
            CareError::Reading(r) => Some((r.key(), r.args())),
            CareError::Goal(g) => Some((g.key(), vec![])),
            CareError::Input { key, args, .. } => Some((key, args.clone())),
            CareError::App(_) => None,
        }
    }
}

impl From<ReadingRefused> for CareError {
    fn from(e: ReadingRefused) -> Self {
        CareError::Reading(e)
    }
}

impl From<GoalRefused> for CareError {
    fn from(e: GoalRefused) -> Self {
        CareError::Goal(e)
    }
}

impl From<coproduce_store::StoreError> for CareError {
    fn from(e: coproduce_store::StoreError) -> Self {
        CareError::App(e.into())
    }
}
