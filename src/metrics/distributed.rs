//! Lake tables as a distributed engine can read them. A Delta table provider lives in this
//! process only: Ballista ships the logical plan to its scheduler as protobuf, which knows
//! Parquet listing tables and views but not Delta. So each table is registered as what its
//! current Delta version *is*: the exact Parquet files of that version (never a folder
//! listing, which would also see files that later versions removed), with the partition
//! column put back from the `column=value` folder each file sits in.
//!
//! Tables the run makes itself (the project's inputs, each model's output, empty optional
//! tables) are written as Parquet to a scratch folder in the lake, where every executor can
//! read them, and removed when the session closes.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use bytes::Bytes;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlanBuilder, cast, ident, lit};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use futures::TryStreamExt as _;
use object_store::ObjectStoreExt as _;
use parquet::arrow::ArrowWriter;

use crate::lake::Lake;

/// Delta's folder name for a null partition value.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// A scratch folder in the lake for the tables a distributed session makes.
#[derive(Debug, Clone)]
pub struct Scratch {
    lake: Lake,
    prefix: String,
}

impl Scratch {
    /// A new, empty scratch folder (`_scratch/<uuid>`; names starting with `_` are not
    /// tables of any area).
    pub fn new(lake: &Lake) -> Self {
        Self {
            lake: lake.clone(),
            prefix: format!("_scratch/{}", uuid::Uuid::new_v4()),
        }
    }

    /// Writes `batches` as one Parquet file and registers it as `name`, replacing any table
    /// of that name.
    pub async fn put_table(
        &self,
        ctx: &SessionContext,
        name: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<()> {
        let schema = plain_strings(&schema);
        let url = self.write(name, schema.clone(), batches).await?;
        let table = listing_table(vec![url], schema)?;
        let _ = ctx.deregister_table(name)?;
        ctx.register_table(name, table)?;
        Ok(())
    }

    /// Writes `batches` as one Parquet file in the scratch folder; returns its URL.
    pub async fn write(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<String> {
        let schema = plain_strings(&schema);
        let mut buffer = Vec::new();
        let mut writer = ArrowWriter::try_new(
            &mut buffer,
            schema.clone(),
            Some(crate::lake::writer_properties()),
        )?;
        for b in batches {
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| arrow::compute::cast(c, f.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
        }
        writer.close()?;
        let relative = format!("{}/{name}/part-0.parquet", self.prefix);
        self.lake.put(&relative, Bytes::from(buffer)).await?;
        Ok(self.lake.root().join(&relative)?.to_string())
    }

    /// Deletes the scratch folder.
    pub async fn remove(&self) -> Result<()> {
        let store = self.lake.store();
        let prefix = self.lake.object_path(&format!("{}/", self.prefix));
        let paths: Vec<_> = store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for p in paths {
            store
                .delete(&p)
                .await
                .with_context(|| format!("cannot delete scratch file {p}"))?;
        }
        Ok(())
    }
}

/// Registers the current version of a lake table as Parquet files (see the module docs).
/// Returns the Delta version, or `None` when the table does not exist.
pub async fn register_files(
    lake: &Lake,
    ctx: &SessionContext,
    scratch: &Scratch,
    area: &str,
    name: &str,
) -> Result<Option<i64>> {
    let Some(table) = lake.table(area, name).await? else {
        return Ok(None);
    };
    let version = table.version().map_or(-1, |v| v as i64);
    let schema = plain_strings(&table.table_provider().await?.schema());
    let partition_columns: Vec<String> = table.snapshot()?.metadata().partition_columns().to_vec();
    // Files grouped by their partition values, in a stable order.
    let mut groups: BTreeMap<Vec<Option<String>>, Vec<String>> = BTreeMap::new();
    for uri in table.get_file_uris()? {
        let values = partition_columns
            .iter()
            .map(|c| partition_value(&uri, c))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("{area}/{name}: file {uri}"))?;
        groups.entry(values).or_default().push(uri);
    }
    if groups.is_empty() {
        scratch.put_table(ctx, name, schema, &[]).await?;
        return Ok(Some(version));
    }
    let file_schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| !partition_columns.contains(f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    ));
    if partition_columns.is_empty() {
        let files = groups.into_values().next().unwrap_or_default();
        ctx.register_table(name, listing_table(files, file_schema)?)?;
        return Ok(Some(version));
    }
    // One scan per partition, the partition columns added back as constants in their
    // place, all unioned under a view with the table's own column order.
    let mut plan: Option<LogicalPlanBuilder> = None;
    for (values, files) in groups {
        let scan = LogicalPlanBuilder::scan(
            name,
            provider_as_source(listing_table(files, file_schema.clone())?),
            None,
        )?;
        let columns = schema.fields().iter().map(|f| {
            match partition_columns.iter().position(|c| c == f.name()) {
                Some(i) => {
                    let value = match &values[i] {
                        Some(v) => lit(v.clone()),
                        None => lit(ScalarValue::Utf8(None)),
                    };
                    cast(value, f.data_type().clone()).alias(f.name())
                }
                None => ident(f.name()),
            }
        });
        let part = scan.project(columns)?.build()?;
        plan = Some(match plan {
            None => LogicalPlanBuilder::from(part),
            Some(p) => p.union(part)?,
        });
    }
    let plan = plan.expect("at least one partition").build()?;
    ctx.register_table(name, Arc::new(ViewTable::new(plan, None)))?;
    Ok(Some(version))
}

/// The schema with string and binary views as plain strings and binaries. Batches travel
/// between Ballista's processes as Arrow IPC, which sends a view array's whole data buffers
/// however few rows it holds: a county result of views shared with large buffers grew the
/// client past 18 GiB. Plain strings are copied row by row, so a batch carries its own.
pub fn plain_strings(schema: &Schema) -> SchemaRef {
    use arrow::datatypes::{DataType, Field};
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let plain = match f.data_type() {
                DataType::Utf8View => DataType::Utf8,
                DataType::BinaryView => DataType::Binary,
                other => other.clone(),
            };
            f.as_ref().clone().with_data_type(plain)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// A Parquet listing table over exactly these files.
pub fn listing_table(files: Vec<String>, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let urls = files
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// The value of `column` in the `column=value` folder of a file URI (`None` for Delta's
/// null folder).
fn partition_value(uri: &str, column: &str) -> Result<Option<String>> {
    let key = format!("{column}=");
    let segment = uri
        .split('/')
        .find_map(|s| s.strip_prefix(key.as_str()))
        .with_context(|| format!("no {column}= folder in the file's path"))?;
    let value = percent_decode(segment);
    Ok((value != NULL_PARTITION).then_some(value))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_come_from_the_folder_names() {
        let uri = "file:///lake/curated/chis/_source=chis%20north/part-0.parquet";
        assert_eq!(
            partition_value(uri, "_source").unwrap().as_deref(),
            Some("chis north")
        );
        let null = "s3://b/l/curated/x/_source=__HIVE_DEFAULT_PARTITION__/p.parquet";
        assert_eq!(partition_value(null, "_source").unwrap(), None);
        assert_eq!(percent_decode("a+b%2Fc"), "a+b/c");
        assert!(partition_value("file:///lake/x/p.parquet", "_source").is_err());
    }
}
