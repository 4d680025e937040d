//! The servers under test, each a process of its own on a free loopback port: `coproduce
//! serve` on a new SQLite file or a new PostgreSQL database, and the Medplum peer (Node).

use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, stopped when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    pub addr: String,
    pub token: Option<String>,
    /// A PostgreSQL database made for this run, dropped afterwards.
    drop_database: Option<(String, String)>,
}

impl Running {
    /// The server's process (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((admin_url, name)) = self.drop_database.take() {
            let _ = futures_lite_block(drop_database(&admin_url, &name));
        }
    }
}

/// Runs a future to completion from a destructor (which cannot be async).
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `coproduce` binary built beside this one (`cargo build --release -p coproduce-cli`).
fn coproduce_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("coproduce");
    ensure!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --release -p coproduce-cli -p bench-api`",
        bin.display()
    );
    Ok(bin)
}

/// Runs `command` to its end: its standard output, or what it said went wrong.
fn run(command: &mut Command, what: &str) -> Result<String> {
    let out = command.output().with_context(|| what.to_string())?;
    ensure!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Waits until `addr` answers `GET path` with 200 (at most a minute).
async fn wait_ready(addr: &str, path: &str, child: &mut Child) -> Result<()> {
    let started = Instant::now();
    let target = crate::load::Target {
        addr: addr.to_string(),
        token: None,
        pid: None,
    };
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait()? {
            bail!("the server on {addr} ended ({status}) before it answered");
        }
        if let Ok((200, _)) = crate::load::once(&target, &crate::load::Req::get(path)).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server on {addr} did not answer {path} within a minute")
}

/// Starts `coproduce serve` on `db` with a new system token (every scope).
pub async fn coproduce(db: &str, drop_database: Option<(String, String)>) -> Result<Running> {
    let bin = coproduce_binary()?;
    run(
        Command::new(&bin).args(["--db", db, "migrate"]),
        "coproduce migrate",
    )?;
    let issued = run(
        Command::new(&bin)
            .args(["--db", db, "token", "issue", "--system"])
            .args(["--scope", "system/*.cruds", "--name", "bench-api"]),
        "coproduce token issue",
    )?;
    let token = issued
        .lines()
        .nth(1)
        .context("the token's secret")?
        .trim()
        .to_string();
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut child = Command::new(&bin)
        .args(["--db", db, "serve", "--addr", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("coproduce serve")?;
    wait_ready(&addr, "/healthz", &mut child).await?;
    Ok(Running {
        child,
        addr,
        token: Some(token),
        drop_database,
    })
}

/// A new, empty PostgreSQL database on the server of `admin_url`: its URL, and what is
/// needed to drop it afterwards.
pub async fn new_postgres_database(admin_url: &str) -> Result<(String, (String, String))> {
    use sqlx::Connection;
    let name = format!("coproduce_bench_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await?;
    }
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .context("a PostgreSQL URL ends in /database")?;
    Ok((
        format!("{base}/{name}"),
        (admin_url.to_string(), name.clone()),
    ))
}

async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// The Node binary to run the peer with: `node` when it is 22.18 or later (Medplum 5 needs
/// it), else Node 22 fetched once through npx from the npm registry (its own binary is
/// started, so that stopping it stops the peer).
fn node_binary() -> Result<String> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    let parts: Vec<u32> = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    if matches!(parts.as_slice(), [major, minor, ..] if *major > 22 || (*major == 22 && *minor >= 18))
    {
        return Ok("node".into());
    }
    let path = run(
        Command::new("npx").args(["-y", "node@22", "-p", "process.execPath"]),
        "npx node@22 (Node 22.18+ is needed for the Medplum peer)",
    )?;
    Ok(path.trim().to_string())
}

/// Starts the Medplum peer kept in `source` from a copy beside this program's binary (its
/// npm packages installed there first, once), so that the source tree stays as committed.
pub async fn medplum_peer(source: &Path) -> Result<Running> {
    let dir = std::env::current_exe()?
        .parent()
        .context("the directory of this program")?
        .join("medplum-peer");
    std::fs::create_dir_all(&dir)?;
    for file in ["server.js", "package.json", "package-lock.json"] {
        let from = source.join(file);
        let to = dir.join(file);
        if std::fs::read(&to).ok() != Some(std::fs::read(&from)?) {
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
            let _ = std::fs::remove_dir_all(dir.join("node_modules"));
        }
    }
    if !dir.join("node_modules").exists() {
        eprintln!(
            "installing the peer's npm packages (npm ci) in {}",
            dir.display()
        );
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .context("npm ci (is Node installed?)")?;
        ensure!(status.success(), "npm ci failed in {}", dir.display());
    }
    let port = free_port()?;
    let mut child = Command::new(node_binary()?)
        .arg("server.js")
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the Medplum peer with Node")?;
    let addr = format!("127.0.0.1:{port}");
    wait_ready(&addr, "/healthcheck", &mut child).await?;
    Ok(Running {
        child,
        addr,
        token: None,
        drop_database: None,
    })
}
