//! The FHIR REST interactions: create, read, vread, update, delete, history, search, and
//! batch/transaction Bundles. Input is parsed strictly and validated before anything is
//! written; a transaction is one database transaction.

use crate::error::AppError;
use coproduce_core::Clock;
use coproduce_fhir::query::SearchQuery;
use coproduce_fhir::search::split_reference;
use coproduce_fhir::stream::rewrite_references;
use coproduce_fhir::{
    IssueCode, OperationOutcome, Resource, ResourceType, parse_resource, parse_resource_value,
};
use coproduce_store::search::search_on;
use coproduce_store::{HistoryEntry, SearchResult, Store, Stored, Tx};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
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
}

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

/// Splits `a=1&b=2` into decoded pairs.
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl FhirApi {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        FhirApi { store, clock }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Checks the database answers.
    pub async fn health(&self) -> Result<(), AppError> {
        Ok(self.store.ping().await?)
    }

    /// Database pool sizes (open, idle) for metrics.
    pub fn pool_stats(&self) -> (u32, usize) {
        self.store.pool_stats()
    }

    pub fn backend_name(&self) -> &'static str {
        self.store.backend().name()
    }

    /// POST /{type}: creates with a new id, or (with `If-None-Exist`) returns the one match.
    pub async fn create(
        &self,
        rt: &str,
        body: &[u8],
        if_none_exist: Option<&str>,
    ) -> Result<Written, AppError> {
        let rt = ResourceType::parse(rt)?;
        let resource = parse_body(&rt, body)?;
        let mut tx = self.store.begin().await?;
        let written = self
            .create_in(&mut tx, resource, if_none_exist, None)
            .await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Creates inside a transaction, with `id` when the caller planned one (a transaction
    /// Bundle plans ids first so entries can refer to each other), else a new one.
    async fn create_in(
        &self,
        tx: &mut Tx,
        mut resource: Resource,
        if_none_exist: Option<&str>,
        id: Option<&str>,
    ) -> Result<Written, AppError> {
        if let Some(cond) = if_none_exist {
            let q = SearchQuery::parse(
                resource.type_name(),
                &query_pairs(cond.trim_start_matches('?')),
            )?;
            let found = search_on(tx.conn(), &SearchQuery { count: 2, ..q }).await?;
            match found.matches.len() {
                0 => {}
                1 => {
                    return Ok(Written {
                        stored: found.matches.into_iter().next().expect("one match"),
                        created: false,
                    });
                }
                _ => {
                    return Err(AppError::PreconditionFailed(format!(
                        "If-None-Exist '{cond}' matches {} resources; it must match at most one",
                        found.total
                    )));
                }
            }
        }
        resource.set_id(&id.map_or_else(new_id, str::to_string));
        let stored = tx.create(resource, self.clock.now()).await?;
        Ok(Written {
            stored,
            created: true,
        })
    }

    /// PUT /{type}/{id}: updates, or creates with the client's id.
    pub async fn update(
        &self,
        rt: &str,
        id: &str,
        body: &[u8],
        if_match: Option<i64>,
    ) -> Result<Written, AppError> {
        let rt = ResourceType::parse(rt)?;
        let resource = parse_body(&rt, body)?;
        let mut tx = self.store.begin().await?;
        let written = self.update_in(&mut tx, resource, id, if_match).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn update_in(
        &self,
        tx: &mut Tx,
        resource: Resource,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<Written, AppError> {
        match resource.id() {
            Some(body_id) if body_id == id => {}
            Some(body_id) => {
                return Err(invalid(
                    IssueCode::Invariant,
                    "id",
                    format!("the body's id '{body_id}' differs from the URL's id '{id}'"),
                ));
            }
            None => {
                return Err(invalid(
                    IssueCode::Required,
                    "id",
                    "an update needs the resource's id in the body",
                ));
            }
        }
        let out = tx.update(resource, if_match, self.clock.now()).await?;
        Ok(Written {
            stored: out.stored,
            created: out.created,
        })
    }

    pub async fn read(&self, rt: &str, id: &str) -> Result<Stored, AppError> {
        let rt = ResourceType::parse(rt)?;
        Ok(self.store.read(rt.as_str(), id).await?)
    }

    pub async fn vread(&self, rt: &str, id: &str, version: &str) -> Result<Stored, AppError> {
        let rt = ResourceType::parse(rt)?;
        let v: i64 = version.parse().map_err(|_| {
            invalid(
                IssueCode::Value,
                "",
                format!("'{version}' is not a version number"),
            )
        })?;
        Ok(self.store.vread(rt.as_str(), id, v).await?)
    }

    /// DELETE: returns the deletion's version, or None if there was nothing to delete
    /// (deleting twice is not an error).
    pub async fn delete(&self, rt: &str, id: &str) -> Result<Option<i64>, AppError> {
        let rt = ResourceType::parse(rt)?;
        let mut tx = self.store.begin().await?;
        let v = tx.delete(rt.as_str(), id, self.clock.now()).await?;
        tx.commit().await?;
        Ok(v)
    }

    pub async fn history(
        &self,
        rt: &str,
        id: Option<&str>,
        params: &[(String, String)],
    ) -> Result<(i64, Vec<HistoryEntry>, usize, usize), AppError> {
        let rt = ResourceType::parse(rt)?;
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
                "_offset" => offset = v.parse().map_err(|_| bad())?,
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
        let (total, entries) = self
            .store
            .history(rt.as_str(), id, since, count, offset)
            .await?;
        if let (Some(id), 0) = (id, total) {
            return Err(AppError::NotFound(format!("{rt}/{id}")));
        }
        Ok((total, entries, count, offset))
    }

    pub async fn search(
        &self,
        rt: &str,
        params: &[(String, String)],
    ) -> Result<(SearchQuery, SearchResult), AppError> {
        let rt = ResourceType::parse(rt)?;
        let q = SearchQuery::parse(rt.as_str(), params)?;
        let result = self.store.search(&q).await?;
        Ok((q, result))
    }

    /// POST / with a batch or transaction Bundle; returns the response Bundle.
    pub async fn bundle(&self, body: &[u8]) -> Result<Value, AppError> {
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
        match btype.as_str() {
            "transaction" => self.transaction(entries).await,
            "batch" => self.batch(entries).await,
            other => Err(invalid(
                IssueCode::Value,
                "Bundle.type",
                format!("POST to the base takes a batch or transaction Bundle, not '{other}'"),
            )),
        }
    }

    async fn transaction(&self, entries: Vec<Value>) -> Result<Value, AppError> {
        // Ids first, so references between entries can be rewritten before anything is written.
        let mut planned = Vec::with_capacity(entries.len());
        let mut map = HashMap::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let e = Entry::read(i, entry)?;
            let target = match (&e.method[..], &e.resource) {
                ("POST", Some(r)) => {
                    let rt = r
                        .get("resourceType")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    Some(format!("{rt}/{}", new_id()))
                }
                ("PUT", _) => Some(e.url_path.clone()),
                _ => None,
            };
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
        for i in order {
            let (e, target) = &mut planned[i];
            if let Some(r) = &mut e.resource {
                rewrite_references(r, &map);
            }
            let response = self
                .entry_in(&mut tx, e, target.as_deref())
                .await
                .map_err(|err| within_entry(err, i))?;
            responses[i] = json!({"response": response});
        }
        tx.commit().await?;
        Ok(json!({"resourceType": "Bundle", "type": "transaction-response", "entry": responses}))
    }

    async fn batch(&self, entries: Vec<Value>) -> Result<Value, AppError> {
        let mut responses = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let result = async {
                let mut e = Entry::read(i, entry)?;
                let target = match (&e.method[..], &e.resource) {
                    ("POST", Some(r)) => Some(format!(
                        "{}/{}",
                        r.get("resourceType")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                        new_id()
                    )),
                    ("PUT", _) => Some(e.url_path.clone()),
                    _ => None,
                };
                let mut tx = self.store.begin().await?;
                let response = self.entry_in(&mut tx, &mut e, target.as_deref()).await?;
                tx.commit().await?;
                Ok::<Value, AppError>(response)
            }
            .await;
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
        tx: &mut Tx,
        e: &mut Entry,
        target: Option<&str>,
    ) -> Result<Value, AppError> {
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
                    ));
                }
                if e.method == "POST" {
                    let w = self
                        .create_in(tx, resource, e.if_none_exist.as_deref(), Some(id))
                        .await?;
                    Ok(written_response(w))
                } else {
                    if resource.id().is_none() {
                        resource.set_id(id);
                    }
                    let w = self.update_in(tx, resource, id, e.if_match).await?;
                    Ok(written_response(w))
                }
            }
            "DELETE" => {
                let (rt, id) = split_type_id(&e.url_path)?;
                tx.delete(rt, id, self.clock.now()).await?;
                Ok(json!({"status": "204 No Content"}))
            }
            "GET" => {
                if let Ok((rt, id)) = split_type_id(&e.url_path) {
                    let q = SearchQuery {
                        filters: vec![coproduce_fhir::query::Filter::Id(vec![id.to_string()])],
                        ..SearchQuery::all(rt)
                    };
                    let found = search_on(tx.conn(), &q).await?;
                    let stored = found
                        .matches
                        .into_iter()
                        .next()
                        .ok_or_else(|| AppError::NotFound(e.url_path.clone()))?;
                    Ok(
                        json!({"status": "200 OK", "etag": format!("W/\"{}\"", stored.version_id), "resource": stored.json()?}),
                    )
                } else {
                    let rt = ResourceType::parse(&e.url_path)?;
                    let q = SearchQuery::parse(rt.as_str(), &query_pairs(&e.url_query))?;
                    let found = search_on(tx.conn(), &q).await?;
                    let mut entries = Vec::new();
                    for m in &found.matches {
                        entries.push(json!({"resource": m.json()?}));
                    }
                    Ok(
                        json!({"status": "200 OK", "resource": {"resourceType": "Bundle", "type": "searchset", "total": found.total, "entry": entries}}),
                    )
                }
            }
            other => Err(invalid(
                IssueCode::NotSupported,
                "request.method",
                format!("the method {other} is not supported in a Bundle"),
            )),
        }
    }
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
        AppError::Storage(_) => (
            "500 Internal Server Error",
            OperationOutcome::message(
                IssueCode::Exception,
                "the database failed; nothing was written",
            ),
        ),
    }
}
