//! The readings of one measure (entry form, list, plot, target) and the handlers that add,
//! upload, export and review readings.

use super::*;

#[derive(Template)]
#[template(path = "measure.html")]
pub(crate) struct MeasurePage {
    pub(crate) f: Frame,
    pub(crate) pid: String,
    pub(crate) name: String,
    pub(crate) card: MeasureCard,
    pub(crate) two_values: bool,
    pub(crate) units: Vec<Choice>,
    pub(crate) rows: Vec<ReadingRow>,
    /// Whether this person signs readings off (clinical roles only).
    pub(crate) can_review: bool,
    pub(crate) entered: EnteredReading,
    /// What to do now, for a reading just recorded that needs it.
    pub(crate) act_now: Option<ActNowBox>,
    pub(crate) calls: crate::shell::Calls,
}

/// What the patient (or the family member helping them) does now about a reading that needs
/// a response: the steps in their language, and the numbers to call as links that dial.
pub(crate) struct ActNowBox {
    pub(crate) class: &'static str,
    pub(crate) title: String,
    pub(crate) intro: Option<String>,
    pub(crate) steps: Vec<String>,
    pub(crate) told: Option<String>,
}

/// The box for a reading that needs a response now: the steps `core` gives for its alert, in
/// the reader's language, and whether the team was told.
pub(crate) fn act_now_box(
    t: &Tr,
    phones: &crate::Phones,
    alert: Alert,
    family_of: Option<&str>,
) -> ActNowBox {
    let e = [("emergency", phones.emergency.clone())];
    let steps: Vec<String> = alert.what_to_do().iter().map(|k| t.with(k, &e)).collect();
    let told = alert.same_day().then(|| match family_of {
        Some(name) => t.arg("alert-team-told-family", "name", name),
        None => t.t("alert-team-told"),
    });
    ActNowBox {
        class: if alert.is_low() { "low" } else { "" },
        title: t.t(&format!("alert-now-title-{}", alert.as_str())),
        intro: family_of.map(|name| t.arg("alert-now-family", "name", name)),
        steps,
        told,
    }
}

/// The measure page's query: the note after a change, and the reading just recorded.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MeasureQuery {
    #[serde(default)]
    pub(crate) ok: Option<String>,
    #[serde(default)]
    pub(crate) reading: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct EnteredReading {
    pub(crate) value: String,
    pub(crate) value2: String,
    pub(crate) unit: String,
    pub(crate) at: String,
}

pub(crate) struct ReadingRow {
    pub(crate) id: String,
    pub(crate) at: String,
    pub(crate) value: String,
    pub(crate) by: String,
    pub(crate) unreviewed: bool,
    pub(crate) review: Option<String>,
    pub(crate) comment: Option<String>,
    pub(crate) standing_class: &'static str,
    pub(crate) badge: Option<(String, &'static str)>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn measure_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    m: Measure,
    note: Option<String>,
    error: Option<String>,
    entered: EnteredReading,
    just_recorded: Option<&str>,
) -> Result<MeasurePage, CareError> {
    let t = p.t();
    let chart = s.care.chart(&p.caller, pid).await?;
    let card = measure_card(s, &t, &chart, m, true);
    let own = chart.own_target(m);
    // The patient's side reads what to do now about a reading they just recorded.
    let family_of = matches!(p.role(), Some(Role::Family)).then_some(chart.name.as_str());
    let act_now = just_recorded
        .filter(|_| matches!(p.role(), Some(Role::Patient | Role::Family)))
        .and_then(|id| chart.readings_of(m).find(|r| r.id == id))
        .and_then(|r| s.care.alert(r))
        .map(|a| act_now_box(&t, &s.config.phones, a, family_of));
    let mut rows: Vec<ReadingRow> = chart
        .readings_of(m)
        .map(|r| ReadingRow {
            badge: badge_of(s, &t, own, m, &r.value),
            id: r.id.clone(),
            at: t.when(r.at),
            value: value_label(&t, m, &r.value),
            by: r.by.clone(),
            unreviewed: r.unreviewed,
            review: r.review.as_ref().map(|rv| {
                t.with(
                    "reviewed-by",
                    &[("who", rv.by.clone()), ("when", t.when(rv.at))],
                )
            }),
            comment: r.review.as_ref().and_then(|rv| rv.comment.clone()),
            standing_class: match s.care.targets.standing(m, &r.value, own) {
                Some(Standing::Below) => "low",
                Some(Standing::Above) => "high",
                Some(Standing::InRange) => "in-range",
                None => "",
            },
        })
        .collect();
    rows.truncate(200);
    Ok(MeasurePage {
        f: p.frame(card.title.clone(), note, error),
        pid: pid.to_string(),
        name: chart.name,
        two_values: m == Measure::BloodPressure,
        units: m
            .units()
            .iter()
            .map(|u| Choice {
                value: u.ucum.into(),
                label: u.label.into(),
            })
            .collect(),
        card,
        rows,
        can_review: p
            .role()
            .is_some_and(coproduce_core::care::readings::may_review),
        entered,
        act_now,
        calls: crate::shell::calls(&t, &s.config.phones),
    })
}

pub(crate) async fn measure_page(
    State(s): State<AppState>,
    session: Session,
    Path((pid, measure)): Path<(String, String)>,
    Query(q): Query<MeasureQuery>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let Some(m) = Measure::parse(&measure) else {
        return failed(&t, CareError::App(AppError::NotFound(measure)));
    };
    let note = note(&t, &Note { ok: q.ok });
    let page = measure_view(
        &s,
        &p,
        &pid,
        m,
        note,
        None,
        EnteredReading::default(),
        q.reading.as_deref(),
    );
    match page.await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => failed(&t, e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReadingForm {
    pub(crate) csrf: String,
    pub(crate) measure: String,
    #[serde(default)]
    pub(crate) value: String,
    #[serde(default)]
    pub(crate) value2: String,
    #[serde(default)]
    pub(crate) unit: String,
    /// A datetime-local value ("2026-11-20T08:30"); empty means now.
    #[serde(default)]
    pub(crate) at: String,
}

pub(crate) async fn add_reading(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<ReadingForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let t = p.t();
    let Some(m) = Measure::parse(&f.measure) else {
        return unreadable();
    };
    let entered = EnteredReading {
        value: f.value.clone(),
        value2: f.value2.clone(),
        unit: f.unit.clone(),
        at: f.at.clone(),
    };
    let again = |e: String| {
        let (s, p, pid, entered) = (&s, &p, &pid, entered.clone());
        async move {
            match measure_view(s, p, pid, m, None, Some(e), entered, None).await {
                Ok(page) => render(&page, StatusCode::UNPROCESSABLE_ENTITY),
                Err(e) => failed(&p.t(), e),
            }
        }
    };
    let mut values = Vec::new();
    for v in [&f.value, &f.value2]
        .into_iter()
        .take(if m == Measure::BloodPressure { 2 } else { 1 })
    {
        match parse_number(v) {
            Ok(x) => values.push(x),
            Err(e) => return again(t.with(e.key(), &e.args())).await,
        }
    }
    let Some(at) = coproduce_app::care::parse_when(&f.at, s.care.now(), &p.calendar) else {
        return again(t.t("reading-bad-time")).await;
    };
    let r = NewReading {
        measure: m,
        values,
        unit: f.unit.clone(),
        at,
    };
    match s.care.record_reading(&p.caller, &pid, &r).await {
        // The page names the new reading, so that it can say what to do now about it.
        Ok(saved) => Redirect::to(&format!(
            "/patients/{pid}/readings/{}?ok={}&reading={}",
            m.as_str(),
            if matches!(p.role(), Some(Role::Patient)) {
                "note-reading-saved"
            } else {
                "note-reading-saved-other"
            },
            saved.id
        ))
        .into_response(),
        Err(e) => match refusal(&t, &e) {
            Some(msg) => again(msg).await,
            None => failed(&t, e),
        },
    }
}

pub(crate) async fn upload_readings(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(mut multipart) = multipart else {
        return unreadable();
    };
    let mut csrf = String::new();
    let mut file = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                match field.bytes().await {
                    Ok(b) if name == "csrf" => csrf = String::from_utf8_lossy(&b).into_owned(),
                    Ok(b) if name == "file" => file = b.to_vec(),
                    Ok(_) => {}
                    Err(_) => return unreadable(),
                }
            }
            Ok(None) => break,
            Err(_) => return unreadable(),
        }
    }
    if !csrf_ok(&session, &csrf).await {
        return csrf_refused();
    }
    let result = match parse_csv(&file, s.care.now(), &p.calendar) {
        Ok(rows) => s.care.record_readings(&p.caller, &pid, &rows).await,
        Err(e) => Err(e),
    };
    let result = result.map(|_| ());
    after_change(
        &s,
        &p,
        &pid,
        result,
        &format!("/patients/{pid}"),
        "note-readings-uploaded",
    )
    .await
}

pub(crate) async fn export_readings(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = async {
        let chart = s.care.chart(&p.caller, &pid).await?;
        readings_csv(&chart.readings)
    }
    .await;
    match result {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"readings-{pid}.csv\""),
                ),
            ],
            text,
        )
            .into_response(),
        Err(e) => failed(&p.t(), e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReviewForm {
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) comment: String,
    #[serde(default)]
    pub(crate) back: String,
}

pub(crate) async fn review(
    State(s): State<AppState>,
    session: Session,
    Path((pid, oid)): Path<(String, String)>,
    form: Result<Form<ReviewForm>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let result = s
        .care
        .review_reading(&p.caller, &pid, &oid, &f.comment)
        .await
        .map(|_| ());
    after_change(&s, &p, &pid, result, safe_back(&f.back), "note-reviewed").await
}

crate::shell::csrf_forms!(ReadingForm, ReviewForm);
