//! The shared exclusion libraries: Hospice 6.18, PalliativeCare 1.18 and
//! AdvancedIllnessandFrailty 1.27. Each returns the record that decided it, if any.

use crate::bundle::Terminology;
use crate::interval::{Bound, Span, holds};
use crate::record::Value;
use crate::record::{
    PatientRecord, concept_in, concept_is, effective, encounter_performed, intervention_performed,
    lab_or_assessment_performed, medication_active, not_refused, ordered, performed, period_of,
    prevalence, symptom, verified,
};
use sonic_rs::JsonValueTrait;
use time::Date;

pub(crate) fn reference(v: &Value) -> String {
    format!(
        "{}/{}",
        v["resourceType"].as_str().unwrap_or(""),
        v["id"].as_str().unwrap_or("")
    )
}

fn first<'a>(mut it: impl Iterator<Item = &'a Value>) -> Option<String> {
    it.next().map(reference)
}

/// Conditions of a value set, problem-list and encounter-diagnosis alike, that are verified.
fn diagnoses<'a>(
    rec: &'a PatientRecord,
    t: &'a Terminology,
    vs: &'a str,
) -> impl Iterator<Item = &'a Value> + 'a {
    rec.retrieve("Condition", t, vs).filter(|c| verified(c))
}

/// Hospice."Has Hospice Services".
pub fn hospice(rec: &PatientRecord, t: &Terminology, mp: &Span) -> Option<String> {
    let discharged = rec
        .retrieve("Encounter", t, "Encounter Inpatient")
        .filter(|e| encounter_performed(e))
        .filter(|e| {
            let d = &e["hospitalization"]["dischargeDisposition"];
            concept_is(d, t, "Discharge to home for hospice care (procedure)")
                || concept_is(
                    d,
                    t,
                    "Discharge to healthcare facility for hospice care (procedure)",
                )
        })
        .filter(|e| period_of(e).is_some_and(|p| holds(p.ends_during(mp))));
    if let Some(r) = first(discharged) {
        return Some(r);
    }
    let encounters = rec
        .retrieve("Encounter", t, "Hospice Encounter")
        .filter(|e| encounter_performed(e))
        .filter(|e| period_of(e).is_some_and(|p| holds(p.overlaps(mp))));
    if let Some(r) = first(encounters) {
        return Some(r);
    }
    let assessed = rec
        .retrieve_code("Observation", t, "Hospice care [Minimum Data Set]")
        .filter(|o| lab_or_assessment_performed(o))
        .filter(|o| concept_is(&o["valueCodeableConcept"], t, "Yes (qualifier value)"))
        .filter(|o| effective(o).is_some_and(|s| holds(s.overlaps(mp))));
    if let Some(r) = first(assessed) {
        return Some(r);
    }
    let ordered_care = rec
        .retrieve("ServiceRequest", t, "Hospice Care Ambulatory")
        .filter(|s| ordered(s) && not_refused(s))
        .filter(|s| {
            holds(Span::point(crate::record::bound(&s["authoredOn"], Bound::Unknown)).during(mp))
        });
    if let Some(r) = first(ordered_care) {
        return Some(r);
    }
    let performed_care = rec
        .retrieve("Procedure", t, "Hospice Care Ambulatory")
        .filter(|p| intervention_performed(p))
        .filter(|p| performed(p).is_some_and(|s| holds(s.overlaps(mp))));
    if let Some(r) = first(performed_care) {
        return Some(r);
    }
    first(diagnoses(rec, t, "Hospice Diagnosis").filter(|c| holds(prevalence(c).overlaps(mp))))
}

/// PalliativeCare."Has Palliative Care in the Measurement Period".
pub fn palliative(rec: &PatientRecord, t: &Terminology, mp: &Span) -> Option<String> {
    let code = "Functional Assessment of Chronic Illness Therapy - Palliative Care Questionnaire (FACIT-Pal)";
    let assessed = rec
        .retrieve_code("Observation", t, code)
        .filter(|o| lab_or_assessment_performed(o))
        .filter(|o| effective(o).is_some_and(|s| holds(s.overlaps(mp))));
    if let Some(r) = first(assessed) {
        return Some(r);
    }
    let diagnosed = diagnoses(rec, t, "Palliative Care Diagnosis")
        .filter(|c| holds(prevalence(c).overlaps(mp)));
    if let Some(r) = first(diagnosed) {
        return Some(r);
    }
    let encounters = rec
        .retrieve("Encounter", t, "Palliative Care Encounter")
        .filter(|e| encounter_performed(e))
        .filter(|e| period_of(e).is_some_and(|p| holds(p.overlaps(mp))));
    if let Some(r) = first(encounters) {
        return Some(r);
    }
    first(
        rec.retrieve("Procedure", t, "Palliative Care Intervention")
            .filter(|p| intervention_performed(p))
            .filter(|p| performed(p).is_some_and(|s| holds(s.overlaps(mp)))),
    )
}

/// AIFrailLTCF."Has Criteria Indicating Frailty".
pub fn frailty(rec: &PatientRecord, t: &Terminology, mp: &Span) -> Option<String> {
    let devices = rec
        .retrieve("DeviceRequest", t, "Frailty Device")
        .filter(|d| ordered(d) && not_refused(d))
        .filter(|d| {
            holds(Span::point(crate::record::bound(&d["authoredOn"], Bound::Unknown)).during(mp))
        });
    if let Some(r) = first(devices) {
        return Some(r);
    }
    let equipment = rec
        .retrieve_code("Observation", t, "Medical equipment used")
        .filter(|o| lab_or_assessment_performed(o))
        .filter(|o| concept_in(&o["valueCodeableConcept"], t, "Frailty Device"))
        .filter(|o| effective(o).is_some_and(|s| holds(s.ends_during(mp))));
    if let Some(r) = first(equipment) {
        return Some(r);
    }
    let diagnosed =
        diagnoses(rec, t, "Frailty Diagnosis").filter(|c| holds(prevalence(c).overlaps(mp)));
    if let Some(r) = first(diagnosed) {
        return Some(r);
    }
    let encounters = rec
        .retrieve("Encounter", t, "Frailty Encounter")
        .filter(|e| encounter_performed(e))
        .filter(|e| period_of(e).is_some_and(|p| holds(p.overlaps(mp))));
    if let Some(r) = first(encounters) {
        return Some(r);
    }
    first(
        rec.retrieve("Observation", t, "Frailty Symptom")
            .filter(|o| symptom(o))
            .filter(|o| effective(o).is_some_and(|s| holds(s.overlaps(mp)))),
    )
}

/// The year before the measurement period and the period itself.
fn with_year_before(mp: &Span) -> Span {
    let low = match mp.low {
        Bound::Day(d) => d
            .replace_year(d.year() - 1)
            .map_or(Bound::Unknown, Bound::Day),
        b => b,
    };
    Span { low, high: mp.high }
}

/// Advanced illness, or dementia medication, in the year before or during the period.
fn advanced_illness_or_dementia(rec: &PatientRecord, t: &Terminology, mp: &Span) -> Option<String> {
    let window = with_year_before(mp);
    let illness = diagnoses(rec, t, "Advanced Illness")
        .filter(|c| holds(prevalence(c).starts_during(&window)));
    if let Some(r) = first(illness) {
        return Some(r);
    }
    first(
        rec.retrieve("MedicationRequest", t, "Dementia Medications")
            .filter(|m| medication_active(m) && not_refused(m))
            .filter(|m| {
                crate::record::medication_request_period(m)
                    .is_some_and(|p| holds(p.overlaps(&window)))
            }),
    )
}

/// "Is Age 66 or Older with Advanced Illness and Frailty".
pub fn advanced_illness_and_frailty(
    rec: &PatientRecord,
    t: &Terminology,
    mp: &Span,
    end: Date,
) -> Option<String> {
    if rec.age_at(end)? < 66 {
        return None;
    }
    let frail = frailty(rec, t, mp)?;
    let ill = advanced_illness_or_dementia(rec, t, mp)?;
    Some(format!("{frail} {ill}"))
}

/// "Is Age 66 or Older Living Long Term in a Nursing Home": the last housing-status
/// assessment ending on or before the end of the period says so.
pub fn long_term_care(rec: &PatientRecord, t: &Terminology, end: Date) -> Option<String> {
    if rec.age_at(end)? < 66 {
        return None;
    }
    let mut assessed: Vec<(&Value, Span)> = rec
        .retrieve_code("Observation", t, "Housing status")
        .filter(|o| lab_or_assessment_performed(o))
        .filter_map(|o| effective(o).map(|s| (o, s)))
        .filter(|(_, s)| holds(s.ends_on_or_before(end)))
        .collect();
    assessed.sort_by_key(|(_, s)| match s.high {
        Bound::Day(d) => Some(d),
        _ => None,
    });
    let (last, _) = assessed.last()?;
    concept_is(
        &last["valueCodeableConcept"],
        t,
        "Lives in nursing home (finding)",
    )
    .then(|| reference(last))
}

/// "Is Age 66 to 80 with Advanced Illness and Frailty or Is Age 81 or Older with Frailty".
pub fn frailty_by_age(
    rec: &PatientRecord,
    t: &Terminology,
    mp: &Span,
    end: Date,
) -> Option<String> {
    let age = rec.age_at(end)?;
    if (66..=80).contains(&age) {
        let frail = frailty(rec, t, mp)?;
        let ill = advanced_illness_or_dementia(rec, t, mp)?;
        return Some(format!("{frail} {ill}"));
    }
    if age >= 81 {
        return frailty(rec, t, mp);
    }
    None
}
