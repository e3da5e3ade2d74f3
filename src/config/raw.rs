//! The pipeline file format exactly as written (serde, unknown fields refused). Values that
//! are cross-checked during resolution keep their spans so errors point at them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// Top level of `pipelines/<name>.toml` (the `[[source]]` array is read separately so
/// each source's errors are reported independently).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// What the pipeline is for, shown by `earlystart validate`.
    #[serde(default)]
    pub description: String,
    /// Cron expression (5 or 6 fields) for `earlystart serve`; evaluated in `timezone`.
    pub schedule: Option<Spanned<String>>,
    /// IANA time zone of the schedule; default Europe/London.
    pub timezone: Option<Spanned<String>>,
    /// Folder holding the extracts, relative to the project; `--extracts DIR` overrides it.
    #[serde(default = "default_extracts_dir")]
    pub extracts_dir: String,
    /// A file whose quarantined share exceeds this is rejected whole (F005).
    #[serde(default = "default_max_quarantine_ratio")]
    pub max_quarantine_ratio: f64,
    /// SQL models (file stems under `sql/`) run after ingest.
    #[serde(default)]
    pub sql: Vec<Spanned<String>>,
    /// Reports (folders under `reports/`) rendered after the SQL.
    #[serde(default)]
    pub reports: Vec<Spanned<String>>,
    /// Who is told about runs, and when.
    #[serde(default)]
    pub notify: RawNotify,
    /// Optional linkage rules beyond extracts.md §11.3.
    #[serde(default)]
    pub linkage: RawLinkage,
}

/// `[linkage]`: the contract's rules (NHS, UPN, LA_ID, DEMO) always apply.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLinkage {
    /// DEMO_NAME: also link records with the same surname, first given name and date of
    /// birth whatever their postcodes (families who moved between extracts). Off by default.
    #[serde(default)]
    pub demo_name: bool,
}

/// `[notify]`: e-mail after a run (the SMTP server comes from the environment).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// Addresses to write to.
    #[serde(default)]
    pub email: Vec<Spanned<String>>,
    /// Run statuses that trigger a message: `failed`, `with_rejections`, `clean`.
    #[serde(default = "default_notify_on")]
    pub on: Vec<Spanned<String>>,
}

fn default_notify_on() -> Vec<Spanned<String>> {
    Vec::new()
}

fn default_extracts_dir() -> String {
    "extracts".into()
}

fn default_max_quarantine_ratio() -> f64 {
    0.5
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values, tried in order.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// One `[[source]]`: a file pattern and its mapping onto a canonical table (extracts.md §2).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Source name, unique in the pipeline; appears in quarantine records.
    pub name: Spanned<String>,
    /// Target canonical table (`registrations`, `iod`, `postcodes`, …).
    pub canonical: Spanned<String>,
    /// File name or glob, relative to the extracts folder.
    pub path: Spanned<String>,
    /// Whether a missing file is acceptable (default: a missing file is reported).
    #[serde(default)]
    pub optional: bool,
    /// `snapshot` (each file replaces this source's rows; default) or `append` (each file adds rows).
    pub mode: Option<Spanned<String>>,
    /// Date format(s) in chrono strftime syntax, default `%Y-%m-%d`.
    pub date_format: Option<Spanned<OneOrMany>>,
    /// Values read as null besides the empty string.
    #[serde(default)]
    pub nulls: Vec<String>,
    /// `run_date` (default), a date `YYYY-MM-DD`, or `file_name:<regex with one group>:<format>`.
    pub as_at: Option<Spanned<String>>,
    /// LSOA vintage of LSOA codes in the file: 2011 or 2021.
    pub lsoa_vintage: Option<Spanned<i64>>,
    /// Namespace of local ids (`key_local`); default: the source name.
    pub namespace: Option<String>,
    /// Worksheet to read when the file is XLSX (default: the first).
    pub sheet: Option<String>,
    /// 1-based row of the header in an XLSX sheet (default 1).
    pub header_row: Option<Spanned<i64>>,
    /// Canonical field = source header.
    #[serde(default)]
    pub columns: BTreeMap<Spanned<String>, String>,
    /// Canonical field → { source value = canonical value }.
    #[serde(default)]
    pub values: BTreeMap<Spanned<String>, BTreeMap<String, String>>,
    /// Canonical field = file-level constant.
    #[serde(default)]
    pub constants: BTreeMap<Spanned<String>, String>,
}
