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
    /// Failed attempts on one account within the window after which it is refused.
    pub per_account: i64,
    /// Failed attempts from one address within the window after which it is refused.
    pub per_address: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            window: Duration::hours(1),
            per_account: 100,
            per_address: 300,
        }
    }
}

impl LoginLimits {
    /// May another attempt be made, given the failures within the window?
    pub fn allows(&self, failed_for_account: i64, failed_from_address: i64) -> bool {
        failed_for_account < self.per_account && failed_from_address < self.per_address
    }
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
        assert!(l.allows(99, 0));
        assert!(!l.allows(100, 0));
        assert!(!l.allows(0, 300));
    }
}
