//! The administrator's page of the community directory: every service on one row, edited in
//! place (one Save per row, checked as a line of the directory file is), and a whole CSV
//! loaded at once (all of it, or nothing with the bad line named). The API's policy decides:
//! the shared directory is kept by administrators and integrations.

use crate::AppState;
use crate::shell::{
    Frame, Pairs, Person, back_to, failed, person, person_form, render, show_refusal,
};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use coproduce_app::social::directory::{COLUMNS, METHODS, ServiceRow};
use coproduce_app::{AppError, CareError};
use coproduce_core::access::Who;
use coproduce_core::social::ahc::Domain;
use tower_sessions::Session;

pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/admin/directory", get(page).post(load)),
        ("/admin/directory/{service}", post(save)),
    ]
    .into_iter()
    .map(|(path, route)| (path, route, false))
    .collect()
}

pub(crate) struct Row {
    id: String,
    version: i64,
    organization: String,
    service: String,
    needs: String,
    languages: String,
    hours: String,
    phone: String,
    email: String,
    refer_by: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "social_directory.html")]
pub(crate) struct DirectoryPage {
    f: Frame,
    rows: Vec<Row>,
    methods: &'static [&'static str],
    header: String,
    /// What the administrator pasted, kept when it is refused.
    csv: String,
}

fn admin_only(p: &Person) -> Result<(), CareError> {
    match p.caller.actor.who {
        Who::Admin => Ok(()),
        _ => Err(CareError::App(AppError::Forbidden(
            "the community directory is kept by administrators".into(),
        ))),
    }
}

async fn view(
    s: &AppState,
    p: &Person,
    note: Option<String>,
    csv: String,
) -> Result<DirectoryPage, CareError> {
    admin_only(p)?;
    let t = p.t();
    let rows = s
        .social
        .directory(&p.caller)
        .await?
        .into_iter()
        .map(|l| Row {
            id: l.row.service_id.clone(),
            version: l.version,
            organization: l.row.organization.clone(),
            service: l.row.service.clone(),
            needs: l
                .row
                .needs
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            languages: l.row.languages.join(";"),
            hours: l.row.hours.clone(),
            phone: l.row.phone.clone(),
            email: l.row.email.clone(),
            refer_by: l.row.refer_by.clone(),
            active: l.active,
        })
        .collect();
    Ok(DirectoryPage {
        f: p.frame(t.t("directory-title"), note, None),
        rows,
        methods: &METHODS,
        header: COLUMNS.join(","),
        csv,
    })
}

async fn page(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<crate::shell::Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    match view(&s, &p, crate::shell::note(&t, &q), String::new()).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => failed(&t, e),
    }
}

async fn again(s: &AppState, p: &Person, e: CareError, csv: String) -> Response {
    show_refusal(&p.t(), e, view(s, p, None, csv)).await
}

async fn load(
    State(s): State<AppState>,
    session: Session,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = admin_only(&p) {
        return failed(&p.t(), e);
    }
    let csv = f.one("csv").to_string();
    match s.social.load_directory_csv(&p.caller, csv.as_bytes()).await {
        Ok(_) => back_to("/admin/directory", "note-directory-loaded"),
        Err(e) => again(&s, &p, e, csv).await,
    }
}

async fn save(
    State(s): State<AppState>,
    session: Session,
    Path(service): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = admin_only(&p) {
        return failed(&p.t(), e);
    }
    // The organisation's own fields stay as they are; the row's come from the form.
    let listed = match s.social.directory(&p.caller).await {
        Ok(all) => all.into_iter().find(|l| l.row.service_id == service),
        Err(e) => return failed(&p.t(), e),
    };
    let Some(listed) = listed else {
        return failed(
            &p.t(),
            CareError::App(AppError::NotFound(format!("HealthcareService/{service}"))),
        );
    };
    let split = |k: &str| -> Vec<String> {
        f.one(k)
            .split(';')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let needs = split("needs");
    let Some(needs) = needs
        .iter()
        .map(|n| Domain::parse(n))
        .collect::<Option<Vec<_>>>()
    else {
        let e = CareError::Input {
            key: "directory-refused",
            args: vec![(
                "why",
                format!(
                    "'{}' is not a need (one of: {})",
                    f.one("needs"),
                    Domain::ALL.map(Domain::as_str).join(", ")
                ),
            )],
            english: "not a need".into(),
        };
        return again(&s, &p, e, String::new()).await;
    };
    let row = ServiceRow {
        service: f.one("service").trim().to_string(),
        needs,
        languages: split("languages"),
        hours: f.one("hours").trim().to_string(),
        phone: f.one("phone").trim().to_string(),
        email: f.one("email").trim().to_string(),
        refer_by: f.one("refer_by").to_string(),
        ..listed.row
    };
    let version = f.one("version").parse().unwrap_or(-1);
    match s
        .social
        .save_service(&p.caller, &row, f.one("active") == "yes", version)
        .await
    {
        Ok(()) => back_to(
            &format!("/admin/directory#service-{service}"),
            "note-directory-saved",
        ),
        Err(e) => again(&s, &p, e, String::new()).await,
    }
}

impl crate::shell::Framed for DirectoryPage {
    fn frame_mut(&mut self) -> &mut Frame {
        &mut self.f
    }
}
