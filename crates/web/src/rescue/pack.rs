//! The pack's pages: the patient's action plan and pack (start it within three taps of
//! home: the button, a symptom, "Start"), the check-in as one question, and the team's
//! actions on a pack (eligibility, teach-back, dispensing, contact, check-in, outcome,
//! replacement, personal notes on the zones).

use super::*;

#[derive(Template)]
#[template(path = "rescue_pack.html")]
pub(crate) struct PackPage {
    pub(crate) f: Frame,
    pub(crate) pid: String,
    pub(crate) name: String,
    pub(crate) team: bool,
    pub(crate) title: String,
    /// Key, heading, text, emergency, and the clinician's note for this patient.
    pub(crate) zones: Vec<(String, String, String, bool, String)>,
    pub(crate) can_personalise: bool,
    pub(crate) stage: String,
    pub(crate) stage_class: &'static str,
    pub(crate) status: Vec<String>,
    pub(crate) can_start: bool,
    pub(crate) check_in: bool,
    pub(crate) not_better: bool,
    /// The numbers to call, under the red zone and the "not better" message.
    pub(crate) calls: crate::shell::Calls,
    pub(crate) history: Vec<EventLine>,
    pub(crate) deadlines: Vec<DeadlineLine>,
    /// Which team forms to show.
    pub(crate) can_eligible: bool,
    pub(crate) can_teach: bool,
    pub(crate) can_dispense: bool,
    pub(crate) can_contact: bool,
    pub(crate) can_team_check_in: bool,
    pub(crate) can_outcome: bool,
    pub(crate) can_replace: bool,
    pub(crate) drugs: Vec<(String, String)>,
    pub(crate) outcomes: Vec<(String, String)>,
    pub(crate) checkins: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "rescue_start.html")]
pub(crate) struct StartPage {
    pub(crate) f: Frame,
    pub(crate) pid: String,
    pub(crate) symptoms: Vec<(String, String)>,
    pub(crate) drugs: Vec<(String, String)>,
    pub(crate) red: String,
    pub(crate) calls: crate::shell::Calls,
}

pub(crate) async fn pack_view(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
    error: Option<String>,
) -> Result<PackPage, CareError> {
    let t = p.t();
    let chart = s.care.chart(&p.caller, pid).await?;
    let current = s.rescue.active(&p.caller, pid).await?;
    let in_hand_ready = ready_in_hand(s, p, pid).await?;
    let now = s.rescue.now();
    let role = p.role();
    let team = role.is_some_and(Role::is_team);
    let own_side = matches!(role, Some(Role::Patient | Role::Family));
    let rules = &s.rescue.protocol.rules;
    let lang = t.lang;
    let proto = &s.rescue.protocol;
    let personal = s
        .rescue
        .action_plan(&p.caller, pid)
        .await?
        .map(|(_, _, notes)| notes)
        .unwrap_or_default();
    let zones = proto
        .zones
        .iter()
        .map(|z| {
            (
                z.key.clone(),
                z.heading.get(lang).to_string(),
                z.text.get(lang).to_string(),
                z.emergency,
                personal
                    .iter()
                    .find(|(k, _)| *k == z.key)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let (stage, stage_class) = stage_label(&t, current.as_ref().map_or(Stage::New, |c| c.stage));
    // What this person may record on the pack now, as core decides it.
    let today = now.date();
    let empty = coproduce_core::rescue::Pack::default();
    let pack = current.as_ref().map_or(&empty, |c| &c.pack);
    let may = |kind: &str| role.is_some_and(|r| pack.may(rules, r, kind, today));
    let viewer = Viewer {
        role,
        me: p.caller.fhir_ref.as_deref(),
        patient_name: &chart.name,
    };
    let page = PackPage {
        calls: crate::shell::calls(&t, &s.config.phones),
        pid: pid.to_string(),
        name: chart.name.clone(),
        team,
        title: proto.title.get(lang).to_string(),
        zones,
        stage,
        stage_class,
        status: current
            .as_ref()
            .map(|c| status_lines(&t, c, now, &viewer))
            .unwrap_or_else(|| vec![t.t("rescue-status-none")]),
        can_start: own_side && in_hand_ready,
        check_in: own_side
            && current
                .as_ref()
                .is_some_and(|c| c.check_in_open(rules.check_in_opens, &s.rescue.calendar, now)),
        not_better: current
            .as_ref()
            .and_then(|c| c.pack.check_in())
            .is_some_and(|(a, _)| a != CheckIn::Better),
        history: current
            .as_ref()
            .map(|c| history(s, &t, c, &viewer))
            .unwrap_or_default(),
        deadlines: current
            .as_ref()
            .map(|c| c.open_deadlines().map(|d| deadline_line(&t, d)).collect())
            .unwrap_or_default(),
        can_personalise: role.is_some_and(|r| s.rescue.may_personalise(r)),
        can_eligible: may("eligible"),
        can_teach: may("taught-back"),
        can_dispense: may("dispensed"),
        can_contact: team && may("contacted"),
        can_team_check_in: team && may("checked-in"),
        can_outcome: may("outcome"),
        can_replace: may("replaced"),
        drugs: proto
            .drugs
            .iter()
            .map(|d| (d.key.clone(), d.text.get(lang).to_string()))
            .collect(),
        outcomes: choices(&t, "outcome", Outcome::ALL.map(Outcome::as_str)),
        checkins: choices(&t, "checkin", CheckIn::ALL.map(CheckIn::as_str)),
        f: p.frame(proto.title.get(lang).to_string(), note, error),
    };
    Ok(page)
}

pub(crate) async fn show(
    s: &AppState,
    p: &Person,
    pid: &str,
    note: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    match pack_view(s, p, pid, note, error).await {
        Ok(page) => render(&page, status),
        Err(e) => failed(&p.t(), e),
    }
}

pub(crate) async fn pack_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    Query(q): Query<Note>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let n = note(&p.t(), &q);
    show(&s, &p, &pid, n, None, StatusCode::OK).await
}

pub(crate) fn start_view(s: &AppState, p: &Person, pid: &str, error: Option<String>) -> StartPage {
    let t = p.t();
    let proto = &s.rescue.protocol;
    let lang = t.lang;
    StartPage {
        calls: crate::shell::calls(&t, &s.config.phones),
        f: p.frame(t.t("rescue-start-title"), None, error),
        pid: pid.to_string(),
        symptoms: proto
            .symptoms
            .iter()
            .map(|x| (x.key.clone(), x.text.get(lang).to_string()))
            .collect(),
        drugs: proto
            .drugs
            .iter()
            .map(|d| (d.key.clone(), d.text.get(lang).to_string()))
            .collect(),
        red: proto
            .zones
            .iter()
            .find(|z| z.emergency)
            .map(|z| z.text.get(lang).to_string())
            .unwrap_or_default(),
    }
}

pub(crate) async fn start_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    render(&start_view(&s, &p, &pid, None), StatusCode::OK)
}

pub(crate) async fn start(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = s.rescue.now();
    let hours: i64 = f.one("since").parse().unwrap_or(0);
    let event = Event::Started {
        symptoms: f.all("symptom"),
        since: now - time::Duration::hours(hours.clamp(0, 24 * 30)),
        taken: f.all("taken"),
    };
    // A start is on the pack in hand, even while an earlier episode awaits its outcome.
    let result = match s.rescue.current(&p.caller, &pid).await {
        Ok(pack) => {
            let id = pack.map(|c| c.id);
            s.rescue
                .record(&p.caller, &pid, id.as_deref(), event)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => back_to(
            &format!("/patients/{pid}/rescue-pack"),
            "note-rescue-started",
        ),
        Err(e) => match refusal(&p.t(), &e) {
            Some(msg) => render(
                &start_view(&s, &p, &pid, Some(msg)),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            None => failed(&p.t(), e),
        },
    }
}

pub(crate) async fn check_in(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = async {
        let answer = CheckIn::parse(f.one("answer")).ok_or_else(|| input("check-in-answer"))?;
        let id = current_id(&s, &p, &pid).await?;
        s.rescue
            .record(&p.caller, &pid, id.as_deref(), Event::CheckedIn { answer })
            .await
            .map(|_| ())
    }
    .await;
    after(&s, &p, &pid, result, "note-rescue-checked-in").await
}

/// The team's actions on a pack, one form each (field `event`).
pub(crate) async fn record(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let back = f.one("back").to_string();
    let result = async {
        let items = |f: &Pairs| -> Result<Vec<Item>, CareError> {
            s.rescue
                .protocol
                .drugs
                .iter()
                .map(|d| {
                    let date = f.one(&format!("expires-{}", d.key));
                    parse_date(date)
                        .map(|expires| Item {
                            drug: d.key.clone(),
                            expires,
                        })
                        .ok_or_else(|| input("dispense-expiry"))
                })
                .collect()
        };
        let event = match f.one("event") {
            "eligible" => Event::Eligible {
                reason: f.one("reason").to_string(),
            },
            "taught-back" => Event::TaughtBack,
            "dispensed" => Event::Dispensed { items: items(&f)? },
            "replaced" => Event::Replaced { items: items(&f)? },
            "contacted" => Event::Contacted {
                note: f.one("note").to_string(),
            },
            "checked-in" => Event::CheckedIn {
                answer: CheckIn::parse(f.one("answer")).ok_or_else(|| input("check-in-answer"))?,
            },
            "outcome" => Event::Outcome {
                outcome: Outcome::parse(f.one("outcome")).ok_or_else(|| input("outcome-choose"))?,
            },
            _ => return Err(input("rescue-unknown-action")),
        };
        let id = if matches!(event, Event::Eligible { .. }) {
            None
        } else {
            current_id(&s, &p, &pid).await?
        };
        s.rescue
            .record(&p.caller, &pid, id.as_deref(), event)
            .await
            .map(|_| ())
    }
    .await;
    if back == "team" && result.is_ok() {
        return back_to("/team/rescue-packs", "note-rescue-recorded");
    }
    after(&s, &p, &pid, result, "note-rescue-recorded").await
}

/// The clinician's personal notes on the zones (fields `zone-{key}`).
pub(crate) async fn personalise(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let (p, f) = match person_form(&s, &session, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let notes: Vec<(String, String)> =
        f.0.iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("zone-")?.to_string(), v.clone())))
            .collect();
    let result = s.rescue.personalise(&p.caller, &pid, &notes).await;
    after(&s, &p, &pid, result, "note-rescue-recorded").await
}
