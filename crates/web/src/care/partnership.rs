//! Both sides of the partnership, for the quality analyst: the team's promises to patients
//! kept on time over the last 12 months (by kind, and month by month with a plot), the
//! patient's side beside it, and the goals both sides agreed. Aggregates only, from one
//! audited pass (docs/partnership.md).

use crate::AppState;
use crate::breakdown::pct;
use crate::shell::{Frame, failed, person, render};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use coproduce_app::{AppError, CareError};
use coproduce_core::partnership::{By, Tally};
use tower_sessions::Session;

pub(crate) struct Row {
    label: String,
    owed: usize,
    on_time: usize,
    late: usize,
    open: usize,
    share: String,
    median: String,
    escalated: usize,
}

#[derive(Template)]
#[template(path = "partnership.html")]
pub(crate) struct PartnershipPage {
    f: Frame,
    lead: String,
    /// The team's side by care team, language, age band and sex: (heading, rows).
    groups: Vec<(String, Vec<Row>)>,
    /// Who owns the open activities of the plans in each setting, and overall.
    plan_share: String,
    spectrum: String,
    spectrum_rows: Vec<(String, String)>,
    /// On the panel's page: the reader's own late items.
    own_late: Option<Vec<LateRow>>,
    team: Vec<Row>,
    patient: Vec<Row>,
    months: Vec<Row>,
    goals: String,
    shared: String,
    trend_chart: String,
}

fn row(label: String, x: &Tally) -> Row {
    Row {
        label,
        owed: x.counted(),
        on_time: x.on_time,
        late: x.late,
        open: x.overdue,
        share: pct(x.on_time_pct().map(|p| p / 100.0)),
        median: x
            .median_late_hours()
            .map_or_else(|| "–".into(), |h| format!("{h:.1} h")),
        escalated: x.escalated,
    }
}

/// The spectrum picture of open activities and its text alternative: (setting, words).
fn spectrum(
    t: &crate::i18n::Tr,
    plan: &[(
        coproduce_core::care::plan::Setting,
        coproduce_core::care::plan::Owner,
    )],
) -> (
    String,
    Vec<(String, String)>,
    coproduce_core::partnership::Ownership,
) {
    let (by, all) = coproduce_core::partnership::spectrum(plan);
    let rows: Vec<(String, coproduce_core::partnership::Ownership)> = by
        .iter()
        .map(|(setting, o)| (t.t(&format!("setting-{}", setting.as_str())), *o))
        .collect();
    let svg = crate::charts::spectrum(
        &rows,
        &t.t("partnership-spectrum-title"),
        &t.t("partnership-spectrum-patient"),
        &t.t("partnership-spectrum-team"),
    )
    .unwrap_or_default();
    let words = rows
        .iter()
        .map(|(label, o)| {
            (
                label.clone(),
                t.with(
                    "partnership-spectrum-row",
                    &[
                        ("patient", o.patient.to_string()),
                        ("team", o.team.to_string()),
                    ],
                ),
            )
        })
        .collect();
    (svg, words, all)
}

/// A kind's name: ours, else a task's, else its code (a kind from another system).
fn kind_label(t: &crate::i18n::Tr, kind: &str) -> String {
    [format!("partnership-kind-{kind}"), format!("task-{kind}")]
        .into_iter()
        .find(|k| t.has(k))
        .map_or_else(|| kind.to_string(), |k| t.t(&k))
}

/// The first instant of the month a year before this one, in the reader's zone: the
/// pages' period is the twelve whole months before this one and this one so far.
fn year_ago(p: &crate::shell::Person, now: time::OffsetDateTime) -> time::OffsetDateTime {
    let local = p.calendar.local_time(now);
    let first =
        time::Date::from_calendar_date(local.year() - 1, local.month(), 1).unwrap_or(local.date());
    p.calendar.instant(first, time::Time::MIDNIGHT)
}

/// The scorecard page over promises already gathered.
fn view(
    p: &crate::shell::Person,
    found: &coproduce_app::care::Figures,
    title: &str,
    lead: &str,
) -> PartnershipPage {
    let t = p.t();
    let by_kind = found.card(By::Kind);
    let by_month = found.card(By::Month);
    let by_role = found.card(By::Role);
    let mut team = vec![row(t.t("partnership-all"), &by_kind.team)];
    team.extend(
        by_kind
            .team_by
            .iter()
            .map(|(k, x)| row(kind_label(&t, k), x)),
    );
    let mut patient = vec![row(t.t("partnership-all"), &by_role.patient)];
    patient.extend(
        by_role
            .patient_by
            .iter()
            .map(|(k, x)| row(t.t(&format!("partnership-owner-{k}")), x)),
    );
    let months: Vec<Row> = by_month
        .team_by
        .iter()
        .map(|(k, x)| row(k.clone(), x))
        .collect();
    let points: Vec<(String, f64)> = by_month
        .team_by
        .iter()
        .map(|(k, x)| (k.clone(), x.on_time_pct().unwrap_or(0.0)))
        .collect();
    let shared = found.shared_decisions;
    // The team's side by care team, then by the patients' language, age band and sex.
    let card = |by| found.card(by).team_by.clone();
    let mut groups = vec![(
        t.t("partnership-by-team"),
        card(By::Team)
            .iter()
            .map(|(k, x)| row(k.clone(), x))
            .collect::<Vec<_>>(),
    )];
    groups.extend(crate::breakdown::by_person(
        &t,
        &card(By::Language),
        &card(By::AgeBand),
        &card(By::Sex),
        row,
    ));
    let (spectrum_svg, spectrum_rows, plan_all) = spectrum(&t, &found.plan);
    PartnershipPage {
        plan_share: t.with(
            "partnership-plan-share",
            &[
                ("mine", plan_all.patient.to_string()),
                ("all", plan_all.total().to_string()),
                ("share", pct(plan_all.patient_pct().map(|p| p / 100.0))),
            ],
        ),
        spectrum: spectrum_svg,
        spectrum_rows,
        groups,
        f: p.frame(t.t(title), None, None),
        lead: t.t(lead),
        team,
        patient,
        months,
        goals: t.with(
            "partnership-goals",
            &[
                ("agreed", by_kind.goals_agreed.to_string()),
                ("goals", by_kind.goals.to_string()),
                ("share", pct(by_kind.goals_agreed_pct().map(|p| p / 100.0))),
            ],
        ),
        shared: t.with(
            "partnership-shared",
            &[
                ("top", shared.top.to_string()),
                ("n", shared.responses.to_string()),
                ("share", pct(shared.pct().map(|p| p / 100.0))),
            ],
        ),
        trend_chart: crate::charts::bars(&points, 100.0, &t.t("partnership-trend-chart"), "%")
            .unwrap_or_default(),
        own_late: None,
    }
}

/// The population's scorecard, for the quality analyst (aggregates only).
pub(crate) async fn page(State(s): State<AppState>, session: Session) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let now = s.care.now();
    let from = year_ago(&p, now);
    let found = match s
        .care
        .population_figures(&p.caller, from, now, &By::ALL)
        .await
    {
        Ok(f) => f,
        Err(e) => return failed(&t, e),
    };
    let page = view(&p, &found, "partnership-title", "partnership-lead");
    render(&page, StatusCode::OK)
}

/// One of the signed-in member's own late items on the panel page: one action, open it.
pub(crate) struct LateRow {
    pid: String,
    patient: String,
    what: String,
    due: String,
}

/// The panel's scorecard, for a member of the care team: the same figures as the analyst's
/// over the patients they care for, and their own late items (never a colleague's by name).
pub(crate) async fn panel_page(State(s): State<AppState>, session: Session) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let Some(role) = p.role().filter(|r| r.is_team()) else {
        return failed(
            &t,
            CareError::App(AppError::Forbidden(
                "the panel's scorecard is the care team's".into(),
            )),
        );
    };
    let now = s.care.now();
    let from = year_ago(&p, now);
    let found = match s.care.promises(&p.caller, from, now, None).await {
        Ok(f) => s.care.figures(f, from, now, &By::ALL),
        Err(e) => return failed(&t, e),
    };
    let late = match s.care.late_items(&p.caller, role).await {
        Ok(l) => l,
        Err(e) => return failed(&t, e),
    };
    let own_late = late
        .into_iter()
        .map(|x| LateRow {
            what: kind_label(&t, &x.kind),
            due: t.when_zoned(x.due),
            pid: x.patient,
            patient: x.name,
        })
        .collect();
    let mut page = view(
        &p,
        &found,
        "partnership-panel-title",
        "partnership-panel-lead",
    );
    page.own_late = Some(own_late);
    render(&page, StatusCode::OK)
}

/// The box on a patient's home: what the team and the patient's side did of what each owed
/// in the last three months, in plain words and the reader's language.
#[derive(Template)]
#[template(path = "partnership_panel.html")]
struct PartnershipBox {
    t: crate::i18n::Tr,
    title: String,
    team: Option<String>,
    waiting: usize,
    patient: Option<String>,
    goals: Option<String>,
    /// Ask the three questions about shared decisions (the patient's side only).
    ask: Option<String>,
    /// The share of the plan the patient's side owns, the spectrum and its words.
    share: Option<String>,
    spectrum: String,
    spectrum_rows: Vec<(String, String)>,
}

/// The months the home box looks back over.
const BOX_DAYS: i64 = 91;

pub(crate) fn home_panel<'a>(
    s: &'a AppState,
    p: &'a crate::shell::Person,
    pid: &'a str,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Option<String>, CareError>> + Send + 'a>,
> {
    Box::pin(async move {
        let now = s.care.now();
        let from = now - time::Duration::days(BOX_DAYS);
        // A family member whose grant does not reach the plan sees no box.
        let found = match s.care.promises(&p.caller, from, now, Some(pid)).await {
            Ok(f) => f,
            Err(CareError::App(AppError::Forbidden(_))) => return Ok(None),
            Err(e) => return Err(e),
        };
        let card = s.care.score(&found, from, now, By::Kind);
        let ask = s.care.collaborate_due(&p.caller, pid).await?;
        if card.team.counted() + card.patient.counted() + card.goals + found.plan.len() == 0 && !ask
        {
            return Ok(None);
        }
        let t = p.t();
        let own = coproduce_app::Care::own_patient(&p.caller).as_deref() == Some(pid);
        let name = if own {
            String::new()
        } else {
            s.care.patient_name(&p.caller, pid).await?
        };
        let say = |key: &str, args: &[(&str, String)]| {
            let mut args = args.to_vec();
            args.push(("name", name.clone()));
            if own {
                t.with(key, &args)
            } else {
                t.with(&format!("{key}-other"), &args)
            }
        };
        let (plan_svg, plan_rows, plan_all) = spectrum(&t, &found.plan);
        let kept = |x: &Tally| {
            [
                ("kept", x.on_time.to_string()),
                ("owed", x.counted().to_string()),
            ]
        };
        PartnershipBox {
            title: say("partnership-box-title", &[]),
            team: (card.team.counted() > 0).then(|| say("partnership-box-team", &kept(&card.team))),
            waiting: card.team.overdue,
            patient: (card.patient.counted() > 0)
                .then(|| say("partnership-box-patient", &kept(&card.patient))),
            goals: (card.goals > 0).then(|| {
                say(
                    "partnership-box-goals",
                    &[
                        ("agreed", card.goals_agreed.to_string()),
                        ("goals", card.goals.to_string()),
                    ],
                )
            }),
            ask: ask.then(|| format!("/patients/{pid}/collaborate")),
            share: plan_all.patient_pct().map(|share| {
                say(
                    "partnership-box-share",
                    &[
                        ("mine", plan_all.patient.to_string()),
                        ("all", plan_all.total().to_string()),
                        ("share", format!("{share:.0}%")),
                    ],
                )
            }),
            spectrum: plan_svg,
            spectrum_rows: plan_rows,
            t,
        }
        .render()
        .map(Some)
        .map_err(|e| CareError::App(AppError::Internal(e.to_string())))
    })
}

/// One of the three questions, with its answers (value, words, chosen).
pub(crate) struct Question {
    field: &'static str,
    text: String,
    options: Vec<(u8, String, bool)>,
}

#[derive(Template)]
#[template(path = "collaborate.html")]
pub(crate) struct CollaboratePage {
    f: Frame,
    pid: String,
    questions: Vec<Question>,
}

fn collaborate_page(
    p: &crate::shell::Person,
    pid: &str,
    said: [Option<u8>; 3],
    error: Option<String>,
) -> CollaboratePage {
    use coproduce_core::partnership::collaborate::{ITEMS, TOP};
    let t = p.t();
    CollaboratePage {
        f: p.frame(t.t("collaborate-title"), None, error),
        pid: pid.to_string(),
        questions: ITEMS
            .iter()
            .zip(said)
            .map(|(field, chosen)| Question {
                field,
                text: t.t(&format!("collaborate-q-{field}")),
                options: (0..=TOP)
                    .map(|v| (v, t.t(&format!("collaborate-a{v}")), chosen == Some(v)))
                    .collect(),
            })
            .collect(),
    }
}

/// The three questions about shared decisions, for the patient or their family.
pub(crate) async fn collaborate_form(
    State(s): State<AppState>,
    session: Session,
    axum::extract::Path(pid): axum::extract::Path<String>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    // The care team does not answer for the patient (`collaborate::may_answer`).
    if !p
        .role()
        .is_some_and(coproduce_core::partnership::collaborate::may_answer)
    {
        return failed(
            &p.t(),
            CareError::App(AppError::Forbidden(
                "the patient and their family answer these questions".into(),
            )),
        );
    }
    render(&collaborate_page(&p, &pid, [None; 3], None), StatusCode::OK)
}

pub(crate) async fn collaborate_answer(
    State(s): State<AppState>,
    session: Session,
    axum::extract::Path(pid): axum::extract::Path<String>,
    form: Result<axum::Form<crate::shell::Pairs>, axum::extract::rejection::FormRejection>,
) -> Response {
    use coproduce_core::partnership::collaborate::ITEMS;
    let (p, f) = match crate::shell::person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let said = ITEMS.map(|item| f.one(item).parse::<u8>().ok());
    match s.care.record_collaborate(&p.caller, &pid, said).await {
        Ok(_) => crate::shell::back_to(&format!("/patients/{pid}"), "note-collaborate"),
        Err(e) => match crate::shell::refusal(&p.t(), &e) {
            Some(message) => render(
                &collaborate_page(&p, &pid, said, Some(message)),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            None => failed(&p.t(), e),
        },
    }
}
