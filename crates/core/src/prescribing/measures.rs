//! Whether prescribing sees the whole person, measured (CLINICAL.md sections 4 and 7), over
//! the 12 months before `now`: the share of new prescriptions whose partnership check is
//! complete; barriers found, by kind; barriers resolved within their deadline and the median
//! time to resolution; the patients' "I can't" reports and how they ended; the
//! cost-related non-adherence rate (any of the four MCBS items, and each, beside the survey's
//! 18.3%, 15.8% and 12.4%); first fills confirmed at the check-in; overall and by language,
//! age band, sex and coverage kind (the equity breakdown); and, descriptively, the change in
//! HbA1c over the 6 months after a barrier was resolved.

use super::CoverageKind;
use super::check::{CostAnswers, Kind, Resolution};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// One patient as the measures see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub language: String,
    pub age_band: String,
    pub sex: String,
    /// Their active coverage's kind, if recorded.
    pub coverage: Option<CoverageKind>,
    /// Their latest answers to the cost questions, and when they gave them.
    pub cost_answers: Option<(OffsetDateTime, CostAnswers)>,
}

impl Person {
    /// The coverage group of the equity breakdown.
    pub fn coverage_group(&self) -> &'static str {
        self.coverage.map_or("unknown", CoverageKind::as_str)
    }
}

/// One prescription as the measures see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrescriptionFacts {
    /// Index of the patient in the people given.
    pub person: usize,
    pub written: OffsetDateTime,
    /// Where its partnership check stands: complete (every question answered) or not; None
    /// when it has not run.
    pub check_complete: Option<bool>,
    /// The patient's answer at the check-in: got it and started it, or not.
    pub first_fill: Option<bool>,
}

/// How a barrier ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Open,
    Resolved {
        at: OffsetDateTime,
        how: Resolution,
    },
    /// Ended without being resolved (its prescription was switched or stopped).
    Cancelled,
}

/// One barrier as the measures see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarrierFacts {
    pub person: usize,
    pub kind: Kind,
    /// Raised by the patient ("I can't"), not found by the check.
    pub patient_said: bool,
    pub opened: OffsetDateTime,
    pub due: Option<OffsetDateTime>,
    pub outcome: Outcome,
    /// The patient's HbA1c (%) before the resolution and within 6 months after it, when both
    /// were measured (see [`hba1c_around`]).
    pub hba1c: Option<(f64, f64)>,
}

/// The HbA1c readings (when, %) around a resolution: the latest in the 6 months before it and
/// the latest in the 6 months after it; None unless both exist.
pub fn hba1c_around(
    readings: &[(OffsetDateTime, f64)],
    resolved: OffsetDateTime,
) -> Option<(f64, f64)> {
    let half_year = Duration::days(183);
    let latest = |from: OffsetDateTime, to: OffsetDateTime| {
        readings
            .iter()
            .filter(|(at, _)| *at > from && *at <= to)
            .max_by_key(|(at, _)| *at)
            .map(|(_, v)| *v)
    };
    Some((
        latest(resolved - half_year, resolved)?,
        latest(resolved, resolved + half_year)?,
    ))
}

/// The counts behind the measures, for one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub patients: usize,
    pub prescriptions: usize,
    /// Prescriptions whose check ran, and those whose check is complete.
    pub checked: usize,
    pub complete: usize,
    pub barriers: usize,
    /// Barriers by kind (in `Kind::ALL` order).
    pub by_kind: [usize; 5],
    /// Barriers resolved; resolved by their deadline; and those whose deadline has come
    /// (resolved, or open past it): the denominator of "resolved on time".
    pub resolved: usize,
    pub on_time: usize,
    pub deadline_came: usize,
    pub minutes_to_resolution: Vec<i64>,
    /// The patients' "I can't" reports, and how each ended (a resolution's code, `open` or
    /// `cancelled`).
    pub cant: usize,
    pub cant_outcomes: BTreeMap<&'static str, usize>,
    /// Patients who answered the cost questions in the 12 months, those with any "yes",
    /// and each item's "yes" (in `CostAnswers::ITEMS` order).
    pub cost_answered: usize,
    pub cost_any: usize,
    pub cost_items: [usize; 4],
    /// Prescriptions whose check-in has opened (7 days after writing), and the answers.
    pub first_fill_asked: usize,
    pub first_fill_yes: usize,
    pub first_fill_no: usize,
    /// HbA1c after minus before, per resolved barrier with both readings.
    pub hba1c_changes: Vec<f64>,
}

fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Tally {
    pub fn complete_rate(&self) -> Option<f64> {
        share(self.complete, self.prescriptions)
    }

    pub fn kind(&self, k: Kind) -> usize {
        Kind::ALL
            .iter()
            .position(|x| *x == k)
            .map_or(0, |i| self.by_kind[i])
    }

    pub fn on_time_rate(&self) -> Option<f64> {
        share(self.on_time, self.deadline_came)
    }

    /// The median time from a barrier's opening to its resolution, in days.
    pub fn median_days_to_resolution(&self) -> Option<f64> {
        let mut m = self.minutes_to_resolution.clone();
        m.sort_unstable();
        (!m.is_empty()).then(|| m[(m.len() - 1) / 2] as f64 / 1440.0)
    }

    pub fn crn_rate(&self) -> Option<f64> {
        share(self.cost_any, self.cost_answered)
    }

    pub fn crn_item_rate(&self, item: usize) -> Option<f64> {
        share(
            self.cost_items.get(item).copied().unwrap_or(0),
            self.cost_answered,
        )
    }

    /// Confirmed (got it and started it), of the prescriptions whose check-in opened.
    pub fn first_fill_rate(&self) -> Option<f64> {
        share(self.first_fill_yes, self.first_fill_asked)
    }

    /// The mean HbA1c change (percentage points) over the 6 months after a resolution.
    pub fn mean_hba1c_change(&self) -> Option<f64> {
        let n = self.hba1c_changes.len();
        (n > 0).then(|| self.hba1c_changes.iter().sum::<f64>() / n as f64)
    }
}

/// The report: overall, and by language, age band, sex and coverage kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub overall: Tally,
    pub by_language: BTreeMap<String, Tally>,
    pub by_age_band: BTreeMap<String, Tally>,
    pub by_sex: BTreeMap<String, Tally>,
    pub by_coverage: BTreeMap<String, Tally>,
}

impl Report {
    fn each(&mut self, p: &Person, f: &mut dyn FnMut(&mut Tally)) {
        f(&mut self.overall);
        f(self.by_language.entry(p.language.clone()).or_default());
        f(self.by_age_band.entry(p.age_band.clone()).or_default());
        f(self.by_sex.entry(p.sex.clone()).or_default());
        f(self
            .by_coverage
            .entry(p.coverage_group().to_string())
            .or_default());
    }
}

/// Measures the people, their prescriptions and barriers of the 12 months before `now`.
pub fn report(
    people: &[Person],
    prescriptions: &[PrescriptionFacts],
    barriers: &[BarrierFacts],
    now: OffsetDateTime,
) -> Report {
    let mut r = Report::default();
    let year_ago = now - Duration::days(365);
    let in_year = |t: OffsetDateTime| t > year_ago && t <= now;
    for p in people {
        let answers = p
            .cost_answers
            .filter(|(at, _)| in_year(*at))
            .map(|(_, a)| a);
        r.each(p, &mut |t| {
            t.patients += 1;
            if let Some(a) = answers {
                t.cost_answered += 1;
                if a.any() {
                    t.cost_any += 1;
                }
                for (i, (_, yes)) in a.items().into_iter().enumerate() {
                    if yes {
                        t.cost_items[i] += 1;
                    }
                }
            }
        });
    }
    for f in prescriptions.iter().filter(|f| in_year(f.written)) {
        let Some(p) = people.get(f.person) else {
            continue;
        };
        let asked = f.first_fill.is_some()
            || now - f.written >= Duration::days(super::check::FIRST_FILL_FROM_DAYS);
        r.each(p, &mut |t| {
            t.prescriptions += 1;
            if let Some(complete) = f.check_complete {
                t.checked += 1;
                t.complete += usize::from(complete);
            }
            if asked {
                t.first_fill_asked += 1;
                match f.first_fill {
                    Some(true) => t.first_fill_yes += 1,
                    Some(false) => t.first_fill_no += 1,
                    None => {}
                }
            }
        });
    }
    for b in barriers.iter().filter(|b| in_year(b.opened)) {
        let Some(p) = people.get(b.person) else {
            continue;
        };
        let kind = Kind::ALL.iter().position(|k| *k == b.kind).unwrap_or(4);
        let (resolved, on_time, came) = match b.outcome {
            Outcome::Resolved { at, .. } => (Some(at), b.due.is_none_or(|d| at <= d), true),
            Outcome::Open => (None, false, b.due.is_some_and(|d| d < now)),
            Outcome::Cancelled => (None, false, false),
        };
        let ending = match b.outcome {
            Outcome::Open => "open",
            Outcome::Cancelled => "cancelled",
            Outcome::Resolved { how, .. } => how.as_str(),
        };
        r.each(p, &mut |t| {
            t.barriers += 1;
            t.by_kind[kind] += 1;
            if let Some(at) = resolved {
                t.resolved += 1;
                t.minutes_to_resolution
                    .push((at - b.opened).whole_minutes().max(0));
                if let Some((before, after)) = b.hba1c {
                    t.hba1c_changes.push(after - before);
                }
            }
            t.deadline_came += usize::from(came);
            t.on_time += usize::from(on_time);
            if b.patient_said {
                t.cant += 1;
                *t.cant_outcomes.entry(ending).or_default() += 1;
            }
        });
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    fn person(lang: &str, coverage: Option<CoverageKind>, answers: Option<CostAnswers>) -> Person {
        Person {
            language: lang.into(),
            age_band: "45-64".into(),
            sex: "female".into(),
            coverage,
            cost_answers: answers.map(|a| (NOW - Duration::days(30), a)),
        }
    }

    fn barrier(person: usize, kind: Kind, outcome: Outcome, days_ago: i64) -> BarrierFacts {
        let opened = NOW - Duration::days(days_ago);
        BarrierFacts {
            person,
            kind,
            patient_said: false,
            opened,
            due: Some(opened + Duration::days(2)),
            outcome,
            hba1c: None,
        }
    }

    #[test]
    fn the_measures_count_by_hand() {
        let skipped = CostAnswers {
            skipped_doses: true,
            ..CostAnswers::default()
        };
        let mut stale = person("en", None, Some(skipped));
        stale.cost_answers = Some((NOW - Duration::days(400), skipped));
        let people = vec![
            person("pt-BR", Some(CoverageKind::Uninsured), Some(skipped)),
            person(
                "en",
                Some(CoverageKind::Medicaid),
                Some(CostAnswers::default()),
            ),
            stale,
        ];
        let written = |person, days: i64, complete, fill| PrescriptionFacts {
            person,
            written: NOW - Duration::days(days),
            check_complete: complete,
            first_fill: fill,
        };
        let prescriptions = vec![
            written(0, 30, Some(true), Some(true)),
            written(0, 20, Some(false), None),
            written(1, 3, Some(true), None),
            written(2, 10, None, Some(false)),
            // Written more than a year ago: not measured.
            written(1, 400, Some(true), Some(true)),
        ];
        let at = |days: i64, hours: i64| NOW - Duration::days(days) + Duration::hours(hours);
        let mut said = barrier(
            0,
            Kind::Afford,
            Outcome::Resolved {
                at: at(30, 36),
                how: Resolution::SwitchedToAlternative,
            },
            30,
        );
        said.patient_said = true;
        said.hba1c = Some((9.0, 8.2));
        let mut open_said = barrier(1, Kind::Reach, Outcome::Open, 1);
        open_said.patient_said = true;
        let barriers = vec![
            said,
            // Resolved late (3 days against a 2-day deadline).
            barrier(
                0,
                Kind::Understand,
                Outcome::Resolved {
                    at: at(20, 72),
                    how: Resolution::TeachBackDone,
                },
                20,
            ),
            // Open past its deadline.
            barrier(2, Kind::Afford, Outcome::Open, 10),
            open_said,
            barrier(0, Kind::Afford, Outcome::Cancelled, 20),
        ];
        let r = report(&people, &prescriptions, &barriers, NOW);
        let t = &r.overall;
        assert_eq!(
            (t.patients, t.prescriptions, t.checked, t.complete),
            (3, 4, 3, 2)
        );
        assert_eq!(t.complete_rate(), Some(0.5));
        assert_eq!(t.barriers, 5);
        assert_eq!(
            (
                t.kind(Kind::Afford),
                t.kind(Kind::Reach),
                t.kind(Kind::Understand)
            ),
            (3, 1, 1)
        );
        // Two resolved, one of them on time; one open past its deadline; the one open
        // within it and the cancelled one have no verdict yet.
        assert_eq!((t.resolved, t.on_time, t.deadline_came), (2, 1, 3));
        assert_eq!(t.on_time_rate(), Some(1.0 / 3.0));
        assert_eq!(t.median_days_to_resolution(), Some(1.5));
        assert_eq!(t.cant, 2);
        assert_eq!(t.cant_outcomes.get("switched-to-alternative"), Some(&1));
        assert_eq!(t.cant_outcomes.get("open"), Some(&1));
        // The answers from 400 days ago are not this year's.
        assert_eq!((t.cost_answered, t.cost_any), (2, 1));
        assert_eq!(t.crn_rate(), Some(0.5));
        assert_eq!(t.crn_item_rate(1), Some(0.5));
        assert_eq!(t.crn_item_rate(0), Some(0.0));
        // The check-in opened for three (the one written 3 days ago is not asked yet).
        assert_eq!(
            (t.first_fill_asked, t.first_fill_yes, t.first_fill_no),
            (3, 1, 1)
        );
        let change = t.mean_hba1c_change().unwrap();
        assert!((change + 0.8).abs() < 1e-9, "{change}");
        assert_eq!(r.by_language["pt-BR"].barriers, 3);
        assert_eq!(r.by_coverage["uninsured"].prescriptions, 2);
        assert_eq!(r.by_coverage["unknown"].prescriptions, 1);
    }

    #[test]
    fn hba1c_is_read_in_the_six_months_either_side() {
        let resolved = NOW - Duration::days(200);
        let readings = [
            (resolved - Duration::days(300), 10.0),
            (resolved - Duration::days(40), 9.1),
            (resolved - Duration::days(10), 8.9),
            (resolved + Duration::days(90), 8.1),
            (resolved + Duration::days(190), 7.0),
        ];
        assert_eq!(hba1c_around(&readings, resolved), Some((8.9, 8.1)));
        assert_eq!(hba1c_around(&readings[..3], resolved), None);
        assert_eq!(hba1c_around(&readings[3..], resolved), None);
    }
}
