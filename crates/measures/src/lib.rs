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
pub mod record;
pub mod utilisation;

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
