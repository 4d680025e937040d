//! AHRQ PQI 01 and PQI 05 over the store: each patient's inpatient stays read from their
//! Encounters (the principal diagnosis is the rank-1 `Encounter.diagnosis`, its Condition's
//! ICD-10-CM code, else the first `reasonCode`; every listed diagnosis counts for the
//! exclusions; `hospitalization.admitSource` says whether it was a transfer in), then counted
//! by `coproduce_measures::pqi`.

use super::{audit_run, each_patient};
use crate::error::AppError;
use coproduce_core::Clock;
use coproduce_measures::pqi::{Discharge, Indicator, Tally, is_transfer};
use coproduce_store::Store;
use serde_json::Value;
use std::sync::Arc;
use time::Date;

const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";

fn day(v: &Value) -> Option<Date> {
    Date::parse(
        v.as_str()?.get(..10)?,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// The ICD-10-CM codes of a CodeableConcept.
fn icd10(concept: &Value) -> impl Iterator<Item = String> + '_ {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["system"] == ICD10CM)
        .filter_map(|c| c["code"].as_str().map(str::to_string))
}

/// A patient's birth date and hospital stays (every finished Encounter; the indicators count
/// the inpatient ones).
pub fn discharges_of(resources: &[Value]) -> (Option<Date>, Vec<Discharge>) {
    let condition = |reference: &str| {
        let id = reference.rsplit('/').next().unwrap_or(reference);
        resources
            .iter()
            .find(|r| r["resourceType"] == "Condition" && r["id"].as_str() == Some(id))
    };
    let mut born = None;
    let mut out = Vec::new();
    for r in resources {
        match r["resourceType"].as_str() {
            Some("Patient") => born = day(&r["birthDate"]),
            Some("Encounter") if r["status"] == "finished" => {
                let Some(admitted) = day(&r["period"]["start"]) else {
                    continue;
                };
                let discharged = day(&r["period"]["end"]).unwrap_or(admitted);
                let mut listed: Vec<(i64, String)> = r["diagnosis"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .flat_map(|(i, d)| {
                        let rank = d["rank"].as_i64().unwrap_or(1000 + i as i64);
                        d["condition"]["reference"]
                            .as_str()
                            .and_then(condition)
                            .map(|c| icd10(&c["code"]).map(|code| (rank, code)).collect())
                            .unwrap_or_else(Vec::new)
                    })
                    .collect();
                listed.sort_by_key(|(rank, _)| *rank);
                let reasons: Vec<String> = r["reasonCode"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(icd10)
                    .collect();
                let principal = listed
                    .first()
                    .map(|(_, c)| c.clone())
                    .or_else(|| reasons.first().cloned());
                let diagnoses = listed.into_iter().map(|(_, c)| c).chain(reasons).collect();
                out.push(Discharge {
                    id: format!("Encounter/{}", r["id"].as_str().unwrap_or_default()),
                    admitted,
                    discharged,
                    inpatient: r["class"]["code"] == "IMP",
                    principal,
                    diagnoses,
                    transfer_in: r["hospitalization"]["admitSource"]["coding"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c["code"].as_str())
                        .any(is_transfer),
                });
            }
            _ => {}
        }
    }
    (born, out)
}

/// An indicator over every patient in the store for `[start, end]`; the run is audited.
pub async fn pqi(
    store: &Store,
    clock: &Arc<dyn Clock>,
    actor: &str,
    indicator: Indicator,
    start: Date,
    end: Date,
) -> Result<Tally, AppError> {
    let mut tally = Tally::new(indicator, start, end);
    let patients = each_patient(store, |values| {
        let id = values
            .iter()
            .find(|r| r["resourceType"] == "Patient")
            .and_then(|p| p["id"].as_str())
            .unwrap_or_default()
            .to_string();
        let (born, discharges) = discharges_of(&values);
        tally.add(&id, born, &discharges);
    })
    .await?;
    let detail = format!(
        "{} over {patients} patients, {start} to {end}",
        indicator.as_str()
    );
    audit_run(store, clock, actor, indicator.as_str(), detail).await?;
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stays_are_read_from_encounters_and_their_conditions() {
        let resources = vec![
            json!({"resourceType": "Patient", "id": "p", "birthDate": "1950-03-01"}),
            json!({"resourceType": "Condition", "id": "c1", "code": {"coding": [{"system": ICD10CM, "code": "J44.1"}]}}),
            json!({"resourceType": "Condition", "id": "c2", "code": {"coding": [{"system": ICD10CM, "code": "E84.0"}]}}),
            json!({"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "IMP"},
                   "period": {"start": "2025-02-01T10:00:00Z", "end": "2025-02-04T10:00:00Z"},
                   "diagnosis": [{"condition": {"reference": "Condition/c2"}, "rank": 2},
                                 {"condition": {"reference": "Condition/c1"}, "rank": 1}],
                   "hospitalization": {"admitSource": {"coding": [{"code": "hosp-trans"}]}}}),
            json!({"resourceType": "Encounter", "id": "e2", "status": "finished", "class": {"code": "EMER"},
                   "period": {"start": "2025-03-01"}, "reasonCode": [{"coding": [{"system": ICD10CM, "code": "J45.21"}]}]}),
            json!({"resourceType": "Encounter", "id": "e3", "status": "cancelled", "class": {"code": "IMP"},
                   "period": {"start": "2025-04-01"}}),
        ];
        let (born, stays) = discharges_of(&resources);
        assert_eq!(born, Some(time::macros::date!(1950 - 03 - 01)));
        assert_eq!(stays.len(), 2, "the cancelled one is not a stay");
        let e1 = &stays[0];
        assert_eq!(
            e1.principal.as_deref(),
            Some("J44.1"),
            "rank 1 is principal"
        );
        assert_eq!(e1.diagnoses, vec!["J44.1", "E84.0"]);
        assert!(e1.inpatient && e1.transfer_in);
        assert_eq!(e1.discharged, time::macros::date!(2025 - 02 - 04));
        let e2 = &stays[1];
        assert_eq!(
            e2.principal.as_deref(),
            Some("J45.21"),
            "else the first reason"
        );
        assert!(!e2.inpatient);
    }
}
