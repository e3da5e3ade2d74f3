//! Reads a canonical (or mapped) CSV file with the `csv` crate and presents each record as
//! canonical field values: columns renamed, nulls applied, code values translated.

use super::{Field, Issue, Mapping, Placement, Req};
use crate::rules::Rule;

/// Location of a record in its file.
#[derive(Debug, Clone, Copy)]
pub struct Pos {
    /// 1-based record number; the header is record 1, so the first data row is 2.
    pub row_number: u64,
    /// Byte offset of the record's first byte.
    pub byte_offset: u64,
}

/// A CSV reader positioned after the header.
pub struct MappedCsv<'a, R: std::io::Read> {
    reader: csv::Reader<std::io::BufReader<R>>,
    /// For each canonical field, the column index in the file (None = column absent).
    index: Vec<Option<usize>>,
    /// For each canonical field, its file-level constant (looked up once, not per record).
    constants: Vec<Option<&'a str>>,
    /// For each canonical field, its value translation map.
    value_maps: Vec<Option<&'a std::collections::HashMap<String, String>>>,
    /// Added to row numbers and byte offsets when this reader reads a later part of a file.
    shift: (u64, u64),
    /// For each canonical field, the source header it was read from.
    source_names: Vec<String>,
    header_len: usize,
    mapping: &'a Mapping,
    fields: &'static [Field],
    fatal: bool,
}

impl<'a, R: std::io::Read> MappedCsv<'a, R> {
    /// Opens `bytes`, reads the header and resolves every canonical field to a column.
    /// File-level faults come back as `(rule, message)`.
    pub fn open(
        input: R,
        fields: &'static [Field],
        mapping: &'a Mapping,
    ) -> Result<Self, (Rule, String)> {
        use std::io::BufRead as _;
        let mut input = std::io::BufReader::with_capacity(1 << 20, input);
        let head = input
            .fill_buf()
            .map_err(|e| (Rule::F001, format!("The file cannot be read: {e}.")))?;
        if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Err((
                Rule::F001,
                "The file is UTF-16 encoded; export it as UTF-8 (CSV UTF-8 in Excel).".into(),
            ));
        }
        if head.iter().all(u8::is_ascii_whitespace) {
            return Err((
                Rule::F001,
                "The file is empty; it must start with a header row.".into(),
            ));
        }
        if head.starts_with(b"\xEF\xBB\xBF") {
            input.consume(3);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(input);
        let header = reader
            .byte_headers()
            .map_err(|e| (Rule::F001, format!("The header row cannot be read: {e}.")))?
            .clone();
        let header: Vec<String> = header
            .iter()
            .map(|h| std::str::from_utf8(h).map(|s| s.trim().to_lowercase()))
            .collect::<Result<_, _>>()
            .map_err(|_| {
                (
                    Rule::F001,
                    "The header row is not valid UTF-8; export the file as UTF-8.".into(),
                )
            })?;
        let mut index = Vec::with_capacity(fields.len());
        let mut source_names = Vec::with_capacity(fields.len());
        let mut missing = Vec::new();
        for f in fields {
            let source = mapping
                .columns
                .get(f.name)
                .map(String::as_str)
                .unwrap_or(f.name);
            let i = header
                .iter()
                .position(|h| *h == source.trim().to_lowercase());
            if i.is_none() && f.req == Req::Yes && !mapping.constants.contains_key(f.name) {
                missing.push(if source == f.name {
                    format!("{:?}", f.name)
                } else {
                    format!("{:?} (mapped from {:?})", source, f.name)
                });
            }
            index.push(i);
            source_names.push(source.to_string());
        }
        if !missing.is_empty() {
            return Err((
                Rule::F002,
                format!(
                    "Required column(s) {} missing; the header has {:?}. Rename the column in the export or map it under [source.columns].",
                    missing.join(", "),
                    header
                ),
            ));
        }
        let header_len = header.len();
        let constants = fields
            .iter()
            .map(|f| mapping.constants.get(f.name).map(String::as_str))
            .collect();
        let value_maps = fields.iter().map(|f| mapping.values.get(f.name)).collect();
        Ok(Self {
            reader,
            index,
            constants,
            value_maps,
            source_names,
            header_len,
            mapping,
            fields,
            fatal: false,
            shift: (0, 0),
        })
    }

    /// Positions reported from now on are shifted by `rows` records and `bytes` bytes: for a
    /// reader given the header followed by a later part of the file.
    pub fn shifted(mut self, rows: u64, bytes: u64) -> Self {
        self.shift = (rows, bytes);
        self
    }

    /// The source column of each canonical field, in field order.
    pub fn source_names(&self) -> &[String] {
        &self.source_names
    }

    /// Whether the last error stops the file (an I/O error, as opposed to a bad record).
    pub fn fatal(&self) -> bool {
        self.fatal
    }

    /// Reads the next record. A malformed record (bad quoting, wrong field count) comes back
    /// as an E014 issue; the reader carries on with the next one.
    pub fn next_record(&mut self, record: &mut csv::ByteRecord) -> Result<Option<Pos>, Issue> {
        match self.reader.read_byte_record(record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let p = record.position().expect("csv records carry a position");
                let pos = Pos {
                    row_number: p.record() + 1 + self.shift.0,
                    byte_offset: p.byte() + self.shift.1,
                };
                if record.len() != self.header_len {
                    return Err(malformed(
                        pos,
                        format!(
                            "The record has {} fields but the header has {}; check for unquoted commas or a truncated line.",
                            record.len(),
                            self.header_len
                        ),
                    ));
                }
                Ok(Some(pos))
            }
            Err(e) => {
                let pos = e
                    .position()
                    .map(|p| Pos {
                        row_number: p.record() + 1 + self.shift.0,
                        byte_offset: p.byte() + self.shift.1,
                    })
                    .unwrap_or(Pos {
                        row_number: 0,
                        byte_offset: 0,
                    });
                self.fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                Err(malformed(
                    pos,
                    format!("The record cannot be parsed as CSV ({e}); check its quoting."),
                ))
            }
        }
    }

    /// Canonical values of `record`: trimmed, nulls as `None`, constants filled in, code
    /// values translated by the mapping.
    pub fn map_record<'r>(
        &'r self,
        record: &'r csv::ByteRecord,
        pos: Pos,
    ) -> Result<Vec<Option<&'r str>>, Issue> {
        let mut values = Vec::with_capacity(self.fields.len());
        for (k, (f, i)) in self.fields.iter().zip(&self.index).enumerate() {
            let raw = match i {
                Some(i) => {
                    let bytes = record.get(*i).unwrap_or_default();
                    let s = std::str::from_utf8(bytes).map_err(|_| {
                        let mut issue = malformed(
                            pos,
                            format!(
                                "Field {:?} is not valid UTF-8; re-export the file as UTF-8.",
                                f.name
                            ),
                        );
                        issue.field = f.name.to_string();
                        issue
                    })?;
                    let s = s.trim();
                    if s.is_empty() || self.mapping.nulls.iter().any(|n| n == s) {
                        None
                    } else {
                        Some(s)
                    }
                }
                None => None,
            };
            let raw = raw.or(self.constants[k]);
            let mapped = match (raw, self.value_maps[k]) {
                (Some(v), Some(map)) => Some(map.get(v).map(String::as_str).unwrap_or(v)),
                (v, _) => v,
            };
            values.push(mapped);
        }
        Ok(values)
    }
}

fn malformed(pos: Pos, message: String) -> Issue {
    Issue {
        row_number: pos.row_number,
        byte_offset: pos.byte_offset,
        field: String::new(),
        source_column: String::new(),
        rule: Rule::E014,
        message,
        value_preview: None,
        value_hmac: None,
        xml_path: None,
        place: Placement::default(),
    }
}
