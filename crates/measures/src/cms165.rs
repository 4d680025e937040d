//! CMS165 v13 (2026), FHIR/QI-Core edition: Controlling High Blood Pressure. Written from
//! `CMS165FHIRControllingHighBloodPressure` 0.5.000 and `AdultOutpatientEncounters` 4.19.000
//! in the official measure bundle.

use crate::bundle::{MeasureBundle, Terminology};
use crate::exclusions::{self, reference};
use crate::interval::{Bound, Span, holds};
use crate::record::Value;
use crate::record::{
    PatientRecord, concept_is, encounter_performed, intervention_performed,
    lab_or_assessment_performed, latest_effective, performed, period_of, prevalence, verified,
};
use crate::{PatientResult, Populations, nulls_first, proportion};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use time::{Date, Month};

const OUTPATIENT_SETS: &[&str] = &[
    "Office Visit",
    "Annual Wellness Visit",
    "Preventive Care Services Established Office Visit, 18 and Up",
    "Preventive Care Services Initial Office Visit, 18 and Up",
    "Home Healthcare Services",
    "Virtual Encounter",
    "Telephone Visits",
];

const EXCLUDING_CONDITIONS: &[&str] = &[
    "Pregnancy",
    "End Stage Renal Disease",
    "Kidney Transplant Recipient",
    "Chronic Kidney Disease, Stage 5",
];

/// Encounter classes whose blood pressures do not count.
const ACUTE_CLASSES: &[&str] = &["EMER", "IMP", "ACUTE", "NONAC", "PRENC", "SS"];

/// The US Core blood pressure panel.
const BP_PANEL: (&str, &str) = ("http://loinc.org", "85354-9");

#[derive(Debug, Clone)]
pub struct Cms165 {
    t: Terminology,
    period: Span,
    start: Date,
    end: Date,
}

impl Cms165 {
    pub fn new(bundle: &MeasureBundle, start: Date, end: Date) -> Self {
        Cms165 {
            t: bundle.terminology.clone(),
            period: Span::days(start, end),
            start,
            end,
        }
    }

    /// The first six months: Interval[start, start + 6 months).
    fn first_half(&self) -> Span {
        let month = self.start.month() as u8 + 6;
        let (year, month) = if month > 12 {
            (self.start.year() + 1, month - 12)
        } else {
            (self.start.year(), month)
        };
        let six_months = Month::try_from(month)
            .ok()
            .and_then(|m| Date::from_calendar_date(year, m, self.start.day()).ok())
            .and_then(Date::previous_day)
            .unwrap_or(self.end);
        Span::days(self.start, six_months)
    }

    fn qualifying_encounter<'a>(&self, rec: &'a PatientRecord) -> Option<&'a Value> {
        rec.all("Encounter").iter().find(|e| {
            OUTPATIENT_SETS
                .iter()
                .any(|vs| crate::record::concept_in(&e["type"], &self.t, vs))
                && encounter_performed(e)
                && period_of(e).is_some_and(|p| holds(p.during(&self.period)))
        })
    }

    fn hypertension<'a>(&'a self, rec: &'a PatientRecord) -> Option<&'a Value> {
        let window = self.first_half();
        rec.retrieve("Condition", &self.t, "Essential Hypertension")
            .filter(|c| verified(c))
            .find(|c| holds(prevalence(c).overlaps(&window)))
    }

    fn own_exclusion(&self, rec: &PatientRecord) -> Option<String> {
        let diagnosed = rec.all("Condition").iter().find(|c| {
            EXCLUDING_CONDITIONS
                .iter()
                .any(|vs| crate::record::concept_in(&c["code"], &self.t, vs))
                && verified(c)
                && holds(prevalence(c).overlaps(&self.period))
        });
        if let Some(c) = diagnosed {
            return Some(reference(c));
        }
        let procedure = rec.all("Procedure").iter().find(|p| {
            (crate::record::concept_in(&p["code"], &self.t, "Kidney Transplant")
                || crate::record::concept_in(&p["code"], &self.t, "Dialysis Services"))
                && intervention_performed(p)
                && performed(p).is_some_and(|s| holds(s.ends_on_or_before(self.end)))
        });
        if let Some(p) = procedure {
            return Some(reference(p));
        }
        rec.retrieve("Encounter", &self.t, "ESRD Monthly Outpatient Services")
            .filter(|e| encounter_performed(e))
            .find(|e| {
                period_of(e).is_some_and(|p| holds(Span::point(p.low).ends_on_or_before(self.end)))
            })
            .map(reference)
    }

    /// The blood pressures that count: not taken during an inpatient stay or an ED visit
    /// (at any time), or, in the period, not from an encounter of an acute class.
    fn qualifying_readings<'a>(&self, rec: &'a PatientRecord) -> Vec<(&'a Value, Bound)> {
        let disqualifying: Vec<Span> = rec
            .all("Encounter")
            .iter()
            .filter(|e| {
                (crate::record::concept_in(&e["type"], &self.t, "Encounter Inpatient")
                    || crate::record::concept_in(
                        &e["type"],
                        &self.t,
                        "Emergency Department Evaluation and Management Visit",
                    ))
                    && encounter_performed(e)
            })
            .filter_map(period_of)
            .collect();
        rec.all("Observation")
            .iter()
            .filter(|o| {
                o["code"]["coding"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["system"] == BP_PANEL.0 && c["code"] == BP_PANEL.1)
                })
            })
            .filter(|o| lab_or_assessment_performed(o))
            .filter_map(|o| {
                let when = latest_effective(o);
                let at = Span::point(when);
                let outside_stays = !disqualifying.iter().any(|stay| holds(at.during(stay)));
                let class = o["encounter"]["reference"]
                    .as_str()
                    .and_then(|r| r.rsplit('/').next())
                    .and_then(|id| {
                        rec.all("Encounter")
                            .iter()
                            .find(|e| e["id"].as_str() == Some(id))
                    })
                    .and_then(|e| e["class"]["code"].as_str());
                let not_acute = !class.is_some_and(|c| ACUTE_CLASSES.contains(&c));
                let in_period = not_acute && holds(at.during(&self.period));
                (outside_stays || in_period).then_some((o, when))
            })
            .collect()
    }

    pub fn evaluate(&self, rec: &PatientRecord) -> PatientResult {
        let age_ok = rec.age_at(self.end).is_some_and(|a| (18..=85).contains(&a));
        // The most selective test first (see CMS122).
        let initial = age_ok
            .then(|| self.hypertension(rec))
            .flatten()
            .and_then(|d| {
                Some(vec![
                    reference(d),
                    reference(self.qualifying_encounter(rec)?),
                ])
            });
        proportion(
            rec.id(),
            initial,
            || {
                exclusions::hospice(rec, &self.t, &self.period)
                    .or_else(|| self.own_exclusion(rec))
                    .or_else(|| exclusions::frailty_by_age(rec, &self.t, &self.period, self.end))
                    .or_else(|| exclusions::long_term_care(rec, &self.t, self.end))
                    .or_else(|| exclusions::palliative(rec, &self.t, &self.period))
            },
            || self.controlled(rec),
        )
    }

    /// The numerator: on the most recent day with a qualifying reading, the lowest systolic
    /// is below 140 and the lowest diastolic below 90 (a reading without that component
    /// sorts first and does not count).
    fn controlled(&self, rec: &PatientRecord) -> Option<String> {
        let readings = self.qualifying_readings(rec);
        let last = readings
            .iter()
            .filter_map(|(_, b)| match b {
                Bound::Day(d) => Some(*d),
                _ => None,
            })
            .max()?;
        let on_last: Vec<&Value> = readings
            .iter()
            .filter(|(_, b)| *b == Bound::Day(last))
            .map(|(o, _)| *o)
            .collect();
        let lowest = |code: &str| {
            on_last
                .iter()
                .map(|o| component(o, &self.t, code))
                .min_by(|a, b| nulls_first(*a, *b))
                .flatten()
        };
        let systolic = lowest("Systolic blood pressure");
        let diastolic = lowest("Diastolic blood pressure");
        (systolic.is_some_and(|v| v < 140.0) && diastolic.is_some_and(|v| v < 90.0)).then(|| {
            on_last
                .iter()
                .map(|o| reference(o))
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    pub fn populations(&self, rec: &PatientRecord) -> Populations {
        self.evaluate(rec).populations
    }
}

/// The value in mm[Hg] of the one component with that code; none if absent, not a
/// quantity in mm[Hg], or not exactly one (`singleton from`).
fn component(o: &Value, t: &Terminology, code: &str) -> Option<f64> {
    let matching: Vec<&Value> = o["component"]
        .as_array()?
        .iter()
        .filter(|c| concept_is(&c["code"], t, code))
        .collect();
    let [one] = matching.as_slice() else {
        return None;
    };
    let q = &one["valueQuantity"];
    match q["code"].as_str().or(q["unit"].as_str()) {
        Some("mm[Hg]") | Some("mmHg") => q["value"].as_f64(),
        _ => None,
    }
}
