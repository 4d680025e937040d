//! Social needs (CLINICAL.md section 4): the CMS Accountable Health Communities health-related
//! social needs screening (AHC HRSN, panel LOINC 96777-8) scored by the exact rules of its
//! table. `ahc` holds the items, their answers and which answers are positive; [`score`]
//! turns a response into each domain's result and the interpersonal-safety total. Answers are
//! checked against the instrument and the question they belong to, never by the question
//! code alone: PRAPARE reuses some of these codes with other answers. `referral` is a
//! community referral's Task through the Gravity SDOH Clinical Care IG's statuses, each set by
//! its side, every ending with its reason.

pub mod ahc;
pub mod measures;
pub mod referral;

use crate::access::{Role, Who};

pub use ahc::{Answer, Domain, DomainResult, Item, Screen, ScreenRefused, score};

/// What the patient says about one need the screen found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Choice {
    /// "I want help with this": the need may be referred to a community organisation.
    WantHelp,
    /// "Not now".
    NotNow,
    /// "I'm already getting help".
    AlreadyGettingHelp,
}

impl Choice {
    pub const ALL: [Choice; 3] = [Choice::WantHelp, Choice::NotNow, Choice::AlreadyGettingHelp];

    pub fn as_str(self) -> &'static str {
        match self {
            Choice::WantHelp => "want-help",
            Choice::NotNow => "not-now",
            Choice::AlreadyGettingHelp => "already-getting-help",
        }
    }

    pub fn parse(s: &str) -> Option<Choice> {
        Choice::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the need may be shared with a community organisation: only when the patient
    /// asked for help. Nothing is referred without it.
    pub fn permits_referral(self) -> bool {
        self == Choice::WantHelp
    }
}

/// Who records a patient's choice about their needs: the patient, or a member of their care
/// team with them (a community health worker at the front desk, a social worker, a nurse, a
/// clinician, the clinic lead); never a family member, whose grant lets them screen but not
/// decide for the patient what is shared.
pub fn records_choice(who: &Who, patient: &str) -> bool {
    match who {
        Who::Patient { patient: p } => p == patient,
        Who::TeamMember { role, panel, .. } => {
            panel.contains(patient)
                && matches!(
                    role,
                    Role::CommunityHealthWorker
                        | Role::SocialWorker
                        | Role::Nurse
                        | Role::Clinician
                        | Role::ClinicLead
                )
        }
        _ => false,
    }
}

/// Whether only the patient herself says whether a referral helped.
pub fn says_helped(who: &Who, patient: &str) -> bool {
    matches!(who, Who::Patient { patient: p } if p == patient)
}
