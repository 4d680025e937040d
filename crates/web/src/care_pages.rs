//! The care-plan and readings pages: the patient's home (their plan, readings, team and
//! notifications), a family member's home, the team home (what needs attention across the
//! panel), a patient's chart as the team and family see it, the readings of one measure, the
//! printable visit summary and the CSV export. One view struct per page; every string a
//! patient or family member reads comes from the translations.
//!
//! Handlers are thin: they read the form, call `app::Care` with the signed-in person's
//! rights, and render. A refusal the person can fix is shown on the page with status 422 and
//! changes nothing; a success redirects (303) to the page with a note.

use crate::AppState;
use crate::charts::{self, TrendLabels};
use crate::i18n::{LANGUAGES, Tr, supported};
use crate::pages::{
    CsrfForm, WithCsrf, checked_form, csrf_ok, csrf_refused, csrf_token, render, require_user,
    server_error, unreadable,
};
use askama::Template;
use axum::Form;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::FormRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use coproduce_app::accounts::Caller;
use coproduce_app::care::{
    ActivityView, Chart, GoalView, NewActivity, NewReading, Reading, parse_csv, readings_csv,
};
use coproduce_app::{AppError, CareError, UserRow};
use coproduce_core::access::{Role, Who};
use coproduce_core::careplan::{Cadence, GoalAnswer, GoalState, Owner, Schedule, Setting, Side};
use coproduce_core::readings::{
    self, HbA1cTarget, Measure, ReadingValue, TargetRange, parse_number,
};
use serde::Deserialize;
use std::collections::HashMap;
use time::OffsetDateTime;
use tower_sessions::Session;

pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/", get(home), false),
        ("/account/language", post(set_language), false),
        ("/patients/{pid}", get(chart_page), false),
        ("/patients/{pid}/readings", post(add_reading), false),
        (
            "/patients/{pid}/readings/upload",
            post(upload_readings),
            false,
        ),
        ("/patients/{pid}/readings.csv", get(export_readings), false),
        (
            "/patients/{pid}/readings/{measure}",
            get(measure_page),
            false,
        ),
        (
            "/patients/{pid}/observations/{oid}/review",
            post(review),
            false,
        ),
        ("/patients/{pid}/goals", post(propose_goal), false),
        (
            "/patients/{pid}/goals/{gid}/answer",
            post(answer_goal),
            false,
        ),
        ("/patients/{pid}/activities", post(add_activity), false),
        (
            "/patients/{pid}/activities/{index}/done",
            post(activity_done),
            false,
        ),
        ("/patients/{pid}/summary", get(summary_page), false),
        ("/static/htmx.min.js", get(htmx), true),
        ("/static/app.css", get(css), true),
    ]
}

async fn htmx() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../static/htmx.min.js"),
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/app.css"),
    )
        .into_response()
}

/// What every app page carries: the translator, the CSRF token, who is signed in, and a note
/// or error to show at the top.
pub(crate) struct Frame {
    pub t: Tr,
    pub csrf: String,
    pub username: String,
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
    user: UserRow,
    pub(crate) caller: Caller,
    pub(crate) lang: &'static str,
    csrf: String,
}

impl Person {
    pub(crate) fn role(&self) -> Option<Role> {
        coproduce_app::care::role_of(&self.caller)
    }

    fn side(&self) -> Option<Side> {
        self.role().and_then(Side::of)
    }

    pub(crate) fn frame(
        &self,
        title: String,
        note: Option<String>,
        error: Option<String>,
    ) -> Frame {
        Frame {
            t: Tr::new(self.lang),
            csrf: self.csrf.clone(),
            username: self.user.username.clone(),
            note,
            error,
            title,
        }
    }

    pub(crate) fn t(&self) -> Tr {
        Tr::new(self.lang)
    }
}

/// The language: the person's own choice, else their record's (Patient.communication),
/// else English.
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
    let csrf = csrf_token(session).await.map_err(server_error)?;
    Ok(Person {
        user,
        caller,
        lang: lang.unwrap_or("en"),
        csrf,
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
        _ => {
            tracing::error!(error = %e, "a care page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "error-server")
        }
    };
    render(
        &ErrorPage {
            message: t.t(key),
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
pub(crate) fn refusal(t: &Tr, e: &CareError) -> Option<String> {
    e.message().map(|(key, args)| t.with(key, &args))
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct Note {
    #[serde(default)]
    ok: Option<String>,
}

/// Only known note keys are shown, so a link cannot put words in the page.
const NOTES: &[&str] = &[
    "note-reading-saved",
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
];

pub(crate) fn note(t: &Tr, q: &Note) -> Option<String> {
    q.ok.as_deref()
        .filter(|k| NOTES.contains(k))
        .map(|k| t.t(k))
}

pub(crate) fn back_to(path: &str, note: &str) -> Response {
    Redirect::to(&format!("{path}?ok={note}")).into_response()
}

/// The answer to a change made from a patient's chart: on success back to `back` with the
/// note; on a refusal the person can fix, the chart again with the message (422); otherwise
/// the error page.
async fn after_change(
    s: &AppState,
    p: &Person,
    pid: &str,
    result: Result<(), CareError>,
    back: &str,
    note: &str,
) -> Response {
    match result {
        Ok(()) => back_to(back, note),
        Err(e) => match refusal(&p.t(), &e) {
            Some(msg) => {
                show_chart(s, p, pid, None, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await
            }
            None => failed(&p.t(), e),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Formatting, in the page's language.

pub(crate) fn when(t: OffsetDateTime) -> String {
    let d = t.date();
    format!(
        "{}-{:02}-{:02} {:02}:{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        t.hour(),
        t.minute()
    )
}

pub(crate) fn day(t: OffsetDateTime) -> String {
    when(t).get(..10).unwrap_or_default().to_string()
}

pub(crate) fn value_label(m: Measure, v: &ReadingValue) -> String {
    let unit = m.canonical_unit().label;
    let d = m.decimals();
    match *v {
        ReadingValue::Single(x) => format!("{x:.d$} {unit}"),
        ReadingValue::Pressure {
            systolic,
            diastolic,
        } => format!("{systolic:.0}/{diastolic:.0} {unit}"),
    }
}

fn target_label(t: &Tr, m: Measure, r: TargetRange) -> String {
    let unit = m.canonical_unit().label;
    let n = readings::trim_number;
    match (r.low, r.high) {
        (Some(l), Some(h)) => t.with(
            "target-between",
            &[("low", n(l)), ("high", n(h)), ("unit", unit.into())],
        ),
        (None, Some(h)) => t.with("target-below", &[("value", n(h)), ("unit", unit.into())]),
        (Some(l), None) => t.with("target-above", &[("value", n(l)), ("unit", unit.into())]),
        (None, None) => String::new(),
    }
}

fn measure_title(t: &Tr, m: Measure) -> String {
    t.t(&format!("measure-{}", m.as_str()))
}

fn owner_label(t: &Tr, o: Owner) -> String {
    t.t(&format!("owner-{}", o.as_str()))
}

fn setting_label(t: &Tr, s: Setting) -> String {
    t.t(&format!("setting-{}", s.as_str()))
}

fn state_label(t: &Tr, s: GoalState) -> (String, &'static str) {
    match s {
        GoalState::Awaiting(Side::Team) => (t.t("goal-state-awaiting-team"), "waiting"),
        GoalState::Awaiting(Side::Patient) => (t.t("goal-state-awaiting-patient"), "waiting"),
        GoalState::Agreed => (t.t("goal-state-agreed"), "agreed"),
        GoalState::Declined => (t.t("goal-state-declined"), "declined"),
        GoalState::Closed => (t.t("goal-state-closed"), "closed"),
    }
}

fn hba1c_target_label(t: &Tr, x: HbA1cTarget) -> String {
    let key = match x {
        HbA1cTarget::Tight => "hba1c-target-tight",
        HbA1cTarget::Usual => "hba1c-target-usual",
        HbA1cTarget::Relaxed => "hba1c-target-relaxed",
    };
    t.t(key)
}

// ---------------------------------------------------------------------------------------
// Views.

pub(crate) struct GoalRow {
    id: String,
    text: String,
    state: String,
    state_class: &'static str,
    target: Option<String>,
    /// The caller may answer now.
    can_answer: bool,
    /// The caller is the team, which sets the HbA1c target as it agrees.
    offers_target: bool,
    history: Vec<String>,
}

fn goal_row(t: &Tr, g: &GoalView, side: Option<Side>) -> GoalRow {
    let (state, state_class) = state_label(t, g.state);
    let history = g
        .history
        .iter()
        .map(|e| {
            let what = t.with(&format!("goal-event-{}", e.event), &[("who", e.by.clone())]);
            match &e.words {
                Some(w) if w != "-" => format!("{} · {what}: “{w}”", when(e.at)),
                _ => format!("{} · {what}", when(e.at)),
            }
        })
        .collect();
    GoalRow {
        id: g.id.clone(),
        text: g.text.clone(),
        state,
        state_class,
        target: g
            .target
            .map(|(m, r)| format!("{}: {}", measure_title(t, m), target_label(t, m, r))),
        can_answer: side.is_some_and(|s| g.state == GoalState::Awaiting(s)),
        offers_target: side == Some(Side::Team),
        history,
    }
}

pub(crate) struct ActivityRow {
    index: usize,
    text: String,
    owner: String,
    setting: String,
    due: String,
    overdue: bool,
    finished: bool,
    can_mark_done: bool,
    last_done: Option<String>,
}

fn activity_row(t: &Tr, a: &ActivityView, role: Option<Role>, now: OffsetDateTime) -> ActivityRow {
    let due = match (a.facts.schedule, a.facts.next_due()) {
        (_, None) => t.t("activity-done-label"),
        (Schedule::Every(c), Some(d)) => {
            let (n, unit) = c.fhir();
            t.with(
                "activity-every",
                &[
                    ("n", n.to_string()),
                    ("unit", t.t(&format!("cadence-{unit}"))),
                    ("due", day(d)),
                ],
            )
        }
        (Schedule::By(_), Some(d)) => t.with("activity-by", &[("due", day(d))]),
    };
    ActivityRow {
        index: a.index,
        text: a.text.clone(),
        owner: owner_label(t, a.owner()),
        setting: setting_label(t, a.setting),
        due,
        overdue: a.facts.overdue(now),
        finished: a.facts.finished,
        can_mark_done: !a.facts.finished && role.is_some_and(|r| a.owner().may_be_done_by(r)),
        last_done: a.facts.last_done.map(day),
    }
}

pub(crate) struct MeasureCard {
    key: &'static str,
    title: String,
    latest: Option<String>,
    latest_when: Option<String>,
    standing: Option<String>,
    standing_class: &'static str,
    target: Option<String>,
    chart: String,
    alt: String,
}

fn standing_of(
    s: &AppState,
    chart: &Chart,
    m: Measure,
    v: &ReadingValue,
) -> Option<(bool, TargetRange)> {
    let own = chart.own_target(m);
    let target = own.or_else(|| s.care.targets.for_measure(m))?;
    Some((!s.care.targets.out_of_range(m, v, own), target))
}

fn measure_card(s: &AppState, t: &Tr, chart: &Chart, m: Measure, with_chart: bool) -> MeasureCard {
    let rs: Vec<&Reading> = chart.readings_of(m).collect();
    let latest = rs.iter().max_by_key(|r| r.at).copied();
    let title = measure_title(t, m);
    let target = chart
        .own_target(m)
        .or_else(|| s.care.targets.for_measure(m));
    let (standing, standing_class) = match latest.and_then(|r| standing_of(s, chart, m, &r.value)) {
        Some((true, _)) => (Some(t.t("standing-in-range")), "in-range"),
        Some((false, _)) => (Some(t.t("standing-out-of-range")), "out-of-range"),
        None => (None, ""),
    };
    let svg = if with_chart && rs.len() > 1 {
        charts::trend(
            m,
            &rs,
            target,
            &TrendLabels {
                title: title.clone(),
                unit: m.canonical_unit().label.to_string(),
                date: t.t("chart-date"),
            },
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "a chart failed to draw");
            String::new()
        })
    } else {
        String::new()
    };
    let alt = match (rs.first(), rs.last(), latest) {
        (Some(a), Some(b), Some(l)) if rs.len() > 1 => {
            let (from, to) = if a.at < b.at { (a, b) } else { (b, a) };
            let values: Vec<f64> = rs.iter().map(|r| r.value.headline()).collect();
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            t.with(
                "chart-alt",
                &[
                    ("title", title.clone()),
                    ("n", rs.len().to_string()),
                    ("from", day(from.at)),
                    ("to", day(to.at)),
                    ("low", format!("{lo:.prec$}", prec = m.decimals())),
                    ("high", format!("{hi:.prec$}", prec = m.decimals())),
                    ("latest", value_label(m, &l.value)),
                    ("unit", m.canonical_unit().label.to_string()),
                    (
                        "target",
                        target.map(|r| target_label(t, m, r)).unwrap_or_default(),
                    ),
                ],
            )
        }
        _ => String::new(),
    };
    MeasureCard {
        key: m.as_str(),
        title,
        latest: latest.map(|r| value_label(m, &r.value)),
        latest_when: latest.map(|r| when(r.at)),
        standing,
        standing_class,
        target: target.map(|r| target_label(t, m, r)),
        chart: svg,
        alt,
    }
}

pub(crate) struct Choice {
    value: String,
    label: String,
}

fn owners_for(t: &Tr, side: Option<Side>) -> Vec<Choice> {
    Owner::all()
        .into_iter()
        .filter(|o| side.is_some_and(|s| o.may_be_added_by(s)))
        .map(|o| Choice {
            value: o.as_str().into(),
            label: owner_label(t, o),
        })
        .collect()
}

fn settings(t: &Tr) -> Vec<Choice> {
    Setting::ALL
        .into_iter()
        .map(|x| Choice {
            value: x.as_str().into(),
            label: setting_label(t, x),
        })
        .collect()
}

fn hba1c_targets(t: &Tr) -> Vec<Choice> {
    HbA1cTarget::ALL
        .into_iter()
        .map(|x| Choice {
            value: x.as_str().into(),
            label: hba1c_target_label(t, x),
        })
        .collect()
}

fn notifications(t: &Tr, chart: &Chart, side: Option<Side>, now: OffsetDateTime) -> Vec<String> {
    let mut out = Vec::new();
    let recent = |at: OffsetDateTime| now - at < time::Duration::days(30);
    if side == Some(Side::Patient) {
        for g in &chart.goals {
            if g.state == GoalState::Awaiting(Side::Patient) {
                out.push(t.with("notify-goal-waiting", &[("goal", g.text.clone())]));
            }
            if let Some(last) = g.history.last()
                && recent(last.at)
                && last.event == "agreed"
                && g.state == GoalState::Agreed
                // The team agreed to what the patient's side proposed: news for them.
                && g.proposed_by_side == Some(Side::Patient)
            {
                out.push(t.with(
                    "notify-goal-agreed",
                    &[("goal", g.text.clone()), ("who", last.by.clone())],
                ));
            }
        }
        for r in &chart.readings {
            if let Some(rv) = &r.review
                && recent(rv.at)
                && let Some(c) = &rv.comment
            {
                out.push(t.with(
                    "notify-reviewed",
                    &[
                        ("measure", measure_title(t, r.measure)),
                        ("value", value_label(r.measure, &r.value)),
                        ("who", rv.by.clone()),
                        ("comment", c.clone()),
                    ],
                ));
            }
        }
    }
    out
}

#[derive(Template)]
#[template(path = "chart.html")]
pub(crate) struct ChartPage {
    f: Frame,
    pid: String,
    name: String,
    /// The patient's own home (not someone else's view of the chart).
    own: bool,
    team: bool,
    notifications: Vec<String>,
    rescue: Option<crate::rescue_pages::RescueBox>,
    goals: Vec<GoalRow>,
    activities: Vec<ActivityRow>,
    cards: Vec<MeasureCard>,
    care_team: Vec<(String, String)>,
    tasks: Vec<String>,
    owners: Vec<Choice>,
    settings: Vec<Choice>,
    targets: Vec<Choice>,
    goal_text: String,
}

async fn chart_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
    error: Option<String>,
) -> Result<ChartPage, CareError> {
    let t = p.t();
    let chart = s.care.chart(&p.caller, pid).await?;
    let now = s.care.now();
    let own = coproduce_app::Care::own_patient(&p.caller).as_deref() == Some(pid);
    let side = p.side();
    let title = if own {
        t.t("home-title")
    } else {
        chart.name.clone()
    };
    let mut notes = notifications(&t, &chart, side, now);
    if own {
        notes.extend(
            crate::rescue_pages::inbox_lines(s, p, 20)
                .await?
                .into_iter()
                .filter(|n| n.unread)
                .map(|n| format!("{} · {}", n.at, n.text)),
        );
    }
    Ok(ChartPage {
        rescue: crate::rescue_pages::rescue_box(s, p, pid).await?,
        notifications: notes,
        goals: chart.goals.iter().map(|g| goal_row(&t, g, side)).collect(),
        activities: chart
            .activities
            .iter()
            .map(|a| activity_row(&t, a, p.role(), now))
            .collect(),
        cards: Measure::ALL
            .into_iter()
            .map(|m| measure_card(s, &t, &chart, m, true))
            .collect(),
        care_team: chart
            .team
            .iter()
            .map(|(who, role)| {
                let role = match Owner::parse(role) {
                    Some(o) => owner_label(&t, o),
                    None => role.clone(),
                };
                (who.clone(), role)
            })
            .collect(),
        tasks: chart
            .tasks
            .iter()
            .map(|x| format!("{} · {}", x.what, x.due.map(day).unwrap_or_default()))
            .collect(),
        owners: owners_for(&t, side),
        settings: settings(&t),
        targets: hba1c_targets(&t),
        goal_text: String::new(),
        f: p.frame(title, note, error),
        pid: pid.to_string(),
        name: chart.name,
        own,
        team: side == Some(Side::Team),
    })
}

async fn show_chart(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    match chart_view(s, p, pid, note, error).await {
        Ok(page) => render(&page, status),
        Err(e) => failed(&p.t(), e),
    }
}

#[derive(Template)]
#[template(path = "team_home.html")]
pub(crate) struct TeamHome {
    f: Frame,
    panel_size: usize,
    readings_total: usize,
    distribution: String,
    distribution_alt: String,
    readings: Vec<FlagRow>,
    goals: Vec<(String, String, String)>,
    activities: Vec<(String, String, String, String)>,
    tasks: Vec<(String, String, String, String, bool)>,
    panel: Vec<(String, String)>,
}

/// At most this many readings are listed on the team home.
const TEAM_ROWS: usize = 200;

pub(crate) struct FlagRow {
    pid: String,
    patient: String,
    id: String,
    measure: String,
    value: String,
    at: String,
    by: String,
    flags: Vec<(String, &'static str)>,
}

/// Renders the team home for a team member (the benchmark calls this too).
pub async fn team_home_html(
    s: &AppState,
    caller: &Caller,
    lang: &str,
) -> Result<String, CareError> {
    let t = Tr::new(lang);
    let page = team_home_view(s, caller, &t, String::new(), String::new(), None).await?;
    page.render()
        .map_err(|e| CareError::App(AppError::Internal(e.to_string())))
}

async fn team_home_view(
    s: &AppState,
    caller: &Caller,
    t: &Tr,
    csrf: String,
    username: String,
    note: Option<String>,
) -> Result<TeamHome, CareError> {
    let a = s.care.attention(caller).await?;
    let now = s.care.now();
    let counts = charts::band_counts(&a.latest_hba1c);
    let distribution_alt = t.with(
        "team-distribution-alt",
        &[
            ("n", a.latest_hba1c.len().to_string()),
            (
                "bands",
                charts::HBA1C_BANDS
                    .iter()
                    .zip(&counts)
                    .map(|((_, _, label), c)| format!("{label} %: {c}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ],
    );
    let distribution = if a.latest_hba1c.is_empty() {
        String::new()
    } else {
        charts::hba1c_distribution(
            &a.latest_hba1c,
            &t.t("team-distribution-title"),
            &t.t("team-patients"),
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "a chart failed to draw");
            String::new()
        })
    };
    // Glucose readings while on a rescue pack's steroid are flagged for the team.
    let steroid = s.rescue.steroid_windows(caller).await?;
    // Flagged first; a long list is cut, with its full count in the heading.
    let readings = a
        .readings
        .iter()
        .take(TEAM_ROWS)
        .map(|f| {
            let r = &f.reading;
            let mut flags = vec![(t.t("flag-unreviewed"), "unreviewed")];
            if f.overdue {
                flags.push((t.t("flag-review-overdue"), "overdue"));
            }
            if f.out_of_range {
                flags.push((t.t("flag-out-of-range"), "out-of-range"));
            }
            if r.measure == Measure::Glucose
                && steroid
                    .iter()
                    .any(|(p, from, to)| *p == r.patient && *from <= r.at && r.at <= *to)
            {
                flags.push((t.t("flag-steroid"), "steroid"));
            }
            FlagRow {
                pid: r.patient.clone(),
                patient: a.name_of(&r.patient).to_string(),
                id: r.id.clone(),
                measure: measure_title(t, r.measure),
                value: value_label(r.measure, &r.value),
                at: when(r.at),
                by: r.by.clone(),
                flags,
            }
        })
        .collect();
    Ok(TeamHome {
        f: Frame {
            t: t.clone(),
            csrf,
            username,
            note,
            error: None,
            title: t.t("team-home-title"),
        },
        panel_size: a.panel.len(),
        readings_total: a.readings.len(),
        distribution,
        distribution_alt,
        readings,
        goals: a
            .goals
            .iter()
            .map(|g| {
                (
                    g.patient.clone(),
                    a.name_of(&g.patient).to_string(),
                    g.text.clone(),
                )
            })
            .collect(),
        activities: a
            .activities
            .iter()
            .map(|x| {
                (
                    x.patient.clone(),
                    a.name_of(&x.patient).to_string(),
                    x.text.clone(),
                    x.facts.next_due().map(day).unwrap_or_default(),
                )
            })
            .collect(),
        tasks: a
            .tasks
            .iter()
            .map(|x| {
                (
                    x.patient.clone(),
                    a.name_of(&x.patient).to_string(),
                    x.what.clone(),
                    x.due.map(day).unwrap_or_default(),
                    x.due.is_some_and(|d| d < now),
                )
            })
            .collect(),
        panel: a.panel,
    })
}

#[derive(Template)]
#[template(path = "family_home.html")]
struct FamilyHome {
    f: Frame,
    patients: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "account.html")]
pub(crate) struct AccountPage {
    f: Frame,
    signed_in_as: String,
    /// Whether the account has a record to be told about (and so an email preference).
    can_email: bool,
    email: String,
}

async fn home(State(s): State<AppState>, session: Session, Query(q): Query<Note>) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let note = note(&t, &q);
    match &p.caller.actor.who {
        Who::Patient { patient } => {
            let pid = patient.clone();
            show_chart(&s, &p, &pid, note, None, StatusCode::OK).await
        }
        Who::Family { .. } => match s.care.patients(&p.caller).await {
            Ok(patients) => render(
                &FamilyHome {
                    f: p.frame(t.t("family-home-title"), note, None),
                    patients,
                },
                StatusCode::OK,
            ),
            Err(e) => failed(&t, e),
        },
        Who::TeamMember { .. } => {
            match team_home_view(
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
        Who::Analyst => crate::analyst_pages::show(&s, &p).await,
        _ => account_page(&s, &session, None, StatusCode::OK).await,
    }
}

#[derive(Debug, Deserialize)]
struct LanguageForm {
    csrf: String,
    lang: String,
    #[serde(default)]
    back: String,
}

impl WithCsrf for LanguageForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Only our own paths: never an open redirect.
fn safe_back(back: &str) -> &str {
    let path = back.split(['?', '#']).next().unwrap_or_default();
    // Browsers drop tabs and newlines from a URL and read `\` as `/`, so `/\t/evil.com`
    // would leave the site: only a plain path on this site is followed.
    let same_site = path.starts_with('/')
        && !path.starts_with("//")
        && path
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '\\');
    if same_site { path } else { "/" }
}

async fn set_language(
    State(s): State<AppState>,
    session: Session,
    form: Result<Form<LanguageForm>, FormRejection>,
) -> Response {
    let (user, f) = match checked_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let Some(lang) = supported(&f.lang) else {
        return unreadable();
    };
    if let Err(e) = s.accounts.set_language(&user, lang).await {
        return server_error(e);
    }
    back_to(safe_back(&f.back), "note-language")
}

async fn chart_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let note = note(&p.t(), &q);
    show_chart(&s, &p, &pid, note, None, StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "measure.html")]
struct MeasurePage {
    f: Frame,
    pid: String,
    name: String,
    card: MeasureCard,
    two_values: bool,
    units: Vec<Choice>,
    rows: Vec<ReadingRow>,
    team: bool,
    entered: EnteredReading,
}

#[derive(Debug, Default, Clone)]
struct EnteredReading {
    value: String,
    value2: String,
    unit: String,
    at: String,
}

struct ReadingRow {
    id: String,
    at: String,
    value: String,
    by: String,
    unreviewed: bool,
    review: Option<String>,
    comment: Option<String>,
    standing_class: &'static str,
}

async fn measure_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    m: Measure,
    note: Option<String>,
    error: Option<String>,
    entered: EnteredReading,
) -> Result<MeasurePage, CareError> {
    let t = p.t();
    let chart = s.care.chart(&p.caller, pid).await?;
    let card = measure_card(s, &t, &chart, m, true);
    let mut rows: Vec<ReadingRow> = chart
        .readings_of(m)
        .map(|r| ReadingRow {
            id: r.id.clone(),
            at: when(r.at),
            value: value_label(m, &r.value),
            by: r.by.clone(),
            unreviewed: r.unreviewed,
            review: r.review.as_ref().map(|rv| {
                t.with(
                    "reviewed-by",
                    &[("who", rv.by.clone()), ("when", when(rv.at))],
                )
            }),
            comment: r.review.as_ref().and_then(|rv| rv.comment.clone()),
            standing_class: match standing_of(s, &chart, m, &r.value) {
                Some((true, _)) => "in-range",
                Some((false, _)) => "out-of-range",
                None => "",
            },
        })
        .collect();
    rows.truncate(200);
    Ok(MeasurePage {
        f: p.frame(card.title.clone(), note, error),
        pid: pid.to_string(),
        name: chart.name,
        two_values: m == Measure::BloodPressure,
        units: m
            .units()
            .iter()
            .map(|u| Choice {
                value: u.ucum.into(),
                label: u.label.into(),
            })
            .collect(),
        card,
        rows,
        team: p.side() == Some(Side::Team),
        entered,
    })
}

async fn measure_page(
    State(s): State<AppState>,
    session: Session,
    Path((pid, measure)): Path<(String, String)>,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let Some(m) = Measure::parse(&measure) else {
        return failed(&t, CareError::App(AppError::NotFound(measure)));
    };
    let note = note(&t, &q);
    match measure_view(&s, &p, &pid, m, note, None, EnteredReading::default()).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => failed(&t, e),
    }
}

#[derive(Debug, Deserialize)]
struct ReadingForm {
    csrf: String,
    measure: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    value2: String,
    #[serde(default)]
    unit: String,
    /// A datetime-local value ("2026-11-20T08:30"); empty means now.
    #[serde(default)]
    at: String,
}

impl WithCsrf for ReadingForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn parse_local(s: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let s = s.trim();
    if s.is_empty() {
        return Some(now);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|p| p.assume_utc())
}

async fn add_reading(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<ReadingForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let t = p.t();
    let Some(m) = Measure::parse(&f.measure) else {
        return unreadable();
    };
    let entered = EnteredReading {
        value: f.value.clone(),
        value2: f.value2.clone(),
        unit: f.unit.clone(),
        at: f.at.clone(),
    };
    let again = |e: String| {
        let (s, p, pid, entered) = (&s, &p, &pid, entered.clone());
        async move {
            match measure_view(s, p, pid, m, None, Some(e), entered).await {
                Ok(page) => render(&page, StatusCode::UNPROCESSABLE_ENTITY),
                Err(e) => failed(&p.t(), e),
            }
        }
    };
    let mut values = Vec::new();
    for v in [&f.value, &f.value2]
        .into_iter()
        .take(if m == Measure::BloodPressure { 2 } else { 1 })
    {
        match parse_number(v) {
            Ok(x) => values.push(x),
            Err(e) => return again(t.with(e.key(), &e.args())).await,
        }
    }
    let Some(at) = parse_local(&f.at, s.care.now()) else {
        return again(t.t("reading-bad-time")).await;
    };
    let r = NewReading {
        measure: m,
        values,
        unit: f.unit.clone(),
        at,
    };
    match s.care.record_reading(&p.caller, &pid, &r).await {
        Ok(_) => back_to(
            &format!("/patients/{pid}/readings/{}", m.as_str()),
            "note-reading-saved",
        ),
        Err(e) => match refusal(&t, &e) {
            Some(msg) => again(msg).await,
            None => failed(&t, e),
        },
    }
}

async fn upload_readings(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(mut multipart) = multipart else {
        return unreadable();
    };
    let mut csrf = String::new();
    let mut file = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                match field.bytes().await {
                    Ok(b) if name == "csrf" => csrf = String::from_utf8_lossy(&b).into_owned(),
                    Ok(b) if name == "file" => file = b.to_vec(),
                    Ok(_) => {}
                    Err(_) => return unreadable(),
                }
            }
            Ok(None) => break,
            Err(_) => return unreadable(),
        }
    }
    if !csrf_ok(&session, &csrf).await {
        return csrf_refused();
    }
    let result = match parse_csv(&file, s.care.now()) {
        Ok(rows) => s.care.record_readings(&p.caller, &pid, &rows).await,
        Err(e) => Err(e),
    };
    let result = result.map(|_| ());
    after_change(
        &s,
        &p,
        &pid,
        result,
        &format!("/patients/{pid}"),
        "note-readings-uploaded",
    )
    .await
}

async fn export_readings(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = async {
        let chart = s.care.chart(&p.caller, &pid).await?;
        readings_csv(&chart.readings)
    }
    .await;
    match result {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"readings-{pid}.csv\""),
                ),
            ],
            text,
        )
            .into_response(),
        Err(e) => failed(&p.t(), e),
    }
}

#[derive(Debug, Deserialize)]
struct ReviewForm {
    csrf: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    back: String,
}

impl WithCsrf for ReviewForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn review(
    State(s): State<AppState>,
    session: Session,
    Path((pid, oid)): Path<(String, String)>,
    form: Result<Form<ReviewForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let result = s
        .care
        .review_reading(&p.caller, &pid, &oid, &f.comment)
        .await
        .map(|_| ());
    after_change(&s, &p, &pid, result, safe_back(&f.back), "note-reviewed").await
}

#[derive(Debug, Deserialize)]
struct GoalForm {
    csrf: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    target: String,
}

impl WithCsrf for GoalForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn propose_goal(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<GoalForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let t = p.t();
    let target = HbA1cTarget::parse(&f.target);
    match s.care.propose_goal(&p.caller, &pid, &f.text, target).await {
        Ok(_) => back_to(&format!("/patients/{pid}"), "note-goal-proposed"),
        Err(e) => match refusal(&t, &e) {
            Some(msg) => match chart_view(&s, &p, &pid, None, Some(msg)).await {
                Ok(mut page) => {
                    page.goal_text = f.text;
                    render(&page, StatusCode::UNPROCESSABLE_ENTITY)
                }
                Err(e) => failed(&t, e),
            },
            None => failed(&t, e),
        },
    }
}

#[derive(Debug, Deserialize)]
struct AnswerForm {
    csrf: String,
    answer: String,
    #[serde(default)]
    words: String,
    #[serde(default)]
    target: String,
}

impl WithCsrf for AnswerForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn answer_goal(
    State(s): State<AppState>,
    session: Session,
    Path((pid, gid)): Path<(String, String)>,
    form: Result<Form<AnswerForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let answer = match f.answer.as_str() {
        "agree" => GoalAnswer::Agree,
        "change" => GoalAnswer::SuggestChange(f.words.clone()),
        "decline" => GoalAnswer::Decline(f.words.clone()),
        _ => return unreadable(),
    };
    let target = HbA1cTarget::parse(&f.target);
    let result = s
        .care
        .answer_goal(&p.caller, &pid, &gid, answer, target)
        .await
        .map(|_| ());
    let back = format!("/patients/{pid}");
    after_change(&s, &p, &pid, result, &back, "note-goal-answered").await
}

#[derive(Debug, Deserialize)]
struct ActivityForm {
    csrf: String,
    text: String,
    owner: String,
    setting: String,
    /// "once" (with `due`) or a cadence: "d", "wk", "mo" (with `every`).
    when: String,
    #[serde(default)]
    due: String,
    #[serde(default)]
    every: String,
}

impl WithCsrf for ActivityForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn add_activity(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<ActivityForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let t = p.t();
    let (Some(owner), Some(setting)) = (Owner::parse(&f.owner), Setting::parse(&f.setting)) else {
        return unreadable();
    };
    let schedule = if f.when == "once" {
        let date = time::Date::parse(
            f.due.trim(),
            &time::macros::format_description!("[year]-[month]-[day]"),
        );
        match date {
            Ok(d) => Schedule::By(
                d.with_hms(23, 59, 0)
                    .map(|x| x.assume_utc())
                    .unwrap_or(s.care.now()),
            ),
            Err(_) => {
                return show_chart(
                    &s,
                    &p,
                    &pid,
                    None,
                    Some(t.t("activity-bad-date")),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        }
    } else {
        let n: u32 = f.every.trim().parse().unwrap_or(0);
        match Cadence::from_fhir(n, &f.when) {
            Some(c) => Schedule::Every(c),
            None => {
                return show_chart(
                    &s,
                    &p,
                    &pid,
                    None,
                    Some(t.t("activity-bad-cadence")),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        }
    };
    let a = NewActivity {
        text: f.text,
        owner,
        setting,
        schedule,
    };
    let result = s.care.add_activity(&p.caller, &pid, &a).await.map(|_| ());
    after_change(
        &s,
        &p,
        &pid,
        result,
        &format!("/patients/{pid}"),
        "note-activity-added",
    )
    .await
}

async fn activity_done(
    State(s): State<AppState>,
    session: Session,
    Path((pid, index)): Path<(String, String)>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let (p, _) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let t = p.t();
    let Ok(index) = index.parse::<usize>() else {
        return failed(
            &t,
            CareError::App(AppError::NotFound(format!("activity {index}"))),
        );
    };
    let result = s.care.mark_done(&p.caller, &pid, index).await;
    after_change(
        &s,
        &p,
        &pid,
        result,
        &format!("/patients/{pid}"),
        "note-activity-done",
    )
    .await
}

#[derive(Template)]
#[template(path = "summary.html")]
struct SummaryPage {
    f: Frame,
    printed: String,
    goals: Vec<GoalRow>,
    cards: Vec<MeasureCard>,
    recent: HashMap<&'static str, Vec<(String, String)>>,
    patient_side: Vec<ActivityRow>,
    team_side: Vec<ActivityRow>,
}

impl SummaryPage {
    fn recent_of(&self, key: &str) -> &[(String, String)] {
        self.recent.get(key).map_or(&[], Vec::as_slice)
    }
}

async fn summary_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let chart = match s.care.chart(&p.caller, &pid).await {
        Ok(c) => c,
        Err(e) => return failed(&t, e),
    };
    let now = s.care.now();
    let since = now - time::Duration::days(90);
    let cards: Vec<MeasureCard> = Measure::ALL
        .into_iter()
        .filter(|m| chart.readings_of(*m).any(|r| r.at >= since))
        .map(|m| measure_card(&s, &t, &chart, m, true))
        .collect();
    let mut recent = HashMap::new();
    for m in Measure::ALL {
        let mut rs: Vec<&Reading> = chart.readings_of(m).filter(|r| r.at >= since).collect();
        rs.sort_by_key(|r| std::cmp::Reverse(r.at));
        recent.insert(
            m.as_str(),
            rs.into_iter()
                .take(5)
                .map(|r| (when(r.at), value_label(m, &r.value)))
                .collect(),
        );
    }
    let open: Vec<ActivityRow> = chart
        .activities
        .iter()
        .filter(|a| !a.facts.finished)
        .map(|a| activity_row(&t, a, None, now))
        .collect();
    let (patient_side, team_side) = open.into_iter().partition(|a| {
        chart
            .activities
            .iter()
            .find(|x| x.index == a.index)
            .is_some_and(|x| x.owner().side() == Side::Patient)
    });
    render(
        &SummaryPage {
            f: p.frame(
                t.with("summary-title", &[("name", chart.name.clone())]),
                None,
                None,
            ),
            printed: when(now),
            goals: chart
                .goals
                .iter()
                .filter(|g| g.state != GoalState::Declined)
                .map(|g| goal_row(&t, g, None))
                .collect(),
            cards,
            recent,
            patient_side,
            team_side,
        },
        StatusCode::OK,
    )
}

/// The account page (sign out, password), with the outcome of a password change: the number
/// of other sessions ended, or why it was refused.
pub(crate) async fn account_page(
    s: &AppState,
    session: &Session,
    changed: Option<Result<u64, String>>,
    status: StatusCode,
) -> Response {
    let p = match person(s, session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let (note, error) = match changed {
        Some(Ok(n)) => (
            Some(t.count("account-password-changed", "n", n as usize)),
            None,
        ),
        Some(Err(why)) => (
            None,
            Some(t.arg("account-password-not-changed", "why", &why)),
        ),
        None => (None, None),
    };
    account_with(s, &p, note, error, status).await
}

/// The account page with a note or an error at the top.
pub(crate) async fn account_with(
    s: &AppState,
    p: &Person,
    note: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let t = p.t();
    let email = match s.notifier.email(&p.caller).await {
        Ok(e) => e.unwrap_or_default(),
        Err(e) => return failed(&t, CareError::App(e)),
    };
    render(
        &AccountPage {
            signed_in_as: t.with(
                "account-signed-in-as",
                &[
                    ("name", p.user.username.clone()),
                    ("roles", p.user.roles.clone()),
                ],
            ),
            can_email: p.caller.fhir_ref.is_some(),
            email,
            f: p.frame(t.t("account-title"), note, error),
        },
        status,
    )
}
