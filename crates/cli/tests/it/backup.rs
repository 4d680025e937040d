//! Backup and restore on SQLite: a live database copied with `coproduce backup` and brought
//! back with `coproduce restore` holds every row of every table (resources and their
//! versions, accounts, tokens, the audit trail, deadlines), and its chain verifies; a restore
//! never overwrites a database, refuses what is not a backup, and refuses a backup whose audit
//! trail was altered, leaving nothing behind. On PostgreSQL, the documented path (`pg_dump
//! --format=custom`, `pg_restore` into a new database) brings back every row of every table
//! and the chain verifies.

use coproduce_testkit::{TestApp, TestBackend};
use sqlx::Connection;

/// A database with a row in every table that matters: the care team and its accounts,
/// versions, the patient's choices, the measure projection (the background pass builds it),
/// a referral with its deadline (which marks p1's row pending again), a signed-in session.
pub(crate) async fn a_record_with_everything(app: &TestApp) {
    app.seed_care_team("es").await;
    let (social, food, _) = crate::social::screened_and_chosen(app).await;
    app.jobs.run_once().await.unwrap();
    let sw = crate::rescue::caller(app, "sw.diaz").await;
    social
        .refer(&sw, "p1", &food, "eastside-pantry-groceries", "")
        .await
        .unwrap();
    app.sign_in("dr.okafor").await;
}

#[tokio::test]
async fn a_backup_restores_every_row_and_a_bad_one_restores_nothing() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    a_record_with_everything(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.db");
    let (ok, out) = crate::coproduce(&app.db.url, &["backup", "--out", backup.to_str().unwrap()]);
    assert!(ok, "{out}");
    // The original as it was backed up (nothing writes between the two).
    let tables = crate::copy::tables(&app.db.url).await;
    let before = crate::copy::rows(&app.db.url, &tables).await;
    app.finish().await;

    let restored = dir.path().join("restored.db");
    let url = format!("sqlite://{}", restored.display());
    let (ok, out) = crate::coproduce(&url, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("the audit trail is intact"), "{out}");
    assert_eq!(crate::copy::tables(&url).await, tables, "the same tables");
    let after = crate::copy::rows(&url, &tables).await;
    for ((t, a), (_, b)) in before.iter().zip(&after) {
        assert!(a == b, "{t} differs after the restore");
    }
    for must in [
        "resources",
        "resource_history",
        "users",
        "api_tokens",
        "audit_log",
        "deadlines",
        "sessions",
    ] {
        let n = before.iter().find(|(t, _)| t == must).map(|(_, r)| r.len());
        assert!(n.is_some_and(|n| n > 0), "{must}: {n:?} rows");
    }
    let (ok, out) = crate::coproduce(&url, &["audit", "verify"]);
    assert!(ok, "{out}");

    // Never over a database; never what is not a backup.
    let (ok, out) = crate::coproduce(&url, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(!ok && out.contains("exists already"), "{out}");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "not a database").unwrap();
    let elsewhere = format!("sqlite://{}", dir.path().join("other.db").display());
    let (ok, out) = crate::coproduce(&elsewhere, &["restore", "--from", junk.to_str().unwrap()]);
    assert!(!ok && out.contains("not an SQLite backup"), "{out}");
    assert!(!dir.path().join("other.db").exists());

    // A backup whose audit trail was altered restores nothing.
    let tampered = dir.path().join("tampered.db");
    std::fs::copy(&backup, &tampered).unwrap();
    crate::sqlite_behind_the_store(
        &format!("sqlite://{}", tampered.display()),
        &["UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 3"],
    )
    .await;
    let (ok, out) = crate::coproduce(
        &elsewhere,
        &["restore", "--from", tampered.to_str().unwrap()],
    );
    assert!(!ok && out.contains("broken at row 3"), "{out}");
    assert!(!dir.path().join("other.db").exists(), "nothing left behind");
}

#[tokio::test]
async fn a_postgresql_database_comes_back_whole_through_pg_dump_and_pg_restore() {
    if !coproduce_testkit::backends().contains(&TestBackend::Postgres) {
        return;
    }
    let app = TestApp::spawn(TestBackend::Postgres).await;
    a_record_with_everything(&app).await;
    let tables = crate::copy::tables(&app.db.url).await;
    let before = crate::copy::rows(&app.db.url, &tables).await;
    for must in [
        "resources",
        "users",
        "api_tokens",
        "audit_log",
        "deadlines",
        "patient_records",
    ] {
        let n = before
            .iter()
            .find(|(t, _)| t == must)
            .map_or(0, |(_, r)| r.len());
        assert!(n > 0, "{must} is empty before the dump");
    }
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("coproduce.dump");
    let ran = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ran(
        "pg_dump",
        &[
            "--format=custom",
            "--file",
            dump.to_str().unwrap(),
            &app.db.url,
        ],
    );
    // Into a new, empty database.
    let admin = std::env::var(coproduce_testkit::POSTGRES_ENV).unwrap();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("coproduce_test_restore_{}_{stamp}", std::process::id());
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let restored = format!("{base}/{name}");
    ran(
        "pg_restore",
        &["--dbname", &restored, dump.to_str().unwrap()],
    );
    let after = crate::copy::rows(&restored, &tables).await;
    for ((table, a), (_, b)) in before.iter().zip(&after) {
        assert!(a == b, "{table} differs after pg_restore");
    }
    let (ok, out) = crate::coproduce(&restored, &["audit", "verify"]);
    assert!(ok, "{out}");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut c)
    .await
    .unwrap();
    app.finish().await;
}
