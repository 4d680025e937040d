//! What no client can take from the others: a request's time on the server, and the
//! server's connections.
//!
//! A request still running after the site's `request_timeout` is stopped (its unfinished
//! transaction rolls back) and answered 503: an OperationOutcome `timeout` on the API, an
//! error page in the person's language on the pages. The server holds at most
//! `max_connections` connections at once; one more is answered 503 with `Retry-After` and
//! closed at once, so idle or slow clients cannot take every connection (with the header and
//! body time-outs, each of them is also let go soon).

use crate::errors::ApiError;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coproduce_fhir::IssueCode;
use std::time::Duration;

/// The limits [`crate::serve_until`] holds connections to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request's headers (the connection is closed
    /// after it).
    pub header_timeout: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
}

/// Stops a request that runs longer than `limit` (the middleware of [`crate::app`]).
pub(crate) async fn request_timeout(limit: Duration, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/fhir") || req.uri().path().starts_with("/api");
    // Only what the error page would need is kept: the language is read if it comes to that.
    let accept = req
        .headers()
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .cloned();
    let path = req.uri().path().to_string();
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(
                path,
                seconds = limit.as_secs(),
                "a request took too long and was stopped"
            );
            metrics::counter!("coproduce_requests_timed_out_total").increment(1);
            if api {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    IssueCode::Timeout,
                    format!(
                        "the request took longer than {} s and was stopped; what it had not finished was not kept: check, then try again or ask for less",
                        limit.as_secs()
                    ),
                )
                .into_response()
            } else {
                let mut headers = axum::http::HeaderMap::new();
                if let Some(v) = accept {
                    headers.insert(axum::http::header::ACCEPT_LANGUAGE, v);
                }
                let t = crate::shell::browser_language(&headers);
                crate::shell::error_page(&t, t.t("error-timeout"), StatusCode::SERVICE_UNAVAILABLE)
            }
        }
    }
}

/// The whole answer to a connection over the limit: 503, try again in a second.
pub(crate) fn over_the_limit() -> Vec<u8> {
    let body = coproduce_fhir::OperationOutcome::message(
        IssueCode::Transient,
        "the server is at its limit of open connections; try again in a moment",
    )
    .to_json()
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\ncontent-length: {}\r\nretry-after: 1\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        crate::errors::FHIR_JSON,
        body.len()
    )
    .into_bytes()
}
