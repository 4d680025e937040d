//! CQL's interval operators at day precision, with its three-valued logic: an unknown
//! boundary makes a comparison unknown, and only a true condition selects a record.
//!
//! Times are taken in UTC (as the official test cases assume) and compared by calendar day.

use coproduce_fhir::primitives::date_range_millis;
use time::{Date, OffsetDateTime};

/// One end of an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Day(Date),
    /// A closed null boundary: the beginning or end of time.
    Unbounded,
    /// An open null boundary, or a time too imprecise to name its day.
    Unknown,
}

/// An interval of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub low: Bound,
    pub high: Bound,
}

/// Unknown is `None`.
pub type Truth = Option<bool>;

/// CQL `and`: false wins, then unknown.
pub fn and(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// Whether a condition selects: only true does.
pub fn holds(t: Truth) -> bool {
    t == Some(true)
}

fn low_key(b: Bound) -> Option<i64> {
    match b {
        Bound::Day(d) => Some(i64::from(d.to_julian_day())),
        Bound::Unbounded => Some(i64::MIN),
        Bound::Unknown => None,
    }
}

fn high_key(b: Bound) -> Option<i64> {
    match b {
        Bound::Day(d) => Some(i64::from(d.to_julian_day())),
        Bound::Unbounded => Some(i64::MAX),
        Bound::Unknown => None,
    }
}

fn le(a: Option<i64>, b: Option<i64>) -> Truth {
    Some(a? <= b?)
}

impl Span {
    pub fn days(low: Date, high: Date) -> Span {
        Span {
            low: Bound::Day(low),
            high: Bound::Day(high),
        }
    }

    /// A single point in time.
    pub fn point(b: Bound) -> Span {
        Span { low: b, high: b }
    }

    /// `self overlaps day of other`.
    pub fn overlaps(&self, other: &Span) -> Truth {
        and(
            le(low_key(self.low), high_key(other.high)),
            le(low_key(other.low), high_key(self.high)),
        )
    }

    /// `self during day of other` (included in).
    pub fn during(&self, other: &Span) -> Truth {
        and(
            le(low_key(other.low), low_key(self.low)),
            le(high_key(self.high), high_key(other.high)),
        )
    }

    /// `self ends during day of other`.
    pub fn ends_during(&self, other: &Span) -> Truth {
        let end = high_key(self.high);
        if self.high == Bound::Unbounded {
            return Some(false);
        }
        and(le(low_key(other.low), end), le(end, high_key(other.high)))
    }

    /// `self starts during day of other`.
    pub fn starts_during(&self, other: &Span) -> Truth {
        let start = low_key(self.low);
        if self.low == Bound::Unbounded {
            return Some(false);
        }
        and(
            le(low_key(other.low), start),
            le(start, high_key(other.high)),
        )
    }

    /// `self ends on or before day of` a day.
    pub fn ends_on_or_before(&self, day: Date) -> Truth {
        le(high_key(self.high), Some(i64::from(day.to_julian_day())))
    }
}

/// The day a FHIR date or dateTime falls on, in UTC; a year or year-month is too imprecise.
pub fn day_of(s: &str) -> Bound {
    if s.len() < 10 {
        return Bound::Unknown;
    }
    match date_range_millis(s) {
        Some((low, _)) => OffsetDateTime::from_unix_timestamp_nanos(i128::from(low) * 1_000_000)
            .map_or(Bound::Unknown, |t| Bound::Day(t.date())),
        None => Bound::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn mp() -> Span {
        Span::days(date!(2026 - 01 - 01), date!(2026 - 12 - 31))
    }

    #[test]
    fn day_precision_comparisons_follow_cql() {
        let dec31 = Span::point(day_of("2025-12-31T23:00:00-02:00"));
        assert_eq!(dec31, Span::point(Bound::Day(date!(2026 - 01 - 01))), "UTC");
        assert!(holds(dec31.during(&mp())));
        let ongoing = Span {
            low: Bound::Day(date!(2020 - 01 - 01)),
            high: Bound::Unbounded,
        };
        assert!(holds(ongoing.overlaps(&mp())));
        assert!(!holds(ongoing.during(&mp())));
        assert_eq!(ongoing.ends_during(&mp()), Some(false));
        let unknown_end = Span {
            low: Bound::Day(date!(2020 - 01 - 01)),
            high: Bound::Unknown,
        };
        assert_eq!(unknown_end.overlaps(&mp()), None);
        assert_eq!(day_of("2026"), Bound::Unknown);
    }
}
