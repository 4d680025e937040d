//! A synthetic population, deterministic by seed: adults with a realistic age and sex mix,
//! diabetes, hypertension and COPD at configurable prevalence, HbA1c trajectories, blood
//! pressures, office visits, emergency visits and admissions, and enrolment in the COPD
//! rescue-pack program with a configurable true effect on emergency visits and admissions.
//! It feeds the benchmarks and the program-evaluation tests.
//!
//! Patient `i` depends only on the seed and `i`, so a population of any size is generated
//! in a stream (or in parallel) with flat memory. The codes are ones the official value sets
//! contain (CPT 99213 office visit, 99283 emergency visit, SNOMED 183452005 admission,
//! 44054006 diabetes, ICD-10-CM I10 and J44.x, LOINC 4548-4 and 85354-9).

use serde_json::{Value, json};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub seed: u64,
    /// The last full year of data (the measurement year); data covers it and the two before.
    pub year: i32,
    pub diabetes: f64,
    pub hypertension: f64,
    pub copd: f64,
    /// Share of patients with COPD enrolled in the rescue-pack program.
    pub rescue_pack_enrolment: f64,
    /// The program's true relative reduction of COPD emergency visits and admissions after
    /// enrolment (0.3 = 30% fewer).
    pub rescue_pack_effect: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 1,
            year: 2026,
            diabetes: 0.12,
            hypertension: 0.30,
            copd: 0.06,
            rescue_pack_enrolment: 0.5,
            rescue_pack_effect: 0.3,
        }
    }
}

/// The code system of the program enrolment CarePlan's category.
pub const PROGRAM_SYSTEM: &str = "https://coproduce.health/fhir/CodeSystem/program";

/// splitmix64: a fast, well-mixed generator; one stream per patient.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn for_patient(seed: u64, i: u64) -> Rng {
        let mut r = Rng(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A Poisson count (Knuth's method; the means here are small).
    fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.unit();
            if p <= limit || k >= 100 {
                return k;
            }
            k += 1;
        }
    }

    /// A normal deviate (Box-Muller).
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A day in the data window, as `YYYY-MM-DD`, `day` counted from 1 January of the first
/// year (0 ..= 3 * 365).
fn date(first_year: i32, day: u32) -> String {
    let start = time::Date::from_calendar_date(first_year, time::Month::January, 1)
        .unwrap_or(time::Date::MIN);
    let d = start + time::Duration::days(i64::from(day));
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

const SNOMED: &str = "http://snomed.info/sct";
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const CPT: &str = "http://www.ama-assn.org/go/cpt";
const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// Everything about patient `i`, as FHIR resources (the Patient first).
pub fn patient(cfg: &Config, i: u64) -> Vec<Value> {
    let mut rng = Rng::for_patient(cfg.seed, i);
    // Zero-padded, so that patients written in order are stored in id order (the store's
    // indexes then grow at their end instead of everywhere).
    let pid = format!("syn-{}-{i:07}", cfg.seed);
    let first_year = cfg.year - 2;
    let days = 3 * 365;
    // Adults of a primary-care panel: 18 to 90, more in middle age.
    let age = (18.0 + (rng.unit() + rng.unit() + rng.unit()) / 3.0 * 72.0).round() as i32;
    let female = rng.chance(0.52);
    let birth = format!(
        "{}-{:02}-{:02}",
        cfg.year - age,
        1 + rng.below(12),
        1 + rng.below(28)
    );
    let subject = json!({"reference": format!("Patient/{pid}")});
    let mut out = vec![json!({
        "resourceType": "Patient", "id": pid,
        "gender": if female { "female" } else { "male" },
        "birthDate": birth,
        "name": [{"family": format!("Synthetic{i}"), "given": [if female { "Maria" } else { "Jose" }]}],
    })];
    let mut n = 0;
    let mut next_id = |kind: &str| {
        n += 1;
        format!("{pid}-{kind}{n}")
    };
    let older = f64::from((age - 18).max(0)) / 72.0;
    let diabetic = rng.chance(cfg.diabetes * (0.4 + 1.4 * older));
    let hypertensive = rng.chance(cfg.hypertension * (0.3 + 1.6 * older));
    let copd = age >= 40 && rng.chance(cfg.copd * (0.5 + 1.5 * older));
    let condition = |id: String, codes: Value, onset: String| {
        json!({
            "resourceType": "Condition", "id": id,
            "clinicalStatus": coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "verificationStatus": coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
            "category": [coding("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")],
            "code": codes, "subject": subject.clone(), "onsetDateTime": onset,
        })
    };
    let onset = |rng: &mut Rng| date(first_year - 1 - rng.below(8) as i32, rng.below(360) as u32);
    if diabetic {
        let o = onset(&mut rng);
        out.push(condition(next_id("c"), json!({"coding": [
            {"system": SNOMED, "code": "44054006", "display": "Diabetes mellitus type 2"},
            {"system": ICD10, "code": "E11.9", "display": "Type 2 diabetes mellitus without complications"}]}), o));
    }
    if hypertensive {
        let o = onset(&mut rng);
        out.push(condition(
            next_id("c"),
            coding(ICD10, "I10", "Essential (primary) hypertension"),
            o,
        ));
    }
    let severity = if copd { 0.2 + rng.unit() * 1.3 } else { 0.0 };
    if copd {
        let o = onset(&mut rng);
        out.push(condition(next_id("c"), json!({"coding": [
            {"system": SNOMED, "code": "13645005", "display": "Chronic obstructive lung disease"},
            {"system": ICD10, "code": "J44.9", "display": "Chronic obstructive pulmonary disease, unspecified"}]}), o));
    }
    // Office visits: one to four a year, with a blood pressure each time.
    let mut a1c = rng.normal(7.6, 1.4).clamp(5.2, 13.5);
    let controlled = rng.chance(0.6);
    let sys_base = if hypertensive {
        rng.normal(138.0, 12.0)
    } else {
        rng.normal(122.0, 10.0)
    };
    for y in 0..3 {
        let visits = 1 + rng.below(4) as u32;
        for _ in 0..visits {
            let day = y * 365 + rng.below(364) as u32;
            let when = date(first_year, day);
            let enc = next_id("e");
            out.push(json!({
                "resourceType": "Encounter", "id": enc, "status": "finished",
                "class": {"system": ACT, "code": "AMB", "display": "ambulatory"},
                "type": [coding(CPT, "99213", "Office or other outpatient visit, established patient")],
                "subject": subject.clone(),
                "period": {"start": format!("{when}T09:00:00Z"), "end": format!("{when}T09:30:00Z")},
            }));
            let sys = (sys_base + rng.normal(0.0, 8.0)).round().clamp(90.0, 220.0);
            let dia = (sys * 0.62 + rng.normal(0.0, 5.0))
                .round()
                .clamp(50.0, sys - 20.0);
            out.push(json!({
                "resourceType": "Observation", "id": next_id("bp"), "status": "final",
                "category": [coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs")],
                "code": coding(LOINC, "85354-9", "Blood pressure panel"),
                "subject": subject.clone(), "encounter": {"reference": format!("Encounter/{enc}")},
                "effectiveDateTime": format!("{when}T09:10:00Z"),
                "component": [
                    {"code": coding(LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity": {"value": sys, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
                    {"code": coding(LOINC, "8462-4", "Diastolic blood pressure"), "valueQuantity": {"value": dia, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
                ],
            }));
            // HbA1c at most visits of a patient with diabetes; drifting down when controlled.
            if diabetic && rng.chance(0.8) {
                a1c = (a1c + if controlled { -0.25 } else { 0.15 } + rng.normal(0.0, 0.4))
                    .clamp(5.0, 14.0);
                out.push(json!({
                    "resourceType": "Observation", "id": next_id("a1c"), "status": "final",
                    "category": [coding("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory", "Laboratory")],
                    "code": coding(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
                    "subject": subject.clone(),
                    "effectiveDateTime": format!("{when}T09:20:00Z"),
                    "valueQuantity": {"value": (a1c * 10.0).round() / 10.0, "unit": "%", "system": UCUM, "code": "%"},
                }));
            }
        }
    }
    // Emergency visits and admissions: a background rate for everyone, more with COPD by
    // severity; after rescue-pack enrolment the COPD part falls by the program's effect.
    let enrolled_day =
        (copd && rng.chance(cfg.rescue_pack_enrolment)).then(|| 365 + rng.below(365) as u32);
    if let Some(day) = enrolled_day {
        out.push(json!({
            "resourceType": "CarePlan", "id": next_id("prog"), "status": "active", "intent": "plan",
            "category": [coding(PROGRAM_SYSTEM, "rescue-pack", "COPD rescue pack")],
            "title": "COPD rescue pack",
            "subject": subject.clone(),
            "period": {"start": date(first_year, day)},
        }));
    }
    // Background events (not COPD) for everyone; COPD exacerbations (principal diagnosis
    // J44.1) by severity, fewer by the program's effect after enrolment. Counts per stretch
    // of time are Poisson, placed uniformly within it.
    let split = enrolled_day.unwrap_or(days);
    let mut events: Vec<(u32, bool, bool)> = Vec::new(); // (day, emergency, copd)
    for (from, to, factor) in [(0, split, 1.0), (split, days, 1.0 - cfg.rescue_pack_effect)] {
        if to <= from {
            continue;
        }
        let years = f64::from(to - from) / 365.0;
        for (rate, ed, related) in [
            (0.15, true, false),
            (0.04, false, false),
            (severity * 0.9 * factor, true, true),
            (severity * 0.35 * factor, false, true),
        ] {
            for _ in 0..rng.poisson(rate * years) {
                events.push((from + rng.below(u64::from(to - from)) as u32, ed, related));
            }
        }
    }
    events.sort_unstable();
    for (day, ed, related) in events {
        let when = date(first_year, day);
        let (class, ty) = if ed {
            (
                "EMER",
                coding(
                    CPT,
                    "99283",
                    "Emergency department visit, moderate severity",
                ),
            )
        } else {
            (
                "IMP",
                coding(SNOMED, "183452005", "Emergency hospital admission"),
            )
        };
        let end = if ed {
            format!("{when}T23:00:00Z")
        } else {
            date(first_year, day + 1 + rng.below(5) as u32) + "T12:00:00Z"
        };
        // What AHRQ's PQIs read, at low rates and without a draw of their own (so every
        // other figure of a seed stays as it was): some background admissions are diabetic
        // crises (PQI 01), asthma or bronchiectasis flares (PQI 05, not COPD-related for
        // utilisation); a few COPD stays are transfers in, or list cystic fibrosis too.
        let dx = if related {
            coding(
                ICD10,
                "J44.1",
                "Chronic obstructive pulmonary disease with (acute) exacerbation",
            )
        } else if !ed && diabetic && day % 3 == 0 {
            coding(
                ICD10,
                "E11.10",
                "Type 2 diabetes mellitus with ketoacidosis without coma",
            )
        } else if !ed && day % 7 == 1 {
            coding(
                ICD10,
                "J45.21",
                "Mild intermittent asthma with (acute) exacerbation",
            )
        } else if !ed && day % 7 == 2 {
            coding(ICD10, "J47.1", "Bronchiectasis with (acute) exacerbation")
        } else {
            coding(ICD10, "R07.9", "Chest pain, unspecified")
        };
        let mut reasons = vec![dx];
        if related && !ed && day % 50 == 11 {
            reasons.push(coding(
                ICD10,
                "E84.0",
                "Cystic fibrosis with pulmonary manifestations",
            ));
        }
        let mut encounter = json!({
            "resourceType": "Encounter", "id": next_id("u"), "status": "finished",
            "class": {"system": ACT, "code": class},
            "type": [ty],
            "subject": subject.clone(),
            "period": {"start": format!("{when}T18:00:00Z"), "end": end},
            "reasonCode": reasons,
        });
        if !ed && day % 20 == 3 {
            encounter["hospitalization"] = json!({"admitSource": coding(
                "http://terminology.hl7.org/CodeSystem/admit-source",
                "hosp-trans",
                "Transferred from other hospital",
            )});
        }
        out.push(encounter);
    }
    out
}

/// The first `n` patients of a configuration, as one stream of resources.
pub fn population(cfg: &Config, n: u64) -> impl Iterator<Item = Value> + '_ {
    (0..n).flat_map(move |i| patient(cfg, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_population_and_another_a_different_one() {
        let a = Config::default();
        assert_eq!(patient(&a, 7), patient(&a, 7));
        let b = Config {
            seed: 2,
            ..Config::default()
        };
        assert_ne!(patient(&a, 7), patient(&b, 7));
    }

    #[test]
    fn the_generated_stays_exercise_the_prevention_indicators() {
        use coproduce_measures::pqi::{Indicator, Tally, discharges_of};
        let cfg = Config::default();
        let (start, end) = (
            time::macros::date!(2024 - 01 - 01),
            time::macros::date!(2026 - 12 - 31),
        );
        let mut pqi01 = Tally::new(Indicator::Pqi01, start, end);
        let mut pqi05 = Tally::new(Indicator::Pqi05, start, end);
        for i in 0..5_000 {
            let r = coproduce_measures::PatientRecord::from_serde(patient(&cfg, i));
            let (born, stays) = discharges_of(&r);
            pqi01.add(&format!("{i}"), born, &stays);
            pqi05.add(&format!("{i}"), born, &stays);
        }
        assert!(pqi01.discharges > 0, "{pqi01:?}");
        assert!(pqi05.discharges > 0);
        assert!(pqi05.transfers_in > 0, "transfers in at a low rate");
        assert!(
            pqi05.respiratory_anomaly > 0,
            "cystic fibrosis at a low rate"
        );
    }

    #[test]
    fn every_resource_is_valid_fhir_r4() {
        let cfg = Config::default();
        for r in population(&cfg, 300) {
            coproduce_fhir::validate::validate_resource(&r).unwrap_or_else(|e| panic!("{e}\n{r}"));
        }
    }

    #[test]
    fn prevalence_and_enrolment_follow_the_configuration() {
        let cfg = Config::default();
        let n = 5_000;
        let (mut diabetes, mut copd, mut enrolled, mut patients) = (0, 0, 0, 0);
        for r in population(&cfg, n) {
            match r["resourceType"].as_str() {
                Some("Patient") => patients += 1,
                Some("Condition") if r["code"]["coding"][0]["code"] == "44054006" => diabetes += 1,
                Some("Condition") if r["code"]["coding"][0]["code"] == "13645005" => copd += 1,
                Some("CarePlan") => enrolled += 1,
                _ => {}
            }
        }
        assert_eq!(patients, n);
        let share = |k: i32| f64::from(k) / n as f64;
        // Prevalence rises with age; the overall share stays near the configured one.
        assert!(
            (0.08..0.16).contains(&share(diabetes)),
            "diabetes {}",
            share(diabetes)
        );
        assert!((0.02..0.09).contains(&share(copd)), "copd {}", share(copd));
        let enrolled_share = f64::from(enrolled) / f64::from(copd);
        assert!(
            (0.4..0.6).contains(&enrolled_share),
            "enrolled {enrolled_share}"
        );
    }
}
