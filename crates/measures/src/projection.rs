//! The measure projection: each resource cut down to the elements the measures read, which
//! the store keeps per patient beside the full resources so that a population run reads a
//! few kilobytes per patient instead of every narrative, identifier and display text.
//!
//! Cutting is by element name at any depth, so a measure added later that reads another
//! element adds its name here and bumps [`VERSION`]; the store rebuilds its projection when
//! the version it was built with differs. The official test cases evaluate the same on the
//! projection as on the full resources (tests/official.rs), which is what keeps this list
//! complete.

use serde_json::{Map, Value};

/// The projection's version; the store rebuilds what it holds when this changes.
pub const VERSION: u32 = 5;

/// Elements kept wherever they appear.
const KEPT: &[&str] = &[
    "resourceType",
    "id",
    "status",
    "intent",
    "birthDate",
    "code",
    "coding",
    "system",
    "unit",
    "type",
    "class",
    "period",
    "start",
    "end",
    "high",
    "hospitalization",
    "dischargeDisposition",
    // AHRQ's PQIs: the listed diagnoses with their rank, the reason, the admission source.
    "diagnosis",
    "condition",
    "rank",
    "reasonCode",
    "admitSource",
    "encounter",
    "reference",
    "clinicalStatus",
    "verificationStatus",
    "component",
    "doNotPerform",
    "modifierExtension",
    "url",
    "authoredOn",
    "medicationReference",
    "medicationCodeableConcept",
    "codeCodeableConcept",
    "contained",
    "dosageInstruction",
    "timing",
    "repeat",
    "frequency",
    "frequencyMax",
    "periodUnit",
    "timeOfDay",
    "boundsPeriod",
    "doseAndRate",
    "doseRange",
    "doseQuantity",
    "dispenseRequest",
    "expectedSupplyDuration",
    "quantity",
    "numberOfRepeatsAllowed",
    "validityPeriod",
    // The partnership's scorecard (coproduce-app's care::partnership): a Task's deadline,
    // owner and completion; a reading's review and tag; a goal's story; a shared plan's
    // activities and their marks; the CollaboRATE answers; the patient's care team,
    // language and sex for the equity breakdowns. Of extensions only ours are kept.
    "meta",
    "lastUpdated",
    "tag",
    "extension",
    "restriction",
    "executionPeriod",
    "lastModified",
    "performerType",
    "issued",
    "lifecycleStatus",
    "note",
    "time",
    "authorReference",
    "questionnaire",
    "item",
    "linkId",
    "answer",
    "authored",
    "category",
    "activity",
    "detail",
    "progress",
    "scheduledTiming",
    "scheduledPeriod",
    "name",
    "gender",
    "communication",
    "language",
    "preferred",
];

/// Elements of which only some parts are read: a care-plan activity's marks are read for
/// their time alone (not who marked it or what they wrote).
const NARROWED: &[(&str, &[&str])] = &[("progress", &["time"])];

/// The extensions kept: ours, and the parts inside them (whose urls are relative).
const OURS: &str = "https://coproduce.health/";

fn kept_extension(e: &Value) -> bool {
    e["url"]
        .as_str()
        .is_some_and(|u| u.starts_with(OURS) || !u.contains(':'))
}

/// Choice elements (`effectiveDateTime`, `onsetPeriod`, `valueQuantity`, ...) kept by their
/// stem.
const KEPT_STEMS: &[&str] = &["effective", "onset", "abatement", "performed", "value"];

fn kept(key: &str) -> bool {
    KEPT.contains(&key) || KEPT_STEMS.iter().any(|s| key.starts_with(s))
}

/// A resource cut down to what the measures read.
pub fn project(resource: &Value) -> Value {
    cut(resource).unwrap_or_else(|| Value::Object(Map::new()))
}

/// An element cut down, or nothing when all it held was cut (an object or list that had
/// something and keeps nothing goes with it, rather than stay as `{}` or `[]`).
fn cut(v: &Value) -> Option<Value> {
    match v {
        Value::Object(o) if !o.is_empty() => {
            let kept: Map<String, Value> = o
                .iter()
                .filter(|(k, _)| kept(k))
                .filter_map(|(k, v)| {
                    let narrowed = NARROWED.iter().find(|(n, _)| n == k);
                    let v = match (k.as_str(), v, narrowed) {
                        ("extension", Value::Array(es), _) => {
                            cut_list(es.iter().filter(|e| kept_extension(e)))
                        }
                        (_, Value::Array(items), Some((_, parts))) => {
                            let kept: Vec<Value> = items
                                .iter()
                                .filter_map(|item| {
                                    let o = item.as_object()?;
                                    let only: Map<String, Value> = o
                                        .iter()
                                        .filter(|(k, _)| parts.contains(&k.as_str()))
                                        .map(|(k, v)| (k.clone(), v.clone()))
                                        .collect();
                                    (!only.is_empty()).then_some(Value::Object(only))
                                })
                                .collect();
                            (!kept.is_empty()).then_some(Value::Array(kept))
                        }
                        _ => cut(v),
                    };
                    Some((k.clone(), v?))
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) if !items.is_empty() => cut_list(items.iter()),
        other => Some(other.clone()),
    }
}

fn cut_list<'a>(items: impl Iterator<Item = &'a Value>) -> Option<Value> {
    let kept: Vec<Value> = items.filter_map(cut).collect();
    (!kept.is_empty()).then_some(Value::Array(kept))
}

/// A patient's projection: their resources, projected, one line per resource type: the
/// type, a tab, and that type's resources as a compact JSON list (which never holds a
/// newline). A reader finds a type by its line without scanning the JSON
/// ([`crate::PatientRecord::from_projection`]).
pub fn record<'a>(resources: impl IntoIterator<Item = &'a Value>) -> String {
    let mut projector = Projector::default();
    for r in resources {
        projector.add(r);
    }
    projector.finish()
}

/// A projection built one resource at a time ([`record`]'s text): each resource is projected
/// and written out as it comes, so a long record is never held in memory whole, parsed,
/// while its projection is made.
#[derive(Debug, Default)]
pub struct Projector {
    /// Each type's list so far (`[` and the items, unclosed), in the order the types came.
    lists: Vec<(String, String)>,
}

impl Projector {
    /// Adds one resource of the record.
    pub fn add(&mut self, resource: &Value) {
        let rt = resource["resourceType"].as_str().unwrap_or_default();
        let k = match self.lists.iter().position(|(t, _)| t == rt) {
            Some(k) => k,
            None => {
                self.lists.push((rt.to_string(), String::from("[")));
                self.lists.len() - 1
            }
        };
        let list = &mut self.lists[k].1;
        if list.len() > 1 {
            list.push(',');
        }
        list.push_str(&project(resource).to_string());
    }

    /// The projection's text.
    pub fn finish(self) -> String {
        let mut out = String::new();
        for (rt, list) in &self.lists {
            out.push_str(rt);
            out.push('\t');
            out.push_str(list);
            out.push_str("]\n");
        }
        out
    }
}

/// A projection as the store keeps it: LZ4-compressed (JSON with its repeated code system
/// URLs shrinks about fivefold, and decompresses faster than the database reads it).
pub fn encode(record: &str) -> Vec<u8> {
    encode_row("", record)
}

/// A projection row with lines of its own before the resources (what a workflow derives
/// from the whole record, `coproduce_store::RecordLine`): the length of the compressed lines
/// (4 bytes, little-endian), the lines, then the resources, each compressed apart so that a
/// reader of either part decompresses only that part.
pub fn encode_row(lines: &str, record: &str) -> Vec<u8> {
    let head = if lines.is_empty() {
        Vec::new()
    } else {
        lz4_flex::compress_prepend_size(lines.as_bytes())
    };
    let tail = lz4_flex::compress_prepend_size(record.as_bytes());
    let mut out = Vec::with_capacity(4 + head.len() + tail.len());
    out.extend_from_slice(&u32::try_from(head.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&tail);
    out
}

/// The row's two compressed parts: its own lines and the resources.
fn parts(stored: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (len, rest) = stored
        .split_first_chunk::<4>()
        .ok_or("it is shorter than its header")?;
    let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|e| e.to_string())?;
    if len > rest.len() {
        return Err("its lines run past its end".into());
    }
    Ok(rest.split_at(len))
}

fn text(part: &[u8]) -> Result<String, String> {
    if part.is_empty() {
        return Ok(String::new());
    }
    let bytes = lz4_flex::decompress_size_prepended(part)
        .map_err(|e| format!("it does not decompress: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("it is not UTF-8: {e}"))
}

/// The projection text (the resources) back from what the store keeps.
pub fn decode(stored: &[u8]) -> Result<String, String> {
    let (_, resources) = parts(stored)?;
    if resources.is_empty() {
        return Err("it holds no resources part".into());
    }
    text(resources)
}

/// The row's own lines (empty for a row written without any), without the resources.
pub fn decode_lines(stored: &[u8]) -> Result<String, String> {
    text(parts(stored)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_survives_encoding_and_damage_is_reported() {
        let text = record([&json!({"resourceType": "Patient", "id": "p"})]);
        assert_eq!(
            text,
            "Patient\t[{\"resourceType\":\"Patient\",\"id\":\"p\"}]\n"
        );
        assert_eq!(decode(&encode(&text)).unwrap(), text);
        assert_eq!(decode_lines(&encode(&text)).unwrap(), "");
        let row = encode_row("~mine/1\t[1]\n", &text);
        assert_eq!(decode(&row).unwrap(), text);
        assert_eq!(decode_lines(&row).unwrap(), "~mine/1\t[1]\n");
        for stored in [encode(&text), row] {
            let mut damaged = stored.clone();
            damaged.truncate(damaged.len() - 3);
            assert!(decode(&damaged).is_err());
            assert!(decode(&stored[..3]).is_err());
            let mut long = stored.clone();
            long[..4].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(decode(&long).is_err() && decode_lines(&long).is_err());
        }
    }

    #[test]
    fn a_record_lists_each_type_once_in_the_order_types_first_came() {
        let text = record([
            &json!({"resourceType": "Observation", "id": "o1", "text": {"div": "<div>x</div>"}}),
            &json!({"resourceType": "Patient", "id": "p"}),
            &json!({"resourceType": "Observation", "id": "o2"}),
        ]);
        assert_eq!(
            text,
            "Observation\t[{\"resourceType\":\"Observation\",\"id\":\"o1\"},\
             {\"resourceType\":\"Observation\",\"id\":\"o2\"}]\n\
             Patient\t[{\"resourceType\":\"Patient\",\"id\":\"p\"}]\n"
        );
        assert_eq!(record(std::iter::empty()), "");
    }

    #[test]
    fn narrative_identifiers_and_displays_go_and_what_measures_read_stays() {
        let obs = json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "meta": {"profile": ["x"]}, "text": {"div": "<div>long</div>"},
            "identifier": [{"value": "abc"}],
            "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "HbA1c"}], "text": "HbA1c"},
            "effectiveDateTime": "2026-03-01",
            "valueQuantity": {"value": 9.5, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
        });
        // A meta holding only a profile goes with it, not left as `{}`.
        assert_eq!(
            project(&obs),
            json!({
                "resourceType": "Observation", "id": "o1", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "effectiveDateTime": "2026-03-01",
                "valueQuantity": {"value": 9.5, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
            })
        );
    }

    #[test]
    fn only_our_extensions_stay_with_their_parts() {
        let task = json!({
            "resourceType": "Task", "id": "t",
            "meta": {"lastUpdated": "2026-03-01T10:00:00Z", "versionId": "2"},
            "extension": [
                {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                 "extension": [{"url": "text", "valueString": "long"}]},
                {"url": "https://coproduce.health/fhir/StructureDefinition/escalation",
                 "extension": [{"url": "step", "extension": [{"url": "role", "valueCode": "nurse"}]}]}
            ]
        });
        assert_eq!(
            project(&task),
            json!({
                "resourceType": "Task", "id": "t",
                "meta": {"lastUpdated": "2026-03-01T10:00:00Z"},
                "extension": [
                    {"url": "https://coproduce.health/fhir/StructureDefinition/escalation",
                     "extension": [{"url": "step", "extension": [{"url": "role", "valueCode": "nurse"}]}]}
                ]
            })
        );
        let plan = json!({"resourceType": "CarePlan", "id": "c", "activity": [{"progress": [
            {"authorReference": {"reference": "Patient/p"}, "time": "2026-03-01T10:00:00Z", "text": "done"}
        ]}]});
        assert_eq!(
            project(&plan),
            json!({"resourceType": "CarePlan", "id": "c", "activity": [{"progress": [
                {"time": "2026-03-01T10:00:00Z"}
            ]}]})
        );
        let theirs = json!({"resourceType": "Patient", "id": "p",
            "extension": [{"url": "http://example.org/x", "valueString": "y"}]});
        assert_eq!(
            project(&theirs),
            json!({"resourceType": "Patient", "id": "p"})
        );
    }
}
