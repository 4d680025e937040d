//! A community organisation's partner account: through the FHIR API (its system's token) and
//! its pages, on SQLite and PostgreSQL, it reads and moves the referrals addressed to it and
//! nothing else: not another organisation's referral, not the request behind its own, not the
//! patient's chart, not a type's history, not an include; and it cannot re-address a referral
//! or change whom it is about.

use crate::rescue::caller;
use crate::social::{json_of, screened_and_chosen};
use coproduce_app::accounts::{NewToken, NewUser};
use coproduce_core::access::Role;
use coproduce_core::social::referral::{Ending, Status};
use coproduce_testkit::{PASSWORD, TestApp, backends};
use serde_json::json;

async fn partner(app: &TestApp, username: &str, organization: &str) -> String {
    app.accounts
        .add_user(NewUser {
            username: username.into(),
            roles: vec![Role::Partner],
            fhir_ref: Some(format!("Organization/{organization}")),
            password: Some(PASSWORD.into()),
        })
        .await
        .expect("a partner account");
    // The organisation's system: its referrals, read, searched and moved along.
    app.accounts
        .issue_token(NewToken {
            username: Some(username.into()),
            name: format!("{username}-system"),
            scopes: "system/Task.rus".into(),
            patient: None,
            expires_in: None,
        })
        .await
        .expect("a token scoped to its Tasks")
        .1
}

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> (u16, serde_json::Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "application/fhir+json").body(b);
    }
    json_of(req.send().await.expect("a response")).await
}

#[tokio::test]
async fn a_partner_reads_and_moves_only_the_referrals_addressed_to_it() {
    use reqwest::Method;
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.seed_care_team("es").await;
        let (social, food, _) = screened_and_chosen(&app).await;
        // How the pantry reaches Ana: her phone, on her record.
        let (_, mut ana_record) = json_of(app.get("/fhir/Patient/p1").await).await;
        ana_record["telecom"] = json!([{"system": "phone", "value": "+1 555 0199"}]);
        let resp = app
            .put_json("/fhir/Patient/p1", ana_record.to_string(), None)
            .await;
        assert!(resp.status().is_success());
        let sw = caller(&app, "sw.diaz").await;
        let ours = social
            .refer(
                &sw,
                "p1",
                &food,
                "eastside-pantry-groceries",
                "Prefers Saturday mornings",
            )
            .await
            .unwrap();
        let theirs = social
            .refer(&sw, "p1", &food, "mesa-comun-meals", "")
            .await
            .unwrap();
        let pantry = partner(&app, "pantry", "eastside-pantry").await;
        partner(&app, "mesa", "mesa-comun").await;
        // A partner's system carries system/ scopes, never a person's.
        let refused = app
            .accounts
            .issue_token(NewToken {
                username: Some("pantry".into()),
                name: "pantry-user".into(),
                scopes: "user/*.cruds".into(),
                patient: None,
                expires_in: None,
            })
            .await;
        assert!(refused.is_err());

        // Its searches find its own referral, with what it needs and nothing else.
        let (status, bundle) = call(&app, &pantry, Method::GET, "/fhir/Task", None).await;
        assert_eq!(status, 200, "{bundle}");
        let found: Vec<&str> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(found, vec![ours.as_str()]);
        let (status, task) = call(
            &app,
            &pantry,
            Method::GET,
            &format!("/fhir/Task/{ours}"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(task["for"]["display"], "Ana Silva");
        let inputs = task["input"].to_string();
        for carried in ["+1 555 0199", "\"es\"", "\"food\""] {
            assert!(inputs.contains(carried), "{carried} in {inputs}");
        }
        let (status, _) = call(
            &app,
            &pantry,
            Method::GET,
            &format!("/fhir/Task/{ours}/_history"),
            None,
        )
        .await;
        assert_eq!(status, 200);

        // Never another organisation's referral, the request behind its own, the chart,
        // a type's history, an include, the audit trail.
        let focus = task["focus"]["reference"].as_str().unwrap().to_string();
        for path in [
            format!("/fhir/Task/{theirs}"),
            format!("/fhir/Task/{theirs}/_history"),
            format!("/fhir/{focus}"),
            "/fhir/Patient/p1".to_string(),
            "/fhir/Patient".to_string(),
            "/fhir/Condition?patient=Patient/p1".to_string(),
            "/fhir/Observation".to_string(),
            "/fhir/QuestionnaireResponse".to_string(),
            "/fhir/Consent".to_string(),
            "/fhir/Task/_history".to_string(),
            "/fhir/Task?_include=Task:focus".to_string(),
            "/fhir/Task?_revinclude=Provenance:target".to_string(),
            "/fhir/AuditEvent".to_string(),
        ] {
            let (status, body) = call(&app, &pantry, Method::GET, &path, None).await;
            assert_eq!(status, 403, "{path}: {body}");
        }
        let (status, bundle) = call(
            &app,
            &pantry,
            Method::GET,
            "/fhir/Task?patient=Patient/p1&_summary=count",
            None,
        )
        .await;
        assert_eq!((status, bundle["total"].as_i64()), (200, Some(1)));

        // It moves its own along; it makes, deletes, re-addresses or rewrites none.
        let path = format!("/fhir/Task/{ours}");
        let mut moved = task.clone();
        moved["for"]["display"] = json!("Someone else");
        moved["status"] = json!("accepted");
        let (status, body) = call(&app, &pantry, Method::PUT, &path, Some(moved.to_string())).await;
        assert_eq!(status, 422, "{body}");
        let mut moved = task.clone();
        moved["owner"] = json!({"reference": "Organization/mesa-comun"});
        let (status, _) = call(&app, &pantry, Method::PUT, &path, Some(moved.to_string())).await;
        assert_eq!(status, 403);
        let (status, _) = call(
            &app,
            &pantry,
            Method::POST,
            "/fhir/Task",
            Some(task.to_string()),
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = call(&app, &pantry, Method::DELETE, &path, None).await;
        assert_eq!(status, 403);
        let (_, theirs_task) = json_of(app.get(&format!("/fhir/Task/{theirs}")).await).await;
        let mut hijack = theirs_task.clone();
        hijack["status"] = json!("accepted");
        let (status, _) = call(
            &app,
            &pantry,
            Method::PUT,
            &format!("/fhir/Task/{theirs}"),
            Some(hijack.to_string()),
        )
        .await;
        assert_eq!(status, 403);
        let (_, after) = json_of(app.get(&format!("/fhir/Task/{theirs}")).await).await;
        assert_eq!(after["meta"]["versionId"], theirs_task["meta"]["versionId"]);
        let mut accepted = task.clone();
        accepted["status"] = json!("accepted");
        let (status, body) = call(
            &app,
            &pantry,
            Method::PUT,
            &path,
            Some(accepted.to_string()),
        )
        .await;
        assert_eq!(status, 200, "{body}");

        // Its page: its referral with the person's name, language and contact; the other
        // organisation's is not there, and it cannot move it nor open the chart.
        let mut page = app.sign_in("pantry").await;
        let (status, html) = page.get("/").await;
        assert_eq!(status, 200);
        assert!(html.contains(&format!("id=\"referral-{ours}\"")), "{html}");
        assert!(!html.contains(&theirs));
        for shown in [
            "Ana Silva",
            "+1 555 0199",
            "Español",
            "Prefers Saturday mornings",
        ] {
            assert!(html.contains(shown), "{shown}");
        }
        for path in ["/patients/p1", "/patients/p1/social", "/fhir/Task"] {
            let (status, _) = page.get(path).await;
            assert!(status == 403 || status == 401, "{path}: {status}");
        }
        page.get("/partner").await;
        let version = theirs_task["meta"]["versionId"].as_str().unwrap();
        let resp = page
            .post(
                &format!("/partner/referrals/{theirs}"),
                &[("version", version), ("to", "accepted"), ("reason", "")],
            )
            .await;
        assert_eq!(resp.status(), 403);
        // An ending needs its reason, and then closes the loop.
        let (_, now) = json_of(app.get(&path).await).await;
        let version = now["meta"]["versionId"].as_str().unwrap().to_string();
        let resp = page
            .post(
                &format!("/partner/referrals/{ours}"),
                &[("version", &version), ("to", "completed"), ("reason", "")],
            )
            .await;
        assert_eq!(resp.status(), 422);
        let resp = page
            .post(
                &format!("/partner/referrals/{ours}"),
                &[
                    ("version", &version),
                    ("to", "completed"),
                    ("reason", "need-met"),
                ],
            )
            .await;
        assert_eq!(resp.status(), 303);
        let r = social
            .referrals(&sw, "p1")
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.task == ours)
            .unwrap();
        assert_eq!(
            (r.status, r.ending),
            (Status::Completed, Some(Ending::NeedMet))
        );
        let (_, other) = json_of(app.get(&format!("/fhir/Task/{theirs}")).await).await;
        assert_eq!(other["status"], "requested");
        // The referrals as the organisation left them export as valid R4 and import back
        // unchanged.
        let out = tempfile::tempdir().unwrap();
        let counts =
            crate::export_valid_and_reimport(&app.db.url, out.path(), &["Task", "ServiceRequest"]);
        assert_eq!((counts[0], counts[1], counts[3]), (0, 0, 0));
        app.finish().await;
    }
}
