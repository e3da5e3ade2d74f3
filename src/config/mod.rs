//! Declared pipelines: `pipelines/<name>.toml`, parsed (raw) then resolved into a
//! [`Pipeline`] that is valid by construction. Resolution collects **every** error, each
//! located as `file:line:col`, so `earlystart validate` reports them all at once.

pub mod raw;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::sources::{ExtractKind, Mapping};
use raw::{RawPipeline, RawSource};

/// A configuration error with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// How a file's rows replace earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Each new file replaces every row previously loaded from this source.
    Snapshot,
    /// Each new file adds its rows (daily attendance files, say).
    Append,
}

/// Where a file's as-at date comes from.
#[derive(Debug, Clone)]
pub enum AsAt {
    /// The run's date (or `--as-at`).
    RunDate,
    /// A fixed date.
    Fixed(NaiveDate),
    /// Captured from the file name by a regex group, parsed with a date format.
    FileName {
        /// Regex with one capture group.
        pattern: regex::Regex,
        /// chrono format of the captured text.
        format: String,
    },
}

/// A resolved source.
#[derive(Debug, Clone)]
pub struct Source {
    /// Source name.
    pub name: String,
    /// Target kind (and curated table).
    pub kind: ExtractKind,
    /// Glob relative to the extracts folder.
    pub path: String,
    /// Missing file acceptable.
    pub optional: bool,
    /// Snapshot or append.
    pub mode: LoadMode,
    /// As-at date rule.
    pub as_at: AsAt,
    /// XLSX sheet.
    pub sheet: Option<String>,
    /// XLSX header row (1-based).
    pub header_row: usize,
    /// Column mapping and value translation.
    pub mapping: Mapping,
}

/// A resolved pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// File stem.
    pub name: String,
    /// Description.
    pub description: String,
    /// Cron schedule.
    pub schedule: Option<String>,
    /// Time zone of the schedule.
    pub timezone: chrono_tz::Tz,
    /// Extracts folder (relative paths are relative to the project root).
    pub extracts_dir: PathBuf,
    /// F005 threshold.
    pub max_quarantine_ratio: f64,
    /// Sources in dependency order.
    pub sources: Vec<Source>,
    /// SQL models to run.
    pub sql: Vec<String>,
    /// Reports to render.
    pub reports: Vec<String>,
    /// E-mail addresses told about runs whose status is in `notify_on`.
    pub notify_email: Vec<String>,
    /// Statuses that trigger a message (default: failed).
    pub notify_on: Vec<String>,
    /// Optional linkage rules (`[linkage]`).
    pub linkage: crate::identity::linkage::LinkOptions,
}

/// [`load`] for callers that only report: every error in one message, one per line.
pub fn load_or_report(project: &Path, name: &str) -> anyhow::Result<Pipeline> {
    load(project, name).map_err(|errs| {
        anyhow::anyhow!(
            "pipeline {name} is invalid (run `earlystart validate`):\n{}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// Loads and resolves `pipelines/<name>.toml` under `project`.
pub fn load(project: &Path, name: &str) -> Result<Pipeline, Vec<ConfigError>> {
    let file = project.join("pipelines").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&file).map_err(|e| {
        vec![ConfigError {
            file: file.clone(),
            line: 1,
            col: 1,
            message: format!("cannot read the pipeline file: {e}"),
        }]
    })?;
    parse(project, &file, &text)
}

/// Every pipeline name (file stems under `pipelines/`), sorted.
pub fn list(project: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(project.join("pipelines"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

struct Errors<'a> {
    file: &'a Path,
    text: &'a str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn at(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        self.list.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            col,
            message: message.into(),
        });
    }
}

/// Parses and resolves pipeline text (`file` is used for locations and the name).
pub fn parse(project: &Path, file: &Path, text: &str) -> Result<Pipeline, Vec<ConfigError>> {
    let mut errs = Errors {
        file,
        text,
        list: Vec::new(),
    };
    let doc = match DeTable::parse(text) {
        Ok(d) => d,
        Err(e) => {
            errs.at(e.span(), e.message().to_string());
            return Err(errs.list);
        }
    };
    let span = doc.span();
    let mut top = DeTable::new();
    let mut raw_sources = Vec::new();
    for (k, v) in doc.into_inner() {
        if k.get_ref() == "source" {
            match v.get_ref() {
                DeValue::Array(items) => raw_sources.extend(items.iter().cloned()),
                _ => errs.at(
                    Some(v.span()),
                    "`source` must be an array of tables: write [[source]]",
                ),
            }
        } else {
            top.insert(k, v);
        }
    }
    let raw = RawPipeline::deserialize(ValueDeserializer::from(Spanned::new(
        span,
        DeValue::Table(top),
    )));
    let raw = match raw {
        Ok(r) => Some(r),
        Err(e) => {
            errs.at(e.span(), e.message().to_string());
            None
        }
    };
    let mut sources = Vec::new();
    let mut names = BTreeSet::new();
    for item in raw_sources {
        let item_span = item.span();
        match RawSource::deserialize(ValueDeserializer::from(item)) {
            Ok(s) => {
                if !names.insert(s.name.get_ref().clone()) {
                    errs.at(
                        Some(s.name.span()),
                        format!("duplicate source name {:?}", s.name.get_ref()),
                    );
                }
                if let Some(src) = resolve_source(s, &mut errs) {
                    sources.push(src);
                }
            }
            Err(e) => errs.at(
                e.span().or(Some(item_span)),
                format!("in [[source]]: {}", e.message()),
            ),
        }
    }
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pipeline = raw.and_then(|raw| resolve_top(project, name, raw, &mut errs));
    match pipeline {
        Some(mut p) if errs.list.is_empty() => {
            sources.sort_by_key(|s| ExtractKind::ALL.iter().position(|k| *k == s.kind));
            p.sources = sources;
            Ok(p)
        }
        _ => Err(errs.list),
    }
}

fn resolve_top(
    project: &Path,
    name: String,
    raw: RawPipeline,
    errs: &mut Errors<'_>,
) -> Option<Pipeline> {
    let mut ok = true;
    let schedule = raw.schedule.as_ref().map(|s| {
        if let Err(e) = croner::Cron::from_str(s.get_ref()) {
            errs.at(
                Some(s.span()),
                format!(
                    "schedule {:?} is not a valid cron expression: {e}",
                    s.get_ref()
                ),
            );
            ok = false;
        }
        s.get_ref().clone()
    });
    let timezone = match &raw.timezone {
        None => chrono_tz::Europe::London,
        Some(t) => t.get_ref().parse().unwrap_or_else(|_| {
            errs.at(
                Some(t.span()),
                format!(
                    "unknown time zone {:?}; use an IANA name such as Europe/London",
                    t.get_ref()
                ),
            );
            ok = false;
            chrono_tz::Europe::London
        }),
    };
    if !(0.0..=1.0).contains(&raw.max_quarantine_ratio) {
        errs.at(None, "max_quarantine_ratio must be between 0 and 1");
        ok = false;
    }
    for s in &raw.sql {
        let found = walk_files(&project.join("sql"), "sql")
            .iter()
            .any(|p| p.file_stem().is_some_and(|f| f == s.get_ref().as_str()));
        if !found {
            errs.at(
                Some(s.span()),
                format!(
                    "no SQL model {:?} under sql/ (file stem = table name)",
                    s.get_ref()
                ),
            );
            ok = false;
        }
    }
    for o in &raw.notify.on {
        if !["failed", "with_rejections", "clean"].contains(&o.get_ref().as_str()) {
            errs.at(
                Some(o.span()),
                format!(
                    "notify.on {:?}: expected failed, with_rejections or clean",
                    o.get_ref()
                ),
            );
            ok = false;
        }
    }
    for e in &raw.notify.email {
        if !e.get_ref().contains('@') {
            errs.at(
                Some(e.span()),
                format!("notify.email {:?} is not an address", e.get_ref()),
            );
            ok = false;
        }
    }
    for r in &raw.reports {
        if !project.join("reports").join(r.get_ref()).is_dir() {
            errs.at(
                Some(r.span()),
                format!("no report {:?} under reports/", r.get_ref()),
            );
            ok = false;
        }
    }
    ok.then(|| Pipeline {
        name,
        description: raw.description,
        schedule,
        timezone,
        extracts_dir: project.join(&raw.extracts_dir),
        max_quarantine_ratio: raw.max_quarantine_ratio,
        sources: Vec::new(),
        sql: raw.sql.into_iter().map(Spanned::into_inner).collect(),
        reports: raw.reports.into_iter().map(Spanned::into_inner).collect(),
        notify_email: raw
            .notify
            .email
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        notify_on: if raw.notify.on.is_empty() {
            vec!["failed".into()]
        } else {
            raw.notify.on.into_iter().map(Spanned::into_inner).collect()
        },
        linkage: crate::identity::linkage::LinkOptions {
            demo_name: raw.linkage.demo_name,
        },
    })
}

/// Files with extension `ext` under `dir`, recursively.
pub fn walk_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn valid_strftime(format: &str) -> bool {
    use chrono::format::{Item, StrftimeItems};
    StrftimeItems::new(format).all(|i| !matches!(i, Item::Error))
}

fn resolve_source(raw: RawSource, errs: &mut Errors<'_>) -> Option<Source> {
    let before = errs.list.len();
    let kind = ExtractKind::from_name(raw.canonical.get_ref());
    if kind.is_none() {
        let expected: Vec<&str> = ExtractKind::ALL.iter().map(|k| k.name()).collect();
        errs.at(
            Some(raw.canonical.span()),
            format!(
                "unknown canonical table {:?} (expected one of {})",
                raw.canonical.get_ref(),
                expected.join(", ")
            ),
        );
    }
    let fields: Vec<&str> = kind
        .map(|k| k.fields().iter().map(|f| f.name).collect())
        .unwrap_or_default();
    let check_field = |key: &Spanned<String>, what: &str, errs: &mut Errors<'_>| {
        if kind.is_some() && !fields.contains(&key.get_ref().as_str()) {
            errs.at(
                Some(key.span()),
                format!(
                    "{what}: {:?} is not a field of {} (fields: {})",
                    key.get_ref(),
                    raw.canonical.get_ref(),
                    fields.join(", ")
                ),
            );
        }
    };
    for (k, v) in &raw.columns {
        check_field(k, "[source.columns]", errs);
        let required = kind.and_then(|kd| {
            kd.fields()
                .iter()
                .find(|f| f.name == k.get_ref())
                .map(|f| f.req == crate::sources::Req::Yes)
        });
        if v.trim().is_empty()
            && required == Some(true)
            && !raw.constants.keys().any(|c| c.get_ref() == k.get_ref())
        {
            errs.at(
                Some(k.span()),
                format!(
                    "required field {:?} is mapped to no column and has no constant",
                    k.get_ref()
                ),
            );
        }
    }
    for k in raw.values.keys() {
        check_field(k, "[source.values]", errs);
    }
    for k in raw.constants.keys() {
        check_field(k, "[source.constants]", errs);
    }
    let mode = match raw.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("snapshot", _)) => LoadMode::Snapshot,
        Some(("append", _)) => LoadMode::Append,
        Some((other, span)) => {
            errs.at(
                Some(span),
                format!("mode {other:?} must be \"snapshot\" or \"append\""),
            );
            LoadMode::Snapshot
        }
    };
    let date_formats = raw.date_format.map(|d| {
        let span = d.span();
        let formats = d.into_inner().into_vec();
        for f in &formats {
            if !valid_strftime(f) {
                errs.at(
                    Some(span.clone()),
                    format!("date_format {f:?} is not a valid chrono format"),
                );
            }
        }
        formats
    });
    let as_at = match &raw.as_at {
        None => AsAt::RunDate,
        Some(a) if a.get_ref() == "run_date" => AsAt::RunDate,
        Some(a) => {
            if let Some(rest) = a.get_ref().strip_prefix("file_name:") {
                match rest
                    .rsplit_once(':')
                    .map(|(p, f)| (regex::Regex::new(p), f))
                {
                    Some((Ok(pattern), format))
                        if pattern.captures_len() == 2 && valid_strftime(format) =>
                    {
                        AsAt::FileName {
                            pattern,
                            format: format.to_string(),
                        }
                    }
                    _ => {
                        errs.at(Some(a.span()), "as_at file_name:<regex>:<format> needs a regex with exactly one group and a chrono date format");
                        AsAt::RunDate
                    }
                }
            } else if let Ok(d) = NaiveDate::parse_from_str(a.get_ref(), "%Y-%m-%d") {
                AsAt::Fixed(d)
            } else {
                errs.at(
                    Some(a.span()),
                    "as_at must be run_date, a date YYYY-MM-DD, or file_name:<regex>:<format>",
                );
                AsAt::RunDate
            }
        }
    };
    let lsoa_vintage = match &raw.lsoa_vintage {
        None => 2021,
        Some(v) if matches!(*v.get_ref(), 2011 | 2021) => *v.get_ref() as u16,
        Some(v) => {
            errs.at(Some(v.span()), "lsoa_vintage must be 2011 or 2021");
            2021
        }
    };
    let header_row = match &raw.header_row {
        None => 1,
        Some(h) if *h.get_ref() >= 1 => *h.get_ref() as usize,
        Some(h) => {
            errs.at(
                Some(h.span()),
                "header_row is 1-based and must be at least 1",
            );
            1
        }
    };
    if errs.list.len() > before {
        return None;
    }
    let name = raw.name.into_inner();
    let mapping = Mapping {
        columns: raw
            .columns
            .into_iter()
            .map(|(k, v)| (k.into_inner(), v))
            .collect(),
        values: raw
            .values
            .into_iter()
            .map(|(k, v)| (k.into_inner(), v.into_iter().collect()))
            .collect::<HashMap<_, _>>(),
        constants: raw
            .constants
            .into_iter()
            .map(|(k, v)| (k.into_inner(), v))
            .collect(),
        nulls: raw.nulls,
        date_formats: date_formats.unwrap_or_default(),
        namespace: raw.namespace.unwrap_or_else(|| name.clone()),
        lsoa_vintage,
    };
    Some(Source {
        name,
        kind: kind?,
        path: raw.path.into_inner(),
        optional: raw.optional,
        mode,
        as_at,
        sheet: raw.sheet,
        header_row,
        mapping,
    })
}
