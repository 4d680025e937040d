//! The notifications inbox: what the person was told, in their language, each marked read
//! when they open it. Every workflow's notifications land here (today the rescue pack's).

use crate::AppState;
use crate::shell::{Frame, Pairs, Person, failed, person, person_form, render};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use coproduce_app::CareError;
use tower_sessions::Session;

/// The inbox's routes.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/notifications", get(inbox_page), false),
        ("/notifications/{id}/read", post(mark_read), false),
    ]
}

#[derive(Template)]
#[template(path = "inbox.html")]
pub(crate) struct InboxPage {
    pub(crate) f: Frame,
    pub(crate) rows: Vec<InboxLine>,
}

/// A notification as the inbox shows it.
pub(crate) struct InboxLine {
    pub id: String,
    pub at: String,
    pub text: String,
    pub link: Option<String>,
    pub unread: bool,
}

/// The signed-in person's notifications, rendered in the page's language.
pub(crate) async fn inbox_lines(
    s: &AppState,
    p: &Person,
    limit: i64,
) -> Result<Vec<InboxLine>, CareError> {
    let rows = s.notifier.inbox(&p.caller, limit).await?;
    let t = p.t();
    Ok(rows
        .into_iter()
        .map(|mut n| {
            n.language = p.lang.to_string();
            let (_, text) = coproduce_app::notify::render(&n, p.calendar.clone());
            InboxLine {
                link: n
                    .patient_id
                    .as_ref()
                    .map(|pid| format!("/patients/{pid}/rescue-pack")),
                at: t.when(coproduce_core::from_unix_millis(n.created_at)),
                unread: n.read_at.is_none(),
                id: n.id,
                text,
            }
        })
        .collect())
}

/// Marks one of the person's notifications read.
pub(crate) async fn mark_read(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, _) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.notifier.mark_read(&p.caller, &id).await {
        Ok(true) => Redirect::to("/notifications").into_response(),
        Ok(false) => failed(
            &p.t(),
            CareError::App(coproduce_app::AppError::NotFound(format!(
                "notification {id}"
            ))),
        ),
        Err(e) => failed(&p.t(), CareError::App(e)),
    }
}

pub(crate) async fn inbox_page(State(s): State<AppState>, session: Session) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    match inbox_lines(&s, &p, 200).await {
        Ok(rows) => render(
            &InboxPage {
                f: p.frame(t.t("inbox-title"), None, None),
                rows,
            },
            StatusCode::OK,
        ),
        Err(e) => failed(&t, e),
    }
}
