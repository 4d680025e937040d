//! A search by one reference in the default order (newest first) reads its page from the
//! reference index and stops there. Every page it gives must be the page the general search
//! gives for the same order: ties in time, a resource changed later (it moves up), a deleted
//! one (it is gone), one id under two target types (the resource appears once), the
//! policy's reach, and the other filters of the query. So must a filter of several values,
//! whose values' pages are merged. Run on every backend.

use coproduce_app::FhirApi;
use coproduce_app::accounts::Caller;
use coproduce_fhir::query::SearchQuery;
use coproduce_testkit::{TestBackend, TestDb, backends, fake_clock};
use serde_json::json;
use time::Duration;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Every page of `params` with `count` per page, following `more`: the ids in order.
async fn all_pages(db: &TestDb, rt: &str, params: &[(&str, &str)], count: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let mut q = SearchQuery::parse(rt, &pairs(params)).unwrap();
        q.count = count;
        q.offset = offset;
        let page = db.store.search(&q).await.unwrap();
        assert!(page.matches.len() <= count);
        out.extend(page.matches.iter().map(|m| m.id.clone()));
        if !page.more {
            assert_eq!(
                page.total,
                Some(out.len() as i64),
                "the last page knows the total"
            );
            return out;
        }
        assert_eq!(page.matches.len(), count, "a page before the last is full");
        offset += count;
    }
}

async fn newest_first(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let clock = fake_clock();
    let api = FhirApi::new(db.store.clone(), clock.clone());
    let sys = Caller::system("test:newest");
    for (rt, id) in [("Patient", "x"), ("Group", "x"), ("Patient", "other")] {
        let body = match rt {
            "Group" => json!({"resourceType": "Group", "id": id, "type": "person", "actual": true}),
            _ => json!({"resourceType": "Patient", "id": id}),
        };
        api.update(&sys, rt, id, body.to_string().as_bytes(), None)
            .await
            .unwrap();
    }
    let obs = |subject: &str, code: &str, performers: &[&str]| {
        let mut o = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": subject}, "valueQuantity": {"value": 70, "unit": "kg"}});
        if !performers.is_empty() {
            o["performer"] = json!(
                performers
                    .iter()
                    .map(|p| json!({"reference": p}))
                    .collect::<Vec<_>>()
            );
        }
        o.to_string()
    };
    let mut made = Vec::new();
    for n in 0..14 {
        // Three at each instant: ties are broken by id, the same way on both paths.
        if n % 3 == 0 {
            clock.advance(Duration::minutes(1));
        }
        let code = if n % 2 == 0 { "29463-7" } else { "8867-4" };
        let performers: &[&str] = if n % 4 == 0 {
            &["Patient/x", "Practitioner/x"]
        } else {
            &[]
        };
        let body = obs("Patient/x", code, performers);
        made.push(
            api.create(&sys, "Observation", body.as_bytes(), None)
                .await
                .unwrap()
                .stored,
        );
    }
    for subject in ["Group/x", "Patient/other"] {
        api.create(
            &sys,
            "Observation",
            obs(subject, "8867-4", &[]).as_bytes(),
            None,
        )
        .await
        .unwrap();
    }
    // One reading changes later and moves up; one is deleted.
    clock.advance(Duration::minutes(1));
    let changed = &made[2];
    let mut body = changed.json().unwrap();
    body["status"] = json!("amended");
    api.update(
        &sys,
        "Observation",
        &changed.id,
        body.to_string().as_bytes(),
        None,
    )
    .await
    .unwrap();
    api.delete(&sys, "Observation", &made[5].id).await.unwrap();

    // A reference filter of several values: each value's page merged, up to 32 values; more
    // are sorted from their matches. A resource referencing two of the values appears once.
    let many = std::iter::once("Patient/x".to_string())
        .chain((0..40).map(|n| format!("Patient/n{n}")))
        .collect::<Vec<_>>()
        .join(",");
    let several_values: Vec<Vec<(&str, String)>> = vec![
        vec![("subject", "Patient/x,Patient/other".into())],
        vec![("subject", "x,other".into())],
        vec![("subject", "Patient/x,Patient/x".into())],
        vec![("performer", "Patient/x,Practitioner/x".into())],
        vec![
            ("subject", "Patient/other,Group/x,Patient/x".into()),
            ("code", "8867-4".into()),
        ],
        vec![("subject", many)],
    ];
    for (driven, general) in [
        (
            vec![("subject", "Patient/x")],
            vec![("subject", "Patient/x"), ("_sort", "-_lastUpdated,_id")],
        ),
        (
            vec![("subject", "x")],
            vec![("subject", "x"), ("_sort", "-_lastUpdated,_id")],
        ),
        (
            vec![("performer", "x")],
            vec![("performer", "x"), ("_sort", "-_lastUpdated,_id")],
        ),
        (
            vec![
                ("subject", "Patient/x"),
                ("code", "8867-4"),
                ("_sort", "-_lastUpdated"),
            ],
            vec![
                ("subject", "Patient/x"),
                ("code", "8867-4"),
                ("_sort", "-_lastUpdated,_id"),
            ],
        ),
    ]
    .into_iter()
    .chain(several_values.iter().map(|v| {
        (
            v.iter().map(|(k, v)| (*k, v.as_str())).collect(),
            v.iter()
                .map(|(k, v)| (*k, v.as_str()))
                .chain([("_sort", "-_lastUpdated,_id")])
                .collect(),
        )
    })) {
        let expected = all_pages(&db, "Observation", &general, 100).await;
        for count in [1, 2, 3, 5, 100] {
            assert_eq!(
                all_pages(&db, "Observation", &driven, count).await,
                expected,
                "{driven:?}, {count} a page"
            );
        }
    }
    let newest = all_pages(&db, "Observation", &[("subject", "Patient/x")], 100).await;
    assert_eq!(newest.len(), 13, "14 made, one deleted");
    assert_eq!(newest[0], changed.id, "the changed one is the newest");
    assert!(!newest.contains(&made[5].id));
    let both_types = all_pages(&db, "Observation", &[("subject", "x")], 100).await;
    assert_eq!(both_types.len(), 14, "Patient/x's 13 and Group/x's one");
    let performed = all_pages(&db, "Observation", &[("performer", "x")], 100).await;
    assert_eq!(
        performed.len(),
        4,
        "named twice as performer, found once each"
    );

    let two = all_pages(
        &db,
        "Observation",
        &[("subject", "Patient/x,Patient/other")],
        3,
    )
    .await;
    assert_eq!(two.len(), 14, "Patient/x's 13 and Patient/other's one");
    let any_type = all_pages(&db, "Observation", &[("subject", "x,other")], 3).await;
    assert_eq!(any_type.len(), 15, "and Group/x's one");
    let both_performers = all_pages(
        &db,
        "Observation",
        &[("performer", "Patient/x,Practitioner/x")],
        3,
    )
    .await;
    assert_eq!(
        both_performers, performed,
        "each performed by both, found once"
    );

    // The policy's reach: a caller reaching only the other patient finds none of x's.
    let mut q = SearchQuery::parse("Observation", &pairs(&[("subject", "Patient/x")])).unwrap();
    q.compartments = Some(["other".to_string()].into());
    let reached = db.store.search(&q).await.unwrap();
    assert!(reached.matches.is_empty() && !reached.more);
    // Merged from two values' pages, each page within the same reach: only the other's.
    let mut q = SearchQuery::parse(
        "Observation",
        &pairs(&[("subject", "Patient/x,Patient/other")]),
    )
    .unwrap();
    q.compartments = Some(["other".to_string()].into());
    let reached = db.store.search(&q).await.unwrap();
    assert_eq!(reached.matches.len(), 1, "Patient/other's one reading");
    assert_eq!(reached.matches[0].patient_id.as_deref(), Some("other"));
    db.drop_db().await;
}

#[tokio::test]
async fn newest_first_pages_match_the_general_search_on_every_backend() {
    for backend in backends() {
        println!("newest first on {backend:?}");
        newest_first(backend).await;
    }
}
