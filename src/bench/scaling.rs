//! `earlystart bench --stages scaling`: the whole night at one scale, stage by stage (ingest,
//! metrics, reports) and end to end, in process and with the SQL on Ballista clusters of
//! 1, 2 and 4 executors. Each scale's figures are kept in `<dir>/<scale>/scaling.json`, so
//! the printed table covers every scale measured into the same `--dir`, and a national run
//! is projected from how the county and region figures grow.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::{BenchCluster, Measured, earlystart, measure, nightly};
use crate::generate::Scale;
use crate::lake::Lake;

/// England's children under five (about 3.1 million, ONS mid-year estimates) in counties'
/// worth of the generator's county (~45,000 under-fives): the size of a national run.
const NATIONAL_COUNTIES: f64 = 69.0;

/// Wall time and peak RSS of one stage.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Figure {
    wall_s: f64,
    peak_rss_mib: f64,
}

impl From<&Measured> for Figure {
    fn from(m: &Measured) -> Self {
        Self {
            wall_s: m.wall_s,
            peak_rss_mib: m.peak_rss_mib,
        }
    }
}

/// One engine's night at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EngineNight {
    /// 0 = in process; otherwise the executors of the Ballista cluster.
    executors: usize,
    ingest: Figure,
    metrics: Figure,
    reports: Figure,
    end_to_end: Figure,
    /// Peak RSS of each Ballista executor (empty in process).
    executor_peak_rss_mib: Vec<f64>,
    /// Whether every metric value equals the in-process run's (None in process).
    same_values: Option<bool>,
}

impl EngineNight {
    fn engine(&self) -> String {
        match self.executors {
            0 => "in process".into(),
            n => format!("Ballista, {n} executor{}", if n == 1 { "" } else { "s" }),
        }
    }
}

/// Every engine's night at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScaleNights {
    scale: String,
    /// Size in counties' worth of children (the x of the projection).
    counties: f64,
    measured_on: String,
    nights: Vec<EngineNight>,
    /// Cluster sizes whose night failed, with the error.
    #[serde(default)]
    failed: Vec<(usize, String)>,
}

/// Measures the night at `scale` on `extracts`, saves the figures and prints the table of
/// every scale measured into `dir`, with the national projection.
pub async fn run(
    project: &Path,
    scale: Scale,
    extracts: &Path,
    dir: &Path,
    executors: &[usize],
) -> Result<()> {
    let exe = std::env::current_exe()?;
    let scale_name = format!("{scale:?}").to_lowercase();
    let work = dir.join(&scale_name).join("scaling");
    let lake = work.join("lake");
    let fresh = |lake: &Path| -> Result<()> {
        match std::fs::remove_dir_all(lake) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot empty {}", lake.display()))
            }
            _ => Ok(()),
        }
    };

    // In process, each stage its own process (so each has its own peak RSS) …
    fresh(&lake)?;
    eprintln!("{scale_name}: ingest …");
    let ingest =
        measure(nightly(&exe, project, extracts, &lake).args(["--no-metrics", "--no-reports"]))?;
    eprintln!("{scale_name}: metrics …");
    let metrics = measure(
        earlystart(&exe, project, "warn")
            .args(["metrics", "--force", "--lake"])
            .arg(&lake),
    )?;
    let local_values = super::metric_values_digest(&exe, project, &lake)?;
    eprintln!("{scale_name}: reports …");
    let reports = measure(
        earlystart(&exe, project, "warn")
            .args(["report", "--lake"])
            .arg(&lake),
    )?;
    // … and the whole night as the scheduler runs it, one process into an empty lake.
    fresh(&lake)?;
    eprintln!("{scale_name}: end to end …");
    let end_to_end = measure(&mut nightly(&exe, project, extracts, &lake))?;
    let nights = vec![EngineNight {
        executors: 0,
        ingest: (&ingest).into(),
        metrics: (&metrics).into(),
        reports: (&reports).into(),
        end_to_end: (&end_to_end).into(),
        executor_peak_rss_mib: Vec::new(),
        same_values: None,
    }];

    let mut figures = ScaleNights {
        scale: scale_name.clone(),
        counties: scale.counties(),
        measured_on: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        nights,
        failed: Vec::new(),
    };
    // Saved after each engine: a cluster run at region scale takes tens of minutes.
    let file = dir.join(&scale_name).join("scaling.json");
    let save = |figures: &ScaleNights| -> Result<()> {
        std::fs::write(&file, serde_json::to_string_pretty(figures)?)
            .with_context(|| format!("cannot write {}", file.display()))
    };
    save(&figures)?;

    // On Ballista only the SQL moves to the cluster: ingest and reports run in the client
    // whatever the engine, so reports are measured once (above) and added to each night.
    for &n in executors {
        fresh(&lake)?;
        eprintln!("{scale_name}: Ballista with {n} executor(s) …");
        match ballista_night(
            &exe,
            project,
            extracts,
            &lake,
            &work,
            n,
            &reports,
            &local_values,
        )
        .await
        {
            Ok(night) => figures.nights.push(night),
            // A cluster that fails (out of memory, say) is a figure too; the next size runs.
            Err(e) => {
                eprintln!("{scale_name}: Ballista with {n} executor(s) failed: {e:#}");
                figures.failed.push((n, format!("{e:#}")));
            }
        }
        save(&figures)?;
    }
    fresh(&lake)?;
    let all = saved(dir)?;
    println!("\n{}", table(&all));
    println!("{}", projection(&all));
    Ok(())
}

/// The night with its SQL on a fresh Ballista cluster of `executors` executors.
#[allow(clippy::too_many_arguments)]
async fn ballista_night(
    exe: &Path,
    project: &Path,
    extracts: &Path,
    lake: &Path,
    work: &Path,
    executors: usize,
    reports: &Measured,
    local_values: &str,
) -> Result<EngineNight> {
    let cluster = BenchCluster::start(exe, project, executors, &work.join("ballista"))?;
    let night = measure(
        nightly(exe, project, extracts, lake)
            .arg("--no-reports")
            .args(["--engine", &format!("ballista://{}", cluster.address)]),
    )?;
    let executor_rss = cluster.executor_peak_rss_mib();
    drop(cluster);
    let steps = crate::history::last_run_steps(&Lake::open(&lake.to_string_lossy())?).await?;
    let seconds = |names: &[&str]| -> f64 {
        steps
            .iter()
            .filter(|(s, _)| names.contains(&s.as_str()))
            .map(|(_, t)| t)
            .sum()
    };
    let same = super::metric_values_digest(exe, project, lake)? == local_values;
    Ok(EngineNight {
        executors,
        // One process ran both: its peak RSS is the peak of either.
        ingest: Figure {
            wall_s: seconds(&["reference", "ingest", "linkage"]),
            peak_rss_mib: night.peak_rss_mib,
        },
        metrics: Figure {
            wall_s: seconds(&["metrics"]),
            peak_rss_mib: night.peak_rss_mib,
        },
        reports: reports.into(),
        end_to_end: Figure {
            wall_s: night.wall_s + reports.wall_s,
            peak_rss_mib: night.peak_rss_mib.max(reports.peak_rss_mib),
        },
        executor_peak_rss_mib: executor_rss,
        same_values: Some(same),
    })
}

/// Every scale's saved figures under `dir`, smallest first.
fn saved(dir: &Path) -> Result<Vec<ScaleNights>> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let file: PathBuf = entry?.path().join("scaling.json");
        if let Ok(text) = std::fs::read_to_string(&file) {
            all.push(
                serde_json::from_str::<ScaleNights>(&text)
                    .with_context(|| format!("cannot read {}", file.display()))?,
            );
        }
    }
    all.sort_by(|a, b| a.counties.total_cmp(&b.counties));
    Ok(all)
}

fn cell(f: &Figure) -> String {
    format!("{:.1} s / {:.0} MiB", f.wall_s, f.peak_rss_mib)
}

/// One row per scale and engine.
fn table(all: &[ScaleNights]) -> String {
    let mut t = comfy_table::Table::new();
    t.set_header([
        "scale",
        "engine",
        "ingest",
        "metrics",
        "reports",
        "end to end",
        "executors peak RSS MiB (max / sum)",
        "same values",
        "measured",
    ]);
    for s in all {
        for n in &s.nights {
            let rss = &n.executor_peak_rss_mib;
            t.add_row(vec![
                s.scale.clone(),
                n.engine(),
                cell(&n.ingest),
                cell(&n.metrics),
                cell(&n.reports),
                cell(&n.end_to_end),
                if rss.is_empty() {
                    "-".into()
                } else {
                    format!(
                        "{:.0} / {:.0}",
                        rss.iter().copied().fold(0.0, f64::max),
                        rss.iter().sum::<f64>()
                    )
                },
                match n.same_values {
                    None => "-".into(),
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                },
                s.measured_on.clone(),
            ]);
        }
        for (n, error) in &s.failed {
            let first_line = error.lines().next().unwrap_or("");
            t.add_row(vec![
                s.scale.clone(),
                format!("Ballista, {n} executors"),
                format!("failed: {first_line}"),
            ]);
        }
    }
    format!(
        "The night stage by stage and end to end (wall / peak RSS of the earlystart process; \
         on Ballista the ingest and metrics figures are the steps of one run, so both show \
         that run's peak)\n{t}"
    )
}

/// A measured figure grown to `x` counties along the power law through two measured
/// scales: `v = v1 · (x / x1)^b` with `b = ln(v2 / v1) / ln(x2 / x1)`.
fn grow(x1: f64, v1: f64, x2: f64, v2: f64, x: f64) -> (f64, f64) {
    let b = (v2 / v1).ln() / (x2 / x1).ln();
    (v2 * (x / x2).powf(b), b)
}

/// The national night projected from the two largest scales measured, per engine.
fn projection(all: &[ScaleNights]) -> String {
    let [.., small, large] = all else {
        return "National projection: measure two scales (county and region) into the same \
                --dir first."
            .into();
    };
    let mut t = comfy_table::Table::new();
    t.set_header([
        "engine",
        "stage",
        "wall time (exponent)",
        "peak RSS (exponent)",
        "largest executor's peak RSS (exponent)",
    ]);
    let largest = |n: &EngineNight| n.executor_peak_rss_mib.iter().copied().fold(0.0, f64::max);
    for big in &large.nights {
        let Some(little) = small.nights.iter().find(|n| n.executors == big.executors) else {
            continue;
        };
        let stages: [(&str, &Figure, &Figure); 4] = [
            ("ingest", &little.ingest, &big.ingest),
            ("metrics", &little.metrics, &big.metrics),
            ("reports", &little.reports, &big.reports),
            ("end to end", &little.end_to_end, &big.end_to_end),
        ];
        for (stage, a, b) in stages {
            let (wall, bw) = grow(
                small.counties,
                a.wall_s,
                large.counties,
                b.wall_s,
                NATIONAL_COUNTIES,
            );
            let (rss, br) = grow(
                small.counties,
                a.peak_rss_mib,
                large.counties,
                b.peak_rss_mib,
                NATIONAL_COUNTIES,
            );
            // The executors hold the SQL's data: their growth is the one a cluster sizes for.
            let executor = if big.executors > 0 && stage == "end to end" {
                let (rss, b) = grow(
                    small.counties,
                    largest(little),
                    large.counties,
                    largest(big),
                    NATIONAL_COUNTIES,
                );
                format!("{:.1} GiB ({b:.2})", rss / 1024.0)
            } else {
                "-".into()
            };
            t.add_row(vec![
                big.engine(),
                stage.to_string(),
                format!("{:.1} min ({bw:.2})", wall / 60.0),
                format!("{:.1} GiB ({br:.2})", rss / 1024.0),
                executor,
            ]);
        }
    }
    format!(
        "National projection: England's under-fives are about {NATIONAL_COUNTIES} counties' \
         worth; each figure grows along the power law through {} ({}×) and {} ({}×)\n{t}",
        small.scale,
        rounded(small.counties),
        large.scale,
        rounded(large.counties)
    )
}

/// A size in counties to three decimals (0.006, 1, 5).
fn rounded(counties: f64) -> f64 {
    (counties * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_follows_the_power_law_through_both_points() {
        // Linear: 10 s at 1, 50 s at 5 → 690 s at 69, exponent 1.
        let (v, b) = grow(1.0, 10.0, 5.0, 50.0, 69.0);
        assert!((b - 1.0).abs() < 1e-12);
        assert!((v - 690.0).abs() < 1e-9);
        // Quadratic: 4 at 2, 16 at 4 → 64 at 8.
        let (v, b) = grow(2.0, 4.0, 4.0, 16.0, 8.0);
        assert!((b - 2.0).abs() < 1e-12);
        assert!((v - 64.0).abs() < 1e-9);
    }

    #[test]
    fn the_projection_pairs_engines_of_the_two_largest_scales() {
        let f = |w: f64, r: f64| Figure {
            wall_s: w,
            peak_rss_mib: r,
        };
        let night = |executors, w: f64| EngineNight {
            executors,
            ingest: f(w, 100.0),
            metrics: f(w, 100.0),
            reports: f(w, 100.0),
            end_to_end: f(w, 1024.0),
            executor_peak_rss_mib: if executors > 0 {
                vec![100.0, 512.0 * w / 6.0]
            } else {
                vec![]
            },
            same_values: None,
        };
        let at = |scale: &str, counties, w| ScaleNights {
            scale: scale.into(),
            counties,
            measured_on: "2026-12-06".into(),
            nights: vec![night(0, w), night(2, 2.0 * w)],
            failed: vec![],
        };
        let text = projection(&[
            at("tiny", 0.01, 1.0),
            at("county", 1.0, 6.0),
            at("region", 5.0, 30.0),
        ]);
        // Local: 30 s at 5 counties, linear → 414 s = 6.9 min at 69; RSS flat (exponent 0).
        assert!(text.contains("6.9 min (1.00)"), "{text}");
        assert!(text.contains("1.0 GiB (0.00)"), "{text}");
        // Ballista 2: 60 s at 5 → 13.8 min; its largest executor 1,024 MiB at 1 (w = 12),
        // 5,120 MiB at 5 → 69 GiB.
        assert!(text.contains("13.8 min (1.00)"), "{text}");
        assert!(text.contains("69.0 GiB (1.00)"), "{text}");
        assert!(
            text.contains("through county (1×) and region (5×)"),
            "{text}"
        );
        assert!(projection(&[at("county", 1.0, 6.0)]).starts_with("National projection: measure"));
    }
}
