//! The social-needs measures over the store: each patient (language, age band, sex, their
//! latest screening and what it found) and each referral (made, accepted, how it ended, the
//! patient's word), counted by `core::social::measures`.

use super::referrals::{HELPED, Referral, instant};
use super::*;
use coproduce_core::social::referral::{Helped, Status};

impl Social {
    /// The measures for someone the policy lets see the whole population (a quality
    /// analyst), in aggregate only: one pass over the store under their name, audited, and a
    /// refusal too. No chart is shown to them.
    pub async fn population_measures(
        &self,
        caller: &Caller,
    ) -> Result<coproduce_core::social::measures::Report> {
        let pass = self
            .api
            .population_pass(caller, "social-needs-measures")
            .await?;
        self.measures(&pass).await
    }

    /// The social-needs measures over everything the caller reaches in the store (an
    /// integration's or the command line's system rights; analysts read the figures).
    pub async fn measures(
        &self,
        caller: &Caller,
    ) -> Result<coproduce_core::social::measures::Report> {
        use coproduce_core::social::measures::{Person, ReferralFacts, report};
        use std::collections::HashMap;
        let now = self.clock.now();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut people = Vec::new();
        for p in self.api.search_all(caller, "Patient", &[]).await? {
            let v = p.json()?;
            let birth = v["birthDate"].as_str().and_then(|b| {
                time::Date::parse(b, time::macros::format_description!("[year]-[month]-[day]")).ok()
            });
            index.insert(p.id.clone(), people.len());
            people.push(Person {
                language: crate::vocabulary::preferred_language(&v).unwrap_or_else(|| "en".into()),
                age_band: coproduce_core::social::measures::age_band(birth, now.date()),
                sex: v["gender"].as_str().unwrap_or("unknown").to_string(),
                screened: None,
                positive: Vec::new(),
            });
        }
        let label = format!("{SENSITIVITY_SYSTEM}|{SOCIAL_NEEDS_LABEL}");
        let responses = self
            .api
            .search_all(
                caller,
                "QuestionnaireResponse",
                &[
                    ("_security".into(), label),
                    ("status".into(), "completed".into()),
                ],
            )
            .await?;
        let mut helped_by_request: HashMap<String, Helped> = HashMap::new();
        let mut latest: HashMap<String, (OffsetDateTime, String)> = HashMap::new();
        for r in responses {
            let v = r.json()?;
            let Some(patient) = r.patient_id.clone() else {
                continue;
            };
            let q = v["questionnaire"].as_str().unwrap_or_default();
            if q == HELPED {
                if let (Some(sr), Some(h)) = (
                    v["basedOn"][0]["reference"].as_str(),
                    v["item"][0]["answer"][0]["valueCoding"]["code"]
                        .as_str()
                        .and_then(Helped::parse),
                ) {
                    helped_by_request.insert(sr.to_string(), h);
                }
            } else if screening::is_ahc(q) {
                let Some(at) = instant(&v["authored"]) else {
                    continue;
                };
                if latest.get(&patient).is_none_or(|(t, _)| *t < at) {
                    latest.insert(patient, (at, r.id.clone()));
                }
            }
        }
        for c in self
            .api
            .search_all(caller, "Condition", &[("category".into(), "sdoh".into())])
            .await?
        {
            let (Some(patient), v) = (c.patient_id.clone(), c.json()?) else {
                continue;
            };
            let Some((_, qr)) = latest.get(&patient) else {
                continue;
            };
            let from_latest = v["evidence"][0]["detail"][0]["reference"]
                .as_str()
                .is_some_and(|e| e.starts_with(&format!("Observation/{qr}-")));
            let domain = need_domain(&v);
            if let (true, Some(d), Some(&i)) = (from_latest, domain, index.get(&patient)) {
                people[i].positive.push(d);
            }
        }
        for (patient, (at, _)) in &latest {
            if let Some(&i) = index.get(patient) {
                people[i].screened = Some(*at);
            }
        }
        let mut referrals = Vec::new();
        for t in self
            .api
            .search_all(caller, "Task", &[("code".into(), "fulfill".into())])
            .await?
        {
            let (Some(patient), Some(r)) = (t.patient_id.clone(), Referral::of(&t)) else {
                continue;
            };
            let Some(&person) = index.get(&patient) else {
                continue;
            };
            let v = t.json()?;
            let Some(made) = r.authored else { continue };
            let sr = v["focus"]["reference"].as_str().unwrap_or_default();
            referrals.push(ReferralFacts {
                person,
                made,
                status: r.status,
                accepted: !matches!(
                    r.status,
                    Status::Draft
                        | Status::Requested
                        | Status::Rejected
                        | Status::Cancelled
                        | Status::EnteredInError
                ),
                ending: r.ending,
                closed: r
                    .status
                    .is_final()
                    .then(|| instant(&v["lastModified"]))
                    .flatten(),
                patient_says: helped_by_request.get(sr).copied(),
            });
        }
        Ok(report(&people, &referrals, now))
    }
}
