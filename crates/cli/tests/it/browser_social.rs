//! The social-needs journey in headless Chromium, in Spanish: Ana screens positive for food and
//! transportation on her phone and asks for help with food only; the community health worker
//! refers her to a food pantry; the referral is not accepted within two business days and
//! escalates exactly once on the fake clock; the pantry's partner account accepts it and
//! later completes it with "need met"; Ana sees it closed and says it helped.

use crate::browser::{
    accessibility_violations, browser, click, screenshot, sign_in, start_driver, wait_for,
    wait_for_text,
};
use coproduce_app::accounts::NewUser;
use coproduce_core::access::Role;
use coproduce_testkit::{PASSWORD, TestApp, TestBackend};
use fantoccini::{Client, Locator};
use serde_json::json;

/// The community health worker on Ana's team, and the pantry's partner account.
async fn chw_and_pantry(app: &TestApp) {
    let put = |path: &'static str, body: serde_json::Value| async move {
        let resp = app.put_json(path, body.to_string(), None).await;
        assert!(resp.status().is_success(), "{path}");
    };
    put(
        "/fhir/Practitioner/chw",
        json!({"resourceType": "Practitioner", "id": "chw", "name": [{"family": "Mendes", "given": ["Rosa"]}]}),
    )
    .await;
    let (_, mut team) = crate::social::json_of(app.get("/fhir/CareTeam/team-p1").await).await;
    team["participant"].as_array_mut().unwrap().push(json!(
        {"role": [{"text": "community-health-worker"}], "member": {"reference": "Practitioner/chw"}}
    ));
    put("/fhir/CareTeam/team-p1", team).await;
    for (name, role, link) in [
        ("chw.rosa", Role::CommunityHealthWorker, "Practitioner/chw"),
        ("pantry", Role::Partner, "Organization/eastside-pantry"),
        ("quality.ida", Role::QualityAnalyst, ""),
    ] {
        app.accounts
            .add_user(NewUser {
                username: name.into(),
                roles: vec![role],
                fhir_ref: (!link.is_empty()).then(|| link.into()),
                password: Some(PASSWORD.into()),
            })
            .await
            .unwrap();
    }
    crate::social::with_directory(app).await;
}

/// Chooses an answer (a radio or a box) of the screen's page.
async fn answer(c: &Client, question: &str, code: &str) {
    click(c, &format!("input[name='q-{question}'][value='{code}']")).await;
}

/// The need's card on the needs page, by its Spanish name.
fn need(name: &str) -> String {
    format!("//ul[@id='need-list']/li[strong[normalize-space(.)='{name}']]")
}

#[tokio::test]
async fn a_patient_in_spanish_gets_help_with_food_and_says_it_helped() {
    if std::env::var_os("COPRODUCE_TEST_CHROMIUM").is_none() {
        println!(
            "SKIPPED browser journeys: set COPRODUCE_TEST_CHROMIUM to run them in headless Chromium"
        );
        return;
    }
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("es").await;
    chw_and_pantry(&app).await;
    // Friday 27 November 2026, 10:00 UTC.
    app.clock.set(time::macros::datetime!(2026-11-27 10:00 UTC));
    let driver = start_driver();

    // Ana screens on her phone, in Spanish: food and transportation positive.
    let ana = browser(&driver, 390, 1600).await;
    sign_in(&ana, &app, "ana").await;
    wait_for(&ana, "//html[@lang='es']").await;
    click(&ana, "#social-start").await;
    wait_for_text(&ana, "Página 1 de 6").await;
    answer(&ana, "71802-3", "LA31993-1").await;
    click(&ana, "#screen-next").await;
    wait_for_text(&ana, "Página 2 de 6").await;
    click(&ana, "#screen-next").await;
    wait_for_text(&ana, "Página 3 de 6").await;
    answer(&ana, "88122-7", "LA6729-3").await;
    answer(&ana, "88123-5", "LA28397-0").await;
    let food_page = screenshot(&ana, "social-screen-es.png").await;
    click(&ana, "#screen-next").await;
    wait_for_text(&ana, "Página 4 de 6").await;
    answer(&ana, "93030-5", "LA33-6").await;
    for page in ["Página 5 de 6", "Página 6 de 6"] {
        click(&ana, "#screen-next").await;
        wait_for_text(&ana, page).await;
    }
    click(&ana, "#screen-next").await;
    wait_for_text(
        &ana,
        "Gracias. Sus respuestas están con su equipo de atención.",
    )
    .await;

    // She asks for help with food, not now with transportation.
    wait_for(&ana, &need("Comida")).await;
    ana.find(Locator::XPath(&format!(
        "{}//button[@value='want-help']",
        need("Comida")
    )))
    .await
    .expect("food's card")
    .click()
    .await
    .unwrap();
    wait_for_text(&ana, "Su respuesta está guardada.").await;
    wait_for(
        &ana,
        &format!(
            "{}//button[@value='want-help' and @aria-pressed='true']",
            need("Comida")
        ),
    )
    .await;
    ana.find(Locator::XPath(&format!(
        "{}//button[@value='not-now']",
        need("Transporte")
    )))
    .await
    .expect("transportation's card")
    .click()
    .await
    .unwrap();
    wait_for(
        &ana,
        &format!(
            "{}//button[@value='not-now' and @aria-pressed='true']",
            need("Transporte")
        ),
    )
    .await;

    // The community health worker refers food to the pantry; transportation offers no referral.
    let chw = browser(&driver, 1280, 1400).await;
    sign_in(&chw, &app, "chw.rosa").await;
    chw.goto(&app.url("/patients/p1/social")).await.unwrap();
    wait_for(&chw, &format!("{}//form[@class='refer']", need("Food"))).await;
    assert!(
        chw.find(Locator::XPath(&format!(
            "{}//form[@class='refer']",
            need("Transportation")
        )))
        .await
        .is_err(),
        "nothing is referred without her yes"
    );
    chw.find(Locator::XPath(&format!(
        "{}//select[@name='service']",
        need("Food")
    )))
    .await
    .unwrap()
    .select_by_value("eastside-pantry-groceries")
    .await
    .unwrap();
    chw.find(Locator::XPath(&format!(
        "{}//form[@class='refer']//button",
        need("Food")
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_for_text(&chw, "The referral is sent.").await;
    let (_, tasks) = crate::social::json_of(app.get("/fhir/Task?code=fulfill").await).await;
    let task = tasks["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Not accepted by Tuesday's close: escalated once to the social worker, and the
    // worklist says so.
    app.clock.set(time::macros::datetime!(2026-12-01 17:01 UTC));
    assert_eq!(app.jobs.run_once().await.unwrap().deadlines.escalated, 1);
    assert_eq!(app.jobs.run_once().await.unwrap().deadlines.escalated, 0);
    // (Four days on, her session has ended: she signs in again.)
    sign_in(&chw, &app, "chw.rosa").await;
    wait_for(
        &chw,
        "//table[@id='social-referrals']//tr[contains(@class,'escalated') and contains(., 'Ana Silva') and contains(., 'Escalated to: Social worker')]",
    )
    .await;

    // The pantry accepts on its page; a week later it completes with "need met".
    let pantry = browser(&driver, 1280, 1000).await;
    sign_in(&pantry, &app, "pantry").await;
    wait_for_text(&pantry, "Referrals to your organisation").await;
    wait_for(
        &pantry,
        &format!(
            "//tr[@id='referral-{task}' and contains(., 'Ana Silva') and contains(., 'Español')]"
        ),
    )
    .await;
    pantry
        .find(Locator::Id(&format!("to-{task}")))
        .await
        .unwrap()
        .select_by_value("accepted")
        .await
        .unwrap();
    click(&pantry, &format!("#move-{task}")).await;
    wait_for_text(&pantry, "Saved: the clinic sees where the referral stands.").await;
    app.clock.set(time::macros::datetime!(2026-12-08 15:00 UTC));
    sign_in(&pantry, &app, "pantry").await;
    wait_for(&pantry, &format!("//select[@id='to-{task}']"))
        .await
        .select_by_value("completed")
        .await
        .unwrap();
    pantry
        .find(Locator::Id(&format!("reason-{task}")))
        .await
        .unwrap()
        .select_by_value("need-met")
        .await
        .unwrap();
    let pantry_shot = screenshot(&pantry, "social-partner.png").await;
    click(&pantry, &format!("#move-{task}")).await;
    wait_for_text(&pantry, "Saved: the clinic sees where the referral stands.").await;
    wait_for(
        &pantry,
        &format!("//tr[@id='referral-{task}' and contains(., 'need met')]"),
    )
    .await;

    // Ana sees it closed, in Spanish, and says it helped.
    sign_in(&ana, &app, "ana").await;
    ana.goto(&app.url("/patients/p1/social")).await.unwrap();
    wait_for(
        &ana,
        &format!("//li[@id='referral-{task}' and contains(., 'terminada') and contains(., 'necesidad se resolvi')]"),
    )
    .await;
    ana.find(Locator::XPath(&format!(
        "//li[@id='referral-{task}']//button[@value='yes']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_for_text(&ana, "Gracias por contarnos.").await;
    wait_for(
        &ana,
        &format!("//li[@id='referral-{task}']//button[@value='yes' and @aria-pressed='true']"),
    )
    .await;
    let closed_shot = screenshot(&ana, "social-closed-es.png").await;
    // Nothing more is due on it.
    app.clock.set(time::macros::datetime!(2027-01-10 12:00 UTC));
    assert_eq!(app.jobs.run_once().await.unwrap().deadlines.escalated, 0);

    // The loop's pages through axe-core: Ana's (Spanish, on the phone), the pantry's, the
    // community health worker's worklist, the administrator's directory, the analyst's
    // measures.
    let mut checked = vec![(
        "needs page (es, 390 px)",
        accessibility_violations(&ana).await,
    )];
    sign_in(&pantry, &app, "pantry").await;
    checked.push(("partner page", accessibility_violations(&pantry).await));
    sign_in(&chw, &app, "chw.rosa").await;
    checked.push(("CHW worklist", accessibility_violations(&chw).await));
    sign_in(&chw, &app, "admin.kim").await;
    chw.goto(&app.url("/admin/directory")).await.unwrap();
    wait_for(&chw, "//table[@id='directory']").await;
    checked.push(("directory", accessibility_violations(&chw).await));
    sign_in(&chw, &app, "quality.ida").await;
    chw.goto(&app.url("/social/measures")).await.unwrap();
    wait_for(&chw, "//table[@id='social-measures']").await;
    checked.push(("social measures", accessibility_violations(&chw).await));
    let measures_shot = screenshot(&chw, "social-measures.png").await;
    let failing: Vec<_> = checked.iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(failing.is_empty(), "WCAG 2.1 A/AA violations: {failing:#?}");
    println!(
        "axe-core: {} social-needs pages, no WCAG 2.1 A/AA violation",
        checked.len()
    );

    for shot in [food_page, pantry_shot, closed_shot, measures_shot] {
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "{}",
            shot.display()
        );
    }
    for c in [ana, chw, pantry] {
        c.close().await.unwrap();
    }
    app.finish().await;
}
