//! What every workflow shares: our code systems, which role a caller acts in, a person's
//! display name, and how a Consent reads as a family grant.

use crate::caller::Caller;
use coproduce_core::access::{Grant, Part, Role, Who};
use coproduce_core::from_unix_millis;
use coproduce_fhir::search::split_reference;
use serde_json::Value;
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// Workflow tags on resources (`meta.tag`): a patient-entered reading is `unreviewed`.
pub const WORKFLOW_TAGS: &str = "https://coproduce.health/fhir/CodeSystem/workflow";
pub const ROLES: &str = "https://coproduce.health/fhir/CodeSystem/role";
pub const TASKS: &str = "https://coproduce.health/fhir/CodeSystem/task";
pub const PLAN_CATEGORY: &str = "https://coproduce.health/fhir/CodeSystem/care-plan-category";
/// The code system of the parts a family grant covers (Consent.provision.code).
pub const GRANT_PART_SYSTEM: &str = "urn:coproduce:grant-part";

/// The instant a FHIR date, dateTime or instant element starts at (a date: its midnight UTC);
/// None when absent or not one.
pub fn instant_of(v: &Value) -> Option<OffsetDateTime> {
    v.as_str()
        .and_then(coproduce_fhir::primitives::date_range_millis)
        .map(|(ms, _)| from_unix_millis(ms))
}

/// The id of a record derived from another: the source's id and a suffix, or a digest of
/// them when that would be longer than an id may be.
pub fn derived_id(source: &str, suffix: &str) -> String {
    let id = format!("{source}-{suffix}");
    if id.len() <= 64 {
        return id;
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let hex = hex::encode(&digest[..24]);
    format!("{hex}-{suffix}")
}

/// Drops the server-kept version fields before an update, and `meta` itself when nothing
/// else is left in it (FHIR allows no empty objects).
pub(crate) fn strip_version(v: &mut Value) {
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

/// Which role the caller acts in, and so which side of the partnership they speak for.
pub fn role_of(caller: &Caller) -> Option<Role> {
    match &caller.actor.who {
        Who::Patient { .. } => Some(Role::Patient),
        Who::Family { .. } => Some(Role::Family),
        Who::TeamMember { role, .. } => Some(*role),
        _ => None,
    }
}

/// A Patient's (or RelatedPerson's) preferred language code, else their first.
pub fn preferred_language(v: &Value) -> Option<String> {
    let comms = v["communication"].as_array()?;
    let pick = comms
        .iter()
        .find(|c| c["preferred"] == true)
        .or(comms.first())?;
    pick["language"]["coding"][0]["code"]
        .as_str()
        .map(str::to_string)
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

/// Reads a Consent as a family grant: the patient, the parts (provision.code in
/// [`GRANT_PART_SYSTEM`]), the end (provision.period.end), and whether it is still active.
pub fn grant_of(consent: &Value, _now: OffsetDateTime) -> Option<Grant> {
    let patient = consent["patient"]["reference"]
        .as_str()
        .and_then(split_reference)?;
    if patient.0 != "Patient" {
        return None;
    }
    let provision = &consent["provision"];
    let parts: BTreeSet<Part> = provision["code"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|cc| cc["coding"].as_array().into_iter().flatten())
        .filter(|c| c["system"] == GRANT_PART_SYSTEM)
        .filter_map(|c| c["code"].as_str().and_then(Part::parse))
        .collect();
    let until = provision["period"]["end"]
        .as_str()
        .and_then(coproduce_fhir::primitives::date_range_millis)
        .map(|(_, hi)| from_unix_millis(hi + 1));
    Some(Grant {
        patient: patient.1.to_string(),
        parts,
        until,
        revoked: consent["status"].as_str() != Some("active")
            || provision["type"].as_str() == Some("deny"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_consent_reads_as_a_grant() {
        let c = json!({"resourceType": "Consent", "status": "active", "patient": {"reference": "Patient/a"},
            "provision": {"type": "permit", "period": {"end": "2026-12-31"},
                "actor": [{"role": {"text": "proxy"}, "reference": {"reference": "RelatedPerson/f"}}],
                "code": [{"coding": [{"system": GRANT_PART_SYSTEM, "code": "readings"}]}]}});
        let now = time::macros::datetime!(2026-11-27 10:00 UTC);
        let g = grant_of(&c, now).unwrap();
        assert_eq!(g.patient, "a");
        assert_eq!(g.parts, [Part::Readings].into());
        assert!(g.is_active(now));
        assert!(!g.is_active(time::macros::datetime!(2027-01-01 0:00 UTC)));
        let mut revoked = c.clone();
        revoked["status"] = json!("inactive");
        assert!(!grant_of(&revoked, now).unwrap().is_active(now));
    }
}
