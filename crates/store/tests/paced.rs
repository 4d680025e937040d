//! The background pass over the measure projection paces long records: one rebuilt lately
//! waits its pause (a millisecond per resource it holds) before the pass rebuilds it again,
//! while short records are rebuilt on every pass and a population run rebuilds them all.

use coproduce_app::FhirApi;
use coproduce_app::accounts::Caller;
use coproduce_store::Moved;
use coproduce_testkit::{TestBackend, TestDb, backends, fake_clock};
use serde_json::json;

async fn paced(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let api = FhirApi::new(db.store.clone(), fake_clock());
    let sys = Caller::system("test:paced");
    let patient = |id: &str| json!({"resourceType": "Patient", "id": id});
    for id in ["long", "short"] {
        api.update(
            &sys,
            "Patient",
            id,
            patient(id).to_string().as_bytes(),
            None,
        )
        .await
        .expect("a patient");
    }
    let reading = |n: usize| {
        json!({"resource": {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/long"}, "valueQuantity": {"value": n}},
            "request": {"method": "POST", "url": "Observation"}})
    };
    // 1,000 readings and the Patient: a record of 1,001 resources, paused 1,001 ms.
    let entries: Vec<_> = (0..1_000).map(reading).collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    api.bundle(&sys, bundle.to_string().as_bytes())
        .await
        .expect("a thousand readings");
    let pending = async || db.store.read_pending("", 100).await.unwrap().pending.len();

    let t = 1_700_000_000_000;
    assert_eq!(db.store.catch_up_patient_records(t).await.unwrap(), 2);
    assert_eq!(pending().await, 0);

    let touch = async |id: &str, family: &str| {
        let p = json!({"resourceType": "Patient", "id": id, "name": [{"family": family}]});
        api.update(&sys, "Patient", id, p.to_string().as_bytes(), None)
            .await
            .expect("a change");
    };
    touch("long", "Again").await;
    touch("short", "Again").await;
    assert_eq!(
        db.store.catch_up_patient_records(t + 1_000).await.unwrap(),
        1,
        "{backend:?}: the short record is rebuilt, the long one waits its pause"
    );
    assert_eq!(
        pending().await,
        1,
        "{backend:?}: the long one stays pending"
    );
    assert_eq!(
        db.store.catch_up_patient_records(t + 1_001).await.unwrap(),
        1,
        "{backend:?}: and is rebuilt once its pause is over"
    );
    assert_eq!(pending().await, 0);

    // A population run does not wait for a pause.
    touch("long", "Once more").await;
    assert_eq!(
        db.store.catch_up_patient_records(t + 1_002).await.unwrap(),
        0
    );
    assert_eq!(
        db.store
            .apply_pending_patient_records(Moved::Rebuild)
            .await
            .unwrap(),
        1,
        "{backend:?}: a population run rebuilds it at once"
    );
    assert_eq!(pending().await, 0);
    db.drop_db().await;
}

#[tokio::test]
async fn the_background_pass_paces_long_records_on_every_backend() {
    for backend in backends() {
        paced(backend).await;
    }
}
