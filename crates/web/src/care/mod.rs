//! The care-plan and readings pages: the patient's chart (their home, with the boxes other
//! workflows register), a family member's home, the team home (what needs attention across
//! the panel), the readings of one measure, the plan's forms, the printable visit summary
//! and the CSV export. One view struct per page; every string a patient or family member
//! reads comes from the translations. This module holds the route table, the labels the
//! pages share and the answer after a change.
//!
//! Handlers are thin: they read the form, call `app::Care` with the signed-in person's
//! rights, and render. A refusal the person can fix is shown on the page with status 422 and
//! changes nothing; a success redirects (303) to the page with a note.

use crate::AppState;
use crate::charts::{self, TrendLabels};
use crate::i18n::Tr;
use crate::shell::{
    CsrfForm, Frame, Note, Person, back_to, csrf_ok, csrf_refused, failed, note, person,
    person_form, refusal, render, safe_back, unreadable,
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
    ActivityView, Attention, Chart, GoalView, NewActivity, NewReading, Reading, parse_csv,
    readings_csv,
};
use coproduce_app::{AppError, CareError};
use coproduce_core::access::Role;
use coproduce_core::care::plan::{Cadence, GoalAnswer, GoalState, Owner, Schedule, Setting, Side};
use coproduce_core::care::readings::{
    self as reading_rules, HbA1cTarget, Measure, ReadingValue, Standing, TargetRange, parse_number,
};
use coproduce_core::care::safety::Alert;
use serde::Deserialize;
use std::collections::HashMap;
use time::OffsetDateTime;
use tower_sessions::Session;

mod access_log;
mod chart;
mod partnership;
pub(crate) use partnership::home_panel as partnership_panel;
mod plan;
mod readings;
mod summary;
mod team;
mod worklist;

pub(crate) use access_log::*;
pub(crate) use chart::*;
pub(crate) use plan::*;
pub(crate) use readings::*;
pub(crate) use summary::*;
pub use team::team_home_html;
pub(crate) use team::*;
pub(crate) use worklist::*;

/// The care plan's and readings' routes.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/partnership", get(partnership::page), false),
        ("/partnership/panel", get(partnership::panel_page), false),
        (
            "/patients/{pid}/collaborate",
            get(partnership::collaborate_form).post(partnership::collaborate_answer),
            false,
        ),
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
        ("/patients/{pid}/access-log", get(access_log_page), false),
    ]
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

/// A reading's value with its unit, as the reader's language writes numbers ("89,6 kg").
pub(crate) fn value_label(t: &Tr, m: Measure, v: &ReadingValue) -> String {
    let unit = m.canonical_unit().label;
    let d = m.decimals();
    let number = match *v {
        ReadingValue::Single(x) => format!("{x:.d$}"),
        ReadingValue::Pressure {
            systolic,
            diastolic,
        } => format!("{systolic:.0}/{diastolic:.0}"),
    };
    format!("{} {unit}", t.number(&number))
}

fn target_label(t: &Tr, m: Measure, r: TargetRange) -> String {
    let unit = m.canonical_unit().label;
    let n = |v: f64| t.number(&reading_rules::trim_number(v));
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

/// Who is reading a chart, for words that speak to them: the patient ("you"), a family
/// member (the patient by name), or the team.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reader<'a> {
    Patient,
    Family(&'a str),
    Team,
}

impl<'a> Reader<'a> {
    pub(crate) fn of(role: Option<Role>, patient_name: &'a str) -> Reader<'a> {
        match role {
            Some(Role::Patient) => Reader::Patient,
            Some(Role::Family) => Reader::Family(patient_name),
            _ => Reader::Team,
        }
    }
}

fn state_label(t: &Tr, s: GoalState, reader: Reader<'_>) -> (String, &'static str) {
    match (s, reader) {
        (GoalState::Awaiting(Side::Team), Reader::Patient) => {
            (t.t("goal-state-awaiting-your-team"), "waiting")
        }
        (GoalState::Awaiting(Side::Team), Reader::Family(name)) => (
            t.arg("goal-state-awaiting-their-team", "name", name),
            "waiting",
        ),
        (GoalState::Awaiting(Side::Patient), Reader::Patient) => {
            (t.t("goal-state-awaiting-you"), "waiting")
        }
        (GoalState::Awaiting(Side::Patient), Reader::Family(name)) => {
            (t.arg("goal-state-awaiting-name", "name", name), "waiting")
        }
        (GoalState::Awaiting(Side::Team), Reader::Team) => {
            (t.t("goal-state-awaiting-team"), "waiting")
        }
        (GoalState::Awaiting(Side::Patient), Reader::Team) => {
            (t.t("goal-state-awaiting-patient"), "waiting")
        }
        (GoalState::Agreed, _) => (t.t("goal-state-agreed"), "agreed"),
        (GoalState::Declined, _) => (t.t("goal-state-declined"), "declined"),
        (GoalState::Closed, _) => (t.t("goal-state-closed"), "closed"),
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
    pub(crate) id: String,
    pub(crate) text: String,
    pub(crate) state: String,
    pub(crate) state_class: &'static str,
    pub(crate) target: Option<String>,
    /// The caller may answer now.
    pub(crate) can_answer: bool,
    /// The caller is the team, which sets the HbA1c target as it agrees.
    pub(crate) offers_target: bool,
    pub(crate) history: Vec<String>,
}

fn goal_row(t: &Tr, g: &GoalView, role: Option<Role>, reader: Reader<'_>) -> GoalRow {
    let side = role.and_then(Side::of);
    let (state, state_class) = state_label(t, g.state, reader);
    let history = g
        .history
        .iter()
        .map(|e| {
            let what = t.with(&format!("goal-event-{}", e.event), &[("who", e.by.clone())]);
            match &e.words {
                Some(w) if w != "-" => format!("{} · {what}: “{w}”", t.when(e.at)),
                _ => format!("{} · {what}", t.when(e.at)),
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
        can_answer: role.is_some_and(GoalState::may_answer)
            && side.is_some_and(|s| g.state == GoalState::Awaiting(s)),
        offers_target: side == Some(Side::Team),
        history,
    }
}

pub(crate) struct ActivityRow {
    pub(crate) index: usize,
    pub(crate) text: String,
    pub(crate) owner: String,
    pub(crate) setting: String,
    pub(crate) due: String,
    pub(crate) overdue: bool,
    pub(crate) finished: bool,
    pub(crate) can_mark_done: bool,
    pub(crate) last_done: Option<String>,
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
                    ("due", t.day(d)),
                ],
            )
        }
        (Schedule::By(_), Some(d)) => t.with("activity-by", &[("due", t.day(d))]),
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
        last_done: a.facts.last_done.map(|at| t.day(at)),
    }
}

pub(crate) struct MeasureCard {
    pub(crate) key: &'static str,
    pub(crate) title: String,
    pub(crate) latest: Option<String>,
    pub(crate) latest_when: Option<String>,
    pub(crate) standing: Option<String>,
    pub(crate) standing_class: &'static str,
    pub(crate) target: Option<String>,
    pub(crate) chart: String,
    pub(crate) alt: String,
}

/// A reading's badge: its word and its class. A reading that needs a response now says
/// which ("Very low"); else low, high or in range against its target. Never one word for
/// both directions.
pub(crate) fn badge_of(
    s: &AppState,
    t: &Tr,
    own: Option<TargetRange>,
    m: Measure,
    v: &ReadingValue,
) -> Option<(String, &'static str)> {
    if let Some(a) = s.care.safety.alert(m, v) {
        let class = if a.is_low() {
            "urgent low"
        } else {
            "urgent high"
        };
        return Some((t.t(&format!("alert-{}", a.as_str())), class));
    }
    standing_badge(t, s.care.targets.standing(m, v, own)?)
}

pub(crate) fn standing_badge(t: &Tr, st: Standing) -> Option<(String, &'static str)> {
    Some(match st {
        Standing::Below => (t.t("standing-low"), "low"),
        Standing::Above => (t.t("standing-high"), "high"),
        Standing::InRange => (t.t("standing-in-range"), "in-range"),
    })
}

/// A task's name in the reader's language (by its code), else its description.
pub(crate) fn task_name(t: &Tr, x: &coproduce_app::care::TaskView) -> String {
    let key = format!("task-{}", x.code);
    if !t.has(&key) {
        return x.what.clone();
    }
    match x.alert {
        Some(a) => t.arg(&key, "alert", &t.t(&format!("alert-{}", a.as_str()))),
        None => t.t(&key),
    }
}

fn measure_card(s: &AppState, t: &Tr, chart: &Chart, m: Measure, with_chart: bool) -> MeasureCard {
    let rs: Vec<&Reading> = chart.readings_of(m).collect();
    let latest = rs.iter().max_by_key(|r| r.at).copied();
    let title = measure_title(t, m);
    let target = chart
        .own_target(m)
        .or_else(|| s.care.targets.for_measure(m));
    let (standing, standing_class) =
        match latest.and_then(|r| badge_of(s, t, chart.own_target(m), m, &r.value)) {
            Some((word, class)) => (Some(word), class),
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
                decimal_comma: t.number("0.5") != "0.5",
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
                    ("from", t.day(from.at)),
                    ("to", t.day(to.at)),
                    ("low", format!("{lo:.prec$}", prec = m.decimals())),
                    ("high", format!("{hi:.prec$}", prec = m.decimals())),
                    ("latest", value_label(t, m, &l.value)),
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
        latest: latest.map(|r| value_label(t, m, &r.value)),
        latest_when: latest.map(|r| t.when(r.at)),
        standing,
        standing_class,
        target: target.map(|r| target_label(t, m, r)),
        chart: svg,
        alt,
    }
}

pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
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
