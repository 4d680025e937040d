//! Speak Up (CLINICAL.md section 5) as FHIR: a concern is a Communication (category
//! `speakup|concern`) that carries what the reporter said and the loop's steps as extensions
//! (what was done and when, never by whom); the team's work on it is a Task per deadline
//! (acknowledge, then answer), unattached to any chart, whose notes say who took each step;
//! the reporter's word on whether they felt heard is a QuestionnaireResponse about the
//! Communication. A unit is a Location with the `speakup-unit` extension (inpatient or
//! outpatient, and its own routine acknowledgement time if it sets one); a team member works
//! on the units their PractitionerRoles place them on. See docs/speak-up.md.
//!
//! [`SpeakUp::raise`] and [`SpeakUp::step`] let `core` decide ([`Concern::apply`]), then write
//! the concern, its Tasks and the notifications in one transaction. Everything is written and
//! read with the Speak Up service's rights on behalf of the person, named in the audit trail:
//! a reporter without a sign-in has no rights of their own, a concern raised without a name
//! is in no chart, and the unit's staff need not be on the patient's care team; who may see
//! and do what is `core::speakup`'s rule.

use crate::caller::Caller;
use crate::error::{AppError, CareError};
use crate::fhir_api::FhirApi;
use crate::notify::Notifier;
use crate::vocabulary::{person_name, role_of};
use coproduce_core::Clock;
use coproduce_core::access::{Role, Who};
use coproduce_core::calendar::{BusinessCalendar, Within};
use coproduce_core::speakup::{Limits, Place, Rules};
use coproduce_store::Stored;
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;

mod concern;
mod measures;
pub use measures::report_of;
mod record;
pub mod synthetic;
mod views;

pub use concern::*;
pub use record::*;
pub use views::*;

/// The kind of a Speak Up Communication (`concern`; later `feedback`).
pub const SPEAKUP: &str = "https://coproduce.health/fhir/CodeSystem/speakup";
/// The concern's category (medication, condition-worse, ... as configured).
pub const CATEGORY: &str = "https://coproduce.health/fhir/CodeSystem/speakup-category";
/// On the Communication: unit, place, room, when, names-released, safety-event.
pub const CONCERN_EXT: &str = "https://coproduce.health/fhir/StructureDefinition/speakup";
/// On the Communication, one per step: step, at, text, heard.
pub const STEP_EXT: &str = "https://coproduce.health/fhir/StructureDefinition/speakup-step";
/// On a Location: place (inpatient or outpatient) and acknowledge-within.
pub const UNIT_EXT: &str = "https://coproduce.health/fhir/StructureDefinition/speakup-unit";
/// The identifier system of a claim code's digest (the code itself is never stored).
pub const CLAIM: &str = "https://coproduce.health/fhir/sid/speakup-claim";
/// The felt-heard questionnaire's canonical URL.
pub const FELT_HEARD: &str = "https://coproduce.health/fhir/Questionnaire/speakup-felt-heard";
/// The Task codes of the loop's deadlines.
pub const TASK_ACKNOWLEDGE: &str = "speakup-acknowledge";
pub const TASK_ANSWER: &str = "speakup-answer";

/// The attempt kinds counted per address for throttling.
const CLAIM_ATTEMPT: &str = "speakup-claim";
const RAISE_ATTEMPT: &str = "speakup-raise";

type Result<T> = std::result::Result<T, CareError>;

/// A unit that takes concerns: a Location with the Speak Up extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub id: String,
    pub name: String,
    pub place: Place,
    /// The unit's own time to acknowledge a routine concern, if it sets one.
    pub routine_within: Option<Within>,
}

impl Unit {
    /// Reads a Location as a unit; None when it takes no concerns or is not active.
    pub fn of(location: &Value) -> Option<Unit> {
        if location["status"].as_str().is_some_and(|s| s != "active") {
            return None;
        }
        let ext = location["extension"]
            .as_array()?
            .iter()
            .find(|e| e["url"] == UNIT_EXT)?;
        let sub = |name: &str| {
            ext["extension"]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["url"] == name))
        };
        let place = match sub("place")?["valueCode"].as_str()? {
            "inpatient" => Place::Inpatient,
            "outpatient" => Place::Outpatient,
            _ => return None,
        };
        let routine_within = sub("acknowledge-within")
            .and_then(|e| e["valueString"].as_str())
            .and_then(|s| Within::parse(s).ok());
        Some(Unit {
            id: location["id"].as_str()?.to_string(),
            name: location["name"].as_str().unwrap_or("(unit)").to_string(),
            place,
            routine_within,
        })
    }

    /// The Location that makes a unit (for the demo, the tests and an administrator).
    pub fn location(id: &str, name: &str, place: Place, routine_within: Option<&str>) -> Value {
        let mut ext = vec![json!({"url": "place", "valueCode": match place {
            Place::Inpatient => "inpatient",
            Place::Outpatient => "outpatient",
        }})];
        if let Some(w) = routine_within {
            ext.push(json!({"url": "acknowledge-within", "valueString": w}));
        }
        json!({
            "resourceType": "Location", "id": id, "status": "active", "name": name,
            "mode": "instance",
            "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "wa"}]},
            "extension": [{"url": UNIT_EXT, "extension": ext}],
        })
    }
}

/// The Speak Up use-cases.
#[derive(Clone)]
pub struct SpeakUp {
    api: FhirApi,
    clock: Arc<dyn Clock>,
    pub rules: Arc<Rules>,
    pub limits: Limits,
    pub calendar: Arc<BusinessCalendar>,
    pub notifier: Notifier,
}

impl std::fmt::Debug for SpeakUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakUp").finish_non_exhaustive()
    }
}

/// The Speak Up service acting for a person (named in the audit trail as `speakup:user:NAME`),
/// or for a device (`speakup:the unit-4w form from ADDRESS`).
fn on_behalf(label: &str, caller: Option<&Caller>) -> Caller {
    let mut c = Caller::system(&format!("speakup:{label}"));
    if let Some(p) = caller {
        c.fhir_ref = p.fhir_ref.clone();
        c.user_id = p.user_id.clone();
    }
    c
}

fn refused(e: coproduce_core::speakup::Refused) -> CareError {
    CareError::input(e.key, e.english)
}

impl SpeakUp {
    pub fn new(
        api: FhirApi,
        clock: Arc<dyn Clock>,
        rules: Rules,
        calendar: Arc<BusinessCalendar>,
        notifier: Notifier,
    ) -> Self {
        SpeakUp {
            api,
            clock,
            rules: Arc::new(rules),
            limits: Limits::default(),
            calendar,
            notifier,
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Every unit that takes concerns, by name.
    pub async fn units(&self) -> Result<Vec<Unit>> {
        let sys = on_behalf("the unit list", None);
        let mut units: Vec<Unit> = self
            .api
            .search_all(&sys, "Location", &[])
            .await?
            .iter()
            .filter_map(|s| s.json().ok().as_ref().and_then(Unit::of))
            .collect();
        units.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(units)
    }

    /// One unit, or a refusal the person can read when there is no such unit.
    pub async fn unit(&self, id: &str) -> Result<Unit> {
        let sys = on_behalf("a unit's form", None);
        let found = match self.api.read(&sys, "Location", id).await {
            Ok(s) => Unit::of(&s.json()?),
            Err(AppError::NotFound(_) | AppError::Gone(_) | AppError::Invalid(_)) => None,
            Err(e) => return Err(e.into()),
        };
        found.ok_or_else(|| {
            CareError::input(
                "concern-unit-unknown",
                "there is no unit here that takes concerns",
            )
        })
    }

    /// The units with their open links, for someone who prints their QR codes (staff and
    /// administrators).
    pub async fn unit_links(&self, caller: &Caller) -> Result<Vec<Unit>> {
        let role = match &caller.actor.who {
            Who::Admin => Some(Role::Admin),
            _ => role_of(caller),
        };
        if !role.is_some_and(coproduce_core::speakup::prints_unit_links) {
            return Err(AppError::Forbidden(
                "the units' links are printed by staff and administrators".into(),
            )
            .into());
        }
        self.units().await
    }

    /// The units a team member works on (where their PractitionerRoles place them).
    pub async fn units_of(&self, caller: &Caller) -> Result<Vec<String>> {
        let Some(me) = &caller.fhir_ref else {
            return Ok(Vec::new());
        };
        let sys = on_behalf(&caller.label, Some(caller));
        let roles = self
            .api
            .search_all(
                &sys,
                "PractitionerRole",
                &[("practitioner".to_string(), me.clone())],
            )
            .await?;
        let mut units = Vec::new();
        for r in roles {
            let v = r.json()?;
            if v["active"] == false {
                continue;
            }
            for l in v["location"].as_array().into_iter().flatten() {
                if let Some(id) = l["reference"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("Location/"))
                    && !units.iter().any(|u| u == id)
                {
                    units.push(id.to_string());
                }
            }
        }
        Ok(units)
    }

    /// The team role a caller works in, or a refusal for anyone else.
    fn team_role(caller: &Caller) -> Result<Role> {
        match (&caller.actor.who, role_of(caller)) {
            (Who::TeamMember { .. }, Some(r)) => Ok(r),
            _ => Err(
                AppError::Forbidden("concerns are worked on by the unit's care team".into()).into(),
            ),
        }
    }

    async fn load(&self, sys: &Caller, id: &str) -> Result<(Stored, ConcernRecord)> {
        let stored = match self.api.read(sys, "Communication", id).await {
            Ok(s) => s,
            Err(AppError::NotFound(_) | AppError::Gone(_)) => {
                return Err(CareError::input(
                    "concern-not-found",
                    "there is no such concern",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let v = stored.json()?;
        let record = ConcernRecord::of(&v)
            .ok_or_else(|| CareError::input("concern-not-found", "there is no such concern"))?;
        Ok((stored, record))
    }

    /// A name for a staff member's reference, for the team's view.
    async fn name_of(&self, sys: &Caller, reference: &str) -> String {
        let Some((rt, id)) = reference.split_once('/') else {
            return reference.to_string();
        };
        match self
            .api
            .read(sys, rt, id)
            .await
            .ok()
            .and_then(|s| s.json().ok())
        {
            Some(v) => person_name(&v),
            None => reference.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_reads_as_a_unit_with_its_own_routine_time() {
        let v = Unit::location("u", "4 West", Place::Inpatient, Some("2 hours"));
        let u = Unit::of(&v).expect("a unit");
        assert_eq!(u.place, Place::Inpatient);
        assert_eq!(u.routine_within, Some(Within::Hours(2)));
        let clinic = Unit::of(&Unit::location("c", "Clinic", Place::Outpatient, None)).unwrap();
        assert_eq!(
            (clinic.place, clinic.routine_within),
            (Place::Outpatient, None)
        );
        let mut closed = v.clone();
        closed["status"] = json!("inactive");
        assert_eq!(
            Unit::of(&closed),
            None,
            "an inactive unit takes no concerns"
        );
        let plain = json!({"resourceType": "Location", "id": "x", "status": "active"});
        assert_eq!(
            Unit::of(&plain),
            None,
            "a Location without the extension is no unit"
        );
    }
}
