//! `/api`: the app's own JSON endpoints (not FHIR).

use crate::AppState;
use crate::auth::Authenticated;
use crate::errors::ApiError;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get, post};
use coproduce_fhir::IssueCode;
use serde::Deserialize;
use serde_json::{Value, json};

/// Every `/api` route: path, how it is served, and whether it is public.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/break-glass", post(break_glass), false),
        ("/my/access-log", get(access_log), false),
    ]
}

pub fn routes() -> Router<AppState> {
    route_table()
        .into_iter()
        .fold(Router::new(), |r, (path, handler, _)| {
            r.route(path, handler)
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakGlassRequest {
    /// `Patient/ID`.
    patient: String,
    reason: String,
    /// Minutes (default 60, at most 720).
    minutes: Option<i64>,
}

/// `POST /api/break-glass {"patient": "Patient/ID", "reason": "..."}`: opens a chart outside
/// the caller's care teams for a limited time.
async fn break_glass(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    body: Result<Json<BreakGlassRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(req) = body
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, IssueCode::Structure, e.body_text()))?;
    // Clamped into what a Duration holds; the policy refuses anything past 12 hours.
    let length = req
        .minutes
        .map(|m| time::Duration::minutes(m.clamp(-1, 1_000_000)));
    let until = s
        .accounts
        .break_glass(&caller, &req.patient, &req.reason, length)
        .await?;
    let until = coproduce_app::Stored::instant(until);
    Ok((
        StatusCode::CREATED,
        Json(json!({"patient": req.patient, "until": until})),
    ))
}

/// `GET /api/my/access-log`: for a patient, who did what with their record, in plain words.
async fn access_log(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let lines = s.api.access_log(&caller, 200).await?;
    Ok(Json(json!({"entries": lines})))
}
