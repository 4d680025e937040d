//! Whether the loop closes, for the quality analyst: screening, each domain's positive rate,
//! referrals, loop closure (beside the published 27%) and time to it, need met by the
//! organisation's and the patient's account, why referrals did not close; overall and by
//! language, age band and sex, with two plots. Aggregates only, from one audited pass.

use crate::AppState;
use crate::shell::{Frame, failed, person, render};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use coproduce_core::social::ahc::Domain;
use coproduce_core::social::measures::Tally;
use tower_sessions::Session;

pub(crate) struct Row {
    label: String,
    patients: usize,
    screened: String,
    referrals: usize,
    accepted: usize,
    closure: String,
    median: String,
    met_org: String,
    met_patient: String,
}

#[derive(Template)]
#[template(path = "social_measures.html")]
pub(crate) struct MeasuresPage {
    f: Frame,
    overall: Row,
    groups: Vec<(String, Vec<Row>)>,
    positive: Vec<(String, String)>,
    reasons: Vec<(String, usize)>,
    positive_chart: String,
    reasons_chart: String,
}

use crate::breakdown::pct;

fn row(t: &crate::i18n::Tr, label: String, x: &Tally) -> Row {
    Row {
        label,
        patients: x.patients,
        screened: pct(x.screening_rate()),
        referrals: x.referrals,
        accepted: x.accepted,
        closure: pct(x.closure_rate()),
        median: x
            .median_days_to_closure()
            .map(|d| {
                t.count(
                    "social-age-days",
                    "n",
                    usize::try_from(d.max(0)).unwrap_or(0),
                )
            })
            .unwrap_or_else(|| "–".into()),
        met_org: pct(x.need_met_by_organisation()),
        met_patient: pct(x.need_met_by_patient()),
    }
}

pub(crate) async fn page(State(s): State<AppState>, session: Session) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let r = match s.social.population_measures(&p.caller).await {
        Ok(r) => r,
        Err(e) => return failed(&t, e),
    };
    let groups =
        crate::breakdown::by_person(&t, &r.by_language, &r.by_age_band, &r.by_sex, |label, x| {
            row(&t, label, x)
        });
    let o = &r.overall;
    let positive: Vec<(String, f64)> = Domain::ALL
        .iter()
        .map(|d| {
            (
                d.english().to_string(),
                o.positive_rate(*d).unwrap_or(0.0) * 100.0,
            )
        })
        .collect();
    let reasons: Vec<(String, usize)> = o
        .not_closed
        .iter()
        .map(|(k, n)| (t.t(&format!("social-measures-why-{k}")), *n))
        .collect();
    let reasons_f: Vec<(String, f64)> = reasons
        .iter()
        .map(|(k, n)| (k.clone(), *n as f64))
        .collect();
    let page = MeasuresPage {
        f: p.frame(t.t("social-measures-title"), None, None),
        overall: row(&t, t.t("social-measures-all"), o),
        groups,
        positive_chart: crate::charts::bars(
            &positive,
            100.0,
            &t.t("social-measures-positive-chart"),
            "%",
        )
        .unwrap_or_default(),
        reasons_chart: crate::charts::bars(
            &reasons_f,
            1.0,
            &t.t("social-measures-reasons-chart"),
            "",
        )
        .unwrap_or_default(),
        positive: positive
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v:.1}%")))
            .collect(),
        reasons,
    };
    render(&page, StatusCode::OK)
}
