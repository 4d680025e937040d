//! Accounts' pages: sign in, sign out, change password, and (in `account`) the account page
//! with the person's language and email. Server-rendered (askama); every state-changing form
//! carries the session's CSRF token; a protected page without a live session redirects to
//! the sign-in page. `sessions` keeps the sessions in our database.

use crate::AppState;
use crate::shell::{
    CSRF, CsrfForm, LAST_SEEN, SIGNED_IN, USER, browser_language, checked_form, csrf_refused,
    new_token, open_form_ok, open_form_token, render, server_error,
};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use coproduce_app::accounts::SignInRefused;
use coproduce_core::unix_millis as millis;
use serde::Deserialize;
use std::net::SocketAddr;
use tower_sessions::Session;

mod account;
pub(crate) mod admin;
pub(crate) mod sessions;

pub(crate) use account::account_page;

/// Every page route: path, how it is served, and whether it is public.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/login", get(login_page).post(login), true),
        ("/account", get(account), false),
        ("/logout", post(logout), false),
        ("/account/password", post(change_password), false),
        ("/account/language", post(account::set_language), false),
        ("/account/notifications", post(account::set_email), false),
        ("/account/time-zone", post(account::set_time_zone), false),
        (
            "/admin/users/{username}/disable",
            post(admin::disable),
            false,
        ),
        ("/admin/users/{username}/enable", post(admin::enable), false),
        ("/admin/tokens/{id}/revoke", post(admin::revoke), false),
    ]
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

/// The sign-in form's CSRF token rides in a cookie of its own (compared with the form's copy
/// on POST), so that showing the form to someone not signed in writes no session row.
const LOGIN_COOKIE: &str = "coproduce_login";

async fn login_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (csrf, cookie) = open_form_token(&headers, LOGIN_COOKIE, "/login", s.config.secure_cookies);
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
    if let Some(v) = cookie {
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
    if !open_form_ok(&headers, LOGIN_COOKIE, &f.csrf) {
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
    account_page(&s, &session, None, StatusCode::OK).await
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
    account_page(&s, &session, Some(note), status).await
}

crate::shell::csrf_forms!(PasswordForm);
