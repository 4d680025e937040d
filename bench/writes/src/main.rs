//! Whether a write costs more as a patient's record grows: durable creates of an Observation
//! through the FHIR API (policy, validation, indexes, audit row; SQLite with
//! synchronous=FULL) for a patient who already has N Observations (10,000 by default),
//! against the baseline in the same run: the same creates for a patient with none. The ratio
//! should be near 1.
//!
//! Run: `cargo build --release -p bench-writes && target/release/bench-writes [N] [CREATES]`

use anyhow::Result;
use coproduce_app::accounts::Caller;
use coproduce_app::{FhirApi, Importer, Store};
use coproduce_core::SystemClock;
use coproduce_fhir::stream::SourceItem;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Parser, Debug)]
#[command(about = "Durable creates for a patient with a long record against a new patient's")]
struct Args {
    /// Observations of the long record.
    #[arg(default_value_t = 10_000)]
    observations: usize,
    /// Creates timed for each patient, in each of three rounds.
    #[arg(default_value_t = 300)]
    creates: usize,
}

fn weight(patient: &str, n: usize) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": format!("2026-{:02}-{:02}T{:02}:{:02}:00Z", 1 + n / 40_000 % 12, 1 + n / 1440 % 28, n / 60 % 24, n % 60),
        "valueQuantity": {"value": 70 + (n % 10), "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    })
}

/// `creates` durable creates for `patient`, one after the other: creates per second.
async fn creates(api: &FhirApi, sys: &Caller, patient: &str, creates: usize) -> Result<f64> {
    let started = Instant::now();
    for n in 0..creates {
        let body = weight(patient, 500_000 + n).to_string();
        api.create(sys, "Observation", body.as_bytes(), None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(creates as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = <Args as clap::Parser>::parse();
    let (n, k) = (args.observations, args.creates);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::open(&url).await?;
    let clock: Arc<dyn coproduce_core::Clock> = Arc::new(SystemClock);
    let loaded = Instant::now();
    let mut importer = Importer::new(store.clone(), clock.clone(), "bench:writes");
    for p in ["long", "new"] {
        importer
            .add(SourceItem::new(
                p.to_string(),
                Ok(json!({"resourceType": "Patient", "id": p})),
            ))
            .await?;
    }
    for i in 0..n {
        let mut obs = weight("long", i);
        obs["id"] = json!(format!("o{i}"));
        importer
            .add(SourceItem::new(format!("obs#{i}"), Ok(obs)))
            .await?;
    }
    let summary = importer.finish().await?;
    anyhow::ensure!(
        summary.rejected.is_empty(),
        "rejected: {:?}",
        summary.rejected.first()
    );
    store.ensure_patient_records(|_, _| {}).await?;
    println!(
        "loaded a patient with {n} Observations and a new patient in {:.1} s",
        loaded.elapsed().as_secs_f64()
    );
    let api = FhirApi::new(store.clone(), clock);
    let sys = Caller::system("bench:writes");
    // Warm both, then alternate, so that noise on this shared machine falls on both sides.
    creates(&api, &sys, "new", 20).await?;
    creates(&api, &sys, "long", 20).await?;
    let (mut fresh, mut long) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        fresh.push(creates(&api, &sys, "new", k / 3).await?);
        long.push(creates(&api, &sys, "long", k / 3).await?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (fresh, long) = (median(&mut fresh), median(&mut long));
    println!(
        "durable creates, one at a time (SQLite, synchronous=FULL, audit on), median of 3 runs of {}:",
        k / 3
    );
    println!("  baseline: a new patient                      {fresh:>8.0} creates/s");
    println!("  a patient with {n:>7} Observations           {long:>8.0} creates/s");
    println!(
        "  ratio (long record / new patient)            {:>8.2}x",
        long / fresh
    );
    let applied = Instant::now();
    let rebuilt = store.ensure_patient_records(|_, _| {}).await?;
    println!(
        "then the measure projection brought up to date for {rebuilt} patients in {:.2} s",
        applied.elapsed().as_secs_f64()
    );
    Ok(())
}
