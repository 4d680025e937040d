//! Speak Up (CLINICAL.md section 5): a concern raised by a patient or family member, and its
//! closed loop, as a state machine over recorded steps: received, acknowledged, looking into
//! it, action taken, answered to the reporter, and the reporter's word on whether they felt
//! heard. [`Concern::apply`] refuses a step that does not fit, with the reason.
//!
//! The deadlines are data ([`Rules`]): an urgent concern ("getting worse and nobody is
//! responding") is acknowledged within 15 minutes by the unit's rapid-response contact, then
//! the charge nurse, then the unit's manager; a routine one within 4 hours inpatient or 2
//! business days outpatient. A claim code lets an anonymous reporter follow their concern: it
//! is made from random bytes the caller supplies (randomness, like time, is a parameter here).

use crate::access::Role;
use crate::calendar::{BusinessCalendar, CalendarRefused, Within};
use crate::deadline::{Deadline, Escalation, Step as ChainStep};
use std::fmt;
use time::OffsetDateTime;

mod claim;
pub mod measures;
mod who;

pub use claim::*;
pub use who::*;

/// How fast a concern needs an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Urgency {
    /// Someone is getting worse and nobody is responding: the rapid-response contact at once.
    Urgent,
    Routine,
}

/// A concern about safety, or feedback ("we want to hear from you": compliments, suggestions,
/// complaints), which goes to the practice manager with the same loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Concern,
    Feedback,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Concern => "concern",
            Kind::Feedback => "feedback",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Concern, Kind::Feedback]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Where the concern arose, which sets the routine deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    Inpatient,
    Outpatient,
}

/// The deadlines of the loop and who owns them: configuration, with CLINICAL.md's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub urgent: Escalation,
    pub routine_inpatient: Escalation,
    pub routine_outpatient: Escalation,
    /// After the acknowledgement, how long until the reporter has an answer.
    pub answer: Within,
    /// The categories a reporter picks from (their keys; the pages translate them).
    pub categories: Vec<String>,
    /// Feedback: acknowledged by the practice manager, then answered within its own time.
    pub feedback: Escalation,
    pub feedback_answer: Within,
    pub feedback_categories: Vec<String>,
}

impl Default for Rules {
    fn default() -> Self {
        let step = |role, within| ChainStep { role, within };
        // Every step here is a team role, so the chain is valid; were it not, its first step
        // alone would still hold the promise.
        let chain = |steps: Vec<ChainStep>| {
            let first = steps[0];
            Escalation::new(steps).unwrap_or_else(|_| Escalation::single(first.role, first.within))
        };
        Rules {
            urgent: chain(vec![
                step(Role::RapidResponse, Within::Minutes(15)),
                step(Role::Nurse, Within::Minutes(15)),
                step(Role::ClinicLead, Within::Minutes(30)),
            ]),
            routine_inpatient: chain(vec![
                step(Role::Nurse, Within::Hours(4)),
                step(Role::ClinicLead, Within::Hours(4)),
            ]),
            routine_outpatient: chain(vec![
                step(Role::Nurse, Within::BusinessDays(2)),
                step(Role::ClinicLead, Within::BusinessDays(1)),
            ]),
            answer: Within::BusinessDays(5),
            categories: [
                "medication",
                "condition-worse",
                "identity",
                "hygiene",
                "communication",
                "respect",
                "other",
            ]
            .map(String::from)
            .to_vec(),
            feedback: Escalation::single(Role::ClinicLead, Within::BusinessDays(2)),
            feedback_answer: Within::BusinessDays(10),
            feedback_categories: ["compliment", "suggestion", "complaint"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl Rules {
    /// The chain a concern's acknowledgement follows.
    pub fn acknowledgement(&self, urgency: Urgency, place: Place) -> &Escalation {
        match (urgency, place) {
            (Urgency::Urgent, _) => &self.urgent,
            (Urgency::Routine, Place::Inpatient) => &self.routine_inpatient,
            (Urgency::Routine, Place::Outpatient) => &self.routine_outpatient,
        }
    }

    /// The chain a raised concern's or feedback's acknowledgement follows on a unit.
    pub fn acknowledgement_for(&self, c: &Concern, unit_routine: Option<Within>) -> Escalation {
        match c.kind {
            Kind::Feedback => self.feedback.clone(),
            Kind::Concern => self.acknowledgement_on(c.urgency, c.place, unit_routine),
        }
    }

    /// How long the answer may take once acknowledged.
    pub fn answer_within(&self, kind: Kind) -> Within {
        match kind {
            Kind::Concern => self.answer,
            Kind::Feedback => self.feedback_answer,
        }
    }

    /// The chain of a concern on a unit that sets its own routine acknowledgement time (the
    /// first step's time replaced; urgent concerns keep the site's chain).
    pub fn acknowledgement_on(
        &self,
        urgency: Urgency,
        place: Place,
        unit_routine: Option<Within>,
    ) -> Escalation {
        let chain = self.acknowledgement(urgency, place);
        match (urgency, unit_routine) {
            (Urgency::Routine, Some(within)) => chain.with_first_within(within),
            _ => chain.clone(),
        }
    }

    /// Rules whose categories are a non-empty list of distinct keys.
    pub fn with_categories(mut self, categories: Vec<String>) -> Result<Rules, CalendarRefused> {
        let mut seen = std::collections::BTreeSet::new();
        if categories.is_empty()
            || categories
                .iter()
                .any(|c| c.trim().is_empty() || !seen.insert(c.as_str()))
        {
            return Err(CalendarRefused(
                "Speak Up needs at least one category, each named once".into(),
            ));
        }
        self.categories = categories;
        Ok(self)
    }
}

/// Whether the reporter felt heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Heard {
    Yes,
    Partly,
    No,
}

impl Heard {
    pub const ALL: [Heard; 3] = [Heard::Yes, Heard::Partly, Heard::No];

    pub fn as_str(self) -> &'static str {
        match self {
            Heard::Yes => "yes",
            Heard::Partly => "partly",
            Heard::No => "no",
        }
    }

    pub fn parse(s: &str) -> Option<Heard> {
        Heard::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

/// A step of the loop after the concern was raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Acknowledged,
    LookingInto,
    ActionTaken {
        what: String,
    },
    Answered {
        text: String,
    },
    /// The reporter's word at the end.
    FeltHeard {
        heard: Heard,
        comment: String,
    },
}

impl Step {
    pub fn as_str(&self) -> &'static str {
        match self {
            Step::Acknowledged => "acknowledged",
            Step::LookingInto => "looking-into",
            Step::ActionTaken { .. } => "action-taken",
            Step::Answered { .. } => "answered",
            Step::FeltHeard { .. } => "felt-heard",
        }
    }

    /// A team step from its key and words (a form's fields); None for an unknown key.
    pub fn team(key: &str, words: &str) -> Option<Step> {
        let words = words.trim().to_string();
        Some(match key {
            "acknowledged" => Step::Acknowledged,
            "looking-into" => Step::LookingInto,
            "action-taken" => Step::ActionTaken { what: words },
            "answered" => Step::Answered { text: words },
            _ => return None,
        })
    }

    /// Whether the team takes this step (the reporter takes only the last).
    pub fn by_team(&self) -> bool {
        !matches!(self, Step::FeltHeard { .. })
    }
}

/// Where a concern stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Received,
    Acknowledged,
    LookingInto,
    ActionTaken,
    Answered,
    /// The reporter said whether they felt heard.
    Closed,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Received => "received",
            Stage::Acknowledged => "acknowledged",
            Stage::LookingInto => "looking-into",
            Stage::ActionTaken => "action-taken",
            Stage::Answered => "answered",
            Stage::Closed => "closed",
        }
    }
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub key: &'static str,
    pub english: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.english)
    }
}

impl std::error::Error for Refused {}

fn refuse(key: &'static str, english: &str) -> Refused {
    Refused {
        key,
        english: english.to_string(),
    }
}

/// The longest a concern's words (or an answer) may be, in characters.
pub const MAX_WORDS: usize = 4000;

/// The longest the room, the time in the reporter's words, or a safety event reference may be.
pub const MAX_DETAIL: usize = 200;

/// Checks the short details a reporter or manager adds (room, when, a safety event number).
pub fn check_details(details: &[&str]) -> Result<(), Refused> {
    if details.iter().any(|d| d.chars().count() > MAX_DETAIL) {
        return Err(refuse(
            "concern-field-long",
            "the room and the time take a few words each",
        ));
    }
    Ok(())
}

/// Checks words the team or the reporter write on a step (an action, an answer, a comment).
pub fn check_words(words: &str) -> Result<(), Refused> {
    if words.chars().count() > MAX_WORDS {
        return Err(refuse("concern-too-long", "keep it under 4,000 characters"));
    }
    Ok(())
}

/// A concern: what the reporter said, and the steps recorded since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    pub kind: Kind,
    pub urgency: Urgency,
    pub place: Place,
    pub category: String,
    pub raised_at: OffsetDateTime,
    pub steps: Vec<(Step, OffsetDateTime)>,
}

impl Concern {
    /// A new concern, checked: words to act on, a known category.
    pub fn raise(
        rules: &Rules,
        urgency: Urgency,
        place: Place,
        category: &str,
        what: &str,
        at: OffsetDateTime,
    ) -> Result<Concern, Refused> {
        Concern::checked(
            Kind::Concern,
            &rules.categories,
            urgency,
            place,
            category,
            what,
            at,
        )
    }

    /// Feedback ("we want to hear from you"), checked like a concern against the feedback
    /// categories; it keeps no urgency and no unit's hours.
    pub fn give_feedback(
        rules: &Rules,
        category: &str,
        what: &str,
        at: OffsetDateTime,
    ) -> Result<Concern, Refused> {
        Concern::checked(
            Kind::Feedback,
            &rules.feedback_categories,
            Urgency::Routine,
            Place::Outpatient,
            category,
            what,
            at,
        )
    }

    fn checked(
        kind: Kind,
        categories: &[String],
        urgency: Urgency,
        place: Place,
        category: &str,
        what: &str,
        at: OffsetDateTime,
    ) -> Result<Concern, Refused> {
        if what.trim().is_empty() {
            return Err(refuse(
                "concern-empty",
                "say in a few words what worries you",
            ));
        }
        if what.chars().count() > MAX_WORDS {
            return Err(refuse(
                "concern-too-long",
                "that is too long for one concern; keep it under 4,000 characters",
            ));
        }
        if !categories.iter().any(|c| c == category) {
            return Err(refuse("concern-category", "choose one of the categories"));
        }
        Ok(Concern {
            kind,
            urgency,
            place,
            category: category.to_string(),
            raised_at: at,
            steps: Vec::new(),
        })
    }

    pub fn stage(&self) -> Stage {
        self.steps
            .iter()
            .fold(Stage::Received, |s, (step, _)| match step {
                Step::Acknowledged => s.max(Stage::Acknowledged),
                Step::LookingInto => s.max(Stage::LookingInto),
                Step::ActionTaken { .. } => s.max(Stage::ActionTaken),
                Step::Answered { .. } => s.max(Stage::Answered),
                Step::FeltHeard { .. } => Stage::Closed,
            })
    }

    /// Whether the reporter is asked now whether they felt heard.
    pub fn awaits_reporter(&self) -> bool {
        self.stage() == Stage::Answered
    }

    /// The steps the team may take next (by their keys), in the loop's order.
    pub fn next_team_steps(&self) -> &'static [&'static str] {
        match self.stage() {
            Stage::Received => &["acknowledged"],
            Stage::Acknowledged => &["looking-into", "action-taken", "answered"],
            Stage::LookingInto => &["action-taken", "answered"],
            Stage::ActionTaken => &["answered"],
            Stage::Answered | Stage::Closed => &[],
        }
    }

    /// When the acknowledgement was due first (before any escalation), and who owned it.
    pub fn acknowledgement_due(&self, rules: &Rules, cal: &BusinessCalendar) -> Deadline {
        rules
            .acknowledgement_for(self, None)
            .open(cal, self.raised_at)
    }

    /// When it was acknowledged, if it was.
    pub fn acknowledged_at(&self) -> Option<OffsetDateTime> {
        self.steps
            .iter()
            .find(|(s, _)| *s == Step::Acknowledged)
            .map(|(_, at)| *at)
    }

    /// When the reporter was answered, if they were.
    pub fn answered_at(&self) -> Option<OffsetDateTime> {
        self.steps
            .iter()
            .find(|(s, _)| matches!(s, Step::Answered { .. }))
            .map(|(_, at)| *at)
    }

    /// Whether the acknowledgement came by its first deadline.
    pub fn acknowledged_on_time(&self, rules: &Rules, cal: &BusinessCalendar) -> Option<bool> {
        let due = self.acknowledgement_due(rules, cal).due;
        self.acknowledged_at().map(|at| at <= due)
    }

    /// When the answer is due: the answer period from the acknowledgement.
    pub fn answer_due(&self, rules: &Rules, cal: &BusinessCalendar) -> Option<OffsetDateTime> {
        self.acknowledged_at()
            .map(|at| rules.answer_within(self.kind).due(cal, at))
    }

    /// Records a step, or says why it does not fit: the loop goes forward only; an answer
    /// needs words; the reporter's word comes after the answer, once.
    pub fn apply(&mut self, step: Step, at: OffsetDateTime) -> Result<Stage, Refused> {
        if let Step::ActionTaken { what: w }
        | Step::Answered { text: w }
        | Step::FeltHeard { comment: w, .. } = &step
        {
            check_words(w)?;
        }
        let stage = self.stage();
        if stage == Stage::Closed {
            return Err(refuse(
                "concern-closed",
                "this concern is closed; raise a new one",
            ));
        }
        let fits = match &step {
            Step::Acknowledged => stage == Stage::Received,
            Step::LookingInto => stage == Stage::Acknowledged,
            Step::ActionTaken { what } => {
                if what.trim().is_empty() {
                    return Err(refuse("concern-action-empty", "say what was done"));
                }
                matches!(stage, Stage::Acknowledged | Stage::LookingInto)
            }
            Step::Answered { text } => {
                if text.trim().is_empty() {
                    return Err(refuse(
                        "concern-answer-empty",
                        "write the answer the reporter will read",
                    ));
                }
                matches!(
                    stage,
                    Stage::Acknowledged | Stage::LookingInto | Stage::ActionTaken
                )
            }
            Step::FeltHeard { .. } => stage == Stage::Answered,
        };
        if !fits {
            return Err(refuse(
                "concern-out-of-order",
                match stage {
                    Stage::Received => "acknowledge the concern first",
                    Stage::Answered => {
                        "the reporter has the answer; they say whether they felt heard"
                    }
                    _ => "this step has already been taken",
                },
            ));
        }
        self.steps.push((step, at));
        Ok(self.stage())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadline::Missed;
    use time::macros::datetime;

    fn new_york() -> BusinessCalendar {
        BusinessCalendar::new(
            "America/New_York",
            "08:00",
            "17:00",
            &["monday", "tuesday", "wednesday", "thursday", "friday"].map(String::from),
            &[],
        )
        .unwrap()
    }

    #[test]
    fn an_urgent_concern_is_due_in_15_minutes_and_escalates_up_the_unit() {
        let rules = Rules::default();
        let cal = new_york();
        let at = datetime!(2026-11-28 03:10 UTC); // a Saturday night: urgency keeps no hours
        let c = Concern::raise(
            &rules,
            Urgency::Urgent,
            Place::Inpatient,
            "condition-worse",
            "My father is getting worse and nobody comes",
            at,
        )
        .unwrap();
        let first = c.acknowledgement_due(&rules, &cal);
        assert_eq!(first.role, Role::RapidResponse);
        assert_eq!(first.due, at + time::Duration::minutes(15));
        let chain = rules.acknowledgement(Urgency::Urgent, Place::Inpatient);
        let Missed::Escalated(second) = chain.missed(&cal, &first) else {
            panic!("the charge nurse is next")
        };
        assert_eq!(second.role, Role::Nurse);
        assert_eq!(second.due, at + time::Duration::minutes(30));
        let Missed::Escalated(third) = chain.missed(&cal, &second) else {
            panic!("the manager is last")
        };
        assert_eq!(third.role, Role::ClinicLead);
        assert_eq!(chain.missed(&cal, &third), Missed::Exhausted);
    }

    #[test]
    fn a_routine_outpatient_concern_raised_on_friday_evening_is_due_at_the_close_of_tuesday() {
        let rules = Rules::default();
        let cal = new_york();
        // Friday 27 November 2026, 19:30 in New York (00:30 UTC Saturday).
        let at = datetime!(2026-11-28 00:30 UTC);
        let c = Concern::raise(
            &rules,
            Urgency::Routine,
            Place::Outpatient,
            "communication",
            "Nobody told us the results",
            at,
        )
        .unwrap();
        // Monday is the first business day after Friday, Tuesday the second: its close,
        // 17:00 EST, is 22:00 UTC.
        assert_eq!(
            c.acknowledgement_due(&rules, &cal).due,
            datetime!(2026-12-01 22:00 UTC)
        );
        let inpatient = Concern {
            place: Place::Inpatient,
            ..c.clone()
        };
        assert_eq!(
            inpatient.acknowledgement_due(&rules, &cal).due,
            at + time::Duration::hours(4)
        );
    }

    #[test]
    fn feedback_goes_to_the_practice_manager_within_its_own_times() {
        let rules = Rules::default();
        let cal = new_york();
        let at = datetime!(2026-11-30 15:00 UTC); // Monday 10:00 in New York
        let f = Concern::give_feedback(&rules, "compliment", "The nurses were kind", at).unwrap();
        assert_eq!(f.kind, Kind::Feedback);
        let due = f.acknowledgement_due(&rules, &cal);
        assert_eq!(due.role, Role::ClinicLead);
        assert_eq!(
            due.due,
            datetime!(2026-12-02 22:00 UTC),
            "close of Wednesday"
        );
        assert_eq!(
            Concern::give_feedback(&rules, "hygiene", "x", at)
                .unwrap_err()
                .key,
            "concern-category",
            "feedback has its own categories"
        );
        let mut f = f;
        f.apply(Step::Acknowledged, at).unwrap();
        assert_eq!(
            f.answer_due(&rules, &cal),
            Some(datetime!(2026-12-14 22:00 UTC)),
            "ten business days"
        );
    }

    #[test]
    fn a_unit_may_set_its_own_routine_time_but_not_the_urgent_one() {
        let rules = Rules::default();
        let own =
            rules.acknowledgement_on(Urgency::Routine, Place::Inpatient, Some(Within::Hours(2)));
        assert_eq!(own.steps()[0].within, Within::Hours(2));
        assert_eq!(own.steps()[1], rules.routine_inpatient.steps()[1]);
        let urgent =
            rules.acknowledgement_on(Urgency::Urgent, Place::Inpatient, Some(Within::Hours(2)));
        assert_eq!(urgent, rules.urgent);
    }

    #[test]
    fn the_loop_goes_forward_and_the_reporter_has_the_last_word() {
        let rules = Rules::default();
        let cal = new_york();
        let t0 = datetime!(2026-11-30 14:00 UTC);
        let mut c = Concern::raise(
            &rules,
            Urgency::Routine,
            Place::Inpatient,
            "hygiene",
            "No hand washing",
            t0,
        )
        .unwrap();
        assert_eq!(c.stage(), Stage::Received);
        let answer = Step::Answered {
            text: "Thank you; we reminded the team.".into(),
        };
        assert_eq!(
            c.apply(answer.clone(), t0).unwrap_err().key,
            "concern-out-of-order",
            "acknowledged first"
        );
        c.apply(Step::Acknowledged, t0 + time::Duration::hours(1))
            .unwrap();
        assert_eq!(c.acknowledged_on_time(&rules, &cal), Some(true));
        assert_eq!(
            c.apply(Step::Acknowledged, t0).unwrap_err().key,
            "concern-out-of-order"
        );
        assert_eq!(
            c.apply(Step::ActionTaken { what: " ".into() }, t0)
                .unwrap_err()
                .key,
            "concern-action-empty"
        );
        assert_eq!(
            c.apply(
                Step::FeltHeard {
                    heard: Heard::Yes,
                    comment: String::new()
                },
                t0
            )
            .unwrap_err()
            .key,
            "concern-out-of-order",
            "not before the answer"
        );
        assert_eq!(
            c.next_team_steps(),
            ["looking-into", "action-taken", "answered"]
        );
        c.apply(answer, t0 + time::Duration::hours(3)).unwrap();
        assert!(c.next_team_steps().is_empty());
        assert_eq!(c.stage(), Stage::Answered);
        assert!(
            c.answer_due(&rules, &cal)
                .is_some_and(|d| c.answered_at().unwrap() <= d)
        );
        c.apply(
            Step::FeltHeard {
                heard: Heard::Partly,
                comment: "Better".into(),
            },
            t0 + time::Duration::hours(5),
        )
        .unwrap();
        assert_eq!(c.stage(), Stage::Closed);
        assert_eq!(
            c.apply(Step::LookingInto, t0).unwrap_err().key,
            "concern-closed"
        );
    }

    #[test]
    fn a_late_acknowledgement_is_not_on_time() {
        let rules = Rules::default();
        let cal = new_york();
        let t0 = datetime!(2026-11-30 14:00 UTC);
        let mut c =
            Concern::raise(&rules, Urgency::Urgent, Place::Inpatient, "other", "x", t0).unwrap();
        assert_eq!(c.acknowledged_on_time(&rules, &cal), None);
        c.apply(Step::Acknowledged, t0 + time::Duration::minutes(16))
            .unwrap();
        assert_eq!(c.acknowledged_on_time(&rules, &cal), Some(false));
    }

    #[test]
    fn bad_input_is_refused_with_its_reason() {
        let rules = Rules::default();
        let t0 = datetime!(2026-11-30 14:00 UTC);
        let raise = |category: &str, what: &str| {
            Concern::raise(
                &rules,
                Urgency::Routine,
                Place::Inpatient,
                category,
                what,
                t0,
            )
        };
        assert_eq!(raise("hygiene", "  ").unwrap_err().key, "concern-empty");
        assert_eq!(raise("weather", "x").unwrap_err().key, "concern-category");
        assert_eq!(
            raise("hygiene", &"x".repeat(MAX_WORDS + 1))
                .unwrap_err()
                .key,
            "concern-too-long"
        );
        assert!(
            Rules::default()
                .with_categories(vec!["a".into(), "a".into()])
                .is_err()
        );
        assert!(Rules::default().with_categories(Vec::new()).is_err());
        assert_eq!(
            check_details(&["12", &"x".repeat(MAX_DETAIL + 1)])
                .unwrap_err()
                .key,
            "concern-field-long"
        );
        assert!(check_details(&["12", "last night"]).is_ok());
        let mut c = raise("hygiene", "x").unwrap();
        c.apply(Step::Acknowledged, t0).unwrap();
        let long = Step::Answered {
            text: "x".repeat(MAX_WORDS + 1),
        };
        assert_eq!(c.apply(long, t0).unwrap_err().key, "concern-too-long");
        assert!(!c.awaits_reporter());
        c.apply(Step::Answered { text: "ok".into() }, t0).unwrap();
        assert!(c.awaits_reporter());
    }
}
