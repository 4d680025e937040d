//! Patient readings: what each measure is, which units it may be entered in, what value is
//! possible at all, how a value compares with the patient's target, and when the team must
//! look at it. CLINICAL.md sections 2 and 3 are the source of the codes and numbers.
//!
//! Values are kept in one canonical unit per measure (HbA1c in %, glucose in mg/dL, weight in
//! kg); the other unit in common use is converted on entry and can be shown on request.

pub use super::targets::{DefaultTargets, HbA1cTarget, Standing, TargetRange};
use crate::access::Role;
use std::fmt;
use time::{Duration, OffsetDateTime};

/// The readings a patient or family member records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    HbA1c,
    Glucose,
    BloodPressure,
    Weight,
    PeakFlow,
    CatScore,
    Steps,
}

/// How a code is written: the system and the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
}

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
/// Our own code system, for the one measure CLINICAL.md gives no LOINC code for.
pub const COPRODUCE_MEASURES: &str = "https://coproduce.health/fhir/CodeSystem/measure";

/// A unit a measure may be entered in, with its factor to the canonical unit:
/// canonical = value * factor + offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// The UCUM code.
    pub ucum: &'static str,
    /// How people write it.
    pub label: &'static str,
    factor: f64,
    offset: f64,
}

impl Unit {
    const fn canonical(ucum: &'static str, label: &'static str) -> Unit {
        Unit {
            ucum,
            label,
            factor: 1.0,
            offset: 0.0,
        }
    }

    pub fn to_canonical(&self, v: f64) -> f64 {
        v * self.factor + self.offset
    }

    pub fn from_canonical(&self, v: f64) -> f64 {
        (v - self.offset) / self.factor
    }
}

// HbA1c: IFCC mmol/mol = 10.929 * (NGSP % - 2.15) (the NGSP/IFCC master equation).
const HBA1C_MMOL_MOL: Unit = Unit {
    ucum: "mmol/mol",
    label: "mmol/mol",
    factor: 1.0 / 10.929,
    offset: 2.15,
};
// Glucose: 1 mmol/L = 18.016 mg/dL (molar mass 180.16 g/mol).
const GLUCOSE_MMOL_L: Unit = Unit {
    ucum: "mmol/L",
    label: "mmol/L",
    factor: 18.016,
    offset: 0.0,
};
const POUNDS: Unit = Unit {
    ucum: "[lb_av]",
    label: "lb",
    factor: 0.453_592_37,
    offset: 0.0,
};

const HBA1C_UNITS: &[Unit] = &[Unit::canonical("%", "%"), HBA1C_MMOL_MOL];
const GLUCOSE_UNITS: &[Unit] = &[Unit::canonical("mg/dL", "mg/dL"), GLUCOSE_MMOL_L];
const PRESSURE_UNITS: &[Unit] = &[Unit::canonical("mm[Hg]", "mmHg")];
const WEIGHT_UNITS: &[Unit] = &[Unit::canonical("kg", "kg"), POUNDS];
const FLOW_UNITS: &[Unit] = &[Unit::canonical("L/min", "L/min")];
const SCORE_UNITS: &[Unit] = &[Unit::canonical("{score}", "points")];
const STEP_UNITS: &[Unit] = &[Unit::canonical("/d", "steps a day")];

/// Blood-pressure components (US Core vital signs).
pub const SYSTOLIC: Code = Code {
    system: LOINC,
    code: "8480-6",
    display: "Systolic blood pressure",
};
pub const DIASTOLIC: Code = Code {
    system: LOINC,
    code: "8462-4",
    display: "Diastolic blood pressure",
};

/// Every LOINC code that counts as an HbA1c result (CLINICAL.md section 2).
pub const HBA1C_CODES: &[&str] = &[
    "4548-4", "17855-8", "17856-6", "4549-2", "59261-8", "41995-2", "71875-9",
];

impl Measure {
    pub const ALL: [Measure; 7] = [
        Measure::HbA1c,
        Measure::Glucose,
        Measure::BloodPressure,
        Measure::Weight,
        Measure::PeakFlow,
        Measure::CatScore,
        Measure::Steps,
    ];

    /// The short name used in URLs, forms, CSV files and message keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::HbA1c => "hba1c",
            Measure::Glucose => "glucose",
            Measure::BloodPressure => "blood-pressure",
            Measure::Weight => "weight",
            Measure::PeakFlow => "peak-flow",
            Measure::CatScore => "cat-score",
            Measure::Steps => "steps",
        }
    }

    pub fn parse(s: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The code a new reading is recorded with.
    pub fn code(self) -> Code {
        let loinc = |code, display| Code {
            system: LOINC,
            code,
            display,
        };
        match self {
            Measure::HbA1c => loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
            Measure::Glucose => loinc("2339-0", "Glucose [Mass/volume] in Blood"),
            Measure::BloodPressure => loinc("85354-9", "Blood pressure panel"),
            Measure::Weight => loinc("29463-7", "Body weight"),
            Measure::PeakFlow => loinc("19935-6", "Peak expiratory flow rate"),
            Measure::CatScore => Code {
                system: COPRODUCE_MEASURES,
                code: "cat-total",
                display: "COPD Assessment Test total score",
            },
            Measure::Steps => loinc("41950-7", "Number of steps in 24 hour Measured"),
        }
    }

    /// Which measure a recorded code is, accepting every code CLINICAL.md lists.
    pub fn from_code(system: &str, code: &str) -> Option<Measure> {
        if system == LOINC {
            if HBA1C_CODES.contains(&code) {
                return Some(Measure::HbA1c);
            }
            if code == "2345-7" {
                return Some(Measure::Glucose);
            }
        }
        Measure::ALL
            .into_iter()
            .find(|m| m.code().system == system && m.code().code == code)
    }

    /// The FHIR Observation category: vital signs for the US Core vitals, laboratory for
    /// HbA1c and glucose, activity for steps, survey for the CAT.
    pub fn category(self) -> &'static str {
        match self {
            Measure::HbA1c | Measure::Glucose => "laboratory",
            Measure::BloodPressure | Measure::Weight | Measure::PeakFlow => "vital-signs",
            Measure::CatScore => "survey",
            Measure::Steps => "activity",
        }
    }

    /// The units it may be entered in; the first is canonical.
    pub fn units(self) -> &'static [Unit] {
        match self {
            Measure::HbA1c => HBA1C_UNITS,
            Measure::Glucose => GLUCOSE_UNITS,
            Measure::BloodPressure => PRESSURE_UNITS,
            Measure::Weight => WEIGHT_UNITS,
            Measure::PeakFlow => FLOW_UNITS,
            Measure::CatScore => SCORE_UNITS,
            Measure::Steps => STEP_UNITS,
        }
    }

    pub fn canonical_unit(self) -> Unit {
        self.units()[0]
    }

    /// The unit with this UCUM code or label, if the measure takes it.
    pub fn unit(self, code_or_label: &str) -> Option<Unit> {
        let s = code_or_label.trim();
        self.units()
            .iter()
            .find(|u| u.ucum == s || u.label.eq_ignore_ascii_case(s))
            .copied()
    }

    /// The range of values that are possible at all, in the canonical unit. Outside it the
    /// reading is a typing mistake or a broken device, never a result to store.
    pub fn possible(self) -> (f64, f64) {
        match self {
            Measure::HbA1c => (3.0, 20.0),
            Measure::Glucose => (10.0, 1500.0),
            // Systolic; diastolic has its own range below.
            Measure::BloodPressure => (50.0, 300.0),
            Measure::Weight => (0.5, 500.0),
            Measure::PeakFlow => (30.0, 1000.0),
            Measure::CatScore => (0.0, 40.0),
            Measure::Steps => (0.0, 100_000.0),
        }
    }

    /// Whether values are counts, which must be whole.
    pub fn whole(self) -> bool {
        matches!(self, Measure::CatScore | Measure::Steps)
    }

    /// Decimal places worth showing in the canonical unit.
    pub fn decimals(self) -> usize {
        match self {
            Measure::HbA1c | Measure::Weight => 1,
            Measure::Glucose
            | Measure::BloodPressure
            | Measure::PeakFlow
            | Measure::CatScore
            | Measure::Steps => 0,
        }
    }
}

const DIASTOLIC_POSSIBLE: (f64, f64) = (20.0, 200.0);

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checked reading value, in the measure's canonical unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadingValue {
    Single(f64),
    Pressure { systolic: f64, diastolic: f64 },
}

impl ReadingValue {
    /// The value that is compared with the target and plotted (systolic for blood pressure).
    pub fn headline(&self) -> f64 {
        match *self {
            ReadingValue::Single(v) => v,
            ReadingValue::Pressure { systolic, .. } => systolic,
        }
    }
}

/// Why a reading was refused. Each names a message the person can act on; `key` is its
/// translation key and `args` what fills it in.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadingRefused {
    Missing,
    NotANumber(String),
    NotWhole,
    UnknownUnit {
        unit: String,
        allowed: Vec<&'static str>,
    },
    OutOfRange {
        what: &'static str,
        min: f64,
        max: f64,
        unit: &'static str,
    },
    SystolicNotAboveDiastolic,
}

impl ReadingRefused {
    /// The message key (see the web crate's translations).
    pub fn key(&self) -> &'static str {
        match self {
            ReadingRefused::Missing => "reading-missing",
            ReadingRefused::NotANumber(_) => "reading-not-a-number",
            ReadingRefused::NotWhole => "reading-not-whole",
            ReadingRefused::UnknownUnit { .. } => "reading-unknown-unit",
            ReadingRefused::OutOfRange { .. } => "reading-out-of-range",
            ReadingRefused::SystolicNotAboveDiastolic => "reading-systolic-not-above",
        }
    }

    /// The values the message is filled in with.
    pub fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            ReadingRefused::Missing
            | ReadingRefused::NotWhole
            | ReadingRefused::SystolicNotAboveDiastolic => vec![],
            ReadingRefused::NotANumber(s) => vec![("value", s.clone())],
            ReadingRefused::UnknownUnit { unit, allowed } => {
                vec![("unit", unit.clone()), ("allowed", allowed.join(", "))]
            }
            ReadingRefused::OutOfRange {
                what,
                min,
                max,
                unit,
            } => vec![
                ("what", (*what).to_string()),
                ("min", trim_number(*min)),
                ("max", trim_number(*max)),
                ("unit", (*unit).to_string()),
            ],
        }
    }
}

impl fmt::Display for ReadingRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadingRefused::Missing => f.write_str("enter a value"),
            ReadingRefused::NotANumber(s) => write!(f, "'{s}' is not a number"),
            ReadingRefused::NotWhole => f.write_str("enter a whole number"),
            ReadingRefused::UnknownUnit { unit, allowed } => {
                write!(
                    f,
                    "'{unit}' is not a unit for this reading; use {}",
                    allowed.join(" or ")
                )
            }
            ReadingRefused::OutOfRange {
                what,
                min,
                max,
                unit,
            } => write!(
                f,
                "{what} must be between {} and {} {unit}",
                trim_number(*min),
                trim_number(*max)
            ),
            ReadingRefused::SystolicNotAboveDiastolic => f.write_str(
                "the top number (systolic) must be higher than the bottom number (diastolic)",
            ),
        }
    }
}

impl std::error::Error for ReadingRefused {}

/// `7.0` as "7", `6.5` as "6.5".
pub fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Reads a number as people type it: "7.2", "7,2" (decimal comma), " 120 ".
pub fn parse_number(s: &str) -> Result<f64, ReadingRefused> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ReadingRefused::Missing);
    }
    let normal = t.replace(',', ".");
    match normal.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ReadingRefused::NotANumber(t.to_string())),
    }
}

fn in_range(
    what: &'static str,
    v: f64,
    (min, max): (f64, f64),
    unit: &Unit,
) -> Result<(), ReadingRefused> {
    if v < min || v > max {
        // Say the range in the unit the person typed.
        let (a, b) = (unit.from_canonical(min), unit.from_canonical(max));
        return Err(ReadingRefused::OutOfRange {
            what,
            min: round_to(a.min(b), 1),
            max: round_to(a.max(b), 1),
            unit: unit.label,
        });
    }
    Ok(())
}

pub fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// Checks a reading as entered: `values` holds one number, or systolic then diastolic for
/// blood pressure, in `unit` (empty means the canonical unit). Returns the value in the
/// canonical unit.
pub fn check(measure: Measure, values: &[f64], unit: &str) -> Result<ReadingValue, ReadingRefused> {
    let unit = if unit.trim().is_empty() {
        measure.canonical_unit()
    } else {
        measure
            .unit(unit)
            .ok_or_else(|| ReadingRefused::UnknownUnit {
                unit: unit.trim().to_string(),
                allowed: measure.units().iter().map(|u| u.label).collect(),
            })?
    };
    match (measure, values) {
        (Measure::BloodPressure, [sys, dia]) => {
            in_range("systolic", *sys, measure.possible(), &unit)?;
            in_range("diastolic", *dia, DIASTOLIC_POSSIBLE, &unit)?;
            if sys <= dia {
                return Err(ReadingRefused::SystolicNotAboveDiastolic);
            }
            Ok(ReadingValue::Pressure {
                systolic: *sys,
                diastolic: *dia,
            })
        }
        (Measure::BloodPressure, _) => Err(ReadingRefused::Missing),
        (_, [v]) => {
            if measure.whole() && v.fract() != 0.0 {
                return Err(ReadingRefused::NotWhole);
            }
            let canonical = unit.to_canonical(*v);
            in_range(measure.as_str(), canonical, measure.possible(), &unit)?;
            Ok(ReadingValue::Single(canonical))
        }
        _ => Err(ReadingRefused::Missing),
    }
}

/// Who may mark a patient's reading reviewed: the clinical roles that act on a reading
/// (clinician, nurse, rapid-response nurse, clinic lead). A pharmacist, a community health
/// worker or a social worker on the team sees readings but does not sign them off.
pub fn may_review(role: Role) -> bool {
    matches!(
        role,
        Role::Clinician | Role::Nurse | Role::RapidResponse | Role::ClinicLead
    )
}

/// Review rules for patient-entered readings (CLINICAL.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewRules {
    /// A reading not reviewed within this long is flagged. 7 days by default.
    pub within: Duration,
}

impl Default for ReviewRules {
    fn default() -> Self {
        ReviewRules {
            within: Duration::days(7),
        }
    }
}

impl ReviewRules {
    pub fn overdue(&self, entered: OffsetDateTime, now: OffsetDateTime) -> bool {
        now - entered > self.within
    }
}

/// Adds calendar months, keeping the day where the month has it, else its last day
/// (31 January + 1 month = 28 or 29 February).
pub fn add_months(t: OffsetDateTime, months: u32) -> OffsetDateTime {
    let date = t.date();
    let total = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months as i32;
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    let month = time::Month::try_from(u8::try_from(month0 + 1).unwrap_or(1))
        .unwrap_or(time::Month::January);
    let last = month.length(year);
    let day = date.day().min(last);
    match time::Date::from_calendar_date(year, month, day) {
        Ok(d) => t.replace_date(d),
        Err(_) => t,
    }
}

/// When the next HbA1c test is due: 3 months after the last when not at goal (or with no
/// goal agreed), 6 months when at goal. With no test on record it is due now.
pub fn hba1c_due(
    last: Option<(OffsetDateTime, f64)>,
    target: Option<TargetRange>,
    now: OffsetDateTime,
) -> OffsetDateTime {
    match last {
        None => now,
        Some((at, value)) => {
            let at_goal = target.is_some_and(|t| t.standing(value) == Standing::InRange);
            add_months(at, if at_goal { 6 } else { 3 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clinical_roles_mark_readings_reviewed() {
        let reviewers: Vec<Role> = Role::ALL.into_iter().filter(|r| may_review(*r)).collect();
        assert_eq!(
            reviewers,
            [
                Role::Clinician,
                Role::Nurse,
                Role::RapidResponse,
                Role::ClinicLead
            ]
        );
    }
    use time::macros::datetime;

    #[test]
    fn hba1c_in_mmol_per_mol_is_converted_to_percent() {
        let v = check(Measure::HbA1c, &[53.0], "mmol/mol").unwrap();
        assert!((v.headline() - 7.0).abs() < 0.01, "{v:?}");
        let back = HBA1C_MMOL_MOL.from_canonical(7.0);
        assert!((back - 53.0).abs() < 0.1, "{back}");
    }

    #[test]
    fn glucose_in_mmol_per_litre_is_converted_to_mg_per_dl() {
        let v = check(Measure::Glucose, &[7.0], "mmol/L").unwrap();
        assert!((v.headline() - 126.1).abs() < 0.1, "{v:?}");
        assert_eq!(
            check(Measure::Glucose, &[126.0], "mg/dL").unwrap(),
            ReadingValue::Single(126.0)
        );
    }

    #[test]
    fn impossible_values_are_refused_with_what_is_wrong() {
        let hba1c = check(Measure::HbA1c, &[80.0], "%").unwrap_err();
        assert_eq!(hba1c.to_string(), "hba1c must be between 3 and 20 %");
        let weight = check(Measure::Weight, &[-70.0], "kg").unwrap_err();
        assert!(
            matches!(weight, ReadingRefused::OutOfRange { .. }),
            "{weight}"
        );
        let bp = check(Measure::BloodPressure, &[80.0, 120.0], "mm[Hg]").unwrap_err();
        assert_eq!(bp, ReadingRefused::SystolicNotAboveDiastolic);
        let steps = check(Measure::Steps, &[10.5], "").unwrap_err();
        assert_eq!(steps, ReadingRefused::NotWhole);
        let cat = check(Measure::CatScore, &[41.0], "").unwrap_err();
        assert!(matches!(cat, ReadingRefused::OutOfRange { .. }));
        let flow = check(Measure::PeakFlow, &[5.0], "L/min").unwrap_err();
        assert!(matches!(flow, ReadingRefused::OutOfRange { .. }));
        let glucose = check(Measure::Glucose, &[0.1], "mmol/L").unwrap_err();
        assert!(glucose.to_string().contains("mmol/L"), "{glucose}");
        let unit = check(Measure::Weight, &[70.0], "stone").unwrap_err();
        assert_eq!(
            unit.to_string(),
            "'stone' is not a unit for this reading; use kg or lb"
        );
    }

    #[test]
    fn numbers_are_read_as_people_type_them() {
        assert_eq!(parse_number(" 7,2 "), Ok(7.2));
        assert_eq!(parse_number(""), Err(ReadingRefused::Missing));
        assert!(matches!(
            parse_number("seven"),
            Err(ReadingRefused::NotANumber(_))
        ));
        assert!(matches!(
            parse_number("NaN"),
            Err(ReadingRefused::NotANumber(_))
        ));
    }

    #[test]
    fn every_listed_hba1c_code_is_recognised() {
        for c in HBA1C_CODES {
            assert_eq!(Measure::from_code(LOINC, c), Some(Measure::HbA1c));
        }
        assert_eq!(Measure::from_code(LOINC, "2345-7"), Some(Measure::Glucose));
        assert_eq!(
            Measure::from_code(LOINC, "85354-9"),
            Some(Measure::BloodPressure)
        );
        assert_eq!(Measure::from_code(UCUM, "4548-4"), None);
    }

    #[test]
    fn hba1c_is_due_in_three_months_off_goal_and_six_at_goal() {
        let at = datetime!(2026-01-31 09:00 UTC);
        let now = datetime!(2026-03-01 09:00 UTC);
        let goal = Some(HbA1cTarget::Usual.range());
        assert_eq!(
            hba1c_due(Some((at, 8.1)), goal, now),
            datetime!(2026-04-30 09:00 UTC)
        );
        assert_eq!(
            hba1c_due(Some((at, 6.8)), goal, now),
            datetime!(2026-07-31 09:00 UTC)
        );
        assert_eq!(
            hba1c_due(Some((at, 6.8)), None, now),
            datetime!(2026-04-30 09:00 UTC)
        );
        assert_eq!(hba1c_due(None, goal, now), now);
        assert_eq!(
            add_months(datetime!(2026-11-30 0:00 UTC), 3),
            datetime!(2027-02-28 0:00 UTC)
        );
    }

    #[test]
    fn a_reading_unreviewed_for_more_than_seven_days_is_overdue() {
        let r = ReviewRules::default();
        let entered = datetime!(2026-11-01 08:00 UTC);
        assert!(!r.overdue(entered, datetime!(2026-11-08 08:00 UTC)));
        assert!(r.overdue(entered, datetime!(2026-11-08 08:01 UTC)));
    }
}
