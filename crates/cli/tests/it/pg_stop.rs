//! The whole PostgreSQL server stopped under load: a cluster of the test's own (initdb as
//! the `postgres` account, which needs root; CI runs as root) stopped with `pg_ctl stop -m
//! immediate` (as a crash or a power cut of the database server does) while writers keep
//! writing. Every request then gets an answer, a 503 with a transient OperationOutcome,
//! once the server has waited its 5 s for a connection (never a hang: the writers give up
//! after 20 s and none has to); the server recovers by itself when the database returns,
//! and nothing it acknowledged is lost.

use crate::server::{start, system_token};
use serde_json::json;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A PostgreSQL cluster in a temporary folder, on a port of its own; stopped when dropped.
struct Cluster {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// None when this machine cannot make one (no PostgreSQL binaries, or not root).
    fn create() -> Option<Cluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let data = dir.path().join("data");
        // A port below the ephemeral range (32768 and up on Linux): while the cluster is
        // down, the system must not hand its port to another test's socket.
        let seed = std::process::id() as u16;
        let port = (0..200)
            .map(|k| 20_000 + (seed.wrapping_add(k * 37) % 10_000))
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())?;
        let cluster = Cluster {
            bin,
            data,
            port,
            _dir: dir,
        };
        let initdb = cluster.bin.join("initdb");
        let made = cluster.as_postgres(
            initdb.to_str()?,
            &[
                "-D",
                cluster.data.to_str()?,
                "-U",
                "postgres",
                "-A",
                "trust",
            ],
        );
        (made && cluster.start()).then_some(cluster)
    }

    fn as_postgres(&self, program: &str, args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--", program])
            .args(args)
            .current_dir(self._dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn pg_ctl(&self, args: &[&str]) -> bool {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data.to_str().expect("a UTF-8 path");
        let mut all = vec!["-D", data];
        all.extend_from_slice(args);
        self.as_postgres(pg_ctl.to_str().expect("a UTF-8 path"), &all)
    }

    /// The end of its log, to say why it did not start.
    fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self._dir.path().join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Starts it and waits until it takes connections.
    fn start(&self) -> bool {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self._dir.path().display()
        );
        let log = self._dir.path().join("postgres.log");
        self.pg_ctl(&[
            "-w",
            "-t",
            "60",
            "-o",
            &options,
            "-l",
            log.to_str().expect("a UTF-8 path"),
            "start",
        ])
    }

    /// Stops it at once: no checkpoint, every connection cut (a crash of the database server).
    fn stop_immediately(&self) -> bool {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"])
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_immediately();
    }
}

/// What the writers saw.
#[derive(Default)]
struct Seen {
    acknowledged: Vec<String>,
    /// Answers other than success: (status, OperationOutcome code, seconds it took).
    refused: Vec<(u16, String, f64)>,
    /// Requests that got no answer at all within the client's time-out.
    unanswered: usize,
    answers: tokio::sync::watch::Sender<(usize, usize)>,
}

/// Writes Patients until told to stop, whatever the answers.
async fn writer(
    base: String,
    token: String,
    name: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a client");
    for k in 0.. {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let id = format!("{name}-{k}");
        let body = json!({"resourceType": "Patient", "id": id, "name": [{"text": id}]});
        let began = Instant::now();
        let sent = client
            .put(format!("{base}/fhir/Patient/{id}"))
            .bearer_auth(&token)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await;
        let mut s = seen.lock().unwrap();
        match sent {
            Ok(resp) if resp.status().is_success() => {
                s.acknowledged.push(id);
                s.answers.send_modify(|(ok, _)| *ok += 1);
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                drop(s);
                let outcome: serde_json::Value = resp.json().await.unwrap_or_default();
                let code = outcome["issue"][0]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let mut s = seen.lock().unwrap();
                s.refused
                    .push((status, code, began.elapsed().as_secs_f64()));
                s.answers.send_modify(|(_, refused)| *refused += 1);
            }
            Err(_) => {
                s.unanswered += 1;
                s.answers.send_modify(|(_, refused)| *refused += 1);
            }
        }
    }
}

/// Waits until the writers have seen `ok` more successes and `refused` more refusals (at
/// most `within`); whether they did.
async fn answers(seen: &Arc<Mutex<Seen>>, ok: usize, refused: usize, within: Duration) -> bool {
    let mut rx = seen.lock().unwrap().answers.subscribe();
    let (o, r) = *rx.borrow();
    tokio::time::timeout(
        within,
        rx.wait_for(|(a, b)| *a >= o + ok && *b >= r + refused),
    )
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_stopped_under_load_answers_503_and_the_server_recovers_by_itself() {
    let Some(cluster) = Cluster::create() else {
        println!(
            "SKIPPED stopping PostgreSQL under load: no cluster of the test's own can be made here (needs PostgreSQL's binaries and root)"
        );
        return;
    };
    let url = cluster.url();
    let token = system_token(&url);
    let server = start(&url, &[]).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(writer(
                server.base.clone(),
                token.clone(),
                format!("w{w}"),
                seen.clone(),
                stop.clone(),
            ))
        })
        .collect();
    assert!(
        answers(&seen, 100, 0, Duration::from_secs(60)).await,
        "writes go in"
    );

    // The database server stops at once under the writers.
    assert!(cluster.stop_immediately(), "pg_ctl stop -m immediate");
    let stopped = Instant::now();
    assert!(
        answers(&seen, 0, 12, Duration::from_secs(120)).await,
        "the writers are answered while the database is down"
    );
    let down_for = stopped.elapsed();

    // It comes back: the same server takes writes again by itself.
    assert!(
        cluster.start(),
        "PostgreSQL starts again:\n{}",
        cluster.log_tail()
    );
    let restarted = Instant::now();
    assert!(
        answers(&seen, 50, 0, Duration::from_secs(120)).await,
        "writes go in again after the database returned, without restarting the server"
    );
    let recovered_in = restarted.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("a writer");
    }
    let s = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(
        s.unanswered, 0,
        "a request got no answer within 20 s (the server gives up on the database after 5)"
    );
    let slowest = s.refused.iter().map(|r| r.2).fold(0.0, f64::max);
    for (status, code, _) in &s.refused {
        assert_eq!(
            (*status, code.as_str()),
            (503, "transient"),
            "a request while the database was down"
        );
    }

    // Nothing acknowledged is lost.
    let client = reqwest::Client::new();
    for id in &s.acknowledged {
        let status = client
            .get(format!("{}/fhir/Patient/{id}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("a read")
            .status();
        assert_eq!(status, 200, "Patient/{id} was acknowledged");
    }
    drop(server);
    let (ok, out) = crate::coproduce(&url, &["audit", "verify"]);
    assert!(ok, "{out}");
    println!(
        "PostgreSQL stopped under load: {} writes acknowledged, none lost; {} refused with 503 transient while it was down ({:.1} s, the slowest answer {slowest:.1} s), none unanswered; writes again {:.1} s after it started; audit chain verified",
        s.acknowledged.len(),
        s.refused.len(),
        down_for.as_secs_f64(),
        recovered_in.as_secs_f64()
    );
}
