//! A generated population for the social-needs measures at scale, deterministic from (seed,
//! index). The rates are modelled, not measured: about two in three patients screened in the
//! year, each domain positive at a rate of the order the AHC model reported, the patient
//! asking help for about half of their needs, and what happens to a referral after the
//! organisation accepts it shaped on the published study (could not reach the patient the most
//! common reason a loop stays open). A site measures its own.

use crate::draw::Draw;
use coproduce_core::social::Domain;
use coproduce_core::social::measures::{Person, ReferralFacts};
use coproduce_core::social::referral::{Ending, Helped, Status};
use time::{Duration, OffsetDateTime};

/// Each domain's positive rate among those screened.
const POSITIVE: [(Domain, f64); 6] = [
    (Domain::LivingSituation, 0.16),
    (Domain::HousingQuality, 0.14),
    (Domain::Food, 0.24),
    (Domain::Transportation, 0.13),
    (Domain::Utilities, 0.10),
    (Domain::InterpersonalSafety, 0.03),
];

/// What becomes of an accepted referral: (status, ending, weight).
const AFTER_ACCEPTANCE: [(Status, Option<Ending>, f64); 8] = [
    (Status::Completed, Some(Ending::NeedMet), 0.21),
    (Status::Completed, Some(Ending::NeedNotMet), 0.06),
    (Status::Failed, Some(Ending::CouldNotReach), 0.33),
    (Status::Cancelled, Some(Ending::Declined), 0.09),
    (Status::Failed, Some(Ending::NotEligible), 0.08),
    (Status::Cancelled, Some(Ending::Other), 0.05),
    (Status::InProgress, None, 0.10),
    (Status::Accepted, None, 0.08),
];

/// The `index`th patient and the referrals made for them, over the year before `end`.
pub fn patient(
    seed: u64,
    index: u64,
    person: usize,
    end: OffsetDateTime,
) -> (Person, Vec<ReferralFacts>) {
    let mut d = Draw::new(seed, index);
    let (language, age_band, sex) = crate::draw::demographics(&mut d);
    let screened =
        (d.unit() < 0.66).then(|| end - Duration::minutes((d.unit() * 525_600.0) as i64));
    let positive: Vec<Domain> = match screened {
        Some(_) => POSITIVE
            .iter()
            .filter(|(_, rate)| d.unit() < *rate)
            .map(|(dom, _)| *dom)
            .collect(),
        None => Vec::new(),
    };
    let mut referrals = Vec::new();
    if let Some(at) = screened {
        for _ in &positive {
            // Help asked for about half the needs; most of those are referred.
            let asked = d.unit() < 0.52;
            let referred = d.unit() < 0.88;
            if !(asked && referred) {
                continue;
            }
            let made = at + Duration::hours((d.exp(30.0)) as i64);
            if made > end {
                continue;
            }
            let accepted = d.unit() < 0.82;
            let (status, ending) = if accepted {
                let (s, e, _) = AFTER_ACCEPTANCE[pick_index(&mut d)];
                (s, e)
            } else if d.unit() < 0.6 {
                (Status::Requested, None)
            } else {
                (Status::Rejected, Some(Ending::NotEligible))
            };
            let closed = status
                .is_final()
                .then(|| made + Duration::hours(24 + d.exp(16.0 * 24.0) as i64))
                .filter(|c| *c <= end);
            let (status, ending) = match closed {
                Some(_) => (status, ending),
                // Not yet ended by now: still where the organisation left it.
                None if status.is_final() => (Status::Accepted, None),
                None => (status, ending),
            };
            let patient_says = (accepted && d.unit() < 0.4).then(|| {
                let met = ending == Some(Ending::NeedMet);
                if met && d.unit() < 0.85 || !met && d.unit() < 0.1 {
                    Helped::Yes
                } else if d.unit() < 0.5 {
                    Helped::Partly
                } else {
                    Helped::No
                }
            });
            referrals.push(ReferralFacts {
                person,
                made,
                status,
                accepted,
                ending,
                closed,
                patient_says,
            });
        }
    }
    (
        Person {
            language,
            age_band,
            sex,
            screened,
            positive,
        },
        referrals,
    )
}

fn pick_index(d: &mut Draw) -> usize {
    let weighted: Vec<(usize, f64)> = AFTER_ACCEPTANCE
        .iter()
        .enumerate()
        .map(|(i, (_, _, w))| (i, *w))
        .collect();
    *d.pick(&weighted)
}

/// `n` generated patients and their referrals.
pub fn population(seed: u64, n: u64, end: OffsetDateTime) -> (Vec<Person>, Vec<ReferralFacts>) {
    let mut people = Vec::with_capacity(n as usize);
    let mut referrals = Vec::new();
    for i in 0..n {
        let (p, r) = patient(seed, i, people.len(), end);
        people.push(p);
        referrals.extend(r);
    }
    (people, referrals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_population_is_deterministic_and_every_measure_has_data() {
        let end = time::macros::datetime!(2026-12-01 12:00 UTC);
        let (people, referrals) = population(7, 5_000, end);
        assert_eq!(
            (people.clone(), referrals.clone()),
            population(7, 5_000, end)
        );
        let r = coproduce_core::social::measures::report(&people, &referrals, end);
        let t = &r.overall;
        assert!(t.screening_rate().is_some_and(|x| x > 0.5 && x < 0.8));
        assert!(t.closure_rate().is_some());
        assert!(t.median_days_to_closure().is_some());
        assert!(t.need_met_by_patient().is_some());
        assert!(t.not_closed.contains_key("could-not-reach"));
        assert_eq!(r.by_language.len(), 4);
    }
}
