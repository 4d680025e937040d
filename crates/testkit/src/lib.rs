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

impl TestDb {
    pub async fn new(backend: TestBackend) -> Self {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                let store = Store::open(&url).await.expect("open SQLite");
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
                let store = Store::open(&url).await.expect("open PostgreSQL");
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
        let db = TestDb::new(backend).await;
        let clock = fake_clock();
        let api = FhirApi::new(db.store.clone(), clock.clone());
        let accounts = Accounts::new(db.store.clone(), clock.clone());
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
        let app = coproduce_web::router(api, accounts.clone(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            let _ = axum_serve(listener, app).await;
        });
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            clock,
            db,
            accounts,
            token,
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

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}
