//! The caller's rights: the policy's decision on each interaction, the compartments a
//! caller reaches, the limits a search is held to, and the audit row of each decision.

use super::*;

/// Adolescent-confidential records carry the confidentiality code R (restricted) in
/// `meta.security`, social-needs records coproduce's social-needs label (confidentiality
/// first: it is the stricter).
pub(super) fn sensitivity(v: &Value) -> Sensitivity {
    let Some(o) = v.as_object() else {
        return Sensitivity::Normal;
    };
    if coproduce_fhir::search::is_restricted(o) {
        Sensitivity::AdolescentConfidential
    } else if coproduce_fhir::search::is_social_needs(o) {
        Sensitivity::SocialNeeds
    } else {
        Sensitivity::Normal
    }
}

/// The stricter of two sensitivities: confidential to the patient, then social needs.
pub(super) fn stricter(a: Sensitivity, b: Sensitivity) -> Sensitivity {
    let rank = |s| match s {
        Sensitivity::AdolescentConfidential => 2,
        Sensitivity::SocialNeeds => 1,
        Sensitivity::Normal => 0,
    };
    if rank(a) >= rank(b) { a } else { b }
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
        sensitivity: Sensitivity,
    ) -> Outcome<()> {
        let target = Target {
            resource_type: rt,
            compartment: compartment(rt, patient),
            sensitivity,
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

    /// The reach of `caller` for a query on `rt`, as the store's compartment filter.
    pub(super) fn compartments(
        &self,
        caller: &Caller,
        action: Action,
        rt: &str,
    ) -> Outcome<Option<BTreeSet<String>>> {
        match reach(&caller.actor, action, rt, is_clinical(rt), self.clock.now()) {
            Reach::Everything => Ok(None),
            Reach::Patients(p) => Ok(Some(p)),
            Reach::Nothing(reason) => {
                let entry = AuditEntry {
                    outcome: "denied".into(),
                    detail: Some(reason.clone()),
                    ..self.audit_entry(caller, action_name(action), rt, None, None)
                };
                Err(Fail::Denied(Box::new(entry), reason))
            }
        }
    }

    /// Limits a query to what `caller` reaches of `rt`: the store's compartment filter, and
    /// leaving out records confidential to the patient when the policy hides them.
    pub(super) fn limit(
        &self,
        caller: &Caller,
        action: Action,
        rt: &str,
        q: &mut SearchQuery,
    ) -> Outcome<()> {
        q.compartments = self.compartments(caller, action, rt)?;
        q.hide_restricted = !sees_confidential(&caller.actor.who);
        q.social_needs_of = social_needs_of(&caller.actor.who, self.clock.now());
        Ok(())
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
