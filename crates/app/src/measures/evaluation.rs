//! Program evaluation over the store: each patient's history (age, sex, eligibility, the
//! program's enrolment date, emergency visits and admissions) is read from their FHIR
//! records in batches, and `coproduce-measures` compares enrolled patients with matched
//! ones who were not (difference-in-differences with a bootstrap interval).

use crate::error::AppError;
use crate::measures::synthetic::PROGRAM_SYSTEM;
use crate::measures::{audit_run, each_patient};
use coproduce_core::Clock;
use coproduce_measures::evaluation::{Evaluation, History, evaluate};
use coproduce_store::Store;
use serde_json::Value;
use std::sync::Arc;
use time::Date;

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

/// Whether any coding of a concept names COPD (the rule is `core`'s).
fn is_copd(concept: &Value) -> bool {
    codes(concept).any(|(s, c)| coproduce_core::care::plan::is_copd(s, c))
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
    outcome: Outcome,
) -> Result<Option<Evaluation>, AppError> {
    let mut histories = Vec::new();
    each_patient(store, |values| {
        let mut h = history_of(&values, program, data_end);
        if let Outcome::Pqi(indicator) = outcome {
            h.events = pqi_events(values, indicator);
        }
        // Only what the evaluation uses is kept: eligible patients.
        if h.eligible || h.enrolled.is_some() {
            histories.push(h);
        }
    })
    .await?;
    let result = evaluate(&histories, data_end, seed, 2_000);
    let detail = format!(
        "program {program} ({}): {} eligible patients, {} matched pairs",
        outcome.as_str(),
        histories.len(),
        result.as_ref().map_or(0, |e| e.pairs)
    );
    audit_run(store, clock, actor, "evaluate", detail).await?;
    Ok(result)
}

/// What a program evaluation counts as its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Emergency visits and admissions related to the program's condition (COPD, J44.x).
    ProgramEvents,
    /// The inpatient discharges that count in an AHRQ Prevention Quality Indicator (every
    /// inpatient stay is an event; those that qualify are the related ones).
    Pqi(coproduce_measures::pqi::Indicator),
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "events" => Some(Outcome::ProgramEvents),
            other => coproduce_measures::pqi::Indicator::parse(other).map(Outcome::Pqi),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::ProgramEvents => "events",
            Outcome::Pqi(i) => i.as_str(),
        }
    }
}

/// A patient's stays as evaluation events for an indicator: (admission day, qualifies).
fn pqi_events(
    values: Vec<Value>,
    indicator: coproduce_measures::pqi::Indicator,
) -> Vec<(Date, bool)> {
    use coproduce_measures::pqi::{Judgement, discharges_of, judge};
    let record = coproduce_measures::PatientRecord::from_serde(values);
    let (born, stays) = discharges_of(&record);
    stays
        .iter()
        .filter(|d| d.inpatient)
        .map(|d| (d.admitted, judge(indicator, born, d) == Judgement::Counted))
        .collect()
}

/// A patient's utilisation record from their FHIR resources: birth, care team (the first
/// active CareTeam's name), and finished emergency visits (class EMER) and inpatient stays
/// (class IMP). COPD-related means the principal diagnosis is J44.x: the Encounter.diagnosis
/// ranked 1 (its Condition among the patient's records), else the first reasonCode.
pub fn utilisation_of(resources: &[Value]) -> coproduce_measures::utilisation::Patient {
    use coproduce_measures::utilisation::{Event, Patient};
    let mut p = Patient {
        born: None,
        team: None,
        events: Vec::new(),
    };
    let condition = |reference: &str| {
        let id = reference.rsplit('/').next().unwrap_or(reference);
        resources
            .iter()
            .find(|r| r["resourceType"] == "Condition" && r["id"].as_str() == Some(id))
    };
    for r in resources {
        match r["resourceType"].as_str() {
            Some("Patient") => p.born = day(&r["birthDate"]),
            Some("CareTeam") if p.team.is_none() && r["status"] != "inactive" => {
                p.team = r["name"].as_str().map(str::to_string);
            }
            Some("Encounter") if r["status"] == "finished" => {
                let admission = match r["class"]["code"].as_str() {
                    Some("IMP") => true,
                    Some("EMER") => false,
                    _ => continue,
                };
                let Some(start) = day(&r["period"]["start"]) else {
                    continue;
                };
                let end = day(&r["period"]["end"]).unwrap_or(start);
                let diagnoses = r["diagnosis"].as_array();
                let principal = diagnoses
                    .and_then(|ds| ds.iter().find(|d| d["rank"] == 1).or_else(|| ds.first()))
                    .and_then(|d| d["condition"]["reference"].as_str())
                    .and_then(condition)
                    .map(|c| is_copd(&c["code"]));
                let copd = principal.unwrap_or_else(|| {
                    r["reasonCode"]
                        .as_array()
                        .and_then(|rc| rc.first())
                        .is_some_and(is_copd)
                });
                p.events.push(Event {
                    start,
                    end,
                    admission,
                    copd,
                });
            }
            _ => {}
        }
    }
    p
}

/// Utilisation of every patient in the store over `[start, end]`.
pub async fn utilisation(
    store: &Store,
    clock: &Arc<dyn Clock>,
    actor: &str,
    start: Date,
    end: Date,
) -> Result<coproduce_measures::utilisation::Utilisation, AppError> {
    let mut tally = coproduce_measures::utilisation::Tally::new(start, end);
    let patients = each_patient(store, |values| tally.add(&utilisation_of(&values))).await?;
    let detail = format!("{patients} patients, {start} to {end}");
    audit_run(store, clock, actor, "utilisation", detail).await?;
    Ok(tally.result)
}

/// What a quality analyst's page shows: utilisation by month over a period, and a program's
/// evaluation with data up to the period's end.
#[derive(Debug, Clone)]
pub struct Overview {
    pub patients: u64,
    pub utilisation: coproduce_measures::utilisation::Utilisation,
    pub evaluation: Option<Evaluation>,
    /// AHRQ's PQI 01 and PQI 05 over the same period.
    pub pqi: Vec<coproduce_measures::pqi::Tally>,
}

/// Population figures for someone the policy lets see the whole population in aggregate (a
/// quality analyst; no chart is shown). One pass over every patient; the run is audited, and
/// a refusal too.
pub async fn overview(
    api: &crate::FhirApi,
    caller: &crate::caller::Caller,
    program: &str,
    start: Date,
    end: Date,
) -> Result<Overview, AppError> {
    let clock = api.clock();
    let store = api.store();
    api.require_population_reach(caller, "analysis").await?;
    use coproduce_measures::pqi::{Indicator, Tally as PqiTally, discharges_of};
    let mut tally = coproduce_measures::utilisation::Tally::new(start, end);
    let mut pqi: Vec<PqiTally> = Indicator::ALL
        .iter()
        .map(|i| PqiTally::new(*i, start, end))
        .collect();
    let mut histories = Vec::new();
    let patients = each_patient(store, |values| {
        tally.add(&utilisation_of(&values));
        let h = history_of(&values, program, end);
        if h.eligible || h.enrolled.is_some() {
            histories.push(h);
        }
        let record = coproduce_measures::PatientRecord::from_serde(values);
        let (born, stays) = discharges_of(&record);
        for t in &mut pqi {
            t.add(record.id(), born, &stays);
        }
    })
    .await?;
    let evaluation = evaluate(&histories, end, 1, 2_000);
    let detail = format!(
        "{patients} patients, {start} to {end}; program {program}: {} matched pairs",
        evaluation.as_ref().map_or(0, |e| e.pairs)
    );
    audit_run(store, &clock, &caller.label, "analysis", detail).await?;
    Ok(Overview {
        patients,
        utilisation: tally.result,
        evaluation,
        pqi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";
    use crate::measures::synthetic::{Config, patient};
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

    #[test]
    fn the_principal_diagnosis_decides_whether_a_stay_is_copd_related() {
        let resources = vec![
            serde_json::json!({"resourceType": "Patient", "id": "p", "birthDate": "1950-01-01"}),
            serde_json::json!({"resourceType": "CareTeam", "id": "t", "status": "active", "name": "Riverside"}),
            serde_json::json!({"resourceType": "Condition", "id": "copd",
                "code": {"coding": [{"system": ICD10, "code": "J44.1"}]}}),
            serde_json::json!({"resourceType": "Condition", "id": "flu",
                "code": {"coding": [{"system": ICD10, "code": "J10.1"}]}}),
            // Principal (rank 1) COPD, secondary flu: COPD-related.
            serde_json::json!({"resourceType": "Encounter", "id": "a", "status": "finished",
                "class": {"code": "IMP"}, "period": {"start": "2026-02-01", "end": "2026-02-04"},
                "diagnosis": [{"condition": {"reference": "Condition/flu"}, "rank": 2},
                              {"condition": {"reference": "Condition/copd"}, "rank": 1}]}),
            // Principal flu, COPD secondary: not.
            serde_json::json!({"resourceType": "Encounter", "id": "b", "status": "finished",
                "class": {"code": "IMP"}, "period": {"start": "2026-03-01", "end": "2026-03-02"},
                "diagnosis": [{"condition": {"reference": "Condition/copd"}, "rank": 2},
                              {"condition": {"reference": "Condition/flu"}, "rank": 1}]}),
            // An emergency visit with a COPD reason and no diagnosis list.
            serde_json::json!({"resourceType": "Encounter", "id": "c", "status": "finished",
                "class": {"code": "EMER"}, "period": {"start": "2026-04-01"},
                "reasonCode": [{"coding": [{"system": ICD10, "code": "J44.9"}]}]}),
            // An office visit is neither.
            serde_json::json!({"resourceType": "Encounter", "id": "d", "status": "finished",
                "class": {"code": "AMB"}, "period": {"start": "2026-05-01"}}),
        ];
        let p = utilisation_of(&resources);
        assert_eq!(p.team.as_deref(), Some("Riverside"));
        let flags: Vec<(bool, bool)> = p.events.iter().map(|e| (e.admission, e.copd)).collect();
        assert_eq!(flags, vec![(true, true), (true, false), (false, true)]);
    }
}
