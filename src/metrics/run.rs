//! Runs the `sql/` project against the lake: every selected model in dependency order, its
//! sidecar tests, then one commit per output table under `metrics/`. Nothing is committed
//! unless every model built and every test passed, so a bad night leaves last night's
//! figures in place. A run whose inputs (table versions, SQL, tunables) are unchanged is
//! skipped. Between build and publish each model's output lives as Parquet files in the
//! session's scratch folder ([`LakeSession::materialize`]), never whole in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use arrow::array::{Array, RecordBatch};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{JoinType, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use tracing::{info, warn};

use super::catalogue::Catalogue;
use super::fingerprint;
use super::incremental::{self, BuildRecord, ModelRecord, Scope};
use super::params::MetricParams;
use super::project::{ColumnTest, LAST_BUILD, Model, Project};
use super::session::{LakeSession, Limits, METRICS, Stored, is_out_of_memory};
use crate::ballista::Engine;
use crate::lake::Lake;
use crate::reference::sha256_hex;

/// What a metric run did.
#[derive(Debug, Clone, Default)]
pub struct MetricRun {
    /// True when the inputs were unchanged and nothing was recomputed.
    pub up_to_date: bool,
    /// Each model built: name, rows, seconds.
    pub models: Vec<(String, usize, f64)>,
    /// Models whose inputs were unchanged: their tables were kept as they were.
    pub kept: Vec<String>,
    /// Data tests run.
    pub tests_run: usize,
    /// The run key committed with the outputs.
    pub run_key: String,
    /// Full or incremental, and why ([`Scope::describe`]).
    pub scope: String,
}

/// Options of a metric run.
#[derive(Debug, Clone)]
pub struct MetricOptions {
    /// Models to build with everything they read (empty = the whole project).
    pub select: Vec<String>,
    /// Session limits.
    pub limits: Limits,
    /// Recompute even when the inputs are unchanged.
    pub force: bool,
    /// Where the queries run (in process, or a Ballista cluster).
    pub engine: Engine,
    /// An incremental model's table that has this many files is written whole again, in
    /// order of its date column (a compaction), instead of having its newest rows replaced:
    /// each incremental build adds a file or two.
    pub compact_at: usize,
    /// Models built at the same time in an incremental build (at least 1): a model starts
    /// once the models it reads are built. A full build runs them one at a time.
    pub jobs: usize,
}

impl Default for MetricOptions {
    fn default() -> Self {
        Self {
            select: Vec::new(),
            limits: Limits::metrics(),
            force: false,
            engine: Engine::Local,
            compact_at: 64,
            jobs: 2,
        }
    }
}

/// Builds the project under `project/sql` into the lake's `metrics/` area.
pub async fn run(lake: &Lake, project: &Path, opts: &MetricOptions) -> Result<MetricRun> {
    let sql_dir = project.join("sql");
    let params = MetricParams::load(&sql_dir.join("metrics.toml"))?;
    let catalogue = Catalogue::load(&sql_dir.join("catalogue.toml"))?;
    let session =
        LakeSession::open_on(lake, opts.limits, params.stats.confidence, &opts.engine).await?;
    let result = build(lake, &session, &sql_dir, params, catalogue, opts).await;
    // A distributed session wrote scratch tables to the lake: remove them either way.
    let closed = session.close().await;
    let out = result?;
    closed.context("cannot remove the run's scratch tables from the lake")?;
    Ok(out)
}

async fn build(
    lake: &Lake,
    session: &LakeSession,
    sql_dir: &Path,
    params: MetricParams,
    catalogue: Catalogue,
    opts: &MetricOptions,
) -> Result<MetricRun> {
    let full = Project::load(sql_dir, &session.ctx)?;
    let models = select(&full, &opts.select)?;

    // Inputs the project provides itself, not read from the lake. `metric_run` gets its
    // value once the run key is known.
    let mut provided: HashMap<&str, RecordBatch> = HashMap::new();
    provided.insert("metric_params", params.to_batch());
    provided.insert("metric_catalogue", catalogue.to_batch());
    provided.insert("metric_run", run_table(&"0".repeat(64)));
    for (name, batch) in &provided {
        session
            .put_table(name, batch.schema(), vec![batch.clone()])
            .await?;
    }
    check_inputs(session, &models, &provided)?;
    check_last_build(&full.models, &params.incremental)?;

    let code_key = code_key(&models, &provided);
    let inputs = input_versions(session, &models, &provided);
    let run_key = run_key(&code_key, &inputs);
    let app_id = format!("earlystart/metrics/{run_key}");
    // The run id is not part of the key: the same inputs give the same figures.
    let run_batch = run_table(&run_key);
    session
        .put_table("metric_run", run_batch.schema(), vec![run_batch.clone()])
        .await?;
    provided.insert("metric_run", run_batch);

    let last = incremental::last_record(lake).await?;
    // The model's table is the version the last build recorded for it.
    let as_recorded = |name: &str| {
        last.as_ref()
            .and_then(|l| l.models.get(name))
            .is_some_and(|r| table_version(session, name) == Some(r.version))
    };
    // Up to date: the last build had this run key, and every table it wrote is still the
    // version it wrote (a build of other code since, or a cut-short publish, is not).
    if !opts.force
        && last.as_ref().is_some_and(|l| l.run_key == run_key)
        && models.iter().all(|m| as_recorded(&m.name))
    {
        info!(run_key = %&run_key[..12], "metrics are up to date; nothing recomputed");
        return Ok(MetricRun {
            up_to_date: true,
            run_key,
            ..Default::default()
        });
    }

    let (mut scope, last_dates) =
        incremental::decide(lake, last.as_ref(), &code_key, &inputs, &params.incremental).await?;
    if opts.force {
        scope = Scope::Full {
            why: "--force".into(),
        };
    } else if matches!(opts.engine, Engine::Ballista(_)) && matches!(scope, Scope::From { .. }) {
        scope = Scope::Full {
            why: "incremental builds run in process only".into(),
        };
    } else if let Scope::From { .. } = &scope {
        // Rows are kept from each incremental model's table as the recorded build left it:
        // a table another build wrote since (or a publish cut short) means start over.
        for m in models.iter().filter(|m| m.doc.incremental.is_some()) {
            if !as_recorded(&m.name) {
                scope = Scope::Full {
                    why: format!("metrics/{} was not written by the last build", m.name),
                };
                break;
            }
        }
    }
    info!(scope = %scope.describe(), "metric build scope");
    session
        .ctx
        .register_udf(incremental::recompute_from_udf(scope.recompute_from()));

    let provided_digests: HashMap<&str, String> = provided
        .iter()
        .map(|(name, batch)| (*name, batch_digest(batch)))
        .collect();
    let mut project_inputs: Vec<(&str, String)> = provided_digests
        .iter()
        .filter(|(n, _)| !BOOKKEEPING.contains(*n))
        .map(|(n, d)| (*n, d.clone()))
        .collect();
    project_inputs.sort();
    let base = fingerprint::base_key(&project_inputs);
    let mut records: BTreeMap<String, ModelRecord> = BTreeMap::new();
    let mut built: Vec<(String, Output)> = Vec::new();
    let mut out = MetricRun {
        run_key: run_key.clone(),
        scope: scope.describe(),
        ..Default::default()
    };
    // Models run as soon as the models they read are done, up to `opts.jobs` at a time in
    // an incremental build (its models are small and leave a core idle while they plan,
    // decode and write: county night 7.45 -> 7.05 s), one at a time in a full build (its
    // models already use every core: two at once took as long, with peak memory 1.7 ->
    // 2.5 GiB).
    let jobs = match scope {
        Scope::From { .. } => opts.jobs.max(1),
        Scope::Full { .. } => 1,
    };
    let waits = waits_for(&models)?;
    let mut waiting: Vec<&Model> = models.iter().collect();
    let mut running = futures::stream::FuturesUnordered::new();
    // `last_build` is one name in the session: one model at a time reads it.
    let mut last_build_in_use = false;
    let mut step = 0;
    loop {
        let mut i = 0;
        // In the project's order (models come after what they read), each model whose
        // inputs are done: kept at once, or started when a slot is free.
        while i < waiting.len() {
            let m = waiting[i];
            let ready = waits[m.name.as_str()]
                .iter()
                .all(|d| records.contains_key(*d));
            if !ready {
                i += 1;
                continue;
            }
            let model_inputs =
                fingerprint::model_inputs(&base, m, session, &records, &provided_digests);
            // Inputs as at the table's last build: building it again would give the same rows.
            if let Some(kept) = last.as_ref().and_then(|l| l.models.get(&m.name))
                && !opts.force
                && kept.inputs == model_inputs
                && table_version(session, &m.name) == Some(kept.version)
            {
                waiting.remove(i);
                step += 1;
                let step = format!("{step}/{}", models.len());
                info!(
                    model = %m.name,
                    version = kept.version,
                    step,
                    "model kept: its inputs are unchanged"
                );
                out.kept.push(m.name.clone());
                records.insert(m.name.clone(), kept.clone());
                continue;
            }
            let reads_last_build = !m.doc.last_build.is_empty();
            if running.len() >= jobs || (reads_last_build && last_build_in_use) {
                i += 1;
                continue;
            }
            waiting.remove(i);
            step += 1;
            let step = format!("{step}/{}", models.len());
            // Tables a kept row's relationships still hold against: unchanged since the
            // build that tested it.
            let unchanged: BTreeSet<String> = out
                .kept
                .iter()
                .cloned()
                .chain(
                    provided
                        .keys()
                        .filter(|n| !BOOKKEEPING.contains(n))
                        .map(|n| n.to_string()),
                )
                .collect();
            last_build_in_use |= reads_last_build;
            running.push(build_model(
                session,
                m,
                &scope,
                unchanged,
                model_inputs,
                step,
            ));
        }
        let Some(done) = running.next().await else {
            break;
        };
        // A failed model fails the build: the models still running are dropped (cancelled)
        // and nothing is published.
        let done = done?;
        if !done.model.doc.last_build.is_empty() {
            last_build_in_use = false;
        }
        out.tests_run += done.tests_run;
        out.models
            .push((done.model.name.clone(), done.rows, done.secs));
        records.insert(done.model.name.clone(), done.record);
        built.push((done.model.name.clone(), done.output));
    }
    // Unreachable while every model waits only for models before it (see `waits_for`): a
    // guard against publishing a build that left a model out.
    if let Some(m) = waiting.first() {
        bail!(
            "{}: was never started (a fault in the build order; nothing was published)",
            m.path.display()
        );
    }
    // Reported in the project's order, whatever order they finished in.
    let order: HashMap<&str, usize> = models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    out.models.sort_by_key(|(name, ..)| order[name.as_str()]);
    out.kept.sort_by_key(|name| order[name.as_str()]);
    // Publish every table a few at a time (each commit is mostly waiting on storage), then
    // the build record: it says the set is complete (see the up-to-date check above), and
    // the next build keeps tables at the versions it names.
    let meta = HashMap::from([("run_key".to_string(), serde_json::json!(run_key))]);
    let publish = publish_context(lake);
    let mut commits: Vec<futures::future::BoxFuture<'_, Result<(String, i64)>>> = Vec::new();
    let app_id = app_id.as_str();
    for (name, batch) in provided {
        let meta = meta.clone();
        commits.push(
            async move {
                let version = publish_batch(lake, name, batch, app_id, meta).await?;
                Ok((name.to_string(), version))
            }
            .boxed(),
        );
    }
    for (name, output) in built {
        let (meta, publish) = (meta.clone(), &publish);
        commits.push(
            async move {
                let version = publish_output(
                    lake,
                    publish,
                    name.clone(),
                    output,
                    app_id,
                    meta,
                    opts.compact_at,
                )
                .await?;
                Ok((name, version))
            }
            .boxed(),
        );
    }
    let versions: HashMap<String, i64> = futures::stream::iter(commits)
        .buffer_unordered(4)
        .try_collect()
        .await?;
    for (name, record) in records.iter_mut() {
        if let Some(v) = versions.get(name) {
            record.version = *v;
        }
    }
    // Models outside this build (`--select`) keep their entries: their tables are as the
    // recorded build left them, which the next build checks by version.
    if let Some(last) = &last {
        for (name, record) in &last.models {
            records
                .entry(name.clone())
                .or_insert_with(|| record.clone());
        }
    }
    let record = BuildRecord {
        run_key: run_key.clone(),
        code_key,
        inputs,
        last_dates,
        models: records,
    };
    publish_batch(
        lake,
        "metric_build",
        incremental::build_table(&record, &scope),
        app_id,
        meta,
    )
    .await?;
    Ok(out)
}

/// A model built by [`build_model`], not yet published.
struct BuiltModel<'a> {
    model: &'a Model,
    record: ModelRecord,
    output: Output,
    rows: usize,
    secs: f64,
    tests_run: usize,
}

/// The models of the build each model waits for before it starts: the models it reads, and,
/// of two models linked by a `relationships` test (one looks values up in the other's
/// table), the one earlier in the project's order. So a lookup sees the table it saw when the
/// models were built one at a time, and every model waits only for models before it
/// (`models` is in the project's order), which cannot deadlock.
fn waits_for(models: &[Model]) -> Result<HashMap<&str, BTreeSet<&str>>> {
    let position: HashMap<&str, usize> = models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let mut waits: HashMap<&str, BTreeSet<&str>> = models
        .iter()
        .map(|m| {
            let read = m
                .reads
                .iter()
                .filter_map(|r| position.get_key_value(r.as_str()));
            (m.name.as_str(), read.map(|(name, _)| *name).collect())
        })
        .collect();
    for (at, m) in models.iter().enumerate() {
        for (_, column) in m.doc.column_docs()? {
            for test in column.tests {
                let ColumnTest::Relationships { relationships } = test else {
                    continue;
                };
                let Some((table, _)) = relationships.split_once('.') else {
                    continue;
                };
                let Some((&other, &other_at)) =
                    position.get_key_value(table.to_lowercase().as_str())
                else {
                    continue;
                };
                let (later, earlier) = match other_at.cmp(&at) {
                    std::cmp::Ordering::Less => (m.name.as_str(), other),
                    std::cmp::Ordering::Greater => (other, m.name.as_str()),
                    std::cmp::Ordering::Equal => continue,
                };
                waits.entry(later).or_default().insert(earlier);
            }
        }
    }
    Ok(waits)
}

/// Builds one model: its query (merged with the rows an incremental model keeps), its data
/// tests and the digest the next build compares.
async fn build_model<'a>(
    session: &LakeSession,
    m: &'a Model,
    scope: &Scope,
    unchanged: BTreeSet<String>,
    model_inputs: String,
    step: String,
) -> Result<BuiltModel<'a>> {
    let started = Instant::now();
    // An incremental model keeps its last build's rows dated before the recompute date
    // (read before the new rows replace the table's name in the session).
    let kept = match (scope, &m.doc.incremental) {
        (Scope::From { from, .. }, Some(column)) => {
            let old = session.ctx.table(m.name.as_str()).await.with_context(|| {
                format!(
                    "metrics/{} is missing: it is kept from the last build",
                    m.name
                )
            })?;
            Some((
                column.as_str(),
                *from,
                old.filter(dated_before(column, *from))?,
            ))
        }
        _ => None,
    };
    let reads_last_build = put_last_build(session, m, scope).await?;
    let stored = run_query(session, m).await;
    if reads_last_build {
        let _ = session.ctx.deregister_table(LAST_BUILD)?;
    }
    let stored = stored?;
    let (rows, output, new_rows) = match kept {
        None => (
            stored.rows,
            Output::Stored {
                stored,
                sorted_by: m.doc.incremental.clone(),
            },
            None,
        ),
        Some((column, from, kept)) => {
            let merged = merge(session, m, column, from, kept).await?;
            let new_rows = merged.new_rows.clone();
            (
                merged.rows,
                Output::Merged(Box::new(merged)),
                Some(new_rows),
            )
        }
    };
    let query_secs = started.elapsed().as_secs_f64();
    let unchanged: BTreeSet<&str> = unchanged.iter().map(String::as_str).collect();
    let tests_run = test_model(session, m, new_rows.as_deref(), &unchanged).await?;
    if let Some(n) = &new_rows {
        let _ = session.ctx.deregister_table(n.as_str())?;
    }
    let digest = if rows <= fingerprint::CONTENT_DIGEST_ROWS {
        let df = session.ctx.table(m.name.as_str()).await?;
        format!(
            "content {}",
            fingerprint::content_digest(&session.collect(df).await?)?
        )
    } else {
        format!("inputs {model_inputs}")
    };
    let secs = started.elapsed().as_secs_f64();
    info!(
        model = %m.name,
        rows,
        query_secs = format!("{query_secs:.2}"),
        secs = format!("{secs:.2}"),
        step,
        "model built"
    );
    Ok(BuiltModel {
        model: m,
        record: ModelRecord {
            inputs: model_inputs,
            output: digest,
            version: -1,
        },
        output,
        rows,
        secs,
        tests_run,
    })
}

/// The Delta version of `metrics/<name>` the session reads, if it has that table.
fn table_version(session: &LakeSession, name: &str) -> Option<i64> {
    session
        .tables
        .iter()
        .find(|e| e.name == name && e.area == METRICS)
        .map(|e| e.version)
}

/// Where a model's output is until it is published.
enum Output {
    /// All of it, as the run's Parquet files; an incremental model's are published in
    /// order of its date column (see [`CLUSTERED_FILE_SIZE`]).
    Stored {
        stored: Stored,
        sorted_by: Option<String>,
    },
    /// The kept rows of the last build and the new rows (an incremental model).
    Merged(Box<Merged>),
}

/// A merged incremental model.
struct Merged {
    /// The kept rows and the new ones.
    plan: LogicalPlan,
    /// The new rows alone.
    new_plan: LogicalPlan,
    /// Rows in all.
    rows: usize,
    /// The name under which the new rows are registered (for the data tests).
    new_rows: String,
    /// The model's date column and the recompute date: the new rows are those dated on or
    /// after it.
    column: String,
    from: chrono::NaiveDate,
}

/// Plans and runs a model's query into the session's spill folder. A query that ran out of
/// the memory pool runs once more before the build fails: how much DataFusion 55 accounts to
/// a repartition's buffered batches depends on how its tasks were scheduled, so the same
/// query on the same data can fail once and pass the next time (one of seventeen county
/// builds ran out of the 12 GiB pool with a repartition holding 11.3 GB of it; a build's
/// real peak is under 2.1 GiB).
async fn run_query(session: &LakeSession, m: &Model) -> Result<Stored> {
    let mut retried = false;
    loop {
        let df = session
            .plan(&m.sql)
            .await
            .with_context(|| format!("{}: cannot plan the query", m.path.display()))?;
        match session.materialize(&m.name, df).await {
            Ok(stored) => return Ok(stored),
            Err(e) if !retried && is_out_of_memory(&e) => {
                warn!(model = %m.name, error = %e, "model ran out of the memory pool; running it once more");
                retried = true;
            }
            Err(e) => {
                let again = if retried { " (twice)" } else { "" };
                return Err(e.context(format!("{}: the query failed{again}", m.path.display())));
            }
        }
    }
}

/// Registers [`LAST_BUILD`] for a model that declares it: its table as the last build left
/// it (the declared columns) when this build only adds days after that build's data, else
/// no rows. Returns whether the model reads it.
async fn put_last_build(session: &LakeSession, m: &Model, scope: &Scope) -> Result<bool> {
    let Some(schema) = m.doc.last_build_schema()? else {
        return Ok(false);
    };
    match scope {
        Scope::From {
            follows_last: true, ..
        } => {
            let last = session.ctx.table(m.name.as_str()).await.with_context(|| {
                format!(
                    "metrics/{} is missing: the model reads its last build",
                    m.name
                )
            })?;
            let columns = schema.fields().iter().map(|f| {
                datafusion::prelude::cast(col(f.name()), f.data_type().clone()).alias(f.name())
            });
            let last = last.select(columns).with_context(|| {
                format!(
                    "metrics/{}: the last build lacks a column last_build declares",
                    m.name
                )
            })?;
            let _ = session.ctx.deregister_table(LAST_BUILD)?;
            session.ctx.register_table(LAST_BUILD, last.into_view())?;
        }
        _ => session.put_table(LAST_BUILD, schema, Vec::new()).await?,
    }
    Ok(true)
}

/// An incremental model's table is written in order of its date column, cut into files of
/// about this size, so that the next incremental build's replacement of the rows from its
/// recompute date rewrites the last file or two, not the table.
const CLUSTERED_FILE_SIZE: std::num::NonZeroU64 = std::num::NonZeroU64::new(2 << 20).unwrap();

/// Puts the rows kept from the last build beside the new ones under the model's name, after
/// checking that the model computed no row before the recompute date (its SQL must filter on
/// `recompute_from()`, or kept and new rows would overlap).
async fn merge(
    session: &LakeSession,
    m: &Model,
    column: &str,
    from: chrono::NaiveDate,
    kept: DataFrame,
) -> Result<Merged> {
    let new = session.ctx.table(m.name.as_str()).await?;
    let early = new
        .clone()
        .filter(dated_before(column, from))?
        .count()
        .await?;
    if early > 0 {
        bail!(
            "{}: declares incremental = {column:?} but computed {early} rows dated before the \
             recompute date {from}; its SQL must keep only rows on or after \
             recompute_from()",
            m.path.display()
        );
    }
    // A key already kept keeps its row (keep_earlier): only keys not kept are new.
    let new = if m.doc.keep_earlier {
        let keys: Vec<&str> = m.doc.unique_key.iter().map(String::as_str).collect();
        // Renamed: both sides are scans of a table of the same name.
        let kept_names: Vec<String> = keys.iter().map(|k| format!("kept_{k}")).collect();
        let kept_keys = kept
            .clone()
            .select(keys.iter().zip(&kept_names).map(|(k, n)| col(*k).alias(n)))?;
        let kept_names: Vec<&str> = kept_names.iter().map(String::as_str).collect();
        new.join(kept_keys, JoinType::LeftAnti, &keys, &kept_names, None)?
    } else {
        new
    };
    let merged = kept.union(new.clone())?;
    let rows = merged.clone().count().await?;
    let plan = merged.logical_plan().clone();
    let new_plan = new.logical_plan().clone();
    let new_rows = format!("{}__new_rows", m.name);
    session
        .ctx
        .register_table(new_rows.as_str(), new.into_view())?;
    let _ = session.ctx.deregister_table(m.name.as_str())?;
    session
        .ctx
        .register_table(m.name.as_str(), merged.into_view())?;
    Ok(Merged {
        plan,
        new_plan,
        rows,
        new_rows,
        column: column.to_string(),
        from,
    })
}

/// `column < from`, the rows an incremental model keeps from its last build.
fn dated_before(column: &str, from: chrono::NaiveDate) -> datafusion::prelude::Expr {
    col(column).lt(lit(ScalarValue::Date32(Some(
        crate::sources::builder::date32(from),
    ))))
}

/// Commits a model's output, streamed from its stored files or its merged plan.
async fn publish_output(
    lake: &Lake,
    publish: &SessionContext,
    name: String,
    output: Output,
    app_id: &str,
    meta: HashMap<String, serde_json::Value>,
    compact_at: usize,
) -> Result<i64> {
    let in_order = |plan: LogicalPlan, column: &str| {
        LogicalPlanBuilder::from(plan)
            .sort(vec![col(column).sort(true, true)])?
            .build()
    };
    // The whole table, as a plan and the file size it is cut into (date order for an
    // incremental model); or, for a merged model short of a compaction, its new rows alone.
    let (plan, file_size) = match output {
        Output::Stored { stored, sorted_by } => {
            let files = super::distributed::listing_table(stored.files, stored.schema)?;
            let plan = LogicalPlanBuilder::scan(name.as_str(), provider_as_source(files), None)?
                .build()?;
            match sorted_by {
                Some(column) => (in_order(plan, &column)?, Some(CLUSTERED_FILE_SIZE)),
                None => (plan, None),
            }
        }
        Output::Merged(merged) => {
            let files = lake.file_count(METRICS, &name).await?.unwrap_or(0);
            if files >= compact_at {
                (
                    in_order(merged.plan, &merged.column)?,
                    Some(CLUSTERED_FILE_SIZE),
                )
            } else {
                // The rows dated from the recompute date on (and any undated ones, which no
                // build keeps) give way to the new rows.
                let replaced = col(merged.column.as_str())
                    .gt_eq(lit(ScalarValue::Date32(Some(
                        crate::sources::builder::date32(merged.from),
                    ))))
                    .or(col(merged.column.as_str()).is_null());
                return lake
                    .replace_where_plan(
                        METRICS,
                        &name,
                        merged.new_plan,
                        replaced,
                        publish,
                        app_id,
                        meta,
                    )
                    .await
                    .with_context(|| format!("cannot publish metrics/{name}"));
            }
        }
    };
    lake.replace_plan(METRICS, &name, plan, publish, app_id, meta, file_size)
        .await
        .with_context(|| format!("cannot publish metrics/{name}"))
}

async fn publish_batch(
    lake: &Lake,
    name: &str,
    batch: RecordBatch,
    app_id: &str,
    meta: HashMap<String, serde_json::Value>,
) -> Result<i64> {
    lake.replace(METRICS, name, batch.schema(), vec![batch], app_id, meta)
        .await
        .with_context(|| format!("cannot publish metrics/{name}"))
}

/// A local session that reads the stored outputs back while they are committed (on a
/// distributed engine they sit in the lake's scratch folder, so the lake's store is
/// registered too). Publishing is I/O, not worth shipping to a cluster.
fn publish_context(lake: &Lake) -> SessionContext {
    // deltalake's own session: its planner knows the nodes of a Delta write.
    let ctx = deltalake::delta_datafusion::create_session().into_inner();
    ctx.register_object_store(lake.root(), lake.store());
    ctx
}

/// The selected models with everything upstream of them, in run order.
fn select(project: &Project, names: &[String]) -> Result<Vec<Model>> {
    if names.is_empty() {
        return Ok(project.models.clone());
    }
    let mut stack: Vec<String> = Vec::new();
    for n in names {
        let n = n.to_lowercase();
        if project.get(&n).is_none() {
            bail!("no model {n:?} under sql/ (file stem = table name)");
        }
        stack.push(n);
    }
    // Everything upstream: the models among the tables each selected model reads.
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    while let Some(n) = stack.pop() {
        if let Some(m) = project.get(&n)
            && wanted.insert(n)
        {
            stack.extend(m.reads.iter().cloned());
        }
    }
    Ok(project
        .models
        .iter()
        .filter(|m| wanted.contains(&m.name))
        .cloned()
        .collect())
}

/// Every table a model reads must be a lake table, a provided table or an earlier model.
fn check_inputs(
    session: &LakeSession,
    models: &[Model],
    provided: &HashMap<&str, RecordBatch>,
) -> Result<()> {
    let mut known: BTreeSet<String> = session.tables.iter().map(|t| t.name.clone()).collect();
    known.extend(provided.keys().map(|k| k.to_string()));
    let mut missing = Vec::new();
    for m in models {
        for t in &m.reads {
            if !known.contains(t) {
                missing.push(format!(
                    "{} reads {t:?}, which is neither a lake table nor a model before it",
                    m.path.display()
                ));
            }
        }
        known.insert(m.name.clone());
    }
    if !missing.is_empty() {
        bail!(
            "{}\n(run the ingest first if a curated table is missing)",
            missing.join("\n")
        );
    }
    Ok(())
}

/// A model that reads its last build adds the new days of the period tables to it, so it
/// may read (through the models it reads) no other append-only table: the scope checks
/// only the period tables' dates before giving it its last build.
fn check_last_build(models: &[Model], declared: &super::params::Incremental) -> Result<()> {
    let mut lake_reads: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for m in models {
        let mut reached = BTreeSet::new();
        for t in &m.reads {
            match lake_reads.get(t.as_str()) {
                Some(tables) => reached.extend(tables.iter().copied()),
                None => {
                    reached.insert(t.as_str());
                }
            }
        }
        if m.doc.last_build_schema()?.is_some()
            && let Some(t) = reached
                .iter()
                .find(|t| declared.append_only.contains_key(**t) && !declared.is_period_table(t))
        {
            bail!(
                "{}: reads last_build and (through the models it reads) the append-only \
                 table {t}, which is not a period table: its last build may not have seen \
                 all of {t}'s rows before the recompute date",
                m.path.display()
            );
        }
        lake_reads.insert(m.name.as_str(), reached);
    }
    Ok(())
}

/// Tables the project provides that do not change what it computes: the run's id and the
/// record of the build.
const BOOKKEEPING: [&str; 2] = ["metric_run", "metric_build"];

/// Everything a build's figures follow from except the data: the program's version, every
/// model's SQL and incremental declaration, and the provided tables (parameters, catalogue).
fn code_key(models: &[Model], provided: &HashMap<&str, RecordBatch>) -> String {
    // The program too: a release may change a function the SQL calls, and rows an
    // incremental build keeps must have been computed by this one.
    let mut parts: Vec<String> = vec![format!("earlystart {}", env!("CARGO_PKG_VERSION"))];
    for m in models {
        parts.push(format!(
            "model {} {} incremental {:?} keep_earlier {}",
            m.name,
            sha256_hex(m.sql.as_bytes()),
            m.doc.incremental,
            m.doc.keep_earlier
        ));
    }
    let mut names: Vec<_> = provided
        .keys()
        .filter(|n| !BOOKKEEPING.contains(n))
        .collect();
    names.sort();
    for name in names {
        parts.push(format!("provided {name} {}", batch_digest(&provided[name])));
    }
    sha256_hex(parts.join("\n").as_bytes())
}

/// `area/table` → the Delta version the session registered (the one the queries read) of
/// every lake table the models read; -1 for an absent optional table.
fn input_versions(
    session: &LakeSession,
    models: &[Model],
    provided: &HashMap<&str, RecordBatch>,
) -> BTreeMap<String, i64> {
    let model_names: BTreeSet<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let mut inputs = BTreeMap::new();
    for m in models {
        for t in m
            .reads
            .iter()
            .filter(|t| !model_names.contains(t.as_str()) && !provided.contains_key(t.as_str()))
        {
            let (area, version) = session
                .tables
                .iter()
                .find(|e| &e.name == t)
                .map_or((String::new(), -1), |e| (e.area.clone(), e.version));
            inputs.insert(format!("{area}/{t}"), version);
        }
    }
    inputs
}

/// The run key: SHA-256 over the code key and the version of every input table. Equal keys,
/// equal figures.
fn run_key(code_key: &str, inputs: &BTreeMap<String, i64>) -> String {
    let mut parts = vec![format!("code {code_key}")];
    parts.extend(inputs.iter().map(|(t, v)| format!("input {t} v{v}")));
    tracing::debug!(parts = ?parts, "metric run key inputs");
    sha256_hex(parts.join("\n").as_bytes())
}

/// The one-row `metric_run` table: the id stamped on every metric value.
fn run_table(run_key: &str) -> RecordBatch {
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};
    let schema = Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("built_at", DataType::Utf8, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec![format!(
                "metrics-{}",
                &run_key[..16]
            )])),
            Arc::new(StringArray::from(vec![chrono::Utc::now().to_rfc3339()])),
        ],
    )
    .expect("metric_run columns match their schema")
}

fn batch_digest(batch: &RecordBatch) -> String {
    // The printed values, not the buffers: buffer layout can differ between equal batches.
    let text = arrow::util::pretty::pretty_format_batches(std::slice::from_ref(batch))
        .map(|t| t.to_string())
        .unwrap_or_default();
    sha256_hex(text.as_bytes())
}

/// Runs a model's sidecar tests; returns how many ran. Any failure is an error naming the
/// model, column, test and a few offending values.
///
/// In an incremental build (`new_rows` names the rows computed this time), a test whose
/// verdict on the kept rows cannot have changed reads the new rows only: the kept rows
/// passed it when they were built. That holds for `not_null` and `accepted_values`; for
/// `unique` and `unique_key` when kept and new keys cannot meet (the key holds the
/// incremental date, or the model keeps earlier keys, `keep_earlier`); and for
/// `relationships` to a table in `unchanged`. Other tests read the whole table.
async fn test_model(
    session: &LakeSession,
    m: &Model,
    new_rows: Option<&str>,
    unchanged: &BTreeSet<&str>,
) -> Result<usize> {
    let columns: Vec<String> = session
        .ctx
        .table(m.name.as_str())
        .await?
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut failures = Vec::new();
    let mut run = 0;
    let quoted = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
    let whole = quoted(&m.name);
    let new = new_rows.map(quoted);
    // Kept and new rows cannot share a key: the kept ones are dated before the recompute
    // date and the new ones on or after it, or the new ones were cut to keys not kept.
    let keys_apart = |key: &[String]| {
        (m.doc.keep_earlier && m.doc.unique_key.iter().all(|k| key.contains(k)))
            || m.doc.incremental.as_ref().is_some_and(|c| key.contains(c))
    };
    // The table a test reads: the new rows when `sound` says their verdict is the whole's.
    let rows = |sound: bool| match (&new, sound) {
        (Some(n), true) => n.clone(),
        _ => whole.clone(),
    };
    for (column, doc) in m.doc.column_docs()? {
        if !columns.contains(&column) {
            failures.push(format!("column {column:?} is documented but not produced"));
            continue;
        }
        let c = quoted(&column);
        for test in &doc.tests {
            run += 1;
            let (label, sql) = match test {
                ColumnTest::Named(n) if n == "not_null" => (
                    "not_null".to_string(),
                    format!(
                        "select 'null' from {} where {c} is null limit 5",
                        rows(true)
                    ),
                ),
                ColumnTest::Named(n) if n == "unique" => (
                    "unique".to_string(),
                    format!(
                        "select cast({c} as varchar) from {} where {c} is not null \
                         group by {c} having count(*) > 1 limit 5",
                        rows(keys_apart(std::slice::from_ref(&column)))
                    ),
                ),
                ColumnTest::Named(n) => bail!(
                    "{}: column {column:?} has unknown test {n:?} \
                     (unique, not_null, accepted_values, relationships)",
                    m.path.display()
                ),
                ColumnTest::AcceptedValues { accepted_values } => {
                    let list = accepted_values
                        .iter()
                        .map(|v| format!("'{}'", v.replace('\'', "''")))
                        .collect::<Vec<_>>()
                        .join(", ");
                    (
                        "accepted_values".to_string(),
                        format!(
                            "select distinct cast({c} as varchar) from {} \
                             where {c} is not null and cast({c} as varchar) not in ({list}) limit 5",
                            rows(true)
                        ),
                    )
                }
                ColumnTest::Relationships { relationships } => {
                    let Some((other, other_col)) = relationships.split_once('.') else {
                        bail!(
                            "{}: relationships = {relationships:?}: expected \"table.column\"",
                            m.path.display()
                        );
                    };
                    (
                        format!("relationships to {relationships}"),
                        // Distinct values first, then an anti join: the big table is
                        // never the hash join's build side.
                        format!(
                            "select cast(d.v as varchar) from (select distinct {c} as v from {} \
                             where {c} is not null) as d where not exists (select 1 from {} as o \
                             where o.{} = d.v) limit 5",
                            rows(unchanged.contains(other)),
                            quoted(other),
                            quoted(other_col)
                        ),
                    )
                }
            };
            let bad = first_column_values(
                &session
                    .query(&sql)
                    .await
                    .with_context(|| format!("{}: test {label} on {column}", m.path.display()))?,
            );
            if !bad.is_empty() {
                failures.push(format!("{column}: {label} failed, e.g. {bad:?}"));
            }
        }
    }
    if !m.doc.unique_key.is_empty() {
        run += 1;
        let key = m
            .doc
            .unique_key
            .iter()
            .map(|c| quoted(c))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "select concat_ws('|', {}) from {} group by {key} having count(*) > 1 limit 5",
            m.doc
                .unique_key
                .iter()
                .map(|c| format!("coalesce(cast({} as varchar), 'NULL')", quoted(c)))
                .collect::<Vec<_>>()
                .join(", "),
            rows(keys_apart(&m.doc.unique_key))
        );
        let bad = first_column_values(&session.query(&sql).await?);
        if !bad.is_empty() {
            failures.push(format!("unique_key ({key}) repeated, e.g. {bad:?}"));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{}: {} data test(s) failed; nothing was published:\n  {}",
            m.path.display(),
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(run)
}

fn first_column_values(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let col = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)
            .expect("any column casts to text");
        let col = col
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("utf8");
        for i in 0..col.len() {
            out.push(if col.is_null(i) {
                "NULL".into()
            } else {
                col.value(i).to_string()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::params::Incremental;

    fn model(name: &str, reads: &[&str], last_build: bool) -> Model {
        let mut doc = super::super::project::ModelDoc::default();
        if last_build {
            doc.incremental = Some("d".into());
            doc.last_build.insert("d".into(), "Date32".into());
        }
        Model {
            name: name.into(),
            layer: "staging".into(),
            path: format!("sql/staging/{name}.sql").into(),
            sql: String::new(),
            reads: reads.iter().map(|r| r.to_string()).collect(),
            doc,
        }
    }

    #[test]
    fn a_model_reading_its_last_build_reads_no_append_only_table_but_the_period_tables() {
        let declared = Incremental {
            append_only: [
                ("attendances", "session_date"),
                ("quarantine", "record_date"),
            ]
            .into_iter()
            .map(|(t, c)| (t.to_string(), c.to_string()))
            .collect(),
            period_tables: vec!["attendances".into()],
        };
        let days = model("days", &["attendances"], false);
        let issues = model("issues", &["quarantine", "centres"], false);
        assert!(
            check_last_build(&[days.clone(), model("counts", &["days"], true)], &declared).is_ok()
        );
        let err = check_last_build(
            &[days, issues, model("counts", &["days", "issues"], true)],
            &declared,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "sql/staging/counts.sql: reads last_build and (through the models it reads) \
                 the append-only table quarantine"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_model_waits_for_what_it_reads_and_for_the_earlier_of_two_linked_by_a_test() {
        let sites = model("centre_sites", &["centres"], false);
        let mut days = model("days", &["attendances", "centre_sites"], false);
        days.doc.columns = toml::toml! {
            [centre_id]
            tests = ["not_null", { relationships = "Centre_Sites.centre_id" }]
            [next_day]
            tests = [{ relationships = "days.contact_date" }]
            [week]
            tests = [{ relationships = "weeks.week" }]
        };
        let weeks = model("weeks", &["calendar"], false);
        let models = [sites, days, weeks];
        let waits = waits_for(&models).unwrap();
        let of = |name: &str| waits[name].iter().copied().collect::<Vec<_>>();
        // lake tables (centres, attendances, calendar) are not waited for, nor a model's
        // own table; `weeks`, which days' test looks up, comes later, so it waits for days
        assert_eq!(of("centre_sites"), Vec::<&str>::new());
        assert_eq!(of("days"), ["centre_sites"]);
        assert_eq!(of("weeks"), ["days"]);
    }
}
