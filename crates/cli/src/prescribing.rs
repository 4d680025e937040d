//! `coproduce prescribing`: whether prescribing sees the whole person. The share of new
//! prescriptions with a complete partnership check, barriers found by kind, resolved within
//! their deadline and the median time to resolution, the patients' "I can't" and how each
//! ended, the cost-related non-adherence rate beside the Medicare survey's, first fills
//! confirmed, and the HbA1c change after a resolved barrier; overall and by language, age
//! band, sex or coverage. Over the store, or over a generated population.

use anyhow::{Result, bail};
use coproduce_core::prescribing::check::{CostAnswers, Kind};
use coproduce_core::prescribing::measures::{Report, Tally};

#[derive(Debug, clap::Args)]
pub struct PrescribingArgs {
    /// Break down by `language`, `age`, `sex` or `coverage` as well.
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

const HEAD: [&str; 9] = [
    "patients", "written", "complete", "barriers", "on time", "median", "I can't", "CRN",
    "1st fill",
];

fn row(label: &str, t: &Tally) {
    println!(
        "{label:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        t.patients,
        t.prescriptions,
        pct(t.complete_rate()),
        t.barriers,
        pct(t.on_time_rate()),
        t.median_days_to_resolution()
            .map_or("-".into(), |d| format!("{d:.1} d")),
        t.cant,
        pct(t.crn_rate()),
        pct(t.first_fill_rate()),
    );
}

pub fn print(r: &Report, by: Option<&str>) -> Result<()> {
    let groups = match by {
        None => None,
        Some("language") => Some(&r.by_language),
        Some("age") => Some(&r.by_age_band),
        Some("sex") => Some(&r.by_sex),
        Some("coverage") => Some(&r.by_coverage),
        Some(other) => bail!("--by takes language, age, sex or coverage, not '{other}'"),
    };
    let t = &r.overall;
    print!("{:<16}", "");
    for h in HEAD {
        print!(" {h:>9}");
    }
    println!();
    row("all", t);
    println!();
    println!(
        "checks complete: {} of {} prescriptions written in the last 12 months ({}); {} checked",
        t.complete,
        t.prescriptions,
        pct(t.complete_rate()),
        t.checked
    );
    println!("barriers found, by kind:");
    for k in Kind::ALL {
        println!("  {:<22} {:>7}", k.as_str(), t.kind(k));
    }
    println!(
        "resolved within the deadline: {} of {} whose deadline came ({}); {} resolved, median {}",
        t.on_time,
        t.deadline_came,
        pct(t.on_time_rate()),
        t.resolved,
        t.median_days_to_resolution()
            .map_or("-".into(), |d| format!("{d:.1} days")),
    );
    println!("\"I can't\" from patients: {}; how each ended:", t.cant);
    let mut outcomes: Vec<_> = t.cant_outcomes.iter().collect();
    outcomes.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    for (how, n) in outcomes {
        println!("  {how:<26} {n:>7}");
    }
    println!(
        "cost-related non-adherence, of {} patients who answered in the last 12 months: any {}",
        t.cost_answered,
        pct(t.crn_rate())
    );
    let published = ["18.3%", "15.8%", "12.4%", "-"];
    for (i, item) in CostAnswers::ITEMS.iter().enumerate() {
        println!(
            "  {item:<22} {:>7}   (Medicare survey: {})",
            pct(t.crn_item_rate(i)),
            published[i]
        );
    }
    println!(
        "first fill: {} confirmed and {} not, of {} prescriptions whose check-in opened ({})",
        t.first_fill_yes,
        t.first_fill_no,
        t.first_fill_asked,
        pct(t.first_fill_rate())
    );
    match t.mean_hba1c_change() {
        Some(c) => println!(
            "HbA1c in the 6 months after a resolved barrier: mean change {c:+.2} points over {} barriers (descriptive: no comparison group)",
            t.hba1c_changes.len()
        ),
        None => println!("HbA1c after a resolved barrier: no barrier with readings either side"),
    }
    if let Some(groups) = groups {
        println!();
        for (k, t) in groups {
            row(k, t);
        }
    }
    Ok(())
}
