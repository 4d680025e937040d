//! Utilisation (CLINICAL.md section 8): emergency visits and inpatient admissions per 1,000
//! patient-years, all-cause and COPD-related (principal diagnosis J44.x), and 30-day
//! readmissions, overall, by month and by care team.
//!
//! A patient contributes patient-time from the later of the period start and their birth
//! to the period end (the record holds no deaths or disenrolment yet).

use std::collections::BTreeMap;
use time::Date;

/// One hospital-side event of a patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub start: Date,
    /// The discharge day (admissions); the start day for an emergency visit.
    pub end: Date,
    pub admission: bool,
    /// Principal diagnosis COPD (J44.x).
    pub copd: bool,
}

/// A patient as utilisation needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct Patient {
    pub born: Option<Date>,
    /// Their care team's name, if any.
    pub team: Option<String>,
    pub events: Vec<Event>,
}

/// Counts over some patient-time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub patient_years: f64,
    pub ed_visits: u64,
    pub copd_ed_visits: u64,
    pub admissions: u64,
    pub copd_admissions: u64,
    /// Admissions within 30 days of an earlier discharge.
    pub readmissions_30d: u64,
}

impl Rates {
    pub fn per_1000(&self, count: u64) -> Option<f64> {
        (self.patient_years > 0.0).then(|| count as f64 * 1000.0 / self.patient_years)
    }

    /// The share of admissions that were readmissions within 30 days.
    pub fn readmission_share(&self) -> Option<f64> {
        (self.admissions > 0).then(|| self.readmissions_30d as f64 / self.admissions as f64)
    }
}

/// Utilisation over a period: overall, by month (`YYYY-MM`) and by care team.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Utilisation {
    pub overall: Rates,
    pub by_month: BTreeMap<String, Rates>,
    pub by_team: BTreeMap<String, Rates>,
}

fn month(d: Date) -> String {
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

fn days(from: Date, to: Date) -> f64 {
    ((to - from).whole_days() + 1).max(0) as f64
}

/// Accumulates patients over the period `[start, end]`.
#[derive(Debug, Clone)]
pub struct Tally {
    start: Date,
    end: Date,
    pub result: Utilisation,
}

impl Tally {
    pub fn new(start: Date, end: Date) -> Self {
        Tally {
            start,
            end,
            result: Utilisation::default(),
        }
    }

    pub fn add(&mut self, p: &Patient) {
        let from = p.born.map_or(self.start, |b| b.max(self.start));
        if from > self.end {
            return;
        }
        let team = p.team.clone().unwrap_or_else(|| "(no care team)".into());
        let years = days(from, self.end) / 365.25;
        self.result.overall.patient_years += years;
        self.result
            .by_team
            .entry(team.clone())
            .or_default()
            .patient_years += years;
        // Patient-time by month.
        let mut m = from;
        while m <= self.end {
            let next = m
                .replace_day(1)
                .ok()
                .and_then(|first| {
                    let (y, mo) = if first.month() == time::Month::December {
                        (first.year() + 1, time::Month::January)
                    } else {
                        (first.year(), first.month().next())
                    };
                    Date::from_calendar_date(y, mo, 1).ok()
                })
                .unwrap_or(self.end.next_day().unwrap_or(self.end));
            let last = next.previous_day().unwrap_or(next).min(self.end);
            self.result
                .by_month
                .entry(month(m))
                .or_default()
                .patient_years += days(m, last) / 365.25;
            m = next;
        }
        let mut admissions: Vec<&Event> = p.events.iter().filter(|e| e.admission).collect();
        admissions.sort_by_key(|e| e.start);
        for e in &p.events {
            if e.start < self.start || e.start > self.end {
                continue;
            }
            let readmission = e.admission
                && admissions.iter().any(|prior| {
                    prior.start < e.start
                        && e.start > prior.end
                        && (e.start - prior.end).whole_days() <= 30
                });
            for r in [
                &mut self.result.overall,
                self.result.by_month.entry(month(e.start)).or_default(),
            ] {
                count(r, e, readmission);
            }
            count(
                self.result.by_team.entry(team.clone()).or_default(),
                e,
                readmission,
            );
        }
    }
}

fn count(r: &mut Rates, e: &Event, readmission: bool) {
    if e.admission {
        r.admissions += 1;
        r.copd_admissions += u64::from(e.copd);
        r.readmissions_30d += u64::from(readmission);
    } else {
        r.ed_visits += 1;
        r.copd_ed_visits += u64::from(e.copd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn ed(d: Date, copd: bool) -> Event {
        Event {
            start: d,
            end: d,
            admission: false,
            copd,
        }
    }

    fn admit(from: Date, to: Date, copd: bool) -> Event {
        Event {
            start: from,
            end: to,
            admission: true,
            copd,
        }
    }

    #[test]
    fn rates_are_per_thousand_patient_years_with_readmissions() {
        let mut t = Tally::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31));
        let team = Some("Riverside".to_string());
        t.add(&Patient {
            born: Some(date!(1950 - 05 - 01)),
            team: team.clone(),
            events: vec![
                ed(date!(2026 - 02 - 10), true),
                admit(date!(2026 - 03 - 01), date!(2026 - 03 - 05), true),
                // 25 days after the discharge: a readmission.
                admit(date!(2026 - 03 - 30), date!(2026 - 04 - 02), false),
                // 40 days after: not one.
                admit(date!(2026 - 05 - 12), date!(2026 - 05 - 13), false),
                // Outside the period.
                ed(date!(2025 - 12 - 31), false),
            ],
        });
        t.add(&Patient {
            born: Some(date!(1980 - 01 - 01)),
            team: None,
            events: vec![],
        });
        let r = &t.result;
        assert!((r.overall.patient_years - 2.0 * 365.0 / 365.25).abs() < 1e-9);
        assert_eq!((r.overall.ed_visits, r.overall.copd_ed_visits), (1, 1));
        assert_eq!((r.overall.admissions, r.overall.copd_admissions), (3, 1));
        assert_eq!(r.overall.readmissions_30d, 1);
        let per = r.overall.per_1000(r.overall.admissions).unwrap();
        assert!((per - 3000.0 * 365.25 / 730.0).abs() < 1e-6, "{per}");
        assert_eq!(r.by_month["2026-03"].admissions, 2);
        assert_eq!(r.by_month.len(), 12);
        let march_years = r.by_month["2026-03"].patient_years;
        assert!(
            (march_years - 2.0 * 31.0 / 365.25).abs() < 1e-9,
            "{march_years}"
        );
        assert_eq!(r.by_team["Riverside"].admissions, 3);
        assert_eq!(r.by_team["(no care team)"].admissions, 0);
    }

    #[test]
    fn a_patient_born_during_the_period_counts_from_birth() {
        let mut t = Tally::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31));
        t.add(&Patient {
            born: Some(date!(2026 - 07 - 01)),
            team: None,
            events: vec![],
        });
        assert!((t.result.overall.patient_years - 184.0 / 365.25).abs() < 1e-9);
        assert!(!t.result.by_month.contains_key("2026-06"));
    }
}
