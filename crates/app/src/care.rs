//! The shared care plan and patient readings, as FHIR: readings are Observations (performer:
//! the patient or family member), goals are Goals, activities live on one shared CarePlan
//! per patient, and the HbA1c test falling due is a team-owned Task.
//!
//! Every read and write goes through [`FhirApi`] with the caller's rights, so the access
//! policy decides and every interaction is audited. The rules (what a valid reading is,
//! whose turn it is on a goal, when an activity is due) are `core`'s.

use crate::accounts::Caller;
use crate::error::AppError;
use crate::fhir_api::FhirApi;
use coproduce_core::access::{Role, Who};
use coproduce_core::careplan::{
    ActivityFacts, Cadence, GoalAnswer, GoalRefused, GoalState, Owner, Schedule, Setting, Side,
};
use coproduce_core::readings::{
    self, DefaultTargets, HbA1cTarget, LOINC, Measure, ReadingRefused, ReadingValue, ReviewRules,
    TargetRange, UCUM, hba1c_due,
};
use coproduce_core::{Clock, from_unix_millis};
use coproduce_fhir::primitives::date_range_millis;
use coproduce_fhir::search::split_reference;
use coproduce_store::Stored;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use time::OffsetDateTime;

const BASE: &str = "https://coproduce.health/fhir";
/// Workflow tags on resources (`meta.tag`): a patient-entered reading is `unreviewed`.
pub const WORKFLOW_TAGS: &str = "https://coproduce.health/fhir/CodeSystem/workflow";
pub const ROLES: &str = "https://coproduce.health/fhir/CodeSystem/role";
pub const TASKS: &str = "https://coproduce.health/fhir/CodeSystem/task";
pub const PLAN_CATEGORY: &str = "https://coproduce.health/fhir/CodeSystem/care-plan-category";
fn ext(name: &str) -> String {
    format!("{BASE}/StructureDefinition/{name}")
}

/// Why a care action was refused: each has a message key the person's language fills in.
#[derive(Debug, thiserror::Error)]
pub enum CareError {
    #[error("{0}")]
    Reading(ReadingRefused),
    #[error("{0}")]
    Goal(GoalRefused),
    /// Something the person entered or asked for that cannot be done, with its message key.
    #[error("{english}")]
    Input {
        key: &'static str,
        english: String,
        args: Vec<(&'static str, String)>,
    },
    #[error(transparent)]
    App(#[from] AppError),
}

impl CareError {
    fn input(key: &'static str, english: impl Into<String>) -> Self {
        CareError::Input {
            key,
            english: english.into(),
            args: Vec::new(),
        }
    }

    /// The message key and its arguments, for a refusal the person can act on; None for a
    /// failure that is not theirs (the web layer maps those to a status).
    pub fn message(&self) -> Option<(&'static str, Vec<(&'static str, String)>)> {
        match self {
            CareError::Reading(r) => Some((r.key(), r.args())),
            CareError::Goal(g) => Some((g.key(), vec![])),
            CareError::Input { key, args, .. } => Some((key, args.clone())),
            CareError::App(_) => None,
        }
    }
}

impl From<ReadingRefused> for CareError {
    fn from(e: ReadingRefused) -> Self {
        CareError::Reading(e)
    }
}

impl From<GoalRefused> for CareError {
    fn from(e: GoalRefused) -> Self {
        CareError::Goal(e)
    }
}

impl From<coproduce_store::StoreError> for CareError {
    fn from(e: coproduce_store::StoreError) -> Self {
        CareError::App(e.into())
    }
}

type Result<T> = std::result::Result<T, CareError>;

/// Which role the caller acts in, and so which side of the partnership they speak for.
pub fn role_of(caller: &Caller) -> Option<Role> {
    match &caller.actor.who {
        Who::Patient { .. } => Some(Role::Patient),
        Who::Family { .. } => Some(Role::Family),
        Who::TeamMember { role, .. } => Some(*role),
        _ => None,
    }
}

fn side_of(caller: &Caller) -> Result<Side> {
    role_of(caller).and_then(Side::of).ok_or_else(|| {
        CareError::App(AppError::Forbidden(
            "only the patient, their family and their care team take part in the plan".into(),
        ))
    })
}

fn author(caller: &Caller) -> Value {
    let name = caller
        .label
        .strip_prefix("user:")
        .unwrap_or(&caller.label)
        .to_string();
    match &caller.fhir_ref {
        Some(r) => json!({"reference": r, "display": name}),
        None => json!({"display": name}),
    }
}

fn instant(t: OffsetDateTime) -> String {
    Stored::instant(t)
}

fn parse_time(v: &Value) -> Option<OffsetDateTime> {
    let (low, _) = date_range_millis(v.as_str()?)?;
    Some(from_unix_millis(low))
}

/// Drops the server-kept version fields before an update, and `meta` itself when nothing
/// else is left in it (FHIR allows no empty objects).
fn strip_version(v: &mut Value) {
    let Some(o) = v.as_object_mut() else { return };
    let empty = match o.get_mut("meta").and_then(Value::as_object_mut) {
        Some(meta) => {
            meta.remove("versionId");
            meta.remove("lastUpdated");
            if meta
                .get("tag")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                meta.remove("tag");
            }
            meta.is_empty()
        }
        None => false,
    };
    if empty {
        o.remove("meta");
    }
}

/// A record addressed through a patient's chart must be in that chart.
fn in_chart(stored: &Stored, patient: &str) -> Result<()> {
    if stored.patient_id.as_deref() == Some(patient) {
        Ok(())
    } else {
        Err(CareError::App(AppError::NotFound(format!(
            "{}/{} in the chart of Patient/{patient}",
            stored.resource_type, stored.id
        ))))
    }
}

fn params(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn content(s: &Stored) -> Result<Value> {
    Ok(s.json()?)
}

fn patient_ref(patient: &str) -> String {
    format!("Patient/{patient}")
}

/// A reading as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub id: String,
    pub version: i64,
    pub patient: String,
    pub measure: Measure,
    pub value: ReadingValue,
    pub at: OffsetDateTime,
    /// Who recorded it, as they are named.
    pub by: String,
    /// Waiting for the team to look at it.
    pub unreviewed: bool,
    pub review: Option<Review>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub by: String,
    pub at: OffsetDateTime,
    pub comment: Option<String>,
}

/// A reading as entered.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    pub measure: Measure,
    /// One value, or systolic then diastolic.
    pub values: Vec<f64>,
    /// A UCUM code or label; empty for the measure's usual unit.
    pub unit: String,
    pub at: OffsetDateTime,
}

fn quantity(measure: Measure, v: f64) -> Value {
    let u = measure.canonical_unit();
    json!({"value": readings::round_to(v, 2), "unit": u.label, "system": UCUM, "code": u.ucum})
}

/// Reads a quantity in any unit the measure takes, into the canonical unit.
fn quantity_value(measure: Measure, q: &Value) -> Option<f64> {
    let v = q["value"].as_f64()?;
    let unit = q["code"].as_str().or(q["unit"].as_str()).unwrap_or("");
    if unit.is_empty() {
        return Some(v);
    }
    measure.unit(unit).map(|u| u.to_canonical(v))
}

fn coded_measure(code: &Value) -> Option<Measure> {
    code["coding"]
        .as_array()?
        .iter()
        .find_map(|c| Measure::from_code(c["system"].as_str()?, c["code"].as_str()?))
}

fn has_code(concept: &Value, system: &str, code: &str) -> bool {
    concept["coding"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["system"] == system && c["code"] == code)
    })
}

fn is_unreviewed(v: &Value) -> bool {
    v["meta"]["tag"].as_array().is_some_and(|t| {
        t.iter()
            .any(|c| c["system"] == WORKFLOW_TAGS && c["code"] == "unreviewed")
    })
}

/// The measure an Observation records, if it is one of the readings.
pub fn reading_code(v: &Value) -> Option<Measure> {
    coded_measure(&v["code"])
}

/// Tags a reading as waiting for the team's review (`meta.tag`), keeping any other tags.
pub fn mark_unreviewed(obs: &mut Value) {
    if is_unreviewed(obs) {
        return;
    }
    let tag = json!({"system": WORKFLOW_TAGS, "code": "unreviewed", "display": "Not yet reviewed by the care team"});
    let mut tags = obs["meta"]["tag"].as_array().cloned().unwrap_or_default();
    tags.push(tag);
    obs["meta"]["tag"] = json!(tags);
}

/// The reading an Observation holds, if it is one of ours (any source: the app, a CSV
/// upload, the FHIR API, an EHR import).
pub fn reading_of(stored: &Stored) -> Option<Reading> {
    let v = stored.json().ok()?;
    let measure = coded_measure(&v["code"])?;
    let value = if measure == Measure::BloodPressure {
        let comps = v["component"].as_array()?;
        let find = |code: &str| {
            comps
                .iter()
                .find(|c| has_code(&c["code"], LOINC, code))
                .and_then(|c| quantity_value(measure, &c["valueQuantity"]))
        };
        ReadingValue::Pressure {
            systolic: find(readings::SYSTOLIC.code)?,
            diastolic: find(readings::DIASTOLIC.code)?,
        }
    } else {
        ReadingValue::Single(quantity_value(measure, &v["valueQuantity"])?)
    };
    let at = parse_time(&v["effectiveDateTime"])
        .or_else(|| parse_time(&v["effectivePeriod"]["start"]))
        .or_else(|| parse_time(&v["issued"]))
        .unwrap_or_else(|| from_unix_millis(stored.last_updated));
    let by = v["performer"][0]["display"]
        .as_str()
        .or(v["performer"][0]["reference"].as_str())
        .unwrap_or("")
        .to_string();
    let review = v["extension"].as_array().and_then(|es| {
        es.iter()
            .find(|e| e["url"] == ext("reading-review"))
            .map(|e| {
                let part = |name: &str| {
                    e["extension"]
                        .as_array()
                        .and_then(|ps| ps.iter().find(|p| p["url"] == name))
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                Review {
                    by: part("by")["valueReference"]["display"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    at: parse_time(&part("at")["valueDateTime"]).unwrap_or(at),
                    comment: part("comment")["valueString"].as_str().map(str::to_string),
                }
            })
    });
    Some(Reading {
        id: stored.id.clone(),
        version: stored.version_id,
        patient: stored.patient_id.clone().unwrap_or_default(),
        measure,
        value,
        at,
        by,
        unreviewed: is_unreviewed(&v),
        review,
    })
}

/// Why an Observation of a measure we know holds an impossible value, whichever way it came
/// (the app, a CSV file, the FHIR API): the same rule as entry by hand. A value in a unit we
/// cannot convert is left alone, since we cannot judge it.
pub fn implausible(v: &Value) -> Option<ReadingRefused> {
    if v["resourceType"] != "Observation" {
        return None;
    }
    let measure = coded_measure(&v["code"])?;
    let canonical = measure.canonical_unit().ucum;
    // A value no number holds (`1e400` is valid JSON and a valid FHIR decimal, and would be
    // read as no value at all) is refused, not let through unchecked.
    let quantities = std::iter::once(&v["valueQuantity"]).chain(
        v["component"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["valueQuantity"]),
    );
    for q in quantities {
        let raw = &q["value"];
        if !raw.is_null() && raw.as_f64().is_none_or(|x| !x.is_finite()) {
            return Some(ReadingRefused::NotANumber(raw.to_string()));
        }
    }
    let values: Vec<f64> = if measure == Measure::BloodPressure {
        let comps = v["component"].as_array()?;
        let find = |code: &str| {
            comps
                .iter()
                .find(|c| has_code(&c["code"], LOINC, code))
                .and_then(|c| quantity_value(measure, &c["valueQuantity"]))
        };
        vec![
            find(readings::SYSTOLIC.code)?,
            find(readings::DIASTOLIC.code)?,
        ]
    } else {
        vec![quantity_value(measure, &v["valueQuantity"])?]
    };
    readings::check(measure, &values, canonical).err()
}

/// A goal as both sides see it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalView {
    pub id: String,
    pub version: i64,
    pub patient: String,
    pub text: String,
    pub state: GoalState,
    pub target: Option<(Measure, TargetRange)>,
    pub hba1c_target: Option<HbA1cTarget>,
    pub proposed_by: String,
    /// The side that proposed it, from whom Goal.expressedBy names.
    pub proposed_by_side: Option<Side>,
    pub history: Vec<GoalEvent>,
}

/// One step in a goal's story.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalEvent {
    pub at: OffsetDateTime,
    pub by: String,
    /// proposed, agreed, change-suggested, declined.
    pub event: String,
    /// Their words, if any.
    pub words: Option<String>,
}

fn goal_of(stored: &Stored) -> Option<GoalView> {
    let v = stored.json().ok()?;
    let awaiting = v["extension"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["url"] == ext("goal-awaiting")))
        .and_then(|e| e["valueCode"].as_str())
        .and_then(Side::parse);
    let state = GoalState::from_fhir(v["lifecycleStatus"].as_str()?, awaiting);
    let target = v["target"].as_array().and_then(|ts| {
        ts.iter().find_map(|t| {
            let m = coded_measure(&t["measure"])?;
            let q = &t["detailQuantity"];
            let value = quantity_value(m, q)?;
            let range = match q["comparator"].as_str() {
                Some("<") | Some("<=") => TargetRange::below(value),
                Some(">") | Some(">=") => TargetRange {
                    low: Some(value),
                    high: None,
                },
                _ => return None,
            };
            Some((m, range))
        })
    });
    let hba1c_target = match target {
        Some((Measure::HbA1c, r)) => HbA1cTarget::ALL
            .into_iter()
            .find(|t| Some(t.percent()) == r.high),
        _ => None,
    };
    let history = v["note"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .map(|n| GoalEvent {
                    at: parse_time(&n["time"]).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    by: n["authorReference"]["display"]
                        .as_str()
                        .or(n["authorString"].as_str())
                        .unwrap_or("")
                        .to_string(),
                    event: n["extension"]
                        .as_array()
                        .and_then(|es| es.iter().find(|e| e["url"] == ext("goal-event")))
                        .and_then(|e| e["valueCode"].as_str())
                        .unwrap_or("note")
                        .to_string(),
                    words: n["text"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(GoalView {
        id: stored.id.clone(),
        version: stored.version_id,
        patient: stored.patient_id.clone().unwrap_or_default(),
        text: v["description"]["text"].as_str().unwrap_or("").to_string(),
        state,
        target,
        hba1c_target,
        proposed_by_side: v["expressedBy"]["reference"]
            .as_str()
            .and_then(split_reference)
            .and_then(|(t, _)| match t {
                "Patient" | "RelatedPerson" => Some(Side::Patient),
                "Practitioner" | "PractitionerRole" => Some(Side::Team),
                _ => None,
            }),
        proposed_by: v["expressedBy"]["display"]
            .as_str()
            .or(v["expressedBy"]["reference"].as_str())
            .unwrap_or("")
            .to_string(),
        history,
    })
}

fn goal_note(caller: &Caller, at: OffsetDateTime, event: &str, words: &str) -> Value {
    let mut n = json!({
        "extension": [{"url": ext("goal-event"), "valueCode": event}],
        "authorReference": author(caller),
        "time": instant(at),
    });
    // Annotation.text is required; an agreement without words says so.
    n["text"] = json!(if words.trim().is_empty() {
        "-"
    } else {
        words.trim()
    });
    n
}

fn set_awaiting(goal: &mut Value, state: GoalState) {
    goal["lifecycleStatus"] = json!(state.lifecycle_status());
    let mut exts: Vec<Value> = goal["extension"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["url"] != ext("goal-awaiting"))
        .collect();
    if let GoalState::Awaiting(side) = state {
        exts.push(json!({"url": ext("goal-awaiting"), "valueCode": side.as_str()}));
    }
    if exts.is_empty() {
        if let Some(o) = goal.as_object_mut() {
            o.remove("extension");
        }
    } else {
        goal["extension"] = json!(exts);
    }
}

fn hba1c_goal_target(t: HbA1cTarget) -> Value {
    let code = Measure::HbA1c.code();
    json!([{
        "measure": {"coding": [{"system": code.system, "code": code.code, "display": code.display}]},
        "detailQuantity": {"value": t.percent(), "comparator": "<", "unit": "%", "system": UCUM, "code": "%"},
    }])
}

/// An activity on the shared care plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityView {
    /// Its position on the plan (activities are never removed, only finished).
    pub index: usize,
    pub patient: String,
    pub text: String,
    pub setting: Setting,
    pub facts: ActivityFacts,
}

impl ActivityView {
    pub fn owner(&self) -> Owner {
        self.facts.owner
    }
}

/// A new activity.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub text: String,
    pub owner: Owner,
    pub setting: Setting,
    pub schedule: Schedule,
}

fn activities_of(plan: &Value, patient: &str) -> Vec<ActivityView> {
    let Some(list) = plan["activity"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(index, a)| {
            let ext_code = |name: &str| {
                a["extension"]
                    .as_array()?
                    .iter()
                    .find(|e| e["url"] == ext(name))
                    .cloned()
            };
            let owner = Owner::parse(ext_code("activity-owner")?["valueCode"].as_str()?)?;
            let setting = ext_code("activity-setting")
                .and_then(|e| e["valueCode"].as_str().and_then(Setting::parse))
                .unwrap_or(Setting::Outpatient);
            let added = ext_code("activity-added")
                .and_then(|e| parse_time(&e["valueDateTime"]))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let d = &a["detail"];
            let schedule = if let Some(r) = d["scheduledTiming"]["repeat"].as_object() {
                let period = r.get("period").and_then(Value::as_f64).unwrap_or(0.0) as u32;
                let unit = r.get("periodUnit").and_then(Value::as_str).unwrap_or("");
                Schedule::Every(Cadence::from_fhir(period, unit)?)
            } else {
                Schedule::By(parse_time(&d["scheduledPeriod"]["end"])?)
            };
            let last_done = a["progress"]
                .as_array()
                .and_then(|ps| ps.iter().filter_map(|p| parse_time(&p["time"])).max());
            let status = d["status"].as_str().unwrap_or("");
            Some(ActivityView {
                index,
                patient: patient.to_string(),
                text: d["description"].as_str().unwrap_or("").to_string(),
                setting,
                facts: ActivityFacts {
                    owner,
                    schedule,
                    added,
                    last_done,
                    finished: matches!(
                        status,
                        "completed" | "cancelled" | "stopped" | "entered-in-error"
                    ),
                },
            })
        })
        .collect()
}

/// A team-owned task (for now: the HbA1c test falling due).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: String,
    pub patient: String,
    pub what: String,
    pub due: Option<OffsetDateTime>,
}

fn task_of(stored: &Stored) -> Option<TaskView> {
    let v = stored.json().ok()?;
    // Only our own tasks (by their code system).
    v["code"]["coding"]
        .as_array()?
        .iter()
        .find(|c| c["system"] == TASKS)?;
    Some(TaskView {
        id: stored.id.clone(),
        patient: stored.patient_id.clone().unwrap_or_default(),
        what: v["description"].as_str().unwrap_or("").to_string(),
        due: parse_time(&v["restriction"]["period"]["end"]),
    })
}

/// What a patient's chart holds for the plan and readings pages.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub patient: String,
    pub name: String,
    /// The patient's preferred language (Patient.communication), if recorded.
    pub language: Option<String>,
    pub readings: Vec<Reading>,
    pub goals: Vec<GoalView>,
    pub activities: Vec<ActivityView>,
    pub tasks: Vec<TaskView>,
    pub team: Vec<(String, String)>,
}

impl Chart {
    /// The target a reading of this measure is compared with: an agreed goal's, if any.
    pub fn own_target(&self, m: Measure) -> Option<TargetRange> {
        self.goals
            .iter()
            .filter(|g| g.state == GoalState::Agreed)
            .find_map(|g| g.target.filter(|(gm, _)| *gm == m).map(|(_, r)| r))
    }

    pub fn readings_of(&self, m: Measure) -> impl Iterator<Item = &Reading> {
        self.readings.iter().filter(move |r| r.measure == m)
    }
}

/// A display name from a HumanName (Patient, Practitioner, RelatedPerson).
pub fn person_name(v: &Value) -> String {
    let n = &v["name"][0];
    if let Some(t) = n["text"].as_str() {
        return t.to_string();
    }
    let given: Vec<&str> = n["given"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let family = n["family"].as_str().unwrap_or("");
    let s = format!("{} {family}", given.join(" "));
    let s = s.trim();
    if s.is_empty() {
        "(no name)".into()
    } else {
        s.to_string()
    }
}

fn preferred_language(v: &Value) -> Option<String> {
    let comms = v["communication"].as_array()?;
    let pick = comms
        .iter()
        .find(|c| c["preferred"] == true)
        .or(comms.first())?;
    pick["language"]["coding"][0]["code"]
        .as_str()
        .map(str::to_string)
}

/// The team's view of its panel: what needs attention.
#[derive(Debug, Clone, Default)]
pub struct Attention {
    /// (id, name) of every patient in the panel.
    pub panel: Vec<(String, String)>,
    pub readings: Vec<FlaggedReading>,
    pub goals: Vec<GoalView>,
    pub activities: Vec<ActivityView>,
    pub tasks: Vec<TaskView>,
    /// The latest HbA1c (%) of each patient in the panel who has one.
    pub latest_hba1c: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FlaggedReading {
    pub reading: Reading,
    pub out_of_range: bool,
    /// Unreviewed for longer than the review rules allow.
    pub overdue: bool,
}

impl Attention {
    pub fn name_of<'a>(&'a self, patient: &'a str) -> &'a str {
        self.panel
            .iter()
            .find(|(id, _)| id == patient)
            .map_or(patient, |(_, n)| n.as_str())
    }
}

/// A new Goal as one side proposes it: in their words, awaiting the other side.
pub fn goal_resource(
    caller: &Caller,
    patient: &str,
    text: &str,
    side: Side,
    hba1c: Option<HbA1cTarget>,
    now: OffsetDateTime,
) -> Value {
    let mut goal = json!({
        "resourceType": "Goal",
        "lifecycleStatus": "proposed",
        "description": {"text": text},
        "subject": {"reference": patient_ref(patient)},
        "startDate": instant(now).get(..10).unwrap_or_default(),
        "expressedBy": author(caller),
        "note": [goal_note(caller, now, "proposed", "")],
    });
    set_awaiting(&mut goal, GoalState::proposed_by(side));
    if let Some(t) = hba1c {
        goal["target"] = hba1c_goal_target(t);
    }
    goal
}

/// A patient's shared CarePlan, before it holds goals or activities.
pub fn plan_resource(caller: &Caller, patient: &str, now: OffsetDateTime) -> Value {
    json!({
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": PLAN_CATEGORY, "code": "shared", "display": "Shared care plan"}]}],
        "title": "Shared care plan",
        "subject": {"reference": patient_ref(patient)},
        "created": instant(now),
        "author": author(caller),
    })
}

/// One CarePlan.activity: owner, setting and when it was added in extensions; the due date
/// or cadence in the detail.
pub fn activity_element(a: &NewActivity, now: OffsetDateTime) -> Value {
    let text = a.text.trim();
    let mut detail = json!({
        "status": "not-started",
        "description": text,
    });
    match a.schedule {
        Schedule::By(t) => detail["scheduledPeriod"] = json!({"end": instant(t)}),
        Schedule::Every(c) => {
            let (period, unit) = c.fhir();
            detail["scheduledTiming"] =
                json!({"repeat": {"frequency": 1, "period": period, "periodUnit": unit}});
        }
    }
    json!({
        "extension": [
            {"url": ext("activity-owner"), "valueCode": a.owner.as_str()},
            {"url": ext("activity-setting"), "valueCode": a.setting.as_str()},
            {"url": ext("activity-added"), "valueDateTime": instant(now)},
        ],
        "detail": detail,
    })
}

/// The team's "HbA1c test due" Task for a patient, one per patient (by identifier).
pub fn hba1c_task_resource(patient: &str, due: OffsetDateTime, now: OffsetDateTime) -> Value {
    let identifier = format!("hba1c-test/{patient}");
    let subject = patient_ref(patient);
    json!({
        "resourceType": "Task",
        "identifier": [{"system": TASKS, "value": identifier}],
        "status": "requested",
        "intent": "plan",
        "code": {"coding": [{"system": TASKS, "code": "hba1c-test", "display": "HbA1c test due"}]},
        "description": "HbA1c test due",
        "for": {"reference": subject},
        "authoredOn": instant(now),
        "performerType": [{"coding": [{"system": ROLES, "code": Role::Clinician.as_str()}]}],
        "restriction": {"period": {"end": instant(due)}},
    })
}

/// The care-plan and readings use-cases.
#[derive(Clone)]
pub struct Care {
    api: FhirApi,
    clock: Arc<dyn Clock>,
    pub targets: DefaultTargets,
    pub review: ReviewRules,
    /// How far ahead a team task counts as falling due.
    pub due_soon: time::Duration,
}

impl std::fmt::Debug for Care {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Care").finish_non_exhaustive()
    }
}

impl Care {
    pub fn new(api: FhirApi, clock: Arc<dyn Clock>) -> Self {
        Care {
            api,
            clock,
            targets: DefaultTargets::default(),
            review: ReviewRules::default(),
            due_soon: time::Duration::days(14),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Checks a reading as entered and turns it into an Observation (not yet stored).
    pub fn observation(&self, caller: &Caller, patient: &str, r: &NewReading) -> Result<Value> {
        let value = readings::check(r.measure, &r.values, &r.unit)?;
        if r.at > self.now() + time::Duration::minutes(5) {
            return Err(CareError::input(
                "reading-in-future",
                "the time of the reading is in the future",
            ));
        }
        let code = r.measure.code();
        let concept = |c: readings::Code| json!({"coding": [{"system": c.system, "code": c.code, "display": c.display}], "text": c.display});
        let mut obs = json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": r.measure.category(),
            }]}],
            "code": concept(code),
            "subject": {"reference": patient_ref(patient)},
            "effectiveDateTime": instant(r.at),
            "performer": [author(caller)],
        });
        // A reading the patient's side entered waits for the team to look at it.
        if side_of(caller).ok() == Some(Side::Patient) {
            mark_unreviewed(&mut obs);
        }
        match value {
            ReadingValue::Single(v) => obs["valueQuantity"] = quantity(r.measure, v),
            ReadingValue::Pressure {
                systolic,
                diastolic,
            } => {
                obs["component"] = json!([
                    {"code": concept(readings::SYSTOLIC), "valueQuantity": quantity(r.measure, systolic)},
                    {"code": concept(readings::DIASTOLIC), "valueQuantity": quantity(r.measure, diastolic)},
                ]);
            }
        }
        Ok(obs)
    }

    /// Records one reading.
    pub async fn record_reading(
        &self,
        caller: &Caller,
        patient: &str,
        r: &NewReading,
    ) -> Result<Reading> {
        let obs = self.observation(caller, patient, r)?;
        let written = self
            .api
            .create(caller, "Observation", obs.to_string().as_bytes(), None)
            .await?;
        if r.measure == Measure::HbA1c {
            self.refresh_hba1c_task(patient).await?;
        }
        reading_of(&written.stored).ok_or_else(|| {
            CareError::App(AppError::Internal(
                "a stored reading did not read back".into(),
            ))
        })
    }

    /// Records many readings in one transaction: all or none (a CSV upload).
    pub async fn record_readings(
        &self,
        caller: &Caller,
        patient: &str,
        rows: &[NewReading],
    ) -> Result<usize> {
        let mut entries = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let obs = self.observation(caller, patient, r).map_err(|e| match e {
                CareError::Reading(why) => CareError::Input {
                    key: "csv-row-refused",
                    english: format!("row {}: {why}", i + 2),
                    args: vec![("row", (i + 2).to_string()), ("why", why.to_string())],
                },
                other => other,
            })?;
            entries.push(json!({
                "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            }));
        }
        if entries.is_empty() {
            return Err(CareError::input("csv-empty", "the file has no readings"));
        }
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        self.api
            .bundle(caller, bundle.to_string().as_bytes())
            .await?;
        if rows.iter().any(|r| r.measure == Measure::HbA1c) {
            self.refresh_hba1c_task(patient).await?;
        }
        Ok(rows.len())
    }

    /// A team member marks a reading reviewed, with an optional comment the patient sees.
    pub async fn review_reading(
        &self,
        caller: &Caller,
        patient: &str,
        observation_id: &str,
        comment: &str,
    ) -> Result<Reading> {
        if side_of(caller)? != Side::Team {
            return Err(CareError::input(
                "review-team-only",
                "only the care team marks readings reviewed",
            ));
        }
        let stored = self.api.read(caller, "Observation", observation_id).await?;
        in_chart(&stored, patient)?;
        let mut v = content(&stored)?;
        let now = self.now();
        // Looked up without indexing: `v["meta"]["tag"]` on a mutable value would add a
        // null `tag` to a reading that has none (one from an EHR), and the update would fail.
        if let Some(tags) = v.pointer_mut("/meta/tag").and_then(Value::as_array_mut) {
            tags.retain(|t| !(t["system"] == WORKFLOW_TAGS && t["code"] == "unreviewed"));
        }
        let mut parts = vec![
            json!({"url": "by", "valueReference": author(caller)}),
            json!({"url": "at", "valueDateTime": instant(now)}),
        ];
        let comment = comment.trim();
        if !comment.is_empty() {
            parts.push(json!({"url": "comment", "valueString": comment}));
        }
        let mut exts: Vec<Value> = v["extension"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["url"] != ext("reading-review"))
            .collect();
        exts.push(json!({"url": ext("reading-review"), "extension": parts}));
        v["extension"] = json!(exts);
        strip_version(&mut v);
        let written = self
            .api
            .update(
                caller,
                "Observation",
                observation_id,
                v.to_string().as_bytes(),
                Some(stored.version_id),
            )
            .await?;
        reading_of(&written.stored).ok_or_else(|| {
            CareError::App(AppError::Internal(
                "a reviewed reading did not read back".into(),
            ))
        })
    }

    /// The shared CarePlan of a patient, made on first use.
    async fn plan(&self, caller: &Caller, patient: &str) -> Result<(Stored, Value)> {
        if let Some(s) = self.find_plan(caller, patient).await? {
            let v = content(&s)?;
            return Ok((s, v));
        }
        let plan = plan_resource(caller, patient, self.now());
        let written = self
            .api
            .create(caller, "CarePlan", plan.to_string().as_bytes(), None)
            .await?;
        let v = content(&written.stored)?;
        Ok((written.stored, v))
    }

    async fn find_plan(&self, caller: &Caller, patient: &str) -> Result<Option<Stored>> {
        let found = self
            .api
            .search_all(
                caller,
                "CarePlan",
                &params(&[
                    ("subject", patient_ref(patient)),
                    ("category", format!("{PLAN_CATEGORY}|shared")),
                    ("status", "active".into()),
                ]),
            )
            .await?;
        Ok(found.into_iter().next())
    }

    async fn save_plan(&self, caller: &Caller, stored: &Stored, mut v: Value) -> Result<Stored> {
        strip_version(&mut v);
        let written = self
            .api
            .update(
                caller,
                "CarePlan",
                &stored.id,
                v.to_string().as_bytes(),
                Some(stored.version_id),
            )
            .await?;
        Ok(written.stored)
    }

    /// Either side proposes a goal in their own words, with an optional HbA1c target.
    pub async fn propose_goal(
        &self,
        caller: &Caller,
        patient: &str,
        text: &str,
        hba1c: Option<HbA1cTarget>,
    ) -> Result<GoalView> {
        let side = side_of(caller)?;
        let text = text.trim();
        if text.is_empty() {
            return Err(CareError::input(
                "goal-text-needed",
                "say what the goal is, in your own words",
            ));
        }
        if text.chars().count() > 500 {
            return Err(CareError::input(
                "goal-text-too-long",
                "keep the goal under 500 characters",
            ));
        }
        let now = self.now();
        let goal = goal_resource(caller, patient, text, side, hba1c, now);
        let written = self
            .api
            .create(caller, "Goal", goal.to_string().as_bytes(), None)
            .await?;
        // The plan lists its goals.
        let (plan, mut pv) = self.plan(caller, patient).await?;
        let mut goals = pv["goal"].as_array().cloned().unwrap_or_default();
        goals.push(json!({"reference": format!("Goal/{}", written.stored.id)}));
        pv["goal"] = json!(goals);
        self.save_plan(caller, &plan, pv).await?;
        goal_of(&written.stored).ok_or_else(|| {
            CareError::App(AppError::Internal("a stored goal did not read back".into()))
        })
    }

    /// The other side answers a goal: agree (the team may set the HbA1c target as it
    /// agrees), suggest a change (new words), or decline with a reason.
    pub async fn answer_goal(
        &self,
        caller: &Caller,
        patient: &str,
        goal_id: &str,
        answer: GoalAnswer,
        hba1c: Option<HbA1cTarget>,
    ) -> Result<GoalView> {
        let side = side_of(caller)?;
        let stored = self.api.read(caller, "Goal", goal_id).await?;
        in_chart(&stored, patient)?;
        let view = goal_of(&stored)
            .ok_or_else(|| CareError::input("goal-unreadable", "this goal cannot be read"))?;
        let next = view.state.answer(side, &answer)?;
        let now = self.now();
        let mut v = content(&stored)?;
        strip_version(&mut v);
        set_awaiting(&mut v, next);
        let note = match &answer {
            GoalAnswer::Agree => goal_note(caller, now, "agreed", ""),
            GoalAnswer::SuggestChange(words) => {
                v["description"]["text"] = json!(words.trim());
                goal_note(caller, now, "change-suggested", words)
            }
            GoalAnswer::Decline(why) => goal_note(caller, now, "declined", why),
        };
        let mut notes = v["note"].as_array().cloned().unwrap_or_default();
        notes.push(note);
        v["note"] = json!(notes);
        if let Some(t) = hba1c {
            if side != Side::Team {
                return Err(CareError::input(
                    "goal-target-team-only",
                    "the clinician sets the HbA1c target with you",
                ));
            }
            v["target"] = hba1c_goal_target(t);
        }
        if next == GoalState::Agreed {
            v["statusDate"] = json!(instant(now).get(..10).unwrap_or_default());
        }
        let written = self
            .api
            .update(
                caller,
                "Goal",
                goal_id,
                v.to_string().as_bytes(),
                Some(stored.version_id),
            )
            .await?;
        let patient = written.stored.patient_id.clone().unwrap_or_default();
        if view.target.is_some_and(|(m, _)| m == Measure::HbA1c) || hba1c.is_some() {
            self.refresh_hba1c_task(&patient).await?;
        }
        goal_of(&written.stored)
            .ok_or_else(|| CareError::App(AppError::Internal("a goal did not read back".into())))
    }

    /// Adds an activity to the plan. The patient's side adds activities it owns; the team
    /// adds any.
    pub async fn add_activity(
        &self,
        caller: &Caller,
        patient: &str,
        a: &NewActivity,
    ) -> Result<ActivityView> {
        let side = side_of(caller)?;
        if !a.owner.may_be_added_by(side) {
            return Err(CareError::input(
                "activity-team-owned",
                "ask your care team to add what they will do",
            ));
        }
        let text = a.text.trim();
        if text.is_empty() {
            return Err(CareError::input(
                "activity-text-needed",
                "say what will be done",
            ));
        }
        let now = self.now();
        let (plan, mut v) = self.plan(caller, patient).await?;
        let activity = activity_element(a, now);
        let mut list = v["activity"].as_array().cloned().unwrap_or_default();
        list.push(activity);
        let index = list.len() - 1;
        v["activity"] = json!(list);
        let saved = self.save_plan(caller, &plan, v).await?;
        let v = content(&saved)?;
        activities_of(&v, patient)
            .into_iter()
            .find(|x| x.index == index)
            .ok_or_else(|| {
                CareError::App(AppError::Internal("an activity did not read back".into()))
            })
    }

    /// Marks an activity done: a one-off is then complete, a recurring one is due again
    /// one cadence later.
    pub async fn mark_done(&self, caller: &Caller, patient: &str, index: usize) -> Result<()> {
        let role = role_of(caller).ok_or_else(|| {
            CareError::App(AppError::Forbidden(
                "only people in the plan mark activities done".into(),
            ))
        })?;
        let Some(stored) = self.find_plan(caller, patient).await? else {
            return Err(CareError::input(
                "activity-unknown",
                "that activity is not on the plan",
            ));
        };
        let mut v = content(&stored)?;
        let activity = activities_of(&v, patient)
            .into_iter()
            .find(|a| a.index == index)
            .ok_or_else(|| {
                CareError::input("activity-unknown", "that activity is not on the plan")
            })?;
        if !activity.owner().may_be_done_by(role) {
            return Err(CareError::input(
                "activity-not-yours",
                "this activity belongs to the other side of the plan",
            ));
        }
        if activity.facts.finished {
            return Err(CareError::input(
                "activity-finished",
                "this activity is already done",
            ));
        }
        let now = self.now();
        let a = &mut v["activity"][index];
        let mut progress = a["progress"].as_array().cloned().unwrap_or_default();
        progress
            .push(json!({"authorReference": author(caller), "time": instant(now), "text": "done"}));
        a["progress"] = json!(progress);
        a["detail"]["status"] = json!(match activity.facts.schedule {
            Schedule::By(_) => "completed",
            Schedule::Every(_) => "in-progress",
        });
        self.save_plan(caller, &stored, v).await?;
        Ok(())
    }

    /// Everything the plan and readings pages show for one patient, as the caller may see it.
    pub async fn chart(&self, caller: &Caller, patient: &str) -> Result<Chart> {
        let p = self.api.read(caller, "Patient", patient).await?;
        let pv = content(&p)?;
        let subject = patient_ref(patient);
        let mut chart = Chart {
            patient: patient.to_string(),
            name: person_name(&pv),
            language: preferred_language(&pv),
            ..Chart::default()
        };
        // A family member whose grant leaves out a part simply sees none of it.
        let allowed = |e: &CareError| matches!(e, CareError::App(AppError::Forbidden(_)));
        match self
            .api
            .search_all(
                caller,
                "Observation",
                &params(&[("subject", subject.clone()), ("_sort", "-date".into())]),
            )
            .await
        {
            Ok(found) => chart.readings = found.iter().filter_map(reading_of).collect(),
            Err(e) => {
                let e = CareError::from(e);
                if !allowed(&e) {
                    return Err(e);
                }
            }
        }
        match self
            .api
            .search_all(caller, "Goal", &params(&[("subject", subject.clone())]))
            .await
        {
            Ok(found) => {
                chart.goals = found.iter().filter_map(goal_of).collect();
                chart
                    .goals
                    .sort_by_key(|g| std::cmp::Reverse(g.history.first().map(|h| h.at)));
                if let Some(plan) = self.find_plan(caller, patient).await? {
                    chart.activities = activities_of(&content(&plan)?, patient);
                }
                let tasks = self
                    .api
                    .search_all(
                        caller,
                        "Task",
                        &params(&[
                            ("patient", subject.clone()),
                            ("status", "requested,in-progress".into()),
                        ]),
                    )
                    .await?;
                chart.tasks = tasks.iter().filter_map(task_of).collect();
            }
            Err(e) => {
                let e = CareError::from(e);
                if !allowed(&e) {
                    return Err(e);
                }
            }
        }
        if let Ok(teams) = self
            .api
            .search_all(caller, "CareTeam", &params(&[("subject", subject)]))
            .await
        {
            for t in teams {
                let tv = content(&t)?;
                for member in tv["participant"].as_array().into_iter().flatten() {
                    let role = member["role"][0]["coding"][0]["display"]
                        .as_str()
                        .or(member["role"][0]["text"].as_str())
                        .unwrap_or("")
                        .to_string();
                    let who = member["member"]["display"]
                        .as_str()
                        .or(member["member"]["reference"].as_str())
                        .unwrap_or("")
                        .to_string();
                    chart.team.push((who, role));
                }
            }
        }
        self.name_team(caller, &mut chart.team).await?;
        Ok(chart)
    }

    /// Care-team members recorded by reference only get their names from their
    /// Practitioner resources.
    async fn name_team(&self, caller: &Caller, team: &mut [(String, String)]) -> Result<()> {
        let ids: Vec<String> = team
            .iter()
            .filter_map(|(who, _)| who.strip_prefix("Practitioner/").map(str::to_string))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let found = self
            .api
            .search_all(caller, "Practitioner", &params(&[("_id", ids.join(","))]))
            .await?;
        let names: HashMap<String, String> = found
            .iter()
            .filter_map(|s| {
                Some((
                    format!("Practitioner/{}", s.id),
                    person_name(&s.json().ok()?),
                ))
            })
            .collect();
        for (who, _) in team.iter_mut() {
            if let Some(n) = names.get(who.as_str()) {
                *who = n.clone();
            }
        }
        Ok(())
    }

    /// The patients the caller may see (a family member's, a team member's panel).
    pub async fn patients(&self, caller: &Caller) -> Result<Vec<(String, String)>> {
        let found = self.api.search_all(caller, "Patient", &[]).await?;
        let mut out: Vec<(String, String)> = found
            .iter()
            .filter_map(|s| Some((s.id.clone(), person_name(&s.json().ok()?))))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// The team home: what needs the team's attention across its panel.
    pub async fn attention(&self, caller: &Caller) -> Result<Attention> {
        let now = self.now();
        let mut a = Attention {
            panel: self.patients(caller).await?,
            ..Attention::default()
        };
        let goals: Vec<GoalView> = self
            .api
            .search_all(
                caller,
                "Goal",
                &params(&[("lifecycle-status", "proposed,active".into())]),
            )
            .await?
            .iter()
            .filter_map(goal_of)
            .collect();
        let own_targets: HashMap<(String, Measure), TargetRange> = goals
            .iter()
            .filter(|g| g.state == GoalState::Agreed)
            .filter_map(|g| g.target.map(|(m, r)| ((g.patient.clone(), m), r)))
            .collect();
        let unreviewed = self
            .api
            .search_all(
                caller,
                "Observation",
                &params(&[
                    ("_tag", format!("{WORKFLOW_TAGS}|unreviewed")),
                    ("_sort", "date".into()),
                ]),
            )
            .await?;
        a.readings = unreviewed
            .iter()
            .filter_map(reading_of)
            .map(|r| FlaggedReading {
                out_of_range: self.targets.out_of_range(
                    r.measure,
                    &r.value,
                    own_targets.get(&(r.patient.clone(), r.measure)).copied(),
                ),
                overdue: self.review.overdue(r.at, now),
                reading: r,
            })
            .collect();
        // Flagged first: overdue, then out of range, then the oldest.
        a.readings
            .sort_by_key(|f| (!f.overdue, !f.out_of_range, f.reading.at));
        a.goals = goals
            .into_iter()
            .filter(|g| g.state == GoalState::Awaiting(Side::Team))
            .collect();
        let plans = self
            .api
            .search_all(
                caller,
                "CarePlan",
                &params(&[
                    ("category", format!("{PLAN_CATEGORY}|shared")),
                    ("status", "active".into()),
                ]),
            )
            .await?;
        for p in &plans {
            let patient = p.patient_id.clone().unwrap_or_default();
            let v = content(p)?;
            a.activities.extend(
                activities_of(&v, &patient)
                    .into_iter()
                    .filter(|x| x.owner().side() == Side::Team && x.facts.overdue(now)),
            );
        }
        let tasks = self
            .api
            .search_all(
                caller,
                "Task",
                &params(&[("status", "requested,in-progress".into())]),
            )
            .await?;
        a.tasks = tasks
            .iter()
            .filter_map(task_of)
            .filter(|t| t.due.is_some_and(|d| d <= now + self.due_soon))
            .collect();
        a.tasks.sort_by_key(|t| t.due);
        let since = now - time::Duration::days(456);
        let hba1c = self
            .api
            .search_all(
                caller,
                "Observation",
                &params(&[
                    (
                        "code",
                        readings::HBA1C_CODES
                            .iter()
                            .map(|c| format!("{LOINC}|{c}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    ("date", format!("ge{}", instant(since))),
                    ("_sort", "-date".into()),
                ]),
            )
            .await?;
        let mut latest: BTreeMap<String, f64> = BTreeMap::new();
        for r in hba1c.iter().filter_map(reading_of) {
            latest
                .entry(r.patient.clone())
                .or_insert(r.value.headline());
        }
        a.latest_hba1c = latest.into_values().collect();
        Ok(a)
    }

    /// Keeps the patient's "HbA1c test due" task in step with their latest HbA1c and their
    /// agreed target. The system does this on the team's behalf, so it is audited as such.
    pub async fn refresh_hba1c_task(&self, patient: &str) -> Result<()> {
        let system = Caller::system("coproduce:care-plan");
        let subject = patient_ref(patient);
        let latest = self
            .api
            .search_all(
                &system,
                "Observation",
                &params(&[
                    ("subject", subject.clone()),
                    (
                        "code",
                        readings::HBA1C_CODES
                            .iter()
                            .map(|c| format!("{LOINC}|{c}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    ("_sort", "-date".into()),
                    ("_count", "1".into()),
                ]),
            )
            .await?
            .iter()
            .find_map(reading_of)
            .map(|r| (r.at, r.value.headline()));
        let target = self
            .api
            .search_all(
                &system,
                "Goal",
                &params(&[
                    ("subject", subject.clone()),
                    ("lifecycle-status", "active".into()),
                ]),
            )
            .await?
            .iter()
            .filter_map(goal_of)
            .find_map(|g| {
                g.target
                    .filter(|(m, _)| *m == Measure::HbA1c)
                    .map(|(_, r)| r)
            });
        let due = hba1c_due(latest, target, self.now());
        let identifier = format!("hba1c-test/{patient}");
        let task = hba1c_task_resource(patient, due, self.now());
        let existing = self
            .api
            .search_all(
                &system,
                "Task",
                &params(&[("identifier", format!("{TASKS}|{identifier}"))]),
            )
            .await?;
        match existing.first() {
            Some(s) => {
                let old = task_of(s);
                if old.is_some_and(|t| t.due == Some(due)) {
                    return Ok(());
                }
                self.api
                    .update(
                        &system,
                        "Task",
                        &s.id,
                        task.to_string().as_bytes(),
                        Some(s.version_id),
                    )
                    .await?;
            }
            None => {
                self.api
                    .create(&system, "Task", task.to_string().as_bytes(), None)
                    .await?;
            }
        }
        Ok(())
    }

    /// Whose reference a caller is (their patient id when they are the patient).
    pub fn own_patient(caller: &Caller) -> Option<String> {
        match &caller.actor.who {
            Who::Patient { patient } => Some(patient.clone()),
            _ => caller
                .fhir_ref
                .as_deref()
                .and_then(split_reference)
                .filter(|(t, _)| *t == "Patient")
                .map(|(_, id)| id.to_string()),
        }
    }
}

/// The columns of a readings CSV file, in order (docs/readings-csv.md). Export writes them
/// and more (review status and comment); upload reads the first five and ignores the rest.
pub const CSV_COLUMNS: &[&str] = &["measure", "value", "value2", "unit", "time"];

fn parse_when(s: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let s = s.trim();
    if s.is_empty() {
        return Some(now);
    }
    if let Some((low, _)) = date_range_millis(s) {
        return Some(from_unix_millis(low));
    }
    // "2026-11-20 08:30" as people type it, in UTC.
    let with_t = s.replacen(' ', "T", 1);
    date_range_millis(&format!("{with_t}:00Z"))
        .or_else(|| date_range_millis(&format!("{with_t}Z")))
        .map(|(low, _)| from_unix_millis(low))
}

/// Reads a readings CSV file (a header row naming at least `measure` and `value`). Every
/// row is checked; the first bad one refuses the whole file, naming its row.
pub fn parse_csv(bytes: &[u8], now: OffsetDateTime) -> Result<Vec<NewReading>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| CareError::input("csv-unreadable", format!("the file is not CSV: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(m_col), Some(v_col)) = (col("measure"), col("value")) else {
        return Err(CareError::Input {
            key: "csv-columns",
            english: format!(
                "the first row must name the columns: {}",
                CSV_COLUMNS.join(",")
            ),
            args: vec![("columns", CSV_COLUMNS.join(","))],
        });
    };
    let (v2_col, u_col, t_col) = (col("value2"), col("unit"), col("time"));
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let refuse = |why: String| CareError::Input {
            key: "csv-row-refused",
            english: format!("row {row}: {why}"),
            args: vec![("row", row.to_string()), ("why", why)],
        };
        let record = record.map_err(|e| refuse(e.to_string()))?;
        let field = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
        if record.iter().all(str::is_empty) {
            continue;
        }
        let measure =
            Measure::parse(&field(Some(m_col)).to_ascii_lowercase()).ok_or_else(|| {
                refuse(format!(
                    "'{}' is not a measure; use one of {}",
                    field(Some(m_col)),
                    Measure::ALL.map(Measure::as_str).join(", ")
                ))
            })?;
        let mut values =
            vec![readings::parse_number(field(Some(v_col))).map_err(|e| refuse(e.to_string()))?];
        if measure == Measure::BloodPressure {
            values.push(
                readings::parse_number(field(v2_col))
                    .map_err(|e| refuse(format!("value2 (diastolic): {e}")))?,
            );
        }
        let at = parse_when(field(t_col), now).ok_or_else(|| {
            refuse(format!(
                "'{}' is not a time like 2026-11-20 08:30",
                field(t_col)
            ))
        })?;
        let r = NewReading {
            measure,
            values,
            unit: field(u_col).to_string(),
            at,
        };
        readings::check(r.measure, &r.values, &r.unit).map_err(|e| refuse(e.to_string()))?;
        out.push(r);
    }
    Ok(out)
}

/// Writes readings as CSV, in the upload's columns plus the review.
pub fn readings_csv(readings: &[Reading]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| CareError::App(AppError::Internal(e.to_string()));
    w.write_record(
        CSV_COLUMNS
            .iter()
            .chain(&["recorded_by", "reviewed", "review_comment"]),
    )
    .map_err(fail)?;
    for r in readings {
        let unit = r.measure.canonical_unit().ucum;
        let d = r.measure.decimals();
        let (v1, v2) = match r.value {
            ReadingValue::Single(v) => (format!("{v:.d$}"), String::new()),
            ReadingValue::Pressure {
                systolic,
                diastolic,
            } => (format!("{systolic:.0}"), format!("{diastolic:.0}")),
        };
        let reviewed = match (&r.review, r.unreviewed) {
            (Some(rv), _) => instant(rv.at),
            (None, true) => "no".into(),
            (None, false) => String::new(),
        };
        let comment = r
            .review
            .as_ref()
            .and_then(|rv| rv.comment.clone())
            .unwrap_or_default();
        w.write_record(
            [
                r.measure.as_str(),
                &v1,
                &v2,
                unit,
                &instant(r.at),
                &r.by,
                &reviewed,
                &comment,
            ]
            .map(crate::spreadsheet::safe_cell)
            .iter()
            .map(|c| c.as_ref()),
        )
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| CareError::App(AppError::Internal(e.to_string())))?;
    String::from_utf8(bytes).map_err(|e| CareError::App(AppError::Internal(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_csv_file_is_read_with_units_and_times() {
        let now = datetime!(2026-11-27 10:00 UTC);
        let csv = "measure,value,value2,unit,time\n\
                   glucose,7.0,,mmol/L,2026-11-20 08:30\n\
                   blood-pressure,128,82,,2026-11-21T07:00:00Z\n\
                   weight,80.5,,kg,\n";
        let rows = parse_csv(csv.as_bytes(), now).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].at, datetime!(2026-11-20 08:30 UTC));
        assert_eq!(rows[1].values, vec![128.0, 82.0]);
        assert_eq!(rows[2].at, now);
    }

    #[test]
    fn a_bad_row_refuses_the_file_and_names_the_row() {
        let now = datetime!(2026-11-27 10:00 UTC);
        let csv = "measure,value\nglucose,120\nhba1c,80\n";
        let err = parse_csv(csv.as_bytes(), now).unwrap_err();
        assert_eq!(err.to_string(), "row 3: hba1c must be between 3 and 20 %");
        let err = parse_csv(b"what,ever\n1,2\n", now).unwrap_err();
        assert!(matches!(
            err,
            CareError::Input {
                key: "csv-columns",
                ..
            }
        ));
    }

    #[test]
    fn exported_readings_upload_again_unchanged() {
        let r = Reading {
            id: "x".into(),
            version: 1,
            patient: "p".into(),
            measure: Measure::BloodPressure,
            value: ReadingValue::Pressure {
                systolic: 131.0,
                diastolic: 84.0,
            },
            at: datetime!(2026-11-20 08:30 UTC),
            by: "ana".into(),
            unreviewed: true,
            review: None,
        };
        let text = readings_csv(std::slice::from_ref(&r)).unwrap();
        let back = parse_csv(text.as_bytes(), datetime!(2026-11-27 10:00 UTC)).unwrap();
        assert_eq!(back[0].values, vec![131.0, 84.0]);
        assert_eq!(back[0].at, r.at);
        assert_eq!(back[0].measure, r.measure);
    }
}
