//! XLSX sheets (ONS population workbooks, Annex A) turned into CSV bytes with calamine, so
//! they go through the same mapped reader as CSV extracts.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

/// Converts one sheet (by name, default the first) to CSV, starting at the 1-based
/// `header_row`. Errors are messages for an F001 rejection.
pub fn sheet_to_csv(
    bytes: &[u8],
    sheet: Option<&str>,
    header_row: usize,
) -> Result<Vec<u8>, String> {
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| {
        format!("The workbook cannot be opened ({e}); is it a complete .xlsx file?")
    })?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.trim() == s.trim())
            .cloned()
            .ok_or_else(|| format!("The workbook has no sheet {s:?}; it has {names:?}."))?,
        None => names
            .first()
            .cloned()
            .ok_or("The workbook has no sheets.")?,
    };
    let range = book
        .worksheet_range(&name)
        .map_err(|e| format!("Sheet {name:?} cannot be read ({e})."))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in range.rows().skip(header_row.saturating_sub(1)) {
        let cells: Vec<String> = row
            .iter()
            .map(|c| match c {
                Data::Empty => String::new(),
                Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
                // Excel serial dates count days from 1899-12-30.
                Data::DateTime(d) => (chrono::NaiveDate::from_ymd_opt(1899, 12, 30)
                    .expect("static date")
                    + chrono::Days::new(d.as_f64().max(0.0) as u64))
                .to_string(),
                other => other.to_string(),
            })
            .collect();
        w.write_record(&cells).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}
