//! A generated population of concerns, deterministic from (seed, index), for running the
//! loop's measures at scale and for the demo's figures. The shape (how many are urgent, how
//! fast teams acknowledge and answer, how many reporters feel heard) is made up to exercise
//! every measure, not taken from any study; a site measures its own.

use super::*;
use crate::draw::Draw;
use coproduce_core::speakup::{Concern, Heard, Step, Urgency};
use time::Duration;

/// The generated units: (id, name, place).
pub const UNITS: [(&str, &str, Place); 3] = [
    ("gen-4w", "4 West", Place::Inpatient),
    ("gen-5e", "5 East", Place::Inpatient),
    ("gen-clinic", "Diabetes clinic", Place::Outpatient),
];

/// The `index`th of `n` concerns raised over the year before `end`.
pub fn concern(seed: u64, index: u64, n: u64, end: OffsetDateTime, rules: &Rules) -> ConcernRecord {
    let mut d = Draw::new(seed, index);
    let raised_at = end - Duration::minutes((d.unit() * 365.0 * 24.0 * 60.0) as i64);
    let (unit, _, place) = *d.pick(&[(UNITS[0], 0.4), (UNITS[1], 0.3), (UNITS[2], 0.3)]);
    let urgent = place == Place::Inpatient && d.unit() < 0.08;
    let category = if urgent {
        "condition-worse"
    } else {
        d.pick(&[
            ("medication", 0.22),
            ("condition-worse", 0.08),
            ("identity", 0.05),
            ("hygiene", 0.12),
            ("communication", 0.30),
            ("respect", 0.10),
            ("other", 0.13),
        ])
    };
    let category = if rules.categories.iter().any(|c| c == category) {
        category.to_string()
    } else {
        rules.categories[0].clone()
    };
    let language = d
        .pick(&[("en", 0.55), ("es", 0.25), ("ht", 0.12), ("pt-BR", 0.08)])
        .to_string();
    // Six in ten give their name; a pool a third the size of the population, so that some
    // reporters come back.
    let reporter =
        (d.unit() < 0.6).then(|| format!("RelatedPerson/gen-{}", d.next() % (n / 3).max(1)));
    let urgency = if urgent {
        Urgency::Urgent
    } else {
        Urgency::Routine
    };
    let mut c = Concern {
        kind: coproduce_core::speakup::Kind::Concern,
        urgency,
        place,
        category,
        raised_at,
        steps: Vec::new(),
    };
    // Minutes to acknowledge: about 9 for urgent concerns, 2.5 hours on a ward, a day in
    // the clinic; one in fourteen is never acknowledged.
    let mean = match (urgency, place) {
        (Urgency::Urgent, _) => 9.0,
        (_, Place::Inpatient) => 150.0,
        (_, Place::Outpatient) => 1_400.0,
    };
    let acked = raised_at + Duration::minutes(d.exp(mean).ceil() as i64);
    if d.unit() < 0.93 && acked < end {
        let _ = c.apply(Step::Acknowledged, acked);
        if d.unit() < 0.5 {
            let _ = c.apply(Step::LookingInto, acked + Duration::hours(2));
        }
        let answered = acked + Duration::minutes(d.exp(3.0 * 24.0 * 60.0) as i64 + 30);
        if d.unit() < 0.88 && answered < end {
            let _ = c.apply(
                Step::ActionTaken {
                    what: "Spoke with the team".into(),
                },
                answered - Duration::minutes(20),
            );
            let _ = c.apply(
                Step::Answered {
                    text: "Thank you for telling us; here is what we did.".into(),
                },
                answered,
            );
            let days = (answered - raised_at).whole_days();
            let said = answered + Duration::hours(d.exp(24.0) as i64 + 1);
            if d.unit() < 0.7 && said < end {
                // Faster answers leave more people feeling heard.
                let yes = if days <= 2 { 0.72 } else { 0.48 };
                let heard = *d.pick(&[
                    (Heard::Yes, yes),
                    (Heard::Partly, 0.25),
                    (Heard::No, 0.75 - yes),
                ]);
                let _ = c.apply(
                    Step::FeltHeard {
                        heard,
                        comment: String::new(),
                    },
                    said,
                );
            }
        }
    }
    ConcernRecord {
        id: format!("gen-{seed}-{index}"),
        concern: c,
        unit: unit.to_string(),
        room: String::new(),
        when: String::new(),
        what: "A generated concern".into(),
        language,
        reporter,
        patient: None,
        names_released: false,
        safety_event: None,
        follows: None,
    }
}

/// `n` generated concerns raised over the year before `end`.
pub fn population(seed: u64, n: u64, end: OffsetDateTime, rules: &Rules) -> Vec<ConcernRecord> {
    (0..n).map(|i| concern(seed, i, n, end, rules)).collect()
}

/// The generated units' names, for a report.
pub fn unit_names() -> std::collections::BTreeMap<String, String> {
    UNITS
        .iter()
        .map(|(id, name, _)| (id.to_string(), name.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_same_seed_gives_the_same_concerns_and_every_one_reads_back_from_fhir() {
        let rules = Rules::default();
        let end = datetime!(2026-11-29 12:00 UTC);
        let a = population(7, 300, end, &rules);
        assert_eq!(a, population(7, 300, end, &rules));
        assert!(a.iter().any(|c| c.concern.urgency == Urgency::Urgent));
        assert!(
            a.iter()
                .any(|c| c.concern.stage() == coproduce_core::speakup::Stage::Closed)
        );
        for c in &a {
            let v = c.to_fhir(None);
            assert_eq!(ConcernRecord::of(&v).as_ref(), Some(c), "{v}");
            coproduce_fhir::validate::validate_resource(&v)
                .unwrap_or_else(|e| panic!("{e:?}: {v}"));
        }
    }
}
