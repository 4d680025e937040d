//! Deadlines with an escalation chain: a promise is owned by a role and due at a time; when the
//! time passes it is missed (and counted), and it moves to the next role in the chain with a
//! new due time. After the last role it stays overdue with that role.

use crate::access::Role;
use crate::calendar::{BusinessCalendar, CalendarRefused, Within};
use time::OffsetDateTime;

/// One step of a chain: who owns the promise, and how long they have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub role: Role,
    pub within: Within,
}

/// Who owns a promise first, and who next when it is missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    steps: Vec<Step>,
}

/// Where a promise stands: its step in the chain, the role that owns it, and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub level: usize,
    pub role: Role,
    pub due: OffsetDateTime,
}

/// What happens when a deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// The next role owns it now, due at the new time.
    Escalated(Deadline),
    /// The chain is exhausted: it stays overdue with the last role.
    Exhausted,
}

/// How a deadline looks to the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Due,
    Overdue,
    /// Missed at least once and moved up the chain (and not yet overdue again).
    Escalated,
}

impl Standing {
    pub fn of(d: &Deadline, now: OffsetDateTime) -> Standing {
        if now > d.due {
            Standing::Overdue
        } else if d.level > 0 {
            Standing::Escalated
        } else {
            Standing::Due
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Due => "due",
            Standing::Overdue => "overdue",
            Standing::Escalated => "escalated",
        }
    }
}

impl Escalation {
    /// A chain from its steps, each a team role.
    pub fn new(steps: Vec<Step>) -> Result<Self, CalendarRefused> {
        if steps.is_empty() {
            return Err(CalendarRefused(
                "an escalation chain needs at least one step".into(),
            ));
        }
        if let Some(s) = steps.iter().find(|s| !s.role.is_team()) {
            return Err(CalendarRefused(format!(
                "'{}' is not a care-team role, so it cannot own a team deadline",
                s.role
            )));
        }
        Ok(Escalation { steps })
    }

    /// One step: a role with this long.
    pub fn single(role: Role, within: Within) -> Self {
        Escalation {
            steps: vec![Step { role, within }],
        }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The same chain with its first step given this long (a unit's or a site's own time).
    pub fn with_first_within(&self, within: Within) -> Escalation {
        let mut steps = self.steps.clone();
        steps[0].within = within;
        Escalation { steps }
    }

    /// The first deadline of a promise made at `from`.
    pub fn open(&self, cal: &BusinessCalendar, from: OffsetDateTime) -> Deadline {
        let first = self.steps[0];
        Deadline {
            level: 0,
            role: first.role,
            due: first.within.due(cal, from),
        }
    }

    /// The deadline at a step of the chain, its time counted from `from` (None past the end).
    pub fn at_level(
        &self,
        cal: &BusinessCalendar,
        level: usize,
        from: OffsetDateTime,
    ) -> Option<Deadline> {
        self.steps.get(level).map(|s| Deadline {
            level,
            role: s.role,
            due: s.within.due(cal, from),
        })
    }

    /// What follows when `d` passes: the next step's time counts from the missed due time.
    pub fn missed(&self, cal: &BusinessCalendar, d: &Deadline) -> Missed {
        match self.at_level(cal, d.level + 1, d.due) {
            Some(next) => Missed::Escalated(next),
            None => Missed::Exhausted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn chain() -> Escalation {
        Escalation::new(vec![
            Step {
                role: Role::Nurse,
                within: Within::BusinessDays(1),
            },
            Step {
                role: Role::Clinician,
                within: Within::parse("4 business hours").expect("a period"),
            },
            Step {
                role: Role::ClinicLead,
                within: Within::BusinessDays(1),
            },
        ])
        .expect("a chain")
    }

    #[test]
    fn a_missed_deadline_moves_up_the_chain_then_stays_with_the_last_role() {
        let cal = BusinessCalendar::default();
        let c = chain();
        let first = c.open(&cal, datetime!(2026-11-27 18:00 UTC));
        assert_eq!(first.role, Role::Nurse);
        assert_eq!(first.due, datetime!(2026-11-30 17:00 UTC));
        assert_eq!(
            Standing::of(&first, datetime!(2026-11-30 16:59 UTC)),
            Standing::Due
        );
        assert_eq!(
            Standing::of(&first, datetime!(2026-11-30 17:01 UTC)),
            Standing::Overdue
        );
        let Missed::Escalated(second) = c.missed(&cal, &first) else {
            panic!("the nurse's deadline escalates to the clinician")
        };
        assert_eq!(second.role, Role::Clinician);
        assert_eq!(second.level, 1);
        // Missed at Monday's close: 4 business hours is Tuesday at noon.
        assert_eq!(second.due, datetime!(2026-12-01 12:00 UTC));
        assert_eq!(
            Standing::of(&second, datetime!(2026-12-01 09:00 UTC)),
            Standing::Escalated
        );
        let Missed::Escalated(third) = c.missed(&cal, &second) else {
            panic!("then to the clinic lead")
        };
        assert_eq!(third.role, Role::ClinicLead);
        assert_eq!(c.missed(&cal, &third), Missed::Exhausted);
    }

    #[test]
    fn a_chain_needs_team_roles() {
        assert!(Escalation::new(vec![]).is_err());
        let e = Escalation::new(vec![Step {
            role: Role::Patient,
            within: Within::BusinessDays(1),
        }])
        .expect_err("a patient is not on the team");
        assert!(e.0.contains("patient"));
    }
}
