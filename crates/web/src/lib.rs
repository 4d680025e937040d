//! The HTTP layer of coproduce: the FHIR REST API at `/fhir`, `/healthz` and `/metrics`.
//! Handlers are thin: they read the request, call `app`, and answer; every error is mapped
//! to a status and an OperationOutcome in [`errors`].

// The workflows' pages, one folder each, each with its own route table: accounts (sign-in
// and the account page), the care plan and readings, the rescue pack, measures (the
// analyst's pages).
mod accounts;
pub mod care;
mod measures;
mod prescribing;
mod rescue;
mod social;
mod speakup;

// What every workflow's pages use: the page shell, the inbox, the charts; the FHIR API and
// the token API; errors as OperationOutcomes; metrics.
mod api;
mod auth;
mod breakdown;
mod bundle;
pub mod charts;
pub mod errors;
mod fhir;
pub mod headers;
mod home;
mod inbox;
mod limits;
pub use limits::Limits;
mod metrics;
mod shell;

pub use coproduce_app::i18n;

/// Who may call a route: anyone, a bearer token, or a signed-in session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    Public,
    Token,
    Session,
}

/// Every page route of every workflow, as (path, handler, public).
fn page_table() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>, bool)> {
    shell::route_table()
        .into_iter()
        .chain(home::route_table())
        .chain(inbox::route_table())
        .chain(accounts::route_table())
        .chain(care::route_table())
        .chain(rescue::route_table())
        .chain(measures::route_table())
        .chain(speakup::route_table())
        .chain(social::route_table())
        .chain(prescribing::route_table())
        .collect()
}

/// Every route with its guard, for the tests that walk them all.
pub fn route_paths() -> Vec<(String, Guard)> {
    let guard = |public: bool, otherwise: Guard| if public { Guard::Public } else { otherwise };
    let fhir = fhir::route_table()
        .into_iter()
        .map(|(p, _, public)| (format!("/fhir{p}"), guard(public, Guard::Token)));
    let api = api::route_table()
        .into_iter()
        .map(|(p, _, public)| (format!("/api{p}"), guard(public, Guard::Token)));
    let pages = page_table()
        .into_iter()
        .map(|(p, _, public)| (p.to_string(), guard(public, Guard::Session)));
    fhir.chain(api).chain(pages).collect()
}

use axum::Router;
use axum::extract::DefaultBodyLimit;
use coproduce_app::accounts::Accounts;
use coproduce_app::workflows::Workflows;
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
    pub sessions: coproduce_core::access::session::SessionRules,
    /// The quality measures shown on the analyst's pages: (name, official bundle).
    pub measures: Vec<(String, Arc<coproduce_measures::MeasureBundle>)>,
    /// The address the site is reached at (`https://clinic.example.org`), for the links and
    /// locations it writes; never taken from a request's Host header.
    pub public_url: String,
    /// How long a client may take to send a request's body (408 after it), so that a body
    /// trickled slowly does not hold a connection open.
    pub body_timeout: std::time::Duration,
    /// How long a client may take to send a request's headers (the connection is closed
    /// after it); used by [`serve_until`].
    pub header_timeout: std::time::Duration,
    /// How long a request may run on the server (503 after it, the request stopped).
    pub request_timeout: std::time::Duration,
    /// The most connections served at once (one more is answered 503); used by
    /// [`serve_until`].
    pub max_connections: usize,
    /// The numbers patients are told to call.
    pub phones: Phones,
}

/// The numbers patients and families are told to call, shown as links that dial on a phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phones {
    /// The clinic (none: the messages say "your clinic" without a number).
    pub clinic: Option<String>,
    /// Emergency services.
    pub emergency: String,
}

impl Default for Phones {
    fn default() -> Self {
        Phones {
            clinic: None,
            emergency: "911".into(),
        }
    }
}

impl WebConfig {
    /// The limits [`serve_until`] holds connections to.
    pub fn limits(&self) -> Limits {
        Limits {
            header_timeout: self.header_timeout,
            max_connections: self.max_connections,
        }
    }
}

impl Phones {
    /// A number as a `tel:` address: its digits and a leading plus only.
    pub fn tel(number: &str) -> String {
        let digits: String = number
            .chars()
            .enumerate()
            .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
            .map(|(_, c)| c)
            .collect();
        format!("tel:{digits}")
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            body_limit: 16 * 1024 * 1024,
            secure_cookies: true,
            sessions: coproduce_core::access::session::SessionRules::default(),
            measures: Vec::new(),
            public_url: "http://127.0.0.1:8080".into(),
            body_timeout: std::time::Duration::from_secs(10),
            header_timeout: HEADER_TIMEOUT,
            request_timeout: std::time::Duration::from_secs(60),
            max_connections: 512,
            phones: Phones::default(),
        }
    }
}

/// What every handler has: the workflows' use-cases over one API, the accounts, the
/// settings, and the panels the workflows add to a patient's home. One shared handle (every
/// request's handlers take a copy of it: one count, not a copy of each part).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an [`AppState`] holds.
#[derive(Debug)]
pub struct Shared {
    pub api: FhirApi,
    pub care: Care,
    pub rescue: coproduce_app::rescue::Rescue,
    pub speakup: coproduce_app::speakup::SpeakUp,
    pub social: coproduce_app::social::Social,
    pub prescribing: coproduce_app::prescribing::Prescribing,
    pub notifier: coproduce_app::notify::Notifier,
    pub accounts: Accounts,
    pub config: Arc<WebConfig>,
    /// The site's business calendar: the zone pages show and read times in.
    pub calendar: Arc<coproduce_core::calendar::BusinessCalendar>,
    pub(crate) panels: shell::Panels,
}

impl AppState {
    /// The state over the workflows, with each workflow's panels registered.
    pub fn new(workflows: &Workflows, accounts: Accounts, config: WebConfig) -> Self {
        AppState(Arc::new(Shared {
            api: workflows.api.clone(),
            care: workflows.care.clone(),
            rescue: workflows.rescue.clone(),
            speakup: workflows.speakup.clone(),
            social: workflows.social.clone(),
            prescribing: workflows.prescribing.clone(),
            notifier: workflows.notifier.clone(),
            accounts,
            config: Arc::new(config),
            calendar: workflows.calendar(),
            panels: shell::Panels::new(vec![
                rescue::home_panel,
                social::home_panel,
                prescribing::home_panel,
                care::partnership_panel,
            ]),
        }))
    }
}

/// The router over the workflows. The background work (deadlines, delivery) is not the web
/// layer's: the binary starts it from [`Workflows::jobs`].
pub fn app(workflows: &Workflows, accounts: Accounts, config: WebConfig) -> Router {
    let limit = config.body_limit;
    let body_timeout = config.body_timeout;
    let request_timeout = config.request_timeout;
    let https = config.public_url.starts_with("https://");
    let secure = config.secure_cookies;
    let sessions =
        tower_sessions::SessionManagerLayer::new(accounts::sessions::DbSessions(accounts.clone()))
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
    let state = AppState::new(workflows, accounts, config);
    let pages = page_table()
        .into_iter()
        .fold(Router::new(), |r, (path, handler, _)| {
            r.route(path, handler)
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            shell::refuse_control_characters,
        ));
    Router::new()
        .nest("/fhir", fhir::routes())
        .nest("/api", api::routes())
        .merge(pages.layer(sessions))
        .fallback(shell::not_found)
        .route("/healthz", axum::routing::get(metrics::healthz))
        .route("/metrics", axum::routing::get(metrics::render))
        .layer(axum::middleware::from_fn(move |req, next| {
            limits::request_timeout(request_timeout, req, next)
        }))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn(move |req, next| {
            headers::secure(https, req, next)
        }))
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .with_state(state)
}

/// How long a client may take to send a request's headers before the connection is closed,
/// so that headers trickled slowly cannot hold connections open.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long requests in flight have to finish once the server is told to stop.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves the router until `shutdown` completes, then lets requests in flight finish. Each
/// connection's request headers must arrive within the limits' `header_timeout` (hyper's own
/// timer); at most `max_connections` are served at once, and one more is answered 503 and
/// closed; every request carries the peer's address (`ConnectInfo`).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1.1 only (a proxy in front speaks HTTP/2 to browsers): its header time-out runs
    // from the moment a connection opens or goes idle, so a client that sends nothing is let
    // go too (the auto-detecting builder waits for a first byte without a time limit).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
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
        let Ok(permit) = open.clone().try_acquire_owned() else {
            ::metrics::counter!("coproduce_connections_refused_total").increment(1);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = stream;
                let answer = limits::over_the_limit();
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    stream.write_all(&answer),
                )
                .await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let router = app.clone();
        let service = hyper::service::service_fn(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            },
        );
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Requests in flight finish; a client that holds its connection longer is cut.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period were closed");
    }
    Ok(())
}
