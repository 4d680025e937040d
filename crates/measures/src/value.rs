//! Value (CLINICAL.md section 8): cost per member per month from a site's fee schedule, and
//! for a program what fee-for-service pays against what a value-based contract rewards.
//!
//! Under fee-for-service the health system is paid for each visit, test and stay, so the
//! emergency visits and admissions a program avoids are revenue it no longer earns. Under a
//! value-based contract the same avoided events are savings it shares in, and the program's
//! own cost (the packs) is what it spends to earn them. Both views price the avoided events
//! with the site's fees, at the mix of emergency visits and stays the enrolled patients had
//! in the year before enrolment.

use crate::evaluation::Evaluation;
use std::collections::BTreeMap;
use time::{Date, Duration};

/// A billable service of the fee schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    OfficeVisit,
    EdVisit,
    Admission,
    InpatientDay,
    Hba1cTest,
    RescuePack,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::OfficeVisit,
        Service::EdVisit,
        Service::Admission,
        Service::InpatientDay,
        Service::Hba1cTest,
        Service::RescuePack,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Service::OfficeVisit => "office-visit",
            Service::EdVisit => "ed-visit",
            Service::Admission => "admission",
            Service::InpatientDay => "inpatient-day",
            Service::Hba1cTest => "hba1c-test",
            Service::RescuePack => "rescue-pack",
        }
    }

    pub fn parse(s: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|x| x.key() == s)
    }
}

/// A site's prices, one per service (a service left out costs nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeeSchedule {
    prices: BTreeMap<Service, f64>,
}

impl FeeSchedule {
    /// Prices by service; a negative, non-finite or repeated price is refused with the reason.
    pub fn new(prices: Vec<(Service, f64)>) -> Result<FeeSchedule, String> {
        let mut out = BTreeMap::new();
        for (s, p) in prices {
            if !p.is_finite() || p < 0.0 {
                return Err(format!(
                    "the price of {} must be a positive amount",
                    s.key()
                ));
            }
            if out.insert(s, p).is_some() {
                return Err(format!("{} is priced twice", s.key()));
            }
        }
        Ok(FeeSchedule { prices: out })
    }

    pub fn price(&self, s: Service) -> f64 {
        self.prices.get(&s).copied().unwrap_or(0.0)
    }

    pub fn has(&self, s: Service) -> bool {
        self.prices.contains_key(&s)
    }
}

/// One billed service of a patient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Billed {
    pub day: Date,
    pub service: Service,
    pub quantity: u32,
    /// An emergency visit or stay related to the program's condition (for the rescue pack,
    /// COPD as principal diagnosis or reason).
    pub related: bool,
    /// The stay's length in days (admissions), for pricing its days.
    pub days: u32,
}

/// A member as value needs them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Member {
    pub born: Option<Date>,
    /// The program's enrolment day, if enrolled.
    pub enrolled: Option<Date>,
    pub billed: Vec<Billed>,
}

/// What the members cost over a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Costs {
    pub members: u64,
    pub member_months: f64,
    pub counts: BTreeMap<Service, u64>,
    pub total: f64,
}

impl Costs {
    /// Cost per member per month.
    pub fn pmpm(&self) -> Option<f64> {
        (self.member_months > 0.0).then(|| self.total / self.member_months)
    }
}

/// Accumulates members over `[start, end]`, and the price of the program-related emergency
/// visits and stays of enrolled members in their year before enrolment.
#[derive(Debug, Clone)]
pub struct CostTally {
    start: Date,
    end: Date,
    fees: FeeSchedule,
    pub costs: Costs,
    related_before_events: u64,
    related_before_value: f64,
}

/// Average days in a month.
const MONTH_DAYS: f64 = 365.25 / 12.0;

impl CostTally {
    pub fn new(start: Date, end: Date, fees: FeeSchedule) -> Self {
        CostTally {
            start,
            end,
            fees,
            costs: Costs::default(),
            related_before_events: 0,
            related_before_value: 0.0,
        }
    }

    /// The price of one emergency visit or stay (a stay with its days).
    fn event_price(&self, b: &Billed) -> f64 {
        match b.service {
            Service::Admission => {
                self.fees.price(Service::Admission)
                    + f64::from(b.days.max(1)) * self.fees.price(Service::InpatientDay)
            }
            s => self.fees.price(s),
        }
    }

    pub fn add(&mut self, m: &Member) {
        let from = m.born.map_or(self.start, |b| b.max(self.start));
        if from > self.end {
            return;
        }
        self.costs.members += 1;
        self.costs.member_months += ((self.end - from).whole_days() + 1) as f64 / MONTH_DAYS;
        for b in &m.billed {
            if b.day < self.start || b.day > self.end {
                continue;
            }
            let (service, quantity) = (b.service, u64::from(b.quantity));
            *self.costs.counts.entry(service).or_default() += quantity;
            self.costs.total += quantity as f64 * self.fees.price(service);
        }
        if let Some(day) = m.enrolled {
            let year = Duration::days(365);
            for b in &m.billed {
                let event = matches!(b.service, Service::EdVisit | Service::Admission);
                if event && b.related && b.day >= day - year && b.day < day {
                    self.related_before_events += 1;
                    self.related_before_value += self.event_price(b);
                }
            }
        }
    }

    /// The average price of one program-related emergency visit or stay, at the enrolled
    /// members' mix before enrolment (None without any such event).
    pub fn price_per_event(&self) -> Option<f64> {
        (self.related_before_events > 0)
            .then(|| self.related_before_value / self.related_before_events as f64)
    }

    pub fn fees(&self) -> &FeeSchedule {
        &self.fees
    }
}

/// A program's value over one year of its enrolled (and matched) patients.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramValue {
    pub patients: usize,
    /// Emergency visits and stays avoided in a year (negative: more), with the interval.
    pub avoided: f64,
    pub avoided_interval: (f64, f64),
    pub price_per_event: f64,
    /// The avoided events priced, with the interval.
    pub avoided_value: f64,
    pub avoided_value_interval: (f64, f64),
    /// What the program itself costs (a pack per enrolled patient).
    pub program_cost: f64,
    /// Fee-for-service: the revenue change (the avoided events are revenue lost; the packs
    /// are billed).
    pub fee_for_service: f64,
    /// Value-based: the avoided events are savings, less the program's cost.
    pub value_based: f64,
}

impl ProgramValue {
    /// A reading in plain language.
    pub fn reading(&self) -> String {
        let money = |x: f64| grouped(x.abs());
        if self.avoided_interval.0 > 0.0 {
            format!(
                "Under fee-for-service the program costs the health system about {} a year in lost emergency and inpatient revenue (and earns {} for the packs); under a value-based contract the same avoided events are worth about {} (95% interval {} to {}), {} after the packs' cost.",
                money(self.avoided_value),
                money(self.program_cost),
                money(self.avoided_value),
                money(self.avoided_value_interval.0),
                money(self.avoided_value_interval.1),
                money(self.value_based)
            )
        } else {
            "The evaluation found no clear change in emergency visits and admissions, so neither view can count on avoided events; the packs cost what they cost.".to_string()
        }
    }
}

/// An amount rounded to a whole unit with thousands separators: 1234567.8 -> "1,234,568".
pub fn grouped(x: f64) -> String {
    let sign = if x < 0.0 { "-" } else { "" };
    let whole = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// Prices an evaluation: `e.effect` is events per patient-year (negative: fewer).
pub fn program_value(e: &Evaluation, fees: &FeeSchedule, price_per_event: f64) -> ProgramValue {
    let n = e.pairs as f64;
    let avoided = -e.effect * n;
    // A more negative effect avoids more: the interval's bounds swap.
    let avoided_interval = (-e.interval.1 * n, -e.interval.0 * n);
    let avoided_value = avoided * price_per_event;
    let program_cost = n * fees.price(Service::RescuePack);
    ProgramValue {
        patients: e.pairs,
        avoided,
        avoided_interval,
        price_per_event,
        avoided_value,
        avoided_value_interval: (
            avoided_interval.0 * price_per_event,
            avoided_interval.1 * price_per_event,
        ),
        program_cost,
        fee_for_service: program_cost - avoided_value,
        value_based: avoided_value - program_cost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn fees() -> FeeSchedule {
        FeeSchedule::new(vec![
            (Service::OfficeVisit, 150.0),
            (Service::EdVisit, 1_200.0),
            (Service::Admission, 8_000.0),
            (Service::InpatientDay, 2_000.0),
            (Service::Hba1cTest, 40.0),
            (Service::RescuePack, 60.0),
        ])
        .expect("a fee schedule")
    }

    fn billed(day: Date, service: Service, quantity: u32, related: bool, days: u32) -> Billed {
        Billed {
            day,
            service,
            quantity,
            related,
            days,
        }
    }

    #[test]
    fn cost_per_member_per_month_counts_services_in_the_period() {
        let mut t = CostTally::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31), fees());
        t.add(&Member {
            born: Some(date!(1950 - 01 - 01)),
            enrolled: None,
            billed: vec![
                billed(date!(2026 - 02 - 01), Service::OfficeVisit, 1, false, 0),
                billed(date!(2026 - 02 - 01), Service::Hba1cTest, 1, false, 0),
                billed(date!(2026 - 03 - 01), Service::Admission, 1, true, 3),
                billed(date!(2026 - 03 - 01), Service::InpatientDay, 3, true, 0),
                // Outside the period: not counted.
                billed(date!(2025 - 12 - 31), Service::EdVisit, 1, true, 0),
            ],
        });
        // Born inside the period: only the months since birth count.
        t.add(&Member {
            born: Some(date!(2026 - 07 - 02)),
            enrolled: None,
            billed: vec![billed(date!(2026 - 08 - 01), Service::EdVisit, 1, false, 0)],
        });
        let c = &t.costs;
        assert_eq!(c.members, 2);
        assert_eq!(c.counts[&Service::InpatientDay], 3);
        assert!(!c.counts.contains_key(&Service::RescuePack));
        let total = 150.0 + 40.0 + 8_000.0 + 3.0 * 2_000.0 + 1_200.0;
        assert!((c.total - total).abs() < 1e-9);
        let months = 365.0 / MONTH_DAYS + 183.0 / MONTH_DAYS;
        assert!(
            (c.member_months - months).abs() < 1e-9,
            "{}",
            c.member_months
        );
        assert!((c.pmpm().expect("months") - total / months).abs() < 1e-9);
    }

    #[test]
    fn avoided_events_are_priced_at_the_enrolled_mix_before_enrolment() {
        let mut t = CostTally::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31), fees());
        t.add(&Member {
            born: Some(date!(1950 - 01 - 01)),
            enrolled: Some(date!(2026 - 06 - 01)),
            billed: vec![
                // One related ED visit and one related 2-day stay in the year before.
                billed(date!(2026 - 01 - 10), Service::EdVisit, 1, true, 0),
                billed(date!(2026 - 03 - 01), Service::Admission, 1, true, 2),
                // Unrelated, and after enrolment: not part of the mix.
                billed(date!(2026 - 02 - 01), Service::EdVisit, 1, false, 0),
                billed(date!(2026 - 07 - 01), Service::EdVisit, 1, true, 0),
            ],
        });
        let price = t.price_per_event().expect("events before enrolment");
        assert!((price - (1_200.0 + 8_000.0 + 2.0 * 2_000.0) / 2.0).abs() < 1e-9);

        let e = Evaluation {
            pairs: 100,
            enrolled_before: 1.0,
            enrolled_after: 0.6,
            comparison_before: 1.0,
            comparison_after: 0.9,
            effect: -0.3,
            interval: (-0.45, -0.15),
            relative: -0.3,
            relative_interval: (-0.45, -0.15),
        };
        let v = program_value(&e, t.fees(), price);
        assert!((v.avoided - 30.0).abs() < 1e-9);
        assert!((v.avoided_interval.0 - 15.0).abs() < 1e-9);
        assert!((v.avoided_interval.1 - 45.0).abs() < 1e-9);
        assert!((v.program_cost - 6_000.0).abs() < 1e-9);
        assert!((v.value_based - (30.0 * price - 6_000.0)).abs() < 1e-6);
        assert!((v.fee_for_service + v.value_based).abs() < 1e-6);
        assert!(
            v.reading().starts_with("Under fee-for-service"),
            "{}",
            v.reading()
        );

        let none = Evaluation {
            effect: 0.01,
            interval: (-0.1, 0.12),
            ..e
        };
        assert!(
            program_value(&none, t.fees(), price)
                .reading()
                .starts_with("The evaluation found no clear change")
        );
    }

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(grouped(1_234_567.8), "1,234,568");
        assert_eq!(grouped(-950.0), "-950");
        assert_eq!(grouped(0.4), "0");
    }

    #[test]
    fn a_bad_fee_schedule_is_refused() {
        assert!(FeeSchedule::new(vec![(Service::EdVisit, -1.0)]).is_err());
        assert!(FeeSchedule::new(vec![(Service::EdVisit, f64::NAN)]).is_err());
        let e = FeeSchedule::new(vec![(Service::EdVisit, 1.0), (Service::EdVisit, 2.0)])
            .expect_err("twice");
        assert!(e.contains("ed-visit"));
        assert_eq!(Service::parse("inpatient-day"), Some(Service::InpatientDay));
        assert_eq!(Service::parse("massage"), None);
    }
}
