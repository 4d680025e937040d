//! Sign-in rules: how long a session lasts, and when sign-in attempts are throttled.

use time::{Duration, OffsetDateTime};

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRules {
    /// Ends after this long without a request.
    pub idle: Duration,
    /// Ends this long after sign-in, however active.
    pub absolute: Duration,
}

impl Default for SessionRules {
    fn default() -> Self {
        SessionRules {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Live,
    IdleTooLong,
    TooOld,
}

impl SessionRules {
    pub fn state(
        &self,
        signed_in: OffsetDateTime,
        last_seen: OffsetDateTime,
        now: OffsetDateTime,
    ) -> SessionState {
        if now - signed_in >= self.absolute {
            SessionState::TooOld
        } else if now - last_seen >= self.idle {
            SessionState::IdleTooLong
        } else {
            SessionState::Live
        }
    }
}

/// Sign-in throttling: failed attempts counted over a sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub window: Duration,
    /// Failed attempts on one account from one address within the window after which that
    /// address may not try that account again until the window has passed.
    pub per_account_and_address: i64,
    /// Failed attempts from one address within the window after which it is refused.
    pub per_address: i64,
    /// Failed attempts on one account (from anywhere) within the window after which the
    /// account is signed in to only from an address it was signed in from before: someone
    /// guessing from many addresses does not lock the person out of their own password.
    pub per_account: i64,
    /// How far back a successful sign-in makes an address known.
    pub known_for: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            window: Duration::hours(1),
            per_account_and_address: 10,
            per_address: 300,
            per_account: 100,
            known_for: Duration::days(30),
        }
    }
}

/// The recent sign-in attempts that bear on one more (counts within the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginHistory {
    pub failed_for_account: i64,
    pub failed_from_address: i64,
    pub failed_for_account_from_address: i64,
    /// The account was signed in to from this address before (within `known_for`).
    pub known_address: bool,
}

impl LoginLimits {
    /// May another attempt be made, given the recent history?
    pub fn allows(&self, h: &LoginHistory) -> bool {
        h.failed_from_address < self.per_address
            && h.failed_for_account_from_address < self.per_account_and_address
            && (h.failed_for_account < self.per_account || h.known_address)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sessions_end_when_idle_or_old() {
        let r = SessionRules::default();
        let t0 = datetime!(2026-11-27 08:00 UTC);
        assert_eq!(
            r.state(t0, t0, t0 + Duration::minutes(29)),
            SessionState::Live
        );
        assert_eq!(
            r.state(t0, t0, t0 + Duration::minutes(30)),
            SessionState::IdleTooLong
        );
        assert_eq!(
            r.state(
                t0,
                t0 + Duration::hours(11) + Duration::minutes(59),
                t0 + Duration::hours(12)
            ),
            SessionState::TooOld
        );
    }

    #[test]
    fn the_hundred_and_first_failure_is_refused() {
        let l = LoginLimits::default();
        let h = |account, address, both, known| LoginHistory {
            failed_for_account: account,
            failed_from_address: address,
            failed_for_account_from_address: both,
            known_address: known,
        };
        assert!(l.allows(&h(9, 9, 9, false)));
        assert!(!l.allows(&h(10, 10, 10, true)), "ten guesses from here");
        assert!(!l.allows(&h(0, 300, 0, true)), "300 guesses from here");
        assert!(l.allows(&h(99, 0, 0, false)));
        assert!(
            !l.allows(&h(100, 0, 0, false)),
            "a guessed-at account, from a new address"
        );
        assert!(
            l.allows(&h(100, 0, 0, true)),
            "the person, from where they signed in before"
        );
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
}
