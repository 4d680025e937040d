//! The access policy's tests: each rule, and the cells of the matrix that matter most.

use super::*;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-27 10:00 UTC);

fn on(rt: &'static str, patient: &'static str) -> Target<'static> {
    Target {
        resource_type: rt,
        compartment: Compartment::Patient(patient),
        sensitivity: Sensitivity::Normal,
        addressed_to: None,
    }
}

fn grant(parts: &[Part], until: Option<OffsetDateTime>, revoked: bool) -> Grant {
    Grant {
        patient: "a".into(),
        parts: parts.iter().copied().collect(),
        until,
        revoked,
    }
}

#[test]
fn a_patient_reaches_their_own_record_only() {
    let a = Actor::session(Who::Patient {
        patient: "a".into(),
    });
    assert!(decide(&a, Action::Read, &on("Observation", "a"), NOW).is_allowed());
    assert!(decide(&a, Action::Create, &on("Observation", "a"), NOW).is_allowed());
    assert!(!decide(&a, Action::Create, &on("Observation", "b"), NOW).is_allowed());
    assert!(!decide(&a, Action::Delete, &on("Observation", "a"), NOW).is_allowed());
    assert_eq!(
        reach(&a, Action::Search, "Observation", true, NOW),
        Reach::Patients(["a".to_string()].into())
    );
}

#[test]
fn a_family_grant_covers_its_parts_until_it_ends() {
    let readings = Actor::session(Who::Family {
        grants: vec![grant(
            &[Part::Readings],
            Some(datetime!(2026-12-31 0:00 UTC)),
            false,
        )],
    });
    assert!(decide(&readings, Action::Read, &on("Observation", "a"), NOW).is_allowed());
    assert!(decide(&readings, Action::Create, &on("Observation", "a"), NOW).is_allowed());
    assert!(decide(&readings, Action::Read, &on("Patient", "a"), NOW).is_allowed());
    assert!(!decide(&readings, Action::Read, &on("CarePlan", "a"), NOW).is_allowed());
    assert!(!decide(&readings, Action::Delete, &on("Observation", "a"), NOW).is_allowed());
    let confidential = Target {
        sensitivity: Sensitivity::AdolescentConfidential,
        ..on("Observation", "a")
    };
    assert!(!decide(&readings, Action::Read, &confidential, NOW).is_allowed());
    assert!(
        !decide(
            &readings,
            Action::Read,
            &on("Observation", "a"),
            datetime!(2027-01-01 0:00 UTC)
        )
        .is_allowed()
    );
    let revoked = Actor::session(Who::Family {
        grants: vec![grant(&Part::ALL, None, true)],
    });
    assert!(!decide(&revoked, Action::Read, &on("Observation", "a"), NOW).is_allowed());
    assert!(matches!(
        reach(&revoked, Action::Search, "Observation", true, NOW),
        Reach::Nothing(_)
    ));
}

#[test]
fn a_family_member_never_changes_who_may_see_the_record() {
    let full = Actor::session(Who::Family {
        grants: vec![grant(&Part::ALL, None, false)],
    });
    assert!(decide(&full, Action::Read, &on("Consent", "a"), NOW).is_allowed());
    for action in [Action::Create, Action::Update, Action::Delete] {
        assert!(
            !decide(&full, action, &on("Consent", "a"), NOW).is_allowed(),
            "{action:?}"
        );
    }
    let patient = Actor::session(Who::Patient {
        patient: "a".into(),
    });
    assert!(decide(&patient, Action::Create, &on("Consent", "a"), NOW).is_allowed());
    assert!(decide(&patient, Action::Update, &on("Consent", "a"), NOW).is_allowed());
}

fn team(role: Role) -> Actor {
    Actor::session(Who::TeamMember {
        role,
        panel: ["a".to_string()].into(),
        break_glass: vec![],
    })
}

#[test]
fn only_the_named_roles_write_what_decides_access() {
    let family = Actor::session(Who::Family {
        grants: vec![grant(&Part::ALL, None, false)],
    });
    let patient = Actor::session(Who::Patient {
        patient: "a".into(),
    });
    for action in [Action::Create, Action::Update, Action::Delete] {
        assert!(
            !decide(&family, action, &on("CareTeam", "a"), NOW).is_allowed(),
            "a proxy never changes the care team ({action:?})"
        );
    }
    assert!(decide(&family, Action::Read, &on("CareTeam", "a"), NOW).is_allowed());
    assert!(!decide(&patient, Action::Update, &on("CareTeam", "a"), NOW).is_allowed());
    assert!(decide(&patient, Action::Read, &on("CareTeam", "a"), NOW).is_allowed());
    for role in [Role::Clinician, Role::ClinicLead] {
        for rt in ACCESS_TYPES {
            assert!(
                decide(&team(role), Action::Update, &on(rt, "a"), NOW).is_allowed(),
                "{role} {rt}"
            );
            assert!(
                !decide(&team(role), Action::Update, &on(rt, "b"), NOW).is_allowed(),
                "{role} {rt}: only on their own patients"
            );
        }
    }
    for role in [
        Role::Nurse,
        Role::Pharmacist,
        Role::CommunityHealthWorker,
        Role::SocialWorker,
        Role::RapidResponse,
    ] {
        for rt in ACCESS_TYPES {
            assert!(
                !decide(&team(role), Action::Create, &on(rt, "a"), NOW).is_allowed(),
                "{role} {rt}"
            );
            assert!(decide(&team(role), Action::Read, &on(rt, "a"), NOW).is_allowed());
        }
    }
    let system = Actor::session(Who::System);
    assert!(decide(&system, Action::Update, &on("CareTeam", "a"), NOW).is_allowed());
}

#[test]
fn the_trail_is_never_rewritten_and_the_directory_is_kept_by_admins() {
    let shared = |rt: &'static str| Target {
        resource_type: rt,
        compartment: Compartment::Shared,
        sensitivity: Sensitivity::Normal,
        addressed_to: None,
    };
    let unattached = Target {
        resource_type: "Provenance",
        compartment: Compartment::Unattached,
        sensitivity: Sensitivity::Normal,
        addressed_to: None,
    };
    for who in [
        Who::System,
        Who::Admin,
        Who::Patient {
            patient: "a".into(),
        },
    ] {
        let a = Actor::session(who);
        for action in [Action::Update, Action::Delete] {
            assert!(!decide(&a, action, &on("Provenance", "a"), NOW).is_allowed());
        }
    }
    let nurse = team(Role::Nurse);
    assert!(decide(&nurse, Action::Read, &on("Provenance", "a"), NOW).is_allowed());
    assert!(!decide(&nurse, Action::Read, &unattached, NOW).is_allowed());
    assert!(!decide(&nurse, Action::Update, &unattached, NOW).is_allowed());
    for rt in [
        "Practitioner",
        "Organization",
        "Location",
        "HealthcareService",
    ] {
        assert!(decide(&nurse, Action::Read, &shared(rt), NOW).is_allowed());
        for role in [Role::Clinician, Role::SocialWorker] {
            assert!(
                !decide(&team(role), Action::Update, &shared(rt), NOW).is_allowed(),
                "{role} {rt}"
            );
        }
        assert!(
            decide(
                &Actor::session(Who::Admin),
                Action::Update,
                &shared(rt),
                NOW
            )
            .is_allowed()
        );
        assert!(
            decide(
                &Actor::session(Who::System),
                Action::Create,
                &shared(rt),
                NOW
            )
            .is_allowed()
        );
    }
}

#[test]
fn confidential_records_are_hidden_from_family_only() {
    let confidential = Target {
        sensitivity: Sensitivity::AdolescentConfidential,
        ..on("Observation", "a")
    };
    let family = Who::Family {
        grants: vec![grant(&Part::ALL, None, false)],
    };
    assert!(!sees_confidential(&family));
    assert!(!decide(&Actor::session(family), Action::Read, &confidential, NOW).is_allowed());
    let patient = Who::Patient {
        patient: "a".into(),
    };
    for who in [patient, Who::System] {
        assert!(sees_confidential(&who));
        assert!(decide(&Actor::session(who), Action::Read, &confidential, NOW).is_allowed());
    }
    for role in [Role::Clinician, Role::Nurse, Role::SocialWorker] {
        assert!(decide(&team(role), Action::Read, &confidential, NOW).is_allowed());
    }
}

#[test]
fn team_members_reach_their_panel_and_break_glass_expires() {
    let member = |bg: Vec<BreakGlass>| {
        Actor::session(Who::TeamMember {
            role: Role::Nurse,
            panel: ["a".to_string()].into(),
            break_glass: bg,
        })
    };
    assert!(decide(&member(vec![]), Action::Update, &on("CarePlan", "a"), NOW).is_allowed());
    assert!(!decide(&member(vec![]), Action::Read, &on("CarePlan", "b"), NOW).is_allowed());
    assert!(
        !decide(&member(vec![]), Action::Delete, &on("CarePlan", "a"), NOW).is_allowed(),
        "nurses do not delete"
    );
    let glass = vec![BreakGlass {
        patient: "b".into(),
        until: NOW + time::Duration::hours(1),
    }];
    assert!(
        decide(
            &member(glass.clone()),
            Action::Read,
            &on("CarePlan", "b"),
            NOW
        )
        .is_allowed()
    );
    assert!(
        !decide(
            &member(glass),
            Action::Read,
            &on("CarePlan", "b"),
            NOW + time::Duration::minutes(61)
        )
        .is_allowed()
    );
}

#[test]
fn analysts_and_admins_do_not_browse_charts() {
    for who in [Who::Analyst, Who::Admin] {
        let a = Actor::session(who);
        assert!(!decide(&a, Action::Read, &on("Observation", "a"), NOW).is_allowed());
        assert!(matches!(
            reach(&a, Action::Search, "Observation", true, NOW),
            Reach::Nothing(_)
        ));
        assert_eq!(
            reach(&a, Action::Search, "Organization", false, NOW),
            Reach::Everything
        );
    }
    assert!(
        decide(
            &Actor::session(Who::Analyst),
            Action::Export,
            &on("Observation", "a"),
            NOW
        )
        .is_allowed()
    );
    let audit = Target {
        resource_type: "AuditEvent",
        compartment: Compartment::Shared,
        sensitivity: Sensitivity::Normal,
        addressed_to: None,
    };
    assert!(decide(&Actor::session(Who::Admin), Action::Search, &audit, NOW).is_allowed());
    assert!(!decide(&Actor::session(Who::Analyst), Action::Search, &audit, NOW).is_allowed());
}

#[test]
fn scopes_narrow_and_bind() {
    let scopes = parse_scopes("patient/*.rs").unwrap();
    let token = Actor {
        who: Who::Patient {
            patient: "a".into(),
        },
        scopes: Some(scopes),
        bound_patient: Some("a".into()),
    };
    assert!(decide(&token, Action::Read, &on("Observation", "a"), NOW).is_allowed());
    assert!(
        !decide(&token, Action::Create, &on("Observation", "a"), NOW).is_allowed(),
        "rs does not create"
    );
    let clinician = Actor {
        who: Who::TeamMember {
            role: Role::Clinician,
            panel: ["a".to_string(), "b".to_string()].into(),
            break_glass: vec![],
        },
        scopes: Some(parse_scopes("patient/*.rs").unwrap()),
        bound_patient: Some("a".into()),
    };
    assert!(!decide(&clinician, Action::Read, &on("Observation", "b"), NOW).is_allowed());
    assert_eq!(
        reach(&clinician, Action::Search, "Observation", true, NOW),
        Reach::Patients(["a".to_string()].into())
    );
    assert_eq!(
        Scope::parse("user/Observation.cruds").unwrap().to_string(),
        "user/Observation.cruds"
    );
    assert_eq!(
        Scope::parse("patient/*.read").unwrap().to_string(),
        "patient/*.rs"
    );
    for bad in [
        "patient/*.src",
        "nobody/*.rs",
        "patient/*",
        "user/Obs-1.r",
        "patient/*.rr",
    ] {
        assert!(Scope::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn break_glass_is_for_team_members_with_a_reason_for_a_limited_time() {
    let member = Actor::session(Who::TeamMember {
        role: Role::Nurse,
        panel: BTreeSet::new(),
        break_glass: vec![],
    });
    let reason = "called by the ED about a fall";
    assert_eq!(
        break_glass_until(&member, reason, None, NOW),
        Ok(NOW + Duration::hours(1))
    );
    assert_eq!(
        break_glass_until(&member, reason, Some(Duration::hours(12)), NOW),
        Ok(NOW + Duration::hours(12))
    );
    assert!(matches!(
        break_glass_until(&member, reason, Some(Duration::days(3)), NOW),
        Err(BreakGlassRefusal::Unacceptable(_))
    ));
    assert!(matches!(
        break_glass_until(&member, reason, Some(Duration::minutes(-5)), NOW),
        Err(BreakGlassRefusal::Unacceptable(_))
    ));
    assert!(matches!(
        break_glass_until(&member, "need", None, NOW),
        Err(BreakGlassRefusal::Unacceptable(_))
    ));
    let patient = Actor::session(Who::Patient {
        patient: "a".into(),
    });
    assert!(matches!(
        break_glass_until(&patient, reason, None, NOW),
        Err(BreakGlassRefusal::NotAllowed(_))
    ));
    let app_token = Actor {
        scopes: Some(parse_scopes("patient/*.rs").unwrap()),
        bound_patient: Some("a".into()),
        ..member
    };
    assert!(matches!(
        break_glass_until(&app_token, reason, None, NOW),
        Err(BreakGlassRefusal::NotAllowed(_))
    ));
}

#[test]
fn token_requests_pair_scopes_with_who_they_are_for() {
    let s = |x: &str| parse_scopes(x).unwrap();
    assert!(check_token_request(TokenHolder::Integration, &s("system/*.rs"), false).is_ok());
    assert!(check_token_request(TokenHolder::User, &s("system/*.rs"), false).is_err());
    assert!(check_token_request(TokenHolder::Integration, &s("user/*.rs"), false).is_err());
    assert!(
        check_token_request(TokenHolder::Integration, &s("system/*.rs user/*.rs"), false).is_err()
    );
    assert!(check_token_request(TokenHolder::User, &s("patient/*.rs"), true).is_ok());
    assert!(check_token_request(TokenHolder::User, &s("patient/*.rs"), false).is_err());
    assert!(check_token_request(TokenHolder::User, &s("user/*.rs"), true).is_err());
    // An organisation's system: system/ scopes only (the policy holds it to its referrals).
    assert!(check_token_request(TokenHolder::Organisation, &s("system/Task.rus"), false).is_ok());
    assert!(check_token_request(TokenHolder::Organisation, &s("user/Task.rus"), false).is_err());
}

#[test]
fn nobody_anonymous_gets_in() {
    let anon = Actor::anonymous();
    assert!(!decide(&anon, Action::Read, &on("Patient", "a"), NOW).is_allowed());
    assert!(matches!(
        reach(&anon, Action::Search, "Organization", false, NOW),
        Reach::Nothing(_)
    ));
}

#[test]
fn social_needs_reach_a_family_member_only_through_a_grant_that_covers_them() {
    let social = |rt| Target {
        sensitivity: Sensitivity::SocialNeeds,
        ..on(rt, "a")
    };
    let readings = Actor::session(Who::Family {
        grants: vec![grant(&[Part::Readings, Part::Plan], None, false)],
    });
    // A screening's Observation is a reading by its type, but its label decides.
    assert!(decide(&readings, Action::Read, &on("Observation", "a"), NOW).is_allowed());
    for rt in ["Observation", "QuestionnaireResponse", "Condition", "Task"] {
        assert!(
            !decide(&readings, Action::Read, &social(rt), NOW).is_allowed(),
            "{rt}"
        );
        assert!(!decide(&readings, Action::Create, &social(rt), NOW).is_allowed());
    }
    assert_eq!(social_needs_of(&readings.who, NOW), Some(BTreeSet::new()));
    let with = Actor::session(Who::Family {
        grants: vec![grant(&[Part::SocialNeeds], None, false)],
    });
    assert!(decide(&with, Action::Read, &social("Observation"), NOW).is_allowed());
    assert!(decide(&with, Action::Create, &social("QuestionnaireResponse"), NOW).is_allowed());
    assert!(!decide(&with, Action::Read, &on("Observation", "a"), NOW).is_allowed());
    assert_eq!(
        social_needs_of(&with.who, NOW),
        Some(["a".to_string()].into())
    );
    let ended = Actor::session(Who::Family {
        grants: vec![grant(&[Part::SocialNeeds], None, true)],
    });
    assert_eq!(social_needs_of(&ended.who, NOW), Some(BTreeSet::new()));
    // The care team and the patient see them; analysts never read charts.
    assert!(
        decide(
            &team(Role::CommunityHealthWorker),
            Action::Read,
            &social("Condition"),
            NOW
        )
        .is_allowed()
    );
    assert_eq!(social_needs_of(&team(Role::Nurse).who, NOW), None);
    let patient = Actor::session(Who::Patient {
        patient: "a".into(),
    });
    assert!(decide(&patient, Action::Read, &social("Observation"), NOW).is_allowed());
    assert!(
        !decide(
            &Actor::session(Who::Analyst),
            Action::Read,
            &social("Observation"),
            NOW
        )
        .is_allowed()
    );
}

#[test]
fn a_partner_reaches_only_the_referrals_addressed_to_it() {
    let pantry = Actor::session(Who::Partner {
        organization: "pantry".into(),
    });
    let task = |to: Option<&'static str>| Target {
        sensitivity: Sensitivity::SocialNeeds,
        addressed_to: to,
        ..on("Task", "a")
    };
    let ours = task(Some("pantry"));
    assert!(decide(&pantry, Action::Read, &ours, NOW).is_allowed());
    assert!(decide(&pantry, Action::Update, &ours, NOW).is_allowed());
    // The clinic makes and ends referrals; the organisation moves them along.
    assert!(!decide(&pantry, Action::Create, &ours, NOW).is_allowed());
    assert!(!decide(&pantry, Action::Delete, &ours, NOW).is_allowed());
    assert!(!decide(&pantry, Action::Export, &ours, NOW).is_allowed());
    // Another organisation's referral, an unaddressed Task, anything else in the chart.
    assert!(!decide(&pantry, Action::Read, &task(Some("shelter")), NOW).is_allowed());
    assert!(!decide(&pantry, Action::Read, &task(None), NOW).is_allowed());
    for rt in [
        "Patient",
        "ServiceRequest",
        "Condition",
        "Observation",
        "Consent",
    ] {
        assert!(
            !decide(&pantry, Action::Read, &on(rt, "a"), NOW).is_allowed(),
            "{rt}"
        );
    }
    let addressed = Target {
        addressed_to: Some("pantry"),
        ..on("ServiceRequest", "a")
    };
    assert!(!decide(&pantry, Action::Read, &addressed, NOW).is_allowed());
    let directory = Target {
        resource_type: "HealthcareService",
        compartment: Compartment::Shared,
        sensitivity: Sensitivity::Normal,
        addressed_to: None,
    };
    assert!(decide(&pantry, Action::Read, &directory, NOW).is_allowed());
    assert!(!decide(&pantry, Action::Update, &directory, NOW).is_allowed());
    assert_eq!(
        reach(&pantry, Action::Search, "Task", true, NOW),
        Reach::AddressedTo("pantry".into())
    );
    assert!(matches!(
        reach(&pantry, Action::Search, "Observation", true, NOW),
        Reach::Nothing(_)
    ));
    assert!(matches!(
        reach(&pantry, Action::Search, "AuditEvent", false, NOW),
        Reach::Nothing(_)
    ));
    // Its token's scopes narrow it further.
    let read_only = Actor {
        scopes: Some(parse_scopes("user/Task.rs").unwrap()),
        ..pantry.clone()
    };
    assert!(!decide(&read_only, Action::Update, &ours, NOW).is_allowed());
    assert!(decide(&read_only, Action::Read, &ours, NOW).is_allowed());
}
