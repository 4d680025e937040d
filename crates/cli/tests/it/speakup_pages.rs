//! Speak Up's pages over HTTP, without JavaScript: a bedside device raises an urgent concern
//! without signing in and reads the answer with its code; bad input is refused in the page's
//! language and changes nothing; the team acknowledges from its list; a signed-in family member
//! never reads a staff name until the manager releases it.

use coproduce_testkit::{TestApp, TestBackend};
use time::macros::datetime;

/// The claim code on the page after raising a concern.
fn claim_code(page: &str) -> String {
    let start = page
        .find("id=\"claim-code\">")
        .expect("a claim code on the page")
        + 16;
    page[start..]
        .split('<')
        .next()
        .unwrap_or_default()
        .to_string()
}

async fn concerns(app: &TestApp) -> i64 {
    let resp = app.get("/fhir/Communication?_summary=count").await;
    let v: serde_json::Value = resp.json().await.expect("a Bundle");
    v["total"].as_i64().expect("a total")
}

#[tokio::test]
async fn a_bedside_device_raises_a_concern_and_reads_the_answer_with_its_code() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.seed_units().await;
    app.clock.set(datetime!(2026-11-30 15:00 UTC));
    let mut device = app.visitor();

    // An unknown unit is answered in the page's language.
    let (status, page) = device.get("/speakup/unit/unit-moon?lang=ht").await;
    assert_eq!(status, 404);
    assert!(
        page.contains("Lyen sa a pa koresponn ak okenn inite"),
        "{page}"
    );

    let (status, page) = device.get("/speakup/unit/unit-4w?lang=ht").await;
    assert_eq!(status, 200);
    assert!(page.contains("Ou nan 4 West"), "{page}");
    assert!(page.contains("lang=\"ht\""));
    // An empty concern: refused, in Kreyòl, nothing written.
    let resp = device
        .post(
            "/speakup/unit/unit-4w",
            &[
                ("lang", "ht"),
                ("category", "condition-worse"),
                ("what", "  "),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Di nan kèk mo sa k ap enkyete w"), "{page}");
    assert_eq!(concerns(&app).await, 0);
    // A form without the device's token is refused.
    let forged = reqwest::Client::new()
        .post(app.url("/speakup/unit/unit-4w"))
        .form(&[("csrf", "x"), ("category", "other"), ("what", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    let resp = device
        .post(
            "/speakup/unit/unit-4w",
            &[
                ("lang", "ht"),
                ("urgent", "yes"),
                ("category", "condition-worse"),
                ("room", "12"),
                ("what", "Manman m ap respire mal epi pèsonn pa vini"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Nou rele ekip repons rapid la"), "{page}");
    assert!(
        page.contains("href=\"tel:911\""),
        "whom to call if nobody comes"
    );
    let code = claim_code(&page);
    assert_eq!(code.len(), 27, "{code}");

    // The rapid-response nurse acknowledges it from the list; the answer follows.
    let mut rr = app.sign_in("rr.kim").await;
    let (status, list) = rr.get("/team/concerns").await;
    assert_eq!(status, 200);
    assert!(list.contains("Manman m ap respire mal"), "{list}");
    let id = list
        .split("action=\"/team/concerns/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("a concern's id")
        .to_string();
    let resp = rr
        .post(
            &format!("/team/concerns/{id}/step"),
            &[("step", "acknowledged"), ("back", "list")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = rr.get(&format!("/team/concerns/{id}")).await;
    assert!(page.contains("Acknowledged · Jae Kim"), "{page}");
    let resp = rr
        .post(
            &format!("/team/concerns/{id}/step"),
            &[
                ("step", "answered"),
                ("text", "Enfimyè a vini; manman ou estab."),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);

    // A wrong code, then the right one typed loosely; no staff name on the page.
    let (_, _) = device.get("/speakup/follow?lang=ht").await;
    let resp = device
        .post("/speakup/follow", &[("lang", "ht"), ("code", "ABC")])
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("Kòd sa a pa koresponn"));
    let typed = code.to_lowercase().replace('-', " ");
    let resp = device
        .post("/speakup/follow", &[("lang", "ht"), ("code", &typed)])
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Enfimyè a vini; manman ou estab."), "{page}");
    assert!(!page.contains("Jae Kim") && !page.contains("Kim"), "{page}");
    let resp = device
        .post(
            "/speakup/follow/heard",
            &[("lang", "ht"), ("code", &code), ("heard", "yes")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Mèsi paske ou di nou sa."), "{page}");
    assert!(page.contains("Fèmen"), "closed: {page}");
    app.finish().await;
}

#[tokio::test]
async fn wrong_codes_from_one_address_are_answered_with_429() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let mut device = app.visitor();
    device.get("/speakup/follow").await;
    let mut statuses = Vec::new();
    for i in 0..25 {
        let code = format!("{i:024}");
        let resp = device.post("/speakup/follow", &[("code", &code)]).await;
        statuses.push(resp.status().as_u16());
    }
    assert!(statuses[..20].iter().all(|s| *s == 422), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    app.finish().await;
}

#[tokio::test]
async fn a_family_member_reads_no_staff_name_until_the_manager_releases_it() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.seed_units().await;
    app.clock.set(datetime!(2026-11-30 15:00 UTC));
    let mut clara = app.sign_in("clara").await;
    let (status, page) = clara.get("/speakup").await;
    assert_eq!(status, 200);
    assert!(page.contains("Diabetes clinic") && page.contains("4 West"));
    let resp = clara
        .post(
            "/speakup",
            &[
                ("unit", "unit-clinic"),
                ("category", "communication"),
                ("what", "Nobody told my mother her results"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let id = location
        .trim_start_matches("/speakup/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let mut nurse = app.sign_in("nurse.lee").await;
    nurse.get(&format!("/team/concerns/{id}")).await;
    for (step, text) in [
        ("acknowledged", ""),
        ("action-taken", "Called her with the results"),
        ("answered", "We called your mother with her results today."),
    ] {
        let resp = nurse
            .post(
                &format!("/team/concerns/{id}/step"),
                &[("step", step), ("text", text)],
            )
            .await;
        assert_eq!(resp.status(), 303, "{step}");
    }
    let (_, page) = clara.get(&format!("/speakup/{id}")).await;
    assert!(page.contains("We called your mother"), "{page}");
    assert!(!page.contains("Sam Lee"), "{page}");
    // The nurse may not release names; the manager may.
    let resp = nurse
        .post(
            &format!("/team/concerns/{id}/manage"),
            &[("release", "yes")],
        )
        .await;
    assert_eq!(resp.status(), 403);
    let mut lead = app.sign_in("lead.park").await;
    lead.get(&format!("/team/concerns/{id}")).await;
    let resp = lead
        .post(
            &format!("/team/concerns/{id}/manage"),
            &[("release", "yes")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = clara.get(&format!("/speakup/{id}")).await;
    assert!(page.contains("by Sam Lee"), "{page}");
    // She says she felt heard, partly; the concern is closed.
    let resp = clara
        .post(
            &format!("/speakup/{id}/heard"),
            &[("heard", "partly"), ("comment", "It took a week")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = clara.get(&format!("/speakup/{id}")).await;
    assert!(page.contains("Partly") && page.contains("Closed"), "{page}");
    app.finish().await;
}

#[tokio::test]
async fn a_patient_sends_feedback_from_her_page_and_the_practice_manager_has_it() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("es").await;
    app.seed_units().await;
    let mut ana = app.sign_in("ana").await;
    let (_, page) = ana.get("/speakup").await;
    assert!(page.contains("Queremos escucharle"), "{page}");
    let resp = ana
        .post(
            "/speakup",
            &[
                ("feedback", "yes"),
                ("unit", "unit-clinic"),
                ("category", "suggestion"),
                ("what", "Más citas por la tarde, por favor."),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let (_, page) = ana.get(&location).await;
    assert!(
        page.contains("Su opinión") && page.contains("Una sugerencia"),
        "{page}"
    );
    let mut lead = app.sign_in("lead.park").await;
    let (_, list) = lead.get("/team/concerns").await;
    assert!(list.contains("Más citas por la tarde"), "{list}");
    assert!(list.contains(">Feedback</span>"), "{list}");
    let mut nurse = app.sign_in("nurse.lee").await;
    let (_, list) = nurse.get("/team/concerns").await;
    assert!(
        !list.contains("Más citas"),
        "feedback is the manager's: {list}"
    );
    app.finish().await;
}

#[tokio::test]
async fn each_units_link_comes_with_a_qr_code_to_print() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.seed_units().await;
    let mut lead = app.sign_in("lead.park").await;
    let (status, page) = lead.get("/team/concerns/units").await;
    assert_eq!(status, 200);
    let link = app.url("/speakup/unit/unit-4w");
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    assert!(page.matches("<svg").count() >= 2, "a code per unit: {page}");
    let mut clara = app.sign_in("clara").await;
    let (status, _) = clara.get("/team/concerns/units").await;
    assert_eq!(status, 403);
    app.finish().await;
}
