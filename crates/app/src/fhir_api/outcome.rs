//! How an error reads to a FHIR client: its status and OperationOutcome.

use super::*;

/// Reads an ETag such as `W/"3"` or `"3"` as a version number.
pub fn parse_etag(v: &str) -> Option<i64> {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// The HTTP status line and OperationOutcome for an error (for batch entries; the web layer
/// uses the same table).
pub fn status_of(err: &AppError) -> (&'static str, OperationOutcome) {
    match err {
        AppError::Invalid(o) if o.is_structural() => ("400 Bad Request", o.clone()),
        AppError::Invalid(o) => ("422 Unprocessable Entity", o.clone()),
        AppError::NotFound(m) => (
            "404 Not Found",
            OperationOutcome::message(IssueCode::NotFound, format!("{m} is not known")),
        ),
        AppError::Gone(m) => (
            "410 Gone",
            OperationOutcome::message(IssueCode::Deleted, format!("{m} was deleted")),
        ),
        AppError::PreconditionFailed(m) => (
            "412 Precondition Failed",
            OperationOutcome::message(IssueCode::Conflict, m.clone()),
        ),
        AppError::Conflict(m) => (
            "409 Conflict",
            OperationOutcome::message(IssueCode::Conflict, m.clone()),
        ),
        AppError::Unauthorized(m) => (
            "401 Unauthorized",
            OperationOutcome::message(IssueCode::Login, m.clone()),
        ),
        AppError::Forbidden(m) => (
            "403 Forbidden",
            OperationOutcome::message(IssueCode::Forbidden, m.clone()),
        ),
        AppError::Internal(_) => (
            "500 Internal Server Error",
            OperationOutcome::message(
                IssueCode::Exception,
                "the server failed; nothing was written",
            ),
        ),
        AppError::Storage(e) if e.is_unavailable() => (
            "503 Service Unavailable",
            OperationOutcome::message(
                IssueCode::Transient,
                "the database cannot take this now (its disk is full, it is read-only or it cannot be reached); nothing was written: try again shortly",
            ),
        ),
        AppError::Storage(_) => (
            "500 Internal Server Error",
            OperationOutcome::message(
                IssueCode::Exception,
                "the database failed; nothing was written",
            ),
        ),
    }
}
