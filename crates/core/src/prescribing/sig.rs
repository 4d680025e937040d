//! A prescription's directions (the sig) from a template: how much, of what unit, how often,
//! and whether only when needed. Kept as parts, not free text, so that the same directions
//! are written in the patient's language and the prescriber's.

use crate::access::{Role, Who};

/// The unit a dose is counted in, which also says how it is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DoseUnit {
    /// Tablets or capsules, by mouth.
    Tablet,
    /// Puffs or inhalations of an inhaler.
    Puff,
    /// Capsules whose powder is inhaled through a device (never swallowed).
    InhaledCapsule,
    /// Units of insulin, injected.
    InsulinUnit,
    /// Doses of a pen (a GLP-1 pen), injected.
    PenDose,
}

impl DoseUnit {
    pub const ALL: [DoseUnit; 5] = [
        DoseUnit::Tablet,
        DoseUnit::Puff,
        DoseUnit::InhaledCapsule,
        DoseUnit::InsulinUnit,
        DoseUnit::PenDose,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DoseUnit::Tablet => "tablet",
            DoseUnit::Puff => "puff",
            DoseUnit::InhaledCapsule => "inhaled-capsule",
            DoseUnit::InsulinUnit => "insulin-unit",
            DoseUnit::PenDose => "pen-dose",
        }
    }

    pub fn parse(s: &str) -> Option<DoseUnit> {
        DoseUnit::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// The unit a formulary drug is usually dosed in, from its form and class: insulin in
    /// units, another pen (a GLP-1) in pen doses, an inhaler in puffs, an inhalation capsule
    /// inhaled, anything else as tablets by mouth.
    pub fn for_drug(form: &str, class: &str) -> DoseUnit {
        let form = form.to_ascii_lowercase();
        if class.to_ascii_lowercase().contains("insulin") {
            DoseUnit::InsulinUnit
        } else if form.contains("inhalation capsule") {
            DoseUnit::InhaledCapsule
        } else if form.contains("inhaler") {
            DoseUnit::Puff
        } else if form.contains("pen") {
            DoseUnit::PenDose
        } else {
            DoseUnit::Tablet
        }
    }

    /// The most one dose may be: a ceiling that catches a slip of the keyboard, not a
    /// clinical limit.
    fn most(self) -> u32 {
        match self {
            DoseUnit::Tablet | DoseUnit::Puff | DoseUnit::InhaledCapsule | DoseUnit::PenDose => 10,
            DoseUnit::InsulinUnit => 200,
        }
    }
}

/// How often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    OnceDaily,
    TwiceDaily,
    ThreeTimesDaily,
    AtBedtime,
    Weekly,
}

impl Frequency {
    pub const ALL: [Frequency; 5] = [
        Frequency::OnceDaily,
        Frequency::TwiceDaily,
        Frequency::ThreeTimesDaily,
        Frequency::AtBedtime,
        Frequency::Weekly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::OnceDaily => "once-daily",
            Frequency::TwiceDaily => "twice-daily",
            Frequency::ThreeTimesDaily => "three-times-daily",
            Frequency::AtBedtime => "at-bedtime",
            Frequency::Weekly => "weekly",
        }
    }

    pub fn parse(s: &str) -> Option<Frequency> {
        Frequency::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The HL7 timing abbreviation (`http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation`).
    pub fn timing_code(self) -> &'static str {
        match self {
            Frequency::OnceDaily => "QD",
            Frequency::TwiceDaily => "BID",
            Frequency::ThreeTimesDaily => "TID",
            Frequency::AtBedtime => "HS",
            Frequency::Weekly => "WK",
        }
    }
}

/// The directions of one prescription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sig {
    pub amount: u32,
    pub unit: DoseUnit,
    pub frequency: Frequency,
    pub as_needed: bool,
}

impl Sig {
    /// Directions from a form's fields; the reason in English when they do not make one.
    pub fn new(amount: &str, unit: &str, frequency: &str, as_needed: bool) -> Result<Sig, String> {
        let unit = DoseUnit::parse(unit).ok_or_else(|| format!("'{unit}' is not a dose unit"))?;
        let amount: u32 = amount
            .trim()
            .parse()
            .ok()
            .filter(|a| (1..=unit.most()).contains(a))
            .ok_or_else(|| {
                format!(
                    "the dose is a whole number from 1 to {}, not '{}'",
                    unit.most(),
                    amount.trim()
                )
            })?;
        let frequency = Frequency::parse(frequency)
            .ok_or_else(|| format!("'{frequency}' is not a frequency"))?;
        Ok(Sig {
            amount,
            unit,
            frequency,
            as_needed,
        })
    }
}

/// Who writes prescriptions here: a clinician on the patient's care team.
pub fn prescribes(who: &Who, patient: &str) -> bool {
    matches!(who, Who::TeamMember { role: Role::Clinician, panel, .. } if panel.contains(patient))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_are_checked_part_by_part() {
        let s = Sig::new("2", "tablet", "twice-daily", false).unwrap();
        assert_eq!((s.amount, s.frequency.timing_code()), (2, "BID"));
        assert_eq!(
            Sig::new("24", "insulin-unit", "at-bedtime", false)
                .unwrap()
                .amount,
            24
        );
        for (amount, unit, frequency, why) in [
            ("0", "tablet", "once-daily", "from 1 to 10"),
            ("11", "tablet", "once-daily", "from 1 to 10"),
            ("1.5", "tablet", "once-daily", "whole number"),
            ("201", "insulin-unit", "once-daily", "from 1 to 200"),
            ("1", "spoon", "once-daily", "not a dose unit"),
            ("1", "tablet", "hourly", "not a frequency"),
        ] {
            let e = Sig::new(amount, unit, frequency, false).unwrap_err();
            assert!(e.contains(why), "{amount} {unit} {frequency}: {e}");
        }
        assert_eq!(
            DoseUnit::for_drug("pen", "long-acting-insulin"),
            DoseUnit::InsulinUnit
        );
        // Ozempic's pen is dosed in pen doses, never in units of insulin.
        assert_eq!(DoseUnit::for_drug("pen", "glp1-agonist"), DoseUnit::PenDose);
        assert_eq!(DoseUnit::for_drug("inhaler", "ics-laba"), DoseUnit::Puff);
        // Tiotropium capsules are inhaled, never swallowed.
        assert_eq!(
            DoseUnit::for_drug("inhalation capsule", "lama"),
            DoseUnit::InhaledCapsule
        );
        assert_eq!(DoseUnit::for_drug("tablet", "statin"), DoseUnit::Tablet);
    }

    #[test]
    fn only_a_clinician_on_the_patients_team_prescribes() {
        let team = |role| Who::TeamMember {
            role,
            panel: ["p1".to_string()].into(),
            break_glass: Vec::new(),
        };
        assert!(prescribes(&team(Role::Clinician), "p1"));
        assert!(!prescribes(&team(Role::Clinician), "p2"));
        assert!(!prescribes(&team(Role::Pharmacist), "p1"));
        assert!(!prescribes(
            &Who::Patient {
                patient: "p1".into()
            },
            "p1"
        ));
    }
}
