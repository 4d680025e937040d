//! Disk faults: the real server on an SQLite database whose disk fills up (a small tmpfs,
//! which needs root; CI runs as root). Writes then fail with 503 and a transient
//! OperationOutcome, nothing half written; when space returns the same server takes writes
//! again without a restart, and the audit chain verifies.

use crate::browser::free_port;
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

/// The server process, killed if the test stops early (so the disk can be unmounted).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    let (ok, out) = crate::coproduce(
        &db,
        &[
            "token",
            "issue",
            "--system",
            "--scope",
            "system/*.cruds",
            "--name",
            "disk",
        ],
    );
    assert!(ok, "{out}");
    let token = out.lines().nth(1).unwrap().trim().to_string();
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

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Command::new(env!("CARGO_BIN_EXE_coproduce"))
        .args(["--db", &db, "serve", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Running(server);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..300 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server started on the nearly full disk");
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
