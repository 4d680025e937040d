//! `coproduce`: the one binary. Serves the FHIR API, and has commands for the database,
//! bulk import and export, backups and the demo.

mod config;
mod import;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use config::Config;
use coproduce_app::{FhirApi, Store};
use coproduce_core::{Clock, SystemClock};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "coproduce",
    version,
    about = "Patients, families and care teams coproducing health, on FHIR R4"
)]
struct Cli {
    /// Database URL: sqlite://PATH (default sqlite://coproduce.db) or postgres://...
    #[arg(long, global = true)]
    db: Option<String>,
    /// Configuration file (default: ./coproduce.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the FHIR API.
    Serve {
        /// Address to listen on (loopback only until access control lands).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Apply database migrations.
    Migrate,
    /// Import FHIR Bundles (.json) and NDJSON (.ndjson) files, or folders of them.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Export live resources as one NDJSON file per type (the Bulk Data layout).
    Export {
        #[arg(long)]
        out: PathBuf,
        /// Only these types (repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Only resources changed at or after this instant (e.g. 2026-01-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
    },
    /// Create ./coproduce-demo.db with a synthetic population if missing, then serve it.
    Demo {
        #[arg(long)]
        addr: Option<String>,
    },
    /// Copy an SQLite database while it is in use.
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(db) = cli.db {
        cfg.db = db;
    }
    init_logs(cfg.log_json);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve { addr } => {
            if let Some(a) = addr {
                cfg.addr = a;
            }
            let store = open(&cfg.db).await?;
            serve(store, clock, &cfg).await
        }
        Command::Migrate => {
            let store = Store::connect(&cfg.db).await?;
            store.migrate().await?;
            println!("migrations applied to {}", coproduce_store::redact(&cfg.db));
            Ok(())
        }
        Command::Import { paths } => {
            let store = open(&cfg.db).await?;
            let ok = import::run(store, clock, &paths).await?;
            if !ok {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::Export { out, types, since } => {
            let store = open(&cfg.db).await?;
            import::export(&store, &out, &types, since.as_deref()).await
        }
        Command::Demo { addr } => {
            if let Some(a) = addr {
                cfg.addr = a;
            }
            let path = PathBuf::from("coproduce-demo.db");
            let fresh = !path.exists();
            let store = open("sqlite://coproduce-demo.db").await?;
            if fresh {
                let year = clock.now().year();
                let resources = coproduce_app::demo::population(40, 2026, year);
                let n = resources.len();
                let mut importer = coproduce_app::Importer::new(store.clone(), clock.clone());
                for (i, r) in resources.into_iter().enumerate() {
                    importer
                        .add(coproduce_fhir::stream::SourceItem::new(
                            format!("demo#{i}"),
                            Ok(r),
                        ))
                        .await?;
                }
                let summary = importer.finish().await?;
                if !summary.rejected.is_empty() {
                    bail!("the demo population did not load: {:?}", summary.rejected);
                }
                println!(
                    "created {} with {n} synthetic resources (40 patients)",
                    path.display()
                );
            } else {
                println!("using the existing {}", path.display());
            }
            serve(store, clock, &cfg).await
        }
        Command::Backup { out } => {
            let store = open(&cfg.db).await?;
            store.backup(&out).await?;
            println!("backup written to {}", out.display());
            Ok(())
        }
    }
}

async fn open(url: &str) -> Result<Store> {
    Store::open(url)
        .await
        .with_context(|| format!("opening the database {}", coproduce_store::redact(url)))
}

async fn serve(store: Store, clock: Arc<dyn Clock>, cfg: &Config) -> Result<()> {
    let addr: SocketAddr = cfg
        .addr
        .parse()
        .with_context(|| format!("'{}' is not an address such as 127.0.0.1:8080", cfg.addr))?;
    if !addr.ip().is_loopback() {
        bail!(
            "refusing to listen on {addr}: until accounts and access control are in place, coproduce serves on the loopback address only (use 127.0.0.1:PORT)"
        );
    }
    let api = FhirApi::new(store.clone(), clock);
    let app = coproduce_web::router(
        api,
        coproduce_web::WebConfig {
            body_limit: cfg.body_limit,
        },
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, backend = store.backend().name(), "serving on the loopback address only (no access control yet)");
    println!(
        "coproduce is serving the FHIR API at http://{local}/fhir (try http://{local}/fhir/Patient)"
    );
    coproduce_web::serve(listener, app).await?;
    store.close().await;
    Ok(())
}
