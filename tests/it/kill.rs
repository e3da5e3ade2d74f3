//! Crash safety proven with real kills: the nightly run (ingest, linkage, metric catalogue)
//! is SIGKILLed at seeded random moments; after every kill the lake must be readable with
//! every source file either wholly in or wholly out of every table, and a final rerun must
//! leave exactly what a clean run leaves. `EARLYSTART_KILLS=N` kills more often (default 5).

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use earlystart::generate::{Scale, generate};
use earlystart::lake::Lake;
use rand::{Rng as _, SeedableRng as _};

use crate::crash::contents;

fn nightly(extracts: &Path, lake: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_earlystart"));
    c.arg("--project")
        .arg(env!("CARGO_MANIFEST_DIR"))
        // Ingest, linkage and metrics: the parts with commits to interrupt (reports are plain
        // files, written after them).
        .args([
            "run",
            "nightly",
            "--no-reports",
            "--as-at",
            "2025-03-31",
            "--extracts",
        ])
        .arg(extracts)
        .arg("--lake")
        .arg(lake)
        .env(
            "EARLYSTART_PSEUDONYM_KEY",
            "kill-harness-key-synthetic-data-only-000",
        )
        // A killed holder's lease lapses after a second, so the next run can take over.
        .env("EARLYSTART_LEASE_TTL_SECS", "1")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// Runs to completion, waiting out the lease of a killed run (exit 75).
fn run_to_end(extracts: &Path, lake: &Path) -> ExitStatus {
    loop {
        let status = nightly(extracts, lake).status().unwrap();
        if status.code() != Some(75) {
            return status;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
}

#[test]
fn sigkill_at_seeded_moments_never_leaves_partial_or_duplicate_rows() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 11, false, &extracts).unwrap();

    let clean_lake = dir.path().join("clean");
    let t0 = Instant::now();
    assert!(matches!(
        run_to_end(&extracts, &clean_lake).code(),
        Some(0 | 1)
    ));
    let clean_run = t0.elapsed();

    let kills: usize = std::env::var("EARLYSTART_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261123);
    let lake_dir = dir.path().join("killed");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (clean, clean_files) = rt.block_on(contents(
        &Lake::open(&clean_lake.to_string_lossy()).unwrap(),
    ));
    let mut completed_early = 0;
    for i in 0..kills {
        // Wait out a previous victim's lease so this run really starts.
        std::thread::sleep(Duration::from_millis(1100));
        let mut child = nightly(&extracts, &lake_dir).spawn().unwrap();
        let at = clean_run.mul_f64(rng.random_range(0.02..1.0));
        std::thread::sleep(at);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if finished {
            // It finished before the kill: the lake is complete, so a later run would skip
            // everything and no kill could land inside it. Start the next one from nothing.
            completed_early += 1;
            std::fs::remove_dir_all(&lake_dir).unwrap();
            continue;
        }
        // Every table readable, every file wholly in or out.
        let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
        let (_, files) = rt.block_on(contents(&lake));
        for ((table, sha), n) in &files {
            assert_eq!(
                clean_files.get(&(table.clone(), sha.clone())),
                Some(n),
                "kill {i} at {at:?}: {table} holds {n} rows of file {sha}"
            );
        }
        let metric_values = rt.block_on(lake.read("metrics", "metric_values")).unwrap();
        if let Some(b) = metric_values {
            let ours: usize = b.iter().map(|b| b.num_rows()).sum();
            let theirs: usize = rt
                .block_on(
                    Lake::open(&clean_lake.to_string_lossy())
                        .unwrap()
                        .read("metrics", "metric_values"),
                )
                .unwrap()
                .unwrap()
                .iter()
                .map(|b| b.num_rows())
                .sum();
            assert_eq!(ours, theirs, "kill {i}: metric_values is a whole version");
        }
    }
    assert!(completed_early < kills, "no kill landed inside a run");
    std::thread::sleep(Duration::from_millis(1100));
    assert!(matches!(
        run_to_end(&extracts, &lake_dir).code(),
        Some(0 | 1)
    ));
    let (after, after_files) =
        rt.block_on(contents(&Lake::open(&lake_dir.to_string_lossy()).unwrap()));
    assert_eq!(after_files, clean_files);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        clean.keys().collect::<Vec<_>>()
    );
    for (table, rows) in &clean {
        assert_eq!(&after[table], rows, "{table} differs from a clean run");
    }
}
