//! A search for every match whose caller holds views of some versions already
//! (`Store::search_known`): the same matches in the same order as the search, each with what
//! the caller holds for its version, and the JSON of every version it does not hold (on
//! SQLite, none for those it holds). Run on every backend.

use coproduce_app::FhirApi;
use coproduce_app::accounts::Caller;
use coproduce_fhir::query::{EVERY_MATCH, SearchQuery};
use coproduce_testkit::{TestBackend, backends, fake_clock};
use serde_json::json;
use std::collections::BTreeMap;

async fn known(backend: TestBackend) {
    let db = coproduce_testkit::TestDb::new(backend).await;
    let api = FhirApi::new(db.store.clone(), fake_clock());
    let sys = Caller::system("test:known");
    let glucose = |value: f64| {
        json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": "Patient/a"},
            "valueQuantity": {"value": value, "unit": "mg/dL"}})
        .to_string()
    };
    let body = json!({"resourceType": "Patient", "id": "a"}).to_string();
    api.update(&sys, "Patient", "a", body.as_bytes(), None)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for value in [100.0, 110.0, 120.0, 130.0] {
        let created = api
            .create(&sys, "Observation", glucose(value).as_bytes(), None)
            .await
            .unwrap();
        ids.push(created.stored.id);
    }
    let mut q = SearchQuery::parse(
        "Observation",
        &[("code".to_string(), "http://loinc.org|2339-0".to_string())],
    )
    .unwrap();
    q.count = EVERY_MATCH;

    // The caller holds views of the first and third readings' first versions.
    let held: BTreeMap<(String, i64), String> = [(&ids[0], "first"), (&ids[2], "third")]
        .into_iter()
        .map(|(id, view)| ((id.clone(), 1), view.to_string()))
        .collect();
    let holds = |id: &str, version: i64| held.get(&(id.to_string(), version)).cloned();
    let check = |found: &[(coproduce_store::Stored, Option<String>)],
                 all: &[coproduce_store::Stored]| {
        let listed: Vec<(&str, i64)> = found
            .iter()
            .map(|(s, _)| (s.id.as_str(), s.version_id))
            .collect();
        let expected: Vec<(&str, i64)> =
            all.iter().map(|s| (s.id.as_str(), s.version_id)).collect();
        assert_eq!(
            listed, expected,
            "{backend:?}: the search's matches, in its order"
        );
        for ((s, view), full) in found.iter().zip(all) {
            assert_eq!(view, &holds(&s.id, s.version_id), "{backend:?}: {}", s.id);
            match (view, backend) {
                (Some(_), TestBackend::Sqlite) => {
                    assert_eq!(s.content, None, "{}: its JSON is not read", s.id)
                }
                _ => assert_eq!(s.content, full.content, "{backend:?}: {}'s JSON", s.id),
            }
        }
    };
    let all = db.store.search(&q).await.unwrap().matches;
    assert_eq!(all.len(), 4);
    let found = db.store.search_known(&q, &holds).await.unwrap();
    check(&found, &all);

    // A new version of a held reading is not held: it comes with its new JSON.
    api.update(
        &sys,
        "Observation",
        &ids[2],
        json!({"resourceType": "Observation", "id": ids[2], "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": "Patient/a"},
            "valueQuantity": {"value": 180.0, "unit": "mg/dL"}})
        .to_string()
        .as_bytes(),
        None,
    )
    .await
    .unwrap();
    let all = db.store.search(&q).await.unwrap().matches;
    let found = db.store.search_known(&q, &holds).await.unwrap();
    check(&found, &all);
    let third = found.iter().find(|(s, _)| s.id == ids[2]).unwrap();
    assert_eq!((third.0.version_id, &third.1), (2, &None));
    assert!(
        third.0.content.as_deref().unwrap().contains("180"),
        "{backend:?}"
    );

    // A page of the query still finds every match.
    let mut page = q.clone();
    page.count = 2;
    page.offset = 1;
    let found = db.store.search_known(&page, &holds).await.unwrap();
    check(&found, &all);

    // Nothing held: every match with its JSON, as the search gives it.
    let found = db
        .store
        .search_known(&q, &|_, _| None::<String>)
        .await
        .unwrap();
    let plain: Vec<_> = found.into_iter().map(|(s, _)| s).collect();
    assert_eq!(plain, all, "{backend:?}");
    db.drop_db().await;
}

#[tokio::test]
async fn a_search_reads_the_json_only_of_versions_the_caller_does_not_hold_on_every_backend() {
    for backend in backends() {
        known(backend).await;
    }
}
