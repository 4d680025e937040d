//! The `import` and `export` commands: files and folders in, NDJSON per type out.

use anyhow::{Context, Result};
use coproduce_app::{Importer, Store};
use coproduce_core::Clock;
use coproduce_fhir::stream::{SourceItem, for_each_file_item, ndjson_items};
use coproduce_fhir::{OperationOutcome, Resource, parse_resource_value};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Every importable file under the given paths, in a stable order.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading the folder {}", p.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            entries.sort();
            let (dirs, plain): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.is_dir());
            out.extend(plain.into_iter().filter(|f| is_fhir_file(f)));
            out.extend(files(&dirs)?);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{} does not exist", p.display());
        }
    }
    Ok(out)
}

fn is_fhir_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("json" | "ndjson")
    )
}

/// Imports; prints a summary per type and every rejection. Returns false if anything was
/// rejected.
///
/// Two stages run side by side: a reader thread parses and validates (files stream entry by
/// entry, so memory stays flat), and the writer stores batches.
pub async fn run(store: Store, clock: Arc<dyn Clock>, paths: &[PathBuf]) -> Result<bool> {
    let files = files(paths)?;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Checked>(4096);
    let reader_bar = bar.clone();
    let file_list = files.clone();
    let reader = std::thread::spawn(move || read_files(&file_list, &tx, &reader_bar));
    let mut importer = Importer::new(store, clock, "cli:import");
    let mut seen: u64 = 0;
    while let Some(checked) = rx.recv().await {
        importer
            .add_checked(checked.location, checked.skipped, checked.resource)
            .await?;
        seen += 1;
        if seen.is_multiple_of(1000) {
            progress(&bar, seen, started);
        }
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the file reader failed"))??;
    let summary = importer.finish().await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9}",
        "type", "created", "updated", "unchanged", "rejected"
    );
    for (rt, c) in &summary.by_type {
        println!(
            "{rt:<28} {:>9} {:>9} {:>9} {:>9}",
            c.created, c.updated, c.unchanged, c.rejected
        );
    }
    let t = summary.total();
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9}",
        "total",
        t.created,
        t.updated,
        t.unchanged,
        summary.rejected.len()
    );
    println!(
        "{} files, {seen} resources in {secs:.1} s ({:.0} resources/s)",
        files.len(),
        seen as f64 / secs.max(1e-9)
    );
    if !summary.skipped.is_empty() {
        println!(
            "skipped {} nested Bundles (their resources are imported from the outer Bundle)",
            summary.skipped.len()
        );
    }
    for (loc, why) in &summary.rejected {
        println!("rejected {loc}: {why}");
    }
    Ok(summary.rejected.is_empty())
}

/// One item, read and validated.
struct Checked {
    location: String,
    skipped: Option<String>,
    resource: Result<Resource, OperationOutcome>,
}

fn check(item: SourceItem) -> Checked {
    Checked {
        location: item.location,
        resource: if item.skipped.is_some() {
            Err(OperationOutcome::default())
        } else {
            item.resource.and_then(parse_resource_value)
        },
        skipped: item.skipped,
    }
}

/// The reader stage: every item of every file, validated, in order.
fn read_files(
    files: &[PathBuf],
    tx: &tokio::sync::mpsc::Sender<Checked>,
    bar: &ProgressBar,
) -> Result<()> {
    for file in files {
        let label = file.display().to_string();
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut closed = false;
        let mut send = |item: SourceItem| {
            if !closed && tx.blocking_send(check(item)).is_err() {
                closed = true; // the writer stopped (it failed); its error is reported
            }
        };
        if file.extension().and_then(|e| e.to_str()) == Some("ndjson") {
            let reader = BufReader::with_capacity(
                1 << 20,
                File::open(file).with_context(|| format!("opening {label}"))?,
            );
            ndjson_items(reader, &label).for_each(&mut send);
        } else {
            for_each_file_item(|| File::open(file), &label, &mut send);
        }
        if closed {
            return Ok(());
        }
        bar.inc(size);
    }
    Ok(())
}

fn progress(bar: &ProgressBar, seen: u64, started: Instant) {
    let rate = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
    bar.set_message(format!("{seen} resources, {rate:.0}/s"));
}

pub async fn export(
    store: &Store,
    clock: &Arc<dyn Clock>,
    out: &Path,
    types: &[String],
    since: Option<&str>,
) -> Result<()> {
    let since_ms = match since {
        Some(s) => Some(
            coproduce_fhir::primitives::date_range_millis(s)
                .with_context(|| format!("'{s}' is not a FHIR instant or date"))?
                .0,
        ),
        None => None,
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let types = if types.is_empty() {
        store.resource_types().await?
    } else {
        types.to_vec()
    };
    for rt in &types {
        coproduce_fhir::ResourceType::parse(rt).map_err(|e| anyhow::anyhow!("{e}"))?;
        let path = out.join(format!("{rt}.ndjson"));
        let mut w = BufWriter::new(
            File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        let mut after: Option<String> = None;
        let mut n = 0u64;
        loop {
            let page = store
                .export_page(rt, since_ms, after.as_deref(), 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for s in &page {
                w.write_all(s.content.as_deref().unwrap_or("").as_bytes())?;
                w.write_all(b"\n")?;
                n += 1;
            }
        }
        w.flush()?;
        store
            .audit(&coproduce_store::AuditEntry {
                at: coproduce_core::unix_millis(clock.now()),
                actor: "cli:export".into(),
                action: "export".into(),
                resource_type: Some(rt.clone()),
                outcome: "allowed".into(),
                detail: Some(format!("{n} resources to {}", path.display())),
                ..Default::default()
            })
            .await?;
        println!("{rt}: {n} resources -> {}", path.display());
    }
    Ok(())
}
