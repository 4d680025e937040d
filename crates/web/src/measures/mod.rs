//! The quality analyst's page: population figures only, never a chart. Utilisation over the
//! last twelve full months by month (a table and a trend), and the rescue pack's evaluation
//! (enrolled against matched patients, with its plot). The figures come from one audited
//! pass over the population, allowed by the policy to those who may see it in aggregate.

use crate::AppState;
use crate::shell::{Frame, Person, failed, person, render};
use askama::Template;
use axum::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use coproduce_app::measures::{Measure, Population};
use coproduce_app::{AppError, CareError};
use coproduce_measures::MeasureBundle;
use coproduce_measures::utilisation::Rates;
use std::sync::Arc;
use time::{Date, Duration};
use tower_sessions::Session;

pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/analyst", get(analyst_page), false),
        ("/analyst/measures/{name}", get(measure_page), false),
        (
            "/analyst/measures/{name}/{year}/{population}",
            get(patients_page),
            false,
        ),
    ]
}

/// The program the page evaluates.
const PROGRAM: &str = "rescue-pack";

struct Row {
    label: String,
    patient_years: String,
    ed: String,
    ed_copd: String,
    admissions: String,
    admissions_copd: String,
    readmissions: String,
}

fn row(label: &str, r: &Rates) -> Row {
    let per = |n| r.per_1000(n).map_or("-".to_string(), |v| format!("{v:.1}"));
    Row {
        label: label.to_string(),
        patient_years: format!("{:.1}", r.patient_years),
        ed: per(r.ed_visits),
        ed_copd: per(r.copd_ed_visits),
        admissions: per(r.admissions),
        admissions_copd: per(r.copd_admissions),
        readmissions: r
            .readmission_share()
            .map_or("-".to_string(), |s| format!("{:.1}%", s * 100.0)),
    }
}

struct EvaluationView {
    pairs: usize,
    effect: String,
    interval: String,
    reading: String,
    plot: String,
}

#[derive(Template)]
#[template(path = "analyst.html")]
struct AnalystPage {
    f: Frame,
    period: String,
    patients: u64,
    overall: Row,
    months: Vec<Row>,
    trend: String,
    trend_alt: String,
    evaluation: Option<EvaluationView>,
    /// The configured quality measures: (name, title).
    measures: Vec<(String, String)>,
    /// AHRQ's prevention indicators: their figures, and the trend of both by month.
    pqi: Vec<PqiRow>,
    pqi_trend: String,
    pqi_trend_alt: String,
}

struct PqiRow {
    title: String,
    discharges: u64,
    patient_years: String,
    rate: String,
}

/// The last twelve full months before `today`.
fn last_year(today: Date) -> (Date, Date) {
    let first = today.replace_day(1).unwrap_or(today);
    let end = first - Duration::days(1);
    let start = Date::from_calendar_date(first.year() - 1, first.month(), 1).unwrap_or(first);
    (start, end)
}

async fn analyst_page(State(s): State<AppState>, session: Session) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    show(&s, &p).await
}

pub(crate) async fn show(s: &AppState, p: &Person) -> Response {
    let t = p.t();
    let (start, end) = last_year(s.care.now().date());
    let o =
        match coproduce_app::measures::evaluation::overview(&s.api, &p.caller, PROGRAM, start, end)
            .await
        {
            Ok(o) => o,
            Err(e) => return failed(&t, CareError::App(e)),
        };
    let u = &o.utilisation;
    let points: Vec<(String, f64, f64)> = u
        .by_month
        .iter()
        .map(|(m, r)| {
            (
                m.clone(),
                r.per_1000(r.ed_visits).unwrap_or(0.0),
                r.per_1000(r.admissions).unwrap_or(0.0),
            )
        })
        .collect();
    let (ed_label, adm_label) = (t.t("analyst-ed"), t.t("analyst-admissions"));
    let trend = crate::charts::utilisation_trend(
        &points,
        &t.t("analyst-trend-title"),
        (&ed_label, &adm_label),
    )
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "a chart failed to draw");
        String::new()
    });
    let trend_alt = t.arg(
        "analyst-trend-alt",
        "months",
        &points
            .iter()
            .map(|(m, a, b)| format!("{m}: {a:.0} / {b:.0}"))
            .collect::<Vec<_>>()
            .join("; "),
    );
    let evaluation = o.evaluation.as_ref().map(|e| EvaluationView {
        pairs: e.pairs,
        effect: format!("{:+.3} ({:+.0}%)", e.effect, e.relative * 100.0),
        interval: format!(
            "{:+.3} to {:+.3} ({:+.0}% to {:+.0}%)",
            e.interval.0,
            e.interval.1,
            e.relative_interval.0 * 100.0,
            e.relative_interval.1 * 100.0
        ),
        reading: e.reading(),
        plot: crate::charts::evaluation(e, PROGRAM).unwrap_or_default(),
    });
    // The two prevention indicators month by month, per 100,000 patient-years.
    let pqi_points: Vec<(String, f64, f64)> = match o.pqi.as_slice() {
        [a, b] => a
            .monthly_rates()
            .into_iter()
            .zip(b.monthly_rates())
            .map(|((m, x), (_, y))| (m, x, y))
            .collect(),
        _ => Vec::new(),
    };
    let (pqi01_label, pqi05_label) = (t.t("analyst-pqi01"), t.t("analyst-pqi05"));
    let pqi_trend = crate::charts::utilisation_trend(
        &pqi_points,
        &t.t("analyst-pqi-trend-title"),
        (&pqi01_label, &pqi05_label),
    )
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "a chart failed to draw");
        String::new()
    });
    let pqi_trend_alt = t.arg(
        "analyst-pqi-trend-alt",
        "months",
        &pqi_points
            .iter()
            .map(|(m, a, b)| format!("{m}: {a:.0} / {b:.0}"))
            .collect::<Vec<_>>()
            .join("; "),
    );
    let pqi = o
        .pqi
        .iter()
        .map(|x| PqiRow {
            title: x.indicator.title().to_string(),
            discharges: x.discharges,
            patient_years: format!("{:.1}", x.patient_years),
            rate: match (x.rate_per_100k(), x.interval_per_100k()) {
                (Some(r), Some((lo, hi))) => format!("{r:.0} ({lo:.0}–{hi:.0})"),
                _ => "–".into(),
            },
        })
        .collect();
    render(
        &AnalystPage {
            pqi,
            pqi_trend,
            pqi_trend_alt,
            f: p.frame(t.t("analyst-title"), None, None),
            period: format!("{start} – {end}"),
            patients: o.patients,
            overall: row(&t.t("analyst-all"), &u.overall),
            months: u.by_month.iter().map(|(m, r)| row(m, r)).collect(),
            trend,
            trend_alt,
            evaluation,
            measures: s
                .config
                .measures
                .iter()
                .map(|(name, _)| (name.clone(), measure_title(name)))
                .collect(),
        },
        StatusCode::OK,
    )
}

fn measure_title(name: &str) -> String {
    Measure::title_of(name).map_or_else(|| name.to_uppercase(), str::to_string)
}

/// The configured measure `name`.
fn configured(s: &AppState, name: &str) -> Option<Arc<MeasureBundle>> {
    s.config
        .measures
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b.clone())
}

fn not_configured(t: &crate::i18n::Tr, name: &str) -> Response {
    failed(
        t,
        CareError::App(AppError::NotFound(format!("the measure {name}"))),
    )
}

struct YearRow {
    year: i32,
    counts: Vec<(String, u64)>,
    rate: String,
    interval: String,
}

#[derive(Template)]
#[template(path = "analyst_measure.html")]
struct MeasurePage {
    f: Frame,
    name: String,
    lower_is_better: bool,
    headings: Vec<String>,
    rows: Vec<YearRow>,
    chart: String,
    chart_alt: String,
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A measure's results for this year and the two before (calendar-year measurement
/// periods, as eCQMs are reported), with each count leading to its patients.
async fn measure_page(
    State(s): State<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let Some(bundle) = configured(&s, &name) else {
        return not_configured(&t, &name);
    };
    let year = s.care.now().date().year();
    let results =
        match coproduce_app::measures::by_year(&s.api, &p.caller, &name, &bundle, year - 2..=year)
            .await
        {
            Ok(r) => r,
            Err(e) => return failed(&t, CareError::App(e)),
        };
    let rows: Vec<YearRow> = results
        .iter()
        .map(|(y, c)| YearRow {
            year: *y,
            counts: Population::ALL
                .iter()
                .map(|&pop| (pop.code().to_string(), c.of(pop)))
                .collect(),
            rate: c.rate().map_or("-".into(), percent),
            interval: c.interval().map_or("-".into(), |(lo, hi)| {
                format!("{} – {}", percent(lo), percent(hi))
            }),
        })
        .collect();
    let points: Vec<(String, f64, f64, f64)> = results
        .iter()
        .filter_map(|(y, c)| {
            let (lo, hi) = c.interval()?;
            Some((y.to_string(), c.rate()?, lo, hi))
        })
        .collect();
    let title = measure_title(&name);
    let chart = crate::charts::measure_trend(&points, &t.t("analyst-measure-chart"))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "a chart failed to draw");
            String::new()
        });
    let chart_alt = points
        .iter()
        .map(|(y, r, lo, hi)| format!("{y}: {} ({} – {})", percent(*r), percent(*lo), percent(*hi)))
        .collect::<Vec<_>>()
        .join("; ");
    let lower_is_better = Measure::lower_is_better(&name);
    render(
        &MeasurePage {
            f: p.frame(title, None, None),
            name,
            lower_is_better,
            headings: Population::ALL
                .iter()
                .map(|pop| t.t(&format!("analyst-population-{}", pop.code())))
                .collect(),
            rows,
            chart,
            chart_alt,
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "analyst_patients.html")]
struct PatientsPage {
    f: Frame,
    name: String,
    lead: String,
    rows: Vec<(String, String)>,
}

/// The patients behind one count: their ids and the records that put them there. Audited
/// with every patient listed.
async fn patients_page(
    State(s): State<AppState>,
    session: Session,
    Path((name, year, population)): Path<(String, String, String)>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let Some(bundle) = configured(&s, &name) else {
        return not_configured(&t, &name);
    };
    let (Ok(year), Some(pop)) = (year.parse::<i32>(), Population::from_code(&population)) else {
        return failed(
            &t,
            CareError::App(AppError::NotFound(format!("{year}/{population}"))),
        );
    };
    let found =
        match coproduce_app::measures::patients_in(&s.api, &p.caller, &name, &bundle, year, pop)
            .await
        {
            Ok(f) => f,
            Err(e) => return failed(&t, CareError::App(e)),
        };
    let title = measure_title(&name);
    let lead = t.with(
        "analyst-patients-lead",
        &[
            (
                "population",
                t.t(&format!("analyst-population-{}", pop.code())),
            ),
            ("year", year.to_string()),
            ("n", found.len().to_string()),
        ],
    );
    let rows = found
        .iter()
        .map(|r| {
            let evidence: Vec<String> = r
                .evidence
                .iter()
                .map(|(pop, what)| format!("{pop}: {what}"))
                .collect();
            (r.patient.clone(), evidence.join("; "))
        })
        .collect();
    render(
        &PatientsPage {
            f: p.frame(title, None, None),
            name,
            lead,
            rows,
        },
        StatusCode::OK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_last_twelve_full_months() {
        assert_eq!(
            last_year(date!(2026 - 11 - 27)),
            (date!(2025 - 11 - 01), date!(2026 - 10 - 31))
        );
        assert_eq!(
            last_year(date!(2026 - 01 - 01)),
            (date!(2025 - 01 - 01), date!(2025 - 12 - 31))
        );
    }
}
