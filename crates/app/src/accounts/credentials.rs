//! Credentials: password hashing (argon2id) and the dummy hash an unknown user name is
//! checked against, token and session-id hashing, TOTP codes and their time steps, and
//! random passwords and secrets.

use crate::error::AppError;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use coproduce_fhir::{IssueCode, OperationOutcome};
use sha2::{Digest, Sha256};

/// argon2id with 19 MiB of memory, two passes, one lane (OWASP's minimum).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password that passes [`password_problem`](coproduce_core::access::session::password_problem) for this user.
pub fn hash_password(username: &str, password: &str) -> Result<String, AppError> {
    if let Some(why) = coproduce_core::access::session::password_problem(username, password) {
        return Err(invalid(why));
    }
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| invalid(format!("could not hash the password: {e}")))
}

/// A hash no password matches, made once: what an unknown user name is checked against.
pub(super) fn dummy_hash() -> &'static str {
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

pub(super) fn invalid(msg: impl Into<String>) -> AppError {
    AppError::Invalid(OperationOutcome::message(IssueCode::Value, msg))
}

/// A session row as stored: under the hash of its id.
pub(super) fn stored_session(s: &coproduce_store::SessionRow) -> coproduce_store::SessionRow {
    coproduce_store::SessionRow {
        id: token_hash(&s.id),
        ..s.clone()
    }
}

pub(super) fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(super) fn random_secret() -> Result<String, AppError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("ana", "correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(hash_password("ana", "short").is_err());
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
}
