//! Targets: the range a reading is compared with (the patient's own, agreed on a Goal, else
//! the site's default), the individual HbA1c targets of the ADA Standards of Care, and where a
//! reading stands against its range (below, in range, above).

use super::readings::{Measure, ReadingValue};

/// A target range in the canonical unit; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetRange {
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// Where a reading falls against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Below,
    InRange,
    Above,
}

impl TargetRange {
    pub fn below(high: f64) -> Self {
        TargetRange {
            low: None,
            high: Some(high),
        }
    }

    pub fn between(low: f64, high: f64) -> Self {
        TargetRange {
            low: Some(low),
            high: Some(high),
        }
    }

    pub fn standing(&self, v: f64) -> Standing {
        match (self.low, self.high) {
            (Some(l), _) if v < l => Standing::Below,
            (_, Some(h)) if v >= h => Standing::Above,
            _ => Standing::InRange,
        }
    }
}

/// The individual HbA1c targets of the ADA Standards of Care (CLINICAL.md section 2), set
/// together and recorded on the Goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbA1cTarget {
    /// Below 6.5% where it can be reached safely.
    Tight,
    /// Below 7.0% (53 mmol/mol) for many non-pregnant adults.
    Usual,
    /// Below 8.0% with severe hypoglycaemia, major comorbidity or limited life expectancy.
    Relaxed,
}

impl HbA1cTarget {
    pub const ALL: [HbA1cTarget; 3] =
        [HbA1cTarget::Tight, HbA1cTarget::Usual, HbA1cTarget::Relaxed];

    pub fn percent(self) -> f64 {
        match self {
            HbA1cTarget::Tight => 6.5,
            HbA1cTarget::Usual => 7.0,
            HbA1cTarget::Relaxed => 8.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HbA1cTarget::Tight => "below-6.5",
            HbA1cTarget::Usual => "below-7",
            HbA1cTarget::Relaxed => "below-8",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        HbA1cTarget::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// When the clinician should choose it, in the words of the standard.
    pub fn when(self) -> &'static str {
        match self {
            HbA1cTarget::Tight => "where it can be reached safely, without hypoglycaemia",
            HbA1cTarget::Usual => "many non-pregnant adults",
            HbA1cTarget::Relaxed => {
                "severe hypoglycaemia, major comorbidity or limited life expectancy"
            }
        }
    }

    pub fn range(self) -> TargetRange {
        TargetRange::below(self.percent())
    }
}

/// The ranges a reading is compared with when the patient has no agreed target of their own
/// for that measure. A site may change them (configuration, not code).
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultTargets {
    pub hba1c: TargetRange,
    /// mg/dL; the ADA's 70-180 range for time in range.
    pub glucose: TargetRange,
    /// Systolic mmHg; the ADA's below 130/80 for people with diabetes.
    pub systolic: TargetRange,
    pub diastolic: TargetRange,
}

impl Default for DefaultTargets {
    fn default() -> Self {
        DefaultTargets {
            hba1c: HbA1cTarget::Usual.range(),
            glucose: TargetRange::between(70.0, 180.0),
            systolic: TargetRange::below(130.0),
            diastolic: TargetRange::below(80.0),
        }
    }
}

impl DefaultTargets {
    /// The default range for a measure, where one exists (weight, peak flow, steps and the
    /// CAT are personal: only a goal sets them).
    pub fn for_measure(&self, m: Measure) -> Option<TargetRange> {
        match m {
            Measure::HbA1c => Some(self.hba1c),
            Measure::Glucose => Some(self.glucose),
            Measure::BloodPressure => Some(self.systolic),
            _ => None,
        }
    }

    /// Whether a value is outside the range that applies to it (see [`Self::standing`]).
    pub fn out_of_range(&self, m: Measure, v: &ReadingValue, own: Option<TargetRange>) -> bool {
        self.standing(m, v, own)
            .is_some_and(|s| s != Standing::InRange)
    }

    /// Where a reading falls against the range that applies to it: the patient's own target
    /// when there is one, else the default. Blood pressure is above when either number is,
    /// and below when either is below (and neither above).
    pub fn standing(
        &self,
        m: Measure,
        v: &ReadingValue,
        own: Option<TargetRange>,
    ) -> Option<Standing> {
        let target = own.or_else(|| self.for_measure(m))?;
        Some(match *v {
            ReadingValue::Single(x) => target.standing(x),
            ReadingValue::Pressure {
                systolic,
                diastolic,
            } => match (
                target.standing(systolic),
                self.diastolic.standing(diastolic),
            ) {
                (Standing::Above, _) | (_, Standing::Above) => Standing::Above,
                (Standing::Below, _) | (_, Standing::Below) => Standing::Below,
                _ => Standing::InRange,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_reading_stands_below_and_a_high_one_above() {
        let d = DefaultTargets::default();
        let g = |x| d.standing(Measure::Glucose, &ReadingValue::Single(x), None);
        assert_eq!(g(52.0), Some(Standing::Below));
        assert_eq!(g(120.0), Some(Standing::InRange));
        assert_eq!(g(212.0), Some(Standing::Above));
        let bp = d.standing(
            Measure::BloodPressure,
            &ReadingValue::Pressure {
                systolic: 120.0,
                diastolic: 92.0,
            },
            None,
        );
        assert_eq!(bp, Some(Standing::Above));
        assert_eq!(
            d.standing(Measure::Weight, &ReadingValue::Single(80.0), None),
            None
        );
    }

    #[test]
    fn out_of_range_uses_the_own_target_before_the_default() {
        let d = DefaultTargets::default();
        let v = ReadingValue::Single(7.5);
        assert!(d.out_of_range(Measure::HbA1c, &v, None));
        assert!(!d.out_of_range(Measure::HbA1c, &v, Some(HbA1cTarget::Relaxed.range())));
        let bp = ReadingValue::Pressure {
            systolic: 125.0,
            diastolic: 85.0,
        };
        assert!(d.out_of_range(Measure::BloodPressure, &bp, None));
        assert!(!d.out_of_range(Measure::Weight, &ReadingValue::Single(90.0), None));
    }
}
