//! Whether social needs are seen and the loop closes, measured (CLINICAL.md sections 4 and 7):
//! the share of patients screened in the last 12 months, the positive rate per domain among
//! those screened, referrals made, the loop closure rate (referrals completed with an outcome
//! recorded, of those accepted: the published study's 98 of 360, 27%), the median days to
//! closure, the need-met rate by the organisation's account and by the patient's, and the
//! reasons referrals ended without closing; overall and by language, age band and sex.

use super::Domain;
use super::referral::{Ending, Helped, Status};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// One patient as the measures see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub language: String,
    pub age_band: String,
    pub sex: String,
    /// Their latest completed screening, and the domains it found positive.
    pub screened: Option<OffsetDateTime>,
    pub positive: Vec<Domain>,
}

/// One referral as the measures see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralFacts {
    /// Index of the patient in the people given.
    pub person: usize,
    pub made: OffsetDateTime,
    pub status: Status,
    /// Whether the organisation ever accepted it (it may have ended since).
    pub accepted: bool,
    pub ending: Option<Ending>,
    pub closed: Option<OffsetDateTime>,
    pub patient_says: Option<Helped>,
}

impl ReferralFacts {
    /// The loop is closed: completed with an outcome recorded.
    pub fn closed_loop(&self) -> bool {
        super::referral::loop_closed(self.status, self.ending)
    }
}

/// The counts behind the measures, for one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub patients: usize,
    pub screened: usize,
    /// Positive screens per domain (in `Domain::ALL` order).
    pub positive: [usize; 6],
    pub referrals: usize,
    pub accepted: usize,
    pub closed_loop: usize,
    pub days_to_closure: Vec<i64>,
    /// Endings recorded by the organisation, and those that met the need.
    pub ended_with_reason: usize,
    pub need_met: usize,
    /// The patients' word: answered, and "it helped".
    pub patient_answered: usize,
    pub patient_helped: usize,
    /// Why referrals ended without closing the loop, by reason (and "no outcome yet" for
    /// accepted ones still open).
    pub not_closed: BTreeMap<&'static str, usize>,
}

fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Tally {
    pub fn screening_rate(&self) -> Option<f64> {
        share(self.screened, self.patients)
    }

    pub fn positive_rate(&self, d: Domain) -> Option<f64> {
        let i = Domain::ALL.iter().position(|x| *x == d).unwrap_or(0);
        share(self.positive[i], self.screened)
    }

    /// Completed with an outcome, of those the organisation accepted.
    pub fn closure_rate(&self) -> Option<f64> {
        share(self.closed_loop, self.accepted)
    }

    pub fn median_days_to_closure(&self) -> Option<i64> {
        let mut d = self.days_to_closure.clone();
        d.sort_unstable();
        (!d.is_empty()).then(|| d[(d.len() - 1) / 2])
    }

    pub fn need_met_by_organisation(&self) -> Option<f64> {
        share(self.need_met, self.ended_with_reason)
    }

    pub fn need_met_by_patient(&self) -> Option<f64> {
        share(self.patient_helped, self.patient_answered)
    }
}

/// The report: overall, and by language, age band and sex.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub overall: Tally,
    pub by_language: BTreeMap<String, Tally>,
    pub by_age_band: BTreeMap<String, Tally>,
    pub by_sex: BTreeMap<String, Tally>,
}

/// An age band of the measures' breakdown.
pub fn age_band(birth: Option<time::Date>, today: time::Date) -> String {
    let Some(b) = birth else {
        return "unknown".into();
    };
    let mut age = today.year() - b.year();
    if (today.month() as u8, today.day()) < (b.month() as u8, b.day()) {
        age -= 1;
    }
    match age {
        ..18 => "0-17",
        18..45 => "18-44",
        45..65 => "45-64",
        65..75 => "65-74",
        _ => "75+",
    }
    .into()
}

/// Measures the people and their referrals as of `now` (screened: in the 12 months before).
pub fn report(people: &[Person], referrals: &[ReferralFacts], now: OffsetDateTime) -> Report {
    let mut r = Report::default();
    let year_ago = now - Duration::days(365);
    let groups = |r: &mut Report, p: &Person, f: &mut dyn FnMut(&mut Tally)| {
        f(&mut r.overall);
        f(r.by_language.entry(p.language.clone()).or_default());
        f(r.by_age_band.entry(p.age_band.clone()).or_default());
        f(r.by_sex.entry(p.sex.clone()).or_default());
    };
    for p in people {
        let screened = p.screened.is_some_and(|s| s > year_ago && s <= now);
        groups(&mut r, p, &mut |t: &mut Tally| {
            t.patients += 1;
            if screened {
                t.screened += 1;
                for d in &p.positive {
                    if let Some(i) = Domain::ALL.iter().position(|x| x == d) {
                        t.positive[i] += 1;
                    }
                }
            }
        });
    }
    for f in referrals {
        let Some(p) = people.get(f.person) else {
            continue;
        };
        groups(&mut r, p, &mut |t: &mut Tally| {
            t.referrals += 1;
            if f.accepted {
                t.accepted += 1;
            }
            if f.closed_loop() {
                t.closed_loop += 1;
                if let Some(c) = f.closed {
                    t.days_to_closure.push((c - f.made).whole_days());
                }
            } else if f.accepted {
                let why = match (f.status.is_final(), f.ending) {
                    (true, Some(e)) => e.as_str(),
                    (true, None) => "no-reason",
                    (false, _) => "no-outcome-yet",
                };
                *t.not_closed.entry(why).or_default() += 1;
            }
            if let (true, Some(e)) = (f.status.is_final(), f.ending) {
                t.ended_with_reason += 1;
                if e == Ending::NeedMet {
                    t.need_met += 1;
                }
            }
            if let Some(h) = f.patient_says {
                t.patient_answered += 1;
                if h.need_met() {
                    t.patient_helped += 1;
                }
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

    fn person(lang: &str, screened: Option<OffsetDateTime>, positive: &[Domain]) -> Person {
        Person {
            language: lang.into(),
            age_band: "45-64".into(),
            sex: "female".into(),
            screened,
            positive: positive.to_vec(),
        }
    }

    fn referral(person: usize, status: Status, ending: Option<Ending>, days: i64) -> ReferralFacts {
        ReferralFacts {
            person,
            made: NOW - Duration::days(30),
            status,
            accepted: !matches!(status, Status::Requested | Status::Rejected),
            ending,
            closed: status.is_final().then(|| NOW - Duration::days(30 - days)),
            patient_says: None,
        }
    }

    #[test]
    fn the_measures_count_by_hand() {
        let people = vec![
            person(
                "es",
                Some(NOW - Duration::days(10)),
                &[Domain::Food, Domain::Transportation],
            ),
            person("es", Some(NOW - Duration::days(400)), &[Domain::Food]),
            person("en", None, &[]),
            person("en", Some(NOW - Duration::days(100)), &[]),
        ];
        let mut helped = referral(0, Status::Completed, Some(Ending::NeedMet), 8);
        helped.patient_says = Some(Helped::Yes);
        let mut not_helped = referral(0, Status::Completed, Some(Ending::NeedNotMet), 20);
        not_helped.patient_says = Some(Helped::Partly);
        let referrals = vec![
            helped,
            not_helped,
            referral(3, Status::Failed, Some(Ending::CouldNotReach), 14),
            referral(3, Status::Accepted, None, 0),
            referral(3, Status::Requested, None, 0),
        ];
        let r = report(&people, &referrals, NOW);
        let t = &r.overall;
        // Two of four screened within 12 months (the one 400 days ago is not).
        assert_eq!((t.patients, t.screened), (4, 2));
        assert_eq!(t.positive_rate(Domain::Food), Some(0.5));
        assert_eq!(t.positive_rate(Domain::Transportation), Some(0.5));
        assert_eq!((t.referrals, t.accepted, t.closed_loop), (5, 4, 2));
        assert_eq!(t.closure_rate(), Some(0.5));
        assert_eq!(t.median_days_to_closure(), Some(8));
        assert_eq!(t.need_met_by_organisation(), Some(1.0 / 3.0));
        assert_eq!(t.need_met_by_patient(), Some(0.5));
        assert_eq!(t.not_closed.get("could-not-reach"), Some(&1));
        assert_eq!(t.not_closed.get("no-outcome-yet"), Some(&1));
        assert_eq!(r.by_language["es"].screened, 1);
        assert_eq!(r.by_language["en"].referrals, 3);
        let today = time::macros::date!(2026 - 12 - 01);
        assert_eq!(
            age_band(Some(time::macros::date!(1961 - 12 - 02)), today),
            "45-64"
        );
        assert_eq!(
            age_band(Some(time::macros::date!(1961 - 12 - 01)), today),
            "65-74"
        );
        assert_eq!(age_band(None, today), "unknown");
    }
}
