//! The shared plan: goals either side proposes and the other answers, and the activities on
//! the patient's one CarePlan, each with an owner, a setting and a cadence.

use super::*;

/// A goal as both sides see it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalView {
    pub id: String,
    pub version: i64,
    pub patient: String,
    pub text: String,
    pub state: GoalState,
    pub target: Option<(Measure, TargetRange)>,
    pub hba1c_target: Option<HbA1cTarget>,
    pub proposed_by: String,
    pub proposed_by_ref: Option<String>,
    /// The side that proposed it, from whom Goal.expressedBy names.
    pub proposed_by_side: Option<Side>,
    pub history: Vec<GoalEvent>,
}

/// One step in a goal's story.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalEvent {
    pub at: OffsetDateTime,
    pub by: String,
    pub by_ref: Option<String>,
    /// proposed, agreed, change-suggested, declined.
    pub event: String,
    /// Their words, if any.
    pub words: Option<String>,
}

pub(super) fn goal_of(stored: &Stored) -> Option<GoalView> {
    let v = stored.json().ok()?;
    let patient = stored.patient_id.clone().unwrap_or_default();
    goal_from(&v, &stored.id, stored.version_id, patient)
}

/// A goal from its content (with its id, version and patient as the store keeps them).
pub(super) fn goal_from(v: &Value, id: &str, version: i64, patient: String) -> Option<GoalView> {
    let awaiting = v["extension"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["url"] == ext("goal-awaiting")))
        .and_then(|e| e["valueCode"].as_str())
        .and_then(Side::parse);
    let state = GoalState::from_fhir(v["lifecycleStatus"].as_str()?, awaiting);
    let target = v["target"].as_array().and_then(|ts| {
        ts.iter().find_map(|t| {
            let m = coded_measure(&t["measure"])?;
            let q = &t["detailQuantity"];
            let value = quantity_value(m, q)?;
            let range = match q["comparator"].as_str() {
                Some("<") | Some("<=") => TargetRange::below(value),
                Some(">") | Some(">=") => TargetRange {
                    low: Some(value),
                    high: None,
                },
                _ => return None,
            };
            Some((m, range))
        })
    });
    let hba1c_target = match target {
        Some((Measure::HbA1c, r)) => HbA1cTarget::ALL
            .into_iter()
            .find(|t| Some(t.percent()) == r.high),
        _ => None,
    };
    let history = v["note"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .map(|n| GoalEvent {
                    at: parse_time(&n["time"]).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    by: n["authorReference"]["display"]
                        .as_str()
                        .or(n["authorString"].as_str())
                        .unwrap_or("")
                        .to_string(),
                    by_ref: n["authorReference"]["reference"]
                        .as_str()
                        .map(str::to_string),
                    event: n["extension"]
                        .as_array()
                        .and_then(|es| es.iter().find(|e| e["url"] == ext("goal-event")))
                        .and_then(|e| e["valueCode"].as_str())
                        .unwrap_or("note")
                        .to_string(),
                    words: n["text"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(GoalView {
        id: id.to_string(),
        version,
        patient,
        text: v["description"]["text"].as_str().unwrap_or("").to_string(),
        state,
        target,
        hba1c_target,
        proposed_by_side: v["expressedBy"]["reference"]
            .as_str()
            .and_then(split_reference)
            .and_then(|(t, _)| match t {
                "Patient" | "RelatedPerson" => Some(Side::Patient),
                "Practitioner" | "PractitionerRole" => Some(Side::Team),
                _ => None,
            }),
        proposed_by_ref: v["expressedBy"]["reference"].as_str().map(str::to_string),
        proposed_by: v["expressedBy"]["display"]
            .as_str()
            .or(v["expressedBy"]["reference"].as_str())
            .unwrap_or("")
            .to_string(),
        history,
    })
}

pub(super) fn goal_note(caller: &Caller, at: OffsetDateTime, event: &str, words: &str) -> Value {
    let mut n = json!({
        "extension": [{"url": ext("goal-event"), "valueCode": event}],
        "authorReference": author(caller),
        "time": instant(at),
    });
    // Annotation.text is required; an agreement without words says so.
    n["text"] = json!(if words.trim().is_empty() {
        "-"
    } else {
        words.trim()
    });
    n
}

pub(super) fn set_awaiting(goal: &mut Value, state: GoalState) {
    goal["lifecycleStatus"] = json!(state.lifecycle_status());
    let mut exts: Vec<Value> = goal["extension"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["url"] != ext("goal-awaiting"))
        .collect();
    if let GoalState::Awaiting(side) = state {
        exts.push(json!({"url": ext("goal-awaiting"), "valueCode": side.as_str()}));
    }
    if exts.is_empty() {
        if let Some(o) = goal.as_object_mut() {
            o.remove("extension");
        }
    } else {
        goal["extension"] = json!(exts);
    }
}

pub(super) fn hba1c_goal_target(t: HbA1cTarget) -> Value {
    let code = Measure::HbA1c.code();
    json!([{
        "measure": {"coding": [{"system": code.system, "code": code.code, "display": code.display}]},
        "detailQuantity": {"value": t.percent(), "comparator": "<", "unit": "%", "system": UCUM, "code": "%"},
    }])
}

/// An activity on the shared care plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityView {
    /// Its position on the plan (activities are never removed, only finished).
    pub index: usize,
    pub patient: String,
    pub text: String,
    pub setting: Setting,
    pub facts: ActivityFacts,
    /// The times it was marked done, in the order they were marked.
    pub marks: Vec<OffsetDateTime>,
}

impl ActivityView {
    pub fn owner(&self) -> Owner {
        self.facts.owner
    }
}

/// A new activity.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub text: String,
    pub owner: Owner,
    pub setting: Setting,
    pub schedule: Schedule,
}

pub(super) fn activities_of(plan: &Value, patient: &str) -> Vec<ActivityView> {
    let Some(list) = plan["activity"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(index, a)| {
            let ext_code = |name: &str| {
                a["extension"]
                    .as_array()?
                    .iter()
                    .find(|e| e["url"] == ext(name))
                    .cloned()
            };
            let owner = Owner::parse(ext_code("activity-owner")?["valueCode"].as_str()?)?;
            let setting = ext_code("activity-setting")
                .and_then(|e| e["valueCode"].as_str().and_then(Setting::parse))
                .unwrap_or(Setting::Outpatient);
            let added = ext_code("activity-added")
                .and_then(|e| parse_time(&e["valueDateTime"]))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let d = &a["detail"];
            let schedule = if let Some(r) = d["scheduledTiming"]["repeat"].as_object() {
                let period = r.get("period").and_then(Value::as_f64).unwrap_or(0.0) as u32;
                let unit = r.get("periodUnit").and_then(Value::as_str).unwrap_or("");
                Schedule::Every(Cadence::from_fhir(period, unit)?)
            } else {
                Schedule::By(parse_time(&d["scheduledPeriod"]["end"])?)
            };
            let marks: Vec<OffsetDateTime> = a["progress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| parse_time(&p["time"]))
                .collect();
            let status = d["status"].as_str().unwrap_or("");
            Some(ActivityView {
                index,
                patient: patient.to_string(),
                text: d["description"].as_str().unwrap_or("").to_string(),
                setting,
                facts: ActivityFacts {
                    owner,
                    schedule,
                    added,
                    last_done: marks.iter().max().copied(),
                    finished: matches!(
                        status,
                        "completed" | "cancelled" | "stopped" | "entered-in-error"
                    ),
                },
                marks,
            })
        })
        .collect()
}

/// A team-owned task (for now: the HbA1c test falling due).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: String,
    pub patient: String,
    /// Our code for the task (`hba1c-test`, `urgent-reading`, `rescue-pack-contact`...), the
    /// key of its name in every language.
    pub code: String,
    /// The English description, for a task of ours whose code has no translation.
    pub what: String,
    pub due: Option<OffsetDateTime>,
    /// Marked urgent (or more: asap, stat).
    pub urgent: bool,
    /// What it is about (`Observation/..`, `CarePlan/..`).
    pub focus: Option<String>,
    /// For an urgent reading: the response it needs.
    pub alert: Option<Alert>,
    /// The team role that owns it now: its deadline's current step, else its performer type.
    pub role: Option<Role>,
}

/// The team role that owns a Task now: its deadline's current step, else its performer type.
pub(super) fn owner_now(v: &Value) -> Option<Role> {
    crate::deadlines::task_deadline(v)
        .map(|(_, d)| d.role)
        .or_else(|| {
            v["performerType"][0]["coding"][0]["code"]
                .as_str()
                .and_then(Role::parse)
        })
}

pub(super) fn task_of(stored: &Stored) -> Option<TaskView> {
    let v = stored.json().ok()?;
    // Only our own tasks (by their code system).
    let code = v["code"]["coding"]
        .as_array()?
        .iter()
        .find(|c| c["system"] == TASKS)?["code"]
        .as_str()
        .unwrap_or("")
        .to_string();
    Some(TaskView {
        id: stored.id.clone(),
        patient: stored.patient_id.clone().unwrap_or_default(),
        alert: v["businessStatus"]["coding"][0]["code"]
            .as_str()
            .and_then(Alert::parse)
            .filter(|_| code == URGENT_READING),
        code,
        what: v["description"].as_str().unwrap_or("").to_string(),
        due: parse_time(&v["restriction"]["period"]["end"]),
        urgent: matches!(v["priority"].as_str(), Some("urgent" | "asap" | "stat")),
        role: owner_now(&v),
        focus: v["focus"]["reference"].as_str().map(str::to_string),
    })
}

/// A new Goal as one side proposes it: in their words, awaiting the other side.
pub fn goal_resource(
    caller: &Caller,
    patient: &str,
    text: &str,
    side: Side,
    hba1c: Option<HbA1cTarget>,
    now: OffsetDateTime,
) -> Value {
    let mut goal = json!({
        "resourceType": "Goal",
        "lifecycleStatus": "proposed",
        "description": {"text": text},
        "subject": {"reference": patient_ref(patient)},
        "startDate": instant(now).get(..10).unwrap_or_default(),
        "expressedBy": author(caller),
        "note": [goal_note(caller, now, "proposed", "")],
    });
    set_awaiting(&mut goal, GoalState::proposed_by(side));
    if let Some(t) = hba1c {
        goal["target"] = hba1c_goal_target(t);
    }
    goal
}

/// A patient's shared CarePlan, before it holds goals or activities.
pub fn plan_resource(caller: &Caller, patient: &str, now: OffsetDateTime) -> Value {
    json!({
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": PLAN_CATEGORY, "code": "shared", "display": "Shared care plan"}]}],
        "title": "Shared care plan",
        "subject": {"reference": patient_ref(patient)},
        "created": instant(now),
        "author": author(caller),
    })
}

/// One CarePlan.activity: owner, setting and when it was added in extensions; the due date
/// or cadence in the detail.
pub fn activity_element(a: &NewActivity, now: OffsetDateTime) -> Value {
    let text = a.text.trim();
    let mut detail = json!({
        "status": "not-started",
        "description": text,
    });
    match a.schedule {
        Schedule::By(t) => detail["scheduledPeriod"] = json!({"end": instant(t)}),
        Schedule::Every(c) => {
            let (period, unit) = c.fhir();
            detail["scheduledTiming"] =
                json!({"repeat": {"frequency": 1, "period": period, "periodUnit": unit}});
        }
    }
    json!({
        "extension": [
            {"url": ext("activity-owner"), "valueCode": a.owner.as_str()},
            {"url": ext("activity-setting"), "valueCode": a.setting.as_str()},
            {"url": ext("activity-added"), "valueDateTime": instant(now)},
        ],
        "detail": detail,
    })
}

impl Care {
    /// The shared CarePlan of a patient, made on first use.
    pub(super) async fn plan(&self, caller: &Caller, patient: &str) -> Result<(Stored, Value)> {
        if let Some(s) = self.find_plan(caller, patient).await? {
            let v = content(&s)?;
            return Ok((s, v));
        }
        let plan = plan_resource(caller, patient, self.now());
        let written = self
            .api
            .create(caller, "CarePlan", plan.to_string().as_bytes(), None)
            .await?;
        let v = content(&written.stored)?;
        Ok((written.stored, v))
    }

    pub(super) async fn find_plan(&self, caller: &Caller, patient: &str) -> Result<Option<Stored>> {
        let found = self
            .api
            .search_all(
                caller,
                "CarePlan",
                &params(&[
                    ("subject", patient_ref(patient)),
                    ("category", format!("{PLAN_CATEGORY}|shared")),
                    ("status", "active".into()),
                ]),
            )
            .await?;
        Ok(found.into_iter().next())
    }

    pub(super) async fn save_plan(
        &self,
        caller: &Caller,
        stored: &Stored,
        mut v: Value,
    ) -> Result<Stored> {
        strip_version(&mut v);
        let written = self
            .api
            .update(
                caller,
                "CarePlan",
                &stored.id,
                v.to_string().as_bytes(),
                Some(stored.version_id),
            )
            .await?;
        Ok(written.stored)
    }

    /// Either side proposes a goal in their own words, with an optional HbA1c target.
    pub async fn propose_goal(
        &self,
        caller: &Caller,
        patient: &str,
        text: &str,
        hba1c: Option<HbA1cTarget>,
    ) -> Result<GoalView> {
        let side = side_of(caller)?;
        let text = text.trim();
        if text.is_empty() {
            return Err(CareError::input(
                "goal-text-needed",
                "say what the goal is, in your own words",
            ));
        }
        if text.chars().count() > 500 {
            return Err(CareError::input(
                "goal-text-too-long",
                "keep the goal under 500 characters",
            ));
        }
        let now = self.now();
        let goal = goal_resource(caller, patient, text, side, hba1c, now);
        let written = self
            .api
            .create(caller, "Goal", goal.to_string().as_bytes(), None)
            .await?;
        // The plan lists its goals.
        let (plan, mut pv) = self.plan(caller, patient).await?;
        let mut goals = pv["goal"].as_array().cloned().unwrap_or_default();
        goals.push(json!({"reference": format!("Goal/{}", written.stored.id)}));
        pv["goal"] = json!(goals);
        self.save_plan(caller, &plan, pv).await?;
        goal_of(&written.stored).ok_or_else(|| {
            CareError::App(AppError::Internal("a stored goal did not read back".into()))
        })
    }

    /// The other side answers a goal: agree (the team may set the HbA1c target as it
    /// agrees), suggest a change (new words), or decline with a reason.
    pub async fn answer_goal(
        &self,
        caller: &Caller,
        patient: &str,
        goal_id: &str,
        answer: GoalAnswer,
        hba1c: Option<HbA1cTarget>,
    ) -> Result<GoalView> {
        let side = side_of(caller)?;
        if !role_of(caller).is_some_and(GoalState::may_answer) {
            return Err(CareError::input(
                "goal-patient-answers",
                "the patient answers a goal themselves; a family member can suggest a new one",
            ));
        }
        let stored = self.api.read(caller, "Goal", goal_id).await?;
        in_chart(&stored, patient)?;
        let view = goal_of(&stored)
            .ok_or_else(|| CareError::input("goal-unreadable", "this goal cannot be read"))?;
        let next = view.state.answer(side, &answer)?;
        let now = self.now();
        let mut v = content(&stored)?;
        strip_version(&mut v);
        set_awaiting(&mut v, next);
        let note = match &answer {
            GoalAnswer::Agree => goal_note(caller, now, "agreed", ""),
            GoalAnswer::SuggestChange(words) => {
                v["description"]["text"] = json!(words.trim());
                goal_note(caller, now, "change-suggested", words)
            }
            GoalAnswer::Decline(why) => goal_note(caller, now, "declined", why),
        };
        let mut notes = v["note"].as_array().cloned().unwrap_or_default();
        notes.push(note);
        v["note"] = json!(notes);
        if let Some(t) = hba1c {
            if side != Side::Team {
                return Err(CareError::input(
                    "goal-target-team-only",
                    "the clinician sets the HbA1c target with you",
                ));
            }
            v["target"] = hba1c_goal_target(t);
        }
        if next == GoalState::Agreed {
            v["statusDate"] = json!(instant(now).get(..10).unwrap_or_default());
        }
        // The answer and the HbA1c test it moves (an agreed target changes the interval)
        // commit together or not at all.
        let mut entries = vec![(
            caller,
            json!({
                "resource": v,
                "request": {"method": "PUT", "url": format!("Goal/{goal_id}"),
                            "ifMatch": format!("W/\"{}\"", stored.version_id)},
            }),
        )];
        let system = Caller::system("coproduce:care-plan");
        if view.target.is_some_and(|(m, _)| m == Measure::HbA1c) || hba1c.is_some() {
            let agreeing = (next == GoalState::Agreed)
                .then(|| {
                    hba1c.map(HbA1cTarget::range).or_else(|| {
                        view.target
                            .filter(|(m, _)| *m == Measure::HbA1c)
                            .map(|(_, r)| r)
                    })
                })
                .flatten();
            if let Some(task) = self.hba1c_task_entry(patient, &[], agreeing).await? {
                entries.push((&system, task));
            }
        }
        self.api.transaction_with(entries, &[], None).await?;
        let written = self.api.read(caller, "Goal", goal_id).await?;
        goal_of(&written)
            .ok_or_else(|| CareError::App(AppError::Internal("a goal did not read back".into())))
    }

    /// Adds an activity to the plan. The patient's side adds activities it owns; the team
    /// adds any.
    pub async fn add_activity(
        &self,
        caller: &Caller,
        patient: &str,
        a: &NewActivity,
    ) -> Result<ActivityView> {
        let side = side_of(caller)?;
        if !a.owner.may_be_added_by(side) {
            return Err(CareError::input(
                "activity-team-owned",
                "ask your care team to add what they will do",
            ));
        }
        let text = a.text.trim();
        if text.is_empty() {
            return Err(CareError::input(
                "activity-text-needed",
                "say what will be done",
            ));
        }
        let now = self.now();
        let (plan, mut v) = self.plan(caller, patient).await?;
        let activity = activity_element(a, now);
        let mut list = v["activity"].as_array().cloned().unwrap_or_default();
        list.push(activity);
        let index = list.len() - 1;
        v["activity"] = json!(list);
        let saved = self.save_plan(caller, &plan, v).await?;
        let v = content(&saved)?;
        activities_of(&v, patient)
            .into_iter()
            .find(|x| x.index == index)
            .ok_or_else(|| {
                CareError::App(AppError::Internal("an activity did not read back".into()))
            })
    }

    /// Marks an activity done: a one-off is then complete, a recurring one is due again
    /// one cadence later.
    pub async fn mark_done(&self, caller: &Caller, patient: &str, index: usize) -> Result<()> {
        let role = role_of(caller).ok_or_else(|| {
            CareError::App(AppError::Forbidden(
                "only people in the plan mark activities done".into(),
            ))
        })?;
        let Some(stored) = self.find_plan(caller, patient).await? else {
            return Err(CareError::input(
                "activity-unknown",
                "that activity is not on the plan",
            ));
        };
        let mut v = content(&stored)?;
        let activity = activities_of(&v, patient)
            .into_iter()
            .find(|a| a.index == index)
            .ok_or_else(|| {
                CareError::input("activity-unknown", "that activity is not on the plan")
            })?;
        if !activity.owner().may_be_done_by(role) {
            return Err(CareError::input(
                "activity-not-yours",
                "this activity belongs to the other side of the plan",
            ));
        }
        if activity.facts.finished {
            return Err(CareError::input(
                "activity-finished",
                "this activity is already done",
            ));
        }
        let now = self.now();
        let a = &mut v["activity"][index];
        let mut progress = a["progress"].as_array().cloned().unwrap_or_default();
        progress
            .push(json!({"authorReference": author(caller), "time": instant(now), "text": "done"}));
        a["progress"] = json!(progress);
        a["detail"]["status"] = json!(match activity.facts.schedule {
            Schedule::By(_) => "completed",
            Schedule::Every(_) => "in-progress",
        });
        self.save_plan(caller, &stored, v).await?;
        Ok(())
    }
}
