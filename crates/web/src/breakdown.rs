//! The groups of a measures page's breakdown as its tables show them: by preferred language
//! (named in the reader's words), age band and sex, each under its heading.

use crate::i18n::Tr;
use std::collections::BTreeMap;

/// A share as a percentage with one decimal, or a dash when there is nothing to divide by.
pub(crate) fn pct(s: Option<f64>) -> String {
    s.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}

/// Each group's heading and its rows, made by `row` from a group's label and figures.
pub(crate) fn by_person<T, R>(
    t: &Tr,
    by_language: &BTreeMap<String, T>,
    by_age_band: &BTreeMap<String, T>,
    by_sex: &BTreeMap<String, T>,
    row: impl Fn(String, &T) -> R,
) -> Vec<(String, Vec<R>)> {
    vec![
        (
            t.t("social-measures-language"),
            by_language
                .iter()
                .map(|(k, x)| row(crate::i18n::language_name(k), x))
                .collect(),
        ),
        (
            t.t("social-measures-age"),
            by_age_band.iter().map(|(k, x)| row(k.clone(), x)).collect(),
        ),
        (
            t.t("social-measures-sex"),
            by_sex.iter().map(|(k, x)| row(k.clone(), x)).collect(),
        ),
    ]
}
