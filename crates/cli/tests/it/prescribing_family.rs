//! A family member and the medicines: Clara sees her mother's medicines and says "I can't"
//! for her only while Ana's grant covers medicines; with medicines but not the plan she sees
//! them without being able to raise a barrier (a barrier is a Task on the plan).

use coproduce_app::error::{AppError, CareError};
use coproduce_app::prescribing::FORMULARY_SYSTEM;
use coproduce_core::prescribing::check::Kind;
use coproduce_store::Stored;
use coproduce_testkit::{TestApp, TestBackend};
use serde_json::{Value, json};

/// Ana's grant to Clara, with these parts.
async fn grant(app: &TestApp, parts: &[&str]) {
    let codes: Vec<Value> = parts
        .iter()
        .map(|p| json!({"coding": [{"system": coproduce_app::accounts::GRANT_PART_SYSTEM, "code": p}]}))
        .collect();
    let resp = app
        .put_json(
            "/fhir/Consent/grant-rp1",
            json!({
                "resourceType": "Consent", "id": "grant-rp1", "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": "Patient/p1"},
                "provision": {"type": "permit", "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "DAU"}]}, "reference": {"reference": "RelatedPerson/rp1"}}], "code": codes},
            })
            .to_string(),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
}

fn forbidden<T: std::fmt::Debug>(r: Result<T, CareError>) -> bool {
    matches!(r, Err(CareError::App(AppError::Forbidden(_))))
}

#[tokio::test]
async fn a_family_member_sees_medicines_and_says_i_cant_only_with_a_grant_that_covers_them() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("pt-BR").await;
    let workflows = crate::prescribing::check::clinic(&app).await;
    let p = &workflows.prescribing;
    let resp = app
        .post_json(
            "/fhir/MedicationRequest",
            json!({
                "resourceType": "MedicationRequest", "status": "active", "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": FORMULARY_SYSTEM, "code": "metformin-500"}]},
                "subject": {"reference": "Patient/p1"},
                "requester": {"reference": "Practitioner/dr"},
                "authoredOn": Stored::instant(coproduce_core::Clock::now(&*app.clock)),
            })
            .to_string(),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let mr = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.jobs.run_once().await.unwrap();
    let page = "/patients/p1/medicines";

    // A grant without medicines: no medicine, no box on her home, no "I can't".
    grant(
        &app,
        &["readings", "plan", "messages", "concerns", "record"],
    )
    .await;
    // (A caller carries the grants of when it was made, as each request's does.)
    let clara = crate::rescue::caller(&app, "clara").await;
    let mut web = app.sign_in("clara").await;
    let (status, _) = web.get(page).await;
    assert_eq!(status, 403);
    let (_, home) = web.get("/patients/p1").await;
    assert!(!home.contains("id=\"medicines-open\""), "{home}");
    assert!(forbidden(p.medicines(&clara, "p1").await));
    assert!(forbidden(
        p.patient_says_cant(&clara, &mr, Kind::Reach, "não tenho como ir")
            .await
    ));
    assert!(
        p.barriers(&clara, "p1")
            .await
            .unwrap()
            .iter()
            .all(|b| !b.patient_said)
    );

    // Medicines but not the plan: she sees them, and may not open a barrier.
    grant(&app, &["medicines"]).await;
    let clara = crate::rescue::caller(&app, "clara").await;
    let (status, text) = web.get(page).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Metformin"), "{text}");
    assert!(forbidden(
        p.patient_says_cant(&clara, &mr, Kind::Reach, "não tenho como ir")
            .await
    ));

    // Medicines and the plan: she says for her mother that she can't get to the pharmacy
    // (instructions in her language are the team's to find, not something she says).
    grant(&app, &["medicines", "plan"]).await;
    let clara = crate::rescue::caller(&app, "clara").await;
    assert!(matches!(
        p.patient_says_cant(&clara, &mr, Kind::Language, "").await,
        Err(CareError::Input { .. })
    ));
    let task = p
        .patient_says_cant(&clara, &mr, Kind::Reach, "não tenho como ir")
        .await
        .unwrap();
    let said = p
        .barriers(&crate::rescue::caller(&app, "dr.okafor").await, "p1")
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.task == task)
        .unwrap();
    assert!(said.patient_said && said.kind == Kind::Reach, "{said:?}");
    assert_eq!(said.words.as_deref(), Some("não tenho como ir"));
    app.finish().await;
}
