//! `coproduce measure`: a population measure over the whole store, with a progress bar, a
//! printed summary, a FHIR MeasureReport and, on request, a per-patient CSV file.

use anyhow::{Context, Result, bail};
use coproduce_app::Store;
use coproduce_app::measures::{Measure, SubjectLists, measure_report, run};
use coproduce_core::Clock;
use coproduce_measures::MeasureBundle;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::Date;

/// The options of `coproduce measure`.
#[derive(Debug, clap::Args)]
pub struct MeasureArgs {
    /// cms122 or cms165, or AHRQ's pqi01 or pqi05.
    pub measure: String,
    /// A measure bundle (Measure, Libraries, ValueSets) to use instead of the official one
    /// this build carries, e.g. a newer edition.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// The measurement year (January to December, UTC).
    #[arg(long)]
    pub period: i32,
    /// Write the FHIR MeasureReport here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --out: a subject-list report, naming each population's patients.
    #[arg(long)]
    pub subject_list: bool,
    /// Write one row per patient (populations and the records that decided them) here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

fn year(y: i32) -> Result<(Date, Date)> {
    let start = Date::from_calendar_date(y, time::Month::January, 1)
        .with_context(|| format!("{y} is not a year"))?;
    let end = Date::from_calendar_date(y, time::Month::December, 31)
        .with_context(|| format!("{y} is not a year"))?;
    Ok((start, end))
}

/// The official bundle of a measure this build carries.
pub fn carried_bundle(measure: &str) -> Result<MeasureBundle> {
    match coproduce_measures::official::bundle(measure) {
        Some(b) => Ok(b?),
        None => bail!(
            "this build carries the measures {}; '{measure}' is not one of them",
            coproduce_measures::official::NAMES.join(" and ")
        ),
    }
}

pub fn load_bundle(path: &Path) -> Result<MeasureBundle> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the measure bundle {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(MeasureBundle::from_json(&json)?)
}

pub async fn measure(store: &Store, clock: &Arc<dyn Clock>, args: MeasureArgs) -> Result<()> {
    let (start, end) = year(args.period)?;
    if let Some(indicator) = coproduce_measures::pqi::Indicator::parse(&args.measure) {
        return prevention_indicator(store, clock, &args, indicator, start, end).await;
    }
    let bundle = match &args.bundle {
        Some(path) => load_bundle(path)?,
        None => carried_bundle(&args.measure)?,
    };
    let m = Arc::new(Measure::new(&args.measure, &bundle, start, end)?);
    if args.subject_list && args.out.is_none() {
        bail!("--subject-list needs --out FILE for the report");
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg}{bar:40} {pos}/{len} patients {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Once after an upgrade (or a change of what measures read): the per-patient measure
    // projection is rebuilt from the resources, which takes a while on a large store.
    bar.set_message("rebuilding the measure projection ");
    let rebuilt = store
        .ensure_patient_records(|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
    if rebuilt > 0 {
        bar.println(format!(
            "rebuilt the measure projection of {rebuilt} patients"
        ));
    }
    bar.set_message("");
    bar.set_position(0);
    // Counted from the projection (a short row per live patient): counting Patient rows in
    // `resources` reads a page of JSON per patient, 11 s warm for a million.
    bar.set_length(store.count_patient_records().await?);
    let mut csv = match &args.csv {
        Some(p) => {
            let mut w =
                csv::Writer::from_path(p).with_context(|| format!("creating {}", p.display()))?;
            w.write_record([
                "patient",
                "initial_population",
                "denominator",
                "denominator_exclusion",
                "numerator",
                "evidence",
            ])?;
            Some(w)
        }
        None => None,
    };
    let mut lists = args.subject_list.then(SubjectLists::default);
    let mut csv_error = None;
    let started = std::time::Instant::now();
    let counts = run(
        store,
        clock,
        "cli:measure",
        m.clone(),
        |r| {
            if let Some(l) = lists.as_mut() {
                l.add(r);
            }
            if let Some(w) = csv.as_mut() {
                let p = r.populations;
                let flag = |b: bool| if b { "1" } else { "0" };
                let evidence: Vec<String> = r
                    .evidence
                    .iter()
                    .map(|(pop, what)| format!("{pop}: {what}"))
                    .collect();
                let evidence = evidence.join("; ");
                let row = [
                    r.patient.as_str(),
                    flag(p.initial_population),
                    flag(p.denominator),
                    flag(p.denominator_exclusion),
                    flag(p.numerator),
                    &evidence,
                ]
                .map(coproduce_app::spreadsheet::safe_cell);
                if let Err(e) = w.write_record(row.iter().map(|c| c.as_ref())) {
                    csv_error.get_or_insert(e);
                }
            }
        },
        |done| bar.set_position(done),
    )
    .await?;
    bar.finish_and_clear();
    if let Some(e) = csv_error {
        return Err(e).context("writing the per-patient CSV");
    }
    if let Some(mut w) = csv {
        w.flush()?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{} ({} to {}, UTC)", m.title(), start, end);
    println!(
        "  patients {}   initial population {}   denominator {}   exclusions {}   numerator {}",
        counts.patients,
        counts.initial_population,
        counts.denominator,
        counts.denominator_exclusion,
        counts.numerator
    );
    match (counts.rate(), counts.interval()) {
        (Some(rate), Some((lo, hi))) => println!(
            "  performance rate {:.1}% (95% CI {:.1}% to {:.1}%){}",
            rate * 100.0,
            lo * 100.0,
            hi * 100.0,
            if m.inverse() {
                "; lower is better"
            } else {
                "; higher is better"
            }
        ),
        _ => println!("  performance rate: none (no one in the denominator after exclusions)"),
    }
    println!(
        "  {:.1} s, {:.0} patients/s",
        secs,
        counts.patients as f64 / secs.max(1e-9)
    );
    if let Some(out) = &args.out {
        let report = measure_report(
            &bundle.measure_url,
            &counts,
            start,
            end,
            clock.now(),
            lists.as_ref(),
        );
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
        println!("  wrote the MeasureReport to {}", out.display());
    }
    if let Some(p) = &args.csv {
        println!("  wrote one row per patient to {}", p.display());
    }
    Ok(())
}

/// An AHRQ Prevention Quality Indicator: qualifying discharges over patient-years in the age
/// band, per 100,000, with the discharges that counted in the CSV and a summary MeasureReport.
async fn prevention_indicator(
    store: &Store,
    clock: &Arc<dyn Clock>,
    args: &MeasureArgs,
    indicator: coproduce_measures::pqi::Indicator,
    start: Date,
    end: Date,
) -> Result<()> {
    if args.bundle.is_some() || args.subject_list {
        bail!(
            "{} is computed from AHRQ's code sets this build carries: --bundle and --subject-list do not apply",
            indicator.as_str()
        );
    }
    let bar = ProgressBar::new(store.count_patient_records().await?);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} patients {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let (t, patients) = coproduce_app::measures::pqi::pqi(
        store,
        clock,
        "cli:measure",
        indicator,
        start,
        end,
        |done| bar.set_position(done),
    )
    .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!("{} ({} to {}, UTC)", indicator.title(), start, end);
    println!(
        "  patients aged {}+ {}   patient-years {:.1}   qualifying discharges {}",
        indicator.min_age(),
        t.patients,
        t.patient_years,
        t.discharges
    );
    println!(
        "  kept out: too young {}   transfers in {}   cystic fibrosis or respiratory anomaly {}",
        t.too_young, t.transfers_in, t.respiratory_anomaly
    );
    match (t.rate_per_100k(), t.interval_per_100k()) {
        (Some(rate), Some((lo, hi))) => println!(
            "  rate {rate:.1} per 100,000 patient-years (95% CI {lo:.1} to {hi:.1}); lower is better"
        ),
        _ => println!("  rate: none (no patient-time in the age band)"),
    }
    println!(
        "  {secs:.1} s, {:.0} patients/s",
        patients as f64 / secs.max(1e-9)
    );
    if let Some(p) = &args.csv {
        let mut w =
            csv::Writer::from_path(p).with_context(|| format!("creating {}", p.display()))?;
        w.write_record(["patient", "encounter"])?;
        for (patient, encounter) in &t.counted {
            let row =
                [patient.as_str(), encounter.as_str()].map(coproduce_app::spreadsheet::safe_cell);
            w.write_record(row.iter().map(|c| c.as_ref()))?;
        }
        w.flush()?;
        println!(
            "  wrote the {} qualifying discharges to {}",
            t.discharges,
            p.display()
        );
    }
    if let Some(out) = &args.out {
        let report = pqi_report(&t, clock.now());
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
        println!("  wrote the MeasureReport to {}", out.display());
    }
    Ok(())
}

/// A summary MeasureReport of an indicator: the numerator is the qualifying discharges, the
/// denominator the patients with time in the age band; the score is the rate per 100,000
/// patient-years (our adaptation of AHRQ's census denominator).
fn pqi_report(t: &coproduce_measures::pqi::Tally, now: time::OffsetDateTime) -> serde_json::Value {
    let population = |code: &str, count: u64| {
        serde_json::json!({
            "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": code}]},
            "count": count,
        })
    };
    let mut group = serde_json::json!({
        "population": [population("denominator", t.patients), population("numerator", t.discharges)],
    });
    if let Some(rate) = t.rate_per_100k() {
        group["measureScore"] = serde_json::json!({
            "value": (rate * 10.0).round() / 10.0,
            "unit": "per 100,000 patient-years",
        });
    }
    serde_json::json!({
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": format!("https://coproduce.health/fhir/Measure/ahrq-{}", t.indicator.as_str()),
        "date": coproduce_store::Stored::instant(now),
        "period": {"start": t.start.to_string(), "end": t.end.to_string()},
        "improvementNotation": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation", "code": "decrease"}]},
        "group": [group],
    })
}
