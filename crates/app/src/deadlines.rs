//! The deadline watcher: finds team deadlines that have passed, and for each one, exactly
//! once, counts the miss, moves the Task to the next role in its chain (with a new due time
//! from the business calendar) and tells that role. The claim of the miss, the Task's update
//! and the notifications commit together, so a restart in between neither loses nor repeats
//! an escalation, and two servers watching the same database cannot both fire it.
//!
//! Any workflow's team-owned Task carries a deadline the same way (its escalation chain and
//! level as extensions, its due time as `restriction.period.end`); the functions here write
//! and read them. A workflow with records that lapse on their own (a rescue pack past its
//! expiry) adds a sweep that each pass runs first.

use crate::caller::Caller;
use crate::error::AppError;
use crate::fhir_api::FhirApi;
use crate::notify::Notifier;
use crate::vocabulary::ROLES;
use coproduce_core::access::Role;
use coproduce_core::calendar::{BusinessCalendar, Within};
use coproduce_core::deadline::{Deadline, Escalation, Missed, Step};
use coproduce_core::{Clock, from_unix_millis, unix_millis};
use coproduce_fhir::primitives::date_range_millis;
use coproduce_store::deadlines::{ESCALATION, ESCALATION_LEVEL};
use coproduce_store::{MissRow, Stored};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use time::OffsetDateTime;

/// What one pass of the watcher did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Deadlines missed and escalated to the next role.
    pub escalated: usize,
    /// Deadlines missed at the last step of their chain.
    pub exhausted: usize,
    /// Records the workflows' sweeps closed as past their time (unused packs past expiry).
    pub expired: usize,
    /// New prescriptions from the FHIR API whose partnership check the sweeps ran.
    pub checked: usize,
}

impl std::ops::AddAssign for Tick {
    fn add_assign(&mut self, other: Tick) {
        self.escalated += other.escalated;
        self.exhausted += other.exhausted;
        self.expired += other.expired;
        self.checked += other.checked;
    }
}

/// A workflow's sweep, run at the start of each pass: records that lapse on their own, work
/// that waits for the next pass; it answers what it did.
pub type Sweep =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Tick, AppError>> + Send>> + Send + Sync>;

/// The escalation chain of a Task as its extension.
pub fn escalation_extension(chain: &Escalation) -> Value {
    json!({"url": ESCALATION, "extension": chain.steps().iter().map(|s| json!({
        "url": "step",
        "extension": [
            json!({"url": "role", "valueCode": s.role.as_str()}),
            json!({"url": "within", "valueString": s.within.to_string()}),
        ],
    })).collect::<Vec<_>>()})
}

/// Reads a chain from its extension (as [`escalation_extension`] writes it).
pub fn escalation_of(chain: &Value) -> Option<Escalation> {
    let steps = chain["extension"]
        .as_array()?
        .iter()
        .map(|s| {
            let ps = s["extension"].as_array()?;
            let role = Role::parse(ps.iter().find(|p| p["url"] == "role")?["valueCode"].as_str()?)?;
            let within =
                Within::parse(ps.iter().find(|p| p["url"] == "within")?["valueString"].as_str()?)
                    .ok()?;
            Some(Step { role, within })
        })
        .collect::<Option<Vec<_>>>()?;
    Escalation::new(steps).ok()
}

/// Reads a Task's chain and where it stands.
pub fn task_deadline(task: &Value) -> Option<(Escalation, Deadline)> {
    let exts = task["extension"].as_array()?;
    let chain = escalation_of(exts.iter().find(|e| e["url"] == ESCALATION)?)?;
    let level = exts
        .iter()
        .find(|e| e["url"] == ESCALATION_LEVEL)
        .and_then(|e| e["valueInteger"].as_i64())
        .unwrap_or(0);
    let level = usize::try_from(level).ok()?;
    let role = chain.steps().get(level)?.role;
    let (due, _) = date_range_millis(task["restriction"]["period"]["end"].as_str()?)?;
    let due = from_unix_millis(due);
    Some((chain, Deadline { level, role, due }))
}

/// The time a Task's promise was first due (its chain's first step), kept when escalation
/// moves the deadline on, so the partnership's scorecard can say whether it was kept on time.
pub const FIRST_DUE: &str =
    "https://coproduce.health/fhir/StructureDefinition/escalation-first-due";

/// Sets a Task's step in its chain: the level, the role that owns it and the due time (at
/// the first step, also the time it was first due).
pub fn set_task_deadline(task: &mut Value, d: &Deadline) {
    if let Some(exts) = task["extension"].as_array_mut() {
        exts.retain(|e| e["url"] != ESCALATION_LEVEL && (d.level > 0 || e["url"] != FIRST_DUE));
        exts.push(json!({"url": ESCALATION_LEVEL, "valueInteger": d.level}));
        if d.level == 0 {
            exts.push(json!({"url": FIRST_DUE, "valueDateTime": Stored::instant(d.due)}));
        }
    }
    task["performerType"] = json!([{"coding": [{"system": ROLES, "code": d.role.as_str()}]}]);
    task["restriction"] = json!({"period": {"end": Stored::instant(d.due)}});
}

/// When a Task with a deadline was first due: as recorded when its chain began, else (a Task
/// written before that was kept, or by another system) its due time while at the first step,
/// else its chain's first step counted from when it was written.
pub fn first_due(task: &Value, chain: &Escalation, current: &Deadline) -> Option<FirstDue> {
    let recorded = task["extension"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["url"] == FIRST_DUE))
        .and_then(|e| crate::vocabulary::instant_of(&e["valueDateTime"]));
    if let Some(at) = recorded {
        return Some(FirstDue::At(at));
    }
    if current.level == 0 {
        return Some(FirstDue::At(current.due));
    }
    let written = crate::vocabulary::instant_of(&task["authoredOn"])?;
    let within = chain.steps().first()?.within;
    Some(FirstDue::After { written, within })
}

/// When a Task was first due, as its record tells it: the time itself, or (a Task escalated
/// before the time was recorded) its chain's first step counted from when it was written,
/// which the site's calendar decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstDue {
    At(OffsetDateTime),
    After {
        written: OffsetDateTime,
        within: Within,
    },
}

impl FirstDue {
    pub fn at(self, calendar: &BusinessCalendar) -> OffsetDateTime {
        match self {
            FirstDue::At(t) => t,
            FirstDue::After { written, within } => within.due(calendar, written),
        }
    }
}

#[derive(Clone)]
pub struct Watcher {
    api: FhirApi,
    clock: Arc<dyn Clock>,
    calendar: Arc<BusinessCalendar>,
    notifier: Notifier,
    sweeps: Vec<Sweep>,
}

impl Watcher {
    /// The store it watches.
    pub(crate) fn store(&self) -> &coproduce_store::Store {
        self.api.store()
    }
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
    pub fn new(
        api: FhirApi,
        clock: Arc<dyn Clock>,
        calendar: Arc<BusinessCalendar>,
        notifier: Notifier,
    ) -> Self {
        Watcher {
            api,
            clock,
            calendar,
            notifier,
            sweeps: Vec::new(),
        }
    }

    /// Adds a workflow's sweep, run at the start of each pass.
    pub fn with_sweep(mut self, sweep: Sweep) -> Self {
        self.sweeps.push(sweep);
        self
    }

    /// One pass: the sweeps (unused packs expire), then every deadline due by now.
    pub async fn tick(&self) -> Result<Tick, AppError> {
        let mut tick = Tick::default();
        for sweep in &self.sweeps {
            tick += sweep().await?;
        }
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
        // An urgent reading's Task says which response it needs, for the notice's words.
        let alert = task["businessStatus"]["coding"][0]["code"].clone();
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
                    "alert": alert,
                });
                self.notifier
                    .to_team(&patient, next.role, "deadline-escalated", params, now)
            }
            Missed::Exhausted => {
                let params = json!({
                    "task": what,
                    "task_id": task_id,
                    "missed_by": current.role.as_str(),
                    "alert": alert,
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
