//! `sql/metrics.toml`: the tunables of metrics.md §1.2. The metric SQL reads them from the
//! one-row table `metric_params`, so an analyst sees the same values the run used.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use serde::Deserialize;

/// All tunables, with the shipped defaults of metrics.md §1.2.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricParams {
    /// `[reach]`
    pub reach: Reach,
    /// `[population]`
    pub population: Population,
    /// `[deprivation]`
    pub deprivation: Deprivation,
    /// `[school_readiness]`
    pub school_readiness: SchoolReadiness,
    /// `[health_visiting]`
    pub health_visiting: HealthVisiting,
    /// `[stats]`
    pub stats: Stats,
    /// `[periods]`
    pub periods: Periods,
    /// `[incremental]`
    pub incremental: Incremental,
}

/// `[reach]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reach {
    /// Contact days that make engagement sustained.
    pub sustained_min_contacts: i64,
    /// Length of the sustained-engagement window.
    pub sustained_window_months: i64,
    /// `session_day` (distinct days) or `attendance` (rows).
    pub contact_unit: String,
    /// Whether a family member's attendance counts for the child.
    pub family_contacts_count_for_children: bool,
    /// `any_centre` or `own_centre`.
    pub registration_scope: String,
}

impl Default for Reach {
    fn default() -> Self {
        Self {
            sustained_min_contacts: 3,
            sustained_window_months: 12,
            contact_unit: "session_day".into(),
            family_contacts_count_for_children: true,
            registration_scope: "any_centre".into(),
        }
    }
}

/// `[population]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Population {
    /// `chis` (person-level) or `ons_mye` (aggregate).
    pub source: String,
}

impl Default for Population {
    fn default() -> Self {
        Self {
            source: "chis".into(),
        }
    }
}

/// `[deprivation]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deprivation {
    /// `idaci` or `imd`.
    pub index: String,
    /// `iod2019` (2011 LSOAs) or `iod2025` (2021 LSOAs).
    pub vintage: String,
    /// Deciles that count as the most deprived 30%.
    pub most_deprived_deciles: Vec<i64>,
}

impl Default for Deprivation {
    fn default() -> Self {
        Self {
            index: "idaci".into(),
            vintage: "iod2019".into(),
            most_deprived_deciles: vec![1, 2, 3],
        }
    }
}

/// `[school_readiness]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchoolReadiness {
    /// ASQ-3 questionnaires that count as the 2–2½ year review.
    pub asq_review_questionnaires: Vec<i64>,
    /// Days between an ASQ-3 row and a REVIEW_2_2_5Y contact that still match.
    pub asq_review_match_tolerance_days: i64,
}

impl Default for SchoolReadiness {
    fn default() -> Self {
        Self {
            asq_review_questionnaires: vec![24, 27, 30],
            asq_review_match_tolerance_days: 7,
        }
    }
}

/// `[health_visiting]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthVisiting {
    /// HV-11 coverage below which HV-09/HV-10 are flagged `low_coverage`.
    pub breastfeeding_coverage_threshold: f64,
    /// OTHER contacts that stand in for additional support when `service_level` is absent.
    pub hv_additional_support_fallback_other_contacts: i64,
}

impl Default for HealthVisiting {
    fn default() -> Self {
        Self {
            breastfeeding_coverage_threshold: 0.95,
            hv_additional_support_fallback_other_contacts: 3,
        }
    }
}

/// `[stats]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Stats {
    /// Confidence level of every interval.
    pub confidence: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Self { confidence: 0.95 }
    }
}

/// `[periods]`: which periods `metric_values` covers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Periods {
    /// Rolling 12-month windows end at every quarter end (`quarter`) or month end (`month`).
    pub rolling_step: String,
}

impl Default for Periods {
    fn default() -> Self {
        Self {
            rolling_step: "quarter".into(),
        }
    }
}

/// `[incremental]`: what an incremental build may assume (see [`super::incremental`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Incremental {
    /// Tables that only ever grow, each with the date column that places a row in time.
    pub append_only: std::collections::BTreeMap<String, String>,
    /// The append-only tables whose latest date ends the reporting periods (`stg_periods`
    /// reads it): a new latest date there can complete a period that ended before the first
    /// new row. Empty: every append-only table. A table that only records rows about others
    /// (the quarantine, dated by the rejected row's own date, which may be anything) must not
    /// be one, or its oldest date would hold every build back to it.
    pub period_tables: Vec<String>,
}

impl Incremental {
    /// Whether `table` ends the periods (every append-only table does when none is named).
    pub fn is_period_table(&self, table: &str) -> bool {
        self.append_only.contains_key(table)
            && (self.period_tables.is_empty() || self.period_tables.iter().any(|t| t == table))
    }
}

impl MetricParams {
    /// Reads `metrics.toml`; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let p: Self = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        p.check().with_context(|| format!("{}", path.display()))?;
        Ok(p)
    }

    fn check(&self) -> Result<()> {
        let one_of = |what: &str, v: &str, allowed: &[&str]| -> Result<()> {
            if !allowed.contains(&v) {
                bail!("{what} = {v:?}; expected one of {allowed:?}");
            }
            Ok(())
        };
        one_of(
            "reach.contact_unit",
            &self.reach.contact_unit,
            &["session_day", "attendance"],
        )?;
        one_of(
            "reach.registration_scope",
            &self.reach.registration_scope,
            &["any_centre", "own_centre"],
        )?;
        one_of(
            "population.source",
            &self.population.source,
            &["chis", "ons_mye"],
        )?;
        if self.population.source == "ons_mye" {
            bail!(
                "population.source = \"ons_mye\" (aggregate ONS denominators) is not implemented \
                 yet; use \"chis\""
            );
        }
        one_of(
            "deprivation.index",
            &self.deprivation.index,
            &["idaci", "imd"],
        )?;
        one_of(
            "deprivation.vintage",
            &self.deprivation.vintage,
            &["iod2019", "iod2025"],
        )?;
        one_of(
            "periods.rolling_step",
            &self.periods.rolling_step,
            &["quarter", "month"],
        )?;
        if self.reach.sustained_min_contacts < 1 || self.reach.sustained_window_months < 1 {
            bail!("reach.sustained_min_contacts and sustained_window_months must be at least 1");
        }
        if let Some(t) = self
            .incremental
            .period_tables
            .iter()
            .find(|t| !self.incremental.append_only.contains_key(*t))
        {
            bail!("incremental.period_tables names {t:?}, which is not in append_only");
        }
        if !(0.5..1.0).contains(&self.stats.confidence) {
            bail!(
                "stats.confidence = {}; expected a level such as 0.95",
                self.stats.confidence
            );
        }
        Ok(())
    }

    /// The one-row `metric_params` table.
    pub fn to_batch(&self) -> RecordBatch {
        let list = |v: &[i64]| -> ArrayRef {
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
                Some(v.iter().map(|x| Some(*x)).collect::<Vec<_>>()),
            ]))
        };
        let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
        let int = |v: i64| -> ArrayRef { Arc::new(Int64Array::from(vec![v])) };
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "sustained_min_contacts",
                int(self.reach.sustained_min_contacts),
            ),
            (
                "sustained_window_months",
                int(self.reach.sustained_window_months),
            ),
            ("contact_unit", text(&self.reach.contact_unit)),
            (
                "family_contacts_count_for_children",
                Arc::new(BooleanArray::from(vec![
                    self.reach.family_contacts_count_for_children,
                ])),
            ),
            ("registration_scope", text(&self.reach.registration_scope)),
            ("population_source", text(&self.population.source)),
            ("deprivation_index", text(&self.deprivation.index)),
            ("deprivation_vintage", text(&self.deprivation.vintage)),
            (
                "most_deprived_deciles",
                list(&self.deprivation.most_deprived_deciles),
            ),
            (
                "asq_review_questionnaires",
                list(&self.school_readiness.asq_review_questionnaires),
            ),
            (
                "asq_review_match_tolerance_days",
                int(self.school_readiness.asq_review_match_tolerance_days),
            ),
            (
                "breastfeeding_coverage_threshold",
                Arc::new(Float64Array::from(vec![
                    self.health_visiting.breastfeeding_coverage_threshold,
                ])),
            ),
            (
                "hv_additional_support_fallback_other_contacts",
                int(self
                    .health_visiting
                    .hv_additional_support_fallback_other_contacts),
            ),
            (
                "confidence",
                Arc::new(Float64Array::from(vec![self.stats.confidence])),
            ),
            ("rolling_step", text(&self.periods.rolling_step)),
        ];
        let schema = Schema::new(
            columns
                .iter()
                .map(|(n, a)| {
                    let nullable = matches!(a.data_type(), DataType::List(_));
                    Field::new(*n, a.data_type().clone(), nullable)
                })
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|c| c.1).collect())
            .expect("metric_params columns match their schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let p: MetricParams = toml::from_str("[reach]\nsustained_min_contacts = 4\n").unwrap();
        assert_eq!(p.reach.sustained_min_contacts, 4);
        assert_eq!(p.reach.contact_unit, "session_day");
        assert_eq!(p.deprivation.most_deprived_deciles, vec![1, 2, 3]);
        assert_eq!(p.to_batch().num_rows(), 1);
        let ons: MetricParams = toml::from_str("[population]\nsource = \"ons_mye\"\n").unwrap();
        assert!(
            ons.check()
                .unwrap_err()
                .to_string()
                .contains("not implemented")
        );
        let bad: MetricParams = toml::from_str("[reach]\ncontact_unit = \"visits\"\n").unwrap();
        assert!(
            bad.check()
                .unwrap_err()
                .to_string()
                .contains("contact_unit")
        );
        assert!(toml::from_str::<MetricParams>("[reach]\ntypo = 1\n").is_err());
        let stray: MetricParams = toml::from_str(
            "[incremental]\nappend_only = { attendances = \"session_date\" }\n\
             period_tables = [\"quarantine\"]\n",
        )
        .unwrap();
        assert_eq!(
            stray.check().unwrap_err().to_string(),
            "incremental.period_tables names \"quarantine\", which is not in append_only"
        );
    }
}
