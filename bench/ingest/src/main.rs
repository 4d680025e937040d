//! `bench/ingest`: how close `coproduce import` comes to the physical limit of reading the
//! same data. Builds (or takes) an NDJSON file of at least a million resources, times serde
//! parse-only of it, then `coproduce import` of it into a fresh SQLite database, in the same
//! run, and prints both rates, their ratio and the import's peak RSS.
//!
//!     cargo build --release --workspace && target/release/bench-ingest [FILE.ndjson]

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TARGET: usize = 1_000_000;

#[derive(clap::Parser, Debug)]
#[command(about = "coproduce import against serde parse-only of the same NDJSON file")]
struct Args {
    /// The NDJSON file (default: a synthetic one of a million resources, built once in the
    /// temporary folder).
    file: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = <Args as clap::Parser>::parse();
    let dir = std::env::temp_dir().join("coproduce-bench-ingest");
    std::fs::create_dir_all(&dir)?;
    let file = match args.file {
        Some(f) => f,
        None => {
            let f = dir.join("synthetic-1m.ndjson");
            if !f.exists() {
                build_file(&f)?;
            }
            f
        }
    };
    let bin = std::env::current_exe()?.with_file_name("coproduce");
    if !bin.exists() {
        bail!(
            "{} is missing: run `cargo build --release` first",
            bin.display()
        );
    }
    let size = std::fs::metadata(&file)?.len();
    println!(
        "file: {} ({:.0} MiB)",
        file.display(),
        size as f64 / 1048576.0
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Baseline: parse every line into a serde_json::Value, nothing else.
    let t = Instant::now();
    let mut n = 0usize;
    for line in BufReader::with_capacity(1 << 20, File::open(&file)?).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            let v: serde_json::Value = serde_json::from_str(&line)?;
            std::hint::black_box(&v);
            n += 1;
        }
    }
    let parse_secs = t.elapsed().as_secs_f64();
    let parse_rate = n as f64 / parse_secs;
    println!("parse-only: {n} resources in {parse_secs:.1} s = {parse_rate:.0} resources/s");

    // The import, into a fresh database.
    let db = dir.join("bench.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let t = Instant::now();
    let mut child = Command::new(&bin)
        .arg("--db")
        .arg(format!("sqlite://{}", db.display()))
        .arg("import")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting coproduce import")?;
    let pid = child.id();
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(hwm) = vm_hwm_kib(pid) {
            peak_kib = peak_kib.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let import_secs = t.elapsed().as_secs_f64();
    let mut report = String::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut report)?;
    }
    if !status.success() {
        bail!("import failed:\n{report}");
    }
    let import_rate = n as f64 / import_secs;
    println!("import: {n} resources in {import_secs:.1} s = {import_rate:.0} resources/s");
    println!(
        "ratio import/parse-only: {:.3} ({:.1}%)",
        import_rate / parse_rate,
        100.0 * import_rate / parse_rate
    );
    println!(
        "import peak RSS: {:.0} MiB (file {:.0} MiB)",
        peak_kib as f64 / 1024.0,
        size as f64 / 1048576.0
    );
    Ok(())
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Writes at least a million resources of the demo population (patients, conditions,
/// readings, encounters), with ids made unique per block.
/// The day the generated records are dated from (a fixed one: the file is the same every run).
const DAY: time::Date = time::macros::date!(2026 - 11 - 28);

fn build_file(path: &Path) -> Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    let mut written = 0usize;
    let mut block = 0u64;
    while written < TARGET {
        let resources = coproduce_app::demo::population(5000, block, DAY);
        for mut r in resources {
            if let Some(id) = r["id"].as_str() {
                r["id"] = serde_json::Value::String(format!("b{block}-{id}"));
            }
            rewrite_refs(&mut r, block);
            serde_json::to_writer(&mut w, &r)?;
            w.write_all(b"\n")?;
            written += 1;
        }
        block += 1;
    }
    w.flush()?;
    println!("built {written} resources into {}", path.display());
    Ok(())
}

fn rewrite_refs(v: &mut serde_json::Value, block: u64) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if k == "reference" {
                    if let Some((t, id)) = child.as_str().and_then(|s| s.split_once('/')) {
                        *child = serde_json::Value::String(format!("{t}/b{block}-{id}"));
                    }
                } else {
                    rewrite_refs(child, block);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|c| rewrite_refs(c, block)),
        _ => {}
    }
}
