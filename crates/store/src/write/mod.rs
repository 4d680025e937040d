//! Writes: every one inside a [`Tx`], so a resource, its history row and its index rows
//! commit together or not at all (and a transaction Bundle is one [`Tx`]).

use crate::Backend;
use crate::db::{Arg, Db, args};
use crate::error::StoreError;
use crate::read::{Stored, format_instant, millis};
use coproduce_fhir::Resource;
use coproduce_fhir::search::{
    SearchIndex, extract, is_clinical, labels, patient_compartment, split_reference,
};
use serde_json::Value;
use sqlx::{Any, Transaction};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

mod import;
mod index;

pub use import::Prepared;
use index::*;

/// A write transaction.
#[derive(Debug)]
pub struct Tx {
    pub(crate) tx: Lease,
    backend: Backend,
    /// Patients whose compartment this transaction changed: their measure projection is
    /// rebuilt before it commits.
    touched: HashSet<String>,
    /// Seals the audit trail's head when this transaction appends to it.
    pub(crate) audit_key: Option<crate::AuditKey>,
}

/// The result of a create or update.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub stored: Stored,
    /// True when the write created the resource (update-as-create included).
    pub created: bool,
}

/// What an import did with one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Created,
    Updated,
    Unchanged,
}

/// The connection a [`Tx`] writes on: a transaction of its own (PostgreSQL), or its
/// savepoint in the SQLite writer's batch (group commit, see `group.rs`).
#[derive(Debug)]
pub(crate) enum Lease {
    Own(Transaction<'static, Any>),
    Batched(crate::group::Member),
}

impl Lease {
    fn db(&mut self) -> Db<'_> {
        match self {
            Lease::Own(tx) => Db::any(tx),
            Lease::Batched(member) => member.db(),
        }
    }
}

struct Current {
    version: i64,
    deleted: bool,
    content: Option<String>,
    patient: Option<String>,
}

impl Tx {
    pub(crate) fn new(tx: Lease, backend: Backend, audit_key: Option<crate::AuditKey>) -> Self {
        Tx {
            tx,
            backend,
            touched: HashSet::new(),
            audit_key,
        }
    }

    /// The placeholder for the `n`th argument ([`Backend::mark`]).
    pub(crate) fn mark(&self, n: usize) -> String {
        self.backend.mark(n)
    }

    /// Placeholders for arguments `from..from + n` ([`Backend::marks`]).
    pub(crate) fn marks(&self, from: usize, n: usize) -> String {
        self.backend.marks(from, n)
    }

    pub async fn commit(mut self) -> Result<(), StoreError> {
        let touched: Vec<String> = self.touched.drain().collect();
        self.mark_patient_records(&touched).await?;
        match self.tx {
            Lease::Own(tx) => tx.commit().await?,
            Lease::Batched(member) => member.commit().await?,
        }
        Ok(())
    }

    fn touch(&mut self, patient: Option<&str>) {
        if let Some(p) = patient {
            self.touched.insert(p.to_string());
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// The current version of a resource, deleted or not, seen inside this transaction.
    pub async fn current_stored(
        &mut self,
        rt: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        let sql = format!(
            "SELECT {} FROM resources WHERE resource_type = $1 AND id = $2",
            crate::read::COLUMNS
        );
        self.db()
            .first(&sql, &args![rt, id], |r| Stored::from_row(r))
            .await
    }

    /// The connection, for reads inside the transaction (conditional create, Bundles).
    pub fn db(&mut self) -> Db<'_> {
        self.tx.db()
    }

    /// The Patient compartment a resource would be stored in: the one its own references
    /// name (R4's CompartmentDefinition), and for a Provenance, which names no patient, the
    /// compartment of the first target that is in one, so that a record of who changed a
    /// chart belongs to that chart.
    pub async fn compartment_of(
        &mut self,
        resource: &Resource,
        index: &SearchIndex,
    ) -> Result<Option<String>, StoreError> {
        self.compartment_among(resource, index, &HashMap::new())
            .await
    }

    /// [`Tx::compartment_of`], where `written` holds the compartments of resources this
    /// transaction writes whose rows are not in the store yet (an import batch's, inserted
    /// together at its end), by type and id: a target among them is looked up there.
    pub(crate) async fn compartment_among(
        &mut self,
        resource: &Resource,
        index: &SearchIndex,
        written: &HashMap<(String, String), Option<String>>,
    ) -> Result<Option<String>, StoreError> {
        if let Some(p) = patient_compartment(resource, index) {
            return Ok(Some(p));
        }
        if resource.type_name() != "Provenance" {
            return Ok(None);
        }
        let targets = resource.json()["target"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for target in &targets {
            let Some((rt, id)) = target["reference"].as_str().and_then(split_reference) else {
                continue;
            };
            if rt == "Patient" {
                return Ok(Some(id.to_string()));
            }
            match written.get(&(rt.to_string(), id.to_string())) {
                Some(Some(patient)) => return Ok(Some(patient.clone())),
                Some(None) => continue,
                None => {}
            }
            let found = self
                .db()
                .first(
                    "SELECT patient_id FROM resources WHERE resource_type = $1 AND id = $2",
                    &args![rt, id],
                    |r| r.maybe_text(0),
                )
                .await?;
            if let Some(p) = found.flatten() {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    async fn current(&mut self, rt: &str, id: &str) -> Result<Option<Current>, StoreError> {
        self.db()
            .first(
                "SELECT version_id, deleted, content, patient_id FROM resources WHERE resource_type = $1 AND id = $2",
                &args![rt, id],
                |r| {
                    Ok(Current {
                        version: r.int(0)?,
                        deleted: r.flag(1)?,
                        content: Some(r.text(2)?),
                        patient: r.maybe_text(3)?,
                    })
                },
            )
            .await
    }

    /// Creates a resource with the id it carries (the caller assigns new ids). Fails with
    /// a conflict if a live resource of that id exists.
    pub async fn create(
        &mut self,
        resource: Resource,
        now: OffsetDateTime,
    ) -> Result<Stored, StoreError> {
        self.create_prepared(Prepared::new(resource, now)?).await
    }

    /// [`Tx::create`] of a resource prepared before the writer was taken: its JSON, search
    /// index and labels are not worked out again while every other write waits for it.
    pub async fn create_prepared(&mut self, prepared: Prepared) -> Result<Stored, StoreError> {
        let (rt, id) = (prepared.type_name(), prepared.id());
        match self.current(rt, id).await? {
            Some(c) if !c.deleted => Err(StoreError::PreconditionFailed(format!(
                "{rt}/{id} exists already"
            ))),
            current => {
                let version = current.map_or(1, |c| c.version + 1);
                self.put_prepared(prepared, version, version - 1, "POST")
                    .await
            }
        }
    }

    /// Updates (or creates, with the caller's id) a resource. `if_match` is the version the
    /// caller last saw; a different current version is a conflict.
    pub async fn update(
        &mut self,
        resource: Resource,
        if_match: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<WriteOutcome, StoreError> {
        let (rt, id) = ids(&resource)?;
        let current = self.current(&rt, &id).await?;
        let actual = current.as_ref().map_or(0, |c| c.version);
        if let Some(expected) = if_match
            && expected != actual
        {
            return Err(StoreError::VersionConflict { expected, actual });
        }
        let created = current.as_ref().is_none_or(|c| c.deleted);
        self.touch(current.as_ref().and_then(|c| c.patient.as_deref()));
        let stored = self
            .put_version(resource, actual + 1, actual, now, "PUT")
            .await?;
        Ok(WriteOutcome { stored, created })
    }

    /// Imports a resource under its own id: created, updated, or left alone when its content
    /// equals what is stored (so importing the same file twice changes nothing).
    pub async fn import(
        &mut self,
        resource: Resource,
        now: OffsetDateTime,
    ) -> Result<ImportOutcome, StoreError> {
        let (rt, id) = ids(&resource)?;
        let current = self.current(&rt, &id).await?;
        if let Some(Current {
            deleted: false,
            content: Some(content),
            ..
        }) = &current
        {
            let stored: Value = serde_json::from_str(content)
                .map_err(|e| StoreError::Corrupt(format!("{rt}/{id}: {e}")))?;
            if strip_version_meta(stored) == resource.content_without_meta_version() {
                return Ok(ImportOutcome::Unchanged);
            }
        }
        let actual = current.as_ref().map_or(0, |c| c.version);
        self.touch(current.as_ref().and_then(|c| c.patient.as_deref()));
        let outcome = if current.as_ref().is_none_or(|c| c.deleted) {
            ImportOutcome::Created
        } else {
            ImportOutcome::Updated
        };
        self.put_version(resource, actual + 1, actual, now, "PUT")
            .await?;
        Ok(outcome)
    }

    /// Deletes (softly: history keeps every version). Returns the deletion's version, or None
    /// when there was nothing live to delete.
    pub async fn delete(
        &mut self,
        rt: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        let Some(current) = self.current(rt, id).await? else {
            return Ok(None);
        };
        if current.deleted {
            return Ok(None);
        }
        self.touch(current.patient.as_deref());
        self.keep_current_in_history(rt, &[id.to_string()]).await?;
        let version = current.version + 1;
        let ms = millis(now);
        let changed = self
            .db()
            .execute(
                "UPDATE resources SET version_id = $1, last_updated = $2, deleted = 1 \
                 WHERE resource_type = $3 AND id = $4 AND version_id = $5",
                &args![version, ms, rt, id, current.version],
            )
            .await?;
        if changed != 1 {
            return Err(StoreError::VersionConflict {
                expected: current.version,
                actual: current.version + 1,
            });
        }
        self.db()
            .execute(
                "INSERT INTO resource_history (resource_type, id, version_id, last_updated, patient_id, deleted, method, content, shared, restricted) \
                 SELECT resource_type, id, version_id, last_updated, patient_id, 1, 'DELETE', NULL, shared, restricted FROM resources \
                 WHERE resource_type = $1 AND id = $2",
                &args![rt, id],
            )
            .await?;
        self.clear_index(rt, id).await?;
        if rt == "Task" {
            self.sync_deadline(id, None, None).await?;
        }
        Ok(Some(version))
    }

    /// Writes version `version` of a resource whose current version is `previous` (0: none).
    async fn put_version(
        &mut self,
        resource: Resource,
        version: i64,
        previous: i64,
        now: OffsetDateTime,
        method: &str,
    ) -> Result<Stored, StoreError> {
        let prepared = Prepared::stamped(resource, version, now)?;
        self.put_prepared(prepared, version, previous, method).await
    }

    /// [`Tx::put_version`] of a prepared resource, stamped again if it was prepared as
    /// another version.
    async fn put_prepared(
        &mut self,
        prepared: Prepared,
        version: i64,
        previous: i64,
        method: &str,
    ) -> Result<Stored, StoreError> {
        let p = prepared.restamped(version)?;
        let (resource, rt, id, index, content, restricted) =
            (p.resource, p.rt, p.id, p.index, p.content, p.restricted);
        let ms = millis(p.now);
        let patient = match p.patient {
            Some(patient) => Some(patient),
            None => self.compartment_of(&resource, &index).await?,
        };
        self.touch(patient.as_deref());
        let shared = i64::from(!is_clinical(&rt));
        if previous != 0 {
            self.keep_current_in_history(&rt, std::slice::from_ref(&id))
                .await?;
        }
        let written = if previous == 0 {
            self.db()
                .execute(
                    "INSERT INTO resources (resource_type, id, version_id, last_updated, patient_id, deleted, content, shared, restricted) \
                     VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8) ON CONFLICT (resource_type, id) DO NOTHING",
                    &args![&rt, &id, version, ms, patient.as_deref(), &content, shared, restricted],
                )
                .await?
        } else {
            self.db()
                .execute(
                    "UPDATE resources SET version_id = $1, last_updated = $2, patient_id = $3, deleted = 0, content = $4, restricted = $5 \
                     WHERE resource_type = $6 AND id = $7 AND version_id = $8",
                    &args![version, ms, patient.as_deref(), &content, restricted, &rt, &id, previous],
                )
                .await?
        };
        if written != 1 {
            // Someone else wrote this resource between our read and our write.
            return Err(StoreError::VersionConflict {
                expected: previous,
                actual: previous + 1,
            });
        }
        self.db()
            .execute(
                "INSERT INTO resource_history (resource_type, id, version_id, last_updated, patient_id, deleted, method, content, shared, restricted) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6, NULL, $7, $8)",
                &args![&rt, &id, version, ms, patient.as_deref(), method, shared, restricted],
            )
            .await?;
        if previous != 0 {
            self.clear_index(&rt, &id).await?;
        }
        self.write_index(&rt, &id, patient.as_deref(), ms, &index)
            .await?;
        if rt == "Task" {
            self.sync_deadline(&id, patient.as_deref(), Some(resource.json()))
                .await?;
        }
        Ok(Stored {
            resource_type: rt,
            id,
            version_id: version,
            last_updated: ms,
            deleted: false,
            content: Some(content),
            patient_id: patient,
            shared: shared != 0,
            labels: restricted,
        })
    }
}

/// A resource's JSON as stored (meta included).
fn serialize(resource: &Resource) -> Result<String, StoreError> {
    serde_json::to_string(resource.json()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn ids(resource: &Resource) -> Result<(String, String), StoreError> {
    let id = resource.id().ok_or_else(|| {
        StoreError::Invalid(coproduce_fhir::OperationOutcome::message(
            coproduce_fhir::IssueCode::Required,
            "the resource needs an id to be stored",
        ))
    })?;
    Ok((resource.type_name().to_string(), id.to_string()))
}

fn strip_version_meta(mut v: Value) -> Value {
    if let Some(Value::Object(m)) = v.get_mut("meta") {
        m.remove("versionId");
        m.remove("lastUpdated");
        if m.is_empty()
            && let Value::Object(o) = &mut v
        {
            o.remove("meta");
        }
    }
    v
}
