//! Reading FHIR in bulk: NDJSON line by line, and the entries of Bundles with their
//! `urn:uuid:` references resolved to `Type/id`.

use crate::json::parse_strict;
use crate::outcome::{IssueCode, OperationOutcome};
use crate::primitives::is_valid_id;
use serde_json::Value;
use std::collections::HashMap;
use std::io::BufRead;

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

/// The resources of a Bundle (collection, transaction, batch, searchset, history...), with
/// references to other entries' `fullUrl`s rewritten to `Type/id`. An entry without a
/// resource (a DELETE, say) is an error item that says so. A resource without an id gets the
/// id its `urn:uuid:` fullUrl carries, when that is a valid id.
pub fn bundle_items(bundle: Value, label: &str) -> Vec<SourceItem> {
    let Value::Object(mut bundle) = bundle else {
        return vec![SourceItem::new(
            label,
            Err(OperationOutcome::message(
                IssueCode::Structure,
                "not a JSON object",
            )),
        )];
    };
    let Some(Value::Array(entries)) = bundle.remove("entry") else {
        return Vec::new();
    };
    let mut map = HashMap::new();
    let mut resources = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Object(mut entry) = entry else {
            resources.push(Err("a Bundle entry must be a JSON object".to_string()));
            continue;
        };
        let full_url = entry
            .get("fullUrl")
            .and_then(Value::as_str)
            .map(str::to_string);
        match entry.remove("resource") {
            Some(Value::Object(mut r)) => {
                let rt = r
                    .get("resourceType")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if !r.contains_key("id")
                    && let Some(id) = full_url
                        .as_deref()
                        .and_then(|u| u.strip_prefix("urn:uuid:"))
                        .filter(|id| is_valid_id(id))
                {
                    r.insert("id".into(), Value::String(id.to_string()));
                }
                if let (Some(url), Some(id)) = (&full_url, r.get("id").and_then(Value::as_str)) {
                    map.insert(url.clone(), format!("{rt}/{id}"));
                }
                resources.push(Ok(Value::Object(r)));
            }
            Some(_) => resources.push(Err("the entry's resource must be a JSON object".into())),
            None => {
                let method = entry
                    .get("request")
                    .and_then(|r| r.get("method"))
                    .and_then(Value::as_str)
                    .unwrap_or("none");
                resources.push(Err(format!(
                    "the entry has no resource (request method {method}); import only takes resources"
                )));
            }
        }
    }
    resources
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let nested = matches!(&r, Ok(v) if v.get("resourceType").and_then(Value::as_str) == Some("Bundle"));
            let mut item = SourceItem::new(
                format!("{label}#entry[{i}]"),
                r.map(|mut v| {
                    rewrite_references(&mut v, &map);
                    v
                })
                .map_err(|msg| OperationOutcome::message(IssueCode::Structure, msg)),
            );
            if nested {
                item.skipped = Some(
                    "a Bundle inside a Bundle is not imported; the outer Bundle's entries are".into(),
                );
            }
            item
        })
        .collect()
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
    use serde_json::json;

    #[test]
    fn ndjson_reports_bad_lines_and_goes_on() {
        let data = b"{\"resourceType\":\"Patient\",\"id\":\"a\"}\n\nnot json\n{\"resourceType\":\"Patient\",\"id\":\"b\"}\n";
        let items: Vec<_> = ndjson_items(&data[..], "p.ndjson").collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].location, "p.ndjson:3");
        assert!(items[1].resource.is_err());
        assert!(items[2].resource.is_ok());
    }

    #[test]
    fn bundle_references_resolve_to_type_and_id() {
        let b = json!({"resourceType":"Bundle","type":"transaction","entry":[
            {"fullUrl":"urn:uuid:6e1b1e36-1111-4222-8333-944455556666",
             "resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
            {"fullUrl":"urn:uuid:7e1b1e36-1111-4222-8333-944455556666",
             "resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:6e1b1e36-1111-4222-8333-944455556666"}},
             "request":{"method":"POST","url":"Observation"}},
            {"request":{"method":"DELETE","url":"Patient/x"}}]});
        let items = bundle_items(b, "b.json");
        let obs = items[1].resource.as_ref().unwrap();
        assert_eq!(
            obs["subject"]["reference"],
            "Patient/6e1b1e36-1111-4222-8333-944455556666"
        );
        assert_eq!(obs["id"], "7e1b1e36-1111-4222-8333-944455556666");
        assert!(items[2].resource.is_err());
    }
}
