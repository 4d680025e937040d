//! Social needs through the FHIR API and the app's use-cases, on SQLite and PostgreSQL: a
//! screening that arrives through the API is scored into its Observations and proposed
//! concerns in the same transaction; a bad answer is refused and nothing is written; a family
//! member whose grant does not cover social needs sees none of it, by any read or search, and
//! sees it once the grant covers it; the patient's choice is a Consent; the IG's examples
//! import, and an export re-imports unchanged.

use crate::rescue::caller;
use coproduce_app::FhirApi;
use coproduce_app::accounts::NewToken;
use coproduce_app::social::{AHC_URL, Social};
use coproduce_core::Clock;
use coproduce_core::social::Choice;
use coproduce_testkit::{TestApp, TestBackend, backends};
use serde_json::{Value, json};
use std::sync::Arc;

fn answer(code: &str) -> Value {
    json!([{"valueCoding": {"system": "http://loinc.org", "code": code}}])
}

/// Food "sometimes true" and "never true", transportation yes, a steady place, no housing
/// problem, utilities no, three safety items "never" and the fourth skipped.
fn screening() -> Value {
    let items: Vec<Value> = [
        ("71802-3", "LA31993-1"),
        ("96778-6", "LA9-3"),
        ("88122-7", "LA6729-3"),
        ("88123-5", "LA28398-8"),
        ("93030-5", "LA33-6"),
        ("96779-4", "LA32-8"),
        ("95618-5", "LA6270-8"),
        ("95617-7", "LA6270-8"),
        ("95616-9", "LA6270-8"),
    ]
    .iter()
    .map(|(q, a)| json!({"linkId": q, "answer": answer(a)}))
    .collect();
    json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": AHC_URL,
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": "2026-11-27T10:00:00Z",
        "item": items,
    })
}

pub(crate) async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn search(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, bundle) = json_of(resp).await;
    assert_eq!(status, 200, "{path}: {bundle}");
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] != "include")
        .map(|e| e["resource"].clone())
        .collect()
}

fn social_label(r: &Value) -> bool {
    r["meta"]["security"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|l| l["code"] == "social-needs")
}

async fn token_for(app: &TestApp, username: &str) -> String {
    app.accounts
        .issue_token(NewToken {
            username: Some(username.into()),
            name: format!("{username}-app"),
            scopes: "user/*.cruds".into(),
            patient: None,
            expires_in: None,
        })
        .await
        .unwrap()
        .1
}

#[tokio::test]
async fn a_screening_through_the_api_is_scored_labelled_and_kept_from_family_without_the_grant() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("es").await;
        let (status, qr) = json_of(
            app.post_json("/fhir/QuestionnaireResponse", screening().to_string())
                .await,
        )
        .await;
        assert_eq!(status, 201, "{qr}");
        assert!(social_label(&qr), "the response is labelled: {qr}");
        let qr_id = qr["id"].as_str().unwrap().to_string();

        let observations = search(
            &app,
            &app.token,
            "/fhir/Observation?subject=Patient/p1&_count=100",
        )
        .await;
        let derived: Vec<&Value> = observations
            .iter()
            .filter(|o| {
                o["derivedFrom"][0]["reference"] == format!("QuestionnaireResponse/{qr_id}")
            })
            .collect();
        // Ten items, the safety total, and the housing item's one member answer.
        assert_eq!(derived.len(), 12, "{derived:#?}");
        let by_code = |code: &str| -> Vec<&Value> {
            derived
                .iter()
                .copied()
                .filter(|o| o["code"]["coding"][0]["code"] == code)
                .collect()
        };
        let pos = |o: &Value| o["interpretation"][0]["coding"][0]["code"] == "POS";
        assert!(
            pos(by_code("88122-7")[0]),
            "food worry 'sometimes' is positive"
        );
        assert!(
            !pos(by_code("88123-5")[0]),
            "'never true' carries no interpretation"
        );
        assert!(pos(by_code("93030-5")[0]));
        assert!(by_code("71802-3")[0]["interpretation"].is_null());
        assert_eq!(
            by_code("95615-1")[0]["dataAbsentReason"]["coding"][0]["code"],
            "unknown"
        );
        assert!(by_code("95615-1")[0]["value"].is_null());
        let total = by_code("95614-4")[0];
        assert!(
            total["dataAbsentReason"].is_object(),
            "no total with a safety item skipped"
        );
        assert!(!pos(total), "3 + at most 5 is not above 10");
        for o in &derived {
            assert!(social_label(o), "{o}");
            let cats = o["category"].to_string();
            assert!(
                cats.contains("\"sdoh\"") && cats.contains("survey"),
                "{cats}"
            );
        }
        assert!(
            by_code("88122-7")[0]["category"]
                .to_string()
                .contains("food-insecurity")
        );

        let conditions = search(&app, &app.token, "/fhir/Condition?subject=Patient/p1").await;
        let mut codes: Vec<String> = conditions
            .iter()
            .map(|c| {
                c["code"]["coding"][1]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        codes.sort();
        assert_eq!(
            codes,
            ["Z59.41", "Z59.82"],
            "food and transportation are proposed"
        );
        for c in &conditions {
            assert_eq!(c["verificationStatus"]["coding"][0]["code"], "unconfirmed");
            assert!(c["category"].to_string().contains("health-concern"));
            assert!(social_label(c));
            assert!(
                c["evidence"][0]["detail"][0]["reference"]
                    .as_str()
                    .unwrap()
                    .starts_with("Observation/")
            );
        }

        // A bad answer, a total that is not the sum, a question the screen does not ask:
        // refused with the question named, and nothing written.
        let mut wrong = screening();
        wrong["item"][2]["answer"] = answer("LA33-6");
        let (status, outcome) = json_of(
            app.post_json("/fhir/QuestionnaireResponse", wrong.to_string())
                .await,
        )
        .await;
        assert_eq!(status, 422, "{outcome}");
        assert!(outcome.to_string().contains("88122-7"), "{outcome}");
        let mut total = screening();
        total["item"].as_array_mut().unwrap().extend([
            json!({"linkId": "95615-1", "answer": answer("LA6270-8")}),
            json!({"linkId": "95614-4", "answer": [{"valueInteger": 9}]}),
        ]);
        let (status, outcome) = json_of(
            app.post_json("/fhir/QuestionnaireResponse", total.to_string())
                .await,
        )
        .await;
        assert_eq!(status, 422, "{outcome}");
        assert!(outcome.to_string().contains("not the sum"), "{outcome}");
        let mut other = screening();
        other["item"][0]["linkId"] = json!("/93031-3");
        let (status, _) = json_of(
            app.post_json("/fhir/QuestionnaireResponse", other.to_string())
                .await,
        )
        .await;
        assert_eq!(status, 422);
        let responses = search(
            &app,
            &app.token,
            "/fhir/QuestionnaireResponse?subject=Patient/p1",
        )
        .await;
        assert_eq!(
            responses.len(),
            1,
            "nothing of the refused ones was written"
        );
        assert_eq!(
            search(
                &app,
                &app.token,
                "/fhir/Observation?subject=Patient/p1&_count=100"
            )
            .await
            .len(),
            observations.len()
        );

        // Clara's grant covers readings and her mother's record, not social needs.
        let clara = token_for(&app, "clara").await;
        let seen = search(
            &app,
            &clara,
            "/fhir/Observation?subject=Patient/p1&_count=100",
        )
        .await;
        assert!(
            seen.iter().all(|o| !social_label(o)),
            "no screening Observation reaches her"
        );
        assert!(
            search(&app, &clara, "/fhir/Condition?subject=Patient/p1")
                .await
                .is_empty()
        );
        assert!(
            search(
                &app,
                &clara,
                "/fhir/QuestionnaireResponse?subject=Patient/p1"
            )
            .await
            .is_empty()
        );
        for path in [
            format!("/fhir/QuestionnaireResponse/{qr_id}"),
            format!("/fhir/Observation/{qr_id}-88122-7"),
            format!("/fhir/Observation/{qr_id}-88122-7/_history/1"),
            format!("/fhir/Condition/{}", conditions[0]["id"].as_str().unwrap()),
        ] {
            let resp = app
                .client
                .get(app.url(&path))
                .bearer_auth(&clara)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 403, "{path}");
        }
        let history = search(&app, &clara, "/fhir/Observation/_history").await;
        assert!(
            history.iter().all(|o| !social_label(o)),
            "nor through history"
        );
        // Nor may she write a screening for her mother.
        let resp = app
            .client
            .post(app.url("/fhir/QuestionnaireResponse"))
            .bearer_auth(&clara)
            .header("content-type", "application/fhir+json")
            .body(screening().to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);

        // Once Ana's grant covers social needs, Clara sees them.
        let (_, mut grant) = json_of(app.get("/fhir/Consent/grant-rp1").await).await;
        grant["provision"]["code"].as_array_mut().unwrap().push(json!({"coding": [{"system": coproduce_app::accounts::GRANT_PART_SYSTEM, "code": "social-needs"}]}));
        let resp = app
            .put_json("/fhir/Consent/grant-rp1", grant.to_string(), None)
            .await;
        assert!(resp.status().is_success());
        assert_eq!(
            search(&app, &clara, "/fhir/Condition?subject=Patient/p1")
                .await
                .len(),
            2
        );
        let resp = app
            .client
            .get(app.url(&format!("/fhir/QuestionnaireResponse/{qr_id}")))
            .bearer_auth(&clara)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);

        // The patient says what she wants help with; a family member may not say it for her.
        let clock: Arc<dyn Clock> = app.clock.clone();
        let social = Social::new(
            FhirApi::new(app.db.store.clone(), clock.clone()),
            clock,
            Default::default(),
            Default::default(),
        );
        let ana = caller(&app, "ana").await;
        let needs = social.needs(&ana, "p1").await.unwrap();
        assert_eq!(needs.len(), 2);
        assert!(needs.iter().all(|n| n.choice.is_none()));
        let food = needs.iter().find(|n| n.text == "Food").unwrap().id.clone();
        let transport = needs
            .iter()
            .find(|n| n.text == "Transportation")
            .unwrap()
            .id
            .clone();
        social
            .choose(&ana, "p1", &food, Choice::WantHelp)
            .await
            .unwrap();
        social
            .choose(&ana, "p1", &transport, Choice::NotNow)
            .await
            .unwrap();
        let clara_caller = caller(&app, "clara").await;
        assert!(
            social
                .choose(&clara_caller, "p1", &food, Choice::NotNow)
                .await
                .is_err()
        );
        let needs = social
            .needs(&caller(&app, "sw.diaz").await, "p1")
            .await
            .unwrap();
        let choice = |id: &str| needs.iter().find(|n| n.id == id).unwrap().choice;
        assert_eq!(choice(&food), Some(Choice::WantHelp));
        assert_eq!(choice(&transport), Some(Choice::NotNow));
        // A change of mind replaces the choice; the Consent says what may be shared.
        social
            .choose(
                &caller(&app, "sw.diaz").await,
                "p1",
                &transport,
                Choice::WantHelp,
            )
            .await
            .unwrap();
        let consents = search(&app, &app.token, "/fhir/Consent?patient=Patient/p1").await;
        let choices: Vec<&Value> = consents.iter().filter(|c| social_label(c)).collect();
        assert_eq!(choices.len(), 2);
        assert!(choices.iter().all(|c| c["provision"]["type"] == "permit"));
        app.finish().await;
    }
}

#[tokio::test]
async fn the_ig_examples_import_and_their_screening_is_scored() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let data = crate::testdata().join("sdoh");
    app.db.store.close().await;
    let dirs = [
        data.join("examples/sdoh-cc"),
        data.join("examples/ahc-us-core"),
    ];
    let args: Vec<String> = std::iter::once("import".to_string())
        .chain(dirs.iter().map(|d| d.display().to_string()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, first) = crate::coproduce(&app.db.url, &args);
    assert!(ok, "{first}");
    let total: Vec<u64> = first
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(total[3], 0, "nothing rejected:\n{first}");
    let (ok, second) = crate::coproduce(&app.db.url, &args);
    assert!(ok, "{second}");
    assert!(second.contains("total"), "{second}");
    let again: Vec<u64> = second
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!((again[0], again[1], again[3]), (0, 0, 0), "{second}");
    let store = coproduce_store::Store::open(&app.db.url).await.unwrap();
    // US Core's screening (all answers negative but three housing problems) was scored:
    // the housing concern is proposed for its patient.
    let concern = store
        .current("Condition", "ahc-hrsn-screening-example-housing-quality")
        .await
        .unwrap()
        .expect("the housing concern");
    let v = concern.json().unwrap();
    assert_eq!(v["code"]["coding"][1]["code"], "Z59.10");
    assert!(social_label(&v));
    let task = store
        .current(
            "Task",
            "SDOHCC-TaskReferralManagementOrderFulfillmentCompletedExample",
        )
        .await
        .unwrap()
        .expect("the referral Task");
    assert!(
        social_label(&task.json().unwrap()),
        "an IG referral is social needs"
    );
    store.close().await;
    // And what was written exports as valid FHIR that imports back unchanged.
    let out = tempfile::tempdir().unwrap();
    let counts = crate::export_valid_and_reimport(
        &app.db.url,
        out.path(),
        &[
            "QuestionnaireResponse",
            "Observation",
            "Condition",
            "Task",
            "Consent",
        ],
    );
    assert_eq!((counts[0], counts[1], counts[3]), (0, 0, 0));
    app.finish().await;
}

#[tokio::test]
async fn the_directory_loads_whole_or_not_at_all() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.db.store.close().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("directory.csv");
    std::fs::write(&good, coproduce_app::demo::DIRECTORY_CSV).unwrap();
    let mut bad_text = coproduce_app::demo::DIRECTORY_CSV.to_string();
    bad_text.push_str("late-org,Late Org,late-svc,Late,groceries,en,,,,,app\n");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, bad_text).unwrap();
    let (ok, report) = crate::coproduce(&app.db.url, &["directory", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        report.contains("line 15") && report.contains("'groceries' is not a need"),
        "{report}"
    );
    assert!(report.contains("nothing was loaded"), "{report}");
    let count = |rt: &'static str| {
        let url = app.db.url.clone();
        async move {
            let store = coproduce_store::Store::open(&url).await.unwrap();
            let n = store
                .search(&coproduce_fhir::query::SearchQuery::all(rt))
                .await
                .unwrap()
                .total
                .expect("every match fits on the first page");
            store.close().await;
            n
        }
    };
    assert_eq!(
        count("HealthcareService").await,
        0,
        "nothing of the bad file"
    );
    let (ok, report) = crate::coproduce(&app.db.url, &["directory", good.to_str().unwrap()]);
    assert!(ok, "{report}");
    assert!(report.contains("25 directory records loaded"), "{report}");
    assert_eq!(count("Organization").await, 12);
    assert_eq!(count("HealthcareService").await, 13);

    // The measures' command: over a generated population, beside the published figure; a
    // breakdown it does not know is refused.
    let (ok, report) = crate::coproduce(
        &app.db.url,
        &[
            "social-needs",
            "--generated",
            "3000",
            "--seed",
            "3",
            "--by",
            "language",
        ],
    );
    assert!(ok, "{report}");
    assert!(report.contains("3000 generated patients"), "{report}");
    assert!(report.contains("published: 98 of 360 (27%)"), "{report}");
    assert!(
        report.contains("could-not-reach") && report.lines().any(|l| l.starts_with("ht ")),
        "{report}"
    );
    let (ok, report) = crate::coproduce(&app.db.url, &["social-needs", "--by", "planet"]);
    assert!(
        !ok && report.contains("--by takes language, age or sex"),
        "{report}"
    );
    app.finish().await;
}

/// Social needs over the test app's store, with the demo's directory loaded; Ana (p1) has
/// screened positive for food and transportation and asked help with food only (Friday
/// 2026-11-27 10:00 UTC). Returns the service and the two needs' ids.
/// The social-needs services over the app's store, with the demo's community directory.
pub(crate) async fn with_directory(app: &TestApp) -> Social {
    let clock: Arc<dyn Clock> = app.clock.clone();
    let social = Social::new(
        FhirApi::new(app.db.store.clone(), clock.clone()),
        clock,
        Default::default(),
        Default::default(),
    );
    let rows =
        coproduce_app::social::directory::parse_csv(coproduce_app::demo::DIRECTORY_CSV.as_bytes())
            .unwrap();
    social
        .load_directory(
            &coproduce_app::accounts::Caller::system("test:directory"),
            coproduce_app::social::directory::resources(&rows),
        )
        .await
        .unwrap();
    social
}

pub(crate) async fn screened_and_chosen(app: &TestApp) -> (Social, String, String) {
    let social = with_directory(app).await;
    let (status, _) = json_of(
        app.post_json("/fhir/QuestionnaireResponse", screening().to_string())
            .await,
    )
    .await;
    assert_eq!(status, 201);
    let ana = caller(app, "ana").await;
    let needs = social.needs(&ana, "p1").await.unwrap();
    let id = |text: &str| needs.iter().find(|n| n.text == text).unwrap().id.clone();
    let (food, transport) = (id("Food"), id("Transportation"));
    social
        .choose(&ana, "p1", &food, Choice::WantHelp)
        .await
        .unwrap();
    social
        .choose(&ana, "p1", &transport, Choice::NotNow)
        .await
        .unwrap();
    (social, food, transport)
}

#[tokio::test]
async fn a_referral_needs_the_patients_yes_and_escalates_once_when_not_accepted() {
    use coproduce_core::social::referral::{Ending, Status};
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("es").await;
        // Friday 2026-11-27 10:00 UTC: Ana screens positive for food and transportation and
        // asks for help with food only.
        let (social, food, transport) = screened_and_chosen(&app).await;
        let sw = caller(&app, "sw.diaz").await;
        let services = social
            .services_for(&sw, coproduce_core::social::ahc::Domain::Food)
            .await
            .unwrap();
        assert!(services.iter().any(|s| s.id == "eastside-pantry-groceries"));
        assert!(services.iter().all(|s| s.id != "rides-to-care-medical"));

        // Nothing is referred without her yes, to a service that does not meet the need, or
        // by someone who does not refer.
        let refused = social
            .refer(&sw, "p1", &transport, "rides-to-care-medical", "")
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("not asked for help"),
            "{refused}"
        );
        let refused = social
            .refer(&sw, "p1", &food, "rides-to-care-medical", "")
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("does not meet"), "{refused}");
        assert!(
            social
                .refer(
                    &caller(&app, "dr.okafor").await,
                    "p1",
                    &food,
                    "eastside-pantry-groceries",
                    ""
                )
                .await
                .is_err()
        );
        assert!(
            social.referrals(&sw, "p1").await.unwrap().is_empty(),
            "nothing written"
        );

        let task = social
            .refer(
                &sw,
                "p1",
                &food,
                "eastside-pantry-groceries",
                "Prefers Saturday",
            )
            .await
            .unwrap();
        let referrals = social.referrals(&sw, "p1").await.unwrap();
        assert_eq!(referrals.len(), 1);
        let r = &referrals[0];
        assert_eq!(
            (r.task.as_str(), r.status),
            (task.as_str(), Status::Requested)
        );
        assert_eq!(r.need.as_deref(), Some(food.as_str()));
        assert_eq!(r.organization, "Eastside Community Food Pantry");
        // Accepted within two business days: by the close of Tuesday.
        assert_eq!(r.due, Some(time::macros::datetime!(2026-12-01 17:00 UTC)));
        let (_, t) = json_of(app.get(&format!("/fhir/Task/{task}")).await).await;
        assert!(social_label(&t));
        assert_eq!(t["owner"]["reference"], "Organization/eastside-pantry");
        assert_eq!(
            t["focus"]["reference"].as_str().unwrap().split('/').next(),
            Some("ServiceRequest")
        );
        // Clara (no social-needs grant) does not see the referral among her mother's tasks.
        let clara = token_for(&app, "clara").await;
        let tasks = search(&app, &clara, "/fhir/Task?patient=Patient/p1").await;
        assert!(tasks.iter().all(|t| t["id"] != task.as_str()));

        // Not accepted by Tuesday's close: escalated to the social worker exactly once.
        app.clock.set(time::macros::datetime!(2026-12-01 16:59 UTC));
        assert_eq!(app.jobs.run_once().await.unwrap().deadlines.escalated, 0);
        app.clock.set(time::macros::datetime!(2026-12-01 17:01 UTC));
        assert_eq!(app.jobs.run_once().await.unwrap().deadlines.escalated, 1);
        assert_eq!(
            app.jobs.run_once().await.unwrap().deadlines.escalated,
            0,
            "once"
        );
        let (_, t) = json_of(app.get(&format!("/fhir/Task/{task}")).await).await;
        assert_eq!(t["performerType"][0]["coding"][0]["code"], "social-worker");

        // The clinic's side cancels with a reason; the request is revoked; no more deadline.
        assert!(
            social
                .cancel(&sw, "p1", &task, Ending::Declined)
                .await
                .is_ok()
        );
        let r = &social.referrals(&sw, "p1").await.unwrap()[0];
        assert_eq!(
            (r.status, r.ending, r.due),
            (Status::Cancelled, Some(Ending::Declined), None)
        );
        let (_, t) = json_of(app.get(&format!("/fhir/Task/{task}")).await).await;
        let (_, sr) = json_of(
            app.get(&format!(
                "/fhir/{}",
                t["focus"]["reference"].as_str().unwrap()
            ))
            .await,
        )
        .await;
        assert_eq!(sr["status"], "revoked");
        let again = social
            .cancel(&sw, "p1", &task, Ending::Declined)
            .await
            .unwrap_err();
        assert!(again.to_string().contains("cannot become"), "{again}");
        app.clock.set(time::macros::datetime!(2026-12-10 12:00 UTC));
        assert_eq!(app.jobs.run_once().await.unwrap().deadlines.escalated, 0);
        app.finish().await;
    }
}

#[tokio::test]
async fn an_organisation_moves_its_referral_through_the_api_by_the_igs_rules() {
    use coproduce_core::social::referral::{Ending, Status};
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("es").await;
    let (social, food, _) = screened_and_chosen(&app).await;
    let ana = caller(&app, "ana").await;
    let sw = caller(&app, "sw.diaz").await;
    let task = social
        .refer(&sw, "p1", &food, "eastside-pantry-groceries", "")
        .await
        .unwrap();
    let path = format!("/fhir/Task/{task}");
    let (_, mut t) = json_of(app.get(&path).await).await;
    use coproduce_core::social::referral::Helped;
    let early = social
        .helped(&ana, "p1", &task, Helped::Yes)
        .await
        .unwrap_err();
    assert!(
        early.to_string().contains("not taken this referral on"),
        "{early}"
    );

    // Monday 09:00: the pantry accepts; the team's deadline becomes the 14-day follow-up.
    app.clock.set(time::macros::datetime!(2026-11-30 09:00 UTC));
    t["status"] = json!("accepted");
    let (status, accepted) = json_of(app.put_json(&path, t.to_string(), None).await).await;
    assert_eq!(status, 200, "{accepted}");
    let r = &social.referrals(&sw, "p1").await.unwrap()[0];
    assert_eq!(r.status, Status::Accepted);
    assert_eq!(r.due, Some(time::macros::datetime!(2026-12-14 09:00 UTC)));
    assert_eq!(
        accepted["performerType"][0]["coding"][0]["code"],
        "community-health-worker"
    );

    // The clinic's side does not complete it; the organisation does, with its reason.
    let sw_token = token_for(&app, "sw.diaz").await;
    let mut done = accepted.clone();
    done["status"] = json!("completed");
    let resp = app
        .client
        .put(app.url(&path))
        .bearer_auth(&sw_token)
        .header("content-type", "application/fhir+json")
        .body(done.to_string())
        .send()
        .await
        .unwrap();
    let (status, outcome) = json_of(resp).await;
    assert_eq!(status, 422, "{outcome}");
    assert!(outcome.to_string().contains("organisation"), "{outcome}");
    let (status, outcome) = json_of(app.put_json(&path, done.to_string(), None).await).await;
    assert_eq!(status, 422, "an ending without its reason: {outcome}");
    done["statusReason"] = json!({"coding": [{"system": coproduce_app::social::referrals::ENDING, "code": "need-met"}]});
    let (status, outcome) = json_of(app.put_json(&path, done.to_string(), None).await).await;
    assert_eq!(status, 200, "{outcome}");
    let r = &social.referrals(&sw, "p1").await.unwrap()[0];
    assert_eq!(
        (r.status, r.ending, r.due),
        (Status::Completed, Some(Ending::NeedMet), None)
    );
    // Ana's own word, beside the pantry's: a later answer replaces the earlier one; the
    // social worker may not say it for her.
    social
        .helped(&ana, "p1", &task, Helped::Partly)
        .await
        .unwrap();
    social.helped(&ana, "p1", &task, Helped::Yes).await.unwrap();
    assert!(social.helped(&sw, "p1", &task, Helped::No).await.is_err());
    let said = social
        .helped_answers(&sw, "p1", std::slice::from_ref(&task))
        .await
        .unwrap();
    assert_eq!(said, vec![(task.clone(), Helped::Yes)]);
    let mut again = outcome.clone();
    again["status"] = json!("in-progress");
    let (status, _) = json_of(app.put_json(&path, again.to_string(), None).await).await;
    assert_eq!(status, 422, "a closed loop stays closed");
    app.clock.set(time::macros::datetime!(2026-12-30 12:00 UTC));
    assert_eq!(app.jobs.run_once().await.unwrap().deadlines.escalated, 0);

    // The store's measures: one patient of one screened, food and transportation positive,
    // one referral accepted and closed within 3 days with the need met by both accounts.
    let r = social
        .measures(&coproduce_app::accounts::Caller::system("test:measures"))
        .await
        .unwrap();
    let t = &r.overall;
    assert_eq!((t.patients, t.screened), (1, 1));
    assert_eq!(
        t.positive_rate(coproduce_core::social::ahc::Domain::Food),
        Some(1.0)
    );
    assert_eq!(
        t.positive_rate(coproduce_core::social::ahc::Domain::Utilities),
        Some(0.0)
    );
    assert_eq!((t.referrals, t.accepted, t.closed_loop), (1, 1, 1));
    assert_eq!(
        t.median_days_to_closure(),
        Some(2),
        "Friday 10:00 to Monday 09:00"
    );
    assert_eq!(
        (t.need_met_by_organisation(), t.need_met_by_patient()),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(r.by_language["es"].referrals, 1);
    // The whole loop as written (the screening, the choices, the directory, the referral,
    // the patient's word) exports as valid R4 and imports back unchanged.
    let out = tempfile::tempdir().unwrap();
    let counts = crate::export_valid_and_reimport(
        &app.db.url,
        out.path(),
        &[
            "QuestionnaireResponse",
            "Observation",
            "Condition",
            "Consent",
            "Organization",
            "HealthcareService",
            "ServiceRequest",
            "Task",
        ],
    );
    assert_eq!((counts[0], counts[1], counts[3]), (0, 0, 0));
    app.finish().await;
}
