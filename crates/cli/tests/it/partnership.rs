//! The partnership's scorecard over the store, counted by hand on a fake clock (Monday 1 June
//! 2026, 10:00 UTC; the site keeps Monday to Friday, 08:00 to 17:00 UTC):
//!
//! - Ana enters two glucose readings at 10:00; the nurse reviews one on day 7 (on time) and
//!   the other on day 8 (a day late).
//! - Ana proposes a goal on Monday and the clinician agrees on Wednesday (due by the close
//!   of the 5th business day: on time); a second, proposed on Tuesday, is never answered (due
//!   Tuesday 9 June at 17:00, still open).
//! - Two Tasks of a kind no workflow here writes (`home-visit`, another system's code) with a
//!   chain nurse then clinician, 1 business day each: one completed within the hour, one left
//!   until the watcher moved it to the clinician and completed the next morning at 09:00,
//!   16 hours after it was first due.
//! - Ana's weekly walk, kept on day 6 and then not again (due 14 June 10:00, still open); the
//!   nurse's one-off call by Friday, made on Thursday.
//!
//! On 20 June at 12:00 the team owes 7 (4 on time, 2 late, 1 open), the patient's side 2.

use coproduce_app::caller::Caller;
use coproduce_app::care::{ActivityView, NewActivity, NewReading, PARTNERSHIP_LINE};
use coproduce_app::deadlines::{Watcher, escalation_extension, set_task_deadline};
use coproduce_app::fhir_api::FhirApi;
use coproduce_app::notify::Notifier;
use coproduce_app::workflows::{Settings, Workflows};
use coproduce_core::Clock;
use coproduce_core::access::Role;
use coproduce_core::calendar::{BusinessCalendar, Within};
use coproduce_core::care::plan::{Cadence, GoalAnswer, Owner, Schedule, Setting};
use coproduce_core::care::readings::Measure;
use coproduce_core::deadline::{Escalation, Step};
use coproduce_core::partnership::By;
use coproduce_store::Stored;
use coproduce_testkit::{TestApp, TestBackend, backends};
use serde_json::{Value, json};
use std::sync::Arc;
use time::Duration;
use time::macros::datetime;

fn home_visit(now: time::OffsetDateTime, calendar: &BusinessCalendar) -> Value {
    let chain = Escalation::new(vec![
        Step {
            role: Role::Nurse,
            within: Within::BusinessDays(1),
        },
        Step {
            role: Role::Clinician,
            within: Within::BusinessDays(1),
        },
    ])
    .unwrap();
    let mut task = json!({
        "resourceType": "Task", "status": "requested", "intent": "order",
        "code": {"coding": [{"system": "https://example.org/community-tasks", "code": "home-visit"}]},
        "for": {"reference": "Patient/p1"},
        "authoredOn": Stored::instant(now),
        "extension": [escalation_extension(&chain)],
    });
    set_task_deadline(&mut task, &chain.open(calendar, now));
    task
}

async fn create(api: &FhirApi, task: &Value) -> String {
    let sys = Caller::system("test:partnership");
    let body = task.to_string();
    let written = api.create(&sys, "Task", body.as_bytes(), None).await;
    written.unwrap().stored.id
}

/// Ana's weekly walk (hers, at home) and the nurse's call due by Friday 5 June (the
/// clinician puts it on the plan), in the words given.
pub(crate) async fn walk_and_call(
    w: &Workflows,
    ana: &Caller,
    dr: &Caller,
    walk: &str,
    call: &str,
) -> (ActivityView, ActivityView) {
    let add = |who: &Caller, text: &str, owner, setting, schedule| {
        let a = NewActivity {
            text: text.into(),
            owner,
            setting,
            schedule,
        };
        let care = w.care.clone();
        let who = who.clone();
        async move { care.add_activity(&who, "p1", &a).await.unwrap() }
    };
    let walk = add(
        ana,
        walk,
        Owner::Patient,
        Setting::SelfCare,
        Schedule::Every(Cadence::Weeks(1)),
    )
    .await;
    let call = add(
        dr,
        call,
        Owner::Team(Role::Nurse),
        Setting::Outpatient,
        Schedule::By(datetime!(2026-06-05 17:00 UTC)),
    )
    .await;
    (walk, call)
}

async fn complete(api: &FhirApi, id: &str, at: time::OffsetDateTime) {
    let sys = Caller::system("test:partnership");
    let stored = api.read(&sys, "Task", id).await.unwrap();
    let mut v: Value = stored.json().unwrap();
    v["status"] = json!("completed");
    v["executionPeriod"] = json!({"end": Stored::instant(at)});
    api.update(&sys, "Task", id, v.to_string().as_bytes(), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_scorecard_of_a_small_panel_is_counted_by_hand_on_every_backend() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        let start = datetime!(2026-06-01 10:00 UTC);
        app.clock.set(start);
        let clock: Arc<dyn Clock> = app.clock.clone();
        let api = FhirApi::new(app.db.store.clone(), clock.clone());
        let w = Workflows::new(api.clone(), &Settings::default());
        let calendar = BusinessCalendar::default();
        let ana = crate::rescue::caller(&app, "ana").await;
        let dr = crate::rescue::caller(&app, "dr.okafor").await;
        let nurse = crate::rescue::caller(&app, "nurse.lee").await;
        let sys = Caller::system("test:partnership");

        let glucose = NewReading {
            measure: Measure::Glucose,
            values: vec![120.0],
            unit: String::new(),
            at: start,
        };
        let first = w.care.record_reading(&ana, "p1", &glucose).await.unwrap();
        let second = w.care.record_reading(&ana, "p1", &glucose).await.unwrap();
        let goal = w
            .care
            .propose_goal(&ana, "p1", "Walk to the market", None)
            .await
            .unwrap();
        let (walk, call) = walk_and_call(
            &w,
            &ana,
            &dr,
            "A 20-minute walk",
            "Call about the new meter",
        )
        .await;
        let quick = create(&api, &home_visit(start, &calendar)).await;
        let slow = create(&api, &home_visit(start, &calendar)).await;
        complete(&api, &quick, start + Duration::minutes(50)).await;

        app.clock.set(datetime!(2026-06-02 09:00 UTC));
        w.care
            .propose_goal(&ana, "p1", "Cook at home on weekdays", None)
            .await
            .unwrap();
        // The nurse's first deadline (Tuesday 17:00) passes: the clinician has it now.
        app.clock.set(datetime!(2026-06-02 18:00 UTC));
        let watcher = Watcher::new(
            api.clone(),
            clock.clone(),
            Arc::new(calendar.clone()),
            Notifier::new(api.clone(), clock.clone(), false),
        );
        assert_eq!(watcher.tick().await.unwrap().escalated, 1);
        app.clock.set(datetime!(2026-06-03 09:00 UTC));
        complete(&api, &slow, datetime!(2026-06-03 09:00 UTC)).await;
        w.care
            .answer_goal(&dr, "p1", &goal.id, GoalAnswer::Agree, None)
            .await
            .unwrap();
        app.clock.set(datetime!(2026-06-04 11:00 UTC));
        w.care.mark_done(&nurse, "p1", call.index).await.unwrap();
        app.clock.set(start + Duration::days(6));
        w.care.mark_done(&ana, "p1", walk.index).await.unwrap();
        app.clock.set(start + Duration::days(7));
        w.care
            .review_reading(&nurse, "p1", &first.id, "")
            .await
            .unwrap();
        app.clock.set(start + Duration::days(8));
        w.care
            .review_reading(&nurse, "p1", &second.id, "")
            .await
            .unwrap();

        let now = datetime!(2026-06-20 12:00 UTC);
        app.clock.set(now);
        let (from, to) = (
            datetime!(2026-06-01 00:00 UTC),
            datetime!(2026-07-01 00:00 UTC),
        );
        let card = w
            .care
            .scorecard(&sys, from, to, By::Kind, None)
            .await
            .unwrap();
        let t = &card.team;
        assert_eq!(
            (t.counted(), t.on_time, t.late, t.overdue),
            (7, 4, 2, 1),
            "{card:#?}"
        );
        assert_eq!((t.escalated, t.escalations), (1, 1));
        // Late by 24 h (the review on day 8), 16 h (the home visit) and 259 h so far (the
        // unanswered goal, due 9 June 17:00): the median is 24 h.
        assert_eq!(t.median_late_hours(), Some(24.0));
        let kind = |k: &str| {
            let t = &card.team_by[k];
            (t.on_time, t.late, t.overdue)
        };
        assert_eq!(kind("reading-review"), (1, 1, 0));
        assert_eq!(kind("goal-answer"), (1, 0, 1));
        assert_eq!(kind("home-visit"), (1, 1, 0));
        assert_eq!(kind("activity"), (1, 0, 0));
        assert_eq!(card.team_by.len(), 4, "no other promise: {card:#?}");
        let p = &card.patient;
        assert_eq!((p.counted(), p.on_time, p.overdue), (2, 1, 1));
        assert_eq!((card.goals, card.goals_agreed), (2, 1));

        let by_role = w
            .care
            .scorecard(&sys, from, to, By::Role, None)
            .await
            .unwrap();
        assert_eq!(by_role.team_by["nurse"].counted(), 3);
        assert_eq!(by_role.team_by["care-team"].counted(), 4);
        let by_team = w
            .care
            .scorecard(&sys, from, to, By::Team, None)
            .await
            .unwrap();
        assert_eq!(by_team.team_by["CareTeam/team-p1"].counted(), 7);
        // Nothing is owed in a period before any of it.
        let may = w
            .care
            .scorecard(&sys, datetime!(2026-05-01 00:00 UTC), from, By::Kind, None)
            .await
            .unwrap();
        assert_eq!((may.team.counted(), may.patient.counted()), (0, 0));

        // The population's pass reads the store's per-patient projection rows, not searches,
        // and counts exactly the same, in every breakdown, with the same spectrum.
        let searched = w.care.promises(&sys, from, to, None).await.unwrap();
        let searched = w.care.figures(searched, from, to, &By::ALL);
        let projected = w
            .care
            .population_figures(&sys, from, to, &By::ALL)
            .await
            .unwrap();
        assert_eq!(projected.cards, searched.cards);
        assert_eq!(projected.card(By::Kind).team, card.team);
        assert_eq!(projected.plan, searched.plan);
        assert_eq!(projected.promises, searched.promises);

        // The analyst reads the same on her page, reached from her home; a clinician does not.
        let mut ida = crate::measure::analyst(&app, "ida").await;
        let (_, home) = ida.get("/").await;
        assert!(home.contains("href=\"/partnership\""), "{home}");
        let (status, page) = ida.get("/partnership").await;
        assert_eq!(status, 200, "{page}");
        for figure in [
            "<th scope=\"row\">All</th><td>7</td><td>4</td><td>2</td><td>1</td><td>57.1%</td><td>24.0 h</td><td>1</td>",
            "<th scope=\"row\">home-visit</th><td>2</td><td>1</td><td>1</td><td>0</td><td>50.0%</td><td>16.0 h</td><td>1</td>",
            "<th scope=\"row\">Review a patient&#39;s reading</th><td>2</td><td>1</td><td>1</td>",
            "<th scope=\"row\">2026-06</th><td>7</td>",
            "<th scope=\"row\">The patient</th><td>2</td><td>1</td><td>0</td><td>1</td>",
            "Goals agreed by both sides: 1 of 2 (50.0%).",
            // By care team and, for equity, by Ana's language, age band (65 in 2026) and sex.
            "<th scope=\"row\">CareTeam/team-p1</th><td>7</td><td>4</td>",
            "<th scope=\"row\">English</th><td>7</td><td>4</td>",
            "<th scope=\"row\">65-74</th><td>7</td><td>4</td>",
            "<th scope=\"row\">female</th><td>7</td><td>4</td>",
            "the patients and their families own 1 of 1 (100.0%).",
            "<th scope=\"row\">Clinic visits</th><td>0 by the patient and family, 0 by the care team</td>",
        ] {
            assert!(page.contains(figure), "{figure} in {page}");
        }
        assert_eq!(
            page.matches("<svg").count(),
            2,
            "the month-by-month plot and the spectrum"
        );
        let mut doctor = app.sign_in("dr.okafor").await;
        let (status, _) = doctor.get("/partnership").await;
        assert_eq!(status, 403);

        // Ana reads what her team and she did in the last three months on her home; Clara,
        // her daughter, reads it about her mother.
        let mut ana_web = app.sign_in("ana").await;
        let (_, home) = ana_web.get("/").await;
        for words in [
            "What my team and I have done",
            "Your care team did 4 of 7 things on time. One is late and still waiting.",
            "You and your family did 1 of 2 planned activities on time.",
            "Goals you and your team both agreed: 1 of 2.",
            // The nurse's call is done; her walk is the plan's one open activity.
            "You and your family own 1 of the 1 activities on your plan (100%).",
            "<th scope=\"row\">At home, day to day</th><td>1 by the patient and family, 0 by the care team</td>",
        ] {
            assert!(home.contains(words), "{words} in {home}");
        }
        let mut clara = app.sign_in("clara").await;
        let (_, page) = clara.get("/patients/p1").await;
        assert!(
            page.contains("The care team did 4 of 7 things on time."),
            "{page}"
        );

        // The command counts the same (with the real clock, every open promise is as open).
        if backend == TestBackend::Sqlite {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("scorecard.csv");
            let (ok, printed) = crate::coproduce(
                &app.db.url,
                &[
                    "partnership",
                    "--from",
                    "2026-06-01",
                    "--to",
                    "2026-06-30",
                    "--by",
                    "role",
                    "--out",
                    out.to_str().unwrap(),
                ],
            );
            assert!(ok, "{printed}");
            assert!(
                printed.contains("goals agreed by both sides: 1 of 2 (50.0%)"),
                "{printed}"
            );
            let csv = std::fs::read_to_string(&out).unwrap();
            assert!(csv.contains("\nteam,all,all,7,4,2,1,57.14,"), "{csv}");
            assert!(
                csv.contains("\nteam,role,nurse,3,2,1,0,66.67,16.00,1,1\n"),
                "{csv}"
            );
            assert!(
                csv.contains("\npatient,role,patient,2,1,0,1,50.00,"),
                "{csv}"
            );
            let (ok, printed) = crate::coproduce(
                &app.db.url,
                &[
                    "partnership",
                    "--from",
                    "2026-06-01",
                    "--to",
                    "2026-06-30",
                    "--by",
                    "colour",
                ],
            );
            assert!(
                !ok && printed.contains("--by takes kind, team, role, month, language, age or sex"),
                "{printed}"
            );
        }

        // The clinician reads the panel's scorecard from her home: the same figures, and
        // none of her own items late.
        let mut doctor = app.sign_in("dr.okafor").await;
        let (_, home) = doctor.get("/").await;
        assert!(home.contains("href=\"/partnership/panel\""), "{home}");
        let (status, page) = doctor.get("/partnership/panel").await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains(
                "<th scope=\"row\">All</th><td>7</td><td>4</td><td>2</td><td>1</td><td>57.1%</td>"
            ),
            "{page}"
        );
        assert!(page.contains("None of your items is late."), "{page}");
        // A home visit asked of the nurse on Saturday is due by Monday's close; on Tuesday it
        // is hers, late, with one action.
        create(&api, &home_visit(now, &calendar)).await;
        app.clock.set(datetime!(2026-06-23 09:00 UTC));
        let mut nurse_web = app.sign_in("nurse.lee").await;
        let (_, page) = nurse_web.get("/partnership/panel").await;
        assert!(page.contains("One of your items is late"), "{page}");
        assert!(
            page.contains("<td>Ana Silva</td><td>home-visit</td><td>2026-06-22 17:00 UTC</td><td><a href=\"/patients/p1\">Open the chart</a></td>"),
            "{page}"
        );
        let mut ida = app.sign_in("ida").await;
        let (status, _) = ida.get("/partnership/panel").await;
        assert_eq!(status, 403, "the analyst reads the population's page");
        app.finish().await;
    }
}

/// After the clinician agrees her goal, Ana is asked CollaboRATE's three questions on her
/// home in Brazilian Portuguese; a missing answer is refused and nothing is written; her
/// answers are a QuestionnaireResponse to our Questionnaire that exports as valid FHIR and
/// imports again unchanged; the analyst reads the top-score rate.
#[tokio::test]
async fn ana_answers_the_shared_decision_questions_in_portuguese_and_the_analyst_reads_the_rate() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("pt-BR").await;
        let start = datetime!(2026-06-01 10:00 UTC);
        app.clock.set(start);
        let clock: Arc<dyn Clock> = app.clock.clone();
        let w = Workflows::new(
            FhirApi::new(app.db.store.clone(), clock),
            &Settings::default(),
        );
        let ana = crate::rescue::caller(&app, "ana").await;
        let dr = crate::rescue::caller(&app, "dr.okafor").await;
        let goal = w
            .care
            .propose_goal(&ana, "p1", "Caminhar", None)
            .await
            .unwrap();
        let mut web = app.sign_in("ana").await;
        let (_, home) = web.get("/").await;
        assert!(!home.contains("collaborate-open"), "nothing to ask yet");
        app.clock.set(start + Duration::hours(3));
        w.care
            .answer_goal(&dr, "p1", &goal.id, GoalAnswer::Agree, None)
            .await
            .unwrap();
        let mut web = app.sign_in("ana").await;
        let (_, home) = web.get("/").await;
        assert!(
            home.contains("Conte como foi sua última consulta ou a última mudança no seu plano"),
            "{home}"
        );
        let (status, form) = web.get("/patients/p1/collaborate").await;
        assert_eq!(status, 200);
        assert!(
            form.contains(
                "Quanto esforço foi feito para ajudar você a entender seus problemas de saúde?"
            ),
            "{form}"
        );
        let refused = web
            .post(
                "/patients/p1/collaborate",
                &[("understand", "4"), ("listen", "4")],
            )
            .await;
        assert_eq!(refused.status(), 422);
        assert!(
            refused
                .text()
                .await
                .unwrap()
                .contains("Por favor, responda às três perguntas."),
        );
        let sys = Caller::system("test:collaborate");
        let api = FhirApi::new(app.db.store.clone(), app.clock.clone());
        let none = api
            .search_all(&sys, "QuestionnaireResponse", &[])
            .await
            .unwrap();
        assert!(none.is_empty(), "a refused answer writes nothing");
        let sent = web
            .post(
                "/patients/p1/collaborate",
                &[("understand", "4"), ("listen", "4"), ("include", "4")],
            )
            .await;
        assert_eq!(sent.status(), 303, "saved, then back to her home");
        let responses = api
            .search_all(&sys, "QuestionnaireResponse", &[])
            .await
            .unwrap();
        assert_eq!(responses.len(), 1);
        let qr: Value = responses[0].json().unwrap();
        assert_eq!(qr["questionnaire"], coproduce_app::care::COLLABORATE);
        assert_eq!(qr["author"]["reference"], "Patient/p1");
        assert_eq!(qr["item"][2]["answer"][0]["valueCoding"]["code"], "4");
        let questionnaire = api
            .read(&sys, "Questionnaire", "coproduce-collaborate")
            .await
            .unwrap();
        let questionnaire: Value = questionnaire.json().unwrap();
        assert_eq!(questionnaire["url"], coproduce_app::care::COLLABORATE);
        let (_, home) = web.get("/").await;
        assert!(
            !home.contains("collaborate-open"),
            "answered: not asked again"
        );
        let mut doctor = app.sign_in("dr.okafor").await;
        let (status, _) = doctor.get("/patients/p1/collaborate").await;
        assert_eq!(status, 403, "the team does not answer for the patient");
        // Nor through the application, whatever page it comes from; nor is it asked.
        let refused = w
            .care
            .record_collaborate(&dr, "p1", [Some(4), Some(4), Some(4)])
            .await;
        assert!(
            matches!(
                refused,
                Err(coproduce_app::CareError::App(
                    coproduce_app::AppError::Forbidden(_)
                ))
            ),
            "{refused:?}"
        );
        assert!(!w.care.collaborate_due(&dr, "p1").await.unwrap());

        app.clock.set(start + Duration::hours(4));
        let mut ida = crate::measure::analyst(&app, "ida").await;
        let (_, page) = ida.get("/partnership").await;
        assert!(
            page.contains("every effort was made): 1 of 1 responses in the period (100.0%)"),
            "{page}"
        );
        if backend == TestBackend::Sqlite {
            let out = tempfile::tempdir().unwrap();
            let counts = crate::export_valid_and_reimport(
                &app.db.url,
                out.path(),
                &["Questionnaire", "QuestionnaireResponse"],
            );
            assert_eq!(
                (counts[0], counts[1], counts[2], counts[3]),
                (0, 0, 2, 0),
                "{counts:?}"
            );
        }
        app.finish().await;
    }
}

/// The command scores a generated population (no store needed) and writes its CSV; the
/// same seed gives the same figures.
#[test]
fn the_command_scores_a_generated_population() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("unused.db").display());
    let run = |out: &str| {
        let out = dir.path().join(out);
        let (ok, printed) = crate::coproduce(
            &db,
            &[
                "partnership",
                "--generated",
                "5000",
                "--seed",
                "3",
                "--from",
                "2026-01-01",
                "--to",
                "2026-12-31",
                "--by",
                "language",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(ok, "{printed}");
        assert!(
            printed.contains("5000 generated patients (seed 3)"),
            "{printed}"
        );
        std::fs::read_to_string(out).unwrap()
    };
    let csv = run("a.csv");
    assert_eq!(csv, run("b.csv"), "deterministic by seed");
    let team_all = csv
        .lines()
        .find(|l| l.starts_with("team,all,all,"))
        .unwrap();
    let cells: Vec<&str> = team_all.split(',').collect();
    let owed: usize = cells[3].parse().unwrap();
    let kept: usize = cells[4].parse().unwrap();
    // About 9.5 team promises a patient a year, most kept on time.
    assert!((35_000..=60_000).contains(&owed), "{team_all}");
    let share = kept as f64 / owed as f64;
    assert!((0.6..0.95).contains(&share), "{team_all}");
    for language in ["en", "es", "pt-BR", "ht"] {
        assert!(
            csv.contains(&format!("\nteam,language,{language},")),
            "{language} in {csv}"
        );
    }
}

/// A generated population's records, written into the store as `coproduce generate` writes
/// them (on a fake clock), count exactly the same from the store's projection rows, from
/// searches and read in memory, in every breakdown; and they hold every kind of promise.
#[tokio::test]
async fn a_generated_population_counts_the_same_from_the_store_from_searches_and_in_memory() {
    use coproduce_app::measures::synthetic::Config;
    use coproduce_app::synthetic::{record, shared};
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let now = datetime!(2026-12-06 12:00 UTC);
        app.clock.set(now);
        let cfg = Config {
            seed: 5,
            ..Config::default()
        };
        let n = 120;
        let records = shared()
            .into_iter()
            .chain((0..n).flat_map(|i| record(&cfg, i, now)));
        crate::import_all(&app, records).await;
        let clock: Arc<dyn Clock> = app.clock.clone();

        let w = Workflows::new(
            FhirApi::new(app.db.store.clone(), clock),
            &Settings::default(),
        );
        let sys = Caller::system("test:partnership");
        let (from, to) = (
            datetime!(2026-01-01 00:00 UTC),
            datetime!(2027-01-01 00:00 UTC),
        );
        let projected = w
            .care
            .population_figures(&sys, from, to, &By::ALL)
            .await
            .unwrap();
        let searched = w.care.promises(&sys, from, to, None).await.unwrap();
        let searched = w.care.figures(searched, from, to, &By::ALL);
        let in_memory =
            coproduce_app::synthetic::partnership(&cfg, n, now, &w.care.reader(from, to), &By::ALL);
        assert_eq!(
            (projected.patients, searched.patients, in_memory.patients),
            (120, 120, 120)
        );
        assert_eq!(projected.cards, searched.cards);
        assert_eq!(projected.cards, in_memory.cards);
        assert_eq!(projected.promises, in_memory.promises);
        let spectrum =
            |p: &coproduce_app::care::Figures| coproduce_core::partnership::spectrum(&p.plan);
        assert_eq!(spectrum(&projected), spectrum(&in_memory));
        assert_eq!(spectrum(&projected), spectrum(&searched));
        assert_eq!(projected.shared_decisions, in_memory.shared_decisions);

        // The rows carry the partnership's facts as a line of their own, which is what the
        // pass above read.
        let mut rows = app.db.store.patient_record_batches(1_000);
        let batch = rows.recv().await.unwrap().unwrap();
        assert_eq!(batch.len(), 120);
        for (id, row) in &batch {
            let text = coproduce_measures::projection::decode_lines(row).unwrap();
            assert!(
                text.starts_with(&format!("{PARTNERSHIP_LINE}\t{{")),
                "Patient/{id}: {text:.80}"
            );
        }
        // A process that opens the store without that line rebuilds the rows without it,
        // and reads the same figures from the resources; the app's next run puts it back.
        let bare = coproduce_store::Store::open(&app.db.url).await.unwrap();
        let clock: Arc<dyn Clock> = app.clock.clone();
        let plain = Workflows::new(FhirApi::new(bare.clone(), clock), &Settings::default());
        let from_resources = plain
            .care
            .population_figures(&sys, from, to, &By::ALL)
            .await
            .unwrap();
        let mut rows = bare.patient_record_batches(1_000);
        let (_, row) = &rows.recv().await.unwrap().unwrap()[0];
        let text = coproduce_measures::projection::decode_lines(row).unwrap();
        assert!(!text.contains(PARTNERSHIP_LINE), "{text:.80}");
        assert_eq!(from_resources.cards, projected.cards);
        assert_eq!(from_resources.promises, projected.promises);
        assert_eq!(from_resources.shared_decisions, projected.shared_decisions);
        let again = w
            .care
            .population_figures(&sys, from, to, &By::ALL)
            .await
            .unwrap();
        assert_eq!(again.cards, projected.cards);
        let mut rows = app.db.store.patient_record_batches(1_000);
        let (_, row) = &rows.recv().await.unwrap().unwrap()[0];
        let text = coproduce_measures::projection::decode_lines(row).unwrap();
        assert!(text.starts_with(PARTNERSHIP_LINE), "{text:.80}");

        // Every kind of promise is there, kept on time, late and still open, some escalated.
        let card = projected.card(By::Kind);
        for kind in [
            "reading-review",
            "goal-answer",
            "activity",
            "hba1c-test",
            "rescue-pack-contact",
            "urgent-reading",
            "social-referral",
            "medication-barrier",
        ] {
            assert!(card.team_by.contains_key(kind), "{kind}: {card:#?}");
        }
        let t = &card.team;
        assert!(t.on_time > t.late && t.late > 0 && t.overdue > 0, "{t:?}");
        assert!(t.escalated > 0 && card.patient.counted() > 0 && card.goals_agreed > 0);
        assert_eq!(card.by, By::Kind);
        let languages = projected.card(By::Language);
        assert!(languages.team_by.len() >= 3, "{languages:#?}");
    }
}
