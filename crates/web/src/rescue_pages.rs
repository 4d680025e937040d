//! The rescue-pack pages: the patient's action plan and pack (start it within three taps of
//! home: the button, a symptom, "Start"), the check-in as one question, the team's actions on
//! a pack (eligibility, teach-back, dispensing, contact, check-in, outcome, replacement), the
//! team's list of open episodes with their deadlines, and the notifications inbox.

use crate::AppState;
use crate::care_pages::{
    Frame, Note, Person, back_to, failed, note, person, person_form, refusal, when,
};
use crate::i18n::Tr;
use crate::pages::{WithCsrf, render};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use coproduce_app::CareError;
use coproduce_app::rescue::{DeadlineView, PackView};
use coproduce_core::access::{Role, Who};
use coproduce_core::rescue::{CheckIn, Event, Item, Outcome, Stage, TaskKind};
use serde::Deserialize;
use time::{Date, OffsetDateTime};
use tower_sessions::Session;

pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/patients/{pid}/rescue-pack", get(pack_page), false),
        (
            "/patients/{pid}/rescue-pack/start",
            get(start_page).post(start),
            false,
        ),
        (
            "/patients/{pid}/rescue-pack/check-in",
            post(check_in),
            false,
        ),
        ("/patients/{pid}/rescue-pack/record", post(record), false),
        ("/patients/{pid}/action-plan", post(personalise), false),
        ("/team/rescue-packs", get(episodes_page), false),
        ("/notifications", get(inbox_page), false),
        ("/notifications/{id}/read", post(mark_read), false),
        ("/account/notifications", post(set_email), false),
    ]
}

/// A line on the pack's history.
struct EventLine {
    at: String,
    text: String,
}

/// An open deadline as the team sees it.
struct DeadlineLine {
    what: String,
    role: String,
    due: String,
    standing: &'static str,
    standing_label: String,
}

#[derive(Template)]
#[template(path = "rescue_pack.html")]
struct PackPage {
    f: Frame,
    pid: String,
    name: String,
    team: bool,
    title: String,
    /// Key, heading, text, emergency, and the clinician's note for this patient.
    zones: Vec<(String, String, String, bool, String)>,
    can_personalise: bool,
    stage: String,
    stage_class: &'static str,
    status: Vec<String>,
    can_start: bool,
    check_in: bool,
    not_better: bool,
    history: Vec<EventLine>,
    deadlines: Vec<DeadlineLine>,
    /// Which team forms to show.
    can_eligible: bool,
    can_teach: bool,
    can_dispense: bool,
    can_contact: bool,
    can_team_check_in: bool,
    can_outcome: bool,
    can_replace: bool,
    drugs: Vec<(String, String)>,
    outcomes: Vec<(String, String)>,
    checkins: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "rescue_start.html")]
struct StartPage {
    f: Frame,
    pid: String,
    symptoms: Vec<(String, String)>,
    drugs: Vec<(String, String)>,
    red: String,
}

#[derive(Template)]
#[template(path = "rescue_episodes.html")]
struct EpisodesPage {
    f: Frame,
    episodes: Vec<EpisodeRow>,
    missed: usize,
    checkins: Vec<(String, String)>,
}

struct EpisodeRow {
    pid: String,
    patient: String,
    started: String,
    deadlines: Vec<DeadlineLine>,
    contacted: bool,
    checked_in: Option<String>,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    f: Frame,
    rows: Vec<InboxLine>,
}

fn standing_label(t: &Tr, d: &DeadlineView) -> (&'static str, String) {
    if !d.open {
        return ("done", t.t("deadline-done"));
    }
    let s = d.standing.as_str();
    (s, t.t(&format!("deadline-{s}")))
}

fn deadline_line(t: &Tr, d: &DeadlineView) -> DeadlineLine {
    let (standing, standing_label) = standing_label(t, d);
    DeadlineLine {
        what: t.t(&format!("task-{}", d.kind.as_str())),
        role: t.t(&format!("owner-{}", d.deadline.role.as_str())),
        due: when(d.deadline.due),
        standing,
        standing_label,
    }
}

/// Choices for a form: each value with its label (the message `{prefix}-{value}`).
fn choices<const N: usize>(t: &Tr, prefix: &str, values: [&str; N]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|v| (v.to_string(), t.t(&format!("{prefix}-{v}"))))
        .collect()
}

fn stage_label(t: &Tr, s: Stage) -> (String, &'static str) {
    let (key, class) = match s {
        Stage::New => ("rescue-stage-new", "waiting"),
        Stage::Eligible => ("rescue-stage-eligible", "waiting"),
        Stage::Taught => ("rescue-stage-taught", "waiting"),
        Stage::Ready => ("rescue-stage-ready", "agreed"),
        Stage::Expired => ("rescue-stage-expired", "late"),
        Stage::Started => ("rescue-stage-started", "late"),
        Stage::Closed => ("rescue-stage-closed", "closed"),
        Stage::Replaced => ("rescue-stage-replaced", "closed"),
    };
    (t.t(key), class)
}

fn history(s: &AppState, t: &Tr, v: &PackView) -> Vec<EventLine> {
    let p = &s.rescue.protocol;
    let lang = t.lang;
    v.pack
        .events
        .iter()
        .map(|r| {
            let who = t.t(&format!("owner-{}", r.by.role.as_str()));
            let text = match &r.event {
                Event::Eligible { reason } => t.with(
                    "rescue-event-eligible",
                    &[("who", who), ("reason", reason.clone())],
                ),
                Event::TaughtBack => t.arg("rescue-event-taught-back", "who", &who),
                Event::Dispensed { items } | Event::Replaced { items } => {
                    let list = items
                        .iter()
                        .map(|i| {
                            t.with(
                                "rescue-item",
                                &[
                                    (
                                        "drug",
                                        p.drug(&i.drug).map_or(i.drug.clone(), |d| {
                                            d.text.get(lang).to_string()
                                        }),
                                    ),
                                    ("date", i.expires.to_string()),
                                ],
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    let key = if matches!(r.event, Event::Replaced { .. }) {
                        "rescue-event-replaced"
                    } else {
                        "rescue-event-dispensed"
                    };
                    t.with(key, &[("who", who), ("items", list)])
                }
                Event::Started {
                    symptoms, since, ..
                } => t.with(
                    "rescue-event-started",
                    &[
                        ("who", who),
                        (
                            "symptoms",
                            symptoms
                                .iter()
                                .map(|k| {
                                    p.symptom(k)
                                        .map_or(k.clone(), |x| x.text.get(lang).to_string())
                                })
                                .collect::<Vec<_>>()
                                .join(", "),
                        ),
                        ("since", when(*since)),
                    ],
                ),
                Event::Contacted { note } => t.with(
                    "rescue-event-contacted",
                    &[("who", who), ("note", note.clone())],
                ),
                Event::CheckedIn { answer } => t.with(
                    "rescue-event-checked-in",
                    &[
                        ("who", who),
                        ("answer", t.t(&format!("checkin-{}", answer.as_str()))),
                    ],
                ),
                Event::Outcome { outcome } => t.with(
                    "rescue-event-outcome",
                    &[
                        ("who", who),
                        ("outcome", t.t(&format!("outcome-{}", outcome.as_str()))),
                    ],
                ),
                Event::Expired => t.t("rescue-event-expired"),
            };
            EventLine {
                at: when(r.at),
                text,
            }
        })
        .collect()
}

/// What the patient's side reads about their pack now.
fn status_lines(t: &Tr, v: &PackView, now: OffsetDateTime) -> Vec<String> {
    let mut out = Vec::new();
    match v.stage {
        Stage::New | Stage::Eligible | Stage::Taught => out.push(t.t("rescue-status-preparing")),
        Stage::Ready => {
            if let Some(e) = v.pack.expires() {
                out.push(t.arg("rescue-status-ready", "date", &e.to_string()));
            }
        }
        Stage::Expired => out.push(t.t("rescue-status-expired")),
        Stage::Started => {
            if v.pack
                .is_expired_on(v.pack.started_at().map_or(now, |s| s).date())
            {
                out.push(t.t("notice-rescue-pack-started-expired"));
            }
            match v.pack.contact() {
                Some(c) => out.push(t.arg("rescue-status-contacted", "at", &when(c.at))),
                None => {
                    if let Some(d) = v.deadline(TaskKind::Contact) {
                        out.push(t.arg("rescue-status-will-call", "due", &when(d.deadline.due)));
                    }
                }
            }
            out.push(t.t("rescue-status-take"));
            match v.pack.check_in() {
                Some((CheckIn::Better, _)) => out.push(t.t("rescue-better")),
                Some(_) => out.push(t.t("rescue-not-better")),
                None => {}
            }
        }
        Stage::Closed | Stage::Replaced => out.push(t.t("rescue-status-closed")),
    }
    out
}

async fn pack_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
    error: Option<String>,
) -> Result<PackPage, CareError> {
    let t = p.t();
    let chart = s.care.chart(&p.caller, pid).await?;
    let current = s.rescue.active(&p.caller, pid).await?;
    let in_hand_ready = ready_in_hand(s, p, pid).await?;
    let now = s.rescue.now();
    let role = p.role();
    let team = role.is_some_and(Role::is_team);
    let own_side = matches!(role, Some(Role::Patient | Role::Family));
    let rules = &s.rescue.protocol.rules;
    let lang = t.lang;
    let proto = &s.rescue.protocol;
    let personal = s
        .rescue
        .action_plan(&p.caller, pid)
        .await?
        .map(|(_, _, notes)| notes)
        .unwrap_or_default();
    let zones = proto
        .zones
        .iter()
        .map(|z| {
            (
                z.key.clone(),
                z.heading.get(lang).to_string(),
                z.text.get(lang).to_string(),
                z.emergency,
                personal
                    .iter()
                    .find(|(k, _)| *k == z.key)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let (stage, stage_class) = stage_label(&t, current.as_ref().map_or(Stage::New, |c| c.stage));
    // What this person may record on the pack now, as core decides it.
    let today = now.date();
    let empty = coproduce_core::rescue::Pack::default();
    let pack = current.as_ref().map_or(&empty, |c| &c.pack);
    let may = |kind: &str| role.is_some_and(|r| pack.may(rules, r, kind, today));
    let page = PackPage {
        pid: pid.to_string(),
        name: chart.name.clone(),
        team,
        title: proto.title.get(lang).to_string(),
        zones,
        stage,
        stage_class,
        status: current
            .as_ref()
            .map(|c| status_lines(&t, c, now))
            .unwrap_or_else(|| vec![t.t("rescue-status-none")]),
        can_start: own_side && in_hand_ready,
        check_in: own_side
            && current
                .as_ref()
                .is_some_and(|c| c.check_in_open(rules.check_in_opens, &s.rescue.calendar, now)),
        not_better: current
            .as_ref()
            .and_then(|c| c.pack.check_in())
            .is_some_and(|(a, _)| a != CheckIn::Better),
        history: current
            .as_ref()
            .map(|c| history(s, &t, c))
            .unwrap_or_default(),
        deadlines: current
            .as_ref()
            .map(|c| c.open_deadlines().map(|d| deadline_line(&t, d)).collect())
            .unwrap_or_default(),
        can_personalise: role.is_some_and(|r| s.rescue.may_personalise(r)),
        can_eligible: may("eligible"),
        can_teach: may("taught-back"),
        can_dispense: may("dispensed"),
        can_contact: team && may("contacted"),
        can_team_check_in: team && may("checked-in"),
        can_outcome: may("outcome"),
        can_replace: may("replaced"),
        drugs: proto
            .drugs
            .iter()
            .map(|d| (d.key.clone(), d.text.get(lang).to_string()))
            .collect(),
        outcomes: choices(&t, "outcome", Outcome::ALL.map(Outcome::as_str)),
        checkins: choices(&t, "checkin", CheckIn::ALL.map(CheckIn::as_str)),
        f: p.frame(proto.title.get(lang).to_string(), note, error),
    };
    Ok(page)
}

async fn show(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    match pack_view(s, p, pid, note, error).await {
        Ok(page) => render(&page, status),
        Err(e) => failed(&p.t(), e),
    }
}

async fn pack_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let n = note(&p.t(), &q);
    show(&s, &p, &pid, n, None, StatusCode::OK).await
}

fn start_view(s: &AppState, p: &Person, pid: &str, error: Option<String>) -> StartPage {
    let t = p.t();
    let proto = &s.rescue.protocol;
    let lang = t.lang;
    StartPage {
        f: p.frame(t.t("rescue-start-title"), None, error),
        pid: pid.to_string(),
        symptoms: proto
            .symptoms
            .iter()
            .map(|x| (x.key.clone(), x.text.get(lang).to_string()))
            .collect(),
        drugs: proto
            .drugs
            .iter()
            .map(|d| (d.key.clone(), d.text.get(lang).to_string()))
            .collect(),
        red: proto
            .zones
            .iter()
            .find(|z| z.emergency)
            .map(|z| z.text.get(lang).to_string())
            .unwrap_or_default(),
    }
}

async fn start_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    render(&start_view(&s, &p, &pid, None), StatusCode::OK)
}

/// A form whose fields may repeat (checkboxes), read as pairs.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
struct Pairs(Vec<(String, String)>);

impl WithCsrf for Pairs {
    fn csrf(&self) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == "csrf")
            .map_or("", |(_, v)| v.as_str())
    }
}

impl Pairs {
    fn one(&self, k: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.trim())
    }

    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, v)| n == k && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

async fn current_id(s: &AppState, p: &Person, pid: &str) -> Result<Option<String>, CareError> {
    Ok(s.rescue.active(&p.caller, pid).await?.map(|c| c.id))
}

async fn start(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = s.rescue.now();
    let hours: i64 = f.one("since").parse().unwrap_or(0);
    let event = Event::Started {
        symptoms: f.all("symptom"),
        since: now - time::Duration::hours(hours.clamp(0, 24 * 30)),
        taken: f.all("taken"),
    };
    // A start is on the pack in hand, even while an earlier episode awaits its outcome.
    let result = match s.rescue.current(&p.caller, &pid).await {
        Ok(pack) => {
            let id = pack.map(|c| c.id);
            s.rescue
                .record(&p.caller, &pid, id.as_deref(), event)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => back_to(
            &format!("/patients/{pid}/rescue-pack"),
            "note-rescue-started",
        ),
        Err(e) => match refusal(&p.t(), &e) {
            Some(msg) => render(
                &start_view(&s, &p, &pid, Some(msg)),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            None => failed(&p.t(), e),
        },
    }
}

async fn after(
    s: &AppState,
    p: &Person,
    pid: &str,
    result: Result<(), CareError>,
    note: &str,
) -> Response {
    match result {
        Ok(()) => back_to(&format!("/patients/{pid}/rescue-pack"), note),
        Err(e) => match refusal(&p.t(), &e) {
            Some(msg) => show(s, p, pid, None, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await,
            None => failed(&p.t(), e),
        },
    }
}

async fn check_in(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = async {
        let answer = CheckIn::parse(f.one("answer")).ok_or_else(|| input("check-in-answer"))?;
        let id = current_id(&s, &p, &pid).await?;
        s.rescue
            .record(&p.caller, &pid, id.as_deref(), Event::CheckedIn { answer })
            .await
            .map(|_| ())
    }
    .await;
    after(&s, &p, &pid, result, "note-rescue-checked-in").await
}

fn input(key: &'static str) -> CareError {
    CareError::Input {
        key,
        english: key.replace('-', " "),
        args: Vec::new(),
    }
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// The team's actions on a pack, one form each (field `event`).
async fn record(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let back = f.one("back").to_string();
    let result = async {
        let items = |f: &Pairs| -> Result<Vec<Item>, CareError> {
            s.rescue
                .protocol
                .drugs
                .iter()
                .map(|d| {
                    let date = f.one(&format!("expires-{}", d.key));
                    parse_date(date)
                        .map(|expires| Item {
                            drug: d.key.clone(),
                            expires,
                        })
                        .ok_or_else(|| input("dispense-expiry"))
                })
                .collect()
        };
        let event = match f.one("event") {
            "eligible" => Event::Eligible {
                reason: f.one("reason").to_string(),
            },
            "taught-back" => Event::TaughtBack,
            "dispensed" => Event::Dispensed { items: items(&f)? },
            "replaced" => Event::Replaced { items: items(&f)? },
            "contacted" => Event::Contacted {
                note: f.one("note").to_string(),
            },
            "checked-in" => Event::CheckedIn {
                answer: CheckIn::parse(f.one("answer")).ok_or_else(|| input("check-in-answer"))?,
            },
            "outcome" => Event::Outcome {
                outcome: Outcome::parse(f.one("outcome")).ok_or_else(|| input("outcome-choose"))?,
            },
            _ => return Err(input("rescue-unknown-action")),
        };
        let id = if matches!(event, Event::Eligible { .. }) {
            None
        } else {
            current_id(&s, &p, &pid).await?
        };
        s.rescue
            .record(&p.caller, &pid, id.as_deref(), event)
            .await
            .map(|_| ())
    }
    .await;
    if back == "team" && result.is_ok() {
        return back_to("/team/rescue-packs", "note-rescue-recorded");
    }
    after(&s, &p, &pid, result, "note-rescue-recorded").await
}

async fn episodes_page(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    if !matches!(p.caller.actor.who, Who::TeamMember { .. }) {
        return failed(
            &t,
            CareError::App(coproduce_app::AppError::Forbidden("the team's page".into())),
        );
    }
    let episodes = match s.rescue.open_episodes(&p.caller).await {
        Ok(e) => e,
        Err(e) => return failed(&t, e),
    };
    let month_ago = s.rescue.now() - time::Duration::days(30);
    let missed = match s
        .rescue
        .missed_since(coproduce_core::unix_millis(month_ago))
        .await
    {
        Ok(n) => n,
        Err(e) => return failed(&t, e),
    };
    let rows = episodes
        .iter()
        .map(|e| EpisodeRow {
            pid: e.patient.clone(),
            patient: e.patient_name.clone(),
            started: e.pack.started_at().map(when).unwrap_or_default(),
            deadlines: e.open_deadlines().map(|d| deadline_line(&t, d)).collect(),
            contacted: e.pack.contact().is_some() || e.pack.started_at().is_none(),
            checked_in: e
                .pack
                .check_in()
                .map(|(a, _)| t.t(&format!("checkin-{}", a.as_str()))),
        })
        .collect();
    let n = note(&t, &q);
    render(
        &EpisodesPage {
            f: p.frame(t.t("rescue-episodes-title"), n, None),
            episodes: rows,
            missed,
            checkins: choices(&t, "checkin", CheckIn::ALL.map(CheckIn::as_str)),
        },
        StatusCode::OK,
    )
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
    Ok(rows
        .into_iter()
        .map(|mut n| {
            n.language = p.lang.to_string();
            let (_, text) = crate::jobs::render(&n);
            InboxLine {
                link: n
                    .patient_id
                    .as_ref()
                    .map(|pid| format!("/patients/{pid}/rescue-pack")),
                at: when(coproduce_core::from_unix_millis(n.created_at)),
                unread: n.read_at.is_none(),
                id: n.id,
                text,
            }
        })
        .collect())
}

/// Marks one of the person's notifications read.
async fn mark_read(
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

async fn inbox_page(State(s): State<AppState>, session: Session) -> Response {
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

/// The rescue-pack box on the patient's home: the state in a line and the one button.
pub(crate) struct RescueBox {
    pub title: String,
    pub status: Vec<String>,
    pub can_start: bool,
    pub check_in: bool,
}

pub(crate) async fn rescue_box(
    s: &AppState,
    p: &Person,
    pid: &str,
) -> Result<Option<RescueBox>, CareError> {
    let t = p.t();
    let Some(c) = s.rescue.active(&p.caller, pid).await? else {
        return Ok(None);
    };
    let now = s.rescue.now();
    let own_side = matches!(p.role(), Some(Role::Patient | Role::Family));
    Ok(Some(RescueBox {
        title: s.rescue.protocol.pack.get(t.lang).to_string(),
        status: status_lines(&t, &c, now),
        can_start: own_side && ready_in_hand(s, p, pid).await?,
        check_in: own_side
            && c.check_in_open(
                s.rescue.protocol.rules.check_in_opens,
                &s.rescue.calendar,
                now,
            ),
    }))
}

/// Where the signed-in person wants email (an empty address: no email).
async fn set_email(
    State(s): State<AppState>,
    session: Session,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = p.t();
    match s.notifier.set_email(&p.caller, f.one("email")).await {
        Ok(()) => {
            crate::care_pages::account_with(
                &s,
                &p,
                Some(t.t("account-email-saved")),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(coproduce_app::AppError::Invalid(_)) => {
            crate::care_pages::account_with(
                &s,
                &p,
                None,
                Some(t.t("account-email-invalid")),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => failed(&t, CareError::App(e)),
    }
}

/// The clinician's personal notes on the zones (fields `zone-{key}`).
async fn personalise(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let notes: Vec<(String, String)> =
        f.0.iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("zone-")?.to_string(), v.clone())))
            .collect();
    let result = s.rescue.personalise(&p.caller, &pid, &notes).await;
    after(&s, &p, &pid, result, "note-rescue-recorded").await
}

/// Whether the pack in the patient's hands can be started (ready, or past its expiry).
async fn ready_in_hand(s: &AppState, p: &Person, pid: &str) -> Result<bool, CareError> {
    Ok(s.rescue
        .current(&p.caller, pid)
        .await?
        .is_some_and(|c| matches!(c.stage, Stage::Ready | Stage::Expired)))
}
