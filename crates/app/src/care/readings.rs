//! Readings: an entered value as an Observation, its plausibility and its unit, the team's
//! review, and the HbA1c test falling due as a team-owned Task.

use super::*;

/// A reading as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub id: String,
    pub version: i64,
    pub patient: String,
    pub measure: Measure,
    pub value: ReadingValue,
    pub at: OffsetDateTime,
    /// Who recorded it, as they are named (their record's name in a chart).
    pub by: String,
    /// Their record (`Patient/..`, `RelatedPerson/..`, `Practitioner/..`), if referenced.
    pub by_ref: Option<String>,
    /// Waiting for the team to look at it.
    pub unreviewed: bool,
    pub review: Option<Review>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub by: String,
    pub by_ref: Option<String>,
    pub at: OffsetDateTime,
    pub comment: Option<String>,
}

/// A reading as entered.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    pub measure: Measure,
    /// One value, or systolic then diastolic.
    pub values: Vec<f64>,
    /// A UCUM code or label; empty for the measure's usual unit.
    pub unit: String,
    pub at: OffsetDateTime,
}

pub(super) fn quantity(measure: Measure, v: f64) -> Value {
    let u = measure.canonical_unit();
    json!({"value": reading_rules::round_to(v, 2), "unit": u.label, "system": UCUM, "code": u.ucum})
}

/// Reads a quantity in any unit the measure takes, into the canonical unit.
pub(super) fn quantity_value(measure: Measure, q: &Value) -> Option<f64> {
    let v = q["value"].as_f64()?;
    let unit = q["code"].as_str().or(q["unit"].as_str()).unwrap_or("");
    if unit.is_empty() {
        return Some(v);
    }
    measure.unit(unit).map(|u| u.to_canonical(v))
}

pub(super) fn coded_measure(code: &Value) -> Option<Measure> {
    code["coding"]
        .as_array()?
        .iter()
        .find_map(|c| Measure::from_code(c["system"].as_str()?, c["code"].as_str()?))
}

pub(super) fn has_code(concept: &Value, system: &str, code: &str) -> bool {
    concept["coding"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["system"] == system && c["code"] == code)
    })
}

pub(super) fn is_unreviewed(v: &Value) -> bool {
    v["meta"]["tag"].as_array().is_some_and(|t| {
        t.iter()
            .any(|c| c["system"] == WORKFLOW_TAGS && c["code"] == "unreviewed")
    })
}

/// The measure an Observation records, if it is one of the readings.
pub fn reading_code(v: &Value) -> Option<Measure> {
    coded_measure(&v["code"])
}

/// Tags a reading as waiting for the team's review (`meta.tag`), keeping any other tags.
pub fn mark_unreviewed(obs: &mut Value) {
    if is_unreviewed(obs) {
        return;
    }
    let tag = json!({"system": WORKFLOW_TAGS, "code": "unreviewed", "display": "Not yet reviewed by the care team"});
    let mut tags = obs["meta"]["tag"].as_array().cloned().unwrap_or_default();
    tags.push(tag);
    obs["meta"]["tag"] = json!(tags);
}

/// The reading an Observation holds, if it is one of ours (any source: the app, a CSV
/// upload, the FHIR API, an EHR import).
pub fn reading_of(stored: &Stored) -> Option<Reading> {
    let v = stored.json().ok()?;
    let patient = stored.patient_id.clone().unwrap_or_default();
    reading_from(
        &v,
        &stored.id,
        stored.version_id,
        patient,
        stored.last_updated,
    )
}

/// The reading an Observation's content holds (with what the store keeps beside it: its id,
/// version, patient and the time it was last written).
pub(super) fn reading_from(
    v: &Value,
    id: &str,
    version: i64,
    patient: String,
    last_updated: i64,
) -> Option<Reading> {
    let measure = coded_measure(&v["code"])?;
    let value = if measure == Measure::BloodPressure {
        let comps = v["component"].as_array()?;
        let find = |code: &str| {
            comps
                .iter()
                .find(|c| has_code(&c["code"], LOINC, code))
                .and_then(|c| quantity_value(measure, &c["valueQuantity"]))
        };
        ReadingValue::Pressure {
            systolic: find(reading_rules::SYSTOLIC.code)?,
            diastolic: find(reading_rules::DIASTOLIC.code)?,
        }
    } else {
        ReadingValue::Single(quantity_value(measure, &v["valueQuantity"])?)
    };
    let at = parse_time(&v["effectiveDateTime"])
        .or_else(|| parse_time(&v["effectivePeriod"]["start"]))
        .or_else(|| parse_time(&v["issued"]))
        .unwrap_or_else(|| from_unix_millis(last_updated));
    let by = v["performer"][0]["display"]
        .as_str()
        .or(v["performer"][0]["reference"].as_str())
        .unwrap_or("")
        .to_string();
    let review = v["extension"].as_array().and_then(|es| {
        es.iter()
            .find(|e| e["url"] == ext("reading-review"))
            .map(|e| {
                let part = |name: &str| {
                    e["extension"]
                        .as_array()
                        .and_then(|ps| ps.iter().find(|p| p["url"] == name))
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                Review {
                    by: part("by")["valueReference"]["display"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    by_ref: part("by")["valueReference"]["reference"]
                        .as_str()
                        .map(str::to_string),
                    at: parse_time(&part("at")["valueDateTime"]).unwrap_or(at),
                    comment: part("comment")["valueString"].as_str().map(str::to_string),
                }
            })
    });
    Some(Reading {
        id: id.to_string(),
        version,
        patient,
        measure,
        value,
        at,
        by,
        by_ref: v["performer"][0]["reference"].as_str().map(str::to_string),
        unreviewed: is_unreviewed(v),
        review,
    })
}

/// Why an Observation of a measure we know cannot be stored, whichever way it came (the
/// app, a CSV file, the FHIR API, a Bundle, an import): a value no number holds, a unit the
/// measure does not use (an HbA1c in mg), or a value no body has, by the same rules as entry
/// by hand. Reads the resource's own fields, without a copy.
pub fn implausible(observation: &serde_json::Map<String, Value>) -> Option<ReadingRefused> {
    let field = |k: &str| observation.get(k).unwrap_or(&Value::Null);
    if field("resourceType") != "Observation" {
        return None;
    }
    let measure = coded_measure(field("code"))?;
    let canonical = measure.canonical_unit().ucum;
    let components = field("component").as_array();
    let quantities = std::iter::once(field("valueQuantity")).chain(
        components
            .into_iter()
            .flatten()
            .map(|c| &c["valueQuantity"]),
    );
    for q in quantities {
        // A value no number holds (`1e400` is valid JSON and a valid FHIR decimal, and would
        // be read as no value at all) is refused, not let through unchecked.
        let raw = &q["value"];
        if !raw.is_null() && raw.as_f64().is_none_or(|x| !x.is_finite()) {
            return Some(ReadingRefused::NotANumber(raw.to_string()));
        }
        // The unit, by its UCUM code or else its label, must be one the measure uses.
        let unit = q["code"].as_str().or(q["unit"].as_str()).unwrap_or("");
        if !unit.trim().is_empty() && measure.unit(unit).is_none() {
            return Some(ReadingRefused::UnknownUnit {
                unit: unit.trim().to_string(),
                allowed: measure.units().iter().map(|u| u.label).collect(),
            });
        }
    }
    let values: Vec<f64> = if measure == Measure::BloodPressure {
        let comps = components?;
        let find = |code: &str| {
            comps
                .iter()
                .find(|c| has_code(&c["code"], LOINC, code))
                .and_then(|c| quantity_value(measure, &c["valueQuantity"]))
        };
        vec![
            find(reading_rules::SYSTOLIC.code)?,
            find(reading_rules::DIASTOLIC.code)?,
        ]
    } else {
        vec![quantity_value(measure, field("valueQuantity"))?]
    };
    reading_rules::check(measure, &values, canonical).err()
}

/// The team's "HbA1c test due" Task for a patient, one per patient (by identifier).
pub fn hba1c_task_resource(patient: &str, due: OffsetDateTime, now: OffsetDateTime) -> Value {
    let identifier = format!("hba1c-test/{patient}");
    let subject = patient_ref(patient);
    json!({
        "resourceType": "Task",
        "identifier": [{"system": TASKS, "value": identifier}],
        "status": "requested",
        "intent": "plan",
        "code": {"coding": [{"system": TASKS, "code": "hba1c-test", "display": "HbA1c test due"}]},
        "description": "HbA1c test due",
        "for": {"reference": subject},
        "authoredOn": instant(now),
        "performerType": [{"coding": [{"system": ROLES, "code": Role::Clinician.as_str()}]}],
        "restriction": {"period": {"end": instant(due)}},
    })
}

/// The team's Task for a reading that needs a response the same day: urgent, focused on the
/// reading, with its deadline and escalation chain (the watcher escalates it when missed).
pub fn urgent_reading_task(
    patient: &str,
    reading: &str,
    alert: Alert,
    chain: &Escalation,
    calendar: &BusinessCalendar,
    now: OffsetDateTime,
) -> Value {
    let what = format!("Respond today: {}", urgent_english(alert));
    let mut task = json!({
        "resourceType": "Task",
        "extension": [crate::deadlines::escalation_extension(chain)],
        "status": "requested",
        "intent": "order",
        "priority": "urgent",
        "code": {"coding": [{"system": TASKS, "code": URGENT_READING, "display": "Respond today to a reading"}]},
        "businessStatus": {"coding": [{"system": TASKS, "code": alert.as_str()}]},
        "description": what,
        "focus": {"reference": reading},
        "for": {"reference": patient_ref(patient)},
        "authoredOn": instant(now),
    });
    crate::deadlines::set_task_deadline(&mut task, &chain.open(calendar, now));
    task
}

/// The code of the team's Task for a reading that needs a response today.
pub const URGENT_READING: &str = "urgent-reading";

fn urgent_english(a: Alert) -> &'static str {
    match a {
        Alert::SevereLow => "very low glucose (level 2)",
        Alert::Low => "low glucose (level 1)",
        Alert::VeryHigh => "very high glucose",
        Alert::High => "high glucose",
        Alert::Crisis => "blood pressure in the crisis range",
    }
}

impl Care {
    /// The response a reading needs now, if any (thresholds from the site's settings).
    pub fn alert(&self, r: &Reading) -> Option<Alert> {
        self.safety.alert(r.measure, &r.value)
    }

    /// For a reading the patient's side entered that needs a same-day response: the team's
    /// urgent Task (in the transaction with the reading) and the notices to the team and to the
    /// family who follow the readings.
    async fn urgent_follow_up(
        &self,
        caller: &Caller,
        patient: &str,
        full_url: &str,
        r: &NewReading,
    ) -> Result<Option<(Value, Vec<coproduce_store::NotificationRow>)>> {
        let now = self.now();
        // The team's own entries are known to them; a reading from long ago is history.
        if side_of(caller).ok() != Some(Side::Patient)
            || !coproduce_core::care::safety::recent(r.at, now)
        {
            return Ok(None);
        }
        let value = reading_rules::check(r.measure, &r.values, &r.unit)?;
        let Some(alert) = self
            .safety
            .alert(r.measure, &value)
            .filter(|a| a.same_day())
        else {
            return Ok(None);
        };
        let task = urgent_reading_task(patient, full_url, alert, &self.urgent, &self.calendar, now);
        let first = self.urgent.open(&self.calendar, now);
        let params = json!({
            "alert": alert.as_str(),
            "due": instant(first.due),
        });
        let mut notices =
            self.notifier
                .to_team(patient, first.role, URGENT_READING, params.clone(), now);
        notices.extend(
            self.notifier
                .to_family(patient, Part::Readings, URGENT_READING, params)
                .await?
                .into_iter()
                .filter(|n| Some(&n.recipient) != caller.fhir_ref.as_ref()),
        );
        let entry = json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": task,
            "request": {"method": "POST", "url": "Task"},
        });
        Ok(Some((entry, notices)))
    }

    /// Checks a reading as entered and turns it into an Observation (not yet stored).
    pub fn observation(&self, caller: &Caller, patient: &str, r: &NewReading) -> Result<Value> {
        let value = reading_rules::check(r.measure, &r.values, &r.unit)?;
        if r.at > self.now() + time::Duration::minutes(5) {
            return Err(CareError::input(
                "reading-in-future",
                "the time of the reading is in the future",
            ));
        }
        let code = r.measure.code();
        let concept = |c: reading_rules::Code| json!({"coding": [{"system": c.system, "code": c.code, "display": c.display}], "text": c.display});
        let mut obs = json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": r.measure.category(),
            }]}],
            "code": concept(code),
            "subject": {"reference": patient_ref(patient)},
            "effectiveDateTime": instant(r.at),
            "performer": [author(caller)],
        });
        // A reading the patient's side entered waits for the team to look at it.
        if side_of(caller).ok() == Some(Side::Patient) {
            mark_unreviewed(&mut obs);
        }
        match value {
            ReadingValue::Single(v) => obs["valueQuantity"] = quantity(r.measure, v),
            ReadingValue::Pressure {
                systolic,
                diastolic,
            } => {
                obs["component"] = json!([
                    {"code": concept(reading_rules::SYSTOLIC), "valueQuantity": quantity(r.measure, systolic)},
                    {"code": concept(reading_rules::DIASTOLIC), "valueQuantity": quantity(r.measure, diastolic)},
                ]);
            }
        }
        Ok(obs)
    }

    /// Records one reading.
    pub async fn record_reading(
        &self,
        caller: &Caller,
        patient: &str,
        r: &NewReading,
    ) -> Result<Reading> {
        let obs = self.observation(caller, patient, r)?;
        // The reading and what follows from it (the HbA1c test falling due) commit together
        // or not at all, so what the page says is what was stored.
        // A reading that needs help today brings the team's urgent Task and its notices, in
        // the same transaction.
        let system = Caller::system("coproduce:care-plan");
        let full_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let mut entries = vec![(
            caller,
            json!({
                "fullUrl": full_url,
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            }),
        )];
        if let Some(task) = self
            .hba1c_task_entry(patient, std::slice::from_ref(r), None)
            .await?
        {
            entries.push((&system, task));
        }
        let mut notices = Vec::new();
        if let Some((task, told)) = self.urgent_follow_up(caller, patient, &full_url, r).await? {
            entries.push((&system, task));
            notices = told;
        }
        let response = self
            .api
            .transaction_with(entries, &notices, None)
            .await?
            .unwrap_or_default();
        let id = response["entry"][0]["response"]["location"]
            .as_str()
            .and_then(|l| l.split('/').nth(1))
            .ok_or_else(|| {
                CareError::App(AppError::Internal(
                    "a stored reading gave no location".into(),
                ))
            })?;
        let stored = self.api.read(caller, "Observation", id).await?;
        reading_of(&stored).ok_or_else(|| {
            CareError::App(AppError::Internal(
                "a stored reading did not read back".into(),
            ))
        })
    }

    /// Records many readings in one transaction: all or none (a CSV upload).
    pub async fn record_readings(
        &self,
        caller: &Caller,
        patient: &str,
        rows: &[NewReading],
    ) -> Result<usize> {
        let mut entries = Vec::with_capacity(rows.len());
        let mut urgent = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let obs = self.observation(caller, patient, r).map_err(|e| match e {
                // The row, and why in words the page translates (`why-key` and its values).
                CareError::Reading(why) => CareError::Input {
                    key: "csv-row-refused",
                    english: format!("row {}: {why}", i + 2),
                    args: [
                        ("row", (i + 2).to_string()),
                        ("why", why.to_string()),
                        ("why-key", why.key().to_string()),
                    ]
                    .into_iter()
                    .chain(why.args())
                    .collect(),
                },
                other => other,
            })?;
            let full_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
            urgent.extend(self.urgent_follow_up(caller, patient, &full_url, r).await?);
            entries.push(json!({
                "fullUrl": full_url,
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            }));
        }
        if entries.is_empty() {
            return Err(CareError::input("csv-empty", "the file has no readings"));
        }
        // The readings, the HbA1c test falling due and the urgent responses commit together
        // or not at all.
        let system = Caller::system("coproduce:care-plan");
        let mut entries: Vec<(&Caller, Value)> = entries.into_iter().map(|e| (caller, e)).collect();
        if let Some(task) = self.hba1c_task_entry(patient, rows, None).await? {
            entries.push((&system, task));
        }
        let mut notices = Vec::new();
        for (task, told) in urgent {
            entries.push((&system, task));
            notices.extend(told);
        }
        self.api.transaction_with(entries, &notices, None).await?;
        Ok(rows.len())
    }

    /// A team member marks a reading reviewed, with an optional comment the patient sees.
    pub async fn review_reading(
        &self,
        caller: &Caller,
        patient: &str,
        observation_id: &str,
        comment: &str,
    ) -> Result<Reading> {
        if side_of(caller)? != Side::Team {
            return Err(CareError::input(
                "review-team-only",
                "only the care team marks readings reviewed",
            ));
        }
        if !role_of(caller).is_some_and(reading_rules::may_review) {
            return Err(CareError::App(AppError::Forbidden(
                "only a clinician or a nurse marks a reading reviewed".into(),
            )));
        }
        let stored = self.api.read(caller, "Observation", observation_id).await?;
        in_chart(&stored, patient)?;
        let mut v = content(&stored)?;
        let now = self.now();
        // Looked up without indexing: `v["meta"]["tag"]` on a mutable value would add a
        // null `tag` to a reading that has none (one from an EHR), and the update would fail.
        if let Some(tags) = v.pointer_mut("/meta/tag").and_then(Value::as_array_mut) {
            tags.retain(|t| !(t["system"] == WORKFLOW_TAGS && t["code"] == "unreviewed"));
        }
        let mut parts = vec![
            json!({"url": "by", "valueReference": author(caller)}),
            json!({"url": "at", "valueDateTime": instant(now)}),
        ];
        let comment = comment.trim();
        if !comment.is_empty() {
            parts.push(json!({"url": "comment", "valueString": comment}));
        }
        let mut exts: Vec<Value> = v["extension"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["url"] != ext("reading-review"))
            .collect();
        exts.push(json!({"url": ext("reading-review"), "extension": parts}));
        v["extension"] = json!(exts);
        strip_version(&mut v);
        // The review answers the reading's urgent Task, if it has one: both or neither.
        let system = Caller::system("coproduce:care-plan");
        let mut entries = vec![(
            caller,
            json!({
                "resource": v,
                "request": {"method": "PUT", "url": format!("Observation/{observation_id}"),
                            "ifMatch": format!("W/\"{}\"", stored.version_id)},
            }),
        )];
        let open = self
            .api
            .search_all(
                &system,
                "Task",
                &params(&[
                    ("focus", format!("Observation/{observation_id}")),
                    ("code", format!("{TASKS}|{URGENT_READING}")),
                    ("status", "requested,in-progress".into()),
                ]),
            )
            .await?;
        for t in open {
            let mut task = content(&t)?;
            if let Some(o) = task.as_object_mut() {
                o.remove("meta");
            }
            task["status"] = json!("completed");
            task["owner"] = author(caller);
            task["executionPeriod"] = json!({"end": instant(now)});
            task["lastModified"] = json!(instant(now));
            entries.push((
                &system,
                json!({
                    "resource": task,
                    "request": {"method": "PUT", "url": format!("Task/{}", t.id),
                                "ifMatch": format!("W/\"{}\"", t.version_id)},
                }),
            ));
        }
        self.api.transaction_with(entries, &[], None).await?;
        let written = self.api.read(caller, "Observation", observation_id).await?;
        reading_of(&written).ok_or_else(|| {
            CareError::App(AppError::Internal(
                "a reviewed reading did not read back".into(),
            ))
        })
    }

    /// Keeps the patient's "HbA1c test due" task in step with their latest HbA1c and their
    /// agreed target. The system does this on the team's behalf, so it is audited as such.
    pub async fn refresh_hba1c_task(&self, patient: &str) -> Result<()> {
        if let Some(task) = self.hba1c_task_entry(patient, &[], None).await? {
            let system = Caller::system("coproduce:care-plan");
            self.api
                .transaction_with(vec![(&system, task)], &[], None)
                .await?;
        }
        Ok(())
    }

    /// The transaction entry that keeps the patient's "HbA1c test due" Task in step with
    /// their latest HbA1c (the stored ones and those about to be added) and their target:
    /// the Task created, or updated with its version checked; None when it is already right.
    pub(super) async fn hba1c_task_entry(
        &self,
        patient: &str,
        adding: &[NewReading],
        agreeing: Option<TargetRange>,
    ) -> Result<Option<Value>> {
        let added = adding
            .iter()
            .filter(|r| r.measure == Measure::HbA1c)
            .map(|r| {
                reading_rules::check(r.measure, &r.values, &r.unit).map(|v| (r.at, v.headline()))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // Readings of other measures do not move the HbA1c test.
        if !adding.is_empty() && added.is_empty() {
            return Ok(None);
        }
        let system = Caller::system("coproduce:care-plan");
        let subject = patient_ref(patient);
        let stored = self
            .api
            .search_all(
                &system,
                "Observation",
                &params(&[
                    ("subject", subject.clone()),
                    (
                        "code",
                        reading_rules::HBA1C_CODES
                            .iter()
                            .map(|c| format!("{LOINC}|{c}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    ("_sort", "-date".into()),
                    ("_count", "1".into()),
                ]),
            )
            .await?
            .iter()
            .find_map(reading_of)
            .map(|r| (r.at, r.value.headline()));
        let latest = stored.into_iter().chain(added).max_by_key(|(at, _)| *at);
        // A target being agreed in the same transaction counts before the stored ones.
        let stored_target = self
            .api
            .search_all(
                &system,
                "Goal",
                &params(&[
                    ("subject", subject.clone()),
                    ("lifecycle-status", "active".into()),
                ]),
            )
            .await?
            .iter()
            .filter_map(goal_of)
            .find_map(|g| {
                g.target
                    .filter(|(m, _)| *m == Measure::HbA1c)
                    .map(|(_, r)| r)
            });
        let target = agreeing.or(stored_target);
        let due = hba1c_due(latest, target, self.now());
        let identifier = format!("hba1c-test/{patient}");
        let mut task = hba1c_task_resource(patient, due, self.now());
        let existing = self
            .api
            .search_all(
                &system,
                "Task",
                &params(&[("identifier", format!("{TASKS}|{identifier}"))]),
            )
            .await?;
        Ok(match existing.first() {
            Some(s) if task_of(s).is_some_and(|t| t.due == Some(due)) => None,
            Some(s) => {
                task["id"] = json!(s.id);
                Some(json!({
                    "resource": task,
                    "request": {"method": "PUT", "url": format!("Task/{}", s.id),
                                "ifMatch": format!("W/\"{}\"", s.version_id)},
                }))
            }
            None => Some(json!({
                "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                "resource": task,
                "request": {"method": "POST", "url": "Task"},
            })),
        })
    }
}
