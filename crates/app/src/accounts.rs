//! Accounts, API tokens, and who a request is: from a bearer token to an [`Caller`] whose
//! rights come from the policy in `core` (care-team membership and family grants are read
//! from the FHIR record itself: CareTeam and Consent).

use crate::error::AppError;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use coproduce_core::access::{
    Actor, BreakGlass, BreakGlassRefusal, Grant, Part, Role, Scope, Who, break_glass_until,
    check_token_request, parse_scopes,
};
use coproduce_core::{Clock, from_unix_millis, unix_millis};
use coproduce_fhir::query::{Filter, SearchQuery};
use coproduce_fhir::search::split_reference;
use coproduce_fhir::{IssueCode, OperationOutcome};
use coproduce_store::{AuditEntry, Store, TokenRow, UserRow};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;
use time::OffsetDateTime;

/// The code system of the parts a family grant covers (Consent.provision.code).
pub const GRANT_PART_SYSTEM: &str = "urn:coproduce:grant-part";

/// Who is calling, for the policy and for the audit trail.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    /// How the audit trail names them: `user:NAME`, `token:NAME`, `anonymous`.
    pub label: String,
    /// The FHIR resource that is them (Patient/.., RelatedPerson/.., Practitioner/..).
    pub fhir_ref: Option<String>,
    /// Their account, when a person is behind the call.
    pub user_id: Option<String>,
}

impl Caller {
    /// Full access with no person behind it: the CLI's own import and export.
    pub fn system(label: &str) -> Self {
        Caller {
            actor: Actor::session(Who::System),
            label: label.to_string(),
            fhir_ref: None,
            user_id: None,
        }
    }

    pub fn anonymous() -> Self {
        Caller {
            actor: Actor::anonymous(),
            label: "anonymous".into(),
            fhir_ref: None,
            user_id: None,
        }
    }
}

/// argon2id with 19 MiB of memory, two passes, one lane (OWASP's minimum).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password may not be used, if it may not (ASVS 4.0.3 2.1.1 and 2.1.7): fewer than 12
/// characters, the user name in it, or easy to guess: a common or breached password, a
/// keyboard run, a repeat or sequence, scored by zxcvbn (its lists of 30,000 common
/// passwords, names and words) below 3, that is fewer than 10^8 guesses.
pub fn password_problem(username: &str, password: &str) -> Option<&'static str> {
    if password.chars().count() < 12 {
        return Some("a password needs at least 12 characters");
    }
    let name = username.trim().to_lowercase();
    if name.chars().count() >= 3 && password.to_lowercase().contains(&name) {
        return Some("a password must not contain the user name");
    }
    if zxcvbn::zxcvbn(password, &[username]).score() < zxcvbn::Score::Three {
        return Some(
            "this password is too easy to guess (a common password, a keyboard run or a repeat): a few unrelated words make a strong one",
        );
    }
    None
}

/// Hashes a password that passes [`password_problem`] for this user.
pub fn hash_password(username: &str, password: &str) -> Result<String, AppError> {
    if let Some(why) = password_problem(username, password) {
        return Err(invalid(why));
    }
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| invalid(format!("could not hash the password: {e}")))
}

/// A hash no password matches, made once: what an unknown user name is checked against.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hasher()
            .hash_password(uuid::Uuid::new_v4().as_bytes())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
}

fn invalid(msg: impl Into<String>) -> AppError {
    AppError::Invalid(OperationOutcome::message(IssueCode::Value, msg))
}

/// A session row as stored: under the hash of its id.
fn stored_session(s: &coproduce_store::SessionRow) -> coproduce_store::SessionRow {
    coproduce_store::SessionRow {
        id: token_hash(&s.id),
        ..s.clone()
    }
}

fn token_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_secret() -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    Ok(format!(
        "cp_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The TOTP of a base32 secret: SHA-1, 6 digits, 30-second steps (what authenticator apps use).
pub fn totp(secret_base32: &str, username: &str) -> Option<totp_rs::TOTP> {
    let bytes = totp_rs::Secret::Encoded(secret_base32.to_string())
        .to_bytes()
        .ok()?;
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        Some("coproduce".into()),
        username.to_string(),
    )
    .ok()
}

/// The time step (Unix seconds / 30) whose code `code` is, within one step of `now`'s.
pub fn totp_step(secret_base32: &str, username: &str, code: &str, now: i64) -> Option<i64> {
    let mut t = totp(secret_base32, username)?;
    t.skew = 0;
    let here = now / 30;
    [here - 1, here, here + 1]
        .into_iter()
        .filter(|s| *s >= 0)
        .find(|s| t.check(code, (*s as u64) * 30))
}

/// A random password for demo and reset use: 16 letters and digits.
pub fn random_password() -> Result<String, AppError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

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

    /// A user's TOTP seed in clear: opened with the site's key, or as kept before seeds were
    /// sealed. None if it cannot be opened (no key, another key): no code then matches.
    fn totp_seed(&self, username: &str, stored: &str) -> Option<String> {
        if crate::secrets::is_sealed(stored) {
            self.key.as_ref()?.open(stored, username)
        } else {
            Some(stored.to_string())
        }
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

    /// Sets a new password (an administrator's reset) and ends all of the user's sessions.
    pub async fn reset_password(&self, username: &str, password: &str) -> Result<(), AppError> {
        let hash = hash_password(username, password)?;
        let user = self
            .store
            .user_by_name(username)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("the user {username}")))?;
        self.store.set_password_hash(username, &hash).await?;
        self.store.end_user_sessions(&user.id, None).await?;
        Ok(())
    }

    /// The language a user chose for the app, if any.
    pub async fn language(&self, user: &UserRow) -> Result<Option<String>, AppError> {
        Ok(self.store.user_language(&user.id).await?)
    }

    pub async fn set_language(&self, user: &UserRow, language: &str) -> Result<(), AppError> {
        Ok(self.store.set_user_language(&user.id, language).await?)
    }

    /// Signs a person in with their password, within the throttling limits. Every attempt is
    /// recorded and audited; a wrong user name, a wrong password and a disabled account all
    /// get the same answer.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
        address: &str,
    ) -> Result<UserRow, SignInRefused> {
        let now = self.clock.now();
        // No user name or password holds a control character (and PostgreSQL cannot even
        // look up a text with U+0000): refused as a wrong sign-in, audited with the name
        // made printable, before anything is looked up.
        if username
            .chars()
            .chain(password.chars())
            .any(char::is_control)
        {
            let printable: String = username
                .chars()
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect();
            self.store
                .audit(&AuditEntry {
                    at: unix_millis(now),
                    actor: format!("user:{printable}"),
                    action: "login-failed".into(),
                    outcome: "denied".into(),
                    detail: Some(format!(
                        "a control character in the sign-in form (from {})",
                        address.replace(char::is_control, "\u{fffd}")
                    )),
                    ..AuditEntry::default()
                })
                .await
                .map_err(SignInRefused::storage)?;
            return Err(SignInRefused::WrongCredentials);
        }
        let limits = coproduce_core::session::LoginLimits::default();
        let history = self
            .store
            .login_history(
                username,
                address,
                unix_millis(now - limits.window),
                unix_millis(now - limits.known_for),
            )
            .await
            .map_err(SignInRefused::storage)?;
        let audit = |outcome: &str, detail: &str| AuditEntry {
            at: unix_millis(now),
            actor: format!("user:{username}"),
            action: if outcome == "allowed" {
                "login".into()
            } else {
                "login-failed".into()
            },
            outcome: outcome.into(),
            detail: Some(format!("{detail} (from {address})")),
            ..AuditEntry::default()
        };
        if !limits.allows(&history) {
            self.store
                .record_login_attempt(unix_millis(now), username, address, false)
                .await
                .map_err(SignInRefused::storage)?;
            self.store
                .audit(&audit("denied", "too many failed attempts"))
                .await
                .map_err(SignInRefused::storage)?;
            return Err(SignInRefused::Throttled);
        }
        let user = self
            .store
            .user_by_name(username)
            .await
            .map_err(SignInRefused::storage)?;
        // The password is hashed whether or not the account exists, so that an unknown user
        // name takes as long to refuse as a wrong password.
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.as_deref())
            .unwrap_or(dummy_hash());
        let hash_ok = verify_password(password, hash);
        let password_ok = hash_ok
            && user
                .as_ref()
                .is_some_and(|u| !u.disabled && u.password_hash.is_some());
        // With a second factor set up, the code must match too (one step of drift either way).
        let second_ok = match self
            .store
            .totp_secret(username)
            .await
            .map_err(SignInRefused::storage)?
        {
            None => true,
            Some(stored) => {
                let secret = self.totp_seed(username, &stored).unwrap_or_default();
                // The code's time step (one step of drift either way), then claimed, so a
                // code seen over someone's shoulder or replayed is refused the second time.
                let step = code.and_then(|c| {
                    totp_step(&secret, username, c.trim(), now.unix_timestamp().max(0))
                });
                match step {
                    Some(step) if password_ok => self
                        .store
                        .claim_totp_step(username, step)
                        .await
                        .map_err(SignInRefused::storage)?,
                    _ => false,
                }
            }
        };
        let ok = password_ok && second_ok;
        self.store
            .record_login_attempt(unix_millis(now), username, address, ok)
            .await
            .map_err(SignInRefused::storage)?;
        match (ok, user) {
            (true, Some(u)) => {
                self.store
                    .audit(&audit("allowed", "signed in"))
                    .await
                    .map_err(SignInRefused::storage)?;
                Ok(u)
            }
            _ => {
                self.store
                    .audit(&audit("denied", "wrong user name or password"))
                    .await
                    .map_err(SignInRefused::storage)?;
                Err(SignInRefused::WrongCredentials)
            }
        }
    }

    /// Sets up a TOTP second factor for a user; returns the `otpauth://` URL to show in an
    /// authenticator app (it carries the secret, so show it only to the user).
    pub async fn enable_totp(&self, username: &str) -> Result<String, AppError> {
        let mut bytes = [0u8; 20];
        getrandom::fill(&mut bytes)
            .map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
        let secret = match totp_rs::Secret::Raw(bytes.to_vec()).to_encoded() {
            totp_rs::Secret::Encoded(s) => s,
            totp_rs::Secret::Raw(_) => {
                return Err(AppError::Internal(
                    "could not encode the TOTP secret".into(),
                ));
            }
        };
        let url = totp(&secret, username)
            .ok_or_else(|| AppError::Internal("could not make the TOTP".into()))?
            .get_url();
        let Some(key) = &self.key else {
            return Err(invalid(
                "set the site's secret key first (secret_key in coproduce.toml or COPRODUCE_SECRET_KEY; `coproduce secret-key` makes one): second-factor seeds are stored sealed with it",
            ));
        };
        let sealed = key.seal(&secret, username)?;
        if !self.store.set_totp_secret(username, Some(&sealed)).await? {
            return Err(AppError::NotFound(format!("the user {username}")));
        }
        Ok(url)
    }

    pub async fn disable_totp(&self, username: &str) -> Result<(), AppError> {
        if self.store.set_totp_secret(username, None).await? {
            Ok(())
        } else {
            Err(AppError::NotFound(format!("the user {username}")))
        }
    }

    /// Records a sign-out.
    pub async fn signed_out(&self, user: &UserRow) -> Result<(), AppError> {
        self.store
            .audit(&AuditEntry {
                at: unix_millis(self.clock.now()),
                actor: format!("user:{}", user.username),
                action: "logout".into(),
                outcome: "allowed".into(),
                ..AuditEntry::default()
            })
            .await?;
        Ok(())
    }

    /// Changes a signed-in person's password (they give the current one) and ends their
    /// other sessions.
    pub async fn change_password(
        &self,
        user: &UserRow,
        current: &str,
        new: &str,
        this_session: &str,
    ) -> Result<u64, AppError> {
        if !user
            .password_hash
            .as_deref()
            .is_some_and(|h| verify_password(current, h))
        {
            return Err(invalid("the current password is not right"));
        }
        let hash = hash_password(&user.username, new)?;
        self.store.set_password_hash(&user.username, &hash).await?;
        let ended = self
            .store
            .end_user_sessions(&user.id, Some(&token_hash(this_session)))
            .await?;
        self.store
            .audit(&AuditEntry {
                at: unix_millis(self.clock.now()),
                actor: format!("user:{}", user.username),
                action: "password-change".into(),
                outcome: "allowed".into(),
                detail: Some(format!("{ended} other sessions ended")),
                ..AuditEntry::default()
            })
            .await?;
        Ok(ended)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, AppError> {
        Ok(self.store.user_by_id(id).await?)
    }

    // Sessions are stored under the SHA-256 of their id: the cookie's value never sits in
    // the database, so a copy of the sessions table signs nobody in.

    pub async fn save_session(&self, s: &coproduce_store::SessionRow) -> Result<(), AppError> {
        Ok(self.store.save_session(&stored_session(s)).await?)
    }

    pub async fn create_session(&self, s: &coproduce_store::SessionRow) -> Result<bool, AppError> {
        Ok(self.store.create_session(&stored_session(s)).await?)
    }

    pub async fn load_session(
        &self,
        id: &str,
    ) -> Result<Option<coproduce_store::SessionRow>, AppError> {
        Ok(self.store.load_session(&token_hash(id)).await?)
    }

    pub async fn delete_session(&self, id: &str) -> Result<(), AppError> {
        Ok(self.store.delete_session(&token_hash(id)).await?)
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
        check_token_request(user.is_some(), &scopes, t.patient.is_some()).map_err(invalid)?;
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
            count: usize::MAX >> 1,
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
            count: usize::MAX >> 1,
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

/// Reads a Consent as a family grant: the patient, the parts (provision.code in
/// [`GRANT_PART_SYSTEM`]), the end (provision.period.end), and whether it is still active.
pub fn grant_of(consent: &Value, _now: OffsetDateTime) -> Option<Grant> {
    let patient = consent["patient"]["reference"]
        .as_str()
        .and_then(split_reference)?;
    if patient.0 != "Patient" {
        return None;
    }
    let provision = &consent["provision"];
    let parts: BTreeSet<Part> = provision["code"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|cc| cc["coding"].as_array().into_iter().flatten())
        .filter(|c| c["system"] == GRANT_PART_SYSTEM)
        .filter_map(|c| c["code"].as_str().and_then(Part::parse))
        .collect();
    let until = provision["period"]["end"]
        .as_str()
        .and_then(coproduce_fhir::primitives::date_range_millis)
        .map(|(_, hi)| from_unix_millis(hi + 1));
    Some(Grant {
        patient: patient.1.to_string(),
        parts,
        until,
        revoked: consent["status"].as_str() != Some("active")
            || provision["type"].as_str() == Some("deny"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("ana", "correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(hash_password("ana", "short").is_err());
    }

    #[test]
    fn common_passwords_and_the_user_name_are_refused() {
        for weak in [
            "password1234",
            "Password123!",
            "passwordpassword",
            "qwertyuiop123",
            "123456789012",
            "iloveyou1234",
            "trustno1trustno1",
        ] {
            assert!(password_problem("ana", weak).is_some(), "{weak}");
        }
        assert_eq!(
            password_problem("dr.okafor", "Dr.Okafor plays the oboe"),
            Some("a password must not contain the user name")
        );
        for strong in [
            "correct horse battery",
            "a long enough password",
            "Tr0ub4dor&3xyz",
        ] {
            assert_eq!(password_problem("ana", strong), None, "{strong}");
        }
    }

    #[test]
    fn an_unknown_user_is_checked_against_a_hash_of_the_same_cost() {
        // What sign_in verifies an unknown user name's password against: argon2id with the
        // same parameters as every real hash, so both take the same time; and nothing matches.
        let dummy = dummy_hash();
        assert!(
            dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{dummy}"
        );
        assert!(!verify_password("", dummy));
        assert!(!verify_password("a long enough password", dummy));
    }

    #[test]
    fn a_consent_reads_as_a_grant() {
        let c = json!({"resourceType": "Consent", "status": "active", "patient": {"reference": "Patient/a"},
            "provision": {"type": "permit", "period": {"end": "2026-12-31"},
                "actor": [{"role": {"text": "proxy"}, "reference": {"reference": "RelatedPerson/f"}}],
                "code": [{"coding": [{"system": GRANT_PART_SYSTEM, "code": "readings"}]}]}});
        let now = time::macros::datetime!(2026-11-27 10:00 UTC);
        let g = grant_of(&c, now).unwrap();
        assert_eq!(g.patient, "a");
        assert_eq!(g.parts, [Part::Readings].into());
        assert!(g.is_active(now));
        assert!(!g.is_active(time::macros::datetime!(2027-01-01 0:00 UTC)));
        let mut revoked = c.clone();
        revoked["status"] = json!("inactive");
        assert!(!grant_of(&revoked, now).unwrap().is_active(now));
    }
}
