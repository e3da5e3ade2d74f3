//! Cost avoidance (VFM-07, shared/domain/value-for-money.md §3): avoided escalation to
//! children's social care × unit cost × duration, with deadweight and optimism bias, in the
//! style of the New Economy / GMCA cost-benefit model. Fiscal benefits only, never a
//! cashable saving.
//!
//! The cohorts and their events come from the `avoidance_cohorts` mart; the assumptions
//! from `reports/vfm_avoidance.toml`, and each unit cost from the run's `unit_costs.csv`.
//! For each outcome: the comparison cohort's rate is standardised to the engaged cohort's
//! mix of strata, Δp = p_C − p_E, avoided events A = |E| × Δp × (1 − deadweight) ×
//! (1 − optimism bias), cost avoided = A × unit cost × PV(duration); the range repeats the
//! calculation at the Newcombe limits of Δp.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::Datelike;
use serde::{Deserialize, Serialize};

use crate::metrics::stats;

/// The outcomes §3 names, in its order.
pub const OUTCOMES: [&str; 3] = ["cin_referral", "cp_plan_start", "cla_start"];

/// `reports/vfm_avoidance.toml`: every assumption of the estimate, shown beside it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AvoidanceSpec {
    /// Months after cohort entry in which events count.
    #[serde(default = "default_follow_up")]
    pub follow_up_months: u32,
    /// Share of the difference that would have happened anyway.
    #[serde(default)]
    pub deadweight: f64,
    /// Reduction for the quality of the evidence.
    #[serde(default = "default_optimism_bias")]
    pub optimism_bias: f64,
    /// Per year, for durations over one year.
    #[serde(default = "default_discount_rate")]
    pub discount_rate: f64,
    /// Standardisation strata: only `deprivation` (band of residence) is available.
    #[serde(default = "default_strata")]
    pub strata: String,
    pub outcomes: Vec<OutcomeSpec>,
}

/// One outcome: its unit cost item and how many years of cost an event brings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeSpec {
    pub outcome: String,
    /// An `item` of `reference/unit_costs.csv`, costed per event-year.
    pub unit_cost: String,
    pub duration_years: f64,
}

fn default_follow_up() -> u32 {
    12
}
fn default_optimism_bias() -> f64 {
    0.20
}
fn default_discount_rate() -> f64 {
    0.035
}
fn default_strata() -> String {
    "deprivation".into()
}

impl AvoidanceSpec {
    /// Reads and checks the file; every problem is reported at once.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let spec: AvoidanceSpec =
            toml::from_str(&text).with_context(|| format!("{}: invalid", path.display()))?;
        let mut problems = Vec::new();
        if spec.follow_up_months == 0 {
            problems.push("follow_up_months must be at least 1".to_string());
        }
        for (name, v) in [
            ("deadweight", spec.deadweight),
            ("optimism_bias", spec.optimism_bias),
        ] {
            if !(0.0..1.0).contains(&v) {
                problems.push(format!("{name} = {v} must be at least 0 and below 1"));
            }
        }
        if !(0.0..1.0).contains(&spec.discount_rate) {
            problems.push(format!(
                "discount_rate = {} must be a yearly rate between 0 and 1",
                spec.discount_rate
            ));
        }
        if spec.strata != "deprivation" {
            problems.push(format!(
                "strata = {:?}: only \"deprivation\" (band of residence) is available",
                spec.strata
            ));
        }
        for o in &spec.outcomes {
            if !OUTCOMES.contains(&o.outcome.as_str()) {
                problems.push(format!(
                    "outcome {:?} is not one of {}",
                    o.outcome,
                    OUTCOMES.join(", ")
                ));
            }
            if o.duration_years.is_nan() || o.duration_years <= 0.0 {
                problems.push(format!(
                    "outcome {}: duration_years must be above 0",
                    o.outcome
                ));
            }
        }
        if spec.outcomes.is_empty() {
            problems.push("no [[outcomes]]".into());
        }
        if !problems.is_empty() {
            bail!(
                "{} is not valid:\n  {}",
                path.display(),
                problems.join("\n  ")
            );
        }
        Ok(spec)
    }
}

/// Present value of `duration` years of a yearly cost: Σ over years t = 0 … ⌈d⌉ − 1 of the
/// portion of year t covered ÷ (1 + r)ᵗ; for d ≤ 1 it is d.
pub fn present_value(duration: f64, rate: f64) -> f64 {
    if duration <= 1.0 {
        return duration;
    }
    let years = duration.ceil() as u32;
    (0..years)
        .map(|t| {
            let portion = (duration - f64::from(t)).min(1.0);
            portion / (1.0 + rate).powi(t as i32)
        })
        .sum()
}

/// One stratum's children and events in the two cohorts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stratum {
    pub engaged: u64,
    pub engaged_events: u64,
    pub comparison: u64,
    pub comparison_events: u64,
}

/// The estimate for one outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Engaged children in strata that have comparison children (|E|).
    pub engaged: u64,
    pub engaged_events: u64,
    /// Comparison children in those strata (|C|).
    pub comparison: u64,
    pub comparison_events: u64,
    /// Engaged children left out because their stratum has no comparison children.
    pub engaged_unmatched: u64,
    pub p_engaged: f64,
    /// The comparison rate standardised to the engaged cohort's mix.
    pub p_comparison: f64,
    /// p_C − p_E and its Newcombe interval.
    pub difference: (f64, f64, f64),
    /// Avoided events at the difference and its limits.
    pub avoided: (f64, f64, f64),
    /// PV(duration).
    pub present_value: f64,
    /// Cost avoided (£) at the difference and its limits.
    pub cost: (f64, f64, f64),
}

impl Estimate {
    /// Whether the interval of the difference excludes 0 (otherwise the report must say
    /// there is no statistically reliable evidence).
    pub fn reliable(&self) -> bool {
        self.difference.1 > 0.0 || self.difference.2 < 0.0
    }
}

/// Steps 1–4 of §3 for one outcome; `None` when no engaged child has a comparison stratum.
pub fn estimate(
    strata: &[Stratum],
    spec: &AvoidanceSpec,
    unit_cost: f64,
    duration_years: f64,
    z: f64,
) -> Option<Estimate> {
    let matched: Vec<&Stratum> = strata.iter().filter(|s| s.comparison > 0).collect();
    let engaged: u64 = matched.iter().map(|s| s.engaged).sum();
    if engaged == 0 {
        return None;
    }
    let engaged_unmatched = strata.iter().map(|s| s.engaged).sum::<u64>() - engaged;
    let comparison: u64 = matched.iter().map(|s| s.comparison).sum();
    let engaged_events: u64 = matched.iter().map(|s| s.engaged_events).sum();
    let comparison_events: u64 = matched.iter().map(|s| s.comparison_events).sum();
    let (e, c) = (engaged as f64, comparison as f64);
    // Direct standardisation to the engaged mix: weights w_s = |E_s| / |E|.
    let p_engaged = engaged_events as f64 / e;
    let p_comparison: f64 = matched
        .iter()
        .map(|s| s.engaged as f64 / e * s.comparison_events as f64 / s.comparison as f64)
        .sum();
    let d = p_comparison - p_engaged;
    // Newcombe's interval for the standardised difference, with the comparison's
    // standardised rate over its own size (exact with one stratum).
    let (lower, upper) = stats::newcombe(p_comparison * c, c, engaged_events as f64, e, z)?;
    let factor = e * (1.0 - spec.deadweight) * (1.0 - spec.optimism_bias);
    let present_value = present_value(duration_years, spec.discount_rate);
    let avoided = |delta: f64| factor * delta;
    let cost = |delta: f64| avoided(delta) * unit_cost * present_value;
    Some(Estimate {
        engaged,
        engaged_events,
        comparison,
        comparison_events,
        engaged_unmatched,
        p_engaged,
        p_comparison,
        difference: (d, lower, upper),
        avoided: (avoided(d), avoided(lower), avoided(upper)),
        present_value,
        cost: (cost(d), cost(lower), cost(upper)),
    })
}

/// One row of the `avoidance_cohorts` mart.
#[derive(Debug, Clone, Deserialize)]
pub struct CohortRow {
    pub period_end: String,
    pub cohort: String,
    pub stratum: String,
    pub outcome: String,
    pub months_after: i64,
    pub children: u64,
    pub data_until: Option<String>,
}

/// The cohort year the report can use: the latest whose entry plus the follow-up is covered
/// by the social care data and not after `report_end`. `Err` says why there is none.
pub fn cohort_year(
    rows: &[CohortRow],
    follow_up_months: u32,
    report_end: &str,
) -> std::result::Result<String, String> {
    let data_until = rows.iter().filter_map(|r| r.data_until.clone()).max();
    let Some(data_until) = data_until else {
        return Err("the lake holds no CIN census, so no escalation can be observed".into());
    };
    let mut years: Vec<&str> = rows
        .iter()
        .filter(|r| r.outcome == "cohort" && r.cohort == "engaged")
        .map(|r| r.period_end.as_str())
        .collect();
    years.sort();
    years.dedup();
    let followed = |end: &str| -> Option<String> {
        let d = chrono::NaiveDate::parse_from_str(end, "%Y-%m-%d").ok()?;
        Some(
            (d + chrono::Months::new(follow_up_months))
                .format("%Y-%m-%d")
                .to_string(),
        )
    };
    years
        .iter()
        .rev()
        .find(|y| {
            followed(y)
                .is_some_and(|f| f.as_str() <= data_until.as_str() && f.as_str() <= report_end)
        })
        .map(|y| y.to_string())
        .ok_or_else(|| match years.last() {
            Some(latest) => format!(
                "the cohort needs {follow_up_months} months of follow-up after a year end, \
                 observed in the social care data: the latest cohort year (ending {latest}) is \
                 followed until {}, but the CIN census reaches {data_until}",
                followed(latest).unwrap_or_default()
            ),
            None => "no child had sustained engagement in any financial year".into(),
        })
}

/// Per outcome, the strata of one cohort year with events within the follow-up.
pub fn strata(
    rows: &[CohortRow],
    year: &str,
    follow_up_months: u32,
) -> BTreeMap<String, Vec<Stratum>> {
    let mut by_stratum: BTreeMap<&str, Stratum> = BTreeMap::new();
    let mut events: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.period_end == year) {
        let engaged = r.cohort == "engaged";
        if r.outcome == "cohort" {
            let s = by_stratum.entry(&r.stratum).or_default();
            if engaged {
                s.engaged += r.children;
            } else {
                s.comparison += r.children;
            }
        } else if r.months_after >= 1 && r.months_after <= i64::from(follow_up_months) {
            let e = events.entry((&r.outcome, &r.stratum)).or_default();
            if engaged {
                e.0 += r.children;
            } else {
                e.1 += r.children;
            }
        }
    }
    OUTCOMES
        .iter()
        .map(|o| {
            let list = by_stratum
                .iter()
                .map(|(stratum, s)| {
                    let (ee, ce) = events.get(&(*o, *stratum)).copied().unwrap_or_default();
                    Stratum {
                        engaged_events: ee,
                        comparison_events: ce,
                        ..*s
                    }
                })
                .collect();
            (o.to_string(), list)
        })
        .collect()
}

/// The cost-avoidance section of the value-for-money report.
#[derive(Debug, Clone, Serialize)]
pub struct AvoidanceView {
    /// The assumptions file, as named in the report.
    pub file: String,
    /// Why no estimate could be made at all (no cohort year followed up in the data).
    pub error: Option<String>,
    /// "2023-24: children under 5 on 31 March 2024, followed up to 31 March 2025".
    pub cohort: String,
    /// Every assumption, printed beside the figures: (what, value).
    pub assumptions: Vec<(String, String)>,
    pub outcomes: Vec<AvoidanceLine>,
}

/// One outcome's estimate as printed.
#[derive(Debug, Clone, Serialize)]
pub struct AvoidanceLine {
    pub outcome: String,
    /// Why this outcome has no estimate (a blank unit cost, a hidden small count).
    pub error: Option<String>,
    pub engaged: String,
    pub comparison: String,
    pub difference: String,
    pub avoided: String,
    pub unit_cost: String,
    pub duration: String,
    pub cost: String,
    /// False: the interval of the difference includes 0, and the report must say so.
    pub reliable: bool,
}

fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "cin_referral" => "Referral to children's social care (child in need)",
        "cp_plan_start" => "Child protection plan started",
        "cla_start" => "Started to be looked after",
        _ => "Other",
    }
}

fn years(v: f64) -> String {
    format!("{v} year{}", if v == 1.0 { "" } else { "s" })
}

fn money(v: f64) -> String {
    format!(
        "{}£{}",
        if v < 0.0 { "−" } else { "" },
        super::evaluation::whole_pounds(v.abs())
    )
}

fn signed(v: f64, decimals: usize) -> String {
    let s = format!("{:.decimals$}", v.abs());
    if v < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("−{s}")
    } else {
        s
    }
}

/// Builds the section for the report period ending `report_end`: the cohort year, then per
/// outcome the estimate, its unit cost and the disclosure check of its counts.
pub fn view(
    file: &str,
    spec: &AvoidanceSpec,
    rows: &[CohortRow],
    unit_costs: &crate::reference::UnitCosts,
    report_end: &str,
    policy: &super::disclosure::Policy,
    confidence: f64,
) -> Result<AvoidanceView> {
    use super::disclosure::{Cell, Shown, Table};
    let assumptions = vec![
        (
            "Engaged cohort".to_string(),
            "children under 5 at the year end with sustained engagement in the year".to_string(),
        ),
        (
            "Comparison cohort".into(),
            "children under 5 resident at the year end not seen by any centre in the year, \
             standardised to the engaged cohort's mix of deprivation bands"
                .into(),
        ),
        (
            "Follow-up".into(),
            format!("{} months after the year end", spec.follow_up_months),
        ),
        (
            "Deadweight".into(),
            format!("{:.0}%", spec.deadweight * 100.0),
        ),
        (
            "Optimism bias".into(),
            format!("{:.0}%", spec.optimism_bias * 100.0),
        ),
        (
            "Discount rate".into(),
            format!(
                "{:.1}% a year (durations over one year)",
                spec.discount_rate * 100.0
            ),
        ),
        (
            "Benefits counted".into(),
            "fiscal only (the council's and partners' budgets), not economic or social value; \
             never a cashable saving"
                .into(),
        ),
    ];
    let year = match cohort_year(rows, spec.follow_up_months, report_end) {
        Ok(y) => y,
        Err(why) => {
            return Ok(AvoidanceView {
                file: file.into(),
                error: Some(why),
                cohort: String::new(),
                assumptions,
                outcomes: Vec::new(),
            });
        }
    };
    let entry = chrono::NaiveDate::parse_from_str(&year, "%Y-%m-%d")
        .with_context(|| format!("avoidance_cohorts: bad period_end {year:?}"))?;
    let until = entry + chrono::Months::new(spec.follow_up_months);
    // The year end is 31 March: the financial year is the one that ends then.
    let cohort = format!(
        "{}-{:02}: children under 5 on {}, followed up to {}",
        entry.year() - 1,
        entry.year() % 100,
        entry.format("%-d %B %Y"),
        until.format("%-d %B %Y")
    );
    let by_outcome = strata(rows, &year, spec.follow_up_months);
    let z = stats::z_for(confidence);
    let mut outcomes = Vec::new();
    for o in &spec.outcomes {
        let blank = |error: String| AvoidanceLine {
            outcome: outcome_label(&o.outcome).into(),
            error: Some(error),
            engaged: String::new(),
            comparison: String::new(),
            difference: String::new(),
            avoided: String::new(),
            unit_cost: String::new(),
            duration: years(o.duration_years),
            cost: String::new(),
            reliable: false,
        };
        let cost_row = unit_costs.0.iter().find(|u| u.item == o.unit_cost);
        let unit_cost = match unit_costs.value(&o.unit_cost) {
            Ok(v) => v,
            Err(e) => {
                outcomes.push(blank(format!("not estimated: {e:#}")));
                continue;
            }
        };
        let Some(e) = estimate(
            by_outcome.get(&o.outcome).map_or(&[][..], Vec::as_slice),
            spec,
            unit_cost,
            o.duration_years,
            z,
        ) else {
            outcomes.push(blank(
                "not estimated: no engaged child has comparison children in their stratum".into(),
            ));
            continue;
        };
        // The four counts behind the estimate pass disclosure control first: a hidden one
        // hides the whole line (every figure of it reveals the event counts).
        let shown = Table::new(vec![vec![
            Cell::Count(e.engaged_events),
            Cell::Count(e.engaged),
            Cell::Count(e.comparison_events),
            Cell::Count(e.comparison),
        ]])
        .apply(policy, confidence)?;
        if shown[0].iter().any(Shown::is_suppressed) {
            outcomes.push(blank(format!(
                "not shown: a count behind it is below the disclosure threshold ({})",
                policy.name()
            )));
            continue;
        }
        let pct = |p: f64| format!("{:.1}%", p * 100.0);
        let (d, lo, hi) = e.difference;
        let (a, alo, ahi) = e.avoided;
        let (c, clo, chi) = e.cost;
        outcomes.push(AvoidanceLine {
            outcome: outcome_label(&o.outcome).into(),
            error: None,
            engaged: format!(
                "{} of {} ({})",
                shown[0][0].display(0),
                shown[0][1].display(0),
                pct(e.p_engaged)
            ),
            comparison: format!(
                "{} standardised ({} of {})",
                pct(e.p_comparison),
                shown[0][2].display(0),
                shown[0][3].display(0)
            ),
            difference: format!(
                "{} pts ({} to {})",
                signed(d * 100.0, 1),
                signed(lo * 100.0, 1),
                signed(hi * 100.0, 1)
            ),
            avoided: format!(
                "{} ({} to {})",
                signed(a, 1),
                signed(alo, 1),
                signed(ahi, 1)
            ),
            unit_cost: cost_row.map_or_else(String::new, |u| {
                format!(
                    "£{} {} ({} prices; {}{})",
                    super::evaluation::whole_pounds(unit_cost),
                    u.unit,
                    u.price_year.clone().unwrap_or_default(),
                    u.source,
                    if u.confirmed { "" } else { "; unverified" }
                )
            }),
            duration: format!(
                "{} (present value {:.2})",
                years(o.duration_years),
                e.present_value
            ),
            cost: format!("{} ({} to {})", money(c), money(clo), money(chi)),
            reliable: e.reliable(),
        });
    }
    Ok(AvoidanceView {
        file: file.into(),
        error: None,
        cohort,
        assumptions,
        outcomes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AvoidanceSpec {
        toml::from_str(
            "[[outcomes]]\noutcome = \"cp_plan_start\"\nunit_cost = \"test\"\nduration_years = 0.75\n",
        )
        .unwrap()
    }

    /// The worked example of value-for-money.md §3: |E| = 200 with 12 CP plan starts, |C| =
    /// 500 with 50; Δp 4.0 pts (Newcombe −0.8 to 7.9); A = 6.4; £10,000 × 0.75 → £48,000
    /// (−£9,578 to £94,602), and the interval includes 0.
    #[test]
    fn worked_example() {
        let s = [Stratum {
            engaged: 200,
            engaged_events: 12,
            comparison: 500,
            comparison_events: 50,
        }];
        let e = estimate(&s, &spec(), 10_000.0, 0.75, 1.959_963_984_540_054).unwrap();
        let pts = |v: f64| (v * 1000.0).round() / 10.0;
        assert_eq!(
            (
                pts(e.difference.0),
                pts(e.difference.1),
                pts(e.difference.2)
            ),
            (4.0, -0.8, 7.9)
        );
        assert!((e.avoided.0 - 6.4).abs() < 1e-9);
        assert_eq!(e.present_value, 0.75);
        assert_eq!(
            (e.cost.0.round(), e.cost.1.round(), e.cost.2.round()),
            (48_000.0, -9_578.0, 94_602.0)
        );
        assert!(!e.reliable());
    }

    /// Standardisation: the comparison rate is re-weighted to the engaged mix. E: 100 most
    /// deprived (10 events), 100 other (2); C: 100 most deprived (20), 300 other (6). Crude
    /// p_C = 26/400 = 6.5%, standardised = ½·20% + ½·2% = 11%; p_E = 6%; Δp = 5 pts. A stratum
    /// without comparison children leaves its engaged children out, and says how many.
    #[test]
    fn comparison_is_standardised_to_the_engaged_mix() {
        let s = [
            Stratum {
                engaged: 100,
                engaged_events: 10,
                comparison: 100,
                comparison_events: 20,
            },
            Stratum {
                engaged: 100,
                engaged_events: 2,
                comparison: 300,
                comparison_events: 6,
            },
            Stratum {
                engaged: 7,
                engaged_events: 1,
                comparison: 0,
                comparison_events: 0,
            },
        ];
        let e = estimate(&s, &spec(), 1_000.0, 2.5, 1.96).unwrap();
        assert!((e.p_comparison - 0.11).abs() < 1e-12);
        assert!((e.p_engaged - 0.06).abs() < 1e-12);
        assert_eq!(
            (e.engaged, e.engaged_unmatched, e.comparison),
            (200, 7, 400)
        );
        // A = 200 × 0.05 × 0.8 = 8; PV(2.5 years at 3.5%) = 1 + 1/1.035 + 0.5/1.035².
        let pv = 1.0 + 1.0 / 1.035 + 0.5 / 1.035f64.powi(2);
        assert!((e.present_value - pv).abs() < 1e-12);
        assert!((e.cost.0 - 8.0 * 1_000.0 * pv).abs() < 1e-6);
    }

    #[test]
    fn present_value_discounts_later_years() {
        assert_eq!(present_value(0.5, 0.035), 0.5);
        assert_eq!(present_value(1.0, 0.035), 1.0);
        assert!((present_value(2.0, 0.1) - (1.0 + 1.0 / 1.1)).abs() < 1e-12);
    }

    fn row(year: &str, cohort: &str, outcome: &str, months: i64, n: u64) -> CohortRow {
        CohortRow {
            period_end: year.into(),
            cohort: cohort.into(),
            stratum: "other".into(),
            outcome: outcome.into(),
            months_after: months,
            children: n,
            data_until: Some("2025-03-31".into()),
        }
    }

    #[test]
    fn the_cohort_year_must_be_followed_up_in_the_data() {
        let rows = [
            row("2024-03-31", "engaged", "cohort", 0, 10),
            row("2025-03-31", "engaged", "cohort", 0, 10),
            row("2024-03-31", "engaged", "cla_start", 3, 2),
            row("2024-03-31", "engaged", "cla_start", 13, 5),
            row("2024-03-31", "comparison", "cohort", 0, 40),
            row("2024-03-31", "comparison", "cla_start", 12, 4),
        ];
        assert_eq!(cohort_year(&rows, 12, "2025-03-31").unwrap(), "2024-03-31");
        // With 18 months no cohort year is followed up within the data; the message names
        // the latest one.
        let e = cohort_year(&rows, 18, "2025-03-31").unwrap_err();
        assert!(
            e.contains("(ending 2025-03-31) is followed until 2026-09-30"),
            "{e}"
        );
        // Events after the follow-up (month 13) do not count.
        let s = &strata(&rows, "2024-03-31", 12)["cla_start"];
        assert_eq!(
            s,
            &[Stratum {
                engaged: 10,
                engaged_events: 2,
                comparison: 40,
                comparison_events: 4
            }]
        );
    }

    /// The section: a blank unit cost stops its outcome with the source to consult, a
    /// count under the DfE threshold hides its outcome, and the estimate that survives
    /// carries its assumptions and the "no reliable evidence" flag.
    #[test]
    fn the_report_section() {
        let spec: AvoidanceSpec = toml::from_str(
            "[[outcomes]]\noutcome = \"cin_referral\"\nunit_cost = \"blank\"\nduration_years = 0.5\n\
             [[outcomes]]\noutcome = \"cp_plan_start\"\nunit_cost = \"cp\"\nduration_years = 0.75\n\
             [[outcomes]]\noutcome = \"cla_start\"\nunit_cost = \"cp\"\nduration_years = 0.75\n",
        )
        .unwrap();
        let mut rows = vec![
            row("2024-03-31", "engaged", "cohort", 0, 200),
            row("2024-03-31", "comparison", "cohort", 0, 500),
            row("2024-03-31", "engaged", "cp_plan_start", 4, 12),
            row("2024-03-31", "comparison", "cp_plan_start", 7, 50),
            row("2024-03-31", "engaged", "cla_start", 2, 3),
            row("2024-03-31", "comparison", "cla_start", 2, 40),
        ];
        rows.push(row("2025-03-31", "engaged", "cohort", 0, 10));
        let cost = |item: &str, v: Option<f64>| crate::reference::UnitCost {
            item: item.into(),
            unit: "per child per year".into(),
            value_gbp: v,
            price_year: v.map(|_| "2024-25".into()),
            source: "Test source".into(),
            confirmed: false,
            notes: String::new(),
        };
        let costs =
            crate::reference::UnitCosts(vec![cost("blank", None), cost("cp", Some(10_000.0))]);
        let dfe = crate::report::disclosure::Policy::Dfe {
            threshold: 5,
            symbol: "c".into(),
        };
        let v = view("f.toml", &spec, &rows, &costs, "2025-03-31", &dfe, 0.95).unwrap();
        assert_eq!(v.error, None);
        assert_eq!(
            v.cohort,
            "2023-24: children under 5 on 31 March 2024, followed up to 31 March 2025"
        );
        let [cin, cp, cla] = &v.outcomes[..] else {
            panic!("{v:#?}")
        };
        assert!(
            cin.error.as_ref().unwrap().contains("fill value_gbp"),
            "{cin:?}"
        );
        assert!(cin.error.as_ref().unwrap().contains("Test source"));
        assert_eq!(cp.error, None);
        assert_eq!(cp.engaged, "12 of 200 (6.0%)");
        assert_eq!(cp.comparison, "10.0% standardised (50 of 500)");
        assert_eq!(cp.difference, "4.0 pts (−0.8 to 7.9)");
        assert_eq!(cp.cost, "£48,000 (−£9,578 to £94,602)");
        assert_eq!(
            cp.unit_cost,
            "£10,000 per child per year (2024-25 prices; Test source; unverified)"
        );
        assert!(!cp.reliable);
        assert!(
            cla.error.as_ref().unwrap().contains("disclosure"),
            "{cla:?}"
        );
        assert_eq!(cla.cost, "");
        assert!(
            v.assumptions
                .iter()
                .any(|(k, v)| k == "Optimism bias" && v == "20%")
        );
    }

    #[test]
    fn the_shipped_file_is_valid_and_bad_values_are_all_reported() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/vfm_avoidance.toml");
        let spec = AvoidanceSpec::load(&shipped).unwrap();
        assert_eq!(spec.follow_up_months, 12);
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "deadweight = 1.5\nstrata = \"age\"\n[[outcomes]]\noutcome = \"prison\"\nunit_cost = \"x\"\nduration_years = 0\n",
        )
        .unwrap();
        let e = AvoidanceSpec::load(&bad).unwrap_err().to_string();
        for needle in [
            "deadweight = 1.5",
            "strata = \"age\"",
            "\"prison\"",
            "duration_years",
        ] {
            assert!(e.contains(needle), "{needle} in {e}");
        }
    }
}
