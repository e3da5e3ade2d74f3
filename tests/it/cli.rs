//! The binary as an operator uses it: exit codes, refusal without a key, key mismatch.

use std::process::Command;

fn earlystart() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_earlystart"));
    c.arg("--project")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .env_remove("EARLYSTART_PSEUDONYM_KEY")
        .env("RUST_LOG", "warn");
    c
}

#[test]
fn demo_runs_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = earlystart()
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Files: 23 loaded, 0 skipped"), "{stdout}");
    assert!(stdout.contains("0 quarantined"), "{stdout}");
    let again = earlystart()
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("Files: 0 loaded, 23 skipped"));
}

#[test]
fn run_refuses_without_a_key_and_with_a_different_key() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    earlystart()
        .args(["generate", "--scale", "tiny", "--out"])
        .arg(&extracts)
        .output()
        .unwrap();
    let run = |key: Option<&str>| {
        let mut c = earlystart();
        c.args(["run", "nightly", "--as-at", "2025-03-31", "--extracts"])
            .arg(&extracts)
            .arg("--lake")
            .arg(dir.path().join("lake"));
        if let Some(k) = key {
            c.env("EARLYSTART_PSEUDONYM_KEY", k);
        }
        c.output().unwrap()
    };
    let out = run(None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("EARLYSTART_PSEUDONYM_KEY is not set"));
    let out = run(Some("short"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));
    assert_eq!(
        run(Some("first-key-of-this-council-0123456789"))
            .status
            .code(),
        Some(0)
    );
    let out = run(Some("another-key-entirely-0123456789abcdef"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("different pseudonymisation key"));
}

#[test]
fn validate_reports_errors_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("pipelines/broken.toml"), "schedule = \"every night\"\n[[source]]\nname = \"x\"\ncanonical = \"nope\"\npath = \"x.csv\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_earlystart"))
        .arg("--project")
        .arg(dir.path())
        .arg("validate")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.contains("broken.toml:1:12: schedule"), "{stdout}");
    assert!(
        stdout.contains("broken.toml:4:13: unknown canonical table \"nope\""),
        "{stdout}"
    );
}

#[test]
fn metric_docs_are_generated_from_the_catalogue_and_up_to_date() {
    let out = earlystart().args(["docs", "--check"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "docs/metrics.md is stale: run `earlystart docs`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    for id in ["REACH-01", "SR-06", "HV-02", "DQ-03"] {
        assert!(text.contains(&format!("### {id} — ")), "{id} undocumented");
    }
    assert!(text.contains("| `ci_method` |"));
}

#[test]
fn run_history_records_steps_and_failures_and_status_shows_the_next_slot() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("demo/lake");
    let demo = earlystart()
        .args(["demo", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    assert_eq!(demo.status.code(), Some(0));
    // A run that fails (no such extracts folder) is recorded with its error.
    let failed = earlystart()
        .args(["run", "nightly", "--extracts"])
        .arg(dir.path().join("no-such-folder"))
        .arg("--lake")
        .arg(&lake)
        .env(
            "EARLYSTART_PSEUDONYM_KEY",
            earlystart::identity::pseudonym::DEMO_KEY,
        )
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(2));
    let runs = earlystart()
        .args(["runs", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&runs.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("| nightly")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    // Newest first: the failure, then the demo with every step and its duration.
    assert!(
        lines[0].contains("| failed") && lines[0].contains("does not exist"),
        "{text}"
    );
    assert!(
        lines[1].contains("| demo") && lines[1].contains("| clean"),
        "{text}"
    );
    for step in ["reference", "ingest", "linkage", "metrics"] {
        assert!(
            lines[1].contains(&format!("{step} ")),
            "{step} missing: {text}"
        );
    }
    let status = earlystart()
        .args(["status", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("| failed"), "{text}");
    assert!(text.contains("0 2 * * * (Europe/London)"), "{text}");
    assert!(
        text.contains("02:00 GMT") || text.contains("02:00 BST"),
        "{text}"
    );
}
