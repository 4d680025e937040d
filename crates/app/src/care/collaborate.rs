//! The patient's voice on shared decisions (`core::partnership::collaborate`): CollaboRATE
//! as a FHIR Questionnaire of our own canonical URL, each response a QuestionnaireResponse on
//! the patient's record (author: the patient or family member who answered), asked after a
//! visit ended or the team changed the plan.

use super::partnership::goal_steps;
use super::*;
use crate::error::unless_forbidden;
use crate::vocabulary::instant_of;
use coproduce_core::partnership::collaborate::{self, Answers, ITEMS, TOP};

/// The Questionnaire's canonical URL (and `Questionnaire/coproduce-collaborate`).
pub const COLLABORATE: &str = "https://coproduce.health/fhir/Questionnaire/collaborate";
const QUESTIONNAIRE_ID: &str = "coproduce-collaborate";
/// The answers' code system: 0 (no effort was made) to 4 (every effort was made).
pub const EFFORT: &str = "https://coproduce.health/fhir/CodeSystem/collaborate-effort";

const EFFORT_WORDS: [&str; 5] = [
    "No effort was made",
    "A little effort was made",
    "Some effort was made",
    "A lot of effort was made",
    "Every effort was made",
];

const QUESTIONS: [&str; 3] = [
    "How much effort was made to help you understand your health issues?",
    "How much effort was made to listen to the things that matter most to you about your health issues?",
    "How much effort was made to include what matters most to you in choosing what to do next?",
];

/// The Questionnaire, in English (the pages ask it in the reader's language).
pub fn collaborate_questionnaire() -> Value {
    json!({
        "resourceType": "Questionnaire",
        "id": QUESTIONNAIRE_ID,
        "url": COLLABORATE,
        "name": "CollaboRATE",
        "title": "CollaboRATE: shared decision making (5-point version)",
        "status": "active",
        "subjectType": ["Patient"],
        "copyright": "CollaboRATE, Elwyn G et al., Patient Educ Couns 2013;93(1):102-107. 5-point version as published by the PhenX Toolkit (protocol 662301): freely available, permission not required for use.",
        "item": ITEMS.iter().zip(QUESTIONS).map(|(link, text)| json!({
            "linkId": link,
            "text": text,
            "type": "choice",
            "required": true,
            "answerOption": EFFORT_WORDS.iter().enumerate().map(|(i, w)| json!({
                "valueCoding": {"system": EFFORT, "code": i.to_string(), "display": w},
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The answers a QuestionnaireResponse holds, if it is a complete CollaboRATE response.
pub fn collaborate_answers(v: &Value) -> Option<Answers> {
    if v["questionnaire"] != COLLABORATE || v["status"] != "completed" {
        return None;
    }
    let items = v["item"].as_array()?;
    let value = |link: &str| {
        items.iter().find(|i| i["linkId"] == link).and_then(|i| {
            let c = &i["answer"][0]["valueCoding"];
            (c["system"] == EFFORT)
                .then(|| c["code"].as_str()?.parse::<u8>().ok())
                .flatten()
        })
    };
    Answers::new(ITEMS.map(value)).ok()
}

impl Care {
    /// Whether to ask the caller the three questions now: they are on the patient's side, a
    /// visit ended or the team changed the plan within the last 30 days, and nobody answered
    /// since.
    pub async fn collaborate_due(&self, caller: &Caller, patient: &str) -> Result<bool> {
        if !role_of(caller).is_some_and(collaborate::may_answer) {
            return Ok(false);
        }
        let subject = || params(&[("subject", patient_ref(patient))]);
        // The latest visit ended or change the team made to the plan.
        let mut change: Option<OffsetDateTime> = None;
        for e in unless_forbidden(self.api.search_all(caller, "Encounter", &subject()).await)? {
            let v = content(&e)?;
            if v["status"] == "finished" {
                change = change.max(instant_of(&v["period"]["end"]));
            }
        }
        for g in unless_forbidden(self.api.search_all(caller, "Goal", &subject()).await)? {
            if let Some(goal) = goal_of(&g) {
                for step in goal_steps(&goal) {
                    if collaborate::changes_the_plan(&step) {
                        change = change.max(Some(step.at));
                    }
                }
            }
        }
        let mut answered: Option<OffsetDateTime> = None;
        let responses = self
            .api
            .search_all(caller, "QuestionnaireResponse", &subject())
            .await;
        for r in unless_forbidden(responses)? {
            let v = content(&r)?;
            if collaborate_answers(&v).is_some() {
                answered = answered.max(instant_of(&v["authored"]));
            }
        }
        Ok(collaborate::due(change, answered, self.now()))
    }

    /// Records the patient's side's answers (the Questionnaire is written first if this
    /// store has not got it). Answers off the scale are refused and nothing is written.
    pub async fn record_collaborate(
        &self,
        caller: &Caller,
        patient: &str,
        answers: [Option<u8>; 3],
    ) -> Result<String> {
        if !role_of(caller).is_some_and(collaborate::may_answer) {
            return Err(CareError::App(AppError::Forbidden(
                "the patient and their family answer these questions".into(),
            )));
        }
        let answers = Answers::new(answers).map_err(|item| {
            CareError::input(
                "collaborate-missing",
                format!("every question needs an answer from 0 to 4 ('{item}' has none)"),
            )
        })?;
        let sys = Caller::system("coproduce:collaborate");
        match self.api.read(&sys, "Questionnaire", QUESTIONNAIRE_ID).await {
            Ok(_) => {}
            Err(AppError::NotFound(_) | AppError::Gone(_)) => {
                self.api
                    .update(
                        &sys,
                        "Questionnaire",
                        QUESTIONNAIRE_ID,
                        collaborate_questionnaire().to_string().as_bytes(),
                        None,
                    )
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        let qr = json!({
            "resourceType": "QuestionnaireResponse",
            "questionnaire": COLLABORATE,
            "status": "completed",
            "subject": {"reference": patient_ref(patient)},
            "authored": Stored::instant(self.now()),
            "author": author(caller),
            "item": ITEMS.iter().zip(QUESTIONS).zip(answers.values()).map(|((link, text), v)| json!({
                "linkId": link,
                "text": text,
                "answer": [{"valueCoding": {"system": EFFORT, "code": v.to_string(), "display": EFFORT_WORDS[usize::from(v.min(TOP))]}}],
            })).collect::<Vec<_>>(),
        });
        let written = self
            .api
            .create(
                caller,
                "QuestionnaireResponse",
                qr.to_string().as_bytes(),
                None,
            )
            .await?;
        Ok(written.stored.id)
    }
}
