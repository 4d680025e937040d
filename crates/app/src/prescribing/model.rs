//! A formulary modelled from acquisition costs: CMS's NADAC weekly file (what pharmacies pay
//! per unit), a list of the site's products (which NADAC description each is, how many units
//! make a fill, its plan tier) and the site's pricing rules (`pricing.toml`). Every price made
//! here is marked modelled and says which NADAC week it comes from.
//!
//! The product list is a CSV:
//! `code,rxnorm,name,ingredient,strength,form,class,tier,fill,days,nadac,units`
//! where `nadac` is an `NDC Description` exactly as CMS writes it and `units` how many of its
//! pricing units (EA, ML, GM) one fill holds. Where CMS lists several prices for a description
//! (different packages), the median is used.

use coproduce_core::prescribing::prices::Cap;
use coproduce_core::prescribing::{
    Basis, CoverageKind, Drug, Formulary, Money, PricingRules, Tier, TierShare,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::str::FromStr;

/// The NADAC subset shipped for the demo (see `prescribing/NOTICE.md`).
pub const NADAC: &str = include_str!("../../prescribing/nadac-subset.csv");
/// The demo formulary's products.
pub const DEMO_DRUGS: &str = include_str!("../../prescribing/demo-drugs.csv");
/// The default pricing rules, as a site's file would give them.
pub const PRICING: &str = include_str!("../../prescribing/pricing.toml");

/// Why a model's input cannot be used: the file, the line (1 is the header, 0 for the file as
/// a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {english}")]
pub struct ModelRefused {
    pub file: &'static str,
    pub line: usize,
    pub english: String,
}

/// One NADAC week: the per-unit prices of each description, and the week's date.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nadac {
    /// `NDC Description` -> (per-unit prices, pricing unit).
    pub prices: BTreeMap<String, (Vec<Money>, String)>,
    /// The `As of Date` (YYYY-MM-DD).
    pub as_of: String,
}

impl Nadac {
    /// Reads a NADAC CSV with CMS's header (any column order; the others are ignored).
    pub fn parse(bytes: &[u8]) -> Result<Nadac, ModelRefused> {
        let refuse = |line: usize, english: String| ModelRefused {
            file: "NADAC",
            line,
            english,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let header = reader
            .headers()
            .map_err(|e| refuse(1, format!("the header cannot be read: {e}")))?
            .clone();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| refuse(1, format!("there is no '{name}' column")))
        };
        let (desc, per_unit, unit, as_of) = (
            column("NDC Description")?,
            column("NADAC Per Unit")?,
            column("Pricing Unit")?,
            column("As of Date")?,
        );
        let mut out = Nadac::default();
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let r = record.map_err(|e| refuse(line, format!("cannot be read: {e}")))?;
            let get = |k: usize| r.get(k).unwrap_or_default();
            let price = Money::parse(get(per_unit)).ok_or_else(|| {
                refuse(line, format!("'{}' is not a price per unit", get(per_unit)))
            })?;
            let date = us_date(get(as_of))
                .ok_or_else(|| refuse(line, format!("'{}' is not a date", get(as_of))))?;
            if out.as_of.is_empty() {
                out.as_of = date;
            } else if out.as_of != date {
                return Err(refuse(line, "the file mixes weeks (As of Date)".into()));
            }
            let entry = out
                .prices
                .entry(get(desc).to_string())
                .or_insert_with(|| (Vec::new(), get(unit).to_string()));
            if entry.1 != get(unit) {
                return Err(refuse(
                    line,
                    format!(
                        "'{}' is priced per {} and per {}",
                        get(desc),
                        entry.1,
                        get(unit)
                    ),
                ));
            }
            entry.0.push(price);
        }
        if out.prices.is_empty() {
            return Err(refuse(0, "the file holds no prices".into()));
        }
        Ok(out)
    }

    /// The median per-unit price of a description, and its pricing unit.
    pub fn median(&self, description: &str) -> Option<(Money, &str)> {
        let (prices, unit) = self.prices.get(description)?;
        let mut p = prices.clone();
        p.sort();
        let n = p.len();
        let m = if n % 2 == 1 {
            p[n / 2]
        } else {
            (p[n / 2 - 1] + p[n / 2]).times(Decimal::new(5, 1))
        };
        Some((m, unit))
    }
}

/// MM/DD/YYYY as YYYY-MM-DD.
fn us_date(s: &str) -> Option<String> {
    let mut parts = s.split('/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_digit());
    (ok(m, 2) && ok(d, 2) && ok(y, 4) && parts.next().is_none()).then(|| format!("{y}-{m}-{d}"))
}

/// The product list's columns, in order.
pub const DRUG_COLUMNS: [&str; 12] = [
    "code",
    "rxnorm",
    "name",
    "ingredient",
    "strength",
    "form",
    "class",
    "tier",
    "fill",
    "days",
    "nadac",
    "units",
];

/// Models the formulary: each product's fill priced from its NADAC median, then each coverage
/// kind's share by the rules.
pub fn model(
    nadac: &Nadac,
    products: &[u8],
    rules: &PricingRules,
) -> Result<Formulary, ModelRefused> {
    let refuse = |line: usize, english: String| ModelRefused {
        file: "products",
        line,
        english,
    };
    let mut drugs = Vec::new();
    for (line, r) in
        crate::spreadsheet::lines(products, &DRUG_COLUMNS).map_err(|(l, e)| refuse(l, e))?
    {
        let get = |k: usize| r.get(k).unwrap_or_default().to_string();
        let tier = Tier::parse(&get(7)).ok_or_else(|| {
            refuse(
                line,
                format!(
                    "tier '{}' is not one of {}",
                    get(7),
                    Tier::ALL.map(Tier::as_str).join(", ")
                ),
            )
        })?;
        let days: u32 = get(9)
            .parse()
            .ok()
            .filter(|d| (1..=366).contains(d))
            .ok_or_else(|| refuse(line, format!("days '{}' is not 1 to 366", get(9))))?;
        let (per_unit, unit) = nadac.median(&get(10)).ok_or_else(|| {
            refuse(
                line,
                format!("'{}' is not an NDC Description of the NADAC file", get(10)),
            )
        })?;
        let units = Decimal::from_str(&get(11))
            .ok()
            .filter(|u| *u > Decimal::ZERO)
            .ok_or_else(|| {
                refuse(
                    line,
                    format!("units '{}' is not a positive number", get(11)),
                )
            })?;
        let class = get(6);
        let prices = rules.patient_prices(per_unit.times(units), tier, &class, days);
        drugs.push(Drug {
            code: get(0),
            rxnorm: Some(get(1)).filter(|r| !r.is_empty()),
            name: get(2),
            ingredient: get(3),
            strength: get(4),
            form: get(5),
            class,
            fill: get(8),
            days,
            prices,
            basis: Basis::Modelled,
            source: format!(
                "modelled from CMS NADAC as of {}: {units} {unit} at {} each ({tier} tier)",
                nadac.as_of,
                per_unit.decimal().normalize(),
                tier = tier.as_str(),
            ),
        });
    }
    Formulary::new(drugs).map_err(|e| refuse(e.index + 2, e.english))
}

/// `pricing.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    dispensing_fee: String,
    cash_markup_percent: String,
    shares: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    caps: Vec<CapFile>,
    clinic_340b: Clinic340BFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapFile {
    coverage: String,
    classes: Vec<String>,
    per_30_days: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Clinic340BFile {
    generic_discount_percent: String,
    brand_discount_percent: String,
    fee: String,
}

/// Reads pricing rules (`pricing.toml`'s shape); every figure is checked.
pub fn parse_rules(text: &str) -> Result<PricingRules, String> {
    let f: RulesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let money = |what: &str, s: &str| {
        Money::parse(s).ok_or_else(|| format!("{what} '{s}' is not an amount in dollars"))
    };
    let percent = |what: &str, s: &str| {
        Money::parse(s)
            .map(Money::decimal)
            .filter(|p| *p <= Decimal::ONE_HUNDRED)
            .ok_or_else(|| format!("{what} '{s}' is not a percentage (0 to 100)"))
    };
    let coverage =
        |s: &str| CoverageKind::parse(s).ok_or_else(|| format!("'{s}' is not a coverage kind"));
    let mut shares = BTreeMap::new();
    for (kind, ladder) in &f.shares {
        let kind = coverage(kind)?;
        if matches!(kind, CoverageKind::Uninsured | CoverageKind::Clinic340B) {
            return Err(format!(
                "{kind} has no tiers (its price is the cash or the 340B price)"
            ));
        }
        let mut tiers = BTreeMap::new();
        for (tier, share) in ladder {
            let t = Tier::parse(tier).ok_or_else(|| format!("'{tier}' is not a tier"))?;
            let what = format!("{kind} {tier}");
            let share = match share.split_once(' ') {
                Some(("copay", amount)) => TierShare::Copay(money(&what, amount)?),
                Some(("coinsurance", pct)) => TierShare::Coinsurance(percent(&what, pct)?),
                _ => {
                    return Err(format!(
                        "{what}: '{share}' is not \"copay AMOUNT\" or \"coinsurance PERCENT\""
                    ));
                }
            };
            tiers.insert(t, share);
        }
        shares.insert(kind, tiers);
    }
    let caps = f
        .caps
        .iter()
        .map(|c| {
            Ok(Cap {
                coverage: coverage(&c.coverage)?,
                classes: c.classes.clone(),
                per_30_days: money("a cap", &c.per_30_days)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(PricingRules {
        dispensing_fee: money("dispensing_fee", &f.dispensing_fee)?,
        cash_markup_percent: Money::parse(&f.cash_markup_percent)
            .map(Money::decimal)
            .ok_or_else(|| "cash_markup_percent is not a percentage".to_string())?,
        shares,
        caps,
        clinic_340b_generic_discount_percent: percent(
            "generic_discount_percent",
            &f.clinic_340b.generic_discount_percent,
        )?,
        clinic_340b_brand_discount_percent: percent(
            "brand_discount_percent",
            &f.clinic_340b.brand_discount_percent,
        )?,
        clinic_340b_fee: money("fee", &f.clinic_340b.fee)?,
    })
}

/// The demo's formulary: the shipped NADAC week, products and default rules.
pub fn demo() -> Result<Formulary, ModelRefused> {
    let rules = parse_rules(PRICING).map_err(|english| ModelRefused {
        file: "pricing.toml",
        line: 0,
        english,
    })?;
    model(
        &Nadac::parse(NADAC.as_bytes())?,
        DEMO_DRUGS.as_bytes(),
        &rules,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_file_is_the_default_rules() {
        assert_eq!(parse_rules(PRICING).unwrap(), PricingRules::default());
    }

    #[test]
    fn the_demo_formulary_is_modelled_from_the_shipped_nadac_week() {
        let nadac = Nadac::parse(NADAC.as_bytes()).unwrap();
        assert_eq!(nadac.as_of, "2026-04-29");
        assert_eq!(nadac.prices.len(), 111);
        // Three packages: 2.89634, 2.89634, 5.93772.
        let (m, unit) = nadac.median("INSULIN GLARGINE-YFGN U100 PEN").unwrap();
        assert_eq!((m, unit), (Money::parse("2.89634").unwrap(), "ML"));
        let f = demo().unwrap();
        assert_eq!(f.drugs().len(), 25);
        let lantus = f.drug("lantus-solostar").unwrap();
        assert_eq!(lantus.basis, Basis::Modelled);
        assert!(
            lantus.source.contains("NADAC as of 2026-04-29"),
            "{}",
            lantus.source
        );
        // 15 mL at 6.16614: as computed by hand in core's tests.
        assert_eq!(
            lantus.cost(CoverageKind::Uninsured).unwrap().to_string(),
            "$126.12"
        );
        // For a patient without insurance, the cheaper glargine comes first.
        let alternatives = f.alternatives(lantus, CoverageKind::Uninsured);
        assert_eq!(alternatives[0].drug.code, "glargine-yfgn-pen");
        // 15 x 2.89634 = 43.4451; + 25% + 10.50 = 64.806375.
        assert_eq!(alternatives[0].cost.to_string(), "$64.81");
        assert!(
            alternatives
                .iter()
                .all(|a| a.drug.class == "long-acting-insulin")
        );
    }

    #[test]
    fn bad_model_inputs_are_named() {
        let nadac = Nadac::parse(NADAC.as_bytes()).unwrap();
        let rules = PricingRules::default();
        let header = DRUG_COLUMNS.join(",");
        for (line, english) in [
            (
                "a,,A,atorvastatin,,tablet,statin,tier-9,30 tablets,30,ATORVASTATIN 40 MG TABLET,30",
                "tier 'tier-9'",
            ),
            (
                "a,,A,atorvastatin,,tablet,statin,generic,30 tablets,30,ATORVASTATIN 41 MG TABLET,30",
                "not an NDC Description",
            ),
            (
                "a,,A,atorvastatin,,tablet,statin,generic,30 tablets,30,ATORVASTATIN 40 MG TABLET,0",
                "units '0'",
            ),
            (
                "a,,A,atorvastatin,,tablet,statin,generic,30 tablets,0,ATORVASTATIN 40 MG TABLET,30",
                "days '0'",
            ),
        ] {
            let e = model(&nadac, format!("{header}\n{line}\n").as_bytes(), &rules).unwrap_err();
            assert_eq!(e.line, 2, "{e}");
            assert!(e.english.contains(english), "{e}");
        }
        let mixed = format!(
            "{}\n\"A\",1,0.5,04/22/2026,EA,C/I,N,1,G,,,04/29/2026\n\"A\",2,0.5,04/22/2026,EA,C/I,N,1,G,,,05/06/2026\n",
            NADAC.lines().next().unwrap()
        );
        assert!(
            Nadac::parse(mixed.as_bytes())
                .unwrap_err()
                .english
                .contains("mixes weeks")
        );
        for (bad, english) in [
            (
                PRICING.replace("copay 47.00", "copay lots"),
                "is not an amount",
            ),
            (
                PRICING.replace("coinsurance 40", "coinsurance 140"),
                "not a percentage",
            ),
            (
                PRICING.replace("[shares.commercial]", "[shares.uninsured]"),
                "has no tiers",
            ),
            (
                PRICING.replace(
                    "specialty = \"coinsurance 25\"\n\n[shares.commercial]",
                    "specialist = \"coinsurance 25\"\n\n[shares.commercial]",
                ),
                "not a tier",
            ),
        ] {
            let e = parse_rules(&bad).unwrap_err();
            assert!(e.contains(english), "{e}");
        }
    }
}
