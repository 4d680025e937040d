//! `coproduce social-needs`: whether social needs are seen and the loop closes. The share
//! screened in the last 12 months, each domain's positive rate, referrals made and accepted,
//! the loop closure rate beside the published 27%, the median days to closure, need met by
//! the organisation's and by the patient's account, and why loops stayed open; overall and by
//! language, age band or sex. Over the store, or over a generated population.

use anyhow::{Result, bail};
use coproduce_core::social::Domain;
use coproduce_core::social::measures::{Report, Tally};

#[derive(Debug, clap::Args)]
pub struct SocialArgs {
    /// Break down by `language`, `age` or `sex` as well.
    #[arg(long)]
    pub by: Option<String>,
    /// Measure this many generated patients instead of the store's.
    #[arg(long)]
    pub generated: Option<u64>,
    /// The generated population's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn pct(s: Option<f64>) -> String {
    s.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn row(label: &str, t: &Tally) {
    println!(
        "{label:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        t.patients,
        pct(t.screening_rate()),
        t.referrals,
        t.accepted,
        pct(t.closure_rate()),
        t.median_days_to_closure()
            .map_or("-".into(), |d| format!("{d} d")),
        pct(t.need_met_by_organisation()),
        pct(t.need_met_by_patient()),
    );
}

pub fn print(r: &Report, by: Option<&str>) -> Result<()> {
    let t = &r.overall;
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "",
        "patients",
        "screened",
        "referred",
        "accepted",
        "closed",
        "median",
        "met(org)",
        "met(pt)"
    );
    row("all", t);
    println!();
    println!("positive, of those screened in the last 12 months:");
    for d in Domain::ALL {
        println!("  {:<22} {:>7}", d.as_str(), pct(t.positive_rate(d)));
    }
    println!();
    println!(
        "loop closure: {} of {} accepted referrals completed with an outcome ({}); published: 98 of 360 (27%)",
        t.closed_loop,
        t.accepted,
        pct(t.closure_rate())
    );
    if !t.not_closed.is_empty() {
        println!("why accepted referrals did not close:");
        let mut reasons: Vec<_> = t.not_closed.iter().collect();
        reasons.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
        for (why, n) in reasons {
            println!("  {why:<22} {n:>7}");
        }
    }
    let groups = match by {
        None => return Ok(()),
        Some("language") => &r.by_language,
        Some("age") => &r.by_age_band,
        Some("sex") => &r.by_sex,
        Some(other) => bail!("--by takes language, age or sex, not '{other}'"),
    };
    println!();
    for (k, t) in groups {
        row(k, t);
    }
    Ok(())
}
