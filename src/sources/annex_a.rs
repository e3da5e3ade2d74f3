//! Ofsted ILACS Annex A workbook (extracts.md §5): one sheet per list, read with calamine.
//!
//! Sheets are **matched by their real column headers**, not their names (councils rename
//! and reorder sheets): a sheet is list L when its first row holds every header L needs.
//! Lists 1 (contacts), 2 (early help assessments), 3 (referrals), 6 (children in need),
//! 7 (child protection) and 8 (children looked after) are loaded into typed tables
//! `annex_a_list1` … `annex_a_list8`; other sheets are ignored. Lettered codes
//! (`a) Male`, `a) WBRI`) lose their letter; `Child Unique ID` is pseudonymised in the
//! `la_child_id` namespace it shares with the CIN census and SSDA903; allocated workers'
//! names are not loaded.

use std::io::Cursor;

use arrow::array::RecordBatch;
use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;

use super::builder::{ColType, TableBuilder, Value};
use super::{
    Context, ExtractKind, FileMeta, Ingested, Issue, LINEAGE_COLUMNS, Placement, TablesIngested,
};
use crate::rules::{Rule, Severity};

/// How an Annex A column is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Col {
    /// `Child Unique ID`: required, stored as `la_child_key`.
    Child,
    /// Lettered gender (`a) Male`), as the canonical sex code.
    Sex,
    /// Lettered ethnicity (`a) WBRI`), checked against the ethnicity list.
    Ethnicity,
    /// An Excel date, or text `dd/mm/yyyy` or `yyyy-mm-dd`.
    Date,
    /// Yes/No (lettered or not).
    YesNo,
    /// Whole number ≥ 0.
    Int,
    /// Text kept as given (lettered codes lose their letter).
    Text,
    /// A postcode: only its outward code is kept.
    Outward,
}

/// One Annex A list.
#[derive(Debug)]
pub struct List {
    /// Annex A list number.
    pub number: u8,
    /// Curated table name.
    pub name: &'static str,
    /// `(Annex A header, curated column, how to read it)`; every header is needed to
    /// recognise the sheet.
    pub columns: &'static [(&'static str, &'static str, Col)],
}

const PERSON: [(&str, &str, Col); 4] = [
    ("Child Unique ID", "la_child_key", Col::Child),
    ("Gender", "sex", Col::Sex),
    ("Ethnicity", "ethnicity", Col::Ethnicity),
    ("Date of Birth", "date_of_birth", Col::Date),
];

macro_rules! list {
    ($n:expr, $name:expr, [$($col:expr),* $(,)?]) => {
        List {
            number: $n,
            name: $name,
            columns: &[PERSON[0], PERSON[1], PERSON[2], PERSON[3], $($col),*],
        }
    };
}

/// The lists loaded, in commit order (list 8 last marks the workbook as ingested).
pub const LISTS: &[List] = &[
    list!(
        1,
        "annex_a_list1",
        [
            ("Date of Contact", "contact_date", Col::Date),
            ("Contact Source", "contact_source", Col::Text),
        ]
    ),
    list!(
        2,
        "annex_a_list2",
        [
            ("Assessment start date", "assessment_start_date", Col::Date),
            (
                "Assessment completion date",
                "assessment_completion_date",
                Col::Date
            ),
            (
                "Organisation completing assessment",
                "organisation",
                Col::Text
            ),
        ]
    ),
    list!(
        3,
        "annex_a_list3",
        [
            ("Date of Referral", "referral_date", Col::Date),
            ("Referral Source", "referral_source", Col::Text),
            ("Referral NFA?", "referral_nfa", Col::YesNo),
            (
                "Number of Referrals in Last 12 Months",
                "referrals_last_12_months",
                Col::Int
            ),
            ("Allocated Team", "allocated_team", Col::Text),
        ]
    ),
    list!(
        6,
        "annex_a_list6",
        [
            ("Does the Child have a Disability", "disability", Col::YesNo),
            ("CIN Start Date", "cin_start_date", Col::Date),
            ("Primary Need Code", "primary_need", Col::Text),
            ("Date Child Was Last Seen", "last_seen_date", Col::Date),
            ("CIN Closure Date", "cin_closure_date", Col::Date),
            ("Reason for Closure", "reason_for_closure", Col::Text),
            ("Case Status", "case_status", Col::Text),
            ("Allocated Team", "allocated_team", Col::Text),
        ]
    ),
    list!(
        7,
        "annex_a_list7",
        [
            ("Does the Child have a Disability", "disability", Col::YesNo),
            (
                "Child Protection Plan Start Date",
                "cpp_start_date",
                Col::Date
            ),
            ("Initial Category of Abuse", "initial_category", Col::Text),
            ("Latest Category of Abuse", "latest_category", Col::Text),
            (
                "Date of the Last Statutory Visit",
                "last_statutory_visit",
                Col::Date
            ),
            ("Was the Child Seen Alone?", "seen_alone", Col::YesNo),
            (
                "Date of latest review conference",
                "latest_review_conference",
                Col::Date
            ),
            ("Child Protection Plan End Date", "cpp_end_date", Col::Date),
            (
                "Number of Previous Child Protection Plans",
                "previous_cpps",
                Col::Int
            ),
            ("Allocated Team", "allocated_team", Col::Text),
        ]
    ),
    list!(
        8,
        "annex_a_list8",
        [
            ("Does the Child have a Disability", "disability", Col::YesNo),
            (
                "Date Started to be Looked After",
                "cla_start_date",
                Col::Date
            ),
            ("Child's Category of Need", "category_of_need", Col::Text),
            ("Child's Legal Status", "legal_status", Col::Text),
            (
                "Date of Latest Statutory Review",
                "latest_review",
                Col::Date
            ),
            (
                "Number of Placements in the Last 12 months",
                "placements_last_12_months",
                Col::Int
            ),
            ("Date Ceased to be Looked After", "cla_end_date", Col::Date),
            (
                "Reason Ceased to be Looked After",
                "reason_ceased",
                Col::Text
            ),
            (
                "Start Date of Most Recent Placement",
                "placement_start_date",
                Col::Date
            ),
            ("Placement Type", "placement_type", Col::Text),
            ("Placement Provider", "placement_provider", Col::Text),
            ("Placement postcode", "placement_outward", Col::Outward),
        ]
    ),
];

impl List {
    /// The curated schema, lineage columns included (`_row_number` = sheet row).
    pub fn schema(&self) -> arrow::datatypes::SchemaRef {
        let mut cols: Vec<(&str, ColType)> = self
            .columns
            .iter()
            .map(|(_, name, col)| {
                let t = match col {
                    Col::Date => ColType::Date,
                    Col::YesNo => ColType::Bool,
                    Col::Int => ColType::Int,
                    _ => ColType::Str,
                };
                (*name, t)
            })
            .collect();
        cols.extend(LINEAGE_COLUMNS);
        super::builder::schema(&cols)
    }
}

/// The list of a curated table name.
pub fn list(name: &str) -> Option<&'static List> {
    LISTS.iter().find(|l| l.name == name)
}

/// Headers compare without case, surrounding or doubled spaces, or non-breaking spaces.
fn norm(h: &str) -> String {
    h.split(|c: char| c.is_whitespace() || c == '\u{a0}')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The list a sheet's header row holds, if any: the matching list with most columns.
pub fn detect(header: &[String]) -> Option<&'static List> {
    let have: Vec<String> = header.iter().map(|h| norm(h)).collect();
    LISTS
        .iter()
        .filter(|l| l.columns.iter().all(|(h, _, _)| have.contains(&norm(h))))
        .max_by_key(|l| l.columns.len())
}

/// Drops an Annex A letter prefix: `a) Male` → `Male`, `q) 6: Police` → `6: Police`.
pub fn unletter(v: &str) -> &str {
    let v = v.trim();
    match v.split_once(") ") {
        Some((letter, rest))
            if !letter.is_empty()
                && letter.len() <= 2
                && letter.chars().all(|c| c.is_ascii_lowercase()) =>
        {
            rest.trim()
        }
        _ => v,
    }
}

/// Reads one Annex A workbook. Never fails: an unreadable workbook (F001) or one with no
/// recognisable list (F003) comes back rejected.
pub fn ingest(bytes: &[u8], file: &FileMeta, ctx: &Context) -> TablesIngested {
    let rejected = |rule: Rule, message: String| TablesIngested {
        ingested: Ingested::rejected_file(ExtractKind::AnnexA, rule, message, 0),
        tables: Vec::new(),
    };
    let mut book: Xlsx<_> = match Xlsx::new(Cursor::new(bytes)) {
        Ok(b) => b,
        Err(e) => {
            return rejected(
                Rule::F001,
                format!(
                    "The workbook cannot be opened ({e}); is it a complete .xlsx file? Export it again."
                ),
            );
        }
    };
    let mut builders: Vec<TableBuilder> = LISTS
        .iter()
        .map(|l| TableBuilder::new(l.schema()))
        .collect();
    let mut found = vec![false; LISTS.len()];
    let (mut rows_read, mut rows_loaded, mut rows_quarantined) = (0u64, 0u64, 0u64);
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for sheet in book.sheet_names() {
        let range = match book.worksheet_range(&sheet) {
            Ok(r) => r,
            Err(e) => {
                return rejected(
                    Rule::F001,
                    format!(
                        "Sheet {sheet:?} cannot be read ({e}); the workbook may be truncated. Export it again."
                    ),
                );
            }
        };
        let mut rows = range.rows();
        let Some(header) = rows.next() else { continue };
        let header: Vec<String> = header.iter().map(|c| c.to_string()).collect();
        let Some(list) = detect(&header) else {
            continue;
        };
        let index = LISTS
            .iter()
            .position(|l| l.number == list.number)
            .expect("listed");
        if found[index] {
            return rejected(
                Rule::F003,
                format!(
                    "Two sheets hold Annex A list {} (the second is {sheet:?}): keep one.",
                    list.number
                ),
            );
        }
        found[index] = true;
        let positions: Vec<usize> = list
            .columns
            .iter()
            .map(|(h, _, _)| {
                header
                    .iter()
                    .position(|x| norm(x) == norm(h))
                    .expect("detected")
            })
            .collect();
        for (i, row) in rows.enumerate() {
            if row
                .iter()
                .all(|c| matches!(c, Data::Empty) || c.to_string().trim().is_empty())
            {
                continue;
            }
            let row_number = i as u64 + 2;
            rows_read += 1;
            let mut cell = Cell {
                ctx,
                file,
                sheet: &sheet,
                row_number,
                errors: Vec::new(),
                warnings: Vec::new(),
            };
            let values: Vec<Value> = list
                .columns
                .iter()
                .zip(&positions)
                .map(|((h, name, col), &p)| {
                    cell.value(row.get(p).unwrap_or(&Data::Empty), h, name, *col)
                })
                .collect();
            if cell.errors.is_empty() {
                let b = &mut builders[index];
                for v in values {
                    b.value(v);
                }
                b.str(Some(&file.source))
                    .str(Some(&file.sha256))
                    .int(Some(row_number as i64));
                b.end_row();
                rows_loaded += 1;
                warnings.append(&mut cell.warnings);
            } else {
                rows_quarantined += 1;
                errors.append(&mut cell.errors);
            }
        }
    }
    if !found.iter().any(|f| *f) {
        return rejected(Rule::F003, "No sheet of this workbook has the column headers of Annex A list 1, 2, 3, 6, 7 or 8 (e.g. list 2: Child Unique ID, Gender, Ethnicity, Date of Birth, Assessment start date, Assessment completion date, Organisation completing assessment). Check it is the Annex A return and that its headers were not edited.".into());
    }
    TablesIngested {
        ingested: Ingested {
            rows_read,
            rows_loaded,
            batch: RecordBatch::new_empty(LISTS[0].schema()),
            rows_quarantined,
            errors,
            warnings,
            rejected: None,
        },
        tables: LISTS
            .iter()
            .zip(builders.iter_mut())
            .map(|(l, b)| (l.name, b.finish()))
            .collect(),
    }
}

struct Cell<'a> {
    ctx: &'a Context,
    file: &'a FileMeta,
    sheet: &'a str,
    row_number: u64,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
}

impl Cell<'_> {
    fn fault(
        &mut self,
        field: &str,
        header: &str,
        rule: Rule,
        message: String,
        raw: &str,
        identifying: bool,
    ) {
        let issue = Issue {
            row_number: self.row_number,
            byte_offset: 0,
            field: field.to_string(),
            source_column: format!("{}/{header}", self.sheet),
            rule,
            message: format!("{}: {message}", self.sheet),
            value_preview: (!identifying).then(|| raw.chars().take(64).collect()),
            value_hmac: identifying.then(|| self.ctx.pseudonymiser.hmac(raw)),
            xml_path: None,
            place: Placement::default(),
        };
        match rule.severity() {
            Severity::Warning | Severity::Info => self.warnings.push(issue),
            _ => self.errors.push(issue),
        }
    }

    fn value(&mut self, data: &Data, header: &str, name: &str, col: Col) -> Value {
        let text = match data {
            Data::Empty | Data::Error(_) => String::new(),
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
            other => other.to_string(),
        };
        let raw = text.trim();
        let raw = if raw == "#N/A" { "" } else { raw };
        if raw.is_empty() {
            if col == Col::Child {
                self.fault(
                    name,
                    header,
                    Rule::E001,
                    "Child Unique ID is missing; every row needs it.".into(),
                    raw,
                    false,
                );
            }
            return match col {
                Col::Date => Value::Date(None),
                Col::YesNo => Value::Bool(None),
                Col::Int => Value::Int(None),
                _ => Value::Str(None),
            };
        }
        match col {
            Col::Child => Value::Str(Some(
                self.ctx
                    .pseudonymiser
                    .local(super::cin::LA_CHILD_NAMESPACE, raw),
            )),
            Col::Sex => match unletter(raw).to_lowercase().as_str() {
                "male" => Value::Str(Some("male".into())),
                "female" => Value::Str(Some("female".into())),
                "not stated/recorded" | "not stated" | "not recorded" | "unknown" => {
                    Value::Str(Some("unknown".into()))
                }
                "neither" | "indeterminate" | "other" => Value::Str(Some("other".into())),
                _ => {
                    self.fault(name, header, Rule::E004, format!("Gender {raw:?} is not one of a) Male, b) Female, c) Not stated/recorded, d) Neither."), raw, false);
                    Value::Str(None)
                }
            },
            Col::Ethnicity => {
                let code = unletter(raw).to_uppercase();
                if self.ctx.has_code("ethnicity", &code) {
                    Value::Str(Some(code))
                } else {
                    self.fault(name, header, Rule::E004, format!("Ethnicity {raw:?} is not a DfE ethnicity code (reference/ethnicity.csv)."), raw, false);
                    Value::Str(None)
                }
            }
            Col::Date => {
                let date = match data {
                    Data::DateTime(d) => NaiveDate::from_ymd_opt(1899, 12, 30).and_then(|e| {
                        e.checked_add_days(chrono::Days::new(d.as_f64().max(0.0) as u64))
                    }),
                    _ => NaiveDate::parse_from_str(raw, "%d/%m/%Y")
                        .or_else(|_| {
                            NaiveDate::parse_from_str(raw.get(..10).unwrap_or(raw), "%Y-%m-%d")
                        })
                        .ok(),
                };
                match date {
                    Some(d) if d > self.file.as_at => {
                        self.fault(
                            name,
                            header,
                            Rule::E003,
                            format!("{header} {d} is after the as-at date {}.", self.file.as_at),
                            raw,
                            false,
                        );
                        Value::Date(None)
                    }
                    Some(d) => Value::Date(Some(d)),
                    None => {
                        self.fault(name, header, Rule::E002, format!("{header} {raw:?} is not a date (an Excel date, dd/mm/yyyy or yyyy-mm-dd); a formula that was not calculated shows as text."), raw, false);
                        Value::Date(None)
                    }
                }
            }
            Col::YesNo => match unletter(raw).to_lowercase().as_str() {
                "yes" | "y" => Value::Bool(Some(true)),
                "no" | "n" => Value::Bool(Some(false)),
                _ => {
                    self.fault(
                        name,
                        header,
                        Rule::E010,
                        format!("{header} {raw:?} is not Yes or No."),
                        raw,
                        false,
                    );
                    Value::Bool(None)
                }
            },
            Col::Int => match raw.parse::<i64>() {
                Ok(n) if n >= 0 => Value::Int(Some(n)),
                _ => {
                    self.fault(
                        name,
                        header,
                        Rule::E010,
                        format!("{header} {raw:?} is not a whole number ≥ 0."),
                        raw,
                        false,
                    );
                    Value::Int(None)
                }
            },
            Col::Text => Value::Str(Some(unletter(raw).to_string())),
            Col::Outward => {
                let upper = raw.to_uppercase();
                Value::Str(upper.split_whitespace().next().map(str::to_string))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_and_headers() {
        assert_eq!(unletter("a) Male"), "Male");
        assert_eq!(unletter("q) 6: Police"), "6: Police");
        assert_eq!(unletter("Female"), "Female");
        assert_eq!(unletter("N1) odd"), "N1) odd");
        let h = |s: &str| s.split('|').map(str::to_string).collect::<Vec<_>>();
        let l2 = detect(&h("Child Unique ID|Gender|Ethnicity|Date of Birth|Age|Assessment start date|Assessment completion date|Organisation\u{a0}completing assessment")).unwrap();
        assert_eq!(l2.number, 2);
        assert!(detect(&h("Child Unique ID|Gender|Ethnicity|Date of Birth|Age")).is_none());
    }
}
