//! The metric catalogue on a real Ballista cluster: a scheduler and two executors started
//! as separate `earlystart ballista` processes, the catalogue run with `--engine
//! ballista://…` on a copy of the metric fixture world, and every metric value compared
//! with the in-process run's. Both executors must have run tasks.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::metrics::world_lake;

/// Child processes killed when dropped.
struct Cluster(Vec<Child>);

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn earlystart() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_earlystart"));
    c.arg("--project").arg(env!("CARGO_MANIFEST_DIR"));
    c
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every metric value of a lake, sorted, as CSV.
fn metric_values(lake: &Path) -> String {
    let query = "select metric_id, period_type, period_end, geography_type, \
        coalesce(geography_code, '') as g, breakdown_type, coalesce(breakdown_value, '') as b, \
        numerator, denominator, round(value, 9) as v, round(lower_95, 9) as l, \
        round(upper_95, 9) as u, comparison \
        from metric_values order by 1, 2, 3, 4, 5, 6, 7";
    let out = earlystart()
        .args(["sql", "--format", "csv", "--lake"])
        .arg(lake)
        .args(["-c", query])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_catalogue_on_a_ballista_cluster_gives_the_local_figures() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    copy_dir(world_lake(), &lake);

    let mut scheduler = earlystart()
        .args(["ballista", "scheduler", "--bind", "127.0.0.1:0"])
        // Without operator metrics (see src/ballista.rs) it warns once per stage.
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(scheduler.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line.trim().trim_start_matches("listening on ").to_string();
    let mut cluster = Cluster(vec![scheduler]);
    let mut logs = Vec::new();
    for i in 0..2 {
        let log = dir.path().join(format!("executor{i}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cluster.0.push(
            earlystart()
                .args(["ballista", "executor", "--scheduler", &address])
                .args(["--port", &free_port().to_string()])
                .args(["--grpc-port", &free_port().to_string()])
                .args(["--concurrent-tasks", "2", "--work-dir"])
                .arg(dir.path().join(format!("work{i}")))
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .unwrap(),
        );
        logs.push(log);
    }
    // Both executors register with the scheduler before the first job.
    let registered = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("Executor registration succeed")
    };
    for _ in 0..100 {
        if logs.iter().all(|l| registered(l)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        logs.iter().all(|l| registered(l)),
        "executors did not register"
    );

    let out = earlystart()
        .args(["metrics", "--force", "--engine"])
        .arg(format!("ballista://{address}"))
        .arg("--lake")
        .arg(&lake)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("data tests passed"), "{stdout}");

    let distributed = metric_values(&lake);
    assert!(distributed.lines().count() > 1000, "{distributed}");
    assert_eq!(distributed, metric_values(world_lake()));

    for log in &logs {
        let tasks = std::fs::read_to_string(log)
            .unwrap()
            .matches("Finished task")
            .count();
        assert!(tasks > 10, "{} ran {tasks} tasks", log.display());
    }
    // The run's scratch tables are gone from the lake.
    let scratch = lake.join("_scratch");
    let left = walk(&scratch);
    assert!(left.is_empty(), "{left:?}");
    drop(cluster);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for e in entries.flatten() {
        if e.file_type().unwrap().is_dir() {
            files.extend(walk(&e.path()));
        } else {
            files.push(e.path());
        }
    }
    files
}
