//! The rescue-pack pages: the patient's action plan and pack, the check-in and the team's
//! actions (`pack`), the team's open episodes (`episodes`), and the box on the patient's home
//! (`panel`). This module holds the route table and what those pages share: the labels of
//! stages and deadlines, a pack's history and status in words, and the answer after a change.

use crate::AppState;
use crate::i18n::Tr;
use crate::shell::{
    Frame, Note, Pairs, Person, back_to, failed, note, person, person_form, refusal, render,
};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use coproduce_app::CareError;
use coproduce_app::rescue::{DeadlineView, PackView};
use coproduce_core::access::{Role, Who};
use coproduce_core::rescue::{CheckIn, Event, Item, Outcome, Stage, TaskKind};
use time::{Date, OffsetDateTime};
use tower_sessions::Session;

mod episodes;
mod pack;
mod panel;
mod worklist;

pub(crate) use episodes::*;
pub(crate) use pack::*;
pub(crate) use panel::home_panel;
pub(crate) use worklist::worklist_section;

/// The rescue pack's routes.
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
    ]
}

/// A line on the pack's history.
pub(crate) struct EventLine {
    pub(crate) at: String,
    pub(crate) text: String,
}

/// An open deadline as the team sees it.
pub(crate) struct DeadlineLine {
    pub(crate) what: String,
    pub(crate) role: String,
    pub(crate) due: String,
    pub(crate) standing: &'static str,
    pub(crate) standing_label: String,
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
        due: t.when_zoned(d.deadline.due),
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

/// Who reads about a pack, for words that speak to them: the patient ("you"), a family
/// member (of the patient by name; "you" for what they did themselves), or the team.
pub(crate) struct Viewer<'a> {
    pub(crate) role: Option<Role>,
    /// Their own record (`Patient/..`, `RelatedPerson/..`), to say "you" for what they did.
    pub(crate) me: Option<&'a str>,
    pub(crate) patient_name: &'a str,
}

impl Viewer<'_> {
    fn who(&self, t: &Tr, by: &coproduce_core::rescue::By) -> String {
        if self.me == Some(by.who.as_str()) {
            t.t("rescue-who-you")
        } else if by.role == Role::Patient && self.role != Some(Role::Patient) {
            self.patient_name.to_string()
        } else {
            t.t(&format!("owner-{}", by.role.as_str()))
        }
    }

    /// The message for the reader: for anyone but the patient (a family member, the team)
    /// the variant that names the patient, where there is one.
    fn say(&self, t: &Tr, key: &str, args: &[(&str, String)]) -> String {
        let family = format!("{key}-family");
        if self.role != Some(Role::Patient) && t.has(&family) {
            let mut all = args.to_vec();
            all.push(("name", self.patient_name.to_string()));
            t.with(&family, &all)
        } else {
            t.with(key, args)
        }
    }
}

fn history(s: &AppState, t: &Tr, v: &PackView, viewer: &Viewer<'_>) -> Vec<EventLine> {
    let p = &s.rescue.protocol;
    let lang = t.lang;
    v.pack
        .events
        .iter()
        .map(|r| {
            let who = viewer.who(t, &r.by);
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
                        ("since", t.when(*since)),
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
                at: t.when(r.at),
                text,
            }
        })
        .collect()
}

/// What the patient's side reads about their pack now.
fn status_lines(t: &Tr, v: &PackView, now: OffsetDateTime, viewer: &Viewer<'_>) -> Vec<String> {
    let say = |key: &str, args: &[(&str, String)]| viewer.say(t, key, args);
    let mut out = Vec::new();
    match v.stage {
        Stage::New | Stage::Eligible | Stage::Taught => {
            out.push(say("rescue-status-preparing", &[]))
        }
        Stage::Ready => {
            if let Some(e) = v.pack.expires() {
                out.push(say("rescue-status-ready", &[("date", e.to_string())]));
            }
        }
        Stage::Expired => out.push(say("rescue-status-expired", &[])),
        Stage::Started => {
            if v.pack
                .is_expired_on(v.pack.started_at().map_or(now, |s| s).date())
            {
                out.push(say("notice-rescue-pack-started-expired", &[]));
            }
            match v.pack.contact() {
                Some(c) => out.push(say("rescue-status-contacted", &[("at", t.when(c.at))])),
                None => {
                    if let Some(d) = v.deadline(TaskKind::Contact) {
                        out.push(say(
                            "rescue-status-will-call",
                            &[("due", t.when_zoned(d.deadline.due))],
                        ));
                    }
                }
            }
            out.push(say("rescue-status-take", &[]));
            match v.pack.check_in() {
                Some((CheckIn::Better, _)) => out.push(say("rescue-better", &[])),
                Some(_) => out.push(say("rescue-not-better", &[])),
                None => {}
            }
        }
        Stage::Closed | Stage::Replaced => out.push(say("rescue-status-closed", &[])),
    }
    out
}

async fn current_id(s: &AppState, p: &Person, pid: &str) -> Result<Option<String>, CareError> {
    Ok(s.rescue.active(&p.caller, pid).await?.map(|c| c.id))
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

/// Whether the pack in the patient's hands can be started (ready, or past its expiry).
async fn ready_in_hand(s: &AppState, p: &Person, pid: &str) -> Result<bool, CareError> {
    Ok(s.rescue
        .current(&p.caller, pid)
        .await?
        .is_some_and(|c| matches!(c.stage, Stage::Ready | Stage::Expired)))
}
