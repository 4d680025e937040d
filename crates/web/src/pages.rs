//! The pages: sign in, home, sign out, change password. Server-rendered (askama); every
//! state-changing form carries the session's CSRF token; a protected page without a live
//! session redirects to the sign-in page.

use crate::AppState;
use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use base64::Engine;
use coproduce_app::UserRow;
use coproduce_app::accounts::SignInRefused;
use coproduce_core::session::SessionState;
use serde::Deserialize;
use std::net::SocketAddr;
use tower_sessions::Session;
use tower_sessions::cookie::{Cookie, SameSite};

const USER: &str = "user_id";
const SIGNED_IN: &str = "signed_in";
const LAST_SEEN: &str = "last_seen";
const CSRF: &str = "csrf";

/// Every page route: path, how it is served, and whether it is public.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/login", get(login_page).post(login), true),
        ("/account", get(account), false),
        ("/logout", post(logout), false),
        ("/account/password", post(change_password), false),
    ]
}

pub fn routes() -> Router<AppState> {
    route_table()
        .into_iter()
        .chain(crate::care_pages::route_table())
        .chain(crate::rescue_pages::route_table())
        .chain(crate::analyst_pages::route_table())
        .fold(Router::new(), |r, (path, handler, _)| {
            r.route(path, handler)
        })
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: crate::i18n::Tr,
    csrf: String,
    username: String,
    error: Option<String>,
    note: Option<String>,
}

pub(crate) fn render(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

pub(crate) fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html("Something went wrong on our side. Please try again."),
    )
        .into_response()
}

fn new_token() -> String {
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

/// Compares in constant time, so the token cannot be guessed byte by byte.
fn same(a: &str, b: &str) -> bool {
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

pub(crate) fn unreadable() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html("The form could not be read. Go back, reload the page and try again."),
    )
        .into_response()
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
async fn signed_in(s: &AppState, session: &Session) -> Result<Option<UserRow>, Response> {
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

/// Before sign-in the language comes from the browser's Accept-Language.
fn browser_language(headers: &HeaderMap) -> crate::i18n::Tr {
    let accept = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    crate::i18n::Tr::from_accept_language(accept)
}

/// The sign-in form's CSRF token rides in a cookie of its own (compared with the form's copy
/// on POST), so that showing the form to someone not signed in writes no session row.
const LOGIN_COOKIE: &str = "coproduce_login";

fn login_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == LOGIN_COOKIE)
        .map(|c| c.value().to_string())
}

async fn login_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    // The token the browser holds already, or a new one.
    let csrf = login_cookie(&headers)
        .filter(|t| t.len() >= 32)
        .unwrap_or_else(new_token);
    let cookie = Cookie::build((LOGIN_COOKIE, csrf.clone()))
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(s.config.secure_cookies)
        .max_age(tower_sessions::cookie::time::Duration::hours(1))
        .build()
        .to_string();
    let mut page = render(
        &LoginPage {
            t: browser_language(&headers),
            csrf,
            username: String::new(),
            error: None,
            note: None,
        },
        StatusCode::OK,
    );
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        page.headers_mut().append(header::SET_COOKIE, v);
    }
    page
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    /// The authenticator app's code, for accounts with a second factor.
    #[serde(default)]
    code: String,
}

async fn login(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !login_cookie(&headers).is_some_and(|t| !t.is_empty() && same(&t, &f.csrf)) {
        return csrf_refused();
    }
    let t = browser_language(&headers);
    let again = |key: &str, status: StatusCode| {
        let csrf = f.csrf.clone();
        render(
            &LoginPage {
                t: t.clone(),
                error: Some(t.t(key)),
                csrf,
                username: f.username.clone(),
                note: None,
            },
            status,
        )
    };
    match s
        .accounts
        .sign_in(
            f.username.trim(),
            &f.password,
            Some(f.code.as_str()).filter(|c| !c.is_empty()),
            &addr.ip().to_string(),
        )
        .await
    {
        Ok(user) => {
            // A new session id at sign-in, so an id planted before cannot be used after.
            if let Err(e) = session.cycle_id().await {
                return server_error(e);
            }
            let now = millis(s.accounts.now());
            let stored = async {
                session.insert(USER, user.id.clone()).await?;
                session.insert(SIGNED_IN, now).await?;
                session.insert(LAST_SEEN, now).await?;
                session.insert(CSRF, new_token()).await
            };
            match stored.await {
                Ok(()) => Redirect::to("/").into_response(),
                Err(e) => server_error(e),
            }
        }
        Err(SignInRefused::WrongCredentials) => again("login-wrong", StatusCode::UNAUTHORIZED),
        Err(SignInRefused::Throttled) => again("login-throttled", StatusCode::TOO_MANY_REQUESTS),
        Err(SignInRefused::Storage(e)) => server_error(e),
    }
}

async fn account(State(s): State<AppState>, session: Session) -> Response {
    crate::care_pages::account_page(&s, &session, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

/// A form that carries the session's CSRF token.
pub(crate) trait WithCsrf {
    fn csrf(&self) -> &str;
}

impl WithCsrf for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl WithCsrf for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
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

async fn logout(
    State(s): State<AppState>,
    session: Session,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let (user, _) = match checked_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    if let Err(e) = s.accounts.signed_out(&user).await {
        return server_error(e);
    }
    match session.flush().await {
        Ok(()) => Redirect::to("/login").into_response(),
        Err(e) => server_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
}

async fn change_password(
    State(s): State<AppState>,
    session: Session,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let (user, f) = match checked_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let this = session.id().map(|id| id.to_string()).unwrap_or_default();
    let result = s
        .accounts
        .change_password(&user, &f.current, &f.new, &this)
        .await;
    let (note, status) = match result {
        Ok(n) => (Ok(n), StatusCode::OK),
        Err(e) => (Err(e.to_string()), StatusCode::UNPROCESSABLE_ENTITY),
    };
    crate::care_pages::account_page(&s, &session, Some(note), status).await
}
