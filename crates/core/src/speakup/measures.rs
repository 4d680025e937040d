//! Whether the loop works, measured (CLINICAL.md section 5): time to acknowledge (median and
//! 90th percentile), the share acknowledged and answered within their deadlines, the share of
//! reporters who felt heard, and the share who raised another concern later; overall and by
//! unit, category, the reporter's language and month.
//!
//! A concern counts toward a deadline's share once the deadline is settled: kept (the step was
//! taken in time), missed (taken late, or not taken and now past due). A concern still inside
//! its time counts toward neither, so a month does not look better for being recent.

use super::{Concern, Heard, Rules, Stage};
use crate::calendar::BusinessCalendar;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// One concern as the measures see it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub concern: &'a Concern,
    pub unit: &'a str,
    pub language: &'a str,
    /// The same reporter raised another concern after this one.
    pub raised_again: bool,
}

/// The counts behind the measures, for one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub raised: usize,
    /// Minutes from raising to acknowledgement, of each acknowledged concern.
    pub minutes_to_acknowledge: Vec<i64>,
    /// Concerns whose acknowledgement deadline is settled, and those kept.
    pub acknowledgement_settled: usize,
    pub acknowledged_on_time: usize,
    /// Concerns whose answer deadline is settled, and those answered in time.
    pub answer_settled: usize,
    pub answered_on_time: usize,
    /// The reporters' word: yes, partly, no.
    pub heard: [usize; 3],
    /// Concerns answered (so their reporter could come back), and those whose reporter
    /// raised another later.
    pub answered: usize,
    pub raised_again: usize,
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Tally {
    /// Counts one concern as of `now`.
    pub fn add(
        &mut self,
        c: &Concern,
        raised_again: bool,
        rules: &Rules,
        cal: &BusinessCalendar,
        now: OffsetDateTime,
    ) {
        self.raised += 1;
        let due = c.acknowledgement_due(rules, cal).due;
        match c.acknowledged_at() {
            Some(at) => {
                self.minutes_to_acknowledge
                    .push((at - c.raised_at).whole_minutes());
                self.acknowledgement_settled += 1;
                if at <= due {
                    self.acknowledged_on_time += 1;
                }
            }
            None if now > due => self.acknowledgement_settled += 1,
            None => {}
        }
        if let Some(answer_due) = c.answer_due(rules, cal) {
            match c.answered_at() {
                Some(at) => {
                    self.answer_settled += 1;
                    if at <= answer_due {
                        self.answered_on_time += 1;
                    }
                }
                None if now > answer_due => self.answer_settled += 1,
                None => {}
            }
        }
        if c.stage() >= Stage::Answered {
            self.answered += 1;
            if raised_again {
                self.raised_again += 1;
            }
        }
        for (step, _) in &c.steps {
            if let super::Step::FeltHeard { heard, .. } = step {
                let i = match heard {
                    Heard::Yes => 0,
                    Heard::Partly => 1,
                    Heard::No => 2,
                };
                self.heard[i] += 1;
            }
        }
    }

    fn sorted_minutes(&self) -> Vec<i64> {
        let mut m = self.minutes_to_acknowledge.clone();
        m.sort_unstable();
        m
    }

    /// Median minutes to acknowledge.
    pub fn median_minutes(&self) -> Option<i64> {
        percentile(&self.sorted_minutes(), 0.5)
    }

    /// 90th percentile of minutes to acknowledge.
    pub fn p90_minutes(&self) -> Option<i64> {
        percentile(&self.sorted_minutes(), 0.9)
    }

    pub fn acknowledged_on_time_share(&self) -> Option<f64> {
        share(self.acknowledged_on_time, self.acknowledgement_settled)
    }

    pub fn answered_on_time_share(&self) -> Option<f64> {
        share(self.answered_on_time, self.answer_settled)
    }

    /// The share who said yes, of those who answered the question.
    pub fn felt_heard_share(&self) -> Option<f64> {
        share(self.heard[0], self.heard.iter().sum())
    }

    pub fn raised_again_share(&self) -> Option<f64> {
        share(self.raised_again, self.answered)
    }
}

/// The measures overall and by group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub overall: Tally,
    pub by_unit: BTreeMap<String, Tally>,
    pub by_category: BTreeMap<String, Tally>,
    pub by_language: BTreeMap<String, Tally>,
    /// By the month the concern was raised (`2026-11`, on the site's clock).
    pub by_month: BTreeMap<String, Tally>,
}

/// The measures over these concerns, as of `now`.
pub fn report<'a>(
    concerns: impl IntoIterator<Item = Observed<'a>>,
    rules: &Rules,
    cal: &BusinessCalendar,
    now: OffsetDateTime,
) -> Report {
    let mut r = Report::default();
    for o in concerns {
        let local = cal.local_time(o.concern.raised_at);
        let month = format!("{:04}-{:02}", local.year(), u8::from(local.month()));
        for tally in [
            &mut r.overall,
            r.by_unit.entry(o.unit.to_string()).or_default(),
            r.by_category.entry(o.concern.category.clone()).or_default(),
            r.by_language.entry(o.language.to_string()).or_default(),
            r.by_month.entry(month).or_default(),
        ] {
            tally.add(o.concern, o.raised_again, rules, cal, now);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speakup::{Place, Step, Urgency};
    use time::Duration;
    use time::macros::datetime;

    fn concern(urgency: Urgency, at: OffsetDateTime) -> Concern {
        Concern::raise(
            &Rules::default(),
            urgency,
            Place::Inpatient,
            "hygiene",
            "words",
            at,
        )
        .unwrap()
    }

    #[test]
    fn a_concern_answered_in_time_counts_as_on_time_and_an_open_one_waits() {
        let rules = Rules::default();
        let cal = BusinessCalendar::default();
        let t0 = datetime!(2026-11-30 14:00 UTC);
        let mut on_time = concern(Urgency::Urgent, t0);
        on_time
            .apply(Step::Acknowledged, t0 + Duration::minutes(10))
            .unwrap();
        on_time
            .apply(
                Step::Answered {
                    text: "We came.".into(),
                },
                t0 + Duration::hours(2),
            )
            .unwrap();
        on_time
            .apply(
                Step::FeltHeard {
                    heard: Heard::Yes,
                    comment: String::new(),
                },
                t0 + Duration::hours(3),
            )
            .unwrap();
        let mut late = concern(Urgency::Urgent, t0);
        late.apply(Step::Acknowledged, t0 + Duration::minutes(40))
            .unwrap();
        let missed = concern(Urgency::Urgent, t0);
        let waiting = concern(Urgency::Routine, t0 + Duration::hours(3));
        let now = t0 + Duration::hours(4);
        let all = [&on_time, &late, &missed, &waiting];
        let r = report(
            all.iter().map(|c| Observed {
                concern: c,
                unit: "4w",
                language: "ht",
                raised_again: false,
            }),
            &rules,
            &cal,
            now,
        );
        let t = &r.overall;
        assert_eq!(t.raised, 4);
        // The waiting concern is inside its 4 hours: neither kept nor missed yet.
        assert_eq!((t.acknowledged_on_time, t.acknowledgement_settled), (1, 3));
        assert_eq!(t.minutes_to_acknowledge, vec![10, 40]);
        assert_eq!(t.median_minutes(), Some(10));
        assert_eq!(t.p90_minutes(), Some(40));
        // The answer was due 5 business days after acknowledgement: answered in time; the
        // late one's answer is not yet due.
        assert_eq!((t.answered_on_time, t.answer_settled), (1, 1));
        assert_eq!(t.answered_on_time_share(), Some(1.0));
        assert_eq!(t.felt_heard_share(), Some(1.0));
        assert_eq!(r.by_month.keys().collect::<Vec<_>>(), ["2026-11"]);
        assert_eq!(r.by_unit["4w"].raised, 4);
        assert_eq!(r.by_language["ht"].raised, 4);
    }

    #[test]
    fn reporters_who_come_back_are_counted_among_those_answered() {
        let rules = Rules::default();
        let cal = BusinessCalendar::default();
        let t0 = datetime!(2026-11-30 14:00 UTC);
        let mut a = concern(Urgency::Routine, t0);
        a.apply(Step::Acknowledged, t0).unwrap();
        a.apply(Step::Answered { text: "x".into() }, t0).unwrap();
        let b = concern(Urgency::Routine, t0);
        let r = report(
            [(&a, true), (&b, true)].map(|(c, again)| Observed {
                concern: c,
                unit: "u",
                language: "en",
                raised_again: again,
            }),
            &rules,
            &cal,
            t0,
        );
        assert_eq!((r.overall.raised_again, r.overall.answered), (1, 1));
        assert_eq!(r.overall.raised_again_share(), Some(1.0));
        assert_eq!(Tally::default().median_minutes(), None);
        assert_eq!(Tally::default().felt_heard_share(), None);
    }
}
