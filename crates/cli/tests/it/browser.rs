//! Browser journeys in headless Chromium (Debian's chromium and chromium-driver), run when
//! `COPRODUCE_TEST_CHROMIUM` is set; CI sets it. The server is the real router on the fake
//! clock; the browser is driven over WebDriver with fantoccini. Screenshots go to
//! `target/test-output/browser/`.

use coproduce_testkit::{PASSWORD, TestApp, TestBackend};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A chromedriver process, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("an address").port()
}

/// Starts chromedriver and waits for the line that says it is listening.
fn start_driver() -> Driver {
    let path = std::env::var("COPRODUCE_TEST_CHROMEDRIVER")
        .unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let port = free_port();
    let mut child = Command::new(&path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {path}: {e} (apt install chromium-driver)"));
    let stdout = child.stdout.take().expect("chromedriver's output");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("started successfully") => break,
            Some(Ok(_)) => {}
            _ => panic!("chromedriver stopped before it was ready"),
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
    let binary = std::env::var("COPRODUCE_TEST_CHROMIUM")
        .ok()
        .filter(|p| std::path::Path::new(p).is_file())
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": binary,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), "--lang=en"],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn output_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp
        .parent()
        .map_or(tmp.clone(), |t| t.join("test-output"))
        .join("browser");
    std::fs::create_dir_all(&dir).expect("the test output folder");
    dir
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.expect("a screenshot");
    let path = output_dir().join(name);
    std::fs::write(&path, png).expect("the screenshot written");
    println!("screenshot: {}", path.display());
    path
}

async fn sign_in(c: &Client, app: &TestApp, username: &str) {
    c.goto(&app.url("/login")).await.expect("the sign-in page");
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(username)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "//main").await;
}

/// Waits (polling the page, with WebDriver's own timeout) for an element by XPath.
async fn wait_for(c: &Client, xpath: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("waiting for {xpath}: {e}"))
}

async fn wait_for_text(c: &Client, text: &str) {
    wait_for(c, &format!("//*[contains(normalize-space(.), \"{text}\")]")).await;
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_patient_and_a_clinician_coproduce_a_plan_in_the_browser() {
    if std::env::var_os("COPRODUCE_TEST_CHROMIUM").is_none() {
        println!(
            "SKIPPED browser journeys: set COPRODUCE_TEST_CHROMIUM to run them in headless Chromium"
        );
        return;
    }
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let driver = start_driver();

    // The patient, on a phone-sized window: signs in, switches to Spanish, records a glucose
    // reading and proposes a goal.
    let ana = browser(&driver, 412, 1800).await;
    sign_in(&ana, &app, "ana").await;
    wait_for_text(&ana, "My health plan").await;
    ana.find(Locator::Id("lang"))
        .await
        .unwrap()
        .select_by_value("es")
        .await
        .unwrap();
    click(&ana, "form.lang button").await;
    wait_for(&ana, "//html[@lang='es']").await;
    wait_for_text(&ana, "Mi plan de salud").await;

    click(&ana, "#measure-glucose").await;
    wait_for(&ana, "//form[@id='reading-form']").await;
    fill(&ana, "#value", "250").await;
    click(&ana, "#reading-form button[type=submit]").await;
    wait_for_text(&ana, "Su medición quedó guardada").await;

    click(&ana, "header nav a[href='/']").await;
    wait_for(&ana, "//textarea[@id='goal-text']").await;
    fill(
        &ana,
        "#goal-text",
        "Caminar al mercado tres veces por semana",
    )
    .await;
    click(&ana, "#propose-goal button[type=submit]").await;
    wait_for_text(&ana, "Su meta quedó guardada").await;
    let patient_shot = screenshot(&ana, "patient-home.png").await;

    // The clinician sees the reading flagged as unreviewed (and out of range), agrees to the
    // goal with an HbA1c target, and marks the reading reviewed with a comment.
    let dr = browser(&driver, 1280, 1400).await;
    sign_in(&dr, &app, "dr.okafor").await;
    wait_for_text(&dr, "Team home").await;
    wait_for_text(&dr, "Readings to review (1)").await;
    wait_for_text(&dr, "250 mg/dL").await;
    wait_for(
        &dr,
        "//span[contains(@class,'badge') and contains(., 'Not yet seen')]",
    )
    .await;
    wait_for(
        &dr,
        "//span[contains(@class,'badge') and contains(., 'Out of range')]",
    )
    .await;
    let team_shot = screenshot(&dr, "team-home.png").await;

    click(&dr, "#goals-h + ul a").await;
    wait_for(&dr, "//form[contains(@class,'answer')]").await;
    dr.find(Locator::Css("form.answer select[name=target]"))
        .await
        .unwrap()
        .select_by_value("below-7")
        .await
        .unwrap();
    click(&dr, "form.answer button[value=agree]").await;
    wait_for_text(&dr, "Your answer is saved").await;

    click(&dr, "header nav a[href='/']").await;
    wait_for(&dr, "//form[contains(@class,'review')]").await;
    fill(
        &dr,
        "form.review input[name=comment]",
        "Gracias, Ana. Revise otra vez antes de cenar.",
    )
    .await;
    click(&dr, "form.review button").await;
    wait_for_text(&dr, "Marked as reviewed").await;
    wait_for_text(&dr, "Every reading has been reviewed").await;

    // The patient sees the agreement and the comment, in Spanish.
    ana.goto(&app.url("/")).await.unwrap();
    wait_for_text(&ana, "Aceptada por ambos").await;
    wait_for_text(&ana, "Gracias, Ana. Revise otra vez antes de cenar.").await;
    wait_for_text(&ana, "Meta: menos de 7 %").await;

    for (c, shot) in [(ana, patient_shot), (dr, team_shot)] {
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "{}",
            shot.display()
        );
        c.close().await.unwrap();
    }
    app.finish().await;
}

#[tokio::test]
async fn a_patient_starts_a_rescue_pack_in_haitian_creole_and_the_team_follows_up() {
    if std::env::var_os("COPRODUCE_TEST_CHROMIUM").is_none() {
        println!(
            "SKIPPED browser journeys: set COPRODUCE_TEST_CHROMIUM to run them in headless Chromium"
        );
        return;
    }
    // The site is in New York: its pages show and count deadlines on its clock.
    let calendar = coproduce_core::calendar::BusinessCalendar::new(
        "America/New_York",
        "08:00",
        "17:00",
        &["monday", "tuesday", "wednesday", "thursday", "friday"].map(String::from),
        &[],
    )
    .unwrap();
    let app = TestApp::spawn_full(
        TestBackend::Sqlite,
        coproduce_web::WebConfig {
            secure_cookies: false,
            ..Default::default()
        },
        coproduce_app::workflows::Settings {
            calendar,
            ..Default::default()
        },
        coproduce_app::jobs::Delivery::default(),
    )
    .await;
    // Ana's record says she speaks Haitian Creole.
    app.seed_care_team("ht").await;
    let (rescue, _) = crate::rescue::services(&app.db.store, &app.clock, false);
    crate::rescue::dispensed(&app, &rescue, time::macros::date!(2027 - 06 - 30)).await;
    // Friday 27 November 2026, 13:00 in New York (18:00 UTC): the team's contact is due by
    // Monday's close, 17:00 there (22:00 UTC), and every page says so in New York time.
    app.clock.set(time::macros::datetime!(2026-11-27 18:00 UTC));
    let driver = start_driver();

    // Three taps from home: the button, a symptom, "start".
    let ana = browser(&driver, 412, 1800).await;
    sign_in(&ana, &app, "ana").await;
    wait_for(&ana, "//html[@lang='ht']").await;
    wait_for_text(&ana, "M ap kòmanse pakè sekou mwen").await;
    click(&ana, "#rescue-start").await;
    wait_for(&ana, "//form[@id='start-form']").await;
    // The red zone is an instruction on the page, not a form.
    wait_for_text(&ana, "rele sèvis ijans kounye a (911)").await;
    click(&ana, "#symptom-more-breathless").await;
    let start_shot = screenshot(&ana, "rescue-start.png").await;
    click(&ana, "#start-submit").await;
    wait_for_text(&ana, "Nou avèti ekip ou a ke ou kòmanse pakè sekou ou.").await;
    wait_for_text(&ana, "Ekip ou ap rele w anvan 2026-11-30 17:00 EST.").await;

    // The nurse sees the episode as due, and records the contact from the list.
    let nurse = browser(&driver, 1280, 1400).await;
    sign_in(&nurse, &app, "nurse.lee").await;
    click(&nurse, "a[href='/team/rescue-packs']").await;
    wait_for_text(&nurse, "Rescue-pack episodes").await;
    wait_for(
        &nurse,
        "//li[contains(@class,'deadline') and contains(., 'Contact the patient') and contains(., '2026-11-30 17:00 EST')]/span[contains(., 'Due')]",
    )
    .await;
    let team_shot = screenshot(&nurse, "rescue-team.png").await;
    fill(&nurse, "#note-p1", "Pale ak Ana; li pran prednizòn nan.").await;
    click(&nurse, "#contact-p1").await;
    wait_for_text(&nurse, "Recorded.").await;

    // Ana sees the confirmation, then answers the check-in: worse.
    ana.goto(&app.url("/")).await.unwrap();
    wait_for_text(&ana, "Ekip swen ou te kontakte w pou pakè sekou ou a.").await;
    click(&ana, "#rescue-check-in").await;
    wait_for(&ana, "//form[@id='check-in']").await;
    click(&ana, "#checkin-worse").await;
    wait_for(&ana, "//p[@id='same-day']").await;
    wait_for_text(&ana, "Si ou pa pi byen, ou bezwen swen jodi a").await;

    // The team is told: the clinician's inbox, and a same-day task on the episode.
    let dr = browser(&driver, 1280, 1400).await;
    sign_in(&dr, &app, "dr.okafor").await;
    dr.goto(&app.url("/notifications")).await.unwrap();
    wait_for_text(
        &dr,
        "Ana Silva is not better after starting their rescue pack",
    )
    .await;
    dr.goto(&app.url("/team/rescue-packs")).await.unwrap();
    wait_for_text(&dr, "Same-day follow-up: not better").await;

    for (c, shot) in [(ana, start_shot), (nurse, team_shot)] {
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "{}",
            shot.display()
        );
        c.close().await.unwrap();
    }
    dr.close().await.unwrap();
    app.finish().await;
}
