//! Writes: every one inside a [`Tx`], so a resource, its history row and its index rows
//! commit together or not at all (and a transaction Bundle is one [`Tx`]).

use crate::error::StoreError;
use crate::read::{Stored, format_instant, millis};
use coproduce_fhir::Resource;
use coproduce_fhir::search::{SearchIndex, extract, patient_compartment};
use serde_json::Value;
use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, Row, Transaction};
use time::OffsetDateTime;

/// A write transaction.
#[derive(Debug)]
pub struct Tx {
    pub(crate) tx: Transaction<'static, Any>,
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

struct Current {
    version: i64,
    deleted: bool,
    content: Option<String>,
}

impl Tx {
    pub(crate) fn new(tx: Transaction<'static, Any>) -> Self {
        Tx { tx }
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// The connection, for reads inside the transaction (conditional create, Bundles).
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    async fn current(&mut self, rt: &str, id: &str) -> Result<Option<Current>, StoreError> {
        let row = sqlx::query(
            "SELECT version_id, deleted, content FROM resources WHERE resource_type = $1 AND id = $2",
        )
        .bind(rt.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| Current {
            version: r.get::<i64, _>(0),
            deleted: r.get::<i64, _>(1) != 0,
            content: Some(r.get::<String, _>(2)),
        }))
    }

    /// Creates a resource with the id it carries (the caller assigns new ids). Fails with
    /// a conflict if a live resource of that id exists.
    pub async fn create(
        &mut self,
        resource: Resource,
        now: OffsetDateTime,
    ) -> Result<Stored, StoreError> {
        let (rt, id) = ids(&resource)?;
        match self.current(&rt, &id).await? {
            Some(c) if !c.deleted => Err(StoreError::PreconditionFailed(format!(
                "{rt}/{id} exists already"
            ))),
            current => {
                let version = current.map_or(1, |c| c.version + 1);
                self.put_version(resource, version, version - 1, now, "POST")
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
        let version = current.version + 1;
        let ms = millis(now);
        let changed = sqlx::query(
            "UPDATE resources SET version_id = $1, last_updated = $2, deleted = 1 \
             WHERE resource_type = $3 AND id = $4 AND version_id = $5",
        )
        .bind(version)
        .bind(ms)
        .bind(rt.to_string())
        .bind(id.to_string())
        .bind(current.version)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Err(StoreError::VersionConflict {
                expected: current.version,
                actual: current.version + 1,
            });
        }
        sqlx::query(
            "INSERT INTO resource_history (resource_type, id, version_id, last_updated, patient_id, deleted, method, content) \
             SELECT resource_type, id, version_id, last_updated, patient_id, 1, 'DELETE', NULL FROM resources \
             WHERE resource_type = $1 AND id = $2",
        )
        .bind(rt.to_string())
        .bind(id.to_string())
        .execute(&mut *self.tx)
        .await?;
        self.clear_index(rt, id).await?;
        Ok(Some(version))
    }

    /// Writes version `version` of a resource whose current version is `previous` (0: none).
    async fn put_version(
        &mut self,
        mut resource: Resource,
        version: i64,
        previous: i64,
        now: OffsetDateTime,
        method: &str,
    ) -> Result<Stored, StoreError> {
        let (rt, id) = ids(&resource)?;
        let ms = millis(now);
        let instant = format_instant(ms);
        resource.set_version(version, &instant);
        let index = extract(&resource);
        let patient = patient_compartment(&resource, &index);
        let content = serde_json::to_string(resource.json())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let written = if previous == 0 {
            sqlx::query(
                "INSERT INTO resources (resource_type, id, version_id, last_updated, patient_id, deleted, content) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (resource_type, id) DO NOTHING",
            )
            .bind(rt.clone())
            .bind(id.clone())
            .bind(version)
            .bind(ms)
            .bind(patient.clone())
            .bind(content.clone())
            .execute(&mut *self.tx)
            .await?
            .rows_affected()
        } else {
            sqlx::query(
                "UPDATE resources SET version_id = $1, last_updated = $2, patient_id = $3, deleted = 0, content = $4 \
                 WHERE resource_type = $5 AND id = $6 AND version_id = $7",
            )
            .bind(version)
            .bind(ms)
            .bind(patient.clone())
            .bind(content.clone())
            .bind(rt.clone())
            .bind(id.clone())
            .bind(previous)
            .execute(&mut *self.tx)
            .await?
            .rows_affected()
        };
        if written != 1 {
            // Someone else wrote this resource between our read and our write.
            return Err(StoreError::VersionConflict {
                expected: previous,
                actual: previous + 1,
            });
        }
        sqlx::query(
            "INSERT INTO resource_history (resource_type, id, version_id, last_updated, patient_id, deleted, method, content) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
        )
        .bind(rt.clone())
        .bind(id.clone())
        .bind(version)
        .bind(ms)
        .bind(patient.clone())
        .bind(method.to_string())
        .bind(content.clone())
        .execute(&mut *self.tx)
        .await?;
        if previous != 0 {
            self.clear_index(&rt, &id).await?;
        }
        self.write_index(&rt, &id, patient.as_deref(), &index)
            .await?;
        Ok(Stored {
            resource_type: rt,
            id,
            version_id: version,
            last_updated: ms,
            deleted: false,
            content: Some(content),
        })
    }

    async fn clear_index(&mut self, rt: &str, id: &str) -> Result<(), StoreError> {
        for table in [
            "search_token",
            "search_reference",
            "search_date",
            "search_string",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE resource_type = $1 AND resource_id = $2"
            )))
            .bind(rt.to_string())
            .bind(id.to_string())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn write_index(
        &mut self,
        rt: &str,
        id: &str,
        patient: Option<&str>,
        index: &SearchIndex,
    ) -> Result<(), StoreError> {
        let owner = |args: &mut AnyArguments| -> Result<(), StoreError> {
            args.add(rt.to_string()).map_err(sqlx::Error::Encode)?;
            args.add(id.to_string()).map_err(sqlx::Error::Encode)?;
            args.add(patient.map(str::to_string))
                .map_err(sqlx::Error::Encode)?;
            Ok(())
        };
        let tokens: Vec<_> = index
            .tokens
            .iter()
            .map(|t| {
                vec![
                    Val::S(t.param.clone()),
                    Val::O(t.system.clone()),
                    Val::S(t.code.clone()),
                ]
            })
            .collect();
        let refs: Vec<_> = index
            .references
            .iter()
            .map(|r| {
                vec![
                    Val::S(r.param.clone()),
                    Val::S(r.target_type.clone()),
                    Val::S(r.target_id.clone()),
                ]
            })
            .collect();
        let dates: Vec<_> = index
            .dates
            .iter()
            .map(|d| vec![Val::S(d.param.clone()), Val::I(d.low), Val::I(d.high)])
            .collect();
        let strings: Vec<_> = index
            .strings
            .iter()
            .map(|s| vec![Val::S(s.param.clone()), Val::S(s.value.clone())])
            .collect();
        for (table, cols, rows) in [
            ("search_token", "param, system, code", tokens),
            ("search_reference", "param, target_type, target_id", refs),
            ("search_date", "param, low, high", dates),
            ("search_string", "param, value", strings),
        ] {
            // Many rows per statement: one round trip per table, not per row.
            for chunk in rows.chunks(200) {
                let width = 3 + chunk[0].len();
                let mut args = AnyArguments::default();
                let mut sql = format!(
                    "INSERT INTO {table} (resource_type, resource_id, patient_id, {cols}) VALUES "
                );
                for (n, row) in chunk.iter().enumerate() {
                    if n > 0 {
                        sql.push_str(", ");
                    }
                    let base = n * width;
                    let marks: Vec<String> =
                        (1..=width).map(|k| format!("${}", base + k)).collect();
                    sql.push('(');
                    sql.push_str(&marks.join(", "));
                    sql.push(')');
                    owner(&mut args)?;
                    for v in row {
                        match v {
                            Val::S(s) => args.add(s.clone()),
                            Val::O(s) => args.add(s.clone()),
                            Val::I(i) => args.add(*i),
                        }
                        .map_err(sqlx::Error::Encode)?;
                    }
                }
                sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        Ok(())
    }
}

enum Val {
    S(String),
    O(Option<String>),
    I(i64),
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
