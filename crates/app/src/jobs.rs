//! The server's background work, started by the binary beside the HTTP server: the deadline
//! watcher (with the workflows' sweeps), and delivery of notifications by
//! email (SMTP, with lettre) and by webhook (HTTP POST signed with HMAC-SHA256). Each pass
//! reads what is due from the database, so a restart loses nothing; a failed delivery is
//! retried on the next pass, up to a limit, with the reason kept on the row.

use crate::deadlines::{Tick, Watcher};
use crate::error::AppError;
use crate::notify::{Notifier, render, webhook_signature};
use coproduce_core::Clock;
use coproduce_core::calendar::BusinessCalendar;
use coproduce_store::{NotificationRow, Stored};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// A secret that never prints.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "(none)" } else { "***" })
    }
}

/// An SMTP relay to send email through.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    pub password: Secret,
    /// STARTTLS (and a certificate check) before anything is sent; off only for a relay on
    /// the same machine.
    pub starttls: bool,
}

/// The site's webhook: every team notification is POSTed to it, signed.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: Secret,
}

/// Where notifications are delivered beyond the app.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub smtp: Option<Smtp>,
    pub webhook: Option<Webhook>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub deadlines: Tick,
    /// Patients whose measure projection row was brought up to date.
    pub records_updated: u64,
    pub emails_sent: usize,
    pub webhooks_sent: usize,
    pub failures: usize,
}

/// The background jobs of one server.
#[derive(Clone)]
pub struct Jobs {
    watcher: Watcher,
    notifier: Notifier,
    clock: Arc<dyn Clock>,
    calendar: Arc<BusinessCalendar>,
    delivery: Delivery,
    mailer: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl Jobs {
    /// The jobs; `calendar` is the site's, whose zone the emails' times are written in.
    pub fn new(
        watcher: Watcher,
        notifier: Notifier,
        clock: Arc<dyn Clock>,
        calendar: Arc<BusinessCalendar>,
        delivery: Delivery,
    ) -> Result<Self, AppError> {
        let mailer = match &delivery.smtp {
            None => None,
            Some(s) => {
                let builder = if s.starttls {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                        .map_err(|e| AppError::Internal(format!("SMTP relay {}: {e}", s.host)))?
                } else {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                };
                let mut builder = builder.port(s.port).timeout(Some(Duration::from_secs(20)));
                if let Some(user) = &s.username {
                    builder =
                        builder.credentials(Credentials::new(user.clone(), s.password.0.clone()));
                }
                let from: Mailbox = s.from.parse().map_err(|e| {
                    AppError::Internal(format!("smtp_from '{}' is not an address: {e}", s.from))
                })?;
                Some((builder.build(), from))
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| AppError::Internal(format!("the webhook client: {e}")))?;
        Ok(Jobs {
            watcher,
            notifier,
            clock,
            calendar,
            delivery,
            mailer,
            http,
        })
    }

    /// One pass: fire due deadlines, deliver what waits, then bring the measure projection
    /// up to date (last: notices to people do not wait behind rebuilding a long record).
    pub async fn run_once(&self) -> Result<Pass, AppError> {
        let mut pass = Pass {
            deadlines: self.watcher.tick().await?,
            ..Pass::default()
        };
        if let Some((mailer, from)) = &self.mailer {
            for n in self.notifier.pending("email", 100).await? {
                let result = self.send_email(mailer, from, &n).await;
                match &result {
                    Ok(()) => pass.emails_sent += 1,
                    Err(e) => {
                        pass.failures += 1;
                        tracing::warn!(notification = %n.id, error = %e, "email not delivered");
                    }
                }
                self.notifier
                    .delivered(&n.id, result.err().as_deref())
                    .await?;
            }
        }
        if let Some(hook) = &self.delivery.webhook {
            for n in self.notifier.pending("webhook", 100).await? {
                let result = self.send_webhook(hook, &n).await;
                match &result {
                    Ok(()) => pass.webhooks_sent += 1,
                    Err(e) => {
                        pass.failures += 1;
                        tracing::warn!(notification = %n.id, error = %e, "webhook not delivered");
                    }
                }
                self.notifier
                    .delivered(&n.id, result.err().as_deref())
                    .await?;
            }
        }
        // A patient written to while their row was built stays pending, and a long record
        // rebuilt lately waits its pause: the writer does not wait for a long record here,
        // and a population run catches it up.
        pass.records_updated = self
            .watcher
            .store()
            .catch_up_patient_records(coproduce_core::unix_millis(self.clock.now()))
            .await?;
        Ok(pass)
    }

    async fn send_email(
        &self,
        mailer: &AsyncSmtpTransport<Tokio1Executor>,
        from: &Mailbox,
        n: &NotificationRow,
    ) -> Result<(), String> {
        let to: Mailbox = n
            .address
            .as_deref()
            .unwrap_or("")
            .parse()
            .map_err(|e| format!("the address is not usable: {e}"))?;
        let (subject, body) = render(n, self.calendar.clone());
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| e.to_string())?;
        mailer
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn send_webhook(&self, hook: &Webhook, n: &NotificationRow) -> Result<(), String> {
        let params: Value = serde_json::from_str(&n.params).unwrap_or(Value::Null);
        let body = json!({
            "id": n.id,
            "kind": n.kind,
            "recipient": n.recipient,
            "patient": n.patient_id.as_ref().map(|p| format!("Patient/{p}")),
            "created": Stored::instant(coproduce_core::from_unix_millis(n.created_at)),
            "params": params,
        })
        .to_string();
        let ts = self.clock.now().unix_timestamp();
        let signature = webhook_signature(hook.secret.0.as_bytes(), ts, body.as_bytes());
        let resp = self
            .http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-coproduce-timestamp", ts.to_string())
            .header("x-coproduce-signature", format!("sha256={signature}"))
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {}", resp.status()))
        }
    }

    /// Runs a pass every `every` until `stop` turns true (a pass under way is finished
    /// first, never cut); a failed pass is logged and the next one tries again.
    pub fn spawn(
        self,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                match self.run_once().await {
                    Ok(p) if p != Pass::default() => tracing::info!(?p, "background pass"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "background pass failed"),
                }
            }
        })
    }
}
