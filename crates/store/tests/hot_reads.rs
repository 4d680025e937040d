//! On an SQLite file the hot reads (a resource by id, a search and its includes, a token)
//! run on rusqlite readers of their own, not on sqlx's pools. They must see every committed
//! write at once, bind a panel's thousands of arguments to the right places, and agree
//! with PostgreSQL (which reads through sqlx). Run on every backend.

use coproduce_app::FhirApi;
use coproduce_app::accounts::Caller;
use coproduce_fhir::query::SearchQuery;
use coproduce_testkit::{TestBackend, backends, fake_clock};
use serde_json::json;
use std::collections::BTreeSet;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn hot_reads(backend: TestBackend) {
    let db = coproduce_testkit::TestDb::new(backend).await;
    let api = FhirApi::new(db.store.clone(), fake_clock());
    let sys = Caller::system("test:hot");
    let glucose = |subject: &str, value: f64| {
        json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": format!("Patient/{subject}")},
            "valueQuantity": {"value": value, "unit": "mg/dL"}})
        .to_string()
    };
    for p in ["a", "b", "c"] {
        let body = json!({"resourceType": "Patient", "id": p}).to_string();
        api.update(&sys, "Patient", p, body.as_bytes(), None)
            .await
            .unwrap();
        api.create(&sys, "Observation", glucose(p, 100.0).as_bytes(), None)
            .await
            .unwrap();
    }

    // A panel of 3,000 ids around the two that count, with the query's own arguments
    // (code, system) numbered after them.
    let mut panel: BTreeSet<String> = (0..3000).map(|i| format!("z{i}")).collect();
    panel.insert("a".into());
    panel.insert("c".into());
    let search = |panel: BTreeSet<String>| {
        let mut q = SearchQuery::parse(
            "Observation",
            &pairs(&[
                ("code", "http://loinc.org|2339-0"),
                ("_include", "Observation:subject"),
            ]),
        )
        .unwrap();
        q.compartments = Some(panel);
        q
    };
    let found = db.store.search(&search(panel.clone())).await.unwrap();
    let subjects = |r: &coproduce_store::SearchResult| {
        let mut s: Vec<String> = r
            .matches
            .iter()
            .map(|m| m.patient_id.clone().unwrap())
            .collect();
        s.sort();
        s
    };
    assert_eq!(subjects(&found), ["a", "c"], "{backend:?}");
    let mut included: Vec<&str> = found.included.iter().map(|s| s.id.as_str()).collect();
    included.sort();
    assert_eq!(included, ["a", "c"], "{backend:?}: the includes, in reach");
    assert_eq!(found.total, Some(2));

    // A write is seen by the next read and the next search.
    let created = api
        .create(&sys, "Observation", glucose("c", 250.0).as_bytes(), None)
        .await
        .unwrap();
    let read = db
        .store
        .read("Observation", &created.stored.id)
        .await
        .unwrap();
    assert_eq!(read.version_id, 1);
    assert!(read.content.unwrap().contains("250"), "{backend:?}");
    let found = db.store.search(&search(panel.clone())).await.unwrap();
    assert_eq!(subjects(&found), ["a", "c", "c"], "{backend:?}");

    // A social-needs screening for a and for c: a long list of those whose social needs the
    // caller may see, with a in it and c not, leaves a's and hides c's (on SQLite the list
    // is checked by the store's `among` function, as the panel is).
    for p in ["a", "c"] {
        let screening = json!({"resourceType": "Observation", "status": "final",
            "meta": {"security": [{"system": coproduce_fhir::search::SENSITIVITY_SYSTEM,
                "code": coproduce_fhir::search::SOCIAL_NEEDS_LABEL}]},
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": format!("Patient/{p}")},
            "valueQuantity": {"value": 90, "unit": "mg/dL"}});
        api.create(&sys, "Observation", screening.to_string().as_bytes(), None)
            .await
            .unwrap();
    }
    let mut seen: BTreeSet<String> = (0..3000).map(|i| format!("y{i}")).collect();
    seen.insert("a".into());
    let mut q = search(panel.clone());
    q.social_needs_of = Some(seen);
    let found = db.store.search(&q).await.unwrap();
    assert_eq!(subjects(&found), ["a", "a", "c", "c"], "{backend:?}");
    q.social_needs_of = Some(BTreeSet::new());
    let found = db.store.search(&q).await.unwrap();
    assert_eq!(subjects(&found), ["a", "c", "c"], "{backend:?}");

    let body = json!({"resourceType": "Patient", "id": "a", "active": false}).to_string();
    api.update(&sys, "Patient", "a", body.as_bytes(), None)
        .await
        .unwrap();
    let a = db.store.read("Patient", "a").await.unwrap();
    assert_eq!(a.version_id, 2, "{backend:?}: the new version at once");
    assert_eq!(
        db.store.vread("Patient", "a", 1).await.unwrap().version_id,
        1
    );
    assert!(
        db.store
            .current("Patient", "nobody")
            .await
            .unwrap()
            .is_none()
    );
    db.drop_db().await;
}

#[tokio::test]
async fn hot_reads_see_every_commit_and_bind_a_panel_on_every_backend() {
    for backend in backends() {
        hot_reads(backend).await;
    }
}

/// `code=s|a,s|b` lists its codes for the index as well as its (code, system) pairs: a
/// code under another system, or another code, still does not match.
async fn token_alternatives(backend: TestBackend) {
    let db = coproduce_testkit::TestDb::new(backend).await;
    let api = FhirApi::new(db.store.clone(), fake_clock());
    let sys = Caller::system("test:codes");
    for (system, code) in [
        ("http://loinc.org", "4548-4"),
        ("http://example.org/local", "4548-4"),
        ("http://loinc.org", "2339-0"),
        ("http://loinc.org", "8480-6"),
    ] {
        let body = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": system, "code": code}]}});
        api.create(&sys, "Observation", body.to_string().as_bytes(), None)
            .await
            .unwrap();
    }
    let codes = |param: &str| {
        let q = SearchQuery::parse("Observation", &pairs(&[("code", param)])).unwrap();
        let db = &db;
        async move {
            let mut found: Vec<String> = db
                .store
                .search(&q)
                .await
                .unwrap()
                .matches
                .iter()
                .map(|m| {
                    let v = m.json().unwrap();
                    format!(
                        "{}|{}",
                        v["code"]["coding"][0]["system"].as_str().unwrap(),
                        v["code"]["coding"][0]["code"].as_str().unwrap()
                    )
                })
                .collect();
            found.sort();
            found
        }
    };
    assert_eq!(
        codes("http://loinc.org|4548-4,http://loinc.org|2339-0").await,
        ["http://loinc.org|2339-0", "http://loinc.org|4548-4"],
        "{backend:?}"
    );
    assert_eq!(
        codes("4548-4,http://loinc.org|8480-6").await,
        [
            "http://example.org/local|4548-4",
            "http://loinc.org|4548-4",
            "http://loinc.org|8480-6"
        ],
        "{backend:?}"
    );
    assert_eq!(
        codes("http://loinc.org|4548-4,http://loinc.org|").await,
        [
            "http://loinc.org|2339-0",
            "http://loinc.org|4548-4",
            "http://loinc.org|8480-6"
        ],
        "{backend:?}: a system alone matches its every code, so no codes are listed"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn token_alternatives_match_their_pairs_on_every_backend() {
    for backend in backends() {
        token_alternatives(backend).await;
    }
}
