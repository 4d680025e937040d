use super::check::*;
use super::*;
use crate::access::Role;
use crate::calendar::BusinessCalendar;
use crate::clock::{Clock, FakeClock};
use crate::deadline::{Missed, Standing};
use time::Duration;
use time::macros::datetime;

fn drug(code: &str, ingredient: &str, prices: &[(CoverageKind, &str)]) -> Drug {
    Drug {
        code: code.into(),
        rxnorm: None,
        name: code.into(),
        ingredient: ingredient.into(),
        strength: "100 units/mL".into(),
        form: "pen".into(),
        class: "long-acting-insulin".into(),
        fill: "5 pens".into(),
        days: 30,
        prices: prices
            .iter()
            .map(|(k, p)| (*k, Money::parse(p).unwrap()))
            .collect(),
        basis: Basis::Modelled,
        source: "test".into(),
    }
}

fn formulary() -> Formulary {
    use CoverageKind::*;
    Formulary::new(vec![
        drug(
            "lantus",
            "insulin glargine",
            &[
                (Uninsured, "126.12"),
                (Medicaid, "4.00"),
                (MedicarePartD, "35.00"),
            ],
        ),
        drug(
            "glargine-yfgn",
            "insulin glargine",
            &[(Uninsured, "64.81"), (Medicaid, "4.00")],
        ),
    ])
    .unwrap()
}

/// Ana: Medicaid, no cost problems, delivery, taught back, Brazilian Portuguese.
fn ana() -> PatientSide {
    PatientSide {
        coverage: Some(CoverageKind::Medicaid),
        cost_answers: Some(CostAnswers::default()),
        getting: Some(Getting::Delivery),
        transport_need: Some(true),
        language: "pt-BR".into(),
        wants_written: Some(true),
        teach_back: Some(TeachBack {
            by: Role::Pharmacist,
            language: "pt-BR".into(),
        }),
    }
}

fn run(patient: &PatientSide) -> Check {
    let f = formulary();
    check(f.drug("lantus"), &f, patient, &CheckRules::default())
}

#[test]
fn a_check_with_everything_known_and_nothing_in_the_way_is_clean() {
    let c = run(&ana());
    assert!(c.complete() && c.clean(), "{c:?}");
    assert_eq!(
        c.findings[&Kind::Afford],
        Finding::Clear("$4.00 a fill; no cost-related non-adherence".into())
    );
    assert_eq!(
        c.findings[&Kind::Language],
        Finding::Clear("instructions in pt-BR, written".into())
    );
}

#[test]
fn a_fill_dearer_than_the_threshold_for_this_coverage_is_a_cost_barrier_with_its_alternatives() {
    let mut p = ana();
    p.coverage = Some(CoverageKind::Uninsured);
    let c = run(&p);
    assert_eq!(
        c.findings[&Kind::Afford],
        Finding::Barrier(Reason::HighCost {
            cost: Money::parse("126.12").unwrap(),
            alternatives: 1
        })
    );
    assert!(c.complete() && !c.clean());
    // Part D's $35 is over the default $20 as well; at a $40 threshold it is not.
    p.coverage = Some(CoverageKind::MedicarePartD);
    assert!(matches!(
        run(&p).findings[&Kind::Afford],
        Finding::Barrier(Reason::HighCost { .. })
    ));
    let rules = CheckRules {
        afford_above: Money::cents(4000),
        ..CheckRules::default()
    };
    let f = formulary();
    assert!(check(f.drug("lantus"), &f, &p, &rules).clean());
}

#[test]
fn going_without_because_of_cost_is_a_barrier_however_cheap_the_drug() {
    let mut p = ana();
    p.cost_answers = Some(CostAnswers {
        delayed_fill: true,
        ..CostAnswers::default()
    });
    assert_eq!(
        run(&p).findings[&Kind::Afford],
        Finding::Barrier(Reason::CostRelatedNonAdherence)
    );
}

#[test]
fn what_is_not_recorded_leaves_the_check_incomplete_never_clear() {
    let p = PatientSide::default();
    let c = run(&p);
    assert!(!c.complete());
    for kind in [Kind::Afford, Kind::Reach, Kind::Language] {
        assert!(matches!(c.findings[&kind], Finding::Unknown(_)), "{kind}");
    }
    // Teach-back not done is team work, not an unknown.
    assert_eq!(
        c.findings[&Kind::Understand],
        Finding::Barrier(Reason::TeachBackDue)
    );
    // A price but no answers to the cost questions: still not known.
    let mut p = ana();
    p.cost_answers = None;
    assert_eq!(
        run(&p).findings[&Kind::Afford],
        Finding::Unknown("$4.00 a fill; the patient has not answered the cost questions".into())
    );
    // A drug that is not on the formulary has no price.
    let f = formulary();
    let c = check(None, &f, &ana(), &CheckRules::default());
    assert!(matches!(c.findings[&Kind::Afford], Finding::Unknown(_)));
}

#[test]
fn picking_up_with_a_transportation_need_is_a_reach_barrier() {
    let mut p = ana();
    p.getting = Some(Getting::PickUp);
    assert_eq!(
        run(&p).findings[&Kind::Reach],
        Finding::Barrier(Reason::NoTransport)
    );
    p.transport_need = None;
    assert!(matches!(run(&p).findings[&Kind::Reach], Finding::Clear(_)));
    p.transport_need = Some(false);
    assert!(matches!(run(&p).findings[&Kind::Reach], Finding::Clear(_)));
}

#[test]
fn instructions_in_a_language_the_site_cannot_write_are_a_barrier() {
    let mut p = ana();
    p.language = "vi".into();
    assert_eq!(
        run(&p).findings[&Kind::Language],
        Finding::Barrier(Reason::NoInstructionsIn("vi".into()))
    );
}

#[test]
fn i_cant_after_a_clean_check_reopens_it() {
    let mut c = run(&ana());
    assert!(c.clean());
    c.patient_says_cant(Kind::Afford, "  the copay went up ");
    assert!(!c.clean() && c.complete());
    let barriers: Vec<(Kind, String)> = c.barriers().map(|(k, r)| (k, r.english())).collect();
    assert_eq!(
        barriers,
        [(
            Kind::Afford,
            "the patient says: the copay went up".to_string()
        )]
    );
    // "Other" is a barrier of its own beside the four questions.
    c.patient_says_cant(Kind::Other, "");
    assert_eq!(c.barriers().count(), 2);
}

#[test]
fn a_barrier_goes_to_its_role_by_its_deadline_then_up_the_chain() {
    let cal = BusinessCalendar::default();
    // Friday 4 December 2026, 10:00: the patient says she can't afford it.
    let clock = FakeClock::at(datetime!(2026-12-04 10:00 UTC));
    let rules = BarrierRules::default();
    let chain = rules.chain(Kind::Afford);
    let first = chain.open(&cal, clock.now());
    assert_eq!(first.role, Role::Pharmacist);
    // Two business days: Monday and Tuesday, by Tuesday's close.
    assert_eq!(first.due, datetime!(2026-12-08 17:00 UTC));
    clock.set(datetime!(2026-12-08 16:59 UTC));
    assert_eq!(Standing::of(&first, clock.now()), Standing::Due);
    clock.advance(Duration::minutes(2));
    assert_eq!(Standing::of(&first, clock.now()), Standing::Overdue);
    let Missed::Escalated(second) = chain.missed(&cal, &first) else {
        panic!("the pharmacist's miss goes to the clinic lead");
    };
    assert_eq!(
        (second.role, second.due),
        (Role::ClinicLead, datetime!(2026-12-09 17:00 UTC))
    );
    assert_eq!(Standing::of(&second, clock.now()), Standing::Escalated);
    assert_eq!(chain.missed(&cal, &second), Missed::Exhausted);
    // A reach barrier goes to the community health worker; a language one is due sooner.
    assert_eq!(
        rules.chain(Kind::Reach).open(&cal, clock.now()).role,
        Role::CommunityHealthWorker
    );
    let language = rules
        .chain(Kind::Language)
        .open(&cal, datetime!(2026-12-04 10:00 UTC));
    assert_eq!(language.due, datetime!(2026-12-07 17:00 UTC));
}

#[test]
fn a_barrier_is_resolved_by_the_team_with_what_answers_it() {
    use Resolution::*;
    assert_eq!(
        may_resolve(Kind::Afford, Coupon, Role::Pharmacist, false),
        Ok(())
    );
    assert_eq!(
        may_resolve(Kind::Afford, SwitchedToAlternative, Role::Pharmacist, false),
        Err(ResolutionRefused::NeedsPrescriberAgreement)
    );
    assert_eq!(
        may_resolve(Kind::Afford, SwitchedToAlternative, Role::Pharmacist, true),
        Ok(())
    );
    assert_eq!(
        may_resolve(Kind::Afford, SwitchedToAlternative, Role::Clinician, false),
        Ok(())
    );
    assert_eq!(
        may_resolve(Kind::Afford, TeachBackDone, Role::Pharmacist, false),
        Err(ResolutionRefused::DoesNotFit {
            kind: Kind::Afford,
            resolution: TeachBackDone
        })
    );
    assert_eq!(
        may_resolve(Kind::Reach, Delivery, Role::Patient, false),
        Err(ResolutionRefused::NotTheTeam)
    );
    assert_eq!(
        may_resolve(Kind::Understand, TeachBackDone, Role::Pharmacist, false),
        Ok(())
    );
    for r in Resolution::ALL {
        assert_eq!(Resolution::parse(r.as_str()), Some(r));
        assert!(r.fits(Kind::Other));
    }
    for k in Kind::ALL {
        assert_eq!(Kind::parse(k.as_str()), Some(k));
    }
}

#[test]
fn the_first_fill_check_in_is_asked_from_day_7_to_day_14() {
    let written = datetime!(2026-12-01 09:00 UTC);
    let at = |days: i64, answer| FirstFill::at(written, answer, written + Duration::days(days));
    assert_eq!(at(6, None), FirstFill::NotYet);
    assert_eq!(at(7, None), FirstFill::Asked);
    assert_eq!(at(14, None), FirstFill::Asked);
    assert_eq!(at(15, None), FirstFill::Lapsed);
    // An answer stands, early or late.
    assert_eq!(at(3, Some(true)), FirstFill::Answered(true));
    assert_eq!(at(30, Some(false)), FirstFill::Answered(false));
}

#[test]
fn the_cost_questions_are_an_answer_only_when_all_four_are_answered() {
    let given = CostAnswers {
        skipped_doses: true,
        ..CostAnswers::default()
    };
    let items = given.items();
    let back =
        CostAnswers::from_items(|code| items.iter().find(|(c, _)| *c == code).map(|(_, yes)| *yes));
    assert_eq!(back, Some(given));
    let three = CostAnswers::from_items(|code| (code != "delayed-fill").then_some(false));
    assert_eq!(three, None);
}
