//! The crash test: the real `coproduce serve` under concurrent writers (creates, updates with
//! If-Match, transaction Bundles through the API; readings through the patient's page form),
//! killed with SIGKILL at random moments, restarted, on SQLite
//! and PostgreSQL. Afterwards every acknowledged write reads back at the acknowledged version,
//! every transaction is all there or not at all, every acknowledged write of a Patient has its
//! audit row, and `coproduce audit verify` passes. A few rounds per backend here
//! (`COPRODUCE_CRASH_ROUNDS` for a long run). Then a SIGTERM under the same load: the server
//! finishes what is in flight and exits cleanly, and nothing it answered is lost.
//!
//! Meanwhile a further client files Tasks whose team deadline has already passed, with a
//! three-step escalation chain of no delay, so the servers' deadline watchers fire while they
//! are killed. Afterwards every level of every such Task fired exactly once: one claim, one
//! Task update and one notice each, never two.

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
    /// How many readings the page has saved so far: each kill also waits for one more.
    saved: tokio::sync::watch::Sender<usize>,
}

impl Ledger {
    fn answered(&self) {
        self.answered.send_modify(|n| *n += 1);
    }
}

/// Waits until `more` further writes have been answered (at most 30 s: the writers may all
/// have stopped).
async fn after_writes(ledger: &Arc<Mutex<Ledger>>, more: usize) {
    let answered = ledger.lock().unwrap().answered.subscribe();
    after(answered, more).await;
}

/// Waits until the page has saved one more reading (at most 30 s). Without it, a kill that
/// came before the page's first answer of a round left that round with no reading to check,
/// and a run whose every round did so had nothing to prove.
async fn after_a_reading(ledger: &Arc<Mutex<Ledger>>) {
    let saved = ledger.lock().unwrap().saved.subscribe();
    after(saved, 1).await;
}

async fn after(mut count: tokio::sync::watch::Receiver<usize>, more: usize) {
    let target = *count.borrow() + more;
    let _ = tokio::time::timeout(Duration::from_secs(30), count.wait_for(|n| *n >= target)).await;
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
    // From 2020, ten thousand minutes apart per round: always in the past, never repeated.
    let start = time::macros::datetime!(2020-01-01 00:00 UTC);
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
                l.saved.send_modify(|n| *n += 1);
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

/// The escalation chain of the late Tasks: nurse, social worker, clinic lead, each with no
/// time at all, so that one watcher pass fires all three levels one after the other.
fn no_delay_chain() -> coproduce_core::deadline::Escalation {
    use coproduce_core::access::Role;
    use coproduce_core::calendar::Within;
    use coproduce_core::deadline::{Escalation, Step};
    let step = |role| Step {
        role,
        within: Within::Minutes(0),
    };
    Escalation::new(vec![
        step(Role::Nurse),
        step(Role::SocialWorker),
        step(Role::ClinicLead),
    ])
    .expect("a chain")
}

/// Files Tasks whose first deadline passed five minutes ago until the server stops answering.
async fn deadline_writer(
    client: reqwest::Client,
    base: String,
    token: String,
    name: String,
    ledger: Arc<Mutex<Ledger>>,
) {
    let chain = no_delay_chain();
    for k in 0.. {
        let id = format!("{name}-{k}");
        let task = crate::server::late_task(&id, &chain);
        let sent = client
            .put(format!("{base}/fhir/Task/{id}"))
            .bearer_auth(&token)
            .header("content-type", "application/fhir+json")
            .body(task.to_string())
            .send()
            .await;
        let Ok(resp) = sent else { return };
        match resp.status().as_u16() {
            200 | 201 => {
                let mut l = ledger.lock().unwrap();
                l.acknowledged.push(("Task".into(), id, 1));
                l.answered();
            }
            s if s >= 500 => return,
            s => panic!(
                "a late Task refused with {s}: {}",
                resp.text().await.unwrap_or_default()
            ),
        }
    }
}

/// Every late Task on the database fired each level of its chain exactly once (one claim,
/// one Task version, one notice per level), after one last watcher pass in this process
/// catches up with what the killed servers left due. Returns how many levels the servers
/// fired and how many late Tasks there are.
async fn each_deadline_fired_once(db: &TestDb) -> (usize, usize) {
    use sqlx::{Connection, Row};
    let by_servers = db.store.misses_since(0).await.unwrap().len();
    let settings = coproduce_app::workflows::Settings::default();
    let api = coproduce_app::FhirApi::new(db.store.clone(), Arc::new(coproduce_core::SystemClock));
    coproduce_app::workflows::Workflows::new(api, &settings)
        .jobs(coproduce_app::jobs::Delivery::default())
        .expect("the background jobs")
        .run_once()
        .await
        .expect("a watcher pass");
    let mut claims: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for m in db.store.misses_since(0).await.unwrap() {
        claims.entry(m.task_id).or_default().push(m.level);
    }
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let tasks: Vec<(String, i64)> =
        sqlx::query("SELECT id, version_id FROM resources WHERE resource_type = 'Task'")
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let mut notices: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in sqlx::query("SELECT kind, params FROM notifications")
        .fetch_all(&mut c)
        .await
        .unwrap()
    {
        let params: Value = serde_json::from_str(&r.get::<String, _>(1)).unwrap();
        let task = params["task_id"].as_str().unwrap_or_default().to_string();
        notices.entry(task).or_default().push(r.get(0));
    }
    c.close().await.unwrap();
    for (id, version) in &tasks {
        let mut levels = claims.remove(id).unwrap_or_default();
        levels.sort();
        assert_eq!(levels, vec![0, 1, 2], "Task/{id}: the levels claimed");
        assert_eq!(*version, 3, "Task/{id}: created, then moved on twice");
        let mut kinds = notices.remove(id).unwrap_or_default();
        kinds.sort();
        assert_eq!(
            kinds,
            vec![
                "deadline-escalated",
                "deadline-escalated",
                "deadline-missed"
            ],
            "Task/{id}: the notices"
        );
    }
    assert!(claims.is_empty(), "claims without a Task: {claims:?}");
    assert!(notices.is_empty(), "notices without a Task: {notices:?}");
    (by_servers, tasks.len())
}

/// The API's clients for one server: six writers and the filer of late Tasks, named from
/// `prefix`.
fn api_writers(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    prefix: &str,
    ledger: &Arc<Mutex<Ledger>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut writers: Vec<_> = (0..6)
        .map(|w| {
            tokio::spawn(writer(
                client.clone(),
                base.to_string(),
                token.to_string(),
                format!("{prefix}w{w}"),
                ledger.clone(),
            ))
        })
        .collect();
    writers.push(tokio::spawn(deadline_writer(
        client.clone(),
        base.to_string(),
        token.to_string(),
        format!("{prefix}late"),
        ledger.clone(),
    )));
    writers
}

/// A generator of pauses: the same sequence for the same seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

async fn rounds(backend: TestBackend, rounds: usize) -> Outcome {
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
        let mut writers = api_writers(&client, &base, &token, &format!("r{round}"), &ledger);
        writers.push(tokio::spawn(form_writer(
            browser.clone(),
            base.clone(),
            csrf.clone(),
            round as i64 * 10_000,
            ledger.clone(),
        )));
        // Killed at a moment that varies from round to round: after 5 to 84 more answers,
        // and once the page has saved a reading this round.
        let (writes, reading) = (
            after_writes(&ledger, 5 + (next(&mut seed) % 80) as usize),
            after_a_reading(&ledger),
        );
        tokio::join!(writes, reading);
        server.child.kill().await.expect("SIGKILL the server");
        for w in writers {
            w.await.expect("a writer");
        }
    }

    // Stopped politely under the same load (SIGTERM, as a service manager does): it
    // finishes what is in flight and exits cleanly.
    let mut server = start(&db.url, &[]).await;
    let base = server.base.clone();
    let writers = api_writers(&client, &base, &token, "term-", &ledger);
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
    let (fired, late) = each_deadline_fired_once(&db).await;
    assert!(late > 0, "no late Task was filed");
    assert!(fired > 0, "the servers' watchers fired nothing");
    let (ok, out) = crate::coproduce(&db.url, &["audit", "verify"]);
    assert!(ok, "the audit chain: {out}");
    let acknowledged = l.acknowledged.len();
    let readings = l.readings.len();
    let transactions = l.transactions.len();
    db.drop_db().await;
    Outcome {
        rounds,
        acknowledged,
        transactions,
        readings,
        late,
        fired,
    }
}

/// What one backend's crash test did.
struct Outcome {
    rounds: usize,
    acknowledged: usize,
    transactions: usize,
    readings: usize,
    /// Late Tasks filed, and the deadline levels the servers fired before the last pass.
    late: usize,
    fired: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_on_every_backend() {
    let n: usize = std::env::var("COPRODUCE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for backend in backends() {
        let o = rounds(backend, n).await;
        assert!(o.acknowledged > 0, "the API writers wrote nothing");
        assert!(o.readings > 0, "the page's writer saved nothing");
        println!(
            "crash test on {backend:?}: {} kill -9 rounds, {} acknowledged API writes, \
             {} readings saved through the page, {} transactions tried, {} late Tasks whose \
             deadlines the servers fired {} times while being killed, then SIGTERM under load \
             (clean exit); 0 lost, none half applied, every deadline level fired exactly once, \
             audit chain verified",
            o.rounds, o.acknowledged, o.readings, o.transactions, o.late, o.fired
        );
    }
}
