//! FHIR search syntax: a request's parameters read into a [`SearchQuery`] the store runs.
//! Unknown parameters and modifiers are refused (a mistyped `patient` must never widen a
//! search to everyone).

use crate::outcome::{IssueCode, OperationOutcome};
use crate::primitives::date_range_millis;
use crate::schema::{SearchType, r4};

/// A date comparison prefix (`ge2026-01-01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrefix {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Sa,
    Eb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatch {
    StartsWith,
    Exact,
    Contains,
}

/// One search condition. Values inside one condition are alternatives (OR); conditions are
/// all required (AND).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Id(Vec<String>),
    LastUpdated(Vec<(DatePrefix, i64, i64)>),
    Token {
        param: String,
        /// (system, code): `None` system matches any system; `Some("")` means no system.
        values: Vec<(Option<String>, Option<String>)>,
    },
    Reference {
        param: String,
        values: Vec<(Option<String>, String)>,
    },
    Date {
        param: String,
        values: Vec<(DatePrefix, i64, i64)>,
    },
    String {
        param: String,
        how: StringMatch,
        values: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    LastUpdated { descending: bool },
    Id { descending: bool },
    Date { param: String, descending: bool },
}

/// `_include=Observation:subject[:Patient]` or `_revinclude=Observation:subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub source_type: String,
    pub param: String,
    pub target_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub resource_type: String,
    pub filters: Vec<Filter>,
    pub sort: Vec<SortKey>,
    pub count: usize,
    pub offset: usize,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    pub summary_count: bool,
    /// `_total=accurate`: count every match even when the page does not show them all (a
    /// search's cost then grows with its matches; without it the total is given only when
    /// the page shows every match, and the next page is found by asking for one more row).
    pub accurate_total: bool,
    /// The access policy's reach: only these patients' records (and shared reference data).
    /// None: no restriction (set by the policy, never by the caller's parameters).
    pub compartments: Option<std::collections::BTreeSet<String>>,
    /// The access policy's confidentiality: records labelled confidential to the patient
    /// (`meta.security` R) are left out, in the matches, the total and the includes (set by
    /// the policy, never by the caller's parameters).
    pub hide_restricted: bool,
    /// The access policy's social-needs rule: records labelled as social needs are shown
    /// only for these patients (a family member's grants that cover social needs); None: no
    /// restriction (set by the policy, never by the caller's parameters).
    pub social_needs_of: Option<std::collections::BTreeSet<String>>,
}

pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 1000;
/// The count of a search that wants every match, not a page (the app's own views: a panel,
/// a chart, a family's grants). The store then runs it without a `LIMIT`.
pub const EVERY_MATCH: usize = usize::MAX >> 1;
/// The parameters every search takes besides its type's own ([`SearchQuery::parse`] reads
/// each of them).
const COMMON_PARAMETERS: [&str; 10] = [
    "_count",
    "_offset",
    "_summary",
    "_total",
    "_format",
    "_sort",
    "_include",
    "_revinclude",
    "_id",
    "_lastUpdated",
];

/// The most values one search may carry across its parameters (`_id=a,b,...`, codes...):
/// beyond it a client should split the search.
pub const MAX_VALUES: usize = 1000;

impl SearchQuery {
    /// Everything of a type, first page.
    pub fn all(resource_type: &str) -> Self {
        SearchQuery {
            resource_type: resource_type.to_string(),
            filters: Vec::new(),
            sort: Vec::new(),
            count: DEFAULT_COUNT,
            offset: 0,
            includes: Vec::new(),
            revincludes: Vec::new(),
            summary_count: false,
            accurate_total: false,
            compartments: None,
            hide_restricted: false,
            social_needs_of: None,
        }
    }

    /// Reads the parameters of a search on `resource_type`.
    pub fn parse(
        resource_type: &str,
        params: &[(String, String)],
    ) -> Result<Self, OperationOutcome> {
        let mut q = SearchQuery::all(resource_type);
        let defs = r4().search_params(resource_type);
        for (raw_name, value) in params {
            let bad =
                |msg: String| OperationOutcome::error(IssueCode::Value, raw_name.as_str(), msg);
            if raw_name.chars().chain(value.chars()).any(char::is_control) {
                return Err(bad(
                    "a search parameter cannot hold control characters".to_string()
                ));
            }
            let (name, modifier) = match raw_name.split_once(':') {
                Some((n, m)) => (n, Some(m)),
                None => (raw_name.as_str(), None),
            };
            match name {
                "_count" => {
                    q.count = value
                        .parse::<usize>()
                        .map_err(|_| bad(format!("_count must be a whole number, not '{value}'")))?
                        .min(MAX_COUNT);
                    continue;
                }
                "_offset" => {
                    q.offset = parse_offset(value).map_err(bad)?;
                    continue;
                }
                "_summary" => {
                    match value.as_str() {
                        "count" => q.summary_count = true,
                        "false" => {}
                        other => {
                            return Err(bad(format!(
                                "_summary={other} is not supported (count and false are)"
                            )));
                        }
                    }
                    continue;
                }
                "_total" => {
                    match value.as_str() {
                        "accurate" => q.accurate_total = true,
                        "none" | "estimate" => q.accurate_total = false,
                        other => {
                            return Err(bad(format!(
                                "_total={other} is not one of none, estimate and accurate"
                            )));
                        }
                    }
                    continue;
                }
                "_format" => continue,
                "_sort" => {
                    for key in value.split(',') {
                        let (descending, key) = match key.strip_prefix('-') {
                            Some(k) => (true, k),
                            None => (false, key),
                        };
                        q.sort.push(match key {
                            "_lastUpdated" => SortKey::LastUpdated { descending },
                            "_id" => SortKey::Id { descending },
                            p if defs.and_then(|d| d.get(p)).is_some_and(|d| d.kind == SearchType::Date) => {
                                SortKey::Date { param: p.to_string(), descending }
                            }
                            other => return Err(bad(format!("cannot sort {resource_type} by '{other}' (sort by _lastUpdated, _id or a date parameter)"))),
                        });
                    }
                    continue;
                }
                "_include" | "_revinclude" => {
                    let inc = parse_include(value).map_err(bad)?;
                    let known = r4()
                        .search_params(&inc.source_type)
                        .and_then(|d| d.get(&inc.param))
                        .is_some_and(|d| d.kind == SearchType::Reference);
                    if !known {
                        return Err(bad(format!(
                            "'{}:{}' is not a reference search parameter",
                            inc.source_type, inc.param
                        )));
                    }
                    if name == "_include" {
                        if inc.source_type != resource_type {
                            return Err(bad(format!("_include must start with {resource_type}")));
                        }
                        q.includes.push(inc);
                    } else {
                        q.revincludes.push(inc);
                    }
                    continue;
                }
                "_id" => {
                    no_modifier(modifier).map_err(&bad)?;
                    q.filters
                        .push(Filter::Id(value.split(',').map(str::to_string).collect()));
                    continue;
                }
                "_lastUpdated" => {
                    no_modifier(modifier).map_err(&bad)?;
                    q.filters
                        .push(Filter::LastUpdated(parse_dates(value).map_err(&bad)?));
                    continue;
                }
                _ => {}
            }
            let Some(def) = defs.and_then(|d| d.get(name)) else {
                return Err(bad(format!(
                    "'{name}' is not a search parameter this server supports on {resource_type}"
                )));
            };
            let param = name.to_string();
            let filter = match def.kind {
                SearchType::Token | SearchType::Uri => {
                    no_modifier(modifier).map_err(&bad)?;
                    let values = value
                        .split(',')
                        .map(|v| match v.split_once('|') {
                            Some((s, c)) => {
                                (Some(s.to_string()), (!c.is_empty()).then(|| c.to_string()))
                            }
                            None => (None, Some(v.to_string())),
                        })
                        .collect();
                    Filter::Token { param, values }
                }
                SearchType::Reference => {
                    let target = match modifier {
                        None => None,
                        Some(t) if r4().is_resource_type(t) => Some(t.to_string()),
                        Some(m) => {
                            return Err(bad(format!("the modifier ':{m}' is not supported here")));
                        }
                    };
                    let values = value
                        .split(',')
                        .map(|v| match crate::search::split_reference(v) {
                            Some((t, id)) => (Some(t.to_string()), id.to_string()),
                            None => (target.clone(), v.to_string()),
                        })
                        .collect();
                    Filter::Reference { param, values }
                }
                SearchType::Date => {
                    no_modifier(modifier).map_err(&bad)?;
                    Filter::Date {
                        param,
                        values: parse_dates(value).map_err(&bad)?,
                    }
                }
                SearchType::String => {
                    let how = match modifier {
                        None => StringMatch::StartsWith,
                        Some("exact") => StringMatch::Exact,
                        Some("contains") => StringMatch::Contains,
                        Some(m) => {
                            return Err(bad(format!("the modifier ':{m}' is not supported here")));
                        }
                    };
                    Filter::String {
                        param,
                        how,
                        values: value.split(',').map(crate::search::normalize).collect(),
                    }
                }
                SearchType::Quantity | SearchType::Number => {
                    return Err(bad(format!(
                        "searching by '{name}' (a {:?} parameter) is not supported yet",
                        def.kind
                    )));
                }
            };
            q.filters.push(filter);
        }
        let values: usize = q.filters.iter().map(Filter::value_count).sum();
        if values > MAX_VALUES {
            return Err(OperationOutcome::error(
                IssueCode::TooCostly,
                "",
                format!(
                    "this search carries {values} values; at most {MAX_VALUES} in one search (split it into several)"
                ),
            ));
        }
        Ok(q)
    }

    /// The parameters [`SearchQuery::parse`] would read, without those it does not know: for
    /// a client that asked with `Prefer: handling=lenient` to have unknown parameters
    /// ignored rather than refused. Returns the kept parameters and the names of the dropped.
    pub fn lenient(
        resource_type: &str,
        params: &[(String, String)],
    ) -> (Vec<(String, String)>, Vec<String>) {
        let defs = r4().search_params(resource_type);
        let known = |name: &str| {
            let name = name.split_once(':').map_or(name, |(n, _)| n);
            COMMON_PARAMETERS.contains(&name) || defs.is_some_and(|d| d.contains_key(name))
        };
        let (kept, dropped): (Vec<_>, Vec<_>) = params.iter().cloned().partition(|(k, _)| known(k));
        (kept, dropped.into_iter().map(|(k, _)| k).collect())
    }
}

impl Filter {
    /// How many values the filter carries (each is one alternative).
    pub fn value_count(&self) -> usize {
        match self {
            Filter::Id(v) => v.len(),
            Filter::LastUpdated(v) => v.len(),
            Filter::Token { values, .. } => values.len(),
            Filter::Reference { values, .. } => values.len(),
            Filter::Date { values, .. } => values.len(),
            Filter::String { values, .. } => values.len(),
        }
    }
}

/// `_offset`: a whole number a database can take (a 64-bit signed integer).
pub fn parse_offset(value: &str) -> Result<usize, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|o| i64::try_from(*o).is_ok())
        .and_then(|o| usize::try_from(o).ok())
        .ok_or_else(|| {
            format!(
                "_offset must be a whole number from 0 to {}, not '{value}'",
                i64::MAX
            )
        })
}

fn no_modifier(m: Option<&str>) -> Result<(), String> {
    match m {
        None => Ok(()),
        Some(m) => Err(format!("the modifier ':{m}' is not supported here")),
    }
}

fn parse_include(v: &str) -> Result<Include, String> {
    let parts: Vec<&str> = v.split(':').collect();
    match parts.as_slice() {
        [source, param] | [source, param, _] if r4().is_resource_type(source) => Ok(Include {
            source_type: source.to_string(),
            param: param.to_string(),
            target_type: parts.get(2).map(|t| t.to_string()),
        }),
        _ => Err(format!(
            "'{v}' is not of the form Type:parameter[:TargetType]"
        )),
    }
}

fn parse_dates(value: &str) -> Result<Vec<(DatePrefix, i64, i64)>, String> {
    value
        .split(',')
        .map(|v| {
            let (prefix, rest) = match v.get(..2) {
                Some("eq") => (DatePrefix::Eq, &v[2..]),
                Some("ne") => (DatePrefix::Ne, &v[2..]),
                Some("lt") => (DatePrefix::Lt, &v[2..]),
                Some("le") => (DatePrefix::Le, &v[2..]),
                Some("gt") => (DatePrefix::Gt, &v[2..]),
                Some("ge") => (DatePrefix::Ge, &v[2..]),
                Some("sa") => (DatePrefix::Sa, &v[2..]),
                Some("eb") => (DatePrefix::Eb, &v[2..]),
                _ => (DatePrefix::Eq, v),
            };
            let (lo, hi) =
                date_range_millis(rest).ok_or_else(|| format!("'{rest}' is not a valid date"))?;
            Ok((prefix, lo, hi))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn reads_common_searches() {
        let q = SearchQuery::parse(
            "Observation",
            &p(&[
                ("patient", "Patient/p1"),
                ("code", "http://loinc.org|4548-4"),
                ("date", "ge2026-01-01"),
                ("_count", "10"),
                ("_sort", "-date"),
            ]),
        )
        .unwrap();
        assert_eq!(q.count, 10);
        assert_eq!(q.filters.len(), 3);
        assert_eq!(
            q.sort,
            vec![SortKey::Date {
                param: "date".into(),
                descending: true
            }]
        );
    }

    #[test]
    fn refuses_unknown_parameters() {
        let e = SearchQuery::parse("Observation", &p(&[("patinet", "p1")])).unwrap_err();
        assert!(
            e.to_string()
                .contains("'patinet' is not a search parameter")
        );
        assert!(SearchQuery::parse("Observation", &p(&[("date", "yesterday")])).is_err());
    }

    #[test]
    fn lenient_handling_drops_only_what_parse_would_refuse_as_unknown() {
        let pairs = |q: &[(&str, &str)]| -> Vec<(String, String)> {
            q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let asked = pairs(&[
            ("_count", "5"),
            ("_offset", "0"),
            ("_summary", "false"),
            ("_sort", "-_lastUpdated"),
            ("_include", "Observation:patient"),
            ("_revinclude", "Provenance:target"),
            ("_id", "a"),
            ("_lastUpdated", "ge2026"),
            ("_total", "none"),
            ("_format", "json"),
            ("code", "4548-4"),
            ("subject:Patient", "p1"),
            ("no-such-thing", "1"),
        ]);
        let (kept, dropped) = SearchQuery::lenient("Observation", &asked);
        assert_eq!(dropped, vec!["no-such-thing".to_string()]);
        assert!(SearchQuery::parse("Observation", &kept).is_ok());
        assert!(SearchQuery::parse("Observation", &asked).is_err());
    }
}
