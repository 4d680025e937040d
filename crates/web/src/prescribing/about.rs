//! The patient's side as a page: how they pay for medicines, how they get them and from
//! which pharmacy, and the four cost questions, for the patient, their family and the team at
//! the desk, in the reader's language.

use crate::AppState;
use crate::shell::{
    Frame, Pairs, Person, back_to, failed, note, person, person_form, render, show_refusal,
};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use coproduce_app::CareError;
use tower_sessions::Session;

/// One question of the "getting your medicines" page: its field, its words, its options
/// (value, words, chosen).
pub(crate) struct AboutQuestion {
    field: String,
    text: String,
    options: Vec<(String, String, bool)>,
}

#[derive(Template)]
#[template(path = "medicines_about.html")]
pub(crate) struct AboutPage {
    f: Frame,
    pid: String,
    /// How they pay, how they get medicines.
    choices: Vec<AboutQuestion>,
    cost: Vec<AboutQuestion>,
}

impl crate::shell::Framed for AboutPage {
    fn frame_mut(&mut self) -> &mut Frame {
        &mut self.f
    }
}

async fn about_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
) -> Result<AboutPage, CareError> {
    use coproduce_core::prescribing::CoverageKind;
    use coproduce_core::prescribing::check::{CostAnswers, Getting};
    let t = p.t();
    let side = s.prescribing.patient_side(&p.caller, pid, None).await?;
    let coverage = AboutQuestion {
        field: "coverage".into(),
        text: t.t("meds-about-coverage"),
        options: CoverageKind::ALL
            .iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    t.t(&format!("meds-about-coverage-{}", k.as_str())),
                    side.coverage == Some(*k),
                )
            })
            .collect(),
    };
    let getting = AboutQuestion {
        field: "getting".into(),
        text: t.t("meds-about-getting"),
        options: Getting::ALL
            .iter()
            .map(|g| {
                (
                    g.as_str().to_string(),
                    t.t(&format!("meds-about-getting-{}", g.as_str())),
                    side.getting == Some(*g),
                )
            })
            .collect(),
    };
    let cost = CostAnswers::ITEMS
        .iter()
        .map(|item| {
            let said = side.cost_answers.and_then(|a| {
                a.items()
                    .iter()
                    .find(|(c, _)| c == item)
                    .map(|(_, yes)| *yes)
            });
            yes_no_question(&t, item, t.t(&format!("meds-about-crn-{item}")), said)
        })
        .collect();
    Ok(AboutPage {
        f: p.frame(t.t("meds-about-title"), note, None),
        pid: pid.to_string(),
        choices: vec![
            coverage,
            getting,
            yes_no_question(&t, "written", t.t("meds-about-written"), side.wants_written),
        ],
        cost,
    })
}

pub(super) async fn about_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    Query(q): Query<crate::shell::Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    match about_view(&s, &p, &pid, note(&t, &q)).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => failed(&t, e),
    }
}

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// A yes-or-no question of the page, with what was said before.
fn yes_no_question(
    t: &crate::i18n::Tr,
    field: &str,
    text: String,
    said: Option<bool>,
) -> AboutQuestion {
    AboutQuestion {
        field: field.to_string(),
        text,
        options: [("yes", true), ("no", false)]
            .iter()
            .map(|(v, b)| {
                (
                    (*v).to_string(),
                    t.t(&format!("meds-about-{v}")),
                    said == Some(*b),
                )
            })
            .collect(),
    }
}

/// Saves what the form says (`Prescribing::save_situation` decides what to write).
pub(super) async fn about(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    use coproduce_core::prescribing::CoverageKind;
    use coproduce_core::prescribing::check::Getting;
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let saved = s.prescribing.save_situation(
        &p.caller,
        &pid,
        CoverageKind::parse(f.one("coverage")),
        Getting::parse(f.one("getting")).map(|g| (g, f.one("pharmacy"))),
        yes_no(f.one("written")),
        |item| yes_no(f.one(item)),
    );
    match saved.await {
        Ok(()) => back_to(&format!("/patients/{pid}/medicines"), "note-meds-about"),
        Err(e) => show_refusal(&p.t(), e, about_view(&s, &p, &pid, None)).await,
    }
}
