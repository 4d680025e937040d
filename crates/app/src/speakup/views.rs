//! What each side sees: the reporter their concern's status and answer (never a staff name
//! unless the manager released names), found by their sign-in or by the claim code within
//! the throttle; the team the open concerns of their units with the deadlines, and one
//! concern with who took each step.

use super::*;
use crate::deadlines::task_deadline;
use coproduce_core::deadline::{Deadline, Standing};
use coproduce_core::speakup::{
    Heard, Stage, Step, Urgency, named_to_reporter, parse_claim_code, sees_every_unit, works_on,
    works_on_item,
};
use coproduce_core::unix_millis;

/// How a reporter reaches their concern.
#[derive(Debug, Clone, Copy)]
pub enum Follower<'a> {
    /// Signed in, as the person who raised it with their name.
    SignedIn { caller: &'a Caller, id: &'a str },
    /// With the claim code, from this address.
    Claim { code: &'a str, address: &'a str },
}

/// One step as someone reads it.
#[derive(Debug, Clone)]
pub struct StepView {
    pub step: &'static str,
    pub at: OffsetDateTime,
    pub text: String,
    /// Who took it: for the team always; for the reporter only when names were released.
    pub by: Option<String>,
}

/// A concern as its reporter (or the team) sees it.
#[derive(Debug, Clone)]
pub struct ConcernView {
    pub record: ConcernRecord,
    pub unit_name: String,
    pub stage: Stage,
    pub steps: Vec<StepView>,
    /// The team's answer, once given.
    pub answer: Option<String>,
    pub heard: Option<Heard>,
    /// The open deadline: when, which role owns it, how far up its chain.
    pub due: Option<Deadline>,
}

impl ConcernView {
    pub fn urgent(&self) -> bool {
        self.record.concern.urgency == Urgency::Urgent
    }

    /// Where the open deadline stands now (None when nothing is owed).
    pub fn standing(&self, now: OffsetDateTime) -> Option<Standing> {
        self.due.as_ref().map(|d| Standing::of(d, now))
    }
}

/// The team's list: the open concerns of the caller's units (every unit's for a manager).
#[derive(Debug, Clone)]
pub struct Queue {
    pub every_unit: bool,
    pub units: Vec<Unit>,
    pub open: Vec<ConcernView>,
}

impl SpeakUp {
    /// The concern a follower may reach, with the rights to write it; a wrong claim code is
    /// counted against the address, and an address past the limit waits.
    pub(super) async fn resolve(
        &self,
        follower: Follower<'_>,
    ) -> Result<(Caller, Stored, ConcernRecord)> {
        match follower {
            Follower::SignedIn { caller, id } => {
                let sys = on_behalf(&caller.label, Some(caller));
                let (stored, rec) = self.load(&sys, id).await?;
                if !coproduce_core::speakup::follows(
                    rec.reporter.as_deref(),
                    caller.fhir_ref.as_deref(),
                ) {
                    return Err(CareError::input(
                        "concern-not-found",
                        "there is no such concern",
                    ));
                }
                Ok((sys, stored, rec))
            }
            Follower::Claim { code, address } => {
                let now = self.now();
                let store = self.api.store();
                let since = unix_millis(now - self.limits.window);
                let wrong = store
                    .attempts_since(CLAIM_ATTEMPT, address, since, true)
                    .await?;
                if !self.limits.allows_claim(wrong) {
                    return Err(CareError::input(
                        "claim-throttled",
                        "too many codes were tried from here; wait an hour, or ask a member of staff",
                    ));
                }
                let sys = on_behalf(&format!("a claim code from {address}"), None);
                let found = match parse_claim_code(code) {
                    Some(code) => self
                        .api
                        .search_all(
                            &sys,
                            "Communication",
                            &[(
                                "identifier".to_string(),
                                format!("{CLAIM}|{}", claim_digest(&code)),
                            )],
                        )
                        .await?
                        .into_iter()
                        .next(),
                    None => None,
                };
                let record = found.as_ref().and_then(|s| {
                    s.json()
                        .ok()
                        .as_ref()
                        .and_then(ConcernRecord::of)
                        .map(|r| (s.clone(), r))
                });
                store
                    .record_attempt(unix_millis(now), CLAIM_ATTEMPT, address, record.is_some())
                    .await?;
                let (stored, rec) = record.ok_or_else(|| {
                    CareError::input(
                        "claim-wrong",
                        "that code does not match a concern; check it and try again",
                    )
                })?;
                Ok((sys, stored, rec))
            }
        }
    }

    /// The reporter's view of their concern.
    pub async fn follow(&self, follower: Follower<'_>) -> Result<ConcernView> {
        let (sys, _, rec) = self.resolve(follower).await?;
        self.view(&sys, rec, false, None).await
    }

    /// The concerns a signed-in reporter raised with their name, newest first.
    pub async fn mine(&self, caller: &Caller) -> Result<Vec<ConcernView>> {
        let Some(me) = &caller.fhir_ref else {
            return Ok(Vec::new());
        };
        let sys = on_behalf(&caller.label, Some(caller));
        let found = self
            .api
            .search_all(
                &sys,
                "Communication",
                &[
                    ("sender".to_string(), me.clone()),
                    (
                        "category".to_string(),
                        format!("{SPEAKUP}|concern,{SPEAKUP}|feedback"),
                    ),
                    ("_sort".to_string(), "-sent".to_string()),
                ],
            )
            .await?;
        let mut out = Vec::new();
        for s in found {
            if let Some(rec) = ConcernRecord::of(&s.json()?) {
                out.push(self.view(&sys, rec, false, None).await?);
            }
        }
        Ok(out)
    }

    /// The open concerns a team member works on, urgent first, then by when they are due.
    pub async fn queue(&self, caller: &Caller) -> Result<Queue> {
        let role = Self::team_role(caller)?;
        let my_units = self.units_of(caller).await?;
        let sys = on_behalf(&caller.label, Some(caller));
        let every_unit = sees_every_unit(role);
        let units: Vec<Unit> = self
            .units()
            .await?
            .into_iter()
            .filter(|u| works_on(role, &my_units, &u.id))
            .collect();
        let found = self
            .api
            .search_all(
                &sys,
                "Communication",
                &[
                    (
                        "category".to_string(),
                        format!("{SPEAKUP}|concern,{SPEAKUP}|feedback"),
                    ),
                    ("status".to_string(), "in-progress".to_string()),
                ],
            )
            .await?;
        let mut open = Vec::new();
        for s in found {
            let Some(rec) = ConcernRecord::of(&s.json()?) else {
                continue;
            };
            if works_on_item(role, rec.concern.kind, &my_units, &rec.unit) {
                // The unit's name is known here: no read per concern.
                let name = units
                    .iter()
                    .find(|u| u.id == rec.unit)
                    .map(|u| u.name.clone());
                open.push(self.view(&sys, rec, true, name).await?);
            }
        }
        open.sort_by_key(|c| {
            (
                !c.urgent(),
                c.due.as_ref().map_or(i64::MAX, |d| unix_millis(d.due)),
            )
        });
        Ok(Queue {
            every_unit,
            units,
            open,
        })
    }

    /// One concern for a team member who works on its unit, with who took each step.
    pub async fn concern_for_team(&self, caller: &Caller, id: &str) -> Result<ConcernView> {
        let role = Self::team_role(caller)?;
        let units = self.units_of(caller).await?;
        let sys = on_behalf(&caller.label, Some(caller));
        let (_, rec) = self.load(&sys, id).await?;
        if !works_on_item(role, rec.concern.kind, &units, &rec.unit) {
            return Err(AppError::Forbidden(
                "this is for the unit's staff (feedback, for the practice manager)".into(),
            )
            .into());
        }
        self.view(&sys, rec, true, None).await
    }

    /// Puts a concern's view together: its steps with who took them (from the Tasks' notes),
    /// shown to the team, and to the reporter only when names were released.
    async fn view(
        &self,
        sys: &Caller,
        rec: ConcernRecord,
        team: bool,
        unit_name: Option<String>,
    ) -> Result<ConcernView> {
        let tasks = self
            .api
            .search_all(
                sys,
                "Task",
                &[("focus".to_string(), format!("Communication/{}", rec.id))],
            )
            .await?;
        let mut notes: Vec<(String, OffsetDateTime, String)> = Vec::new();
        let mut due = None;
        for t in &tasks {
            let v = t.json()?;
            for n in v["note"].as_array().into_iter().flatten() {
                let who = n["authorReference"]["reference"]
                    .as_str()
                    .or(n["authorString"].as_str())
                    .unwrap_or("")
                    .to_string();
                if let (Some(step), Some(at)) = (n["text"].as_str(), time_of(&n["time"])) {
                    notes.push((step.to_string(), at, who));
                }
            }
            let open = v["status"] == "requested" || v["status"] == "in-progress";
            if open && let Some((_, d)) = task_deadline(&v) {
                due = Some(d);
            }
        }
        let mut steps = Vec::new();
        let mut answer = None;
        let mut heard = None;
        for (step, at) in &rec.concern.steps {
            let text = match step {
                Step::ActionTaken { what } => what.clone(),
                Step::Answered { text } => {
                    answer = Some(text.clone());
                    text.clone()
                }
                Step::FeltHeard { heard: h, comment } => {
                    heard = Some(*h);
                    comment.clone()
                }
                _ => String::new(),
            };
            let who = notes
                .iter()
                .find(|(s, t, _)| s == step.as_str() && t == at)
                .map(|(_, _, w)| w.clone());
            let by = match who {
                Some(w) if !w.is_empty() => {
                    let name = self.name_of(sys, &w).await;
                    if team {
                        Some(name)
                    } else {
                        named_to_reporter(rec.names_released, &name).map(str::to_string)
                    }
                }
                _ => None,
            };
            steps.push(StepView {
                step: step.as_str(),
                at: *at,
                text,
                by,
            });
        }
        let unit_name = match unit_name {
            Some(n) => n,
            None => match self.unit(&rec.unit).await {
                Ok(u) => u.name,
                Err(_) => rec.unit.clone(),
            },
        };
        Ok(ConcernView {
            stage: rec.concern.stage(),
            record: rec,
            unit_name,
            steps,
            answer,
            heard,
            due,
        })
    }
}
