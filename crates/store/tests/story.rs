//! The storage conformance story: one clinic's records written, changed, searched and
//! deleted, told once and run on every backend the environment offers (SQLite always,
//! PostgreSQL when COPRODUCE_TEST_POSTGRES_URL is set).

use coproduce_app::accounts::Caller;
use coproduce_app::{AppError, FhirApi};
use coproduce_core::Clock;
use coproduce_fhir::parse_resource;
use coproduce_fhir::query::SearchQuery;
use coproduce_store::{ImportOutcome, Moved, StoreError};
use coproduce_testkit::{TestBackend, TestDb, backends, fake_clock};
use serde_json::{Value, json};
use time::Duration;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn ids(r: &coproduce_store::SearchResult) -> Vec<String> {
    r.matches.iter().map(|m| m.id.clone()).collect()
}

async fn story(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let clock = fake_clock();
    let api = FhirApi::new(db.store.clone(), clock.clone());
    let sys = Caller::system("test:story");

    // A patient is registered.
    let ana = api
        .create(&sys, "Patient", json!({"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "A-1"}],
            "name": [{"family": "Silva", "given": ["Ana"]}], "birthDate": "1961-04-02"}).to_string().as_bytes(), None)
        .await
        .expect("create a patient");
    assert!(ana.created);
    assert_eq!(ana.stored.version_id, 1);
    let pid = ana.stored.id.clone();
    let read = api.read(&sys, "Patient", &pid).await.unwrap();
    let body = read.json().unwrap();
    assert_eq!(body["meta"]["versionId"], "1");
    assert_eq!(body["meta"]["lastUpdated"], "2026-11-27T10:00:00.000Z");

    // A conditional create with the same identifier finds her instead of duplicating her.
    let again = api
        .create(
            &sys,
            "Patient",
            br#"{"resourceType":"Patient","name":[{"family":"Silva"}]}"#,
            Some("identifier=urn:mrn|A-1"),
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.stored.id, pid);

    // Her record is corrected; a stale If-Match is refused and changes nothing.
    clock.advance(Duration::minutes(5));
    let mut changed = body.clone();
    changed["name"][0]["given"] = json!(["Ana", "Maria"]);
    let v2 = api
        .update(
            &sys,
            "Patient",
            &pid,
            changed.to_string().as_bytes(),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(v2.stored.version_id, 2);
    assert!(!v2.created);
    let stale = api
        .update(
            &sys,
            "Patient",
            &pid,
            changed.to_string().as_bytes(),
            Some(1),
        )
        .await;
    assert!(
        matches!(stale, Err(AppError::PreconditionFailed(_))),
        "{stale:?}"
    );
    assert_eq!(api.read(&sys, "Patient", &pid).await.unwrap().version_id, 2);
    assert_eq!(
        api.vread(&sys, "Patient", &pid, "1")
            .await
            .unwrap()
            .json()
            .unwrap()["name"][0]["given"],
        json!(["Ana"])
    );
    let (total, hist, _, _) = api.history(&sys, "Patient", Some(&pid), &[]).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(hist[0].stored.version_id, 2);
    // Each version reads back as it was written, the current one too (its history row
    // takes its content from the live row).
    let given = |s: &coproduce_store::Stored| s.json().unwrap()["name"][0]["given"].clone();
    assert_eq!(given(&hist[0].stored), json!(["Ana", "Maria"]));
    assert_eq!(given(&hist[1].stored), json!(["Ana"]));
    assert_eq!(
        given(&api.vread(&sys, "Patient", &pid, "2").await.unwrap()),
        json!(["Ana", "Maria"])
    );

    // Update-as-create with a client id.
    let bob = api
        .update(
            &sys,
            "Patient",
            "bob",
            br#"{"resourceType":"Patient","id":"bob","name":[{"family":"Pierre"}]}"#,
            None,
        )
        .await
        .unwrap();
    assert!(bob.created);

    // Readings: three HbA1c results over a year, one glucose.
    for (n, (date, value, code)) in [
        ("2026-01-10", 9.1, "4548-4"),
        ("2026-05-12", 8.2, "4548-4"),
        ("2026-09-20", 7.4, "4548-4"),
        ("2026-09-21", 130.0, "2339-0"),
    ]
    .into_iter()
    .enumerate()
    {
        let obs = json!({"resourceType": "Observation", "id": format!("o{n}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": format!("Patient/{pid}")}, "effectiveDateTime": date,
            "valueQuantity": {"value": value, "unit": if code == "2339-0" { "mg/dL" } else { "%" }}});
        api.update(
            &sys,
            "Observation",
            &format!("o{n}"),
            obs.to_string().as_bytes(),
            None,
        )
        .await
        .unwrap();
    }
    let patient_ref = format!("Patient/{pid}");
    let (_, r) = api
        .search(
            &sys,
            "Observation",
            &pairs(&[
                ("patient", &patient_ref),
                ("code", "http://loinc.org|4548-4"),
                ("_sort", "-date"),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(ids(&r), ["o2", "o1", "o0"]);
    assert_eq!(r.total, Some(3));
    let (_, r) = api
        .search(
            &sys,
            "Observation",
            &pairs(&[
                ("subject", &patient_ref),
                ("date", "ge2026-05-01"),
                ("date", "lt2026-09-21"),
            ]),
        )
        .await
        .unwrap();
    let mut found = ids(&r);
    found.sort();
    assert_eq!(found, ["o1", "o2"]);
    assert_eq!(r.total, Some(2));
    // Paging: two per page, stable order, nothing repeated.
    let (_, p1) = api
        .search(
            &sys,
            "Observation",
            &pairs(&[("patient", &pid), ("_sort", "date"), ("_count", "2")]),
        )
        .await
        .unwrap();
    let (_, p2) = api
        .search(
            &sys,
            "Observation",
            &pairs(&[
                ("patient", &pid),
                ("_sort", "date"),
                ("_count", "2"),
                ("_offset", "2"),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(ids(&p1), ["o0", "o1"]);
    assert_eq!(ids(&p2), ["o2", "o3"]);
    // The first page does not count what it does not show; it says more follow, the last
    // page knows the total, and `_total=accurate` counts every match on any page.
    assert_eq!((p1.total, p1.more), (None, true));
    assert_eq!((p2.total, p2.more), (Some(4), false));
    let (_, counted) = api
        .search(
            &sys,
            "Observation",
            &pairs(&[("patient", &pid), ("_count", "2"), ("_total", "accurate")]),
        )
        .await
        .unwrap();
    assert_eq!((counted.total, counted.more), (Some(4), true));
    // _include and _revinclude bring the patient and the readings along.
    let (_, r) = api
        .search(
            &sys,
            "Observation",
            &pairs(&[("_id", "o0"), ("_include", "Observation:patient")]),
        )
        .await
        .unwrap();
    assert_eq!(r.included.len(), 1);
    assert_eq!(r.included[0].id, pid);
    let (_, r) = api
        .search(
            &sys,
            "Patient",
            &pairs(&[("_id", &pid), ("_revinclude", "Observation:subject")]),
        )
        .await
        .unwrap();
    assert_eq!(r.included.len(), 4);
    let (_, r) = api
        .search(&sys, "Patient", &pairs(&[("name", "sil")]))
        .await
        .unwrap();
    assert_eq!(ids(&r), vec![pid.clone()]);
    let (_, r) = api
        .search(
            &sys,
            "Observation",
            &pairs(&[("patient", &pid), ("_summary", "count")]),
        )
        .await
        .unwrap();
    assert_eq!((r.total, r.matches.len()), (Some(4), 0));
    let (_, r) = api
        .search(
            &sys,
            "Patient",
            &pairs(&[("_lastUpdated", "ge2026-11-27T10:04:00Z")]),
        )
        .await
        .unwrap();
    assert_eq!(r.total, Some(2), "Ana (updated at 10:05) and Bob");

    // A deleted reading is gone from reads and searches, but kept in history.
    api.delete(&sys, "Observation", "o3").await.unwrap();
    assert!(matches!(
        api.read(&sys, "Observation", "o3").await,
        Err(AppError::Gone(_))
    ));
    assert!(matches!(
        api.read(&sys, "Observation", "nope").await,
        Err(AppError::NotFound(_))
    ));
    let (_, r) = api
        .search(&sys, "Observation", &pairs(&[("patient", &pid)]))
        .await
        .unwrap();
    assert_eq!(r.total, Some(3));
    let (total, hist, _, _) = api
        .history(&sys, "Observation", Some("o3"), &[])
        .await
        .unwrap();
    assert_eq!((total, hist[0].method.as_str()), (2, "DELETE"));
    assert!(
        hist[0].stored.content.is_none(),
        "a deletion has no content"
    );
    assert_eq!(
        hist[1].stored.json().unwrap()["id"],
        "o3",
        "the version before a deletion keeps its content"
    );
    assert_eq!(
        api.vread(&sys, "Observation", "o3", "1")
            .await
            .unwrap()
            .json()
            .unwrap()["id"],
        "o3"
    );
    assert_eq!(
        api.delete(&sys, "Observation", "o3").await.unwrap(),
        None,
        "deleting twice changes nothing"
    );

    // Import keeps ids, and importing the same resource twice changes nothing.
    let r = parse_resource(
        br#"{"resourceType":"Practitioner","id":"dr-lee","name":[{"family":"Lee"}]}"#,
    )
    .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    assert_eq!(
        tx.import(r.clone(), clock.now()).await.unwrap(),
        ImportOutcome::Created
    );
    assert_eq!(
        tx.import(r, clock.now()).await.unwrap(),
        ImportOutcome::Unchanged
    );
    tx.commit().await.unwrap();
    // The batched import path gives the same outcomes, and keeps the index in step.
    let batch = |family: &str| {
        vec![
            parse_resource(format!(r#"{{"resourceType":"Practitioner","id":"dr-kim","name":[{{"family":"{family}"}}]}}"#).as_bytes()).unwrap(),
            parse_resource(br#"{"resourceType":"Practitioner","id":"dr-roy","name":[{"family":"Roy"}]}"#).unwrap(),
        ]
    };
    let mut tx = db.store.begin().await.unwrap();
    assert_eq!(
        tx.import_batch(batch("Kim"), clock.now()).await.unwrap(),
        [ImportOutcome::Created, ImportOutcome::Created]
    );
    assert_eq!(
        tx.import_batch(batch("Kim"), clock.now()).await.unwrap(),
        [ImportOutcome::Unchanged, ImportOutcome::Unchanged]
    );
    assert_eq!(
        tx.import_batch(batch("Kimura"), clock.now()).await.unwrap(),
        [ImportOutcome::Updated, ImportOutcome::Unchanged]
    );
    let mut twice = batch("Kim");
    twice.extend(batch("Kimberley"));
    assert_eq!(
        tx.import_batch(twice, clock.now()).await.unwrap(),
        [
            ImportOutcome::Updated,
            ImportOutcome::Unchanged,
            ImportOutcome::Updated,
            ImportOutcome::Unchanged
        ]
    );
    tx.commit().await.unwrap();
    // Each imported version of dr-kim reads back as it was: Kim, Kimura, Kim, Kimberley.
    for (version, family) in [(1, "Kim"), (2, "Kimura"), (3, "Kim"), (4, "Kimberley")] {
        let v = api
            .vread(&sys, "Practitioner", "dr-kim", &version.to_string())
            .await
            .unwrap();
        assert_eq!(
            v.json().unwrap()["name"][0]["family"],
            family,
            "version {version}"
        );
        assert_eq!(
            v.json().unwrap()["meta"]["versionId"],
            version.to_string(),
            "version {version} carries its own number"
        );
    }
    let (_, r) = api
        .search(&sys, "Practitioner", &pairs(&[("name", "kim")]))
        .await
        .unwrap();
    assert_eq!(ids(&r), ["dr-kim"]);
    let (_, r) = api
        .search(&sys, "Practitioner", &pairs(&[("name", "kimura")]))
        .await
        .unwrap();
    assert_eq!(r.total, Some(0), "the old name left the index");
    assert_eq!(
        api.read(&sys, "Practitioner", "dr-kim")
            .await
            .unwrap()
            .version_id,
        4
    );

    // An imported Provenance belongs to its target's chart, found through the target
    // (written earlier in the same batch), and an Observation to its subject's.
    let mut tx = db.store.begin().await.unwrap();
    let charted = vec![
        parse_resource(br#"{"resourceType":"Observation","id":"o-imp","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p-imp"}}"#).unwrap(),
        parse_resource(br#"{"resourceType":"Provenance","id":"prov-imp","target":[{"reference":"Observation/o-imp"}],"recorded":"2025-01-01T00:00:00Z","agent":[{"who":{"display":"import"}}]}"#).unwrap(),
    ];
    assert_eq!(
        tx.import_batch(charted, clock.now()).await.unwrap(),
        [ImportOutcome::Created, ImportOutcome::Created]
    );
    tx.commit().await.unwrap();
    for (rt, id) in [("Observation", "o-imp"), ("Provenance", "prov-imp")] {
        assert_eq!(
            db.store.read(rt, id).await.unwrap().patient_id.as_deref(),
            Some("p-imp"),
            "{rt}/{id}"
        );
    }

    // A transaction with one bad entry writes nothing.
    let before = db.store.history_rows().await.unwrap();
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": {"resourceType": "Patient", "name": [{"family": "New"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "id": "o0", "status": "final", "code": {"text": "x"},
         "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}},
         "request": {"method": "PUT", "url": "Observation/o0", "ifMatch": "W/\"9\""}}]});
    let out = api.bundle(&sys, bad.to_string().as_bytes()).await;
    assert!(
        matches!(out, Err(AppError::PreconditionFailed(_))),
        "{out:?}"
    );
    assert_eq!(
        db.store.history_rows().await.unwrap(),
        before,
        "nothing written"
    );
    // The same transaction without the bad precondition writes both, with the reference resolved.
    let mut good = bad.clone();
    good["entry"][1]["request"]
        .as_object_mut()
        .unwrap()
        .remove("ifMatch");
    let out = api.bundle(&sys, good.to_string().as_bytes()).await.unwrap();
    assert_eq!(out["entry"][0]["response"]["status"], "201 Created");
    let new_patient = out["entry"][0]["response"]["location"]
        .as_str()
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap()
        .to_string();
    let o0 = api
        .read(&sys, "Observation", "o0")
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        o0["subject"]["reference"],
        Value::String(format!("Patient/{new_patient}"))
    );

    // Two updates with the same If-Match at the same moment: one wins, one gets 412.
    let current = api.read(&sys, "Patient", "bob").await.unwrap().version_id;
    let body = br#"{"resourceType":"Patient","id":"bob","name":[{"family":"Pierre-Louis"}]}"#;
    let (a, b) = tokio::join!(
        api.update(&sys, "Patient", "bob", body, Some(current)),
        api.update(&sys, "Patient", "bob", body, Some(current))
    );
    let wins = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
    let conflicts = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(AppError::PreconditionFailed(_))))
        .count();
    assert_eq!((wins, conflicts), (1, 1), "{a:?} {b:?}");

    // Bad search parameters are refused rather than ignored.
    assert!(matches!(
        api.search(&sys, "Observation", &pairs(&[("patinet", &pid)]))
            .await,
        Err(AppError::Invalid(_))
    ));
    let q = SearchQuery::parse("Observation", &pairs(&[("code", "4548-4")])).unwrap();
    assert_eq!(
        db.store.search(&q).await.unwrap().total,
        Some(2),
        "o0 lost its HbA1c code in the transaction above"
    );
    assert!(matches!(
        db.store.read("Patient", "x").await,
        Err(StoreError::NotFound { .. })
    ));

    db.drop_db().await;
}

#[tokio::test]
async fn storage_story_on_every_backend() {
    for backend in backends() {
        println!("storage story on {backend:?}");
        story(backend).await;
    }
}

/// The measure projection's scan: every patient once, in id order, in batches of the
/// asked size; a database failure during the scan reaches the caller.
async fn projection_scan(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let api = FhirApi::new(db.store.clone(), fake_clock());
    let sys = Caller::system("test:scan");
    let mut created = Vec::new();
    for n in 0..5 {
        let body = json!({"resourceType": "Patient", "birthDate": format!("196{n}-01-01")});
        let made = api
            .create(&sys, "Patient", body.to_string().as_bytes(), None)
            .await
            .expect("create a patient");
        created.push(made.stored.id);
    }
    created.sort();

    // The writes only marked their patients: the rows are built when a run makes sure of
    // them (or the background pass does), once per patient however many writes came.
    assert_eq!(db.store.count_patient_records().await.unwrap(), 0);
    assert_eq!(db.store.ensure_patient_records(|_, _| {}).await.unwrap(), 5);
    assert_eq!(db.store.ensure_patient_records(|_, _| {}).await.unwrap(), 0);
    let set_born = async |id: &str, year: &str| {
        let born =
            json!({"resourceType": "Patient", "id": id, "birthDate": format!("{year}-01-01")});
        api.update(&sys, "Patient", id, born.to_string().as_bytes(), None)
            .await
            .expect("update a patient");
    };
    for year in ["1950", "1951", "1952"] {
        set_born(&created[0], year).await;
    }
    assert_eq!(
        db.store
            .apply_pending_patient_records(Moved::Rebuild)
            .await
            .unwrap(),
        1
    );
    // A write between reading a pending batch and writing it: that patient is rebuilt as it
    // then stands, not as it was read.
    set_born(&created[1], "1940").await;
    let batch = db.store.read_pending("", 100).await.unwrap();
    assert_eq!(batch.pending.len(), 1);
    set_born(&created[1], "1930").await;
    // The background pass leaves that patient pending, keeping the row it had.
    assert_eq!(
        db.store.write_pending(batch, Moved::Leave).await.unwrap(),
        0,
        "a patient written to in between is left for later"
    );
    assert_eq!(
        db.store.read_pending("", 100).await.unwrap().pending.len(),
        1,
        "still pending"
    );
    assert!(
        !projected(&db, &created[1]).await.contains("1930"),
        "the row was not rebuilt"
    );
    let batch = db.store.read_pending("", 100).await.unwrap();
    set_born(&created[1], "1930").await;
    assert_eq!(
        db.store.write_pending(batch, Moved::Rebuild).await.unwrap(),
        1
    );
    assert_eq!(
        db.store
            .apply_pending_patient_records(Moved::Rebuild)
            .await
            .unwrap(),
        0,
        "nothing left pending"
    );
    let record = projected(&db, &created[1]).await;
    assert!(record.contains("1930-01-01"), "{record}");

    let mut batches = db.store.patient_record_batches(2);
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    while let Some(batch) = batches.recv().await {
        let batch = batch.expect("a batch");
        sizes.push(batch.len());
        seen.extend(batch.into_iter().map(|(id, record)| {
            assert!(!record.is_empty(), "{id} has an empty record");
            id
        }));
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen, created);
    assert_eq!(db.store.count_patient_records().await.unwrap(), 5);

    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .expect("a direct connection");
    sqlx::query("DROP TABLE patient_records")
        .execute(&mut conn)
        .await
        .expect("drop the projection table");
    let mut batches = db.store.patient_record_batches(2);
    let first = batches.recv().await.expect("the scan reports its failure");
    assert!(
        matches!(first, Err(StoreError::Scan(_) | StoreError::Database(_))),
        "got {first:?}"
    );
    assert!(batches.recv().await.is_none(), "nothing follows a failure");

    db.drop_db().await;
}

#[tokio::test]
async fn the_projection_scan_on_every_backend() {
    for backend in backends() {
        println!("projection scan on {backend:?}");
        projection_scan(backend).await;
    }
}

/// A patient's projection row as the store holds it now, decoded ("" when it has none).
async fn projected(db: &TestDb, patient: &str) -> String {
    let mut rows = db.store.patient_record_batches(10);
    let mut record = String::new();
    while let Some(batch) = rows.recv().await {
        for (id, bytes) in batch.expect("a batch") {
            if id == patient {
                record = coproduce_measures::projection::decode(&bytes).unwrap();
            }
        }
    }
    record
}
