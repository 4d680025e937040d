//! `coproduce partnership`: both sides of the partnership over a period. The team's side:
//! every promise it owed the patient that fell due (any Task with a deadline, whatever
//! workflow wrote it; readings reviewed; goals answered; the team's activities), kept on
//! time, kept late or still open, the median lateness and the escalations. The patient's
//! side beside it: their and their family's activities kept on time, and goals agreed by
//! both sides. Overall and by kind, team, role or month; printed, and written as a CSV.

use anyhow::{Context, Result, bail};
use coproduce_app::care::Care;
use coproduce_app::care::Reader;
use coproduce_app::measures::synthetic::Config;
use coproduce_app::spreadsheet::safe_cell;
use coproduce_app::workflows::Settings;
use coproduce_core::partnership::{By, Scorecard, Tally};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct PartnershipArgs {
    /// First day (YYYY-MM-DD), in the site's time zone.
    #[arg(long)]
    pub from: String,
    /// Last day (YYYY-MM-DD), included.
    #[arg(long)]
    pub to: String,
    /// Break down by `kind` (the default), `team`, `role`, `month`, or the patients'
    /// `language`, `age` band or `sex`.
    #[arg(long, default_value = "kind")]
    pub by: String,
    /// Where the CSV goes.
    #[arg(long, default_value = "partnership.csv")]
    pub out: PathBuf,
    /// Score this many generated patients (their year to --to) instead of the store's.
    #[arg(long)]
    pub generated: Option<u64>,
    /// The generated population's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |p| format!("{p:.1}%"))
}

fn hours(v: Option<f64>) -> String {
    v.map_or("-".into(), |h| format!("{h:.1} h"))
}

fn row(label: &str, t: &Tally) {
    println!(
        "{label:<28} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9} {:>9}",
        t.counted(),
        t.on_time,
        t.late,
        t.overdue,
        pct(t.on_time_pct()),
        hours(t.median_late_hours()),
        t.escalated,
        t.escalations,
    );
}

fn header(title: &str) {
    println!(
        "{title:<28} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9} {:>9}",
        "owed", "on time", "late", "open", "on time", "median", "escalated", "steps"
    );
}

/// The scorecard as rows: side, breakdown, key, then the counts.
fn write_csv(card: &Scorecard, out: &PathBuf) -> Result<()> {
    let mut w =
        csv::Writer::from_path(out).with_context(|| format!("creating {}", out.display()))?;
    w.write_record([
        "side",
        "by",
        "group",
        "owed",
        "on_time",
        "late",
        "still_open",
        "on_time_pct",
        "median_late_hours",
        "escalated",
        "escalation_steps",
    ])?;
    let sides = [
        ("team", &card.team, &card.team_by),
        ("patient", &card.patient, &card.patient_by),
    ];
    for (side, all, split) in sides {
        let groups = std::iter::once(("all", "all".to_string(), all))
            .chain(split.iter().map(|(k, t)| (card.by.as_str(), k.clone(), t)));
        for (by, key, t) in groups {
            w.write_record([
                side.to_string(),
                by.to_string(),
                safe_cell(&key).into_owned(),
                t.counted().to_string(),
                t.on_time.to_string(),
                t.late.to_string(),
                t.overdue.to_string(),
                t.on_time_pct().map_or(String::new(), |p| format!("{p:.2}")),
                t.median_late_hours()
                    .map_or(String::new(), |h| format!("{h:.2}")),
                t.escalated.to_string(),
                t.escalations.to_string(),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}

/// The scorecard over the store (`care`), or over a generated population (`--generated`).
pub async fn run(care: Option<&Care>, settings: &Settings, a: PartnershipArgs) -> Result<()> {
    let calendar = &settings.calendar;
    let (first, last) = (
        crate::utilisation::date(&a.from)?,
        crate::utilisation::date(&a.to)?,
    );
    anyhow::ensure!(first <= last, "--from must not be after --to");
    let Some(by) = By::parse(&a.by) else {
        bail!(
            "--by takes kind, team, role, month, language, age or sex, not '{}'",
            a.by
        )
    };
    let midnight = time::Time::MIDNIGHT;
    let from = calendar.instant(first, midnight);
    let to = calendar.instant(
        last.next_day().context("--to is the last day there is")?,
        midnight,
    );
    let found = match a.generated {
        Some(n) => {
            // The generated year ends with the period; promises are judged at its end. Each
            // patient's whole record is made, then read as the store's pass reads its row.
            let cfg = Config {
                seed: a.seed,
                year: (to - time::Duration::DAY).year(),
                ..Config::default()
            };
            let reader = Reader::new(
                Arc::new(calendar.clone()),
                settings.review.within,
                settings.goal_answer,
                from,
                to,
                to,
            );
            let started = std::time::Instant::now();
            let found = coproduce_app::synthetic::partnership(&cfg, n, to, &reader, &[by]);
            let read = started.elapsed().as_secs_f64();
            println!(
                "{n} generated patients (seed {}): {} promises made and read in memory in {read:.2} s ({:.0} patients/s)",
                a.seed,
                found.promises,
                n as f64 / read.max(1e-9)
            );
            found
        }
        None => {
            let care = care.context("the store is needed unless --generated")?;
            let started = std::time::Instant::now();
            let caller = coproduce_app::accounts::Caller::system("cli:partnership");
            let found = care
                .population_figures(&caller, from, to, &[by])
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let took = started.elapsed().as_secs_f64();
            println!(
                "the store's promises ({} patients' records, {} promises), read and scored in {took:.2} s ({:.0} patients/s)",
                found.patients,
                found.promises,
                found.patients as f64 / took.max(1e-9)
            );
            found
        }
    };
    let card = found
        .cards
        .into_iter()
        .next()
        .context("the scorecard was not counted")?;
    println!(
        "the partnership {first} to {last}: promises first due in the period, as they stand now"
    );
    header("the team's side");
    row("all", &card.team);
    for (k, t) in &card.team_by {
        row(&format!("  {k}"), t);
    }
    println!();
    header("the patient's side");
    row("all", &card.patient);
    for (k, t) in &card.patient_by {
        row(&format!("  {k}"), t);
    }
    println!(
        "goals agreed by both sides: {} of {} ({})",
        card.goals_agreed,
        card.goals,
        pct(card.goals_agreed_pct())
    );
    write_csv(&card, &a.out)?;
    println!("written to {}", a.out.display());
    Ok(())
}
