//! Required bindings: the codes an element bound to a value set with strength "required" may
//! hold, for every such element of R4 core whose value set R4 core itself enumerates
//! (`tools/gen-fhir-bindings.py` writes them to `data/r4-bindings.json`). Value sets that need
//! more than R4 core (MIME types, UCUM units, currencies) are not checked; extensible and
//! preferred bindings are not enforced.

use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "valueSets")]
    value_sets: HashMap<String, RawValueSet>,
    bindings: HashMap<String, HashMap<String, String>>,
}

#[derive(Deserialize)]
struct RawValueSet {
    name: String,
    codes: HashMap<String, Vec<String>>,
}

/// A value set's codes.
#[derive(Debug)]
pub struct ValueSet {
    pub url: String,
    pub name: String,
    /// Each code with its system.
    pairs: HashSet<(String, String)>,
    /// The codes alone, for a `code` element (its system is implied by the binding).
    codes: HashSet<String>,
    /// The codes in order, for a message.
    listed: Vec<String>,
}

impl ValueSet {
    /// Whether a `code` value is one of the set's.
    pub fn has_code(&self, code: &str) -> bool {
        self.codes.contains(code)
    }

    /// Whether a Coding's system and code are one of the set's.
    pub fn has_coding(&self, system: &str, code: &str) -> bool {
        self.pairs.contains(&(system.to_string(), code.to_string()))
    }

    /// The codes, for a message: all of them when there are few, else the first few.
    pub fn some_codes(&self) -> String {
        const SHOWN: usize = 12;
        let mut s = self
            .listed
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if self.listed.len() > SHOWN {
            s.push_str(&format!(" (and {} more)", self.listed.len() - SHOWN));
        }
        s
    }
}

struct Bindings {
    value_sets: HashMap<String, ValueSet>,
    by_type: HashMap<String, HashMap<String, String>>,
}

static BINDINGS: LazyLock<Bindings> = LazyLock::new(|| {
    let raw: Raw = serde_json::from_str(include_str!("../data/r4-bindings.json"))
        .expect("the bundled R4 bindings are valid JSON of the expected shape");
    let value_sets = raw
        .value_sets
        .into_iter()
        .map(|(url, vs)| {
            let mut listed: Vec<String> = vs.codes.values().flatten().cloned().collect();
            listed.sort();
            listed.dedup();
            let pairs = vs
                .codes
                .iter()
                .flat_map(|(system, codes)| codes.iter().map(|c| (system.clone(), c.clone())))
                .collect();
            let set = ValueSet {
                url: url.clone(),
                name: vs.name,
                pairs,
                codes: listed.iter().cloned().collect(),
                listed,
            };
            (url, set)
        })
        .collect();
    Bindings {
        value_sets,
        by_type: raw.bindings,
    }
});

/// The value set an element is bound to with strength "required", if R4 core enumerates it:
/// `type_name` as in the schema (a backbone element by its path), `element` its JSON name.
pub fn required(type_name: &str, element: &str) -> Option<&'static ValueSet> {
    let b = &*BINDINGS;
    let url = b.by_type.get(type_name)?.get(element)?;
    b.value_sets.get(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gender_status_and_backbone_elements_are_bound() {
        let gender = required("Patient", "gender").expect("Patient.gender is required-bound");
        assert!(gender.has_code("female") && !gender.has_code("nonsense"));
        assert_eq!(gender.name, "AdministrativeGender");
        assert!(required("Observation", "status").is_some());
        assert!(required("Bundle.entry.request", "method").is_some());
        // Extensible and preferred bindings are not enforced.
        assert!(required("Observation", "category").is_none());
        // MIME types need more than R4 core: not checked.
        assert!(required("Attachment", "contentType").is_none());
    }
}
