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
    // Early help vocabularies (extracts.md §5.3), council-editable.
    for (table, list) in [
        ("early_help_closure_reasons", "early_help_closure_reason"),
        ("lead_agencies", "lead_agency"),
    ] {
        for row in find(tables, table)?.rows()? {
            lists
                .entry(list.into())
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

/// One row of `unit_costs.csv` (extracts.md §7.3).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct UnitCost {
    /// Item name, e.g. `foster_care_week`.
    pub item: String,
    /// What one unit is, e.g. `per child per week`.
    pub unit: String,
    /// Value in GBP; `None` = not yet known.
    pub value_gbp: Option<f64>,
    /// Financial year of the prices (`YYYY-YY`); may be blank only when the value is.
    pub price_year: Option<String>,
    /// Citation.
    pub source: String,
    /// False = [verify] in the domain specification.
    pub confirmed: bool,
    /// Free notes (range ends, price basis).
    pub notes: String,
}

/// The shipped, council-editable unit costs, checked when loaded.
#[derive(Debug, Clone, Default)]
pub struct UnitCosts(pub Vec<UnitCost>);

impl UnitCosts {
    /// The value of `item`. Fails naming the item and the source to consult when the value
    /// is blank (value-for-money.md §7: blanks are shipped so councils see what is missing).
    pub fn value(&self, item: &str) -> Result<f64> {
        let row = self.0.iter().find(|r| r.item == item).with_context(|| {
            format!("unit cost {item:?} is not in reference/unit_costs.csv; add a row for it")
        })?;
        row.value_gbp.with_context(|| {
            format!(
                "unit cost {item:?} ({}) has no value yet: fill value_gbp and price_year in reference/unit_costs.csv from {}",
                row.unit, row.source
            )
        })
    }
}

/// Whether `v` is a financial year `YYYY-YY` whose second part follows the first.
pub fn is_financial_year(v: &str) -> bool {
    let Some((a, b)) = v.split_once('-') else {
        return false;
    };
    match (a.parse::<u32>(), b.parse::<u32>()) {
        (Ok(first), Ok(second)) => a.len() == 4 && b.len() == 2 && (first + 1) % 100 == second,
        _ => false,
    }
}

/// Reads and checks `unit_costs.csv`: required columns, a number or blank in `value_gbp`,
/// a financial year in `price_year` whenever a value is given, `true`/`false` in
/// `confirmed`, each item once. Every problem is reported, with its row.
pub fn unit_costs(tables: &[ReferenceTable]) -> Result<UnitCosts> {
    let table = find(tables, "unit_costs")?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, row) in table.rows()?.into_iter().enumerate() {
        let line = i + 2;
        let get = |c: &str| row.get(c).cloned().unwrap_or_default();
        let (item, value, year) = (get("item"), get("value_gbp"), get("price_year"));
        if item.is_empty() || get("unit").is_empty() || get("source").is_empty() {
            problems.push(format!("row {line}: item, unit and source are required"));
        }
        if out.iter().any(|u: &UnitCost| u.item == item) {
            problems.push(format!("row {line}: item {item:?} appears twice"));
        }
        let value_gbp = match value.parse::<f64>() {
            _ if value.is_empty() => None,
            Ok(v) if v >= 0.0 => Some(v),
            _ => {
                problems.push(format!(
                    "row {line}: value_gbp {value:?} is not an amount ≥ 0 (or blank)"
                ));
                None
            }
        };
        if (value_gbp.is_some() || !year.is_empty()) && !is_financial_year(&year) {
            problems.push(format!(
                "row {line}: price_year {year:?} is not a financial year YYYY-YY"
            ));
        }
        let confirmed = match get("confirmed").as_str() {
            "true" => true,
            "false" => false,
            other => {
                problems.push(format!(
                    "row {line}: confirmed {other:?} is not true or false"
                ));
                false
            }
        };
        out.push(UnitCost {
            item,
            unit: get("unit"),
            value_gbp,
            price_year: (!year.is_empty()).then_some(year),
            source: get("source"),
            confirmed,
            notes: get("notes"),
        });
    }
    if !problems.is_empty() {
        bail!(
            "reference/unit_costs.csv is not valid:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(UnitCosts(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, csv: &str) -> ReferenceTable {
        ReferenceTable {
            name: name.into(),
            bytes: csv.as_bytes().to_vec(),
            sha256: String::new(),
        }
    }

    #[test]
    fn unit_costs_are_checked_and_blanks_fail_with_the_source() {
        let ok = table(
            "unit_costs",
            "item,unit,value_gbp,price_year,source,confirmed,notes\nfoster_care_week,per child per week,646,2016-17,PSSRU 2017,false,\nchild_in_need_case,per case per year,,,GMCA Unit Cost Database,false,\n",
        );
        let costs = unit_costs(&[ok]).unwrap();
        assert_eq!(costs.value("foster_care_week").unwrap(), 646.0);
        let e = costs.value("child_in_need_case").unwrap_err().to_string();
        assert!(
            e.contains("child_in_need_case") && e.contains("GMCA Unit Cost Database"),
            "{e}"
        );
        assert!(costs.value("unknown").is_err());
        let bad = table(
            "unit_costs",
            "item,unit,value_gbp,price_year,source,confirmed,notes\na,u,-3,2016-17,s,true,\nb,u,5,2016/17,s,maybe,\na,u,,,s,true,\n",
        );
        let e = unit_costs(&[bad]).unwrap_err().to_string();
        for needle in [
            "row 2: value_gbp",
            "row 3: price_year",
            "row 3: confirmed",
            "row 4: item \"a\" appears twice",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        assert!(is_financial_year("1999-00") && !is_financial_year("2023-25"));
    }

    #[test]
    fn durations() {
        assert_eq!(months_days("P28M16D"), Some((28, 16)));
        assert_eq!(months_days("P30D"), Some((0, 30)));
        assert_eq!(months_days("P12M"), Some((12, 0)));
        assert_eq!(months_days("28M"), None);
    }
}
