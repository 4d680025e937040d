//! `coproduce value`: cost per member per month from a site fee schedule, and with
//! `--program`, what fee-for-service pays for the program against what a value-based
//! contract rewards (its avoided emergency visits and admissions, priced).

use anyhow::{Context, Result};
use coproduce_app::Store;
use coproduce_core::Clock;
use coproduce_measures::value::Service;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct ValueArgs {
    /// The site's fee schedule: a CSV with the columns service and price (services:
    /// office-visit, ed-visit, admission, inpatient-day, hba1c-test, rescue-pack).
    #[arg(long)]
    pub fees: std::path::PathBuf,
    /// First day (YYYY-MM-DD).
    #[arg(long)]
    pub from: String,
    /// Last day (YYYY-MM-DD); also the program's last day of data.
    #[arg(long)]
    pub to: String,
    /// Value a program as well (its code; enrolment is a CarePlan with this category).
    #[arg(long)]
    pub program: Option<String>,
}

fn money(x: f64) -> String {
    coproduce_measures::value::grouped(x)
}

pub async fn value(store: &Store, clock: &Arc<dyn Clock>, a: ValueArgs) -> Result<()> {
    let (from, to) = (
        crate::utilisation::date(&a.from)?,
        crate::utilisation::date(&a.to)?,
    );
    anyhow::ensure!(from <= to, "--from must not be after --to");
    let text = std::fs::read(&a.fees)
        .with_context(|| format!("reading the fee schedule {}", a.fees.display()))?;
    let fees = coproduce_app::measures::value::fee_schedule(&text)
        .map_err(|e| anyhow::anyhow!("the fee schedule {}: {e}", a.fees.display()))?;
    let r = coproduce_app::measures::value::run(
        store,
        clock,
        "cli:value",
        fees.clone(),
        from,
        to,
        a.program.as_deref(),
    )
    .await?;
    let c = &r.costs;
    println!(
        "cost {from} to {to}: {} members, {:.0} member-months",
        c.members, c.member_months
    );
    println!(
        "{:<16} {:>10} {:>12} {:>14}",
        "service", "count", "price", "cost"
    );
    for s in Service::ALL {
        let n = c.counts.get(&s).copied().unwrap_or(0);
        if n == 0 && !fees.has(s) {
            continue;
        }
        println!(
            "{:<16} {:>10} {:>12} {:>14}",
            s.key(),
            n,
            money(fees.price(s)),
            money(n as f64 * fees.price(s))
        );
    }
    println!(
        "{:<16} {:>10} {:>12} {:>14}",
        "total",
        "",
        "",
        money(c.total)
    );
    match c.pmpm() {
        Some(p) => println!("cost per member per month: {:.2}", p),
        None => println!("cost per member per month: no member-time in the period"),
    }
    if let Some(program) = &a.program {
        match (&r.program, &r.program_note) {
            (Some((e, v)), _) => {
                println!();
                println!(
                    "program {program}: {} enrolled patients with a matched comparison, one year after enrolment",
                    v.patients
                );
                println!(
                    "  emergency visits and admissions avoided: {:.1} (95% interval {:.1} to {:.1}), difference-in-differences {:+.3} per patient-year",
                    v.avoided, v.avoided_interval.0, v.avoided_interval.1, e.effect
                );
                println!(
                    "  price of one such event (the enrolled patients' mix before enrolment): {}",
                    money(v.price_per_event)
                );
                println!("  the program's packs: {}", money(v.program_cost));
                println!(
                    "  fee-for-service view (revenue change): {}",
                    money(v.fee_for_service)
                );
                println!(
                    "  value-based view (avoided cost less the packs): {} (95% interval {} to {})",
                    money(v.value_based),
                    money(v.avoided_value_interval.0 - v.program_cost),
                    money(v.avoided_value_interval.1 - v.program_cost)
                );
                println!("  {}", v.reading());
            }
            (None, Some(note)) => println!("\nprogram {program}: not valued: {note}"),
            (None, None) => {}
        }
    }
    Ok(())
}
