//! Where "now" comes from. Only the edges (the server, the CLI) read the system clock; tests
//! use [`FakeClock`] and move it by hand.

use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Unix milliseconds, the way the store keeps instants.
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The instant `ms` Unix milliseconds name (the epoch if out of range).
pub fn from_unix_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<OffsetDateTime>,
}

impl FakeClock {
    pub fn at(now: OffsetDateTime) -> Self {
        FakeClock {
            now: Mutex::new(now),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Now, in seconds since 1970 (for TOTP codes in tests).
    pub fn now_unix(&self) -> u64 {
        self.now().unix_timestamp().max(0) as u64
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn millis_round_trip() {
        let t = datetime!(2026-11-27 18:00:00.123 UTC);
        assert_eq!(from_unix_millis(unix_millis(t)), t);
        assert_eq!(from_unix_millis(i64::MAX), OffsetDateTime::UNIX_EPOCH);
    }

    #[test]
    fn a_fake_clock_moves_only_when_told() {
        let c = FakeClock::at(datetime!(2026-11-27 18:00 UTC));
        assert_eq!(c.now(), datetime!(2026-11-27 18:00 UTC));
        c.advance(Duration::hours(63));
        assert_eq!(c.now(), datetime!(2026-11-30 09:00 UTC));
    }
}
