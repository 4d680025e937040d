//! Notifications: who is told what, on which channel, in which language.
//!
//! A notice becomes rows in the notifications table, written in the same transaction as the
//! change it tells of: one in-app row per recipient, an email row when that person asked for
//! email (their address in their preferences), and for the team a webhook row when the site
//! has a webhook (for paging or SMS). Delivery (the web layer's loop) renders each row in its
//! language and marks it sent; nothing is lost if the server stops in between.

use crate::caller::Caller;
use crate::error::AppError;
use crate::fhir_api::FhirApi;
use crate::i18n::Tr;
use crate::vocabulary::grant_of;
use crate::vocabulary::person_name;
use coproduce_core::access::{Action, Part, Reach, Role, Who, reach};
use coproduce_core::calendar::BusinessCalendar;
use coproduce_core::{Clock, unix_millis};
use coproduce_store::{AuditEntry, NotificationRow};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// How many times delivery is tried before a notification is left as failed.
pub const MAX_ATTEMPTS: i64 = 5;

/// The recipient name of a team role's inbox.
pub fn role_recipient(role: Role) -> String {
    format!("role:{}", role.as_str())
}

/// Where notifications go.
#[derive(Clone)]
pub struct Notifier {
    api: FhirApi,
    clock: Arc<dyn Clock>,
    /// Whether the site has a webhook: team notices are then queued for it too.
    pub webhook: bool,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("webhook", &self.webhook)
            .finish_non_exhaustive()
    }
}

/// The parts every row of one notice shares.
fn notice(now: i64, patient: &str, kind: &str, params: &Value) -> NotificationRow {
    NotificationRow {
        created_at: now,
        // A notice about no patient (a concern raised without a name) carries none.
        patient_id: (!patient.is_empty()).then(|| patient.to_string()),
        kind: kind.to_string(),
        params: params.to_string(),
        ..NotificationRow::default()
    }
}

/// One row of a notice: to whom, how, in which language.
fn row(
    base: &NotificationRow,
    recipient: &str,
    channel: &str,
    address: Option<String>,
    language: &str,
) -> NotificationRow {
    NotificationRow {
        id: uuid::Uuid::new_v4().to_string(),
        recipient: recipient.to_string(),
        channel: channel.to_string(),
        address,
        language: language.to_string(),
        ..base.clone()
    }
}

impl Notifier {
    pub fn new(api: FhirApi, clock: Arc<dyn Clock>, webhook: bool) -> Self {
        Notifier {
            api,
            clock,
            webhook,
        }
    }

    /// The language to write to someone in: their choice in the app, else (for a patient)
    /// Patient.communication, else English.
    async fn language(&self, who: &str) -> Result<String, AppError> {
        if let Some(l) = self.api.store().language_of(who).await? {
            return Ok(l);
        }
        if let Some(id) = who.strip_prefix("Patient/")
            && let Ok(p) = self
                .api
                .read(&Caller::system("coproduce:notifications"), "Patient", id)
                .await
            && let Ok(v) = p.json()
            && let Some(l) = v["communication"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["preferred"] == true).or(c.first()))
                .and_then(|c| c["language"]["coding"][0]["code"].as_str())
        {
            return Ok(l.to_string());
        }
        Ok("en".into())
    }

    /// Rows telling the patient and the family members whose active grant covers `part` (the
    /// family member who acted among them, whatever their grant).
    pub async fn to_patient(
        &self,
        patient: &str,
        actor: &str,
        part: Part,
        kind: &str,
        params: Value,
    ) -> Result<Vec<NotificationRow>, AppError> {
        let mut out = self
            .rows_for(patient, &[format!("Patient/{patient}")], kind, &params)
            .await?;
        let mut family = self.family(patient, part).await?;
        if actor.starts_with("RelatedPerson/") && !family.iter().any(|f| f == actor) {
            family.push(actor.to_string());
        }
        out.extend(
            self.to_family_members(patient, &family, kind, params)
                .await?,
        );
        Ok(out)
    }

    /// Rows telling one person about something of their own that is in no chart (the answer
    /// to a concern they raised with their name).
    pub async fn to_reporter(
        &self,
        reporter: &str,
        kind: &str,
        params: Value,
    ) -> Result<Vec<NotificationRow>, AppError> {
        self.rows_for("", &[reporter.to_string()], kind, &params)
            .await
    }

    /// Rows telling only the family members whose active grant covers `part` (news of the
    /// patient they follow: a rescue pack started, a reading that needs help now).
    pub async fn to_family(
        &self,
        patient: &str,
        part: Part,
        kind: &str,
        params: Value,
    ) -> Result<Vec<NotificationRow>, AppError> {
        let family = self.family(patient, part).await?;
        self.to_family_members(patient, &family, kind, params).await
    }

    /// A family notice names the patient, so that it reads the same in an email.
    async fn to_family_members(
        &self,
        patient: &str,
        family: &[String],
        kind: &str,
        mut params: Value,
    ) -> Result<Vec<NotificationRow>, AppError> {
        if family.is_empty() {
            return Ok(Vec::new());
        }
        let sys = Caller::system("coproduce:notifications");
        let name = person_name(&self.api.read(&sys, "Patient", patient).await?.json()?);
        params["patient_name"] = Value::String(name);
        self.rows_for(patient, family, kind, &params).await
    }

    /// The family members (RelatedPerson references) with an active grant on the patient
    /// that covers `part`.
    async fn family(&self, patient: &str, part: Part) -> Result<Vec<String>, AppError> {
        let sys = Caller::system("coproduce:notifications");
        let now = self.clock.now();
        let consents = self
            .api
            .search_all(
                &sys,
                "Consent",
                &[
                    ("patient".to_string(), format!("Patient/{patient}")),
                    ("status".to_string(), "active".to_string()),
                ],
            )
            .await?;
        let mut out = Vec::new();
        for c in consents {
            let v = c.json()?;
            let Some(grant) = grant_of(&v, now) else {
                continue;
            };
            if !grant.is_active(now) || !grant.parts.contains(&part) {
                continue;
            }
            for actor in v["provision"]["actor"].as_array().into_iter().flatten() {
                if let Some(r) = actor["reference"]["reference"].as_str()
                    && r.starts_with("RelatedPerson/")
                    && !out.iter().any(|o| o == r)
                {
                    out.push(r.to_string());
                }
            }
        }
        Ok(out)
    }

    async fn rows_for(
        &self,
        patient: &str,
        recipients: &[String],
        kind: &str,
        params: &Value,
    ) -> Result<Vec<NotificationRow>, AppError> {
        let now = unix_millis(self.clock.now());
        let base = notice(now, patient, kind, params);
        let mut out = Vec::new();
        for r in recipients {
            let lang = self.language(r).await?;
            out.push(row(&base, r, "inapp", None, &lang));
            if let Some(email) = self.api.store().notification_email(r).await? {
                out.push(row(&base, r, "email", Some(email), &lang));
            }
        }
        Ok(out)
    }

    /// Rows telling a team role (in the app, and by webhook when the site has one).
    pub fn to_team(
        &self,
        patient: &str,
        role: Role,
        kind: &str,
        params: Value,
        now: time::OffsetDateTime,
    ) -> Vec<NotificationRow> {
        let now = unix_millis(now);
        let r = role_recipient(role);
        let base = notice(now, patient, kind, &params);
        let mut out = vec![row(&base, &r, "inapp", None, "en")];
        if self.webhook {
            out.push(row(&base, &r, "webhook", None, "en"));
        }
        out
    }

    /// Whose inbox a caller reads, and for which patients (None: any).
    fn inbox_of(&self, caller: &Caller) -> (Vec<String>, Option<Vec<String>>) {
        let now = self.clock.now();
        match &caller.actor.who {
            Who::Patient { patient } => (vec![format!("Patient/{patient}")], None),
            Who::Family { .. } => (caller.fhir_ref.iter().cloned().collect(), None),
            Who::TeamMember { role, .. } => {
                let patients = match reach(&caller.actor, Action::Search, "Task", true, now) {
                    Reach::Patients(p) => Some(p.into_iter().collect()),
                    Reach::Everything => None,
                    Reach::AddressedTo(_) | Reach::Nothing(_) => Some(Vec::new()),
                };
                let mut mine = vec![role_recipient(*role)];
                mine.extend(caller.fhir_ref.iter().cloned());
                (mine, patients)
            }
            _ => (Vec::new(), Some(Vec::new())),
        }
    }

    /// The caller's in-app notifications, newest first; the read is audited.
    pub async fn inbox(
        &self,
        caller: &Caller,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, AppError> {
        let (recipients, patients) = self.inbox_of(caller);
        let rows = self
            .api
            .store()
            .notifications_for(&recipients, patients.as_deref(), limit)
            .await?;
        if !rows.is_empty() {
            let mut touched: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.patient_id.as_deref())
                .collect();
            touched.sort_unstable();
            touched.dedup();
            self.api
                .store()
                .audit(&AuditEntry {
                    at: unix_millis(self.clock.now()),
                    actor: caller.label.clone(),
                    action: "read".into(),
                    resource_type: Some("notifications".into()),
                    patients: Some(touched.join(" ")),
                    outcome: "allowed".into(),
                    detail: Some(format!("{} notifications", rows.len())),
                    ..AuditEntry::default()
                })
                .await?;
        }
        self.name_patients(caller, rows).await
    }

    /// A team notice names its patient (`patient_name` among its parameters): each patient's
    /// name read once, with the reader's rights; one out of their reach stays "a patient".
    async fn name_patients(
        &self,
        caller: &Caller,
        mut rows: Vec<NotificationRow>,
    ) -> Result<Vec<NotificationRow>, AppError> {
        let mut names: HashMap<String, Option<String>> = HashMap::new();
        for n in &mut rows {
            let Some(pid) = n.patient_id.clone() else {
                continue;
            };
            if !n.recipient.starts_with("role:") {
                continue;
            }
            if !names.contains_key(&pid) {
                let name = match self.api.read(caller, "Patient", &pid).await {
                    Ok(stored) => Some(person_name(&stored.json()?)),
                    Err(AppError::Forbidden(_) | AppError::NotFound(_) | AppError::Gone(_)) => None,
                    Err(e) => return Err(e),
                };
                names.insert(pid.clone(), name);
            }
            if let Some(Some(name)) = names.get(&pid) {
                let mut params: Value =
                    serde_json::from_str(&n.params).unwrap_or_else(|_| serde_json::json!({}));
                params["patient_name"] = serde_json::json!(name);
                n.params = params.to_string();
            }
        }
        Ok(rows)
    }

    /// Marks one of the caller's notifications read (one their inbox shows); false if it is
    /// not theirs.
    pub async fn mark_read(&self, caller: &Caller, id: &str) -> Result<bool, AppError> {
        let (recipients, patients) = self.inbox_of(caller);
        Ok(self
            .api
            .store()
            .mark_notification_read(
                id,
                &recipients,
                patients.as_deref(),
                unix_millis(self.clock.now()),
            )
            .await?)
    }

    /// The email address the caller wants notifications at.
    pub async fn email(&self, caller: &Caller) -> Result<Option<String>, AppError> {
        match &caller.fhir_ref {
            Some(r) => Ok(self.api.store().notification_email(r).await?),
            None => Ok(None),
        }
    }

    /// Sets (or with an empty address clears) where the caller wants email.
    pub async fn set_email(&self, caller: &Caller, address: &str) -> Result<(), AppError> {
        let Some(r) = &caller.fhir_ref else {
            return Err(AppError::Forbidden(
                "this account has no record to send notifications about".into(),
            ));
        };
        let address = address.trim();
        if !address.is_empty() && !plausible_email(address) {
            return Err(AppError::Invalid(coproduce_fhir::OperationOutcome::error(
                coproduce_fhir::IssueCode::Value,
                "email",
                format!("'{address}' is not an email address"),
            )));
        }
        self.api
            .store()
            .set_notification_email(r, (!address.is_empty()).then_some(address))
            .await?;
        Ok(())
    }

    /// Notifications waiting for delivery on a channel (`email`, `webhook`).
    pub async fn pending(
        &self,
        channel: &str,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, AppError> {
        Ok(self
            .api
            .store()
            .pending_notifications(channel, MAX_ATTEMPTS, limit)
            .await?)
    }

    /// Records a delivery attempt.
    pub async fn delivered(&self, id: &str, error: Option<&str>) -> Result<(), AppError> {
        Ok(self
            .api
            .store()
            .notification_attempt(id, unix_millis(self.clock.now()), error)
            .await?)
    }
}

/// Something@something.tld, without spaces: enough to catch a typing slip.
pub fn plausible_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
                && !domain.contains('@')
        }
        None => false,
    }
}

/// The signature of a webhook delivery: HMAC-SHA256 over `"{timestamp}.{body}"` with the
/// site's secret, as lowercase hex. The receiver recomputes it to know the call is ours and
/// unaltered, and checks the timestamp to refuse replays.
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A notification's subject and text, in its language, with its times in the calendar's
/// zone (the site's). A team notice names the patient when `patient_name` is among its
/// parameters ([`Notifier::inbox`] adds it for the patients the reader may see), else "a
/// patient".
pub fn render(n: &NotificationRow, calendar: Arc<BusinessCalendar>) -> (String, String) {
    let t = Tr::new(&n.language).in_zone(calendar);
    let params: Value = serde_json::from_str(&n.params).unwrap_or(Value::Null);
    let text = |k: &str| params[k].as_str().map(str::to_string);
    let at = |k: &str| {
        params[k]
            .as_str()
            .and_then(coproduce_fhir::primitives::date_range_millis)
            .map(|(ms, _)| t.when_zoned(coproduce_core::from_unix_millis(ms)))
    };
    let alert = text("alert").map(|k| t.t(&format!("alert-{k}")));
    let mut args: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("due", at("due").or_else(|| at("contact_due"))),
        ("until", at("glucose_until")),
        (
            "task",
            text("task").map(|k| {
                t.arg(
                    &format!("task-{k}"),
                    "alert",
                    alert.as_deref().unwrap_or(""),
                )
            }),
        ),
        ("alert", alert.clone()),
        (
            "patient",
            Some(text("patient_name").unwrap_or_else(|| t.t("notice-a-patient"))),
        ),
        (
            "role",
            text("missed_by").map(|r| t.t(&format!("owner-{r}"))),
        ),
        ("unit", text("unit")),
    ] {
        if let Some(v) = value {
            args.push((name, v));
        }
    }
    // Each reader has their own wording: the team's, the family member's (who reads of the
    // patient by name), the patient's.
    // A deadline in no patient's chart (a concern raised without a name) names no patient.
    let kind = match (n.kind.as_str(), &n.patient_id) {
        ("deadline-escalated" | "deadline-missed", None) => format!("{}-unattached", n.kind),
        _ => n.kind.clone(),
    };
    let key = if n.recipient.starts_with("role:") {
        format!("team-notice-{kind}")
    } else if n.recipient.starts_with("RelatedPerson/") {
        format!("family-notice-{kind}")
    } else {
        format!("notice-{kind}")
    };
    (t.t("notice-subject"), t.with(&key, &args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Known answer from an independent implementation (Python's hmac module):
        // hmac.new(b"Jefe", b"17.body", hashlib.sha256).hexdigest()
        let sig = webhook_signature(b"Jefe", 17, b"body");
        assert_eq!(
            sig,
            "8aaa989c6dda3dae11734f9b2c3d5c4ba297a7205a3ba8be6ebf3c61f2306fc8"
        );
        assert_eq!(sig.len(), 64);
        assert_ne!(sig, webhook_signature(b"Jefe", 18, b"body"));
        assert_ne!(sig, webhook_signature(b"jefe", 17, b"body"));
        assert_ne!(sig, webhook_signature(b"Jefe", 17, b"bodY"));
    }

    #[test]
    fn email_addresses_are_checked_for_slips() {
        assert!(plausible_email("ana.silva@example.org"));
        for bad in [
            "ana",
            "ana@",
            "@example.org",
            "ana@example",
            "ana @example.org",
            "a@b@c.org",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }
}
