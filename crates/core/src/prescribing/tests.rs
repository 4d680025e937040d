use super::*;
use rust_decimal::Decimal;

fn money(s: &str) -> Money {
    Money::parse(s).unwrap()
}

fn drug(code: &str, class: &str, days: u32, prices: &[(CoverageKind, &str)]) -> Drug {
    Drug {
        code: code.into(),
        rxnorm: None,
        name: code.to_uppercase(),
        // One ingredient at one strength per class unless a test says otherwise.
        ingredient: class.into(),
        strength: "1 mg".into(),
        form: "tablet".into(),
        class: class.into(),
        fill: format!("{days} tablet"),
        days,
        prices: prices.iter().map(|(k, p)| (*k, money(p))).collect(),
        basis: Basis::Quoted,
        source: "test table".into(),
    }
}

/// A small price table: two long-acting insulins and a statin.
fn formulary() -> Formulary {
    use CoverageKind::*;
    Formulary::new(vec![
        drug(
            "lantus",
            "long-acting-insulin",
            30,
            &[
                (Uninsured, "126.12"),
                (Medicaid, "4"),
                (MedicarePartD, "35"),
                (Commercial, "50"),
                (Clinic340B, "75.13"),
            ],
        ),
        drug(
            "glargine-yfgn",
            "long-acting-insulin",
            30,
            &[
                (Uninsured, "64.81"),
                (Medicaid, "1"),
                (MedicarePartD, "35"),
                (Commercial, "15"),
            ],
        ),
        // A 90-day fill, cheaper per fill than lantus for cash but dearer per day.
        drug(
            "glargine-90",
            "long-acting-insulin",
            90,
            &[(Uninsured, "390.00"), (Commercial, "30")],
        ),
        // Another class: never an alternative, however cheap.
        drug(
            "atorvastatin",
            "statin",
            30,
            &[(Uninsured, "11.94"), (Commercial, "0")],
        ),
    ])
    .unwrap()
}

#[test]
fn the_cost_of_a_fill_for_each_coverage_kind_comes_from_the_table() {
    let f = formulary();
    let lantus = f.drug("lantus").unwrap();
    let shown: Vec<(CoverageKind, String)> = CoverageKind::ALL
        .into_iter()
        .map(|k| (k, lantus.cost(k).map_or("-".into(), |m| m.to_string())))
        .collect();
    assert_eq!(
        shown,
        vec![
            (CoverageKind::Uninsured, "$126.12".into()),
            (CoverageKind::Medicaid, "$4.00".into()),
            (CoverageKind::MedicarePartD, "$35.00".into()),
            (CoverageKind::Commercial, "$50.00".into()),
            (CoverageKind::Clinic340B, "$75.13".into()),
        ]
    );
    let yfgn = f.drug("glargine-yfgn").unwrap();
    assert_eq!(yfgn.cost(CoverageKind::Clinic340B), None, "not priced");
}

#[test]
fn alternatives_are_of_the_same_class_cheaper_per_day_cheapest_first() {
    let f = formulary();
    let lantus = f.drug("lantus").unwrap();
    let cash = f.alternatives(lantus, CoverageKind::Uninsured);
    let codes: Vec<&str> = cash.iter().map(|a| a.drug.code.as_str()).collect();
    // glargine-90 costs $4.33 a day against lantus's $4.20: not cheaper; the statin is
    // cheaper but of another class.
    assert_eq!(codes, ["glargine-yfgn"]);
    assert_eq!(cash[0].cost, money("64.81"));
    assert_eq!(cash[0].saves.rounded(), money("61.31"));

    let commercial = f.alternatives(lantus, CoverageKind::Commercial);
    let codes: Vec<&str> = commercial.iter().map(|a| a.drug.code.as_str()).collect();
    // $30 for 90 days ($0.33 a day) before $15 for 30 ($0.50 a day).
    assert_eq!(codes, ["glargine-90", "glargine-yfgn"]);
    assert_eq!(commercial[0].saves.rounded(), money("40.00"));

    // Part D's $35 is the same for both: nothing is cheaper.
    assert!(
        f.alternatives(lantus, CoverageKind::MedicarePartD)
            .is_empty()
    );
    // With no price for the drug asked about there is nothing to compare.
    let yfgn = f.drug("glargine-yfgn").unwrap();
    assert!(f.alternatives(yfgn, CoverageKind::Clinic340B).is_empty());
    // The statin has no alternatives of its class.
    let statin = f.drug("atorvastatin").unwrap();
    assert!(f.alternatives(statin, CoverageKind::Uninsured).is_empty());
}

#[test]
fn the_same_ingredient_at_another_strength_is_a_change_of_dose_not_an_alternative() {
    use CoverageKind::Uninsured;
    let mut atorvastatin_80 = drug("atorvastatin-80", "statin", 30, &[(Uninsured, "13.15")]);
    atorvastatin_80.ingredient = "atorvastatin".into();
    atorvastatin_80.strength = "80 mg".into();
    let mut atorvastatin_40 = drug("atorvastatin-40", "statin", 30, &[(Uninsured, "11.94")]);
    atorvastatin_40.ingredient = "Atorvastatin".into();
    atorvastatin_40.strength = "40 mg".into();
    let mut generic_80 = atorvastatin_80.clone();
    generic_80.code = "atorvastatin-80-other".into();
    generic_80.prices.insert(Uninsured, money("12.00"));
    let mut rosuvastatin = drug("rosuvastatin-20", "statin", 30, &[(Uninsured, "9.00")]);
    rosuvastatin.ingredient = "rosuvastatin".into();
    rosuvastatin.strength = "20 mg".into();
    let f = Formulary::new(vec![
        atorvastatin_80.clone(),
        atorvastatin_40,
        generic_80,
        rosuvastatin,
    ])
    .unwrap();
    let codes: Vec<&str> = f
        .alternatives(&atorvastatin_80, Uninsured)
        .iter()
        .map(|a| a.drug.code.as_str())
        .collect();
    // Another statin at its own strength, and the same strength of the same ingredient
    // (ingredients compared without case); never atorvastatin 40 mg.
    assert_eq!(codes, ["rosuvastatin-20", "atorvastatin-80-other"]);
}

#[test]
fn prices_are_modelled_from_acquisition_cost_by_the_rules() {
    let rules = PricingRules::default();
    // LANTUS SOLOSTAR at NADAC 6.16614 a mL, 15 mL (five 3 mL pens) for 30 days.
    let acquisition = money("6.16614").times(Decimal::from(15));
    assert_eq!(acquisition, money("92.4921"));
    let p = rules.patient_prices(acquisition, Tier::PreferredBrand, "long-acting-insulin", 30);
    let shown: Vec<String> = CoverageKind::ALL
        .into_iter()
        .map(|k| p[&k].to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "$126.12", // cash: 92.4921 + 25% + $10.50 = 126.115125
            "$4.00",   // Medicaid's brand copay
            "$35.00",  // Part D's tier 3 is $47, capped at $35 a month for insulin
            "$50.00",  // commercial tier 3
            "$75.13",  // 340B: 92.4921 less 23.1% + $4.00 = 75.1264249
        ]
    );

    // Metformin 500 mg at 0.01394 a tablet, 60 tablets for 30 days.
    let acquisition = money("0.01394").times(Decimal::from(60));
    let p = rules.patient_prices(acquisition, Tier::Generic, "biguanide", 30);
    // Cash: 0.8364 + 25% + 10.50 = 11.5455 -> $11.55 (halves away from zero).
    assert_eq!(p[&CoverageKind::Uninsured].to_string(), "$11.55");
    // Commercial's $15 generic copay is more than the allowed $11.3364: the patient pays that.
    assert_eq!(p[&CoverageKind::Commercial].to_string(), "$11.34");
    assert_eq!(p[&CoverageKind::MedicarePartD].to_string(), "$5.00");
    // 340B generic: 0.8364 less 13% + 4.00 = 4.727668.
    assert_eq!(p[&CoverageKind::Clinic340B].to_string(), "$4.73");

    // A 5-day course costs a whole copay, not a sixth of one.
    let p = rules.patient_prices(money("2.84"), Tier::PreferredGeneric, "antibiotic", 5);
    assert_eq!(p[&CoverageKind::Medicaid].to_string(), "$1.00");
    assert_eq!(p[&CoverageKind::Commercial].to_string(), "$10.00");
    // A non-preferred brand: 40% of the allowed amount under Part D; 90 days of a copay
    // tier cost three copays.
    let p = rules.patient_prices(money("200"), Tier::NonPreferredBrand, "ics-laba", 30);
    assert_eq!(p[&CoverageKind::MedicarePartD].to_string(), "$84.20");
    let p = rules.patient_prices(money("200"), Tier::PreferredBrand, "ics-laba", 90);
    assert_eq!(p[&CoverageKind::MedicarePartD].to_string(), "$141.00");
    // The insulin cap scales with the supply too.
    let p = rules.patient_prices(
        money("300"),
        Tier::PreferredBrand,
        "long-acting-insulin",
        90,
    );
    assert_eq!(p[&CoverageKind::MedicarePartD].to_string(), "$105.00");
}

#[test]
fn a_tier_without_a_configured_share_has_no_price_rather_than_a_guess() {
    let mut rules = PricingRules::default();
    rules
        .shares
        .get_mut(&CoverageKind::Medicaid)
        .unwrap()
        .remove(&Tier::Specialty);
    let p = rules.patient_prices(money("500"), Tier::Specialty, "glp-1", 30);
    assert!(!p.contains_key(&CoverageKind::Medicaid));
    assert!(p.contains_key(&CoverageKind::Commercial));
}

#[test]
fn amounts_parse_plainly_or_not_at_all() {
    assert_eq!(money("0.01394").to_string(), "$0.01");
    assert_eq!(money("12").to_string(), "$12.00");
    assert_eq!(money("2.005").to_string(), "$2.01");
    for bad in ["", "-1", "1e3", "1.2.3", "abc", "$5", "1,000", " . "] {
        assert_eq!(Money::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn a_formulary_lists_each_code_once_with_a_fill_of_at_least_a_day() {
    let twice = Formulary::new(vec![drug("a", "x", 30, &[]), drug("a", "y", 30, &[])]);
    assert_eq!(twice.unwrap_err().index, 1);
    let no_days = Formulary::new(vec![drug("a", "x", 0, &[])]);
    assert!(no_days.unwrap_err().english.contains("one day"));
    let no_class = Formulary::new(vec![drug("a", " ", 30, &[])]);
    assert!(no_class.unwrap_err().english.contains("ingredient"));
    let mut no_class = drug("a", "", 30, &[]);
    no_class.ingredient = "x".into();
    let refused = Formulary::new(vec![no_class]).unwrap_err();
    assert!(refused.english.contains("class"), "{refused:?}");
    let f = formulary();
    assert_eq!(f.drugs().len(), 4);
    let mut lisinopril = drug("lisinopril-10", "ace-inhibitor", 30, &[]);
    lisinopril.rxnorm = Some("314076".into());
    let f = Formulary::new(vec![drug("a", "x", 30, &[]), lisinopril]).unwrap();
    assert_eq!(
        f.by_rxnorm("314076").map(|d| d.code.as_str()),
        Some("lisinopril-10")
    );
    assert!(f.by_rxnorm("197361").is_none());
}

#[test]
fn coverage_kinds_and_tiers_round_trip_their_codes() {
    for k in CoverageKind::ALL {
        assert_eq!(CoverageKind::parse(k.as_str()), Some(k));
    }
    for t in Tier::ALL {
        assert_eq!(Tier::parse(t.as_str()), Some(t));
    }
    assert_eq!(CoverageKind::parse("medicare"), None);
}
