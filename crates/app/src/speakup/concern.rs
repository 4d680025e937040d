//! A concern as FHIR and back: the Communication that carries it, the Tasks of its
//! deadlines, the felt-heard QuestionnaireResponse.

use super::*;
use crate::deadlines::{escalation_extension, set_task_deadline};
use crate::vocabulary::TASKS;
use coproduce_core::deadline::{Deadline, Escalation};
use coproduce_core::from_unix_millis;
use coproduce_core::speakup::{Concern, Heard, Kind, Step, Urgency};
use coproduce_fhir::primitives::date_range_millis;
use sha2::Digest;

pub(super) fn instant(t: OffsetDateTime) -> String {
    Stored::instant(t)
}

pub(super) fn time_of(v: &Value) -> Option<OffsetDateTime> {
    date_range_millis(v.as_str()?).map(|(low, _)| from_unix_millis(low))
}

/// The digest a claim code is found by (the code itself is never stored).
pub fn claim_digest(code: &str) -> String {
    hex::encode(sha2::Sha256::digest(code.as_bytes()))
}

/// A concern as stored: the core state and what the pages show of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcernRecord {
    pub id: String,
    pub concern: Concern,
    pub unit: String,
    pub room: String,
    /// When it happened, in the reporter's words.
    pub when: String,
    pub what: String,
    /// The reporter's language, which the answer is written in.
    pub language: String,
    /// Who raised it, when they gave their name (Patient/.. or RelatedPerson/..).
    pub reporter: Option<String>,
    /// The patient it is about, when the reporter gave their name.
    pub patient: Option<String>,
    pub names_released: bool,
    /// The safety event report a manager linked it to.
    pub safety_event: Option<String>,
    /// The earlier concern this reporter raised it after (from that concern's answer).
    pub follows: Option<String>,
}

fn sub<'a>(ext: &'a Value, name: &str) -> Option<&'a Value> {
    ext["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == name)
}

fn place_code(place: Place) -> &'static str {
    match place {
        Place::Inpatient => "inpatient",
        Place::Outpatient => "outpatient",
    }
}

impl ConcernRecord {
    /// Reads a Speak Up Communication; None when it is not one.
    pub fn of(v: &Value) -> Option<ConcernRecord> {
        let kind = v["category"].as_array()?.iter().find_map(|c| {
            c["coding"].as_array()?.iter().find_map(|c| {
                (c["system"] == SPEAKUP)
                    .then(|| c["code"].as_str().and_then(Kind::parse))
                    .flatten()
            })
        })?;
        let exts = v["extension"].as_array()?;
        let main = exts.iter().find(|e| e["url"] == CONCERN_EXT)?;
        let category = v["category"].as_array()?.iter().find_map(|c| {
            c["coding"].as_array()?.iter().find_map(|c| {
                (c["system"] == CATEGORY).then(|| c["code"].as_str().map(str::to_string))?
            })
        })?;
        let text = |name: &str| {
            sub(main, name)
                .and_then(|e| e["valueString"].as_str())
                .unwrap_or("")
                .to_string()
        };
        let mut steps = Vec::new();
        for e in exts.iter().filter(|e| e["url"] == STEP_EXT) {
            let at = time_of(&sub(e, "at")?["valueDateTime"])?;
            let words = sub(e, "text")
                .and_then(|t| t["valueString"].as_str())
                .unwrap_or("")
                .to_string();
            let step = match sub(e, "step")?["valueCode"].as_str()? {
                "acknowledged" => Step::Acknowledged,
                "looking-into" => Step::LookingInto,
                "action-taken" => Step::ActionTaken { what: words },
                "answered" => Step::Answered { text: words },
                "felt-heard" => Step::FeltHeard {
                    heard: Heard::parse(sub(e, "heard")?["valueCode"].as_str()?)?,
                    comment: words,
                },
                _ => return None,
            };
            steps.push((step, at));
        }
        Some(ConcernRecord {
            id: v["id"].as_str()?.to_string(),
            concern: Concern {
                kind,
                urgency: if v["priority"] == "stat" {
                    Urgency::Urgent
                } else {
                    Urgency::Routine
                },
                place: match sub(main, "place")?["valueCode"].as_str()? {
                    "inpatient" => Place::Inpatient,
                    _ => Place::Outpatient,
                },
                category,
                raised_at: time_of(&v["sent"])?,
                steps,
            },
            unit: sub(main, "unit")?["valueReference"]["reference"]
                .as_str()?
                .strip_prefix("Location/")?
                .to_string(),
            room: text("room"),
            when: text("when"),
            what: v["payload"][0]["contentString"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            language: v["language"].as_str().unwrap_or("en").to_string(),
            reporter: v["sender"]["reference"].as_str().map(str::to_string),
            patient: v["subject"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Patient/"))
                .map(str::to_string),
            names_released: sub(main, "names-released").is_some_and(|e| e["valueBoolean"] == true),
            safety_event: sub(main, "safety-event")
                .and_then(|e| e["valueString"].as_str())
                .map(str::to_string),
            follows: sub(main, "follows")
                .and_then(|e| e["valueReference"]["reference"].as_str())
                .and_then(|r| r.strip_prefix("Communication/"))
                .map(str::to_string),
        })
    }

    /// The Communication that stores this concern (with the claim code's digest, if any).
    pub fn to_fhir(&self, claim: Option<&str>) -> Value {
        let mut main = vec![
            json!({"url": "unit", "valueReference": {"reference": format!("Location/{}", self.unit)}}),
            json!({"url": "place", "valueCode": place_code(self.concern.place)}),
        ];
        for (name, value) in [("room", &self.room), ("when", &self.when)] {
            if !value.trim().is_empty() {
                main.push(json!({"url": name, "valueString": value}));
            }
        }
        if self.names_released {
            main.push(json!({"url": "names-released", "valueBoolean": true}));
        }
        if let Some(e) = &self.safety_event {
            main.push(json!({"url": "safety-event", "valueString": e}));
        }
        if let Some(f) = &self.follows {
            main.push(json!({"url": "follows", "valueReference": {"reference": format!("Communication/{f}")}}));
        }
        let mut exts = vec![json!({"url": CONCERN_EXT, "extension": main})];
        for (step, at) in &self.concern.steps {
            let mut parts = vec![
                json!({"url": "step", "valueCode": step.as_str()}),
                json!({"url": "at", "valueDateTime": instant(*at)}),
            ];
            let words = match step {
                Step::ActionTaken { what } => Some(what),
                Step::Answered { text } => Some(text),
                Step::FeltHeard { heard, comment } => {
                    parts.push(json!({"url": "heard", "valueCode": heard.as_str()}));
                    Some(comment)
                }
                _ => None,
            };
            if let Some(w) = words.filter(|w| !w.trim().is_empty()) {
                parts.push(json!({"url": "text", "valueString": w}));
            }
            exts.push(json!({"url": STEP_EXT, "extension": parts}));
        }
        let closed = self.concern.stage() == coproduce_core::speakup::Stage::Closed;
        let mut v = json!({
            "resourceType": "Communication",
            "id": self.id,
            "language": self.language,
            "extension": exts,
            "status": if closed { "completed" } else { "in-progress" },
            "category": [
                {"coding": [{"system": SPEAKUP, "code": self.concern.kind.as_str()}]},
                {"coding": [{"system": CATEGORY, "code": self.concern.category}]},
            ],
            "priority": match self.concern.urgency {
                Urgency::Urgent => "stat",
                Urgency::Routine => "routine",
            },
            "sent": instant(self.concern.raised_at),
            "payload": [{"contentString": self.what}],
        });
        if let Some(r) = &self.reporter {
            v["sender"] = json!({"reference": r});
        }
        if let Some(p) = &self.patient {
            v["subject"] = json!({"reference": format!("Patient/{p}")});
        }
        if let Some(code) = claim {
            v["identifier"] = json!([{"system": CLAIM, "value": claim_digest(code)}]);
        }
        v
    }
}

/// A Task of the loop (acknowledge or answer) for a concern, with its deadline; in no chart.
pub(super) fn loop_task(
    code: &str,
    english: &str,
    chain: &Escalation,
    d: &Deadline,
    c: &ConcernRecord,
    now: OffsetDateTime,
) -> Value {
    let id = crate::fhir_api::new_id();
    let mut t = json!({
        "resourceType": "Task",
        "id": id,
        "extension": [escalation_extension(chain)],
        "identifier": [{"system": TASKS, "value": format!("{code}/{}", c.id)}],
        "status": "requested",
        "intent": "order",
        "priority": match c.concern.urgency { Urgency::Urgent => "stat", Urgency::Routine => "routine" },
        "code": {"coding": [{"system": TASKS, "code": code, "display": english}]},
        "description": english,
        "focus": {"reference": format!("Communication/{}", c.id)},
        "location": {"reference": format!("Location/{}", c.unit)},
        "authoredOn": instant(now),
    });
    set_task_deadline(&mut t, d);
    t
}

/// The reporter's word as a QuestionnaireResponse about the concern.
pub(super) fn felt_heard_response(
    c: &ConcernRecord,
    heard: Heard,
    comment: &str,
    now: OffsetDateTime,
) -> Value {
    let mut items = vec![json!({
        "linkId": "felt-heard",
        "text": "Did you feel heard?",
        "answer": [{"valueCoding": {"system": FELT_HEARD, "code": heard.as_str()}}],
    })];
    if !comment.trim().is_empty() {
        items.push(json!({"linkId": "comment", "text": "Anything you want to add", "answer": [{"valueString": comment}]}));
    }
    let mut v = json!({
        "resourceType": "QuestionnaireResponse",
        "id": crate::fhir_api::new_id(),
        "questionnaire": FELT_HEARD,
        "status": "completed",
        "subject": {"reference": format!("Communication/{}", c.id)},
        "authored": instant(now),
        "item": items,
    });
    if let Some(r) = &c.reporter {
        v["author"] = json!({"reference": r});
    }
    v
}

pub(super) use crate::fhir_api::put;
