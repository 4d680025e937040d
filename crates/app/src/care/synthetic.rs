//! A generated population for the partnership's scorecard at scale, deterministic from
//! (seed, index): each patient's promises over the year before `end`, both sides. The rates
//! are modelled, not measured (docs/partnership.md), for a safety-net clinic:
//!
//! - four care teams; the clinic's language, age and sex mix (`draw::demographics`);
//! - 4 in 10 patients record readings themselves, about one a month, each owed a review
//!   within 7 days; reviews take 3.5 days on average and 1 in 10 is never done;
//! - about 1.2 goals a patient a year, 55% proposed by the patient's side and answered by the
//!   team in 3 days on average (5 business days allowed; 8% never answered), 85% agreed;
//! - the team's Tasks by kind at each kind's own rate and deadline (the HbA1c test for the
//!   patients with diabetes, rescue-pack contacts for those with COPD, urgent readings,
//!   prescribing barriers, community referrals, Speak Up acknowledgements); about 8 in 10
//!   done on time, a missed one escalated once or twice;
//! - 6 in 10 patients have a weekly self-care activity, kept on time 7 weeks in 10; 1 in 5 a
//!   monthly team check-in by the nurse or community health worker.
//!
//! A site measures its own; these exist to show the scorecard's cost at scale.

use crate::draw::Draw;
use coproduce_core::access::Role;
use coproduce_core::care::plan::{Owner, Setting};
use coproduce_core::partnership::{
    ACTIVITY, GOAL_ANSWER, GoalFacts, Person, Promise, READING_REVIEW, team_owner,
};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const TEAMS: [(&str, f64); 4] = [
    ("North clinic team", 0.3),
    ("South clinic team", 0.3),
    ("East clinic team", 0.2),
    ("Mobile outreach team", 0.2),
];

/// A team Task kind: its code, who owns it first, a patient's yearly rate, its deadline
/// (days), the mean time to do it (days), and who has it (`diabetes`, `copd`, everyone).
struct TaskKind {
    code: &'static str,
    role: Role,
    per_year: f64,
    due_days: f64,
    mean_days: f64,
    who: Who,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Everyone,
    Diabetes,
    Copd,
}

const KINDS: [TaskKind; 6] = [
    TaskKind {
        code: "hba1c-test",
        role: Role::Clinician,
        per_year: 2.0,
        due_days: 14.0,
        mean_days: 6.0,
        who: Who::Diabetes,
    },
    TaskKind {
        code: "rescue-pack-contact",
        role: Role::Nurse,
        per_year: 0.9,
        due_days: 1.4,
        mean_days: 0.6,
        who: Who::Copd,
    },
    TaskKind {
        code: "urgent-reading",
        role: Role::Clinician,
        per_year: 0.3,
        due_days: 0.17,
        mean_days: 0.08,
        who: Who::Everyone,
    },
    TaskKind {
        code: "medication-barrier",
        role: Role::Pharmacist,
        per_year: 0.5,
        due_days: 2.8,
        mean_days: 1.4,
        who: Who::Everyone,
    },
    TaskKind {
        code: "social-referral",
        role: Role::CommunityHealthWorker,
        per_year: 0.2,
        due_days: 2.8,
        mean_days: 1.6,
        who: Who::Everyone,
    },
    TaskKind {
        code: "speakup-acknowledge",
        role: Role::Nurse,
        per_year: 0.05,
        due_days: 1.0,
        mean_days: 0.5,
        who: Who::Everyone,
    },
];

/// One generated patient's side of the partnership.
#[derive(Debug, Clone)]
pub struct Generated {
    pub promises: Vec<Promise>,
    pub goals: Vec<GoalFacts>,
    /// The open activities of their plan.
    pub plan: Vec<(Setting, Owner)>,
}

fn at(end: OffsetDateTime, days_back: f64) -> OffsetDateTime {
    end - Duration::minutes((days_back * 1440.0) as i64)
}

fn after(t: OffsetDateTime, days: f64) -> OffsetDateTime {
    t + Duration::minutes((days * 1440.0) as i64)
}

/// Times of a yearly rate over the year before `end`, oldest first.
fn times(d: &mut Draw, per_year: f64, end: OffsetDateTime) -> Vec<OffsetDateTime> {
    let mut out = Vec::new();
    if per_year <= 0.0 {
        return out;
    }
    let mut back = d.exp(365.0 / per_year);
    while back < 365.0 {
        out.push(at(end, back));
        back += d.exp(365.0 / per_year);
    }
    out.reverse();
    out
}

/// The `index`th patient's promises over the year before `end`.
pub fn patient(seed: u64, index: u64, end: OffsetDateTime) -> Generated {
    let mut d = Draw::new(seed ^ 0x5041_5254, index);
    let (language, age_band, sex) = crate::draw::demographics(&mut d);
    let person = Arc::new(Person {
        team: Some((*d.pick(&TEAMS)).to_string()),
        language,
        age_band,
        sex,
    });
    let diabetes = d.unit() < 0.45;
    let copd = d.unit() < 0.12;
    let mut g = Generated {
        promises: Vec::new(),
        goals: Vec::new(),
        plan: Vec::new(),
    };
    let mut owe = |kind: &str,
                   owner: Option<Owner>,
                   due: OffsetDateTime,
                   done: Option<OffsetDateTime>,
                   escalations: u32| {
        g.promises.push(Promise {
            kind: kind.to_string(),
            owner,
            person: Some(person.clone()),
            due,
            done: done.filter(|t| *t <= end),
            withdrawn: false,
            escalations,
        });
    };
    // Readings the patient's side records, each owed a review within 7 days.
    if d.unit() < 0.4 {
        for taken in times(&mut d, 12.0, end) {
            let reviewed = (d.unit() >= 0.1).then(|| after(taken, d.exp(3.5)));
            owe(READING_REVIEW, None, after(taken, 7.0), reviewed, 0);
        }
    }
    // Goals; those the patient's side proposes are owed the team's answer.
    for proposed in times(&mut d, 1.2, end) {
        let by_patient = d.unit() < 0.55;
        if by_patient {
            let answered = (d.unit() >= 0.08).then(|| after(proposed, d.exp(3.0)));
            owe(GOAL_ANSWER, None, after(proposed, 7.0), answered, 0);
        }
        g.goals.push(GoalFacts {
            agreed: d.unit() < 0.85,
        });
    }
    // The team's Tasks, by kind.
    for k in &KINDS {
        let has = match k.who {
            Who::Everyone => true,
            Who::Diabetes => diabetes,
            Who::Copd => copd,
        };
        if !has {
            continue;
        }
        for opened in times(&mut d, k.per_year, end) {
            let due = after(opened, k.due_days);
            // About 8 in 10 done in time: the time to do it is drawn so that its mean is
            // the kind's, with a tail past the deadline.
            let took = d.exp(k.mean_days);
            let done = (d.unit() >= 0.03).then(|| after(opened, took));
            let late_by = done.map_or(end - due, |t| t - due);
            let escalations = if late_by > Duration::ZERO {
                if late_by.whole_minutes() as f64 > k.due_days * 1440.0 {
                    2
                } else {
                    1
                }
            } else {
                0
            };
            owe(k.code, team_owner(k.role), due, done, escalations);
        }
    }
    // The plan's activities and their turns.
    if d.unit() < 0.6 {
        let owner = if d.unit() < 0.8 {
            Owner::Patient
        } else {
            Owner::Family
        };
        g.plan.push((Setting::SelfCare, owner));
        let mut week = at(end, 364.0);
        while after(week, 7.0) <= end {
            let due = after(week, 7.0);
            let roll = d.unit();
            let done = if roll < 0.7 {
                Some(after(week, 7.0 * d.unit()))
            } else if roll < 0.85 {
                Some(after(due, d.exp(2.0)))
            } else {
                None
            };
            owe(ACTIVITY, Some(owner), due, done, 0);
            week = due;
        }
    }
    if d.unit() < 0.2 {
        let role = if d.unit() < 0.5 {
            Role::Nurse
        } else {
            Role::CommunityHealthWorker
        };
        g.plan.push((Setting::Outpatient, Owner::Team(role)));
        let mut month = at(end, 360.0);
        while after(month, 30.0) <= end {
            let due = after(month, 30.0);
            let done = (d.unit() < 0.9).then(|| after(month, 30.0 * d.unit().sqrt() * 1.1));
            owe(ACTIVITY, Some(Owner::Team(role)), due, done, 0);
            month = due;
        }
    }
    g
}

/// `n` generated patients' promises, goals and plans, together.
pub fn population(seed: u64, n: u64, end: OffsetDateTime) -> Generated {
    let mut all = Generated {
        promises: Vec::new(),
        goals: Vec::new(),
        plan: Vec::new(),
    };
    for i in 0..n {
        let g = patient(seed, i, end);
        all.promises.extend(g.promises);
        all.goals.extend(g.goals);
        all.plan.extend(g.plan);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_same_seed_gives_the_same_patients_and_the_rates_are_as_modelled() {
        let end = datetime!(2026-12-31 23:00 UTC);
        let a = patient(7, 42, end);
        let b = patient(7, 42, end);
        assert_eq!(a.promises, b.promises);
        let all = population(7, 2_000, end);
        let count = |k: &str| all.promises.iter().filter(|p| p.kind == k).count() as f64;
        // About 12 reviews a year for 4 in 10 patients; 1.2 goals a patient, 55% owed an answer.
        let reviews = count(READING_REVIEW) / 2_000.0;
        assert!((3.8..=5.8).contains(&reviews), "{reviews}");
        let goals = all.goals.len() as f64 / 2_000.0;
        assert!((1.0..=1.4).contains(&goals), "{goals}");
        let answers = count(GOAL_ANSWER) / all.goals.len() as f64;
        assert!((0.48..=0.62).contains(&answers), "{answers}");
        // Every kind appears; nothing is kept after the end.
        for k in &KINDS {
            assert!(count(k.code) > 0.0, "{}", k.code);
        }
        assert!(all.promises.iter().all(|p| p.done.is_none_or(|t| t <= end)));
    }
}
