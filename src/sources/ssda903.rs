//! SSDA903 (children looked after) CSV tables (extracts.md §5.2).
//!
//! A council sends a folder of 903 CSVs whose file names vary by system; **each file's table
//! is detected from its header**: a file matches table T when its header holds every column
//! of T (case-insensitive, extra columns ignored), and goes to the matching table with the
//! most columns. No match, or a tie, rejects the file (F003). Columns may come in any order.
//!
//! Every table is typed from one declarative spec ([`TABLES`]): dates `dd/mm/yyyy`,
//! `CHILD` pseudonymised in the `la_child_id` namespace, UPNs checked (E013) and keyed,
//! partial postcodes kept as outward codes only, coded columns checked against
//! `reference/ssda903_codes.csv` (E004).

use arrow::array::RecordBatch;
use chrono::NaiveDate;

use super::builder::{ColType, TableBuilder, Value};
use super::{
    Context, ExtractKind, FileMeta, Ingested, Issue, LINEAGE_COLUMNS, Placement, SeenKeys, key_hash,
};
use crate::identity::checks;
use crate::rules::{Rule, Severity};

/// How a 903 column is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Col {
    /// `CHILD`: required; stored as `la_child_key`.
    Child,
    /// `dd/mm/yyyy`, not after the as-at date (E003).
    Date,
    /// `dd/mm/yyyy` that may lie ahead (UASC status ceases on the 18th birthday).
    FutureDate,
    /// A code in the named `ssda903_codes.csv` list (or `ethnicity`).
    Code(&'static str),
    /// 1 = male, 2 = female.
    Sex,
    /// 0/1 flag.
    Flag,
    /// Whole number ≥ 0.
    Int,
    /// UPN: checked (E013) and stored as `key_upn`.
    Upn,
    /// Partial postcode: stored as its outward code.
    Outward,
    /// Free text kept as given.
    Text,
}

/// One 903 table: its lake name and its columns (903 header → canonical column).
#[derive(Debug)]
pub struct Table {
    /// Name used in messages (`Episodes`).
    pub label: &'static str,
    /// Curated table name.
    pub name: &'static str,
    /// `(903 header, curated column, how to read it)`.
    pub columns: &'static [(&'static str, &'static str, Col)],
    /// Columns whose combination must be unique (E005), if any.
    pub key: &'static [&'static str],
}

/// The 903 tables of extracts.md §5.2.
pub const TABLES: &[Table] = &[
    Table {
        label: "Header",
        name: "ssda903_header",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("SEX", "sex", Col::Sex),
            ("DOB", "date_of_birth", Col::Date),
            ("ETHNIC", "ethnicity", Col::Code("ethnicity")),
            ("UPN", "key_upn", Col::Upn),
            ("MOTHER", "mother", Col::Flag),
            ("MC_DOB", "mc_date_of_birth", Col::Date),
        ],
        key: &["CHILD"],
    },
    Table {
        label: "Episodes",
        name: "ssda903_episodes",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DECOM", "decom", Col::Date),
            ("RNE", "rne", Col::Code("ssda903_rne")),
            ("LS", "legal_status", Col::Code("ssda903_ls")),
            ("CIN", "cin", Col::Code("ssda903_cin")),
            ("PLACE", "place", Col::Code("ssda903_place")),
            (
                "PLACE_PROVIDER",
                "place_provider",
                Col::Code("ssda903_place_provider"),
            ),
            ("DEC", "dec", Col::Date),
            ("REC", "rec", Col::Code("ssda903_rec")),
            (
                "REASON_PLACE_CHANGE",
                "reason_place_change",
                Col::Code("ssda903_reason_place_change"),
            ),
            ("HOME_POST", "home_outward", Col::Outward),
            ("PL_POST", "placement_outward", Col::Outward),
            ("URN", "urn", Col::Text),
        ],
        key: &["CHILD", "DECOM"],
    },
    Table {
        label: "UASC",
        name: "ssda903_uasc",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DOB", "date_of_birth", Col::Date),
            ("SEX", "sex", Col::Sex),
            ("DUC", "duc", Col::FutureDate),
        ],
        key: &[],
    },
    Table {
        label: "Reviews",
        name: "ssda903_reviews",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DOB", "date_of_birth", Col::Date),
            ("REVIEW", "review_date", Col::Date),
            (
                "REVIEW_CODE",
                "review_code",
                Col::Code("ssda903_review_code"),
            ),
        ],
        key: &[],
    },
    Table {
        label: "AD1",
        name: "ssda903_ad1",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DOB", "date_of_birth", Col::Date),
            ("DATE_INT", "date_int", Col::Date),
            ("DATE_MATCH", "date_match", Col::Date),
            ("FOSTER_CARE", "foster_care", Col::Flag),
            ("NB_ADOPTR", "nb_adopters", Col::Text),
            ("SEX_ADOPTR", "sex_adopters", Col::Text),
            ("LS_ADOPTR", "ls_adopters", Col::Text),
        ],
        key: &[],
    },
    Table {
        label: "PlacedAdoption",
        name: "ssda903_placed_for_adoption",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DOB", "date_of_birth", Col::Date),
            ("DATE_PLACED", "date_placed", Col::Date),
            ("DATE_PLACED_CEASED", "date_placed_ceased", Col::Date),
            ("REASON_PLACED_CEASED", "reason_placed_ceased", Col::Text),
        ],
        key: &[],
    },
    Table {
        label: "PrevPerm",
        name: "ssda903_prev_perm",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DOB", "date_of_birth", Col::Date),
            ("PREV_PERM", "prev_perm", Col::Text),
            ("LA_PERM", "la_perm", Col::Text),
            ("DATE_PERM", "date_perm", Col::Text),
        ],
        key: &[],
    },
    Table {
        label: "Missing",
        name: "ssda903_missing",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DOB", "date_of_birth", Col::Date),
            ("MISSING", "missing", Col::Text),
            ("MIS_START", "mis_start", Col::Date),
            ("MIS_END", "mis_end", Col::Date),
        ],
        key: &[],
    },
    Table {
        label: "OC2",
        name: "ssda903_oc2",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DOB", "date_of_birth", Col::Date),
            ("SDQ_SCORE", "sdq_score", Col::Int),
            ("SDQ_REASON", "sdq_reason", Col::Text),
            ("CONVICTED", "convicted", Col::Flag),
            ("HEALTH_CHECK", "health_check", Col::Flag),
            ("IMMUNISATIONS", "immunisations", Col::Flag),
            ("TEETH_CHECK", "teeth_check", Col::Flag),
            ("HEALTH_ASSESSMENT", "health_assessment", Col::Flag),
            ("SUBSTANCE_MISUSE", "substance_misuse", Col::Flag),
            ("INTERVENTION_RECEIVED", "intervention_received", Col::Flag),
            ("INTERVENTION_OFFERED", "intervention_offered", Col::Flag),
        ],
        key: &[],
    },
    Table {
        label: "OC3",
        name: "ssda903_oc3",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DOB", "date_of_birth", Col::Date),
            ("IN_TOUCH", "in_touch", Col::Text),
            ("ACTIV", "activity", Col::Text),
            ("ACCOM", "accommodation", Col::Text),
        ],
        key: &[],
    },
    Table {
        label: "SocialWorker",
        name: "ssda903_social_worker",
        columns: &[
            ("CHILD", "la_child_key", Col::Child),
            ("DOB", "date_of_birth", Col::Date),
            ("SW_ID", "sw_key", Col::Text),
            ("SW_DECOM", "sw_decom", Col::Date),
            ("SW_DEC", "sw_dec", Col::Date),
            ("SW_REASON", "sw_reason", Col::Text),
        ],
        key: &[],
    },
];

impl Table {
    /// The curated schema, lineage columns included.
    pub fn schema(&self) -> arrow::datatypes::SchemaRef {
        let mut cols: Vec<(&str, ColType)> = self
            .columns
            .iter()
            .map(|(_, name, col)| {
                let t = match col {
                    Col::Date | Col::FutureDate => ColType::Date,
                    Col::Flag => ColType::Bool,
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

/// The table of a curated name.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// Detects the table of a file from its header (F003 message when none or several fit).
pub fn detect(header: &[String]) -> Result<&'static Table, String> {
    let have: Vec<String> = header.iter().map(|h| h.trim().to_uppercase()).collect();
    let fits: Vec<&Table> = TABLES
        .iter()
        .filter(|t| {
            t.columns
                .iter()
                .all(|(c, _, _)| have.iter().any(|h| h == c))
        })
        .collect();
    let most = fits.iter().map(|t| t.columns.len()).max();
    let best: Vec<&&Table> = fits
        .iter()
        .filter(|t| Some(t.columns.len()) == most)
        .collect();
    match best.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "The header ({}) matches no SSDA903 table: each needs all its columns, e.g. Episodes needs CHILD, DECOM, RNE, LS, CIN, PLACE, PLACE_PROVIDER, DEC, REC, REASON_PLACE_CHANGE, HOME_POST, PL_POST, URN. Check the file is a 903 table and that no column was renamed.",
            header.join(",")
        )),
        several => Err(format!(
            "The header fits several SSDA903 tables equally ({}): remove the extra columns so one table is clear.",
            several
                .iter()
                .map(|t| t.label)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The outcome of one 903 file: one table.
pub struct Ingested903 {
    /// Accounting and issues.
    pub ingested: Ingested,
    /// The detected table and its good rows (`None` when the file was rejected).
    pub table: Option<(&'static Table, RecordBatch)>,
}

/// Reads one 903 CSV file. Never fails: an unreadable file or an unrecognised header comes
/// back with `rejected` set.
pub fn ingest(bytes: &[u8], file: &FileMeta, ctx: &Context) -> Ingested903 {
    let rejected = |rule: Rule, message: String, rows_read: u64| Ingested903 {
        ingested: Ingested::rejected_file(ExtractKind::Ssda903, rule, message, rows_read),
        table: None,
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return rejected(Rule::F001, "The file is empty.".into(), 0);
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(e) => return rejected(Rule::F001, format!("The header cannot be read: {e}."), 0),
    };
    let table = match detect(&header) {
        Ok(t) => t,
        Err(message) => return rejected(Rule::F003, message, 0),
    };
    let positions: Vec<usize> = table
        .columns
        .iter()
        .map(|(c, _, _)| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(c))
                .expect("detected tables have every column")
        })
        .collect();
    let mut out = TableBuilder::new(table.schema());
    let mut seen = SeenKeys::default();
    let (mut rows_read, mut rows_loaded, mut rows_quarantined) = (0u64, 0u64, 0u64);
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for (i, record) in reader.records().enumerate() {
        let row_number = i as u64 + 2;
        rows_read += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows_quarantined += 1;
                errors.push(issue(
                    row_number,
                    0,
                    "",
                    "",
                    Rule::E014,
                    format!("The record cannot be read: {e}."),
                    None,
                    None,
                ));
                continue;
            }
        };
        let offset = record.position().map_or(0, |p| p.byte());
        let mut row = Row {
            ctx,
            file,
            row_number,
            offset,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let values: Vec<Value> = table
            .columns
            .iter()
            .zip(&positions)
            .map(|((header, name, col), &p)| {
                row.value(record.get(p).unwrap_or(""), header, name, *col)
            })
            .collect();
        if !table.key.is_empty() && row.errors.is_empty() {
            let key: Vec<&str> = table
                .key
                .iter()
                .map(|k| {
                    record
                        .get(
                            positions[table
                                .columns
                                .iter()
                                .position(|(c, _, _)| c == k)
                                .expect("key column")],
                        )
                        .unwrap_or("")
                        .trim()
                })
                .collect();
            let hash = key_hash(&key.join("\u{1f}"));
            if let Some(first) = seen.repeat_of(hash, row_number) {
                let message = format!(
                    "Duplicate {} key ({}): first seen on row {first}.",
                    table.label,
                    table.key.join(", ")
                );
                row.errors.push(issue(
                    row_number,
                    offset,
                    "la_child_key",
                    table.key[0],
                    Rule::E005,
                    message,
                    None,
                    Some(ctx.pseudonymiser.hmac(key[0])),
                ));
            }
        }
        if row.errors.is_empty() {
            for v in values {
                out.value(v);
            }
            out.str(Some(&file.source))
                .str(Some(&file.sha256))
                .int(Some(row_number as i64));
            out.end_row();
            rows_loaded += 1;
            warnings.append(&mut row.warnings);
        } else {
            rows_quarantined += 1;
            errors.append(&mut row.errors);
        }
    }
    Ingested903 {
        ingested: Ingested {
            rows_read,
            rows_loaded,
            batch: RecordBatch::new_empty(table.schema()),
            rows_quarantined,
            errors,
            warnings,
            rejected: None,
        },
        table: Some((table, out.finish())),
    }
}

#[allow(clippy::too_many_arguments)]
fn issue(
    row_number: u64,
    byte_offset: u64,
    field: &str,
    column: &str,
    rule: Rule,
    message: String,
    value_preview: Option<String>,
    value_hmac: Option<String>,
) -> Issue {
    Issue {
        row_number,
        byte_offset,
        field: field.to_string(),
        source_column: column.to_string(),
        rule,
        message,
        value_preview,
        value_hmac,
        xml_path: None,
        place: Placement::default(),
    }
}

struct Row<'a> {
    ctx: &'a Context,
    file: &'a FileMeta,
    row_number: u64,
    offset: u64,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
}

impl Row<'_> {
    fn fault(
        &mut self,
        field: &str,
        column: &str,
        rule: Rule,
        message: String,
        raw: &str,
        identifying: bool,
    ) {
        let (preview, hmac) = if identifying {
            (None, Some(self.ctx.pseudonymiser.hmac(raw)))
        } else {
            (Some(raw.chars().take(64).collect()), None)
        };
        let i = issue(
            self.row_number,
            self.offset,
            field,
            column,
            rule,
            message,
            preview,
            hmac,
        );
        match rule.severity() {
            Severity::Warning | Severity::Info => self.warnings.push(i),
            _ => self.errors.push(i),
        }
    }

    fn value(&mut self, raw: &str, header: &str, name: &str, col: Col) -> Value {
        let raw = raw.trim();
        if raw.is_empty() {
            if col == Col::Child {
                self.fault(
                    name,
                    header,
                    Rule::E001,
                    "CHILD is missing; every 903 record needs the LA child id.".into(),
                    raw,
                    false,
                );
            }
            return match col {
                Col::Date | Col::FutureDate => Value::Date(None),
                Col::Flag => Value::Bool(None),
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
            Col::Date | Col::FutureDate => match NaiveDate::parse_from_str(raw, "%d/%m/%Y") {
                Ok(d) if col == Col::Date && d > self.file.as_at => {
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
                Ok(d) => Value::Date(Some(d)),
                Err(_) => {
                    self.fault(
                        name,
                        header,
                        Rule::E002,
                        format!("{header} {raw:?} is not a dd/mm/yyyy date."),
                        raw,
                        false,
                    );
                    Value::Date(None)
                }
            },
            Col::Code(list) => {
                let code = raw.to_uppercase();
                if self.ctx.has_code(list, &code) {
                    Value::Str(Some(code))
                } else {
                    self.fault(name, header, Rule::E004, format!("{header} {raw:?} is not in the {list} code list (reference/ssda903_codes.csv)."), raw, false);
                    Value::Str(None)
                }
            }
            Col::Sex => match raw {
                "1" => Value::Str(Some("male".into())),
                "2" => Value::Str(Some("female".into())),
                _ => {
                    self.fault(
                        name,
                        header,
                        Rule::E004,
                        format!("{header} {raw:?} is not 1 (male) or 2 (female)."),
                        raw,
                        false,
                    );
                    Value::Str(None)
                }
            },
            Col::Flag => match raw {
                "1" => Value::Bool(Some(true)),
                "0" => Value::Bool(Some(false)),
                _ => {
                    self.fault(
                        name,
                        header,
                        Rule::E010,
                        format!("{header} {raw:?} is not 0 or 1."),
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
            Col::Upn => match checks::upn(raw) {
                Some(upn) => Value::Str(Some(self.ctx.pseudonymiser.upn(&upn))),
                None => {
                    self.fault(name, header, Rule::E013, format!("{header} is not a valid UPN (13 characters with a correct check letter): correct it, or leave it blank."), raw, true);
                    Value::Str(None)
                }
            },
            Col::Outward => Value::Str(Some(outward(raw))),
            Col::Text => Value::Str(Some(raw.to_string())),
        }
    }
}

/// Every 903 table's curated name, for registering absent tables.
pub fn table_names() -> Vec<&'static str> {
    TABLES.iter().map(|t| t.name).collect()
}

/// The outward code of a full or partial postcode: the part before the space, or all but
/// the last three characters of an unspaced full postcode.
fn outward(raw: &str) -> String {
    let upper = raw.to_uppercase();
    match upper.split_once(' ') {
        Some((out, _)) => out.to_string(),
        None if upper.len() >= 5 => upper[..upper.len() - 3].to_string(),
        None => upper,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(cols: &str) -> Vec<String> {
        cols.split(',').map(str::to_string).collect()
    }

    #[test]
    fn tables_are_detected_from_headers() {
        assert_eq!(
            detect(&h("CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB"))
                .unwrap()
                .label,
            "Header"
        );
        // Shuffled, lower case, with an extra column.
        assert_eq!(detect(&h("dob,child,duc,sex,NOTE")).unwrap().label, "UASC");
        // Header columns are a superset of UASC's but lack DUC: Header, not UASC.
        assert_eq!(
            detect(&h("CHILD,DOB,REVIEW,REVIEW_CODE")).unwrap().label,
            "Reviews"
        );
        assert!(
            detect(&h("CHILD,DOB,DOLO_START,DOLO_END"))
                .unwrap_err()
                .contains("matches no")
        );
        // Fits UASC and Reviews (four columns each) equally: ambiguous.
        let tie = detect(&h("CHILD,DOB,SEX,DUC,REVIEW,REVIEW_CODE")).unwrap_err();
        assert!(tie.contains("UASC, Reviews"), "{tie}");
    }

    #[test]
    fn outward_codes() {
        assert_eq!(outward("EG19 7TT"), "EG19");
        assert_eq!(outward("c251yt"), "C25");
        assert_eq!(outward("LE1"), "LE1");
    }
}
