//! AHRQ Prevention Quality Indicators 01 (diabetes short-term complications) and 05 (COPD or
//! asthma in older adults), observed rates, from AHRQ's own v2025 code sets (carried in
//! `crates/measures/pqi/`, with their source and licence) and the rules as AHRQ's reference SAS
//! software codes them:
//!
//! - the unit is an inpatient discharge: a patient with two qualifying stays counts twice;
//! - the numerator is a discharge whose **principal** diagnosis is in the indicator's sets
//!   (PQI 01: `ACDIASD`; PQI 05: `ACCOPDD` or `ACSASTD`), for a patient aged 18 or over (PQI
//!   01) or 40 or over (PQI 05) at admission;
//! - PQI 05 excludes a discharge with a `RESPAN` code (cystic fibrosis, respiratory anomalies)
//!   anywhere among its diagnoses; every PQI excludes a transfer in from another hospital or
//!   health facility;
//! - codes match exactly, with or without the dot (`J44.1` is `J441`), never by prefix.
//!
//! The denominator is our adaptation of AHRQ's census population: the patient-years each
//! patient of the population spends in the indicator's age band during the period. Rates are
//! per 100,000 (patient-years).

use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;
use time::Date;

/// The two indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Indicator {
    /// Diabetes Short-Term Complications Admission Rate.
    Pqi01,
    /// COPD or Asthma in Older Adults Admission Rate.
    Pqi05,
}

impl Indicator {
    pub const ALL: [Indicator; 2] = [Indicator::Pqi01, Indicator::Pqi05];

    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::Pqi01 => "pqi01",
            Indicator::Pqi05 => "pqi05",
        }
    }

    pub fn parse(s: &str) -> Option<Indicator> {
        Indicator::ALL
            .into_iter()
            .find(|i| i.as_str().eq_ignore_ascii_case(s))
    }

    pub fn title(self) -> &'static str {
        match self {
            Indicator::Pqi01 => "PQI 01 Diabetes Short-Term Complications Admission Rate",
            Indicator::Pqi05 => "PQI 05 COPD or Asthma in Older Adults Admission Rate",
        }
    }

    /// The youngest age at admission that counts (and the denominator's age band).
    pub fn min_age(self) -> i32 {
        match self {
            Indicator::Pqi01 => 18,
            Indicator::Pqi05 => 40,
        }
    }
}

/// The code sets, compiled in from the CSV files AHRQ's sets were read into.
struct CodeSets {
    acdiasd: HashSet<String>,
    accopdd: HashSet<String>,
    acsastd: HashSet<String>,
    respan: HashSet<String>,
}

/// The `code` column (the second) of a code-set file; the first three columns never hold a
/// comma, so the descriptions after them need no CSV quoting rules.
fn codes_of(csv: &str) -> HashSet<String> {
    csv.lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(1))
        .map(normalise)
        .filter(|c| !c.is_empty())
        .collect()
}

fn sets() -> &'static CodeSets {
    static SETS: OnceLock<CodeSets> = OnceLock::new();
    SETS.get_or_init(|| CodeSets {
        acdiasd: codes_of(include_str!("../pqi/ACDIASD.csv")),
        accopdd: codes_of(include_str!("../pqi/ACCOPDD.csv")),
        acsastd: codes_of(include_str!("../pqi/ACSASTD.csv")),
        respan: codes_of(include_str!("../pqi/RESPAN.csv")),
    })
}

/// A code as AHRQ stores it: no dot, no spaces, upper case (`j44.1` is `J441`).
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '.' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The FHIR `Encounter.hospitalization.admitSource` codes
/// (`http://terminology.hl7.org/CodeSystem/admit-source`) we read as AHRQ's transfers in: from
/// another hospital (`hosp-trans`, `psych`: HCUP ASOURCE 2, UB-04 point of origin 4) or from
/// another health facility (`nursing`, `rehab`: ASOURCE 3, point of origin 5 and 6). The
/// mapping is ours, not AHRQ's; `emd`, `outp`, `born`, `gp`, `mp` and `other` are not transfers.
pub const TRANSFER_SOURCES: &[&str] = &["hosp-trans", "psych", "nursing", "rehab"];

/// Whether an admit source is a transfer in.
pub fn is_transfer(admit_source: &str) -> bool {
    TRANSFER_SOURCES.contains(&admit_source)
}

/// One hospital stay as the indicators read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discharge {
    /// `Encounter/id`, named in the per-patient results.
    pub id: String,
    pub admitted: Date,
    pub discharged: Date,
    /// An inpatient stay (class IMP); anything else is not a discharge for a PQI.
    pub inpatient: bool,
    /// The principal (first-listed) diagnosis, as written.
    pub principal: Option<String>,
    /// Every listed diagnosis, the principal among them, as written.
    pub diagnoses: Vec<String>,
    /// Admitted by transfer from another hospital or health facility.
    pub transfer_in: bool,
}

/// Why a discharge counts or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Counted,
    NotInpatient,
    TooYoung,
    /// The principal diagnosis is not in the indicator's sets (or there is none).
    NotPrincipal,
    /// PQI 05: a cystic fibrosis or respiratory anomaly code among the diagnoses.
    RespiratoryAnomaly,
    TransferIn,
}

/// A patient's age in whole years on a day.
pub fn age_on(born: Date, day: Date) -> i32 {
    let mut age = day.year() - born.year();
    if (day.month() as u8, day.day()) < (born.month() as u8, born.day()) {
        age -= 1;
    }
    age
}

const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";

fn date_of(v: &crate::record::Value) -> Option<Date> {
    match crate::interval::day_of(v.as_str()?) {
        crate::interval::Bound::Day(d) => Some(d),
        _ => None,
    }
}

/// The ICD-10-CM codes of a CodeableConcept.
fn icd10(concept: &crate::record::Value) -> Vec<String> {
    concept["coding"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| c["system"].as_str() == Some(ICD10CM))
                .filter_map(|c| c["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A patient's birth date and hospital stays, from their record (the store's measure
/// projection or full resources): every finished Encounter, its principal diagnosis the
/// rank-1 `Encounter.diagnosis` (its Condition's ICD-10-CM code, as utilisation reads it), else
/// the first `reasonCode`; every listed diagnosis for the exclusions; a transfer in when
/// `hospitalization.admitSource` is one of [`TRANSFER_SOURCES`].
pub fn discharges_of(record: &crate::PatientRecord) -> (Option<Date>, Vec<Discharge>) {
    let born = date_of(&record.patient["birthDate"]);
    let conditions = record.all("Condition");
    let condition = |reference: &str| {
        let id = reference.rsplit('/').next().unwrap_or(reference);
        conditions.iter().find(|c| c["id"].as_str() == Some(id))
    };
    let mut out = Vec::new();
    for e in record.all("Encounter") {
        if e["status"].as_str() != Some("finished") {
            continue;
        }
        let Some(admitted) = date_of(&e["period"]["start"]) else {
            continue;
        };
        let discharged = date_of(&e["period"]["end"]).unwrap_or(admitted);
        let mut listed: Vec<(i64, String)> = Vec::new();
        if let Some(ds) = e["diagnosis"].as_array() {
            for (i, d) in ds.iter().enumerate() {
                let rank = d["rank"].as_i64().unwrap_or(1000 + i as i64);
                if let Some(c) = d["condition"]["reference"].as_str().and_then(condition) {
                    listed.extend(icd10(&c["code"]).into_iter().map(|code| (rank, code)));
                }
            }
        }
        listed.sort_by_key(|(rank, _)| *rank);
        let reasons: Vec<String> = e["reasonCode"]
            .as_array()
            .map(|rs| rs.iter().flat_map(icd10).collect())
            .unwrap_or_default();
        let principal = listed
            .first()
            .map(|(_, c)| c.clone())
            .or_else(|| reasons.first().cloned());
        let transfer_in = e["hospitalization"]["admitSource"]["coding"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .filter_map(|c| c["code"].as_str())
                    .any(is_transfer)
            });
        out.push(Discharge {
            id: format!("Encounter/{}", e["id"].as_str().unwrap_or_default()),
            admitted,
            discharged,
            inpatient: e["class"]["code"].as_str() == Some("IMP"),
            principal,
            diagnoses: listed.into_iter().map(|(_, c)| c).chain(reasons).collect(),
            transfer_in,
        });
    }
    (born, out)
}

/// Whether a discharge counts in an indicator's numerator, and if not, why.
pub fn judge(indicator: Indicator, born: Option<Date>, d: &Discharge) -> Judgement {
    let s = sets();
    if !d.inpatient {
        return Judgement::NotInpatient;
    }
    // The diagnosis first, so that a stay kept out for age or a transfer is one that would
    // otherwise have counted (the counts of what each rule kept out mean that).
    let principal = d.principal.as_deref().map(normalise).unwrap_or_default();
    let in_sets = match indicator {
        Indicator::Pqi01 => s.acdiasd.contains(&principal),
        Indicator::Pqi05 => s.accopdd.contains(&principal) || s.acsastd.contains(&principal),
    };
    if !in_sets {
        return Judgement::NotPrincipal;
    }
    if born.is_none_or(|b| age_on(b, d.admitted) < indicator.min_age()) {
        return Judgement::TooYoung;
    }
    if indicator == Indicator::Pqi05
        && d.diagnoses
            .iter()
            .chain(d.principal.iter())
            .any(|c| s.respan.contains(&normalise(c)))
    {
        return Judgement::RespiratoryAnomaly;
    }
    if d.transfer_in {
        return Judgement::TransferIn;
    }
    Judgement::Counted
}

/// The patient-years a patient born on `born` spends aged `min_age` or over within the
/// period `[start, end]` (days inclusive, 365.25 days a year).
pub fn years_in_band(born: Option<Date>, min_age: i32, start: Date, end: Date) -> f64 {
    let Some(born) = born else { return 0.0 };
    let from = match born.replace_year(born.year() + min_age) {
        Ok(d) => d,
        // 29 February: the birthday is 1 March in a common year.
        Err(_) => born
            .next_day()
            .and_then(|d| d.replace_year(born.year() + min_age).ok())
            .unwrap_or(end),
    };
    let first = from.max(start);
    if first > end {
        return 0.0;
    }
    ((end - first).whole_days() + 1) as f64 / 365.25
}

/// An indicator's count over a population and a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub indicator: Indicator,
    pub start: Date,
    pub end: Date,
    /// Patients with any time in the age band during the period.
    pub patients: u64,
    /// The denominator: patient-years in the age band.
    pub patient_years: f64,
    /// The numerator: qualifying discharges (each counts).
    pub discharges: u64,
    /// (patient, `Encounter/id`) of every discharge that counted.
    pub counted: Vec<(String, String)>,
    /// Qualifying discharges by the month they ended in (`2025-03`).
    pub by_month: BTreeMap<String, u64>,
    /// How many discharges of the period with a qualifying principal diagnosis each rule kept
    /// out.
    pub too_young: u64,
    pub respiratory_anomaly: u64,
    pub transfers_in: u64,
}

impl Tally {
    pub fn new(indicator: Indicator, start: Date, end: Date) -> Self {
        Tally {
            indicator,
            start,
            end,
            patients: 0,
            patient_years: 0.0,
            discharges: 0,
            counted: Vec::new(),
            by_month: BTreeMap::new(),
            too_young: 0,
            respiratory_anomaly: 0,
            transfers_in: 0,
        }
    }

    /// Adds one patient: their time in the age band, and each of their discharges in the
    /// period (by discharge date, as AHRQ counts discharges).
    pub fn add(&mut self, patient: &str, born: Option<Date>, discharges: &[Discharge]) {
        let years = years_in_band(born, self.indicator.min_age(), self.start, self.end);
        if years > 0.0 {
            self.patients += 1;
            self.patient_years += years;
        }
        for d in discharges
            .iter()
            .filter(|d| self.start <= d.discharged && d.discharged <= self.end)
        {
            match judge(self.indicator, born, d) {
                Judgement::Counted => {
                    self.discharges += 1;
                    self.counted.push((patient.to_string(), d.id.clone()));
                    let month =
                        format!("{}-{:02}", d.discharged.year(), d.discharged.month() as u8);
                    *self.by_month.entry(month).or_default() += 1;
                }
                Judgement::TooYoung => self.too_young += 1,
                Judgement::RespiratoryAnomaly => self.respiratory_anomaly += 1,
                Judgement::TransferIn => self.transfers_in += 1,
                Judgement::NotInpatient | Judgement::NotPrincipal => {}
            }
        }
    }

    /// Merges another tally of the same indicator and period (from another batch).
    pub fn merge(&mut self, other: Tally) {
        self.patients += other.patients;
        self.patient_years += other.patient_years;
        self.discharges += other.discharges;
        self.counted.extend(other.counted);
        for (m, n) in other.by_month {
            *self.by_month.entry(m).or_default() += n;
        }
        self.too_young += other.too_young;
        self.respiratory_anomaly += other.respiratory_anomaly;
        self.transfers_in += other.transfers_in;
    }

    /// Each month of the period with its rate per 100,000 patient-years: the month's
    /// qualifying discharges over its share of the period's patient-time (by days).
    pub fn monthly_rates(&self) -> Vec<(String, f64)> {
        let days = ((self.end - self.start).whole_days() + 1) as f64;
        let mut out = Vec::new();
        let mut first = self.start;
        while first <= self.end {
            let next = first
                .replace_day(1)
                .ok()
                .and_then(|d| d.checked_add(time::Duration::days(32)))
                .and_then(|d| d.replace_day(1).ok())
                .unwrap_or(self.end.next_day().unwrap_or(self.end));
            let last = (next.previous_day().unwrap_or(next)).min(self.end);
            let share = ((last - first).whole_days() + 1) as f64 / days;
            let key = format!("{}-{:02}", first.year(), first.month() as u8);
            let n = self.by_month.get(&key).copied().unwrap_or(0) as f64;
            let years = self.patient_years * share;
            out.push((key, if years > 0.0 { n / years * 1e5 } else { 0.0 }));
            first = next;
        }
        out
    }

    /// Discharges per 100,000 patient-years, if there is any patient-time.
    pub fn rate_per_100k(&self) -> Option<f64> {
        (self.patient_years > 0.0).then(|| self.discharges as f64 / self.patient_years * 1e5)
    }

    /// The rate's 95% interval per 100,000, treating the count as Poisson (exact, by the
    /// chi-square relation, approximated with Wilson and Hilferty's cube root).
    pub fn interval_per_100k(&self) -> Option<(f64, f64)> {
        if self.patient_years <= 0.0 {
            return None;
        }
        let n = self.discharges as f64;
        let z = 1.959_963_984_540_054;
        let lower = if n == 0.0 {
            0.0
        } else {
            n * (1.0 - 1.0 / (9.0 * n) - z / (3.0 * n.sqrt())).powi(3)
        };
        let m = n + 1.0;
        let upper = m * (1.0 - 1.0 / (9.0 * m) + z / (3.0 * m.sqrt())).powi(3);
        let per = 1e5 / self.patient_years;
        Some((lower * per, upper * per))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn stay(principal: &str, others: &[&str]) -> Discharge {
        Discharge {
            id: "Encounter/e".into(),
            admitted: date!(2025 - 06 - 10),
            discharged: date!(2025 - 06 - 13),
            inpatient: true,
            principal: Some(principal.into()),
            diagnoses: std::iter::once(principal)
                .chain(others.iter().copied())
                .map(str::to_string)
                .collect(),
            transfer_in: false,
        }
    }

    /// Born so that they are `age` on the admission day (their birthday that very day).
    fn aged(age: i32) -> Option<Date> {
        Some(date!(2025 - 06 - 10).replace_year(2025 - age).unwrap())
    }

    #[test]
    fn stays_are_read_from_encounters_and_their_conditions() {
        use serde_json::json;
        let r = crate::PatientRecord::from_serde(vec![
            json!({"resourceType": "Patient", "id": "p", "birthDate": "1950-03-01"}),
            json!({"resourceType": "Condition", "id": "c1", "code": {"coding": [{"system": ICD10CM, "code": "J44.1"}]}}),
            json!({"resourceType": "Condition", "id": "c2", "code": {"coding": [{"system": ICD10CM, "code": "E84.0"}]}}),
            json!({"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "IMP"},
                   "period": {"start": "2025-02-01T10:00:00Z", "end": "2025-02-04T10:00:00Z"},
                   "diagnosis": [{"condition": {"reference": "Condition/c2"}, "rank": 2},
                                 {"condition": {"reference": "Condition/c1"}, "rank": 1}],
                   "hospitalization": {"admitSource": {"coding": [{"code": "hosp-trans"}]}}}),
            json!({"resourceType": "Encounter", "id": "e2", "status": "finished", "class": {"code": "EMER"},
                   "period": {"start": "2025-03-01"}, "reasonCode": [{"coding": [{"system": ICD10CM, "code": "J45.21"}]}]}),
            json!({"resourceType": "Encounter", "id": "e3", "status": "cancelled", "class": {"code": "IMP"},
                   "period": {"start": "2025-04-01"}}),
        ]);
        let (born, stays) = discharges_of(&r);
        assert_eq!(born, Some(date!(1950 - 03 - 01)));
        assert_eq!(stays.len(), 2, "the cancelled one is not a stay");
        let e1 = &stays[0];
        assert_eq!(
            e1.principal.as_deref(),
            Some("J44.1"),
            "rank 1 is principal"
        );
        assert_eq!(e1.diagnoses, vec!["J44.1", "E84.0"]);
        assert!(e1.inpatient && e1.transfer_in);
        assert_eq!(e1.discharged, date!(2025 - 02 - 04));
        let e2 = &stays[1];
        assert_eq!(
            e2.principal.as_deref(),
            Some("J45.21"),
            "else the first reason"
        );
        assert!(!e2.inpatient);
        // The measure projection keeps what this reads.
        let projected: Vec<serde_json::Value> = [
            json!({"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "IMP"},
                   "period": {"start": "2025-02-01", "end": "2025-02-04"}, "text": {"status": "generated", "div": "<div/>"},
                   "diagnosis": [{"condition": {"reference": "Condition/c1"}, "rank": 1}],
                   "reasonCode": [{"coding": [{"system": ICD10CM, "code": "J45.21"}]}],
                   "hospitalization": {"admitSource": {"coding": [{"code": "nursing"}]}}}),
        ]
        .iter()
        .map(crate::projection::project)
        .collect();
        assert_eq!(projected[0]["diagnosis"][0]["rank"], 1);
        assert_eq!(projected[0]["reasonCode"][0]["coding"][0]["code"], "J45.21");
        assert_eq!(
            projected[0]["hospitalization"]["admitSource"]["coding"][0]["code"],
            "nursing"
        );
        assert!(projected[0].get("text").is_none());
    }

    #[test]
    fn the_code_sets_are_aharqs_v2025_sets() {
        let s = sets();
        assert_eq!(s.acdiasd.len(), 13);
        assert_eq!(s.accopdd.len(), 15);
        assert_eq!(s.acsastd.len(), 13);
        assert_eq!(s.respan.len(), 48);
    }

    #[test]
    fn age_boundaries_are_at_admission() {
        use Indicator::*;
        assert_eq!(
            judge(Pqi05, aged(39), &stay("J44.1", &[])),
            Judgement::TooYoung
        );
        // The day before the 40th birthday is still 39.
        let almost = aged(40).map(|b| b.next_day().unwrap());
        assert_eq!(
            judge(Pqi05, almost, &stay("J44.1", &[])),
            Judgement::TooYoung
        );
        assert_eq!(
            judge(Pqi05, aged(40), &stay("J44.1", &[])),
            Judgement::Counted
        );
        assert_eq!(
            judge(Pqi01, aged(17), &stay("E11.10", &[])),
            Judgement::TooYoung
        );
        assert_eq!(
            judge(Pqi01, aged(18), &stay("E11.10", &[])),
            Judgement::Counted
        );
        assert_eq!(
            judge(Pqi01, None, &stay("E11.10", &[])),
            Judgement::TooYoung
        );
    }

    #[test]
    fn each_sets_first_and_last_code_counts_with_or_without_the_dot() {
        use Indicator::*;
        let adult = aged(65);
        for (ind, first, last) in [
            (Pqi01, "E10.10", "E13.641"),
            (Pqi05, "J41.0", "J47.9"),
            (Pqi05, "J45.21", "J45.998"),
        ] {
            for code in [first, last] {
                assert_eq!(
                    judge(ind, adult, &stay(code, &[])),
                    Judgement::Counted,
                    "{code}"
                );
                let undotted = code.replace('.', "");
                assert_eq!(judge(ind, adult, &stay(&undotted, &[])), Judgement::Counted);
                assert_eq!(
                    judge(ind, adult, &stay(&code.to_lowercase(), &[])),
                    Judgement::Counted
                );
            }
        }
        // Exact codes only: a parent code or a code next to the set does not count.
        assert_eq!(
            judge(Pqi05, adult, &stay("J44", &[])),
            Judgement::NotPrincipal
        );
        assert_eq!(
            judge(Pqi05, adult, &stay("J44.81", &[])),
            Judgement::NotPrincipal
        );
        assert_eq!(
            judge(Pqi01, adult, &stay("E11.9", &[])),
            Judgement::NotPrincipal
        );
        assert_eq!(
            judge(Pqi01, adult, &stay("J44.1", &[])),
            Judgement::NotPrincipal
        );
    }

    #[test]
    fn a_secondary_copd_code_does_not_count_and_a_secondary_anomaly_excludes() {
        use Indicator::*;
        let adult = aged(70);
        assert_eq!(
            judge(Pqi05, adult, &stay("I50.9", &["J44.1"])),
            Judgement::NotPrincipal,
            "COPD as a secondary diagnosis only"
        );
        assert_eq!(
            judge(Pqi05, adult, &stay("J44.1", &["E84.0"])),
            Judgement::RespiratoryAnomaly,
            "cystic fibrosis listed anywhere"
        );
        assert_eq!(
            judge(Pqi05, adult, &stay("J44.1", &["Q33.0"])),
            Judgement::RespiratoryAnomaly
        );
        // RESPAN does not touch PQI 01.
        assert_eq!(
            judge(Pqi01, adult, &stay("E11.10", &["E84.0"])),
            Judgement::Counted
        );
    }

    #[test]
    fn a_transfer_in_and_an_outpatient_visit_do_not_count() {
        use Indicator::*;
        let adult = aged(70);
        let mut transfer = stay("J44.1", &[]);
        transfer.transfer_in = true;
        assert_eq!(judge(Pqi05, adult, &transfer), Judgement::TransferIn);
        let mut visit = stay("J44.1", &[]);
        visit.inpatient = false;
        assert_eq!(judge(Pqi05, adult, &visit), Judgement::NotInpatient);
        assert!(is_transfer("hosp-trans") && is_transfer("nursing"));
        assert!(!is_transfer("emd") && !is_transfer("outp"));
    }

    #[test]
    fn each_discharge_counts_and_the_denominator_is_time_in_the_age_band() {
        let (start, end) = (date!(2025 - 01 - 01), date!(2025 - 12 - 31));
        let mut t = Tally::new(Indicator::Pqi05, start, end);
        // 40 on 1 July: half a year in the band, two qualifying stays.
        let born = Some(date!(1985 - 07 - 01));
        let mut second = stay("J45.21", &[]);
        second.id = "Encounter/f".into();
        second.admitted = date!(2025 - 09 - 01);
        second.discharged = date!(2025 - 09 - 03);
        let mut first = stay("J44.1", &[]);
        first.admitted = date!(2025 - 08 - 01);
        first.discharged = date!(2025 - 08 - 02);
        t.add("a", born, &[first, second]);
        // Too young all year: no time, and their stay is kept out as too young.
        t.add("b", Some(date!(2000 - 01 - 01)), &[stay("J44.1", &[])]);
        assert_eq!(t.discharges, 2);
        assert_eq!(t.patients, 1);
        assert!(
            (t.patient_years - 184.0 / 365.25).abs() < 1e-9,
            "{}",
            t.patient_years
        );
        assert_eq!(t.too_young, 1);
        let rate = t.rate_per_100k().unwrap();
        let months = t.monthly_rates();
        assert_eq!(months.len(), 12);
        assert_eq!(months[7].0, "2025-08");
        assert!(months[7].1 > 0.0 && months[0].1 == 0.0, "{months:?}");
        assert!((rate - 2.0 / (184.0 / 365.25) * 1e5).abs() < 1e-6);
        let (lo, hi) = t.interval_per_100k().unwrap();
        assert!(lo < rate && rate < hi);
        // A stay discharged outside the period is not in it.
        let mut outside = stay("J44.1", &[]);
        outside.discharged = date!(2026 - 01 - 02);
        let mut u = Tally::new(Indicator::Pqi05, start, end);
        u.add("c", Some(date!(1950 - 01 - 01)), &[outside]);
        assert_eq!(u.discharges, 0);
    }
}
