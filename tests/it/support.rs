//! Shared helpers: run the shipped nightly pipeline on a folder into a temporary lake.

use std::path::{Path, PathBuf};

use earlystart::identity::Pseudonymiser;
use earlystart::lake::Lake;
use earlystart::pipeline::{self, RunOptions, RunSummary};

/// The repository root (holds pipelines/ and reference/).
pub fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `pipelines/nightly.toml` over `extracts` into the lake at `lake`.
pub async fn run_nightly(extracts: &Path, lake: &Path) -> RunSummary {
    let pipeline =
        earlystart::config::load(&project(), "nightly").expect("shipped pipeline is valid");
    let opts = RunOptions {
        project: project(),
        extracts: Some(extracts.to_path_buf()),
        lake: Lake::open(&lake.to_string_lossy()).expect("lake opens"),
        as_at: Some(earlystart::generate::AS_AT),
        pseudonymiser: Pseudonymiser::demo(),
        trigger: "test".into(),
        progress: false,
    };
    let summary = pipeline::run(&pipeline, &opts).await.expect("run succeeds");
    pipeline::record_run(&opts.lake, &summary)
        .await
        .expect("run recorded");
    summary
}
