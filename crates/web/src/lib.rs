//! The HTTP layer of coproduce: the FHIR REST API at `/fhir`, `/healthz` and `/metrics`.
//! Handlers are thin: they read the request, call `app`, and answer; every error is mapped
//! to a status and an OperationOutcome in [`errors`].

mod analyst_pages;
mod api;
mod auth;
pub mod care_pages;
pub mod charts;
pub mod errors;
mod fhir;
pub mod i18n;
pub mod jobs;
mod rescue_pages;

/// How a route treats a caller without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Open to anyone (`/fhir/metadata`, the sign-in page).
    Public,
    /// 401 with an OperationOutcome without a valid bearer token.
    Token,
    /// A redirect to the sign-in page without a live session.
    Session,
}

/// Every route of `/fhir`, `/api` and the pages, with its guard, for tests that walk them.
pub fn route_paths() -> Vec<(String, Guard)> {
    let guard = |public: bool, otherwise: Guard| if public { Guard::Public } else { otherwise };
    let fhir = fhir::route_table()
        .into_iter()
        .map(|(p, _, public)| (format!("/fhir{p}"), guard(public, Guard::Token)));
    let api = api::route_table()
        .into_iter()
        .map(|(p, _, public)| (format!("/api{p}"), guard(public, Guard::Token)));
    let pages = pages::route_table()
        .into_iter()
        .chain(care_pages::route_table())
        .chain(rescue_pages::route_table())
        .chain(analyst_pages::route_table())
        .map(|(p, _, public)| (p.to_string(), guard(public, Guard::Session)));
    fhir.chain(api).chain(pages).collect()
}

mod metrics;
mod pages;
mod sessions;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use coproduce_app::accounts::Accounts;
use coproduce_app::{Care, FhirApi};
use std::sync::Arc;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The largest request body accepted (413 above it).
    pub body_limit: usize,
    /// Session cookies only over HTTPS (`__Host-` prefix, Secure). Off only for plain-HTTP
    /// development on localhost, where the cookie is then named `coproduce_session`.
    pub secure_cookies: bool,
    /// How long sign-in sessions last (idle and absolute).
    pub sessions: coproduce_core::session::SessionRules,
    /// When an unreviewed patient reading is flagged on the team home.
    pub review: coproduce_core::readings::ReviewRules,
    /// The site's business calendar, for team deadlines.
    pub calendar: coproduce_core::calendar::BusinessCalendar,
    /// The self-started treatment protocol (the COPD rescue pack by default).
    pub protocol: coproduce_app::protocol::ProtocolDef,
    /// Email and webhook delivery of notifications.
    pub delivery: jobs::Delivery,
    /// The quality measures shown on the analyst's pages: (name, official bundle).
    pub measures: Vec<(String, Arc<coproduce_measures::MeasureBundle>)>,
    /// The address the site is reached at (`https://clinic.example.org`), for the links and
    /// locations it writes; never taken from a request's Host header.
    pub public_url: String,
    /// The most entries a batch or transaction Bundle may carry (a 4xx above it).
    pub bundle_entries: usize,
    /// How long a client may take to send a request's body (408 after it), so that a body
    /// trickled slowly does not hold a connection open.
    pub body_timeout: std::time::Duration,
    /// How long a client may take to send a request's headers (the connection is closed
    /// after it); used by [`serve_until`].
    pub header_timeout: std::time::Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            body_limit: 16 * 1024 * 1024,
            secure_cookies: true,
            sessions: coproduce_core::session::SessionRules::default(),
            review: coproduce_core::readings::ReviewRules::default(),
            calendar: coproduce_core::calendar::BusinessCalendar::default(),
            protocol: coproduce_app::protocol::ProtocolDef::copd(),
            delivery: jobs::Delivery::default(),
            measures: Vec::new(),
            public_url: "http://127.0.0.1:8080".into(),
            bundle_entries: coproduce_app::fhir_api::DEFAULT_BUNDLE_ENTRIES,
            body_timeout: std::time::Duration::from_secs(10),
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub api: FhirApi,
    pub care: Care,
    pub rescue: coproduce_app::rescue::Rescue,
    pub notifier: coproduce_app::notify::Notifier,
    pub accounts: Accounts,
    pub config: Arc<WebConfig>,
}

impl AppState {
    /// The application's services over one FHIR API, configured.
    pub fn new(api: FhirApi, accounts: Accounts, config: WebConfig) -> Self {
        let mut care = Care::new(api.clone(), api.clock());
        care.review = config.review;
        let notifier = coproduce_app::notify::Notifier::new(
            api.clone(),
            api.clock(),
            config.delivery.webhook.is_some(),
        );
        let rescue = coproduce_app::rescue::Rescue::new(
            api.clone(),
            api.clock(),
            config.protocol.clone(),
            config.calendar.clone(),
            notifier.clone(),
        );
        AppState {
            care,
            rescue,
            notifier,
            api,
            accounts,
            config: Arc::new(config),
        }
    }
}

/// The router and the background jobs that go with it (the deadline watcher and delivery).
pub fn app(
    api: FhirApi,
    accounts: Accounts,
    config: WebConfig,
) -> Result<(Router, jobs::Jobs), coproduce_app::AppError> {
    let limit = config.body_limit;
    let body_timeout = config.body_timeout;
    let api = api.with_bundle_limit(config.bundle_entries);
    let secure = config.secure_cookies;
    let sessions = tower_sessions::SessionManagerLayer::new(sessions::DbSessions(accounts.clone()))
        .with_name(if secure {
            "__Host-coproduce"
        } else {
            "coproduce_session"
        })
        .with_secure(secure)
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Strict)
        .with_path("/")
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(12),
        ));
    let state = AppState::new(api.clone(), accounts, config);
    let watcher =
        coproduce_app::deadlines::Watcher::new(api.clone(), api.clock(), state.rescue.clone());
    let jobs = jobs::Jobs::new(
        watcher,
        state.notifier.clone(),
        api.clock(),
        state.config.delivery.clone(),
    )?;
    let router = Router::new()
        .nest("/fhir", fhir::routes())
        .nest("/api", api::routes())
        .merge(pages::routes().layer(sessions))
        .route("/healthz", axum::routing::get(metrics::healthz))
        .route("/metrics", axum::routing::get(metrics::render))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .with_state(state);
    Ok((router, jobs))
}

/// How long a client may take to send a request's headers before the connection is closed,
/// so that headers trickled slowly cannot hold connections open.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the router until `shutdown` completes, then lets requests in flight finish. Each
/// connection's request headers must arrive within `header_timeout` (hyper's own timer), and
/// every request carries the peer's address (`ConnectInfo`).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = app.clone();
        let service = hyper::service::service_fn(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            },
        );
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
