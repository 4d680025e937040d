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
}

pub(crate) async fn measure_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    m: Measure,
    note: Option<String>,
    error: Option<String>,
    entered: EnteredReading,
) -> Result<MeasurePage, CareError> {
    let t = p.t();
    let chart = s.care.chart(&p.caller, pid).await?;
    let card = measure_card(s, &t, &chart, m, true);
    let mut rows: Vec<ReadingRow> = chart
        .readings_of(m)
        .map(|r| ReadingRow {
            id: r.id.clone(),
            at: t.when(r.at),
            value: value_label(m, &r.value),
            by: r.by.clone(),
            unreviewed: r.unreviewed,
            review: r.review.as_ref().map(|rv| {
                t.with(
                    "reviewed-by",
                    &[("who", rv.by.clone()), ("when", t.when(rv.at))],
                )
            }),
            comment: r.review.as_ref().and_then(|rv| rv.comment.clone()),
            standing_class: match standing_of(s, &chart, m, &r.value) {
                Some((true, _)) => "in-range",
                Some((false, _)) => "out-of-range",
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
    })
}

pub(crate) async fn measure_page(
    State(s): State<AppState>,
    session: Session,
    Path((pid, measure)): Path<(String, String)>,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let Some(m) = Measure::parse(&measure) else {
        return failed(&t, CareError::App(AppError::NotFound(measure)));
    };
    let note = note(&t, &q);
    match measure_view(&s, &p, &pid, m, note, None, EnteredReading::default()).await {
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
            match measure_view(s, p, pid, m, None, Some(e), entered).await {
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
        Ok(_) => back_to(
            &format!("/patients/{pid}/readings/{}", m.as_str()),
            "note-reading-saved",
        ),
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
