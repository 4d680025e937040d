//! The pages that need no sign-in: a unit's form on a bedside or waiting-room device (a link
//! or QR code per unit), and reading the answer with a claim code. Their CSRF token rides in
//! a cookie of its own; the app throttles by address (concerns raised, wrong codes).

use super::*;
use crate::shell::{browser_language, csrf_refused, open_form_ok, open_form_token};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use coproduce_app::speakup::{Follower, Reporter};
use coproduce_core::speakup::Heard;
use std::net::SocketAddr;

const COOKIE: &str = "coproduce_speakup";

#[derive(Debug, serde::Deserialize, Default)]
pub(crate) struct Lang {
    #[serde(default)]
    lang: String,
    /// The concern whose answer the reporter came from.
    #[serde(default)]
    after: String,
}

/// The page's language: the one chosen on the page, else the browser's.
fn language(headers: &HeaderMap, chosen: &str) -> Tr {
    match crate::i18n::supported(chosen) {
        Some(l) => Tr::new(l),
        None => browser_language(headers),
    }
}

/// Links to the same page in each language (a device is shared: no account to remember it).
fn langs(path: &str) -> Vec<(String, String, String)> {
    crate::i18n::LANGUAGES
        .iter()
        .map(|(code, name)| {
            (
                code.to_string(),
                name.to_string(),
                format!("{path}?lang={code}"),
            )
        })
        .collect()
}

fn with_cookie(mut page: Response, cookie: Option<header::HeaderValue>) -> Response {
    if let Some(v) = cookie {
        page.headers_mut().append(header::SET_COOKIE, v);
    }
    page
}

#[derive(Template)]
#[template(path = "speakup_unit.html")]
pub(crate) struct UnitPage {
    tr: Tr,
    csrf: String,
    unit_id: String,
    unit_name: String,
    categories: Vec<(String, String)>,
    form: ConcernForm,
    error: Option<String>,
    langs: Vec<(String, String, String)>,
}

pub(crate) async fn unit_form(
    State(s): State<AppState>,
    Path(unit): Path<String>,
    Query(q): Query<Lang>,
    headers: HeaderMap,
) -> Response {
    let t = language(&headers, &q.lang).in_zone(s.calendar.clone());
    let u = match s.speakup.unit(&unit).await {
        Ok(u) => u,
        Err(e) => return refused_page(&t, e),
    };
    let (csrf, cookie) = open_form_token(&headers, COOKIE, "/speakup", s.config.secure_cookies);
    let page = UnitPage {
        categories: categories(&s, &t),
        csrf,
        unit_name: u.name,
        langs: langs(&format!("/speakup/unit/{}", u.id)),
        unit_id: u.id,
        form: ConcernForm {
            after: q
                .after
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect(),
            ..ConcernForm::default()
        },
        error: None,
        tr: t,
    };
    with_cookie(render(&page, StatusCode::OK), cookie)
}

pub(crate) async fn raise(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(unit): Path<String>,
    headers: HeaderMap,
    form: Result<Form<ConcernForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return crate::shell::unreadable();
    };
    if !open_form_ok(&headers, COOKIE, &f.csrf) {
        return csrf_refused();
    }
    let t = language(&headers, &f.lang).in_zone(s.calendar.clone());
    let address = addr.ip().to_string();
    let result = s
        .speakup
        .raise(
            Reporter::Device { address: &address },
            f.concern(&unit, true, t.lang),
        )
        .await;
    match result {
        Ok(r) => {
            let page = raised_page(&s, &t, &r, format!("/speakup/unit/{unit}?lang={}", t.lang));
            render(&page, StatusCode::OK)
        }
        Err(e) => {
            let Some(msg) = refusal(&t, &e) else {
                return failed(&t, e);
            };
            let status = refusal_status(&e);
            let Ok(u) = s.speakup.unit(&unit).await else {
                return error_page(&t, msg, status);
            };
            let page = UnitPage {
                categories: categories(&s, &t),
                csrf: f.csrf.clone(),
                unit_name: u.name,
                langs: langs(&format!("/speakup/unit/{}", u.id)),
                unit_id: u.id,
                form: f,
                error: Some(msg),
                tr: t,
            };
            render(&page, status)
        }
    }
}

#[derive(Template)]
#[template(path = "speakup_follow.html")]
pub(crate) struct FollowPage {
    tr: Tr,
    csrf: String,
    code: String,
    concern: Option<ReporterConcern>,
    error: Option<String>,
    note: Option<String>,
    langs: Vec<(String, String, String)>,
}

pub(crate) async fn follow_page(
    State(s): State<AppState>,
    Query(q): Query<Lang>,
    headers: HeaderMap,
) -> Response {
    let t = language(&headers, &q.lang).in_zone(s.calendar.clone());
    let (csrf, cookie) = open_form_token(&headers, COOKIE, "/speakup", s.config.secure_cookies);
    let page = FollowPage {
        tr: t,
        csrf,
        code: String::new(),
        concern: None,
        error: None,
        note: None,
        langs: langs("/speakup/follow"),
    };
    with_cookie(render(&page, StatusCode::OK), cookie)
}

#[derive(Debug, serde::Deserialize, Default)]
pub(crate) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    heard: String,
    #[serde(default)]
    comment: String,
}

pub(crate) async fn follow(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    answer(s, addr, headers, form, false).await
}

pub(crate) async fn heard(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    answer(s, addr, headers, form, true).await
}

/// Reads the concern by its code (and first records whether they felt heard, when asked).
async fn answer(
    s: AppState,
    addr: SocketAddr,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
    heard: bool,
) -> Response {
    let Ok(Form(f)) = form else {
        return crate::shell::unreadable();
    };
    if !open_form_ok(&headers, COOKIE, &f.csrf) {
        return csrf_refused();
    }
    let t = language(&headers, &f.lang).in_zone(s.calendar.clone());
    let address = addr.ip().to_string();
    let follower = Follower::Claim {
        code: &f.code,
        address: &address,
    };
    let page = |concern, error, note| FollowPage {
        tr: t.clone(),
        csrf: f.csrf.clone(),
        code: f.code.trim().to_string(),
        concern,
        error,
        note,
        langs: Vec::new(),
    };
    let mut note = None;
    let mut error = None;
    if heard {
        let said = match Heard::parse(&f.heard) {
            Some(h) => s.speakup.felt_heard(follower, h, &f.comment).await,
            None => Err(CareError::Input {
                key: "speakup-heard-choose",
                english: "choose yes, partly or no".into(),
                args: Vec::new(),
            }),
        };
        match said {
            Ok(()) => note = Some(t.t("speakup-heard-thanks")),
            Err(e) => match (refusal(&t, &e), e.message()) {
                // A wrong code is answered as such, not tried a second time by the reading.
                (Some(msg), Some(("claim-wrong" | "claim-throttled", _))) => {
                    return render(&page(None, Some(msg), None), refusal_status(&e));
                }
                (Some(msg), _) => error = Some(msg),
                (None, _) => return failed(&t, e),
            },
        }
    }
    let viewed = s.speakup.follow(follower).await;
    match viewed {
        Ok(v) => {
            let status = if error.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            render(&page(Some(reporter_concern(&t, &v)), error, note), status)
        }
        Err(e) => match refusal(&t, &e) {
            Some(msg) => render(&page(None, Some(msg), None), refusal_status(&e)),
            None => failed(&t, e),
        },
    }
}
