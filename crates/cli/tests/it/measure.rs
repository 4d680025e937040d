//! `coproduce measure` over the store, on SQLite and PostgreSQL: the official test patients
//! of CMS122 and CMS165 are imported together, each measure is run over all of them, and
//! every test patient's populations in the per-patient CSV equal the expected ones.

use coproduce_testkit::{TestDb, backends};
use serde_json::Value;
use std::collections::HashMap;

use crate::coproduce;

#[tokio::test]
async fn measures_run_over_the_store_on_both_backends() {
    let ecqm = crate::shared().join("peers/ecqm");
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
            let (ok, out) = coproduce(
                &db.url,
                &[
                    "measure",
                    &name.to_lowercase(),
                    "--bundle",
                    ecqm.join(name)
                        .join("measure-bundle.json")
                        .to_str()
                        .unwrap(),
                    "--period",
                    "2026",
                    "--csv",
                    csv.to_str().unwrap(),
                    "--out",
                    report.to_str().unwrap(),
                ],
            );
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
        let (ok, out) = coproduce(
            &db.url,
            &[
                "measure",
                "cms165",
                "--bundle",
                crate::shared()
                    .join("peers/ecqm/CMS165/measure-bundle.json")
                    .to_str()
                    .unwrap(),
                "--period",
                "2026",
            ],
        );
        assert!(ok, "{out}");
        assert!(out.contains("patients 1500"), "{out}");
        db.drop_db().await;
    }
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
    app.accounts
        .add_user(coproduce_app::accounts::NewUser {
            username: "ida".into(),
            roles: vec![coproduce_core::access::Role::QualityAnalyst],
            fhir_ref: None,
            password: Some(coproduce_testkit::PASSWORD.into()),
        })
        .await
        .expect("an analyst");
    let mut ida = app.sign_in("ida").await;
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
