//! The patient's action plan: the zones of the protocol, with the clinician's personal
//! notes on each.

use super::*;

/// The code system of an action plan's zones.
pub const ZONES: &str = "https://coproduce.health/fhir/CodeSystem/action-plan-zone";

pub(super) const ACTION_PLAN: &str = "action-plan";

impl Rescue {
    /// The patient's action plan as personalised by their clinician: the CarePlan's id and
    /// version, and the personal note of each zone.
    pub async fn action_plan(
        &self,
        caller: &Caller,
        patient: &str,
    ) -> Result<Option<(String, i64, Vec<(String, String)>)>> {
        let found = self
            .plans(
                caller,
                ACTION_PLAN,
                &[
                    ("subject", format!("Patient/{patient}")),
                    ("status", "active".into()),
                ],
            )
            .await?;
        let Some(s) = found.first() else {
            return Ok(None);
        };
        let v = s.json().map_err(AppError::from)?;
        let notes = v["activity"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let d = &a["detail"];
                let zone = d["code"]["coding"]
                    .as_array()?
                    .iter()
                    .find(|c| c["system"] == ZONES)?["code"]
                    .as_str()?;
                Some((zone.to_string(), d["description"].as_str()?.to_string()))
            })
            .collect();
        Ok(Some((s.id.clone(), s.version_id, notes)))
    }

    /// Whether someone in `role` personalises the action plan: those who record eligibility.
    pub fn may_personalise(&self, role: Role) -> bool {
        self.protocol.rules.eligibility_by.contains(&role)
    }

    /// The clinician's personal note for each zone (what "usual" and "worse" mean for this
    /// patient: their usual breathing, their peak flow), kept on the patient's action plan.
    pub async fn personalise(
        &self,
        caller: &Caller,
        patient: &str,
        notes: &[(String, String)],
    ) -> Result<()> {
        let by = Self::by(caller)?;
        if !self.may_personalise(by.role) {
            return Err(CareError::Input {
                key: "personalise-by",
                english: "the action plan is personalised by the patient's clinician".into(),
                args: Vec::new(),
            });
        }
        for (zone, note) in notes {
            if !self.protocol.zones.iter().any(|z| &z.key == zone) {
                return Err(CareError::Input {
                    key: "personalise-zone",
                    english: format!("'{zone}' is not a zone of this action plan"),
                    args: Vec::new(),
                });
            }
            if note.chars().count() > 1000 {
                return Err(CareError::Input {
                    key: "personalise-long",
                    english: "a zone's note is at most 1,000 characters".into(),
                    args: Vec::new(),
                });
            }
        }
        let activity: Vec<Value> = self
            .protocol
            .zones
            .iter()
            .filter_map(|z| {
                let note = notes.iter().find(|(k, _)| *k == z.key)?.1.trim();
                (!note.is_empty()).then(|| {
                    json!({"detail": {
                        "code": {"coding": [{"system": ZONES, "code": z.key}], "text": z.heading.get("en")},
                        "status": "not-started",
                        "description": note,
                    }})
                })
            })
            .collect();
        let existing = self.action_plan(caller, patient).await?;
        let id = existing
            .as_ref()
            .map_or_else(crate::fhir_api::new_id, |(id, _, _)| id.clone());
        let mut plan = json!({
            "resourceType": "CarePlan",
            "id": id,
            "extension": [{"url": PROTOCOL_EXT, "valueString": self.protocol.rules.key}],
            "status": "active",
            "intent": "plan",
            "category": [{"coding": [{"system": PLAN_CATEGORY, "code": ACTION_PLAN}]}],
            "title": self.protocol.title.get("en"),
            "subject": {"reference": format!("Patient/{patient}")},
            "author": reference_or_display(&by.who),
        });
        if !activity.is_empty() {
            plan["activity"] = json!(activity);
        }
        let body = plan.to_string();
        match existing {
            Some((id, version, _)) => {
                self.api
                    .update(caller, "CarePlan", &id, body.as_bytes(), Some(version))
                    .await?;
            }
            None => {
                self.api
                    .update(caller, "CarePlan", &id, body.as_bytes(), None)
                    .await?;
            }
        }
        Ok(())
    }
}
