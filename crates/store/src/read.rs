//! Reads: current versions, past versions, history and export pages.

use crate::Store;
use crate::cells::Cells;
use crate::db::Arg;
use crate::error::StoreError;
use coproduce_fhir::search::{LABEL_RESTRICTED, LABEL_SOCIAL_NEEDS};
use serde_json::Value;
use sqlx::Row;
use std::collections::BTreeSet;
use std::sync::LazyLock;
use time::OffsetDateTime;

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    /// Unix milliseconds.
    pub last_updated: i64,
    pub deleted: bool,
    /// The JSON (None for a deletion in history).
    pub content: Option<String>,
    /// The Patient compartment it is in.
    pub patient_id: Option<String>,
    /// Shared reference data, outside any patient's record.
    pub shared: bool,
    /// The labels the access policy reads, as the store keeps them beside the JSON
    /// ([`coproduce_fhir::search::labels`]: [`LABEL_RESTRICTED`], [`LABEL_SOCIAL_NEEDS`]).
    pub labels: i64,
}

impl Stored {
    /// A time as a FHIR instant.
    pub fn instant(t: OffsetDateTime) -> String {
        format_instant(millis(t))
    }

    pub fn last_updated_instant(&self) -> String {
        format_instant(self.last_updated)
    }

    pub fn json(&self) -> Result<Value, StoreError> {
        let text = self.content.as_deref().unwrap_or("null");
        serde_json::from_str(text).map_err(|e| self.corrupt(e))
    }

    /// The JSON as stored, checked to be JSON (without building it into a tree): what a
    /// response sends as it is.
    pub fn json_text(&self) -> Result<&str, StoreError> {
        self.json_raw().map(serde_json::value::RawValue::get)
    }

    /// The JSON as stored, checked to be JSON, to be written into a larger answer (a
    /// Bundle) as it is.
    pub fn json_raw(&self) -> Result<&serde_json::value::RawValue, StoreError> {
        let text = self.content.as_deref().unwrap_or("null");
        serde_json::from_str(text).map_err(|e| self.corrupt(e))
    }

    fn corrupt(&self, e: serde_json::Error) -> StoreError {
        StoreError::Corrupt(format!("{}/{}: {e}", self.resource_type, self.id))
    }

    /// A row of [`COLUMNS`] (or of `HISTORY_COLUMNS`).
    pub(crate) fn from_row<R: Cells + ?Sized>(r: &R) -> Result<Self, StoreError> {
        Ok(Stored {
            resource_type: r.text(0)?,
            id: r.text(1)?,
            version_id: r.int(2)?,
            last_updated: r.int(3)?,
            deleted: r.flag(4)?,
            content: r.maybe_text(5)?,
            patient_id: r.maybe_text(6)?,
            shared: r.flag(7)?,
            labels: r.int(8)?,
        })
    }
}

/// What a listing may show its caller, as the access policy decided: these patients'
/// records and shared reference data (`compartments`; None: everything), and whether records
/// labelled confidential to the patient are left out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Visible<'a> {
    pub compartments: Option<&'a BTreeSet<String>>,
    pub hide_restricted: bool,
    /// Leaves out records labelled as social needs (a family member's history listing, unless
    /// every grant they hold covers social needs).
    pub hide_social_needs: bool,
}

/// A version in a history listing, with how it came to be.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub stored: Stored,
    pub method: String,
}

pub(crate) const COLUMNS: &str =
    "resource_type, id, version_id, last_updated, deleted, content, patient_id, shared, restricted";

/// [`COLUMNS`] of `resource_history h`. A current version's history row holds no content of
/// its own: it is the live resources row's.
const HISTORY_COLUMNS: &str = "h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, \
     COALESCE(h.content, (SELECT r.content FROM resources r WHERE r.resource_type = h.resource_type \
     AND r.id = h.id AND r.version_id = h.version_id AND r.deleted = 0)), h.patient_id, h.shared, \
     h.restricted";

pub(crate) use coproduce_core::unix_millis as millis;

/// Unix milliseconds as a FHIR instant, `2026-11-26T13:00:00.123Z`.
pub fn format_instant(ms: i64) -> String {
    let t = coproduce_core::from_unix_millis(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

impl Store {
    /// The current version; `Gone` if it was deleted, `NotFound` if it never existed.
    pub async fn read(&self, rt: &str, id: &str) -> Result<Stored, StoreError> {
        live(self.current(rt, id).await?, rt, id)
    }

    /// The current row of a resource, deleted or not (None if it never existed).
    pub async fn current(&self, rt: &str, id: &str) -> Result<Option<Stored>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {COLUMNS} FROM resources WHERE resource_type = $1 AND id = $2")
        });
        let args = [Arg::Text(rt.to_string()), Arg::Text(id.to_string())];
        Ok(self
            .fetch(&SQL, &args, |r: &dyn Cells| Stored::from_row(r))
            .await?
            .pop())
    }

    /// One past version.
    pub async fn vread(&self, rt: &str, id: &str, version: i64) -> Result<Stored, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {HISTORY_COLUMNS} FROM resource_history h \
                 WHERE h.resource_type = $1 AND h.id = $2 AND h.version_id = $3"
            )
        });
        let args = [
            Arg::Text(rt.to_string()),
            Arg::Text(id.to_string()),
            Arg::Int(version),
        ];
        live(
            self.fetch(&SQL, &args, |r: &dyn Cells| Stored::from_row(r))
                .await?
                .pop(),
            rt,
            id,
        )
    }

    /// History of one resource (`id` given) or of a type, newest first, with the total.
    pub async fn history(
        &self,
        rt: &str,
        id: Option<&str>,
        since: Option<i64>,
        count: usize,
        offset: usize,
        visible: Visible<'_>,
    ) -> Result<(i64, Vec<HistoryEntry>), StoreError> {
        let Visible {
            compartments,
            hide_restricted,
            hide_social_needs,
        } = visible;
        let mut cond = String::from("resource_type = $1");
        let mut hidden = 0;
        if hide_restricted {
            hidden |= LABEL_RESTRICTED;
        }
        if hide_social_needs {
            hidden |= LABEL_SOCIAL_NEEDS;
        }
        if hidden != 0 {
            // A version so labelled, and every version of a record whose current version is.
            cond.push_str(&format!(
                " AND (h.restricted & {hidden}) = 0 AND NOT EXISTS (SELECT 1 FROM resources c \
                 WHERE c.resource_type = h.resource_type AND c.id = h.id AND (c.restricted & {hidden}) <> 0)",
            ));
        }
        let mut n = 1;
        // The access policy's reach, row by row (a version may have sat in another record).
        let reach: Vec<String> = compartments
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default();
        if let Some(c) = compartments {
            if c.is_empty() {
                cond.push_str(" AND shared = 1");
            } else {
                let marks: Vec<String> = (0..c.len()).map(|k| format!("${}", n + 1 + k)).collect();
                n += c.len();
                cond.push_str(&format!(
                    " AND (shared = 1 OR patient_id IN ({}))",
                    marks.join(", ")
                ));
            }
        }
        if id.is_some() {
            n += 1;
            cond.push_str(&format!(" AND id = ${n}"));
        }
        if since.is_some() {
            n += 1;
            cond.push_str(&format!(" AND last_updated >= ${n}"));
        }
        let bind = |sql: String| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(rt.to_string());
            for p in &reach {
                q = q.bind(p.clone());
            }
            if let Some(id) = id {
                q = q.bind(id.to_string());
            }
            if let Some(s) = since {
                q = q.bind(s);
            }
            q
        };
        let total: i64 = bind(format!(
            "SELECT COUNT(*) FROM resource_history h WHERE {cond}"
        ))
        .fetch_one(&self.reader)
        .await?
        .get(0);
        let rows = bind(format!(
            "SELECT {HISTORY_COLUMNS}, h.method FROM resource_history h WHERE {cond} \
             ORDER BY last_updated DESC, id, version_id DESC LIMIT {count} OFFSET {offset}"
        ))
        .fetch_all(&self.reader)
        .await?;
        let entries = rows
            .iter()
            .map(|r| {
                Ok(HistoryEntry {
                    stored: Stored::from_row(r)?,
                    method: r.text(9)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((total, entries))
    }

    /// The resource types that have live resources (for export).
    pub async fn resource_types(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT resource_type FROM resources WHERE deleted = 0 ORDER BY resource_type",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// A page of live resources of a type for export, in id order after `after_id`,
    /// changed at or after `since` (Unix milliseconds).
    pub async fn export_page(
        &self,
        rt: &str,
        since: Option<i64>,
        after_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resources WHERE resource_type = $1 AND deleted = 0 \
             AND last_updated >= $2 AND id > $3 ORDER BY id LIMIT {limit}"
        )))
        .bind(rt.to_string())
        .bind(since.unwrap_or(i64::MIN))
        .bind(after_id.unwrap_or("").to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(Stored::from_row).collect()
    }

    /// The next `limit` patients after `after_id` (by id), each with every current resource
    /// in their compartment: the unit a population measure streams over, so memory stays
    /// flat in the population's size.
    pub async fn patient_batch(
        &self,
        after_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<Stored>)>, StoreError> {
        let ids: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM resources WHERE resource_type = 'Patient' AND deleted = 0 \
             AND id > $1 ORDER BY id LIMIT {limit}"
        )))
        .bind(after_id.unwrap_or("").to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(Vec::new());
        };
        // One range scan of the patient index, not a list of binds.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resources WHERE patient_id >= $1 AND patient_id <= $2 \
             AND deleted = 0 ORDER BY patient_id"
        )))
        .bind(first.clone())
        .bind(last.clone())
        .fetch_all(&self.reader)
        .await?;
        let mut by_patient: std::collections::HashMap<String, Vec<Stored>> =
            ids.iter().map(|id| (id.clone(), Vec::new())).collect();
        for row in &rows {
            let s = Stored::from_row(row)?;
            if let Some(list) = s.patient_id.as_ref().and_then(|p| by_patient.get_mut(p)) {
                list.push(s);
            }
        }
        Ok(ids
            .into_iter()
            .map(|id| {
                let list = by_patient.remove(&id).unwrap_or_default();
                (id, list)
            })
            .collect())
    }

    /// How many live patients there are.
    pub async fn count_patients(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM resources WHERE resource_type = 'Patient' AND deleted = 0",
        )
        .fetch_one(&self.reader)
        .await?
        .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Current shared resources of a type by id (Medication and the like, outside any
    /// patient's compartment).
    pub async fn shared_by_ids(&self, rt: &str, ids: &[String]) -> Result<Vec<Stored>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM resources WHERE resource_type = $1 AND deleted = 0 AND id IN ({})",
                marks.join(", ")
            )))
            .bind(rt.to_string());
            for id in chunk {
                q = q.bind(id.clone());
            }
            for row in q.fetch_all(&self.reader).await? {
                out.push(Stored::from_row(&row)?);
            }
        }
        Ok(out)
    }

    /// Rows in the history table (every version ever written).
    pub async fn history_rows(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM resource_history")
            .fetch_one(&self.reader)
            .await?
            .get(0))
    }
}

/// A found version that is not a deletion, or why not.
fn live(found: Option<Stored>, rt: &str, id: &str) -> Result<Stored, StoreError> {
    let stored = found.ok_or_else(|| not_found(rt, id))?;
    if stored.deleted {
        return Err(StoreError::Gone {
            resource_type: rt.into(),
            id: id.into(),
            version: stored.version_id,
        });
    }
    Ok(stored)
}

fn not_found(rt: &str, id: &str) -> StoreError {
    StoreError::NotFound {
        resource_type: rt.into(),
        id: id.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_have_milliseconds_and_z() {
        assert_eq!(
            format_instant(1_704_067_200_123),
            "2024-01-01T00:00:00.123Z"
        );
    }
}
