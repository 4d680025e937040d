//! Disk faults: the real server on an SQLite database whose disk fills up (a small tmpfs,
//! which needs root; CI runs as root). Writes then fail with 503 and a transient
//! OperationOutcome, nothing half written; when space returns the same server takes writes
//! again without a restart, and the audit chain verifies. An SQLite database on a read-only
//! mount: the server starts, and answers writes and reads (a read it cannot audit is not
//! served) 503 transient, writing nothing; on the writable mount again it has everything.

use crate::server::{start, system_token};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A tmpfs of `size` mounted on a new folder, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// `dir` bound read-only on a new folder, unbound when dropped.
struct ReadOnlyView(tempfile::TempDir);

impl ReadOnlyView {
    fn of(dir: &std::path::Path) -> Option<ReadOnlyView> {
        let view = tempfile::tempdir().ok()?;
        let run = |args: &[&str]| {
            Command::new("mount")
                .args(args)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let target = view.path().to_str()?.to_string();
        if !run(&["--bind", dir.to_str()?, &target]) {
            return None;
        }
        let view = ReadOnlyView(view);
        run(&["-o", "remount,ro,bind", &target]).then_some(view)
    }
}

impl Drop for ReadOnlyView {
    fn drop(&mut self) {
        // Lazily: a file the killed server held open must not keep the mount in place.
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// The API of a running server, as its system token.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn of(server: &crate::server::Server, token: String) -> Api {
        Api {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("a client"),
            base: server.base.clone(),
            token,
        }
    }

    /// PUTs Patient/`id` with a name of `name_len` characters: the status and the answer.
    async fn put(&self, id: &str, name_len: usize) -> (u16, Value) {
        let body = json!({"resourceType": "Patient", "id": id,
            "name": [{"text": "x".repeat(name_len.max(1))}]});
        let resp = self
            .client
            .put(format!("{}/fhir/Patient/{id}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("an answer, never a hang");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }

    async fn status_of(&self, id: &str) -> u16 {
        self.client
            .get(format!("{}/fhir/Patient/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("an answer")
            .status()
            .as_u16()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_writes_nothing_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount("6m") else {
        println!("SKIPPED the full-disk test: a small tmpfs cannot be mounted here (needs root)");
        return;
    };
    let dir = disk.0.path().to_path_buf();
    let db = format!("sqlite://{}", dir.join("coproduce.db").display());
    let token = system_token(&db);
    // Ballast fills the disk but for a little room to start in.
    let ballast = dir.join("ballast");
    {
        let mut f = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    }
    let full = std::fs::metadata(&ballast).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ballast)
        .unwrap()
        .set_len(full.saturating_sub(1024 * 1024))
        .unwrap();

    // It starts on the nearly full disk.
    let server = start(&db, &[]).await;
    let api = Api::of(&server, token);
    // Writes until the disk is full: then a 503 that says so, and the write is not there.
    let mut refused = None;
    for n in 0..400 {
        let (status, body) = api.put(&format!("f{n}"), 8000).await;
        match status {
            200 | 201 => {}
            503 => {
                assert_eq!(body["issue"][0]["code"], "transient", "{body}");
                assert!(body.to_string().contains("nothing was written"), "{body}");
                refused = Some(n);
                break;
            }
            other => panic!("a full disk answered {other}: {body}"),
        }
    }
    let refused = refused.expect("the disk filled up and a write was refused");
    assert!(refused > 0, "some writes went in before the disk was full");

    // Space returns: the same server takes writes again, and the refused one is not there.
    std::fs::remove_file(&ballast).unwrap();
    let (status, body) = api.put("after", 8000).await;
    assert!(status == 201 || status == 200, "{status}: {body}");
    assert_eq!(
        api.status_of(&format!("f{refused}")).await,
        404,
        "nothing half written"
    );
    assert_eq!(api.status_of(&format!("f{}", refused - 1)).await, 200);

    drop(server);
    let (ok, out) = crate::coproduce(&db, &["audit", "verify"]);
    assert!(ok, "{out}");
    println!(
        "full disk: {refused} writes in, the next refused with 503, then writes again once space returned; audit chain verified"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_sqlite_database_answers_503_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("coproduce.db").display());
    let token = system_token(&db);
    let server = start(&db, &[]).await;
    let api = Api::of(&server, token.clone());
    let (status, body) = api.put("before", 10).await;
    assert!(status == 201 || status == 200, "{status}: {body}");
    drop(server);
    let Some(view) = ReadOnlyView::of(dir.path()) else {
        println!(
            "SKIPPED the read-only SQLite test: a read-only bind mount cannot be made here (needs root)"
        );
        return;
    };
    let read_only = format!("sqlite://{}", view.0.path().join("coproduce.db").display());
    let server = start(&read_only, &[]).await;
    let api = Api::of(&server, token.clone());
    let (status, body) = api.put("while-read-only", 10).await;
    assert_eq!(status, 503, "a write to a read-only database: {body}");
    assert_eq!(body["issue"][0]["code"], "transient", "{body}");
    // A read must leave its audit row, which a read-only database cannot take: not served.
    assert_eq!(api.status_of("before").await, 503);
    let mut server = server;
    server.child.kill().await.expect("the server stops");
    drop(view);

    // Writable again (here: the same file on its writable mount, a new start).
    let server = start(&db, &[]).await;
    let api = Api::of(&server, token);
    assert_eq!(api.status_of("before").await, 200);
    assert_eq!(
        api.status_of("while-read-only").await,
        404,
        "nothing written"
    );
    let (status, body) = api.put("after", 10).await;
    assert!(status == 201 || status == 200, "{status}: {body}");
    drop(server);
    let (ok, out) = crate::coproduce(&db, &["audit", "verify"]);
    assert!(ok, "{out}");
    println!(
        "read-only SQLite: a write and a read answered 503 transient, nothing written; writable again after a restart; audit chain verified"
    );
}

/// Runs one statement on the database as its administrator (a separate connection).
async fn admin(url: &str, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut c)
        .await
        .expect("the statement");
    c.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_dropping_connections_or_turning_read_only_is_a_503_and_passes() {
    if std::env::var_os(coproduce_testkit::POSTGRES_ENV).is_none() {
        println!(
            "SKIPPED the PostgreSQL fault test: set {}",
            coproduce_testkit::POSTGRES_ENV
        );
        return;
    }
    let db = coproduce_testkit::TestDb::new(coproduce_testkit::TestBackend::Postgres).await;
    // The administrator works from the server's own database, outside the one under test.
    let admin_url = std::env::var(coproduce_testkit::POSTGRES_ENV).unwrap();
    let name = db
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let token = system_token(&db.url);
    let server = start(&db.url, &[]).await;
    let api = Api::of(&server, token);
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    let mut acknowledged = Vec::new();
    // Every connection the server holds is dropped (as when PostgreSQL restarts): each write
    // is answered (written, or 503), and the server reconnects by itself.
    for n in 0..20 {
        if n % 5 == 0 {
            admin(&admin_url, &terminate).await;
        }
        let id = format!("c{n}");
        match api.put(&id, 1).await {
            (200 | 201, _) => acknowledged.push(id),
            (503, body) => assert_eq!(body["issue"][0]["code"], "transient", "{body}"),
            (other, body) => panic!("a dropped connection answered {other}: {body}"),
        }
    }
    let (status, body) = api.put("after-drops", 1).await;
    assert!(
        status == 200 || status == 201,
        "reconnected: {status} {body}"
    );
    acknowledged.push("after-drops".into());

    // The database turns read-only: 503 and nothing written; writable again, writes again.
    admin(
        &admin_url,
        &format!("ALTER DATABASE \"{name}\" SET default_transaction_read_only = on"),
    )
    .await;
    admin(&admin_url, &terminate).await;
    let mut refused = 0;
    for n in 0..3 {
        let (status, body) = api.put(&format!("ro{n}"), 1).await;
        assert_eq!(status, 503, "a read-only database: {body}");
        assert_eq!(body["issue"][0]["code"], "transient");
        refused += 1;
    }
    admin(
        &admin_url,
        &format!("ALTER DATABASE \"{name}\" RESET default_transaction_read_only"),
    )
    .await;
    admin(&admin_url, &terminate).await;
    let (status, body) = api.put("writable", 1).await;
    assert!(
        status == 200 || status == 201,
        "writable again: {status} {body}"
    );
    acknowledged.push("writable".into());
    for id in &acknowledged {
        assert_eq!(
            api.status_of(id).await,
            200,
            "Patient/{id} was acknowledged"
        );
    }
    for n in 0..refused {
        assert_eq!(
            api.status_of(&format!("ro{n}")).await,
            404,
            "nothing written while read-only"
        );
    }
    drop(server);
    let (ok, out) = crate::coproduce(&db.url, &["audit", "verify"]);
    assert!(ok, "{out}");
    println!(
        "PostgreSQL faults: connections dropped 4 times under writes ({} acknowledged, none lost), read-only 503 x{refused} then writable; audit chain verified",
        acknowledged.len()
    );
    db.drop_db().await;
}
