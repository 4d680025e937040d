//! The real `coproduce serve` as a process, for the tests that kill, stop or double it: start
//! it on a database, wait until it says it is serving, and make sure it is gone when the test
//! ends.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running server, killed when dropped (whatever the test did).
pub(crate) struct Server {
    pub(crate) child: tokio::process::Child,
    pub(crate) base: String,
    /// Its log, line by line (the server logs to standard error).
    log: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Starts `coproduce serve` on `db` at a free loopback port, with these environment
/// variables (its background jobs run every second), and returns once it says it is serving
/// (it has bound its address).
pub(crate) async fn start(db: &str, env: &[(&str, &str)]) -> Server {
    let port = crate::browser::free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coproduce"))
        .args(["--db", db, "serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("COPRODUCE_JOBS_EVERY_SECONDS", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start coproduce serve");
    let mut lines = BufReader::new(child.stdout.take().expect("its output")).lines();
    let serving = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("is serving") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(serving, Ok(true)),
        "the server on port {port} did not say it was serving"
    );
    // Keep draining its output so it never blocks on a full pipe; its log is kept to read.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (send, log) = tokio::sync::mpsc::unbounded_channel();
    let mut errors = BufReader::new(child.stderr.take().expect("its log")).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            let _ = send.send(line);
        }
    });
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

impl Server {
    /// Waits until the server logs a line containing `needle` (false after `within`).
    pub(crate) async fn logged(&mut self, needle: &str, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            while let Some(line) = self.log.recv().await {
                if line.contains(needle) {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false)
    }
}

/// A system token with every scope on `db`, issued by the command line.
pub(crate) fn system_token(db: &str) -> String {
    let (ok, out) = crate::coproduce(
        db,
        &[
            "token",
            "issue",
            "--system",
            "--scope",
            "system/*.cruds",
            "--name",
            "test",
        ],
    );
    assert!(ok, "{out}");
    out.lines().nth(1).expect("the secret").trim().to_string()
}

/// Adds an account with the tests' password through the command line.
pub(crate) fn add_user(db: &str, args: &[&str]) {
    use std::io::Write;
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_coproduce"))
        .args(["--db", db, "user", "add"])
        .args(args)
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("coproduce user add");
    add.stdin
        .take()
        .expect("its input")
        .write_all(coproduce_testkit::PASSWORD.as_bytes())
        .expect("the password");
    assert!(add.wait().expect("user add ends").success());
}

/// A browser without JavaScript signed in on `base` as `username` (the tests' password).
pub(crate) async fn signed_in(
    client: &reqwest::Client,
    base: &str,
    username: &str,
) -> coproduce_testkit::WebClient {
    let mut page = coproduce_testkit::WebClient {
        client: client.clone(),
        base: base.to_string(),
        csrf: String::new(),
    };
    page.get("/login").await;
    let resp = page
        .post(
            "/login",
            &[
                ("username", username),
                ("password", coproduce_testkit::PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303, "{username} signs in on {base}");
    page
}

/// A Task whose first team deadline (the nurse's) passed five minutes ago, with this
/// escalation chain: what the deadline watcher must fire.
pub(crate) fn late_task(
    id: &str,
    chain: &coproduce_core::deadline::Escalation,
) -> serde_json::Value {
    let mut task = serde_json::json!({
        "resourceType": "Task", "id": id, "status": "requested", "intent": "order",
        "description": "Call the patient back",
        "extension": [coproduce_app::deadlines::escalation_extension(chain)],
    });
    coproduce_app::deadlines::set_task_deadline(
        &mut task,
        &coproduce_core::deadline::Deadline {
            level: 0,
            role: coproduce_core::access::Role::Nurse,
            due: time::OffsetDateTime::now_utc() - time::Duration::minutes(5),
        },
    );
    task
}
