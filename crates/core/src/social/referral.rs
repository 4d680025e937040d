//! A community referral's Task through the statuses of the Gravity SDOH Clinical Care IG
//! (`SDOHCC-ValueSetReferralTaskStatus`: every FHIR TaskStatus but `ready` and `received`),
//! each set by the side the IG names: the requester (the clinic) drafts, requests and marks an
//! error; the referral target (the organisation) accepts, rejects, starts, pauses, fails and
//! completes; either cancels. Every ending carries its reason (need met, need not met, could
//! not reach the patient, patient declined, not eligible, other), which is what closing the
//! loop means and what the measures count.

use crate::access::{Role, Who};
use crate::calendar::Within;
use crate::deadline::{Escalation, Step};
use std::fmt;

/// The team's deadlines on a referral (configurable): the organisation accepts it within two
/// business days, else the community health worker follows up, then the social worker, then
/// the clinic lead; once accepted, the loop is followed up at 14 days along the same roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub accept: Escalation,
    pub follow_up: Escalation,
}

impl Rules {
    /// The chain's roles in order (each a care-team role), the time the organisation has to
    /// accept, the follow-up once it has, and how long each later step of the chain has.
    pub fn new(
        roles: &[Role],
        accept: Within,
        follow_up: Within,
        step: Within,
    ) -> Result<Rules, String> {
        let chain = |first: Within| {
            Escalation::new(
                roles
                    .iter()
                    .enumerate()
                    .map(|(i, role)| Step {
                        role: *role,
                        within: if i == 0 { first } else { step },
                    })
                    .collect(),
            )
            .map_err(|e| e.to_string())
        };
        Ok(Rules {
            accept: chain(accept)?,
            follow_up: chain(follow_up)?,
        })
    }

    /// The defaults' chain: the community health worker, the social worker, the clinic lead.
    pub const CHAIN: [Role; 3] = [
        Role::CommunityHealthWorker,
        Role::SocialWorker,
        Role::ClinicLead,
    ];
}

impl Default for Rules {
    fn default() -> Self {
        Rules::new(
            &Rules::CHAIN,
            Within::BusinessDays(2),
            Within::Days(14),
            Within::BusinessDays(1),
        )
        .unwrap_or_else(|_| Rules {
            accept: Escalation::single(Role::CommunityHealthWorker, Within::BusinessDays(2)),
            follow_up: Escalation::single(Role::CommunityHealthWorker, Within::Days(14)),
        })
    }
}

/// The patient's own account of whether a referral helped, kept beside the organisation's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Helped {
    Yes,
    Partly,
    No,
}

impl Helped {
    pub const ALL: [Helped; 3] = [Helped::Yes, Helped::Partly, Helped::No];

    pub fn as_str(self) -> &'static str {
        match self {
            Helped::Yes => "yes",
            Helped::Partly => "partly",
            Helped::No => "no",
        }
    }

    pub fn parse(s: &str) -> Option<Helped> {
        Helped::ALL.into_iter().find(|h| h.as_str() == s)
    }

    /// Whether the patient says the need was met (partly counts as not met).
    pub fn need_met(self) -> bool {
        self == Helped::Yes
    }
}

/// Whether the patient may say if a referral helped: once the organisation has taken it on
/// (accepted, started or ended), never before and never for one made in error.
pub fn asks_patient(status: Status) -> bool {
    !matches!(
        status,
        Status::Draft | Status::Requested | Status::EnteredInError | Status::Cancelled
    )
}

/// The side a writer of a referral speaks for: the organisation's own account, or an
/// integration with system rights, for the organisation the referral is addressed to; the
/// clinic's people for the clinic.
pub fn side_of(who: &Who) -> Side {
    match who {
        Who::System | Who::Partner { .. } => Side::Target,
        _ => Side::Requester,
    }
}

/// What an organisation may change on a referral addressed to it: where it stands (status,
/// its reason, the organisation's own business status), its notes and output, when the work
/// ran; never whom or what it is about, nor to whom it is addressed.
pub const TARGET_CHANGES: [&str; 8] = [
    "status",
    "statusReason",
    "businessStatus",
    "note",
    "output",
    "executionPeriod",
    "lastModified",
    "meta",
];

/// Who refers a patient to a community organisation: the community health worker or the
/// social worker on the patient's care team.
pub fn refers(who: &Who, patient: &str) -> bool {
    matches!(
        who,
        Who::TeamMember { role: Role::CommunityHealthWorker | Role::SocialWorker, panel, .. }
            if panel.contains(patient)
    )
}

/// The referral Task's status (FHIR `Task.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Draft,
    Requested,
    Accepted,
    Rejected,
    InProgress,
    OnHold,
    Failed,
    Completed,
    Cancelled,
    EnteredInError,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Draft,
        Status::Requested,
        Status::Accepted,
        Status::Rejected,
        Status::InProgress,
        Status::OnHold,
        Status::Failed,
        Status::Completed,
        Status::Cancelled,
        Status::EnteredInError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Requested => "requested",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::InProgress => "in-progress",
            Status::OnHold => "on-hold",
            Status::Failed => "failed",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::EnteredInError => "entered-in-error",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the referral has ended (nothing follows but marking it an error).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Rejected
                | Status::Failed
                | Status::Completed
                | Status::Cancelled
                | Status::EnteredInError
        )
    }

    /// Which side sets this status.
    fn set_by(self) -> &'static [Side] {
        match self {
            Status::Draft | Status::Requested | Status::EnteredInError => &[Side::Requester],
            Status::Cancelled => &[Side::Requester, Side::Target],
            _ => &[Side::Target],
        }
    }
}

/// Who moves the referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The clinic that referred.
    Requester,
    /// The community organisation the referral is addressed to.
    Target,
}

/// Why a referral ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ending {
    NeedMet,
    NeedNotMet,
    CouldNotReach,
    Declined,
    NotEligible,
    Other,
}

impl Ending {
    pub const ALL: [Ending; 6] = [
        Ending::NeedMet,
        Ending::NeedNotMet,
        Ending::CouldNotReach,
        Ending::Declined,
        Ending::NotEligible,
        Ending::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Ending::NeedMet => "need-met",
            Ending::NeedNotMet => "need-not-met",
            Ending::CouldNotReach => "could-not-reach",
            Ending::Declined => "declined",
            Ending::NotEligible => "not-eligible",
            Ending::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Ending> {
        Ending::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Why a move was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveRefused {
    pub key: &'static str,
    pub english: String,
}

impl fmt::Display for MoveRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.english)
    }
}

impl std::error::Error for MoveRefused {}

fn refuse(key: &'static str, english: String) -> MoveRefused {
    MoveRefused { key, english }
}

/// The statuses that may follow `from` (before who may set them is checked).
pub fn next(from: Status) -> &'static [Status] {
    use Status::*;
    match from {
        Draft => &[Requested, Cancelled, EnteredInError],
        Requested => &[Accepted, Rejected, Cancelled, EnteredInError],
        Accepted => &[InProgress, Completed, Failed, Cancelled, EnteredInError],
        InProgress => &[OnHold, Completed, Failed, Cancelled, EnteredInError],
        OnHold => &[InProgress, Failed, Cancelled, EnteredInError],
        Rejected | Failed | Completed | Cancelled => &[EnteredInError],
        EnteredInError => &[],
    }
}

/// Moves a referral from `from` to `to` by `side`, with the ending's reason when it ends; the
/// new status, or why not: a move the IG does not allow, a side that does not set that status,
/// an ending without its reason, a reason on a move that ends nothing.
pub fn advance(
    from: Status,
    to: Status,
    side: Side,
    reason: Option<Ending>,
) -> Result<Status, MoveRefused> {
    if !next(from).contains(&to) {
        return Err(refuse(
            "referral-move",
            format!(
                "a referral that is {} cannot become {}",
                from.as_str(),
                to.as_str()
            ),
        ));
    }
    if !to.set_by().contains(&side) {
        return Err(refuse(
            "referral-side",
            format!(
                "{} is set by the {}",
                to.as_str(),
                match to.set_by() {
                    [Side::Requester] => "clinic that referred",
                    _ => "organisation the referral is addressed to",
                }
            ),
        ));
    }
    let ends = to.is_final() && to != Status::EnteredInError;
    match (ends, reason) {
        (true, None) => Err(refuse(
            "referral-reason",
            "say why the referral ended (need met, need not met, could not reach the patient, declined, not eligible, other)".into(),
        )),
        (false, Some(_)) => Err(refuse(
            "referral-reason-unneeded",
            "a reason goes with a referral's ending".into(),
        )),
        _ => Ok(to),
    }
}

/// Whether a referral's loop is closed: completed with its outcome recorded.
pub fn loop_closed(status: Status, reason: Option<Ending>) -> bool {
    status == Status::Completed && reason.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Side::*;
    use Status::*;

    #[test]
    fn a_referral_goes_from_requested_to_completed_with_its_outcome() {
        let s = advance(Requested, Accepted, Target, None).unwrap();
        let s = advance(s, InProgress, Target, None).unwrap();
        let s = advance(s, OnHold, Target, None).unwrap();
        let s = advance(s, InProgress, Target, None).unwrap();
        let s = advance(s, Completed, Target, Some(Ending::NeedMet)).unwrap();
        assert!(s.is_final());
        assert!(loop_closed(s, Some(Ending::NeedMet)));
        assert!(!loop_closed(Cancelled, Some(Ending::CouldNotReach)));
    }

    #[test]
    fn the_chains_are_data_with_team_roles_only() {
        let r = Rules::default();
        let roles: Vec<Role> = r.accept.steps().iter().map(|s| s.role).collect();
        assert_eq!(roles, Rules::CHAIN);
        assert_eq!(r.accept.steps()[0].within, Within::BusinessDays(2));
        assert_eq!(r.follow_up.steps()[0].within, Within::Days(14));
        assert_eq!(r.follow_up.steps()[2].within, Within::BusinessDays(1));
        let site = Rules::new(
            &[Role::SocialWorker, Role::ClinicLead],
            Within::BusinessDays(3),
            Within::Days(7),
            Within::BusinessHours(4),
        )
        .unwrap();
        assert_eq!(site.accept.steps().len(), 2);
        assert_eq!(site.accept.steps()[1].within, Within::BusinessHours(4));
        assert!(Rules::new(&[], Within::Days(1), Within::Days(1), Within::Days(1)).is_err());
        let not_team = Rules::new(
            &[Role::Partner],
            Within::Days(1),
            Within::Days(1),
            Within::Days(1),
        );
        assert!(not_team.unwrap_err().contains("not a care-team role"));
    }

    #[test]
    fn each_status_is_set_by_its_side() {
        assert_eq!(
            advance(Requested, Accepted, Requester, None)
                .unwrap_err()
                .key,
            "referral-side",
            "the clinic does not accept its own referral"
        );
        assert_eq!(
            advance(Draft, Requested, Target, None).unwrap_err().key,
            "referral-side"
        );
        assert!(advance(Requested, Cancelled, Requester, Some(Ending::Declined)).is_ok());
        assert!(advance(Accepted, Cancelled, Target, Some(Ending::CouldNotReach)).is_ok());
        assert!(advance(Completed, EnteredInError, Requester, None).is_ok());
        assert_eq!(
            advance(Completed, EnteredInError, Target, None)
                .unwrap_err()
                .key,
            "referral-side"
        );
    }

    #[test]
    fn every_ending_needs_its_reason_and_nothing_else_takes_one() {
        for to in [Rejected, Cancelled] {
            assert_eq!(
                advance(Requested, to, Target, None).unwrap_err().key,
                "referral-reason"
            );
        }
        for to in [Completed, Failed] {
            assert_eq!(
                advance(InProgress, to, Target, None).unwrap_err().key,
                "referral-reason"
            );
        }
        assert_eq!(
            advance(Requested, Accepted, Target, Some(Ending::NeedMet))
                .unwrap_err()
                .key,
            "referral-reason-unneeded"
        );
    }

    #[test]
    fn a_referral_never_goes_back_and_an_ended_one_only_to_an_error() {
        assert_eq!(
            advance(Accepted, Requested, Requester, None)
                .unwrap_err()
                .key,
            "referral-move"
        );
        assert_eq!(
            advance(Requested, InProgress, Target, None)
                .unwrap_err()
                .key,
            "referral-move",
            "accepted first"
        );
        for end in [Rejected, Failed, Completed, Cancelled] {
            assert_eq!(next(end), [EnteredInError]);
        }
        assert!(next(EnteredInError).is_empty());
        // The IG's value set has no `ready` or `received`.
        assert_eq!(Status::parse("received"), None);
        assert_eq!(Status::parse("ready"), None);
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for e in Ending::ALL {
            assert_eq!(Ending::parse(e.as_str()), Some(e));
        }
    }
}
