//! The readings' rules on every write, registered with the FHIR API and the importer: a
//! reading with an impossible value or a unit its measure does not use is refused, and a
//! reading the patient's side creates or changes waits for the team's review, on every path (the app's
//! forms, a CSV upload, the FHIR interactions, Bundle entries and imports alike).

use super::*;
use crate::fhir_api::{Write, WriteRule, invalid};
use coproduce_fhir::{IssueCode, Resource, parse_resource_value};

/// The rules the care plan adds to writes.
pub fn write_rules() -> Vec<Arc<dyn WriteRule>> {
    vec![Arc::new(ReadingRules)]
}

struct ReadingRules;

impl WriteRule for ReadingRules {
    fn resource_type(&self) -> &'static str {
        "Observation"
    }

    fn check(
        &self,
        write: &Write<'_>,
        resource: Resource,
    ) -> std::result::Result<Resource, AppError> {
        if let Some(why) = implausible(resource.json()) {
            return Err(invalid(
                IssueCode::Invariant,
                "Observation.value[x]",
                why.to_string(),
            ));
        }
        // A reading the patient's side creates or changes through the API waits for the
        // team's review, as one entered in the app does: the side cannot sign off its own
        // reading (a review it writes is dropped), and a changed reading is reviewed afresh.
        let patient_side = matches!(
            write.caller.actor.who,
            Who::Patient { .. } | Who::Family { .. }
        );
        if !patient_side {
            return Ok(resource);
        }
        let mut v = resource.to_value();
        if reading_code(&v).is_none() {
            return Ok(resource);
        }
        if let Some(exts) = v.get_mut("extension").and_then(Value::as_array_mut) {
            exts.retain(|e| e["url"] != ext("reading-review"));
            if exts.is_empty()
                && let Some(o) = v.as_object_mut()
            {
                o.remove("extension");
            }
        }
        mark_unreviewed(&mut v);
        Ok(parse_resource_value(v)?)
    }
}
