//! A generated population for the prescribing measures at scale, deterministic from (seed,
//! index). The rates are modelled, not measured, and documented in docs/prescribing.md:
//! a safety-net clinic's coverage mix; the cost-related non-adherence items at about the
//! Medicare survey's rates (18.3% did not fill, 15.8% skipped doses, 12.4% took smaller
//! doses), higher without insurance and lower with Medicaid; about 1.3 new prescriptions a
//! patient a year; cost barriers where the price is high for the coverage, reach barriers
//! where transport is a need, teach-back due for a new medicine, instructions missing in
//! some languages; about 7 in 100 prescriptions met by a patient's "I can't"; most barriers
//! resolved in a day or two, some late; the check-in answered by about 6 in 10; and, for the
//! patients with diabetes, HbA1c either side of a resolution. A site measures its own.

use crate::draw::Draw;
use coproduce_core::prescribing::CoverageKind;
use coproduce_core::prescribing::check::{CostAnswers, Kind, Resolution};
use coproduce_core::prescribing::measures::{BarrierFacts, Outcome, Person, PrescriptionFacts};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const COVERAGE: [(Option<CoverageKind>, f64); 6] = [
    (Some(CoverageKind::Uninsured), 0.16),
    (Some(CoverageKind::Medicaid), 0.36),
    (Some(CoverageKind::MedicarePartD), 0.22),
    (Some(CoverageKind::Commercial), 0.15),
    (Some(CoverageKind::Clinic340B), 0.04),
    (None, 0.07),
];

/// How much likelier than average a coverage kind's patients are to go without because of
/// cost, and to meet a high price.
fn strain(c: Option<CoverageKind>) -> (f64, f64) {
    match c {
        Some(CoverageKind::Uninsured) => (1.7, 0.42),
        Some(CoverageKind::Medicaid) => (0.7, 0.03),
        Some(CoverageKind::MedicarePartD) => (1.0, 0.20),
        Some(CoverageKind::Commercial) => (0.8, 0.12),
        Some(CoverageKind::Clinic340B) => (0.9, 0.05),
        None => (1.0, 0.0),
    }
}

/// Each MCBS item's "yes" rate (did not fill, skipped, smaller doses, delayed), and the
/// share with any of them.
const CRN_ITEMS: [f64; 4] = [0.183, 0.158, 0.124, 0.14];
const CRN_ANY: f64 = 0.27;

/// What resolves each kind of barrier, by weight (only resolutions that fit the kind).
fn resolutions(kind: Kind) -> &'static [(Resolution, f64)] {
    use Resolution::*;
    match kind {
        Kind::Afford => &[
            (SwitchedToAlternative, 0.45),
            (AssistanceProgramme, 0.2),
            (Coupon, 0.2),
            (Other, 0.15),
        ],
        Kind::Reach => &[(MailOrder, 0.4), (Delivery, 0.45), (Other, 0.15)],
        Kind::Understand => &[(TeachBackDone, 0.9), (Other, 0.1)],
        Kind::Language => &[(InstructionsInLanguage, 0.85), (TeachBackDone, 0.15)],
        Kind::Other => &[(Other, 0.6), (SwitchedToAlternative, 0.2), (Delivery, 0.2)],
    }
}

/// A barrier's deadline in calendar days (the business days of the default rules, with
/// weekends between).
fn due_days(kind: Kind) -> f64 {
    match kind {
        Kind::Language => 1.4,
        Kind::Understand => 4.2,
        _ => 2.8,
    }
}

/// A normal draw (Box-Muller).
fn normal(d: &mut Draw, mean: f64, sd: f64) -> f64 {
    let u = 1.0 - d.unit();
    let v = d.unit();
    mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The `index`th patient, their prescriptions and barriers, over the year before `end`.
pub fn patient(
    seed: u64,
    index: u64,
    person: usize,
    end: OffsetDateTime,
) -> (Person, Vec<PrescriptionFacts>, Vec<BarrierFacts>) {
    let (p, r, b, _) = linked(seed, index, person, end);
    (p, r, b)
}

/// [`patient`], with the prescription (its index) each barrier is about.
fn linked(
    seed: u64,
    index: u64,
    person: usize,
    end: OffsetDateTime,
) -> (
    Person,
    Vec<PrescriptionFacts>,
    Vec<BarrierFacts>,
    Vec<usize>,
) {
    let mut d = Draw::new(seed, index);
    let (language, age_band, sex) = crate::draw::demographics(&mut d);
    let coverage = *d.pick(&COVERAGE);
    let (crn, high_price) = strain(coverage);
    let cost_answers = (d.unit() < 0.6).then(|| {
        let strained = d.unit() < CRN_ANY * crn;
        let mut item = |i: usize| strained && d.unit() < CRN_ITEMS[i] / CRN_ANY;
        let a = CostAnswers {
            did_not_fill: item(0),
            skipped_doses: item(1),
            smaller_doses: item(2),
            delayed_fill: item(3),
        };
        (end - Duration::minutes((d.unit() * 525_600.0) as i64), a)
    });
    let getting_known = d.unit() < 0.85;
    let transport_need = d.unit() < 0.13;
    let diabetes = d.unit() < 0.45;
    let went_without = cost_answers.is_some_and(|(_, a)| a.any());
    let mut prescriptions = Vec::new();
    let mut barriers = Vec::new();
    let mut links = Vec::new();
    let mut days_back = d.exp(365.0 / 1.3);
    while days_back < 365.0 {
        let written = end - Duration::minutes((days_back * 1440.0) as i64);
        days_back += d.exp(365.0 / 1.3);
        let complete = coverage.is_some() && cost_answers.is_some() && getting_known;
        let mut found = Vec::new();
        if d.unit() < high_price + if went_without { 0.15 } else { 0.0 } {
            found.push((Kind::Afford, false));
        }
        if transport_need && d.unit() < 0.7 {
            found.push((Kind::Reach, false));
        }
        if d.unit() < 0.25 {
            found.push((Kind::Understand, false));
        }
        if language != "en" && d.unit() < 0.15 {
            found.push((Kind::Language, false));
        }
        if d.unit() < 0.07 {
            let kind = *d.pick(&[
                (Kind::Afford, 0.55),
                (Kind::Reach, 0.2),
                (Kind::Understand, 0.15),
                (Kind::Other, 0.1),
            ]);
            match found.iter_mut().find(|(k, _)| *k == kind) {
                Some(f) => f.1 = true,
                None => found.push((kind, true)),
            }
        }
        let mut unresolved = false;
        for (kind, patient_said) in found {
            let opened = written
                + Duration::minutes(if patient_said {
                    (d.exp(3.0) * 1440.0) as i64
                } else {
                    1
                });
            if opened > end {
                continue;
            }
            let due = opened + Duration::minutes((due_days(kind) * 1440.0) as i64);
            let took = opened + Duration::minutes((d.exp(1.6) * 1440.0) as i64 + 30);
            let roll = d.unit();
            let outcome = if roll < 0.05 {
                Outcome::Cancelled
            } else if roll < 0.92 && took <= end {
                Outcome::Resolved {
                    at: took,
                    how: *d.pick(resolutions(kind)),
                }
            } else {
                unresolved = true;
                Outcome::Open
            };
            let hba1c = match outcome {
                Outcome::Resolved { at, .. }
                    if diabetes && at + Duration::days(90) <= end && d.unit() < 0.7 =>
                {
                    let before = normal(&mut d, 8.9, 1.3).clamp(5.5, 14.0);
                    let after = (before + normal(&mut d, -0.35, 0.8)).clamp(5.0, 14.0);
                    Some((before, after))
                }
                _ => None,
            };
            links.push(prescriptions.len());
            barriers.push(BarrierFacts {
                person,
                kind,
                patient_said,
                opened,
                due: Some(due),
                outcome,
                hba1c,
            });
        }
        let opened_check_in = end - written >= Duration::days(7);
        let first_fill = (opened_check_in && d.unit() < 0.6)
            .then(|| d.unit() < if unresolved { 0.55 } else { 0.88 });
        prescriptions.push(PrescriptionFacts {
            person,
            written,
            check_complete: Some(complete),
            first_fill,
        });
    }
    (
        Person {
            language,
            age_band,
            sex,
            coverage,
            cost_answers,
        },
        prescriptions,
        barriers,
        links,
    )
}

/// `n` generated patients, their prescriptions and barriers.
pub fn population(
    seed: u64,
    n: u64,
    end: OffsetDateTime,
) -> (Vec<Person>, Vec<PrescriptionFacts>, Vec<BarrierFacts>) {
    let mut people = Vec::with_capacity(n as usize);
    let mut prescriptions = Vec::new();
    let mut barriers = Vec::new();
    for i in 0..n {
        let (p, r, b) = patient(seed, i, people.len(), end);
        people.push(p);
        prescriptions.extend(r);
        barriers.extend(b);
    }
    (people, prescriptions, barriers)
}

/// The products a generated prescription is for (the demo formulary's codes).
const DRUGS: [&str; 10] = [
    "metformin-500",
    "lantus-solostar",
    "jardiance-10",
    "ozempic-1",
    "lisinopril-10",
    "amlodipine-5",
    "atorvastatin-40",
    "advair-diskus-250",
    "spiriva-handihaler",
    "proair-respiclick",
];

/// The `index`th patient's prescribing record as FHIR, for the patient `patient` of another
/// generator: their active Coverage, their answers to the cost questions, each prescription
/// with its check's Observation and the check-in's answer, and each barrier as its Task
/// (resolved, cancelled or open). The barriers are history: their Tasks carry no escalation
/// chain, so a server started on the store does not chase them. No HbA1c is written here (the
/// patient's own generator has their readings, and the measures of diabetes care stay as they
/// were).
pub fn resources(seed: u64, index: u64, patient: &str, end: OffsetDateTime) -> Vec<Value> {
    use super::check::{BARRIER_TASK, COST_QUESTIONNAIRE, FINDING_SYSTEM, PRESCRIBING_SYSTEM};
    use crate::vocabulary::{ROLES, TASKS};
    let (person, prescriptions, barriers, links) = linked(seed, index, 0, end);
    let at = coproduce_store::Stored::instant;
    let subject = json!({"reference": format!("Patient/{patient}")});
    let coded = |system: &str, code: &str| json!({"coding": [{"system": system, "code": code}]});
    let mut out = Vec::new();
    if let Some(kind) = person.coverage {
        out.push(json!({
            "resourceType": "Coverage", "id": format!("{patient}-coverage"), "status": "active",
            "type": coded(super::COVERAGE_KIND_SYSTEM, kind.as_str()),
            "beneficiary": subject, "payor": [subject],
        }));
    }
    if let Some((when, answers)) = person.cost_answers {
        out.push(json!({
            "resourceType": "QuestionnaireResponse", "id": format!("{patient}-cost"),
            "questionnaire": COST_QUESTIONNAIRE, "status": "completed",
            "subject": subject, "authored": at(when),
            "item": answers.items().iter().map(|(link, yes)| json!({
                "linkId": link, "answer": [{"valueBoolean": yes}],
            })).collect::<Vec<_>>(),
        }));
    }
    let mut d = Draw::new(seed ^ 0x5EED, index);
    let mut ids = Vec::new();
    for (n, rx) in prescriptions.iter().enumerate() {
        let id = format!("{patient}-rx{n}");
        let drug = DRUGS[(d.next() % DRUGS.len() as u64) as usize];
        out.push(json!({
            "resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
            "medicationCodeableConcept": coded(super::FORMULARY_SYSTEM, drug),
            "subject": subject, "authoredOn": at(rx.written),
        }));
        if let Some(complete) = rx.check_complete {
            let found = barriers
                .iter()
                .zip(&links)
                .filter(|(b, l)| **l == n && !b.patient_said)
                .count();
            let interpretation = match (complete, found) {
                (false, _) => "incomplete",
                (true, 0) => "clean",
                (true, _) => "barriers",
            };
            out.push(json!({
                "resourceType": "Observation", "id": format!("{id}-check"),
                "status": if complete { "final" } else { "preliminary" },
                "code": coded(PRESCRIBING_SYSTEM, "partnership-check"),
                "subject": subject,
                "focus": [{"reference": format!("MedicationRequest/{id}")}],
                "effectiveDateTime": at(rx.written),
                "interpretation": [coded(FINDING_SYSTEM, interpretation)],
            }));
        }
        if let Some(yes) = rx.first_fill {
            out.push(json!({
                "resourceType": "Observation", "id": format!("{id}-first-fill"), "status": "final",
                "code": coded(PRESCRIBING_SYSTEM, super::medicines::FIRST_FILL),
                "subject": subject,
                "focus": [{"reference": format!("MedicationRequest/{id}")}],
                "effectiveDateTime": at(rx.written + Duration::days(8)),
                "valueBoolean": yes,
            }));
        }
        ids.push(id);
    }
    let rules = coproduce_core::prescribing::check::BarrierRules::default();
    for (n, (b, link)) in barriers.iter().zip(&links).enumerate() {
        let Some(mr) = ids.get(*link) else {
            continue;
        };
        let role = rules
            .chain(b.kind)
            .steps()
            .first()
            .map_or("pharmacist", |s| s.role.as_str());
        let input = |name: &str, key: &str, value: Value| {
            let mut i = json!({"type": coded(PRESCRIBING_SYSTEM, name)});
            i[key] = value;
            i
        };
        let reason = match (b.patient_said, b.kind) {
            (true, _) | (_, Kind::Other) => "patient-says-cant",
            (_, Kind::Afford) => "high-cost",
            (_, Kind::Reach) => "no-transport",
            (_, Kind::Understand) => "teach-back-due",
            (_, Kind::Language) => "no-instructions-in-language",
        };
        let mut task = json!({
            "resourceType": "Task", "id": format!("{patient}-barrier{n}"),
            "status": "requested", "intent": "order",
            "code": coded(TASKS, BARRIER_TASK),
            "description": format!("{}: {reason} (generated)", b.kind.as_str()),
            "focus": {"reference": format!("MedicationRequest/{mr}")},
            "for": subject,
            "authoredOn": at(b.opened), "lastModified": at(b.opened),
            "performerType": [coded(ROLES, role)],
            "input": [
                input("kind", "valueCode", json!(b.kind.as_str())),
                input("reason", "valueCode", json!(reason)),
            ],
        });
        if let Some(due) = b.due {
            task["restriction"] = json!({"period": {"end": at(due)}});
        }
        match b.outcome {
            Outcome::Open => {}
            Outcome::Cancelled => task["status"] = json!("cancelled"),
            Outcome::Resolved { at: when, how } => {
                task["status"] = json!("completed");
                task["lastModified"] = json!(at(when));
                task["output"] = json!([{
                    "type": coded(PRESCRIBING_SYSTEM, "resolution"),
                    "valueCodeableConcept": coded(PRESCRIBING_SYSTEM, how.as_str()),
                }]);
            }
        }
        out.push(task);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use coproduce_core::prescribing::measures::report;

    #[test]
    fn the_population_is_deterministic_and_its_rates_are_the_modelled_ones() {
        let end = time::macros::datetime!(2026-12-01 12:00 UTC);
        let (people, prescriptions, barriers) = population(7, 20_000, end);
        assert_eq!(
            (people.clone(), prescriptions.clone(), barriers.clone()),
            population(7, 20_000, end)
        );
        let r = report(&people, &prescriptions, &barriers, end);
        let t = &r.overall;
        let near =
            |x: Option<f64>, want: f64, within: f64| x.is_some_and(|x| (x - want).abs() < within);
        // Did not fill because of cost: the survey's 18.3%, weighted by the coverage mix.
        assert!(
            near(t.crn_item_rate(0), 0.183, 0.03),
            "{:?}",
            t.crn_item_rate(0)
        );
        assert!(near(
            Some(t.prescriptions as f64 / t.patients as f64),
            1.3,
            0.1
        ));
        assert!(near(t.complete_rate(), 0.6 * 0.85 * 0.93, 0.03));
        assert!(t.on_time_rate().is_some_and(|x| x > 0.5 && x < 0.95));
        assert!(t.cant > 0 && t.cant_outcomes.contains_key("switched-to-alternative"));
        assert!(t.first_fill_rate().is_some());
        assert!(t.mean_hba1c_change().is_some_and(|c| c < 0.0));
        // The uninsured meet a high price far more often than those with Medicaid.
        let afford_per_rx = |k: &str| {
            let x = &r.by_coverage[k];
            x.kind(Kind::Afford) as f64 / x.prescriptions as f64
        };
        assert!(afford_per_rx("uninsured") > 4.0 * afford_per_rx("medicaid"));
        assert_eq!(r.by_language.len(), 4);
        assert_eq!(r.by_coverage.len(), 6);
    }
}
