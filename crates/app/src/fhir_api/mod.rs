//! The FHIR REST interactions: create, read, vread, update, delete, history, search, and
//! batch/transaction Bundles, each for a [`Caller`]. Every interaction is decided by the
//! access policy in `core`, filtered by it in the store's queries, and audited: exactly one
//! audit row per interaction (per entry of a Bundle), written in the same transaction as the
//! change it records. Input is parsed strictly and validated before anything is written; a
//! transaction is one database transaction.

use crate::caller::Caller;
use crate::error::AppError;
use coproduce_core::access::{
    Action, Compartment, Reach, Sensitivity, Target, decide, reach, sees_confidential,
    social_needs_of,
};
use coproduce_core::{Clock, unix_millis};
use coproduce_fhir::query::SearchQuery;
use coproduce_fhir::search::{extract, is_clinical, patient_compartment, split_reference};
use coproduce_fhir::stream::rewrite_references;
use coproduce_fhir::{
    IssueCode, OperationOutcome, Resource, ResourceType, parse_resource, parse_resource_value,
};
use coproduce_store::search::search_reaching;
use coproduce_store::{
    AuditEntry, HistoryEntry, Prepared, SearchResult, Store, StoreError, Stored, Tx,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use time::OffsetDateTime;

mod bundles;
mod interactions;
mod outcome;
mod rights;
mod rules;
mod search;

pub use bundles::put;
use bundles::*;
pub use outcome::*;
use rights::*;
pub use rules::{Derived, Keep, Write, WriteRule, WriteRules};

/// The result of a create or update.
#[derive(Debug, Clone)]
pub struct Written {
    pub stored: Stored,
    /// True when a new resource came into being (201), false for an update or an existing
    /// match of a conditional create (200).
    pub created: bool,
}

/// The FHIR API over a store.
#[derive(Clone)]
pub struct FhirApi {
    store: Store,
    clock: Arc<dyn Clock>,
    /// The most entries a client's batch or transaction Bundle may carry: one request must
    /// not hold the single writer for seconds (bulk loads go through `coproduce import`).
    bundle_entries: usize,
    /// The rules the workflows add to writes of their resource types.
    rules: WriteRules,
}

/// The default of [`FhirApi::with_bundle_limit`].
pub const DEFAULT_BUNDLE_ENTRIES: usize = 1000;

impl std::fmt::Debug for FhirApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FhirApi")
            .field("store", &self.store)
            .finish()
    }
}

/// A refusal of the input, with the FHIR issue code and the element it is about.
pub fn invalid(code: IssueCode, path: &str, msg: impl Into<String>) -> AppError {
    AppError::Invalid(OperationOutcome::error(code, path, msg))
}

/// Reads a body as the given resource type.
fn parse_body(rt: &ResourceType, body: &[u8]) -> Result<Resource, AppError> {
    let resource = parse_resource(body)?;
    if resource.resource_type() != rt {
        return Err(invalid(
            IssueCode::Invariant,
            "resourceType",
            format!(
                "the body is a {}, but the URL is for {rt}",
                resource.type_name()
            ),
        ));
    }
    Ok(resource)
}

/// A resource id from a URL: one no resource can have (a space, a control character, more
/// than 64 characters) is refused before anything looks it up.
fn check_id(id: &str) -> Result<(), AppError> {
    if coproduce_fhir::primitives::is_valid_id(id) {
        Ok(())
    } else {
        Err(invalid(
            IssueCode::Value,
            "id",
            format!(
                "'{}' is not a resource id (1 to 64 letters, digits, '-' and '.')",
                id.escape_default()
            ),
        ))
    }
}

/// Splits `a=1&b=2` into decoded pairs.
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// A new resource's id: a UUID of version 7, which begins with the time it was made, so
/// that the store's indexes by id take new resources near their ends rather than at random
/// places (with random ids each create dirtied a page of every such index, and a big
/// store's commits wrote about 100 KB of pages per create). Every resource the server or a
/// workflow makes takes its id from here; a secret (a claim code, a password) never does,
/// as this id tells when it was made.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Why an interaction did not happen: an ordinary error, or a denial whose audit row is
/// written once the transaction it happened in is rolled back.
enum Fail {
    App(AppError),
    Denied(Box<AuditEntry>, String),
}

impl<E: Into<AppError>> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail::App(e.into())
    }
}

type Outcome<T> = Result<T, Fail>;

impl FhirApi {
    /// The API with the write rules the workflows registered (`crate::workflows` puts
    /// them together for [`FhirApi::new`]).
    pub fn with_rules(store: Store, clock: Arc<dyn Clock>, rules: WriteRules) -> Self {
        FhirApi {
            store,
            clock,
            bundle_entries: DEFAULT_BUNDLE_ENTRIES,
            rules,
        }
    }

    /// Sets the most entries a batch or transaction Bundle may carry.
    pub fn with_bundle_limit(mut self, entries: usize) -> Self {
        self.bundle_entries = entries.max(1);
        self
    }

    /// Checks the database answers.
    pub async fn health(&self) -> Result<(), AppError> {
        Ok(self.store.ping().await?)
    }

    /// Database pool sizes (open, idle) for metrics.
    pub fn pool_stats(&self) -> (u32, usize) {
        self.store.pool_stats()
    }

    /// The store, for this crate's own non-FHIR tables (deadlines, notifications).
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn backend_name(&self) -> &'static str {
        self.store.backend().name()
    }
}
