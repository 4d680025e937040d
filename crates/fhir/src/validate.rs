//! Structural validation of FHIR R4 JSON against the R4 definitions: property names, JSON
//! types, cardinality, primitive formats, choice elements, narrative safety and the Bundle
//! rules that protect a store (unique, absolute fullUrls). Profiles and terminology are not
//! checked here.

use crate::bindings;
use crate::outcome::{IssueCode, OperationOutcome};
use crate::primitives;
use crate::schema::{Kind, Schema, r4};
use crate::xhtml;
use base64::Engine;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::LazyLock;

/// Stop collecting after this many issues: one bad file should not produce megabytes of errors.
const MAX_ISSUES: usize = 50;

static EMBEDDED_HTML: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)<\s*/?\s*(script|iframe|object|embed|form|svg|style|link|meta|base)\b|javascript\s*:",
    )
    .expect("valid pattern")
});

/// Validates one resource (any R4 resource type), collecting every issue found.
pub fn validate_resource(v: &Value) -> Result<(), OperationOutcome> {
    let mut w = Walker {
        schema: r4(),
        out: OperationOutcome::default(),
    };
    w.resource(v, None);
    if w.out.is_empty() { Ok(()) } else { Err(w.out) }
}

struct Walker {
    schema: &'static Schema,
    out: OperationOutcome,
}

impl Walker {
    fn err(&mut self, code: IssueCode, path: &str, msg: impl Into<String>) {
        if self.out.issues.len() < MAX_ISSUES {
            self.out.push(code, path, msg);
        }
    }

    /// A resource at `path` (None at the top: the path starts with the resource type).
    fn resource(&mut self, v: &Value, path: Option<&str>) {
        let Some(obj) = v.as_object() else {
            self.err(
                IssueCode::Structure,
                path.unwrap_or(""),
                "a resource must be a JSON object",
            );
            return;
        };
        let Some(rt) = obj.get("resourceType").and_then(Value::as_str) else {
            self.err(
                IssueCode::Structure,
                path.unwrap_or(""),
                "resourceType is missing",
            );
            return;
        };
        if !self.schema.is_resource_type(rt) {
            self.err(
                IssueCode::NotSupported,
                path.unwrap_or(""),
                format!("'{rt}' is not a FHIR R4 resource type"),
            );
            return;
        }
        let path = path.map_or_else(|| rt.to_string(), str::to_string);
        self.complex(rt, obj, &path, true);
        if rt == "Bundle" {
            self.bundle_rules(obj, &path);
        }
    }

    fn complex(&mut self, tname: &str, obj: &Map<String, Value>, path: &str, is_resource: bool) {
        let schema = self.schema;
        let Some(td) = schema.types.get(tname) else {
            self.err(
                IssueCode::NotSupported,
                path,
                format!("unknown type {tname}"),
            );
            return;
        };
        if obj.is_empty() {
            self.err(IssueCode::Structure, path, "an object must not be empty");
            return;
        }
        for (key, val) in obj {
            if is_resource && key == "resourceType" {
                continue;
            }
            let child = format!("{path}.{key}");
            if let Some(base) = key.strip_prefix('_') {
                match td.elements.get(base) {
                    Some(el) if self.is_primitive(el.types.first()) => {
                        self.primitive_extension(val, el.array, &child);
                    }
                    _ => self.err(
                        IssueCode::Structure,
                        &child,
                        format!("unrecognized property '{key}'"),
                    ),
                }
                continue;
            }
            let Some(el) = td.elements.get(key.as_str()) else {
                self.err(
                    IssueCode::Structure,
                    &child,
                    format!("unrecognized property '{key}'"),
                );
                continue;
            };
            let ty = el.types.first().map(String::as_str).unwrap_or("string");
            let shadow = obj.get(&format!("_{key}"));
            if let Some(vs) = bindings::required(tname, key) {
                let items: Vec<&Value> = match val.as_array() {
                    Some(items) => items.iter().collect(),
                    None => vec![val],
                };
                for (i, item) in items.into_iter().enumerate() {
                    let at = if el.array {
                        format!("{child}[{i}]")
                    } else {
                        child.clone()
                    };
                    self.bound(ty, item, vs, &at);
                }
            }
            if el.array {
                let Some(items) = val.as_array() else {
                    self.err(
                        IssueCode::Structure,
                        &child,
                        format!(
                            "the property {key} must be a JSON array, not {}",
                            primitives::describe(val)
                        ),
                    );
                    continue;
                };
                if items.is_empty() {
                    self.err(
                        IssueCode::Structure,
                        &child,
                        "an array must not be empty; leave the property out instead",
                    );
                    continue;
                }
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{child}[{i}]");
                    if item.is_null() {
                        let has_ext = shadow
                            .and_then(|s| s.as_array())
                            .and_then(|s| s.get(i))
                            .is_some_and(|s| !s.is_null());
                        if !has_ext {
                            self.err(
                                IssueCode::Structure,
                                &item_path,
                                "null is only allowed where the matching _ array has an extension",
                            );
                        }
                        continue;
                    }
                    self.value(ty, item, &item_path);
                }
            } else {
                if val.is_array() {
                    self.err(
                        IssueCode::Structure,
                        &child,
                        format!("the property {key} must be a single value, not an array"),
                    );
                    continue;
                }
                self.value(ty, val, &child);
            }
        }
        // Required elements and choice groups.
        for (name, el) in &td.elements {
            if el.min > 0
                && el.choice.is_none()
                && !obj.contains_key(name.as_str())
                && !obj.contains_key(&format!("_{name}"))
            {
                self.err(
                    IssueCode::Required,
                    &format!("{path}.{name}"),
                    format!("{tname}.{name} is required"),
                );
            }
        }
        if let Some(groups) = schema.choices.get(tname) {
            for (group, min) in groups {
                let present: Vec<&String> = obj
                    .keys()
                    .filter(|k| {
                        td.elements
                            .get(k.as_str())
                            .and_then(|e| e.choice.as_deref())
                            == Some(group.as_str())
                    })
                    .collect();
                if present.len() > 1 {
                    self.err(
                        IssueCode::Structure,
                        &format!("{path}.{group}[x]"),
                        format!("only one of {group}[x] may be given, found {present:?}"),
                    );
                } else if present.is_empty() && *min > 0 {
                    self.err(
                        IssueCode::Required,
                        &format!("{path}.{group}[x]"),
                        format!("{tname}.{group}[x] is required"),
                    );
                }
            }
        }
        self.type_rules(tname, obj, path);
    }

    /// A code, Coding or CodeableConcept of an element with a required binding: the code (or,
    /// for a CodeableConcept, one of its codings) must be from the value set. A value of the
    /// wrong shape is left to the type checks.
    fn bound(&mut self, ty: &str, v: &Value, vs: &bindings::ValueSet, path: &str) {
        let refuse = |what: String| {
            format!(
                "{what} is not in the value set {} ({}) that this element requires: use one of {}",
                vs.name,
                vs.url,
                vs.some_codes()
            )
        };
        let coding_ok = |c: &Value| {
            matches!(
                (c["system"].as_str(), c["code"].as_str()),
                (Some(s), Some(code)) if vs.has_coding(s, code)
            )
        };
        match ty {
            "code" => {
                if let Some(code) = v.as_str()
                    && !vs.has_code(code)
                {
                    self.err(IssueCode::CodeInvalid, path, refuse(format!("'{code}'")));
                }
            }
            "Coding" if v.is_object() && !coding_ok(v) => {
                let shown = format!(
                    "'{}|{}'",
                    v["system"].as_str().unwrap_or(""),
                    v["code"].as_str().unwrap_or("")
                );
                self.err(IssueCode::CodeInvalid, path, refuse(shown));
            }
            "CodeableConcept" if v.is_object() => {
                let codings = v["coding"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                if !codings.iter().any(coding_ok) {
                    let shown = if codings.is_empty() {
                        "a concept with no coding".to_string()
                    } else {
                        "none of its codings".to_string()
                    };
                    self.err(IssueCode::CodeInvalid, path, refuse(shown));
                }
            }
            _ => {}
        }
    }

    fn is_primitive(&self, ty: Option<&String>) -> bool {
        ty.and_then(|t| self.schema.types.get(t))
            .is_some_and(|t| t.kind == Kind::Primitive)
    }

    fn value(&mut self, ty: &str, v: &Value, path: &str) {
        if ty == "Resource" {
            self.resource(v, Some(path));
            return;
        }
        let schema = self.schema;
        let Some(td) = schema.types.get(ty) else {
            self.err(IssueCode::NotSupported, path, format!("unknown type {ty}"));
            return;
        };
        if td.kind == Kind::Primitive {
            if let Err(msg) = primitives::check(ty, v) {
                self.err(IssueCode::Value, path, msg);
                return;
            }
            if let Some(s) = v.as_str() {
                if ty == "xhtml" {
                    if let Err(msg) = xhtml::check_narrative(s) {
                        self.err(IssueCode::Security, path, msg);
                    }
                } else if (ty == "string" || ty == "markdown") && EMBEDDED_HTML.is_match(s) {
                    self.err(
                        IssueCode::Security,
                        path,
                        "the text contains what looks like active HTML (script, frame, form or javascript:), which is not allowed",
                    );
                }
            }
            return;
        }
        match v.as_object() {
            Some(obj) => self.complex(ty, obj, path, false),
            None => self.err(
                IssueCode::Structure,
                path,
                format!(
                    "expected an object ({ty}), found {}",
                    primitives::describe(v)
                ),
            ),
        }
    }

    /// `_name`: the id and extensions of a primitive (an array of them for a repeating one).
    fn primitive_extension(&mut self, v: &Value, array: bool, path: &str) {
        if array {
            match v.as_array() {
                Some(items) if !items.is_empty() => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_null() {
                            self.value("Element", item, &format!("{path}[{i}]"));
                        }
                    }
                }
                _ => self.err(
                    IssueCode::Structure,
                    path,
                    "expected a non-empty JSON array",
                ),
            }
        } else {
            self.value("Element", v, path);
        }
    }

    /// Invariants of a few data types that cost nothing to check and guard stored data.
    fn type_rules(&mut self, tname: &str, obj: &Map<String, Value>, path: &str) {
        match tname {
            "Period" => {
                let start = obj.get("start").and_then(Value::as_str);
                let end = obj.get("end").and_then(Value::as_str);
                if let (Some(s), Some(e)) = (start, end)
                    && let (Some((s_lo, _)), Some((_, e_hi))) = (
                        primitives::date_range_millis(s),
                        primitives::date_range_millis(e),
                    )
                    && s_lo > e_hi
                {
                    self.err(
                        IssueCode::Invariant,
                        path,
                        "per-1: the period's start must not be after its end",
                    );
                }
            }
            "Extension" => {
                if !obj.contains_key("url") {
                    return; // reported as required
                }
                let has_value = obj.keys().any(|k| k.starts_with("value"));
                let has_ext = obj.contains_key("extension");
                if has_value == has_ext {
                    self.err(
                        IssueCode::Invariant,
                        path,
                        "ext-1: an extension must have either a value or nested extensions, not both",
                    );
                }
            }
            "Attachment" => {
                if let (Some(data), Some(size)) = (
                    obj.get("data").and_then(Value::as_str),
                    obj.get("size").and_then(Value::as_u64),
                ) {
                    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact)
                        && bytes.len() as u64 != size
                    {
                        self.err(
                            IssueCode::Invariant,
                            &format!("{path}.size"),
                            format!(
                                "the stated size {size} does not match the data's size {}",
                                bytes.len()
                            ),
                        );
                    }
                }
            }
            "RiskAssessment.prediction" => {
                if let Some(p) = obj.get("probabilityDecimal").and_then(Value::as_f64)
                    && p > 100.0
                {
                    self.err(
                        IssueCode::Invariant,
                        &format!("{path}.probabilityDecimal"),
                        "ras-2: a probability must not be above 100",
                    );
                }
            }
            _ => {}
        }
    }

    fn bundle_rules(&mut self, obj: &Map<String, Value>, path: &str) {
        let btype = obj.get("type").and_then(Value::as_str).unwrap_or("");
        let self_links = obj
            .get("link")
            .and_then(Value::as_array)
            .map_or(0, |l| l.iter().filter(|l| l["relation"] == "self").count());
        if self_links > 1 {
            self.err(
                IssueCode::Invariant,
                &format!("{path}.link"),
                "the link relation 'self' may occur only once",
            );
        }
        let Some(entries) = obj.get("entry").and_then(Value::as_array) else {
            return;
        };
        let mut seen: HashSet<(String, Option<String>)> = HashSet::new();
        for (i, entry) in entries.iter().enumerate() {
            let epath = format!("{path}.entry[{i}]");
            if matches!(btype, "transaction" | "batch") && entry.get("request").is_none() {
                self.err(
                    IssueCode::Required,
                    &format!("{epath}.request"),
                    "bdl-3: every entry of a batch or transaction needs a request",
                );
            }
            let Some(full_url) = entry.get("fullUrl").and_then(Value::as_str) else {
                continue;
            };
            // An absolute URI has a scheme (RFC 3986): letters, then ':'.
            let absolute = full_url.split_once(':').is_some_and(|(scheme, _)| {
                scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            });
            if !absolute {
                self.err(
                    IssueCode::Value,
                    &format!("{epath}.fullUrl"),
                    format!("the fullUrl must be an absolute URL, not '{full_url}'"),
                );
            }
            let version = entry
                .pointer("/resource/meta/versionId")
                .and_then(Value::as_str)
                .map(str::to_string);
            if btype != "history" && !seen.insert((full_url.to_string(), version)) {
                self.err(
                    IssueCode::Duplicate,
                    &format!("{epath}.fullUrl"),
                    format!("bdl-7: the fullUrl '{full_url}' occurs more than once in the Bundle"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issues(v: Value) -> Vec<String> {
        match validate_resource(&v) {
            Ok(()) => vec![],
            Err(o) => o
                .issues
                .iter()
                .map(|i| {
                    format!(
                        "{} {}",
                        i.expression.clone().unwrap_or_default(),
                        i.diagnostics
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_plain_patient_is_valid() {
        let p = json!({"resourceType": "Patient", "id": "p1", "birthDate": "1960-04-01",
            "name": [{"family": "Silva", "given": ["Ana"]}], "_gender": {"extension": [
            {"url": "http://example.org/x", "valueString": "y"}]}});
        assert_eq!(issues(p), Vec::<String>::new());
    }

    #[test]
    fn errors_name_the_path_and_the_reason() {
        let errs = issues(json!({"resourceType": "Patient", "birthDate": "1960-13-01"}));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("Patient.birthDate "), "{errs:?}");
        let errs = issues(json!({"resourceType": "Patient", "nickname": "x"}));
        assert!(
            errs[0].contains("unrecognized property 'nickname'"),
            "{errs:?}"
        );
        let errs = issues(json!({"resourceType": "Encounter", "status": "finished",
            "class": {"code": "AMB"}, "reasonCode": {"text": "x"}}));
        assert!(errs[0].contains("must be a JSON array"), "{errs:?}");
    }

    #[test]
    fn required_and_choice_rules() {
        let errs = issues(json!({"resourceType": "Observation", "status": "final"}));
        assert!(
            errs.iter()
                .any(|e| e.contains("Observation.code is required")),
            "{errs:?}"
        );
        let errs = issues(json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"}, "valueString": "a", "valueBoolean": true}));
        assert!(
            errs.iter().any(|e| e.contains("only one of value[x]")),
            "{errs:?}"
        );
    }

    #[test]
    fn codes_outside_a_required_binding_are_refused_with_the_value_set() {
        let errs = issues(json!({"resourceType": "Patient", "gender": "nonsense"}));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("Patient.gender"), "{errs:?}");
        assert!(errs[0].contains("'nonsense'"), "{errs:?}");
        assert!(errs[0].contains("AdministrativeGender"), "{errs:?}");
        assert!(errs[0].contains("female, male, other, unknown"), "{errs:?}");
        assert!(issues(json!({"resourceType": "Patient", "gender": "female"})).is_empty());
        // In a backbone element, and in a Bundle's own elements.
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"},
            "referenceRange": [{"low": {"value": 1, "comparator": "about"}}]});
        let errs = issues(obs);
        assert!(
            errs.iter()
                .any(|e| e.contains("comparator") && e.contains("'about'")),
            "{errs:?}"
        );
        let bundle = json!({"resourceType": "Bundle", "type": "pile"});
        assert!(issues(bundle).iter().any(|e| e.contains("'pile'")));
    }

    #[test]
    fn unknown_resource_types_are_refused() {
        let errs = issues(json!({"resourceType": "Bot"}));
        assert!(errs[0].contains("not a FHIR R4 resource type"));
    }
}
