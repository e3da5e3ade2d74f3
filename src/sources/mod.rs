//! Ingest: one module per extract kind, all with the same entry point.
//!
//! ```text
//!  bytes ──► reader (csv crate, mapping applied) ──► kind::row() per record ──► Ingested
//!                                                        │                      ├ batch (good rows)
//!                                                        └─ RowCheck issues ───► ├ quarantine (E)
//!                                                                                └ warnings (W)
//! ```
//!
//! Invariants: this module opens nothing itself (it takes readers and returns batches and
//! issues; its only writes are the temporary key runs of large files, [`seen`]); bad
//! rows never fail the ingest; clear identifiers never appear in an [`Issue`] (identifying
//! fields carry an HMAC of the value instead of a preview).

pub mod builder;
pub mod check;
pub mod context;
pub mod reader;
pub mod seen;

pub mod activities;
pub mod annex_a;
pub mod asq3;
pub mod attendances;
pub mod centre_groups;
pub mod centres;
pub mod chis;
pub mod cin;
pub mod early_help;
pub mod eyfsp;
pub mod finance;
pub mod hv_contacts;
pub mod ofsted_inspections;
pub mod reach_areas;
pub mod reference_files;
pub mod registrations;
pub mod sc_person_identifiers;
pub mod ssda903;
pub mod xml;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use builder::{ColType, TableBuilder};
pub use check::RowCheck;
pub use context::Context;
pub use seen::{KeyHash, PrehashedKey, SeenKeys, key_hash};

use crate::rules::Rule;

/// The canonical extract kinds (extracts.md §3–4). The serde name is the `canonical` value
/// of a `[[source]]` and the name of the curated table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractKind {
    /// Children's centre sites.
    Centres,
    /// LSOAs each centre is responsible for.
    ReachAreas,
    /// Children's centre groups (evaluated together).
    CentreGroups,
    /// Costs of each site (and CENTRAL) per financial year.
    CentreCosts,
    /// Commissioned contracts (lots).
    Contracts,
    /// Real Ofsted inspections of centres and groups.
    OfstedInspections,
    /// Activity catalogue.
    Activities,
    /// People registered with a centre.
    Registrations,
    /// One row per person per session.
    Attendances,
    /// Child health register.
    Chis,
    /// Health visiting contacts.
    HvContacts,
    /// ASQ-3 scores at the 2–2½ year review.
    Asq3,
    /// DfE Children in Need census (XML; fills the `cin_*` tables).
    CinCensus,
    /// SSDA903 children looked after CSVs (each file's table detected from its header).
    Ssda903,
    /// Per-pupil EYFS Profile results (GLD derived here).
    Eyfsp,
    /// Identifiers of social care children from the case-management system (linkage only).
    ScPersonIdentifiers,
    /// Early help episodes (Annex A list 2 and our additions).
    EarlyHelpEpisodes,
    /// Ofsted ILACS Annex A workbook (lists 1–3 and 6–8 into `annex_a_list*`).
    AnnexA,
    /// English Indices of Deprivation, File 7 (public).
    Iod,
    /// Postcode directory: ONSPD, NSPL or NHSPD (public).
    Postcodes,
    /// ONS LSOA 2011→2021 lookup (public).
    LsoaLookup,
    /// ONS LSOA mid-year population by single year of age (public).
    LsoaPopulation,
}

impl ExtractKind {
    /// Every kind, in dependency order (a kind only references kinds before it).
    pub const ALL: &'static [ExtractKind] = &[
        ExtractKind::Postcodes,
        ExtractKind::LsoaLookup,
        ExtractKind::Iod,
        ExtractKind::LsoaPopulation,
        ExtractKind::Centres,
        ExtractKind::ReachAreas,
        ExtractKind::CentreGroups,
        ExtractKind::CentreCosts,
        ExtractKind::Contracts,
        ExtractKind::OfstedInspections,
        ExtractKind::Activities,
        ExtractKind::Registrations,
        ExtractKind::Attendances,
        ExtractKind::Chis,
        ExtractKind::HvContacts,
        ExtractKind::Asq3,
        ExtractKind::CinCensus,
        ExtractKind::Ssda903,
        ExtractKind::Eyfsp,
        ExtractKind::ScPersonIdentifiers,
        ExtractKind::EarlyHelpEpisodes,
        ExtractKind::AnnexA,
    ];

    /// Extracts a council may not have: queries see an empty table until one is loaded.
    pub const OPTIONAL: &'static [ExtractKind] = &[
        ExtractKind::CentreGroups,
        ExtractKind::CentreCosts,
        ExtractKind::Contracts,
        ExtractKind::OfstedInspections,
        ExtractKind::CinCensus,
        ExtractKind::Ssda903,
        ExtractKind::Eyfsp,
        ExtractKind::ScPersonIdentifiers,
        ExtractKind::EarlyHelpEpisodes,
        ExtractKind::AnnexA,
    ];

    /// The canonical name, also the curated table name.
    pub fn name(self) -> &'static str {
        match self {
            ExtractKind::Centres => "centres",
            ExtractKind::ReachAreas => "reach_areas",
            ExtractKind::CentreGroups => "centre_groups",
            ExtractKind::CentreCosts => "centre_costs",
            ExtractKind::Contracts => "contracts",
            ExtractKind::OfstedInspections => "ofsted_inspections",
            ExtractKind::Activities => "activities",
            ExtractKind::Registrations => "registrations",
            ExtractKind::Attendances => "attendances",
            ExtractKind::Chis => "chis",
            ExtractKind::HvContacts => "hv_contacts",
            ExtractKind::Asq3 => "asq3",
            ExtractKind::CinCensus => "cin_census",
            ExtractKind::Ssda903 => "ssda903",
            ExtractKind::Eyfsp => "eyfsp",
            ExtractKind::ScPersonIdentifiers => "sc_person_identifiers",
            ExtractKind::EarlyHelpEpisodes => "early_help_episodes",
            ExtractKind::AnnexA => "annex_a",
            ExtractKind::Iod => "iod",
            ExtractKind::Postcodes => "postcodes",
            ExtractKind::LsoaLookup => "lsoa_lookup",
            ExtractKind::LsoaPopulation => "lsoa_population",
        }
    }

    /// Parses a canonical name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The canonical input fields.
    pub fn fields(self) -> &'static [Field] {
        match self {
            ExtractKind::Centres => centres::FIELDS,
            ExtractKind::ReachAreas => reach_areas::FIELDS,
            ExtractKind::CentreGroups => centre_groups::FIELDS,
            ExtractKind::CentreCosts => finance::COST_FIELDS,
            ExtractKind::Contracts => finance::CONTRACT_FIELDS,
            ExtractKind::OfstedInspections => ofsted_inspections::FIELDS,
            ExtractKind::Activities => activities::FIELDS,
            ExtractKind::Registrations => registrations::FIELDS,
            ExtractKind::Attendances => attendances::FIELDS,
            ExtractKind::Chis => chis::FIELDS,
            ExtractKind::HvContacts => hv_contacts::FIELDS,
            ExtractKind::Asq3 => asq3::FIELDS,
            // Not a CSV: the census has its own reader (cin::ingest).
            ExtractKind::CinCensus => cin::FIELDS,
            // Columns are fixed by the 903 specification and detected per file.
            ExtractKind::Ssda903 => &[],
            ExtractKind::Eyfsp => eyfsp::FIELDS,
            ExtractKind::ScPersonIdentifiers => sc_person_identifiers::FIELDS,
            ExtractKind::EarlyHelpEpisodes => early_help::FIELDS,
            // Sheets and columns are found from the Annex A headers.
            ExtractKind::AnnexA => &[],
            ExtractKind::Iod => reference_files::IOD_FIELDS,
            ExtractKind::Postcodes => reference_files::POSTCODE_FIELDS,
            ExtractKind::LsoaLookup => reference_files::LOOKUP_FIELDS,
            ExtractKind::LsoaPopulation => reference_files::POPULATION_FIELDS,
        }
    }

    /// The curated table schema, lineage columns included.
    pub fn schema(self) -> SchemaRef {
        match self {
            ExtractKind::CinCensus => return cin::schema("cin_header"),
            ExtractKind::Ssda903 => return ssda903::TABLES[0].schema(),
            ExtractKind::AnnexA => return annex_a::LISTS[0].schema(),
            _ => {}
        }
        let mut cols: Vec<(&str, ColType)> = match self {
            ExtractKind::Centres => centres::COLUMNS,
            ExtractKind::ReachAreas => reach_areas::COLUMNS,
            ExtractKind::CentreGroups => centre_groups::COLUMNS,
            ExtractKind::CentreCosts => finance::COST_COLUMNS,
            ExtractKind::Contracts => finance::CONTRACT_COLUMNS,
            ExtractKind::OfstedInspections => ofsted_inspections::COLUMNS,
            ExtractKind::Activities => activities::COLUMNS,
            ExtractKind::Registrations => registrations::COLUMNS,
            ExtractKind::Attendances => attendances::COLUMNS,
            ExtractKind::Chis => chis::COLUMNS,
            ExtractKind::HvContacts => hv_contacts::COLUMNS,
            ExtractKind::Asq3 => asq3::COLUMNS,
            ExtractKind::CinCensus | ExtractKind::Ssda903 | ExtractKind::AnnexA => {
                unreachable!("returned above")
            }
            ExtractKind::Eyfsp => eyfsp::COLUMNS,
            ExtractKind::ScPersonIdentifiers => sc_person_identifiers::COLUMNS,
            ExtractKind::EarlyHelpEpisodes => early_help::COLUMNS,
            ExtractKind::Iod => reference_files::IOD_COLUMNS,
            ExtractKind::Postcodes => reference_files::POSTCODE_COLUMNS,
            ExtractKind::LsoaLookup => reference_files::LOOKUP_COLUMNS,
            ExtractKind::LsoaPopulation => reference_files::POPULATION_COLUMNS,
        }
        .to_vec();
        cols.extend(LINEAGE_COLUMNS);
        builder::schema(&cols)
    }

    /// Whether files of this kind carry personal data (and so are never copied raw into the
    /// lake's landing area).
    pub fn personal(self) -> bool {
        matches!(
            self,
            ExtractKind::Registrations
                | ExtractKind::Attendances
                | ExtractKind::Chis
                | ExtractKind::HvContacts
                | ExtractKind::Asq3
                | ExtractKind::CinCensus
                | ExtractKind::Ssda903
                | ExtractKind::Eyfsp
                | ExtractKind::ScPersonIdentifiers
                | ExtractKind::EarlyHelpEpisodes
                | ExtractKind::AnnexA
        )
    }

    /// Whether files of this kind fill several tables, or a table known only after reading
    /// the file; they are read by [`ingest_tables`].
    pub fn multi_table(self) -> bool {
        matches!(
            self,
            ExtractKind::CinCensus | ExtractKind::Ssda903 | ExtractKind::AnnexA
        )
    }

    /// The schema of one of [`ExtractKind::tables`].
    pub fn table_schema(self, table: &str) -> SchemaRef {
        match self {
            ExtractKind::CinCensus => cin::schema(table),
            ExtractKind::Ssda903 => ssda903::table(table)
                .unwrap_or_else(|| panic!("{table} is not a 903 table"))
                .schema(),
            ExtractKind::AnnexA => annex_a::list(table)
                .unwrap_or_else(|| panic!("{table} is not an Annex A table"))
                .schema(),
            k => k.schema(),
        }
    }

    /// The curated tables a file of this kind fills, in commit order; the last one's commit
    /// marks the file as ingested. One table (the kind's own) for CSV kinds.
    pub fn tables(self) -> Vec<&'static str> {
        match self {
            ExtractKind::CinCensus => cin::TABLES.iter().map(|(n, _)| *n).collect(),
            ExtractKind::Ssda903 => ssda903::TABLES.iter().map(|t| t.name).collect(),
            ExtractKind::AnnexA => annex_a::LISTS.iter().map(|l| l.name).collect(),
            k => vec![k.name()],
        }
    }

    /// The tables of which one holding a file's transaction means the file was ingested.
    pub fn marker_tables(self) -> Vec<&'static str> {
        match self {
            // Each 903 file fills the one table detected from its header.
            ExtractKind::Ssda903 => self.tables(),
            k => k.tables().last().copied().into_iter().collect(),
        }
    }

    /// Whether this kind is a public reference file rather than a council extract.
    pub fn is_reference(self) -> bool {
        matches!(
            self,
            ExtractKind::Iod
                | ExtractKind::Postcodes
                | ExtractKind::LsoaLookup
                | ExtractKind::LsoaPopulation
        )
    }

    /// The published header of each field, where the kind reads a public file.
    pub fn default_columns(self, vintage: u16) -> Vec<(&'static str, String)> {
        match self {
            ExtractKind::Iod => reference_files::iod_default_columns(vintage),
            _ => Vec::new(),
        }
    }

    fn row(self, r: &mut RowCheck<'_>, out: &mut TableBuilder, state: &mut KindState) -> bool {
        match self {
            ExtractKind::Centres => centres::row(r, out, state),
            ExtractKind::ReachAreas => reach_areas::row(r, out, state),
            ExtractKind::CentreGroups => centre_groups::row(r, out, state),
            ExtractKind::CentreCosts => finance::cost_row(r, out, state),
            ExtractKind::Contracts => finance::contract_row(r, out, state),
            ExtractKind::OfstedInspections => ofsted_inspections::row(r, out, state),
            ExtractKind::Activities => activities::row(r, out, state),
            ExtractKind::Registrations => registrations::row(r, out, state),
            ExtractKind::Attendances => attendances::row(r, out, state),
            ExtractKind::Chis => chis::row(r, out, state),
            ExtractKind::HvContacts => hv_contacts::row(r, out, state),
            ExtractKind::Asq3 => asq3::row(r, out, state),
            ExtractKind::Eyfsp => eyfsp::row(r, out, state),
            ExtractKind::ScPersonIdentifiers => sc_person_identifiers::row(r, out, state),
            ExtractKind::EarlyHelpEpisodes => early_help::row(r, out, state),
            ExtractKind::CinCensus | ExtractKind::Ssda903 | ExtractKind::AnnexA => {
                unreachable!("{self} files are read by ingest_tables")
            }
            ExtractKind::Iod => {
                let vintage = state.vintage;
                reference_files::iod_row(r, out, state, vintage)
            }
            ExtractKind::Postcodes => reference_files::postcode_row(r, out, state),
            ExtractKind::LsoaLookup => reference_files::lookup_row(r, out, state),
            ExtractKind::LsoaPopulation => {
                let vintage = state.vintage;
                reference_files::population_row(r, out, state, vintage)
            }
        }
    }
}

impl fmt::Display for ExtractKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Lineage columns appended to every curated table.
pub const LINEAGE_COLUMNS: &[(&str, ColType)] = &[
    ("_source", ColType::Str),
    ("_file_sha256", ColType::Str),
    ("_row_number", ColType::Int),
];

/// Whether a canonical field must be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Req {
    /// Required: its column must exist (F002) and every record must fill it (E001).
    Yes,
    /// Conditionally required: the kind module checks the condition.
    Cond,
    /// Optional.
    No,
}

/// A canonical input field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Canonical name.
    pub name: &'static str,
    /// Whether it is required.
    pub req: Req,
    /// Whether its values identify a person (never previewed in quarantine).
    pub identifying: bool,
}

/// Shorthand for field tables.
pub const fn field(name: &'static str, req: Req) -> Field {
    Field {
        name,
        req,
        identifying: false,
    }
}

/// Shorthand for an identifying field.
pub const fn pii(name: &'static str, req: Req) -> Field {
    Field {
        name,
        req,
        identifying: true,
    }
}

/// How a council's export maps onto a canonical table (extracts.md §2), resolved.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Canonical field → source header.
    pub columns: HashMap<String, String>,
    /// Canonical field → (source value → canonical value).
    pub values: HashMap<String, HashMap<String, String>>,
    /// Canonical field → file-level constant (used when the column is absent or blank).
    pub constants: HashMap<String, String>,
    /// Values read as null (after trimming); the empty string is always null.
    pub nulls: Vec<String>,
    /// Date formats tried in order (chrono `strftime` syntax); default `%Y-%m-%d`.
    pub date_formats: Vec<String>,
    /// Namespace of local person ids (`key_local`).
    pub namespace: String,
    /// LSOA vintage of LSOA codes in the file (2011 or 2021).
    pub lsoa_vintage: u16,
}

/// Where a file came from; stamped on every row and issue.
#[derive(Debug, Clone)]
pub struct FileMeta {
    /// Mapping source name, e.g. `cc_registrations`.
    pub source: String,
    /// Path of the file as given (relative to the extracts folder).
    pub path: String,
    /// SHA-256 of the bytes.
    pub sha256: String,
    /// As-at date: "future" means after it.
    pub as_at: NaiveDate,
}

/// One rule broken by one field of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// 1-based record number (header = 1); 0 for file-level issues.
    pub row_number: u64,
    /// Byte offset of the record in the file.
    pub byte_offset: u64,
    /// Canonical field name (empty for record- or file-level issues).
    pub field: String,
    /// The source column the field was read from.
    pub source_column: String,
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong and how to fix it; never contains a clear identifier.
    pub message: String,
    /// Raw value of a non-identifying field, truncated to 64 characters.
    pub value_preview: Option<String>,
    /// HMAC of the raw value of an identifying field.
    pub value_hmac: Option<String>,
    /// For XML files: the element path (`row_number` is then the line).
    pub xml_path: Option<String>,
    /// Where the record belongs, when its extract says (data quality by centre, DQ-02).
    pub place: Placement,
}

/// The centre and date of a quarantined record, read from its own fields when they parse:
/// non-identifying, and what DQ-02 needs to charge a rejected row to a centre and period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// The record's `centre_id` as written.
    pub centre_id: Option<String>,
    /// Its session date (attendances) or registration date (registrations).
    pub record_date: Option<NaiveDate>,
}

/// Per-file state carried across records by a kind (duplicate keys and the like).
#[derive(Default)]
pub struct KindState {
    /// First row seen for each key (E005).
    pub seen: SeenKeys,
    /// LSOA vintage of the source (2011 or 2021).
    pub vintage: u16,
}

/// The result of ingesting one file.
#[derive(Debug)]
pub struct Ingested {
    /// Records read (header excluded).
    pub rows_read: u64,
    /// Records that passed validation (0 when the file is rejected).
    pub rows_loaded: u64,
    /// Good records, when collected by [`ingest`]; empty from [`ingest_stream`], whose
    /// batches went to its sink.
    pub batch: RecordBatch,
    /// Records quarantined (each has at least one E issue).
    pub rows_quarantined: u64,
    /// E issues, one per failing field and rule.
    pub errors: Vec<Issue>,
    /// W issues on loaded records.
    pub warnings: Vec<Issue>,
    /// Set when the whole file is rejected (F rules); then nothing from it may be committed.
    pub rejected: Option<Issue>,
}

impl Ingested {
    /// Records loaded.
    pub fn rows_loaded(&self) -> u64 {
        self.rows_loaded
    }

    /// The accounting invariant: every record read is loaded, quarantined or in a rejected
    /// file.
    pub fn balanced(&self) -> bool {
        let rejected = if self.rejected.is_some() {
            self.rows_read - self.rows_quarantined
        } else {
            0
        };
        self.rows_read == self.rows_loaded + self.rows_quarantined + rejected
    }

    /// A file that could not be opened at all (F001).
    pub fn unreadable(kind: ExtractKind, message: String) -> Self {
        Self::rejected_file(kind, Rule::F001, message, 0)
    }

    pub(crate) fn rejected_file(
        kind: ExtractKind,
        rule: Rule,
        message: String,
        rows_read: u64,
    ) -> Self {
        Ingested {
            rows_read,
            rows_loaded: 0,
            batch: RecordBatch::new_empty(kind.schema()),
            rows_quarantined: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
            rejected: Some(Issue {
                row_number: 0,
                byte_offset: 0,
                field: String::new(),
                source_column: String::new(),
                rule,
                message,
                value_preview: None,
                value_hmac: None,
                xml_path: None,
                place: Placement::default(),
            }),
        }
    }
}

/// The outcome of a file read by [`ingest_tables`]: the accounting and issues (its `batch`
/// unused) and the good rows of each table filled, in commit order.
pub struct TablesIngested {
    /// Accounting and issues.
    pub ingested: Ingested,
    /// `(curated table, rows)`; empty when the file was rejected.
    pub tables: Vec<(&'static str, RecordBatch)>,
}

/// Reads a file of a [`ExtractKind::multi_table`] kind held in memory. Never fails and never
/// panics out: a reader panic rejects the file alone (F001).
pub fn ingest_tables(
    kind: ExtractKind,
    bytes: &[u8],
    file: &FileMeta,
    mapping: &Mapping,
    ctx: &Context,
    max_quarantine_ratio: f64,
) -> Result<TablesIngested, String> {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match kind {
        ExtractKind::CinCensus => {
            let expected = match mapping.constants.get("reference_date") {
                Some(d) => Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                    format!(
                        "reference_date {d:?} of source {} is not YYYY-MM-DD",
                        file.source
                    )
                })?),
                None => None,
            };
            Ok(cin::ingest(bytes, file, ctx, expected))
        }
        ExtractKind::Ssda903 => {
            let out = ssda903::ingest(bytes, file, ctx);
            Ok(TablesIngested {
                ingested: out.ingested,
                tables: out.table.map(|(t, b)| (t.name, b)).into_iter().collect(),
            })
        }
        ExtractKind::AnnexA => Ok(annex_a::ingest(bytes, file, ctx)),
        other => Err(format!("{other} is read as CSV, not by ingest_tables")),
    }));
    match run {
        Ok(Ok(out)) => {
            // F005 as for CSV files: mostly-bad files are a mapping or export error.
            let ingested = finish(kind, Ok(out.ingested), file, max_quarantine_ratio);
            let tables = if ingested.rejected.is_some() {
                Vec::new()
            } else {
                out.tables
            };
            Ok(TablesIngested { ingested, tables })
        }
        Ok(Err(message)) => Err(message),
        Err(panic) => Ok(TablesIngested {
            ingested: finish(kind, Err(panic), file, max_quarantine_ratio),
            tables: Vec::new(),
        }),
    }
}

/// Rows per batch handed to the sink: large enough for good Parquet row groups, small
/// enough that memory stays flat whatever the file size.
pub const BATCH_ROWS: usize = 128 * 1024;

/// Text per batch at most (checked every 1024 rows): wide records (registrations carry five
/// 64-character keys) reach it before [`BATCH_ROWS`], so a batch stays about the size of an
/// attendance batch whatever the extract.
pub const BATCH_TEXT_BYTES: usize = 24 * 1024 * 1024;

/// Ingests one file of `kind` held in memory and collects its good rows into one batch.
/// For tests and small files; the pipeline streams with [`ingest_stream`].
pub fn ingest(
    kind: ExtractKind,
    bytes: &[u8],
    file: &FileMeta,
    mapping: &Mapping,
    ctx: &Context,
    max_quarantine_ratio: f64,
) -> Ingested {
    let mut batches = Vec::new();
    let mut out = ingest_stream(
        kind,
        bytes,
        file,
        mapping,
        ctx,
        max_quarantine_ratio,
        BATCH_ROWS,
        &mut |b| {
            batches.push(b);
            true
        },
    );
    if out.rejected.is_none() {
        out.batch = arrow::compute::concat_batches(&kind.schema(), &batches)
            .expect("batches share the kind's schema");
    }
    out
}

/// Ingests one file of `kind` from `input`, handing good rows to `sink` in batches of
/// `batch_rows` as it goes. `sink` returns false to stop (its consumer failed).
///
/// Never fails: a file that cannot be read comes back with `rejected` set, and a panic
/// inside a reader rejects that file alone. A rejected file may already have sent batches
/// to the sink; the caller must not commit them.
#[allow(clippy::too_many_arguments)]
pub fn ingest_stream<R: std::io::Read>(
    kind: ExtractKind,
    input: R,
    file: &FileMeta,
    mapping: &Mapping,
    ctx: &Context,
    max_quarantine_ratio: f64,
    batch_rows: usize,
    sink: &mut dyn FnMut(RecordBatch) -> bool,
) -> Ingested {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ingest_inner(
            kind,
            input,
            (0, 0),
            SeenKeys::default(),
            file,
            mapping,
            ctx,
            batch_rows,
            sink,
        )
        .0
    }));
    finish(kind, run, file, max_quarantine_ratio)
}

/// Turns a reader's outcome (or its panic) into the file's outcome, applying F005.
fn finish(
    kind: ExtractKind,
    run: std::thread::Result<Ingested>,
    file: &FileMeta,
    max_quarantine_ratio: f64,
) -> Ingested {
    let out = match run {
        Ok(out) => out,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            return Ingested::rejected_file(
                kind,
                Rule::F001,
                format!(
                    "The reader failed on this file ({what}); the file was rejected and the rest of the run continued. Report this as a bug with the file's SHA-256."
                ),
                0,
            );
        }
    };
    if out.rejected.is_none() && out.rows_read > 0 {
        let ratio = out.rows_quarantined as f64 / out.rows_read as f64;
        if ratio > max_quarantine_ratio {
            let mut rejected = Ingested::rejected_file(
                kind,
                Rule::F005,
                format!(
                    "{} of {} records ({:.0}%) failed validation, above max_quarantine_ratio {max_quarantine_ratio}: a mapping error (column names, date format, code values) is more likely than bad data. Check the [[source]] mapping for {}; nothing from this file was loaded.",
                    out.rows_quarantined,
                    out.rows_read,
                    ratio * 100.0,
                    file.source
                ),
                out.rows_read,
            );
            // Keep the record-level reasons: they are how staff find the mapping error.
            rejected.errors = out.errors;
            rejected.rows_quarantined = out.rows_quarantined;
            return rejected;
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn ingest_inner<R: std::io::Read>(
    kind: ExtractKind,
    input: R,
    shift: (u64, u64),
    seen: SeenKeys,
    file: &FileMeta,
    mapping: &Mapping,
    ctx: &Context,
    batch_rows: usize,
    sink: &mut dyn FnMut(RecordBatch) -> bool,
) -> (Ingested, SeenKeys) {
    let mut mapping = mapping.clone();
    for (canonical, header) in kind.default_columns(mapping.lsoa_vintage) {
        mapping
            .columns
            .entry(canonical.to_string())
            .or_insert(header);
    }
    let mapping = &mapping;
    let mut reader = match reader::MappedCsv::open(input, kind.fields(), mapping) {
        Ok(r) => r.shifted(shift.0, shift.1),
        Err((rule, message)) => {
            return (
                Ingested::rejected_file(kind, rule, message, 0),
                SeenKeys::default(),
            );
        }
    };
    let mut out = TableBuilder::new(kind.schema());
    let mut state = KindState {
        seen,
        vintage: mapping.lsoa_vintage,
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let (mut rows_read, mut rows_loaded, mut rows_quarantined) = (0u64, 0u64, 0u64);
    let mut record = csv::ByteRecord::new();
    let keys = check::KeyCache::default();
    loop {
        let pos = match reader.next_record(&mut record) {
            Ok(Some(pos)) => pos,
            Ok(None) => break,
            Err(malformed) => {
                rows_read += 1;
                rows_quarantined += 1;
                errors.push(malformed);
                if reader.fatal() {
                    break;
                }
                continue;
            }
        };
        rows_read += 1;
        let values = match reader.map_record(&record, pos) {
            Ok(values) => values,
            Err(issue) => {
                rows_quarantined += 1;
                errors.push(issue);
                continue;
            }
        };
        let mut check = RowCheck::new(
            kind.fields(),
            &values,
            reader.source_names(),
            pos,
            file,
            mapping,
            ctx,
            &keys,
        );
        let pushed = kind.row(&mut check, &mut out, &mut state);
        let (errs, warns) = check.into_issues();
        if pushed {
            assert!(
                errs.is_empty(),
                "{kind} loaded row {} despite errors",
                pos.row_number
            );
            out.str(Some(&file.source))
                .str(Some(&file.sha256))
                .int(Some(pos.row_number as i64));
            out.end_row();
            rows_loaded += 1;
            warnings.extend(warns);
            let full = out.rows() >= batch_rows
                || (out.rows().is_multiple_of(1024) && out.text_bytes() >= BATCH_TEXT_BYTES);
            if full && !sink(out.finish()) {
                break;
            }
        } else {
            assert!(
                !errs.is_empty(),
                "{kind} rejected row {} without an error",
                pos.row_number
            );
            rows_quarantined += 1;
            errors.extend(errs);
        }
    }
    if out.rows() > 0 {
        sink(out.finish());
    }
    if kind == ExtractKind::Iod
        && rows_read != reference_files::iod_expected_rows(mapping.lsoa_vintage)
    {
        warnings.push(Issue {
            row_number: 0,
            byte_offset: 0,
            field: String::new(),
            source_column: String::new(),
            rule: Rule::W020,
            message: format!(
                "The IoD file has {rows_read} rows; the national file of the {} vintage has {}. Loaded, but check it is the full England file.",
                mapping.lsoa_vintage,
                reference_files::iod_expected_rows(mapping.lsoa_vintage)
            ),
            value_preview: None,
            value_hmac: None,
            xml_path: None,
            place: Placement::default(),
        });
    }
    let out = Ingested {
        rows_read,
        rows_loaded,
        batch: RecordBatch::new_empty(kind.schema()),
        rows_quarantined,
        errors,
        warnings,
        rejected: None,
    };
    (out, state.seen)
}

/// Files at least this large are worth splitting across threads with [`ingest_parallel`].
pub const PARALLEL_MIN_BYTES: u64 = 16 * 1024 * 1024;

/// What [`ingest_parallel`] did.
pub enum Parallel {
    /// The file was ingested in parts; the outcome is the same as a sequential ingest.
    Done(Ingested),
    /// The file cannot be split safely (small, blank lines) or its keys could not be
    /// logged: discard anything sent to the sink and ingest it sequentially.
    Sequential,
}

/// Opens bytes `start..end` of the file being ingested.
pub type OpenRange<'a> =
    dyn Fn(u64, u64) -> std::io::Result<Box<dyn std::io::Read + Send>> + Sync + 'a;

/// Ingests a large file in two halves on two threads, sending good rows to `sink` from
/// both. The split falls on a record boundary found by tracking quotes from the start, and
/// the second half is read after the header with its row numbers and byte offsets shifted,
/// so every row number and issue equals the sequential result.
///
/// Duplicate keys (E005) are found after both halves are read, from the keys they logged
/// (memory stays flat whatever the file's size). When some rows repeat an earlier key,
/// `restart` is called (the caller discards what the sink got; false: it cannot, and the
/// file is given up) and the halves are read again with the repeats known.
#[allow(clippy::too_many_arguments)]
pub fn ingest_parallel(
    kind: ExtractKind,
    open: &OpenRange<'_>,
    len: u64,
    file: &FileMeta,
    mapping: &Mapping,
    ctx: &Context,
    max_quarantine_ratio: f64,
    sink: &(dyn Fn(RecordBatch) -> bool + Sync),
    restart: &dyn Fn() -> bool,
) -> Parallel {
    if kind.is_reference() {
        return Parallel::Sequential;
    }
    let Ok(Some(split)) = find_split(open, len) else {
        return Parallel::Sequential;
    };
    let read = |known| {
        read_halves(
            kind,
            open,
            len,
            &split,
            known,
            file,
            mapping,
            ctx,
            max_quarantine_ratio,
            sink,
        )
    };
    let repeats = match read(None) {
        Halves::Done(out) => return Parallel::Done(out),
        Halves::Sequential => return Parallel::Sequential,
        Halves::Repeats(repeats) => repeats,
    };
    tracing::info!(
        file = file.path,
        rows = repeats.len(),
        "E005: rows repeat an earlier row's key; reading the file again to quarantine them."
    );
    if !restart() {
        return Parallel::Done(Ingested::unreadable(kind, "The writer stopped.".into()));
    }
    match read(Some(repeats)) {
        Halves::Done(out) => Parallel::Done(out),
        Halves::Sequential => Parallel::Sequential,
        Halves::Repeats(_) => unreachable!("with the repeats known, the halves log no keys"),
    }
}

/// What one read of a file's two halves gave.
#[allow(clippy::large_enum_variant)] // one per read of a large file
enum Halves {
    /// Every row checked, E005 included.
    Done(Ingested),
    /// Rows repeat an earlier row's key (found from the logged keys, not yet quarantined).
    Repeats(Arc<seen::Repeats>),
    /// A half was rejected or its keys could not be logged.
    Sequential,
}

/// Reads the two halves of a file side by side; with `known = None` the halves log their
/// keys for the E005 check after the pass, otherwise they quarantine the `known` repeats.
#[allow(clippy::too_many_arguments)]
fn read_halves(
    kind: ExtractKind,
    open: &OpenRange<'_>,
    len: u64,
    split: &Split,
    known: Option<Arc<seen::Repeats>>,
    file: &FileMeta,
    mapping: &Mapping,
    ctx: &Context,
    max_quarantine_ratio: f64,
    sink: &(dyn Fn(RecordBatch) -> bool + Sync),
) -> Halves {
    let keys = || match &known {
        Some(repeats) => SeenKeys::Known(Arc::clone(repeats)),
        None => SeenKeys::Logged(seen::KeyLog::default()),
    };
    let run = |input: Box<dyn std::io::Read + Send>, shift: (u64, u64), seen: SeenKeys| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ingest_inner(
                kind,
                input,
                shift,
                seen,
                file,
                mapping,
                ctx,
                BATCH_ROWS,
                &mut |b| sink(b),
            )
        }))
    };
    let second_input = (|| -> std::io::Result<Box<dyn std::io::Read + Send>> {
        let header = std::io::Read::chain(
            std::io::Cursor::new(split.header.clone()),
            open(split.offset, len)?,
        );
        Ok(Box::new(header))
    })();
    let (Ok(first_input), Ok(second_input)) = (open(0, split.offset), second_input) else {
        return Halves::Sequential;
    };
    // The second reader sees the header then the second half: its first data record is
    // record 2 of its input, and must be reported as `split.first_row`.
    let shift = (
        split.first_row - 2,
        split.offset - split.header.len() as u64,
    );
    let (first, second) = std::thread::scope(|s| {
        let second = s.spawn(|| run(second_input, shift, keys()));
        let first = run(first_input, (0, 0), keys());
        (first, second.join().unwrap_or_else(Err))
    });
    let (Ok((a, seen_a)), Ok((b, seen_b))) = (first, second) else {
        return Halves::Sequential;
    };
    if a.rejected.is_some() || b.rejected.is_some() {
        return Halves::Sequential;
    }
    if let (SeenKeys::Logged(log_a), SeenKeys::Logged(log_b)) = (seen_a, seen_b) {
        match seen::KeyLog::repeats(vec![log_a, log_b]) {
            Ok(repeats) if repeats.is_empty() => {}
            Ok(repeats) => return Halves::Repeats(Arc::new(repeats)),
            Err(e) => {
                tracing::warn!(file = file.path, error = %e, "Could not log the keys of this file under TMPDIR; reading it in one pass with its keys in memory.");
                return Halves::Sequential;
            }
        }
    }
    let merged = Ingested {
        rows_read: a.rows_read + b.rows_read,
        rows_loaded: a.rows_loaded + b.rows_loaded,
        batch: RecordBatch::new_empty(kind.schema()),
        rows_quarantined: a.rows_quarantined + b.rows_quarantined,
        errors: a.errors.into_iter().chain(b.errors).collect(),
        warnings: a.warnings.into_iter().chain(b.warnings).collect(),
        rejected: None,
    };
    Halves::Done(finish(kind, Ok(merged), file, max_quarantine_ratio))
}

/// Where the second half of a file starts.
struct Split {
    /// Byte offset of the first record of the second half.
    offset: u64,
    /// Its row number (the header is row 1).
    first_row: u64,
    /// The header record's bytes, line end included.
    header: Vec<u8>,
}

/// Scans the first half of the file, tracking quotes, for the first line end after the
/// middle that is outside quotes. Gives up (None) on blank lines, which the CSV reader skips
/// and which would make line counting disagree with its record numbers.
fn find_split(open: &OpenRange<'_>, len: u64) -> std::io::Result<Option<Split>> {
    use std::io::Read as _;
    let mut input = open(0, len)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut scan = LineScan {
        half: len / 2,
        pos: 0,
        in_quotes: false,
        records: 0,
        prev: b'\n',
        header: Vec::new(),
    };
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        let chunk = &buf[..n];
        let mut next_quote = memchr::memchr(b'"', chunk);
        for (i, &c) in chunk.iter().enumerate() {
            // Past the header, with no quote left in the chunk (most of an export), only line
            // ends matter: memchr finds them many bytes at a time. This scan runs before the
            // halves start, so its speed is wall time.
            if next_quote.is_none() && scan.records > 0 && !scan.in_quotes {
                match scan.plain(&chunk[i..]) {
                    Scanned::More => break,
                    Scanned::Blank => return Ok(None),
                    Scanned::Split(offset) => return Ok(Some(scan.split(offset))),
                }
            }
            if Some(i) == next_quote {
                next_quote = memchr::memchr(b'"', &chunk[i + 1..]).map(|q| q + i + 1);
            }
            match scan.byte(c) {
                Scanned::More => {}
                Scanned::Blank => return Ok(None),
                Scanned::Split(offset) => return Ok(Some(scan.split(offset))),
            }
        }
    }
}

/// The state of [`find_split`]'s scan.
struct LineScan {
    /// The middle of the file.
    half: u64,
    /// Bytes scanned.
    pos: u64,
    in_quotes: bool,
    /// Line ends outside quotes so far (the header's included).
    records: u64,
    /// The last byte other than a carriage return.
    prev: u8,
    /// The header record, line end included.
    header: Vec<u8>,
}

/// What scanning some bytes found.
enum Scanned {
    /// Nothing yet: read on.
    More,
    /// A blank line: the file cannot be split by counting lines.
    Blank,
    /// The first record end at or after the middle, at this offset.
    Split(u64),
}

impl LineScan {
    /// Scans one byte.
    fn byte(&mut self, c: u8) -> Scanned {
        if self.records == 0 {
            self.header.push(c);
        }
        self.pos += 1;
        let mut found = Scanned::More;
        match c {
            b'"' => self.in_quotes = !self.in_quotes,
            b'\n' if !self.in_quotes => {
                if self.prev == b'\n' {
                    return Scanned::Blank;
                }
                self.records += 1;
                if self.pos >= self.half {
                    found = Scanned::Split(self.pos);
                }
            }
            _ => {}
        }
        if c != b'\r' {
            self.prev = c;
        }
        found
    }

    /// Scans bytes that hold no quote, outside quotes and past the header.
    fn plain(&mut self, bytes: &[u8]) -> Scanned {
        let mut line_start = 0;
        for i in memchr::memchr_iter(b'\n', bytes) {
            // Nothing but carriage returns since the last line end: a blank line.
            let only_cr = bytes[line_start..i].iter().all(|&c| c == b'\r');
            if only_cr && (line_start > 0 || self.prev == b'\n') {
                return Scanned::Blank;
            }
            self.records += 1;
            let end = self.pos + i as u64 + 1;
            if end >= self.half {
                return Scanned::Split(end);
            }
            line_start = i + 1;
        }
        if let Some(&c) = bytes.iter().rev().find(|&&c| c != b'\r') {
            self.prev = c;
        }
        self.pos += bytes.len() as u64;
        Scanned::More
    }

    /// The split at `offset`: `records` line ends precede it (the header and records-1
    /// data rows).
    fn split(self, offset: u64) -> Split {
        Split {
            offset,
            first_row: self.records + 1,
            header: self.header,
        }
    }
}
