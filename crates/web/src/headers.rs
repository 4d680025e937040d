//! The headers every answer carries: a Content-Security-Policy that runs only the site's own
//! scripts and styles and lets no other site frame it, no content sniffing, no referrer, and
//! `Cache-Control: no-store` on everything but the static files (pages and API answers carry
//! health data). When the site is reached over HTTPS (its public address says so), also
//! `Strict-Transport-Security`, so browsers never come back over plain HTTP.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy: the site's own scripts, styles and images (and inline `data:` images, the QR
/// codes), no plugins, forms posted only to the site, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One year, this host and its subdomains.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// Adds the headers; `https` adds HSTS.
pub async fn secure(https: bool, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if https && !h.contains_key(header::STRICT_TRANSPORT_SECURITY) {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    resp
}
