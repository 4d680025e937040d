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
use crate::error::StoreError;
use rusqlite::{Connection, OpenFlags};
use sqlx::Arguments;
use sqlx::any::AnyArguments;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Connections kept for reuse; more are opened while more readers run at once.
const SPARE: usize = 8;

/// Prepared statements kept per connection (searches differ in their number of arguments).
const STATEMENTS: usize = 64;

/// How much of the database file each reader maps (bytes).
const MMAP: i64 = 1 << 30;

/// A statement argument, bound by the `$n` in its text.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// `args` for sqlx.
pub(crate) fn any_args(args: &[Arg]) -> Result<AnyArguments, StoreError> {
    let mut out = AnyArguments::default();
    for a in args {
        match a {
            Arg::Text(s) => out.add(s.clone()),
            Arg::Int(v) => out.add(*v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

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
        let mut statement = self.conn().prepare_cached(&numbered(sql))?;
        bind(&mut statement, args)?;
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(map(row)?);
        }
        Ok(out)
    }

    /// The one integer `sql` returns (a count).
    pub(crate) fn integer(&self, sql: &str, args: &[Arg]) -> Result<i64, StoreError> {
        let mut statement = self.conn().prepare_cached(&numbered(sql))?;
        bind(&mut statement, args)?;
        let mut rows = statement.raw_query();
        match rows.next()? {
            Some(row) => Ok(row.get(0)?),
            None => Ok(0),
        }
    }
}

/// The statement of `sql` with its `$n` written `?n`: SQLite numbers `?n` itself, while a
/// `$n` is a name that it looks up one at a time (quadratic in a statement with a panel's
/// thousands of arguments). The text holds no literals: every value is an argument.
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

/// Binds `?n` to `args[n - 1]`.
fn bind(statement: &mut rusqlite::Statement<'_>, args: &[Arg]) -> Result<(), StoreError> {
    let n = statement.parameter_count();
    if n > args.len() {
        return Err(rusqlite::Error::InvalidParameterCount(n, args.len()).into());
    }
    for (i, arg) in args.iter().enumerate().take(n) {
        match arg {
            Arg::Text(s) => statement.raw_bind_parameter(i + 1, s.as_str())?,
            Arg::Int(v) => statement.raw_bind_parameter(i + 1, *v)?,
        }
    }
    Ok(())
}
