//! Disk faults: the real server on an SQLite database whose disk fills up (a small tmpfs,
//! which needs root; CI runs as root). Writes then fail with 503 and a transient
//! OperationOutcome, nothing half written; when space returns the same server takes writes
//! again without a restart, and the audit chain verifies.

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
        let _ = Command::new("umount").arg(self.0.path()).status();
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

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // It starts on the nearly full disk.
    let server = start(&db, &[]).ready(&client).await;
    let base = server.base.clone();
    let put = |id: String| {
        let client = client.clone();
        let url = format!("{base}/fhir/Patient/{id}");
        let token = token.clone();
        async move {
            let body = json!({"resourceType": "Patient", "id": id,
                "name": [{"text": "x".repeat(8000)}]});
            let resp = client
                .put(url)
                .bearer_auth(token)
                .header("content-type", "application/fhir+json")
                .body(body.to_string())
                .send()
                .await
                .expect("an answer, never a hang");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Writes until the disk is full: then a 503 that says so, and the write is not there.
    let mut refused = None;
    for n in 0..400 {
        let (status, body) = put(format!("f{n}")).await;
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
    let (status, body) = put("after".into()).await;
    assert!(status == 201 || status == 200, "{status}: {body}");
    let get = |id: String| {
        let client = client.clone();
        let url = format!("{base}/fhir/Patient/{id}");
        let token = token.clone();
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        get(format!("f{refused}")).await,
        404,
        "nothing half written"
    );
    assert_eq!(get(format!("f{}", refused - 1)).await, 200);

    drop(server);
    let (ok, out) = crate::coproduce(&db, &["audit", "verify"]);
    assert!(ok, "{out}");
    println!(
        "full disk: {refused} writes in, the next refused with 503, then writes again once space returned; audit chain verified"
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
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let server = start(&db.url, &[]).ready(&client).await;
    let base = server.base.clone();
    let put = |id: String| {
        let client = client.clone();
        let url = format!("{base}/fhir/Patient/{id}");
        let token = token.clone();
        async move {
            let body = json!({"resourceType": "Patient", "id": id});
            let resp = client
                .put(url)
                .bearer_auth(token)
                .header("content-type", "application/fhir+json")
                .body(body.to_string())
                .send()
                .await
                .expect("an answer, never a hang");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
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
        match put(id.clone()).await {
            (200 | 201, _) => acknowledged.push(id),
            (503, body) => assert_eq!(body["issue"][0]["code"], "transient", "{body}"),
            (other, body) => panic!("a dropped connection answered {other}: {body}"),
        }
    }
    let (status, body) = put("after-drops".into()).await;
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
        let (status, body) = put(format!("ro{n}")).await;
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
    let (status, body) = put("writable".into()).await;
    assert!(
        status == 200 || status == 201,
        "writable again: {status} {body}"
    );
    acknowledged.push("writable".into());
    for id in &acknowledged {
        let status = client
            .get(format!("{base}/fhir/Patient/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 200, "Patient/{id} was acknowledged");
    }
    for n in 0..refused {
        let status = client
            .get(format!("{base}/fhir/Patient/ro{n}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 404, "nothing written while read-only");
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
