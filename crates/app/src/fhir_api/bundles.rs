//! Batch and transaction Bundles: entries planned and resolved in order, a transaction
//! committed as one, a batch entry by entry.

use super::*;
use futures::StreamExt;

/// Where an entry's resource will live: `Type/new-id` for a POST (the type its url names,
/// which the resource must then be; none when the url is not a bare type), the url for a
/// PUT.
pub(super) fn planned_target(e: &Entry) -> Option<String> {
    match (&e.method[..], &e.resource) {
        ("POST", Some(_)) => {
            let rt = e.url_path.trim_end_matches('/');
            (!rt.is_empty() && !rt.contains('/')).then(|| format!("{rt}/{}", new_id()))
        }
        ("PUT", _) => Some(e.url_path.clone()),
        _ => None,
    }
}

/// The patient compartments a set of results touches, space-separated, for the audit row.
pub(super) fn touched<'a>(stored: impl Iterator<Item = &'a Stored>) -> Option<String> {
    let set: BTreeSet<&str> = stored.filter_map(|s| s.patient_id.as_deref()).collect();
    (!set.is_empty()).then(|| set.into_iter().collect::<Vec<_>>().join(" "))
}

/// A response Bundle's entry for an entry's answer: what it read goes in the entry's
/// `resource`, beside its `response` (which has no element for it in FHIR R4).
fn answered(mut response: Value) -> Value {
    match response.as_object_mut().and_then(|o| o.remove("resource")) {
        Some(resource) => json!({"resource": resource, "response": response}),
        None => json!({"response": response}),
    }
}

/// How many of a batch's plain creates are carried out at once.
const BATCH_IN_FLIGHT: usize = 32;

/// One Bundle entry's request, read.
#[derive(Debug)]
pub(super) struct Entry {
    method: String,
    url_path: String,
    url_query: String,
    full_url: Option<String>,
    resource: Option<Value>,
    if_none_exist: Option<String>,
    if_match: Option<i64>,
}

impl Entry {
    /// A create that no other entry of a batch can touch or be touched by: a POST without
    /// `ifNoneExist` (its id is new; a conditional create must see the entries before it).
    fn plain_create(&self) -> bool {
        self.method == "POST" && self.if_none_exist.is_none()
    }

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

pub(super) fn split_type_id(path: &str) -> Result<(&str, &str), AppError> {
    split_reference(path).ok_or_else(|| {
        invalid(
            IssueCode::Value,
            "request.url",
            format!("'{path}' is not Type/id"),
        )
    })
}

/// Prefixes an error's locations with the entry it came from.
pub(super) fn within_entry(err: AppError, i: usize) -> AppError {
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

impl FhirApi {
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
        if entries.len() > self.bundle_entries {
            return Err(invalid(
                IssueCode::TooCostly,
                "Bundle.entry",
                format!(
                    "{} changes in one transaction; this server takes at most {}",
                    entries.len(),
                    self.bundle_entries
                ),
            ));
        }
        let (callers, entries): (Vec<&Caller>, Vec<Value>) = entries.into_iter().unzip();
        let r = self.transaction_in(&callers, entries, notices, claim).await;
        self.settle(r).await
    }

    pub(super) async fn transaction(&self, caller: &Caller, entries: Vec<Value>) -> Outcome<Value> {
        let callers = vec![caller; entries.len()];
        Ok(self
            .transaction_in(&callers, entries, &[], None)
            .await?
            .unwrap_or(Value::Null))
    }

    pub(super) async fn transaction_in(
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
            responses[i] = answered(response);
        }
        for n in notices {
            tx.insert_notification(n).await?;
        }
        tx.commit().await?;
        Ok(Some(
            json!({"resourceType": "Bundle", "type": "transaction-response", "entry": responses}),
        ))
    }

    /// A batch: each entry in a write of its own, answered in the Bundle's order. A run of
    /// plain creates (POST without `ifNoneExist`), which cannot touch each other, is carried
    /// out side by side, up to [`BATCH_IN_FLIGHT`] at once, so that its writes share durable
    /// commits instead of waiting for one each; every other entry runs alone, after all
    /// before it, as it would in a request of its own.
    pub(super) async fn batch(
        &self,
        caller: &Caller,
        entries: Vec<Value>,
    ) -> Result<Value, AppError> {
        let mut responses = Vec::with_capacity(entries.len());
        let mut read = entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| Entry::read(i, entry))
            .peekable();
        let plain = |e: &Result<Entry, AppError>| e.as_ref().is_ok_and(Entry::plain_create);
        while let Some(first) = read.next() {
            let mut run = Vec::new();
            if plain(&first) {
                while let Some(next) = read.next_if(plain) {
                    run.push(next);
                }
            }
            run.insert(0, first);
            let results: Vec<Result<Value, AppError>> = futures::stream::iter(run)
                .map(|e| self.batch_entry(caller, e))
                .buffered(BATCH_IN_FLIGHT)
                .collect()
                .await;
            for result in results {
                responses.push(match result {
                    Ok(r) => answered(r),
                    Err(AppError::Storage(e)) => return Err(AppError::Storage(e)),
                    Err(err) => {
                        let (status, outcome) = status_of(&err);
                        json!({"response": {"status": status, "outcome": outcome.to_json()}})
                    }
                });
            }
        }
        Ok(json!({"resourceType": "Bundle", "type": "batch-response", "entry": responses}))
    }

    /// One batch entry, in a write of its own: its `response`.
    async fn batch_entry(
        &self,
        caller: &Caller,
        entry: Result<Entry, AppError>,
    ) -> Result<Value, AppError> {
        let result = async {
            let mut e = entry?;
            let target = planned_target(&e);
            let mut tx = self.store.begin().await?;
            let response = self
                .entry_in(caller, &mut tx, &mut e, target.as_deref())
                .await?;
            tx.commit().await?;
            Ok(response)
        }
        .await;
        self.settle(result).await
    }

    /// Carries out one entry inside a transaction; returns its `response`.
    pub(super) async fn entry_in(
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
                let found = search_reaching(tx.db(), &q, &include_reach).await?;
                let patients = touched(found.matches.iter());
                let entry = AuditEntry {
                    detail: Some(found.described()),
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
                let mut bundle =
                    json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
                if let Some(total) = found.total {
                    bundle["total"] = json!(total);
                }
                Ok(json!({"status": "200 OK", "resource": bundle}))
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

/// A transaction entry that writes `resource` as `rt/id` (create or update), only over the
/// version given when there is one (`If-Match`).
pub fn put(rt: &str, id: &str, resource: Value, version: Option<i64>) -> Value {
    let mut request = json!({"method": "PUT", "url": format!("{rt}/{id}")});
    if let Some(v) = version {
        request["ifMatch"] = json!(format!("W/\"{v}\""));
    }
    json!({"resource": resource, "request": request})
}
