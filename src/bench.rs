//! `earlystart bench`: ingest throughput at a chosen scale, beside DuckDB.

use std::path::Path;

use anyhow::Result;

use crate::generate::Scale;

/// Placeholder until the benchmark lands.
pub async fn run(_project: &Path, _scale: Scale, _dir: &Path) -> Result<i32> {
    anyhow::bail!("bench is not implemented yet")
}
