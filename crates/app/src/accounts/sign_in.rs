//! Signing in and out: passwords within the throttle, the one-time TOTP code and its sealed
//! seed, password changes and resets, and the session rows (stored under a hash of their id).

use super::credentials::{
    dummy_hash, hash_password, invalid, stored_session, token_hash, totp, totp_step,
    verify_password,
};
use super::{Accounts, SignInRefused};
use crate::error::AppError;
use coproduce_core::unix_millis;
use coproduce_store::{AuditEntry, UserRow};

impl Accounts {
    /// A user's TOTP seed in clear: opened with the site's key, or as kept before seeds were
    /// sealed. None if it cannot be opened (no key, another key): no code then matches.
    fn totp_seed(&self, username: &str, stored: &str) -> Option<String> {
        if crate::secrets::is_sealed(stored) {
            self.key.as_ref()?.open(stored, username)
        } else {
            Some(stored.to_string())
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
        let limits = coproduce_core::access::session::LoginLimits::default();
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
}
