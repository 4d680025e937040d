//! The site's secret key (from configuration or the environment, never the database), and
//! sealing small secrets with it: XChaCha20-Poly1305, a random nonce per seal, and the
//! owner's name bound in as associated data, so a sealed value copied to another row does not
//! open.

use crate::error::AppError;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// What a sealed value starts with (its format's version).
const SEALED: &str = "xc1:";

/// A 32-byte key. Never printed.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// Reads a key given as base64 of 32 random bytes (`head -c 32 /dev/urandom | base64`).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| "the secret key is not base64".to_string())?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "the secret key is {} bytes; it must be 32 (head -c 32 /dev/urandom | base64)",
                b.len()
            )
        })?;
        Ok(SecretKey(key))
    }

    /// A new random key.
    pub fn random() -> Result<Self, AppError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
        Ok(SecretKey(key))
    }

    /// The key as base64, for `coproduce secret-key`.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// A key for one purpose derived from this one (HMAC-SHA256 of the purpose), so that one
    /// configured secret serves several uses without their keys being the same.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{KeyInit as _, Mac};
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// Seals `plain` for `owner`.
    pub fn seal(&self, plain: &str, owner: &str) -> Result<String, AppError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce)
            .map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| AppError::Internal("could not seal a secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(format!(
            "{SEALED}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// Opens what [`SecretKey::seal`] sealed for `owner`; None if it was not sealed with this
    /// key for this owner (or was changed).
    pub fn open(&self, sealed: &str, owner: &str) -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed.strip_prefix(SEALED)?)
            .ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ct) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let plain = self
            .cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: owner.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Is this stored value sealed (else it is a value kept in clear before sealing existed)?
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_owner() {
        let key = SecretKey::random().unwrap();
        let sealed = key.seal("JBSWY3DPEHPK3PXP", "sam").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            key.open(&sealed, "sam").as_deref(),
            Some("JBSWY3DPEHPK3PXP")
        );
        assert_eq!(key.open(&sealed, "ana"), None, "another user's row");
        assert_eq!(SecretKey::random().unwrap().open(&sealed, "sam"), None);
        let mut changed = sealed.clone();
        changed.pop();
        changed.push('A');
        assert_eq!(key.open(&changed, "sam"), None);
        assert_ne!(
            key.seal("JBSWY3DPEHPK3PXP", "sam").unwrap(),
            sealed,
            "a new nonce each time"
        );
        let again = SecretKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(
            again.open(&sealed, "sam").as_deref(),
            Some("JBSWY3DPEHPK3PXP")
        );
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
    }
}
