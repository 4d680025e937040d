//! The team home for a clinician whose panel is 2,000 patients with a year of readings each:
//! the server time to build the page (policy, searches, audit, rules, charts, HTML), against
//! a baseline run in the same invocation: the same searches straight from the store, with no
//! policy, audit or rendering (the floor of reading the data).
//!
//! Run: `cargo build --release -p bench-teamhome && target/release/bench-teamhome [patients]`

use anyhow::{Context, Result};
use coproduce_app::accounts::{Accounts, NewUser};
use coproduce_app::care::{
    Care, NewActivity, NewReading, activity_element, goal_resource, hba1c_task_resource,
    plan_resource,
};
use coproduce_app::{FhirApi, Importer, Store};
use coproduce_core::access::{Actor, Role, Who};
use coproduce_core::care::plan::{Owner, Schedule, Setting, Side};
use coproduce_core::care::readings::{HbA1cTarget, LOINC, Measure};
use coproduce_core::{Clock, FakeClock};
use coproduce_fhir::query::SearchQuery;
use coproduce_fhir::stream::SourceItem;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use time::Duration;
use time::macros::datetime;

/// The server's allocator (`coproduce serve` runs on mimalloc), so that the page is timed as
/// the server builds it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn patient_caller(pid: &str) -> coproduce_app::accounts::Caller {
    coproduce_app::accounts::Caller {
        actor: Actor::session(Who::Patient {
            patient: pid.to_string(),
        }),
        label: format!("bench:{pid}"),
        fhir_ref: Some(format!("Patient/{pid}")),
        user_id: None,
    }
}

/// The panel, built with the app's own resource shapes and loaded by the bulk importer.
fn panel(n: usize, care: &Care, team: &coproduce_app::accounts::Caller) -> Result<Vec<Value>> {
    let now = care.now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = vec![
        json!({"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Okafor", "given": ["Ngozi"]}]}),
    ];
    for i in 0..n {
        let pid = format!("p{i}");
        let me = patient_caller(&pid);
        out.push(json!({"resourceType": "Patient", "id": pid, "name": [{"family": format!("Patient{i}"), "given": ["Test"]}]}));
        out.push(json!({"resourceType": "CareTeam", "id": format!("team-{pid}"), "status": "active",
            "subject": {"reference": format!("Patient/{pid}")},
            "participant": [{"role": [{"text": "clinician"}], "member": {"reference": "Practitioner/dr"}}]}));
        let mut glucose = 110.0 + rng.unit() * 80.0;
        for week in (0..52).rev().step_by(2) {
            let at = now - Duration::weeks(week) - Duration::hours((rng.unit() * 40.0) as i64);
            glucose = (glucose + rng.unit() * 30.0 - 15.0).clamp(70.0, 320.0);
            let mut rs = vec![(Measure::Glucose, vec![glucose.round()])];
            if week % 4 == 0 {
                let sys = 115.0 + (rng.unit() * 40.0).round();
                rs.push((Measure::BloodPressure, vec![sys, sys - 40.0]));
                rs.push((
                    Measure::Weight,
                    vec![(700.0 + rng.unit() * 400.0).round() / 10.0],
                ));
            }
            if week % 13 == 0 {
                rs.push((
                    Measure::HbA1c,
                    vec![(60.0 + rng.unit() * 40.0).round() / 10.0],
                ));
            }
            for (measure, values) in rs {
                let r = NewReading {
                    measure,
                    values,
                    unit: String::new(),
                    at,
                };
                let mut obs = care.observation(&me, &pid, &r).context("a reading")?;
                obs["id"] = json!(format!("{pid}-r{}", out.len()));
                // Older readings were reviewed; the last fortnight's wait for the team.
                if week >= 2
                    && let Some(o) = obs.as_object_mut()
                {
                    o.remove("meta");
                }
                out.push(obs);
            }
        }
        let target = [HbA1cTarget::Usual, HbA1cTarget::Relaxed][i % 2];
        let mut goal = goal_resource(
            team,
            &pid,
            "Keep my HbA1c where we agreed",
            Side::Team,
            Some(target),
            now,
        );
        goal["lifecycleStatus"] = json!("active");
        if let Some(o) = goal.as_object_mut() {
            o.remove("extension");
        }
        goal["id"] = json!(format!("goal-{pid}"));
        out.push(goal);
        if i % 10 == 0 {
            let mut g = goal_resource(
                &me,
                &pid,
                "Walk to the market three times a week",
                Side::Patient,
                None,
                now,
            );
            g["id"] = json!(format!("goal2-{pid}"));
            out.push(g);
        }
        let mut plan = plan_resource(team, &pid, now);
        plan["id"] = json!(format!("plan-{pid}"));
        let due = if i % 20 == 0 {
            now - Duration::days(3)
        } else {
            now + Duration::days(30)
        };
        plan["activity"] = json!([
            activity_element(
                &NewActivity {
                    text: "Check blood sugar before breakfast".into(),
                    owner: Owner::Patient,
                    setting: Setting::SelfCare,
                    schedule: Schedule::Every(coproduce_core::care::plan::Cadence::Days(1))
                },
                now
            ),
            activity_element(
                &NewActivity {
                    text: "Call about the foot check".into(),
                    owner: Owner::Team(Role::Nurse),
                    setting: Setting::Outpatient,
                    schedule: Schedule::By(due)
                },
                now
            ),
        ]);
        out.push(plan);
        let mut task = hba1c_task_resource(
            &pid,
            now + Duration::days((rng.unit() * 120.0) as i64 - 30),
            now,
        );
        task["id"] = json!(format!("task-{pid}"));
        out.push(task);
    }
    Ok(out)
}

/// The searches the team home runs, straight from the store: the floor. With `verbose`,
/// each search's time is printed.
async fn floor(
    store: &Store,
    panel: &BTreeSet<String>,
    now: time::OffsetDateTime,
    verbose: bool,
) -> Result<usize> {
    let p = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let hba1c = coproduce_core::care::readings::HBA1C_CODES
        .iter()
        .map(|c| format!("{LOINC}|{c}"))
        .collect::<Vec<_>>()
        .join(",");
    let queries = [
        ("Patient", p(&[])),
        ("Goal", p(&[("lifecycle-status", "proposed,active".into())])),
        (
            "Observation",
            p(&[(
                "_tag",
                format!("{}|unreviewed", coproduce_app::vocabulary::WORKFLOW_TAGS),
            )]),
        ),
        (
            "CarePlan",
            p(&[
                (
                    "category",
                    format!("{}|shared", coproduce_app::vocabulary::PLAN_CATEGORY),
                ),
                ("status", "active".into()),
            ]),
        ),
        ("Task", p(&[("status", "requested,in-progress".into())])),
        (
            "Observation",
            p(&[
                ("code", hba1c),
                (
                    "date",
                    format!(
                        "ge{}",
                        coproduce_app::Stored::instant(now - Duration::days(456))
                    ),
                ),
            ]),
        ),
    ];
    let mut rows = 0;
    for (rt, params) in queries {
        let mut q = SearchQuery::parse(rt, &params)?;
        q.compartments = Some(panel.clone());
        q.count = coproduce_fhir::query::EVERY_MATCH;
        let t = Instant::now();
        rows += store.search(&q).await?.matches.len();
        if verbose {
            println!(
                "  {rt} {params:?}: {:.0} ms",
                t.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
    Ok(rows)
}

#[derive(clap::Parser, Debug)]
#[command(about = "The team home for a clinician's panel against the same searches alone")]
struct Args {
    /// Patients in the panel, each with a year of readings.
    #[arg(default_value_t = 2000)]
    patients: usize,
    /// The SQLite file to build the panel in (default: a new one in a temporary folder).
    #[arg(long, env = "BENCH_DB")]
    db: Option<std::path::PathBuf>,
    /// Print each search's time.
    #[arg(long, env = "BENCH_VERBOSE", value_parser = clap::builder::FalseyValueParser::new())]
    verbose: bool,
    /// Rounds timed (each: the page, then the baseline), after the warm-up rounds.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Rounds run first and not timed: the store's checkpoint copies the import's pages
    /// back to the database file in the background for about half a second after it.
    #[arg(long, default_value_t = 5)]
    warm_up: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = <Args as clap::Parser>::parse();
    let n = args.patients;
    let dir = tempfile::tempdir()?;
    let db = args.db.unwrap_or_else(|| dir.path().join("bench.db"));
    let url = format!("sqlite://{}", db.display());
    let store = Store::open(&url).await?;
    store.migrate().await?;
    let clock: Arc<dyn Clock> = Arc::new(FakeClock::at(datetime!(2026-11-27 10:00 UTC)));
    let api = FhirApi::new(store.clone(), clock.clone());
    let care = Care::new(api.clone(), clock.clone());
    let accounts = Accounts::new(store.clone(), clock.clone());
    let user = accounts
        .add_user(NewUser {
            username: "dr".into(),
            roles: vec![Role::Clinician],
            fhir_ref: Some("Practitioner/dr".into()),
            password: None,
        })
        .await?;

    let started = Instant::now();
    let team_for_shapes = coproduce_app::accounts::Caller::system("bench");
    let resources = panel(n, &care, &team_for_shapes)?;
    let total = resources.len();
    let mut importer = Importer::new(store.clone(), clock.clone(), "bench:teamhome");
    for (i, r) in resources.into_iter().enumerate() {
        importer
            .add(SourceItem::new(format!("bench#{i}"), Ok(r)))
            .await?;
    }
    let summary = importer.finish().await?;
    anyhow::ensure!(
        summary.rejected.is_empty(),
        "rejected: {:?}",
        summary.rejected.first()
    );
    println!(
        "loaded {total} resources for {n} patients in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let caller = accounts.caller_for_user(&user).await?;
    let mut workflows = coproduce_app::workflows::Workflows::new(
        api.clone(),
        &coproduce_app::workflows::Settings::default(),
    );
    workflows.care = care.clone();
    let state = coproduce_web::AppState::new(
        &workflows,
        accounts.clone(),
        coproduce_web::WebConfig::default(),
    );
    let panel: BTreeSet<String> = (0..n).map(|i| format!("p{i}")).collect();
    let now = clock.now();
    // Warm-up rounds of each, then alternate so both see the same machine.
    let rows = floor(&store, &panel, now, args.verbose).await?;
    let html = coproduce_web::care::team_home_html(&state, &caller, "en").await?;
    for _ in 1..args.warm_up {
        coproduce_web::care::team_home_html(&state, &caller, "en").await?;
        floor(&store, &panel, now, false).await?;
    }
    // Measure the page it claims to: the whole panel, in reach.
    anyhow::ensure!(
        html.contains(&format!("{n} patients in your panel")),
        "the team home does not show the whole panel of {n}"
    );
    let (mut base, mut page) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds.max(1) {
        let t = Instant::now();
        coproduce_web::care::team_home_html(&state, &caller, "en").await?;
        page.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        floor(&store, &panel, now, args.verbose).await?;
        base.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let rounds = page.len();
    let (b, p) = (median(base), median(page));
    println!(
        "panel: {n} patients; the page's searches return {rows} records; page {} KiB",
        html.len() / 1024
    );
    println!(
        "baseline (the same searches from the store, no policy, audit or rendering): {b:.0} ms (median of {rounds})"
    );
    println!(
        "team home (policy, searches, audit, rules, chart, HTML): {p:.0} ms (median of {rounds})"
    );
    println!("ratio team home / baseline: {:.2}", p / b);
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    Ok(())
}
