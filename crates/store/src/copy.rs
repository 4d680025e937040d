//! Copying a whole database into another: the site that outgrows one machine moves from
//! SQLite to PostgreSQL (the copy works between any two of the backends).
//!
//! Every table is carried row for row (resources and every version, search rows, accounts,
//! tokens, grants of break-glass access, the audit trail hash for hash, deadlines and what
//! they fired, notifications, the patient projection) from one snapshot of the source into
//! one transaction on the target, whose tables must be empty. Each table's count on the
//! target is checked against the source before the commit, so a copy is whole or nothing.
//! Sign-in sessions are not carried: everyone signs in again on the new database.
//!
//! The tables and their columns are read from the source's own catalogue, so a table a
//! later migration adds is carried without a change here.

use crate::audit::{AuditEntry, AuditVerdict};
use crate::{Backend, Store, StoreError};
use futures::TryStreamExt;
use sqlx::Row;
use sqlx::any::AnyArguments;

/// Tables not carried: sign-in sessions (short-lived; people sign in again) and the
/// migrations' own ledger (each database keeps its own, written by [`Store::open`]).
const NOT_CARRIED: &[&str] = &["sessions", "_sqlx_migrations"];

/// Tables the target may hold rows in before the copy (its own bookkeeping, replaced by the
/// source's).
const REPLACED: &[&str] = &["store_meta"];

/// At most this many values bound per INSERT (both backends allow more).
const MAX_BINDS: usize = 20_000;

/// What a copy carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Each table carried and its rows (the same on both sides).
    pub tables: Vec<(String, u64)>,
    /// Sign-in sessions left behind.
    pub sessions_left: u64,
    /// The audit rows on the target after the copy (the source's, and the copy's own).
    pub audit_rows: i64,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    Text,
    Bytes,
}

#[derive(Debug)]
struct Table {
    name: String,
    columns: Vec<(String, Kind)>,
}

enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

/// The kind of a column from its declared type on either backend.
fn kind_of(declared: &str) -> Kind {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        Kind::Int
    } else if t.contains("BLOB") || t.contains("BYTEA") {
        Kind::Bytes
    } else {
        Kind::Text
    }
}

/// A name from a catalogue, quoted for SQL (the names come from the database itself).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn catalogue(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
) -> Result<Vec<Table>, StoreError> {
    let (tables_sql, columns_sql) = match backend {
        Backend::Sqlite => (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
        ),
        Backend::Postgres => (
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        ),
    };
    let names: Vec<String> = sqlx::query(tables_sql)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.get::<String, _>(0))
        .filter(|n| !NOT_CARRIED.contains(&n.as_str()))
        .collect();
    let mut tables = Vec::new();
    for name in names {
        let columns = sqlx::query(columns_sql)
            .bind(name.clone())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| (r.get::<String, _>(0), kind_of(&r.get::<String, _>(1))))
            .collect();
        tables.push(Table { name, columns });
    }
    // Accounts before what refers to them (tokens, break-glass access).
    tables.sort_by_key(|t| t.name != "users");
    Ok(tables)
}

async fn count(conn: &mut sqlx::AnyConnection, table: &str) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {}",
        quoted(table)
    )))
    .fetch_one(&mut *conn)
    .await?
    .get(0);
    Ok(n as u64)
}

fn read_row(row: &sqlx::any::AnyRow, columns: &[(String, Kind)]) -> Result<Vec<Value>, StoreError> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                Kind::Int => Value::Int(row.try_get(i)?),
                Kind::Text => Value::Text(row.try_get(i)?),
                Kind::Bytes => Value::Bytes(row.try_get(i)?),
            })
        })
        .collect()
}

async fn insert(
    conn: &mut sqlx::AnyConnection,
    table: &Table,
    rows: &mut Vec<Vec<Value>>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = table.columns.len();
    let mut args = AnyArguments::default();
    let mut groups = Vec::with_capacity(rows.len());
    for (r, row) in rows.drain(..).enumerate() {
        let marks: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
        groups.push(format!("({})", marks.join(", ")));
        for v in row {
            let bound = match v {
                Value::Int(x) => sqlx::Arguments::add(&mut args, x),
                Value::Text(x) => sqlx::Arguments::add(&mut args, x),
                Value::Bytes(x) => sqlx::Arguments::add(&mut args, x),
            };
            bound.map_err(|e| StoreError::Config(format!("binding a value: {e}")))?;
        }
    }
    let columns: Vec<String> = table.columns.iter().map(|(c, _)| quoted(c)).collect();
    sqlx::query_with(
        sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} ({}) VALUES {}",
            quoted(&table.name),
            columns.join(", "),
            groups.join(", ")
        )),
        args,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Copies everything in this store into `target` (migrated, with empty tables), as
    /// described in this module. `now_ms` stamps the copy's own audit row on the target;
    /// `progress` hears each table's name, rows carried so far and its total. A source
    /// whose audit trail does not verify is not copied. Stop the server first: writes made
    /// after the copy's snapshot stay behind.
    pub async fn copy_into(
        &self,
        target: &Store,
        now_ms: i64,
        mut progress: impl FnMut(&str, u64, u64),
    ) -> Result<CopyReport, StoreError> {
        if let AuditVerdict::Broken { seq, reason } = self.verify_audit().await? {
            return Err(StoreError::Config(format!(
                "the source's audit trail is broken at row {seq} ({reason}): nothing was copied"
            )));
        }
        // One snapshot of the source for every table.
        let mut source = self.reader.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *source)
                .await?;
        }
        let tables = catalogue(&mut source, self.backend).await?;
        let sessions_left = count(&mut source, "sessions").await?;

        // A transaction of its own on the target's writer (not the group's): the copy is one
        // commit, into a new database no one else writes.
        let mut tx = target.writer.begin().await?;
        let present = catalogue(&mut tx, target.backend).await?;
        for t in &tables {
            let Some(there) = present.iter().find(|p| p.name == t.name) else {
                return Err(StoreError::Config(format!(
                    "the target has no table {} (is it the same version of coproduce?)",
                    t.name
                )));
            };
            if let Some((c, _)) = t
                .columns
                .iter()
                .find(|(c, _)| !there.columns.iter().any(|(d, _)| d == c))
            {
                return Err(StoreError::Config(format!(
                    "the target's table {} has no column {c} (is it the same version of coproduce?)",
                    t.name
                )));
            }
            if REPLACED.contains(&t.name.as_str()) {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {}",
                    quoted(&t.name)
                )))
                .execute(&mut *tx)
                .await?;
            } else if count(&mut tx, &t.name).await? > 0 {
                return Err(StoreError::Config(format!(
                    "the target holds data already (table {}): copy writes into a new, empty database",
                    t.name
                )));
            }
        }

        let mut carried = Vec::new();
        for t in &tables {
            let total = count(&mut source, &t.name).await?;
            progress(&t.name, 0, total);
            let columns: Vec<String> = t.columns.iter().map(|(c, _)| quoted(c)).collect();
            let select = format!("SELECT {} FROM {}", columns.join(", "), quoted(&t.name));
            let batch = (MAX_BINDS / t.columns.len().max(1)).max(1);
            let mut rows = Vec::with_capacity(batch);
            let mut done = 0u64;
            let mut stream = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut *source);
            while let Some(row) = stream.try_next().await? {
                rows.push(read_row(&row, &t.columns)?);
                if rows.len() == batch {
                    done += rows.len() as u64;
                    insert(&mut tx, t, &mut rows).await?;
                    progress(&t.name, done, total);
                }
            }
            drop(stream);
            done += rows.len() as u64;
            insert(&mut tx, t, &mut rows).await?;
            progress(&t.name, done, total);
            let there = count(&mut tx, &t.name).await?;
            if done != total || there != total {
                return Err(StoreError::Config(format!(
                    "table {}: {total} rows in the source, {done} read, {there} written: nothing was copied",
                    t.name
                )));
            }
            carried.push((t.name.clone(), total));
        }
        source.rollback().await?;

        let resources = carried
            .iter()
            .find(|(t, _)| t == "resources")
            .map_or(0, |x| x.1);
        let trail = carried
            .iter()
            .find(|(t, _)| t == "audit_log")
            .map_or(0, |x| x.1);
        let entry = AuditEntry {
            at: now_ms,
            actor: "cli:copy".into(),
            action: "copy".into(),
            outcome: "allowed".into(),
            detail: Some(format!(
                "copied from {}: {resources} resources, {trail} audit rows, every table counted",
                self.backend.name()
            )),
            ..Default::default()
        };
        crate::chain::append(
            crate::db::Db::any(&mut tx),
            target.backend,
            &[entry],
            target.audit_key.as_ref(),
        )
        .await?;
        tx.commit().await?;
        match target.verify_audit().await? {
            AuditVerdict::Intact(n) => Ok(CopyReport {
                tables: carried,
                sessions_left,
                audit_rows: n,
            }),
            AuditVerdict::Broken { seq, reason } => Err(StoreError::Config(format!(
                "the copy's audit trail does not verify at row {seq} ({reason}); do not use the target"
            ))),
        }
    }
}
