//! The shared care plan: goals that either side proposes and both agree, and activities that
//! each have an owner, a setting and a due date or cadence (CLINICAL.md sections 1 and 7).

use crate::access::Role;
use crate::care::readings::add_months;
use std::fmt;
use time::{Duration, OffsetDateTime};

/// The two sides of the partnership. A family member speaks on the patient's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Patient,
    Team,
}

impl Side {
    pub fn of(role: Role) -> Option<Side> {
        match role {
            Role::Patient | Role::Family => Some(Side::Patient),
            r if r.is_team() => Some(Side::Team),
            _ => None,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Patient => Side::Team,
            Side::Team => Side::Patient,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Patient => "patient",
            Side::Team => "team",
        }
    }

    pub fn parse(s: &str) -> Option<Side> {
        [Side::Patient, Side::Team]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Where a goal stands between the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalState {
    /// Proposed (or changed) by one side; the other side's answer is awaited.
    Awaiting(Side),
    /// Both sides agree: the goal is being worked on.
    Agreed,
    /// The other side declined, with a reason.
    Declined,
    /// Reached, or no longer pursued.
    Closed,
}

/// An answer to a proposed goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoalAnswer {
    Agree,
    /// A different wording or target; the proposer is then asked.
    SuggestChange(String),
    Decline(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoalRefused {
    /// It is the other side's turn.
    NotYourTurn,
    /// The goal is agreed, declined or closed.
    Settled,
    /// A decline or a change needs words.
    ReasonNeeded,
}

impl fmt::Display for GoalRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GoalRefused::NotYourTurn => "this goal is waiting for the other side's answer",
            GoalRefused::Settled => "this goal has already been answered",
            GoalRefused::ReasonNeeded => "say in a few words why, or what you suggest",
        })
    }
}

impl std::error::Error for GoalRefused {}

impl GoalRefused {
    pub fn key(&self) -> &'static str {
        match self {
            GoalRefused::NotYourTurn => "goal-not-your-turn",
            GoalRefused::Settled => "goal-settled",
            GoalRefused::ReasonNeeded => "goal-reason-needed",
        }
    }
}

impl GoalState {
    /// A new proposal by one side waits for the other.
    pub fn proposed_by(side: Side) -> GoalState {
        GoalState::Awaiting(side.other())
    }

    /// Whether someone in this role answers a goal for their side: the patient for themselves,
    /// any team role for the team. A family member proposes goals and follows them; agreeing
    /// to a goal is the patient's own word.
    pub fn may_answer(role: Role) -> bool {
        role == Role::Patient || role.is_team()
    }

    /// The next state when `side` answers. A suggested change goes back to the side that
    /// proposed, which can agree, decline or change it again.
    pub fn answer(self, side: Side, answer: &GoalAnswer) -> Result<GoalState, GoalRefused> {
        match self {
            GoalState::Awaiting(waiting) if waiting == side => match answer {
                GoalAnswer::Agree => Ok(GoalState::Agreed),
                GoalAnswer::SuggestChange(s) if s.trim().is_empty() => {
                    Err(GoalRefused::ReasonNeeded)
                }
                GoalAnswer::SuggestChange(_) => Ok(GoalState::Awaiting(side.other())),
                GoalAnswer::Decline(s) if s.trim().is_empty() => Err(GoalRefused::ReasonNeeded),
                GoalAnswer::Decline(_) => Ok(GoalState::Declined),
            },
            GoalState::Awaiting(_) => Err(GoalRefused::NotYourTurn),
            GoalState::Agreed | GoalState::Declined | GoalState::Closed => {
                Err(GoalRefused::Settled)
            }
        }
    }

    /// FHIR Goal.lifecycleStatus for this state.
    pub fn lifecycle_status(self) -> &'static str {
        match self {
            GoalState::Awaiting(_) => "proposed",
            GoalState::Agreed => "active",
            GoalState::Declined => "rejected",
            GoalState::Closed => "completed",
        }
    }

    /// The state from FHIR Goal.lifecycleStatus and the side awaited (our extension).
    pub fn from_fhir(lifecycle: &str, awaiting: Option<Side>) -> GoalState {
        match lifecycle {
            "proposed" | "planned" => GoalState::Awaiting(awaiting.unwrap_or(Side::Team)),
            "rejected" => GoalState::Declined,
            "completed" | "cancelled" | "entered-in-error" => GoalState::Closed,
            _ => GoalState::Agreed,
        }
    }
}

/// Who owns a care-plan activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Patient,
    Family,
    Team(Role),
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Patient => "patient",
            Owner::Family => "family",
            Owner::Team(r) => r.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Owner> {
        match s {
            "patient" => Some(Owner::Patient),
            "family" => Some(Owner::Family),
            other => Role::parse(other).filter(|r| r.is_team()).map(Owner::Team),
        }
    }

    pub fn side(self) -> Side {
        match self {
            Owner::Patient | Owner::Family => Side::Patient,
            Owner::Team(_) => Side::Team,
        }
    }

    /// Every owner a plan can name.
    pub fn all() -> Vec<Owner> {
        let mut v = vec![Owner::Patient, Owner::Family];
        v.extend(
            Role::ALL
                .into_iter()
                .filter(|r| r.is_team())
                .map(Owner::Team),
        );
        v
    }

    /// Whether a side may put an activity with this owner on the plan: the team any, the
    /// patient's side only its own (the team says what it will do).
    pub fn may_be_added_by(self, side: Side) -> bool {
        side == Side::Team || self.side() == Side::Patient
    }

    /// Whether someone in `role` may mark this activity done: the patient and family their
    /// own side's activities, a team member any team activity.
    pub fn may_be_done_by(self, role: Role) -> bool {
        match self {
            Owner::Patient | Owner::Family => matches!(role, Role::Patient | Role::Family),
            Owner::Team(_) => role.is_team(),
        }
    }
}

/// The setting of care (CLINICAL.md section 1), from low to high patient agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    CriticalCare,
    Inpatient,
    Procedure,
    Outpatient,
    SelfCare,
}

impl Setting {
    pub const ALL: [Setting; 5] = [
        Setting::CriticalCare,
        Setting::Inpatient,
        Setting::Procedure,
        Setting::Outpatient,
        Setting::SelfCare,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Setting::CriticalCare => "critical-care",
            Setting::Inpatient => "inpatient",
            Setting::Procedure => "procedure",
            Setting::Outpatient => "outpatient",
            Setting::SelfCare => "self-care",
        }
    }

    pub fn parse(s: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// When an activity is due: once by a date, or every so often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    By(OffsetDateTime),
    Every(Cadence),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    Days(u32),
    Weeks(u32),
    Months(u32),
}

impl Cadence {
    pub fn after(self, t: OffsetDateTime) -> OffsetDateTime {
        match self {
            Cadence::Days(n) => t + Duration::days(i64::from(n)),
            Cadence::Weeks(n) => t + Duration::weeks(i64::from(n)),
            Cadence::Months(n) => add_months(t, n),
        }
    }

    /// FHIR Timing.repeat: (frequency 1, period, periodUnit).
    pub fn fhir(self) -> (u32, &'static str) {
        match self {
            Cadence::Days(n) => (n, "d"),
            Cadence::Weeks(n) => (n, "wk"),
            Cadence::Months(n) => (n, "mo"),
        }
    }

    pub fn from_fhir(period: u32, unit: &str) -> Option<Cadence> {
        match (period, unit) {
            (0, _) => None,
            (n, "d") => Some(Cadence::Days(n)),
            (n, "wk") => Some(Cadence::Weeks(n)),
            (n, "mo") => Some(Cadence::Months(n)),
            _ => None,
        }
    }
}

/// The facts about one activity that decide when it is due.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityFacts {
    pub owner: Owner,
    pub schedule: Schedule,
    /// When it was put on the plan.
    pub added: OffsetDateTime,
    /// When it was last marked done.
    pub last_done: Option<OffsetDateTime>,
    /// A one-off activity that is done, or one stopped or cancelled.
    pub finished: bool,
}

impl ActivityFacts {
    /// When it is next due; none once finished.
    pub fn next_due(&self) -> Option<OffsetDateTime> {
        if self.finished {
            return None;
        }
        match self.schedule {
            Schedule::By(t) => Some(t),
            Schedule::Every(c) => Some(c.after(self.last_done.unwrap_or(self.added))),
        }
    }

    pub fn overdue(&self, now: OffsetDateTime) -> bool {
        self.next_due().is_some_and(|d| d < now)
    }
}

/// Whether a coding names COPD: ICD-10-CM J44.x or SNOMED CT 13645005 (CLINICAL.md
/// section 3). A stay or visit is COPD-related when its principal diagnosis is.
pub fn is_copd(system: &str, code: &str) -> bool {
    (system == "http://hl7.org/fhir/sid/icd-10-cm" && code.starts_with("J44"))
        || (system == "http://snomed.info/sct" && code == "13645005")
}

/// Whether a coding names diabetes mellitus: ICD-10-CM E08 to E13, or SNOMED CT diabetes
/// mellitus (73211009), type 1 (46635009) or type 2 (44054006).
pub fn is_diabetes(system: &str, code: &str) -> bool {
    (system == "http://hl7.org/fhir/sid/icd-10-cm"
        && ["E08", "E09", "E10", "E11", "E13"]
            .iter()
            .any(|p| code.starts_with(p)))
        || (system == "http://snomed.info/sct"
            && ["73211009", "46635009", "44054006"].contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patient_and_the_team_answer_goals_a_family_member_does_not() {
        assert!(GoalState::may_answer(Role::Patient));
        assert!(GoalState::may_answer(Role::Clinician));
        assert!(GoalState::may_answer(Role::SocialWorker));
        assert!(!GoalState::may_answer(Role::Family));
        assert!(!GoalState::may_answer(Role::QualityAnalyst));
        assert!(!GoalState::may_answer(Role::Admin));
    }
    use time::macros::datetime;

    #[test]
    fn copd_is_j44_or_its_snomed_concept() {
        assert!(is_copd("http://hl7.org/fhir/sid/icd-10-cm", "J44.1"));
        assert!(is_copd("http://snomed.info/sct", "13645005"));
        assert!(!is_copd("http://hl7.org/fhir/sid/icd-10-cm", "J45.909"));
        assert!(is_diabetes("http://hl7.org/fhir/sid/icd-10-cm", "E11.9"));
        assert!(is_diabetes("http://snomed.info/sct", "44054006"));
        assert!(!is_diabetes("http://hl7.org/fhir/sid/icd-10-cm", "E78.5"));
        assert!(!is_copd("http://loinc.org", "J44.1"));
    }

    #[test]
    fn a_goal_proposed_by_the_patient_waits_for_the_team() {
        let s = GoalState::proposed_by(Side::Patient);
        assert_eq!(s, GoalState::Awaiting(Side::Team));
        assert_eq!(
            s.answer(Side::Patient, &GoalAnswer::Agree),
            Err(GoalRefused::NotYourTurn)
        );
        assert_eq!(
            s.answer(Side::Team, &GoalAnswer::Agree),
            Ok(GoalState::Agreed)
        );
        assert_eq!(
            GoalState::Agreed.answer(Side::Team, &GoalAnswer::Agree),
            Err(GoalRefused::Settled)
        );
    }

    #[test]
    fn a_suggested_change_goes_back_to_the_proposer() {
        let s = GoalState::proposed_by(Side::Team);
        let changed = s
            .answer(
                Side::Patient,
                &GoalAnswer::SuggestChange("walk 3 days, not 5".into()),
            )
            .unwrap();
        assert_eq!(changed, GoalState::Awaiting(Side::Team));
        assert_eq!(
            changed.answer(Side::Team, &GoalAnswer::Agree),
            Ok(GoalState::Agreed)
        );
    }

    #[test]
    fn a_decline_needs_a_reason() {
        let s = GoalState::proposed_by(Side::Team);
        assert_eq!(
            s.answer(Side::Patient, &GoalAnswer::Decline("  ".into())),
            Err(GoalRefused::ReasonNeeded)
        );
        assert_eq!(
            s.answer(
                Side::Patient,
                &GoalAnswer::Decline("too much right now".into())
            ),
            Ok(GoalState::Declined)
        );
    }

    #[test]
    fn goal_states_round_trip_through_fhir() {
        for s in [
            GoalState::Awaiting(Side::Patient),
            GoalState::Awaiting(Side::Team),
            GoalState::Agreed,
            GoalState::Declined,
            GoalState::Closed,
        ] {
            let awaiting = match s {
                GoalState::Awaiting(x) => Some(x),
                _ => None,
            };
            assert_eq!(GoalState::from_fhir(s.lifecycle_status(), awaiting), s);
        }
    }

    #[test]
    fn patients_mark_their_own_activities_done_and_teams_theirs() {
        assert!(Owner::Patient.may_be_done_by(Role::Family));
        assert!(!Owner::Patient.may_be_done_by(Role::Nurse));
        assert!(Owner::Team(Role::Nurse).may_be_done_by(Role::Clinician));
        assert!(!Owner::Team(Role::Nurse).may_be_done_by(Role::Patient));
        for o in Owner::all() {
            assert_eq!(Owner::parse(o.as_str()), Some(o));
        }
        assert_eq!(Owner::parse("admin"), None);
        assert!(Owner::Family.may_be_added_by(Side::Patient));
        assert!(!Owner::Team(Role::Pharmacist).may_be_added_by(Side::Patient));
        assert!(Owner::Team(Role::Pharmacist).may_be_added_by(Side::Team));
    }

    #[test]
    fn a_weekly_activity_is_due_a_week_after_it_was_last_done() {
        let added = datetime!(2026-11-01 9:00 UTC);
        let mut a = ActivityFacts {
            owner: Owner::Patient,
            schedule: Schedule::Every(Cadence::Weeks(1)),
            added,
            last_done: None,
            finished: false,
        };
        assert_eq!(a.next_due(), Some(datetime!(2026-11-08 9:00 UTC)));
        a.last_done = Some(datetime!(2026-11-10 9:00 UTC));
        assert_eq!(a.next_due(), Some(datetime!(2026-11-17 9:00 UTC)));
        assert!(!a.overdue(datetime!(2026-11-17 8:00 UTC)));
        assert!(a.overdue(datetime!(2026-11-17 10:00 UTC)));
        a.finished = true;
        assert!(!a.overdue(datetime!(2027-01-01 0:00 UTC)));
    }
}
