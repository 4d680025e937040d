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
    /// What needs action now, most urgent first.
    pub(crate) act_now: Vec<ActRow>,
    pub(crate) goals: Vec<(String, String, String)>,
    pub(crate) activities: Vec<(String, String, String, String)>,
    pub(crate) tasks: Vec<(String, String, String, String, bool)>,
    pub(crate) panel: Vec<(String, String)>,
    /// Whether this person signs readings off (clinical roles only).
    pub(crate) can_review: bool,
}

/// At most this many readings are listed on the team home.
pub(crate) const TEAM_ROWS: usize = 200;

/// One row of "needs action now": who (told apart by birth date and record number), what,
/// by when, and the one place to act.
pub(crate) struct ActRow {
    pub(crate) pid: String,
    pub(crate) patient: String,
    pub(crate) who: String,
    pub(crate) what: String,
    pub(crate) due: String,
    pub(crate) overdue: bool,
    pub(crate) href: String,
    pub(crate) class: &'static str,
}

/// "born 1961-04-12 · MRN00001": what tells two patients with one name apart.
pub(crate) fn who_of(t: &Tr, p: Option<&coproduce_app::care::PanelPerson>) -> String {
    let Some(p) = p else { return String::new() };
    let mut parts = Vec::new();
    if let Some(b) = &p.birth_date {
        parts.push(t.arg("team-born", "date", b));
    }
    if let Some(m) = &p.mrn {
        parts.push(m.clone());
    }
    parts.join(" · ")
}

pub(crate) fn who_line(t: &Tr, a: &Attention, patient: &str) -> String {
    who_of(t, a.person(patient))
}

pub(crate) struct FlagRow {
    pub(crate) pid: String,
    pub(crate) patient: String,
    pub(crate) who: String,
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
    let page = team_home_view(s, caller, &t, String::new(), None).await?;
    page.render()
        .map_err(|e| CareError::App(AppError::Internal(e.to_string())))
}

pub(crate) async fn team_home_view(
    s: &AppState,
    caller: &Caller,
    t: &Tr,
    csrf: String,
    note: Option<String>,
) -> Result<TeamHome, CareError> {
    // Glucose readings while on a rescue pack's steroid are flagged for the team; the episodes
    // are looked up while the panel's searches run.
    let (a, steroid) =
        tokio::try_join!(s.care.attention(caller), s.rescue.steroid_windows(caller))?;
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
    // Flagged first; a long list is cut, with its full count in the heading.
    let readings = a
        .readings
        .iter()
        .take(TEAM_ROWS)
        .map(|f| {
            let r = &f.reading;
            let mut flags = Vec::new();
            if let Some(al) = f.alert {
                let class = if al.is_low() {
                    "urgent low"
                } else {
                    "urgent high"
                };
                flags.push((t.t(&format!("alert-{}", al.as_str())), class));
            } else if let Some(b) = f
                .standing
                .filter(|st| *st != Standing::InRange)
                .and_then(|st| standing_badge(t, st))
            {
                flags.push(b);
            }
            flags.push((t.t("flag-unreviewed"), "unreviewed"));
            if f.overdue {
                flags.push((t.t("flag-review-overdue"), "overdue"));
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
                who: who_line(t, &a, &r.patient),
                id: r.id.clone(),
                measure: measure_title(t, r.measure),
                value: value_label(t, r.measure, &r.value),
                at: t.when(r.at),
                by: r.by.clone(),
                flags,
            }
        })
        .collect();
    let act_now = a
        .act_now
        .iter()
        .map(|(why, x)| {
            // The reading itself for an urgent reading, the episodes for a rescue pack, else
            // the chart.
            let href = match (x.code.as_str(), x.focus.as_deref()) {
                (coproduce_app::care::URGENT_READING, Some(f)) if f.starts_with("Observation/") => {
                    format!(
                        "/patients/{}#flag-{}",
                        x.patient,
                        &f["Observation/".len()..]
                    )
                }
                (c, _) if c.starts_with("rescue-pack-") => "/team/rescue-packs".to_string(),
                _ => format!("/patients/{}", x.patient),
            };
            ActRow {
                pid: x.patient.clone(),
                patient: a.name_of(&x.patient).to_string(),
                who: who_line(t, &a, &x.patient),
                what: task_name(t, x),
                due: x.due.map(|d| t.when(d)).unwrap_or_default(),
                overdue: x.due.is_some_and(|d| d < now),
                href,
                class: match (x.alert, why.urgent()) {
                    (Some(al), _) if al.is_low() => "rank-urgent low",
                    (_, true) => "rank-urgent",
                    _ => "",
                },
            }
        })
        .collect();
    Ok(TeamHome {
        act_now,
        f: Frame {
            t: t.clone(),
            csrf,
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
                    task_name(t, x),
                    x.due.map(|at| t.day(at)).unwrap_or_default(),
                    x.due.is_some_and(|d| d < now),
                )
            })
            .collect(),
        panel: a.panel,
    })
}
