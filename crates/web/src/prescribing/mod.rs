//! Prescribing's pages: a patient's medicines, each with "Can you get and use this
//! medicine?" (yes, or "I can't" and why, in their words), where its partnership check
//! stands, and its barriers: who is handling each and by when, and how it was resolved. The
//! same page serves the patient on a phone, a family member whose grant covers their record,
//! and the care team, who resolve a barrier there with one form per row. The policy decides
//! who reaches it; the box on the patient's home leads there, and the worklist's section
//! lists the barriers a role owns. `prescribe` is the clinician's prescribing page, `about`
//! the patient's side (how they pay for and get medicines, the cost questions).

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
use coproduce_app::prescribing::Barrier;
use coproduce_app::{AppError, CareError};
use coproduce_core::access::Who;
use coproduce_core::prescribing::check::{FirstFill, Kind, Resolution};
use std::future::Future;
use std::pin::Pin;
use tower_sessions::Session;

mod about;
mod measures;
mod prescribe;

/// Prescribing's routes.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/patients/{pid}/medicines", get(page), false),
        ("/prescribing/measures", get(measures::page), false),
        (
            "/patients/{pid}/medicines/about",
            get(about::about_page).post(about::about),
            false,
        ),
        (
            "/patients/{pid}/prescribe",
            get(prescribe::prescribe_page).post(prescribe::prescribe),
            false,
        ),
        ("/patients/{pid}/medicines/{mr}/answer", post(answer), false),
        (
            "/patients/{pid}/medicines/{mr}/first-fill",
            post(first_fill),
            false,
        ),
        (
            "/patients/{pid}/medicines/barriers/{task}/resolve",
            post(resolve),
            false,
        ),
    ]
}

/// A barrier as a line: what it is about, who handles it by when, or how it was resolved.
pub(crate) struct BarrierRow {
    task: String,
    line: String,
    words: String,
    open: bool,
    overdue: bool,
    /// The resolutions that answer it (for the team's form).
    resolutions: Vec<(&'static str, String)>,
    /// The drugs it could be switched to, cheaper for this patient (code, line).
    switches: Vec<(String, String)>,
}

pub(crate) struct MedicineRow {
    id: String,
    name: String,
    dosage: String,
    status: String,
    can: bool,
    /// "Your team changed this from ...", when it replaced another.
    switched: String,
    /// The check-in: asked now, and the answer given (yes, no).
    check_in: bool,
    filled: Option<bool>,
    barriers: Vec<BarrierRow>,
}

#[derive(Template)]
#[template(path = "medicines.html")]
pub(crate) struct MedicinesPage {
    f: Frame,
    pid: String,
    medicines: Vec<MedicineRow>,
    /// The patient's side answers the question; the team resolves barriers.
    asks: bool,
    resolves: bool,
    /// A clinician on the patient's team: the way to the prescribing page.
    prescribes: bool,
    answers: Vec<(&'static str, String)>,
}

impl crate::shell::Framed for MedicinesPage {
    fn frame_mut(&mut self) -> &mut Frame {
        &mut self.f
    }
}

fn barrier_row(t: &crate::i18n::Tr, b: &Barrier, now: time::OffsetDateTime) -> BarrierRow {
    let what = t.t(&format!("meds-barrier-{}", b.kind.as_str()));
    let line = match (&b.resolution, b.is_open()) {
        (_, true) => t.with(
            "meds-barrier-open",
            &[
                ("what", what),
                (
                    "role",
                    b.owner
                        .map(|r| t.t(&format!("owner-{}", r.as_str())))
                        .unwrap_or_default(),
                ),
                ("due", b.due.map(|d| t.when_zoned(d)).unwrap_or_default()),
            ],
        ),
        (Some(how), false) => t.with(
            "meds-barrier-resolved",
            &[
                ("what", what),
                ("how", t.t(&format!("meds-resolution-{how}"))),
            ],
        ),
        (None, false) => t.arg("meds-barrier-closed", "what", &what),
    };
    BarrierRow {
        task: b.task.clone(),
        words: b.words.clone().unwrap_or_default(),
        line,
        open: b.is_open(),
        overdue: b.is_overdue(now),
        resolutions: Resolution::ALL
            .iter()
            .filter(|r| r.fits(b.kind))
            .map(|r| (r.as_str(), t.t(&format!("meds-resolution-{}", r.as_str()))))
            .collect(),
        switches: Vec::new(),
    }
}

async fn view(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
) -> Result<MedicinesPage, CareError> {
    let t = p.t();
    let now = s.api.clock().now();
    let who = &p.caller.actor.who;
    let patient_side = matches!(who, Who::Patient { patient } if patient == pid)
        || matches!(who, Who::Family { .. });
    let resolves = matches!(who, Who::TeamMember { .. });
    let mut medicines = Vec::new();
    for m in s.prescribing.medicines(&p.caller, pid).await? {
        // The team may switch a medicine with an open barrier to a cheaper one that could
        // replace it.
        let switches = if resolves
            && m.barriers
                .iter()
                .any(|b| b.is_open() && Resolution::SwitchedToAlternative.fits(b.kind))
        {
            s.prescribing
                .cheaper_for(&p.caller, &m.id)
                .await?
                .into_iter()
                .map(|(code, name, cost)| (code, format!("{name} · {cost}")))
                .collect()
        } else {
            Vec::new()
        };
        medicines.push(MedicineRow {
            check_in: m.first_fill == FirstFill::Asked,
            filled: match m.first_fill {
                FirstFill::Answered(a) => Some(a),
                _ => None,
            },
            status: t.t(&format!(
                "meds-check-{}",
                m.check.as_deref().unwrap_or("pending")
            )),
            barriers: m
                .barriers
                .iter()
                .map(|b| {
                    let mut row = barrier_row(&t, b, now);
                    if Resolution::SwitchedToAlternative.fits(b.kind) {
                        row.switches.clone_from(&switches);
                    }
                    row
                })
                .collect(),
            id: m.id,
            name: m.name,
            dosage: if patient_side && !m.instructions.is_empty() {
                m.instructions
            } else {
                m.dosage
            },
            can: m.can,
            switched: m
                .switched_from
                .map(|old| t.arg("meds-switched-from", "old", &old))
                .unwrap_or_default(),
        });
    }
    Ok(MedicinesPage {
        f: p.frame(
            t.t(if patient_side {
                "meds-title"
            } else {
                "meds-title-team"
            }),
            note,
            None,
        ),
        pid: pid.to_string(),
        medicines,
        asks: patient_side,
        resolves,
        prescribes: coproduce_core::prescribing::sig::prescribes(who, pid),
        // "Can you get and use this medicine?": yes, or what they can't.
        answers: std::iter::once("yes")
            .chain(Kind::PATIENT_SAYS.iter().map(|k| k.as_str()))
            .map(|a| (a, t.t(&format!("meds-answer-{a}"))))
            .collect(),
    })
}

async fn page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    Query(q): Query<crate::shell::Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    match view(&s, &p, &pid, note(&t, &q)).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => failed(&t, e),
    }
}

/// The page again with a refusal the person can act on, or the failure page.
async fn again(s: &AppState, p: &Person, pid: &str, e: CareError) -> Response {
    show_refusal(&p.t(), e, view(s, p, pid, None)).await
}

async fn answer(
    State(s): State<AppState>,
    session: Session,
    Path((pid, mr)): Path<(String, String)>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let said = match f.one("answer") {
        "yes" => s.prescribing.patient_says_can(&p.caller, &mr).await,
        other => match Kind::parse(other).filter(|k| Kind::PATIENT_SAYS.contains(k)) {
            Some(kind) => s
                .prescribing
                .patient_says_cant(&p.caller, &mr, kind, f.one("words"))
                .await
                .map(|_| ()),
            None => Err(CareError::input(
                "meds-answer-missing",
                "choose one of the answers",
            )),
        },
    };
    match said {
        Ok(()) => back_to(
            &format!("/patients/{pid}/medicines#medicine-{mr}"),
            "note-meds-answered",
        ),
        Err(e) => again(&s, &p, &pid, e).await,
    }
}

async fn first_fill(
    State(s): State<AppState>,
    session: Session,
    Path((pid, mr)): Path<(String, String)>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let started = match f.one("answer") {
        "yes" => true,
        "no" => false,
        _ => {
            return again(
                &s,
                &p,
                &pid,
                CareError::input("meds-answer-missing", "choose one of the answers"),
            )
            .await;
        }
    };
    match s
        .prescribing
        .first_fill(&p.caller, &mr, started, f.one("words"))
        .await
    {
        Ok(()) => back_to(
            &format!("/patients/{pid}/medicines#medicine-{mr}"),
            "note-meds-answered",
        ),
        Err(e) => again(&s, &p, &pid, e).await,
    }
}

async fn resolve(
    State(s): State<AppState>,
    session: Session,
    Path((pid, task)): Path<(String, String)>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(resolution) = Resolution::parse(f.one("resolution")) else {
        return again(
            &s,
            &p,
            &pid,
            CareError::input("meds-resolution-missing", "choose what was done"),
        )
        .await;
    };
    let switch_to = Some(f.one("switch_to")).filter(|d| !d.is_empty());
    let done = s
        .prescribing
        .solve(
            &p.caller,
            &task,
            resolution,
            switch_to,
            f.one("agreed") == "yes",
            f.one("note"),
        )
        .await;
    match done {
        Ok(()) => back_to(
            &format!("/patients/{pid}/medicines#medicines"),
            "note-meds-resolved",
        ),
        Err(e) => again(&s, &p, &pid, e).await,
    }
}

#[derive(Template)]
#[template(path = "medicines_panel.html")]
struct MedicinesBox {
    t: crate::i18n::Tr,
    pid: String,
    open: usize,
}

/// The box on the patient's home: how many barriers are open, and the way to the page. None
/// when the patient has no medicine here.
pub(crate) fn home_panel<'a>(
    s: &'a AppState,
    p: &'a Person,
    pid: &'a str,
) -> Pin<Box<dyn Future<Output = Result<Option<String>, CareError>> + Send + 'a>> {
    Box::pin(async move {
        // A family member whose grant does not cover the record sees no box.
        let medicines = match s.prescribing.medicines(&p.caller, pid).await {
            Ok(m) if !m.is_empty() => m,
            Ok(_) | Err(CareError::App(AppError::Forbidden(_))) => return Ok(None),
            Err(e) => return Err(e),
        };
        MedicinesBox {
            t: p.t(),
            pid: pid.to_string(),
            open: medicines
                .iter()
                .flat_map(|m| &m.barriers)
                .filter(|b| b.is_open())
                .count(),
        }
        .render()
        .map(Some)
        .map_err(|e| CareError::App(AppError::Internal(e.to_string())))
    })
}

/// One row of the worklist's medicines section.
pub(crate) struct BarrierWork {
    pid: String,
    name: String,
    medicine: String,
    what: String,
    due: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "medicines_worklist.html")]
struct MedicinesWork {
    t: crate::i18n::Tr,
    rows: Vec<BarrierWork>,
}

/// The section of the pharmacist's, community health worker's and social worker's worklist:
/// the barriers to medicines their role owns now, the most urgent first.
pub(crate) async fn worklist_section(
    s: &AppState,
    p: &Person,
    role: coproduce_core::access::Role,
) -> Result<Option<String>, CareError> {
    let t = p.t();
    let now = s.api.clock().now();
    let rows: Vec<BarrierWork> = s
        .prescribing
        .worklist(&p.caller, role)
        .await?
        .into_iter()
        .map(|(pid, name, medicine, b)| BarrierWork {
            pid,
            name,
            medicine,
            what: match &b.words {
                Some(w) => format!(
                    "{}: “{w}”",
                    t.t(&format!("meds-barrier-{}", b.kind.as_str()))
                ),
                None => t.t(&format!("meds-barrier-{}", b.kind.as_str())),
            },
            due: b.due.map(|d| t.when_zoned(d)).unwrap_or_default(),
            overdue: b.is_overdue(now),
        })
        .collect();
    if rows.is_empty() && role != coproduce_core::access::Role::Pharmacist {
        return Ok(None);
    }
    MedicinesWork { t, rows }
        .render()
        .map(Some)
        .map_err(|e| CareError::App(AppError::Internal(e.to_string())))
}
