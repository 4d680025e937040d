//! The formulary from the command line: modelled from the shipped NADAC week, loaded whole or
//! not at all, shown with its prices and alternatives, replaced by a later file without
//! losing what it no longer lists, and exported as valid FHIR.

use coproduce_testkit::{TestApp, backends};

async fn formulary_status(url: &str) -> Vec<(String, String)> {
    let store = coproduce_store::Store::open(url).await.unwrap();
    let found = store
        .search(&coproduce_fhir::query::SearchQuery::all(
            "MedicationKnowledge",
        ))
        .await
        .unwrap();
    let mut out: Vec<(String, String)> = found
        .matches
        .iter()
        .map(|s| {
            let v = s.json().unwrap();
            (s.id.clone(), v["status"].as_str().unwrap().to_string())
        })
        .collect();
    out.sort();
    store.close().await;
    out
}

#[tokio::test]
async fn the_formulary_is_modelled_loaded_whole_shown_and_replaced_on_every_backend() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.db.store.close().await;
        let url = app.db.url.clone();
        let dir = tempfile::tempdir().unwrap();
        let modelled = dir.path().join("formulary.csv");
        let (ok, report) = crate::coproduce(
            &url,
            &["formulary", "model", "--out", modelled.to_str().unwrap()],
        );
        assert!(ok, "{report}");
        assert!(report.contains("25 drugs"), "{report}");
        let text = std::fs::read_to_string(&modelled).unwrap();
        assert!(
            text.contains("lantus-solostar,,Lantus SoloStar (insulin glargine),insulin glargine,100 units/mL,pen,long-acting-insulin,5 pens (15 mL),30,126.12,4.00,35.00,50.00,75.13,modelled,"),
            "{text}"
        );

        // A bad line anywhere: named, and nothing of the file is loaded.
        let bad = dir.path().join("bad.csv");
        std::fs::write(
            &bad,
            format!(
                "{text}late-drug,,Late,late,1 mg,tablet,statin,30 tablets,30,about 12,,,,,quoted,\n"
            ),
        )
        .unwrap();
        let (ok, report) = crate::coproduce(&url, &["formulary", "load", bad.to_str().unwrap()]);
        assert!(!ok, "{report}");
        assert!(
            report.contains("line 27") && report.contains("uninsured 'about 12'"),
            "{report}"
        );
        assert!(report.contains("nothing was loaded"), "{report}");
        assert!(
            formulary_status(&url).await.is_empty(),
            "nothing of the bad file"
        );

        let (ok, report) =
            crate::coproduce(&url, &["formulary", "load", modelled.to_str().unwrap()]);
        assert!(ok, "{report}");
        assert!(report.contains("25 drugs loaded"), "{report}");
        let (ok, shown) = crate::coproduce(&url, &["formulary", "show", "--coverage", "uninsured"]);
        assert!(ok, "{shown}");
        assert!(
            shown.contains(
                "cheaper for uninsured: glargine-yfgn-pen 100 units/mL at $64.81 per 30 days (saves $61.31 a fill)"
            ),
            "{shown}"
        );
        assert!(shown.contains("modelled prices are estimates"), "{shown}");
        let (ok, refused) = crate::coproduce(&url, &["formulary", "show", "--coverage", "cash"]);
        assert!(
            !ok && refused.contains("'cash' is not a coverage kind"),
            "{refused}"
        );

        // A later file without Basaglar: it stays in the store (what was prescribed from it
        // still resolves) but is no longer offered.
        let later = dir.path().join("later.csv");
        let without: String = text
            .lines()
            .filter(|l| !l.starts_with("basaglar-kwikpen,"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&later, without).unwrap();
        let (ok, report) = crate::coproduce(&url, &["formulary", "load", later.to_str().unwrap()]);
        assert!(ok, "{report}");
        assert!(
            report.contains("24 drugs loaded") && report.contains("1 no longer listed"),
            "{report}"
        );
        let status = formulary_status(&url).await;
        assert_eq!(status.len(), 25);
        assert!(status.contains(&("basaglar-kwikpen".into(), "inactive".into())));
        assert_eq!(status.iter().filter(|(_, s)| s == "active").count(), 24);
        let (_, shown) = crate::coproduce(&url, &["formulary", "show"]);
        assert!(!shown.contains("basaglar"), "{shown}");

        // Stored as FHIR that validates and imports back unchanged.
        let out = tempfile::tempdir().unwrap();
        let counts = crate::export_valid_and_reimport(&url, out.path(), &["MedicationKnowledge"]);
        assert_eq!((counts[0], counts[1], counts[3]), (0, 0, 0), "{counts:?}");
        app.finish().await;
    }
}

pub(crate) mod check {
    use coproduce_app::FhirApi;
    use coproduce_app::caller::Caller;
    use coproduce_app::prescribing::model;
    use coproduce_app::workflows::{Settings, Workflows};
    use coproduce_core::calendar::BusinessCalendar;
    use coproduce_core::prescribing::CoverageKind;
    use coproduce_core::prescribing::check::{
        BarrierRules, CostAnswers, Getting, Kind, Resolution,
    };
    use coproduce_core::{Clock, access::Role};
    use coproduce_store::Stored;
    use coproduce_testkit::{TestApp, backends};
    use serde_json::{Value, json};
    use std::sync::Arc;

    async fn prescribe(app: &TestApp, drug: &str) -> String {
        let body = json!({
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": coproduce_app::prescribing::FORMULARY_SYSTEM, "code": drug}]},
            "subject": {"reference": "Patient/p1"},
            "requester": {"reference": "Practitioner/dr"},
            "authoredOn": Stored::instant(app.clock.now()),
        });
        let resp = app
            .post_json("/fhir/MedicationRequest", body.to_string())
            .await;
        assert_eq!(resp.status(), 201);
        let v: Value = resp.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// The workflows over the test app's store, with the demo's formulary loaded.
    pub(crate) async fn clinic(app: &TestApp) -> Workflows {
        let clock: Arc<dyn Clock> = app.clock.clone();
        let workflows = Workflows::new(
            FhirApi::new(app.db.store.clone(), clock),
            &Settings::default(),
        );
        workflows
            .prescribing
            .load_formulary(&Caller::system("test:formulary"), &model::demo().unwrap())
            .await
            .unwrap();
        workflows
    }

    async fn read(app: &TestApp, path: &str) -> Value {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    /// The check's finding per question, from its Observation.
    fn findings(check: &Value) -> Vec<(String, String)> {
        check["component"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["code"]["coding"][0]["code"].as_str().unwrap().to_string(),
                    c["valueCodeableConcept"]["coding"][0]["code"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn the_check_runs_on_a_prescription_from_the_api_and_its_barriers_go_to_the_team_on_every_backend()
     {
        for backend in backends() {
            let app = TestApp::spawn(backend).await;
            app.seed_care_team("pt-BR").await;
            let workflows = clinic(&app).await;
            let p = &workflows.prescribing;
            let system = Caller::system("test:check");
            let ana = crate::rescue::caller(&app, "ana").await;
            let dr = crate::rescue::caller(&app, "dr.okafor").await;
            let rph = crate::rescue::caller(&app, "rph.ali").await;
            // Ana has no insurance, picks her medicines up, and has not gone without.
            p.record_coverage(&dr, "p1", CoverageKind::Uninsured, "")
                .await
                .unwrap();
            p.record_getting(&ana, "p1", Getting::PickUp, "Main Street Pharmacy")
                .await
                .unwrap();
            p.record_cost_answers(&ana, "p1", CostAnswers::default())
                .await
                .unwrap();

            // An outside EHR sends a prescription for Lantus through the FHIR API: it waits
            // for the watcher's next pass, which checks it once.
            let lantus = prescribe(&app, "lantus-solostar").await;
            let mr = read(&app, &format!("/fhir/MedicationRequest/{lantus}")).await;
            assert!(
                mr["meta"]["tag"].to_string().contains("check-pending"),
                "{mr}"
            );
            assert_eq!(app.jobs.run_once().await.unwrap().deadlines.checked, 1);
            assert_eq!(app.jobs.run_once().await.unwrap().deadlines.checked, 0);
            let mr = read(&app, &format!("/fhir/MedicationRequest/{lantus}")).await;
            assert!(!mr.to_string().contains("check-pending"), "{mr}");
            let check = read(&app, &format!("/fhir/Observation/{lantus}-check")).await;
            assert_eq!(check["status"], "final", "every question answered");
            assert_eq!(
                findings(&check),
                [
                    ("afford".to_string(), "barrier".to_string()),
                    ("reach".into(), "clear".into()),
                    ("understand".into(), "barrier".into()),
                    ("language".into(), "clear".into()),
                ]
            );
            assert!(
                check.to_string().contains(
                    "a fill costs the patient $126.12; 1 cheaper alternative(s) on the formulary"
                ),
                "{check}"
            );

            // Each barrier is a Task for the pharmacist, due in its kind's time.
            let barriers = p.barriers(&dr, "p1").await.unwrap();
            let mut kinds: Vec<Kind> = barriers.iter().map(|b| b.kind).collect();
            kinds.sort();
            assert_eq!(kinds, [Kind::Afford, Kind::Understand]);
            let cal = BusinessCalendar::default();
            for b in &barriers {
                assert_eq!(b.owner, Some(Role::Pharmacist));
                let due = BarrierRules::default()
                    .chain(b.kind)
                    .open(&cal, app.clock.now())
                    .due;
                assert_eq!(b.due, Some(due));
                assert!(b.is_open());
            }
            // Ana sees them too (they are in her record). Her "I can't afford it" joins the
            // cost barrier already open, with her words.
            assert_eq!(p.barriers(&ana, "p1").await.unwrap().len(), 2);
            let same = p
                .patient_says_cant(&ana, &lantus, Kind::Afford, "não tenho como pagar")
                .await
                .unwrap();
            let afford = p
                .barriers(&ana, "p1")
                .await
                .unwrap()
                .into_iter()
                .find(|b| b.kind == Kind::Afford)
                .unwrap();
            assert_eq!(same, afford.task);
            assert_eq!(afford.words.as_deref(), Some("não tenho como pagar"));
            assert_eq!(p.barriers(&ana, "p1").await.unwrap().len(), 2);

            // The pharmacist does the teach-back; switching needs the prescriber's agreement.
            let task = |kind: Kind| {
                barriers
                    .iter()
                    .find(|b| b.kind == kind)
                    .unwrap()
                    .task
                    .clone()
            };
            // The pharmacist's teach-back is recorded with the barrier it solves (the
            // prescription below, of the same medicine, finds it and checks clean).
            p.resolve_barrier(
                &rph,
                &task(Kind::Understand),
                Resolution::TeachBackDone,
                false,
                "",
            )
            .await
            .unwrap();
            let refused = p
                .resolve_barrier(
                    &rph,
                    &task(Kind::Afford),
                    Resolution::SwitchedToAlternative,
                    false,
                    "",
                )
                .await
                .unwrap_err();
            assert!(
                refused.to_string().contains("prescriber's agreement"),
                "{refused}"
            );
            let refused = p
                .resolve_barrier(&ana, &task(Kind::Afford), Resolution::Coupon, false, "")
                .await
                .unwrap_err();
            assert!(refused.to_string().contains("care team"), "{refused}");
            let resolved = p
                .resolve_barrier(
                    &rph,
                    &task(Kind::Afford),
                    Resolution::SwitchedToAlternative,
                    true,
                    "Dr Okafor agreed to insulin glargine-yfgn",
                )
                .await
                .unwrap();
            assert_eq!(resolved.status, "completed");
            assert_eq!(
                resolved.resolution.as_deref(),
                Some("switched-to-alternative")
            );
            assert!(
                p.barriers(&dr, "p1")
                    .await
                    .unwrap()
                    .iter()
                    .all(|b| !b.is_open())
            );

            // Later, with Medicaid, a prescription she was taught before checks clean: no Task.
            p.record_coverage(&dr, "p1", CoverageKind::Medicaid, "State Medicaid")
                .await
                .unwrap();
            p.record_getting(&ana, "p1", Getting::Delivery, "")
                .await
                .unwrap();
            let again = prescribe(&app, "lantus-solostar").await;
            let check = p.check(&system, &again).await.unwrap();
            assert!(check.clean(), "{check:?}");
            assert_eq!(p.barriers(&dr, "p1").await.unwrap().len(), 2, "no new Task");
            // Then Ana says she can't afford it: the clean check reopens with her words, and
            // saying it twice opens one barrier.
            let t1 = p
                .patient_says_cant(&ana, &again, Kind::Afford, "o copay subiu")
                .await
                .unwrap();
            let t2 = p
                .patient_says_cant(&ana, &again, Kind::Afford, "")
                .await
                .unwrap();
            assert_eq!(t1, t2);
            let open: Vec<_> = p
                .barriers(&dr, "p1")
                .await
                .unwrap()
                .into_iter()
                .filter(|b| b.is_open())
                .collect();
            assert_eq!(open.len(), 1);
            assert_eq!(
                (open[0].kind, open[0].reason.as_str(), open[0].owner),
                (Kind::Afford, "patient-says-cant", Some(Role::Pharmacist))
            );
            assert!(open[0].english.contains("o copay subiu"), "{:?}", open[0]);
            let check = read(&app, &format!("/fhir/Observation/{again}-check")).await;
            assert_eq!(check["interpretation"][0]["coding"][0]["code"], "barriers");

            // A prescription brought by an import is a record of the past: no check.
            let mut importer = coproduce_app::Importer::new(
                app.db.store.clone(),
                app.clock.clone(),
                "test:import",
            );
            importer
                .add(coproduce_fhir::stream::SourceItem::new(
                    "old",
                    Ok(json!({
                        "resourceType": "MedicationRequest", "id": "old-lantus", "status": "active",
                        "intent": "order", "subject": {"reference": "Patient/p1"},
                        "medicationCodeableConcept": {"text": "Lantus"},
                    })),
                ))
                .await
                .unwrap();
            importer.finish().await.unwrap();
            let old = read(&app, "/fhir/MedicationRequest/old-lantus").await;
            assert!(!old.to_string().contains("check-pending"), "{old}");
            assert_eq!(app.jobs.run_once().await.unwrap().deadlines.checked, 0);

            // One handed over as it was written (a rescue pack given at the visit) is
            // untagged without a check.
            let pack = prescribe(&app, "prednisone-20").await;
            let dispense = json!({
                "resourceType": "MedicationDispense", "status": "completed",
                "medicationCodeableConcept": {"text": "Prednisone 20 mg"},
                "subject": {"reference": "Patient/p1"},
                "authorizingPrescription": [{"reference": format!("MedicationRequest/{pack}")}],
            });
            let resp = app
                .post_json("/fhir/MedicationDispense", dispense.to_string())
                .await;
            assert_eq!(resp.status(), 201);
            assert_eq!(app.jobs.run_once().await.unwrap().deadlines.checked, 0);
            let pack_mr = read(&app, &format!("/fhir/MedicationRequest/{pack}")).await;
            assert!(!pack_mr.to_string().contains("check-pending"), "{pack_mr}");
            assert_eq!(
                app.get(&format!("/fhir/Observation/{pack}-check"))
                    .await
                    .status(),
                404
            );
            app.finish().await;
        }
    }

    #[tokio::test]
    async fn a_patient_says_on_her_page_in_portuguese_that_she_cant_afford_a_medicine_and_the_pharmacist_solves_it()
     {
        for backend in backends() {
            let app = TestApp::spawn(backend).await;
            app.seed_care_team("pt-BR").await;
            let workflows = clinic(&app).await;
            let p = &workflows.prescribing;
            let dr = crate::rescue::caller(&app, "dr.okafor").await;
            let ana_caller = crate::rescue::caller(&app, "ana").await;
            p.record_coverage(&dr, "p1", CoverageKind::Medicaid, "")
                .await
                .unwrap();
            p.record_getting(&ana_caller, "p1", Getting::Delivery, "")
                .await
                .unwrap();
            p.record_cost_answers(&ana_caller, "p1", CostAnswers::default())
                .await
                .unwrap();
            let lantus = prescribe(&app, "lantus-solostar").await;
            assert_eq!(app.jobs.run_once().await.unwrap().deadlines.checked, 1);

            // Ana's home leads to her medicines; the page asks her the question in her
            // language and shows who is on the teach-back still due.
            let mut ana = app.sign_in("ana").await;
            let (status, home) = ana.get("/patients/p1").await;
            assert_eq!(status, 200);
            assert!(home.contains("id=\"medicines-box\""), "{home}");
            let page = "/patients/p1/medicines";
            let (status, text) = ana.get(page).await;
            assert_eq!(status, 200, "{text}");
            assert!(text.contains("Meus medicamentos"), "{text}");
            assert!(
                text.contains("Lantus SoloStar (insulin glargine) 100 units/mL"),
                "{text}"
            );
            assert!(
                text.contains("Você consegue obter e usar este medicamento?"),
                "{text}"
            );
            assert!(
                text.contains("Sua equipe está cuidando do que atrapalha."),
                "{text}"
            );
            assert!(
                text.contains("Como tomar. Quem está cuidando: Farmacêutico"),
                "{text}"
            );
            assert!(
                !text.contains("Marcar como resolvido"),
                "the team's form is not hers"
            );

            // She can't afford it, in her words; no answer is refused with the reason.
            let resp = ana
                .post(
                    &format!("/patients/p1/medicines/{lantus}/answer"),
                    &[("answer", "afford"), ("words", "o copay subiu")],
                )
                .await;
            assert_eq!(resp.status(), 303);
            let resp = ana
                .post(
                    &format!("/patients/p1/medicines/{lantus}/answer"),
                    &[("answer", "maybe")],
                )
                .await;
            assert_eq!(resp.status(), 422);
            assert!(
                resp.text()
                    .await
                    .unwrap()
                    .contains("Escolha uma das respostas.")
            );
            let (_, text) = ana.get(page).await;
            assert!(
                text.contains("O custo. Quem está cuidando: Farmacêutico"),
                "{text}"
            );
            assert!(text.contains("“o copay subiu”"), "{text}");

            // The pharmacist solves it on the same page: a switch needs the prescriber's
            // agreement, which she ticks once she has it.
            let mut rph = app.sign_in("rph.ali").await;
            let (status, text) = rph.get(page).await;
            assert_eq!(status, 200, "{text}");
            assert!(text.contains("Mark as solved"), "{text}");
            let afford = p
                .barriers(&dr, "p1")
                .await
                .unwrap()
                .into_iter()
                .find(|b| b.kind == Kind::Afford)
                .unwrap()
                .task;
            let resolve = format!("/patients/p1/medicines/barriers/{afford}/resolve");
            let resp = rph
                .post(&resolve, &[("resolution", "switched-to-alternative")])
                .await;
            assert_eq!(resp.status(), 422);
            assert!(
                resp.text()
                    .await
                    .unwrap()
                    .contains("Changing the medicine needs the prescriber")
            );
            let resp = rph
                .post(
                    &resolve,
                    &[
                        ("resolution", "switched-to-alternative"),
                        ("agreed", "yes"),
                        ("note", "Dr Okafor agreed"),
                    ],
                )
                .await;
            assert_eq!(resp.status(), 303);

            // Ana reads what was done, in her words.
            let (_, text) = ana.get(page).await;
            assert!(
                text.contains("O custo: resolvido (troca por um medicamento que custa menos)."),
                "{text}"
            );
            // Her daughter, whose grant covers medicines, reads the page too.
            let mut clara = app.sign_in("clara").await;
            let (status, text) = clara.get(page).await;
            assert_eq!(status, 200);
            assert!(text.contains("Lantus SoloStar"), "{text}");
            app.finish().await;
        }
    }

    #[tokio::test]
    async fn the_clinician_sees_the_check_before_signing_and_the_patient_reads_the_directions_in_her_language()
     {
        let app = TestApp::spawn(coproduce_testkit::TestBackend::Sqlite).await;
        app.seed_care_team("pt-BR").await;
        let workflows = clinic(&app).await;
        let p = &workflows.prescribing;
        let dr_caller = crate::rescue::caller(&app, "dr.okafor").await;
        p.record_coverage(&dr_caller, "p1", CoverageKind::Uninsured, "")
            .await
            .unwrap();
        let mut dr = app.sign_in("dr.okafor").await;
        let (status, text) = dr.get("/patients/p1/medicines").await;
        assert_eq!(status, 200);
        assert!(text.contains("href=\"/patients/p1/prescribe\""), "{text}");
        let (status, text) = dr.get("/patients/p1/prescribe?drug=lantus-solostar").await;
        assert_eq!(status, 200, "{text}");
        for shown in [
            "No insurance (cash price): $126.12 for 5 pens (15 mL) (30 days), modelled from acquisition costs",
            "Insulin glargine-yfgn 100 units/mL: $64.81 a fill (saves $61.31)",
            "a fill costs the patient $126.12; 1 cheaper alternative(s) on the formulary",
            "how the patient gets medicines is not recorded",
            "Português (Brasil)",
            "Aplique uma unidade uma vez ao dia.",
        ] {
            assert!(text.contains(shown), "{shown}: {text}");
        }
        // Directions that do not make sense are refused with the reason; nothing is written.
        let resp = dr
            .post(
                "/patients/p1/prescribe",
                &[
                    ("drug", "glargine-yfgn-pen"),
                    ("amount", "2000"),
                    ("unit", "insulin-unit"),
                    ("frequency", "at-bedtime"),
                ],
            )
            .await;
        assert_eq!(resp.status(), 422);
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("The directions are not complete")
        );
        assert!(p.medicines(&dr_caller, "p1").await.unwrap().is_empty());
        // The cheaper alternative, signed: checked at once, the directions in Portuguese.
        let resp = dr
            .post(
                "/patients/p1/prescribe",
                &[
                    ("drug", "glargine-yfgn-pen"),
                    ("amount", "20"),
                    ("unit", "insulin-unit"),
                    ("frequency", "at-bedtime"),
                ],
            )
            .await;
        assert_eq!(resp.status(), 303);
        let medicines = p.medicines(&dr_caller, "p1").await.unwrap();
        assert_eq!(medicines.len(), 1);
        // How she gets medicines and her cost answers are not known yet: incomplete, and the
        // barriers already found (the cost, the teach-back) are the team's tasks.
        assert_eq!(medicines[0].check.as_deref(), Some("incomplete"));
        let mut kinds: Vec<Kind> = medicines[0].barriers.iter().map(|b| b.kind).collect();
        kinds.sort();
        assert_eq!(kinds, [Kind::Afford, Kind::Understand]);
        let mr = read(
            &app,
            &format!("/fhir/MedicationRequest/{}", medicines[0].id),
        )
        .await;
        assert_eq!(
            mr["dosageInstruction"][0]["patientInstruction"],
            "Aplique 20 unidades na hora de dormir."
        );
        assert_eq!(
            mr["dosageInstruction"][0]["text"],
            "Inject 20 units at bedtime."
        );
        assert!(!mr.to_string().contains("check-pending"), "{mr}");
        assert_eq!(app.jobs.run_once().await.unwrap().deadlines.checked, 0);
        // Only a clinician on her team prescribes.
        let mut rph = app.sign_in("rph.ali").await;
        let (status, _) = rph.get("/patients/p1/prescribe").await;
        assert_eq!(status, 403);
        // Ana reads the directions in Portuguese; a week later she is asked whether she got it
        // and started it.
        let mut ana = app.sign_in("ana").await;
        let (_, text) = ana.get("/patients/p1/medicines").await;
        assert!(
            text.contains("Aplique 20 unidades na hora de dormir."),
            "{text}"
        );
        let question = "Você conseguiu obter este medicamento e começar a usá-lo?";
        assert!(!text.contains(question), "not before day 7");
        app.clock.advance(time::Duration::days(7));
        // (A week on, her session has ended: she signs in again.)
        let mut ana = app.sign_in("ana").await;
        let (_, text) = ana.get("/patients/p1/medicines").await;
        assert!(text.contains(question), "{text}");
        let resp = ana
            .post(
                &format!("/patients/p1/medicines/{}/first-fill", medicines[0].id),
                &[("answer", "yes")],
            )
            .await;
        assert_eq!(resp.status(), 303);
        let (_, text) = ana.get("/patients/p1/medicines").await;
        assert!(!text.contains(question), "{text}");
        assert!(
            text.contains("Você nos disse que conseguiu o medicamento e começou a usá-lo."),
            "{text}"
        );
        // A "no" at the check-in is the team's work, in her words or in plain ones.
        let ana_caller = crate::rescue::caller(&app, "ana").await;
        let second = prescribe(&app, "metformin-500").await;
        p.first_fill(&ana_caller, &second, false, "").await.unwrap();
        let other = p
            .barriers(&dr_caller, "p1")
            .await
            .unwrap()
            .into_iter()
            .find(|b| b.prescription == second && b.kind == Kind::Other)
            .expect("a barrier for the team");
        assert!(
            other.is_open()
                && other
                    .english
                    .contains("did not get the medicine or start it")
        );
        assert_eq!(other.owner, Some(Role::Pharmacist));
        app.finish().await;
    }

    #[tokio::test]
    async fn the_patient_says_how_she_pays_for_and_gets_her_medicines_and_answers_the_cost_questions()
     {
        for backend in backends() {
            let app = TestApp::spawn(backend).await;
            app.seed_care_team("es").await;
            let workflows = clinic(&app).await;
            let p = &workflows.prescribing;
            let mut ana = app.sign_in("ana").await;
            let (status, text) = ana.get("/patients/p1/medicines/about").await;
            assert_eq!(status, 200, "{text}");
            assert!(text.contains("¿Cómo paga sus medicamentos?"), "{text}");
            assert!(
                text.contains("…se saltó dosis para que el medicamento durara más?"),
                "{text}"
            );
            // Half the cost questions answered: refused with the reason, nothing saved.
            let resp = ana
                .post(
                    "/patients/p1/medicines/about",
                    &[("coverage", "medicaid"), ("did-not-fill", "yes")],
                )
                .await;
            assert_eq!(resp.status(), 422);
            assert!(
                resp.text()
                    .await
                    .unwrap()
                    .contains("Responda las cuatro preguntas")
            );
            let ana_caller = crate::rescue::caller(&app, "ana").await;
            assert_eq!(
                p.patient_side(&ana_caller, "p1", None)
                    .await
                    .unwrap()
                    .coverage,
                None
            );
            let resp = ana
                .post(
                    "/patients/p1/medicines/about",
                    &[
                        ("coverage", "medicaid"),
                        ("getting", "pick-up"),
                        ("pharmacy", "Farmacia Central"),
                        ("written", "yes"),
                        ("did-not-fill", "no"),
                        ("skipped-doses", "yes"),
                        ("smaller-doses", "no"),
                        ("delayed-fill", "no"),
                    ],
                )
                .await;
            assert_eq!(resp.status(), 303);
            let side = p.patient_side(&ana_caller, "p1", None).await.unwrap();
            assert_eq!(side.coverage, Some(CoverageKind::Medicaid));
            assert_eq!(side.getting, Some(Getting::PickUp));
            assert_eq!(side.wants_written, Some(true));
            let answers = side.cost_answers.unwrap();
            assert!(answers.skipped_doses && !answers.did_not_fill && answers.any());
            // The page shows what she said.
            let (_, text) = ana.get("/patients/p1/medicines/about").await;
            assert!(text.contains("value=\"medicaid\" checked"), "{text}");
            let written = text
                .split("id=\"q-written\"")
                .nth(1)
                .and_then(|x| x.split("</fieldset>").next())
                .unwrap_or_else(|| panic!("{text}"));
            assert!(
                written.contains("¿Quiere que le den por escrito las instrucciones")
                    && written.contains("value=\"yes\" checked"),
                "{written}"
            );
            // The response yields one Observation per question, in step with it.
            let resp = app.get("/fhir/Observation?subject=Patient/p1&code=https://coproduce.health/fhir/CodeSystem/prescribing|crn-skipped-doses").await;
            let bundle: Value = resp.json().await.unwrap();
            assert_eq!(
                bundle["entry"].as_array().map_or(0, Vec::len),
                1,
                "{bundle}"
            );
            assert_eq!(bundle["entry"][0]["resource"]["valueBoolean"], true);
            // Through the API, an answer that is not yes or no is refused and nothing is written.
            let bad = json!({
                "resourceType": "QuestionnaireResponse",
                "questionnaire": coproduce_app::prescribing::check::COST_QUESTIONNAIRE,
                "status": "completed",
                "subject": {"reference": "Patient/p1"},
                "item": [{"linkId": "skipped-doses", "answer": [{"valueString": "sometimes"}]}],
            });
            let resp = app
                .post_json("/fhir/QuestionnaireResponse", bad.to_string())
                .await;
            assert_eq!(resp.status(), 400);
            let outcome: Value = resp.json().await.unwrap();
            assert!(outcome.to_string().contains("yes or no"), "{outcome}");
            let resp = app
                .get("/fhir/QuestionnaireResponse?subject=Patient/p1")
                .await;
            let bundle: Value = resp.json().await.unwrap();
            assert_eq!(
                bundle["entry"].as_array().map_or(0, Vec::len),
                1,
                "only the page's response"
            );
            let out = tempfile::tempdir().unwrap();
            let counts = crate::export_valid_and_reimport(
                &app.db.url,
                out.path(),
                &["QuestionnaireResponse", "Observation", "Coverage"],
            );
            assert_eq!((counts[0], counts[1], counts[3]), (0, 0, 0), "{counts:?}");
            app.finish().await;
        }
    }

    #[tokio::test]
    async fn the_pharmacist_finds_the_barrier_on_her_worklist_and_switches_to_the_cheaper_medicine()
    {
        for backend in backends() {
            let app = TestApp::spawn(backend).await;
            app.seed_care_team("pt-BR").await;
            let workflows = clinic(&app).await;
            let p = &workflows.prescribing;
            let dr_caller = crate::rescue::caller(&app, "dr.okafor").await;
            p.record_coverage(&dr_caller, "p1", CoverageKind::Uninsured, "")
                .await
                .unwrap();
            let lantus = prescribe(&app, "lantus-solostar").await;
            app.jobs.run_once().await.unwrap();

            // The cost barrier is on the pharmacist's worklist, with Ana's name and the medicine.
            let mut rph = app.sign_in("rph.ali").await;
            let (status, home) = rph.get("/").await;
            assert_eq!(status, 200);
            assert!(home.contains("id=\"medicine-barriers\""), "{home}");
            assert!(home.contains("Ana Silva"), "{home}");
            assert!(home.contains("Lantus SoloStar"), "{home}");
            // On Ana's medicines page she can switch it to the cheaper glargine.
            let (_, text) = rph.get("/patients/p1/medicines").await;
            assert!(
                text.contains("Insulin glargine-yfgn 100 units/mL · $64.81"),
                "{text}"
            );
            let afford = p
                .barriers(&dr_caller, "p1")
                .await
                .unwrap()
                .into_iter()
                .find(|b| b.kind == Kind::Afford)
                .unwrap()
                .task;
            let resolve = format!("/patients/p1/medicines/barriers/{afford}/resolve");
            let switch = [
                ("resolution", "switched-to-alternative"),
                ("switch_to", "glargine-yfgn-pen"),
            ];
            let resp = rph.post(&resolve, &switch).await;
            assert_eq!(resp.status(), 422, "the prescriber has not agreed");
            // A drug that could not replace it is refused.
            let resp = rph
                .post(
                    &resolve,
                    &[
                        ("resolution", "switched-to-alternative"),
                        ("switch_to", "metformin-500"),
                        ("agreed", "yes"),
                    ],
                )
                .await;
            assert_eq!(resp.status(), 422);
            let mut agreed = switch.to_vec();
            agreed.push(("agreed", "yes"));
            let resp = rph.post(&resolve, &agreed).await;
            assert_eq!(resp.status(), 303);

            // Lantus is stopped, its other barrier ended with it; the glargine is prescribed for
            // the same prescriber and checked at once.
            let old = read(&app, &format!("/fhir/MedicationRequest/{lantus}")).await;
            assert_eq!(old["status"], "stopped");
            let medicines = p.medicines(&dr_caller, "p1").await.unwrap();
            assert_eq!(medicines.len(), 1);
            assert_eq!(medicines[0].name, "Insulin glargine-yfgn 100 units/mL");
            assert!(medicines[0].check.is_some(), "checked at once");
            let new = read(
                &app,
                &format!("/fhir/MedicationRequest/{}", medicines[0].id),
            )
            .await;
            assert_eq!(new["requester"]["reference"], "Practitioner/dr");
            assert_eq!(
                new["priorPrescription"]["reference"],
                format!("MedicationRequest/{lantus}")
            );
            let on_lantus: Vec<_> = p
                .barriers(&dr_caller, "p1")
                .await
                .unwrap()
                .into_iter()
                .filter(|b| b.prescription == lantus)
                .collect();
            assert!(on_lantus.iter().all(|b| !b.is_open()), "{on_lantus:?}");
            assert!(on_lantus.iter().any(|b| b.status == "cancelled"));
            // The pharmacist was told of the barriers, and Ana is told it was solved.
            let rph_caller = crate::rescue::caller(&app, "rph.ali").await;
            let told = workflows.notifier.inbox(&rph_caller, 50).await.unwrap();
            let barriers: Vec<_> = told
                .iter()
                .filter(|n| n.kind == "medication-barrier")
                .collect();
            // Lantus's cost and teach-back, then the glargine's own check: $64.81 is still over
            // the $20 threshold for her, and nobody has taught it back yet.
            assert_eq!(barriers.len(), 4, "{told:?}");
            let (_, text) = coproduce_app::notify::render(barriers[0], Default::default());
            assert!(
                text.contains(
                    "Ana Silva has a barrier to a medicine: see what it is and resolve it by"
                ),
                "{text}"
            );
            let ana_caller = crate::rescue::caller(&app, "ana").await;
            let told = workflows.notifier.inbox(&ana_caller, 50).await.unwrap();
            let solved: Vec<_> = told
                .iter()
                .filter(|n| n.kind == "medication-barrier-resolved")
                .collect();
            assert_eq!(solved.len(), 1, "{told:?}");
            let (_, text) = coproduce_app::notify::render(solved[0], Default::default());
            assert!(
                text.contains("Sua equipe resolveu algo que atrapalhava um dos seus medicamentos"),
                "{text}"
            );
            // What was written exports as valid FHIR R4 and imports back unchanged.
            let out = tempfile::tempdir().unwrap();
            let counts = crate::export_valid_and_reimport(
                &app.db.url,
                out.path(),
                &["MedicationRequest", "Observation", "Task", "Coverage"],
            );
            assert_eq!((counts[0], counts[1], counts[3]), (0, 0, 0), "{counts:?}");
            // Ana reads the change in her language.
            let mut ana = app.sign_in("ana").await;
            let (_, text) = ana.get("/patients/p1/medicines").await;
            assert!(
                text.contains("Sua equipe trocou isto de Lantus SoloStar (insulin glargine) 100 units/mL para facilitar para você."),
                "{text}"
            );
            app.finish().await;
        }
    }

    #[tokio::test]
    async fn a_prescription_from_fhir_for_a_patient_with_a_transport_need_gets_the_same_barrier_as_one_from_the_app()
     {
        for backend in backends() {
            let app = TestApp::spawn(backend).await;
            app.seed_care_team("en").await;
            let workflows = clinic(&app).await;
            let p = &workflows.prescribing;
            let dr = crate::rescue::caller(&app, "dr.okafor").await;
            let ana = crate::rescue::caller(&app, "ana").await;
            p.record_coverage(&dr, "p1", CoverageKind::Medicaid, "")
                .await
                .unwrap();
            p.record_cost_answers(&ana, "p1", CostAnswers::default())
                .await
                .unwrap();
            p.record_getting(&ana, "p1", Getting::PickUp, "")
                .await
                .unwrap();
            // The social-needs screen found a transportation need (LOINC 93030-5: yes).
            let screened = json!({
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "93030-5"}]},
                "subject": {"reference": "Patient/p1"},
                "effectiveDateTime": Stored::instant(app.clock.now()),
                "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA33-6"}]},
            });
            let resp = app
                .post_json("/fhir/Observation", screened.to_string())
                .await;
            assert_eq!(resp.status(), 201);

            // One prescription written in the app, one posted by an outside EHR.
            let sig =
                coproduce_core::prescribing::sig::Sig::new("1", "tablet", "once-daily", false)
                    .unwrap();
            let in_app = p.prescribe(&dr, "p1", "lisinopril-10", &sig).await.unwrap();
            let from_fhir = prescribe(&app, "amlodipine-5").await;
            assert_eq!(app.jobs.run_once().await.unwrap().deadlines.checked, 1);
            let barriers = p.barriers(&dr, "p1").await.unwrap();
            let reach = |mr: &str| {
                barriers
                    .iter()
                    .find(|b| b.prescription == mr && b.kind == Kind::Reach)
                    .cloned()
                    .unwrap_or_else(|| panic!("a reach barrier for {mr}: {barriers:?}"))
            };
            let (a, f) = (reach(&in_app), reach(&from_fhir));
            assert_eq!(
                (a.reason.as_str(), a.owner, a.due, a.status.as_str()),
                (f.reason.as_str(), f.owner, f.due, f.status.as_str())
            );
            assert_eq!(
                (a.reason.as_str(), a.owner),
                ("no-transport", Some(Role::CommunityHealthWorker))
            );
            for mr in [&in_app, &from_fhir] {
                let check = read(&app, &format!("/fhir/Observation/{mr}-check")).await;
                assert!(
                    findings(&check).contains(&("reach".to_string(), "barrier".to_string())),
                    "{check}"
                );
            }
            app.finish().await;
        }
    }
}
