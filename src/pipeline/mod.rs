//! Runs a pipeline once: extracts → validation → lake → linkage.
//!
//! ```text
//!  lanes: reference files, then { centre chain ‖ health chain } side by side
//!  in a lane, for each source (dependency order), for each matching file (sorted):
//!    sha256 (streamed) ─► already committed? ── yes ─► I001, skip
//!                                  │ no
//!                                  ▼
//!    parse_file (blocking thread; two halves on two threads for large CSVs)
//!        └─ 128k-row batches ─► SourceWriter (Parquet files, not yet visible)
//!    commit quarantine, warnings                          (app txn = source+sha)
//!    commit the files to the curated table, or rejected_files (same txn: the marker)
//!  then person_link (when an input table has a new version), file_loads and the runs row.
//! ```
//!
//! Each commit is atomic. The marker commit comes last, so a crash anywhere before it is
//! completed by the rerun: the file is read again, and each issue commit already in its table
//! (found by its transaction id) is not written twice. Proven by `tests/it/crash.rs`, which
//! fails the store at every write of a run in turn.

mod link;
pub mod records;
pub mod summary;
mod xlsx;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Float64Type};
use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use tracing::{info, warn};

use crate::config::{AsAt, LoadMode, Pipeline, Source};
use crate::identity::Pseudonymiser;
use crate::lake::{CURATED, Lake, OPS, WriteMode};
use crate::reference::{self, ReferenceTable, sha256_hex};
use crate::sources::context::{CentreDates, PostcodeEntry};
use crate::sources::{self, Context, ExtractKind, FileMeta, TableBuilder};
pub use summary::{FileReport, FileStatus, RunSummary};

/// What a run needs besides the pipeline declaration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Project root (holds `reference/`).
    pub project: PathBuf,
    /// Extracts folder; overrides the pipeline's `extracts_dir`.
    pub extracts: Option<PathBuf>,
    /// The lake.
    pub lake: Lake,
    /// Run date (default today): the as-at date of `run_date` sources.
    pub as_at: Option<NaiveDate>,
    /// Pseudonymiser (key already checked).
    pub pseudonymiser: Pseudonymiser,
    /// What started the run (`cli`, `demo`, `schedule`).
    pub trigger: String,
    /// Show progress bars.
    pub progress: bool,
}

fn dt32(v: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(v + 719_163).expect("Date32 in range")
}

/// A text column as `Utf8`, whatever string layout the Delta scan returned (it may be
/// `Utf8View`).
fn col_str(b: &RecordBatch, name: &str) -> arrow::array::StringArray {
    let col = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"));
    let utf8 = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8)
        .expect("text columns cast to Utf8");
    utf8.as_string::<i32>().clone()
}

fn opt_str(a: &arrow::array::StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_string())
}

fn opt_date(b: &RecordBatch, name: &str, i: usize) -> Option<NaiveDate> {
    let a = b
        .column_by_name(name)
        .expect("date column")
        .as_primitive::<Date32Type>();
    a.is_valid(i).then(|| dt32(a.value(i)))
}

/// Loads from the lake what `kind` needs to check references, once per run.
struct ContextLoader<'a> {
    lake: &'a Lake,
    loaded: HashSet<&'static str>,
}

impl ContextLoader<'_> {
    async fn table(&self, name: &str, columns: &[&str]) -> Result<Vec<RecordBatch>> {
        Ok(self
            .lake
            .read_columns(CURATED, name, columns)
            .await?
            .unwrap_or_default())
    }

    async fn ensure(&mut self, ctx: &mut Context, kind: ExtractKind) -> Result<()> {
        let needs: &[&'static str] = match kind {
            ExtractKind::Centres | ExtractKind::Chis => &["geography"],
            ExtractKind::ReachAreas => &["geography", "centres"],
            ExtractKind::CentreGroups | ExtractKind::CentreCosts | ExtractKind::Contracts => {
                &["centres"]
            }
            ExtractKind::Registrations => &["geography", "centres"],
            ExtractKind::Eyfsp
            | ExtractKind::ScPersonIdentifiers
            | ExtractKind::EarlyHelpEpisodes => &["geography"],
            ExtractKind::Attendances => &["centres", "activities", "registrations"],
            ExtractKind::HvContacts | ExtractKind::Asq3 => &["chis"],
            _ => &[],
        };
        for need in needs {
            if self.loaded.insert(need) {
                self.load(ctx, need).await?;
            }
        }
        Ok(())
    }

    /// Forgets a cached table after it was committed again in this run.
    fn invalidate(&mut self, kind: ExtractKind) {
        let key = match kind {
            ExtractKind::Postcodes | ExtractKind::LsoaLookup | ExtractKind::Iod => "geography",
            ExtractKind::Centres => "centres",
            ExtractKind::Activities => "activities",
            ExtractKind::Registrations => "registrations",
            ExtractKind::Chis => "chis",
            _ => return,
        };
        self.loaded.remove(key);
    }

    async fn load(&self, ctx: &mut Context, what: &str) -> Result<()> {
        match what {
            "geography" => {
                let g = &mut ctx.geography;
                *g = Default::default();
                for b in self
                    .table(
                        "postcodes",
                        &["pcds", "lsoa11", "lsoa21", "lat", "lon", "terminated"],
                    )
                    .await?
                {
                    let (pc, l11, l21) = (
                        col_str(&b, "pcds"),
                        col_str(&b, "lsoa11"),
                        col_str(&b, "lsoa21"),
                    );
                    let lat = b
                        .column_by_name("lat")
                        .expect("lat")
                        .as_primitive::<Float64Type>();
                    let lon = b
                        .column_by_name("lon")
                        .expect("lon")
                        .as_primitive::<Float64Type>();
                    for i in 0..b.num_rows() {
                        g.postcodes.insert(
                            pc.value(i).to_string(),
                            PostcodeEntry {
                                lsoa11: opt_str(&l11, i),
                                lsoa21: opt_str(&l21, i),
                                lat: lat.is_valid(i).then(|| lat.value(i)),
                                lon: lon.is_valid(i).then(|| lon.value(i)),
                                terminated: opt_date(&b, "terminated", i),
                            },
                        );
                    }
                }
                for b in self.table("lsoa_lookup", &["lsoa11cd", "lsoa21cd"]).await? {
                    let (a, c) = (col_str(&b, "lsoa11cd"), col_str(&b, "lsoa21cd"));
                    for i in 0..b.num_rows() {
                        g.lsoa11_to_21
                            .entry(a.value(i).to_string())
                            .or_default()
                            .push(c.value(i).to_string());
                        g.lsoa21_to_11
                            .entry(c.value(i).to_string())
                            .or_default()
                            .push(a.value(i).to_string());
                    }
                }
                for b in self.table("iod", &["lsoa_vintage", "lsoa_code"]).await? {
                    let v = b
                        .column_by_name("lsoa_vintage")
                        .expect("vintage")
                        .as_primitive::<arrow::datatypes::Int64Type>();
                    let code = col_str(&b, "lsoa_code");
                    for i in 0..b.num_rows() {
                        g.lsoas
                            .entry(v.value(i) as u16)
                            .or_default()
                            .insert(code.value(i).to_string());
                    }
                }
            }
            "centres" => {
                ctx.centres.clear();
                for b in self
                    .table("centres", &["centre_id", "open_date", "close_date"])
                    .await?
                {
                    let id = col_str(&b, "centre_id");
                    for i in 0..b.num_rows() {
                        let dates = CentreDates {
                            open: opt_date(&b, "open_date", i),
                            close: opt_date(&b, "close_date", i),
                        };
                        ctx.centres.insert(id.value(i).to_string(), dates);
                    }
                }
            }
            "activities" => {
                ctx.activities.clear();
                for b in self.table("activities", &["activity_code"]).await? {
                    let a = col_str(&b, "activity_code");
                    ctx.activities
                        .extend((0..b.num_rows()).map(|i| a.value(i).to_string()));
                }
            }
            "registrations" => {
                ctx.clear_registrations();
                for b in self
                    .table(
                        "registrations",
                        &["person_key", "family_key", "date_of_birth"],
                    )
                    .await?
                {
                    let (p, f) = (col_str(&b, "person_key"), col_str(&b, "family_key"));
                    for i in 0..b.num_rows() {
                        ctx.register(p.value(i), f.value(i), opt_date(&b, "date_of_birth", i));
                    }
                }
            }
            "chis" => {
                ctx.chis.clear();
                for b in self.table("chis", &["key_nhs", "date_of_birth"]).await? {
                    let k = col_str(&b, "key_nhs");
                    for i in 0..b.num_rows() {
                        if let Some(d) = opt_date(&b, "date_of_birth", i) {
                            // Several registrations of one child share the DOB; keep the first.
                            ctx.chis.entry(k.value(i).to_string()).or_insert(d);
                        }
                    }
                }
            }
            other => unreachable!("unknown context part {other}"),
        }
        Ok(())
    }
}

/// The files matching a source's pattern, sorted by name.
fn matching_files(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>> {
    let full = dir.join(pattern);
    let mut files: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
        .with_context(|| format!("bad file pattern {pattern:?}"))?
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn as_at_for(source: &Source, file: &Path, run_date: NaiveDate) -> Result<NaiveDate> {
    match &source.as_at {
        AsAt::RunDate => Ok(run_date),
        AsAt::Fixed(d) => Ok(*d),
        AsAt::FileName { pattern, format } => {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let captured = pattern
                .captures(&name)
                .and_then(|c| c.get(1))
                .with_context(|| {
                    format!(
                        "file name {name:?} does not match the as_at pattern of source {}",
                        source.name
                    )
                })?;
            NaiveDate::parse_from_str(captured.as_str(), format).with_context(|| {
                format!(
                    "{:?} in file name {name:?} is not a date in format {format}",
                    captured.as_str()
                )
            })
        }
    }
}

/// Runs `pipeline` once and returns what happened. Bad rows and bad files never fail the
/// run; storage errors and broken invariants do.
pub async fn run(pipeline: &Pipeline, opts: &RunOptions) -> Result<RunSummary> {
    let started = Utc::now();
    let run_id = new_run_id(started);
    let run_date = opts.as_at.unwrap_or_else(|| started.date_naive());
    let lake = &opts.lake;
    lake.check_key(&opts.pseudonymiser.fingerprint()).await?;
    info!(run_id, pipeline = pipeline.name, lake = %lake.root(), "Run started.");

    let mut summary = RunSummary::new(&run_id, &pipeline.name, &opts.trigger, started);
    let refs = reference::load_dir(&opts.project.join("reference"))?;
    commit_reference_tables(lake, &refs).await?;
    summary.reference_tables = refs
        .iter()
        .map(|r| (r.name.clone(), r.sha256.clone()))
        .collect();

    let mut ctx = Context::new(opts.pseudonymiser.clone());
    ctx.codes = reference::code_lists(&refs)?;
    ctx.asq_windows = reference::asq_windows(&refs)?;
    // Checked every run so a council's edit that breaks the table fails loudly here, not
    // in the report that first needs a cost.
    reference::unit_costs(&refs)?;
    let ctx = Arc::new(ctx);
    let extracts = opts
        .extracts
        .clone()
        .unwrap_or_else(|| pipeline.extracts_dir.clone());
    if !extracts.is_dir() {
        bail!(
            "extracts folder {} does not exist; pass --extracts DIR",
            extracts.display()
        );
    }

    let plan: Vec<(&Source, Vec<PathBuf>)> = pipeline
        .sources
        .iter()
        .map(|s| Ok((s, matching_files(&extracts, &s.path)?)))
        .collect::<Result<_>>()?;
    let total: u64 = plan.iter().map(|(_, f)| f.len() as u64).sum();
    let hashes = FileHashes::start(plan.iter().flat_map(|(_, files)| files));
    let bar = summary::progress_bar(opts.progress, total);

    // Public reference files first (everything resolves geography through them), then the
    // children's centre chain, the health chain and social care side by side: none reads
    // another.
    let lane = |kinds: &[ExtractKind]| -> Vec<(&Source, Vec<PathBuf>)> {
        plan.iter()
            .filter(|(s, _)| kinds.contains(&s.kind))
            .map(|(s, f)| (*s, f.clone()))
            .collect()
    };
    let health = [
        ExtractKind::Chis,
        ExtractKind::HvContacts,
        ExtractKind::Asq3,
    ];
    let reference: Vec<ExtractKind> = ExtractKind::ALL
        .iter()
        .copied()
        .filter(|k| k.is_reference())
        .collect();
    let social = [
        ExtractKind::CinCensus,
        ExtractKind::Ssda903,
        ExtractKind::Eyfsp,
        ExtractKind::ScPersonIdentifiers,
        ExtractKind::EarlyHelpEpisodes,
        ExtractKind::AnnexA,
    ];
    let centre: Vec<ExtractKind> = ExtractKind::ALL
        .iter()
        .copied()
        .filter(|k| !k.is_reference() && !health.contains(k) && !social.contains(k))
        .collect();
    let env = Lane {
        lake,
        extracts: &extracts,
        run_date,
        run_id: &run_id,
        max_ratio: pipeline.max_quarantine_ratio,
        bar: &bar,
        hashes: &hashes,
    };
    let step = Instant::now();
    let mut reports = env.run(lane(&reference), Arc::clone(&ctx)).await?;
    summary.step("reference", "ok", step, format!("{} files", reports.len()));
    let step = Instant::now();
    let (centre_reports, health_reports, social_reports) = tokio::join!(
        env.run(lane(&centre), Arc::clone(&ctx)),
        env.run(lane(&health), Arc::clone(&ctx)),
        env.run(lane(&social), Arc::clone(&ctx))
    );
    reports.extend(centre_reports?);
    reports.extend(health_reports?);
    reports.extend(social_reports?);
    // Report files in the pipeline's declared order whatever order the lanes finished in.
    reports.sort_by_key(|r| pipeline.sources.iter().position(|s| s.name == r.source));
    summary.files = reports;
    bar.finish_and_clear();
    summary.step(
        "ingest",
        "ok",
        step,
        format!(
            "{} files loaded, {} skipped, {} rejected",
            summary.count(FileStatus::Loaded),
            summary.count(FileStatus::Skipped),
            summary.count(FileStatus::Rejected)
        ),
    );

    // person_link is recomputed whenever one of its inputs has a new version: its commit
    // carries the input versions as its transaction, so a run that changed nothing (or a
    // rerun after a crash before linkage) finds out from the table itself.
    let step = Instant::now();
    // The optional rules are part of what person_link was computed from: turning one on
    // recomputes it even when no extract changed.
    let inputs = format!(
        "{}{}",
        linkage_inputs(lake).await?,
        if pipeline.linkage.demo_name {
            ";DEMO_NAME"
        } else {
            ""
        }
    );
    if lake
        .has_transaction(CURATED, "person_link", &inputs)
        .await?
    {
        info!("No linkage input changed: person_link kept as it was.");
        summary.step("linkage", "skipped", step, "no input changed".into());
    } else {
        let stats = link::link_children(
            lake,
            &extracts,
            pipeline,
            &opts.pseudonymiser,
            &inputs,
            pipeline.linkage,
        )
        .await?;
        summary.step(
            "linkage",
            "ok",
            step,
            format!("{} records, {} children", stats.records, stats.children),
        );
        summary.linkage = Some(stats);
    }
    summary.finish();
    write_file_loads(lake, &summary, run_date).await?;
    info!(run_id, status = summary.status(), "Run finished.");
    Ok(summary)
}

/// A run id: the start time and a random suffix (sortable, unique across machines).
pub fn new_run_id(started: chrono::DateTime<Utc>) -> String {
    format!(
        "{}-{}",
        started.format("%Y%m%dT%H%M%SZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// What every lane of a run shares.
struct Lane<'a> {
    lake: &'a Lake,
    extracts: &'a Path,
    run_date: NaiveDate,
    run_id: &'a str,
    max_ratio: f64,
    bar: &'a indicatif::ProgressBar,
    hashes: &'a FileHashes,
}

/// The SHA-256 of every extract file a run will read, each started on a blocking thread when
/// the run starts: the attendance extract takes a noticeable fraction of a second to hash,
/// which would otherwise sit between registrations and the attendance parse.
struct FileHashes(std::sync::Mutex<HashMap<PathBuf, tokio::task::JoinHandle<Result<String>>>>);

impl FileHashes {
    fn start<'p>(paths: impl Iterator<Item = &'p PathBuf>) -> Self {
        let hashing = paths
            .map(|p| {
                let path = p.clone();
                (
                    p.clone(),
                    tokio::task::spawn_blocking(move || file_sha256(&path)),
                )
            })
            .collect();
        Self(std::sync::Mutex::new(hashing))
    }

    /// The file's SHA-256 (hashed now when it was not planned).
    async fn get(&self, path: &Path) -> Result<String> {
        let started = self
            .0
            .lock()
            .expect("no panic holds this lock")
            .remove(path);
        let path = path.to_path_buf();
        match started {
            Some(hashing) => hashing.await?,
            None => tokio::task::spawn_blocking(move || file_sha256(&path)).await?,
        }
    }
}

impl Drop for FileHashes {
    fn drop(&mut self) {
        // A run that failed early does not hash the files it did not reach (a hash already
        // running finishes on its thread and is dropped).
        for (_, hashing) in self.0.get_mut().expect("no panic holds this lock").drain() {
            hashing.abort();
        }
    }
}

impl Lane<'_> {
    /// Ingests `sources` in order, each file after the ones before it, loading from the lake
    /// whatever references each kind checks against.
    async fn run(
        &self,
        sources: Vec<(&Source, Vec<PathBuf>)>,
        mut ctx: Arc<Context>,
    ) -> Result<Vec<FileReport>> {
        let mut loader = ContextLoader {
            lake: self.lake,
            loaded: HashSet::new(),
        };
        let mut reports = Vec::new();
        for (source, files) in sources {
            if files.is_empty() {
                if !source.optional {
                    warn!(
                        source = source.name,
                        pattern = source.path,
                        "No file matched; nothing loaded for this source."
                    );
                }
                reports.push(FileReport::missing(source, self.extracts));
                continue;
            }
            if source.kind == ExtractKind::ReachAreas {
                // Shared read-only with the parser threads; `make_mut` mutates in place once they are done.
                Arc::make_mut(&mut ctx).reach_vintage = source.mapping.lsoa_vintage;
            }
            for path in files {
                loader.ensure(Arc::make_mut(&mut ctx), source.kind).await?;
                let report = self.ingest_file(source, &path, &ctx).await?;
                if report.status == FileStatus::Loaded {
                    loader.invalidate(source.kind);
                }
                reports.push(report);
                self.bar.inc(1);
            }
        }
        Ok(reports)
    }
}

/// Commits the repo's reference tables that changed, side by side: each is its own Delta
/// table, and fifteen small commits one after another cost a noticeable part of a run.
async fn commit_reference_tables(lake: &Lake, refs: &[ReferenceTable]) -> Result<()> {
    let commit = async |r: &ReferenceTable| -> Result<()> {
        let table = format!("ref_{}", r.name);
        let app_id = format!("earlystart/{table}/{}", r.sha256);
        if lake.has_transaction(CURATED, &table, &app_id).await? {
            return Ok(());
        }
        let batch = r.to_batch()?;
        let meta = HashMap::from([("reference_sha256".to_string(), serde_json::json!(r.sha256))]);
        lake.commit(
            CURATED,
            &table,
            batch.schema(),
            vec![batch],
            WriteMode::Overwrite,
            Some(&app_id),
            meta,
        )
        .await?;
        Ok(())
    };
    futures::future::try_join_all(refs.iter().map(commit)).await?;
    Ok(())
}

/// SHA-256 of a file, read in chunks (memory stays flat for any size).
fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read as _;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What the parser thread sends to the writer.
enum Parsed {
    /// Good rows.
    Batch(RecordBatch),
    /// Throw away the batches sent so far: the file is being read again from the start.
    Restart,
}

/// Reads and validates one file on a blocking thread, sending good rows to `tx`. Large CSV
/// files are read in two halves on two threads; XLSX sheets are converted to CSV first.
fn parse_file(
    path: &Path,
    len: u64,
    source: &Source,
    meta: &FileMeta,
    ctx: &Context,
    max_ratio: f64,
    tx: &tokio::sync::mpsc::Sender<Parsed>,
) -> sources::Ingested {
    let send = |b: RecordBatch| tx.blocking_send(Parsed::Batch(b)).is_ok();
    let (kind, mapping) = (source.kind, &source.mapping);
    let is_xlsx = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if !is_xlsx && len >= sources::PARALLEL_MIN_BYTES {
        let open = |start: u64, end: u64| -> std::io::Result<Box<dyn std::io::Read + Send>> {
            use std::io::{Read as _, Seek as _};
            let mut f = std::fs::File::open(path)?;
            f.seek(std::io::SeekFrom::Start(start))?;
            Ok(Box::new(f.take(end - start)))
        };
        let restart = || tx.blocking_send(Parsed::Restart).is_ok();
        match sources::ingest_parallel(
            kind, &open, len, meta, mapping, ctx, max_ratio, &send, &restart,
        ) {
            sources::Parallel::Done(out) => return out,
            sources::Parallel::Sequential => {
                info!(
                    source = source.name,
                    file = meta.path,
                    "Reading the file in one pass (it cannot be split safely)."
                );
                if !restart() {
                    return sources::Ingested::unreadable(kind, "The writer stopped.".into());
                }
            }
        }
    }
    let input: Result<Box<dyn std::io::Read>, String> = if is_xlsx {
        std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| xlsx::sheet_to_csv(&b, source.sheet.as_deref(), source.header_row))
            .map(|csv| Box::new(std::io::Cursor::new(csv)) as Box<dyn std::io::Read>)
    } else {
        std::fs::File::open(path)
            .map(|f| Box::new(f) as Box<dyn std::io::Read>)
            .map_err(|e| format!("The file cannot be opened: {e}."))
    };
    match input {
        Ok(input) => sources::ingest_stream(
            kind,
            input,
            meta,
            mapping,
            ctx,
            max_ratio,
            sources::BATCH_ROWS,
            &mut |b| send(b),
        ),
        Err(e) => sources::Ingested::unreadable(kind, e),
    }
}

impl Lane<'_> {
    /// Ingests one file: validation and pseudonymisation on a blocking thread, streaming good
    /// rows into new Parquet files of the curated table, then the commits (issues first, the
    /// marker last).
    async fn ingest_file(
        &self,
        source: &Source,
        path: &Path,
        ctx: &Arc<Context>,
    ) -> Result<FileReport> {
        let Lane {
            lake,
            extracts,
            run_date,
            run_id,
            max_ratio,
            bar,
            hashes: _,
        } = *self;
        let t0 = Instant::now();
        let relative = path
            .strip_prefix(extracts)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        let sha256 = self.hashes.get(path).await?;
        let kind = source.kind;
        let app_id = format!("earlystart/{}/{}", source.name, sha256);
        let mut report = FileReport::new(source, &relative, &sha256, size);
        // The file is done when its marker table committed (or it was rejected).
        let mut done = lake.has_transaction(OPS, "rejected_files", &app_id).await?;
        for marker in kind.marker_tables() {
            done = done || lake.has_transaction(CURATED, marker, &app_id).await?;
        }
        if done {
            info!(
                source = source.name,
                file = relative,
                "I001: file already ingested (same SHA-256); skipped."
            );
            report.status = FileStatus::Skipped;
            return Ok(report);
        }
        let as_at = as_at_for(source, path, run_date)?;
        report.as_at = Some(as_at);
        let meta = FileMeta {
            source: source.name.clone(),
            path: relative.clone(),
            sha256: sha256.clone(),
            as_at,
        };
        if !kind.personal() {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let raw = tokio::fs::read(path).await?;
            lake.put_if_absent(
                &format!("landing/{}/{}/{}", source.name, sha256, name),
                Bytes::from(raw),
            )
            .await?;
        }

        if kind.multi_table() {
            return self
                .ingest_tables(source, path, &meta, ctx, report, &app_id, t0)
                .await;
        }

        // The parser runs on a blocking thread and hands batches over a small bounded channel,
        // so parsing (one core) and Parquet encoding (the other) overlap and memory stays flat.
        let table = lake
            .table_or_create(CURATED, kind.name(), &kind.schema(), &["_source"])
            .await?;
        let mut writer = lake.source_writer(&table, &source.name)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Parsed>(2);
        let parser = {
            let (path, source, ctx, meta) = (
                path.to_path_buf(),
                source.clone(),
                Arc::clone(ctx),
                meta.clone(),
            );
            tokio::task::spawn_blocking(move || {
                parse_file(&path, size, &source, &meta, &ctx, max_ratio, &tx)
            })
        };
        let mut write_error = None;
        let mut rows = 0usize;
        while let Some(parsed) = rx.recv().await {
            let batch = match parsed {
                Parsed::Batch(b) => b,
                Parsed::Restart => {
                    // The parallel attempt is abandoned: forget its files (never committed).
                    writer.reset();
                    rows = 0;
                    continue;
                }
            };
            rows += batch.num_rows();
            bar.set_message(format!("{} {relative}: {rows} rows", source.name));
            if let Err(e) = writer.write(batch).await {
                // Dropping the receiver stops the parser at its next batch.
                write_error = Some(e);
                break;
            }
        }
        drop(rx);
        let ingested = parser.await.context("ingest task failed")?;
        if let Some(e) = write_error {
            return Err(e).with_context(|| {
                format!(
                    "writing {relative} to curated/{} failed; nothing was committed",
                    kind.name()
                )
            });
        }
        if !ingested.balanced() {
            bail!(
                "row accounting broken for {relative}: read {} ≠ loaded {} + quarantined {} (a bug: please report it)",
                ingested.rows_read,
                ingested.rows_loaded(),
                ingested.rows_quarantined
            );
        }
        report.rows_read = ingested.rows_read;
        report.rows_quarantined = ingested.rows_quarantined;
        report.warnings = ingested.warnings.len() as u64;
        let file_meta = file_metadata(run_id, &relative);
        if self
            .commit_issues(&ingested, &meta, &app_id, &file_meta, &mut report)
            .await?
        {
            report.duration_ms = t0.elapsed().as_millis() as u64;
            return Ok(report);
        }
        report.rows_loaded = ingested.rows_loaded();
        let adds = writer
            .flush()
            .await
            .with_context(|| format!("finishing the Parquet files of {relative}"))?;
        let replace = match source.mode {
            LoadMode::Snapshot => Some(("_source", source.name.as_str())),
            LoadMode::Append => None,
        };
        let version = lake
            .commit_files(&table, adds, replace, &app_id, file_meta)
            .await?;
        report.status = FileStatus::Loaded;
        report.duration_ms = t0.elapsed().as_millis() as u64;
        info!(
            source = source.name,
            file = relative,
            table = kind.name(),
            version,
            rows_read = report.rows_read,
            rows_loaded = report.rows_loaded,
            rows_quarantined = report.rows_quarantined,
            "File loaded."
        );
        Ok(report)
    }
    /// Commits a file's quarantine and warnings, then its rejection when it was rejected
    /// (returns true: nothing else may be committed). Each commit records `app_id`, so a
    /// rerun after a crash does not repeat one that landed.
    async fn commit_issues(
        &self,
        ingested: &sources::Ingested,
        meta: &FileMeta,
        app_id: &str,
        file_meta: &HashMap<String, serde_json::Value>,
        report: &mut FileReport,
    ) -> Result<bool> {
        let (lake, run_id) = (self.lake, self.run_id);
        let at = Utc::now().to_rfc3339();
        // Issues first, then the marker commit (data, or the rejection): see the module doc.
        let issue_commits: &[(&str, &[sources::Issue])] = if ingested.rejected.is_some() {
            &[("quarantine", &ingested.errors)]
        } else {
            &[
                ("quarantine", &ingested.errors),
                ("validation_warnings", &ingested.warnings),
            ]
        };
        for (table_name, issues) in issue_commits {
            if !issues.is_empty() && !lake.has_transaction(OPS, table_name, app_id).await? {
                let batch = records::issue_batch(run_id, &at, meta, issues);
                let schema = batch.schema();
                lake.commit(
                    OPS,
                    table_name,
                    schema,
                    vec![batch],
                    WriteMode::Append,
                    Some(app_id),
                    file_meta.clone(),
                )
                .await?;
            }
        }
        let Some(rejection) = &ingested.rejected else {
            return Ok(false);
        };
        // Files the writer may have produced are never referenced by a commit: invisible.
        warn!(source = meta.source, file = meta.path, rule = %rejection.rule, "File rejected: {}", rejection.message);
        report.status = FileStatus::Rejected;
        report.rule = Some(rejection.rule.id().to_string());
        report.message = Some(rejection.message.clone());
        let r = records::issue_batch(run_id, &at, meta, std::slice::from_ref(rejection));
        lake.commit(
            OPS,
            "rejected_files",
            r.schema(),
            vec![r],
            WriteMode::Append,
            Some(app_id),
            file_meta.clone(),
        )
        .await?;
        Ok(true)
    }

    /// Ingests one file that fills several tables (a CIN census: ten) or a table detected
    /// from its header (SSDA903). The file is parsed on a blocking thread (a census one child
    /// at a time, never a DOM); the tables are then committed one by one in order, each with
    /// the file's transaction id, so a rerun after a crash commits only the tables still
    /// missing, and the last (the marker) says the file was ingested.
    #[allow(clippy::too_many_arguments)]
    async fn ingest_tables(
        &self,
        source: &Source,
        path: &Path,
        meta: &FileMeta,
        ctx: &Arc<Context>,
        mut report: FileReport,
        app_id: &str,
        t0: Instant,
    ) -> Result<FileReport> {
        let lake = self.lake;
        let kind = source.kind;
        let out = {
            let (path, meta, ctx, mapping, ratio) = (
                path.to_path_buf(),
                meta.clone(),
                Arc::clone(ctx),
                source.mapping.clone(),
                self.max_ratio,
            );
            tokio::task::spawn_blocking(move || match std::fs::read(&path) {
                Ok(bytes) => sources::ingest_tables(kind, &bytes, &meta, &mapping, &ctx, ratio),
                Err(e) => Ok(sources::TablesIngested {
                    ingested: sources::Ingested::unreadable(
                        kind,
                        format!("The file cannot be read: {e}."),
                    ),
                    tables: Vec::new(),
                }),
            })
            .await
            .context("ingest task failed")?
            .map_err(anyhow::Error::msg)?
        };
        let ingested = &out.ingested;
        if !ingested.balanced() {
            bail!(
                "row accounting broken for {}: read {} ≠ loaded {} + quarantined {} (a bug: please report it)",
                meta.path,
                ingested.rows_read,
                ingested.rows_loaded,
                ingested.rows_quarantined
            );
        }
        report.rows_read = ingested.rows_read;
        report.rows_quarantined = ingested.rows_quarantined;
        report.warnings = ingested.warnings.len() as u64;
        let file_meta = file_metadata(self.run_id, &meta.path);
        if self
            .commit_issues(ingested, meta, app_id, &file_meta, &mut report)
            .await?
        {
            report.duration_ms = t0.elapsed().as_millis() as u64;
            return Ok(report);
        }
        let replace = match source.mode {
            LoadMode::Snapshot => Some(("_source", source.name.as_str())),
            LoadMode::Append => None,
        };
        for (name, batch) in out.tables {
            if lake.has_transaction(CURATED, name, app_id).await? {
                continue;
            }
            let table = lake
                .table_or_create(CURATED, name, &batch.schema(), &["_source"])
                .await?;
            let mut writer = lake.source_writer(&table, &source.name)?;
            if batch.num_rows() > 0 {
                writer.write(batch).await?;
            }
            let adds = writer
                .flush()
                .await
                .with_context(|| format!("finishing the Parquet files of {name}"))?;
            lake.commit_files(&table, adds, replace, app_id, file_meta.clone())
                .await?;
        }
        report.rows_loaded = ingested.rows_loaded;
        report.status = FileStatus::Loaded;
        report.duration_ms = t0.elapsed().as_millis() as u64;
        info!(
            source = source.name,
            file = meta.path,
            rows_read = report.rows_read,
            rows_loaded = report.rows_loaded,
            rows_quarantined = report.rows_quarantined,
            "File loaded."
        );
        Ok(report)
    }
}

/// Commit metadata naming the run and the file.
fn file_metadata(run_id: &str, file: &str) -> HashMap<String, serde_json::Value> {
    HashMap::from([
        ("run_id".to_string(), serde_json::json!(run_id)),
        ("file".to_string(), serde_json::json!(file)),
    ])
}

/// The transaction id of a linkage over the current versions of its input tables.
async fn linkage_inputs(lake: &Lake) -> Result<String> {
    let mut versions = Vec::new();
    for t in LINKAGE_INPUTS {
        let v = lake.table(CURATED, t).await?.and_then(|t| t.version());
        versions.push(format!("{t}={v:?}"));
    }
    Ok(format!(
        "earlystart/person_link/{}",
        sha256_hex(versions.join(",").as_bytes())
    ))
}

const LINKAGE_INPUTS: &[&str] = &[
    "registrations",
    "chis",
    "hv_contacts",
    "asq3",
    "cin_child",
    "ssda903_header",
    "eyfsp",
    "sc_person_identifiers",
    "early_help_episodes",
];

async fn write_file_loads(lake: &Lake, s: &RunSummary, run_date: NaiveDate) -> Result<()> {
    let mut b = TableBuilder::new(records::file_load_schema());
    for f in &s.files {
        b.str(Some(&s.run_id))
            .str(Some(&f.source))
            .str(Some(f.kind.name()))
            .str(Some(&f.path))
            .str(f.sha256.as_deref())
            .int(Some(f.bytes as i64))
            .str(Some(f.status.name()))
            .int(Some(f.rows_read as i64))
            .int(Some(f.rows_loaded as i64))
            .int(Some(f.rows_quarantined as i64))
            .int(Some(f.warnings as i64))
            .str(f.rule.as_deref())
            .str(f.message.as_deref())
            .date(f.as_at.or(Some(run_date)))
            .int(Some(f.duration_ms as i64));
        b.end_row();
    }
    let batch = b.finish();
    let app = format!("earlystart/run/{}", s.run_id);
    lake.commit(
        OPS,
        "file_loads",
        batch.schema(),
        vec![batch],
        WriteMode::Append,
        Some(&app),
        HashMap::new(),
    )
    .await?;
    Ok(())
}

/// Appends the run's row to `ops/runs`: status, files, rows per table, each step with its
/// duration, and the error of a failed run. Called once a run's last step is over (the
/// command line adds the metric step first), including after a failure.
pub async fn record_run(lake: &Lake, s: &RunSummary) -> Result<()> {
    let app = format!("earlystart/run/{}", s.run_id);
    let mut tables: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for f in &s.files {
        let t = tables.entry(f.kind.name()).or_default();
        t.0 += f.rows_loaded;
        t.1 += f.rows_quarantined;
    }
    let tables: BTreeMap<&str, serde_json::Value> = tables
        .into_iter()
        .map(|(k, (l, q))| (k, serde_json::json!({"loaded": l, "quarantined": q})))
        .collect();
    let duration = s
        .finished
        .map(|f| (f - s.started).num_milliseconds() as f64 / 1000.0);
    let mut r = TableBuilder::new(records::run_schema());
    let refs: BTreeMap<_, _> = s.reference_tables.iter().collect();
    r.str(Some(&s.run_id))
        .str(Some(&s.pipeline))
        .str(Some(&s.trigger))
        .str(Some(&s.started.to_rfc3339()))
        .str(s.finished.map(|f| f.to_rfc3339()).as_deref())
        .str(Some(s.status()))
        .int(Some(
            s.files
                .iter()
                .filter(|f| f.status != FileStatus::Missing)
                .count() as i64,
        ))
        .int(Some(s.count(FileStatus::Loaded) as i64))
        .int(Some(s.count(FileStatus::Skipped) as i64))
        .int(Some(s.count(FileStatus::Rejected) as i64))
        .int(Some(s.rows_loaded() as i64))
        .int(Some(s.rows_quarantined() as i64))
        .str(s.error.as_deref())
        .str(Some(&serde_json::to_string(&refs)?))
        .float(duration)
        .str(Some(&serde_json::to_string(&s.steps)?))
        .str(Some(&serde_json::to_string(&tables)?));
    r.end_row();
    let batch = r.finish();
    lake.commit(
        OPS,
        "runs",
        batch.schema(),
        vec![batch],
        WriteMode::Append,
        Some(&app),
        HashMap::new(),
    )
    .await?;
    Ok(())
}
