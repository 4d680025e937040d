//! The team's side: the open concerns of the units they work on (every unit's for the
//! manager) with their deadlines and one action each, and one concern in a blame-free form
//! with who took each step, the next steps, and the manager's choices.

use super::*;
use coproduce_core::deadline::Standing;
use coproduce_core::speakup::{Step, manages};

pub(crate) struct QueueRow {
    id: String,
    unit: String,
    raised: String,
    category: String,
    what: String,
    urgent: bool,
    feedback: bool,
    stage: String,
    due: String,
    standing: &'static str,
    standing_label: String,
    /// A concern nobody has acknowledged yet is acknowledged from the list.
    acknowledge: bool,
}

#[derive(Template)]
#[template(path = "speakup_queue.html")]
pub(crate) struct QueuePage {
    f: Frame,
    every_unit: bool,
    units: String,
    rows: Vec<QueueRow>,
}

fn standing(t: &Tr, s: Option<Standing>) -> (&'static str, String) {
    match s {
        Some(s) => (s.as_str(), t.t(&format!("deadline-{}", s.as_str()))),
        None => ("done", t.t("deadline-done")),
    }
}

/// The first words of a concern, for a row.
fn gist(what: &str) -> String {
    let mut out: String = what.chars().take(90).collect();
    if what.chars().count() > 90 {
        out.push('…');
    }
    out
}

pub(crate) async fn queue_page(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<crate::shell::Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let queue = match s.speakup.queue(&p.caller).await {
        Ok(q) => q,
        Err(e) => return failed(&t, e),
    };
    let now = s.speakup.now();
    let rows = queue
        .open
        .iter()
        .map(|v| {
            let (standing, standing_label) = standing(&t, v.standing(now));
            QueueRow {
                id: v.record.id.clone(),
                unit: v.unit_name.clone(),
                raised: t.when_zoned(v.record.concern.raised_at),
                category: category_label(&t, &v.record.concern.category),
                what: gist(&v.record.what),
                urgent: v.urgent(),
                feedback: v.record.concern.kind == Kind::Feedback,
                stage: stage_label(&t, v.stage).0,
                due: v
                    .due
                    .as_ref()
                    .map(|d| {
                        format!(
                            "{} · {}",
                            t.when_zoned(d.due),
                            t.t(&format!("owner-{}", d.role.as_str()))
                        )
                    })
                    .unwrap_or_default(),
                standing,
                standing_label,
                acknowledge: v.record.concern.next_team_steps() == ["acknowledged"],
            }
        })
        .collect();
    let units = queue
        .units
        .iter()
        .map(|u| u.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let page = QueuePage {
        f: p.frame(t.t("team-concerns-title"), note(&t, &q), None),
        every_unit: queue.every_unit,
        units,
        rows,
    };
    render(&page, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "speakup_team_concern.html")]
pub(crate) struct TeamConcernPage {
    f: Frame,
    id: String,
    unit: String,
    room: String,
    when: String,
    raised: String,
    category: String,
    what: String,
    urgent: bool,
    stage: String,
    due: Option<(String, String, &'static str, String)>,
    reporter: String,
    language: String,
    steps: Vec<StepLine>,
    /// Each next step: its key, its button, and the label of its words when it takes some.
    next: Vec<(String, String, Option<String>)>,
    manager: bool,
    names_released: bool,
    safety_event: String,
}

async fn team_view(
    s: &AppState,
    p: &Person,
    id: &str,
    note: Option<String>,
    error: Option<String>,
) -> Result<TeamConcernPage, CareError> {
    let t = p.t();
    let v = s.speakup.concern_for_team(&p.caller, id).await?;
    let now = s.speakup.now();
    let language = crate::i18n::language_name(&v.record.language);
    let (st, st_label) = standing(&t, v.standing(now));
    let next = v
        .record
        .concern
        .next_team_steps()
        .iter()
        .map(|k| {
            (
                k.to_string(),
                t.t(&format!("team-concern-do-{k}")),
                matches!(*k, "action-taken" | "answered")
                    .then(|| t.t(&format!("team-concern-words-{k}"))),
            )
        })
        .collect();
    let role = p.role();
    let title = match v.record.concern.kind {
        Kind::Concern => t.t("team-concern-title"),
        Kind::Feedback => t.t("team-feedback-title"),
    };
    Ok(TeamConcernPage {
        f: p.frame(title, note, error),
        id: id.to_string(),
        unit: v.unit_name.clone(),
        room: v.record.room.clone(),
        when: v.record.when.clone(),
        raised: t.when_zoned(v.record.concern.raised_at),
        category: category_label(&t, &v.record.concern.category),
        what: v.record.what.clone(),
        urgent: v.urgent(),
        stage: stage_label(&t, v.stage).0,
        due: v.due.as_ref().map(|d| {
            (
                t.when_zoned(d.due),
                t.t(&format!("owner-{}", d.role.as_str())),
                st,
                st_label.clone(),
            )
        }),
        reporter: t.t(match (&v.record.reporter, v.record.patient.is_some()) {
            (None, _) => "team-concern-anonymous",
            (Some(r), _) if r.starts_with("RelatedPerson/") => "team-concern-by-family",
            _ => "team-concern-by-patient",
        }),
        language,
        steps: v
            .steps
            .iter()
            .map(|x| StepLine {
                at: t.when_zoned(x.at),
                what: t.t(&format!("team-concern-step-{}", x.step)),
                words: x.text.clone(),
                by: x.by.clone(),
            })
            .collect(),
        next,
        manager: role.is_some_and(manages),
        names_released: v.record.names_released,
        safety_event: v.record.safety_event.clone().unwrap_or_default(),
    })
}

pub(crate) async fn concern_page(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<crate::shell::Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    match team_view(&s, &p, &id, note(&t, &q), None).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => refused_page(&t, e),
    }
}

pub(crate) async fn step(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = p.t();
    let result = match Step::team(f.one("step"), f.one("text")) {
        Some(step) => s.speakup.step(&p.caller, &id, step).await,
        None => Err(CareError::Input {
            key: "team-concern-step-unknown",
            english: "choose a step".into(),
            args: Vec::new(),
        }),
    };
    match result {
        // From the list, back to the list; from the concern, back to it.
        Ok(()) if f.one("back") == "list" => back_to("/team/concerns", "note-concern-step"),
        Ok(()) => back_to(&format!("/team/concerns/{id}"), "note-concern-step"),
        Err(e) => again_with(&t, e, |msg| team_view(&s, &p, &id, None, Some(msg))).await,
    }
}

pub(crate) async fn manage(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = p.t();
    let event = f.one("event");
    match s
        .speakup
        .manage(
            &p.caller,
            &id,
            f.one("release") == "yes",
            Some(event).filter(|e| !e.trim().is_empty()),
        )
        .await
    {
        Ok(()) => back_to(&format!("/team/concerns/{id}"), "note-concern-managed"),
        Err(e) => again_with(&t, e, |msg| team_view(&s, &p, &id, None, Some(msg))).await,
    }
}
