//! Who is calling: the identity every use-case acts for, decided by the access policy and
//! named in the audit trail. Accounts (`crate::accounts`) turn a session or a token into one.

use coproduce_core::access::{Actor, Who};

/// Who is calling, for the policy and for the audit trail.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    /// How the audit trail names them: `user:NAME`, `token:NAME`, `anonymous`.
    pub label: String,
    /// The FHIR resource that is them (Patient/.., RelatedPerson/.., Practitioner/..).
    pub fhir_ref: Option<String>,
    /// Their account, when a person is behind the call.
    pub user_id: Option<String>,
}

impl Caller {
    /// Full access with no person behind it: the CLI's own import and export.
    pub fn system(label: &str) -> Self {
        Caller {
            actor: Actor::session(Who::System),
            label: label.to_string(),
            fhir_ref: None,
            user_id: None,
        }
    }

    pub fn anonymous() -> Self {
        Caller {
            actor: Actor::anonymous(),
            label: "anonymous".into(),
            fhir_ref: None,
            user_id: None,
        }
    }
}
