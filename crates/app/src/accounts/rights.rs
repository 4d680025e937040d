//! Who a person is to the policy: their care teams' patients (CareTeam), their grants
//! (Consent) and their break-glass openings, read from the record.

use super::credentials::invalid;
use super::{Accounts, Caller};
use crate::error::AppError;
use crate::vocabulary::grant_of;
use coproduce_core::access::{
    Actor, BreakGlass, BreakGlassRefusal, Grant, Role, Who, break_glass_until,
};
use coproduce_core::{from_unix_millis, unix_millis};
use coproduce_fhir::query::{Filter, SearchQuery};
use coproduce_fhir::search::split_reference;
use coproduce_store::{AuditEntry, UserRow};
use std::collections::BTreeSet;
use time::OffsetDateTime;

impl Accounts {
    /// The caller a signed-in person is in the web app: their rights from their roles and
    /// the record, as of now.
    pub async fn caller_for_user(&self, user: &UserRow) -> Result<Caller, AppError> {
        let who = self.who(user, self.clock.now()).await?;
        Ok(Caller {
            actor: Actor::session(who),
            label: format!("user:{}", user.username),
            fhir_ref: user.fhir_ref.clone(),
            user_id: Some(user.id.clone()),
        })
    }

    /// A user's rights, from their roles and the record (care teams, grants).
    pub async fn who(&self, user: &UserRow, now: OffsetDateTime) -> Result<Who, AppError> {
        let roles: Vec<Role> = user
            .roles
            .split_whitespace()
            .filter_map(Role::parse)
            .collect();
        let reference = user.fhir_ref.as_deref().and_then(split_reference);
        if let Some(role) = roles.iter().find(|r| r.is_team())
            && let Some((ty, id)) = reference
        {
            let break_glass = self
                .store
                .active_break_glass(&user.id, unix_millis(now))
                .await?
                .into_iter()
                .map(|b| BreakGlass {
                    patient: b.patient_id,
                    until: from_unix_millis(b.until),
                })
                .collect();
            return Ok(Who::TeamMember {
                role: *role,
                panel: self.panel(ty, id).await?,
                break_glass,
            });
        }
        if roles.contains(&Role::Patient)
            && let Some(("Patient", id)) = reference
        {
            return Ok(Who::Patient {
                patient: id.to_string(),
            });
        }
        if roles.contains(&Role::Family)
            && let Some(("RelatedPerson", id)) = reference
        {
            return Ok(Who::Family {
                grants: self.grants(id, now).await?,
            });
        }
        if roles.contains(&Role::Partner)
            && let Some(("Organization", id)) = reference
        {
            return Ok(Who::Partner {
                organization: id.to_string(),
            });
        }
        if roles.contains(&Role::QualityAnalyst) {
            return Ok(Who::Analyst);
        }
        if roles.contains(&Role::Admin) {
            return Ok(Who::Admin);
        }
        Ok(Who::Anonymous)
    }

    /// Break-glass: a care-team member opens the chart of a patient outside their teams,
    /// giving a reason, for `for_how_long` (one hour by default). Audited, and shown to the
    /// patient in their access log. Returns when it ends.
    pub async fn break_glass(
        &self,
        caller: &Caller,
        patient: &str,
        reason: &str,
        for_how_long: Option<time::Duration>,
    ) -> Result<OffsetDateTime, AppError> {
        let now = self.clock.now();
        let patient_id = split_reference(patient)
            .filter(|(t, _)| *t == "Patient")
            .map(|(_, id)| id.to_string())
            .ok_or_else(|| invalid(format!("'{patient}' is not Patient/ID")))?;
        let refuse = |why: &str| AuditEntry {
            at: unix_millis(now),
            actor: caller.label.clone(),
            action: "break-glass".into(),
            resource_type: Some("Patient".into()),
            resource_id: Some(patient_id.clone()),
            patients: Some(patient_id.clone()),
            outcome: "denied".into(),
            detail: Some(why.to_string()),
            ..AuditEntry::default()
        };
        let until = match break_glass_until(&caller.actor, reason, for_how_long, now) {
            Ok(until) => until,
            Err(refusal) => {
                let (why, err) = match refusal {
                    BreakGlassRefusal::NotAllowed(why) => (why.clone(), AppError::Forbidden(why)),
                    BreakGlassRefusal::Unacceptable(why) => (why.clone(), invalid(why)),
                };
                self.store.audit(&refuse(&why)).await?;
                return Err(err);
            }
        };
        let Some(user_id) = caller.user_id.clone() else {
            return Err(AppError::Forbidden(
                "break-glass needs a person's account".into(),
            ));
        };
        if self
            .store
            .current("Patient", &patient_id)
            .await?
            .is_none_or(|p| p.deleted)
        {
            return Err(AppError::NotFound(format!("Patient/{patient_id}")));
        }
        let mut tx = self.store.begin().await?;
        tx.insert_break_glass(&coproduce_store::BreakGlassRow {
            id: uuid::Uuid::new_v4().to_string(),
            user_id,
            patient_id: patient_id.clone(),
            reason: reason.trim().to_string(),
            started_at: unix_millis(now),
            until: unix_millis(until),
        })
        .await?;
        tx.audit(&AuditEntry {
            outcome: "allowed".into(),
            detail: Some(format!(
                "until {}: {}",
                coproduce_store::format_instant(unix_millis(until)),
                reason.trim()
            )),
            ..refuse("")
        })
        .await?;
        tx.commit().await?;
        Ok(until)
    }

    /// The patients of the active care teams a practitioner is on.
    async fn panel(&self, ty: &str, id: &str) -> Result<BTreeSet<String>, AppError> {
        let q = SearchQuery {
            filters: vec![Filter::Reference {
                param: "participant".into(),
                values: vec![(Some(ty.to_string()), id.to_string())],
            }],
            // Every one: a panel or a family is not a page of search results.
            count: coproduce_fhir::query::EVERY_MATCH,
            ..SearchQuery::all("CareTeam")
        };
        let found = self.store.search(&q).await?;
        let mut panel = BTreeSet::new();
        for team in &found.matches {
            let v = team.json()?;
            if v["status"].as_str().is_some_and(|s| s != "active") {
                continue;
            }
            if let Some(("Patient", p)) =
                v["subject"]["reference"].as_str().and_then(split_reference)
            {
                panel.insert(p.to_string());
            }
        }
        Ok(panel)
    }

    /// A family member's grants: Consent resources naming them as the actor.
    pub async fn grants(
        &self,
        related_person: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Grant>, AppError> {
        let q = SearchQuery {
            filters: vec![Filter::Reference {
                param: "actor".into(),
                values: vec![(Some("RelatedPerson".into()), related_person.to_string())],
            }],
            // Every one: a panel or a family is not a page of search results.
            count: coproduce_fhir::query::EVERY_MATCH,
            ..SearchQuery::all("Consent")
        };
        let found = self.store.search(&q).await?;
        let mut grants = Vec::new();
        for consent in &found.matches {
            grants.extend(grant_of(&consent.json()?, now));
        }
        Ok(grants)
    }
}
