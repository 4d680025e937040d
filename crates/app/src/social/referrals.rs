//! Closed-loop community referrals (the Gravity SDOH Clinical Care IG's pattern): a
//! ServiceRequest for the need, and a Task (`fulfill`) whose focus is the ServiceRequest and
//! whose owner is the organisation, made by the community health worker or social worker
//! from a need the patient asked help with, never otherwise. The Task carries the team's
//! deadline through the engine: the organisation accepts within two business days, else the
//! chain (community health worker, social worker, clinic lead) is told; the chain for the
//! 14-day follow-up travels on the Task for when it is accepted. Every ending has its reason
//! (`Task.statusReason`); the statuses and who sets them are `core::social::referral`'s.

use super::*;
use crate::deadlines::{escalation_extension, escalation_of, set_task_deadline, task_deadline};
use crate::fhir_api::{Write, WriteRule, invalid};
use crate::vocabulary::TASKS;
use coproduce_core::access::Who;
use coproduce_core::social::referral::{self, Ending, Helped, Side, Status};
use coproduce_fhir::{IssueCode, Resource, parse_resource_value};

/// The Task code of a community referral in coproduce's task codes (beside the IG's `fulfill`).
pub const REFERRAL_TASK: &str = "social-referral";
/// Why a referral ended (`Task.statusReason`).
pub const ENDING: &str = "https://coproduce.health/fhir/CodeSystem/referral-ending";
/// On a referral Task: the chain the follow-up takes once the organisation accepts.
pub const FOLLOW_UP_EXT: &str =
    "https://coproduce.health/fhir/StructureDefinition/referral-follow-up";

/// What a referral Task carries for the organisation (`Task.input`, by type in this
/// system), so that it needs nothing else of the chart: how to reach the patient, in which
/// language, and the need (the patient's name is `Task.for.display`).
pub const REFERRAL_INPUT: &str = "https://coproduce.health/fhir/CodeSystem/referral-input";

/// A referral as the needs page and the worklist show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub task: String,
    /// The need (Condition id) it is for.
    pub need: Option<String>,
    pub service: String,
    pub organization: String,
    pub status: Status,
    pub ending: Option<Ending>,
    pub authored: Option<OffsetDateTime>,
    /// The team's next deadline on it, while one is open.
    pub due: Option<OffsetDateTime>,
    /// The role the open deadline was escalated to, once a step was missed.
    pub escalated_to: Option<coproduce_core::access::Role>,
}

pub(crate) use crate::vocabulary::instant_of as instant;

impl Referral {
    pub(super) fn of(stored: &Stored) -> Option<Referral> {
        let v = stored.json().ok()?;
        let ours = v["code"]["coding"]
            .as_array()?
            .iter()
            .any(|c| c["code"] == "fulfill" || c["code"] == REFERRAL_TASK);
        if !ours {
            return None;
        }
        let open = task_deadline(&v).map(|(_, d)| d).filter(|_| {
            !Status::parse(v["status"].as_str().unwrap_or_default()).is_some_and(Status::is_final)
        });
        Some(Referral {
            task: stored.id.clone(),
            need: v["reasonReference"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Condition/"))
                .map(str::to_string),
            service: v["description"].as_str().unwrap_or_default().to_string(),
            organization: v["owner"]["display"]
                .as_str()
                .or(v["owner"]["reference"].as_str())
                .unwrap_or_default()
                .to_string(),
            status: Status::parse(v["status"].as_str().unwrap_or_default())?,
            ending: v["statusReason"]["coding"][0]["code"]
                .as_str()
                .and_then(Ending::parse),
            authored: instant(&v["authoredOn"]),
            due: open.map(|d| d.due),
            escalated_to: open.filter(|d| d.level > 0).map(|d| d.role),
        })
    }
}

/// Refused unless the caller refers for this patient (`core` decides who).
fn must_refer(caller: &Caller, patient: &str) -> Result<()> {
    if referral::refers(&caller.actor.who, patient) {
        Ok(())
    } else {
        Err(CareError::input(
            "social-refer-not-yours",
            "the community health worker or social worker on the patient's care team refers",
        ))
    }
}

impl Social {
    /// Refers the patient's need to a service of the directory. Refused: someone who does not
    /// refer, a need the patient has not asked help with, a service that does not meet it.
    pub async fn refer(
        &self,
        caller: &Caller,
        patient: &str,
        need: &str,
        service: &str,
        note: &str,
    ) -> Result<String> {
        must_refer(caller, patient)?;
        let needs = self.needs(caller, patient).await?;
        let Some(n) = needs.iter().find(|n| n.id == need) else {
            return Err(AppError::NotFound(format!("Condition/{need}")).into());
        };
        if !n.choice.is_some_and(Choice::permits_referral) {
            return Err(CareError::input(
                "social-refer-no-consent",
                "the patient has not asked for help with this need; nothing is referred without it",
            ));
        }
        let svc = self
            .api
            .read(caller, "HealthcareService", service)
            .await?
            .json()?;
        let meets = n.domain.is_some_and(|d| {
            svc["type"]
                .to_string()
                .contains(&format!("\"{}\"", d.as_str()))
        });
        let Some(s) = directory::Service::of(&svc).filter(|_| meets) else {
            return Err(CareError::input(
                "social-refer-wrong-service",
                "this service does not meet that need",
            ));
        };
        let person = self.api.read(caller, "Patient", patient).await?.json()?;
        let now = self.clock.now();
        let at = coproduce_store::Stored::instant(now);
        let domain = n.domain.unwrap_or(Domain::Food);
        let need_coding =
            json!({"system": NEED_SYSTEM, "code": domain.as_str(), "display": domain.english()});
        let input = |code: &str, value: (&str, Value)| {
            let mut i = json!({"type": {"coding": [{"system": REFERRAL_INPUT, "code": code}]}});
            i[value.0] = value.1;
            i
        };
        let mut inputs = vec![input(
            "need",
            ("valueCodeableConcept", json!({"coding": [need_coding]})),
        )];
        if let Some(l) = crate::vocabulary::preferred_language(&person) {
            inputs.push(input("language", ("valueCode", json!(l))));
        }
        let contact: Vec<String> = person["telecom"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["use"] != "old")
            .filter_map(|t| t["value"].as_str().map(str::to_string))
            .collect();
        if !contact.is_empty() {
            inputs.push(input("contact", ("valueString", json!(contact.join(", ")))));
        }
        let sr_id = crate::fhir_api::new_id();
        let task_id = crate::fhir_api::new_id();
        let org = json!({"reference": format!("Organization/{}", s.organization_id), "display": s.organization});
        let requester = caller.fhir_ref.as_ref().map(|r| json!({"reference": r}));
        let mut category = vec![
            json!({"coding": [{"system": "http://snomed.info/sct", "code": "410606002", "display": "Social service procedure"}]}),
        ];
        category.extend(
            domain
                .categories()
                .iter()
                .map(|c| json!({"coding": [{"system": SDOHCC_CODES, "code": c}]})),
        );
        let mut sr = json!({
            "resourceType": "ServiceRequest",
            "id": sr_id,
            "status": "active",
            "intent": "order",
            "category": category,
            "code": {"coding": [need_coding.clone()], "text": s.name},
            "subject": {"reference": format!("Patient/{patient}")},
            "authoredOn": at,
            "performer": [org],
            "reasonReference": [{"reference": format!("Condition/{need}")}],
            "supportingInfo": [{"reference": format!("Consent/{}", screening::derived_id(need, "choice"))}],
        });
        let deadline = self.referral_rules.accept.open(&self.calendar, now);
        let mut task = json!({
            "resourceType": "Task",
            "id": task_id,
            "extension": [
                escalation_extension(&self.referral_rules.accept),
                {"url": FOLLOW_UP_EXT, "extension": [escalation_extension(&self.referral_rules.follow_up)]},
            ],
            "status": "requested",
            "intent": "order",
            "code": {"coding": [
                {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"},
                {"system": TASKS, "code": REFERRAL_TASK, "display": "Community referral: accepted by the organisation"},
            ]},
            "description": format!("{} ({})", s.name, s.organization),
            "focus": {"reference": format!("ServiceRequest/{sr_id}")},
            "for": {"reference": format!("Patient/{patient}"), "display": crate::vocabulary::person_name(&person)},
            "authoredOn": at,
            "lastModified": at,
            "owner": org,
            "input": inputs,
            "reasonReference": {"reference": format!("Condition/{need}")},
        });
        if let Some(r) = &requester {
            sr["requester"] = r.clone();
            task["requester"] = r.clone();
        }
        if !note.trim().is_empty() {
            // The note is for the organisation too: it reads the Task, never the request.
            sr["note"] = json!([{"text": note.trim(), "time": at}]);
            task["note"] = sr["note"].clone();
        }
        set_task_deadline(&mut task, &deadline);
        screening::label(&mut sr);
        screening::label(&mut task);
        let entries = vec![
            (
                caller,
                json!({"resource": sr, "request": {"method": "PUT", "url": format!("ServiceRequest/{sr_id}")}}),
            ),
            (
                caller,
                json!({"resource": task, "request": {"method": "PUT", "url": format!("Task/{task_id}")}}),
            ),
        ];
        self.api.transaction_with(entries, &[], None).await?;
        Ok(task_id)
    }

    /// The patient's referrals, newest first.
    pub async fn referrals(&self, caller: &Caller, patient: &str) -> Result<Vec<Referral>> {
        let found = self
            .api
            .search_all(
                caller,
                "Task",
                &[
                    ("patient".into(), format!("Patient/{patient}")),
                    ("code".into(), "fulfill".into()),
                    ("_sort".into(), "-authored-on".into()),
                ],
            )
            .await?;
        Ok(found.iter().filter_map(Referral::of).collect())
    }

    /// The clinic's side ends a referral (cancelled, with its reason), as `core` allows.
    pub async fn cancel(
        &self,
        caller: &Caller,
        patient: &str,
        task: &str,
        reason: Ending,
    ) -> Result<()> {
        must_refer(caller, patient)?;
        let stored = self.api.read(caller, "Task", task).await?;
        if stored.patient_id.as_deref() != Some(patient) {
            return Err(AppError::NotFound(format!("Task/{task}")).into());
        }
        let mut v = stored.json()?;
        let from = Status::parse(v["status"].as_str().unwrap_or_default())
            .ok_or_else(|| AppError::NotFound(format!("Task/{task}")))?;
        let to = referral::advance(from, Status::Cancelled, Side::Requester, Some(reason))
            .map_err(|e| CareError::input(e.key, e.english))?;
        let now = coproduce_store::Stored::instant(self.clock.now());
        v["status"] = json!(to.as_str());
        v["statusReason"] = json!({"coding": [{"system": ENDING, "code": reason.as_str()}]});
        v["lastModified"] = json!(now);
        let sr = v["focus"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("ServiceRequest/"))
            .map(str::to_string);
        let mut entries = vec![(
            caller,
            json!({"resource": v, "request": {"method": "PUT", "url": format!("Task/{task}"), "ifMatch": format!("W/\"{}\"", stored.version_id)}}),
        )];
        if let Some(sr) = sr {
            let mut s = self.api.read(caller, "ServiceRequest", &sr).await?.json()?;
            s["status"] = json!("revoked");
            entries.push((
                caller,
                json!({"resource": s, "request": {"method": "PUT", "url": format!("ServiceRequest/{sr}")}}),
            ));
        }
        self.api.transaction_with(entries, &[], None).await?;
        Ok(())
    }
}

/// The referral's rule on every write of one of coproduce's referral Tasks (the pages, the
/// FHIR API, a Bundle): a change of status is one the IG allows, by the side that sets it,
/// with a reason for every ending; when the organisation accepts, the team's deadline becomes
/// the follow-up the Task carries (its first step counted from the acceptance).
pub(super) struct ReferralRule;

/// The first field, other than `allowed`, in which `after` differs from `before`.
fn changed_beyond(before: &Value, after: &Value, allowed: &[&str]) -> Option<String> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return None;
    };
    b.keys()
        .chain(a.keys())
        .filter(|k| !allowed.contains(&k.as_str()))
        .find(|k| b.get(*k) != a.get(*k))
        .cloned()
}

fn is_referral(v: &Value) -> bool {
    v["code"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["system"] == TASKS && c["code"] == REFERRAL_TASK)
}

impl WriteRule for ReferralRule {
    fn resource_type(&self) -> &'static str {
        "Task"
    }

    fn check(
        &self,
        write: &Write<'_>,
        resource: Resource,
    ) -> std::result::Result<Resource, AppError> {
        let Some(previous) = write.previous else {
            return Ok(resource);
        };
        let mut v = resource.to_value();
        if matches!(write.caller.actor.who, Who::Partner { .. })
            && let Some(field) = changed_beyond(previous, &v, &referral::TARGET_CHANGES)
        {
            return Err(invalid(
                IssueCode::Forbidden,
                &format!("Task.{field}"),
                "an organisation changes where a referral stands, never whom or what it is about",
            ));
        }
        if !is_referral(&v) || !is_referral(previous) {
            return Ok(resource);
        }
        let status = |x: &Value| Status::parse(x["status"].as_str().unwrap_or_default());
        let (Some(from), Some(to)) = (status(previous), status(&v)) else {
            return Err(invalid(
                IssueCode::CodeInvalid,
                "Task.status",
                "a referral's status is one of the SDOH Clinical Care IG's (not ready or received)",
            ));
        };
        if from == to {
            return Ok(resource);
        }
        // The clinic's people refer and cancel; an integration with system rights speaks for
        // the organisation the referral is addressed to.
        let side = referral::side_of(&write.caller.actor.who);
        let reason = v["statusReason"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["system"] == ENDING)
            .and_then(|c| c["code"].as_str())
            .and_then(Ending::parse);
        referral::advance(from, to, side, reason)
            .map_err(|e| invalid(IssueCode::Invariant, "Task.status", e.english))?;
        if to == Status::Accepted {
            let follow_up = v["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["url"] == FOLLOW_UP_EXT)
                .and_then(|e| e["extension"].as_array())
                .and_then(|x| x.first())
                .cloned();
            if let Some((chain_ext, chain)) =
                follow_up.and_then(|e| escalation_of(&e).map(|c| (e, c)))
            {
                // The follow-up counts in wall-clock time or the default working week: the
                // rule has no site calendar (docs/social-needs.md).
                let d = chain.open(&BusinessCalendar::default(), write.now);
                if let Some(exts) = v["extension"].as_array_mut() {
                    for e in exts.iter_mut() {
                        if e["url"] == coproduce_store::deadlines::ESCALATION {
                            *e = chain_ext.clone();
                        }
                    }
                }
                set_task_deadline(&mut v, &d);
            }
        }
        v["lastModified"] = json!(coproduce_store::Stored::instant(write.now));
        Ok(parse_resource_value(v)?)
    }
}

/// The questionnaire of the patient's word on a referral: one item, `helped`.
pub const HELPED: &str = "https://coproduce.health/fhir/Questionnaire/social-referral-helped";
/// Its answers.
pub const HELPED_CODES: &str = "https://coproduce.health/fhir/CodeSystem/social-referral-helped";

impl Social {
    /// The patient says whether a referral helped (a later answer replaces the earlier one):
    /// a QuestionnaireResponse based on the referral's ServiceRequest, kept beside the
    /// organisation's ending.
    pub async fn helped(
        &self,
        caller: &Caller,
        patient: &str,
        task: &str,
        helped: Helped,
    ) -> Result<()> {
        if !coproduce_core::social::says_helped(&caller.actor.who, patient) {
            return Err(CareError::input(
                "social-helped-not-yours",
                "only the patient says whether a referral helped",
            ));
        }
        let t = self.api.read(caller, "Task", task).await?;
        let v = t.json()?;
        let status = Status::parse(v["status"].as_str().unwrap_or_default());
        if t.patient_id.as_deref() != Some(patient) || !is_referral(&v) {
            return Err(AppError::NotFound(format!("Task/{task}")).into());
        }
        if !status.is_some_and(referral::asks_patient) {
            return Err(CareError::input(
                "social-helped-too-soon",
                "the organisation has not taken this referral on yet",
            ));
        }
        let sr = v["focus"]["reference"].clone();
        let id = screening::derived_id(task, "helped");
        let mut qr = json!({
            "resourceType": "QuestionnaireResponse",
            "id": id,
            "questionnaire": HELPED,
            "status": "completed",
            "basedOn": [{"reference": sr}],
            "subject": {"reference": format!("Patient/{patient}")},
            "authored": coproduce_store::Stored::instant(self.clock.now()),
            "item": [{"linkId": "helped", "text": "Did it help?", "answer": [{"valueCoding": {"system": HELPED_CODES, "code": helped.as_str()}}]}],
        });
        if let Some(r) = &caller.fhir_ref {
            qr["author"] = json!({"reference": r});
        }
        screening::label(&mut qr);
        let body = serde_json::to_vec(&qr).map_err(|e| AppError::Internal(e.to_string()))?;
        self.api
            .update(caller, "QuestionnaireResponse", &id, &body, None)
            .await?;
        Ok(())
    }

    /// What the patient said about each referral (Task id, answer).
    pub async fn helped_answers(
        &self,
        caller: &Caller,
        patient: &str,
        tasks: &[String],
    ) -> Result<Vec<(String, Helped)>> {
        let ids: Vec<String> = tasks
            .iter()
            .map(|t| screening::derived_id(t, "helped"))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self
            .api
            .search_all(
                caller,
                "QuestionnaireResponse",
                &[
                    ("subject".into(), format!("Patient/{patient}")),
                    ("_id".into(), ids.join(",")),
                ],
            )
            .await?;
        let mut out = Vec::new();
        for s in found {
            let v = s.json()?;
            let Some(h) = v["item"][0]["answer"][0]["valueCoding"]["code"]
                .as_str()
                .and_then(Helped::parse)
            else {
                continue;
            };
            if let Some(task) = tasks
                .iter()
                .find(|t| screening::derived_id(t, "helped") == s.id)
            {
                out.push((task.clone(), h));
            }
        }
        Ok(out)
    }
}

/// The social-needs part of a community health worker's or social worker's worklist, across
/// the patients they reach: needs waiting for the patient's word, and every referral (open
/// ones first, overdue first, then escalated ones, then by age; then the closed ones, newest first).
#[derive(Debug, Clone, Default)]
pub struct Worklist {
    /// (patient, patient's name, need)
    pub waiting: Vec<(String, String, Need)>,
    /// (patient, patient's name, referral)
    pub referrals: Vec<(String, String, Referral)>,
}

/// The most closed referrals the worklist lists.
const CLOSED_SHOWN: usize = 50;

impl Social {
    pub async fn worklist(&self, caller: &Caller) -> Result<Worklist> {
        let conditions = self
            .api
            .search_all(caller, "Condition", &[("category".into(), "sdoh".into())])
            .await?;
        let mut w = Worklist::default();
        let mut patients: Vec<String> = Vec::new();
        let mut chosen = std::collections::HashSet::new();
        for c in self
            .api
            .search_all(
                caller,
                "Consent",
                &[(
                    "_security".into(),
                    format!("{SENSITIVITY_SYSTEM}|{SOCIAL_NEEDS_LABEL}"),
                )],
            )
            .await?
        {
            let v = c.json()?;
            for d in v["provision"]["data"].as_array().into_iter().flatten() {
                if let Some(id) = d["reference"]["reference"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("Condition/"))
                {
                    chosen.insert(id.to_string());
                }
            }
        }
        for c in &conditions {
            let Some(patient) = c.patient_id.clone() else {
                continue;
            };
            if chosen.contains(&c.id) {
                continue;
            }
            let v = c.json()?;
            let verification = v["verificationStatus"]["coding"][0]["code"]
                .as_str()
                .unwrap_or("unconfirmed");
            if matches!(verification, "refuted" | "entered-in-error") {
                continue;
            }
            let domain = need_domain(&v);
            patients.push(patient.clone());
            w.waiting.push((
                patient,
                String::new(),
                Need {
                    id: c.id.clone(),
                    domain,
                    text: v["code"]["text"]
                        .as_str()
                        .unwrap_or("A social need")
                        .to_string(),
                    verification: verification.to_string(),
                    recorded: v["recordedDate"].as_str().map(str::to_string),
                    choice: None,
                },
            ));
        }
        let tasks = self
            .api
            .search_all(caller, "Task", &[("code".into(), "fulfill".into())])
            .await?;
        let now = self.clock.now();
        let mut open = Vec::new();
        let mut closed = Vec::new();
        for t in &tasks {
            let (Some(patient), Some(r)) = (t.patient_id.clone(), Referral::of(t)) else {
                continue;
            };
            patients.push(patient.clone());
            if r.status.is_final() {
                closed.push((patient, String::new(), r));
            } else {
                open.push((patient, String::new(), r));
            }
        }
        open.sort_by_key(|(_, _, r)| {
            (
                r.due.is_none_or(|d| d > now),
                r.escalated_to.is_none(),
                r.authored,
            )
        });
        closed.sort_by_key(|(_, _, r)| std::cmp::Reverse(r.authored));
        closed.truncate(CLOSED_SHOWN);
        w.referrals = open.into_iter().chain(closed).collect();
        patients.sort();
        patients.dedup();
        let names = self.names(caller, &patients).await?;
        let name = |p: &str| {
            names
                .iter()
                .find(|(id, _)| id == p)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        };
        for row in &mut w.waiting {
            row.1 = name(&row.0);
        }
        for row in &mut w.referrals {
            row.1 = name(&row.0);
        }
        Ok(w)
    }

    /// Patients' names, for the rows that name them.
    async fn names(&self, caller: &Caller, patients: &[String]) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in patients.chunks(200) {
            for p in self
                .api
                .search_all(caller, "Patient", &[("_id".into(), chunk.join(","))])
                .await?
            {
                out.push((p.id.clone(), crate::vocabulary::person_name(&p.json()?)));
            }
        }
        Ok(out)
    }
}
