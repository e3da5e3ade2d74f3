//! One run of a pipeline at a time: the lease in the lake, between tasks and processes.

use std::process::Command;
use std::time::Duration;

use earlystart::lake::Lake;
use earlystart::lake::lease::LeaseError;

fn lake(dir: &std::path::Path) -> Lake {
    Lake::open(&dir.to_string_lossy()).unwrap()
}

#[tokio::test]
async fn a_second_contender_is_refused_until_release() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let first = lake
        .acquire_lease("nightly", "first", Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(first.generation(), 1);
    match lake
        .acquire_lease("nightly", "second", Duration::from_secs(600))
        .await
    {
        Err(LeaseError::Held { holder, .. }) => {
            assert_eq!(holder.holder, "first");
            assert_eq!(holder.pid, std::process::id());
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("two holders at once"),
    }
    // Another pipeline has its own lease.
    let other = lake
        .acquire_lease("weekly", "third", Duration::from_secs(600))
        .await
        .unwrap();
    first.release().await.unwrap();
    other.release().await.unwrap();
    let second = lake
        .acquire_lease("nightly", "second", Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(second.generation(), 2);
    second.release().await.unwrap();
}

#[tokio::test]
async fn heartbeats_keep_a_lease_and_a_dead_holder_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let ttl = Duration::from_secs(1);
    let held = lake.acquire_lease("nightly", "alive", ttl).await.unwrap();
    // Past the first ttl, heartbeats (every ttl/3) still keep it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(matches!(
        lake.acquire_lease("nightly", "contender", ttl).await,
        Err(LeaseError::Held { .. })
    ));
    // The holder dies without releasing: its heartbeats stop and the lease lapses.
    drop(held);
    let state = lake
        .lease_state("nightly", chrono::Utc::now())
        .await
        .unwrap();
    assert!(state.live);
    let later = state.expires_at.unwrap() + chrono::Duration::milliseconds(10);
    assert!(!lake.lease_state("nightly", later).await.unwrap().live);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let taken = lake
        .acquire_lease("nightly", "contender", ttl)
        .await
        .unwrap();
    assert_eq!(taken.generation(), 2);
    taken.release().await.unwrap();
}

#[tokio::test]
async fn a_run_started_while_another_holds_the_lease_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    let lake = lake(&lake_dir);
    let held = lake
        .acquire_lease("nightly", "the 02:00 run", Duration::from_secs(600))
        .await
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_earlystart"))
        .arg("--project")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "nightly", "--extracts"])
        .arg(dir.path())
        .arg("--lake")
        .arg(&lake_dir)
        .env(
            "EARLYSTART_PSEUDONYM_KEY",
            "a-test-key-that-is-long-enough-for-earlystart",
        )
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running: the 02:00 run"), "{err}");
    // Nothing was written but the lease itself.
    assert!(!lake_dir.join("curated").exists());
    held.release().await.unwrap();
}
