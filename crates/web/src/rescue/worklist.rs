//! The rescue packs a team role has work on, as a section of that role's worklist (the
//! home composes it): packs to teach back, to dispense, to replace, and packs in hand that
//! expire within 30 days, one row and one link each.

use super::*;

#[derive(Template)]
#[template(path = "rescue_worklist.html")]
struct PacksToDo {
    t: Tr,
    rows: Vec<(String, String, String)>,
}

/// How far ahead a pack's expiry is shown to those who dispense.
const EXPIRY_AHEAD: time::Duration = time::Duration::days(30);

/// The section, or None when the role has nothing to do on any pack.
pub(crate) async fn worklist_section(
    s: &AppState,
    p: &Person,
    role: Role,
) -> Result<Option<String>, CareError> {
    let t = p.t();
    let rules = &s.rescue.protocol.rules;
    let today = s.rescue.calendar.local_time(s.rescue.now()).date();
    let mut rows = Vec::new();
    for v in s.rescue.packs_in_hand(&p.caller).await? {
        let may = |kind: &str| v.pack.may(rules, role, kind, today);
        let todo = if may("taught-back") {
            Some(t.t("rescue-todo-teach"))
        } else if may("dispensed") {
            Some(t.t("rescue-todo-dispense"))
        } else if may("replaced") {
            Some(t.t("rescue-todo-replace"))
        } else {
            v.pack
                .expires()
                .filter(|e| {
                    v.stage == Stage::Ready
                        && rules.dispense_by.contains(&role)
                        && *e <= today + EXPIRY_AHEAD
                })
                .map(|e| t.arg("rescue-todo-expiring", "date", &e.to_string()))
        };
        if let Some(what) = todo {
            rows.push((v.patient.clone(), v.patient_name.clone(), what));
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    PacksToDo { t, rows }
        .render()
        .map(Some)
        .map_err(|e| CareError::App(coproduce_app::AppError::Internal(e.to_string())))
}
