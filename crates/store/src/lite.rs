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
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Connections kept for reuse; more are opened while more readers run at once.
const SPARE: usize = 8;

/// Prepared statements kept per connection (searches differ in their number of arguments).
const STATEMENTS: usize = 64;

/// How much of the database file each reader maps (bytes).
const MMAP: i64 = 1 << 30;

impl Store {
    /// The rows of a hot read, each mapped by `map`: on a rusqlite reader when the store is an
    /// SQLite file, else on the reader pool.
    pub(crate) async fn fetch<T>(
        &self,
        sql: &str,
        args: &[Arg],
        map: impl Fn(&dyn Cells) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        if let Some(readers) = &self.lite {
            return readers.lend()?.rows(sql, args, |r| map(r));
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
pub(crate) fn open_writer(file: &std::path::Path) -> Result<Connection, StoreError> {
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
    c.pragma_update(None, "wal_autocheckpoint", crate::WAL_CHECKPOINT_PAGES)?;
    c.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
    Ok(c)
}

/// The read-only connections of one SQLite database file.
#[derive(Debug)]
pub(crate) struct Readers {
    file: PathBuf,
    spare: Mutex<Vec<Connection>>,
}

/// A connection lent by [`Readers`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Lent<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl Readers {
    pub(crate) fn new(file: PathBuf) -> Self {
        Readers {
            file,
            spare: Mutex::new(Vec::new()),
        }
    }

    /// A spare connection, or a new one.
    pub(crate) fn lend(&self) -> Result<Lent<'_>, StoreError> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match spare {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.file,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(Duration::from_secs(10))?;
                // Pages read straight from the mapped file, not copied in by a system call
                // each (a panel's page reads thousands of rows). A live store's file only
                // grows (no VACUUM but VACUUM INTO another file), as a mapping needs: a file
                // cut short under it would fault.
                c.pragma_update(None, "mmap_size", MMAP)?;
                c.set_prepared_statement_cache_capacity(STATEMENTS);
                c
            }
        };
        Ok(Lent {
            readers: self,
            conn: Some(conn),
        })
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut spare = self.readers.spare.lock().unwrap_or_else(|e| e.into_inner());
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
