//! The site's formulary as a file and as FHIR.
//!
//! The file is a CSV with a header and one drug per line:
//! `code,rxnorm,name,ingredient,strength,form,class,fill,days,uninsured,medicaid,medicare-part-d,commercial,340b,basis,source`.
//! `code` is the site's id for the product (a FHIR id), `rxnorm` its RxCUI if known, `fill`
//! what one fill holds in words (`60 tablets`, `5 pens (15 mL)`) and `days` how long it lasts;
//! the five price columns are what one fill costs the patient under that coverage kind, in
//! US dollars (empty: not covered, or not known); `basis` is `quoted` or `modelled`.
//!
//! In the store each drug is a MedicationKnowledge: its codes (the site's and RxNorm's), dose
//! form, class (`medicineClassification`), strength, fill and days (`drugCharacteristic`), one
//! `cost` per coverage kind (type in the coverage-kind code system, `source` saying where the
//! price comes from), and the basis as an extension.

use super::*;
use coproduce_core::prescribing::{Basis, CoverageKind, Drug, Formulary, Money};
use std::collections::BTreeMap;

/// The formulary CSV's columns, in order.
pub const COLUMNS: [&str; 16] = [
    "code",
    "rxnorm",
    "name",
    "ingredient",
    "strength",
    "form",
    "class",
    "fill",
    "days",
    "uninsured",
    "medicaid",
    "medicare-part-d",
    "commercial",
    "340b",
    "basis",
    "source",
];

/// Why a formulary file cannot be loaded: the line (1 is the header) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {english}")]
pub struct FormularyFileRefused {
    pub line: usize,
    pub english: String,
}

/// Reads a formulary CSV, refusing the first bad line (nothing of a bad file is used).
pub fn parse_csv(bytes: &[u8]) -> std::result::Result<Formulary, FormularyFileRefused> {
    let refuse = |line: usize, english: String| FormularyFileRefused { line, english };
    let mut drugs = Vec::new();
    for (line, record) in
        crate::spreadsheet::lines(bytes, &COLUMNS).map_err(|(l, e)| refuse(l, e))?
    {
        let get = |k: usize| record.get(k).unwrap_or_default().to_string();
        let code = get(0);
        if !coproduce_fhir::primitives::is_valid_id(&code) {
            return Err(refuse(
                line,
                format!("code '{code}' is not an id (letters, digits, '-' and '.', at most 64)"),
            ));
        }
        let rxnorm = get(1);
        if !rxnorm.chars().all(|c| c.is_ascii_digit()) || rxnorm.len() > 10 {
            return Err(refuse(
                line,
                format!("rxnorm '{rxnorm}' is not an RxCUI (digits), nor empty"),
            ));
        }
        let days = get(8);
        let days: u32 = days
            .parse()
            .ok()
            .filter(|d| (1..=366).contains(d))
            .ok_or_else(|| {
                refuse(
                    line,
                    format!("days '{days}' is not a number of days (1 to 366)"),
                )
            })?;
        let mut prices = BTreeMap::new();
        for (k, kind) in CoverageKind::ALL.into_iter().enumerate() {
            let cell = get(9 + k);
            if cell.is_empty() {
                continue;
            }
            let price = Money::parse(&cell).ok_or_else(|| {
                refuse(
                    line,
                    format!(
                        "{} '{cell}' is not a price in dollars (like 12.50), nor empty",
                        kind.as_str()
                    ),
                )
            })?;
            prices.insert(kind, price);
        }
        let basis = Basis::parse(&get(14)).ok_or_else(|| {
            refuse(
                line,
                format!("basis '{}' is not quoted or modelled", get(14)),
            )
        })?;
        drugs.push(Drug {
            code,
            rxnorm: (!rxnorm.is_empty()).then_some(rxnorm),
            name: get(2),
            ingredient: get(3),
            strength: get(4),
            form: get(5),
            class: get(6),
            fill: get(7),
            days,
            prices,
            basis,
            source: get(15),
        });
    }
    if drugs.is_empty() {
        return Err(refuse(1, "the file lists no drugs".into()));
    }
    Formulary::new(drugs).map_err(|e| refuse(e.index + 2, e.english))
}

/// The formulary as a CSV (with its header), the file `parse_csv` reads.
pub fn to_csv(formulary: &Formulary) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut rows = vec![COLUMNS.map(str::to_string).to_vec()];
    for d in formulary.drugs() {
        let mut row = vec![
            d.code.clone(),
            d.rxnorm.clone().unwrap_or_default(),
            d.name.clone(),
            d.ingredient.clone(),
            d.strength.clone(),
            d.form.clone(),
            d.class.clone(),
            d.fill.clone(),
            d.days.to_string(),
        ];
        row.extend(CoverageKind::ALL.map(|k| d.cost(k).map_or(String::new(), price_text)));
        row.push(d.basis.as_str().to_string());
        row.push(d.source.clone());
        rows.push(row);
    }
    for row in rows {
        if w.write_record(&row).is_err() {
            return Vec::new();
        }
    }
    w.into_inner().unwrap_or_default()
}

/// A price to the cent, without the dollar sign (`126.12`).
fn price_text(m: Money) -> String {
    format!("{:.2}", m.rounded().decimal())
}

/// A drug as a MedicationKnowledge.
pub fn resource(d: &Drug) -> Value {
    let mut coding = vec![json!({"system": FORMULARY_SYSTEM, "code": d.code, "display": d.name})];
    if let Some(rx) = &d.rxnorm {
        coding.push(json!({"system": RXNORM, "code": rx}));
    }
    let characteristic = |code: &str, value: Value| {
        let mut c = json!({"type": {"coding": [{"system": CHARACTERISTIC_SYSTEM, "code": code}]}});
        if let (Some(c), Some(value)) = (c.as_object_mut(), value.as_object()) {
            c.extend(value.clone());
        }
        c
    };
    let mut characteristics = vec![
        characteristic("fill", json!({"valueString": d.fill})),
        characteristic(
            "days-supply",
            json!({"valueQuantity": {"value": d.days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}),
        ),
    ];
    if !d.strength.is_empty() {
        characteristics.insert(
            0,
            characteristic("strength", json!({"valueString": d.strength})),
        );
    }
    let mut v = json!({
        "resourceType": "MedicationKnowledge",
        "id": d.code,
        "extension": [{"url": BASIS_EXT, "valueCode": d.basis.as_str()}],
        "status": "active",
        "code": {"coding": coding, "text": d.name},
        "ingredient": [{"itemCodeableConcept": {"text": d.ingredient}, "isActive": true}],
        "medicineClassification": [{
            "type": {"coding": [{"system": CHARACTERISTIC_SYSTEM, "code": "class"}]},
            "classification": [{"coding": [{"system": CLASS_SYSTEM, "code": d.class}]}],
        }],
        "drugCharacteristic": characteristics,
        "cost": CoverageKind::ALL.into_iter().filter_map(|k| {
            let price = d.cost(k)?;
            let value: serde_json::Number = price_text(price).parse().ok()?;
            Some(json!({
                "type": {"coding": [{"system": COVERAGE_KIND_SYSTEM, "code": k.as_str(), "display": k.english()}]},
                "source": d.source,
                "cost": {"value": value, "currency": "USD"},
            }))
        }).collect::<Vec<_>>(),
    });
    if !d.form.is_empty() {
        v["doseForm"] = json!({"text": d.form});
    }
    v
}

/// The drug a MedicationKnowledge of the formulary describes (None for one it did not write).
pub fn drug_of(v: &Value) -> Option<Drug> {
    let coding = |concept: &Value, system: &str| -> Option<String> {
        concept["coding"]
            .as_array()?
            .iter()
            .find(|c| c["system"] == system)
            .and_then(|c| c["code"].as_str())
            .map(str::to_string)
    };
    let characteristic = |code: &str| {
        v["drugCharacteristic"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| coding(&c["type"], CHARACTERISTIC_SYSTEM).as_deref() == Some(code))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let basis = v["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == BASIS_EXT)
        .and_then(|e| e["valueCode"].as_str())
        .and_then(Basis::parse)?;
    let mut prices = BTreeMap::new();
    let mut source = String::new();
    for c in v["cost"].as_array().into_iter().flatten() {
        let kind = coding(&c["type"], COVERAGE_KIND_SYSTEM).and_then(|k| CoverageKind::parse(&k));
        let price = Money::parse(&c["cost"]["value"].to_string());
        if let (Some(kind), Some(price)) = (kind, price) {
            prices.insert(kind, price);
            source = c["source"].as_str().unwrap_or_default().to_string();
        }
    }
    Some(Drug {
        code: coding(&v["code"], FORMULARY_SYSTEM)?,
        rxnorm: coding(&v["code"], RXNORM),
        name: v["code"]["text"].as_str().unwrap_or_default().to_string(),
        ingredient: v["ingredient"][0]["itemCodeableConcept"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        strength: characteristic("strength")["valueString"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        form: v["doseForm"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        class: coding(
            &v["medicineClassification"][0]["classification"][0],
            CLASS_SYSTEM,
        )?,
        fill: characteristic("fill")["valueString"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        days: characteristic("days-supply")["valueQuantity"]["value"]
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())?,
        prices,
        basis,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> String {
        COLUMNS.join(",") + "\n"
    }

    const LANTUS: &str = "lantus-solostar,,Lantus SoloStar,insulin glargine,100 units/mL,pen,long-acting-insulin,5 pens (15 mL),30,126.12,4.00,35.00,50.00,75.13,modelled,NADAC as of 2026-04-29";

    #[test]
    fn a_file_round_trips_through_csv_and_fhir() {
        let csv = format!(
            "{}{LANTUS}\nlisinopril-10,314076,Lisinopril,lisinopril,10 mg,tablet,ace-inhibitor,30 tablets,30,11.20,,0.00,10.00,,quoted,\"Clinic pharmacy, 2026\"\n",
            header()
        );
        let f = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(f.drugs().len(), 2);
        let lisinopril = f.drug("lisinopril-10").unwrap();
        assert_eq!(lisinopril.cost(CoverageKind::Medicaid), None);
        assert_eq!(
            lisinopril
                .cost(CoverageKind::Uninsured)
                .unwrap()
                .to_string(),
            "$11.20"
        );
        assert_eq!(to_csv(&f), csv.as_bytes(), "the file writes back as read");
        for d in f.drugs() {
            let v = resource(d);
            coproduce_fhir::validate::validate_resource(&v).unwrap();
            assert_eq!(drug_of(&v).as_ref(), Some(d));
        }
        let v = resource(f.drug("lantus-solostar").unwrap());
        assert_eq!(v["cost"][2]["type"]["coding"][0]["code"], "medicare-part-d");
        assert_eq!(v["cost"][2]["cost"]["value"].to_string(), "35.00");
    }

    #[test]
    fn a_bad_line_is_named() {
        for (line, english) in [
            (
                LANTUS.replace("lantus-solostar", "lantus solostar"),
                "is not an id",
            ),
            (LANTUS.replacen(",,", ",RX1,", 1), "is not an RxCUI"),
            (LANTUS.replace(",30,126.12", ",0,126.12"), "days '0'"),
            (LANTUS.replace("126.12", "$126"), "uninsured '$126'"),
            (LANTUS.replace("35.00", "-35"), "medicare-part-d '-35'"),
            (LANTUS.replace("modelled", "guessed"), "basis 'guessed'"),
            (
                LANTUS.replace(",long-acting-insulin,", ",,"),
                "the class is empty",
            ),
            (
                LANTUS.replace(",NADAC as of 2026-04-29", ""),
                "has 15 fields",
            ),
            (
                LANTUS.to_string(),
                "the code 'lantus-solostar' is used twice",
            ),
        ] {
            let csv = format!("{}{LANTUS}\n{line}\n", header());
            let e = parse_csv(csv.as_bytes()).unwrap_err();
            assert_eq!(e.line, 3, "{line}: {e}");
            assert!(e.english.contains(english), "{line}: {e}");
        }
        assert_eq!(parse_csv(b"code,name\n").unwrap_err().line, 1);
        assert!(
            parse_csv(header().as_bytes())
                .unwrap_err()
                .english
                .contains("no drugs")
        );
    }
}
