//! The command line: one function per subcommand.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::generate::{self, Scale};
use crate::identity::Pseudonymiser;
use crate::lake::Lake;
use crate::pipeline::{self, RunOptions};

/// earlystart: council early-years extracts in, a pseudonymised Delta Lake out.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// Project root holding pipelines/, sql/, reports/ and reference/.
    #[arg(long, global = true, default_value = ".", env = "EARLYSTART_PROJECT")]
    pub project: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a small synthetic county, run the nightly pipeline into a local lake and say what happened.
    Demo {
        /// Where the demo writes its extracts and lake.
        #[arg(long, default_value = "earlystart-demo")]
        dir: PathBuf,
    },
    /// Run a pipeline once (safe to call from cron).
    Run {
        /// Pipeline name (file stem under pipelines/).
        pipeline: String,
        /// Folder of extracts (overrides the pipeline's extracts_dir).
        #[arg(long)]
        extracts: Option<PathBuf>,
        /// Lake location: a folder or an object-store URL (s3://bucket/prefix).
        #[arg(long, default_value = "./lake", env = "EARLYSTART_LAKE")]
        lake: String,
        /// Run date used as the as-at date of run_date sources (YYYY-MM-DD; default today).
        #[arg(long)]
        as_at: Option<chrono::NaiveDate>,
    },
    /// Check every pipeline file and report all errors as file:line:col.
    Validate,
    /// Write synthetic extracts in the canonical layouts.
    Generate {
        /// Size of the synthetic area.
        #[arg(long, value_enum, default_value = "tiny")]
        scale: Scale,
        /// Random seed (same seed, same files).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Inject known faults and write ground_truth.csv.
        #[arg(long)]
        dirty: bool,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure ingest throughput on generated data, beside DuckDB when it is installed.
    Bench {
        /// Size of the synthetic area.
        #[arg(long, value_enum, default_value = "county")]
        scale: Scale,
        /// Working folder (extracts and lake).
        #[arg(long, default_value = "target/bench")]
        dir: PathBuf,
    },
}

/// Sets up `tracing` (RUST_LOG filters; default info).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        "info,deltalake=warn,deltalake_core=warn,buoyant_kernel=warn,datafusion=warn".into()
    });
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match cli.command {
            Command::Demo { dir } => demo(&cli.project, &dir).await,
            Command::Run {
                pipeline,
                extracts,
                lake,
                as_at,
            } => {
                let key = Pseudonymiser::from_env()?;
                run_pipeline(&cli.project, &pipeline, extracts, &lake, as_at, key, "cli").await
            }
            Command::Validate => validate(&cli.project),
            Command::Generate {
                scale,
                seed,
                dirty,
                out,
            } => {
                let counts = generate::generate(scale, seed, dirty, &out)?;
                for (file, rows) in counts {
                    println!("{:>10} rows  {}", rows, out.join(file).display());
                }
                Ok(0)
            }
            Command::Bench { scale, dir } => crate::bench::run(&cli.project, scale, &dir).await,
        }
    })
}

/// Runs one pipeline and prints its summary; returns the exit code.
pub async fn run_pipeline(
    project: &Path,
    name: &str,
    extracts: Option<PathBuf>,
    lake: &str,
    as_at: Option<chrono::NaiveDate>,
    key: Pseudonymiser,
    trigger: &str,
) -> Result<i32> {
    let pipeline = crate::config::load(project, name).map_err(|errs| {
        anyhow::anyhow!(
            "pipeline {name} is invalid:\n{}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let opts = RunOptions {
        project: project.to_path_buf(),
        extracts,
        lake: Lake::open(lake)?,
        as_at,
        pseudonymiser: key,
        trigger: trigger.into(),
        progress: std::io::stderr().is_terminal(),
    };
    let summary = pipeline::run(&pipeline, &opts).await?;
    println!("{}", summary.render());
    Ok(summary.exit_code())
}

fn validate(project: &Path) -> Result<i32> {
    let names = crate::config::list(project)
        .with_context(|| format!("cannot list {}/pipelines", project.display()))?;
    let mut failed = 0;
    for name in &names {
        match crate::config::load(project, name) {
            Ok(p) => println!(
                "{name}: ok ({} sources, schedule {:?} {})",
                p.sources.len(),
                p.schedule.as_deref().unwrap_or("none"),
                p.timezone
            ),
            Err(errs) => {
                failed += 1;
                for e in errs {
                    println!("{e}");
                }
            }
        }
    }
    Ok(if failed > 0 { 2 } else { 0 })
}

async fn demo(project: &Path, dir: &Path) -> Result<i32> {
    let extracts = dir.join("extracts");
    let lake = dir.join("lake");
    println!(
        "Generating a small synthetic county in {} …",
        extracts.display()
    );
    generate::generate(Scale::Tiny, 42, false, &extracts)?;
    // The demo's data is synthetic, so it uses the published demo key (never for real data).
    let code = run_pipeline(
        project,
        "nightly",
        Some(extracts.clone()),
        &lake.to_string_lossy(),
        Some(generate::AS_AT),
        Pseudonymiser::demo(),
        "demo",
    )
    .await?;
    println!(
        "Extracts: {}\nLake:     {} (Delta tables under curated/ and ops/; read them with any Delta reader)",
        extracts.display(),
        lake.display()
    );
    Ok(code)
}
