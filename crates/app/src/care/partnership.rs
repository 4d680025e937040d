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

use super::facts::{LINE, task_kind};
use super::*;
use crate::vocabulary::instant_of;
use coproduce_core::calendar::Within;
use coproduce_core::partnership::{self as score, By, GoalFacts, Promise, Scorecard};

/// The records a scorecard counts, gathered once.
#[derive(Debug, Clone, Default)]
pub struct Promises {
    pub promises: Vec<Promise>,
    pub goals: Vec<(OffsetDateTime, GoalFacts)>,
    /// The setting and owner of each open activity on the shared plans (the spectrum).
    pub plan: Vec<(Setting, Owner)>,
    /// The CollaboRATE responses given in the period, and those with the top score.
    pub shared_decisions: coproduce_core::partnership::collaborate::Rate,
    /// The patients whose records were read.
    pub patients: usize,
}

impl Promises {
    /// Adds what another part of the population holds.
    pub fn merge(&mut self, other: Promises) {
        self.promises.extend(other.promises);
        self.goals.extend(other.goals);
        self.plan.extend(other.plan);
        self.shared_decisions.merge(other.shared_decisions);
        self.patients += other.patients;
    }
}

/// What a population's records come to: the scorecard in each breakdown asked for, the
/// spectrum's activities and the shared decisions, folded a patient at a time
/// ([`Reader::fold`]) so that its promises are never all held together.
#[derive(Debug, Clone)]
pub struct Figures {
    pub cards: Vec<Scorecard>,
    /// The setting and owner of each open activity on the shared plans (the spectrum).
    pub plan: Vec<(Setting, Owner)>,
    pub shared_decisions: coproduce_core::partnership::collaborate::Rate,
    /// The patients whose records were read, and the promises they held.
    pub patients: usize,
    pub promises: usize,
}

impl Figures {
    /// The scorecard broken down `by` (an empty one if that breakdown was not asked for).
    pub fn card(&self, by: By) -> std::borrow::Cow<'_, Scorecard> {
        self.cards.iter().find(|c| c.by == by).map_or_else(
            || std::borrow::Cow::Owned(Scorecard::empty(by)),
            std::borrow::Cow::Borrowed,
        )
    }
}

/// Figures being counted: one part of the population, merged with the others when done.
#[derive(Debug, Clone)]
pub struct Fold {
    scoring: score::Scoring,
    calendar: Arc<BusinessCalendar>,
    to: OffsetDateTime,
    plan: Vec<(Setting, Owner)>,
    shared_decisions: coproduce_core::partnership::collaborate::Rate,
    patients: usize,
    promises: usize,
}

impl Fold {
    /// Counts what one patient's records (or a search's) held.
    pub fn add(&mut self, found: Promises) {
        for p in &found.promises {
            self.scoring.add(p, &self.calendar);
        }
        for (proposed, g) in found.goals {
            if proposed < self.to {
                self.scoring.add_goal(g);
            }
        }
        self.promises += found.promises.len();
        self.plan.extend(found.plan);
        self.shared_decisions.merge(found.shared_decisions);
        self.patients += found.patients;
    }

    /// Adds another part's counts.
    pub fn merge(&mut self, other: Fold) {
        self.scoring.merge(other.scoring);
        self.plan.extend(other.plan);
        self.shared_decisions.merge(other.shared_decisions);
        self.patients += other.patients;
        self.promises += other.promises;
    }

    pub fn finish(self) -> Figures {
        Figures {
            cards: self.scoring.finish(),
            plan: self.plan,
            shared_decisions: self.shared_decisions,
            patients: self.patients,
            promises: self.promises,
        }
    }
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
        let open = self.open_tasks(caller).await?;
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

    /// The figures of the whole population for someone the policy lets see it (a quality
    /// analyst), for aggregates only, broken down each way in `by`: their reach checked (a
    /// refusal audited), then one pass over the store's per-patient projection rows as the
    /// measures read them, every committed write applied first, each patient's promises
    /// counted and let go; audited as one row under their name.
    pub async fn population_figures(
        &self,
        caller: &Caller,
        from: OffsetDateTime,
        to: OffsetDateTime,
        by: &[By],
    ) -> Result<Figures> {
        const ACTION: &str = "partnership-scorecard";
        self.api.require_population_reach(caller, ACTION).await?;
        let store = self.api.store();
        store
            .ensure_patient_records(|_, _| {})
            .await
            .map_err(AppError::from)?;
        let reader = Arc::new(self.reader(from, to));
        let mut all = reader.fold(by);
        let mut batches = store.patient_record_batches(2_000);
        while let Some(batch) = batches.recv().await {
            let batch = batch.map_err(AppError::from)?;
            let reader = reader.clone();
            let by = by.to_vec();
            let part = tokio::task::spawn_blocking(move || {
                use rayon::prelude::*;
                batch
                    .par_iter()
                    .try_fold(
                        || reader.fold(&by),
                        |mut f, (id, row)| {
                            f.add(reader.projection_row(id, row)?);
                            Ok::<_, CareError>(f)
                        },
                    )
                    .try_reduce(
                        || reader.fold(&by),
                        |mut a, b| {
                            a.merge(b);
                            Ok(a)
                        },
                    )
            })
            .await
            .map_err(|e| AppError::Internal(format!("reading the partnership's records: {e}")))??;
            all.merge(part);
        }
        let figures = all.finish();
        store
            .audit(&coproduce_store::AuditEntry {
                at: coproduce_core::unix_millis(self.now()),
                actor: caller.label.clone(),
                action: ACTION.into(),
                outcome: "allowed".into(),
                detail: Some(format!(
                    "{} patients, {} promises",
                    figures.patients, figures.promises
                )),
                ..Default::default()
            })
            .await
            .map_err(AppError::from)?;
        Ok(figures)
    }

    /// The figures of promises already gathered (a panel's), broken down each way in `by`.
    pub fn figures(
        &self,
        found: Promises,
        from: OffsetDateTime,
        to: OffsetDateTime,
        by: &[By],
    ) -> Figures {
        let mut fold = self.reader(from, to).fold(by);
        fold.add(found);
        fold.finish()
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

    /// The scorecard of promises already gathered (a patient's, for their home box).
    pub fn score(
        &self,
        found: &Promises,
        from: OffsetDateTime,
        to: OffsetDateTime,
        by: By,
    ) -> Scorecard {
        let mut figures = self.figures(found.clone(), from, to, &[by]);
        figures.cards.pop().unwrap_or_else(|| Scorecard::empty(by))
    }

    /// Every promise in the records the caller reaches (of one patient, or all) that could
    /// fall due in `[from, to)`, gathered by searches under the caller's rights (a panel, one
    /// chart).
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
        // Each patient's facts gathered from the searches, then read by the same rules as a
        // projection row's.
        let mut records: HashMap<Option<String>, RecordFacts> = HashMap::new();
        let mut gather = |s: &Stored| -> Result<()> {
            records
                .entry(s.patient_id.clone())
                .or_default()
                .add(&content(s)?, s.last_updated);
            Ok(())
        };
        for t in all("CareTeam", vec![("status".into(), "active".into())]).await? {
            gather(&t)?;
        }
        for s in all("Patient", vec![]).await? {
            gather(&s)?;
        }
        // Each type searched narrowly where a search can say what the reader keeps anyway.
        let window = |param: &str, from: OffsetDateTime, to: OffsetDateTime| {
            vec![
                (param.to_string(), format!("ge{}", Stored::instant(from))),
                (param.to_string(), format!("lt{}", Stored::instant(to))),
            ]
        };
        let within = self.review.within;
        let searches = [
            ("Task", vec![]),
            ("Observation", window("date", from - within, to - within)),
            ("Goal", vec![]),
            ("QuestionnaireResponse", window("authored", from, to)),
            (
                "CarePlan",
                vec![("category".into(), format!("{PLAN_CATEGORY}|shared"))],
            ),
        ];
        for (rt, params) in searches {
            for s in all(rt, params).await? {
                gather(&s)?;
            }
        }
        let reader = self.reader(from, to);
        let mut found = Promises::default();
        for facts in records.values() {
            found.merge(reader.promises_of(facts));
        }
        Ok(found)
    }

    /// What the scorecard reads from the records over `[from, to)`, with this service's rules.
    pub fn reader(&self, from: OffsetDateTime, to: OffsetDateTime) -> Reader {
        Reader::new(
            self.calendar.clone(),
            self.review.within,
            self.goal_answer,
            from,
            to,
            self.now(),
        )
    }
}

/// The resource types the scorecard reads from a projection row, each with words one of
/// which a resource must hold to hold a promise (none: every one is read). Most of a
/// record is the measures' readings and visits: a reading owes a review only when tagged
/// unreviewed or reviewed, a plan only when shared, a response only when it answers
/// CollaboRATE. (Nearly every Task holds a due time, so all are read.) The projection is written
/// by serde_json, which escapes no letter, so a word that is there is found.
const READ: [(&str, &[&str]); 7] = [
    ("CarePlan", &["shared"]),
    ("CareTeam", &[]),
    ("Goal", &[]),
    ("Observation", &["unreviewed", "reading-review"]),
    ("Patient", &[]),
    ("QuestionnaireResponse", &["collaborate"]),
    ("Task", &[]),
];

/// What the scorecard reads from a record, one resource at a time, the same whether the
/// resources came from searches or from a patient's projection row.
#[derive(Debug, Clone)]
pub struct Reader {
    pub(super) calendar: Arc<BusinessCalendar>,
    pub(super) review_within: time::Duration,
    pub(super) goal_answer: Within,
    pub(super) from: OffsetDateTime,
    pub(super) to: OffsetDateTime,
    pub(super) now: OffsetDateTime,
}

impl Reader {
    /// A reader of the promises that could fall due in `[from, to)`, as they stand at `now`,
    /// with a site's rules: its calendar, the time a reading's review is owed in and the time
    /// the team has to answer a goal.
    pub fn new(
        calendar: Arc<BusinessCalendar>,
        review_within: time::Duration,
        goal_answer: Within,
        from: OffsetDateTime,
        to: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Self {
        Reader {
            calendar,
            review_within,
            goal_answer,
            from,
            to,
            now,
        }
    }

    /// Empty figures over this reader's period, to count into.
    pub fn fold(&self, by: &[By]) -> Fold {
        Fold {
            scoring: score::Scoring::new(self.from, self.to, self.now, by),
            calendar: self.calendar.clone(),
            to: self.to,
            plan: Vec::new(),
            shared_decisions: Default::default(),
            patients: 0,
            promises: 0,
        }
    }

    /// One patient's record held in memory (a generated one, say).
    pub fn record(&self, resources: &[Value]) -> Promises {
        self.promises_of(&RecordFacts::of(resources))
    }

    /// A patient's care team as the breakdowns name it, from an active CareTeam: its name,
    /// else its id.
    pub(super) fn team(v: &Value, id: &str) -> Option<String> {
        (v["status"] == "active").then(|| {
            v["name"]
                .as_str()
                .map_or_else(|| format!("CareTeam/{id}"), str::to_string)
        })
    }

    /// What one patient's projection row holds (`coproduce_measures::projection`): the
    /// facts its partnership line keeps ([`PromiseLine`]), or (a row built without that
    /// line) the resources the scorecard reads. A row that cannot be read is an error, never
    /// a patient silently left out.
    pub(super) fn projection_row(&self, patient: &str, row: &[u8]) -> Result<Promises> {
        let unreadable = |why: String| {
            CareError::App(AppError::Internal(format!(
                "the measure record of Patient/{patient} is unreadable: {why}"
            )))
        };
        let lines = coproduce_measures::projection::decode_lines(row).map_err(unreadable)?;
        let ours = lines.lines().find_map(|l| {
            l.strip_prefix(LINE)
                .and_then(|rest| rest.strip_prefix('\t'))
        });
        if let Some(line) = ours {
            let facts: RecordFacts = sonic_rs::from_str(line)
                .map_err(|e| unreadable(format!("its partnership line is not readable: {e}")))?;
            return Ok(self.promises_of(&facts));
        }
        let text = coproduce_measures::projection::decode(row).map_err(unreadable)?;
        let mut record: Vec<Value> = Vec::new();
        for line in text.lines() {
            let (rt, list) = line
                .split_once('\t')
                .ok_or_else(|| unreadable(format!("a line without a resource type: {line:.40}")))?;
            let Some((_, needs)) = READ.iter().find(|(t, _)| *t == rt) else {
                continue;
            };
            let not_json =
                |e: serde_json::Error| unreadable(format!("its {rt} list is not JSON: {e}"));
            if needs.is_empty() {
                let items: Vec<Value> = serde_json::from_str(list).map_err(not_json)?;
                record.extend(items);
                continue;
            }
            // A list none of whose resources can hold a promise is not parsed at all; of
            // one that may, only the resources that may.
            if !needs.iter().any(|n| list.contains(n)) {
                continue;
            }
            let items: Vec<&serde_json::value::RawValue> =
                serde_json::from_str(list).map_err(not_json)?;
            for item in items {
                let text = item.get();
                if needs.iter().any(|n| text.contains(n)) {
                    record.push(serde_json::from_str(text).map_err(not_json)?);
                }
            }
        }
        Ok(self.record(&record))
    }
}
