//! Home: where a signed-in person lands, by who they are. The patient's home is their chart,
//! a family member's the patients they follow, the team's what needs attention, the
//! analyst's the population figures, anyone else's their account. This module puts
//! workflows' pages together; no workflow's pages import it.

use crate::AppState;
use crate::shell::{Note, failed, note, person, render};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use coproduce_core::access::Who;
use tower_sessions::Session;

/// Home's route.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![("/", get(home), false)]
}

pub(crate) async fn home(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let note = note(&t, &q);
    match &p.caller.actor.who {
        Who::Patient { patient } => {
            let pid = patient.clone();
            crate::care::show_chart(&s, &p, &pid, note, None, StatusCode::OK).await
        }
        Who::Family { .. } => crate::care::family_home(&s, &p, note).await,
        Who::TeamMember { .. } => {
            match crate::care::team_home_view(
                &s,
                &p.caller,
                &t,
                p.csrf.clone(),
                p.user.username.clone(),
                note,
            )
            .await
            {
                Ok(page) => render(&page, StatusCode::OK),
                Err(e) => failed(&t, e),
            }
        }
        Who::Analyst => crate::measures::show(&s, &p).await,
        _ => crate::accounts::account_page(&s, &session, None, StatusCode::OK).await,
    }
}
