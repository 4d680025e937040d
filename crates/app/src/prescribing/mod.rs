//! Prescribing with the whole person in view (CLINICAL.md section 4), as FHIR: the site's
//! formulary and its prices, kept as MedicationKnowledge (see [`formulary`]) and loaded by an
//! administrator from a file, or modelled from CMS's NADAC acquisition costs by the site's
//! pricing rules (see [`model`]); the partnership check on each new prescription, what it
//! reads of the patient and what it records ([`check`]); and its barriers, the patient's "I
//! can't", their resolution and the check of prescriptions from the FHIR API ([`barriers`]).
//! `core::prescribing` holds the rules. See docs/prescribing.md.

use crate::caller::Caller;
use crate::error::{AppError, CareError};
use crate::fhir_api::FhirApi;
use coproduce_core::Clock;
use coproduce_core::access::Role;
use coproduce_core::calendar::BusinessCalendar;
use coproduce_core::prescribing::Formulary;
use coproduce_core::prescribing::check::{BarrierRules, CheckRules};
use serde_json::{Value, json};
use std::sync::Arc;

pub mod barriers;
pub mod check;
pub mod formulary;
pub mod measures;
pub mod medicines;
pub mod model;
pub mod prescribe;
pub mod synthetic;

pub use barriers::write_rules;
pub use check::Barrier;

/// The site's own codes for the products of its formulary.
pub const FORMULARY_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/formulary";
/// How a patient pays for medicines (`uninsured`, `medicaid`, `medicare-part-d`, `commercial`,
/// `340b`).
pub const COVERAGE_KIND_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/coverage-kind";
/// The therapeutic classes alternatives are drawn from.
pub const CLASS_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/drug-class";
/// The characteristics a formulary drug carries (strength, fill, days-supply, class).
pub const CHARACTERISTIC_SYSTEM: &str =
    "https://coproduce.health/fhir/CodeSystem/formulary-characteristic";
/// On a MedicationKnowledge: whether its prices are quoted or modelled.
pub const BASIS_EXT: &str = "https://coproduce.health/fhir/StructureDefinition/price-basis";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

type Result<T> = std::result::Result<T, CareError>;

/// The site's rules for prescribing: the check's and who works each kind of barrier by when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub check: CheckRules,
    pub barriers: BarrierRules,
}

/// Prescribing's use-cases over the API.
#[derive(Clone)]
pub struct Prescribing {
    api: FhirApi,
    clock: Arc<dyn Clock>,
    calendar: Arc<BusinessCalendar>,
    rules: Arc<Rules>,
    /// Tells the role a barrier goes to, and the patient when it is solved.
    notifier: crate::notify::Notifier,
}

impl std::fmt::Debug for Prescribing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prescribing").finish_non_exhaustive()
    }
}

/// What loading a formulary changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Drugs written (new or changed; the same file again writes nothing new but rewrites).
    pub drugs: usize,
    /// Drugs of the previous formulary the file no longer lists: kept, marked inactive.
    pub retired: usize,
}

impl Prescribing {
    pub fn new(
        api: FhirApi,
        calendar: Arc<BusinessCalendar>,
        rules: Rules,
        notifier: crate::notify::Notifier,
    ) -> Self {
        Prescribing {
            clock: api.clock(),
            api,
            calendar,
            rules: Arc::new(rules),
            notifier,
        }
    }

    /// Makes `formulary` the site's, in one transaction: each drug written, and any drug of
    /// the previous formulary it no longer lists marked inactive (kept, so that what was
    /// prescribed from it still resolves).
    pub async fn load_formulary(&self, caller: &Caller, formulary: &Formulary) -> Result<Loaded> {
        let listed: std::collections::HashSet<&str> =
            formulary.drugs().iter().map(|d| d.code.as_str()).collect();
        let mut entries: Vec<(&Caller, Value)> = formulary
            .drugs()
            .iter()
            .map(|d| put_entry(caller, formulary::resource(d), None))
            .collect();
        let drugs = entries.len();
        let mut retired = 0;
        for old in self
            .api
            .search_all(
                caller,
                "MedicationKnowledge",
                &[("status".into(), "active".into())],
            )
            .await?
        {
            let mut v = old.json()?;
            if formulary::drug_of(&v).is_some() && !listed.contains(old.id.as_str()) {
                v["status"] = json!("inactive");
                entries.push(put_entry(caller, v, None));
                retired += 1;
            }
        }
        self.api.transaction_with(entries, &[], None).await?;
        Ok(Loaded { drugs, retired })
    }

    /// The site's formulary: its active drugs, by name.
    pub async fn formulary(&self, caller: &Caller) -> Result<Formulary> {
        let mut drugs = Vec::new();
        for s in self
            .api
            .search_all(
                caller,
                "MedicationKnowledge",
                &[("status".into(), "active".into())],
            )
            .await?
        {
            drugs.extend(formulary::drug_of(&s.json()?));
        }
        drugs.sort_by(|a, b| (&a.name, &a.strength, &a.code).cmp(&(&b.name, &b.strength, &b.code)));
        Formulary::new(drugs).map_err(|e| {
            CareError::input(
                "formulary-inconsistent",
                format!("the stored formulary is inconsistent: {}", e.english),
            )
        })
    }
}

/// A transaction entry, by `caller`, that writes `resource` under its own type and id, only
/// over `version` when one is given.
fn put_entry(caller: &Caller, resource: Value, version: Option<i64>) -> (&Caller, Value) {
    let rt = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let id = resource["id"].as_str().unwrap_or_default().to_string();
    (caller, crate::fhir_api::put(&rt, &id, resource, version))
}
