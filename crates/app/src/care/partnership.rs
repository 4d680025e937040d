//! The partnership's scorecard over the store (`core::partnership`): both sides' promises
//! gathered from the records as every workflow writes them, in one pass per resource type.
//!
//! - **Team Tasks**: every Task with a deadline, whatever wrote it and whatever its code (a
//!   kind added later counts without a change here): its code is the kind, its chain's first
//!   role owes it, it was first due when its chain began (`deadlines::first_due`), it is kept
//!   when completed (`executionPeriod.end`, else `lastModified`) and withdrawn when cancelled,
//!   rejected, failed or entered in error. A Task with a team role as `performerType` and a
//!   due time but no chain (the HbA1c test falling due) counts with its current due time.
//! - **Reading reviews**: each reading the patient's side entered (tagged unreviewed, or
//!   reviewed) is owed a review `review.within` after it was taken, Task or none.
//! - **Goal answers**: each time the patient's side proposes a goal or suggests a change, the
//!   team owes an answer within `goal_answer`; the team's next word on it keeps the promise.
//! - **Activities**: each turn of each activity on the shared care plans, owed by its owner
//!   (the patient's side or a team role).
//! - **Goals agreed**: goals proposed before the period ended, and those both sides agreed.
//! - **Shared decisions**: the CollaboRATE responses given in the period (`collaborate`).
//!
//! A patient's team is their active CareTeam's name (else its id); their language, age band
//! and sex are read from their Patient resource for the equity breakdowns.

use super::*;
use crate::deadlines::{first_due, task_deadline};
use crate::vocabulary::instant_of;
use coproduce_core::calendar::Within;
use coproduce_core::partnership::{
    self as score, ACTIVITY, By, GOAL_ANSWER, GoalFacts, Promise, READING_REVIEW, Scorecard,
    team_owner,
};

/// The records a scorecard counts, gathered once.
#[derive(Debug, Clone, Default)]
pub struct Promises {
    pub promises: Vec<Promise>,
    pub goals: Vec<(OffsetDateTime, GoalFacts)>,
    /// The setting and owner of each open activity on the shared plans (the spectrum).
    pub plan: Vec<(Setting, Owner)>,
    /// The CollaboRATE responses given in the period, and those with the top score.
    pub shared_decisions: coproduce_core::partnership::collaborate::Rate,
}

/// The default time the team has to answer a goal the patient's side proposed.
pub const GOAL_ANSWER_WITHIN: Within = Within::BusinessDays(5);

/// Which side a reference speaks for: the patient's (Patient, RelatedPerson) or the team's.
pub(super) fn side_of_ref(r: Option<&str>) -> Option<Side> {
    match r.and_then(split_reference)?.0 {
        "Patient" | "RelatedPerson" => Some(Side::Patient),
        "Practitioner" | "PractitionerRole" | "Organization" => Some(Side::Team),
        _ => None,
    }
}

/// A Task's kind: its code in our system, else its first code.
fn task_kind(v: &Value) -> String {
    let codings = v["code"]["coding"].as_array();
    codings
        .and_then(|cs| cs.iter().find(|c| c["system"] == TASKS))
        .or_else(|| codings.and_then(|cs| cs.first()))
        .and_then(|c| c["code"].as_str())
        .unwrap_or("task")
        .to_string()
}

/// A team promise a Task holds, if it holds one.
fn task_promise(s: &Stored, calendar: &BusinessCalendar) -> Option<Promise> {
    let v = s.json().ok()?;
    let (owner, due, escalations) = match task_deadline(&v) {
        Some((chain, current)) => (
            team_owner(chain.steps()[0].role),
            first_due(&v, &chain, &current, calendar)?,
            u32::try_from(current.level).unwrap_or(u32::MAX),
        ),
        None => {
            let role = v["performerType"][0]["coding"][0]["code"]
                .as_str()
                .and_then(Role::parse)
                .filter(|r| r.is_team())?;
            (
                team_owner(role),
                instant_of(&v["restriction"]["period"]["end"])?,
                0,
            )
        }
    };
    let status = v["status"].as_str().unwrap_or("");
    let done = (status == "completed").then(|| {
        instant_of(&v["executionPeriod"]["end"])
            .or_else(|| instant_of(&v["lastModified"]))
            .unwrap_or_else(|| from_unix_millis(s.last_updated))
    });
    Some(Promise {
        kind: task_kind(&v),
        owner,
        person: None,
        due,
        done,
        withdrawn: score::withdrawn(status),
        escalations,
    })
}

/// A goal's story as the scorecard's rules read it (`core::partnership::GoalStep`).
pub(super) fn goal_steps(goal: &GoalView) -> Vec<score::GoalStep<'_>> {
    goal.history
        .iter()
        .map(|e| score::GoalStep {
            at: e.at,
            side: side_of_ref(e.by_ref.as_deref()),
            event: e.event.as_str(),
        })
        .collect()
}

/// The team's answers owed on a goal (`core::partnership::goal_answers_owed`), each due
/// `within` of the proposal; one still open on a closed goal is withdrawn.
fn goal_promises(goal: &GoalView, within: Within, calendar: &BusinessCalendar) -> Vec<Promise> {
    score::goal_answers_owed(&goal_steps(goal))
        .into_iter()
        .map(|(from, done)| Promise {
            kind: GOAL_ANSWER.into(),
            owner: None,
            person: None,
            due: within.due(calendar, from),
            done,
            withdrawn: done.is_none() && matches!(goal.state, GoalState::Closed),
            escalations: 0,
        })
        .collect()
}

/// A team item late with the role that now owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateItem {
    pub patient: String,
    /// The patient's name as a list shows it.
    pub name: String,
    pub kind: String,
    /// Its current due time (the step of its chain it is at).
    pub due: OffsetDateTime,
}

impl Care {
    /// The open Tasks of any kind that a role owns now and that are past their time, on the
    /// patients the caller reaches, most overdue first.
    pub async fn late_items(&self, caller: &Caller, role: Role) -> Result<Vec<LateItem>> {
        let now = self.now();
        let names: HashMap<String, String> = self
            .people(caller)
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect();
        let open = self
            .api
            .search_all(
                caller,
                "Task",
                &params(&[("status", "requested,in-progress".into())]),
            )
            .await?;
        let mut out = Vec::new();
        for t in open {
            let v = content(&t)?;
            // Its due time is the step of its chain it is at (`set_task_deadline` keeps both).
            let owned = owner_now(&v).zip(instant_of(&v["restriction"]["period"]["end"]));
            let (Some((owner, due)), Some(patient)) = (owned, t.patient_id.clone()) else {
                continue;
            };
            if owner == role && due < now {
                out.push(LateItem {
                    name: names
                        .get(&patient)
                        .cloned()
                        .unwrap_or_else(|| patient.clone()),
                    patient,
                    kind: task_kind(&v),
                    due,
                });
            }
        }
        out.sort_by_key(|x| x.due);
        Ok(out)
    }

    /// The promises of the whole population for someone the policy lets see it (a quality
    /// analyst), for aggregates only: one pass under their name, audited, and a refusal too.
    pub async fn population_promises(
        &self,
        caller: &Caller,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Promises> {
        let pass = self
            .api
            .population_pass(caller, "partnership-scorecard")
            .await?;
        self.promises(&pass, from, to, None).await
    }

    /// The scorecard of what the caller reaches (the population for the system, a
    /// clinician's panel), or of one patient's record.
    pub async fn scorecard(
        &self,
        caller: &Caller,
        from: OffsetDateTime,
        to: OffsetDateTime,
        by: By,
        patient: Option<&str>,
    ) -> Result<Scorecard> {
        let found = self.promises(caller, from, to, patient).await?;
        Ok(self.score(&found, from, to, by))
    }

    /// The scorecard of promises already gathered (one pass, several breakdowns).
    pub fn score(
        &self,
        found: &Promises,
        from: OffsetDateTime,
        to: OffsetDateTime,
        by: By,
    ) -> Scorecard {
        let goals: Vec<GoalFacts> = found
            .goals
            .iter()
            .filter(|(proposed, _)| *proposed < to)
            .map(|(_, g)| *g)
            .collect();
        score::scorecard(
            &found.promises,
            &goals,
            from,
            to,
            self.now(),
            by,
            &self.calendar,
        )
    }

    /// Every promise in the records the caller reaches (of one patient, or all) that could
    /// fall due in `[from, to)`.
    pub async fn promises(
        &self,
        caller: &Caller,
        from: OffsetDateTime,
        to: OffsetDateTime,
        patient: Option<&str>,
    ) -> Result<Promises> {
        let all = |rt: &'static str, mut params: Vec<(String, String)>| async move {
            if let Some(p) = patient {
                params.push(match rt {
                    "Patient" => ("_id".into(), p.to_string()),
                    "Task" => ("patient".into(), patient_ref(p)),
                    _ => ("subject".into(), patient_ref(p)),
                });
            }
            self.api.search_all(caller, rt, &params).await
        };
        let mut teams: HashMap<String, String> = HashMap::new();
        for t in all("CareTeam", vec![("status".into(), "active".into())]).await? {
            let v = content(&t)?;
            if let Some(p) = t.patient_id.clone() {
                let name = v["name"]
                    .as_str()
                    .map_or_else(|| format!("CareTeam/{}", t.id), str::to_string);
                teams.entry(p).or_insert(name);
            }
        }
        let today = self.now().date();
        let mut people: HashMap<String, Arc<score::Person>> = HashMap::new();
        for s in all("Patient", vec![]).await? {
            let v = content(&s)?;
            let birth = v["birthDate"].as_str().and_then(|b| {
                time::Date::parse(b, time::macros::format_description!("[year]-[month]-[day]")).ok()
            });
            let person = score::Person {
                team: teams.get(&s.id).cloned(),
                language: crate::vocabulary::preferred_language(&v).unwrap_or_else(|| "en".into()),
                age_band: coproduce_core::social::measures::age_band(birth, today),
                sex: v["gender"].as_str().unwrap_or("unknown").to_string(),
            };
            people.insert(s.id.clone(), Arc::new(person));
        }
        let mut found = Promises::default();
        let mut push = |patient: &Option<String>, mut p: Promise| {
            p.person = patient.as_ref().and_then(|id| people.get(id)).cloned();
            found.promises.push(p);
        };
        for t in all("Task", vec![]).await? {
            if let Some(p) = task_promise(&t, &self.calendar) {
                push(&t.patient_id, p);
            }
        }
        // A reading is owed its review `within` after it was taken.
        let within = self.review.within;
        for o in all(
            "Observation",
            vec![
                (
                    "date".into(),
                    format!("ge{}", Stored::instant(from - within)),
                ),
                ("date".into(), format!("lt{}", Stored::instant(to - within))),
            ],
        )
        .await?
        {
            let Some(r) = reading_of(&o) else { continue };
            if !r.unreviewed && r.review.is_none() {
                continue;
            }
            let p = Promise {
                kind: READING_REVIEW.into(),
                owner: None,
                person: None,
                due: r.at + within,
                done: r.review.as_ref().map(|rv| rv.at),
                withdrawn: false,
                escalations: 0,
            };
            push(&o.patient_id, p);
        }
        for g in all("Goal", vec![]).await? {
            let Some(goal) = goal_of(&g) else { continue };
            for p in goal_promises(&goal, self.goal_answer, &self.calendar) {
                push(&g.patient_id, p);
            }
            let proposed = goal.history.iter().map(|e| e.at).min();
            let agreed = matches!(goal.state, GoalState::Agreed)
                || goal.history.iter().any(|e| e.event == "agreed");
            found.goals.push((
                proposed.unwrap_or_else(|| from_unix_millis(g.last_updated)),
                GoalFacts { agreed },
            ));
        }
        for r in all(
            "QuestionnaireResponse",
            vec![
                ("authored".into(), format!("ge{}", Stored::instant(from))),
                ("authored".into(), format!("lt{}", Stored::instant(to))),
            ],
        )
        .await?
        {
            if let Some(a) = collaborate_answers(&content(&r)?) {
                found.shared_decisions.add(&a);
            }
        }
        let now = self.now();
        for plan in all(
            "CarePlan",
            vec![("category".into(), format!("{PLAN_CATEGORY}|shared"))],
        )
        .await?
        {
            let v = content(&plan)?;
            let patient = plan.patient_id.clone().unwrap_or_default();
            for a in activities_of(&v, &patient) {
                if !a.facts.finished {
                    found.plan.push((a.setting, a.facts.owner));
                }
                let marks: Vec<OffsetDateTime> = v["activity"][a.index]["progress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| instant_of(&p["time"]))
                    .collect();
                for (due, done) in score::activity_turns(&a.facts, &marks, now) {
                    let p = Promise {
                        kind: ACTIVITY.into(),
                        owner: Some(a.facts.owner),
                        person: None,
                        due,
                        done,
                        withdrawn: false,
                        escalations: 0,
                    };
                    push(&plan.patient_id, p);
                }
            }
        }
        Ok(found)
    }
}
