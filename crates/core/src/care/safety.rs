//! Readings that need a response now, apart from being off target (CLINICAL.md section 2):
//! hypoglycaemia levels 1 and 2, very high glucose, a hypertensive crisis. The thresholds are
//! data a site may change; the defaults and their sources are in docs/care-plan.md.

use super::readings::{Measure, ReadingValue};
use crate::access::Role;
use crate::calendar::Within;
use crate::deadline::{Escalation, Step};

/// A reading that needs a response now, apart from being off target (CLINICAL.md section 2).
/// Ordered by severity: the first needs help soonest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Alert {
    /// Level 2 hypoglycaemia: glucose below 54 mg/dL (3.0 mmol/L).
    SevereLow,
    /// Hypertensive crisis: 180/120 or above.
    Crisis,
    /// Level 1 hypoglycaemia: glucose below 70 mg/dL (3.9 mmol/L).
    Low,
    /// Glucose above 300 mg/dL: for the team the same day.
    VeryHigh,
    /// Glucose above 250 mg/dL: the patient is told what to watch for; the team sees it
    /// flagged, with no same-day deadline unless it goes above 300.
    High,
}

impl Alert {
    pub const ALL: [Alert; 5] = [
        Alert::SevereLow,
        Alert::Crisis,
        Alert::Low,
        Alert::VeryHigh,
        Alert::High,
    ];

    /// The name used in message keys, codes and CSS classes.
    pub fn as_str(self) -> &'static str {
        match self {
            Alert::SevereLow => "severe-low",
            Alert::Crisis => "crisis",
            Alert::Low => "low",
            Alert::VeryHigh => "very-high",
            Alert::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Alert> {
        Alert::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether the team must respond the same day (an urgent Task with a deadline).
    pub fn same_day(self) -> bool {
        !matches!(self, Alert::High)
    }

    /// Whether the reading is low (as opposed to high), for the badge's word and colour.
    pub fn is_low(self) -> bool {
        matches!(self, Alert::SevereLow | Alert::Low)
    }
}

impl Alert {
    /// What the person who recorded the reading does now, as message keys in order (the
    /// pages translate them; `{ $emergency }` is the site's emergency number): the 15-15 rule
    /// for a low, fluids and ketones and when to call for a high, a recheck and the warning
    /// signs for a crisis pressure.
    pub fn what_to_do(self) -> &'static [&'static str] {
        match self {
            Alert::SevereLow | Alert::Low => &[
                "alert-low-step-sugar",
                "alert-low-step-recheck",
                "alert-low-step-eat",
                "alert-low-step-emergency",
            ],
            Alert::VeryHigh => &[
                "alert-high-step-water",
                "alert-high-step-ketones",
                "alert-high-step-emergency",
            ],
            Alert::High => &[
                "alert-high-step-water",
                "alert-high-step-ketones",
                "alert-high-step-call",
                "alert-high-step-emergency",
            ],
            Alert::Crisis => &["alert-crisis-step-recheck", "alert-crisis-step-emergency"],
        }
    }
}

/// Why something is on the team's "needs action now" list, most urgent first (the derived
/// order is the list's): dangerous lows, a crisis pressure, very high glucose, a rescue-pack
/// start, a "worse" check-in, any other urgent task, an overdue deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActNow {
    Reading(Alert),
    RescueStarted,
    NotBetter,
    Urgent,
    Overdue,
}

impl ActNow {
    /// Whether a team task needs action now, and why: its reading's alert, its rescue-pack
    /// kind, its priority, whether its deadline has passed.
    pub fn of(
        alert: Option<Alert>,
        rescue: Option<crate::rescue::TaskKind>,
        urgent: bool,
        overdue: bool,
    ) -> Option<ActNow> {
        use crate::rescue::TaskKind;
        match (alert, rescue) {
            (Some(a), _) => Some(ActNow::Reading(a)),
            (_, Some(TaskKind::Contact)) => Some(ActNow::RescueStarted),
            (_, Some(TaskKind::NotBetter)) => Some(ActNow::NotBetter),
            _ if urgent => Some(ActNow::Urgent),
            _ if overdue => Some(ActNow::Overdue),
            _ => None,
        }
    }

    /// Whether it is urgent in itself (not only late).
    pub fn urgent(self) -> bool {
        self != ActNow::Overdue
    }
}

/// Who responds to a reading that needs a response the same day, and how soon: the clinician
/// within 4 hours, then the clinic lead within 4 more.
pub fn urgent_response() -> Escalation {
    let steps = vec![
        Step {
            role: Role::Clinician,
            within: Within::Hours(4),
        },
        Step {
            role: Role::ClinicLead,
            within: Within::Hours(4),
        },
    ];
    Escalation::new(steps).unwrap_or_else(|_| Escalation::single(Role::Clinician, Within::Hours(4)))
}

/// The thresholds at which a reading needs a response now. Configurable data: a site may
/// change them; the defaults are the sources' (CLINICAL.md section 2): hypoglycaemia levels 1
/// and 2 from the ADA Standards of Care (Glycemic Targets), high glucose from the ADA's patient
/// guidance, the hypertensive crisis from the 2017 ACC/AHA guideline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyThresholds {
    /// mg/dL; below this is level 1 hypoglycaemia.
    pub glucose_low: f64,
    /// mg/dL; below this is level 2.
    pub glucose_severe_low: f64,
    /// mg/dL; above this the patient is told what to watch for.
    pub glucose_high: f64,
    /// mg/dL; above this the team responds the same day.
    pub glucose_very_high: f64,
    /// mmHg; at or above either number is a hypertensive crisis.
    pub systolic_crisis: f64,
    pub diastolic_crisis: f64,
}

impl Default for SafetyThresholds {
    fn default() -> Self {
        SafetyThresholds {
            glucose_low: 70.0,
            glucose_severe_low: 54.0,
            glucose_high: 250.0,
            glucose_very_high: 300.0,
            systolic_crisis: 180.0,
            diastolic_crisis: 120.0,
        }
    }
}

/// A reading taken more than this long ago (entered late, or a year of readings uploaded at
/// once) is history: it is still flagged on the team's list, but it sets off no same-day
/// response.
pub const RESPOND_WITHIN: time::Duration = time::Duration::hours(24);

/// Whether a reading taken at `at` is recent enough to need a response now.
pub fn recent(at: time::OffsetDateTime, now: time::OffsetDateTime) -> bool {
    now - at <= RESPOND_WITHIN
}

impl SafetyThresholds {
    /// Thresholds that make sense together: each level beyond the one before it.
    pub fn new(t: SafetyThresholds) -> Result<SafetyThresholds, String> {
        let ok = t.glucose_severe_low < t.glucose_low
            && t.glucose_low < t.glucose_high
            && t.glucose_high <= t.glucose_very_high
            && t.diastolic_crisis < t.systolic_crisis
            && [
                t.glucose_low,
                t.glucose_severe_low,
                t.glucose_high,
                t.glucose_very_high,
                t.systolic_crisis,
                t.diastolic_crisis,
            ]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0);
        if ok {
            Ok(t)
        } else {
            Err(
                "the reading safety thresholds must be positive, with glucose_severe_low < \
                 glucose_low < glucose_high <= glucose_very_high and diastolic_crisis < \
                 systolic_crisis"
                    .into(),
            )
        }
    }

    /// The response a reading needs now, if any.
    pub fn alert(&self, m: Measure, v: &ReadingValue) -> Option<Alert> {
        match (m, *v) {
            (Measure::Glucose, ReadingValue::Single(x)) => {
                if x < self.glucose_severe_low {
                    Some(Alert::SevereLow)
                } else if x < self.glucose_low {
                    Some(Alert::Low)
                } else if x > self.glucose_very_high {
                    Some(Alert::VeryHigh)
                } else if x > self.glucose_high {
                    Some(Alert::High)
                } else {
                    None
                }
            }
            (
                Measure::BloodPressure,
                ReadingValue::Pressure {
                    systolic,
                    diastolic,
                },
            ) if systolic >= self.systolic_crisis || diastolic >= self.diastolic_crisis => {
                Some(Alert::Crisis)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glucose_lows_and_highs_and_a_crisis_pressure_need_a_response_now() {
        let t = SafetyThresholds::default();
        let g = |x| t.alert(Measure::Glucose, &ReadingValue::Single(x));
        assert_eq!(g(52.0), Some(Alert::SevereLow));
        assert_eq!(g(53.9), Some(Alert::SevereLow));
        assert_eq!(g(54.0), Some(Alert::Low));
        assert_eq!(g(69.0), Some(Alert::Low));
        assert_eq!(g(70.0), None);
        assert_eq!(g(212.0), None);
        assert_eq!(g(250.0), None);
        assert_eq!(g(251.0), Some(Alert::High));
        assert_eq!(g(301.0), Some(Alert::VeryHigh));
        let bp = |s, d| {
            t.alert(
                Measure::BloodPressure,
                &ReadingValue::Pressure {
                    systolic: s,
                    diastolic: d,
                },
            )
        };
        assert_eq!(bp(131.0, 92.0), None);
        assert_eq!(bp(179.0, 119.0), None);
        assert_eq!(bp(180.0, 100.0), Some(Alert::Crisis));
        assert_eq!(bp(160.0, 120.0), Some(Alert::Crisis));
        // Other measures have no alert, whatever their value.
        assert_eq!(t.alert(Measure::HbA1c, &ReadingValue::Single(14.0)), None);
        // Severity order: the most urgent first.
        let mut all = Alert::ALL.to_vec();
        all.reverse();
        all.sort();
        assert_eq!(all[0], Alert::SevereLow);
        assert!(Alert::SevereLow.same_day() && Alert::Crisis.same_day() && !Alert::High.same_day());
        assert!(
            Alert::ALL
                .iter()
                .all(|a| Alert::parse(a.as_str()) == Some(*a))
        );
    }

    #[test]
    fn only_a_recent_reading_needs_a_response_now() {
        let now = time::macros::datetime!(2026-11-29 12:00 UTC);
        assert!(recent(now - time::Duration::hours(23), now));
        assert!(recent(now - RESPOND_WITHIN, now));
        assert!(!recent(now - time::Duration::hours(25), now));
    }

    #[test]
    fn a_low_is_treated_with_the_15_15_rule_and_the_team_answers_the_same_day() {
        assert_eq!(Alert::Low.what_to_do()[0], "alert-low-step-sugar");
        assert_eq!(Alert::SevereLow.what_to_do(), Alert::Low.what_to_do());
        assert!(Alert::ALL.iter().all(|a| {
            a.what_to_do()
                .last()
                .is_some_and(|k| k.ends_with("emergency"))
        }));
        let chain = urgent_response();
        assert_eq!(chain.steps()[0].role, Role::Clinician);
        assert_eq!(chain.steps()[0].within, Within::Hours(4));
        assert_eq!(chain.steps().len(), 2);
    }

    #[test]
    fn needs_action_now_puts_lows_first_and_late_tasks_last() {
        use crate::rescue::TaskKind;
        let mut seen = vec![
            ActNow::of(None, None, false, true),
            ActNow::of(None, Some(TaskKind::NotBetter), true, false),
            ActNow::of(Some(Alert::VeryHigh), None, true, false),
            ActNow::of(None, Some(TaskKind::Contact), true, false),
            ActNow::of(Some(Alert::SevereLow), None, true, false),
            ActNow::of(None, None, true, false),
        ];
        seen.sort();
        assert_eq!(
            seen,
            vec![
                Some(ActNow::Reading(Alert::SevereLow)),
                Some(ActNow::Reading(Alert::VeryHigh)),
                Some(ActNow::RescueStarted),
                Some(ActNow::NotBetter),
                Some(ActNow::Urgent),
                Some(ActNow::Overdue),
            ]
        );
        assert_eq!(
            ActNow::of(None, Some(TaskKind::Outcome), false, false),
            None
        );
    }

    #[test]
    fn thresholds_out_of_order_are_refused() {
        assert!(SafetyThresholds::new(SafetyThresholds::default()).is_ok());
        let swapped = SafetyThresholds {
            glucose_low: 50.0,
            ..SafetyThresholds::default()
        };
        assert!(SafetyThresholds::new(swapped).is_err());
        let nan = SafetyThresholds {
            systolic_crisis: f64::NAN,
            ..SafetyThresholds::default()
        };
        assert!(SafetyThresholds::new(nan).is_err());
    }
}
