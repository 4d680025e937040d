//! The chart (a patient's plan, readings, team and tasks in one view) and the team's
//! attention list across its panel.

use super::*;
use coproduce_core::care::safety::ActNow;

/// What a patient's chart holds for the plan and readings pages.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub patient: String,
    pub name: String,
    /// The patient's preferred language (Patient.communication), if recorded.
    pub language: Option<String>,
    pub readings: Vec<Reading>,
    pub goals: Vec<GoalView>,
    pub activities: Vec<ActivityView>,
    pub tasks: Vec<TaskView>,
    pub team: Vec<(String, String)>,
}

impl Chart {
    /// The target a reading of this measure is compared with: an agreed goal's, if any.
    pub fn own_target(&self, m: Measure) -> Option<TargetRange> {
        self.goals
            .iter()
            .filter(|g| g.state == GoalState::Agreed)
            .find_map(|g| g.target.filter(|(gm, _)| *gm == m).map(|(_, r)| r))
    }

    pub fn readings_of(&self, m: Measure) -> impl Iterator<Item = &Reading> {
        self.readings.iter().filter(move |r| r.measure == m)
    }
}

/// A patient as a list row names them: name, date of birth and record number, so that two
/// people with one name are told apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PanelPerson {
    pub id: String,
    pub name: String,
    /// YYYY-MM-DD, if recorded.
    pub birth_date: Option<String>,
    /// The first identifier of type MR (medical record number), else the first identifier.
    pub mrn: Option<String>,
}

/// Whether a team task needs action now, and why (the order is `core`'s).
pub fn act_now(t: &TaskView, now: OffsetDateTime) -> Option<ActNow> {
    ActNow::of(
        t.alert,
        coproduce_core::rescue::TaskKind::parse(&t.code),
        t.urgent,
        t.due.is_some_and(|d| d < now),
    )
}

/// The team's view of its panel: what needs attention.
#[derive(Debug, Clone, Default)]
pub struct Attention {
    /// (id, name) of every patient in the panel.
    pub panel: Vec<(String, String)>,
    /// Every patient in the panel with what tells them apart.
    pub people: HashMap<String, PanelPerson>,
    /// What needs action now, most urgent first, with why.
    pub act_now: Vec<(ActNow, TaskView)>,
    pub readings: Vec<FlaggedReading>,
    pub goals: Vec<GoalView>,
    pub activities: Vec<ActivityView>,
    pub tasks: Vec<TaskView>,
    /// The latest HbA1c (%) of each patient in the panel who has one.
    pub latest_hba1c: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FlaggedReading {
    pub reading: Reading,
    pub out_of_range: bool,
    /// Below or above its target (the patient's own, else the default), if it has one.
    pub standing: Option<Standing>,
    /// The response it needs now, if any.
    pub alert: Option<Alert>,
    /// Unreviewed for longer than the review rules allow.
    pub overdue: bool,
}

/// What a visit summary lists besides the plan and the readings: the patient's active
/// conditions and medicines, by name. None where the reader's rights leave them out (a family
/// grant without the record).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VisitRecord {
    pub conditions: Option<Vec<String>>,
    pub medicines: Option<Vec<String>>,
}

/// A patient as a list row names them (None if their JSON cannot be read).
fn person_of(s: &Stored) -> Option<PanelPerson> {
    let v = s.json().ok()?;
    Some(PanelPerson {
        id: s.id.clone(),
        name: person_name(&v),
        birth_date: v["birthDate"].as_str().map(str::to_string),
        mrn: record_number(&v),
    })
}

/// The name of a coded thing: its text, else its first coding's display, else its code.
fn concept_name(v: &Value) -> Option<String> {
    v["text"]
        .as_str()
        .or_else(|| {
            v["coding"]
                .as_array()?
                .iter()
                .find_map(|c| c["display"].as_str().or(c["code"].as_str()))
        })
        .map(str::to_string)
}

impl Care {
    /// The patient's active conditions and medicines, as the caller may see them.
    pub async fn visit_record(&self, caller: &Caller, patient: &str) -> Result<VisitRecord> {
        let subject = patient_ref(patient);
        let names = |found: Vec<Stored>, field: &str| -> Result<Vec<String>> {
            let mut out = Vec::new();
            for s in &found {
                let v = content(s)?;
                if let Some(n) = concept_name(&v[field])
                    && !out.contains(&n)
                {
                    out.push(n);
                }
            }
            out.sort();
            Ok(out)
        };
        let reachable = |r: std::result::Result<Vec<Stored>, AppError>| match r {
            Ok(found) => Ok(Some(found)),
            Err(AppError::Forbidden(_)) => Ok(None),
            Err(e) => Err(CareError::from(e)),
        };
        let conditions = reachable(
            self.api
                .search_all(
                    caller,
                    "Condition",
                    &params(&[
                        ("subject", subject.clone()),
                        ("clinical-status", "active".into()),
                    ]),
                )
                .await,
        )?;
        let medicines = reachable(
            self.api
                .search_all(
                    caller,
                    "MedicationRequest",
                    &params(&[("subject", subject), ("status", "active".into())]),
                )
                .await,
        )?;
        Ok(VisitRecord {
            conditions: conditions.map(|f| names(f, "code")).transpose()?,
            medicines: medicines
                .map(|f| names(f, "medicationCodeableConcept"))
                .transpose()?,
        })
    }
}

impl Care {
    /// The activities on the active shared plans in the caller's reach that `keep` keeps.
    async fn panel_activities(
        &self,
        caller: &Caller,
        keep: impl Fn(&ActivityView) -> bool,
    ) -> Result<Vec<ActivityView>> {
        let plans = self
            .views
            .activities
            .try_search(
                &self.api,
                caller,
                "CarePlan",
                &params(&[
                    ("category", format!("{PLAN_CATEGORY}|shared")),
                    ("status", "active".into()),
                ]),
                |p| {
                    let patient = p.patient_id.as_deref().unwrap_or_default();
                    Ok(activities_of(&content(p)?, patient).into())
                },
            )
            .await?;
        Ok(plans
            .iter()
            .flat_map(|activities| activities.iter().filter(|x| keep(x)).cloned())
            .collect())
    }
}

/// A team role's worklist across its panel (the pharmacist's, the community health worker's,
/// the social worker's): the tasks it owns, most urgent first, and the plan activities it owns
/// that are not finished, soonest first. No readings to sign off: that is the clinical roles'.
#[derive(Debug, Clone, Default)]
pub struct Worklist {
    pub people: HashMap<String, PanelPerson>,
    /// The panel by name.
    pub panel: Vec<PanelPerson>,
    pub tasks: Vec<TaskView>,
    pub activities: Vec<ActivityView>,
}

impl Care {
    /// The worklist of a team role, as the caller may see it.
    pub async fn worklist(&self, caller: &Caller, role: Role) -> Result<Worklist> {
        let now = self.now();
        let panel = self.people(caller).await?;
        let mut w = Worklist {
            people: panel.iter().map(|p| (p.id.clone(), p.clone())).collect(),
            panel,
            ..Worklist::default()
        };
        w.tasks = self
            .api
            .search_all(
                caller,
                "Task",
                &params(&[("status", "requested,in-progress".into())]),
            )
            .await?
            .iter()
            .filter_map(task_of)
            .filter(|t| t.role == Some(role))
            .collect();
        // What needs action now first (most urgent first), then by due time, undated last.
        w.tasks.sort_by_key(|t| {
            let why = act_now(t, now);
            (why.is_none(), why, t.due.is_none(), t.due)
        });
        w.activities = self
            .panel_activities(caller, |x| {
                x.owner() == Owner::Team(role) && x.facts.next_due().is_some()
            })
            .await?;
        w.activities.sort_by_key(|x| x.facts.next_due());
        Ok(w)
    }
}

/// A patient's medical record number: the identifier typed MR, else the first one.
fn record_number(v: &Value) -> Option<String> {
    let ids = v["identifier"].as_array()?;
    ids.iter()
        .find(|i| i["type"]["coding"][0]["code"] == "MR")
        .or(ids.first())
        .and_then(|i| i["value"].as_str())
        .map(str::to_string)
}

impl Attention {
    /// The patient as a row names them ("Ana Silva · 1961-04-12 · MRN00001").
    pub fn person(&self, patient: &str) -> Option<&PanelPerson> {
        self.people.get(patient)
    }

    pub fn name_of<'a>(&'a self, patient: &'a str) -> &'a str {
        self.people
            .get(patient)
            .map_or(patient, |p| p.name.as_str())
    }
}

impl Care {
    /// Everything the plan and readings pages show for one patient, as the caller may see it.
    pub async fn chart(&self, caller: &Caller, patient: &str) -> Result<Chart> {
        let p = self.api.read(caller, "Patient", patient).await?;
        let pv = content(&p)?;
        let subject = patient_ref(patient);
        let mut chart = Chart {
            patient: patient.to_string(),
            name: person_name(&pv),
            language: crate::vocabulary::preferred_language(&pv),
            ..Chart::default()
        };
        // A family member whose grant leaves out a part simply sees none of it.
        let allowed = |e: &CareError| matches!(e, CareError::App(AppError::Forbidden(_)));
        match self
            .api
            .search_all(
                caller,
                "Observation",
                &params(&[("subject", subject.clone()), ("_sort", "-date".into())]),
            )
            .await
        {
            Ok(found) => chart.readings = found.iter().filter_map(reading_of).collect(),
            Err(e) => {
                let e = CareError::from(e);
                if !allowed(&e) {
                    return Err(e);
                }
            }
        }
        match self
            .api
            .search_all(caller, "Goal", &params(&[("subject", subject.clone())]))
            .await
        {
            Ok(found) => {
                chart.goals = found.iter().filter_map(goal_of).collect();
                chart
                    .goals
                    .sort_by_key(|g| std::cmp::Reverse(g.history.first().map(|h| h.at)));
                if let Some(plan) = self.find_plan(caller, patient).await? {
                    chart.activities = activities_of(&content(&plan)?, patient);
                }
                let tasks = self
                    .api
                    .search_all(
                        caller,
                        "Task",
                        &params(&[
                            ("patient", subject.clone()),
                            ("status", "requested,in-progress".into()),
                        ]),
                    )
                    .await?;
                chart.tasks = tasks.iter().filter_map(task_of).collect();
            }
            Err(e) => {
                let e = CareError::from(e);
                if !allowed(&e) {
                    return Err(e);
                }
            }
        }
        if let Ok(teams) = self
            .api
            .search_all(caller, "CareTeam", &params(&[("subject", subject)]))
            .await
        {
            for t in teams {
                let tv = content(&t)?;
                for member in tv["participant"].as_array().into_iter().flatten() {
                    let role = member["role"][0]["coding"][0]["display"]
                        .as_str()
                        .or(member["role"][0]["text"].as_str())
                        .unwrap_or("")
                        .to_string();
                    let who = member["member"]["display"]
                        .as_str()
                        .or(member["member"]["reference"].as_str())
                        .unwrap_or("")
                        .to_string();
                    chart.team.push((who, role));
                }
            }
        }
        self.name_team(caller, &mut chart.team).await?;
        self.name_people(caller, &mut chart).await?;
        Ok(chart)
    }

    /// The names on the records `refs` point to (Practitioner, RelatedPerson, Patient), read
    /// with the caller's rights, beside those already `known`.
    pub(super) async fn names_of(
        &self,
        caller: &Caller,
        mut refs: Vec<String>,
        mut names: HashMap<String, String>,
    ) -> Result<HashMap<String, String>> {
        refs.sort();
        refs.dedup();
        for ty in ["Practitioner", "RelatedPerson", "Patient"] {
            let prefix = format!("{ty}/");
            let ids: Vec<&str> = refs
                .iter()
                .filter(|r| !names.contains_key(r.as_str()))
                .filter_map(|r| r.strip_prefix(&prefix))
                .collect();
            if ids.is_empty() {
                continue;
            }
            match self
                .api
                .search_all(caller, ty, &params(&[("_id", ids.join(","))]))
                .await
            {
                Ok(found) => {
                    for s in found {
                        names.insert(format!("{prefix}{}", s.id), person_name(&content(&s)?));
                    }
                }
                Err(AppError::Forbidden(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(names)
    }

    /// Who entered, reviewed, proposed or answered is shown by the name on their record
    /// (never a sign-in name or an id): each record read once, with the reader's rights; one
    /// out of their reach keeps the name written with it.
    async fn name_people(&self, caller: &Caller, chart: &mut Chart) -> Result<()> {
        let mut refs: Vec<String> = Vec::new();
        for r in &chart.readings {
            refs.extend(r.by_ref.clone());
            refs.extend(r.review.as_ref().and_then(|rv| rv.by_ref.clone()));
        }
        for g in &chart.goals {
            refs.extend(g.proposed_by_ref.clone());
            refs.extend(g.history.iter().filter_map(|e| e.by_ref.clone()));
        }
        let known = HashMap::from([(patient_ref(&chart.patient), chart.name.clone())]);
        let names = self.names_of(caller, refs, known).await?;
        let named = |by: &mut String, r: &Option<String>| {
            if let Some(n) = r.as_ref().and_then(|r| names.get(r)) {
                by.clone_from(n);
            }
        };
        for r in &mut chart.readings {
            named(&mut r.by, &r.by_ref);
            if let Some(rv) = &mut r.review {
                named(&mut rv.by, &rv.by_ref);
            }
        }
        for g in &mut chart.goals {
            named(&mut g.proposed_by, &g.proposed_by_ref);
            for e in &mut g.history {
                named(&mut e.by, &e.by_ref);
            }
        }
        Ok(())
    }

    /// Care-team members recorded by reference only get their names from their
    /// Practitioner resources.
    pub(super) async fn name_team(
        &self,
        caller: &Caller,
        team: &mut [(String, String)],
    ) -> Result<()> {
        let ids: Vec<String> = team
            .iter()
            .filter_map(|(who, _)| who.strip_prefix("Practitioner/").map(str::to_string))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let found = self
            .api
            .search_all(caller, "Practitioner", &params(&[("_id", ids.join(","))]))
            .await?;
        let names: HashMap<String, String> = found
            .iter()
            .filter_map(|s| {
                Some((
                    format!("Practitioner/{}", s.id),
                    person_name(&s.json().ok()?),
                ))
            })
            .collect();
        for (who, _) in team.iter_mut() {
            if let Some(n) = names.get(who.as_str()) {
                *who = n.clone();
            }
        }
        Ok(())
    }

    /// A patient's name as the pages write it, read from their record alone (not their chart).
    pub async fn patient_name(&self, caller: &Caller, patient: &str) -> Result<String> {
        let stored = self.api.read(caller, "Patient", patient).await?;
        Ok(person_name(&content(&stored)?))
    }

    /// The patients the caller may see (a family member's, a team member's panel).
    pub async fn patients(&self, caller: &Caller) -> Result<Vec<(String, String)>> {
        Ok(self
            .people(caller)
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect())
    }

    /// The patients the caller may see, by name, with their dates of birth and record numbers.
    pub async fn people(&self, caller: &Caller) -> Result<Vec<PanelPerson>> {
        let mut out: Vec<PanelPerson> = self
            .views
            .people
            .search(&self.api, caller, "Patient", &[], person_of)
            .await?
            .into_iter()
            .flatten()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.birth_date.cmp(&b.birth_date)));
        Ok(out)
    }

    /// The team home: what needs the team's attention across its panel.
    ///
    /// Its searches run side by side, each a task of its own (on a worker of its own where the
    /// machine has one): a large panel's page waits for the slowest search, not their sum.
    pub async fn attention(&self, caller: &Caller) -> Result<Attention> {
        let now = self.now();
        let since = now - time::Duration::days(456);
        let people = self.beside(
            caller,
            |care, caller| async move { care.people(&caller).await },
        );
        let goals = self.beside(caller, |care, caller| async move {
            Ok(care
                .views
                .goals
                .search(
                    &care.api,
                    &caller,
                    "Goal",
                    &params(&[("lifecycle-status", "proposed,active".into())]),
                    goal_of,
                )
                .await?
                .into_iter()
                .flatten()
                .collect::<Vec<GoalView>>())
        });
        let unreviewed = self.beside(caller, |care, caller| async move {
            Ok(care
                .views
                .readings
                .search(
                    &care.api,
                    &caller,
                    "Observation",
                    &params(&[("_tag", format!("{WORKFLOW_TAGS}|unreviewed"))]),
                    reading_of,
                )
                .await?
                .into_iter()
                .flatten()
                .collect::<Vec<Reading>>())
        });
        let activities = self.beside(caller, move |care, caller| async move {
            care.panel_activities(&caller, |x| {
                x.owner().side() == Side::Team && x.facts.overdue(now)
            })
            .await
        });
        let tasks = self.beside(caller, |care, caller| async move {
            Ok(care
                .views
                .tasks
                .search(&care.api, &caller, "Task", &open_task_params(), task_of)
                .await?
                .into_iter()
                .flatten()
                .collect::<Vec<TaskView>>())
        });
        let latest_hba1c = self.beside(caller, move |care, caller| async move {
            care.latest_hba1c(&caller, since).await
        });
        let (people, goals, unreviewed, activities, tasks, latest_hba1c) =
            tokio::try_join!(people, goals, unreviewed, activities, tasks, latest_hba1c)?;
        let mut a = Attention {
            panel: people
                .iter()
                .map(|p| (p.id.clone(), p.name.clone()))
                .collect(),
            people: people.into_iter().map(|p| (p.id.clone(), p)).collect(),
            activities,
            latest_hba1c,
            ..Attention::default()
        };
        let own_targets: HashMap<(String, Measure), TargetRange> = goals
            .iter()
            .filter(|g| g.state == GoalState::Agreed)
            .filter_map(|g| g.target.map(|(m, r)| ((g.patient.clone(), m), r)))
            .collect();
        a.readings = unreviewed
            .into_iter()
            .map(|r| {
                let own = own_targets.get(&(r.patient.clone(), r.measure)).copied();
                FlaggedReading {
                    out_of_range: self.targets.out_of_range(r.measure, &r.value, own),
                    standing: self.targets.standing(r.measure, &r.value, own),
                    alert: self.alert(&r),
                    overdue: self.review.overdue(r.at, now),
                    reading: r,
                }
            })
            .collect();
        let known = a
            .people
            .values()
            .map(|p| (patient_ref(&p.id), p.name.clone()))
            .collect();
        let refs = a
            .readings
            .iter()
            .filter_map(|f| f.reading.by_ref.clone())
            .filter(|r| !r.starts_with("Patient/"))
            .collect();
        let names = self.names_of(caller, refs, known).await?;
        for f in &mut a.readings {
            if let Some(n) = f.reading.by_ref.as_ref().and_then(|r| names.get(r)) {
                f.reading.by.clone_from(n);
            }
        }
        // Those that need a response now first (the most severe first), then overdue, then
        // out of range, then the oldest (of two taken at once, the first by id). Sorted here,
        // not by the search: `_sort=date` costs the store a look-up of each match's date.
        let rank = |f: &FlaggedReading| {
            (
                f.alert.is_none(),
                f.alert,
                !f.overdue,
                !f.out_of_range,
                f.reading.at,
            )
        };
        a.readings.sort_by(|x, y| {
            rank(x)
                .cmp(&rank(y))
                .then_with(|| x.reading.id.cmp(&y.reading.id))
        });
        a.goals = goals
            .into_iter()
            .filter(|g| g.state == GoalState::Awaiting(Side::Team))
            .collect();
        // What needs action now goes first, most urgent first; the rest falls due later.
        for t in tasks {
            match act_now(&t, now) {
                Some(why) => a.act_now.push((why, t)),
                None if t.due.is_some_and(|d| d <= now + self.due_soon) => a.tasks.push(t),
                None => {}
            }
        }
        a.act_now.sort_by_key(|(rank, t)| (*rank, t.due));
        a.tasks.sort_by_key(|t| t.due);
        Ok(a)
    }

    /// Each patient's latest HbA1c since `since` (the team home's distribution).
    ///
    /// The latest is picked here, not by `_sort=-date`: sorting by date costs the store a
    /// look-up of each match's date, and the panel's readings have theirs already.
    async fn latest_hba1c(&self, caller: &Caller, since: OffsetDateTime) -> Result<Vec<f64>> {
        let hba1c = self
            .views
            .readings
            .search(
                &self.api,
                caller,
                "Observation",
                &params(&[
                    (
                        "code",
                        reading_rules::HBA1C_CODES
                            .iter()
                            .map(|c| format!("{LOINC}|{c}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    ("date", format!("ge{}", instant(since))),
                ]),
                reading_of,
            )
            .await?;
        let mut latest: BTreeMap<String, Reading> = BTreeMap::new();
        for r in hba1c.into_iter().flatten() {
            // The later reading; of two taken at once, the first by id (as a sort gives them).
            let later =
                |k: &Reading| (r.at, std::cmp::Reverse(&r.id)) > (k.at, std::cmp::Reverse(&k.id));
            if latest.get(&r.patient).is_none_or(later) {
                latest.insert(r.patient.clone(), r);
            }
        }
        Ok(latest.values().map(|r| r.value.headline()).collect())
    }

    /// `work` as a task of its own, with a copy of this service and the caller.
    fn beside<T, F, W>(
        &self,
        caller: &Caller,
        work: W,
    ) -> impl Future<Output = Result<T>> + use<T, F, W>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
        W: FnOnce(Care, Caller) -> F,
    {
        let task = tokio::spawn(work(self.clone(), caller.clone()));
        async move {
            task.await
                .map_err(|e| AppError::Internal(format!("a team home search stopped: {e}")))?
        }
    }
}
