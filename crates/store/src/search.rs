//! Runs a FHIR [`SearchQuery`] as one SQL statement (plus one for the total and one per
//! include): each parameter is an `r.id IN (SELECT ...)` over its index table.

use crate::Store;
use crate::db::{Arg, Db};
use crate::error::StoreError;
use crate::read::{COLUMNS, Stored};
use coproduce_core::access::Reach;
pub use coproduce_fhir::query::{
    DatePrefix, EVERY_MATCH, Filter, Include, SearchQuery, SortKey, StringMatch,
};
use coproduce_fhir::search::{LABEL_RESTRICTED, LABEL_SOCIAL_NEEDS};

mod known;
pub use known::Known;

/// A page of matches, the total when known, and what `_include`/`_revinclude` brought
/// along.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// Every match counted: when the query asked for it (`_total=accurate`, `_summary=count`,
    /// `_count=0`) or when this page shows the last of them; None otherwise, so that a page's
    /// cost does not grow with the matches it does not show.
    pub total: Option<i64>,
    /// Whether more matches follow this page.
    pub more: bool,
    pub matches: Vec<Stored>,
    pub included: Vec<Stored>,
}

impl SearchResult {
    /// "12 matches", or "10 matches on this page, more follow" when they were not counted
    /// (for the audit trail's detail).
    pub fn described(&self) -> String {
        match self.total {
            Some(n) => Self::counted(n),
            None => format!("{} matches on this page, more follow", self.matches.len()),
        }
    }

    /// "12 matches": every match, counted.
    pub fn counted(n: i64) -> String {
        format!("{n} matches")
    }
}

/// SQL text with its `$n` arguments, built together so the numbers always line up.
struct Sql {
    text: String,
    args: Vec<Arg>,
    /// Whether it runs on one of the store's own SQLite connections, which have
    /// [`crate::lite::AMONG`].
    among: bool,
}

/// Lists longer than this are checked by [`crate::lite::AMONG`] where the connection has it.
const LONG_LIST: usize = 32;

impl Sql {
    fn new(on: &Db<'_>) -> Self {
        Self::with_among(on.is_lite())
    }

    /// For a connection that has [`crate::lite::AMONG`] (`among`) or not.
    fn with_among(among: bool) -> Self {
        Sql {
            text: String::new(),
            args: Vec::new(),
            among,
        }
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn bind_str(&mut self, v: &str) -> String {
        self.args.push(Arg::Text(v.to_string()));
        format!("${}", self.args.len())
    }

    fn bind_i64(&mut self, v: i64) -> String {
        self.args.push(Arg::Int(v));
        format!("${}", self.args.len())
    }

    /// Each value bound, their marks comma-separated (for `IN (...)`).
    fn bind_list<'v>(&mut self, values: impl IntoIterator<Item = &'v str>) -> String {
        values
            .into_iter()
            .map(|v| self.bind_str(v))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `column` is one of `values` (a panel's patients): an `IN` list, or on the store's own
    /// SQLite connections, when the list is long, one argument for [`crate::lite::AMONG`].
    /// (An `IN` list of 2,000 is a B-tree built by every statement; `among` checks a hash
    /// set built once per statement. A short list stays `IN`, which the planner can drive
    /// from an index.)
    fn one_of(&mut self, column: &str, values: &std::collections::BTreeSet<String>) -> String {
        let joinable = || {
            !values
                .iter()
                .any(|v| v.contains(crate::lite::AMONG_SEPARATOR))
        };
        if self.among && values.len() > LONG_LIST && joinable() {
            let list = values
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(&crate::lite::AMONG_SEPARATOR.to_string());
            format!("{}({}, {column})", crate::lite::AMONG, self.bind_str(&list))
        } else {
            format!(
                "{column} IN ({})",
                self.bind_list(values.iter().map(String::as_str))
            )
        }
    }
}

impl Db<'_> {
    async fn stored(&mut self, sql: Sql) -> Result<Vec<Stored>, StoreError> {
        self.rows(&sql.text, &sql.args, |r| Stored::from_row(r))
            .await
    }

    async fn count(&mut self, sql: Sql) -> Result<i64, StoreError> {
        self.integer(&sql.text, &sql.args).await
    }
}

/// Resources of the searched type with an index row of `param` meeting any of `conds`:
/// one subquery per parameter, so the planner can drive the search from the index's lookup
/// (a selective code or reference) rather than probe every resource of the type.
fn indexed(
    sql: &mut Sql,
    table: &str,
    rt: &str,
    param: &str,
    conds: &[String],
) -> Result<String, StoreError> {
    if conds.is_empty() {
        return Ok("1 = 0".into());
    }
    let p = sql.bind_str(param);
    Ok(format!(
        "r.id IN (SELECT x.resource_id FROM {table} x WHERE x.resource_type = {rt} AND x.param = {p} AND (({})))",
        conds.join(") OR (")
    ))
}

/// Alternatives of two or more (key AND more) pairs, their keys also listed on their own
/// (`x.code IN (...) AND (...)`), so that the index is searched by key: SQLite does not
/// search an index for an OR of pairs, it reads the parameter's every row (every
/// Observation's code, or subject). One alternative stays as it is.
fn listed_too(sql: &mut Sql, column: &str, keys: &[&str], conds: Vec<String>) -> Vec<String> {
    if keys.len() < 2 {
        return conds;
    }
    let listed = format!("{column} IN ({})", sql.bind_list(keys.iter().copied()));
    vec![format!("{listed} AND (({}))", conds.join(") OR ("))]
}

/// The same condition checked on each resource the other filters found, by its own index
/// rows: for a filter that matches much of the type (a date range, `date=ge2025-01-01`),
/// listing every match first would cost more than the search.
fn checked_per_match(sql: &mut Sql, table: &str, param: &str, conds: &[String]) -> String {
    let p = sql.bind_str(param);
    format!(
        "EXISTS (SELECT 1 FROM {table} x WHERE x.resource_type = r.resource_type AND x.resource_id = r.id AND x.param = {p} AND (({})))",
        conds.join(") OR (")
    )
}

/// Whether a filter other than the one at `k` finds its matches by an exact value (an id, a
/// code, a reference, a string), so that the search can start from those.
fn narrowed_elsewhere(q: &SearchQuery, k: usize) -> bool {
    q.filters.iter().enumerate().any(|(j, f)| {
        j != k
            && match f {
                Filter::Id(_) | Filter::Token { .. } | Filter::Reference { .. } => true,
                Filter::String { how, .. } => *how == StringMatch::Exact,
                Filter::LastUpdated(_) | Filter::Date { .. } => false,
            }
    })
}

fn date_cond(
    sql: &mut Sql,
    lo_col: &str,
    hi_col: &str,
    p: DatePrefix,
    lo: i64,
    hi: i64,
) -> Result<String, StoreError> {
    let plo = sql.bind_i64(lo);
    let phi = sql.bind_i64(hi);
    Ok(match p {
        DatePrefix::Eq => format!("({lo_col} >= {plo} AND {hi_col} <= {phi})"),
        DatePrefix::Ne => format!("NOT ({lo_col} >= {plo} AND {hi_col} <= {phi})"),
        DatePrefix::Lt => format!("{lo_col} < {plo}"),
        DatePrefix::Le => format!("{lo_col} <= {phi}"),
        DatePrefix::Gt => format!("{hi_col} > {phi}"),
        DatePrefix::Ge => format!("{hi_col} >= {plo}"),
        DatePrefix::Sa => format!("{lo_col} > {phi}"),
        DatePrefix::Eb => format!("{hi_col} < {plo}"),
    })
}

/// The access policy's reach as SQL: shared reference data, or these patients' records;
/// without the records labelled confidential to the patient when the policy hides them.
fn reach_clause(sql: &mut Sql, q: &SearchQuery) -> Result<String, StoreError> {
    let mut hidden = String::new();
    if q.hide_restricted {
        hidden.push_str(&format!(" AND (r.restricted & {LABEL_RESTRICTED}) = 0"));
    }
    if let Some(allowed) = &q.social_needs_of {
        if allowed.is_empty() {
            hidden.push_str(&format!(" AND (r.restricted & {LABEL_SOCIAL_NEEDS}) = 0"));
        } else {
            hidden.push_str(&format!(
                " AND ((r.restricted & {LABEL_SOCIAL_NEEDS}) = 0 OR {})",
                sql.one_of("r.patient_id", allowed)
            ));
        }
    }
    let Some(patients) = q.compartments.as_ref() else {
        return Ok(format!("1 = 1{hidden}"));
    };
    if patients.is_empty() {
        return Ok(format!("r.shared = 1{hidden}"));
    }
    Ok(format!(
        "(r.shared = 1 OR {}){hidden}",
        sql.one_of("r.patient_id", patients)
    ))
}

/// The conditions of `q`, all but the filter at `skip` (which the page query drives from).
fn where_clause(sql: &mut Sql, q: &SearchQuery, skip: Option<usize>) -> Result<String, StoreError> {
    let rt = sql.bind_str(&q.resource_type);
    let reach = reach_clause(sql, q)?;
    sql.push(&format!(
        " WHERE r.resource_type = {rt} AND r.deleted = 0 AND {reach}"
    ));
    for (k, f) in q.filters.iter().enumerate() {
        if skip == Some(k) {
            continue;
        }
        let mut alts = Vec::new();
        match f {
            Filter::Id(ids) => {
                for id in ids {
                    alts.push(format!("r.id = {}", sql.bind_str(id)));
                }
            }
            Filter::LastUpdated(values) => {
                for (p, lo, hi) in values {
                    alts.push(date_cond(
                        sql,
                        "r.last_updated",
                        "r.last_updated",
                        *p,
                        *lo,
                        *hi,
                    )?);
                }
            }
            Filter::Token { param, values } => {
                let mut conds = Vec::new();
                for (system, code) in values {
                    let mut c = Vec::new();
                    if let Some(code) = code {
                        c.push(format!("x.code = {}", sql.bind_str(code)));
                    }
                    match system.as_deref() {
                        None => {}
                        Some("") => c.push("x.system IS NULL".into()),
                        Some(s) => c.push(format!("x.system = {}", sql.bind_str(s))),
                    }
                    conds.push(if c.is_empty() {
                        "1 = 1".into()
                    } else {
                        c.join(" AND ")
                    });
                }
                // Codes given in every alternative (`code=s|a,s|b`) are also listed.
                let codes: Option<Vec<&str>> = values.iter().map(|(_, c)| c.as_deref()).collect();
                if let Some(codes) = codes {
                    conds = listed_too(sql, "x.code", &codes, conds);
                }
                alts.push(indexed(sql, "search_token", &rt, param, &conds)?);
            }
            Filter::Reference { param, values } => {
                let mut conds = Vec::new();
                for (target_type, id) in values {
                    let mut c = format!("x.target_id = {}", sql.bind_str(id));
                    if let Some(t) = target_type {
                        c.push_str(&format!(" AND x.target_type = {}", sql.bind_str(t)));
                    }
                    conds.push(c);
                }
                let ids: Vec<&str> = values.iter().map(|(_, id)| id.as_str()).collect();
                conds = listed_too(sql, "x.target_id", &ids, conds);
                alts.push(indexed(sql, "search_reference", &rt, param, &conds)?);
            }
            Filter::Date { param, values } => {
                let mut conds = Vec::new();
                for (p, lo, hi) in values {
                    conds.push(date_cond(sql, "x.low", "x.high", *p, *lo, *hi)?);
                }
                if narrowed_elsewhere(q, k) && !conds.is_empty() {
                    alts.push(checked_per_match(sql, "search_date", param, &conds));
                } else {
                    alts.push(indexed(sql, "search_date", &rt, param, &conds)?);
                }
            }
            Filter::String { param, how, values } => {
                let mut conds = Vec::new();
                for v in values {
                    conds.push(match how {
                        StringMatch::Exact => format!("x.value = {}", sql.bind_str(v)),
                        StringMatch::StartsWith => format!(
                            "x.value LIKE {} ESCAPE '\\'",
                            sql.bind_str(&format!("{}%", escape_like(v)))
                        ),
                        StringMatch::Contains => format!(
                            "x.value LIKE {} ESCAPE '\\'",
                            sql.bind_str(&format!("%{}%", escape_like(v)))
                        ),
                    });
                }
                alts.push(indexed(sql, "search_string", &rt, param, &conds)?);
            }
        }
        if alts.is_empty() {
            sql.push(" AND 1 = 0");
        } else {
            sql.push(&format!(" AND ({})", alts.join(" OR ")));
        }
    }
    Ok(rt)
}

/// The reference filter that drives a search whose order is the default, newest first (or
/// `_sort=-_lastUpdated`): its position, its parameter and its values (each a target type,
/// if given, and an id). With up to [`MERGED`] values the page is read from the reference
/// index in that order, value by value; with more, from the values' matches, sorted.
struct Driving<'q> {
    k: usize,
    param: &'q str,
    values: &'q [(Option<String>, String)],
}

/// The most values of a reference filter whose page is merged from one ordered walk of the
/// index per value. With more, the matches of all of them are sorted: a cost that grows with
/// those targets' records, where the walk of the type's every resource newest first, which
/// the planner would otherwise choose, grows with the store.
const MERGED: usize = 32;

fn newest_by_reference(q: &SearchQuery) -> Option<Driving<'_>> {
    let newest_first = match q.sort.as_slice() {
        [] => true,
        [SortKey::LastUpdated { descending }] => *descending,
        _ => false,
    };
    if !newest_first {
        return None;
    }
    q.filters.iter().enumerate().find_map(|(k, f)| match f {
        Filter::Reference { param, values } if !values.is_empty() => Some(Driving {
            k,
            param: param.as_str(),
            values: values.as_slice(),
        }),
        _ => None,
    })
}

/// The page of a search driven by one value of a reference filter: the index rows of that
/// reference newest first, each joined to its resource and checked against the rest of the
/// query, until the page is full.
fn page_by_reference(
    sql: &mut Sql,
    q: &SearchQuery,
    driving: &Driving<'_>,
    (target_type, target_id): &(Option<String>, String),
    columns: &str,
) -> Result<(), StoreError> {
    sql.push(&format!(
        "SELECT {columns} FROM search_reference d JOIN resources r ON r.resource_type = d.resource_type AND r.id = d.resource_id"
    ));
    let rt = where_clause(sql, q, Some(driving.k))?;
    let p = sql.bind_str(driving.param);
    let id = sql.bind_str(target_id);
    sql.push(&format!(
        " AND d.resource_type = {rt} AND d.param = {p} AND d.target_id = {id}"
    ));
    match target_type {
        Some(t) => {
            let t = sql.bind_str(t);
            sql.push(&format!(" AND d.target_type = {t}"));
        }
        // The same id under two target types is two index rows of one resource: only the
        // first type's row counts, so the resource is on the page once.
        None => sql.push(
            " AND NOT EXISTS (SELECT 1 FROM search_reference e WHERE e.resource_type = d.resource_type \
             AND e.resource_id = d.resource_id AND e.param = d.param AND e.target_id = d.target_id \
             AND e.target_type < d.target_type)",
        ),
    }
    sql.push(" ORDER BY d.last_updated DESC, d.resource_id");
    Ok(())
}

/// The page of a search driven by a reference filter of several values
/// (`subject=Patient/a,Patient/b`): each value's page read as [`page_by_reference`] reads
/// one, as far as this page reaches (`reach` rows, or all of them), then merged newest
/// first. `UNION` keeps a resource that references two of the values once (the two rows are
/// the same row).
fn page_merged(
    sql: &mut Sql,
    q: &SearchQuery,
    driving: &Driving<'_>,
    columns: &str,
    reach: Option<usize>,
) -> Result<(), StoreError> {
    for (i, value) in driving.values.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ");
        }
        sql.push("SELECT * FROM (");
        page_by_reference(sql, q, driving, value, columns)?;
        if let Some(n) = reach {
            sql.push(&format!(" LIMIT {n}"));
        }
        sql.push(&format!(") AS page{i}"));
    }
    sql.push(" ORDER BY last_updated DESC, id");
    Ok(())
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The query's order. `by_reference`: a reference filter of more than [`MERGED`] values asks
/// for the newest first. Then, or when every match is read, the filters drive: with the plain
/// column SQLite would walk the type's every resource in `last_updated` order (its index) to
/// skip the sort, checking each against the filters. `+` keeps it off that index.
fn order_by(sql: &mut Sql, q: &SearchQuery, by_reference: bool) -> Result<(), StoreError> {
    let filters_drive = by_reference || (q.count >= EVERY_MATCH && !q.filters.is_empty());
    let mut keys = Vec::new();
    for k in &q.sort {
        match k {
            SortKey::LastUpdated { descending } => {
                let plus = if by_reference { "+" } else { "" };
                keys.push(format!("{plus}r.last_updated {}", dir(*descending)));
            }
            SortKey::Id { descending } => keys.push(format!("r.id {}", dir(*descending))),
            SortKey::Date { param, descending } => {
                let p = sql.bind_str(param);
                let agg = if *descending {
                    "MAX(x.high)"
                } else {
                    "MIN(x.low)"
                };
                keys.push(format!(
                    "(SELECT {agg} FROM search_date x WHERE x.resource_type = r.resource_type AND x.resource_id = r.id AND x.param = {p}) {}",
                    dir(*descending)
                ));
            }
        }
    }
    if keys.is_empty() {
        if filters_drive {
            keys.push("+r.last_updated DESC".into());
        } else {
            keys.push("r.last_updated DESC".into());
        }
    }
    // A stable tie-break so pages never overlap.
    keys.push("r.id".into());
    sql.push(&format!(" ORDER BY {}", keys.join(", ")));
    Ok(())
}

fn dir(descending: bool) -> &'static str {
    if descending { "DESC" } else { "ASC" }
}

impl Store {
    /// Runs a search: the total, the requested page and the included resources.
    pub async fn search(&self, q: &SearchQuery) -> Result<SearchResult, StoreError> {
        self.search_for(q, &reach_everything).await
    }

    /// Runs a search for a caller whose reach limits what `_include` brings.
    pub async fn search_for(
        &self,
        q: &SearchQuery,
        include_reach: IncludeReach<'_>,
    ) -> Result<SearchResult, StoreError> {
        match &self.lite {
            Some(readers) => {
                let mut lent = readers.lend()?;
                search_in(lent.db(), q, include_reach).await
            }
            None => {
                let mut conn = self.reader.acquire().await?;
                search_in(Db::any(&mut conn), q, include_reach).await
            }
        }
    }
}

/// Which records of a type the caller reaches, for the resources `_include` and
/// `_revinclude` bring along (they may be of other types than the search's).
pub type IncludeReach<'a> = &'a (dyn Fn(&str) -> Reach + Sync);

/// No restriction (the system's own searches).
pub fn reach_everything(_: &str) -> Reach {
    Reach::Everything
}

fn reachable(reach: IncludeReach<'_>, s: &Stored) -> bool {
    match reach(&s.resource_type) {
        Reach::Everything => true,
        Reach::Patients(p) => s.shared || s.patient_id.as_ref().is_some_and(|id| p.contains(id)),
        // An organisation's searches bring nothing along: what it reaches is the referrals
        // the search itself finds.
        Reach::AddressedTo(_) | Reach::Nothing(_) => false,
    }
}

/// Runs a search on a given connection (a transaction's, for conditional writes).
pub async fn search_on(conn: Db<'_>, q: &SearchQuery) -> Result<SearchResult, StoreError> {
    search_reaching(conn, q, &reach_everything).await
}

/// Runs a search whose included resources are filtered by the caller's reach per type.
pub async fn search_reaching(
    conn: Db<'_>,
    q: &SearchQuery,
    include_reach: IncludeReach<'_>,
) -> Result<SearchResult, StoreError> {
    search_in(conn, q, include_reach).await
}

async fn search_in(
    mut on: Db<'_>,
    q: &SearchQuery,
    include_reach: IncludeReach<'_>,
) -> Result<SearchResult, StoreError> {
    let mut total = None;
    if q.summary_count || q.accurate_total || q.count == 0 {
        let mut count = Sql::new(&on);
        count.push("SELECT COUNT(*) FROM resources r");
        where_clause(&mut count, q, None)?;
        total = Some(on.count(count).await?);
    }
    if q.summary_count || q.count == 0 {
        return Ok(SearchResult {
            total,
            more: total.is_some_and(|n| n > 0),
            matches: Vec::new(),
            included: Vec::new(),
        });
    }
    let page = page_sql(on.is_lite(), q, true)?;
    let mut matches = on.stored(page).await?;
    let more = matches.len() > q.count;
    matches.truncate(q.count);
    if total.is_none() && !more && (q.offset == 0 || !matches.is_empty()) {
        total = Some((q.offset + matches.len()) as i64);
    }
    let mut included = Vec::new();
    if !matches.is_empty() {
        for inc in &q.includes {
            included.extend(include(&mut on, &matches, inc, q).await?);
        }
        for inc in &q.revincludes {
            included.extend(revinclude(&mut on, &matches, inc, q).await?);
        }
        let mut seen: std::collections::HashSet<(String, String)> = matches
            .iter()
            .map(|m| (m.resource_type.clone(), m.id.clone()))
            .collect();
        included.retain(|s| {
            reachable(include_reach, s) && seen.insert((s.resource_type.clone(), s.id.clone()))
        });
    }
    Ok(SearchResult {
        total,
        more,
        matches,
        included,
    })
}

/// The statement of a search's page, for a connection with [`crate::lite::AMONG`] or not:
/// [`COLUMNS`] of each match (with `json`, the content; else NULL in its place), in the
/// query's order.
fn page_sql(among: bool, q: &SearchQuery, json: bool) -> Result<Sql, StoreError> {
    let columns = prefixed_columns(json);
    let mut page = Sql::with_among(among);
    // Every match (the app's own views) is asked for with no LIMIT. With one, SQLite sorts
    // in a B-tree that holds each row whole, its pages splitting as it grows; without, in
    // its sorter, which took half the time for a panel's 2,000 care plans.
    let limited = q.count < EVERY_MATCH || q.offset > 0;
    // One row more than the page: whether another page follows, without counting them all.
    let limit = q.count.min(i64::MAX as usize - 1) + 1;
    let driving = newest_by_reference(q);
    match &driving {
        Some(d) if d.values.len() == 1 => {
            page_by_reference(&mut page, q, d, &d.values[0], columns)?
        }
        Some(d) if d.values.len() <= MERGED => {
            let reach = limited.then(|| limit.saturating_add(q.offset));
            page_merged(&mut page, q, d, columns, reach)?
        }
        _ => {
            page.push(&format!("SELECT {columns} FROM resources r"));
            where_clause(&mut page, q, None)?;
            order_by(&mut page, q, driving.is_some())?;
        }
    }
    if limited {
        page.push(&format!(" LIMIT {limit} OFFSET {}", q.offset));
    }
    Ok(page)
}

/// [`COLUMNS`] of `resources r`; without `json`, NULL in place of the content. Worked out
/// once: every search's statement starts with them.
fn prefixed_columns(json: bool) -> &'static str {
    static WITH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| prefix_columns(true));
    static WITHOUT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| prefix_columns(false));
    if json { &WITH } else { &WITHOUT }
}

fn prefix_columns(json: bool) -> String {
    COLUMNS
        .split(", ")
        .map(|c| match c {
            "content" if !json => "NULL".to_string(),
            c => format!("r.{c}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn include(
    on: &mut Db<'_>,
    matches: &[Stored],
    inc: &Include,
    q: &SearchQuery,
) -> Result<Vec<Stored>, StoreError> {
    let ids: Vec<&str> = matches.iter().map(|m| m.id.as_str()).collect();
    let mut sql = Sql::new(on);
    let rt = sql.bind_str(&inc.source_type);
    let param = sql.bind_str(&inc.param);
    let list = sql.bind_list(ids.iter().copied());
    let mut cond =
        format!("x.resource_type = {rt} AND x.param = {param} AND x.resource_id IN ({list})");
    if let Some(t) = &inc.target_type {
        cond.push_str(&format!(" AND x.target_type = {}", sql.bind_str(t)));
    }
    let reach = reach_clause(&mut sql, q)?;
    sql.push(&format!(
        "SELECT DISTINCT {} FROM resources r JOIN search_reference x ON r.resource_type = x.target_type AND r.id = x.target_id \
         WHERE {cond} AND r.deleted = 0 AND {reach}",
        prefixed_columns(true)
    ));
    on.stored(sql).await
}

async fn revinclude(
    on: &mut Db<'_>,
    matches: &[Stored],
    inc: &Include,
    q: &SearchQuery,
) -> Result<Vec<Stored>, StoreError> {
    let ids: Vec<&str> = matches.iter().map(|m| m.id.as_str()).collect();
    let target_type = &matches[0].resource_type;
    let mut sql = Sql::new(on);
    let rt = sql.bind_str(&inc.source_type);
    let param = sql.bind_str(&inc.param);
    let tt = sql.bind_str(target_type);
    let list = sql.bind_list(ids.iter().copied());
    let reach = reach_clause(&mut sql, q)?;
    sql.push(&format!(
        "SELECT DISTINCT {} FROM resources r JOIN search_reference x ON r.resource_type = x.resource_type AND r.id = x.resource_id \
         WHERE x.resource_type = {rt} AND x.param = {param} AND x.target_type = {tt} AND x.target_id IN ({list}) AND r.deleted = 0 AND {reach}",
        prefixed_columns(true)
    ));
    on.stored(sql).await
}
