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
    team: Vec<Row>,
    patient: Vec<Row>,
    months: Vec<Row>,
    goals: String,
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

/// A kind's name: ours, else a task's, else its code (a kind from another system).
fn kind_label(t: &crate::i18n::Tr, kind: &str) -> String {
    [format!("partnership-kind-{kind}"), format!("task-{kind}")]
        .into_iter()
        .find(|k| t.has(k))
        .map_or_else(|| kind.to_string(), |k| t.t(&k))
}

pub(crate) async fn page(State(s): State<AppState>, session: Session) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let now = s.care.now();
    let local = p.calendar.local_time(now);
    // The twelve whole months before this one, and this one so far.
    let first =
        time::Date::from_calendar_date(local.year() - 1, local.month(), 1).unwrap_or(local.date());
    let from = p.calendar.instant(first, time::Time::MIDNIGHT);
    let found = match s.care.population_promises(&p.caller, from, now).await {
        Ok(f) => f,
        Err(e) => return failed(&t, e),
    };
    let by_kind = s.care.score(&found, from, now, By::Kind);
    let by_month = s.care.score(&found, from, now, By::Month);
    let mut team = vec![row(t.t("partnership-all"), &by_kind.team)];
    team.extend(
        by_kind
            .team_by
            .iter()
            .map(|(k, x)| row(kind_label(&t, k), x)),
    );
    let by_role = s.care.score(&found, from, now, By::Role);
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
    let page = PartnershipPage {
        f: p.frame(t.t("partnership-title"), None, None),
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
        trend_chart: crate::charts::bars(&points, 100.0, &t.t("partnership-trend-chart"), "%")
            .unwrap_or_default(),
    };
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
        let card = match s
            .care
            .scorecard(&p.caller, from, now, By::Kind, Some(pid))
            .await
        {
            Ok(c) => c,
            Err(CareError::App(AppError::Forbidden(_))) => return Ok(None),
            Err(e) => return Err(e),
        };
        if card.team.counted() + card.patient.counted() + card.goals == 0 {
            return Ok(None);
        }
        let t = p.t();
        let own = coproduce_app::Care::own_patient(&p.caller).as_deref() == Some(pid);
        let name = if own {
            String::new()
        } else {
            s.care
                .chart(&p.caller, pid)
                .await
                .map(|c| c.name)
                .unwrap_or_default()
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
            t,
        }
        .render()
        .map(Some)
        .map_err(|e| CareError::App(AppError::Internal(e.to_string())))
    })
}
