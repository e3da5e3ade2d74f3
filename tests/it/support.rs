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

/// A real SMTP server (Python's aiosmtpd) on a free local port, appending every message it
/// receives to `inbox`; stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    child: std::process::Child,
}

impl SmtpServer {
    /// Starts the server and waits until it accepts connections.
    pub fn start(inbox: &Path) -> SmtpServer {
        use std::io::BufRead as _;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("python3")
            .args(["-c", SMTP_SERVER, &port.to_string()])
            .arg(inbox)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        let server = SmtpServer { port, child };
        assert_eq!(ready.trim(), "ready");
        server
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SMTP_SERVER: &str = r#"
import sys, time
from aiosmtpd.controller import Controller
class Keep:
    async def handle_DATA(self, server, session, envelope):
        with open(sys.argv[2], "a") as f:
            f.write("TO: " + ",".join(envelope.rcpt_tos) + "\n")
            f.write(envelope.content.decode("utf8", "replace") + "\n=====\n")
        return "250 OK"
Controller(Keep(), hostname="127.0.0.1", port=int(sys.argv[1])).start()
print("ready", flush=True)
while True:
    time.sleep(1)
"#;

/// Each row of `batches` as its cells' display strings joined by `|`.
pub fn rows_text(batches: &[arrow::array::RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, i).unwrap())
                .collect();
            out.push(cells.join("|"));
        }
    }
    out
}
