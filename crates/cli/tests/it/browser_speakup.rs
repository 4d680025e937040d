//! Issue 16's journey in headless Chromium, in Haitian Creole: a family member at the bedside
//! device, without signing in, raises an anonymous urgent concern; the rapid-response nurse
//! gets it and acknowledges it; a routine answer follows; the family member reads it with the
//! claim code and says they felt heard; the team's list and the measures show it. On the way,
//! axe-core checks the open pages and no page scrolls sideways on a 390-pixel phone.

use crate::browser::{
    accessibility_violations, browser, click, fill, screenshot, scrolls_sideways, sign_in,
    start_driver, wait_for, wait_for_text,
};
use coproduce_testkit::{TestApp, TestBackend};
use fantoccini::Locator;

#[tokio::test]
async fn a_family_member_at_the_bedside_speaks_up_in_haitian_creole_and_is_answered() {
    if std::env::var_os("COPRODUCE_TEST_CHROMIUM").is_none() {
        println!(
            "SKIPPED browser journeys: set COPRODUCE_TEST_CHROMIUM to run them in headless Chromium"
        );
        return;
    }
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    app.seed_units().await;
    // Saturday 28 November 2026, 03:10: urgency keeps no office hours.
    app.clock.set(time::macros::datetime!(2026-11-28 03:10 UTC));
    let driver = start_driver();
    let mut checked = 0;

    // The bedside device: the unit's link, in Kreyòl, on a phone-sized screen.
    let device = browser(&driver, 390, 1600).await;
    device
        .goto(&app.url("/speakup/unit/unit-4w?lang=ht"))
        .await
        .unwrap();
    wait_for(&device, "//html[@lang='ht']").await;
    wait_for_text(&device, "Ou nan 4 West").await;
    let v = accessibility_violations(&device).await;
    assert!(v.is_empty(), "unit form: {v:?}");
    checked += 1;
    assert_eq!(scrolls_sideways(&device).await, None);
    // Sent empty first: refused in Kreyòl, nothing raised.
    device
        .execute(
            "document.getElementById('what').removeAttribute('required');",
            vec![],
        )
        .await
        .unwrap();
    click(&device, "#concern-submit").await;
    wait_for_text(&device, "Di nan kèk mo sa k ap enkyete w.").await;
    click(&device, "#urgent").await;
    device
        .find(Locator::Css("#category option[value='condition-worse']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(
        &device,
        "#what",
        "Papa m ap respire mal epi pèsonn pa vini.",
    )
    .await;
    fill(&device, "#room", "12").await;
    let form_shot = screenshot(&device, "speakup-form-ht.png").await;
    click(&device, "#concern-submit").await;
    wait_for_text(&device, "Nou rele ekip repons rapid la.").await;
    // Whom to call if nobody comes, as a link that dials.
    wait_for(&device, "//a[@href='tel:911']").await;
    let code = wait_for(&device, "//p[@id='claim-code']")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(code.len(), 27, "{code}");
    assert_eq!(scrolls_sideways(&device).await, None);
    let v = accessibility_violations(&device).await;
    assert!(v.is_empty(), "raised page: {v:?}");
    checked += 1;

    // The rapid-response nurse is told, and acknowledges from the list, two minutes later.
    app.clock.set(time::macros::datetime!(2026-11-28 03:12 UTC));
    let rr = browser(&driver, 1280, 1200).await;
    sign_in(&rr, &app, "rr.kim").await;
    rr.goto(&app.url("/notifications")).await.unwrap();
    wait_for_text(&rr, "URGENT on 4 West").await;
    // From the team's home, the link to the concerns.
    rr.goto(&app.url("/")).await.unwrap();
    wait_for(&rr, "//p[@class='box']/a[@href='/team/concerns']")
        .await
        .click()
        .await
        .unwrap();
    wait_for(
        &rr,
        "//table[@id='concern-list']//tr[contains(@class,'rank-urgent') and contains(., 'Papa m ap respire mal')]",
    )
    .await;
    let team_shot = screenshot(&rr, "speakup-team.png").await;
    click(&rr, "#concern-list button[type=submit]").await;
    wait_for_text(&rr, "Recorded.").await;

    // The routine answer follows an hour later, from the concern's page.
    app.clock.set(time::macros::datetime!(2026-11-28 04:15 UTC));
    let lead = browser(&driver, 1280, 1200).await;
    sign_in(&lead, &app, "lead.park").await;
    lead.goto(&app.url("/team/concerns")).await.unwrap();
    wait_for(
        &lead,
        "//table[@id='concern-list']//a[starts-with(@href, '/team/concerns/')]",
    )
    .await
    .click()
    .await
    .unwrap();
    wait_for_text(&lead, "answer in Kreyòl ayisyen").await;
    wait_for_text(&lead, "Acknowledged · Jae Kim").await;
    fill(
        &lead,
        "#text-answered",
        "Enfimyè repons rapid la te vini nan 2 minit; papa ou estab kounye a. Mèsi paske ou pale.",
    )
    .await;
    click(&lead, "#do-answered").await;
    wait_for_text(&lead, "Recorded.").await;

    // The family member reads it with the code, typed as one would, and says they felt heard.
    device
        .goto(&app.url("/speakup/follow?lang=ht"))
        .await
        .unwrap();
    let v = accessibility_violations(&device).await;
    assert!(v.is_empty(), "follow page: {v:?}");
    checked += 1;
    fill(&device, "#code", &code.to_lowercase().replace('-', " ")).await;
    click(&device, "#follow-submit").await;
    wait_for_text(&device, "papa ou estab kounye a").await;
    wait_for_text(&device, "Ekip la wè enkyetid ou.").await;
    let page = device.source().await.unwrap();
    assert!(
        !page.contains("Kim") && !page.contains("Park"),
        "no staff name"
    );
    assert_eq!(scrolls_sideways(&device).await, None);
    click(&device, "#heard-yes").await;
    click(&device, "#heard-submit").await;
    wait_for_text(&device, "Mèsi paske ou di nou sa.").await;
    wait_for_text(&device, "Fèmen").await;
    let answer_shot = screenshot(&device, "speakup-answer-ht.png").await;
    let v = accessibility_violations(&device).await;
    assert!(v.is_empty(), "answer page: {v:?}");
    checked += 1;

    // The team's list is empty again, and the measures count it as on time and heard.
    lead.goto(&app.url("/team/concerns")).await.unwrap();
    wait_for_text(&lead, "No open concerns").await;
    lead.goto(&app.url("/concerns/measures")).await.unwrap();
    wait_for(
        &lead,
        "//table[@id='concern-measures']//tr[th='All concerns' and td[1]='1' and td[2]='2 min' and td[4]='100%' and td[6]='100%']",
    )
    .await;
    let v = accessibility_violations(&lead).await;
    assert!(v.is_empty(), "measures page: {v:?}");
    checked += 1;
    println!("axe-core: {checked} Speak Up pages, no WCAG 2.1 A/AA violation");
    for shot in [form_shot, team_shot, answer_shot] {
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "{}",
            shot.display()
        );
    }
    for c in [device, rr, lead] {
        c.close().await.unwrap();
    }
    app.finish().await;
}
