//! Tests against real outside tools, installed by `scripts/test` (which sets
//! EARLYSTART_EXTERNAL_TESTS=1): the Python `deltalake` package reads the lake without
//! earlystart, and the lake lives on an S3 API server (moto) started here.
//! Without the variable these tests say so and pass, so a bare `cargo test` works offline.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use earlystart::generate::{Scale, generate};

pub(crate) fn enabled(test: &str) -> bool {
    let on = std::env::var_os("EARLYSTART_EXTERNAL_TESTS").is_some();
    if !on {
        eprintln!(
            "{test}: skipped (run scripts/test, which installs the tools and sets EARLYSTART_EXTERNAL_TESTS=1)"
        );
    }
    on
}

/// Row counts of curated tables read by the Python `deltalake` package.
fn python_counts(root: &str, tables: &[&str], storage: &str) -> Vec<u64> {
    let script = format!(
        // os._exit skips interpreter teardown, where deltalake's S3 threads can abort the process.
        "import os, sys\nfrom deltalake import DeltaTable\nfor t in sys.argv[2:]:\n    print(DeltaTable(sys.argv[1] + '/curated/' + t, storage_options={storage}).to_pyarrow_table().num_rows)\nsys.stdout.flush()\nos._exit(0)\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(root)
        .args(tables)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python deltalake failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

const TABLES: &[&str] = &[
    "centres",
    "registrations",
    "attendances",
    "chis",
    "hv_contacts",
    "asq3",
    "person_link",
];

fn loaded(summary_stdout: &str, source: &str) -> u64 {
    // The summary table row: | source | file | status | read | loaded | …
    let line = summary_stdout
        .lines()
        .find(|l| l.split('|').nth(1).is_some_and(|c| c.trim() == source))
        .unwrap();
    line.split('|').nth(5).unwrap().trim().parse().unwrap()
}

fn run(extracts: &Path, lake: &str, env: &[(&str, String)]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_earlystart"));
    c.arg("--project")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "nightly", "--as-at", "2025-03-31", "--extracts"])
        .arg(extracts);
    c.args(["--lake", lake])
        .env(
            "EARLYSTART_PSEUDONYM_KEY",
            "external-test-key-synthetic-data-0123456789",
        )
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn python_deltalake_reads_the_local_lake() {
    if !enabled("python_deltalake_reads_the_local_lake") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 21, false, &extracts).unwrap();
    let lake = dir.path().join("lake");
    let stdout = run(&extracts, &lake.to_string_lossy(), &[]);
    let counts = python_counts(&lake.to_string_lossy(), TABLES, "None");
    assert_eq!(counts[1], loaded(&stdout, "cc_registrations"));
    assert_eq!(counts[2], loaded(&stdout, "cc_attendances"));
    assert_eq!(counts[5], loaded(&stdout, "asq3"));
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_lake_on_an_s3_server_round_trips() {
    if !enabled("the_lake_on_an_s3_server_round_trips") {
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server is installed by scripts/test"),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let make_bucket = format!(
        "import time, boto3\ns3 = boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\nfor _ in range(100):\n    try:\n        s3.create_bucket(Bucket='lake'); break\n    except Exception:\n        time.sleep(0.1)\n"
    );
    assert!(
        Command::new("python3")
            .arg("-c")
            .arg(make_bucket)
            .status()
            .unwrap()
            .success()
    );

    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 22, false, &extracts).unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ENDPOINT", endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
    ];
    let first = run(&extracts, "s3://lake/council", &env);
    assert!(first.contains("Files: 23 loaded"), "{first}");
    let second = run(&extracts, "s3://lake/council", &env);
    assert!(
        second.contains("Files: 0 loaded, 23 skipped"),
        "a rerun on S3 is a no-op: {second}"
    );

    let storage = format!(
        "{{'AWS_ENDPOINT_URL': '{endpoint}', 'AWS_ACCESS_KEY_ID': 'test', 'AWS_SECRET_ACCESS_KEY': 'test', 'AWS_REGION': 'us-east-1', 'AWS_ALLOW_HTTP': 'true'}}"
    );
    let counts = python_counts("s3://lake/council", TABLES, &storage);
    assert_eq!(counts[2], loaded(&first, "cc_attendances"));
    assert_eq!(counts[3], loaded(&first, "chis"));
    assert!(
        first.contains("Metrics: "),
        "the metric catalogue ran on S3: {first}"
    );

    // The lease on S3: conditional create decides between two contenders.
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("lake")
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .unwrap();
    let lake = earlystart::lake::Lake::with_store(
        url::Url::parse("s3://lake/council/").unwrap(),
        std::sync::Arc::new(store),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ttl = std::time::Duration::from_secs(600);
        let a = lake.acquire_lease("nightly", "a", ttl).await.unwrap();
        assert!(matches!(
            lake.acquire_lease("nightly", "b", ttl).await,
            Err(earlystart::lake::lease::LeaseError::Held { .. })
        ));
        // The two CLI runs above each took and released a generation.
        assert_eq!(a.generation(), 3);
        a.release().await.unwrap();
        let b = lake.acquire_lease("nightly", "b", ttl).await.unwrap();
        assert_eq!(b.generation(), 4);
        b.release().await.unwrap();
    });
}

#[test]
fn runs_are_reported_by_email_through_a_real_smtp_server() {
    if !enabled("runs_are_reported_by_email_through_a_real_smtp_server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox.txt");
    let server = crate::support::SmtpServer::start(&inbox);
    let port = server.port;

    // A project whose nightly pipeline notifies on every outcome.
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("pipelines")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for shared in ["sql", "reference", "reports"] {
        std::os::unix::fs::symlink(root.join(shared), project.join(shared)).unwrap();
    }
    let shipped = std::fs::read_to_string(root.join("pipelines/nightly.toml")).unwrap();
    std::fs::write(
        project.join("pipelines/nightly.toml"),
        format!("{shipped}\n[notify]\nemail = [\"data-team@council.example\"]\non = [\"failed\", \"clean\", \"with_rejections\"]\n"),
    )
    .unwrap();
    let extracts = dir.path().join("extracts");
    generate(Scale::Tiny, 3, false, &extracts).unwrap();
    let run = |extracts: &Path| {
        Command::new(env!("CARGO_BIN_EXE_earlystart"))
            .arg("--project")
            .arg(&project)
            .args(["run", "nightly", "--as-at", "2025-03-31", "--extracts"])
            .arg(extracts)
            .arg("--lake")
            .arg(dir.path().join("lake"))
            .env(
                "EARLYSTART_PSEUDONYM_KEY",
                "smtp-test-key-synthetic-data-only-0000",
            )
            .env("EARLYSTART_SMTP_URL", format!("smtp://127.0.0.1:{port}"))
            .env("EARLYSTART_SMTP_FROM", "earlystart@council.example")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    assert_eq!(run(&extracts).status.code(), Some(0));
    assert_eq!(run(&dir.path().join("missing")).status.code(), Some(2));
    let mail = std::fs::read_to_string(&inbox).unwrap();
    let messages: Vec<&str> = mail
        .split("=====")
        .filter(|m| m.contains("Subject"))
        .collect();
    assert_eq!(messages.len(), 2, "{mail}");
    assert!(messages[0].contains("TO: data-team@council.example"));
    assert!(
        messages[0].contains("Subject: earlystart: pipeline nightly clean"),
        "{mail}"
    );
    assert!(
        messages[0].contains("cc_registrations"),
        "the run summary is the body"
    );
    assert!(
        messages[1].contains("Subject: earlystart: pipeline nightly FAILED"),
        "{mail}"
    );
    assert!(messages[1].contains("does not exist"), "{mail}");
}
