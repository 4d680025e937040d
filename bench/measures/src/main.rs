//! CMS122 and CMS165 in coproduce against fqm-execution, the reference JavaScript engine, on
//! the same population: the official test patients replicated (ids rewritten exactly as the
//! reference runner does) to N patients. Checks that every patient's populations are the
//! same in both, and prints both rates and the ratio. Then generates a synthetic population
//! into a fresh SQLite store (`coproduce generate`) and evaluates it through `coproduce
//! measure`, printing patients/s and the command's peak RSS; then the partnership's
//! scorecard over the same store (`coproduce partnership`), with its rate as a ratio of
//! CMS122's.
//!
//! Run: `cargo build --release --workspace && target/release/bench-measures [--n 10000]
//! [--store-n 100000] [--skip-fqm]`. Needs Node and npm (the runner's `npm install` of
//! fqm-execution 1.8.6 happens in a temporary copy of `bench/measures/fqm-runner`). The test
//! patients are `testdata/ecqm`; the measure bundles are the ones the build carries.

use anyhow::{Context, Result, bail};
use coproduce_measures::cms122::Cms122;
use coproduce_measures::cms165::Cms165;
use coproduce_measures::{MeasureBundle, PatientRecord, Populations};
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use time::macros::date;

#[derive(clap::Parser, Debug)]
#[command(about = "CMS122 and CMS165 in coproduce against fqm-execution on the same population")]
struct Args {
    /// Patients of the side-by-side run (the official test patients replicated).
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Patients of the synthetic store that `coproduce measure` evaluates.
    #[arg(long, default_value_t = 100_000)]
    store_n: usize,
    /// Leave out the reference engine (no Node needed).
    #[arg(long)]
    skip_fqm: bool,
}

fn ecqm() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ecqm")
}

/// A folder as the reference runner reads a measure: `measure-bundle.json` (the carried
/// bundle, written out) and `tests/` (the test patients).
fn runner_measure_dir(name: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let text = coproduce_measures::official::bundle_text(name)
        .with_context(|| format!("{name} is not carried"))??;
    std::fs::write(dir.path().join("measure-bundle.json"), text)?;
    std::os::unix::fs::symlink(
        ecqm().join(name).join("tests").canonicalize()?,
        dir.path().join("tests"),
    )?;
    Ok(dir)
}

fn read(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

/// The test cases of a measure, as the runner reads them: files sorted by name, each the
/// resources other than the nested Bundle and the expected MeasureReport.
fn test_cases(dir: &Path) -> Result<Vec<Vec<Value>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("tests"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let b = read(f)?;
            Ok(b["entry"]
                .as_array()
                .map(|es| {
                    es.iter()
                        .map(|e| e["resource"].clone())
                        .filter(|r| {
                            !matches!(r["resourceType"].as_str(), Some("Bundle" | "MeasureReport"))
                        })
                        .collect()
                })
                .unwrap_or_default())
        })
        .collect()
}

/// Copy `k` of a test case: every resource id gets `-r{k}`, and so does every reference to
/// one of them (the runner's `replicate`).
fn replicate(case: &[Value], k: usize) -> Vec<Value> {
    if k == 0 {
        return case.to_vec();
    }
    let suffix = format!("-r{k}");
    let ids: HashSet<String> = case
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            )
        })
        .collect();
    fn walk(v: &Value, root: bool, ids: &HashSet<String>, suffix: &str) -> Value {
        match v {
            Value::Array(a) => {
                Value::Array(a.iter().map(|x| walk(x, false, ids, suffix)).collect())
            }
            Value::Object(o) => {
                let mut out = Map::new();
                for (key, x) in o {
                    let new = match (key.as_str(), x) {
                        ("id", Value::String(s)) if root => Value::String(format!("{s}{suffix}")),
                        ("reference", Value::String(s)) if ids.contains(s) => {
                            Value::String(format!("{s}{suffix}"))
                        }
                        _ => walk(x, false, ids, suffix),
                    };
                    out.insert(key.clone(), new);
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
    case.iter().map(|r| walk(r, true, &ids, &suffix)).collect()
}

fn population(cases: &[Vec<Value>], n: usize) -> Vec<Vec<Value>> {
    (0..n)
        .map(|i| replicate(&cases[i % cases.len()], i / cases.len()))
        .collect()
}

type Evaluate = Box<dyn Fn(&PatientRecord) -> Populations + Sync>;

fn evaluator(name: &str, bundle: &MeasureBundle) -> Evaluate {
    let (start, end) = (date!(2026 - 01 - 01), date!(2026 - 12 - 31));
    if name == "CMS122" {
        let m = Cms122::new(bundle, start, end);
        Box::new(move |r| m.populations(r))
    } else {
        let m = Cms165::new(bundle, start, end);
        Box::new(move |r| m.populations(r))
    }
}

fn pops_map(p: &Populations) -> HashMap<&'static str, u64> {
    HashMap::from([
        ("initial-population", u64::from(p.initial_population)),
        ("denominator", u64::from(p.denominator)),
        ("denominator-exclusion", u64::from(p.denominator_exclusion)),
        ("numerator", u64::from(p.numerator)),
    ])
}

/// Each patient's populations, by population code.
type ByPatient = HashMap<String, HashMap<String, u64>>;

/// Runs the reference runner; returns (patients/s, per-patient populations).
fn fqm(runner: &Path, dir: &Path, n: usize) -> Result<(f64, ByPatient)> {
    let json = runner.join(format!(
        "fqm-{}.json",
        dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    let out = Command::new("node")
        .current_dir(runner)
        .arg("run.js")
        .arg(dir)
        .args([
            "--quiet",
            "--raw",
            "--n",
            &n.to_string(),
            "--batch",
            "1000",
            "--json",
        ])
        .arg(&json)
        .output()
        .context("running node run.js")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rate = text
        .lines()
        .find_map(|l| l.split("patients/s (calculate only): ").nth(1))
        .and_then(|s| s.split(';').next())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .with_context(|| {
            format!(
                "the runner printed no rate:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    for l in text
        .lines()
        .filter(|l| l.starts_with("matched") || l.starts_with("population totals"))
    {
        println!("  fqm-execution {l}");
    }
    let results = read(&json)?;
    let mut by_patient = HashMap::new();
    for r in results.as_array().into_iter().flatten() {
        let id = r["patientId"].as_str().unwrap_or("").to_string();
        let pops = r["actual"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        by_patient.insert(id, pops);
    }
    Ok((rate, by_patient))
}

fn runner_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for f in ["run.js", "package.json"] {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(here.join("fqm-runner").join(f), dir.path().join(f))?;
    }
    let status = Command::new("npm")
        .current_dir(dir.path())
        .args(["install", "--no-audit", "--no-fund", "--silent"])
        .status()
        .context("npm install (fqm-execution)")?;
    if !status.success() {
        bail!("npm install of fqm-execution failed");
    }
    Ok(dir)
}

fn peak_rss_of(child: &mut std::process::Child) -> Result<(u64, std::process::ExitStatus)> {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if let Some(st) = child.try_wait()? {
            return Ok((peak, st));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn main() -> Result<()> {
    let a = <Args as clap::Parser>::parse();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "machine: {cores} cores; population: {} replicated test patients per measure",
        a.n
    );
    let runner = if a.skip_fqm {
        None
    } else {
        Some(runner_dir()?)
    };
    for name in ["CMS122", "CMS165"] {
        let dir = ecqm().join(name);
        let bundle: MeasureBundle = coproduce_measures::official::bundle(name)
            .with_context(|| format!("{name} is not carried"))??;
        let eval = evaluator(name, &bundle);
        let cases = test_cases(&dir)?;
        let patients: Vec<PatientRecord> = population(&cases, a.n)
            .into_iter()
            .map(PatientRecord::from_serde)
            .collect();
        // Repeat until at least two seconds have passed, for a stable figure.
        let (mut runs, started) = (0u32, Instant::now());
        let mut ours = Vec::new();
        while started.elapsed().as_secs_f64() < 2.0 {
            ours = patients
                .par_iter()
                .map(|p| (p.id().to_string(), eval(p)))
                .collect();
            runs += 1;
        }
        let rate = f64::from(runs) * a.n as f64 / started.elapsed().as_secs_f64();
        let one = Instant::now();
        for p in &patients {
            std::hint::black_box(eval(p));
        }
        let one_core = a.n as f64 / one.elapsed().as_secs_f64();
        println!("{name}:");
        println!("  coproduce: {rate:.0} patients/s on {cores} cores, {one_core:.0} on one core");
        if let Some(runner) = &runner {
            let measure_dir = runner_measure_dir(name)?;
            let (fqm_rate, theirs) = fqm(runner.path(), measure_dir.path(), a.n)?;
            let mut differ = 0;
            for (id, p) in &ours {
                let mine = pops_map(p);
                let same = theirs.get(id).is_some_and(|t| {
                    mine.iter()
                        .all(|(k, v)| t.get(*k).copied().unwrap_or(0) == *v)
                });
                if !same {
                    differ += 1;
                    if differ <= 5 {
                        println!(
                            "  differs: {id}: coproduce {mine:?}, fqm-execution {:?}",
                            theirs.get(id)
                        );
                    }
                }
            }
            println!(
                "  fqm-execution (raw mode): {fqm_rate:.1} patients/s; per-patient results identical for {} of {}",
                ours.len() - differ,
                ours.len()
            );
            println!(
                "  ratio coproduce / fqm-execution: {:.0}x ({cores} cores), {:.0}x (one core against its one thread)",
                rate / fqm_rate,
                one_core / fqm_rate
            );
        }
    }
    if a.store_n > 0 {
        from_store(a.store_n)?;
    }
    Ok(())
}

/// Runs `coproduce` with `args`; its stdout, and its peak RSS in KiB.
fn run_measured(exe: &Path, args: &[&str]) -> Result<(String, u64)> {
    let mut child = Command::new(exe)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let (peak_kb, status) = peak_rss_of(&mut child)?;
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        use std::io::Read;
        s.read_to_string(&mut out)?;
    }
    if !status.success() {
        bail!("coproduce {} failed:\n{out}", args.join(" "));
    }
    Ok((out, peak_kb))
}

/// `n` synthetic patients (`coproduce generate`, seed 1) straight into a fresh SQLite store,
/// then `coproduce measure` for CMS122 and CMS165 over them, twice each (the first run
/// reads a cold cache). Prints the generator's rate, each run's patients/s (the run's own
/// figure, and end to end from process start) and peak RSS.
fn from_store(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?
        .parent()
        .map(|p| p.join("coproduce"))
        .context("the coproduce binary beside this one")?;
    let db = format!("sqlite://{}", dir.path().join("store.db").display());
    let started = Instant::now();
    let (out, peak_kb) = run_measured(
        &exe,
        &["--db", &db, "generate", "--patients", &n.to_string()],
    )?;
    let secs = started.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "store: {} ({:.0} patients/s into the store, peak RSS {} MiB, {:.1} GB on disk, {:.1} KB per patient)",
        out.lines().last().unwrap_or("").trim(),
        n as f64 / secs,
        peak_kb / 1024,
        bytes as f64 / 1e9,
        bytes as f64 / 1e3 / n as f64
    );
    let mut medians = HashMap::new();
    for name in ["CMS122", "CMS165"] {
        // A first run reads a cold cache; then five, of which the median is the figure (the
        // machine is shared, and one run can be slowed by another's work).
        let mut warm = Vec::new();
        for pass in 0..6 {
            let started = Instant::now();
            let (out, peak_kb) = run_measured(
                &exe,
                &[
                    "--db",
                    &db,
                    "measure",
                    &name.to_lowercase(),
                    "--period",
                    "2026",
                ],
            )?;
            let secs = started.elapsed().as_secs_f64();
            let own: f64 = out
                .lines()
                .find_map(|l| l.trim().strip_suffix(" patients/s"))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .context("the run printed no rate")?;
            println!(
                "store: {name} over {n} synthetic patients, run {}{}: {own:.0} patients/s (the run), {:.0} end to end (process start to exit), peak RSS {} MiB",
                pass + 1,
                if pass == 0 { " (cold cache)" } else { "" },
                n as f64 / secs,
                peak_kb / 1024
            );
            if pass > 0 {
                warm.push(own);
            }
        }
        warm.sort_by(f64::total_cmp);
        println!(
            "store: {name}: median of the five warm runs {:.0} patients/s",
            warm[warm.len() / 2]
        );
        medians.insert(name, warm[warm.len() / 2]);
    }
    // The partnership's scorecard over the same store (its year, every breakdown's source
    // read once), against CMS122 run the same way just before.
    let csv = dir.path().join("partnership.csv");
    let mut warm = Vec::new();
    for pass in 0..6 {
        let (out, peak_kb) = run_measured(
            &exe,
            &[
                "--db",
                &db,
                "partnership",
                "--from",
                "2026-01-01",
                "--to",
                "2026-12-31",
                "--out",
                &csv.display().to_string(),
            ],
        )?;
        let line = out
            .lines()
            .find(|l| l.starts_with("the store's promises"))
            .context("the scorecard printed no figures")?;
        let own: f64 = line
            .trim()
            .strip_suffix(" patients/s)")
            .and_then(|l| l.rsplit('(').next())
            .and_then(|v| v.parse().ok())
            .context("the scorecard printed no rate")?;
        println!(
            "store: partnership scorecard, run {}{}: {line}, peak RSS {} MiB",
            pass + 1,
            if pass == 0 { " (cold cache)" } else { "" },
            peak_kb / 1024
        );
        if pass > 0 {
            warm.push(own);
        }
    }
    warm.sort_by(f64::total_cmp);
    let partnership = warm[warm.len() / 2];
    let cms122 = medians.get("CMS122").copied().unwrap_or(f64::NAN);
    println!(
        "store: partnership scorecard: median of the five warm runs {partnership:.0} patients/s, {:.2}x CMS122's {cms122:.0}",
        partnership / cms122
    );
    Ok(())
}
