//! The account page: who is signed in, sign out, the language of the pages, where email
//! notifications go, and the password change form with its outcome.

use crate::AppState;
use crate::i18n::supported;
use crate::shell::{
    Frame, Pairs, Person, back_to, checked_form, failed, person, person_form, render, safe_back,
    server_error, unreadable,
};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::Response;
use coproduce_app::CareError;
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Template)]
#[template(path = "account.html")]
pub(crate) struct AccountPage {
    pub(crate) f: Frame,
    pub(crate) signed_in_as: String,
    /// Whether the account has a record to be told about (and so an email preference).
    pub(crate) can_email: bool,
    pub(crate) email: String,
    /// The zone the person chose (empty: the site's), and the site's.
    pub(crate) time_zone: String,
    pub(crate) site_zone: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LanguageForm {
    pub(crate) csrf: String,
    pub(crate) lang: String,
    #[serde(default)]
    pub(crate) back: String,
}

pub(crate) async fn set_language(
    State(s): State<AppState>,
    session: Session,
    form: Result<Form<LanguageForm>, FormRejection>,
) -> Response {
    let (user, f) = match checked_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let Some(lang) = supported(&f.lang) else {
        return unreadable();
    };
    if let Err(e) = s.accounts.set_language(&user, lang).await {
        return server_error(e);
    }
    back_to(safe_back(&f.back), "note-language")
}

/// The account page (sign out, password), with the outcome of a password change: the number
/// of other sessions ended, or why it was refused.
pub(crate) async fn account_page(
    s: &AppState,
    session: &Session,
    changed: Option<Result<u64, String>>,
    status: StatusCode,
) -> Response {
    let p = match person(s, session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let (note, error) = match changed {
        Some(Ok(n)) => (
            Some(t.count("account-password-changed", "n", n as usize)),
            None,
        ),
        Some(Err(why)) => (
            None,
            Some(t.arg("account-password-not-changed", "why", &why)),
        ),
        None => (None, None),
    };
    account_with(s, &p, note, error, status).await
}

/// The account page with a note or an error at the top.
pub(crate) async fn account_with(
    s: &AppState,
    p: &Person,
    note: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let t = p.t();
    let email = match s.notifier.email(&p.caller).await {
        Ok(e) => e.unwrap_or_default(),
        Err(e) => return failed(&t, CareError::App(e)),
    };
    let time_zone = match s.accounts.time_zone(&p.user).await {
        Ok(z) => z.unwrap_or_default(),
        Err(e) => return failed(&t, CareError::App(e)),
    };
    render(
        &AccountPage {
            signed_in_as: t.with(
                "account-signed-in-as",
                &[
                    ("name", p.user.username.clone()),
                    ("roles", p.user.roles.clone()),
                ],
            ),
            can_email: p.caller.fhir_ref.is_some(),
            email,
            time_zone,
            site_zone: s.calendar.zone_name(),
            f: p.frame(t.t("account-title"), note, error),
        },
        status,
    )
}

/// The account page after a setting was saved (the note), refused as the person's input
/// (the refusal, 422, nothing changed), or failed.
async fn after_setting(
    s: &AppState,
    p: &Person,
    result: Result<(), coproduce_app::AppError>,
    saved: String,
    refused: String,
) -> Response {
    match result {
        Ok(()) => account_with(s, p, Some(saved), None, StatusCode::OK).await,
        Err(coproduce_app::AppError::Invalid(_)) => {
            account_with(s, p, None, Some(refused), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => failed(&p.t(), CareError::App(e)),
    }
}

/// Where the signed-in person wants email (an empty address: no email).
pub(crate) async fn set_email(
    State(s): State<AppState>,
    session: Session,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = p.t();
    let result = s.notifier.set_email(&p.caller, f.one("email")).await;
    let (saved, refused) = (t.t("account-email-saved"), t.t("account-email-invalid"));
    after_setting(&s, &p, result, saved, refused).await
}

/// The time zone the signed-in person reads and types times in (empty: the site's).
pub(crate) async fn set_time_zone(
    State(s): State<AppState>,
    session: Session,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = p.t();
    let zone = f.one("time_zone");
    let result = s.accounts.set_time_zone(&p.user, zone).await;
    let (saved, refused) = (
        t.t("note-time-zone"),
        t.arg("account-zone-invalid", "zone", zone),
    );
    after_setting(&s, &p, result, saved, refused).await
}

crate::shell::csrf_forms!(LanguageForm);
