//! The administrator's home: every account and API token, one action per row (disable or
//! enable an account, revoke a token). Decided and audited in `app::accounts`; the care teams,
//! grants and charts are not the administrator's to read.

use crate::AppState;
use crate::shell::{Frame, Note, back_to, failed, note, person, person_form, render};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use coproduce_app::CareError;
use coproduce_app::accounts::AdminChange;
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Template)]
#[template(path = "admin.html")]
pub(crate) struct AdminPage {
    pub(crate) f: Frame,
    pub(crate) users: Vec<UserLine>,
    pub(crate) tokens: Vec<TokenLine>,
}

pub(crate) struct UserLine {
    pub(crate) username: String,
    pub(crate) roles: String,
    pub(crate) record: String,
    pub(crate) created: String,
    pub(crate) disabled: bool,
}

pub(crate) struct TokenLine {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) scopes: String,
    pub(crate) expires: String,
    pub(crate) revoked: Option<String>,
}

pub(crate) async fn admin_home(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let (users, tokens) = match s.accounts.administered(&p.caller).await {
        Ok(found) => found,
        Err(e) => return failed(&t, CareError::App(e)),
    };
    let when = |ms: i64| t.when(coproduce_core::from_unix_millis(ms));
    let page = AdminPage {
        f: p.frame(t.t("admin-title"), note(&t, &q), None),
        users: users
            .into_iter()
            .map(|u| UserLine {
                roles: u
                    .roles
                    .split_whitespace()
                    .map(|r| t.t(&format!("owner-{r}")))
                    .collect::<Vec<_>>()
                    .join(", "),
                // The kind of record only: the administrator does not read charts.
                record: match u.fhir_ref.as_deref().and_then(|r| r.split_once('/')) {
                    Some(("Patient", _)) => t.t("admin-record-patient"),
                    Some(("RelatedPerson", _)) => t.t("admin-record-family"),
                    Some((_, _)) => t.t("admin-record-team"),
                    None => String::new(),
                },
                created: when(u.created_at),
                disabled: u.disabled,
                username: u.username,
            })
            .collect(),
        tokens: tokens
            .into_iter()
            .map(|k| TokenLine {
                id: k.id,
                name: k.name,
                scopes: k.scopes,
                expires: k.expires_at.map(when).unwrap_or_default(),
                revoked: k.revoked_at.map(when),
            })
            .collect(),
    };
    render(&page, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AdminForm {
    pub(crate) csrf: String,
}

crate::shell::csrf_forms!(AdminForm);

async fn change(
    s: AppState,
    session: Session,
    form: Result<Form<AdminForm>, FormRejection>,
    what: AdminChange,
) -> Response {
    let (p, _) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    match s.accounts.administer(&p.caller, what).await {
        Ok(()) => back_to("/", "note-admin-changed"),
        Err(e) => failed(&p.t(), CareError::App(e)),
    }
}

pub(crate) async fn disable(
    State(s): State<AppState>,
    session: Session,
    Path(username): Path<String>,
    form: Result<Form<AdminForm>, FormRejection>,
) -> Response {
    change(s, session, form, AdminChange::Disable(username)).await
}

pub(crate) async fn enable(
    State(s): State<AppState>,
    session: Session,
    Path(username): Path<String>,
    form: Result<Form<AdminForm>, FormRejection>,
) -> Response {
    change(s, session, form, AdminChange::Enable(username)).await
}

pub(crate) async fn revoke(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: Result<Form<AdminForm>, FormRejection>,
) -> Response {
    change(s, session, form, AdminChange::RevokeToken(id)).await
}
