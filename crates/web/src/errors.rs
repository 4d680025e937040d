//! Every error of the HTTP layer becomes a status code and a FHIR OperationOutcome here, and
//! only here. A storage failure is a 500 whose body says nothing of the database's internals
//! (the details go to the log).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use coproduce_app::AppError;
use coproduce_fhir::{IssueCode, OperationOutcome};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// An error answer: a status and an OperationOutcome.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub outcome: OperationOutcome,
    /// Add `WWW-Authenticate: Bearer` (a 401 says how to authenticate).
    pub www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: IssueCode, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            outcome: OperationOutcome::message(code, msg),
            www_authenticate: false,
        }
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match &err {
            AppError::Storage(e) => tracing::error!(error = %e, "storage failed"),
            AppError::Internal(e) => tracing::error!(error = %e, "internal failure"),
            _ => {}
        }
        let (line, outcome) = coproduce_app::fhir_api::status_of(&err);
        let code: u16 = line[..3].parse().unwrap_or(500);
        ApiError {
            status: StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            outcome,
            www_authenticate: false,
        }
    }
}

impl From<OperationOutcome> for ApiError {
    fn from(o: OperationOutcome) -> Self {
        ApiError::from(AppError::Invalid(o))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, FHIR_JSON)],
            self.outcome.to_json().to_string(),
        )
            .into_response();
        if self.www_authenticate {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// The answer to a body the server would not read (too large, unreadable).
/// Did reading the body stop because the client took too long to send it?
fn timed_out(r: &axum::extract::rejection::BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(r);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

pub fn body_rejection(r: axum::extract::rejection::BytesRejection) -> ApiError {
    let status = r.status();
    if timed_out(&r) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            IssueCode::Exception,
            "the request body did not arrive in time; send it again",
        )
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            IssueCode::TooLong,
            "the request body is larger than this server accepts",
        )
    } else {
        ApiError::new(
            status,
            IssueCode::Structure,
            format!("could not read the request body: {r}"),
        )
    }
}
