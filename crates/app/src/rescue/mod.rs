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

use crate::caller::Caller;
use crate::deadlines::{Watcher, escalation_extension, set_task_deadline, task_deadline};
use crate::error::{AppError, CareError};
use crate::fhir_api::FhirApi;
use crate::notify::Notifier;
use crate::vocabulary::{PLAN_CATEGORY, TASKS, person_name, role_of};
use coproduce_core::Clock;
use coproduce_core::access::{Part, Role};
use coproduce_core::calendar::{BusinessCalendar, Within};
use coproduce_core::care::plan::is_diabetes;
use coproduce_core::deadline::{Deadline, Escalation, Standing};
use coproduce_core::from_unix_millis;
use coproduce_core::rescue::{
    By, CheckIn, Context, Effect, Event, Item, Notice, Outcome, Pack, Recorded, Stage, TaskKind,
};
use coproduce_fhir::primitives::date_range_millis;
use coproduce_store::Stored;
use protocol::ProtocolDef;
use serde_json::{Value, json};
use std::sync::Arc;
use time::{Date, OffsetDateTime};

mod action_plan;
mod events;
pub mod protocol;
mod record;
mod views;

pub use action_plan::*;
pub use events::*;
use record::*;
pub use views::*;

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

    /// The deadline watcher with this workflow's sweep: packs past their expiry, unused.
    pub fn watcher(&self) -> Watcher {
        let rescue = self.clone();
        Watcher::new(
            self.api.clone(),
            self.clock.clone(),
            self.calendar.clone(),
            self.notifier.clone(),
        )
        .with_sweep(Arc::new(move || {
            let rescue = rescue.clone();
            Box::pin(async move {
                let expired = rescue.expire_packs().await.map_err(|e| match e {
                    CareError::App(a) => a,
                    other => AppError::Internal(other.to_string()),
                })?;
                Ok(crate::deadlines::Tick {
                    expired,
                    ..Default::default()
                })
            })
        }))
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

impl Rescue {}

impl Rescue {}
