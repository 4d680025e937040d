//! Social needs' pages: a patient's needs (the screen's findings and the patient's word on
//! each), the screening itself one short page per domain with every question skippable, and
//! the box on the patient's home that leads there. The same pages serve the patient on a
//! phone, a family member whose grant covers social needs, and the community health worker
//! with the patient at the front desk; the policy decides who reaches them.

use crate::AppState;
use crate::shell::{
    Frame, Pairs, Person, back_to, failed, note, person, person_form, refusal, render, show_refusal,
};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use coproduce_app::social::Need;
use coproduce_app::{AppError, CareError};
use coproduce_core::social::Choice;
use coproduce_core::social::ahc::Domain;
use coproduce_core::social::records_choice;
use coproduce_core::social::referral::{self, Ending, Helped};
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use tower_sessions::Session;

mod directory;
mod measures;
pub(crate) mod partner;

/// Social needs' routes (with the community organisations' page).
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    let mut routes = partner::route_table();
    routes.extend(directory::route_table());
    routes.extend([
        ("/social/measures", get(measures::page), false),
        ("/patients/{pid}/social", get(needs_page), false),
        (
            "/patients/{pid}/social/screen",
            get(screen_page).post(screen),
            false,
        ),
        ("/patients/{pid}/social/needs/{need}", post(choose), false),
        (
            "/patients/{pid}/social/needs/{need}/refer",
            post(refer),
            false,
        ),
        (
            "/patients/{pid}/social/referrals/{task}/cancel",
            post(cancel),
            false,
        ),
        (
            "/patients/{pid}/social/referrals/{task}/helped",
            post(helped),
            false,
        ),
    ]);
    routes
}

fn forbidden() -> CareError {
    CareError::App(AppError::Forbidden(
        "social needs are seen by the patient, their care team, and family whose grant covers them"
            .into(),
    ))
}

/// A need as a row: its id, its label, the choice made (its label), and whether this person
/// may make it.
pub(crate) struct NeedRow {
    id: String,
    label: String,
    choice: Option<&'static str>,
    choice_label: String,
    referrals: Vec<ReferralRow>,
    /// The services this person may refer the need to (empty unless they refer and the
    /// patient asked for help).
    services: Vec<(String, String)>,
    may_refer: bool,
}

/// A referral as a line: its Task, what it says, the team's due time, whether it is open.
pub(crate) struct ReferralRow {
    task: String,
    line: String,
    due: String,
    open: bool,
    /// Whether this person is asked if it helped (the patient, once it was taken on), and
    /// what they said.
    ask: bool,
    helped: Option<&'static str>,
    helped_label: String,
}

fn need_label(t: &crate::i18n::Tr, n: &Need) -> String {
    match n.domain {
        Some(d) => t.t(&format!("social-need-{}", d.as_str())),
        None => n.text.clone(),
    }
}

#[derive(Template)]
#[template(path = "social_needs.html")]
pub(crate) struct NeedsPage {
    f: Frame,
    pid: String,
    /// "never", "in-progress" or "completed", and when.
    status: &'static str,
    when: String,
    needs: Vec<NeedRow>,
    may_choose: bool,
    choices: Vec<(&'static str, String)>,
    endings: Vec<(&'static str, String)>,
    answers: Vec<(&'static str, String)>,
}

/// Where a referral stands, in the reader's words, with its ending's reason.
fn status_words(t: &crate::i18n::Tr, r: &coproduce_app::social::Referral) -> String {
    let status = t.t(&format!("social-referral-status-{}", r.status.as_str()));
    match r.ending {
        Some(e) => format!(
            "{status} ({})",
            t.t(&format!("social-ending-{}", e.as_str()))
        ),
        None => status,
    }
}

fn referral_row(
    t: &crate::i18n::Tr,
    r: &coproduce_app::social::Referral,
    patient_here: bool,
    helped: &[(String, Helped)],
) -> ReferralRow {
    let said = helped
        .iter()
        .find(|(task, _)| *task == r.task)
        .map(|(_, h)| *h);
    let status = status_words(t, r);
    ReferralRow {
        task: r.task.clone(),
        line: t.with(
            "social-referral-line",
            &[("service", r.service.clone()), ("status", status)],
        ),
        due: r
            .due
            .map(|d| t.arg("social-due", "when", &t.when_zoned(d)))
            .unwrap_or_default(),
        open: !r.status.is_final(),
        ask: patient_here && referral::asks_patient(r.status),
        helped: said.map(Helped::as_str),
        helped_label: said
            .map(|h| {
                t.arg(
                    "social-helped-current",
                    "answer",
                    &t.t(&format!("social-helped-{}", h.as_str())),
                )
            })
            .unwrap_or_default(),
    }
}

async fn needs_page(
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
    match needs_view(&s, &p, &pid, note(&t, &q)).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => failed(&t, e),
    }
}

async fn needs_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
) -> Result<NeedsPage, CareError> {
    let t = p.t();
    if !s.social.may_see(&p.caller, pid) {
        return Err(forbidden());
    }
    let latest = s.social.latest(&p.caller, pid).await?;
    let (status, when) = match &latest {
        None => ("never", String::new()),
        Some(l) => (
            if l.status == "in-progress" {
                "in-progress"
            } else {
                "completed"
            },
            l.authored
                .as_deref()
                .and_then(|a| {
                    time::OffsetDateTime::parse(a, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map(|at| t.when_zoned(at))
                .unwrap_or_default(),
        ),
    };
    let refers = referral::refers(&p.caller.actor.who, pid);
    let referrals = s.social.referrals(&p.caller, pid).await?;
    let patient_here = matches!(&p.caller.actor.who, coproduce_core::access::Who::Patient { patient } if patient == pid);
    let tasks: Vec<String> = referrals.iter().map(|r| r.task.clone()).collect();
    let helped = s.social.helped_answers(&p.caller, pid, &tasks).await?;
    let mut needs = Vec::new();
    for n in s.social.needs(&p.caller, pid).await? {
        if n.verification == "refuted" {
            continue;
        }
        let may_refer = refers && n.choice.is_some_and(Choice::permits_referral);
        let services = match n.domain {
            Some(d) if may_refer => s
                .social
                .services_for(&p.caller, d)
                .await?
                .into_iter()
                .map(|x| {
                    let label = format!(
                        "{} · {} · {}",
                        x.name,
                        x.organization,
                        x.languages.join(", ")
                    );
                    (x.id, label)
                })
                .collect(),
            _ => Vec::new(),
        };
        needs.push(NeedRow {
            referrals: referrals
                .iter()
                .filter(|r| r.need.as_deref() == Some(n.id.as_str()))
                .map(|r| referral_row(&t, r, patient_here, &helped))
                .collect(),
            id: n.id.clone(),
            label: need_label(&t, &n),
            choice: n.choice.map(Choice::as_str),
            choice_label: n
                .choice
                .map(|c| t.t(&format!("social-choice-{}", c.as_str())))
                .unwrap_or_default(),
            services,
            may_refer,
        });
    }
    Ok(NeedsPage {
        answers: Helped::ALL
            .iter()
            .map(|h| (h.as_str(), t.t(&format!("social-helped-{}", h.as_str()))))
            .collect(),
        endings: Ending::ALL
            .iter()
            .map(|e| (e.as_str(), t.t(&format!("social-ending-{}", e.as_str()))))
            .collect(),
        f: p.frame(t.t("social-title"), note, None),
        pid: pid.to_string(),
        status,
        when,
        needs,
        may_choose: records_choice(&p.caller.actor.who, pid),
        choices: Choice::ALL
            .iter()
            .map(|c| (c.as_str(), t.t(&format!("social-choice-{}", c.as_str()))))
            .collect(),
    })
}

#[derive(Deserialize)]
pub(crate) struct Step {
    step: Option<usize>,
}

/// One answer offered: its code, its words, whether it is chosen.
pub(crate) struct OptionRow {
    code: String,
    text: String,
    checked: bool,
}

pub(crate) struct QuestionRow {
    code: String,
    text: String,
    multiple: bool,
    options: Vec<OptionRow>,
}

#[derive(Template)]
#[template(path = "social_screen.html")]
pub(crate) struct ScreenPage {
    f: Frame,
    pid: String,
    step: usize,
    steps: usize,
    /// Where the page is ("Page 2 of 6"), and the domain it asks about.
    position: String,
    domain: &'static str,
    heading: String,
    questions: Vec<QuestionRow>,
}

fn step_of(step: Option<usize>) -> usize {
    step.unwrap_or(1).clamp(1, Domain::ALL.len())
}

async fn screen_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    Query(q): Query<Step>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    match screen_view(&s, &p, &pid, step_of(q.step), None, None).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => failed(&t, e),
    }
}

/// The answers of the screening in progress, if one is.
async fn in_progress(
    s: &AppState,
    p: &Person,
    pid: &str,
) -> Result<Option<coproduce_app::social::Screening>, CareError> {
    Ok(s.social
        .latest(&p.caller, pid)
        .await?
        .filter(|l| l.status == "in-progress"))
}

async fn screen_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    step: usize,
    given: Option<&[(String, Vec<String>)]>,
    error: Option<String>,
) -> Result<ScreenPage, CareError> {
    let t = p.t();
    if !s.social.may_see(&p.caller, pid) {
        return Err(forbidden());
    }
    let saved = match given {
        Some(_) => None,
        None => in_progress(s, p, pid).await?,
    };
    let chosen = |code: &str| -> Vec<String> {
        match given {
            Some(g) => g
                .iter()
                .find(|(q, _)| q == code)
                .map(|(_, a)| a.clone())
                .unwrap_or_default(),
            None => saved
                .as_ref()
                .map(|l| l.chosen(code).to_vec())
                .unwrap_or_default(),
        }
    };
    let domain = Domain::ALL[step - 1];
    let questions = coproduce_app::social::questionnaire()
        .of(domain)
        .map(|q| {
            let picked = chosen(&q.code);
            QuestionRow {
                code: q.code.clone(),
                text: q.text(p.lang).to_string(),
                multiple: q.multiple,
                options: q
                    .options
                    .iter()
                    .map(|o| OptionRow {
                        code: o.code.clone(),
                        text: o.text(p.lang).to_string(),
                        checked: picked.contains(&o.code),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(ScreenPage {
        f: p.frame(t.t("social-screen-title"), None, error),
        pid: pid.to_string(),
        step,
        steps: Domain::ALL.len(),
        position: t.with(
            "social-step",
            &[
                ("n", step.to_string()),
                ("total", Domain::ALL.len().to_string()),
            ],
        ),
        domain: domain.as_str(),
        heading: t.t(&format!("social-need-{}", domain.as_str())),
        questions,
    })
}

async fn screen(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = p.t();
    let step = step_of(f.one("step").parse().ok());
    let domain = Domain::ALL[step - 1];
    let here: Vec<String> = coproduce_app::social::questionnaire()
        .of(domain)
        .map(|q| q.code.clone())
        .collect();
    // This page's answers replace what was saved for its questions; the rest are kept.
    let saved = match in_progress(&s, &p, &pid).await {
        Ok(l) => l,
        Err(e) => return failed(&t, e),
    };
    let mut answers: Vec<(String, Vec<String>)> = saved
        .as_ref()
        .map(|l| l.answers.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(q, _)| !here.contains(q))
        .collect();
    for q in &here {
        let chosen = f.all(&format!("q-{q}"));
        if !chosen.is_empty() {
            answers.push((q.clone(), chosen));
        }
    }
    let go = f.one("go");
    let finish = go == "next" && step == Domain::ALL.len();
    let saved_id = saved.as_ref().map(|l| l.id.as_str());
    match s
        .social
        .save(&p.caller, &pid, saved_id, &answers, finish)
        .await
    {
        Ok(_) if finish => back_to(&format!("/patients/{pid}/social"), "note-social-done"),
        Ok(_) => {
            let next = if go == "back" {
                step.saturating_sub(1).max(1)
            } else {
                step + 1
            };
            Redirect::to(&format!("/patients/{pid}/social/screen?step={next}")).into_response()
        }
        Err(e) => match refusal(&t, &e) {
            Some(msg) => match screen_view(&s, &p, &pid, step, Some(&answers), Some(msg)).await {
                Ok(page) => render(&page, StatusCode::UNPROCESSABLE_ENTITY),
                Err(e) => failed(&t, e),
            },
            None => failed(&t, e),
        },
    }
}

async fn choose(
    State(s): State<AppState>,
    session: Session,
    Path((pid, need)): Path<(String, String)>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(choice) = Choice::parse(f.one("choice")) else {
        return needs_again(
            &s,
            &p,
            &pid,
            CareError::input("social-choice-missing", "choose one of the answers"),
        )
        .await;
    };
    match s.social.choose(&p.caller, &pid, &need, choice).await {
        Ok(()) => back_to(
            &format!("/patients/{pid}/social#needs"),
            "note-social-choice",
        ),
        Err(e) => needs_again(&s, &p, &pid, e).await,
    }
}

/// The needs page again with a refusal the person can act on, or the failure page.
async fn needs_again(s: &AppState, p: &Person, pid: &str, e: CareError) -> Response {
    show_refusal(&p.t(), e, needs_view(s, p, pid, None)).await
}

async fn refer(
    State(s): State<AppState>,
    session: Session,
    Path((pid, need)): Path<(String, String)>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s
        .social
        .refer(&p.caller, &pid, &need, f.one("service"), f.one("note"))
        .await
    {
        Ok(_) => back_to(
            &format!("/patients/{pid}/social#needs"),
            "note-social-referred",
        ),
        Err(e) => needs_again(&s, &p, &pid, e).await,
    }
}

async fn cancel(
    State(s): State<AppState>,
    session: Session,
    Path((pid, task)): Path<(String, String)>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(reason) = Ending::parse(f.one("reason")) else {
        return needs_again(
            &s,
            &p,
            &pid,
            CareError::input("referral-reason", "say why the referral ended"),
        )
        .await;
    };
    match s.social.cancel(&p.caller, &pid, &task, reason).await {
        Ok(()) => back_to(
            &format!("/patients/{pid}/social#needs"),
            "note-social-cancelled",
        ),
        Err(e) => needs_again(&s, &p, &pid, e).await,
    }
}

async fn helped(
    State(s): State<AppState>,
    session: Session,
    Path((pid, task)): Path<(String, String)>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(answer) = Helped::parse(f.one("answer")) else {
        return needs_again(
            &s,
            &p,
            &pid,
            CareError::input("social-choice-missing", "choose one of the answers"),
        )
        .await;
    };
    match s.social.helped(&p.caller, &pid, &task, answer).await {
        Ok(()) => back_to(
            &format!("/patients/{pid}/social#needs"),
            "note-social-helped",
        ),
        Err(e) => needs_again(&s, &p, &pid, e).await,
    }
}

#[derive(Template)]
#[template(path = "social_panel.html")]
pub(crate) struct SocialBox {
    t: crate::i18n::Tr,
    pid: String,
    never: bool,
    waiting: usize,
}

/// The box on the patient's home: an invitation to answer the questions, or the needs waiting
/// for the patient's word; nothing for someone who may not see social needs.
pub(crate) fn home_panel<'a>(
    s: &'a AppState,
    p: &'a Person,
    pid: &'a str,
) -> Pin<Box<dyn Future<Output = Result<Option<String>, CareError>> + Send + 'a>> {
    Box::pin(async move {
        if !s.social.may_see(&p.caller, pid) {
            return Ok(None);
        }
        let latest = s.social.latest(&p.caller, pid).await?;
        let needs = s.social.needs(&p.caller, pid).await?;
        let b = SocialBox {
            t: p.t(),
            pid: pid.to_string(),
            never: latest.is_none(),
            waiting: needs.iter().filter(|n| n.choice.is_none()).count(),
        };
        b.render()
            .map(Some)
            .map_err(|e| CareError::App(AppError::Internal(e.to_string())))
    })
}

/// One row of the worklist's social-needs section.
pub(crate) struct WorkRow {
    pid: String,
    name: String,
    what: String,
    status: String,
    age: String,
    due: String,
    overdue: bool,
    /// "Escalated to the social worker", once a step was missed.
    escalated: String,
}

#[derive(Template)]
#[template(path = "social_worklist.html")]
struct SocialWork {
    t: crate::i18n::Tr,
    waiting: Vec<WorkRow>,
    referrals: Vec<WorkRow>,
}

/// The section of the community health worker's and social worker's worklist: needs waiting
/// for the patient's word, referrals by status and age (overdue first); None for other roles.
pub(crate) async fn worklist_section(
    s: &AppState,
    p: &Person,
    role: coproduce_core::access::Role,
) -> Result<Option<String>, CareError> {
    use coproduce_core::access::Role;
    if !matches!(role, Role::CommunityHealthWorker | Role::SocialWorker) {
        return Ok(None);
    }
    let t = p.t();
    let w = s.social.worklist(&p.caller).await?;
    let now = s.social.now();
    let days = |at: Option<time::OffsetDateTime>| {
        at.map(|a| {
            t.count(
                "social-age-days",
                "n",
                usize::try_from((now - a).whole_days().max(0)).unwrap_or(0),
            )
        })
        .unwrap_or_default()
    };
    let waiting = w
        .waiting
        .iter()
        .map(|(pid, name, n)| WorkRow {
            pid: pid.clone(),
            name: name.clone(),
            what: need_label(&t, n),
            status: t.t("social-choice-none"),
            age: String::new(),
            due: String::new(),
            overdue: false,
            escalated: String::new(),
        })
        .collect();
    let referrals = w
        .referrals
        .iter()
        .map(|(pid, name, r)| {
            let status = status_words(&t, r);
            WorkRow {
                pid: pid.clone(),
                name: name.clone(),
                what: format!("{} · {}", r.service, r.organization),
                status,
                age: days(r.authored),
                due: r.due.map(|d| t.when_zoned(d)).unwrap_or_default(),
                overdue: r.due.is_some_and(|d| d <= now),
                escalated: r
                    .escalated_to
                    .map(|role| t.arg("social-escalated", "role", &t.t(&format!("owner-{role}"))))
                    .unwrap_or_default(),
            }
        })
        .collect();
    SocialWork {
        t,
        waiting,
        referrals,
    }
    .render()
    .map(Some)
    .map_err(|e| CareError::App(AppError::Internal(e.to_string())))
}

impl crate::shell::Framed for NeedsPage {
    fn frame_mut(&mut self) -> &mut Frame {
        &mut self.f
    }
}
