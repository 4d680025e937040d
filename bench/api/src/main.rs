//! The live path against Medplum: coproduce on SQLite and on PostgreSQL, and the Medplum peer
//! (Medplum's FHIR router and in-memory repository, in `medplum-peer/`), started by this
//! program, seeded the same way through their FHIR APIs and driven with the same requests by
//! the same load tool in one run.
//!
//! Printed: reads, searches by subject and creates (closed loop, like `wrk -t2 -c16`) with
//! rate, p50 and p99 and the ratio coproduce / peer; the create rate for a patient with 0,
//! 10,000 and 100,000 Observations, the search rate at 100,000, and a search by two subjects
//! before and after those records are added (coproduce only: the peer's search is a full
//! scan); then a fixed-rate run of mixed requests with its latency
//! distribution.
//!
//! Run: `cargo build --release -p coproduce-cli -p bench-api && target/release/bench-api`
//! (`--help` for the options). Needs Node and npm for the peer, and a PostgreSQL server for
//! the PostgreSQL column (`--postgres URL`, default the local `test` database; `--no-postgres`
//! leaves it out).

mod load;
mod servers;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use load::{Req, Stats, Target};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "coproduce's FHIR API beside the Medplum peer, same requests, same tool")]
struct Args {
    /// Seconds each closed-loop measurement runs (after its warm-up).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds of warm-up before each closed-loop measurement, not counted.
    #[arg(long, default_value_t = 3)]
    warm_up: u64,
    /// Connections of the closed-loop runs.
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Observations of the patient the reads, searches and creates are for.
    #[arg(long, default_value_t = 1_000)]
    observations: usize,
    /// The long records the create and search rates are compared on (coproduce only).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    long: Vec<usize>,
    /// Requests a second of the fixed-rate run (0 leaves it out).
    #[arg(long, default_value_t = 2_000.0)]
    rate: f64,
    /// Seconds of the fixed-rate run.
    #[arg(long, default_value_t = 60)]
    rate_seconds: u64,
    /// The PostgreSQL server's URL (a database is made for the run and dropped after).
    #[arg(
        long,
        env = "COPRODUCE_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    #[arg(long)]
    no_postgres: bool,
    #[arg(long)]
    no_peer: bool,
}

const HEART_RATE: &str = r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/PATIENT_ID"},"effectiveDateTime":"2024-01-01T00:00:00Z","valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}"#;

/// The seed Observations: heart rate and body weight in turn, a minute apart.
fn seed_observation(patient: &str, n: usize) -> Value {
    let (code, display, value, unit) = if n.is_multiple_of(2) {
        ("8867-4", "Heart rate", 60 + (n % 30), "/min")
    } else {
        ("29463-7", "Body weight", 60 + (n % 40), "kg")
    };
    let minute = n % 60;
    let hour = (n / 60) % 24;
    let day = 1 + (n / 1440) % 28;
    let month = 1 + (n / 40_320) % 12;
    json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": format!("2024-{month:02}-{day:02}T{hour:02}:{minute:02}:00Z"),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    })
}

/// One server under test.
struct Subject {
    name: &'static str,
    target: Target,
    _running: servers::Running,
}

async fn create_patient(target: &Target, family: &str) -> Result<String> {
    let body = json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Alice"]}], "gender": "female", "birthDate": "1980-01-02"});
    let (status, answer) =
        load::once(target, &Req::post("/fhir/Patient", body.to_string())).await?;
    ensure!(
        status == 201,
        "creating a Patient: {status} {}",
        String::from_utf8_lossy(&answer)
    );
    let created: Value = serde_json::from_slice(&answer)?;
    Ok(created["id"]
        .as_str()
        .context("the new Patient's id")?
        .to_string())
}

/// Posts `n` Observations for `patient` in batch Bundles of 500.
async fn seed(target: &Target, patient: &str, n: usize) -> Result<()> {
    let bar = indicatif::ProgressBar::new(n as u64);
    for start in (0..n).step_by(500) {
        let entries: Vec<Value> = (start..(start + 500).min(n))
            .map(|i| json!({"resource": seed_observation(patient, i), "request": {"method": "POST", "url": "Observation"}}))
            .collect();
        let count = entries.len();
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        let (status, answer) = load::once(target, &Req::post("/fhir", bundle.to_string())).await?;
        ensure!(
            status == 200,
            "seeding: {status} {}",
            String::from_utf8_lossy(&answer)
        );
        let answer: Value = serde_json::from_slice(&answer)?;
        let created = answer["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter(|e| {
                        e["response"]["status"]
                            .as_str()
                            .is_some_and(|s| s.starts_with("201"))
                    })
                    .count()
            })
            .unwrap_or(0);
        ensure!(
            created == count,
            "seeding: {created} of {count} created: {answer}"
        );
        bar.inc(count as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

fn creates_for(patient: &str) -> Arc<dyn Fn(u64) -> Req + Send + Sync> {
    let body = bytes::Bytes::from(HEART_RATE.replace("PATIENT_ID", patient));
    Arc::new(move |_| Req::post("/fhir/Observation", body.clone()))
}

/// A search by subject, newest first: one patient, or several at once
/// (`subject=Patient/a,Patient/b`).
fn search_for(patients: &[&str]) -> Arc<dyn Fn(u64) -> Req + Send + Sync> {
    let subjects: Vec<String> = patients.iter().map(|p| format!("Patient/{p}")).collect();
    let path = format!("/fhir/Observation?subject={}&_count=10", subjects.join(","));
    Arc::new(move |_| Req::get(path.clone()))
}

fn read_of(patient: &str) -> Arc<dyn Fn(u64) -> Req + Send + Sync> {
    let path = format!("/fhir/Patient/{patient}");
    Arc::new(move |_| Req::get(path.clone()))
}

/// The server's CPU time per request, or a dash where it was not read.
fn cpu(stats: &Stats) -> String {
    match stats.cpu_per_request() {
        Some(us) => format!("cpu {us:>5.0} µs/req"),
        None => format!("cpu {:>5} µs/req", "-"),
    }
}

fn line(stats: &Stats) -> String {
    let errors = if stats.errors > 0 {
        format!(
            ", {} errors (first: {})",
            stats.errors,
            stats.first_error.as_deref().unwrap_or("")
        )
    } else {
        String::new()
    };
    format!(
        "{:>8.0} req/s  p50 {:>6.2} ms  p99 {:>7.2} ms  {}{errors}",
        stats.rate(),
        stats.ms(0.5),
        stats.ms(0.99),
        cpu(stats)
    )
}

/// The three requests of the table, for the patient with `observations`.
const SCENARIOS: [&str; 3] = [
    "GET /fhir/Patient/{id}",
    "GET /fhir/Observation?subject=...&_count=10",
    "POST /fhir/Observation",
];

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let warm_up = Duration::from_secs(args.warm_up);
    let measure = Duration::from_secs(args.seconds);
    let peer_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("medplum-peer");
    let work = tempfile::tempdir()?;

    let mut subjects = Vec::new();
    let sqlite = format!("sqlite://{}", work.path().join("bench.db").display());
    let running = servers::coproduce(&sqlite, None).await?;
    subjects.push(Subject {
        name: "coproduce sqlite",
        target: Target {
            addr: running.addr.clone(),
            token: running.token.clone(),
            pid: Some(running.pid()),
        },
        _running: running,
    });
    if !args.no_postgres {
        let (url, drop) = servers::new_postgres_database(&args.postgres).await?;
        let running = servers::coproduce(&url, Some(drop)).await?;
        subjects.push(Subject {
            name: "coproduce postgres",
            target: Target {
                addr: running.addr.clone(),
                token: running.token.clone(),
                pid: Some(running.pid()),
            },
            _running: running,
        });
    }
    if !args.no_peer {
        let running = servers::medplum_peer(&peer_dir).await?;
        subjects.push(Subject {
            name: "medplum-peer",
            target: Target {
                addr: running.addr.clone(),
                token: None,
                pid: Some(running.pid()),
            },
            _running: running,
        });
    }

    println!(
        "{} closed-loop connections, {} s each after {} s of warm-up; a patient with {} Observations",
        args.conns, args.seconds, args.warm_up, args.observations
    );
    // results[scenario][subject]
    let mut table: Vec<Vec<Stats>> = (0..SCENARIOS.len()).map(|_| Vec::new()).collect();
    let mut patients = Vec::new();
    for s in &subjects {
        let patient = create_patient(&s.target, "Smith").await?;
        seed(&s.target, &patient, args.observations).await?;
        for (k, pick) in [
            read_of(&patient),
            search_for(&[&patient]),
            creates_for(&patient),
        ]
        .into_iter()
        .enumerate()
        {
            let stats = load::closed(&s.target, args.conns, warm_up, measure, pick).await?;
            println!("{:<20} {:<45} {}", s.name, SCENARIOS[k], line(&stats));
            table[k].push(stats);
        }
        patients.push(patient);
    }

    println!();
    print!("{:<45}", "");
    for s in &subjects {
        print!(" {:>34}", s.name);
    }
    println!();
    let peer = subjects.iter().position(|s| s.name == "medplum-peer");
    for (k, row) in table.iter().enumerate() {
        print!("{:<45}", SCENARIOS[k]);
        for stats in row {
            print!(
                " {:>8.0} req/s p50 {:>5.2} p99 {:>6.2} {}",
                stats.rate(),
                stats.ms(0.5),
                stats.ms(0.99),
                cpu(stats)
            );
        }
        if let Some(p) = peer {
            let ratios: Vec<String> = row
                .iter()
                .zip(&subjects)
                .filter(|(_, s)| s.name != "medplum-peer")
                .map(|(stats, s)| format!("{} {:.2}x", s.name, stats.rate() / row[p].rate()))
                .collect();
            print!("   vs peer: {}", ratios.join(", "));
        }
        println!();
    }

    // Creates and searches as a record grows (coproduce only).
    println!();
    for s in subjects.iter().filter(|s| s.name != "medplum-peer") {
        let fresh = create_patient(&s.target, "New").await?;
        let base =
            load::closed(&s.target, args.conns, warm_up, measure, creates_for(&fresh)).await?;
        println!(
            "{:<20} creates, a patient with 0 Observations        {}",
            s.name,
            line(&base)
        );
        let at = subjects.iter().position(|x| x.name == s.name).unwrap_or(0);
        let search_base = table[1][at].rate();
        // The two patients' readings are older than every one the long records add below: a
        // page of them must not cost more as those are added.
        let two = || search_for(&[&patients[at], &fresh]);
        let two_base = load::closed(&s.target, args.conns, warm_up, measure, two()).await?;
        println!(
            "{:<20} search by two subjects, before the long records {}",
            s.name,
            line(&two_base)
        );
        for &n in &args.long {
            let long = create_patient(&s.target, "Long").await?;
            let seeded = std::time::Instant::now();
            seed(&s.target, &long, n).await?;
            let seed_rate = n as f64 / seeded.elapsed().as_secs_f64();
            let creates =
                load::closed(&s.target, args.conns, warm_up, measure, creates_for(&long)).await?;
            // A new patient in the same store, now as big: what the long record alone costs,
            // apart from what the store's growth does.
            let beside = create_patient(&s.target, "Beside").await?;
            let beside = load::closed(
                &s.target,
                args.conns,
                warm_up,
                measure,
                creates_for(&beside),
            )
            .await?;
            println!(
                "{:<20} creates, a patient with {n:>7} Observations  {}  ({:.2}x a new patient's in the same store, {:.2}x the first new patient's; seeded at {seed_rate:.0}/s)",
                s.name,
                line(&creates),
                creates.rate() / beside.rate(),
                creates.rate() / base.rate()
            );
            println!(
                "{:<20} creates, a new patient beside it              {}  ({:.2}x the first new patient's: the store's growth)",
                s.name,
                line(&beside),
                beside.rate() / base.rate()
            );
            let search = load::closed(
                &s.target,
                args.conns,
                warm_up,
                measure,
                search_for(&[&long]),
            )
            .await?;
            println!(
                "{:<20} search, a patient with {n:>7} Observations   {}  ({:.2}x the search at {})",
                s.name,
                line(&search),
                search.rate() / search_base,
                args.observations
            );
            let two = load::closed(&s.target, args.conns, warm_up, measure, two()).await?;
            println!(
                "{:<20} search by two subjects, after {n:>7} more       {}  ({:.2}x before them)",
                s.name,
                line(&two),
                two.rate() / two_base.rate()
            );
        }
    }

    if args.rate > 0.0 {
        println!();
        println!(
            "fixed rate: {:.0} requests/s for {} s, mixed (5 reads, 3 searches, 2 creates in 10); latency from when each was due",
            args.rate, args.rate_seconds
        );
        for (s, patient) in subjects.iter().zip(&patients) {
            let (read, search, create) = (
                read_of(patient),
                search_for(&[patient]),
                creates_for(patient),
            );
            let pick: Arc<dyn Fn(u64) -> Req + Send + Sync> = Arc::new(move |n| match n % 10 {
                0..=4 => read(n),
                5..=7 => search(n),
                _ => create(n),
            });
            let stats = load::fixed_rate(
                &s.target,
                64,
                args.rate,
                Duration::from_secs(args.rate_seconds),
                pick,
            )
            .await?;
            println!(
                "{:<20} {} answered, {} errors; p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}; {}{}",
                s.name,
                stats.ok,
                stats.errors,
                stats.ms(0.5),
                stats.ms(0.9),
                stats.ms(0.99),
                stats.ms(0.999),
                stats.latency.max() as f64 / 1000.0,
                cpu(&stats),
                stats
                    .first_error
                    .as_deref()
                    .map(|e| format!(" (first error: {e})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}
