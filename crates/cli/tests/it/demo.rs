//! The demo as its people see it: every page each demo account reaches from its home names
//! people by their names, never by a sign-in name or an internal id.

use coproduce_testkit::{PASSWORD, TestApp, TestBackend};
use std::collections::{BTreeSet, VecDeque};

/// The demo's sign-in names (see `app::demo::people`).
const ACCOUNTS: &[&str] = &[
    "ana",
    "clara",
    "dr.okafor",
    "nurse.lee",
    "pharm.ali",
    "chw.rosa",
    "sw.ben",
    "rr.kim",
    "lead.park",
    "quality.ida",
    "admin",
];

/// Where a sign-in name belongs: the person's own on their account page, and every one on
/// the administrator's list of accounts (their home).
fn may_name(account: &str, path: &str, other: &str) -> bool {
    (path == "/account" && other == account)
        || (account == "admin" && (path == "/" || path.starts_with("/admin")))
}

/// Whether `word` stands alone in `text` (not inside "analyst" or "Banana").
fn stands_alone(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '.' || c == '_' || c == '-';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The page's visible text: the markup without its tags and attributes.
fn visible_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|h| h.starts_with('/') && !h.starts_with("//"))
        .map(|h| {
            h.split('#')
                .next()
                .unwrap_or_default()
                .replace("&amp;", "&")
        })
        .filter(|h| {
            !h.is_empty()
                && !h.starts_with("/static")
                && !h.starts_with("/fhir")
                && !h.ends_with(".csv")
                && !h.starts_with("/logout")
        })
        .collect()
}

#[tokio::test]
async fn every_demo_page_names_people_never_accounts_or_ids() {
    // The measures the server carries, as `coproduce demo` serves them.
    let measures = coproduce_measures::official::NAMES
        .iter()
        .map(|n| {
            let bundle = coproduce_measures::official::bundle(n)
                .expect("a carried measure")
                .expect("it reads");
            (n.to_string(), std::sync::Arc::new(bundle))
        })
        .collect();
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        coproduce_web::WebConfig {
            secure_cookies: false,
            measures,
            ..Default::default()
        },
    )
    .await;
    let clock: std::sync::Arc<dyn coproduce_core::Clock> = app.clock.clone();
    let loaded = coproduce_app::demo::load(&app.db.store, clock)
        .await
        .expect("the demo loads");
    assert_eq!(loaded.concerns, 9, "eight concerns and a compliment");
    for name in ACCOUNTS {
        app.accounts
            .reset_password(name, PASSWORD)
            .await
            .expect("a password");
    }
    let mut pages = 0;
    for account in ACCOUNTS {
        let mut web = app.sign_in(account).await;
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from(["/".to_string()]);
        // Each account's home and what it links to, two steps deep (at most 25 pages).
        let mut depth = std::collections::HashMap::from([("/".to_string(), 0)]);
        while let Some(path) = queue.pop_front() {
            if !seen.insert(path.clone()) || seen.len() > 25 {
                continue;
            }
            let (status, html) = web.get(&path).await;
            assert!(status == 200 || status == 303, "{account} {path}: {status}");
            if status != 200 {
                continue;
            }
            pages += 1;
            let text = visible_text(&html);
            for id in ["demo:", "demo-"] {
                if let Some(i) = text.find(id) {
                    let from = text[..i].char_indices().rev().nth(60).map_or(0, |(j, _)| j);
                    let to = (i + 60).min(text.len());
                    let to = (to..=text.len())
                        .find(|j| text.is_char_boundary(*j))
                        .unwrap_or(text.len());
                    panic!(
                        "{account} {path} shows an id: …{}…",
                        text[from..to].replace('\n', " ")
                    );
                }
            }
            for other in ACCOUNTS {
                if may_name(account, &path, other) {
                    continue;
                }
                if stands_alone(&text, other) {
                    let i = text.find(other).unwrap_or(0);
                    let from = text[..i].char_indices().rev().nth(60).map_or(0, |(j, _)| j);
                    let to = (i + 60).min(text.len());
                    let to = (to..=text.len())
                        .find(|j| text.is_char_boundary(*j))
                        .unwrap_or(text.len());
                    panic!(
                        "{account} {path} shows the sign-in name {other}: …{}…",
                        text[from..to].replace('\n', " ")
                    );
                }
            }
            let d = depth[&path];
            if d < 2 {
                for l in links(&html) {
                    depth.entry(l.clone()).or_insert(d + 1);
                    queue.push_back(l);
                }
            }
        }
    }
    println!("{pages} demo pages read, no id or sign-in name where a name belongs");

    // The analyst's home: the measures, and a year of emergency visits and admissions with
    // most months above zero.
    let mut ida = app.sign_in("quality.ida").await;
    let (_, home) = ida.get("/").await;
    assert!(!home.contains("No measure is configured"), "{home}");
    assert!(home.contains("CMS122"), "{home}");
    let months = home
        .split("by month: ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .expect("the months in the chart's text");
    let active = months
        .split("; ")
        .filter(|m| !m.ends_with(": 0 / 0"))
        .count();
    println!("demo utilisation: {active} of 12 months with emergency visits or admissions");
    assert!(active >= 8, "{months}");
    // AHRQ's prevention indicators beside it, with the demo's COPD admissions counted.
    assert!(
        home.contains("PQI 05 COPD or Asthma in Older Adults Admission Rate"),
        "{home}"
    );
    let pqi05 = home
        .split("PQI 05 COPD or Asthma in Older Adults Admission Rate</th><td>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("the PQI 05 discharges");
    println!("demo PQI 05: {pqi05} qualifying discharges in the last 12 months");
    assert!(pqi05 > 0);
    assert!(pages > 40, "{pages}");

    // Speak Up: the manager sees both units' open concerns, the urgent one first and overdue,
    // and the loop's measures over the demo's concerns.
    let mut lead = app.sign_in("lead.park").await;
    let (_, list) = lead.get("/team/concerns").await;
    let rows: Vec<&str> = list.split("<tr class=").skip(1).collect();
    assert_eq!(rows.len(), 5, "{list}");
    assert!(
        rows[0].contains("rank-urgent") && rows[0].contains("Overdue"),
        "{list}"
    );
    assert!(list.contains("4 West") && list.contains("Riverside clinic"));
    let (status, measures) = lead.get("/concerns/measures").await;
    assert_eq!(status, 200);
    assert!(
        measures.contains("<th scope=\"row\">All concerns</th><td>8</td>"),
        "{measures}"
    );
    let (_, feedback) = lead.get("/concerns/measures?kind=feedback").await;
    assert!(
        feedback.contains("<th scope=\"row\">All feedback</th><td>1</td>"),
        "{feedback}"
    );
    println!(
        "demo concerns: 8 raised and 1 compliment, 5 open on the manager's list, the urgent one overdue"
    );
    app.finish().await;
}
