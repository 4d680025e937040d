//! Population measures, evaluated natively in Rust from the official measure bundles.
//!
//! No database and no I/O: a measure is built from its bundle (the Measure, its CQL
//! Libraries and the ValueSet expansions) and handed one patient's records at a time. The
//! value sets and codes come from the bundle at run time; the logic of each measure is
//! written from its CQL, one module per measure, over the shared vocabulary of [`record`]
//! (retrieves by resource type and code, the QI-Core status filters) and [`interval`] (CQL's
//! day-precision interval operators). Data with or without `meta.profile` evaluates the same:
//! records are found by resource type and code, never by profile.

pub mod bundle;
pub mod cms122;
pub mod cms165;
pub mod evaluation;
pub mod exclusions;
pub mod interval;
pub mod official;
pub mod pqi;
pub mod projection;
pub mod record;
pub mod utilisation;
pub mod value;

pub use bundle::{MeasureBundle, Terminology};
pub use record::PatientRecord;

/// The populations of a patient-based proportion measure for one patient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Populations {
    pub initial_population: bool,
    pub denominator: bool,
    pub denominator_exclusion: bool,
    pub numerator: bool,
}

/// One patient's result: the populations, and which records decided each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientResult {
    pub patient: String,
    pub populations: Populations,
    /// (population, `Type/id`) pairs: the records that put the patient in a population.
    pub evidence: Vec<(&'static str, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("the measure bundle is not usable: {0}")]
    Bundle(String),
}

/// A patient-based proportion measure's semantics, in one place: no initial population, no
/// more; the denominator is the initial population; a patient excluded from the denominator
/// is never counted in the numerator. `initial` gives the records that put the patient in
/// the initial population (none: not in it); the exclusion and numerator give the record (or
/// reason) that decided them, and are only asked when they matter.
pub fn proportion(
    patient: &str,
    initial: Option<Vec<String>>,
    exclusion: impl FnOnce() -> Option<String>,
    numerator: impl FnOnce() -> Option<String>,
) -> PatientResult {
    let mut out = PatientResult {
        patient: patient.to_string(),
        ..PatientResult::default()
    };
    let Some(initial) = initial else {
        return out;
    };
    out.populations.initial_population = true;
    out.populations.denominator = true;
    out.evidence
        .extend(initial.into_iter().map(|r| ("initial-population", r)));
    if let Some(why) = exclusion() {
        out.populations.denominator_exclusion = true;
        out.evidence.push(("denominator-exclusion", why));
    } else if let Some(why) = numerator() {
        out.populations.numerator = true;
        out.evidence.push(("numerator", why));
    }
    out
}

/// CQL's ascending sort, where a null sorts first.
pub fn nulls_first(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, _) => std::cmp::Ordering::Less,
        (_, None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => x.total_cmp(&y),
    }
}
