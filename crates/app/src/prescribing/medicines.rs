//! A patient's medicines as both sides see them: each active prescription with where its
//! partnership check stands, its barriers (who is handling each, by when, and how it was
//! resolved), and whether the patient said they can get and use it.

use super::check::{Barrier, PRESCRIBING_SYSTEM, drug_for};
use super::*;
use coproduce_core::prescribing::CoverageKind;
use coproduce_core::prescribing::check::{CostAnswers, FirstFill, Getting, Kind};
use coproduce_store::Stored;

/// The Observation code of the patient's "yes, I can get and use it".
pub const CAN_GET_AND_USE: &str = "can-get-and-use";
/// The Observation code of the check-in's answer: did they get it and start it.
pub const FIRST_FILL: &str = "first-fill";

/// One medicine of the patient's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medicine {
    /// The MedicationRequest's id.
    pub id: String,
    pub name: String,
    /// The directions in the prescriber's words, and in the patient's language when the
    /// prescription carries them (`patientInstruction`).
    pub dosage: String,
    pub instructions: String,
    pub authored: Option<String>,
    /// The check's interpretation: `clean`, `barriers`, `incomplete`; None before it runs.
    pub check: Option<String>,
    /// Its barriers, open first.
    pub barriers: Vec<Barrier>,
    /// The patient (or family) said they can get and use it.
    pub can: bool,
    /// The check-in 7 to 14 days after it was written.
    pub first_fill: FirstFill,
    /// The medicine it replaced, when the team switched it (`priorPrescription.display`).
    pub switched_from: Option<String>,
}

/// A prescription's medicine by the formulary's name, else its own words.
fn medicine_name(formulary: &Formulary, mr: &Value) -> String {
    let medication = &mr["medicationCodeableConcept"];
    drug_for(formulary, medication)
        .map(|d| format!("{} {}", d.name, d.strength).trim().to_string())
        .or_else(|| medication["text"].as_str().map(str::to_string))
        .or_else(|| {
            medication["coding"][0]["display"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "(unnamed medicine)".into())
}

/// The prescription (its id) an Observation is about (`focus`).
pub(super) fn focus_of(v: &Value) -> Option<String> {
    v["focus"][0]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("MedicationRequest/"))
        .map(str::to_string)
}

impl Prescribing {
    /// The patient's active prescriptions, newest first, with their checks and barriers.
    pub async fn medicines(&self, caller: &Caller, patient: &str) -> Result<Vec<Medicine>> {
        self.api
            .require_search_of(caller, "MedicationRequest", patient)
            .await?;
        let subject = ("subject".to_string(), format!("Patient/{patient}"));
        let prescriptions = self
            .api
            .search_all(
                caller,
                "MedicationRequest",
                &[subject.clone(), ("status".into(), "active".into())],
            )
            .await?;
        // The checks, answers and barriers are readings and plan records: a family member
        // whose grant covers medicines but not those parts sees the medicines without them.
        let observations = |code: &'static str| {
            let subject = subject.clone();
            async move {
                let found = self
                    .api
                    .search_all(
                        caller,
                        "Observation",
                        &[
                            subject,
                            ("code".into(), format!("{PRESCRIBING_SYSTEM}|{code}")),
                        ],
                    )
                    .await;
                Ok::<Vec<Value>, CareError>(
                    crate::error::unless_forbidden(found)?
                        .iter()
                        .filter_map(|s| s.json().ok())
                        .collect(),
                )
            }
        };
        let checks = observations("partnership-check").await?;
        let said = observations(CAN_GET_AND_USE).await?;
        let filled = observations(FIRST_FILL).await?;
        let now = self.clock.now();
        let barriers = match self.barriers(caller, patient).await {
            Err(CareError::App(AppError::Forbidden(_))) => Vec::new(),
            other => other?,
        };
        let formulary = self.formulary(caller).await?;
        let mut out = Vec::new();
        for s in &prescriptions {
            let v = s.json()?;
            let name = medicine_name(&formulary, &v);
            let mut mine: Vec<Barrier> = barriers
                .iter()
                .filter(|b| b.prescription == s.id)
                .cloned()
                .collect();
            mine.sort_by_key(|b| !b.is_open());
            out.push(Medicine {
                id: s.id.clone(),
                name,
                dosage: v["dosageInstruction"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                authored: v["authoredOn"].as_str().map(str::to_string),
                check: checks
                    .iter()
                    .find(|c| focus_of(c).as_deref() == Some(s.id.as_str()))
                    .and_then(|c| c["interpretation"][0]["coding"][0]["code"].as_str())
                    .map(str::to_string),
                barriers: mine,
                can: said.iter().any(|o| {
                    focus_of(o).as_deref() == Some(s.id.as_str()) && o["valueBoolean"] == true
                }),
                switched_from: v["priorPrescription"]["display"]
                    .as_str()
                    .map(str::to_string),
                instructions: v["dosageInstruction"][0]["patientInstruction"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                first_fill: FirstFill::at(
                    crate::vocabulary::instant_of(&v["authoredOn"]).unwrap_or(now),
                    filled
                        .iter()
                        .filter(|o| focus_of(o).as_deref() == Some(s.id.as_str()))
                        .max_by(|a, b| {
                            a["effectiveDateTime"]
                                .as_str()
                                .cmp(&b["effectiveDateTime"].as_str())
                        })
                        .and_then(|o| o["valueBoolean"].as_bool()),
                    now,
                ),
            });
        }
        out.sort_by(|a, b| {
            b.authored
                .cmp(&a.authored)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(out)
    }

    /// The patient (or a family member) says they can get and use a medicine.
    pub async fn patient_says_can(&self, caller: &Caller, prescription: &str) -> Result<()> {
        self.record_answer(caller, prescription, CAN_GET_AND_USE, true)
            .await
    }

    /// A yes or no of the patient's about a prescription, as an Observation focused on it.
    async fn record_answer(
        &self,
        caller: &Caller,
        prescription: &str,
        code: &str,
        yes: bool,
    ) -> Result<()> {
        let mr = self
            .api
            .read(caller, "MedicationRequest", prescription)
            .await?
            .json()?;
        let display = match code {
            CAN_GET_AND_USE => "The patient can get and use the medicine",
            _ => "The patient got the medicine and started it",
        };
        let mut o = json!({
            "resourceType": "Observation",
            "id": crate::fhir_api::new_id(),
            "status": "final",
            "code": {"coding": [{"system": PRESCRIBING_SYSTEM, "code": code, "display": display}]},
            "subject": mr["subject"].clone(),
            "focus": [{"reference": format!("MedicationRequest/{prescription}")}],
            "effectiveDateTime": Stored::instant(self.clock.now()),
            "valueBoolean": yes,
        });
        if let Some(r) = &caller.fhir_ref {
            o["performer"] = json!([{"reference": r}]);
        }
        self.api
            .transaction_with(vec![put_entry(caller, o, None)], &[], None)
            .await?;
        Ok(())
    }

    /// The check-in's answer: did the patient get the medicine and start it. A "no" is a
    /// barrier for the team (in the patient's words), whatever the check found.
    pub async fn first_fill(
        &self,
        caller: &Caller,
        prescription: &str,
        started: bool,
        words: &str,
    ) -> Result<()> {
        self.record_answer(caller, prescription, FIRST_FILL, started)
            .await?;
        if !started {
            let words = match words.trim() {
                "" => "did not get the medicine or start it",
                w => w,
            };
            self.patient_says_cant(caller, prescription, Kind::Other, words)
                .await?;
        }
        Ok(())
    }

    /// The open barriers a role owns now, across the patients the caller reaches, most
    /// urgent first: (patient id, patient name, medicine, barrier).
    pub async fn worklist(
        &self,
        caller: &Caller,
        role: Role,
    ) -> Result<Vec<(String, String, String, Barrier)>> {
        let tasks = self
            .api
            .search_all(
                caller,
                "Task",
                &[
                    (
                        "code".into(),
                        format!(
                            "{}|{}",
                            crate::vocabulary::TASKS,
                            super::check::BARRIER_TASK
                        ),
                    ),
                    ("status".into(), "requested".into()),
                ],
            )
            .await?;
        let mut rows = Vec::new();
        for t in &tasks {
            if let Some(b) = Barrier::of(t)?
                && b.owner == Some(role)
                && let Some(pid) = t.patient_id.clone()
            {
                rows.push((pid, b));
            }
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let list = |ids: Vec<&str>| {
            let mut ids = ids;
            ids.sort_unstable();
            ids.dedup();
            ids.join(",")
        };
        let formulary = self.formulary(caller).await?;
        let names: std::collections::HashMap<String, String> = self
            .api
            .search_all(
                caller,
                "Patient",
                &[(
                    "_id".into(),
                    list(rows.iter().map(|(p, _)| p.as_str()).collect()),
                )],
            )
            .await?
            .iter()
            .filter_map(|s| {
                Some((
                    s.id.clone(),
                    crate::vocabulary::person_name(&s.json().ok()?),
                ))
            })
            .collect();
        let medicines: std::collections::HashMap<String, String> = self
            .api
            .search_all(
                caller,
                "MedicationRequest",
                &[(
                    "_id".into(),
                    list(rows.iter().map(|(_, b)| b.prescription.as_str()).collect()),
                )],
            )
            .await?
            .iter()
            .filter_map(|s| Some((s.id.clone(), medicine_name(&formulary, &s.json().ok()?))))
            .collect();
        let mut out: Vec<(String, String, String, Barrier)> = rows
            .into_iter()
            .map(|(pid, b)| {
                (
                    names.get(&pid).cloned().unwrap_or_else(|| pid.clone()),
                    medicines.get(&b.prescription).cloned().unwrap_or_default(),
                    pid,
                    b,
                )
            })
            .map(|(name, medicine, pid, b)| (pid, name, medicine, b))
            .collect();
        out.sort_by_key(|r| r.3.due);
        Ok(out)
    }

    /// Saves what the patient (or family, or the team at the desk) says of their side: how
    /// they pay, how they get medicines and from which pharmacy, and the cost questions.
    /// Only what changed is written. The cost questions are answered all four or not at all
    /// (`answer` by code; a partial set is refused and nothing is written).
    pub async fn save_situation(
        &self,
        caller: &Caller,
        patient: &str,
        coverage: Option<CoverageKind>,
        getting: Option<(Getting, &str)>,
        written: Option<bool>,
        answer: impl Fn(&str) -> Option<bool>,
    ) -> Result<()> {
        let answers = CostAnswers::from_items(&answer);
        if answers.is_none() && CostAnswers::ITEMS.iter().any(|i| answer(i).is_some()) {
            return Err(CareError::input(
                "meds-about-cost-partial",
                "answer each of the four cost questions, or none",
            ));
        }
        let side = self.patient_side(caller, patient, None).await?;
        if let Some(k) = coverage.filter(|k| side.coverage != Some(*k)) {
            self.record_coverage(caller, patient, k, "").await?;
        }
        if let Some((g, pharmacy)) = getting
            && (side.getting != Some(g) || !pharmacy.trim().is_empty())
        {
            self.record_getting(caller, patient, g, pharmacy).await?;
        }
        if let Some(w) = written.filter(|w| side.wants_written != Some(*w)) {
            self.record_wants_written(caller, patient, w).await?;
        }
        if let Some(a) = answers {
            self.record_cost_answers(caller, patient, a).await?;
        }
        Ok(())
    }
}
