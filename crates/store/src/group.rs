//! Group commit on SQLite: concurrent writes share one durable commit.
//!
//! SQLite has one writer, and each commit waits for the disk (`synchronous=FULL`). So the
//! writes that arrive while one commit is on its way to the disk are carried by the next
//! writer transaction together, each in its own savepoint: one that fails is rolled back to
//! its savepoint and the others go on. (The first, which opens the transaction, needs no
//! savepoint: undoing it is rolling the transaction back.) A write is answered only when
//! the commit that carries it is durable; when that commit fails, every write it carried
//! fails with it (and nothing of theirs is kept). Audit rows of reads go the same way, so a
//! read is answered only once its row is on disk, and a hundred reads share one flush
//! instead of waiting for a hundred.
//!
//! How: the writer's connection sits in a [`Batch`] behind a fair (first come, first
//! served) lock. A write takes the lock, opens the batch's transaction if none is open, and
//! sets a savepoint; its [`crate::Tx`] holds the lock until it commits (the savepoint is
//! released and the lock handed on) or is dropped (the savepoint is rolled back by whoever
//! takes the lock next, and a committer is started, so that a batch left with nothing to
//! keep still ends and lets go of SQLite's write lock). The first write of a batch to
//! release its savepoint starts the batch's committer, a task of its own that queues for the
//! lock behind the writes already waiting, so it commits them all at once; then it tells
//! each of them. An audit row alone does not queue for the lock: it is put in a queue beside
//! it (under a lock of its own, held only to push or to take), which the next committer
//! empties into its batch, and the first row after a committer took the queue starts the
//! next one. So reads arriving while a commit is on its way to the disk wait for their own
//! commit, not also for each other in turn, as each took and handed on the batch's lock.
//!
//! On an SQLite file the writer's connection is rusqlite's, and its statements run on the
//! calling thread (see `db.rs`); the two that may wait (`BEGIN IMMEDIATE` for another
//! process's write lock, `COMMIT` for the disk) run on a blocking thread. A batch of audit
//! rows alone (reads', when no write is waiting) runs whole on one blocking thread: open,
//! append, commit, in one turn rather than two. In memory, and on
//! PostgreSQL, it is a sqlx transaction.
//!
//! PostgreSQL flushes concurrent commits of many connections together by itself, so its
//! writes keep transactions of their own. Its read audit rows are batched here all the same
//! (a group whose batches carry only audit rows): every append holds the audit table's lock
//! until it commits, to keep the chain in order, so appends in transactions of their own
//! would each wait for the one before it to reach the disk.

use crate::db::Db;
use crate::error::StoreError;
use crate::{AuditEntry, AuditKey, Backend};
use rusqlite::Connection;
use sqlx::{Any, AnyPool, Transaction};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// What each write of a batch learns when the batch's commit ends (for an audit row of its
/// own, the row's number).
type Outcome = Result<i64, Arc<StoreError>>;

/// A writer transaction, on either driver.
#[derive(Debug)]
enum Writing {
    Any(Transaction<'static, Any>),
    /// An SQLite file's writer connection, inside `BEGIN IMMEDIATE`.
    Lite(Connection),
}

impl Writing {
    fn db(&mut self) -> Db<'_> {
        match self {
            Writing::Any(tx) => Db::any(tx),
            Writing::Lite(conn) => Db::lite(conn),
        }
    }
}

/// The writes sharing the next commit.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The open writer transaction (none between batches, or after one failed).
    tx: Option<Writing>,
    /// An SQLite file's writer connection between batches (none before the first, or after
    /// one was lost with its batch: then a new one is opened).
    spare: Option<Connection>,
    /// The writes whose savepoints were released into `tx`, waiting for it to commit.
    waiting: Vec<oneshot::Sender<Outcome>>,
    /// Audit rows alone (of reads, denials, sign-ins), taken from the [`Queued`] rows by the
    /// committer and appended together just before the commit, and who waits for each.
    audits: Vec<(AuditEntry, oneshot::Sender<Outcome>)>,
    /// A write began and has neither ended well nor been undone (it is still running, or
    /// it was dropped): undone before anything else uses the connection, as this says.
    running: Option<Undo>,
    /// A committer has been started for this batch.
    committer: bool,
}

/// Audit rows alone waiting for a committer to take them into its batch.
#[derive(Debug, Default)]
struct Queued {
    audits: Vec<(AuditEntry, oneshot::Sender<Outcome>)>,
    /// A committer has been started since the rows were last taken.
    committer: bool,
}

/// How a running write is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// It opened the transaction and set no savepoint: undoing it is rolling the
    /// transaction back, as nothing else is in it yet. Inside a savepoint SQLite copies each
    /// page a write changes into the savepoint's journal first (about a sixth of a create's
    /// CPU in a profile at speed); the first write of each batch is spared that.
    Transaction,
    /// It joined an open transaction: rolled back to its own savepoint.
    Savepoint,
}

/// One write's hold on the batch, from its savepoint to its end. A write dropped before it
/// commits (it failed, or its request was cancelled) leaves its savepoint to be rolled back,
/// and makes sure a committer comes to do so and to end the batch's transaction: otherwise
/// the transaction, and SQLite's write lock, would stay open until the next write.
#[derive(Debug)]
pub(crate) struct Member {
    batch: Option<OwnedMutexGuard<Batch>>,
    group: Group,
}

impl Drop for Member {
    fn drop(&mut self) {
        let Some(batch) = self.batch.as_mut() else {
            return;
        };
        if batch.running.is_some()
            && !batch.committer
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            batch.committer = true;
            let group = self.group.clone();
            runtime.spawn(async move { group.commit_batch().await });
        }
    }
}

impl Member {
    /// Ends this write well: see [`Group::commit`].
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        let group = self.group.clone();
        group.commit(self).await
    }
}

impl Member {
    /// The batch's connection, inside this write's savepoint.
    pub(crate) fn db(&mut self) -> Db<'_> {
        self.batch
            .as_mut()
            .and_then(|b| b.tx.as_mut())
            .expect("a write holds an open batch")
            .db()
    }
}

/// The batches that share commits: SQLite's writes and audit rows, PostgreSQL's audit rows.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    batch: Arc<Mutex<Batch>>,
    writer: AnyPool,
    /// An SQLite file, written on rusqlite (none in memory and on PostgreSQL).
    file: Option<PathBuf>,
    /// Who copies that file's WAL back into it (none: the writer does, as it commits).
    checkpoints: Option<Arc<crate::lite::Checkpointer>>,
    backend: Backend,
    counts: Arc<Counts>,
    /// Audit rows alone, waiting for the next committer (see [`Group::audit`]).
    queued: Arc<std::sync::Mutex<Queued>>,
    /// The key that seals the audit trail's head (the store's).
    audit_key: Option<AuditKey>,
    /// The store was closed: no transaction opens any more.
    closed: Arc<std::sync::atomic::AtomicBool>,
}

/// Commits made and writes they carried, since the store opened.
#[derive(Debug, Default)]
struct Counts {
    commits: AtomicU64,
    writes: AtomicU64,
}

impl Batch {
    /// Undoes the savepoint of a write that was dropped before it committed (the whole
    /// transaction, for a write that opened it: nothing else is in it). If the savepoint is
    /// gone, so is the transaction (SQLite rolls a whole transaction back by itself after
    /// some failures, a full disk among them): the batch fails.
    async fn settle(&mut self) {
        match self.running.take() {
            None => return,
            Some(Undo::Transaction) => {
                // Nobody waits on this transaction yet: a write joins only once the lock is
                // handed on, and audit rows are appended only at the commit.
                self.roll_back().await;
                return;
            }
            Some(Undo::Savepoint) => {}
        }
        let Some(tx) = self.tx.as_mut() else {
            return;
        };
        let mut db = tx.db();
        let undone = async {
            db.execute("ROLLBACK TO SAVEPOINT write", &[]).await?;
            db.execute("RELEASE SAVEPOINT write", &[]).await
        }
        .await;
        if let Err(e) = undone {
            self.fail(e).await;
        }
    }

    /// Ends the batch without a commit: its transaction is rolled back, and every write
    /// waiting for it is told why.
    async fn fail(&mut self, e: StoreError) {
        let e = Arc::new(e);
        self.roll_back().await;
        for w in self.waiting.drain(..) {
            let _ = w.send(Err(e.clone()));
        }
        for (_, w) in self.audits.drain(..) {
            let _ = w.send(Err(e.clone()));
        }
    }
}

impl Batch {
    /// Ends the open transaction, if any, keeping nothing of it.
    async fn roll_back(&mut self) {
        match self.tx.take() {
            Some(Writing::Any(tx)) => {
                let _ = tx.rollback().await;
            }
            Some(Writing::Lite(conn)) => self.spare = end_lite(conn, false).0,
            None => {}
        }
    }

    /// Commits the open transaction (on SQLite's file, on a blocking thread: it waits for
    /// the disk).
    async fn commit(&mut self) -> Result<(), StoreError> {
        match self.tx.take() {
            Some(Writing::Any(tx)) => Ok(tx.commit().await?),
            Some(Writing::Lite(conn)) => {
                let (conn, done) = tokio::task::spawn_blocking(move || end_lite(conn, true))
                    .await
                    .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))?;
                self.spare = conn;
                done
            }
            // Writes released into a transaction that is gone (never so: a batch that ends
            // without its commit tells its writes at once).
            None => Err(StoreError::Database(sqlx::Error::WorkerCrashed)),
        }
    }
}

impl Group {
    pub(crate) fn new(writer: AnyPool, file: Option<PathBuf>, backend: Backend) -> Self {
        Group {
            batch: Arc::new(Mutex::new(Batch::default())),
            writer,
            checkpoints: file
                .clone()
                .and_then(crate::lite::Checkpointer::start)
                .map(Arc::new),
            file,
            backend,
            counts: Arc::default(),
            queued: Arc::default(),
            audit_key: None,
            closed: Arc::default(),
        }
    }

    /// Closes the group with its store: what is waiting is committed, the writer's
    /// connection is let go, and from now on a write or an audit row fails as if the
    /// database were gone (a 503).
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.commit_batch().await;
        let mut batch = self.batch.lock().await;
        batch.roll_back().await;
        batch.spare = None;
    }

    /// Seals the audit trail's head with this key in the commits this handle makes.
    pub(crate) fn with_audit_key(mut self, key: Option<AuditKey>) -> Self {
        self.audit_key = key;
        self
    }

    /// (durable commits, writes they carried) since the store opened.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.counts.commits.load(Ordering::Relaxed),
            self.counts.writes.load(Ordering::Relaxed),
        )
    }

    /// Starts a write: the lock on the batch, an open transaction, and a savepoint of its
    /// own unless it opened the transaction (see [`Undo::Transaction`]).
    pub(crate) async fn begin(&self) -> Result<Member, StoreError> {
        let mut batch = self.batch.clone().lock_owned().await;
        batch.settle().await;
        let undo = if batch.tx.is_none() {
            let spare = batch.spare.take();
            batch.tx = Some(self.open(spare).await?);
            Undo::Transaction
        } else {
            Undo::Savepoint
        };
        batch.running = Some(undo);
        let mut member = Member {
            batch: Some(batch),
            group: self.clone(),
        };
        if undo == Undo::Savepoint {
            member.db().execute("SAVEPOINT write", &[]).await?;
        }
        Ok(member)
    }

    /// Ends a write that went well: its savepoint is released into the batch, the lock is
    /// handed on, and it returns once the batch's commit is durable (or with the error that
    /// ended the batch).
    pub(crate) async fn commit(&self, mut member: Member) -> Result<(), StoreError> {
        let mut batch = member
            .batch
            .take()
            .expect("a write holds the batch until it ends");
        if batch.running == Some(Undo::Savepoint) {
            batch
                .tx
                .as_mut()
                .expect("a write holds an open transaction")
                .db()
                .execute("RELEASE SAVEPOINT write", &[])
                .await?;
        }
        batch.running = None;
        let (told, outcome) = oneshot::channel();
        batch.waiting.push(told);
        self.committed(batch, outcome).await.map(|_| ())
    }

    /// Appends an audit row with the writer's next commit, and returns its number once that
    /// commit is durable. The row waits in the queue beside the batch, not for the batch's
    /// lock; if no committer is on its way to take it, one is started.
    pub(crate) async fn audit(&self, entry: AuditEntry) -> Result<i64, StoreError> {
        let (told, outcome) = oneshot::channel();
        let start = {
            let mut queued = self.queued();
            queued.audits.push((entry, told));
            !std::mem::replace(&mut queued.committer, true)
        };
        if start {
            self.start_committer();
        }
        told_of(outcome).await
    }

    /// The queue of audit rows alone (held only to push or to take: nothing in it panics, so
    /// a poisoned lock still holds a sound queue).
    fn queued(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the lock on, making sure the batch has a committer, and waits for its outcome.
    async fn committed(
        &self,
        mut batch: OwnedMutexGuard<Batch>,
        outcome: oneshot::Receiver<Outcome>,
    ) -> Result<i64, StoreError> {
        if !std::mem::replace(&mut batch.committer, true) {
            self.start_committer();
        }
        drop(batch);
        told_of(outcome).await
    }

    /// Starts a committer: a task of its own, so that the commit happens even if the request
    /// that started it is dropped (a client that went away) while it waits.
    fn start_committer(&self) {
        let group = self.clone();
        tokio::spawn(async move { group.commit_batch().await });
    }

    /// Commits the batch once the writes queued before the committer have had their turn:
    /// first the audit rows waiting on their own, then the commit.
    async fn commit_batch(&self) {
        let mut batch = self.batch.clone().lock_owned().await;
        batch.settle().await;
        batch.committer = false;
        {
            let mut queued = self.queued();
            queued.committer = false;
            batch.audits.append(&mut queued.audits);
        }
        if batch.waiting.is_empty() && batch.audits.is_empty() {
            // Only writes that were rolled back: the transaction ends with nothing to keep,
            // and the writer's lock is let go.
            batch.roll_back().await;
            return;
        }
        let (first_audit, outcome) =
            if self.file.is_some() && batch.tx.is_none() && batch.waiting.is_empty() {
                match self.commit_audits_alone(&mut batch).await {
                    Ok(first) => (first, Ok(())),
                    Err(e) => (0, Err(Arc::new(e))),
                }
            } else {
                let first = match self.append_audits(&mut batch).await {
                    Ok(first) => first,
                    Err(e) => return batch.fail(e).await,
                };
                (first, batch.commit().await.map_err(Arc::new))
            };
        let waiting = std::mem::take(&mut batch.waiting);
        let audits = std::mem::take(&mut batch.audits);
        if outcome.is_ok()
            && let Some(c) = &self.checkpoints
        {
            c.nudge();
        }
        drop(batch);
        if outcome.is_ok() {
            self.counts.commits.fetch_add(1, Ordering::Relaxed);
            self.counts
                .writes
                .fetch_add((waiting.len() + audits.len()) as u64, Ordering::Relaxed);
        }
        for w in waiting {
            let _ = w.send(outcome.clone().map(|()| 0));
        }
        for (n, (_, w)) in audits.into_iter().enumerate() {
            let _ = w.send(outcome.clone().map(|()| first_audit + n as i64));
        }
    }

    /// Appends the audit rows waiting on their own to the batch's transaction (opening one
    /// if the batch has none): the first row's number.
    async fn append_audits(&self, batch: &mut Batch) -> Result<i64, StoreError> {
        if batch.audits.is_empty() {
            return Ok(0);
        }
        if batch.tx.is_none() {
            let spare = batch.spare.take();
            batch.tx = Some(self.open(spare).await?);
        }
        let entries: Vec<AuditEntry> = batch.audits.iter().map(|(e, _)| e.clone()).collect();
        let tx = batch.tx.as_mut().expect("a transaction was just opened");
        crate::chain::append(tx.db(), self.backend, &entries, self.audit_key.as_ref()).await
    }

    /// A batch of audit rows alone on an SQLite file (the reads' rows, when no write is
    /// waiting): its transaction is opened, the rows appended and the commit made in one turn
    /// on a blocking thread, rather than a turn to open and another to commit. The first
    /// row's number.
    async fn commit_audits_alone(&self, batch: &mut Batch) -> Result<i64, StoreError> {
        let begin = self.lite_begin(batch.spare.take())?;
        let entries: Vec<AuditEntry> = batch.audits.iter().map(|(e, _)| e.clone()).collect();
        let (backend, key) = (self.backend, self.audit_key.clone());
        let (conn, done) = tokio::task::spawn_blocking(move || {
            let mut conn = match begin() {
                Ok(c) => c,
                Err(e) => return (None, Err(e)),
            };
            // Statements on a rusqlite connection never wait on the runtime: the future is
            // ready when first polled.
            let appended = futures::executor::block_on(crate::chain::append(
                Db::lite(&mut conn),
                backend,
                &entries,
                key.as_ref(),
            ));
            let (conn, ended) = end_lite(conn, appended.is_ok());
            (conn, appended.and_then(|first| ended.map(|()| first)))
        })
        .await
        .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))?;
        batch.spare = conn;
        done
    }

    /// What opens an SQLite file's writer transaction on a blocking thread (on `spare` if
    /// there is one); an error at once if the store was closed.
    fn lite_begin(
        &self,
        spare: Option<Connection>,
    ) -> Result<impl FnOnce() -> Result<Connection, StoreError> + Send + 'static, StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        let file = self.file.clone().expect("only on an SQLite file");
        let checkpoints = self.checkpoints.clone();
        Ok(move || {
            let conn = match spare {
                Some(c) => c,
                None => crate::lite::open_writer(&file, checkpoints.is_some())?,
            };
            if let Some(c) = &checkpoints {
                c.before_write(&conn);
            }
            conn.execute_batch("BEGIN IMMEDIATE")?;
            Ok(conn)
        })
    }

    /// A batch's transaction (on an SQLite file, on `spare` if there is one). On SQLite the
    /// write lock is taken at the start (IMMEDIATE), so that a batch held up by another
    /// process's write waits its busy time-out instead of failing when its read turns into a
    /// write.
    async fn open(&self, spare: Option<Connection>) -> Result<Writing, StoreError> {
        if self.file.is_some() {
            let conn = tokio::task::spawn_blocking(self.lite_begin(spare)?)
                .await
                .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))??;
            return Ok(Writing::Lite(conn));
        }
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        Ok(Writing::Any(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        }))
    }
}

/// What a write or an audit row is told when the commit that carries it ends.
async fn told_of(outcome: oneshot::Receiver<Outcome>) -> Result<i64, StoreError> {
    match outcome.await {
        Ok(Ok(seq)) => Ok(seq),
        Ok(Err(e)) => Err(StoreError::Shared(e)),
        // The committer went away without a word (the runtime is shutting down): the
        // write's fate is unknown to it, a server error.
        Err(_) => Err(StoreError::Database(sqlx::Error::WorkerCrashed)),
    }
}

/// Ends an SQLite file's writer transaction: `COMMIT` (or `ROLLBACK`), and `ROLLBACK` if the
/// commit fails. The connection comes back when it is out of its transaction; one whose
/// transaction will not end is let go (its close ends it).
fn end_lite(conn: Connection, commit: bool) -> (Option<Connection>, Result<(), StoreError>) {
    let done = conn.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" });
    if done.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let conn = conn.is_autocommit().then_some(conn);
    (conn, done.map_err(StoreError::from))
}
