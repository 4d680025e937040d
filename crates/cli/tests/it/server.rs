//! The real `coproduce serve` as a process, for the tests that kill, stop or double it: start
//! it on a database, wait until it answers, and make sure it is gone when the test ends.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server, killed when dropped (whatever the test did).
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `coproduce serve` on `db` at a free loopback port, with these environment
/// variables; its background jobs run every second.
pub(crate) fn start(db: &str, env: &[(&str, &str)]) -> Server {
    let port = crate::browser::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_coproduce"))
        .args(["--db", db, "serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("COPRODUCE_JOBS_EVERY_SECONDS", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start coproduce serve");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

impl Server {
    /// Waits until it answers `/healthz` (at most 30 s).
    pub(crate) async fn ready(self, client: &reqwest::Client) -> Server {
        for _ in 0..300 {
            if client
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return self;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not start at {}", self.base);
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
    let mut add = Command::new(env!("CARGO_BIN_EXE_coproduce"))
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
