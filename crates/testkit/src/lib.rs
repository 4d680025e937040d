//! Test support: a database per test on either backend, a [`TestApp`] running the real
//! router on a free port, and the fake clock.

use coproduce_app::accounts::{Accounts, NewToken};
use coproduce_app::{FhirApi, Store};
pub use coproduce_core::FakeClock;
use std::sync::Arc;
use time::macros::datetime;

/// The backends a test story runs on: SQLite always, PostgreSQL when
/// `COPRODUCE_TEST_POSTGRES_URL` names a server (a fresh database is made per test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

pub const POSTGRES_ENV: &str = "COPRODUCE_TEST_POSTGRES_URL";

/// The backends to run on, saying loudly when PostgreSQL is skipped.
pub fn backends() -> Vec<TestBackend> {
    if std::env::var(POSTGRES_ENV).is_ok_and(|v| !v.is_empty()) {
        vec![TestBackend::Sqlite, TestBackend::Postgres]
    } else {
        println!(
            "SKIPPED: the PostgreSQL backend ({POSTGRES_ENV} is not set); running on SQLite only"
        );
        vec![TestBackend::Sqlite]
    }
}

/// A fresh, migrated database. Call [`TestDb::drop_db`] at the end to remove a PostgreSQL one.
#[derive(Debug)]
pub struct TestDb {
    pub backend: TestBackend,
    pub url: String,
    pub store: Store,
    admin_url: Option<String>,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

/// The lines a store's projection rows carry in the app (as the command opens it).
fn lines() -> Vec<Arc<dyn coproduce_store::RecordLine>> {
    vec![Arc::new(coproduce_app::care::PromiseLine)]
}

impl TestDb {
    pub async fn new(backend: TestBackend) -> Self {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                let store = Store::open_with_lines(&url, lines())
                    .await
                    .expect("open SQLite");
                TestDb {
                    backend,
                    url,
                    store,
                    admin_url: None,
                    name: None,
                    _dir: Some(dir),
                }
            }
            TestBackend::Postgres => {
                let admin = std::env::var(POSTGRES_ENV).expect("COPRODUCE_TEST_POSTGRES_URL");
                let name = format!("coproduce_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create a test database");
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                let url = format!("{base}/{name}");
                let store = Store::open_with_lines(&url, lines())
                    .await
                    .expect("open PostgreSQL");
                TestDb {
                    backend,
                    url,
                    store,
                    admin_url: Some(admin),
                    name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    /// Closes the store and drops a PostgreSQL test database.
    pub async fn drop_db(self) {
        self.store.close().await;
        if let (Some(admin), Some(name)) = (self.admin_url, self.name)
            && let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// The clock tests start from: Friday 27 November 2026, 10:00 UTC.
pub fn fake_clock() -> Arc<FakeClock> {
    Arc::new(FakeClock::at(datetime!(2026-11-27 10:00 UTC)))
}

/// The real application on a free loopback port, with a client.
#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<FakeClock>,
    pub db: TestDb,
    pub accounts: Accounts,
    /// A `system/*.cruds` token: the helpers below send it.
    pub token: String,
    /// The background jobs (deadlines, delivery): tests run a pass when they choose.
    pub jobs: coproduce_app::jobs::Jobs,
}

impl TestApp {
    pub async fn spawn(backend: TestBackend) -> Self {
        // Plain HTTP in tests: cookies without the Secure flag.
        Self::spawn_with(
            backend,
            coproduce_web::WebConfig {
                secure_cookies: false,
                ..Default::default()
            },
        )
        .await
    }

    pub async fn spawn_with(backend: TestBackend, config: coproduce_web::WebConfig) -> Self {
        Self::spawn_full(
            backend,
            config,
            coproduce_app::workflows::Settings::default(),
            coproduce_app::jobs::Delivery::default(),
        )
        .await
    }

    /// The application with the workflows' settings and notification delivery given.
    pub async fn spawn_full(
        backend: TestBackend,
        config: coproduce_web::WebConfig,
        settings: coproduce_app::workflows::Settings,
        delivery: coproduce_app::jobs::Delivery,
    ) -> Self {
        let db = TestDb::new(backend).await;
        let clock = fake_clock();
        let api = FhirApi::new(db.store.clone(), clock.clone());
        let accounts = Accounts::new(db.store.clone(), clock.clone()).with_secret_key(Some(
            coproduce_app::secrets::SecretKey::random().expect("a secret key"),
        ));
        let (_, token) = accounts
            .issue_token(NewToken {
                username: None,
                name: "test-integration".into(),
                scopes: "system/*.cruds".into(),
                patient: None,
                expires_in: None,
            })
            .await
            .expect("a system token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("an address");
        // Links and locations name the address the test server is at.
        let mut config = config;
        if config.public_url == coproduce_web::WebConfig::default().public_url {
            config.public_url = format!("http://{addr}");
        }
        let limits = config.limits();
        let workflows = coproduce_app::workflows::Workflows::new(api, &settings);
        let jobs = workflows.jobs(delivery).expect("the background jobs");
        let app = coproduce_web::app(&workflows, accounts.clone(), config);
        tokio::spawn(async move {
            let _ = coproduce_web::serve_until(listener, app, limits, std::future::pending::<()>())
                .await;
        });
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            clock,
            db,
            accounts,
            token,
            jobs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the system token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        self.client.request(method, url).bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .header("content-type", "application/fhir+json")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn put_json(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .request(reqwest::Method::PUT, path)
            .header("content-type", "application/fhir+json");
        if let Some(m) = if_match {
            req = req.header("if-match", m);
        }
        req.body(body).send().await.expect("PUT")
    }

    pub async fn finish(self) {
        self.db.drop_db().await;
    }
}

/// The password of every account [`TestApp::seed_care_team`] makes.
pub const PASSWORD: &str = "a long enough password";

impl TestApp {
    /// A small clinic: Ana (patient `p1`, account `ana`, language `lang`), her clinician
    /// Dr Okafor (`dr.okafor`), nurse Lee (`nurse.lee`) and pharmacist Ali (`rph.ali`) on
    /// her care team, and her daughter Clara (`clara`) with a grant
    /// to every part of her record.
    pub async fn seed_care_team(&self, lang: &str) {
        use coproduce_app::accounts::NewUser;
        use coproduce_core::access::Role;
        let put = |path: &'static str, body: String| async move {
            let resp = self.put_json(path, body, None).await;
            assert!(
                resp.status().is_success(),
                "PUT {path}: {}",
                resp.text().await.unwrap_or_default()
            );
        };
        put("/fhir/Patient/p1", serde_json::json!({
            "resourceType": "Patient", "id": "p1", "name": [{"family": "Silva", "given": ["Ana"]}],
            "gender": "female", "birthDate": "1961-04-02",
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": lang}]}, "preferred": true}],
        }).to_string()).await;
        put("/fhir/Practitioner/dr", serde_json::json!({
            "resourceType": "Practitioner", "id": "dr", "name": [{"family": "Okafor", "given": ["Ngozi"]}],
        }).to_string()).await;
        put("/fhir/Practitioner/rn", serde_json::json!({
            "resourceType": "Practitioner", "id": "rn", "name": [{"family": "Lee", "given": ["Sam"]}],
        }).to_string()).await;
        put("/fhir/Practitioner/rph", serde_json::json!({
            "resourceType": "Practitioner", "id": "rph", "name": [{"family": "Ali", "given": ["Yusuf"]}],
        }).to_string()).await;
        put("/fhir/Practitioner/sw", serde_json::json!({
            "resourceType": "Practitioner", "id": "sw", "name": [{"family": "Diaz", "given": ["Marta"]}],
        }).to_string()).await;
        put(
            "/fhir/CareTeam/team-p1",
            serde_json::json!({
                "resourceType": "CareTeam", "id": "team-p1", "status": "active",
                "subject": {"reference": "Patient/p1"},
                "participant": [
                    {"role": [{"text": "clinician"}], "member": {"reference": "Practitioner/dr"}},
                    {"role": [{"text": "nurse"}], "member": {"reference": "Practitioner/rn"}},
                    {"role": [{"text": "pharmacist"}], "member": {"reference": "Practitioner/rph"}},
                    {"role": [{"text": "social-worker"}], "member": {"reference": "Practitioner/sw"}},
                ],
            })
            .to_string(),
        )
        .await;
        put("/fhir/RelatedPerson/rp1", serde_json::json!({
            "resourceType": "RelatedPerson", "id": "rp1", "patient": {"reference": "Patient/p1"},
            "name": [{"family": "Silva", "given": ["Clara"]}],
        }).to_string()).await;
        let parts: Vec<serde_json::Value> = ["readings", "plan", "messages", "concerns", "medicines", "record"]
            .iter()
            .map(|p| serde_json::json!({"coding": [{"system": coproduce_app::accounts::GRANT_PART_SYSTEM, "code": p}]}))
            .collect();
        put("/fhir/Consent/grant-rp1", serde_json::json!({
            "resourceType": "Consent", "id": "grant-rp1", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/p1"},
            "provision": {"type": "permit", "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "DAU"}]}, "reference": {"reference": "RelatedPerson/rp1"}}], "code": parts},
        }).to_string()).await;
        for (name, role, link) in [
            ("ana", Role::Patient, "Patient/p1"),
            ("dr.okafor", Role::Clinician, "Practitioner/dr"),
            ("clara", Role::Family, "RelatedPerson/rp1"),
            ("nurse.lee", Role::Nurse, "Practitioner/rn"),
            ("rph.ali", Role::Pharmacist, "Practitioner/rph"),
            ("sw.diaz", Role::SocialWorker, "Practitioner/sw"),
            ("admin.kim", Role::Admin, ""),
        ] {
            self.accounts
                .add_user(NewUser {
                    username: name.into(),
                    roles: vec![role],
                    fhir_ref: (!link.is_empty()).then(|| link.into()),
                    password: Some(PASSWORD.into()),
                })
                .await
                .expect("a test account");
        }
    }

    /// Two Speak Up units (after [`TestApp::seed_care_team`]): "4 West", an inpatient ward,
    /// where the rapid-response nurse (rr.kim) and nurse.lee work, and the outpatient "Diabetes
    /// clinic", where only nurse.lee works; lead.park, the clinic lead, manages both.
    pub async fn seed_units(&self) {
        use coproduce_app::accounts::NewUser;
        use coproduce_app::speakup::Unit;
        use coproduce_core::access::Role;
        use coproduce_core::speakup::Place;
        let put = |path: String, body: String| async move {
            let resp = self.put_json(&path, body, None).await;
            assert!(
                resp.status().is_success(),
                "PUT {path}: {}",
                resp.text().await.unwrap_or_default()
            );
        };
        put(
            "/fhir/Location/unit-4w".into(),
            Unit::location("unit-4w", "4 West", Place::Inpatient, None).to_string(),
        )
        .await;
        put(
            "/fhir/Location/unit-clinic".into(),
            Unit::location("unit-clinic", "Diabetes clinic", Place::Outpatient, None).to_string(),
        )
        .await;
        for (id, family, given) in [("rr", "Kim", "Jae"), ("lead", "Park", "Min")] {
            put(
                format!("/fhir/Practitioner/{id}"),
                serde_json::json!({"resourceType": "Practitioner", "id": id,
                    "name": [{"family": family, "given": [given]}]})
                .to_string(),
            )
            .await;
        }
        for (id, who, role, units) in [
            ("pr-rr", "rr", "rapid-response", vec!["unit-4w"]),
            ("pr-rn", "rn", "nurse", vec!["unit-4w", "unit-clinic"]),
            (
                "pr-lead",
                "lead",
                "clinic-lead",
                vec!["unit-4w", "unit-clinic"],
            ),
        ] {
            let locations: Vec<serde_json::Value> = units
                .iter()
                .map(|u| serde_json::json!({"reference": format!("Location/{u}")}))
                .collect();
            put(
                format!("/fhir/PractitionerRole/{id}"),
                serde_json::json!({"resourceType": "PractitionerRole", "id": id, "active": true,
                    "practitioner": {"reference": format!("Practitioner/{who}")},
                    "code": [{"coding": [{"system": coproduce_app::vocabulary::ROLES, "code": role}]}],
                    "location": locations})
                .to_string(),
            )
            .await;
        }
        for (name, role, link) in [
            ("rr.kim", Role::RapidResponse, "Practitioner/rr"),
            ("lead.park", Role::ClinicLead, "Practitioner/lead"),
        ] {
            self.accounts
                .add_user(NewUser {
                    username: name.into(),
                    roles: vec![role],
                    fhir_ref: Some(link.into()),
                    password: Some(PASSWORD.into()),
                })
                .await
                .expect("a test account");
        }
    }

    /// A browser without JavaScript and not signed in (a bedside device): cookies, no
    /// redirects followed, and the CSRF token of the last page seen.
    pub fn visitor(&self) -> WebClient {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        WebClient {
            client,
            base: self.base.clone(),
            csrf: String::new(),
        }
    }

    /// A person's browser without JavaScript: cookies, no redirects followed, and the CSRF
    /// token of the last page seen.
    pub async fn sign_in(&self, username: &str) -> WebClient {
        let mut c = self.visitor();
        c.get("/login").await;
        let resp = c
            .post("/login", &[("username", username), ("password", PASSWORD)])
            .await;
        assert_eq!(resp.status(), 303, "{username} signs in");
        c
    }
}

/// A signed-in person's browser, for page tests (see [`TestApp::sign_in`]).
#[derive(Debug)]
pub struct WebClient {
    pub client: reqwest::Client,
    pub base: String,
    pub csrf: String,
}

impl WebClient {
    /// GETs a page: its status and text (and remembers the page's CSRF token).
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET a page");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a page");
        if let Some(i) = text.find("name=\"csrf\" value=\"") {
            let rest = &text[i + "name=\"csrf\" value=\"".len()..];
            self.csrf = rest.split('"').next().unwrap_or_default().to_string();
        }
        (status, text)
    }

    /// POSTs a form with the CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        self.client
            .post(format!("{}{path}", self.base))
            .form(&form)
            .send()
            .await
            .expect("POST a form")
    }
}
