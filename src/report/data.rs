//! What the reports read from the lake, as typed rows: a report asks a [`ReportData`] for
//! rows and never sees Arrow.

use anyhow::{Context as _, Result, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::metrics::session::LakeSession;

/// A read-only session limited to the tables a report declared.
pub struct ReportData<'a> {
    session: &'a LakeSession,
}

/// One row of `metric_values` (metrics.md §1.3).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct MetricRow {
    pub metric_id: String,
    pub period_type: String,
    pub period_start: String,
    pub period_end: String,
    pub geography_type: String,
    pub geography_code: String,
    pub breakdown_type: String,
    pub breakdown_value: String,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub value: Option<f64>,
    pub lower_95: Option<f64>,
    pub upper_95: Option<f64>,
    pub comparator_type: String,
    pub comparator_value: Option<f64>,
    pub comparison: String,
    pub denominator_source: String,
    pub deprivation_vintage: String,
    pub quality_flags: String,
    pub uses_unverified: bool,
    pub run_id: String,
}

impl MetricRow {
    /// `all`, or `type=value`: the rubric's way of naming a breakdown.
    pub fn breakdown_key(&self) -> String {
        if self.breakdown_type == "all" {
            "all".into()
        } else {
            format!("{}={}", self.breakdown_type, self.breakdown_value)
        }
    }
}

/// A metric's catalogue entry (`metric_catalogue`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct CatalogueRow {
    pub metric_id: String,
    pub name: String,
    pub unit: String,
    pub polarity: String,
    pub uses_unverified: bool,
}

/// A site (`centres`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct CentreRow {
    pub centre_id: String,
    pub name: String,
    pub provider: String,
    pub early_help_area: String,
    pub lot: Option<String>,
    pub postcode: Option<String>,
    pub open_date: Option<String>,
    pub close_date: Option<String>,
    pub site_type: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// Families by LSOA and deprivation band (`reach_by_lsoa`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct LsoaRow {
    pub lsoa21: String,
    pub deprivation_band: String,
    pub children: u64,
    pub registered: u64,
    pub seen: u64,
    pub sustained: u64,
}

/// An LSOA's point: the mean of its live small-user postcodes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct LsoaPoint {
    pub lsoa21: String,
    pub lat: f64,
    pub lon: f64,
}

/// A lot's KPI at a period end (`lot_kpis`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct LotKpi {
    pub lot: String,
    pub period_end: String,
    pub kpi_id: String,
    pub metric_id: String,
    pub breakdown: String,
    pub direction: String,
    pub target: f64,
    pub tolerance: f64,
    pub weight: f64,
    pub value: Option<f64>,
    pub status: String,
    pub kpi_score: Option<f64>,
    pub meets_extension_condition: bool,
}

/// A real Ofsted inspection (`ofsted_inspections`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct OfstedRow {
    pub id: String,
    pub urn: Option<String>,
    pub inspection_date: String,
    pub overall: i64,
    pub access: Option<i64>,
    pub quality: Option<i64>,
    pub leadership: Option<i64>,
    pub source_url: Option<String>,
}

/// A commissioned contract (`contracts`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ContractRow {
    pub lot: String,
    pub provider: String,
    pub annual_value: f64,
    pub start_date: String,
    pub end_date: String,
    pub extension_option: Option<String>,
}

/// A site's direct cost in a financial year.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct SiteCost {
    pub centre_id: String,
    pub total: f64,
}

/// Children by deprivation decile (`reach_by_decile`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct DecileRow {
    pub geography_code: String,
    pub decile: String,
    pub children: u64,
    pub registered: u64,
    pub seen: u64,
    pub sustained: u64,
}

/// Activities delivered at a centre in a period, by service type.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ActivityCount {
    pub centre_id: String,
    pub service_type: String,
    pub activities: u64,
    pub sessions: u64,
}

/// The latest load of each source: what the evaluation rests on.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct SourceLoad {
    pub source: String,
    pub files: u64,
    pub rows_loaded: Option<i64>,
    pub rows_quarantined: Option<i64>,
    pub as_at: Option<String>,
}

impl<'a> ReportData<'a> {
    /// Checks that every table the report declares is in the lake, naming what to run if not.
    pub fn new(session: &'a LakeSession, report: &str, tables: &[String]) -> Result<Self> {
        let missing: Vec<&String> = tables
            .iter()
            .filter(|t| !session.tables.iter().any(|e| &e.name == *t))
            .collect();
        if !missing.is_empty() {
            bail!(
                "report {report} needs the lake tables {missing:?}, which are not there: run \
                 `earlystart run nightly` (or `earlystart metrics`) against this lake first"
            );
        }
        Ok(ReportData { session })
    }

    /// Runs a query and deserialises each row.
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>> {
        let batches = self
            .session
            .query(sql)
            .await
            .with_context(|| format!("report query failed: {sql}"))?;
        let mut buf = Vec::new();
        {
            let mut writer = arrow::json::ArrayWriter::new(&mut buf);
            for b in &batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
        if buf.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&buf).with_context(|| format!("unexpected columns from: {sql}"))
    }

    /// Every metric value of a period type at the geographies the reports use: reach areas
    /// and the deployment; for the cost metrics (measured at sites) also sites, lots,
    /// providers and early help areas; the overlap metrics by the site that delivered the
    /// targeted work (not by residence, whose reach-area codes are the same centre ids).
    /// Codes of the roll-ups are prefixed with their type (`lot:LOT3`), so they never meet a
    /// centre id.
    pub async fn metric_values(&self, period_type: &str) -> Result<Vec<MetricRow>> {
        self.rows(&format!(
            "select metric_id, period_type, cast(period_start as varchar) as period_start, \
             cast(period_end as varchar) as period_end, geography_type, \
             case when geography_type in ('reach_area', 'deployment', 'centre') \
               then geography_code else concat(geography_type, ':', geography_code) end \
               as geography_code, \
             breakdown_type, breakdown_value, cast(numerator as double) as numerator, \
             cast(denominator as double) as denominator, value, lower_95, upper_95, \
             comparator_type, comparator_value, comparison, denominator_source, \
             deprivation_vintage, quality_flags, uses_unverified, run_id \
             from metric_values where period_type = '{period_type}' \
             and ((geography_type in ('reach_area', 'deployment') and metric_id not like 'OV-%') \
               or (metric_id like 'VFM-%' \
                 and geography_type in ('centre', 'lot', 'provider', 'eh_area')) \
               or (metric_id like 'OV-%' and geography_type in ('centre', 'deployment'))) \
             order by metric_id, period_end, geography_type, geography_code, breakdown_type, \
             breakdown_value, comparator_type"
        ))
        .await
    }

    /// The metric catalogue.
    pub async fn catalogue(&self) -> Result<Vec<CatalogueRow>> {
        self.rows(
            "select metric_id, name, unit, polarity, uses_unverified from metric_catalogue \
             order by metric_id",
        )
        .await
    }

    /// Every site.
    pub async fn centres(&self) -> Result<Vec<CentreRow>> {
        self.rows(
            "select centre_id, name, provider, early_help_area, lot, postcode, \
             cast(open_date as varchar) as open_date, cast(close_date as varchar) as close_date, \
             site_type, lat, lon from centres order by centre_id",
        )
        .await
    }

    /// Families by LSOA for one financial year.
    pub async fn reach_by_lsoa(&self, period_end: &str) -> Result<Vec<LsoaRow>> {
        self.rows(&format!(
            "select lsoa21, deprivation_band, children, registered, seen, sustained \
             from reach_by_lsoa where period_end = date '{period_end}' order by lsoa21, deprivation_band"
        ))
        .await
    }

    /// Each LSOA's point: the mean position of its live small-user postcodes
    /// (value-for-money.md §5, `postcode_mean`).
    pub async fn lsoa_points(&self) -> Result<Vec<LsoaPoint>> {
        self.rows(
            "select lsoa21, avg(lat) as lat, avg(lon) as lon from postcodes \
             where terminated is null and coalesce(usertype, 0) = 0 and lat is not null \
             and lon is not null and lsoa21 is not null group by lsoa21 order by lsoa21",
        )
        .await
    }

    /// Direct costs of the sites in one financial year (`2024-25`).
    pub async fn site_costs(&self, financial_year: &str) -> Result<Vec<SiteCost>> {
        self.rows(&format!(
            "select centre_id, total from centre_costs where financial_year = '{financial_year}' \
             and centre_id <> 'CENTRAL' order by centre_id"
        ))
        .await
    }

    /// The cohorts behind cost avoidance (`avoidance_cohorts`).
    pub async fn avoidance_cohorts(&self) -> Result<Vec<super::avoidance::CohortRow>> {
        self.rows(
            "select cast(period_end as varchar) as period_end, cohort, stratum, outcome, \
             months_after, children, cast(data_until as varchar) as data_until \
             from avoidance_cohorts order by 1, 2, 3, 4, 5",
        )
        .await
    }

    /// The run's unit costs: `reference/unit_costs.csv` as the run ingested and checked it.
    pub async fn unit_costs(&self) -> Result<crate::reference::UnitCosts> {
        Ok(crate::reference::UnitCosts(
            self.rows(
                "select item, unit, cast(value_gbp as double) as value_gbp, price_year, source, \
                 coalesce(confirmed, false) as confirmed, coalesce(notes, '') as notes \
                 from ref_unit_costs order by item",
            )
            .await?,
        ))
    }

    /// Every lot's KPIs at every period end.
    pub async fn lot_kpis(&self) -> Result<Vec<LotKpi>> {
        self.rows(
            "select lot, cast(period_end as varchar) as period_end, kpi_id, metric_id, breakdown, \
             direction, target, tolerance, weight, value, status, kpi_score, \
             meets_extension_condition from lot_kpis order by lot, period_end, kpi_id",
        )
        .await
    }

    /// Every real Ofsted inspection, oldest first.
    pub async fn ofsted_inspections(&self) -> Result<Vec<OfstedRow>> {
        self.rows(
            "select id, urn, cast(inspection_date as varchar) as inspection_date, overall, access, \
             quality, leadership, source_url from ofsted_inspections order by id, inspection_date",
        )
        .await
    }

    /// Every contract.
    pub async fn contracts(&self) -> Result<Vec<ContractRow>> {
        self.rows(
            "select lot, provider, annual_value, cast(start_date as varchar) as start_date, \
             cast(end_date as varchar) as end_date, extension_option from contracts \
             order by lot, start_date",
        )
        .await
    }

    /// LSOAs per reach area.
    pub async fn reach_area_sizes(&self) -> Result<Vec<(String, u64)>> {
        #[derive(Deserialize)]
        struct Row {
            centre_id: String,
            lsoas: u64,
        }
        let rows: Vec<Row> = self
            .rows(
                "select centre_id, count(distinct lsoa_code) as lsoas from reach_areas \
                 group by centre_id order by centre_id",
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.centre_id, r.lsoas)).collect())
    }

    /// Children by decile for one period.
    pub async fn deciles(&self, period_type: &str, period_end: &str) -> Result<Vec<DecileRow>> {
        self.rows(&format!(
            "select geography_code, decile, children, registered, seen, sustained \
             from reach_by_decile where period_type = '{period_type}' \
             and period_end = date '{period_end}' order by geography_code, decile"
        ))
        .await
    }

    /// Activities and sessions per centre and service type between two dates.
    pub async fn activity_counts(&self, start: &str, end: &str) -> Result<Vec<ActivityCount>> {
        self.rows(&format!(
            "select at.centre_id, coalesce(a.service_type, 'unknown') as service_type, \
             count(distinct at.activity_code) as activities, \
             count(distinct concat(at.activity_code, '|', cast(at.session_date as varchar))) \
             as sessions \
             from attendances as at left join activities as a \
             on a.activity_code = at.activity_code \
             where at.session_date between date '{start}' and date '{end}' \
             group by 1, 2 order by 1, 2"
        ))
        .await
    }

    /// Each source's most recent load (the files of its latest run), from the lake's load log.
    pub async fn source_loads(&self) -> Result<Vec<SourceLoad>> {
        self.rows(
            "select l.source, count(*) as files, sum(l.rows_loaded) as rows_loaded, \
             sum(l.rows_quarantined) as rows_quarantined, \
             cast(max(l.as_at) as varchar) as as_at from file_loads as l \
             inner join (select source, max(run_id) as run_id from file_loads \
                         where status = 'loaded' group by source) as latest \
             on latest.source = l.source and latest.run_id = l.run_id \
             where l.status = 'loaded' group by l.source order by l.source",
        )
        .await
    }
}
