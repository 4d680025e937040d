//! Sign-in sessions, CSRF and sign-in throttling, on the fake clock.

use coproduce_app::accounts::NewUser;
use coproduce_core::access::Role;
use coproduce_testkit::{TestApp, TestBackend, backends};
use time::Duration;

const PASSWORD: &str = "a long enough password";

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser on another loopback address (the server sees it as another client).
fn from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

fn csrf_in(page: &str) -> String {
    let start =
        page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    page[start..].split('"').next().unwrap().to_string()
}

pub(crate) async fn sign_in(
    app: &TestApp,
    c: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let page = c
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    c.post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap()
}

async fn home(app: &TestApp, c: &reqwest::Client) -> u16 {
    c.get(app.url("/")).send().await.unwrap().status().as_u16()
}

async fn with_user(name: &str) -> TestApp {
    with_user_on(TestBackend::Sqlite, name).await
}

async fn with_user_on(backend: TestBackend, name: &str) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.put_json(
        "/fhir/Practitioner/dr",
        r#"{"resourceType":"Practitioner","id":"dr"}"#,
        None,
    )
    .await;
    app.accounts
        .add_user(NewUser {
            username: name.into(),
            roles: vec![Role::Nurse],
            fhir_ref: Some("Practitioner/dr".into()),
            password: Some(PASSWORD.into()),
        })
        .await
        .unwrap();
    app
}

#[tokio::test]
async fn a_session_ends_after_thirty_idle_minutes() {
    let app = with_user("sam").await;
    let c = client();
    let resp = sign_in(&app, &c, "sam", PASSWORD).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/");
    assert_eq!(home(&app, &c).await, 200);
    app.clock.advance(Duration::minutes(29));
    assert_eq!(
        home(&app, &c).await,
        200,
        "29 minutes idle is still a live session"
    );
    app.clock.advance(Duration::minutes(30));
    assert_eq!(home(&app, &c).await, 303, "30 idle minutes end it");
    app.finish().await;
}

#[tokio::test]
async fn a_session_ends_twelve_hours_after_sign_in_however_active() {
    let app = with_user("sam").await;
    let c = client();
    sign_in(&app, &c, "sam", PASSWORD).await;
    for _ in 0..35 {
        app.clock.advance(Duration::minutes(20));
        assert_eq!(home(&app, &c).await, 200);
    }
    app.clock.advance(Duration::minutes(20)); // 12 hours since sign-in
    assert_eq!(home(&app, &c).await, 303);
    app.finish().await;
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let app = with_user("sam").await;
    let (phone, desk) = (client(), client());
    sign_in(&app, &phone, "sam", PASSWORD).await;
    sign_in(&app, &desk, "sam", PASSWORD).await;
    let page = desk
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // A common password, or one with the user name in it, is refused and changes nothing.
    for weak in ["password1234", "sam-and-his-long-password"] {
        let resp = desk
            .post(app.url("/account/password"))
            .form(&[
                ("csrf", csrf_in(&page).as_str()),
                ("current", PASSWORD),
                ("new", weak),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{weak}");
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("too easy to guess") || text.contains("must not contain the user name"),
            "{weak}: {text}"
        );
        assert_eq!(home(&app, &phone).await, 200, "{weak}: nothing changed");
    }
    let resp = desk
        .post(app.url("/account/password"))
        .form(&[
            ("csrf", csrf_in(&page).as_str()),
            ("current", PASSWORD),
            ("new", "another long password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("1 other sessions were signed out")
    );
    assert_eq!(
        home(&app, &desk).await,
        200,
        "the session that changed it goes on"
    );
    assert_eq!(home(&app, &phone).await, 303, "the other one is over");
    assert_eq!(
        sign_in(&app, &client(), "sam", "another long password")
            .await
            .status(),
        303
    );
    app.finish().await;
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_are_refused() {
    let app = with_user("sam").await;
    let c = client();
    // Sign-in itself needs the token of the page it came from.
    c.get(app.url("/login")).send().await.unwrap();
    let forged = c
        .post(app.url("/login"))
        .form(&[
            ("username", "sam"),
            ("password", PASSWORD),
            ("csrf", "guess"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    sign_in(&app, &c, "sam", PASSWORD).await;
    let resp = c
        .post(app.url("/logout"))
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        home(&app, &c).await,
        200,
        "a refused sign-out changes nothing"
    );
    let page = c
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = c
        .post(app.url("/logout"))
        .form(&[("csrf", csrf_in(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(home(&app, &c).await, 303);
    app.finish().await;
}

#[tokio::test]
async fn sign_in_is_throttled_without_locking_the_person_out_and_says_one_thing_for_bad_credentials()
 {
    for backend in backends() {
        let app = with_user_on(backend, "sam").await;
        let c = client();
        let wrong_password = sign_in(&app, &c, "sam", "not the password at all").await;
        assert_eq!(wrong_password.status(), 401);
        let a = wrong_password.text().await.unwrap();
        let unknown_user = sign_in(&app, &c, "nobody", PASSWORD).await;
        assert_eq!(unknown_user.status(), 401);
        let b = unknown_user.text().await.unwrap();
        let message = |page: &str| {
            page.split("role=\"alert\">")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            message(&a),
            message(&b),
            "one message for a wrong user or password"
        );
        for _ in 0..9 {
            sign_in(&app, &c, "sam", "still not the password").await;
        }
        // Ten failures from this address: even the right password is refused from here...
        assert_eq!(sign_in(&app, &c, "sam", PASSWORD).await.status(), 429);
        // ...but not from where Sam is: someone else's guessing does not lock Sam out.
        let home = from("127.0.0.2");
        assert_eq!(sign_in(&app, &home, "sam", PASSWORD).await.status(), 303);
        // A hundred failures on the account from many addresses: only an address Sam signed in
        // from before still works.
        for a in 3..13 {
            let guesser = from(&format!("127.0.0.{a}"));
            for _ in 0..10 {
                sign_in(&app, &guesser, "sam", "a guess at the password").await;
            }
        }
        assert_eq!(
            sign_in(&app, &from("127.0.0.50"), "sam", PASSWORD)
                .await
                .status(),
            429,
            "a new address, on an account under attack"
        );
        assert_eq!(
            sign_in(&app, &from("127.0.0.2"), "sam", PASSWORD)
                .await
                .status(),
            303,
            "the address Sam signed in from before"
        );
        app.clock.advance(Duration::minutes(61));
        assert_eq!(
            sign_in(&app, &c, "sam", PASSWORD).await.status(),
            303,
            "an hour later it works again"
        );
        // From one address, 300 failures across accounts stop further attempts.
        for i in 0..300 {
            sign_in(&app, &c, &format!("guess{i}"), "password guess number").await;
        }
        assert_eq!(sign_in(&app, &c, "sam", PASSWORD).await.status(), 429);
        app.finish().await;
    }
}

#[tokio::test]
async fn the_session_cookie_is_host_only_secure_http_only_and_strict() {
    let config = coproduce_web::WebConfig {
        secure_cookies: true,
        ..Default::default()
    };
    let app = TestApp::spawn_with(TestBackend::Sqlite, config).await;
    app.accounts
        .add_user(coproduce_app::accounts::NewUser {
            username: "sam".into(),
            roles: vec![coproduce_core::access::Role::Admin],
            fhir_ref: None,
            password: Some(PASSWORD.into()),
        })
        .await
        .unwrap();
    // The sign-in form's own cookie: Secure, HttpOnly, Strict, for /login only.
    let resp = reqwest::get(app.url("/login")).await.unwrap();
    let login = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/login"] {
        assert!(login.contains(part), "{part} in {login}");
    }
    let token = login
        .strip_prefix("coproduce_login=")
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string();
    let page = resp.text().await.unwrap();
    // Over plain HTTP in this test the browser would not send a Secure cookie: sent by hand.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/login"))
        .header("cookie", format!("coproduce_login={token}"))
        .form(&[
            ("username", "sam"),
            ("password", PASSWORD),
            ("csrf", csrf_in(&page).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-coproduce="))
        .expect("the session cookie")
        .to_string();
    for part in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(
        !cookie.contains("Domain="),
        "a __Host- cookie has no Domain: {cookie}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_second_factor_when_set_up_is_required() {
    for backend in backends() {
        let app = with_user_on(backend, "sam").await;
        let url = app.accounts.enable_totp("sam").await.unwrap();
        assert!(url.starts_with("otpauth://totp/coproduce:sam?"), "{url}");
        let secret = url
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_string();
        let totp = coproduce_app::accounts::totp(&secret, "sam").unwrap();
        let owned = app;
        let app = &owned;
        let now = || app.clock.now_unix();
        let sign_in_with = |code: String| async move {
            let c = client();
            let page = c
                .get(app.url("/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let csrf = csrf_in(&page);
            c.post(app.url("/login"))
                .form(&[
                    ("username", "sam"),
                    ("password", PASSWORD),
                    ("code", code.as_str()),
                    ("csrf", csrf.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(
            sign_in_with(String::new()).await,
            401,
            "the password alone is not enough"
        );
        assert_eq!(sign_in_with("000000".into()).await, 401);
        let code = totp.generate(now());
        assert_eq!(sign_in_with(code.clone()).await, 303);
        assert_eq!(
            sign_in_with(code.clone()).await,
            401,
            "a code is accepted once, even within its window"
        );
        app.clock.advance(Duration::seconds(30));
        assert_eq!(
            sign_in_with(totp.generate(now())).await,
            303,
            "the next step's code"
        );
        app.clock.advance(Duration::minutes(5));
        assert_eq!(
            sign_in_with(code).await,
            401,
            "an old code no longer counts"
        );
        app.accounts.disable_totp("sam").await.unwrap();
        assert_eq!(sign_in_with(String::new()).await, 303);
        owned.finish().await;
    }
}

#[tokio::test]
async fn sessions_are_stored_under_a_hash_of_their_id() {
    for backend in backends() {
        let app = with_user_on(backend, "sam").await;
        let c = client();
        let resp = sign_in(&app, &c, "sam", PASSWORD).await;
        assert_eq!(resp.status(), 303);
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("coproduce_session="))
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_string();
        assert!(
            app.db.store.load_session(&cookie).await.unwrap().is_none(),
            "the cookie's value is not a key in the database"
        );
        assert!(
            app.accounts.load_session(&cookie).await.unwrap().is_some(),
            "the session is found by its hash"
        );
        assert_eq!(home(&app, &c).await, 200, "and the browser is signed in");
        app.finish().await;
    }
}

#[tokio::test]
async fn showing_the_sign_in_form_stores_no_session() {
    let app = with_user("sam").await;
    for _ in 0..5 {
        let c = client();
        let resp = c.get(app.url("/login")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(app.db.store.session_count().await.unwrap(), 0);
    let c = client();
    assert_eq!(sign_in(&app, &c, "sam", PASSWORD).await.status(), 303);
    assert_eq!(app.db.store.session_count().await.unwrap(), 1);
    // The sign-in form's token is bound to the browser that was shown the form.
    let other = client();
    let page = c
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = other
        .post(app.url("/login"))
        .form(&[
            ("username", "sam"),
            ("password", PASSWORD),
            ("csrf", csrf_in(&page).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "a token from another browser");
    app.finish().await;
}
