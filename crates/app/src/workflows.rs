//! The workflows put together: the rules each one registers with the FHIR API, their
//! use-cases over one API with the site's settings, and the background work they need. The
//! API and each workflow know nothing of one another; this is the one place that knows them
//! all (with `demo`, which plays the people).

use crate::care::Care;
use crate::deadlines::Watcher;
use crate::error::AppError;
use crate::fhir_api::{FhirApi, WriteRules};
use crate::import::Importer;
use crate::jobs::{Delivery, Jobs};
use crate::notify::Notifier;
use crate::prescribing::Prescribing;
use crate::rescue::Rescue;
use crate::rescue::protocol::ProtocolDef;
use crate::social::Social;
use crate::speakup::SpeakUp;
use coproduce_core::Clock;
use coproduce_core::calendar::BusinessCalendar;
use coproduce_core::care::readings::ReviewRules;
use coproduce_core::care::safety::SafetyThresholds;
use coproduce_core::speakup::Rules as SpeakUpRules;
use coproduce_store::Store;
use std::sync::Arc;

/// Every rule the workflows add to writes (readings' plausibility and review tagging on
/// Observation; later a prescribing check, a screening's scoring, a concern's rules).
pub fn write_rules() -> WriteRules {
    WriteRules::new(
        crate::care::write_rules()
            .into_iter()
            .chain(crate::social::write_rules())
            .chain(crate::prescribing::write_rules()),
    )
}

impl FhirApi {
    /// The API over a store with every workflow's write rules.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        FhirApi::with_rules(store, clock, write_rules())
    }
}

impl Importer {
    /// An importer with every workflow's write rules; `actor` names who imports in the audit
    /// trail (`cli:import`, ...).
    pub fn new(store: Store, clock: Arc<dyn Clock>, actor: &str) -> Self {
        Importer::with_rules(store, clock, actor, write_rules())
    }
}

/// The site's settings for the workflows.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How soon the team reviews a patient's reading.
    pub review: ReviewRules,
    /// How soon the team answers a goal the patient's side proposed.
    pub goal_answer: coproduce_core::calendar::Within,
    /// Working days and hours, holidays and the time zone the deadlines count in.
    pub calendar: BusinessCalendar,
    /// The self-started treatment protocol (the COPD rescue pack unless the site has its own).
    pub protocol: ProtocolDef,
    /// Whether team notifications also go to the site's webhook.
    pub webhook: bool,
    /// The readings that need a response now.
    pub safety: SafetyThresholds,
    /// Speak Up's deadlines, escalation chains and categories.
    pub speakup: SpeakUpRules,
    /// The team's deadlines on a community referral.
    pub referrals: coproduce_core::social::referral::Rules,
    /// The partnership check's rules and who works each kind of barrier by when.
    pub prescribing: crate::prescribing::Rules,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            review: ReviewRules::default(),
            goal_answer: crate::care::GOAL_ANSWER_WITHIN,
            calendar: BusinessCalendar::default(),
            protocol: ProtocolDef::copd(),
            webhook: false,
            safety: SafetyThresholds::default(),
            speakup: SpeakUpRules::default(),
            referrals: Default::default(),
            prescribing: Default::default(),
        }
    }
}

/// Every workflow's use-cases over one API.
#[derive(Debug, Clone)]
pub struct Workflows {
    pub api: FhirApi,
    pub care: Care,
    pub rescue: Rescue,
    pub speakup: SpeakUp,
    pub social: Social,
    pub prescribing: Prescribing,
    pub notifier: Notifier,
}

impl Workflows {
    pub fn new(api: FhirApi, settings: &Settings) -> Self {
        let clock = api.clock();
        let mut care = Care::new(api.clone(), clock.clone());
        care.review = settings.review;
        care.goal_answer = settings.goal_answer;
        care.safety = settings.safety;
        let notifier = Notifier::new(api.clone(), clock.clone(), settings.webhook);
        care.notifier = notifier.clone();
        care.calendar = Arc::new(settings.calendar.clone());
        let speakup = SpeakUp::new(
            api.clone(),
            clock.clone(),
            settings.speakup.clone(),
            Arc::new(settings.calendar.clone()),
            notifier.clone(),
        );
        let social = Social::new(
            api.clone(),
            clock.clone(),
            Arc::new(settings.calendar.clone()),
            settings.referrals.clone(),
        );
        let rescue = Rescue::new(
            api.clone(),
            clock,
            settings.protocol.clone(),
            settings.calendar.clone(),
            notifier.clone(),
        );
        Workflows {
            prescribing: Prescribing::new(
                api.clone(),
                Arc::new(settings.calendar.clone()),
                settings.prescribing.clone(),
                notifier.clone(),
            ),
            api,
            care,
            rescue,
            speakup,
            social,
            notifier,
        }
    }

    /// The site's business calendar: its working time and the zone times are shown in.
    pub fn calendar(&self) -> Arc<BusinessCalendar> {
        self.rescue.calendar.clone()
    }

    /// The deadline watcher with every workflow's sweeps.
    pub fn watcher(&self) -> Watcher {
        let prescribing = self.prescribing.clone();
        self.rescue.watcher().with_sweep(Arc::new(move || {
            let prescribing = prescribing.clone();
            Box::pin(async move {
                let checked = prescribing.check_pending().await.map_err(|e| match e {
                    crate::error::CareError::App(a) => a,
                    other => AppError::Internal(other.to_string()),
                })?;
                Ok(crate::deadlines::Tick {
                    checked,
                    ..Default::default()
                })
            })
        }))
    }

    /// The background jobs: the watcher, then delivery by email and webhook.
    pub fn jobs(&self, delivery: Delivery) -> Result<Jobs, AppError> {
        Jobs::new(
            self.watcher(),
            self.notifier.clone(),
            self.api.clock(),
            self.calendar(),
            delivery,
        )
    }
}

#[cfg(test)]
mod tests {
    /// A missed deadline's notice names its Task by `task-CODE`: every team Task with a
    /// deadline has that name (a referral's was missing, and its notice showed the key). The
    /// patient files' keys are the same in every language (`i18n`'s test).
    #[test]
    fn every_task_with_a_deadline_has_a_name_in_the_messages() {
        let codes = [
            "hba1c-test",
            "urgent-reading",
            "rescue-pack-contact",
            "rescue-pack-check-in",
            "rescue-pack-not-better",
            "rescue-pack-outcome",
            "rescue-pack-replacement",
            "speakup-acknowledge",
            "speakup-answer",
            crate::social::referrals::REFERRAL_TASK,
            crate::prescribing::check::BARRIER_TASK,
        ];
        let t = crate::i18n::Tr::new("en");
        for code in codes {
            assert!(t.has(&format!("task-{code}")), "task-{code}");
        }
    }
}
