//! The business calendar and "within" rules: when a promise with a due time falls due.
//!
//! A site keeps business hours on working days, minus its holidays, in its time zone (an
//! IANA name such as America/New_York, so daylight saving is followed; the zone database is
//! compiled in, so nothing is read at run time). "Within 1 business day" of a start means by the close of the next business day after
//! the day it started (a pack started on Friday evening is due by Monday's close); "within 4
//! business hours" counts only open hours; "within 72 hours" is wall-clock time.

use jiff::tz::TimeZone;
use std::collections::BTreeSet;
use std::fmt;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// A site's working days, hours and holidays.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    /// The site's time zone.
    pub zone: TimeZone,
    pub open: Time,
    pub close: Time,
    pub workdays: BTreeSet<u8>,
    pub holidays: BTreeSet<Date>,
}

impl Default for BusinessCalendar {
    /// Monday to Friday, 08:00 to 17:00 UTC, no holidays.
    fn default() -> Self {
        BusinessCalendar {
            zone: TimeZone::UTC,
            open: Time::from_hms(8, 0, 0).unwrap_or(Time::MIDNIGHT),
            close: Time::from_hms(17, 0, 0).unwrap_or(Time::MIDNIGHT),
            workdays: (1..=5).collect(),
            holidays: BTreeSet::new(),
        }
    }
}

/// Why a calendar setting was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarRefused(pub String);

impl fmt::Display for CalendarRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CalendarRefused {}

impl BusinessCalendar {
    /// A calendar from its settings: `zone` an IANA name ("America/New_York") or a fixed
    /// offset ("-05:00", "UTC"), hours like "08:00", workdays as English day names
    /// ("monday"...), holidays as ISO dates.
    pub fn new(
        zone: &str,
        open: &str,
        close: &str,
        workdays: &[String],
        holidays: &[String],
    ) -> Result<Self, CalendarRefused> {
        let zone = parse_zone(zone)?;
        let open = parse_time(open)?;
        let close = parse_time(close)?;
        if close <= open {
            return Err(CalendarRefused(format!(
                "business hours close ({close}) must be after they open ({open})"
            )));
        }
        let workdays = workdays
            .iter()
            .map(|d| weekday(d).map(|w| w.number_from_monday()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if workdays.is_empty() {
            return Err(CalendarRefused(
                "a business calendar needs a working day".into(),
            ));
        }
        let holidays = holidays
            .iter()
            .map(|d| {
                Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
                    .map_err(|_| CalendarRefused(format!("holiday '{d}' is not a YYYY-MM-DD date")))
            })
            .collect::<Result<_, _>>()?;
        Ok(BusinessCalendar {
            zone,
            open,
            close,
            workdays,
            holidays,
        })
    }

    /// The same calendar with times shown in another zone (a person's own): an IANA name or
    /// a fixed offset.
    pub fn in_zone(&self, zone: &str) -> Result<BusinessCalendar, CalendarRefused> {
        Ok(BusinessCalendar {
            zone: parse_zone(zone)?,
            ..self.clone()
        })
    }

    pub fn is_business_day(&self, d: Date) -> bool {
        self.workdays.contains(&d.weekday().number_from_monday()) && !self.holidays.contains(&d)
    }

    /// The site's offset from UTC at an instant.
    fn offset_at(&self, t: OffsetDateTime) -> UtcOffset {
        let secs = jiff::Timestamp::from_second(t.unix_timestamp())
            .map(|ts| self.zone.to_offset(ts).seconds())
            .unwrap_or(0);
        UtcOffset::from_whole_seconds(secs).unwrap_or(UtcOffset::UTC)
    }

    /// An instant as the site's clock shows it.
    pub fn local_time(&self, t: OffsetDateTime) -> OffsetDateTime {
        t.to_offset(self.offset_at(t))
    }

    fn local(&self, t: OffsetDateTime) -> PrimitiveDateTime {
        let l = self.local_time(t);
        PrimitiveDateTime::new(l.date(), l.time())
    }

    /// The zone's name: its IANA name (`America/New_York`), else its offset.
    pub fn zone_name(&self) -> String {
        match self.zone.iana_name() {
            Some(n) => n.to_string(),
            None => self.zone_label(OffsetDateTime::UNIX_EPOCH),
        }
    }

    /// The site's zone's abbreviation at an instant (`EST`, `EDT`, `UTC`), to show beside a
    /// time where it matters.
    pub fn zone_label(&self, t: OffsetDateTime) -> String {
        jiff::Timestamp::from_second(t.unix_timestamp())
            .map(|ts| self.zone.to_offset_info(ts).abbreviation().to_string())
            .unwrap_or_else(|_| "UTC".into())
    }

    /// The instant of a local day and time at the site (a time skipped or repeated by a
    /// clock change is taken as the clocks would show it: the later offset for a gap, the
    /// earlier for a fold).
    pub fn instant(&self, d: Date, t: Time) -> OffsetDateTime {
        let civil = jiff::civil::DateTime::new(
            d.year() as i16,
            u8::from(d.month()) as i8,
            d.day() as i8,
            t.hour() as i8,
            t.minute() as i8,
            t.second() as i8,
            0,
        );
        let secs = civil
            .ok()
            .and_then(|c| self.zone.to_ambiguous_timestamp(c).compatible().ok())
            .map(|ts| ts.as_second());
        match secs.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()) {
            Some(at) => at,
            None => PrimitiveDateTime::new(d, t).assume_utc(),
        }
    }

    /// The first business day strictly after `d`.
    pub fn next_business_day(&self, d: Date) -> Date {
        let mut day = d;
        // A calendar has at least one working day, and no year is all holidays in practice;
        // the bound only keeps a pathological holiday list from looping for ever.
        for _ in 0..3660 {
            day = day.next_day().unwrap_or(day);
            if self.is_business_day(day) {
                return day;
            }
        }
        day
    }

    /// The close of the `n`th business day after the local day of `from` (n = 0: the close of
    /// that day if it is a business day and not yet closed, else of the next business day).
    pub fn close_after_business_days(&self, from: OffsetDateTime, n: u32) -> OffsetDateTime {
        let local = self.local(from);
        let mut day = local.date();
        if n == 0 {
            if !(self.is_business_day(day) && local.time() < self.close) {
                day = self.next_business_day(day);
            }
        } else {
            for _ in 0..n {
                day = self.next_business_day(day);
            }
        }
        self.instant(day, self.close)
    }

    /// `from` plus `span` of open business time.
    pub fn add_business_time(&self, from: OffsetDateTime, span: Duration) -> OffsetDateTime {
        let local = self.local(from);
        let (mut day, mut at) = (local.date(), local.time());
        if !self.is_business_day(day) || at >= self.close {
            day = self.next_business_day(day);
            at = self.open;
        } else if at < self.open {
            at = self.open;
        }
        let mut left = span;
        for _ in 0..3660 {
            let open_left = self.close - at;
            if left <= open_left {
                return self.instant(day, at) + left;
            }
            left -= open_left;
            day = self.next_business_day(day);
            at = self.open;
        }
        self.instant(day, at)
    }
}

fn parse_offset(s: &str) -> Result<UtcOffset, CalendarRefused> {
    let bad = || {
        CalendarRefused(format!(
            "time-zone offset '{s}' is not like +01:00 or -05:00"
        ))
    };
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Ok(UtcOffset::UTC);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())
}

/// A time zone: an IANA name, or a fixed offset.
fn parse_zone(s: &str) -> Result<TimeZone, CalendarRefused> {
    if let Ok(off) = parse_offset(s) {
        let offset = jiff::tz::Offset::from_seconds(off.whole_seconds())
            .map_err(|e| CalendarRefused(format!("offset '{s}': {e}")))?;
        return Ok(TimeZone::fixed(offset));
    }
    TimeZone::get(s).map_err(|_| {
        CalendarRefused(format!(
            "'{s}' is not a time zone: use a name like America/New_York, or an offset like -05:00"
        ))
    })
}

fn parse_time(s: &str) -> Result<Time, CalendarRefused> {
    Time::parse(s, time::macros::format_description!("[hour]:[minute]"))
        .map_err(|_| CalendarRefused(format!("time '{s}' is not like 08:00")))
}

fn weekday(s: &str) -> Result<Weekday, CalendarRefused> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return Err(CalendarRefused(format!("'{s}' is not a day of the week"))),
    })
}

/// How long a promise has: "1 business day", "4 business hours", "72 hours", "14 days",
/// "15 minutes".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    /// By the close of the nth business day after the day it began.
    BusinessDays(u32),
    /// This many hours of open business time.
    BusinessHours(i64),
    BusinessMinutes(i64),
    /// Wall-clock time.
    Days(i64),
    Hours(i64),
    Minutes(i64),
}

impl Within {
    pub fn parse(s: &str) -> Result<Within, CalendarRefused> {
        let bad = || {
            CalendarRefused(format!(
                "'{s}' is not a period like '1 business day', '4 business hours', '72 hours' \
                 or '14 days'"
            ))
        };
        let words: Vec<&str> = s.split_whitespace().collect();
        let n: i64 = words.first().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        if n < 0 {
            return Err(bad());
        }
        let unit = |w: &str| w.trim_end_matches('s').to_ascii_lowercase();
        match words.as_slice() {
            [_, b, u] if b.eq_ignore_ascii_case("business") => match unit(u).as_str() {
                "day" => Ok(Within::BusinessDays(u32::try_from(n).map_err(|_| bad())?)),
                "hour" => Ok(Within::BusinessHours(n)),
                "minute" => Ok(Within::BusinessMinutes(n)),
                _ => Err(bad()),
            },
            [_, u] => match unit(u).as_str() {
                "day" => Ok(Within::Days(n)),
                "hour" => Ok(Within::Hours(n)),
                "minute" => Ok(Within::Minutes(n)),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// When something begun at `from` falls due.
    pub fn due(self, cal: &BusinessCalendar, from: OffsetDateTime) -> OffsetDateTime {
        match self {
            Within::BusinessDays(n) => cal.close_after_business_days(from, n),
            Within::BusinessHours(n) => cal.add_business_time(from, Duration::hours(n)),
            Within::BusinessMinutes(n) => cal.add_business_time(from, Duration::minutes(n)),
            Within::Days(n) => from + Duration::days(n),
            Within::Hours(n) => from + Duration::hours(n),
            Within::Minutes(n) => from + Duration::minutes(n),
        }
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, unit) = match *self {
            Within::BusinessDays(n) => (i64::from(n), "business day"),
            Within::BusinessHours(n) => (n, "business hour"),
            Within::BusinessMinutes(n) => (n, "business minute"),
            Within::Days(n) => (n, "day"),
            Within::Hours(n) => (n, "hour"),
            Within::Minutes(n) => (n, "minute"),
        };
        write!(f, "{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn site() -> BusinessCalendar {
        BusinessCalendar::new(
            "-05:00",
            "08:00",
            "17:00",
            &["mon", "tue", "wed", "thu", "fri"].map(String::from),
            &["2026-11-26".to_string()],
        )
        .expect("a calendar")
    }

    #[test]
    fn friday_evening_is_due_by_the_close_of_monday() {
        let cal = BusinessCalendar::default();
        // Friday 27 November 2026, 18:00.
        let due = Within::BusinessDays(1).due(&cal, datetime!(2026-11-27 18:00 UTC));
        assert_eq!(due, datetime!(2026-11-30 17:00 UTC));
        assert_eq!(due.weekday(), Weekday::Monday);
        // Friday at 10:00 is due by Monday's close as well: the next business day.
        assert_eq!(
            Within::BusinessDays(1).due(&cal, datetime!(2026-11-27 10:00 UTC)),
            datetime!(2026-11-30 17:00 UTC)
        );
        // A Tuesday start is due by Wednesday's close.
        assert_eq!(
            Within::BusinessDays(1).due(&cal, datetime!(2026-12-01 09:00 UTC)),
            datetime!(2026-12-02 17:00 UTC)
        );
    }

    #[test]
    fn holidays_and_the_site_offset_move_the_due_time() {
        let cal = site();
        // Wednesday 25 November, 20:00 at the site (01:00 UTC on the 26th): Thursday the 26th
        // is a holiday, so the next business day is Friday, closing at 17:00 -05:00.
        let due = Within::BusinessDays(1).due(&cal, datetime!(2026-11-26 01:00 UTC));
        assert_eq!(due, datetime!(2026-11-27 22:00 UTC));
        assert!(!cal.is_business_day(date!(2026 - 11 - 26)));
        assert!(!cal.is_business_day(date!(2026 - 11 - 28)));
    }

    #[test]
    fn a_site_time_zone_follows_daylight_saving() {
        let cal = BusinessCalendar::new(
            "America/New_York",
            "08:00",
            "17:00",
            &["mon", "tue", "wed", "thu", "fri"].map(String::from),
            &[],
        )
        .expect("a calendar");
        // Friday 30 October 2026 at 18:00 in New York (EDT, -04:00); the clocks go back on
        // Sunday 1 November, so Monday's close is 17:00 EST (-05:00), 22:00 UTC.
        let due = Within::BusinessDays(1).due(&cal, datetime!(2026-10-30 22:00 UTC));
        assert_eq!(due, datetime!(2026-11-02 22:00 UTC));
        // In summer the close is 21:00 UTC.
        assert_eq!(
            Within::BusinessDays(1).due(&cal, datetime!(2026-07-09 15:00 UTC)),
            datetime!(2026-07-10 21:00 UTC)
        );
        assert_eq!(
            cal.local_time(datetime!(2026-11-02 22:00 UTC)).offset(),
            UtcOffset::from_hms(-5, 0, 0).expect("an offset")
        );
        let e = BusinessCalendar::new("Mars/Olympus_Mons", "08:00", "17:00", &["mon".into()], &[])
            .expect_err("no such zone");
        assert!(e.0.contains("Mars/Olympus_Mons"), "{e}");
    }

    #[test]
    fn business_time_counts_only_open_hours() {
        let cal = BusinessCalendar::default();
        // Friday 15:00 plus 4 business hours: 2 on Friday, 2 on Monday.
        assert_eq!(
            Within::BusinessHours(4).due(&cal, datetime!(2026-11-27 15:00 UTC)),
            datetime!(2026-11-30 10:00 UTC)
        );
        // Saturday night: the clock starts at Monday's opening.
        assert_eq!(
            cal.add_business_time(datetime!(2026-11-28 23:00 UTC), Duration::minutes(15)),
            datetime!(2026-11-30 08:15 UTC)
        );
        // Before opening: from the opening.
        assert_eq!(
            cal.add_business_time(datetime!(2026-12-01 06:00 UTC), Duration::hours(9)),
            datetime!(2026-12-01 17:00 UTC)
        );
        // Elapsed time ignores the calendar.
        assert_eq!(
            Within::Hours(72).due(&cal, datetime!(2026-11-27 18:00 UTC)),
            datetime!(2026-11-30 18:00 UTC)
        );
    }

    #[test]
    fn same_day_means_today_while_open_else_the_next_business_day() {
        let cal = BusinessCalendar::default();
        assert_eq!(
            Within::BusinessDays(0).due(&cal, datetime!(2026-11-27 10:00 UTC)),
            datetime!(2026-11-27 17:00 UTC)
        );
        assert_eq!(
            Within::BusinessDays(0).due(&cal, datetime!(2026-11-27 18:00 UTC)),
            datetime!(2026-11-30 17:00 UTC)
        );
    }

    #[test]
    fn periods_parse_and_print_back() {
        for s in [
            "1 business day",
            "2 business days",
            "4 business hours",
            "72 hours",
            "14 days",
            "15 minutes",
        ] {
            assert_eq!(Within::parse(s).expect(s).to_string(), s);
        }
        for bad in ["", "soon", "-1 days", "3 fortnights", "1 business week"] {
            assert!(Within::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_calendars_are_refused_with_the_reason() {
        let days = ["monday".to_string()];
        assert!(BusinessCalendar::new("+25:00", "08:00", "17:00", &days, &[]).is_err());
        assert!(BusinessCalendar::new("UTC", "17:00", "08:00", &days, &[]).is_err());
        assert!(BusinessCalendar::new("UTC", "08:00", "17:00", &[], &[]).is_err());
        let e = BusinessCalendar::new("UTC", "08:00", "17:00", &["funday".into()], &[])
            .expect_err("not a day");
        assert!(e.0.contains("funday"));
        assert!(
            BusinessCalendar::new("UTC", "08:00", "17:00", &days, &["2026-13-01".into()]).is_err()
        );
    }
}
