//! Raising a concern, the team's steps, the reporter's last word and the manager's choices:
//! `core` decides, and one transaction writes the concern, its Tasks and the notifications.

use super::*;
use crate::vocabulary::TASKS;
use coproduce_core::access::Grant;
use coproduce_core::deadline::Escalation;
use coproduce_core::speakup::{
    CLAIM_BYTES, Concern, Heard, Kind, Step, Urgency, check_details, claim_code, manages,
    works_on_item,
};
use coproduce_core::unix_millis;

/// What a reporter fills in.
#[derive(Debug, Clone, Default)]
pub struct NewConcern {
    pub unit: String,
    pub room: String,
    /// When it happened, in their words ("last night", "just now").
    pub when: String,
    pub category: String,
    pub what: String,
    /// "Someone is getting worse and nobody is responding."
    pub urgent: bool,
    /// Raise it without a name: nothing links it to a person, and a claim code follows it.
    pub anonymous: bool,
    /// The reporter's language, which the answer is written in.
    pub language: String,
    /// The concern whose answer they came from ("raise another concern"), if any.
    pub after: Option<String>,
    /// Feedback for the practice manager (a compliment, a suggestion, a complaint) rather
    /// than a safety concern: no urgency, the feedback categories and times.
    pub feedback: bool,
}

/// Who raises a concern: a signed-in patient or family member, or a unit's open device.
#[derive(Debug, Clone, Copy)]
pub enum Reporter<'a> {
    SignedIn(&'a Caller),
    /// A bedside or waiting-room device without a sign-in, from this address.
    Device {
        address: &'a str,
    },
}

/// What the reporter is told once a concern is raised.
#[derive(Debug, Clone)]
pub struct Raised {
    pub id: String,
    /// For a concern raised without a name: the code to follow it (shown once, never stored).
    pub claim_code: Option<String>,
    pub urgency: Urgency,
    pub kind: Kind,
    /// When the acknowledgement is due.
    pub due: OffsetDateTime,
    pub unit: Unit,
}

fn who_raises(caller: &Caller, now: OffsetDateTime) -> Result<(String, Option<String>)> {
    let me = caller
        .fhir_ref
        .clone()
        .filter(|_| role_of(caller).is_some_and(coproduce_core::speakup::raises));
    match (&caller.actor.who, me) {
        (Who::Patient { patient }, Some(me)) => Ok((me, Some(patient.clone()))),
        (Who::Family { grants }, Some(me)) => {
            // The patient of their first active grant: the person they are there for.
            let patient = grants
                .iter()
                .find(|g: &&Grant| g.is_active(now))
                .map(|g| g.patient.clone());
            Ok((me, patient))
        }
        _ => Err(AppError::Forbidden(
            "concerns are raised by patients and their families (staff report safety events through the site's own system)".into(),
        )
        .into()),
    }
}

/// The concern's Communication after a change, keeping the claim code's digest it had.
fn rewritten(stored: &Stored, rec: &ConcernRecord) -> Result<Value> {
    let mut v = rec.to_fhir(None);
    if let Some(i) = stored.json()?.get("identifier") {
        v["identifier"] = i.clone();
    }
    Ok(v)
}

impl SpeakUp {
    /// Raises a concern: checked by `core`, written with its acknowledgement Task, and the
    /// unit's first responder told (in the app, and by webhook for paging when the site has
    /// one), all in one transaction.
    pub async fn raise(&self, reporter: Reporter<'_>, new: NewConcern) -> Result<Raised> {
        let now = self.now();
        let unit = self.unit(new.unit.trim()).await?;
        let store = self.api.store();
        if let Reporter::Device { address } = reporter {
            let since = unix_millis(now - self.limits.window);
            let raised = store
                .attempts_since(RAISE_ATTEMPT, address, since, false)
                .await?;
            if !self.limits.allows_unsigned_raise(raised) {
                return Err(CareError::input(
                    "concern-throttled",
                    "this device has sent many concerns in the last hour; ask a member of staff, or try again later",
                ));
            }
        }
        check_details(&[&new.room, &new.when]).map_err(refused)?;
        let urgency = if new.urgent && !new.feedback {
            Urgency::Urgent
        } else {
            Urgency::Routine
        };
        let concern = if new.feedback {
            Concern::give_feedback(&self.rules, new.category.trim(), &new.what, now)
        } else {
            Concern::raise(
                &self.rules,
                urgency,
                unit.place,
                new.category.trim(),
                &new.what,
                now,
            )
        }
        .map_err(refused)?;
        let (label, mut reporter_ref, mut patient) = match reporter {
            Reporter::SignedIn(c) => {
                let (me, patient) = who_raises(c, now)?;
                (c.label.clone(), Some(me), patient)
            }
            Reporter::Device { address } => {
                (format!("the {} form from {address}", unit.id), None, None)
            }
        };
        if new.anonymous {
            reporter_ref = None;
            patient = None;
        }
        let code = reporter_ref.is_none().then(|| {
            let random = uuid::Uuid::new_v4();
            let mut bytes = [0u8; CLAIM_BYTES];
            bytes.copy_from_slice(&random.as_bytes()[..CLAIM_BYTES]);
            claim_code(&bytes)
        });
        let language = crate::i18n::supported(new.language.trim())
            .unwrap_or("en")
            .to_string();
        let record = ConcernRecord {
            id: crate::fhir_api::new_id(),
            concern,
            unit: unit.id.clone(),
            room: new.room.trim().to_string(),
            when: new.when.trim().to_string(),
            what: new.what.trim().to_string(),
            language,
            reporter: reporter_ref,
            patient,
            names_released: false,
            safety_event: None,
            follows: self.earlier(new.after.as_deref()).await?,
        };
        let chain = self
            .rules
            .acknowledgement_for(&record.concern, unit.routine_within);
        let due = chain.open(&self.calendar, now);
        let task = loop_task(
            TASK_ACKNOWLEDGE,
            "Acknowledge the concern",
            &chain,
            &due,
            &record,
            now,
        );
        let params = json!({
            "task": TASK_ACKNOWLEDGE,
            "task_id": task["id"],
            "concern_id": record.id,
            "unit": unit.name,
            "category": record.concern.category,
            "due": instant(due.due),
        });
        let kind = match (record.concern.kind, urgency) {
            (Kind::Feedback, _) => "feedback-given",
            (_, Urgency::Urgent) => "concern-urgent",
            (_, Urgency::Routine) => "concern-raised",
        };
        let notices = self.notifier.to_team("", due.role, kind, params, now);
        let sys = match reporter {
            Reporter::SignedIn(c) => on_behalf(&label, Some(c)),
            Reporter::Device { .. } => on_behalf(&label, None),
        };
        let task_id = task["id"].as_str().unwrap_or_default().to_string();
        let entries = vec![
            (
                &sys,
                put(
                    "Communication",
                    &record.id,
                    record.to_fhir(code.as_deref()),
                    None,
                ),
            ),
            (&sys, put("Task", &task_id, task, None)),
        ];
        self.api.transaction_with(entries, &notices, None).await?;
        if let Reporter::Device { address } = reporter {
            store
                .record_attempt(unix_millis(now), RAISE_ATTEMPT, address, true)
                .await?;
        }
        metrics::counter!("coproduce_concerns_raised_total", "urgency" => kind).increment(1);
        Ok(Raised {
            kind: record.concern.kind,
            id: record.id,
            claim_code: code,
            urgency,
            due: due.due,
            unit,
        })
    }

    /// The earlier concern a new one follows, when it exists (only the measures read it).
    async fn earlier(&self, after: Option<&str>) -> Result<Option<String>> {
        let Some(id) = after.map(str::trim).filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let sys = on_behalf("a concern raised after another", None);
        match self.api.read(&sys, "Communication", id).await {
            Ok(s) if ConcernRecord::of(&s.json()?).is_some() => Ok(Some(id.to_string())),
            Ok(_) | Err(AppError::NotFound(_) | AppError::Gone(_) | AppError::Invalid(_)) => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The open loop Task of a concern with this code, if any.
    async fn open_task(&self, sys: &Caller, code: &str, id: &str) -> Result<Option<Stored>> {
        let found = self
            .api
            .search_all(
                sys,
                "Task",
                &[("identifier".to_string(), format!("{TASKS}|{code}/{id}"))],
            )
            .await?;
        Ok(found.into_iter().find(|t| {
            t.json()
                .is_ok_and(|v| v["status"] == "requested" || v["status"] == "in-progress")
        }))
    }

    /// A staff member's step on a concern of a unit they work on: the concern moves on, the
    /// Task of the deadline notes who did it (and closes when its promise is kept), and the
    /// reporter who gave their name is told when the answer is there.
    pub async fn step(&self, caller: &Caller, id: &str, step: Step) -> Result<()> {
        let role = Self::team_role(caller)?;
        let units = self.units_of(caller).await?;
        let sys = on_behalf(&caller.label, Some(caller));
        let (stored, mut rec) = self.load(&sys, id).await?;
        if !works_on_item(role, rec.concern.kind, &units, &rec.unit) {
            return Err(AppError::Forbidden(
                "this is for the unit's staff (feedback, for the practice manager)".into(),
            )
            .into());
        }
        if !step.by_team() {
            return Err(CareError::input(
                "concern-reporter-step",
                "only the reporter says whether they felt heard",
            ));
        }
        let now = self.now();
        rec.concern.apply(step.clone(), now).map_err(refused)?;
        let mut entries = vec![(
            &sys,
            put(
                "Communication",
                &rec.id,
                rewritten(&stored, &rec)?,
                Some(stored.version_id),
            ),
        )];
        let note = |t: &mut Value| {
            let mut n = json!({"time": instant(now), "text": step.as_str()});
            match &caller.fhir_ref {
                Some(r) => n["authorReference"] = json!({"reference": r}),
                None => n["authorString"] = json!(caller.label),
            }
            match t["note"].as_array_mut() {
                Some(a) => a.push(n),
                None => t["note"] = json!([n]),
            }
        };
        let open_code = if matches!(step, Step::Acknowledged) {
            TASK_ACKNOWLEDGE
        } else {
            TASK_ANSWER
        };
        let mut notices = Vec::new();
        if let Some(t) = self.open_task(&sys, open_code, id).await? {
            let mut v = t.json()?;
            note(&mut v);
            let done = matches!(step, Step::Acknowledged | Step::Answered { .. });
            if done {
                v["status"] = json!("completed");
                v["lastModified"] = json!(instant(now));
                if let Some(r) = &caller.fhir_ref {
                    v["owner"] = json!({"reference": r});
                }
            }
            if let Some(o) = v.as_object_mut() {
                o.remove("meta");
            }
            entries.push((&sys, put("Task", &t.id, v, Some(t.version_id))));
        }
        if matches!(step, Step::Acknowledged) {
            let chain =
                Escalation::single(Role::ClinicLead, self.rules.answer_within(rec.concern.kind));
            let due = chain.open(&self.calendar, now);
            let task = loop_task(
                TASK_ANSWER,
                "Answer the person who raised the concern",
                &chain,
                &due,
                &rec,
                now,
            );
            let task_id = task["id"].as_str().unwrap_or_default().to_string();
            entries.push((&sys, put("Task", &task_id, task, None)));
        }
        if let (Step::Answered { .. }, Some(reporter)) = (&step, &rec.reporter) {
            notices = self
                .notifier
                .to_reporter(reporter, "concern-answered", json!({"concern_id": rec.id}))
                .await?;
        }
        self.api.transaction_with(entries, &notices, None).await?;
        Ok(())
    }

    /// A manager's choices: whether the reporter may read who took the steps, and the safety
    /// event report the concern is linked to.
    pub async fn manage(
        &self,
        caller: &Caller,
        id: &str,
        names_released: bool,
        safety_event: Option<&str>,
    ) -> Result<()> {
        let role = Self::team_role(caller)?;
        if !manages(role) {
            return Err(AppError::Forbidden(
                "the unit's manager decides whether staff are named and links safety events".into(),
            )
            .into());
        }
        let sys = on_behalf(&caller.label, Some(caller));
        let (stored, mut rec) = self.load(&sys, id).await?;
        let event = safety_event.map(str::trim).filter(|e| !e.is_empty());
        check_details(&[event.unwrap_or_default()]).map_err(refused)?;
        rec.names_released = names_released;
        rec.safety_event = event.map(str::to_string);
        let v = rewritten(&stored, &rec)?;
        self.api
            .transaction_with(
                vec![(
                    &sys,
                    put("Communication", &rec.id, v, Some(stored.version_id)),
                )],
                &[],
                None,
            )
            .await?;
        Ok(())
    }

    /// The reporter's last word: whether they felt heard, kept on the concern and as a
    /// QuestionnaireResponse; the concern is closed.
    pub async fn felt_heard(
        &self,
        follower: Follower<'_>,
        heard: Heard,
        comment: &str,
    ) -> Result<()> {
        let (sys, stored, mut rec) = self.resolve(follower).await?;
        let now = self.now();
        rec.concern
            .apply(
                Step::FeltHeard {
                    heard,
                    comment: comment.trim().to_string(),
                },
                now,
            )
            .map_err(refused)?;
        let v = rewritten(&stored, &rec)?;
        let qr = felt_heard_response(&rec, heard, comment, now);
        let qr_id = qr["id"].as_str().unwrap_or_default().to_string();
        self.api
            .transaction_with(
                vec![
                    (
                        &sys,
                        put("Communication", &rec.id, v, Some(stored.version_id)),
                    ),
                    (&sys, put("QuestionnaireResponse", &qr_id, qr, None)),
                ],
                &[],
                None,
            )
            .await?;
        Ok(())
    }
}
