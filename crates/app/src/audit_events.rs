//! The audit trail as FHIR AuditEvent (the IHE Basic Audit Log Patterns shape), for
//! administrators at `/fhir/AuditEvent`, and in plain words for patients: who opened their
//! record.

use coproduce_store::{AuditRow, Stored, format_instant};
use serde_json::{Value, json};

/// `audit-<n>`, the id of row n as an AuditEvent.
pub fn id_of(seq: i64) -> String {
    format!("audit-{seq}")
}

pub fn seq_of(id: &str) -> Option<i64> {
    id.strip_prefix("audit-")?.parse().ok()
}

fn restful(action: &str) -> Option<(&'static str, &'static str)> {
    Some(match action {
        "read" => ("read", "R"),
        "search" => ("search-type", "E"),
        "create" => ("create", "C"),
        "update" => ("update", "U"),
        "delete" => ("delete", "D"),
        _ => return None,
    })
}

/// One audit row as an AuditEvent.
pub fn to_audit_event(row: &AuditRow) -> Value {
    let e = &row.entry;
    let (type_coding, subtype, action) = match restful(&e.action) {
        Some((interaction, action)) => (
            json!({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}),
            Some(json!({"system": "http://hl7.org/fhir/restful-interaction", "code": interaction})),
            action,
        ),
        None if e.action == "authenticate" => (
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"}),
            None,
            "E",
        ),
        None => (
            json!({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}),
            Some(json!({"system": "urn:coproduce:audit-action", "code": e.action})),
            "E",
        ),
    };
    let outcome = if e.outcome == "allowed" { "0" } else { "4" };
    let mut agent = vec![json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
        "who": {"display": e.actor},
        "requestor": true,
    })];
    if let Some(p) = &e.on_behalf_of {
        agent.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "code": "PAT", "display": "patient"}]},
            "who": {"reference": p},
            "requestor": false,
        }));
    }
    let mut entity = Vec::new();
    if let (Some(rt), Some(id)) = (&e.resource_type, &e.resource_id) {
        entity.push(json!({
            "what": {"reference": format!("{rt}/{id}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        }));
    } else if let Some(rt) = &e.resource_type {
        entity.push(json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "description": format!("{rt} records"),
        }));
    }
    for p in e.patients.iter().flat_map(|p| p.split_whitespace()) {
        entity.push(json!({
            "what": {"reference": format!("Patient/{p}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
        }));
    }
    let mut ev = json!({
        "resourceType": "AuditEvent",
        "id": id_of(row.seq),
        "type": type_coding,
        "action": action,
        "recorded": format_instant(e.at),
        "outcome": outcome,
        "agent": agent,
        "source": {
            "observer": {"display": "coproduce"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}],
        },
    });
    if let Some(s) = subtype {
        ev["subtype"] = json!([s]);
    }
    if let Some(d) = &e.detail {
        ev["outcomeDesc"] = json!(d);
    }
    if !entity.is_empty() {
        ev["entity"] = Value::Array(entity);
    }
    ev
}

/// An AuditEvent as a search result.
pub fn as_stored(row: &AuditRow) -> Stored {
    Stored {
        resource_type: "AuditEvent".into(),
        id: id_of(row.seq),
        version_id: 1,
        last_updated: row.entry.at,
        deleted: false,
        content: Some(to_audit_event(row).to_string()),
        patient_id: None,
        shared: true,
        labels: 0,
    }
}

/// Who acted, as the patient's access log names them: a person by the name on their record
/// (looked up by the caller of [`in_words`]), a connected system by its name, the clinic's
/// import, coproduce itself (a reminder, a deadline), or someone not signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in person: their sign-in name (to be replaced by their name).
    User(String),
    Token(String),
    Import,
    Automatic,
    Anonymous,
    /// The Speak Up service on someone's behalf (a concern read or answered): named to the
    /// patient as such, never by the staff member, so the loop stays non-punitive.
    SpeakUp,
}

impl Actor {
    pub fn of(label: &str) -> Actor {
        match label.split_once(':') {
            Some(("user", name)) => Actor::User(name.to_string()),
            Some(("token", name)) => Actor::Token(name.to_string()),
            Some(("cli", _)) => Actor::Import,
            Some(("speakup", _)) => Actor::SpeakUp,
            // Social needs act for the person named after the prefix, who is named as such.
            Some(("social", person)) => Actor::of(person),
            // The workflows' own steps and the demo's setup.
            Some(("coproduce" | "demo", _)) => Actor::Automatic,
            _ => Actor::Anonymous,
        }
    }
}

/// One line a patient can read, in their language: who did what with their record (refused,
/// if it was) and why, for an emergency opening. `names` gives a signed-in person's name by
/// their sign-in name; one not found is "a member of staff".
pub fn in_words(
    row: &AuditRow,
    t: &crate::i18n::Tr,
    names: &std::collections::HashMap<String, String>,
) -> String {
    let e = &row.entry;
    let who = match Actor::of(&e.actor) {
        Actor::User(u) => names
            .get(&u)
            .cloned()
            .unwrap_or_else(|| t.t("access-who-staff")),
        Actor::Token(name) => t.arg("access-who-system", "name", &name),
        Actor::Import => t.t("access-who-import"),
        Actor::Automatic => t.t("access-who-automatic"),
        Actor::Anonymous => t.t("access-who-anonymous"),
        Actor::SpeakUp => t.t("access-who-speakup"),
    };
    let thing = t.t(&format!(
        "access-thing-{}",
        thing(e.resource_type.as_deref().unwrap_or(""))
    ));
    let action = match e.action.as_str() {
        a @ ("read" | "search" | "create" | "update" | "delete" | "break-glass"
        | "measure-patients") => a,
        _ => "other",
    };
    let mut line = t.with(
        &format!("access-{action}"),
        &[
            ("who", who),
            ("thing", thing),
            ("what", e.action.replace('-', " ")),
        ],
    );
    if e.outcome == "denied" {
        line = t.arg("access-refused", "line", &line);
    }
    if let ("break-glass", Some(d)) = (e.action.as_str(), &e.detail) {
        line = format!("{line}: {d}");
    }
    line
}

/// One line in English (the API's words): the time, then [`in_words`].
pub fn plain_words(row: &AuditRow, names: &std::collections::HashMap<String, String>) -> String {
    let t = crate::i18n::Tr::new("en");
    format!(
        "{} — {}",
        format_instant(row.entry.at),
        in_words(row, &t, names)
    )
}

fn thing(resource_type: &str) -> &'static str {
    match resource_type {
        "Observation" => "readings",
        "CarePlan" | "Goal" | "Task" => "plan",
        "Communication" => "messages",
        "Patient" => "details",
        "Condition" => "conditions",
        "MedicationRequest" | "MedicationDispense" => "medicines",
        "QuestionnaireResponse" => "questionnaires",
        _ => "record",
    }
}
