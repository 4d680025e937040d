//! Search-parameter extraction: the index rows a resource contributes, computed from the R4
//! SearchParameter expressions (the simple-path ones) when the resource is written.

use crate::primitives::date_range_millis;
use crate::resource::Resource;
use crate::schema::{SearchType, r4};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub param: String,
    pub system: Option<String>,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceRow {
    pub param: String,
    pub target_type: String,
    pub target_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRow {
    pub param: String,
    /// Unix milliseconds, inclusive.
    pub low: i64,
    pub high: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringRow {
    pub param: String,
    /// Lower-cased, for case-insensitive prefix search.
    pub value: String,
}

/// Every index row of one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchIndex {
    pub tokens: Vec<TokenRow>,
    pub references: Vec<ReferenceRow>,
    pub dates: Vec<DateRow>,
    pub strings: Vec<StringRow>,
}

/// Columns of the resource table itself, not index rows.
const COLUMN_PARAMS: &[&str] = &["_id", "_lastUpdated"];

pub fn extract(resource: &Resource) -> SearchIndex {
    let mut out = SearchIndex::default();
    let Some(params) = r4().search_params(resource.type_name()) else {
        return out;
    };
    let root = resource.json();
    for (name, sp) in params {
        if COLUMN_PARAMS.contains(&name.as_str()) {
            continue;
        }
        for path in &sp.paths {
            let (path, target) = match path.split_once('@') {
                Some((p, t)) => (p, Some(t)),
                None => (path.as_str(), None),
            };
            let segs: Vec<&str> = path.split('.').collect();
            let mut values = Vec::new();
            collect_in(root, &segs, &mut values);
            for v in values {
                index_value(&mut out, name, sp.kind, target, v);
            }
        }
    }
    out.tokens
        .sort_by(|a, b| (&a.param, &a.system, &a.code).cmp(&(&b.param, &b.system, &b.code)));
    out.tokens.dedup();
    out.references.sort_by(|a, b| {
        (&a.param, &a.target_type, &a.target_id).cmp(&(&b.param, &b.target_type, &b.target_id))
    });
    out.references.dedup();
    out.strings
        .sort_by(|a, b| (&a.param, &a.value).cmp(&(&b.param, &b.value)));
    out.strings.dedup();
    out
}

/// Whether records of this type belong in a patient's compartment (clinical records), as
/// opposed to shared reference data such as Practitioner, Organization or Measure.
pub fn is_clinical(resource_type: &str) -> bool {
    resource_type == "Patient" || r4().compartment.contains_key(resource_type)
}

/// The id of the Patient whose compartment the resource is in, if any (the Patient itself
/// for a Patient). The first compartment parameter that names a Patient wins.
pub fn patient_compartment(resource: &Resource, index: &SearchIndex) -> Option<String> {
    if resource.type_name() == "Patient" {
        return resource.id().map(str::to_string);
    }
    let params = r4().compartment.get(resource.type_name())?;
    params.iter().find_map(|p| {
        index
            .references
            .iter()
            .find(|r| &r.param == p && r.target_type == "Patient")
            .map(|r| r.target_id.clone())
    })
}

fn collect<'a>(v: &'a Value, segs: &[&str], out: &mut Vec<&'a Value>) {
    if let Value::Array(items) = v {
        for item in items {
            collect(item, segs, out);
        }
        return;
    }
    if segs.is_empty() {
        out.push(v);
        return;
    }
    if let Value::Object(obj) = v {
        collect_in(obj, segs, out);
    }
}

fn collect_in<'a>(
    obj: &'a serde_json::Map<String, Value>,
    segs: &[&str],
    out: &mut Vec<&'a Value>,
) {
    let Some((first, rest)) = segs.split_first() else {
        return;
    };
    if let Some(child) = obj.get(*first) {
        collect(child, rest, out);
        return;
    }
    // A choice element: `effective` matches `effectiveDateTime`, `effectivePeriod`...
    for (k, child) in obj {
        if let Some(suffix) = k.strip_prefix(first)
            && suffix.starts_with(|c: char| c.is_ascii_uppercase())
            && is_type_name(suffix)
        {
            collect(child, rest, out);
        }
    }
}

fn is_type_name(suffix: &str) -> bool {
    let types = &r4().types;
    if types.contains_key(suffix) {
        return true;
    }
    let mut lower = suffix.to_string();
    lower[..1].make_ascii_lowercase();
    types.contains_key(&lower)
}

fn index_value(
    out: &mut SearchIndex,
    param: &str,
    kind: SearchType,
    target: Option<&str>,
    v: &Value,
) {
    match kind {
        SearchType::Token | SearchType::Uri => token_values(out, param, v),
        SearchType::Reference => {
            if let Some((t, id)) = v
                .get("reference")
                .and_then(Value::as_str)
                .and_then(split_reference)
                && target.is_none_or(|want| want == t)
            {
                out.references.push(ReferenceRow {
                    param: param.into(),
                    target_type: t.into(),
                    target_id: id.into(),
                });
            }
        }
        SearchType::Date => {
            let mut push = |low: i64, high: i64| {
                out.dates.push(DateRow {
                    param: param.into(),
                    low,
                    high,
                })
            };
            match v {
                Value::String(s) => {
                    if let Some((lo, hi)) = date_range_millis(s) {
                        push(lo, hi);
                    }
                }
                Value::Object(o) => {
                    if o.contains_key("start") || o.contains_key("end") {
                        let lo = o
                            .get("start")
                            .and_then(Value::as_str)
                            .and_then(date_range_millis)
                            .map_or(i64::MIN, |r| r.0);
                        let hi = o
                            .get("end")
                            .and_then(Value::as_str)
                            .and_then(date_range_millis)
                            .map_or(i64::MAX, |r| r.1);
                        push(lo, hi);
                    } else if let Some(events) = o.get("event").and_then(Value::as_array) {
                        for e in events.iter().filter_map(Value::as_str) {
                            if let Some((lo, hi)) = date_range_millis(e) {
                                push(lo, hi);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        SearchType::String => string_values(out, param, v),
        SearchType::Quantity | SearchType::Number => {}
    }
}

fn token_values(out: &mut SearchIndex, param: &str, v: &Value) {
    let mut push = |system: Option<&str>, code: &str| {
        out.tokens.push(TokenRow {
            param: param.into(),
            system: system.map(str::to_string),
            code: code.into(),
        })
    };
    match v {
        Value::String(s) => push(None, s),
        Value::Bool(b) => push(None, if *b { "true" } else { "false" }),
        Value::Object(o) => {
            if let Some(codings) = o.get("coding").and_then(Value::as_array) {
                for c in codings {
                    if let Some(code) = c.get("code").and_then(Value::as_str) {
                        push(c.get("system").and_then(Value::as_str), code);
                    }
                }
            } else if let Some(code) = o.get("code").and_then(Value::as_str) {
                push(o.get("system").and_then(Value::as_str), code);
            } else if let Some(value) = o.get("value").and_then(Value::as_str) {
                push(o.get("system").and_then(Value::as_str), value);
            }
        }
        _ => {}
    }
}

fn string_values(out: &mut SearchIndex, param: &str, v: &Value) {
    let mut push = |s: &str| {
        out.strings.push(StringRow {
            param: param.into(),
            value: normalize(s),
        })
    };
    match v {
        Value::String(s) => push(s),
        Value::Object(o) => {
            for key in [
                "text",
                "family",
                "given",
                "prefix",
                "suffix",
                "line",
                "city",
                "district",
                "state",
                "postalCode",
                "country",
            ] {
                match o.get(key) {
                    Some(Value::String(s)) => push(s),
                    Some(Value::Array(items)) => {
                        items.iter().filter_map(Value::as_str).for_each(&mut push)
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Lower-cases for case-insensitive matching.
pub fn normalize(s: &str) -> String {
    s.trim().to_lowercase()
}

/// `Patient/123`, `http://x/fhir/Patient/123` or `Patient/123/_history/2` -> (`Patient`, `123`).
pub fn split_reference(reference: &str) -> Option<(&str, &str)> {
    let r = match reference.find("/_history/") {
        Some(i) => &reference[..i],
        None => reference,
    };
    let mut parts = r.rsplitn(3, '/');
    let id = parts.next()?;
    let ty = parts.next()?;
    (r4().is_resource_type(ty) && crate::primitives::is_valid_id(id)).then_some((ty, id))
}

/// The code system of confidentiality labels (`meta.security`).
pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

/// The code system of coproduce's own sensitivity labels (`meta.security`).
pub const SENSITIVITY_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/sensitivity";
/// The label on health-related social needs (screenings, social-needs concerns, community
/// referrals): a family member sees them only through a grant that covers social needs.
pub const SOCIAL_NEEDS_LABEL: &str = "social-needs";

/// A stored record's labels as bits: [`LABEL_RESTRICTED`] and [`LABEL_SOCIAL_NEEDS`].
pub const LABEL_RESTRICTED: i64 = 1;
pub const LABEL_SOCIAL_NEEDS: i64 = 2;

/// The labels the access policy filters on, as the bits the store keeps beside a record.
pub fn labels(resource: &serde_json::Map<String, Value>) -> i64 {
    let mut bits = 0;
    if is_restricted(resource) {
        bits |= LABEL_RESTRICTED;
    }
    if is_social_needs(resource) {
        bits |= LABEL_SOCIAL_NEEDS;
    }
    bits
}

/// Is the resource labelled as health-related social needs?
pub fn is_social_needs(resource: &serde_json::Map<String, Value>) -> bool {
    security_labels(resource)
        .any(|l| l["system"] == SENSITIVITY_SYSTEM && l["code"] == SOCIAL_NEEDS_LABEL)
}

fn security_labels(resource: &serde_json::Map<String, Value>) -> impl Iterator<Item = &Value> {
    resource
        .get("meta")
        .and_then(|m| m["security"].as_array())
        .into_iter()
        .flatten()
}

/// Is the resource labelled restricted (`meta.security` v3-Confidentiality R): confidential
/// to the patient, as an adolescent's record is from their parents?
pub fn is_restricted(resource: &serde_json::Map<String, Value>) -> bool {
    security_labels(resource).any(|l| l["system"] == CONFIDENTIALITY_SYSTEM && l["code"] == "R")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_resource;

    #[test]
    fn an_observation_is_indexed_by_patient_code_and_date() {
        let r = parse_resource(
            br#"{"resourceType":"Observation","id":"o1","status":"final",
            "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
            "code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},
            "subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-03-01",
            "valueQuantity":{"value":7.1,"unit":"%"}}"#,
        )
        .unwrap();
        let idx = extract(&r);
        assert!(idx.tokens.iter().any(|t| t.param == "code"
            && t.code == "4548-4"
            && t.system.as_deref() == Some("http://loinc.org")));
        assert!(
            idx.tokens
                .iter()
                .any(|t| t.param == "status" && t.code == "final")
        );
        assert!(
            idx.tokens
                .iter()
                .any(|t| t.param == "category" && t.code == "laboratory")
        );
        assert!(
            idx.references
                .iter()
                .any(|r| r.param == "patient" && r.target_id == "p1")
        );
        assert!(idx.dates.iter().any(|d| d.param == "date"));
        assert_eq!(patient_compartment(&r, &idx).as_deref(), Some("p1"));
    }

    #[test]
    fn references_are_split() {
        assert_eq!(split_reference("Patient/1"), Some(("Patient", "1")));
        assert_eq!(
            split_reference("http://x/fhir/Patient/1/_history/2"),
            Some(("Patient", "1"))
        );
        assert_eq!(split_reference("urn:uuid:abc"), None);
        assert_eq!(split_reference("#contained"), None);
    }
}
