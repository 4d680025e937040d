//! A validated FHIR resource, kept as its JSON.

use crate::json::parse_strict;
use crate::outcome::{IssueCode, OperationOutcome};
use crate::schema::r4;
use crate::validate::validate_resource;
use serde_json::{Map, Value};
use std::fmt;

/// The name of an R4 resource type, checked against the definitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(String);

impl ResourceType {
    pub fn parse(name: &str) -> Result<Self, OperationOutcome> {
        if r4().is_resource_type(name) {
            Ok(ResourceType(name.to_string()))
        } else {
            Err(OperationOutcome::message(
                IssueCode::NotSupported,
                format!("'{name}' is not a FHIR R4 resource type"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A FHIR resource that passed structural validation. Its JSON is kept whole, in order and
/// with exact decimals, so what is imported is what is exported.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    resource_type: ResourceType,
    json: Map<String, Value>,
}

/// Parses and validates one resource from bytes.
pub fn parse_resource(bytes: &[u8]) -> Result<Resource, OperationOutcome> {
    parse_resource_value(parse_strict(bytes)?)
}

/// Validates one resource already read as strict JSON.
pub fn parse_resource_value(v: Value) -> Result<Resource, OperationOutcome> {
    validate_resource(&v)?;
    let Value::Object(json) = v else {
        return Err(OperationOutcome::message(
            IssueCode::Structure,
            "a resource must be a JSON object",
        ));
    };
    let rt = json
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(Resource {
        resource_type: ResourceType::parse(rt)?,
        json,
    })
}

impl Resource {
    pub fn resource_type(&self) -> &ResourceType {
        &self.resource_type
    }

    pub fn type_name(&self) -> &str {
        self.resource_type.as_str()
    }

    pub fn id(&self) -> Option<&str> {
        self.json.get("id").and_then(Value::as_str)
    }

    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.json.clone())
    }

    /// Sets the id (the id is a server decision on create).
    pub fn set_id(&mut self, id: &str) {
        if self.json.contains_key("id") {
            self.json.insert("id".into(), Value::String(id.into()));
        } else {
            // Keep `resourceType, id` first, as FHIR JSON is usually written.
            let mut json = Map::with_capacity(self.json.len() + 1);
            let rest = std::mem::take(&mut self.json);
            for (k, v) in rest {
                json.insert(k.clone(), v);
                if k == "resourceType" {
                    json.insert("id".into(), Value::String(id.into()));
                }
            }
            self.json = json;
        }
    }

    /// Sets `meta.versionId` and `meta.lastUpdated`, keeping the rest of `meta`.
    pub fn set_version(&mut self, version_id: i64, last_updated: &str) {
        let meta = self
            .json
            .entry("meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = meta {
            m.insert("versionId".into(), Value::String(version_id.to_string()));
            m.insert(
                "lastUpdated".into(),
                Value::String(last_updated.to_string()),
            );
        }
    }

    /// The resource without server-assigned metadata, for "did anything change?" checks.
    pub fn content_without_meta_version(&self) -> Value {
        let mut json = self.json.clone();
        if let Some(Value::Object(m)) = json.get_mut("meta") {
            m.remove("versionId");
            m.remove("lastUpdated");
            if m.is_empty() {
                json.remove("meta");
            }
        }
        Value::Object(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_id_keeps_it_after_resource_type() {
        let mut r = parse_resource(br#"{"resourceType":"Patient","active":true}"#).unwrap();
        r.set_id("p1");
        r.set_version(3, "2026-01-01T00:00:00.000Z");
        assert_eq!(
            serde_json::to_string(&r.to_value()).unwrap(),
            r#"{"resourceType":"Patient","id":"p1","active":true,"meta":{"versionId":"3","lastUpdated":"2026-01-01T00:00:00.000Z"}}"#
        );
    }
}
