//! The shared care plan and readings, through the pages and the FHIR API: a patient records
//! and proposes, the team reviews and agrees, both see it; what the UI makes is valid FHIR;
//! what comes in through FHIR shows in the chart; impossible readings are refused for every
//! measure and leave nothing behind.

use coproduce_testkit::{TestApp, TestBackend, backends};
use serde_json::Value;

/// A write rule that refuses every Task: what follows a change cannot be written.
struct NoTasks;

impl coproduce_app::fhir_api::WriteRule for NoTasks {
    fn resource_type(&self) -> &'static str {
        "Task"
    }
    fn check(
        &self,
        _: &coproduce_app::fhir_api::Write<'_>,
        _: coproduce_fhir::Resource,
    ) -> Result<coproduce_fhir::Resource, coproduce_app::AppError> {
        Err(coproduce_app::AppError::Conflict("no tasks today".into()))
    }
}

/// The care plan's write rules and [`NoTasks`].
fn rules_refusing_tasks() -> coproduce_app::fhir_api::WriteRules {
    coproduce_app::fhir_api::WriteRules::new(coproduce_app::care::write_rules().into_iter().chain(
        [std::sync::Arc::new(NoTasks) as std::sync::Arc<dyn coproduce_app::fhir_api::WriteRule>],
    ))
}

async fn count(app: &TestApp, query: &str) -> i64 {
    let resp = app.get(&format!("/fhir/{query}&_summary=count")).await;
    assert_eq!(resp.status(), 200, "{query}");
    resp.json::<Value>().await.unwrap()["total"]
        .as_i64()
        .unwrap()
}

async fn all(app: &TestApp, query: &str) -> Vec<Value> {
    let resp = app.get(&format!("/fhir/{query}")).await;
    assert_eq!(resp.status(), 200, "{query}");
    let bundle: Value = resp.json().await.unwrap();
    bundle["entry"]
        .as_array()
        .map(|es| es.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_patient_and_the_team_coproduce_the_plan_on_both_backends() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        let mut ana = app.sign_in("ana").await;
        let mut dr = app.sign_in("dr.okafor").await;

        // Ana records a glucose reading in mmol/L and proposes a goal in her own words.
        let (status, home) = ana.get("/").await;
        assert_eq!(status, 200);
        assert!(home.contains("My health plan"), "{home}");
        ana.get("/patients/p1/readings/glucose").await;
        let resp = ana
            .post(
                "/patients/p1/readings",
                &[("measure", "glucose"), ("value", "9.5"), ("unit", "mmol/L")],
            )
            .await;
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
        let resp = ana
            .post(
                "/patients/p1/goals",
                &[("text", "Walk to the market three times a week")],
            )
            .await;
        assert_eq!(resp.status(), 303);

        // The team home flags the reading as unreviewed and out of range (171 mg/dL is in
        // range; 9.5 mmol/L is 171 mg/dL, so only "unreviewed"), and lists the goal.
        let (status, team) = dr.get("/").await;
        assert_eq!(status, 200);
        assert!(team.contains("Readings to review (1)"), "{team}");
        assert!(team.contains("171 mg/dL"), "converted to mg/dL: {team}");
        assert!(team.contains("Walk to the market three times a week"));

        // The clinician agrees with an HbA1c target and reviews the reading with a comment.
        let goals = all(&app, "Goal?subject=Patient/p1").await;
        let gid = goals[0]["id"].as_str().unwrap().to_string();
        let obs = all(&app, "Observation?subject=Patient/p1").await;
        let oid = obs[0]["id"].as_str().unwrap().to_string();
        dr.get("/patients/p1").await;
        let resp = dr
            .post(
                &format!("/patients/p1/goals/{gid}/answer"),
                &[("answer", "agree"), ("target", "below-7")],
            )
            .await;
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
        let resp = dr
            .post(
                &format!("/patients/p1/observations/{oid}/review"),
                &[
                    ("comment", "Good to see. Check again after lunch."),
                    ("back", "/"),
                ],
            )
            .await;
        assert_eq!(resp.status(), 303);
        let (_, team) = dr.get("/").await;
        assert!(team.contains("Every reading has been reviewed"), "{team}");

        // Ana sees the agreement and the comment.
        let (_, home) = ana.get("/").await;
        assert!(home.contains("Agreed by both"), "{home}");
        assert!(
            home.contains("Good to see. Check again after lunch."),
            "{home}"
        );
        assert!(home.contains("Target: below 7 %"), "{home}");
        assert!(home.contains("Ngozi Okafor agreed to your goal"), "{home}");

        // A goal the team proposes and Ana agrees to is no news to Ana.
        let resp = dr
            .post(
                "/patients/p1/goals",
                &[("text", "Check my feet every evening")],
            )
            .await;
        assert_eq!(resp.status(), 303);
        let goals = all(&app, "Goal?subject=Patient/p1&lifecycle-status=proposed").await;
        let feet = goals[0]["id"].as_str().unwrap().to_string();
        ana.get("/").await;
        let resp = ana
            .post(
                &format!("/patients/p1/goals/{feet}/answer"),
                &[("answer", "agree")],
            )
            .await;
        assert_eq!(resp.status(), 303);
        let (_, home) = ana.get("/").await;
        // Still only the one about the goal Ana proposed.
        assert_eq!(home.matches("agreed to your goal").count(), 1, "{home}");

        // The goal reads back as FHIR: agreed, expressed by Ana, with the target.
        let goal = &all(&app, &format!("Goal?_id={gid}")).await[0];
        assert_eq!(goal["lifecycleStatus"], "active");
        assert_eq!(goal["expressedBy"]["reference"], "Patient/p1");
        assert_eq!(
            goal["target"][0]["detailQuantity"]["value"].as_f64(),
            Some(7.0)
        );
        // Agreeing to an HbA1c target makes the HbA1c test a team task (none on record: due now).
        assert_eq!(
            count(&app, "Task?patient=Patient/p1&status=requested").await,
            1
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn what_the_ui_makes_reads_back_as_valid_fhir_r4() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut dr = app.sign_in("dr.okafor").await;
    dr.get("/patients/p1").await;
    for (text, owner, when, due, every) in [
        (
            "Call Ana about her foot check",
            "nurse",
            "once",
            "2026-11-20",
            "",
        ),
        (
            "Check blood sugar before breakfast",
            "patient",
            "d",
            "",
            "1",
        ),
    ] {
        let resp = dr
            .post(
                "/patients/p1/activities",
                &[
                    ("text", text),
                    ("owner", owner),
                    ("setting", "outpatient"),
                    ("when", when),
                    ("due", due),
                    ("every", every),
                ],
            )
            .await;
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    }
    dr.post(
        "/patients/p1/goals",
        &[("text", "HbA1c below 8%"), ("target", "below-8")],
    )
    .await;
    for rt in ["CarePlan", "Goal", "Observation", "Task"] {
        for r in all(&app, &format!("{rt}?_count=100")).await {
            coproduce_fhir::validate::validate_resource(&r)
                .unwrap_or_else(|e| panic!("{rt} is not valid FHIR R4: {e}\n{r}"));
        }
    }
    let plan = &all(&app, "CarePlan?subject=Patient/p1").await[0];
    assert_eq!(plan["activity"].as_array().unwrap().len(), 2);
    assert_eq!(plan["goal"].as_array().unwrap().len(), 1);
    // The nurse's call was due on 20 November; the fake clock says 27 November.
    let (_, team) = dr.get("/").await;
    assert!(team.contains("Overdue team activities (1)"), "{team}");
    assert!(team.contains("Call Ana about her foot check"));

    // Ana marks her own activity done, but not the nurse's.
    let ana = app.sign_in("ana").await;
    let mut ana = ana;
    ana.get("/").await;
    assert_eq!(
        ana.post("/patients/p1/activities/1/done", &[])
            .await
            .status(),
        303
    );
    let resp = ana.post("/patients/p1/activities/0/done", &[]).await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("belongs to the other side")
    );
    let plan = &all(&app, "CarePlan?subject=Patient/p1").await[0];
    assert_eq!(plan["activity"][1]["progress"].as_array().unwrap().len(), 1);
    assert!(plan["activity"][0].get("progress").is_none());
    app.finish().await;
}

#[tokio::test]
async fn an_observation_posted_through_fhir_shows_in_the_patients_chart() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let obs = serde_json::json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-02T09:00:00Z",
        "valueQuantity": {"value": 64, "unit": "mmol/mol", "system": "http://unitsofmeasure.org", "code": "mmol/mol"},
    });
    let resp = app.post_json("/fhir/Observation", obs.to_string()).await;
    assert_eq!(resp.status(), 201);
    let mut ana = app.sign_in("ana").await;
    let (status, page) = ana.get("/patients/p1/readings/hba1c").await;
    assert_eq!(status, 200);
    // 64 mmol/mol is 8.0 %.
    assert!(page.contains("8.0 %"), "{page}");
    assert!(page.contains("2026-11-02 09:00"));
    app.finish().await;
}

#[tokio::test]
async fn impossible_readings_are_refused_for_every_measure_and_nothing_is_stored() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut ana = app.sign_in("ana").await;
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        ("hba1c", "80", "", "%", "HbA1c must be between 3 and 20 %"),
        ("hba1c", "7,2x", "", "%", "is not a number. Type digits"),
        (
            "glucose",
            "0.2",
            "",
            "mmol/L",
            "between 0.6 and 83.3 mmol/L",
        ),
        (
            "blood-pressure",
            "80",
            "120",
            "",
            "top number (systolic) must be higher",
        ),
        (
            "blood-pressure",
            "400",
            "80",
            "",
            "the top number (systolic) must be between 50 and 300",
        ),
        (
            "weight",
            "-70",
            "",
            "kg",
            "Weight must be between 0.5 and 500 kg",
        ),
        (
            "weight",
            "70",
            "",
            "stone",
            "is not a unit for this reading. Use kg, lb",
        ),
        (
            "peak-flow",
            "5",
            "",
            "",
            "Peak flow must be between 30 and 1000 L/min",
        ),
        (
            "cat-score",
            "41",
            "",
            "",
            "COPD assessment (CAT) must be between 0 and 40",
        ),
        ("cat-score", "12.5", "", "", "whole number"),
        ("steps", "-3", "", "", "Steps must be between 0 and 100000"),
        ("glucose", "", "", "", "Please enter a value"),
    ];
    for (measure, value, value2, unit, message) in cases {
        ana.get(&format!("/patients/p1/readings/{measure}")).await;
        let resp = ana
            .post(
                "/patients/p1/readings",
                &[
                    ("measure", measure),
                    ("value", value),
                    ("value2", value2),
                    ("unit", unit),
                ],
            )
            .await;
        assert_eq!(resp.status(), 422, "{measure} {value}");
        let page = resp.text().await.unwrap();
        assert!(
            page.contains(message),
            "{measure} {value}: expected '{message}' in\n{page}"
        );
        assert!(
            page.contains(&format!("value=\"{value}\"")),
            "what was typed is kept"
        );
    }
    assert_eq!(count(&app, "Observation?subject=Patient/p1").await, 0);

    // The same rule holds through the FHIR API.
    let obs = serde_json::json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": -70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    });
    let resp = app.post_json("/fhir/Observation", obs.to_string()).await;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert!(
        body.to_string().contains("weight must be between"),
        "{body}"
    );

    // A CSV file with one bad row stores none of its rows.
    let csv = "measure,value,value2,unit,time\nglucose,120,,mg/dL,2026-11-20 08:30\nhba1c,80,,%,2026-11-21 08:30\n";
    let form = reqwest::multipart::Form::new()
        .text("csrf", ana.csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("r.csv"),
        );
    let resp = ana
        .client
        .post(format!("{}/patients/p1/readings/upload", ana.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("Row 3: That cannot be right: HbA1c must be between 3 and 20 %"),
        "{page}"
    );
    assert_eq!(count(&app, "Observation?subject=Patient/p1").await, 0);

    // In Spanish: the measure by its name and the numbers with a decimal comma.
    let resp = ana
        .post("/account/language", &[("lang", "es"), ("back", "/")])
        .await;
    assert_eq!(resp.status(), 303);
    for (measure, value, message) in [
        ("hba1c", "80", "HbA1c debe estar entre 3 y 20 %"),
        ("weight", "-70", "Peso debe estar entre 0,5 y 500 kg"),
    ] {
        ana.get(&format!("/patients/p1/readings/{measure}")).await;
        let resp = ana
            .post(
                "/patients/p1/readings",
                &[("measure", measure), ("value", value), ("unit", "")],
            )
            .await;
        assert_eq!(resp.status(), 422);
        let page = resp.text().await.unwrap();
        assert!(page.contains(message), "{message}: {page}");
    }
    app.finish().await;
}

/// A reading whose unit its measure does not use (an HbA1c in milligrams) is refused with the
/// reason on every path, on both backends: the page (in the person's language), the FHIR API,
/// a transaction Bundle (nothing of it is written) and an import (that resource only).
#[tokio::test]
async fn a_reading_in_a_unit_its_measure_does_not_use_is_refused_on_every_path() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("es").await;
        let mut ana = app.sign_in("ana").await;
        ana.get("/patients/p1/readings/hba1c").await;
        let resp = ana
            .post(
                "/patients/p1/readings",
                &[
                    ("measure", "hba1c"),
                    ("value", "7.1"),
                    ("value2", ""),
                    ("unit", "mg"),
                ],
            )
            .await;
        assert_eq!(resp.status(), 422);
        let page = resp.text().await.unwrap();
        assert!(
            page.contains("&#39;mg&#39; no es una unidad para esta medición. Use %, mmol/mol."),
            "{page}"
        );

        let hba1c = |value: f64, unit: &str| {
            serde_json::json!({
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "subject": {"reference": "Patient/p1"},
                "effectiveDateTime": "2026-11-20T08:00:00Z",
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
            })
        };
        let resp = app
            .post_json("/fhir/Observation", hba1c(7.1, "mg").to_string())
            .await;
        assert_eq!(resp.status(), 422);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert!(
            body.to_string()
                .contains("'mg' is not a unit for this reading"),
            "{body}"
        );

        let bundle = serde_json::json!({
            "resourceType": "Bundle", "type": "transaction",
            "entry": [
                {"resource": hba1c(7.1, "%"), "request": {"method": "POST", "url": "Observation"}},
                {"resource": hba1c(7.1, "mg"), "request": {"method": "POST", "url": "Observation"}},
            ],
        });
        let resp = app.post_json("/fhir", bundle.to_string()).await;
        assert_eq!(resp.status(), 422);
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("is not a unit for this reading")
        );
        assert_eq!(count(&app, "Observation?subject=Patient/p1").await, 0);

        // An import takes the good reading and rejects the other, saying why.
        let clock: std::sync::Arc<dyn coproduce_core::Clock> = app.clock.clone();
        let mut importer = coproduce_app::Importer::new(app.db.store.clone(), clock, "test:import");
        for (i, (id, unit)) in [("good", "%"), ("bad", "mg")].into_iter().enumerate() {
            let mut obs = hba1c(7.1, unit);
            obs["id"] = serde_json::json!(id);
            importer
                .add(coproduce_fhir::stream::SourceItem::new(
                    format!("readings.ndjson:{}", i + 1),
                    Ok(obs),
                ))
                .await
                .unwrap();
        }
        let summary = importer.finish().await.unwrap();
        assert_eq!(summary.rejected.len(), 1, "{:?}", summary.rejected);
        let (location, reason) = &summary.rejected[0];
        assert_eq!(location, "readings.ndjson:2");
        assert!(
            reason.contains("'mg' is not a unit for this reading"),
            "{reason}"
        );
        let stored = all(&app, "Observation?subject=Patient/p1").await;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0]["id"], "good");
        app.finish().await;
    }
}

/// A control character in a page form (a goal's words here) is refused before anything runs,
/// naming the field, and nothing is stored.
#[tokio::test]
async fn a_control_character_in_a_page_form_is_refused_naming_the_field() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut ana = app.sign_in("ana").await;
    ana.get("/patients/p1").await;
    let resp = ana
        .post(
            "/patients/p1/goals",
            &[("text", "walk\u{1} every day"), ("target", "")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("What you typed in “text” holds an invisible character (U+0001)"),
        "{page}"
    );
    assert_eq!(count(&app, "Goal?subject=Patient/p1").await, 0);
    // The same words without it are saved.
    let resp = ana
        .post(
            "/patients/p1/goals",
            &[("text", "walk every day"), ("target", "")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(count(&app, "Goal?subject=Patient/p1").await, 1);
    app.finish().await;
}

/// A person may read and type times in their own time zone: a zone nobody knows is refused
/// and changes nothing; once set, a time typed into the readings form is read on their clock
/// and shown on it, and stored as the UTC instant it is.
#[tokio::test]
async fn a_person_reads_and_types_times_in_their_own_time_zone() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut ana = app.sign_in("ana").await;
    let (_, account) = ana.get("/account").await;
    assert!(
        account.contains("leave empty for the clinic&#39;s, UTC"),
        "{account}"
    );
    let resp = ana
        .post("/account/time-zone", &[("time_zone", "Mars/Olympus")])
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("“Mars/Olympus” is not a time zone we know")
    );
    let resp = ana
        .post(
            "/account/time-zone",
            &[("time_zone", "America/Los_Angeles")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("value=\"America/Los_Angeles\"")
    );

    ana.get("/patients/p1/readings/glucose").await;
    let resp = ana
        .post(
            "/patients/p1/readings",
            &[
                ("measure", "glucose"),
                ("value", "120"),
                ("value2", ""),
                ("unit", "mg/dL"),
                ("at", "2026-11-20T08:00"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let stored = all(&app, "Observation?subject=Patient/p1").await;
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0]["effectiveDateTime"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-20T16:00:00"),
        "08:00 in Los Angeles is 16:00 UTC: {}",
        stored[0]["effectiveDateTime"]
    );
    let (_, page) = ana.get("/patients/p1/readings/glucose").await;
    assert!(page.contains("2026-11-20 08:00"), "{page}");
    app.finish().await;
}

/// Recording an HbA1c on the page says saved exactly when it is: each reading is one new
/// Observation, and the "HbA1c test due" Task moves with it (created by the first, updated by
/// the next), on both backends.
#[tokio::test]
async fn an_hba1c_recorded_on_the_page_is_saved_once_and_moves_the_test_due() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        let mut ana = app.sign_in("ana").await;
        let mut dues = Vec::new();
        for (n, (at, value)) in [("2026-08-01T09:00", "8.1"), ("2026-11-20T09:00", "7.3")]
            .into_iter()
            .enumerate()
        {
            ana.get("/patients/p1/readings/hba1c").await;
            let resp = ana
                .post(
                    "/patients/p1/readings",
                    &[
                        ("measure", "hba1c"),
                        ("value", value),
                        ("value2", ""),
                        ("unit", "%"),
                        ("at", at),
                    ],
                )
                .await;
            assert_eq!(
                resp.status(),
                303,
                "{backend:?}: {}",
                resp.text().await.unwrap()
            );
            assert_eq!(
                count(
                    &app,
                    "Observation?subject=Patient/p1&code=http://loinc.org|4548-4"
                )
                .await,
                n as i64 + 1,
                "{backend:?}: exactly one new reading"
            );
            let tasks = all(
                &app,
                "Task?identifier=https://coproduce.health/fhir/CodeSystem/task|hba1c-test/p1",
            )
            .await;
            assert_eq!(tasks.len(), 1, "{backend:?}: one HbA1c task");
            dues.push(tasks[0]["restriction"]["period"]["end"].clone());
        }
        assert_ne!(
            dues[0], dues[1],
            "{backend:?}: the test due moved with the new reading"
        );
        app.finish().await;
    }
}

/// Only clinical roles sign a reading off: a pharmacist on the team sees the reading without
/// the review form, a forced review is refused and changes nothing, and a nurse's counts.
#[tokio::test]
async fn only_clinical_roles_mark_a_reading_reviewed() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut ana = app.sign_in("ana").await;
    ana.get("/patients/p1/readings/glucose").await;
    let resp = ana
        .post(
            "/patients/p1/readings",
            &[
                ("measure", "glucose"),
                ("value", "131"),
                ("value2", ""),
                ("unit", "mg/dL"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let obs = all(&app, "Observation?subject=Patient/p1").await;
    let id = obs[0]["id"].as_str().unwrap().to_string();
    let review = format!("/patients/p1/observations/{id}/review");

    let mut rph = app.sign_in("rph.ali").await;
    let (status, home) = rph.get("/").await;
    assert_eq!(status, 200);
    let (_, ana_home) = ana.get("/").await;
    for page in [&home, &ana_home] {
        assert!(
            page.contains("id=\"nav-notifications\""),
            "every header links the notifications"
        );
    }
    let (_, readings) = rph.get("/patients/p1/readings/glucose").await;
    assert!(
        readings.contains("131"),
        "the pharmacist sees the reading: {readings}"
    );
    assert!(!readings.contains(&review), "but no form to sign it off");
    assert!(!home.contains(&review), "nor on their home");
    let resp = rph.post(&review, &[("comment", ""), ("back", "/")]).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        count(&app, "Observation?subject=Patient/p1&_tag=https://coproduce.health/fhir/CodeSystem/workflow|unreviewed").await,
        1,
        "still waiting for review"
    );

    let mut nurse = app.sign_in("nurse.lee").await;
    let (_, home) = nurse.get("/").await;
    assert!(home.contains(&review));
    let resp = nurse.post(&review, &[("comment", ""), ("back", "/")]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        count(&app, "Observation?subject=Patient/p1&_tag=https://coproduce.health/fhir/CodeSystem/workflow|unreviewed").await,
        0
    );
    app.finish().await;
}

#[tokio::test]
async fn readings_upload_from_csv_and_export_again() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut clara = app.sign_in("clara").await;
    let (status, home) = clara.get("/").await;
    assert_eq!(status, 200);
    assert!(
        home.contains("Ana Silva"),
        "the family home lists Ana: {home}"
    );
    clara.get("/patients/p1").await;
    let csv = "measure,value,value2,unit,time\nglucose,7.1,,mmol/L,2026-11-20 08:30\nblood-pressure,128,82,,2026-11-21 07:00\nweight,80.5,,kg,2026-11-22 07:00\n";
    let form = reqwest::multipart::Form::new()
        .text("csrf", clara.csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("r.csv"),
        );
    let resp = clara
        .client
        .post(format!("{}/patients/p1/readings/upload", clara.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    assert_eq!(count(&app, "Observation?subject=Patient/p1").await, 3);
    // Recorded as Clara's, on Ana's behalf.
    let obs = all(&app, "Observation?subject=Patient/p1").await;
    assert!(
        obs.iter()
            .all(|o| o["performer"][0]["reference"] == "RelatedPerson/rp1")
    );

    let resp = clara
        .client
        .get(format!("{}/patients/p1/readings.csv", clara.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let text = resp.text().await.unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows[0],
        "measure,value,value2,unit,time,recorded_by,reviewed,review_comment"
    );
    assert!(
        rows.contains(&"blood-pressure,128,82,mm[Hg],2026-11-21T07:00:00.000Z,Clara Silva,no,"),
        "{text}"
    );
    assert!(
        rows.contains(&"glucose,128,,mg/dL,2026-11-20T08:30:00.000Z,Clara Silva,no,"),
        "{text}"
    );
    app.finish().await;
}

#[tokio::test]
async fn the_language_comes_from_the_choice_else_from_the_record() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("ht").await;
    let mut ana = app.sign_in("ana").await;
    let (_, home) = ana.get("/").await;
    assert!(
        home.contains("<html lang=\"ht\">"),
        "from Patient.communication"
    );
    assert!(home.contains("Plan sante mwen"));
    let resp = ana
        .post("/account/language", &[("lang", "es"), ("back", "/")])
        .await;
    assert_eq!(resp.status(), 303);
    let (_, home) = ana.get("/").await;
    assert!(home.contains("Mi plan de salud"), "her choice wins");
    // A summary for the visit prints in her language too.
    let (status, summary) = ana.get("/patients/p1/summary").await;
    assert_eq!(status, 200);
    assert!(
        summary.contains("Resumen de la consulta: Ana Silva"),
        "{summary}"
    );
    app.finish().await;
}

#[tokio::test]
async fn nobody_reaches_a_chart_outside_their_rights() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.put_json(
        "/fhir/Patient/p2",
        r#"{"resourceType":"Patient","id":"p2"}"#,
        None,
    )
    .await;
    for who in ["ana", "clara", "dr.okafor"] {
        let mut c = app.sign_in(who).await;
        let (status, _) = c.get("/patients/p2").await;
        assert_eq!(status, 403, "{who} opens someone else's chart");
        c.get("/").await;
        let resp = c
            .post(
                "/patients/p2/readings",
                &[("measure", "weight"), ("value", "70")],
            )
            .await;
        assert_eq!(resp.status(), 403, "{who} writes into someone else's chart");
    }
    assert_eq!(count(&app, "Observation?subject=Patient/p2").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn a_reading_left_unreviewed_for_more_than_seven_days_is_flagged() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut ana = app.sign_in("ana").await;
    ana.get("/patients/p1/readings/weight").await;
    let resp = ana
        .post(
            "/patients/p1/readings",
            &[("measure", "weight"), ("value", "176"), ("unit", "lb")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let mut dr = app.sign_in("dr.okafor").await;
    let (_, team) = dr.get("/").await;
    assert!(team.contains("79.8 kg"), "176 lb in kg: {team}");
    assert!(!team.contains("Not reviewed within 7 days"));
    // Weight has no default target, so it is neither low nor high.
    assert!(
        !team.contains("badge low") && !team.contains("badge high"),
        "{team}"
    );
    app.clock
        .advance(time::Duration::days(7) + time::Duration::minutes(1));
    let mut dr = app.sign_in("dr.okafor").await;
    let (_, team) = dr.get("/").await;
    assert!(team.contains("Not reviewed within 7 days"), "{team}");
    app.finish().await;
}

#[tokio::test]
async fn a_clinician_on_more_than_a_thousand_care_teams_reaches_every_patient() {
    // Found by bench/teamhome: the panel was read as one page of at most 1,000 care teams.
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut entries = Vec::new();
    for i in 0..1001 {
        entries.push(serde_json::json!({
            "resource": {"resourceType": "Patient", "id": format!("x{i}")},
            "request": {"method": "PUT", "url": format!("Patient/x{i}")},
        }));
        entries.push(serde_json::json!({
            "resource": {"resourceType": "CareTeam", "id": format!("team-x{i}"), "status": "active",
                "subject": {"reference": format!("Patient/x{i}")},
                "participant": [{"member": {"reference": "Practitioner/dr"}}]},
            "request": {"method": "PUT", "url": format!("CareTeam/team-x{i}")},
        }));
    }
    // In Bundles of at most 1,000 entries, the server's limit.
    for chunk in entries.chunks(1000) {
        let bundle =
            serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": chunk});
        let resp = app.post_json("/fhir", bundle.to_string()).await;
        assert_eq!(resp.status(), 200);
    }
    let mut dr = app.sign_in("dr.okafor").await;
    let (_, team) = dr.get("/").await;
    assert!(
        team.contains("1002 patients in your panel"),
        "{}",
        &team[..team.len().min(2000)]
    );
    let (status, _) = dr.get("/patients/x1000").await;
    assert_eq!(status, 200, "the 1,001st care team's patient");
    app.finish().await;
}

#[tokio::test]
async fn a_record_addressed_through_the_wrong_chart_is_not_changed() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.put_json(
        "/fhir/Patient/p2",
        r#"{"resourceType":"Patient","id":"p2"}"#,
        None,
    )
    .await;
    app.put_json(
        "/fhir/CareTeam/team-p2",
        r#"{"resourceType":"CareTeam","id":"team-p2","status":"active","subject":{"reference":"Patient/p2"},"participant":[{"member":{"reference":"Practitioner/dr"}}]}"#,
        None,
    )
    .await;
    let mut ana = app.sign_in("ana").await;
    ana.get("/patients/p1/readings/glucose").await;
    ana.post(
        "/patients/p1/readings",
        &[("measure", "glucose"), ("value", "140")],
    )
    .await;
    let oid = all(&app, "Observation?subject=Patient/p1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut dr = app.sign_in("dr.okafor").await;
    dr.get("/").await;
    let resp = dr
        .post(
            &format!("/patients/p2/observations/{oid}/review"),
            &[("comment", "x")],
        )
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        count(
            &app,
            "Observation?_tag=https://coproduce.health/fhir/CodeSystem/workflow|unreviewed"
        )
        .await,
        1,
        "still unreviewed"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_reading_the_patient_posts_through_fhir_waits_for_review_like_one_from_the_app() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let (_, ana_token) = app
        .accounts
        .issue_token(coproduce_app::accounts::NewToken {
            username: Some("ana".into()),
            name: "ana's meter".into(),
            scopes: "patient/*.cruds".into(),
            patient: Some("Patient/p1".into()),
            expires_in: None,
        })
        .await
        .unwrap();
    let obs = serde_json::json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-27T07:30:00Z",
        "valueQuantity": {"value": 6.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    });
    let resp = app
        .client
        .post(app.url("/fhir/Observation"))
        .bearer_auth(&ana_token)
        .header("content-type", "application/fhir+json")
        .body(obs.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let stored: Value = resp.json().await.unwrap();
    assert_eq!(stored["meta"]["tag"][0]["code"], "unreviewed");
    // Nor can the patient sign it off herself by rewriting it without the tag and with a
    // review of her own: it still waits for the team.
    let mut forged = stored.clone();
    forged.as_object_mut().unwrap().remove("meta");
    forged["extension"] = serde_json::json!([{
        "url": "https://coproduce.health/fhir/StructureDefinition/reading-review",
        "extension": [{"url": "by", "valueReference": {"display": "Ana Silva"}},
                      {"url": "at", "valueDateTime": "2026-11-27T08:00:00Z"}],
    }]);
    let resp = app
        .client
        .put(app.url(&format!(
            "/fhir/Observation/{}",
            stored["id"].as_str().unwrap()
        )))
        .bearer_auth(&ana_token)
        .header("content-type", "application/fhir+json")
        .body(forged.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rewritten: Value = resp.json().await.unwrap();
    assert_eq!(
        rewritten["meta"]["tag"][0]["code"], "unreviewed",
        "{rewritten}"
    );
    assert!(rewritten.get("extension").is_none(), "{rewritten}");
    let mut dr = app.sign_in("dr.okafor").await;
    let (_, team) = dr.get("/").await;
    assert!(team.contains("Readings to review (1)"), "{team}");
    assert!(team.contains("110 mg/dL"), "6.1 mmol/L: {team}");
    // The team's own entries need no review.
    let resp = app.post_json("/fhir/Observation", obs.to_string()).await;
    let stored: Value = resp.json().await.unwrap();
    assert!(stored["meta"].get("tag").is_none(), "{stored}");
    app.finish().await;
}

/// When what follows a reading cannot be written (here a rule refuses every Task), the
/// reading is not stored either, and the caller is told: nothing half-done.
#[tokio::test]
async fn a_reading_whose_follow_up_fails_is_not_stored_and_says_so() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let clock: std::sync::Arc<dyn coproduce_core::Clock> = app.clock.clone();
    let rules = rules_refusing_tasks();
    let api = coproduce_app::FhirApi::with_rules(app.db.store.clone(), clock.clone(), rules);
    let care = coproduce_app::Care::new(api, clock);
    let caller = crate::rescue::caller(&app, "ana").await;
    let reading = coproduce_app::care::NewReading {
        measure: coproduce_core::care::readings::Measure::HbA1c,
        values: vec![7.3],
        unit: "%".into(),
        at: time::macros::datetime!(2026-11-20 09:00 UTC),
    };
    let result = care.record_reading(&caller, "p1", &reading).await;
    assert!(
        matches!(
            result,
            Err(coproduce_app::CareError::App(
                coproduce_app::AppError::Conflict(_)
            ))
        ),
        "{result:?}"
    );
    assert_eq!(count(&app, "Observation?subject=Patient/p1").await, 0);
    // A reading with no follow-up is not held up by it.
    let glucose = coproduce_app::care::NewReading {
        measure: coproduce_core::care::readings::Measure::Glucose,
        values: vec![120.0],
        unit: "mg/dL".into(),
        ..reading
    };
    care.record_reading(&caller, "p1", &glucose).await.unwrap();
    assert_eq!(count(&app, "Observation?subject=Patient/p1").await, 1);
    app.finish().await;
}

/// A dangerous low (CLINICAL.md section 2): the patient reads what to do now with the numbers
/// to call, the team's urgent Task with a same-day deadline commits with the reading, the
/// family member who follows the readings is told, the clinician's home lists it first under
/// "needs action now", and the review answers the Task. A reading the team enters makes no
/// Task (they know already); low and high carry different words.
#[tokio::test]
async fn a_dangerous_low_gets_a_response_now_on_both_backends() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        let mut ana = app.sign_in("ana").await;
        ana.get("/patients/p1/readings/glucose").await;
        let record = |value: &'static str, value2: &'static str, measure: &'static str| {
            let ana = &ana;
            async move {
                ana.post(
                    "/patients/p1/readings",
                    &[
                        ("measure", measure),
                        ("value", value),
                        ("value2", value2),
                        (
                            "unit",
                            if measure == "glucose" {
                                "mg/dL"
                            } else {
                                "mm[Hg]"
                            },
                        ),
                    ],
                )
                .await
            }
        };
        for (v, v2, m) in [("212", "", "glucose"), ("131", "92", "blood-pressure")] {
            assert_eq!(record(v, v2, m).await.status(), 303);
        }
        assert_eq!(
            count(
                &app,
                "Task?code=https://coproduce.health/fhir/CodeSystem/task|urgent-reading"
            )
            .await,
            0,
            "{backend:?}: off target is not urgent"
        );
        let resp = record("52", "", "glucose").await;
        assert_eq!(resp.status(), 303);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(location.contains("reading="), "{location}");

        // What Ana reads now: the 15-15 rule, when to call 911, and that the team will call.
        let (status, page) = ana.get(&location).await;
        assert_eq!(status, 200);
        for words in [
            "Your glucose is very low. Treat it now.",
            "15 grams of fast sugar",
            "Check again in 15 minutes",
            "href=\"tel:911\"",
            "Your care team has been told and will call you today.",
            "Very low: act now",
            ">High<",
        ] {
            assert!(page.contains(words), "{backend:?}: {words}: {page}");
        }
        assert!(
            !page.contains("Off target"),
            "{backend:?}: one word for both ways"
        );

        // The urgent Task: one, urgent, about the reading, due the same day (4 hours).
        let tasks = all(
            &app,
            "Task?code=https://coproduce.health/fhir/CodeSystem/task|urgent-reading",
        )
        .await;
        assert_eq!(tasks.len(), 1, "{backend:?}");
        let task = &tasks[0];
        assert_eq!(task["priority"], "urgent");
        assert_eq!(task["status"], "requested");
        let obs = all(&app, "Observation?subject=Patient/p1").await;
        let low = obs
            .iter()
            .find(|o| o["valueQuantity"]["value"].as_f64() == Some(52.0))
            .expect("the low reading");
        let oid = low["id"].as_str().unwrap().to_string();
        assert_eq!(task["focus"]["reference"], format!("Observation/{oid}"));
        let due = task["restriction"]["period"]["end"].as_str().unwrap();
        let due = time::OffsetDateTime::parse(due, &time::format_description::well_known::Rfc3339)
            .unwrap();
        let now = coproduce_core::Clock::now(app.clock.as_ref());
        assert_eq!(due - now, time::Duration::hours(4), "{backend:?}");

        // Clara, who follows Ana's readings, is told.
        let mut clara = app.sign_in("clara").await;
        let (_, inbox) = clara.get("/notifications").await;
        assert!(
            inbox.contains("Ana Silva recorded a reading that needs help now"),
            "{backend:?}: {inbox}"
        );

        // The clinician's home: the low first, under "needs action now", named with what
        // tells Ana apart.
        let mut dr = app.sign_in("dr.okafor").await;
        let (_, home) = dr.get("/").await;
        let act = home.find("Needs action now (1)").expect("the section");
        let review = home.find("Readings to review").expect("the readings");
        assert!(act < review, "{backend:?}: action first");
        let first = &home[act..review];
        assert!(
            first.contains("Respond today: Very low: act now"),
            "{first}"
        );
        assert!(first.contains("born 1961-04-02"), "{first}");
        let rows = &home[review..];
        let low = rows.find("52 mg/dL").unwrap();
        let high = rows.find("212 mg/dL").unwrap();
        assert!(low < high, "{backend:?}: the low tops the readings too");
        assert!(
            rows.contains(">High<"),
            "{backend:?}: 212 and 131/92 are high"
        );

        // The review answers the Task; nothing needs action any more.
        let resp = dr
            .post(
                &format!("/patients/p1/observations/{oid}/review"),
                &[
                    ("comment", "Called Ana: she is fine now."),
                    ("back", "/#unreviewed-h"),
                ],
            )
            .await;
        assert_eq!(resp.status(), 303);
        assert_eq!(
            resp.headers()["location"].to_str().unwrap(),
            "/?ok=note-reviewed#unreviewed-h",
            "back to the list, not the top"
        );
        let tasks = all(
            &app,
            "Task?code=https://coproduce.health/fhir/CodeSystem/task|urgent-reading",
        )
        .await;
        assert_eq!(tasks[0]["status"], "completed", "{backend:?}");
        let (_, home) = dr.get("/").await;
        assert!(home.contains("Nothing needs action now."), "{backend:?}");

        // A low the nurse enters from a phone call makes no Task.
        let mut nurse = app.sign_in("nurse.lee").await;
        nurse.get("/patients/p1/readings/glucose").await;
        let resp = nurse
            .post(
                "/patients/p1/readings",
                &[("measure", "glucose"), ("value", "60"), ("unit", "mg/dL")],
            )
            .await;
        assert_eq!(resp.status(), 303);
        assert_eq!(
            count(&app, "Task?code=https://coproduce.health/fhir/CodeSystem/task|urgent-reading&status=requested").await,
            0,
            "{backend:?}"
        );
        app.finish().await;
    }
}

/// Every role lands on its own home: the clinician triages the panel; the social worker
/// (like the pharmacist and the community health worker) works from a worklist with no
/// reading to sign off, and a forced review is refused; the administrator manages accounts
/// and tokens, and no one else may.
#[tokio::test]
async fn every_role_lands_on_its_own_home() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut ana = app.sign_in("ana").await;
    ana.get("/patients/p1/readings/glucose").await;
    let resp = ana
        .post(
            "/patients/p1/readings",
            &[("measure", "glucose"), ("value", "131"), ("unit", "mg/dL")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let obs = all(&app, "Observation?subject=Patient/p1").await;
    let review = format!(
        "/patients/p1/observations/{}/review",
        obs[0]["id"].as_str().unwrap()
    );

    let mut dr = app.sign_in("dr.okafor").await;
    let (_, home) = dr.get("/").await;
    assert!(home.contains("Needs action now"), "{home}");
    assert!(home.contains(&review), "the clinician signs readings off");

    let mut sw = app.sign_in("sw.diaz").await;
    let (status, home) = sw.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("Your worklist: Social worker"), "{home}");
    assert!(home.contains("Ana Silva"), "the panel by name: {home}");
    assert!(home.contains("born 1961-04-02"), "{home}");
    assert!(!home.contains("/review"), "no review form: {home}");
    assert!(!home.contains("Mark reviewed"), "{home}");
    let resp = sw.post(&review, &[("comment", ""), ("back", "/")]).await;
    assert_eq!(resp.status(), 403, "a forced review is refused");
    assert_eq!(
        count(&app, "Observation?subject=Patient/p1&_tag=https://coproduce.health/fhir/CodeSystem/workflow|unreviewed").await,
        1
    );

    let mut rph = app.sign_in("rph.ali").await;
    let (_, home) = rph.get("/").await;
    assert!(home.contains("Your worklist: Pharmacist"), "{home}");

    // The administrator's home: the accounts, one action each; disabling ends a session.
    let mut admin = app.sign_in("admin.kim").await;
    let (status, home) = admin.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("Accounts and tokens"), "{home}");
    assert!(home.contains("/admin/users/sw.diaz/disable"), "{home}");
    let resp = admin.post("/admin/users/sw.diaz/disable", &[]).await;
    assert_eq!(resp.status(), 303);
    let (status, _) = sw.get("/").await;
    assert_eq!(status, 303, "the disabled account's session has ended");
    let resp = admin.post("/admin/users/admin.kim/disable", &[]).await;
    assert_eq!(resp.status(), 409, "no locking oneself out");
    // No one else administers.
    let resp = dr.post("/admin/users/ana/disable", &[]).await;
    assert_eq!(resp.status(), 403);
    let resp = admin.post("/admin/users/sw.diaz/enable", &[]).await;
    assert_eq!(resp.status(), 303);
    app.finish().await;
}

/// Each reader gets their own words: Clara (family) reads of Ana by name and has no "I agree"
/// on Ana's goals (a forced answer is refused with a message and changes nothing); Ana reads
/// "your answer"; whoever entered a reading is named by their record, never a sign-in name.
#[tokio::test]
async fn the_plan_speaks_to_whoever_reads_it() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut dr = app.sign_in("dr.okafor").await;
    dr.get("/patients/p1").await;
    let resp = dr
        .post(
            "/patients/p1/goals",
            &[("text", "Check my feet every evening")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let mut clara = app.sign_in("clara").await;
    clara.get("/patients/p1/readings/glucose").await;
    let resp = clara
        .post(
            "/patients/p1/readings",
            &[("measure", "glucose"), ("value", "140"), ("unit", "mg/dL")],
        )
        .await;
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .contains("ok=note-reading-saved-other")
    );

    let (status, page) = clara.get("/patients/p1").await;
    assert_eq!(status, 200);
    for words in [
        "Ana Silva&#39;s plan",
        "Waiting for Ana Silva to answer",
        "Ana Silva&#39;s readings",
        "Ana Silva&#39;s care team",
    ] {
        assert!(page.contains(words), "{words}: {page}");
    }
    assert!(!page.contains("I agree"), "{page}");
    assert!(!page.contains("Waiting for the patient"), "{page}");
    let goals = all(&app, "Goal?subject=Patient/p1").await;
    let gid = goals[0]["id"].as_str().unwrap().to_string();
    let resp = clara
        .post(
            &format!("/patients/p1/goals/{gid}/answer"),
            &[("answer", "agree")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("The patient answers this goal themselves")
    );
    let goals = all(&app, "Goal?subject=Patient/p1").await;
    assert_eq!(goals[0]["lifecycleStatus"], "proposed", "nothing changed");

    let mut ana = app.sign_in("ana").await;
    let (_, home) = ana.get("/").await;
    assert!(home.contains("Waiting for your answer"), "{home}");
    assert!(home.contains("I agree"), "{home}");
    let (_, readings) = ana.get("/patients/p1/readings/glucose").await;
    assert!(
        readings.contains("Clara Silva"),
        "named by her record: {readings}"
    );
    assert!(!readings.contains(">clara<"), "{readings}");

    let (_, team) = dr.get("/patients/p1").await;
    assert!(team.contains("Waiting for the patient to answer"), "{team}");
    assert!(team.contains("Shared plan"), "{team}");
    app.finish().await;
}

/// The patient's access log is a page in their language: who opened their record, by name,
/// and automatic steps as such; nobody else reads it.
#[tokio::test]
async fn the_patient_reads_who_opened_their_record_in_their_language() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("es").await;
    let mut dr = app.sign_in("dr.okafor").await;
    let (status, _) = dr.get("/patients/p1/readings/glucose").await;
    assert_eq!(status, 200);
    let mut ana = app.sign_in("ana").await;
    let (_, home) = ana.get("/").await;
    assert!(home.contains("href=\"/patients/p1/access-log\""), "{home}");
    let (status, log) = ana.get("/patients/p1/access-log").await;
    assert_eq!(status, 200);
    assert!(log.contains("Quién abrió mi expediente"), "{log}");
    assert!(log.contains("Ngozi Okafor miró sus datos"), "{log}");
    assert!(!log.contains("dr.okafor"), "{log}");
    let (status, _) = dr.get("/patients/p1/access-log").await;
    assert_eq!(status, 403);
    app.finish().await;
}

/// The visit summary covers the last three months of readings (an older one is not on it)
/// and lists the patient's active conditions and medicines.
#[tokio::test]
async fn the_visit_summary_is_the_last_three_months_with_conditions_and_medicines() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    for (path, body) in [
        (
            "/fhir/Condition/p1-t2d",
            serde_json::json!({"resourceType": "Condition", "id": "p1-t2d",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9", "display": "Type 2 diabetes mellitus"}]},
                "subject": {"reference": "Patient/p1"}}),
        ),
        (
            "/fhir/MedicationRequest/p1-met",
            serde_json::json!({"resourceType": "MedicationRequest", "id": "p1-met", "status": "active", "intent": "order",
                "medicationCodeableConcept": {"text": "Metformin 500 mg tablets"},
                "subject": {"reference": "Patient/p1"}}),
        ),
        (
            "/fhir/Observation/p1-old-a1c",
            serde_json::json!({"resourceType": "Observation", "id": "p1-old-a1c", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-06-01",
                "valueQuantity": {"value": 9.4, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}),
        ),
        (
            "/fhir/Observation/p1-new-a1c",
            serde_json::json!({"resourceType": "Observation", "id": "p1-new-a1c", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
                "valueQuantity": {"value": 7.3, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}),
        ),
    ] {
        let resp = app.put_json(path, body.to_string(), None).await;
        assert!(resp.status().is_success(), "{path}");
    }
    let mut dr = app.sign_in("dr.okafor").await;
    let (status, page) = dr.get("/patients/p1/summary").await;
    assert_eq!(status, 200);
    assert!(page.contains("Type 2 diabetes mellitus"), "{page}");
    assert!(page.contains("Metformin 500 mg tablets"), "{page}");
    assert!(page.contains("7.3 %"), "{page}");
    assert!(
        !page.contains("9.4 %"),
        "an older reading is not on it: {page}"
    );
    app.finish().await;
}

/// Ana's care team on SQLite, the care service over it, and Ana and Dr Okafor as callers.
async fn care_of_ana_and_dr() -> (
    TestApp,
    coproduce_app::Care,
    coproduce_app::accounts::Caller,
    coproduce_app::accounts::Caller,
) {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let clock: std::sync::Arc<dyn coproduce_core::Clock> = app.clock.clone();
    let care = coproduce_app::Care::new(
        coproduce_app::FhirApi::new(app.db.store.clone(), clock.clone()),
        clock,
    );
    let ana = crate::rescue::caller(&app, "ana").await;
    let dr = crate::rescue::caller(&app, "dr.okafor").await;
    (app, care, ana, dr)
}

/// Agreeing to an HbA1c target moves the test due in the same transaction as the answer: at
/// goal, six months instead of three; when the Task cannot be written, the answer is not
/// stored either.
#[tokio::test]
async fn an_agreed_hba1c_target_moves_the_test_due_with_the_answer_or_not_at_all() {
    use coproduce_core::care::plan::GoalAnswer;
    use coproduce_core::care::readings::{HbA1cTarget, Measure};
    let (app, care, ana, dr) = care_of_ana_and_dr().await;
    let clock: std::sync::Arc<dyn coproduce_core::Clock> = app.clock.clone();
    care.record_reading(
        &ana,
        "p1",
        &coproduce_app::care::NewReading {
            measure: Measure::HbA1c,
            values: vec![6.8],
            unit: "%".into(),
            at: time::macros::datetime!(2026-11-01 09:00 UTC),
        },
    )
    .await
    .unwrap();
    let due = || async {
        all(
            &app,
            "Task?identifier=https://coproduce.health/fhir/CodeSystem/task|hba1c-test/p1",
        )
        .await[0]["restriction"]["period"]["end"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        due().await.starts_with("2027-02-01"),
        "three months with no goal"
    );
    let goal = care
        .propose_goal(&dr, "p1", "Keep my HbA1c below 7", Some(HbA1cTarget::Usual))
        .await
        .unwrap();

    // With the Task refused, Ana's agreement is not stored either.
    let rules = rules_refusing_tasks();
    let failing = coproduce_app::Care::new(
        coproduce_app::FhirApi::with_rules(app.db.store.clone(), clock.clone(), rules),
        clock,
    );
    let refused = failing
        .answer_goal(&ana, "p1", &goal.id, GoalAnswer::Agree, None)
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let stored = all(&app, "Goal?subject=Patient/p1").await;
    assert_eq!(stored[0]["lifecycleStatus"], "proposed", "nothing changed");
    assert!(due().await.starts_with("2027-02-01"));

    care.answer_goal(&ana, "p1", &goal.id, GoalAnswer::Agree, None)
        .await
        .unwrap();
    assert!(due().await.starts_with("2027-05-01"), "six months at goal");
    app.finish().await;
}

/// The team home's HbA1c distribution counts each patient's latest reading by when it was
/// taken, not by when it was entered: an older result typed in after a newer one does not
/// replace it.
#[tokio::test]
async fn the_panels_hba1c_distribution_counts_each_patients_latest_reading() {
    use coproduce_core::care::readings::Measure;
    let (app, care, ana, dr) = care_of_ana_and_dr().await;
    for (value, at) in [
        (9.1, time::macros::datetime!(2026-11-20 09:00 UTC)),
        (6.8, time::macros::datetime!(2026-11-01 09:00 UTC)),
    ] {
        let reading = coproduce_app::care::NewReading {
            measure: Measure::HbA1c,
            values: vec![value],
            unit: "%".into(),
            at,
        };
        care.record_reading(&ana, "p1", &reading).await.unwrap();
        // Entered a minute apart: the older result is the newer record.
        app.clock.advance(time::Duration::minutes(1));
    }
    let attention = care.attention(&dr).await.unwrap();
    assert_eq!(
        attention.latest_hba1c,
        vec![9.1],
        "the reading taken on 20 November, though the one of 1 November was entered after it"
    );
    // Built again, from the views kept the first time (their JSON not read): the same.
    let again = care.attention(&dr).await.unwrap();
    assert_eq!(format!("{again:?}"), format!("{attention:?}"));
    app.finish().await;
}
