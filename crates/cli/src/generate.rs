//! `coproduce generate`: a synthetic population (`app::synthetic`: each patient's record for
//! the measures, their prescribing record and their side of the partnership), deterministic
//! by seed (and, for prescribing and the partnership, the end of --year or now, whichever is
//! earlier), written as FHIR NDJSON or straight into the store.

use anyhow::{Context, Result};
use coproduce_app::measures::synthetic::Config;
use coproduce_app::synthetic::{record, shared};
use coproduce_app::{Importer, Store};
use coproduce_core::Clock;
use coproduce_fhir::stream::SourceItem;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// How many patients.
    #[arg(long)]
    pub patients: u64,
    /// The same seed gives the same population.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The last year of data (data covers it and the two years before).
    #[arg(long, default_value_t = 2026)]
    pub year: i32,
    /// The rescue-pack program's true relative reduction of COPD emergency visits and
    /// admissions after enrolment (0 for none).
    #[arg(long, default_value_t = 0.3)]
    pub rescue_pack_effect: f64,
    /// Write NDJSON here; without it, the population goes straight into the store.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn bar(n: u64) -> ProgressBar {
    let b = ProgressBar::new(n);
    b.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} patients {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

pub async fn generate(store: Option<Store>, clock: &Arc<dyn Clock>, a: GenerateArgs) -> Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.rescue_pack_effect),
        "--rescue-pack-effect is a share between 0 and 1"
    );
    let cfg = Config {
        seed: a.seed,
        year: a.year,
        rescue_pack_effect: a.rescue_pack_effect,
        ..Config::default()
    };
    // The prescribing record and the partnership cover the 12 months to the end of --year,
    // or to now.
    let end = time::Date::from_calendar_date(a.year, time::Month::December, 31)
        .map(|d| d.with_hms(23, 59, 59).unwrap_or(d.midnight()).assume_utc())
        .map_or(clock.now(), |year_end| year_end.min(clock.now()));
    let progress = bar(a.patients);
    let started = std::time::Instant::now();
    let mut resources = 0u64;
    match (&a.out, store) {
        (Some(path), _) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            for r in shared() {
                serde_json::to_writer(&mut w, &r)?;
                w.write_all(b"\n")?;
                resources += 1;
            }
            for i in 0..a.patients {
                for r in record(&cfg, i, end) {
                    serde_json::to_writer(&mut w, &r)?;
                    w.write_all(b"\n")?;
                    resources += 1;
                }
                if i % 1000 == 0 {
                    progress.set_position(i);
                }
            }
            w.flush()?;
        }
        (None, Some(store)) => {
            let mut importer = Importer::new(store, clock.clone(), "cli:generate");
            for r in shared() {
                importer
                    .add(SourceItem::new("synthetic#shared".to_string(), Ok(r)))
                    .await?;
                resources += 1;
            }
            for i in 0..a.patients {
                for r in record(&cfg, i, end) {
                    importer
                        .add(SourceItem::new(format!("synthetic#{i}"), Ok(r)))
                        .await?;
                    resources += 1;
                }
                if i % 1000 == 0 {
                    progress.set_position(i);
                }
            }
            let summary = importer.finish().await?;
            anyhow::ensure!(
                summary.rejected.is_empty(),
                "the store refused generated resources: {:?}",
                summary.rejected.first()
            );
        }
        (None, None) => unreachable!("the caller opens the store when there is no --out"),
    }
    progress.finish_and_clear();
    println!(
        "generated {} patients ({resources} resources, seed {}, rescue-pack effect {}) in {:.1} s",
        a.patients,
        a.seed,
        a.rescue_pack_effect,
        started.elapsed().as_secs_f64()
    );
    if let Some(p) = &a.out {
        println!("wrote {}", p.display());
    }
    Ok(())
}
