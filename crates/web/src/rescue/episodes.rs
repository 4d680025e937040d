//! The team's list of open episodes, with each one's deadlines and who owns them.

use super::*;

#[derive(Template)]
#[template(path = "rescue_episodes.html")]
pub(crate) struct EpisodesPage {
    pub(crate) f: Frame,
    pub(crate) episodes: Vec<EpisodeRow>,
    pub(crate) missed: usize,
    pub(crate) checkins: Vec<(String, String)>,
}

pub(crate) struct EpisodeRow {
    pub(crate) pid: String,
    pub(crate) patient: String,
    pub(crate) started: String,
    pub(crate) deadlines: Vec<DeadlineLine>,
    pub(crate) contacted: bool,
    pub(crate) checked_in: Option<String>,
    /// Whether the pack was started (a pack that expired unused has no check-in to record).
    pub(crate) in_use: bool,
}

pub(crate) async fn episodes_page(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    if !matches!(p.caller.actor.who, Who::TeamMember { .. }) {
        return failed(
            &t,
            CareError::App(coproduce_app::AppError::Forbidden("the team's page".into())),
        );
    }
    let episodes = match s.rescue.open_episodes(&p.caller).await {
        Ok(e) => e,
        Err(e) => return failed(&t, e),
    };
    let month_ago = s.rescue.now() - time::Duration::days(30);
    let missed = match s
        .rescue
        .missed_since(&p.caller, coproduce_core::unix_millis(month_ago))
        .await
    {
        Ok(n) => n,
        Err(e) => return failed(&t, e),
    };
    let rows = episodes
        .iter()
        .map(|e| EpisodeRow {
            pid: e.patient.clone(),
            patient: e.patient_name.clone(),
            started: e.pack.started_at().map(|at| t.when(at)).unwrap_or_default(),
            deadlines: e.open_deadlines().map(|d| deadline_line(&t, d)).collect(),
            contacted: e.pack.contact().is_some() || e.pack.started_at().is_none(),
            in_use: e.pack.started_at().is_some(),
            checked_in: e
                .pack
                .check_in()
                .map(|(a, _)| t.t(&format!("checkin-{}", a.as_str()))),
        })
        .collect();
    let n = note(&t, &q);
    render(
        &EpisodesPage {
            f: p.frame(t.t("rescue-episodes-title"), n, None),
            episodes: rows,
            missed,
            checkins: choices(&t, "checkin", CheckIn::ALL.map(CheckIn::as_str)),
        },
        StatusCode::OK,
    )
}
