//! CSV cells that a spreadsheet opens as data, never as a formula (CSV injection, OWASP).

use std::borrow::Cow;

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
