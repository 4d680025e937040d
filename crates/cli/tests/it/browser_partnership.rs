//! The partnership in headless Chromium: Ana, on her phone in Brazilian Portuguese, reads
//! "what my team and I have done" and answers the three questions on shared decisions; the
//! clinician reads the panel's scorecard from her home; the analyst reads the trend chart.
//!
//! On the fake clock (Monday 1 June 2026, 10:00 UTC): Ana proposes a goal, which the
//! clinician agrees the next day (on time); the nurse's call due by Friday is made on
//! Thursday (on time); Ana's reading of Monday is reviewed on day 8 (late); Ana walks on
//! Saturday, inside her week. On Wednesday 10 June the team did 2 of 3 on time, Ana 1 of 1.

use crate::browser::{
    accessibility_violations, browser, click, screenshot, scrolls_sideways, sign_in, start_driver,
    wait_for, wait_for_text,
};
use coproduce_app::care::NewReading;
use coproduce_app::fhir_api::FhirApi;
use coproduce_app::workflows::{Settings, Workflows};
use coproduce_core::Clock;
use coproduce_core::care::plan::GoalAnswer;
use coproduce_core::care::readings::Measure;
use coproduce_testkit::{TestApp, TestBackend};
use std::sync::Arc;
use time::Duration;
use time::macros::datetime;

#[tokio::test]
async fn ana_reads_what_her_team_and_she_did_in_portuguese_the_clinician_the_panel_and_the_analyst_the_trend()
 {
    if std::env::var_os("COPRODUCE_TEST_CHROMIUM").is_none() {
        println!(
            "SKIPPED browser journeys: set COPRODUCE_TEST_CHROMIUM to run them in headless Chromium"
        );
        return;
    }
    let app = TestApp::spawn(TestBackend::Sqlite).await;
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
    let nurse = crate::rescue::caller(&app, "nurse.lee").await;
    let reading = w
        .care
        .record_reading(
            &ana,
            "p1",
            &NewReading {
                measure: Measure::Glucose,
                values: vec![132.0],
                unit: String::new(),
                at: start,
            },
        )
        .await
        .unwrap();
    let goal = w
        .care
        .propose_goal(&ana, "p1", "Caminhar até a feira", None)
        .await
        .unwrap();
    let (walk, call) = crate::partnership::walk_and_call(
        &w,
        &ana,
        &dr,
        "Caminhada de 20 minutos",
        "Ligar sobre o novo glicosímetro",
    )
    .await;
    app.clock.set(datetime!(2026-06-02 11:00 UTC));
    w.care
        .answer_goal(&dr, "p1", &goal.id, GoalAnswer::Agree, None)
        .await
        .unwrap();
    app.clock.set(datetime!(2026-06-04 15:00 UTC));
    w.care.mark_done(&nurse, "p1", call.index).await.unwrap();
    app.clock.set(datetime!(2026-06-06 09:00 UTC));
    w.care.mark_done(&ana, "p1", walk.index).await.unwrap();
    app.clock.set(start + Duration::days(8));
    w.care
        .review_reading(&nurse, "p1", &reading.id, "")
        .await
        .unwrap();
    app.clock.set(datetime!(2026-06-10 12:00 UTC));
    let driver = start_driver();

    // Ana, on her phone, in Brazilian Portuguese.
    let phone = browser(&driver, 390, 1800).await;
    sign_in(&phone, &app, "ana").await;
    wait_for(&phone, "//html[@lang='pt-BR']").await;
    wait_for(
        &phone,
        "//section[@id='partnership-box' and contains(., 'O que minha equipe e eu fizemos')]",
    )
    .await;
    for words in [
        "Sua equipe de cuidado fez 2 de 3 coisas no prazo.",
        "Você e sua família fizeram 1 de 1 atividades planejadas no prazo.",
        "Metas que você e sua equipe combinaram juntos: 1 de 1.",
        "Você e sua família cuidam de 1 das 1 atividades do seu plano (100%).",
    ] {
        wait_for_text(&phone, words).await;
    }
    assert_eq!(scrolls_sideways(&phone).await, None, "the home on a phone");
    let mut checked = vec![(
        "patient's home with the box (pt-BR, 390 px)",
        accessibility_violations(&phone).await,
    )];
    let home_shot = screenshot(&phone, "partnership-home-pt-BR.png").await;
    // The clinician agreed her goal: she is asked the three questions.
    click(&phone, "#collaborate-open").await;
    wait_for_text(
        &phone,
        "Quanto esforço foi feito para ajudar você a entender seus problemas de saúde?",
    )
    .await;
    assert_eq!(
        scrolls_sideways(&phone).await,
        None,
        "the questions on a phone"
    );
    checked.push((
        "shared-decision questions (pt-BR, 390 px)",
        accessibility_violations(&phone).await,
    ));
    for item in ["understand", "listen", "include"] {
        click(&phone, &format!("input[name='{item}'][value='4']")).await;
    }
    click(&phone, "#collaborate-form button[type=submit]").await;
    wait_for_text(&phone, "Obrigado: suas respostas foram enviadas.").await;
    assert!(
        phone
            .find(fantoccini::Locator::Id("collaborate-open"))
            .await
            .is_err(),
        "answered: not asked again"
    );

    // The clinician, at her desk a little later, reads the panel's scorecard from her home.
    app.clock.set(datetime!(2026-06-10 14:00 UTC));
    let desk = browser(&driver, 1280, 1600).await;
    sign_in(&desk, &app, "dr.okafor").await;
    click(&desk, "#partnership-panel-link").await;
    wait_for(
        &desk,
        "//table[@id='partnership-team']//tr[th='All' and td[1]='3' and td[2]='2' and td[3]='1']",
    )
    .await;
    wait_for_text(&desk, "None of your items is late.").await;
    checked.push(("panel scorecard", accessibility_violations(&desk).await));
    let panel_shot = screenshot(&desk, "partnership-panel.png").await;

    // The analyst reads the month-by-month chart with its figures beside it.
    crate::measure::analyst(&app, "quality.ida").await;
    sign_in(&desk, &app, "quality.ida").await;
    click(&desk, "#partnership-link").await;
    wait_for(
        &desk,
        "//figure[.//*[name()='svg'] and .//table[@id='partnership-months']//tr[th='2026-06' and td[1]='3']]",
    )
    .await;
    wait_for_text(
        &desk,
        "every effort was made): 1 of 1 responses in the period (100.0%)",
    )
    .await;
    checked.push(("analyst's scorecard", accessibility_violations(&desk).await));
    let trend_shot = screenshot(&desk, "partnership-trend.png").await;

    let failing: Vec<_> = checked.iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(failing.is_empty(), "WCAG 2.1 A/AA violations: {failing:#?}");
    println!(
        "axe-core: {} partnership pages, no WCAG 2.1 A/AA violation",
        checked.len()
    );
    for shot in [home_shot, panel_shot, trend_shot] {
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "{}",
            shot.display()
        );
    }
    for c in [phone, desk] {
        c.close().await.unwrap();
    }
    app.finish().await;
}
