//! The Bundles the FHIR API answers with (searchset, history). Each resource goes into the
//! answer as the store holds it: its JSON is checked to be JSON (a corrupt row is a 500,
//! never sent on) but not built into a tree and written out again, which was most of a
//! search's cost per resource. Elements are written in FHIR's order.

use coproduce_app::{AppError, Stored};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A Bundle of `kind` (`searchset`, `history`).
#[derive(Debug, Serialize)]
pub(crate) struct Bundle<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
    link: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entry: Vec<Entry<'a>>,
}

impl<'a> Bundle<'a> {
    pub(crate) fn new(kind: &'static str, total: Option<i64>, link: Vec<Value>) -> Self {
        Bundle {
            resource_type: "Bundle",
            kind,
            total,
            link,
            entry: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, entry: Entry<'a>) {
        self.entry.push(entry);
    }

    /// The Bundle's JSON text.
    pub(crate) fn text(&self) -> String {
        serde_json::to_string(self).expect("a Bundle of checked JSON serializes")
    }
}

/// One entry of a [`Bundle`].
#[derive(Debug, Default, Serialize)]
pub(crate) struct Entry<'a> {
    #[serde(rename = "fullUrl", skip_serializing_if = "Option::is_none")]
    full_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    search: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Value>,
}

impl<'a> Entry<'a> {
    /// A stored resource's entry: its full URL under `base`, and its JSON as stored (None
    /// for a deletion, which has none).
    pub(crate) fn stored(base: &str, stored: &'a Stored) -> Result<Self, AppError> {
        let resource = if stored.deleted {
            None
        } else {
            Some(stored.json_raw().map_err(AppError::from)?)
        };
        Ok(Entry {
            full_url: Some(format!("{base}/{}/{}", stored.resource_type, stored.id)),
            resource,
            ..Entry::default()
        })
    }

    /// An entry of a resource built here (not stored), such as a search's warning.
    pub(crate) fn built(resource: &'a RawValue) -> Self {
        Entry {
            resource: Some(resource),
            ..Entry::default()
        }
    }

    pub(crate) fn search(mut self, search: Value) -> Self {
        self.search = Some(search);
        self
    }

    pub(crate) fn request(mut self, request: Value, response: Value) -> Self {
        self.request = Some(request);
        self.response = Some(response);
        self
    }
}
