//! Social needs (CLINICAL.md section 4) as FHIR: the AHC HRSN screen is a Questionnaire kept
//! as data (`questionnaires/ahc-hrsn.json`, its wording in four languages); a screening is a
//! QuestionnaireResponse whose items are keyed by their LOINC question codes and answered with
//! LA codes, scored by `core` on every path it arrives by (see [`screening`]), which yields
//! one Observation per item, the safety total, and a proposed health concern (Condition,
//! categories health-concern and sdoh) per positive domain, all in one transaction and all
//! labelled as social needs. The patient's word on each need ("I want help", "not now",
//! "already getting help") is a Consent about sharing that need with a community
//! organisation; nothing is referred without "I want help". See docs/social-needs.md.

use crate::caller::Caller;
use crate::error::{AppError, CareError};
use crate::fhir_api::FhirApi;
use coproduce_core::Clock;
use coproduce_core::calendar::BusinessCalendar;
use coproduce_core::social::ahc::{Domain, SDOHCC_CODES};
use coproduce_core::social::{Choice, ahc, records_choice, referral};
use coproduce_fhir::search::{SENSITIVITY_SYSTEM, SOCIAL_NEEDS_LABEL};
use coproduce_store::Stored;
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;

pub mod directory;
pub mod measures;
pub mod partner;
pub mod questionnaire;
pub mod referrals;
pub mod screening;
pub mod synthetic;

pub use partner::Addressed;
pub use questionnaire::{AnswerOption, Question, questionnaire};
pub use referrals::Referral;
pub use screening::write_rules;

/// coproduce's AHC HRSN core Questionnaire.
pub const AHC_URL: &str = "https://coproduce.health/fhir/Questionnaire/ahc-hrsn";
/// The questionnaires whose responses are the AHC HRSN core screen.
pub const AHC_QUESTIONNAIRES: [&str; 2] = [
    AHC_URL,
    "http://hl7.org/fhir/us/core/Questionnaire/ahc-hrsn-screening-example",
];
/// The code system of the needs (one code per AHC domain).
pub const NEED_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/social-need";
/// On a Consent: the patient's choice about one need.
pub const CHOICE_EXT: &str = "https://coproduce.health/fhir/StructureDefinition/social-need-choice";

type Result<T> = std::result::Result<T, CareError>;

/// The screen's domain a health concern is about (its code in [`NEED_SYSTEM`]), if any.
pub(crate) fn need_domain(condition: &Value) -> Option<Domain> {
    need_of(&condition["code"])
}

/// The domain a CodeableConcept names in [`NEED_SYSTEM`], if any.
pub(crate) fn need_of(concept: &Value) -> Option<Domain> {
    concept["coding"]
        .as_array()?
        .iter()
        .find(|c| c["system"] == NEED_SYSTEM)
        .and_then(|c| c["code"].as_str())
        .and_then(Domain::parse)
}

/// Social needs' use-cases over the API.
#[derive(Clone)]
pub struct Social {
    api: FhirApi,
    clock: Arc<dyn Clock>,
    calendar: Arc<BusinessCalendar>,
    /// The team's deadlines on a referral.
    pub referral_rules: Arc<referral::Rules>,
}

impl std::fmt::Debug for Social {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Social").finish_non_exhaustive()
    }
}

/// One need the screen found, with the patient's word on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The Condition's id.
    pub id: String,
    pub domain: Option<Domain>,
    /// The need in English, for a need that is not one of the screen's domains.
    pub text: String,
    /// unconfirmed (proposed by a screen), confirmed, refuted...
    pub verification: String,
    pub recorded: Option<String>,
    pub choice: Option<Choice>,
}

/// A screening in progress or done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screening {
    pub id: String,
    pub status: String,
    pub authored: Option<String>,
    /// `(question code, answer codes)` for every item answered.
    pub answers: Vec<(String, Vec<String>)>,
}

impl Screening {
    fn of(stored: &Stored) -> std::result::Result<Screening, AppError> {
        let v = stored.json()?;
        let answers = v["item"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| {
                let code = i["linkId"].as_str()?.trim_start_matches('/').to_string();
                let chosen: Vec<String> = i["answer"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["valueCoding"]["code"].as_str().map(str::to_string))
                    .collect();
                (!chosen.is_empty()).then_some((code, chosen))
            })
            .collect();
        Ok(Screening {
            id: stored.id.clone(),
            status: v["status"].as_str().unwrap_or_default().to_string(),
            authored: v["authored"].as_str().map(str::to_string),
            answers,
        })
    }

    /// The answer codes given to one question.
    pub fn chosen(&self, question: &str) -> &[String] {
        self.answers
            .iter()
            .find(|(q, _)| q == question)
            .map_or(&[], |(_, a)| a.as_slice())
    }
}

/// The social-needs service acting for a person (named in the audit trail as
/// `social:user:NAME`, and to the patient as that person).
fn on_behalf(caller: &Caller) -> Caller {
    let mut c = Caller::system(&format!("social:{}", caller.label));
    c.fhir_ref = caller.fhir_ref.clone();
    c.user_id = caller.user_id.clone();
    c
}

impl Social {
    pub fn new(
        api: FhirApi,
        clock: Arc<dyn Clock>,
        calendar: Arc<BusinessCalendar>,
        referral_rules: referral::Rules,
    ) -> Self {
        Social {
            api,
            clock,
            calendar,
            referral_rules: Arc::new(referral_rules),
        }
    }

    /// The time now, as the service's clock says.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Whether the caller may see (and so fill in) the patient's social needs, as the policy
    /// decides for a record labelled as such.
    pub fn may_see(&self, caller: &Caller, patient: &str) -> bool {
        use coproduce_core::access::{Action, Compartment, Sensitivity, Target, decide};
        decide(
            &caller.actor,
            Action::Create,
            &Target {
                resource_type: "QuestionnaireResponse",
                compartment: Compartment::Patient(patient),
                sensitivity: Sensitivity::SocialNeeds,
                addressed_to: None,
            },
            self.clock.now(),
        )
        .is_allowed()
    }

    /// The patient's latest AHC screening, in progress or done.
    pub async fn latest(&self, caller: &Caller, patient: &str) -> Result<Option<Screening>> {
        // The newest few social-needs responses (a page, whatever the record's size); those
        // to other instruments (PRAPARE, the Hunger Vital Sign) are left aside.
        let (_, found) = self
            .api
            .search(
                caller,
                "QuestionnaireResponse",
                &[
                    ("subject".into(), format!("Patient/{patient}")),
                    (
                        "_security".into(),
                        format!("{SENSITIVITY_SYSTEM}|{SOCIAL_NEEDS_LABEL}"),
                    ),
                    ("_sort".into(), "-authored,-_lastUpdated".into()),
                    ("_count".into(), "10".into()),
                ],
            )
            .await?;
        for stored in &found.matches {
            let v = stored.json()?;
            if screening::is_ahc(v["questionnaire"].as_str().unwrap_or_default()) {
                return Ok(Some(Screening::of(stored)?));
            }
        }
        Ok(None)
    }

    /// Saves the answers so far (`complete`: the last page, which scores the screen and
    /// proposes the needs it finds). Continues the screening `id` when one is in progress.
    pub async fn save(
        &self,
        caller: &Caller,
        patient: &str,
        id: Option<&str>,
        answers: &[(String, Vec<String>)],
        complete: bool,
    ) -> Result<String> {
        let screen = ahc::score(
            &answers
                .iter()
                .map(|(q, a)| (q.as_str(), a.iter().map(String::as_str).collect()))
                .collect::<Vec<_>>(),
        )
        .map_err(|e| CareError::input("social-screen-refused", e.to_string()))?;
        let q = questionnaire();
        let mut items = Vec::new();
        for question in &q.questions {
            let chosen = answers
                .iter()
                .find(|(c, _)| *c == question.code)
                .map(|(_, a)| a.as_slice())
                .unwrap_or_default();
            if chosen.is_empty() {
                continue;
            }
            let answer: Vec<Value> = chosen
                .iter()
                .map(|c| {
                    let display = question
                        .options
                        .iter()
                        .find(|o| o.code == *c)
                        .map(|o| o.text("en"))
                        .unwrap_or_default();
                    json!({"valueCoding": {"system": "http://loinc.org", "code": c, "display": display}})
                })
                .collect();
            items.push(
                json!({"linkId": question.code, "text": question.text("en"), "answer": answer}),
            );
        }
        if let Some(total) = screen.safety_total {
            items.push(json!({"linkId": ahc::SAFETY_TOTAL, "text": "Safety total score", "answer": [{"valueInteger": total}]}));
        }
        let now = coproduce_store::Stored::instant(self.clock.now());
        let mut qr = json!({
            "resourceType": "QuestionnaireResponse",
            "questionnaire": AHC_URL,
            "status": if complete { "completed" } else { "in-progress" },
            "subject": {"reference": format!("Patient/{patient}")},
            "authored": now,
        });
        if let Some(r) = &caller.fhir_ref {
            qr["author"] = json!({"reference": r});
        }
        if !items.is_empty() {
            qr["item"] = json!(items);
        }
        screening::label(&mut qr);
        let body = |v: &Value| serde_json::to_vec(v).map_err(|e| AppError::Internal(e.to_string()));
        let id = match id {
            Some(id) => {
                qr["id"] = json!(id);
                self.api
                    .update(caller, "QuestionnaireResponse", id, &body(&qr)?, None)
                    .await?
                    .stored
                    .id
            }
            None => {
                self.api
                    .create(caller, "QuestionnaireResponse", &body(&qr)?, None)
                    .await?
                    .stored
                    .id
            }
        };
        Ok(id)
    }

    /// The patient's social needs (health concerns in the sdoh category), newest first, with
    /// their choice on each.
    pub async fn needs(&self, caller: &Caller, patient: &str) -> Result<Vec<Need>> {
        let conditions = self
            .api
            .search_all(
                caller,
                "Condition",
                &[
                    ("patient".into(), format!("Patient/{patient}")),
                    ("category".into(), "sdoh".into()),
                    ("_sort".into(), "-recorded-date".into()),
                ],
            )
            .await?;
        let choices = self.choices(caller, patient).await?;
        let mut out = Vec::new();
        for c in conditions {
            let v = c.json()?;
            if v["verificationStatus"]["coding"][0]["code"] == "entered-in-error" {
                continue;
            }
            let coding = v["code"]["coding"].as_array().cloned().unwrap_or_default();
            let domain = need_domain(&v);
            let text = v["code"]["text"]
                .as_str()
                .or_else(|| coding.iter().find_map(|c| c["display"].as_str()))
                .unwrap_or("A social need")
                .to_string();
            out.push(Need {
                choice: choices
                    .iter()
                    .find(|(id, _)| *id == c.id)
                    .map(|(_, ch)| *ch),
                id: c.id,
                domain,
                text,
                verification: v["verificationStatus"]["coding"][0]["code"]
                    .as_str()
                    .unwrap_or("unconfirmed")
                    .to_string(),
                recorded: v["recordedDate"].as_str().map(str::to_string),
            });
        }
        Ok(out)
    }

    /// The choices recorded for the patient's needs: (Condition id, choice).
    async fn choices(&self, caller: &Caller, patient: &str) -> Result<Vec<(String, Choice)>> {
        let consents = self
            .api
            .search_all(
                caller,
                "Consent",
                &[("patient".into(), format!("Patient/{patient}"))],
            )
            .await?;
        let mut out = Vec::new();
        for c in consents {
            let v = c.json()?;
            let Some(choice) = v["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["url"] == CHOICE_EXT)
                .and_then(|e| e["valueCode"].as_str())
                .and_then(Choice::parse)
            else {
                continue;
            };
            for d in v["provision"]["data"].as_array().into_iter().flatten() {
                if let Some(id) = d["reference"]["reference"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("Condition/"))
                {
                    out.push((id.to_string(), choice));
                }
            }
        }
        Ok(out)
    }

    /// Records the patient's choice about one need, as a Consent to share it (or not) with a
    /// community organisation; a later choice replaces the earlier one.
    pub async fn choose(
        &self,
        caller: &Caller,
        patient: &str,
        need: &str,
        choice: Choice,
    ) -> Result<()> {
        if !records_choice(&caller.actor.who, patient) {
            return Err(CareError::input(
                "social-choice-not-yours",
                "the patient, or their care team with them, says which needs they want help with",
            ));
        }
        let condition = self.api.read(caller, "Condition", need).await?;
        if condition.patient_id.as_deref() != Some(patient) {
            return Err(AppError::NotFound(format!("Condition/{need}")).into());
        }
        let now: OffsetDateTime = self.clock.now();
        let id = screening::derived_id(need, "choice");
        let (policy, provision) = if choice.permits_referral() {
            ("OPTIN", "permit")
        } else {
            ("OPTOUT", "deny")
        };
        let mut consent = json!({
            "resourceType": "Consent",
            "id": id,
            "extension": [{"url": CHOICE_EXT, "valueCode": choice.as_str()}],
            "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IDSCL", "display": "information disclosure"}]}],
            "patient": {"reference": format!("Patient/{patient}")},
            "dateTime": coproduce_store::Stored::instant(now),
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": policy}]},
            "provision": {
                "type": provision,
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
                "data": [{"meaning": "related", "reference": {"reference": format!("Condition/{need}")}}],
            },
        });
        if let Some(r) = &caller.fhir_ref {
            consent["performer"] = json!([{"reference": r}]);
        }
        screening::label(&mut consent);
        let body = serde_json::to_vec(&consent).map_err(|e| AppError::Internal(e.to_string()))?;
        self.api
            .update(&on_behalf(caller), "Consent", &id, &body, None)
            .await?;
        Ok(())
    }
}
