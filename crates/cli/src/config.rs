//! Configuration: defaults, then `coproduce.toml`, then `COPRODUCE_*` environment variables,
//! then command-line flags (applied by the caller).

use anyhow::{Context, Result};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Database URL.
    pub db: String,
    /// Listen address.
    pub addr: String,
    /// The address the site is reached at, for the links and locations it writes (default:
    /// http:// and the listen address).
    pub public_url: Option<String>,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// The most entries a batch or transaction Bundle sent to the API may carry.
    pub bundle_entries: usize,
    /// Seconds a client may take to send a request's body.
    pub body_timeout_seconds: u64,
    /// Seconds a client may take to send a request's headers.
    pub header_timeout_seconds: u64,
    /// Seconds a request may run on the server before it is stopped (503).
    pub request_timeout_seconds: u64,
    /// The most connections served at once (one more is answered 503).
    pub max_connections: usize,
    /// Logs as JSON lines instead of text.
    pub log_json: bool,
    /// Session cookies without the Secure flag, for plain-HTTP development on localhost only.
    pub insecure_cookies: bool,
    /// A TLS-terminating proxy on another machine is the only way to this server: `serve`
    /// may then listen beyond the loopback address (it has no TLS of its own).
    pub behind_proxy: bool,
    /// A sign-in session ends after this many minutes without a request.
    pub session_idle_minutes: i64,
    /// A sign-in session ends this many hours after sign-in.
    pub session_absolute_hours: i64,
    /// A patient-entered reading not reviewed by the team within this many days is flagged.
    pub review_within_days: i64,
    /// How long the team has to answer a goal the patient's side proposed (the scorecard).
    pub goal_answer_within: String,
    /// The background jobs (deadlines, email, webhooks) run this often.
    pub jobs_every_seconds: u64,
    /// The site's time zone for business hours: an IANA name ("America/New_York", daylight
    /// saving followed) or a fixed offset ("UTC", "-05:00").
    pub business_time_zone: String,
    pub business_open: String,
    pub business_close: String,
    pub business_days: Vec<String>,
    /// Site holidays, YYYY-MM-DD.
    pub holidays: Vec<String>,
    /// A protocol file replacing the shipped COPD rescue pack.
    pub protocol_file: Option<String>,
    /// The clinic's phone number, shown as a link to call on the action plan, the red zone
    /// and every "call your team" message (none: the messages say "your clinic").
    pub clinic_phone: Option<String>,
    /// The emergency number patients are told to call.
    pub emergency_number: String,
    /// The readings that need a response now (mg/dL and mmHg; see docs/readings.md).
    pub glucose_low: f64,
    pub glucose_severe_low: f64,
    pub glucose_high: f64,
    pub glucose_very_high: f64,
    pub systolic_crisis: f64,
    pub diastolic_crisis: f64,
    /// Speak Up (see docs/speak-up.md): the time to acknowledge a routine concern on an
    /// inpatient and on an outpatient unit (a unit may set its own), the time to answer once
    /// acknowledged, and the categories a reporter picks from.
    pub concern_inpatient_within: String,
    pub concern_outpatient_within: String,
    pub concern_answer_within: String,
    pub concern_categories: Vec<String>,
    /// Community referrals (see docs/social-needs.md): the time the organisation has to
    /// accept, the follow-up once it has, the chain of team roles told in turn when one is
    /// missed, and the time each later step of the chain has.
    pub referral_accept_within: String,
    pub referral_follow_up_within: String,
    pub referral_escalation: Vec<String>,
    pub referral_step_within: String,
    /// Prescribing (see docs/prescribing.md): a fill dearer than this (US dollars per 30
    /// days) is a cost barrier; and per barrier kind (afford, reach, understand, language,
    /// other), its chain of steps, each "ROLE within PERIOD".
    pub afford_above: String,
    pub barrier_escalation: std::collections::BTreeMap<String, Vec<String>>,
    /// The quality measures on the analyst's pages: measure name (cms122, cms165) to the
    /// path of a measure bundle replacing the official one this build carries.
    pub measure_bundles: std::collections::BTreeMap<String, String>,
    /// The SMTP relay for email notifications (none: no email).
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_from: String,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Redacted>,
    /// STARTTLS with a certificate check; turn off only for a relay on this machine.
    pub smtp_starttls: bool,
    /// The site's webhook for team notifications (none: no webhook), and its HMAC secret.
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<Redacted>,
    /// The site's secret key (base64 of 32 bytes; `coproduce secret-key` makes one): it seals
    /// second-factor seeds in the database. Keep it outside the database and its backups.
    pub secret_key: Option<Redacted>,
}

/// A secret in the configuration: read like a string, never printed.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db: "sqlite://coproduce.db".into(),
            addr: "127.0.0.1:8080".into(),
            public_url: None,
            body_limit: 16 * 1024 * 1024,
            bundle_entries: 1000,
            body_timeout_seconds: 10,
            header_timeout_seconds: 10,
            request_timeout_seconds: 60,
            max_connections: 512,
            log_json: false,
            insecure_cookies: false,
            behind_proxy: false,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            review_within_days: 7,
            goal_answer_within: "5 business days".into(),
            jobs_every_seconds: 30,
            business_time_zone: "UTC".into(),
            business_open: "08:00".into(),
            business_close: "17:00".into(),
            business_days: ["monday", "tuesday", "wednesday", "thursday", "friday"]
                .map(String::from)
                .to_vec(),
            holidays: Vec::new(),
            protocol_file: None,
            clinic_phone: None,
            emergency_number: "911".into(),
            glucose_low: 70.0,
            glucose_severe_low: 54.0,
            glucose_high: 250.0,
            glucose_very_high: 300.0,
            systolic_crisis: 180.0,
            diastolic_crisis: 120.0,
            concern_inpatient_within: "4 hours".into(),
            concern_outpatient_within: "2 business days".into(),
            concern_answer_within: "5 business days".into(),
            concern_categories: coproduce_core::speakup::Rules::default().categories,
            referral_accept_within: "2 business days".into(),
            referral_follow_up_within: "14 days".into(),
            referral_escalation: coproduce_core::social::referral::Rules::CHAIN
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            referral_step_within: "1 business day".into(),
            afford_above: "20.00".into(),
            barrier_escalation: coproduce_core::prescribing::check::BarrierRules::default()
                .chains
                .iter()
                .map(|(kind, chain)| {
                    (
                        kind.as_str().to_string(),
                        chain
                            .steps()
                            .iter()
                            .map(|s| format!("{} within {}", s.role.as_str(), s.within))
                            .collect(),
                    )
                })
                .collect(),
            measure_bundles: std::collections::BTreeMap::new(),
            smtp_host: None,
            smtp_port: 587,
            smtp_from: "coproduce <coproduce@localhost>".into(),
            smtp_username: None,
            smtp_password: None,
            smtp_starttls: true,
            webhook_url: None,
            webhook_secret: None,
            secret_key: None,
        }
    }
}

impl Config {
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                anyhow::ensure!(
                    f.exists(),
                    "the configuration file {} does not exist",
                    f.display()
                );
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file("coproduce.toml")),
        }
        fig.merge(Env::prefixed("COPRODUCE_").only(&[
            "db",
            "addr",
            "public_url",
            "body_limit",
            "bundle_entries",
            "body_timeout_seconds",
            "header_timeout_seconds",
            "request_timeout_seconds",
            "max_connections",
            "log_json",
            "insecure_cookies",
            "behind_proxy",
            "session_idle_minutes",
            "session_absolute_hours",
            "review_within_days",
            "goal_answer_within",
            "jobs_every_seconds",
            "business_time_zone",
            "business_open",
            "business_close",
            "protocol_file",
            "clinic_phone",
            "emergency_number",
            "smtp_host",
            "smtp_port",
            "smtp_from",
            "smtp_username",
            "smtp_password",
            "smtp_starttls",
            "webhook_url",
            "webhook_secret",
            "secret_key",
            "concern_inpatient_within",
            "concern_outpatient_within",
            "concern_answer_within",
            "referral_accept_within",
            "referral_follow_up_within",
            "referral_step_within",
            "afford_above",
        ]))
        .extract()
        .context("reading the configuration")
    }

    /// How long the team has to answer a goal the patient's side proposed.
    pub fn goal_answer(&self) -> Result<coproduce_core::calendar::Within> {
        coproduce_core::calendar::Within::parse(&self.goal_answer_within).map_err(|e| {
            anyhow::anyhow!(
                "the configuration: goal_answer_within = '{}': {e}",
                self.goal_answer_within
            )
        })
    }

    /// The team's deadlines on community referrals, from the configuration.
    pub fn referral_rules(&self) -> Result<coproduce_core::social::referral::Rules> {
        use coproduce_core::access::Role;
        use coproduce_core::calendar::Within;
        let within = |key: &str, v: &str| {
            Within::parse(v).map_err(|e| anyhow::anyhow!("the configuration: {key} = '{v}': {e}"))
        };
        let roles = self
            .referral_escalation
            .iter()
            .map(|r| {
                Role::parse(r).ok_or_else(|| {
                    anyhow::anyhow!("the configuration: referral_escalation: '{r}' is not a role")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        coproduce_core::social::referral::Rules::new(
            &roles,
            within("referral_accept_within", &self.referral_accept_within)?,
            within("referral_follow_up_within", &self.referral_follow_up_within)?,
            within("referral_step_within", &self.referral_step_within)?,
        )
        .map_err(|e| anyhow::anyhow!("the configuration: referral_escalation: {e}"))
    }

    /// The partnership check's threshold and each barrier kind's chain.
    pub fn prescribing_rules(&self) -> Result<coproduce_app::prescribing::Rules> {
        use coproduce_core::access::Role;
        use coproduce_core::calendar::Within;
        use coproduce_core::deadline::{Escalation, Step};
        use coproduce_core::prescribing::check::{BarrierRules, CheckRules, Kind};
        let afford_above = coproduce_core::prescribing::Money::parse(&self.afford_above)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the configuration: afford_above = '{}' is not an amount in dollars",
                    self.afford_above
                )
            })?;
        let mut barriers = BarrierRules::default();
        for (kind, steps) in &self.barrier_escalation {
            let bad = |why: String| {
                anyhow::anyhow!("the configuration: barrier_escalation.{kind}: {why}")
            };
            let k = Kind::parse(kind).ok_or_else(|| bad("not a barrier kind".into()))?;
            let steps = steps
                .iter()
                .map(|step| {
                    let (role, within) = step
                        .split_once(" within ")
                        .ok_or_else(|| bad(format!("'{step}' is not 'ROLE within PERIOD'")))?;
                    Ok(Step {
                        role: Role::parse(role.trim())
                            .filter(|r| r.is_team())
                            .ok_or_else(|| bad(format!("'{role}' is not a care-team role")))?,
                        within: Within::parse(within.trim()).map_err(|e| bad(e.to_string()))?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            barriers
                .chains
                .insert(k, Escalation::new(steps).map_err(|e| bad(e.to_string()))?);
        }
        Ok(coproduce_app::prescribing::Rules {
            check: CheckRules {
                afford_above,
                ..CheckRules::default()
            },
            barriers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn environment_overrides_the_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "coproduce.toml",
                "addr = \"127.0.0.1:9000\"\nbody_limit = 1000",
            )?;
            jail.set_env("COPRODUCE_BODY_LIMIT", "2000");
            // The deadlines the docs name an environment variable for take it.
            jail.set_env("COPRODUCE_CONCERN_ANSWER_WITHIN", "3 business days");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.concern_answer_within, "3 business days");
            assert_eq!(c.addr, "127.0.0.1:9000");
            assert_eq!(c.body_limit, 2000);
            assert_eq!(c.db, "sqlite://coproduce.db");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn barrier_chains_and_the_cost_threshold_come_from_the_file_and_a_bad_one_is_named() {
        use coproduce_core::access::Role;
        use coproduce_core::calendar::Within;
        use coproduce_core::prescribing::check::Kind;
        figment::Jail::expect_with(|jail| {
            let defaults = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                defaults.prescribing_rules().map_err(|e| e.to_string())?,
                coproduce_app::prescribing::Rules::default()
            );
            jail.create_file(
                "coproduce.toml",
                "afford_above = \"35\"\n[barrier_escalation]\nreach = [\"social-worker within 4 business hours\", \"clinic-lead within 1 business day\"]",
            )?;
            let r = Config::load(None)
                .map_err(|e| e.to_string())?
                .prescribing_rules()
                .map_err(|e| e.to_string())?;
            assert_eq!(r.check.afford_above.to_string(), "$35.00");
            let reach = r.barriers.chain(Kind::Reach);
            assert_eq!(
                (reach.steps()[0].role, reach.steps()[0].within),
                (Role::SocialWorker, Within::BusinessHours(4))
            );
            // The kinds the file does not name keep their defaults.
            assert_eq!(
                r.barriers.chain(Kind::Afford).steps()[0].role,
                Role::Pharmacist
            );
            for (file, named) in [
                ("afford_above = \"$20\"", "afford_above"),
                (
                    "[barrier_escalation]\ncost = [\"pharmacist within 1 day\"]",
                    "not a barrier kind",
                ),
                (
                    "[barrier_escalation]\nreach = [\"patient within 1 day\"]",
                    "not a care-team role",
                ),
                (
                    "[barrier_escalation]\nreach = [\"pharmacist soon\"]",
                    "ROLE within PERIOD",
                ),
                (
                    "[barrier_escalation]\nreach = [\"pharmacist within soon\"]",
                    "barrier_escalation.reach",
                ),
            ] {
                jail.create_file("coproduce.toml", file)?;
                let e = Config::load(None)
                    .map_err(|e| e.to_string())?
                    .prescribing_rules()
                    .unwrap_err()
                    .to_string();
                assert!(e.contains(named), "{file}: {e}");
            }
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn referral_chains_come_from_the_file_and_a_bad_one_is_named() {
        use coproduce_core::access::Role;
        use coproduce_core::calendar::Within;
        figment::Jail::expect_with(|jail| {
            let defaults = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                defaults.referral_rules().map_err(|e| e.to_string())?,
                coproduce_core::social::referral::Rules::default()
            );
            jail.create_file(
                "coproduce.toml",
                "referral_escalation = [\"social-worker\", \"clinic-lead\"]\nreferral_accept_within = \"3 business days\"",
            )?;
            jail.set_env("COPRODUCE_REFERRAL_STEP_WITHIN", "4 business hours");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            let r = c.referral_rules().map_err(|e| e.to_string())?;
            let steps = r.accept.steps();
            assert_eq!(
                steps.iter().map(|s| s.role).collect::<Vec<_>>(),
                vec![Role::SocialWorker, Role::ClinicLead]
            );
            assert_eq!(steps[0].within, Within::BusinessDays(3));
            assert_eq!(steps[1].within, Within::BusinessHours(4));
            assert_eq!(r.follow_up.steps()[0].within, Within::Days(14));
            jail.create_file("coproduce.toml", "referral_escalation = [\"partner\"]")?;
            let c = Config::load(None).map_err(|e| e.to_string())?;
            let e = c.referral_rules().unwrap_err().to_string();
            assert!(
                e.contains("referral_escalation") && e.contains("care-team"),
                "{e}"
            );
            jail.create_file("coproduce.toml", "referral_accept_within = \"soon\"")?;
            let c = Config::load(None).map_err(|e| e.to_string())?;
            let e = c.referral_rules().unwrap_err().to_string();
            assert!(e.contains("referral_accept_within = 'soon'"), "{e}");
            Ok(())
        });
    }
}
