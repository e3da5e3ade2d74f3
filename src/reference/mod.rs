//! Reference tables shipped in the repository's `reference/` folder (domain README P1):
//! code lists, target groups, ASQ-3 windows and cut-offs, HV review parameters. They are
//! data, not code: councils edit their copy, and each run records every table's SHA-256.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use arrow::array::RecordBatch;
use arrow::csv::reader::Format;
use sha2::{Digest, Sha256};

use crate::sources::context::AsqWindow;

/// One reference CSV.
#[derive(Debug, Clone)]
pub struct ReferenceTable {
    /// File stem; the lake table is `ref_<name>`.
    pub name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of the bytes.
    pub sha256: String,
}

/// SHA-256 of bytes as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads every `*.csv` in `dir`.
pub fn load_dir(dir: &Path) -> Result<Vec<ReferenceTable>> {
    let mut out = Vec::new();
    for path in crate::config::walk_files(dir, "csv") {
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read reference table {}", path.display()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(ReferenceTable {
            sha256: sha256_hex(&bytes),
            name,
            bytes,
        });
    }
    if out.is_empty() {
        bail!(
            "no reference tables in {}; the repository's reference/ folder is needed",
            dir.display()
        );
    }
    Ok(out)
}

impl ReferenceTable {
    /// Rows as header → value maps.
    pub fn rows(&self) -> Result<Vec<HashMap<String, String>>> {
        let mut r = csv::Reader::from_reader(self.bytes.as_slice());
        let headers = r.headers()?.clone();
        r.records()
            .map(|rec| {
                let rec =
                    rec.with_context(|| format!("reference table {} is malformed", self.name))?;
                Ok(headers
                    .iter()
                    .zip(rec.iter())
                    .map(|(h, v)| (h.to_string(), v.trim().to_string()))
                    .collect())
            })
            .collect()
    }

    /// The table as one Arrow batch, column types inferred.
    pub fn to_batch(&self) -> Result<RecordBatch> {
        let format = Format::default().with_header(true);
        let (schema, _) = format.infer_schema(Cursor::new(&self.bytes), None)?;
        let mut reader = arrow::csv::ReaderBuilder::new(Arc::new(schema.clone()))
            .with_format(format)
            .build(Cursor::new(&self.bytes))?;
        let mut batches = Vec::new();
        for b in &mut reader {
            batches.push(b?);
        }
        Ok(arrow::compute::concat_batches(&Arc::new(schema), &batches)?)
    }
}

fn find<'a>(tables: &'a [ReferenceTable], name: &str) -> Result<&'a ReferenceTable> {
    tables
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("reference table {name}.csv is missing from reference/"))
}

/// Code lists by name: `canonical_codes.csv`, `cin_codes.csv` and `ssda903_codes.csv` lists, `ethnicity`, and `other_flag` (the
/// codes of target groups whose rule is `other_flag:<CODE>`).
pub fn code_lists(tables: &[ReferenceTable]) -> Result<HashMap<String, HashSet<String>>> {
    let mut lists: HashMap<String, HashSet<String>> = HashMap::new();
    for row in find(tables, "canonical_codes")?.rows()? {
        lists
            .entry(row["list"].clone())
            .or_default()
            .insert(row["code"].clone());
    }
    // Social care code lists, one file per format with the same `list,code` layout.
    for name in ["cin_codes", "ssda903_codes"] {
        for row in find(tables, name)?.rows()? {
            lists
                .entry(row["list"].clone())
                .or_default()
                .insert(row["code"].clone());
        }
    }
    // The early learning goals that make up a good level of development.
    for row in find(tables, "eyfsp_elgs")?.rows()? {
        if row["in_gld"] == "true" {
            lists
                .entry("eyfsp_gld".into())
                .or_default()
                .insert(row["elg_code"].clone());
        }
    }
    for row in find(tables, "ethnicity")?.rows()? {
        lists
            .entry("ethnicity".into())
            .or_default()
            .insert(row["code"].clone());
    }
    let flags = lists.entry("other_flag".into()).or_default();
    for row in find(tables, "target_groups")?.rows()? {
        if let Some(code) = row["rule"].strip_prefix("other_flag:") {
            flags.insert(code.to_string());
        }
    }
    Ok(lists)
}

/// Parses an ISO 8601 duration of months and days (`P28M16D`, `P30D`, `P12M`).
pub fn months_days(duration: &str) -> Option<(u32, u32)> {
    let rest = duration.strip_prefix('P')?;
    let (mut months, mut days) = (0, 0);
    let mut num = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => num.push(c),
            'M' => months = std::mem::take(&mut num).parse().ok()?,
            'D' => days = std::mem::take(&mut num).parse().ok()?,
            _ => return None,
        }
    }
    num.is_empty().then_some((months, days))
}

/// ASQ-3 windows by questionnaire interval.
pub fn asq_windows(tables: &[ReferenceTable]) -> Result<HashMap<i64, AsqWindow>> {
    let mut out = HashMap::new();
    for row in find(tables, "asq3_windows")?.rows()? {
        let q: i64 = row["questionnaire_months"]
            .parse()
            .context("asq3_windows.questionnaire_months")?;
        let from = months_days(&row["from"])
            .with_context(|| format!("asq3_windows: bad duration {:?}", row["from"]))?;
        let to = months_days(&row["to"])
            .with_context(|| format!("asq3_windows: bad duration {:?}", row["to"]))?;
        out.insert(q, AsqWindow { from, to });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(months_days("P28M16D"), Some((28, 16)));
        assert_eq!(months_days("P30D"), Some((0, 30)));
        assert_eq!(months_days("P12M"), Some((12, 0)));
        assert_eq!(months_days("28M"), None);
    }
}
