//! Metric values after disclosure control: what a report may print.
//!
//! Control is applied once per metric, period and breakdown over one table whose rows are
//! every reach area plus the deployment total and whose columns are the breakdown's values,
//! so a count hidden in one centre's report is hidden in every report of the run (no
//! differencing between them). The additive lines are declared where they hold: reach areas
//! (including UNASSIGNED) add up to the deployment, and the values of a partition breakdown
//! (deprivation band, sex, ethnicity group) add up to `all`. A line that does not hold exactly
//! only suppresses more, never less.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use super::data::{CatalogueRow, MetricRow};
use super::disclosure::{Cell, DisclosureConfig, Policy, Shown, Table};

/// Key of one figure: metric, period end, geography code, breakdown key (`all`, `type=value`).
pub type FigureKey = (String, String, String, String);

/// One metric value as a report may show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub numerator: Shown,
    pub denominator: Shown,
    /// The value: a proportion with its interval, a number, suppressed or not applicable.
    pub value: Shown,
    /// England's value for the same metric and period (national figures are not controlled).
    pub england: Option<f64>,
    pub quality_flags: String,
    pub uses_unverified: bool,
    pub denominator_source: String,
    pub deprivation_vintage: String,
    pub run_id: String,
    /// The policy applied.
    pub policy: &'static str,
}

impl Figure {
    /// The displayed value, when shown.
    pub fn value(&self) -> Option<f64> {
        match self.value {
            Shown::Proportion { value, .. } | Shown::Number(value) => Some(value),
            _ => None,
        }
    }

    /// The displayed interval, when there is one.
    pub fn interval(&self) -> Option<(f64, f64)> {
        match self.value {
            Shown::Proportion { lower, upper, .. } => Some((lower, upper)),
            _ => None,
        }
    }

    /// The displayed count of a `Shown::Count` cell.
    pub fn count(shown: &Shown) -> Option<f64> {
        match shown {
            Shown::Count(n) => Some(*n as f64),
            _ => None,
        }
    }

    /// Whether control hid the value or a count behind it.
    pub fn suppressed(&self) -> bool {
        self.value.is_suppressed()
            || self.numerator.is_suppressed()
            || self.denominator.is_suppressed()
    }
}

/// Label of metrics.md §8.5 from displayed figures: `higher`, `lower`, `similar`, or `None`
/// when there is no interval or comparator.
pub fn comparison(interval: Option<(f64, f64)>, comparator: Option<f64>) -> Option<&'static str> {
    let ((lower, upper), c) = (interval?, comparator?);
    Some(if lower > c {
        "significantly higher"
    } else if upper < c {
        "significantly lower"
    } else {
        "similar"
    })
}

/// Every controlled figure of a set of metric rows.
#[derive(Debug, Default)]
pub struct Figures {
    pub by_key: BTreeMap<FigureKey, Figure>,
}

/// Breakdowns whose values add up to the `all` row (OV-02's `services`: families by number
/// of services).
const PARTITIONS: [&str; 4] = ["deprivation", "sex", "ethnicity_group", "services"];
/// Geography code of the whole deployment in `metric_values`.
pub const DEPLOYMENT: &str = "ALL";

/// Geography code of a centre group among the figures (`group:<group_id>`), so a group id
/// can never be mistaken for a centre id.
pub fn group_code(group_id: &str) -> String {
    format!("group:{group_id}")
}

/// Rows for each centre group: numerators and denominators of its members' reach areas
/// summed (percentages only: they add up; rates and differences do not), the percentage
/// recomputed, quality flags of any member carried.
fn group_rows(
    rows: &[MetricRow],
    units: &BTreeMap<&str, &str>,
    groups: &BTreeMap<String, Vec<String>>,
) -> Vec<MetricRow> {
    let mut member_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (group, members) in groups {
        for m in members {
            member_of
                .entry(m.as_str())
                .or_default()
                .push(group.as_str());
        }
    }
    let mut sums: BTreeMap<(String, String, String, String, String), MetricRow> = BTreeMap::new();
    for r in rows {
        if r.geography_type != "reach_area"
            || units.get(r.metric_id.as_str()).copied() != Some("percent")
        {
            continue;
        }
        let Some(gs) = member_of.get(r.geography_code.as_str()) else {
            continue;
        };
        for g in gs {
            let key = (
                r.metric_id.clone(),
                r.period_end.clone(),
                g.to_string(),
                r.breakdown_type.clone(),
                r.breakdown_value.clone(),
            );
            let e = sums.entry(key).or_insert_with(|| MetricRow {
                geography_type: "group".into(),
                geography_code: group_code(g),
                numerator: Some(0.0),
                denominator: Some(0.0),
                quality_flags: String::new(),
                ..r.clone()
            });
            e.numerator = Some(e.numerator.unwrap_or(0.0) + r.numerator.unwrap_or(0.0));
            e.denominator = Some(e.denominator.unwrap_or(0.0) + r.denominator.unwrap_or(0.0));
            for flag in r
                .quality_flags
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
            {
                if !e.quality_flags.split(',').any(|f| f == flag) {
                    if !e.quality_flags.is_empty() {
                        e.quality_flags.push(',');
                    }
                    e.quality_flags.push_str(flag);
                }
            }
            e.uses_unverified |= r.uses_unverified;
        }
    }
    sums.into_values()
        .map(|mut r| {
            r.value = match (r.numerator, r.denominator) {
                (Some(n), Some(d)) if d > 0.0 => Some(n / d * 100.0),
                _ => None,
            };
            r.lower_95 = None;
            r.upper_95 = None;
            r
        })
        .collect()
}

impl Figures {
    /// Controls `rows` (reach areas and the deployment) and the centre groups made of them
    /// (`group_id` → member centre ids) for `audience`.
    pub fn control(
        rows: &[MetricRow],
        catalogue: &[CatalogueRow],
        disclosure: &DisclosureConfig,
        audience: &str,
        confidence: f64,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> Result<Figures> {
        let units: BTreeMap<&str, &str> = catalogue
            .iter()
            .map(|c| (c.metric_id.as_str(), c.unit.as_str()))
            .collect();
        let synthetic = group_rows(rows, &units, groups);
        let rows: Vec<MetricRow> = rows.iter().cloned().chain(synthetic).collect();
        let rows = rows.as_slice();
        // Group rows are totals of member rows: a line each, so no member can be worked out
        // from its group's figure and the other members'.
        let group_lines: Vec<(String, Vec<String>)> = groups
            .iter()
            .map(|(g, members)| (group_code(g), members.clone()))
            .collect();
        // Group: (metric, period_end, breakdown_type) → rows.
        let mut groups: BTreeMap<(&str, &str, &str), Vec<&MetricRow>> = BTreeMap::new();
        for r in rows {
            groups
                .entry((&r.metric_id, &r.period_end, &r.breakdown_type))
                .or_default()
                .push(r);
        }
        let mut figures = Figures::default();
        for ((metric, period_end, breakdown_type), members) in &groups {
            let policy = disclosure.policy_for(audience, metric)?;
            let unit = units.get(metric).copied().unwrap_or("percent");
            // The `all` rows are the margin of a partition breakdown.
            let margin: Vec<&MetricRow> = if PARTITIONS.contains(breakdown_type) {
                groups
                    .get(&(*metric, *period_end, "all"))
                    .cloned()
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            control_group(
                members,
                &margin,
                unit,
                &policy,
                confidence,
                &group_lines,
                &mut figures,
            )?;
        }
        Ok(figures)
    }

    /// The figure for a metric, period, geography and breakdown key.
    pub fn get(
        &self,
        metric: &str,
        period_end: &str,
        geography: &str,
        breakdown: &str,
    ) -> Option<&Figure> {
        self.by_key.get(&(
            metric.to_string(),
            period_end.to_string(),
            geography.to_string(),
            breakdown.to_string(),
        ))
    }
}

fn control_group(
    members: &[&MetricRow],
    margin: &[&MetricRow],
    unit: &str,
    policy: &Policy,
    confidence: f64,
    group_lines: &[(String, Vec<String>)],
    out: &mut Figures,
) -> Result<()> {
    // Rows: reach areas in code order, then groups, the deployment last. Columns: breakdown
    // values, then the margin (`all`) when the breakdown is a partition.
    let mut geographies: BTreeSet<&str> =
        members.iter().map(|r| r.geography_code.as_str()).collect();
    geographies.remove(DEPLOYMENT);
    // Groups and the roll-ups of cost metrics (`lot:…`) are not among the parts of the
    // deployment: they come after the areas and sites.
    let (group_codes, area_codes): (Vec<&str>, Vec<&str>) =
        geographies.into_iter().partition(|c| c.contains(':'));
    let areas = area_codes.len();
    let mut row_codes: Vec<&str> = area_codes.into_iter().chain(group_codes).collect();
    let has_total = members.iter().any(|r| r.geography_code == DEPLOYMENT);
    if has_total {
        row_codes.push(DEPLOYMENT);
    }
    let mut col_values: Vec<String> = members
        .iter()
        .map(|r| r.breakdown_value.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let with_margin = !margin.is_empty();
    if with_margin {
        col_values.push("\u{0}all".into());
    }
    let lookup: BTreeMap<(&str, &str), &MetricRow> = members
        .iter()
        .map(|r| ((r.geography_code.as_str(), r.breakdown_value.as_str()), *r))
        .chain(
            margin
                .iter()
                .map(|r| ((r.geography_code.as_str(), "\u{0}all"), *r)),
        )
        .collect();
    let money = unit == "gbp_per_person";
    // Only counts take part in additive lines (money is exempt).
    let parts: &[usize] = if money { &[1] } else { &[0, 1] };
    // Three cells per (row, column): numerator, denominator, value.
    let ncols = col_values.len();
    let at = |c: usize, part: usize| c * 3 + part;
    let mut cells = Vec::with_capacity(row_codes.len());
    for (ri, code) in row_codes.iter().enumerate() {
        let mut row = Vec::with_capacity(ncols * 3);
        for (ci, value) in col_values.iter().enumerate() {
            match lookup.get(&(*code, value.as_str())) {
                Some(r) => {
                    let num = count(r.numerator);
                    let den = count(r.denominator);
                    // Money is exempt; its value per person follows the people counted.
                    row.push(if money {
                        Cell::Exempt(r.numerator.unwrap_or(0.0))
                    } else {
                        num.map_or(Cell::Count(0), Cell::Count)
                    });
                    row.push(den.map_or(Cell::Count(0), Cell::Count));
                    row.push(match (unit, r.denominator) {
                        ("percent", Some(_)) => Cell::Proportion {
                            numerator: (ri, at(ci, 0)),
                            denominator: (ri, at(ci, 1)),
                            scale: 100.0,
                        },
                        ("gbp_per_person", Some(_)) => Cell::PerPerson {
                            amount: r.value.unwrap_or(0.0),
                            denominator: (ri, at(ci, 1)),
                        },
                        // Rates, differences, means: the stored value, hidden with its counts
                        // (the derived rule); placeholder resolved below.
                        _ => Cell::Text(String::new()),
                    });
                }
                None => {
                    let numerator = if money {
                        Cell::Exempt(0.0)
                    } else {
                        Cell::Count(0)
                    };
                    row.extend([numerator, Cell::Count(0), Cell::Text(String::new())]);
                }
            }
        }
        cells.push(row);
    }
    let mut table = Table::new(cells);
    if has_total && areas > 0 {
        let total_row = row_codes.len() - 1;
        for ci in 0..ncols {
            for &part in parts {
                let members = (0..areas).map(|ri| (ri, at(ci, part))).collect();
                table = table.with_line(members, (total_row, at(ci, part)));
            }
        }
    }
    for (group, member_ids) in group_lines {
        let Some(g) = row_codes.iter().position(|c| c == group) else {
            continue;
        };
        let rows: Vec<usize> = member_ids
            .iter()
            .filter_map(|m| row_codes[..areas].iter().position(|c| c == m))
            .collect();
        for ci in 0..ncols {
            for &part in parts {
                let members = rows.iter().map(|&ri| (ri, at(ci, part))).collect();
                table = table.with_line(members, (g, at(ci, part)));
            }
        }
    }
    if with_margin {
        let margin_col = ncols - 1;
        for ri in 0..row_codes.len() {
            for &part in parts {
                let members = (0..margin_col).map(|ci| (ri, at(ci, part))).collect();
                table = table.with_line(members, (ri, at(margin_col, part)));
            }
        }
    }
    let shown = table.apply(policy, confidence)?;
    for (ri, code) in row_codes.iter().enumerate() {
        for (ci, value) in col_values.iter().enumerate() {
            let Some(r) = lookup.get(&(*code, value.as_str())) else {
                continue;
            };
            if value.starts_with('\u{0}') {
                continue; // the margin is published under its own breakdown type
            }
            let numerator = shown[ri][at(ci, 0)].clone();
            let denominator = shown[ri][at(ci, 1)].clone();
            let value_shown = match &shown[ri][at(ci, 2)] {
                Shown::Text(_) => {
                    if numerator.is_suppressed() || denominator.is_suppressed() {
                        Shown::Suppressed(symbol(policy))
                    } else {
                        match (r.value, r.lower_95, r.upper_95) {
                            (Some(v), Some(l), Some(u)) => Shown::Proportion {
                                value: v,
                                lower: l,
                                upper: u,
                            },
                            (Some(v), _, _) => Shown::Number(v),
                            _ => Shown::NotApplicable,
                        }
                    }
                }
                other => other.clone(),
            };
            let numerator = if r.numerator.is_none() {
                Shown::NotApplicable
            } else {
                numerator
            };
            let denominator = if r.denominator.is_none() {
                Shown::NotApplicable
            } else {
                denominator
            };
            let england = (r.comparator_type == "england")
                .then_some(r.comparator_value)
                .flatten();
            out.by_key.insert(
                (
                    r.metric_id.clone(),
                    r.period_end.clone(),
                    r.geography_code.clone(),
                    r.breakdown_key(),
                ),
                Figure {
                    numerator,
                    denominator,
                    value: value_shown,
                    england,
                    quality_flags: r.quality_flags.clone(),
                    uses_unverified: r.uses_unverified,
                    denominator_source: r.denominator_source.clone(),
                    deprivation_vintage: r.deprivation_vintage.clone(),
                    run_id: r.run_id.clone(),
                    policy: policy.name(),
                },
            );
        }
    }
    Ok(())
}

fn count(x: Option<f64>) -> Option<u64> {
    x.filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v.round() as u64)
}

fn symbol(policy: &Policy) -> String {
    match policy {
        Policy::Nhs { symbol, .. } | Policy::Dfe { symbol, .. } => symbol.clone(),
        Policy::None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(geo: &str, bt: &str, bv: &str, num: f64, den: f64) -> MetricRow {
        MetricRow {
            metric_id: "REACH-01".into(),
            period_type: "fy".into(),
            period_start: "2024-04-01".into(),
            period_end: "2025-03-31".into(),
            geography_type: if geo == DEPLOYMENT {
                "deployment"
            } else {
                "reach_area"
            }
            .into(),
            geography_code: geo.into(),
            breakdown_type: bt.into(),
            breakdown_value: bv.into(),
            numerator: Some(num),
            denominator: Some(den),
            value: Some(num / den * 100.0),
            lower_95: None,
            upper_95: None,
            comparator_type: "none".into(),
            comparator_value: None,
            comparison: "not_compared".into(),
            denominator_source: "chis".into(),
            deprivation_vintage: "iod2019".into(),
            quality_flags: String::new(),
            uses_unverified: false,
            run_id: "r1".into(),
        }
    }

    fn config() -> DisclosureConfig {
        DisclosureConfig::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/disclosure.toml"),
        )
        .unwrap()
    }

    fn catalogue() -> Vec<CatalogueRow> {
        vec![CatalogueRow {
            metric_id: "REACH-01".into(),
            name: "Registration rate".into(),
            unit: "percent".into(),
            polarity: "higher_is_better".into(),
            uses_unverified: false,
        }]
    }

    /// disclosure.md §5.1 as metric rows: centres A–D and the deployment.
    #[test]
    fn the_worked_example_through_metric_rows() {
        let rows = vec![
            row("A", "all", "all", 338.0, 412.0),
            row("B", "all", "all", 7.0, 96.0),
            row("C", "all", "all", 4.0, 6.0),
            row("D", "all", "all", 0.0, 0.0),
            row(DEPLOYMENT, "all", "all", 349.0, 514.0),
        ];
        let f = Figures::control(
            &rows,
            &catalogue(),
            &config(),
            "directors",
            0.95,
            &BTreeMap::new(),
        )
        .unwrap();
        let get = |g| f.get("REACH-01", "2025-03-31", g, "all").unwrap();
        assert_eq!(get("C").numerator, Shown::Suppressed("c".into()));
        assert_eq!(
            get("B").numerator,
            Shown::Suppressed("c".into()),
            "secondary"
        );
        assert_eq!(get("B").denominator, Shown::Count(96));
        assert_eq!(get("D").value, Shown::NotApplicable);
        let a = get("A");
        assert!((a.value().unwrap() - 82.038_834_951).abs() < 1e-6);
        let (l, u) = a.interval().unwrap();
        assert_eq!(
            (format!("{l:.1}"), format!("{u:.1}")),
            ("78.0".into(), "85.4".into())
        );
        assert_eq!(
            comparison(a.interval(), Some(67.9)),
            Some("significantly higher")
        );
        assert_eq!(comparison(a.interval(), Some(80.0)), Some("similar"));
        assert_eq!(comparison(None, Some(80.0)), None);
    }

    /// A group is its members' sum, controlled with them: hiding one member's count hides
    /// another member's too (or the group's), so none can be recovered by subtraction.
    #[test]
    fn groups_sum_their_members_and_protect_them() {
        let rows = vec![
            row("A", "all", "all", 338.0, 412.0),
            row("B", "all", "all", 4.0, 96.0),
            row("C", "all", "all", 40.0, 60.0),
            row(DEPLOYMENT, "all", "all", 382.0, 568.0),
        ];
        let groups: BTreeMap<String, Vec<String>> =
            [("G1".to_string(), vec!["A".to_string(), "B".to_string()])]
                .into_iter()
                .collect();
        let f =
            Figures::control(&rows, &catalogue(), &config(), "directors", 0.95, &groups).unwrap();
        let get = |g: &str| f.get("REACH-01", "2025-03-31", g, "all").unwrap().clone();
        let g = get("group:G1");
        assert_eq!(g.denominator, Shown::Count(508));
        assert!((g.value().unwrap() - 342.0 / 508.0 * 100.0).abs() < 1e-9);
        assert!(
            g.interval().is_some(),
            "the group's interval comes from its own counts"
        );
        assert!(get("B").numerator.is_suppressed());
        // B's 4 is hidden; the group line {A, B | G1} would give it away from A and G1, so
        // a second cell of that line is hidden as well.
        let hidden = [get("A").numerator, g.numerator]
            .iter()
            .filter(|s| s.is_suppressed())
            .count();
        assert!(hidden >= 1, "A or the group is also hidden");
    }

    /// A centre's small deprivation cell is hidden with a partner so the band totals and the
    /// `all` margin do not give it away.
    #[test]
    fn partition_breakdowns_add_up_to_all() {
        let rows = vec![
            row("A", "all", "all", 40.0, 60.0),
            row("A", "deprivation", "most_deprived_30", 3.0, 20.0),
            row("A", "deprivation", "other", 37.0, 40.0),
            row(DEPLOYMENT, "all", "all", 40.0, 60.0),
            row(DEPLOYMENT, "deprivation", "most_deprived_30", 3.0, 20.0),
            row(DEPLOYMENT, "deprivation", "other", 37.0, 40.0),
        ];
        let f = Figures::control(
            &rows,
            &catalogue(),
            &config(),
            "directors",
            0.95,
            &BTreeMap::new(),
        )
        .unwrap();
        let get = |g, b| f.get("REACH-01", "2025-03-31", g, b).unwrap().clone();
        assert!(get("A", "deprivation=most_deprived_30").suppressed());
        assert!(get("A", "deprivation=other").numerator.is_suppressed());
        assert!(
            !get("A", "all").suppressed(),
            "the margin itself stays visible"
        );
        let analysts = Figures::control(
            &rows,
            &catalogue(),
            &config(),
            "analysts",
            0.95,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            analysts
                .get(
                    "REACH-01",
                    "2025-03-31",
                    "A",
                    "deprivation=most_deprived_30"
                )
                .unwrap()
                .numerator,
            Shown::Count(3)
        );
    }
}
