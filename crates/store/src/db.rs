//! One connection of either driver: sqlx's (PostgreSQL, an in-memory SQLite, a copy's
//! target) or rusqlite's (an SQLite file's writer and readers), so a statement is written
//! once with its arguments and runs on whichever connection the store has.
//!
//! sqlx's SQLite driver runs each connection on a worker thread and hands every statement,
//! and every row of its result, across a channel to it and back: two thread switches per
//! statement, which cost more than the statement (a write is a few microseconds of SQLite).
//! So an SQLite file is read and written on rusqlite, on the calling thread.

use crate::cells::Cells;
use crate::error::StoreError;
use sqlx::Arguments;
use sqlx::any::AnyArguments;

/// A statement argument, bound by the `$n` (or `?`) in its text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Blob(Vec<u8>),
    /// A missing text (PostgreSQL types its null, and puts no text null in a number column).
    NoText,
    /// A missing integer.
    NoInt,
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        v.as_deref().into()
    }
}

impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Blob(v)
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Arg::NoText, Into::into)
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        v.map_or(Arg::NoText, Into::into)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Arg::NoInt, Into::into)
    }
}

/// The arguments of a statement, each converted with [`Arg::from`].
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        [$($crate::db::Arg::from($a)),*]
    };
}
pub(crate) use args;

/// `args` for sqlx.
pub(crate) fn any_args(args: &[Arg]) -> Result<AnyArguments, StoreError> {
    let mut out = AnyArguments::default();
    for a in args {
        match a {
            Arg::Text(s) => out.add(s.clone()),
            Arg::Int(v) => out.add(*v),
            Arg::Blob(b) => out.add(b.clone()),
            Arg::NoText => out.add(None::<String>),
            Arg::NoInt => out.add(None::<i64>),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// A connection statements run on: a sqlx connection, or a rusqlite one.
#[derive(Debug)]
pub struct Db<'a>(On<'a>);

#[derive(Debug)]
enum On<'a> {
    Any(&'a mut sqlx::AnyConnection),
    Lite(&'a mut rusqlite::Connection),
}

impl<'a> Db<'a> {
    pub(crate) fn any(conn: &'a mut sqlx::AnyConnection) -> Self {
        Db(On::Any(conn))
    }

    pub(crate) fn lite(conn: &'a mut rusqlite::Connection) -> Self {
        Db(On::Lite(conn))
    }

    /// Whether this is one of the store's own SQLite connections (with its SQL functions,
    /// [`crate::lite::AMONG`]).
    pub(crate) fn is_lite(&self) -> bool {
        matches!(self.0, On::Lite(_))
    }

    /// Runs a statement that takes no arguments: the rows it changed. (The store's own
    /// statements bind their values; this is for a tool or test that needs the connection.)
    pub async fn run(&mut self, sql: &str) -> Result<u64, StoreError> {
        self.execute(sql, &[]).await
    }

    /// Runs `sql`: the rows it changed.
    pub(crate) async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        match &mut self.0 {
            On::Any(conn) => Ok(sqlx::query_with(
                sqlx::AssertSqlSafe(sql.to_string()),
                any_args(args)?,
            )
            .execute(&mut **conn)
            .await?
            .rows_affected()),
            On::Lite(conn) => lite_execute(conn, sql, args),
        }
    }

    /// The rows of `sql`, each mapped by `map`.
    pub(crate) async fn rows<T>(
        &mut self,
        sql: &str,
        args: &[Arg],
        map: impl Fn(&dyn Cells) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match &mut self.0 {
            On::Any(conn) => {
                let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql.to_string()), any_args(args)?)
                    .fetch_all(&mut **conn)
                    .await?;
                rows.iter().map(|r| map(r)).collect()
            }
            On::Lite(conn) => lite_rows(conn, sql, args, |r| map(r)),
        }
    }

    /// The first row of `sql`, mapped by `map`, if there is one.
    pub(crate) async fn first<T>(
        &mut self,
        sql: &str,
        args: &[Arg],
        map: impl Fn(&dyn Cells) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.rows(sql, args, map).await?.into_iter().next())
    }

    /// The one integer `sql` returns (a count); 0 when it returns no row.
    pub(crate) async fn integer(&mut self, sql: &str, args: &[Arg]) -> Result<i64, StoreError> {
        Ok(self.first(sql, args, |r| r.int(0)).await?.unwrap_or(0))
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
            Arg::Blob(b) => statement.raw_bind_parameter(i + 1, b.as_slice())?,
            Arg::NoText | Arg::NoInt => {
                statement.raw_bind_parameter(i + 1, rusqlite::types::Null)?
            }
        }
    }
    Ok(())
}

/// [`Db::rows`] on a rusqlite connection.
pub(crate) fn lite_rows<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg],
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(&numbered(sql))?;
    bind(&mut statement, args)?;
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// [`Db::execute`] on a rusqlite connection.
pub(crate) fn lite_execute(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg],
) -> Result<u64, StoreError> {
    let mut statement = conn.prepare_cached(&numbered(sql))?;
    bind(&mut statement, args)?;
    Ok(statement.raw_execute()? as u64)
}
