//! A community organisation's page: the referrals addressed to it, one row each with what it
//! needs to act (the person's name, language, contact and need) and one form to say where the
//! referral stands. The policy finds the rows; nothing of the chart is shown.

use crate::AppState;
use crate::shell::{
    Frame, Pairs, Person, back_to, failed, note, person, person_form, render, show_refusal,
};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use coproduce_app::CareError;
use coproduce_app::social::Addressed;
use coproduce_core::social::referral::{Ending, Status};
use tower_sessions::Session;

/// The partner's routes.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/partner", get(page), false),
        ("/partner/referrals/{task}", post(update), false),
    ]
}

pub(crate) struct Row {
    task: String,
    version: i64,
    received: String,
    name: String,
    language: String,
    lang_code: String,
    need: String,
    service: String,
    note: String,
    contact: String,
    status: String,
    moves: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "partner.html")]
pub(crate) struct PartnerPage {
    f: Frame,
    rows: Vec<Row>,
    endings: Vec<(&'static str, String)>,
}

fn row(t: &crate::i18n::Tr, a: &Addressed) -> Row {
    let status = t.t(&format!("partner-status-{}", a.status.as_str()));
    let lang_code = a.language.clone().unwrap_or_default();
    Row {
        task: a.task.clone(),
        version: a.version,
        received: a.authored.map(|at| t.when_zoned(at)).unwrap_or_default(),
        name: a.name.clone(),
        language: crate::i18n::language_name(&lang_code),
        lang_code,
        need: a
            .need
            .map(|d| t.t(&format!("social-need-{}", d.as_str())))
            .unwrap_or_default(),
        service: a.service.clone(),
        note: a.note.clone().unwrap_or_default(),
        contact: a.contact.clone().unwrap_or_default(),
        status: match a.ending {
            Some(e) => format!(
                "{status} ({})",
                t.t(&format!("partner-ending-{}", e.as_str()))
            ),
            None => status,
        },
        moves: a
            .moves()
            .into_iter()
            .map(|s| (s.as_str(), t.t(&format!("partner-status-{}", s.as_str()))))
            .collect(),
    }
}

/// The partner's page (also its home).
pub(crate) async fn view(
    s: &AppState,
    p: &Person,
    note: Option<String>,
) -> Result<PartnerPage, CareError> {
    let t = p.t();
    let addressed = s.social.addressed(&p.caller).await?;
    Ok(PartnerPage {
        rows: addressed.iter().map(|a| row(&t, a)).collect(),
        endings: Ending::ALL
            .iter()
            .map(|e| (e.as_str(), t.t(&format!("partner-ending-{}", e.as_str()))))
            .collect(),
        f: p.frame(t.t("partner-title"), note, None),
    })
}

async fn page(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<crate::shell::Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    match view(&s, &p, note(&t, &q)).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => failed(&t, e),
    }
}

async fn again(s: &AppState, p: &Person, e: CareError) -> Response {
    show_refusal(&p.t(), e, view(s, p, None)).await
}

async fn update(
    State(s): State<AppState>,
    session: Session,
    Path(task): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (Some(to), Ok(version)) = (Status::parse(f.one("to")), f.one("version").parse()) else {
        return again(
            &s,
            &p,
            CareError::input("social-choice-missing", "choose one of the answers"),
        )
        .await;
    };
    let reason = match f.one("reason") {
        "" => None,
        r => match Ending::parse(r) {
            Some(e) => Some(e),
            None => {
                return again(
                    &s,
                    &p,
                    CareError::input("referral-reason", "say why the referral ended"),
                )
                .await;
            }
        },
    };
    match s
        .social
        .move_referral(&p.caller, &task, version, to, reason)
        .await
    {
        Ok(()) => back_to("/partner", "note-partner-moved"),
        Err(e) => again(&s, &p, e).await,
    }
}

impl crate::shell::Framed for PartnerPage {
    fn frame_mut(&mut self) -> &mut Frame {
        &mut self.f
    }
}
