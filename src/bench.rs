//! `earlystart bench`: ingest throughput at a chosen scale, beside DuckDB converting the same
//! CSVs to Parquet (the tool an analyst would otherwise reach for); then the whole metric
//! catalogue, beside DuckDB running the same `sql/` files on the same Parquet files
//! (`scripts/duckdb_metrics.py`), with a digest showing both engines got the same counts.
//!
//! Every tool runs as a child process so each one's wall time and peak RSS (from `wait4`)
//! are its own. The generated extracts are kept between runs.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::generate::{self, Scale};

mod scaling;

/// A measured child process.
struct Measured {
    wall_s: f64,
    peak_rss_mib: f64,
}

/// The run with the median wall time.
fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    runs.swap_remove(runs.len() / 2)
}

/// Runs a child process to completion and measures its own wall time and peak RSS
/// (`wait4` reports the resources of that child alone). Returns its standard output.
fn measure_output(cmd: &mut Command) -> Result<(Measured, String)> {
    use std::io::Read as _;
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    let mut status = 0;
    // SAFETY: wait4 only writes into the two values we pass; the child is ours and unwaited.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    if pid < 0 {
        bail!(
            "cannot wait for {cmd:?}: {}",
            std::io::Error::last_os_error()
        );
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // Exit 1 = ran with rejections: still a complete run.
    if !matches!(code, Some(0 | 1)) {
        bail!("{cmd:?} failed with status {status}");
    }
    Ok((
        Measured {
            wall_s,
            peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        },
        out,
    ))
}

fn measure(cmd: &mut Command) -> Result<Measured> {
    Ok(measure_output(cmd)?.0)
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
pub async fn run(
    project: &Path,
    scale: Scale,
    dir: &Path,
    stages: &[String],
    executors: &[usize],
) -> Result<i32> {
    const STAGES: &[&str] = &[
        "ingest",
        "social",
        "linkage",
        "metrics",
        "ballista",
        "reports",
        "incremental",
        "scaling",
    ];
    if let Some(s) = stages.iter().find(|s| !STAGES.contains(&s.as_str())) {
        bail!("unknown bench stage {s:?}: choose from {STAGES:?}");
    }
    let stage = |name: &str| stages.iter().any(|s| s == name);
    let extracts = dir
        .join(format!("{scale:?}").to_lowercase())
        .join("extracts");
    if !extracts.join("identities.csv").exists() {
        eprintln!(
            "Generating {scale:?} extracts in {} (kept for later runs) …",
            extracts.display()
        );
        generate::generate(scale, 1, false, &extracts)?;
    }
    // The ingest comparison reads the centre and health extracts DuckDB converts too; the
    // social care and education formats are timed on their own below.
    let core = view(
        &extracts,
        &dir.join(format!("{scale:?}").to_lowercase())
            .join("extracts_core"),
        &|name| !SOCIAL.contains(&name),
        &|_, _| Ok(None),
    )?;
    const RUNS: usize = 3;
    let lake = dir.join("lake");
    let has_duckdb = Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    if stage("ingest") {
        ingest(project, &extracts, &core, &lake, has_duckdb, RUNS, scale)?;
    }
    if stage("social") {
        social(project, &extracts, RUNS)?;
    }
    if stage("linkage") {
        linkage(project, &extracts, dir)?;
    }
    if stage("metrics") || stage("ballista") {
        // The catalogue reads the social care and education tables too: load those files
        // (the centre and health ones are already in, I001) before timing it.
        let status = nightly(&std::env::current_exe()?, project, &extracts, &lake)
            .args(["--no-metrics", "--no-reports"])
            .stdout(std::process::Stdio::null())
            .status()?;
        if !matches!(status.code(), Some(0 | 1)) {
            bail!("loading the social care extracts before the metric benchmark failed: {status}");
        }
        if stage("metrics") {
            metrics(project, &lake, has_duckdb, RUNS)?;
        }
        if stage("ballista") {
            ballista(project, &lake, dir, executors)?;
        }
    }
    if stage("reports") {
        reports(project, &lake)?;
    }
    if stage("incremental") {
        incremental(project, &extracts, dir)?;
    }
    if stage("scaling") {
        scaling::run(project, scale, &extracts, dir, executors).await?;
    }
    Ok(0)
}

/// This binary (`exe`) on `project`, its logs at level `log` (a child's logs are not part
/// of what is measured).
fn earlystart(exe: &Path, project: &Path, log: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["--project", &project.to_string_lossy()])
        .env("RUST_LOG", log);
    cmd
}

/// `earlystart run nightly` on `extracts` into `lake`, as of the generator's date, with the
/// benchmark's pseudonymisation key and warnings-only logs.
fn nightly(exe: &Path, project: &Path, extracts: &Path, lake: &Path) -> Command {
    let mut cmd = earlystart(exe, project, "warn");
    cmd.args(["run", "nightly"])
        .args(["--as-at", &generate::AS_AT.to_string()])
        .arg("--extracts")
        .arg(extracts)
        .arg("--lake")
        .arg(lake)
        .env(
            "EARLYSTART_PSEUDONYM_KEY",
            "earlystart-benchmark-key-synthetic-data-only",
        );
    cmd
}

/// A full night (every extract into an empty lake: ingest, linkage, metric catalogue) beside
/// an incremental night that adds one day of attendances, as `attendances_YYYYMMDD.csv`, to
/// a lake holding everything before that day. Reports are left out of both.
fn incremental(project: &Path, extracts: &Path, dir: &Path) -> Result<()> {
    let (before, last_day, day) = split_last_day(&extracts.join("attendances.csv"))?;
    let day_file = format!("attendances_{}.csv", last_day.replace('-', ""));
    let work = dir.join("incremental");
    let base = view(extracts, &work.join("base"), &|_| true, &|name, _| {
        Ok((name == "attendances.csv").then(|| vec![(name.to_string(), before.clone())]))
    })?;
    let next = view(extracts, &work.join("next"), &|_| true, &|name, _| {
        Ok((name == "attendances.csv").then(|| {
            vec![
                (name.to_string(), before.clone()),
                (day_file.clone(), day.clone()),
            ]
        }))
    })?;
    let lake = work.join("lake");
    let exe = std::env::current_exe()?;
    let night = |folder: &Path| {
        let mut cmd = nightly(&exe, project, folder, &lake);
        cmd.arg("--no-reports");
        cmd
    };
    let _ = std::fs::remove_dir_all(&lake);
    let (full, full_out) = measure_output(&mut night(&next))?;
    let _ = std::fs::remove_dir_all(&lake);
    measure(night(&base).stdout(std::process::Stdio::null()))?;
    let (incremental, incremental_out) = measure_output(&mut night(&next))?;
    let mut t = comfy_table::Table::new();
    t.set_header(["night", "wall s", "peak RSS MiB", "metric build"]);
    t.add_row(vec![
        "full (every extract into an empty lake)".to_string(),
        format!("{:.2}", full.wall_s),
        format!("{:.0}", full.peak_rss_mib),
        metric_scope(&full_out),
    ]);
    t.add_row(vec![
        format!(
            "incremental (one new file: {day_file}, {} rows)",
            count_rows(&day)
        ),
        format!("{:.2}", incremental.wall_s),
        format!("{:.0}", incremental.peak_rss_mib),
        metric_scope(&incremental_out),
    ]);
    println!(
        "\nFull night vs incremental night (ingest, linkage, metrics; single runs)\n{t}\n\
         full / incremental wall time: {:.1}×",
        full.wall_s / incremental.wall_s
    );
    Ok(())
}

/// Which build the night's metric summary line says it did: "full build (…)",
/// "incremental build from … (…)" or "up to date".
fn metric_scope(night_output: &str) -> String {
    let Some(line) = night_output.lines().find(|l| l.starts_with("Metrics: ")) else {
        return "not reported".into();
    };
    if line.starts_with("Metrics: up to date") {
        return "up to date".into();
    }
    line.split("; ")
        .find(|part| part.starts_with("full build") || part.starts_with("incremental build"))
        .unwrap_or("not reported")
        .to_string()
}

/// An attendances file split into (every row before the last session date, that date, the
/// rows of that date), each part with the header.
fn split_last_day(path: &Path) -> Result<(Vec<u8>, String, Vec<u8>)> {
    let mut r = csv::Reader::from_path(path)?;
    let headers = r.headers()?.clone();
    let column = headers
        .iter()
        .position(|h| h == "session_date")
        .with_context(|| format!("{}: no session_date column", path.display()))?;
    let records: Vec<csv::ByteRecord> = r.byte_records().collect::<Result<_, _>>()?;
    let last = records
        .iter()
        .filter_map(|rec| rec.get(column))
        .max()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .with_context(|| format!("{}: no rows", path.display()))?;
    let mut before = csv::Writer::from_writer(Vec::new());
    let mut day = csv::Writer::from_writer(Vec::new());
    before.write_record(&headers)?;
    day.write_record(&headers)?;
    for rec in &records {
        if rec.get(column) == Some(last.as_bytes()) {
            day.write_byte_record(rec)?;
        } else {
            before.write_byte_record(rec)?;
        }
    }
    let bytes = |w: csv::Writer<Vec<u8>>| w.into_inner().map_err(|e| anyhow::anyhow!("{e}"));
    Ok((bytes(before)?, last, bytes(day)?))
}

fn count_rows(csv_bytes: &[u8]) -> usize {
    csv::Reader::from_reader(csv_bytes).byte_records().count()
}

/// The nightly ingest of the centre and health extracts, beside DuckDB converting them.
fn ingest(
    project: &Path,
    extracts: &Path,
    core: &Path,
    lake: &Path,
    has_duckdb: bool,
    runs: usize,
    scale: Scale,
) -> Result<()> {
    let mut bytes = 0u64;
    let mut rows = 0u64;
    for f in INPUTS {
        let p = extracts.join(f);
        bytes += std::fs::metadata(&p)?.len();
        rows += csv::Reader::from_path(&p)?.byte_records().count() as u64;
    }
    // Each tool runs `runs` times; the median wall time is reported (this machine's timings
    // wander by ±15% from run to run).
    let exe = std::env::current_exe()?;
    let mut es = Vec::new();
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(lake);
        es.push(measure(
            nightly(&exe, project, core, lake).args(["--no-metrics", "--no-reports"]),
        )?);
    }
    let es = median(es);
    let duck_out = lake.with_file_name("duckdb");
    let duck = if has_duckdb {
        let mut measured = Vec::new();
        for _ in 0..runs {
            let _ = std::fs::remove_dir_all(&duck_out);
            std::fs::create_dir_all(&duck_out)?;
            measured.push(measure(
                Command::new("python3")
                    .args(["-c", DUCKDB_SCRIPT])
                    .arg(extracts)
                    .arg(&duck_out)
                    .args(INPUTS),
            )?);
        }
        Some(median(measured))
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
            format!("{:.0}", d.peak_rss_mib),
        ));
    }
    println!(
        "Ingest benchmark, scale {scale:?}, median of {runs} runs, machine with {} cores\n{t}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    match &duck {
        Some(d) => println!(
            "earlystart / DuckDB wall time: {:.2}×",
            es.wall_s / d.wall_s
        ),
        None => println!("DuckDB not installed (pip install duckdb): no side-by-side figure."),
    }
    Ok(())
}

/// Files the generator writes for the social care and education formats.
const SOCIAL: &[&str] = &[
    "cin_census.xml",
    "ssda903",
    "eyfsp_2023-24.csv",
    "sc_person_identifiers.csv",
    "identities.csv",
];

/// Files to write instead of linking an entry: `(path relative to the view, bytes)`.
type Rewritten = Option<Vec<(String, Vec<u8>)>>;

/// Builds (again) a folder of symbolic links to the entries of `from` that `keep`, with
/// the entries `rewrite` returns contents for written as files instead.
fn view(
    from: &Path,
    to: &Path,
    keep: &dyn Fn(&str) -> bool,
    rewrite: &dyn Fn(&str, &Path) -> Result<Rewritten>,
) -> Result<std::path::PathBuf> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep(&name) {
            continue;
        }
        match rewrite(&name, &entry.path())? {
            Some(files) => {
                for (relative, bytes) in files {
                    let path = to.join(relative);
                    std::fs::create_dir_all(path.parent().expect("inside the view"))?;
                    std::fs::write(path, bytes)?;
                }
            }
            None => {
                std::os::unix::fs::symlink(std::fs::canonicalize(entry.path())?, to.join(&name))?
            }
        }
    }
    Ok(to.to_path_buf())
}

/// The CIN census and SSDA903 readers on their own (`earlystart parse`, no lake): rows per
/// second and peak RSS at this scale.
fn social(project: &Path, extracts: &Path, runs: usize) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut t = comfy_table::Table::new();
    t.set_header([
        "format",
        "files",
        "units read",
        "MB",
        "wall s",
        "units/s",
        "MB/s",
        "peak RSS MiB",
    ]);
    let ssda903: Vec<std::path::PathBuf> = std::fs::read_dir(extracts.join("ssda903"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    // A census ten times the county's (every child repeated with new ids), to show the
    // streaming reader's memory stays flat as the file grows.
    let big = extracts.with_file_name("cin_census_x10.xml");
    let xml = std::fs::read_to_string(extracts.join("cin_census.xml"))?;
    let (head, rest) = xml
        .split_once("<Children>\n")
        .context("census has <Children>")?;
    let (children, tail) = rest
        .split_once("  </Children>")
        .context("census has </Children>")?;
    let mut copy = format!("{head}<Children>\n");
    for k in 0..10 {
        copy.push_str(&children.replace("<LAchildID>LA", &format!("<LAchildID>X{k}LA")));
    }
    copy.push_str("  </Children>");
    copy.push_str(tail);
    std::fs::write(&big, copy)?;
    for (kind, label, files) in [
        (
            "cin_census",
            "cin_census",
            vec![extracts.join("cin_census.xml")],
        ),
        ("cin_census", "cin_census ×10", vec![big.clone()]),
        ("ssda903", "ssda903", ssda903),
    ] {
        let mut measured = Vec::new();
        let mut out = String::new();
        for _ in 0..runs {
            let (m, o) = measure_output(
                earlystart(&exe, project, "warn")
                    .args(["parse", "--kind", kind])
                    .args(&files),
            )?;
            measured.push(m);
            out = o;
        }
        let m = median(measured);
        let (mut units, mut bytes) = (0u64, 0u64);
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            units += v["rows_read"].as_u64().unwrap_or(0);
            bytes += v["bytes"].as_u64().unwrap_or(0);
        }
        let mb = bytes as f64 / 1e6;
        t.add_row([
            label.to_string(),
            files.len().to_string(),
            units.to_string(),
            format!("{mb:.2}"),
            format!("{:.2}", m.wall_s),
            format!("{:.0}", units as f64 / m.wall_s),
            format!("{:.1}", mb / m.wall_s),
            format!("{:.0}", m.peak_rss_mib),
        ]);
    }
    println!(
        "\nSocial care readers (parse, validate, pseudonymise; no lake), median of {runs} runs\n{t}"
    );
    Ok(())
}

/// Linkage precision and recall against the generator's ground truth: as generated (NHS
/// numbers in the side file, UPNs in the census and 903), then with social care records
/// carrying demographic keys only (NHS numbers and UPNs removed from the side file, early
/// help, the census and the 903 header; pupils keep their UPN, which is how schools know
/// them).
fn linkage(project: &Path, extracts: &Path, dir: &Path) -> Result<()> {
    let exe = std::env::current_exe()?;
    let demographic = view(
        extracts,
        &dir.join("extracts_demographic"),
        &|_| true,
        &|name, path| {
            Ok(match name {
                "cin_census.xml" => {
                    let xml = std::fs::read_to_string(path)?;
                    let kept: String = xml
                        .lines()
                        .filter(|l| !l.trim_start().starts_with("<UPN>"))
                        .map(|l| format!("{l}\n"))
                        .collect();
                    Some(vec![(name.to_string(), kept.into_bytes())])
                }
                "sc_person_identifiers.csv" | "early_help_episodes.csv" => Some(vec![(
                    name.to_string(),
                    blank_columns(path, &["nhs_number", "upn"])?,
                )]),
                "ssda903" => {
                    let mut files = Vec::new();
                    for e in std::fs::read_dir(path)? {
                        let p = e?.path();
                        let file = p.file_name().expect("file").to_string_lossy().into_owned();
                        files.push((format!("ssda903/{file}"), blank_columns(&p, &["UPN"])?));
                    }
                    Some(files)
                }
                _ => None,
            })
        },
    )?;
    // The same project with the optional DEMO_NAME rule turned on in its pipeline.
    let with_demo_name = dir.join("project_demo_name");
    let _ = std::fs::remove_dir_all(&with_demo_name);
    std::fs::create_dir_all(with_demo_name.join("pipelines"))?;
    for folder in ["sql", "reports", "reference"] {
        link_dir(&project.join(folder), &with_demo_name.join(folder))?;
    }
    let shipped = std::fs::read_to_string(project.join("pipelines/nightly.toml"))?;
    std::fs::write(
        with_demo_name.join("pipelines/nightly.toml"),
        format!("{shipped}\n[linkage]\ndemo_name = true\n"),
    )?;
    println!();
    for (label, folder, project) in [
        ("as generated", extracts.to_path_buf(), project),
        (
            "as generated, DEMO_NAME on",
            extracts.to_path_buf(),
            with_demo_name.as_path(),
        ),
        ("demographic keys only", demographic.clone(), project),
        (
            "demographic keys only, DEMO_NAME on",
            demographic,
            with_demo_name.as_path(),
        ),
    ] {
        let lake = dir.join("lake_linkage");
        let _ = std::fs::remove_dir_all(&lake);
        let (m, out) = measure_output(
            nightly(&exe, project, &folder, &lake).args(["--no-metrics", "--no-reports"]),
        )?;
        for line in out.lines().filter(|l| l.starts_with("Linkage")) {
            println!(
                "Linkage, {label} ({:.1} s, {:.0} MiB for the whole run): {line}",
                m.wall_s, m.peak_rss_mib
            );
        }
    }
    Ok(())
}

/// `to` made to show the folder `from` (a symbolic link where the platform has them).
fn link_dir(from: &Path, to: &Path) -> Result<()> {
    #[cfg(unix)]
    std::os::unix::fs::symlink(from.canonicalize()?, to)?;
    #[cfg(not(unix))]
    anyhow::bail!(
        "the linkage benchmark needs symbolic links: {} → {}",
        to.display(),
        from.display()
    );
    Ok(())
}

/// A CSV file's bytes with the named columns emptied.
fn blank_columns(path: &Path, columns: &[&str]) -> Result<Vec<u8>> {
    let mut r = csv::Reader::from_path(path)?;
    let headers = r.headers()?.clone();
    let blank: Vec<bool> = headers.iter().map(|h| columns.contains(&h)).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&headers)?;
    for rec in r.records() {
        let rec = rec?;
        w.write_record(rec.iter().zip(&blank).map(|(v, b)| if *b { "" } else { v }))?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Every report of the shipped `reports/` for the latest year: one run (printing PDFs
/// dominates and varies little), its wall time, peak RSS, documents and PDF size.
fn reports(project: &Path, lake: &Path) -> Result<()> {
    let exe = std::env::current_exe()?;
    let (m, out) = measure_output(
        earlystart(&exe, project, "warn")
            .args(["report", "--lake"])
            .arg(lake),
    )?;
    // "Reports: N documents for FY (P PDF, X MB of PDF) in S s; index: …"
    let line = out
        .lines()
        .find(|l| l.starts_with("Reports:"))
        .context("earlystart report printed no summary")?;
    let number = |after: &str| -> f64 {
        line.split(after)
            .next()
            .and_then(|head| head.split([' ', '(']).rev().find(|w| !w.is_empty()))
            .and_then(|w| w.parse().ok())
            .unwrap_or(0.0)
    };
    let documents = number(" documents");
    let pdfs = number(" PDF,");
    let pdf_mb = number(" MB of PDF");
    let mut t = comfy_table::Table::new();
    t.set_header([
        "documents",
        "with PDF",
        "wall s",
        "s per document",
        "peak RSS MiB",
        "PDF MB (mean per document)",
    ]);
    t.add_row(vec![
        format!("{documents:.0}"),
        format!("{pdfs:.0}"),
        format!("{:.1}", m.wall_s),
        format!("{:.2}", m.wall_s / documents.max(1.0)),
        format!("{:.0}", m.peak_rss_mib),
        format!("{pdf_mb:.1} ({:.2})", pdf_mb / pdfs.max(1.0)),
    ]);
    println!("\nReports benchmark (earlystart report, every report of reports/), one run\n{t}");
    Ok(())
}

/// The whole metric catalogue on the ingested lake, beside DuckDB on the same SQL files.
fn metrics(project: &Path, lake: &Path, has_duckdb: bool, runs: usize) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut ours = Vec::new();
    for _ in 0..runs {
        ours.push(measure(
            earlystart(&exe, project, "warn")
                .args(["metrics", "--force", "--lake"])
                .arg(lake),
        )?);
    }
    let ours = median(ours);
    let mut t = comfy_table::Table::new();
    t.set_header([
        "engine",
        "wall s",
        "peak RSS MiB",
        "metric values",
        "digest",
    ]);
    let script = project.join("scripts/duckdb_metrics.py");
    let our_digest = if has_duckdb {
        duckdb_json(Command::new("python3").arg(&script).arg(lake))?
    } else {
        serde_json::Value::Null
    };
    t.add_row(vec![
        "earlystart (DataFusion; tests and Delta commits included)".to_string(),
        format!("{:.2}", ours.wall_s),
        format!("{:.0}", ours.peak_rss_mib),
        our_digest["rows"].to_string(),
        our_digest["digest"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(12)
            .collect(),
    ]);
    let mut duck_wall = None;
    if has_duckdb {
        let project_sql = crate::metrics::project::Project::load(
            &project.join("sql"),
            &datafusion::prelude::SessionContext::new(),
        )?;
        let models: Vec<_> = project_sql.models.iter().map(|m| m.path.clone()).collect();
        let mut runs_d = Vec::new();
        let mut last = serde_json::Value::Null;
        for _ in 0..runs {
            let (m, out) =
                measure_output(Command::new("python3").arg(&script).arg(lake).args(&models))?;
            last = last_json_line(&out)?;
            runs_d.push(m);
        }
        let d = median(runs_d);
        duck_wall = Some(d.wall_s);
        t.add_row(vec![
            format!(
                "DuckDB, same SQL files (in-engine {:.2} s)",
                last["wall_s"].as_f64().unwrap_or(0.0)
            ),
            format!("{:.2}", d.wall_s),
            format!("{:.0}", d.peak_rss_mib),
            last["rows"].to_string(),
            last["digest"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(12)
                .collect(),
        ]);
        let same = last["digest"] == our_digest["digest"];
        println!(
            "\nMetric catalogue benchmark, median of {runs} runs\n{t}\nSame counts in both engines: {}",
            if same { "yes" } else { "NO" }
        );
    } else {
        println!("\nMetric catalogue benchmark, median of {runs} runs\n{t}");
    }
    if let Some(d) = duck_wall {
        println!(
            "earlystart / DuckDB metric wall time: {:.2}×",
            ours.wall_s / d
        );
    }
    Ok(())
}

/// The metric catalogue in process and on Ballista clusters of `executors` executors (each
/// its own process on this machine, two task slots each), with the wall time, the client's
/// peak RSS, the executors' peak RSS and whether every metric value equals the local run's.
fn ballista(project: &Path, lake: &Path, dir: &Path, executors: &[usize]) -> Result<()> {
    let exe = std::env::current_exe()?;
    let base = || earlystart(&exe, project, "error");
    let run_metrics = |engine: &str| -> Result<(Measured, String)> {
        let m = measure(
            base()
                .args(["metrics", "--force", "--engine", engine])
                .arg("--lake")
                .arg(lake),
        )?;
        Ok((m, metric_values_digest(&exe, project, lake)?))
    };
    let mut t = comfy_table::Table::new();
    t.set_header([
        "engine",
        "executors",
        "wall s",
        "client peak RSS MiB",
        "executor peak RSS MiB (max / sum)",
        "same values as local",
    ]);
    let (local, local_digest) = run_metrics("local")?;
    eprintln!(
        "local: {:.2} s, peak RSS {:.0} MiB",
        local.wall_s, local.peak_rss_mib
    );
    t.add_row(vec![
        "local (in process)".to_string(),
        "-".to_string(),
        format!("{:.2}", local.wall_s),
        format!("{:.0}", local.peak_rss_mib),
        "-".to_string(),
        "-".to_string(),
    ]);
    for &executors in executors {
        let cluster = BenchCluster::start(&exe, project, executors, &dir.join("ballista"))?;
        let (m, digest) = run_metrics(&format!("ballista://{}", cluster.address))?;
        let rss = cluster.executor_peak_rss_mib();
        drop(cluster);
        eprintln!(
            "Ballista, {executors} executor(s): {:.2} s, client {:.0} MiB, executors {rss:.0?} MiB",
            m.wall_s, m.peak_rss_mib
        );
        t.add_row(vec![
            "Ballista 55".to_string(),
            executors.to_string(),
            format!("{:.2}", m.wall_s),
            format!("{:.0}", m.peak_rss_mib),
            format!(
                "{:.0} / {:.0}",
                rss.iter().copied().fold(0.0, f64::max),
                rss.iter().sum::<f64>()
            ),
            if digest == local_digest { "yes" } else { "NO" }.to_string(),
        ]);
    }
    println!("\nMetric catalogue, in process and on Ballista (one run each)\n{t}");
    Ok(())
}

const METRIC_VALUES_SORTED: &str = "select metric_id, period_type, period_end, geography_type, \
    coalesce(geography_code, '') as g, breakdown_type, coalesce(breakdown_value, '') as b, \
    numerator, denominator, round(value, 9) as v, round(lower_95, 9) as l, \
    round(upper_95, 9) as u, comparison from metric_values order by 1, 2, 3, 4, 5, 6, 7";

/// SHA-256 of every metric value in the lake, in a fixed order (values rounded to 9 places).
fn metric_values_digest(exe: &Path, project: &Path, lake: &Path) -> Result<String> {
    let values = earlystart(exe, project, "error")
        .args(["sql", "--format", "csv", "--lake"])
        .arg(lake)
        .args(["-c", METRIC_VALUES_SORTED])
        .output()?;
    anyhow::ensure!(
        values.status.success(),
        "cannot read metric_values in {}: {}",
        lake.display(),
        String::from_utf8_lossy(&values.stderr)
    );
    Ok(crate::reference::sha256_hex(&values.stdout))
}

/// A Ballista scheduler and executors started from this binary, killed when dropped.
struct BenchCluster {
    address: String,
    /// Shuffle files of the executors, removed with the cluster (they can be tens of GB).
    work: std::path::PathBuf,
    scheduler: std::process::Child,
    executors: Vec<std::process::Child>,
}

impl BenchCluster {
    fn start(exe: &Path, project: &Path, executors: usize, work: &Path) -> Result<Self> {
        use std::io::BufRead as _;
        let mut scheduler = earlystart(exe, project, "error")
            .args(["ballista", "scheduler", "--bind", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        std::io::BufReader::new(scheduler.stdout.take().context("scheduler stdout")?)
            .read_line(&mut line)?;
        let address = line.trim().trim_start_matches("listening on ").to_string();
        let mut cluster = Self {
            address,
            work: work.to_path_buf(),
            scheduler,
            executors: Vec::new(),
        };
        for i in 0..executors {
            let port = |offset: u16| (51000 + 2 * i as u16 + offset).to_string();
            cluster.executors.push(
                earlystart(exe, project, "error")
                    .args(["ballista", "executor", "--scheduler", &cluster.address])
                    .args(["--port", &port(0), "--grpc-port", &port(1)])
                    .args(["--concurrent-tasks", "2", "--work-dir"])
                    .arg(work.join(format!("executor{i}")))
                    .spawn()?,
            );
        }
        // Executors register on start; give them a moment before the first job.
        std::thread::sleep(std::time::Duration::from_secs(3));
        Ok(cluster)
    }

    /// Peak RSS of each executor so far (VmHWM), in MiB.
    fn executor_peak_rss_mib(&self) -> Vec<f64> {
        self.executors
            .iter()
            .map(|c| {
                std::fs::read_to_string(format!("/proc/{}/status", c.id()))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("VmHWM:"))
                            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                    })
                    .map_or(0.0, |kib| kib / 1024.0)
            })
            .collect()
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        for c in self.executors.iter_mut().chain([&mut self.scheduler]) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

fn duckdb_json(cmd: &mut Command) -> Result<serde_json::Value> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    last_json_line(&String::from_utf8_lossy(&out.stdout))
}

/// The DuckDB script's result: the JSON object on its last line of output.
fn last_json_line(out: &str) -> Result<serde_json::Value> {
    serde_json::from_str(out.lines().last().unwrap_or("")).context("DuckDB script output")
}

#[cfg(test)]
mod tests {
    use super::metric_scope;

    #[test]
    fn reads_the_kind_of_metric_build_from_a_night_summary() {
        let night = "Files: 1 loaded, 23 skipped\n\
            Metrics: 34 models built in 19.7 s, 310 data tests passed, 373259 metric values; \
            incremental build from 2025-03-31 (1 file(s) added to attendances from 2025-03-31); \
            published under metrics/ in file:///tmp/lake/\n";
        assert_eq!(
            metric_scope(night),
            "incremental build from 2025-03-31 (1 file(s) added to attendances from 2025-03-31)"
        );
        assert_eq!(
            metric_scope("Metrics: up to date (no input changed since the last build).\n"),
            "up to date"
        );
        assert_eq!(metric_scope("Files: 0 loaded\n"), "not reported");
    }
}
