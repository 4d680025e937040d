//! What every workflow shares: our code systems, which role a caller acts in, and a
//! person's display name.

use crate::caller::Caller;
use coproduce_core::access::{Role, Who};
use serde_json::Value;

/// Workflow tags on resources (`meta.tag`): a patient-entered reading is `unreviewed`.
pub const WORKFLOW_TAGS: &str = "https://coproduce.health/fhir/CodeSystem/workflow";
pub const ROLES: &str = "https://coproduce.health/fhir/CodeSystem/role";
pub const TASKS: &str = "https://coproduce.health/fhir/CodeSystem/task";
pub const PLAN_CATEGORY: &str = "https://coproduce.health/fhir/CodeSystem/care-plan-category";

/// Which role the caller acts in, and so which side of the partnership they speak for.
pub fn role_of(caller: &Caller) -> Option<Role> {
    match &caller.actor.who {
        Who::Patient { .. } => Some(Role::Patient),
        Who::Family { .. } => Some(Role::Family),
        Who::TeamMember { role, .. } => Some(*role),
        _ => None,
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
