//! The screening's rule on every write of a QuestionnaireResponse (the app's pages, the FHIR
//! API, a Bundle entry, an import): an AHC HRSN response is checked answer by answer against
//! its own questions, labelled as social needs, and, once completed, scored by `core`; the
//! rule derives one Observation per item (skipped ones with a dataAbsentReason), the
//! interpersonal-safety total, and one proposed health concern per positive domain, written in
//! the same transaction. Other social-needs records (the Gravity IG's screenings, health
//! concerns, referrals) are labelled too, so the policy keeps them from a family member whose
//! grant does not cover social needs.

use super::*;
use crate::fhir_api::{Derived, Keep, Write, WriteRule, invalid};
use coproduce_core::social::ahc::{self, Domain, ITEMS, Item, SAFETY_TOTAL, SDOHCC_CODES};
use coproduce_fhir::search::{SENSITIVITY_SYSTEM, SOCIAL_NEEDS_LABEL, is_social_needs};
use coproduce_fhir::{IssueCode, Resource, parse_resource_value};

const LOINC: &str = "http://loinc.org";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CATEGORY: &str = "http://hl7.org/fhir/us/core/CodeSystem/condition-category";
/// US Core's category system, which holds `sdoh` (the IG's examples use it).
pub const US_CORE_CATEGORY: &str = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category";
const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
/// The IG's profiles all start here; a record carrying one is social needs.
const SDOHCC_PROFILES: &str = "http://hl7.org/fhir/us/sdoh-clinicalcare/";

/// The rules social needs add to writes.
pub fn write_rules() -> Vec<Arc<dyn WriteRule>> {
    let mut rules: Vec<Arc<dyn WriteRule>> = vec![
        Arc::new(ScreeningRule),
        Arc::new(super::referrals::ReferralRule),
    ];
    for rt in LABELLED {
        rules.push(Arc::new(Label(rt)));
    }
    rules
}

/// The types whose social-needs records are recognised by their content.
const LABELLED: [&str; 7] = [
    "Observation",
    "Condition",
    "Goal",
    "ServiceRequest",
    "Task",
    "Procedure",
    "Consent",
];

/// Whether the questionnaire a response answers is the AHC HRSN core screen: ours, or the
/// one US Core's examples answer.
pub fn is_ahc(questionnaire: &str) -> bool {
    let url = questionnaire.split('|').next().unwrap_or_default();
    AHC_QUESTIONNAIRES.contains(&url)
}

/// Adds the social-needs label to a record.
pub(crate) fn label(v: &mut Value) {
    if v.as_object().is_some_and(is_social_needs) {
        return;
    }
    let meta = v
        .as_object_mut()
        .map(|o| o.entry("meta").or_insert_with(|| json!({})));
    if let Some(meta) = meta.and_then(Value::as_object_mut) {
        let security = meta.entry("security").or_insert_with(|| json!([]));
        if let Some(labels) = security.as_array_mut() {
            labels.push(json!({
                "system": SENSITIVITY_SYSTEM,
                "code": SOCIAL_NEEDS_LABEL,
                "display": "Health-related social needs",
            }));
        }
    }
}

/// The `sdoh` category, in US Core's category system (the IG since 2.x) or the IG's own.
fn has_sdoh_category(v: &Value) -> bool {
    v.as_array().into_iter().flatten().any(|cc| {
        cc["coding"].as_array().into_iter().flatten().any(|c| {
            c["code"] == "sdoh" && (c["system"] == US_CORE_CATEGORY || c["system"] == SDOHCC_CODES)
        })
    })
}

/// A social-needs record by its content: the IG's `sdoh` category, one of its profiles, or
/// a response to a social-needs questionnaire.
fn is_social(v: &Value) -> bool {
    let profiled = v["meta"]["profile"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|p| p.starts_with(SDOHCC_PROFILES));
    let questionnaire = v["questionnaire"].as_str().unwrap_or_default();
    profiled
        || has_sdoh_category(&v["category"])
        || is_ahc(questionnaire)
        || questionnaire.starts_with(SDOHCC_PROFILES)
}

struct Label(&'static str);

impl WriteRule for Label {
    fn resource_type(&self) -> &'static str {
        self.0
    }

    fn check(
        &self,
        _write: &Write<'_>,
        resource: Resource,
    ) -> std::result::Result<Resource, AppError> {
        let v = resource.to_value();
        if !is_social(&v) || v.as_object().is_some_and(is_social_needs) {
            return Ok(resource);
        }
        let mut v = v;
        label(&mut v);
        Ok(parse_resource_value(v)?)
    }
}

struct ScreeningRule;

/// A response's answers, as `core` scores them, with where each item sits.
struct Answers {
    given: Vec<(&'static Item, Vec<String>)>,
    /// The safety total the response states, if it states one.
    stated_total: Option<f64>,
}

/// Every item of a response, nested ones included, with its path.
fn flatten<'a>(items: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    for (i, item) in items.as_array().into_iter().flatten().enumerate() {
        let here = format!("{path}.item[{i}]");
        flatten(&item["item"], &here, out);
        for (k, a) in item["answer"].as_array().into_iter().flatten().enumerate() {
            flatten(&a["item"], &format!("{here}.answer[{k}]"), out);
        }
        out.push((here, item));
    }
}

/// Reads an AHC response's answers, refusing what the screen does not ask or offer.
fn answers(v: &Value) -> std::result::Result<Answers, AppError> {
    let mut all = Vec::new();
    flatten(&v["item"], "QuestionnaireResponse", &mut all);
    let mut given: Vec<(&'static Item, Vec<String>)> = Vec::new();
    let mut stated_total = None;
    for (path, item) in all {
        let link = item["linkId"].as_str().unwrap_or_default();
        let code = link.trim_start_matches('/');
        let answers = item["answer"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if code == SAFETY_TOTAL {
            stated_total = answers
                .iter()
                .find_map(|a| a["valueInteger"].as_f64().or(a["valueDecimal"].as_f64()));
            continue;
        }
        if code == ahc::PANEL || (answers.is_empty() && item["item"].is_array()) {
            continue;
        }
        let Some(question) = ahc::item(code) else {
            return Err(invalid(
                IssueCode::CodeInvalid,
                &format!("{path}.linkId"),
                format!("'{link}' is not a question of the AHC HRSN core screen"),
            ));
        };
        let mut codes = Vec::new();
        for (k, a) in answers.iter().enumerate() {
            let coding = &a["valueCoding"];
            let code = coding["code"]
                .as_str()
                .filter(|_| coding["system"].is_null() || coding["system"] == LOINC);
            let Some(code) = code else {
                return Err(invalid(
                    IssueCode::CodeInvalid,
                    &format!("{path}.answer[{k}]"),
                    format!(
                        "an answer to {} is a LOINC answer code (valueCoding)",
                        question.code
                    ),
                ));
            };
            codes.push(code.to_string());
        }
        given.push((question, codes));
    }
    Ok(Answers {
        given,
        stated_total,
    })
}

impl Answers {
    fn score(&self) -> std::result::Result<ahc::Screen, AppError> {
        let response: Vec<(&str, Vec<&str>)> = self
            .given
            .iter()
            .map(|(i, a)| (i.code, a.iter().map(String::as_str).collect()))
            .collect();
        ahc::score(&response).map_err(|r| {
            invalid(
                IssueCode::CodeInvalid,
                "QuestionnaireResponse.item",
                format!("question {}: {}", r.question, r.english),
            )
        })
    }

    fn chosen(&self, item: &Item) -> Vec<&str> {
        self.given
            .iter()
            .filter(|(i, _)| i.code == item.code)
            .flat_map(|(_, a)| a.iter().map(String::as_str))
            .collect()
    }
}

impl WriteRule for ScreeningRule {
    fn resource_type(&self) -> &'static str {
        "QuestionnaireResponse"
    }

    fn check(
        &self,
        _write: &Write<'_>,
        resource: Resource,
    ) -> std::result::Result<Resource, AppError> {
        let v = resource.to_value();
        let questionnaire = v["questionnaire"].as_str().unwrap_or_default();
        if !is_social(&v) {
            return Ok(resource);
        }
        if is_ahc(questionnaire) {
            let answers = answers(&v)?;
            let screen = answers.score()?;
            if let (Some(stated), Some(total)) = (answers.stated_total, screen.safety_total)
                && (stated - f64::from(total)).abs() > f64::EPSILON
            {
                return Err(invalid(
                    IssueCode::Invariant,
                    "QuestionnaireResponse.item",
                    format!(
                        "the safety total {stated} is not the sum of the four safety answers ({total})"
                    ),
                ));
            }
            if scored(&v) && subject_patient(&v).is_none() {
                return Err(invalid(
                    IssueCode::Required,
                    "QuestionnaireResponse.subject",
                    "a completed screening is about a patient (subject: Patient/...)",
                ));
            }
        }
        if v.as_object().is_some_and(is_social_needs) {
            return Ok(resource);
        }
        let mut v = v;
        label(&mut v);
        Ok(parse_resource_value(v)?)
    }

    fn derive(
        &self,
        _write: &Write<'_>,
        resource: &Resource,
    ) -> std::result::Result<Vec<Derived>, AppError> {
        let v = resource.to_value();
        if !is_ahc(v["questionnaire"].as_str().unwrap_or_default()) || !scored(&v) {
            return Ok(Vec::new());
        }
        let answers = answers(&v)?;
        let screen = answers.score()?;
        derived(&v, &answers, &screen)
    }
}

/// A response is scored once it is completed (or amended).
fn scored(v: &Value) -> bool {
    matches!(v["status"].as_str(), Some("completed" | "amended"))
}

fn subject_patient(v: &Value) -> Option<&str> {
    v["subject"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
}

pub use crate::vocabulary::derived_id;

fn categories(domain: Domain) -> Vec<Value> {
    domain
        .categories()
        .iter()
        .map(|c| {
            let mut cc = json!({"coding": [{"system": SDOHCC_CODES, "code": c}]});
            if *c == "sdoh-category-unspecified" {
                cc["text"] = json!(domain.english());
            }
            cc
        })
        .collect()
}

fn positive() -> Value {
    json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "POS", "display": "Positive"}]}])
}

/// The Observations and proposed health concerns a completed response yields.
fn derived(
    v: &Value,
    answers: &Answers,
    screen: &ahc::Screen,
) -> std::result::Result<Vec<Derived>, AppError> {
    let qr = v["id"].as_str().unwrap_or_default();
    let subject = v["subject"].clone();
    let when = v["authored"].clone();
    let source = json!([{"reference": format!("QuestionnaireResponse/{qr}")}]);
    let mut out = Vec::new();
    let mut push = |mut r: Value, keep: Keep| -> std::result::Result<(), AppError> {
        label(&mut r);
        out.push(Derived {
            resource: parse_resource_value(r)?,
            keep,
        });
        Ok(())
    };
    let observation = |id: &str, code: &str, domain: Domain| {
        let mut category = vec![
            json!({"coding": [{"system": OBSERVATION_CATEGORY, "code": "social-history"}]}),
            json!({"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}),
            json!({"coding": [{"system": US_CORE_CATEGORY, "code": "sdoh", "display": "SDOH"}]}),
        ];
        category.extend(categories(domain));
        let mut o = json!({
            "resourceType": "Observation",
            "id": id,
            "status": "final",
            "category": category,
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": subject,
            "derivedFrom": source,
        });
        if !when.is_null() {
            o["effectiveDateTime"] = when.clone();
        }
        o
    };
    let unknown = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown", "display": "Unknown"}]});
    let mut evidence: Vec<(Domain, Vec<String>, Vec<&str>)> = Vec::new();
    for item in &ITEMS {
        let id = derived_id(qr, item.code);
        let chosen = answers.chosen(item);
        let mut o = observation(&id, item.code, item.domain);
        let coding = |c: &str| json!({"coding": [{"system": LOINC, "code": c}]});
        if chosen.is_empty() {
            o["dataAbsentReason"] = unknown.clone();
        } else if item.multiple {
            // One Observation per answer chosen, members of the item's (as US Core's examples).
            let mut members = Vec::new();
            for (k, c) in chosen.iter().enumerate() {
                let member_id = derived_id(qr, &format!("{}-{k}", item.code));
                let mut m = observation(&member_id, item.code, item.domain);
                m["valueCodeableConcept"] = coding(c);
                if ahc::Screen::item_positive(item, &[c]) == Some(true) {
                    m["interpretation"] = positive();
                }
                members.push(json!({"reference": format!("Observation/{member_id}")}));
                push(m, Keep::Following)?;
            }
            o["hasMember"] = json!(members);
        } else {
            o["valueCodeableConcept"] = coding(chosen[0]);
        }
        if ahc::Screen::item_positive(item, &chosen) == Some(true) {
            o["interpretation"] = positive();
            match evidence.iter_mut().find(|(d, _, _)| *d == item.domain) {
                Some((_, ids, codes)) => {
                    ids.push(id.clone());
                    codes.extend(chosen.iter().copied());
                }
                None => evidence.push((item.domain, vec![id.clone()], chosen.clone())),
            }
        }
        push(o, Keep::Following)?;
    }
    let total_id = derived_id(qr, SAFETY_TOTAL);
    let mut total = observation(&total_id, SAFETY_TOTAL, Domain::InterpersonalSafety);
    match screen.safety_total {
        Some(t) => {
            total["valueQuantity"] =
                json!({"value": t, "system": "http://unitsofmeasure.org", "code": "{score}"});
        }
        None => total["dataAbsentReason"] = unknown,
    }
    if screen.domain(Domain::InterpersonalSafety) == Some(true) {
        total["interpretation"] = positive();
        evidence.push((
            Domain::InterpersonalSafety,
            vec![total_id.clone()],
            Vec::new(),
        ));
    }
    push(total, Keep::Following)?;
    for (domain, ids, codes) in evidence {
        if screen.domain(domain) != Some(true) {
            continue;
        }
        let mut code = vec![
            json!({"system": NEED_SYSTEM, "code": domain.as_str(), "display": domain.english()}),
        ];
        if let Some((icd, display)) = domain.icd10(&codes) {
            code.push(json!({"system": ICD10CM, "code": icd, "display": display}));
        }
        let mut category = vec![
            json!({"coding": [{"system": CONDITION_CATEGORY, "code": "health-concern", "display": "Health Concern"}]}),
            json!({"coding": [{"system": US_CORE_CATEGORY, "code": "sdoh", "display": "SDOH"}]}),
        ];
        category.extend(categories(domain));
        let mut c = json!({
            "resourceType": "Condition",
            "id": derived_id(qr, domain.as_str()),
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "unconfirmed"}]},
            "category": category,
            "code": {"coding": code, "text": domain.english()},
            "subject": subject,
            "evidence": [{"detail": ids.iter().map(|i| json!({"reference": format!("Observation/{i}")})).collect::<Vec<_>>()}],
        });
        if !when.is_null() {
            c["recordedDate"] = when.clone();
        }
        push(c, Keep::Existing)?;
    }
    Ok(out)
}
