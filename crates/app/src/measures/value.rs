//! Value over the store: each patient's billable services (office visits, emergency visits,
//! stays and their days, HbA1c tests) priced with a site's fee schedule, and for a program
//! the evaluation's avoided emergency visits and stays priced both ways (fee-for-service and
//! value-based). One pass reads every patient once.

use crate::error::AppError;
use crate::measures::evaluation::history_of;
use crate::measures::{audit_run, each_patient};
use coproduce_core::Clock;
use coproduce_core::care::readings::HBA1C_CODES;
use coproduce_measures::evaluation::{Evaluation, evaluate};
use coproduce_measures::value::{
    Billed, CostTally, Costs, FeeSchedule, Member, ProgramValue, Service, program_value,
};
use coproduce_store::Store;
use serde_json::Value;
use std::sync::Arc;
use time::Date;

const LOINC: &str = "http://loinc.org";

fn day(v: &Value) -> Option<Date> {
    Date::parse(
        v.as_str()?.get(..10)?,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// Reads a fee schedule: a CSV with the columns `service` and `price` (others ignored),
/// services named as in [`Service::key`]. The error names the line.
pub fn fee_schedule(csv_text: &[u8]) -> Result<FeeSchedule, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text);
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(s), Some(p)) = (col("service"), col("price")) else {
        return Err("the fee schedule needs the columns service and price".into());
    };
    let mut prices = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| format!("line {line}: {e}"))?;
        let name = row.get(s).unwrap_or("");
        let service = Service::parse(name).ok_or_else(|| {
            format!(
                "line {line}: '{name}' is not a service (use {})",
                Service::ALL.map(Service::key).join(", ")
            )
        })?;
        let price: f64 = row
            .get(p)
            .unwrap_or("")
            .parse()
            .map_err(|_| format!("line {line}: the price of {name} is not a number"))?;
        prices.push((service, price));
    }
    FeeSchedule::new(prices)
}

/// A patient's billable services from their FHIR records: finished Encounters by class
/// (AMB an office visit, EMER an emergency visit, IMP a stay and its days) and final
/// laboratory HbA1c results; related means a COPD reason, as the evaluation counts it.
pub fn member_of(resources: &[Value], program: &str, data_end: Date) -> Member {
    let history = history_of(resources, program, data_end);
    let mut m = Member {
        born: None,
        enrolled: history.enrolled,
        billed: Vec::new(),
    };
    let is_copd = |concept: &Value| {
        concept["coding"].as_array().into_iter().flatten().any(|c| {
            coproduce_core::care::plan::is_copd(
                c["system"].as_str().unwrap_or(""),
                c["code"].as_str().unwrap_or(""),
            )
        })
    };
    for r in resources {
        match r["resourceType"].as_str() {
            Some("Patient") => m.born = day(&r["birthDate"]),
            Some("Encounter") if r["status"] == "finished" => {
                let Some(start) = day(&r["period"]["start"]) else {
                    continue;
                };
                let related = r["reasonCode"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(is_copd);
                let one = |service, days| Billed {
                    day: start,
                    service,
                    quantity: 1,
                    related,
                    days,
                };
                match r["class"]["code"].as_str() {
                    Some("AMB") => m.billed.push(one(Service::OfficeVisit, 0)),
                    Some("EMER") => m.billed.push(one(Service::EdVisit, 0)),
                    Some("IMP") => {
                        let end = day(&r["period"]["end"]).unwrap_or(start);
                        let days = u32::try_from((end - start).whole_days().max(1)).unwrap_or(1);
                        m.billed.push(one(Service::Admission, days));
                        m.billed.push(Billed {
                            quantity: days,
                            ..one(Service::InpatientDay, 0)
                        });
                    }
                    _ => {}
                }
            }
            Some("Observation")
                if r["status"] == "final"
                    && r["category"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["coding"][0]["code"] == "laboratory")
                    && r["code"]["coding"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| {
                            c["system"] == LOINC
                                && c["code"].as_str().is_some_and(|x| HBA1C_CODES.contains(&x))
                        }) =>
            {
                if let Some(d) = day(&r["effectiveDateTime"]) {
                    m.billed.push(Billed {
                        day: d,
                        service: Service::Hba1cTest,
                        quantity: 1,
                        related: false,
                        days: 0,
                    });
                }
            }
            _ => {}
        }
    }
    m
}

/// What a value run found.
#[derive(Debug, Clone)]
pub struct ValueReport {
    pub costs: Costs,
    /// The program's evaluation and its value, when a program was asked for and matched.
    pub program: Option<(Evaluation, ProgramValue)>,
    /// Why the program could not be valued, when it could not.
    pub program_note: Option<String>,
}

/// Costs over `[start, end]` and, with `program`, the program's value (its evaluation with
/// data up to `end`).
pub async fn run(
    store: &Store,
    clock: &Arc<dyn Clock>,
    actor: &str,
    fees: FeeSchedule,
    start: Date,
    end: Date,
    program: Option<&str>,
) -> Result<ValueReport, AppError> {
    let mut tally = CostTally::new(start, end, fees);
    let mut histories = Vec::new();
    let name = program.unwrap_or("");
    each_patient(store, |values| {
        tally.add(&member_of(&values, name, end));
        if program.is_some() {
            let h = history_of(&values, name, end);
            if h.eligible || h.enrolled.is_some() {
                histories.push(h);
            }
        }
    })
    .await?;
    let mut note = None;
    let valued = match program {
        None => None,
        Some(_) => match (evaluate(&histories, end, 1, 2_000), tally.price_per_event()) {
            (Some(e), Some(price)) => {
                let v = program_value(&e, tally.fees(), price);
                Some((e, v))
            }
            (None, _) => {
                note = Some(format!(
                    "no enrolled patient of '{name}' has a full year before and after enrolment and a match"
                ));
                None
            }
            (Some(_), None) => {
                note = Some(
                    "the enrolled patients had no related emergency visit or stay in the year before enrolment, so avoided events have no price".into(),
                );
                None
            }
        },
    };
    let detail = format!(
        "{} members, {start} to {end}{}",
        tally.costs.members,
        program.map_or(String::new(), |p| format!(", program {p}"))
    );
    audit_run(store, clock, actor, "value", detail).await?;
    Ok(ValueReport {
        costs: tally.costs,
        program: valued,
        program_note: note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fee_schedule_reads_from_csv_and_names_the_bad_line() {
        let f = fee_schedule(
            b"service,price,description\noffice-visit,150,GP\ned-visit, 1200.50 ,ED\n",
        )
        .expect("a schedule");
        assert!((f.price(Service::EdVisit) - 1200.5).abs() < 1e-9);
        assert_eq!(f.price(Service::Admission), 0.0);
        let e =
            fee_schedule(b"service,price\noffice-visit,150\nmassage,80\n").expect_err("unknown");
        assert!(e.starts_with("line 3: 'massage'"), "{e}");
        let e = fee_schedule(b"service,price\noffice-visit,cheap\n").expect_err("not a number");
        assert!(e.contains("line 2"), "{e}");
        assert!(fee_schedule(b"what,cost\nx,1\n").is_err());
    }

    #[test]
    fn services_come_from_encounter_classes_and_laboratory_hba1c() {
        let resources = vec![
            serde_json::json!({"resourceType": "Patient", "id": "p", "birthDate": "1950-01-01"}),
            serde_json::json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "period": {"start": "2026-02-01"}}),
            serde_json::json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "IMP"}, "period": {"start": "2026-03-01", "end": "2026-03-04"},
                "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J44.1"}]}]}),
            serde_json::json!({"resourceType": "Encounter", "status": "cancelled", "class": {"code": "EMER"}, "period": {"start": "2026-04-01"}}),
            serde_json::json!({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"code": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": "4548-4"}]}, "effectiveDateTime": "2026-05-01"}),
            // A home reading is not a billed test.
            serde_json::json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "4548-4"}]}, "effectiveDateTime": "2026-05-02"}),
        ];
        let m = member_of(
            &resources,
            "rescue-pack",
            time::macros::date!(2026 - 12 - 31),
        );
        let got: Vec<(Service, u32, bool)> = m
            .billed
            .iter()
            .map(|b| (b.service, b.quantity, b.related))
            .collect();
        assert_eq!(
            got,
            vec![
                (Service::OfficeVisit, 1, false),
                (Service::Admission, 1, true),
                (Service::InpatientDay, 3, true),
                (Service::Hba1cTest, 1, false),
            ]
        );
    }
}
