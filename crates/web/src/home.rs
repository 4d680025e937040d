//! Home: where a signed-in person lands, by who they are. The patient's home is their chart,
//! a family member's the patients they follow, a clinical role's what needs attention across
//! the panel (what needs action now first), the pharmacist's, community health worker's and
//! social worker's their worklist, the analyst's the population figures, a community organisation's the referrals addressed
//! to it, the administrator's
//! the accounts and tokens, anyone else's their account. This module puts
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
        // The pharmacist, the community health worker and the social worker work from their
        // own lists; the clinical roles triage the panel.
        Who::TeamMember { role, .. } if !coproduce_core::care::readings::may_review(*role) => {
            let mut sections = Vec::new();
            for section in [
                crate::rescue::worklist_section(&s, &p, *role).await,
                crate::social::worklist_section(&s, &p, *role).await,
                crate::prescribing::worklist_section(&s, &p, *role).await,
            ] {
                match section {
                    Ok(section) => sections.extend(section),
                    Err(e) => return failed(&t, e),
                }
            }
            match crate::care::worklist_view(&s, &p, *role, note, sections).await {
                Ok(page) => render(&page, StatusCode::OK),
                Err(e) => failed(&t, e),
            }
        }
        Who::TeamMember { .. } => {
            match crate::care::team_home_view(&s, &p.caller, &t, p.csrf.clone(), note).await {
                Ok(page) => render(&page, StatusCode::OK),
                Err(e) => failed(&t, e),
            }
        }
        Who::Analyst => crate::measures::show(&s, &p).await,
        Who::Partner { .. } => match crate::social::partner::view(&s, &p, note).await {
            Ok(page) => render(&page, StatusCode::OK),
            Err(e) => failed(&t, e),
        },
        Who::Admin => crate::accounts::admin::admin_home(State(s), session, Query(q)).await,
        _ => crate::accounts::account_page(&s, &session, None, StatusCode::OK).await,
    }
}
