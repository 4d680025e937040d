//! Social needs' pages over HTTP, without JavaScript: a patient answers the screen in Spanish
//! one page per domain (skipping what she likes, going back without losing anything), sees
//! the needs it found and asks for help with one; her answers are saved as she goes; a family
//! member whose grant does not cover social needs reaches none of it; the social worker sees
//! the patient's word.

use coproduce_testkit::{TestApp, TestBackend};

async fn total(app: &TestApp, path: &str) -> i64 {
    let resp = app.get(path).await;
    let v: serde_json::Value = resp.json().await.expect("a Bundle");
    v["total"].as_i64().expect("a total")
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn a_patient_screens_in_spanish_and_chooses_what_she_wants_help_with() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("es").await;
    let mut ana = app.sign_in("ana").await;

    // Her home invites her, in her language.
    let (status, home) = ana.get("/patients/p1").await;
    assert_eq!(status, 200);
    assert!(home.contains("id=\"social-start\""), "{home}");
    assert!(home.contains("Cosas que afectan su salud"));

    // Page 1: living situation, in Spanish; she answers.
    let (status, page) = ana.get("/patients/p1/social/screen?step=1").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("¿Cuál es su situación de vivienda hoy?"),
        "{page}"
    );
    assert!(page.contains("Página 1 de 6"));
    let resp = ana
        .post(
            "/patients/p1/social/screen",
            &[("step", "1"), ("go", "next"), ("q-71802-3", "LA31993-1")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/patients/p1/social/screen?step=2");
    // Saved as she goes: one response in progress, nothing scored yet.
    assert_eq!(
        total(
            &app,
            "/fhir/QuestionnaireResponse?status=in-progress&_summary=count"
        )
        .await,
        1
    );
    assert_eq!(total(&app, "/fhir/Condition?_summary=count").await, 0);

    // Page 2 skipped; page 3 (food): sometimes worried.
    ana.get("/patients/p1/social/screen?step=2").await;
    ana.post(
        "/patients/p1/social/screen",
        &[("step", "2"), ("go", "next")],
    )
    .await;
    ana.get("/patients/p1/social/screen?step=3").await;
    ana.post(
        "/patients/p1/social/screen",
        &[
            ("step", "3"),
            ("go", "next"),
            ("q-88122-7", "LA6729-3"),
            ("q-88123-5", "LA28398-8"),
        ],
    )
    .await;
    // Back from page 4 keeps what page 3 said.
    ana.get("/patients/p1/social/screen?step=4").await;
    let resp = ana
        .post(
            "/patients/p1/social/screen",
            &[("step", "4"), ("go", "back"), ("q-93030-5", "LA33-6")],
        )
        .await;
    assert_eq!(location(&resp), "/patients/p1/social/screen?step=3");
    let (_, page) = ana.get("/patients/p1/social/screen?step=3").await;
    assert!(
        page.contains("value=\"LA6729-3\" checked"),
        "page 3 remembers her answer"
    );
    let (_, page) = ana.get("/patients/p1/social/screen?step=4").await;
    assert!(
        page.contains("value=\"LA33-6\" checked"),
        "and page 4 what she chose before going back"
    );

    // A tampered answer is refused in her language and nothing moves on.
    let resp = ana
        .post(
            "/patients/p1/social/screen",
            &[("step", "4"), ("go", "next"), ("q-93030-5", "LA6729-3")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("no se pudieron guardar")
    );

    // Through to the last page, which finishes.
    ana.post(
        "/patients/p1/social/screen",
        &[("step", "4"), ("go", "next"), ("q-93030-5", "LA33-6")],
    )
    .await;
    ana.get("/patients/p1/social/screen?step=5").await;
    ana.post(
        "/patients/p1/social/screen",
        &[("step", "5"), ("go", "next"), ("q-96779-4", "LA32-8")],
    )
    .await;
    let (_, page) = ana.get("/patients/p1/social/screen?step=6").await;
    assert!(
        page.contains("llame al 911"),
        "the safety page says what to do in danger now"
    );
    assert!(page.contains("Terminar"));
    let resp = ana
        .post(
            "/patients/p1/social/screen",
            &[("step", "6"), ("go", "next")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/patients/p1/social?ok=note-social-done");
    assert_eq!(
        total(
            &app,
            "/fhir/QuestionnaireResponse?status=completed&_summary=count"
        )
        .await,
        1
    );
    assert_eq!(
        total(&app, "/fhir/QuestionnaireResponse?_summary=count").await,
        1,
        "the same response, completed"
    );

    // Food and transportation are her needs; she wants help with food only.
    let (_, page) = ana.get("/patients/p1/social?ok=note-social-done").await;
    assert!(page.contains("Gracias"), "{page}");
    assert!(
        page.contains("<strong>Comida</strong>") && page.contains("<strong>Transporte</strong>"),
        "{page}"
    );
    let needs: serde_json::Value = app
        .get("/fhir/Condition?code=https://coproduce.health/fhir/CodeSystem/social-need|food")
        .await
        .json()
        .await
        .unwrap();
    let food = needs["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = ana
        .post(
            &format!("/patients/p1/social/needs/{food}"),
            &[("choice", "want-help")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = ana.get("/patients/p1/social").await;
    assert!(page.contains("Usted dijo: Quiero ayuda con esto"), "{page}");
    let resp = ana
        .post(
            &format!("/patients/p1/social/needs/{food}"),
            &[("choice", "maybe")],
        )
        .await;
    assert_eq!(resp.status(), 422);

    // Clara's grant does not cover social needs: no box, no page, no form.
    let mut clara = app.sign_in("clara").await;
    let (status, home) = clara.get("/patients/p1").await;
    assert_eq!(status, 200);
    assert!(!home.contains("id=\"social"), "no social box for her");
    assert_eq!(clara.get("/patients/p1/social").await.0, 403);
    assert_eq!(clara.get("/patients/p1/social/screen?step=1").await.0, 403);

    // The social worker reads the patient's word and refers the food need to a service of
    // the directory that meets it (and only such services are offered).
    let rows =
        coproduce_app::social::directory::parse_csv(coproduce_app::demo::DIRECTORY_CSV.as_bytes())
            .unwrap();
    for r in coproduce_app::social::directory::resources(&rows) {
        let path = format!(
            "/fhir/{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        assert!(
            app.put_json(&path, r.to_string(), None)
                .await
                .status()
                .is_success()
        );
    }
    let mut sw = app.sign_in("sw.diaz").await;
    let (status, page) = sw.get("/patients/p1/social").await;
    assert_eq!(status, 200);
    assert!(page.contains("You said: I want help with this"), "{page}");
    assert!(
        page.contains("value=\"eastside-pantry-groceries\""),
        "{page}"
    );
    assert!(
        !page.contains("value=\"rides-to-care-medical\""),
        "transport is not what she asked help with"
    );
    let resp = sw
        .post(
            &format!("/patients/p1/social/needs/{food}/refer"),
            &[
                ("service", "eastside-pantry-groceries"),
                ("note", "Sábados"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    // A service that does not meet the need is refused on the page, and nothing is sent.
    let resp = sw
        .post(
            &format!("/patients/p1/social/needs/{food}/refer"),
            &[("service", "rides-to-care-medical")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("does not meet that need")
    );
    assert_eq!(
        total(&app, "/fhir/Task?code=fulfill&_summary=count").await,
        1
    );

    // Ana reads where it stands, in Spanish.
    let (_, page) = ana.get("/patients/p1/social").await;
    assert!(
        page.contains(
            "Weekly groceries (Eastside Community Food Pantry): enviada, esperando que la acepten"
        ),
        "{page}"
    );
    assert!(
        !page.contains("/cancel"),
        "the patient does not cancel from here"
    );

    // The social worker cancels it with a reason; Ana reads that too.
    let (_, page) = sw.get("/patients/p1/social").await;
    let task = page
        .split("id=\"referral-")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let resp = sw
        .post(
            &format!("/patients/p1/social/referrals/{task}/cancel"),
            &[("reason", "declined")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = ana.get("/patients/p1/social").await;
    assert!(page.contains("cancelada (usted dijo que no)"), "{page}");
    app.finish().await;
}

#[tokio::test]
async fn the_igs_referrals_appear_on_the_social_workers_worklist_with_their_statuses() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let dir = crate::testdata().join("sdoh/examples/sdoh-cc");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let path = format!(
            "/fhir/{}/{}",
            v["resourceType"].as_str().unwrap(),
            v["id"].as_str().unwrap()
        );
        let resp = app.put_json(&path, v.to_string(), None).await;
        assert!(
            resp.status().is_success(),
            "{path}: {}",
            resp.text().await.unwrap()
        );
    }
    // Colin Abbas (the IG's patient) joins the social worker's panel.
    let team = serde_json::json!({
        "resourceType": "CareTeam", "id": "team-colin", "status": "active",
        "subject": {"reference": "Patient/pat-53234"},
        "participant": [{"role": [{"text": "social-worker"}], "member": {"reference": "Practitioner/sw"}}],
    });
    assert!(
        app.put_json("/fhir/CareTeam/team-colin", team.to_string(), None)
            .await
            .status()
            .is_success()
    );
    let mut sw = app.sign_in("sw.diaz").await;
    let (status, home) = sw.get("/").await;
    assert_eq!(status, 200);
    let table = home
        .split("id=\"social-referrals\"")
        .nth(1)
        .unwrap_or_else(|| panic!("{home}"));
    assert!(table.contains("accepted"), "{table}");
    assert!(table.contains("done"), "{table}");
    // And the IG's food-insecurity concern waits for the patient's word.
    let waiting = home
        .split("id=\"social-waiting\"")
        .nth(1)
        .expect("the waiting table");
    assert!(waiting.contains("/patients/pat-53234/social"), "{waiting}");
    app.finish().await;
}

#[tokio::test]
async fn the_analyst_reads_the_social_needs_measures_with_their_plots_and_nobody_else_does() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("es").await;
    let (social, food, _) = crate::social::screened_and_chosen(&app).await;
    let sw = crate::rescue::caller(&app, "sw.diaz").await;
    social
        .refer(&sw, "p1", &food, "eastside-pantry-groceries", "")
        .await
        .unwrap();
    let mut ida = crate::measure::analyst(&app, "quality.ida").await;
    let (status, home) = ida.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("href=\"/social/measures\""));
    let (status, page) = ida.get("/social/measures").await;
    assert_eq!(status, 200, "{page}");
    // One patient, screened; food and transportation positive; one referral, not accepted.
    let overall = page
        .split("id=\"social-measures\"")
        .nth(1)
        .and_then(|x| x.split("</table>").next())
        .unwrap();
    for cell in ["<td>1</td>", "<td>100.0%</td>", "<td>0</td>"] {
        assert!(overall.contains(cell), "{cell} in {overall}");
    }
    let positive = page
        .split("id=\"social-positive\"")
        .nth(1)
        .and_then(|x| x.split("</table>").next())
        .unwrap();
    assert!(positive.contains("Food</th><td>100.0%"), "{positive}");
    assert!(positive.contains("Transportation</th><td>100.0%"));
    assert!(positive.contains("<td>0.0%</td>"));
    assert!(page.contains("<svg"), "the plots are drawn");
    // Aggregates only: no name, and the clinician is refused (audited).
    assert!(!page.contains("Ana Silva"));
    let mut dr = app.sign_in("dr.okafor").await;
    let (status, _) = dr.get("/social/measures").await;
    assert_eq!(status, 403);
    app.finish().await;
}

#[tokio::test]
async fn the_administrator_keeps_the_directory_on_its_page_and_nothing_half_loads() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("es").await;
    let mut admin = app.sign_in("admin.kim").await;
    let (status, home) = admin.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("href=\"/admin/directory\""));
    let (status, empty) = admin.get("/admin/directory").await;
    assert_eq!(status, 200);
    assert!(empty.contains("The directory is empty"));

    // A file with a bad line: named, and nothing loaded.
    let mut bad = coproduce_app::demo::DIRECTORY_CSV.to_string();
    bad.push_str("x-org,X,x-svc,X service,groceries,en,,,,,app\n");
    let resp = admin.post("/admin/directory", &[("csv", &bad)]).await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Line 15"), "{page}");
    assert!(page.contains("Nothing was loaded"));
    assert_eq!(
        total(&app, "/fhir/HealthcareService?_summary=count").await,
        0
    );

    // The whole file loads.
    admin.get("/admin/directory").await;
    let resp = admin
        .post(
            "/admin/directory",
            &[("csv", coproduce_app::demo::DIRECTORY_CSV)],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        total(&app, "/fhir/HealthcareService?_summary=count").await,
        13
    );
    let (_, page) = admin.get("/admin/directory").await;
    assert!(page.contains("id=\"service-eastside-pantry-groceries\""));

    // A row edited in place: new hours, Portuguese added, no longer offered.
    let (_, svc) = {
        let r = app
            .get("/fhir/HealthcareService/eastside-pantry-groceries")
            .await;
        (r.status(), r.json::<serde_json::Value>().await.unwrap())
    };
    let version = svc["meta"]["versionId"].as_str().unwrap().to_string();
    let edit = |needs: &'static str, version: String| {
        vec![
            ("version", version),
            ("service", "Weekly groceries".to_string()),
            ("needs", needs.to_string()),
            ("languages", "en;es;ht;pt-BR".to_string()),
            ("hours", "Tue 10:00-18:00".to_string()),
            ("phone", "+1 555 0140".to_string()),
            ("email", String::new()),
            ("refer_by", "app".to_string()),
        ]
    };
    let fields = edit("food", version.clone());
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = admin
        .post("/admin/directory/eastside-pantry-groceries", &form)
        .await;
    assert_eq!(resp.status(), 303);
    let r = app
        .get("/fhir/HealthcareService/eastside-pantry-groceries")
        .await;
    let svc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(svc["availabilityExceptions"], "Tue 10:00-18:00");
    assert_eq!(svc["active"], false);
    assert!(svc["communication"].to_string().contains("pt-BR"));
    // A bad need, or an edit over a newer version, changes nothing.
    let fields = edit(
        "groceries",
        svc["meta"]["versionId"].as_str().unwrap().to_string(),
    );
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = admin
        .post("/admin/directory/eastside-pantry-groceries", &form)
        .await;
    assert_eq!(resp.status(), 422);
    let fields = edit("food", version);
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = admin
        .post("/admin/directory/eastside-pantry-groceries", &form)
        .await;
    assert_eq!(resp.status(), 409);
    let r = app
        .get("/fhir/HealthcareService/eastside-pantry-groceries")
        .await;
    let after: serde_json::Value = r.json().await.unwrap();
    assert_eq!(after["meta"]["versionId"], svc["meta"]["versionId"]);

    // Nobody else keeps it.
    let mut sw = app.sign_in("sw.diaz").await;
    let (status, _) = sw.get("/admin/directory").await;
    assert_eq!(status, 403);
    app.finish().await;
}
