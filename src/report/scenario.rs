//! Closure and budget scenarios (shared/domain/value-for-money.md §5): which families lose
//! their nearest site, how far they would travel, and the reach lost in the most deprived
//! areas. Pure: sites and areas in, an outcome out. The output is illustrative: it shows
//! consequences; it does not recommend.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

/// Mean Earth radius used by the haversine formula (km).
pub const EARTH_RADIUS_KM: f64 = 6_371.008_8;

/// Great-circle distance in km between two WGS84 points (degrees).
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

/// `reports/scenarios/<name>.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub name: String,
    /// Sites open on this date count as service points.
    pub as_at: chrono::NaiveDate,
    /// Named sites to close.
    #[serde(default)]
    pub close: Vec<String>,
    /// Or: a cut of this share of the open sites' direct costs …
    #[serde(default)]
    pub budget_cut_fraction: Option<f64>,
    /// … met by this rule (only `lowest_deprived_reach_per_pound`).
    #[serde(default)]
    pub selection: Option<String>,
    #[serde(default = "default_site_types")]
    pub site_types: Vec<String>,
    /// Only `postcode_mean` is implemented: the mean point of the LSOA's live postcodes.
    #[serde(default = "default_centroid")]
    pub centroid: String,
    pub distance_threshold_km: f64,
    /// Whether central costs count as saved (they do not by default).
    #[serde(default)]
    pub save_central: bool,
}

fn default_site_types() -> Vec<String> {
    vec!["centre".into(), "hub".into()]
}

fn default_centroid() -> String {
    "postcode_mean".into()
}

impl ScenarioSpec {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<ScenarioSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        let spec: ScenarioSpec = toml::from_str(&text)
            .with_context(|| format!("{}: invalid scenario", path.display()))?;
        if spec.close.is_empty() == spec.budget_cut_fraction.is_none() {
            bail!(
                "{}: give either close = [sites] or budget_cut_fraction (with selection), not both or neither",
                path.display()
            );
        }
        if let Some(f) = spec.budget_cut_fraction
            && !(0.0..1.0).contains(&f)
        {
            bail!(
                "{}: budget_cut_fraction {f} must be between 0 and 1",
                path.display()
            );
        }
        if spec.budget_cut_fraction.is_some()
            && spec.selection.as_deref() != Some("lowest_deprived_reach_per_pound")
        {
            bail!(
                "{}: selection must be \"lowest_deprived_reach_per_pound\" (the only rule implemented)",
                path.display()
            );
        }
        if spec.centroid != "postcode_mean" {
            bail!(
                "{}: centroid {:?} is not implemented; use \"postcode_mean\" (lsoa_pwc.csv is not read yet)",
                path.display(),
                spec.centroid
            );
        }
        Ok(spec)
    }
}

/// A service point.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub id: String,
    pub lat: f64,
    pub lon: f64,
    /// Direct cost in the year (for the budget rule).
    pub direct_cost: f64,
}

/// An LSOA, located at its point, with its families.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    pub lsoa: String,
    pub lat: f64,
    pub lon: f64,
    pub band: String,
    pub counts: Counts,
}

/// Children under five and the families reached among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    pub under_fives: u64,
    pub registered: u64,
    pub seen: u64,
    pub sustained: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.under_fives += o.under_fives;
        self.registered += o.registered;
        self.seen += o.seen;
        self.sustained += o.sustained;
    }
}

/// One LSOA before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaChange {
    pub lsoa: String,
    pub band: String,
    pub before: String,
    pub before_km: f64,
    pub after: Option<String>,
    pub after_km: Option<f64>,
    pub newly_beyond: bool,
}

/// What a scenario does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub name: String,
    pub closed: Vec<String>,
    /// LSOAs whose nearest site changes.
    pub changed: Vec<AreaChange>,
    /// Families whose distance increases.
    pub increased: Counts,
    /// Families newly beyond the threshold (before ≤ D < after).
    pub newly_beyond: Counts,
    /// Newly beyond, by deprivation band.
    pub newly_beyond_by_band: BTreeMap<String, Counts>,
    /// Population-weighted mean distance (km) before and after.
    pub mean_km_before: f64,
    pub mean_km_after: f64,
    /// Direct costs of the closed sites.
    pub savings: f64,
    pub threshold_km: f64,
}

fn nearest(sites: &[Site], lat: f64, lon: f64) -> Option<(&Site, f64)> {
    sites
        .iter()
        .map(|s| (s, haversine_km(lat, lon, s.lat, s.lon)))
        // Ties go to the lowest site id.
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.id.cmp(&b.0.id)))
}

/// Runs a scenario over the open sites and the LSOAs.
pub fn run(spec: &ScenarioSpec, open: &[Site], areas: &[Area]) -> Result<Outcome> {
    for id in &spec.close {
        if !open.iter().any(|s| &s.id == id) {
            bail!(
                "scenario {:?}: site {id:?} is not an open site of types {:?} on {} (or has no coordinates)",
                spec.name,
                spec.site_types,
                spec.as_at
            );
        }
    }
    let closed: Vec<String> = match spec.budget_cut_fraction {
        None => spec.close.clone(),
        Some(fraction) => budget_closures(open, areas, fraction),
    };
    let after: Vec<Site> = open
        .iter()
        .filter(|s| !closed.contains(&s.id))
        .cloned()
        .collect();
    let mut out = Outcome {
        name: spec.name.clone(),
        closed: closed.clone(),
        changed: Vec::new(),
        increased: Counts::default(),
        newly_beyond: Counts::default(),
        newly_beyond_by_band: BTreeMap::new(),
        mean_km_before: 0.0,
        mean_km_after: 0.0,
        savings: open
            .iter()
            .filter(|s| closed.contains(&s.id))
            .map(|s| s.direct_cost)
            .sum(),
        threshold_km: spec.distance_threshold_km,
    };
    let (mut weight, mut before_sum, mut after_sum) = (0.0, 0.0, 0.0);
    for a in areas {
        let Some((b, bd)) = nearest(open, a.lat, a.lon) else {
            continue;
        };
        let now = nearest(&after, a.lat, a.lon);
        let w = a.counts.under_fives as f64;
        weight += w;
        before_sum += w * bd;
        after_sum += w * now.map_or(bd, |(_, d)| d);
        let (after_id, after_km) = (now.map(|(s, _)| s.id.clone()), now.map(|(_, d)| d));
        if after_id.as_deref() == Some(b.id.as_str()) {
            continue;
        }
        let newly_beyond = bd <= spec.distance_threshold_km
            && after_km.is_none_or(|d| d > spec.distance_threshold_km);
        out.increased += a.counts;
        if newly_beyond {
            out.newly_beyond += a.counts;
            *out.newly_beyond_by_band.entry(a.band.clone()).or_default() += a.counts;
        }
        out.changed.push(AreaChange {
            lsoa: a.lsoa.clone(),
            band: a.band.clone(),
            before: b.id.clone(),
            before_km: bd,
            after: after_id,
            after_km,
            newly_beyond,
        });
    }
    if weight > 0.0 {
        out.mean_km_before = before_sum / weight;
        out.mean_km_after = after_sum / weight;
    }
    Ok(out)
}

/// value-for-money.md §5 rule `lowest_deprived_reach_per_pound`: close, one at a time, the
/// open site with the fewest under-fives in most deprived 30% LSOAs assigned to it per £ of
/// its direct cost (ties: lowest id), reassigning after each, until the direct costs saved
/// reach `fraction` of the open sites' direct costs.
fn budget_closures(open: &[Site], areas: &[Area], fraction: f64) -> Vec<String> {
    let target = fraction * open.iter().map(|s| s.direct_cost).sum::<f64>();
    let mut remaining: Vec<Site> = open.to_vec();
    let mut closed = Vec::new();
    let mut saved = 0.0;
    while saved < target && remaining.len() > 1 {
        let mut deprived: BTreeMap<&str, u64> =
            remaining.iter().map(|s| (s.id.as_str(), 0)).collect();
        for a in areas.iter().filter(|a| a.band == "most_deprived_30") {
            if let Some((s, _)) = nearest(&remaining, a.lat, a.lon) {
                *deprived.get_mut(s.id.as_str()).expect("site listed") += a.counts.under_fives;
            }
        }
        let pick = remaining
            .iter()
            .filter(|s| s.direct_cost > 0.0)
            .min_by(|a, b| {
                let ra = deprived[a.id.as_str()] as f64 / a.direct_cost;
                let rb = deprived[b.id.as_str()] as f64 / b.direct_cost;
                ra.total_cmp(&rb).then(a.id.cmp(&b.id))
            })
            .map(|s| s.id.clone());
        let Some(id) = pick else { break };
        let site = remaining
            .iter()
            .position(|s| s.id == id)
            .expect("picked from remaining");
        saved += remaining.remove(site).direct_cost;
        closed.push(id);
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: &str, lat: f64, lon: f64, cost: f64) -> Site {
        Site {
            id: id.into(),
            lat,
            lon,
            direct_cost: cost,
        }
    }

    fn area(lsoa: &str, lat: f64, lon: f64, band: &str, c: [u64; 4]) -> Area {
        Area {
            lsoa: lsoa.into(),
            lat,
            lon,
            band: band.into(),
            counts: Counts {
                under_fives: c[0],
                registered: c[1],
                seen: c[2],
                sustained: c[3],
            },
        }
    }

    fn spec(close: &[&str]) -> ScenarioSpec {
        ScenarioSpec {
            name: "Close Riverside".into(),
            as_at: chrono::NaiveDate::from_ymd_opt(2025, 4, 1).unwrap(),
            close: close.iter().map(|s| s.to_string()).collect(),
            budget_cut_fraction: None,
            selection: None,
            site_types: default_site_types(),
            centroid: default_centroid(),
            distance_threshold_km: 3.0,
            save_central: false,
        }
    }

    /// value-for-money.md §5, the worked example.
    fn example() -> (Vec<Site>, Vec<Area>) {
        (
            vec![
                site("S1", 52.6300, -1.1300, 300_000.0),
                site("S2", 52.6500, -1.0800, 250_000.0),
                site("S3", 52.6000, -1.2000, 200_000.0),
            ],
            vec![
                area(
                    "L1",
                    52.6350,
                    -1.1250,
                    "most_deprived_30",
                    [120, 40, 25, 15],
                ),
                area("L2", 52.6450, -1.0900, "other", [80, 30, 20, 10]),
                area("L3", 52.6050, -1.1900, "other", [60, 20, 10, 5]),
                area("L4", 52.6200, -1.1500, "other", [90, 25, 14, 10]),
            ],
        )
    }

    #[test]
    fn distances_of_the_worked_example() {
        let d = |a: (f64, f64), b: (f64, f64)| format!("{:.3}", haversine_km(a.0, a.1, b.0, b.1));
        let (s1, s2, s3) = ((52.63, -1.13), (52.65, -1.08), (52.60, -1.20));
        assert_eq!(d((52.635, -1.125), s1), "0.650");
        assert_eq!(d((52.645, -1.09), s2), "0.874");
        assert_eq!(d((52.605, -1.19), s3), "0.875");
        assert_eq!(d((52.62, -1.15), s1), "1.749");
        assert_eq!(d((52.635, -1.125), s2), "3.464");
        assert_eq!(d((52.62, -1.15), s3), "4.043");
        assert_eq!(d((52.62, -1.15), s2), "5.783");
    }

    #[test]
    fn closing_s1_puts_l1_and_l4_beyond_three_km() {
        let (sites, areas) = example();
        let out = run(&spec(&["S1"]), &sites, &areas).unwrap();
        let moved: Vec<(&str, &str, String)> = out
            .changed
            .iter()
            .map(|c| {
                (
                    c.lsoa.as_str(),
                    c.after.as_deref().unwrap(),
                    format!("{:.3}", c.after_km.unwrap()),
                )
            })
            .collect();
        assert_eq!(
            moved,
            [("L1", "S2", "3.464".into()), ("L4", "S3", "4.043".into())]
        );
        assert!(out.changed.iter().all(|c| c.newly_beyond));
        assert_eq!(
            out.newly_beyond,
            Counts {
                under_fives: 210,
                registered: 65,
                seen: 39,
                sustained: 25
            }
        );
        assert_eq!(
            out.newly_beyond_by_band["most_deprived_30"].under_fives,
            120
        );
        assert_eq!(out.savings, 300_000.0);
        assert!(out.mean_km_after > out.mean_km_before);
    }

    #[test]
    fn the_budget_rule_closes_the_site_with_least_deprived_reach_per_pound() {
        let (sites, areas) = example();
        let mut s = spec(&[]);
        s.budget_cut_fraction = Some(0.2);
        s.selection = Some("lowest_deprived_reach_per_pound".into());
        // Only L1 is most deprived and it is nearest S1: S2 and S3 serve none (0 per £), a
        // tie that goes to the lowest id, S2 (£250,000), which meets 20% of £750,000.
        let out = run(&s, &sites, &areas).unwrap();
        assert_eq!(out.closed, ["S2"]);
        assert_eq!(out.savings, 250_000.0);
        // Half (£375,000) needs S3 too; S1, which serves the deprived L1, stays open.
        s.budget_cut_fraction = Some(0.5);
        assert_eq!(run(&s, &sites, &areas).unwrap().closed, ["S2", "S3"]);
    }

    #[test]
    fn closing_an_unknown_site_is_an_error() {
        let (sites, areas) = example();
        let err = run(&spec(&["S9"]), &sites, &areas).unwrap_err().to_string();
        assert!(err.contains("\"S9\" is not an open site"), "{err}");
    }
}
