//! A search for every match of a query whose caller may hold views of the versions it finds
//! already (the team home's panel, listed again on every load): the JSON of a version the
//! caller holds is not read, copied or sorted, and only the rest is fetched.
//!
//! On SQLite both steps read one snapshot (one read transaction), so the JSON fetched is
//! that of the version listed. On PostgreSQL the search reads every match's JSON as a normal
//! search does; what the caller holds is still handed back beside each match.

use super::{EVERY_MATCH, SearchQuery, page_sql};
use crate::Store;
use crate::cells::Cells;
use crate::db::{Arg, lite_rows};
use crate::error::StoreError;
use crate::read::Stored;
use std::borrow::Cow;
use std::collections::HashMap;

/// What the caller holds for a version of a resource (its id and version), if anything.
pub type Known<'a, V> = &'a (dyn Fn(&str, i64) -> Option<V> + Sync);

impl Store {
    /// Every match of `q` (its `_count`, `_offset` and includes aside), in its order, each
    /// with what `known` holds for its version. A match whose version `known` holds may come
    /// without its JSON (`content` None); every other match has it.
    pub async fn search_known<V>(
        &self,
        q: &SearchQuery,
        known: Known<'_, V>,
    ) -> Result<Vec<(Stored, Option<V>)>, StoreError> {
        let q = every_match(q);
        match &self.lite {
            Some(readers) => {
                let lent = readers.lend()?;
                let conn = lent.conn();
                conn.execute_batch("BEGIN")?;
                let found = in_one_snapshot(conn, &q, known);
                // A connection left in its transaction is not lent again (`Lent`'s drop).
                let ended = conn.execute_batch("COMMIT");
                let found = found?;
                ended?;
                Ok(found)
            }
            None => Ok(self
                .search(&q)
                .await?
                .matches
                .into_iter()
                .map(|s| {
                    let held = known(&s.id, s.version_id);
                    (s, held)
                })
                .collect()),
        }
    }
}

/// `q` as a search for every match, without its includes or totals (itself when it is one
/// already: a panel's query holds thousands of patients).
fn every_match(q: &SearchQuery) -> Cow<'_, SearchQuery> {
    let already = q.count == EVERY_MATCH
        && q.offset == 0
        && q.includes.is_empty()
        && q.revincludes.is_empty()
        && !q.summary_count
        && !q.accurate_total;
    if already {
        return Cow::Borrowed(q);
    }
    Cow::Owned(SearchQuery {
        count: EVERY_MATCH,
        offset: 0,
        includes: Vec::new(),
        revincludes: Vec::new(),
        summary_count: false,
        accurate_total: false,
        ..q.clone()
    })
}

/// The matches without their JSON, then the JSON of those `known` does not hold, by id.
fn in_one_snapshot<V>(
    conn: &rusqlite::Connection,
    q: &SearchQuery,
    known: Known<'_, V>,
) -> Result<Vec<(Stored, Option<V>)>, StoreError> {
    let page = page_sql(true, q, false)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for s in lite_rows(conn, &page.text, &page.args, |r| Stored::from_row(r))? {
        let held = known(&s.id, s.version_id);
        if held.is_none() {
            missing.push(found.len());
        }
        found.push((s, held));
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let ids: Vec<&str> = missing.iter().map(|&i| found[i].0.id.as_str()).collect();
    let ids = serde_json::Value::from(ids).to_string();
    let mut json: HashMap<String, String> = lite_rows(
        conn,
        "SELECT id, content FROM resources WHERE resource_type = $1 AND id IN (SELECT value FROM json_each($2))",
        &[Arg::Text(q.resource_type.clone()), Arg::Text(ids)],
        |r| Ok((r.text(0)?, r.text(1)?)),
    )?
    .into_iter()
    .collect();
    for i in missing {
        let s = &mut found[i].0;
        // Listed in this snapshot, so its row is there with this version's JSON.
        let content = json.remove(&s.id).ok_or_else(|| {
            StoreError::Corrupt(format!("{}/{}: listed but not read", s.resource_type, s.id))
        })?;
        s.content = Some(content);
    }
    Ok(found)
}
