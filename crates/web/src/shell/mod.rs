//! The page shell every workflow's pages use: who is signed in (`Person`) and what every page
//! carries (`Frame`), rendering, the error page and refusals shown on the page, notes after a
//! change, the panels other workflows add to a patient's home, the static files, and (in
//! `forms`) sessions, CSRF and form checks. Times are shown with the person's translator
//! (`Tr::when`, `Tr::day`: on their clock), never in UTC.

use crate::AppState;
use crate::i18n::supported;
pub(crate) use crate::i18n::{LANGUAGES, Tr};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use coproduce_app::accounts::Caller;
use coproduce_app::{AppError, CareError, UserRow};
use coproduce_core::access::Role;
use coproduce_core::care::plan::Side;
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tower_sessions::Session;

mod forms;

use axum::routing::{MethodRouter, get};

pub(crate) use forms::*;

/// A box another workflow adds to the patient's home (the rescue pack's), as the HTML it
/// rendered itself, or None when it has nothing to show. The router registers them in
/// [`AppState`]; the chart shows them without knowing whose they are.
pub(crate) type PatientPanel =
    for<'a> fn(
        &'a AppState,
        &'a Person,
        &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<String>, CareError>> + Send + 'a>>;

/// The panels of a patient's home, in the order they show.
#[derive(Clone, Default)]
pub(crate) struct Panels(Arc<[PatientPanel]>);

impl Panels {
    pub(crate) fn new(panels: Vec<PatientPanel>) -> Self {
        Panels(panels.into())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &PatientPanel> {
        self.0.iter()
    }
}

impl std::fmt::Debug for Panels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Panels({})", self.0.len())
    }
}

/// The static files, served from memory.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/static/htmx.min.js", get(htmx), true),
        ("/static/app.css", get(css), true),
        ("/static/print.js", get(print_js), true),
    ]
}

/// A page that carries the frame (title, note, error).
pub(crate) trait Framed: Template {
    fn frame_mut(&mut self) -> &mut Frame;
}

/// A refusal the person can act on shows the page again (`page`, built only then) with the
/// message, 422; any other failure is answered by its status.
pub(crate) async fn show_refusal<P: Framed>(
    t: &Tr,
    e: CareError,
    page: impl std::future::Future<Output = Result<P, CareError>>,
) -> Response {
    match refusal(t, &e) {
        Some(msg) => match page.await {
            Ok(mut page) => {
                page.frame_mut().error = Some(msg);
                render(&page, StatusCode::UNPROCESSABLE_ENTITY)
            }
            Err(e) => failed(t, e),
        },
        None => failed(t, e),
    }
}

pub(crate) fn render(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

pub(crate) fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html("Something went wrong on our side. Please try again."),
    )
        .into_response()
}

pub(crate) fn unreadable() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html("The form could not be read. Go back, reload the page and try again."),
    )
        .into_response()
}

/// A file the repository carries, served as it is: it holds no one's data, so it may be
/// cached for `max_age` seconds.
fn static_file(content_type: &'static str, max_age: u32, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        ],
        body,
    )
        .into_response()
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

pub(crate) async fn htmx() -> Response {
    static_file(JAVASCRIPT, 86_400, include_str!("../../static/htmx.min.js"))
}

pub(crate) async fn print_js() -> Response {
    static_file(JAVASCRIPT, 3_600, include_str!("../../static/print.js"))
}

pub(crate) async fn css() -> Response {
    static_file(
        "text/css; charset=utf-8",
        3_600,
        include_str!("../../static/app.css"),
    )
}

/// What every app page carries: the translator, the CSRF token, who is signed in, and a note
/// or error to show at the top.
pub(crate) struct Frame {
    pub t: Tr,
    pub csrf: String,
    pub note: Option<String>,
    pub error: Option<String>,
    pub title: String,
}

impl Frame {
    pub fn languages(&self) -> &'static [(&'static str, &'static str)] {
        LANGUAGES
    }
}

/// A signed-in person in the app: their account, their rights and their language.
pub(crate) struct Person {
    pub(crate) user: UserRow,
    pub(crate) caller: Caller,
    pub(crate) lang: &'static str,
    pub(crate) csrf: String,
    /// The site's calendar in the person's zone: the one times are shown and read in.
    pub(crate) calendar: Arc<coproduce_core::calendar::BusinessCalendar>,
}

impl Person {
    pub(crate) fn role(&self) -> Option<Role> {
        coproduce_app::vocabulary::role_of(&self.caller)
    }

    pub(crate) fn side(&self) -> Option<Side> {
        self.role().and_then(Side::of)
    }

    pub(crate) fn frame(
        &self,
        title: String,
        note: Option<String>,
        error: Option<String>,
    ) -> Frame {
        Frame {
            t: self.t(),
            csrf: self.csrf.clone(),
            note,
            error,
            title,
        }
    }

    /// The person's translator: their language, times in their zone.
    pub(crate) fn t(&self) -> Tr {
        Tr::new(self.lang).in_zone(self.calendar.clone())
    }
}

/// The language: the person's own choice, else their record's (Patient.communication),
/// else English. The time zone: the person's own choice, else the site's.
pub(crate) async fn person(s: &AppState, session: &Session) -> Result<Person, Response> {
    let user = require_user(s, session).await?;
    let caller = s
        .accounts
        .caller_for_user(&user)
        .await
        .map_err(server_error)?;
    let chosen = s.accounts.language(&user).await.map_err(server_error)?;
    let mut lang = chosen.as_deref().and_then(supported);
    if lang.is_none()
        && let Some(pid) = coproduce_app::Care::own_patient(&caller)
        && let Ok(p) = s.api.read(&caller, "Patient", &pid).await
        && let Ok(v) = p.json()
    {
        lang = v["communication"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["language"]["coding"][0]["code"].as_str())
            .find_map(supported);
    }
    // The person's own time zone, if they chose one, else the site's.
    let zone = s.accounts.time_zone(&user).await.map_err(server_error)?;
    let calendar = match zone.as_deref().map(|z| s.calendar.in_zone(z)) {
        Some(Ok(own)) => Arc::new(own),
        _ => s.calendar.clone(),
    };
    let csrf = csrf_token(session).await.map_err(server_error)?;
    Ok(Person {
        user,
        caller,
        lang: lang.unwrap_or("en"),
        csrf,
        calendar,
    })
}

/// A checked form from a signed-in person.
pub(crate) async fn person_form<F: WithCsrf>(
    s: &AppState,
    session: &Session,
    form: Result<Form<F>, FormRejection>,
) -> Result<(Person, F), Response> {
    let (_, f) = checked_form(s, session, form).await?;
    Ok((person(s, session).await?, f))
}

/// The page for a failure that is not the person's to fix.
pub(crate) fn failed(t: &Tr, e: CareError) -> Response {
    let (status, key) = match &e {
        CareError::App(AppError::Forbidden(_)) => (StatusCode::FORBIDDEN, "error-forbidden"),
        CareError::App(AppError::NotFound(_) | AppError::Gone(_)) => {
            (StatusCode::NOT_FOUND, "error-not-found")
        }
        CareError::App(AppError::PreconditionFailed(_) | AppError::Conflict(_)) => {
            (StatusCode::CONFLICT, "error-changed")
        }
        CareError::App(AppError::Invalid(_)) => (StatusCode::UNPROCESSABLE_ENTITY, "error-invalid"),
        CareError::App(AppError::Storage(db)) if db.is_unavailable() => {
            tracing::warn!(error = %e, "the database cannot take a page's request now");
            (StatusCode::SERVICE_UNAVAILABLE, "error-unavailable")
        }
        _ => {
            tracing::error!(error = %e, "a care page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "error-server")
        }
    };
    error_page(t, t.t(key), status)
}

/// The error page: the message, and the way home, in the translator's language.
pub(crate) fn error_page(t: &Tr, message: String, status: StatusCode) -> Response {
    render(
        &ErrorPage {
            message,
            back: t.t("nav-home"),
            lang: t.lang,
        },
        status,
    )
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    message: String,
    back: String,
    lang: &'static str,
}

/// The message for a refusal the person can act on.
/// The message for a refusal the person can fix, in their words: a measure named as they
/// know it (not its code), numbers as their language writes them, and a refused file row's
/// reason translated too.
pub(crate) fn refusal(t: &Tr, e: &CareError) -> Option<String> {
    let (key, args) = e.message()?;
    let mut args: Vec<(&str, String)> = args
        .into_iter()
        .map(|(name, value)| {
            let value = match name {
                "what" if t.has(&format!("measure-{value}")) => t.t(&format!("measure-{value}")),
                "what" if t.has(&format!("reading-part-{value}")) => {
                    t.t(&format!("reading-part-{value}"))
                }
                "min" | "max" => t.number(&value),
                _ => value,
            };
            (name, value)
        })
        .collect();
    if let Some(why_key) = args
        .iter()
        .find(|(n, _)| *n == "why-key")
        .map(|(_, k)| k.clone())
    {
        let why = t
            .with(&why_key, &args)
            .trim_end_matches(['.', ' '])
            .to_string();
        args.retain(|(n, _)| *n != "why");
        args.push(("why", why));
    }
    Some(t.with(key, &args))
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct Note {
    #[serde(default)]
    pub(crate) ok: Option<String>,
}

/// Only known note keys are shown, so a link cannot put words in the page.
pub(crate) const NOTES: &[&str] = &[
    "note-social-done",
    "note-social-choice",
    "note-social-referred",
    "note-social-cancelled",
    "note-social-helped",
    "note-partner-moved",
    "note-directory-saved",
    "note-directory-loaded",
    "note-reading-saved",
    "note-reading-saved-other",
    "note-readings-uploaded",
    "note-goal-proposed",
    "note-goal-answered",
    "note-activity-added",
    "note-activity-done",
    "note-reviewed",
    "note-language",
    "note-rescue-started",
    "note-rescue-checked-in",
    "note-rescue-recorded",
    "note-admin-changed",
    "note-concern-raised",
    "note-concern-heard",
    "note-concern-step",
    "note-concern-managed",
    "note-meds-answered",
    "note-meds-resolved",
    "note-meds-prescribed",
    "note-meds-about",
    "note-collaborate",
];

pub(crate) fn note(t: &Tr, q: &Note) -> Option<String> {
    q.ok.as_deref()
        .filter(|k| NOTES.contains(k))
        .map(|k| t.t(k))
}

/// Back to a page with a note; a `#place` on the path is kept, so a list row's action
/// returns to the list, not to the top of the page.
pub(crate) fn back_to(path: &str, note: &str) -> Response {
    let (path, place) = match path.split_once('#') {
        Some((p, f)) => (p, format!("#{f}")),
        None => (path, String::new()),
    };
    Redirect::to(&format!("{path}?ok={note}{place}")).into_response()
}

/// Only our own paths: never an open redirect. A `#place` of letters, digits and dashes is
/// kept.
pub(crate) fn safe_back(back: &str) -> &str {
    let path = back.split(['?', '#']).next().unwrap_or_default();
    let place_ok = back.split_once('#').is_some_and(|(p, f)| {
        p == path
            && !f.is_empty()
            && f.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    // Browsers drop tabs and newlines from a URL and read `\` as `/`, so `/\t/evil.com`
    // would leave the site: only a plain path on this site is followed.
    let same_site = path.starts_with('/')
        && !path.starts_with("//")
        && path
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '\\');
    match (same_site, place_ok) {
        (true, true) => back,
        (true, false) => path,
        _ => "/",
    }
}

/// What an unknown address answers: under `/fhir` and `/api` an OperationOutcome (404), else
/// the page saying so in the browser's language, with the way home.
pub(crate) async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let path = uri.path();
    if path.starts_with("/fhir") || path.starts_with("/api") {
        return crate::errors::ApiError::new(
            StatusCode::NOT_FOUND,
            coproduce_fhir::IssueCode::NotFound,
            format!("nothing is served at {path}"),
        )
        .into_response();
    }
    let t = browser_language(&headers);
    error_page(&t, t.t("error-not-found"), StatusCode::NOT_FOUND)
}

/// The numbers to call, as links that dial on a phone: emergency services, and the clinic
/// when the site gave its number. Pages that tell someone to call include `calls.html`.
#[derive(Debug, Clone)]
pub(crate) struct Calls {
    pub(crate) emergency: (String, String),
    pub(crate) clinic: Option<(String, String)>,
}

pub(crate) fn calls(t: &Tr, phones: &crate::Phones) -> Calls {
    Calls {
        emergency: (
            t.arg("call-emergency", "number", &phones.emergency),
            crate::Phones::tel(&phones.emergency),
        ),
        clinic: phones
            .clinic
            .as_ref()
            .map(|n| (t.arg("call-clinic", "number", n), crate::Phones::tel(n))),
    }
}
