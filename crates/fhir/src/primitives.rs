//! The FHIR R4 primitive types: their lexical rules, and conversion of date-like values to
//! the instant range they cover (for search).

use base64::Engine;
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(concat!("^(?:", $pat, ")$")).expect("valid pattern"));
    };
}

re!(ID, r"[A-Za-z0-9\-\.]{1,64}");
re!(CODE, r"[^\s]+( [^\s]+)*");
re!(OID, r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+");
re!(
    UUID,
    r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
);
re!(URI, r"\S*");
re!(
    DATE,
    r"([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
);
re!(
    DATE_TIME,
    r"([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
);
re!(
    INSTANT,
    r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
);
re!(
    TIME,
    r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
);

/// The largest string FHIR allows (1 MB).
pub const MAX_STRING_BYTES: usize = 1024 * 1024;

pub fn is_valid_id(s: &str) -> bool {
    ID.is_match(s)
}

/// Checks a JSON value against a primitive type; the error says why in words.
pub fn check(type_name: &str, v: &Value) -> Result<(), String> {
    match type_name {
        "boolean" => v
            .is_boolean()
            .then_some(())
            .ok_or_else(|| format!("expected a JSON boolean, found {}", describe(v))),
        "integer" | "unsignedInt" | "positiveInt" => {
            let n = v
                .as_i64()
                .ok_or_else(|| format!("expected a whole JSON number, found {}", describe(v)))?;
            let (lo, hi) = match type_name {
                "integer" => (i64::from(i32::MIN), i64::from(i32::MAX)),
                "unsignedInt" => (0, i64::from(i32::MAX)),
                _ => (1, i64::from(i32::MAX)),
            };
            if n < lo || n > hi {
                return Err(format!("{n} is out of range for {type_name}"));
            }
            Ok(())
        }
        "decimal" => v
            .is_number()
            .then_some(())
            .ok_or_else(|| format!("expected a JSON number, found {}", describe(v))),
        _ => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("expected a JSON string, found {}", describe(v)))?;
            check_string(type_name, s)
        }
    }
}

/// What kind of JSON value this is, in words, for error messages.
pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first character FHIR strings may not hold: anything below U+0020 but tab, carriage
/// return and line feed (PostgreSQL cannot store U+0000 at all). Page forms are held to the
/// same rule.
pub fn control_character(s: &str) -> Option<char> {
    s.chars()
        .find(|c| *c < ' ' && !matches!(c, '\t' | '\r' | '\n'))
}

fn check_string(type_name: &str, s: &str) -> Result<(), String> {
    // Attachments and Binary data may be larger than the 1 MB string limit.
    if s.len() > MAX_STRING_BYTES && type_name != "base64Binary" {
        return Err(format!(
            "value is longer than the permitted maximum of {MAX_STRING_BYTES} bytes"
        ));
    }
    if s.is_empty() {
        return Err("empty strings are not allowed; leave the property out instead".into());
    }
    // FHIR strings hold no characters below U+0020 but tab, carriage return and line feed
    // (and PostgreSQL cannot store U+0000 at all).
    if let Some(c) = control_character(s) {
        return Err(format!(
            "the value holds the control character U+{:04X}, which FHIR does not allow",
            u32::from(c)
        ));
    }
    let ok = match type_name {
        "string" | "markdown" => {
            if s.trim().is_empty() {
                return Err("the value has no content but white space".into());
            }
            true
        }
        "id" => ID.is_match(s),
        "code" => CODE.is_match(s),
        "oid" => OID.is_match(s),
        "uuid" => UUID.is_match(s),
        "uri" | "url" | "canonical" => URI.is_match(s),
        "date" => return parse_date_range(s, true).map(|_| ()),
        "dateTime" => return parse_date_range(s, false).map(|_| ()),
        "instant" => {
            if !INSTANT.is_match(s) {
                return Err(format!(
                    "'{s}' is not a valid instant (it needs a time zone)"
                ));
            }
            return parse_date_range(s, false).map(|_| ());
        }
        "time" => TIME.is_match(s),
        "base64Binary" => {
            let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            if base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .is_err()
            {
                return Err("the value is not valid base64".into());
            }
            true
        }
        "xhtml" => true, // checked by the narrative rules
        other => return Err(format!("unknown primitive type {other}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("'{s}' is not a valid {type_name}"))
    }
}

/// The range of instants a FHIR date, dateTime or instant covers, as Unix milliseconds
/// `[low, high]` (both inclusive). `2024` covers the whole year; a value without a zone is
/// read as UTC.
pub fn date_range_millis(s: &str) -> Option<(i64, i64)> {
    parse_date_range(s, false).ok()
}

/// An instant in UTC to the second or finer, `YYYY-MM-DDThh:mm:ss[.f{1,9}]Z` (what this
/// server writes), read without the regular expression; `None` for anything else (another
/// zone, a leap second, a value that is not valid), which goes the long way and gets the
/// same answer or its error.
fn utc_instant(s: &str) -> Option<(i64, i64)> {
    let b = s.as_bytes();
    if b.len() < 20 || b.last() != Some(&b'Z') {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let punctuated = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')]
        .iter()
        .all(|(i, c)| b[*i] == *c);
    if !punctuated {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let fraction = &b[19..b.len() - 1];
    let millis = match fraction.split_first() {
        None => None,
        Some((b'.', digits)) if (1..=9).contains(&digits.len()) => {
            let n = number(20, 20 + digits.len())?;
            Some(
                n / 10u32.pow(digits.len().saturating_sub(3) as u32)
                    * 10u32.pow(3u32.saturating_sub(digits.len() as u32)),
            )
        }
        Some(_) => return None,
    };
    if year == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date = Date::from_calendar_date(
        i32::try_from(year).ok()?,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms_milli(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        u16::try_from(millis.unwrap_or(0)).ok()?,
    )
    .ok()?;
    let lo = (PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp_nanos()
        / 1_000_000) as i64;
    Some((lo, if millis.is_some() { lo } else { lo + 999 }))
}

fn parse_date_range(s: &str, date_only: bool) -> Result<(i64, i64), String> {
    if !date_only && let Some(range) = utc_instant(s) {
        return Ok(range);
    }
    let re = if date_only { &*DATE } else { &*DATE_TIME };
    let invalid = || {
        format!(
            "'{s}' is not a valid {}",
            if date_only { "date" } else { "dateTime" }
        )
    };
    if !re.is_match(s) {
        return Err(invalid());
    }
    let year: i32 = s[0..4].parse().map_err(|_| invalid())?;
    let month = s
        .get(5..7)
        .map(str::parse::<u8>)
        .transpose()
        .map_err(|_| invalid())?;
    let day = s
        .get(8..10)
        .map(str::parse::<u8>)
        .transpose()
        .map_err(|_| invalid())?;
    let to_month = |m: u8| Month::try_from(m).map_err(|_| invalid());
    let ms = |dt: OffsetDateTime| (dt.unix_timestamp_nanos() / 1_000_000) as i64;
    let start_of = |y: i32, m: u8, d: u8| -> Result<OffsetDateTime, String> {
        let date = Date::from_calendar_date(y, to_month(m)?, d)
            .map_err(|_| format!("'{s}' is not a real calendar date"))?;
        Ok(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc())
    };
    match (month, day) {
        (None, _) => {
            let lo = start_of(year, 1, 1)?;
            let hi = start_of(year + 1, 1, 1)?;
            Ok((ms(lo), ms(hi) - 1))
        }
        (Some(m), None) => {
            let lo = start_of(year, m, 1)?;
            let (ny, nm) = if m == 12 {
                (year + 1, 1)
            } else {
                (year, m + 1)
            };
            let hi = start_of(ny, nm, 1)?;
            Ok((ms(lo), ms(hi) - 1))
        }
        (Some(m), Some(d)) => {
            let lo = start_of(year, m, d)?;
            if s.len() == 10 {
                return Ok((ms(lo), ms(lo) + 86_400_000 - 1));
            }
            let dt = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .or_else(|_| {
                    // Leap seconds (":60") are legal FHIR but not RFC 3339 to the time crate.
                    let fixed = s.replacen(":60", ":59", 1);
                    OffsetDateTime::parse(&fixed, &time::format_description::well_known::Rfc3339)
                })
                .map_err(|_| invalid())?;
            let dt = dt.to_offset(UtcOffset::UTC);
            // Precision: seconds cover the whole second; fractions are exact to the millisecond.
            let has_fraction = s.contains('.');
            let lo = ms(dt);
            Ok((lo, if has_fraction { lo } else { lo + 999 }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_instant_in_utc_reads_the_same_the_short_way_and_the_long_way() {
        for s in [
            "2026-06-01T10:00:00Z",
            "2026-06-01T10:00:00.5Z",
            "2026-06-01T10:00:00.123Z",
            "2026-06-01T10:00:00.1239Z",
            "2026-06-01T10:00:00.123456789Z",
            "2024-02-29T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "1969-12-31T23:59:59.001Z",
        ] {
            let short = utc_instant(s).expect(s);
            DATE_TIME.is_match(s).then_some(()).expect(s);
            let long =
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).expect(s);
            let lo = (long.unix_timestamp_nanos() / 1_000_000) as i64;
            let hi = if s.contains('.') { lo } else { lo + 999 };
            assert_eq!(short, (lo, hi), "{s}");
        }
        // Anything else goes the long way, which says what is wrong.
        for s in [
            "2023-02-29T10:00:00Z",
            "2026-06-01T24:00:00Z",
            "2026-06-01T10:00:60Z",
            "2026-06-01T10:00:00+02:00",
            "2026-06-01T10:00:00.Z",
            "2026-06-01T10:00:00.1234567890Z",
            "0000-06-01T10:00:00Z",
            "2026-6-01T10:00:00Z",
            "2026-06-01 10:00:00Z",
        ] {
            assert_eq!(utc_instant(s), None, "{s}");
        }
        assert!(check("dateTime", &json!("2023-02-29T10:00:00Z")).is_err());
        assert!(check("dateTime", &json!("2026-06-01T10:00:60Z")).is_ok());
    }

    #[test]
    fn dates_must_be_real() {
        assert!(check("date", &json!("2024-02-29")).is_ok());
        assert!(check("date", &json!("2023-02-29")).is_err());
        assert!(check("date", &json!("not a date")).is_err());
        assert!(check("date", &json!("2024-01-01T10:00:00Z")).is_err());
        assert!(check("dateTime", &json!("2024-01-01T10:00:00Z")).is_ok());
        assert!(check("dateTime", &json!("2024-01-01T10:00:00")).is_err());
        assert!(check("instant", &json!("2024-01-01")).is_err());
        assert!(check("instant", &json!("2024-01-01T10:00:00.123+01:00")).is_ok());
    }

    #[test]
    fn ids_codes_and_numbers() {
        assert!(check("id", &json!("abc-1.2")).is_ok());
        assert!(check("id", &json!("bad_id")).is_err());
        assert!(check("id", &json!("a".repeat(65))).is_err());
        assert!(check("code", &json!(" x")).is_err());
        assert!(check("positiveInt", &json!(0)).is_err());
        assert!(check("integer", &json!("1")).is_err());
        assert!(check("decimal", &json!(1.5)).is_ok());
        assert!(check("boolean", &json!("true")).is_err());
        assert!(check("string", &json!("")).is_err());
        assert!(check("base64Binary", &json!("%%%2@()()")).is_err());
        for t in ["string", "markdown", "code", "id", "uri"] {
            assert!(check(t, &json!("a\u{0}b")).is_err(), "{t}");
            assert!(check(t, &json!("a\u{1b}b")).is_err(), "{t}");
        }
        assert!(check("string", &json!("two\r\nlines\tand a tab")).is_ok());
    }

    #[test]
    fn partial_dates_cover_their_whole_span() {
        let (lo, hi) = date_range_millis("2024").unwrap();
        assert_eq!(lo, 1_704_067_200_000);
        assert_eq!(hi, 1_735_689_600_000 - 1);
        let (lo, hi) = date_range_millis("2024-01-01T00:00:00+01:00").unwrap();
        assert_eq!(lo, 1_704_063_600_000);
        assert_eq!(hi, lo + 999);
    }
}
