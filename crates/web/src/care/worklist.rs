//! A team role's worklist (the pharmacist's, the community health worker's, the social
//! worker's): the tasks the role owns and the plan activities it owns across its panel, one row
//! and one action each, every patient named with what tells them apart. No reading sign-off
//! here: that belongs to the clinical roles (`core::care::readings::may_review`).

use super::*;
use coproduce_app::care::Worklist;

#[derive(Template)]
#[template(path = "worklist.html")]
pub(crate) struct WorklistPage {
    pub(crate) f: Frame,
    pub(crate) tasks: Vec<ActRow>,
    pub(crate) activities: Vec<ActRow>,
    pub(crate) panel: Vec<(String, String, String)>,
    /// Sections other workflows add (the rescue packs to prepare), rendered.
    pub(crate) sections: Vec<String>,
}

pub(crate) async fn worklist_view(
    s: &AppState,
    p: &Person,
    role: Role,
    note: Option<String>,
    sections: Vec<String>,
) -> Result<WorklistPage, CareError> {
    let t = p.t();
    let now = s.care.now();
    let w: Worklist = s.care.worklist(&p.caller, role).await?;
    let name = |pid: &str| {
        w.people
            .get(pid)
            .map_or_else(|| pid.to_string(), |x| x.name.clone())
    };
    let tasks = w
        .tasks
        .iter()
        .map(|x| ActRow {
            pid: x.patient.clone(),
            patient: name(&x.patient),
            who: who_of(&t, w.people.get(&x.patient)),
            what: task_name(&t, x),
            due: x.due.map(|d| t.when(d)).unwrap_or_default(),
            overdue: x.due.is_some_and(|d| d < now),
            href: if x.code.starts_with("rescue-pack-") {
                "/team/rescue-packs".to_string()
            } else {
                format!("/patients/{}", x.patient)
            },
            class: if x.urgent { "rank-urgent" } else { "" },
        })
        .collect();
    let activities = w
        .activities
        .iter()
        .map(|x| ActRow {
            pid: x.patient.clone(),
            patient: name(&x.patient),
            who: who_of(&t, w.people.get(&x.patient)),
            what: x.text.clone(),
            due: x.facts.next_due().map(|d| t.day(d)).unwrap_or_default(),
            overdue: x.facts.overdue(now),
            href: format!("/patients/{}#activities-h", x.patient),
            class: "",
        })
        .collect();
    let role_name = owner_label(&t, Owner::Team(role));
    Ok(WorklistPage {
        f: p.frame(t.arg("worklist-title", "role", &role_name), note, None),
        tasks,
        activities,
        panel: w
            .panel
            .iter()
            .map(|x| (x.id.clone(), x.name.clone(), who_of(&t, Some(x))))
            .collect(),
        sections,
    })
}
