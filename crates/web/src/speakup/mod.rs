//! Speak Up's pages: a unit's open form for a bedside or waiting-room device and the page that
//! reads an answer with a claim code (`open`, no sign-in), the signed-in patient's and family
//! member's form and concerns (`reporter`), and the team's list of open concerns and one
//! concern with its steps (`team`). What the reporter reads never names staff unless the
//! manager released names (the app decides; the pages show what they are given).

use crate::AppState;
use crate::i18n::Tr;
use crate::shell::{
    Calls, Frame, Pairs, Person, back_to, calls, error_page, failed, note, person, person_form,
    refusal, render,
};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use coproduce_app::CareError;
use coproduce_app::speakup::{ConcernView, NewConcern, Raised};
use coproduce_core::speakup::{Kind, Stage, Urgency};
use tower_sessions::Session;

mod measures;
mod open;
mod reporter;
mod team;
mod units;

/// Speak Up's routes; the unit's open form and the claim-code page need no sign-in.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        (
            "/speakup/unit/{unit}",
            get(open::unit_form).post(open::raise),
            true,
        ),
        (
            "/speakup/follow",
            get(open::follow_page).post(open::follow),
            true,
        ),
        ("/speakup/follow/heard", post(open::heard), true),
        (
            "/speakup",
            get(reporter::mine_page).post(reporter::raise),
            false,
        ),
        ("/speakup/{id}", get(reporter::concern_page), false),
        ("/speakup/{id}/heard", post(reporter::heard), false),
        ("/team/concerns", get(team::queue_page), false),
        ("/team/concerns/units", get(units::units_page), false),
        ("/concerns/measures", get(measures::measures_page), false),
        ("/team/concerns/{id}", get(team::concern_page), false),
        ("/team/concerns/{id}/step", post(team::step), false),
        ("/team/concerns/{id}/manage", post(team::manage), false),
    ]
}

/// The categories a reporter picks from, with their labels.
fn categories(s: &AppState, t: &Tr) -> Vec<(String, String)> {
    labelled(t, &s.speakup.rules.categories)
}

/// The kinds of feedback, with their labels.
fn feedback_categories(s: &AppState, t: &Tr) -> Vec<(String, String)> {
    labelled(t, &s.speakup.rules.feedback_categories)
}

fn labelled(t: &Tr, keys: &[String]) -> Vec<(String, String)> {
    keys.iter()
        .map(|c| (c.clone(), category_label(t, c)))
        .collect()
}

fn category_label(t: &Tr, c: &str) -> String {
    let key = format!("speakup-category-{c}");
    if t.has(&key) {
        t.t(&key)
    } else {
        c.to_string()
    }
}

fn stage_label(t: &Tr, s: Stage) -> (String, &'static str) {
    let class = match s {
        Stage::Received => "waiting",
        Stage::Acknowledged | Stage::LookingInto | Stage::ActionTaken => "due",
        Stage::Answered => "agreed",
        Stage::Closed => "done",
    };
    (t.t(&format!("speakup-stage-{}", s.as_str())), class)
}

/// A step as the reader sees it.
pub(crate) struct StepLine {
    pub(crate) at: String,
    pub(crate) what: String,
    pub(crate) words: String,
    pub(crate) by: Option<String>,
}

/// A concern as its reporter reads it (the same words on a device and in the app).
pub(crate) struct ReporterConcern {
    /// "Your concern" or "Your feedback".
    pub(crate) heading: String,
    pub(crate) id: String,
    pub(crate) unit_id: String,
    pub(crate) raised: String,
    pub(crate) unit: String,
    pub(crate) room: String,
    pub(crate) category: String,
    pub(crate) what: String,
    pub(crate) urgent: bool,
    pub(crate) stage: String,
    pub(crate) stage_class: &'static str,
    pub(crate) steps: Vec<StepLine>,
    pub(crate) answer: Option<String>,
    pub(crate) heard: Option<String>,
    /// The reporter may now say whether they felt heard.
    pub(crate) asks_heard: bool,
}

fn reporter_concern(t: &Tr, v: &ConcernView) -> ReporterConcern {
    let (stage, stage_class) = stage_label(t, v.stage);
    ReporterConcern {
        heading: t.t(match v.record.concern.kind {
            Kind::Concern => "speakup-your-concern",
            Kind::Feedback => "speakup-your-feedback",
        }),
        id: v.record.id.clone(),
        unit_id: v.record.unit.clone(),
        raised: t.when_zoned(v.record.concern.raised_at),
        unit: v.unit_name.clone(),
        room: v.record.room.clone(),
        category: category_label(t, &v.record.concern.category),
        what: v.record.what.clone(),
        urgent: v.urgent(),
        stage,
        stage_class,
        steps: v
            .steps
            .iter()
            .map(|s| StepLine {
                at: t.when_zoned(s.at),
                what: t.t(&format!("speakup-step-{}", s.step)),
                // The answer is shown on its own, not again in the steps.
                words: if s.step == "answered" {
                    String::new()
                } else {
                    s.text.clone()
                },
                by: s.by.as_ref().map(|b| t.arg("speakup-by", "name", b)),
            })
            .collect(),
        answer: v.answer.clone(),
        heard: v
            .heard
            .map(|h| t.t(&format!("speakup-heard-{}", h.as_str()))),
        asks_heard: v.record.concern.awaits_reporter(),
    }
}

/// The page after a concern is raised: what happens next, whom to call if nobody comes, and
/// for a concern without a name the code to read the answer (shown once).
#[derive(Template)]
#[template(path = "speakup_raised.html")]
pub(crate) struct RaisedPage {
    pub(crate) tr: Tr,
    pub(crate) title: String,
    pub(crate) urgent: bool,
    pub(crate) next: String,
    pub(crate) code: Option<String>,
    pub(crate) calls: Calls,
    pub(crate) follow: String,
    pub(crate) another: String,
}

fn raised_page(s: &AppState, t: &Tr, r: &Raised, another: String) -> RaisedPage {
    let due = t.when_zoned(r.due);
    let (title, next) = match (r.kind, r.urgency) {
        (Kind::Feedback, _) => (
            t.t("feedback-raised-title"),
            t.arg("feedback-raised-next", "due", &due),
        ),
        (_, Urgency::Urgent) => (t.t("speakup-raised-title"), t.t("speakup-raised-urgent")),
        (_, Urgency::Routine) => (
            t.t("speakup-raised-title"),
            t.arg("speakup-raised-routine", "due", &due),
        ),
    };
    RaisedPage {
        tr: t.clone(),
        title,
        urgent: r.urgency == Urgency::Urgent,
        next,
        code: r.claim_code.clone(),
        calls: calls(t, &s.config.phones),
        follow: format!("/speakup/follow?lang={}", t.lang),
        another,
    }
}

/// What a reporter's form sends.
#[derive(Debug, serde::Deserialize, Default)]
pub(crate) struct ConcernForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) lang: String,
    #[serde(default)]
    pub(crate) unit: String,
    #[serde(default)]
    pub(crate) room: String,
    #[serde(default)]
    pub(crate) when: String,
    #[serde(default)]
    pub(crate) category: String,
    #[serde(default)]
    pub(crate) what: String,
    #[serde(default)]
    pub(crate) urgent: Option<String>,
    #[serde(default)]
    pub(crate) anonymous: Option<String>,
    /// The concern whose answer they came from ("raise another concern").
    #[serde(default)]
    pub(crate) after: String,
    /// Feedback for the practice manager rather than a safety concern.
    #[serde(default)]
    pub(crate) feedback: Option<String>,
}

crate::shell::csrf_forms!(ConcernForm);

impl ConcernForm {
    fn concern(&self, unit: &str, anonymous: bool, lang: &str) -> NewConcern {
        NewConcern {
            unit: unit.to_string(),
            room: self.room.clone(),
            when: self.when.clone(),
            category: self.category.clone(),
            what: self.what.clone(),
            urgent: self.urgent.is_some(),
            anonymous,
            language: lang.to_string(),
            after: Some(self.after.clone()).filter(|a| !a.trim().is_empty()),
            feedback: self.feedback.is_some(),
        }
    }
}

/// The status a refusal answers with: too many tries is 429, the rest 422.
fn refusal_status(e: &CareError) -> StatusCode {
    match e.message() {
        Some(("concern-throttled" | "claim-throttled", _)) => StatusCode::TOO_MANY_REQUESTS,
        Some(("concern-unit-unknown" | "concern-not-found", _)) => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// After a refused form: the page again with the reason (in the refusal's status), or the
/// failure page for what is not the person's to fix.
async fn again_with<P, F>(t: &Tr, e: CareError, page: impl FnOnce(String) -> F) -> Response
where
    P: Template,
    F: std::future::Future<Output = Result<P, CareError>>,
{
    match refusal(t, &e) {
        Some(msg) => match page(msg).await {
            Ok(p) => render(&p, refusal_status(&e)),
            Err(e) => failed(t, e),
        },
        None => failed(t, e),
    }
}

/// A page that could not be shown: the reason in the reader's language (a concern they cannot
/// find, a unit that does not exist), or the failure page.
fn refused_page(t: &Tr, e: CareError) -> Response {
    match refusal(t, &e) {
        Some(msg) => error_page(t, msg, refusal_status(&e)),
        None => failed(t, e),
    }
}
