//! The prescribing measures over the store: each patient (language, age band, sex, coverage
//! kind, their latest cost answers), each prescription written in the year (its check, its
//! check-in answer) and each barrier opened in it (kind, who raised it, deadline, how it
//! ended, HbA1c around its resolution), counted by `core::prescribing::measures`. One pass
//! per resource type, whatever the population's size (HbA1c readings are kept only for the
//! patients with a resolved barrier).

use super::check::{Barrier, COST_QUESTIONNAIRE, PRESCRIBING_SYSTEM, cost_answers_of};
use super::medicines::FIRST_FILL;
use super::*;
use crate::vocabulary::{TASKS, instant_of as instant, preferred_language};
use coproduce_core::care::readings::{HBA1C_CODES, Measure};
use coproduce_core::prescribing::CoverageKind;
use coproduce_core::prescribing::check::Resolution;
use coproduce_core::prescribing::measures::{
    BarrierFacts, Outcome, Person, PrescriptionFacts, Report, hba1c_around, report,
};
use coproduce_store::Stored;
use std::collections::HashMap;
use time::OffsetDateTime;

fn reference_id<'a>(v: &'a Value, prefix: &str) -> Option<&'a str> {
    v["reference"].as_str().and_then(|r| r.strip_prefix(prefix))
}

/// An HbA1c result in percent (NGSP), from any of its codes and units.
fn hba1c_percent(o: &Value) -> Option<(OffsetDateTime, f64)> {
    let coded = o["code"]["coding"].as_array()?.iter().any(|c| {
        c["system"] == "http://loinc.org"
            && c["code"].as_str().is_some_and(|x| HBA1C_CODES.contains(&x))
    });
    let q = &o["valueQuantity"];
    let unit = q["code"].as_str().or_else(|| q["unit"].as_str())?;
    let value = Measure::HbA1c
        .unit(unit)?
        .to_canonical(q["value"].as_f64()?);
    let at = instant(&o["effectiveDateTime"]).or_else(|| instant(&o["issued"]))?;
    coded.then_some((at, value))
}

impl Prescribing {
    /// The measures for someone the policy lets see the whole population (a quality
    /// analyst), in aggregate only: one pass over the store under their name, audited, and a
    /// refusal too. No chart is shown to them.
    pub async fn population_measures(&self, caller: &Caller) -> Result<Report> {
        let pass = self
            .api
            .population_pass(caller, "prescribing-measures")
            .await?;
        self.measures(&pass).await
    }

    /// The prescribing measures over everything the caller reaches in the store.
    pub async fn measures(&self, caller: &Caller) -> Result<Report> {
        let now = self.clock.now();
        let year_ago = Stored::instant(now - time::Duration::days(365));
        let all = |rt: &'static str, params: Vec<(String, String)>| async move {
            self.api.search_all(caller, rt, &params).await
        };
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut people = Vec::new();
        for p in all("Patient", vec![]).await? {
            let v = p.json()?;
            let birth = v["birthDate"].as_str().and_then(|b| {
                time::Date::parse(b, time::macros::format_description!("[year]-[month]-[day]")).ok()
            });
            index.insert(p.id.clone(), people.len());
            people.push(Person {
                language: preferred_language(&v).unwrap_or_else(|| "en".into()),
                age_band: coproduce_core::social::measures::age_band(birth, now.date()),
                sex: v["gender"].as_str().unwrap_or("unknown").to_string(),
                coverage: None,
                cost_answers: None,
            });
        }
        let person =
            |patient: &Option<String>| patient.as_ref().and_then(|p| index.get(p)).copied();
        for c in all("Coverage", vec![("status".into(), "active".into())]).await? {
            let v = c.json()?;
            let kind = v["type"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["system"] == COVERAGE_KIND_SYSTEM)
                .and_then(|c| c["code"].as_str())
                .and_then(CoverageKind::parse);
            let beneficiary = reference_id(&v["beneficiary"], "Patient/").map(str::to_string);
            if let (Some(k), Some(i)) = (kind, person(&beneficiary)) {
                people[i].coverage = Some(k);
            }
        }
        for r in all(
            "QuestionnaireResponse",
            vec![
                ("status".into(), "completed".into()),
                ("authored".into(), format!("ge{year_ago}")),
            ],
        )
        .await?
        {
            let v = r.json()?;
            if v["questionnaire"] != COST_QUESTIONNAIRE {
                continue;
            }
            let (Some(i), Some(at), Some(a)) = (
                person(&r.patient_id),
                instant(&v["authored"]),
                cost_answers_of(&v),
            ) else {
                continue;
            };
            if people[i].cost_answers.is_none_or(|(t, _)| t < at) {
                people[i].cost_answers = Some((at, a));
            }
        }
        let by_focus = |found: Vec<Stored>| -> Result<HashMap<String, Value>> {
            let mut out: HashMap<String, Value> = HashMap::new();
            for s in found {
                let v = s.json()?;
                let Some(mr) = super::medicines::focus_of(&v) else {
                    continue;
                };
                let newer = out.get(&mr).is_none_or(|o| {
                    o["effectiveDateTime"].as_str() <= v["effectiveDateTime"].as_str()
                });
                if newer {
                    out.insert(mr, v);
                }
            }
            Ok(out)
        };
        let code = |c: &str| ("code".to_string(), format!("{PRESCRIBING_SYSTEM}|{c}"));
        let checks = by_focus(all("Observation", vec![code("partnership-check")]).await?)?;
        let fills = by_focus(all("Observation", vec![code(FIRST_FILL)]).await?)?;
        let mut prescriptions = Vec::new();
        for s in all(
            "MedicationRequest",
            vec![("authoredon".into(), format!("ge{year_ago}"))],
        )
        .await?
        {
            let v = s.json()?;
            let (Some(i), Some(written)) = (person(&s.patient_id), instant(&v["authoredOn"]))
            else {
                continue;
            };
            prescriptions.push(PrescriptionFacts {
                person: i,
                written,
                check_complete: checks.get(&s.id).map(|c| c["status"] == "final"),
                first_fill: fills.get(&s.id).and_then(|o| o["valueBoolean"].as_bool()),
            });
        }
        let mut barriers = Vec::new();
        let mut resolved_for: HashMap<usize, Vec<usize>> = HashMap::new();
        for t in all(
            "Task",
            vec![
                (
                    "code".into(),
                    format!("{TASKS}|{}", super::check::BARRIER_TASK),
                ),
                ("authored-on".into(), format!("ge{year_ago}")),
            ],
        )
        .await?
        {
            let (Some(i), Some(b)) = (person(&t.patient_id), Barrier::of(&t)?) else {
                continue;
            };
            let v = t.json()?;
            let Some(opened) = instant(&v["authoredOn"]) else {
                continue;
            };
            let outcome = if b.is_open() {
                Outcome::Open
            } else if b.status == "completed" {
                Outcome::Resolved {
                    at: instant(&v["lastModified"]).unwrap_or(opened),
                    how: b
                        .resolution
                        .as_deref()
                        .and_then(Resolution::parse)
                        .unwrap_or(Resolution::Other),
                }
            } else {
                // Ended without being solved (its prescription switched or stopped).
                Outcome::Cancelled
            };
            if matches!(outcome, Outcome::Resolved { .. }) {
                resolved_for.entry(i).or_default().push(barriers.len());
            }
            barriers.push(BarrierFacts {
                person: i,
                kind: b.kind,
                patient_said: b.patient_said,
                opened,
                due: b.due,
                outcome,
                hba1c: None,
            });
        }
        // HbA1c around each resolution: one pass over the readings from 6 months before the
        // year, kept for the patients with a resolved barrier.
        if !resolved_for.is_empty() {
            let since = Stored::instant(now - time::Duration::days(365 + 183));
            let codes = HBA1C_CODES
                .iter()
                .map(|c| format!("http://loinc.org|{c}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut readings: HashMap<usize, Vec<(OffsetDateTime, f64)>> = HashMap::new();
            for o in all(
                "Observation",
                vec![
                    ("code".into(), codes),
                    ("date".into(), format!("ge{since}")),
                ],
            )
            .await?
            {
                let Some(i) = person(&o.patient_id).filter(|i| resolved_for.contains_key(i)) else {
                    continue;
                };
                if let Some(r) = hba1c_percent(&o.json()?) {
                    readings.entry(i).or_default().push(r);
                }
            }
            for (i, which) in resolved_for {
                let Some(mine) = readings.get(&i) else {
                    continue;
                };
                for b in which {
                    if let Outcome::Resolved { at, .. } = barriers[b].outcome {
                        barriers[b].hba1c = hba1c_around(mine, at);
                    }
                }
            }
        }
        Ok(report(&people, &prescriptions, &barriers, now))
    }
}
