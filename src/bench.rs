//! `earlystart bench`: ingest throughput at a chosen scale, beside DuckDB converting the same
//! CSVs to Parquet (the tool an analyst would otherwise reach for).
//!
//! Both tools run as child processes so each one's wall time and peak RSS (from
//! `getrusage(RUSAGE_CHILDREN)`) are its own. The generated extracts are kept between runs.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::generate::{self, Scale};

/// A measured child process.
struct Measured {
    wall_s: f64,
    peak_rss_mib: f64,
}

fn peak_children_rss_mib() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// The run with the median wall time.
fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    runs.swap_remove(runs.len() / 2)
}

fn measure(cmd: &mut Command) -> Result<Measured> {
    let t0 = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let wall_s = t0.elapsed().as_secs_f64();
    if !status.success() && status.code() != Some(1) {
        bail!("{cmd:?} failed with {status}");
    }
    // RUSAGE_CHILDREN reports the largest child so far, so each tool runs once, earlystart first
    // (it is the larger); a smaller DuckDB figure is then reported as "≤".
    Ok(Measured {
        wall_s,
        peak_rss_mib: peak_children_rss_mib(),
    })
}

const INPUTS: &[&str] = &[
    "centres.csv",
    "reach_areas.csv",
    "activities.csv",
    "registrations.csv",
    "attendances.csv",
    "chis.csv",
    "hv_contacts.csv",
    "asq3.csv",
];

const DUCKDB_SCRIPT: &str = r#"
import sys, duckdb
src, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
for name in sys.argv[3:]:
    con.execute(f"COPY (SELECT * FROM read_csv('{src}/{name}', header=true)) TO '{out}/{name}.parquet' (FORMAT parquet)")
"#;

/// Generates (once) and ingests a synthetic area, then converts the same CSVs with DuckDB.
pub async fn run(project: &Path, scale: Scale, dir: &Path) -> Result<i32> {
    let extracts = dir
        .join(format!("{scale:?}").to_lowercase())
        .join("extracts");
    if !extracts.join("asq3.csv").exists() {
        eprintln!(
            "Generating {scale:?} extracts in {} (kept for later runs) …",
            extracts.display()
        );
        generate::generate(scale, 1, false, &extracts)?;
    }
    let mut bytes = 0u64;
    let mut rows = 0u64;
    for f in INPUTS {
        let p = extracts.join(f);
        bytes += std::fs::metadata(&p)?.len();
        rows += csv::Reader::from_path(&p)?.byte_records().count() as u64;
    }
    // Each tool runs RUNS times; the median wall time is reported (this machine's timings
    // wander by ±15% from run to run).
    const RUNS: usize = 3;
    let lake = dir.join("lake");
    let exe = std::env::current_exe()?;
    let mut es = Vec::new();
    for _ in 0..RUNS {
        let _ = std::fs::remove_dir_all(&lake);
        es.push(measure(
            Command::new(&exe)
                .args([
                    "--project",
                    &project.to_string_lossy(),
                    "run",
                    "nightly",
                    "--as-at",
                    &generate::AS_AT.to_string(),
                ])
                .arg("--extracts")
                .arg(&extracts)
                .arg("--lake")
                .arg(&lake)
                .env(
                    "EARLYSTART_PSEUDONYM_KEY",
                    "earlystart-benchmark-key-synthetic-data-only",
                )
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::null()),
        )?);
    }
    let es = median(es);
    let duck_out = dir.join("duckdb");
    let has_duckdb = Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    let duck = if has_duckdb {
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            let _ = std::fs::remove_dir_all(&duck_out);
            std::fs::create_dir_all(&duck_out)?;
            runs.push(measure(
                Command::new("python3")
                    .args(["-c", DUCKDB_SCRIPT])
                    .arg(&extracts)
                    .arg(&duck_out)
                    .args(INPUTS),
            )?);
        }
        Some(median(runs))
    } else {
        None
    };

    let mb = bytes as f64 / 1e6;
    let mut t = comfy_table::Table::new();
    t.set_header([
        "tool",
        "rows",
        "MB of CSV",
        "wall s",
        "rows/s",
        "MB/s",
        "peak RSS MiB",
    ]);
    let row = |name: &str, m: &Measured, rss: String| {
        vec![
            name.to_string(),
            rows.to_string(),
            format!("{mb:.1}"),
            format!("{:.2}", m.wall_s),
            format!("{:.0}", rows as f64 / m.wall_s),
            format!("{:.1}", mb / m.wall_s),
            rss,
        ]
    };
    t.add_row(row(
        "earlystart (validate, pseudonymise, quarantine, Delta commit)",
        &es,
        format!("{:.0}", es.peak_rss_mib),
    ));
    if let Some(d) = &duck {
        t.add_row(row(
            "DuckDB CSV → Parquet",
            d,
            format!("≤ {:.0}", d.peak_rss_mib),
        ));
    }
    println!(
        "Ingest benchmark, scale {scale:?}, median of {RUNS} runs, machine with {} cores\n{t}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    match &duck {
        Some(d) => println!(
            "earlystart / DuckDB wall time: {:.2}×",
            es.wall_s / d.wall_s
        ),
        None => println!("DuckDB not installed (pip install duckdb): no side-by-side figure."),
    }
    Ok(0)
}
