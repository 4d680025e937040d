//! The audit trail: append-only, hash-chained rows. Each row's hash covers its fields and the
//! previous row's hash, so a row changed or removed by hand breaks the chain from there on,
//! and [`Store::verify_audit`] names the first such row.

use crate::error::StoreError;
use crate::write::Tx;
use crate::{Backend, Store};
use sha2::{Digest, Sha256};
use sqlx::{Arguments, Row};

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditEntry {
    /// Unix milliseconds.
    pub at: i64,
    /// `user:NAME`, `token:NAME` or `anonymous`.
    pub actor: String,
    pub on_behalf_of: Option<String>,
    /// read, search, create, update, delete, export, login, logout, login-failed, ...
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// The patient compartments touched, space-separated.
    pub patients: Option<String>,
    /// `allowed` or `denied`.
    pub outcome: String,
    pub detail: Option<String>,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The first hash of the chain.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn chain_hash(prev: &str, seq: i64, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields, so no two different rows hash alike.
    let fields = [
        seq.to_string(),
        e.at.to_string(),
        e.actor.clone(),
        e.on_behalf_of.clone().unwrap_or_default(),
        e.action.clone(),
        e.resource_type.clone().unwrap_or_default(),
        e.resource_id.clone().unwrap_or_default(),
        e.patients.clone().unwrap_or_default(),
        e.outcome.clone(),
        e.detail.clone().unwrap_or_default(),
    ];
    h.update(prev.as_bytes());
    for f in fields {
        h.update((f.len() as u64).to_le_bytes());
        h.update(f.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The head's seal: HMAC-SHA256 over its number and hash, with the key from outside the
/// database.
fn head_seal(key: &crate::AuditKey, seq: i64, hash: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&key.0[..]).expect("HMAC takes any key");
    mac.update(format!("{seq}:{hash}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Tx {
    /// Appends one row to the audit trail, inside this transaction: if the transaction does
    /// not commit, neither does the row, and a failed append fails the transaction.
    pub async fn audit(&mut self, e: &AuditEntry) -> Result<i64, StoreError> {
        let (backend, key) = (self.backend(), self.audit_key.clone());
        append(self.conn(), backend, std::slice::from_ref(e), key.as_ref()).await
    }
}

/// Appends `entries` to the audit trail in order, on a connection inside a transaction, and
/// moves the sealed head: the first row's number.
pub(crate) async fn append(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    entries: &[AuditEntry],
    key: Option<&crate::AuditKey>,
) -> Result<i64, StoreError> {
    if backend == Backend::Postgres {
        // Appends take turns, so every row links to the one before it.
        sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *conn)
            .await?;
    }
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    let (first, mut prev) = match last {
        Some(r) => (r.get::<i64, _>(0) + 1, r.get::<String, _>(1)),
        None => (1, GENESIS.to_string()),
    };
    let mut seq = first;
    // 100 rows of 12 arguments a statement, well within either backend's limit.
    for chunk in entries.chunks(100) {
        let mut args = sqlx::any::AnyArguments::default();
        let mut rows = Vec::with_capacity(chunk.len());
        for e in chunk {
            let hash = chain_hash(&prev, seq, e);
            let n = rows.len() * 12;
            rows.push(format!(
                "({})",
                (1..=12)
                    .map(|k| match backend {
                        Backend::Sqlite => "?".to_string(),
                        Backend::Postgres => format!("${}", n + k),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let encode = |r: Result<(), sqlx::error::BoxDynError>| r.map_err(sqlx::Error::Encode);
            encode(args.add(seq))?;
            encode(args.add(e.at))?;
            encode(args.add(e.actor.clone()))?;
            encode(args.add(e.on_behalf_of.clone()))?;
            encode(args.add(e.action.clone()))?;
            encode(args.add(e.resource_type.clone()))?;
            encode(args.add(e.resource_id.clone()))?;
            encode(args.add(e.patients.clone()))?;
            encode(args.add(e.outcome.clone()))?;
            encode(args.add(e.detail.clone()))?;
            encode(args.add(std::mem::replace(&mut prev, hash.clone())))?;
            encode(args.add(hash))?;
            seq += 1;
        }
        sqlx::query_with(
            sqlx::AssertSqlSafe(format!(
                "INSERT INTO audit_log (seq, at, actor, on_behalf_of, action, resource_type, resource_id, patients, outcome, detail, prev_hash, hash) VALUES {}",
                rows.join(", ")
            )),
            args,
        )
        .execute(&mut *conn)
        .await?;
    }
    let head = seq - 1;
    let seal = key.map(|k| head_seal(k, head, &prev));
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash, seal) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, seal = excluded.seal",
    )
    .bind(head)
    .bind(prev)
    .bind(seal)
    .execute(&mut *conn)
    .await?;
    Ok(first)
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
    /// Appends one audit row in a transaction of its own (for reads and denials): on
    /// SQLite it joins the writer's next group commit, and returns once that is durable.
    pub async fn audit(&self, e: &AuditEntry) -> Result<i64, StoreError> {
        if let Some(group) = &self.group {
            return group.audit(e.clone(), self.audit_key.clone()).await;
        }
        let mut tx = self.begin().await?;
        let seq = tx.audit(e).await?;
        tx.commit().await?;
        Ok(seq)
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
