//! Who may do what to which record: the access policy, as a pure function.
//!
//! [`decide`] answers one question (may this actor do this to this resource?) and [`reach`]
//! answers the question a query needs (which patients' records may this actor see of this
//! type?), so that the store can filter in SQL. Both follow the same rules:
//!
//! - a patient reaches their own record;
//! - a family member reaches what the patient's grant covers (which parts, until when,
//!   revocable at once), never adolescent-confidential records, and writes as themselves;
//! - a team member reaches the patients whose care team includes them, and others only
//!   through break-glass (a reason, for a limited time);
//! - a quality analyst gets exports and aggregates, not charts; an admin manages users and
//!   settings and reads the audit trail, not charts;
//! - a community organisation (a partner) reaches the referral Tasks addressed to it, and
//!   nothing else of any chart;
//! - a token's SMART scopes narrow all of this further, never widen it.

mod scopes;
pub mod session;

pub use scopes::{Scope, ScopeContext, TokenHolder, check_token_request, parse_scopes};

use std::collections::BTreeSet;
use std::fmt;
use time::{Duration, OffsetDateTime};

/// What a person is to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Patient,
    Family,
    Clinician,
    Nurse,
    Pharmacist,
    CommunityHealthWorker,
    SocialWorker,
    RapidResponse,
    /// The lead of a clinic: the last step of most escalation chains.
    ClinicLead,
    QualityAnalyst,
    Admin,
    /// A community organisation's account (linked to its Organization): it works the
    /// referrals addressed to it.
    Partner,
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::Patient,
        Role::Family,
        Role::Clinician,
        Role::Nurse,
        Role::Pharmacist,
        Role::CommunityHealthWorker,
        Role::SocialWorker,
        Role::RapidResponse,
        Role::ClinicLead,
        Role::QualityAnalyst,
        Role::Admin,
        Role::Partner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Family => "family",
            Role::Clinician => "clinician",
            Role::Nurse => "nurse",
            Role::Pharmacist => "pharmacist",
            Role::CommunityHealthWorker => "community-health-worker",
            Role::SocialWorker => "social-worker",
            Role::RapidResponse => "rapid-response",
            Role::ClinicLead => "clinic-lead",
            Role::QualityAnalyst => "quality-analyst",
            Role::Admin => "admin",
            Role::Partner => "partner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Members of a care team (they reach patients through CareTeam membership).
    pub fn is_team(self) -> bool {
        matches!(
            self,
            Role::Clinician
                | Role::Nurse
                | Role::Pharmacist
                | Role::CommunityHealthWorker
                | Role::SocialWorker
                | Role::RapidResponse
                | Role::ClinicLead
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An interaction with records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Search,
    Create,
    Update,
    Delete,
    Export,
}

impl Action {
    /// The SMART v2 permission letter (`cruds`) this action needs.
    pub(super) fn letter(self) -> char {
        match self {
            Action::Create => 'c',
            Action::Read | Action::Export => 'r',
            Action::Update => 'u',
            Action::Delete => 'd',
            Action::Search => 's',
        }
    }

    fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// The parts of a record a family grant can cover (CLINICAL.md section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Readings,
    Plan,
    Messages,
    Concerns,
    /// Health-related social needs: screenings, the needs they found, community referrals
    /// (whatever their resource type: the records carry the social-needs label).
    SocialNeeds,
    /// Medicines: prescriptions, dispensings, what the patient takes (and so the medicines
    /// page and the patient's "I can't" about one).
    Medicines,
    /// Everything else in the chart (conditions, encounters...).
    Record,
}

impl Part {
    pub const ALL: [Part; 7] = [
        Part::Readings,
        Part::Plan,
        Part::Messages,
        Part::Concerns,
        Part::SocialNeeds,
        Part::Medicines,
        Part::Record,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Part::Readings => "readings",
            Part::Plan => "plan",
            Part::Messages => "messages",
            Part::Concerns => "concerns",
            Part::SocialNeeds => "social-needs",
            Part::Medicines => "medicines",
            Part::Record => "record",
        }
    }

    pub fn parse(s: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The part a resource type belongs to.
    pub fn of(resource_type: &str) -> Part {
        match resource_type {
            "Observation" | "QuestionnaireResponse" => Part::Readings,
            "CarePlan" | "Goal" | "Task" | "ServiceRequest" => Part::Plan,
            "Communication" | "CommunicationRequest" => Part::Messages,
            "Flag" => Part::Concerns,
            "MedicationRequest"
            | "MedicationStatement"
            | "MedicationDispense"
            | "MedicationAdministration" => Part::Medicines,
            _ => Part::Record,
        }
    }
}

/// A patient's grant to a family member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub patient: String,
    pub parts: BTreeSet<Part>,
    /// The grant ends at this time (None: until revoked).
    pub until: Option<OffsetDateTime>,
    pub revoked: bool,
}

impl Grant {
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        !self.revoked && self.until.is_none_or(|u| now < u)
    }
}

/// A team member's time-limited opening of a chart outside their teams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlass {
    pub patient: String,
    pub until: OffsetDateTime,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Anonymous,
    Patient {
        patient: String,
    },
    Family {
        grants: Vec<Grant>,
    },
    TeamMember {
        role: Role,
        panel: BTreeSet<String>,
        break_glass: Vec<BreakGlass>,
    },
    Analyst,
    Admin,
    /// A community organisation (the id of its Organization), through its people's sign-in
    /// or its system's token.
    Partner {
        organization: String,
    },
    /// An integration acting with `system/` scopes, no person behind it.
    System,
}

/// Who is asking, and how (a session acts with the person's full rights; a token with its
/// scopes, and a `patient/` token only for the patient it is bound to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub who: Who,
    /// None: a session, with the person's own rights.
    pub scopes: Option<Vec<Scope>>,
    /// The patient a token with `patient/` scopes is bound to.
    pub bound_patient: Option<String>,
}

impl Actor {
    pub fn session(who: Who) -> Self {
        Actor {
            who,
            scopes: None,
            bound_patient: None,
        }
    }

    pub fn anonymous() -> Self {
        Actor::session(Who::Anonymous)
    }
}

/// Where a resource sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compartment<'a> {
    /// In this patient's record.
    Patient(&'a str),
    /// A clinical type with no patient named (unattached): staff only.
    Unattached,
    /// Reference data outside any patient's record (Practitioner, Organization, Measure...).
    Shared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitivity {
    Normal,
    /// Adolescent-confidential: never shown through a parent's grant.
    AdolescentConfidential,
    /// Health-related social needs: through a family grant only when it covers them.
    SocialNeeds,
}

/// The record an action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub resource_type: &'a str,
    pub compartment: Compartment<'a>,
    pub sensitivity: Sensitivity,
    /// The organisation (Organization id) a Task is addressed to (`Task.owner`), if any.
    pub addressed_to: Option<&'a str>,
}

/// Allowed, or denied with a reason a person can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Which records of one type an actor reaches, for a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every record of the type.
    Everything,
    /// The records of these patients (and shared reference data).
    Patients(BTreeSet<String>),
    /// The records addressed to this organisation (`owner` Organization/ID), whoever's
    /// record they are in.
    AddressedTo(String),
    Nothing(String),
}

const AUDIT_TYPE: &str = "AuditEvent";

/// The records the policy itself reads to decide who reaches a chart: a care team's members
/// (CareTeam) and a patient's grants to family (Consent).
pub const ACCESS_TYPES: [&str; 2] = ["CareTeam", "Consent"];

/// The record of what was done (Provenance, AuditEvent): added to, never rewritten or deleted.
pub const TRAIL_TYPES: [&str; 2] = ["Provenance", AUDIT_TYPE];

/// Does this actor see records labelled confidential to the patient (adolescent-confidential,
/// `meta.security` R)? Everyone the policy otherwise lets reach them, except a patient's
/// family: a parent's grant never opens them. Queries leave such records out for those who
/// do not, so search, history, includes, Bundles, counts and pages all agree with [`decide`].
pub fn sees_confidential(who: &Who) -> bool {
    !matches!(who, Who::Family { .. })
}

/// Whose records labelled as social needs the actor may see in a listing: None, everyone's
/// the policy otherwise lets them reach; for a family member, only those of the patients whose
/// active grant covers social needs. Queries leave the rest out, so listings agree with
/// [`decide`].
pub fn social_needs_of(who: &Who, now: OffsetDateTime) -> Option<BTreeSet<String>> {
    match who {
        Who::Family { grants } => Some(
            grants
                .iter()
                .filter(|g| g.is_active(now) && g.parts.contains(&Part::SocialNeeds))
                .map(|g| g.patient.clone())
                .collect(),
        ),
        _ => None,
    }
}

/// Who may write a record that decides access: a care team (CareTeam) is kept by the
/// clinicians and clinic leads on it, a grant (Consent) by the patient or those team members
/// (recording the patient's agreement); an integration may write both. Never a patient's
/// family, and never the other team roles. None when the writer may (the chart's own rules
/// still apply).
fn access_write_denial(who: &Who, resource_type: &str) -> Option<&'static str> {
    match who {
        Who::System => None,
        Who::TeamMember {
            role: Role::Clinician | Role::ClinicLead,
            ..
        } => None,
        Who::Patient { .. } if resource_type == "Consent" => None,
        Who::Patient { .. } => Some("your care team is set by your clinic"),
        Who::Family { .. } => Some(
            "only the patient, or their care team with the patient's agreement, changes who may see the record",
        ),
        _ => Some(
            "care teams and grants are kept by the patient's clinicians and clinic leads (and grants by the patient)",
        ),
    }
}

/// How long a break-glass opening lasts unless asked otherwise, and at most.
pub const BREAK_GLASS_DEFAULT: Duration = Duration::hours(1);
pub const BREAK_GLASS_MAX: Duration = Duration::hours(12);

/// Why a break-glass request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakGlassRefusal {
    /// The caller may not break the glass at all.
    NotAllowed(String),
    /// The request itself is not acceptable (no real reason, a length that makes no sense).
    Unacceptable(String),
}

/// May `actor` open a chart outside their teams, with this reason, for this long? Returns when
/// the opening ends. Only care-team members acting as themselves (a session or `user/`
/// scopes), with a reason in a sentence, for up to 12 hours.
pub fn break_glass_until(
    actor: &Actor,
    reason: &str,
    asked: Option<Duration>,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, BreakGlassRefusal> {
    let as_themselves = actor
        .scopes
        .as_ref()
        .is_none_or(|s| s.iter().all(|s| s.context == ScopeContext::User));
    if !matches!(actor.who, Who::TeamMember { .. }) || !as_themselves {
        return Err(BreakGlassRefusal::NotAllowed(
            "break-glass is for care-team members acting as themselves".into(),
        ));
    }
    if reason.trim().chars().count() < 10 {
        return Err(BreakGlassRefusal::Unacceptable(
            "give the reason in a sentence (at least 10 characters)".into(),
        ));
    }
    let length = asked.unwrap_or(BREAK_GLASS_DEFAULT);
    if length <= Duration::ZERO {
        return Err(BreakGlassRefusal::Unacceptable(
            "the opening must last some minutes".into(),
        ));
    }
    if length > BREAK_GLASS_MAX {
        return Err(BreakGlassRefusal::Unacceptable(
            "an opening lasts at most 12 hours (720 minutes); ask again when it ends".into(),
        ));
    }
    Ok(now + length)
}

/// May `actor` do `action` to `target` at `now`?
pub fn decide(actor: &Actor, action: Action, target: &Target<'_>, now: OffsetDateTime) -> Decision {
    if let Some(reason) = scope_denial(actor, target.resource_type, action) {
        return Decision::Deny(reason);
    }
    if let (Some(bound), Compartment::Patient(p)) = (&actor.bound_patient, target.compartment)
        && bound != p
    {
        return Decision::Deny(format!("this token is for Patient/{bound} only"));
    }
    if let (Some(_), Compartment::Unattached) = (&actor.bound_patient, target.compartment) {
        return Decision::Deny("this token reaches one patient's record only".into());
    }
    who_decides(&actor.who, action, target, now)
}

fn scope_denial(actor: &Actor, resource_type: &str, action: Action) -> Option<String> {
    let scopes = actor.scopes.as_ref()?;
    if scopes.iter().any(|s| s.allows(resource_type, action)) {
        None
    } else {
        Some(format!(
            "the token's scopes do not allow {action:?} on {resource_type}"
        ))
    }
}

fn who_decides(who: &Who, action: Action, t: &Target<'_>, now: OffsetDateTime) -> Decision {
    let deny = |why: &str| Decision::Deny(why.to_string());
    if TRAIL_TYPES.contains(&t.resource_type) && matches!(action, Action::Update | Action::Delete) {
        return deny("provenance and the audit trail are added to, never rewritten or deleted");
    }
    if ACCESS_TYPES.contains(&t.resource_type)
        && action.writes()
        && let Some(why) = access_write_denial(who, t.resource_type)
    {
        return deny(why);
    }
    if t.sensitivity == Sensitivity::AdolescentConfidential && !sees_confidential(who) {
        return deny("this is confidential to the patient");
    }
    if t.resource_type == AUDIT_TYPE {
        return match (who, action) {
            (Who::Admin, Action::Read | Action::Search) => Decision::Allow,
            _ => deny(
                "the audit trail is read by administrators (patients see who opened their record in the app)",
            ),
        };
    }
    match who {
        Who::Anonymous => deny("sign in first"),
        Who::System => Decision::Allow,
        Who::Admin => match (t.compartment, action.writes()) {
            (Compartment::Shared, _) => Decision::Allow,
            _ => deny("administrators manage users and settings, not charts"),
        },
        Who::Analyst => match (t.compartment, action) {
            (_, Action::Export) => Decision::Allow,
            (Compartment::Shared, Action::Read | Action::Search) => Decision::Allow,
            _ => deny("quality analysts see aggregates and exports, not charts"),
        },
        Who::Partner { organization } => {
            let ours = t.resource_type == "Task" && t.addressed_to == Some(organization.as_str());
            match (ours, action, t.compartment) {
                (true, Action::Read | Action::Search | Action::Update, _) => Decision::Allow,
                (true, _, _) => deny(
                    "an organisation reads its referrals and updates where they stand; the clinic makes and ends them",
                ),
                (false, Action::Read | Action::Search, Compartment::Shared) => Decision::Allow,
                _ => deny("an organisation sees only the referrals addressed to it"),
            }
        }
        Who::Patient { patient } => match t.compartment {
            Compartment::Patient(p) if p == patient => match action {
                Action::Delete => deny("records are corrected, not deleted; ask your care team"),
                Action::Export => deny("bulk export is for integrations"),
                Action::Create if t.resource_type == "Patient" => {
                    deny("a patient record is created by the clinic")
                }
                _ => Decision::Allow,
            },
            Compartment::Shared if !action.writes() => Decision::Allow,
            _ => deny("patients reach their own record only"),
        },
        Who::Family { grants } => match t.compartment {
            Compartment::Patient(p) => {
                let Some(grant) = grants.iter().find(|g| g.patient == p && g.is_active(now)) else {
                    return deny("no active grant from this patient");
                };
                let part = if t.sensitivity == Sensitivity::SocialNeeds {
                    Part::SocialNeeds
                } else {
                    Part::of(t.resource_type)
                };
                let covered = t.resource_type == "Patient" || grant.parts.contains(&part);
                match action {
                    _ if !covered => {
                        Decision::Deny(format!("the grant does not cover {}", part.as_str()))
                    }
                    Action::Read | Action::Search => Decision::Allow,
                    Action::Create | Action::Update if t.resource_type != "Patient" => {
                        Decision::Allow
                    }
                    _ => deny(
                        "family members read and add to the record; they do not change who the patient is or delete",
                    ),
                }
            }
            Compartment::Shared if !action.writes() => Decision::Allow,
            _ => deny("family members reach the records of patients who granted them access"),
        },
        Who::TeamMember {
            role,
            panel,
            break_glass,
        } => {
            if action == Action::Export {
                return deny("bulk export is for integrations and analysts");
            }
            match t.compartment {
                Compartment::Patient(p) => {
                    let reachable = panel.contains(p)
                        || break_glass.iter().any(|b| b.patient == p && now < b.until);
                    if !reachable {
                        deny(
                            "this patient is not on your care teams (break-glass opens a chart with a reason)",
                        )
                    } else if action == Action::Delete && *role != Role::Clinician {
                        deny("only clinicians delete records")
                    } else {
                        Decision::Allow
                    }
                }
                // Shared directory records (Practitioner, Organization, Location...) are
                // kept by administrators and integrations.
                Compartment::Shared if action.writes() => {
                    deny("shared directory records are kept by administrators and integrations")
                }
                // A Provenance in no chart (its target in none) says nothing a team needs.
                Compartment::Unattached if t.resource_type == "Provenance" => {
                    deny("this provenance is not in a chart you reach")
                }
                Compartment::Unattached | Compartment::Shared => Decision::Allow,
            }
        }
    }
}

/// Which records of `resource_type` (a patient-compartment type when `clinical`) the actor
/// reaches for `action` (Read or Search), for filtering a query.
pub fn reach(
    actor: &Actor,
    action: Action,
    resource_type: &str,
    clinical: bool,
    now: OffsetDateTime,
) -> Reach {
    if let Some(reason) = scope_denial(actor, resource_type, action) {
        return Reach::Nothing(reason);
    }
    if !clinical {
        let t = Target {
            resource_type,
            compartment: Compartment::Shared,
            sensitivity: Sensitivity::Normal,
            addressed_to: None,
        };
        return match who_decides(&actor.who, action, &t, now) {
            Decision::Allow => Reach::Everything,
            Decision::Deny(r) => Reach::Nothing(r),
        };
    }
    let who_reach = match &actor.who {
        Who::Anonymous => Reach::Nothing("sign in first".into()),
        Who::System => Reach::Everything,
        Who::Admin | Who::Analyst => match who_decides(
            &actor.who,
            action,
            &Target {
                resource_type,
                compartment: Compartment::Unattached,
                sensitivity: Sensitivity::Normal,
                addressed_to: None,
            },
            now,
        ) {
            Decision::Allow => Reach::Everything,
            Decision::Deny(r) => Reach::Nothing(r),
        },
        Who::Patient { patient } => Reach::Patients([patient.clone()].into()),
        Who::Partner { organization } if resource_type == "Task" => {
            Reach::AddressedTo(organization.clone())
        }
        Who::Partner { .. } => {
            Reach::Nothing("an organisation sees only the referrals addressed to it".into())
        }
        Who::Family { grants } => {
            let part = Part::of(resource_type);
            let patients: BTreeSet<String> = grants
                .iter()
                .filter(|g| {
                    g.is_active(now) && (resource_type == "Patient" || g.parts.contains(&part))
                })
                .map(|g| g.patient.clone())
                .collect();
            if patients.is_empty() {
                Reach::Nothing(format!("no active grant covers {}", part.as_str()))
            } else {
                Reach::Patients(patients)
            }
        }
        Who::TeamMember {
            panel, break_glass, ..
        } => {
            let mut patients = panel.clone();
            patients.extend(
                break_glass
                    .iter()
                    .filter(|b| now < b.until)
                    .map(|b| b.patient.clone()),
            );
            Reach::Patients(patients)
        }
    };
    match (who_reach, &actor.bound_patient) {
        (Reach::Everything, Some(p)) => Reach::Patients([p.clone()].into()),
        (Reach::AddressedTo(_), Some(p)) => Reach::Nothing(format!(
            "an organisation's token is not bound to Patient/{p}"
        )),
        (Reach::Patients(ps), Some(p)) => {
            if ps.contains(p) {
                Reach::Patients([p.clone()].into())
            } else {
                Reach::Nothing(format!(
                    "this token is for Patient/{p}, whom you do not reach"
                ))
            }
        }
        (r, _) => r,
    }
}

#[cfg(test)]
mod tests;
