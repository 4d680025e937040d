//! What no client can take from the others: the server's connections and a request's time.
//! Bounded tests on loopback: a server of 8 connections taken by silent and idle clients
//! answers the next one 503 at once and lets the silent ones go after its header time-out;
//! a request held up past the request time-out (a write waiting on a database lock the test
//! holds) is answered 503 `timeout` on the API and an error page in the browser's language,
//! and is not written.

use coproduce_testkit::{TestApp, TestBackend};
use sqlx::Connection;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Everything the server sends on a connection until it closes it (at most 20 s).
async fn until_closed(conn: &mut tokio::net::TcpStream) -> String {
    crate::security::closed_within_20_s(conn, "the client to speak").await
}

#[tokio::test]
async fn connections_over_the_limit_get_503_and_silent_clients_are_let_go() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        coproduce_web::WebConfig {
            secure_cookies: false,
            header_timeout: Duration::from_secs(1),
            max_connections: 8,
            ..Default::default()
        },
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let get = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    // Eight clients take every connection: four say nothing, four asked once and stay idle.
    let mut held = Vec::new();
    for n in 0..8 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if n % 2 == 1 {
            c.write_all(get.as_bytes()).await.unwrap();
            let mut first = [0u8; 12];
            c.read_exact(&mut first).await.unwrap();
            assert_eq!(&first, b"HTTP/1.1 200");
        }
        held.push(c);
    }
    // The ninth is answered at once: 503, try again in a second.
    let mut ninth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    ninth.write_all(get.as_bytes()).await.unwrap();
    let answer = until_closed(&mut ninth).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"transient\""), "{answer}");
    // The silent and the idle are let go after the header time-out...
    for c in &mut held {
        until_closed(c).await;
    }
    // ...and the server serves again.
    let resp = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    app.finish().await;
}

#[tokio::test]
async fn a_request_held_up_past_the_time_out_is_stopped_with_a_503_and_not_written() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        coproduce_web::WebConfig {
            secure_cookies: false,
            request_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await;
    app.seed_care_team("es").await;
    let mut ana = app.sign_in("ana").await;
    let (_, home) = ana.get("/patients/p1").await;
    assert!(home.contains("<html"), "{home}");
    // Another process holds the database's write lock: the server's write waits on it.
    let mut lock = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    let resp = app
        .put_json(
            "/fhir/Patient/held",
            serde_json::json!({"resourceType": "Patient", "id": "held"}).to_string(),
            None,
        )
        .await;
    let status = resp.status();
    let outcome: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 503, "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "timeout", "{outcome}");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("longer than 2 s"),
        "{outcome}"
    );
    // A page's write: the error page, in the browser's language.
    let resp = ana
        .client
        .post(app.url("/patients/p1/readings"))
        .header("accept-language", "es")
        .form(&[
            ("csrf", ana.csrf.as_str()),
            ("measure", "weight"),
            ("value", "70"),
            ("unit", "kg"),
            ("at", "2026-11-27T09:00"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let page = resp.text().await.unwrap();
    assert!(page.contains("tardó demasiado"), "{page}");
    // The lock goes: nothing was written, and the server writes again.
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();
    assert_eq!(app.get("/fhir/Patient/held").await.status(), 404);
    let readings: serde_json::Value = app
        .get("/fhir/Observation?patient=p1&date=2026-11-27T09:00:00Z&_summary=count")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(readings["total"], 0, "{readings}");
    let resp = app
        .put_json(
            "/fhir/Patient/held",
            serde_json::json!({"resourceType": "Patient", "id": "held"}).to_string(),
            None,
        )
        .await;
    assert_eq!(resp.status(), 201);
    app.finish().await;
}
