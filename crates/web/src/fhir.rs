//! The FHIR REST routes.

use crate::AppState;
use crate::auth::Authenticated;
use crate::bundle::{Bundle, Entry};
use crate::errors::{ApiError, FHIR_JSON, body_rejection};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use coproduce_app::Stored;
use coproduce_app::accounts::Caller;
use coproduce_app::fhir_api::{parse_etag, query_pairs};
use coproduce_fhir::schema::{SearchType, r4};
use coproduce_fhir::{IssueCode, OperationOutcome};
use serde_json::{Value, json};

/// Every FHIR route: its path, how it is served, and whether it is public. The router is
/// built from this table, and the tests walk it, so no route can escape the access checks.
pub fn route_table() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    vec![
        ("/", post(bundle), false),
        ("/metadata", get(metadata), true),
        ("/{rt}", get(search).post(create), false),
        ("/{rt}/_search", post(search_post), false),
        ("/{rt}/_history", get(type_history), false),
        ("/{rt}/{id}", get(read).put(update).delete(delete), false),
        ("/{rt}/{id}/_history", get(instance_history), false),
        ("/{rt}/{id}/_history/{vid}", get(vread), false),
    ]
}

pub fn routes() -> Router<AppState> {
    route_table()
        .into_iter()
        .fold(Router::new(), |r, (path, handler, _)| {
            r.route(path, handler)
        })
}

type Result<T> = std::result::Result<T, ApiError>;

/// The FHIR base as the site publishes it (`public_url` in the configuration), for links and
/// locations: never taken from the request's Host header, which the client chooses.
fn base_url(s: &AppState) -> String {
    format!("{}/fhir", s.config.public_url.trim_end_matches('/'))
}

fn http_date(ms: i64) -> String {
    let t = coproduce_core::from_unix_millis(ms);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn fhir_response(status: StatusCode, body: &Value) -> Response {
    fhir_text(status, body.to_string())
}

/// JSON text already written (a stored resource) as a FHIR response.
fn fhir_text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response()
}

/// A stored resource with its ETag and Last-Modified (and Location when created).
fn resource_response(
    status: StatusCode,
    stored: &Stored,
    location: Option<String>,
) -> Result<Response> {
    // The stored JSON is what the store serialized, meta included: it is sent as it is,
    // checked to be JSON (a corrupt row is a 500, never sent on) but not built into a tree
    // and written out again.
    let body = stored
        .json_text()
        .map_err(coproduce_app::AppError::from)?
        .to_string();
    let mut resp = fhir_text(status, body);
    let h = resp.headers_mut();
    if let Ok(v) = format!("W/\"{}\"", stored.version_id).parse() {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = http_date(stored.last_updated).parse() {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Some(loc) = location.and_then(|l| l.parse().ok()) {
        h.insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// Refuses bodies that are not FHIR JSON (XML is not supported).
fn check_content_type(headers: &HeaderMap) -> Result<()> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
    {
        let ct = ct.to_ascii_lowercase();
        if !(ct.starts_with("application/fhir+json") || ct.starts_with("application/json")) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                IssueCode::NotSupported,
                format!("this server reads application/fhir+json, not {ct}"),
            ));
        }
    }
    Ok(())
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>> {
    match headers.get(header::IF_MATCH).and_then(|h| h.to_str().ok()) {
        None => Ok(None),
        Some(v) => parse_etag(v).map(Some).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                IssueCode::Value,
                format!("If-Match '{v}' is not an ETag such as W/\"3\""),
            )
        }),
    }
}

async fn metadata(State(s): State<AppState>) -> Response {
    let schema = r4();
    let mut types: Vec<&str> = schema.resource_types().collect();
    types.sort_unstable();
    let resources: Vec<Value> = types
        .iter()
        .map(|rt| {
            let mut params: Vec<Value> = schema
                .search_params(rt)
                .map(|p| {
                    p.iter()
                        .filter(|(_, d)| {
                            !matches!(d.kind, SearchType::Quantity | SearchType::Number)
                        })
                        .map(|(name, d)| {
                            let kind = match d.kind {
                                SearchType::Token => "token",
                                SearchType::Reference => "reference",
                                SearchType::Date => "date",
                                SearchType::String => "string",
                                SearchType::Uri => "uri",
                                SearchType::Quantity => "quantity",
                                SearchType::Number => "number",
                            };
                            json!({"name": name, "type": kind})
                        })
                        .collect()
                })
                .unwrap_or_default();
            params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            let includes: Vec<String> = schema
                .search_params(rt)
                .map(|p| {
                    let mut v: Vec<String> = p
                        .iter()
                        .filter(|(_, d)| d.kind == SearchType::Reference)
                        .map(|(n, _)| format!("{rt}:{n}"))
                        .collect();
                    v.sort();
                    v
                })
                .unwrap_or_default();
            let interactions: Vec<Value> = [
                "read",
                "vread",
                "update",
                "delete",
                "history-instance",
                "history-type",
                "create",
                "search-type",
            ]
            .iter()
            .map(|c| json!({"code": c}))
            .collect();
            json!({
                "type": rt,
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "searchInclude": includes,
                "searchParam": params,
            })
        })
        .collect();
    let body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "kind": "instance",
        "software": {"name": "coproduce", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": format!("coproduce FHIR R4 server on {}", s.api.backend_name())},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Search: _id, _lastUpdated and the token, reference, date, string and uri parameters listed per type; _count (at most 1000), _offset paging, _sort on _lastUpdated, _id and date parameters, _include and _revinclude on reference parameters, _summary=count, _total=accurate (otherwise Bundle.total is given only on the last page). Unknown parameters are refused with 400.",
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
        }],
    });
    fhir_response(StatusCode::OK, &body)
}

async fn create(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(rt): Path<String>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    check_content_type(&headers)?;
    let body = body.map_err(body_rejection)?;
    let cond = headers.get("if-none-exist").and_then(|h| h.to_str().ok());
    let w = s.api.create(&caller, &rt, &body, cond).await?;
    let status = if w.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let loc = format!(
        "{}/{}/{}/_history/{}",
        base_url(&s),
        w.stored.resource_type,
        w.stored.id,
        w.stored.version_id
    );
    resource_response(status, &w.stored, Some(loc))
}

async fn update(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((rt, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    check_content_type(&headers)?;
    let body = body.map_err(body_rejection)?;
    let w = s
        .api
        .update(&caller, &rt, &id, &body, if_match(&headers)?)
        .await?;
    let status = if w.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let loc = format!(
        "{}/{}/{}/_history/{}",
        base_url(&s),
        w.stored.resource_type,
        w.stored.id,
        w.stored.version_id
    );
    resource_response(status, &w.stored, w.created.then_some(loc))
}

async fn read(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((rt, id)): Path<(String, String)>,
) -> Result<Response> {
    let stored = s.api.read(&caller, &rt, &id).await?;
    resource_response(StatusCode::OK, &stored, None)
}

async fn vread(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((rt, id, vid)): Path<(String, String, String)>,
) -> Result<Response> {
    let stored = s.api.vread(&caller, &rt, &id, &vid).await?;
    resource_response(StatusCode::OK, &stored, None)
}

async fn delete(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((rt, id)): Path<(String, String)>,
) -> Result<Response> {
    let v = s.api.delete(&caller, &rt, &id).await?;
    let msg = match v {
        Some(v) => format!("{rt}/{id} deleted (version {v})"),
        None => format!("{rt}/{id} was not there to delete; nothing changed"),
    };
    Ok(fhir_response(
        StatusCode::OK,
        &OperationOutcome::information(msg).to_json(),
    ))
}

async fn bundle(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    check_content_type(&headers)?;
    let body = body.map_err(body_rejection)?;
    let out = s.api.bundle(&caller, &body).await?;
    Ok(fhir_response(StatusCode::OK, &out))
}

async fn search(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(rt): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let params = query_pairs(q.as_deref().unwrap_or(""));
    run_search(&s, &caller, &rt, &headers, params).await
}

async fn search_post(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(rt): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let body = body.map_err(body_rejection)?;
    let mut params = query_pairs(q.as_deref().unwrap_or(""));
    params.extend(query_pairs(&String::from_utf8_lossy(&body)));
    run_search(&s, &caller, &rt, &headers, params).await
}

fn page_url(base: &str, rt: &str, params: &[(String, String)], offset: usize) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(k, _)| k != "_offset") {
        ser.append_pair(k, v);
    }
    ser.append_pair("_offset", &offset.to_string());
    format!("{base}/{rt}?{}", ser.finish())
}

async fn run_search(
    s: &AppState,
    caller: &Caller,
    rt: &str,
    headers: &HeaderMap,
    params: Vec<(String, String)>,
) -> Result<Response> {
    // `Prefer: handling=lenient`: parameters the server does not know are ignored (and
    // named in the answer) instead of refused.
    let lenient = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("handling=lenient"));
    let (params, ignored) = if lenient {
        coproduce_fhir::query::SearchQuery::lenient(rt, &params)
    } else {
        (params, Vec::new())
    };
    let (q, result) = s.api.search(caller, rt, &params).await?;
    let base = base_url(s);
    let mut links =
        vec![json!({"relation": "self", "url": page_url(&base, rt, &params, q.offset)})];
    if !q.summary_count && q.count > 0 {
        if result.more {
            links.push(json!({"relation": "next", "url": page_url(&base, rt, &params, q.offset + q.count)}));
        }
        if q.offset > 0 {
            links.push(json!({"relation": "previous", "url": page_url(&base, rt, &params, q.offset.saturating_sub(q.count))}));
        }
    }
    let mut bundle = Bundle::new("searchset", result.total, links);
    for (mode, list) in [("match", &result.matches), ("include", &result.included)] {
        for m in list {
            bundle.push(Entry::stored(&base, m)?.search(json!({"mode": mode})));
        }
    }
    let warning = (!ignored.is_empty()).then(|| {
        serde_json::value::to_raw_value(&json!({
            "resourceType": "OperationOutcome", "issue": [{
                "severity": "warning", "code": "not-supported",
                "diagnostics": format!("ignored (Prefer: handling=lenient): {}", ignored.join(", ")),
            }]
        }))
        .expect("a JSON value serializes")
    });
    if let Some(warning) = &warning {
        bundle.push(Entry::built(warning).search(json!({"mode": "outcome"})));
    }
    Ok(fhir_text(StatusCode::OK, bundle.text()))
}

async fn history_response(
    s: &AppState,
    caller: &Caller,
    rt: &str,
    id: Option<&str>,
    q: Option<String>,
) -> Result<Response> {
    let params = query_pairs(q.as_deref().unwrap_or(""));
    let (total, entries, count, offset) = s.api.history(caller, rt, id, &params).await?;
    let base = base_url(s);
    let path = match id {
        Some(id) => format!("{rt}/{id}/_history"),
        None => format!("{rt}/_history"),
    };
    let mut links =
        vec![json!({"relation": "self", "url": page_url(&base, &path, &params, offset)})];
    if offset + count < usize::try_from(total).unwrap_or(0) {
        links.push(
            json!({"relation": "next", "url": page_url(&base, &path, &params, offset + count)}),
        );
    }
    let mut bundle = Bundle::new("history", Some(total), links);
    for e in &entries {
        let st = &e.stored;
        let request = json!({"method": e.method, "url": if e.method == "POST" { st.resource_type.clone() } else { format!("{}/{}", st.resource_type, st.id) }});
        let response = json!({"status": if e.method == "DELETE" { "204" } else if st.version_id == 1 { "201" } else { "200" },
            "etag": format!("W/\"{}\"", st.version_id), "lastModified": st.last_updated_instant()});
        bundle.push(Entry::stored(&base, st)?.request(request, response));
    }
    Ok(fhir_text(StatusCode::OK, bundle.text()))
}

async fn type_history(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(rt): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    history_response(&s, &caller, &rt, None, q).await
}

async fn instance_history(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((rt, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    history_response(&s, &caller, &rt, Some(&id), q).await
}
