//! The audit trail's chain: the rows, how each row's hash covers the one before, the sealed
//! head, and appending rows on a connection inside a transaction (a write's own, or the
//! SQLite writer's group commit).

use crate::Backend;
use crate::db::{Db, args};
use crate::error::StoreError;
use sha2::{Digest, Sha256};

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
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(crate) fn chain_hash(prev: &str, seq: i64, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields, so no two different rows hash alike.
    let (seq, at) = (seq.to_string(), e.at.to_string());
    let fields = [
        seq.as_str(),
        at.as_str(),
        e.actor.as_str(),
        e.on_behalf_of.as_deref().unwrap_or_default(),
        e.action.as_str(),
        e.resource_type.as_deref().unwrap_or_default(),
        e.resource_id.as_deref().unwrap_or_default(),
        e.patients.as_deref().unwrap_or_default(),
        e.outcome.as_str(),
        e.detail.as_deref().unwrap_or_default(),
    ];
    h.update(prev.as_bytes());
    for f in fields {
        h.update((f.len() as u64).to_le_bytes());
        h.update(f.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The head's seal: HMAC-SHA256 over its number and hash, with the key from outside the
/// database.
pub(crate) fn head_seal(key: &crate::AuditKey, seq: i64, hash: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&key.0[..]).expect("HMAC takes any key");
    mac.update(format!("{seq}:{hash}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Appends `entries` to the audit trail in order, on a connection inside a transaction, and
/// moves the sealed head: the first row's number.
pub(crate) async fn append(
    mut db: Db<'_>,
    backend: Backend,
    entries: &[AuditEntry],
    key: Option<&crate::AuditKey>,
) -> Result<i64, StoreError> {
    if backend == Backend::Postgres {
        // Appends take turns, so every row links to the one before it.
        db.execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE", &[])
            .await?;
    }
    let last = db
        .first(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
            |r| Ok((r.int(0)?, r.text(1)?)),
        )
        .await?;
    let (first, mut prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let mut seq = first;
    // 100 rows of 12 arguments a statement, well within either backend's limit.
    for chunk in entries.chunks(100) {
        let mut args = Vec::with_capacity(chunk.len() * 12);
        let mut rows = Vec::with_capacity(chunk.len());
        for e in chunk {
            let hash = chain_hash(&prev, seq, e);
            rows.push(format!("({})", backend.marks(args.len() + 1, 12)));
            args.extend(args![
                seq,
                e.at,
                &e.actor,
                e.on_behalf_of.as_deref(),
                &e.action,
                e.resource_type.as_deref(),
                e.resource_id.as_deref(),
                e.patients.as_deref(),
                &e.outcome,
                e.detail.as_deref(),
                std::mem::replace(&mut prev, hash.clone()),
                hash,
            ]);
            seq += 1;
        }
        let sql = format!(
            "INSERT INTO audit_log (seq, at, actor, on_behalf_of, action, resource_type, resource_id, patients, outcome, detail, prev_hash, hash) VALUES {}",
            rows.join(", ")
        );
        db.execute(&sql, &args).await?;
    }
    let head = seq - 1;
    let seal = key.map(|k| head_seal(k, head, &prev));
    db.execute(
        "INSERT INTO audit_head (id, seq, hash, seal) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, seal = excluded.seal",
        &args![head, prev, seal],
    )
    .await?;
    Ok(first)
}
