//! What one patient's record holds for the partnership's scorecard, cut down to times and
//! codes: the person (team, language, birth date, sex), each team Task's kind, owner, first
//! due time, completion and escalations, each reading the patient's side entered with its
//! review, each goal's story, each CollaboRATE response, each activity on a shared plan with
//! its marks. These are the record's own facts, with none of a site's settings applied: the
//! [`Reader`] applies the period, the clock, the calendar, the review time and the time to
//! answer a goal.
//!
//! Every path to the scorecard goes through these facts: a panel's searches and a record
//! held in memory read them from the resources; the store keeps them as a line of each
//! patient's projection row ([`PromiseLine`]), written when the row is built, so that a
//! population run reads a few hundred bytes of numbers per patient instead of parsing their
//! resources.

use super::partnership::side_of_ref;
use super::*;
use crate::deadlines::{FirstDue, first_due, task_deadline};
use crate::vocabulary::{instant_of, preferred_language};
use coproduce_core::calendar::Within;
use coproduce_core::partnership::collaborate::Answers;
use coproduce_core::partnership::{self as score, GoalFacts, Promise, team_owner};
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The line's name in a projection row; the number after the slash is its version, raised
/// whenever what the facts hold changes (the store then rebuilds its rows).
pub const LINE: &str = "~partnership/2";

/// The partnership's line of each projection row: a patient's [`RecordFacts`] as JSON.
#[derive(Debug)]
pub struct PromiseLine;

impl coproduce_store::RecordLine for PromiseLine {
    fn name(&self) -> &'static str {
        LINE
    }

    fn builder(&self) -> Box<dyn coproduce_store::LineBuilder> {
        Box::new(RecordFacts::default())
    }
}

impl coproduce_store::LineBuilder for RecordFacts {
    fn add(&mut self, v: &Value) {
        self.add_as_written(v);
    }

    fn finish(self: Box<Self>) -> String {
        // Facts of our own types only, which always serialize.
        sonic_rs::to_string(&*self).unwrap_or_default()
    }
}

/// An instant as the facts keep it: `[seconds since 1970]`, with the nanoseconds and then
/// the UTC offset in seconds where they are not zero, so that nothing a rule reads is lost
/// (a monthly cadence counts months in the offset the time was written in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct At(pub OffsetDateTime);

impl Serialize for At {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let t = self.0;
        let offset = t.offset().whole_seconds();
        let parts = if offset != 0 {
            3
        } else if t.nanosecond() != 0 {
            2
        } else {
            1
        };
        let mut seq = s.serialize_seq(Some(parts))?;
        seq.serialize_element(&t.unix_timestamp())?;
        if parts > 1 {
            seq.serialize_element(&t.nanosecond())?;
        }
        if parts > 2 {
            seq.serialize_element(&offset)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<At, D::Error> {
        struct Parts;
        impl<'de> Visitor<'de> for Parts {
            type Value = At;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("[seconds, nanoseconds, offset]")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<At, A::Error> {
                let secs: i64 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let nanos: u32 = seq.next_element()?.unwrap_or(0);
                let offset: i32 = seq.next_element()?.unwrap_or(0);
                let offset =
                    time::UtcOffset::from_whole_seconds(offset).map_err(A::Error::custom)?;
                OffsetDateTime::from_unix_timestamp(secs)
                    .and_then(|t| t.replace_nanosecond(nanos))
                    .map_err(A::Error::custom)?
                    .checked_to_offset(offset)
                    .map(At)
                    .ok_or_else(|| A::Error::custom("the offset moves the time out of range"))
            }
        }
        d.deserialize_seq(Parts)
    }
}

/// A code of ours kept as its text in the facts (an owner, a setting, a side, a time span).
macro_rules! coded {
    ($name:ident, $inner:ty, $show:expr, $parse:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub(super) struct $name(pub $inner);

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> std::result::Result<Self, String> {
                let parse: fn(&str) -> Option<$inner> = $parse;
                parse(&s)
                    .map($name)
                    .ok_or_else(|| format!("not a {}: {s}", stringify!($name)))
            }
        }

        impl From<$name> for String {
            fn from(c: $name) -> String {
                let show: fn($inner) -> String = $show;
                show(c.0)
            }
        }
    };
}

coded!(OwnerCode, Owner, |o| o.as_str().into(), Owner::parse);
coded!(SettingCode, Setting, |s| s.as_str().into(), Setting::parse);
coded!(SideCode, Side, |s| s.as_str().into(), Side::parse);
coded!(WithinCode, Within, |w| w.to_string(), |s| Within::parse(s)
    .ok());
coded!(
    CadenceCode,
    Cadence,
    |c| {
        let (n, unit) = c.fhir();
        format!("{n} {unit}")
    },
    |s| {
        let (n, unit) = s.split_once(' ')?;
        Cadence::from_fhir(n.parse().ok()?, unit)
    }
);

/// The partnership's facts of one patient's record (or of what a search found of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordFacts {
    /// Their care team: of their active CareTeams, the first name in order.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    team: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    person: Option<PersonFacts>,
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    tasks: Vec<TaskFacts>,
    #[serde(rename = "r", default, skip_serializing_if = "Vec::is_empty")]
    readings: Vec<ReadingFacts>,
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    goals: Vec<GoalRecord>,
    /// The complete CollaboRATE responses: when given, and the three answers.
    #[serde(rename = "q", default, skip_serializing_if = "Vec::is_empty")]
    answers: Vec<(At, [u8; 3])>,
    /// The activities of their shared care plans.
    #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
    activities: Vec<ActivityRecord>,
}

/// The patient as the equity breakdowns see them (their age band is counted at the time of
/// the run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct PersonFacts {
    #[serde(rename = "l")]
    language: String,
    /// Their birth date as a Julian day.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    birth: Option<i32>,
    #[serde(rename = "s")]
    sex: String,
}

/// A team promise a Task holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TaskFacts {
    #[serde(rename = "k")]
    kind: String,
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    owner: Option<OwnerCode>,
    #[serde(rename = "d")]
    due: DueFacts,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    done: Option<At>,
    #[serde(rename = "n", default, skip_serializing_if = "std::ops::Not::not")]
    withdrawn: bool,
    #[serde(rename = "e", default, skip_serializing_if = "is_zero")]
    escalations: u32,
}

/// When a Task was first due ([`FirstDue`]): then, or (the site's calendar counts) its
/// chain's first step after it was written.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum DueFacts {
    #[serde(rename = "t")]
    At(At),
    #[serde(rename = "w")]
    After(At, WithinCode),
}

impl From<FirstDue> for DueFacts {
    fn from(f: FirstDue) -> DueFacts {
        match f {
            FirstDue::At(t) => DueFacts::At(At(t)),
            FirstDue::After { written, within } => DueFacts::After(At(written), WithinCode(within)),
        }
    }
}

impl From<DueFacts> for FirstDue {
    fn from(d: DueFacts) -> FirstDue {
        match d {
            DueFacts::At(t) => FirstDue::At(t.0),
            DueFacts::After(written, within) => FirstDue::After {
                written: written.0,
                within: within.0,
            },
        }
    }
}

/// When an activity is due (`core::care::plan::Schedule`): once by a time, or every so often.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum ScheduleFacts {
    #[serde(rename = "b")]
    By(At),
    #[serde(rename = "e")]
    Every(CadenceCode),
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A reading the patient's side entered that owes a review: when taken, and reviewed when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReadingFacts {
    #[serde(rename = "t")]
    taken: At,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    reviewed: Option<At>,
}

/// A goal's story: each step (when, which side, what it said), where it stands, and when it
/// was last written (the time it counts from when it has no story).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct GoalRecord {
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    steps: Vec<(At, Option<SideCode>, String)>,
    #[serde(rename = "a", default, skip_serializing_if = "std::ops::Not::not")]
    agreed: bool,
    #[serde(rename = "x", default, skip_serializing_if = "std::ops::Not::not")]
    closed: bool,
    #[serde(rename = "l")]
    written: At,
}

/// An activity on a shared plan, as `core::care::plan::ActivityFacts` and its marks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ActivityRecord {
    #[serde(rename = "s")]
    setting: SettingCode,
    #[serde(rename = "o")]
    owner: OwnerCode,
    #[serde(rename = "d")]
    schedule: ScheduleFacts,
    #[serde(rename = "a")]
    added: At,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    last_done: Option<At>,
    #[serde(rename = "f", default, skip_serializing_if = "std::ops::Not::not")]
    finished: bool,
    #[serde(rename = "m", default, skip_serializing_if = "Vec::is_empty")]
    marks: Vec<At>,
}

impl ActivityRecord {
    fn facts(&self) -> ActivityFacts {
        let schedule = match self.schedule {
            ScheduleFacts::By(by) => Schedule::By(by.0),
            ScheduleFacts::Every(every) => Schedule::Every(every.0),
        };
        ActivityFacts {
            owner: self.owner.0,
            schedule,
            added: self.added.0,
            last_done: self.last_done.map(|t| t.0),
            finished: self.finished,
        }
    }
}

impl RecordFacts {
    /// The facts of one patient's resources (any order; those the scorecard does not read
    /// are passed over). A resource's last write is its `meta.lastUpdated`.
    pub fn of(resources: &[Value]) -> RecordFacts {
        let mut facts = RecordFacts::default();
        for v in resources {
            facts.add_as_written(v);
        }
        facts
    }

    /// Adds one resource of the record, last written when its `meta.lastUpdated` says.
    fn add_as_written(&mut self, v: &Value) {
        let written = instant_of(&v["meta"]["lastUpdated"]).map_or(0, coproduce_core::unix_millis);
        self.add(v, written);
    }

    /// Adds what one resource of the record holds, last written at `last_updated` (Unix
    /// milliseconds).
    pub fn add(&mut self, v: &Value, last_updated: i64) {
        let id = v["id"].as_str().unwrap_or_default();
        match v["resourceType"].as_str().unwrap_or_default() {
            "CareTeam" => {
                if let Some(name) = Reader::team(v, id)
                    && self.team.as_ref().is_none_or(|t| name < *t)
                {
                    self.team = Some(name);
                }
            }
            "Patient" => self.person = Some(PersonFacts::of(v)),
            "Task" => self.tasks.extend(TaskFacts::of(v, last_updated)),
            // A reading the patient's side entered: tagged unreviewed, or reviewed.
            "Observation" => {
                if let Some(r) = reading_from(v, id, 0, String::new(), last_updated)
                    && (r.unreviewed || r.review.is_some())
                {
                    self.readings.push(ReadingFacts {
                        taken: At(r.at),
                        reviewed: r.review.map(|rv| At(rv.at)),
                    });
                }
            }
            "Goal" => {
                if let Some(goal) = goal_from(v, id, 0, String::new()) {
                    self.goals.push(GoalRecord {
                        steps: goal
                            .history
                            .iter()
                            .map(|e| {
                                let side = side_of_ref(e.by_ref.as_deref()).map(SideCode);
                                (At(e.at), side, e.event.clone())
                            })
                            .collect(),
                        agreed: matches!(goal.state, GoalState::Agreed),
                        closed: matches!(goal.state, GoalState::Closed),
                        written: At(from_unix_millis(last_updated)),
                    });
                }
            }
            "QuestionnaireResponse" => {
                if let (Some(authored), Some(a)) =
                    (instant_of(&v["authored"]), collaborate_answers(v))
                {
                    self.answers.push((At(authored), a.values()));
                }
            }
            "CarePlan" => {
                let shared = v["category"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| has_code(c, PLAN_CATEGORY, "shared")));
                if shared {
                    self.activities
                        .extend(activities_of(v, "").into_iter().map(ActivityRecord::of));
                }
            }
            _ => {}
        }
    }
}

impl PersonFacts {
    pub(super) fn of(v: &Value) -> PersonFacts {
        let birth = v["birthDate"].as_str().and_then(|b| {
            time::Date::parse(b, time::macros::format_description!("[year]-[month]-[day]")).ok()
        });
        PersonFacts {
            language: preferred_language(v).unwrap_or_else(|| "en".into()),
            birth: birth.map(time::Date::to_julian_day),
            sex: v["gender"].as_str().unwrap_or("unknown").to_string(),
        }
    }

    /// As the breakdowns group them on `today`.
    pub(super) fn person(&self, team: Option<String>, today: time::Date) -> score::Person {
        let birth = self.birth.and_then(|d| time::Date::from_julian_day(d).ok());
        score::Person {
            team,
            language: self.language.clone(),
            age_band: coproduce_core::social::measures::age_band(birth, today),
            sex: self.sex.clone(),
        }
    }
}

impl TaskFacts {
    /// The team promise a Task holds, if it holds one: a Task with a deadline chain (owed by
    /// its first role, due when first due), else one a team role performs by a due time.
    fn of(v: &Value, last_updated: i64) -> Option<TaskFacts> {
        let (owner, first, escalations) = match task_deadline(v) {
            Some((chain, current)) => (
                team_owner(chain.steps().first()?.role),
                first_due(v, &chain, &current)?,
                u32::try_from(current.level).unwrap_or(u32::MAX),
            ),
            None => {
                let role = v["performerType"][0]["coding"][0]["code"]
                    .as_str()
                    .and_then(Role::parse)
                    .filter(|r| r.is_team())?;
                (
                    team_owner(role),
                    FirstDue::At(instant_of(&v["restriction"]["period"]["end"])?),
                    0,
                )
            }
        };
        let status = v["status"].as_str().unwrap_or("");
        let done = (status == "completed").then(|| {
            instant_of(&v["executionPeriod"]["end"])
                .or_else(|| instant_of(&v["lastModified"]))
                .unwrap_or_else(|| from_unix_millis(last_updated))
        });
        Some(TaskFacts {
            kind: task_kind(v),
            owner: owner.map(OwnerCode),
            due: first.into(),
            done: done.map(At),
            withdrawn: score::withdrawn(status),
            escalations,
        })
    }
}

/// A Task's kind: its code in our system, else its first code.
pub(super) fn task_kind(v: &Value) -> String {
    let codings = v["code"]["coding"].as_array();
    codings
        .and_then(|cs| cs.iter().find(|c| c["system"] == TASKS))
        .or_else(|| codings.and_then(|cs| cs.first()))
        .and_then(|c| c["code"].as_str())
        .unwrap_or("task")
        .to_string()
}

impl ActivityRecord {
    fn of(a: ActivityView) -> ActivityRecord {
        let schedule = match a.facts.schedule {
            Schedule::By(t) => ScheduleFacts::By(At(t)),
            Schedule::Every(c) => ScheduleFacts::Every(CadenceCode(c)),
        };
        ActivityRecord {
            setting: SettingCode(a.setting),
            owner: OwnerCode(a.facts.owner),
            schedule,
            added: At(a.facts.added),
            last_done: a.facts.last_done.map(At),
            finished: a.facts.finished,
            marks: a.marks.into_iter().map(At).collect(),
        }
    }
}

impl Reader {
    /// The promises, goals, answers and plan a record's facts hold that could fall due in
    /// this reader's period, by its rules.
    pub fn promises_of(&self, f: &RecordFacts) -> Promises {
        let person = f
            .person
            .as_ref()
            .map(|p| Arc::new(p.person(f.team.clone(), self.now.date())));
        let mut promises: Vec<Promise> = Vec::new();
        for t in &f.tasks {
            promises.push(Promise {
                kind: t.kind.clone(),
                owner: t.owner.map(|o| o.0),
                person: None,
                due: FirstDue::from(t.due).at(&self.calendar),
                done: t.done.map(|d| d.0),
                withdrawn: t.withdrawn,
                escalations: t.escalations,
            });
        }
        let within = self.review_within;
        for r in &f.readings {
            let taken = r.taken.0;
            if taken >= self.from - within && taken < self.to - within {
                promises.push(Promise::reading_review(
                    taken,
                    r.reviewed.map(|t| t.0),
                    within,
                ));
            }
        }
        let mut goals = Vec::with_capacity(f.goals.len());
        for g in &f.goals {
            let steps: Vec<score::GoalStep<'_>> = g
                .steps
                .iter()
                .map(|(at, side, event)| score::GoalStep {
                    at: at.0,
                    side: side.map(|s| s.0),
                    event,
                })
                .collect();
            promises.extend(Promise::goal_answers(&steps, g.closed, |from| {
                self.goal_answer.due(&self.calendar, from)
            }));
            let proposed = steps.iter().map(|s| s.at).min().unwrap_or(g.written.0);
            goals.push((proposed, GoalFacts::of(g.agreed, &steps)));
        }
        let mut shared_decisions = coproduce_core::partnership::collaborate::Rate::default();
        for (authored, values) in &f.answers {
            let counted = authored.0 >= self.from && authored.0 < self.to;
            if let (true, Ok(a)) = (counted, Answers::new(values.map(Some))) {
                shared_decisions.add(&a);
            }
        }
        let mut plan = Vec::new();
        for a in &f.activities {
            let facts = a.facts();
            if !facts.finished {
                plan.push((a.setting.0, facts.owner));
            }
            let marks: Vec<OffsetDateTime> = a.marks.iter().map(|m| m.0).collect();
            for (due, done) in score::activity_turns(&facts, &marks, self.now) {
                promises.push(Promise::owed(score::ACTIVITY, Some(facts.owner), due, done));
            }
        }
        for p in &mut promises {
            p.person = person.clone();
        }
        Promises {
            promises,
            goals,
            plan,
            shared_decisions,
            patients: usize::from(person.is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(x: &T) -> (String, T) {
        let text = sonic_rs::to_string(x).unwrap();
        let back = sonic_rs::from_str(&text).unwrap();
        (text, back)
    }

    #[test]
    fn an_instant_keeps_its_fraction_and_its_offset() {
        for (t, text) in [
            (datetime!(2026-03-01 09:30 UTC), "[1772357400]"),
            (
                datetime!(2026-03-01 09:30:00.000000001 UTC),
                "[1772357400,1]",
            ),
            (datetime!(2026-01-31 23:00 -5), "[1769918400,0,-18000]"),
            (datetime!(0001-01-01 00:00 UTC), "[-62135596800]"),
            (
                datetime!(9999-12-31 23:59:59.999999999 +14),
                "[253402250399,999999999,50400]",
            ),
            (datetime!(1969-12-31 23:59:59.5 UTC), "[-1,500000000]"),
        ] {
            let (written, back) = round_trip(&At(t));
            assert_eq!(written, text);
            // The same instant, in the same offset (a month later differs by offset).
            assert_eq!((back.0, back.0.offset()), (t, t.offset()));
        }
        for bad in ["[]", "[1,1000000000]", "[1,0,100000]", "1"] {
            assert!(sonic_rs::from_str::<At>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_keep_their_meaning() {
        for w in [
            Within::BusinessDays(1),
            Within::BusinessHours(4),
            Within::BusinessMinutes(30),
            Within::Days(7),
            Within::Hours(1),
            Within::Minutes(15),
        ] {
            assert_eq!(round_trip(&WithinCode(w)).1, WithinCode(w));
        }
        for c in [Cadence::Days(3), Cadence::Weeks(1), Cadence::Months(2)] {
            assert_eq!(round_trip(&CadenceCode(c)).1, CadenceCode(c));
        }
        for o in Owner::all() {
            assert_eq!(round_trip(&OwnerCode(o)).1, OwnerCode(o));
        }
        assert!(sonic_rs::from_str::<OwnerCode>("\"receptionist\"").is_err());
        assert!(sonic_rs::from_str::<CadenceCode>("\"0 wk\"").is_err());
    }

    #[test]
    fn a_record_s_facts_survive_the_line() {
        let now = datetime!(2026-12-06 12:00 UTC);
        let mut seen = [false; 4];
        for i in 0..40 {
            let mut patient = json!({
                "resourceType": "Patient",
                "id": format!("p{i}"),
                "birthDate": "1961-04-30",
                "gender": "female",
            });
            let mut record = super::super::synthetic::resources(1, i, &mut patient, now);
            record.push(patient);
            let facts = RecordFacts::of(&record);
            seen[0] |= !facts.tasks.is_empty();
            seen[1] |= !facts.readings.is_empty();
            seen[2] |= !facts.goals.is_empty();
            seen[3] |= !facts.activities.is_empty();
            assert!(facts.person.is_some());
            let line = coproduce_store::RecordLine::line(&PromiseLine, &record);
            assert!(!line.contains('\n'));
            let back: RecordFacts = sonic_rs::from_str(&line).unwrap();
            assert_eq!(back, facts, "{line}");
        }
        assert_eq!(
            seen, [true; 4],
            "tasks, readings, goals and activities all appear"
        );
    }
}
