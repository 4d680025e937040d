//! `coproduce measure` over the store, on SQLite and PostgreSQL: the official test patients
//! of CMS122 and CMS165 are imported together, each measure is run over all of them, and
//! every test patient's populations in the per-patient CSV equal the expected ones: CMS122
//! with the bundle this build carries, CMS165 with the same bundle given as a file.

use coproduce_testkit::{TestDb, backends};
use serde_json::Value;
use std::collections::HashMap;

use crate::coproduce;

#[tokio::test]
async fn measures_run_over_the_store_on_both_backends() {
    let ecqm = crate::testdata().join("ecqm");
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let (ok, out) = coproduce(
            &db.url,
            &[
                "import",
                ecqm.join("CMS122/tests").to_str().unwrap(),
                ecqm.join("CMS165/tests").to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}");
        for name in ["CMS122", "CMS165"] {
            let dir = tempfile::tempdir().unwrap();
            let csv = dir.path().join("patients.csv");
            let report = dir.path().join("report.json");
            let measure = name.to_lowercase();
            let mut args = vec![
                "measure",
                &measure,
                "--period",
                "2026",
                "--csv",
                csv.to_str().unwrap(),
                "--out",
                report.to_str().unwrap(),
            ];
            // A newer edition comes as a file: the carried bundle, written out, stands in.
            let file = dir.path().join("measure-bundle.json");
            if name == "CMS165" {
                let text = coproduce_measures::official::bundle_text(&measure)
                    .expect("carried")
                    .expect("it decompresses");
                std::fs::write(&file, text).unwrap();
                args.extend(["--bundle", file.to_str().unwrap()]);
            }
            let (ok, out) = coproduce(&db.url, &args);
            assert!(ok, "{out}");
            assert!(
                out.contains("patients 124"),
                "every patient evaluated: {out}"
            );
            assert!(out.contains("performance rate"), "{out}");
            let rows: HashMap<String, Vec<String>> = std::fs::read_to_string(&csv)
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| {
                    let cols: Vec<String> = l.split(',').map(str::to_string).collect();
                    (cols[0].clone(), cols[1..5].to_vec())
                })
                .collect();
            let expected: Value = serde_json::from_str(
                &std::fs::read_to_string(ecqm.join(name).join("expected-populations.json"))
                    .unwrap(),
            )
            .unwrap();
            let mut totals = [0u64; 4];
            for case in expected.as_array().unwrap() {
                let id = case["patientId"].as_str().unwrap();
                let p = &case["populations"];
                let want: Vec<String> = [
                    "initial-population",
                    "denominator",
                    "denominator-exclusion",
                    "numerator",
                ]
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let n = p[*k].as_u64().unwrap();
                    totals[i] += n;
                    n.to_string()
                })
                .collect();
                assert_eq!(rows.get(id), Some(&want), "{name} {}", case["testCase"]);
            }
            // The report is FHIR, with the counts of the run (which also holds the other
            // measure's patients, so at least the test patients' totals).
            let report: Value =
                serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
            coproduce_fhir::validate::validate_resource(&report).unwrap();
            let pops = report["group"][0]["population"].as_array().unwrap();
            for (i, p) in pops.iter().enumerate() {
                assert!(p["count"].as_u64().unwrap() >= totals[i], "{name} {p}");
            }
        }
        // A measure this build does not carry is named as such, with the ones it does.
        let (ok, out) = coproduce(&db.url, &["measure", "cms999", "--period", "2026"]);
        assert!(!ok, "{out}");
        assert!(
            out.contains("this build carries the measures cms122 and cms165"),
            "{out}"
        );
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_generated_population_is_evaluated_on_both_backends() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let (ok, out) = coproduce(&db.url, &["generate", "--patients", "1500", "--seed", "3"]);
        assert!(ok, "{out}");
        assert!(out.contains("generated 1500 patients"), "{out}");
        let plot_dir = tempfile::tempdir().unwrap();
        let plot = plot_dir.path().join("evaluation.svg");
        let (ok, out) = coproduce(
            &db.url,
            &[
                "evaluate",
                "--program",
                "rescue-pack",
                "--end",
                "2026-12-31",
                "--plot",
                plot.to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}");
        let svg = std::fs::read_to_string(&plot).unwrap();
        assert!(
            svg.starts_with(
                "<svg role=\"img\" aria-label=\"rescue-pack: enrolled patients went from"
            ),
            "{}",
            &svg[..200.min(svg.len())]
        );
        assert!(svg.contains("matched comparison"), "a legend");
        assert!(out.contains("difference-in-differences"), "{out}");
        assert!(
            out.contains("enrolled patients, each with a matched comparison patient"),
            "{out}"
        );
        // The same program with AHRQ's PQI 05 as its outcome.
        let (ok, out) = coproduce(
            &db.url,
            &[
                "evaluate",
                "--program",
                "rescue-pack",
                "--end",
                "2026-12-31",
                "--outcome",
                "pqi05",
            ],
        );
        assert!(ok, "{out}");
        assert!(
            out.contains(
                "PQI 05 COPD or Asthma in Older Adults Admission Rate qualifying discharges"
            ),
            "{out}"
        );
        let (ok, out) = coproduce(
            &db.url,
            &[
                "evaluate",
                "--program",
                "rescue-pack",
                "--end",
                "2026-12-31",
                "--outcome",
                "pqi99",
            ],
        );
        assert!(
            !ok && out.contains("is not one of events, pqi01, pqi05"),
            "{out}"
        );
        // And the indicator itself over the generated population.
        let (ok, out) = coproduce(&db.url, &["measure", "pqi05", "--period", "2026"]);
        assert!(ok && out.contains("qualifying discharges"), "{out}");
        let (ok, out) = coproduce(
            &db.url,
            &[
                "utilisation",
                "--from",
                "2026-01-01",
                "--to",
                "2026-12-31",
                "--by",
                "month",
            ],
        );
        assert!(ok, "{out}");
        assert!(
            out.contains("all patients") && out.contains("2026-12"),
            "{out}"
        );
        // Value: cost per member per month from a fee schedule, and the program both ways.
        let fees = plot_dir.path().join("fees.csv");
        std::fs::write(
            &fees,
            "service,price,description\noffice-visit,150,office visit\ned-visit,1200,emergency visit\nadmission,8000,stay\ninpatient-day,2000,per day\nhba1c-test,40,lab\nrescue-pack,60,prednisone and antibiotic\n",
        )
        .unwrap();
        let (ok, out) = coproduce(
            &db.url,
            &[
                "value",
                "--fees",
                fees.to_str().unwrap(),
                "--from",
                "2026-01-01",
                "--to",
                "2026-12-31",
                "--program",
                "rescue-pack",
            ],
        );
        assert!(ok, "{out}");
        assert!(
            out.contains("cost 2026-01-01 to 2026-12-31: 1500 members"),
            "{out}"
        );
        assert!(out.contains("cost per member per month: "), "{out}");
        assert!(
            out.contains("fee-for-service view (revenue change): "),
            "{out}"
        );
        assert!(
            out.contains("value-based view (avoided cost less the packs): "),
            "{out}"
        );
        // A fee schedule with a slip is refused with its line, and nothing runs.
        std::fs::write(&fees, "service,price\noffice-visit,150\nmassage,80\n").unwrap();
        let (ok, out) = coproduce(
            &db.url,
            &[
                "value",
                "--fees",
                fees.to_str().unwrap(),
                "--from",
                "2026-01-01",
                "--to",
                "2026-12-31",
            ],
        );
        assert!(!ok);
        assert!(out.contains("line 3: 'massage' is not a service"), "{out}");
        let (ok, out) = coproduce(&db.url, &["measure", "cms165", "--period", "2026"]);
        assert!(ok, "{out}");
        assert!(out.contains("patients 1500"), "{out}");
        db.drop_db().await;
    }
}

/// A quality analyst's account, signed in.
pub(crate) async fn analyst(
    app: &coproduce_testkit::TestApp,
    name: &str,
) -> coproduce_testkit::WebClient {
    app.accounts
        .add_user(coproduce_app::accounts::NewUser {
            username: name.into(),
            roles: vec![coproduce_core::access::Role::QualityAnalyst],
            fhir_ref: None,
            password: Some(coproduce_testkit::PASSWORD.into()),
        })
        .await
        .expect("an analyst");
    app.sign_in(name).await
}

#[tokio::test]
async fn a_quality_analyst_sees_population_figures_and_a_clinician_does_not() {
    let app = coproduce_testkit::TestApp::spawn(coproduce_testkit::TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let (ok, out) = coproduce(
        &app.db.url,
        &["generate", "--patients", "1500", "--seed", "3"],
    );
    assert!(ok, "{out}");
    let mut ida = analyst(&app, "ida").await;
    // Her home is the figures: the last twelve full months before 27 November 2026.
    let (status, page) = ida.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("Population figures"), "{page}");
    assert!(
        page.contains("2025-11-01 – 2026-10-31: 1501 patients"),
        "{page}"
    );
    assert!(page.contains("<th scope=\"row\">2026-10</th>"), "{page}");
    assert!(page.contains("<svg aria-hidden=\"true\""), "a trend chart");
    assert!(page.contains("id=\"evaluation-h\""), "{page}");
    // The run is audited under her name.
    let (_, audit) = app
        .db
        .store
        .audit_newest(50, 0)
        .await
        .expect("the audit trail");
    assert!(
        audit.iter().any(|a| a.entry.actor == "user:ida"
            && a.entry.action == "analysis"
            && a.entry.outcome == "allowed"),
        "{audit:?}"
    );
    // A clinician sees charts, not the population: refused, and the refusal audited.
    let mut dr = app.sign_in("dr.okafor").await;
    let (status, _) = dr.get("/analyst").await;
    assert_eq!(status, 403);
    let (_, audit) = app
        .db
        .store
        .audit_newest(50, 0)
        .await
        .expect("the audit trail");
    assert!(audit.iter().any(|a| a.entry.actor == "user:dr.okafor"
        && a.entry.action == "analysis"
        && a.entry.outcome == "denied"));
    app.finish().await;
}

/// The analyst follows a quality measure by year, and from a count down to its patients:
/// the official CMS122 test patients give the 2026 row, whose numerator lists exactly the
/// patients the measure developers expect there; the list is audited with every patient
/// named; a clinician is refused.
#[tokio::test]
async fn an_analyst_follows_a_measure_by_year_down_to_its_patients() {
    let ecqm = crate::testdata().join("ecqm/CMS122");
    let bundle = coproduce_measures::official::bundle("cms122")
        .expect("carried")
        .unwrap();
    let app = coproduce_testkit::TestApp::spawn_with(
        coproduce_testkit::TestBackend::Sqlite,
        coproduce_web::WebConfig {
            secure_cookies: false,
            measures: vec![("cms122".into(), std::sync::Arc::new(bundle))],
            ..Default::default()
        },
    )
    .await;
    app.seed_care_team("en").await;
    let (ok, out) = coproduce(
        &app.db.url,
        &["import", ecqm.join("tests").to_str().unwrap()],
    );
    assert!(ok, "{out}");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(ecqm.join("expected-populations.json")).unwrap(),
    )
    .unwrap();
    let in_numerator: std::collections::BTreeSet<String> = expected
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["populations"]["numerator"] == 1)
        .map(|c| c["patientId"].as_str().unwrap().to_string())
        .collect();
    assert!(!in_numerator.is_empty());
    let mut ida = analyst(&app, "ida").await;
    let (status, home) = ida.get("/analyst").await;
    assert_eq!(status, 200);
    assert!(home.contains("href=\"/analyst/measures/cms122\""), "{home}");
    let (status, page) = ida.get("/analyst/measures/cms122").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Lower is better"), "{page}");
    for year in [2024, 2025, 2026] {
        assert!(
            page.contains(&format!("<th scope=\"row\">{year}</th>")),
            "{page}"
        );
    }
    let numerator_link = format!(
        "<a href=\"/analyst/measures/cms122/2026/numerator\">{}</a>",
        in_numerator.len()
    );
    assert!(page.contains(&numerator_link), "{numerator_link} in {page}");
    assert!(page.contains("<svg"), "a trend chart");

    let (status, list) = ida.get("/analyst/measures/cms122/2026/numerator").await;
    assert_eq!(status, 200, "{list}");
    let listed: std::collections::BTreeSet<String> = list
        .split("<th scope=\"row\">")
        .skip(1)
        .filter_map(|row| row.split('<').next().map(str::to_string))
        .collect();
    assert_eq!(listed, in_numerator);
    let (_, audit) = app.db.store.audit_newest(20, 0).await.unwrap();
    let row = audit
        .iter()
        .find(|a| a.entry.action == "measure-patients")
        .expect("the list is audited");
    assert_eq!(row.entry.actor, "user:ida");
    let named: std::collections::BTreeSet<String> = row
        .entry
        .patients
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .map(str::to_string)
        .collect();
    assert_eq!(named, in_numerator);

    let (status, _) = ida.get("/analyst/measures/cms999").await;
    assert_eq!(status, 404);
    let (status, _) = ida.get("/analyst/measures/cms122/2026/everyone").await;
    assert_eq!(status, 404);

    let mut dr = app.sign_in("dr.okafor").await;
    let (status, _) = dr.get("/analyst/measures/cms122/2026/numerator").await;
    assert_eq!(status, 403);
    let (_, audit) = app.db.store.audit_newest(5, 0).await.unwrap();
    assert!(audit.iter().any(|a| a.entry.actor == "user:dr.okafor"
        && a.entry.action == "measure-patients"
        && a.entry.outcome == "denied"));
    app.finish().await;
}

/// Writes through the store: creates and updates (`PUT`) and deletes.
async fn put(store: &coproduce_store::Store, v: Value) {
    let clock = coproduce_testkit::fake_clock();
    let mut tx = store.begin().await.unwrap();
    let r = coproduce_fhir::parse_resource_value(v).unwrap();
    tx.update(r, None, coproduce_core::Clock::now(clock.as_ref()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn delete(store: &coproduce_store::Store, rt: &str, id: &str) {
    let clock = coproduce_testkit::fake_clock();
    let mut tx = store.begin().await.unwrap();
    tx.delete(rt, id, coproduce_core::Clock::now(clock.as_ref()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// CMS122 over the store: (patients, initial population, numerator).
async fn cms122_counts(store: &coproduce_store::Store) -> (u64, u64, u64) {
    let bundle = coproduce_measures::official::bundle("cms122")
        .expect("carried")
        .unwrap();
    let measure = coproduce_app::measures::Measure::new(
        "cms122",
        &bundle,
        time::macros::date!(2026 - 01 - 01),
        time::macros::date!(2026 - 12 - 31),
    )
    .unwrap();
    let clock: std::sync::Arc<dyn coproduce_core::Clock> = coproduce_testkit::fake_clock();
    let c = coproduce_app::measures::run(
        store,
        &clock,
        "test",
        std::sync::Arc::new(measure),
        |_| {},
        |_| {},
    )
    .await
    .unwrap();
    (c.patients, c.initial_population, c.numerator)
}

fn hba1c(id: &str, patient: &str, percent: f64) -> Value {
    serde_json::json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "subject": {"reference": format!("Patient/{patient}")},
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "effectiveDateTime": "2026-05-01",
        "valueQuantity": {"value": percent, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    })
}

/// The measure projection (one row per patient, brought up to date before each run) follows
/// every kind of write, and a database written before it existed is rebuilt on the first
/// run: the figures always equal what the resources say.
#[tokio::test]
async fn the_measure_projection_follows_every_write() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = coproduce_store::Store::open(&db.url).await.unwrap();
        for p in ["p1", "p2"] {
            put(
                &store,
                serde_json::json!({"resourceType": "Patient", "id": p, "birthDate": "1970-02-01"}),
            )
            .await;
        }
        put(&store, serde_json::json!({
            "resourceType": "Condition", "id": "dm", "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
            "onsetDateTime": "2020-01-01"
        }))
        .await;
        put(&store, serde_json::json!({
            "resourceType": "Encounter", "id": "visit", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/p1"},
            "type": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}],
            "period": {"start": "2026-04-01T09:00:00Z", "end": "2026-04-01T09:30:00Z"}
        }))
        .await;
        put(&store, hba1c("a1c", "p1", 10.2)).await;
        assert_eq!(
            cms122_counts(&store).await,
            (2, 1, 1),
            "{backend:?}: above 9%"
        );

        put(&store, hba1c("a1c", "p1", 7.1)).await;
        assert_eq!(
            cms122_counts(&store).await,
            (2, 1, 0),
            "{backend:?}: updated to 7.1%"
        );

        // Moved to another patient: p1 has no reading left (poor control by absence).
        put(&store, hba1c("a1c", "p2", 7.1)).await;
        assert_eq!(
            cms122_counts(&store).await,
            (2, 1, 1),
            "{backend:?}: moved to p2"
        );

        // Rebuilt from scratch, as after an upgrade: the same figures.
        let raw = coproduce_store::Store::open(&db.url).await.unwrap();
        raw.forget_patient_records().await.unwrap();
        assert_eq!(
            cms122_counts(&store).await,
            (2, 1, 1),
            "{backend:?}: rebuilt"
        );

        delete(&store, "Condition", "dm").await;
        assert_eq!(
            cms122_counts(&store).await,
            (2, 0, 0),
            "{backend:?}: no diabetes"
        );

        delete(&store, "Patient", "p2").await;
        assert_eq!(cms122_counts(&store).await.0, 1, "{backend:?}: p2 deleted");
        db.drop_db().await;
    }
}

/// `coproduce measure pqi05` over a hand-built population on both backends: each rule keeps
/// out the stay it should (a COPD code as secondary only, age 35, cystic fibrosis listed, a
/// transfer in, an emergency visit), each qualifying stay counts, the CSV names the
/// Encounters that counted, and the MeasureReport is valid FHIR.
#[tokio::test]
async fn the_pqi05_rules_hold_over_the_store_on_both_backends() {
    use serde_json::json;
    const ICD: &str = "http://hl7.org/fhir/sid/icd-10-cm";
    let patient = |id: &str, born: &str| json!({"resourceType": "Patient", "id": id, "gender": "female", "birthDate": born});
    let condition = |id: &str, pid: &str, code: &str| {
        json!({"resourceType": "Condition", "id": id, "subject": {"reference": format!("Patient/{pid}")},
               "code": {"coding": [{"system": ICD, "code": code}]}})
    };
    let stay = |id: &str, pid: &str, class: &str, diagnoses: &[&str], source: Option<&str>| {
        let mut e = json!({"resourceType": "Encounter", "id": id, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class},
            "subject": {"reference": format!("Patient/{pid}")},
            "period": {"start": "2025-03-01T10:00:00Z", "end": "2025-03-04T10:00:00Z"},
            "diagnosis": diagnoses.iter().enumerate().map(|(i, c)| json!({
                "condition": {"reference": format!("Condition/{c}")}, "rank": i + 1})).collect::<Vec<_>>()});
        if let Some(s) = source {
            e["hospitalization"] = json!({"admitSource": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/admit-source", "code": s}]}});
        }
        e
    };
    let mut resources = vec![
        patient("a", "1950-05-01"),
        condition("a-copd", "a", "J44.1"),
        stay("a-1", "a", "IMP", &["a-copd"], None),
        json!({"resourceType": "Encounter", "id": "a-2", "status": "finished", "class": {"code": "IMP"},
               "subject": {"reference": "Patient/a"},
               "period": {"start": "2025-09-01", "end": "2025-09-03"},
               "reasonCode": [{"coding": [{"system": ICD, "code": "J45.21"}]}]}),
        patient("b", "1950-05-01"),
        condition("b-hf", "b", "I50.9"),
        condition("b-copd", "b", "J44.1"),
        stay("b-1", "b", "IMP", &["b-hf", "b-copd"], None),
        patient("c", "1990-05-01"),
        condition("c-copd", "c", "J44.1"),
        stay("c-1", "c", "IMP", &["c-copd"], None),
        patient("d", "1950-05-01"),
        condition("d-copd", "d", "J44.1"),
        condition("d-cf", "d", "E84.0"),
        stay("d-1", "d", "IMP", &["d-copd", "d-cf"], None),
        patient("e", "1950-05-01"),
        condition("e-copd", "e", "J44.1"),
        stay("e-1", "e", "IMP", &["e-copd"], Some("hosp-trans")),
        patient("f", "1950-05-01"),
        condition("f-copd", "f", "J44.1"),
        stay("f-1", "f", "EMER", &["f-copd"], None),
    ];
    resources.iter_mut().for_each(|r| {
        assert!(
            coproduce_fhir::validate::validate_resource(r).is_ok(),
            "{r}"
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pqi.ndjson");
    std::fs::write(
        &file,
        resources
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let (ok, out) = coproduce(&db.url, &["import", file.to_str().unwrap()]);
        assert!(ok, "{out}");
        let csv = dir.path().join(format!("{backend:?}.csv"));
        let report = dir.path().join(format!("{backend:?}.json"));
        let (ok, out) = coproduce(
            &db.url,
            &[
                "measure",
                "pqi05",
                "--period",
                "2025",
                "--csv",
                csv.to_str().unwrap(),
                "--out",
                report.to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}");
        assert!(out.contains("patients aged 40+ 5"), "{out}");
        assert!(out.contains("qualifying discharges 2"), "{out}");
        assert!(
            out.contains("too young 1   transfers in 1   cystic fibrosis or respiratory anomaly 1"),
            "{out}"
        );
        let rows = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(
            rows.lines().skip(1).collect::<Vec<_>>(),
            vec!["a,Encounter/a-1", "a,Encounter/a-2"],
            "{backend:?}"
        );
        let mr: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        coproduce_fhir::validate::validate_resource(&mr).unwrap();
        assert_eq!(mr["group"][0]["population"][1]["count"], 2);
        db.drop_db().await;
    }
}
