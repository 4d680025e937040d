//! The official eCQM test cases (testdata/ecqm, with the measure bundles this build carries):
//! each patient's populations must equal the expected ones the measure developers entered.
//! Prints the counts.

use coproduce_measures::cms122::Cms122;
use coproduce_measures::cms165::Cms165;
use coproduce_measures::{MeasureBundle, PatientRecord, Populations, projection};
use serde_json::Value;
use std::path::PathBuf;
use time::macros::date;

fn ecqm() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ecqm")
}

fn read(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How a test case's records reach the measure.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    AsGiven,
    WithoutProfiles,
    /// Through the store's measure projection and its JSON text, as a population run reads
    /// them.
    Projected,
}

/// A test case's patient and records, in one of the forms.
fn record(bundle: &Value, form: Form) -> PatientRecord {
    let strip_profiles = form == Form::WithoutProfiles;
    let resources = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["resource"].clone())
        .filter(|r| !matches!(r["resourceType"].as_str(), Some("Bundle" | "MeasureReport")))
        .map(|mut r| {
            if strip_profiles && let Some(meta) = r.get_mut("meta").and_then(Value::as_object_mut) {
                meta.remove("profile");
            }
            r
        });
    if form == Form::Projected {
        let text = projection::record(resources.collect::<Vec<_>>().iter());
        let stored = projection::decode(&projection::encode(&text)).expect("it decodes");
        return PatientRecord::from_projection(stored).expect("the projection reads");
    }
    PatientRecord::from_serde(resources)
}

/// Runs every official test case of a measure, with and without `meta.profile`; returns
/// the mismatches and prints the count.
fn run(
    name: &str,
    evaluate: &dyn Fn(&MeasureBundle, &PatientRecord) -> Populations,
) -> Vec<String> {
    let dir = ecqm().join(name);
    let bundle: MeasureBundle = coproduce_measures::official::bundle(name)
        .expect("a carried bundle")
        .expect("it reads");
    assert_eq!(
        bundle.effective_period,
        Some((date!(2026 - 01 - 01), date!(2026 - 12 - 31)))
    );
    let expected = read(&dir.join("expected-populations.json"));
    let cases = expected.as_array().expect("a list of cases");
    let mut failures = Vec::new();
    let mut failed_cases = std::collections::BTreeSet::new();
    for case in cases {
        let id = case["patientId"].as_str().unwrap();
        let test = read(&dir.join("tests").join(format!("{id}.json")));
        let want = &case["populations"];
        for form in [Form::AsGiven, Form::WithoutProfiles, Form::Projected] {
            let got = evaluate(&bundle, &record(&test, form));
            let got_json = serde_json::json!({
                "initial-population": u8::from(got.initial_population),
                "denominator": u8::from(got.denominator),
                "denominator-exclusion": u8::from(got.denominator_exclusion),
                "numerator": u8::from(got.numerator),
            });
            if &got_json != want {
                failed_cases.insert(id.to_string());
                failures.push(format!(
                    "{} ({}){}: expected {want}, got {got_json}",
                    case["testCase"].as_str().unwrap_or(id),
                    case["description"].as_str().unwrap_or(""),
                    match form {
                        Form::AsGiven => "",
                        Form::WithoutProfiles => " without profiles",
                        Form::Projected => " through the measure projection",
                    }
                ));
            }
        }
    }
    println!(
        "{name}: {} of {} official test cases match, as given, without meta.profile and through the measure projection",
        cases.len() - failed_cases.len(),
        cases.len()
    );
    failures
}

#[test]
fn cms122_matches_every_official_test_case() {
    let failures = run("CMS122", &|bundle, record| {
        Cms122::new(bundle, date!(2026 - 01 - 01), date!(2026 - 12 - 31)).populations(record)
    });
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn cms165_matches_every_official_test_case() {
    let failures = run("CMS165", &|bundle, record| {
        Cms165::new(bundle, date!(2026 - 01 - 01), date!(2026 - 12 - 31)).populations(record)
    });
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
