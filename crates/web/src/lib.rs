//! The HTTP layer of coproduce: the FHIR REST API at `/fhir`, `/healthz` and `/metrics`.
//! Handlers are thin: they read the request, call `app`, and answer; every error is mapped
//! to a status and an OperationOutcome in [`errors`].

mod api;
mod auth;
pub mod errors;
mod fhir;

/// Every route below `/fhir` and `/api`, with whether it is public, for tests that walk them.
pub fn route_paths() -> Vec<(String, bool)> {
    let fhir = fhir::route_table()
        .into_iter()
        .map(|(p, _, public)| (format!("/fhir{p}"), public));
    let api = api::route_table()
        .into_iter()
        .map(|(p, _, public)| (format!("/api{p}"), public));
    fhir.chain(api).collect()
}
mod metrics;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use coproduce_app::FhirApi;
use coproduce_app::accounts::Accounts;
use std::sync::Arc;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The largest request body accepted (413 above it).
    pub body_limit: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            body_limit: 16 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub api: FhirApi,
    pub accounts: Accounts,
    pub config: Arc<WebConfig>,
}

/// The whole router.
pub fn router(api: FhirApi, accounts: Accounts, config: WebConfig) -> Router {
    let limit = config.body_limit;
    let state = AppState {
        api,
        accounts,
        config: Arc::new(config),
    };
    Router::new()
        .nest("/fhir", fhir::routes())
        .nest("/api", api::routes())
        .route("/healthz", axum::routing::get(metrics::healthz))
        .route("/metrics", axum::routing::get(metrics::render))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves the router on a bound listener until Ctrl-C.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
