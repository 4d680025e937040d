//! The search index rows of a write: cleared and rewritten with the resource, inserted in
//! batches sized to the backend's limit on bound parameters.

use super::*;

pub(super) const INDEX_COLS: [&str; 4] = [
    "resource_type, resource_id, patient_id, param, system, code",
    "resource_type, resource_id, patient_id, param, target_type, target_id, last_updated",
    "resource_type, resource_id, patient_id, param, low, high",
    "resource_type, resource_id, patient_id, param, value",
];

/// Index rows of one or many resources, ready to insert.
#[derive(Default)]
pub(super) struct IndexRows {
    tokens: Vec<Vec<Arg>>,
    references: Vec<Vec<Arg>>,
    dates: Vec<Vec<Arg>>,
    strings: Vec<Vec<Arg>>,
}

impl IndexRows {
    /// The rows of resource `rt/id`, in `patient`'s compartment, written at `last_updated`
    /// (which the reference rows carry, for searches newest first).
    pub(super) fn add(
        &mut self,
        rt: &str,
        id: &str,
        patient: Option<&str>,
        last_updated: i64,
        index: &SearchIndex,
    ) {
        let owner = || {
            vec![
                Arg::Text(rt.to_string()),
                Arg::Text(id.to_string()),
                Arg::from(patient.map(str::to_string)),
            ]
        };
        for t in &index.tokens {
            let mut row = owner();
            row.extend([
                Arg::Text(t.param.clone()),
                Arg::from(t.system.clone()),
                Arg::Text(t.code.clone()),
            ]);
            self.tokens.push(row);
        }
        for r in &index.references {
            let mut row = owner();
            row.extend([
                Arg::Text(r.param.clone()),
                Arg::Text(r.target_type.clone()),
                Arg::Text(r.target_id.clone()),
                Arg::Int(last_updated),
            ]);
            self.references.push(row);
        }
        for d in &index.dates {
            let mut row = owner();
            row.extend([
                Arg::Text(d.param.clone()),
                Arg::Int(d.low),
                Arg::Int(d.high),
            ]);
            self.dates.push(row);
        }
        for v in &index.strings {
            let mut row = owner();
            row.extend([Arg::Text(v.param.clone()), Arg::Text(v.value.clone())]);
            self.strings.push(row);
        }
    }
}

impl Tx {
    pub(super) async fn clear_index(&mut self, rt: &str, id: &str) -> Result<(), StoreError> {
        for table in [
            "search_token",
            "search_reference",
            "search_date",
            "search_string",
        ] {
            let sql = format!("DELETE FROM {table} WHERE resource_type = $1 AND resource_id = $2");
            self.db().execute(&sql, &args![rt, id]).await?;
        }
        Ok(())
    }

    /// `resource_type = <rt> AND <column> IN (<ids>)`, with its arguments (the type first).
    pub(super) fn of_type_among(
        &self,
        rt: &str,
        column: &str,
        ids: &[impl AsRef<str>],
    ) -> (String, Vec<Arg>) {
        let mut args = vec![Arg::from(rt)];
        args.extend(ids.iter().map(|id| Arg::from(id.as_ref())));
        (
            format!(
                "resource_type = {} AND {column} IN ({})",
                self.mark(1),
                self.marks(2, ids.len())
            ),
            args,
        )
    }

    /// Copies the current content of these live resources into their current history row
    /// before they change. The history row of a resource's current version holds no content
    /// of its own (the resources row has it, and reads take it from there), so a store keeps
    /// each version's JSON once.
    pub(super) async fn keep_current_in_history(
        &mut self,
        rt: &str,
        ids: &[String],
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            let (among, args) = self.of_type_among(rt, "id", chunk);
            let sql = format!(
                "UPDATE resource_history SET content = (SELECT r.content FROM resources r \
                 WHERE r.resource_type = resource_history.resource_type AND r.id = resource_history.id) \
                 WHERE {among} AND deleted = 0 AND content IS NULL"
            );
            self.db().execute(&sql, &args).await?;
        }
        Ok(())
    }

    pub(super) async fn write_index(
        &mut self,
        rt: &str,
        id: &str,
        patient: Option<&str>,
        last_updated: i64,
        index: &SearchIndex,
    ) -> Result<(), StoreError> {
        let mut rows = IndexRows::default();
        rows.add(rt, id, patient, last_updated, index);
        self.insert_index_rows(rows).await
    }

    pub(super) async fn insert_index_rows(&mut self, rows: IndexRows) -> Result<(), StoreError> {
        let IndexRows {
            tokens,
            references,
            dates,
            strings,
        } = rows;
        self.insert_rows("search_token", INDEX_COLS[0], tokens)
            .await?;
        self.insert_rows("search_reference", INDEX_COLS[1], references)
            .await?;
        self.insert_rows("search_date", INDEX_COLS[2], dates)
            .await?;
        self.insert_rows("search_string", INDEX_COLS[3], strings)
            .await
    }

    pub(super) async fn insert_rows(
        &mut self,
        table: &str,
        cols: &str,
        rows: Vec<Vec<Arg>>,
    ) -> Result<(), StoreError> {
        self.insert_rows_with(table, cols, rows, "")
            .await
            .map(|_| ())
    }

    /// Inserts many rows per statement (one round trip per few thousand values), with an
    /// optional `ON CONFLICT` clause; returns the rows affected. The rows' values are moved
    /// into the statements, not copied.
    pub(super) async fn insert_rows_with(
        &mut self,
        table: &str,
        cols: &str,
        rows: Vec<Vec<Arg>>,
        suffix: &str,
    ) -> Result<u64, StoreError> {
        let Some(first) = rows.first() else {
            return Ok(0);
        };
        let mut affected = 0;
        let width = first.len();
        // Stay well under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
        let per_statement = (30_000 / width).max(1);
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Arg>> = rows.by_ref().take(per_statement).collect();
            let mut args = Vec::with_capacity(chunk.len() * width);
            let mut sql = format!("INSERT INTO {table} ({cols}) VALUES ");
            for (n, row) in chunk.into_iter().enumerate() {
                if n > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for k in 0..width {
                    if k > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&self.mark(n * width + k + 1));
                }
                sql.push(')');
                args.extend(row);
            }
            sql.push_str(suffix);
            affected += self.db().execute(&sql, &args).await?;
        }
        Ok(affected)
    }
}
