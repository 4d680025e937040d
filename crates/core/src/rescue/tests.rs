//! The rescue pack's lifecycle walked with a fake clock.

use super::*;
use crate::clock::{Clock, FakeClock};
use crate::deadline::{Missed, Step};
use time::Duration;
use time::macros::{date, datetime};

fn copd() -> Protocol {
    let step = |role, within: &str| Step {
        role,
        within: Within::parse(within).expect("a period"),
    };
    Protocol {
        key: "copd-rescue-pack".into(),
        drugs: vec!["prednisone".into(), "antibiotic".into()],
        symptoms: vec![
            "more-breathless".into(),
            "more-sputum".into(),
            "sputum-colour".into(),
        ],
        eligibility_by: vec![Role::Clinician],
        teach_back_by: vec![Role::Pharmacist],
        dispense_by: vec![Role::Pharmacist],
        contact: Escalation::new(vec![
            step(Role::Nurse, "1 business day"),
            step(Role::Clinician, "4 business hours"),
            step(Role::ClinicLead, "1 business day"),
        ])
        .expect("a chain"),
        check_in_opens: Within::parse("48 hours").expect("a period"),
        check_in: Escalation::new(vec![step(Role::Nurse, "72 hours")]).expect("a chain"),
        not_better: Escalation::new(vec![step(Role::Clinician, "2 business hours")])
            .expect("a chain"),
        outcome: Escalation::new(vec![step(Role::Nurse, "14 days")]).expect("a chain"),
        replacement: Escalation::new(vec![step(Role::Pharmacist, "2 business days")])
            .expect("a chain"),
        glucose_days: 5,
    }
}

fn by(role: Role) -> By {
    By {
        role,
        who: format!("Practitioner/{role}"),
    }
}

fn patient() -> By {
    By {
        role: Role::Patient,
        who: "Patient/p1".into(),
    }
}

fn items(expires: Date) -> Vec<Item> {
    ["prednisone", "antibiotic"]
        .map(|d| Item {
            drug: d.into(),
            expires,
        })
        .to_vec()
}

struct Walk {
    p: Protocol,
    cal: BusinessCalendar,
    clock: FakeClock,
    pack: Pack,
    ctx: Context,
}

impl Walk {
    fn new(at: OffsetDateTime) -> Walk {
        Walk {
            p: copd(),
            cal: BusinessCalendar::default(),
            clock: FakeClock::at(at),
            pack: Pack::default(),
            ctx: Context::default(),
        }
    }

    fn try_do(&mut self, who: By, event: Event) -> Result<Vec<Effect>, Refused> {
        let r = Recorded {
            event,
            by: who,
            at: self.clock.now(),
        };
        let (next, fx) = self.pack.apply(&self.p, &self.cal, self.ctx, r)?;
        self.pack = next;
        Ok(fx)
    }

    fn go(&mut self, who: By, event: Event) -> Vec<Effect> {
        let kind = event.kind();
        self.try_do(who, event)
            .unwrap_or_else(|e| panic!("{kind} refused: {e}"))
    }

    fn dispensed(at: OffsetDateTime, expires: Date) -> Walk {
        let mut w = Walk::new(at - Duration::days(30));
        w.go(
            by(Role::Clinician),
            Event::Eligible {
                reason: "two exacerbations in the past year".into(),
            },
        );
        w.go(by(Role::Pharmacist), Event::TaughtBack);
        w.go(
            by(Role::Pharmacist),
            Event::Dispensed {
                items: items(expires),
            },
        );
        w.clock.set(at);
        w
    }

    fn start(&mut self) -> Vec<Effect> {
        let now = self.clock.now();
        self.go(
            patient(),
            Event::Started {
                symptoms: vec!["more-breathless".into(), "sputum-colour".into()],
                since: now - Duration::hours(30),
                taken: vec!["prednisone".into(), "antibiotic".into()],
            },
        )
    }
}

fn opened(fx: &[Effect], kind: TaskKind) -> Option<Deadline> {
    fx.iter().find_map(|e| match e {
        Effect::Open(k, d) if *k == kind => Some(*d),
        _ => None,
    })
}

#[test]
fn the_whole_lifecycle_in_order() {
    let mut w = Walk::dispensed(datetime!(2026-11-27 18:00 UTC), date!(2027 - 06 - 30));
    assert_eq!(w.pack.stage(), Stage::Ready);
    let fx = w.start();
    assert_eq!(w.pack.stage(), Stage::Started);
    assert!(fx.contains(&Effect::TellTeam(Notice::Started)));
    // Friday 18:00: due for team contact by the end of the next business day, Monday.
    let contact = opened(&fx, TaskKind::Contact).expect("a contact deadline");
    assert_eq!(contact.role, Role::Nurse);
    assert_eq!(contact.due, datetime!(2026-11-30 17:00 UTC));
    let check_in = opened(&fx, TaskKind::CheckIn).expect("a check-in deadline");
    assert_eq!(check_in.due, datetime!(2026-11-30 18:00 UTC));
    let outcome = opened(&fx, TaskKind::Outcome).expect("an outcome deadline");
    assert_eq!(outcome.due, datetime!(2026-12-11 18:00 UTC));
    // An in-date pack needs no replacement yet, and no glucose watch without diabetes.
    assert_eq!(opened(&fx, TaskKind::Replacement), None);
    assert!(!fx.iter().any(|e| matches!(e, Effect::WatchGlucose { .. })));

    // When Monday's close passes without contact, the clinician owns it.
    let Missed::Escalated(next) = w.p.contact.missed(&w.cal, &contact) else {
        panic!("the contact deadline escalates")
    };
    assert_eq!(next.role, Role::Clinician);

    w.clock.set(datetime!(2026-11-30 10:00 UTC));
    let fx = w.go(
        by(Role::Nurse),
        Event::Contacted {
            note: "Reached by phone; taking both.".into(),
        },
    );
    assert_eq!(
        fx,
        vec![
            Effect::Close(TaskKind::Contact),
            Effect::TellPatient(Notice::Contacted)
        ]
    );
    w.clock.advance(Duration::hours(8));
    let fx = w.go(
        patient(),
        Event::CheckedIn {
            answer: CheckIn::Better,
        },
    );
    assert_eq!(fx, vec![Effect::Close(TaskKind::CheckIn)]);
    w.clock.set(datetime!(2026-12-11 09:00 UTC));
    let fx = w.go(
        by(Role::Nurse),
        Event::Outcome {
            outcome: Outcome::RecoveredAtHome,
        },
    );
    assert_eq!(w.pack.stage(), Stage::Closed);
    let replacement = opened(&fx, TaskKind::Replacement).expect("a replacement task");
    assert_eq!(replacement.role, Role::Pharmacist);
    assert_eq!(replacement.due, datetime!(2026-12-15 17:00 UTC));
    let replaced = Recorded {
        event: Event::Replaced {
            items: items(date!(2027 - 12 - 31)),
        },
        by: by(Role::Pharmacist),
        at: datetime!(2026-12-14 11:00 UTC),
    };
    w.clock.set(replaced.at);
    let fx = w.go(replaced.by.clone(), replaced.event.clone());
    assert_eq!(
        fx,
        vec![
            Effect::Close(TaskKind::Replacement),
            Effect::TellPatient(Notice::Replaced)
        ]
    );
    assert_eq!(w.pack.stage(), Stage::Replaced);
    // The new pack starts ready, with the eligibility and teaching carried over.
    let next = w.pack.successor(&replaced);
    assert_eq!(next.stage(), Stage::Ready);
    assert_eq!(
        next.eligibility().map(|(r, _)| r),
        Some("two exacerbations in the past year")
    );
    assert_eq!(next.expires(), Some(date!(2027 - 12 - 31)));
    // Every event kept its actor and time.
    let kinds: Vec<_> = w.pack.events.iter().map(|r| r.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "eligible",
            "taught-back",
            "dispensed",
            "started",
            "contacted",
            "checked-in",
            "outcome",
            "replaced"
        ]
    );
    assert_eq!(w.pack.events[4].by.role, Role::Nurse);
    assert_eq!(w.pack.events[4].at, datetime!(2026-11-30 10:00 UTC));
    // Replaying the events gives the same pack.
    assert_eq!(
        Pack::from_events(&w.p, w.pack.events.clone()).expect("a valid history"),
        w.pack
    );
}

#[test]
fn a_start_with_an_expired_pack_is_accepted_tells_the_patient_and_asks_for_a_replacement() {
    let mut w = Walk::dispensed(datetime!(2026-11-27 18:00 UTC), date!(2026 - 11 - 20));
    let fx = w.start();
    assert_eq!(w.pack.stage(), Stage::Started);
    assert!(fx.contains(&Effect::TellPatient(Notice::StartedExpired)));
    assert!(fx.contains(&Effect::TellTeam(Notice::Started)));
    let r = opened(&fx, TaskKind::Replacement).expect("a replacement task");
    assert_eq!(r.role, Role::Pharmacist);
    // The outcome does not ask for a second replacement.
    w.go(
        by(Role::Nurse),
        Event::Outcome {
            outcome: Outcome::Unknown,
        },
    );
    let fx = w.try_do(
        by(Role::Nurse),
        Event::Contacted {
            note: "late".into(),
        },
    );
    assert!(
        fx.is_ok(),
        "contact may still be recorded after the outcome"
    );
    assert_eq!(
        w.pack
            .events
            .iter()
            .filter(|e| e.event.kind() == "outcome")
            .count(),
        1
    );
}

#[test]
fn the_outcome_after_an_expired_start_opens_no_second_replacement() {
    let mut w = Walk::dispensed(datetime!(2026-11-27 18:00 UTC), date!(2026 - 11 - 20));
    w.start();
    // The replacement may come before the outcome; the episode stays open until then.
    w.go(
        by(Role::Pharmacist),
        Event::Replaced {
            items: items(date!(2027 - 11 - 30)),
        },
    );
    assert_eq!(w.pack.stage(), Stage::Started);
    let fx = w.go(
        by(Role::Nurse),
        Event::Outcome {
            outcome: Outcome::Admitted,
        },
    );
    assert_eq!(opened(&fx, TaskKind::Replacement), None);
    assert_eq!(w.pack.stage(), Stage::Replaced);
    // Nothing but the episode's own record follows a replacement.
    assert_eq!(
        w.try_do(by(Role::Pharmacist), Event::Expired)
            .expect_err("replaced")
            .key,
        "pack-replaced"
    );
}

#[test]
fn not_better_tells_the_patient_to_seek_same_day_care_and_tells_the_team() {
    for answer in [CheckIn::Same, CheckIn::Worse] {
        let mut w = Walk::dispensed(datetime!(2026-11-27 18:00 UTC), date!(2027 - 06 - 30));
        w.start();
        w.clock.advance(Duration::hours(50));
        let fx = w.go(patient(), Event::CheckedIn { answer });
        assert!(fx.contains(&Effect::TellPatient(Notice::NotBetter)));
        assert!(fx.contains(&Effect::TellTeam(Notice::NotBetter)));
        let d = opened(&fx, TaskKind::NotBetter).expect("a same-day follow-up");
        assert_eq!(d.role, Role::Clinician);
        // Sunday 20:00 plus 2 business hours: Monday 10:00.
        assert_eq!(d.due, datetime!(2026-11-30 10:00 UTC));
    }
}

#[test]
fn a_patient_with_diabetes_is_asked_to_check_glucose_for_five_days() {
    let mut w = Walk::dispensed(datetime!(2026-11-27 18:00 UTC), date!(2027 - 06 - 30));
    w.ctx.has_diabetes = true;
    let fx = w.start();
    assert!(fx.contains(&Effect::TellPatient(Notice::CheckGlucose)));
    assert!(fx.contains(&Effect::WatchGlucose {
        until: datetime!(2026-12-02 18:00 UTC)
    }));
}

#[test]
fn out_of_order_and_wrong_hands_are_refused_with_the_reason() {
    let at = datetime!(2026-11-27 10:00 UTC);
    let mut w = Walk::new(at);
    let key = |r: Result<Vec<Effect>, Refused>| r.expect_err("refused").key;
    // Nothing dispensed yet.
    assert_eq!(
        key(w.try_do(
            by(Role::Pharmacist),
            Event::Dispensed {
                items: items(date!(2027 - 06 - 30))
            }
        )),
        "dispense-before-teaching"
    );
    assert_eq!(
        key(w.try_do(by(Role::Pharmacist), Event::TaughtBack)),
        "teach-back-before-eligibility"
    );
    assert_eq!(
        key(w.try_do(
            by(Role::Nurse),
            Event::Eligible {
                reason: "COPD".into()
            }
        )),
        "eligibility-by"
    );
    assert_eq!(
        key(w.try_do(
            by(Role::Clinician),
            Event::Eligible {
                reason: "  ".into()
            }
        )),
        "eligibility-reason"
    );
    w.go(
        by(Role::Clinician),
        Event::Eligible {
            reason: "an admission in March".into(),
        },
    );
    assert_eq!(
        key(w.try_do(by(Role::Clinician), Event::TaughtBack)),
        "teach-back-by"
    );
    w.go(by(Role::Pharmacist), Event::TaughtBack);
    assert_eq!(
        key(w.try_do(
            by(Role::Pharmacist),
            Event::Dispensed {
                items: items(date!(2026 - 11 - 27))
            }
        )),
        "dispense-expired"
    );
    assert_eq!(
        key(w.try_do(
            by(Role::Pharmacist),
            Event::Dispensed {
                items: items(date!(2027 - 06 - 30))[..1].to_vec()
            }
        )),
        "dispense-missing-drug"
    );
    assert_eq!(
        key(w.try_do(
            patient(),
            Event::Started {
                symptoms: vec!["more-breathless".into()],
                since: at,
                taken: vec!["prednisone".into()],
            }
        )),
        "start-before-dispense"
    );
    w.go(
        by(Role::Pharmacist),
        Event::Dispensed {
            items: items(date!(2027 - 06 - 30)),
        },
    );
    // A team member cannot start the patient's pack, nor contact before a start.
    assert_eq!(
        key(w.try_do(
            by(Role::Nurse),
            Event::Started {
                symptoms: vec!["more-breathless".into()],
                since: at,
                taken: vec!["prednisone".into()],
            }
        )),
        "start-by"
    );
    assert_eq!(
        key(w.try_do(
            by(Role::Nurse),
            Event::Contacted {
                note: String::new()
            }
        )),
        "not-started"
    );
    for (symptoms, since, taken, expect) in [
        (vec![], at, vec!["prednisone"], "start-symptoms"),
        (
            vec!["fever"],
            at,
            vec!["prednisone"],
            "start-symptom-unknown",
        ),
        (vec!["more-sputum"], at, vec![], "start-taken"),
        (
            vec!["more-sputum"],
            at,
            vec!["aspirin"],
            "start-drug-unknown",
        ),
        (
            vec!["more-sputum"],
            at + Duration::hours(2),
            vec!["prednisone"],
            "start-since-future",
        ),
        (
            vec!["more-sputum"],
            at - Duration::days(40),
            vec!["prednisone"],
            "start-since-old",
        ),
    ] {
        let e = Event::Started {
            symptoms: symptoms.into_iter().map(String::from).collect(),
            since,
            taken: taken.into_iter().map(String::from).collect(),
        };
        assert_eq!(key(w.try_do(patient(), e)), expect);
    }
    // A replacement needs a used or expired pack.
    assert_eq!(
        key(w.try_do(
            by(Role::Pharmacist),
            Event::Replaced {
                items: items(date!(2027 - 12 - 31))
            }
        )),
        "replace-unused"
    );
    assert_eq!(
        key(w.try_do(by(Role::Pharmacist), Event::Expired)),
        "not-expired"
    );
    w.start();
    assert_eq!(
        key(w.try_do(
            Walk::family(),
            Event::Started {
                symptoms: vec!["more-sputum".into()],
                since: at,
                taken: vec!["prednisone".into()],
            }
        )),
        "started-already"
    );
    w.go(
        Walk::family(),
        Event::CheckedIn {
            answer: CheckIn::Better,
        },
    );
    assert_eq!(
        key(w.try_do(
            patient(),
            Event::CheckedIn {
                answer: CheckIn::Worse
            }
        )),
        "checked-in-already"
    );
    assert_eq!(
        key(w.try_do(
            patient(),
            Event::Outcome {
                outcome: Outcome::RecoveredAtHome
            }
        )),
        "outcome-by"
    );
    // A refused event changes nothing.
    assert_eq!(w.pack.events.len(), 5);
}

#[test]
fn an_unused_pack_expires_into_a_replacement_task() {
    let mut w = Walk::dispensed(datetime!(2026-11-27 10:00 UTC), date!(2027 - 01 - 31));
    w.clock.set(datetime!(2027-02-01 00:00 UTC));
    let fx = w.go(
        By {
            role: Role::Admin,
            who: "coproduce:deadlines".into(),
        },
        Event::Expired,
    );
    assert_eq!(w.pack.stage(), Stage::Expired);
    assert!(fx.contains(&Effect::TellTeam(Notice::Expired)));
    assert!(opened(&fx, TaskKind::Replacement).is_some());
    // Expired twice is refused.
    assert!(
        w.try_do(
            By {
                role: Role::Admin,
                who: "coproduce:deadlines".into()
            },
            Event::Expired
        )
        .is_err()
    );
    w.go(
        by(Role::Pharmacist),
        Event::Replaced {
            items: items(date!(2028 - 01 - 31)),
        },
    );
    assert_eq!(w.pack.stage(), Stage::Replaced);
}

impl Walk {
    fn family() -> By {
        By {
            role: Role::Family,
            who: "RelatedPerson/rp1".into(),
        }
    }
}

#[test]
fn may_offers_exactly_the_actions_that_would_be_accepted() {
    let p = copd();
    let today = date!(2026 - 11 - 27);
    let offered = |pack: &Pack, role: Role| -> Vec<&str> {
        [
            "eligible",
            "taught-back",
            "dispensed",
            "started",
            "contacted",
            "checked-in",
            "outcome",
            "expired",
            "replaced",
        ]
        .into_iter()
        .filter(|k| pack.may(&p, role, k, today))
        .collect()
    };
    let w = Walk::new(datetime!(2026-11-27 10:00 UTC));
    assert_eq!(offered(&w.pack, Role::Clinician), ["eligible"]);
    assert!(offered(&w.pack, Role::Patient).is_empty());
    let mut w = Walk::dispensed(datetime!(2026-11-27 18:00 UTC), date!(2027 - 06 - 30));
    assert_eq!(offered(&w.pack, Role::Patient), ["started"]);
    assert!(offered(&w.pack, Role::Nurse).is_empty());
    w.start();
    assert_eq!(
        offered(&w.pack, Role::Nurse),
        ["contacted", "checked-in", "outcome"]
    );
    assert_eq!(offered(&w.pack, Role::Family), ["checked-in"]);
    assert_eq!(
        offered(&w.pack, Role::Pharmacist),
        ["contacted", "checked-in", "outcome", "replaced"]
    );
    assert!(!w.pack.may(&p, Role::Nurse, "a-party", today));
}
