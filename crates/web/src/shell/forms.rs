//! Sessions and forms: who is signed in (by our idle and absolute limits), the CSRF token
//! every state-changing form carries, and the checks a form passes before a handler acts.

use super::{server_error, unreadable};
use crate::AppState;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use coproduce_app::UserRow;
use coproduce_core::access::session::SessionState;
use serde::Deserialize;
use tower_sessions::Session;

pub(crate) const USER: &str = "user_id";

pub(crate) const SIGNED_IN: &str = "signed_in";

pub(crate) const LAST_SEEN: &str = "last_seen";

pub(crate) const CSRF: &str = "csrf";

pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        return String::new(); // an empty token never matches: forms are refused, not forged
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The session's CSRF token, made on first use.
pub(crate) async fn csrf_token(
    session: &Session,
) -> Result<String, tower_sessions::session::Error> {
    if let Some(t) = session.get::<String>(CSRF).await?
        && !t.is_empty()
    {
        return Ok(t);
    }
    let t = new_token();
    session.insert(CSRF, t.clone()).await?;
    Ok(t)
}

/// A form shown to someone not signed in (the sign-in form, a unit's open Speak Up form): its
/// CSRF token rides in a cookie of its own, scoped to `path`, and the form carries a copy
/// (compared on POST), so that showing the form writes no session row. Returns the token
/// and the cookie to set.
pub(crate) fn open_form_token(
    headers: &HeaderMap,
    cookie: &'static str,
    path: &str,
    secure: bool,
) -> (String, Option<header::HeaderValue>) {
    let token = open_form_cookie(headers, cookie)
        .filter(|t| t.len() >= 32)
        .unwrap_or_else(new_token);
    let set = tower_sessions::cookie::Cookie::build((cookie, token.clone()))
        .path(path.to_string())
        .http_only(true)
        .same_site(tower_sessions::cookie::SameSite::Strict)
        .secure(secure)
        .max_age(tower_sessions::cookie::time::Duration::hours(1))
        .build()
        .to_string();
    (token, header::HeaderValue::from_str(&set).ok())
}

/// Whether an open form's token matches its cookie.
pub(crate) fn open_form_ok(headers: &HeaderMap, cookie: &str, sent: &str) -> bool {
    open_form_cookie(headers, cookie).is_some_and(|t| same(&t, sent))
}

fn open_form_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(tower_sessions::cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Compares in constant time, so the token cannot be guessed byte by byte.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(crate) async fn csrf_ok(session: &Session, sent: &str) -> bool {
    matches!(session.get::<String>(CSRF).await, Ok(Some(t)) if same(&t, sent))
}

pub(crate) fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html("This form has expired. Go back, reload the page and try again."),
    )
        .into_response()
}

/// The signed-in user, if the session is live by our rules (it is then touched); an expired
/// session is ended.
pub(crate) async fn signed_in(
    s: &AppState,
    session: &Session,
) -> Result<Option<UserRow>, Response> {
    let get = |k: &'static str| async move { session.get::<i64>(k).await };
    let user_id = session.get::<String>(USER).await.map_err(server_error)?;
    let (Some(user_id), Some(signed), Some(seen)) = (
        user_id,
        get(SIGNED_IN).await.map_err(server_error)?,
        get(LAST_SEEN).await.map_err(server_error)?,
    ) else {
        return Ok(None);
    };
    let now = s.accounts.now();
    let at = coproduce_core::from_unix_millis;
    if s.config.sessions.state(at(signed), at(seen), now) != SessionState::Live {
        session.flush().await.map_err(server_error)?;
        return Ok(None);
    }
    let user = s
        .accounts
        .user_by_id(&user_id)
        .await
        .map_err(server_error)?;
    match user {
        Some(u) if !u.disabled => {
            session
                .insert(LAST_SEEN, millis(now))
                .await
                .map_err(server_error)?;
            Ok(Some(u))
        }
        _ => {
            session.flush().await.map_err(server_error)?;
            Ok(None)
        }
    }
}

use coproduce_core::unix_millis as millis;

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

/// `WithCsrf` for form structs whose token is their `csrf` field.
macro_rules! csrf_forms {
    ($($form:ty),+ $(,)?) => {
        $(impl $crate::shell::WithCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}
pub(crate) use csrf_forms;

/// A form that carries the session's CSRF token.
pub(crate) trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// The signed-in user, or the redirect to the sign-in page.
pub(crate) async fn require_user(s: &AppState, session: &Session) -> Result<UserRow, Response> {
    match signed_in(s, session).await? {
        Some(u) => Ok(u),
        None => Err(Redirect::to("/login").into_response()),
    }
}

/// A state-changing form: a live session first, then a readable form with the right token.
pub(crate) async fn checked_form<F: WithCsrf>(
    s: &AppState,
    session: &Session,
    form: Result<Form<F>, FormRejection>,
) -> Result<(UserRow, F), Response> {
    let user = require_user(s, session).await?;
    let Ok(Form(f)) = form else {
        return Err(unreadable());
    };
    if !csrf_ok(session, f.csrf()).await {
        return Err(csrf_refused());
    }
    Ok((user, f))
}

/// A form whose fields may repeat (checkboxes), read as pairs.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct Pairs(pub(crate) Vec<(String, String)>);

impl WithCsrf for Pairs {
    fn csrf(&self) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == "csrf")
            .map_or("", |(_, v)| v.as_str())
    }
}

impl Pairs {
    pub(crate) fn one(&self, k: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.trim())
    }

    pub(crate) fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, v)| n == k && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// Before sign-in the language comes from the browser's Accept-Language.
pub(crate) fn browser_language(headers: &HeaderMap) -> crate::i18n::Tr {
    let accept = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    crate::i18n::Tr::from_accept_language(accept)
}

/// Refuses a posted form (`application/x-www-form-urlencoded`) whose fields hold a control
/// character, before any handler runs: 422 with the field named, in the browser's language,
/// and nothing changed. Every page form passes through it.
pub(crate) async fn refuse_control_characters(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let urlencoded = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if req.method() != Method::POST || !urlencoded {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, s.config.body_limit).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Html("The form is too large to be read."),
        )
            .into_response();
    };
    for (field, value) in form_urlencoded::parse(&bytes) {
        if let Some(c) = coproduce_fhir::primitives::control_character(&value) {
            let t = browser_language(&parts.headers);
            let message = t.with(
                "error-control-character",
                &[
                    ("field", field.into_owned()),
                    ("code", format!("U+{:04X}", u32::from(c))),
                ],
            );
            return super::error_page(&t, message, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

csrf_forms!(CsrfForm);
