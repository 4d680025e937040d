//! The holes a security review found, each shown closed through the real API and pages:
//! confidential records reaching family through queries, a proxy rewriting the care team,
//! records without a patient open to every team member, and the hardening items.

use coproduce_app::accounts::{NewToken, NewUser};
use coproduce_core::access::Role;
use coproduce_testkit::{TestApp, backends};
use reqwest::Method;
use serde_json::{Value, json};

/// A `user/*.cruds` token acting as `username`.
async fn token_of(app: &TestApp, username: &str) -> String {
    let (_, secret) = app
        .accounts
        .issue_token(NewToken {
            username: Some(username.into()),
            name: format!("{username}-app"),
            scopes: "user/*.cruds".into(),
            patient: None,
            expires_in: None,
        })
        .await
        .expect("a token");
    secret
}

/// Adds an account with the test password, linked to `link` when given.
async fn add_account(app: &TestApp, username: &str, role: Role, link: Option<&str>) {
    app.accounts
        .add_user(NewUser {
            username: username.into(),
            roles: vec![role],
            fhir_ref: link.map(str::to_string),
            password: Some(coproduce_testkit::PASSWORD.into()),
        })
        .await
        .expect("a test account");
}

/// A GET with a token.
async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    call(app, token, Method::GET, path, None).await
}

/// A call with a token: the status and the JSON answer.
async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/fhir+json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("a request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn weight(id: &str, kg: &str, confidential: bool) -> Value {
    let mut v = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-20T09:00:00Z",
        "valueQuantity": {"value": kg.parse::<f64>().unwrap(), "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    });
    if confidential {
        v["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]});
    }
    v
}

fn ids_in(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn confidential_records_reach_no_family_member_through_any_query() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        for (id, kg, confidential) in [("w-open", "71.2", false), ("w-conf", "63.7", true)] {
            let resp = app
                .put_json(
                    &format!("/fhir/Observation/{id}"),
                    weight(id, kg, confidential).to_string(),
                    None,
                )
                .await;
            assert!(resp.status().is_success(), "{backend:?} {id}");
        }
        let clara = token_of(&app, "clara").await;
        let dr = token_of(&app, "dr.okafor").await;

        assert_eq!(get(&app, &clara, "/fhir/Observation/w-conf").await.0, 403);
        assert_eq!(get(&app, &clara, "/fhir/Observation/w-open").await.0, 200);
        for path in [
            "/fhir/Observation?_id=w-conf",
            "/fhir/Observation?patient=p1",
            "/fhir/Observation?_id=w-conf,w-open",
            "/fhir/Patient?_id=p1&_revinclude=Observation:patient",
            "/fhir/Observation/_history",
        ] {
            let (status, b) = get(&app, &clara, path).await;
            assert_eq!(status, 200, "{backend:?} {path}");
            let ids = ids_in(&b);
            assert!(!ids.contains(&"w-conf".to_string()), "{backend:?} {path}");
            let (_, b) = get(&app, &dr, path).await;
            assert!(
                ids_in(&b).contains(&"w-conf".to_string()),
                "{backend:?} {path}: the care team still sees it"
            );
        }
        let (_, count) = get(&app, &clara, "/fhir/Observation?_id=w-conf&_summary=count").await;
        assert_eq!(count["total"], 0, "{backend:?}: the count leaves it out");
        let (_, count) = get(&app, &dr, "/fhir/Observation?_id=w-conf&_summary=count").await;
        assert_eq!(count["total"], 1);
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": "Observation/w-conf"}},
            {"request": {"method": "GET", "url": "Observation?patient=p1"}}]});
        let (status, b) = call(&app, &clara, Method::POST, "/fhir", Some(batch.clone())).await;
        assert_eq!(status, 200);
        assert!(
            !b["entry"][0]["response"]["status"]
                .as_str()
                .unwrap_or_default()
                .starts_with("200"),
            "{backend:?}: a batch read {}",
            b["entry"][0]
        );
        assert!(!b.to_string().contains("63.7"), "{backend:?}: {b}");
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "GET", "url": "Observation?_id=w-conf"}}]});
        let (status, b) = call(&app, &clara, Method::POST, "/fhir", Some(tx)).await;
        assert_eq!(status, 200, "{b}");
        assert!(!b.to_string().contains("63.7"), "{backend:?}: {b}");

        // Labelled later: every version is then confidential, the first included.
        let resp = app
            .put_json(
                "/fhir/Observation/w-open",
                weight("w-open", "71.2", true).to_string(),
                None,
            )
            .await;
        assert!(resp.status().is_success());
        assert_eq!(
            get(&app, &clara, "/fhir/Observation/w-open/_history/1")
                .await
                .0,
            403
        );
        let (_, h) = get(&app, &clara, "/fhir/Observation/_history").await;
        assert!(
            !ids_in(&h).contains(&"w-open".to_string()),
            "{backend:?}: {h}"
        );
        assert_eq!(
            get(&app, &dr, "/fhir/Observation/w-open/_history/1")
                .await
                .0,
            200
        );

        // The pages: Clara's view of Ana's weight and the readings export.
        let mut clara_web = app.sign_in("clara").await;
        let mut dr_web = app.sign_in("dr.okafor").await;
        for page in ["/patients/p1/readings/weight", "/patients/p1/readings.csv"] {
            let (status, text) = clara_web.get(page).await;
            assert_eq!(status, 200, "{backend:?} {page}");
            assert!(!text.contains("63.7"), "{backend:?} {page}");
            let (_, text) = dr_web.get(page).await;
            assert!(
                text.contains("63.7"),
                "{backend:?} {page}: the team sees it"
            );
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn only_the_named_roles_change_who_may_open_a_chart() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        app.put_json(
            "/fhir/Practitioner/kim",
            r#"{"resourceType":"Practitioner","id":"kim"}"#,
            None,
        )
        .await;
        for (name, role, link) in [
            ("rr.kim", Role::RapidResponse, "Practitioner/kim"),
            ("lead.ng", Role::ClinicLead, "Practitioner/dr"),
        ] {
            add_account(&app, name, role, Some(link)).await;
        }
        let clara = token_of(&app, "clara").await;
        let ana = token_of(&app, "ana").await;
        let nurse = token_of(&app, "nurse.lee").await;
        let kim = token_of(&app, "rr.kim").await;
        let dr = token_of(&app, "dr.okafor").await;
        let team_with_kim = json!({"resourceType": "CareTeam", "status": "active",
            "subject": {"reference": "Patient/p1"},
            "participant": [{"member": {"reference": "Practitioner/kim"}}]});
        let (_, current) = call(&app, &dr, Method::GET, "/fhir/CareTeam/team-p1", None).await;
        let mut inactive = current.clone();
        inactive["status"] = json!("inactive");
        inactive.as_object_mut().unwrap().remove("meta");
        for (who, token) in [("clara", &clara), ("ana", &ana), ("nurse", &nurse)] {
            let (status, _) = call(
                &app,
                token,
                Method::POST,
                "/fhir/CareTeam",
                Some(team_with_kim.clone()),
            )
            .await;
            assert_eq!(status, 403, "{backend:?}: {who} adds rr.kim");
            let (status, _) = call(
                &app,
                token,
                Method::PUT,
                "/fhir/CareTeam/team-p1",
                Some(inactive.clone()),
            )
            .await;
            assert_eq!(status, 403, "{backend:?}: {who} ends the team");
            let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": team_with_kim, "request": {"method": "POST", "url": "CareTeam"}}]});
            let (status, _) = call(&app, token, Method::POST, "/fhir", Some(tx)).await;
            assert_eq!(status, 403, "{backend:?}: {who} in a transaction");
        }
        // Nothing changed: rr.kim is still outside, Dr Okafor still in.
        assert_eq!(
            call(&app, &kim, Method::GET, "/fhir/Patient/p1", None)
                .await
                .0,
            403
        );
        assert_eq!(
            call(&app, &dr, Method::GET, "/fhir/Patient/p1", None)
                .await
                .0,
            200
        );
        // A grant is the patient's (or the clinicians', recording it), never the proxy's.
        let (_, grant) = call(&app, &dr, Method::GET, "/fhir/Consent/grant-rp1", None).await;
        let mut widened = grant.clone();
        widened.as_object_mut().unwrap().remove("meta");
        widened["provision"]["period"] = json!({"end": "2099-01-01"});
        for (who, token, want) in [("clara", &clara, 403), ("nurse", &nurse, 403)] {
            let (status, _) = call(
                &app,
                token,
                Method::PUT,
                "/fhir/Consent/grant-rp1",
                Some(widened.clone()),
            )
            .await;
            assert_eq!(status, want, "{backend:?}: {who} rewrites the grant");
        }
        assert_eq!(
            call(
                &app,
                &ana,
                Method::PUT,
                "/fhir/Consent/grant-rp1",
                Some(widened)
            )
            .await
            .0,
            200,
            "{backend:?}: the patient keeps her grants"
        );
        // The clinician on the team adds rr.kim, who then reaches the chart.
        let (status, _) = call(
            &app,
            &dr,
            Method::POST,
            "/fhir/CareTeam",
            Some(team_with_kim),
        )
        .await;
        assert_eq!(status, 201, "{backend:?}");
        assert_eq!(
            call(&app, &kim, Method::GET, "/fhir/Patient/p1", None)
                .await
                .0,
            200
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn provenance_belongs_to_its_chart_and_the_directory_to_its_keepers() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        for (name, role, link) in [
            ("rr.kim", Role::RapidResponse, "Practitioner/kim"),
            ("sw.ben", Role::SocialWorker, "Practitioner/ben"),
        ] {
            add_account(&app, name, role, Some(link)).await;
        }
        add_account(&app, "admin", Role::Admin, None).await;
        let dr = token_of(&app, "dr.okafor").await;
        let kim = token_of(&app, "rr.kim").await;
        let ben = token_of(&app, "sw.ben").await;
        let admin = token_of(&app, "admin").await;
        // Dr Okafor records a reading: its Provenance is in Ana's chart.
        let (status, obs) = call(
            &app,
            &dr,
            Method::POST,
            "/fhir/Observation",
            Some(weight("x", "70.1", false)),
        )
        .await;
        assert_eq!(status, 201);
        let target = format!("Observation/{}", obs["id"].as_str().unwrap());
        let (_, found) = call(
            &app,
            &dr,
            Method::GET,
            &format!("/fhir/Provenance?target={target}"),
            None,
        )
        .await;
        let prov = found["entry"][0]["resource"].clone();
        let pid = prov["id"].as_str().expect("a Provenance in the chart");
        // Built before the write took the writer, it names the version written and the
        // instant the reading was recorded at, and its author.
        assert_eq!(
            prov["target"][0]["reference"],
            json!(format!("{target}/_history/1"))
        );
        assert_eq!(prov["recorded"], obs["meta"]["lastUpdated"]);
        assert_eq!(prov["agent"][0]["who"]["reference"], "Practitioner/dr");
        let path = format!("/fhir/Provenance/{pid}");
        // Off the team: not read, not rewritten, not deleted.
        assert_eq!(call(&app, &kim, Method::GET, &path, None).await.0, 403);
        let mut forged = prov.clone();
        forged.as_object_mut().unwrap().remove("meta");
        forged["agent"][0]["who"] = json!({"reference": "Practitioner/kim"});
        assert_eq!(
            call(&app, &kim, Method::PUT, &path, Some(forged.clone()))
                .await
                .0,
            403
        );
        assert_eq!(call(&app, &ben, Method::DELETE, &path, None).await.0, 403);
        // On the team, or an integration: still never rewritten or deleted.
        assert_eq!(
            call(&app, &dr, Method::PUT, &path, Some(forged)).await.0,
            403
        );
        assert_eq!(call(&app, &dr, Method::DELETE, &path, None).await.0, 403);
        assert_eq!(
            app.request(Method::DELETE, &path)
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        let (status, kept) = call(&app, &dr, Method::GET, &path, None).await;
        assert_eq!(status, 200);
        assert_eq!(kept["agent"], prov["agent"], "{backend:?}: unchanged");
        // The shared directory: team members read it; admins and integrations keep it.
        let mut doctor = call(&app, &dr, Method::GET, "/fhir/Practitioner/dr", None)
            .await
            .1;
        doctor.as_object_mut().unwrap().remove("meta");
        doctor["name"] = json!([{"family": "Impostor"}]);
        for token in [&kim, &ben, &dr] {
            assert_eq!(
                call(
                    &app,
                    token,
                    Method::PUT,
                    "/fhir/Practitioner/dr",
                    Some(doctor.clone())
                )
                .await
                .0,
                403
            );
            assert_eq!(
                call(
                    &app,
                    token,
                    Method::POST,
                    "/fhir/Organization",
                    Some(json!({"resourceType": "Organization", "name": "X"}))
                )
                .await
                .0,
                403
            );
        }
        assert_eq!(
            call(&app, &dr, Method::GET, "/fhir/Practitioner/dr", None)
                .await
                .1["name"][0]["family"],
            "Okafor"
        );
        assert_eq!(
            call(
                &app,
                &admin,
                Method::PUT,
                "/fhir/Practitioner/dr",
                Some(doctor)
            )
            .await
            .0,
            200,
            "{backend:?}: an administrator keeps the directory"
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn exports_open_as_text_and_redirects_stay_on_the_site() {
    let app = coproduce_testkit::TestApp::spawn(coproduce_testkit::TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut reading = weight("w1", "70.4", false);
    // A reading from outside, with no tags and a performer whose name is a formula.
    reading["performer"] = json!([{"display": "@SUM(1+1)*cmd|' /C calc'!A0"}]);
    assert!(
        app.put_json("/fhir/Observation/w1", reading.to_string(), None)
            .await
            .status()
            .is_success()
    );
    let mut dr = app.sign_in("dr.okafor").await;
    dr.get("/patients/p1").await;
    // A review comment that is a formula, with a way back that leaves the site.
    for back in [
        "/\t/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
    ] {
        let resp = dr
            .post(
                "/patients/p1/observations/w1/review",
                &[
                    ("comment", "=HYPERLINK(\"http://evil.example\")"),
                    ("back", back),
                ],
            )
            .await;
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert_eq!(status, 303, "{back:?}: {}", resp.text().await.unwrap());
        assert!(
            location.starts_with("/?"),
            "{back:?} sent the browser to {location}"
        );
        dr.get("/patients/p1").await;
    }
    let resp = dr
        .post(
            "/account/language",
            &[("lang", "es"), ("back", "/patients/p1?x=1")],
        )
        .await;
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        "/patients/p1?ok=note-language",
        "a path on the site is followed"
    );
    let (status, csv) = dr.get("/patients/p1/readings.csv").await;
    assert_eq!(status, 200);
    assert!(
        csv.contains("'=HYPERLINK"),
        "the comment is text in a spreadsheet: {csv}"
    );
    assert!(csv.contains("'@SUM(1+1)"), "so is the performer: {csv}");
    assert!(!csv.contains(",=") && !csv.contains(",@"), "{csv}");
    app.finish().await;
}

#[tokio::test]
async fn a_notification_is_marked_read_only_by_someone_whose_inbox_shows_it() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        for (path, body) in [
            (
                "/fhir/Patient/p2",
                json!({"resourceType": "Patient", "id": "p2"}),
            ),
            (
                "/fhir/Practitioner/rn2",
                json!({"resourceType": "Practitioner", "id": "rn2"}),
            ),
            (
                "/fhir/CareTeam/team-p2",
                json!({"resourceType": "CareTeam", "id": "team-p2", "status": "active",
                    "subject": {"reference": "Patient/p2"},
                    "participant": [{"member": {"reference": "Practitioner/rn2"}}]}),
            ),
        ] {
            assert!(
                app.put_json(path, body.to_string(), None)
                    .await
                    .status()
                    .is_success()
            );
        }
        add_account(&app, "nurse.two", Role::Nurse, Some("Practitioner/rn2")).await;
        // An alert for the nurses of Ana's team.
        let mut tx = app.db.store.begin().await.unwrap();
        tx.insert_notification(&coproduce_store::NotificationRow {
            id: "n-ana".into(),
            created_at: 0,
            patient_id: Some("p1".into()),
            recipient: "role:nurse".into(),
            channel: "inapp".into(),
            language: "en".into(),
            kind: "rescue-started".into(),
            params: "{}".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let read_at = || async {
            app.db
                .store
                .notifications_for(&["role:nurse".to_string()], None, 10)
                .await
                .unwrap()[0]
                .read_at
        };
        let mut other = app.sign_in("nurse.two").await;
        other.get("/notifications").await;
        let resp = other.post("/notifications/n-ana/read", &[]).await;
        assert_eq!(resp.status(), 404, "{backend:?}: another team's alert");
        assert_eq!(read_at().await, None, "{backend:?}");
        let mut lee = app.sign_in("nurse.lee").await;
        lee.get("/notifications").await;
        let resp = lee.post("/notifications/n-ana/read", &[]).await;
        assert_eq!(resp.status(), 303, "{backend:?}: Ana's nurse");
        assert!(read_at().await.is_some(), "{backend:?}");
        app.finish().await;
    }
}

#[tokio::test]
async fn bad_input_gets_a_4xx_never_a_500() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("en").await;
        let sys = app.token.clone();
        let dr = token_of(&app, "dr.okafor").await;
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("x{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        for path in [
            "/fhir/Observation?_offset=99999999999999999999".to_string(),
            "/fhir/Observation?_offset=9223372036854775808".to_string(),
            "/fhir/Observation/_history?_offset=9223372036854775808".to_string(),
            format!("/fhir/Observation?_id={}", many(1500)),
            format!("/fhir/Observation?code={}", many(1500)),
            "/fhir/Observation?_id=a%00b".to_string(),
            "/fhir/Patient?name=an%00a".to_string(),
        ] {
            for token in [&sys, &dr] {
                let (status, outcome) = get(&app, token, &path).await;
                assert!(
                    (400..500).contains(&status),
                    "{backend:?} {}: {status} {outcome}",
                    &path[..path.len().min(60)]
                );
                assert_eq!(outcome["resourceType"], "OperationOutcome");
            }
        }
        let (status, b) = get(&app, &sys, "/fhir/Observation?_offset=9223372036854775807").await;
        assert_eq!(
            status, 200,
            "{backend:?}: the largest offset is just an empty page: {b}"
        );
        // U+0000 in a resource, in an id, and the largest number JSON allows as a reading.
        let before = get(&app, &sys, "/fhir/Observation?_summary=count").await.1["total"].clone();
        let mut with_nul = weight("nul", "70", false);
        with_nul["note"] = json!([{"text": "a\u{0}b"}]);
        let mut huge = weight("huge", "70", false);
        huge["valueQuantity"]["value"] = serde_json::from_str::<Value>("1e400").unwrap();
        for (path, body) in [
            ("/fhir/Observation/nul", with_nul),
            ("/fhir/Observation/huge", huge),
            ("/fhir/Observation/a%00b", weight("a\u{0}b", "70", false)),
        ] {
            let (status, outcome) = call(&app, &sys, Method::PUT, path, Some(body)).await;
            assert!(
                (400..500).contains(&status),
                "{backend:?} {path}: {status} {outcome}"
            );
        }
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": weight("ok", "70", false), "request": {"method": "PUT", "url": "Observation/ok"}},
            {"resource": {"resourceType": "Patient", "id": "p9", "name": [{"text": "x\u{0}"}]}, "request": {"method": "PUT", "url": "Patient/p9"}}]});
        let (status, _) = call(&app, &sys, Method::POST, "/fhir", Some(tx)).await;
        assert!((400..500).contains(&status), "{backend:?}: {status}");
        assert_eq!(
            get(&app, &sys, "/fhir/Observation?_summary=count").await.1["total"],
            before,
            "{backend:?}: nothing stored"
        );
        // The sign-in form with U+0000: refused before sign-in is tried, saying where, not a
        // server error.
        let resp =
            crate::sessions::sign_in(&app, &crate::sessions::client(), "ana\u{0}", "x\u{0}y").await;
        assert_eq!(
            resp.status(),
            422,
            "{backend:?}: refused, not a server error"
        );
        let page = resp.text().await.unwrap();
        assert!(
            page.contains("invisible character (U+0000)") && page.contains("username"),
            "{backend:?}: {page}"
        );
        // Break-glass for longer than any Duration: refused and audited.
        let rows_before = app.db.store.audit_count().await.unwrap();
        let resp = app
            .client
            .post(app.url("/api/break-glass"))
            .bearer_auth(token_of(&app, "nurse.lee").await)
            .json(&json!({"patient": "Patient/p1", "reason": "called by the ED about a fall", "minutes": i64::MAX}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{backend:?}");
        assert_eq!(app.db.store.audit_count().await.unwrap(), rows_before + 1);
        // An unknown parameter is refused, unless the client asks for lenient handling.
        let (status, _) = call(
            &app,
            &sys,
            Method::PUT,
            "/fhir/Observation/ok",
            Some(weight("ok", "70", false)),
        )
        .await;
        assert_eq!(status, 201);
        let unknown = "/fhir/Observation?patient=p1&no-such-parameter=1";
        assert_eq!(get(&app, &sys, unknown).await.0, 400);
        let resp = app
            .request(Method::GET, unknown)
            .header("prefer", "handling=lenient")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{backend:?}");
        let b: Value = resp.json().await.unwrap();
        assert!(
            b.to_string().contains("no-such-parameter") && b["total"].as_i64() > Some(0),
            "{backend:?}: {b}"
        );
        app.finish().await;
    }
}

/// What the server answers on a connection before closing it, within 20 seconds (the test's
/// bound; the server's limits are a second).
pub(crate) async fn closed_within_20_s(
    conn: &mut tokio::net::TcpStream,
    waiting_for: &str,
) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        conn.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "the server still waits for {waiting_for} after 20 s"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn one_request_cannot_hold_the_writer_or_a_connection() {
    use tokio::io::AsyncWriteExt;
    let app = coproduce_testkit::TestApp::spawn_with(
        coproduce_testkit::TestBackend::Sqlite,
        coproduce_web::WebConfig {
            secure_cookies: false,
            body_timeout: std::time::Duration::from_secs(1),
            header_timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    app.seed_care_team("en").await;
    let ana = token_of(&app, "ana").await;
    let entries: Vec<Value> = (0..1001)
        .map(|i| json!({"resource": weight(&format!("many-{i}"), "70", false), "request": {"method": "PUT", "url": format!("Observation/many-{i}")}}))
        .collect();
    for kind in ["transaction", "batch"] {
        let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": entries});
        let (status, outcome) = call(&app, &ana, Method::POST, "/fhir", Some(bundle)).await;
        assert_eq!(status, 422, "{kind}: {outcome}");
        assert_eq!(outcome["issue"][0]["code"], "too-costly");
        assert!(
            outcome["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("at most 1000"),
            "{outcome}"
        );
    }
    let (_, count) = get(&app, &app.token, "/fhir/Observation?_summary=count").await;
    assert_eq!(count["total"], 0, "nothing written");
    // A body promised but never sent: the server answers and closes instead of waiting.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /fhir/Observation HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ana}\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{{\"resourceType\""
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let answer = closed_within_20_s(&mut conn, "the body").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Headers trickled and never finished: the connection is closed.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    closed_within_20_s(&mut conn, "the headers").await;
    app.finish().await;
}

#[tokio::test]
async fn links_and_locations_name_the_configured_site_not_the_host_header() {
    let app = coproduce_testkit::TestApp::spawn_with(
        coproduce_testkit::TestBackend::Sqlite,
        coproduce_web::WebConfig {
            secure_cookies: false,
            public_url: "https://clinic.example.org".into(),
            ..Default::default()
        },
    )
    .await;
    let resp = app
        .request(Method::POST, "/fhir/Patient")
        .header("host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Patient"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // Reached over HTTPS: browsers are told never to come back over plain HTTP.
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://clinic.example.org/fhir/Patient/"),
        "{location}"
    );
    let b: Value = app
        .request(Method::GET, "/fhir/Patient")
        .header("host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = b.to_string();
    assert!(!text.contains("evil.example"), "{text}");
    assert!(
        b["link"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://clinic.example.org/fhir/Patient?"),
        "{b}"
    );
    app.finish().await;
}

#[tokio::test]
async fn an_id_no_resource_can_have_is_refused_before_the_database_sees_it() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let sys = app.token.clone();
        for (method, path) in [
            (Method::GET, "/fhir/Patient/a%00b"),
            (Method::GET, "/fhir/Patient/a%00b/_history"),
            (Method::GET, "/fhir/Patient/a%00b/_history/1"),
            (Method::DELETE, "/fhir/Patient/a%00b"),
            (Method::GET, "/fhir/Patient/a%20b"),
        ] {
            let (status, outcome) = call(&app, &sys, method.clone(), path, None).await;
            assert!(
                (400..500).contains(&status),
                "{backend:?} {method} {path}: {status} {outcome}"
            );
            assert_eq!(outcome["resourceType"], "OperationOutcome", "{path}");
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn the_sealed_audit_head_shows_rows_cut_from_the_end_on_every_backend() {
    use sqlx::Connection;
    for backend in backends() {
        let db = coproduce_testkit::TestDb::new(backend).await;
        let store = db.store.clone().with_audit_key([7; 32]);
        for i in 0..5 {
            store
                .audit(&coproduce_store::AuditEntry {
                    at: i,
                    actor: "test".into(),
                    action: "read".into(),
                    outcome: "allowed".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        assert_eq!(
            store.verify_audit().await.unwrap(),
            coproduce_store::AuditVerdict::Intact(5)
        );
        // Cut the newest row and rewrite the head to match, as someone with the database
        // but not the key would.
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        for sql in [
            "DELETE FROM audit_log WHERE seq = 5",
            "UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit_log WHERE seq = 4)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
        assert!(
            matches!(
                store.verify_audit().await.unwrap(),
                coproduce_store::AuditVerdict::Broken { .. }
            ),
            "{backend:?}"
        );
        assert_eq!(
            db.store.verify_audit().await.unwrap(),
            coproduce_store::AuditVerdict::Intact(4),
            "{backend:?}: without the key the rewrite cannot be told"
        );
        db.drop_db().await;
    }
}
