//! The plan's forms: propose or answer a goal, add an activity, mark one done.

use super::*;

#[derive(Debug, Deserialize)]
pub(crate) struct GoalForm {
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) text: String,
    #[serde(default)]
    pub(crate) target: String,
}

pub(crate) async fn propose_goal(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<GoalForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let t = p.t();
    let target = HbA1cTarget::parse(&f.target);
    match s.care.propose_goal(&p.caller, &pid, &f.text, target).await {
        Ok(_) => back_to(&format!("/patients/{pid}"), "note-goal-proposed"),
        Err(e) => match refusal(&t, &e) {
            Some(msg) => match chart_view(&s, &p, &pid, None, Some(msg)).await {
                Ok(mut page) => {
                    page.goal_text = f.text;
                    render(&page, StatusCode::UNPROCESSABLE_ENTITY)
                }
                Err(e) => failed(&t, e),
            },
            None => failed(&t, e),
        },
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AnswerForm {
    pub(crate) csrf: String,
    pub(crate) answer: String,
    #[serde(default)]
    pub(crate) words: String,
    #[serde(default)]
    pub(crate) target: String,
}

pub(crate) async fn answer_goal(
    State(s): State<AppState>,
    session: Session,
    Path((pid, gid)): Path<(String, String)>,
    form: Result<Form<AnswerForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let answer = match f.answer.as_str() {
        "agree" => GoalAnswer::Agree,
        "change" => GoalAnswer::SuggestChange(f.words.clone()),
        "decline" => GoalAnswer::Decline(f.words.clone()),
        _ => return unreadable(),
    };
    let target = HbA1cTarget::parse(&f.target);
    let result = s
        .care
        .answer_goal(&p.caller, &pid, &gid, answer, target)
        .await
        .map(|_| ());
    let back = format!("/patients/{pid}");
    after_change(&s, &p, &pid, result, &back, "note-goal-answered").await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActivityForm {
    pub(crate) csrf: String,
    pub(crate) text: String,
    pub(crate) owner: String,
    pub(crate) setting: String,
    /// "once" (with `due`) or a cadence: "d", "wk", "mo" (with `every`).
    pub(crate) when: String,
    #[serde(default)]
    pub(crate) due: String,
    #[serde(default)]
    pub(crate) every: String,
}

pub(crate) async fn add_activity(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<ActivityForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let t = p.t();
    let (Some(owner), Some(setting)) = (Owner::parse(&f.owner), Setting::parse(&f.setting)) else {
        return unreadable();
    };
    let schedule = if f.when == "once" {
        let date = time::Date::parse(
            f.due.trim(),
            &time::macros::format_description!("[year]-[month]-[day]"),
        );
        match date {
            Ok(d) => Schedule::By(
                d.with_hms(23, 59, 0)
                    .map(|x| x.assume_utc())
                    .unwrap_or(s.care.now()),
            ),
            Err(_) => {
                return show_chart(
                    &s,
                    &p,
                    &pid,
                    None,
                    Some(t.t("activity-bad-date")),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        }
    } else {
        let n: u32 = f.every.trim().parse().unwrap_or(0);
        match Cadence::from_fhir(n, &f.when) {
            Some(c) => Schedule::Every(c),
            None => {
                return show_chart(
                    &s,
                    &p,
                    &pid,
                    None,
                    Some(t.t("activity-bad-cadence")),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        }
    };
    let a = NewActivity {
        text: f.text,
        owner,
        setting,
        schedule,
    };
    let result = s.care.add_activity(&p.caller, &pid, &a).await.map(|_| ());
    after_change(
        &s,
        &p,
        &pid,
        result,
        &format!("/patients/{pid}"),
        "note-activity-added",
    )
    .await
}

pub(crate) async fn activity_done(
    State(s): State<AppState>,
    session: Session,
    Path((pid, index)): Path<(String, String)>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let (p, _) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let t = p.t();
    let Ok(index) = index.parse::<usize>() else {
        return failed(
            &t,
            CareError::App(AppError::NotFound(format!("activity {index}"))),
        );
    };
    let result = s.care.mark_done(&p.caller, &pid, index).await;
    after_change(
        &s,
        &p,
        &pid,
        result,
        &format!("/patients/{pid}"),
        "note-activity-done",
    )
    .await
}

crate::shell::csrf_forms!(GoalForm, AnswerForm, ActivityForm);
