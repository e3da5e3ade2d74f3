//! The DataFusion session over a lake: every curated, ops and metric table registered by
//! name, the statistics UDFs, a memory pool that spills to disk, and a read-only way to run
//! SQL. The metric run and the analysts' `earlystart sql` share it, so what an analyst
//! queries is exactly what the metrics read.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;
use object_store::path::Path as ObjectPath;

use super::distributed::Scratch;
use crate::ballista::Engine;
use crate::lake::Lake;

/// Lake areas whose tables a session sees, in precedence order (a curated table shadows an
/// ops or metric table of the same name).
pub const AREAS: &[&str] = &[crate::lake::CURATED, METRICS, crate::lake::OPS];

/// The lake area holding the outputs of the `sql/` project.
pub const METRICS: &str = "metrics";

/// Resource limits of a session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Memory the session's operators may hold before they spill (bytes).
    pub memory_bytes: usize,
    /// Wall-time limit of one query.
    pub timeout: Duration,
}

impl Limits {
    /// Limits of the metric run. DataFusion 55 counts string-heavy hash joins and sorts at
    /// several times their real size, so the pool is an accounting ceiling well above the
    /// memory used: the whole catalogue at county scale peaks at 1.6 GiB of RSS under a
    /// 12 GiB pool; a region's (16.7M attendances) at 8.4 GiB, and fails under 4 GiB.
    pub fn metrics() -> Self {
        Self {
            memory_bytes: 12 << 30,
            timeout: Duration::from_secs(3600),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 1536 << 20,
            timeout: Duration::from_secs(600),
        }
    }
}

/// One table a session registered: its name and the lake area it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// Name in SQL.
    pub name: String,
    /// Lake area (`curated`, `metrics`, `ops`).
    pub area: String,
    /// The Delta version the session reads.
    pub version: i64,
}

/// A session over the lake.
pub struct LakeSession {
    /// The DataFusion context (tables, UDFs).
    pub ctx: SessionContext,
    /// The tables registered from the lake.
    pub tables: Vec<TableEntry>,
    limits: Limits,
    /// Where tables made by a distributed session go (`None` in process).
    scratch: Option<Scratch>,
    /// Where tables made in process go: a local folder removed when the session drops.
    spill: Option<tempfile::TempDir>,
}

/// A table a run made (a model's output), kept as Parquet files until it is published.
/// Kept on disk, not in memory: a region's outputs are many gigabytes.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Rows written.
    pub rows: usize,
    /// The schema the files were written with.
    pub schema: SchemaRef,
    /// URLs of the files (`file://` in process, the lake's scratch on a distributed engine).
    pub files: Vec<String>,
    /// Size of the files (bytes).
    pub bytes: u64,
}

impl LakeSession {
    /// Opens a session with every table of the lake registered. `confidence` sets the level
    /// of the interval UDFs.
    pub async fn open(lake: &Lake, limits: Limits, confidence: f64) -> Result<Self> {
        Self::open_on(lake, limits, confidence, &Engine::Local).await
    }

    /// Opens a session whose queries run on `engine`: in process, or on a Ballista cluster
    /// (then the lake's tables are registered as their Parquet files, see [`super::distributed`]).
    pub async fn open_on(
        lake: &Lake,
        limits: Limits,
        confidence: f64,
        engine: &Engine,
    ) -> Result<Self> {
        let runtime = RuntimeEnvBuilder::new()
            // Greedy, not fair: a metric plan has hundreds of small spillable operators, and
            // a fair share of the pool each would be too small for any of them.
            .with_memory_pool(Arc::new(TrackConsumersPool::new(
                GreedyMemoryPool::new(limits.memory_bytes),
                NonZeroUsize::new(5).expect("non-zero"),
            )))
            .build_arc()?;
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("earlystart", "lake");
        // Plain strings, not views: a sliced view array reports its whole shared buffer to
        // the memory pool, so sorts over string keys looked many times their size and
        // failed instead of spilling. Room for the merge phase of a spilled sort.
        let options = config.options_mut();
        options.execution.parquet.schema_force_view_types = false;
        options.execution.sort_spill_reservation_bytes = 64 << 20;
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rules(super::cross_join::SmallSideBuilds::with_default_rules())
            .build();
        let ctx = SessionContext::new_with_state(state);
        super::stats::register_udfs(&ctx, confidence);
        let (ctx, scratch, spill) = match engine {
            Engine::Local => {
                // TMPDIR chooses where (the same place DataFusion spills to).
                let dir = tempfile::Builder::new()
                    .prefix("earlystart-session-")
                    .tempdir()
                    .context("cannot create a scratch folder for the session (set TMPDIR)")?;
                (ctx, None, Some(dir))
            }
            Engine::Ballista(addr) => {
                let remote = crate::ballista::remote_context(addr, ctx.state()).await?;
                // Ballista's upgrade of the state keeps the built-in functions only.
                super::stats::register_udfs(&remote, confidence);
                (remote, Some(Scratch::new(lake)), None)
            }
        };
        let mut tables: Vec<TableEntry> = Vec::new();
        for area in AREAS {
            for name in list_tables(lake, area).await? {
                if tables.iter().any(|t| t.name == name) {
                    continue;
                }
                let registered = match &scratch {
                    None => lake.register(&ctx, area, &name, &name).await?,
                    Some(s) => super::distributed::register_files(lake, &ctx, s, area, &name)
                        .await
                        .with_context(|| format!("cannot register {area}/{name} for Ballista"))?,
                };
                if let Some(version) = registered {
                    tables.push(TableEntry {
                        name,
                        area: area.to_string(),
                        version,
                    });
                }
            }
        }
        // Optional extracts a council may not send (centre groups, finance) are empty tables
        // rather than unknown names, so the SQL that reads them still plans and runs.
        // Version -1 stands for "absent" in the metric run key.
        for kind in crate::sources::ExtractKind::OPTIONAL {
            for name in kind.tables() {
                if tables.iter().any(|t| t.name == name) {
                    continue;
                }
                put_table(
                    &ctx,
                    scratch.as_ref(),
                    name,
                    kind.table_schema(name),
                    vec![],
                )
                .await?;
                tables.push(TableEntry {
                    name: name.to_string(),
                    area: "absent".to_string(),
                    version: -1,
                });
            }
        }
        // The quarantine exists from the first rejected row on; before that it is empty, so
        // the data quality SQL (DQ-02) plans on a clean lake too. One written before rows
        // carried their centre and date shows those columns as nulls until a run adds them.
        if tables.iter().any(|t| t.name == "quarantine") {
            let stored = ctx.table("quarantine").await?;
            if stored
                .schema()
                .field_with_unqualified_name("record_date")
                .is_err()
            {
                use datafusion::prelude::lit;
                use datafusion::scalar::ScalarValue;
                let widened = stored
                    .with_column("centre_id", lit(ScalarValue::Utf8(None)))?
                    .with_column("record_date", lit(ScalarValue::Date32(None)))?;
                ctx.deregister_table("quarantine")?;
                ctx.register_table("quarantine", widened.into_view())?;
            }
        } else {
            put_table(
                &ctx,
                scratch.as_ref(),
                "quarantine",
                crate::pipeline::records::issue_schema(),
                vec![],
            )
            .await?;
            tables.push(TableEntry {
                name: "quarantine".to_string(),
                area: "absent".to_string(),
                version: -1,
            });
        }
        Ok(Self {
            ctx,
            tables,
            limits,
            scratch,
            spill,
        })
    }

    /// Runs `df` and keeps its result as table `name` (replacing one of that name) for the
    /// queries that follow. In process the result streams to Parquet in the session's
    /// scratch folder, so memory stays flat however large it is; on a distributed engine it
    /// is collected and written to the lake's scratch folder, where executors can read it.
    pub async fn materialize(&self, name: &str, df: DataFrame) -> Result<Stored> {
        let logical: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stored = match (&self.scratch, &self.spill) {
            (Some(scratch), _) => {
                let batches = compact(&self.collect(df).await?)?;
                // The executed plan's schema can differ from the logical one in nullability.
                let schema = batches.first().map_or(logical, RecordBatch::schema);
                let url = scratch.write(name, schema.clone(), &batches).await?;
                // As written: views become plain strings (see `plain_strings`).
                let schema = super::distributed::plain_strings(&schema);
                Stored {
                    rows: batches.iter().map(RecordBatch::num_rows).sum(),
                    schema,
                    files: vec![url],
                    bytes: batches
                        .iter()
                        .map(|b| b.get_array_memory_size() as u64)
                        .sum(),
                }
            }
            (None, Some(spill)) => {
                let dir = spill.path().join(name);
                let write = spill_parquet(df, &dir, logical, self.limits.memory_bytes);
                match tokio::time::timeout(self.limits.timeout, write).await {
                    Ok(r) => r?,
                    Err(_) => bail!(
                        "query cancelled after {} s (the session's time limit)",
                        self.limits.timeout.as_secs()
                    ),
                }
            }
            (None, None) => unreachable!("a session has a scratch or a spill folder"),
        };
        let table = super::distributed::listing_table(stored.files.clone(), stored.schema.clone())?;
        let _ = self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, table)?;
        Ok(stored)
    }

    /// Registers batches as table `name` (replacing one of that name): in memory in
    /// process, as Parquet in the lake's scratch folder on a distributed engine.
    pub async fn put_table(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<()> {
        put_table(&self.ctx, self.scratch.as_ref(), name, schema, batches).await
    }

    /// Removes what the session wrote to the lake's scratch folder, if anything.
    pub async fn close(self) -> Result<()> {
        match self.scratch {
            Some(s) => s.remove().await,
            None => Ok(()),
        }
    }

    /// Plans a statement read-only: no DDL, DML, COPY or SET, and no URL tables.
    pub async fn plan(&self, sql: &str) -> Result<DataFrame> {
        self.ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(read_only_error)
    }

    /// Plans an already parsed statement read-only (as [`LakeSession::plan`]).
    pub async fn plan_statement(&self, statement: Statement) -> Result<DataFrame> {
        let state = self.ctx.state();
        let plan = state.statement_to_plan(statement).await?;
        read_only().verify_plan(&plan).map_err(read_only_error)?;
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// Runs a read-only query to completion within the session's time limit.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self.plan(sql).await?;
        self.collect(df).await
    }

    /// Collects a planned query within the session's time limit.
    pub async fn collect(&self, df: DataFrame) -> Result<Vec<RecordBatch>> {
        match tokio::time::timeout(self.limits.timeout, df.collect()).await {
            Ok(r) => r.map_err(|e| query_failure(e, self.limits.memory_bytes)),
            Err(_) => bail!(
                "query cancelled after {} s (the session's time limit; raise it with --timeout)",
                self.limits.timeout.as_secs()
            ),
        }
    }
}

/// A query ran out of the session's memory pool (DataFusion's `ResourcesExhausted`, or the
/// panic DataFusion 55 can raise instead of it). Its message says which setting to raise;
/// [`is_out_of_memory`] finds it under any context.
#[derive(Debug, thiserror::Error)]
#[error(
    "the query needs more memory than the session's pool of {pool_mib} MiB (DataFusion \
     counts hash tables and sorts at several times the memory they use): raise it with \
     --memory-limit, e.g. --memory-limit {}MiB, or cut the rows and columns down before the \
     joins and groupings. DataFusion said: {detail}",
    pool_mib * 4
)]
pub struct OutOfMemory {
    /// The session's pool.
    pub pool_mib: usize,
    /// DataFusion's account: the top consumers and the allocation that failed.
    pub detail: String,
}

/// Whether `e`, or an error it wraps, is [`OutOfMemory`].
pub fn is_out_of_memory(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<OutOfMemory>())
}

/// A failed query's error: [`OutOfMemory`] when the pool ran out, which DataFusion's own
/// message does not name a setting for and repeats once per layer of the plan; otherwise
/// DataFusion's error as it is.
fn query_failure(e: DataFusionError, pool_bytes: usize) -> anyhow::Error {
    let pool_mib = pool_bytes >> 20;
    if let DataFusionError::ResourcesExhausted(detail) = e.find_root() {
        return OutOfMemory {
            pool_mib,
            detail: detail.clone(),
        }
        .into();
    }
    // DataFusion 55 can execute a repartition's output twice after its pool ran out, and
    // then panics instead of reporting the memory error (seen on a county-scale query at a
    // 4 GiB pool; the same query completes at 12 GiB).
    if e.to_string().contains("partition not used yet") {
        return OutOfMemory {
            pool_mib,
            detail: "a repartition panicked (\"partition not used yet\"), as this DataFusion \
                     version does when the pool runs out part-way"
                .into(),
        }
        .into();
    }
    e.into()
}

async fn put_table(
    ctx: &SessionContext,
    scratch: Option<&Scratch>,
    name: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<()> {
    match scratch {
        Some(s) => s.put_table(ctx, name, schema, &batches).await,
        None => {
            let _ = ctx.deregister_table(name)?;
            let n = ctx.state().config().target_partitions();
            let table = MemTable::try_new(schema, partitions(batches, n))?;
            ctx.register_table(name, Arc::new(table))?;
            Ok(())
        }
    }
}

/// Streams `df` into Parquet files under `dir` (emptied first), one per output partition
/// so that later scans run on every core. Compression is light: the files live only until
/// the run publishes them.
async fn spill_parquet(
    df: DataFrame,
    dir: &std::path::Path,
    logical: SchemaRef,
    pool_bytes: usize,
) -> Result<Stored> {
    use datafusion::config::TableParquetOptions;
    use datafusion::dataframe::DataFrameWriteOptions;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut options = TableParquetOptions::default();
    options.global.compression = Some("lz4_raw".into());
    options.global.max_row_group_size = crate::sources::BATCH_ROWS;
    let path = format!("{}/", dir.display());
    let counts = df
        .write_parquet(&path, DataFrameWriteOptions::new(), Some(options))
        .await
        .map_err(|e| query_failure(e, pool_bytes))?;
    let rows = counts
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0) as usize;
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "parquet"));
    paths.sort();
    if paths.is_empty() {
        // No rows, no file: write an empty one so the table still has its columns.
        let path = dir.join("empty.parquet");
        let file = std::fs::File::create(&path)?;
        parquet::arrow::ArrowWriter::try_new(file, logical, None)?.close()?;
        paths.push(path);
    }
    // The schema the files carry (the executed plan's nullability, not the logical one's).
    let file = std::fs::File::open(&paths[0])?;
    let schema = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
        .schema()
        .clone();
    let mut bytes = 0;
    let mut files = Vec::with_capacity(paths.len());
    for p in &paths {
        bytes += std::fs::metadata(p)?.len();
        let url = url::Url::from_file_path(p)
            .map_err(|_| anyhow::anyhow!("{} is not an absolute path", p.display()))?;
        files.push(url.to_string());
    }
    Ok(Stored {
        rows,
        schema,
        files,
        bytes,
    })
}

/// Copies a query's output into batches of about 8,192 rows that own their buffers.
///
/// Output batches are often slices of larger shared buffers (a join's build side, an
/// aggregate's groups) or a few rows each. A slice keeps its whole shared buffer alive and
/// reports all of it to the memory pool, so a table kept for later models held far more
/// memory than its rows, and sorts over it looked many times their size. Tiny batches make
/// every later scan slow. (`concat_batches` of a single batch returns the same buffers, so
/// a lone slice is copied with `take`.)
pub fn compact(batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    const CHUNK: usize = 8192;
    let mut out = Vec::new();
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut pending_rows = 0;
    let flush = |pending: &mut Vec<RecordBatch>, out: &mut Vec<RecordBatch>| -> Result<()> {
        let chunk = match pending.as_slice() {
            [] => return Ok(()),
            [one] => {
                let rows = arrow::array::UInt32Array::from_iter_values(0..one.num_rows() as u32);
                arrow::compute::take_record_batch(one, &rows)?
            }
            [first, ..] => arrow::compute::concat_batches(&first.schema(), pending.iter())?,
        };
        out.push(own_views(chunk)?);
        pending.clear();
        Ok(())
    };
    for b in batches {
        let mut offset = 0;
        while offset < b.num_rows() {
            let len = (CHUNK - pending_rows).min(b.num_rows() - offset);
            pending.push(b.slice(offset, len));
            pending_rows += len;
            offset += len;
            if pending_rows == CHUNK {
                flush(&mut pending, &mut out)?;
                pending_rows = 0;
            }
        }
    }
    flush(&mut pending, &mut out)?;
    Ok(out)
}

/// Copies the strings a view column points at into buffers of its own: `take` and
/// `concat` keep sharing a view array's data buffers (often a whole scanned file's).
fn own_views(batch: RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{Array, AsArray as _};
    use arrow::datatypes::DataType;
    let columns = batch
        .columns()
        .iter()
        .map(|c| -> arrow::array::ArrayRef {
            match c.data_type() {
                DataType::Utf8View => Arc::new(c.as_string_view().gc()),
                DataType::BinaryView => Arc::new(c.as_binary_view().gc()),
                _ => c.clone(),
            }
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Deals batches round-robin into `n` partitions, so a scan of the table runs on every core.
fn partitions(batches: Vec<RecordBatch>, n: usize) -> Vec<Vec<RecordBatch>> {
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); n.max(1)];
    let count = parts.len();
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % count].push(b);
    }
    parts
}

/// The Delta tables directly under a lake area.
pub async fn list_tables(lake: &Lake, area: &str) -> Result<Vec<String>> {
    let store = lake.store();
    let prefix = lake.object_path(&format!("{area}/"));
    let listing = store
        .list_with_delimiter(Some(&prefix))
        .await
        .with_context(|| format!("cannot list {area}/ in the lake"))?;
    let mut names: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p: &ObjectPath| p.filename().map(str::to_string))
        .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

fn read_only_error(e: datafusion::error::DataFusionError) -> anyhow::Error {
    let text = e.to_string();
    if text.contains("not supported") {
        anyhow::anyhow!(
            "{text}: the session is read-only (SELECT, WITH, EXPLAIN, SHOW and DESCRIBE only); \
             write results with --format csv|json|parquet --output FILE"
        )
    } else {
        anyhow::Error::new(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray as _, Int64Array, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("key", DataType::Utf8View, false),
        ]));
        let keys: StringViewArray = (0..rows)
            .map(|i| Some(format!("a key longer than twelve bytes {i:08}")))
            .collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(keys),
            ],
        )
        .unwrap()
    }

    #[test]
    fn compact_merges_small_batches_and_owns_its_strings() {
        let big = batch(100_000);
        // Three rows sliced off a large batch, then many one-row slices.
        let mut input = vec![big.slice(10, 3)];
        input.extend((0..9_000).map(|i| big.slice(20_000 + i, 1)));
        let out = compact(&input).unwrap();
        let sizes: Vec<usize> = out.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, vec![8192, 811]);
        let first = out[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!((first.value(0), first.value(3)), (10, 20_000));
        let keys = out[1].column(1).as_string_view();
        assert_eq!(keys.value(810), "a key longer than twelve bytes 00028999");
        // Owned: the 811-row batch no longer carries the 100,000-row string buffer.
        let whole = big.column(1).get_array_memory_size();
        assert!(out[1].column(1).get_array_memory_size() * 20 < whole);
    }

    #[test]
    fn a_lone_slice_is_copied_too() {
        let big = batch(50_000);
        let out = compact(&[big.slice(100, 10)]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].num_rows(), 10);
        let n = out[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(n.values().inner().len(), 10 * 8);
        assert!(out[0].column(1).get_array_memory_size() < 2_000);
    }

    #[tokio::test]
    async fn a_materialized_table_is_read_back_from_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let session = LakeSession::open(&lake, Limits::default(), 0.95)
            .await
            .unwrap();
        let sum = |session: &LakeSession| {
            let ctx = session.ctx.clone();
            async move {
                let out = ctx
                    .sql("select count(*) as n, sum(v) as s from t")
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap();
                let n = out[0]
                    .column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>();
                let s = out[0]
                    .column(1)
                    .as_primitive::<arrow::datatypes::Int64Type>();
                (n.value(0), s.is_valid(0).then(|| s.value(0)))
            }
        };
        let df = session
            .plan(
                "select v, 'x' || cast(v as varchar) as label from unnest(range(1, 1001)) as r(v)",
            )
            .await
            .unwrap();
        let stored = session.materialize("t", df).await.unwrap();
        assert_eq!(stored.rows, 1000);
        assert!(stored.files.iter().all(|f| f.starts_with("file://")));
        assert_eq!(sum(&session).await, (1000, Some(500_500)));
        // Replaced by an empty result: still a table, with its columns and no rows.
        let df = session
            .plan("select cast(1 as bigint) as v where false")
            .await
            .unwrap();
        let stored = session.materialize("t", df).await.unwrap();
        assert_eq!((stored.rows, stored.files.len()), (0, 1));
        assert_eq!(stored.schema.field(0).name(), "v");
        assert_eq!(sum(&session).await, (0, None));
    }

    #[test]
    fn batches_are_dealt_over_partitions() {
        let parts = partitions(vec![batch(1), batch(2), batch(3)], 2);
        let rows: Vec<Vec<usize>> = parts
            .iter()
            .map(|p| p.iter().map(RecordBatch::num_rows).collect())
            .collect();
        assert_eq!(rows, vec![vec![1, 3], vec![2]]);
        assert_eq!(partitions(vec![], 0).len(), 1);
    }
}
