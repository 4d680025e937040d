//! SQLite reads on rusqlite, on read-only connections of their own.
//!
//! sqlx's SQLite driver runs each connection on a worker thread and hands every statement
//! and every row across a channel to it and back: two thread switches per statement and one
//! per row, which cost more than the read itself (a point read is a few microseconds of
//! SQLite). The hot reads (a resource by id, a search and its includes) run here instead,
//! on the calling thread, as CPU work like parsing the JSON they return: in WAL mode a
//! reader never waits for the writer. Everything else keeps the sqlx pools.

use crate::Store;
use crate::cells::Cells;
use crate::db::{Arg, any_args, lite_rows};
use crate::error::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections kept for reuse; more are opened while more readers run at once.
const SPARE: usize = 8;

/// Prepared statements kept per connection (searches differ in their number of arguments).
const STATEMENTS: usize = 64;

/// How much of the database file a scanning reader maps (bytes).
const MMAP: i64 = 1 << 30;

/// The SQL function `among(list, value)`, on every rusqlite connection the store opens:
/// whether `value` is one of the [`AMONG_SEPARATOR`]-separated `list` (a panel's patient
/// ids). SQLite keeps the list's hash set beside the statement while the argument stays the
/// same, so it is built once per statement and each row costs a hash lookup.
pub(crate) const AMONG: &str = "among";

/// What separates the values of [`AMONG`]'s list (no FHIR id holds it).
pub(crate) const AMONG_SEPARATOR: char = '\n';

/// Adds the store's SQL functions ([`AMONG`]) to a connection.
fn add_functions(c: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    type Failure = Box<dyn std::error::Error + Send + Sync>;
    c.create_scalar_function(
        AMONG,
        2,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_INNOCUOUS,
        |ctx| {
            let list = ctx.get_or_create_aux(0, |v| -> Result<HashSet<String>, Failure> {
                Ok(v.as_str()?
                    .split(AMONG_SEPARATOR)
                    .map(str::to_string)
                    .collect())
            })?;
            Ok(match ctx.get_raw(1) {
                ValueRef::Text(value) => {
                    std::str::from_utf8(value).is_ok_and(|value| list.contains(value))
                }
                _ => false,
            })
        },
    )
}

impl Store {
    /// The rows of a point read (a few rows by their key: a resource, a version, a token, a
    /// user), each mapped by `map`: on a rusqlite point reader ([`Reach::Point`]) when the
    /// store is an SQLite file, else on the reader pool.
    pub(crate) async fn fetch<T>(
        &self,
        sql: &str,
        args: &[Arg],
        map: impl Fn(&dyn Cells) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        if let Some(readers) = &self.lite {
            return readers.lend_point()?.rows(sql, args, |r| map(r));
        }
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), any_args(args)?)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|r| map(r)).collect()
    }
}

/// Prepared statements kept by the writer (a bulk insert's text differs with its row count).
const WRITER_STATEMENTS: usize = 128;

/// A read-write connection to an SQLite file for the group's writes, set as sqlx's writer
/// pool sets its own (`Store::connect`).
/// With `checkpoints`, it leaves the WAL's checkpoints to a [`Checkpointer`]; without, it
/// makes them itself when the WAL grows past the threshold, as the others do.
pub(crate) fn open_writer(
    file: &std::path::Path,
    checkpoints: bool,
) -> Result<Connection, StoreError> {
    let c = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // WAL for concurrent readers; FULL so an acknowledged write survives a power cut; a wait
    // instead of an error on a lock.
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    c.busy_timeout(Duration::from_millis(crate::BUSY_TIMEOUT_MS as u64))?;
    c.pragma_update(None, "cache_size", -crate::WRITER_CACHE_KIB)?;
    // The WAL is copied back into the database by the [`Checkpointer`], on a thread of its
    // own, not by the commit that crosses the threshold while every write waits for it.
    let threshold = if checkpoints {
        0
    } else {
        crate::WAL_CHECKPOINT_PAGES
    };
    c.pragma_update(None, "wal_autocheckpoint", threshold)?;
    // A WAL started over is written from its start again, over the blocks its file has: a
    // file cut shorter would grow again, and every block it frees and takes back costs
    // the commits of that moment a wait for the file system's journal (with online
    // discard, hundreds of milliseconds). Only a WAL that grew far past its cap (readers
    // held it) is cut back, to that.
    c.pragma_update(None, "journal_size_limit", WAL_KEPT_BYTES)?;
    // Each write's savepoint keeps the pages it changes first in a sub-journal: in memory,
    // not in a temporary file written page by page.
    c.pragma_update(None, "temp_store", "MEMORY")?;
    c.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
    add_functions(&c)?;
    Ok(c)
}

/// Copies an SQLite file's WAL back into the database on a thread of its own, when the
/// writer has committed about [`WAL_FRAMES`] pages since the last time
/// ([`Checkpointer::nudge`]): a passive checkpoint, which neither waits for nor holds up the
/// writer and its readers. How many commits make that many pages is learnt from each
/// checkpoint (an API write's commit adds tens of pages, an import's thousands).
///
/// A passive checkpoint never starts the WAL over while writes keep coming: the writer
/// starts it over only when, as it begins, every frame is copied back and no reader is in
/// the WAL, and under steady load some reader always is. So the file would grow for as long
/// as the load lasts (a gigabyte a minute at a thousand creates a second). Past
/// [`WAL_CAP_FRAMES`], the checkpointer says so, and the writer, before its next
/// transaction ([`Checkpointer::before_write`]), makes a restarting checkpoint: it copies
/// the rest back and waits for the readers in the WAL to finish, at most [`CAP_WAIT`]. The
/// writer, not the checkpointer, because a checkpoint that must wait for the writer's lock
/// would never find it free between two batches. A reader that holds on longer (a
/// population run's scan) leaves the WAL as it is until the checkpointer says so again.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    /// A wake-up, with whom to tell when that checkpoint is done (if anyone waits for it).
    nudges: std::sync::mpsc::SyncSender<Option<std::sync::mpsc::Sender<()>>>,
    pace: Arc<Pace>,
    /// The WAL was past its cap at the last checkpoint.
    over_cap: Arc<std::sync::atomic::AtomicBool>,
}

/// WAL pages past which the writer, told by the checkpointer, starts the WAL over (256 MiB
/// at 4 KiB pages). Its file keeps the size it had, up to [`WAL_KEPT_BYTES`].
const WAL_CAP_FRAMES: i64 = 8 * crate::WAL_CHECKPOINT_PAGES;

/// The size past which the WAL's file is cut back when it starts over: 1 GiB, four times
/// the cap (SQLite's `journal_size_limit` counts bytes).
const WAL_KEPT_BYTES: i64 = 1 << 30;

/// How long the writer's restarting checkpoint waits for the readers still in the WAL (and
/// holds up the writes meanwhile) before it gives up until the next time.
const CAP_WAIT: Duration = Duration::from_millis(20);

/// Commits counted, the count at the last wake-up, and the commits between wake-ups.
#[derive(Debug)]
struct Pace {
    commits: AtomicU64,
    woken_at: AtomicU64,
    every: AtomicU64,
}

/// WAL pages between checkpoints: the 32 MiB the other connections check at
/// ([`crate::WAL_CHECKPOINT_PAGES`]). A reader looks every page up in the WAL's index first,
/// so a WAL left to grow slows every read.
const WAL_FRAMES: u64 = crate::WAL_CHECKPOINT_PAGES as u64;

impl Checkpointer {
    /// None when no thread could be started (the writer then checkpoints itself).
    pub(crate) fn start(file: PathBuf) -> Option<Self> {
        Self::start_capped(file, WAL_CAP_FRAMES)
    }

    /// As [`Checkpointer::start`], with the WAL started over past `cap` pages.
    fn start_capped(file: PathBuf, cap: i64) -> Option<Self> {
        let (nudges, wake) =
            std::sync::mpsc::sync_channel::<Option<std::sync::mpsc::Sender<()>>>(1);
        let pace = Arc::new(Pace {
            commits: AtomicU64::new(0),
            woken_at: AtomicU64::new(0),
            every: AtomicU64::new(16),
        });
        let paced = pace.clone();
        let over_cap = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let over = over_cap.clone();
        let spawned = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut conn = None;
                // Commits counted, and the WAL's pages, at the last checkpoint.
                let (mut last, mut last_pages) = (0, 0);
                // Ends when the store, and with it the last sender, is gone.
                while let Ok(done) = wake.recv() {
                    if conn.is_none() {
                        conn = open_writer(&file, true)
                            .inspect_err(|e| tracing::warn!(error = %e, "the checkpointer could not open the database"))
                            .ok();
                    }
                    let commits = paced.commits.load(Ordering::Relaxed);
                    if let Some(c) = &conn {
                        // (busy, pages in the WAL, pages copied): the WAL starts over after
                        // a checkpoint that copied it all, so its pages are those committed
                        // since.
                        match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                            r.get::<_, i64>(1)
                        }) {
                            Ok(pages) => {
                                let every = commits_between(
                                    pages,
                                    last_pages,
                                    commits.saturating_sub(last),
                                );
                                paced.every.store(every, Ordering::Relaxed);
                                last_pages = pages;
                                if pages > cap {
                                    over.store(true, Ordering::Relaxed);
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "a checkpoint failed; the next commit tries again");
                                conn = None;
                            }
                        }
                    }
                    last = commits;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no checkpoint thread: the writer checkpoints itself");
            return None;
        }
        Some(Checkpointer {
            nudges,
            pace,
            over_cap,
        })
    }

    /// Counts a commit, and wakes the checkpointer when enough were made since it was last
    /// woken ([`commits_between`]; if it is still busy, this one is left to the next).
    pub(crate) fn nudge(&self) {
        let n = self.pace.commits.fetch_add(1, Ordering::Relaxed) + 1;
        let woken = self.pace.woken_at.load(Ordering::Relaxed);
        if n - woken >= self.pace.every.load(Ordering::Relaxed)
            && self.nudges.try_send(None).is_ok()
        {
            self.pace.woken_at.store(n, Ordering::Relaxed);
        }
    }

    /// What the writer does on `conn`, outside any transaction, before it opens the next
    /// one: starts the WAL over if the last checkpoint found it past its cap.
    pub(crate) fn before_write(&self, conn: &Connection) {
        if self.over_cap.swap(false, Ordering::Relaxed) {
            restart_wal(conn);
        }
    }

    /// Makes a checkpoint now, and returns when it is done.
    #[cfg(test)]
    fn checkpoint(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        self.nudges.send(Some(done)).expect("the checkpointer runs");
        wait.recv().expect("the checkpointer answers");
    }
}

/// How many commits to let pass before the next checkpoint, so that about [`WAL_FRAMES`]
/// pages are written between two: learnt from the last ones, in which the WAL went from
/// `before` pages to `pages` over `commits` commits. Its pages count from its last start, so
/// fewer than before means it started over in between, and all of them are new. (Under
/// load it starts over only when the cap makes it, so its pages are no measure of one
/// commit's: counted so, the checkpointer ran after every commit and copied and synced the
/// database each time.)
fn commits_between(pages: i64, before: i64, commits: u64) -> u64 {
    let written = if pages >= before {
        pages - before
    } else {
        pages
    };
    let per_commit = (written.max(1) as u64).div_ceil(commits.max(1));
    (WAL_FRAMES / per_commit).clamp(1, 4096)
}

/// Copies the rest of the WAL back and waits, at most [`CAP_WAIT`], for the readers still
/// in it to finish, so that the writer's next transaction writes the WAL from its start
/// again (over the pages already there: the file is not cut and grown again, and a commit
/// does not pay for new blocks). A reader that holds on longer leaves it as it is (SQLite
/// answers busy, which is no failure); anything else is logged.
fn restart_wal(c: &Connection) {
    let started = std::time::Instant::now();
    let waited = c
        .busy_handler(Some(wait_for_readers))
        .and_then(|()| c.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)));
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    match waited {
        Ok(0) => tracing::debug!(took_ms, "the WAL starts over"),
        Ok(_) => tracing::debug!(took_ms, "a reader held the WAL; it starts over later"),
        Err(e) => tracing::warn!(error = %e, "the WAL could not be started over"),
    }
    let back = Duration::from_millis(crate::BUSY_TIMEOUT_MS as u64);
    if let Err(e) = c.busy_timeout(back) {
        tracing::warn!(error = %e, "the writer's wait for locks could not be set back");
    }
}

/// The busy handler of [`restart_wal`]: short naps, so that the writer goes on as soon as
/// the last reader lets go (SQLite's own waits grow from 1 ms to 100 ms), until [`CAP_WAIT`].
fn wait_for_readers(tries: i32) -> bool {
    std::thread::sleep(READER_NAP);
    u128::from(tries.unsigned_abs()) < CAP_WAIT.as_micros() / READER_NAP.as_micros()
}

/// One nap of [`wait_for_readers`].
const READER_NAP: Duration = Duration::from_micros(200);

/// The read-only connections of one SQLite database file, of two kinds (below).
#[derive(Debug)]
pub(crate) struct Readers {
    file: PathBuf,
    /// The spare connections of each kind.
    point: Mutex<Vec<Connection>>,
    scan: Mutex<Vec<Connection>>,
}

/// What a lent connection is for, which decides how it reads the file.
///
/// - `Scan` (a search, a panel, a population run: many pages) maps the file and reads its
///   pages straight from the mapping, rather than copied in by a system call each. A live
///   store's file only grows (no VACUUM but VACUUM INTO another file), as a mapping needs:
///   a file cut short under it would fault.
/// - `Point` (a resource by id, a token: a handful of pages) does not. When a commit has
///   come between two of a connection's reads, SQLite drops its cached pages and, on a
///   mapped connection, the whole mapping, which costs the next read a `munmap` (stopping
///   the other cores to flush their TLBs), a new `mmap` and a page fault per page. Under
///   load some commit always has (each read's audit row is one), and in `bench/api`'s
///   reads a mapped connection spent about 1.6 times as long on the token and the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    Point,
    Scan,
}

/// A connection lent by [`Readers`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Lent<'a> {
    readers: &'a Readers,
    reach: Reach,
    conn: Option<Connection>,
}

impl Readers {
    pub(crate) fn new(file: PathBuf) -> Self {
        Readers {
            file,
            point: Mutex::new(Vec::new()),
            scan: Mutex::new(Vec::new()),
        }
    }

    fn spare(&self, reach: Reach) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        let spare = match reach {
            Reach::Point => &self.point,
            Reach::Scan => &self.scan,
        };
        spare.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection for a read of many pages (see [`Reach`]).
    pub(crate) fn lend(&self) -> Result<Lent<'_>, StoreError> {
        self.lend_for(Reach::Scan)
    }

    /// A connection for a read of a few pages: a row by its key (see [`Reach`]).
    pub(crate) fn lend_point(&self) -> Result<Lent<'_>, StoreError> {
        self.lend_for(Reach::Point)
    }

    /// A spare connection of the kind, or a new one.
    fn lend_for(&self, reach: Reach) -> Result<Lent<'_>, StoreError> {
        let spare = self.spare(reach).pop();
        let conn = match spare {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.file,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(Duration::from_secs(10))?;
                if reach == Reach::Scan {
                    c.pragma_update(None, "mmap_size", MMAP)?;
                }
                // A search's sorts and lists of ids are built in memory, not in a temporary
                // file written and read back.
                c.pragma_update(None, "temp_store", "MEMORY")?;
                c.set_prepared_statement_cache_capacity(STATEMENTS);
                add_functions(&c)?;
                c
            }
        };
        Ok(Lent {
            readers: self,
            reach,
            conn: Some(conn),
        })
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        // One still in a transaction (its end failed) is closed, not lent again: its next
        // reader would see that transaction's snapshot, not the store as it is.
        if let Some(conn) = self.conn.take().filter(Connection::is_autocommit) {
            let mut spare = self.readers.spare(self.reach);
            if spare.len() < SPARE {
                spare.push(conn);
            }
        }
    }
}

impl Lent<'_> {
    pub(crate) fn conn(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a lent connection is held until dropped")
    }

    /// The rows of `sql`, each mapped by `map`.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        args: &[Arg],
        map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        lite_rows(self.conn(), sql, args, map)
    }

    /// The connection, for statements of either driver ([`crate::db::Db`]).
    pub(crate) fn db(&mut self) -> crate::db::Db<'_> {
        crate::db::Db::lite(
            self.conn
                .as_mut()
                .expect("a lent connection is held until dropped"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new SQLite file in a directory of its own, with a table `t`, and its writer.
    fn store_file(name: &str) -> (PathBuf, PathBuf, Connection) {
        let dir = std::env::temp_dir().join(format!("coproduce-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("store.db");
        // The store's file exists before its writer opens it (sqlx makes it).
        drop(Connection::open(&file).unwrap());
        let writer = open_writer(&file, true).unwrap();
        writer.execute_batch("CREATE TABLE t (v BLOB)").unwrap();
        (dir, file, writer)
    }

    /// A reader given back inside a transaction is closed, not lent again: the next would
    /// read that transaction's snapshot.
    #[test]
    fn a_reader_left_in_a_transaction_is_not_lent_again() {
        let (dir, file, writer) = store_file("lent");
        let readers = Readers::new(file);
        let spare = || readers.spare(Reach::Scan).len();
        drop(readers.lend().unwrap());
        assert_eq!(spare(), 1, "one given back at rest is kept");
        let lent = readers.lend().unwrap();
        lent.conn().execute_batch("BEGIN; SELECT * FROM t").unwrap();
        drop(lent);
        assert_eq!(spare(), 0, "one given back in a transaction is closed");
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A scanning reader maps the file and a point reader does not (see [`Reach`]); each is
    /// lent again as the kind it was opened as.
    #[test]
    fn scanning_readers_map_the_file_and_point_readers_do_not() {
        let (dir, file, writer) = store_file("reach");
        let readers = Readers::new(file);
        let mapped = |lent: &Lent<'_>| -> i64 {
            lent.conn()
                .query_row("PRAGMA mmap_size", [], |r| r.get(0))
                .unwrap()
        };
        for _ in 0..2 {
            let (scan, point) = (readers.lend().unwrap(), readers.lend_point().unwrap());
            assert_eq!(mapped(&scan), MMAP);
            assert_eq!(mapped(&point), 0);
        }
        assert_eq!(readers.spare(Reach::Scan).len(), 1);
        assert_eq!(readers.spare(Reach::Point).len(), 1);
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The writer leaves checkpoints to the checkpointer: its commits stay in the WAL until
    /// the checkpointer copies them into the database file.
    #[test]
    fn the_checkpointer_copies_the_writers_wal_into_the_database() {
        let (dir, file, writer) = store_file("ckpt");
        let checkpointer = Checkpointer::start(file.clone()).unwrap();
        let size = || std::fs::metadata(&file).unwrap().len();
        let before = size();
        for _ in 0..200 {
            writer
                .execute("INSERT INTO t (v) VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        assert!(
            size() < before + 100_000,
            "the writer's 800 KB are in the WAL, not the database: {} bytes",
            size()
        );
        checkpointer.checkpoint();
        assert!(
            size() > before + 800_000,
            "the checkpoint copied them in: {} bytes",
            size()
        );
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Past its cap the writer, before its next transaction, waits briefly for the readers
    /// in the WAL: one that holds on leaves the WAL as it is, and the writer goes on at its
    /// end; once they let go it starts over, from its start, in the file it has (the file is
    /// not cut). That the wait is what lets the WAL start over under steady reads, where no
    /// moment is free of readers, shows in `bench/api` (decision 0011), not here.
    #[test]
    fn a_wal_past_its_cap_starts_over_once_its_readers_let_go() {
        let (dir, file, writer) = store_file("cap");
        let checkpointer = Checkpointer::start_capped(file.clone(), 100).unwrap();
        let wal = || std::fs::metadata(dir.join("store.db-wal")).map_or(0, |m| m.len());
        let write = |n: usize| {
            for _ in 0..n {
                writer
                    .execute("INSERT INTO t (v) VALUES (zeroblob(4000))", [])
                    .unwrap();
            }
        };
        let readers = Readers::new(file.clone());
        let reader = readers.lend().unwrap();
        let in_wal = || {
            reader.conn().execute_batch("BEGIN").unwrap();
            let n: i64 = reader
                .conn()
                .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .unwrap();
            n
        };
        write(50);
        assert_eq!(in_wal(), 50, "the reader's snapshot holds 50 rows");
        write(200);
        checkpointer.checkpoint();
        checkpointer.before_write(&writer);
        let held = wal();
        write(1);
        assert!(
            wal() > held,
            "a reader in the WAL keeps it: the writer went on at its end ({held} -> {} bytes)",
            wal()
        );
        reader.conn().execute_batch("COMMIT").unwrap();
        checkpointer.checkpoint();
        checkpointer.before_write(&writer);
        let kept = wal();
        assert!(kept > 800_000, "the WAL's file is kept: {kept} bytes");
        write(1);
        assert_eq!(
            wal(),
            kept,
            "the next write went to its start: the file did not grow"
        );
        let pages: i64 = writer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap();
        assert!(pages < 10, "the WAL holds that write alone: {pages} pages");
        let n: i64 = writer
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 252, "nothing was lost");
        drop((reader, writer));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The checkpointer wakes after about [`WAL_FRAMES`] pages, counted by what commits add
    /// to the WAL, not by how much it holds (under load it never starts over by itself).
    #[test]
    fn the_checkpointer_paces_itself_by_what_commits_add_to_the_wal() {
        assert_eq!(commits_between(30_064, 30_000, 1), WAL_FRAMES / 64);
        assert_eq!(commits_between(38_000, 30_000, 500), 512);
        assert_eq!(
            commits_between(4_000, 70_000, 250),
            512,
            "started over between"
        );
        assert_eq!(
            commits_between(5, 5, 0),
            4096,
            "nothing written: the longest pause"
        );
        assert_eq!(
            commits_between(100_000, 0, 1),
            1,
            "a huge commit: the next one"
        );
    }
}
