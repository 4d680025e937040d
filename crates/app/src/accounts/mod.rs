//! Accounts, API tokens, and who a request is: from a bearer token to an [`Caller`] whose
//! rights come from the policy in `core` (care-team membership and family grants are read
//! from the FHIR record itself: CareTeam and Consent).

use crate::error::AppError;
use coproduce_core::access::{
    Actor, Role, Scope, TokenHolder, Who, check_token_request, parse_scopes,
};
use coproduce_core::{Clock, unix_millis};
use coproduce_fhir::search::split_reference;
use coproduce_store::{Store, TokenRow, UserRow};
use std::sync::Arc;
use time::OffsetDateTime;

pub use crate::vocabulary::GRANT_PART_SYSTEM;

pub use crate::caller::Caller;

/// What an administrator changes from their page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminChange {
    Disable(String),
    Enable(String),
    RevokeToken(String),
}

mod credentials;
mod rights;
mod sign_in;

pub use crate::vocabulary::grant_of;
pub use credentials::{hash_password, random_password, totp, totp_step, verify_password};
use credentials::{invalid, random_secret, token_hash};

/// Why a bearer token does not give a caller.
#[derive(Debug)]
pub enum TokenRefused {
    /// Unknown, revoked, expired, or its user disabled or gone: the caller is not signed in.
    NotValid(String),
    /// The server failed while checking it.
    Failed(AppError),
}

/// Why a sign-in did not happen.
#[derive(Debug)]
pub enum SignInRefused {
    /// A wrong user name or password, or a disabled account: one answer for all three.
    WrongCredentials,
    /// Too many failed attempts for this account or from this address in the last hour.
    Throttled,
    Storage(AppError),
}

impl SignInRefused {
    fn storage(e: coproduce_store::StoreError) -> Self {
        SignInRefused::Storage(e.into())
    }
}

/// A new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub roles: Vec<Role>,
    pub fhir_ref: Option<String>,
    pub password: Option<String>,
}

/// A token to issue: for a user (patient/ and user/ scopes) or for an integration (system/).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub username: Option<String>,
    pub name: String,
    pub scopes: String,
    pub patient: Option<String>,
    pub expires_in: Option<time::Duration>,
}

/// Accounts and tokens.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    clock: Arc<dyn Clock>,
    /// The site's secret key: second-factor seeds are stored sealed with it.
    key: Option<Arc<crate::secrets::SecretKey>>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Accounts")
    }
}

impl Accounts {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Accounts {
            store,
            clock,
            key: None,
        }
    }

    /// With the site's secret key, which seals second-factor seeds in the database.
    pub fn with_secret_key(mut self, key: Option<crate::secrets::SecretKey>) -> Self {
        self.key = key.map(Arc::new);
        self
    }

    pub async fn add_user(&self, u: NewUser) -> Result<UserRow, AppError> {
        if u.username.trim().is_empty() || u.username.chars().any(char::is_whitespace) {
            return Err(invalid("a user name is one word, without spaces"));
        }
        if u.roles.is_empty() {
            return Err(invalid("a user needs at least one role"));
        }
        let needs = |role: Role, prefix: &str| {
            u.roles.contains(&role) && !u.fhir_ref.as_deref().is_some_and(|r| r.starts_with(prefix))
        };
        if needs(Role::Patient, "Patient/") {
            return Err(invalid(
                "a patient account is linked to their record: give --patient Patient/ID",
            ));
        }
        if needs(Role::Family, "RelatedPerson/") {
            return Err(invalid(
                "a family account is linked to a RelatedPerson: give --related-person RelatedPerson/ID",
            ));
        }
        if needs(Role::Partner, "Organization/") {
            return Err(invalid(
                "a partner account works for a community organisation: give --organization Organization/ID",
            ));
        }
        if u.roles.iter().any(|r| r.is_team())
            && !u.fhir_ref.as_deref().is_some_and(|r| {
                r.starts_with("Practitioner/") || r.starts_with("PractitionerRole/")
            })
        {
            return Err(invalid(
                "a care-team account is linked to a Practitioner: give --practitioner Practitioner/ID",
            ));
        }
        if let Some(r) = &u.fhir_ref
            && split_reference(r).is_none()
        {
            return Err(invalid(format!(
                "'{r}' is not a reference such as Patient/123"
            )));
        }
        let password_hash = u
            .password
            .as_deref()
            .map(|p| hash_password(&u.username, p))
            .transpose()?;
        let row = UserRow {
            id: uuid::Uuid::new_v4().to_string(),
            username: u.username,
            password_hash,
            roles: u
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            fhir_ref: u.fhir_ref,
            disabled: false,
            created_at: unix_millis(self.clock.now()),
        };
        self.store.insert_user(&row).await?;
        Ok(row)
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, AppError> {
        Ok(self.store.users().await?)
    }

    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), AppError> {
        if self.store.set_user_disabled(username, disabled).await? {
            Ok(())
        } else {
            Err(AppError::NotFound(format!("the user {username}")))
        }
    }

    /// The time zone a user chose for the times they read and type, if any.
    pub async fn time_zone(&self, user: &UserRow) -> Result<Option<String>, AppError> {
        Ok(self.store.user_time_zone(&user.id).await?)
    }

    /// Sets the user's time zone (an IANA name such as `America/Los_Angeles`, or a fixed
    /// offset); an empty one goes back to the site's. A zone that is not known is refused
    /// and nothing changes.
    pub async fn set_time_zone(&self, user: &UserRow, zone: &str) -> Result<(), AppError> {
        let zone = zone.trim();
        if zone.is_empty() {
            return Ok(self.store.set_user_time_zone(&user.id, None).await?);
        }
        coproduce_core::calendar::BusinessCalendar::default()
            .in_zone(zone)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(self.store.set_user_time_zone(&user.id, Some(zone)).await?)
    }

    /// The language a user chose for the app, if any.
    pub async fn language(&self, user: &UserRow) -> Result<Option<String>, AppError> {
        Ok(self.store.user_language(&user.id).await?)
    }

    pub async fn set_language(&self, user: &UserRow, language: &str) -> Result<(), AppError> {
        Ok(self.store.set_user_language(&user.id, language).await?)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, AppError> {
        Ok(self.store.user_by_id(id).await?)
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Issues a token; returns its id and the secret (shown once, stored only hashed).
    pub async fn issue_token(&self, t: NewToken) -> Result<(String, String), AppError> {
        let scopes = parse_scopes(&t.scopes).map_err(invalid)?;
        let user = match &t.username {
            Some(name) => Some(
                self.store
                    .user_by_name(name)
                    .await?
                    .ok_or_else(|| AppError::NotFound(format!("the user {name}")))?,
            ),
            None => None,
        };
        let holder = match &user {
            None => TokenHolder::Integration,
            Some(u)
                if u.roles
                    .split_whitespace()
                    .any(|r| r == Role::Partner.as_str()) =>
            {
                TokenHolder::Organisation
            }
            Some(_) => TokenHolder::User,
        };
        check_token_request(holder, &scopes, t.patient.is_some()).map_err(invalid)?;
        let patient = match &t.patient {
            Some(p) => Some(
                split_reference(p)
                    .filter(|(ty, _)| *ty == "Patient")
                    .map(|(_, id)| id.to_string())
                    .ok_or_else(|| invalid(format!("'{p}' is not Patient/ID")))?,
            ),
            None => None,
        };
        let now = self.clock.now();
        let secret = random_secret()?;
        let id = uuid::Uuid::new_v4().to_string();
        self.store
            .insert_token(&TokenRow {
                id: id.clone(),
                token_hash: token_hash(&secret),
                user_id: user.map(|u| u.id),
                name: t.name,
                scopes: scopes
                    .iter()
                    .map(Scope::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                patient_id: patient,
                expires_at: t.expires_in.map(|d| unix_millis(now + d)),
                revoked_at: None,
                created_at: unix_millis(now),
            })
            .await?;
        Ok((id, secret))
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), AppError> {
        if self
            .store
            .revoke_token(id, unix_millis(self.clock.now()))
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound(format!("a live token with id {id}")))
        }
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>, AppError> {
        Ok(self.store.tokens().await?)
    }

    /// The accounts and tokens, for an administrator only (audited).
    pub async fn administered(
        &self,
        caller: &Caller,
    ) -> Result<(Vec<UserRow>, Vec<TokenRow>), AppError> {
        self.admin_only(caller, "read", None).await?;
        Ok((self.users().await?, self.tokens().await?))
    }

    /// An administrator's change to an account or a token: decided (administrators only; an
    /// administrator cannot lock themselves out) and audited. Disabling an account ends its
    /// sessions.
    pub async fn administer(&self, caller: &Caller, change: AdminChange) -> Result<(), AppError> {
        let detail = match &change {
            AdminChange::Disable(u) => format!("disabled the account {u}"),
            AdminChange::Enable(u) => format!("enabled the account {u}"),
            AdminChange::RevokeToken(id) => format!("revoked the token {id}"),
        };
        self.admin_only(caller, "update", Some(&detail)).await?;
        match change {
            AdminChange::Disable(username) => {
                let user = self
                    .store
                    .user_by_name(&username)
                    .await?
                    .ok_or_else(|| AppError::NotFound(format!("the user {username}")))?;
                if caller.user_id.as_deref() == Some(user.id.as_str()) {
                    return Err(AppError::Conflict(
                        "you cannot disable your own account".into(),
                    ));
                }
                self.set_disabled(&username, true).await?;
                self.store.end_user_sessions(&user.id, None).await?;
            }
            AdminChange::Enable(username) => self.set_disabled(&username, false).await?,
            AdminChange::RevokeToken(id) => self.revoke_token(&id).await?,
        }
        Ok(())
    }

    async fn admin_only(
        &self,
        caller: &Caller,
        action: &str,
        detail: Option<&str>,
    ) -> Result<(), AppError> {
        let allowed = matches!(caller.actor.who, coproduce_core::access::Who::Admin);
        self.store
            .audit(&coproduce_store::AuditEntry {
                at: unix_millis(self.clock.now()),
                actor: caller.label.clone(),
                action: action.into(),
                resource_type: Some("accounts".into()),
                outcome: if allowed { "allowed" } else { "denied" }.into(),
                detail: detail.map(str::to_string),
                ..coproduce_store::AuditEntry::default()
            })
            .await?;
        if allowed {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "accounts and tokens are managed by administrators".into(),
            ))
        }
    }

    /// The caller a bearer token stands for, or why it does not count.
    pub async fn caller_for_token(&self, secret: &str) -> Result<Caller, TokenRefused> {
        let now = self.clock.now();
        let refuse = |why: &str| TokenRefused::NotValid(why.to_string());
        let row = self
            .store
            .token_by_hash(&token_hash(secret))
            .await
            .map_err(|e| TokenRefused::Failed(e.into()))?
            .ok_or_else(|| refuse("the token is not known"))?;
        if row.revoked_at.is_some() {
            return Err(refuse("the token was revoked"));
        }
        if row.expires_at.is_some_and(|e| unix_millis(now) >= e) {
            return Err(refuse("the token has expired"));
        }
        let scopes = parse_scopes(&row.scopes).map_err(TokenRefused::NotValid)?;
        let Some(user_id) = &row.user_id else {
            return Ok(Caller {
                actor: Actor {
                    who: Who::System,
                    scopes: Some(scopes),
                    bound_patient: None,
                },
                label: format!("token:{}", row.name),
                fhir_ref: None,
                user_id: None,
            });
        };
        let user = self
            .store
            .user_by_id(user_id)
            .await
            .map_err(|e| TokenRefused::Failed(e.into()))?
            .ok_or_else(|| refuse("the token's user no longer exists"))?;
        if user.disabled {
            return Err(refuse("the user is disabled"));
        }
        // Loading care teams and grants can fail in the database: that is a server error.
        let who = self.who(&user, now).await.map_err(TokenRefused::Failed)?;
        Ok(Caller {
            actor: Actor {
                who,
                scopes: Some(scopes),
                bound_patient: row.patient_id,
            },
            label: format!("user:{}", user.username),
            fhir_ref: user.fhir_ref,
            user_id: Some(user.id),
        })
    }
}
