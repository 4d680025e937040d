//! Team deadlines and notifications: the tables behind the deadline watcher and delivery.
//!
//! A Task carrying an escalation chain (the extension [`ESCALATION`]) is a deadline while it
//! is open. Every write of a Task keeps its `deadlines` row in step, in the same transaction,
//! so the watcher finds what is due with one range scan whatever path wrote the Task (the
//! app, `/fhir`, a Bundle, an import). A missed deadline is claimed by inserting its
//! `(task, level)` into `deadline_misses`: the key makes the claim happen once.

use crate::db::args;
use crate::error::StoreError;
use crate::read::millis;
use crate::{Store, Tx};
use coproduce_fhir::primitives::date_range_millis;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The extension that makes a Task a watched deadline: its escalation chain.
pub const ESCALATION: &str = "https://coproduce.health/fhir/StructureDefinition/escalation";
/// The Task's step in its chain (0: the first role).
pub const ESCALATION_LEVEL: &str =
    "https://coproduce.health/fhir/StructureDefinition/escalation-level";

const OPEN: [&str; 5] = ["requested", "received", "accepted", "ready", "in-progress"];

/// An open deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineRow {
    pub task_id: String,
    pub patient_id: Option<String>,
    pub level: i64,
    pub due_at: i64,
}

/// A missed deadline, as claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissRow {
    pub task_id: String,
    pub level: i64,
    pub patient_id: Option<String>,
    pub role: String,
    pub due_at: i64,
    pub fired_at: i64,
}

/// A notification to show or deliver.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotificationRow {
    pub id: String,
    pub created_at: i64,
    pub patient_id: Option<String>,
    /// `Patient/x`, `RelatedPerson/x`, `role:nurse`, or `webhook`.
    pub recipient: String,
    /// `inapp`, `email` or `webhook`.
    pub channel: String,
    /// The email address or URL, for delivery.
    pub address: Option<String>,
    pub language: String,
    pub kind: String,
    /// A JSON object of the message's arguments.
    pub params: String,
    pub sent_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub read_at: Option<i64>,
}

const NOTE_COLS: &str = "id, created_at, patient_id, recipient, channel, address, language, kind, \
                         params, sent_at, attempts, last_error, read_at";

/// The condition on `patient_id` for a reader who reaches these patients (`n` of them,
/// bound from `$from`): a notice about one of them, or about no patient at all.
fn about_patients(from: usize, n: usize) -> String {
    if n == 0 {
        return " AND patient_id IS NULL".into();
    }
    let marks = (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(" AND (patient_id IS NULL OR patient_id IN ({marks}))")
}

fn note(r: &AnyRow) -> NotificationRow {
    NotificationRow {
        id: r.get(0),
        created_at: r.get(1),
        patient_id: r.get(2),
        recipient: r.get(3),
        channel: r.get(4),
        address: r.get(5),
        language: r.get(6),
        kind: r.get(7),
        params: r.get(8),
        sent_at: r.get(9),
        attempts: r.get(10),
        last_error: r.get(11),
        read_at: r.get(12),
    }
}

/// The deadline a Task's content describes: its level and due time, when it is open and
/// carries an escalation chain.
pub fn deadline_of(task: &Map<String, Value>) -> Option<(i64, i64)> {
    let status = task.get("status")?.as_str()?;
    if !OPEN.contains(&status) {
        return None;
    }
    let exts = task.get("extension")?.as_array()?;
    exts.iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(ESCALATION))?;
    let level = exts
        .iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(ESCALATION_LEVEL))
        .and_then(|e| e.get("valueInteger"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let due = task
        .get("restriction")?
        .pointer("/period/end")
        .and_then(Value::as_str)?;
    let (low, _) = date_range_millis(due)?;
    Some((level, low))
}

impl Tx {
    /// Keeps the `deadlines` row of a Task in step with its content (None: deleted).
    pub(crate) async fn sync_deadline(
        &mut self,
        id: &str,
        patient: Option<&str>,
        content: Option<&Map<String, Value>>,
    ) -> Result<(), StoreError> {
        match content.and_then(deadline_of) {
            Some((level, due)) => {
                self.db()
                    .execute(
                        "INSERT INTO deadlines (task_id, patient_id, level, due_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (task_id) DO UPDATE SET patient_id = excluded.patient_id, \
                         level = excluded.level, due_at = excluded.due_at",
                        &args![id, patient, level, due],
                    )
                    .await?;
            }
            None => {
                self.db()
                    .execute("DELETE FROM deadlines WHERE task_id = $1", &args![id])
                    .await?;
            }
        }
        Ok(())
    }

    /// Claims a missed deadline: true the first time for its (task, level), false after.
    pub async fn claim_miss(&mut self, m: &MissRow) -> Result<bool, StoreError> {
        let n = self
            .db()
            .execute(
                "INSERT INTO deadline_misses (task_id, level, patient_id, role, due_at, fired_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task_id, level) DO NOTHING",
                &args![
                    &m.task_id,
                    m.level,
                    m.patient_id.as_deref(),
                    &m.role,
                    m.due_at,
                    m.fired_at
                ],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn insert_notification(&mut self, n: &NotificationRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO notifications ({NOTE_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        let args = args![
            &n.id,
            n.created_at,
            &n.patient_id,
            &n.recipient,
            &n.channel,
            &n.address,
            &n.language,
            &n.kind,
            &n.params,
            n.sent_at,
            n.attempts,
            &n.last_error,
            n.read_at,
        ];
        self.db().execute(&sql, &args).await?;
        Ok(())
    }
}

impl Store {
    /// Open deadlines due at or before `now` and not yet claimed at their level, oldest first.
    pub async fn due_deadlines(
        &self,
        now: time::OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<DeadlineRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.task_id, d.patient_id, d.level, d.due_at FROM deadlines d \
             WHERE d.due_at <= $1 AND NOT EXISTS (SELECT 1 FROM deadline_misses m \
             WHERE m.task_id = d.task_id AND m.level = d.level) ORDER BY d.due_at LIMIT $2",
        )
        .bind(millis(now))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DeadlineRow {
                task_id: r.get(0),
                patient_id: r.get(1),
                level: r.get(2),
                due_at: r.get(3),
            })
            .collect())
    }

    /// Every missed deadline since `since` (Unix ms), newest first.
    pub async fn misses_since(&self, since: i64) -> Result<Vec<MissRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT task_id, level, patient_id, role, due_at, fired_at FROM deadline_misses \
             WHERE fired_at >= $1 ORDER BY fired_at DESC",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| MissRow {
                task_id: r.get(0),
                level: r.get(1),
                patient_id: r.get(2),
                role: r.get(3),
                due_at: r.get(4),
                fired_at: r.get(5),
            })
            .collect())
    }

    /// Notifications waiting for delivery on a channel, oldest first.
    pub async fn pending_notifications(
        &self,
        channel: &str,
        max_attempts: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTE_COLS} FROM notifications WHERE channel = $1 AND sent_at IS NULL \
             AND attempts < $2 ORDER BY created_at, id LIMIT $3"
        )))
        .bind(channel.to_string())
        .bind(max_attempts)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(note).collect())
    }

    /// Records a delivery attempt: sent, or failed with the reason.
    pub async fn notification_attempt(
        &self,
        id: &str,
        at: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let q = match error {
            None => sqlx::query(
                "UPDATE notifications SET sent_at = $1, attempts = attempts + 1, last_error = NULL \
                 WHERE id = $2",
            )
            .bind(at),
            Some(e) => sqlx::query(
                "UPDATE notifications SET attempts = attempts + 1, last_error = $1 WHERE id = $2",
            )
            .bind(e.to_string()),
        };
        q.bind(id.to_string()).execute(&self.writer).await?;
        Ok(())
    }

    /// The in-app notifications of any of these recipients, newest first.
    pub async fn notifications_for(
        &self,
        recipients: &[String],
        patients: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = format!(
            "SELECT {NOTE_COLS} FROM notifications WHERE channel = 'inapp' AND recipient IN ({})",
            (1..=recipients.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut q_patients = Vec::new();
        if let Some(ps) = patients {
            // A notice about no patient's chart (a concern raised without a name) is for
            // every team member it is addressed to; one about a patient for their team.
            let start = recipients.len();
            sql.push_str(&about_patients(start + 1, ps.len()));
            q_patients = ps.to_vec();
        }
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id LIMIT ${}",
            recipients.len() + q_patients.len() + 1
        ));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in recipients {
            q = q.bind(r.clone());
        }
        for p in q_patients {
            q = q.bind(p);
        }
        let rows = q.bind(limit).fetch_all(&self.reader).await?;
        Ok(rows.iter().map(note).collect())
    }

    /// Marks an in-app notification read: only one addressed to one of these recipients and,
    /// when `patients` is given, about one of these patients (the same rows
    /// [`Store::notifications_for`] shows), so that a nurse on another team cannot mark
    /// another team's `role:nurse` alert read.
    pub async fn mark_notification_read(
        &self,
        id: &str,
        recipients: &[String],
        patients: Option<&[String]>,
        at: i64,
    ) -> Result<bool, StoreError> {
        if recipients.is_empty() {
            return Ok(false);
        }
        let marks = |from: usize, n: usize| {
            (from..from + n)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut sql = format!(
            "UPDATE notifications SET read_at = $1 WHERE id = $2 AND read_at IS NULL \
             AND channel = 'inapp' AND recipient IN ({})",
            marks(3, recipients.len())
        );
        if let Some(ps) = patients {
            sql.push_str(&about_patients(3 + recipients.len(), ps.len()));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(at)
            .bind(id.to_string());
        for r in recipients {
            q = q.bind(r.clone());
        }
        for p in patients.into_iter().flatten() {
            q = q.bind(p.clone());
        }
        Ok(q.execute(&self.writer).await?.rows_affected() > 0)
    }

    /// The email address a person wants notifications at, if any.
    pub async fn notification_email(&self, subject: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query("SELECT email FROM notification_prefs WHERE subject = $1")
                .bind(subject.to_string())
                .fetch_optional(&self.reader)
                .await?
                .and_then(|r| r.get::<Option<String>, _>(0)),
        )
    }

    /// Sets (or with None clears) the email address a person wants notifications at.
    pub async fn set_notification_email(
        &self,
        subject: &str,
        email: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO notification_prefs (subject, email) VALUES ($1, $2) \
             ON CONFLICT (subject) DO UPDATE SET email = excluded.email",
        )
        .bind(subject.to_string())
        .bind(email.map(str::to_string))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The language the person behind a FHIR reference chose in the app, if any.
    pub async fn language_of(&self, fhir_ref: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query(
            "SELECT language FROM users WHERE fhir_ref = $1 AND language IS NOT NULL \
             ORDER BY created_at LIMIT 1",
        )
        .bind(fhir_ref.to_string())
        .fetch_optional(&self.reader)
        .await?
        .and_then(|r| r.get::<Option<String>, _>(0)))
    }
}
