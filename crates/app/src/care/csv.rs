//! Readings as CSV: the file a patient uploads and the export, one reading per row.

use super::*;
use coproduce_core::calendar::BusinessCalendar;

/// The columns of a readings CSV file, in order (docs/readings-csv.md). Export writes them
/// and more (review status and comment); upload reads the first five and ignores the rest.
pub const CSV_COLUMNS: &[&str] = &["measure", "value", "value2", "unit", "time"];

/// A time as a person types it (in a form or a readings file): `2026-11-20 08:30`,
/// `2026-11-20T08:30` or `2026-11-20` on the calendar's clock (the person's zone), or an
/// instant with its zone; nothing typed is now.
pub fn parse_when(
    s: &str,
    now: OffsetDateTime,
    calendar: &BusinessCalendar,
) -> Option<OffsetDateTime> {
    let s = s.trim();
    if s.is_empty() {
        return Some(now);
    }
    // A time with its zone (as exported: 2026-11-20T08:30:00.000Z) is that instant.
    if s.len() > 10
        && let Some((low, _)) = date_range_millis(s)
    {
        return Some(from_unix_millis(low));
    }
    // A day and time as people type them ("2026-11-20 08:30"), or a day, on the clock of
    // the person's zone.
    let typed = s.replacen('T', " ", 1);
    let with_time = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    let with_seconds =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let day_only = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(dt) = time::PrimitiveDateTime::parse(&typed, &with_time)
        .or_else(|_| time::PrimitiveDateTime::parse(&typed, &with_seconds))
    {
        return Some(calendar.instant(dt.date(), dt.time()));
    }
    if let Ok(d) = time::Date::parse(&typed, &day_only) {
        return Some(calendar.instant(d, time::Time::MIDNIGHT));
    }
    date_range_millis(s).map(|(low, _)| from_unix_millis(low))
}

/// Reads a readings CSV file (a header row naming at least `measure` and `value`). Every
/// row is checked; the first bad one refuses the whole file, naming its row.
/// Times without a zone are read on the calendar's clock (the person's).
pub fn parse_csv(
    bytes: &[u8],
    now: OffsetDateTime,
    calendar: &BusinessCalendar,
) -> Result<Vec<NewReading>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .trim(::csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| CareError::input("csv-unreadable", format!("the file is not CSV: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(m_col), Some(v_col)) = (col("measure"), col("value")) else {
        return Err(CareError::Input {
            key: "csv-columns",
            english: format!(
                "the first row must name the columns: {}",
                CSV_COLUMNS.join(",")
            ),
            args: vec![("columns", CSV_COLUMNS.join(","))],
        });
    };
    let (v2_col, u_col, t_col) = (col("value2"), col("unit"), col("time"));
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        // Why a row is refused, in words the page translates: the reason's key and values.
        let refuse_as =
            |why: String, key: &'static str, args: Vec<(&'static str, String)>| CareError::Input {
                key: "csv-row-refused",
                english: format!("row {row}: {why}"),
                args: [
                    ("row", row.to_string()),
                    ("why", why),
                    ("why-key", key.to_string()),
                ]
                .into_iter()
                .chain(args)
                .collect(),
            };
        let refused = |e: ReadingRefused| refuse_as(e.to_string(), e.key(), e.args());
        let record = record.map_err(|e| {
            refuse_as(
                e.to_string(),
                "csv-row-unreadable",
                vec![("detail", e.to_string())],
            )
        })?;
        let field = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
        if record.iter().all(str::is_empty) {
            continue;
        }
        let measure =
            Measure::parse(&field(Some(m_col)).to_ascii_lowercase()).ok_or_else(|| {
                let allowed = Measure::ALL.map(Measure::as_str).join(", ");
                refuse_as(
                    format!(
                        "'{}' is not a measure; use one of {allowed}",
                        field(Some(m_col))
                    ),
                    "csv-not-a-measure",
                    vec![
                        ("value", field(Some(m_col)).to_string()),
                        ("allowed", allowed),
                    ],
                )
            })?;
        let mut values = vec![reading_rules::parse_number(field(Some(v_col))).map_err(refused)?];
        if measure == Measure::BloodPressure {
            values.push(reading_rules::parse_number(field(v2_col)).map_err(refused)?);
        }
        let at = parse_when(field(t_col), now, calendar).ok_or_else(|| {
            refuse_as(
                format!("'{}' is not a time like 2026-11-20 08:30", field(t_col)),
                "csv-bad-time",
                vec![("value", field(t_col).to_string())],
            )
        })?;
        let r = NewReading {
            measure,
            values,
            unit: field(u_col).to_string(),
            at,
        };
        reading_rules::check(r.measure, &r.values, &r.unit).map_err(refused)?;
        out.push(r);
    }
    Ok(out)
}

/// Writes readings as CSV, in the upload's columns plus the review.
pub fn readings_csv(readings: &[Reading]) -> Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let fail = |e: ::csv::Error| CareError::App(AppError::Internal(e.to_string()));
    w.write_record(
        CSV_COLUMNS
            .iter()
            .chain(&["recorded_by", "reviewed", "review_comment"]),
    )
    .map_err(fail)?;
    for r in readings {
        let unit = r.measure.canonical_unit().ucum;
        let d = r.measure.decimals();
        let (v1, v2) = match r.value {
            ReadingValue::Single(v) => (format!("{v:.d$}"), String::new()),
            ReadingValue::Pressure {
                systolic,
                diastolic,
            } => (format!("{systolic:.0}"), format!("{diastolic:.0}")),
        };
        let reviewed = match (&r.review, r.unreviewed) {
            (Some(rv), _) => instant(rv.at),
            (None, true) => "no".into(),
            (None, false) => String::new(),
        };
        let comment = r
            .review
            .as_ref()
            .and_then(|rv| rv.comment.clone())
            .unwrap_or_default();
        w.write_record(
            [
                r.measure.as_str(),
                &v1,
                &v2,
                unit,
                &instant(r.at),
                &r.by,
                &reviewed,
                &comment,
            ]
            .map(crate::spreadsheet::safe_cell)
            .iter()
            .map(|c| c.as_ref()),
        )
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| CareError::App(AppError::Internal(e.to_string())))?;
    String::from_utf8(bytes).map_err(|e| CareError::App(AppError::Internal(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_csv_file_is_read_with_units_and_times() {
        let now = datetime!(2026-11-27 10:00 UTC);
        let csv = "measure,value,value2,unit,time\n\
                   glucose,7.0,,mmol/L,2026-11-20 08:30\n\
                   blood-pressure,128,82,,2026-11-21T07:00:00Z\n\
                   weight,80.5,,kg,\n";
        let rows = parse_csv(csv.as_bytes(), now, &BusinessCalendar::default()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].at, datetime!(2026-11-20 08:30 UTC));
        assert_eq!(rows[1].values, vec![128.0, 82.0]);
        assert_eq!(rows[2].at, now);
        // In a person's zone a time without one is read on their clock; one with a zone
        // stays the instant it names.
        let la = BusinessCalendar::default()
            .in_zone("America/Los_Angeles")
            .unwrap();
        let rows = parse_csv(csv.as_bytes(), now, &la).unwrap();
        assert_eq!(rows[0].at, datetime!(2026-11-20 16:30 UTC));
        assert_eq!(rows[1].at, datetime!(2026-11-21 07:00 UTC));
    }

    #[test]
    fn a_bad_row_refuses_the_file_and_names_the_row() {
        let now = datetime!(2026-11-27 10:00 UTC);
        let csv = "measure,value\nglucose,120\nhba1c,80\n";
        let err = parse_csv(csv.as_bytes(), now, &BusinessCalendar::default()).unwrap_err();
        assert_eq!(err.to_string(), "row 3: hba1c must be between 3 and 20 %");
        let err = parse_csv(b"what,ever\n1,2\n", now, &BusinessCalendar::default()).unwrap_err();
        assert!(matches!(
            err,
            CareError::Input {
                key: "csv-columns",
                ..
            }
        ));
    }

    #[test]
    fn exported_readings_upload_again_unchanged() {
        let r = Reading {
            id: "x".into(),
            version: 1,
            patient: "p".into(),
            measure: Measure::BloodPressure,
            value: ReadingValue::Pressure {
                systolic: 131.0,
                diastolic: 84.0,
            },
            at: datetime!(2026-11-20 08:30 UTC),
            by: "Ana Silva".into(),
            by_ref: Some("Patient/p".into()),
            unreviewed: true,
            review: None,
        };
        let text = readings_csv(std::slice::from_ref(&r)).unwrap();
        let back = parse_csv(
            text.as_bytes(),
            datetime!(2026-11-27 10:00 UTC),
            &BusinessCalendar::default(),
        )
        .unwrap();
        assert_eq!(back[0].values, vec![131.0, 84.0]);
        assert_eq!(back[0].at, r.at);
        assert_eq!(back[0].measure, r.measure);
    }
}
