//! One patient's records, and the retrieves and status filters of QI-Core's CQL libraries
//! (`Status`, `QICoreCommon`), by resource type and code: never by profile.
//!
//! Records are held as sonic-rs values: parsed straight from the store's text, with small
//! objects searched in place, which is what lets a population run at store speed.

use crate::bundle::Terminology;
use crate::interval::{Bound, Span, day_of};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use std::sync::{Arc, OnceLock};
use time::Date;

/// A FHIR resource (or part of one) as the measures read it.
pub type Value = sonic_rs::Value;

#[derive(Debug, Clone, Default)]
pub struct PatientRecord {
    pub patient: Value,
    types: Vec<Typed>,
}

/// The resources of one type: given parsed, or kept as their JSON text (from the store's
/// projection) and parsed the first time a measure asks for them.
#[derive(Debug, Clone, Default)]
struct Typed {
    name: String,
    /// The projection's text, shared by all the types of one record, and this type's part.
    text: Arc<str>,
    range: std::ops::Range<usize>,
    parsed: OnceLock<Vec<Value>>,
    /// Why the text could not be parsed, when it could not.
    unreadable: OnceLock<String>,
}

impl Typed {
    fn parsed(&self) -> &[Value] {
        self.parsed.get_or_init(|| {
            let Some(text) = self.text.get(self.range.clone()).filter(|t| !t.is_empty()) else {
                return Vec::new();
            };
            sonic_rs::from_str(text).unwrap_or_else(|e| {
                let _ = self
                    .unreadable
                    .set(format!("its {} are not JSON: {e}", self.name));
                Vec::new()
            })
        })
    }
}

impl PatientRecord {
    /// Gathers a patient and their resources (any order; other patients' are not expected).
    pub fn new(resources: impl IntoIterator<Item = Value>) -> Self {
        let mut r = PatientRecord::default();
        r.extend(resources);
        r
    }

    /// Adds resources: the patient's own, or shared ones they refer to (a Medication).
    pub fn extend(&mut self, resources: impl IntoIterator<Item = Value>) {
        for v in resources {
            let Some(rt) = v["resourceType"].as_str().map(str::to_string) else {
                continue;
            };
            if rt == "Patient" {
                self.patient = v;
                continue;
            }
            let at = match self.types.iter().position(|t| t.name == rt) {
                Some(at) => at,
                None => {
                    self.types.push(Typed {
                        name: rt,
                        ..Typed::default()
                    });
                    self.types.len() - 1
                }
            };
            let t = &mut self.types[at];
            if t.parsed.get().is_none() {
                let parsed = t.parsed().to_vec();
                t.parsed = OnceLock::from(parsed);
            }
            if let Some(list) = t.parsed.get_mut() {
                list.push(v);
            }
        }
    }

    /// A patient from the store's measure projection ([`crate::projection::record`]). The
    /// Patient is parsed now; each other type when a measure first reads it, so a patient a
    /// measure rules out early costs little. Text that turns out not to be JSON reads as no
    /// resources and is reported by [`PatientRecord::unreadable`], which a run checks.
    pub fn from_projection(text: String) -> Result<Self, String> {
        let text: Arc<str> = Arc::from(text);
        let mut r = PatientRecord::default();
        let mut at = 0;
        for line in text.split_inclusive('\n') {
            let start = at;
            at += line.len();
            let line = line.trim_end_matches('\n');
            let Some((name, list)) = line.split_once('\t') else {
                return Err(format!("a line without a resource type: {line:.40}"));
            };
            if name == "Patient" {
                let mut patients: Vec<Value> = sonic_rs::from_str(list)
                    .map_err(|e| format!("the Patient is not JSON: {e}"))?;
                r.patient = patients.pop().unwrap_or_default();
            } else {
                let from = start + name.len() + 1;
                r.types.push(Typed {
                    name: name.to_string(),
                    text: text.clone(),
                    range: from..from + list.len(),
                    ..Typed::default()
                });
            }
        }
        Ok(r)
    }

    /// Why part of this record could not be read, if it could not (see
    /// [`PatientRecord::from_projection`]).
    pub fn unreadable(&self) -> Option<&str> {
        self.types
            .iter()
            .find_map(|t| t.unreadable.get().map(String::as_str))
    }

    /// A patient from serde_json values (test cases, the importer's shapes).
    pub fn from_serde(resources: impl IntoIterator<Item = serde_json::Value>) -> Self {
        PatientRecord::new(resources.into_iter().map(|v| to_value(&v)))
    }

    pub fn id(&self) -> &str {
        self.patient["id"].as_str().unwrap_or("")
    }

    pub fn all(&self, rt: &str) -> &[Value] {
        self.types
            .iter()
            .find(|t| t.name == rt)
            .map_or(&[], Typed::parsed)
    }

    /// The ids of the shared Medications this patient's requests refer to
    /// (`Medication/{id}`), which live outside the compartment and are added with
    /// [`PatientRecord::extend`].
    pub fn medication_references(&self) -> Vec<String> {
        self.all("MedicationRequest")
            .iter()
            .filter_map(|m| {
                m["medicationReference"]["reference"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("Medication/"))
                    .map(str::to_string)
            })
            .collect()
    }

    /// `[Type: "Value set"]`: the resources of a type whose primary code is in the set.
    pub fn retrieve<'a>(
        &'a self,
        rt: &'a str,
        t: &'a Terminology,
        value_set: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.all(rt)
            .iter()
            .filter(move |v| concept_in(self.code_of(rt, v), t, value_set))
    }

    /// The primary code, following MedicationRequest.medicationReference to the Medication
    /// (contained, or among the patient's records).
    pub fn code_of<'a>(&'a self, rt: &str, v: &'a Value) -> &'a Value {
        let direct = primary_code(rt, v);
        if rt != "MedicationRequest" || !direct.is_null() {
            return direct;
        }
        let Some(reference) = v["medicationReference"]["reference"].as_str() else {
            return direct;
        };
        let found = match reference.strip_prefix('#') {
            Some(local) => v["contained"]
                .as_array()
                .and_then(|c| c.iter().find(|m| m["id"].as_str() == Some(local))),
            None => {
                let id = reference.rsplit('/').next().unwrap_or(reference);
                self.all("Medication")
                    .iter()
                    .find(|m| m["id"].as_str() == Some(id))
            }
        };
        found.map_or(direct, |m| &m["code"])
    }

    /// `[Type: "Code"]`: the resources of a type whose primary code is that code.
    pub fn retrieve_code<'a>(
        &'a self,
        rt: &'a str,
        t: &'a Terminology,
        code: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.all(rt)
            .iter()
            .filter(move |v| concept_is(self.code_of(rt, v), t, code))
    }

    /// `AgeInYearsAt(day)`.
    pub fn age_at(&self, day: Date) -> Option<i32> {
        let Bound::Day(born) = bound(&self.patient["birthDate"], Bound::Unknown) else {
            return None;
        };
        let mut age = day.year() - born.year();
        if (day.month() as u8, day.day()) < (born.month() as u8, born.day()) {
            age -= 1;
        }
        Some(age)
    }
}

/// The element a QI-Core retrieve filters on.
pub fn primary_code<'a>(rt: &str, v: &'a Value) -> &'a Value {
    match rt {
        "Encounter" => &v["type"],
        "MedicationRequest" => &v["medicationCodeableConcept"],
        "DeviceRequest" => &v["codeCodeableConcept"],
        _ => &v["code"],
    }
}

/// A serde_json value as the measures read it.
pub fn to_value(v: &serde_json::Value) -> Value {
    sonic_rs::from_str(&v.to_string()).unwrap_or_default()
}

fn codings(concept: &Value) -> impl Iterator<Item = (&str, &str)> {
    // A CodeableConcept, or a list of them (Encounter.type); no allocation, as this runs for
    // every record a retrieve looks at.
    let (list, one) = match concept.as_array() {
        Some(items) => (Some(items.iter()), None),
        None => (None, Some(concept)),
    };
    list.into_iter()
        .flatten()
        .chain(one)
        .flat_map(|c| c["coding"].as_array().into_iter().flatten())
        .filter_map(|c| Some((c["system"].as_str()?, c["code"].as_str()?)))
}

pub fn concept_in(concept: &Value, t: &Terminology, value_set: &str) -> bool {
    codings(concept).any(|(s, c)| t.in_value_set(value_set, s, c))
}

/// `concept ~ "Code"`.
pub fn concept_is(concept: &Value, t: &Terminology, code: &str) -> bool {
    let Some((system, value)) = t.code(code) else {
        debug_assert!(false, "no code named {code}");
        return false;
    };
    codings(concept).any(|(s, c)| s == system && c == value)
}

fn code_of(concept: &Value, system: &str, code: &str) -> bool {
    codings(concept).any(|(s, c)| s == system && c == code)
}

// The status filters of the Status library.

pub fn encounter_performed(v: &Value) -> bool {
    v["status"] == "finished"
}

pub fn lab_or_assessment_performed(v: &Value) -> bool {
    matches!(
        v["status"].as_str(),
        Some("final" | "amended" | "corrected")
    )
}

pub fn symptom(v: &Value) -> bool {
    matches!(
        v["status"].as_str(),
        Some("preliminary" | "final" | "amended" | "corrected")
    )
}

pub fn intervention_performed(v: &Value) -> bool {
    v["status"] == "completed"
}

const ORDER_INTENTS: &[&str] = &[
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
];

/// isInterventionOrder, isDeviceOrderPersonalUseDevices.
pub fn ordered(v: &Value) -> bool {
    matches!(v["status"].as_str(), Some("active" | "completed"))
        && v["intent"]
            .as_str()
            .is_some_and(|i| ORDER_INTENTS.contains(&i))
}

pub fn medication_active(v: &Value) -> bool {
    v["status"] == "active"
        && v["intent"]
            .as_str()
            .is_some_and(|i| ORDER_INTENTS.contains(&i))
}

const CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";

/// Status."verified": no verification status, or confirmed, unconfirmed, provisional or
/// differential.
pub fn verified(v: &Value) -> bool {
    let vs = &v["verificationStatus"];
    if vs.is_null() {
        return true;
    }
    ["confirmed", "unconfirmed", "provisional", "differential"]
        .iter()
        .any(|c| code_of(vs, VERIFICATION, c))
}

/// `toInterval()` of a choice of dateTime or Period (age-based onsets are not supported:
/// unknown).
pub fn to_interval(v: &Value, prefix: &str) -> Option<Span> {
    let key = |suffix: &str| format!("{prefix}{suffix}");
    if let Some(s) = v.get(key("DateTime").as_str()) {
        return Some(Span::point(bound(s, Bound::Unknown)));
    }
    if let Some(p) = v.get(key("Period").as_str()) {
        return period(p);
    }
    if v.get(key("Age").as_str()).is_some() || v.get(key("Range").as_str()).is_some() {
        return Some(Span {
            low: Bound::Unknown,
            high: Bound::Unknown,
        });
    }
    None
}

/// QICoreCommon's prevalenceInterval() of a Condition.
pub fn prevalence(v: &Value) -> Span {
    // `start of` a missing onset, or of one with no start, is null, and a closed null low
    // boundary (Interval[null, ..]) is the beginning of time.
    let onset_start = match to_interval(v, "onset").map(|s| s.low) {
        Some(Bound::Day(d)) => Bound::Day(d),
        _ => Bound::Unbounded,
    };
    let abatement_end = to_interval(v, "abatement").map(|s| s.high);
    let active = ["active", "recurrence", "relapse"]
        .iter()
        .any(|c| code_of(&v["clinicalStatus"], CLINICAL, c));
    let high = match (active, abatement_end) {
        (_, Some(end)) => end,
        // Active with no abatement: ongoing.
        (true, None) => Bound::Unbounded,
        // Inactive with no abatement: Interval[onset, null) ends at an unknown time.
        (false, None) => Bound::Unknown,
    };
    Span {
        low: onset_start,
        high,
    }
}

/// `latest()` of Observation.effective: the end of a period if it has one, else its start.
pub fn latest_effective(v: &Value) -> Bound {
    match to_interval(v, "effective") {
        Some(s) if matches!(s.high, Bound::Day(_)) => s.high,
        Some(s) if s.low != Bound::Unknown => s.low,
        _ => Bound::Unknown,
    }
}

/// `effective.toInterval()`.
pub fn effective(v: &Value) -> Option<Span> {
    to_interval(v, "effective")
}

/// `performed.toInterval()`.
pub fn performed(v: &Value) -> Option<Span> {
    to_interval(v, "performed")
}

/// FHIRHelpers' ToInterval of a resource's `period`.
pub fn period_of(v: &Value) -> Option<Span> {
    period(&v["period"])
}

/// QI-Core's positive retrieves leave out what was explicitly not to be done (the
/// *NotRequested profiles): `doNotPerform` true, or its R5 extension on DeviceRequest.
pub fn not_refused(v: &Value) -> bool {
    if v["doNotPerform"] == true {
        return false;
    }
    !v["modifierExtension"].as_array().is_some_and(|es| {
        es.iter().any(|e| {
            e["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("doNotPerform"))
                && e["valueBoolean"] == true
        })
    })
}

/// CumulativeMedicationDuration's medicationRequestPeriod(): from the start (bounds, else
/// authored, else the validity period) for the days supplied (the expected supply duration,
/// else quantity over daily dose) times one plus the refills; else to the end of the bounds.
pub fn medication_request_period(m: &Value) -> Option<Span> {
    let dosage = match m["dosageInstruction"].as_array().map(|a| a.as_slice()) {
        Some([one]) => one.clone(),
        Some([]) | None => Value::new(),
        Some(_) => return None, // `singleton from` more than one is an error
    };
    let dose_and_rate = match dosage["doseAndRate"].as_array().map(|a| a.as_slice()) {
        Some([one]) => one.clone(),
        Some([]) | None => Value::new(),
        Some(_) => return None,
    };
    let repeat = &dosage["timing"]["repeat"];
    let frequency = repeat["frequencyMax"]
        .as_f64()
        .or_else(|| repeat["frequency"].as_f64());
    let per_day = |f: f64, period: f64, unit: &str| -> Option<f64> {
        let hours = match unit {
            "h" | "hour" | "hours" => 1.0,
            "min" | "minute" | "minutes" => 1.0 / 60.0,
            "s" | "second" | "seconds" => 1.0 / 3600.0,
            "d" | "day" | "days" => 24.0,
            "wk" | "week" | "weeks" => 24.0 * 7.0,
            "mo" | "month" | "months" => 24.0 * 30.0,
            "a" | "year" | "years" => 24.0 * 365.0,
            _ => return None,
        };
        Some(f * 24.0 / (period * hours))
    };
    let doses_per_day = frequency
        .zip(repeat["period"].as_f64())
        .and_then(|(f, p)| per_day(f, p, repeat["periodUnit"].as_str().unwrap_or("")))
        .unwrap_or_else(|| {
            // Count(timeOfDay) is 0 for none, which Coalesce takes.
            repeat["timeOfDay"]
                .as_array()
                .map_or(0.0, |t| t.len() as f64)
        });
    let dose = dose_and_rate["doseRange"]["high"]["value"]
        .as_f64()
        .or_else(|| dose_and_rate["doseQuantity"]["value"].as_f64());
    let bounds = &repeat["boundsPeriod"];
    let days_supply = {
        let d = &m["dispenseRequest"]["expectedSupplyDuration"];
        let unit = d["code"].as_str().or(d["unit"].as_str()).unwrap_or("d");
        d["value"].as_f64().and_then(|v| match unit {
            "d" | "day" | "days" => Some(v),
            "wk" | "week" | "weeks" => Some(v * 7.0),
            "h" | "hour" | "hours" => Some(v / 24.0),
            _ => None,
        })
    };
    let quantity = m["dispenseRequest"]["quantity"]["value"].as_f64();
    let refills = m["dispenseRequest"]["numberOfRepeatsAllowed"]
        .as_f64()
        .unwrap_or(0.0);
    let day = |v: &Value| match bound(v, Bound::Unknown) {
        Bound::Day(d) => Some(d),
        _ => None,
    };
    let start = day(&bounds["start"])
        .or_else(|| day(&m["authoredOn"]))
        .or_else(|| day(&m["dispenseRequest"]["validityPeriod"]["start"]))?;
    let total = days_supply
        .or_else(|| Some(quantity? / (dose? * doses_per_day)))
        .map(|d| d * (1.0 + refills))
        .filter(|d| d.is_finite());
    if let Some(total) = total {
        let end = start + time::Duration::days((total - 1.0).round() as i64);
        return Some(Span::days(start, end));
    }
    day(&bounds["end"]).map(|end| Span::days(start, end))
}

/// A JSON date or dateTime as a boundary: absent is `absent`.
pub fn bound(v: &Value, absent: Bound) -> Bound {
    v.as_str().map_or(absent, day_of)
}

/// FHIRHelpers' ToInterval(Period): no start is an unknown start; no end is ongoing.
pub fn period(p: &Value) -> Option<Span> {
    if !p.is_object() {
        return None;
    }
    Some(Span {
        low: bound(&p["start"], Bound::Unknown),
        high: bound(&p["end"], Bound::Unbounded),
    })
}
