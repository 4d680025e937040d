//! The loop's measures over the store (for the analyst and the manager), and over a generated
//! population of concerns (for the figures a site can compare its own against).

use super::*;
use coproduce_core::speakup::measures::{Observed, Report, report};
use coproduce_core::speakup::{Kind, reads_measures};
use std::collections::{BTreeMap, BTreeSet};

impl SpeakUp {
    /// The measures over every concern in the store, as of now: for a quality analyst or a
    /// manager; the read of each concern is audited as theirs.
    pub async fn measures(&self, caller: &Caller, kind: Kind) -> Result<Report> {
        let role = match &caller.actor.who {
            // The command line reads them as the site's operator.
            Who::Analyst | Who::System => Some(Role::QualityAnalyst),
            _ => role_of(caller),
        };
        if !role.is_some_and(reads_measures) {
            return Err(AppError::Forbidden(
                "the loop's measures are for quality analysts and managers".into(),
            )
            .into());
        }
        let sys = on_behalf(&caller.label, Some(caller));
        let records: Vec<ConcernRecord> = self
            .api
            .search_all(
                &sys,
                "Communication",
                &[(
                    "category".to_string(),
                    format!("{SPEAKUP}|{}", kind.as_str()),
                )],
            )
            .await?
            .iter()
            .filter_map(|s| s.json().ok().as_ref().and_then(ConcernRecord::of))
            .collect();
        let names: BTreeMap<String, String> = self
            .units()
            .await?
            .into_iter()
            .map(|u| (u.id, u.name))
            .collect();
        Ok(report_of(
            &records,
            &names,
            &self.rules,
            &self.calendar,
            self.now(),
        ))
    }
}

/// The measures over these concerns (units named by `names` where known), as of `now`.
pub fn report_of(
    records: &[ConcernRecord],
    names: &BTreeMap<String, String>,
    rules: &Rules,
    calendar: &BusinessCalendar,
    now: OffsetDateTime,
) -> Report {
    // A reporter came back when they raised a later concern with their name, or from the
    // answer's page ("raise another concern", which links the new one to this one).
    let mut latest: BTreeMap<&str, OffsetDateTime> = BTreeMap::new();
    for r in records {
        if let Some(who) = &r.reporter {
            let at = latest.entry(who).or_insert(r.concern.raised_at);
            *at = (*at).max(r.concern.raised_at);
        }
    }
    let followed: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r.follows.as_deref())
        .collect();
    let observed = records.iter().map(|r| Observed {
        concern: &r.concern,
        unit: names.get(&r.unit).map_or(r.unit.as_str(), String::as_str),
        language: &r.language,
        raised_again: followed.contains(r.id.as_str())
            || r.reporter
                .as_deref()
                .and_then(|w| latest.get(w))
                .is_some_and(|l| *l > r.concern.raised_at),
    });
    report(observed, rules, calendar, now)
}
