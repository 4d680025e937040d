//! The audit trail: append-only, hash-chained rows. Each row's hash covers its fields and the
//! previous row's hash, so a row changed or removed by hand breaks the chain from there on,
//! and [`Store::verify_audit`] names the first such row.

use crate::Store;
pub use crate::chain::{AuditEntry, AuditRow};
use crate::chain::{GENESIS, append, chain_hash, head_seal};
use crate::error::StoreError;
use crate::write::Tx;
use sqlx::Row;

impl Tx {
    /// Appends one row to the audit trail, inside this transaction: if the transaction does
    /// not commit, neither does the row, and a failed append fails the transaction.
    pub async fn audit(&mut self, e: &AuditEntry) -> Result<i64, StoreError> {
        let (backend, key) = (self.backend(), self.audit_key.clone());
        append(self.db(), backend, std::slice::from_ref(e), key.as_ref()).await
    }
}

/// What `verify_audit` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    /// Every row links to the one before; this many rows.
    Intact(i64),
    /// The first row that was changed, or that follows a removed row.
    Broken { seq: i64, reason: String },
}

impl Store {
    /// Appends one audit row outside any write (for reads and denials): it joins the next
    /// group commit of audit rows (on SQLite, the writer's), and returns once that is durable.
    pub async fn audit(&self, e: &AuditEntry) -> Result<i64, StoreError> {
        self.group.audit(e.clone()).await
    }

    /// Walks the whole chain.
    pub async fn verify_audit(&self) -> Result<AuditVerdict, StoreError> {
        let mut prev = GENESIS.to_string();
        let mut expected_seq = 1;
        let mut after = 0i64;
        loop {
            let rows = self.audit_page(after, 5000).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for r in rows {
                if r.seq != expected_seq {
                    return Ok(AuditVerdict::Broken {
                        seq: r.seq,
                        reason: format!(
                            "row {expected_seq} is missing (the next row is {})",
                            r.seq
                        ),
                    });
                }
                if r.prev_hash != prev {
                    return Ok(AuditVerdict::Broken {
                        seq: r.seq,
                        reason: "its link to the row before does not match (that row was changed or removed)".into(),
                    });
                }
                if chain_hash(&prev, r.seq, &r.entry) != r.hash {
                    return Ok(AuditVerdict::Broken {
                        seq: r.seq,
                        reason: "its content was changed".into(),
                    });
                }
                prev = r.hash;
                expected_seq += 1;
            }
        }
        let last = expected_seq - 1;
        let head = sqlx::query("SELECT seq, hash, seal FROM audit_head WHERE id = 1")
            .fetch_optional(&self.reader)
            .await?
            .map(|r| {
                (
                    r.get::<i64, _>(0),
                    r.get::<String, _>(1),
                    r.get::<Option<String>, _>(2),
                )
            });
        // With the site's key, the head must carry its seal: rows cut from the end with the
        // head rewritten to match the new last row show here.
        if let (Some(key), Some((seq, hash, seal))) = (&self.audit_key, &head)
            && seal.as_deref() != Some(head_seal(key, *seq, hash).as_str())
        {
            return Ok(AuditVerdict::Broken {
                seq: *seq,
                reason: "the head of the trail does not carry the site's seal (rows were cut from the end and the head rewritten, or it was written without the site's key)".into(),
            });
        }
        let head = head.map(|(seq, hash, _)| (seq, hash));
        match head {
            None if last == 0 => {}
            Some((seq, hash)) if seq == last && hash == prev => {}
            Some((seq, _)) if seq > last => {
                return Ok(AuditVerdict::Broken {
                    seq: last + 1,
                    reason: format!(
                        "rows {} to {seq} are missing from the end of the trail",
                        last + 1
                    ),
                });
            }
            _ => {
                return Ok(AuditVerdict::Broken {
                    seq: last,
                    reason: "the newest row does not match the recorded head of the trail".into(),
                });
            }
        }
        Ok(AuditVerdict::Intact(last))
    }

    /// Audit rows after `after_seq`, oldest first.
    pub async fn audit_page(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, on_behalf_of, action, resource_type, resource_id, patients, outcome, detail, prev_hash, hash \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(audit_row).collect())
    }

    /// Audit rows that touched a patient's record, newest first, with the total.
    pub async fn audit_for_patient(
        &self,
        patient: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<AuditRow>), StoreError> {
        let pattern = format!("% {patient} %");
        let total: i64 =
            sqlx::query("SELECT COUNT(*) FROM audit_log WHERE (' ' || patients || ' ') LIKE $1")
                .bind(pattern.clone())
                .fetch_one(&self.reader)
                .await?
                .get(0);
        let rows = sqlx::query(
            "SELECT seq, at, actor, on_behalf_of, action, resource_type, resource_id, patients, outcome, detail, prev_hash, hash \
             FROM audit_log WHERE (' ' || patients || ' ') LIKE $1 ORDER BY seq DESC LIMIT $2 OFFSET $3",
        )
        .bind(pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        Ok((total, rows.iter().map(audit_row).collect()))
    }

    /// Audit rows newest first, with the total.
    pub async fn audit_newest(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<AuditRow>), StoreError> {
        let total = self.audit_count().await?;
        let rows = sqlx::query(
            "SELECT seq, at, actor, on_behalf_of, action, resource_type, resource_id, patients, outcome, detail, prev_hash, hash \
             FROM audit_log ORDER BY seq DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        Ok((total, rows.iter().map(audit_row).collect()))
    }

    /// One audit row by its number.
    pub async fn audit_row(&self, seq: i64) -> Result<Option<AuditRow>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, at, actor, on_behalf_of, action, resource_type, resource_id, patients, outcome, detail, prev_hash, hash \
             FROM audit_log WHERE seq = $1",
        )
        .bind(seq)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(audit_row))
    }

    /// How many audit rows there are.
    pub async fn audit_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&self.reader)
            .await?
            .get(0))
    }
}

fn audit_row(r: &sqlx::any::AnyRow) -> AuditRow {
    AuditRow {
        seq: r.get(0),
        entry: AuditEntry {
            at: r.get(1),
            actor: r.get(2),
            on_behalf_of: r.get(3),
            action: r.get(4),
            resource_type: r.get(5),
            resource_id: r.get(6),
            patients: r.get(7),
            outcome: r.get(8),
            detail: r.get(9),
        },
        prev_hash: r.get(10),
        hash: r.get(11),
    }
}
