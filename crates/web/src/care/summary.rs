//! The printable visit summary: goals, the last three months of readings against their
//! targets, the active conditions and medicines, and what is still to do on each side.

use super::*;

#[derive(Template)]
#[template(path = "summary.html")]
pub(crate) struct SummaryPage {
    pub(crate) f: Frame,
    pub(crate) pid: String,
    pub(crate) printed: String,
    pub(crate) goals: Vec<GoalRow>,
    pub(crate) cards: Vec<MeasureCard>,
    pub(crate) recent: HashMap<&'static str, Vec<(String, String)>>,
    pub(crate) patient_side: Vec<ActivityRow>,
    pub(crate) team_side: Vec<ActivityRow>,
    /// None where the reader may not see them.
    pub(crate) conditions: Option<Vec<String>>,
    pub(crate) medicines: Option<Vec<String>>,
}

impl SummaryPage {
    fn recent_of(&self, key: &str) -> &[(String, String)] {
        self.recent.get(key).map_or(&[], Vec::as_slice)
    }
}

pub(crate) async fn summary_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let chart = match s.care.chart(&p.caller, &pid).await {
        Ok(c) => c,
        Err(e) => return failed(&t, e),
    };
    let record = match s.care.visit_record(&p.caller, &pid).await {
        Ok(r) => r,
        Err(e) => return failed(&t, e),
    };
    let now = s.care.now();
    let since = now - time::Duration::days(90);
    // The readings of the last three months only: the cards, their plots and their lists.
    let mut chart = chart;
    chart.readings.retain(|r| r.at >= since);
    let cards: Vec<MeasureCard> = Measure::ALL
        .into_iter()
        .filter(|m| chart.readings_of(*m).next().is_some())
        .map(|m| measure_card(&s, &t, &chart, m, true))
        .collect();
    let mut recent = HashMap::new();
    for m in Measure::ALL {
        let mut rs: Vec<&Reading> = chart.readings_of(m).filter(|r| r.at >= since).collect();
        rs.sort_by_key(|r| std::cmp::Reverse(r.at));
        recent.insert(
            m.as_str(),
            rs.into_iter()
                .take(5)
                .map(|r| (t.when(r.at), value_label(&t, m, &r.value)))
                .collect(),
        );
    }
    let open: Vec<ActivityRow> = chart
        .activities
        .iter()
        .filter(|a| !a.facts.finished)
        .map(|a| activity_row(&t, a, None, now))
        .collect();
    let (patient_side, team_side) = open.into_iter().partition(|a| {
        chart
            .activities
            .iter()
            .find(|x| x.index == a.index)
            .is_some_and(|x| x.owner().side() == Side::Patient)
    });
    render(
        &SummaryPage {
            f: p.frame(
                t.with("summary-title", &[("name", chart.name.clone())]),
                None,
                None,
            ),
            printed: t.when(now),
            pid: pid.clone(),
            goals: chart
                .goals
                .iter()
                .filter(|g| g.state != GoalState::Declined)
                .map(|g| goal_row(&t, g, None, Reader::Team))
                .collect(),
            cards,
            recent,
            patient_side,
            team_side,
            conditions: record.conditions,
            medicines: record.medicines,
        },
        StatusCode::OK,
    )
}
