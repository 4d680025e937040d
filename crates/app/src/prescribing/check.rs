//! The partnership check as FHIR. What it reads of the patient:
//! - coverage: their active `Coverage` (its `type` in the coverage-kind code system);
//! - how they get medicines: the latest `Observation` coded `medicine-access` (value in the
//!   medicine-access code system; the pharmacy, in words, in `note`);
//! - the cost questions: their latest `QuestionnaireResponse` to coproduce's cost-related
//!   non-adherence questionnaire in the last 12 months;
//! - transportation: the social-needs screen's latest answer to LOINC 93030-5;
//! - language: `Patient.communication` (preferred first);
//! - teach-back: an `Observation` coded `teach-back` (written when the team resolves an
//!   understanding barrier with a teach-back) whose `focus` is the prescription or
//!   another of the same drug (`valueCodeableConcept` the language it was done in).
//!
//! What it writes, in one transaction: the check itself, an `Observation` coded
//! `partnership-check` with `focus` the MedicationRequest, one component per question (the
//! finding in the finding code system, the reason's code, the English detail as text), `final`
//! when complete and `preliminary` when something is not known; and one `Task` per barrier
//! (code `medication-barrier`, `focus` the MedicationRequest, its kind and reason as inputs)
//! owned by the barrier kind's role with a deadline and an escalation chain. A barrier
//! already open for the same prescription and kind is not opened twice.

use super::*;
use crate::deadlines::{escalation_extension, set_task_deadline};
use crate::vocabulary::{ROLES, TASKS, WORKFLOW_TAGS, derived_id};
use coproduce_core::prescribing::check::{
    self as core_check, Check, CostAnswers, Finding, Getting, Kind, PatientSide, Reason, TeachBack,
};
use coproduce_core::prescribing::{CoverageKind, Drug};
use coproduce_core::social::ahc;
use coproduce_store::Stored;

/// The code system of what coproduce records for prescribing (the check, a barrier's
/// inputs, how the patient gets medicines, teach-back).
pub const PRESCRIBING_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/prescribing";
/// A check's finding per question: `clear`, `barrier`, `unknown`.
pub const FINDING_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/check-finding";
/// The kinds of barrier (`afford`, `reach`, `understand`, `language`, `other`).
pub const BARRIER_KIND_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/barrier-kind";
/// Why a question is a barrier (`high-cost`, `no-transport`, `teach-back-due`...).
pub const BARRIER_REASON_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/barrier-reason";
/// How a patient gets medicines (`pick-up`, `mail-order`, `delivery`, `someone-brings`).
pub const GETTING_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/medicine-access";
/// The Task code of a barrier.
pub const BARRIER_TASK: &str = "medication-barrier";
/// The Observation code of whether the patient wants their instructions written down.
pub const WRITTEN: &str = "written-instructions";
/// The tag of a prescription whose check has not run yet.
pub const CHECK_PENDING: &str = "check-pending";
/// coproduce's cost-related non-adherence questionnaire (the four MCBS items).
pub const COST_QUESTIONNAIRE: &str =
    "https://coproduce.health/fhir/Questionnaire/cost-related-non-adherence";
const LOINC: &str = "http://loinc.org";

fn code(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn has_code(concept: &Value, system: &str, code: &str) -> bool {
    concept["coding"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["system"] == system && c["code"] == code)
    })
}

fn code_in(concept: &Value, system: &str) -> Option<String> {
    concept["coding"]
        .as_array()?
        .iter()
        .find(|c| c["system"] == system)
        .and_then(|c| c["code"].as_str())
        .map(str::to_string)
}

fn patient_ref(patient: &str) -> Value {
    json!({"reference": format!("Patient/{patient}")})
}

/// The formulary drug a MedicationRequest (or any resource with a medication code) names:
/// by the site's code, else by RxNorm.
pub fn drug_for<'a>(formulary: &'a Formulary, medication: &Value) -> Option<&'a Drug> {
    code_in(medication, FORMULARY_SYSTEM)
        .and_then(|c| formulary.drug(&c))
        .or_else(|| code_in(medication, RXNORM).and_then(|rx| formulary.by_rxnorm(&rx)))
}

/// The answers of a response to the cost questions: an answer per question, or (a response
/// missing one) no answer at all.
pub(super) fn cost_answers_of(qr: &Value) -> Option<CostAnswers> {
    CostAnswers::from_items(|link| {
        qr["item"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["linkId"] == link)
            .and_then(|i| i["answer"][0]["valueBoolean"].as_bool())
    })
}

/// One barrier as the team and the patient see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Barrier {
    pub task: String,
    pub prescription: String,
    pub kind: Kind,
    pub reason: String,
    pub english: String,
    /// The patient's own words, when they said "I can't" about it.
    pub words: Option<String>,
    /// The patient (or family) said "I can't" about it: they raised it, or said so while it
    /// was open.
    pub patient_said: bool,
    /// requested (open), completed (resolved), cancelled.
    pub status: String,
    pub owner: Option<Role>,
    pub due: Option<time::OffsetDateTime>,
    /// What resolved it, if it is resolved.
    pub resolution: Option<String>,
}

impl Barrier {
    pub(super) fn of(stored: &Stored) -> std::result::Result<Option<Barrier>, AppError> {
        let v = stored.json()?;
        if !has_code(&v["code"], TASKS, BARRIER_TASK) {
            return Ok(None);
        }
        let input = |name: &str| {
            v["input"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| has_code(&i["type"], PRESCRIBING_SYSTEM, name))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let Some(kind) = input("kind")["valueCode"].as_str().and_then(Kind::parse) else {
            return Ok(None);
        };
        Ok(Some(Barrier {
            task: stored.id.clone(),
            prescription: v["focus"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("MedicationRequest/"))
                .unwrap_or_default()
                .to_string(),
            kind,
            words: input("words")["valueString"].as_str().map(str::to_string),
            patient_said: input("reason")["valueCode"] == "patient-says-cant"
                || !input("patient-said").is_null(),
            reason: input("reason")["valueCode"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            english: v["description"].as_str().unwrap_or_default().to_string(),
            status: v["status"].as_str().unwrap_or_default().to_string(),
            owner: code_in(&v["performerType"][0], ROLES).and_then(|r| Role::parse(&r)),
            due: crate::vocabulary::instant_of(&v["restriction"]["period"]["end"]),
            resolution: v["output"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| has_code(&o["type"], PRESCRIBING_SYSTEM, "resolution"))
                .and_then(|o| code_in(&o["valueCodeableConcept"], PRESCRIBING_SYSTEM)),
        }))
    }

    pub fn is_open(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "completed" | "cancelled" | "failed" | "rejected" | "entered-in-error"
        )
    }

    /// Open, and past its due time.
    pub fn is_overdue(&self, now: time::OffsetDateTime) -> bool {
        self.is_open() && self.due.is_some_and(|d| d < now)
    }
}

impl Prescribing {
    /// Records the patient's coverage: a new active Coverage of this kind (the plan named in
    /// words), the previous ones ended.
    pub async fn record_coverage(
        &self,
        caller: &Caller,
        patient: &str,
        kind: CoverageKind,
        plan: &str,
    ) -> Result<String> {
        let now = Stored::instant(self.clock.now());
        let mut entries = Vec::new();
        for old in self.coverages(caller, patient).await? {
            let mut v = old.json()?;
            if v["status"] == "active" {
                v["status"] = json!("cancelled");
                v["period"]["end"] = json!(now);
                entries.push(put_entry(caller, v, None));
            }
        }
        let id = crate::fhir_api::new_id();
        let mut coverage = json!({
            "resourceType": "Coverage",
            "id": id,
            "status": "active",
            "type": {"coding": [{"system": COVERAGE_KIND_SYSTEM, "code": kind.as_str(), "display": kind.english()}]},
            "beneficiary": patient_ref(patient),
            "payor": [patient_ref(patient)],
            "period": {"start": now},
        });
        if !plan.trim().is_empty() {
            coverage["class"] = json!([{"type": code("http://terminology.hl7.org/CodeSystem/coverage-class", "plan"), "value": plan.trim(), "name": plan.trim()}]);
            coverage["payor"] = json!([{"display": plan.trim()}]);
        }
        entries.push(put_entry(caller, coverage, None));
        self.api.transaction_with(entries, &[], None).await?;
        Ok(id)
    }

    async fn coverages(&self, caller: &Caller, patient: &str) -> Result<Vec<Stored>> {
        Ok(self
            .api
            .search_all(
                caller,
                "Coverage",
                &[("beneficiary".into(), format!("Patient/{patient}"))],
            )
            .await?)
    }

    /// Records how the patient gets medicines, and from which pharmacy (in words).
    pub async fn record_getting(
        &self,
        caller: &Caller,
        patient: &str,
        getting: Getting,
        pharmacy: &str,
    ) -> Result<String> {
        let id = crate::fhir_api::new_id();
        let mut o = json!({
            "resourceType": "Observation",
            "id": id,
            "status": "final",
            "code": {"coding": [{"system": PRESCRIBING_SYSTEM, "code": "medicine-access", "display": "How the patient gets medicines"}]},
            "subject": patient_ref(patient),
            "effectiveDateTime": Stored::instant(self.clock.now()),
            "valueCodeableConcept": code(GETTING_SYSTEM, getting.as_str()),
        });
        if !pharmacy.trim().is_empty() {
            o["note"] = json!([{"text": format!("Pharmacy: {}", pharmacy.trim())}]);
        }
        self.api
            .transaction_with(vec![put_entry(caller, o, None)], &[], None)
            .await?;
        Ok(id)
    }

    /// Records whether the patient wants their medicines' instructions written down.
    pub async fn record_wants_written(
        &self,
        caller: &Caller,
        patient: &str,
        wants: bool,
    ) -> Result<String> {
        let id = crate::fhir_api::new_id();
        let o = json!({
            "resourceType": "Observation",
            "id": id,
            "status": "final",
            "code": {"coding": [{"system": PRESCRIBING_SYSTEM, "code": WRITTEN, "display": "Wants medicine instructions written down"}]},
            "subject": patient_ref(patient),
            "effectiveDateTime": Stored::instant(self.clock.now()),
            "valueBoolean": wants,
        });
        self.api
            .transaction_with(vec![put_entry(caller, o, None)], &[], None)
            .await?;
        Ok(id)
    }

    /// Records the patient's answers to the four cost questions (last 12 months, because of
    /// cost) as a QuestionnaireResponse.
    pub async fn record_cost_answers(
        &self,
        caller: &Caller,
        patient: &str,
        answers: CostAnswers,
    ) -> Result<String> {
        let id = crate::fhir_api::new_id();
        let mut qr = json!({
            "resourceType": "QuestionnaireResponse",
            "id": id,
            "questionnaire": COST_QUESTIONNAIRE,
            "status": "completed",
            "subject": patient_ref(patient),
            "authored": Stored::instant(self.clock.now()),
            "item": answers.items().iter().map(|(link, yes)| json!({
                "linkId": link,
                "answer": [{"valueBoolean": yes}],
            })).collect::<Vec<_>>(),
        });
        if let Some(r) = &caller.fhir_ref {
            qr["author"] = json!({"reference": r});
        }
        self.api
            .transaction_with(vec![put_entry(caller, qr, None)], &[], None)
            .await?;
        Ok(id)
    }

    /// The Observation of a teach-back of a prescription's medicine by the caller.
    pub(super) fn teach_back(
        &self,
        caller: &Caller,
        prescription: &str,
        mr: &Value,
        language: &str,
    ) -> Value {
        let mut o = json!({
            "resourceType": "Observation",
            "id": crate::fhir_api::new_id(),
            "status": "final",
            "code": {"coding": [{"system": PRESCRIBING_SYSTEM, "code": "teach-back", "display": "Teach-back of a medicine"}]},
            "subject": mr["subject"].clone(),
            "focus": [{"reference": format!("MedicationRequest/{prescription}")}],
            "effectiveDateTime": Stored::instant(self.clock.now()),
            "valueCodeableConcept": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]},
            "component": [{
                "code": code(PRESCRIBING_SYSTEM, "medication"),
                "valueCodeableConcept": mr["medicationCodeableConcept"].clone(),
            }],
        });
        if let Some(r) = &caller.fhir_ref {
            o["performer"] = json!([{"reference": r}]);
        }
        if let (Some(role), Some(components)) = (
            crate::vocabulary::role_of(caller),
            o["component"].as_array_mut(),
        ) {
            components.push(json!({"code": code(PRESCRIBING_SYSTEM, "by-role"), "valueCodeableConcept": code(ROLES, role.as_str())}));
        }
        o
    }

    /// What is known of the patient for a check of `drug`, as the records say at `now`.
    pub async fn patient_side(
        &self,
        caller: &Caller,
        patient: &str,
        drug: Option<&Drug>,
    ) -> Result<PatientSide> {
        let now = self.clock.now();
        let year_ago = Stored::instant(now - time::Duration::days(365));
        let subject = ("subject".to_string(), format!("Patient/{patient}"));
        let person = self.api.read(caller, "Patient", patient).await?.json()?;
        let coverage = self
            .coverages(caller, patient)
            .await?
            .iter()
            .filter_map(|c| c.json().ok())
            .filter(|c| c["status"] == "active")
            .find_map(|c| code_in(&c["type"], COVERAGE_KIND_SYSTEM))
            .and_then(|k| CoverageKind::parse(&k));
        let latest = |found: Vec<Stored>, date: &str| -> Option<Value> {
            found
                .iter()
                .filter_map(|s| s.json().ok())
                .max_by(|a, b| a[date].as_str().cmp(&b[date].as_str()))
        };
        let getting = latest(
            self.api
                .search_all(
                    caller,
                    "Observation",
                    &[
                        subject.clone(),
                        (
                            "code".into(),
                            format!("{PRESCRIBING_SYSTEM}|medicine-access"),
                        ),
                    ],
                )
                .await?,
            "effectiveDateTime",
        )
        .and_then(|o| code_in(&o["valueCodeableConcept"], GETTING_SYSTEM))
        .and_then(|g| Getting::parse(&g));
        let cost_answers = latest(
            self.api
                .search_all(
                    caller,
                    "QuestionnaireResponse",
                    &[
                        subject.clone(),
                        ("authored".into(), format!("ge{year_ago}")),
                    ],
                )
                .await?
                .into_iter()
                .filter(|s| {
                    s.json().is_ok_and(|qr| {
                        qr["questionnaire"] == COST_QUESTIONNAIRE && qr["status"] == "completed"
                    })
                })
                .collect(),
            "authored",
        )
        .and_then(|qr| cost_answers_of(&qr));
        // The social-needs screen's transportation question, scored by the screen's own
        // rules (an answer it does not offer says nothing).
        let transport = ahc::ITEMS
            .iter()
            .find(|i| i.domain == ahc::Domain::Transportation)
            .ok_or_else(|| {
                AppError::Internal("the AHC screen has no transportation item".into())
            })?;
        let transport_need = latest(
            self.api
                .search_all(
                    caller,
                    "Observation",
                    &[
                        subject.clone(),
                        ("code".into(), format!("{LOINC}|{}", transport.code)),
                        ("date".into(), format!("ge{year_ago}")),
                    ],
                )
                .await?,
            "effectiveDateTime",
        )
        .and_then(|o| code_in(&o["valueCodeableConcept"], LOINC))
        .filter(|answer| transport.answers.iter().any(|a| a.code == answer))
        .and_then(|answer| ahc::Screen::item_positive(transport, &[answer.as_str()]));
        let wants_written = latest(
            self.api
                .search_all(
                    caller,
                    "Observation",
                    &[
                        subject.clone(),
                        ("code".into(), format!("{PRESCRIBING_SYSTEM}|{WRITTEN}")),
                    ],
                )
                .await?,
            "effectiveDateTime",
        )
        .and_then(|o| o["valueBoolean"].as_bool());
        let teach_back = match drug {
            None => None,
            Some(d) => self
                .api
                .search_all(
                    caller,
                    "Observation",
                    &[
                        subject,
                        ("code".into(), format!("{PRESCRIBING_SYSTEM}|teach-back")),
                    ],
                )
                .await?
                .iter()
                .filter_map(|s| s.json().ok())
                .filter(|o| {
                    let medication = &o["component"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| has_code(&c["code"], PRESCRIBING_SYSTEM, "medication"))
                        .map_or(Value::Null, |c| c["valueCodeableConcept"].clone());
                    code_in(medication, FORMULARY_SYSTEM).as_deref() == Some(d.code.as_str())
                        || d.rxnorm.is_some() && code_in(medication, RXNORM) == d.rxnorm
                })
                .map(|o| TeachBack {
                    by: o["component"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| has_code(&c["code"], PRESCRIBING_SYSTEM, "by-role"))
                        .and_then(|c| code_in(&c["valueCodeableConcept"], ROLES))
                        .and_then(|r| Role::parse(&r))
                        .unwrap_or(Role::Pharmacist),
                    language: code_in(&o["valueCodeableConcept"], "urn:ietf:bcp:47")
                        .unwrap_or_default(),
                })
                .next(),
        };
        Ok(PatientSide {
            coverage,
            cost_answers,
            getting,
            transport_need,
            language: crate::vocabulary::preferred_language(&person).unwrap_or_default(),
            wants_written,
            teach_back,
        })
    }
}

/// The patient a prescription is for (a prescription that names none cannot be checked).
pub(super) fn patient_of(mr: &Value) -> Result<String> {
    mr["subject"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .map(str::to_string)
        .ok_or_else(|| {
            CareError::input(
                "prescription-no-patient",
                "the prescription names no patient",
            )
        })
}

/// The Observation that records a check of `prescription`.
fn check_record(prescription: &str, patient: &str, check: &Check, at: &str) -> Value {
    let component = |kind: Kind, finding: &Finding| {
        let (status, reason, text) = match finding {
            Finding::Clear(why) => ("clear", None, why.clone()),
            Finding::Barrier(r) => ("barrier", Some(r.code()), r.english()),
            Finding::Unknown(what) => ("unknown", None, what.clone()),
        };
        let mut coding = vec![json!({"system": FINDING_SYSTEM, "code": status})];
        if let Some(r) = reason {
            coding.push(json!({"system": BARRIER_REASON_SYSTEM, "code": r}));
        }
        json!({
            "code": code(BARRIER_KIND_SYSTEM, kind.as_str()),
            "valueCodeableConcept": {"coding": coding, "text": text},
        })
    };
    json!({
        "resourceType": "Observation",
        "id": derived_id(prescription, "check"),
        "status": if check.complete() { "final" } else { "preliminary" },
        "code": {"coding": [{"system": PRESCRIBING_SYSTEM, "code": "partnership-check", "display": "Partnership check on a prescription"}]},
        "subject": patient_ref(patient),
        "focus": [{"reference": format!("MedicationRequest/{prescription}")}],
        "effectiveDateTime": at,
        "interpretation": [code(FINDING_SYSTEM, if check.clean() { "clean" } else if check.complete() { "barriers" } else { "incomplete" })],
        "component": check.findings.iter().map(|(k, f)| component(*k, f)).collect::<Vec<_>>(),
    })
}

impl Prescribing {
    /// The barrier Task for a prescription, owned by the kind's role from now.
    pub(super) fn barrier_task(
        &self,
        prescription: &str,
        patient: &str,
        kind: Kind,
        reason: &Reason,
    ) -> Value {
        let chain = self.rules.barriers.chain(kind);
        let now = self.clock.now();
        let at = Stored::instant(now);
        let input = |name: &str, value: (&str, Value)| {
            let mut i = json!({"type": code(PRESCRIBING_SYSTEM, name)});
            i[value.0] = value.1;
            i
        };
        let mut inputs = vec![
            input("kind", ("valueCode", json!(kind.as_str()))),
            input("reason", ("valueCode", json!(reason.code()))),
        ];
        if let Reason::PatientSaysCant(words) = reason
            && !words.is_empty()
        {
            inputs.push(input("words", ("valueString", json!(words))));
        }
        let mut task = json!({
            "resourceType": "Task",
            "id": crate::fhir_api::new_id(),
            "extension": [escalation_extension(&chain)],
            "status": "requested",
            "intent": "order",
            "code": {"coding": [{"system": TASKS, "code": BARRIER_TASK, "display": "Barrier to a medicine"}]},
            "description": format!("{}: {}", kind.as_str(), reason.english()),
            "focus": {"reference": format!("MedicationRequest/{prescription}")},
            "for": patient_ref(patient),
            "authoredOn": at,
            "lastModified": at,
            "input": inputs,
        });
        set_task_deadline(&mut task, &chain.open(&self.calendar, now));
        task
    }

    /// The notice that tells a new barrier's role about it (in the app, and by webhook
    /// where the site has one).
    pub(super) async fn tell_owner(
        &self,
        patient: &str,
        task: &Value,
    ) -> Result<Vec<coproduce_store::NotificationRow>> {
        let Some((_, deadline)) = crate::deadlines::task_deadline(task) else {
            return Ok(Vec::new());
        };
        let person = self
            .api
            .read(&Caller::system("coproduce:prescribing"), "Patient", patient)
            .await?
            .json()?;
        Ok(self.notifier.to_team(
            patient,
            deadline.role,
            BARRIER_TASK,
            json!({
                "patient_name": crate::vocabulary::person_name(&person),
                "due": Stored::instant(deadline.due),
            }),
            self.clock.now(),
        ))
    }

    /// The barriers of a patient's prescriptions, newest first.
    pub async fn barriers(&self, caller: &Caller, patient: &str) -> Result<Vec<Barrier>> {
        let mut out = Vec::new();
        for s in self
            .api
            .search_all(
                caller,
                "Task",
                &[
                    ("patient".into(), format!("Patient/{patient}")),
                    ("code".into(), format!("{TASKS}|{BARRIER_TASK}")),
                ],
            )
            .await?
        {
            out.extend(Barrier::of(&s)?);
        }
        out.reverse();
        Ok(out)
    }

    /// Runs the partnership check of a prescription and records it: the check's Observation,
    /// a Task for each barrier not already open, and the prescription's pending tag cleared,
    /// in one transaction. Returns the check.
    pub async fn check(&self, caller: &Caller, prescription: &str) -> Result<Check> {
        let stored = self
            .api
            .read(caller, "MedicationRequest", prescription)
            .await?;
        let mut mr = stored.json()?;
        let patient = patient_of(&mr)?;
        let formulary = self.formulary(caller).await?;
        let drug = drug_for(&formulary, &mr["medicationCodeableConcept"]);
        let side = self.patient_side(caller, &patient, drug).await?;
        let mut check = core_check::check(drug, &formulary, &side, &self.rules.check);
        // A barrier the patient raised stays one until it is resolved.
        let open: Vec<Barrier> = self
            .barriers(caller, &patient)
            .await?
            .into_iter()
            .filter(|b| b.prescription == prescription && b.is_open())
            .collect();
        for b in &open {
            if b.patient_said {
                check.patient_says_cant(b.kind, "");
            }
        }
        let at = Stored::instant(self.clock.now());
        let mut entries = vec![put_entry(
            caller,
            check_record(prescription, &patient, &check, &at),
            None,
        )];
        let mut notices = Vec::new();
        for (kind, reason) in check.barriers() {
            if !open.iter().any(|b| b.kind == kind) {
                let task = self.barrier_task(prescription, &patient, kind, reason);
                notices.extend(self.tell_owner(&patient, &task).await?);
                entries.push(put_entry(caller, task, None));
            }
        }
        entries.extend(cleared(caller, &stored, &mut mr));
        self.api.transaction_with(entries, &notices, None).await?;
        Ok(check)
    }
}

/// The prescription's update that clears its pending tag, if it carries one (at the version
/// read: a change since fails the transaction rather than being overwritten).
pub(super) fn cleared<'a>(
    caller: &'a Caller,
    stored: &Stored,
    mr: &mut Value,
) -> Option<(&'a Caller, Value)> {
    let tags = mr["meta"]["tag"].as_array_mut()?;
    let before = tags.len();
    tags.retain(|t| !(t["system"] == WORKFLOW_TAGS && t["code"] == CHECK_PENDING));
    if tags.len() == before {
        return None;
    }
    crate::vocabulary::strip_version(mr);
    Some(put_entry(caller, mr.take(), Some(stored.version_id)))
}
