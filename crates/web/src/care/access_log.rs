//! The patient's access log as a page: who has opened or changed their record, in their
//! language and plain words, newest first. Only the patient reads it.

use super::*;

#[derive(Template)]
#[template(path = "access_log.html")]
pub(crate) struct AccessLogPage {
    pub(crate) f: Frame,
    pub(crate) pid: String,
    pub(crate) lines: Vec<(String, String)>,
}

pub(crate) async fn access_log_page(
    State(s): State<AppState>,
    session: Session,
    Path(pid): Path<String>,
) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let (rows, names) = match s.api.access_rows(&p.caller, &pid, 200).await {
        Ok(found) => found,
        Err(e) => return failed(&t, CareError::App(e)),
    };
    let page = AccessLogPage {
        f: p.frame(t.t("access-log-title"), None, None),
        pid,
        lines: rows
            .iter()
            .map(|r| {
                (
                    t.when(coproduce_core::from_unix_millis(r.entry.at)),
                    coproduce_app::audit_events::in_words(r, &t, &names),
                )
            })
            .collect(),
    };
    render(&page, StatusCode::OK)
}
