//! Moving from SQLite to PostgreSQL: `coproduce copy` carries every row of every table
//! (resources and their versions, search rows, accounts, tokens, the audit trail, deadlines,
//! the projection and its pending marks) into an empty PostgreSQL database, leaves sign-in
//! sessions behind, adds its own audit row and the chain verifies there; it refuses a target
//! that holds data and a source whose audit trail was altered, writing nothing.

use coproduce_testkit::{TestApp, TestBackend, TestDb};
use sqlx::{Connection, Row};

/// Every table's rows as text, the same rendering on both backends (integers and text as
/// text, bytes as lower-case hex, NULL as NULL), sorted.
pub(crate) async fn rows(
    url: &str,
    columns_of: &[(String, Vec<(String, String)>)],
) -> Vec<(String, Vec<String>)> {
    let postgres = url.starts_with("postgres");
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url)
        .await
        .expect("open the database");
    let mut out = Vec::new();
    for (table, columns) in columns_of {
        let rendered: Vec<String> = columns
            .iter()
            .map(|(name, declared)| {
                let bytes = declared.eq_ignore_ascii_case("BLOB");
                match (postgres, bytes) {
                    (true, true) => format!("COALESCE(encode(\"{name}\", 'hex'), 'NULL')"),
                    (true, false) => format!("COALESCE(\"{name}\"::text, 'NULL')"),
                    (false, true) => format!("COALESCE(lower(hex(\"{name}\")), 'NULL')"),
                    (false, false) => format!("COALESCE(CAST(\"{name}\" AS TEXT), 'NULL')"),
                }
            })
            .collect();
        // The names come from the database's own catalogue, not from any input.
        let mut all: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM \"{table}\"",
            rendered.join(" || '|' || ")
        )))
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        all.sort();
        out.push((table.clone(), all));
    }
    c.close().await.unwrap();
    out
}

/// A database's tables (but the migrations' ledger) and their columns, each `BLOB` (bytes)
/// or `TEXT` (anything else), as [`rows`] reads them; on SQLite or PostgreSQL, read from
/// the database's own catalogue.
pub(crate) async fn tables(url: &str) -> Vec<(String, Vec<(String, String)>)> {
    let (names_sql, columns_sql) = if url.starts_with("postgres") {
        (
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> '_sqlx_migrations' ORDER BY table_name",
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
    } else {
        (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> '_sqlx_migrations' ORDER BY name",
            "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
        )
    };
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    let names: Vec<String> = sqlx::query(names_sql)
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let mut out = Vec::new();
    for t in names {
        let columns = sqlx::query(columns_sql)
            .bind(t.clone())
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let declared: String = r.get(1);
                let bytes = declared.eq_ignore_ascii_case("BLOB") || declared == "bytea";
                (
                    r.get::<String, _>(0),
                    if bytes { "BLOB" } else { "TEXT" }.to_string(),
                )
            })
            .collect();
        out.push((t, columns));
    }
    c.close().await.unwrap();
    out
}

#[tokio::test]
async fn sqlite_moves_to_postgresql_whole_and_a_bad_copy_writes_nothing() {
    if !coproduce_testkit::backends().contains(&TestBackend::Postgres) {
        return;
    }
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    // A row in every table that matters, a signed-in session among them.
    crate::backup::a_record_with_everything(&app).await;
    let source = app.db.url.clone();
    let schema = tables(&source).await;
    let before = rows(&source, &schema).await;
    let count = |rows: &[(String, Vec<String>)], t: &str| {
        rows.iter()
            .find(|(n, _)| n == t)
            .map_or(0, |(_, r)| r.len())
    };
    for must in [
        "resources",
        "resource_history",
        "search_token",
        "users",
        "api_tokens",
        "audit_log",
        "deadlines",
        "patient_records",
        "patient_records_pending",
        "sessions",
    ] {
        assert!(count(&before, must) > 0, "{must} is empty before the copy");
    }

    let target = TestDb::new(TestBackend::Postgres).await;
    let (ok, out) = crate::coproduce(&source, &["copy", "--to", &target.url]);
    assert!(ok, "{out}");
    assert!(out.contains("the audit trail is intact"), "{out}");
    assert!(
        out.contains(&format!(
            "{} sign-in sessions left behind",
            count(&before, "sessions")
        )),
        "{out}"
    );
    let after = rows(&target.url, &schema).await;
    for ((table, a), (_, b)) in before.iter().zip(&after) {
        match table.as_str() {
            "sessions" => assert!(b.is_empty(), "sessions are not carried"),
            // The copy's own row follows the source's, which come over hash for hash; the
            // head points at it.
            "audit_log" => {
                assert_eq!(b.len(), a.len() + 1);
                let mut carried = b.clone();
                carried.retain(|r| !r.contains("|cli:copy|"));
                assert_eq!(&carried, a, "the audit trail came over unchanged");
            }
            "audit_head" => assert_eq!(b.len(), 1),
            _ => assert!(
                a == b,
                "{table} differs after the copy ({} rows, {} rows)",
                a.len(),
                b.len()
            ),
        }
    }
    let (ok, out) = crate::coproduce(&target.url, &["audit", "verify"]);
    assert!(ok, "{out}");

    // Into a database that holds data: refused, nothing written.
    let (ok, out) = crate::coproduce(&source, &["copy", "--to", &target.url]);
    assert!(!ok && out.contains("holds data already"), "{out}");
    assert_eq!(rows(&target.url, &schema).await, after);

    // From a source whose audit trail was altered: refused, nothing written.
    crate::sqlite_behind_the_store(
        &source,
        &["UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 3"],
    )
    .await;
    let other = TestDb::new(TestBackend::Postgres).await;
    let (ok, out) = crate::coproduce(&source, &["copy", "--to", &other.url]);
    assert!(!ok && out.contains("broken at row 3"), "{out}");
    for (table, r) in rows(&other.url, &schema).await {
        if table != "store_meta" {
            assert!(r.is_empty(), "{table} was written by a refused copy");
        }
    }
    other.drop_db().await;
    target.drop_db().await;
    app.finish().await;
}
