//! The partnership check on a new prescription (CLINICAL.md section 4): can the patient
//! **afford** it, **reach** it, **understand** it, and read its instructions in their
//! **language**? Each question is clear, a barrier (with its reason), or not yet known (what is
//! missing); the check is complete when every question is answered, and clean when it is
//! complete with no barrier. A barrier is team work: it goes to the role its kind names with a
//! deadline and an escalation chain, and is resolved by recording what was done. The patient
//! can say "I can't" at any time, which opens a barrier of that kind even on a clean check.

use super::{CoverageKind, Drug, Formulary, Money};
use crate::access::Role;
use crate::calendar::Within;
use crate::deadline::{Escalation, Step};
use std::collections::BTreeMap;
use std::fmt;

/// What a barrier is about: the check's four questions, and anything else the patient says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Afford,
    Reach,
    Understand,
    Language,
    /// "I can't" for another reason, in the patient's words.
    Other,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Afford,
        Kind::Reach,
        Kind::Understand,
        Kind::Language,
        Kind::Other,
    ];
    /// The questions the check asks of every new prescription.
    pub const QUESTIONS: [Kind; 4] = [Kind::Afford, Kind::Reach, Kind::Understand, Kind::Language];
    /// What a patient (or family) may say they can't do: afford it, get it, understand it, or
    /// something else in their words. Instructions in their language are the site's to find.
    pub const PATIENT_SAYS: [Kind; 4] = [Kind::Afford, Kind::Reach, Kind::Understand, Kind::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Afford => "afford",
            Kind::Reach => "reach",
            Kind::Understand => "understand",
            Kind::Language => "language",
            Kind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the patient gets their medicines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Getting {
    PickUp,
    MailOrder,
    Delivery,
    /// Someone (family, a neighbour) brings them.
    SomeoneBrings,
}

impl Getting {
    pub const ALL: [Getting; 4] = [
        Getting::PickUp,
        Getting::MailOrder,
        Getting::Delivery,
        Getting::SomeoneBrings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Getting::PickUp => "pick-up",
            Getting::MailOrder => "mail-order",
            Getting::Delivery => "delivery",
            Getting::SomeoneBrings => "someone-brings",
        }
    }

    pub fn parse(s: &str) -> Option<Getting> {
        Getting::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// The four cost-related non-adherence items of the Medicare Current Beneficiary Survey, over
/// the last 12 months, because of cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CostAnswers {
    pub did_not_fill: bool,
    pub skipped_doses: bool,
    pub smaller_doses: bool,
    pub delayed_fill: bool,
}

impl CostAnswers {
    /// The four questions' codes (the questionnaire's linkIds), in the order of the fields.
    pub const ITEMS: [&'static str; 4] = [
        "did-not-fill",
        "skipped-doses",
        "smaller-doses",
        "delayed-fill",
    ];

    /// Any "yes": cost-related non-adherence in the last 12 months.
    pub fn any(self) -> bool {
        self.did_not_fill || self.skipped_doses || self.smaller_doses || self.delayed_fill
    }

    /// Each question's code and answer, in [`CostAnswers::ITEMS`] order.
    pub fn items(self) -> [(&'static str, bool); 4] {
        let [a, b, c, d] = Self::ITEMS;
        [
            (a, self.did_not_fill),
            (b, self.skipped_doses),
            (c, self.smaller_doses),
            (d, self.delayed_fill),
        ]
    }

    /// The answers, when all four questions are answered (`answer` by code); None when any
    /// is not: a partial set is not an answer to the questions.
    pub fn from_items(answer: impl Fn(&str) -> Option<bool>) -> Option<CostAnswers> {
        let [a, b, c, d] = Self::ITEMS.map(&answer);
        Some(CostAnswers {
            did_not_fill: a?,
            skipped_doses: b?,
            smaller_doses: c?,
            delayed_fill: d?,
        })
    }
}

/// A teach-back done for this medicine: who did it and in which language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeachBack {
    pub by: Role,
    pub language: String,
}

/// What is known of the patient when the check runs. `None` is "not recorded", never "no".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientSide {
    pub coverage: Option<CoverageKind>,
    /// The latest answers to the cost questions within the last 12 months.
    pub cost_answers: Option<CostAnswers>,
    pub getting: Option<Getting>,
    /// The social-needs screen's transportation need (positive, negative, not screened).
    pub transport_need: Option<bool>,
    /// The patient's preferred language (BCP 47).
    pub language: String,
    /// Whether they want their instructions written down (None: not asked).
    pub wants_written: Option<bool>,
    pub teach_back: Option<TeachBack>,
}

/// Why a question is a barrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A fill costs more than the site's threshold for this patient's coverage.
    HighCost { cost: Money, alternatives: usize },
    /// The patient answered yes to a cost-related non-adherence question.
    CostRelatedNonAdherence,
    /// The patient picks up medicines and the screen found a transportation need.
    NoTransport,
    /// Nobody has done a teach-back of this medicine with the patient.
    TeachBackDue,
    /// The instructions cannot be rendered in the patient's language.
    NoInstructionsIn(String),
    /// The patient (or their family) said "I can't", in their words if they gave any.
    PatientSaysCant(String),
}

impl Reason {
    /// A stable code (for the record and the measures).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::HighCost { .. } => "high-cost",
            Reason::CostRelatedNonAdherence => "cost-related-non-adherence",
            Reason::NoTransport => "no-transport",
            Reason::TeachBackDue => "teach-back-due",
            Reason::NoInstructionsIn(_) => "no-instructions-in-language",
            Reason::PatientSaysCant(_) => "patient-says-cant",
        }
    }

    /// In English, for the record.
    pub fn english(&self) -> String {
        match self {
            Reason::HighCost { cost, alternatives } => format!(
                "a fill costs the patient {cost}; {alternatives} cheaper alternative(s) on the formulary"
            ),
            Reason::CostRelatedNonAdherence => {
                "the patient has gone without medicine because of cost in the last 12 months".into()
            }
            Reason::NoTransport => {
                "the patient picks up medicines and has a transportation need".into()
            }
            Reason::TeachBackDue => "no teach-back of this medicine yet".into(),
            Reason::NoInstructionsIn(lang) => {
                format!("the instructions cannot be written in the patient's language ({lang})")
            }
            Reason::PatientSaysCant(words) if words.is_empty() => {
                "the patient says they can't".into()
            }
            Reason::PatientSaysCant(words) => format!("the patient says: {words}"),
        }
    }
}

/// One question's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Clear, and why (in English, for the record).
    Clear(String),
    Barrier(Reason),
    /// Not known yet: what is missing.
    Unknown(String),
}

/// The site's rules for the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRules {
    /// A fill costing the patient more than this per 30 days is a cost barrier.
    pub afford_above: Money,
    /// The languages instructions are written in (BCP 47).
    pub instruction_languages: Vec<String>,
}

impl Default for CheckRules {
    fn default() -> Self {
        CheckRules {
            afford_above: Money::cents(2000),
            instruction_languages: ["en", "es", "pt-BR", "ht"].map(str::to_string).to_vec(),
        }
    }
}

/// The check of one prescription: a finding for each question (and an "other" barrier when
/// the patient gave one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub findings: BTreeMap<Kind, Finding>,
}

impl Check {
    /// Every question answered (clear or a barrier).
    pub fn complete(&self) -> bool {
        Kind::QUESTIONS.iter().all(|k| {
            self.findings
                .get(k)
                .is_some_and(|f| !matches!(f, Finding::Unknown(_)))
        })
    }

    /// Complete, and no barrier.
    pub fn clean(&self) -> bool {
        self.complete() && self.barriers().next().is_none()
    }

    /// The barriers found, by kind.
    pub fn barriers(&self) -> impl Iterator<Item = (Kind, &Reason)> {
        self.findings.iter().filter_map(|(k, f)| match f {
            Finding::Barrier(r) => Some((*k, r)),
            _ => None,
        })
    }

    /// The patient says "I can't" of this kind: a barrier of that kind whatever the check
    /// found before (a clean check is reopened).
    pub fn patient_says_cant(&mut self, kind: Kind, words: &str) {
        self.findings.insert(
            kind,
            Finding::Barrier(Reason::PatientSaysCant(words.trim().to_string())),
        );
    }
}

/// Runs the check of `drug` (None: not on the formulary) for this patient.
pub fn check(
    drug: Option<&Drug>,
    formulary: &Formulary,
    patient: &PatientSide,
    rules: &CheckRules,
) -> Check {
    let mut findings = BTreeMap::new();
    findings.insert(Kind::Afford, afford(drug, formulary, patient, rules));
    findings.insert(
        Kind::Reach,
        match (patient.getting, patient.transport_need) {
            (None, _) => Finding::Unknown("how the patient gets medicines is not recorded".into()),
            (Some(Getting::PickUp), Some(true)) => Finding::Barrier(Reason::NoTransport),
            (Some(Getting::PickUp), None) => {
                Finding::Clear("picks up at the pharmacy (transportation not screened)".into())
            }
            (Some(g), _) => Finding::Clear(format!("gets medicines by {}", g.as_str())),
        },
    );
    findings.insert(
        Kind::Understand,
        match &patient.teach_back {
            Some(t) => Finding::Clear(format!(
                "teach-back done by the {} in {}",
                t.by.as_str(),
                t.language
            )),
            None => Finding::Barrier(Reason::TeachBackDue),
        },
    );
    findings.insert(
        Kind::Language,
        if patient.language.is_empty() {
            Finding::Unknown("the patient's language is not recorded".into())
        } else if rules
            .instruction_languages
            .iter()
            .any(|l| l.eq_ignore_ascii_case(&patient.language))
        {
            Finding::Clear(format!(
                "instructions in {}{}",
                patient.language,
                if patient.wants_written == Some(true) {
                    ", written"
                } else {
                    ""
                }
            ))
        } else {
            Finding::Barrier(Reason::NoInstructionsIn(patient.language.clone()))
        },
    );
    Check { findings }
}

fn afford(
    drug: Option<&Drug>,
    formulary: &Formulary,
    patient: &PatientSide,
    rules: &CheckRules,
) -> Finding {
    if patient.cost_answers.is_some_and(CostAnswers::any) {
        return Finding::Barrier(Reason::CostRelatedNonAdherence);
    }
    let (Some(drug), Some(coverage)) = (drug, patient.coverage) else {
        return Finding::Unknown(if drug.is_none() {
            "the medicine is not on the formulary: no price".into()
        } else {
            "the patient's coverage is not recorded".into()
        });
    };
    let Some(cost) = drug.cost(coverage) else {
        return Finding::Unknown(format!("the formulary has no price for {coverage}"));
    };
    // The threshold is per 30 days' supply or part of it, as copays are.
    let months = rust_decimal::Decimal::from(drug.days.max(1).div_ceil(30));
    if cost > rules.afford_above.times(months) {
        return Finding::Barrier(Reason::HighCost {
            cost,
            alternatives: formulary.alternatives(drug, coverage).len(),
        });
    }
    match patient.cost_answers {
        None => Finding::Unknown(format!(
            "{cost} a fill; the patient has not answered the cost questions"
        )),
        Some(_) => Finding::Clear(format!("{cost} a fill; no cost-related non-adherence")),
    }
}

/// Who works a barrier of each kind, and how soon (configurable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarrierRules {
    pub chains: BTreeMap<Kind, Escalation>,
}

impl Default for BarrierRules {
    /// Cost and other: the pharmacist within 2 business days. Reach: the community health
    /// worker within 2. Understanding: the pharmacist within 3 (before the first fill runs
    /// out). Language: the pharmacist within 1. Then the clinic lead within 1 more.
    fn default() -> Self {
        let chain = |first: Role, days: u32| {
            Escalation::new(vec![
                Step {
                    role: first,
                    within: Within::BusinessDays(days),
                },
                Step {
                    role: Role::ClinicLead,
                    within: Within::BusinessDays(1),
                },
            ])
            .unwrap_or_else(|_| Escalation::single(first, Within::BusinessDays(days)))
        };
        BarrierRules {
            chains: [
                (Kind::Afford, chain(Role::Pharmacist, 2)),
                (Kind::Reach, chain(Role::CommunityHealthWorker, 2)),
                (Kind::Understand, chain(Role::Pharmacist, 3)),
                (Kind::Language, chain(Role::Pharmacist, 1)),
                (Kind::Other, chain(Role::Pharmacist, 2)),
            ]
            .into(),
        }
    }
}

impl BarrierRules {
    /// The chain a barrier of this kind follows.
    pub fn chain(&self, kind: Kind) -> Escalation {
        self.chains
            .get(&kind)
            .cloned()
            .unwrap_or_else(|| Escalation::single(Role::Pharmacist, Within::BusinessDays(2)))
    }
}

/// What was done about a barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// Prescribed a cheaper (or reachable) alternative, with the prescriber's agreement.
    SwitchedToAlternative,
    AssistanceProgramme,
    Coupon,
    MailOrder,
    Delivery,
    TeachBackDone,
    InstructionsInLanguage,
    Other,
}

impl Resolution {
    pub const ALL: [Resolution; 8] = [
        Resolution::SwitchedToAlternative,
        Resolution::AssistanceProgramme,
        Resolution::Coupon,
        Resolution::MailOrder,
        Resolution::Delivery,
        Resolution::TeachBackDone,
        Resolution::InstructionsInLanguage,
        Resolution::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::SwitchedToAlternative => "switched-to-alternative",
            Resolution::AssistanceProgramme => "assistance-programme",
            Resolution::Coupon => "coupon",
            Resolution::MailOrder => "mail-order",
            Resolution::Delivery => "delivery",
            Resolution::TeachBackDone => "teach-back-done",
            Resolution::InstructionsInLanguage => "instructions-in-language",
            Resolution::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Resolution> {
        Resolution::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The resolutions that answer a barrier of this kind.
    pub fn fits(self, kind: Kind) -> bool {
        use Resolution::*;
        match kind {
            Kind::Afford => matches!(
                self,
                SwitchedToAlternative | AssistanceProgramme | Coupon | Other
            ),
            Kind::Reach => matches!(self, MailOrder | Delivery | SwitchedToAlternative | Other),
            Kind::Understand | Kind::Language => {
                matches!(self, TeachBackDone | InstructionsInLanguage | Other)
            }
            Kind::Other => true,
        }
    }
}

/// Why a resolution is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolutionRefused {
    /// It does not answer this kind of barrier.
    DoesNotFit { kind: Kind, resolution: Resolution },
    /// Only the care team resolves barriers.
    NotTheTeam,
    /// A switch of medicine needs the prescriber's agreement (a clinician's own, or recorded).
    NeedsPrescriberAgreement,
}

impl ResolutionRefused {
    pub fn english(&self) -> String {
        match self {
            ResolutionRefused::DoesNotFit { kind, resolution } => format!(
                "'{}' does not resolve a barrier about {}",
                resolution.as_str(),
                kind.as_str()
            ),
            ResolutionRefused::NotTheTeam => "barriers are resolved by the care team".into(),
            ResolutionRefused::NeedsPrescriberAgreement => {
                "switching the medicine needs the prescriber's agreement".into()
            }
        }
    }
}

/// May `by` resolve a barrier of `kind` with `resolution`? A switch of medicine needs a
/// clinician, or the prescriber's agreement recorded by whoever resolves it.
pub fn may_resolve(
    kind: Kind,
    resolution: Resolution,
    by: Role,
    prescriber_agreed: bool,
) -> Result<(), ResolutionRefused> {
    if !by.is_team() {
        return Err(ResolutionRefused::NotTheTeam);
    }
    if !resolution.fits(kind) {
        return Err(ResolutionRefused::DoesNotFit { kind, resolution });
    }
    if resolution == Resolution::SwitchedToAlternative
        && by != Role::Clinician
        && !prescriber_agreed
    {
        return Err(ResolutionRefused::NeedsPrescriberAgreement);
    }
    Ok(())
}

/// Where the check-in after a new prescription stands ("Were you able to get it and start
/// it?", asked from day 7 to day 14 after it was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstFill {
    /// Written less than 7 days ago: not asked yet.
    NotYet,
    /// Day 7 to day 14, no answer yet: asked now.
    Asked,
    /// The patient answered: got it and started it, or not.
    Answered(bool),
    /// Day 14 passed with no answer.
    Lapsed,
}

/// The check-in's window: from this many days after the prescription...
pub const FIRST_FILL_FROM_DAYS: i64 = 7;
/// ...to this many.
pub const FIRST_FILL_UNTIL_DAYS: i64 = 14;

impl FirstFill {
    /// The check-in of a prescription written at `written`, at `now`, given the patient's
    /// answer if any (an answer stands whenever it came).
    pub fn at(
        written: time::OffsetDateTime,
        answer: Option<bool>,
        now: time::OffsetDateTime,
    ) -> FirstFill {
        if let Some(a) = answer {
            return FirstFill::Answered(a);
        }
        let days = (now - written).whole_days();
        if days < FIRST_FILL_FROM_DAYS {
            FirstFill::NotYet
        } else if days <= FIRST_FILL_UNTIL_DAYS {
            FirstFill::Asked
        } else {
            FirstFill::Lapsed
        }
    }
}
