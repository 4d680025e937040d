//! Whether the loop works, for the manager and the quality analyst: time to acknowledge, the
//! shares acknowledged and answered on time, felt heard and raised again, overall and by unit,
//! category, language and month, with the months plotted.

use super::*;
use coproduce_core::speakup::measures::Tally;

pub(crate) struct MeasureRow {
    label: String,
    raised: usize,
    median: String,
    p90: String,
    acknowledged: String,
    answered: String,
    heard: String,
    again: String,
}

#[derive(Template)]
#[template(path = "speakup_measures.html")]
pub(crate) struct MeasuresPage {
    f: Frame,
    overall: MeasureRow,
    groups: Vec<(String, Vec<MeasureRow>)>,
    chart: String,
    feedback: bool,
}

fn minutes(t: &Tr, m: Option<i64>) -> String {
    match m {
        None => "–".into(),
        Some(m) if m < 120 => t.arg("measure-minutes", "n", &m.to_string()),
        Some(m) if m < 48 * 60 => t.arg("measure-hours", "n", &format!("{:.1}", m as f64 / 60.0)),
        Some(m) => t.arg("measure-days", "n", &format!("{:.1}", m as f64 / 1440.0)),
    }
}

fn pct(s: Option<f64>) -> String {
    s.map_or("–".into(), |v| format!("{:.0}%", v * 100.0))
}

fn row(t: &Tr, label: String, x: &Tally) -> MeasureRow {
    MeasureRow {
        label,
        raised: x.raised,
        median: minutes(t, x.median_minutes()),
        p90: minutes(t, x.p90_minutes()),
        acknowledged: pct(x.acknowledged_on_time_share()),
        answered: pct(x.answered_on_time_share()),
        heard: pct(x.felt_heard_share()),
        again: pct(x.raised_again_share()),
    }
}

#[derive(Debug, serde::Deserialize, Default)]
pub(crate) struct KindQuery {
    #[serde(default)]
    kind: String,
}

pub(crate) async fn measures_page(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<KindQuery>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let kind = Kind::parse(&q.kind).unwrap_or(Kind::Concern);
    let r = match s.speakup.measures(&p.caller, kind).await {
        Ok(r) => r,
        Err(e) => return failed(&t, e),
    };
    let language = crate::i18n::language_name;
    let groups = vec![
        (
            t.t("col-unit"),
            r.by_unit
                .iter()
                .map(|(k, x)| row(&t, k.clone(), x))
                .collect(),
        ),
        (
            t.t("concern-measures-category"),
            r.by_category
                .iter()
                .map(|(k, x)| row(&t, category_label(&t, k), x))
                .collect(),
        ),
        (
            t.t("concern-measures-language"),
            r.by_language
                .iter()
                .map(|(k, x)| row(&t, language(k), x))
                .collect(),
        ),
        (
            t.t("concern-measures-month"),
            r.by_month
                .iter()
                .map(|(k, x)| row(&t, k.clone(), x))
                .collect(),
        ),
    ];
    let months: Vec<(String, f64, f64)> = r
        .by_month
        .iter()
        .map(|(k, x)| {
            (
                k.clone(),
                x.acknowledged_on_time_share().unwrap_or(0.0) * 100.0,
                x.felt_heard_share().unwrap_or(0.0) * 100.0,
            )
        })
        .collect();
    let chart = crate::charts::utilisation_trend(
        &months,
        &t.t("concern-measures-chart"),
        (
            &t.t("concern-measures-acknowledged"),
            &t.t("concern-measures-heard"),
        ),
    )
    .unwrap_or_default();
    let page = MeasuresPage {
        f: p.frame(
            t.t(match kind {
                Kind::Concern => "concern-measures-title",
                Kind::Feedback => "concern-measures-feedback-title",
            }),
            None,
            None,
        ),
        feedback: kind == Kind::Feedback,
        overall: row(
            &t,
            t.t(match kind {
                Kind::Concern => "concern-measures-all",
                Kind::Feedback => "concern-measures-all-feedback",
            }),
            &r.overall,
        ),
        groups,
        chart,
    };
    render(&page, StatusCode::OK)
}
