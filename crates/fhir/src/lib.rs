//! FHIR R4 JSON for coproduce.
//!
//! This crate owns the boundary between bytes and FHIR resources: strict parsing
//! ([`parse_resource`]), structural validation against the R4 definitions ([`validate`]),
//! OperationOutcome errors that name the path and the reason ([`OperationOutcome`]),
//! search-parameter extraction ([`search`]) and streaming readers for Bundles and NDJSON
//! ([`stream`]).
//!
//! Resources are kept as their JSON (`serde_json::Value` with preserved order and exact
//! decimals), so nothing is lost on import and export; see `docs/decisions/0001-fhir-model.md`.

pub mod bindings;
pub mod json;
pub mod outcome;
pub mod primitives;
pub mod query;
pub mod resource;
pub mod schema;
pub mod search;
pub mod stream;
pub mod validate;
mod xhtml;

pub use outcome::{IssueCode, OperationOutcome, Severity};
pub use resource::{Resource, ResourceType, parse_resource, parse_resource_value};
