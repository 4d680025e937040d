//! A generated patient's whole record, put together from each workflow's generator: the
//! measures' (conditions, visits, readings, programs: `measures::synthetic`), their
//! prescribing record (`prescribing::synthetic`) and their side of the partnership
//! (`care::synthetic`). `coproduce generate` writes these; the partnership's tests read the
//! same records in memory and from the store.

use crate::measures::synthetic::{Config, patient};
use serde_json::Value;
use time::OffsetDateTime;

/// What every generated patient's record refers to, written once before the patients (the
/// team members named in the partnership's records).
pub fn shared() -> Vec<Value> {
    crate::care::synthetic::practitioners()
}

/// Patient `index`'s resources (their Patient first), with the prescribing record and the
/// partnership over the 12 months before `end`.
pub fn record(cfg: &Config, index: u64, end: OffsetDateTime) -> Vec<Value> {
    let mut out = patient(cfg, index);
    let id = out
        .first()
        .and_then(|p| p["id"].as_str())
        .map(str::to_string)
        .unwrap_or_default();
    out.extend(crate::prescribing::synthetic::resources(
        cfg.seed, index, &id, end,
    ));
    if let Some(person) = out.first_mut() {
        let partnership = crate::care::synthetic::resources(cfg.seed, index, person, end);
        out.extend(partnership);
    }
    out
}

/// The partnership's figures over `n` generated patients, broken down each way in `by`,
/// read in memory from their whole records exactly as the store's pass reads each patient's
/// row (in parallel, a patient at a time), without a store.
pub fn partnership(
    cfg: &Config,
    n: u64,
    end: OffsetDateTime,
    reader: &crate::care::Reader,
    by: &[coproduce_core::partnership::By],
) -> crate::care::Figures {
    use rayon::prelude::*;
    (0..n)
        .into_par_iter()
        .fold(
            || reader.fold(by),
            |mut f, i| {
                f.add(reader.record(&record(cfg, i, end)));
                f
            },
        )
        .reduce(
            || reader.fold(by),
            |mut a, b| {
                a.merge(b);
                a
            },
        )
        .finish()
}
