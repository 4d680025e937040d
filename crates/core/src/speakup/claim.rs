//! Claim codes, which let an anonymous reporter follow their concern, and the limits that
//! keep anyone from guessing one or flooding a unit's open form.

use time::Duration;

/// The alphabet of claim codes: Crockford's base 32 (no I, L, O, U, so nothing is misread).
const CLAIM_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// How many random bytes a claim code is made from: 15 bytes, 120 bits, 24 characters.
pub const CLAIM_BYTES: usize = 15;

/// A claim code from random bytes, in four groups for reading aloud
/// (`7K3M9Q-XD4T2B-…`).
pub fn claim_code(random: &[u8; CLAIM_BYTES]) -> String {
    let mut out = String::with_capacity(29);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in random {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            if !out.is_empty() && out.len() % 7 == 6 {
                out.push('-');
            }
            out.push(CLAIM_ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    out
}

/// A claim code as typed ("7k3m 9qxd…", "o" for zero, "i" or "l" for one) in its written
/// form, or None when it cannot be one.
pub fn parse_claim_code(typed: &str) -> Option<String> {
    let mut chars = Vec::new();
    for c in typed.chars().filter(|c| !c.is_whitespace() && *c != '-') {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c if CLAIM_ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
            _ => return None,
        };
        chars.push(c);
    }
    if chars.len() != CLAIM_BYTES * 8 / 5 {
        return None;
    }
    let mut out = String::with_capacity(29);
    for (i, c) in chars.into_iter().enumerate() {
        if i > 0 && i % 6 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    Some(out)
}

/// How much one address may try within a window: wrong claim codes (guessing) and concerns
/// raised from a device without signing in (flooding a unit's form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub window: Duration,
    /// Wrong claim codes from one address within the window after which it must wait.
    pub wrong_claims: i64,
    /// Concerns raised without signing in from one address within the window.
    pub raised_unsigned: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            window: Duration::hours(1),
            wrong_claims: 20,
            raised_unsigned: 20,
        }
    }
}

impl Limits {
    /// May this address try another claim code, after `wrong` wrong ones in the window?
    pub fn allows_claim(&self, wrong: i64) -> bool {
        wrong < self.wrong_claims
    }

    /// May this address raise another concern without signing in, after `raised`?
    pub fn allows_unsigned_raise(&self, raised: i64) -> bool {
        raised < self.raised_unsigned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_codes_carry_120_bits_and_read_back_however_typed() {
        let a = claim_code(&[0u8; CLAIM_BYTES]);
        assert_eq!(a, "000000-000000-000000-000000");
        let b = claim_code(&[0xff; CLAIM_BYTES]);
        assert_eq!(b, "ZZZZZZ-ZZZZZZ-ZZZZZZ-ZZZZZZ");
        let mut bytes = [0u8; CLAIM_BYTES];
        bytes
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i * 37 + 11) as u8);
        let code = claim_code(&bytes);
        assert_eq!(code.len(), 27);
        assert_eq!(parse_claim_code(&code).as_deref(), Some(code.as_str()));
        let typed = code.replace('-', " ").to_lowercase().replace('0', "o");
        assert_eq!(parse_claim_code(&typed).as_deref(), Some(code.as_str()));
        assert_eq!(parse_claim_code("ABC"), None, "too short");
        assert_eq!(parse_claim_code(&format!("{code}U")), None);
        // Two different byte strings give two different codes.
        bytes[0] ^= 1;
        assert_ne!(claim_code(&bytes), code);
    }

    #[test]
    fn one_address_is_held_back_after_twenty_wrong_codes_in_an_hour() {
        let limits = Limits::default();
        assert!(limits.allows_claim(19));
        assert!(!limits.allows_claim(20));
        assert!(limits.allows_unsigned_raise(0));
        assert!(!limits.allows_unsigned_raise(20));
    }
}
