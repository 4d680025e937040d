//! Prescribing with the whole person in view (CLINICAL.md section 4): the site's formulary
//! and what one fill costs the patient under each kind of coverage.
//!
//! `prices` turns what a pharmacy pays for a fill (an acquisition cost such as CMS's NADAC)
//! into what the patient pays under each coverage kind, by the site's rules (dispensing fee,
//! cash markup, copay or coinsurance by tier, caps). Such a price is *modelled*, never a
//! quote, and says so. The [`Formulary`] holds the drugs the site prescribes from, with a
//! price per fill for each coverage kind (quoted or modelled), and answers the prescriber's
//! two questions: what will this cost this patient, and what in the same class costs less.
//! `check` is the partnership check on a new prescription (afford, reach, understand,
//! language), the barriers it finds, who works them by when, and what resolves them.

pub mod check;
pub mod measures;
pub mod prices;
pub mod sig;

pub use prices::{Money, PricingRules, Tier, TierShare};

use std::collections::BTreeMap;
use std::fmt;

/// How a patient pays for medicines: the kinds a site's prices are given for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CoverageKind {
    /// No coverage: the pharmacy's cash price.
    Uninsured,
    Medicaid,
    MedicarePartD,
    /// An employer or marketplace plan.
    Commercial,
    /// The clinic's own 340B pharmacy (for patients it serves, whatever their coverage).
    Clinic340B,
}

impl CoverageKind {
    pub const ALL: [CoverageKind; 5] = [
        CoverageKind::Uninsured,
        CoverageKind::Medicaid,
        CoverageKind::MedicarePartD,
        CoverageKind::Commercial,
        CoverageKind::Clinic340B,
    ];

    /// The code (in coproduce's coverage-kind code system and the formulary's columns).
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageKind::Uninsured => "uninsured",
            CoverageKind::Medicaid => "medicaid",
            CoverageKind::MedicarePartD => "medicare-part-d",
            CoverageKind::Commercial => "commercial",
            CoverageKind::Clinic340B => "340b",
        }
    }

    pub fn parse(s: &str) -> Option<CoverageKind> {
        CoverageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn english(self) -> &'static str {
        match self {
            CoverageKind::Uninsured => "No insurance (cash price)",
            CoverageKind::Medicaid => "Medicaid",
            CoverageKind::MedicarePartD => "Medicare Part D",
            CoverageKind::Commercial => "Commercial plan",
            CoverageKind::Clinic340B => "Clinic 340B pharmacy",
        }
    }
}

impl fmt::Display for CoverageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a formulary's prices come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// Prices the site was given (by its pharmacy, its plans).
    Quoted,
    /// Prices derived from acquisition costs by the site's pricing rules: an estimate, shown
    /// as one.
    Modelled,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Quoted => "quoted",
            Basis::Modelled => "modelled",
        }
    }

    pub fn parse(s: &str) -> Option<Basis> {
        [Basis::Quoted, Basis::Modelled]
            .into_iter()
            .find(|b| b.as_str() == s)
    }
}

/// One drug of the formulary: a product the site prescribes, one fill of it, and what that
/// fill costs the patient under each coverage kind (absent: not covered, or no price known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drug {
    /// The site's own code for the product (unique in the formulary).
    pub code: String,
    /// Its RxNorm concept (RxCUI), where the site has one.
    pub rxnorm: Option<String>,
    pub name: String,
    /// The active ingredient(s), by generic name (`insulin glargine`,
    /// `fluticasone/salmeterol`).
    pub ingredient: String,
    pub strength: String,
    pub form: String,
    /// The therapeutic class alternatives are drawn from (`long-acting-insulin`, `ics-laba`...).
    pub class: String,
    /// One fill: how much (`30 tablet`, `15 mL`) for how many days.
    pub fill: String,
    pub days: u32,
    pub prices: BTreeMap<CoverageKind, Money>,
    pub basis: Basis,
    /// Where the prices come from, in words (`NADAC as of 2026-04-29, modelled`).
    pub source: String,
}

impl Drug {
    /// What one fill costs a patient with this coverage, if the formulary says.
    pub fn cost(&self, coverage: CoverageKind) -> Option<Money> {
        self.prices.get(&coverage).copied()
    }

    /// Whether this drug could be given instead of `other` (see [`Formulary::alternatives`]).
    pub fn replaces(&self, other: &Drug) -> bool {
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        self.class == other.class
            && (!same(&self.ingredient, &other.ingredient) || same(&self.strength, &other.strength))
    }
}

/// A cheaper drug of the same class, and what its fill costs the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alternative<'a> {
    pub drug: &'a Drug,
    pub cost: Money,
    /// How much less than the drug asked about, per fill.
    pub saves: Money,
}

/// The drugs a site prescribes from, with their prices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Formulary {
    drugs: Vec<Drug>,
}

/// Why a formulary cannot be made from these drugs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormularyRefused {
    /// The drug's place in the list (0-based).
    pub index: usize,
    pub english: String,
}

impl Formulary {
    /// The drugs, each code once, each with a name, class and a fill of at least one day.
    pub fn new(drugs: Vec<Drug>) -> Result<Formulary, FormularyRefused> {
        let mut codes = std::collections::HashSet::new();
        for (index, d) in drugs.iter().enumerate() {
            let refuse = |english: String| FormularyRefused { index, english };
            for (what, value) in [
                ("code", &d.code),
                ("name", &d.name),
                ("ingredient", &d.ingredient),
                ("class", &d.class),
                ("fill", &d.fill),
            ] {
                if value.trim().is_empty() {
                    return Err(refuse(format!("the {what} is empty")));
                }
            }
            if d.days == 0 {
                return Err(refuse("a fill lasts at least one day".into()));
            }
            if !codes.insert(d.code.as_str()) {
                return Err(refuse(format!("the code '{}' is used twice", d.code)));
            }
        }
        Ok(Formulary { drugs })
    }

    pub fn drugs(&self) -> &[Drug] {
        &self.drugs
    }

    pub fn drug(&self, code: &str) -> Option<&Drug> {
        self.drugs.iter().find(|d| d.code == code)
    }

    /// The drug with this RxNorm code (the first, should a site list two products of one).
    pub fn by_rxnorm(&self, rxcui: &str) -> Option<&Drug> {
        self.drugs
            .iter()
            .find(|d| d.rxnorm.as_deref() == Some(rxcui))
    }

    /// The drugs that could replace `drug` and cost a patient with this coverage less per day
    /// than it does, cheapest first (by the cost per day, then name). One could replace it
    /// when it is of the same class and either another ingredient (another drug of the class)
    /// or the same ingredient at the same strength (a generic, a biosimilar, another device):
    /// the same ingredient at another strength is a change of dose, not an alternative. A drug
    /// whose price for this coverage is unknown has no alternatives by price; a drug of
    /// another class is never one, however cheap.
    pub fn alternatives(&self, drug: &Drug, coverage: CoverageKind) -> Vec<Alternative<'_>> {
        let Some(cost) = drug.cost(coverage) else {
            return Vec::new();
        };
        let mut out: Vec<Alternative<'_>> = self
            .drugs
            .iter()
            .filter(|d| d.code != drug.code && d.replaces(drug))
            .filter_map(|d| {
                let c = d.cost(coverage)?;
                // Compared per day, so that a 90-day fill is not "dearer" than a 30-day one;
                // the saving is shown per fill of the drug asked about.
                let saves = cost - c.per_day(d.days).times_days(drug.days);
                (c.per_day(d.days) < cost.per_day(drug.days)).then_some(Alternative {
                    drug: d,
                    cost: c,
                    saves,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            a.cost
                .per_day(a.drug.days)
                .cmp(&b.cost.per_day(b.drug.days))
                .then_with(|| a.drug.name.cmp(&b.drug.name))
        });
        out
    }
}

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod tests;
