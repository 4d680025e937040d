//! The crash test: the real `coproduce serve` under concurrent writers (creates, updates with
//! If-Match, transaction Bundles through the API; readings through the patient's page form),
//! killed with SIGKILL at random moments, restarted, on SQLite
//! and PostgreSQL. Afterwards every acknowledged write reads back at the acknowledged version,
//! every transaction is all there or not at all, every acknowledged write of a Patient has its
//! audit row, and `coproduce audit verify` passes. A few rounds per backend here
//! (`COPRODUCE_CRASH_ROUNDS` for a long run). Then a SIGTERM under the same load: the server
//! finishes what is in flight and exits cleanly, and nothing it answered is lost.

use crate::server::{add_user, signed_in, start, system_token};
use coproduce_testkit::{TestBackend, TestDb, backends};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the clients were told was written, and which transactions they tried.
#[derive(Default)]
struct Ledger {
    /// (type, id, version) answered 200/201.
    acknowledged: Vec<(String, String, i64)>,
    /// (transaction key, acknowledged).
    transactions: Vec<(String, bool)>,
    /// When each reading the page said was saved was taken (unique per reading).
    readings: Vec<String>,
    /// How many writes have been answered so far: the kills wait on it.
    answered: tokio::sync::watch::Sender<usize>,
}

impl Ledger {
    fn answered(&self) {
        self.answered.send_modify(|n| *n += 1);
    }
}

/// Waits until `more` further writes have been answered (at most 30 s: the writers may all
/// have stopped).
async fn after_writes(ledger: &Arc<Mutex<Ledger>>, more: usize) {
    let mut answered = ledger.lock().unwrap().answered.subscribe();
    let target = *answered.borrow() + more;
    let _ =
        tokio::time::timeout(Duration::from_secs(30), answered.wait_for(|n| *n >= target)).await;
}

/// A patient entering readings on the page (a form with its CSRF token) until the server
/// stops answering; each reading's time is unique, so it can be found afterwards.
async fn form_writer(
    browser: reqwest::Client,
    base: String,
    csrf: String,
    first: i64,
    ledger: Arc<Mutex<Ledger>>,
) {
    let start = time::macros::datetime!(2026-01-01 00:00 UTC);
    for n in first.. {
        let t = start + time::Duration::minutes(n);
        let at = format!(
            "{}-{:02}-{:02}T{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        );
        let sent = browser
            .post(format!("{base}/patients/p1/readings"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("measure", "weight"),
                ("value", "70"),
                ("unit", "kg"),
                ("at", &at),
            ])
            .send()
            .await;
        let Ok(resp) = sent else { return };
        match resp.status().as_u16() {
            303 => {
                let mut l = ledger.lock().unwrap();
                l.readings.push(at);
                l.answered();
            }
            s if s >= 500 => return,
            s => panic!(
                "a reading refused with {s}: {}",
                resp.text().await.unwrap_or_default()
            ),
        }
    }
}

fn version(v: &Value) -> Option<i64> {
    v["meta"]["versionId"].as_str()?.parse().ok()
}

/// One writer until the server stops answering: a create, an update of its own latest
/// record with If-Match, a transaction of a Patient and an Observation about them.
async fn writer(
    client: reqwest::Client,
    base: String,
    token: String,
    name: String,
    ledger: Arc<Mutex<Ledger>>,
) {
    let mut mine: Option<(String, i64)> = None;
    for k in 0.. {
        let sent = match k % 3 {
            0 => {
                let body = json!({"resourceType": "Patient", "name": [{"family": "Crash", "given": [format!("{name}-{k}")]}]});
                client
                    .post(format!("{base}/fhir/Patient"))
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .body(body.to_string())
                    .send()
                    .await
            }
            1 => {
                let Some((id, v)) = mine.clone() else {
                    continue;
                };
                let body = json!({"resourceType": "Patient", "id": id, "name": [{"family": "Crash", "given": [format!("{name}-{k}-updated")]}]});
                client
                    .put(format!("{base}/fhir/Patient/{id}"))
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .header("if-match", format!("W/\"{v}\""))
                    .body(body.to_string())
                    .send()
                    .await
            }
            _ => {
                let key = format!("{name}-{k}");
                ledger
                    .lock()
                    .unwrap()
                    .transactions
                    .push((key.clone(), false));
                let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"resource": {"resourceType": "Patient", "id": format!("{key}-p")},
                     "request": {"method": "PUT", "url": format!("Patient/{key}-p")}},
                    {"resource": {"resourceType": "Observation", "id": format!("{key}-o"), "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "subject": {"reference": format!("Patient/{key}-p")},
                        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}},
                     "request": {"method": "PUT", "url": format!("Observation/{key}-o")}},
                ]});
                client
                    .post(format!("{base}/fhir"))
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .body(bundle.to_string())
                    .send()
                    .await
            }
        };
        let Ok(resp) = sent else { return };
        let status = resp.status().as_u16();
        let Ok(body) = resp.json::<Value>().await else {
            return;
        };
        let mut l = ledger.lock().unwrap();
        match (k % 3, status) {
            (0 | 1, 200 | 201) => {
                let (Some(id), Some(v)) = (body["id"].as_str(), version(&body)) else {
                    panic!("a write acknowledged without its id and version: {body}");
                };
                l.acknowledged.push(("Patient".into(), id.to_string(), v));
                l.answered();
                mine = Some((id.to_string(), v));
            }
            (2, 200) => {
                let key = format!("{name}-{k}");
                if let Some(t) = l.transactions.iter_mut().rev().find(|t| t.0 == key) {
                    t.1 = true;
                }
                l.answered();
                for e in body["entry"].as_array().into_iter().flatten() {
                    let location = e["response"]["location"].as_str().unwrap_or_default();
                    let mut parts = location.split('/');
                    if let (Some(rt), Some(id), Some(_), Some(v)) =
                        (parts.next(), parts.next(), parts.next(), parts.next())
                    {
                        l.acknowledged.push((
                            rt.to_string(),
                            id.to_string(),
                            v.parse().unwrap_or(0),
                        ));
                    }
                }
            }
            (_, s) if s >= 500 => return,
            (_, s) => panic!("a write refused with {s}: {body}"),
        }
    }
}

/// A generator of pauses: the same sequence for the same seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

async fn rounds(backend: TestBackend, rounds: usize) -> (usize, usize, usize, usize) {
    let db = TestDb::new(backend).await;
    let token = system_token(&db.url);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ rounds as u64;
    // Ana, whose readings the page takes; her browser keeps its cookie across restarts
    // (sessions live in the database).
    add_user(
        &db.url,
        &[
            "--username",
            "ana",
            "--role",
            "patient",
            "--patient",
            "Patient/p1",
        ],
    );
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut csrf = String::new();
    for round in 0..rounds {
        let mut server = start(&db.url, &[]).await;
        let base = server.base.clone();
        if round == 0 {
            let resp = client
                .put(format!("{base}/fhir/Patient/p1"))
                .bearer_auth(&token)
                .header("content-type", "application/fhir+json")
                .body(
                    json!({"resourceType": "Patient", "id": "p1", "name": [{"text": "Ana Silva"}]})
                        .to_string(),
                )
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
            let mut page = signed_in(&browser, &base, "ana").await;
            page.get("/patients/p1").await;
            csrf = page.csrf.clone();
        }
        let mut writers: Vec<_> = (0..6)
            .map(|w| {
                tokio::spawn(writer(
                    client.clone(),
                    base.clone(),
                    token.clone(),
                    format!("r{round}w{w}"),
                    ledger.clone(),
                ))
            })
            .collect();
        writers.push(tokio::spawn(form_writer(
            browser.clone(),
            base.clone(),
            csrf.clone(),
            round as i64 * 100_000,
            ledger.clone(),
        )));
        // Killed at a moment that varies from round to round: after 5 to 84 more answers.
        after_writes(&ledger, 5 + (next(&mut seed) % 80) as usize).await;
        server.child.kill().await.expect("SIGKILL the server");
        for w in writers {
            w.await.expect("a writer");
        }
    }

    // Stopped politely under the same load (SIGTERM, as a service manager does): it
    // finishes what is in flight and exits cleanly.
    let mut server = start(&db.url, &[]).await;
    let base = server.base.clone();
    let writers: Vec<_> = (0..6)
        .map(|w| {
            tokio::spawn(writer(
                client.clone(),
                base.clone(),
                token.clone(),
                format!("term-w{w}"),
                ledger.clone(),
            ))
        })
        .collect();
    after_writes(&ledger, 40).await;
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().expect("its pid").to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(term.success());
    let status = tokio::time::timeout(Duration::from_secs(40), server.child.wait())
        .await
        .expect("the server stopped within 40 s of SIGTERM (30 s grace)")
        .expect("its exit status");
    assert!(status.success(), "a clean exit after SIGTERM: {status}");
    for w in writers {
        w.await.expect("a writer");
    }

    // Restarted once more: everything acknowledged is there, transactions are whole.
    let server = start(&db.url, &[]).await;
    let base = server.base.clone();
    let l = std::mem::take(&mut *ledger.lock().unwrap());
    let read = |path: String| {
        let client = client.clone();
        let token = token.clone();
        async move {
            client
                .get(path)
                .bearer_auth(token)
                .send()
                .await
                .expect("a read")
                .status()
                .as_u16()
        }
    };
    let mut lost = Vec::new();
    for (rt, id, v) in &l.acknowledged {
        if read(format!("{base}/fhir/{rt}/{id}/_history/{v}")).await != 200 {
            lost.push(format!("{rt}/{id} version {v}"));
        }
    }
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    for (key, acknowledged) in &l.transactions {
        let p = read(format!("{base}/fhir/Patient/{key}-p")).await;
        let o = read(format!("{base}/fhir/Observation/{key}-o")).await;
        assert_eq!(p, o, "transaction {key} half applied");
        if *acknowledged {
            assert_eq!(p, 200, "transaction {key} acknowledged and lost");
        }
    }
    // Every reading the page said was saved is on Ana's record.
    let mut taken = std::collections::HashSet::new();
    for offset in (0..).step_by(1000) {
        let page: Value = client
            .get(format!(
                "{base}/fhir/Observation?patient=Patient/p1&_count=1000&_offset={offset}"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = page["entry"].as_array().cloned().unwrap_or_default();
        for e in &entries {
            if let Some(t) = e["resource"]["effectiveDateTime"].as_str() {
                taken.insert(t.chars().take(16).collect::<String>());
            }
        }
        if entries.len() < 1000 {
            break;
        }
    }
    let missing: Vec<&String> = l.readings.iter().filter(|r| !taken.contains(*r)).collect();
    assert!(
        missing.is_empty(),
        "readings the page saved and lost: {missing:?}"
    );
    // Every acknowledged write of a Patient has its audit row.
    let mut written: std::collections::BTreeMap<&str, usize> = Default::default();
    for (rt, id, _) in &l.acknowledged {
        if rt == "Patient" {
            *written.entry(id).or_default() += 1;
        }
    }
    for (id, n) in &written {
        let (_, rows) = db.store.audit_for_patient(id, 1000, 0).await.unwrap();
        let writes = rows
            .iter()
            .filter(|r| {
                r.entry.resource_id.as_deref() == Some(*id)
                    && matches!(r.entry.action.as_str(), "create" | "update")
                    && r.entry.outcome == "allowed"
            })
            .count();
        assert!(
            writes >= *n,
            "Patient/{id}: {n} writes acknowledged, {writes} audited"
        );
    }
    drop(server);
    let (ok, out) = crate::coproduce(&db.url, &["audit", "verify"]);
    assert!(ok, "the audit chain: {out}");
    let acknowledged = l.acknowledged.len();
    let readings = l.readings.len();
    let transactions = l.transactions.len();
    db.drop_db().await;
    (rounds, acknowledged, transactions, readings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_on_every_backend() {
    let n: usize = std::env::var("COPRODUCE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for backend in backends() {
        let (rounds, acknowledged, transactions, readings) = rounds(backend, n).await;
        assert!(acknowledged > 0, "the API writers wrote nothing");
        assert!(readings > 0, "the page's writer saved nothing");
        println!(
            "crash test on {backend:?}: {rounds} kill -9 rounds, {acknowledged} acknowledged API writes, \
             {readings} readings saved through the page, \
             {transactions} transactions tried, then SIGTERM under load (clean exit); 0 lost, none half \
             applied, audit chain verified"
        );
    }
}
