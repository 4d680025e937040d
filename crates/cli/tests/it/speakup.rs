//! Speak Up through the store, on the fake clock: an urgent concern escalates exactly once
//! across a restart, a routine outpatient concern raised on Friday evening is due at the close
//! of Tuesday, the loop closes with the reporter's word, bad input changes nothing, wrong claim
//! codes are throttled, and the reporter reads no staff name unless the manager released it.

use crate::rescue::caller;
use coproduce_app::FhirApi;
use coproduce_app::deadlines::Watcher;
use coproduce_app::notify::Notifier;
use coproduce_app::speakup::{Follower, NewConcern, Reporter, SpeakUp};
use coproduce_core::calendar::BusinessCalendar;
use coproduce_core::deadline::Standing;
use coproduce_core::speakup::{Heard, Rules, Stage, Step, Urgency};
use coproduce_core::{Clock, FakeClock};
use coproduce_store::Store;
use coproduce_testkit::{TestApp, backends};
use std::sync::Arc;
use time::macros::datetime;

fn new_york() -> BusinessCalendar {
    BusinessCalendar::new(
        "America/New_York",
        "08:00",
        "17:00",
        &["monday", "tuesday", "wednesday", "thursday", "friday"].map(String::from),
        &[],
    )
    .expect("a calendar")
}

/// Speak Up and the deadline watcher over a store, as a server builds them at start.
fn services(store: &Store, clock: &Arc<FakeClock>) -> (SpeakUp, Watcher) {
    let clock: Arc<dyn Clock> = clock.clone();
    let api = FhirApi::new(store.clone(), clock.clone());
    let notifier = Notifier::new(api.clone(), clock.clone(), true);
    let calendar = Arc::new(new_york());
    let speakup = SpeakUp::new(
        api.clone(),
        clock.clone(),
        Rules::default(),
        calendar.clone(),
        notifier.clone(),
    );
    let watcher = Watcher::new(api, clock, calendar, notifier);
    (speakup, watcher)
}

fn urgent_at_bedside() -> NewConcern {
    NewConcern {
        unit: "unit-4w".into(),
        room: "12".into(),
        when: "just now".into(),
        category: "condition-worse".into(),
        what: "Papa m ap vin pi mal epi pèsonn pa vini".into(),
        urgent: true,
        anonymous: true,
        language: "ht".into(),
        after: None,
        feedback: false,
    }
}

async fn notices(store: &Store, recipient: &str, kind: &str) -> usize {
    store
        .notifications_for(&[recipient.to_string()], None, 1000)
        .await
        .expect("notifications")
        .iter()
        .filter(|n| n.kind == kind)
        .count()
}

async fn count(app: &TestApp, rt: &str) -> i64 {
    let resp = app.get(&format!("/fhir/{rt}?_summary=count")).await;
    let v: serde_json::Value = resp.json().await.expect("a Bundle");
    v["total"].as_i64().expect("a total")
}

#[tokio::test]
async fn an_urgent_concern_escalates_once_across_a_restart_and_the_loop_closes_with_the_reporter() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("ht").await;
        app.seed_units().await;
        let (speakup, watcher) = services(&app.db.store, &app.clock);
        let t0 = datetime!(2026-11-28 03:10 UTC); // Friday night in New York
        app.clock.set(t0);
        let raised = speakup
            .raise(
                Reporter::Device {
                    address: "10.0.0.7",
                },
                urgent_at_bedside(),
            )
            .await
            .expect("raised");
        assert_eq!(raised.urgency, Urgency::Urgent);
        assert_eq!(raised.due, t0 + time::Duration::minutes(15));
        let code = raised.claim_code.clone().expect("a claim code");
        // The rapid-response contact is told in the app and by webhook for paging.
        assert_eq!(
            notices(&app.db.store, "role:rapid-response", "concern-urgent").await,
            1
        );
        // ... and by webhook, for paging.
        let paged = app
            .db
            .store
            .pending_notifications("webhook", 5, 100)
            .await
            .expect("webhook rows");
        assert!(
            paged
                .iter()
                .any(|n| n.kind == "concern-urgent" && n.recipient == "role:rapid-response"),
            "{paged:?}"
        );
        let rr = caller(&app, "rr.kim").await;
        let queue = speakup.queue(&rr).await.expect("the queue");
        assert_eq!(queue.open.len(), 1, "{backend:?}");
        assert_eq!(queue.open[0].record.what, urgent_at_bedside().what);
        let inbox = speakup
            .notifier
            .inbox(&rr, 10)
            .await
            .expect("the rapid-response nurse's inbox");
        assert!(
            inbox.iter().any(|n| n.kind == "concern-urgent"),
            "{inbox:?}"
        );
        // Nothing links the concern to a person.
        let stored = app
            .db
            .store
            .read("Communication", &raised.id)
            .await
            .expect("the concern");
        let v = stored.json().expect("json");
        assert!(
            v.get("sender").is_none() && v.get("subject").is_none(),
            "{v}"
        );
        assert!(stored.patient_id.is_none());
        assert!(
            !v.to_string().contains(&code),
            "the code itself is not stored"
        );

        // Not yet at 14 minutes; at 16, a server that has just started fires it, and two
        // more restarts find nothing left to do.
        app.clock.set(t0 + time::Duration::minutes(14));
        assert_eq!(watcher.tick().await.expect("a pass").escalated, 0);
        app.clock.set(t0 + time::Duration::minutes(16));
        let mut fired = 0;
        for _ in 0..3 {
            let store = Store::open(&app.db.url).await.expect("the database again");
            let (_, restarted) = services(&store, &app.clock);
            fired += restarted.tick().await.expect("a pass").escalated;
            store.close().await;
        }
        assert_eq!(fired, 1, "the escalation fires exactly once ({backend:?})");
        assert_eq!(
            notices(&app.db.store, "role:nurse", "deadline-escalated").await,
            1
        );
        // In words that name no patient: the concern is in no chart.
        let rows = app
            .db
            .store
            .notifications_for(&["role:nurse".to_string()], None, 10)
            .await
            .expect("notifications");
        let (_, text) = coproduce_app::notify::render(&rows[0], Arc::new(new_york()));
        assert!(
            text.starts_with(
                "Escalated to you: \"Acknowledge a concern\" was missed by the Rapid response team"
            ),
            "{text}"
        );
        let nurse = caller(&app, "nurse.lee").await;
        let view = speakup
            .concern_for_team(&nurse, &raised.id)
            .await
            .expect("the nurse works on 4 West");
        let due = view.due.as_ref().expect("a deadline");
        assert_eq!(due.role.as_str(), "nurse");
        assert_eq!(due.due, t0 + time::Duration::minutes(30));
        assert_eq!(view.standing(app.clock.now()), Some(Standing::Escalated));

        // The nurse acknowledges; the clinic lead's answer follows within its time.
        app.clock.set(t0 + time::Duration::minutes(20));
        speakup
            .step(&nurse, &raised.id, Step::Acknowledged)
            .await
            .expect("acknowledged");
        let lead = caller(&app, "lead.park").await;
        app.clock.set(t0 + time::Duration::hours(2));
        speakup
            .step(
                &lead,
                &raised.id,
                Step::Answered {
                    text: "Nou te voye enfimyè rapid la; papa ou estab kounye a.".into(),
                },
            )
            .await
            .expect("answered");
        // The family member reads it with the code, as typed, and sees no staff name.
        let typed = code.replace('-', " ").to_lowercase();
        let seen = speakup
            .follow(Follower::Claim {
                code: &typed,
                address: "10.0.0.7",
            })
            .await
            .expect("the concern by its code");
        assert_eq!(seen.stage, Stage::Answered);
        assert!(
            seen.answer
                .as_deref()
                .unwrap_or("")
                .starts_with("Nou te voye")
        );
        assert!(
            seen.steps.iter().all(|s| s.by.is_none()),
            "{:?}",
            seen.steps
        );
        speakup
            .felt_heard(
                Follower::Claim {
                    code: &code,
                    address: "10.0.0.7",
                },
                Heard::Yes,
                "Mèsi",
            )
            .await
            .expect("felt heard");
        let closed = speakup
            .follow(Follower::Claim {
                code: &code,
                address: "10.0.0.7",
            })
            .await
            .expect("again");
        assert_eq!(closed.stage, Stage::Closed);
        assert_eq!(closed.heard, Some(Heard::Yes));
        assert_eq!(count(&app, "QuestionnaireResponse").await, 1);
        // Closed concerns leave the team's list.
        assert!(speakup.queue(&rr).await.expect("queue").open.is_empty());
        app.finish().await;
    }
}

#[tokio::test]
async fn a_routine_outpatient_concern_raised_on_friday_evening_is_due_at_the_close_of_tuesday() {
    let app = TestApp::spawn(coproduce_testkit::TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.seed_units().await;
    let (speakup, _) = services(&app.db.store, &app.clock);
    // Friday 27 November 2026, 19:30 in New York.
    app.clock.set(datetime!(2026-11-28 00:30 UTC));
    let ana = caller(&app, "ana").await;
    let raised = speakup
        .raise(
            Reporter::SignedIn(&ana),
            NewConcern {
                unit: "unit-clinic".into(),
                category: "communication".into(),
                what: "Nobody called me with my results".into(),
                language: "en".into(),
                ..NewConcern::default()
            },
        )
        .await
        .expect("raised");
    assert_eq!(raised.due, datetime!(2026-12-01 22:00 UTC));
    assert!(raised.claim_code.is_none(), "she follows it in her app");
    // The clinic's nurse has it; the rapid-response nurse does not work there.
    let nurse = caller(&app, "nurse.lee").await;
    assert_eq!(speakup.queue(&nurse).await.expect("queue").open.len(), 1);
    let rr = caller(&app, "rr.kim").await;
    assert!(speakup.queue(&rr).await.expect("queue").open.is_empty());
    assert!(speakup.concern_for_team(&rr, &raised.id).await.is_err());
    // Acknowledged on Monday: on time.
    app.clock.set(datetime!(2026-11-30 15:00 UTC));
    speakup
        .step(&nurse, &raised.id, Step::Acknowledged)
        .await
        .expect("acknowledged");
    let mine = speakup.mine(&ana).await.expect("her concerns");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].stage, Stage::Acknowledged);
    assert_eq!(
        mine[0]
            .record
            .concern
            .acknowledged_on_time(&speakup.rules, &speakup.calendar),
        Some(true)
    );
    app.finish().await;
}

#[tokio::test]
async fn bad_input_changes_nothing_and_wrong_claim_codes_are_throttled() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        app.seed_units().await;
        let (speakup, _) = services(&app.db.store, &app.clock);
        let device = Reporter::Device {
            address: "10.0.0.9",
        };
        let key = |e: coproduce_app::CareError| e.message().map(|(k, _)| k).unwrap_or("none");
        let empty = NewConcern {
            what: "   ".into(),
            ..urgent_at_bedside()
        };
        assert_eq!(
            key(speakup.raise(device, empty).await.unwrap_err()),
            "concern-empty"
        );
        let nowhere = NewConcern {
            unit: "unit-moon".into(),
            ..urgent_at_bedside()
        };
        assert_eq!(
            key(speakup.raise(device, nowhere).await.unwrap_err()),
            "concern-unit-unknown"
        );
        let odd = NewConcern {
            category: "weather".into(),
            ..urgent_at_bedside()
        };
        assert_eq!(
            key(speakup.raise(device, odd).await.unwrap_err()),
            "concern-category"
        );
        assert_eq!(count(&app, "Communication").await, 0);
        assert_eq!(count(&app, "Task").await, 0);

        let raised = speakup
            .raise(device, urgent_at_bedside())
            .await
            .expect("raised");
        let code = raised.claim_code.expect("a code");
        // 1,000 wrong codes from one address: the first twenty are told the code is wrong,
        // the rest to wait, and then even the right code waits; another address is not held.
        let mut wrong = 0;
        let mut held = 0;
        for i in 0..1000u32 {
            let guess = format!("{:024}", i);
            match key(speakup
                .follow(Follower::Claim {
                    code: &guess,
                    address: "203.0.113.5",
                })
                .await
                .unwrap_err())
            {
                "claim-wrong" => wrong += 1,
                "claim-throttled" => held += 1,
                other => panic!("{other}"),
            }
        }
        assert_eq!((wrong, held), (20, 980), "{backend:?}");
        assert_eq!(
            key(speakup
                .follow(Follower::Claim {
                    code: &code,
                    address: "203.0.113.5",
                })
                .await
                .unwrap_err()),
            "claim-throttled"
        );
        speakup
            .follow(Follower::Claim {
                code: &code,
                address: "10.0.0.9",
            })
            .await
            .expect("another address reads it");
        // An hour later the address may try again.
        app.clock.set(app.clock.now() + time::Duration::minutes(61));
        speakup
            .follow(Follower::Claim {
                code: &code,
                address: "203.0.113.5",
            })
            .await
            .expect("after the wait");
        app.finish().await;
    }
}

#[tokio::test]
async fn the_reporter_reads_no_staff_name_unless_the_manager_released_names() {
    let app = TestApp::spawn(coproduce_testkit::TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.seed_units().await;
    let (speakup, _) = services(&app.db.store, &app.clock);
    app.clock.set(datetime!(2026-11-30 15:00 UTC));
    let clara = caller(&app, "clara").await;
    let raised = speakup
        .raise(
            Reporter::SignedIn(&clara),
            NewConcern {
                unit: "unit-4w".into(),
                room: "12".into(),
                category: "hygiene".into(),
                what: "Staff did not wash their hands before touching my mother's line".into(),
                language: "en".into(),
                ..NewConcern::default()
            },
        )
        .await
        .expect("raised");
    let nurse = caller(&app, "nurse.lee").await;
    speakup
        .step(&nurse, &raised.id, Step::Acknowledged)
        .await
        .expect("ack");
    speakup
        .step(&nurse, &raised.id, Step::LookingInto)
        .await
        .expect("looking");
    speakup
        .step(
            &nurse,
            &raised.id,
            Step::Answered {
                text: "Thank you. We spoke with the team about hand hygiene today.".into(),
            },
        )
        .await
        .expect("answered");
    let follow = Follower::SignedIn {
        caller: &clara,
        id: &raised.id,
    };
    let seen = speakup.follow(follow).await.expect("her concern");
    let page = format!("{seen:?}");
    assert!(
        !page.contains("Sam Lee") && !page.contains("Practitioner/"),
        "{page}"
    );
    // The team sees who did what.
    let team = speakup
        .concern_for_team(&nurse, &raised.id)
        .await
        .expect("the team's view");
    assert!(
        team.steps
            .iter()
            .all(|s| s.by.as_deref() == Some("Sam Lee"))
    );
    // Ana's access log tells her the concern about her was worked on, never by whom.
    let (_, rows) = app
        .db
        .store
        .audit_for_patient("p1", 500, 0)
        .await
        .expect("the trail");
    let tr = coproduce_app::i18n::Tr::new("en");
    let lines: Vec<String> = rows
        .iter()
        .map(|r| coproduce_app::audit_events::in_words(r, &tr, &Default::default()))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Someone working on a concern raised with Speak up")),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("Sam Lee") || l.contains("not signed in"))
    );
    // She is told the answer is there.
    assert_eq!(
        notices(&app.db.store, "RelatedPerson/rp1", "concern-answered").await,
        1
    );
    // Only the manager releases names; then she reads them.
    assert!(
        speakup
            .manage(&nurse, &raised.id, true, None)
            .await
            .is_err()
    );
    let lead = caller(&app, "lead.park").await;
    speakup
        .manage(&lead, &raised.id, true, Some("SE-2026-0117"))
        .await
        .expect("released");
    let seen = speakup.follow(follow).await.expect("again");
    assert!(
        seen.steps
            .iter()
            .any(|s| s.by.as_deref() == Some("Sam Lee"))
    );
    assert_eq!(seen.record.safety_event.as_deref(), Some("SE-2026-0117"));
    // Another family member cannot follow it.
    let ana = caller(&app, "ana").await;
    assert!(
        speakup
            .follow(Follower::SignedIn {
                caller: &ana,
                id: &raised.id
            })
            .await
            .is_err()
    );
    app.finish().await;
}

#[tokio::test]
async fn feedback_goes_to_the_practice_manager_and_is_measured_apart() {
    let app = TestApp::spawn(coproduce_testkit::TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.seed_units().await;
    let (speakup, _) = services(&app.db.store, &app.clock);
    // Monday 30 November 2026, 10:00 in New York.
    app.clock.set(datetime!(2026-11-30 15:00 UTC));
    let ana = caller(&app, "ana").await;
    let compliment = |category: &str| NewConcern {
        unit: "unit-clinic".into(),
        category: category.into(),
        what: "The nurse explained my new insulin pen twice, kindly.".into(),
        language: "en".into(),
        feedback: true,
        ..NewConcern::default()
    };
    let key = |e: coproduce_app::CareError| e.message().map(|(k, _)| k).unwrap_or("none");
    assert_eq!(
        key(speakup
            .raise(Reporter::SignedIn(&ana), compliment("hygiene"))
            .await
            .unwrap_err()),
        "concern-category",
        "feedback has its own categories"
    );
    let given = speakup
        .raise(Reporter::SignedIn(&ana), compliment("compliment"))
        .await
        .expect("given");
    // Two business days, to the practice manager (the clinic lead).
    assert_eq!(given.due, datetime!(2026-12-02 22:00 UTC));
    assert_eq!(
        notices(&app.db.store, "role:clinic-lead", "feedback-given").await,
        1
    );
    let nurse = caller(&app, "nurse.lee").await;
    assert!(speakup.queue(&nurse).await.expect("queue").open.is_empty());
    assert!(speakup.concern_for_team(&nurse, &given.id).await.is_err());
    let lead = caller(&app, "lead.park").await;
    assert_eq!(speakup.queue(&lead).await.expect("queue").open.len(), 1);
    speakup
        .step(&lead, &given.id, Step::Acknowledged)
        .await
        .expect("ack");
    app.clock.set(datetime!(2026-12-01 15:00 UTC));
    speakup
        .step(
            &lead,
            &given.id,
            Step::Answered {
                text: "Thank you; we told her.".into(),
            },
        )
        .await
        .expect("answered");
    speakup
        .felt_heard(
            Follower::SignedIn {
                caller: &ana,
                id: &given.id,
            },
            Heard::Yes,
            "",
        )
        .await
        .expect("heard");
    use coproduce_core::speakup::Kind;
    let fb = speakup
        .measures(&lead, Kind::Feedback)
        .await
        .expect("the feedback measures");
    assert_eq!(fb.overall.raised, 1);
    assert_eq!(fb.overall.answered_on_time_share(), Some(1.0));
    assert_eq!(fb.overall.felt_heard_share(), Some(1.0));
    let concerns = speakup
        .measures(&lead, Kind::Concern)
        .await
        .expect("the concern measures");
    assert_eq!(concerns.overall.raised, 0, "measured apart");
    assert!(speakup.measures(&nurse, Kind::Concern).await.is_err());
    app.finish().await;
}

#[tokio::test]
async fn concerns_export_as_fhir_and_import_again_unchanged() {
    let app = TestApp::spawn(coproduce_testkit::TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.seed_units().await;
    let (speakup, _) = services(&app.db.store, &app.clock);
    app.clock.set(datetime!(2026-11-30 15:00 UTC));
    let raised = speakup
        .raise(
            Reporter::Device {
                address: "10.0.0.7",
            },
            urgent_at_bedside(),
        )
        .await
        .expect("raised");
    let code = raised.claim_code.clone().expect("a code");
    let nurse = caller(&app, "nurse.lee").await;
    speakup
        .step(&nurse, &raised.id, Step::Acknowledged)
        .await
        .expect("ack");
    speakup
        .step(
            &nurse,
            &raised.id,
            Step::Answered {
                text: "Nou vini.".into(),
            },
        )
        .await
        .expect("answered");
    speakup
        .felt_heard(
            Follower::Claim {
                code: &code,
                address: "10.0.0.7",
            },
            Heard::Partly,
            "",
        )
        .await
        .expect("heard");

    let out = tempfile::tempdir().expect("a folder");
    let types = [
        "Communication",
        "Task",
        "QuestionnaireResponse",
        "Location",
        "PractitionerRole",
    ];
    // Imported again: nothing created or changed.
    let n = crate::export_valid_and_reimport(&app.db.url, out.path(), &types);
    assert_eq!((n[0], n[1], n[3]), (0, 0, 0), "{n:?}");
    // The concern, its two Tasks, the felt-heard answer, two units and three staff roles.
    assert_eq!(n[2], 9, "{n:?}");

    // Into a fresh database: the same concern, found by the same code, measured the same.
    let fresh = tempfile::tempdir().expect("a folder");
    let url = format!("sqlite://{}", fresh.path().join("copy.db").display());
    let (ok, report) = crate::coproduce(&url, &["import", out.path().to_str().expect("a path")]);
    assert!(ok, "{report}");
    let store = Store::open(&url).await.expect("the copy");
    let (copy, _) = services(&store, &app.clock);
    let here = Follower::Claim {
        code: &code,
        address: "10.0.0.8",
    };
    let a = speakup.follow(here).await.expect("here");
    let b = copy.follow(here).await.expect("in the copy");
    assert_eq!(a.record, b.record);
    assert_eq!(b.heard, Some(Heard::Partly));
    let system = coproduce_app::accounts::Caller::system("test");
    use coproduce_core::speakup::Kind;
    assert_eq!(
        speakup.measures(&system, Kind::Concern).await.expect("m"),
        copy.measures(&system, Kind::Concern).await.expect("m copy")
    );
    store.close().await;
    app.finish().await;
}
