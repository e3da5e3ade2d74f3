//! The command line: one function per subcommand.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::generate::{self, Scale};
use crate::identity::Pseudonymiser;
use crate::lake::Lake;
use crate::lake::lease::LeaseError;
use crate::metrics::run::MetricOptions;
use crate::metrics::session::{LakeSession, Limits};
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
enum BallistaRole {
    /// The scheduler: plans stages and hands tasks to executors.
    Scheduler {
        /// Address to listen on (port 0 picks a free port and prints it).
        #[arg(long, default_value = "0.0.0.0:50050")]
        bind: String,
    },
    /// An executor: runs tasks, serves shuffle data to the others.
    Executor {
        /// The scheduler's HOST:PORT.
        #[arg(long)]
        scheduler: String,
        /// Host to bind and advertise (reachable by the scheduler and other executors).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Arrow Flight port (shuffle data and results).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// gRPC port (tasks).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once (default: the machine's cores).
        #[arg(long)]
        concurrent_tasks: Option<usize>,
        /// Folder for shuffle files (default: a temporary folder).
        #[arg(long)]
        work_dir: Option<String>,
    },
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
        /// Ingest only: skip the pipeline's SQL models (and so its reports).
        #[arg(long)]
        no_metrics: bool,
        /// Skip the pipeline's reports (render them later with `earlystart report`).
        #[arg(long)]
        no_reports: bool,
        /// Where the SQL runs: `local`, or `ballista://HOST:PORT` (a Ballista scheduler).
        #[arg(long, default_value = "local", env = "EARLYSTART_ENGINE")]
        engine: crate::ballista::Engine,
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
    /// Build the metric catalogue (the sql/ project) into the lake's metrics/ tables.
    Metrics {
        /// Lake location: a folder or an object-store URL.
        #[arg(long, default_value = "./lake", env = "EARLYSTART_LAKE")]
        lake: String,
        /// Build only these models and what they read (default: all).
        #[arg(long = "select")]
        select: Vec<String>,
        /// Recompute even when no input changed.
        #[arg(long)]
        force: bool,
        /// Memory pool of the queries (an accounting ceiling: see Limits::metrics).
        #[arg(long, default_value = "12GiB")]
        memory_limit: String,
        /// Where the SQL runs: `local`, or `ballista://HOST:PORT` (a Ballista scheduler).
        #[arg(long, default_value = "local", env = "EARLYSTART_ENGINE")]
        engine: crate::ballista::Engine,
        /// Models built at the same time in an incremental build (a full build runs one at a time).
        #[arg(long, default_value_t = MetricOptions::default().jobs)]
        jobs: usize,
    },
    /// Run a Ballista scheduler or executor (the cluster `--engine ballista://…` runs on).
    Ballista {
        #[command(subcommand)]
        role: BallistaRole,
    },
    /// Serve the lake read-only over the Postgres wire protocol (psql, DBeaver, Power BI, R, Python).
    Server {
        /// Lake location: a folder or an object-store URL.
        #[arg(long, default_value = "./lake", env = "EARLYSTART_LAKE")]
        lake: String,
        /// Address to listen on (port 0 picks a free port and prints it).
        #[arg(long, default_value = "127.0.0.1:5433")]
        listen: String,
        /// File of hashed passwords (`earlystart hash-password NAME`); without it the user is
        /// `analyst` with the password in EARLYSTART_SERVER_PASSWORD.
        #[arg(long)]
        passwords: Option<PathBuf>,
        /// TLS certificate chain (PEM); with --tls-key, connections may use TLS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM, PKCS#8 or RSA).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Memory one query may hold before it spills, then fails.
        #[arg(long, default_value = "512MiB")]
        memory_limit: String,
        /// Seconds before a query is cancelled (a client's statement_timeout may be shorter).
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Queries that run at once; others wait for a slot.
        #[arg(long, default_value_t = 4)]
        max_queries: usize,
        /// Connections held at once.
        #[arg(long, default_value_t = 64)]
        max_connections: usize,
        /// Append an audit line (JSON) per statement to this file.
        #[arg(long)]
        audit_log: Option<PathBuf>,
        /// Seconds between re-reads of the lake (0: never), so new nightly figures appear.
        #[arg(long, default_value_t = 600)]
        refresh: u64,
    },
    /// Print a password-file line for the server: reads the password from standard input.
    HashPassword {
        /// The user name.
        name: String,
    },
    /// Query the lake with read-only SQL: an interactive prompt, or -c / -f once.
    Sql {
        /// Lake location: a folder or an object-store URL.
        #[arg(long, default_value = "./lake", env = "EARLYSTART_LAKE")]
        lake: String,
        /// Run these statements and exit.
        #[arg(short = 'c', long = "command", conflicts_with = "file")]
        command: Option<String>,
        /// Run the statements of this file and exit.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: crate::sqlshell::Format,
        /// Write results to this file instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Memory a query may hold before spilling to disk.
        #[arg(long, default_value = "1536MiB")]
        memory_limit: String,
        /// Seconds before a query is cancelled.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Where the SQL runs: `local`, or `ballista://HOST:PORT` (a Ballista scheduler).
        #[arg(long, default_value = "local", env = "EARLYSTART_ENGINE")]
        engine: crate::ballista::Engine,
    },
    /// Render reports from the lake: HTML, and PDF when Chromium is installed.
    Report {
        /// Report name (a folder under reports/); omit for every report.
        name: Option<String>,
        /// Only this centre (its centre id).
        #[arg(long)]
        centre: Option<String>,
        /// Financial year, e.g. 2024-25 (default: the latest in the lake).
        #[arg(long)]
        period: Option<String>,
        /// Lake location: a folder or an object-store URL.
        #[arg(long, default_value = "./lake", env = "EARLYSTART_LAKE")]
        lake: String,
        /// Also e-mail the set to reports.toml's [delivery] email.
        #[arg(long)]
        email: bool,
        /// HTML only, even when reports.toml asks for PDF.
        #[arg(long)]
        no_pdf: bool,
    },
    /// Write docs/metrics.md from sql/catalogue.toml and the _models.toml sidecars.
    Docs {
        /// Only check that docs/metrics.md is up to date (exit 1 if not).
        #[arg(long)]
        check: bool,
    },
    /// Run every scheduled pipeline on its cron schedule until SIGTERM or Ctrl-C.
    Serve {
        /// Lake location: a folder or an object-store URL.
        #[arg(long, default_value = "./lake", env = "EARLYSTART_LAKE")]
        lake: String,
        /// Folder of extracts (overrides each pipeline's extracts_dir).
        #[arg(long)]
        extracts: Option<PathBuf>,
    },
    /// List recent runs from the lake's run history.
    Runs {
        /// Lake location: a folder or an object-store URL.
        #[arg(long, default_value = "./lake", env = "EARLYSTART_LAKE")]
        lake: String,
        /// Only this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show each pipeline's last run, whether one is running, and when it is next due.
    Status {
        /// Lake location: a folder or an object-store URL.
        #[arg(long, default_value = "./lake", env = "EARLYSTART_LAKE")]
        lake: String,
    },
    /// Measure ingest and the metric catalogue on generated data, beside DuckDB when installed.
    Bench {
        /// Size of the synthetic area.
        #[arg(long, value_enum, default_value = "county")]
        scale: Scale,
        /// Working folder (extracts and lake).
        #[arg(long, default_value = "target/bench")]
        dir: PathBuf,
        /// Stages to run (the metric and report stages need the ingest stage's lake):
        /// ingest, social, linkage, metrics, ballista, reports, incremental (a full night
        /// beside a night that adds one day of attendances), scaling (the night stage by
        /// stage and end to end, in process and on Ballista, kept per scale in --dir with a
        /// national projection).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "ingest,social,linkage,metrics,reports"
        )]
        stages: Vec<String>,
        /// Ballista cluster sizes of the ballista and scaling stages (executor processes).
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        executors: Vec<usize>,
    },
    /// Parse and validate files of a multi-table format (CIN census, SSDA903, Annex A) without
    /// a lake, printing one JSON line of counts per file (used by `bench` to time the readers).
    #[command(hide = true)]
    Parse {
        /// Canonical kind: cin_census, ssda903 or annex_a.
        #[arg(long)]
        kind: String,
        /// Files to read.
        files: Vec<PathBuf>,
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
    // Planning and (de)serialising a deep metric query recurses once per plan node: Ballista's
    // scheduler overflowed tokio's default 2 MiB worker stack on the catalogue's staging
    // models. 16 MiB per worker costs nothing until it is touched.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 << 20)
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Demo { dir } => demo(&cli.project, &dir).await,
            Command::Run {
                pipeline,
                extracts,
                lake,
                as_at,
                no_metrics,
                no_reports,
                engine,
            } => {
                let key = Pseudonymiser::from_env()?;
                let run = PipelineRun {
                    extracts,
                    as_at,
                    trigger: "cli",
                    metrics: !no_metrics,
                    reports: !no_reports,
                    engine,
                };
                run_pipeline(&cli.project, &pipeline, &lake, key, run).await
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
            Command::Bench {
                scale,
                dir,
                stages,
                executors,
            } => crate::bench::run(&cli.project, scale, &dir, &stages, &executors).await,
            Command::Parse { kind, files } => parse(&cli.project, &kind, &files),
            Command::Metrics {
                lake,
                select,
                force,
                memory_limit,
                engine,
                jobs,
            } => {
                let opts = MetricOptions {
                    select,
                    force,
                    engine,
                    jobs,
                    limits: Limits {
                        memory_bytes: crate::sqlshell::parse_size(&memory_limit)?,
                        ..Limits::metrics()
                    },
                    ..MetricOptions::default()
                };
                run_metrics(&cli.project, &Lake::open(&lake)?, &opts, true)
                    .await
                    .map(|_| 0)
            }
            Command::Sql {
                lake,
                command,
                file,
                format,
                output,
                memory_limit,
                timeout,
                engine,
            } => {
                let limits = Limits {
                    memory_bytes: crate::sqlshell::parse_size(&memory_limit)?,
                    timeout: std::time::Duration::from_secs(timeout),
                };
                let script = SqlScript {
                    command,
                    file,
                    format,
                    output,
                };
                sql(&cli.project, &lake, script, limits, &engine).await
            }
            Command::Docs { check } => docs(&cli.project, check),
            Command::Ballista { role } => {
                let confidence = crate::metrics::params::MetricParams::load(
                    &cli.project.join("sql/metrics.toml"),
                )?
                .stats
                .confidence;
                match role {
                    BallistaRole::Scheduler { bind } => {
                        crate::ballista::scheduler(&bind, confidence).await?
                    }
                    BallistaRole::Executor {
                        scheduler,
                        host,
                        port,
                        grpc_port,
                        concurrent_tasks,
                        work_dir,
                    } => {
                        let opts = crate::ballista::ExecutorOptions {
                            scheduler,
                            host,
                            port,
                            grpc_port,
                            concurrent_tasks: concurrent_tasks.unwrap_or_else(|| {
                                std::thread::available_parallelism().map_or(2, |n| n.get())
                            }),
                            work_dir,
                        };
                        crate::ballista::executor(opts, confidence).await?
                    }
                }
                Ok(0)
            }
            Command::Server {
                lake,
                listen,
                passwords,
                tls_cert,
                tls_key,
                memory_limit,
                timeout,
                max_queries,
                max_connections,
                audit_log,
                refresh,
            } => {
                let opts = crate::server::ServerOptions {
                    listen,
                    limits: Limits {
                        memory_bytes: crate::sqlshell::parse_size(&memory_limit)?,
                        timeout: std::time::Duration::from_secs(timeout),
                    },
                    max_queries,
                    max_connections,
                    password_file: passwords,
                    tls: tls_cert.zip(tls_key),
                    audit_log,
                    refresh: std::time::Duration::from_secs(refresh),
                };
                crate::server::serve(&cli.project, Lake::open(&lake)?, opts, shutdown_signal())
                    .await?;
                Ok(0)
            }
            Command::HashPassword { name } => {
                let mut password = String::new();
                std::io::stdin()
                    .read_line(&mut password)
                    .context("cannot read the password from standard input")?;
                let password = password.trim_end_matches(['\n', '\r']);
                anyhow::ensure!(!password.is_empty(), "the password is empty");
                println!("{}", crate::server::auth::hash_line(&name, password));
                Ok(0)
            }
            Command::Report {
                name,
                centre,
                period,
                lake,
                email,
                no_pdf,
            } => {
                let opts = crate::report::render::RenderOptions {
                    reports: name.into_iter().collect(),
                    centre,
                    period,
                    render_id: None,
                    email,
                    pdf: no_pdf.then_some(false),
                };
                let summary =
                    crate::report::render::render(&cli.project, &Lake::open(&lake)?, &opts).await?;
                println!("{}", summary.render());
                Ok(0)
            }
            Command::Serve { lake, extracts } => serve(&cli.project, lake, extracts).await,
            Command::Runs {
                lake,
                pipeline,
                limit,
            } => {
                let text =
                    crate::history::runs(&Lake::open(&lake)?, pipeline.as_deref(), limit).await?;
                println!("{text}");
                Ok(0)
            }
            Command::Status { lake } => {
                let text =
                    crate::history::status(&cli.project, &Lake::open(&lake)?, chrono::Utc::now())
                        .await?;
                println!("{text}");
                Ok(0)
            }
        }
    })
}

/// How a pipeline is run once.
pub struct PipelineRun<'a> {
    /// Extracts folder (overrides the pipeline's).
    pub extracts: Option<PathBuf>,
    /// As-at date of run_date sources.
    pub as_at: Option<chrono::NaiveDate>,
    /// What started the run (recorded in ops/runs).
    pub trigger: &'a str,
    /// Whether to build the pipeline's SQL models after the ingest.
    pub metrics: bool,
    /// Whether to render the pipeline's reports after the models.
    pub reports: bool,
    /// Where the pipeline's SQL runs.
    pub engine: crate::ballista::Engine,
}

/// Runs one pipeline and prints its summary; returns the exit code.
pub async fn run_pipeline(
    project: &Path,
    name: &str,
    lake: &str,
    key: Pseudonymiser,
    run: PipelineRun<'_>,
) -> Result<i32> {
    let pipeline = crate::config::load_or_report(project, name)?;
    let lake = Lake::open(lake)?;
    // One run of a pipeline at a time, across processes and machines sharing the lake.
    let lease = match lake
        .acquire_lease(
            name,
            &format!("earlystart run {name} ({})", run.trigger),
            lease_ttl(),
        )
        .await
    {
        Ok(lease) => lease,
        Err(e @ LeaseError::Held { .. }) => {
            eprintln!("{e}");
            return Ok(EXIT_LOCKED);
        }
        Err(LeaseError::Storage(e)) => return Err(e.context("cannot take the pipeline's lease")),
    };
    let opts = RunOptions {
        project: project.to_path_buf(),
        extracts: run.extracts,
        lake,
        as_at: run.as_at,
        pseudonymiser: key,
        trigger: run.trigger.into(),
        progress: std::io::stderr().is_terminal(),
    };
    let started = chrono::Utc::now();
    crate::memory::return_freed_buffers();
    let ingested = pipeline::run(&pipeline, &opts).await;
    crate::memory::reuse_freed_buffers();
    let mut summary = match ingested {
        Ok(summary) => summary,
        Err(e) => {
            // Failed before the end: record that it failed and why (best effort: the lake
            // itself may be what failed), then give the lease back.
            let mut failed = pipeline::RunSummary::new(
                &pipeline::new_run_id(started),
                name,
                run.trigger,
                started,
            );
            failed.fail(&e);
            if let Err(record) = pipeline::record_run(&opts.lake, &failed).await {
                tracing::warn!(error = %record, "Could not record the failed run.");
            }
            crate::notify::after_run(
                &pipeline,
                "failed",
                &format!("earlystart: pipeline {name} FAILED"),
                &format!(
                    "Run {} of pipeline {name} failed; nothing new was published and the \
                     previous tables are intact.\n\nError: {e:#}\n",
                    failed.run_id
                ),
            )
            .await;
            lease.release().await?;
            return Err(e);
        }
    };
    println!("{}", summary.render());
    let mut code = summary.exit_code();
    if run.metrics && !pipeline.sql.is_empty() {
        let metrics = MetricOptions {
            select: pipeline.sql.clone(),
            engine: run.engine.clone(),
            ..MetricOptions::default()
        };
        let step = std::time::Instant::now();
        // The ingest is committed either way; failed metrics leave last night's figures.
        match run_metrics(project, &opts.lake, &metrics, false).await {
            Ok(detail) => summary.step("metrics", "ok", step, detail),
            Err(e) => {
                eprintln!(
                    "error: the metric run failed; the previous metric tables are unchanged: {e:#}"
                );
                summary.step("metrics", "failed", step, format!("{e:#}"));
                summary.error = Some(format!("metrics: {e:#}"));
                code = 2;
            }
        }
        if code != 2 && run.reports && !pipeline.reports.is_empty() {
            let step = std::time::Instant::now();
            let render = crate::report::render::RenderOptions {
                reports: pipeline.reports.clone(),
                render_id: Some(summary.run_id.clone()),
                email: true,
                ..Default::default()
            };
            // Reports read what the metrics published; a failed render leaves those intact.
            match crate::report::render::render(project, &opts.lake, &render).await {
                Ok(rendered) => {
                    println!("{}", rendered.render());
                    let detail = format!(
                        "{} documents in reports/{}/",
                        rendered.documents.len(),
                        rendered.render_id
                    );
                    summary.step("reports", "ok", step, detail);
                }
                Err(e) => {
                    eprintln!("error: rendering the reports failed: {e:#}");
                    summary.step("reports", "failed", step, format!("{e:#}"));
                    summary.error = Some(format!("reports: {e:#}"));
                    code = 2;
                }
            }
        }
        summary.finish();
    }
    pipeline::record_run(&opts.lake, &summary).await?;
    lease.release().await?;
    crate::notify::after_run(
        &pipeline,
        summary.status(),
        &format!("earlystart: pipeline {name} {}", summary.status()),
        &summary.render(),
    )
    .await;
    Ok(code)
}

/// Runs pipelines when they are due, each through [`run_pipeline`] (so with its lease).
struct ScheduledRunner {
    project: PathBuf,
    lake: String,
    extracts: Option<PathBuf>,
    key: Pseudonymiser,
}

impl crate::schedule::Runner for ScheduledRunner {
    fn run<'a>(&'a self, pipeline: &'a str) -> crate::schedule::BoxFuture<'a, Result<i32>> {
        Box::pin(run_pipeline(
            &self.project,
            pipeline,
            &self.lake,
            self.key.clone(),
            PipelineRun {
                extracts: self.extracts.clone(),
                as_at: None,
                trigger: "schedule",
                metrics: true,
                reports: true,
                engine: crate::ballista::Engine::Local,
            },
        ))
    }
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn serve(project: &Path, lake: String, extracts: Option<PathBuf>) -> Result<i32> {
    let key = Pseudonymiser::from_env()?;
    let schedules = crate::schedule::load(project)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("Shutdown requested: finishing the current run, if any, then stopping.");
        let _ = tx.send(true);
    });
    let runner = ScheduledRunner {
        project: project.to_path_buf(),
        lake,
        extracts,
        key,
    };
    crate::schedule::serve(&schedules, &crate::schedule::SystemClock, &runner, rx, None).await?;
    Ok(0)
}

/// Exit code of a run that found another run of the same pipeline in progress (EX_TEMPFAIL:
/// nothing was done; cron or the scheduler simply tries again at the next slot).
pub const EXIT_LOCKED: i32 = 75;

/// How long a silent lease holder is presumed alive (`EARLYSTART_LEASE_TTL_SECS`, default
/// 600 s). Heartbeats renew it every third of that while a run goes on.
fn lease_ttl() -> std::time::Duration {
    let secs = std::env::var("EARLYSTART_LEASE_TTL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    std::time::Duration::from_secs(secs)
}

/// Builds the metric catalogue and prints what was built: a table of models when
/// `detailed`, one line otherwise (inside a pipeline run). Returns that line.
pub async fn run_metrics(
    project: &Path,
    lake: &Lake,
    opts: &MetricOptions,
    detailed: bool,
) -> Result<String> {
    let run = crate::metrics::run::run(lake, project, opts).await?;
    if run.up_to_date {
        let line = "up to date (no input changed since the last build)".to_string();
        println!("Metrics: {line}.");
        return Ok(line);
    }
    if detailed {
        let mut t = comfy_table::Table::new();
        t.set_header(["model", "rows", "seconds"]);
        for (name, rows, secs) in &run.models {
            t.add_row([name.clone(), rows.to_string(), format!("{secs:.2}")]);
        }
        for name in &run.kept {
            t.add_row([name.clone(), "-".into(), "kept".into()]);
        }
        println!("{t}");
    }
    let values = run
        .models
        .iter()
        .find(|m| m.0 == "metric_values")
        .map_or(0, |m| m.1);
    let secs: f64 = run.models.iter().map(|m| m.2).sum();
    let kept = match run.kept.len() {
        0 => String::new(),
        n => format!(" ({n} kept: inputs unchanged)"),
    };
    let line = format!(
        "{} models built in {secs:.1} s{kept}, {} data tests passed, {values} metric values; {}",
        run.models.len(),
        run.tests_run,
        run.scope,
    );
    println!(
        "Metrics: {line}; published under metrics/ in {}",
        lake.root()
    );
    Ok(line)
}

/// What `earlystart sql` runs and where it writes.
struct SqlScript {
    command: Option<String>,
    file: Option<PathBuf>,
    format: crate::sqlshell::Format,
    output: Option<PathBuf>,
}

async fn sql(
    project: &Path,
    lake: &str,
    script: SqlScript,
    limits: Limits,
    engine: &crate::ballista::Engine,
) -> Result<i32> {
    let SqlScript {
        command,
        file,
        format,
        output,
    } = script;
    let lake = Lake::open(lake)?;
    let params = crate::metrics::params::MetricParams::load(&project.join("sql/metrics.toml"))?;
    let session = LakeSession::open_on(&lake, limits, params.stats.confidence, engine).await?;
    if let Some(f) = &file {
        empty_last_build_for(project, f, &session).await?;
    }
    let script = match (command, &file) {
        (Some(c), _) => Some((c, "-c".to_string())),
        (None, Some(f)) => Some((
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
            f.display().to_string(),
        )),
        (None, None) => None,
    };
    match script {
        Some((text, _)) if text.trim_start().starts_with('\\') => {
            let docs = crate::sqlshell::TableDocs::load(project, &session);
            crate::sqlshell::meta_command(&session, &docs, text.trim(), &mut std::io::stdout())
                .await?;
        }
        Some((text, origin)) => {
            crate::sqlshell::run_script(&session, &text, &origin, format, output.as_deref())
                .await?;
        }
        None => {
            let docs = crate::sqlshell::TableDocs::load(project, &session);
            let history =
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".earlystart_sql_history"));
            crate::sqlshell::repl(&session, &docs, history).await?;
        }
    }
    session.close().await?;
    Ok(0)
}

/// A model file of the project run by hand (`-f sql/…/model.sql`) reads its `last_build`
/// with no rows, as a full build does (`recompute_from()` is the full build's date here
/// too), so it gives the model's whole table.
async fn empty_last_build_for(project: &Path, file: &Path, session: &LakeSession) -> Result<()> {
    let sql_dir = project.join("sql");
    if !sql_dir.is_dir() {
        return Ok(());
    }
    let Ok(file) = file.canonicalize() else {
        return Ok(());
    };
    let models = crate::metrics::project::Project::load(&sql_dir, &session.ctx)?;
    let model = models
        .models
        .iter()
        .find(|m| m.path.canonicalize().is_ok_and(|p| p == file));
    if let Some(schema) = model
        .map(|m| m.doc.last_build_schema())
        .transpose()?
        .flatten()
    {
        session
            .put_table(crate::metrics::project::LAST_BUILD, schema, Vec::new())
            .await?;
    }
    Ok(())
}

fn docs(project: &Path, check: bool) -> Result<i32> {
    let text = crate::metrics::docs::render(project)?;
    let path = project.join("docs/metrics.md");
    if check {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != text {
            eprintln!("{} is out of date: run `earlystart docs`", path.display());
            return Ok(1);
        }
        println!("{} is up to date", path.display());
        return Ok(0);
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(0)
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
        &lake.to_string_lossy(),
        Pseudonymiser::demo(),
        PipelineRun {
            extracts: Some(extracts.clone()),
            as_at: Some(generate::AS_AT),
            trigger: "demo",
            metrics: true,
            reports: true,
            engine: crate::ballista::Engine::Local,
        },
    )
    .await?;
    println!(
        "Extracts: {}\nLake:     {} (Delta tables under curated/, ops/ and metrics/; read them with any Delta reader)\n\
         Reports:  {}/reports/ (open index.html of the newest folder; `earlystart report` renders again)\n\
         Query:    earlystart sql --lake {} -c \"select metric_id, period_end, geography_code, value \
         from metric_values where period_type = 'fy' and geography_type = 'deployment' and breakdown_type = 'all'\"",
        extracts.display(),
        lake.display(),
        lake.display(),
        lake.display()
    );
    Ok(code)
}

/// `earlystart parse`: the readers of the multi-table formats on their own (no lake), for
/// timing. Pseudonymises with the demo key: the output holds counts only.
fn parse(project: &Path, kind: &str, files: &[PathBuf]) -> Result<i32> {
    let kind = crate::sources::ExtractKind::from_name(kind)
        .filter(|k| k.multi_table())
        .with_context(|| format!("{kind:?} is not cin_census, ssda903 or annex_a"))?;
    let refs = crate::reference::load_dir(&project.join("reference"))?;
    let mut ctx = crate::sources::Context::new(Pseudonymiser::demo());
    ctx.codes = crate::reference::code_lists(&refs)?;
    for path in files {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let meta = crate::sources::FileMeta {
            source: kind.name().into(),
            path: path.display().to_string(),
            sha256: String::new(),
            as_at: chrono::Utc::now().date_naive(),
        };
        let out =
            crate::sources::ingest_tables(kind, &bytes, &meta, &Default::default(), &ctx, 1.0)
                .map_err(anyhow::Error::msg)?;
        let tables: serde_json::Map<String, serde_json::Value> = out
            .tables
            .iter()
            .map(|(n, b)| (n.to_string(), b.num_rows().into()))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "file": path.display().to_string(),
                "bytes": bytes.len(),
                "rows_read": out.ingested.rows_read,
                "rows_loaded": out.ingested.rows_loaded,
                "rows_quarantined": out.ingested.rows_quarantined,
                "rejected": out.ingested.rejected.as_ref().map(|r| r.rule.id()),
                "tables": tables,
            })
        );
    }
    Ok(0)
}
