//! CMS122 v13 (2026), FHIR/QI-Core edition: Diabetes: Glycemic Status Assessment Greater
//! Than 9%. Written from `CMS122FHIRDiabetesAssessGreaterThan9Percent` 0.5.000 in the
//! official measure bundle; an inverse measure (the numerator is poor control).

use crate::bundle::{MeasureBundle, Terminology};
use crate::exclusions;
use crate::interval::{Bound, Span, holds};
use crate::record::Value;
use crate::record::{
    PatientRecord, concept_is, encounter_performed, lab_or_assessment_performed, latest_effective,
    period_of, prevalence, verified,
};
use crate::{PatientResult, Populations, nulls_first, proportion};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use time::Date;

/// The encounter value sets that qualify, as the CQL names them.
const ENCOUNTER_SETS: &[&str] = &[
    "Office Visit",
    "Annual Wellness Visit",
    "Preventive Care Services Established Office Visit, 18 and Up",
    "Preventive Care Services Initial Office Visit, 18 and Up",
    "Home Healthcare Services",
    "Nutrition Services",
    "Telephone Visits",
];

/// The medical nutrition therapy codes that qualify by direct reference (prefixes of the
/// CQL code names, which are long).
const ENCOUNTER_CODE_PREFIXES: &[&str] = &[
    "Medical nutrition therapy; initial assessment",
    "Medical nutrition therapy; re-assessment",
    "Medical nutrition therapy; group",
    "Medical nutrition therapy; reassessment",
    "Medical nutrition therapy, reassessment",
];

/// CMS122 for one measurement period.
#[derive(Debug, Clone)]
pub struct Cms122 {
    t: Terminology,
    encounter_codes: Vec<String>,
    period: Span,
    end: Date,
}

fn reference(v: &Value) -> String {
    format!(
        "{}/{}",
        v["resourceType"].as_str().unwrap_or(""),
        v["id"].as_str().unwrap_or("")
    )
}

impl Cms122 {
    /// The measure from its bundle, for the period `[start, end]` (by day, UTC).
    pub fn new(bundle: &MeasureBundle, start: Date, end: Date) -> Self {
        let t = bundle.terminology.clone();
        let encounter_codes = ENCOUNTER_CODE_PREFIXES
            .iter()
            .filter_map(|p| {
                t.code_names()
                    .find(|n| n.starts_with(p))
                    .map(str::to_string)
            })
            .collect();
        Cms122 {
            t,
            encounter_codes,
            period: Span::days(start, end),
            end,
        }
    }

    fn qualifying_encounter<'a>(&self, rec: &'a PatientRecord) -> Option<&'a Value> {
        rec.all("Encounter").iter().find(|e| {
            let ty = &e["type"];
            let qualifies = ENCOUNTER_SETS
                .iter()
                .any(|vs| crate::record::concept_in(ty, &self.t, vs))
                || self
                    .encounter_codes
                    .iter()
                    .any(|c| concept_is(ty, &self.t, c));
            qualifies
                && encounter_performed(e)
                && period_of(e).is_some_and(|p| holds(p.during(&self.period)))
        })
    }

    fn diabetes<'a>(&'a self, rec: &'a PatientRecord) -> Option<&'a Value> {
        rec.retrieve("Condition", &self.t, "Diabetes")
            .filter(|c| verified(c))
            .find(|c| holds(prevalence(c).overlaps(&self.period)))
    }

    /// The glycemic status assessments in the period, with the day of each.
    fn assessments<'a>(&self, rec: &'a PatientRecord) -> Vec<(&'a Value, Date)> {
        rec.all("Observation")
            .iter()
            .filter(|o| {
                crate::record::concept_in(&o["code"], &self.t, "HbA1c Laboratory Test")
                    || concept_is(&o["code"], &self.t, "Glucose management indicator")
            })
            .filter(|o| lab_or_assessment_performed(o))
            .filter_map(|o| match latest_effective(o) {
                Bound::Day(d) if holds(Span::point(Bound::Day(d)).during(&self.period)) => {
                    Some((o, d))
                }
                _ => None,
            })
            .collect()
    }

    pub fn evaluate(&self, rec: &PatientRecord) -> PatientResult {
        let age_ok = rec.age_at(self.end).is_some_and(|a| (18..=75).contains(&a));
        // The most selective test first: most patients have no diabetes, and then their
        // encounters are never read (nor parsed, in a record from the store).
        let initial = age_ok.then(|| self.diabetes(rec)).flatten().and_then(|d| {
            Some(vec![
                reference(self.qualifying_encounter(rec)?),
                reference(d),
            ])
        });
        proportion(
            rec.id(),
            initial,
            || {
                exclusions::hospice(rec, &self.t, &self.period)
                    .or_else(|| exclusions::long_term_care(rec, &self.t, self.end))
                    .or_else(|| {
                        exclusions::advanced_illness_and_frailty(
                            rec,
                            &self.t,
                            &self.period,
                            self.end,
                        )
                    })
                    .or_else(|| exclusions::palliative(rec, &self.t, &self.period))
            },
            || self.poor_control(rec),
        )
    }

    /// The numerator: no assessment in the period, or on the most recent day the lowest
    /// reading (`sort by value as Quantity`: one that is not a quantity sorts first, like a
    /// missing one) has no result or is above 9%.
    fn poor_control(&self, rec: &PatientRecord) -> Option<String> {
        let assessments = self.assessments(rec);
        let Some(last) = assessments.iter().map(|(_, d)| *d).max() else {
            return Some("no glycemic status assessment in the period".to_string());
        };
        let lowest = assessments
            .iter()
            .filter(|(_, d)| *d == last)
            .map(|(o, _)| *o)
            .min_by(|a, b| nulls_first(quantity(a).map(|q| q.0), quantity(b).map(|q| q.0)))?;
        let no_result = !lowest
            .as_object()
            .is_some_and(|o| o.iter().any(|(k, _)| k.starts_with("value")));
        // `value > 9 '%'`: only a quantity in percent compares; anything else is unknown,
        // which is not true.
        let elevated = matches!(quantity(lowest), Some((v, Some("%"))) if v > 9.0);
        (no_result || elevated).then(|| reference(lowest))
    }

    pub fn populations(&self, rec: &PatientRecord) -> Populations {
        self.evaluate(rec).populations
    }
}

/// `value as Quantity`: its number and UCUM unit.
fn quantity(o: &Value) -> Option<(f64, Option<&str>)> {
    let q = o.get("valueQuantity")?;
    Some((
        q["value"].as_f64()?,
        q["code"].as_str().or(q["unit"].as_str()),
    ))
}
