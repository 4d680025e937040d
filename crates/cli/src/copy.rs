//! `coproduce copy`: the whole database into a new one (SQLite to PostgreSQL for the site that
//! outgrows one machine), every table counted on both sides and the audit trail verified.

use anyhow::{Result, bail};
use coproduce_app::Store;
use coproduce_core::Clock;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;

pub async fn run(
    from: &str,
    to: &str,
    cfg: &crate::config::Config,
    clock: &Arc<dyn Clock>,
) -> Result<()> {
    if from == to {
        bail!("--from and --to name the same database");
    }
    let source = crate::open_url(from, cfg).await?;
    let target = crate::open_url(to, cfg).await?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:<20} {bar:40} {pos}/{len} rows {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let now = coproduce_core::unix_millis(clock.now());
    let copied = source
        .copy_into(&target, now, |table, done, total| {
            if bar.message() != table {
                bar.set_message(table.to_string());
                bar.set_length(total);
            }
            bar.set_position(done);
        })
        .await;
    bar.finish_and_clear();
    close(&source, &target).await;
    let report = copied.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "copied {} into {}:",
        coproduce_store::redact(from),
        coproduce_store::redact(to)
    );
    for (table, rows) in &report.tables {
        println!("  {table:<20} {rows:>10} rows, the same on both sides");
    }
    println!(
        "{} sign-in sessions left behind (everyone signs in again); the audit trail is intact: {} rows, the copy's own the last",
        report.sessions_left, report.audit_rows
    );
    Ok(())
}

async fn close(a: &Store, b: &Store) {
    a.close().await;
    b.close().await;
}
