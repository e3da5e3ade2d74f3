//! The lake: every read and write of storage goes through this module.
//!
//! Layout under the lake root (a local folder or an object-store URL):
//!
//! ```text
//! _meta/key_fingerprint            pseudonymisation key check (created once, never replaced)
//! landing/<source>/<sha256>/<file> raw copies of non-personal files (personal files: hash only)
//! curated/<table>/                 Delta tables of validated, pseudonymised records
//! ops/<table>/                     Delta tables: quarantine, validation_warnings,
//!                                  rejected_files, file_loads, runs
//! ```
//!
//! Guarantees (delta-rs's): data files are written first under unique names, then a commit
//! `_delta_log/<version>.json` is created with put-if-absent. A reader sees a version whole
//! or not at all, so a crash at any point leaves the previous version readable. Every
//! ingest commit carries a Delta application transaction `earlystart/<table>/<sha256>`; a
//! file already committed is found by that id and not written again (I001).

pub mod lease;
mod s3;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use datafusion::prelude::SessionContext;
use deltalake::kernel::Transaction;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add};
use deltalake::protocol::DeltaOperation;
use deltalake::protocol::SaveMode;
use deltalake::writer::RecordBatchWriter;
use deltalake::{DeltaTable, DeltaTableBuilder};
use indexmap::IndexMap;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use url::Url;

/// Parquet settings for every data file: zstd at level 1, which on this data compresses
/// almost as well as level 3 at a fraction of the CPU (the nightly run is CPU-bound).
pub fn writer_properties() -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        // Row groups of 128k rows (one ingest batch) keep the writer's buffers small.
        .set_max_row_group_row_count(Some(crate::sources::BATCH_ROWS))
        // Columns unique on every row gain nothing from a dictionary; building one costs a
        // hash and a lookup per value until the writer gives up on it.
        .set_column_dictionary_enabled(ColumnPath::from("_row_number"), false)
        .set_column_dictionary_enabled(ColumnPath::from("attendance_id"), false)
        .set_column_dictionary_enabled(ColumnPath::from("contact_id"), false);
    for column in NO_STATISTICS {
        props = props.set_column_statistics_enabled(
            ColumnPath::from(*column),
            parquet::file::properties::EnabledStatistics::None,
        );
    }
    props.build()
}

/// Commits an overwriting write (the whole table, or the rows its replaceWhere predicate
/// matches) in one commit recording `app_id`; returns the new version.
async fn commit_overwrite(
    area: &str,
    name: &str,
    write: deltalake::operations::write::WriteBuilder,
    app_id: &str,
    metadata: HashMap<String, serde_json::Value>,
) -> Result<i64> {
    let props = CommitProperties::default()
        .with_metadata(metadata)
        .with_application_transaction(Transaction::new(app_id, 1));
    let table = write
        .with_save_mode(SaveMode::Overwrite)
        .with_commit_properties(props)
        .with_writer_properties(writer_properties())
        .await
        .with_context(|| {
            format!("commit to {area}/{name} failed; the previous version is unchanged")
        })?;
    Ok(table.version().map_or(0, |v| v as i64))
}

/// Columns written without min/max statistics. Pseudonyms are uniformly spread hashes and
/// the file checksum is one value per file, so their ranges never let a reader skip a row
/// group; keeping them costs two 64-byte comparisons per value, a visible share of ingest.
/// Date and code columns keep theirs (the incremental build reads the dates' ranges).
pub const NO_STATISTICS: &[&str] = &[
    "_file_sha256",
    "attendance_id",
    "contact_id",
    "person_key",
    "family_key",
    "child_key",
    "la_child_key",
    "local_key",
    "key_nhs",
    "key_upn",
    "key_former_upn",
    "key_demo",
    "key_demo_name",
];

/// Writes one source's rows into its partition of a curated table (see
/// [`Lake::source_writer`]).
pub struct SourceWriter {
    writer: RecordBatchWriter,
    /// `_source = <source>`; `None` for a table partitioned otherwise (written through the
    /// plain writer, which splits each batch itself).
    partition: Option<IndexMap<String, delta_kernel::expressions::Scalar>>,
}

impl SourceWriter {
    /// Streams a batch into Parquet files; nothing is visible until the files are committed.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        match &self.partition {
            Some(p) => {
                self.writer
                    .write_partition(batch, p, deltalake::writer::WriteMode::Default)
                    .await?;
            }
            None => deltalake::writer::DeltaWriter::write(&mut self.writer, batch).await?,
        }
        Ok(())
    }

    /// Forgets everything written since the last flush (never committed, so never seen).
    pub fn reset(&mut self) {
        self.writer.reset();
    }

    /// Finishes the Parquet files and returns their add actions for [`Lake::commit_files`].
    pub async fn flush(&mut self) -> Result<Vec<Add>> {
        Ok(deltalake::writer::DeltaWriter::flush(&mut self.writer).await?)
    }
}

/// Where curated tables live.
pub const CURATED: &str = "curated";
/// Where operational tables (quarantine, runs…) live.
pub const OPS: &str = "ops";

/// How a commit changes a table.
#[derive(Debug, Clone)]
pub enum WriteMode {
    /// Add rows.
    Append,
    /// Replace the whole table.
    Overwrite,
}

/// The lake root and its object store.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    store: Arc<dyn ObjectStore>,
}

impl Lake {
    /// A lake on a given store, rooted at `root` (e.g. `memory:///lake/`). Tests use it to
    /// put a fault-injecting store under the lake.
    pub fn with_store(root: Url, store: Arc<dyn ObjectStore>) -> Self {
        Self { root, store }
    }

    /// Opens a lake at a local path (created if absent) or an object-store URL (`s3://…`,
    /// credentials from the environment).
    pub fn open(location: &str) -> Result<Self> {
        let root = if location.contains("://") {
            let mut url = Url::parse(location)
                .with_context(|| format!("lake location {location:?} is not a valid URL"))?;
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            url
        } else {
            std::fs::create_dir_all(location)
                .with_context(|| format!("cannot create the lake folder {location}"))?;
            let abs = std::fs::canonicalize(location)?;
            Url::from_directory_path(&abs)
                .map_err(|_| anyhow::anyhow!("{} is not an absolute path", abs.display()))?
        };
        let store: Arc<dyn ObjectStore> = match root.scheme() {
            "file" => Arc::new(object_store::local::LocalFileSystem::new()),
            "s3" => s3::store(&root)?,
            "memory" => Arc::new(object_store::memory::InMemory::new()),
            other => bail!(
                "lake scheme {other}:// is not supported; use a local path or s3://bucket/prefix"
            ),
        };
        Ok(Self { root, store })
    }

    /// The lake's root URL.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The object store behind the lake.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The object-store path of `relative` under the lake root.
    pub fn object_path(&self, relative: &str) -> Path {
        let url = self
            .root
            .join(relative)
            .expect("relative lake paths are valid URL paths");
        // Both the local store (rooted at `/`) and the S3 store (rooted at the bucket) take
        // the URL path as the object path.
        Path::from_url_path(url.path()).expect("valid object path")
    }

    /// URL of a table, e.g. `curated/registrations`.
    pub fn table_url(&self, area: &str, name: &str) -> Url {
        self.root
            .join(&format!("{area}/{name}/"))
            .expect("table names are URL-safe")
    }

    fn builder(&self, url: Url) -> Result<DeltaTableBuilder> {
        // Always hand deltalake our store, so the lake's store (S3 with its settings, or a
        // test's fault-injecting wrapper) is the one every commit goes through.
        Ok(DeltaTableBuilder::from_url(url)?
            .with_storage_backend(self.store.clone(), self.root.clone()))
    }

    /// Loads the latest version of a table; `None` when it has never been committed.
    pub async fn table(&self, area: &str, name: &str) -> Result<Option<DeltaTable>> {
        use futures::StreamExt as _;
        let log = self.object_path(&format!("{area}/{name}/_delta_log/"));
        let first = self
            .store
            .list(Some(&log))
            .next()
            .await
            .transpose()
            .with_context(|| format!("cannot list {area}/{name}"))?;
        if first.is_none() {
            return Ok(None);
        }
        let url = self.table_url(area, name);
        let mut table = self.builder(url)?.build()?;
        match table.load().await {
            Ok(()) => Ok(Some(table)),
            Err(deltalake::DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot load table {area}/{name}")),
        }
    }

    /// A value the latest commit of a table recorded in its commit metadata (the `metadata`
    /// of [`Lake::replace`] and the like), or `None` when there is no table or no such value.
    pub async fn last_commit_value(
        &self,
        area: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>> {
        use futures::StreamExt as _;
        let Some(table) = self.table(area, name).await? else {
            return Ok(None);
        };
        let latest = table
            .history(Some(1))
            .next()
            .await
            .transpose()
            .with_context(|| format!("cannot read the history of {area}/{name}"))?;
        Ok(latest.and_then(|c| c.info.get(key).cloned()))
    }

    /// Whether the application transaction `app_id` was committed to the table.
    pub async fn has_transaction(&self, area: &str, name: &str, app_id: &str) -> Result<bool> {
        let Some(table) = self.table(area, name).await? else {
            return Ok(false);
        };
        let state = table.snapshot()?;
        Ok(state
            .transaction_version(table.log_store().as_ref(), app_id)
            .await?
            .is_some())
    }

    /// Commits `batches` to a table in one Delta transaction, creating the table on first
    /// use. Returns the new version. With `app_id`, the commit records that application
    /// transaction, so [`Lake::has_transaction`] finds it afterwards.
    pub async fn commit(
        &self,
        area: &str,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
        app_id: Option<&str>,
        metadata: HashMap<String, serde_json::Value>,
    ) -> Result<i64> {
        let table = self.table_or_create(area, name, &schema, &[]).await?;
        let mut props = CommitProperties::default().with_metadata(metadata);
        if let Some(id) = app_id {
            props = props.with_application_transaction(Transaction::new(id, 1));
        }
        let builder = table
            .write(batches)
            .with_commit_properties(props)
            .with_writer_properties(writer_properties());
        let builder = match mode {
            // New columns in a later release are merged into an existing table's schema.
            WriteMode::Append => builder
                .with_save_mode(SaveMode::Append)
                .with_schema_mode(deltalake::operations::write::SchemaMode::Merge),
            WriteMode::Overwrite => builder.with_save_mode(SaveMode::Overwrite),
        };
        let table = builder.await.with_context(|| {
            format!("commit to {area}/{name} failed; the previous version is unchanged")
        })?;
        Ok(table.version().map_or(0, |v| v as i64))
    }

    /// Replaces a derived table's contents (and schema) in one Delta transaction recording
    /// `app_id`. Used for metric outputs, which are recomputed whole.
    pub async fn replace(
        &self,
        area: &str,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        app_id: &str,
        metadata: HashMap<String, serde_json::Value>,
    ) -> Result<i64> {
        // An empty result is still a new version (the table now has no rows): deltalake
        // wants at least one batch to write, so give it an empty one.
        let batches = if batches.is_empty() {
            vec![RecordBatch::new_empty(schema.clone())]
        } else {
            batches
        };
        self.overwrite(area, name, app_id, metadata, |t| t.write(batches))
            .await
    }

    /// As [`Lake::replace`], with the rows streamed from a DataFusion plan executed in
    /// `ctx` (a table of any size, never whole in memory).
    /// `target_file_size` cuts the rows into files of about that size, in the plan's order
    /// (deltalake's default otherwise).
    #[allow(clippy::too_many_arguments)]
    pub async fn replace_plan(
        &self,
        area: &str,
        name: &str,
        plan: datafusion::logical_expr::LogicalPlan,
        ctx: &SessionContext,
        app_id: &str,
        metadata: HashMap<String, serde_json::Value>,
        target_file_size: Option<std::num::NonZeroU64>,
    ) -> Result<i64> {
        self.overwrite(area, name, app_id, metadata, |t| {
            let write = t
                .write(Vec::new())
                .with_input_plan(plan)
                .with_session_state(Arc::new(ctx.state()));
            match target_file_size {
                Some(size) => write.with_target_file_size(Some(size)),
                None => write,
            }
        })
        .await
    }

    /// Replaces the rows of an existing table that match `predicate` with the rows `plan`
    /// produces (each of which must match it too), in one commit recording `app_id` (Delta's
    /// replaceWhere). Files whose statistics show no matching row are left as they are;
    /// files holding some are rewritten without them. The table keeps its schema.
    #[allow(clippy::too_many_arguments)]
    pub async fn replace_where_plan(
        &self,
        area: &str,
        name: &str,
        plan: datafusion::logical_expr::LogicalPlan,
        predicate: datafusion::prelude::Expr,
        ctx: &SessionContext,
        app_id: &str,
        metadata: HashMap<String, serde_json::Value>,
    ) -> Result<i64> {
        let table = self
            .table(area, name)
            .await?
            .with_context(|| format!("{area}/{name} does not exist: nothing to replace rows of"))?;
        let write = table
            .write(Vec::new())
            .with_input_plan(plan)
            .with_session_state(Arc::new(ctx.state()))
            .with_replace_where(predicate);
        commit_overwrite(area, name, write, app_id, metadata).await
    }

    /// How many data files the latest version of a table has (`None` for no table).
    pub async fn file_count(&self, area: &str, name: &str) -> Result<Option<usize>> {
        let Some(table) = self.table(area, name).await? else {
            return Ok(None);
        };
        Ok(Some(table.snapshot()?.log_data().num_files()))
    }

    /// Replaces a table's contents and schema with what `input`'s write produces, in one
    /// commit recording `app_id`.
    async fn overwrite(
        &self,
        area: &str,
        name: &str,
        app_id: &str,
        metadata: HashMap<String, serde_json::Value>,
        input: impl FnOnce(DeltaTable) -> deltalake::operations::write::WriteBuilder,
    ) -> Result<i64> {
        let table = match self.table(area, name).await? {
            Some(t) => t,
            // A new table is created by its first write, in the same commit: a reader (or a
            // crash between two commits) never sees it existing but empty.
            None => self.builder(self.table_url(area, name))?.build()?,
        };
        let write =
            input(table).with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
        commit_overwrite(area, name, write, app_id, metadata).await
    }

    /// Loads a table, creating it empty (with `partition_by`) when it does not exist yet.
    pub async fn table_or_create(
        &self,
        area: &str,
        name: &str,
        schema: &SchemaRef,
        partition_by: &[&str],
    ) -> Result<DeltaTable> {
        if let Some(t) = self.table(area, name).await? {
            return Ok(t);
        }
        let table = self.builder(self.table_url(area, name))?.build()?;
        let kernel_schema: deltalake::kernel::StructType = schema.as_ref().try_into_kernel()?;
        table
            .create()
            .with_columns(kernel_schema.fields().cloned())
            .with_partition_columns(partition_by.iter().map(|c| c.to_string()))
            .with_table_name(name)
            .with_save_mode(SaveMode::Ignore)
            .await
            .with_context(|| format!("cannot create table {area}/{name}"))
    }

    /// A streaming writer for the rows of one source: batches written to it become Parquet
    /// files as they come (memory stays flat), and nothing is visible until
    /// [`Lake::commit_files`]. A curated table is partitioned by `_source`, so every batch of
    /// a file belongs to one partition and is written straight into it: deltalake's plain
    /// writer would sort and copy each batch to split it by partition.
    pub fn source_writer(&self, table: &DeltaTable, source: &str) -> Result<SourceWriter> {
        let partitioned = table.snapshot()?.metadata().partition_columns().to_vec();
        let partition = (partitioned == ["_source"]).then(|| {
            IndexMap::from([(
                "_source".to_string(),
                delta_kernel::expressions::Scalar::String(source.to_string()),
            )])
        });
        Ok(SourceWriter {
            writer: RecordBatchWriter::for_table(table)?
                .with_writer_properties(writer_properties()),
            partition,
        })
    }

    /// Commits files written by a [`Lake::source_writer`] in one Delta transaction. With
    /// `replace_partition = Some((column, value))`, every file of that partition in the
    /// current version is removed in the same commit (a snapshot load).
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_files(
        &self,
        table: &DeltaTable,
        adds: Vec<Add>,
        replace_partition: Option<(&str, &str)>,
        app_id: &str,
        metadata: HashMap<String, serde_json::Value>,
    ) -> Result<i64> {
        let snapshot = table.snapshot()?;
        let mut actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
        if let Some((column, value)) = replace_partition {
            for f in snapshot.log_data().iter() {
                if f.partition_values_map()
                    .get(column)
                    .is_some_and(|v| v.as_deref() == Some(value))
                {
                    actions.push(Action::Remove(f.remove_action(true)));
                }
            }
        }
        let partition_by: Vec<String> = snapshot.metadata().partition_columns().to_vec();
        let operation = DeltaOperation::Write {
            mode: if replace_partition.is_some() {
                SaveMode::Overwrite
            } else {
                SaveMode::Append
            },
            partition_by: (!partition_by.is_empty()).then_some(partition_by),
            predicate: replace_partition.map(|(c, v)| format!("{c} = '{}'", v.replace('\'', "''"))),
        };
        let props = CommitProperties::default()
            .with_metadata(metadata)
            .with_application_transaction(Transaction::new(app_id, 1));
        let done = CommitBuilder::from(props)
            .with_actions(actions)
            .build(Some(snapshot), table.log_store(), operation)
            .await
            .context("commit failed; the previous version is unchanged")?;
        Ok(done.version() as i64)
    }

    /// Registers a table with a DataFusion session under `name`. Returns the Delta version
    /// registered, or `None` when the table does not exist yet.
    pub async fn register(
        &self,
        ctx: &SessionContext,
        area: &str,
        table: &str,
        name: &str,
    ) -> Result<Option<i64>> {
        let Some(t) = self.table(area, table).await? else {
            return Ok(None);
        };
        t.update_datafusion_session(&ctx.state())?;
        let provider = t.table_provider().await?;
        ctx.register_table(name, provider)?;
        Ok(Some(t.version().map_or(-1, |v| v as i64)))
    }

    /// Reads a whole table (all columns), or `None` when it does not exist.
    pub async fn read(&self, area: &str, name: &str) -> Result<Option<Vec<RecordBatch>>> {
        self.read_columns(area, name, &[]).await
    }

    /// Reads some columns of a table (all when `columns` is empty), or `None` when it does
    /// not exist. Reading only what is needed keeps memory down on large tables.
    pub async fn read_columns(
        &self,
        area: &str,
        name: &str,
        columns: &[&str],
    ) -> Result<Option<Vec<RecordBatch>>> {
        self.read_selected(area, name, columns, false).await
    }

    /// As [`Lake::read_columns`], leaving out the requested columns the table does not have
    /// (a table written before a column was added to its source).
    pub async fn read_present_columns(
        &self,
        area: &str,
        name: &str,
        columns: &[&str],
    ) -> Result<Option<Vec<RecordBatch>>> {
        self.read_selected(area, name, columns, true).await
    }

    /// As [`Lake::read_present_columns`], one batch at a time (the table is never whole in
    /// memory).
    pub async fn stream_present_columns(
        &self,
        area: &str,
        name: &str,
        columns: &[&str],
    ) -> Result<Option<datafusion::execution::SendableRecordBatchStream>> {
        let Some(df) = self.select(area, name, columns, true).await? else {
            return Ok(None);
        };
        Ok(Some(
            df.execute_stream()
                .await
                .with_context(|| format!("cannot read {area}/{name}"))?,
        ))
    }

    async fn read_selected(
        &self,
        area: &str,
        name: &str,
        columns: &[&str],
        skip_missing: bool,
    ) -> Result<Option<Vec<RecordBatch>>> {
        let Some(df) = self.select(area, name, columns, skip_missing).await? else {
            return Ok(None);
        };
        Ok(Some(
            df.collect()
                .await
                .with_context(|| format!("cannot read {area}/{name}"))?,
        ))
    }

    /// The table's `columns` (all when empty) as a DataFrame, or `None` when the table does
    /// not exist; `skip_missing` leaves out the columns it does not have.
    async fn select(
        &self,
        area: &str,
        name: &str,
        columns: &[&str],
        skip_missing: bool,
    ) -> Result<Option<datafusion::dataframe::DataFrame>> {
        let ctx = SessionContext::new();
        if self.register(&ctx, area, name, "t").await?.is_none() {
            return Ok(None);
        }
        let mut df = ctx.table("t").await?;
        let wanted: Vec<&str> = columns
            .iter()
            .copied()
            .filter(|c| !skip_missing || df.schema().field_with_unqualified_name(c).is_ok())
            .collect();
        if !columns.is_empty() {
            df = df.select_columns(&wanted)?;
        }
        Ok(Some(df))
    }

    /// Writes an object only if nothing is at `relative` yet. Returns false when it existed.
    pub async fn put_if_absent(&self, relative: &str, bytes: Bytes) -> Result<bool> {
        let path = self.object_path(relative);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot write {relative} in the lake")),
        }
    }

    /// Writes (or overwrites) one object: for outputs such as rendered reports, where the
    /// object is complete when the put returns and nothing else points at it.
    pub async fn put(&self, relative: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(&self.object_path(relative), PutPayload::from(bytes))
            .await
            .with_context(|| format!("cannot write {relative} in the lake"))?;
        Ok(())
    }

    /// Reads an object, or `None` when absent.
    pub async fn get(&self, relative: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.object_path(relative)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {relative} from the lake")),
        }
    }

    /// Checks the pseudonymisation key against the lake's fingerprint, recording it on first
    /// use. Keys cannot be mixed in one lake: rotating means a full re-ingest into a new lake.
    pub async fn check_key(&self, fingerprint: &str) -> Result<()> {
        const PATH: &str = "_meta/key_fingerprint";
        if self
            .put_if_absent(PATH, Bytes::from(fingerprint.to_string()))
            .await?
        {
            return Ok(());
        }
        let stored = self.get(PATH).await?.unwrap_or_default();
        if stored.as_ref() != fingerprint.as_bytes() {
            bail!(
                "this lake was written with a different pseudonymisation key (fingerprint {}, yours {fingerprint}); \
                 keys cannot be mixed. Use the original EARLYSTART_PSEUDONYM_KEY, or re-ingest everything into a new lake.",
                String::from_utf8_lossy(&stored)
            );
        }
        Ok(())
    }
}
