//! SMART scopes: parsing them, and which tokens may carry which.

use super::Action;
use std::collections::BTreeSet;
use std::fmt;

/// A parsed SMART App Launch v2 scope: `patient/Observation.rs`, `user/*.cruds`, `system/*.rs`
/// (v1 `.read`, `.write` and `.*` are read as `rs`, `cud` and `cruds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub context: ScopeContext,
    /// None for `*`.
    pub resource_type: Option<String>,
    pub permissions: BTreeSet<char>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeContext {
    Patient,
    User,
    System,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, String> {
        let bad =
            || format!("'{s}' is not a SMART scope such as patient/*.rs or user/Observation.cruds");
        let (context, rest) = s.split_once('/').ok_or_else(bad)?;
        let context = match context {
            "patient" => ScopeContext::Patient,
            "user" => ScopeContext::User,
            "system" => ScopeContext::System,
            _ => return Err(bad()),
        };
        let (rt, perms) = rest.split_once('.').ok_or_else(bad)?;
        let permissions: BTreeSet<char> = match perms {
            "read" => ['r', 's'].into(),
            "write" => ['c', 'u', 'd'].into(),
            "*" => ['c', 'r', 'u', 'd', 's'].into(),
            p if !p.is_empty() && is_ordered_subset(p) => p.chars().collect(),
            _ => return Err(bad()),
        };
        let resource_type = match rt {
            "*" => None,
            t if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic()) => Some(t.to_string()),
            _ => return Err(bad()),
        };
        Ok(Scope {
            context,
            resource_type,
            permissions,
        })
    }

    pub(super) fn allows(&self, resource_type: &str, action: Action) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
            && self.permissions.contains(&action.letter())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ctx = match self.context {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        };
        let perms: String = ['c', 'r', 'u', 'd', 's']
            .iter()
            .filter(|c| self.permissions.contains(c))
            .collect();
        write!(
            f,
            "{ctx}/{}.{perms}",
            self.resource_type.as_deref().unwrap_or("*")
        )
    }
}

/// `cruds` letters, each at most once, in that order.
fn is_ordered_subset(p: &str) -> bool {
    let order = "cruds";
    let mut last = None;
    for c in p.chars() {
        let Some(i) = order.find(c) else { return false };
        if last.is_some_and(|l| i <= l) {
            return false;
        }
        last = Some(i);
    }
    true
}

/// Parses a space-separated scope string.
pub fn parse_scopes(s: &str) -> Result<Vec<Scope>, String> {
    let scopes: Vec<Scope> = s
        .split_whitespace()
        .map(Scope::parse)
        .collect::<Result<_, _>>()?;
    if scopes.is_empty() {
        return Err("at least one scope is needed".into());
    }
    Ok(scopes)
}

/// Who a token is issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHolder {
    /// An integration with no account behind it.
    Integration,
    /// A person's account.
    User,
    /// A community organisation's partner account: its system acts for it, held to the
    /// referrals addressed to it whatever its scopes say.
    Organisation,
}

/// Which tokens may exist: `system/` scopes only for an integration or an organisation's
/// system (and never mixed with others); `patient/` and `user/` scopes only for a person;
/// `patient/` scopes exactly when the token is bound to a patient.
pub fn check_token_request(
    holder: TokenHolder,
    scopes: &[Scope],
    bound_to_patient: bool,
) -> Result<(), String> {
    let system = scopes.iter().any(|s| s.context == ScopeContext::System);
    if holder == TokenHolder::User && system {
        return Err(
            "system/ scopes are for integrations: issue them with --system, not for a user".into(),
        );
    }
    if holder != TokenHolder::User && !system {
        return Err(match holder {
            TokenHolder::Organisation => {
                "an organisation's system acts with system/ scopes (such as system/Task.rus)".into()
            }
            _ => "patient/ and user/ scopes act as a user: give --user".into(),
        });
    }
    if system && !scopes.iter().all(|s| s.context == ScopeContext::System) {
        return Err("a system token carries system/ scopes only".into());
    }
    let patient_scopes = scopes.iter().any(|s| s.context == ScopeContext::Patient);
    match (patient_scopes, bound_to_patient) {
        (true, false) => Err("patient/ scopes need the patient: give --patient Patient/ID".into()),
        (false, true) => Err("--patient goes with patient/ scopes".into()),
        _ => Ok(()),
    }
}
