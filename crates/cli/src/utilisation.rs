//! `coproduce utilisation`: emergency visits and admissions per 1,000 patient-years,
//! all-cause and COPD-related, and 30-day readmissions, overall and by month or care team.

use anyhow::{Context, Result};
use coproduce_app::Store;
use coproduce_core::Clock;
use coproduce_measures::utilisation::Rates;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct UtilisationArgs {
    /// First day (YYYY-MM-DD).
    #[arg(long)]
    pub from: String,
    /// Last day (YYYY-MM-DD).
    #[arg(long)]
    pub to: String,
    /// Break down by `month` or `team` as well.
    #[arg(long)]
    pub by: Option<String>,
}

/// A day typed as YYYY-MM-DD (the commands' --from and --to).
pub(crate) fn date(s: &str) -> Result<time::Date> {
    time::Date::parse(
        s,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .with_context(|| format!("'{s}' is not a date like 2026-01-01"))
}

fn row(label: &str, r: &Rates) {
    let per = |n| r.per_1000(n).map_or("-".to_string(), |v| format!("{v:.1}"));
    println!(
        "{label:<28} {:>10.1} {:>10} {:>10} {:>10} {:>10} {:>9}",
        r.patient_years,
        per(r.ed_visits),
        per(r.copd_ed_visits),
        per(r.admissions),
        per(r.copd_admissions),
        r.readmission_share()
            .map_or("-".to_string(), |s| format!("{:.1}%", s * 100.0)),
    );
}

pub async fn utilisation(store: &Store, clock: &Arc<dyn Clock>, a: UtilisationArgs) -> Result<()> {
    let (from, to) = (date(&a.from)?, date(&a.to)?);
    anyhow::ensure!(from <= to, "--from must not be after --to");
    let u =
        coproduce_app::measures::evaluation::utilisation(store, clock, "cli:utilisation", from, to)
            .await?;
    println!(
        "utilisation {from} to {to}, per 1,000 patient-years (readmissions: share of admissions within 30 days of a discharge)"
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "", "pt-years", "ED", "ED COPD", "admits", "adm COPD", "readmit"
    );
    row("all patients", &u.overall);
    match a.by.as_deref() {
        Some("month") => u.by_month.iter().for_each(|(k, r)| row(k, r)),
        Some("team") => u.by_team.iter().for_each(|(k, r)| row(k, r)),
        Some(other) => anyhow::bail!("--by is month or team, not '{other}'"),
        None => {}
    }
    Ok(())
}
