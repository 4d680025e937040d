//! The search-parameter parser: a query string (`name=value&...`) for a type named by the
//! first line is a query or an OperationOutcome, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (rt, query) = text.split_once('\n').unwrap_or(("Observation", text));
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect();
    let _ = coproduce_fhir::query::SearchQuery::parse(rt.trim(), &params);
});
