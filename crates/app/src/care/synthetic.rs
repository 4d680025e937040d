//! A generated population for the partnership's scorecard at scale, deterministic from
//! (seed, index): each patient's side of the partnership over the year before `end`, as the
//! FHIR records the workflows write (so the store's pass, the search pass and a pass over the
//! records in memory can be checked against each other). The rates are modelled, not
//! measured (docs/partnership.md), for a safety-net clinic:
//!
//! - four care teams (a CareTeam each patient); the clinic's language mix, written on the
//!   patient's Patient resource (their age and sex are their generator's);
//! - 4 in 10 patients record their glucose themselves, about one reading a month, each owed
//!   a review within 7 days; reviews take 3.5 days on average and 1 in 10 is never done (the
//!   reading keeps its "not yet reviewed" tag);
//! - about 1.2 goals a patient a year, 55% proposed by the patient's side; the other side
//!   answers in 3 days on average (8% never answer), agreeing 85% of the time, declining
//!   otherwise; the team has 5 business days to answer the patient;
//! - the team's Tasks by kind at each kind's own rate and deadline (the HbA1c test for the
//!   patients with diabetes, rescue-pack contacts for those with COPD, urgent readings,
//!   community referrals, Speak Up acknowledgements; prescribing barriers are the
//!   prescribing generator's), each with its escalation chain: the owner, then a second role
//!   a day later, then the clinic lead a day after that; about 8 in 10 done on time, 3 in
//!   100 never done (open, at the step of the chain they reached);
//! - 6 in 10 patients have a weekly self-care activity on their shared plan, marked done
//!   within the week 7 times in 10; 1 in 5 a monthly check-in by the nurse or community
//!   health worker.
//!
//! A site measures its own; these exist to show the scorecard's cost at scale and to check
//! its passes agree.

use super::plan::{NewActivity, activity_element, set_awaiting};
use super::{ext, instant, mark_unreviewed};
use crate::deadlines::{escalation_extension, set_task_deadline};
use crate::draw::Draw;
use crate::vocabulary::{PLAN_CATEGORY, TASKS};
use coproduce_core::access::Role;
use coproduce_core::calendar::{BusinessCalendar, Within};
use coproduce_core::care::plan::GoalState;
use coproduce_core::care::plan::{Cadence, Owner, Schedule, Setting};
use coproduce_core::deadline::{Escalation, Step};
use serde_json::{Value, json};
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

const KINDS: [TaskKind; 5] = [
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

/// The team members the generated records name, one per role that answers or reviews.
const MEMBERS: [(Role, &str); 2] = [
    (Role::Clinician, "generated-clinician"),
    (Role::Nurse, "generated-nurse"),
];

/// The Practitioners the generated records refer to, written once before the patients.
pub fn practitioners() -> Vec<Value> {
    MEMBERS
        .iter()
        .map(|(role, id)| {
            json!({
                "resourceType": "Practitioner", "id": id, "active": true,
                "name": [{"text": format!("Generated {}", role.as_str())}],
            })
        })
        .collect()
}

fn member(role: Role) -> Value {
    let id = MEMBERS
        .iter()
        .find(|(r, _)| *r == role)
        .map_or(MEMBERS[0].1, |(_, id)| id);
    json!({"reference": format!("Practitioner/{id}")})
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

/// The `index`th patient's side of the partnership over the year before `end`, for their
/// `patient` resource from another generator (their preferred language is written on it):
/// their CareTeam, the readings they recorded, their goals, the team's Tasks and their shared
/// CarePlan.
pub fn resources(seed: u64, index: u64, patient: &mut Value, end: OffsetDateTime) -> Vec<Value> {
    let mut d = Draw::new(seed ^ 0x5041_5254, index);
    let pid = patient["id"].as_str().unwrap_or_default().to_string();
    let subject = json!({"reference": format!("Patient/{pid}")});
    let (language, _, _) = crate::draw::demographics(&mut d);
    patient["communication"] = json!([{
        "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]},
        "preferred": true,
    }]);
    let mut out = vec![json!({
        "resourceType": "CareTeam", "id": format!("{pid}-team"), "status": "active",
        "name": d.pick(&TEAMS), "subject": subject,
    })];
    let diabetes = d.unit() < 0.45;
    let copd = d.unit() < 0.12;
    let kept = |t: OffsetDateTime| (t <= end).then_some(t);

    // Glucose readings the patient records, each owed a review within 7 days.
    if d.unit() < 0.4 {
        for (n, taken) in times(&mut d, 12.0, end).into_iter().enumerate() {
            let value = (90.0 + 90.0 * d.unit()).round();
            let reviewed = (d.unit() >= 0.1)
                .then(|| after(taken, d.exp(3.5)))
                .and_then(kept);
            let mut obs = json!({
                "resourceType": "Observation", "id": format!("{pid}-glucose{n}"), "status": "final",
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
                "subject": subject, "effectiveDateTime": instant(taken),
                "performer": [subject],
                "valueQuantity": {"value": value, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
            });
            match reviewed {
                Some(at) => {
                    obs["extension"] = json!([{"url": ext("reading-review"), "extension": [
                        {"url": "by", "valueReference": member(Role::Nurse)},
                        {"url": "at", "valueDateTime": instant(at)},
                    ]}]);
                }
                None => mark_unreviewed(&mut obs),
            }
            out.push(obs);
        }
    }

    // Goals, proposed by either side and answered (or not) by the other.
    for (n, proposed) in times(&mut d, 1.2, end).into_iter().enumerate() {
        let by_patient = d.unit() < 0.55;
        let answered = (d.unit() >= 0.08)
            .then(|| after(proposed, d.exp(3.0)))
            .and_then(kept);
        let agreed = d.unit() < 0.85;
        let (proposer, answerer) = if by_patient {
            (subject.clone(), member(Role::Clinician))
        } else {
            (member(Role::Clinician), subject.clone())
        };
        let note = |who: &Value, t: OffsetDateTime, event: &str| {
            json!({
                "extension": [{"url": ext("goal-event"), "valueCode": event}],
                "authorReference": who, "time": instant(t), "text": "-",
            })
        };
        let mut notes = vec![note(&proposer, proposed, "proposed")];
        let state = match answered {
            Some(t) => {
                notes.push(note(
                    &answerer,
                    t,
                    if agreed { "agreed" } else { "declined" },
                ));
                if agreed {
                    GoalState::Agreed
                } else {
                    GoalState::Declined
                }
            }
            None => GoalState::proposed_by(if by_patient {
                coproduce_core::care::plan::Side::Patient
            } else {
                coproduce_core::care::plan::Side::Team
            }),
        };
        let mut goal = json!({
            "resourceType": "Goal", "id": format!("{pid}-goal{n}"),
            "description": {"text": "Walk more, eat well and keep my sugar in range"},
            "subject": subject,
            "startDate": instant(proposed).get(..10).unwrap_or_default(),
            "expressedBy": proposer, "note": notes,
        });
        set_awaiting(&mut goal, state);
        out.push(goal);
    }

    // The team's Tasks, by kind, each with its chain.
    let calendar = BusinessCalendar::default();
    for k in &KINDS {
        let has = match k.who {
            Who::Everyone => true,
            Who::Diabetes => diabetes,
            Who::Copd => copd,
        };
        if !has {
            continue;
        }
        let second = if k.role == Role::Nurse {
            Role::Clinician
        } else {
            Role::Nurse
        };
        let first_hours = ((k.due_days * 24.0).round() as i64).max(1);
        let Ok(chain) = Escalation::new(vec![
            Step {
                role: k.role,
                within: Within::Hours(first_hours),
            },
            Step {
                role: second,
                within: Within::Hours(24),
            },
            Step {
                role: Role::ClinicLead,
                within: Within::Hours(24),
            },
        ]) else {
            continue;
        };
        for (n, opened) in times(&mut d, k.per_year, end).into_iter().enumerate() {
            // About 8 in 10 done in time: the time to do it is drawn so that its mean is
            // the kind's, with a tail past the deadline.
            let took = d.exp(k.mean_days);
            let done = (d.unit() >= 0.03)
                .then(|| after(opened, took))
                .and_then(kept);
            let first = chain.open(&calendar, opened);
            let stop = done.unwrap_or(end);
            let mut current = first;
            while current.due < stop {
                match chain.at_level(&calendar, current.level + 1, current.due) {
                    Some(next) => current = next,
                    None => break,
                }
            }
            let mut task = json!({
                "resourceType": "Task", "id": format!("{pid}-{}{n}", k.code),
                "status": "requested", "intent": "order",
                "code": {"coding": [{"system": TASKS, "code": k.code}]},
                "for": subject, "authoredOn": instant(opened), "lastModified": instant(opened),
                "extension": [escalation_extension(&chain)],
            });
            set_task_deadline(&mut task, &first);
            if current.level > 0 {
                set_task_deadline(&mut task, &current);
            }
            if let Some(t) = done {
                task["status"] = json!("completed");
                task["lastModified"] = json!(instant(t));
                task["executionPeriod"] = json!({"start": instant(opened), "end": instant(t)});
            }
            out.push(task);
        }
    }

    // The shared plan's activities and the times they were marked done.
    let mut activities = Vec::new();
    if d.unit() < 0.6 {
        let owner = if d.unit() < 0.8 {
            Owner::Patient
        } else {
            Owner::Family
        };
        let added = at(end, 364.0);
        let mut marks = Vec::new();
        let mut from = added;
        loop {
            let due = after(from, 7.0);
            let roll = d.unit();
            let mark = if roll < 0.7 {
                after(from, 7.0 * d.unit())
            } else if roll < 0.85 {
                after(due, d.exp(2.0))
            } else {
                after(due, 7.0 * (1.0 + d.unit()))
            };
            if mark > end {
                break;
            }
            marks.push(mark);
            from = mark;
        }
        let a = NewActivity {
            text: "Walk for 20 minutes after dinner".into(),
            owner,
            setting: Setting::SelfCare,
            schedule: Schedule::Every(Cadence::Weeks(1)),
        };
        activities.push((activity_element(&a, added), marks, subject.clone()));
    }
    if d.unit() < 0.2 {
        let role = if d.unit() < 0.5 {
            Role::Nurse
        } else {
            Role::CommunityHealthWorker
        };
        let added = at(end, 360.0);
        let mut marks = Vec::new();
        let mut from = added;
        loop {
            let mark = if d.unit() < 0.9 {
                after(from, 30.0 * d.unit().sqrt() * 1.1)
            } else {
                after(from, 30.0 * (1.5 + d.unit()))
            };
            if mark > end {
                break;
            }
            marks.push(mark);
            from = mark;
        }
        let a = NewActivity {
            text: "Monthly check-in call".into(),
            owner: Owner::Team(role),
            setting: Setting::Outpatient,
            schedule: Schedule::Every(Cadence::Months(1)),
        };
        activities.push((activity_element(&a, added), marks, member(Role::Nurse)));
    }
    if !activities.is_empty() {
        let activity: Vec<Value> = activities
            .into_iter()
            .map(|(mut a, marks, by)| {
                if !marks.is_empty() {
                    a["detail"]["status"] = json!("in-progress");
                    a["progress"] = marks
                        .iter()
                        .map(
                            |t| json!({"authorReference": by, "time": instant(*t), "text": "done"}),
                        )
                        .collect();
                }
                a
            })
            .collect();
        out.push(json!({
            "resourceType": "CarePlan", "id": format!("{pid}-shared"),
            "status": "active", "intent": "plan",
            "category": [{"coding": [{"system": PLAN_CATEGORY, "code": "shared"}]}],
            "title": "Shared care plan", "subject": subject,
            "created": instant(at(end, 364.0)), "author": member(Role::Clinician),
            "activity": activity,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::care::{GOAL_ANSWER_WITHIN, Promises, Reader};
    use coproduce_core::care::readings::ReviewRules;
    use coproduce_core::partnership::{ACTIVITY, GOAL_ANSWER, READING_REVIEW};
    use std::sync::Arc;
    use time::macros::datetime;

    fn read(seed: u64, n: u64, end: OffsetDateTime) -> Promises {
        let reader = Reader::new(
            Arc::new(BusinessCalendar::default()),
            ReviewRules::default().within,
            GOAL_ANSWER_WITHIN,
            end - Duration::days(365),
            end,
            end,
        );
        let mut all = Promises::default();
        for i in 0..n {
            let mut patient =
                json!({"resourceType": "Patient", "id": format!("p{i}"), "gender": "female"});
            let mut record = resources(seed, i, &mut patient, end);
            record.push(patient);
            all.merge(reader.record(&record));
        }
        all
    }

    #[test]
    fn the_same_seed_gives_the_same_records_and_the_rates_are_as_modelled() {
        let end = datetime!(2026-12-31 23:00 UTC);
        let mut p = json!({"resourceType": "Patient", "id": "p"});
        assert_eq!(
            resources(7, 42, &mut p.clone(), end),
            resources(7, 42, &mut p, end)
        );
        assert!(p["communication"][0]["language"]["coding"][0]["code"].is_string());
        let all = read(7, 2_000, end);
        let count = |k: &str| all.promises.iter().filter(|p| p.kind == k).count() as f64;
        // About 12 reviews a year for 4 in 10 patients; 1.2 goals a patient, 55% owed an answer.
        let reviews = count(READING_REVIEW) / 2_000.0;
        assert!((3.8..=5.8).contains(&reviews), "{reviews}");
        let goals = all.goals.len() as f64 / 2_000.0;
        assert!((1.0..=1.4).contains(&goals), "{goals}");
        let answers = count(GOAL_ANSWER) / all.goals.len() as f64;
        assert!((0.48..=0.62).contains(&answers), "{answers}");
        // About 52 weekly turns for 6 in 10 patients, 12 monthly ones for 1 in 5.
        let turns = count(ACTIVITY) / 2_000.0;
        assert!((25.0..=40.0).contains(&turns), "{turns}");
        // Every kind appears, some escalated; nothing is kept after the end; every promise
        // knows its patient.
        for k in &KINDS {
            assert!(count(k.code) > 0.0, "{}", k.code);
        }
        assert!(all.promises.iter().any(|p| p.escalations == 2));
        assert!(all.promises.iter().all(|p| p.done.is_none_or(|t| t <= end)));
        assert!(
            all.promises
                .iter()
                .all(|p| p.person.as_ref().is_some_and(|x| x.team.is_some()))
        );
    }
}
