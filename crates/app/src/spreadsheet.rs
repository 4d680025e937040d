//! CSV files in and out: cells that a spreadsheet opens as data, never as a formula (CSV
//! injection, OWASP), and the lines of a file an administrator loads, each with its number.

use std::borrow::Cow;

/// The lines of a CSV file with exactly these columns (trimmed), each with its number (the
/// header is line 1). A header that is not these columns, a line that cannot be read or a
/// line with another number of fields is refused with its number and why, and nothing of the
/// file is returned.
pub fn lines(
    bytes: &[u8],
    columns: &[&str],
) -> Result<Vec<(usize, csv::StringRecord)>, (usize, String)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| (1, format!("the header cannot be read: {e}")))?
        .clone();
    if header.iter().collect::<Vec<_>>() != columns {
        return Err((1, format!("the header must be: {}", columns.join(","))));
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| (line, format!("cannot be read: {e}")))?;
        if record.len() != columns.len() {
            return Err((
                line,
                format!("has {} fields, not {}", record.len(), columns.len()),
            ));
        }
        out.push((line, record));
    }
    Ok(out)
}

/// A cell a spreadsheet would read as a formula (it begins with `=`, `+`, `-`, `@`, a tab or
/// a carriage return) gets a leading `'`, so that a performer's name or a review comment
/// such as `=HYPERLINK(...)` shows as the text it is. A plain number (`-3.5`) is left alone.
pub fn safe_cell(cell: &str) -> Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().is_err() {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::safe_cell;

    #[test]
    fn formulas_become_text_and_numbers_stay_numbers() {
        for (cell, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-3.5", "-3.5"),
            ("+7", "+7"),
            ("Dr Okafor", "Dr Okafor"),
            ("", ""),
        ] {
            assert_eq!(safe_cell(cell), want, "{cell:?}");
        }
    }
}
