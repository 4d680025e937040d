//! The measure projection per patient ([`coproduce_measures::projection`]): one row per live
//! patient holding their compartment cut down to what measures read. A write transaction
//! marks the patients it touched as pending (a bounded amount of work, whatever the size of
//! their records); the background pass and every population run
//! ([`Store::ensure_patient_records`]) rebuild the pending rows and unmark them in one
//! transaction, so a run reads every write committed before it began, one short row per
//! patient.

use crate::cells::Cells;
use crate::db::{Arg, args};
use crate::error::StoreError;
use crate::lite::Readers;
use crate::write::Tx;
use crate::{Backend, Store};
use coproduce_measures::projection;
use serde_json::Value;
use sqlx::Row;
use std::collections::BTreeMap;
use tokio::sync::mpsc;

const META_KEY: &str = "measure_projection";

/// How long the background pass leaves a record it rebuilt before it rebuilds it again, per
/// resource in it (ms): 100 s for 100,000 resources, whose rebuild takes a core about a
/// second, so that rebuilding a long record written to all the time takes about one per
/// cent of a core, not the second core. Records shorter than [`PACED_FROM`] are not paced.
const PACE_MS_PER_RESOURCE: i64 = 1;

/// Resources a record holds before the background pass paces its rebuilds (a pause under a
/// second, shorter than the time between passes, would change nothing).
const PACED_FROM: usize = 1_000;

/// Long records the background pass rebuilt lately: patient id, and the Unix ms before
/// which it leaves them pending.
pub(crate) type Paced = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>;

/// A line of its own that each projection row carries before the resources: what a workflow
/// derives from a patient's whole record when their row is built (the partnership's promise
/// facts, say), so that a population run reads that instead of the resources. The store
/// knows nothing of its content; the workflow that wrote it reads it back, and reads the
/// resources instead from a row without it (one built by a process that had no such line).
pub trait RecordLine: Send + Sync + std::fmt::Debug {
    /// The line's name with its version (`~partnership/2`): the row's line begins with it
    /// and a tab. It begins with `~`, which no resource type does, and holds no tab.
    fn name(&self) -> &'static str;
    /// A line being built, given the patient's live resources one at a time (in any
    /// order), so that a long record is never held whole.
    fn builder(&self) -> Box<dyn LineBuilder>;
    /// The line for a patient's live resources (any order), without a newline.
    fn line(&self, resources: &[Value]) -> String {
        let mut b = self.builder();
        for r in resources {
            b.add(r);
        }
        b.finish()
    }
}

/// A [`RecordLine`] being built.
pub trait LineBuilder: Send {
    /// Takes one resource of the record.
    fn add(&mut self, resource: &Value);
    /// The line, without a newline.
    fn finish(self: Box<Self>) -> String;
}

type Lines = [std::sync::Arc<dyn RecordLine>];

/// A patient's projection row being built, one resource at a time.
struct RowBuilder {
    /// The patient's own Patient resource came (a row is kept only for a patient who
    /// exists).
    exists: bool,
    /// Resources given so far.
    size: usize,
    lines: Vec<(&'static str, Box<dyn LineBuilder>)>,
    projector: projection::Projector,
}

impl RowBuilder {
    fn new(lines: &Lines) -> Self {
        RowBuilder {
            exists: false,
            size: 0,
            lines: lines.iter().map(|l| (l.name(), l.builder())).collect(),
            projector: projection::Projector::default(),
        }
    }

    fn add(&mut self, resource: &Value) {
        self.size += 1;
        for (_, l) in &mut self.lines {
            l.add(resource);
        }
        self.projector.add(resource);
    }

    /// The row: the record lines, then the projected resources.
    fn finish(self) -> Vec<u8> {
        let mut text = String::new();
        for (name, l) in self.lines {
            text.push_str(name);
            text.push('\t');
            text.push_str(&l.finish().replace('\n', " "));
            text.push('\n');
        }
        projection::encode_row(&text, &self.projector.finish())
    }
}

fn args(ids: &[String]) -> Vec<Arg> {
    ids.iter().map(Arg::from).collect()
}

/// A resource row as a projection row is built from: (patient, type, id, content).
type ResourceRow = (String, String, String, String);

/// The live resources of these patients (Provenance left out), as [`ResourceRow`]s.
fn live_resources_sql(marks: &str) -> String {
    format!(
        "SELECT patient_id, resource_type, id, content FROM resources \
         WHERE deleted = 0 AND resource_type <> 'Provenance' AND patient_id IN ({marks})"
    )
}

fn resource_row(r: &dyn Cells) -> Result<ResourceRow, StoreError> {
    Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.text(3)?))
}

impl Tx {
    /// Marks these patients' projection rows as behind their resources: each mark counts up
    /// the patient's `marks`, so that a rebuild read before this write can tell it came
    /// ([`Store::apply_pending_patient_records`]).
    pub(crate) async fn mark_patient_records(
        &mut self,
        patients: &[String],
    ) -> Result<(), StoreError> {
        let mut patients = patients.to_vec();
        patients.sort();
        for chunk in patients.chunks(500) {
            let values: Vec<String> = (1..=chunk.len())
                .map(|k| format!("({}, 1)", self.mark(k)))
                .collect();
            let sql = format!(
                "INSERT INTO patient_records_pending (patient_id, marks) VALUES {} \
                 ON CONFLICT (patient_id) DO UPDATE SET marks = patient_records_pending.marks + 1",
                values.join(", ")
            );
            self.db().execute(&sql, &args(chunk)).await?;
        }
        Ok(())
    }

    /// Takes PostgreSQL's transaction lock of each of these patients (sorted by the caller).
    async fn lock_patients(&mut self, chunk: &[String]) -> Result<(), StoreError> {
        let values: Vec<String> = (1..=chunk.len()).map(|k| format!("(${k})")).collect();
        let sql = format!(
            "SELECT pg_advisory_xact_lock(hashtext(v)) FROM (VALUES {}) AS t(v)",
            values.join(", ")
        );
        self.db().rows(&sql, &args(chunk), |_| Ok(())).await?;
        Ok(())
    }

    /// Rebuilds the projection rows of these patients from their live resources as this
    /// transaction sees them. On PostgreSQL each patient is locked first (in id order), so
    /// two transactions changing one patient rebuild one after the other and the later sees
    /// the earlier's change.
    pub(crate) async fn rebuild_patient_records(
        &mut self,
        patients: &[String],
        lines: &Lines,
    ) -> Result<(), StoreError> {
        let mut patients = patients.to_vec();
        patients.sort();
        let backend = self.backend();
        for chunk in patients.chunks(500) {
            if backend == Backend::Postgres {
                self.lock_patients(chunk).await?;
            }
            let sql = live_resources_sql(&self.marks(1, chunk.len()));
            let rows = self.db().rows(&sql, &args(chunk), resource_row).await?;
            let live = built(rows, lines)?.rows;
            self.write_records(chunk, &live).await?;
        }
        Ok(())
    }

    /// Replaces these patients' projection rows with `live` (a patient not in it has none).
    async fn write_records(
        &mut self,
        patients: &[String],
        live: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        if patients.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "DELETE FROM patient_records WHERE patient_id IN ({})",
            self.marks(1, patients.len())
        );
        self.db().execute(&sql, &args(patients)).await?;
        for part in live.chunks(500) {
            let mut a = Vec::with_capacity(2 * part.len());
            for (p, record) in part {
                a.extend(args![p, record.clone()]);
            }
            let values: Vec<String> = (0..part.len())
                .map(|k| format!("({})", self.marks(2 * k + 1, 2)))
                .collect();
            let sql = format!(
                "INSERT INTO patient_records (patient_id, record) VALUES {}",
                values.join(", ")
            );
            self.db().execute(&sql, &a).await?;
        }
        Ok(())
    }
}

/// The rows [`built`] makes of a batch of resource rows.
struct Built {
    /// (patient, row) for each patient who exists.
    rows: Vec<(String, Vec<u8>)>,
    /// How many resources each patient's record held, whether they exist or not.
    sizes: Vec<(String, usize)>,
}

/// The projection rows of the patients these resource rows (patient, type, id, content)
/// belong to: a row only for a patient who exists. Each resource is parsed, added to its
/// patient's row and let go before the next is parsed: a record of 100,000 resources took a
/// gigabyte held whole, and most of its rebuild went to the kernel handing out that memory.
fn built(rows: Vec<ResourceRow>, lines: &Lines) -> Result<Built, StoreError> {
    let mut records: BTreeMap<String, RowBuilder> = BTreeMap::new();
    for (patient, rt, id, content) in rows {
        let value: Value = serde_json::from_str(&content)
            .map_err(|e| StoreError::Corrupt(format!("{rt}/{id}: {e}")))?;
        let exists = rt == "Patient" && id == patient;
        let record = records
            .entry(patient)
            .or_insert_with(|| RowBuilder::new(lines));
        record.exists |= exists;
        record.add(&value);
    }
    let sizes = records.iter().map(|(p, r)| (p.clone(), r.size)).collect();
    let rows = records
        .into_iter()
        .filter(|(_, r)| r.exists)
        .map(|(p, r)| (p, r.finish()))
        .collect();
    Ok(Built { rows, sizes })
}

/// A batch of projection rows: (patient id, the record as [`projection::encode`] gave it).
pub type RecordBatch = Vec<(String, Vec<u8>)>;

/// Pending patients with the `marks` they had when read, and the rows built for them then
/// ([`Store::read_pending`]).
#[derive(Debug, Default)]
pub struct PendingBatch {
    pub pending: Vec<(String, i64)>,
    pub rows: RecordBatch,
}

/// What [`Store::write_pending`] does with a patient written to since their row was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// Rebuilds it inside the transaction, as it then stands (a population run, which must
    /// read every committed write). The writer waits while a long record is read.
    Rebuild,
    /// Leaves it marked for a later pass (the background pass: the writer never waits for a
    /// long record, and a patient written to all the time is caught up by the next run).
    Leave,
}

impl Store {
    /// Every live patient's projection row, in patient id order, in batches of `limit`,
    /// read by a task of its own that keeps up to two batches ahead of the caller. Dropping
    /// the receiver stops the read; an error ends the stream.
    ///
    /// On SQLite the rows are read by rusqlite on one of the store's read-only connections: one
    /// statement, so one snapshot, and no row crosses a thread until its batch is full (sqlx
    /// hands every row across a channel from its worker thread, which cost a fifth of a
    /// population run). On PostgreSQL, batch after batch by keyset.
    pub fn patient_record_batches(
        &self,
        limit: usize,
    ) -> mpsc::Receiver<Result<RecordBatch, StoreError>> {
        let (tx, rx) = mpsc::channel(2);
        let limit = limit.max(1);
        match &self.lite {
            Some(readers) => {
                let readers = readers.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = scan_sqlite(&readers, limit, &tx) {
                        // The caller may have gone; then nobody is left to tell.
                        let _ = tx.blocking_send(Err(e));
                    }
                });
            }
            None => {
                let store = self.clone();
                tokio::spawn(async move {
                    let mut after = String::new();
                    loop {
                        match store.patient_records_after(&after, limit).await {
                            Ok(rows) => {
                                let Some((last, _)) = rows.last() else {
                                    return;
                                };
                                after = last.clone();
                                if tx.send(Ok(rows)).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                // As on SQLite: a caller that went away has nothing to hear.
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                        }
                    }
                });
            }
        }
        rx
    }

    /// How many patients have a projection row: every live patient, once the projection is
    /// current ([`Store::ensure_patient_records`]).
    pub async fn count_patient_records(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM patient_records")
            .fetch_one(&self.reader)
            .await?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The next `limit` patients' projection rows after `after_id`, in id order.
    async fn patient_records_after(
        &self,
        after_id: &str,
        limit: usize,
    ) -> Result<RecordBatch, StoreError> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT patient_id, record FROM patient_records WHERE patient_id > $1 \
             ORDER BY patient_id LIMIT {limit}"
        )))
        .bind(after_id.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<Vec<u8>, _>(1)))
        .collect())
    }

    /// What the rows are built with: the projection's version and the record lines' names
    /// (`5 ~partnership/2`). Rows built otherwise are rebuilt by the next population run.
    fn projection_tag(&self) -> String {
        let mut tag = projection::VERSION.to_string();
        for l in &self.record_lines {
            tag.push(' ');
            tag.push_str(l.name());
        }
        tag
    }

    async fn projection_version(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT value FROM store_meta WHERE key = $1")
            .bind(META_KEY)
            .fetch_optional(&self.writer)
            .await?
            .map(|r| r.get::<String, _>(0)))
    }

    async fn set_projection_version(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO store_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(META_KEY)
        .bind(self.projection_tag())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Marks the projection current on a store that holds no resources yet (a new
    /// database), so that only a database written before the projection existed, or with
    /// another version of it, is rebuilt.
    pub(crate) async fn adopt_projection_if_empty(&self) -> Result<(), StoreError> {
        if self.projection_version().await?.is_some() {
            return Ok(());
        }
        let any = sqlx::query("SELECT 1 FROM resources LIMIT 1")
            .fetch_optional(&self.writer)
            .await?;
        if any.is_none() {
            self.set_projection_version().await?;
        }
        Ok(())
    }

    /// Drops the projection, so that the next run rebuilds it from the resources (what an
    /// upgrade from a build without it does; also a way to check it).
    pub async fn forget_patient_records(&self) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM patient_records")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM store_meta WHERE key = $1")
            .bind(META_KEY)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The background pass: brings the projection rows marked pending up to date as
    /// [`Store::apply_pending_patient_records`] does with [`Moved::Leave`], at `now_ms` (Unix
    /// ms), except a long record rebuilt lately, which stays pending until its pause is over
    /// (`PACE_MS_PER_RESOURCE` per resource it held). A write's own cost never depends on
    /// the record; this keeps the pass beside it from costing a core while one long record is
    /// written to. A population run rebuilds every pending row, paused or not.
    pub async fn catch_up_patient_records(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.paced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now_ms);
        self.apply_pending(Moved::Leave, Some(now_ms)).await
    }

    /// Brings the projection rows marked pending up to date, 100 patients at a time
    /// ([`Store::read_pending`], then [`Store::write_pending`]), and returns how many
    /// patients were rebuilt. With [`Moved::Leave`] a patient written to in between stays
    /// pending.
    pub async fn apply_pending_patient_records(&self, moved: Moved) -> Result<u64, StoreError> {
        self.apply_pending(moved, None).await
    }

    /// Both passes over the pending rows, 100 patients at a time; `paced` as in
    /// [`Store::read_pending_paced`].
    async fn apply_pending(&self, moved: Moved, paced: Option<i64>) -> Result<u64, StoreError> {
        let mut done = 0;
        let mut after = String::new();
        loop {
            let (batch, last) = self.read_pending_paced(&after, 100, paced).await?;
            let Some(last) = last else {
                return Ok(done);
            };
            after = last;
            done += self.write_pending(batch, moved).await?;
        }
    }

    /// The next `limit` patients marked pending after `after` (in the database's order),
    /// their rows built from their resources as they stand now: read outside any write
    /// transaction, so a patient with a long record does not hold the writer while it is
    /// read.
    pub async fn read_pending(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<PendingBatch, StoreError> {
        Ok(self.read_pending_paced(after, limit, None).await?.0)
    }

    /// As [`Store::read_pending`]; with `paced` (the background pass's now, Unix ms) a
    /// record still in its pause is left out and every long record built gets one. Also
    /// returns the last patient read, paused or not, to go on after.
    async fn read_pending_paced(
        &self,
        after: &str,
        limit: usize,
        paced: Option<i64>,
    ) -> Result<(PendingBatch, Option<String>), StoreError> {
        let mut pending: Vec<(String, i64)> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT patient_id, marks FROM patient_records_pending WHERE patient_id > $1 \
             ORDER BY patient_id LIMIT {}",
            limit.max(1)
        )))
        .bind(after.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect();
        let last = pending.last().map(|(p, _)| p.clone());
        if let Some(now) = paced {
            let paused = self.paced.lock().unwrap_or_else(|e| e.into_inner());
            pending.retain(|(p, _)| paused.get(p).is_none_or(|until| *until <= now));
        }
        if pending.is_empty() {
            return Ok((PendingBatch::default(), last));
        }
        let ids: Vec<String> = pending.iter().map(|(p, _)| p.clone()).collect();
        let marks: Vec<String> = (1..=ids.len()).map(|k| format!("${k}")).collect();
        let sql = live_resources_sql(&marks.join(", "));
        let lines = self.record_lines.clone();
        // Reading and building a long record is seconds of work: on a blocking thread, so
        // that it holds up no request.
        let Built { rows, sizes } = match self.lite.clone() {
            Some(readers) => {
                tokio::task::spawn_blocking(move || {
                    let rows = readers
                        .lend()?
                        .rows(&sql, &args(&ids), |r| resource_row(r))?;
                    built(rows, &lines)
                })
                .await
            }
            None => {
                let rows = self.fetch(&sql, &args(&ids), resource_row).await?;
                tokio::task::spawn_blocking(move || built(rows, &lines)).await
            }
        }
        .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))??;
        if let Some(now) = paced {
            let mut paused = self.paced.lock().unwrap_or_else(|e| e.into_inner());
            for (patient, n) in sizes.into_iter().filter(|(_, n)| *n >= PACED_FROM) {
                let pause = i64::try_from(n).unwrap_or(i64::MAX) * PACE_MS_PER_RESOURCE;
                paused.insert(patient, now.saturating_add(pause));
            }
        }
        Ok((PendingBatch { pending, rows }, last))
    }

    /// Writes a batch [`Store::read_pending`] built, in one short transaction: the rows of
    /// the patients whose `marks` did not change since, each unmarked. A patient written to
    /// in between is, with [`Moved::Rebuild`], rebuilt inside the transaction as it then
    /// stands (on PostgreSQL with its mark locked, so a later write marks it again), and with
    /// [`Moved::Leave`] left marked. Returns how many patients it rebuilt.
    pub async fn write_pending(&self, batch: PendingBatch, then: Moved) -> Result<u64, StoreError> {
        let PendingBatch { pending, rows } = batch;
        let mut tx = self.begin().await?;
        let (mut unchanged, mut moved) = (Vec::new(), Vec::new());
        for (patient, seen) in &pending {
            let gone = tx
                .db()
                .execute(
                    "DELETE FROM patient_records_pending WHERE patient_id = $1 AND marks = $2",
                    &args![patient, *seen],
                )
                .await?;
            if gone == 1 {
                unchanged.push(patient.clone());
            } else {
                moved.push(patient.clone());
            }
        }
        // Locked in the same order as every rebuild locks (Rust's, not the collation's).
        unchanged.sort();
        if self.backend == Backend::Postgres && !unchanged.is_empty() {
            tx.lock_patients(&unchanged).await?;
        }
        let keep: std::collections::HashSet<&String> = unchanged.iter().collect();
        let fresh: Vec<(String, Vec<u8>)> =
            rows.into_iter().filter(|(p, _)| keep.contains(p)).collect();
        tx.write_records(&unchanged, &fresh).await?;
        if then == Moved::Leave {
            moved.clear();
        }
        if !moved.is_empty() {
            let list = tx.marks(1, moved.len());
            let lock = if self.backend == Backend::Postgres {
                " FOR UPDATE"
            } else {
                ""
            };
            let sql = format!(
                "SELECT patient_id FROM patient_records_pending WHERE patient_id IN ({list}) \
                 ORDER BY patient_id{lock}"
            );
            moved = tx.db().rows(&sql, &args(&moved), |r| r.text(0)).await?;
            if !moved.is_empty() {
                tx.rebuild_patient_records(&moved, &self.record_lines)
                    .await?;
                let sql = format!(
                    "DELETE FROM patient_records_pending WHERE patient_id IN ({})",
                    tx.marks(1, moved.len())
                );
                tx.db().execute(&sql, &args(&moved)).await?;
            }
        }
        tx.commit().await?;
        Ok((unchanged.len() + moved.len()) as u64)
    }

    /// Makes sure the projection is current before a population run: every row marked
    /// pending rebuilt, and every patient's row when the rows follow another version of the
    /// projection (once, after an upgrade; `progress` is told (done, total)). Returns how
    /// many patients were rebuilt.
    pub async fn ensure_patient_records(
        &self,
        progress: impl Fn(u64, u64),
    ) -> Result<u64, StoreError> {
        if self.projection_version().await?.as_deref() == Some(self.projection_tag().as_str()) {
            return self.apply_pending_patient_records(Moved::Rebuild).await;
        }
        let total = self.count_patients().await?;
        sqlx::query("DELETE FROM patient_records")
            .execute(&self.writer)
            .await?;
        let mut after: Option<String> = None;
        let mut done = 0;
        loop {
            let ids: Vec<String> = sqlx::query(
                "SELECT id FROM resources WHERE resource_type = 'Patient' AND deleted = 0 \
                 AND id > $1 ORDER BY id LIMIT 500",
            )
            .bind(after.clone().unwrap_or_default())
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
            let Some(last) = ids.last() else { break };
            after = Some(last.clone());
            let mut tx = self.begin().await?;
            tx.rebuild_patient_records(&ids, &self.record_lines).await?;
            tx.commit().await?;
            done += ids.len() as u64;
            progress(done, total);
        }
        self.set_projection_version().await?;
        Ok(done + self.apply_pending_patient_records(Moved::Rebuild).await?)
    }
}

/// The SQLite side of [`Store::patient_record_batches`].
fn scan_sqlite(
    readers: &Readers,
    limit: usize,
    tx: &mpsc::Sender<Result<RecordBatch, StoreError>>,
) -> Result<(), StoreError> {
    let lent = readers.lend()?;
    let mut statement = lent
        .conn()
        .prepare("SELECT patient_id, record FROM patient_records ORDER BY patient_id")?;
    let mut rows = statement.query([])?;
    let mut batch = Vec::with_capacity(limit);
    while let Some(row) = rows.next()? {
        batch.push((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?));
        if batch.len() == limit {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(limit));
            if tx.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        // As above: a caller that went away has nothing to receive.
        let _ = tx.blocking_send(Ok(batch));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    /// A line naming the resources it was given, in order.
    #[derive(Debug)]
    struct Names;

    struct NamesSoFar(Vec<String>);

    impl RecordLine for Names {
        fn name(&self) -> &'static str {
            "~names/1"
        }
        fn builder(&self) -> Box<dyn LineBuilder> {
            Box::new(NamesSoFar(Vec::new()))
        }
    }

    impl LineBuilder for NamesSoFar {
        fn add(&mut self, r: &Value) {
            self.0.push(format!("{}/{}", r["resourceType"], r["id"]));
        }
        fn finish(self: Box<Self>) -> String {
            // A newline of a line's own is kept off the row's lines.
            self.0.join("\n")
        }
    }

    #[test]
    fn rows_built_one_resource_at_a_time_are_each_patients_whole_record() {
        let resources = [
            (
                "a",
                json!({"resourceType": "Observation", "id": "oa1", "status": "final"}),
            ),
            ("b", json!({"resourceType": "Patient", "id": "b"})),
            (
                "a",
                json!({"resourceType": "Patient", "id": "a", "text": {"div": "<div/>"}}),
            ),
            ("c", json!({"resourceType": "Observation", "id": "oc1"})),
            ("a", json!({"resourceType": "Condition", "id": "ca1"})),
            ("b", json!({"resourceType": "Observation", "id": "ob1"})),
            ("a", json!({"resourceType": "Observation", "id": "oa2"})),
        ];
        let rows: Vec<ResourceRow> = resources
            .iter()
            .map(|(p, r)| {
                let field = |k: &str| r[k].as_str().unwrap().to_string();
                (
                    p.to_string(),
                    field("resourceType"),
                    field("id"),
                    r.to_string(),
                )
            })
            .collect();
        let lines: Vec<Arc<dyn RecordLine>> = vec![Arc::new(Names)];
        let Built { rows, sizes } = built(rows, &lines).unwrap();
        assert_eq!(
            sizes,
            [
                ("a".to_string(), 4),
                ("b".to_string(), 2),
                ("c".to_string(), 1)
            ],
            "every patient's record is counted, one without a Patient resource too"
        );

        // Each patient's row is what their whole record makes at once; c has no Patient
        // resource, so no row.
        let whole = |p: &str| {
            let mine: Vec<Value> = resources
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, r)| r.clone())
                .collect();
            let line = Names.line(&mine).replace('\n', " ");
            projection::encode_row(&format!("~names/1\t{line}\n"), &projection::record(&mine))
        };
        let patients: Vec<&str> = rows.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(patients, ["a", "b"]);
        for (p, row) in &rows {
            assert_eq!(*row, whole(p), "{p}");
        }
        assert_eq!(
            projection::decode_lines(&rows[0].1).unwrap(),
            "~names/1\t\"Observation\"/\"oa1\" \"Patient\"/\"a\" \"Condition\"/\"ca1\" \"Observation\"/\"oa2\"\n"
        );
    }
}
