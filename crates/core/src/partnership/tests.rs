//! The partnership's rules, tested on hand-made promises.

use super::*;
use crate::care::plan::Cadence;
use time::Duration;
use time::macros::datetime;

fn promise(kind: &str, owner: Option<Owner>, due: OffsetDateTime) -> Promise {
    Promise {
        kind: kind.into(),
        owner,
        person: Some(Arc::new(Person {
            team: Some("North".into()),
            language: "pt-BR".into(),
            age_band: "45-64".into(),
            sex: "female".into(),
        })),
        due,
        done: None,
        withdrawn: false,
        escalations: 0,
    }
}

#[test]
fn a_promise_is_on_time_late_overdue_or_not_yet_counted() {
    let due = datetime!(2026-11-02 17:00 UTC);
    let mut p = promise("rescue-pack-contact", team_owner(Role::Nurse), due);
    assert_eq!(p.outcome(due - Duration::hours(1)), Outcome::NotCounted);
    assert_eq!(p.outcome(due + Duration::hours(2)), Outcome::Overdue(7_200));
    p.done = Some(due);
    assert_eq!(p.outcome(due + Duration::days(9)), Outcome::OnTime);
    p.done = Some(due + Duration::minutes(1));
    assert_eq!(p.outcome(due + Duration::days(9)), Outcome::Late(60));
    p.withdrawn = true;
    assert_eq!(p.outcome(due + Duration::days(9)), Outcome::NotCounted);
}

#[test]
fn a_panel_counted_by_hand() {
    let cal = BusinessCalendar::default();
    let now = datetime!(2026-11-30 12:00 UTC);
    let reading = datetime!(2026-11-03 09:00 UTC);
    let review_due = reading + Duration::days(7);
    let promises = vec![
        // A contact made on time; one made three hours late after one escalation.
        Promise {
            done: Some(datetime!(2026-11-04 10:00 UTC)),
            ..promise(
                "rescue-pack-contact",
                team_owner(Role::Nurse),
                datetime!(2026-11-04 17:00 UTC),
            )
        },
        Promise {
            done: Some(datetime!(2026-11-05 20:00 UTC)),
            escalations: 1,
            ..promise(
                "rescue-pack-contact",
                team_owner(Role::Nurse),
                datetime!(2026-11-05 17:00 UTC),
            )
        },
        // Reviews on day 7 (on time) and day 8 (a day late).
        Promise {
            done: Some(reading + Duration::days(7)),
            ..promise(READING_REVIEW, None, review_due)
        },
        Promise {
            done: Some(reading + Duration::days(8)),
            ..promise(READING_REVIEW, None, review_due)
        },
        // A kind never seen before, escalated twice and still open five hours late.
        Promise {
            escalations: 2,
            ..promise(
                "pharmacy-callback",
                team_owner(Role::Pharmacist),
                now - Duration::hours(5),
            )
        },
        // Not yet due, withdrawn, or outside the period: none counts.
        promise(GOAL_ANSWER, None, now + Duration::days(1)),
        Promise {
            withdrawn: true,
            ..promise("hba1c-test", team_owner(Role::Clinician), reading)
        },
        promise(
            "rescue-pack-contact",
            team_owner(Role::Nurse),
            datetime!(2026-10-31 17:00 UTC),
        ),
        // The patient's side: a walk kept on time, one kept late.
        Promise {
            done: Some(reading),
            ..promise(ACTIVITY, Some(Owner::Patient), reading)
        },
        Promise {
            done: Some(reading + Duration::days(2)),
            ..promise(ACTIVITY, Some(Owner::Family), reading)
        },
    ];
    let goals = [GoalFacts { agreed: true }, GoalFacts { agreed: false }];
    let from = datetime!(2026-11-01 00:00 UTC);
    let to = datetime!(2026-12-01 00:00 UTC);
    let card = scorecard(&promises, &goals, from, to, now, By::Kind, &cal);
    assert_eq!(
        (card.team.on_time, card.team.late, card.team.overdue),
        (2, 2, 1)
    );
    assert_eq!(card.team.counted(), 5);
    assert_eq!(card.team.on_time_pct(), Some(40.0));
    assert_eq!((card.team.escalated, card.team.escalations), (2, 3));
    // Late by 3 h, 24 h and 5 h: the median is 5 h.
    assert_eq!(card.team.median_late_hours(), Some(5.0));
    let new_kind = &card.team_by["pharmacy-callback"];
    assert_eq!((new_kind.overdue, new_kind.escalations), (1, 2));
    let reviews = &card.team_by[READING_REVIEW];
    assert_eq!((reviews.on_time, reviews.late), (1, 1));
    assert_eq!(reviews.median_late_hours(), Some(24.0));
    assert_eq!((card.patient.on_time, card.patient.late), (1, 1));
    assert_eq!(card.goals_agreed_pct(), Some(50.0));

    let by_role = scorecard(&promises, &goals, from, to, now, By::Role, &cal);
    assert_eq!(by_role.team_by["nurse"].counted(), 2);
    assert_eq!(by_role.team_by["care-team"].counted(), 2);
    assert_eq!(by_role.patient_by["family"].late, 1);
    let by_month = scorecard(&promises, &goals, from, now, now, By::Month, &cal);
    assert_eq!(by_month.team_by.keys().collect::<Vec<_>>(), ["2026-11"]);
    for by in [By::Team, By::Language, By::AgeBand, By::Sex] {
        let card = scorecard(&promises, &goals, from, to, now, by, &cal);
        assert_eq!(card.team_by.len(), 1, "{by:?}");
        assert_eq!(card.team_by.values().next(), Some(&card.team), "{by:?}");
    }
    let lang = scorecard(&promises, &goals, from, to, now, By::Language, &cal);
    assert_eq!(lang.team_by["pt-BR"].counted(), 5);

    // Counted in two parts in every breakdown at once and merged, it is the same.
    let (a, b) = promises.split_at(4);
    let mut first = Scoring::new(from, to, now, &By::ALL);
    let mut second = first.clone();
    a.iter().for_each(|p| first.add(p, &cal));
    b.iter().for_each(|p| second.add(p, &cal));
    first.add_goal(goals[0]);
    second.add_goal(goals[1]);
    second.merge(first);
    for (by, merged) in By::ALL.into_iter().zip(second.finish()) {
        assert_eq!(
            merged,
            scorecard(&promises, &goals, from, to, now, by, &cal)
        );
    }
}

#[test]
fn the_team_owes_an_answer_to_each_proposal_of_the_patients_side() {
    let t = |h: i64| datetime!(2026-06-01 10:00 UTC) + Duration::hours(h);
    let step = |h, side, event| GoalStep {
        at: t(h),
        side: Some(side),
        event,
    };
    let steps = [
        // Out of order on purpose: the story is read by time.
        step(5, Side::Team, "change-suggested"),
        step(0, Side::Patient, "proposed"),
        step(2, Side::Team, "note"),
        step(9, Side::Patient, "change-suggested"),
        step(10, Side::Patient, "change-suggested"),
        step(1, Side::Team, "proposed"),
    ];
    // Proposed at 0, answered at 5 (the note at 2 is no answer, the team's own
    // proposal at 1 does answer); suggested again at 9, still open.
    assert_eq!(
        goal_answers_owed(&steps),
        vec![(t(0), Some(t(1))), (t(9), None)]
    );
    assert!(goal_answers_owed(&[step(0, Side::Team, "proposed")]).is_empty());
    // As promises, each due a day after what it answers; the open one is withdrawn only
    // once the goal is closed.
    let day = |from| from + Duration::days(1);
    let open = Promise::goal_answers(&steps, false, day);
    assert_eq!(
        open.iter()
            .map(|p| (p.kind.as_str(), p.due, p.done, p.withdrawn))
            .collect::<Vec<_>>(),
        vec![
            (GOAL_ANSWER, t(24), Some(t(1)), false),
            (GOAL_ANSWER, t(33), None, false),
        ]
    );
    let closed = Promise::goal_answers(&steps, true, day);
    assert_eq!(
        closed.iter().map(|p| p.withdrawn).collect::<Vec<_>>(),
        [false, true]
    );
    assert!(withdrawn("cancelled") && !withdrawn("completed") && !withdrawn("on-hold"));
}

#[test]
fn the_spectrum_counts_each_settings_owners_in_order_of_patient_agency() {
    let plan = [
        (Setting::SelfCare, Owner::Patient),
        (Setting::SelfCare, Owner::Family),
        (Setting::SelfCare, Owner::Team(Role::Nurse)),
        (Setting::Outpatient, Owner::Team(Role::Clinician)),
        (Setting::CriticalCare, Owner::Family),
    ];
    let (by, all) = spectrum(&plan);
    assert_eq!(
        by.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        Setting::ALL.to_vec()
    );
    let of = |s: Setting| by.iter().find(|(x, _)| *x == s).unwrap().1;
    assert_eq!(
        of(Setting::SelfCare),
        Ownership {
            patient: 2,
            team: 1
        }
    );
    assert_eq!(of(Setting::Outpatient).patient_pct(), Some(0.0));
    assert_eq!(of(Setting::CriticalCare).patient_pct(), Some(100.0));
    assert_eq!(of(Setting::Inpatient).patient_pct(), None);
    assert_eq!(
        all,
        Ownership {
            patient: 3,
            team: 2
        }
    );
    assert_eq!(all.patient_pct(), Some(60.0));
}

#[test]
fn an_activitys_turns_follow_its_schedule_and_marks() {
    let added = datetime!(2026-11-01 09:00 UTC);
    let weekly = ActivityFacts {
        owner: Owner::Patient,
        schedule: Schedule::Every(Cadence::Weeks(1)),
        added,
        last_done: None,
        finished: false,
    };
    // Kept on day 6, then on day 15 (two days after the next was due), then nothing.
    let marks = [added + Duration::days(15), added + Duration::days(6)];
    let now = added + Duration::days(30);
    assert_eq!(
        activity_turns(&weekly, &marks, now),
        vec![
            (added + Duration::days(7), Some(added + Duration::days(6))),
            (added + Duration::days(13), Some(added + Duration::days(15))),
            (added + Duration::days(22), None),
        ]
    );
    // Stopped: nothing owed after the last mark.
    let stopped = ActivityFacts {
        finished: true,
        ..weekly.clone()
    };
    assert_eq!(activity_turns(&stopped, &marks, now).len(), 2);
    let once = ActivityFacts {
        schedule: Schedule::By(added + Duration::days(3)),
        ..weekly
    };
    assert_eq!(
        activity_turns(&once, &[], now),
        vec![(added + Duration::days(3), None)]
    );
}
