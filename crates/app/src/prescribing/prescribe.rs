//! Writing a prescription from the formulary: the check shown before signing (what it costs
//! this patient under their coverage, the cheaper alternatives, how they get medicines,
//! teach-back, their language), and the MedicationRequest with its directions written in the
//! prescriber's English and in the patient's language, checked as soon as it is written.

use super::*;
use crate::i18n::Tr;
use coproduce_core::prescribing::check::{self as core_check, Check, PatientSide};
use coproduce_core::prescribing::sig::{Sig, prescribes};
use coproduce_core::prescribing::{CoverageKind, Drug, Money};
use coproduce_store::Stored;

/// What the prescriber sees before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub drug: Drug,
    pub coverage: Option<CoverageKind>,
    /// One fill's cost to the patient under their coverage, if known.
    pub cost: Option<Money>,
    /// Cheaper drugs that could replace it: the drug, its cost, what it saves per fill.
    pub alternatives: Vec<(Drug, Money, Money)>,
    pub patient: PatientSide,
    pub check: Check,
}

/// The directions in a language: the dose and how often, from the message files.
pub fn directions(t: &Tr, sig: &Sig) -> String {
    let dose = t.count(
        &format!("sig-{}", sig.unit.as_str()),
        "n",
        sig.amount as usize,
    );
    let often = t.t(&format!("sig-{}", sig.frequency.as_str()));
    if sig.as_needed {
        t.with(
            "sig-line-as-needed",
            &[
                ("dose", dose),
                ("often", often),
                ("needed", t.t("sig-as-needed")),
            ],
        )
    } else {
        t.with("sig-line", &[("dose", dose), ("often", often)])
    }
}

fn refused_not_prescriber() -> CareError {
    CareError::App(AppError::Forbidden(
        "prescriptions are written by a clinician on the patient's care team".into(),
    ))
}

impl Prescribing {
    /// The check of `drug` for this patient, before anything is written.
    pub async fn preview(&self, caller: &Caller, patient: &str, drug: &str) -> Result<Preview> {
        if !prescribes(&caller.actor.who, patient) {
            return Err(refused_not_prescriber());
        }
        let formulary = self.formulary(caller).await?;
        let Some(d) = formulary.drug(drug) else {
            return Err(CareError::input(
                "prescribe-not-on-formulary",
                "choose a medicine of the formulary",
            ));
        };
        let side = self.patient_side(caller, patient, Some(d)).await?;
        let check = core_check::check(Some(d), &formulary, &side, &self.rules.check);
        let (cost, alternatives) = match side.coverage {
            Some(k) => (
                d.cost(k),
                formulary
                    .alternatives(d, k)
                    .into_iter()
                    .map(|a| (a.drug.clone(), a.cost, a.saves.rounded()))
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        Ok(Preview {
            drug: d.clone(),
            coverage: side.coverage,
            cost,
            alternatives,
            patient: side,
            check,
        })
    }

    /// Writes the prescription (active, an order) and checks it at once; returns its id.
    pub async fn prescribe(
        &self,
        caller: &Caller,
        patient: &str,
        drug: &str,
        sig: &Sig,
    ) -> Result<String> {
        if !prescribes(&caller.actor.who, patient) {
            return Err(refused_not_prescriber());
        }
        let formulary = self.formulary(caller).await?;
        let Some(d) = formulary.drug(drug) else {
            return Err(CareError::input(
                "prescribe-not-on-formulary",
                "choose a medicine of the formulary",
            ));
        };
        let person = self.api.read(caller, "Patient", patient).await?.json()?;
        let language = crate::vocabulary::preferred_language(&person).unwrap_or_default();
        let mut coding =
            vec![json!({"system": FORMULARY_SYSTEM, "code": d.code, "display": d.name})];
        if let Some(rx) = &d.rxnorm {
            coding.push(json!({"system": RXNORM, "code": rx}));
        }
        let mut mr = json!({
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"coding": coding, "text": format!("{} {}", d.name, d.strength).trim()},
            "subject": {"reference": format!("Patient/{patient}")},
            "authoredOn": Stored::instant(self.clock.now()),
            "dosageInstruction": [{
                "text": directions(&Tr::new("en"), sig),
                "patientInstruction": directions(&Tr::new(&language), sig),
                "timing": {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": sig.frequency.timing_code()}]}},
                "asNeededBoolean": sig.as_needed,
                "doseAndRate": [{"doseQuantity": {"value": sig.amount, "unit": sig.unit.as_str()}}],
            }],
            "dispenseRequest": {
                "expectedSupplyDuration": {"value": d.days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"},
            },
            "note": [{"text": format!("One fill: {}", d.fill)}],
        });
        if let Some(r) = &caller.fhir_ref {
            mr["requester"] = json!({"reference": r});
        }
        let written = self
            .api
            .create(caller, "MedicationRequest", mr.to_string().as_bytes(), None)
            .await?;
        let id = written.stored.id.clone();
        self.check(&Caller::system("coproduce:prescribing"), &id)
            .await?;
        Ok(id)
    }
}
