//! The FHIR REST interactions: create, read, vread, update, delete, history, search, and
//! batch/transaction Bundles, each for a [`Caller`]. Every interaction is decided by the
//! access policy in `core`, filtered by it in the store's queries, and audited: exactly one
//! audit row per interaction (per entry of a Bundle), written in the same transaction as the
//! change it records. Input is parsed strictly and validated before anything is written; a
//! transaction is one database transaction.

use crate::accounts::Caller;
use crate::error::AppError;
use coproduce_core::access::{
    Action, Compartment, Reach, Sensitivity, Target, decide, reach, sees_confidential,
};
use coproduce_core::{Clock, unix_millis};
use coproduce_fhir::query::SearchQuery;
use coproduce_fhir::search::{extract, is_clinical, split_reference};
use coproduce_fhir::stream::rewrite_references;
use coproduce_fhir::{
    IssueCode, OperationOutcome, Resource, ResourceType, parse_resource, parse_resource_value,
};
use coproduce_store::search::search_reaching;
use coproduce_store::{AuditEntry, HistoryEntry, SearchResult, Store, StoreError, Stored, Tx};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

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

fn invalid(code: IssueCode, path: &str, msg: impl Into<String>) -> AppError {
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

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Adolescent-confidential records carry the confidentiality code R (restricted) in
/// `meta.security`.
fn sensitivity(v: &Value) -> Sensitivity {
    if v.as_object()
        .is_some_and(coproduce_fhir::search::is_restricted)
    {
        Sensitivity::AdolescentConfidential
    } else {
        Sensitivity::Normal
    }
}

fn compartment<'a>(rt: &str, patient: Option<&'a str>) -> Compartment<'a> {
    match patient {
        Some(p) => Compartment::Patient(p),
        None if is_clinical(rt) => Compartment::Unattached,
        None => Compartment::Shared,
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Read => "read",
        Action::Search => "search",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::Export => "export",
    }
}

/// A reading the patient's side creates through the API waits for the team's review, as one
/// entered in the app does.
fn awaiting_review(caller: &Caller, resource: Resource) -> Result<Resource, AppError> {
    let patient_side = matches!(
        caller.actor.who,
        coproduce_core::access::Who::Patient { .. } | coproduce_core::access::Who::Family { .. }
    );
    if !patient_side || resource.type_name() != "Observation" {
        return Ok(resource);
    }
    let mut v = resource.to_value();
    if crate::care::reading_code(&v).is_none() {
        return Ok(resource);
    }
    crate::care::mark_unreviewed(&mut v);
    Ok(parse_resource_value(v)?)
}

/// A reading with an impossible value is refused on every path, as on the app's form.
fn plausible(resource: &Resource) -> Result<(), AppError> {
    if resource.type_name() != "Observation" {
        return Ok(());
    }
    match crate::care::implausible(&resource.to_value()) {
        Some(why) => Err(invalid(
            IssueCode::Invariant,
            "Observation.value[x]",
            why.to_string(),
        )),
        None => Ok(()),
    }
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
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        FhirApi {
            store,
            clock,
            bundle_entries: DEFAULT_BUNDLE_ENTRIES,
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

    /// An "allowed" audit row for this caller; callers change outcome and detail as needed.
    fn audit_entry(
        &self,
        caller: &Caller,
        action: &str,
        rt: &str,
        id: Option<&str>,
        patients: Option<String>,
    ) -> AuditEntry {
        let on_behalf_of = match (&caller.actor.who, patients.as_deref()) {
            (coproduce_core::access::Who::Family { .. }, Some(p)) if !p.contains(' ') => {
                Some(format!("Patient/{p}"))
            }
            _ => caller
                .actor
                .bound_patient
                .as_ref()
                .map(|p| format!("Patient/{p}")),
        };
        AuditEntry {
            at: unix_millis(self.clock.now()),
            actor: caller.label.clone(),
            on_behalf_of,
            action: action.to_string(),
            resource_type: Some(rt.to_string()),
            resource_id: id.map(str::to_string),
            patients,
            outcome: "allowed".into(),
            detail: None,
        }
    }

    /// Decides; a denial becomes a [`Fail::Denied`] carrying its audit row.
    fn check(
        &self,
        caller: &Caller,
        action: Action,
        rt: &str,
        id: Option<&str>,
        patient: Option<&str>,
        sensitivity: Sensitivity,
    ) -> Outcome<()> {
        let target = Target {
            resource_type: rt,
            compartment: compartment(rt, patient),
            sensitivity,
        };
        match decide(&caller.actor, action, &target, self.clock.now()) {
            coproduce_core::access::Decision::Allow => Ok(()),
            coproduce_core::access::Decision::Deny(reason) => {
                let entry = AuditEntry {
                    outcome: "denied".into(),
                    detail: Some(reason.clone()),
                    ..self.audit_entry(
                        caller,
                        action_name(action),
                        rt,
                        id,
                        patient.map(str::to_string),
                    )
                };
                Err(Fail::Denied(Box::new(entry), reason))
            }
        }
    }

    /// Turns a failure into the caller's error, writing a denial's audit row first.
    async fn settle<T>(&self, r: Outcome<T>) -> Result<T, AppError> {
        match r {
            Ok(v) => Ok(v),
            Err(Fail::App(e)) => Err(e),
            Err(Fail::Denied(entry, reason)) => {
                self.store.audit(&entry).await?;
                Err(AppError::Forbidden(reason))
            }
        }
    }

    /// Records who made a change and for whom, as a FHIR Provenance written in the same
    /// transaction: the author (their Practitioner, RelatedPerson or Patient, or the token's
    /// name), and the patient they acted for when that is someone else.
    async fn record_provenance(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        changed: Changed<'_>,
        operation: &str,
    ) -> Result<(), AppError> {
        let Changed {
            rt,
            id,
            version,
            patient,
        } = changed;
        if rt == "Provenance" {
            return Ok(());
        }
        let now = self.clock.now();
        let target = match version {
            Some(v) => format!("{rt}/{id}/_history/{v}"),
            None => format!("{rt}/{id}"),
        };
        let who = match &caller.fhir_ref {
            Some(r) => json!({"reference": r}),
            None => json!({"display": caller.label}),
        };
        let mut agent = json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]},
            "who": who,
        });
        let self_ref = patient.map(|p| format!("Patient/{p}"));
        if let Some(p) = &self_ref
            && caller.fhir_ref.as_ref() != Some(p)
            && matches!(caller.actor.who, coproduce_core::access::Who::Family { .. })
        {
            agent["onBehalfOf"] = json!({"reference": p});
        }
        let provenance = json!({
            "resourceType": "Provenance",
            "id": new_id(),
            "target": [{"reference": target}],
            "recorded": coproduce_store::Stored::instant(now),
            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": operation}]},
            "agent": [agent],
        });
        tx.create(parse_resource_value(provenance)?, now).await?;
        Ok(())
    }

    /// The reach of `caller` for a query on `rt`, as the store's compartment filter.
    fn compartments(
        &self,
        caller: &Caller,
        action: Action,
        rt: &str,
    ) -> Outcome<Option<BTreeSet<String>>> {
        match reach(&caller.actor, action, rt, is_clinical(rt), self.clock.now()) {
            Reach::Everything => Ok(None),
            Reach::Patients(p) => Ok(Some(p)),
            Reach::Nothing(reason) => {
                let entry = AuditEntry {
                    outcome: "denied".into(),
                    detail: Some(reason.clone()),
                    ..self.audit_entry(caller, action_name(action), rt, None, None)
                };
                Err(Fail::Denied(Box::new(entry), reason))
            }
        }
    }

    /// Limits a query to what `caller` reaches of `rt`: the store's compartment filter, and
    /// leaving out records confidential to the patient when the policy hides them.
    fn limit(&self, caller: &Caller, action: Action, rt: &str, q: &mut SearchQuery) -> Outcome<()> {
        q.compartments = self.compartments(caller, action, rt)?;
        q.hide_restricted = !sees_confidential(&caller.actor.who);
        Ok(())
    }

    /// Records a request refused for want of valid credentials.
    pub async fn audit_unauthenticated(&self, request: &str, reason: &str) -> Result<(), AppError> {
        self.store
            .audit(&AuditEntry {
                at: unix_millis(self.clock.now()),
                actor: "anonymous".into(),
                action: "authenticate".into(),
                outcome: "denied".into(),
                detail: Some(format!("{request}: {reason}")),
                ..AuditEntry::default()
            })
            .await?;
        Ok(())
    }

    /// POST /{type}: creates with a new id, or (with `If-None-Exist`) returns the one match.
    pub async fn create(
        &self,
        caller: &Caller,
        rt: &str,
        body: &[u8],
        if_none_exist: Option<&str>,
    ) -> Result<Written, AppError> {
        let rt = ResourceType::parse(rt)?;
        let resource = parse_body(&rt, body)?;
        let r = async {
            let mut tx = self.store.begin().await?;
            let written = self
                .create_in(caller, &mut tx, resource, if_none_exist, None)
                .await?;
            tx.commit().await?;
            Ok(written)
        }
        .await;
        self.settle(r).await
    }

    /// Creates inside a transaction, with `id` when the caller planned one (a transaction
    /// Bundle plans ids first so entries can refer to each other), else a new one.
    async fn create_in(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        mut resource: Resource,
        if_none_exist: Option<&str>,
        id: Option<&str>,
    ) -> Outcome<Written> {
        let rt = resource.type_name().to_string();
        // The id first: a new Patient is its own compartment.
        resource.set_id(&id.map_or_else(new_id, str::to_string));
        let patient = tx.compartment_of(&resource, &extract(&resource)).await?;
        self.check(
            caller,
            Action::Create,
            &rt,
            None,
            patient.as_deref(),
            sensitivity(&resource.to_value()),
        )?;
        plausible(&resource)?;
        let resource = awaiting_review(caller, resource)?;
        if let Some(cond) = if_none_exist {
            let mut q = SearchQuery::parse(&rt, &query_pairs(cond.trim_start_matches('?')))?;
            q.count = 2;
            self.limit(caller, Action::Search, &rt, &mut q)?;
            let found = coproduce_store::search::search_on(tx.conn(), &q).await?;
            match found.matches.len() {
                0 => {}
                1 => {
                    let stored = found.matches.into_iter().next().expect("one match");
                    let entry = AuditEntry {
                        detail: Some(
                            "If-None-Exist matched an existing resource; nothing written".into(),
                        ),
                        ..self.audit_entry(
                            caller,
                            "create",
                            &rt,
                            Some(&stored.id),
                            stored.patient_id.clone(),
                        )
                    };
                    tx.audit(&entry).await?;
                    return Ok(Written {
                        stored,
                        created: false,
                    });
                }
                _ => {
                    return Err(AppError::PreconditionFailed(format!(
                        "If-None-Exist '{cond}' matches {} resources; it must match at most one",
                        found.total
                    ))
                    .into());
                }
            }
        }
        let stored = tx.create(resource, self.clock.now()).await?;
        self.record_provenance(
            caller,
            tx,
            Changed {
                rt: &stored.resource_type,
                id: &stored.id,
                version: Some(stored.version_id),
                patient: stored.patient_id.as_deref(),
            },
            "CREATE",
        )
        .await?;
        let entry = self.audit_entry(
            caller,
            "create",
            &rt,
            Some(&stored.id),
            stored.patient_id.clone(),
        );
        tx.audit(&entry).await?;
        Ok(Written {
            stored,
            created: true,
        })
    }

    /// PUT /{type}/{id}: updates, or creates with the client's id.
    pub async fn update(
        &self,
        caller: &Caller,
        rt: &str,
        id: &str,
        body: &[u8],
        if_match: Option<i64>,
    ) -> Result<Written, AppError> {
        let rt = ResourceType::parse(rt)?;
        check_id(id)?;
        let resource = parse_body(&rt, body)?;
        let r = async {
            let mut tx = self.store.begin().await?;
            let written = self
                .update_in(caller, &mut tx, resource, id, if_match)
                .await?;
            tx.commit().await?;
            Ok(written)
        }
        .await;
        self.settle(r).await
    }

    async fn update_in(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        resource: Resource,
        id: &str,
        if_match: Option<i64>,
    ) -> Outcome<Written> {
        match resource.id() {
            Some(body_id) if body_id == id => {}
            Some(body_id) => {
                return Err(invalid(
                    IssueCode::Invariant,
                    "id",
                    format!("the body's id '{body_id}' differs from the URL's id '{id}'"),
                )
                .into());
            }
            None => {
                return Err(invalid(
                    IssueCode::Required,
                    "id",
                    "an update needs the resource's id in the body",
                )
                .into());
            }
        }
        let rt = resource.type_name().to_string();
        // The record as it is, and as it would be: the caller must reach both.
        let existing = tx.current_stored(&rt, id).await?.filter(|s| !s.deleted);
        if let Some(old) = &existing {
            self.check(
                caller,
                Action::Update,
                &rt,
                Some(id),
                old.patient_id.as_deref(),
                sensitivity(&old.json()?),
            )?;
        }
        let patient = tx.compartment_of(&resource, &extract(&resource)).await?;
        let action = if existing.is_some() {
            Action::Update
        } else {
            Action::Create
        };
        self.check(
            caller,
            action,
            &rt,
            Some(id),
            patient.as_deref(),
            sensitivity(&resource.to_value()),
        )?;
        plausible(&resource)?;
        let out = tx.update(resource, if_match, self.clock.now()).await?;
        let op = if out.created { "CREATE" } else { "UPDATE" };
        self.record_provenance(
            caller,
            tx,
            Changed {
                rt: &rt,
                id,
                version: Some(out.stored.version_id),
                patient: out.stored.patient_id.as_deref(),
            },
            op,
        )
        .await?;
        let entry = self.audit_entry(
            caller,
            action_name(action),
            &rt,
            Some(id),
            out.stored.patient_id.clone(),
        );
        tx.audit(&entry).await?;
        Ok(Written {
            stored: out.stored,
            created: out.created,
        })
    }

    /// GET /{type}/{id}.
    pub async fn read(&self, caller: &Caller, rt: &str, id: &str) -> Result<Stored, AppError> {
        let rt = ResourceType::parse(rt)?;
        check_id(id)?;
        if rt.as_str() == "AuditEvent"
            && let Some(seq) = crate::audit_events::seq_of(id)
        {
            let r = self.check(
                caller,
                Action::Read,
                "AuditEvent",
                Some(id),
                None,
                Sensitivity::Normal,
            );
            self.settle(r).await?;
            let row = self
                .store
                .audit_row(seq)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("AuditEvent/{id}")))?;
            self.store
                .audit(&self.audit_entry(caller, "read", "AuditEvent", Some(id), None))
                .await?;
            return Ok(crate::audit_events::as_stored(&row));
        }
        let found = self.store.read(rt.as_str(), id).await;
        self.reading(caller, rt.as_str(), id, found, false).await
    }

    /// GET /{type}/{id}/_history/{version}.
    pub async fn vread(
        &self,
        caller: &Caller,
        rt: &str,
        id: &str,
        version: &str,
    ) -> Result<Stored, AppError> {
        let rt = ResourceType::parse(rt)?;
        check_id(id)?;
        let v: i64 = version.parse().map_err(|_| {
            invalid(
                IssueCode::Value,
                "",
                format!("'{version}' is not a version number"),
            )
        })?;
        let found = self.store.vread(rt.as_str(), id, v).await;
        // A past version of a record that is now confidential is confidential too.
        let now_confidential = match self.store.current(rt.as_str(), id).await? {
            Some(current) if !current.deleted => current
                .json()?
                .as_object()
                .is_some_and(coproduce_fhir::search::is_restricted),
            _ => false,
        };
        self.reading(caller, rt.as_str(), id, found, now_confidential)
            .await
    }

    /// Decides and audits a read of what the store found.
    async fn reading(
        &self,
        caller: &Caller,
        rt: &str,
        id: &str,
        found: Result<Stored, StoreError>,
        now_confidential: bool,
    ) -> Result<Stored, AppError> {
        let stored = match found {
            Ok(s) => s,
            Err(e) => {
                let e = AppError::from(e);
                if !matches!(e, AppError::Storage(_)) {
                    let entry = AuditEntry {
                        outcome: "failed".into(),
                        detail: Some(e.to_string()),
                        ..self.audit_entry(caller, "read", rt, Some(id), None)
                    };
                    self.store.audit(&entry).await?;
                }
                return Err(e);
            }
        };
        let sensitivity = if now_confidential {
            Sensitivity::AdolescentConfidential
        } else {
            sensitivity(&stored.json()?)
        };
        let r = self.check(
            caller,
            Action::Read,
            rt,
            Some(id),
            stored.patient_id.as_deref(),
            sensitivity,
        );
        self.settle(r).await?;
        let entry = self.audit_entry(caller, "read", rt, Some(id), stored.patient_id.clone());
        self.store.audit(&entry).await?;
        Ok(stored)
    }

    /// DELETE: returns the deletion's version, or None if there was nothing to delete
    /// (deleting twice is not an error).
    pub async fn delete(
        &self,
        caller: &Caller,
        rt: &str,
        id: &str,
    ) -> Result<Option<i64>, AppError> {
        let rt = ResourceType::parse(rt)?;
        check_id(id)?;
        let r = async {
            let mut tx = self.store.begin().await?;
            let v = self.delete_in(caller, &mut tx, rt.as_str(), id).await?;
            tx.commit().await?;
            Ok(v)
        }
        .await;
        self.settle(r).await
    }

    async fn delete_in(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        rt: &str,
        id: &str,
    ) -> Outcome<Option<i64>> {
        let existing = tx.current_stored(rt, id).await?.filter(|s| !s.deleted);
        let patient = existing.as_ref().and_then(|s| s.patient_id.clone());
        if let Some(old) = &existing {
            self.check(
                caller,
                Action::Delete,
                rt,
                Some(id),
                patient.as_deref(),
                sensitivity(&old.json()?),
            )?;
        } else {
            self.check(
                caller,
                Action::Delete,
                rt,
                Some(id),
                None,
                Sensitivity::Normal,
            )?;
        }
        let v = tx.delete(rt, id, self.clock.now()).await?;
        if v.is_some() {
            self.record_provenance(
                caller,
                tx,
                Changed {
                    rt,
                    id,
                    version: v,
                    patient: patient.as_deref(),
                },
                "DELETE",
            )
            .await?;
        }
        let detail = v.is_none().then(|| "nothing to delete".to_string());
        let entry = AuditEntry {
            detail,
            ..self.audit_entry(caller, "delete", rt, Some(id), patient)
        };
        tx.audit(&entry).await?;
        Ok(v)
    }

    /// History of a resource or a type, filtered by the caller's reach.
    pub async fn history(
        &self,
        caller: &Caller,
        rt: &str,
        id: Option<&str>,
        params: &[(String, String)],
    ) -> Result<(i64, Vec<HistoryEntry>, usize, usize), AppError> {
        let rt = ResourceType::parse(rt)?;
        if let Some(id) = id {
            check_id(id)?;
        }
        let mut count = coproduce_fhir::query::DEFAULT_COUNT;
        let mut offset = 0;
        let mut since = None;
        for (k, v) in params {
            let bad = || invalid(IssueCode::Value, k, format!("'{v}' is not valid for {k}"));
            match k.as_str() {
                "_count" => {
                    count = v
                        .parse::<usize>()
                        .map_err(|_| bad())?
                        .min(coproduce_fhir::query::MAX_COUNT)
                }
                "_offset" => {
                    offset = coproduce_fhir::query::parse_offset(v)
                        .map_err(|why| invalid(IssueCode::Value, k, why))?
                }
                "_since" => {
                    since = Some(
                        coproduce_fhir::primitives::date_range_millis(v)
                            .ok_or_else(bad)?
                            .0,
                    )
                }
                "_format" => {}
                other => {
                    return Err(invalid(
                        IssueCode::NotSupported,
                        other,
                        format!("history does not take '{other}'"),
                    ));
                }
            }
        }
        let action = if id.is_some() {
            Action::Read
        } else {
            Action::Search
        };
        if let Some(id) = id {
            // The resource as it stands decides whether its history may be read at all.
            if let Some(current) = self.store.current(rt.as_str(), id).await? {
                let labelled = if current.deleted {
                    Sensitivity::Normal
                } else {
                    sensitivity(&current.json()?)
                };
                let r = self.check(
                    caller,
                    Action::Read,
                    rt.as_str(),
                    Some(id),
                    current.patient_id.as_deref(),
                    labelled,
                );
                self.settle(r).await?;
            }
        }
        let r = async {
            let compartments = self.compartments(caller, action, rt.as_str())?;
            let (total, entries) = self
                .store
                .history(
                    rt.as_str(),
                    id,
                    since,
                    count,
                    offset,
                    coproduce_store::Visible {
                        compartments: compartments.as_ref(),
                        hide_restricted: !sees_confidential(&caller.actor.who),
                    },
                )
                .await?;
            Ok((total, entries))
        }
        .await;
        let (total, entries) = self.settle(r).await?;
        let patients = touched(entries.iter().map(|e| &e.stored));
        let entry = AuditEntry {
            detail: Some(format!("history: {total} versions")),
            ..self.audit_entry(
                caller,
                if id.is_some() { "read" } else { "search" },
                rt.as_str(),
                id,
                patients,
            )
        };
        self.store.audit(&entry).await?;
        if let (Some(id), 0) = (id, total) {
            return Err(AppError::NotFound(format!("{rt}/{id}")));
        }
        Ok((total, entries, count, offset))
    }

    /// A search, filtered by the caller's reach in the query itself.
    pub async fn search(
        &self,
        caller: &Caller,
        rt: &str,
        params: &[(String, String)],
    ) -> Result<(SearchQuery, SearchResult), AppError> {
        let rt = ResourceType::parse(rt)?;
        if rt.as_str() == "AuditEvent" {
            return self.audit_events(caller, params).await;
        }
        let mut q = SearchQuery::parse(rt.as_str(), params)?;
        let r = self.limit(caller, Action::Search, rt.as_str(), &mut q);
        self.settle(r).await?;
        let now = self.clock.now();
        let actor = caller.actor.clone();
        let include_reach = move |t: &str| reach(&actor, Action::Search, t, is_clinical(t), now);
        let result = self.store.search_for(&q, &include_reach).await?;
        let patients = touched(result.matches.iter().chain(&result.included));
        let entry = AuditEntry {
            detail: Some(format!("{} matches", result.total)),
            ..self.audit_entry(caller, "search", rt.as_str(), None, patients)
        };
        self.store.audit(&entry).await?;
        Ok((q, result))
    }

    /// Every match of a search, not one page: for the app's own views (a chart, a panel),
    /// which need all of a patient's readings or all goals of a panel. Filtered by the
    /// caller's reach in the query, and audited once.
    pub async fn search_all(
        &self,
        caller: &Caller,
        rt: &str,
        params: &[(String, String)],
    ) -> Result<Vec<Stored>, AppError> {
        let mut q = SearchQuery::parse(rt, params)?;
        let r = self.limit(caller, Action::Search, rt, &mut q);
        self.settle(r).await?;
        q.count = usize::MAX >> 1;
        q.offset = 0;
        let result = self
            .store
            .search_for(&q, &|_| Reach::Nothing(String::new()))
            .await?;
        let patients = touched(result.matches.iter());
        let entry = AuditEntry {
            detail: Some(format!("{} matches", result.total)),
            ..self.audit_entry(caller, "search", rt, None, patients)
        };
        self.store.audit(&entry).await?;
        Ok(result.matches)
    }

    /// The audit trail as AuditEvents, newest first (`patient`, `_count`, `_offset`).
    async fn audit_events(
        &self,
        caller: &Caller,
        params: &[(String, String)],
    ) -> Result<(SearchQuery, SearchResult), AppError> {
        let r = self.check(
            caller,
            Action::Search,
            "AuditEvent",
            None,
            None,
            Sensitivity::Normal,
        );
        self.settle(r).await?;
        let mut q = SearchQuery::all("AuditEvent");
        let mut patient = None;
        for (k, v) in params {
            let bad = || invalid(IssueCode::Value, k, format!("'{v}' is not valid for {k}"));
            match k.as_str() {
                "_count" => {
                    q.count = v
                        .parse::<usize>()
                        .map_err(|_| bad())?
                        .min(coproduce_fhir::query::MAX_COUNT)
                }
                "_offset" => {
                    q.offset = coproduce_fhir::query::parse_offset(v)
                        .map_err(|why| invalid(IssueCode::Value, k, why))?
                }
                "patient" => patient = Some(v.strip_prefix("Patient/").unwrap_or(v).to_string()),
                "_format" | "_total" => {}
                other => {
                    return Err(invalid(
                        IssueCode::NotSupported,
                        other,
                        format!(
                            "AuditEvent searches take patient, _count and _offset, not '{other}'"
                        ),
                    ));
                }
            }
        }
        let (limit, offset) = (q.count as i64, q.offset as i64);
        let (total, rows) = match &patient {
            Some(p) => self.store.audit_for_patient(p, limit, offset).await?,
            None => self.store.audit_newest(limit, offset).await?,
        };
        let matches = rows.iter().map(crate::audit_events::as_stored).collect();
        self.store
            .audit(&AuditEntry {
                detail: Some(format!("{total} audit events")),
                ..self.audit_entry(caller, "search", "AuditEvent", None, patient)
            })
            .await?;
        Ok((
            q,
            SearchResult {
                total,
                matches,
                included: Vec::new(),
            },
        ))
    }

    /// Who opened a patient's record, in plain words, for that patient (newest first).
    pub async fn access_log(&self, caller: &Caller, limit: i64) -> Result<Vec<String>, AppError> {
        let coproduce_core::access::Who::Patient { patient } = &caller.actor.who else {
            return Err(AppError::Forbidden(
                "the access log is shown to the patient whose record it is".into(),
            ));
        };
        let (_, rows) = self.store.audit_for_patient(patient, limit, 0).await?;
        Ok(rows.iter().map(crate::audit_events::plain_words).collect())
    }

    /// POST / with a batch or transaction Bundle; returns the response Bundle.
    pub async fn bundle(&self, caller: &Caller, body: &[u8]) -> Result<Value, AppError> {
        let bundle = parse_resource(body)?;
        if bundle.type_name() != "Bundle" {
            return Err(invalid(
                IssueCode::Invariant,
                "resourceType",
                "POST to the base takes a Bundle",
            ));
        }
        let btype = bundle
            .json()
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let entries: Vec<Value> = bundle
            .json()
            .get("entry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if entries.len() > self.bundle_entries && matches!(btype.as_str(), "transaction" | "batch")
        {
            return Err(invalid(
                IssueCode::TooCostly,
                "Bundle.entry",
                format!(
                    "this {btype} has {} entries; this server takes at most {} in one Bundle (send several, or load files with `coproduce import`)",
                    entries.len(),
                    self.bundle_entries
                ),
            ));
        }
        match btype.as_str() {
            "transaction" => {
                let r = self.transaction(caller, entries).await;
                self.settle(r).await
            }
            "batch" => self.batch(caller, entries).await,
            other => Err(invalid(
                IssueCode::Value,
                "Bundle.type",
                format!("POST to the base takes a batch or transaction Bundle, not '{other}'"),
            )),
        }
    }

    /// A transaction of FHIR entries, each written with its own caller's rights (a person's
    /// own change, and what the system does on the team's behalf because of it), together
    /// with the notifications it sends and, for the deadline watcher, the claim of a missed
    /// deadline: all commit together or not at all. None when the claim was already taken
    /// (the deadline fired before); nothing is written then.
    pub async fn transaction_with(
        &self,
        entries: Vec<(&Caller, Value)>,
        notices: &[coproduce_store::NotificationRow],
        claim: Option<&coproduce_store::MissRow>,
    ) -> Result<Option<Value>, AppError> {
        let (callers, entries): (Vec<&Caller>, Vec<Value>) = entries.into_iter().unzip();
        let r = self.transaction_in(&callers, entries, notices, claim).await;
        self.settle(r).await
    }

    async fn transaction(&self, caller: &Caller, entries: Vec<Value>) -> Outcome<Value> {
        let callers = vec![caller; entries.len()];
        Ok(self
            .transaction_in(&callers, entries, &[], None)
            .await?
            .unwrap_or(Value::Null))
    }

    async fn transaction_in(
        &self,
        callers: &[&Caller],
        entries: Vec<Value>,
        notices: &[coproduce_store::NotificationRow],
        claim: Option<&coproduce_store::MissRow>,
    ) -> Outcome<Option<Value>> {
        // Ids first, so references between entries can be rewritten before anything is written.
        let mut planned = Vec::with_capacity(entries.len());
        let mut map = HashMap::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let e = Entry::read(i, entry)?;
            let target = planned_target(&e);
            if let (Some(full_url), Some(t)) = (&e.full_url, &target) {
                map.insert(full_url.clone(), t.clone());
            }
            planned.push((e, target));
        }
        // FHIR's order: DELETE, POST, PUT, GET.
        let rank = |m: &str| match m {
            "DELETE" => 0,
            "POST" => 1,
            "PUT" => 2,
            _ => 3,
        };
        let mut order: Vec<usize> = (0..planned.len()).collect();
        order.sort_by_key(|&i| (rank(&planned[i].0.method), i));
        let mut responses: Vec<Value> = vec![Value::Null; planned.len()];
        let mut tx = self.store.begin().await?;
        if let Some(c) = claim
            && !tx.claim_miss(c).await?
        {
            return Ok(None);
        }
        for i in order {
            let (e, target) = &mut planned[i];
            if let Some(r) = &mut e.resource {
                rewrite_references(r, &map);
            }
            let response = match self
                .entry_in(callers[i], &mut tx, e, target.as_deref())
                .await
            {
                Ok(r) => r,
                Err(Fail::App(err)) => return Err(Fail::App(within_entry(err, i))),
                Err(denied) => return Err(denied),
            };
            responses[i] = json!({"response": response});
        }
        for n in notices {
            tx.insert_notification(n).await?;
        }
        tx.commit().await?;
        Ok(Some(
            json!({"resourceType": "Bundle", "type": "transaction-response", "entry": responses}),
        ))
    }

    async fn batch(&self, caller: &Caller, entries: Vec<Value>) -> Result<Value, AppError> {
        let mut responses = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let result = async {
                let mut e = Entry::read(i, entry)?;
                let target = planned_target(&e);
                let mut tx = self.store.begin().await?;
                let response = self
                    .entry_in(caller, &mut tx, &mut e, target.as_deref())
                    .await?;
                tx.commit().await?;
                Ok(response)
            }
            .await;
            let result = self.settle(result).await;
            responses.push(match result {
                Ok(r) => json!({"response": r}),
                Err(AppError::Storage(e)) => return Err(AppError::Storage(e)),
                Err(err) => {
                    let (status, outcome) = status_of(&err);
                    json!({"response": {"status": status, "outcome": outcome.to_json()}})
                }
            });
        }
        Ok(json!({"resourceType": "Bundle", "type": "batch-response", "entry": responses}))
    }

    /// Carries out one entry inside a transaction; returns its `response`.
    async fn entry_in(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        e: &mut Entry,
        target: Option<&str>,
    ) -> Outcome<Value> {
        let written_response = |w: Written| {
            json!({
                "status": if w.created { "201 Created" } else { "200 OK" },
                "location": format!("{}/{}/_history/{}", w.stored.resource_type, w.stored.id, w.stored.version_id),
                "etag": format!("W/\"{}\"", w.stored.version_id),
                "lastModified": w.stored.last_updated_instant(),
            })
        };
        match e.method.as_str() {
            "POST" | "PUT" => {
                let value = e.resource.take().ok_or_else(|| {
                    invalid(
                        IssueCode::Required,
                        "resource",
                        format!("a {} entry needs a resource", e.method),
                    )
                })?;
                let mut resource = parse_resource_value(value)?;
                let (rt, id) = target.and_then(|t| t.split_once('/')).ok_or_else(|| {
                    invalid(
                        IssueCode::Value,
                        "request.url",
                        "the request url must be Type or Type/id",
                    )
                })?;
                if resource.type_name() != rt {
                    return Err(invalid(
                        IssueCode::Invariant,
                        "request.url",
                        format!(
                            "the entry's url is for {rt}, but the resource is a {}",
                            resource.type_name()
                        ),
                    )
                    .into());
                }
                if e.method == "POST" {
                    let w = self
                        .create_in(caller, tx, resource, e.if_none_exist.as_deref(), Some(id))
                        .await?;
                    Ok(written_response(w))
                } else {
                    if resource.id().is_none() {
                        resource.set_id(id);
                    }
                    let w = self.update_in(caller, tx, resource, id, e.if_match).await?;
                    Ok(written_response(w))
                }
            }
            "DELETE" => {
                let (rt, id) = split_type_id(&e.url_path)?;
                self.delete_in(caller, tx, rt, id).await?;
                Ok(json!({"status": "204 No Content"}))
            }
            "GET" => {
                let (rt, id, params) = match split_type_id(&e.url_path) {
                    Ok((rt, id)) => (
                        rt.to_string(),
                        Some(id.to_string()),
                        vec![("_id".to_string(), id.to_string())],
                    ),
                    Err(_) => (
                        ResourceType::parse(&e.url_path)?.as_str().to_string(),
                        None,
                        query_pairs(&e.url_query),
                    ),
                };
                let mut q = SearchQuery::parse(&rt, &params)?;
                let action = if id.is_some() {
                    Action::Read
                } else {
                    Action::Search
                };
                self.limit(caller, action, &rt, &mut q)?;
                let now = self.clock.now();
                let actor = caller.actor.clone();
                let include_reach =
                    move |t: &str| reach(&actor, Action::Search, t, is_clinical(t), now);
                let found = search_reaching(tx.conn(), &q, &include_reach).await?;
                let patients = touched(found.matches.iter());
                let entry = AuditEntry {
                    detail: Some(format!("{} matches", found.total)),
                    ..self.audit_entry(
                        caller,
                        if id.is_some() { "read" } else { "search" },
                        &rt,
                        id.as_deref(),
                        patients,
                    )
                };
                tx.audit(&entry).await?;
                if let Some(id) = id {
                    let stored = found
                        .matches
                        .into_iter()
                        .next()
                        .ok_or_else(|| AppError::NotFound(format!("{rt}/{id}")))?;
                    return Ok(
                        json!({"status": "200 OK", "etag": format!("W/\"{}\"", stored.version_id), "resource": stored.json()?}),
                    );
                }
                let mut entries = Vec::new();
                for m in &found.matches {
                    entries.push(json!({"resource": m.json()?}));
                }
                Ok(
                    json!({"status": "200 OK", "resource": {"resourceType": "Bundle", "type": "searchset", "total": found.total, "entry": entries}}),
                )
            }
            other => Err(invalid(
                IssueCode::NotSupported,
                "request.method",
                format!("the method {other} is not supported in a Bundle"),
            )
            .into()),
        }
    }
}

/// A change Provenance records: the resource, the version written, its patient.
struct Changed<'a> {
    rt: &'a str,
    id: &'a str,
    version: Option<i64>,
    patient: Option<&'a str>,
}

/// Where an entry's resource will live: `Type/new-id` for a POST, the url for a PUT.
fn planned_target(e: &Entry) -> Option<String> {
    match (&e.method[..], &e.resource) {
        ("POST", Some(r)) => Some(format!(
            "{}/{}",
            r.get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            new_id()
        )),
        ("PUT", _) => Some(e.url_path.clone()),
        _ => None,
    }
}

/// The patient compartments a set of results touches, space-separated, for the audit row.
fn touched<'a>(stored: impl Iterator<Item = &'a Stored>) -> Option<String> {
    let set: BTreeSet<&str> = stored.filter_map(|s| s.patient_id.as_deref()).collect();
    (!set.is_empty()).then(|| set.into_iter().collect::<Vec<_>>().join(" "))
}

/// One Bundle entry's request, read.
#[derive(Debug)]
struct Entry {
    method: String,
    url_path: String,
    url_query: String,
    full_url: Option<String>,
    resource: Option<Value>,
    if_none_exist: Option<String>,
    if_match: Option<i64>,
}

impl Entry {
    fn read(i: usize, entry: Value) -> Result<Self, AppError> {
        let Value::Object(mut entry) = entry else {
            return Err(invalid(
                IssueCode::Structure,
                &format!("Bundle.entry[{i}]"),
                "an entry must be an object",
            ));
        };
        let request: Map<String, Value> = entry
            .remove("request")
            .and_then(|r| r.as_object().cloned())
            .ok_or_else(|| {
                invalid(
                    IssueCode::Required,
                    &format!("Bundle.entry[{i}].request"),
                    "every entry needs a request",
                )
            })?;
        let method = request
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let url = request
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let if_match = match request.get("ifMatch").and_then(Value::as_str) {
            Some(v) => Some(parse_etag(v).ok_or_else(|| {
                invalid(
                    IssueCode::Value,
                    &format!("Bundle.entry[{i}].request.ifMatch"),
                    format!("'{v}' is not an ETag such as W/\"3\""),
                )
            })?),
            None => None,
        };
        Ok(Entry {
            method,
            url_path: path.trim_matches('/').to_string(),
            url_query: query.to_string(),
            full_url: entry
                .get("fullUrl")
                .and_then(Value::as_str)
                .map(str::to_string),
            resource: entry.remove("resource"),
            if_none_exist: request
                .get("ifNoneExist")
                .and_then(Value::as_str)
                .map(str::to_string),
            if_match,
        })
    }
}

fn split_type_id(path: &str) -> Result<(&str, &str), AppError> {
    split_reference(path).ok_or_else(|| {
        invalid(
            IssueCode::Value,
            "request.url",
            format!("'{path}' is not Type/id"),
        )
    })
}

/// Reads an ETag such as `W/"3"` or `"3"` as a version number.
pub fn parse_etag(v: &str) -> Option<i64> {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// Prefixes an error's locations with the entry it came from.
fn within_entry(err: AppError, i: usize) -> AppError {
    let prefix = format!("Bundle.entry[{i}]");
    match err {
        AppError::Invalid(o) => AppError::Invalid(o.within(&prefix)),
        AppError::NotFound(m) => AppError::NotFound(format!("{m} (in {prefix})")),
        AppError::Gone(m) => AppError::Gone(format!("{m} (in {prefix})")),
        AppError::PreconditionFailed(m) => AppError::PreconditionFailed(format!("{prefix}: {m}")),
        AppError::Conflict(m) => AppError::Conflict(format!("{prefix}: {m}")),
        other => other,
    }
}

/// The HTTP status line and OperationOutcome for an error (for batch entries; the web layer
/// uses the same table).
pub fn status_of(err: &AppError) -> (&'static str, OperationOutcome) {
    match err {
        AppError::Invalid(o) if o.is_structural() => ("400 Bad Request", o.clone()),
        AppError::Invalid(o) => ("422 Unprocessable Entity", o.clone()),
        AppError::NotFound(m) => (
            "404 Not Found",
            OperationOutcome::message(IssueCode::NotFound, format!("{m} is not known")),
        ),
        AppError::Gone(m) => (
            "410 Gone",
            OperationOutcome::message(IssueCode::Deleted, format!("{m} was deleted")),
        ),
        AppError::PreconditionFailed(m) => (
            "412 Precondition Failed",
            OperationOutcome::message(IssueCode::Conflict, m.clone()),
        ),
        AppError::Conflict(m) => (
            "409 Conflict",
            OperationOutcome::message(IssueCode::Conflict, m.clone()),
        ),
        AppError::Unauthorized(m) => (
            "401 Unauthorized",
            OperationOutcome::message(IssueCode::Login, m.clone()),
        ),
        AppError::Forbidden(m) => (
            "403 Forbidden",
            OperationOutcome::message(IssueCode::Forbidden, m.clone()),
        ),
        AppError::Internal(_) => (
            "500 Internal Server Error",
            OperationOutcome::message(
                IssueCode::Exception,
                "the server failed; nothing was written",
            ),
        ),
        AppError::Storage(_) => (
            "500 Internal Server Error",
            OperationOutcome::message(
                IssueCode::Exception,
                "the database failed; nothing was written",
            ),
        ),
    }
}
