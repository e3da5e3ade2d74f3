//! PDF through headless Chromium's print-to-PDF: the same HTML and print CSS, so the PDF and
//! the web page never disagree. Chromium is the Debian package `chromium` (scripts/test
//! installs it) or any binary named by `EARLYSTART_CHROMIUM`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// A Chromium binary that can print.
#[derive(Debug, Clone)]
pub struct Chromium {
    binary: PathBuf,
}

/// Flags for a headless run on a machine with no network and no display: no first-run
/// screens, no background connections (a closed network would refuse them many times over).
const FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
];

impl Chromium {
    /// `EARLYSTART_CHROMIUM`, else the first of chromium, chromium-browser, google-chrome on
    /// the PATH.
    pub fn find() -> Option<Chromium> {
        if let Ok(path) = std::env::var("EARLYSTART_CHROMIUM") {
            return Some(Chromium {
                binary: path.into(),
            });
        }
        let path = std::env::var_os("PATH")?;
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            for dir in std::env::split_paths(&path) {
                let candidate = dir.join(name);
                if candidate.is_file() {
                    return Some(Chromium { binary: candidate });
                }
            }
        }
        None
    }

    /// The binary used.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Prints a local HTML file to PDF bytes.
    pub async fn print_to_pdf(&self, html: &Path) -> Result<Vec<u8>> {
        let dir = html.parent().context("HTML file has no folder")?;
        let out = html.with_extension("pdf");
        let profile = dir.join(format!("profile-{}", uuid::Uuid::new_v4()));
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--print-to-pdf={}", out.display()))
            .arg(
                url::Url::from_file_path(html)
                    .map_err(|_| anyhow::anyhow!("not an absolute path: {}", html.display()))?
                    .as_str(),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .context("Chromium took more than 120 s to print a report")??;
        let _ = std::fs::remove_dir_all(&profile);
        if !output.status.success() || !out.is_file() {
            bail!(
                "Chromium ({}) could not print {}: {}",
                self.binary.display(),
                html.display(),
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        let bytes = std::fs::read(&out)?;
        let _ = std::fs::remove_file(&out);
        Ok(bytes)
    }
}
