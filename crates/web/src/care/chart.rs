//! The patient's chart as each side sees it: the plan, readings with their targets and
//! plots, the care team and tasks, and the boxes other workflows add (the rescue pack). For
//! the patient it is their home.

use super::*;

pub(crate) fn notifications(
    t: &Tr,
    chart: &Chart,
    side: Option<Side>,
    now: OffsetDateTime,
) -> Vec<String> {
    let mut out = Vec::new();
    let recent = |at: OffsetDateTime| now - at < time::Duration::days(30);
    if side == Some(Side::Patient) {
        for g in &chart.goals {
            if g.state == GoalState::Awaiting(Side::Patient) {
                out.push(t.with("notify-goal-waiting", &[("goal", g.text.clone())]));
            }
            if let Some(last) = g.history.last()
                && recent(last.at)
                && last.event == "agreed"
                && g.state == GoalState::Agreed
                // The team agreed to what the patient's side proposed: news for them.
                && g.proposed_by_side == Some(Side::Patient)
            {
                out.push(t.with(
                    "notify-goal-agreed",
                    &[("goal", g.text.clone()), ("who", last.by.clone())],
                ));
            }
        }
        for r in &chart.readings {
            if let Some(rv) = &r.review
                && recent(rv.at)
                && let Some(c) = &rv.comment
            {
                out.push(t.with(
                    "notify-reviewed",
                    &[
                        ("measure", measure_title(t, r.measure)),
                        ("value", value_label(t, r.measure, &r.value)),
                        ("who", rv.by.clone()),
                        ("comment", c.clone()),
                    ],
                ));
            }
        }
    }
    out
}

#[derive(Template)]
#[template(path = "chart.html")]
pub(crate) struct ChartPage {
    pub(crate) f: Frame,
    pub(crate) pid: String,
    pub(crate) name: String,
    /// The patient's own home (not someone else's view of the chart).
    pub(crate) own: bool,
    pub(crate) team: bool,
    pub(crate) notifications: Vec<String>,
    /// The boxes other workflows registered for the patient's home, rendered.
    pub(crate) panels: Vec<String>,
    pub(crate) goals: Vec<GoalRow>,
    pub(crate) activities: Vec<ActivityRow>,
    pub(crate) cards: Vec<MeasureCard>,
    pub(crate) care_team: Vec<(String, String)>,
    pub(crate) tasks: Vec<String>,
    pub(crate) owners: Vec<Choice>,
    pub(crate) settings: Vec<Choice>,
    pub(crate) targets: Vec<Choice>,
    pub(crate) goal_text: String,
    /// "" for the patient, "-family" or "-team": which variant of the words `say` picks.
    pub(crate) reader_suffix: &'static str,
}

impl ChartPage {
    /// The words for whoever reads the chart: the key's variant for a family member (naming
    /// the patient) or for the team when it has one, else the patient's own.
    pub(crate) fn say(&self, key: &str) -> String {
        let variant = format!("{key}{}", self.reader_suffix);
        if !self.reader_suffix.is_empty() && self.f.t.has(&variant) {
            self.f.t.arg(&variant, "name", &self.name)
        } else {
            self.f.t.t(key)
        }
    }
}

pub(crate) async fn chart_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
    error: Option<String>,
) -> Result<ChartPage, CareError> {
    let t = p.t();
    let chart = s.care.chart(&p.caller, pid).await?;
    let now = s.care.now();
    let own = coproduce_app::Care::own_patient(&p.caller).as_deref() == Some(pid);
    let side = p.side();
    let title = if own {
        t.t("home-title")
    } else {
        chart.name.clone()
    };
    let mut notes = notifications(&t, &chart, side, now);
    if own {
        notes.extend(
            crate::inbox::inbox_lines(s, p, 20)
                .await?
                .into_iter()
                .filter(|n| n.unread)
                .map(|n| format!("{} · {}", n.at, n.text)),
        );
    }
    let mut panels = Vec::new();
    for panel in s.panels.iter() {
        panels.extend(panel(s, p, pid).await?);
    }
    Ok(ChartPage {
        panels,
        notifications: notes,
        goals: chart
            .goals
            .iter()
            .map(|g| goal_row(&t, g, p.role(), Reader::of(p.role(), &chart.name)))
            .collect(),
        activities: chart
            .activities
            .iter()
            .map(|a| activity_row(&t, a, p.role(), now))
            .collect(),
        cards: Measure::ALL
            .into_iter()
            .map(|m| measure_card(s, &t, &chart, m, true))
            .collect(),
        care_team: chart
            .team
            .iter()
            .map(|(who, role)| {
                let role = match Owner::parse(role) {
                    Some(o) => owner_label(&t, o),
                    None => role.clone(),
                };
                (who.clone(), role)
            })
            .collect(),
        tasks: chart
            .tasks
            .iter()
            .map(|x| {
                format!(
                    "{} · {}",
                    task_name(&t, x),
                    x.due.map(|at| t.day(at)).unwrap_or_default()
                )
            })
            .collect(),
        owners: owners_for(&t, side),
        settings: settings(&t),
        targets: hba1c_targets(&t),
        goal_text: String::new(),
        reader_suffix: match p.role() {
            Some(Role::Patient) => "",
            Some(Role::Family) => "-family",
            _ => "-team",
        },
        f: p.frame(title, note, error),
        pid: pid.to_string(),
        name: chart.name,
        own,
        team: side == Some(Side::Team),
    })
}

pub(crate) async fn show_chart(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    match chart_view(s, p, pid, note, error).await {
        Ok(page) => render(&page, status),
        Err(e) => failed(&p.t(), e),
    }
}

pub(crate) async fn chart_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let note = note(&p.t(), &q);
    show_chart(&s, &p, &pid, note, None, StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "family_home.html")]
pub(crate) struct FamilyHome {
    pub(crate) f: Frame,
    pub(crate) patients: Vec<(String, String)>,
}

/// A family member's home: the patients whose charts they follow.
pub(crate) async fn family_home(s: &AppState, p: &Person, note: Option<String>) -> Response {
    let t = p.t();
    match s.care.patients(&p.caller).await {
        Ok(patients) => render(
            &FamilyHome {
                f: p.frame(t.t("family-home-title"), note, None),
                patients,
            },
            StatusCode::OK,
        ),
        Err(e) => failed(&t, e),
    }
}
