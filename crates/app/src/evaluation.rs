//! Program evaluation over the store: each patient's history (age, sex, eligibility, the
//! program's enrolment date, emergency visits and admissions) is read from their FHIR
//! records in batches, and `coproduce-measures` compares enrolled patients with matched
//! ones who were not (difference-in-differences with a bootstrap interval).

use crate::error::AppError;
use crate::synthetic::PROGRAM_SYSTEM;
use coproduce_core::{Clock, unix_millis};
use coproduce_measures::evaluation::{Evaluation, History, evaluate};
use coproduce_store::{AuditEntry, Store};
use serde_json::Value;
use std::sync::Arc;
use time::Date;

const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const SNOMED: &str = "http://snomed.info/sct";

fn day(v: &Value) -> Option<Date> {
    let s = v.as_str()?;
    Date::parse(
        s.get(..10)?,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

fn codes(concept: &Value) -> impl Iterator<Item = (&str, &str)> {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["system"].as_str()?, c["code"].as_str()?)))
}

/// COPD: ICD-10-CM J44.x or SNOMED 13645005 (CLINICAL.md section 3).
fn is_copd(concept: &Value) -> bool {
    codes(concept)
        .any(|(s, c)| (s == ICD10 && c.starts_with("J44")) || (s == SNOMED && c == "13645005"))
}

/// A patient's history for the `program` (its code in the program code system), ages taken
/// at `at`.
pub fn history_of(resources: &[Value], program: &str, at: Date) -> History {
    let mut h = History {
        patient: String::new(),
        age: 0,
        female: false,
        eligible: false,
        enrolled: None,
        events: Vec::new(),
    };
    for r in resources {
        match r["resourceType"].as_str() {
            Some("Patient") => {
                h.patient = r["id"].as_str().unwrap_or("").to_string();
                h.female = r["gender"] == "female";
                if let Some(b) = day(&r["birthDate"]) {
                    let mut age = at.year() - b.year();
                    if (at.month() as u8, at.day()) < (b.month() as u8, b.day()) {
                        age -= 1;
                    }
                    h.age = age;
                }
            }
            Some("Condition") if is_copd(&r["code"]) => h.eligible = true,
            Some("CarePlan")
                if r["category"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| codes(c).any(|(s, code)| s == PROGRAM_SYSTEM && code == program)) =>
            {
                h.enrolled = day(&r["period"]["start"]);
            }
            Some("Encounter")
                if r["status"] == "finished"
                    && matches!(r["class"]["code"].as_str(), Some("EMER" | "IMP")) =>
            {
                if let Some(d) = day(&r["period"]["start"]) {
                    let related = r["reasonCode"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(is_copd);
                    h.events.push((d, related));
                }
            }
            _ => {}
        }
    }
    h
}

/// Evaluates `program` over every patient in the store, with data up to `data_end`.
pub async fn run(
    store: &Store,
    clock: &Arc<dyn Clock>,
    actor: &str,
    program: &str,
    data_end: Date,
    seed: u64,
) -> Result<Option<Evaluation>, AppError> {
    let mut histories = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let batch = store
            .patient_batch(after.as_deref(), crate::measures::BATCH)
            .await?;
        let Some((last, _)) = batch.last() else {
            break;
        };
        after = Some(last.clone());
        for (_, resources) in batch {
            let values: Vec<Value> = resources.iter().filter_map(|s| s.json().ok()).collect();
            let h = history_of(&values, program, data_end);
            // Only what the evaluation uses is kept: eligible patients.
            if h.eligible || h.enrolled.is_some() {
                histories.push(h);
            }
        }
    }
    let result = evaluate(&histories, data_end, seed, 2_000);
    store
        .audit(&AuditEntry {
            at: unix_millis(clock.now()),
            actor: actor.to_string(),
            action: "evaluate".into(),
            outcome: "allowed".into(),
            detail: Some(format!(
                "program {program}: {} eligible patients, {} matched pairs",
                histories.len(),
                result.as_ref().map_or(0, |e| e.pairs)
            )),
            ..AuditEntry::default()
        })
        .await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Config, patient};
    use time::macros::date;

    fn evaluate_synthetic(effect: f64, seed: u64) -> Evaluation {
        let cfg = Config {
            seed,
            copd: 0.12,
            rescue_pack_effect: effect,
            ..Config::default()
        };
        let histories: Vec<History> = (0..20_000)
            .map(|i| history_of(&patient(&cfg, i), "rescue-pack", date!(2026 - 12 - 31)))
            .filter(|h| h.eligible)
            .collect();
        evaluate(&histories, date!(2026 - 12 - 31), 7, 1_000).expect("matched pairs")
    }

    #[test]
    fn a_true_thirty_percent_reduction_is_recovered_within_the_interval() {
        let e = evaluate_synthetic(0.3, 11);
        assert!(e.pairs > 300, "{} pairs", e.pairs);
        let (lo, hi) = e.relative_interval;
        assert!(
            lo < -0.3 && -0.3 < hi,
            "the true -30% lies in ({lo:.2}, {hi:.2}): {e:?}"
        );
        assert!(hi < 0.0, "and the interval excludes no effect: {e:?}");
        assert!(
            e.reading().starts_with("Enrolled patients had fewer"),
            "{}",
            e.reading()
        );
    }

    #[test]
    fn no_effect_is_found_when_there_is_none() {
        let e = evaluate_synthetic(0.0, 12);
        let (lo, hi) = e.interval;
        assert!(
            lo < 0.0 && 0.0 < hi,
            "the interval ({lo:.2}, {hi:.2}) includes zero: {e:?}"
        );
        assert!(
            e.reading().starts_with("No clear difference"),
            "{}",
            e.reading()
        );
    }
}
