//! Self-started treatment from an action plan (CLINICAL.md section 3): the rescue pack's
//! lifecycle as a state machine over recorded events.
//!
//! A pack is the fold of its events: eligibility (a clinician, with the reason), teach-back (a
//! pharmacist), dispensing (a pharmacist: each drug with its expiry), the start (the patient or
//! a family member: symptoms, since when, what was taken), the team's contact, the check-in
//! (better, same, worse), the outcome, the pack's expiry, and the replacement. [`Pack::apply`]
//! refuses a transition that does not fit, with the reason, and otherwise says what follows:
//! the deadlines to open and close, and whom to tell. The protocol (which drugs, which
//! symptoms, who may do what, and every deadline with its escalation chain) is data.

use crate::access::Role;
use crate::calendar::{BusinessCalendar, Within};
use crate::deadline::{Deadline, Escalation};
use std::fmt;
use time::{Date, OffsetDateTime};

/// A self-started treatment protocol (the COPD rescue pack is the default one).
#[derive(Debug, Clone)]
pub struct Protocol {
    pub key: String,
    /// The drugs of a pack, by key; a dispense names every one.
    pub drugs: Vec<String>,
    /// The symptoms a start may name, by key.
    pub symptoms: Vec<String>,
    /// Who may record eligibility, teach-back and dispensing.
    pub eligibility_by: Vec<Role>,
    pub teach_back_by: Vec<Role>,
    pub dispense_by: Vec<Role>,
    /// The team reaching the patient after a start.
    pub contact: Escalation,
    /// When the check-in question is put to the patient.
    pub check_in_opens: Within,
    /// The check-in arriving (the team chases it when it does not).
    pub check_in: Escalation,
    /// Following up a check-in that was not "better".
    pub not_better: Escalation,
    /// Recording the outcome.
    pub outcome: Escalation,
    /// Issuing a replacement pack.
    pub replacement: Escalation,
    /// Days of daily glucose checks after a start, for a patient with diabetes (0: none).
    pub glucose_days: i64,
}

/// Who recorded an event: their role and a reference to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct By {
    pub role: Role,
    pub who: String,
}

/// One drug of a dispensed pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub drug: String,
    pub expires: Date,
}

/// How the patient is at the check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckIn {
    Better,
    Same,
    Worse,
}

impl CheckIn {
    pub const ALL: [CheckIn; 3] = [CheckIn::Better, CheckIn::Same, CheckIn::Worse];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckIn::Better => "better",
            CheckIn::Same => "same",
            CheckIn::Worse => "worse",
        }
    }

    pub fn parse(s: &str) -> Option<CheckIn> {
        CheckIn::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How the episode ended, 14 days on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    RecoveredAtHome,
    UrgentCareOrEd,
    Admitted,
    Unknown,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::RecoveredAtHome,
        Outcome::UrgentCareOrEd,
        Outcome::Admitted,
        Outcome::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::RecoveredAtHome => "recovered-at-home",
            Outcome::UrgentCareOrEd => "urgent-care-or-ed",
            Outcome::Admitted => "admitted",
            Outcome::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What happened to a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Eligible {
        reason: String,
    },
    TaughtBack,
    Dispensed {
        items: Vec<Item>,
    },
    Started {
        symptoms: Vec<String>,
        since: OffsetDateTime,
        taken: Vec<String>,
    },
    Contacted {
        note: String,
    },
    CheckedIn {
        answer: CheckIn,
    },
    Outcome {
        outcome: Outcome,
    },
    /// The pack passed its expiry unused (recorded by the system when it does).
    Expired,
    /// A new pack was issued in its place; this one's story ends here.
    Replaced {
        items: Vec<Item>,
    },
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Eligible { .. } => "eligible",
            Event::TaughtBack => "taught-back",
            Event::Dispensed { .. } => "dispensed",
            Event::Started { .. } => "started",
            Event::Contacted { .. } => "contacted",
            Event::CheckedIn { .. } => "checked-in",
            Event::Outcome { .. } => "outcome",
            Event::Expired => "expired",
            Event::Replaced { .. } => "replaced",
        }
    }
}

/// An event with who recorded it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub event: Event,
    pub by: By,
    pub at: OffsetDateTime,
}

/// The team deadlines of an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskKind {
    Contact,
    CheckIn,
    NotBetter,
    Outcome,
    Replacement,
}

impl TaskKind {
    pub const ALL: [TaskKind; 5] = [
        TaskKind::Contact,
        TaskKind::CheckIn,
        TaskKind::NotBetter,
        TaskKind::Outcome,
        TaskKind::Replacement,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Contact => "rescue-pack-contact",
            TaskKind::CheckIn => "rescue-pack-check-in",
            TaskKind::NotBetter => "rescue-pack-not-better",
            TaskKind::Outcome => "rescue-pack-outcome",
            TaskKind::Replacement => "rescue-pack-replacement",
        }
    }

    pub fn parse(s: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Something to tell someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// To the team: a pack was started.
    Started,
    /// To the patient: the pack they started had expired; a replacement is on its way.
    StartedExpired,
    /// To the patient: the team has been in touch.
    Contacted,
    /// To the patient: not better means same-day care; to the team: follow up today.
    NotBetter,
    /// To the patient with diabetes: check glucose every day while on the steroid.
    CheckGlucose,
    /// To the team: a pack expired unused.
    Expired,
    /// To the patient: a new pack is ready.
    Replaced,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Started => "rescue-pack-started",
            Notice::StartedExpired => "rescue-pack-started-expired",
            Notice::Contacted => "rescue-pack-contacted",
            Notice::NotBetter => "rescue-pack-not-better",
            Notice::CheckGlucose => "rescue-pack-check-glucose",
            Notice::Expired => "rescue-pack-expired",
            Notice::Replaced => "rescue-pack-replaced",
        }
    }
}

/// What an accepted event sets off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Open(TaskKind, Deadline),
    Close(TaskKind),
    TellTeam(Notice),
    TellPatient(Notice),
    /// The patient's glucose readings until then are flagged for the team.
    WatchGlucose {
        until: OffsetDateTime,
    },
}

/// Facts about the patient that change what follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    pub has_diabetes: bool,
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// A stable key for translated messages.
    pub key: &'static str,
    pub reason: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Refused {}

fn refuse(key: &'static str, reason: impl Into<String>) -> Refused {
    Refused {
        key,
        reason: reason.into(),
    }
}

/// Where a pack is, for the patient and the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Nothing recorded yet.
    New,
    /// Eligible; teach-back still to do.
    Eligible,
    /// Taught; not yet dispensed.
    Taught,
    /// In the patient's hands, ready to start.
    Ready,
    /// Past its expiry, unused.
    Expired,
    /// Started; the episode is open until its outcome is recorded.
    Started,
    /// The outcome is recorded (the episode is closed).
    Closed,
    /// Replaced by a new pack (and any episode on it closed).
    Replaced,
}

/// The state of one pack: the fold of its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pack {
    pub events: Vec<Recorded>,
}

impl Pack {
    pub fn from_events(protocol: &Protocol, events: Vec<Recorded>) -> Result<Pack, Refused> {
        let mut pack = Pack::default();
        for e in events {
            pack.check(protocol, &e)?;
            pack.events.push(e);
        }
        Ok(pack)
    }

    fn find(&self, kind: &str) -> Option<&Recorded> {
        self.events.iter().find(|e| e.event.kind() == kind)
    }

    pub fn eligibility(&self) -> Option<(&str, &Recorded)> {
        self.events.iter().find_map(|r| match &r.event {
            Event::Eligible { reason } => Some((reason.as_str(), r)),
            _ => None,
        })
    }

    pub fn items(&self) -> &[Item] {
        self.events
            .iter()
            .find_map(|r| match &r.event {
                Event::Dispensed { items } => Some(items.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// The start: symptoms, since when, what was taken, and when it was recorded.
    pub fn start(&self) -> Option<(&[String], OffsetDateTime, &[String], &Recorded)> {
        self.events.iter().find_map(|r| match &r.event {
            Event::Started {
                symptoms,
                since,
                taken,
            } => Some((symptoms.as_slice(), *since, taken.as_slice(), r)),
            _ => None,
        })
    }

    pub fn started_at(&self) -> Option<OffsetDateTime> {
        self.find("started").map(|r| r.at)
    }

    pub fn contact(&self) -> Option<&Recorded> {
        self.find("contacted")
    }

    pub fn check_in(&self) -> Option<(CheckIn, &Recorded)> {
        self.events.iter().find_map(|r| match &r.event {
            Event::CheckedIn { answer } => Some((*answer, r)),
            _ => None,
        })
    }

    pub fn outcome(&self) -> Option<(Outcome, &Recorded)> {
        self.events.iter().find_map(|r| match &r.event {
            Event::Outcome { outcome } => Some((*outcome, r)),
            _ => None,
        })
    }

    pub fn replacement(&self) -> Option<&[Item]> {
        self.events.iter().find_map(|r| match &r.event {
            Event::Replaced { items } => Some(items.as_slice()),
            _ => None,
        })
    }

    /// The first expiry among the pack's drugs.
    pub fn expires(&self) -> Option<Date> {
        self.items().iter().map(|i| i.expires).min()
    }

    pub fn is_expired_on(&self, day: Date) -> bool {
        self.expires().is_some_and(|e| e < day)
    }

    pub fn stage(&self) -> Stage {
        let started = self.started_at().is_some();
        if started && self.outcome().is_none() {
            Stage::Started
        } else if self.replacement().is_some() {
            Stage::Replaced
        } else if self.outcome().is_some() {
            Stage::Closed
        } else if self.find("expired").is_some() {
            Stage::Expired
        } else if !self.items().is_empty() {
            Stage::Ready
        } else if self.find("taught-back").is_some() {
            Stage::Taught
        } else if self.eligibility().is_some() {
            Stage::Eligible
        } else {
            Stage::New
        }
    }

    /// The events a replacement pack begins with: this pack's eligibility and teach-back as
    /// they were recorded, and the dispense of the new items.
    pub fn successor(&self, replaced: &Recorded) -> Pack {
        let mut events: Vec<Recorded> = self
            .events
            .iter()
            .filter(|r| matches!(r.event, Event::Eligible { .. } | Event::TaughtBack))
            .cloned()
            .collect();
        if let Event::Replaced { items } = &replaced.event {
            events.push(Recorded {
                event: Event::Dispensed {
                    items: items.clone(),
                },
                by: replaced.by.clone(),
                at: replaced.at,
            });
        }
        Pack { events }
    }

    /// Whether someone in `role` may record an event of `kind` (see [`Event::kind`]) on this
    /// pack on `today`: who may, and in what order. The pages ask this to offer only the
    /// actions that would be accepted.
    pub fn may(&self, p: &Protocol, role: Role, kind: &str, today: Date) -> bool {
        self.permitted(p, role, kind, today).is_ok()
    }

    /// Who may record an event of this kind, and whether it fits the events so far.
    fn permitted(&self, p: &Protocol, role: Role, kind: &str, today: Date) -> Result<(), Refused> {
        let team = role.is_team();
        let patient_side = matches!(role, Role::Patient | Role::Family);
        let stage = self.stage();
        let episode_event = matches!(kind, "contacted" | "checked-in" | "outcome");
        if self.replacement().is_some() && !episode_event {
            return Err(refuse(
                "pack-replaced",
                "this pack has been replaced; record it on the new pack",
            ));
        }
        match kind {
            "eligible" => {
                if !p.eligibility_by.contains(&role) {
                    return Err(refuse(
                        "eligibility-by",
                        format!("eligibility is recorded by {}", names(&p.eligibility_by)),
                    ));
                }
                if stage != Stage::New {
                    return Err(refuse(
                        "eligibility-recorded",
                        "eligibility is already recorded for this pack",
                    ));
                }
            }
            "taught-back" => {
                if !p.teach_back_by.contains(&role) {
                    return Err(refuse(
                        "teach-back-by",
                        format!("teach-back is recorded by {}", names(&p.teach_back_by)),
                    ));
                }
                match stage {
                    Stage::New => {
                        return Err(refuse(
                            "teach-back-before-eligibility",
                            "a clinician records why the patient is eligible before teach-back",
                        ));
                    }
                    Stage::Eligible => {}
                    _ => {
                        return Err(refuse(
                            "teach-back-recorded",
                            "teach-back is already recorded for this pack",
                        ));
                    }
                }
            }
            "dispensed" | "replaced" => {
                if !p.dispense_by.contains(&role) {
                    return Err(refuse(
                        "dispense-by",
                        format!("a pack is dispensed by {}", names(&p.dispense_by)),
                    ));
                }
                if kind == "replaced" {
                    let used_or_old = self.started_at().is_some()
                        || stage == Stage::Expired
                        || self.is_expired_on(today);
                    if !used_or_old {
                        return Err(refuse(
                            "replace-unused",
                            "this pack is unused and in date; a replacement follows a start or an expiry",
                        ));
                    }
                } else {
                    match stage {
                        Stage::New | Stage::Eligible => {
                            return Err(refuse(
                                "dispense-before-teaching",
                                "a pack is dispensed only after eligibility and teach-back are recorded",
                            ));
                        }
                        Stage::Taught => {}
                        _ => {
                            return Err(refuse(
                                "dispensed-already",
                                "this pack is already dispensed; issue a replacement instead",
                            ));
                        }
                    }
                }
            }
            "started" => {
                if !patient_side {
                    return Err(refuse(
                        "start-by",
                        "the patient or their family records starting the pack",
                    ));
                }
                match stage {
                    Stage::Ready | Stage::Expired => {}
                    Stage::Started | Stage::Closed | Stage::Replaced => {
                        return Err(refuse(
                            "started-already",
                            "this pack has already been started",
                        ));
                    }
                    _ => {
                        return Err(refuse(
                            "start-before-dispense",
                            "there is no pack dispensed to start",
                        ));
                    }
                }
            }
            "contacted" => {
                if !team {
                    return Err(refuse(
                        "contact-by",
                        "the care team records that they reached the patient",
                    ));
                }
                self.need_episode()?;
                if self.contact().is_some() {
                    return Err(refuse(
                        "contacted-already",
                        "the team's contact is already recorded for this episode",
                    ));
                }
            }
            "checked-in" => {
                if !(patient_side || team) {
                    return Err(refuse(
                        "check-in-by",
                        "the patient, their family or the team records the check-in",
                    ));
                }
                self.need_episode()?;
                if self.check_in().is_some() {
                    return Err(refuse(
                        "checked-in-already",
                        "the check-in is already recorded for this episode",
                    ));
                }
            }
            "outcome" => {
                if !team {
                    return Err(refuse(
                        "outcome-by",
                        "the care team records the episode's outcome",
                    ));
                }
                self.need_episode()?;
                if self.outcome().is_some() {
                    return Err(refuse(
                        "outcome-recorded",
                        "the outcome is already recorded for this episode",
                    ));
                }
            }
            "expired" => {
                if stage != Stage::Ready || !self.is_expired_on(today) {
                    return Err(refuse(
                        "not-expired",
                        "only an unused pack past its expiry can expire",
                    ));
                }
            }
            other => {
                return Err(refuse(
                    "event-unknown",
                    format!("'{other}' is not an event of a pack"),
                ));
            }
        }
        Ok(())
    }

    /// Whether `r` may follow the events so far (ignoring what it sets off): who and when,
    /// then what it says.
    fn check(&self, p: &Protocol, r: &Recorded) -> Result<(), Refused> {
        self.permitted(p, r.by.role, r.event.kind(), r.at.date())?;
        match &r.event {
            Event::Eligible { reason } if reason.trim().is_empty() => Err(refuse(
                "eligibility-reason",
                "say why the patient should have a pack (for example an exacerbation in the past year)",
            )),
            Event::Dispensed { items } | Event::Replaced { items } => {
                check_items(p, items, r.at.date())
            }
            Event::Started {
                symptoms,
                since,
                taken,
            } => {
                if symptoms.is_empty() {
                    return Err(refuse("start-symptoms", "choose at least one symptom"));
                }
                if let Some(s) = symptoms.iter().find(|s| !p.symptoms.contains(s)) {
                    return Err(refuse(
                        "start-symptom-unknown",
                        format!("'{s}' is not a symptom of this action plan"),
                    ));
                }
                if taken.is_empty() {
                    return Err(refuse("start-taken", "say which medicine you have started"));
                }
                if let Some(d) = taken.iter().find(|d| !p.drugs.contains(d)) {
                    return Err(refuse(
                        "start-drug-unknown",
                        format!("'{d}' is not in this pack"),
                    ));
                }
                if *since > r.at {
                    return Err(refuse(
                        "start-since-future",
                        "when the symptoms began cannot be in the future",
                    ));
                }
                if *since < r.at - time::Duration::days(30) {
                    return Err(refuse(
                        "start-since-old",
                        "symptoms that began more than 30 days ago need a call to the team, not the pack",
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn need_episode(&self) -> Result<(), Refused> {
        if self.started_at().is_none() {
            return Err(refuse(
                "not-started",
                "this pack has not been started, so there is no episode to record against",
            ));
        }
        Ok(())
    }

    /// Applies an event: the new state and what it sets off, or the reason it cannot be.
    pub fn apply(
        &self,
        p: &Protocol,
        cal: &BusinessCalendar,
        ctx: Context,
        r: Recorded,
    ) -> Result<(Pack, Vec<Effect>), Refused> {
        self.check(p, &r)?;
        let at = r.at;
        let mut fx = Vec::new();
        match &r.event {
            Event::Started { .. } => {
                fx.push(Effect::Open(TaskKind::Contact, p.contact.open(cal, at)));
                fx.push(Effect::Open(TaskKind::CheckIn, p.check_in.open(cal, at)));
                fx.push(Effect::Open(TaskKind::Outcome, p.outcome.open(cal, at)));
                fx.push(Effect::TellTeam(Notice::Started));
                if self.is_expired_on(at.date()) {
                    fx.push(Effect::TellPatient(Notice::StartedExpired));
                    // An expiry already noticed has its replacement task open.
                    if self.find("expired").is_none() {
                        fx.push(Effect::Open(
                            TaskKind::Replacement,
                            p.replacement.open(cal, at),
                        ));
                    }
                }
                if ctx.has_diabetes && p.glucose_days > 0 {
                    fx.push(Effect::TellPatient(Notice::CheckGlucose));
                    fx.push(Effect::WatchGlucose {
                        until: at + time::Duration::days(p.glucose_days),
                    });
                }
            }
            Event::Contacted { .. } => {
                fx.push(Effect::Close(TaskKind::Contact));
                fx.push(Effect::TellPatient(Notice::Contacted));
            }
            Event::CheckedIn { answer } => {
                fx.push(Effect::Close(TaskKind::CheckIn));
                if *answer != CheckIn::Better {
                    fx.push(Effect::TellPatient(Notice::NotBetter));
                    fx.push(Effect::TellTeam(Notice::NotBetter));
                    fx.push(Effect::Open(
                        TaskKind::NotBetter,
                        p.not_better.open(cal, at),
                    ));
                }
            }
            Event::Outcome { .. } => {
                fx.push(Effect::Close(TaskKind::Outcome));
                fx.push(Effect::Close(TaskKind::NotBetter));
                fx.push(Effect::Close(TaskKind::CheckIn));
                if self.replacement().is_none() && !self.replacement_requested() {
                    fx.push(Effect::Open(
                        TaskKind::Replacement,
                        p.replacement.open(cal, at),
                    ));
                }
            }
            Event::Expired => {
                fx.push(Effect::TellTeam(Notice::Expired));
                fx.push(Effect::Open(
                    TaskKind::Replacement,
                    p.replacement.open(cal, at),
                ));
            }
            Event::Replaced { .. } => {
                fx.push(Effect::Close(TaskKind::Replacement));
                fx.push(Effect::TellPatient(Notice::Replaced));
            }
            Event::Eligible { .. } | Event::TaughtBack | Event::Dispensed { .. } => {}
        }
        let mut next = self.clone();
        next.events.push(r);
        Ok((next, fx))
    }

    /// Whether a replacement task was already opened (by an expired start or an expiry).
    fn replacement_requested(&self) -> bool {
        self.find("expired").is_some()
            || self
                .start()
                .is_some_and(|(_, _, _, r)| self.expires().is_some_and(|e| e < r.at.date()))
    }
}

fn names(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str().replace('-', " "))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn check_items(p: &Protocol, items: &[Item], today: Date) -> Result<(), Refused> {
    for d in &p.drugs {
        if !items.iter().any(|i| &i.drug == d) {
            return Err(refuse(
                "dispense-missing-drug",
                format!("the pack needs {d}, with its expiry date"),
            ));
        }
    }
    if let Some(i) = items.iter().find(|i| !p.drugs.contains(&i.drug)) {
        return Err(refuse(
            "dispense-unknown-drug",
            format!("'{}' is not a drug of this pack", i.drug),
        ));
    }
    if let Some(i) = items.iter().find(|i| i.expires <= today) {
        return Err(refuse(
            "dispense-expired",
            format!(
                "{} expires on {}, which is not after today: dispense an in-date one",
                i.drug, i.expires
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
