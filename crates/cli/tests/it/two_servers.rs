//! Two `coproduce serve` processes on one PostgreSQL database, as behind one address: a
//! sign-in on one is valid on the other and a sign-out on either ends it on both, failed
//! sign-ins on both count towards one throttle, and a missed deadline is escalated once
//! although both servers' watchers pass over it.

use crate::server::{add_user, signed_in, start, system_token};
use coproduce_core::access::Role;
use coproduce_core::calendar::Within;
use coproduce_core::deadline::{Escalation, Step};
use coproduce_testkit::{TestBackend, TestDb, WebClient};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_sessions_and_throttling_and_fire_each_deadline_once() {
    if std::env::var_os(coproduce_testkit::POSTGRES_ENV).is_none() {
        println!(
            "SKIPPED two servers on one database: set {}",
            coproduce_testkit::POSTGRES_ENV
        );
        return;
    }
    let db = TestDb::new(TestBackend::Postgres).await;
    add_user(&db.url, &["--username", "admin1", "--role", "admin"]);
    let token = system_token(&db.url);

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookies = [("COPRODUCE_INSECURE_COOKIES", "true")];
    let mut servers = [
        start(&db.url, &cookies).await,
        start(&db.url, &cookies).await,
    ];
    let (a, b) = (servers[0].base.clone(), servers[1].base.clone());

    // Signed in on A (cookies go by host, so the browser sends the same one to B).
    let mut on_a = signed_in(&client, &a, "admin1").await;
    let mut on_b = WebClient {
        client: client.clone(),
        base: b.clone(),
        csrf: String::new(),
    };
    let (status, page) = on_b.get("/").await;
    assert_eq!(status, 200, "the session from A is valid on B: {page}");
    assert!(page.contains("Accounts and tokens"));
    // Signed out on B: gone on A too.
    let resp = on_b.post("/logout", &[]).await;
    assert_eq!(resp.status(), 303);
    let (status, _) = on_a.get("/").await;
    assert_eq!(status, 303, "signed out everywhere");

    // A team deadline already missed: both watchers pass over it every second.
    let chain = Escalation::new(vec![
        Step {
            role: Role::Nurse,
            within: Within::Hours(1),
        },
        Step {
            role: Role::ClinicLead,
            within: Within::Hours(1),
        },
    ])
    .unwrap();
    let task = crate::server::late_task("late", &chain);
    let resp = client
        .put(format!("{a}/fhir/Task/late"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(task.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    // One of the two watchers logs the escalation (the other finds it claimed).
    let [first, second] = &mut servers;
    let seen = tokio::select! {
        seen = first.logged("escalated: 1", Duration::from_secs(30)) => seen,
        seen = second.logged("escalated: 1", Duration::from_secs(30)) => seen,
    };
    assert!(seen, "a watcher escalated the missed deadline");
    let claimed = db.store.misses_since(0).await.unwrap();
    // Claimed once, by whichever watcher came first (the other finds the `(task, level)` key
    // taken), and the Task moved one step.
    assert_eq!(
        claimed
            .iter()
            .map(|m| (m.task_id.as_str(), m.level))
            .collect::<Vec<_>>(),
        vec![("late", 0)],
        "each deadline fires once"
    );
    let t: serde_json::Value = client
        .get(format!("{b}/fhir/Task/late"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["performerType"][0]["coding"][0]["code"], "clinic-lead");

    // Sign-in throttling is counted in the database: five failures from this address on each
    // server (ten in all, the limit), and even the right password is refused from here on
    // both. Counted per server, each would have seen five and let it in.
    for base in [&a, &b] {
        for _ in 0..5 {
            assert_eq!(
                sign_in_status(base, "admin1", "not the password").await,
                401
            );
        }
    }
    for base in [&a, &b] {
        assert_eq!(
            sign_in_status(base, "admin1", coproduce_testkit::PASSWORD).await,
            429,
            "throttled on {base}"
        );
    }
    drop(servers);
    db.drop_db().await;
}

/// What signing in on `base` with this password answers (a new browser each time).
async fn sign_in_status(base: &str, username: &str, password: &str) -> u16 {
    let mut page = WebClient {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: base.to_string(),
        csrf: String::new(),
    };
    page.get("/login").await;
    page.post("/login", &[("username", username), ("password", password)])
        .await
        .status()
        .as_u16()
}
