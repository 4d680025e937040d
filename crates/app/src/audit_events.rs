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
    }
}

/// One line a patient can read: who did what with their record, and when.
pub fn plain_words(row: &AuditRow) -> String {
    let e = &row.entry;
    let who = match e.actor.split_once(':') {
        Some(("user", name)) => name.to_string(),
        Some(("token", name)) => format!("the connected system {name}"),
        Some(("cli", _)) => "the clinic's data import".to_string(),
        _ => "someone not signed in".to_string(),
    };
    let what = match (e.action.as_str(), e.resource_type.as_deref()) {
        ("read", Some(t)) => format!("looked at your {}", thing(t)),
        ("search", Some(t)) => format!("looked through your {}", thing(t)),
        ("create", Some(t)) => format!("added to your {}", thing(t)),
        ("update", Some(t)) => format!("changed your {}", thing(t)),
        ("delete", Some(t)) => format!("removed something from your {}", thing(t)),
        ("break-glass", _) => {
            "opened your record in an emergency, outside your care team".to_string()
        }
        ("measure-patients", _) => {
            "listed you among the patients counted in a quality measure".to_string()
        }
        (other, _) => other.replace('-', " "),
    };
    let refused = if e.outcome == "denied" {
        " (this was refused)"
    } else {
        ""
    };
    let why = match (e.action.as_str(), &e.detail) {
        ("break-glass", Some(d)) => format!(": {d}"),
        _ => String::new(),
    };
    format!("{} — {who} {what}{refused}{why}", format_instant(e.at))
}

fn thing(resource_type: &str) -> &'static str {
    match resource_type {
        "Observation" => "readings and results",
        "CarePlan" | "Goal" | "Task" => "care plan",
        "Communication" => "messages",
        "Patient" => "details",
        "Condition" => "conditions",
        "MedicationRequest" | "MedicationDispense" => "medicines",
        "QuestionnaireResponse" => "questionnaires",
        _ => "record",
    }
}
