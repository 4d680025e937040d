//! The access matrix: every actor against every resource type and interaction, with the
//! outcome each cell must have, stated here independently of the policy code. Every call
//! must leave exactly one audit row, and no search may return a record outside the actor's
//! reach. Also: every protected route answers 401 without credentials.

use coproduce_app::accounts::{NewToken, NewUser};
use coproduce_core::access::Role;
use coproduce_testkit::{TestApp, TestBackend, backends};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const TYPES: [&str; 7] = [
    "Patient",
    "Observation",
    "CarePlan",
    "Goal",
    "QuestionnaireResponse",
    "Communication",
    "Task",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    PatientA,
    PatientB,
    FamilyFull,
    FamilyReadings,
    FamilyExpired,
    FamilyRevoked,
    ClinicianOnTeam,
    ClinicianOffTeam,
    Analyst,
    Admin,
    Anonymous,
    PatientTokenA,
    /// The off-team clinician, after breaking the glass on A's chart.
    ClinicianBreakGlass,
    // The other roles on A's care team (the confidential and access-record cells).
    NurseOnTeam,
    PharmacistOnTeam,
    ChwOnTeam,
    SocialWorkerOnTeam,
    RapidResponseOnTeam,
    ClinicLeadOnTeam,
}

use Actor::*;

/// Clinician on A's team last: its deletes of Patient/pa close the run.
const ACTORS: [Actor; 13] = [
    PatientA,
    PatientB,
    FamilyFull,
    FamilyReadings,
    FamilyExpired,
    FamilyRevoked,
    ClinicianOffTeam,
    Analyst,
    Admin,
    Anonymous,
    PatientTokenA,
    ClinicianBreakGlass,
    ClinicianOnTeam,
];

fn is_reading(t: &str) -> bool {
    matches!(t, "Observation" | "QuestionnaireResponse")
}

/// Whose records of type `t` the actor sees: the expected reach, written out.
fn reach(a: Actor, t: &str) -> BTreeSet<&'static str> {
    let a_only: BTreeSet<&str> = ["pa"].into();
    match a {
        PatientA | PatientTokenA | FamilyFull | ClinicianOnTeam | ClinicianBreakGlass => a_only,
        PatientB => ["pb"].into(),
        FamilyReadings if is_reading(t) || t == "Patient" => a_only,
        _ => BTreeSet::new(),
    }
}

/// A search the actor can never make on this type is refused (403) rather than answered
/// empty; a team member without patients on their teams gets an empty page.
fn search_refused(a: Actor, t: &str) -> bool {
    match a {
        Analyst | Admin | FamilyExpired | FamilyRevoked => true,
        FamilyReadings => reach(a, t).is_empty(),
        _ => false,
    }
}

/// May the actor create a record of type `t` in `patient`'s record?
fn may_create(a: Actor, t: &str, patient: &str) -> bool {
    if t == "Patient" {
        return false; // new patients come from registration (system integrations)
    }
    match a {
        PatientA | FamilyFull | ClinicianOnTeam | ClinicianBreakGlass => patient == "pa",
        PatientB => patient == "pb",
        FamilyReadings => patient == "pa" && is_reading(t),
        _ => false,
    }
}

fn may_update_a(a: Actor, t: &str) -> bool {
    match a {
        PatientA | ClinicianOnTeam | ClinicianBreakGlass => true,
        FamilyFull => t != "Patient",
        FamilyReadings => is_reading(t),
        _ => false,
    }
}

fn may_delete_a(a: Actor, _t: &str) -> bool {
    matches!(a, ClinicianOnTeam | ClinicianBreakGlass)
}

fn resource(t: &str, patient: &str) -> Value {
    let subject = json!({"reference": format!("Patient/{patient}")});
    match t {
        "Patient" => json!({"resourceType": "Patient", "name": [{"family": "New"}]}),
        "Observation" => {
            json!({"resourceType": t, "status": "final", "code": {"text": "glucose"}, "subject": subject})
        }
        "CarePlan" => {
            json!({"resourceType": t, "status": "active", "intent": "plan", "subject": subject})
        }
        "Goal" => {
            json!({"resourceType": t, "lifecycleStatus": "proposed", "description": {"text": "walk daily"}, "subject": subject})
        }
        "QuestionnaireResponse" => {
            json!({"resourceType": t, "status": "completed", "subject": subject})
        }
        "Communication" => json!({"resourceType": t, "status": "completed", "subject": subject}),
        "Task" => {
            json!({"resourceType": t, "status": "requested", "intent": "order", "for": subject})
        }
        _ => unreachable!("a type of the matrix"),
    }
}

/// The patient whose record a returned resource is in.
fn patient_of(r: &Value) -> Option<String> {
    if r["resourceType"] == "Patient" {
        return r["id"].as_str().map(str::to_string);
    }
    let reference = r["subject"]["reference"]
        .as_str()
        .or_else(|| r["for"]["reference"].as_str())?;
    reference.strip_prefix("Patient/").map(str::to_string)
}

struct Matrix<'a> {
    app: &'a TestApp,
    tried: usize,
    allowed: usize,
    unexpected: Vec<String>,
}

impl Matrix<'_> {
    /// One call: checks its status and that it left exactly one audit row.
    async fn call(
        &mut self,
        (actor, token): (Actor, Option<&str>),
        cell: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Option<Value> {
        let before = self.app.db.store.audit_count().await.unwrap();
        let mut req = self.app.client.request(method, self.app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/fhir+json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        let after = self.app.db.store.audit_count().await.unwrap();
        self.tried += 1;
        if (200..300).contains(&status) {
            self.allowed += 1;
        }
        if status != want {
            self.unexpected.push(format!(
                "{actor:?} {cell}: expected {want}, got {status} {}",
                json["issue"][0]["diagnostics"]
            ));
        }
        if after - before != 1 {
            self.unexpected.push(format!(
                "{actor:?} {cell}: {} audit rows instead of 1",
                after - before
            ));
        }
        (status < 300).then_some(json)
    }

    /// Every resource a search returned must be in the actor's reach for its type.
    fn check_reach(&mut self, actor: Actor, cell: &str, bundle: &Value) {
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            let t = r["resourceType"].as_str().unwrap_or_default();
            let p = patient_of(r).unwrap_or_default();
            if !reach(actor, t).contains(p.as_str()) {
                self.unexpected.push(format!(
                    "{actor:?} {cell}: returned {t}/{} of patient {p}, outside its reach",
                    r["id"]
                ));
            }
        }
    }
}

/// An account (no password) and a `user/*.cruds` token acting as it.
async fn user_with_token(app: &TestApp, name: &str, role: Role, link: Option<&str>) -> String {
    app.accounts
        .add_user(NewUser {
            username: name.into(),
            roles: vec![role],
            fhir_ref: link.map(str::to_string),
            password: None,
        })
        .await
        .unwrap();
    let (_, secret) = app
        .accounts
        .issue_token(NewToken {
            username: Some(name.into()),
            name: name.into(),
            scopes: "user/*.cruds".into(),
            patient: None,
            expires_in: None,
        })
        .await
        .unwrap();
    secret
}

async fn setup(app: &TestApp) -> Vec<(Actor, Option<String>)> {
    let put = |path: String, body: Value| async move {
        let resp = app.put_json(&path, body.to_string(), None).await;
        assert!(
            resp.status().is_success(),
            "{path}: {}",
            resp.text().await.unwrap()
        );
    };
    for p in ["pa", "pb"] {
        put(
            format!("/fhir/Patient/{p}"),
            json!({"resourceType": "Patient", "id": p, "name": [{"family": p}]}),
        )
        .await;
    }
    for d in ["dr-in", "dr-out"] {
        put(
            format!("/fhir/Practitioner/{d}"),
            json!({"resourceType": "Practitioner", "id": d}),
        )
        .await;
    }
    put("/fhir/CareTeam/ct-a".into(), json!({"resourceType": "CareTeam", "id": "ct-a", "status": "active",
        "subject": {"reference": "Patient/pa"}, "participant": [{"member": {"reference": "Practitioner/dr-in"}}]})).await;
    let grants = [
        (
            "rp-full",
            vec![
                "readings",
                "plan",
                "messages",
                "concerns",
                "medicines",
                "record",
            ],
            "active",
            None,
        ),
        ("rp-read", vec!["readings"], "active", None),
        (
            "rp-exp",
            vec![
                "readings",
                "plan",
                "messages",
                "concerns",
                "medicines",
                "record",
            ],
            "active",
            Some("2026-11-01"),
        ),
        (
            "rp-rev",
            vec![
                "readings",
                "plan",
                "messages",
                "concerns",
                "medicines",
                "record",
            ],
            "inactive",
            None,
        ),
    ];
    for (rp, parts, status, end) in grants {
        put(format!("/fhir/RelatedPerson/{rp}"), json!({"resourceType": "RelatedPerson", "id": rp, "patient": {"reference": "Patient/pa"}})).await;
        let mut provision = json!({"type": "permit",
            "actor": [{"role": {"text": "proxy"}, "reference": {"reference": format!("RelatedPerson/{rp}")}}],
            "code": parts.iter().map(|p| json!({"coding": [{"system": coproduce_app::accounts::GRANT_PART_SYSTEM, "code": p}]})).collect::<Vec<_>>()});
        if let Some(end) = end {
            provision["period"] = json!({"end": end});
        }
        put(format!("/fhir/Consent/c-{rp}"), json!({"resourceType": "Consent", "id": format!("c-{rp}"), "status": status,
            "scope": {"text": "family access"}, "category": [{"text": "grant"}], "patient": {"reference": "Patient/pa"},
            "provision": provision})).await;
    }
    for t in TYPES.iter().filter(|t| **t != "Patient") {
        for p in ["pa", "pb"] {
            let mut r = resource(t, p);
            r["id"] = json!(format!("{t}-{p}").to_lowercase());
            put(format!("/fhir/{t}/{}", r["id"].as_str().unwrap()), r).await;
        }
    }
    let users: [(Actor, &str, Role, Option<&str>); 10] = [
        (PatientA, "pat-a", Role::Patient, Some("Patient/pa")),
        (PatientB, "pat-b", Role::Patient, Some("Patient/pb")),
        (
            FamilyFull,
            "fam-full",
            Role::Family,
            Some("RelatedPerson/rp-full"),
        ),
        (
            FamilyReadings,
            "fam-read",
            Role::Family,
            Some("RelatedPerson/rp-read"),
        ),
        (
            FamilyExpired,
            "fam-exp",
            Role::Family,
            Some("RelatedPerson/rp-exp"),
        ),
        (
            FamilyRevoked,
            "fam-rev",
            Role::Family,
            Some("RelatedPerson/rp-rev"),
        ),
        (
            ClinicianOnTeam,
            "dr-in",
            Role::Clinician,
            Some("Practitioner/dr-in"),
        ),
        (
            ClinicianOffTeam,
            "dr-out",
            Role::Clinician,
            Some("Practitioner/dr-out"),
        ),
        (Analyst, "analyst", Role::QualityAnalyst, None),
        (Admin, "admin", Role::Admin, None),
    ];
    let mut tokens = Vec::new();
    for (actor, name, role, link) in users {
        tokens.push((actor, Some(user_with_token(app, name, role, link).await)));
    }
    let (_, bound) = app
        .accounts
        .issue_token(NewToken {
            username: Some("pat-a".into()),
            name: "app-a".into(),
            scopes: "patient/*.rs".into(),
            patient: Some("Patient/pa".into()),
            expires_in: None,
        })
        .await
        .unwrap();
    tokens.push((PatientTokenA, Some(bound)));
    tokens.push((Anonymous, None));
    let off_team = tokens
        .iter()
        .find(|(a, _)| *a == ClinicianOffTeam)
        .unwrap()
        .1
        .clone();
    tokens.push((ClinicianBreakGlass, off_team));
    ACTORS
        .iter()
        .map(|a| tokens.iter().find(|(b, _)| b == a).cloned().unwrap())
        .collect()
}

fn id_a(t: &str) -> String {
    if t == "Patient" {
        "pa".into()
    } else {
        format!("{t}-pa").to_lowercase()
    }
}

fn include_param(t: &str) -> &'static str {
    if t == "Patient" { "link" } else { "patient" }
}

async fn run(app: &TestApp) -> (usize, usize, Vec<String>) {
    let actors = setup(app).await;
    let mut m = Matrix {
        app,
        tried: 0,
        allowed: 0,
        unexpected: Vec::new(),
    };
    let mut patient_deletes = Vec::new();
    for (actor, token) in &actors {
        let (actor, token) = (*actor, token.as_deref());
        let anon = actor == Anonymous;
        let gate = |ok: bool, yes: u16| {
            if anon {
                401
            } else if ok {
                yes
            } else {
                403
            }
        };
        if actor == ClinicianBreakGlass {
            let resp = app
                .client
                .post(app.url("/api/break-glass"))
                .bearer_auth(token.unwrap())
                .json(&json!({"patient": "Patient/pa", "reason": "called by the ED about a fall; her team is away"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        }
        for t in TYPES {
            let seen = reach(actor, t).contains("pa");
            let refused = search_refused(actor, t);
            let id = id_a(t);
            m.call(
                (actor, token),
                &format!("{t} read"),
                Method::GET,
                &format!("/fhir/{t}/{id}"),
                None,
                gate(seen, 200),
            )
            .await;
            m.call(
                (actor, token),
                &format!("{t} vread"),
                Method::GET,
                &format!("/fhir/{t}/{id}/_history/1"),
                None,
                gate(seen, 200),
            )
            .await;
            m.call(
                (actor, token),
                &format!("{t} history"),
                Method::GET,
                &format!("/fhir/{t}/{id}/_history"),
                None,
                gate(seen, 200),
            )
            .await;
            let by_patient = if t == "Patient" {
                "_id=pa".to_string()
            } else {
                "patient=pa".to_string()
            };
            for (cell, query) in [
                ("search by patient", by_patient.clone()),
                ("search without patient", String::new()),
                (
                    "_include",
                    format!("{by_patient}&_include={t}:{}", include_param(t)),
                ),
            ] {
                let cell = format!("{t} {cell}");
                if let Some(b) = m
                    .call(
                        (actor, token),
                        &cell,
                        Method::GET,
                        &format!("/fhir/{t}?{query}"),
                        None,
                        gate(!refused, 200),
                    )
                    .await
                {
                    m.check_reach(actor, &cell, &b);
                    if query.is_empty() || !seen {
                        continue;
                    }
                    if b["total"].as_i64().unwrap_or(0) < 1 {
                        m.unexpected.push(format!(
                            "{actor:?} {cell}: A's records are in reach but none came back"
                        ));
                    }
                }
            }
            let cell = format!("{t} _revinclude");
            let revinclude = format!("/fhir/Patient?_id=pa&_revinclude={t}:{}", include_param(t));
            if let Some(b) = m
                .call(
                    (actor, token),
                    &cell,
                    Method::GET,
                    &revinclude,
                    None,
                    gate(!search_refused(actor, "Patient"), 200),
                )
                .await
            {
                m.check_reach(actor, &cell, &b);
            }
            for p in ["pa", "pb"] {
                let ok = may_create(actor, t, p);
                m.call(
                    (actor, token),
                    &format!("{t} create for {p}"),
                    Method::POST,
                    &format!("/fhir/{t}"),
                    Some(resource(t, p)),
                    gate(ok, 201),
                )
                .await;
            }
            // Update and delete work on fresh copies of A's records (A's Patient is deleted last).
            let fresh = if t == "Patient" {
                "pa".to_string()
            } else {
                let resp: Value = app
                    .post_json(&format!("/fhir/{t}"), resource(t, "pa").to_string())
                    .await
                    .json()
                    .await
                    .unwrap();
                resp["id"].as_str().unwrap().to_string()
            };
            let mut body: Value = app
                .get(&format!("/fhir/{t}/{fresh}"))
                .await
                .json()
                .await
                .unwrap();
            body.as_object_mut().unwrap().remove("meta");
            m.call(
                (actor, token),
                &format!("{t} update"),
                Method::PUT,
                &format!("/fhir/{t}/{fresh}"),
                Some(body),
                gate(may_update_a(actor, t), 200),
            )
            .await;
            if t == "Patient" && may_delete_a(actor, t) {
                // Deleting A's Patient would end the run: those who may, go last.
                patient_deletes.push((actor, token.map(str::to_string)));
            } else {
                m.call(
                    (actor, token),
                    &format!("{t} delete"),
                    Method::DELETE,
                    &format!("/fhir/{t}/{fresh}"),
                    None,
                    gate(may_delete_a(actor, t), 200),
                )
                .await;
            }
            let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": resource(t, "pb"), "request": {"method": "POST", "url": t}}]});
            m.call(
                (actor, token),
                &format!("{t} transaction for pb"),
                Method::POST,
                "/fhir",
                Some(tx),
                gate(may_create(actor, t, "pb"), 200),
            )
            .await;
        }
    }
    for (actor, token) in patient_deletes {
        let gate = if actor == Anonymous {
            401
        } else if may_delete_a(actor, "Patient") {
            200
        } else {
            403
        };
        m.call(
            (actor, token.as_deref()),
            "Patient delete",
            Method::DELETE,
            "/fhir/Patient/pa",
            None,
            gate,
        )
        .await;
    }
    (m.tried, m.allowed, m.unexpected)
}

/// Prints a run's tally (CI shows it) and fails on any unexpected outcome.
fn report(what: &str, tried: usize, allowed: usize, unexpected: &[String]) {
    for u in unexpected {
        println!("unexpected: {u}");
    }
    println!(
        "{what}: {tried} tried, {allowed} allowed, {} unexpected",
        unexpected.len()
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected outcomes",
        unexpected.len()
    );
}

#[tokio::test]
async fn the_access_matrix_holds_on_every_backend() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let (tried, allowed, unexpected) = run(&app).await;
        report(&format!("{backend:?}"), tried, allowed, &unexpected);
        assert_eq!(tried, ACTORS.len() * TYPES.len() * 12);
        // The trail is intact after all of it.
        assert!(matches!(
            app.db.store.verify_audit().await.unwrap(),
            coproduce_store::AuditVerdict::Intact(_)
        ));
        app.finish().await;
    }
}

/// The actors of the confidential-label and access-record cells: family, each team role on
/// A's team, the analyst, the administrator, and A herself.
const LABEL_ACTORS: [Actor; 12] = [
    PatientA,
    FamilyFull,
    FamilyReadings,
    ClinicianOnTeam,
    NurseOnTeam,
    PharmacistOnTeam,
    ChwOnTeam,
    SocialWorkerOnTeam,
    RapidResponseOnTeam,
    ClinicLeadOnTeam,
    Analyst,
    Admin,
];

fn on_team(a: Actor) -> bool {
    matches!(
        a,
        ClinicianOnTeam
            | NurseOnTeam
            | PharmacistOnTeam
            | ChwOnTeam
            | SocialWorkerOnTeam
            | RapidResponseOnTeam
            | ClinicLeadOnTeam
    )
}

/// Who keeps the records that decide access (CareTeam, and Consent with the patient).
fn keeps_access(a: Actor) -> bool {
    matches!(a, ClinicianOnTeam | ClinicLeadOnTeam)
}

/// The cells for records labelled confidential to the patient and for the records that
/// decide who reaches a chart, run on the matrix's data with the other team roles added.
async fn run_label_cells(app: &TestApp) -> (usize, usize, Vec<String>) {
    let mut actors = setup(app).await;
    let put = |path: String, body: Value| async move {
        let resp = app.put_json(&path, body.to_string(), None).await;
        assert!(resp.status().is_success(), "{path}");
    };
    let roles = [
        (NurseOnTeam, "nurse-in", Role::Nurse),
        (PharmacistOnTeam, "rph-in", Role::Pharmacist),
        (ChwOnTeam, "chw-in", Role::CommunityHealthWorker),
        (SocialWorkerOnTeam, "sw-in", Role::SocialWorker),
        (RapidResponseOnTeam, "rr-in", Role::RapidResponse),
        (ClinicLeadOnTeam, "lead-in", Role::ClinicLead),
    ];
    let mut participants = vec![json!({"member": {"reference": "Practitioner/dr-in"}})];
    for (actor, name, role) in roles {
        put(
            format!("/fhir/Practitioner/{name}"),
            json!({"resourceType": "Practitioner", "id": name}),
        )
        .await;
        participants.push(json!({"member": {"reference": format!("Practitioner/{name}")}}));
        let link = format!("Practitioner/{name}");
        let token = user_with_token(app, name, role, Some(&link)).await;
        actors.push((actor, Some(token)));
    }
    put(
        "/fhir/CareTeam/ct-a".into(),
        json!({"resourceType": "CareTeam", "id": "ct-a", "status": "active",
        "subject": {"reference": "Patient/pa"}, "participant": participants}),
    )
    .await;
    let mut confidential = resource("Observation", "pa");
    confidential["id"] = json!("conf-pa");
    confidential["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]});
    put("/fhir/Observation/conf-pa".into(), confidential).await;
    let mut m = Matrix {
        app,
        tried: 0,
        allowed: 0,
        unexpected: Vec::new(),
    };
    let gate = |ok: bool, yes: u16| if ok { yes } else { 403 };
    for actor in LABEL_ACTORS {
        let token = actors
            .iter()
            .find(|(a, _)| *a == actor)
            .and_then(|(_, t)| t.clone());
        let token = token.as_deref();
        let sees_chart = on_team(actor) || matches!(actor, PatientA | FamilyFull | FamilyReadings);
        let sees_label = sees_chart && !matches!(actor, FamilyFull | FamilyReadings);
        m.call(
            (actor, token),
            "confidential read",
            Method::GET,
            "/fhir/Observation/conf-pa",
            None,
            gate(sees_label, 200),
        )
        .await;
        m.call(
            (actor, token),
            "confidential vread",
            Method::GET,
            "/fhir/Observation/conf-pa/_history/1",
            None,
            gate(sees_label, 200),
        )
        .await;
        for (cell, path) in [
            ("confidential by _id", "/fhir/Observation?_id=conf-pa"),
            ("confidential by patient", "/fhir/Observation?patient=pa"),
            (
                "confidential by _revinclude",
                "/fhir/Patient?_id=pa&_revinclude=Observation:patient",
            ),
            ("confidential in type history", "/fhir/Observation/_history"),
        ] {
            if let Some(b) = m
                .call(
                    (actor, token),
                    cell,
                    Method::GET,
                    path,
                    None,
                    gate(sees_chart, 200),
                )
                .await
            {
                let found = b["entry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["resource"]["id"] == "conf-pa");
                if found != sees_label {
                    m.unexpected.push(format!(
                        "{actor:?} {cell}: the confidential record {}",
                        if found { "came back" } else { "was missing" }
                    ));
                }
            }
        }
        let team = |extra: &str| {
            json!({"resourceType": "CareTeam", "status": "active", "subject": {"reference": "Patient/pa"},
                "participant": [{"member": {"reference": format!("Practitioner/{extra}")}}]})
        };
        m.call(
            (actor, token),
            "CareTeam create",
            Method::POST,
            "/fhir/CareTeam",
            Some(team("dr-out")),
            gate(keeps_access(actor), 201),
        )
        .await;
        let mut ct: Value = app.get("/fhir/CareTeam/ct-a").await.json().await.unwrap();
        ct.as_object_mut().unwrap().remove("meta");
        m.call(
            (actor, token),
            "CareTeam update",
            Method::PUT,
            "/fhir/CareTeam/ct-a",
            Some(ct),
            gate(keeps_access(actor), 200),
        )
        .await;
        let mut consent: Value = app
            .get("/fhir/Consent/c-rp-read")
            .await
            .json()
            .await
            .unwrap();
        consent.as_object_mut().unwrap().remove("meta");
        m.call(
            (actor, token),
            "Consent update",
            Method::PUT,
            "/fhir/Consent/c-rp-read",
            Some(consent),
            gate(keeps_access(actor) || actor == PatientA, 200),
        )
        .await;
        m.call(
            (actor, token),
            "Practitioner update",
            Method::PUT,
            "/fhir/Practitioner/dr-out",
            Some(json!({"resourceType": "Practitioner", "id": "dr-out"})),
            gate(actor == Admin, 200),
        )
        .await;
        let provenance: Value = app
            .get("/fhir/Provenance?target=Observation/conf-pa")
            .await
            .json()
            .await
            .unwrap();
        let mut prov = provenance["entry"][0]["resource"].clone();
        let prov_id = prov["id"]
            .as_str()
            .expect("the label's Provenance")
            .to_string();
        prov.as_object_mut().unwrap().remove("meta");
        m.call(
            (actor, token),
            "Provenance update",
            Method::PUT,
            &format!("/fhir/Provenance/{prov_id}"),
            Some(prov),
            403,
        )
        .await;
        m.call(
            (actor, token),
            "Provenance delete",
            Method::DELETE,
            &format!("/fhir/Provenance/{prov_id}"),
            None,
            403,
        )
        .await;
    }
    (m.tried, m.allowed, m.unexpected)
}

#[tokio::test]
async fn the_confidential_and_access_record_cells_hold_on_every_backend() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let (tried, allowed, unexpected) = run_label_cells(&app).await;
        report(
            &format!("{backend:?} confidential and access-record cells"),
            tried,
            allowed,
            &unexpected,
        );
        assert_eq!(tried, LABEL_ACTORS.len() * 12);
        app.finish().await;
    }
}

#[tokio::test]
async fn break_glass_needs_a_reason_and_ends_after_an_hour() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let actors = setup(&app).await;
    let token = |a: Actor| {
        actors
            .iter()
            .find(|(b, _)| *b == a)
            .unwrap()
            .1
            .clone()
            .unwrap()
    };
    let glass = |who: Actor, reason: &str| {
        app.client
            .post(app.url("/api/break-glass"))
            .bearer_auth(token(who))
            .json(&json!({"patient": "Patient/pa", "reason": reason}))
            .send()
    };
    let read = |who: Actor| {
        app.client
            .get(app.url("/fhir/Observation/observation-pa"))
            .bearer_auth(token(who))
            .send()
    };
    assert_eq!(read(ClinicianOffTeam).await.unwrap().status(), 403);
    assert_eq!(
        glass(ClinicianOffTeam, "need").await.unwrap().status(),
        400,
        "a reason in a sentence"
    );
    assert_eq!(
        glass(PatientB, "I would like to see her record")
            .await
            .unwrap()
            .status(),
        403,
        "for care teams only"
    );
    assert_eq!(
        glass(ClinicianOffTeam, "called by the ED about a fall")
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(read(ClinicianOffTeam).await.unwrap().status(), 200);
    // The opening is in the audit trail, with the reason, under the patient.
    let rows = app.db.store.audit_page(0, 10_000).await.unwrap();
    assert!(rows.iter().any(|r| {
        r.entry.action == "break-glass"
            && r.entry.outcome == "allowed"
            && r.entry.patients.as_deref() == Some("pa")
            && r.entry
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("a fall"))
    }));
    app.clock.advance(time::Duration::minutes(61));
    assert_eq!(
        read(ClinicianOffTeam).await.unwrap().status(),
        403,
        "an hour later the chart is closed again"
    );
    app.finish().await;
}

#[tokio::test]
async fn every_protected_route_answers_401_without_credentials() {
    use coproduce_web::Guard;
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut checked = 0;
    for (path, guard) in coproduce_web::route_paths() {
        let concrete = path
            .replace("{rt}", "Patient")
            .replace("{id}", "x")
            .replace("{vid}", "1");
        let concrete = if concrete.len() > 1 {
            concrete.trim_end_matches('/').to_string()
        } else {
            concrete
        };
        let mut answered = 0;
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            let resp = no_redirects
                .request(method.clone(), app.url(&concrete))
                .header("content-type", "application/fhir+json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            if status == 405 {
                continue; // not a route for this method
            }
            answered += 1;
            match guard {
                Guard::Public => assert_ne!(status, 401, "{method} {concrete} is public"),
                Guard::Token => {
                    assert_eq!(status, 401, "{method} {concrete} without credentials");
                    assert_eq!(
                        resp.headers()
                            .get("www-authenticate")
                            .map(|h| h.to_str().unwrap()),
                        Some("Bearer"),
                        "{method} {concrete}"
                    );
                    let body: Value = resp.json().await.unwrap();
                    assert_eq!(body["resourceType"], "OperationOutcome");
                    checked += 1;
                }
                Guard::Session => {
                    assert_eq!(
                        status, 303,
                        "{method} {concrete} without a session redirects"
                    );
                    assert_eq!(resp.headers()["location"], "/login", "{method} {concrete}");
                    checked += 1;
                }
            }
        }
        assert!(answered > 0, "{concrete} answered no method");
    }
    assert!(checked >= 13, "{checked}");
    // A wrong, revoked or expired token counts as none.
    let resp = app
        .client
        .get(app.url("/fhir/Patient"))
        .bearer_auth("cp_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Two Authorization headers, even one of them good, count as none: which would act is
    // not guessed.
    let resp = app
        .request(Method::GET, "/fhir/Patient")
        .bearer_auth("cp_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body.to_string().contains("one Authorization header"),
        "{body}"
    );
    app.finish().await;
}

#[tokio::test]
async fn admins_read_the_trail_as_audit_events_and_patients_see_who_opened_their_record() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let actors = setup(&app).await;
    let token = |a: Actor| {
        actors
            .iter()
            .find(|(b, _)| *b == a)
            .unwrap()
            .1
            .clone()
            .unwrap()
    };
    let get = |who: Actor, path: &str| app.client.get(app.url(path)).bearer_auth(token(who)).send();
    assert_eq!(
        get(ClinicianOnTeam, "/fhir/Observation/observation-pa")
            .await
            .unwrap()
            .status(),
        200
    );

    // The admin reads the trail as FHIR AuditEvents, valid R4.
    let resp = get(Admin, "/fhir/AuditEvent?patient=Patient/pa&_count=5")
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bundle: Value = resp.json().await.unwrap();
    let first = &bundle["entry"][0]["resource"];
    assert_eq!(first["resourceType"], "AuditEvent");
    assert_eq!(first["subtype"][0]["code"], "read");
    assert_eq!(first["agent"][0]["who"]["display"], "user:dr-in");
    assert!(
        first["entity"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["what"]["reference"] == "Patient/pa")
    );
    for e in bundle["entry"].as_array().unwrap() {
        coproduce_fhir::validate::validate_resource(&e["resource"])
            .unwrap_or_else(|o| panic!("{o}: {}", e["resource"]));
    }
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        get(Admin, &format!("/fhir/AuditEvent/{id}"))
            .await
            .unwrap()
            .status(),
        200
    );
    // Nobody else reads the trail as such, and nobody writes it.
    for who in [ClinicianOnTeam, Analyst, PatientA] {
        assert_eq!(
            get(who, "/fhir/AuditEvent").await.unwrap().status(),
            403,
            "{who:?}"
        );
    }
    let forged = json!({"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z",
        "agent": [{"requestor": true}], "source": {"observer": {"display": "x"}}});
    let resp = app
        .client
        .post(app.url("/fhir/AuditEvent"))
        .bearer_auth(token(Admin))
        .header("content-type", "application/fhir+json")
        .body(forged.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // The patient sees, in plain words, that the clinician looked at her readings.
    let resp = get(PatientA, "/api/my/access-log").await.unwrap();
    assert_eq!(resp.status(), 200);
    let log: Value = resp.json().await.unwrap();
    let lines: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("A member of staff looked at your readings and results")),
        "{lines:#?}"
    );
    assert_eq!(
        get(ClinicianOnTeam, "/api/my/access-log")
            .await
            .unwrap()
            .status(),
        403
    );
    app.finish().await;
}

#[tokio::test]
async fn every_write_records_who_made_it_and_for_whom() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let actors = setup(&app).await;
    let token = |a: Actor| {
        actors
            .iter()
            .find(|(b, _)| *b == a)
            .unwrap()
            .1
            .clone()
            .unwrap()
    };
    let resp = app
        .client
        .post(app.url("/fhir/Observation"))
        .bearer_auth(token(FamilyFull))
        .header("content-type", "application/fhir+json")
        .body(resource("Observation", "pa").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let obs: Value = resp.json().await.unwrap();
    let id = obs["id"].as_str().unwrap();
    let found: Value = app
        .get(&format!("/fhir/Provenance?target=Observation/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 1, "{found}");
    let p = &found["entry"][0]["resource"];
    assert_eq!(
        p["target"][0]["reference"],
        format!("Observation/{id}/_history/1")
    );
    assert_eq!(p["activity"]["coding"][0]["code"], "CREATE");
    assert_eq!(p["agent"][0]["who"]["reference"], "RelatedPerson/rp-full");
    assert_eq!(
        p["agent"][0]["onBehalfOf"]["reference"], "Patient/pa",
        "a family member writes on the patient's behalf"
    );
    // A clinician's update and delete are recorded too, as their own.
    let mut changed = obs.clone();
    changed.as_object_mut().unwrap().remove("meta");
    let resp = app
        .client
        .put(app.url(&format!("/fhir/Observation/{id}")))
        .bearer_auth(token(ClinicianOnTeam))
        .header("content-type", "application/fhir+json")
        .body(changed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .client
        .delete(app.url(&format!("/fhir/Observation/{id}")))
        .bearer_auth(token(ClinicianOnTeam))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let found: Value = app
        .get(&format!(
            "/fhir/Provenance?target=Observation/{id}&_sort=_lastUpdated"
        ))
        .await
        .json()
        .await
        .unwrap();
    let ops: Vec<&str> = found["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["activity"]["coding"][0]["code"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(ops.len(), 3);
    assert!(
        ops.contains(&"UPDATE") && ops.contains(&"DELETE"),
        "{ops:?}"
    );
    let by_clinician = found["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["agent"][0]["who"]["reference"] == "Practitioner/dr-in")
        .count();
    assert_eq!(by_clinician, 2);
    app.finish().await;
}

#[tokio::test]
async fn the_patient_grants_and_revokes_family_access_at_once() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let actors = setup(&app).await;
    let token = |a: Actor| {
        actors
            .iter()
            .find(|(b, _)| *b == a)
            .unwrap()
            .1
            .clone()
            .unwrap()
    };
    let send = |who: Actor, method: Method, path: &str, body: Option<Value>| {
        let mut req = app
            .client
            .request(method, app.url(path))
            .bearer_auth(token(who));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/fhir+json")
                .body(b.to_string());
        }
        req.send()
    };
    let grant = |status: &str| {
        json!({"resourceType": "Consent", "id": "c-rp-exp", "status": status,
        "scope": {"text": "family access"}, "category": [{"text": "grant"}], "patient": {"reference": "Patient/pa"},
        "provision": {"type": "permit", "actor": [{"role": {"text": "proxy"}, "reference": {"reference": "RelatedPerson/rp-exp"}}],
            "code": [{"coding": [{"system": coproduce_app::accounts::GRANT_PART_SYSTEM, "code": "readings"}]}]}})
    };
    let reading = "/fhir/Observation/observation-pa";
    assert_eq!(
        send(FamilyExpired, Method::GET, reading, None)
            .await
            .unwrap()
            .status(),
        403
    );
    // A family member cannot widen anyone's access, their own included.
    assert_eq!(
        send(
            FamilyFull,
            Method::PUT,
            "/fhir/Consent/c-rp-exp",
            Some(grant("active"))
        )
        .await
        .unwrap()
        .status(),
        403
    );
    // The patient renews the expired grant: it counts at once.
    assert_eq!(
        send(
            PatientA,
            Method::PUT,
            "/fhir/Consent/c-rp-exp",
            Some(grant("active"))
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        send(FamilyExpired, Method::GET, reading, None)
            .await
            .unwrap()
            .status(),
        200
    );
    // And revokes it: it stops at once.
    assert_eq!(
        send(
            PatientA,
            Method::PUT,
            "/fhir/Consent/c-rp-exp",
            Some(grant("inactive"))
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        send(FamilyExpired, Method::GET, reading, None)
            .await
            .unwrap()
            .status(),
        403
    );
    app.finish().await;
}
