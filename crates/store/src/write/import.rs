//! Bulk import: a batch of resources written with their history and index rows in a few
//! statements, each resource created, updated or left as it was. What does not depend on
//! the store (the JSON, the index rows' values, the compartment the resource's own
//! references name) is worked out first, off the writer ([`Prepared`]), so the writer's
//! transaction does only what needs the store.

use super::*;

/// A resource made ready to write before the writer takes it (by an import, or by a create
/// through the API: [`Tx::create_prepared`]): stamped as version 1 at `now`, with its JSON
/// and its search index values. The writer stamps it again only if it is written as another
/// version (it exists already, or existed and was deleted).
#[derive(Debug)]
pub struct Prepared {
    pub(super) resource: Resource,
    pub(super) rt: String,
    pub(super) id: String,
    pub(super) index: SearchIndex,
    /// The Patient compartment its own references name (a Provenance's, found through its
    /// target, needs the store: left to the writer).
    pub(super) patient: Option<String>,
    pub(super) content: String,
    /// The version it is stamped as.
    pub(super) version: i64,
    pub(super) now: OffsetDateTime,
    pub(super) restricted: i64,
}

impl Prepared {
    /// The work of writing `resource` as a new version 1 that needs no store: fails only if
    /// it has no id.
    pub fn new(resource: Resource, now: OffsetDateTime) -> Result<Self, StoreError> {
        Prepared::stamped(resource, 1, now)
    }

    /// [`Prepared::new`], stamped as `version`.
    pub(super) fn stamped(
        mut resource: Resource,
        version: i64,
        now: OffsetDateTime,
    ) -> Result<Self, StoreError> {
        let (rt, id) = ids(&resource)?;
        resource.set_version(version, &format_instant(millis(now)));
        let index = extract(&resource);
        let patient = patient_compartment(&resource, &index);
        let restricted = labels(resource.json());
        let content = serialize(&resource)?;
        Ok(Prepared {
            resource,
            rt,
            id,
            index,
            patient,
            content,
            version,
            now,
            restricted,
        })
    }

    /// Stamped as `version` instead, if it was prepared as another.
    pub(super) fn restamped(mut self, version: i64) -> Result<Self, StoreError> {
        if version != self.version {
            self.resource
                .set_version(version, &format_instant(millis(self.now)));
            self.content = serialize(&self.resource)?;
            self.version = version;
        }
        Ok(self)
    }

    /// The resource as it will be written.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// The resource's type.
    pub fn type_name(&self) -> &str {
        &self.rt
    }

    /// The resource's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Tx {
    /// Imports many resources at once, with the same outcome as [`Tx::import`] for each but
    /// a handful of statements for the whole batch instead of several per resource.
    pub async fn import_batch(
        &mut self,
        resources: Vec<Resource>,
        now: OffsetDateTime,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let prepared = resources
            .into_iter()
            .map(|r| Prepared::new(r, now))
            .collect::<Result<Vec<_>, _>>()?;
        self.import_prepared(prepared).await
    }

    /// [`Tx::import_batch`] of resources prepared beforehand.
    pub async fn import_prepared(
        &mut self,
        resources: Vec<Prepared>,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let mut keys = HashSet::with_capacity(resources.len());
        let mut repeats = false;
        for r in &resources {
            repeats |= !keys.insert((r.rt.clone(), r.id.clone()));
        }
        if repeats {
            // The same resource twice in one batch: one at a time, in order.
            let mut out = Vec::with_capacity(resources.len());
            for r in resources {
                out.push(self.import(r.resource, r.now).await?);
            }
            return Ok(out);
        }
        let current = self.current_many(&keys).await?;
        let mut outcomes = Vec::with_capacity(resources.len());
        let mut rows = Vec::new();
        let mut history = Vec::new();
        let mut index_rows = IndexRows::default();
        let mut to_clear: HashMap<String, Vec<String>> = HashMap::new();
        let mut tasks = Vec::new();
        // The compartments of this batch's resources, whose rows are inserted only after the
        // loop: a Provenance finds its target's among them.
        let mut written = HashMap::with_capacity(resources.len());
        for prepared in resources {
            let cur = current.get(&(prepared.rt.clone(), prepared.id.clone()));
            if let Some(Current {
                deleted: false,
                content: Some(stored),
                ..
            }) = cur
            {
                let stored: Value = serde_json::from_str(stored).map_err(|e| {
                    StoreError::Corrupt(format!("{}/{}: {e}", prepared.rt, prepared.id))
                })?;
                if strip_version_meta(stored) == prepared.resource.content_without_meta_version() {
                    outcomes.push(ImportOutcome::Unchanged);
                    continue;
                }
            }
            let previous = cur.map_or(0, |c| c.version);
            if let Some(p) = cur.and_then(|c| c.patient.as_deref()) {
                self.touched.insert(p.to_string());
            }
            outcomes.push(match cur {
                Some(c) if !c.deleted => {
                    to_clear
                        .entry(prepared.rt.clone())
                        .or_default()
                        .push(prepared.id.clone());
                    ImportOutcome::Updated
                }
                _ => ImportOutcome::Created,
            });
            let version = previous + 1;
            let p = prepared.restamped(version)?;
            let ms = millis(p.now);
            let patient = match p.patient {
                Some(patient) => Some(patient),
                None => {
                    self.compartment_among(&p.resource, &p.index, &written)
                        .await?
                }
            };
            written.insert((p.rt.clone(), p.id.clone()), patient.clone());
            self.touch(patient.as_deref());
            index_rows.add(&p.rt, &p.id, patient.as_deref(), ms, &p.index);
            if p.rt == "Task" {
                tasks.push((p.id.clone(), patient.clone(), p.resource.json().clone()));
            }
            let shared = i64::from(!is_clinical(&p.rt));
            history.push(vec![
                Arg::Text(p.rt.clone()),
                Arg::Text(p.id.clone()),
                Arg::Int(version),
                Arg::Int(ms),
                Arg::from(patient.clone()),
                Arg::Int(0),
                Arg::from("PUT"),
                Arg::NoText,
                Arg::Int(shared),
                Arg::Int(p.restricted),
            ]);
            rows.push(vec![
                Arg::Text(p.rt),
                Arg::Text(p.id),
                Arg::Int(version),
                Arg::Int(ms),
                Arg::from(patient),
                Arg::Int(0),
                Arg::Text(p.content),
                Arg::Int(shared),
                Arg::Int(p.restricted),
            ]);
        }
        for (rt, ids) in &to_clear {
            self.keep_current_in_history(rt, ids).await?;
            for chunk in ids.chunks(500) {
                for table in [
                    "search_token",
                    "search_reference",
                    "search_date",
                    "search_string",
                ] {
                    let (among, args) = self.of_type_among(rt, "resource_id", chunk);
                    let sql = format!("DELETE FROM {table} WHERE {among}");
                    self.db().execute(&sql, &args).await?;
                }
            }
        }
        // The version guard keeps a concurrent writer's change from being overwritten.
        let expected = rows.len() as u64;
        let written = self
            .insert_rows_with(
                "resources",
                "resource_type, id, version_id, last_updated, patient_id, deleted, content, shared, restricted",
                rows,
                " ON CONFLICT (resource_type, id) DO UPDATE SET version_id = excluded.version_id, \
                 last_updated = excluded.last_updated, patient_id = excluded.patient_id, deleted = 0, \
                 content = excluded.content, restricted = excluded.restricted WHERE resources.version_id = excluded.version_id - 1",
            )
            .await?;
        if written != expected {
            return Err(StoreError::PreconditionFailed(
                "another writer changed some of these resources during the import; run it again"
                    .into(),
            ));
        }
        self.insert_rows(
            "resource_history",
            "resource_type, id, version_id, last_updated, patient_id, deleted, method, content, shared, restricted",
            history,
        )
        .await?;
        self.insert_index_rows(index_rows).await?;
        for (id, patient, content) in &tasks {
            self.sync_deadline(id, patient.as_deref(), Some(content))
                .await?;
        }
        Ok(outcomes)
    }

    pub(super) async fn current_many(
        &mut self,
        keys: &HashSet<(String, String)>,
    ) -> Result<HashMap<(String, String), Current>, StoreError> {
        let mut by_type: HashMap<&str, Vec<&str>> = HashMap::new();
        for (rt, id) in keys {
            by_type.entry(rt.as_str()).or_default().push(id.as_str());
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (rt, ids) in by_type {
            for chunk in ids.chunks(500) {
                let (among, args) = self.of_type_among(rt, "id", chunk);
                let sql = format!(
                    "SELECT id, version_id, deleted, content, patient_id FROM resources WHERE {among}"
                );
                let found = self
                    .db()
                    .rows(&sql, &args, |r| {
                        Ok((
                            r.text(0)?,
                            Current {
                                version: r.int(1)?,
                                deleted: r.flag(2)?,
                                content: Some(r.text(3)?),
                                patient: r.maybe_text(4)?,
                            },
                        ))
                    })
                    .await?;
                for (id, current) in found {
                    out.insert((rt.to_string(), id), current);
                }
            }
        }
        Ok(out)
    }
}
