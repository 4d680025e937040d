//! The deadline watcher: finds team deadlines that have passed, and for each one, exactly
//! once, counts the miss, moves the Task to the next role in its chain (with a new due time
//! from the business calendar) and tells that role. The claim of the miss, the Task's update
//! and the notifications commit together, so a restart in between neither loses nor repeats
//! an escalation, and two servers watching the same database cannot both fire it.

use crate::accounts::Caller;
use crate::error::AppError;
use crate::fhir_api::FhirApi;
use crate::notify::Notifier;
use crate::rescue::{Rescue, set_task_deadline, task_deadline};
use coproduce_core::calendar::BusinessCalendar;
use coproduce_core::deadline::Missed;
use coproduce_core::{Clock, unix_millis};
use coproduce_store::MissRow;
use serde_json::json;
use std::sync::Arc;

/// What one pass of the watcher did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Deadlines missed and escalated to the next role.
    pub escalated: usize,
    /// Deadlines missed at the last step of their chain.
    pub exhausted: usize,
    /// Packs found past their expiry, unused.
    pub expired: usize,
}

#[derive(Clone)]
pub struct Watcher {
    api: FhirApi,
    clock: Arc<dyn Clock>,
    calendar: Arc<BusinessCalendar>,
    notifier: Notifier,
    rescue: Rescue,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

fn system() -> Caller {
    Caller::system("coproduce:deadlines")
}

impl Watcher {
    pub fn new(api: FhirApi, clock: Arc<dyn Clock>, rescue: Rescue) -> Self {
        Watcher {
            api,
            clock,
            calendar: rescue.calendar.clone(),
            notifier: rescue.notifier.clone(),
            rescue,
        }
    }

    /// One pass: expire unused packs, then fire every deadline due by now.
    pub async fn tick(&self) -> Result<Tick, AppError> {
        let mut tick = Tick {
            expired: self.rescue.expire_packs().await.map_err(|e| match e {
                crate::CareError::App(a) => a,
                other => AppError::Internal(other.to_string()),
            })?,
            ..Tick::default()
        };
        loop {
            let due = self
                .api
                .store()
                .due_deadlines(self.clock.now(), 200)
                .await?;
            if due.is_empty() {
                break;
            }
            let mut fired = 0;
            for d in due {
                match self.fire(&d.task_id).await? {
                    Some(Missed::Escalated(_)) => {
                        tick.escalated += 1;
                        fired += 1;
                    }
                    Some(Missed::Exhausted) => {
                        tick.exhausted += 1;
                        fired += 1;
                    }
                    None => {}
                }
            }
            if fired == 0 {
                break;
            }
        }
        Ok(tick)
    }

    /// Fires one passed deadline; None when it was not due or had already fired.
    async fn fire(&self, task_id: &str) -> Result<Option<Missed>, AppError> {
        let sys = system();
        let now = self.clock.now();
        let stored = self.api.read(&sys, "Task", task_id).await?;
        let mut task = stored.json()?;
        let patient = stored.patient_id.clone().unwrap_or_default();
        let Some((chain, current)) = task_deadline(&task) else {
            // A chain this server cannot read (a role or period it does not know, written
            // through /fhir or an import): counted as missed once, so it neither blocks the
            // watcher nor fires again.
            let (level, due) = task
                .as_object()
                .and_then(coproduce_store::deadlines::deadline_of)
                .unwrap_or((0, unix_millis(now)));
            tracing::warn!(
                task = task_id,
                "a deadline whose escalation chain cannot be read"
            );
            let claim = MissRow {
                task_id: task_id.to_string(),
                level,
                patient_id: stored.patient_id.clone(),
                role: "unknown".into(),
                due_at: due,
                fired_at: unix_millis(now),
            };
            let written = self
                .api
                .transaction_with(Vec::new(), &[], Some(&claim))
                .await?;
            return Ok(written.map(|_| Missed::Exhausted));
        };
        if current.due > now {
            return Ok(None);
        }
        let claim = MissRow {
            task_id: task_id.to_string(),
            level: current.level as i64,
            patient_id: stored.patient_id.clone(),
            role: current.role.as_str().to_string(),
            due_at: unix_millis(current.due),
            fired_at: unix_millis(now),
        };
        let missed = chain.missed(&self.calendar, &current);
        let what = task["code"]["coding"][0]["code"]
            .as_str()
            .unwrap_or("task")
            .to_string();
        let mut entries = Vec::new();
        let notices = match missed {
            Missed::Escalated(next) => {
                set_task_deadline(&mut task, &next);
                if let Some(o) = task.as_object_mut() {
                    o.remove("meta");
                }
                task["lastModified"] = json!(coproduce_store::Stored::instant(now));
                entries.push((
                    &sys,
                    json!({
                        "resource": task,
                        "request": {"method": "PUT", "url": format!("Task/{task_id}"),
                                    "ifMatch": format!("W/\"{}\"", stored.version_id)},
                    }),
                ));
                let params = json!({
                    "task": what,
                    "task_id": task_id,
                    "missed_by": current.role.as_str(),
                    "due": coproduce_store::Stored::instant(next.due),
                });
                self.notifier
                    .to_team(&patient, next.role, "deadline-escalated", params, now)
            }
            Missed::Exhausted => {
                let params = json!({
                    "task": what,
                    "task_id": task_id,
                    "missed_by": current.role.as_str(),
                });
                self.notifier
                    .to_team(&patient, current.role, "deadline-missed", params, now)
            }
        };
        let written = self
            .api
            .transaction_with(entries, &notices, Some(&claim))
            .await?;
        if written.is_none() {
            return Ok(None);
        }
        metrics::counter!("coproduce_deadlines_missed_total").increment(1);
        tracing::info!(task = task_id, level = current.level, role = %current.role, "deadline missed");
        Ok(Some(missed))
    }
}
