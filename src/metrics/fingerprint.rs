//! Fingerprints that let a build keep a model's table as it is: a digest of everything the
//! model's rows follow from, and a digest of the rows themselves. When a model's inputs
//! digest equals the one recorded with its table, building it again would give the same
//! rows, so it is not built, tested or published again. A small output is digested by
//! content, so a model rebuilt to the same rows (the reporting periods after a day inside
//! a period, say) leaves the models that read it untouched ("early cutoff").

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, Result};
use arrow::array::RecordBatch;
use arrow::row::{RowConverter, SortField};
use sha2::{Digest as _, Sha256};

use super::incremental::ModelRecord;
use super::project::Model;
use super::session::LakeSession;
use crate::reference::sha256_hex;

/// Outputs of at most this many rows are digested by content: reading them back costs
/// milliseconds, and they are the tables (periods, lookups) most often rebuilt unchanged.
pub const CONTENT_DIGEST_ROWS: usize = 100_000;

/// What every model's rows may follow from besides the tables it reads: the program (its
/// functions, e.g. the confidence intervals) and the project's parameters and catalogue.
pub fn base_key(provided: &[(&str, String)]) -> String {
    let mut parts = vec![format!("earlystart {}", env!("CARGO_PKG_VERSION"))];
    parts.extend(
        provided
            .iter()
            .map(|(name, d)| format!("provided {name} {d}")),
    );
    sha256_hex(parts.join("\n").as_bytes())
}

/// The digest of everything `m`'s rows follow from: `base`, its SQL and declarations, and
/// for each table it reads, the output digest of the model that made it in this build, the
/// digest of a table the project provides, or the Delta version of a lake table.
pub fn model_inputs(
    base: &str,
    m: &Model,
    session: &LakeSession,
    models: &BTreeMap<String, ModelRecord>,
    provided: &HashMap<&str, String>,
) -> String {
    let mut parts = vec![
        format!("base {base}"),
        format!(
            "model {} {} incremental {:?} keep_earlier {}",
            m.name,
            sha256_hex(m.sql.as_bytes()),
            m.doc.incremental,
            m.doc.keep_earlier
        ),
    ];
    for t in &m.reads {
        // A model's name comes first: its last table is also registered from the lake.
        let source = if let Some(r) = models.get(t) {
            format!("model {t} {}", r.output)
        } else if let Some(d) = provided.get(t.as_str()) {
            format!("provided {t} {d}")
        } else {
            match session.tables.iter().find(|e| &e.name == t) {
                Some(e) => format!("lake {}/{t} v{}", e.area, e.version),
                None => format!("missing {t}"),
            }
        };
        parts.push(source);
    }
    sha256_hex(parts.join("\n").as_bytes())
}

/// A digest of a table's rows that does not depend on their order or on how they are cut
/// into batches: each row in Arrow's row format (a byte string that compares as the row
/// does), sorted, then hashed with the schema.
pub fn content_digest(batches: &[RecordBatch]) -> Result<String> {
    let Some(first) = batches.first() else {
        return Ok(sha256_hex(b"no batches"));
    };
    let schema = first.schema();
    let converter = RowConverter::new(
        schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    )
    .context("cannot put the rows in Arrow's row format to digest them")?;
    let mut rows = Vec::new();
    for b in batches {
        let converted = converter.convert_columns(b.columns())?;
        rows.extend(converted.iter().map(|r| r.owned()));
    }
    rows.sort_unstable();
    let mut hasher = Sha256::new();
    for f in schema.fields() {
        hasher.update(format!("{}:{}:{};", f.name(), f.data_type(), f.is_nullable()).as_bytes());
    }
    for r in &rows {
        let bytes = r.row();
        let bytes = bytes.as_ref();
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(ids: &[i64], names: &[Option<&str>]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_content_digest_ignores_row_order_and_batching_but_not_values() {
        let one = content_digest(&[batch(&[1, 2, 3], &[Some("a"), None, Some("c")])]).unwrap();
        let reordered = content_digest(&[
            batch(&[3], &[Some("c")]),
            batch(&[2, 1], &[None, Some("a")]),
        ])
        .unwrap();
        assert_eq!(one, reordered);
        // A null is not an empty string, and a repeated row counts.
        let empty = content_digest(&[batch(&[1, 2, 3], &[Some("a"), Some(""), Some("c")])]);
        assert_ne!(one, empty.unwrap());
        let repeated = content_digest(&[batch(
            &[1, 2, 3, 3],
            &[Some("a"), None, Some("c"), Some("c")],
        )]);
        assert_ne!(one, repeated.unwrap());
        // Values moved between columns of the same rows are different rows.
        let swapped = content_digest(&[batch(&[1, 2, 3], &[Some("c"), None, Some("a")])]);
        assert_ne!(one, swapped.unwrap());
    }
}
