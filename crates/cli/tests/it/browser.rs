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
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("an address").port()
}

/// Starts chromedriver and waits for the line that says it is listening.
pub(crate) fn start_driver() -> Driver {
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

pub(crate) async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
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

pub(crate) async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.expect("a screenshot");
    let path = output_dir().join(name);
    std::fs::write(&path, png).expect("the screenshot written");
    println!("screenshot: {}", path.display());
    path
}

pub(crate) async fn sign_in(c: &Client, app: &TestApp, username: &str) {
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
    // Signed in once the browser is home (the page before it also had a main, so waiting for
    // one alone could race the sign-in's own navigation).
    let home = c
        .current_url()
        .await
        .expect("the browser's address")
        .join("/")
        .expect("home");
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_url(&home)
        .await
        .unwrap_or_else(|e| panic!("{username} did not get home after signing in: {e}"));
    wait_for(c, "//main").await;
}

/// Waits (polling the page, with WebDriver's own timeout) for an element by XPath.
pub(crate) async fn wait_for(c: &Client, xpath: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("waiting for {xpath}: {e}"))
}

pub(crate) async fn wait_for_text(c: &Client, text: &str) {
    wait_for(c, &format!("//*[contains(normalize-space(.), \"{text}\")]")).await;
}

pub(crate) async fn fill(c: &Client, css: &str, text: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

pub(crate) async fn click(c: &Client, css: &str) {
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
        "//span[contains(@class,'badge') and contains(., 'High')]",
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
    // ... with the number as a link that dials.
    wait_for(&ana, "//a[@href='tel:911']").await;
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
    wait_for(
        &ana,
        "//p[@id='same-day']/following-sibling::p[@class='calls']/a[@href='tel:911']",
    )
    .await;
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

/// The WCAG 2.0 and 2.1 A and AA rules of axe-core (carried in testdata/axe-core), run on the
/// page the browser shows; the violations found, one line each.
pub(crate) async fn accessibility_violations(c: &Client) -> Vec<String> {
    let axe = std::fs::read_to_string(crate::testdata().join("axe-core/axe.min.js"))
        .expect("testdata/axe-core/axe.min.js");
    c.execute(&axe, vec![]).await.expect("axe-core loads");
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
               .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' +
                   v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("axe-core runs");
    found
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the page is wider than the window (it would scroll sideways).
pub(crate) async fn scrolls_sideways(c: &Client) -> Option<String> {
    let r = c
        .execute(
            "const w = document.documentElement.clientWidth;
             if (document.documentElement.scrollWidth <= w) { return null; }
             const wide = [...document.querySelectorAll('body *')]
               .filter(e => e.getBoundingClientRect().right > w + 1)
               .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : ''));
             return document.documentElement.scrollWidth + 'px wide in ' + w + 'px: ' + wide.slice(0, 5).join(', ');",
            vec![],
        )
        .await
        .expect("a width");
    r.as_str().map(str::to_string)
}

/// Issue 22's journeys: (a) in Spanish a patient records a dangerous low and reads what to do
/// now, and the clinician's home shows it first as urgent; (b) the social worker's home has no
/// review form and a forced review is refused; (c) Clara reads Ana's plan about Ana, with no
/// "I agree"; (d) on a 390-pixel phone no page of the patient scrolls sideways. On the way,
/// axe-core checks each role's main pages against WCAG 2.1 A and AA.
#[tokio::test]
async fn a_dangerous_low_each_roles_home_and_words_for_each_reader_in_the_browser() {
    if std::env::var_os("COPRODUCE_TEST_CHROMIUM").is_none() {
        println!(
            "SKIPPED browser journeys: set COPRODUCE_TEST_CHROMIUM to run them in headless Chromium"
        );
        return;
    }
    let app = TestApp::spawn_full(
        TestBackend::Sqlite,
        coproduce_web::WebConfig {
            secure_cookies: false,
            phones: coproduce_web::Phones {
                clinic: Some("+1 555 0100".into()),
                emergency: "911".into(),
            },
            ..Default::default()
        },
        coproduce_app::workflows::Settings::default(),
        coproduce_app::jobs::Delivery::default(),
    )
    .await;
    app.seed_care_team("es").await;
    let driver = start_driver();
    let mut checked: Vec<(String, Vec<String>)> = Vec::new();

    // (a) Ana, in Spanish on her phone, records 52 mg/dL.
    let ana = browser(&driver, 412, 1800).await;
    sign_in(&ana, &app, "ana").await;
    wait_for(&ana, "//html[@lang='es']").await;
    checked.push(("patient home".into(), accessibility_violations(&ana).await));
    click(&ana, "#measure-glucose").await;
    wait_for(&ana, "//form[@id='reading-form']").await;
    fill(&ana, "#value", "52").await;
    click(&ana, "#reading-form button[type=submit]").await;
    wait_for(&ana, "//section[@id='act-now']").await;
    wait_for_text(&ana, "Su glucosa está muy baja. Trátela ahora.").await;
    wait_for_text(&ana, "15 gramos de azúcar rápida").await;
    wait_for(&ana, "//section[@id='act-now']//a[@href='tel:911']").await;
    wait_for(&ana, "//section[@id='act-now']//a[@href='tel:+15550100']").await;
    wait_for_text(
        &ana,
        "Su equipo de salud ya está avisado y lo va a llamar hoy.",
    )
    .await;
    let low_shot = screenshot(&ana, "dangerous-low.png").await;
    checked.push((
        "patient reading".into(),
        accessibility_violations(&ana).await,
    ));

    let dr = browser(&driver, 1280, 1400).await;
    sign_in(&dr, &app, "dr.okafor").await;
    wait_for(&dr, "//table[@id='act-now-list']").await;
    // The first row of "needs action now" is Ana's low, urgent.
    let first = wait_for(&dr, "//table[@id='act-now-list']/tbody/tr[1]").await;
    let row = first.text().await.unwrap();
    assert!(
        row.contains("Ana Silva") && row.contains("Respond today: Very low: act now"),
        "{row}"
    );
    assert!(
        first
            .attr("class")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("rank-urgent"),
        "{row}"
    );
    // It comes before the readings to review.
    let order: bool = dr
        .execute(
            "const a = document.getElementById('act-now-h'), b = document.getElementById('unreviewed-h');
             return !!(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING);",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    assert!(order, "needs action now comes first");
    let team_shot = screenshot(&dr, "team-act-now.png").await;
    checked.push(("clinician home".into(), accessibility_violations(&dr).await));

    // (b) The social worker: a worklist, no review form; a forced review is refused.
    let sw = browser(&driver, 1280, 1400).await;
    sign_in(&sw, &app, "sw.diaz").await;
    wait_for_text(&sw, "Your worklist: Social worker").await;
    let forms = sw
        .find_all(Locator::XPath("//form[contains(@action, '/review')]"))
        .await
        .unwrap();
    assert!(
        forms.is_empty(),
        "no review form on the social worker's home"
    );
    checked.push((
        "social worker home".into(),
        accessibility_violations(&sw).await,
    ));
    let obs: Value = app
        .get("/fhir/Observation?subject=Patient/p1")
        .await
        .json()
        .await
        .unwrap();
    let oid = obs["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = sw
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch(arguments[0], {method: 'POST', redirect: 'manual',
                    headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                    body: new URLSearchParams({csrf: csrf, comment: '', back: '/'})})
               .then(r => done(r.status)).catch(e => done(String(e)));",
            vec![json!(format!("/patients/p1/observations/{oid}/review"))],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403), "a forced review is refused");

    // (c) Clara reads Ana's plan about Ana, with no "I agree" on the goal the team proposed.
    dr.goto(&app.url("/patients/p1")).await.unwrap();
    fill(&dr, "#goal-text", "Check my feet every evening").await;
    click(&dr, "#propose-goal button[type=submit]").await;
    wait_for_text(&dr, "Waiting for the patient to answer").await;
    let clara = browser(&driver, 412, 1800).await;
    sign_in(&clara, &app, "clara").await;
    clara.goto(&app.url("/patients/p1")).await.unwrap();
    wait_for_text(&clara, "Ana Silva's plan").await;
    wait_for_text(&clara, "Waiting for Ana Silva to answer").await;
    let agree = clara
        .find_all(Locator::Css("button[value=agree]"))
        .await
        .unwrap();
    assert!(agree.is_empty(), "Clara is offered no 'I agree'");
    checked.push((
        "family view of the plan".into(),
        accessibility_violations(&clara).await,
    ));

    // (d) Every page of the patient on a 390-pixel phone, in English: none scrolls sideways.
    let narrow = browser(&driver, 390, 844).await;
    sign_in(&narrow, &app, "ana").await;
    narrow
        .find(Locator::Id("lang"))
        .await
        .unwrap()
        .select_by_value("en")
        .await
        .unwrap();
    click(&narrow, "form.lang button").await;
    wait_for(&narrow, "//html[@lang='en']").await;
    let mut pages = vec![
        "/".to_string(),
        "/patients/p1".to_string(),
        "/notifications".to_string(),
        "/account".to_string(),
        "/patients/p1/summary".to_string(),
        "/patients/p1/rescue-pack".to_string(),
        "/patients/p1/access-log".to_string(),
        "/patients/p1/social".to_string(),
        "/patients/p1/social/screen?step=1".to_string(),
        "/patients/p1/social/screen?step=2".to_string(),
        "/patients/p1/social/screen?step=6".to_string(),
    ];
    for m in coproduce_core::care::readings::Measure::ALL {
        pages.push(format!("/patients/p1/readings/{}", m.as_str()));
    }
    let mut wide = Vec::new();
    for path in &pages {
        narrow.goto(&app.url(path)).await.unwrap();
        wait_for(&narrow, "//main").await;
        if let Some(why) = scrolls_sideways(&narrow).await {
            wide.push(format!("{path}: {why}"));
        }
    }
    assert!(
        wide.is_empty(),
        "pages that scroll sideways at 390 px: {wide:#?}"
    );
    println!(
        "390 px: {} pages of the patient, none scrolls sideways",
        pages.len()
    );
    let narrow_shot = screenshot(&narrow, "patient-390.png").await;
    // The social-needs pages on the phone: the needs page and the screen's pages (one
    // question, the multi-select one, the safety one).
    for path in [
        "/patients/p1/social",
        "/patients/p1/social/screen?step=1",
        "/patients/p1/social/screen?step=2",
        "/patients/p1/social/screen?step=6",
    ] {
        narrow.goto(&app.url(path)).await.unwrap();
        wait_for(&narrow, "//main").await;
        checked.push((path.into(), accessibility_violations(&narrow).await));
    }

    // Every other role's main page, for axe-core.
    let nurse = browser(&driver, 1280, 1400).await;
    sign_in(&nurse, &app, "nurse.lee").await;
    nurse.goto(&app.url("/team/rescue-packs")).await.unwrap();
    wait_for(&nurse, "//main").await;
    checked.push((
        "rescue episodes".into(),
        accessibility_violations(&nurse).await,
    ));
    nurse.goto(&app.url("/notifications")).await.unwrap();
    wait_for(&nurse, "//main").await;
    checked.push((
        "notifications".into(),
        accessibility_violations(&nurse).await,
    ));
    let admin = browser(&driver, 1280, 1400).await;
    sign_in(&admin, &app, "admin.kim").await;
    wait_for_text(&admin, "Accounts and tokens").await;
    checked.push(("admin home".into(), accessibility_violations(&admin).await));
    let rph = browser(&driver, 1280, 1400).await;
    sign_in(&rph, &app, "rph.ali").await;
    checked.push((
        "pharmacist home".into(),
        accessibility_violations(&rph).await,
    ));
    rph.goto(&app.url("/account")).await.unwrap();
    wait_for(&rph, "//main").await;
    checked.push(("account".into(), accessibility_violations(&rph).await));

    let failing: Vec<&(String, Vec<String>)> =
        checked.iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(failing.is_empty(), "WCAG 2.1 A/AA violations: {failing:#?}");
    println!(
        "axe-core: {} pages of every role, no WCAG 2.1 A/AA violation",
        checked.len()
    );
    for (c, shot) in [(ana, low_shot), (dr, team_shot), (narrow, narrow_shot)] {
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
        c.close().await.unwrap();
    }
    for c in [sw, clara, nurse, admin, rph] {
        c.close().await.unwrap();
    }
    app.finish().await;
}
