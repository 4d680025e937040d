//! The rescue pack (CLINICAL.md section 3) as FHIR: each pack is a CarePlan whose
//! extensions are its recorded events (who, when, what), with a MedicationRequest and a
//! MedicationDispense per drug (the expiry on the dispensed Medication's batch), a team Task
//! for each deadline (its escalation chain on the Task), and a Communication for the start,
//! the check-in and the team's contact.
//!
//! [`Rescue::record`] loads a pack, lets `core` decide ([`Pack::apply`]), and writes the
//! event, what it sets off and the notifications in one transaction. The person's own change
//! is written with their rights; the tasks and messages that follow are written by the
//! system on the team's behalf, and audited as such.

use crate::accounts::Caller;
use crate::care::{CareError, PLAN_CATEGORY, ROLES, TASKS, role_of};
use crate::error::AppError;
use crate::fhir_api::FhirApi;
use crate::notify::Notifier;
use crate::protocol::ProtocolDef;
use coproduce_core::Clock;
use coproduce_core::access::Role;
use coproduce_core::calendar::{BusinessCalendar, Within};
use coproduce_core::careplan::is_diabetes;
use coproduce_core::deadline::{Deadline, Escalation, Standing, Step};
use coproduce_core::from_unix_millis;
use coproduce_core::rescue::{
    By, CheckIn, Context, Effect, Event, Item, Notice, Outcome, Pack, Recorded, Stage, TaskKind,
};
use coproduce_fhir::primitives::date_range_millis;
use coproduce_store::Stored;
use coproduce_store::deadlines::{ESCALATION, ESCALATION_LEVEL};
use serde_json::{Value, json};
use std::sync::Arc;
use time::{Date, OffsetDateTime};

pub const PROTOCOL_EXT: &str = "https://coproduce.health/fhir/StructureDefinition/protocol";
pub const EVENT_EXT: &str = "https://coproduce.health/fhir/StructureDefinition/rescue-pack-event";
pub const DRUGS: &str = "https://coproduce.health/fhir/CodeSystem/rescue-pack-drug";
pub const COMMUNICATION: &str = "https://coproduce.health/fhir/CodeSystem/communication";
const PACK_CATEGORY: &str = "rescue-pack";
const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

type Result<T> = std::result::Result<T, CareError>;

fn instant(t: OffsetDateTime) -> String {
    Stored::instant(t)
}

fn time_of(v: &Value) -> Option<OffsetDateTime> {
    date_range_millis(v.as_str()?).map(|(low, _)| from_unix_millis(low))
}

fn date_of(v: &Value) -> Option<Date> {
    Date::parse(v.as_str()?, DATE).ok()
}

fn fmt_date(d: Date) -> String {
    d.format(DATE).unwrap_or_default()
}

fn refused(e: coproduce_core::rescue::Refused) -> CareError {
    CareError::Input {
        key: e.key,
        english: e.reason,
        args: Vec::new(),
    }
}

fn reference_or_display(who: &str) -> Value {
    let is_ref = who.contains('/') && !who.contains(':');
    if is_ref {
        json!({"reference": who})
    } else {
        json!({"display": who})
    }
}

fn who_of(v: &Value) -> String {
    v["reference"]
        .as_str()
        .or(v["display"].as_str())
        .unwrap_or("")
        .to_string()
}

fn sub(url: &str, key: &str, value: Value) -> Value {
    let mut o = json!({ "url": url });
    o[key] = value;
    o
}

/// An event as the complex extension that records it on the pack's CarePlan.
pub fn event_extension(r: &Recorded) -> Value {
    let mut parts = vec![
        sub("kind", "valueCode", json!(r.event.kind())),
        sub("at", "valueDateTime", json!(instant(r.at))),
        sub("role", "valueCode", json!(r.by.role.as_str())),
        sub("by", "valueReference", reference_or_display(&r.by.who)),
    ];
    let items = |items: &[Item]| -> Vec<Value> {
        items
            .iter()
            .map(|i| {
                json!({"url": "item", "extension": [
                    sub("drug", "valueCode", json!(i.drug)),
                    sub("expires", "valueDate", json!(fmt_date(i.expires))),
                ]})
            })
            .collect()
    };
    match &r.event {
        Event::Eligible { reason } => parts.push(sub("reason", "valueString", json!(reason))),
        Event::Dispensed { items: i } | Event::Replaced { items: i } => parts.extend(items(i)),
        Event::Started {
            symptoms,
            since,
            taken,
        } => {
            parts.extend(
                symptoms
                    .iter()
                    .map(|s| sub("symptom", "valueCode", json!(s))),
            );
            parts.push(sub("since", "valueDateTime", json!(instant(*since))));
            parts.extend(taken.iter().map(|d| sub("taken", "valueCode", json!(d))));
        }
        Event::Contacted { note } if !note.trim().is_empty() => {
            parts.push(sub("note", "valueString", json!(note)))
        }
        Event::CheckedIn { answer } => {
            parts.push(sub("answer", "valueCode", json!(answer.as_str())))
        }
        Event::Outcome { outcome } => {
            parts.push(sub("outcome", "valueCode", json!(outcome.as_str())))
        }
        Event::TaughtBack | Event::Expired | Event::Contacted { .. } => {}
    }
    json!({"url": EVENT_EXT, "extension": parts})
}

/// Reads an event back from its extension.
pub fn event_of(ext: &Value) -> Option<Recorded> {
    let parts = ext["extension"].as_array()?;
    let one = |url: &str| parts.iter().find(|p| p["url"] == url);
    let all = |url: &'static str| parts.iter().filter(move |p| p["url"] == url);
    let code = |url: &str| one(url).and_then(|p| p["valueCode"].as_str());
    let items = || -> Option<Vec<Item>> {
        all("item")
            .map(|i| {
                let ps = i["extension"].as_array()?;
                let drug = ps.iter().find(|p| p["url"] == "drug")?["valueCode"].as_str()?;
                let expires = date_of(&ps.iter().find(|p| p["url"] == "expires")?["valueDate"])?;
                Some(Item {
                    drug: drug.to_string(),
                    expires,
                })
            })
            .collect()
    };
    let event = match code("kind")? {
        "eligible" => Event::Eligible {
            reason: one("reason")?["valueString"].as_str()?.to_string(),
        },
        "taught-back" => Event::TaughtBack,
        "dispensed" => Event::Dispensed { items: items()? },
        "replaced" => Event::Replaced { items: items()? },
        "started" => Event::Started {
            symptoms: all("symptom")
                .filter_map(|p| p["valueCode"].as_str().map(str::to_string))
                .collect(),
            since: time_of(&one("since")?["valueDateTime"])?,
            taken: all("taken")
                .filter_map(|p| p["valueCode"].as_str().map(str::to_string))
                .collect(),
        },
        "contacted" => Event::Contacted {
            note: one("note")
                .and_then(|p| p["valueString"].as_str())
                .unwrap_or("")
                .to_string(),
        },
        "checked-in" => Event::CheckedIn {
            answer: CheckIn::parse(code("answer")?)?,
        },
        "outcome" => Event::Outcome {
            outcome: Outcome::parse(code("outcome")?)?,
        },
        "expired" => Event::Expired,
        _ => return None,
    };
    Some(Recorded {
        event,
        by: By {
            role: Role::parse(code("role")?)?,
            who: who_of(&one("by")?["valueReference"]),
        },
        at: time_of(&one("at")?["valueDateTime"])?,
    })
}

/// A team deadline as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineView {
    pub task_id: String,
    pub version: i64,
    pub kind: TaskKind,
    pub deadline: Deadline,
    pub standing: Standing,
    /// Still open (requested), or done.
    pub open: bool,
    pub closed_at: Option<OffsetDateTime>,
}

/// A pack and its deadlines.
#[derive(Debug, Clone)]
pub struct PackView {
    pub id: String,
    pub version: i64,
    pub patient: String,
    pub patient_name: String,
    pub pack: Pack,
    pub stage: Stage,
    pub deadlines: Vec<DeadlineView>,
}

impl PackView {
    pub fn open_deadlines(&self) -> impl Iterator<Item = &DeadlineView> {
        self.deadlines.iter().filter(|d| d.open)
    }

    pub fn deadline(&self, kind: TaskKind) -> Option<&DeadlineView> {
        self.deadlines.iter().find(|d| d.kind == kind)
    }

    /// Whether the check-in question is put to the patient now.
    pub fn check_in_open(
        &self,
        opens: Within,
        cal: &BusinessCalendar,
        now: OffsetDateTime,
    ) -> bool {
        self.stage == Stage::Started
            && self.pack.check_in().is_none()
            && self
                .pack
                .started_at()
                .is_some_and(|s| opens.due(cal, s) <= now || self.pack.contact().is_some())
    }

    /// Until when the patient's glucose is watched (a start with diabetes), if it is.
    pub fn glucose_until(&self, days: i64) -> Option<OffsetDateTime> {
        self.pack
            .started_at()
            .map(|s| s + time::Duration::days(days))
    }
}

/// The escalation chain of a Task as its extension.
pub fn escalation_extension(chain: &Escalation) -> Value {
    json!({"url": ESCALATION, "extension": chain.steps().iter().map(|s| json!({
        "url": "step",
        "extension": [
            sub("role", "valueCode", json!(s.role.as_str())),
            sub("within", "valueString", json!(s.within.to_string())),
        ],
    })).collect::<Vec<_>>()})
}

/// Reads a Task's chain and where it stands.
pub fn task_deadline(task: &Value) -> Option<(Escalation, Deadline)> {
    let exts = task["extension"].as_array()?;
    let chain = exts.iter().find(|e| e["url"] == ESCALATION)?;
    let steps = chain["extension"]
        .as_array()?
        .iter()
        .map(|s| {
            let ps = s["extension"].as_array()?;
            let role = Role::parse(ps.iter().find(|p| p["url"] == "role")?["valueCode"].as_str()?)?;
            let within =
                Within::parse(ps.iter().find(|p| p["url"] == "within")?["valueString"].as_str()?)
                    .ok()?;
            Some(Step { role, within })
        })
        .collect::<Option<Vec<_>>>()?;
    let chain = Escalation::new(steps).ok()?;
    let level = exts
        .iter()
        .find(|e| e["url"] == ESCALATION_LEVEL)
        .and_then(|e| e["valueInteger"].as_i64())
        .unwrap_or(0);
    let level = usize::try_from(level).ok()?;
    let role = chain.steps().get(level)?.role;
    let due = time_of(&task["restriction"]["period"]["end"])?;
    Some((chain, Deadline { level, role, due }))
}

/// Sets a Task's step in its chain: the level, the role that owns it and the due time.
pub fn set_task_deadline(task: &mut Value, d: &Deadline) {
    if let Some(exts) = task["extension"].as_array_mut() {
        exts.retain(|e| e["url"] != ESCALATION_LEVEL);
        exts.push(json!({"url": ESCALATION_LEVEL, "valueInteger": d.level}));
    }
    task["performerType"] = json!([{"coding": [{"system": ROLES, "code": d.role.as_str()}]}]);
    task["restriction"] = json!({"period": {"end": instant(d.due)}});
}

fn task_english(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Contact => "Contact the patient after a rescue-pack start",
        TaskKind::CheckIn => "Rescue-pack check-in due from the patient",
        TaskKind::NotBetter => "Same-day follow-up: not better after the rescue pack",
        TaskKind::Outcome => "Record the rescue-pack episode's outcome",
        TaskKind::Replacement => "Issue a replacement rescue pack",
    }
}

/// The rescue-pack use-cases.
#[derive(Clone)]
pub struct Rescue {
    api: FhirApi,
    clock: Arc<dyn Clock>,
    pub protocol: Arc<ProtocolDef>,
    pub calendar: Arc<BusinessCalendar>,
    pub notifier: Notifier,
}

impl std::fmt::Debug for Rescue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rescue")
            .field("protocol", &self.protocol.rules.key)
            .finish_non_exhaustive()
    }
}

fn system() -> Caller {
    Caller::system("coproduce:rescue-pack")
}

impl Rescue {
    pub fn new(
        api: FhirApi,
        clock: Arc<dyn Clock>,
        protocol: ProtocolDef,
        calendar: BusinessCalendar,
        notifier: Notifier,
    ) -> Self {
        Rescue {
            api,
            clock,
            protocol: Arc::new(protocol),
            calendar: Arc::new(calendar),
            notifier,
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn view(&self, stored: &Stored, tasks: &[Stored], name: &str) -> Result<PackView> {
        let v = stored.json().map_err(AppError::from)?;
        let events: Vec<Recorded> = v["extension"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["url"] == EVENT_EXT)
                    .filter_map(event_of)
                    .collect()
            })
            .unwrap_or_default();
        let pack = Pack::from_events(&self.protocol.rules, events).map_err(|e| {
            AppError::Internal(format!(
                "CarePlan/{} holds an impossible history: {e}",
                stored.id
            ))
        })?;
        let now = self.now();
        let focus = format!("CarePlan/{}", stored.id);
        let mut deadlines = Vec::new();
        for t in tasks {
            let Ok(tv) = t.json() else { continue };
            if tv["focus"]["reference"] != focus.as_str() {
                continue;
            }
            let Some(kind) = tv["code"]["coding"][0]["code"]
                .as_str()
                .and_then(TaskKind::parse)
            else {
                continue;
            };
            let Some((_, deadline)) = task_deadline(&tv) else {
                continue;
            };
            let open = tv["status"] == "requested";
            deadlines.push(DeadlineView {
                task_id: t.id.clone(),
                version: t.version_id,
                kind,
                standing: Standing::of(&deadline, now),
                deadline,
                open,
                closed_at: time_of(&tv["executionPeriod"]["end"]),
            });
        }
        deadlines.sort_by_key(|d| (d.kind, d.deadline.due));
        Ok(PackView {
            id: stored.id.clone(),
            version: stored.version_id,
            patient: stored.patient_id.clone().unwrap_or_default(),
            patient_name: name.to_string(),
            stage: pack.stage(),
            pack,
            deadlines,
        })
    }

    async fn tasks_of(&self, caller: &Caller, patient: &str) -> Result<Vec<Stored>> {
        Ok(self
            .api
            .search_all(
                caller,
                "Task",
                &[
                    ("subject".to_string(), format!("Patient/{patient}")),
                    ("code".to_string(), task_codes()),
                ],
            )
            .await?)
    }

    /// The CarePlans of one of our categories (rescue pack, action plan), with more search
    /// parameters.
    async fn plans(
        &self,
        caller: &Caller,
        category: &str,
        more: &[(&str, String)],
    ) -> Result<Vec<Stored>> {
        let mut params = vec![(
            "category".to_string(),
            format!("{PLAN_CATEGORY}|{category}"),
        )];
        params.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
        Ok(self.api.search_all(caller, "CarePlan", &params).await?)
    }

    /// A patient's packs, newest first.
    pub async fn packs(&self, caller: &Caller, patient: &str) -> Result<Vec<PackView>> {
        let plans = self
            .plans(
                caller,
                PACK_CATEGORY,
                &[("subject", format!("Patient/{patient}"))],
            )
            .await?;
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        let tasks = self.tasks_of(caller, patient).await?;
        let mut out = plans
            .iter()
            .map(|p| self.view(p, &tasks, ""))
            .collect::<Result<Vec<_>>>()?;
        // Newest first, by each pack's latest event (a successor begins with copies of its
        // predecessor's eligibility, so its first event says nothing).
        out.sort_by_key(|p| std::cmp::Reverse(p.pack.events.last().map(|e| e.at)));
        Ok(out)
    }

    /// The pack in the patient's hands (not yet replaced), if any.
    pub async fn current(&self, caller: &Caller, patient: &str) -> Result<Option<PackView>> {
        Ok(self
            .packs(caller, patient)
            .await?
            .into_iter()
            .find(|p| p.pack.replacement().is_none()))
    }

    /// The pack to act on now: one whose episode is still open (started, outcome not yet
    /// recorded, even if a replacement was already issued), else the one in hand.
    pub async fn active(&self, caller: &Caller, patient: &str) -> Result<Option<PackView>> {
        let packs = self.packs(caller, patient).await?;
        let open = packs.iter().position(|p| p.stage == Stage::Started);
        let hand = packs.iter().position(|p| p.pack.replacement().is_none());
        Ok(open.or(hand).map(|i| packs[i].clone()))
    }

    async fn has_diabetes(&self, patient: &str) -> Result<bool> {
        let found = self
            .api
            .search_all(
                &system(),
                "Condition",
                &[("subject".to_string(), format!("Patient/{patient}"))],
            )
            .await?;
        Ok(found.iter().filter_map(|s| s.json().ok()).any(|c| {
            c["clinicalStatus"]["coding"][0]["code"] != "resolved"
                && c["clinicalStatus"]["coding"][0]["code"] != "inactive"
                && c["code"]["coding"].as_array().is_some_and(|cs| {
                    cs.iter().any(|x| {
                        is_diabetes(
                            x["system"].as_str().unwrap_or(""),
                            x["code"].as_str().unwrap_or(""),
                        )
                    })
                })
        }))
    }

    fn by(caller: &Caller) -> Result<By> {
        let role = match &caller.actor.who {
            coproduce_core::access::Who::System => Role::Admin,
            _ => role_of(caller).ok_or_else(|| {
                CareError::App(AppError::Forbidden(
                    "only the patient, their family and their care team record a rescue pack"
                        .into(),
                ))
            })?,
        };
        Ok(By {
            role,
            who: caller
                .fhir_ref
                .clone()
                .unwrap_or_else(|| caller.label.clone()),
        })
    }

    /// Records an event on a patient's pack (`pack` None: a new pack, for eligibility), with
    /// what it sets off, in one transaction. Returns the pack's id.
    pub async fn record(
        &self,
        caller: &Caller,
        patient: &str,
        pack: Option<&str>,
        event: Event,
    ) -> Result<String> {
        let by = Self::by(caller)?;
        let now = self.now();
        // The pack, read with the caller's rights (so a stranger learns nothing).
        let (id, version, current, mut plan) = match pack {
            Some(id) => {
                let stored = self.api.read(caller, "CarePlan", id).await?;
                if stored.patient_id.as_deref() != Some(patient) {
                    return Err(CareError::App(AppError::NotFound(format!(
                        "CarePlan/{id} in the chart of Patient/{patient}"
                    ))));
                }
                let tasks = self.tasks_of(&system(), patient).await?;
                let view = self.view(&stored, &tasks, "")?;
                let plan = stored.json().map_err(AppError::from)?;
                (id.to_string(), Some(stored.version_id), Some(view), plan)
            }
            None => {
                if !matches!(event, Event::Eligible { .. }) {
                    return Err(CareError::App(AppError::NotFound(
                        "a rescue pack for this patient".into(),
                    )));
                }
                if let Some(p) = self.current(caller, patient).await? {
                    return Err(CareError::Input {
                        key: "eligibility-recorded",
                        english: format!(
                            "this patient already has a rescue pack (CarePlan/{})",
                            p.id
                        ),
                        args: Vec::new(),
                    });
                }
                let id = uuid::Uuid::new_v4().to_string();
                let plan = json!({
                    "resourceType": "CarePlan",
                    "id": id,
                    "extension": [{"url": PROTOCOL_EXT, "valueString": self.protocol.rules.key}],
                    "status": "active",
                    "intent": "plan",
                    "category": [{"coding": [{"system": PLAN_CATEGORY, "code": PACK_CATEGORY}]}],
                    "title": self.protocol.pack.get("en"),
                    "subject": {"reference": format!("Patient/{patient}")},
                    "created": instant(now),
                });
                (id, None, None, plan)
            }
        };
        let state = current.as_ref().map(|c| c.pack.clone()).unwrap_or_default();
        let ctx = Context {
            has_diabetes: matches!(event, Event::Started { .. })
                && self.has_diabetes(patient).await?,
        };
        let recorded = Recorded {
            event,
            by: by.clone(),
            at: now,
        };
        let (next, effects) = state
            .apply(&self.protocol.rules, &self.calendar, ctx, recorded.clone())
            .map_err(refused)?;

        // The person's own change: the event on the pack.
        if let Some(exts) = plan["extension"].as_array_mut() {
            exts.push(event_extension(&recorded));
        }
        let finished = next.replacement().is_some()
            && (next.started_at().is_none() || next.outcome().is_some());
        plan["status"] = json!(if finished { "completed" } else { "active" });
        if let Some(o) = plan.as_object_mut() {
            let empty = o
                .get_mut("meta")
                .and_then(Value::as_object_mut)
                .is_some_and(|meta| {
                    meta.remove("versionId");
                    meta.remove("lastUpdated");
                    meta.is_empty()
                });
            if empty {
                o.remove("meta");
            }
        }
        let subject = format!("Patient/{patient}");
        let focus = format!("CarePlan/{id}");
        let mut mine = vec![put("CarePlan", &id, plan, version)];
        let mut theirs: Vec<Value> = Vec::new();
        match &recorded.event {
            Event::Dispensed { items } | Event::Replaced { items } => {
                let prescriber = next
                    .eligibility()
                    .map(|(_, r)| r.by.who.clone())
                    .unwrap_or_else(|| by.who.clone());
                let target = if matches!(recorded.event, Event::Replaced { .. }) {
                    // The new pack: a successor CarePlan that begins ready.
                    let new_id = uuid::Uuid::new_v4().to_string();
                    let successor = next.successor(&recorded);
                    let mut exts =
                        vec![json!({"url": PROTOCOL_EXT, "valueString": self.protocol.rules.key})];
                    exts.extend(successor.events.iter().map(event_extension));
                    mine.push(put(
                        "CarePlan",
                        &new_id,
                        json!({
                            "resourceType": "CarePlan",
                            "id": new_id,
                            "extension": exts,
                            "status": "active",
                            "intent": "plan",
                            "category": [{"coding": [{"system": PLAN_CATEGORY, "code": PACK_CATEGORY}]}],
                            "title": self.protocol.pack.get("en"),
                            "subject": {"reference": subject},
                            "created": instant(now),
                            "replaces": [{"reference": focus}],
                        }),
                        None,
                    ));
                    format!("CarePlan/{new_id}")
                } else {
                    focus.clone()
                };
                for item in items {
                    let (mr, md) =
                        self.medication(&subject, &target, item, &prescriber, &by.who, now);
                    mine.push(mr);
                    mine.push(md);
                }
            }
            _ => {}
        }
        if let Some(c) = communication(&self.protocol, &subject, &focus, &recorded) {
            theirs.push(c);
        }
        let mut notices = Vec::new();
        for e in &effects {
            match e {
                Effect::Open(kind, deadline) => {
                    let chain = self.chain(*kind);
                    theirs.push(task(*kind, &chain, deadline, &subject, &focus, &id, now));
                }
                Effect::Close(kind) => {
                    if let Some(d) = current
                        .as_ref()
                        .and_then(|c| c.deadlines.iter().find(|d| d.kind == *kind && d.open))
                    {
                        let stored = self.api.read(&system(), "Task", &d.task_id).await?;
                        let mut t = stored.json().map_err(AppError::from)?;
                        if let Some(o) = t.as_object_mut() {
                            o.remove("meta");
                        }
                        t["status"] = json!("completed");
                        t["executionPeriod"] = json!({"end": instant(now)});
                        t["owner"] = reference_or_display(&by.who);
                        t["lastModified"] = json!(instant(now));
                        theirs.push(put("Task", &d.task_id, t, Some(stored.version_id)));
                    }
                }
                Effect::TellPatient(n) => {
                    notices.extend(
                        self.notifier
                            .to_patient(
                                patient,
                                &by.who,
                                n.as_str(),
                                self.params(*n, &next, &effects),
                            )
                            .await?,
                    );
                }
                Effect::TellTeam(n) => {
                    let role = self.team_role(*n);
                    notices.extend(self.notifier.to_team(
                        patient,
                        role,
                        n.as_str(),
                        self.params(*n, &next, &effects),
                        now,
                    ));
                }
                Effect::WatchGlucose { .. } => {}
            }
        }
        let sys = system();
        let entries: Vec<(&Caller, Value)> = mine
            .into_iter()
            .map(|e| (caller, e))
            .chain(theirs.into_iter().map(|e| (&sys, e)))
            .collect();
        self.api.transaction_with(entries, &notices, None).await?;
        Ok(id)
    }

    fn chain(&self, kind: TaskKind) -> Escalation {
        let p = &self.protocol.rules;
        match kind {
            TaskKind::Contact => p.contact.clone(),
            TaskKind::CheckIn => p.check_in.clone(),
            TaskKind::NotBetter => p.not_better.clone(),
            TaskKind::Outcome => p.outcome.clone(),
            TaskKind::Replacement => p.replacement.clone(),
        }
    }

    /// Who on the team hears of a notice first: the first owner of the deadline it opens.
    fn team_role(&self, n: Notice) -> Role {
        let p = &self.protocol.rules;
        let chain = match n {
            Notice::NotBetter => &p.not_better,
            Notice::Expired => &p.replacement,
            _ => &p.contact,
        };
        chain.steps()[0].role
    }

    fn params(&self, n: Notice, pack: &Pack, effects: &[Effect]) -> Value {
        let contact_due = effects.iter().find_map(|e| match e {
            Effect::Open(TaskKind::Contact, d) => Some(instant(d.due)),
            _ => None,
        });
        let mut p = json!({ "notice": n.as_str() });
        if let Some(d) = contact_due {
            p["contact_due"] = json!(d);
        }
        if let Some(until) = effects.iter().find_map(|e| match e {
            Effect::WatchGlucose { until } => Some(instant(*until)),
            _ => None,
        }) {
            p["glucose_until"] = json!(until);
        }
        if let Some((answer, _)) = pack.check_in() {
            p["answer"] = json!(answer.as_str());
        }
        p
    }

    fn medication(
        &self,
        subject: &str,
        plan: &str,
        item: &Item,
        prescriber: &str,
        dispenser: &str,
        now: OffsetDateTime,
    ) -> (Value, Value) {
        let text = self
            .protocol
            .drug(&item.drug)
            .map_or(item.drug.as_str(), |d| d.text.get("en"))
            .to_string();
        let days = self.protocol.drug(&item.drug).map_or(5, |d| d.days);
        let code = json!({"coding": [{"system": DRUGS, "code": item.drug}], "text": text});
        let mr_id = uuid::Uuid::new_v4().to_string();
        let md_id = uuid::Uuid::new_v4().to_string();
        let supply = json!({"value": days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"});
        let mr = json!({
            "resourceType": "MedicationRequest",
            "id": mr_id,
            "status": "active",
            "intent": "order",
            "courseOfTherapyType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "code": "acute"}]},
            "medicationCodeableConcept": code,
            "subject": {"reference": subject},
            "authoredOn": instant(now),
            "requester": reference_or_display(prescriber),
            "basedOn": [{"reference": plan}],
            "dosageInstruction": [{"text": text, "asNeededBoolean": true}],
            "dispenseRequest": {"expectedSupplyDuration": supply},
        });
        let md = json!({
            "resourceType": "MedicationDispense",
            "id": md_id,
            "contained": [{
                "resourceType": "Medication",
                "id": "pack",
                "code": code,
                "batch": {"expirationDate": fmt_date(item.expires)},
            }],
            "status": "completed",
            "medicationReference": {"reference": "#pack"},
            "subject": {"reference": subject},
            "performer": [{"actor": reference_or_display(dispenser)}],
            "authorizingPrescription": [{"reference": format!("MedicationRequest/{mr_id}")}],
            "daysSupply": supply,
            "whenHandedOver": instant(now),
        });
        (
            put("MedicationRequest", &mr_id, mr, None),
            put("MedicationDispense", &md_id, md, None),
        )
    }

    /// Every open rescue-pack episode the caller can see, with its deadlines, most urgent
    /// first (for the team view).
    pub async fn open_episodes(&self, caller: &Caller) -> Result<Vec<PackView>> {
        let tasks = self
            .api
            .search_all(
                caller,
                "Task",
                &[
                    ("code".to_string(), task_codes()),
                    ("status".to_string(), "requested".to_string()),
                ],
            )
            .await?;
        let mut patients: Vec<String> = tasks.iter().filter_map(|t| t.patient_id.clone()).collect();
        patients.sort();
        patients.dedup();
        let mut out = Vec::new();
        for p in patients {
            let name = match self.api.read(caller, "Patient", &p).await {
                Ok(s) => crate::care::person_name(&s.json().map_err(AppError::from)?),
                Err(_) => p.clone(),
            };
            for mut pack in self.packs(caller, &p).await? {
                if pack.open_deadlines().next().is_some() {
                    pack.patient_name = name.clone();
                    out.push(pack);
                }
            }
        }
        out.sort_by_key(|p| p.open_deadlines().map(|d| d.deadline.due).min());
        Ok(out)
    }

    /// The glucose-watch windows of the caller's patients on an open episode: (patient, the
    /// start, the end of the steroid days). Readings of glucose in them are flagged.
    pub async fn steroid_windows(
        &self,
        caller: &Caller,
    ) -> Result<Vec<(String, OffsetDateTime, OffsetDateTime)>> {
        let days = self.protocol.rules.glucose_days;
        if days <= 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .open_episodes(caller)
            .await?
            .iter()
            .filter_map(|e| {
                Some((
                    e.patient.clone(),
                    e.pack.started_at()?,
                    e.glucose_until(days)?,
                ))
            })
            .collect())
    }

    /// Records `Expired` on every unused pack past its expiry (the watcher calls this).
    pub async fn expire_packs(&self) -> Result<usize> {
        let sys = system();
        let today = self.now().date();
        let plans = self
            .plans(&sys, PACK_CATEGORY, &[("status", "active".into())])
            .await?;
        let mut n = 0;
        for s in plans {
            let view = self.view(&s, &[], "")?;
            if view.stage == Stage::Ready && view.pack.is_expired_on(today) {
                let patient = s.patient_id.clone().unwrap_or_default();
                self.record(&sys, &patient, Some(&s.id), Event::Expired)
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The codes of every rescue-pack Task, as one search value.
fn task_codes() -> String {
    TaskKind::ALL
        .iter()
        .map(|k| format!("{TASKS}|{}", k.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// A transaction entry that writes `resource` with its id (create or update).
fn put(rt: &str, id: &str, resource: Value, version: Option<i64>) -> Value {
    let mut request = json!({"method": "PUT", "url": format!("{rt}/{id}")});
    if let Some(v) = version {
        request["ifMatch"] = json!(format!("W/\"{v}\""));
    }
    json!({"resource": resource, "request": request})
}

fn task(
    kind: TaskKind,
    chain: &Escalation,
    d: &Deadline,
    subject: &str,
    focus: &str,
    pack: &str,
    now: OffsetDateTime,
) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    let mut t = json!({
        "resourceType": "Task",
        "id": id,
        "extension": [escalation_extension(chain)],
        "identifier": [{"system": TASKS, "value": format!("{}/{pack}", kind.as_str())}],
        "status": "requested",
        "intent": "order",
        "priority": if matches!(kind, TaskKind::Contact | TaskKind::NotBetter) { "urgent" } else { "routine" },
        "code": {"coding": [{"system": TASKS, "code": kind.as_str(), "display": task_english(kind)}]},
        "description": task_english(kind),
        "focus": {"reference": focus},
        "for": {"reference": subject},
        "authoredOn": instant(now),
    });
    set_task_deadline(&mut t, d);
    put("Task", &id, t, None)
}

/// The record of a start, a check-in or a contact, as a Communication.
fn communication(p: &ProtocolDef, subject: &str, focus: &str, r: &Recorded) -> Option<Value> {
    let text = match &r.event {
        Event::Started {
            symptoms,
            since,
            taken,
        } => format!(
            "Started the rescue pack ({}) for: {}; symptoms since {}.",
            taken
                .iter()
                .map(|d| p.drug(d).map_or(d.as_str(), |x| x.text.get("en")))
                .collect::<Vec<_>>()
                .join("; "),
            symptoms
                .iter()
                .map(|s| p.symptom(s).map_or(s.as_str(), |x| x.text.get("en")))
                .collect::<Vec<_>>()
                .join(", "),
            instant(*since)
        ),
        Event::CheckedIn { answer } => format!(
            "Rescue-pack check-in: {} than at the start.",
            match answer {
                CheckIn::Better => "better",
                CheckIn::Same => "the same",
                CheckIn::Worse => "worse",
            }
        ),
        Event::Contacted { note } if note.trim().is_empty() => {
            "The care team reached the patient after the rescue-pack start.".to_string()
        }
        Event::Contacted { note } => {
            format!("The care team reached the patient after the rescue-pack start: {note}")
        }
        _ => return None,
    };
    Some(put(
        "Communication",
        &uuid::Uuid::new_v4().to_string(),
        json!({
            "resourceType": "Communication",
            "status": "completed",
            "category": [{"coding": [{"system": COMMUNICATION, "code": format!("rescue-pack-{}", r.event.kind())}]}],
            "subject": {"reference": subject},
            "about": [{"reference": focus}],
            "sent": instant(r.at),
            "sender": reference_or_display(&r.by.who),
            "payload": [{"contentString": text}],
        }),
        None,
    ))
    .map(|mut e| {
        let id = e["request"]["url"]
            .as_str()
            .and_then(|u| u.strip_prefix("Communication/"))
            .unwrap_or("")
            .to_string();
        e["resource"]["id"] = json!(id);
        e
    })
}

impl Rescue {
    /// How many team deadlines were missed since `since` (Unix ms).
    pub async fn missed_since(&self, since: i64) -> Result<usize> {
        Ok(self
            .api
            .store()
            .misses_since(since)
            .await
            .map_err(AppError::from)?
            .len())
    }
}

/// The code system of an action plan's zones.
pub const ZONES: &str = "https://coproduce.health/fhir/CodeSystem/action-plan-zone";
const ACTION_PLAN: &str = "action-plan";

impl Rescue {
    /// The patient's action plan as personalised by their clinician: the CarePlan's id and
    /// version, and the personal note of each zone.
    pub async fn action_plan(
        &self,
        caller: &Caller,
        patient: &str,
    ) -> Result<Option<(String, i64, Vec<(String, String)>)>> {
        let found = self
            .plans(
                caller,
                ACTION_PLAN,
                &[
                    ("subject", format!("Patient/{patient}")),
                    ("status", "active".into()),
                ],
            )
            .await?;
        let Some(s) = found.first() else {
            return Ok(None);
        };
        let v = s.json().map_err(AppError::from)?;
        let notes = v["activity"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let d = &a["detail"];
                let zone = d["code"]["coding"]
                    .as_array()?
                    .iter()
                    .find(|c| c["system"] == ZONES)?["code"]
                    .as_str()?;
                Some((zone.to_string(), d["description"].as_str()?.to_string()))
            })
            .collect();
        Ok(Some((s.id.clone(), s.version_id, notes)))
    }

    /// Whether someone in `role` personalises the action plan: those who record eligibility.
    pub fn may_personalise(&self, role: Role) -> bool {
        self.protocol.rules.eligibility_by.contains(&role)
    }

    /// The clinician's personal note for each zone (what "usual" and "worse" mean for this
    /// patient: their usual breathing, their peak flow), kept on the patient's action plan.
    pub async fn personalise(
        &self,
        caller: &Caller,
        patient: &str,
        notes: &[(String, String)],
    ) -> Result<()> {
        let by = Self::by(caller)?;
        if !self.may_personalise(by.role) {
            return Err(CareError::Input {
                key: "personalise-by",
                english: "the action plan is personalised by the patient's clinician".into(),
                args: Vec::new(),
            });
        }
        for (zone, note) in notes {
            if !self.protocol.zones.iter().any(|z| &z.key == zone) {
                return Err(CareError::Input {
                    key: "personalise-zone",
                    english: format!("'{zone}' is not a zone of this action plan"),
                    args: Vec::new(),
                });
            }
            if note.chars().count() > 1000 {
                return Err(CareError::Input {
                    key: "personalise-long",
                    english: "a zone's note is at most 1,000 characters".into(),
                    args: Vec::new(),
                });
            }
        }
        let activity: Vec<Value> = self
            .protocol
            .zones
            .iter()
            .filter_map(|z| {
                let note = notes.iter().find(|(k, _)| *k == z.key)?.1.trim();
                (!note.is_empty()).then(|| {
                    json!({"detail": {
                        "code": {"coding": [{"system": ZONES, "code": z.key}], "text": z.heading.get("en")},
                        "status": "not-started",
                        "description": note,
                    }})
                })
            })
            .collect();
        let existing = self.action_plan(caller, patient).await?;
        let id = existing
            .as_ref()
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), |(id, _, _)| id.clone());
        let mut plan = json!({
            "resourceType": "CarePlan",
            "id": id,
            "extension": [{"url": PROTOCOL_EXT, "valueString": self.protocol.rules.key}],
            "status": "active",
            "intent": "plan",
            "category": [{"coding": [{"system": PLAN_CATEGORY, "code": ACTION_PLAN}]}],
            "title": self.protocol.title.get("en"),
            "subject": {"reference": format!("Patient/{patient}")},
            "author": reference_or_display(&by.who),
        });
        if !activity.is_empty() {
            plan["activity"] = json!(activity);
        }
        let body = plan.to_string();
        match existing {
            Some((id, version, _)) => {
                self.api
                    .update(caller, "CarePlan", &id, body.as_bytes(), Some(version))
                    .await?;
            }
            None => {
                self.api
                    .update(caller, "CarePlan", &id, body.as_bytes(), None)
                    .await?;
            }
        }
        Ok(())
    }
}
