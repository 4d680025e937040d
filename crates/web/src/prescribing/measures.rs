//! Whether prescribing sees the whole person, for the quality analyst: checks complete,
//! barriers found by kind, resolved within the deadline and the median time to it, the
//! patients' "I can't" and how each ended, cost-related non-adherence beside the Medicare
//! survey, first fills confirmed, and the HbA1c change after a resolved barrier; overall and
//! by coverage, language, age band and sex (the equity breakdown), with three plots.
//! Aggregates only, from one audited pass.

use crate::AppState;
use crate::shell::{Frame, failed, person, render};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use coproduce_core::prescribing::CoverageKind;
use coproduce_core::prescribing::check::{CostAnswers, Kind};
use coproduce_core::prescribing::measures::Tally;
use tower_sessions::Session;

pub(crate) struct Row {
    label: String,
    patients: usize,
    prescriptions: usize,
    complete: String,
    barriers: usize,
    on_time: String,
    median: String,
    cant: usize,
    crn: String,
    first_fill: String,
}

#[derive(Template)]
#[template(path = "prescribing_measures.html")]
pub(crate) struct MeasuresPage {
    f: Frame,
    overall: Row,
    groups: Vec<(String, Vec<Row>)>,
    kinds: Vec<(String, usize)>,
    kinds_chart: String,
    outcomes: Vec<(String, usize)>,
    outcomes_chart: String,
    /// Each cost question: its label, this population's rate, the survey's.
    crn: Vec<(String, String, &'static str)>,
    crn_chart: String,
    hba1c: String,
}

use crate::breakdown::pct;

fn row(t: &crate::i18n::Tr, label: String, x: &Tally) -> Row {
    Row {
        label,
        patients: x.patients,
        prescriptions: x.prescriptions,
        complete: pct(x.complete_rate()),
        barriers: x.barriers,
        on_time: pct(x.on_time_rate()),
        median: x
            .median_days_to_resolution()
            .map(|d| t.arg("rx-measures-days", "n", &format!("{d:.1}")))
            .unwrap_or_else(|| "–".into()),
        cant: x.cant,
        crn: pct(x.crn_rate()),
        first_fill: pct(x.first_fill_rate()),
    }
}

/// Bars of counts, with their table.
fn counted(items: Vec<(String, usize)>, title: &str) -> (Vec<(String, usize)>, String) {
    let values: Vec<(String, f64)> = items.iter().map(|(k, n)| (k.clone(), *n as f64)).collect();
    let chart = crate::charts::bars(&values, 1.0, title, "").unwrap_or_default();
    (items, chart)
}

pub(crate) async fn page(State(s): State<AppState>, session: Session) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let r = match s.prescribing.population_measures(&p.caller).await {
        Ok(r) => r,
        Err(e) => return failed(&t, e),
    };
    let coverage = |k: &str| {
        CoverageKind::parse(k).map_or_else(
            || t.t("rx-measures-coverage-unknown"),
            |c| c.english().to_string(),
        )
    };
    let mut groups = vec![(
        t.t("rx-measures-coverage"),
        r.by_coverage
            .iter()
            .map(|(k, x)| row(&t, coverage(k), x))
            .collect(),
    )];
    groups.extend(crate::breakdown::by_person(
        &t,
        &r.by_language,
        &r.by_age_band,
        &r.by_sex,
        |label, x| row(&t, label, x),
    ));
    let o = &r.overall;
    let (kinds, kinds_chart) = counted(
        Kind::ALL
            .iter()
            .map(|k| (t.t(&format!("meds-barrier-{}", k.as_str())), o.kind(*k)))
            .collect(),
        &t.t("rx-measures-kinds-chart"),
    );
    let mut outcomes: Vec<(&str, usize)> = o.cant_outcomes.iter().map(|(k, n)| (*k, *n)).collect();
    outcomes.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let (outcomes, outcomes_chart) = counted(
        outcomes
            .into_iter()
            .map(|(k, n)| (t.t(&format!("rx-measures-outcome-{k}")), n))
            .collect(),
        &t.t("rx-measures-outcomes-chart"),
    );
    let survey = ["18.3%", "15.8%", "12.4%", "–"];
    let crn_values: Vec<(String, f64)> = CostAnswers::ITEMS
        .iter()
        .enumerate()
        .map(|(i, item)| {
            (
                t.t(&format!("rx-measures-crn-{item}")),
                o.crn_item_rate(i).unwrap_or(0.0) * 100.0,
            )
        })
        .collect();
    let page = MeasuresPage {
        f: p.frame(t.t("rx-measures-title"), None, None),
        overall: row(&t, t.t("social-measures-all"), o),
        groups,
        kinds,
        kinds_chart,
        outcomes,
        outcomes_chart,
        crn_chart: crate::charts::bars(&crn_values, 100.0, &t.t("rx-measures-crn-chart"), "%")
            .unwrap_or_default(),
        crn: crn_values
            .iter()
            .zip(survey)
            .enumerate()
            .map(|(i, ((k, _), published))| (k.clone(), pct(o.crn_item_rate(i)), published))
            .collect(),
        hba1c: match o.mean_hba1c_change() {
            Some(c) => t.with(
                "rx-measures-hba1c",
                &[
                    ("change", format!("{c:+.2}")),
                    ("n", o.hba1c_changes.len().to_string()),
                ],
            ),
            None => t.t("rx-measures-hba1c-none"),
        },
    };
    render(&page, StatusCode::OK)
}
