//! Incremental metric builds: after a night that only appended rows to a table declared
//! append-only in `sql/metrics.toml` (`[incremental]`, each with the date column that places
//! a row in time), the models whose sidecar names an `incremental` date column recompute only
//! the rows on or after a *recompute date* (their SQL filters on `recompute_from()`), and
//! keep the earlier rows of the last build.
//!
//! The recompute date is the earliest of:
//! - the earliest date among the appended rows (from the Delta add actions' statistics,
//!   so no data is read to decide), and
//! - the day after the latest date the last build saw in the tables that end the periods
//!   (`period_tables`), because the set of periods and whether each is complete follow
//!   the latest date with data.
//!
//! Everything else is a full build, with the reason recorded: no earlier build, a change
//! to the SQL or its parameters, a table that changed and is not append-only, rows removed
//! or replaced, or statistics missing. A model declares `incremental` only when none of its
//! rows dated before a day can change because of data dated on or after it (no look-ahead);
//! the integration tests check an incremental build against a full one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use arrow::array::{Array, Date32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::NaiveDate;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};

use super::params::Incremental;
use crate::lake::Lake;

/// The first day a full build recomputes from: before any data.
pub const FULL_FROM: NaiveDate = NaiveDate::from_ymd_opt(1, 1, 1).expect("a valid date");

/// How much of the metric project a build recomputes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every row of every model.
    Full {
        /// Why not incremental.
        why: String,
    },
    /// Incremental models recompute rows dated on or after `from`; the rest is kept.
    From {
        /// The recompute date.
        from: NaiveDate,
        /// What changed.
        why: String,
        /// `from` is after the latest date the last build read from the period tables (the
        /// usual night: a new day's file). Then the last build saw none of their rows dated
        /// from `from` on, and a model may add those days to its last build instead of
        /// reading its window again (`last_build` in `_models.toml`). False when a file
        /// brought rows for days already loaded (or a quarantined row dated before them).
        follows_last: bool,
    },
}

impl Scope {
    /// The date `recompute_from()` returns.
    pub fn recompute_from(&self) -> NaiveDate {
        match self {
            Scope::Full { .. } => FULL_FROM,
            Scope::From { from, .. } => *from,
        }
    }

    /// One line for the run summary.
    pub fn describe(&self) -> String {
        match self {
            Scope::Full { why } => format!("full build ({why})"),
            Scope::From {
                from,
                why,
                follows_last,
            } => {
                let late = if *follows_last {
                    ""
                } else {
                    "; with rows for days already loaded, so no model adds to its last build"
                };
                format!("incremental build from {from} ({why}{late})")
            }
        }
    }
}

/// What a build records about itself, so the next one can tell what changed since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The build's run key (its outputs' Delta transactions carry it).
    pub run_key: String,
    /// Digest of everything but the data: the SQL, the sidecar declarations, the parameters.
    pub code_key: String,
    /// `area/table` → Delta version of every lake table the build read.
    pub inputs: BTreeMap<String, i64>,
    /// The latest date of each append-only table the build read.
    pub last_dates: BTreeMap<String, NaiveDate>,
    /// Each model's fingerprints and the Delta version of its table after the build (a
    /// record from before models were kept has none: every model is built).
    #[serde(default)]
    pub models: BTreeMap<String, ModelRecord>,
}

/// What a build knows about one model's table, so the next build can keep it as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Digest of everything the model's rows follow from: its SQL and declarations, the
    /// project's parameters, and the version or output digest of every table it reads.
    pub inputs: String,
    /// Digest of the rows it holds: of their content when the table is small, otherwise of
    /// its inputs (equal inputs, equal rows). Models reading it use this one, so a model
    /// rebuilt to the same small table does not rebuild what reads it.
    pub output: String,
    /// The Delta version of `metrics/<model>` holding those rows.
    pub version: i64,
}

/// `recompute_from()`: the first day an incremental model computes. A constant, so the
/// planner folds it into each filter as a literal (row groups are pruned by it, and no
/// join is added); [`FULL_FROM`] unless a build registers its own.
pub fn recompute_from_udf(from: NaiveDate) -> ScalarUDF {
    let days = crate::sources::builder::date32(from);
    create_udf(
        "recompute_from",
        vec![],
        DataType::Date32,
        Volatility::Immutable,
        Arc::new(move |_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Date32(Some(days))))
        }),
    )
}

/// The one-row `metric_build` table: the record of this build and its scope.
pub fn build_table(record: &BuildRecord, scope: &Scope) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("code_key", DataType::Utf8, false),
        Field::new("record", DataType::Utf8, false),
        Field::new("scope", DataType::Utf8, false),
        Field::new("recompute_from", DataType::Date32, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec![record.code_key.clone()])),
            Arc::new(StringArray::from(vec![
                serde_json::to_string(record).expect("a build record serialises"),
            ])),
            Arc::new(StringArray::from(vec![scope.describe()])),
            Arc::new(Date32Array::from(vec![crate::sources::builder::date32(
                scope.recompute_from(),
            )])),
        ],
    )
    .expect("metric_build columns match their schema")
}

/// The record the last build published, if any (a lake from before incremental builds has
/// none, and gets a full build).
pub async fn last_record(lake: &Lake) -> Result<Option<BuildRecord>> {
    let Some(batches) = lake.read(super::session::METRICS, "metric_build").await? else {
        return Ok(None);
    };
    for b in &batches {
        let Some(col) = b.column_by_name("record") else {
            return Ok(None);
        };
        // Read back as string views or plain strings, depending on the reader's settings.
        let col = arrow::compute::cast(col, &DataType::Utf8)?;
        let col = col
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        if !col.is_empty() {
            return match serde_json::from_str(col.value(0)) {
                Ok(r) => Ok(Some(r)),
                Err(e) => {
                    tracing::warn!(error = %e, "the last build's record is unreadable; building in full");
                    Ok(None)
                }
            };
        }
    }
    Ok(None)
}

/// What one table's Delta log says about its dated rows.
struct Dates {
    /// Files of the version the last build read (`None` when that version can no longer be
    /// read, e.g. its log was cleaned up).
    before: Option<BTreeSet<String>>,
    /// Files now, with the earliest and latest date of each (from the add statistics).
    now: BTreeMap<String, Option<(NaiveDate, NaiveDate)>>,
}

async fn table_dates(
    lake: &Lake,
    area: &str,
    name: &str,
    column: &str,
    before: i64,
) -> Result<Dates> {
    let mut table = lake
        .table(area, name)
        .await?
        .with_context(|| format!("{area}/{name} has no Delta log"))?;
    let now = files_with_dates(&table, column)?;
    // Unchanged since the last build (most nights, for most tables): nothing more to load.
    if table.version() == Some(before as u64) {
        let before = Some(now.keys().cloned().collect());
        return Ok(Dates { before, now });
    }
    let before = match table.load_version(before as u64).await {
        Ok(()) => Some(files_with_dates(&table, column)?.into_keys().collect()),
        Err(e) => {
            tracing::warn!(table = %format!("{area}/{name}"), version = before, error = %e,
                "the version the last build read is not readable; building in full");
            None
        }
    };
    Ok(Dates { before, now })
}

fn files_with_dates(
    table: &deltalake::DeltaTable,
    column: &str,
) -> Result<BTreeMap<String, Option<(NaiveDate, NaiveDate)>>> {
    let snapshot = table.snapshot()?;
    let mut out = BTreeMap::new();
    for f in snapshot.log_data().iter() {
        let range = f.stats().and_then(|s| date_range(&s, column));
        out.insert(f.path().into_owned(), range);
    }
    Ok(out)
}

/// The `minValues` and `maxValues` of `column` in a Delta add action's statistics JSON.
fn date_range(stats: &str, column: &str) -> Option<(NaiveDate, NaiveDate)> {
    let v: serde_json::Value = serde_json::from_str(stats).ok()?;
    let date =
        |side: &str| -> Option<NaiveDate> { v.get(side)?.get(column)?.as_str()?.parse().ok() };
    Some((date("minValues")?, date("maxValues")?))
}

/// Decides the scope of a build from the last build's record and the lake as it is now.
/// `inputs` are the `area/table` versions this build reads; `declared` is `[incremental]`
/// of `metrics.toml` (append-only tables with their date columns, and which of them end
/// the periods).
pub async fn decide(
    lake: &Lake,
    last: Option<&BuildRecord>,
    code_key: &str,
    inputs: &BTreeMap<String, i64>,
    declared: &Incremental,
) -> Result<(Scope, BTreeMap<String, NaiveDate>)> {
    let append_only = &declared.append_only;
    let full = |why: String| Scope::Full { why };
    let mut last_dates = BTreeMap::new();
    // The latest dates are recorded whatever the scope: the next build needs them.
    let mut dates: BTreeMap<String, Dates> = BTreeMap::new();
    for (key, version) in inputs {
        let Some((area, name)) = key.split_once('/') else {
            continue;
        };
        let Some(column) = append_only.get(name) else {
            continue;
        };
        if *version < 0 {
            continue;
        }
        let before = last
            .and_then(|l| l.inputs.get(key))
            .copied()
            .filter(|v| *v >= 0 && v <= version)
            .unwrap_or(*version);
        let d = table_dates(lake, area, name, column, before).await?;
        if let Some(latest) = d.now.values().flatten().map(|r| r.1).max() {
            last_dates.insert(name.to_string(), latest);
        }
        dates.insert(key.clone(), d);
    }
    let Some(last) = last else {
        return Ok((full("no earlier build to start from".into()), last_dates));
    };
    if last.code_key != code_key {
        return Ok((
            full("the SQL, its declarations or its parameters changed".into()),
            last_dates,
        ));
    }
    let mut from: Option<NaiveDate> = None;
    let mut grown = Vec::new();
    for (key, version) in inputs {
        let before = last.inputs.get(key).copied();
        if before == Some(*version) {
            continue;
        }
        let name = key.split_once('/').map_or(key.as_str(), |(_, n)| n);
        let Some(d) = dates.get(key) else {
            return Ok((
                full(format!("{key} changed and is not declared append-only")),
                last_dates,
            ));
        };
        if before.is_none_or(|b| b < 0) {
            return Ok((
                full(format!("{key} is new since the last build")),
                last_dates,
            ));
        }
        let Some(files_before) = &d.before else {
            return Ok((
                full(format!(
                    "the version of {key} the last build read is not readable"
                )),
                last_dates,
            ));
        };
        if files_before.iter().any(|f| !d.now.contains_key(f)) {
            return Ok((
                full(format!("rows of {key} were replaced or removed")),
                last_dates,
            ));
        }
        let added: Vec<_> = d
            .now
            .iter()
            .filter(|(f, _)| !files_before.contains(*f))
            .collect();
        let mut earliest: Option<NaiveDate> = None;
        for (file, range) in &added {
            let Some((min, _)) = range else {
                return Ok((
                    full(format!(
                        "{key}: file {file} has no date statistics for {}",
                        append_only[name]
                    )),
                    last_dates,
                ));
            };
            earliest = Some(earliest.map_or(*min, |e| e.min(*min)));
        }
        if let Some(e) = earliest {
            from = Some(from.map_or(e, |f| f.min(e)));
            grown.push(format!("{} file(s) added to {name} from {e}", added.len()));
        }
    }
    let Some(mut from) = from else {
        return Ok((full("no appended rows to scope by".into()), last_dates));
    };
    // Periods (and whether each is complete) follow the latest date with data: a new
    // latest date can complete a period that ended before the first new row.
    let previous_latest = last
        .last_dates
        .iter()
        .filter(|(table, _)| declared.is_period_table(table))
        .map(|(_, date)| *date)
        .max();
    // The last build saw no period-table row dated from `from` on (a row it saw would be
    // counted twice by a model adding the days from `from` on to its last build). Only the
    // period tables count: a model reading its last build reads no other append-only table
    // (checked when the project loads), and a quarantined row may carry any date.
    let follows_last;
    match previous_latest {
        Some(latest) => {
            from = from.min(latest.succ_opt().unwrap_or(latest));
            follows_last = from > latest;
        }
        None => {
            return Ok((
                full("the last build recorded no latest date".into()),
                last_dates,
            ));
        }
    }
    Ok((
        Scope::From {
            from,
            why: grown.join("; "),
            follows_last,
        },
        last_dates,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_date_range_of_a_column_from_add_statistics() {
        let stats = r#"{"numRecords":3,"minValues":{"session_date":"2025-03-30","x":1},
            "maxValues":{"session_date":"2025-03-31"},"nullCount":{"session_date":0}}"#;
        assert_eq!(
            date_range(stats, "session_date"),
            Some((
                NaiveDate::from_ymd_opt(2025, 3, 30).unwrap(),
                NaiveDate::from_ymd_opt(2025, 3, 31).unwrap()
            ))
        );
        assert_eq!(date_range(stats, "other_date"), None);
        assert_eq!(date_range("not json", "session_date"), None);
    }

    #[test]
    fn a_full_scope_recomputes_from_before_any_data() {
        let full = Scope::Full { why: "x".into() };
        assert_eq!(full.recompute_from(), FULL_FROM);
        let from = NaiveDate::from_ymd_opt(2025, 3, 31).unwrap();
        let scoped = Scope::From {
            from,
            why: "y".into(),
            follows_last: true,
        };
        assert_eq!(scoped.recompute_from(), from);
        let t = build_table(
            &BuildRecord {
                run_key: "r".into(),
                code_key: "c".into(),
                inputs: BTreeMap::new(),
                last_dates: BTreeMap::new(),
                models: BTreeMap::new(),
            },
            &scoped,
        );
        let col = t
            .column_by_name("recompute_from")
            .unwrap()
            .as_any()
            .downcast_ref::<Date32Array>()
            .unwrap();
        assert_eq!(col.value(0), crate::sources::builder::date32(from));
    }
}
