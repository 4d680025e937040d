//! The binary's own commands: migrate, backup, and the loopback-only rule of `serve`.

use std::process::Command;

fn coproduce(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coproduce"))
        .args(args)
        .output()
        .expect("run coproduce");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn backup_copies_a_live_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("live.db").display());
    let data = dir.path().join("p.ndjson");
    std::fs::write(&data, "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n{\"resourceType\":\"Patient\",\"id\":\"p2\"}\n").unwrap();
    let (ok, out) = coproduce(&["--db", &db, "import", data.to_str().unwrap()]);
    assert!(ok, "{out}");
    let copy = dir.path().join("copy.db");
    let (ok, out) = coproduce(&["--db", &db, "backup", "--out", copy.to_str().unwrap()]);
    assert!(ok, "{out}");
    // The copy is a working database with the same data.
    let exported = dir.path().join("out");
    let copy_url = format!("sqlite://{}", copy.display());
    let (ok, out) = coproduce(&[
        "--db",
        &copy_url,
        "export",
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(exported.join("Patient.ndjson"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    // It never overwrites.
    let (ok, out) = coproduce(&["--db", &db, "backup", "--out", copy.to_str().unwrap()]);
    assert!(!ok && out.contains("exists already"), "{out}");
}

#[test]
fn serve_refuses_addresses_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let (ok, out) = coproduce(&["--db", &db, "serve", "--addr", "0.0.0.0:18181"]);
    assert!(!ok);
    assert!(out.contains("loopback address only"), "{out}");
    assert!(
        out.contains("behind_proxy"),
        "{out}: says how to serve behind a proxy"
    );
}

/// Behind a TLS proxy on another machine (`behind_proxy`), it listens beyond loopback.
#[tokio::test]
async fn serve_listens_beyond_loopback_when_told_a_tls_proxy_is_in_front() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let port = crate::browser::free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coproduce"))
        .args(["--db", &db, "serve", "--addr", &format!("0.0.0.0:{port}")])
        .env("COPRODUCE_BEHIND_PROXY", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let serving = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("is serving") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(serving, Ok(true)), "it did not start");
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    child.kill().await.unwrap();
}

#[test]
fn migrate_is_idempotent_and_bad_urls_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    for _ in 0..2 {
        let (ok, out) = coproduce(&["--db", &db, "migrate"]);
        assert!(ok, "{out}");
    }
    let (ok, out) = coproduce(&["--db", "mysql://localhost/x", "migrate"]);
    assert!(
        !ok && out.contains("use sqlite://PATH or postgres://"),
        "{out}"
    );
    let (ok, out) = coproduce(&["--db", "postgres://app:s3cret@127.0.0.1:1/none", "migrate"]);
    assert!(!ok);
    assert!(
        !out.contains("s3cret"),
        "a password reached the output: {out}"
    );
}

/// Runs `audit verify` on a database whose audit trail has five rows, after `tamper`.
async fn verify_after(tamper: &str) -> (bool, String) {
    verify_with_key(&[tamper], None).await
}

/// `coproduce` with the site's secret key set (or surely unset).
fn coproduce_keyed(key: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coproduce"));
    c.env_remove("COPRODUCE_SECRET_KEY");
    if let Some(k) = key {
        c.env("COPRODUCE_SECRET_KEY", k);
    }
    let out = c.args(args).output().expect("run coproduce");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// [`verify_after`] with several statements of tampering, and the site's key given to every
/// run when `key` is.
async fn verify_with_key(tamper: &[&str], key: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let db = format!("sqlite://{}", path.display());
    for i in 0..5 {
        let data = dir.path().join(format!("p{i}.ndjson"));
        std::fs::write(
            &data,
            format!("{{\"resourceType\":\"Patient\",\"id\":\"p{i}\"}}\n"),
        )
        .unwrap();
        let (ok, out) = coproduce_keyed(key, &["--db", &db, "import", data.to_str().unwrap()]);
        assert!(ok, "{out}");
    }
    let (ok, out) = coproduce_keyed(key, &["--db", &db, "audit", "verify"]);
    assert!(ok && out.contains("intact: 5 rows"), "{out}");
    let statements: Vec<&str> = tamper.iter().copied().filter(|t| !t.is_empty()).collect();
    crate::sqlite_behind_the_store(&db, &statements).await;
    coproduce_keyed(key, &["--db", &db, "audit", "verify"])
}

#[tokio::test]
async fn with_the_sites_key_cutting_the_newest_rows_and_rewriting_the_head_shows() {
    let cut = [
        "DELETE FROM audit_log WHERE seq = 5",
        "UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit_log WHERE seq = 4)",
    ];
    let (_, key) = coproduce(&["secret-key"]);
    let (ok, out) = verify_with_key(&cut, Some(key.trim())).await;
    assert!(
        !ok && out.contains("does not carry the site's seal"),
        "{out}"
    );
    // Without a key outside the database, a consistent rewrite cannot be told apart: the
    // reason to set one.
    let (ok, out) = verify_with_key(&cut, None).await;
    assert!(ok && out.contains("intact: 4 rows"), "{out}");
    // Untouched, with the key: intact.
    let (ok, out) = verify_with_key(&[""], Some(key.trim())).await;
    assert!(ok && out.contains("intact: 5 rows"), "{out}");
}

#[tokio::test]
async fn audit_verify_names_the_first_row_changed_or_removed() {
    let (ok, out) =
        verify_after("UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 2").await;
    assert!(
        !ok && out.contains("broken at row 2: its content was changed"),
        "{out}"
    );
    let (ok, out) = verify_after("DELETE FROM audit_log WHERE seq = 3").await;
    assert!(
        !ok && out.contains("broken at row 4: row 3 is missing"),
        "{out}"
    );
    let (ok, out) = verify_after("DELETE FROM audit_log WHERE seq = 5").await;
    assert!(
        !ok && out.contains("broken at row 5: rows 5 to 5 are missing from the end"),
        "{out}"
    );
}

#[tokio::test]
async fn a_second_factor_is_stored_sealed_with_the_sites_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let with_key = |key: Option<&str>, args: &[&str]| {
        let mut all = vec!["--db", db.as_str()];
        all.extend_from_slice(args);
        coproduce_keyed(key, &all)
    };
    let (ok, out) = with_key(
        None,
        &["user", "add", "--username", "sam", "--role", "admin"],
    );
    assert!(ok, "{out}");
    let (ok, out) = with_key(None, &["user", "totp-enable", "sam"]);
    assert!(
        !ok && out.contains("secret key"),
        "no key, no second factor: {out}"
    );
    let (ok, key) = coproduce(&["secret-key"]);
    assert!(ok, "{key}");
    let key = key.trim().to_string();
    let (ok, out) = with_key(Some(&key), &["user", "totp-enable", "sam"]);
    assert!(ok, "{out}");
    let secret = out
        .split("secret=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .expect("the otpauth URL")
        .to_string();
    let store = coproduce_store::Store::open(&db).await.unwrap();
    let stored = store.totp_secret("sam").await.unwrap().unwrap();
    store.close().await;
    assert!(stored.starts_with("xc1:"), "{stored}");
    assert!(!stored.contains(&secret), "the seed is not in clear");
    let (ok, out) = with_key(Some("not base64!"), &["user", "list"]);
    assert!(!ok && out.contains("secret_key"), "{out}");
}
