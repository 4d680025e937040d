//! Reading FHIR in bulk: NDJSON line by line, and the entries of Bundles with their
//! `urn:uuid:` references resolved to `Type/id`.

use crate::json::{StrictValue, parse_strict};
use crate::outcome::{IssueCode, OperationOutcome};
use crate::primitives::is_valid_id;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Map;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;
use std::io::Read;

/// One resource read from a source, or why it could not be read, with where it came from
/// (`file:line` for NDJSON, `file#entry[i]` for a Bundle).
#[derive(Debug)]
pub struct SourceItem {
    pub location: String,
    pub resource: Result<Value, OperationOutcome>,
    /// Set when the item is deliberately not imported, with the reason (a Bundle nested in
    /// a Bundle: its resources are the outer Bundle's entries already).
    pub skipped: Option<String>,
}

impl SourceItem {
    pub fn new(location: impl Into<String>, resource: Result<Value, OperationOutcome>) -> Self {
        SourceItem {
            location: location.into(),
            resource,
            skipped: None,
        }
    }
}

/// Reads NDJSON one line at a time (memory stays flat whatever the file size). Blank lines
/// are skipped; a line that is not JSON is an error item, never the end of the file.
pub fn ndjson_items<R: BufRead>(reader: R, label: &str) -> impl Iterator<Item = SourceItem> {
    let label = label.to_string();
    reader
        .split(b'\n')
        .enumerate()
        .filter_map(move |(n, line)| {
            let location = format!("{label}:{}", n + 1);
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    return Some(SourceItem::new(
                        location,
                        Err(OperationOutcome::message(
                            IssueCode::Exception,
                            format!("could not read the file: {e}"),
                        )),
                    ));
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                return None;
            }
            Some(SourceItem::new(location, parse_strict(&line)))
        })
}

/// Reads a JSON file holding one resource or a Bundle, calling `emit` for each item, with
/// memory flat in the file's size: a Bundle's entries are read one at a time, in two passes
/// (the first learns each entry's fullUrl and id, the second resolves references to them).
/// `open` is called once per pass. A file that is not a Bundle is one item.
pub fn for_each_file_item<R: Read>(
    mut open: impl FnMut() -> std::io::Result<R>,
    label: &str,
    emit: &mut dyn FnMut(SourceItem),
) {
    let io_error = |e: std::io::Error| {
        SourceItem::new(
            label,
            Err(OperationOutcome::message(
                IssueCode::Exception,
                format!("could not read the file: {e}"),
            )),
        )
    };
    // Pass 1: the fullUrl map, or the whole value when this is not a Bundle.
    let mut map = HashMap::new();
    let mut index = 0usize;
    let first = match open() {
        Ok(r) => scan(r, &mut |entry| {
            if let Some((url, target, _)) = entry_identity(&entry) {
                map.insert(url, target);
            }
            index += 1;
        }),
        Err(e) => return emit(io_error(e)),
    };
    match first {
        Err(msg) => emit(SourceItem::new(
            label,
            Err(OperationOutcome::message(IssueCode::Structure, msg)),
        )),
        Ok(Scanned::Other(v)) => emit(SourceItem::new(label, Ok(v))),
        Ok(Scanned::Bundle(head))
            if head.get("type").and_then(Value::as_str) == Some("document") =>
        {
            // A document is a unit: stored whole. Read it again as one value.
            match open().map_err(io_error).and_then(|mut r| {
                let mut bytes = Vec::new();
                r.read_to_end(&mut bytes).map_err(io_error)?;
                Ok(bytes)
            }) {
                Ok(bytes) => emit(SourceItem::new(label, parse_strict(&bytes))),
                Err(item) => emit(item),
            }
        }
        Ok(Scanned::Bundle(_)) => {
            let mut i = 0usize;
            let second = match open() {
                Ok(r) => scan(r, &mut |entry| {
                    emit(entry_item(entry, &format!("{label}#entry[{i}]"), &map));
                    i += 1;
                }),
                Err(e) => return emit(io_error(e)),
            };
            if let Err(msg) = second {
                emit(SourceItem::new(
                    label,
                    Err(OperationOutcome::message(IssueCode::Structure, msg)),
                ));
            }
        }
    }
}

/// An entry's fullUrl, its `Type/id` and the id it gets (its own, or its urn:uuid's).
fn entry_identity(entry: &Value) -> Option<(String, String, String)> {
    let url = entry.get("fullUrl").and_then(Value::as_str)?;
    let r = entry.get("resource")?;
    let rt = r.get("resourceType").and_then(Value::as_str)?;
    let id = match r.get("id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => url
            .strip_prefix("urn:uuid:")
            .filter(|id| is_valid_id(id))?
            .to_string(),
    };
    Some((url.to_string(), format!("{rt}/{id}"), id))
}

fn entry_item(entry: Value, location: &str, map: &HashMap<String, String>) -> SourceItem {
    let identity = entry_identity(&entry);
    let Value::Object(mut entry) = entry else {
        return SourceItem::new(
            location,
            Err(OperationOutcome::message(
                IssueCode::Structure,
                "a Bundle entry must be a JSON object",
            )),
        );
    };
    match entry.remove("resource") {
        Some(Value::Object(mut r)) => {
            if let Some((_, _, id)) = identity
                && !r.contains_key("id")
            {
                r.insert("id".into(), Value::String(id));
            }
            let nested = r.get("resourceType").and_then(Value::as_str) == Some("Bundle");
            let mut v = Value::Object(r);
            rewrite_references(&mut v, map);
            let mut item = SourceItem::new(location, Ok(v));
            if nested {
                item.skipped = Some(
                    "a Bundle inside a Bundle is not imported; the outer Bundle's entries are"
                        .into(),
                );
            }
            item
        }
        Some(_) => SourceItem::new(
            location,
            Err(OperationOutcome::message(
                IssueCode::Structure,
                "the entry's resource must be a JSON object",
            )),
        ),
        None => {
            let method = entry
                .get("request")
                .and_then(|r| r.get("method"))
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_string();
            SourceItem::new(
                location,
                Err(OperationOutcome::message(
                    IssueCode::Structure,
                    format!(
                        "the entry has no resource (request method {method}); import only takes resources"
                    ),
                )),
            )
        }
    }
}

enum Scanned {
    /// A Bundle: its fields other than `entry`.
    Bundle(Map<String, Value>),
    /// Anything else, whole.
    Other(Value),
}

/// Reads one JSON document; if it is an object whose `entry` is an array, hands each entry to
/// `f` as it is read instead of keeping them.
fn scan<R: Read>(reader: R, f: &mut dyn FnMut(Value)) -> Result<Scanned, String> {
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, reader));
    let head = TopLevel { f }
        .deserialize(&mut de)
        .map_err(|e| format!("invalid JSON: {e}"))?;
    de.end().map_err(|e| format!("invalid JSON: {e}"))?;
    let is_bundle = head.get("resourceType").and_then(Value::as_str) == Some("Bundle");
    if is_bundle {
        Ok(Scanned::Bundle(head))
    } else {
        Ok(Scanned::Other(Value::Object(head)))
    }
}

struct TopLevel<'f> {
    f: &'f mut dyn FnMut(Value),
}

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = Map<String, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a FHIR resource (a JSON object)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate property name '{key}'"
                )));
            }
            let is_bundle = out.get("resourceType").and_then(Value::as_str) == Some("Bundle");
            if key == "entry" && is_bundle {
                // Streamed: each entry goes to `f` and is not kept.
                map.next_value_seed(Entries { f: &mut *self.f })?;
            } else {
                out.insert(key, map.next_value_seed(StrictValue)?);
            }
        }
        // A Bundle whose entries came before its resourceType: hand them over now.
        if out.get("resourceType").and_then(Value::as_str) == Some("Bundle")
            && let Some(Value::Array(entries)) = out.remove("entry")
        {
            entries.into_iter().for_each(&mut *self.f);
        }
        Ok(out)
    }
}

struct Entries<'f> {
    f: &'f mut dyn FnMut(Value),
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of Bundle entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            (self.f)(v);
        }
        Ok(())
    }
}

/// Rewrites every `reference` that names a key of `map` (a Bundle fullUrl) to its value.
pub fn rewrite_references(v: &mut Value, map: &HashMap<String, String>) {
    match v {
        Value::Object(obj) => {
            for (k, child) in obj.iter_mut() {
                if k == "reference" {
                    if let Value::String(s) = child
                        && let Some(target) = map.get(s.as_str())
                    {
                        *s = target.clone();
                    }
                } else {
                    rewrite_references(child, map);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_references(i, map)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_reports_bad_lines_and_goes_on() {
        let data = b"{\"resourceType\":\"Patient\",\"id\":\"a\"}\n\nnot json\n{\"resourceType\":\"Patient\",\"id\":\"b\"}\n";
        let items: Vec<_> = ndjson_items(&data[..], "p.ndjson").collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].location, "p.ndjson:3");
        assert!(items[1].resource.is_err());
        assert!(items[2].resource.is_ok());
    }

    fn file_items(text: &str) -> Vec<SourceItem> {
        let mut out = Vec::new();
        for_each_file_item(|| Ok(text.as_bytes()), "f.json", &mut |i| out.push(i));
        out
    }

    #[test]
    fn files_are_read_entry_by_entry_with_references_resolved() {
        let b = r#"{"resourceType":"Bundle","type":"transaction","entry":[
            {"fullUrl":"urn:uuid:7e1b1e36-1111-4222-8333-944455556666",
             "resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:6e1b1e36-1111-4222-8333-944455556666"}}},
            {"fullUrl":"urn:uuid:6e1b1e36-1111-4222-8333-944455556666","resource":{"resourceType":"Patient"}},
            {"resource":{"resourceType":"Bundle","type":"collection"}}]}"#;
        let items = file_items(b);
        assert_eq!(items.len(), 3);
        let obs = items[0].resource.as_ref().unwrap();
        assert_eq!(
            obs["subject"]["reference"], "Patient/6e1b1e36-1111-4222-8333-944455556666",
            "a forward reference resolves"
        );
        assert_eq!(
            items[1].resource.as_ref().unwrap()["id"],
            "6e1b1e36-1111-4222-8333-944455556666"
        );
        assert!(items[2].skipped.is_some());
        // Not a Bundle: one item, whole, even with an `entry` property of its own.
        let list = r#"{"resourceType":"List","status":"current","mode":"working","entry":[{"item":{"reference":"Patient/1"}}]}"#;
        let items = file_items(list);
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].resource.as_ref().unwrap()["entry"][0]["item"]["reference"],
            "Patient/1"
        );
        // Broken JSON is one error item.
        assert!(
            file_items("{\"resourceType\": \"Bundle\", \"entry\": [")
                .iter()
                .any(|i| i.resource.is_err())
        );
    }
}
