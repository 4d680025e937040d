//! Who is calling: `Authorization: Bearer <token>` becomes a [`Caller`]. Without valid
//! credentials, every protected route answers 401 with an OperationOutcome.

use crate::AppState;
use crate::errors::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use coproduce_app::accounts::{Caller, TokenRefused};
use coproduce_fhir::IssueCode;

/// A caller whose credentials were checked.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await {
            Ok(caller) => Ok(Authenticated(caller)),
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                // A refused request is audited too; a failure to audit it is a server error.
                let request = format!("{} {}", parts.method, parts.uri.path());
                let reason = e.outcome.to_string();
                state.api.audit_unauthenticated(&request, &reason).await?;
                let mut e = e;
                e.www_authenticate = true;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let unauthorized = |msg: String| ApiError::new(StatusCode::UNAUTHORIZED, IssueCode::Login, msg);
    // Two credentials are no credential: which one acts would be a guess.
    if parts.headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(unauthorized(
            "send one Authorization header, not several".into(),
        ));
    }
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("sign in: send Authorization: Bearer <token>".into()))?;
    let secret = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("the Authorization header must be: Bearer <token>".into()))?;
    match state.accounts.caller_for_token(secret).await {
        Ok(caller) => Ok(caller),
        Err(TokenRefused::NotValid(reason)) => {
            Err(unauthorized(format!("the token does not count: {reason}")))
        }
        Err(TokenRefused::Failed(e)) => Err(ApiError::from(e)),
    }
}
