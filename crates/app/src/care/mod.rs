//! The shared care plan and patient readings, as FHIR: readings are Observations (performer:
//! the patient or family member), goals are Goals, activities live on one shared CarePlan
//! per patient, and the HbA1c test falling due is a team-owned Task.
//!
//! Every read and write goes through [`FhirApi`] with the caller's rights, so the access
//! policy decides and every interaction is audited. The rules (what a valid reading is,
//! whose turn it is on a goal, when an activity is due) are `core`'s.

use crate::caller::Caller;
use crate::error::AppError;
use crate::fhir_api::FhirApi;
use crate::notify::Notifier;
use coproduce_core::access::{Part, Role, Who};
use coproduce_core::calendar::BusinessCalendar;
use coproduce_core::care::plan::{
    ActivityFacts, Cadence, GoalAnswer, GoalState, Owner, Schedule, Setting, Side,
};
use coproduce_core::care::readings::{
    self as reading_rules, DefaultTargets, HbA1cTarget, LOINC, Measure, ReadingRefused,
    ReadingValue, ReviewRules, Standing, TargetRange, UCUM, hba1c_due,
};
use coproduce_core::care::safety::{Alert, SafetyThresholds};
use coproduce_core::deadline::Escalation;
use coproduce_core::{Clock, from_unix_millis};
use coproduce_fhir::primitives::date_range_millis;
use coproduce_fhir::search::split_reference;
use coproduce_store::Stored;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use time::OffsetDateTime;

mod chart;
mod collaborate;
mod csv;
mod facts;
mod memo;
mod partnership;
mod plan;
mod readings;
mod rules;
pub mod synthetic;

use crate::error::CareError;
use crate::vocabulary::{PLAN_CATEGORY, ROLES, TASKS, WORKFLOW_TAGS, person_name, role_of};
pub use chart::*;
pub use collaborate::*;
pub use csv::*;
pub use facts::{LINE as PARTNERSHIP_LINE, PromiseLine, RecordFacts};
pub use partnership::*;
pub use plan::*;
pub use readings::*;
pub use rules::write_rules;

const BASE: &str = "https://coproduce.health/fhir";
fn ext(name: &str) -> String {
    format!("{BASE}/StructureDefinition/{name}")
}

type Result<T> = std::result::Result<T, CareError>;

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

use crate::vocabulary::strip_version;

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

/// The care-plan and readings use-cases.
#[derive(Clone)]
pub struct Care {
    api: FhirApi,
    clock: Arc<dyn Clock>,
    pub targets: DefaultTargets,
    pub review: ReviewRules,
    /// The readings that need a response now (a dangerous low, a crisis pressure).
    pub safety: SafetyThresholds,
    /// Who responds to such a reading, and how soon (the same day by default).
    pub urgent: Escalation,
    /// The site's calendar, which the urgent deadline counts in.
    pub calendar: Arc<BusinessCalendar>,
    /// Who is told of an urgent reading.
    pub notifier: Notifier,
    /// How far ahead a team task counts as falling due.
    pub due_soon: time::Duration,
    /// How long the team has to answer a goal the patient's side proposed (the scorecard).
    pub goal_answer: coproduce_core::calendar::Within,
    /// The views built from the versions its pages list, each built once.
    views: memo::Views,
}

impl std::fmt::Debug for Care {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Care").finish_non_exhaustive()
    }
}

/// The search for open Tasks (asked for, or under way).
fn open_task_params() -> Vec<(String, String)> {
    params(&[("status", "requested,in-progress".into())])
}

impl Care {
    pub fn new(api: FhirApi, clock: Arc<dyn Clock>) -> Self {
        Care {
            notifier: Notifier::new(api.clone(), clock.clone(), false),
            api,
            clock,
            targets: DefaultTargets::default(),
            review: ReviewRules::default(),
            safety: SafetyThresholds::default(),
            urgent: coproduce_core::care::safety::urgent_response(),
            calendar: Arc::new(BusinessCalendar::default()),
            due_soon: time::Duration::days(14),
            goal_answer: GOAL_ANSWER_WITHIN,
            views: memo::Views::new(),
        }
    }

    /// The open Tasks (requested or in progress) of the patients the caller reaches.
    async fn open_tasks(&self, caller: &Caller) -> Result<Vec<Stored>> {
        Ok(self
            .api
            .search_all(caller, "Task", &open_task_params())
            .await?)
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
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
