//! The value-for-money report (shared/domain/value-for-money.md §2): cost per registered
//! child, child seen, sustained engagement, attendance and targeted family for every site,
//! lot and provider, ranked, beside the council's own figure; each after disclosure control.
//!
//! Beside the costs: how many of the families in targeted centre work are already supported
//! by children's social care, early help or health visiting (metrics.md §6, OV-01/OV-02),
//! and the cost avoidance estimate (VFM-07, [`super::avoidance`]).
//! What the lake cannot answer yet is said in the report, not left out silently.

use serde::Serialize;

use anyhow::Result;

use std::collections::BTreeMap;

use super::charts::{self, Chart, RankedBar};
use super::data::{CatalogueRow, CentreRow, LsoaPoint, LsoaRow, SiteCost};
use super::disclosure::{Cell, Policy, Shown, Table};
use super::evaluation::{DisclosureView, Period, pounds, whole_pounds};
use super::figures::{DEPLOYMENT, Figure, Figures};
use super::scenario::{self, Area, Counts, ScenarioSpec, Site};

/// The cost metrics, in the order of value-for-money.md §2.
pub const VFM_METRICS: [&str; 7] = [
    "VFM-01", "VFM-02", "VFM-03", "VFM-04", "VFM-05", "VFM-06a", "VFM-06b",
];

/// The statement under the title and in every page footer of a value-for-money report.
pub fn statement(council_name: &str) -> String {
    format!(
        "Value-for-money figures produced by {council_name} with earlystart from its finance and \
         service data. Costs are attributed to sites as stated in this report; a cost per child \
         or per outcome divides what a unit cost by what it did and does not claim the unit \
         caused any outcome. Cost avoidance is never a cashable saving."
    )
}

/// Everything the value-for-money template receives.
#[derive(Debug, Clone, Serialize)]
pub struct ValueContext {
    pub council_name: String,
    pub period: Period,
    pub statement: String,
    pub disclosure: DisclosureView,
    /// The council's cost per X (the comparator of every row).
    pub council: Vec<CouncilFigure>,
    /// One ranked table per metric and level (site, lot, provider).
    pub tables: Vec<RankedTable>,
    pub charts: Vec<Chart>,
    pub total_cost: String,
    pub scenarios: Vec<ScenarioView>,
    pub lots: Vec<LotPerformance>,
    /// Families in targeted centre work also supported elsewhere; `None` when the year has
    /// no targeted work.
    pub overlap: Option<OverlapView>,
    /// Cost avoidance (VFM-07); `None` without `reports/vfm_avoidance.toml`.
    pub avoidance: Option<super::avoidance::AvoidanceView>,
    pub not_yet: Vec<String>,
}

/// The overlap measures, in the order of metrics.md §6.
pub const OVERLAP_METRICS: [&str; 4] = ["OV-01a", "OV-01b", "OV-01c", "OV-01"];

/// Families in targeted centre work who are also supported by other services
/// (metrics.md §6), after disclosure control.
#[derive(Debug, Clone, Serialize)]
pub struct OverlapView {
    /// Cohort families in the council.
    pub families: String,
    /// OV-01a, OV-01b, OV-01c and OV-01 for the council.
    pub council: Vec<OverlapLine>,
    /// OV-02: families by number of services, 1 to 4.
    pub distribution: Vec<OverlapLine>,
    /// OV-01 at each site that delivered targeted work, highest share first.
    pub sites: Vec<OverlapLine>,
    pub chart: Option<Chart>,
}

/// One overlap figure as printed.
#[derive(Debug, Clone, Serialize)]
pub struct OverlapLine {
    pub label: String,
    /// Families counted (the numerator).
    pub counted: String,
    /// Of how many cohort families.
    pub families: String,
    pub percent: String,
    /// The 95% interval, blank when hidden.
    pub interval: String,
}

impl OverlapLine {
    fn new(label: String, f: &Figure) -> Self {
        OverlapLine {
            label,
            counted: f.numerator.display(0),
            families: f.denominator.display(0),
            percent: f.value.display(1),
            interval: f
                .interval()
                .map_or_else(String::new, |(lo, hi)| format!("{lo:.1} – {hi:.1}")),
        }
    }
}

/// The overlap section from controlled figures: the council's measures, the distribution
/// by number of services, and each delivering site's OV-01 ranked with its interval.
pub fn overlap(
    fy: &Figures,
    period: &Period,
    catalogue: &[CatalogueRow],
    centres: &[CentreRow],
) -> Result<Option<OverlapView>> {
    let Some(total) = fy.get("OV-01", &period.end, DEPLOYMENT, "all") else {
        return Ok(None);
    };
    let name_of = |metric: &str| {
        catalogue
            .iter()
            .find(|c| c.metric_id == metric)
            .map_or_else(|| metric.to_string(), |c| c.name.clone())
    };
    let council = OVERLAP_METRICS
        .iter()
        .filter_map(|m| {
            let f = fy.get(m, &period.end, DEPLOYMENT, "all")?;
            Some(OverlapLine::new(format!("{m} {}", name_of(m)), f))
        })
        .collect();
    let distribution = (1..=4)
        .filter_map(|n| {
            let f = fy.get("OV-02", &period.end, DEPLOYMENT, &format!("services={n}"))?;
            let label = match n {
                1 => "Targeted centre work only".to_string(),
                n => format!("{n} services"),
            };
            Some(OverlapLine::new(label, f))
        })
        .collect();
    let mut sites: Vec<(&CentreRow, &Figure)> = centres
        .iter()
        .filter_map(|c| Some((c, fy.get("OV-01", &period.end, &c.centre_id, "all")?)))
        .collect();
    // Highest share first; sites whose share is hidden last, by id.
    sites.sort_by(|a, b| match (a.1.value(), b.1.value()) {
        (Some(x), Some(y)) => y.total_cmp(&x).then(a.0.centre_id.cmp(&b.0.centre_id)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.0.centre_id.cmp(&b.0.centre_id),
    });
    let bars: Vec<RankedBar> = sites
        .iter()
        .filter_map(|(c, f)| {
            let (lower, upper) = f.interval().unzip();
            Some(RankedBar {
                label: c.centre_id.clone(),
                value: f.value()?,
                lower,
                upper,
                highlight: false,
            })
        })
        .collect();
    let chart = if bars.is_empty() {
        None
    } else {
        Some(charts::ranked_bars(
            &format!(
                "Families in targeted work also supported by another service, by site, {} (%)",
                period.label
            ),
            "%",
            &bars,
            total.value().map(|v| ("Council", v)),
        )?)
    };
    Ok(Some(OverlapView {
        families: total.denominator.display(0),
        council,
        distribution,
        sites: sites
            .iter()
            .map(|(c, f)| OverlapLine::new(format!("{} ({})", c.name, c.centre_id), f))
            .collect(),
        chart,
    }))
}

/// A lot's contract and its KPI performance at the period end (value-for-money.md §4).
#[derive(Debug, Clone, Serialize)]
pub struct LotPerformance {
    pub lot: String,
    pub provider: String,
    pub annual_value: String,
    pub end_date: String,
    pub extension_option: String,
    pub kpi_score: String,
    pub meets_extension_condition: bool,
    pub kpis: Vec<KpiLine>,
}

/// One KPI of a lot.
#[derive(Debug, Clone, Serialize)]
pub struct KpiLine {
    pub kpi_id: String,
    pub measure: String,
    pub target: String,
    pub value: String,
    pub status: String,
    pub weight: String,
}

/// Each contract with its lot's KPIs at the period end.
pub fn contract_performance(
    kpis: &[super::data::LotKpi],
    contracts: &[super::data::ContractRow],
    period: &Period,
) -> Vec<LotPerformance> {
    contracts
        .iter()
        .filter(|c| {
            c.start_date.as_str() <= period.end.as_str()
                && c.end_date.as_str() >= period.start.as_str()
        })
        .map(|c| {
            let at: Vec<&super::data::LotKpi> = kpis
                .iter()
                .filter(|k| k.lot == c.lot && k.period_end == period.end)
                .collect();
            LotPerformance {
                lot: c.lot.clone(),
                provider: c.provider.clone(),
                annual_value: format!("£{}", whole_pounds(c.annual_value)),
                end_date: c.end_date.clone(),
                extension_option: c.extension_option.clone().unwrap_or_default(),
                kpi_score: at
                    .first()
                    .and_then(|k| k.kpi_score)
                    .map_or("no data".into(), |s| format!("{s:.1}%")),
                meets_extension_condition: at.first().is_some_and(|k| k.meets_extension_condition),
                kpis: at
                    .iter()
                    .map(|k| KpiLine {
                        kpi_id: k.kpi_id.clone(),
                        measure: match k.breakdown.as_str() {
                            "all" => k.metric_id.clone(),
                            b => format!(
                                "{} ({})",
                                k.metric_id,
                                super::evaluation::breakdown_label(b)
                            ),
                        },
                        target: format!(
                            "{} {} (±{})",
                            if k.direction == "higher" {
                                "≥"
                            } else {
                                "≤"
                            },
                            k.target,
                            k.tolerance
                        ),
                        value: k.value.map_or("no data".into(), |v| format!("{v:.1}")),
                        status: k.status.replace('_', " "),
                        weight: format!("{}", k.weight),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// A closure or budget scenario as the report shows it: counts after disclosure control.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioView {
    pub name: String,
    pub file: String,
    /// Why it could not run (a site that is not open, no coordinates, …).
    pub error: Option<String>,
    pub rule: String,
    pub closed: Vec<String>,
    pub savings: String,
    pub threshold_km: String,
    pub mean_km_before: String,
    pub mean_km_after: String,
    /// Rows: deprivation bands and the total; columns: under-fives, registered, seen,
    /// sustained newly beyond the threshold.
    pub newly_beyond: Vec<(String, Vec<String>)>,
    /// The same for every family whose distance increases.
    pub increased: Vec<String>,
    pub changed: Vec<super::scenario::AreaChange>,
}

/// The council's figure for one metric.
#[derive(Debug, Clone, Serialize)]
pub struct CouncilFigure {
    pub metric_id: String,
    pub name: String,
    pub value: String,
    pub denominator: String,
}

/// A ranked table: one metric at one level.
#[derive(Debug, Clone, Serialize)]
pub struct RankedTable {
    pub metric_id: String,
    pub name: String,
    pub level: String,
    pub rows: Vec<RankedRow>,
}

/// One unit in a ranked table (rank 1 = lowest cost per person).
#[derive(Debug, Clone, Serialize)]
pub struct RankedRow {
    pub rank: String,
    pub code: String,
    pub name: String,
    pub cost: String,
    pub denominator: String,
    pub value: String,
    /// Cost per person ÷ the council's.
    pub ratio: String,
}

/// Builds the report's context from controlled figures.
#[allow(clippy::too_many_arguments)]
pub fn context(
    council_name: &str,
    period: &Period,
    fy: &Figures,
    catalogue: &[CatalogueRow],
    centres: &[CentreRow],
    disclosure: DisclosureView,
    scenarios: Vec<ScenarioView>,
    lots: Vec<LotPerformance>,
    avoidance: Option<super::avoidance::AvoidanceView>,
) -> Result<ValueContext> {
    let overlap = overlap(fy, period, catalogue, centres)?;
    let name_of = |metric: &str| {
        catalogue
            .iter()
            .find(|c| c.metric_id == metric)
            .map_or_else(|| metric.to_string(), |c| c.name.clone())
    };
    let council_value = |metric: &str| {
        fy.get(metric, &period.end, DEPLOYMENT, "all")
            .and_then(Figure::value)
    };
    let council: Vec<CouncilFigure> = VFM_METRICS
        .iter()
        .map(|m| {
            let f = fy.get(m, &period.end, DEPLOYMENT, "all");
            CouncilFigure {
                metric_id: m.to_string(),
                name: name_of(m),
                value: f
                    .and_then(Figure::value)
                    .map_or("no data".into(), |v| format!("£{}", pounds(v))),
                denominator: f.map_or(String::new(), |f| f.denominator.display(0)),
            }
        })
        .collect();
    let total_cost = fy
        .get("VFM-01", &period.end, DEPLOYMENT, "all")
        .and_then(|f| match f.numerator {
            Shown::Number(pence) => Some(format!("£{}", whole_pounds(pence / 100.0))),
            _ => None,
        })
        .unwrap_or_else(|| "no finance data for this year".into());

    let levels: [(&str, &str); 3] = [("centre", "Site"), ("lot", "Lot"), ("provider", "Provider")];
    let mut tables = Vec::new();
    let mut charts_out = Vec::new();
    for metric in VFM_METRICS {
        let reference = council_value(metric);
        for (level, label) in levels {
            let mut rows: Vec<(String, &Figure)> = fy
                .by_key
                .iter()
                .filter(|(k, _)| k.0 == metric && k.1 == period.end && k.3 == "all")
                .filter(|(k, _)| match level {
                    "centre" => centres.iter().any(|c| c.centre_id == k.2),
                    _ => k.2.starts_with(&format!("{level}:")),
                })
                .map(|(k, f)| (k.2.clone(), f))
                .collect();
            // A measure nobody was counted in at this level (no child with the outcome and
            // sustained engagement yet) is a table of `z`: the council summary says it once.
            if rows.iter().all(|(_, f)| f.value == Shown::NotApplicable) {
                continue;
            }
            // Lowest cost per person first; units whose value is hidden or undefined last.
            rows.sort_by(|a, b| match (a.1.value(), b.1.value()) {
                (Some(x), Some(y)) => x.total_cmp(&y).then(a.0.cmp(&b.0)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.0.cmp(&b.0),
            });
            let mut rank = 0;
            let ranked: Vec<RankedRow> = rows
                .iter()
                .map(|(code, f)| {
                    let plain = code.split_once(':').map_or(code.as_str(), |(_, c)| c);
                    let name = centres
                        .iter()
                        .find(|c| c.centre_id == plain)
                        .map_or_else(|| plain.to_string(), |c| c.name.clone());
                    let value = f.value();
                    if value.is_some() {
                        rank += 1;
                    }
                    RankedRow {
                        rank: if value.is_some() {
                            rank.to_string()
                        } else {
                            "–".into()
                        },
                        code: plain.to_string(),
                        name,
                        cost: match f.numerator {
                            Shown::Number(pence) => format!("£{}", whole_pounds(pence / 100.0)),
                            _ => String::new(),
                        },
                        denominator: f.denominator.display(0),
                        value: value
                            .map_or_else(|| f.value.display(2), |v| format!("£{}", pounds(v))),
                        ratio: match (value, reference) {
                            (Some(v), Some(r)) if r > 0.0 => format!("{:.2}", v / r),
                            _ => String::new(),
                        },
                    }
                })
                .collect();
            if metric == "VFM-03" {
                let bars: Vec<RankedBar> = rows
                    .iter()
                    .filter_map(|(code, f)| {
                        Some(RankedBar {
                            label: code
                                .split_once(':')
                                .map_or(code.as_str(), |(_, c)| c)
                                .to_string(),
                            value: f.value()?,
                            lower: None,
                            upper: None,
                            highlight: false,
                        })
                    })
                    .collect();
                if !bars.is_empty() {
                    charts_out.push(charts::ranked_bars(
                        &format!(
                            "{} by {}, {} (£)",
                            name_of(metric),
                            label.to_lowercase(),
                            period.label
                        ),
                        "",
                        &bars,
                        reference.map(|r| ("Council", r)),
                    )?);
                }
            }
            tables.push(RankedTable {
                metric_id: metric.to_string(),
                name: name_of(metric),
                level: label.to_string(),
                rows: ranked,
            });
        }
    }
    Ok(ValueContext {
        council_name: council_name.to_string(),
        period: period.clone(),
        statement: statement(council_name),
        disclosure,
        council,
        tables,
        charts: charts_out,
        total_cost,
        scenarios,
        lots,
        overlap,
        not_yet: if avoidance.is_none() {
            vec![
                "Cost avoidance (VFM-07): no reports/vfm_avoidance.toml with its assumptions."
                    .into(),
            ]
        } else {
            Vec::new()
        },
        avoidance,
    })
}

/// Runs one scenario on the lake's sites and families and controls its counts.
#[allow(clippy::too_many_arguments)]
pub fn scenario_view(
    file: &str,
    spec: &ScenarioSpec,
    centres: &[CentreRow],
    costs: &[SiteCost],
    lsoas: &[LsoaRow],
    points: &[LsoaPoint],
    policy: &Policy,
    confidence: f64,
) -> Result<ScenarioView> {
    let as_at = spec.as_at.to_string();
    let open: Vec<Site> = centres
        .iter()
        .filter(|c| {
            spec.site_types
                .iter()
                .any(|t| Some(t.as_str()) == c.site_type.as_deref())
        })
        .filter(|c| c.open_date.as_deref().is_some_and(|d| d <= as_at.as_str()))
        .filter(|c| c.close_date.as_deref().is_none_or(|d| d >= as_at.as_str()))
        .filter_map(|c| {
            Some(Site {
                id: c.centre_id.clone(),
                lat: c.lat?,
                lon: c.lon?,
                direct_cost: costs
                    .iter()
                    .find(|k| k.centre_id == c.centre_id)
                    .map_or(0.0, |k| k.total),
            })
        })
        .collect();
    let point: BTreeMap<&str, &LsoaPoint> = points.iter().map(|p| (p.lsoa21.as_str(), p)).collect();
    let areas: Vec<Area> = lsoas
        .iter()
        .filter_map(|l| {
            let p = point.get(l.lsoa21.as_str())?;
            Some(Area {
                lsoa: l.lsoa21.clone(),
                lat: p.lat,
                lon: p.lon,
                band: l.deprivation_band.clone(),
                counts: Counts {
                    under_fives: l.children,
                    registered: l.registered,
                    seen: l.seen,
                    sustained: l.sustained,
                },
            })
        })
        .collect();
    let rule = match spec.budget_cut_fraction {
        Some(f) => format!(
            "a cut of {:.0}% of the open sites' direct costs, closing the site with the fewest \
             under-fives in the most deprived areas per pound first",
            f * 100.0
        ),
        None => format!("close {}", spec.close.join(", ")),
    };
    let mut view = ScenarioView {
        name: spec.name.clone(),
        file: file.to_string(),
        error: None,
        rule,
        closed: Vec::new(),
        savings: String::new(),
        threshold_km: format!("{:.1}", spec.distance_threshold_km),
        mean_km_before: String::new(),
        mean_km_after: String::new(),
        newly_beyond: Vec::new(),
        increased: Vec::new(),
        changed: Vec::new(),
    };
    let outcome = match scenario::run(spec, &open, &areas) {
        Ok(o) => o,
        Err(e) => {
            view.error = Some(format!("{e:#}"));
            return Ok(view);
        }
    };
    // One controlled table: bands and their total (newly beyond), then the total of every
    // family whose distance increases, each with the four counts.
    let bands = ["most_deprived_30", "other", "unknown"];
    let counts = |c: &Counts| vec![c.under_fives, c.registered, c.seen, c.sustained];
    let mut grid: Vec<Vec<u64>> = bands
        .iter()
        .map(|b| {
            counts(
                &outcome
                    .newly_beyond_by_band
                    .get(*b)
                    .copied()
                    .unwrap_or_default(),
            )
        })
        .collect();
    grid.push(counts(&outcome.newly_beyond));
    grid.push(counts(&outcome.increased));
    let cells: Vec<Vec<Cell>> = grid
        .iter()
        .map(|r| r.iter().map(|&n| Cell::Count(n)).collect())
        .collect();
    let mut table = Table::new(cells);
    for c in 0..4 {
        table = table.with_line((0..bands.len()).map(|r| (r, c)).collect(), (bands.len(), c));
    }
    let shown = table.apply(policy, confidence)?;
    let text = |row: &[Shown]| row.iter().map(|s| s.display(0)).collect::<Vec<_>>();
    let labels = [
        "Most deprived 30% of areas",
        "Other areas",
        "Deprivation not known",
        "All",
    ];
    view.newly_beyond = labels
        .iter()
        .zip(&shown)
        .map(|(l, row)| (l.to_string(), text(row)))
        .collect();
    view.increased = text(&shown[bands.len() + 1]);
    view.closed = outcome.closed.clone();
    view.savings = format!("£{}", whole_pounds(outcome.savings));
    view.mean_km_before = format!("{:.2}", outcome.mean_km_before);
    view.mean_km_after = format!("{:.2}", outcome.mean_km_after);
    view.changed = outcome.changed;
    Ok(view)
}
