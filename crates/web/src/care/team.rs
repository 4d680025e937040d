//! The team home: what needs attention across the panel (readings to review, goals waiting
//! for the team, tasks falling due), one row and one action per patient.

use super::*;

#[derive(Template)]
#[template(path = "team_home.html")]
pub(crate) struct TeamHome {
    pub(crate) f: Frame,
    pub(crate) panel_size: usize,
    pub(crate) readings_total: usize,
    pub(crate) distribution: String,
    pub(crate) distribution_alt: String,
    pub(crate) readings: Vec<FlagRow>,
    pub(crate) goals: Vec<(String, String, String)>,
    pub(crate) activities: Vec<(String, String, String, String)>,
    pub(crate) tasks: Vec<(String, String, String, String, bool)>,
    pub(crate) panel: Vec<(String, String)>,
    /// Whether this person signs readings off (clinical roles only).
    pub(crate) can_review: bool,
}

/// At most this many readings are listed on the team home.
pub(crate) const TEAM_ROWS: usize = 200;

pub(crate) struct FlagRow {
    pub(crate) pid: String,
    pub(crate) patient: String,
    pub(crate) id: String,
    pub(crate) measure: String,
    pub(crate) value: String,
    pub(crate) at: String,
    pub(crate) by: String,
    pub(crate) flags: Vec<(String, &'static str)>,
}

/// Renders the team home for a team member (the benchmark calls this too).
pub async fn team_home_html(
    s: &AppState,
    caller: &Caller,
    lang: &str,
) -> Result<String, CareError> {
    let t = Tr::new(lang).in_zone(s.calendar.clone());
    let page = team_home_view(s, caller, &t, String::new(), String::new(), None).await?;
    page.render()
        .map_err(|e| CareError::App(AppError::Internal(e.to_string())))
}

pub(crate) async fn team_home_view(
    s: &AppState,
    caller: &Caller,
    t: &Tr,
    csrf: String,
    username: String,
    note: Option<String>,
) -> Result<TeamHome, CareError> {
    let a = s.care.attention(caller).await?;
    let now = s.care.now();
    let counts = charts::band_counts(&a.latest_hba1c);
    let distribution_alt = t.with(
        "team-distribution-alt",
        &[
            ("n", a.latest_hba1c.len().to_string()),
            (
                "bands",
                charts::HBA1C_BANDS
                    .iter()
                    .zip(&counts)
                    .map(|((_, _, label), c)| format!("{label} %: {c}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ],
    );
    let distribution = if a.latest_hba1c.is_empty() {
        String::new()
    } else {
        charts::hba1c_distribution(
            &a.latest_hba1c,
            &t.t("team-distribution-title"),
            &t.t("team-patients"),
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "a chart failed to draw");
            String::new()
        })
    };
    // Glucose readings while on a rescue pack's steroid are flagged for the team.
    let steroid = s.rescue.steroid_windows(caller).await?;
    // Flagged first; a long list is cut, with its full count in the heading.
    let readings = a
        .readings
        .iter()
        .take(TEAM_ROWS)
        .map(|f| {
            let r = &f.reading;
            let mut flags = vec![(t.t("flag-unreviewed"), "unreviewed")];
            if f.overdue {
                flags.push((t.t("flag-review-overdue"), "overdue"));
            }
            if f.out_of_range {
                flags.push((t.t("flag-out-of-range"), "out-of-range"));
            }
            if r.measure == Measure::Glucose
                && steroid
                    .iter()
                    .any(|(p, from, to)| *p == r.patient && *from <= r.at && r.at <= *to)
            {
                flags.push((t.t("flag-steroid"), "steroid"));
            }
            FlagRow {
                pid: r.patient.clone(),
                patient: a.name_of(&r.patient).to_string(),
                id: r.id.clone(),
                measure: measure_title(t, r.measure),
                value: value_label(r.measure, &r.value),
                at: t.when(r.at),
                by: r.by.clone(),
                flags,
            }
        })
        .collect();
    Ok(TeamHome {
        f: Frame {
            t: t.clone(),
            csrf,
            username,
            note,
            error: None,
            title: t.t("team-home-title"),
        },
        can_review: coproduce_app::vocabulary::role_of(caller)
            .is_some_and(coproduce_core::care::readings::may_review),
        panel_size: a.panel.len(),
        readings_total: a.readings.len(),
        distribution,
        distribution_alt,
        readings,
        goals: a
            .goals
            .iter()
            .map(|g| {
                (
                    g.patient.clone(),
                    a.name_of(&g.patient).to_string(),
                    g.text.clone(),
                )
            })
            .collect(),
        activities: a
            .activities
            .iter()
            .map(|x| {
                (
                    x.patient.clone(),
                    a.name_of(&x.patient).to_string(),
                    x.text.clone(),
                    x.facts.next_due().map(|at| t.day(at)).unwrap_or_default(),
                )
            })
            .collect(),
        tasks: a
            .tasks
            .iter()
            .map(|x| {
                (
                    x.patient.clone(),
                    a.name_of(&x.patient).to_string(),
                    x.what.clone(),
                    x.due.map(|at| t.day(at)).unwrap_or_default(),
                    x.due.is_some_and(|d| d < now),
                )
            })
            .collect(),
        panel: a.panel,
    })
}
