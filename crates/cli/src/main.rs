//! `coproduce`: the one binary. Serves the FHIR API, and has commands for the database,
//! bulk import and export, backups and the demo.

mod concerns;
mod config;
mod copy;
mod evaluate;
mod formulary;
mod generate;
mod import;
mod measure;
mod partnership;
mod people;
mod prescribing;
mod social;
mod utilisation;
mod value;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use config::Config;
use coproduce_app::accounts::Accounts;
use coproduce_app::{FhirApi, Store};
use coproduce_core::{Clock, SystemClock};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// mimalloc: population runs allocate and free millions of small values across threads,
/// which glibc's allocator serves with lock contention and page faults.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Print a new random secret key for `secret_key` (COPRODUCE_SECRET_KEY).
    SecretKey,
    /// Copy an SQLite database while it is in use.
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore an SQLite backup as the configured database (a new file: nothing is
    /// overwritten); its audit trail is verified, and a backup that does not verify is not
    /// restored. For PostgreSQL use pg_restore.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
    /// Copy the whole database into a new, empty one (SQLite to PostgreSQL when a site
    /// outgrows one machine): every table counted on both sides, the audit trail verified.
    /// Stop the server first; sign-in sessions are not carried.
    Copy {
        /// The database to copy (default: the configured one, --db).
        #[arg(long)]
        from: Option<String>,
        /// The new database, for example postgres://coproduce@db/coproduce.
        #[arg(long)]
        to: String,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: people::UserCommand,
    },
    /// Manage API tokens (SMART scopes).
    Token {
        #[command(subcommand)]
        command: people::TokenCommand,
    },
    /// Evaluate a program's effect (enrolled against matched patients, difference-in-differences).
    Evaluate(evaluate::EvaluateArgs),
    /// Emergency visits, admissions and readmissions per 1,000 patient-years.
    Utilisation(utilisation::UtilisationArgs),
    /// Cost per member per month from a fee schedule, and a program's value both ways.
    Value(value::ValueArgs),
    /// Generate a synthetic population (NDJSON with --out, else into the store).
    Generate(generate::GenerateArgs),
    /// Evaluate a population measure (cms122, cms165) over every patient in the store.
    Measure(measure::MeasureArgs),
    /// Whether the Speak Up loop works: acknowledged and answered on time, felt heard.
    Concerns(concerns::ConcernsArgs),
    /// Whether social needs are seen and the loop closes: screening, positive rates,
    /// referrals and their closure beside the published 27%.
    SocialNeeds(social::SocialArgs),
    /// Whether prescribing sees the whole person: checks complete, barriers by kind and
    /// resolved on time, "I can't" and its outcomes, cost-related non-adherence, first fills.
    Prescribing(prescribing::PrescribingArgs),
    /// Both sides of the partnership: the team's promises kept on time (any Task with a
    /// deadline, reading reviews, goal answers, its activities) beside the patient's side
    /// (their activities, goals agreed by both); printed, and written as a CSV.
    Partnership(partnership::PartnershipArgs),
    /// Load the community resource directory (organisations and their services) from a CSV
    /// or a FHIR Bundle (.json): every line is checked first; a bad one is named and nothing
    /// is loaded.
    Directory { file: PathBuf },
    /// The formulary and what each drug costs the patient by coverage kind: model it from
    /// NADAC acquisition costs, load it, show it.
    Formulary {
        #[command(subcommand)]
        command: formulary::FormularyCommand,
    },
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        command: people::AuditCommand,
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
            let store = open(&cfg).await?;
            serve(store, clock, &cfg).await
        }
        Command::Migrate => {
            let store = Store::connect(&cfg.db).await?;
            store.migrate().await?;
            println!("migrations applied to {}", coproduce_store::redact(&cfg.db));
            Ok(())
        }
        Command::Import { paths } => {
            let store = open(&cfg).await?;
            let ok = import::run(store, clock, &paths).await?;
            if !ok {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::Evaluate(args) => {
            let store = open(&cfg).await?;
            evaluate::evaluate(&store, &clock, args).await
        }
        Command::Utilisation(args) => {
            let store = open(&cfg).await?;
            utilisation::utilisation(&store, &clock, args).await
        }
        Command::Value(args) => {
            let store = open(&cfg).await?;
            value::value(&store, &clock, args).await
        }
        Command::Generate(args) => {
            let store = match args.out {
                Some(_) => None,
                None => Some(open(&cfg).await?),
            };
            generate::generate(store, &clock, args).await
        }
        Command::Concerns(args) => {
            let (settings, _, _) = server_config(&cfg)?;
            let report = match args.generated {
                Some(_) if args.feedback => {
                    bail!("--generated makes concerns; --feedback measures the store's feedback")
                }
                Some(n) => {
                    let started = std::time::Instant::now();
                    let rules = &settings.speakup;
                    let now = clock.now();
                    let records =
                        coproduce_app::speakup::synthetic::population(args.seed, n, now, rules);
                    let names = coproduce_app::speakup::synthetic::unit_names();
                    let r = coproduce_app::speakup::report_of(
                        &records,
                        &names,
                        rules,
                        &settings.calendar,
                        now,
                    );
                    println!(
                        "{n} generated concerns (seed {}), measured in {:.2} s",
                        args.seed,
                        started.elapsed().as_secs_f64()
                    );
                    r
                }
                None => {
                    let store = open(&cfg).await?;
                    let api = FhirApi::new(store, clock.clone());
                    let workflows = coproduce_app::workflows::Workflows::new(api, &settings);
                    workflows
                        .speakup
                        .measures(
                            &coproduce_app::accounts::Caller::system("cli:concerns"),
                            if args.feedback {
                                coproduce_core::speakup::Kind::Feedback
                            } else {
                                coproduce_core::speakup::Kind::Concern
                            },
                        )
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                }
            };
            concerns::print(&report, args.by.as_deref())
        }
        Command::SocialNeeds(args) => {
            let report = match args.generated {
                Some(n) => {
                    let started = std::time::Instant::now();
                    let (people, referrals) =
                        coproduce_app::social::synthetic::population(args.seed, n, clock.now());
                    let r =
                        coproduce_core::social::measures::report(&people, &referrals, clock.now());
                    println!(
                        "{n} generated patients and {} referrals (seed {}), measured in {:.2} s",
                        referrals.len(),
                        args.seed,
                        started.elapsed().as_secs_f64()
                    );
                    r
                }
                None => {
                    let store = open(&cfg).await?;
                    let (settings, _, _) = server_config(&cfg)?;
                    let workflows = coproduce_app::workflows::Workflows::new(
                        FhirApi::new(store, clock.clone()),
                        &settings,
                    );
                    workflows
                        .social
                        .measures(&coproduce_app::accounts::Caller::system("cli:social-needs"))
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                }
            };
            social::print(&report, args.by.as_deref())
        }
        Command::Prescribing(args) => {
            let now = clock.now();
            let report = match args.generated {
                Some(n) => {
                    let started = std::time::Instant::now();
                    let (people, prescriptions, barriers) =
                        coproduce_app::prescribing::synthetic::population(args.seed, n, now);
                    let r = coproduce_core::prescribing::measures::report(
                        &people,
                        &prescriptions,
                        &barriers,
                        now,
                    );
                    println!(
                        "{n} generated patients, {} prescriptions and {} barriers (seed {}), measured in {:.2} s",
                        prescriptions.len(),
                        barriers.len(),
                        args.seed,
                        started.elapsed().as_secs_f64()
                    );
                    r
                }
                None => {
                    let store = open(&cfg).await?;
                    let (settings, _, _) = server_config(&cfg)?;
                    coproduce_app::workflows::Workflows::new(
                        FhirApi::new(store, clock.clone()),
                        &settings,
                    )
                    .prescribing
                    .measures(&coproduce_app::accounts::Caller::system("cli:prescribing"))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                }
            };
            prescribing::print(&report, args.by.as_deref())
        }
        Command::Partnership(args) => {
            let (settings, _, _) = server_config(&cfg)?;
            if args.generated.is_some() {
                return partnership::run(None, &settings, args).await;
            }
            let store = open(&cfg).await?;
            let workflows = coproduce_app::workflows::Workflows::new(
                FhirApi::new(store, clock.clone()),
                &settings,
            );
            partnership::run(Some(&workflows.care), &settings, args).await
        }
        Command::Directory { file } => {
            let bytes =
                std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            use coproduce_app::social::directory;
            let json = file.extension().is_some_and(|x| x == "json");
            let records = if json {
                directory::parse_fhir(&bytes)
            } else {
                directory::parse_csv(&bytes).map(|rows| directory::resources(&rows))
            }
            .map_err(|e| anyhow::anyhow!("{}, {e}; nothing was loaded", file.display()))?;
            let store = open(&cfg).await?;
            let (settings, _, _) = server_config(&cfg)?;
            let workflows = coproduce_app::workflows::Workflows::new(
                FhirApi::new(store, clock.clone()),
                &settings,
            );
            let n = workflows
                .social
                .load_directory(
                    &coproduce_app::accounts::Caller::system("cli:directory"),
                    records,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}; nothing was loaded"))?;
            println!("{n} directory records loaded from {}", file.display());
            Ok(())
        }
        Command::Formulary { command } => {
            use formulary::FormularyCommand;
            let caller = coproduce_app::accounts::Caller::system("cli:formulary");
            let (settings, _, _) = server_config(&cfg)?;
            let prescribing = |store| {
                coproduce_app::workflows::Workflows::new(
                    FhirApi::new(store, clock.clone()),
                    &settings,
                )
                .prescribing
            };
            match command {
                FormularyCommand::Model {
                    nadac,
                    products,
                    rules,
                    out,
                } => {
                    let csv =
                        formulary::model_csv(nadac.as_ref(), products.as_ref(), rules.as_ref())?;
                    std::fs::write(&out, &csv)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
                    println!(
                        "wrote a modelled formulary of {} drugs to {}: review it, then `coproduce formulary load {}`",
                        csv.iter()
                            .filter(|b| **b == b'\n')
                            .count()
                            .saturating_sub(1),
                        out.display(),
                        out.display()
                    );
                }
                FormularyCommand::Load { file } => {
                    let f = formulary::parse_file(&file)?;
                    let loaded = prescribing(open(&cfg).await?)
                        .load_formulary(&caller, &f)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}; nothing was loaded"))?;
                    println!(
                        "{} drugs loaded from {}; {} no longer listed marked inactive",
                        loaded.drugs,
                        file.display(),
                        loaded.retired
                    );
                }
                FormularyCommand::Show { coverage } => {
                    let f = prescribing(open(&cfg).await?)
                        .formulary(&caller)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    formulary::print(&f, coverage.as_deref())?;
                }
            }
            Ok(())
        }
        Command::Measure(args) => {
            let store = open(&cfg).await?;
            measure::measure(&store, &clock, args).await
        }
        Command::Export { out, types, since } => {
            let store = open(&cfg).await?;
            import::export(&store, &clock, &out, &types, since.as_deref()).await
        }
        Command::Demo { addr } => {
            if let Some(a) = addr {
                cfg.addr = a;
            }
            // The demo is plain HTTP on localhost: Secure cookies would never come back.
            cfg.insecure_cookies = true;
            // The demo clinic's number (a fictional 555 number) unless the site set its own.
            if cfg.clinic_phone.is_none() {
                cfg.clinic_phone = Some("+1 555 0100".into());
            }
            let path = PathBuf::from("coproduce-demo.db");
            let fresh = !path.exists();
            let store = open_url("sqlite://coproduce-demo.db", &cfg).await?;
            if fresh {
                demo_population(&store, &clock).await?;
                println!("created {}", path.display());
            } else {
                println!("using the existing {}", path.display());
            }
            print_demo_tokens(&store, &clock).await?;
            serve(store, clock, &cfg).await
        }
        Command::SecretKey => {
            println!(
                "{}",
                coproduce_app::secrets::SecretKey::random()?.to_base64()
            );
            Ok(())
        }
        Command::Backup { out } => {
            let store = open(&cfg).await?;
            store.backup(&out).await?;
            println!("backup written to {}", out.display());
            Ok(())
        }
        Command::Restore { from } => {
            let key = secret_key(&cfg)?.map(|k| k.derive("coproduce audit head"));
            let (store, rows) = Store::restore(&from, &cfg.db, key).await?;
            store.close().await;
            println!(
                "restored {} into {}; the audit trail is intact: {rows} rows",
                from.display(),
                coproduce_store::redact(&cfg.db)
            );
            Ok(())
        }
        Command::Copy { from, to } => {
            let from = from.unwrap_or_else(|| cfg.db.clone());
            copy::run(&from, &to, &cfg, &clock).await
        }
        Command::User { command } => {
            let store = open(&cfg).await?;
            let accounts = Accounts::new(store, clock).with_secret_key(secret_key(&cfg)?);
            people::user(&accounts, command).await
        }
        Command::Token { command } => {
            let store = open(&cfg).await?;
            people::token(&Accounts::new(store, clock), command).await
        }
        Command::Audit { command } => {
            let store = open(&cfg).await?;
            if !people::audit(&store, command).await? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// Loads the synthetic panel, its care team and family, and an account for each role.
async fn demo_population(store: &Store, clock: &Arc<dyn Clock>) -> Result<()> {
    let loaded = coproduce_app::demo::load(store, clock.clone())
        .await
        .map_err(|e| anyhow::anyhow!("the demo population did not load: {e}"))?;
    println!(
        "loaded {} synthetic resources: 40 patients, a care team for 20 of them, a family member with a grant",
        loaded.resources
    );
    println!(
        "made the shared care plans of {} patients with diabetes: {} readings, goals in every state, activities on both sides",
        loaded.care_plans, loaded.readings
    );
    println!(
        "made {} rescue packs for patients with COPD, in every state (one team contact overdue)",
        loaded.packs
    );
    println!(
        "made Ana's social-needs screening ({} needs found, help asked with food) and a community directory of 12 organisations",
        loaded.social_needs
    );
    println!(
        "made a formulary of {} drugs with prices for each kind of coverage, modelled from CMS NADAC acquisition costs (coproduce formulary show)",
        loaded.formulary
    );
    Ok(())
}

/// Issues a fresh token for each demo account (valid 12 hours) and prints them.
async fn print_demo_tokens(store: &Store, clock: &Arc<dyn Clock>) -> Result<()> {
    let accts = Accounts::new(store.clone(), clock.clone());
    println!(
        "demo accounts: sign in at /login with the password, or call the API with the token (Authorization: Bearer <token>); both are new at every start"
    );
    for u in accts.users().await? {
        let password = coproduce_app::accounts::random_password()?;
        accts.reset_password(&u.username, &password).await?;
        let (scope, patient) = if u.roles == "patient" {
            ("patient/*.cruds", u.fhir_ref.clone())
        } else if u.roles == "partner" {
            // The organisation's system: its referrals, read, searched and moved along.
            ("system/Task.rus", None)
        } else {
            ("user/*.cruds", None)
        };
        let (_, secret) = accts
            .issue_token(coproduce_app::accounts::NewToken {
                username: Some(u.username.clone()),
                name: format!("demo:{}", u.username),
                scopes: scope.into(),
                patient,
                expires_in: Some(time::Duration::hours(12)),
            })
            .await?;
        println!(
            "  {:<12} {:<24} password {password}  token {secret}",
            u.username, u.roles
        );
    }
    Ok(())
}

/// Opens the configured database, its audit trail sealed with the site's key when one is set.
async fn open(cfg: &Config) -> Result<Store> {
    open_url(&cfg.db, cfg).await
}

async fn open_url(url: &str, cfg: &Config) -> Result<Store> {
    let lines: Vec<std::sync::Arc<dyn coproduce_store::RecordLine>> =
        vec![std::sync::Arc::new(coproduce_app::care::PromiseLine)];
    let store = Store::open_with_lines(url, lines)
        .await
        .with_context(|| format!("opening the database {}", coproduce_store::redact(url)))?;
    Ok(match secret_key(cfg)? {
        Some(key) => store.with_audit_key(key.derive("coproduce audit head")),
        None => store,
    })
}

/// The workflows' settings, the web layer's and the delivery of notifications from the
/// configuration, each checked with a message that says which setting is wrong.
fn server_config(
    cfg: &Config,
) -> Result<(
    coproduce_app::workflows::Settings,
    coproduce_web::WebConfig,
    coproduce_app::jobs::Delivery,
)> {
    use coproduce_app::jobs::{Delivery, Secret, Smtp, Webhook};
    let calendar = coproduce_core::calendar::BusinessCalendar::new(
        &cfg.business_time_zone,
        &cfg.business_open,
        &cfg.business_close,
        &cfg.business_days,
        &cfg.holidays,
    )
    .context("the business calendar (business_time_zone, business_open, business_close, business_days, holidays)")?;
    let protocol = match &cfg.protocol_file {
        None => coproduce_app::rescue::protocol::ProtocolDef::copd(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the protocol file {path}"))?;
            coproduce_app::rescue::protocol::ProtocolDef::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("the protocol file {path}: {e}"))?
        }
    };
    let mut measures = Vec::new();
    for (name, path) in &cfg.measure_bundles {
        let bundle = measure::load_bundle(std::path::Path::new(path))
            .with_context(|| format!("measure_bundles.{name}"))?;
        let name = name.to_ascii_lowercase();
        if coproduce_app::measures::Measure::title_of(&name).is_none() {
            bail!("measure_bundles.{name}: this build has the measures cms122 and cms165");
        }
        measures.push((name, Arc::new(bundle)));
    }
    // The measures not given a file use the official bundles this build carries.
    for name in coproduce_measures::official::NAMES {
        if !measures.iter().any(|(n, _)| n == name) {
            measures.push((name.to_string(), Arc::new(measure::carried_bundle(name)?)));
        }
    }
    let smtp = cfg.smtp_host.as_ref().map(|host| Smtp {
        host: host.clone(),
        port: cfg.smtp_port,
        from: cfg.smtp_from.clone(),
        username: cfg.smtp_username.clone(),
        password: Secret(cfg.smtp_password.clone().map(|p| p.0).unwrap_or_default()),
        starttls: cfg.smtp_starttls,
    });
    let webhook = match (&cfg.webhook_url, &cfg.webhook_secret) {
        (None, _) => None,
        (Some(_), None) => {
            bail!("webhook_url is set without webhook_secret: a webhook is always signed")
        }
        (Some(url), Some(secret)) => Some(Webhook {
            url: url.clone(),
            secret: Secret(secret.0.clone()),
        }),
    };
    let settings = coproduce_app::workflows::Settings {
        review: coproduce_core::care::readings::ReviewRules {
            within: time::Duration::days(cfg.review_within_days),
        },
        goal_answer: cfg.goal_answer()?,
        calendar,
        protocol,
        webhook: webhook.is_some(),
        safety: coproduce_core::care::safety::SafetyThresholds::new(
            coproduce_core::care::safety::SafetyThresholds {
                glucose_low: cfg.glucose_low,
                glucose_severe_low: cfg.glucose_severe_low,
                glucose_high: cfg.glucose_high,
                glucose_very_high: cfg.glucose_very_high,
                systolic_crisis: cfg.systolic_crisis,
                diastolic_crisis: cfg.diastolic_crisis,
            },
        )
        .map_err(|e| anyhow::anyhow!("the configuration: {e}"))?,
        speakup: speakup_rules(cfg)?,
        referrals: cfg.referral_rules()?,
        prescribing: cfg.prescribing_rules()?,
    };
    let web = coproduce_web::WebConfig {
        body_limit: cfg.body_limit,
        secure_cookies: !cfg.insecure_cookies,
        sessions: coproduce_core::access::session::SessionRules {
            idle: time::Duration::minutes(cfg.session_idle_minutes),
            absolute: time::Duration::hours(cfg.session_absolute_hours),
        },
        measures,
        public_url: cfg
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", cfg.addr)),
        body_timeout: std::time::Duration::from_secs(cfg.body_timeout_seconds.max(1)),
        header_timeout: std::time::Duration::from_secs(cfg.header_timeout_seconds.max(1)),
        request_timeout: std::time::Duration::from_secs(cfg.request_timeout_seconds.max(1)),
        max_connections: cfg.max_connections.max(1),
        phones: coproduce_web::Phones {
            clinic: cfg.clinic_phone.clone().filter(|p| !p.trim().is_empty()),
            emergency: cfg.emergency_number.clone(),
        },
    };
    Ok((settings, web, Delivery { smtp, webhook }))
}

/// The site's secret key from the configuration, if one is set.
fn secret_key(cfg: &Config) -> Result<Option<coproduce_app::secrets::SecretKey>> {
    cfg.secret_key
        .as_ref()
        .map(|k| coproduce_app::secrets::SecretKey::from_base64(&k.0).map_err(anyhow::Error::msg))
        .transpose()
        .context("reading secret_key (COPRODUCE_SECRET_KEY)")
}

async fn serve(store: Store, clock: Arc<dyn Clock>, cfg: &Config) -> Result<()> {
    let addr: SocketAddr = cfg
        .addr
        .parse()
        .with_context(|| format!("'{}' is not an address such as 127.0.0.1:8080", cfg.addr))?;
    let loopback = addr.ip().is_loopback();
    if !loopback && !cfg.behind_proxy {
        bail!(
            "refusing to listen on {addr}: coproduce has no TLS of its own, so it serves on the loopback address only (use 127.0.0.1:PORT behind a TLS-terminating proxy on this machine), unless behind_proxy = true (COPRODUCE_BEHIND_PROXY=true) says that a TLS proxy on another machine is the only way to this address"
        );
    }
    let api = FhirApi::new(store.clone(), clock.clone()).with_bundle_limit(cfg.bundle_entries);
    let accounts = Accounts::new(store.clone(), clock).with_secret_key(secret_key(cfg)?);
    let (settings, web, delivery) = server_config(cfg)?;
    let limits = web.limits();
    let workflows = coproduce_app::workflows::Workflows::new(api, &settings);
    let jobs = workflows
        .jobs(delivery)
        .context("setting up notifications delivery")?;
    let app = coproduce_web::app(&workflows, accounts, web);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let passes = jobs.spawn(
        std::time::Duration::from_secs(cfg.jobs_every_seconds.max(1)),
        stopping,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    if loopback {
        tracing::info!(%local, backend = store.backend().name(), "serving on the loopback address only (TLS belongs to the proxy in front)");
    } else {
        tracing::warn!(%local, backend = store.backend().name(), "serving plain HTTP beyond the loopback address: behind_proxy says a TLS-terminating proxy is the only client that can reach it");
    }
    println!(
        "coproduce is serving the FHIR API at http://{local}/fhir (try http://{local}/fhir/Patient)"
    );
    // SIGTERM (a service manager's stop) or SIGINT (Ctrl-C): no new connections; requests
    // in flight and a background pass under way finish; then the database is closed.
    coproduce_web::serve_until(listener, app, limits, stop_signal()).await?;
    let _ = stop.send(true);
    let _ = passes.await;
    tracing::info!("stopped: requests in flight and the background pass finished");
    store.close().await;
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Speak Up's rules from the configuration: the site's routine times and categories over the
/// defaults (the urgent chain is CLINICAL.md's 15 minutes and is not configured away).
fn speakup_rules(cfg: &config::Config) -> anyhow::Result<coproduce_core::speakup::Rules> {
    use coproduce_core::calendar::Within;
    let within = |key: &str, v: &str| {
        Within::parse(v).map_err(|e| anyhow::anyhow!("the configuration: {key} = '{v}': {e}"))
    };
    let mut rules = coproduce_core::speakup::Rules::default()
        .with_categories(cfg.concern_categories.clone())
        .map_err(|e| anyhow::anyhow!("the configuration: concern_categories: {e}"))?;
    rules.routine_inpatient = rules.routine_inpatient.with_first_within(within(
        "concern_inpatient_within",
        &cfg.concern_inpatient_within,
    )?);
    rules.routine_outpatient = rules.routine_outpatient.with_first_within(within(
        "concern_outpatient_within",
        &cfg.concern_outpatient_within,
    )?);
    rules.answer = within("concern_answer_within", &cfg.concern_answer_within)?;
    Ok(rules)
}
