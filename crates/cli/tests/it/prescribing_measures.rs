//! The prescribing measures over the store, on its page and from the command line: Ana, with
//! no insurance, is prescribed Lantus; its check finds the cost and the teach-back due; she
//! says she can't afford it; the pharmacist switches it the next day; the glargine's own
//! barriers are left past their deadline; she confirms its first fill; her HbA1c falls
//! after the switch. Every figure is counted by hand below.

use coproduce_app::caller::Caller;
use coproduce_app::prescribing::FORMULARY_SYSTEM;
use coproduce_core::prescribing::CoverageKind;
use coproduce_core::prescribing::check::{CostAnswers, Getting, Kind};
use coproduce_store::Stored;
use coproduce_testkit::{TestApp, backends};
use serde_json::{Value, json};
use time::Duration;

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let resp = app.post_json(path, body.to_string()).await;
    assert_eq!(resp.status(), 201, "{path}");
    resp.json().await.unwrap()
}

async fn hba1c(app: &TestApp, at: time::OffsetDateTime, percent: f64) {
    post(
        app,
        "/fhir/Observation",
        json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": Stored::instant(at),
            "valueQuantity": {"value": percent, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
        }),
    )
    .await;
}

#[tokio::test]
async fn the_measures_count_checks_barriers_cant_cost_first_fills_and_hba1c_on_every_backend() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("pt-BR").await;
        // Monday 1 June 2026, 10:00 UTC.
        let start = time::macros::datetime!(2026-06-01 10:00 UTC);
        app.clock.set(start);
        let workflows = crate::prescribing::check::clinic(&app).await;
        let p = &workflows.prescribing;
        let dr = crate::rescue::caller(&app, "dr.okafor").await;
        let ana = crate::rescue::caller(&app, "ana").await;
        let rph = crate::rescue::caller(&app, "rph.ali").await;
        p.record_coverage(&dr, "p1", CoverageKind::Uninsured, "")
            .await
            .unwrap();
        p.record_getting(&ana, "p1", Getting::Delivery, "")
            .await
            .unwrap();
        let skipped = CostAnswers {
            skipped_doses: true,
            ..CostAnswers::default()
        };
        p.record_cost_answers(&ana, "p1", skipped).await.unwrap();
        hba1c(&app, start - Duration::days(30), 9.2).await;

        let lantus = post(
            &app,
            "/fhir/MedicationRequest",
            json!({
                "resourceType": "MedicationRequest", "status": "active", "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": FORMULARY_SYSTEM, "code": "lantus-solostar"}]},
                "subject": {"reference": "Patient/p1"},
                "requester": {"reference": "Practitioner/dr"},
                "authoredOn": Stored::instant(start),
            }),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.jobs.run_once().await.unwrap();
        // Ana says she can't afford it: the cost barrier is already open, and her word is
        // recorded on it.
        app.clock.advance(Duration::hours(2));
        p.patient_says_cant(&ana, &lantus, Kind::Afford, "")
            .await
            .unwrap();
        let afford = p
            .barriers(&dr, "p1")
            .await
            .unwrap()
            .into_iter()
            .find(|b| b.kind == Kind::Afford && b.prescription == lantus)
            .unwrap();
        assert!(afford.patient_said, "{afford:?}");
        // The next day the pharmacist switches it (within its two business days).
        app.clock.advance(Duration::days(1));
        let glargine = p
            .switch_medicine(&rph, &afford.task, "glargine-yfgn-pen", true, "agreed")
            .await
            .unwrap();
        // A week later she says she got the glargine and started it.
        app.clock.advance(Duration::days(8));
        p.first_fill(&ana, &glargine, true, "").await.unwrap();
        // Three months after the switch her HbA1c is 8.4%.
        app.clock.set(start + Duration::days(92));
        hba1c(&app, start + Duration::days(91), 8.4).await;

        let r = p.measures(&Caller::system("test:measures")).await.unwrap();
        // Only Ana has no insurance: her figures, by hand.
        let t = &r.by_coverage["uninsured"];
        assert_eq!(t.patients, 1);
        // Two prescriptions (Lantus, then the glargine), both with a complete check.
        assert_eq!((t.prescriptions, t.checked, t.complete), (2, 2, 2));
        // Each has its cost barrier and its teach-back due.
        assert_eq!(t.barriers, 4);
        assert_eq!((t.kind(Kind::Afford), t.kind(Kind::Understand)), (2, 2));
        // One resolved, on time; the glargine's two are past their deadline; Lantus's
        // teach-back ended with it (no verdict).
        assert_eq!((t.resolved, t.on_time, t.deadline_came), (1, 1, 3));
        // Opened when Lantus was checked, resolved 26 hours later.
        let median = t.median_days_to_resolution().unwrap();
        assert!((median - 26.0 / 24.0).abs() < 1e-9, "{median}");
        // One "I can't", switched.
        assert_eq!(t.cant, 1);
        assert_eq!(
            t.cant_outcomes.get("switched-to-alternative"),
            Some(&1),
            "{:?}",
            t.cant_outcomes
        );
        // She skipped doses because of cost.
        assert_eq!(
            (t.cost_answered, t.cost_any, t.cost_items),
            (1, 1, [0, 1, 0, 0])
        );
        // Both check-ins opened; the glargine's confirmed.
        assert_eq!((t.first_fill_asked, t.first_fill_yes), (2, 1));
        // 9.2% before the switch, 8.4% after.
        let change = t.mean_hba1c_change().unwrap();
        assert!((change + 0.8).abs() < 1e-9, "{change}");
        assert_eq!(r.by_language["pt-BR"].barriers, 4);
        // What was written (the patient's word on an open barrier among it) exports as valid
        // FHIR R4 and imports back unchanged.
        let out = tempfile::tempdir().unwrap();
        let counts = crate::export_valid_and_reimport(
            &app.db.url,
            out.path(),
            &["MedicationRequest", "Observation", "Task", "Coverage"],
        );
        assert_eq!((counts[0], counts[1], counts[3]), (0, 0, 0), "{counts:?}");

        // The analyst reads them on their page, with the plots; the clinician may not.
        let mut ida = crate::measure::analyst(&app, "quality.ida").await;
        let (status, home) = ida.get("/").await;
        assert_eq!(status, 200);
        assert!(home.contains("href=\"/prescribing/measures\""), "{home}");
        let (status, page) = ida.get("/prescribing/measures").await;
        assert_eq!(status, 200, "{page}");
        let table = |id: &str| {
            page.split(&format!("id=\"{id}\""))
                .nth(1)
                .and_then(|x| x.split("</table>").next())
                .unwrap_or_else(|| panic!("{id} in {page}"))
                .to_string()
        };
        let kinds = table("rx-kinds");
        assert!(kinds.contains("The cost</th><td>2</td>"), "{kinds}");
        assert!(kinds.contains("How to take it</th><td>2</td>"), "{kinds}");
        let outcomes = table("rx-outcomes");
        assert!(
            outcomes.contains("Switched to an alternative</th><td>1</td>"),
            "{outcomes}"
        );
        let crn = table("rx-crn");
        assert!(
            crn.contains("Skipped doses</th><td>100.0%</td><td>15.8%</td>"),
            "{crn}"
        );
        assert!(
            page.contains("mean change -0.80 points over 1 resolved"),
            "{page}"
        );
        assert!(page.contains("<svg"), "the plots are drawn");
        assert!(!page.contains("Ana Silva"), "aggregates only");
        let mut doctor = app.sign_in("dr.okafor").await;
        let (status, _) = doctor.get("/prescribing/measures").await;
        assert_eq!(status, 403);
        app.finish().await;
    }
}

#[test]
fn the_command_measures_a_generated_population() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("empty.db").display());
    let (ok, out) = crate::coproduce(
        &db,
        &["prescribing", "--generated", "20000", "--by", "coverage"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("20000 generated patients"), "{out}");
    assert!(out.contains("(Medicare survey: 18.3%)"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("uninsured ")), "{out}");
    let (ok, out) = crate::coproduce(&db, &["prescribing", "--generated", "10", "--by", "colour"]);
    assert!(!ok);
    assert!(
        out.contains("--by takes language, age, sex or coverage"),
        "{out}"
    );
}

/// The generator's FHIR, imported, measures as its facts do in memory: the store's pass reads
/// every prescription, check, check-in, barrier, coverage and cost answer the generator
/// wrote, whatever the backend.
#[tokio::test]
async fn a_generated_population_measures_the_same_from_the_store_as_from_its_facts_on_every_backend()
 {
    use coproduce_app::measures::synthetic::{Config, patient};
    use coproduce_app::prescribing::synthetic::{population, resources};
    const N: u64 = 400;
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let end = time::macros::datetime!(2026-11-27 10:00 UTC);
        app.clock.set(end);
        let cfg = Config {
            seed: 5,
            ..Config::default()
        };
        let records = (0..N).flat_map(|i| {
            let mut all = patient(&cfg, i);
            let id = all[0]["id"].as_str().unwrap().to_string();
            all.extend(resources(cfg.seed, i, &id, end));
            all
        });
        crate::import_all(&app, records).await;

        let workflows = crate::prescribing::check::clinic(&app).await;
        let stored = workflows
            .prescribing
            .measures(&Caller::system("test:measures"))
            .await
            .unwrap();
        let (people, prescriptions, barriers) = population(cfg.seed, N, end);
        let facts =
            coproduce_core::prescribing::measures::report(&people, &prescriptions, &barriers, end);
        let (s, f) = (&stored.overall, &facts.overall);
        assert!(
            f.barriers > 50 && f.cant > 0,
            "a population with barriers: {f:?}"
        );
        let mut m = s.minutes_to_resolution.clone();
        let mut n = f.minutes_to_resolution.clone();
        m.sort_unstable();
        n.sort_unstable();
        assert_eq!(m, n);
        for (what, a, b) in [
            ("patients", s.patients, f.patients),
            ("prescriptions", s.prescriptions, f.prescriptions),
            ("checked", s.checked, f.checked),
            ("complete", s.complete, f.complete),
            ("barriers", s.barriers, f.barriers),
            ("resolved", s.resolved, f.resolved),
            ("on time", s.on_time, f.on_time),
            ("deadline came", s.deadline_came, f.deadline_came),
            ("I can't", s.cant, f.cant),
            ("cost answered", s.cost_answered, f.cost_answered),
            ("cost any", s.cost_any, f.cost_any),
            ("first fill asked", s.first_fill_asked, f.first_fill_asked),
            ("first fill yes", s.first_fill_yes, f.first_fill_yes),
            ("first fill no", s.first_fill_no, f.first_fill_no),
        ] {
            assert_eq!(a, b, "{what}");
        }
        assert_eq!(s.by_kind, f.by_kind);
        assert_eq!(s.cost_items, f.cost_items);
        assert_eq!(s.cant_outcomes, f.cant_outcomes);
        let per_coverage = |r: &coproduce_core::prescribing::measures::Report| {
            r.by_coverage
                .iter()
                .map(|(k, t)| (k.clone(), t.patients, t.prescriptions, t.barriers))
                .collect::<Vec<_>>()
        };
        assert_eq!(per_coverage(&stored), per_coverage(&facts));
        // The diabetes patients' own HbA1c readings surround some resolutions.
        assert!(!s.hba1c_changes.is_empty());
        app.finish().await;
    }
}
