//! The clinician's prescribing page: a medicine of the formulary with its cost to this
//! patient, the partnership check before signing (the cost under their coverage and the
//! cheaper alternatives, each question's finding) and the directions as the patient will read
//! them; signing writes the prescription and checks it.

use crate::AppState;
use crate::shell::{Frame, Pairs, Person, back_to, person, person_form, render, show_refusal};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use coproduce_app::{AppError, CareError};
use tower_sessions::Session;

/// One drug of the formulary as the prescriber's list offers it.
pub(crate) struct DrugOption {
    code: String,
    label: String,
    chosen: bool,
}

/// One question of the check, before signing.
pub(crate) struct FindingRow {
    question: &'static str,
    finding: &'static str,
    text: String,
}

#[derive(Template)]
#[template(path = "prescribe.html")]
pub(crate) struct PrescribePage {
    f: Frame,
    pid: String,
    drugs: Vec<DrugOption>,
    /// The drug chosen, checked: its label, the cost line, the alternatives (code, line).
    drug: Option<String>,
    name: String,
    cost: String,
    alternatives: Vec<(String, String)>,
    findings: Vec<FindingRow>,
    /// The directions' fields, with their defaults, and how the patient will read them.
    units: Vec<(&'static str, String, bool)>,
    frequencies: Vec<(&'static str, String)>,
    reads: String,
}

impl crate::shell::Framed for PrescribePage {
    fn frame_mut(&mut self) -> &mut Frame {
        &mut self.f
    }
}

async fn prescribe_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    drug: Option<&str>,
    note: Option<String>,
) -> Result<PrescribePage, CareError> {
    use coproduce_core::prescribing::check::Finding;
    use coproduce_core::prescribing::sig::{DoseUnit, Frequency, Sig};
    let t = p.t();
    if !coproduce_core::prescribing::sig::prescribes(&p.caller.actor.who, pid) {
        return Err(CareError::App(AppError::Forbidden(
            "prescriptions are written by a clinician on the patient's care team".into(),
        )));
    }
    let formulary = s.prescribing.formulary(&p.caller).await?;
    let preview = match drug.filter(|d| !d.is_empty()) {
        Some(d) => Some(s.prescribing.preview(&p.caller, pid, d).await?),
        None => None,
    };
    let coverage = match &preview {
        Some(pv) => pv.coverage,
        None => None,
    };
    let drugs = formulary
        .drugs()
        .iter()
        .map(|d| DrugOption {
            label: format!(
                "{} {} · {}",
                d.name,
                d.strength,
                coverage
                    .and_then(|k| d.cost(k))
                    .map_or_else(|| d.class.clone(), |c| format!("{c} · {}", d.class))
            ),
            chosen: drug == Some(d.code.as_str()),
            code: d.code.clone(),
        })
        .collect();
    let mut page = PrescribePage {
        f: p.frame(t.t("prescribe-title"), note, None),
        pid: pid.to_string(),
        drugs,
        drug: None,
        name: String::new(),
        cost: String::new(),
        alternatives: Vec::new(),
        findings: Vec::new(),
        units: Vec::new(),
        frequencies: Frequency::ALL
            .iter()
            .map(|f| (f.as_str(), t.t(&format!("sig-{}", f.as_str()))))
            .collect(),
        reads: String::new(),
    };
    let Some(pv) = preview else {
        return Ok(page);
    };
    let basis = if pv.drug.basis == coproduce_core::prescribing::Basis::Modelled {
        t.t("prescribe-modelled")
    } else {
        String::new()
    };
    page.cost = match (pv.coverage, pv.cost) {
        (None, _) => t.t("prescribe-cost-no-coverage"),
        (Some(k), None) => t.arg("prescribe-cost-unknown", "coverage", k.english()),
        (Some(k), Some(c)) => t.with(
            "prescribe-cost",
            &[
                ("coverage", k.english().to_string()),
                ("cost", c.to_string()),
                ("fill", pv.drug.fill.clone()),
                ("days", pv.drug.days.to_string()),
                ("basis", basis),
            ],
        ),
    };
    page.alternatives = pv
        .alternatives
        .iter()
        .map(|(d, cost, saves)| {
            (
                d.code.clone(),
                t.with(
                    "prescribe-alternative",
                    &[
                        ("drug", format!("{} {}", d.name, d.strength)),
                        ("cost", cost.to_string()),
                        ("saves", saves.to_string()),
                    ],
                ),
            )
        })
        .collect();
    page.findings = pv
        .check
        .findings
        .iter()
        .map(|(k, f)| {
            let (finding, text) = match f {
                Finding::Clear(w) => ("clear", w.clone()),
                Finding::Barrier(r) => ("barrier", r.english()),
                Finding::Unknown(w) => ("unknown", w.clone()),
            };
            FindingRow {
                question: k.as_str(),
                finding,
                text,
            }
        })
        .collect();
    let unit = DoseUnit::for_drug(&pv.drug.form, &pv.drug.class);
    page.units = DoseUnit::ALL
        .iter()
        .map(|u| {
            (
                u.as_str(),
                t.t(&format!("prescribe-unit-{}", u.as_str())),
                *u == unit,
            )
        })
        .collect();
    let language = pv.patient.language.clone();
    let example = Sig {
        amount: 1,
        unit,
        frequency: Frequency::OnceDaily,
        as_needed: false,
    };
    page.reads = t.with(
        "prescribe-reads",
        &[
            ("language", crate::i18n::language_name(&language)),
            (
                "text",
                coproduce_app::prescribing::prescribe::directions(
                    &crate::i18n::Tr::new(&language),
                    &example,
                ),
            ),
        ],
    );
    page.name = format!("{} {}", pv.drug.name, pv.drug.strength);
    page.drug = Some(pv.drug.code);
    Ok(page)
}

#[derive(serde::Deserialize)]
pub(crate) struct Chosen {
    drug: Option<String>,
}

pub(super) async fn prescribe_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    Query(q): Query<Chosen>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    match prescribe_view(&s, &p, &pid, q.drug.as_deref(), None).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => crate::shell::show_refusal(&t, e, prescribe_view(&s, &p, &pid, None, None)).await,
    }
}

pub(super) async fn prescribe(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let drug = f.one("drug").to_string();
    let sig = match coproduce_core::prescribing::sig::Sig::new(
        f.one("amount"),
        f.one("unit"),
        f.one("frequency"),
        f.one("as_needed") == "yes",
    ) {
        Ok(sig) => sig,
        Err(why) => {
            let e = CareError::Input {
                key: "prescribe-sig-refused",
                english: why.clone(),
                args: vec![("why", why)],
            };
            return show_refusal(&p.t(), e, prescribe_view(&s, &p, &pid, Some(&drug), None)).await;
        }
    };
    match s.prescribing.prescribe(&p.caller, &pid, &drug, &sig).await {
        Ok(id) => back_to(
            &format!("/patients/{pid}/medicines#medicine-{id}"),
            "note-meds-prescribed",
        ),
        Err(e) => show_refusal(&p.t(), e, prescribe_view(&s, &p, &pid, Some(&drug), None)).await,
    }
}
