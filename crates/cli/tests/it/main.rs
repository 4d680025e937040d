//! Integration tests: the real router over HTTP, and bulk import of the reference data. One
//! test binary for all of them keeps build times down.

mod access;
mod backup;
mod browser;
mod browser_partnership;
mod browser_prescribing;
mod browser_social;
mod browser_speakup;
mod care;
mod cli;
mod copy;
mod corpus;
mod crash;
mod demo;
mod faults;
mod http;
mod import;
mod limits;
mod measure;
mod partner;
mod partnership;
mod pg_stop;
mod prescribing;
mod prescribing_family;
mod prescribing_measures;
mod rescue;
mod security;
mod server;
mod sessions;
mod social;
mod social_pages;
mod speakup;
mod speakup_pages;
mod two_servers;

/// The reference data the repository carries for its tests (see testdata/README.md).
pub fn testdata() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .expect("the repository root")
        .join("testdata")
}

/// Imports generated resources into a test server's store on its clock, as `coproduce
/// generate` does, and checks that none was refused.
pub async fn import_all(
    app: &coproduce_testkit::TestApp,
    resources: impl IntoIterator<Item = serde_json::Value>,
) {
    let clock: std::sync::Arc<dyn coproduce_core::Clock> = app.clock.clone();
    let mut importer = coproduce_app::Importer::new(app.db.store.clone(), clock, "test:generate");
    for r in resources {
        importer
            .add(coproduce_fhir::stream::SourceItem::new("generated", Ok(r)))
            .await
            .unwrap();
    }
    let summary = importer.finish().await.unwrap();
    assert!(
        summary.rejected.is_empty(),
        "{:?}",
        summary.rejected.first()
    );
}

/// Runs statements straight on an SQLite file, past the store and its checks (a test's
/// tampering or corruption), on a connection of their own that is closed after.
pub async fn sqlite_behind_the_store(url: &str, statements: &[&str]) {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(url)
        .await
        .expect("open the file");
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(&mut c)
            .await
            .expect("run the statement");
    }
    c.close().await.expect("close");
}

/// Runs the `coproduce` binary on a database; whether it succeeded, and its output (stdout
/// then stderr).
pub fn coproduce(db: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coproduce"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run coproduce");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Exports these types of a database as NDJSON into `out`, checks that every exported
/// resource is valid FHIR R4, imports the folder back into the same database and returns the
/// import's total line: created, updated, unchanged, rejected.
pub fn export_valid_and_reimport(db: &str, out: &std::path::Path, types: &[&str]) -> Vec<u64> {
    let mut args = vec!["export", "--out", out.to_str().expect("a path")];
    for t in types {
        args.extend(["--type", t]);
    }
    let (ok, report) = coproduce(db, &args);
    assert!(ok, "{report}");
    for t in types {
        let text = std::fs::read_to_string(out.join(format!("{t}.ndjson")))
            .unwrap_or_else(|e| panic!("{t}.ndjson: {e}"));
        assert!(text.lines().count() >= 1, "{t} exported");
        for line in text.lines() {
            let r: serde_json::Value = serde_json::from_str(line).expect("JSON");
            coproduce_fhir::validate::validate_resource(&r)
                .unwrap_or_else(|e| panic!("{t} is not valid FHIR R4: {e}\n{line}"));
        }
    }
    let (ok, again) = coproduce(db, &["import", out.to_str().expect("a path")]);
    assert!(ok, "{again}");
    let total = again
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("a total line");
    total
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().expect("a count"))
        .collect()
}
