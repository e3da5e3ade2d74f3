//! What a run did, for the terminal and the `runs` / `file_loads` tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Source;
use crate::identity::linkage::LinkStats;
use crate::sources::ExtractKind;

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Committed to its table.
    Loaded,
    /// Already ingested (I001).
    Skipped,
    /// Rejected whole (F rules).
    Rejected,
    /// No file matched the source's pattern.
    Missing,
}

impl FileStatus {
    /// Name used in `file_loads.status`.
    pub fn name(self) -> &'static str {
        match self {
            FileStatus::Loaded => "loaded",
            FileStatus::Skipped => "skipped",
            FileStatus::Rejected => "rejected",
            FileStatus::Missing => "missing",
        }
    }
}

/// One file's outcome.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// Source name.
    pub source: String,
    /// Kind.
    pub kind: ExtractKind,
    /// Path relative to the extracts folder (the pattern when missing).
    pub path: String,
    /// SHA-256 (None when missing).
    pub sha256: Option<String>,
    /// Size.
    pub bytes: u64,
    /// Outcome.
    pub status: FileStatus,
    /// Records read.
    pub rows_read: u64,
    /// Records loaded.
    pub rows_loaded: u64,
    /// Records quarantined.
    pub rows_quarantined: u64,
    /// Warnings on loaded records.
    pub warnings: u64,
    /// File-level rule when rejected.
    pub rule: Option<String>,
    /// File-level message when rejected or missing.
    pub message: Option<String>,
    /// As-at date used.
    pub as_at: Option<NaiveDate>,
    /// Time spent.
    pub duration_ms: u64,
}

impl FileReport {
    pub(crate) fn new(source: &Source, path: &str, sha256: &str, bytes: u64) -> Self {
        Self {
            source: source.name.clone(),
            kind: source.kind,
            path: path.to_string(),
            sha256: Some(sha256.to_string()),
            bytes,
            status: FileStatus::Loaded,
            rows_read: 0,
            rows_loaded: 0,
            rows_quarantined: 0,
            warnings: 0,
            rule: None,
            message: None,
            as_at: None,
            duration_ms: 0,
        }
    }

    pub(crate) fn missing(source: &Source, dir: &Path) -> Self {
        let mut r = Self::new(source, &source.path, "", 0);
        r.sha256 = None;
        r.status = FileStatus::Missing;
        // An optional source with no file is normal; a required one is reported (exit 1).
        r.message = (!source.optional)
            .then(|| format!("no file matched {:?} in {}", source.path, dir.display()));
        r
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// What started it.
    pub trigger: String,
    /// Start time.
    pub started: DateTime<Utc>,
    /// End time.
    pub finished: Option<DateTime<Utc>>,
    /// Every file seen, plus missing sources.
    pub files: Vec<FileReport>,
    /// Reference table name → SHA-256.
    pub reference_tables: BTreeMap<String, String>,
    /// Linkage quality, when linkage ran.
    pub linkage: Option<LinkStats>,
    /// Each step of the run with its outcome and duration, in order.
    pub steps: Vec<StepRecord>,
    /// Why the run failed, when it did.
    pub error: Option<String>,
}

/// One step of a run (`reference`, `ingest`, `linkage`, `metrics`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepRecord {
    /// Step name.
    pub step: String,
    /// `ok`, `skipped` (nothing to do) or `failed`.
    pub status: String,
    /// Wall time.
    pub seconds: f64,
    /// What it did, in a few words.
    pub detail: String,
}

impl RunSummary {
    /// An empty summary of a run that started at `started`.
    pub fn new(run_id: &str, pipeline: &str, trigger: &str, started: DateTime<Utc>) -> Self {
        Self {
            run_id: run_id.into(),
            pipeline: pipeline.into(),
            trigger: trigger.into(),
            started,
            finished: None,
            files: Vec::new(),
            reference_tables: BTreeMap::new(),
            linkage: None,
            steps: Vec::new(),
            error: None,
        }
    }

    /// Records a finished step.
    pub fn step(&mut self, step: &str, status: &str, started: std::time::Instant, detail: String) {
        self.steps.push(StepRecord {
            step: step.into(),
            status: status.into(),
            seconds: started.elapsed().as_secs_f64(),
            detail,
        });
    }

    /// Marks the run failed with `error` (the run record then says `failed`).
    pub fn fail(&mut self, error: &anyhow::Error) {
        self.error = Some(format!("{error:#}"));
        self.finish();
    }

    /// Stamps the end time.
    pub fn finish(&mut self) {
        self.finished = Some(Utc::now());
    }

    /// Files with a status.
    pub fn count(&self, status: FileStatus) -> usize {
        self.files.iter().filter(|f| f.status == status).count()
    }

    /// Rows loaded in this run.
    pub fn rows_loaded(&self) -> u64 {
        self.files.iter().map(|f| f.rows_loaded).sum()
    }

    /// Rows quarantined in this run.
    pub fn rows_quarantined(&self) -> u64 {
        self.files.iter().map(|f| f.rows_quarantined).sum()
    }

    /// `clean` or `with_rejections` (quarantined rows, rejected or missing files).
    pub fn status(&self) -> &'static str {
        if self.error.is_some() || self.steps.iter().any(|s| s.status == "failed") {
            return "failed";
        }
        let required_missing = self
            .files
            .iter()
            .any(|f| f.status == FileStatus::Missing && f.message.is_some());
        if self.rows_quarantined() > 0 || self.count(FileStatus::Rejected) > 0 || required_missing {
            "with_rejections"
        } else {
            "clean"
        }
    }

    /// Exit code: 0 clean, 1 ran with rejections.
    pub fn exit_code(&self) -> i32 {
        if self.status() == "clean" { 0 } else { 1 }
    }

    /// Human-readable summary table.
    pub fn render(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.set_header([
            "source",
            "file",
            "status",
            "read",
            "loaded",
            "quarantined",
            "warnings",
        ]);
        for f in &self.files {
            let status = match &f.rule {
                Some(rule) => format!("{} ({rule})", f.status.name()),
                None => f.status.name().to_string(),
            };
            t.add_row([
                f.source.clone(),
                f.path.clone(),
                status,
                f.rows_read.to_string(),
                f.rows_loaded.to_string(),
                f.rows_quarantined.to_string(),
                f.warnings.to_string(),
            ]);
        }
        let mut out = format!(
            "Run {} of pipeline {} ({})\n{t}\n",
            self.run_id,
            self.pipeline,
            self.status()
        );
        let _ = writeln!(
            out,
            "Files: {} loaded, {} skipped (already ingested), {} rejected, {} missing. Rows: {} loaded, {} quarantined.",
            self.count(FileStatus::Loaded),
            self.count(FileStatus::Skipped),
            self.count(FileStatus::Rejected),
            self.count(FileStatus::Missing),
            self.rows_loaded(),
            self.rows_quarantined()
        );
        if let Some(l) = &self.linkage {
            let _ = writeln!(
                out,
                "Linkage: {} child records → {} children; of {} registered children, {} ({:.1}%) linked to the child health register, {} to an EYFSP result, {} to social care; records linked by rule {:?}; {} ambiguous demographic keys (W009); {} components split.",
                l.records,
                l.children,
                l.registered_children,
                l.registered_linked_to_chis,
                100.0 * l.registered_linked_to_chis as f64 / l.registered_children.max(1) as f64,
                l.registered_linked_to_eyfsp,
                l.registered_linked_to_social_care,
                l.by_rule,
                l.ambiguous_demo_keys,
                l.split_components
            );
            if let (Some(q), Some(s)) = (&l.quality, &l.quality_social) {
                let _ = writeln!(
                    out,
                    "Linkage against the synthetic ground truth (identities.csv): precision {:.4}, recall {:.4} over all {} records; precision {:.4}, recall {:.4} over the {} social care, education and child health register records.",
                    q.precision, q.recall, q.records, s.precision, s.recall, s.records
                );
            }
        }
        for f in self
            .files
            .iter()
            .filter(|f| f.status == FileStatus::Rejected)
        {
            let _ = writeln!(
                out,
                "Rejected {}: {}",
                f.path,
                f.message.as_deref().unwrap_or("")
            );
        }
        out
    }
}

/// A progress bar on stderr when `enabled` (a terminal is attached), hidden otherwise.
pub fn progress_bar(enabled: bool, total: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files  {msg}",
        )
        .expect("static template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
