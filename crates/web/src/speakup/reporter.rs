//! The signed-in patient's and family member's Speak Up: the form (with the choice to leave
//! their name off), the concerns they raised with their name, one concern with its answer, and
//! whether they felt heard. Team members are sent to the team's list.

use super::*;
use coproduce_app::speakup::{Follower, Reporter};
use coproduce_core::access::Who;
use coproduce_core::speakup::Heard;

#[derive(Template)]
#[template(path = "speakup_mine.html")]
pub(crate) struct MinePage {
    f: Frame,
    units: Vec<(String, String)>,
    categories: Vec<(String, String)>,
    feedback_categories: Vec<(String, String)>,
    form: ConcernForm,
    mine: Vec<(String, String, String, String, &'static str)>,
}

fn is_reporter(p: &Person) -> bool {
    matches!(p.caller.actor.who, Who::Patient { .. } | Who::Family { .. })
}

async fn mine_view(
    s: &AppState,
    p: &Person,
    form: ConcernForm,
    note: Option<String>,
    error: Option<String>,
) -> Result<MinePage, CareError> {
    let t = p.t();
    let units = s
        .speakup
        .units()
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let mine = s
        .speakup
        .mine(&p.caller)
        .await?
        .iter()
        .map(|v| {
            let (stage, class) = stage_label(&t, v.stage);
            (
                v.record.id.clone(),
                t.when_zoned(v.record.concern.raised_at),
                category_label(&t, &v.record.concern.category),
                stage,
                class,
            )
        })
        .collect();
    Ok(MinePage {
        f: p.frame(t.t("speakup-title"), note, error),
        units,
        categories: categories(s, &t),
        feedback_categories: feedback_categories(s, &t),
        form,
        mine,
    })
}

pub(crate) async fn mine_page(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<crate::shell::Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !is_reporter(&p) {
        return Redirect::to("/team/concerns").into_response();
    }
    let t = p.t();
    match mine_view(&s, &p, ConcernForm::default(), note(&t, &q), None).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => failed(&t, e),
    }
}

pub(crate) async fn raise(
    State(s): State<AppState>,
    session: Session,
    form: Result<Form<ConcernForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = p.t();
    let anonymous = f.anonymous.is_some();
    let unit = f.unit.clone();
    match s
        .speakup
        .raise(
            Reporter::SignedIn(&p.caller),
            f.concern(&unit, anonymous, p.lang),
        )
        .await
    {
        // A concern with their name: its page, where the answer will be.
        Ok(r) if r.claim_code.is_none() && r.urgency == Urgency::Routine => {
            back_to(&format!("/speakup/{}", r.id), "note-concern-raised")
        }
        Ok(r) => render(&raised_page(&s, &t, &r, "/speakup".into()), StatusCode::OK),
        Err(e) => again_with(&t, e, |msg| mine_view(&s, &p, f, None, Some(msg))).await,
    }
}

#[derive(Template)]
#[template(path = "speakup_concern.html")]
pub(crate) struct ConcernPage {
    f: Frame,
    tr: Tr,
    id: String,
    concern: ReporterConcern,
}

async fn concern_view(
    s: &AppState,
    p: &Person,
    id: &str,
    note: Option<String>,
    error: Option<String>,
) -> Result<ConcernPage, CareError> {
    let t = p.t();
    let v = s
        .speakup
        .follow(Follower::SignedIn {
            caller: &p.caller,
            id,
        })
        .await?;
    Ok(ConcernPage {
        f: p.frame(t.t("speakup-title"), note, error),
        concern: reporter_concern(&t, &v),
        id: id.to_string(),
        tr: t,
    })
}

pub(crate) async fn concern_page(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<crate::shell::Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    match concern_view(&s, &p, &id, note(&t, &q), None).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => refused_page(&t, e),
    }
}

pub(crate) async fn heard(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = p.t();
    let result = match Heard::parse(f.one("heard")) {
        Some(h) => {
            s.speakup
                .felt_heard(
                    Follower::SignedIn {
                        caller: &p.caller,
                        id: &id,
                    },
                    h,
                    f.one("comment"),
                )
                .await
        }
        None => Err(CareError::Input {
            key: "speakup-heard-choose",
            english: "choose yes, partly or no".into(),
            args: Vec::new(),
        }),
    };
    match result {
        Ok(()) => back_to(&format!("/speakup/{id}"), "note-concern-heard"),
        Err(e) => again_with(&t, e, |msg| concern_view(&s, &p, &id, None, Some(msg))).await,
    }
}
