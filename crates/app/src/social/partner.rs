//! A community organisation's side of its referrals: through its partner account it sees the
//! referrals addressed to it (the policy finds them, by `Task.owner`) with what each carries
//! for it (the patient's name, how to reach them, their language, the need: never the chart),
//! and says where each stands: accepted, started, completed or declined with the reason.

use super::referrals::{ENDING, REFERRAL_INPUT, instant};
use super::*;
use coproduce_core::social::referral::{self, Ending, Side, Status};

/// A referral as its organisation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub task: String,
    pub version: i64,
    /// The patient's name as the referral gives it.
    pub name: String,
    /// How to reach the patient (phone, email), as the referral gives it.
    pub contact: Option<String>,
    /// The patient's language (a BCP-47 code).
    pub language: Option<String>,
    pub need: Option<Domain>,
    /// The service asked for.
    pub service: String,
    /// What the referrer wrote for the organisation.
    pub note: Option<String>,
    pub status: Status,
    pub ending: Option<Ending>,
    pub authored: Option<OffsetDateTime>,
}

impl Addressed {
    fn of(stored: &Stored) -> Option<Addressed> {
        let v = stored.json().ok()?;
        let input = |code: &str| {
            v["input"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| {
                    i["type"]["coding"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["system"] == REFERRAL_INPUT && c["code"] == code)
                })
                .cloned()
        };
        Some(Addressed {
            task: stored.id.clone(),
            version: stored.version_id,
            name: v["for"]["display"].as_str().unwrap_or_default().to_string(),
            contact: input("contact").and_then(|i| i["valueString"].as_str().map(str::to_string)),
            language: input("language").and_then(|i| i["valueCode"].as_str().map(str::to_string)),
            need: input("need").and_then(|i| need_of(&i["valueCodeableConcept"])),
            service: v["description"].as_str().unwrap_or_default().to_string(),
            note: v["note"][0]["text"].as_str().map(str::to_string),
            status: Status::parse(v["status"].as_str().unwrap_or_default())?,
            ending: v["statusReason"]["coding"][0]["code"]
                .as_str()
                .and_then(Ending::parse),
            authored: instant(&v["authoredOn"]),
        })
    }

    /// The statuses the organisation may move it to next.
    pub fn moves(&self) -> Vec<Status> {
        referral::next(self.status)
            .iter()
            .copied()
            .filter(|to| {
                referral::advance(self.status, *to, Side::Target, None).is_ok() || {
                    // An ending is allowed with its reason.
                    referral::advance(self.status, *to, Side::Target, Some(Ending::Other)).is_ok()
                }
            })
            .collect()
    }
}

impl Social {
    /// The referrals addressed to the caller's organisation, open ones first, newest first
    /// within each (the policy limits the search to them, and audits it).
    pub async fn addressed(&self, caller: &Caller) -> Result<Vec<Addressed>> {
        let found = self
            .api
            .search_all(
                caller,
                "Task",
                &[
                    ("code".into(), "fulfill".into()),
                    ("_sort".into(), "-authored-on".into()),
                ],
            )
            .await?;
        let mut all: Vec<Addressed> = found.iter().filter_map(Addressed::of).collect();
        all.sort_by_key(|a| a.status.is_final());
        Ok(all)
    }

    /// The organisation says where a referral stands (with the reason when it ends it), as
    /// `core` allows its side; `version` is the one the person saw (a change since is refused
    /// rather than overwritten).
    pub async fn move_referral(
        &self,
        caller: &Caller,
        task: &str,
        version: i64,
        to: Status,
        reason: Option<Ending>,
    ) -> Result<()> {
        let stored = self.api.read(caller, "Task", task).await?;
        let mut v = stored.json()?;
        let from = Status::parse(v["status"].as_str().unwrap_or_default())
            .ok_or_else(|| AppError::NotFound(format!("Task/{task}")))?;
        let to = referral::advance(from, to, Side::Target, reason)
            .map_err(|e| CareError::input(e.key, e.english))?;
        v["status"] = json!(to.as_str());
        match reason {
            Some(r) => {
                v["statusReason"] = json!({"coding": [{"system": ENDING, "code": r.as_str()}]})
            }
            None => {
                if let Some(o) = v.as_object_mut() {
                    o.remove("statusReason");
                }
            }
        }
        let body = serde_json::to_vec(&v).map_err(|e| AppError::Internal(e.to_string()))?;
        self.api
            .update(caller, "Task", task, &body, Some(version))
            .await?;
        Ok(())
    }
}
