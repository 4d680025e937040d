//! Bulk import: resources keep their own ids, are validated one by one, and are written in
//! batched transactions. A bad resource is reported with where it came from and skipped; it
//! never stops the rest. Importing the same data twice changes nothing.

use crate::caller::Caller;
use crate::error::AppError;
use crate::fhir_api::{Write, WriteRules};
use coproduce_core::Clock;
use coproduce_fhir::stream::SourceItem;
use coproduce_fhir::{IssueCode, OperationOutcome, Resource, parse_resource_value};
use coproduce_store::{AuditEntry, ImportOutcome, Prepared, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Resources written per database transaction: about 1,200 synthetic patients, or a second
/// or two of the writer at a time. Larger batches write each index page they change once for
/// more rows (5,000 imported about 12% slower).
pub const BATCH: usize = 20_000;

/// Counts per resource type, and every rejection with its location and reason.
#[derive(Debug, Default, Clone)]
pub struct ImportSummary {
    pub by_type: BTreeMap<String, TypeCounts>,
    pub rejected: Vec<(String, String)>,
    /// Items deliberately not imported, with the reason.
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TypeCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

impl ImportSummary {
    pub fn total(&self) -> TypeCounts {
        self.by_type
            .values()
            .fold(TypeCounts::default(), |a, c| TypeCounts {
                created: a.created + c.created,
                updated: a.updated + c.updated,
                unchanged: a.unchanged + c.unchanged,
                rejected: a.rejected + c.rejected,
            })
    }
}

/// Takes resources one at a time and writes them in batches.
pub struct Importer {
    store: Store,
    clock: Arc<dyn Clock>,
    /// What is queued: where it came from, the record made ready to write, and whether a
    /// rule derived it (then it is written only if absent).
    pending: Vec<(String, Prepared, bool)>,
    summary: ImportSummary,
    /// The workflows' rules on writes, and the caller they see.
    rules: WriteRules,
    caller: Caller,
    /// How the audit trail names who imports.
    actor: String,
    /// The batch being written while the next one is gathered: validating and writing
    /// overlap, one batch apart.
    writing: Option<tokio::task::JoinHandle<Result<Written, AppError>>>,
}

/// A written batch: each resource's type and outcome, in order.
type Written = Vec<(String, ImportOutcome)>;

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Importer {
    /// An importer that runs the given write rules on every resource (`Importer::new` in
    /// `crate::workflows` gives it every workflow's); `actor` names who imports in the audit
    /// trail (`cli:import`, ...).
    pub fn with_rules(store: Store, clock: Arc<dyn Clock>, actor: &str, rules: WriteRules) -> Self {
        Importer {
            store,
            clock,
            rules,
            caller: Caller::system(actor),
            pending: Vec::with_capacity(BATCH),
            summary: ImportSummary::default(),
            actor: actor.to_string(),
            writing: None,
        }
    }

    /// Validates one item; queues it, or records why it was rejected.
    pub async fn add(&mut self, item: SourceItem) -> Result<(), AppError> {
        let resource = item.resource.and_then(parse_resource_value);
        self.add_checked(item.location, item.skipped, resource)
            .await
    }

    /// Takes an item already validated (by a reader on another thread).
    pub async fn add_checked(
        &mut self,
        location: String,
        skipped: Option<String>,
        resource: Result<Resource, OperationOutcome>,
    ) -> Result<(), AppError> {
        if let Some(why) = skipped {
            self.summary.skipped.push((location, why));
            return Ok(());
        }
        let checked = resource.and_then(|r| {
            if r.id().is_some() {
                Ok(r)
            } else {
                Err(OperationOutcome::error(
                    IssueCode::Required,
                    format!("{}.id", r.type_name()),
                    "import keeps resources' own ids, and this one has none",
                ))
            }
        });
        // The workflows' rules, as on any other path: a refusal rejects this resource only.
        let write = Write {
            caller: &self.caller,
            creating: true,
            previous: None,
            importing: true,
            now: self.clock.now(),
        };
        let checked = match checked.map(|r| {
            let r = self.rules.apply(&write, r)?;
            let derived = self.rules.derive(&write, &r)?;
            Ok((r, derived))
        }) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(AppError::Invalid(outcome))) | Err(outcome) => Err(outcome),
            Ok(Err(e)) => return Err(e),
        };
        match checked {
            Ok((r, derived)) => {
                // Made ready here, so the writer does only what needs the store.
                self.pending
                    .push((location.clone(), Prepared::new(r, write.now)?, false));
                for d in derived {
                    let d = Prepared::new(d.resource, write.now)?;
                    self.pending.push((location.clone(), d, true));
                }
                if self.pending.len() >= BATCH {
                    self.start_writing().await?;
                }
            }
            Err(outcome) => self.reject(location, None, outcome.to_string()),
        }
        Ok(())
    }

    fn reject(&mut self, location: String, rt: Option<&str>, reason: String) {
        if let Some(rt) = rt {
            self.summary
                .by_type
                .entry(rt.to_string())
                .or_default()
                .rejected += 1;
        }
        self.summary.rejected.push((location, reason));
    }

    /// Writes what is queued, in one transaction, and waits until every batch is written.
    pub async fn flush(&mut self) -> Result<(), AppError> {
        self.start_writing().await?;
        self.settle().await
    }

    /// Waits for the batch being written, then starts writing what is queued.
    async fn start_writing(&mut self) -> Result<(), AppError> {
        self.settle().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
        let (store, now, actor) = (self.store.clone(), self.clock.now(), self.actor.clone());
        self.writing = Some(tokio::spawn(write_batch(store, now, actor, batch)));
        Ok(())
    }

    /// Waits for the batch being written and counts its outcomes.
    async fn settle(&mut self) -> Result<(), AppError> {
        let Some(writing) = self.writing.take() else {
            return Ok(());
        };
        let written = writing
            .await
            .map_err(|e| AppError::Internal(format!("writing an import batch: {e}")))??;
        for (rt, o) in written {
            let c = self.summary.by_type.entry(rt).or_default();
            match o {
                ImportOutcome::Created => c.created += 1,
                ImportOutcome::Updated => c.updated += 1,
                ImportOutcome::Unchanged => c.unchanged += 1,
            }
        }
        Ok(())
    }

    /// Writes the rest and returns the summary.
    pub async fn finish(mut self) -> Result<ImportSummary, AppError> {
        self.flush().await?;
        Ok(self.summary)
    }
}

/// Writes one batch in one transaction, with one audit row for it.
async fn write_batch(
    store: Store,
    now: time::OffsetDateTime,
    actor: String,
    batch: Vec<(String, Prepared, bool)>,
) -> Result<Written, AppError> {
    let mut tx = store.begin().await?;
    // What a rule derived is the record as it follows from its source; the import brings
    // the record as it was: one that exists is kept.
    let mut kept = Vec::with_capacity(batch.len());
    for (location, r, derived) in batch {
        if derived
            && tx
                .current_stored(r.type_name(), r.id())
                .await?
                .is_some_and(|s| !s.deleted)
        {
            continue;
        }
        kept.push((location, r));
    }
    let batch = kept;
    let types: Vec<String> = batch
        .iter()
        .map(|(_, r)| r.type_name().to_string())
        .collect();
    let outcomes = tx
        .import_prepared(batch.into_iter().map(|(_, r)| r).collect())
        .await?;
    let count = |o: ImportOutcome| outcomes.iter().filter(|x| **x == o).count();
    let kinds: std::collections::BTreeSet<&str> = types.iter().map(String::as_str).collect();
    tx.audit(&AuditEntry {
        at: coproduce_core::unix_millis(now),
        actor,
        action: "import".into(),
        outcome: "allowed".into(),
        detail: Some(format!(
            "{} created, {} updated, {} unchanged ({})",
            count(ImportOutcome::Created),
            count(ImportOutcome::Updated),
            count(ImportOutcome::Unchanged),
            kinds.into_iter().collect::<Vec<_>>().join(", ")
        )),
        ..AuditEntry::default()
    })
    .await?;
    tx.commit().await?;
    Ok(types.into_iter().zip(outcomes).collect())
}
