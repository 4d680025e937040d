//! AHRQ PQI 01 and PQI 05 over the store, read as CMS122 is: each patient's measure
//! projection in batches, decoded and counted in parallel with rayon while the next batch is
//! read; only the tallies (and the qualifying Encounters) are kept. The rules are
//! `coproduce_measures::pqi`'s.

use super::{BATCH, audit_run, record_of};
use crate::error::AppError;
use coproduce_core::Clock;
use coproduce_measures::pqi::{Indicator, Tally, discharges_of};
use coproduce_store::Store;
use rayon::prelude::*;
use std::sync::Arc;
use time::Date;

/// An indicator over every patient in the store for `[start, end]`, with how many patients
/// were read; the run is audited. `progress` sees the number done so far.
pub async fn pqi(
    store: &Store,
    clock: &Arc<dyn Clock>,
    actor: &str,
    indicator: Indicator,
    start: Date,
    end: Date,
    progress: impl Fn(u64),
) -> Result<(Tally, u64), AppError> {
    let mut tally = Tally::new(indicator, start, end);
    let mut patients = 0u64;
    store.ensure_patient_records(|_, _| {}).await?;
    let mut batches = store.patient_record_batches(BATCH);
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        let n = batch.len() as u64;
        let part = tokio::task::spawn_blocking(move || {
            batch
                .par_iter()
                .map(|(id, text)| {
                    let r = record_of(id, text)?;
                    let (born, stays) = discharges_of(&r);
                    let mut t = Tally::new(indicator, start, end);
                    t.add(id, born, &stays);
                    Ok::<_, AppError>(t)
                })
                .try_reduce(
                    || Tally::new(indicator, start, end),
                    |mut a, b| {
                        a.merge(b);
                        Ok(a)
                    },
                )
        })
        .await
        .map_err(|e| AppError::Internal(format!("counting a batch: {e}")))??;
        tally.merge(part);
        patients += n;
        progress(patients);
    }
    tally.counted.sort();
    let detail = format!(
        "{} over {patients} patients, {start} to {end}: {} discharges",
        indicator.as_str(),
        tally.discharges
    );
    audit_run(store, clock, actor, indicator.as_str(), detail).await?;
    Ok((tally, patients))
}
