//! Barriers after the check: the patient's "I can't" at any time, the team resolving a
//! barrier with what was done, and the check of prescriptions that arrive through the FHIR
//! API (tagged pending on write, checked by the watcher's next pass).

use super::check::{self, Barrier, CHECK_PENDING};
use super::*;
use crate::fhir_api::{Write, WriteRule};
use crate::vocabulary::{WORKFLOW_TAGS, role_of};
use coproduce_core::prescribing::check::{
    CostAnswers, Kind, Resolution, ResolutionRefused, may_resolve,
};
use coproduce_fhir::Resource;
use coproduce_store::Stored;
use std::sync::Arc;

/// Who runs checks on the patient's behalf (the check is the platform's, whoever prompted it).
fn checker() -> Caller {
    Caller::system("coproduce:prescribing")
}

impl Prescribing {
    /// The patient (or a family member whose grant covers it, or the team with them) says "I
    /// can't" about a prescription: a barrier of that kind for the kind's role, unless one is
    /// already open, and the check recorded again with it. Returns the barrier's Task id.
    pub async fn patient_says_cant(
        &self,
        caller: &Caller,
        prescription: &str,
        kind: Kind,
        words: &str,
    ) -> Result<String> {
        let mr = self
            .api
            .read(caller, "MedicationRequest", prescription)
            .await?
            .json()?;
        let patient = super::check::patient_of(&mr)?;
        if !Kind::PATIENT_SAYS.contains(&kind) {
            return Err(CareError::input(
                "prescription-cant-kind",
                "say whether it is the cost, getting it, how to take it, or something else",
            ));
        }
        if words.chars().count() > 1000 {
            return Err(CareError::input(
                "prescription-words-too-long",
                "say it in at most 1,000 characters",
            ));
        }
        if let Some(open) = self
            .barriers(caller, &patient)
            .await?
            .into_iter()
            .find(|b| b.prescription == prescription && b.kind == kind && b.is_open())
        {
            // Already the team's work: that the patient said so is recorded on it (when it
            // is not already), with their words, so neither is lost.
            if !open.patient_said || !words.trim().is_empty() {
                let stored = self.api.read(caller, "Task", &open.task).await?;
                let mut v = stored.json()?;
                crate::vocabulary::strip_version(&mut v);
                let input = |code: &str, value: (&str, Value)| {
                    let mut i = json!({"type": {"coding": [{"system": check::PRESCRIBING_SYSTEM, "code": code}]}});
                    i[value.0] = value.1;
                    i
                };
                if let Some(inputs) = v["input"].as_array_mut() {
                    if !open.patient_said {
                        let at = Stored::instant(self.clock.now());
                        inputs.push(input("patient-said", ("valueDateTime", json!(at))));
                    }
                    if !words.trim().is_empty() {
                        inputs.retain(|i| i["type"]["coding"][0]["code"] != "words");
                        inputs.push(input("words", ("valueString", json!(words.trim()))));
                    }
                }
                v["lastModified"] = json!(Stored::instant(self.clock.now()));
                self.api
                    .transaction_with(
                        vec![put_entry(caller, v, Some(stored.version_id))],
                        &[],
                        None,
                    )
                    .await?;
            }
            return Ok(open.task);
        }
        let reason =
            coproduce_core::prescribing::check::Reason::PatientSaysCant(words.trim().to_string());
        let task = self.barrier_task(prescription, &patient, kind, &reason);
        let id = task["id"].as_str().unwrap_or_default().to_string();
        let notices = self.tell_owner(&patient, &task).await?;
        self.api
            .transaction_with(vec![put_entry(caller, task, None)], &notices, None)
            .await?;
        self.check(&checker(), prescription).await?;
        Ok(id)
    }

    /// A team member solves a barrier as the medicines page offers it: with what was done,
    /// and, for a switch, the drug it was switched to (a drug to switch to comes only with
    /// "switched to an alternative").
    pub async fn solve(
        &self,
        caller: &Caller,
        task: &str,
        resolution: Resolution,
        switch_to: Option<&str>,
        prescriber_agreed: bool,
        note: &str,
    ) -> Result<()> {
        match switch_to {
            None => self
                .resolve_barrier(caller, task, resolution, prescriber_agreed, note)
                .await
                .map(|_| ()),
            Some(drug) if resolution == Resolution::SwitchedToAlternative => self
                .switch_medicine(caller, task, drug, prescriber_agreed, note)
                .await
                .map(|_| ()),
            Some(_) => Err(CareError::input(
                "meds-switch-needs-switched",
                "a switch of medicine is resolved as switched to an alternative",
            )),
        }
    }

    /// A team member resolves a barrier with what was done (and a note). A switch of medicine
    /// needs a clinician, or the prescriber's agreement recorded by whoever resolves it. The
    /// Task is written at the version read (a change since is refused, not overwritten).
    pub async fn resolve_barrier(
        &self,
        caller: &Caller,
        task: &str,
        resolution: Resolution,
        prescriber_agreed: bool,
        note: &str,
    ) -> Result<Barrier> {
        let (barrier, entry) = self
            .resolution(caller, task, resolution, prescriber_agreed, note, None)
            .await?;
        let mut entries = vec![entry];
        // A teach-back done is recorded as one, in the patient's language, so that the next
        // prescription of the same medicine finds it.
        if resolution == Resolution::TeachBackDone {
            let mr = self
                .api
                .read(caller, "MedicationRequest", &barrier.prescription)
                .await?
                .json()?;
            let person = self
                .api
                .read(caller, "Patient", &check::patient_of(&mr)?)
                .await?
                .json()?;
            let language =
                crate::vocabulary::preferred_language(&person).unwrap_or_else(|| "en".into());
            let o = self.teach_back(caller, &barrier.prescription, &mr, &language);
            entries.push(put_entry(caller, o, None));
        }
        let notices = self.tell_patient(caller, &barrier).await?;
        self.api.transaction_with(entries, &notices, None).await?;
        let resolved = self.api.read(caller, "Task", task).await?;
        Barrier::of(&resolved)?.ok_or_else(|| AppError::NotFound(format!("Task/{task}")).into())
    }

    /// Resolves a barrier by switching the prescription to another drug of the formulary
    /// that could replace it (with the prescriber's agreement unless a clinician does it):
    /// the prescription is stopped, a new one for `drug` with the same directions is written
    /// for the same prescriber (`priorPrescription` the old one), and the barrier is completed
    /// with the switch, all in one transaction; the new prescription is checked at once.
    /// Returns its id.
    pub async fn switch_medicine(
        &self,
        caller: &Caller,
        task: &str,
        drug: &str,
        prescriber_agreed: bool,
        note: &str,
    ) -> Result<String> {
        let new_id = crate::fhir_api::new_id();
        let (barrier, entry) = self
            .resolution(
                caller,
                task,
                Resolution::SwitchedToAlternative,
                prescriber_agreed,
                note,
                Some(&new_id),
            )
            .await?;
        let stored = self
            .api
            .read(caller, "MedicationRequest", &barrier.prescription)
            .await?;
        let old = stored.json()?;
        let formulary = self.formulary(caller).await?;
        let from = check::drug_for(&formulary, &old["medicationCodeableConcept"]);
        let to = formulary.drug(drug);
        let (Some(from), Some(to)) = (from, to) else {
            return Err(CareError::input(
                "barrier-switch-not-an-alternative",
                "choose a medicine of the formulary that could replace this one",
            ));
        };
        if to.code == from.code || !to.replaces(from) {
            return Err(CareError::input(
                "barrier-switch-not-an-alternative",
                "choose a medicine of the formulary that could replace this one",
            ));
        }
        let mut stopped = old.clone();
        crate::vocabulary::strip_version(&mut stopped);
        stopped["status"] = json!("stopped");
        stopped["statusReason"] =
            json!({"text": format!("Switched to {} {}", to.name, to.strength)});
        let mut coding =
            vec![json!({"system": FORMULARY_SYSTEM, "code": to.code, "display": to.name})];
        if let Some(rx) = &to.rxnorm {
            coding.push(json!({"system": RXNORM, "code": rx}));
        }
        let mut new = old.clone();
        if let Some(o) = new.as_object_mut() {
            o.remove("meta");
            o.remove("statusReason");
        }
        new["id"] = json!(new_id);
        new["status"] = json!("active");
        new["authoredOn"] = json!(Stored::instant(self.clock.now()));
        new["medicationCodeableConcept"] =
            json!({"coding": coding, "text": format!("{} {}", to.name, to.strength).trim()});
        new["priorPrescription"] = json!({"reference": format!("MedicationRequest/{}", barrier.prescription), "display": format!("{} {}", from.name, from.strength).trim()});
        new["dispenseRequest"]["expectedSupplyDuration"] = json!({"value": to.days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"});
        new["note"] = json!([{"text": format!("One fill: {}. Switched from {} {} to resolve a barrier.", to.fill, from.name, from.strength)}]);
        let mut entries = vec![
            put_entry(caller, stopped, Some(stored.version_id)),
            put_entry(caller, new, None),
            entry,
        ];
        // The stopped prescription's other open barriers end with it; the new one's check
        // finds its own.
        let patient = check::patient_of(&old)?;
        for other in self.barriers(caller, &patient).await? {
            if other.prescription == barrier.prescription && other.task != task && other.is_open() {
                let t = self.api.read(caller, "Task", &other.task).await?;
                let mut v = t.json()?;
                crate::vocabulary::strip_version(&mut v);
                v["status"] = json!("cancelled");
                v["statusReason"] = json!({"text": "the prescription was switched"});
                v["lastModified"] = json!(Stored::instant(self.clock.now()));
                entries.push(put_entry(caller, v, Some(t.version_id)));
            }
        }
        let notices = self.tell_patient(caller, &barrier).await?;
        self.api.transaction_with(entries, &notices, None).await?;
        self.check(&checker(), &new_id).await?;
        Ok(new_id)
    }

    /// The notices that tell the patient (and family whose grant covers the plan) that a
    /// barrier was solved.
    async fn tell_patient(
        &self,
        caller: &Caller,
        barrier: &Barrier,
    ) -> Result<Vec<coproduce_store::NotificationRow>> {
        let mr = self
            .api
            .read(caller, "MedicationRequest", &barrier.prescription)
            .await?
            .json()?;
        let patient = check::patient_of(&mr)?;
        let actor = caller.fhir_ref.clone().unwrap_or_default();
        Ok(self
            .notifier
            .to_patient(
                &patient,
                &actor,
                coproduce_core::access::Part::Plan,
                "medication-barrier-resolved",
                json!({}),
            )
            .await?)
    }

    /// The barrier and its completed Task's write: checked against who resolves it and how.
    async fn resolution<'a>(
        &self,
        caller: &'a Caller,
        task: &str,
        resolution: Resolution,
        prescriber_agreed: bool,
        note: &str,
        switched_to: Option<&str>,
    ) -> Result<(Barrier, (&'a Caller, Value))> {
        let stored = self.api.read(caller, "Task", task).await?;
        let Some(barrier) = Barrier::of(&stored)? else {
            return Err(AppError::NotFound(format!("Task/{task} is not a barrier")).into());
        };
        if !barrier.is_open() {
            return Err(CareError::input(
                "barrier-already-closed",
                "this barrier is already resolved",
            ));
        }
        let role = role_of(caller).unwrap_or(Role::Admin);
        may_resolve(barrier.kind, resolution, role, prescriber_agreed).map_err(|e| {
            let key = match e {
                ResolutionRefused::DoesNotFit { .. } => "barrier-resolution-does-not-fit",
                ResolutionRefused::NotTheTeam => "barrier-resolution-not-team",
                ResolutionRefused::NeedsPrescriberAgreement => "barrier-resolution-needs-agreement",
            };
            CareError::input(key, e.english())
        })?;
        let mut v = stored.json()?;
        crate::vocabulary::strip_version(&mut v);
        let at = Stored::instant(self.clock.now());
        let output = |name: &str, value: (&str, Value)| {
            let mut o =
                json!({"type": {"coding": [{"system": check::PRESCRIBING_SYSTEM, "code": name}]}});
            o[value.0] = value.1;
            o
        };
        let mut outputs = vec![output(
            "resolution",
            (
                "valueCodeableConcept",
                json!({"coding": [{"system": check::PRESCRIBING_SYSTEM, "code": resolution.as_str()}]}),
            ),
        )];
        if prescriber_agreed {
            outputs.push(output("prescriber-agreed", ("valueBoolean", json!(true))));
        }
        if let Some(id) = switched_to {
            outputs.push(output(
                "switched-to",
                (
                    "valueReference",
                    json!({"reference": format!("MedicationRequest/{id}")}),
                ),
            ));
        }
        v["status"] = json!("completed");
        v["lastModified"] = json!(at);
        v["output"] = json!(outputs);
        if !note.trim().is_empty() {
            v["note"] = json!([{"text": note.trim(), "time": at}]);
        }
        if let Some(r) = &caller.fhir_ref {
            v["owner"] = json!({"reference": r});
        }
        let entry = put_entry(caller, v, Some(stored.version_id));
        Ok((barrier, entry))
    }

    /// The drugs that could replace a prescription's and cost this patient less, for the
    /// team's switch: (code, name and strength, cost per fill).
    pub async fn cheaper_for(
        &self,
        caller: &Caller,
        prescription: &str,
    ) -> Result<Vec<(String, String, coproduce_core::prescribing::Money)>> {
        let mr = self
            .api
            .read(caller, "MedicationRequest", prescription)
            .await?
            .json()?;
        let patient = check::patient_of(&mr)?;
        let formulary = self.formulary(caller).await?;
        let Some(drug) = check::drug_for(&formulary, &mr["medicationCodeableConcept"]) else {
            return Ok(Vec::new());
        };
        let Some(coverage) = self.patient_side(caller, &patient, None).await?.coverage else {
            return Ok(Vec::new());
        };
        Ok(formulary
            .alternatives(drug, coverage)
            .iter()
            .map(|a| {
                (
                    a.drug.code.clone(),
                    format!("{} {}", a.drug.name, a.drug.strength),
                    a.cost,
                )
            })
            .collect())
    }

    /// Checks every prescription still tagged pending (those that arrived through the FHIR
    /// API or an integration); the watcher calls this each pass. One already dispensed when it
    /// was written is untagged without a check. Returns how many it checked.
    pub async fn check_pending(&self) -> Result<usize> {
        let system = checker();
        let pending = self
            .api
            .search_all(
                &system,
                "MedicationRequest",
                &[("_tag".into(), format!("{WORKFLOW_TAGS}|{CHECK_PENDING}"))],
            )
            .await?;
        let mut checked = 0;
        for mr in &pending {
            // A prescription handed over as it was written (a rescue pack given at the
            // visit, under its own protocol) is past the point the check is for.
            let dispensed = self
                .api
                .search_all(
                    &system,
                    "MedicationDispense",
                    &[
                        (
                            "prescription".into(),
                            format!("MedicationRequest/{}", mr.id),
                        ),
                        ("status".into(), "completed".into()),
                    ],
                )
                .await?;
            if dispensed.is_empty() {
                self.check(&system, &mr.id).await?;
                checked += 1;
            } else if let Some(entry) = super::check::cleared(&system, mr, &mut mr.json()?) {
                self.api.transaction_with(vec![entry], &[], None).await?;
            }
        }
        Ok(checked)
    }
}

/// Tags a new prescription for its check: one written here (by the app, an integration or
/// the FHIR API) that is active or a draft. An import brings prescriptions as they were and
/// starts no check.
struct PendingCheck;

impl WriteRule for PendingCheck {
    fn resource_type(&self) -> &'static str {
        "MedicationRequest"
    }

    fn check(
        &self,
        write: &Write<'_>,
        resource: Resource,
    ) -> std::result::Result<Resource, AppError> {
        let mut v = resource.to_value();
        let new = write.previous.is_none() && !write.importing;
        if !new || !matches!(v["status"].as_str(), Some("active" | "draft")) {
            return Ok(resource);
        }
        let tag = json!({"system": WORKFLOW_TAGS, "code": CHECK_PENDING, "display": "Partnership check pending"});
        match v["meta"]["tag"].as_array_mut() {
            Some(tags) if tags.contains(&tag) => return Ok(resource),
            Some(tags) => tags.push(tag),
            None => v["meta"]["tag"] = json!([tag]),
        }
        Ok(coproduce_fhir::resource::parse_resource_value(v)?)
    }
}

/// The cost questions' response, on every path it arrives by: each of its items is one of
/// the four questions, answered yes or no (a response that is not is refused and nothing is
/// written); a completed one about a patient yields one Observation per question answered
/// (coded `prescribing|crn-QUESTION`, `valueBoolean`, `derivedFrom` the response), kept in
/// step with it.
struct CostAnswersRule;

fn is_cost_response(v: &Value) -> bool {
    v["questionnaire"] == super::check::COST_QUESTIONNAIRE
}

impl WriteRule for CostAnswersRule {
    fn resource_type(&self) -> &'static str {
        "QuestionnaireResponse"
    }

    fn check(
        &self,
        _write: &Write<'_>,
        resource: Resource,
    ) -> std::result::Result<Resource, AppError> {
        let v = resource.to_value();
        if !is_cost_response(&v) {
            return Ok(resource);
        }
        for (i, item) in v["item"].as_array().into_iter().flatten().enumerate() {
            let link = item["linkId"].as_str().unwrap_or_default();
            let path = format!("QuestionnaireResponse.item[{i}]");
            if !CostAnswers::ITEMS.contains(&link) {
                return Err(crate::fhir_api::invalid(
                    coproduce_fhir::IssueCode::Value,
                    &path,
                    format!(
                        "'{link}' is not one of the cost questions ({})",
                        CostAnswers::ITEMS.join(", ")
                    ),
                ));
            }
            let answers = item["answer"].as_array().map_or(0, Vec::len);
            if answers > 1 || answers == 1 && !item["answer"][0]["valueBoolean"].is_boolean() {
                return Err(crate::fhir_api::invalid(
                    coproduce_fhir::IssueCode::Value,
                    &path,
                    "each cost question is answered once, yes or no (valueBoolean)",
                ));
            }
        }
        Ok(resource)
    }

    fn derive(
        &self,
        _write: &Write<'_>,
        resource: &Resource,
    ) -> std::result::Result<Vec<crate::fhir_api::Derived>, AppError> {
        let v = resource.to_value();
        let patient = v["subject"]["reference"].as_str().unwrap_or_default();
        if !is_cost_response(&v) || v["status"] != "completed" || !patient.starts_with("Patient/") {
            return Ok(Vec::new());
        }
        let qr = v["id"].as_str().unwrap_or_default();
        let mut out = Vec::new();
        for item in v["item"].as_array().into_iter().flatten() {
            let (Some(link), Some(yes)) = (
                item["linkId"].as_str(),
                item["answer"][0]["valueBoolean"].as_bool(),
            ) else {
                continue;
            };
            let mut o = json!({
                "resourceType": "Observation",
                "id": crate::vocabulary::derived_id(qr, link),
                "status": "final",
                "code": {"coding": [{"system": super::check::PRESCRIBING_SYSTEM, "code": format!("crn-{link}")}], "text": format!("Because of cost, in the last 12 months: {}", link.replace('-', " "))},
                "subject": v["subject"].clone(),
                "valueBoolean": yes,
                "derivedFrom": [{"reference": format!("QuestionnaireResponse/{qr}")}],
            });
            if let Some(at) = v["authored"].as_str() {
                o["effectiveDateTime"] = json!(at);
            }
            out.push(crate::fhir_api::Derived {
                resource: coproduce_fhir::resource::parse_resource_value(o)?,
                keep: crate::fhir_api::Keep::Following,
            });
        }
        Ok(out)
    }
}

/// Prescribing's rules on writes.
pub fn write_rules() -> Vec<Arc<dyn WriteRule>> {
    vec![Arc::new(PendingCheck), Arc::new(CostAnswersRule)]
}
