//! What a fill costs the patient, modelled from what the pharmacy pays for it.
//!
//! An acquisition cost (CMS's NADAC is the average a retail pharmacy pays) is not a price
//! anyone is charged. The site's [`PricingRules`] turn it into one per coverage kind:
//! - the plan's allowed amount is the acquisition cost plus the dispensing fee;
//! - no insurance: the cash price, the acquisition cost marked up, plus the fee;
//! - Medicaid, Medicare Part D, commercial: the share the plan's tier sets, a copay (never more
//!   than the allowed amount) or a coinsurance (a percentage of it), then any cap the coverage
//!   puts on the class (Part D's $35 a month for insulin);
//! - the clinic's 340B pharmacy: the discounted acquisition cost plus its own fee.
//!
//! Every default is a documented, configurable assumption (docs/prescribing.md); what comes
//! out is an estimate and the formulary marks it as modelled.

use super::CoverageKind;
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Add, Sub};
use std::str::FromStr;

/// An amount in US dollars, exact (no binary floating point); shown to the cent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// A plain decimal amount (`12`, `0.01394`, `331.99298`): digits with at most one point,
    /// never negative, no exponent or sign.
    pub fn parse(s: &str) -> Option<Money> {
        let s = s.trim();
        let digits = s.chars().filter(char::is_ascii_digit).count();
        let points = s.chars().filter(|c| *c == '.').count();
        if digits == 0 || digits + points != s.len() || points > 1 || s.len() > 24 {
            return None;
        }
        Decimal::from_str(s).ok().map(Money)
    }

    pub fn cents(cents: i64) -> Money {
        Money(Decimal::new(cents, 2))
    }

    /// To the cent, halves away from zero (as a till rounds).
    pub fn rounded(self) -> Money {
        Money(
            self.0
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero),
        )
    }

    /// This amount times a quantity (a unit price times the units in a fill).
    pub fn times(self, quantity: Decimal) -> Money {
        Money(self.0 * quantity)
    }

    /// This percentage of the amount.
    pub fn percent(self, percent: Decimal) -> Money {
        Money(self.0 * percent / Decimal::ONE_HUNDRED)
    }

    /// What a fill lasting `days` costs a day (unrounded, for comparing fills).
    pub fn per_day(self, days: u32) -> Money {
        Money(self.0 / Decimal::from(days.max(1)))
    }

    /// A daily amount over `days` days.
    pub fn times_days(self, days: u32) -> Money {
        Money(self.0 * Decimal::from(days))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

/// `$12.34`, to the cent.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${:.2}", self.rounded().0)
    }
}

/// A plan's tier for a drug (the usual five of a Part D formulary; commercial plans use the
/// same ladder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    PreferredGeneric,
    Generic,
    PreferredBrand,
    NonPreferredBrand,
    Specialty,
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Tier::PreferredGeneric,
        Tier::Generic,
        Tier::PreferredBrand,
        Tier::NonPreferredBrand,
        Tier::Specialty,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::PreferredGeneric => "preferred-generic",
            Tier::Generic => "generic",
            Tier::PreferredBrand => "preferred-brand",
            Tier::NonPreferredBrand => "non-preferred-brand",
            Tier::Specialty => "specialty",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// A generic (the first two tiers), for the 340B discount.
    pub fn is_generic(self) -> bool {
        matches!(self, Tier::PreferredGeneric | Tier::Generic)
    }
}

/// What the patient pays of a tier's drugs under one coverage kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierShare {
    /// A fixed amount per 30 days' supply or part of it (never more than the plan's allowed
    /// amount).
    Copay(Money),
    /// A percentage of the allowed amount.
    Coinsurance(Decimal),
}

/// A ceiling a coverage kind puts on what the patient pays for a class, per 30 days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    pub coverage: CoverageKind,
    pub classes: Vec<String>,
    pub per_30_days: Money,
}

/// The site's rules from acquisition cost to the patient's price (docs/prescribing.md says
/// where each default comes from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingRules {
    /// Added to every fill a retail pharmacy dispenses.
    pub dispensing_fee: Money,
    /// The cash price's markup on the acquisition cost, in percent.
    pub cash_markup_percent: Decimal,
    /// The share by tier for each insured kind (Medicaid, Part D, commercial).
    pub shares: BTreeMap<CoverageKind, BTreeMap<Tier, TierShare>>,
    pub caps: Vec<Cap>,
    /// The 340B discount on the acquisition cost, in percent, for generics and for brands.
    pub clinic_340b_generic_discount_percent: Decimal,
    pub clinic_340b_brand_discount_percent: Decimal,
    /// The clinic pharmacy's fee per fill.
    pub clinic_340b_fee: Money,
}

impl Default for PricingRules {
    fn default() -> Self {
        let copay = |cents| TierShare::Copay(Money::cents(cents));
        let coins = |pct: i64| TierShare::Coinsurance(Decimal::from(pct));
        let ladder = |shares: [TierShare; 5]| -> BTreeMap<Tier, TierShare> {
            Tier::ALL.into_iter().zip(shares).collect()
        };
        PricingRules {
            dispensing_fee: Money::cents(1050),
            cash_markup_percent: Decimal::from(25),
            shares: [
                (
                    CoverageKind::Medicaid,
                    ladder([copay(100), copay(100), copay(400), copay(400), copay(400)]),
                ),
                (
                    CoverageKind::MedicarePartD,
                    ladder([copay(0), copay(500), copay(4700), coins(40), coins(25)]),
                ),
                (
                    CoverageKind::Commercial,
                    ladder([copay(1000), copay(1500), copay(5000), coins(30), coins(25)]),
                ),
            ]
            .into(),
            caps: vec![Cap {
                coverage: CoverageKind::MedicarePartD,
                classes: vec!["long-acting-insulin".into(), "rapid-acting-insulin".into()],
                per_30_days: Money::cents(3500),
            }],
            clinic_340b_generic_discount_percent: Decimal::from(13),
            clinic_340b_brand_discount_percent: Decimal::new(231, 1),
            clinic_340b_fee: Money::cents(400),
        }
    }
}

impl PricingRules {
    /// What one fill costs the patient under each coverage kind, given what the pharmacy
    /// pays for it, the drug's tier and class, and how many days it lasts. A kind whose
    /// share is not configured for the tier is left out (no price, not a made-up one).
    pub fn patient_prices(
        &self,
        acquisition: Money,
        tier: Tier,
        class: &str,
        days: u32,
    ) -> BTreeMap<CoverageKind, Money> {
        // A copay or a cap is per 30 days' supply or part of it: a 5-day course costs one.
        let months = Decimal::from(days.max(1).div_ceil(30));
        let allowed = acquisition + self.dispensing_fee;
        let mut out = BTreeMap::new();
        out.insert(
            CoverageKind::Uninsured,
            (acquisition + acquisition.percent(self.cash_markup_percent) + self.dispensing_fee)
                .rounded(),
        );
        for (kind, ladder) in &self.shares {
            let Some(share) = ladder.get(&tier) else {
                continue;
            };
            let mut pays = match *share {
                TierShare::Copay(c) => c.times(months).min(allowed),
                TierShare::Coinsurance(pct) => allowed.percent(pct),
            };
            for cap in self
                .caps
                .iter()
                .filter(|c| c.coverage == *kind && c.classes.iter().any(|k| k == class))
            {
                pays = pays.min(cap.per_30_days.times(months));
            }
            out.insert(*kind, pays.rounded());
        }
        let discount = if tier.is_generic() {
            self.clinic_340b_generic_discount_percent
        } else {
            self.clinic_340b_brand_discount_percent
        };
        out.insert(
            CoverageKind::Clinic340B,
            (acquisition - acquisition.percent(discount) + self.clinic_340b_fee).rounded(),
        );
        out
    }
}
