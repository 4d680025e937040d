//! Storage of FHIR resources on SQLite (embedded, the default) or PostgreSQL.
//!
//! One [`Store`] serves both through sqlx's `Any` driver: the SQL is written once (`$n`
//! placeholders, `ON CONFLICT`, standard types) and what differs per backend (migrations,
//! connection settings, backup) is decided in this module by [`Backend`]. Every write is
//! one transaction: the resource, its history row and its search-index rows commit together.

pub mod accounts;
pub mod audit;
mod cells;
mod chain;
mod copy;
mod db;
pub mod deadlines;
mod error;
mod group;
mod lite;
mod read;
mod records;
pub mod search;
mod write;

pub use accounts::{BreakGlassRow, SessionRow, TokenRow, UserRow};
pub use audit::{AuditEntry, AuditRow, AuditVerdict};
pub use copy::CopyReport;
pub use db::Db;
pub use deadlines::{DeadlineRow, MissRow, NotificationRow};
pub use error::StoreError;
pub use read::{HistoryEntry, Stored, Visible, format_instant};
pub use records::{LineBuilder, Moved, PendingBatch, RecordBatch, RecordLine};
pub use search::{SearchQuery, SearchResult, SortKey};
use write::Lease;
pub use write::{ImportOutcome, Prepared, Tx, WriteOutcome};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};
use std::str::FromStr;
use std::time::Duration;

/// The SQLite writer's page cache (KiB): an import updates a dozen indexes per batch, and
/// SQLite's default 2 MiB holds too few of their pages once a store is big.
pub(crate) const WRITER_CACHE_KIB: i64 = 128 * 1024;

/// Checkpoint every 32 MiB of WAL (pages) instead of 4: a page that every batch changes (an
/// index's last page) is copied back into the database once per checkpoint.
pub(crate) const WAL_CHECKPOINT_PAGES: i64 = 8192;

/// How long an SQLite connection waits for another's lock before it fails (ms).
pub(crate) const BUSY_TIMEOUT_MS: i64 = 10_000;

/// Which database is behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL '{}': use sqlite://PATH or postgres://...",
                redact(url)
            )))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The placeholder for the `n`th (1-based) argument of a statement whose arguments all
    /// appear once, in order. SQLite gets anonymous `?`: sqlx looks numbered parameters up by
    /// name one at a time, which costs quadratic time in a statement with thousands of them.
    pub(crate) fn mark(self, n: usize) -> String {
        match self {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// Placeholders for arguments `from..from + n` ([`Backend::mark`] each), comma-separated.
    pub(crate) fn marks(self, from: usize, n: usize) -> String {
        (from..from + n)
            .map(|k| self.mark(k))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A database URL with any password replaced, for logs and messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The FHIR store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// SQLite allows one writer at a time; a one-connection writer pool queues writes instead
    /// of failing them with SQLITE_BUSY. On PostgreSQL both pools are the same.
    writer: AnyPool,
    reader: AnyPool,
    /// Group commits: on SQLite of every write and audit row, on PostgreSQL of the audit rows
    /// of reads only (its writes keep transactions of their own).
    group: group::Group,
    /// SQLite's hot reads and the projection scan, on rusqlite connections of their own
    /// (none in memory and on PostgreSQL: those read through `reader`).
    lite: Option<std::sync::Arc<lite::Readers>>,
    /// The key that seals the head of the audit trail (from outside the database).
    audit_key: Option<AuditKey>,
    /// Lines of their own that each projection row carries beside the resources.
    record_lines: Vec<std::sync::Arc<dyn RecordLine>>,
    /// Long records the background pass rebuilt lately, and until when (Unix ms) it leaves
    /// them ([`Store::catch_up_patient_records`]).
    paced: records::Paced,
}

/// A key kept outside the database that seals the audit trail's head. Never printed.
#[derive(Clone)]
pub struct AuditKey(pub std::sync::Arc<[u8; 32]>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(***)")
    }
}

impl Store {
    /// Connects (creating an SQLite file if missing) and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with_lines(url, Vec::new()).await
    }

    /// Opens the store so that each projection row it builds also carries these lines,
    /// derived from the patient's whole record ([`RecordLine`]). The rows' version names
    /// them, so rows built otherwise are rebuilt by the next population run.
    pub async fn open_with_lines(
        url: &str,
        lines: Vec<std::sync::Arc<dyn RecordLine>>,
    ) -> Result<Self, StoreError> {
        let mut store = Self::connect(url).await?;
        store.record_lines = lines;
        store.migrate().await?;
        store.adopt_projection_if_empty().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Config(format!("bad database URL '{}': {e}", redact(&url))))?
            .disable_statement_logging();
        // One direct connection first, so an unreachable server fails now with its reason
        // instead of after the pool's acquire timeout.
        sqlx::AnyConnection::connect_with(&options)
            .await?
            .close()
            .await?;
        match backend {
            Backend::Sqlite => {
                let pool_options = |cache_kib: i64| {
                    AnyPoolOptions::new()
                        .acquire_timeout(Duration::from_secs(30))
                        // A connection whose transaction SQLite ended by itself (a full disk
                        // rolls it back) is still counted as in one, and no transaction could
                        // begin on it again: it is replaced by a new one.
                        .before_acquire(|conn, _| {
                            Box::pin(async move { Ok(!conn.is_in_transaction()) })
                        })
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                // WAL for concurrent readers; FULL so an acknowledged write
                                // survives a power cut; a wait instead of an error on a lock.
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                                conn.execute("PRAGMA synchronous = FULL").await?;
                                conn.execute("PRAGMA foreign_keys = ON").await?;
                                conn.execute(sqlx::AssertSqlSafe(format!(
                                    "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"
                                )))
                                .await?;
                                conn.execute(sqlx::AssertSqlSafe(format!(
                                    "PRAGMA cache_size = -{cache_kib}"
                                )))
                                .await?;
                                conn.execute(sqlx::AssertSqlSafe(format!(
                                    "PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}"
                                )))
                                .await?;
                                Ok(())
                            })
                        })
                };
                let file = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
                    .map(|o| o.get_filename().to_path_buf())
                    .ok()
                    .filter(|f| f.as_os_str() != ":memory:" && !f.as_os_str().is_empty());
                // A file's writes go through the group's own rusqlite connection (which has
                // the big cache); this pool writes only accounts, sessions and the like.
                let writer_cache = if file.is_some() {
                    2 * 1024
                } else {
                    WRITER_CACHE_KIB
                };
                let writer = pool_options(writer_cache)
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await?;
                let reader = pool_options(2 * 1024)
                    .max_connections(4)
                    .connect_with(options)
                    .await?;
                Ok(Store {
                    backend,
                    group: group::Group::new(writer.clone(), file.clone(), backend),
                    writer,
                    reader,
                    lite: file.map(|f| std::sync::Arc::new(lite::Readers::new(f))),
                    audit_key: None,
                    record_lines: Vec::new(),
                    paced: records::Paced::default(),
                })
            }
            Backend::Postgres => {
                // A request waits at most 5 s for a connection: longer when every one is busy
                // (overload) or when the database server is down (sqlx keeps trying to
                // connect until then); after that it is answered 503, try again shortly.
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                Ok(Store {
                    backend,
                    group: group::Group::new(pool.clone(), None, backend),
                    writer: pool.clone(),
                    reader: pool,
                    lite: None,
                    audit_key: None,
                    record_lines: Vec::new(),
                    paced: records::Paced::default(),
                })
            }
        }
    }

    /// Applies this backend's migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator.run(&self.writer).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Pool sizes for the metrics endpoint: (connections open, idle).
    pub fn pool_stats(&self) -> (u32, usize) {
        if self.backend == Backend::Sqlite {
            (
                self.writer.size() + self.reader.size(),
                self.writer.num_idle() + self.reader.num_idle(),
            )
        } else {
            (self.reader.size(), self.reader.num_idle())
        }
    }

    /// SQLite's group commit: (durable commits, writes they carried) since the store opened;
    /// None on PostgreSQL.
    pub fn group_commits(&self) -> Option<(u64, u64)> {
        (self.backend == Backend::Sqlite).then(|| self.group.counts())
    }

    /// The audit rows' group commits: (durable commits, rows and writes they carried) since
    /// the store opened (on SQLite the same as [`Store::group_commits`]).
    pub fn audit_commits(&self) -> (u64, u64) {
        self.group.counts()
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        // On SQLite, a savepoint in the writer's next group commit.
        let tx = match self.backend {
            Backend::Sqlite => Lease::Batched(self.group.begin().await?),
            Backend::Postgres => Lease::Own(self.writer.begin().await?),
        };
        Ok(Tx::new(tx, self.backend, self.audit_key.clone()))
    }

    /// Seals the audit trail's head with this key from now on, and checks it in
    /// [`Store::verify_audit`].
    pub fn with_audit_key(mut self, key: [u8; 32]) -> Self {
        self.audit_key = Some(AuditKey(std::sync::Arc::new(key)));
        self.group = self.group.with_audit_key(self.audit_key.clone());
        self
    }

    /// Checks the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Writes a consistent copy of an SQLite database to `out` while it is in use.
    pub async fn backup(&self, out: &std::path::Path) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                if out.exists() {
                    return Err(StoreError::Config(format!(
                        "{} exists already; choose a new file",
                        out.display()
                    )));
                }
                let path = out.to_str().ok_or_else(|| {
                    StoreError::Config("the backup path must be valid UTF-8".into())
                })?;
                sqlx::query("VACUUM INTO $1")
                    .bind(path.to_string())
                    .execute(&self.reader)
                    .await?;
                Ok(())
            }
            Backend::Postgres => Err(StoreError::Config(
                "backup copies SQLite databases; for PostgreSQL use pg_dump (for example: pg_dump --format=custom --file=coproduce.dump DBNAME)".into(),
            )),
        }
    }

    /// Restores an SQLite backup (a file `backup` wrote) as the new database `to` (an
    /// `sqlite://` URL whose file must not exist yet: nothing is overwritten). The copy is
    /// written beside the target and renamed into place, brought up to date by the migrations
    /// and its audit chain walked; a copy whose chain does not verify is removed again.
    /// Returns the restored store and how many audit rows it holds.
    pub async fn restore(
        from: &std::path::Path,
        to: &str,
        key: Option<[u8; 32]>,
    ) -> Result<(Store, i64), StoreError> {
        if Backend::from_url(to)? != Backend::Sqlite {
            return Err(StoreError::Config(
                "restore writes SQLite databases; for PostgreSQL use pg_restore (for example: createdb coproduce && pg_restore --dbname=coproduce coproduce.dump)".into(),
            ));
        }
        let target = sqlx::sqlite::SqliteConnectOptions::from_str(to)
            .map_err(|e| StoreError::Config(format!("bad database URL '{to}': {e}")))?
            .get_filename()
            .to_path_buf();
        if target.as_os_str().is_empty() || target.exists() {
            return Err(StoreError::Config(format!(
                "{} exists already: restore writes a new database (stop the server and move the old file aside first)",
                target.display()
            )));
        }
        let mut header = [0u8; 16];
        let readable = std::fs::File::open(from)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header));
        if readable.is_err() || &header != b"SQLite format 3\0" {
            return Err(StoreError::Config(format!(
                "{} is not an SQLite backup",
                from.display()
            )));
        }
        let partial = target.with_extension("restoring");
        let copied = std::fs::copy(from, &partial)
            .and_then(|_| std::fs::File::open(&partial)?.sync_all())
            .and_then(|()| std::fs::rename(&partial, &target));
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(StoreError::Config(format!("copying the backup: {e}")));
        }
        let restored = async {
            let store = Store::open(to).await?;
            let store = match key {
                Some(k) => store.with_audit_key(k),
                None => store,
            };
            let refused = match store.verify_audit().await {
                Ok(AuditVerdict::Intact(n)) => return Ok((store, n)),
                Ok(AuditVerdict::Broken { seq, reason }) => StoreError::Config(format!(
                    "the backup's audit trail is broken at row {seq} ({reason}): nothing was restored"
                )),
                Err(e) => e,
            };
            store.close().await;
            Err(refused)
        }
        .await;
        if restored.is_err() {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = target.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
        restored
    }

    pub async fn close(&self) {
        self.group.close().await;
        self.writer.close().await;
        self.reader.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/coproduce"),
            "postgres://app:***@db:5432/coproduce"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
