//! `sql/catalogue.toml`: one entry per metric id with its definition, unit and polarity.
//! The `metric_values` mart joins it (unit decides the interval method), the docs are
//! generated from it, and a data test ties every produced metric id to an entry.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use serde::Deserialize;

/// The whole catalogue.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Metrics in documentation order.
    #[serde(default)]
    pub metric: Vec<MetricDef>,
}

/// One metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    /// Stable id (metrics.md), e.g. `REACH-01`.
    pub id: String,
    /// Family: REACH, SR, HV, SC, OV, DQ, VFM.
    pub family: String,
    /// Short name.
    pub name: String,
    /// `percent`, `count`, `rate_per_10000`, `mean` or `difference_pts`.
    pub unit: String,
    /// `higher_is_better`, `lower_is_better` or `neutral` (colours reports, never labels).
    pub polarity: String,
    /// The model (SQL file stem) that computes it.
    pub model: String,
    /// One-sentence definition.
    pub definition: String,
    /// What is counted on top.
    #[serde(default)]
    pub numerator: String,
    /// What is counted below.
    #[serde(default)]
    pub denominator: String,
    /// Breakdown types reported.
    #[serde(default)]
    pub breakdowns: Vec<String>,
    /// Lake tables it is computed from.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Published analogue, if any.
    #[serde(default)]
    pub analogue: String,
    /// Whether the metric rests on reference values marked [verify] in the specification.
    #[serde(default)]
    pub uses_unverified: bool,
    /// Version of the definition, bumped when its meaning changes.
    #[serde(default = "one")]
    pub definition_version: String,
}

fn one() -> String {
    "1".into()
}

const UNITS: &[&str] = &[
    "percent",
    "count",
    "rate_per_10000",
    "mean",
    "difference_pts",
    "gbp_per_person",
];
const POLARITIES: &[&str] = &["higher_is_better", "lower_is_better", "neutral"];

impl Catalogue {
    /// Reads and checks the catalogue.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the metric catalogue {}", path.display()))?;
        let c: Self = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let mut seen = std::collections::HashSet::new();
        for m in &c.metric {
            if !seen.insert(m.id.as_str()) {
                bail!("{}: metric {} is listed twice", path.display(), m.id);
            }
            if !UNITS.contains(&m.unit.as_str()) {
                bail!(
                    "{}: metric {}: unit {:?} is not one of {UNITS:?}",
                    path.display(),
                    m.id,
                    m.unit
                );
            }
            if !POLARITIES.contains(&m.polarity.as_str()) {
                bail!(
                    "{}: metric {}: polarity {:?} is not one of {POLARITIES:?}",
                    path.display(),
                    m.id,
                    m.polarity
                );
            }
        }
        Ok(c)
    }

    /// The `metric_catalogue` table.
    pub fn to_batch(&self) -> RecordBatch {
        let col = |f: &dyn Fn(&MetricDef) -> String| -> ArrayRef {
            Arc::new(StringArray::from(
                self.metric.iter().map(f).collect::<Vec<_>>(),
            ))
        };
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("metric_id", col(&|m| m.id.clone())),
            ("family", col(&|m| m.family.clone())),
            ("name", col(&|m| m.name.clone())),
            ("unit", col(&|m| m.unit.clone())),
            ("polarity", col(&|m| m.polarity.clone())),
            ("model", col(&|m| m.model.clone())),
            ("definition_version", col(&|m| m.definition_version.clone())),
            ("definition", col(&|m| m.definition.clone())),
            ("numerator", col(&|m| m.numerator.clone())),
            ("denominator", col(&|m| m.denominator.clone())),
            ("breakdowns", col(&|m| m.breakdowns.join(", "))),
            ("sources", col(&|m| m.sources.join(", "))),
            ("analogue", col(&|m| m.analogue.clone())),
        ];
        let mut columns = columns;
        columns.push((
            "uses_unverified",
            Arc::new(BooleanArray::from(
                self.metric
                    .iter()
                    .map(|m| m.uses_unverified)
                    .collect::<Vec<_>>(),
            )),
        ));
        let schema = Schema::new(
            columns
                .iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|c| c.1).collect())
            .expect("catalogue columns match their schema")
    }
}
