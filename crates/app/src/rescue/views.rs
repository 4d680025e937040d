//! What the pages show of packs: a patient's packs with their deadlines, the team's open
//! episodes, and the steroid windows the readings use.

use super::*;

/// A team deadline as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineView {
    pub task_id: String,
    pub version: i64,
    pub kind: TaskKind,
    pub deadline: Deadline,
    pub standing: Standing,
    /// Still open (requested), or done.
    pub open: bool,
    pub closed_at: Option<OffsetDateTime>,
}

/// A pack and its deadlines.
#[derive(Debug, Clone)]
pub struct PackView {
    pub id: String,
    pub version: i64,
    pub patient: String,
    pub patient_name: String,
    pub pack: Pack,
    pub stage: Stage,
    pub deadlines: Vec<DeadlineView>,
}

impl PackView {
    pub fn open_deadlines(&self) -> impl Iterator<Item = &DeadlineView> {
        self.deadlines.iter().filter(|d| d.open)
    }

    pub fn deadline(&self, kind: TaskKind) -> Option<&DeadlineView> {
        self.deadlines.iter().find(|d| d.kind == kind)
    }

    /// Whether the check-in question is put to the patient now.
    pub fn check_in_open(
        &self,
        opens: Within,
        cal: &BusinessCalendar,
        now: OffsetDateTime,
    ) -> bool {
        self.stage == Stage::Started
            && self.pack.check_in().is_none()
            && self
                .pack
                .started_at()
                .is_some_and(|s| opens.due(cal, s) <= now || self.pack.contact().is_some())
    }

    /// Until when the patient's glucose is watched (a start with diabetes), if it is.
    pub fn glucose_until(&self, days: i64) -> Option<OffsetDateTime> {
        self.pack
            .started_at()
            .map(|s| s + time::Duration::days(days))
    }
}

impl Rescue {
    pub(super) fn view(&self, stored: &Stored, tasks: &[Stored], name: &str) -> Result<PackView> {
        let v = stored.json().map_err(AppError::from)?;
        let events: Vec<Recorded> = v["extension"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["url"] == EVENT_EXT)
                    .filter_map(event_of)
                    .collect()
            })
            .unwrap_or_default();
        let pack = Pack::from_events(&self.protocol.rules, events).map_err(|e| {
            AppError::Internal(format!(
                "CarePlan/{} holds an impossible history: {e}",
                stored.id
            ))
        })?;
        let now = self.now();
        let focus = format!("CarePlan/{}", stored.id);
        let mut deadlines = Vec::new();
        for t in tasks {
            let Ok(tv) = t.json() else { continue };
            if tv["focus"]["reference"] != focus.as_str() {
                continue;
            }
            let Some(kind) = tv["code"]["coding"][0]["code"]
                .as_str()
                .and_then(TaskKind::parse)
            else {
                continue;
            };
            let Some((_, deadline)) = task_deadline(&tv) else {
                continue;
            };
            let open = tv["status"] == "requested";
            deadlines.push(DeadlineView {
                task_id: t.id.clone(),
                version: t.version_id,
                kind,
                standing: Standing::of(&deadline, now),
                deadline,
                open,
                closed_at: time_of(&tv["executionPeriod"]["end"]),
            });
        }
        deadlines.sort_by_key(|d| (d.kind, d.deadline.due));
        Ok(PackView {
            id: stored.id.clone(),
            version: stored.version_id,
            patient: stored.patient_id.clone().unwrap_or_default(),
            patient_name: name.to_string(),
            stage: pack.stage(),
            pack,
            deadlines,
        })
    }

    pub(super) async fn tasks_of(&self, caller: &Caller, patient: &str) -> Result<Vec<Stored>> {
        Ok(self
            .api
            .search_all(
                caller,
                "Task",
                &[
                    ("subject".to_string(), format!("Patient/{patient}")),
                    ("code".to_string(), task_codes()),
                ],
            )
            .await?)
    }

    /// The CarePlans of one of our categories (rescue pack, action plan), with more search
    /// parameters.
    pub(super) async fn plans(
        &self,
        caller: &Caller,
        category: &str,
        more: &[(&str, String)],
    ) -> Result<Vec<Stored>> {
        let mut params = vec![(
            "category".to_string(),
            format!("{PLAN_CATEGORY}|{category}"),
        )];
        params.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
        Ok(self.api.search_all(caller, "CarePlan", &params).await?)
    }

    /// A patient's packs, newest first.
    pub async fn packs(&self, caller: &Caller, patient: &str) -> Result<Vec<PackView>> {
        let plans = self
            .plans(
                caller,
                PACK_CATEGORY,
                &[("subject", format!("Patient/{patient}"))],
            )
            .await?;
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        let tasks = self.tasks_of(caller, patient).await?;
        let mut out = plans
            .iter()
            .map(|p| self.view(p, &tasks, ""))
            .collect::<Result<Vec<_>>>()?;
        // Newest first, by each pack's latest event (a successor begins with copies of its
        // predecessor's eligibility, so its first event says nothing).
        out.sort_by_key(|p| std::cmp::Reverse(p.pack.events.last().map(|e| e.at)));
        Ok(out)
    }

    /// The packs in the caller's reach that are still in use or being prepared (not yet
    /// replaced), read in one search, with their patients' names: a team role's list of packs
    /// to teach, dispense or replace.
    pub async fn packs_in_hand(&self, caller: &Caller) -> Result<Vec<PackView>> {
        let plans = self
            .plans(caller, PACK_CATEGORY, &[("status", "active".to_string())])
            .await?;
        let mut out = Vec::new();
        let mut names: std::collections::HashMap<String, String> = Default::default();
        for p in &plans {
            let view = self.view(p, &[], "")?;
            if view.pack.replacement().is_some() {
                continue;
            }
            out.push(view);
        }
        let ids: Vec<String> = out.iter().map(|v| v.patient.clone()).collect();
        if !ids.is_empty() {
            for s in self
                .api
                .search_all(caller, "Patient", &[("_id".to_string(), ids.join(","))])
                .await?
            {
                names.insert(
                    s.id.clone(),
                    person_name(&s.json().map_err(AppError::from)?),
                );
            }
        }
        for v in &mut out {
            v.patient_name = names.get(&v.patient).cloned().unwrap_or_default();
        }
        out.sort_by(|a, b| a.patient_name.cmp(&b.patient_name));
        Ok(out)
    }

    /// The pack in the patient's hands (not yet replaced), if any.
    pub async fn current(&self, caller: &Caller, patient: &str) -> Result<Option<PackView>> {
        Ok(self
            .packs(caller, patient)
            .await?
            .into_iter()
            .find(|p| p.pack.replacement().is_none()))
    }

    /// The pack to act on now: one whose episode is still open (started, outcome not yet
    /// recorded, even if a replacement was already issued), else the one in hand.
    pub async fn active(&self, caller: &Caller, patient: &str) -> Result<Option<PackView>> {
        let packs = self.packs(caller, patient).await?;
        let open = packs.iter().position(|p| p.stage == Stage::Started);
        let hand = packs.iter().position(|p| p.pack.replacement().is_none());
        Ok(open.or(hand).map(|i| packs[i].clone()))
    }

    /// Every open rescue-pack episode the caller can see, with its deadlines, most urgent
    /// first (for the team view).
    pub async fn open_episodes(&self, caller: &Caller) -> Result<Vec<PackView>> {
        let tasks = self
            .api
            .search_all(
                caller,
                "Task",
                &[
                    ("code".to_string(), task_codes()),
                    ("status".to_string(), "requested".to_string()),
                ],
            )
            .await?;
        let mut patients: Vec<String> = tasks.iter().filter_map(|t| t.patient_id.clone()).collect();
        patients.sort();
        patients.dedup();
        let mut out = Vec::new();
        for p in patients {
            let name = match self.api.read(caller, "Patient", &p).await {
                Ok(s) => person_name(&s.json().map_err(AppError::from)?),
                Err(_) => p.clone(),
            };
            for mut pack in self.packs(caller, &p).await? {
                if pack.open_deadlines().next().is_some() {
                    pack.patient_name = name.clone();
                    out.push(pack);
                }
            }
        }
        out.sort_by_key(|p| p.open_deadlines().map(|d| d.deadline.due).min());
        Ok(out)
    }

    /// The glucose-watch windows of the caller's patients on an open episode: (patient, the
    /// start, the end of the steroid days). Readings of glucose in them are flagged.
    pub async fn steroid_windows(
        &self,
        caller: &Caller,
    ) -> Result<Vec<(String, OffsetDateTime, OffsetDateTime)>> {
        let days = self.protocol.rules.glucose_days;
        if days <= 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .open_episodes(caller)
            .await?
            .iter()
            .filter_map(|e| {
                Some((
                    e.patient.clone(),
                    e.pack.started_at()?,
                    e.glucose_until(days)?,
                ))
            })
            .collect())
    }
}
