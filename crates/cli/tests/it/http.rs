//! The FHIR REST API over HTTP: status codes, headers and OperationOutcomes.

use coproduce_testkit::{TestApp, TestBackend, backends};
use serde_json::{Value, json};

async fn outcome(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn create_read_update_delete_with_headers() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let resp = app
            .post_json(
                "/fhir/Patient",
                json!({"resourceType": "Patient", "name": [{"family": "Okafor"}]}).to_string(),
            )
            .await;
        assert_eq!(resp.status(), 201);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/fhir+json")
        );
        assert_eq!(resp.headers()["etag"], "W/\"1\"");
        assert!(resp.headers().contains_key("last-modified"));
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location.contains("/fhir/Patient/") && location.ends_with("/_history/1"),
            "{location}"
        );
        let body: Value = resp.json().await.unwrap();
        let id = body["id"].as_str().unwrap().to_string();

        let resp = app.get(&format!("/fhir/Patient/{id}")).await;
        assert_eq!(resp.status(), 200);
        let mut p: Value = resp.json().await.unwrap();
        p["gender"] = json!("female");
        let resp = app
            .put_json(
                &format!("/fhir/Patient/{id}"),
                p.to_string(),
                Some("W/\"1\""),
            )
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["etag"], "W/\"2\"");
        let (status, body) = outcome(
            app.put_json(
                &format!("/fhir/Patient/{id}"),
                p.to_string(),
                Some("W/\"1\""),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, body["resourceType"].as_str()),
            (412, Some("OperationOutcome"))
        );

        assert_eq!(
            app.get(&format!("/fhir/Patient/{id}/_history/1"))
                .await
                .status(),
            200
        );
        let hist: Value = app
            .get(&format!("/fhir/Patient/{id}/_history"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (hist["type"].as_str(), hist["total"].as_i64()),
            (Some("history"), Some(2))
        );

        assert_eq!(
            app.request(reqwest::Method::DELETE, &format!("/fhir/Patient/{id}"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let (status, body) = outcome(app.get(&format!("/fhir/Patient/{id}")).await).await;
        assert_eq!(
            (status, body["resourceType"].as_str()),
            (410, Some("OperationOutcome"))
        );
        let (status, body) = outcome(app.get("/fhir/Patient/never-was").await).await;
        assert_eq!(
            (status, body["issue"][0]["code"].as_str()),
            (404, Some("not-found"))
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_writes_nothing() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let cases: &[(&str, &str, u16)] = &[
        ("/fhir/Patient", "{not json", 400),
        (
            "/fhir/Patient",
            r#"{"resourceType":"Patient","birthDate":"1990-02-30"}"#,
            400,
        ),
        (
            "/fhir/Patient",
            r#"{"resourceType":"Patient","favouriteColour":"blue"}"#,
            400,
        ),
        (
            "/fhir/Patient",
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"}}"#,
            422,
        ),
        (
            "/fhir/Observation",
            r#"{"resourceType":"Observation","status":"final"}"#,
            422,
        ),
        ("/fhir/Robot", r#"{"resourceType":"Robot"}"#, 400),
    ];
    for (path, body, want) in cases {
        let (status, oo) = outcome(app.post_json(path, body.to_string()).await).await;
        assert_eq!(status, *want, "{path} {body}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }
    // The path and the reason are named.
    let (_, oo) = outcome(
        app.post_json(
            "/fhir/Patient",
            r#"{"resourceType":"Patient","birthDate":"1990-02-30"}"#,
        )
        .await,
    )
    .await;
    assert_eq!(oo["issue"][0]["expression"][0], "Patient.birthDate");
    assert_eq!(app.db.store.history_rows().await.unwrap(), 0);
    // An unknown search parameter is refused, not ignored.
    let (status, _) = outcome(app.get("/fhir/Observation?patinet=1").await).await;
    assert_eq!(status, 400);
    app.finish().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let config = coproduce_web::WebConfig {
        body_limit: 1024,
        secure_cookies: false,
        ..Default::default()
    };
    let app = TestApp::spawn_with(TestBackend::Sqlite, config).await;
    let big = json!({"resourceType": "Patient", "name": [{"text": "x".repeat(4096)}]}).to_string();
    let (status, oo) = outcome(app.post_json("/fhir/Patient", big).await).await;
    assert_eq!(
        (status, oo["resourceType"].as_str()),
        (413, Some("OperationOutcome"))
    );
    app.finish().await;
}

#[tokio::test]
async fn search_pages_with_links_and_includes() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.put_json(
        "/fhir/Patient/p1",
        r#"{"resourceType":"Patient","id":"p1"}"#,
        None,
    )
    .await;
    for i in 0..5 {
        let obs = json!({"resourceType": "Observation", "id": format!("g{i}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": format!("2026-11-0{}", i + 1)});
        assert_eq!(
            app.put_json(&format!("/fhir/Observation/g{i}"), obs.to_string(), None)
                .await
                .status(),
            201
        );
    }
    let page: Value = app
        .get("/fhir/Observation?patient=p1&_count=2&_sort=date&_include=Observation:patient")
        .await
        .json()
        .await
        .unwrap();
    // The first page does not count the matches it does not show (a next link says more
    // follow); `_total=accurate` asks for the count.
    assert_eq!(page.get("total"), None, "{page}");
    let counted: Value = app
        .get("/fhir/Observation?patient=p1&_count=2&_sort=date&_total=accurate")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(counted["total"], 5);
    assert_eq!(
        app.get("/fhir/Observation?patient=p1&_total=maybe")
            .await
            .status(),
        400
    );
    let entries = page["entry"].as_array().unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["search"]["mode"] == "match")
            .count(),
        2
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["search"]["mode"] == "include")
            .count(),
        1
    );
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let page2: Value = app
        .request(reqwest::Method::GET, &next)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["entry"][0]["resource"]["id"], "g2");
    let last: Value = app
        .get("/fhir/Observation?patient=p1&_count=2&_sort=date&_offset=4")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(last["total"], 5, "the last page knows the total: {last}");
    assert!(
        last["link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next"),
        "{last}"
    );
    // POST _search takes the parameters in a form body.
    let resp = app
        .request(reqwest::Method::POST, "/fhir/Observation/_search")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("patient=p1&_summary=count")
        .send()
        .await
        .unwrap();
    let count: Value = resp.json().await.unwrap();
    assert_eq!(
        (count["total"].as_i64(), count.get("entry")),
        (Some(5), None)
    );
    app.finish().await;
}

/// An unknown address answers 404 with something to read: a page with the way home (in the
/// browser's language), or an OperationOutcome under /fhir and /api.
#[tokio::test]
async fn unknown_addresses_answer_404_with_a_page_or_an_outcome() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let resp = app
        .client
        .get(app.url("/no/such/page"))
        .header("accept-language", "es")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let page = resp.text().await.unwrap();
    assert!(page.contains("lang=\"es\""), "{page}");
    assert!(page.contains("href=\"/\""), "{page}");
    let resp = app.get("/fhir/Patient/p1/no/such/thing").await;
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["code"], "not-found");
    app.finish().await;
}

#[tokio::test]
async fn metadata_health_and_metrics() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let cs: Value = app.get("/fhir/metadata").await.json().await.unwrap();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let obs = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    assert!(
        obs["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "patient")
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.get("/fhir/Patient/nobody").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/fhir/{rt}/{id}\""), "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds"));
    assert!(metrics.contains("db_pool_connections"));
    app.finish().await;
}

#[tokio::test]
async fn a_transaction_with_one_bad_entry_writes_nothing_over_http() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:0a6c2a1e-6d5e-4d1f-9d0e-3a8a8e2f1c11", "resource": {"resourceType": "Patient"},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final",
             "subject": {"reference": "urn:uuid:0a6c2a1e-6d5e-4d1f-9d0e-3a8a8e2f1c11"}},
             "request": {"method": "POST", "url": "Observation"}}]});
        let (status, oo) = outcome(app.post_json("/fhir", tx.to_string()).await).await;
        assert_eq!(status, 422, "{oo}");
        assert!(
            oo["issue"][0]["expression"][0]
                .as_str()
                .unwrap()
                .contains("entry[1]"),
            "{oo}"
        );
        assert_eq!(app.db.store.history_rows().await.unwrap(), 0);
        app.finish().await;
    }
}

/// A server holding one bare Patient, `id`.
async fn with_patient(backend: TestBackend, id: &str) -> TestApp {
    let app = TestApp::spawn(backend).await;
    let patient = json!({"resourceType": "Patient", "id": id});
    let resp = app
        .put_json(&format!("/fhir/Patient/{id}"), patient.to_string(), None)
        .await;
    assert!(resp.status().is_success(), "{id}: {}", resp.status());
    app
}

/// A batch's plain creates run side by side, sharing commits; the answers still line up
/// with the entries, a bad entry sinks none of the others, and every other entry (an update,
/// a read, a conditional create) runs after all before it, as a request of its own would.
#[tokio::test]
async fn a_batch_answers_each_entry_in_order_and_a_bad_one_sinks_nothing_else() {
    for backend in backends() {
        let app = with_patient(backend, "b1").await;
        let heart_rate = |n: usize| {
            json!({"resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/b1"},
                "valueQuantity": {"value": 60 + n, "unit": "/min"}},
                "request": {"method": "POST", "url": "Observation"}})
        };
        let conditional = json!({"resource": {"resourceType": "Observation", "status": "final",
            "identifier": [{"system": "urn:test", "value": "once"}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/b1"}},
            "request": {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=urn:test|once"}});
        let mut entries = vec![
            json!({"resource": {"resourceType": "Patient", "name": [{"family": "Batch"}]},
                "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/b1"}},
                "request": {"method": "POST", "url": "Patient"}}),
        ];
        entries.extend((0..70).map(heart_rate));
        entries.push(json!({"resource": {"resourceType": "Patient", "id": "b1", "name": [{"family": "Renamed"}]},
            "request": {"method": "PUT", "url": "Patient/b1"}}));
        entries.push(json!({"request": {"method": "GET", "url": "Patient/b1"}}));
        entries.push(conditional.clone());
        entries.push(conditional);
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        let (status, b) = outcome(app.post_json("/fhir", batch.to_string()).await).await;
        assert_eq!(status, 200, "{backend:?}: {b}");
        let answers = b["entry"].as_array().unwrap();
        assert_eq!(answers.len(), 76, "{backend:?}: one answer per entry");
        let status_of = |k: usize| answers[k]["response"]["status"].as_str().unwrap_or("");
        let location_of = |k: usize| answers[k]["response"]["location"].as_str().unwrap_or("");
        assert!(status_of(0).starts_with("201") && location_of(0).contains("Patient/"));
        assert!(
            status_of(1).starts_with('4'),
            "{backend:?}: an Observation posted as a Patient is refused: {}",
            answers[1]
        );
        for (k, answer) in answers.iter().enumerate().take(72).skip(2) {
            assert!(
                status_of(k).starts_with("201") && location_of(k).contains("Observation/"),
                "{backend:?} entry {k}: {answer}"
            );
        }
        assert!(
            status_of(72).starts_with("200"),
            "{backend:?}: {}",
            answers[72]
        );
        assert_eq!(
            answers[73]["resource"]["name"][0]["family"], "Renamed",
            "{backend:?}: the read comes after the update before it: {}",
            answers[73]
        );
        assert!(
            status_of(74).starts_with("201"),
            "{backend:?}: {}",
            answers[74]
        );
        assert!(
            status_of(75).starts_with("200"),
            "{backend:?}: the second conditional create finds the first: {}",
            answers[75]
        );
        let ids: std::collections::BTreeSet<&str> = (2..72).map(location_of).collect();
        assert_eq!(ids.len(), 70, "{backend:?}: seventy new Observations");
        let (_, found) = outcome(
            app.get("/fhir/Observation?subject=Patient/b1&_summary=count")
                .await,
        )
        .await;
        assert_eq!(found["total"], 71, "{backend:?}: {found}");
        app.finish().await;
    }
}

#[tokio::test]
async fn concurrent_updates_with_the_same_if_match_give_one_412() {
    for backend in backends() {
        let app = with_patient(backend, "c1").await;
        let body = r#"{"resourceType":"Patient","id":"c1","active":true}"#;
        let (a, b) = tokio::join!(
            app.put_json("/fhir/Patient/c1", body, Some("W/\"1\"")),
            app.put_json("/fhir/Patient/c1", body, Some("W/\"1\""))
        );
        let mut got = [a.status().as_u16(), b.status().as_u16()];
        got.sort_unstable();
        assert_eq!(got, [200, 412], "{backend:?}");
        app.finish().await;
    }
}

#[tokio::test]
async fn a_database_failure_is_a_5xx_never_a_client_error() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.db.store.close().await; // the database goes away
    let resp = app.get("/fhir/Patient").await;
    // A database that cannot be reached is the site's passing failure: 503, try again.
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["code"], "transient");
    assert!(
        !body.to_string().to_lowercase().contains("sqlite"),
        "no database internals: {body}"
    );
    assert_eq!(app.get("/healthz").await.status(), 503);
}

/// A read, a search and a history send the JSON as the store keeps it (not rebuilt), and a
/// stored row that is not JSON is a 500 with an OperationOutcome: never passed on to the
/// client.
#[tokio::test]
async fn reads_searches_and_histories_send_the_stored_json_and_a_corrupt_row_is_a_5xx() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let body = r#"{"resourceType":"Patient","id":"c9","name":[{"family":"Okafor","given":["Ngozi"]}],"birthDate":"1961-04-12"}"#;
    assert_eq!(
        app.put_json("/fhir/Patient/c9", body, None).await.status(),
        201
    );
    let resp = app.get("/fhir/Patient/c9").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "W/\"1\"");
    let sent = resp.text().await.unwrap();
    let stored = app.db.store.read("Patient", "c9").await.unwrap();
    assert_eq!(Some(&sent), stored.content.as_ref(), "sent as stored");
    let v: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(v["name"][0]["given"][0], "Ngozi");
    assert_eq!(v["meta"]["versionId"], "1");
    for bundle in ["/fhir/Patient?_id=c9", "/fhir/Patient/c9/_history"] {
        let resp = app.get(bundle).await;
        assert_eq!(resp.status(), 200, "{bundle}");
        let text = resp.text().await.unwrap();
        assert!(
            text.contains(&sent),
            "{bundle} carries it as stored: {text}"
        );
        let b: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(b["entry"][0]["resource"], v, "{bundle}");
        assert_eq!(b["total"], 1, "{bundle}");
    }
    // Spaced out as no serializer writes it: what a search sends is the stored text itself,
    // not a tree rebuilt from it.
    let spaced = sent.replace(",\"", ", \"");
    assert_ne!(spaced, sent);
    crate::sqlite_behind_the_store(
        &app.db.url,
        &[&format!(
            "UPDATE resources SET content = '{}' WHERE id = 'c9'",
            spaced.replace('\'', "''")
        )],
    )
    .await;
    let text = app.get("/fhir/Patient?_id=c9").await.text().await.unwrap();
    assert!(text.contains(&spaced), "sent as stored: {text}");

    crate::sqlite_behind_the_store(
        &app.db.url,
        &["UPDATE resources SET content = '{\"resourceType\":\"Patient\",' WHERE id = 'c9'"],
    )
    .await;
    for path in ["/fhir/Patient/c9", "/fhir/Patient?_id=c9"] {
        let (status, body) = outcome(app.get(path).await).await;
        assert_eq!(status, 500, "{path}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome", "{path}");
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_health_data_is_never_cached() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let mut ana = app.sign_in("ana").await;
    ana.get("/").await;
    let page = ana
        .client
        .get(format!("{}/patients/p1", ana.base))
        .send()
        .await
        .unwrap();
    let api = app.get("/fhir/Patient/p1").await;
    let login = app
        .visitor()
        .client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap();
    let missing = app.get("/nowhere").await;
    for (what, resp) in [
        ("page", &page),
        ("API", &api),
        ("sign-in", &login),
        ("404", &missing),
    ] {
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{what}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert!(
            !h.contains_key("strict-transport-security"),
            "{what}: no HSTS on a site reached over plain HTTP"
        );
    }
    // The static files may be cached: they carry no one's data.
    let css = app.get("/static/app.css").await;
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public")
    );
    // No page runs inline script: the CSP would block it.
    for path in [
        "/patients/p1",
        "/patients/p1/summary",
        "/patients/p1/social",
        "/account",
    ] {
        let (status, html) = ana.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !html.contains("onclick=") && !html.contains("javascript:"),
            "{path}"
        );
        for script in html.split("<script").skip(1) {
            assert!(
                script.trim_start().starts_with("src="),
                "{path}: inline script"
            );
        }
    }
    app.finish().await;
}
