//! The rescue pack through the store: the lifecycle as FHIR, the deadline watcher across a
//! restart, email and webhook delivery, and export and import of episodes.

use crate::coproduce;
use coproduce_app::FhirApi;
use coproduce_app::accounts::Caller;
use coproduce_app::deadlines::Watcher;
use coproduce_app::notify::{Notifier, webhook_signature};
use coproduce_app::rescue::Rescue;
use coproduce_app::rescue::protocol::ProtocolDef;
use coproduce_core::calendar::BusinessCalendar;
use coproduce_core::rescue::{CheckIn, Event, Item, Stage, TaskKind};
use coproduce_core::{Clock, FakeClock};
use coproduce_store::Store;
use coproduce_testkit::{TestApp, TestBackend, backends};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use time::macros::{date, datetime};

pub(crate) async fn caller(app: &TestApp, username: &str) -> Caller {
    let user = app
        .accounts
        .users()
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.username == username)
        .expect("the user");
    app.accounts.caller_for_user(&user).await.expect("a caller")
}

/// The application's rescue-pack services over a store, as a server builds them at start.
pub(crate) fn services(store: &Store, clock: &Arc<FakeClock>, webhook: bool) -> (Rescue, Watcher) {
    let clock: Arc<dyn Clock> = clock.clone();
    let api = FhirApi::new(store.clone(), clock.clone());
    let notifier = Notifier::new(api.clone(), clock.clone(), webhook);
    let rescue = Rescue::new(
        api.clone(),
        clock.clone(),
        ProtocolDef::copd(),
        BusinessCalendar::default(),
        notifier,
    );
    (rescue.clone(), rescue.watcher())
}

fn items(expires: time::Date) -> Vec<Item> {
    ["prednisone", "antibiotic"]
        .map(|d| Item {
            drug: d.into(),
            expires,
        })
        .to_vec()
}

/// Eligibility, teach-back and dispensing on Monday 2 November 2026; returns the pack's id.
pub(crate) async fn dispensed(app: &TestApp, rescue: &Rescue, expires: time::Date) -> String {
    app.clock.set(datetime!(2026-11-02 10:00 UTC));
    let dr = caller(app, "dr.okafor").await;
    let rph = caller(app, "rph.ali").await;
    let pack = rescue
        .record(
            &dr,
            "p1",
            None,
            Event::Eligible {
                reason: "Two exacerbations in the past year".into(),
            },
        )
        .await
        .expect("eligibility");
    rescue
        .record(&rph, "p1", Some(&pack), Event::TaughtBack)
        .await
        .expect("teach-back");
    rescue
        .record(
            &rph,
            "p1",
            Some(&pack),
            Event::Dispensed {
                items: items(expires),
            },
        )
        .await
        .expect("dispensed");
    pack
}

async fn start(app: &TestApp, rescue: &Rescue, pack: &str) {
    let ana = caller(app, "ana").await;
    let now = app.clock.now();
    rescue
        .record(
            &ana,
            "p1",
            Some(pack),
            Event::Started {
                symptoms: vec!["more-breathless".into(), "sputum-colour".into()],
                since: now - time::Duration::hours(30),
                taken: vec!["prednisone".into(), "antibiotic".into()],
            },
        )
        .await
        .expect("the start");
}

/// A care team whose patient p1 was given a pack on 2 November 2026 and started it on 27
/// November at 18:00: the app, its rescue service and the pack's id.
async fn a_started_pack() -> (TestApp, Rescue, String) {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let (rescue, _) = services(&app.db.store, &app.clock, false);
    let pack = dispensed(&app, &rescue, date!(2027 - 06 - 30)).await;
    app.clock.set(datetime!(2026-11-27 18:00 UTC));
    start(&app, &rescue, &pack).await;
    (app, rescue, pack)
}

async fn inbox(store: &Store, recipient: &str, kind: &str) -> usize {
    store
        .notifications_for(&[recipient.to_string()], None, 1000)
        .await
        .expect("notifications")
        .iter()
        .filter(|n| n.kind == kind)
        .count()
}

#[tokio::test]
async fn a_missed_contact_escalates_exactly_once_across_a_restart() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("ht").await;
        let (rescue, watcher) = services(&app.db.store, &app.clock, false);
        let pack = dispensed(&app, &rescue, date!(2027 - 06 - 30)).await;
        // Friday 27 November 2026, 18:00.
        app.clock.set(datetime!(2026-11-27 18:00 UTC));
        start(&app, &rescue, &pack).await;
        let ana = caller(&app, "ana").await;
        let view = rescue
            .current(&ana, "p1")
            .await
            .expect("the pack")
            .expect("a pack");
        assert_eq!(view.stage, Stage::Started);
        let contact = view.deadline(TaskKind::Contact).expect("a contact task");
        assert_eq!(contact.deadline.due, datetime!(2026-11-30 17:00 UTC));
        assert_eq!(contact.deadline.role.as_str(), "nurse");
        // Clara, whose grant covers Ana's plan, is told too; Ana started it herself.
        assert_eq!(
            inbox(&app.db.store, "RelatedPerson/rp1", "rescue-pack-started").await,
            1,
            "{backend:?}"
        );
        let rows = app
            .db
            .store
            .notifications_for(&["RelatedPerson/rp1".to_string()], None, 10)
            .await
            .unwrap();
        let (_, text) = coproduce_app::notify::render(
            &rows[0],
            std::sync::Arc::new(coproduce_core::calendar::BusinessCalendar::default()),
        );
        assert!(
            text.starts_with("Ana Silva has started their rescue pack"),
            "{text}"
        );
        assert_eq!(
            inbox(&app.db.store, "role:nurse", "rescue-pack-started").await,
            1
        );

        // Not yet due on Monday afternoon.
        app.clock.set(datetime!(2026-11-30 16:59 UTC));
        assert_eq!(watcher.tick().await.expect("a pass").escalated, 0);

        // Past Monday's close, a server that has just started fires it; so do two more
        // restarts, which must find nothing left to do.
        app.clock.set(datetime!(2026-11-30 17:01 UTC));
        let mut fired = 0;
        for _ in 0..3 {
            let store = Store::open(&app.db.url).await.expect("the database again");
            let (_, restarted) = services(&store, &app.clock, false);
            fired += restarted.tick().await.expect("a pass").escalated;
            store.close().await;
        }
        assert_eq!(fired, 1, "the escalation fires exactly once");
        assert_eq!(app.db.store.misses_since(0).await.expect("misses").len(), 1);
        // The team sees its own patients' misses, and another team none of them.
        let nurse = caller(&app, "nurse.lee").await;
        assert_eq!(rescue.missed_since(&nurse, 0).await.expect("a count"), 1);
        let elsewhere = Caller {
            actor: coproduce_core::access::Actor::session(
                coproduce_core::access::Who::TeamMember {
                    role: coproduce_core::access::Role::RapidResponse,
                    panel: ["p2".to_string()].into(),
                    break_glass: Vec::new(),
                },
            ),
            label: "test:other-unit".into(),
            fhir_ref: None,
            user_id: None,
        };
        assert_eq!(
            rescue.missed_since(&elsewhere, 0).await.expect("a count"),
            0
        );
        let view = rescue
            .current(&ana, "p1")
            .await
            .expect("the pack")
            .expect("a pack");
        let contact = view.deadline(TaskKind::Contact).expect("a contact task");
        assert_eq!(contact.deadline.level, 1);
        assert_eq!(contact.deadline.role.as_str(), "clinician");
        assert_eq!(contact.deadline.due, datetime!(2026-12-01 12:00 UTC));
        assert_eq!(
            inbox(&app.db.store, "role:clinician", "deadline-escalated").await,
            1
        );

        // The nurse reaches Ana: the task closes, and it never fires again.
        let nurse = caller(&app, "nurse.lee").await;
        rescue
            .record(
                &nurse,
                "p1",
                Some(&pack),
                Event::Contacted {
                    note: "Rann li; li pran tou de.".into(),
                },
            )
            .await
            .expect("the contact");
        assert_eq!(
            inbox(&app.db.store, "Patient/p1", "rescue-pack-contacted").await,
            1
        );
        app.clock.set(datetime!(2026-12-03 12:00 UTC));
        let pass = watcher.tick().await.expect("a pass");
        // Only the check-in (due Monday 18:00) is missed now; the contact stays done.
        assert_eq!(pass.escalated, 1);
        let misses = app.db.store.misses_since(0).await.expect("misses");
        assert_eq!(
            misses
                .iter()
                .filter(|m| m.task_id == contact.task_id)
                .count(),
            1
        );

        // A "not better" check-in tells Ana and the team, with a same-day task.
        rescue
            .record(
                &ana,
                "p1",
                Some(&pack),
                Event::CheckedIn {
                    answer: CheckIn::Worse,
                },
            )
            .await
            .expect("the check-in");
        assert_eq!(
            inbox(&app.db.store, "Patient/p1", "rescue-pack-not-better").await,
            1
        );
        assert_eq!(
            inbox(&app.db.store, "role:clinician", "rescue-pack-not-better").await,
            1
        );
        let view = rescue
            .current(&ana, "p1")
            .await
            .expect("ok")
            .expect("a pack");
        assert!(view.deadline(TaskKind::NotBetter).is_some_and(|d| d.open));
        app.finish().await;
    }
}

#[tokio::test]
async fn an_expired_pack_becomes_a_team_task_and_a_start_with_it_is_accepted() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let (rescue, watcher) = services(&app.db.store, &app.clock, false);
    let pack = dispensed(&app, &rescue, date!(2026 - 12 - 31)).await;
    app.clock.set(datetime!(2027-01-04 09:00 UTC));
    let pass = watcher.tick().await.expect("a pass");
    assert_eq!(pass.expired, 1);
    let dr = caller(&app, "dr.okafor").await;
    let view = rescue
        .current(&dr, "p1")
        .await
        .expect("ok")
        .expect("a pack");
    assert_eq!(view.stage, Stage::Expired);
    assert!(view.deadline(TaskKind::Replacement).is_some_and(|d| d.open));
    assert_eq!(
        inbox(&app.db.store, "role:pharmacist", "rescue-pack-expired").await,
        1
    );
    // The next pass does not expire it again.
    assert_eq!(watcher.tick().await.expect("a pass").expired, 0);
    // The team's episodes page shows the pack to replace, and no check-in on a pack never
    // started.
    let mut nurse = app.sign_in("nurse.lee").await;
    let (status, page) = nurse.get("/team/rescue-packs").await;
    assert_eq!(status, 200);
    let row = page
        .split("id=\"episode-p1\"")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("Ana's episode");
    assert!(row.contains("Replace the pack"), "{row}");
    assert!(
        !row.contains("name=\"event\" value=\"checked-in\""),
        "{row}"
    );
    start(&app, &rescue, &pack).await;
    let view = rescue
        .current(&dr, "p1")
        .await
        .expect("ok")
        .expect("a pack");
    assert_eq!(view.stage, Stage::Started);
    assert_eq!(
        view.deadlines
            .iter()
            .filter(|d| d.kind == TaskKind::Replacement)
            .count(),
        1,
        "one replacement task, not two"
    );
    assert_eq!(
        inbox(&app.db.store, "Patient/p1", "rescue-pack-started-expired").await,
        1
    );
    // The pharmacist issues the new pack before the 14-day outcome; the episode on the old
    // pack stays open and the nurse records its outcome from the page.
    let rph = caller(&app, "rph.ali").await;
    rescue
        .record(
            &rph,
            "p1",
            Some(&pack),
            Event::Replaced {
                items: items(date!(2028 - 01 - 31)),
            },
        )
        .await
        .expect("the replacement");
    let active = rescue.active(&dr, "p1").await.expect("ok").expect("a pack");
    assert_eq!(
        (active.id.as_str(), active.stage),
        (pack.as_str(), Stage::Started)
    );
    let mut nurse = app.sign_in("nurse.lee").await;
    let (_, page) = nurse.get("/patients/p1/rescue-pack").await;
    assert!(page.contains("id=\"outcome\""), "the outcome form: {page}");
    let resp = nurse
        .post(
            "/patients/p1/rescue-pack/record",
            &[("event", "outcome"), ("outcome", "recovered-at-home")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let packs = rescue.packs(&dr, "p1").await.expect("packs");
    let old = packs.iter().find(|p| p.id == pack).expect("the old pack");
    assert_eq!(old.stage, Stage::Replaced);
    assert!(old.pack.outcome().is_some());
    let now_in_hand = rescue.active(&dr, "p1").await.expect("ok").expect("a pack");
    assert_ne!(now_in_hand.id, pack);
    assert_eq!(now_in_hand.stage, Stage::Ready);
    app.finish().await;
}

/// Each message the sink received: its recipients and its text.
type Mail = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A local SMTP sink that keeps every message it receives.
#[derive(Clone, Default)]
struct Sink {
    messages: Mail,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for Sink {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let text = String::from_utf8_lossy(&self.data).to_string();
        if let Ok(mut m) = self.messages.lock() {
            m.push((self.to.clone(), text));
        }
        mailin_embedded::response::OK
    }
}

/// What the webhook receiver got: each body with its timestamp and signature headers.
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

#[tokio::test]
async fn notifications_arrive_by_email_and_by_signed_webhook() {
    // The SMTP sink, on a thread of its own.
    let sink = Sink::default();
    let messages = sink.messages.clone();
    let smtp = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let smtp_port = smtp.local_addr().expect("an address").port();
    let mut server = mailin_embedded::Server::new(sink);
    server.with_tcp_listener(smtp);
    std::thread::spawn(move || {
        let _ = server.serve();
    });

    // The webhook receiver.
    let received: Received = Arc::default();
    let keep = received.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                keep.lock().expect("the list").push((
                    body,
                    h("x-coproduce-timestamp"),
                    h("x-coproduce-signature"),
                ));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let hook_url = format!("http://{}/hook", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let secret = "a-site-secret-for-tests";
    let config = coproduce_web::WebConfig {
        secure_cookies: false,
        ..Default::default()
    };
    let settings = coproduce_app::workflows::Settings {
        webhook: true,
        ..Default::default()
    };
    let delivery = coproduce_app::jobs::Delivery {
        smtp: Some(coproduce_app::jobs::Smtp {
            host: "127.0.0.1".into(),
            port: smtp_port,
            from: "coproduce <care@clinic.example>".into(),
            username: None,
            password: coproduce_app::jobs::Secret::default(),
            starttls: false,
        }),
        webhook: Some(coproduce_app::jobs::Webhook {
            url: hook_url,
            secret: coproduce_app::jobs::Secret(secret.into()),
        }),
    };
    let app = TestApp::spawn_full(TestBackend::Sqlite, config, settings, delivery).await;
    app.seed_care_team("ht").await;
    let (rescue, _) = services(&app.db.store, &app.clock, true);
    // Ana asks for email on her account page; a slip is refused and changes nothing.
    let mut page = app.sign_in("ana").await;
    page.get("/account").await;
    let resp = page
        .post("/account/notifications", &[("email", "ana.silva@example")])
        .await;
    assert_eq!(resp.status(), 422);
    let ana = caller(&app, "ana").await;
    assert_eq!(rescue.notifier.email(&ana).await.expect("prefs"), None);
    let resp = page
        .post(
            "/account/notifications",
            &[("email", "ana.silva@example.org")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .expect("a page")
            .contains("Anrejistre: n ap voye")
    );
    let pack = dispensed(&app, &rescue, date!(2027 - 06 - 30)).await;
    app.clock.set(datetime!(2026-11-27 18:00 UTC));
    start(&app, &rescue, &pack).await;
    let nurse = caller(&app, "nurse.lee").await;
    rescue
        .record(
            &nurse,
            "p1",
            Some(&pack),
            Event::Contacted {
                note: String::new(),
            },
        )
        .await
        .expect("the contact");

    let pass = app.jobs.run_once().await.expect("a delivery pass");
    assert_eq!(pass.failures, 0, "{pass:?}");
    assert_eq!(pass.emails_sent, 1, "{pass:?}");
    assert!(pass.webhooks_sent >= 1, "{pass:?}");
    // Delivered once: the next pass has nothing to send.
    let again = app.jobs.run_once().await.expect("a pass");
    assert_eq!((again.emails_sent, again.webhooks_sent), (0, 0));

    let messages = messages.lock().expect("the sink").clone();
    assert_eq!(messages.len(), 1);
    let (to, text) = &messages[0];
    assert_eq!(to, &vec!["ana.silva@example.org".to_string()]);
    // In Ana's language (Haitian Creole), and without her record in it.
    assert!(text.contains("Ekip swen"), "{text}");

    let received = received.lock().expect("the list").clone();
    let (body, ts, sig) = received
        .iter()
        .find(|(b, _, _)| b.contains("rescue-pack-started"))
        .expect("the start reached the webhook");
    let ts: i64 = ts.parse().expect("a timestamp");
    assert_eq!(
        sig,
        &format!(
            "sha256={}",
            webhook_signature(secret.as_bytes(), ts, body.as_bytes())
        )
    );
    assert_ne!(
        sig,
        &format!(
            "sha256={}",
            webhook_signature(b"another secret", ts, body.as_bytes())
        )
    );
    let v: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(v["patient"], "Patient/p1");
    assert_eq!(v["recipient"], "role:nurse");
    app.finish().await;
}

#[tokio::test]
async fn episodes_export_as_fhir_and_import_again_unchanged() {
    let (app, rescue, pack) = a_started_pack().await;
    let nurse = caller(&app, "nurse.lee").await;
    rescue
        .record(
            &nurse,
            "p1",
            Some(&pack),
            Event::Contacted { note: "ok".into() },
        )
        .await
        .expect("the contact");

    let out = tempfile::tempdir().expect("a folder");
    let types = [
        "CarePlan",
        "MedicationRequest",
        "MedicationDispense",
        "Task",
        "Communication",
    ];
    // Imported again: nothing created or changed.
    let n = crate::export_valid_and_reimport(&app.db.url, out.path(), &types);
    assert_eq!((n[0], n[1], n[3]), (0, 0, 0), "{n:?}");
    assert!(n[2] >= 8, "{n:?}");

    // Into a fresh database they read back as the same episode.
    let fresh = tempfile::tempdir().expect("a folder");
    let url = format!("sqlite://{}", fresh.path().join("copy.db").display());
    let (ok, report) = coproduce(&url, &["import", out.path().to_str().expect("a path")]);
    assert!(ok, "{report}");
    let store = Store::open(&url).await.expect("the copy");
    let (copy, _) = services(&store, &app.clock, false);
    let system = Caller::system("test");
    let a = rescue.packs(&system, "p1").await.expect("packs");
    let b = copy.packs(&system, "p1").await.expect("packs in the copy");
    assert_eq!(a.len(), b.len());
    assert_eq!(a[0].pack, b[0].pack);
    // The same deadlines (the copy numbers its versions afresh).
    let facts = |p: &coproduce_app::rescue::PackView| {
        p.deadlines
            .iter()
            .map(|d| (d.task_id.clone(), d.kind, d.deadline, d.open, d.closed_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(facts(&a[0]), facts(&b[0]));
    store.close().await;
    app.finish().await;
}

/// What the workflow writes takes time-ordered ids (UUIDv7), as the API's creates do, so that
/// a big store's indexes by id take each new resource at their end, not at a random page.
#[tokio::test]
async fn what_the_workflow_writes_takes_time_ordered_ids() {
    let (app, _, _) = a_started_pack().await;
    let mut seen = 0;
    for rt in [
        "MedicationRequest",
        "MedicationDispense",
        "Task",
        "Communication",
    ] {
        let found = app
            .db
            .store
            .search(&coproduce_fhir::query::SearchQuery::all(rt))
            .await
            .expect("the search");
        assert!(!found.matches.is_empty(), "the workflow wrote no {rt}");
        for r in &found.matches {
            let id = uuid::Uuid::parse_str(&r.id)
                .unwrap_or_else(|e| panic!("{rt}/{} is not a UUID: {e}", r.id));
            assert_eq!(id.get_version_num(), 7, "{rt}/{}", r.id);
            seen += 1;
        }
    }
    assert!(seen >= 4, "{seen}");
    app.finish().await;
}

#[tokio::test]
async fn a_start_without_a_symptom_is_refused_in_the_patients_language_and_changes_nothing() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("ht").await;
    let (rescue, _) = services(&app.db.store, &app.clock, false);
    dispensed(&app, &rescue, date!(2027 - 06 - 30)).await;
    let mut ana = app.sign_in("ana").await;
    let (status, page) = ana.get("/patients/p1/rescue-pack/start").await;
    assert_eq!(status, 200);
    assert!(page.contains("Kisa ki pi mal pase abityid?"), "{page}");
    let resp = ana
        .post(
            "/patients/p1/rescue-pack/start",
            &[("taken", "prednisone"), ("since", "24")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.expect("a page");
    assert!(page.contains("Chwazi omwen yon sentòm."), "{page}");
    let system = Caller::system("test");
    let pack = rescue
        .current(&system, "p1")
        .await
        .expect("ok")
        .expect("a pack");
    assert_eq!(pack.stage, Stage::Ready, "nothing was recorded");
    assert!(pack.deadlines.is_empty());
    // Another patient's ready pack is out of Ana's reach: she cannot find it to start it,
    // and it stays as it was.
    let resp = app
        .put_json(
            "/fhir/Patient/p2",
            serde_json::json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Other"}]})
                .to_string(),
            None,
        )
        .await;
    assert!(resp.status().is_success());
    let their_team = |role| Caller {
        actor: coproduce_core::access::Actor::session(coproduce_core::access::Who::TeamMember {
            role,
            panel: ["p2".to_string()].into(),
            break_glass: Vec::new(),
        }),
        label: "test:other-team".into(),
        fhir_ref: None,
        user_id: None,
    };
    let other = rescue
        .record(
            &their_team(coproduce_core::access::Role::Clinician),
            "p2",
            None,
            Event::Eligible {
                reason: "An admission last winter".into(),
            },
        )
        .await
        .expect("p2's pack");
    let rph = their_team(coproduce_core::access::Role::Pharmacist);
    rescue
        .record(&rph, "p2", Some(&other), Event::TaughtBack)
        .await
        .expect("teach-back");
    rescue
        .record(
            &rph,
            "p2",
            Some(&other),
            Event::Dispensed {
                items: items(date!(2027 - 06 - 30)),
            },
        )
        .await
        .expect("dispensed");
    let resp = ana
        .post(
            "/patients/p2/rescue-pack/start",
            &[
                ("symptom", "more-breathless"),
                ("taken", "prednisone"),
                ("since", "24"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 404);
    let theirs = rescue
        .current(&system, "p2")
        .await
        .expect("ok")
        .expect("p2's pack");
    assert_eq!(theirs.stage, Stage::Ready, "p2's pack was not started");
    app.finish().await;
}

#[tokio::test]
async fn a_patient_with_diabetes_is_asked_to_check_glucose_and_the_team_sees_those_readings() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let resp = app
        .put_json(
            "/fhir/Condition/p1-diabetes",
            serde_json::json!({
                "resourceType": "Condition", "id": "p1-diabetes",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
                "subject": {"reference": "Patient/p1"},
            })
            .to_string(),
            None,
        )
        .await;
    assert!(resp.status().is_success());
    let (rescue, _) = services(&app.db.store, &app.clock, false);
    let pack = dispensed(&app, &rescue, date!(2027 - 06 - 30)).await;
    app.clock.set(datetime!(2026-11-27 18:00 UTC));
    start(&app, &rescue, &pack).await;
    assert_eq!(
        inbox(&app.db.store, "Patient/p1", "rescue-pack-check-glucose").await,
        1
    );
    let mut ana = app.sign_in("ana").await;
    let (_, home) = ana.get("/").await;
    assert!(
        home.contains("Please check your glucose every day until 2026-12-02 18:00"),
        "{home}"
    );
    // Each reader has their words: Ana reads what she did; Clara and the team read of Ana.
    let (_, pack) = ana.get("/patients/p1/rescue-pack").await;
    assert!(pack.contains("You started the pack for"), "{pack}");
    let mut clara = app.sign_in("clara").await;
    let (_, pack) = clara.get("/patients/p1/rescue-pack").await;
    assert!(pack.contains("Ana Silva started the pack for"), "{pack}");
    assert!(
        pack.contains("Ana Silva&#39;s care team will call Ana Silva by"),
        "{pack}"
    );
    assert!(!pack.contains("will call you"), "{pack}");
    let mut dr = app.sign_in("dr.okafor").await;
    let (_, pack) = dr.get("/patients/p1/rescue-pack").await;
    assert!(pack.contains("Ana Silva started the pack for"), "{pack}");
    assert!(
        !pack.contains("will call you"),
        "the team reads of Ana: {pack}"
    );
    // Read, it leaves the home page; a notification that is not hers (or already read)
    // is not found.
    let (_, inbox) = ana.get("/notifications").await;
    let action = inbox
        .split("action=\"/notifications/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a mark-as-read form")
        .to_string();
    let resp = ana.post(&format!("/notifications/{action}"), &[]).await;
    assert_eq!(resp.status(), 303);
    let (_, home) = ana.get("/").await;
    assert!(
        !home.contains("Please check your glucose every day"),
        "{home}"
    );
    let resp = ana.post(&format!("/notifications/{action}"), &[]).await;
    assert_eq!(resp.status(), 404);
    app.clock.set(datetime!(2026-11-28 08:00 UTC));
    // A new day, a new sign-in (sessions end after 30 idle minutes).
    let mut ana = app.sign_in("ana").await;
    ana.get("/").await;
    let resp = ana
        .post(
            "/patients/p1/readings",
            &[("measure", "glucose"), ("value", "240"), ("unit", "mg/dL")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/patients/p1/readings/glucose?ok=note-reading-saved&reading=")
    );
    let mut dr = app.sign_in("dr.okafor").await;
    let (_, team) = dr.get("/").await;
    assert!(team.contains("On a rescue-pack steroid"), "{team}");
    app.finish().await;
}

#[tokio::test]
async fn the_clinician_personalises_the_action_plan_and_the_patient_reads_it() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("ht").await;
    let mut dr = app.sign_in("dr.okafor").await;
    let (status, page) = dr.get("/patients/p1/rescue-pack").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"personalise\""), "{page}");
    let resp = dr
        .post(
            "/patients/p1/action-plan",
            &[
                (
                    "zone-green",
                    "Usual: walks to church without stopping; peak flow about 300.",
                ),
                ("zone-yellow", "Peak flow below 240."),
                ("zone-red", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    // A nurse may not change it, and nothing changes.
    let mut nurse = app.sign_in("nurse.lee").await;
    nurse.get("/patients/p1/rescue-pack").await;
    let resp = nurse
        .post(
            "/patients/p1/action-plan",
            &[("zone-green", "Something else")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let mut ana = app.sign_in("ana").await;
    let (_, page) = ana.get("/patients/p1/rescue-pack").await;
    assert!(
        page.contains("Pou ou: Usual: walks to church without stopping; peak flow about 300."),
        "{page}"
    );
    assert!(page.contains("Pou ou: Peak flow below 240."));
    assert!(!page.contains("Something else"));
    // Plain FHIR, valid R4.
    let plans = app
        .get("/fhir/CarePlan?category=https://coproduce.health/fhir/CodeSystem/care-plan-category|action-plan")
        .await
        .json::<Value>()
        .await
        .expect("a Bundle");
    let plan = &plans["entry"][0]["resource"];
    assert_eq!(plan["activity"].as_array().map(Vec::len), Some(2));
    coproduce_fhir::validate::validate_resource(plan)
        .unwrap_or_else(|e| panic!("not valid FHIR R4: {e}\n{plan}"));
    app.finish().await;
}

#[tokio::test]
async fn any_task_with_a_chain_is_watched_whatever_wrote_it() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let (_, watcher) = services(&app.db.store, &app.clock, false);
    let task = |id: &str, role: &str, status: &str| {
        serde_json::json!({
            "resourceType": "Task", "id": id, "status": status, "intent": "order",
            "extension": [
                {"url": "https://coproduce.health/fhir/StructureDefinition/escalation", "extension": [
                    {"url": "step", "extension": [
                        {"url": "role", "valueCode": role},
                        {"url": "within", "valueString": "1 business day"}]},
                    {"url": "step", "extension": [
                        {"url": "role", "valueCode": "clinic-lead"},
                        {"url": "within", "valueString": "4 business hours"}]}]},
                {"url": "https://coproduce.health/fhir/StructureDefinition/escalation-level", "valueInteger": 0}],
            "code": {"text": "Call back about a referral"},
            "for": {"reference": "Patient/p1"},
            "restriction": {"period": {"end": "2026-11-27T12:00:00Z"}},
        })
        .to_string()
    };
    // Written through /fhir by an integration: one the server can read, one it cannot (a
    // role it does not know), and one already done.
    for (id, role, status) in [
        ("t-ok", "nurse", "accepted"),
        ("t-odd", "matron", "requested"),
        ("t-done", "nurse", "completed"),
    ] {
        let resp = app
            .put_json(&format!("/fhir/Task/{id}"), task(id, role, status), None)
            .await;
        assert!(
            resp.status().is_success(),
            "{}",
            resp.text().await.unwrap_or_default()
        );
    }
    app.clock.set(datetime!(2026-11-27 12:30 UTC));
    let pass = watcher.tick().await.expect("a pass");
    assert_eq!((pass.escalated, pass.exhausted), (1, 1), "{pass:?}");
    assert_eq!(watcher.tick().await.expect("a pass"), Default::default());
    let t: Value = app
        .get("/fhir/Task/t-ok")
        .await
        .json()
        .await
        .expect("the Task");
    assert_eq!(t["performerType"][0]["coding"][0]["code"], "clinic-lead");
    // Four business hours from the missed due time (12:00).
    assert_eq!(
        t["restriction"]["period"]["end"],
        "2026-11-27T16:00:00.000Z"
    );
    assert_eq!(
        inbox(&app.db.store, "role:clinic-lead", "deadline-escalated").await,
        1
    );
    assert_eq!(app.db.store.misses_since(0).await.expect("misses").len(), 2);
    app.finish().await;
}

/// The pharmacist's home lists the packs they have work on: one to dispense after the
/// teach-back, then, once dispensed, the same pack as expiring within 30 days.
#[tokio::test]
async fn the_pharmacists_worklist_holds_the_packs_to_prepare() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    app.seed_care_team("en").await;
    let (rescue, _) = services(&app.db.store, &app.clock, false);
    app.clock.set(datetime!(2026-11-02 10:00 UTC));
    let dr = caller(&app, "dr.okafor").await;
    let rph = caller(&app, "rph.ali").await;
    let pack = rescue
        .record(
            &dr,
            "p1",
            None,
            Event::Eligible {
                reason: "Two exacerbations in the past year".into(),
            },
        )
        .await
        .unwrap();
    rescue
        .record(&rph, "p1", Some(&pack), Event::TaughtBack)
        .await
        .unwrap();
    let mut web = app.sign_in("rph.ali").await;
    let (_, home) = web.get("/").await;
    assert!(home.contains("Rescue packs to work on (1)"), "{home}");
    assert!(home.contains("To dispense"), "{home}");
    rescue
        .record(
            &rph,
            "p1",
            Some(&pack),
            Event::Dispensed {
                items: items(time::macros::date!(2026 - 11 - 20)),
            },
        )
        .await
        .unwrap();
    let (_, home) = web.get("/").await;
    assert!(home.contains("Expires 2026-11-20"), "{home}");
    // The social worker has no pack to prepare: no section.
    let mut sw = app.sign_in("sw.diaz").await;
    let (_, home) = sw.get("/").await;
    assert!(!home.contains("Rescue packs to work on"), "{home}");
    app.finish().await;
}
