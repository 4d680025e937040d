//! Who works on which concerns, and what the reporter is told of them: the loop is
//! non-punitive, so the reporter reads what was done, never who did it, unless a manager
//! chooses to name them.

use crate::access::Role;

/// A unit's staff work on its concerns (their units are where the directory places their
/// role); a clinic lead, the manager, works on every unit's.
pub fn works_on(role: Role, my_units: &[String], unit: &str) -> bool {
    match role {
        Role::ClinicLead => true,
        r if r.is_team() => my_units.iter().any(|u| u == unit),
        _ => false,
    }
}

/// Who works on one raised item: a concern by the unit's staff (and the manager), feedback by
/// the practice manager, to whom it is addressed.
pub fn works_on_item(role: Role, kind: super::Kind, my_units: &[String], unit: &str) -> bool {
    match kind {
        super::Kind::Concern => works_on(role, my_units, unit),
        super::Kind::Feedback => manages(role),
    }
}

/// Whether this role sees every unit's concerns (the manager's view) rather than its own.
pub fn sees_every_unit(role: Role) -> bool {
    role == Role::ClinicLead
}

/// Only a manager names staff to the reporter, or links a concern to a safety event report.
pub fn manages(role: Role) -> bool {
    role == Role::ClinicLead
}

/// Who raises a concern or gives feedback with a sign-in: patients and their families (staff
/// report safety events through the site's own system; anyone may use a unit's open form).
pub fn raises(role: Role) -> bool {
    matches!(role, Role::Patient | Role::Family)
}

/// Whether a signed-in person follows a concern: they raised it with their name.
pub fn follows(reporter: Option<&str>, me: Option<&str>) -> bool {
    reporter.is_some() && reporter == me
}

/// Who sees the units' open links and their QR codes to print: staff and administrators.
pub fn prints_unit_links(role: Role) -> bool {
    role.is_team() || role == Role::Admin
}

/// Who reads the loop's measures: the quality analyst (aggregates) and the manager.
pub fn reads_measures(role: Role) -> bool {
    matches!(role, Role::QualityAnalyst | Role::ClinicLead)
}

/// What the reporter reads of who took a step: the person's name when the manager released
/// names, otherwise nobody in particular ("your care team").
pub fn named_to_reporter(released: bool, name: &str) -> Option<&str> {
    (released && !name.trim().is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_units_staff_work_on_its_concerns_and_the_manager_on_every_units() {
        let mine = vec!["unit-4w".to_string()];
        assert!(works_on(Role::RapidResponse, &mine, "unit-4w"));
        assert!(!works_on(Role::RapidResponse, &mine, "unit-clinic"));
        assert!(works_on(Role::ClinicLead, &[], "unit-clinic"));
        assert!(!works_on(Role::Patient, &mine, "unit-4w"));
        assert!(!works_on(Role::QualityAnalyst, &mine, "unit-4w"));
        assert!(sees_every_unit(Role::ClinicLead) && !sees_every_unit(Role::Nurse));
        let fb = super::super::Kind::Feedback;
        assert!(!works_on_item(Role::Nurse, fb, &mine, "unit-4w"));
        assert!(works_on_item(Role::ClinicLead, fb, &[], "unit-4w"));
        assert!(manages(Role::ClinicLead) && !manages(Role::RapidResponse));
        assert!(reads_measures(Role::QualityAnalyst) && reads_measures(Role::ClinicLead));
        assert!(raises(Role::Family) && raises(Role::Patient) && !raises(Role::Nurse));
        assert!(follows(Some("RelatedPerson/a"), Some("RelatedPerson/a")));
        assert!(
            !follows(None, None),
            "a concern without a name is followed by its code"
        );
        assert!(!follows(Some("RelatedPerson/a"), Some("Patient/p")));
        assert!(prints_unit_links(Role::Nurse) && prints_unit_links(Role::Admin));
        assert!(!prints_unit_links(Role::Family));
        assert!(!reads_measures(Role::Nurse) && !reads_measures(Role::Patient));
    }

    #[test]
    fn staff_are_unnamed_to_the_reporter_until_the_manager_releases_names() {
        assert_eq!(named_to_reporter(false, "Sam Lee"), None);
        assert_eq!(named_to_reporter(true, "Sam Lee"), Some("Sam Lee"));
        assert_eq!(named_to_reporter(true, " "), None);
    }
}
