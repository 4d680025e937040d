//! Recording an event: the state machine in `core` decides, and one transaction writes the
//! pack, its Tasks with their deadlines, the medication, the Communication and the
//! notifications it sets off. Also the sweep of packs past their expiry.

use super::*;

pub(super) fn task_english(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Contact => "Contact the patient after a rescue-pack start",
        TaskKind::CheckIn => "Rescue-pack check-in due from the patient",
        TaskKind::NotBetter => "Same-day follow-up: not better after the rescue pack",
        TaskKind::Outcome => "Record the rescue-pack episode's outcome",
        TaskKind::Replacement => "Issue a replacement rescue pack",
    }
}

/// The codes of every rescue-pack Task, as one search value.
pub(super) fn task_codes() -> String {
    TaskKind::ALL
        .iter()
        .map(|k| format!("{TASKS}|{}", k.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) use crate::fhir_api::put;

pub(super) fn task(
    kind: TaskKind,
    chain: &Escalation,
    d: &Deadline,
    subject: &str,
    focus: &str,
    pack: &str,
    now: OffsetDateTime,
) -> Value {
    let id = crate::fhir_api::new_id();
    let mut t = json!({
        "resourceType": "Task",
        "id": id,
        "extension": [escalation_extension(chain)],
        "identifier": [{"system": TASKS, "value": format!("{}/{pack}", kind.as_str())}],
        "status": "requested",
        "intent": "order",
        "priority": if matches!(kind, TaskKind::Contact | TaskKind::NotBetter) { "urgent" } else { "routine" },
        "code": {"coding": [{"system": TASKS, "code": kind.as_str(), "display": task_english(kind)}]},
        "description": task_english(kind),
        "focus": {"reference": focus},
        "for": {"reference": subject},
        "authoredOn": instant(now),
    });
    set_task_deadline(&mut t, d);
    put("Task", &id, t, None)
}

/// The record of a start, a check-in or a contact, as a Communication.
pub(super) fn communication(
    p: &ProtocolDef,
    subject: &str,
    focus: &str,
    r: &Recorded,
) -> Option<Value> {
    let text = match &r.event {
        Event::Started {
            symptoms,
            since,
            taken,
        } => format!(
            "Started the rescue pack ({}) for: {}; symptoms since {}.",
            taken
                .iter()
                .map(|d| p.drug(d).map_or(d.as_str(), |x| x.text.get("en")))
                .collect::<Vec<_>>()
                .join("; "),
            symptoms
                .iter()
                .map(|s| p.symptom(s).map_or(s.as_str(), |x| x.text.get("en")))
                .collect::<Vec<_>>()
                .join(", "),
            instant(*since)
        ),
        Event::CheckedIn { answer } => format!(
            "Rescue-pack check-in: {} than at the start.",
            match answer {
                CheckIn::Better => "better",
                CheckIn::Same => "the same",
                CheckIn::Worse => "worse",
            }
        ),
        Event::Contacted { note } if note.trim().is_empty() => {
            "The care team reached the patient after the rescue-pack start.".to_string()
        }
        Event::Contacted { note } => {
            format!("The care team reached the patient after the rescue-pack start: {note}")
        }
        _ => return None,
    };
    Some(put(
        "Communication",
        &crate::fhir_api::new_id(),
        json!({
            "resourceType": "Communication",
            "status": "completed",
            "category": [{"coding": [{"system": COMMUNICATION, "code": format!("rescue-pack-{}", r.event.kind())}]}],
            "subject": {"reference": subject},
            "about": [{"reference": focus}],
            "sent": instant(r.at),
            "sender": reference_or_display(&r.by.who),
            "payload": [{"contentString": text}],
        }),
        None,
    ))
    .map(|mut e| {
        let id = e["request"]["url"]
            .as_str()
            .and_then(|u| u.strip_prefix("Communication/"))
            .unwrap_or("")
            .to_string();
        e["resource"]["id"] = json!(id);
        e
    })
}

impl Rescue {
    pub(super) async fn has_diabetes(&self, patient: &str) -> Result<bool> {
        let found = self
            .api
            .search_all(
                &system(),
                "Condition",
                &[("subject".to_string(), format!("Patient/{patient}"))],
            )
            .await?;
        Ok(found.iter().filter_map(|s| s.json().ok()).any(|c| {
            c["clinicalStatus"]["coding"][0]["code"] != "resolved"
                && c["clinicalStatus"]["coding"][0]["code"] != "inactive"
                && c["code"]["coding"].as_array().is_some_and(|cs| {
                    cs.iter().any(|x| {
                        is_diabetes(
                            x["system"].as_str().unwrap_or(""),
                            x["code"].as_str().unwrap_or(""),
                        )
                    })
                })
        }))
    }

    pub(super) fn by(caller: &Caller) -> Result<By> {
        let role = match &caller.actor.who {
            coproduce_core::access::Who::System => Role::Admin,
            _ => role_of(caller).ok_or_else(|| {
                CareError::App(AppError::Forbidden(
                    "only the patient, their family and their care team record a rescue pack"
                        .into(),
                ))
            })?,
        };
        Ok(By {
            role,
            who: caller
                .fhir_ref
                .clone()
                .unwrap_or_else(|| caller.label.clone()),
        })
    }

    /// Records an event on a patient's pack (`pack` None: a new pack, for eligibility), with
    /// what it sets off, in one transaction. Returns the pack's id.
    pub async fn record(
        &self,
        caller: &Caller,
        patient: &str,
        pack: Option<&str>,
        event: Event,
    ) -> Result<String> {
        let by = Self::by(caller)?;
        let now = self.now();
        // The pack, read with the caller's rights (so a stranger learns nothing).
        let (id, version, current, mut plan) = match pack {
            Some(id) => {
                let stored = self.api.read(caller, "CarePlan", id).await?;
                if stored.patient_id.as_deref() != Some(patient) {
                    return Err(CareError::App(AppError::NotFound(format!(
                        "CarePlan/{id} in the chart of Patient/{patient}"
                    ))));
                }
                let tasks = self.tasks_of(&system(), patient).await?;
                let view = self.view(&stored, &tasks, "")?;
                let plan = stored.json().map_err(AppError::from)?;
                (id.to_string(), Some(stored.version_id), Some(view), plan)
            }
            None => {
                if !matches!(event, Event::Eligible { .. }) {
                    return Err(CareError::App(AppError::NotFound(
                        "a rescue pack for this patient".into(),
                    )));
                }
                if let Some(p) = self.current(caller, patient).await? {
                    return Err(CareError::Input {
                        key: "eligibility-recorded",
                        english: format!(
                            "this patient already has a rescue pack (CarePlan/{})",
                            p.id
                        ),
                        args: Vec::new(),
                    });
                }
                let id = crate::fhir_api::new_id();
                let plan = json!({
                    "resourceType": "CarePlan",
                    "id": id,
                    "extension": [{"url": PROTOCOL_EXT, "valueString": self.protocol.rules.key}],
                    "status": "active",
                    "intent": "plan",
                    "category": [{"coding": [{"system": PLAN_CATEGORY, "code": PACK_CATEGORY}]}],
                    "title": self.protocol.pack.get("en"),
                    "subject": {"reference": format!("Patient/{patient}")},
                    "created": instant(now),
                });
                (id, None, None, plan)
            }
        };
        let state = current.as_ref().map(|c| c.pack.clone()).unwrap_or_default();
        let ctx = Context {
            has_diabetes: matches!(event, Event::Started { .. })
                && self.has_diabetes(patient).await?,
        };
        let recorded = Recorded {
            event,
            by: by.clone(),
            at: now,
        };
        let (next, effects) = state
            .apply(&self.protocol.rules, &self.calendar, ctx, recorded.clone())
            .map_err(refused)?;

        // The person's own change: the event on the pack.
        if let Some(exts) = plan["extension"].as_array_mut() {
            exts.push(event_extension(&recorded));
        }
        let finished = next.replacement().is_some()
            && (next.started_at().is_none() || next.outcome().is_some());
        plan["status"] = json!(if finished { "completed" } else { "active" });
        if let Some(o) = plan.as_object_mut() {
            let empty = o
                .get_mut("meta")
                .and_then(Value::as_object_mut)
                .is_some_and(|meta| {
                    meta.remove("versionId");
                    meta.remove("lastUpdated");
                    meta.is_empty()
                });
            if empty {
                o.remove("meta");
            }
        }
        let subject = format!("Patient/{patient}");
        let focus = format!("CarePlan/{id}");
        let mut mine = vec![put("CarePlan", &id, plan, version)];
        let mut theirs: Vec<Value> = Vec::new();
        match &recorded.event {
            Event::Dispensed { items } | Event::Replaced { items } => {
                let prescriber = next
                    .eligibility()
                    .map(|(_, r)| r.by.who.clone())
                    .unwrap_or_else(|| by.who.clone());
                let target = if matches!(recorded.event, Event::Replaced { .. }) {
                    // The new pack: a successor CarePlan that begins ready.
                    let new_id = crate::fhir_api::new_id();
                    let successor = next.successor(&recorded);
                    let mut exts =
                        vec![json!({"url": PROTOCOL_EXT, "valueString": self.protocol.rules.key})];
                    exts.extend(successor.events.iter().map(event_extension));
                    mine.push(put(
                        "CarePlan",
                        &new_id,
                        json!({
                            "resourceType": "CarePlan",
                            "id": new_id,
                            "extension": exts,
                            "status": "active",
                            "intent": "plan",
                            "category": [{"coding": [{"system": PLAN_CATEGORY, "code": PACK_CATEGORY}]}],
                            "title": self.protocol.pack.get("en"),
                            "subject": {"reference": subject},
                            "created": instant(now),
                            "replaces": [{"reference": focus}],
                        }),
                        None,
                    ));
                    format!("CarePlan/{new_id}")
                } else {
                    focus.clone()
                };
                for item in items {
                    let (mr, md) =
                        self.medication(&subject, &target, item, &prescriber, &by.who, now);
                    mine.push(mr);
                    mine.push(md);
                }
            }
            _ => {}
        }
        if let Some(c) = communication(&self.protocol, &subject, &focus, &recorded) {
            theirs.push(c);
        }
        let mut notices = Vec::new();
        for e in &effects {
            match e {
                Effect::Open(kind, deadline) => {
                    let chain = self.chain(*kind);
                    theirs.push(task(*kind, &chain, deadline, &subject, &focus, &id, now));
                }
                Effect::Close(kind) => {
                    if let Some(d) = current
                        .as_ref()
                        .and_then(|c| c.deadlines.iter().find(|d| d.kind == *kind && d.open))
                    {
                        let stored = self.api.read(&system(), "Task", &d.task_id).await?;
                        let mut t = stored.json().map_err(AppError::from)?;
                        if let Some(o) = t.as_object_mut() {
                            o.remove("meta");
                        }
                        t["status"] = json!("completed");
                        t["executionPeriod"] = json!({"end": instant(now)});
                        t["owner"] = reference_or_display(&by.who);
                        t["lastModified"] = json!(instant(now));
                        theirs.push(put("Task", &d.task_id, t, Some(stored.version_id)));
                    }
                }
                Effect::TellPatient(n) => {
                    notices.extend(
                        self.notifier
                            .to_patient(
                                patient,
                                &by.who,
                                Part::Plan,
                                n.as_str(),
                                self.params(*n, &next, &effects),
                            )
                            .await?,
                    );
                }
                Effect::TellTeam(n) => {
                    let role = self.team_role(*n);
                    notices.extend(self.notifier.to_team(
                        patient,
                        role,
                        n.as_str(),
                        self.params(*n, &next, &effects),
                        now,
                    ));
                }
                Effect::WatchGlucose { .. } => {}
            }
        }
        // The family members who follow the plan hear that a pack was started (the one who
        // started it for the patient already knows).
        if matches!(recorded.event, Event::Started { .. }) {
            notices.extend(
                self.notifier
                    .to_family(
                        patient,
                        Part::Plan,
                        "rescue-pack-started",
                        self.params(Notice::Started, &next, &effects),
                    )
                    .await?
                    .into_iter()
                    .filter(|n| n.recipient != by.who),
            );
        }
        let sys = system();
        let entries: Vec<(&Caller, Value)> = mine
            .into_iter()
            .map(|e| (caller, e))
            .chain(theirs.into_iter().map(|e| (&sys, e)))
            .collect();
        self.api.transaction_with(entries, &notices, None).await?;
        Ok(id)
    }

    pub(super) fn chain(&self, kind: TaskKind) -> Escalation {
        let p = &self.protocol.rules;
        match kind {
            TaskKind::Contact => p.contact.clone(),
            TaskKind::CheckIn => p.check_in.clone(),
            TaskKind::NotBetter => p.not_better.clone(),
            TaskKind::Outcome => p.outcome.clone(),
            TaskKind::Replacement => p.replacement.clone(),
        }
    }

    /// Who on the team hears of a notice first: the first owner of the deadline it opens.
    pub(super) fn team_role(&self, n: Notice) -> Role {
        let p = &self.protocol.rules;
        let chain = match n {
            Notice::NotBetter => &p.not_better,
            Notice::Expired => &p.replacement,
            _ => &p.contact,
        };
        chain.steps()[0].role
    }

    pub(super) fn params(&self, n: Notice, pack: &Pack, effects: &[Effect]) -> Value {
        let contact_due = effects.iter().find_map(|e| match e {
            Effect::Open(TaskKind::Contact, d) => Some(instant(d.due)),
            _ => None,
        });
        let mut p = json!({ "notice": n.as_str() });
        if let Some(d) = contact_due {
            p["contact_due"] = json!(d);
        }
        if let Some(until) = effects.iter().find_map(|e| match e {
            Effect::WatchGlucose { until } => Some(instant(*until)),
            _ => None,
        }) {
            p["glucose_until"] = json!(until);
        }
        if let Some((answer, _)) = pack.check_in() {
            p["answer"] = json!(answer.as_str());
        }
        p
    }

    pub(super) fn medication(
        &self,
        subject: &str,
        plan: &str,
        item: &Item,
        prescriber: &str,
        dispenser: &str,
        now: OffsetDateTime,
    ) -> (Value, Value) {
        let text = self
            .protocol
            .drug(&item.drug)
            .map_or(item.drug.as_str(), |d| d.text.get("en"))
            .to_string();
        let days = self.protocol.drug(&item.drug).map_or(5, |d| d.days);
        let code = json!({"coding": [{"system": DRUGS, "code": item.drug}], "text": text});
        let mr_id = crate::fhir_api::new_id();
        let md_id = crate::fhir_api::new_id();
        let supply = json!({"value": days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"});
        let mr = json!({
            "resourceType": "MedicationRequest",
            "id": mr_id,
            "status": "active",
            "intent": "order",
            "courseOfTherapyType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "code": "acute"}]},
            "medicationCodeableConcept": code,
            "subject": {"reference": subject},
            "authoredOn": instant(now),
            "requester": reference_or_display(prescriber),
            "basedOn": [{"reference": plan}],
            "dosageInstruction": [{"text": text, "asNeededBoolean": true}],
            "dispenseRequest": {"expectedSupplyDuration": supply},
        });
        let md = json!({
            "resourceType": "MedicationDispense",
            "id": md_id,
            "contained": [{
                "resourceType": "Medication",
                "id": "pack",
                "code": code,
                "batch": {"expirationDate": fmt_date(item.expires)},
            }],
            "status": "completed",
            "medicationReference": {"reference": "#pack"},
            "subject": {"reference": subject},
            "performer": [{"actor": reference_or_display(dispenser)}],
            "authorizingPrescription": [{"reference": format!("MedicationRequest/{mr_id}")}],
            "daysSupply": supply,
            "whenHandedOver": instant(now),
        });
        (
            put("MedicationRequest", &mr_id, mr, None),
            put("MedicationDispense", &md_id, md, None),
        )
    }

    /// Records `Expired` on every unused pack past its expiry (the watcher calls this).
    pub async fn expire_packs(&self) -> Result<usize> {
        let sys = system();
        let today = self.now().date();
        let plans = self
            .plans(&sys, PACK_CATEGORY, &[("status", "active".into())])
            .await?;
        let mut n = 0;
        for s in plans {
            let view = self.view(&s, &[], "")?;
            if view.stage == Stage::Ready && view.pack.is_expired_on(today) {
                let patient = s.patient_id.clone().unwrap_or_default();
                self.record(&sys, &patient, Some(&s.id), Event::Expired)
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// How many team deadlines were missed since `since` (Unix ms).
    /// How many deadlines of the caller's patients were missed since `since` (each miss of a
    /// step counts once): the team sees its own panel's, never the whole site's.
    pub async fn missed_since(&self, caller: &Caller, since: i64) -> Result<usize> {
        use coproduce_core::access::{Action, Reach, reach};
        let misses = self
            .api
            .store()
            .misses_since(since)
            .await
            .map_err(AppError::from)?;
        Ok(
            match reach(&caller.actor, Action::Search, "Task", true, self.now()) {
                Reach::Everything => misses.len(),
                Reach::Patients(panel) => misses
                    .iter()
                    .filter(|m| m.patient_id.as_ref().is_some_and(|p| panel.contains(p)))
                    .count(),
                Reach::AddressedTo(_) | Reach::Nothing(_) => 0,
            },
        )
    }
}
