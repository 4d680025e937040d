//! The rescue-pack box on the patient's home: the state in a line and the one button. The
//! router registers it as a panel of the chart, which knows nothing of the rescue pack.

use super::*;
use std::future::Future;
use std::pin::Pin;

/// The rescue-pack box on the patient's home: the state in a line and the one button.
#[derive(Template)]
#[template(path = "rescue_panel.html")]
struct RescueBox {
    pub(crate) t: Tr,
    pub(crate) pid: String,
    pub title: String,
    pub status: Vec<String>,
    pub can_start: bool,
    pub check_in: bool,
}

/// The box as a panel of the patient's home (see `shell::PatientPanel`).
pub(crate) fn home_panel<'a>(
    s: &'a AppState,
    p: &'a Person,
    pid: &'a str,
) -> Pin<Box<dyn Future<Output = Result<Option<String>, CareError>> + Send + 'a>> {
    Box::pin(async move {
        let Some(b) = rescue_box(s, p, pid).await? else {
            return Ok(None);
        };
        b.render()
            .map(Some)
            .map_err(|e| CareError::App(coproduce_app::AppError::Internal(e.to_string())))
    })
}

async fn rescue_box(s: &AppState, p: &Person, pid: &str) -> Result<Option<RescueBox>, CareError> {
    let t = p.t();
    let Some(c) = s.rescue.active(&p.caller, pid).await? else {
        return Ok(None);
    };
    let now = s.rescue.now();
    let own_side = matches!(p.role(), Some(Role::Patient | Role::Family));
    // The box is on the patient's home (and a family member's view of it): the patient's
    // name is what a family member reads.
    let name = match p.role() {
        Some(Role::Family) => coproduce_app::vocabulary::person_name(
            &s.api
                .read(&p.caller, "Patient", pid)
                .await?
                .json()
                .map_err(coproduce_app::AppError::from)?,
        ),
        _ => String::new(),
    };
    let viewer = Viewer {
        role: p.role(),
        me: p.caller.fhir_ref.as_deref(),
        patient_name: &name,
    };
    Ok(Some(RescueBox {
        pid: pid.to_string(),
        title: s.rescue.protocol.pack.get(t.lang).to_string(),
        status: status_lines(&t, &c, now, &viewer),
        can_start: own_side && ready_in_hand(s, p, pid).await?,
        check_in: own_side
            && c.check_in_open(
                s.rescue.protocol.rules.check_in_opens,
                &s.rescue.calendar,
                now,
            ),
        t,
    }))
}
