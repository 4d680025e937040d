//! Population measures over the store: patients are read in batches (each with every
//! resource in their compartment), evaluated in parallel with rayon while the next batch is
//! read, and only counts are kept, so memory stays flat in the population's size. The
//! measure logic is `coproduce-measures`'; this module feeds it and reports.

use crate::error::AppError;
use coproduce_core::{Clock, unix_millis};
use coproduce_measures::cms122::Cms122;
use coproduce_measures::cms165::Cms165;
use coproduce_measures::{MeasureBundle, PatientRecord, PatientResult, projection};
use coproduce_store::{AuditEntry, Store, Stored};
use rayon::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use time::Date;

// The program evaluation (matched comparison), the value report (cost), and the synthetic
// population the benchmarks and the demo stream.
pub mod evaluation;
pub mod pqi;
pub mod synthetic;
pub mod value;

/// Patients per batch read from the store.
pub const BATCH: usize = 2_000;

/// Calls `each` with every patient's resources (as JSON), reading the store in batches so
/// memory stays flat; returns how many patients there were. A stored resource that is not
/// JSON is an error, not a gap in the data.
pub(crate) async fn each_patient(
    store: &Store,
    mut each: impl FnMut(Vec<Value>),
) -> Result<u64, AppError> {
    let mut after: Option<String> = None;
    let mut patients = 0;
    loop {
        let batch = store.patient_batch(after.as_deref(), BATCH).await?;
        let Some((last, _)) = batch.last() else {
            return Ok(patients);
        };
        after = Some(last.clone());
        for (_, resources) in batch {
            let values = resources
                .iter()
                .map(Stored::json)
                .collect::<Result<Vec<Value>, _>>()?;
            each(values);
            patients += 1;
        }
    }
}

/// The one audit row of a population run (a measure, an evaluation, utilisation).
pub(crate) async fn audit_run(
    store: &Store,
    clock: &Arc<dyn Clock>,
    actor: &str,
    action: &str,
    detail: String,
) -> Result<(), AppError> {
    store
        .audit(&AuditEntry {
            at: unix_millis(clock.now()),
            actor: actor.to_string(),
            action: action.to_string(),
            outcome: "allowed".into(),
            detail: Some(detail),
            ..AuditEntry::default()
        })
        .await?;
    Ok(())
}

/// A population of a proportion measure, by its FHIR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Population {
    Initial,
    Denominator,
    Exclusion,
    Numerator,
}

impl Population {
    pub const ALL: [Population; 4] = [
        Population::Initial,
        Population::Denominator,
        Population::Exclusion,
        Population::Numerator,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Population::Initial => "initial-population",
            Population::Denominator => "denominator",
            Population::Exclusion => "denominator-exclusion",
            Population::Numerator => "numerator",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Population::ALL.into_iter().find(|p| p.code() == code)
    }

    pub fn holds(self, p: &coproduce_measures::Populations) -> bool {
        match self {
            Population::Initial => p.initial_population,
            Population::Denominator => p.denominator,
            Population::Exclusion => p.denominator_exclusion,
            Population::Numerator => p.numerator,
        }
    }
}

/// A measure's counts for each of `years` (each a calendar-year measurement period, as the
/// eCQMs are reported), in one audited pass, for those who may see the population.
pub async fn by_year(
    api: &crate::FhirApi,
    caller: &crate::caller::Caller,
    name: &str,
    bundle: &MeasureBundle,
    years: std::ops::RangeInclusive<i32>,
) -> Result<Vec<(i32, Counts)>, AppError> {
    api.require_population_reach(caller, "measure").await?;
    let years: Vec<i32> = years.collect();
    let measures = years
        .iter()
        .map(|&y| {
            let (start, end) = calendar_year(y)?;
            Measure::new(name, bundle, start, end)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let title = measures.first().map_or("", |m| m.title());
    let counts = run_many(api.store(), Arc::new(measures.clone()), |_, _| {}, |_| {}).await?;
    let detail = format!(
        "{title}, by year: {}",
        years
            .iter()
            .zip(&counts)
            .map(|(y, c)| format!(
                "{y}: {} patients, {} in the denominator",
                c.patients, c.denominator
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    audit_run(api.store(), &api.clock(), &caller.label, "measure", detail).await?;
    Ok(years.into_iter().zip(counts).collect())
}

/// The patients in one population of a measure for a year, with the records that decided
/// it: the drill-down behind a count. Audited with every patient listed, so each patient's
/// own record of access shows it.
pub async fn patients_in(
    api: &crate::FhirApi,
    caller: &crate::caller::Caller,
    name: &str,
    bundle: &MeasureBundle,
    year: i32,
    population: Population,
) -> Result<Vec<PatientResult>, AppError> {
    api.require_population_reach(caller, "measure-patients")
        .await?;
    let (start, end) = calendar_year(year)?;
    let measure = Measure::new(name, bundle, start, end)?;
    let mut found = Vec::new();
    run_many(
        api.store(),
        Arc::new(vec![measure.clone()]),
        |_, r| {
            if population.holds(&r.populations) {
                found.push(r.clone());
            }
        },
        |_| {},
    )
    .await?;
    api.store()
        .audit(&AuditEntry {
            at: unix_millis(api.clock().now()),
            actor: caller.label.clone(),
            action: "measure-patients".into(),
            resource_type: Some("Patient".into()),
            patients: (!found.is_empty()).then(|| {
                found
                    .iter()
                    .map(|r| r.patient.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
            outcome: "allowed".into(),
            detail: Some(format!(
                "{}, {year}, {}: {} patients",
                measure.title(),
                population.code(),
                found.len()
            )),
            ..AuditEntry::default()
        })
        .await?;
    Ok(found)
}

fn calendar_year(year: i32) -> Result<(Date, Date), AppError> {
    let day = |m, d| {
        Date::from_calendar_date(year, m, d).map_err(|_| {
            AppError::Invalid(coproduce_fhir::OperationOutcome::message(
                coproduce_fhir::IssueCode::Value,
                format!("{year} is not a year that can be measured"),
            ))
        })
    };
    Ok((
        day(time::Month::January, 1)?,
        day(time::Month::December, 31)?,
    ))
}

/// A measure this build evaluates.
#[derive(Debug, Clone)]
pub enum Measure {
    Cms122(Box<Cms122>),
    Cms165(Box<Cms165>),
}

impl Measure {
    /// The measure `name` (cms122, cms165) from its official bundle, for a period.
    pub fn new(
        name: &str,
        bundle: &MeasureBundle,
        start: Date,
        end: Date,
    ) -> Result<Self, AppError> {
        match name.to_ascii_lowercase().as_str() {
            "cms122" => Ok(Measure::Cms122(Box::new(Cms122::new(bundle, start, end)))),
            "cms165" => Ok(Measure::Cms165(Box::new(Cms165::new(bundle, start, end)))),
            other => Err(AppError::NotFound(format!(
                "the measure {other} (this build has cms122 and cms165)"
            ))),
        }
    }

    pub fn evaluate(&self, r: &PatientRecord) -> PatientResult {
        match self {
            Measure::Cms122(m) => m.evaluate(r),
            Measure::Cms165(m) => m.evaluate(r),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Measure::Cms122(_) => "cms122",
            Measure::Cms165(_) => "cms165",
        }
    }

    pub fn title(&self) -> &'static str {
        Measure::title_of(self.name()).unwrap_or_default()
    }

    /// Whether a lower rate is better (CMS122 counts poor control).
    pub fn inverse(&self) -> bool {
        Measure::lower_is_better(self.name())
    }

    /// The title of the measure `name`, if this build has it (no bundle needed).
    pub fn title_of(name: &str) -> Option<&'static str> {
        match name.to_ascii_lowercase().as_str() {
            "cms122" => Some("CMS122 Diabetes: Glycemic Status Assessment Greater Than 9%"),
            "cms165" => Some("CMS165 Controlling High Blood Pressure"),
            _ => None,
        }
    }

    /// Whether a lower rate of the measure `name` is better.
    pub fn lower_is_better(name: &str) -> bool {
        name.eq_ignore_ascii_case("cms122")
    }
}

/// The counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub patients: u64,
    pub initial_population: u64,
    pub denominator: u64,
    pub denominator_exclusion: u64,
    pub numerator: u64,
}

impl Counts {
    /// The count of one population.
    pub fn of(&self, p: Population) -> u64 {
        match p {
            Population::Initial => self.initial_population,
            Population::Denominator => self.denominator,
            Population::Exclusion => self.denominator_exclusion,
            Population::Numerator => self.numerator,
        }
    }

    fn add(&mut self, r: &PatientResult) {
        let p = r.populations;
        self.patients += 1;
        self.initial_population += u64::from(p.initial_population);
        self.denominator += u64::from(p.denominator);
        self.denominator_exclusion += u64::from(p.denominator_exclusion);
        self.numerator += u64::from(p.numerator);
    }

    /// The performance rate: numerator over denominator less exclusions.
    pub fn rate(&self) -> Option<f64> {
        let n = self.denominator.checked_sub(self.denominator_exclusion)?;
        (n > 0).then(|| self.numerator as f64 / n as f64)
    }

    /// The Wilson score 95% interval of the rate.
    pub fn interval(&self) -> Option<(f64, f64)> {
        let n = (self.denominator - self.denominator_exclusion) as f64;
        let p = self.rate()?;
        let z = 1.959_963_984_540_054_f64;
        let denom = 1.0 + z * z / n;
        let centre = (p + z * z / (2.0 * n)) / denom;
        let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denom;
        Some(((centre - half).max(0.0), (centre + half).min(1.0)))
    }
}

/// A patient's record from their projection row; a row that cannot be read is an error,
/// not a gap in the data.
fn record_of(id: &str, stored: &[u8]) -> Result<PatientRecord, AppError> {
    projection::decode(stored)
        .and_then(PatientRecord::from_projection)
        .map_err(|e| {
            AppError::Internal(format!(
                "the measure record of Patient/{id} is unreadable: {e}"
            ))
        })
}

/// Medications a batch refers to by reference (they live outside patients' compartments),
/// added to the records that refer to them, as the measures read them.
async fn add_shared_medications(
    store: &Store,
    records: &mut [PatientRecord],
) -> Result<(), AppError> {
    let mut ids: Vec<String> = records
        .iter()
        .flat_map(PatientRecord::medication_references)
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    let found: Vec<Value> = store
        .shared_by_ids("Medication", &ids)
        .await?
        .iter()
        .map(Stored::json)
        .collect::<Result<Vec<_>, _>>()?;
    let shared: Vec<_> = found
        .iter()
        .map(|m| coproduce_measures::record::to_value(&projection::project(m)))
        .collect();
    for r in records
        .iter_mut()
        .filter(|r| !r.medication_references().is_empty())
    {
        r.extend(shared.iter().cloned());
    }
    Ok(())
}

/// A patient after the first pass of a batch.
enum Pass {
    Done(Vec<PatientResult>),
    NeedsShared(Box<PatientRecord>),
}

/// Every measure's result for one patient; an error if part of their record was unreadable.
fn evaluate_all(measures: &[Measure], r: &PatientRecord) -> Result<Vec<PatientResult>, AppError> {
    let results = measures.iter().map(|m| m.evaluate(r)).collect();
    match r.unreadable() {
        Some(why) => Err(AppError::Internal(format!(
            "the measure record of Patient/{} is unreadable: {why}",
            r.id()
        ))),
        None => Ok(results),
    }
}

/// Evaluates several measures (one measure over several periods, say) over every patient
/// in one pass of the store; the counts of each, in order. `each` sees every patient's
/// result with the index of its measure. Not audited: the caller audits what it shows.
pub async fn run_many(
    store: &Store,
    measures: Arc<Vec<Measure>>,
    mut each: impl FnMut(usize, &PatientResult),
    progress: impl Fn(u64),
) -> Result<Vec<Counts>, AppError> {
    let mut counts = vec![Counts::default(); measures.len()];
    let mut patients = 0;
    store.ensure_patient_records(|_, _| {}).await?;
    let mut batches = store.patient_record_batches(BATCH);
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        // One parallel pass reads and evaluates each patient; the few whose requests name a
        // shared Medication wait for it and are evaluated after.
        let ms = measures.clone();
        let passed = tokio::task::spawn_blocking(move || {
            batch
                .par_iter()
                .map(|(id, text)| {
                    let r = record_of(id, text)?;
                    if r.medication_references().is_empty() {
                        evaluate_all(&ms, &r).map(Pass::Done)
                    } else {
                        Ok(Pass::NeedsShared(Box::new(r)))
                    }
                })
                .collect::<Result<Vec<_>, AppError>>()
        })
        .await
        .map_err(|e| AppError::Internal(format!("evaluating a batch: {e}")))??;
        let mut results = Vec::with_capacity(passed.len());
        let (mut waiting, mut at) = (Vec::new(), Vec::new());
        for (k, p) in passed.into_iter().enumerate() {
            match p {
                Pass::Done(r) => results.push(r),
                Pass::NeedsShared(r) => {
                    waiting.push(*r);
                    at.push(k);
                    results.push(Vec::new());
                }
            }
        }
        if !waiting.is_empty() {
            add_shared_medications(store, &mut waiting).await?;
            for (r, k) in waiting.iter().zip(at) {
                results[k] = evaluate_all(&measures, r)?;
            }
        }
        for per_patient in &results {
            for (k, r) in per_patient.iter().enumerate() {
                counts[k].add(r);
                each(k, r);
            }
        }
        patients += results.len() as u64;
        progress(patients);
    }
    Ok(counts)
}

/// Evaluates a measure over every patient in the store. `each` sees every patient's result
/// (for a per-patient file or list), `progress` the number done so far. Audited as one
/// row for `actor`.
pub async fn run(
    store: &Store,
    clock: &Arc<dyn Clock>,
    actor: &str,
    measure: Arc<Measure>,
    mut each: impl FnMut(&PatientResult),
    progress: impl Fn(u64),
) -> Result<Counts, AppError> {
    let all = Arc::new(vec![(*measure).clone()]);
    let counts = run_many(store, all, |_, r| each(r), progress)
        .await?
        .pop()
        .unwrap_or_default();
    let detail = format!(
        "{}: {} patients, {} in the denominator",
        measure.title(),
        counts.patients,
        counts.denominator
    );
    audit_run(store, clock, actor, "measure", detail).await?;
    Ok(counts)
}

/// Lists of patients per population, for a subject-list report.
#[derive(Debug, Clone, Default)]
pub struct SubjectLists {
    pub initial_population: Vec<String>,
    pub denominator: Vec<String>,
    pub denominator_exclusion: Vec<String>,
    pub numerator: Vec<String>,
}

impl SubjectLists {
    pub fn add(&mut self, r: &PatientResult) {
        let p = r.populations;
        for (on, list) in [
            (p.initial_population, &mut self.initial_population),
            (p.denominator, &mut self.denominator),
            (p.denominator_exclusion, &mut self.denominator_exclusion),
            (p.numerator, &mut self.numerator),
        ] {
            if on {
                list.push(r.patient.clone());
            }
        }
    }
}

/// The FHIR MeasureReport of a run: a summary, or a subject list when `subjects` is given
/// (each population's patients in a contained List).
pub fn measure_report(
    measure_url: &str,
    counts: &Counts,
    start: Date,
    end: Date,
    now: time::OffsetDateTime,
    subjects: Option<&SubjectLists>,
) -> Value {
    let code = |c: &str| json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": c}]});
    let mut contained = Vec::new();
    let population = |c: &str, n: u64, list: Option<&Vec<String>>, contained: &mut Vec<Value>| {
        let mut p = json!({"code": code(c), "count": n});
        if let Some(ids) = list {
            let id = format!("{c}-subjects");
            let entries: Vec<Value> = ids
                .iter()
                .map(|i| json!({"item": {"reference": format!("Patient/{i}")}}))
                .collect();
            let mut l =
                json!({"resourceType": "List", "id": id, "status": "current", "mode": "snapshot"});
            if !entries.is_empty() {
                l["entry"] = json!(entries);
            }
            contained.push(l);
            p["subjectResults"] = json!({"reference": format!("#{id}")});
        }
        p
    };
    let pops = vec![
        population(
            "initial-population",
            counts.initial_population,
            subjects.map(|s| &s.initial_population),
            &mut contained,
        ),
        population(
            "denominator",
            counts.denominator,
            subjects.map(|s| &s.denominator),
            &mut contained,
        ),
        population(
            "denominator-exclusion",
            counts.denominator_exclusion,
            subjects.map(|s| &s.denominator_exclusion),
            &mut contained,
        ),
        population(
            "numerator",
            counts.numerator,
            subjects.map(|s| &s.numerator),
            &mut contained,
        ),
    ];
    let date = |d: Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    let mut group = json!({"population": pops});
    if let Some(rate) = counts.rate() {
        group["measureScore"] = json!({"value": (rate * 1_000_000.0).round() / 1_000_000.0});
    }
    let mut report = json!({
        "resourceType": "MeasureReport",
        "id": crate::fhir_api::new_id(),
        "status": "complete",
        "type": if subjects.is_some() { "subject-list" } else { "summary" },
        "measure": measure_url,
        "date": Stored::instant(now),
        "period": {"start": date(start), "end": date(end)},
        "group": [group],
    });
    if !contained.is_empty() {
        report["contained"] = json!(contained);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wilson_interval_brackets_the_rate() {
        let c = Counts {
            patients: 120,
            initial_population: 100,
            denominator: 100,
            denominator_exclusion: 20,
            numerator: 20,
        };
        assert_eq!(c.rate(), Some(0.25));
        let (lo, hi) = c.interval().unwrap();
        // 20/80: Wilson 95% interval 0.168 to 0.355.
        assert!(
            (lo - 0.168).abs() < 0.002 && (hi - 0.355).abs() < 0.002,
            "{lo} {hi}"
        );
        assert_eq!(Counts::default().rate(), None);
    }

    #[test]
    fn a_report_is_valid_fhir() {
        let c = Counts {
            patients: 3,
            initial_population: 2,
            denominator: 2,
            denominator_exclusion: 0,
            numerator: 1,
        };
        let mut lists = SubjectLists::default();
        lists.initial_population = vec!["a".into(), "b".into()];
        lists.denominator = lists.initial_population.clone();
        lists.numerator = vec!["a".into()];
        let start = time::macros::date!(2026 - 01 - 01);
        let end = time::macros::date!(2026 - 12 - 31);
        let now = time::macros::datetime!(2026-11-27 10:00 UTC);
        for subjects in [None, Some(&lists)] {
            let r = measure_report(
                "https://madie.cms.gov/Measure/x",
                &c,
                start,
                end,
                now,
                subjects,
            );
            coproduce_fhir::validate::validate_resource(&r).unwrap_or_else(|e| panic!("{e}\n{r}"));
        }
    }
}
