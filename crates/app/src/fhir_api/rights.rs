//! The caller's rights: the policy's decision on each interaction, the compartments a
//! caller reaches, the limits a search is held to, and the audit row of each decision.

use super::*;
use coproduce_fhir::search::{LABEL_RESTRICTED, LABEL_SOCIAL_NEEDS};

/// What the policy reads of a record's content: how sensitive it is, and to which
/// organisation it is addressed (a Task's `owner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    pub sensitivity: Sensitivity,
    pub addressed_to: Option<String>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            sensitivity: Sensitivity::Normal,
            addressed_to: None,
        }
    }
}

/// Adolescent-confidential records carry the confidentiality code R (restricted) in
/// `meta.security`, social-needs records coproduce's social-needs label (confidentiality
/// first: it is the stricter); a Task is addressed to the Organization that owns it.
pub(super) fn facts(v: &Value) -> Facts {
    let Some(o) = v.as_object() else {
        return Facts::default();
    };
    let sensitivity = sensitivity(coproduce_fhir::search::labels(o));
    let addressed_to = (v["resourceType"] == "Task")
        .then(|| v["owner"]["reference"].as_str())
        .flatten()
        .and_then(|r| r.strip_prefix("Organization/"))
        .map(str::to_string);
    Facts {
        sensitivity,
        addressed_to,
    }
}

/// The same facts of a stored version, without building its JSON into a tree: its labels
/// are the bits the store keeps beside it (computed by the same rule when it was written, and
/// the ones searches filter on); only a Task's addressee is read from its JSON.
pub(super) fn stored_facts(s: &Stored) -> Result<Facts, AppError> {
    if s.resource_type == "Task" {
        return Ok(facts(&s.json()?));
    }
    Ok(Facts {
        sensitivity: sensitivity(s.labels),
        addressed_to: None,
    })
}

/// A record's sensitivity from its label bits (confidentiality first: it is the stricter).
fn sensitivity(labels: i64) -> Sensitivity {
    if labels & LABEL_RESTRICTED != 0 {
        Sensitivity::AdolescentConfidential
    } else if labels & LABEL_SOCIAL_NEEDS != 0 {
        Sensitivity::SocialNeeds
    } else {
        Sensitivity::Normal
    }
}

/// The stricter of two readings of a record (as it is now, and one of its versions):
/// confidential to the patient, then social needs; addressed to an organisation only when
/// both are.
pub(super) fn stricter(a: Facts, b: Facts) -> Facts {
    let rank = |s| match s {
        Sensitivity::AdolescentConfidential => 2,
        Sensitivity::SocialNeeds => 1,
        Sensitivity::Normal => 0,
    };
    Facts {
        sensitivity: if rank(a.sensitivity) >= rank(b.sensitivity) {
            a.sensitivity
        } else {
            b.sensitivity
        },
        addressed_to: a
            .addressed_to
            .filter(|x| b.addressed_to.as_ref() == Some(x)),
    }
}

pub(super) fn compartment<'a>(rt: &str, patient: Option<&'a str>) -> Compartment<'a> {
    match patient {
        Some(p) => Compartment::Patient(p),
        None if is_clinical(rt) => Compartment::Unattached,
        None => Compartment::Shared,
    }
}

pub(super) fn action_name(a: Action) -> &'static str {
    match a {
        Action::Read => "read",
        Action::Search => "search",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::Export => "export",
    }
}

impl FhirApi {
    /// An "allowed" audit row for this caller; callers change outcome and detail as needed.
    pub(super) fn audit_entry(
        &self,
        caller: &Caller,
        action: &str,
        rt: &str,
        id: Option<&str>,
        patients: Option<String>,
    ) -> AuditEntry {
        let on_behalf_of = match (&caller.actor.who, patients.as_deref()) {
            (coproduce_core::access::Who::Family { .. }, Some(p)) if !p.contains(' ') => {
                Some(format!("Patient/{p}"))
            }
            _ => caller
                .actor
                .bound_patient
                .as_ref()
                .map(|p| format!("Patient/{p}")),
        };
        AuditEntry {
            at: unix_millis(self.clock.now()),
            actor: caller.label.clone(),
            on_behalf_of,
            action: action.to_string(),
            resource_type: Some(rt.to_string()),
            resource_id: id.map(str::to_string),
            patients,
            outcome: "allowed".into(),
            detail: None,
        }
    }

    /// Decides; a denial becomes a [`Fail::Denied`] carrying its audit row.
    pub(super) fn check(
        &self,
        caller: &Caller,
        action: Action,
        rt: &str,
        id: Option<&str>,
        patient: Option<&str>,
        facts: Facts,
    ) -> Outcome<()> {
        let target = Target {
            resource_type: rt,
            compartment: compartment(rt, patient),
            sensitivity: facts.sensitivity,
            addressed_to: facts.addressed_to.as_deref(),
        };
        match decide(&caller.actor, action, &target, self.clock.now()) {
            coproduce_core::access::Decision::Allow => Ok(()),
            coproduce_core::access::Decision::Deny(reason) => {
                let entry = AuditEntry {
                    outcome: "denied".into(),
                    detail: Some(reason.clone()),
                    ..self.audit_entry(
                        caller,
                        action_name(action),
                        rt,
                        id,
                        patient.map(str::to_string),
                    )
                };
                Err(Fail::Denied(Box::new(entry), reason))
            }
        }
    }

    /// Turns a failure into the caller's error, writing a denial's audit row first.
    pub(super) async fn settle<T>(&self, r: Outcome<T>) -> Result<T, AppError> {
        match r {
            Ok(v) => Ok(v),
            Err(Fail::App(e)) => Err(e),
            Err(Fail::Denied(entry, reason)) => {
                self.store.audit(&entry).await?;
                Err(AppError::Forbidden(reason))
            }
        }
    }

    /// The caller's reach for a query on `rt`: None for everything, a denial (with its audit
    /// row) for nothing.
    pub(super) fn reach_of(
        &self,
        caller: &Caller,
        action: Action,
        rt: &str,
    ) -> Outcome<Option<Reach>> {
        let denied = |reason: String| {
            let entry = AuditEntry {
                outcome: "denied".into(),
                detail: Some(reason.clone()),
                ..self.audit_entry(caller, action_name(action), rt, None, None)
            };
            Err(Fail::Denied(Box::new(entry), reason))
        };
        match reach(&caller.actor, action, rt, is_clinical(rt), self.clock.now()) {
            Reach::Everything => Ok(None),
            Reach::Nothing(reason) => denied(reason),
            r @ (Reach::Patients(_) | Reach::AddressedTo(_)) => Ok(Some(r)),
        }
    }

    /// Limits a query to what `caller` reaches of `rt`: the store's compartment filter (or an
    /// organisation's: the Tasks it owns), and leaving out records the policy hides (those
    /// confidential to the patient, social needs beyond a family grant).
    pub(super) fn limit(
        &self,
        caller: &Caller,
        action: Action,
        rt: &str,
        q: &mut SearchQuery,
    ) -> Outcome<()> {
        match self.reach_of(caller, action, rt)? {
            Some(Reach::Patients(p)) => q.compartments = Some(p),
            Some(Reach::AddressedTo(org)) => {
                if !q.includes.is_empty() || !q.revincludes.is_empty() {
                    let reason =
                        "an organisation's searches find its referrals and bring nothing else along"
                            .to_string();
                    let entry = AuditEntry {
                        outcome: "denied".into(),
                        detail: Some(reason.clone()),
                        ..self.audit_entry(caller, action_name(action), rt, None, None)
                    };
                    return Err(Fail::Denied(Box::new(entry), reason));
                }
                q.compartments = None;
                q.filters.push(coproduce_fhir::query::Filter::Reference {
                    param: "owner".into(),
                    values: vec![(Some("Organization".into()), org)],
                });
            }
            _ => q.compartments = None,
        }
        q.hide_restricted = !sees_confidential(&caller.actor.who);
        q.social_needs_of = social_needs_of(&caller.actor.who, self.clock.now());
        Ok(())
    }

    /// Refuses, with the policy's reason and an audit row, a caller who may not search this
    /// patient's records of `rt` (where a search would quietly find nothing, and the person
    /// is owed the reason: a family grant that does not cover medicines, say).
    pub async fn require_search_of(
        &self,
        caller: &Caller,
        rt: &str,
        patient: &str,
    ) -> Result<(), AppError> {
        let r = self.check(
            caller,
            Action::Search,
            rt,
            None,
            Some(patient),
            Facts::default(),
        );
        self.settle(r).await
    }

    /// For someone the policy lets see the whole population (a quality analyst): their reach
    /// checked (a refusal audited under `action`), then the caller that reads it for figures,
    /// with system rights under their name, so each read is audited as theirs.
    pub async fn population_pass(&self, caller: &Caller, action: &str) -> Result<Caller, AppError> {
        self.require_population_reach(caller, action).await?;
        Ok(Caller {
            label: caller.label.clone(),
            ..Caller::system(&caller.label)
        })
    }

    /// Lets through only those the policy lets see the whole population (a quality analyst,
    /// an integration), for figures over it; a refusal is audited under `action`.
    pub async fn require_population_reach(
        &self,
        caller: &Caller,
        action: &str,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        if matches!(
            reach(&caller.actor, Action::Export, "Patient", true, now),
            Reach::Everything
        ) {
            return Ok(());
        }
        let why = "population figures are for quality analysts";
        self.store
            .audit(&AuditEntry {
                at: unix_millis(now),
                actor: caller.label.clone(),
                action: action.into(),
                outcome: "denied".into(),
                detail: Some(why.into()),
                ..AuditEntry::default()
            })
            .await?;
        Err(AppError::Forbidden(why.into()))
    }

    /// Records a request refused for want of valid credentials.
    pub async fn audit_unauthenticated(&self, request: &str, reason: &str) -> Result<(), AppError> {
        self.store
            .audit(&AuditEntry {
                at: unix_millis(self.clock.now()),
                actor: "anonymous".into(),
                action: "authenticate".into(),
                outcome: "denied".into(),
                detail: Some(format!("{request}: {reason}")),
                ..AuditEntry::default()
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the policy reads from a stored version's label bits is what it reads from its
    /// JSON: for a confidential record, a social-needs record, one with both labels, an
    /// unlabelled one and a Task addressed to an organisation.
    #[test]
    fn the_facts_of_a_stored_version_are_those_of_its_json() {
        let confidential =
            json!({"system": coproduce_fhir::search::CONFIDENTIALITY_SYSTEM, "code": "R"});
        let social = json!({"system": coproduce_fhir::search::SENSITIVITY_SYSTEM, "code": coproduce_fhir::search::SOCIAL_NEEDS_LABEL});
        let cases = [
            json!({"resourceType": "Observation", "meta": {"security": [confidential]}}),
            json!({"resourceType": "Observation", "meta": {"security": [social]}}),
            json!({"resourceType": "Condition", "meta": {"security": [social, confidential]}}),
            json!({"resourceType": "Patient"}),
            json!({"resourceType": "Task", "owner": {"reference": "Organization/food-bank"},
                   "meta": {"security": [social]}}),
        ];
        let mut seen = Vec::new();
        for v in cases {
            let o = v.as_object().expect("an object");
            let stored = Stored {
                resource_type: v["resourceType"].as_str().unwrap_or_default().to_string(),
                id: "x".into(),
                version_id: 1,
                last_updated: 0,
                deleted: false,
                content: Some(v.to_string()),
                patient_id: Some("p1".into()),
                shared: false,
                labels: coproduce_fhir::search::labels(o),
            };
            let from_bits = stored_facts(&stored).expect("facts");
            assert_eq!(from_bits, facts(&v), "{v}");
            seen.push(from_bits.sensitivity);
        }
        assert!(seen.contains(&Sensitivity::AdolescentConfidential));
        assert!(seen.contains(&Sensitivity::SocialNeeds));
        assert!(seen.contains(&Sensitivity::Normal));
    }
}
