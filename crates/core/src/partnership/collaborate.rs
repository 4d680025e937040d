//! The patient's voice on shared decisions: CollaboRATE (Elwyn G, Barr PJ, Grande SW et al.,
//! "Developing CollaboRATE: a fast and frugal patient-reported measure of shared decision
//! making in clinical encounters", Patient Educ Couns 2013;93(1):102-107), three questions a
//! patient, parent or representative answers after a visit, each from 0 (no effort was made)
//! to 4 (every effort was made). Its 5-point version is published by the PhenX Toolkit
//! (protocol 662301) as freely available, permission not required for use.
//!
//! It is reported as its authors recommend for performance: the share of responses with the
//! top score on all three questions.

use super::GoalStep;
use crate::access::Role;
use crate::care::plan::Side;
use time::{Duration, OffsetDateTime};

/// The three questions, by their link ids: help to understand the health issues, listening
/// to what matters most, and including what matters most in choosing what to do next.
pub const ITEMS: [&str; 3] = ["understand", "listen", "include"];

/// The top of the scale: every effort was made.
pub const TOP: u8 = 4;

/// How long after a visit or a change to the plan the questions are asked.
pub const ASK_WITHIN: Duration = Duration::days(30);

/// One response: an answer from 0 to 4 to each question, in the order of [`ITEMS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answers([u8; 3]);

impl Answers {
    /// A response, each answer on the scale; `None` names the first question out of it or
    /// not answered.
    pub fn new(values: [Option<u8>; 3]) -> Result<Answers, &'static str> {
        let mut out = [0; 3];
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) if *v <= TOP => out[i] = *v,
                _ => return Err(ITEMS[i]),
            }
        }
        Ok(Answers(out))
    }

    pub fn values(&self) -> [u8; 3] {
        self.0
    }

    /// Every effort was made, on all three.
    pub fn top_score(&self) -> bool {
        self.0.iter().all(|v| *v == TOP)
    }
}

/// Who answers: the patient or a family member on their behalf; never the care team.
pub fn may_answer(role: Role) -> bool {
    Side::of(role) == Some(Side::Patient)
}

/// Whether a goal's step is the team changing the plan (proposing, agreeing, declining or
/// suggesting a change, not a note), after which the patient's side is asked.
pub fn changes_the_plan(step: &GoalStep) -> bool {
    step.side == Some(Side::Team) && step.event != "note"
}

/// Whether to ask the patient's side now: a visit ended or the team changed the plan within
/// [`ASK_WITHIN`], and nothing was answered since.
pub fn due(
    last_change: Option<OffsetDateTime>,
    last_answered: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    match last_change {
        Some(c) => now - c <= ASK_WITHIN && last_answered.is_none_or(|a| a < c),
        None => false,
    }
}

/// The responses of a period and those with the top score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub responses: usize,
    pub top: usize,
}

impl Rate {
    pub fn add(&mut self, a: &Answers) {
        self.responses += 1;
        if a.top_score() {
            self.top += 1;
        }
    }

    /// Adds another part's responses.
    pub fn merge(&mut self, other: Rate) {
        self.responses += other.responses;
        self.top += other.top;
    }

    /// The top-score rate in percent.
    pub fn pct(&self) -> Option<f64> {
        (self.responses > 0).then(|| 100.0 * self.top as f64 / self.responses as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn answers_are_on_the_scale_and_the_rate_counts_top_scores() {
        assert_eq!(Answers::new([Some(4), None, Some(1)]), Err("listen"));
        assert_eq!(Answers::new([Some(4), Some(5), Some(1)]), Err("listen"));
        let top = Answers::new([Some(4), Some(4), Some(4)]).unwrap();
        let most = Answers::new([Some(4), Some(3), Some(4)]).unwrap();
        assert!(top.top_score() && !most.top_score());
        let mut r = Rate::default();
        for a in [top, most, top, most] {
            r.add(&a);
        }
        assert_eq!((r.responses, r.top, r.pct()), (4, 2, Some(50.0)));
        assert_eq!(Rate::default().pct(), None);
    }

    #[test]
    fn the_patients_side_answers_after_the_team_changes_the_plan() {
        assert!(may_answer(Role::Patient) && may_answer(Role::Family));
        assert!(!may_answer(Role::Clinician) && !may_answer(Role::QualityAnalyst));
        let at = datetime!(2026-06-01 10:00 UTC);
        let step = |side, event| GoalStep {
            at,
            side: Some(side),
            event,
        };
        assert!(changes_the_plan(&step(Side::Team, "agreed")));
        assert!(!changes_the_plan(&step(Side::Team, "note")));
        assert!(!changes_the_plan(&step(Side::Patient, "proposed")));
    }

    #[test]
    fn asked_within_30_days_of_a_change_unless_answered_since() {
        let change = datetime!(2026-06-01 10:00 UTC);
        let now = change + Duration::days(3);
        assert!(due(Some(change), None, now));
        assert!(due(Some(change), Some(change - Duration::days(40)), now));
        assert!(!due(Some(change), Some(change + Duration::hours(1)), now));
        assert!(!due(Some(change), None, change + Duration::days(31)));
        assert!(!due(None, None, now));
    }
}
