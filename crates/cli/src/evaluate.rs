//! `coproduce evaluate --program rescue-pack`: a program's effect on emergency visits and
//! admissions, enrolled against matched patients who were not enrolled.

use anyhow::{Context, Result};
use coproduce_app::Store;
use coproduce_core::Clock;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// The program, by its code (enrolment is a CarePlan with this category).
    #[arg(long)]
    pub program: String,
    /// The last day of data (YYYY-MM-DD); enrolments need a full year after them.
    #[arg(long)]
    pub end: String,
    /// Seed of the bootstrap, so a run can be repeated exactly.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write an SVG plot of the two groups before and after enrolment here.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
    /// The outcome: `events` (the program condition's emergency visits and admissions), or
    /// the discharges of AHRQ's `pqi05` or `pqi01`.
    #[arg(long, default_value = "events")]
    pub outcome: String,
}

pub async fn evaluate(store: &Store, clock: &Arc<dyn Clock>, a: EvaluateArgs) -> Result<()> {
    let end = time::Date::parse(
        &a.end,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .with_context(|| format!("--end '{}' is not a date like 2026-12-31", a.end))?;
    let outcome =
        coproduce_app::measures::evaluation::Outcome::parse(&a.outcome).with_context(|| {
            format!(
                "--outcome '{}' is not one of events, pqi01, pqi05",
                a.outcome
            )
        })?;
    let result = coproduce_app::measures::evaluation::run(
        store,
        clock,
        "cli:evaluate",
        &a.program,
        end,
        a.seed,
        outcome,
    )
    .await?;
    let Some(e) = result else {
        println!(
            "No enrolled patient with a full year before and after enrolment found a match; nothing to compare."
        );
        return Ok(());
    };
    println!(
        "program {}: {} enrolled patients, each with a matched comparison patient",
        a.program, e.pairs
    );
    match outcome {
        coproduce_app::measures::evaluation::Outcome::ProgramEvents => {
            println!("  events per patient-year (program-related emergency visits and admissions):")
        }
        coproduce_app::measures::evaluation::Outcome::Pqi(i) => {
            println!(
                "  events per patient-year ({} qualifying discharges):",
                i.title()
            )
        }
    }
    println!(
        "    enrolled:   {:.3} in the 12 months before, {:.3} after",
        e.enrolled_before, e.enrolled_after
    );
    println!(
        "    comparison: {:.3} before, {:.3} after",
        e.comparison_before, e.comparison_after
    );
    println!(
        "  difference-in-differences: {:+.3} per patient-year (95% bootstrap interval {:+.3} to {:+.3}); relative {:+.0}% ({:+.0}% to {:+.0}%)",
        e.effect,
        e.interval.0,
        e.interval.1,
        e.relative * 100.0,
        e.relative_interval.0 * 100.0,
        e.relative_interval.1 * 100.0
    );
    println!("  {}", e.reading());
    if let Some(path) = &a.plot {
        std::fs::write(
            path,
            coproduce_web::charts::evaluation(&e, &a.program).map_err(|x| anyhow::anyhow!(x))?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
        println!("  wrote the plot to {}", path.display());
    }
    Ok(())
}
