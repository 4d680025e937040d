//! `coproduce concerns`: whether the Speak Up loop works. Time to acknowledge (median and
//! 90th percentile), the share acknowledged and answered within their deadlines, the share of
//! reporters who felt heard and who raised another concern later; overall and by unit,
//! category, language or month. Over the store, or over a generated population.

use anyhow::Result;
use coproduce_core::speakup::measures::{Report, Tally};

#[derive(Debug, clap::Args)]
pub struct ConcernsArgs {
    /// Break down by `unit`, `category`, `language` or `month` as well.
    #[arg(long)]
    pub by: Option<String>,
    /// Measure this many generated concerns instead of the store's.
    #[arg(long)]
    pub generated: Option<u64>,
    /// The feedback channel's measures rather than the concerns'.
    #[arg(long)]
    pub feedback: bool,
    /// The generated population's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn pct(s: Option<f64>) -> String {
    s.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn minutes(m: Option<i64>) -> String {
    match m {
        None => "-".into(),
        Some(m) if m < 120 => format!("{m} min"),
        Some(m) if m < 48 * 60 => format!("{:.1} h", m as f64 / 60.0),
        Some(m) => format!("{:.1} d", m as f64 / 1440.0),
    }
}

fn row(label: &str, t: &Tally) {
    println!(
        "{label:<22} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        t.raised,
        minutes(t.median_minutes()),
        minutes(t.p90_minutes()),
        pct(t.acknowledged_on_time_share()),
        pct(t.answered_on_time_share()),
        pct(t.felt_heard_share()),
        pct(t.raised_again_share()),
    );
}

pub fn print(r: &Report, by: Option<&str>) -> Result<()> {
    println!(
        "{:<22} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "raised", "ack p50", "ack p90", "ack ok", "answer ok", "heard", "again"
    );
    row("all concerns", &r.overall);
    let groups = match by {
        None => return Ok(()),
        Some("unit") => &r.by_unit,
        Some("category") => &r.by_category,
        Some("language") => &r.by_language,
        Some("month") => &r.by_month,
        Some(other) => anyhow::bail!("--by is unit, category, language or month, not '{other}'"),
    };
    groups.iter().for_each(|(k, t)| row(k, t));
    Ok(())
}
